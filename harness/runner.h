// run_scenario: builds a World from a parsed Scenario (harness/scenario.h),
// runs it and checks its expectations.
//
// What runs today (the first slice of the runner): the apps frame-echo
// (FrameEchoServer) and frame-client (LoadClient); every syscall fault and
// network fault; the actions stop, start and restart on a frame-echo; and
// the expectations frames-verified, no-errors, error, no-fd-leak,
// no-sigpipe and done-by. A scenario that uses anything else is reported
// as not runnable (setup_error), never silently passed.
//
// The run: every host gets one Reactor over a FaultySys (seeded from the
// scenario's seed and the host's index) over its SimKernel. Servers open
// first; each host's descriptor count is taken as its baseline; then the
// clients start. The world runs until every client is done, or the
// done-by time (1 virtual hour without one). Then one more virtual second
// lets servers see the last FINs, and the fd counts are compared with the
// baselines (servers still running).
#pragma once

#include "core/reactor.h"
#include "core/transport.h"
#include "harness/scenario.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::harness {

// A server app as the runner drives it. The built-in frame-echo is
// FrameEchoServer; tests put deliberately buggy servers in its place
// (ScenarioRunOptions::servers) to show that a scenario catches the bug.
class ServerApp {
public:
    virtual ~ServerApp() = default;
    // Listens on the context's address; the errno if it cannot.
    virtual VoidResult open() = 0;
    // Stops listening and closes every connection (an action, or the end).
    virtual void stop() = 0;
};

struct ServerAppContext {
    Reactor& reactor;  // on the app's host, over its FaultySys
    SockAddr listen_address;
    TriggerMode trigger = TriggerMode::level;
    std::size_t max_frame_bytes = 16U << 20;
    std::uint64_t seed = 1;
};

using ServerAppFactory = std::function<std::unique_ptr<ServerApp>(const ServerAppContext&)>;

struct ScenarioRunOptions {
    std::optional<std::uint64_t> seed;  // overrides the file's seed
    std::function<void(std::string_view line)> trace_sink;
    // App kind -> the server to run for it instead of the built-in one.
    std::map<std::string, ServerAppFactory> servers;
};

struct ExpectationFailure {
    SourceLocation where;     // the expect statement
    std::string expectation;  // the statement, reassembled
    std::string expected;
    std::string happened;
    Nanos at{};                           // virtual time of the check
    std::vector<std::string> trace_tail;  // the last trace lines before it
};

struct ScenarioReport {
    std::string setup_error;  // not runnable / could not start; empty if it ran
    bool passed = false;
    Nanos virtual_time{};
    std::uint64_t faults_injected = 0;  // syscall faults; network faults are in the trace
    std::string trace_hash;
    std::uint64_t trace_lines = 0;
    std::vector<ExpectationFailure> failures;
};

// Never throws on a failing scenario; the report says what went wrong.
ScenarioReport run_scenario(const Scenario& scenario, const ScenarioRunOptions& options = {});

}  // namespace eagain::harness
