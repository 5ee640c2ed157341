// The scenario runner (harness/runner.h): a scenario that holds passes, one
// that does not fails with the expectation explained, and what the runner
// cannot run yet is said, never silently passed.
#include "core/rng.h"
#include "harness/runner.h"
#include "harness/scenario.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace eagain::harness {
namespace {

Scenario parsed(std::string_view text) {
    ParseResult result = parse_scenario(text, "t.scn");
    INFO((result.errors.empty() ? std::string() : result.errors.front()));
    REQUIRE(result.ok());
    return std::move(result.scenario);
}

constexpr std::string_view echo = R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 200 size 64 in-flight 1
fault client send every 5 -> short 3
fault server recv every 4 -> EAGAIN
net reorder client -> server chance 1/4 hold 1ms
)";

}  // namespace

TEST_CASE("a scenario whose expectations hold passes, with the faults it injected counted", "[scenario][runner]") {
    const ScenarioReport report = run_scenario(parsed(std::string(echo) + R"(
expect client frames-verified 200
expect client no-errors
expect no-fd-leak
expect no-sigpipe
expect done-by 5s
)"));
    REQUIRE(report.setup_error.empty());
    INFO((report.failures.empty() ? std::string() : report.failures.front().happened));
    CHECK(report.passed);
    CHECK(report.faults_injected >= 40 + 40);  // every 5th of 200 sends, every 4th of ~200 recvs
    CHECK(report.virtual_time > Nanos{0});
    CHECK(report.trace_hash.size() == 16);
}

TEST_CASE("a failed expectation says what was expected, what happened, when, and the trace before it",
          "[scenario][runner]") {
    const ScenarioReport report = run_scenario(parsed(std::string(echo) + R"(
expect client frames-verified 201
expect done-by 5s
)"));
    REQUIRE(report.setup_error.empty());
    CHECK_FALSE(report.passed);
    REQUIRE(report.failures.size() == 1);
    const ExpectationFailure& failure = report.failures.front();
    CHECK(failure.where.line == 10);
    CHECK(failure.expectation == "expect client frames-verified 201");
    CHECK(failure.expected == "201 frames verified, none wrong");
    CHECK(failure.happened == "200 verified, 0 wrong");
    CHECK(failure.at > Nanos{0});  // when the last frame came back
    CHECK(failure.at <= report.virtual_time);
    CHECK(failure.trace_tail.size() == 12);
}

TEST_CASE("a reset mid-stream is seen as ECONNRESET by the client, and a run that cannot finish fails done-by",
          "[scenario][runner]") {
    const ScenarioReport reset = run_scenario(parsed(R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 1000 size 64
net reset server port 7 offset 3000
expect client error ECONNRESET
expect client no-errors
expect no-fd-leak
)"));
    REQUIRE(reset.setup_error.empty());
    REQUIRE(reset.failures.size() == 1);  // no-errors, the rest hold
    CHECK(reset.failures.front().expectation == "expect client no-errors");
    CHECK(reset.failures.front().happened.find("ECONNRESET") != std::string::npos);

    const ScenarioReport stalled = run_scenario(parsed(R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 100
net partition server client at 0 for 1h
expect done-by 500ms
expect no-fd-leak
)"));
    REQUIRE(stalled.failures.size() == 2);
    CHECK(stalled.failures[0].happened.starts_with("still running"));
    CHECK(stalled.failures[1].happened.starts_with("not checkable"));
}

TEST_CASE("every done-by is judged against when its app, or the last app, was done, whatever its place in the file",
          "[scenario][runner]") {
    // scenarios/many-connections/stalled-reader-no-starvation.scn with its
    // done-by lines replaced: the slow client reads again at 3s and is done
    // just after, so the world is done after 3s, not by 1s.
    const std::string stalled = R"(seed 23
host server
host slow
host fast
app server frame-echo port 7
app slow frame-client connect server:7 frames 1600 size 1KiB in-flight 1600
app fast frame-client connect server:7 frames 4000 size 200 conns 8 in-flight 16
at 0 slow stop-reading
at 3s slow resume-reading
expect fast frames-verified 4000
expect slow frames-verified 1600
)";
    const ScenarioReport world_first = run_scenario(parsed(stalled + "expect done-by 1s\nexpect slow done-by 5s\n"));
    REQUIRE(world_first.setup_error.empty());
    REQUIRE(world_first.failures.size() == 1);
    CHECK(world_first.failures[0].expectation == "expect done-by 1s");
    CHECK(world_first.failures[0].happened.starts_with("the last app was done at 3"));
    CHECK(world_first.virtual_time > std::chrono::seconds{3});

    // The same with the app's done-by first: the run still lasts to the
    // latest done-by, so the app is judged on when it was done.
    const ScenarioReport app_first = run_scenario(parsed(stalled + "expect slow done-by 1s\nexpect done-by 5s\n"));
    REQUIRE(app_first.failures.size() == 1);
    CHECK(app_first.failures[0].expectation == "expect slow done-by 1s");
    CHECK(app_first.failures[0].happened.starts_with("done at 3"));

    const ScenarioReport both_hold = run_scenario(parsed(stalled + "expect fast done-by 1s\nexpect done-by 5s\n"));
    INFO((both_hold.failures.empty() ? std::string() : both_hold.failures.front().happened));
    CHECK(both_hold.passed);
}

TEST_CASE("the same scenario and seed give the same trace hash, --seed changes it", "[scenario][runner]") {
    const Scenario scenario = parsed(std::string(echo) + "network jitter 100us\nexpect done-by 5s\n");
    const ScenarioReport first = run_scenario(scenario);
    const ScenarioReport again = run_scenario(scenario);
    CHECK(first.trace_hash == again.trace_hash);
    ScenarioRunOptions other;
    other.seed = 99;
    CHECK(run_scenario(scenario, other).trace_hash != first.trace_hash);
}

TEST_CASE("the trace hash is FNV-1a of exactly the lines the trace sink was given", "[scenario][runner]") {
    // What `eagain run --trace` writes: every line the sink gets and a newline.
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    std::uint64_t lines = 0;
    ScenarioRunOptions options;
    options.trace_sink = [&](std::string_view line) {
        for (const char c : std::string(line) + "\n") {
            hash ^= static_cast<unsigned char>(c);
            hash *= 0x100000001b3ULL;
        }
        ++lines;
    };
    const ScenarioReport report = run_scenario(parsed(std::string(echo) + "expect done-by 5s\n"), options);
    REQUIRE(report.setup_error.empty());
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
    CHECK(report.trace_lines == lines);
    CHECK(report.trace_hash == hex);
}

TEST_CASE("adding unrelated hosts and apps leaves an app's trace lines as they were", "[scenario][runner][seed]") {
    // Every random stream here is seeded by name: the client's chance faults
    // ("faults:client"), the links' jitter ("link:client->server", ...), the
    // reorder fault's; a pair declared before them draws from its own.
    constexpr std::string_view pair = R"(
network latency 1ms jitter 300us
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 100 size 200 in-flight 4
fault client send chance 1/2 -> short 7
fault client recv chance 1/3 -> EINTR
net reorder client->server chance 1/4 hold 2ms
expect client frames-verified 100
)";
    constexpr std::string_view bystanders = R"(
host other-server
host other-client
app other-server frame-echo port 9
app other-client frame-client connect other-server:9 frames 100 size 300
fault other-client send chance 1/2 -> short 3
net reorder other-client->other-server chance 1/3 hold 1ms
)";
    const auto lines_of_the_pair = [](std::string_view text) {
        std::vector<std::string> lines;
        ScenarioRunOptions options;
        options.trace_sink = [&](std::string_view line) {
            if (line.find("\"server") != std::string_view::npos || line.find("\"client") != std::string_view::npos)
                lines.emplace_back(line);
        };
        const ScenarioReport report = run_scenario(parsed(text), options);
        CHECK(report.passed);
        return lines;
    };
    const std::vector<std::string> alone = lines_of_the_pair(pair);
    // Declared after the pair (declared before, they would take the pair's
    // addresses, which follow the host's index): streams forked in
    // declaration order, or one jitter stream for every link, would move.
    const std::string with_others = std::string(pair) + std::string(bystanders);
    const std::vector<std::string> among_others = lines_of_the_pair(with_others);
    REQUIRE(alone.size() > 200);
    CHECK(std::count_if(alone.begin(), alone.end(),
                        [](const std::string& l) { return l.find("\"ev\":\"fault\"") != std::string::npos; }) > 20);
    CHECK(alone == among_others);
}

TEST_CASE("Rng::derive_seed depends on the root and the name, nothing else", "[rng][seed]") {
    CHECK(Rng::derive_seed(1, "app:client") == Rng::derive_seed(1, "app:client"));
    CHECK(Rng::derive_seed(1, "app:client") != Rng::derive_seed(2, "app:client"));
    CHECK(Rng::derive_seed(1, "app:client") != Rng::derive_seed(1, "app:server"));
    CHECK(Rng::derive_seed(1, "link:a->b") != Rng::derive_seed(1, "link:b->a"));
    CHECK(Rng::derive_seed(0, "") != 0);
}

TEST_CASE("counts written with underscores mean the same number when run as when parsed", "[scenario][runner]") {
    const ScenarioReport report = run_scenario(parsed(R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 1_200
expect client frames-verified 1_200
)"));
    REQUIRE(report.setup_error.empty());
    INFO((report.failures.empty() ? std::string() : report.failures.front().happened));
    CHECK(report.passed);
}

TEST_CASE("an expectation or action an app kind cannot honour is a setup error, not a pass", "[scenario][runner]") {
    // The parser refuses both where they are written (the kind's
    // AppKindEntry); a Scenario built in code meets the same entry in the
    // runner, before anything runs.
    constexpr std::string_view text = R"(
host server
host client
app server frame-echo
app client frame-client connect server:7 frames 3
at 1ms server stop-reading
expect server heartbeats 0
)";
    SECTION("an echo server does not verify frames: only a client can") {
        const ParseResult refused = parse_scenario(
            std::string(text).replace(std::string(text).find("heartbeats 0"), 12, "frames-verified 3"), "t.scn");
        REQUIRE(refused.errors.size() == 1);
        CHECK(refused.errors.front().starts_with("t.scn:7:15: expected an expectation frame-echo observes"));
        Scenario scenario = parsed(text);
        scenario.expectations.back().what = "frames-verified";
        const ScenarioReport report = run_scenario(scenario);
        CHECK_FALSE(report.passed);
        CHECK(report.setup_error == "t.scn:7:1: expectation frames-verified: frame-echo does not observe it");
    }
    SECTION("an action the kind does not do") {
        const ParseResult refused = parse_scenario(
            std::string(text).replace(std::string(text).find("stop-reading"), 12, "send-hostile-length"), "t.scn");
        REQUIRE(refused.errors.size() == 1);
        CHECK(refused.errors.front().starts_with("t.scn:6:15: expected an action frame-echo honours"));
        Scenario scenario = parsed(text);
        scenario.actions.back().action = "send-hostile-length";
        const ScenarioReport report = run_scenario(scenario);
        CHECK_FALSE(report.passed);
        CHECK(report.setup_error == "t.scn:6:1: action send-hostile-length: frame-echo does not do it");
    }
}

TEST_CASE("a server stopped by an action is not a descriptor leak, fewer descriptors than before are fine",
          "[scenario][runner]") {
    const ScenarioReport report = run_scenario(parsed(R"(
host server
host client
app server frame-echo
app client frame-client connect server:7 frames 20
at 10ms server stop
expect client frames-verified 20
expect no-fd-leak
)"));
    INFO((report.failures.empty() ? report.setup_error : report.failures.front().happened));
    CHECK(report.passed);
}

TEST_CASE("format_duration writes the exact value back in the largest unit", "[scenario][runner]") {
    using namespace std::chrono_literals;
    CHECK(format_duration(0ns) == "0");
    CHECK(format_duration(2s) == "2s");
    CHECK(format_duration(1000200us) == "1000200us");
    CHECK(format_duration(90min) == "90m");
    CHECK(format_duration(2h) == "2h");
    CHECK(format_duration(1500ms) == "1500ms");
    CHECK(format_duration(7ns) == "7ns");
    for (const Nanos d : {Nanos{1ns}, Nanos{999ns}, Nanos{1001us}, Nanos{61s}, Nanos{3601s}})
        CHECK(parse_duration(format_duration(d)) == d);
}

}  // namespace eagain::harness

namespace eagain::harness {
namespace {

TEST_CASE("setup errors the parser cannot see still name the statement's place", "[scenario][runner]") {
    SECTION("a fault rule FaultySys refuses, in a Scenario built in code") {
        Scenario scenario = parsed(R"(
host server
host client
app server frame-echo
app client frame-client connect server:7 frames 3
fault client send call 1 -> short 5
expect client frames-verified 3
)");
        scenario.syscall_faults.back().rule.short_limit_bytes = 0;
        const ScenarioReport report = run_scenario(scenario);
        CHECK_FALSE(report.passed);
        CHECK(report.setup_error == "t.scn:6:1: fault refused by FaultySys (a short transfer needs short_limit_bytes >= 1)");
    }
    SECTION("a server that cannot listen: two on one port") {
        const ScenarioReport report = run_scenario(parsed(R"(
host server
app server frame-echo port 7
app server byte-echo port 7 name second
expect no-fd-leak
)"));
        CHECK_FALSE(report.passed);
        CHECK(report.setup_error == "t.scn:4:1: byte-echo second could not listen: EADDRINUSE");
    }
}

}  // namespace
}  // namespace eagain::harness
