// Heartbeats over virtual time: none while frames flow more often than the
// idle timeout, then, through one idle hour, a ping exactly one idle
// timeout after the last byte each time, each answered, and the connection
// never declared dead. An hour costs a few hundred simulation steps.
#include "apps/frame_echo_server.h"
#include "core/connection_driver.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"
#include "tests/sim/sim_test_support.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace simtest = eagain::simtest;
using eagain::Nanos;
using eagain::sim::RunStatus;

namespace {

constexpr std::int64_t heartbeat_bytes = 20;  // a header-only frame

std::vector<std::int64_t> times_of(const std::vector<simtest::TracedCall>& traced, Nanos from, Nanos to) {
    std::vector<std::int64_t> out;
    for (const simtest::TracedCall& c : traced) {
        if (c.at >= from && c.at <= to)
            out.push_back(c.at.count());
    }
    return out;
}

// The successful sends of exactly one heartbeat frame.
std::vector<simtest::TracedCall> heartbeat_sends(const eagain::sim::Trace& trace, std::string_view host) {
    std::vector<simtest::TracedCall> out;
    for (const simtest::TracedCall& c : simtest::calls(trace, host, "send")) {
        if (c.ok && c.len == heartbeat_bytes && c.ret == heartbeat_bytes)
            out.push_back(c);
    }
    return out;
}

}  // namespace

TEST_CASE(
    "heartbeats: none while frames flow more often than the idle timeout, then one per idle timeout for an "
    "idle hour, answered, and the connection stays up",
    "[sim]") {
    eagain::sim::WorldOptions options;
    options.trace_keep_lines = true;
    eagain::sim::World world(options);
    auto& server_host = world.add_host("server");
    auto& client_host = world.add_host("client");
    const Nanos round_trip = 2 * world.options().link.latency;

    // The server only answers pings (its own are off), so every heartbeat
    // on the wire from the client is the client's schedule alone.
    eagain::Reactor server_reactor(server_host);
    eagain::EchoServerOptions server_options;
    server_options.listen_address = server_host.address(AF_INET, 7);
    server_options.connection.heartbeat_idle_timeout = 0s;
    server_options.connection.dead_peer_intervals = 0;
    eagain::FrameEchoServer server(server_reactor, server_options);
    REQUIRE(server.open().ok());

    eagain::ConnectionConfig config;
    config.heartbeat_idle_timeout = 30s;
    config.dead_peer_intervals = 3;  // 90 s without a byte from the server would end the connection
    eagain::Reactor client_reactor(client_host);
    simtest::EchoCheckingApp app;
    eagain::ConnectionDriver driver(client_reactor, app, eagain::ConnectionRole::client, config, {}, 1);
    driver.start_connect(server.local_address());
    world.add_reactor(server_host, server_reactor);
    world.add_reactor(client_host, client_reactor);
    REQUIRE(world.run_for(1s, [&] { return !app.established_attempts.empty(); }) == RunStatus::done);
    const Nanos established = world.now();

    // Phase 1: a frame every 10 s (a third of the idle timeout) for ten
    // minutes.
    constexpr int traffic_frames = 60;
    const Nanos traffic_period = 10s;
    for (int i = 1; i <= traffic_frames; ++i)
        world.at(established + i * traffic_period, [&] { REQUIRE(app.send_next(driver) == eagain::SendError::none); });
    const Nanos traffic_end = established + traffic_frames * traffic_period + 1ms;
    REQUIRE(world.run_until(traffic_end) == RunStatus::deadline);
    REQUIRE(app.echoes_verified == traffic_frames);
    CHECK(app.mismatches == 0);
    CHECK(heartbeat_sends(world.trace(), "client").empty());
    CHECK(heartbeat_sends(world.trace(), "server").empty());
    CHECK(app.events_of(eagain::EventKind::heartbeat_sent).empty());
    CHECK(driver.connection().stats().pings_sent == 0);

    // The last byte the client's connection saw: the last echo's arrival.
    Nanos last_byte{-1};
    for (const simtest::TracedCall& c : simtest::calls(world.trace(), "client", "recv")) {
        if (c.ok && c.ret > 0)
            last_byte = c.at;
    }
    REQUIRE(last_byte > established + (traffic_frames - 1) * traffic_period);

    // Phase 2: an idle hour. A ping goes out when nothing was sent or
    // received for 30 s: 30 s after the last echo, then 30 s after each
    // pong, which comes back one round trip after its ping.
    const Nanos hour_end = last_byte + 1h;
    REQUIRE(world.run_until(hour_end) == RunStatus::deadline);
    std::vector<std::int64_t> expected;
    for (Nanos ping = last_byte + config.heartbeat_idle_timeout; ping <= hour_end;
         ping += round_trip + config.heartbeat_idle_timeout)
        expected.push_back(ping.count());
    REQUIRE(expected.size() >= 100);

    INFO("virtual " << world.now().count() << " ns; trace tail:\n" << simtest::tail(world.trace()));
    const std::vector<simtest::TracedCall> pings = heartbeat_sends(world.trace(), "client");
    const std::vector<simtest::TracedCall> pongs = heartbeat_sends(world.trace(), "server");
    CHECK(times_of(pings, Nanos{0}, hour_end) == expected);
    // Each ping answered half a round trip later (the server received it
    // then and pongs at once), and the client heard every pong.
    std::vector<std::int64_t> expected_pongs;
    for (const std::int64_t ping : expected)
        expected_pongs.push_back(ping + round_trip.count() / 2);
    CHECK(times_of(pongs, Nanos{0}, hour_end) == expected_pongs);
    const eagain::ConnectionStats& stats = driver.connection().stats();
    CHECK(stats.pings_sent == expected.size());
    CHECK(stats.pongs_received == expected.size());
    std::vector<std::int64_t> heartbeat_events;
    for (const eagain::Event& e : app.events_of(eagain::EventKind::heartbeat_sent))
        heartbeat_events.push_back(e.at.count());
    CHECK(heartbeat_events == expected);

    // Not declared dead, on either side.
    CHECK(app.closes.empty());
    CHECK(driver.connection().state() == eagain::ConnectionState::established);
    CHECK(server.open_connections() == 1);
    CHECK(server.stats().closed == 0);
}
