// A verification check (docs/verify.md): one `.verify` file of the suite
// under scenarios/verify/, the parsed form and its parser.
//
// A check says how eagain, as the peer, misbehaves towards the target
// program (`peer`), which syscall faults the preload shim injects into the
// target (`fault target ...`, the scenario language's statement), and
// which oracles judge the outcome (`expect`). The file is checked as a
// scenario is: every problem as "file:line:col: expected ..., found ...".
//
//   check stalled-reader
//   about "a client that reads nothing for 2 s while the echo is pending"
//   protocol any
//   peer echo clients 1 bytes auto receive-buffer 4K stall 2s
//   expect echo-intact
//   expect idle-cpu
//   expect second-client-served
//   expect alive
#pragma once

#include "core/faulty_sys.h"
#include "core/sys.h"
#include "harness/scenario.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::harness::verify {

// What the target speaks: a byte echo, or a length-field frame echo.
enum class Protocol : std::uint8_t { bytes, frames };
std::string_view to_string(Protocol protocol) noexcept;

// What the peer does.
enum class PeerKind : std::uint8_t {
    echo,     // clients send a stream, read the echo, half-close, wait for EOF
    reset,    // clients send, then close without reading (RST) or with SO_LINGER {1, 0}
    hostile,  // one connection per hostile length field, beside one echo client
};
std::string_view to_string(PeerKind kind) noexcept;

struct PeerSpec {
    PeerKind kind = PeerKind::echo;
    std::uint64_t clients = 1;  // connections, all open at once (reset: in batches of 50)
    // Payload per client. 0 ("auto"): twice the largest send buffer the
    // kernel grants (tcp_wmem's maximum), so the target meets a full send
    // buffer whatever it asks for.
    std::uint64_t bytes = 64 * 1024;
    std::uint64_t body_bytes = 100;         // frames: the body of each frame
    std::uint64_t write_bytes = 16 * 1024;  // bytes per send (1: a dribble; TCP_NODELAY is always on)
    Nanos pause{};                          // between two sends of one client
    std::uint64_t receive_buffer_bytes = 0;  // SO_RCVBUF before connecting; 0: the kernel's default
    Nanos stall{};                           // reads nothing for this long after connecting
    Nanos idle{};                            // after the echo, stays connected and silent this long
    bool half_close = true;                  // echo: shutdown(SHUT_WR) after the last send
    bool linger = false;                     // reset: SO_LINGER {1, 0} close instead of unread data
};

// The oracles. Each names the problem kinds it can report.
enum class Oracle : std::uint8_t {
    echo_intact,           // every byte back intact, in order, once, then EOF, by the deadline
    alive,                 // the target is still running afterwards
    idle_cpu,              // no CPU burned while every peer is stalled or idle
    second_client_served,  // while the first client stalls, a second is echoed within a bound
    served_after,          // after the peer is done, a fresh client is echoed
    fd_baseline,           // the target's open fds return to their count before the first peer
    hostile_closed,        // every hostile length closes its connection, and only it
};
std::string_view to_string(Oracle oracle) noexcept;

struct FaultLine {
    std::string text;  // the statement as written
    SourceLocation where;
};

struct Check {
    std::string file;
    std::string name;
    std::string about;
    std::optional<Protocol> protocol;  // nullopt: any
    PeerSpec peer;
    std::vector<FaultLine> faults;
    std::vector<FaultRule> rules;  // the faults, parsed
    std::vector<Oracle> oracles;   // in the order written
    Nanos deadline = std::chrono::seconds{20};  // for the echo to complete
    bool applies_to(Protocol p) const noexcept { return !protocol || *protocol == p; }
};

struct CheckParse {
    Check check;
    std::vector<std::string> errors;  // "file:line:col: expected ..., found ..."
    bool ok() const noexcept { return errors.empty(); }
};

CheckParse parse_check(std::string_view text, std::string_view file_name);

// The fault lines of a check as the shim reads them (EAGAIN_FAULTS).
std::string fault_file_text(const Check& check);

}  // namespace eagain::harness::verify

