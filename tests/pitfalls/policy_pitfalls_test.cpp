// Policy pitfalls: what the seed programs get wrong about connection policy
// (connect failures and timeouts, heartbeats, dead peers, reconnect backoff,
// hostile frames), each shown on loopback through the real ConnectionDriver
// on a Reactor over FaultySys, and again on a naive variant written the way
// the seeds write it (tests/pitfalls/naive_policy.h).
//
// One check function per pitfall judges both runs from what is observable
// outside the code (what the app was told, the connect() calls and open
// sockets seen by a WitnessSys, what the peer received): it must hold for
// the driver and fail for the naive variant, so the check can tell them
// apart. The naive section also names the reason the check gave.
//
// Timing pitfalls run on ManualClockSys (real sockets, virtual clock), so the
// expected times are exact and nothing sleeps; every wait is a bounded number
// of Reactor::poll calls.
#include "apps/frame_echo_server.h"
#include "core/connection_driver.h"
#include "core/faulty_sys.h"
#include "core/linux_sys.h"
#include "core/reactor.h"
#include "tests/pitfalls/naive_policy.h"
#include "tests/pitfalls/policy_support.h"
#include "tests/support/loopback.h"
#include "tests/support/manual_clock_sys.h"

#include <sys/epoll.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace eagain;
using namespace eagain::test;

namespace {

// ---------------------------------------------------------------------------
// Verdicts

// A check's judgement, with every reason it failed.
struct Verdict {
    bool holds = true;
    std::string why;

    void refute(const std::string& reason) {
        holds = false;
        why += why.empty() ? reason : "; " + reason;
    }
};

void check_holds(const Verdict& verdict) {
    INFO(verdict.why);
    CHECK(verdict.holds);
}

// The check fails, and for the reason the pitfall predicts.
void check_refuted(const Verdict& verdict, const std::string& expected_reason) {
    INFO(verdict.why);
    CHECK_FALSE(verdict.holds);
    CHECK_THAT(verdict.why, Catch::Contains(expected_reason));
}

// "+90s", "+200ms", "+1500123456ns": the coarsest exact unit.
std::string show(Nanos t) {
    if (t % 1s == Nanos{0})
        return "+" + std::to_string(t / 1s) + "s";
    if (t % 1ms == Nanos{0})
        return "+" + std::to_string(t / 1ms) + "ms";
    return "+" + std::to_string(t.count()) + "ns";
}

// ---------------------------------------------------------------------------
// Worlds and fixture sockets

// The code under test sees WitnessSys -> FaultySys -> Base.
template <class Base>
struct World {
    explicit World(std::uint64_t fault_seed = 1) : faulty(base, fault_seed), witness(faulty), reactor(witness) {
        REQUIRE(reactor.open_error() == 0);
    }
    Base base;
    FaultySys faulty;
    WitnessSys witness;
    Reactor reactor;
};
using RealWorld = World<LinuxSys>;
using VirtualWorld = World<ManualClockSys>;

// Sockets a scenario sets up around the code under test, made through a
// plain LinuxSys (so the witness does not count them), closed at the end.
class FixtureSockets {
public:
    FixtureSockets() = default;
    ~FixtureSockets() {
        for (const int fd : fds_)
            (void)sys_.close(fd);
    }
    FixtureSockets(const FixtureSockets&) = delete;
    FixtureSockets& operator=(const FixtureSockets&) = delete;

    LinuxSys& sys() noexcept { return sys_; }
    SockAddr address(int fd) { return local_address(sys_, fd); }

    // Holds a loopback port nobody listens on (yet): bound, not listening.
    int bound_not_listening() {
        const FdResult fd = sys_.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        REQUIRE(fd.ok());
        fds_.push_back(fd.value);
        REQUIRE(sys_.bind(fd.value, SockAddr::ipv4_loopback(0)).ok());
        return fd.value;
    }
    int listener(int backlog) {
        const int fd = listen_loopback(sys_, backlog);
        fds_.push_back(fd);
        return fd;
    }
    // A non-blocking client socket, connected (waited for, bounded);
    // socket_buffer_bytes sets SO_RCVBUF and SO_SNDBUF first.
    int connected_to(const SockAddr& address, std::optional<int> socket_buffer_bytes = std::nullopt) {
        const FdResult fd = sys_.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        REQUIRE(fd.ok());
        fds_.push_back(fd.value);
        if (socket_buffer_bytes) {
            REQUIRE(sys_.set_int_option(fd.value, SOL_SOCKET, SO_RCVBUF, *socket_buffer_bytes).ok());
            REQUIRE(sys_.set_int_option(fd.value, SOL_SOCKET, SO_SNDBUF, *socket_buffer_bytes).ok());
        }
        const VoidResult r = sys_.connect(fd.value, address);
        REQUIRE((r.ok() || r.error == EINPROGRESS));
        REQUIRE((wait_once(sys_, fd.value, EPOLLOUT) & EPOLLOUT) != 0);
        REQUIRE(sys_.socket_error(fd.value).value == 0);
        return fd.value;
    }

private:
    LinuxSys sys_;
    std::vector<int> fds_;
};

// ---------------------------------------------------------------------------
// Bounded waiting

// Polls until done() holds, at most max_polls times, each waiting at most step.
template <class Done>
bool poll_until(Reactor& reactor, Done&& done, int max_polls, Nanos step) {
    for (int i = 0; i < max_polls; ++i) {
        if (done())
            return true;
        REQUIRE(reactor.poll(step).ok());
    }
    return done();
}

// Virtual time: polls until the clock reaches end. A poll with no socket
// ready moves the ManualClockSys clock to the next timer, or to end.
bool run_until(Reactor& reactor, Sys& clock, Nanos end, int max_polls) {
    for (int i = 0; i < max_polls; ++i) {
        const Nanos now = clock.now();
        if (now >= end)
            return true;
        REQUIRE(reactor.poll(end - now).ok());
    }
    return clock.now() >= end;
}

// ===========================================================================
// 1, 2. Non-blocking connect: refused, timed out
// ===========================================================================

// What a client told its app about one connect, and what it left open.
struct ConnectOutcome {
    Nanos started_at{0};
    Nanos observed_until{0};
    bool told_connected = false;
    std::optional<ClosedRecord> told_closed;
    std::size_t sockets_left_open = 0;
    std::vector<WitnessSys::ConnectCall> connects;
};

// Pitfall 1: EPOLLOUT also reports a refused connect; only SO_ERROR (or
// connect()'s own result) says it failed.
Verdict refused_connect_is_reported(const ConnectOutcome& outcome) {
    Verdict v;
    if (outcome.told_connected)
        v.refute("the app was told the connection is established");
    if (!outcome.told_closed) {
        v.refute("the app was never told the connect failed");
    } else if (outcome.told_closed->info != CloseInfo{CloseReason::connect_failed, ECONNREFUSED, {}}) {
        v.refute("closed with " + describe(outcome.told_closed->info) + ", not connect_failed (ECONNREFUSED)");
    }
    if (outcome.sockets_left_open != 0)
        v.refute(std::to_string(outcome.sockets_left_open) + " socket(s) left open");
    return v;
}

// Pitfall 2: a connect the kernel never completes must end at
// connect_timeout, with ETIMEDOUT, its socket closed.
Verdict connect_times_out(const ConnectOutcome& outcome, Nanos timeout) {
    Verdict v;
    if (outcome.told_connected)
        v.refute("the app was told the connection is established");
    if (!outcome.told_closed) {
        v.refute("still connecting at " + show(outcome.observed_until - outcome.started_at) + ", the timeout was " +
                 show(timeout));
    } else {
        if (outcome.told_closed->info != CloseInfo{CloseReason::connect_timeout, ETIMEDOUT, {}})
            v.refute("closed with " + describe(outcome.told_closed->info) + ", not connect_timeout (ETIMEDOUT)");
        if (outcome.told_closed->at - outcome.started_at != timeout)
            v.refute("closed at " + show(outcome.told_closed->at - outcome.started_at) + ", not at " + show(timeout));
    }
    if (outcome.sockets_left_open != 0)
        v.refute(std::to_string(outcome.sockets_left_open) + " socket(s) left open");
    return v;
}

constexpr Nanos short_connect_timeout = 200ms;

ConnectionConfig connect_config() {
    ConnectionConfig config;
    config.reconnect = false;
    config.connect_timeout = short_connect_timeout;
    return config;
}

// How long to watch a connect: real worlds in 10 ms polls (at most 2 s),
// virtual ones in 50 ms polls up to ten times the timeout.
struct Watch {
    int max_polls = 200;
    Nanos step = 10ms;
};
constexpr Watch real_watch{200, 10ms};
constexpr Watch virtual_watch{40, 50ms};

template <class W>
ConnectOutcome connect_with_driver(W& world, const SockAddr& target, Watch watch) {
    ClientRecorder app(world.witness);
    ConnectionDriver driver(world.reactor, app, ConnectionRole::client, connect_config(), TransportOptions{}, 1);
    ConnectOutcome outcome;
    outcome.started_at = world.witness.now();
    driver.start_connect(target);
    (void)poll_until(
        world.reactor, [&] { return !app.closed().empty() || !app.established_at().empty(); }, watch.max_polls,
        watch.step);
    outcome.observed_until = world.witness.now();
    outcome.told_connected = !app.established_at().empty();
    if (!app.closed().empty())
        outcome.told_closed = app.closed().front();
    outcome.sockets_left_open = world.witness.open_sockets().size();
    outcome.connects = world.witness.connects();
    return outcome;
}

template <class W>
ConnectOutcome connect_naively(W& world, const SockAddr& target, Watch watch) {
    NaiveConnector naive(world.reactor);
    ConnectOutcome outcome;
    outcome.started_at = world.witness.now();
    naive.start_connect(target);
    (void)poll_until(
        world.reactor, [&] { return naive.told_connected(); }, watch.max_polls, watch.step);
    outcome.observed_until = world.witness.now();
    outcome.told_connected = naive.told_connected();
    outcome.sockets_left_open = world.witness.open_sockets().size();
    outcome.connects = world.witness.connects();
    return outcome;
}

void judge_refused_connect(RealWorld& world, const SockAddr& target) {
    SECTION("ConnectionDriver: on_closed with connect_failed (ECONNREFUSED), socket closed") {
        check_holds(refused_connect_is_reported(connect_with_driver(world, target, real_watch)));
    }
    SECTION("naive: the first EPOLLOUT is taken for success") {
        check_refuted(refused_connect_is_reported(connect_naively(world, target, real_watch)),
                      "the app was told the connection is established");
    }
}

TEST_CASE("a refused non-blocking connect reaches the app as connect_failed ECONNREFUSED and its socket is closed",
          "[pitfall][policy][connect]") {
    FixtureSockets fixture;
    RealWorld world;
    SECTION("the kernel refuses: the port is bound but nobody listens") {
        // Linux 6.x on loopback: connect() says EINPROGRESS, then EPOLLOUT |
        // EPOLLERR | EPOLLHUP with SO_ERROR = ECONNREFUSED.
        judge_refused_connect(world, fixture.address(fixture.bound_not_listening()));
    }
    SECTION("FaultySys refuses, in front of a port that does listen") {
        FaultRule refuse;
        refuse.call = SysCall::connect;
        refuse.fault = FaultKind::econnrefused;
        REQUIRE(world.faulty.add_rule(refuse) == RuleError::none);
        judge_refused_connect(world, fixture.address(fixture.listener(8)));
    }
}

// A connect the kernel never completes, on loopback: a listener with backlog
// 0 holds one connection in its accept queue, and that slot is taken by a
// connection nobody accepts. While the queue is full Linux drops every SYN
// ("listen overflow"), so the next connect stays in SYN-SENT; the client
// would resend its SYN after a second of real time, which a ManualClockSys
// run never lets pass. The test checks it held: connect() said EINPROGRESS.
SockAddr black_hole(FixtureSockets& fixture) {
    const int listener = fixture.listener(0);
    const SockAddr address = fixture.address(listener);
    (void)fixture.connected_to(address);
    REQUIRE((wait_once(fixture.sys(), listener, EPOLLIN) & EPOLLIN) != 0);  // the one slot is taken
    return address;
}

TEST_CASE("a non-blocking connect that never completes ends at connect_timeout with ETIMEDOUT, its socket closed",
          "[pitfall][policy][connect]") {
    FixtureSockets fixture;
    VirtualWorld world;
    const SockAddr target = black_hole(fixture);

    SECTION("ConnectionDriver: connect_timeout at exactly +200 ms") {
        const ConnectOutcome outcome = connect_with_driver(world, target, virtual_watch);
        REQUIRE(outcome.connects.size() == 1);
        CHECK(outcome.connects[0].error == EINPROGRESS);  // the SYN was dropped, not refused
        check_holds(connect_times_out(outcome, short_connect_timeout));
    }
    SECTION("naive: no timer, still connecting ten timeouts later") {
        const ConnectOutcome outcome = connect_naively(world, target, virtual_watch);
        REQUIRE(outcome.connects.size() == 1);
        CHECK(outcome.connects[0].error == EINPROGRESS);
        CHECK(outcome.observed_until - outcome.started_at >= 10 * short_connect_timeout);
        check_refuted(connect_times_out(outcome, short_connect_timeout),
                      "still connecting at +2s, the timeout was +200ms");
    }
}

// ===========================================================================
// 3. Heartbeat and dead peer
// ===========================================================================

constexpr std::uint32_t heartbeat_cmd = 99;
constexpr std::uint32_t app_cmd = 1;
constexpr Nanos heartbeat_interval = 30s;
constexpr std::uint32_t dead_peer_intervals = 3;

ConnectionConfig heartbeat_config() {
    ConnectionConfig config;
    config.heartbeat_idle_timeout = heartbeat_interval;
    config.heartbeat_cmd = heartbeat_cmd;
    config.dead_peer_intervals = dead_peer_intervals;
    config.connect_timeout = 1s;
    config.reconnect = false;
    return config;
}

std::vector<std::uint8_t> body_of(std::uint32_t seq) {
    std::vector<std::uint8_t> body(16);
    for (std::size_t i = 0; i < body.size(); ++i)
        body[i] = static_cast<std::uint8_t>(seq * 7 + i);
    return body;
}

// What one client did over a heartbeat scenario; times are from the moment
// it was established.
struct HeartbeatRun {
    std::vector<Nanos> pings_at_peer;
    std::vector<Nanos> heartbeats_sent;  // the Connection's heartbeat_sent events (ConnectionDriver only)
    std::uint64_t frames_sent = 0;
    std::uint64_t frames_echoed = 0;
    std::optional<ClosedRecord> closed;  // at: from establishment, too
    Nanos observed_until{0};
    std::size_t sockets_left_open = 0;
    bool peer_saw_eof = false;
};

struct HeartbeatScenario {
    PeerBehaviour peer;
    Nanos idle_phase = 100s;           // no app traffic before this
    std::uint32_t traffic_frames = 0;  // then one app frame every traffic_every
    Nanos traffic_every = 10s;
    Nanos total = 700s;
};

// Client: ConnectionDriver or NaiveHeartbeatClient (same constructor/calls).
template <class Client>
HeartbeatRun run_heartbeat(const HeartbeatScenario& scenario) {
    FixtureSockets fixture;
    VirtualWorld world;
    const int listener = fixture.listener(8);
    RawServer server(world.reactor, world.base, listener, scenario.peer);
    REQUIRE(server.registered());
    ClientRecorder app(world.witness);
    Client client(world.reactor, app, ConnectionRole::client, heartbeat_config(), TransportOptions{}, 1);

    client.start_connect(fixture.address(listener));
    // Loopback handshakes complete within the connect call: no time passes.
    REQUIRE(poll_until(
        world.reactor, [&] { return !app.established_at().empty() && server.peer_count() == 1; }, 20, 0ms));
    const Nanos t0 = app.established_at().front();

    HeartbeatRun run;
    std::function<void()> send_next = [&] {
        const std::uint32_t seq = static_cast<std::uint32_t>(run.frames_sent);
        if (client.send_frame(DefaultHeader{app_cmd, seq, 0, 0, 0}, body_of(seq)) == SendError::none)
            ++run.frames_sent;
        if (run.frames_sent < scenario.traffic_frames)
            world.reactor.add_timer(world.witness.now() + scenario.traffic_every, send_next);
    };
    if (scenario.traffic_frames > 0)
        world.reactor.add_timer(t0 + scenario.idle_phase, send_next);

    CHECK(run_until(world.reactor, world.witness, t0 + scenario.total, 10'000));

    for (const Nanos at : server.peer(0).ping_times())
        run.pings_at_peer.push_back(at - t0);
    for (const Nanos at : app.heartbeats_sent())
        run.heartbeats_sent.push_back(at - t0);
    run.frames_echoed = app.frames();
    if (!app.closed().empty()) {
        run.closed = app.closed().front();
        run.closed->at -= t0;
    }
    run.observed_until = world.witness.now() - t0;
    run.sockets_left_open = world.witness.open_sockets().size();
    run.peer_saw_eof = server.peer(0).saw_eof();
    CHECK(server.peer(0).short_sends() == 0);
    CHECK(app.overflow() == 0);
    return run;
}

// Pitfall 3: a ping goes out after heartbeat_interval with nothing sent or
// received, at exactly +30 s, +60 s, ... of silence, and never while frames
// flow.
Verdict heartbeat_only_when_idle(const HeartbeatRun& run, const HeartbeatScenario& scenario) {
    Verdict v;
    std::vector<Nanos> expected_idle;
    for (Nanos at = heartbeat_interval; at <= scenario.idle_phase; at += heartbeat_interval)
        expected_idle.push_back(at);
    std::vector<Nanos> idle;
    std::vector<Nanos> busy;
    for (const Nanos at : run.pings_at_peer)
        (at <= scenario.idle_phase ? idle : busy).push_back(at);
    if (idle != expected_idle) {
        std::string seen;
        for (const Nanos at : idle)
            seen += " " + show(at);
        v.refute("pings while idle at" + (seen.empty() ? std::string(" (none)") : seen) + ", expected every " +
                 show(heartbeat_interval));
    }
    if (!busy.empty())
        v.refute(std::to_string(busy.size()) + " ping(s) while frames flowed, the first at " + show(busy.front()));
    if (run.frames_echoed != scenario.traffic_frames)
        v.refute(std::to_string(run.frames_echoed) + " of " + std::to_string(scenario.traffic_frames) +
                 " frames echoed");
    if (run.closed)
        v.refute("the connection ended: " + describe(run.closed->info));
    return v;
}

// Pitfall 3b: a peer that answers nothing is declared dead after
// dead_peer_intervals heartbeat intervals of silence, at exactly that time,
// and its socket closed.
Verdict dead_peer_is_closed(const HeartbeatRun& run) {
    Verdict v;
    const Nanos expected_at = heartbeat_interval * dead_peer_intervals;
    if (!run.closed) {
        v.refute("still open at " + show(run.observed_until) + " with a peer silent since +0s");
    } else {
        if (run.closed->info.reason != CloseReason::dead_peer)
            v.refute("closed with " + describe(run.closed->info) + ", not dead_peer");
        if (run.closed->at != expected_at)
            v.refute("closed at " + show(run.closed->at) + ", not at " + show(expected_at));
    }
    if (run.sockets_left_open != 0)
        v.refute(std::to_string(run.sockets_left_open) + " socket(s) left open");
    if (!run.peer_saw_eof)
        v.refute("the peer never saw the connection end");
    return v;
}

TEST_CASE("heartbeat: pings at exactly +30 s, +60 s, +90 s of silence and none in 10 minutes of a frame every 10 s",
          "[pitfall][policy][heartbeat]") {
    HeartbeatScenario scenario;
    scenario.peer = PeerBehaviour{heartbeat_cmd, true, true};
    scenario.idle_phase = 100s;
    scenario.traffic_frames = 60;  // at +100 s, +110 s, ..., +690 s
    scenario.traffic_every = 10s;
    scenario.total = 700s;

    SECTION("ConnectionDriver: pings only after idle_timeout of silence") {
        const HeartbeatRun run = run_heartbeat<ConnectionDriver>(scenario);
        check_holds(heartbeat_only_when_idle(run, scenario));
        // The Connection's own events name the same exact times.
        CHECK(run.heartbeats_sent == run.pings_at_peer);
    }
    SECTION("naive: a fixed 30 s timer pings whatever the traffic") {
        check_refuted(heartbeat_only_when_idle(run_heartbeat<NaiveHeartbeatClient>(scenario), scenario),
                      "20 ping(s) while frames flowed, the first at +120s");
    }
}

TEST_CASE("dead peer: a peer that never answers is closed with dead_peer at exactly 3 heartbeat intervals",
          "[pitfall][policy][heartbeat]") {
    HeartbeatScenario scenario;
    scenario.peer = PeerBehaviour{heartbeat_cmd, false, false};
    scenario.traffic_frames = 0;
    scenario.total = 300s;

    SECTION("ConnectionDriver: pings at +30 s and +60 s go unanswered; closed at +90 s") {
        const HeartbeatRun run = run_heartbeat<ConnectionDriver>(scenario);
        check_holds(dead_peer_is_closed(run));
        CHECK(run.pings_at_peer == std::vector<Nanos>{30s, 60s});
    }
    SECTION("naive: pings forever, never decides the peer is dead") {
        check_refuted(dead_peer_is_closed(run_heartbeat<NaiveHeartbeatClient>(scenario)), "still open at +300s");
    }
}

// ===========================================================================
// 4. Reconnect backoff
// ===========================================================================

struct BackoffPolicy {
    Nanos initial = 1s;
    Nanos cap = 8s;
    std::uint32_t jitter_percent = 0;
};

ConnectionConfig backoff_config(const BackoffPolicy& policy) {
    ConnectionConfig config;
    config.reconnect = true;
    config.reconnect_initial_delay = policy.initial;
    config.reconnect_max_delay = policy.cap;
    config.reconnect_jitter_percent = policy.jitter_percent;
    config.reconnect_attempts_max = 0;
    config.connect_timeout = 5s;
    return config;
}

// The delays retry k (1-based) may wait: initial * 2^(k-1) capped, then
// ±jitter, then capped again (connection.h). The reactor wakes on whole
// milliseconds, so a jittered attempt may come up to 1 ms after its time.
struct DelayBounds {
    Nanos low{0};
    Nanos high{0};
};
DelayBounds delay_bounds(const BackoffPolicy& policy, std::uint32_t retry) {
    Nanos base = policy.initial;
    for (std::uint32_t k = 1; k < retry && base < policy.cap; ++k)
        base = std::min(policy.cap, base * 2);
    const Nanos spread{base.count() * policy.jitter_percent / 100};
    DelayBounds bounds{base - spread, std::min(base + spread, policy.cap)};
    if (policy.jitter_percent > 0)
        bounds.high += 1ms;
    return bounds;
}

// What a reconnecting client did; times from its first connect().
struct BackoffRun {
    std::vector<Nanos> attempts;
    std::vector<Nanos> established;
    std::vector<ClosedRecord> closed;
    std::vector<Nanos> scheduled_delays;  // reconnect_at - at of each reconnect_scheduled (ConnectionDriver only)
    std::size_t sockets_left_open = 0;
};

struct BackoffScenario {
    Nanos window = 40s;
    std::optional<Nanos> server_up_at;     // listen() on the port then
    std::optional<Nanos> server_drops_at;  // and close the first connection accepted then
};

// make(reactor, app) -> unique_ptr to a client with start_connect(address).
template <class Make>
BackoffRun run_backoff(Make make, const BackoffScenario& scenario) {
    FixtureSockets fixture;
    VirtualWorld world;
    const int port = fixture.bound_not_listening();
    ClientRecorder app(world.witness);
    std::optional<RawServer> server;
    auto client = make(world.reactor, app);

    const Nanos t0 = world.witness.now();
    bool listening = false;
    if (scenario.server_up_at) {
        world.reactor.add_timer(t0 + *scenario.server_up_at, [&] {
            listening = world.base.listen(port, 8).ok();
            server.emplace(world.reactor, world.base, port, PeerBehaviour{});
        });
    }
    if (scenario.server_drops_at) {
        world.reactor.add_timer(t0 + *scenario.server_drops_at, [&] {
            if (server && server->peer_count() > 0)
                server->peer(0).close();
        });
    }
    client->start_connect(fixture.address(port));
    CHECK(run_until(world.reactor, world.witness, t0 + scenario.window, 10'000));
    CHECK(listening == scenario.server_up_at.has_value());

    BackoffRun run;
    for (const Nanos at : world.witness.connect_times())
        run.attempts.push_back(at - t0);
    for (const Nanos at : app.established_at())
        run.established.push_back(at - t0);
    for (ClosedRecord closed : app.closed()) {
        closed.at -= t0;
        run.closed.push_back(closed);
    }
    for (const Event& scheduled : app.reconnects_scheduled())
        run.scheduled_delays.push_back(scheduled.reconnect_at - scheduled.at);
    client.reset();  // the open sockets are judged with the client gone
    run.sockets_left_open = world.witness.open_sockets().size();
    CHECK(world.witness.overflow() == 0);
    return run;
}

auto make_driver(const BackoffPolicy& policy, std::uint64_t seed) {
    return [policy, seed](Reactor& reactor, ClientRecorder& app) {
        return std::make_unique<ConnectionDriver>(reactor, app, ConnectionRole::client, backoff_config(policy),
                                                  TransportOptions{}, seed);
    };
}

auto make_naive(const BackoffPolicy& policy, NaiveDelayRule rule) {
    return [policy, rule](Reactor& reactor, ClientRecorder& app) {
        return std::make_unique<NaiveReconnectClient>(reactor, app, backoff_config(policy), TransportOptions{}, 1,
                                                      rule);
    };
}

std::string show_all(const std::vector<Nanos>& times) {
    std::string text;
    for (const Nanos at : times)
        text += " " + show(at);
    return text;
}

// Pitfall 4: with the server down, retry k comes initial * 2^(k-1) (capped,
// ±jitter) after the attempt before it: none sooner, none missing up to the
// end of the window.
Verdict attempts_back_off(const std::vector<Nanos>& attempts, const BackoffPolicy& policy, Nanos window) {
    Verdict v;
    if (attempts.empty() || attempts.front() != Nanos{0}) {
        v.refute("the first connect was not made at once");
        return v;
    }
    for (std::size_t k = 1; k < attempts.size(); ++k) {
        const DelayBounds allowed = delay_bounds(policy, static_cast<std::uint32_t>(k));
        const Nanos gap = attempts[k] - attempts[k - 1];
        if (gap < allowed.low || gap > allowed.high) {
            v.refute("retry " + std::to_string(k) + " came " + show(gap) + " after the attempt before it, allowed " +
                     show(allowed.low) + ".." + show(allowed.high) + " (attempts at" + show_all(attempts) + ")");
            return v;
        }
    }
    const DelayBounds next = delay_bounds(policy, static_cast<std::uint32_t>(attempts.size()));
    if (window - attempts.back() > next.high)
        v.refute("no attempt in the " + show(window - attempts.back()) + " after the last one");
    return v;
}

// Pitfall 4b: the first attempt once the server is up connects, and after a
// connection was made, losing it retries after the initial delay again.
Verdict backoff_restarts_after_success(const BackoffRun& run, Nanos server_up_at, Nanos drop_at, Nanos initial) {
    Verdict v;
    const auto first_from = [&run](Nanos from) -> std::optional<Nanos> {
        for (const Nanos at : run.attempts) {
            if (at >= from)
                return at;
        }
        return std::nullopt;
    };
    const auto established_at = [&run](Nanos at) {
        return std::find(run.established.begin(), run.established.end(), at) != run.established.end();
    };
    const std::optional<Nanos> up = first_from(server_up_at);
    if (!up || !established_at(*up))
        v.refute("the first attempt after the server started did not connect");
    const bool loss_seen = std::any_of(run.closed.begin(), run.closed.end(), [&](const ClosedRecord& closed) {
        return closed.at == drop_at && closed.info.reason == CloseReason::peer_closed && closed.reconnecting;
    });
    if (!loss_seen)
        v.refute("the loss at " + show(drop_at) + " was not reported as peer_closed with a retry to follow");
    const std::optional<Nanos> retry = first_from(drop_at);
    if (!retry) {
        v.refute("no attempt after the loss");
    } else if (*retry - drop_at != initial) {
        v.refute("the first retry after the loss came " + show(*retry - drop_at) + " after it, not the initial " +
                 show(initial));
    } else if (!established_at(*retry)) {
        v.refute("the retry after the loss did not connect");
    }
    return v;
}

TEST_CASE("reconnect: with the server down, attempts back off 1 s, 2 s, 4 s, 8 s, 8 s ... from the first",
          "[pitfall][policy][backoff]") {
    BackoffPolicy policy;
    policy.initial = 1s;
    policy.cap = 8s;
    BackoffScenario scenario;
    scenario.window = 40s;

    SECTION("ConnectionDriver, no jitter: exactly +0, +1, +3, +7, +15, +23, +31, +39 s") {
        const BackoffRun run = run_backoff(make_driver(policy, 1), scenario);
        check_holds(attempts_back_off(run.attempts, policy, scenario.window));
        CHECK(run.attempts == std::vector<Nanos>{0s, 1s, 3s, 7s, 15s, 23s, 31s, 39s});
        CHECK(run.established.empty());
        REQUIRE(run.closed.size() == run.attempts.size());
        for (const ClosedRecord& closed : run.closed) {
            CHECK(closed.info == CloseInfo{CloseReason::connect_failed, ECONNREFUSED, {}});
            CHECK(closed.reconnecting);
        }
        CHECK(run.sockets_left_open == 0);
    }
    SECTION("ConnectionDriver, 20% jitter: within bounds, the same per seed, different across seeds") {
        policy.jitter_percent = 20;
        const BackoffRun first = run_backoff(make_driver(policy, 7), scenario);
        const BackoffRun again = run_backoff(make_driver(policy, 7), scenario);
        const BackoffRun other = run_backoff(make_driver(policy, 8), scenario);
        check_holds(attempts_back_off(first.attempts, policy, scenario.window));
        check_holds(attempts_back_off(other.attempts, policy, scenario.window));
        CHECK(first.attempts == again.attempts);
        CHECK(first.attempts != other.attempts);
        // The Connection's own delays are exact: no millisecond rounding.
        REQUIRE(first.scheduled_delays.size() == first.attempts.size());
        for (std::size_t k = 0; k < first.scheduled_delays.size(); ++k) {
            const DelayBounds allowed = delay_bounds(policy, static_cast<std::uint32_t>(k + 1));
            CHECK(first.scheduled_delays[k] >= allowed.low);
            CHECK(first.scheduled_delays[k] <= allowed.high - 1ms);
        }
    }
    SECTION("naive: a fixed 1 s between attempts") {
        const BackoffRun run = run_backoff(make_naive(policy, fixed_delay(1s)), scenario);
        CHECK(run.attempts.size() == 41);
        check_refuted(attempts_back_off(run.attempts, policy, scenario.window),
                      "retry 2 came +1s after the attempt before it, allowed +2s..+2s");
    }
}

TEST_CASE("reconnect: the first attempt after the server starts connects, and after a loss backoff starts over at 1 s",
          "[pitfall][policy][backoff]") {
    BackoffPolicy policy;
    BackoffScenario scenario;
    scenario.window = 40s;
    scenario.server_up_at = 10s;     // attempts at +0, +1, +3, +7 refused; +15 connects
    scenario.server_drops_at = 20s;  // the server closes that connection

    SECTION("ConnectionDriver: connects at +15 s, retries at +21 s") {
        const BackoffRun run = run_backoff(make_driver(policy, 1), scenario);
        check_holds(
            backoff_restarts_after_success(run, *scenario.server_up_at, *scenario.server_drops_at, policy.initial));
        CHECK(run.attempts == std::vector<Nanos>{0s, 1s, 3s, 7s, 15s, 21s});
        CHECK(run.established == std::vector<Nanos>{15s, 21s});
    }
    SECTION("naive: doubling that never starts over waits 8 s after the loss") {
        const BackoffRun run =
            run_backoff(make_naive(policy, doubling_never_reset(policy.initial, policy.cap)), scenario);
        check_refuted(
            backoff_restarts_after_success(run, *scenario.server_up_at, *scenario.server_drops_at, policy.initial),
            "the first retry after the loss came +8s after it");
    }
}

// ===========================================================================
// 5. Hostile frames
// ===========================================================================

constexpr std::uint64_t echo_max_frame_bytes = 64U * 1024U;
constexpr std::uint32_t good_frames_before = 5;
constexpr std::uint32_t good_frames_total = 20;

// A header whose length field the decoder must refuse, and how.
struct HostileHeader {
    std::uint32_t body_len = 0;
    FrameError error;
};
const std::array<HostileHeader, 2> hostile_headers{{
    {0xffffffffU, FrameError{FrameErrorKind::negative_length, 8, 0xffffffffU}},  // -1 as int32
    {static_cast<std::uint32_t>(echo_max_frame_bytes),  // with the header, 20 bytes over the limit
     FrameError{FrameErrorKind::too_large, 8, echo_max_frame_bytes}},
}};

struct HostileRun {
    std::array<bool, 2> hostile_ended{};  // EOF or a reset seen by the hostile client
    std::array<SockAddr, 2> hostile_address;
    std::vector<std::string> log;
    std::uint64_t good_echoes = 0;
    std::uint64_t good_mismatches = 0;
    bool good_open = false;
};

// The server ended the connection: recv() sees EOF or a reset.
bool ended_by_server(Sys& sys, int fd) {
    std::array<std::uint8_t, 64> buffer{};
    const SizeResult r = sys.recv(fd, buffer, MSG_DONTWAIT);
    if (r.ok())
        return r.value == 0;
    return !would_block(r.error) && r.error != EINTR;
}

// make(reactor, log) -> unique_ptr to a server with open(), local_address().
template <class Make>
HostileRun run_hostile(Make make) {
    FixtureSockets fixture;
    RealWorld world;
    HostileRun run;
    auto server = make(world.reactor, [&run](std::string_view line) {
        if (run.log.size() < record_capacity)
            run.log.emplace_back(line);
    });
    REQUIRE(server->open().ok());
    const SockAddr address = server->local_address();

    // The well-behaved client sends frame seq once the echo of seq - 1 is back.
    ClientRecorder app(world.witness);
    ConnectionConfig config;
    config.max_frame_bytes = echo_max_frame_bytes;
    ConnectionDriver good(world.reactor, app, ConnectionRole::client, config, TransportOptions{}, 1);
    std::uint32_t allowed = good_frames_before;
    std::uint32_t next_to_send = 0;
    const auto send_next = [&](ConnectionDriver& driver) {
        if (next_to_send < allowed &&
            driver.send_frame(DefaultHeader{app_cmd, next_to_send, 0, 0, 0}, body_of(next_to_send)) == SendError::none)
            ++next_to_send;
    };
    app.on_frame_hook = [&](ConnectionDriver& driver, const Frame& frame) {
        const DefaultHeader header = DefaultHeader::parse(frame.header.first<DefaultHeader::size_bytes>());
        const std::vector<std::uint8_t> expected = body_of(static_cast<std::uint32_t>(run.good_echoes));
        if (header.cmd != app_cmd || header.seq != run.good_echoes ||
            !std::equal(frame.body.begin(), frame.body.end(), expected.begin(), expected.end()))
            ++run.good_mismatches;
        ++run.good_echoes;
        send_next(driver);
    };
    good.start_connect(address);
    REQUIRE(poll_until(
        world.reactor, [&] { return !app.established_at().empty(); }, 200, 10ms));
    send_next(good);
    REQUIRE(poll_until(
        world.reactor, [&] { return run.good_echoes >= good_frames_before; }, 200, 10ms));

    // Two hostile clients, each one header.
    std::array<int, 2> hostile{};
    for (std::size_t i = 0; i < hostile.size(); ++i) {
        hostile[i] = fixture.connected_to(address);
        run.hostile_address[i] = fixture.address(hostile[i]);
        const DefaultHeader header{app_cmd, 1, hostile_headers[i].body_len, 0, 0};
        const std::array<std::uint8_t, DefaultHeader::size_bytes> bytes = header.bytes();
        REQUIRE(fixture.sys().send(hostile[i], bytes, MSG_NOSIGNAL).value == bytes.size());
    }
    const auto all_ended = [&] {
        for (std::size_t i = 0; i < hostile.size(); ++i) {
            if (!run.hostile_ended[i])
                run.hostile_ended[i] = ended_by_server(fixture.sys(), hostile[i]);
        }
        return std::all_of(run.hostile_ended.begin(), run.hostile_ended.end(), [](bool ended) { return ended; });
    };
    (void)poll_until(world.reactor, all_ended, 50, 10ms);

    // The well-behaved client goes on.
    allowed = good_frames_total;
    send_next(good);
    (void)poll_until(
        world.reactor, [&] { return run.good_echoes >= good_frames_total; }, 200, 10ms);
    run.good_open = good.connection().state() == ConnectionState::established;
    return run;
}

// Pitfall 5: a header whose length field is negative or above max_frame
// closes that connection at once with hostile_frame and the FrameError,
// logged with the peer's address; other connections carry on.
Verdict hostile_connections_closed(const HostileRun& run) {
    Verdict v;
    for (std::size_t i = 0; i < hostile_headers.size(); ++i) {
        const std::string expected_line = "closed " + run.hostile_address[i].to_string() + ": " +
                                          describe(CloseInfo{CloseReason::hostile_frame, 0, hostile_headers[i].error});
        if (!run.hostile_ended[i])
            v.refute("the hostile connection from " + run.hostile_address[i].to_string() + " is still open");
        if (std::find(run.log.begin(), run.log.end(), expected_line) == run.log.end())
            v.refute("no log line \"" + expected_line + "\"");
    }
    if (run.good_echoes != good_frames_total || run.good_mismatches != 0)
        v.refute("the well-behaved client got " + std::to_string(run.good_echoes) + " of " +
                 std::to_string(good_frames_total) + " echoes, " + std::to_string(run.good_mismatches) + " wrong");
    if (!run.good_open)
        v.refute("the well-behaved client's connection ended");
    return v;
}

TEST_CASE("hostile frames: a negative and an oversized length each close only their connection, logged with the peer",
          "[pitfall][policy][hostile]") {
    SECTION("FrameEchoServer: hostile_frame with the FrameError; the good client keeps echoing") {
        const HostileRun run = run_hostile([](Reactor& reactor, FrameEchoServer::Log log) {
            EchoServerOptions options;
            options.connection.max_frame_bytes = echo_max_frame_bytes;
            return std::make_unique<FrameEchoServer>(reactor, options, std::move(log));
        });
        check_holds(hostile_connections_closed(run));
    }
    SECTION("naive: trusts the length field and waits for 4 GiB") {
        const HostileRun run = run_hostile([](Reactor& reactor, NaiveFrameServer::Log log) {
            return std::make_unique<NaiveFrameServer>(reactor, std::move(log));
        });
        check_refuted(hostile_connections_closed(run), "is still open");
        // What it did instead.
        CHECK(std::find(run.log.begin(), run.log.end(),
                        "wanted 4294967295 bytes from " + run.hostile_address[0].to_string()) != run.log.end());
    }
}

// ===========================================================================
// 6. Backpressure
// ===========================================================================

constexpr std::size_t flood_body_bytes = 1024;
constexpr std::size_t flood_frame_bytes = DefaultHeader::size_bytes + flood_body_bytes;
// Far above what the kernel buffers between the flooder and a server that
// stopped reading (the server's send buffer autotunes up to tcp_wmem's 4 MiB;
// about 8 MiB went in when the flooder's own buffers autotuned too).
constexpr std::uint64_t flood_cap_bytes = 16U * 1024U * 1024U;

// A client that sends frames as fast as the kernel takes them and never
// reads. Its socket buffers are tiny (fixed, so not autotuned): the echoes
// back up at once, and little of the flood waits on its side.
class Flooder {
public:
    Flooder(FixtureSockets& fixture, const SockAddr& server) : sys_(fixture.sys()) {
        fd_ = fixture.connected_to(server, 4096);
        address_ = fixture.address(fd_);
        ByteBuffer frames;
        for (std::uint32_t seq = 0; seq < frames_per_block; ++seq) {
            const std::vector<std::uint8_t> body(flood_body_bytes, static_cast<std::uint8_t>(seq));
            REQUIRE(encode_frame(FrameSpec{}, DefaultHeader{app_cmd, seq, 0, 0, 0}.bytes(), body, frames) ==
                    EncodeError::none);
        }
        block_.assign(frames.readable().begin(), frames.readable().end());
    }

    const SockAddr& address() const noexcept { return address_; }
    std::uint64_t sent_bytes() const noexcept { return sent_bytes_; }
    bool ended() const noexcept { return ended_; }

    // Sends until EAGAIN, the cap, or an error; returns the bytes sent.
    std::uint64_t flood() {
        std::uint64_t sent_now = 0;
        for (int i = 0; i < max_sends_per_call && !ended_ && sent_bytes_ < flood_cap_bytes; ++i) {
            const std::size_t offset = static_cast<std::size_t>(sent_bytes_ % block_.size());
            const SizeResult r = sys_.send(fd_, std::span<const std::uint8_t>(block_).subspan(offset), MSG_NOSIGNAL);
            if (!r.ok()) {
                ended_ = !would_block(r.error) && r.error != EINTR;
                break;
            }
            sent_bytes_ += r.value;
            sent_now += r.value;
        }
        return sent_now;
    }

private:
    static constexpr std::uint32_t frames_per_block = 64;
    static constexpr int max_sends_per_call = 64;

    Sys& sys_;
    int fd_ = -1;
    SockAddr address_;
    std::vector<std::uint8_t> block_;
    std::uint64_t sent_bytes_ = 0;
    bool ended_ = false;
};

struct BackpressureRun {
    std::optional<WitnessSys::Traffic> flooded;  // the server's side of the flooder's connection
    SockAddr flooder_address;
    std::uint64_t flooder_sent_bytes = 0;
    std::vector<std::string> log;
    std::uint64_t good_echoes = 0;
    std::uint64_t good_mismatches = 0;
    bool good_open = false;
};

// make(reactor, log) -> unique_ptr to a server with open(), local_address().
template <class Make>
BackpressureRun run_backpressure(Make make) {
    FixtureSockets fixture;
    RealWorld world;
    BackpressureRun run;
    auto server = make(world.reactor, [&run](std::string_view line) {
        if (run.log.size() < record_capacity)
            run.log.emplace_back(line);
    });
    REQUIRE(server->open().ok());
    const SockAddr address = server->local_address();

    Flooder flooder(fixture, address);
    run.flooder_address = flooder.address();
    // Flood until the flooder is stopped for good (no byte taken in 50 polls
    // in a row), is cut off, or reaches its cap.
    int idle_polls = 0;
    for (int i = 0; i < 5000 && idle_polls < 50 && !flooder.ended() && flooder.sent_bytes() < flood_cap_bytes; ++i) {
        idle_polls = flooder.flood() == 0 ? idle_polls + 1 : 0;
        REQUIRE(world.reactor.poll(1ms).ok());
    }
    run.flooder_sent_bytes = flooder.sent_bytes();

    // Meanwhile another client is served as usual.
    ClientRecorder app(world.witness);
    ConnectionDriver good(world.reactor, app, ConnectionRole::client, ConnectionConfig{}, TransportOptions{}, 1);
    std::uint32_t next_to_send = 0;
    const auto send_next = [&](ConnectionDriver& driver) {
        if (next_to_send < good_frames_total &&
            driver.send_frame(DefaultHeader{app_cmd, next_to_send, 0, 0, 0}, body_of(next_to_send)) == SendError::none)
            ++next_to_send;
    };
    app.on_frame_hook = [&](ConnectionDriver& driver, const Frame& frame) {
        const DefaultHeader header = DefaultHeader::parse(frame.header.first<DefaultHeader::size_bytes>());
        const std::vector<std::uint8_t> expected = body_of(static_cast<std::uint32_t>(run.good_echoes));
        if (header.cmd != app_cmd || header.seq != run.good_echoes ||
            !std::equal(frame.body.begin(), frame.body.end(), expected.begin(), expected.end()))
            ++run.good_mismatches;
        ++run.good_echoes;
        send_next(driver);
    };
    good.start_connect(address);
    REQUIRE(poll_until(
        world.reactor, [&] { return !app.established_at().empty(); }, 200, 10ms));
    send_next(good);
    (void)poll_until(
        world.reactor, [&] { return run.good_echoes >= good_frames_total; }, 200, 10ms);
    run.good_open = good.connection().state() == ConnectionState::established;

    if (const WitnessSys::Traffic* traffic = world.witness.traffic_from(run.flooder_address))
        run.flooded = *traffic;
    return run;
}

EchoServerOptions backpressure_options(std::size_t high_water_bytes, std::size_t limit_bytes) {
    EchoServerOptions options;
    options.connection.output_high_water_bytes = high_water_bytes;
    options.connection.output_low_water_bytes = high_water_bytes / 4;
    options.connection.output_limit_bytes = limit_bytes;
    // A limit below the largest frame is refused (validate()).
    options.connection.max_frame_bytes = std::min<std::uint64_t>(options.connection.max_frame_bytes, limit_bytes);
    return options;
}

// What a server may hold for one connection: its high water mark, plus one
// read's worth of frames echoed on top before reading stops, plus a partial
// frame the estimate counts as unsent.
std::uint64_t output_bound(const EchoServerOptions& options) {
    return options.connection.output_high_water_bytes + options.transport.recv_chunk_bytes + flood_frame_bytes;
}

// Pitfall 6: for a client that sends and never reads, the server's output
// stays bounded (reading stops at high water; the hard limit closes it), and
// the other clients are served.
Verdict output_stays_bounded(const BackpressureRun& run, std::uint64_t bound_bytes) {
    Verdict v;
    if (!run.flooded) {
        v.refute("the server never accepted the flooding client");
    } else if (run.flooded->unsent_bytes_max > bound_bytes) {
        v.refute("the server held up to " + std::to_string(run.flooded->unsent_bytes_max) +
                 " bytes for the client that never reads (bound " + std::to_string(bound_bytes) + ")");
    }
    if (run.good_echoes != good_frames_total || run.good_mismatches != 0)
        v.refute("the other client got " + std::to_string(run.good_echoes) + " of " +
                 std::to_string(good_frames_total) + " echoes, " + std::to_string(run.good_mismatches) + " wrong");
    if (!run.good_open)
        v.refute("the other client's connection ended");
    return v;
}

TEST_CASE("backpressure: a client that never reads gets bounded output from the echo server, others are served",
          "[pitfall][policy][backpressure]") {
    SECTION("FrameEchoServer: reading stops at high water, the connection stays open") {
        const EchoServerOptions options = backpressure_options(64U * 1024U, 1024U * 1024U);
        const BackpressureRun run = run_backpressure([&](Reactor& reactor, FrameEchoServer::Log log) {
            return std::make_unique<FrameEchoServer>(reactor, options, std::move(log));
        });
        check_holds(output_stays_bounded(run, output_bound(options)));
        REQUIRE(run.flooded);
        CHECK(run.flooded->open);
        CHECK(run.flooder_sent_bytes < flood_cap_bytes);  // the kernel stopped it: nobody reads its bytes
    }
    SECTION("FrameEchoServer: high water at the limit, so the limit is reached: closed with output_limit_exceeded") {
        // 96 KiB is no multiple of the 1044-byte frames, so output never sits
        // exactly at the limit, and backpressure (above limit - 1) never
        // comes first.
        const EchoServerOptions options = backpressure_options(96U * 1024U - 1U, 96U * 1024U);
        const BackpressureRun run = run_backpressure([&](Reactor& reactor, FrameEchoServer::Log log) {
            return std::make_unique<FrameEchoServer>(reactor, options, std::move(log));
        });
        check_holds(output_stays_bounded(run, output_bound(options)));
        REQUIRE(run.flooded);
        CHECK_FALSE(run.flooded->open);
        const std::string expected_line = "closed " + run.flooder_address.to_string() + ": output_limit_exceeded";
        CHECK(std::find(run.log.begin(), run.log.end(), expected_line) != run.log.end());
    }
    SECTION("naive: reads on and queues every echo without a limit") {
        const EchoServerOptions options = backpressure_options(64U * 1024U, 1024U * 1024U);
        const BackpressureRun run = run_backpressure([](Reactor& reactor, NaiveBufferingEchoServer::Log log) {
            return std::make_unique<NaiveBufferingEchoServer>(reactor, std::move(log));
        });
        check_refuted(output_stays_bounded(run, output_bound(options)), "bytes for the client that never reads");
        CHECK(run.flooder_sent_bytes >= flood_cap_bytes);
    }
}

}  // namespace
