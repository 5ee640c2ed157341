// The ConnectionDriver-based app kinds in scenarios (harness/apps.cpp):
// frame-echo, frame-client, idle-client and reconnecting-client, with their
// actions and expectations. Each observation is checked against the trace,
// the simulation's own record, so a counter that drifts from what happened
// on the wire cannot pass: connect attempts against the connect(2) calls,
// heartbeats against the 20-byte sends, read pauses against recv calls and
// advertised windows.
#include "core/connection.h"
#include "core/transport.h"
#include "harness/runner.h"
#include "harness/scenario.h"
#include "tests/sim/sim_test_support.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace eagain::harness {
namespace {

using namespace std::chrono_literals;
namespace simtest = eagain::simtest;

Scenario parsed(std::string_view text) {
    ParseResult result = parse_scenario(text, "t.scn");
    INFO((result.errors.empty() ? std::string() : result.errors.front()));
    REQUIRE(result.ok());
    return std::move(result.scenario);
}

// The language's `error` takes errno names only (the parser checks that),
// but connections also end without an errno (hostile_frame, dead_peer),
// and the runner records those reasons too: expected here directly.
void expect_ending(Scenario& scenario, const std::string& app, const std::string& reason) {
    scenario.expectations.push_back(ExpectSpec{app, "error", {reason}, SourceLocation{}});
}

struct Run {
    ScenarioReport report;
    std::vector<std::string> trace;
};

Run run(const Scenario& scenario) {
    Run r;
    ScenarioRunOptions options;
    options.trace_sink = [&r](std::string_view line) { r.trace.emplace_back(line); };
    r.report = run_scenario(scenario, options);
    return r;
}

std::string failures(const ScenarioReport& report) {
    std::string text = report.setup_error;
    for (const ExpectationFailure& f : report.failures)
        text += f.expectation + " -> " + f.happened + "\n";
    return text;
}

// The one failure of a run whose other expectations all held.
ExpectationFailure only_failure(const ScenarioReport& report) {
    INFO(failures(report));
    REQUIRE(report.setup_error.empty());
    REQUIRE(report.failures.size() == 1);
    return report.failures.front();
}

std::vector<std::int64_t> times_ns(const std::vector<simtest::TracedCall>& traced) {
    std::vector<std::int64_t> out;
    for (const simtest::TracedCall& c : traced)
        out.push_back(c.at.count());
    return out;
}

// Successful sends of exactly one header-only frame: heartbeats (the apps
// send no other 20-byte frame).
std::vector<simtest::TracedCall> heartbeat_sends(const std::vector<std::string>& trace, std::string_view host) {
    std::vector<simtest::TracedCall> out;
    for (const simtest::TracedCall& c : simtest::calls(trace, host, "send")) {
        if (c.ok && c.len == 20 && c.ret == 20)
            out.push_back(c);
    }
    return out;
}

// Segments sent from host advertising a zero window.
std::size_t zero_windows_from(const std::vector<std::string>& trace, std::string_view host) {
    std::size_t n = 0;
    for (const std::string& line : trace) {
        if (simtest::is(line, "ev", "seg") && simtest::field(line, "src").value_or("").starts_with(host) &&
            simtest::is(line, "win", "0"))
            ++n;
    }
    return n;
}

std::string plus(std::string_view base, std::string_view more) {
    return std::string(base) + std::string(more);
}

constexpr std::string_view idle_pair = R"(
host server
host client
app server frame-echo port 7
)";

}  // namespace

// ===========================================================================
// idle-client and heartbeats

TEST_CASE("idle-client: one ping per idle period, counted exactly, then close ends it gracefully",
          "[scenario][apps][heartbeat]") {
    const Run r = run(parsed(plus(idle_pair, R"(
app client idle-client connect server:7 heartbeat 10s
at 60s client close
expect client heartbeats 5
expect client no-errors
expect client state established
expect client state half_closed_local
expect client state closed
expect server heartbeats 0
expect no-fd-leak
expect done-by 61s
)")));
    INFO(failures(r.report));
    CHECK(r.report.passed);
    // Established at 200 us (one round trip); each ping 10 s after the last
    // byte, and its pong one round trip later restarts the idle time: pings
    // at 10 s + k * 10.0002 s, the sixth (60.0012 s) after the close.
    CHECK(times_ns(heartbeat_sends(r.trace, "client")) ==
          std::vector<std::int64_t>{10'000'200'000, 20'000'400'000, 30'000'600'000, 40'000'800'000, 50'001'000'000});
    CHECK(heartbeat_sends(r.trace, "server").size() == 5);  // the pongs
}

TEST_CASE("idle-client: a partition longer than dead-after intervals ends the connection with dead_peer",
          "[scenario][apps][heartbeat]") {
    Scenario scenario = parsed(plus(idle_pair, R"(
app client idle-client connect server:7 heartbeat 1s dead-after 3
net partition client server at 5s for 10s
expect client heartbeats 6
expect client state closed
expect client no-errors
expect done-by 30s
)"));
    expect_ending(scenario, "client", "dead_peer");
    const Run r = run(scenario);
    // Pongs come back until the cut at 5 s (the last at 4.001 s); the pings
    // at 5.001 and 6.001 s go unanswered, and 3 s of silence end it at 7.001 s.
    const ExpectationFailure failure = only_failure(r.report);
    CHECK(failure.expectation == "expect client no-errors");
    CHECK(failure.happened == "1 errors, 0 mismatches; first problem: ended: dead_peer");
    CHECK(heartbeat_sends(r.trace, "client").size() == 6);
    const std::vector<simtest::TracedCall> closes = simtest::calls(r.trace, "client", "close");
    REQUIRE_FALSE(closes.empty());  // the socket's; the epoll fd's when the run ends
    CHECK(closes[0].at == 7'001'000'000ns);
}

TEST_CASE("frame-client with heartbeats: frames flowing more often than the idle time mean no ping at all",
          "[scenario][apps][heartbeat]") {
    // One frame in flight over a 20 ms round trip: 300 frames take 6 s,
    // six heartbeat periods, and no side is ever idle for 1 s.
    const Run r = run(parsed(R"(
network latency 10ms
host server
host client
app server frame-echo port 7 heartbeat 1s
app client frame-client connect server:7 frames 300 in-flight 1 heartbeat 1s
expect client heartbeats 0
expect server heartbeats 0
expect client frames-verified 300
expect client no-errors
expect no-fd-leak
expect done-by 30s
)"));
    INFO(failures(r.report));
    CHECK(r.report.passed);
    CHECK(r.report.virtual_time > 6s);
    CHECK(heartbeat_sends(r.trace, "client").empty());
    CHECK(heartbeat_sends(r.trace, "server").empty());
}

TEST_CASE("frame-echo heartbeat D pings an idle peer, the count is the pings on the wire",
          "[scenario][apps][heartbeat]") {
    // The client sends nothing and never pings: every 20-byte send from the
    // server is its own ping.
    const Run r = run(parsed(R"(
host server
host client
app server frame-echo port 7 heartbeat 2s
app client idle-client connect server:7 heartbeat 0
at 9s client close
expect server heartbeats 4
expect client heartbeats 0
expect client no-errors
expect no-fd-leak
)"));
    INFO(failures(r.report));
    CHECK(r.report.passed);
    CHECK(heartbeat_sends(r.trace, "server").size() == 4);
    CHECK(heartbeat_sends(r.trace, "client").size() == 4);  // the pongs
}

// ===========================================================================
// reconnecting-client

namespace {

// The server is down from 0 to 20 s (stopped before the client's first SYN
// arrives): every connect until then is refused one round trip (200 us)
// after it starts, and the next starts its backoff delay later.
constexpr std::string_view server_down_until_20s = R"(
host server
host client
app server frame-echo port 7
at 0 server stop
at 20s server start
)";

}  // namespace

TEST_CASE("reconnecting-client: every connect(2) on the backoff schedule, then frames echoed and a clean close",
          "[scenario][apps][reconnect]") {
    // Delays 1, 2, 4, 8 s after refusals at 200 us past each start; the
    // attempt at 15.0008 s is refused too, so the next is 16 s later, at
    // 31.001 s, and the server listens by then.
    const Run r = run(parsed(plus(server_down_until_20s, R"(
app client reconnecting-client connect server:7 frames 10
expect client reconnect-at 0 1000200us 3000400us 7000600us 15000800us 31001ms
expect client frames-verified 10
expect client no-errors
expect client error ECONNREFUSED
expect client state backoff
expect client state established
expect client state closed
expect no-fd-leak
expect done-by 40s
)")));
    INFO(failures(r.report));
    CHECK(r.report.passed);
    CHECK(times_ns(simtest::calls(r.trace, "client", "connect")) ==
          std::vector<std::int64_t>{0, 1'000'200'000, 3'000'400'000, 7'000'600'000, 15'000'800'000, 31'001'000'000});
}

TEST_CASE("reconnecting-client: frames not echoed before a lost connection are sent again on the next one",
          "[scenario][apps][reconnect]") {
    // 200 frames, 32 in flight, 2 ms round trips: the reset at 5 ms cuts
    // the stream part-way; one second later the client reconnects and
    // continues from the first frame that had not come back.
    const Run r = run(parsed(R"(
network latency 1ms
host server
host client
app server frame-echo port 7
app client reconnecting-client connect server:7 frames 200
net reset server port 7 at 5ms
expect client frames-verified 200
expect client no-errors
expect client error ECONNRESET
expect client state backoff
expect done-by 2s
)"));
    INFO(failures(r.report));
    CHECK(r.report.passed);
    const std::vector<simtest::TracedCall> connects = simtest::calls(r.trace, "client", "connect");
    REQUIRE(connects.size() == 2);
    CHECK(connects[1].at > 1s);
    // The frames lost with the first connection went out again: more
    // frame bytes sent than 200 frames of 84 bytes.
    std::int64_t sent = 0;
    for (const simtest::TracedCall& c : simtest::calls(r.trace, "client", "send"))
        sent += c.ok ? c.ret : 0;
    CHECK(sent > 200 * 84);
}

TEST_CASE("reconnecting-client: backoff-max caps the delay", "[scenario][apps][reconnect]") {
    const Run r = run(parsed(plus(server_down_until_20s, R"(
app client reconnecting-client connect server:7 backoff 500ms backoff-max 3s
at 30s client close
expect client reconnect-at 0 500200us 1500400us 3500600us 6500800us 9501ms 12501200us 15501400us 18501600us 21501800us
expect client no-errors
expect client state closed
expect no-fd-leak
)")));
    INFO(failures(r.report));
    CHECK(r.report.passed);  // with frames 0 only the close ends it, without an error
    CHECK(simtest::calls(r.trace, "client", "connect").size() == 10);
}

TEST_CASE("reconnecting-client jitter: each delay within its bounds, the same for the same seed",
          "[scenario][apps][reconnect]") {
    const std::string text = plus(server_down_until_20s, R"(
app client reconnecting-client connect server:7 backoff 1s backoff-max 4s jitter 25% frames 3
expect client frames-verified 3
expect client no-errors
)");
    const Run first = run(parsed(text));
    INFO(failures(first.report));
    REQUIRE(first.report.passed);
    const std::vector<std::int64_t> connects = times_ns(simtest::calls(first.trace, "client", "connect"));
    REQUIRE(connects.size() >= 6);
    const std::int64_t round_trip = 200'000;
    std::int64_t base = 1'000'000'000;
    bool any_moved = false;
    for (std::size_t i = 1; i < connects.size(); ++i) {
        const std::int64_t delay = connects[i] - connects[i - 1] - round_trip;
        CAPTURE(i, delay, base);
        CHECK(delay >= base - base / 4);
        CHECK(delay <= std::min<std::int64_t>(base + base / 4, 4'000'000'000));
        any_moved = any_moved || delay != base;
        base = std::min<std::int64_t>(base * 2, 4'000'000'000);
    }
    CHECK(any_moved);

    // The observation is exactly the trace's connect times.
    Scenario exact = parsed(text);
    ExpectSpec reconnect_at{"client", "reconnect-at", {}, SourceLocation{}};
    for (const std::int64_t t : connects)
        reconnect_at.arguments.push_back(format_duration(Nanos{t}));
    exact.expectations.push_back(reconnect_at);
    const Run again = run(exact);
    INFO(failures(again.report));
    CHECK(again.report.passed);
    CHECK(again.report.trace_hash == first.report.trace_hash);

    ScenarioRunOptions other_seed;
    other_seed.seed = 2;
    CHECK_FALSE(run_scenario(exact, other_seed).passed);  // another seed, another schedule
}

// ===========================================================================
// send-hostile-length

TEST_CASE("send-hostile-length: the server closes that connection with hostile_frame, the other is unaffected",
          "[scenario][apps]") {
    Scenario scenario = parsed(R"(
network latency 1ms
host server
host a
host b
app server frame-echo port 7
app a frame-client connect server:7 frames 1000 in-flight 8
app b frame-client connect server:7 frames 1000 in-flight 8
at 20ms a send-hostile-length
expect b frames-verified 1000
expect b no-errors
expect a frames-verified 1000
expect server state closed
expect no-fd-leak
expect done-by 10s
)");
    expect_ending(scenario, "server", "hostile_frame");
    const Run r = run(scenario);
    // Only a's frames stop short: its connection is gone.
    const ExpectationFailure failure = only_failure(r.report);
    CHECK(failure.expectation == "expect a frames-verified 1000");
    CHECK(failure.happened.find("ended after") != std::string::npos);
    // The hostile header went out on a's connection, once: a send of its
    // 20 bytes alone, or after frames, at 20 ms.
    bool hostile_sent = false;
    for (const simtest::TracedCall& c : simtest::calls(r.trace, "a", "send"))
        hostile_sent = hostile_sent || (c.at == 20ms && c.ok && c.ret >= 20);
    CHECK(hostile_sent);
    CHECK(simtest::calls(r.trace, "b", "send").size() >= 125);  // b kept sending to the end
}

TEST_CASE("send-hostile-length: without it the same run passes (the expectation is not vacuous)", "[scenario][apps]") {
    Scenario scenario = parsed(R"(
network latency 1ms
host server
host a
app server frame-echo port 7
app a frame-client connect server:7 frames 100 in-flight 8
expect a frames-verified 100
)");
    expect_ending(scenario, "server", "hostile_frame");
    const ExpectationFailure failure = only_failure(run(scenario).report);
    CHECK(failure.expected == "a connection of server ended with hostile_frame");
    CHECK(failure.happened == "connections ended with: peer_closed");
}

// ===========================================================================
// stop-reading / resume-reading and max-buffered

namespace {

// 1300 frames of 1 KiB in flight (1.29 MiB): more than the server's
// high-water mark plus the kernel buffers between the two, yet little
// enough that the client's own output drains below its low-water mark.
constexpr std::string_view paused_client = R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 4000 size 1KiB in-flight 1300
at 1ms client stop-reading
at 2s client resume-reading
expect client frames-verified 4000
expect client no-errors
expect no-fd-leak
expect done-by 3s
)";

}  // namespace

TEST_CASE(
    "stop-reading on a frame-client: the server's echoes meet a zero window and its buffered output is "
    "held to the high-water mark plus one read, resume-reading gets every frame back",
    "[scenario][apps][pause]") {
    const ConnectionConfig defaults;
    const std::uint64_t high_water = defaults.output_high_water_bytes;
    // Backpressure is judged after each read's frames are echoed: one
    // recv() (level-triggered) plus a frame begun in the read before.
    const std::uint64_t bound = high_water + TransportOptions{}.recv_chunk_bytes + (1024 + 20);
    const Run r = run(parsed(plus(paused_client, "expect server max-buffered " + std::to_string(bound) + "\n")));
    INFO(failures(r.report));
    CHECK(r.report.passed);
    CHECK(r.report.virtual_time > 2s);
    CHECK(zero_windows_from(r.trace, "client") > 0);
    for (const simtest::TracedCall& c : simtest::calls(r.trace, "client", "recv")) {
        CAPTURE(c.at.count());
        CHECK((c.at < 1ms || c.at >= 2s));  // no read while paused
    }

    // The peak went past the high-water mark: the bound above is the one
    // that held, not an idle server's.
    const ExpectationFailure failure = only_failure(
        run_scenario(parsed(plus(paused_client, "expect server max-buffered " + std::to_string(high_water) + "\n"))));
    CHECK(failure.expected == "at most " + std::to_string(high_water) + " bytes buffered unsent");
    CHECK(failure.happened.ends_with(" bytes buffered at the peak"));
    const std::uint64_t peak = std::stoull(failure.happened);
    CHECK(peak > high_water);
    CHECK(peak <= bound);
}

TEST_CASE(
    "stop-reading on frame-echo: no recv until resume-reading, the client meets a zero window, and every "
    "frame still comes back",
    "[scenario][apps][pause]") {
    // Paused at 0, before the client's SYN arrives: the connection is
    // accepted while paused and must start so.
    const Run r = run(parsed(R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 500 size 1KiB in-flight 500
at 0 server stop-reading
at 1s server resume-reading
expect client frames-verified 500
expect client no-errors
expect no-fd-leak
expect done-by 2s
)"));
    INFO(failures(r.report));
    CHECK(r.report.passed);
    CHECK(r.report.virtual_time > 1s);
    CHECK(zero_windows_from(r.trace, "server") > 0);
    const std::vector<simtest::TracedCall> reads = simtest::calls(r.trace, "server", "recv");
    REQUIRE_FALSE(reads.empty());
    CHECK(reads.front().at >= 1s);
}

// ===========================================================================
// close, backlog, and what each kind refuses

TEST_CASE("close on a frame-client ends its connections gracefully, those not done count as errors",
          "[scenario][apps]") {
    const ExpectationFailure failure = only_failure(run_scenario(parsed(R"(
network latency 1ms
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 100000 conns 2
at 50ms client close
expect client no-errors
expect client state half_closed_local
expect done-by 1s
expect no-fd-leak
)")));
    CHECK(failure.expectation == "expect client no-errors");
    INFO(failure.happened);
    CHECK(failure.happened.starts_with("2 errors, 0 mismatches; first problem: connection "));
    CHECK(failure.happened.ends_with("frames: local_close"));
    INFO(failure.happened);
}

TEST_CASE("frame-echo backlog N is the backlog its listen() asks for", "[scenario][apps]") {
    const Run r = run(parsed(R"(
host server
host client
app server frame-echo port 7 backlog 3
app client frame-client connect server:7 frames 1
expect client frames-verified 1
)"));
    INFO(failures(r.report));
    CHECK(r.report.passed);
    std::size_t listens = 0;
    for (const std::string& line : r.trace) {
        if (simtest::is(line, "ev", "sys") && simtest::is(line, "call", "listen")) {
            ++listens;
            CHECK(simtest::number(line, "backlog") == 3);
        }
    }
    CHECK(listens == 1);
}

TEST_CASE("a failing expectation of each new kind says what was observed", "[scenario][apps]") {
    SECTION("idle-client heartbeats") {
        const ExpectationFailure f = only_failure(run_scenario(parsed(plus(idle_pair, R"(
app client idle-client connect server:7 heartbeat 10s
at 60s client close
expect client heartbeats 6
)"))));
        CHECK(f.expected == "6 heartbeats sent");
        CHECK(f.happened == "5 sent");
    }
    SECTION("reconnecting-client reconnect-at") {
        const ExpectationFailure f = only_failure(run_scenario(parsed(plus(server_down_until_20s, R"(
app client reconnecting-client connect server:7 frames 1
expect client reconnect-at 0 1s 3s 7s 15s 31s
)"))));
        CHECK(f.expected == "connect attempts at 0 1s 3s 7s 15s 31s");
        CHECK(f.happened == "connect attempts at 0 1000200us 3000400us 7000600us 15000800us 31001ms");
    }
    SECTION("frame-echo error and state") {
        const ScenarioReport report = run_scenario(parsed(plus(idle_pair, R"(
app client idle-client connect server:7
at 1s client close
expect server error ECONNRESET
expect server state backoff
)")));
        REQUIRE(report.failures.size() == 2);
        CHECK(report.failures[0].happened == "connections ended with: peer_closed");
        CHECK(report.failures[1].happened == "states reached: closed, closing, established, half_closed_remote");
    }
    SECTION("frame-client state and max-buffered") {
        const ScenarioReport report = run_scenario(parsed(plus(idle_pair, R"(
app client frame-client connect server:7 frames 10 size 100 in-flight 2
expect client state backoff
expect client max-buffered 100
)")));
        REQUIRE(report.failures.size() == 2);
        CHECK(report.failures[0].happened ==
              "states reached: closed, closing, connecting, established, half_closed_local");
        CHECK(report.failures[1].happened == "240 bytes buffered at the peak");
    }
}

TEST_CASE("what a kind cannot run is a setup error before the run", "[scenario][apps]") {
    SECTION("an expectation the kind does not observe, an action it does not honour") {
        const ParseResult refused = parse_scenario(
            plus(idle_pair, "app client idle-client connect server:7\nexpect client frames-verified 1\n"), "t.scn");
        REQUIRE(refused.errors.size() == 1);
        CHECK(refused.errors.front().starts_with(
            "t.scn:6:15: expected an expectation idle-client observes (heartbeats, error, state, no-errors, done-by)"));
        Scenario scenario = parsed(plus(idle_pair, R"(
app client idle-client connect server:7
at 1s client close
expect client no-errors
)"));
        scenario.expectations.back().what = "frames-verified";
        CHECK(run_scenario(scenario).setup_error ==
              "t.scn:8:1: expectation frames-verified: idle-client does not observe it");
        scenario.actions.back().action = "send-hostile-length";
        CHECK(run_scenario(scenario).setup_error ==
              "t.scn:7:1: action send-hostile-length: idle-client does not do it");
    }
    // `eagain check` refuses these where they are written; a Scenario built
    // some other way is still refused by the runner before it runs.
    SECTION("options that make no valid connection") {
        const ParseResult refused =
            parse_scenario(plus(idle_pair,
                                "app client reconnecting-client connect server:7 backoff 2s backoff-max 1s\nexpect "
                                "no-fd-leak\n"),
                           "t.scn");
        REQUIRE(refused.errors.size() == 1);
        CHECK(refused.errors.front() ==
              "t.scn:5:72: expected a backoff-max of at least the backoff (2s), found \"1s\"");
        Scenario scenario = parsed(plus(idle_pair, R"(
app client reconnecting-client connect server:7 backoff 2s
expect no-fd-leak
)"));
        scenario.apps.back().options["backoff-max"] = "1s";
        const ScenarioReport report = run_scenario(scenario);
        CHECK(report.setup_error ==
              "t.scn:6:1: reconnecting-client client: its options make a connection config that is not valid "
              "(reconnect_delay_invalid)");
    }
    SECTION("dead-after without pings") {
        const ParseResult refused = parse_scenario(
            plus(idle_pair, "app client idle-client connect server:7 heartbeat 0 dead-after 3\nexpect no-fd-leak\n"),
            "t.scn");
        REQUIRE(refused.errors.size() == 1);
        CHECK(refused.errors.front().starts_with("t.scn:5:64: expected dead-after 0 with heartbeat 0"));
        Scenario scenario = parsed(plus(idle_pair, R"(
app client idle-client connect server:7 heartbeat 0
expect no-fd-leak
)"));
        scenario.apps.back().options["dead-after"] = "3";
        const ScenarioReport report = run_scenario(scenario);
        CHECK(report.setup_error ==
              "t.scn:6:1: idle-client client: its options make a connection config that is not valid "
              "(dead_peer_without_heartbeat)");
    }
}

}  // namespace eagain::harness
