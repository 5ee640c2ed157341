// The misbehaving peer of `eagain verify`: eagain itself as the target's
// clients, over loopback, through LinuxSys. What a PeerSpec asks for —
// many clients at once, a 1-byte dribble, frames split across sends with
// a pause or many in one send, a reader that stalls with a small receive
// buffer, a half-close, a close with unread data or SO_LINGER {1, 0}, hostile
// length fields — is played here, and what came back is recorded for the
// oracles (harness/verify.h) to judge. Nothing here decides a verdict.
//
// Every client is non-blocking and driven by one level-triggered epoll
// loop; every wait ends at a deadline, and a client that makes no progress
// for quiet_limit while it waits for bytes is given up on (a stall).
#pragma once

#include "core/frame.h"
#include "core/sys.h"
#include "harness/verify_check.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace eagain::harness::verify {

inline constexpr Nanos quiet_limit = std::chrono::seconds{3};
// How long a client waits for the target's FIN once every byte is back.
inline constexpr Nanos eof_wait = std::chrono::seconds{3};
// A second client's echo must complete within this while the first stalls.
inline constexpr Nanos second_client_bound = std::chrono::seconds{1};
// How long a hostile length's connection may stay open.
inline constexpr Nanos hostile_close_bound = std::chrono::seconds{2};

struct PeerContext {
    std::uint16_t port = 0;
    Protocol protocol = Protocol::bytes;
    FrameSpec spec;
    // The target's CPU (clock ticks), for the idle-CPU reading.
    std::function<std::uint64_t()> cpu_ticks;
};

// What one echo client saw.
struct EchoOutcome {
    std::string name;  // "client 3"
    std::uint64_t expected_bytes = 0;
    std::uint64_t sent_bytes = 0;
    std::uint64_t received_bytes = 0;
    bool eof = false;          // the target's FIN arrived
    int error = 0;             // ECONNRESET, ...; or the connect error
    bool connect_failed = false;
    bool gave_up = false;      // no progress for quiet_limit, or the deadline
    Nanos elapsed{};           // from connect to done
    // The first byte that is not what was sent there, and what it is: bytes
    // missing (found again later in the stream), repeated, or wrong.
    std::optional<std::uint64_t> mismatch_at;
    std::string mismatch;  // "bytes 4096..8191 (4096) missing", ...
    bool mismatch_is_loss = false;
};

struct HostileOutcome {
    std::string length;  // "-1", "1048577", "2147483647"
    bool closed = false;  // EOF or reset within hostile_close_bound
    std::string how;      // "FIN after 3 ms", "reset after 1 ms", "still open after 2 s"
};

struct CpuReading {
    Nanos window{};
    std::uint64_t ticks = 0;
    double fraction = 0;  // of one CPU
    std::string during;   // "the first client's 2 s stall"
};

struct PeerReport {
    std::vector<EchoOutcome> echoes;
    std::optional<EchoOutcome> second_client;  // during the first client's stall
    std::optional<CpuReading> cpu;
    std::vector<HostileOutcome> hostile;
    std::uint64_t resets = 0;  // reset peer: connections closed with unread data or linger
    std::string problem;       // the peer itself could not run (a socket call failed)
};

// Plays the check's peer against the target at context.port.
PeerReport run_peer(const Check& check, const PeerContext& context);
// One fresh echo client of size bytes (then half-close and EOF).
EchoOutcome run_fresh_client(const PeerContext& context, std::uint64_t bytes, Nanos deadline);

// The largest send buffer Linux grants a socket (tcp_wmem's third field),
// or 4 MiB if it cannot be read.
std::uint64_t max_send_buffer_bytes();

}  // namespace eagain::harness::verify
