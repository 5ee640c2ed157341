#include "harness/echo_run.h"

#include "core/assert.h"
#include "core/faulty_sys.h"
#include "core/reactor.h"
#include "core/rng.h"
#include "sim/sim_kernel.h"

#include <sys/socket.h>

#include <algorithm>
#include <string>

namespace eagain::harness {
namespace {

using namespace std::chrono_literals;

constexpr std::uint16_t echo_port = 7;
// Frames awaiting their echo, per connection (LoadOptions' default).
constexpr std::size_t in_flight_per_connection = 32;

// --- the default fault set (documented in echo_run.h) ----------------------
constexpr std::size_t short_write_limit_bytes = 7;
constexpr Nanos link_latency = 100us;
constexpr Nanos link_jitter = 50us;
constexpr std::uint64_t held_back_one_in = 32;
constexpr Nanos hold_back = 1ms;
constexpr Nanos zero_window_start = 2ms;
constexpr Nanos zero_window_duration = 200ms;

struct ProbabilityRule {
    SysCall call;
    FaultKind fault;
    std::uint64_t one_in;
};

// In the order they are tried: short writes first, then EAGAIN, then EINTR.
constexpr std::array<ProbabilityRule, 12> standard_rules{{
    {SysCall::send, FaultKind::short_transfer, 8},
    {SysCall::sendmsg, FaultKind::short_transfer, 8},
    {SysCall::send, FaultKind::eagain, 16},
    {SysCall::sendmsg, FaultKind::eagain, 16},
    {SysCall::recv, FaultKind::eagain, 16},
    {SysCall::accept4, FaultKind::eagain, 4},
    {SysCall::send, FaultKind::eintr, 16},
    {SysCall::sendmsg, FaultKind::eintr, 16},
    {SysCall::recv, FaultKind::eintr, 16},
    {SysCall::accept4, FaultKind::eintr, 4},
    {SysCall::connect, FaultKind::eintr, 2},
    {SysCall::epoll_wait, FaultKind::eintr, 32},
}};

void add_standard_rules(FaultySys& faults) {
    for (const ProbabilityRule& r : standard_rules) {
        FaultRule rule;
        rule.call = r.call;
        rule.fault = r.fault;
        rule.when = CallSelector::with_probability;
        rule.chance_numerator = 1;
        rule.chance_denominator = r.one_in;
        if (r.fault == FaultKind::short_transfer)
            rule.short_limit_bytes = short_write_limit_bytes;
        const RuleError error = faults.add_rule(rule);
        EAGAIN_ASSERT(error == RuleError::none);  // the table above is valid by construction
    }
}

void count_rule_hits(const FaultySys& faults, EchoFaultCounts& counts) {
    for (std::size_t i = 0; i < faults.rule_count(); ++i) {
        const std::uint64_t hits = faults.rule_hits(i);
        switch (standard_rules[i].fault) {
            case FaultKind::short_transfer: counts.short_writes += hits; break;
            case FaultKind::eagain: counts.eagain += hits; break;
            case FaultKind::eintr: counts.eintr += hits; break;
            case FaultKind::econnreset:
            case FaultKind::epipe:
            case FaultKind::econnrefused:
            case FaultKind::etimedout:
            case FaultKind::econnaborted:
            case FaultKind::emfile: EAGAIN_ASSERT(false && "not in the standard set"); break;
        }
    }
}

}  // namespace

std::string_view to_string(EchoFaults faults) noexcept {
    switch (faults) {
        case EchoFaults::none: return "none";
        case EchoFaults::standard: return "default";
    }
    return "?";
}

std::optional<EchoFaults> echo_faults_from_string(std::string_view name) noexcept {
    if (name == "none")
        return EchoFaults::none;
    if (name == "default")
        return EchoFaults::standard;
    return std::nullopt;
}

EchoRunResult run_echo(const EchoRunOptions& options) {
    EchoRunResult result;
    if (options.connections == 0 || options.connections > EchoRunOptions::max_connections) {
        result.setup_error = "connections must be 1.." + std::to_string(EchoRunOptions::max_connections);
        return result;
    }
    if (options.body_bytes > EchoRunOptions::max_body_bytes) {
        result.setup_error = "body bytes must be at most " + std::to_string(EchoRunOptions::max_body_bytes);
        return result;
    }
    const bool faulty = options.faults == EchoFaults::standard;

    // Counted as the run goes (before the World: the sink and the observer
    // refer to them until the World is gone).
    EchoFaultCounts from_trace;
    sim::WorldOptions world_options;
    world_options.seed = options.seed;
    world_options.link.latency = link_latency;
    world_options.link.jitter = faulty ? link_jitter : 0ns;
    world_options.trace_keep_lines = options.keep_trace_lines;
    // Held-back segments come from the world's observer (one reorder fault,
    // so one count per "held back" in the trace), window drops from each
    // line's kind, read at its fixed place: no search through the line.
    world_options.held_back_observer = [&from_trace](std::size_t /*reorder_fault*/, std::uint64_t /*segment*/,
                                                     Nanos /*at*/) { ++from_trace.held_back; };
    world_options.trace_sink = [&from_trace, &user_sink = options.trace_sink](std::string_view line) {
        if (sim::trace_line_kind(line) == "beyond_window")
            ++from_trace.window_drops;
        if (user_sink)
            user_sink(line);
    };

    // Child seeds, by name as in a scenario run (harness/runner.h).
    const std::uint64_t server_faults_seed = Rng::derive_seed(options.seed, "faults:server");
    const std::uint64_t client_faults_seed = Rng::derive_seed(options.seed, "faults:client");
    const std::uint64_t server_seed = Rng::derive_seed(options.seed, "app:server");
    const std::uint64_t client_seed = Rng::derive_seed(options.seed, "app:client");

    sim::World world(std::move(world_options));
    sim::SimKernel& server_host = world.add_host("server");
    sim::SimKernel& client_host = world.add_host("client");
    if (faulty) {
        sim::ReorderFault reorder;  // empty host names: either way
        reorder.numerator = 1;
        reorder.denominator = held_back_one_in;
        reorder.hold_back = hold_back;
        world.add_fault(reorder);
        sim::ZeroWindowFault zero_window;
        zero_window.host = "server";
        zero_window.start = zero_window_start;
        zero_window.duration = zero_window_duration;
        world.add_fault(zero_window);
    }

    FaultySys server_faults(server_host, server_faults_seed);
    FaultySys client_faults(client_host, client_faults_seed);
    if (faulty) {
        add_standard_rules(server_faults);
        add_standard_rules(client_faults);
    }
    Reactor server_reactor(server_faults);
    Reactor client_reactor(client_faults);
    if (server_reactor.open_error() != 0 || client_reactor.open_error() != 0) {
        result.setup_error = "epoll_create1 failed";
        return result;
    }

    EchoServerOptions server_options;
    server_options.listen_address = server_host.address(AF_INET, echo_port);
    server_options.seed = server_seed;
    size_for_load(server_options.connection, options.body_bytes, in_flight_per_connection);
    FrameEchoServer server(server_reactor, server_options);
    if (const VoidResult opened = server.open(); !opened.ok()) {
        result.setup_error = "the echo server could not listen: " + errno_name(opened.error);
        return result;
    }

    LoadOptions load;
    load.server = server.local_address();
    load.connections = options.connections;
    load.frames = options.frames;
    load.body_bytes = options.body_bytes;
    load.in_flight_per_connection = in_flight_per_connection;
    load.seed = client_seed;
    size_for_load(load.connection, options.body_bytes, in_flight_per_connection);
    LoadClient client(client_reactor, load);

    world.add_reactor(server_host, server_reactor, &server_faults);
    world.add_reactor(client_host, client_reactor, &client_faults);
    client.start();
    result.status = world.run_until(options.max_virtual_time, [&] { return client.done(); });

    // Tearing the programs down closes their sockets, after the trace has
    // ended (Trace::end): the hash, the lines and the sink agree.
    world.trace().end();
    result.report = client.report();
    result.verified = result.report.ok(options.frames);
    result.trace_hash = world.trace().hash_hex();
    result.trace_lines = world.trace().line_count();
    if (options.keep_trace_lines)
        result.trace_lines_kept = world.trace().lines();
    result.virtual_time = world.now();
    result.world = world.stats();
    result.server = server.stats();
    result.faults = from_trace;
    if (faulty) {
        count_rule_hits(server_faults, result.faults);
        count_rule_hits(client_faults, result.faults);
        result.faults.zero_windows = world.now() >= zero_window_start ? 1 : 0;
    }
    return result;
}

}  // namespace eagain::harness
