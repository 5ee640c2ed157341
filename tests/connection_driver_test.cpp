// ConnectionDriver: the Connection policy over a real Transport and Reactor.
#include "core/connection_driver.h"

#include "apps/frame_echo_server.h"
#include "core/linux_sys.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"
#include "tests/sim/sim_test_support.h"
#include "tests/support/loopback.h"

#include <sys/epoll.h>
#include <catch2/catch.hpp>

#include <vector>

using namespace std::chrono_literals;

namespace {

struct CountingApp final : eagain::ConnectionDriver::App {
    std::vector<std::uint32_t> seqs;
    int closed = 0;
    void on_frame(eagain::ConnectionDriver& /*driver*/, const eagain::Frame& frame) override {
        seqs.push_back(eagain::DefaultHeader::parse(frame.header.first<eagain::DefaultHeader::size_bytes>()).seq);
    }
    void on_closed(eagain::ConnectionDriver& /*driver*/, const eagain::CloseInfo& /*info*/,
                   bool /*reconnecting*/) override {
        ++closed;
    }
};

}  // namespace

TEST_CASE("an edge-triggered connection whose receive buffer fills mid-burst still reads every frame",
          "[connection_driver]") {
    eagain::LinuxSys sys;
    const auto pair = eagain::test::connected_pair(sys);
    eagain::Reactor reactor(sys);
    CountingApp app;
    eagain::ConnectionConfig config;
    config.max_frame_bytes = 64;
    config.receive_buffer_bytes = 64;  // a few frames at a time
    eagain::TransportOptions transport;
    transport.trigger = eagain::TriggerMode::edge;
    eagain::ConnectionDriver server(reactor, app, eagain::ConnectionRole::server, config, transport, 1);
    server.start_accepted(pair.server, eagain::SockAddr{});

    // 2000 frames of 40 bytes in one burst: far more than the buffer holds,
    // so the reader stops with bytes still queued and no edge to come.
    constexpr std::uint32_t frames = 2000;
    eagain::ByteBuffer burst;
    for (std::uint32_t seq = 0; seq < frames; ++seq) {
        eagain::DefaultHeader header;
        header.cmd = 1;
        header.seq = seq;
        const std::array<std::uint8_t, 20> body{};
        REQUIRE(eagain::encode_frame(eagain::FrameSpec{}, header.bytes(), body, burst) == eagain::EncodeError::none);
    }
    std::size_t sent = 0;
    int idle_polls = 0;  // polls that delivered nothing: a stalled reader ends the loop
    while (idle_polls < 20 && (sent < burst.size() || app.seqs.size() < frames)) {
        if (sent < burst.size()) {
            const eagain::SizeResult r = sys.send(pair.client, burst.readable().subspan(sent), MSG_NOSIGNAL);
            if (r.ok())
                sent += r.value;
        }
        const std::size_t before = app.seqs.size();
        REQUIRE(reactor.poll(sent < burst.size() ? 0ms : 100ms).ok());
        idle_polls = app.seqs.size() == before ? idle_polls + 1 : 0;
    }
    REQUIRE(app.seqs.size() == frames);
    for (std::uint32_t seq = 0; seq < frames; ++seq)
        REQUIRE(app.seqs[seq] == seq);
    CHECK(app.closed == 0);
    (void)sys.close(pair.client);
}

// ===========================================================================
// The pass-throughs and on_transition, in the simulated kernel (whose trace
// is the independent record of what the driver did).

namespace {

namespace simtest = eagain::simtest;

// EchoCheckingApp that also writes down every forwarded transition.
struct TransitionsApp final : eagain::ConnectionDriver::App {
    simtest::EchoCheckingApp echo;
    std::vector<eagain::Transition> transitions;
    explicit TransitionsApp(std::uint32_t frames = 0, std::size_t body_bytes = 16) : echo(frames, body_bytes) {}
    void on_established(eagain::ConnectionDriver& driver) override { echo.on_established(driver); }
    void on_frame(eagain::ConnectionDriver& driver, const eagain::Frame& frame) override {
        echo.on_frame(driver, frame);
    }
    void on_event(eagain::ConnectionDriver& driver, const eagain::Event& event) override {
        echo.on_event(driver, event);
    }
    void on_closed(eagain::ConnectionDriver& driver, const eagain::CloseInfo& info, bool reconnecting) override {
        echo.on_closed(driver, info, reconnecting);
    }
    void on_transition(eagain::ConnectionDriver& /*driver*/, const eagain::Transition& transition) override {
        transitions.push_back(transition);
    }
};

struct SimPair {
    eagain::sim::World world{[] {
        eagain::sim::WorldOptions options;
        options.trace_keep_lines = true;
        return options;
    }()};
    eagain::sim::SimKernel& server_host = world.add_host("server");
    eagain::sim::SimKernel& client_host = world.add_host("client");
    eagain::Reactor server_reactor{server_host};
    eagain::Reactor client_reactor{client_host};
    SimPair() {
        world.add_reactor(server_host, server_reactor);
        world.add_reactor(client_host, client_reactor);
    }
};

}  // namespace

TEST_CASE("on_transition forwards every transition once, in order, one into connecting comes with its connect(2)",
          "[connection_driver][sim]") {
    SimPair sim;  // nothing listens: every connect is refused, one round trip later
    eagain::ConnectionConfig config;
    config.reconnect = true;
    config.reconnect_initial_delay = 1s;
    config.reconnect_max_delay = 4s;
    config.reconnect_jitter_percent = 0;
    TransitionsApp app;
    eagain::ConnectionDriver driver(sim.client_reactor, app, eagain::ConnectionRole::client, config, {}, 1);
    driver.start_connect(sim.server_host.address(AF_INET, 7));
    REQUIRE(sim.world.run_until(20s) == eagain::sim::RunStatus::deadline);

    CHECK(app.transitions.size() == driver.connection().transition_count());
    CHECK(app.transitions == driver.connection().transitions());
    std::vector<std::int64_t> into_connecting;
    for (const eagain::Transition& t : app.transitions) {
        if (t.to == eagain::ConnectionState::connecting)
            into_connecting.push_back(t.at.count());
    }
    std::vector<std::int64_t> connects;
    for (const simtest::TracedCall& c : simtest::calls(sim.world.trace(), "client", "connect"))
        connects.push_back(c.at.count());
    CHECK(into_connecting == connects);
    // 0, then each refusal (one 200 us round trip) plus 1, 2, 4, 4, 4 s.
    const std::vector<std::int64_t> expected{
        0, 1'000'200'000, 3'000'400'000, 7'000'600'000, 11'000'800'000, 15'001'000'000, 19'001'200'000};
    CHECK(connects == expected);
}

TEST_CASE("pause_reading: the peer's echoes meet a zero window, resume_reading reads every one",
          "[connection_driver][sim]") {
    const eagain::TriggerMode trigger = GENERATE(eagain::TriggerMode::level, eagain::TriggerMode::edge);
    CAPTURE(trigger == eagain::TriggerMode::edge);
    SimPair sim;
    eagain::EchoServerOptions server_options;
    server_options.listen_address = sim.server_host.address(AF_INET, 7);
    server_options.connection.heartbeat_idle_timeout = 0s;
    server_options.connection.dead_peer_intervals = 0;
    eagain::FrameEchoServer server(sim.server_reactor, server_options);
    REQUIRE(server.open().ok());

    // 200 frames of 1 KiB at once: more than the client's receive buffer
    // (128 KiB) and the server's send buffer (64 KiB) hold together.
    constexpr std::uint32_t frames = 200;
    TransitionsApp app(frames, 1024);
    eagain::TransportOptions transport;
    transport.trigger = trigger;
    eagain::ConnectionDriver driver(sim.client_reactor, app, eagain::ConnectionRole::client, {}, transport, 1);
    driver.pause_reading();  // before connecting: the connection starts paused
    driver.start_connect(server_options.listen_address);
    REQUIRE(sim.world.run_until(1s) == eagain::sim::RunStatus::deadline);

    CHECK(app.echo.echoes_verified == 0);
    CHECK(simtest::calls(sim.world.trace(), "client", "recv").empty());
    // The client's window closed, and the server's sends met it.
    bool zero_window = false;
    for (const std::string& line : sim.world.trace().lines()) {
        if (simtest::is(line, "ev", "seg") && simtest::field(line, "src").value_or("").starts_with("client") &&
            simtest::is(line, "win", "0"))
            zero_window = true;
    }
    CHECK(zero_window);
    bool server_blocked = false;
    for (const simtest::TracedCall& c : simtest::calls(sim.world.trace(), "server", "send"))
        server_blocked = server_blocked || c.err == "EAGAIN" || (c.ok && c.ret < c.len);
    CHECK(server_blocked);
    CHECK(server.tally().max_output_bytes > 0);  // what the socket would not take waited in the server

    driver.resume_reading();
    CHECK(sim.world.run_for(5s, [&] { return app.echo.echoes_verified == frames; }) == eagain::sim::RunStatus::done);
    CHECK(app.echo.mismatches == 0);
    CHECK(driver.connection().state() == eagain::ConnectionState::established);
}

TEST_CASE("send_unframed puts the bytes on the wire as given: a negative length closes that connection at the server",
          "[connection_driver][sim]") {
    SimPair sim;
    eagain::EchoServerOptions server_options;
    server_options.listen_address = sim.server_host.address(AF_INET, 7);
    eagain::FrameEchoServer server(sim.server_reactor, server_options);
    REQUIRE(server.open().ok());
    TransitionsApp app(3);
    eagain::ConnectionDriver driver(sim.client_reactor, app, eagain::ConnectionRole::client, {}, {}, 1);
    driver.start_connect(server_options.listen_address);
    REQUIRE(sim.world.run_for(1s, [&] { return app.echo.echoes_verified == 3; }) == eagain::sim::RunStatus::done);

    const eagain::DefaultHeader hostile{7, 3, 0xFFFFFFFFU, 0, 0};
    CHECK(driver.send_unframed(hostile.bytes()) == eagain::SendError::none);
    (void)sim.world.run_for(1s, [&] { return driver.finished(); });
    CHECK(driver.finished());
    const eagain::ConnectionTally tally = server.tally();
    REQUIRE(tally.endings.size() == 1);
    CHECK(tally.endings[0] == eagain::EndingCount{eagain::CloseReason::hostile_frame, 0, 1});
    CHECK(server.stats().hostile_frames == 1);
}
