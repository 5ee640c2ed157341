// Proof that the scenarios catch the bugs they say they guard against. Each
// scenario runs three times: with the built-in apps (it passes), with a
// naive app written the seeds' way but carefully (it passes too, so the
// naive code as such is not what fails), and with that naive app carrying
// one pitfall (tests/scenarios/naive_echo_server.h, naive_client.h): then
// it fails, and the failure names the expectation that caught it and the
// symptom, not just "failed".
#include "harness/runner.h"
#include "harness/scenario.h"
#include "tests/scenarios/naive_client.h"
#include "tests/scenarios/naive_echo_server.h"
#include "tests/scenarios/naive_policy_client.h"

#include <catch2/catch.hpp>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace eagain::scenarios {
namespace {

harness::Scenario load(const std::string& relative) {
    const std::string path = std::string(EAGAIN_SOURCE_DIR) + "/" + relative;
    std::ifstream in(path);
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    harness::ParseResult parsed = harness::parse_scenario(text.str(), relative);
    INFO((parsed.errors.empty() ? std::string() : parsed.errors.front()));
    REQUIRE(parsed.ok());
    return std::move(parsed.scenario);
}

std::string failed_expectations(const harness::ScenarioReport& report) {
    std::string text = report.setup_error;
    for (const harness::ExpectationFailure& failure : report.failures)
        text += failure.expectation + " -> " + failure.happened + "\n";
    return text;
}

struct Detection {
    harness::ScenarioReport correct;  // the built-in apps
    harness::ScenarioReport careful;  // the naive app without a pitfall
    harness::ScenarioReport naive;    // the naive app with its pitfall
};

Detection detect(const std::string& file, const std::string& kind, const harness::AppFactory& careful,
                 const harness::AppFactory& naive) {
    const harness::Scenario scenario = load(file);
    Detection d;
    d.correct = run_scenario(scenario);
    harness::ScenarioRunOptions options;
    options.apps[kind] = careful;
    d.careful = run_scenario(scenario, options);
    options.apps[kind] = naive;
    d.naive = run_scenario(scenario, options);
    return d;
}

Detection detect(const std::string& file, NaivePitfall pitfall) {
    return detect(file, "frame-echo", naive_echo(NaivePitfall::none), naive_echo(pitfall));
}

Detection detect(const std::string& file, NaiveClientPitfall pitfall) {
    return detect(file, "frame-client", naive_frame_client(NaiveClientPitfall::none), naive_frame_client(pitfall));
}

// A naive policy client in kind's place (tests/scenarios/naive_policy_client.h).
Detection detect(const std::string& file, NaiveKind kind, NaivePolicyPitfall pitfall) {
    const std::string name = kind == NaiveKind::frame_client  ? "frame-client"
                             : kind == NaiveKind::idle_client ? "idle-client"
                                                              : "reconnecting-client";
    return detect(file, name, naive_policy_client(kind, NaivePolicyPitfall::none), naive_policy_client(kind, pitfall));
}

void check_passes(const harness::ScenarioReport& report, std::string_view who) {
    INFO(std::string(who) + ": " + failed_expectations(report));
    REQUIRE(report.setup_error.empty());
    CHECK(report.passed);
}

// The scenario passes with the built-in and the careful naive app and
// fails with the naive one.
void check_caught(const Detection& d) {
    check_passes(d.correct, "built-in app");
    check_passes(d.careful, "careful naive app");
    INFO("naive app: " + failed_expectations(d.naive));
    REQUIRE(d.naive.setup_error.empty());
    CHECK_FALSE(d.naive.passed);
}

// The naive run's failure of `expectation` (the statement as written).
harness::ExpectationFailure failure_of(const Detection& d, std::string_view expectation) {
    for (const harness::ExpectationFailure& failure : d.naive.failures) {
        if (failure.expectation == expectation)
            return failure;
    }
    INFO("naive app: " + failed_expectations(d.naive));
    FAIL("no failure of " << expectation);
    return {};
}

// N from "N verified, M wrong...".
std::uint64_t verified(const std::string& happened) {
    std::uint64_t n = 0;
    const auto [end, error] = std::from_chars(happened.data(), happened.data() + happened.size(), n);
    REQUIRE(error == std::errc{});
    REQUIRE(std::string_view(end, happened.data() + happened.size()).starts_with(" verified, "));
    return n;
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

// ---------------------------------------------------------------------------
// Servers in frame-echo's place

TEST_CASE("short-send-at-echo-server catches a server that ignores send()'s count", "[scenario][detection]") {
    const Detection d =
        detect("scenarios/partial-writes/short-send-at-echo-server.scn", NaivePitfall::ignores_partial_writes);
    // The lost bytes put the client's stream out of step: frames come back
    // wrong or not at all, and the run never completes.
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect client frames-verified 300");
    CHECK(d.naive.failures.front().expectation == failure.expectation);
    CHECK(verified(failure.happened) < 300);
}

TEST_CASE("eintr-on-send-recv-epoll-wait catches a server that treats EINTR as fatal", "[scenario][detection]") {
    const Detection d = detect("scenarios/eintr/eintr-on-send-recv-epoll-wait.scn", NaivePitfall::eintr_is_fatal);
    // The server closes healthy connections: the client's end early.
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect client no-errors");
    CHECK(contains(failure.happened, "ended after"));
}

TEST_CASE("eagain-keeps-the-remainder catches a server that drops its output on EAGAIN", "[scenario][detection]") {
    const Detection d = detect("scenarios/eagain/eagain-keeps-the-remainder.scn", NaivePitfall::drops_data_on_eagain);
    // The echoes the server threw away never come: the client waits for
    // them until the deadline.
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect client frames-verified 400");
    CHECK(verified(failure.happened) < 400);
    CHECK(contains(failure_of(d, "expect done-by 5s").happened, "still running at 5s"));
}

TEST_CASE("edge-triggered-short-reads catches an edge-triggered server that reads once per edge",
          "[scenario][detection]") {
    const Detection d = detect("scenarios/epoll/edge-triggered-short-reads.scn", NaivePitfall::et_reads_once);
    // The bytes left behind get no edge: the last frames never come back.
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect client frames-verified 500");
    CHECK(verified(failure.happened) < 500);
    CHECK(contains(failure_of(d, "expect done-by 5s").happened, "still running at 5s"));
}

TEST_CASE("edge-triggered-short-reads catches an edge-triggered server that stops at a short read",
          "[scenario][detection]") {
    // The naive loop
    //     for (;;) { n = recv(fd, buf, sizeof buf, 0); ...; if (n < sizeof buf) break; }
    // stops at the first injected short read with bytes still queued, and
    // no edge comes for them (FaultySys repays short writes with EPOLLOUT,
    // never short reads with EPOLLIN: core/faulty_sys.h).
    const Detection d = detect("scenarios/epoll/edge-triggered-short-reads.scn", NaivePitfall::et_stops_on_short_read);
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect client frames-verified 500");
    CHECK(verified(failure.happened) < 500);
    CHECK(contains(failure_of(d, "expect done-by 5s").happened, "still running at 5s"));
}

TEST_CASE("client-closes-first catches a level-triggered server that ignores recv 0 (it spins)",
          "[scenario][detection]") {
    const Detection d = detect("scenarios/half-close/client-closes-first.scn", NaivePitfall::ignores_recv_zero);
    // The finished stream stays readable: every poll reports it, the server
    // reads 0 again, and time never moves on.
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect no-fd-leak");
    CHECK(contains(failure.happened, "livelock"));
    CHECK(d.naive.failures.front().expectation == "(the run)");
    CHECK(contains(d.naive.failures.front().happened, "livelock"));
}

TEST_CASE("client-closes-first-edge-triggered catches an edge-triggered server that ignores recv 0 (it leaks)",
          "[scenario][detection]") {
    const Detection d =
        detect("scenarios/half-close/client-closes-first-edge-triggered.scn", NaivePitfall::ignores_recv_zero);
    // 5 descriptors before the clients (stdio, epoll, listener), and one for
    // each of the 4 connections left in CLOSE_WAIT.
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect no-fd-leak");
    CHECK(failure.expected == "server holds at most 5 descriptors, as before the clients started");
    CHECK(failure.happened == "server holds 9 (4 leaked)");
}

TEST_CASE("oneshot-rearm catches a server that never re-arms EPOLLONESHOT", "[scenario][detection]") {
    const Detection d = detect("scenarios/epoll/oneshot-rearm.scn", NaivePitfall::oneshot_not_rearmed);
    // The first event is served; the registration stays disarmed and the
    // connection hangs with the client's frames queued.
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect client frames-verified 300");
    CHECK(verified(failure.happened) < 300);
    CHECK(contains(failure_of(d, "expect done-by 5s").happened, "still running at 5s"));
}

TEST_CASE("oversized-frame catches a server that trusts the length field", "[scenario][detection]") {
    const Detection d = detect("scenarios/framing/oversized-frame.scn", NaivePitfall::trusts_length_field);
    // Frames twice the limit are buffered and echoed: the client gets all
    // of them back and closes on its own, where it should have been cut off.
    check_caught(d);
    CHECK(failure_of(d, "expect client frames-verified 0").happened == "5 verified, 0 wrong");
    CHECK(failure_of(d, "expect client error peer_closed").happened == "connections ended with: local_close");
}

TEST_CASE("client-gone-while-server-writes catches a server that sends without MSG_NOSIGNAL", "[scenario][detection]") {
    const Detection d =
        detect("scenarios/rst/client-gone-while-server-writes.scn", NaivePitfall::sends_without_nosignal);
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect no-sigpipe");
    CHECK(contains(failure.happened, "server: 1 sends without MSG_NOSIGNAL hit EPIPE"));
}

TEST_CASE("one-byte-dribble catches a decoder that assumes a whole header per read", "[scenario][detection]") {
    const Detection d = detect("scenarios/framing/one-byte-dribble.scn", NaivePitfall::decoder_assumes_whole_header);
    // Every recv holds one byte, never a whole header: the server drops each
    // and echoes nothing, so the client waits until the deadline.
    check_caught(d);
    CHECK(failure_of(d, "expect client frames-verified 50").happened == "0 verified, 0 wrong");
    CHECK(contains(failure_of(d, "expect done-by 5s").happened, "still running at 5s"));
}

TEST_CASE("sticky-frames catches a server that takes one frame per read", "[scenario][detection]") {
    const Detection d = detect("scenarios/framing/sticky-frames.scn", NaivePitfall::one_frame_per_read);
    // Each read carries dozens of frames and only the first is echoed: the
    // rest pile up unparsed, and once the client has nothing more to send
    // no read comes to take them.
    check_caught(d);
    // 256 in flight, one echoed per read: the last 255 are never echoed.
    CHECK(failure_of(d, "expect client frames-verified 5000").happened == "4745 verified, 0 wrong");
    CHECK(contains(failure_of(d, "expect done-by 5s").happened, "still running at 5s"));
}

TEST_CASE("stalled-reader-no-starvation catches a server with no backpressure", "[scenario][detection]") {
    const Detection d =
        detect("scenarios/many-connections/stalled-reader-no-starvation.scn", NaivePitfall::unbounded_output);
    // The server reads on from the client that reads nothing, and its
    // output for that client grows with everything the client sends.
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect server max-buffered 1200KiB");
    // All the slow client sent but what its receive buffer and the server's
    // send buffer took (1600 frames of 1044 bytes, less 192 KiB).
    CHECK(failure.happened == "1473792 bytes buffered at the peak");
    // Only the memory shows it: the others are still served, and the slow
    // client gets every echo once it reads again.
    CHECK(d.naive.failures.size() == 1);
}

TEST_CASE("eintr-and-aborted-accept catches an accept loop that gives up on EINTR", "[scenario][detection]") {
    const Detection d = detect("scenarios/eintr/eintr-and-aborted-accept.scn", NaivePitfall::accept_gives_up_on_eintr);
    // The first accept4 fails with EINTR and the server closes its
    // listener: the connections waiting in its queue are reset, unserved.
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect client frames-verified 80");
    CHECK(failure.happened.starts_with("0 verified, 0 wrong"));
    CHECK(contains(failure_of(d, "expect client no-errors").happened, "ECONNRESET"));
}

// ---------------------------------------------------------------------------
// Clients in frame-client's place

TEST_CASE("refused catches a client that skips SO_ERROR after EINPROGRESS", "[scenario][detection]") {
    const Detection d = detect("scenarios/connect/refused.scn", NaiveClientPitfall::skips_so_error);
    // Writability taken for "connected": the refusal surfaces from the
    // first send as an I/O error on an established connection, not as a
    // failed connect.
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect client error connect_failed");
    CHECK(failure.happened == "connections ended with: ECONNREFUSED, io_error");
}

TEST_CASE("timed-out catches a client with no connect timeout of its own", "[scenario][detection]") {
    const Detection d = detect("scenarios/connect/timed-out.scn", NaiveClientPitfall::no_connect_timeout);
    // The kernel retries the SYN for ~127 s; at 11 s the client is still
    // waiting, and nothing has ended.
    check_caught(d);
    CHECK(failure_of(d, "expect client error ETIMEDOUT").happened == "no connection ended");
    CHECK(contains(failure_of(d, "expect done-by 11s").happened, "still running at 11s"));
}

TEST_CASE("eintr-on-connect catches a client that treats EINTR from connect() as failure", "[scenario][detection]") {
    const Detection d = detect("scenarios/eintr/eintr-on-connect.scn", NaiveClientPitfall::eintr_connect_is_failure);
    // Every connection gives up on an attempt that was still going on.
    check_caught(d);
    const harness::ExpectationFailure failure = failure_of(d, "expect client no-errors");
    CHECK(contains(failure.happened, "4 errors"));
    CHECK(contains(failure.happened, "connect_failed (EINTR)"));
    CHECK(verified(failure_of(d, "expect client frames-verified 40").happened) == 0);
}

// ---------------------------------------------------------------------------
// Client policy: heartbeat, dead peer, reconnect

TEST_CASE("no-ping-while-traffic-flows catches a client that pings on a fixed timer", "[scenario][detection]") {
    const Detection d = detect("scenarios/heartbeat/no-ping-while-traffic-flows.scn", NaiveKind::frame_client,
                               NaivePolicyPitfall::pings_on_fixed_timer);
    // A ping every 10 ms from the connection at 2 ms to the last echo at
    // 2.002 s, frames flowing all the while; the frames still come back.
    check_caught(d);
    REQUIRE(d.naive.failures.size() == 1);
    CHECK(failure_of(d, "expect client heartbeats 0").happened == "199 sent");
}

TEST_CASE("dead-peer-detected catches a client that never gives up on a silent peer", "[scenario][detection]") {
    const Detection d =
        detect("scenarios/heartbeat/dead-peer-detected.scn", NaiveKind::frame_client, NaivePolicyPitfall::no_dead_peer);
    // It pings into the partition (at 1.5, 2.5 and 3.5 s) and waits: at the
    // deadline its connection is still open, and TCP would keep it so for
    // another quarter of an hour.
    check_caught(d);
    CHECK(failure_of(d, "expect client error dead_peer").happened == "no connection ended");
    CHECK(failure_of(d, "expect client heartbeats 2").happened == "3 sent");
    CHECK(contains(failure_of(d, "expect done-by 3500ms").happened, "still running at 3500ms"));
}

TEST_CASE("idle-heartbeats catches an idle client that never gives up on a silent peer", "[scenario][detection]") {
    // The same pitfall in idle-client's place: the client cut off at 25 s
    // pings every 10 s until the deadline, one ping more per interval.
    const Detection d =
        detect("scenarios/heartbeat/idle-heartbeats.scn", NaiveKind::idle_client, NaivePolicyPitfall::no_dead_peer);
    check_caught(d);
    CHECK(failure_of(d, "expect lost error dead_peer").happened == "no connection ended");
    CHECK(failure_of(d, "expect lost heartbeats 4").happened == "6 sent");
    CHECK(contains(failure_of(d, "expect done-by 61s").happened, "still running at 61s"));
}

TEST_CASE("backoff-schedule catches a client that reconnects at a fixed delay", "[scenario][detection]") {
    const Detection d = detect("scenarios/reconnect/backoff-schedule.scn", NaiveKind::reconnecting_client,
                               NaivePolicyPitfall::fixed_reconnect_delay);
    // A connect every 1 s (+ the 200 us until the refusal) for as long as
    // the server is down, 21 where the schedule makes 6. It does get its
    // frames back in the end: the schedule is the only thing wrong.
    check_caught(d);
    REQUIRE(d.naive.failures.size() == 1);
    CHECK(failure_of(d, "expect client reconnect-at 0 1000200us 3000400us 7000600us 15000800us 31001ms").happened ==
          "connect attempts at 0 1000200us 2000400us 3000600us 4000800us 5001ms 6001200us 7001400us 8001600us "
          "9001800us 10002ms 11002200us 12002400us 13002600us 14002800us 15003ms 16003200us 17003400us "
          "18003600us 19003800us 20004ms");
}

TEST_CASE("backoff-schedule catches a client that never reconnects", "[scenario][detection]") {
    const Detection d = detect("scenarios/reconnect/backoff-schedule.scn", NaiveKind::reconnecting_client,
                               NaivePolicyPitfall::never_reconnects);
    // The first refusal is the end of it.
    check_caught(d);
    CHECK(failure_of(d, "expect client reconnect-at 0 1000200us 3000400us 7000600us 15000800us 31001ms").happened ==
          "connect attempts at 0");
    CHECK(failure_of(d, "expect client frames-verified 50").happened ==
          "0 verified, 0 wrong; first problem: ended after 0 of 50 frames: connect_failed (ECONNREFUSED)");
}

TEST_CASE("server-restart catches clients that never reconnect", "[scenario][detection]") {
    const Detection d = detect("scenarios/reconnect/server-restart.scn", NaiveKind::reconnecting_client,
                               NaivePolicyPitfall::never_reconnects);
    // Each client stops at the server's FIN with the frames echoed before
    // the restart, and never connects again.
    check_caught(d);
    struct Client {
        const char* name;
        const char* reconnect_at;
        const char* frames;
        const char* happened;
    };
    for (const Client& c : {
             Client{"c1", "0 112ms", "300",
                    "128 verified, 0 wrong; first problem: ended after 128 of 300 frames: peer_closed"},
             Client{"c2", "0 113ms", "200",
                    "64 verified, 0 wrong; first problem: ended after 64 of 200 frames: peer_closed"},
             Client{"c3", "0 111500us", "500",
                    "320 verified, 0 wrong; first problem: ended after 320 of 500 frames: peer_closed"},
         }) {
        const std::string app = std::string("expect ") + c.name;
        CHECK(failure_of(d, app + " reconnect-at " + c.reconnect_at).happened == "connect attempts at 0");
        CHECK(failure_of(d, app + " frames-verified " + c.frames).happened == c.happened);
        CHECK(contains(failure_of(d, app + " no-errors").happened, "1 errors"));
    }
}

TEST_CASE("backoff-starts-over catches a backoff that never starts over", "[scenario][detection]") {
    const Detection d = detect("scenarios/reconnect/backoff-starts-over.scn", NaiveKind::reconnecting_client,
                               NaivePolicyPitfall::backoff_never_reset);
    // Three refusals before the success at 7 s are still counted when the
    // restart at 10 s ends it: the next delay is 8 s, not 1 s.
    check_caught(d);
    REQUIRE(d.naive.failures.size() == 1);
    CHECK(failure_of(d, "expect client reconnect-at 0 1000200us 3000400us 7000600us 11000100us").happened ==
          "connect attempts at 0 1000200us 3000400us 7000600us 18000100us");
}

}  // namespace eagain::scenarios
