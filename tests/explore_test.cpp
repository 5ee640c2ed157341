// Sweeps and exploration (harness/sweep.h, harness/explore.h): a sweep's
// result does not depend on how it is split; exploration turns a failing
// seed into a reproducer with exact faults that fails the same way without
// the seed, is minimal, and passes against a correct program.
#include "harness/explore.h"
#include "harness/runner.h"
#include "harness/scenario.h"
#include "harness/sweep.h"
#include "tests/scenarios/naive_echo_server.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <string>

namespace eagain::harness {
namespace {

Scenario parsed(std::string_view text) {
    ParseResult result = parse_scenario(text, "scenarios/eintr/echo-eintr.scn");
    INFO((result.errors.empty() ? std::string() : result.errors.front()));
    REQUIRE(result.ok());
    return std::move(result.scenario);
}

// An echo whose server recv is interrupted now and then: a correct server
// retries, one that treats EINTR as fatal drops the connection. The other
// faults are noise the minimiser must remove.
constexpr std::string_view eintr_echo = R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 200 size 64 in-flight 4
fault server recv chance 1/150 -> EINTR
fault client send chance 1/6 -> short 7
fault client recv chance 1/8 -> EAGAIN
net reorder client->server chance 1/4 hold 1ms
expect client frames-verified 200
expect client no-errors
expect no-fd-leak
expect done-by 10s
)";

ScenarioRunOptions naive(scenarios::NaivePitfall pitfall) {
    ScenarioRunOptions options;
    options.apps["frame-echo"] = [pitfall](const AppContext& context) {
        return std::make_unique<scenarios::NaiveEchoServer>(context, pitfall);
    };
    return options;
}

std::string explained(const ScenarioReport& report) {
    std::string text = report.setup_error;
    for (const ExpectationFailure& failure : report.failures)
        text += failure.expectation + " -> " + failure.happened + "\n";
    return text;
}

}  // namespace

// ===========================================================================
// Sweeps

TEST_CASE("seed ranges and shards parse as documented, and shards partition the range", "[explore][sweep]") {
    CHECK(parse_seed_range("3..7").has_value());
    CHECK(parse_seed_range("3..7")->size() == 5);
    CHECK(parse_seed_range("7..7")->size() == 1);
    for (const std::string_view bad : {"7..3", "3", "3..", "..7", "a..b", "3...7", "-1..2", ""})
        CHECK_FALSE(parse_seed_range(bad).has_value());
    CHECK(parse_shard("2/3").has_value());
    for (const std::string_view bad : {"0/3", "4/3", "1/0", "1", "/3", "x/y"})
        CHECK_FALSE(parse_shard(bad).has_value());

    const SeedRange range{10, 20};
    std::vector<std::uint64_t> seen;
    for (std::uint64_t i = 1; i <= 4; ++i) {
        const Shard shard{i, 4};
        for (std::uint64_t k = 0; k < shard_size(range, shard); ++k) {
            const std::uint64_t seed = shard_seed(range, shard, k);
            CHECK((seed - range.first) % 4 == i - 1);
            seen.push_back(seed);
        }
    }
    std::sort(seen.begin(), seen.end());
    std::vector<std::uint64_t> all(11);
    std::iota(all.begin(), all.end(), 10);
    CHECK(seen == all);
    CHECK(shard_size(SeedRange{1, 2}, Shard{3, 3}) == 0);
}

TEST_CASE("a sweep's outcomes and summary are the same in one process, in workers, and as shards", "[explore][sweep]") {
    const Scenario scenario = parsed(eintr_echo);
    SweepOptions options;
    options.seeds = SeedRange{1, 30};
    options.run = naive(scenarios::NaivePitfall::eintr_is_fatal);
    const SweepResult whole = sweep(scenario, options);
    REQUIRE(whole.error.empty());
    REQUIRE(whole.outcomes.size() == 30);
    const SweepSummary summary = summarize(whole.outcomes);
    // The scenario is meant to have both.
    CHECK(summary.passed > 0);
    CHECK(summary.failed > 0);
    CHECK(summary.passed + summary.failed == 30);
    CHECK(std::is_sorted(whole.outcomes.begin(), whole.outcomes.end(),
                         [](const SeedOutcome& a, const SeedOutcome& b) { return a.seed < b.seed; }));

    SECTION("in three worker processes") {
        options.jobs = 3;
        std::uint64_t reported = 0;
        options.progress = [&](const SeedOutcome&, std::uint64_t done, std::uint64_t total) {
            CHECK(done == ++reported);
            CHECK(total == 30);
        };
        const SweepResult forked = sweep(scenario, options);
        REQUIRE(forked.error.empty());
        CHECK(forked.outcomes == whole.outcomes);
        CHECK(format_summary(summarize(forked.outcomes)) == format_summary(summary));
        CHECK(reported == 30);
    }
    SECTION("as four shards, two of them in workers") {
        std::vector<SeedOutcome> joined;
        for (std::uint64_t i = 1; i <= 4; ++i) {
            options.shard = Shard{i, 4};
            options.jobs = i % 2 == 0 ? 2 : 1;
            const SweepResult part = sweep(scenario, options);
            REQUIRE(part.error.empty());
            for (const SeedOutcome& outcome : part.outcomes)
                CHECK((outcome.seed - 1) % 4 == i - 1);
            joined.insert(joined.end(), part.outcomes.begin(), part.outcomes.end());
        }
        std::sort(joined.begin(), joined.end(),
                  [](const SeedOutcome& a, const SeedOutcome& b) { return a.seed < b.seed; });
        CHECK(joined == whole.outcomes);
    }
}

TEST_CASE("the sweep summary counts each failed expectation and lists failing seeds in order", "[explore][sweep]") {
    std::vector<SeedOutcome> outcomes(5);
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        outcomes[i].seed = i + 1;
        outcomes[i].passed = i % 2 == 0;
        outcomes[i].virtual_time = Nanos(static_cast<Nanos::rep>(100 * (5 - i)));
    }
    outcomes[1].failed = {"expect client no-errors (line 9)", "expect no-fd-leak (line 11)"};
    outcomes[3].failed = {"expect client no-errors (line 9)"};
    outcomes[4].passed = false;
    outcomes[4].setup_error = "worker process killed by signal 6 (Aborted) before reporting this seed";
    const SweepSummary summary = summarize(outcomes);
    CHECK(summary.seeds_run == 5);
    CHECK(summary.passed == 2);
    CHECK(summary.failed == 2);
    CHECK(summary.not_run == 1);
    CHECK(summary.failing_seeds == std::vector<std::uint64_t>{2, 4});
    REQUIRE(summary.failures.size() == 2);
    CHECK(summary.failures[0] == std::pair<std::string, std::uint64_t>{"expect client no-errors (line 9)", 2});
    CHECK(summary.virtual_time_min == Nanos(200));
    CHECK(summary.virtual_time_median == Nanos(300));
    CHECK(summary.virtual_time_max == Nanos(500));
    const std::string table = format_summary(summary);
    CHECK(table.find("failing seeds         2 4\n") != std::string::npos);
    CHECK(table.find("could not run         1\n") != std::string::npos);
    CHECK(table.find("2  expect client no-errors (line 9)") != std::string::npos);
}

// ===========================================================================
// Exact faults

TEST_CASE("exact faults replay a seed's probabilistic faults call for call, with any seed", "[explore]") {
    // Two chance rules on one call (the first often wins), a `times` limit,
    // a reorder and link jitter: the exact form must inject the very same
    // faults at the same virtual times.
    const Scenario scenario = parsed(R"(
network jitter 30us
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 60 size 200 in-flight 8
fault client send chance 1/4 -> short 9
fault client send chance 1/3 times 5 -> EAGAIN
fault server recv chance 1/5 -> EINTR
fault server send every 4 -> short 3
net reorder client->server chance 1/3 hold 1ms
net reorder server->client chance 1/5 hold 2ms at 1ms
expect client frames-verified 60
expect client no-errors
expect done-by 10s
)");
    for (std::uint64_t seed = 1; seed <= 12; ++seed) {
        ScenarioRunOptions run;
        run.seed = seed;
        FaultLog original_log;
        run.fault_log = &original_log;
        const ScenarioReport original = run_scenario(scenario, run);
        REQUIRE(original.setup_error.empty());
        REQUIRE(original.passed);
        REQUIRE(original_log.complete());
        CHECK(exact_form_problem(scenario, original_log).empty());
        const Scenario exact = exact_faults(scenario, seed, original_log);
        CHECK(std::none_of(exact.syscall_faults.begin(), exact.syscall_faults.end(),
                           [](const SyscallFaultSpec& f) { return f.rule.when == CallSelector::with_probability; }));
        CHECK(std::none_of(exact.net_faults.begin(), exact.net_faults.end(), [](const NetFaultSpec& f) {
            const auto* reorder = std::get_if<sim::ReorderFault>(&f.fault);
            return reorder != nullptr && reorder->held_segments.empty();
        }));
        FaultLog replay_log;
        ScenarioRunOptions logged;
        logged.fault_log = &replay_log;
        const ScenarioReport replay = run_scenario(exact, logged);
        INFO("seed " << seed << ": " << original_log.injected.size() << " faults, " << original_log.held_segments.size()
                     << " held segments");
        CHECK(same_faults(replay_log, original_log));
        CHECK(replay.trace_hash != original.trace_hash);  // the trace shows the exact rules
        CHECK(replay.passed);
        // Through the text, too.
        const Scenario reread = parsed(format_scenario(exact));
        (void)run_scenario(reread, logged);
        CHECK(same_faults(replay_log, original_log));
    }
}

TEST_CASE("the failure signature ignores explanations and the counts that follow the workload", "[explore]") {
    ScenarioReport report;
    report.failures.push_back(ExpectationFailure{{9, 1}, "expect client no-errors", "x", "2 errors", {}, {}});
    report.failures.push_back(ExpectationFailure{{8, 1}, "expect client frames-verified 40", "x", "3", {}, {}});
    report.failures.push_back(ExpectationFailure{{12, 1}, "expect client error ECONNRESET", "x", "y", {}, {}});
    CHECK(failure_signature(report) == std::vector<std::string>{"expect client error ECONNRESET",
                                                                "expect client frames-verified",
                                                                "expect client no-errors"});
    CHECK(reproducer_file_name("scenarios/eintr/echo-eintr.scn", 17) == "echo-eintr.seed17.repro.scn");
}

// ===========================================================================
// Exploring

TEST_CASE("explore turns a seed that kills a naive server into a minimal reproducer with exact faults", "[explore]") {
    const Scenario scenario = parsed(eintr_echo);
    ExploreOptions options;
    options.seeds = SeedRange{1, 100};
    options.run = naive(scenarios::NaivePitfall::eintr_is_fatal);
    const ExploreResult result = explore(scenario, options);
    INFO(result.error);
    REQUIRE(result.error.empty());
    REQUIRE(result.failing_seed.has_value());
    CHECK(result.seeds_run == *result.failing_seed);
    CHECK(result.runs <= options.max_runs);
    CHECK_FALSE(result.budget_exhausted);
    CHECK(result.faults_before > 1);
    INFO(result.reproducer_text);

    // The file: its header, no probabilities left, no seed.
    const std::string& text = result.reproducer_text;
    CHECK(text.rfind("# Reproduces a failure of scenarios/eintr/echo-eintr.scn found with seed " +
                         std::to_string(*result.failing_seed) + ".\n",
                     0) == 0);
    CHECK(text.find("# generated by eagain explore; exact faults, no probabilities\n") != std::string::npos);
    CHECK(text.find("chance") == std::string::npos);
    CHECK(text.find("\nseed ") == std::string::npos);
    CHECK_FALSE(result.seed_needed);

    // Minimal: the one EINTR on the server's recv that killed the connection.
    const ParseResult reread = parse_scenario(text, "repro.scn");
    REQUIRE(reread.ok());
    const Scenario& reproducer = reread.scenario;
    CHECK(result.faults_after == 1);
    REQUIRE(reproducer.syscall_faults.size() == 1);
    CHECK(reproducer.net_faults.empty());
    const FaultRule& rule = reproducer.syscall_faults.front().rule;
    CHECK(reproducer.syscall_faults.front().host == "server");
    CHECK(rule.call == SysCall::recv);
    CHECK(rule.fault == FaultKind::eintr);
    CHECK(rule.when == CallSelector::call_list);
    CHECK(rule.call_list.size() == 1);
    // The workload shrank, and the frame count expected followed it.
    CHECK(parse_count(reproducer.apps[1].options.at("frames")) < 200);
    CHECK(reproducer.expectations[0].arguments[0] == reproducer.apps[1].options.at("frames"));

    // Fails the same way: without a seed, with another seed.
    const ScenarioReport naive_run = run_scenario(reproducer, options.run);
    INFO(explained(naive_run));
    CHECK(failure_signature(naive_run) == result.failure);
    CHECK(std::find(result.failure.begin(), result.failure.end(), "expect client no-errors") != result.failure.end());
    ScenarioRunOptions other_seed = options.run;
    other_seed.seed = 424242;
    CHECK(failure_signature(run_scenario(reproducer, other_seed)) == result.failure);

    // And the correct server passes it.
    const ScenarioReport correct = run_scenario(reproducer);
    INFO(explained(correct));
    CHECK(correct.passed);
}

TEST_CASE("a run's report lists its first faults and counts the rest, and a fault log is bounded the same way",
          "[explore][faults]") {
    // Every recv of the server moves one byte: tens of thousands of faults.
    const Scenario scenario = parsed(R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 8 size 4KiB in-flight 1
fault server recv chance 1/1 -> short 1
expect client frames-verified 8
)");
    FaultLog log;
    log.capacity = 1000;
    ScenarioRunOptions options;
    options.fault_log = &log;
    const ScenarioReport report = run_scenario(scenario, options);
    REQUIRE(report.passed);
    CHECK(report.faults_injected > 30'000);
    CHECK(report.injected.size() == max_listed_faults);
    CHECK(log.injected.size() == 1000);
    CHECK(log.injected_total == report.faults_injected);
    CHECK_FALSE(log.complete());
    CHECK(exact_form_problem(scenario, log).find("more than the 1000") != std::string::npos);
}

TEST_CASE("explore minimises a run with too many faults to list with its seed first, then writes exact faults",
          "[explore][faults]") {
    // The server's flood of one-byte reads (more faults than a fault log
    // keeps) is not what fails; the client's reset is.
    const Scenario scenario = parsed(R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 8 size 16KiB in-flight 1
fault client recv chance 1/40 -> ECONNRESET
fault server recv chance 1/1 -> short 1
expect client frames-verified 8
expect client no-errors
)");
    ExploreOptions options;
    options.seeds = SeedRange{1, 60};
    const ExploreResult result = explore(scenario, options);
    INFO(result.error);
    REQUIRE(result.error.empty());
    REQUIRE(result.failing_seed.has_value());
    INFO(result.reproducer_text);
    CHECK_FALSE(result.exact_at_first_problem.empty());
    CHECK(result.not_exact_reason.empty());
    const std::string& text = result.reproducer_text;
    CHECK(text.find("# Made exact after minimising with the seed first: at first seed ") != std::string::npos);
    CHECK(text.find("chance") == std::string::npos);
    const ParseResult reread = parse_scenario(text, "repro.scn");
    REQUIRE(reread.ok());
    REQUIRE(reread.scenario.syscall_faults.size() == 1);
    CHECK(reread.scenario.syscall_faults.front().rule.fault == FaultKind::econnreset);
    CHECK(failure_signature(run_scenario(reread.scenario)) == result.failure);
}

TEST_CASE("explore writes the chance rules and the seed when the faults cannot be listed, and says why",
          "[explore][faults]") {
    // Every recv of the client says EAGAIN: a livelock, 100,000 faults in
    // one instant; no fewer fail the same way.
    const Scenario scenario = parsed(R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 3 size 1KiB
fault client recv chance 1/1 -> EAGAIN
expect client frames-verified 3
)");
    ExploreOptions options;
    options.seeds = SeedRange{5, 9};
    const ExploreResult result = explore(scenario, options);
    INFO(result.error);
    REQUIRE(result.error.empty());
    REQUIRE(result.failing_seed == std::uint64_t{5});
    INFO(result.reproducer_text);
    CHECK(result.seed_needed);
    CHECK(result.not_exact_reason.find("more than the 20000") != std::string::npos);
    const std::string& text = result.reproducer_text;
    CHECK(text.find("# generated by eagain explore; NOT exact: its faults are still chance rules, drawn from seed 5") !=
          std::string::npos);
    CHECK(text.find("\nseed 5\n") != std::string::npos);
    CHECK(text.find("fault client recv chance 1/1 -> EAGAIN") != std::string::npos);
    const ParseResult reread = parse_scenario(text, "repro.scn");
    REQUIRE(reread.ok());
    const ScenarioReport rerun = run_scenario(reread.scenario);
    CHECK(failure_signature(rerun) == result.failure);
    CHECK(std::find(result.failure.begin(), result.failure.end(), "(the run)") != result.failure.end());
}

TEST_CASE("explore over seeds that all pass reports none and writes nothing", "[explore]") {
    const Scenario scenario = parsed(eintr_echo);
    ExploreOptions options;
    options.seeds = SeedRange{1, 15};
    std::uint64_t seen = 0;
    options.progress = [&](std::uint64_t seed, bool passed) {
        CHECK(seed == options.seeds.first + seen++);
        CHECK(passed);
    };
    const ExploreResult result = explore(scenario, options);
    CHECK(result.error.empty());
    CHECK_FALSE(result.failing_seed.has_value());
    CHECK(result.seeds_run == 15);
    CHECK(seen == 15);
    CHECK(result.reproducer_text.empty());
}

TEST_CASE("explore drops link jitter and the seed when the failure needs neither", "[explore]") {
    // No faults at all and a frame count that cannot be met: the failure
    // needs nothing random, so the minimiser drops the jitter and the seed.
    const Scenario scenario = parsed(R"(
network jitter 40us
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 8 size 64
expect client frames-verified 9
)");
    ExploreOptions options;
    options.seeds = SeedRange{5, 6};
    const ExploreResult result = explore(scenario, options);
    REQUIRE(result.error.empty());
    REQUIRE(result.failing_seed == 5u);
    CHECK(result.faults_before == 0);
    CHECK_FALSE(result.jitter_needed);
    CHECK_FALSE(result.seed_needed);
    CHECK(result.reproducer.network.jitter == Nanos{0});
    CHECK(result.reproducer_text.find("No seed needed") != std::string::npos);
}

TEST_CASE("explore reports a scenario that cannot run as an error", "[explore]") {
    // The parser refuses this where it is written; a Scenario built in code
    // meets the runner's check.
    Scenario scenario = parsed(R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7
expect server heartbeats 0
)");
    scenario.expectations.back().what = "frames-verified";
    ExploreOptions options;
    options.seeds = SeedRange{1, 3};
    const ExploreResult result = explore(scenario, options);
    CHECK(result.error.find("frame-echo does not observe it") != std::string::npos);
    CHECK_FALSE(result.failing_seed.has_value());
}

}  // namespace eagain::harness
