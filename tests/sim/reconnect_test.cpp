// A reconnecting client against a server that is down for the first 60
// virtual seconds: every connect(2) must happen exactly on the backoff
// schedule (jitter off, so the schedule is a formula), and the attempt
// after the server comes up must connect and carry traffic.
#include "apps/frame_echo_server.h"
#include "core/connection_driver.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"
#include "tests/sim/sim_test_support.h"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace simtest = eagain::simtest;
using eagain::Nanos;
using eagain::sim::RunStatus;

namespace {

std::vector<std::int64_t> as_ns(const std::vector<Nanos>& times) {
    std::vector<std::int64_t> out;
    for (const Nanos t : times)
        out.push_back(t.count());
    return out;
}

}  // namespace

TEST_CASE(
    "a reconnecting client retries exactly on the backoff schedule while the server is down, then connects "
    "and its frames are echoed",
    "[sim]") {
    eagain::sim::WorldOptions options;
    options.trace_keep_lines = true;
    eagain::sim::World world(options);
    auto& server_host = world.add_host("server");
    auto& client_host = world.add_host("client");
    const Nanos round_trip = 2 * world.options().link.latency;
    const Nanos server_down_until = 60s;

    eagain::ConnectionConfig config;
    config.reconnect = true;
    config.reconnect_initial_delay = 1s;
    config.reconnect_max_delay = 16s;  // reached within the minute: the cap is on the schedule too
    config.reconnect_jitter_percent = 0;
    config.connect_timeout = 10s;

    // When each attempt fails, seen from the client: a refusal comes back
    // one round trip after the SYN; an unreachable server is given up on
    // at connect_timeout.
    Nanos failure_after{};
    Nanos server_opens_at{};
    int expected_errno = 0;
    eagain::CloseReason expected_reason{};
    SECTION("refused: nothing listens until 60 s") {
        failure_after = round_trip;
        server_opens_at = server_down_until;
        expected_errno = ECONNREFUSED;
        expected_reason = eagain::CloseReason::connect_failed;
    }
    SECTION("unreachable: the network to the server is cut until 60 s") {
        eagain::sim::PartitionFault cut;
        cut.a = "client";
        cut.b = "server";
        cut.start = 0s;
        cut.duration = server_down_until;
        world.add_fault(cut);
        failure_after = config.connect_timeout;
        server_opens_at = 0s;
        expected_errno = ETIMEDOUT;
        expected_reason = eagain::CloseReason::connect_timeout;
    }

    // Attempt k+1 starts backoff_delay(k+1) after attempt k failed:
    // initial * 2^k, capped at the max. The schedule ends with the first
    // attempt still under way when the server comes up (refused: one that
    // starts after 60 s; unreachable: the one whose SYN retransmission,
    // Linux's 1 s doubling, gets through after the cut heals).
    std::vector<Nanos> expected_connects{0s};
    while (expected_connects.back() + failure_after <= server_down_until) {
        const std::size_t retry = expected_connects.size();  // 1, 2, ...
        Nanos delay = config.reconnect_initial_delay;
        for (std::size_t k = 1; k < retry && delay < config.reconnect_max_delay; ++k)
            delay *= 2;
        delay = std::min(delay, config.reconnect_max_delay);
        expected_connects.push_back(expected_connects.back() + failure_after + delay);
    }
    const std::size_t failures = expected_connects.size() - 1;
    REQUIRE(failures >= 4);  // the schedule under test has doublings and the cap

    std::optional<eagain::Reactor> server_reactor;
    std::optional<eagain::FrameEchoServer> server;
    const auto open_server = [&] {
        server_reactor.emplace(server_host);
        eagain::EchoServerOptions server_options;
        server_options.listen_address = server_host.address(AF_INET, 7);
        server.emplace(*server_reactor, server_options);
        REQUIRE(server->open().ok());
        world.add_reactor(server_host, *server_reactor);
    };
    if (server_opens_at == 0s)
        open_server();

    eagain::Reactor client_reactor(client_host);
    const std::size_t client_fds = client_host.open_fd_count();
    simtest::EchoCheckingApp app(/*frames_on_established=*/50);
    eagain::ConnectionDriver driver(client_reactor, app, eagain::ConnectionRole::client, config, {}, 1);
    driver.start_connect(server_host.address(AF_INET, 7));
    world.add_reactor(client_host, client_reactor);

    // Phase 1: the server is down. Every attempt fails and a retry is
    // scheduled.
    REQUIRE(world.run_until(server_down_until) == RunStatus::deadline);
    CHECK(app.established_attempts.empty());
    if (!server)
        open_server();

    // Phase 2: up; the next attempt connects and the frames come back.
    const RunStatus status = world.run_for(60s, [&] { return app.echoes_verified == 50; });
    INFO("status " << to_string(status) << " at " << world.now().count() << " ns; trace tail:\n"
                   << simtest::tail(world.trace()));
    CHECK(status == RunStatus::done);
    CHECK(app.mismatches == 0);

    // Every connect(2) the client made, at exactly the scheduled times.
    std::vector<Nanos> connects;
    for (const simtest::TracedCall& c : simtest::calls(world.trace(), "client", "connect"))
        connects.push_back(c.at);
    CHECK(as_ns(connects) == as_ns(expected_connects));

    // The policy's own account agrees: a failure of the expected kind per
    // attempt, each followed by a retry scheduled for the next connect.
    REQUIRE(app.closes.size() == failures);
    for (std::size_t i = 0; i < failures; ++i) {
        INFO("failure " << i + 1 << ": " << describe(app.closes[i]));
        CHECK(app.closes[i].reason == expected_reason);
        CHECK(app.closes[i].errno_value == expected_errno);
        CHECK(app.closes_reconnecting[i]);
    }
    const std::vector<eagain::Event> retries = app.events_of(eagain::EventKind::reconnect_scheduled);
    REQUIRE(retries.size() == failures);
    for (std::size_t i = 0; i < failures; ++i) {
        CHECK(retries[i].retry == i + 1);
        CHECK(retries[i].reconnect_at == expected_connects[i + 1]);
    }
    // Connected on the attempt after the server came up, and only then.
    CHECK(app.established_attempts == std::vector<std::uint64_t>{failures + 1});
    const std::vector<eagain::Event> established = app.events_of(eagain::EventKind::established);
    REQUIRE(established.size() == 1);
    CHECK(established[0].at >= server_down_until);
    CHECK(established[0].at < expected_connects.back() + config.connect_timeout);
    CHECK(driver.connection().state() == eagain::ConnectionState::established);
    // Each failed attempt's socket was closed: one socket open now.
    CHECK(client_host.open_fd_count() == client_fds + 1);
}
