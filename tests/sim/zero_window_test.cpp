// A receiver that advertises a zero window for 10 virtual seconds: the
// writer must stall (no new byte gets through, its sends find the buffer
// full), hold on to its output, and carry on the moment the window opens,
// losing nothing. The world runs in phases so each claim is checked at the
// time it is about.
#include "apps/frame_echo_server.h"
#include "apps/load_client.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"
#include "tests/sim/sim_test_support.h"

#include <catch2/catch.hpp>

#include <string>

using namespace std::chrono_literals;
namespace simtest = eagain::simtest;
using eagain::Nanos;
using eagain::sim::RunStatus;

TEST_CASE(
    "a writer facing a 10 s zero window stalls, keeps its output, resumes when the window opens and loses "
    "nothing",
    "[sim]") {
    eagain::sim::WorldOptions options;
    options.trace_keep_lines = true;
    eagain::sim::World world(options);
    auto& server_host = world.add_host("server");
    eagain::sim::HostOptions client_options;
    client_options.first_ephemeral_port = 40000;
    auto& client_host = world.add_host("client", client_options);

    // The server's side of the connection advertises no room from start
    // to end, whatever its buffers hold; traffic is in full flow at start.
    const Nanos start = 2ms;
    const Nanos end = start + 10s;
    eagain::sim::ZeroWindowFault zero;
    zero.host = "server";
    zero.start = start;
    zero.duration = end - start;
    world.add_fault(zero);

    eagain::Reactor server_reactor(server_host);
    eagain::Reactor client_reactor(client_host);
    eagain::EchoServerOptions server_options;
    server_options.listen_address = server_host.address(AF_INET, 7);
    eagain::FrameEchoServer server(server_reactor, server_options);
    REQUIRE(server.open().ok());
    // Far more in flight (512 frames of 1044 bytes) than the client's
    // 64 KiB send buffer holds: the writer always has bytes waiting.
    eagain::LoadOptions load;
    load.server = server.local_address();
    load.connections = 1;
    load.frames = 8000;
    load.body_bytes = 1024;
    load.in_flight_per_connection = 512;
    eagain::LoadClient client(client_reactor, load);
    client.start();
    world.add_reactor(server_host, server_reactor);
    world.add_reactor(client_host, client_reactor);
    const eagain::LoadReport& report = client.report();
    const auto server_recvs = [&] { return simtest::calls(world.trace(), "server", "recv"); };
    const auto client_sends = [&] { return simtest::calls(world.trace(), "client", "send"); };

    // Phase 1: up to the window, frames flow.
    REQUIRE(world.run_until(start) == RunStatus::deadline);
    REQUIRE(report.frames_verified > 0);
    REQUIRE(report.frames_verified < load.frames);

    // Phase 2: one millisecond (five round trips) for what was in flight
    // to land or be refused, and for the server to read what it has.
    const Nanos settled = start + 1ms;
    REQUIRE(world.run_until(settled) == RunStatus::deadline);
    const std::int64_t server_received_before = simtest::bytes_moved(server_recvs(), Nanos{0}, settled);
    const std::int64_t client_sent_before = simtest::bytes_moved(client_sends(), Nanos{0}, settled);
    const std::uint64_t verified_before = report.frames_verified;

    // Phase 3: the rest of the window.
    REQUIRE(world.run_until(end - 1ns) == RunStatus::deadline);
    {
        INFO("virtual " << world.now().count() << " ns; trace tail:\n" << simtest::tail(world.trace()));
        // No new byte reached the server's program, and the client's program
        // got none into its kernel: the writer stalled.
        CHECK(simtest::bytes_moved(server_recvs(), settled, end) == 0);
        CHECK(simtest::bytes_moved(client_sends(), settled, end) == 0);
        CHECK(report.frames_verified == verified_before);
        CHECK(report.frames_verified < load.frames);
        // ... because the server's side said "no room": every segment it
        // sent during the window (answers to the client's probes among
        // them) advertised a zero window, and there were such segments.
        std::size_t server_segments = 0;
        std::size_t nonzero_windows = 0;
        for (const std::string& line : world.trace().lines()) {
            const Nanos t = simtest::time_of(line);
            if (t < settled || t >= end || !simtest::is(line, "ev", "seg") || !simtest::is(line, "src", "server:7"))
                continue;
            ++server_segments;
            if (simtest::number(line, "win").value_or(-1) != 0)
                ++nonzero_windows;
        }
        CHECK(server_segments > 0);
        CHECK(nonzero_windows == 0);
        // The writer met a full send buffer (EAGAIN) as the window shut,
        // and its last send of the window is that EAGAIN: it is waiting for
        // EPOLLOUT with its output kept, not spinning and not dropping.
        std::size_t eagains = 0;
        std::string last_result = "none";
        for (const simtest::TracedCall& c : client_sends()) {
            if (c.at < start || c.at >= end)
                continue;
            if (!c.ok && c.err == "EAGAIN")
                ++eagains;
            last_result = c.ok ? std::to_string(c.ret) : c.err;
        }
        CHECK(eagains >= 1);
        CHECK(last_result == "EAGAIN");
        // And it waits for EPOLLOUT rather than retrying: a handful of
        // calls at most in ten seconds (a writer that polled would make
        // thousands).
        std::size_t sends_in_window = 0;
        for (const simtest::TracedCall& c : client_sends())
            sends_in_window += c.at >= settled && c.at < end ? 1 : 0;
        CHECK(sends_in_window <= 10);
        CHECK(simtest::bytes_moved(server_recvs(), Nanos{0}, end) == server_received_before);
        CHECK(simtest::bytes_moved(client_sends(), Nanos{0}, end) == client_sent_before);
    }

    // Phase 4: the window opens; the writer resumes at once (within a few
    // round trips, not at its next persist probe seconds later) and every
    // frame comes back.
    const RunStatus status = world.run_for(10s, [&] { return client.done(); });
    INFO("status " << to_string(status) << " at " << world.now().count() << " ns; trace tail:\n"
                   << simtest::tail(world.trace()));
    INFO("first problem: " << (report.problems.empty() ? std::string("none") : report.problems.front()));
    CHECK(status == RunStatus::done);
    CHECK(report.ok(load.frames));
    Nanos first_send_after{-1};
    for (const simtest::TracedCall& c : client_sends()) {
        if (c.at >= end && c.ok && c.ret > 0) {
            first_send_after = c.at;
            break;
        }
    }
    Nanos first_receive_after{-1};
    for (const simtest::TracedCall& c : server_recvs()) {
        if (c.at >= end && c.ok && c.ret > 0) {
            first_receive_after = c.at;
            break;
        }
    }
    INFO("first client send after the window at +" << (first_send_after - end).count() << " ns, first server recv at +"
                                                   << (first_receive_after - end).count() << " ns");
    CHECK(first_receive_after >= end);
    CHECK(first_receive_after - end <= 1ms);
    CHECK(first_send_after >= end);
    CHECK(first_send_after - end <= 1ms);
}
