// The echo server and the load client, unchanged, over a link that jitters
// and reorders, with short transfers, EAGAIN and EINTR injected into both
// programs' syscalls. Every frame must come back intact and in order, and
// the test also proves the faults it claims really happened: a fault that
// was never injected proves nothing.
#include "apps/frame_echo_server.h"
#include "apps/load_client.h"
#include "core/faulty_sys.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"
#include "tests/sim/sim_test_support.h"

#include <catch2/catch.hpp>

#include <array>
#include <map>
#include <string>

using namespace std::chrono_literals;
namespace simtest = eagain::simtest;

namespace {

struct IoFault {
    eagain::SysCall call;
    eagain::FaultKind kind;
    std::size_t short_limit_bytes;
};

// Rule i of every program's FaultySys is io_faults[i]. Each fires on about
// one matching call in four (the rules before it permitting), so a run of
// thousands of calls gets hundreds of each.
constexpr std::array<IoFault, 6> io_faults{{
    {eagain::SysCall::send, eagain::FaultKind::short_transfer, 11},
    {eagain::SysCall::send, eagain::FaultKind::eagain, 0},
    {eagain::SysCall::send, eagain::FaultKind::eintr, 0},
    {eagain::SysCall::recv, eagain::FaultKind::short_transfer, 13},
    {eagain::SysCall::recv, eagain::FaultKind::eagain, 0},
    {eagain::SysCall::recv, eagain::FaultKind::eintr, 0},
}};

void add_io_faults(eagain::FaultySys& faults) {
    for (const IoFault& f : io_faults) {
        eagain::FaultRule rule;
        rule.call = f.call;
        rule.fault = f.kind;
        rule.short_limit_bytes = f.short_limit_bytes;
        rule.when = eagain::CallSelector::with_probability;
        rule.chance_numerator = 1;
        rule.chance_denominator = 4;
        REQUIRE(faults.add_rule(rule) == eagain::RuleError::none);
    }
}

struct Reordering {
    std::size_t held_back = 0;   // data segments the ReorderFault delayed
    std::size_t overtaking = 0;  // new data segments that arrived before one sent earlier
};

// Per direction ("src>dst", e.g. "client:40000>server:7"), from the seg
// lines: a segment overtakes when it carries new data (a higher seq than any
// before it in that direction) and arrives before some segment sent earlier
// in that direction. The receiver then holds it in its out-of-order queue,
// since the bytes before it have not come.
std::map<std::string, Reordering> reordering(const eagain::sim::Trace& trace) {
    struct Direction {
        std::int64_t latest_arrival = -1;
        std::int64_t highest_seq = -1;
    };
    std::map<std::string, Direction> seen;
    std::map<std::string, Reordering> out;
    for (const std::string& line : trace.lines()) {
        if (!simtest::is(line, "ev", "seg") || simtest::number(line, "len").value_or(0) == 0)
            continue;
        const std::optional<std::int64_t> arrive = simtest::number(line, "arrive");
        if (!arrive)
            continue;  // dropped
        const std::string direction = std::string(simtest::field(line, "src").value_or("?")) + ">" +
                                      std::string(simtest::field(line, "dst").value_or("?"));
        const std::int64_t seq = simtest::number(line, "seq").value_or(-1);
        Direction& d = seen[direction];
        Reordering& r = out[direction];
        if (simtest::is(line, "fault", "held back"))
            ++r.held_back;
        if (seq > d.highest_seq && *arrive < d.latest_arrival)
            ++r.overtaking;
        d.highest_seq = std::max(d.highest_seq, seq);
        d.latest_arrival = std::max(d.latest_arrival, *arrive);
    }
    return out;
}

}  // namespace

TEST_CASE(
    "10,000 frames echo intact and in order over a jittery reordering link with short, EAGAIN and EINTR "
    "syscalls on both sides",
    "[sim]") {
    eagain::sim::WorldOptions options;
    options.trace_keep_lines = true;
    options.seed = 20240611;
    options.link.latency = 100us;
    options.link.jitter = 200us;  // far above the gap between segments: jitter alone reorders
    eagain::sim::World world(options);
    auto& server_host = world.add_host("server");
    eagain::sim::HostOptions client_options;
    client_options.first_ephemeral_port = 40000;
    auto& client_host = world.add_host("client", client_options);

    eagain::sim::ReorderFault reorder;
    reorder.numerator = 1;
    reorder.denominator = 8;
    reorder.hold_back = 1ms;
    reorder.from = "client";
    reorder.to = "server";
    world.add_fault(reorder);
    reorder.from = "server";
    reorder.to = "client";
    world.add_fault(reorder);

    eagain::FaultySys server_faults(server_host, 11);
    eagain::FaultySys client_faults(client_host, 12);
    add_io_faults(server_faults);
    add_io_faults(client_faults);

    eagain::Reactor server_reactor(server_faults);
    eagain::Reactor client_reactor(client_faults);
    REQUIRE(server_reactor.open_error() == 0);
    REQUIRE(client_reactor.open_error() == 0);
    eagain::EchoServerOptions server_options;
    server_options.listen_address = server_host.address(AF_INET, 7);
    std::vector<std::string> server_log;
    eagain::FrameEchoServer server(server_reactor, server_options,
                                   [&](std::string_view line) { server_log.emplace_back(line); });
    REQUIRE(server.open().ok());

    eagain::LoadOptions load;
    load.server = server.local_address();
    load.connections = 4;
    load.frames = 10'000;
    load.body_bytes = 64;
    load.in_flight_per_connection = 8;  // fewer frames per syscall: more syscalls to fault
    eagain::LoadClient client(client_reactor, load);
    client.start();
    world.add_reactor(server_host, server_reactor, &server_faults);
    world.add_reactor(client_host, client_reactor, &client_faults);

    const eagain::sim::RunStatus status = world.run_for(60s, [&] { return client.done(); });
    const eagain::LoadReport& report = client.report();
    {
        INFO("status " << to_string(status) << " at " << world.now().count() << " ns; trace tail:\n"
                       << simtest::tail(world.trace()));
        INFO("first problem: " << (report.problems.empty() ? std::string("none") : report.problems.front()));
        CHECK(status == eagain::sim::RunStatus::done);
        // LoadClient checks every echo's connection, seq and body against
        // what it sent: a lost, repeated, reordered or torn frame is a
        // mismatch.
        CHECK(report.ok(10'000));
        CHECK(report.mismatches == 0);
        CHECK(report.frames_verified == 10'000);
        CHECK(server_log.empty());
    }

    // Each kind of fault was injected many times on each side, and every
    // injection went into the trace.
    for (std::size_t i = 0; i < io_faults.size(); ++i) {
        INFO("rule " << i << ": " << to_string(io_faults[i].call) << " " << to_string(io_faults[i].kind));
        CHECK(server_faults.rule_hits(i) >= 200);
        CHECK(client_faults.rule_hits(i) >= 200);
    }
    CHECK(simtest::count_lines(world.trace(), "fault", "host", "server") == server_faults.faults_injected());
    CHECK(simtest::count_lines(world.trace(), "fault", "host", "client") == client_faults.faults_injected());

    // The link really reordered data, in both directions of every connection.
    const std::map<std::string, Reordering> seen = reordering(world.trace());
    CHECK(seen.size() == 8);  // 4 connections, two directions each
    for (const auto& [direction, r] : seen) {
        INFO(direction << ": held back " << r.held_back << ", overtaking " << r.overtaking);
        CHECK(r.held_back >= 20);
        CHECK(r.overtaking >= 20);
    }
}
