// The simulated kernel's speed: what a syscall costs in it, how it compares
// with the real kernel on the same workload, and how it scales.
//
// Read the results as ratios within one run:
//   BM_SimSendRecv / BM_SimSendRecv_Traced   items/s = simulated syscalls/s
//   BM_SimSendRecv / BM_LoopbackSendRecv     the same six calls per round
//                                            trip on LinuxSys over loopback:
//                                            a simulated syscall should cost
//                                            at most a tenth of a real one
//   BM_SimEcho100k / BM_LoopbackEcho100k     items/s = frames/s, the same
//                                            FrameEchoServer + LoadClient in
//                                            the simulation and on loopback,
//                                            per frames in flight
//   BM_SimEcho100k_Traced / BM_SimEcho100k   what the trace costs there
//   BM_SimIdleHour                           wall time per virtual hour
//   BM_SimEpollWait_10000 / _100             should be ~1: epoll_wait costs
//                                            the ready fds, not the idle ones
//   BM_SimIdleConnections counter ratio      should be ~1 (at most 1.5): a
//                                            step costs the busy connections,
//                                            not the idle ones
//   BM_SimAddHosts/N                         items/s = hosts added/s, should
//                                            not fall with N: adding a host
//                                            is O(1) amortised (no N x N
//                                            link table)
//
// Trace: names without a suffix run untraced (WorldOptions::trace = false)
// and measure the simulation itself; _Traced runs keep the trace hash, as
// the harness does. Tracing costs a JSON line per syscall, segment and
// timer, and its FNV-1a hash alone takes about 4 cycles per byte (each step
// waits for the last multiply), some 100 ns per line: it is a large share
// of a traced run. BM_SimIdleHour runs traced, as a scenario would: an idle
// hour writes few lines.
//
// Where the traced round trip goes (BM_SimSendRecv_Traced, 10 lines and
// about 1,160 bytes per iteration; perf, issue 12): the FNV-1a chain about
// 1 us, formatting the JSON about 0.9 us, the simulation 0.45 us. With no
// hash at all the ratio to untraced is only 0.27; a prototype that hashed
// binary fields (precomputed key hashes, no text unless a sink wants it)
// reached 0.34, the rest being the strings callers build per event
// ("host:port" in send_segment, epoll_wait's ready list, address and flag
// names). Traced >= 0.5x untraced needs both: a binary hash definition and
// callers that pass numbers, formatted only when a line is written.
//
// Every benchmark checks its results (bytes, frames, heartbeats) and fails
// with SkipWithError rather than report the speed of a wrong answer.
#include "apps/frame_echo_server.h"
#include "apps/load_client.h"
#include "core/assert.h"
#include "core/connection_driver.h"
#include "core/faulty_sys.h"
#include "core/linux_sys.h"
#include "core/reactor.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"

#include <sys/epoll.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace eagain::bench {
namespace {

using namespace std::chrono_literals;
using sim::SimKernel;
using sim::World;
using sim::WorldOptions;

WorldOptions world_options(bool trace) {
    WorldOptions options;
    options.trace = trace;
    return options;
}

// A blocking listener on host's own address: accept4 on it runs the
// network in virtual time until a connection is there.
int sim_listener(SimKernel& host, std::string& error) {
    const FdResult fd = host.socket(AF_INET, SOCK_STREAM, 0);
    if (!fd.ok() || !host.bind(fd.value, host.address(AF_INET, 7)).ok() || !host.listen(fd.value, 128).ok()) {
        error = "listener: " + errno_name(fd.ok() ? EINVAL : fd.error);
        return -1;
    }
    return fd.value;
}

struct SimPair {
    int client = -1;
    int server = -1;
};

// One established connection from client to server's listener, both ends
// non-blocking. The blocking accept4 carries the handshake out.
SimPair sim_connect(SimKernel& client, SimKernel& server, int listener, std::string& error) {
    const FdResult fd = client.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (!fd.ok()) {
        error = "socket: " + errno_name(fd.error);
        return {};
    }
    const VoidResult connected = client.connect(fd.value, server.address(AF_INET, 7));
    if (connected.ok() || connected.error != EINPROGRESS) {
        error = "connect: " + errno_name(connected.error);
        return {};
    }
    const FdResult accepted = server.accept4(listener, nullptr, SOCK_NONBLOCK);
    if (!accepted.ok()) {
        error = "accept4: " + errno_name(accepted.error);
        return {};
    }
    return SimPair{fd.value, accepted.value};
}

int sim_epoll_with(SimKernel& host, int fd) {
    const FdResult epoll = host.epoll_create1(0);
    EAGAIN_ASSERT(epoll.ok());
    EAGAIN_ASSERT(
        host.epoll_ctl(epoll.value, EPOLL_CTL_ADD, fd, EpollEvent{EPOLLIN, static_cast<std::uint64_t>(fd)}).ok());
    return epoll.value;
}

// ===========================================================================
// One connection, SimKernel calls directly: the cost of a simulated syscall.

// Each iteration is one 64-byte round trip as an event loop does it:
//   client send, server epoll_wait (the network runs until the data is
//   there), server recv, server send, client epoll_wait, client recv.
// Six syscalls; items/s = syscalls/s. The payload changes every iteration
// and every byte that comes back is compared. The same loop runs on the
// SimKernel and on LinuxSys over loopback (BM_LoopbackSendRecv), so their
// ratio is what a simulated syscall costs against a real one.
struct SendRecvEnds {
    int client = -1;
    int server = -1;
    int client_epoll = -1;
    int server_epoll = -1;
};

// Runs the round trips; false (and the benchmark skipped) on any problem.
template <class ClientSys, class ServerSys>
bool send_recv_loop(benchmark::State& state, ClientSys& client, ServerSys& server, const SendRecvEnds& ends) {
    constexpr std::size_t message_bytes = 64;
    std::array<std::uint8_t, message_bytes> sent{};
    std::array<std::uint8_t, message_bytes> echoed{};
    std::array<std::uint8_t, message_bytes> received{};
    std::array<EpollEvent, 4> events{};
    std::uint8_t round = 0;
    const auto failed = [&](const char* what) {
        state.SkipWithError(what);
        return false;
    };
    const auto round_trip = [&]() -> bool {
        sent.fill(++round);
        if (client.send(ends.client, sent, 0).value != message_bytes)
            return failed("client send was short");
        if (server.epoll_wait(ends.server_epoll, events, -1).value != 1)
            return failed("server epoll_wait reported no event");
        if (server.recv(ends.server, echoed, 0).value != message_bytes)
            return failed("server recv was short");
        if (server.send(ends.server, echoed, 0).value != message_bytes)
            return failed("server send was short");
        if (client.epoll_wait(ends.client_epoll, events, -1).value != 1)
            return failed("client epoll_wait reported no event");
        if (client.recv(ends.client, received, 0).value != message_bytes)
            return failed("client recv was short");
        if (received != sent)
            return failed("the echo differs from what was sent");
        return true;
    };
    for (auto _ : state) {
        if (!round_trip())
            return false;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 6);
    return true;
}

void sim_send_recv(benchmark::State& state, bool trace) {
    World world(world_options(trace));
    SimKernel& client = world.add_host("client");
    SimKernel& server = world.add_host("server");
    std::string error;
    const int listener = sim_listener(server, error);
    const SimPair pair = listener < 0 ? SimPair{} : sim_connect(client, server, listener, error);
    if (pair.client < 0) {
        state.SkipWithError(error.c_str());
        return;
    }
    const SendRecvEnds ends{pair.client, pair.server, sim_epoll_with(client, pair.client),
                            sim_epoll_with(server, pair.server)};
    if (send_recv_loop(state, client, server, ends))
        state.counters["trace_lines"] = static_cast<double>(world.trace().line_count());
}

void BM_SimSendRecv(benchmark::State& state) {
    sim_send_recv(state, false);
}
BENCHMARK(BM_SimSendRecv);

void BM_SimSendRecv_Traced(benchmark::State& state) {
    sim_send_recv(state, true);
}
BENCHMARK(BM_SimSendRecv_Traced);

// The same round trips over real loopback: one LinuxSys, a blocking
// listener on 127.0.0.1 (a port the kernel picks), both ends non-blocking,
// each in its own epoll set, as in the simulation. The fds are closed at
// the end (LinuxSys does not own them).
void BM_LoopbackSendRecv(benchmark::State& state) {
    LinuxSys sys;
    std::vector<int> fds;
    const auto fd_or_skip = [&](const FdResult& fd, const char* what) {
        if (!fd.ok()) {
            state.SkipWithError((std::string(what) + ": " + errno_name(fd.error)).c_str());
            return -1;
        }
        fds.push_back(fd.value);
        return fd.value;
    };
    const auto epoll_with = [&](int fd) {
        const int epoll = fd_or_skip(sys.epoll_create1(0), "epoll_create1");
        if (epoll >= 0 &&
            !sys.epoll_ctl(epoll, EPOLL_CTL_ADD, fd, EpollEvent{EPOLLIN, static_cast<std::uint64_t>(fd)}).ok()) {
            state.SkipWithError("epoll_ctl failed");
            return -1;
        }
        return epoll;
    };
    const auto run = [&] {
        const int listener = fd_or_skip(sys.socket(AF_INET, SOCK_STREAM, 0), "socket");
        if (listener < 0 || !sys.bind(listener, SockAddr::ipv4_loopback(0)).ok() || !sys.listen(listener, 16).ok()) {
            state.SkipWithError("listener failed");
            return;
        }
        const SysResult<SockAddr> address = sys.getsockname(listener);
        const int client = fd_or_skip(sys.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), "socket");
        if (!address.ok() || client < 0)
            return;
        const VoidResult connected = sys.connect(client, address.value);
        if (!connected.ok() && connected.error != EINPROGRESS) {
            state.SkipWithError(("connect: " + errno_name(connected.error)).c_str());
            return;
        }
        const int server = fd_or_skip(sys.accept4(listener, nullptr, SOCK_NONBLOCK), "accept4");
        if (server < 0)
            return;
        const int client_epoll = epoll_with(client);
        const int server_epoll = epoll_with(server);
        if (client_epoll < 0 || server_epoll < 0)
            return;
        (void)send_recv_loop(state, sys, sys, SendRecvEnds{client, server, client_epoll, server_epoll});
    };
    run();
    for (const int fd : fds)
        (void)sys.close(fd);
}
BENCHMARK(BM_LoopbackSendRecv);

// ===========================================================================
// 100,000 frames echoed: the same FrameEchoServer + LoadClient code in the
// simulation and over real loopback.
//
// Fairness: on loopback, server and client share one Reactor (one epoll
// set), polled in one thread until the client is done, so no epoll_wait is
// ever spent on a side with nothing to do, as the World only steps
// runnable programs. A World, or the loopback sockets, are built per
// iteration; set-up and teardown are in the time on both sides.
//
// Argument: frames in flight per connection (one connection). 1 is a
// ping-pong, where every frame costs the full syscall path; 32 (LoadOptions'
// default) lets the client batch, so the frame codec and the check of every
// echoed byte, the same code on both sides, weigh more.

// Heartbeats off, so an idle connection costs no timer.
ConnectionConfig without_heartbeats() {
    ConnectionConfig config;
    config.heartbeat_idle_timeout = 0ns;
    config.dead_peer_intervals = 0;
    return config;
}

// A frame echo server on port 7 of host, heartbeats off.
EchoServerOptions quiet_echo_server(SimKernel& host) {
    EchoServerOptions options;
    options.listen_address = host.address(AF_INET, 7);
    options.connection = without_heartbeats();
    return options;
}

constexpr std::uint64_t echo_frames = 100'000;

LoadOptions echo_load(const SockAddr& server, std::int64_t in_flight) {
    LoadOptions load;
    load.server = server;
    load.connections = 1;
    load.frames = echo_frames;
    load.body_bytes = 64;
    load.in_flight_per_connection = static_cast<std::size_t>(in_flight);
    return load;
}

// Checks the report; false (and the benchmark skipped) on any problem.
bool echo_verified(benchmark::State& state, const LoadClient& client) {
    const LoadReport& report = client.report();
    if (report.ok(echo_frames))
        return true;
    const std::string error = "frames verified " + std::to_string(report.frames_verified) + ", mismatches " +
                              std::to_string(report.mismatches) + ", errors " + std::to_string(report.errors) +
                              (report.problems.empty() ? std::string() : ": " + report.problems.front());
    state.SkipWithError(error.c_str());
    return false;
}

void sim_echo(benchmark::State& state, bool trace) {
    std::uint64_t lines = 0;
    for (auto _ : state) {
        World world(world_options(trace));
        SimKernel& server_host = world.add_host("server");
        SimKernel& client_host = world.add_host("client");
        Reactor server_reactor(server_host);
        Reactor client_reactor(client_host);
        EchoServerOptions server_options;
        server_options.listen_address = server_host.address(AF_INET, 7);
        FrameEchoServer server(server_reactor, server_options);
        if (!server.open().ok()) {
            state.SkipWithError("server open failed");
            return;
        }
        LoadClient client(client_reactor, echo_load(server.local_address(), state.range(0)));
        client.start();
        world.add_reactor(server_host, server_reactor);
        world.add_reactor(client_host, client_reactor);
        const sim::RunStatus status = world.run_for(1h, [&] { return client.done(); });
        if (status != sim::RunStatus::done) {
            state.SkipWithError(("run ended " + std::string(to_string(status))).c_str());
            return;
        }
        if (!echo_verified(state, client))
            return;
        lines = world.trace().line_count();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(echo_frames));
    state.counters["trace_lines"] = static_cast<double>(lines);
}

void BM_SimEcho100k(benchmark::State& state) {
    sim_echo(state, false);
}
BENCHMARK(BM_SimEcho100k)->ArgName("in_flight")->Arg(1)->Arg(32)->Unit(benchmark::kMillisecond);

void BM_SimEcho100k_Traced(benchmark::State& state) {
    sim_echo(state, true);
}
BENCHMARK(BM_SimEcho100k_Traced)->ArgName("in_flight")->Arg(1)->Arg(32)->Unit(benchmark::kMillisecond);

void BM_LoopbackEcho100k(benchmark::State& state) {
    LinuxSys sys;
    for (auto _ : state) {
        Reactor reactor(sys);
        if (reactor.open_error() != 0) {
            state.SkipWithError("epoll_create1 failed");
            return;
        }
        EchoServerOptions server_options;  // 127.0.0.1, a port the kernel picks
        FrameEchoServer server(reactor, server_options);
        if (!server.open().ok()) {
            state.SkipWithError("server open failed");
            return;
        }
        LoadClient client(reactor, echo_load(server.local_address(), state.range(0)));
        client.start();
        // A hang is a bug, not a slow run: give up after a minute.
        const auto give_up = std::chrono::steady_clock::now() + 60s;
        while (!client.done()) {
            if (!reactor.poll(100ms).ok() || std::chrono::steady_clock::now() > give_up) {
                state.SkipWithError("loopback echo stalled");
                return;
            }
        }
        if (!echo_verified(state, client))
            return;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(echo_frames));
}
BENCHMARK(BM_LoopbackEcho100k)->ArgName("in_flight")->Arg(1)->Arg(32)->Unit(benchmark::kMillisecond);

// ===========================================================================
// One virtual hour of an idle connection kept alive by heartbeats.
//
// The client pings after heartbeat_idle_timeout (30 s) without traffic; the
// echo server only answers (its own pings off), so the count is exact: the
// pong arrives one round trip after the ping and starts the next idle
// period, hence a ping every 30 s + 2 x latency.

struct IdleClient final : ConnectionDriver::App {
    bool established = false;
    bool closed = false;
    void on_established(ConnectionDriver& /*driver*/) override { established = true; }
    void on_frame(ConnectionDriver& /*driver*/, const Frame& /*frame*/) override {}
    void on_closed(ConnectionDriver& /*driver*/, const CloseInfo& /*info*/, bool /*reconnecting*/) override {
        closed = true;
    }
};

void BM_SimIdleHour(benchmark::State& state) {
    std::uint64_t pings = 0;
    std::uint64_t lines = 0;
    for (auto _ : state) {
        World world;
        SimKernel& server_host = world.add_host("server");
        SimKernel& client_host = world.add_host("client");
        Reactor server_reactor(server_host);
        Reactor client_reactor(client_host);
        FrameEchoServer server(server_reactor, quiet_echo_server(server_host));
        if (!server.open().ok()) {
            state.SkipWithError("server open failed");
            return;
        }
        const ConnectionConfig config;  // heartbeat after 30 s idle, dead peer after 3 intervals
        IdleClient app;
        ConnectionDriver driver(client_reactor, app, ConnectionRole::client, config, TransportOptions{}, 1);
        driver.start_connect(server.local_address());
        world.add_reactor(server_host, server_reactor);
        world.add_reactor(client_host, client_reactor);
        if (world.run_for(10s, [&] { return app.established; }) != sim::RunStatus::done) {
            state.SkipWithError("the client never connected");
            return;
        }
        const Nanos hour_start = world.now();
        (void)world.run_for(1h);
        const Nanos period = config.heartbeat_idle_timeout + 2 * world.options().link.latency;
        const auto expected = static_cast<std::uint64_t>((1h - config.heartbeat_idle_timeout) / period + 1);
        const ConnectionStats& stats = driver.connection().stats();
        if (app.closed || world.now() != hour_start + 1h || stats.pings_sent != expected ||
            stats.pongs_received != expected) {
            const std::string error = "pings " + std::to_string(stats.pings_sent) + ", pongs " +
                                      std::to_string(stats.pongs_received) + ", expected " + std::to_string(expected) +
                                      (app.closed ? ", closed" : "");
            state.SkipWithError(error.c_str());
            return;
        }
        pings = stats.pings_sent;
        lines = world.trace().line_count();
    }
    state.counters["pings"] = static_cast<double>(pings);
    state.counters["trace_lines"] = static_cast<double>(lines);
}
BENCHMARK(BM_SimIdleHour)->Unit(benchmark::kMillisecond);

// ===========================================================================
// epoll_wait with one ready fd among many idle ones.
//
// `idle + 1` established connections, every server end registered
// (level-triggered EPOLLIN) in one epoll set; 64 bytes wait unread on one
// of them. Each iteration is one epoll_wait(timeout 0) that must report
// exactly that fd. Untraced: the trace line is a constant cost and would
// only flatten the ratio. Set-up (the handshakes) is outside the timing.

void sim_epoll_wait(benchmark::State& state, int idle) {
    World world(world_options(false));
    SimKernel& client = world.add_host("client");
    SimKernel& server = world.add_host("server");
    std::string error;
    const int listener = sim_listener(server, error);
    if (listener < 0) {
        state.SkipWithError(error.c_str());
        return;
    }
    const FdResult epoll = server.epoll_create1(0);
    EAGAIN_ASSERT(epoll.ok());
    const int busy_index = idle / 2;
    SimPair busy;
    for (int i = 0; i <= idle; ++i) {
        const SimPair pair = sim_connect(client, server, listener, error);
        if (pair.client < 0) {
            state.SkipWithError(error.c_str());
            return;
        }
        if (!server
                 .epoll_ctl(epoll.value, EPOLL_CTL_ADD, pair.server,
                            EpollEvent{EPOLLIN, static_cast<std::uint64_t>(pair.server)})
                 .ok()) {
            state.SkipWithError("epoll_ctl failed");
            return;
        }
        if (i == busy_index)
            busy = pair;
    }
    std::array<std::uint8_t, 64> message{};
    std::array<EpollEvent, 64> events{};
    if (client.send(busy.client, message, 0).value != message.size() ||
        server.epoll_wait(epoll.value, events, -1).value != 1) {
        state.SkipWithError("the data did not arrive");
        return;
    }
    for (auto _ : state) {
        const FdResult n = server.epoll_wait(epoll.value, events, 0);
        if (n.value != 1 || events[0].data != static_cast<std::uint64_t>(busy.server) ||
            (events[0].events & EPOLLIN) == 0) {
            state.SkipWithError("epoll_wait did not report exactly the busy fd");
            return;
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["registered"] = static_cast<double>(idle + 1);
}

void BM_SimEpollWait_100(benchmark::State& state) {
    sim_epoll_wait(state, 100);
}
BENCHMARK(BM_SimEpollWait_100);

void BM_SimEpollWait_10000(benchmark::State& state) {
    sim_epoll_wait(state, 10'000);
}
BENCHMARK(BM_SimEpollWait_10000);

// ===========================================================================
// Per-step cost against idle connections (issue 11, item 2).
//
// The same work, 30,000 frames echoed over 30 busy connections, with
// `total - 30` more connections established and registered on both hosts
// but idle. Each program runs over a FaultySys with probability rules
// (short writes, EAGAIN, EINTR), so edges are owed all the time, as in
// sim-echo's default faults. One iteration times the busy phase with 30
// connections in all and with `total` (the fastest of three runs of
// each), and the counter `ratio` is the second time over the first: the
// cost of a step must not depend on how many sockets are registered, so
// it should be near 1 (at most 1.5 on a quiet machine; a ratio above
// idle_ratio_limit fails the benchmark). The handshakes of the idle
// connections are set-up, outside the timing; the busy connections' own
// set-up is inside, the same in both runs. Untraced, since a trace line
// per call is a constant cost per step that would only flatten the ratio.
// Three iterations, whatever --benchmark_min_time says: each one builds
// six worlds, most of whose time is the untimed set-up.

constexpr std::size_t busy_connections = 30;
constexpr std::uint64_t busy_frames = 30'000;

struct IdlePeer final : ConnectionDriver::App {
    bool established = false;
    bool closed = false;
    void on_established(ConnectionDriver& /*driver*/) override { established = true; }
    void on_frame(ConnectionDriver& /*driver*/, const Frame& /*frame*/) override {}
    void on_closed(ConnectionDriver& /*driver*/, const CloseInfo& /*info*/, bool /*reconnecting*/) override {
        closed = true;
    }
};

void add_step_faults(FaultySys& faults) {
    const auto add = [&](SysCall call, FaultKind fault, std::uint64_t one_in) {
        FaultRule rule;
        rule.call = call;
        rule.fault = fault;
        rule.when = CallSelector::with_probability;
        rule.chance_numerator = 1;
        rule.chance_denominator = one_in;
        if (fault == FaultKind::short_transfer)
            rule.short_limit_bytes = 7;
        EAGAIN_ASSERT(faults.add_rule(rule) == RuleError::none);
    };
    add(SysCall::send, FaultKind::short_transfer, 8);
    add(SysCall::sendmsg, FaultKind::short_transfer, 8);
    add(SysCall::send, FaultKind::eagain, 16);
    add(SysCall::sendmsg, FaultKind::eagain, 16);
    add(SysCall::recv, FaultKind::eagain, 16);
    add(SysCall::send, FaultKind::eintr, 16);
    add(SysCall::recv, FaultKind::eintr, 16);
    add(SysCall::epoll_wait, FaultKind::eintr, 32);
}

// Seconds of wall time for the busy phase with `total` connections in all;
// negative (and error set) if anything went wrong.
double busy_phase_seconds(std::size_t total, std::string& error) {
    World world(world_options(false));
    SimKernel& server_host = world.add_host("server");
    SimKernel& client_host = world.add_host("client");
    FaultySys server_faults(server_host, 1);
    FaultySys client_faults(client_host, 2);
    add_step_faults(server_faults);
    add_step_faults(client_faults);
    Reactor server_reactor(server_faults);
    Reactor client_reactor(client_faults);
    FrameEchoServer server(server_reactor, quiet_echo_server(server_host));
    if (!server.open().ok()) {
        error = "server open failed";
        return -1;
    }
    world.add_reactor(server_host, server_reactor, &server_faults);
    world.add_reactor(client_host, client_reactor, &client_faults);

    const ConnectionConfig idle_config = without_heartbeats();
    const std::size_t idle = total - busy_connections;
    std::vector<IdlePeer> peers(idle);
    std::vector<std::unique_ptr<ConnectionDriver>> drivers;
    drivers.reserve(idle);
    for (std::size_t i = 0; i < idle; ++i) {
        drivers.push_back(std::make_unique<ConnectionDriver>(client_reactor, peers[i], ConnectionRole::client,
                                                             idle_config, TransportOptions{}, i + 1));
        drivers.back()->start_connect(server.local_address());
    }
    const auto all_idle_up = [&] {
        return server.open_connections() == idle &&
               std::all_of(peers.begin(), peers.end(), [](const IdlePeer& peer) { return peer.established; });
    };
    if (world.run_for(60s, all_idle_up) != sim::RunStatus::done) {
        error = "the idle connections did not all come up";
        return -1;
    }

    LoadOptions load = echo_load(server.local_address(), 32);
    load.connections = busy_connections;
    load.frames = busy_frames;
    load.connection = without_heartbeats();
    LoadClient client(client_reactor, load);
    const auto began = std::chrono::steady_clock::now();
    client.start();
    const sim::RunStatus status = world.run_for(1h, [&] { return client.done(); });
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - began;
    const LoadReport& report = client.report();
    if (status != sim::RunStatus::done || !report.ok(busy_frames)) {
        error = "busy phase: run ended " + std::string(to_string(status)) + ", frames verified " +
                std::to_string(report.frames_verified);
        return -1;
    }
    if (std::any_of(peers.begin(), peers.end(), [](const IdlePeer& peer) { return peer.closed; }) ||
        server.open_connections() != idle) {
        error = "an idle connection closed";
        return -1;
    }
    return took.count();
}

// Beyond this ratio the benchmark fails (SkipWithError, so CI turns red):
// far above the target of 1.5 so a loaded machine does not trip it, far
// below the 20x that walking every registration each step cost.
constexpr double idle_ratio_limit = 4.0;
constexpr int idle_runs_per_iteration = 3;

void BM_SimIdleConnections(benchmark::State& state) {
    const auto total = static_cast<std::size_t>(state.range(0));
    double few_seconds = 0;
    double many_seconds = 0;
    for (auto _ : state) {
        // Each size runs three times, alternating, and the fastest of each
        // counts: a pause of the machine in one run does not make a ratio.
        double few = std::numeric_limits<double>::infinity();
        double many = std::numeric_limits<double>::infinity();
        for (int run = 0; run < idle_runs_per_iteration; ++run) {
            std::string error;
            const double one_few = busy_phase_seconds(busy_connections, error);
            const double one_many = one_few < 0 ? -1 : busy_phase_seconds(total, error);
            if (one_many < 0) {
                state.SkipWithError(error.c_str());
                return;
            }
            few = std::min(few, one_few);
            many = std::min(many, one_many);
        }
        few_seconds += few;
        many_seconds += many;
        state.SetIterationTime(few + many);
    }
    const double ratio = many_seconds / few_seconds;
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 2 * static_cast<std::int64_t>(busy_frames));
    state.counters["registered"] = static_cast<double>(total);
    state.counters["s_30"] = few_seconds / static_cast<double>(state.iterations());
    state.counters["s_many"] = many_seconds / static_cast<double>(state.iterations());
    state.counters["ratio"] = ratio;
    if (ratio > idle_ratio_limit) {
        const std::string error =
            "idle connections cost: ratio " + std::to_string(ratio) + " is above " + std::to_string(idle_ratio_limit);
        state.SkipWithError(error.c_str());
    }
}
BENCHMARK(BM_SimIdleConnections)
    ->ArgName("conns")
    ->Arg(3000)
    ->Iterations(3)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// ===========================================================================
// Adding hosts.
//
// A world of N hosts (untraced), two links given explicitly, then one
// connection from the last host to the first over its explicit link: the
// links not given stay the default, and the ones given are found. Each
// iteration builds the whole world, so items/s is hosts added per second.

void BM_SimAddHosts(benchmark::State& state) {
    const auto count = static_cast<std::size_t>(state.range(0));
    for (auto _ : state) {
        World world(world_options(false));
        for (std::size_t i = 0; i < count; ++i)
            (void)world.add_host("h" + std::to_string(i));
        SimKernel& first = world.host(0);
        SimKernel& last = world.host(count - 1);
        sim::LinkOptions slow = world.options().link;
        slow.latency = 7ms;
        world.set_link(first, last, slow);
        world.set_link(world.host(1), world.host(count / 2), slow);
        std::string error;
        const int listener = sim_listener(first, error);
        const Nanos start = world.now();
        const SimPair pair = listener < 0 ? SimPair{} : sim_connect(last, first, listener, error);
        // The handshake's three segments crossed the 7 ms link; the accept
        // came after the final ACK, 1.5 round trips.
        if (pair.client < 0 || world.host_count() != count || world.now() - start != 21ms ||
            world.find_host("h" + std::to_string(count - 1)) != &last) {
            state.SkipWithError(error.empty() ? "the explicit link was not used" : error.c_str());
            return;
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(count));
}
BENCHMARK(BM_SimAddHosts)->Arg(100)->Arg(1000)->Arg(10'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace eagain::bench
