// run_echo: our FrameEchoServer and LoadClient in a simulated World, with a
// fixed set of faults, every echoed frame verified. One seed decides
// everything, so the run's trace hash is a determinism check: the same
// options give the same hash on every run, machine and compiler
// (tools/sim-echo prints it; CI compares it across gcc, clang and ASan).
//
// The world: two hosts, "server" (10.0.0.1, port 7) and "client"
// (10.0.0.2). Each program is a Reactor over a FaultySys over its host's
// SimKernel (with faults none the FaultySys has no rules and passes every
// call through). The run ends when every client connection has closed, or
// at max_virtual_time, or when nothing can happen any more, or on a livelock.
//
// The default fault set (EchoFaults::standard), and why each is there:
//
//   Syscall faults, on BOTH hosts, each from a FaultySys rule that fires
//   with a fixed probability per matching call, drawn from a generator
//   seeded from `seed` (one per host). Rules are tried in this order and
//   the first that fires wins, so the rates below are upper bounds.
//   * short write: send/sendmsg, 1 call in 8, moves at most 7 bytes (a cut
//     inside the 20-byte header, or anywhere in a body). The driver must
//     advance its cursor by exactly what was taken and send the rest, in
//     order, before anything newer.
//   * EAGAIN: send/sendmsg/recv 1 in 16, accept4 1 in 4. A spurious
//     "would block": the driver must wait for readiness (which FaultySys
//     owes it, as a kernel would give it) without losing or repeating bytes;
//     the server must end its accept batch and accept the rest later.
//   * EINTR: send/sendmsg/recv 1 in 16, accept4 1 in 4, connect 1 in 2,
//     epoll_wait 1 in 32. Must be retried (a bounded number of times), never
//     taken for an error; an interrupted connect continues underneath, so
//     the client must wait for writability and read SO_ERROR.
//
//   Network faults (simulation only):
//   * jitter: every segment's one-way delay is 100 us plus a uniform extra
//     in [0, 50 us], so back-to-back segments overtake each other and
//     receivers use their out-of-order queue.
//   * reorder: 1 segment in 32, either way, is held back 1 ms (a
//     sim::ReorderFault), a longer gap for reassembly to close.
//   * zero window: the server's sockets advertise a zero receive window for
//     200 ms from 2 ms of virtual time (a sim::ZeroWindowFault; a run that
//     ends before 2 ms never sees it). Data already on its way when the
//     window shuts is dropped beyond the window, the client's frames wait
//     in its kernel send buffer (with larger bodies or more frames in
//     flight the buffer fills and sends turn short, then EAGAIN, from the
//     model itself), and everything must resume by retransmission
//     afterwards, with nothing lost or repeated.
//
// With EchoFaults::none the link has no jitter and no faults at all.
#pragma once

#include "apps/frame_echo_server.h"
#include "apps/load_client.h"
#include "core/sys.h"
#include "sim/world.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace eagain::harness {

enum class EchoFaults : std::uint8_t {
    none,      // a clean link, no syscall faults
    standard,  // the default set documented above; spelled "default"
};
// "none", "default".
std::string_view to_string(EchoFaults faults) noexcept;
std::optional<EchoFaults> echo_faults_from_string(std::string_view name) noexcept;

struct EchoRunOptions {
    // The root seed: the world's RNG, both FaultySys generators and the
    // programs' jitter seeds all derive from it.
    std::uint64_t seed = 1;
    // Frames in all, spread evenly over the connections.
    std::uint64_t frames = 1000;
    std::size_t connections = 1;
    // Body bytes per frame (each frame also has a 20-byte header);
    // at most max_body_bytes.
    std::size_t body_bytes = 64;
    EchoFaults faults = EchoFaults::standard;
    // The run gives up (RunStatus::deadline) at this virtual time.
    Nanos max_virtual_time = std::chrono::minutes(10);
    // Called with every trace line (without its newline), from the first.
    std::function<void(std::string_view line)> trace_sink;
    // Keep every trace line in EchoRunResult::trace_lines_kept.
    bool keep_trace_lines = false;

    static constexpr std::size_t max_body_bytes = 1024 * 1024;
    static constexpr std::size_t max_connections = 10'000;
};

// How many faults were injected, by kind.
struct EchoFaultCounts {
    std::uint64_t short_writes = 0;  // both hosts
    std::uint64_t eagain = 0;        // both hosts, all calls
    std::uint64_t eintr = 0;         // both hosts, all calls
    std::uint64_t held_back = 0;     // segments delayed by the reorder fault
    std::uint64_t zero_windows = 0;  // zero-window periods that began (0 or 1)
    std::uint64_t window_drops = 0;  // segments cut because they fell beyond the window
    std::uint64_t total() const noexcept {
        return short_writes + eagain + eintr + held_back + zero_windows + window_drops;
    }
    // (name, count) in a fixed order, for printing.
    std::array<std::pair<std::string_view, std::uint64_t>, 6> by_kind() const noexcept {
        return {{{"short_write", short_writes},
                 {"eagain", eagain},
                 {"eintr", eintr},
                 {"held_back", held_back},
                 {"zero_window", zero_windows},
                 {"window_drop", window_drops}}};
    }
};

struct EchoRunResult {
    // Why the run could not start (bad options, the server could not
    // listen); empty if it ran.
    std::string setup_error;
    sim::RunStatus status = sim::RunStatus::idle;
    LoadReport report;
    // report.ok(frames): every frame came back intact and in order.
    bool verified = false;
    std::string trace_hash;  // 16 lower-case hex digits
    std::uint64_t trace_lines = 0;
    std::vector<std::string> trace_lines_kept;  // with keep_trace_lines
    Nanos virtual_time{0};                      // when the run ended
    EchoFaultCounts faults;
    sim::WorldStats world;
    EchoServerStats server;

    // The run finished (every connection closed) with every frame verified.
    bool ok() const noexcept { return setup_error.empty() && status == sim::RunStatus::done && verified; }
};

// Runs the echo workload once. Never prints; never throws on a failed run
// (the result says what went wrong).
EchoRunResult run_echo(const EchoRunOptions& options);

}  // namespace eagain::harness
