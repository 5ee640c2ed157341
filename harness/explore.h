// Exploration: run a scenario with probabilistic faults over seeds until one
// fails, then turn that seed into a reproducer — a scenario file that lists
// the exact faults that happened, minimised — which fails the same way
// without the seed and keeps doing so after unrelated code changes (a bare
// seed does not: any change in how many calls are made or random numbers
// drawn sends it somewhere else).
//
// The steps (explore()):
//   1. Seeds in order until the first whose run fails (a run that cannot
//      start is an error, not a failure).
//   2. Exact faults (exact_faults()): every `chance` syscall rule becomes a
//      `calls K1,K2,...` rule listing the call numbers it fired on
//      (FaultEvent::call_number: its own count of matching calls, which no
//      other rule changes), in the same place among the rules so the first
//      rule that fires still wins; `times` goes (the list already holds only
//      the hits). Every `net reorder ... chance` becomes `segments S1,S2,...`
//      the same way. A rule or reorder that never fired is left out. Other
//      faults were exact already and stay. The exact scenario is run with
//      the same seed and must inject the same faults, at the same calls and
//      virtual times, and fail the same way, or exploration stops with an
//      error (that would be a determinism bug).
//      Memory stays bounded: runs record their faults in a FaultLog of
//      FaultLog::capacity. When the exact form does not fit
//      (exact_form_problem: more faults than the log holds, more than
//      FaultySys::max_rules statements on a host, a line over
//      max_line_bytes), the chance form is minimised first with the seed
//      fixed (step 3 over whole rules, jitter, workload), which usually
//      leaves few enough faults; then the exact form is made from that
//      run. If even that does not fit, the reproducer is the minimised
//      chance form with its seed, and its header says why it is not exact
//      (ExploreResult::not_exact_reason) — it still runs and fails the
//      same way, but only as long as the code makes the same calls.
//   3. Minimising, each step kept only if the run still fails the same way
//      (failure_signature() equal), within max_runs runs in all:
//      a. delta debugging (ddmin) over the faults — each call of a `calls`
//         rule, each segment of a `segments` reorder, each other rule or
//         network fault whole — first "no faults at all", then halves,
//         then smaller pieces down to single faults;
//      b. link jitter set to 0 everywhere;
//      c. the workload halved while it still fails: the options `frames`,
//         `bytes` and `conns` that the file writes, one app at a time; an
//         `expect APP frames-verified N` or `bytes-received N` that equalled
//         the old count follows it;
//      d. ddmin again over what is left.
//   4. The seed: the result is run with two other seeds; if it fails the
//      same way with both, the reproducer has no seed statement. Otherwise
//      (link jitter or an app's own randomness, such as reconnect jitter,
//      is part of the failure) it keeps `seed N` and its header says why.
//   5. The reproducer's text is parsed back and run once more to check it.
//
// "Fails the same way" is the same set of failed expectation statements,
// not the same explanation text; a frames-verified or bytes-received
// statement counts as itself whatever its number (the workload step changes
// it).
#pragma once

#include "harness/runner.h"
#include "harness/scenario.h"
#include "harness/sweep.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::harness {

struct ExploreOptions {
    SeedRange seeds;
    // Apps to replace (ScenarioRunOptions::apps); seed and trace_sink are
    // ignored.
    ScenarioRunOptions run;
    // Runs spent after the failing seed is found: checking the exact form,
    // minimising, the seed check and the final check (at least 5).
    std::size_t max_runs = 500;
    // Called after each seed's run, with the seed and whether it passed.
    std::function<void(std::uint64_t seed, bool passed)> progress;
};

struct ExploreResult {
    // Exploration could not be done (the scenario does not run, the exact
    // faults did not reproduce); nothing else is meaningful then.
    std::string error;
    std::uint64_t seeds_run = 0;
    std::optional<std::uint64_t> failing_seed;  // nullopt: every seed passed
    // The failing seed's failure (failure_signature), and the explanation of
    // each failed expectation in the reproducer's last run.
    std::vector<std::string> failure;
    std::vector<std::string> explanations;
    Scenario exact;                 // step 2: the failing seed with exact faults (or, not exact, its chance form)
    Scenario reproducer;            // minimised; seed 1 unless seed_needed
    std::string reproducer_text;    // the file: header comments, then format_scenario
    std::size_t faults_before = 0;  // faults (ddmin units) of the exact scenario
    std::size_t faults_after = 0;
    std::vector<std::string> workload_changes;  // "client frames 20 -> 1"
    bool jitter_needed = false;
    bool seed_needed = false;
    std::size_t runs = 0;           // runs after the failing seed was found
    bool budget_exhausted = false;  // minimising stopped at max_runs
    // Empty when the reproducer lists exact faults. Otherwise why it could
    // not (exact_form_problem, before and after minimising the chance form):
    // the reproducer then keeps the chance rules and the seed, and its
    // header says so; faults_before/after count the injected faults then.
    std::string not_exact_reason;
    // Non-empty when the first exact form did not fit (why, for the failing
    // seed) and the chance form was minimised first.
    std::string exact_at_first_problem;
};

ExploreResult explore(const Scenario& scenario, const ExploreOptions& options);

// The failed expectations of a run, sorted, without duplicates: each
// statement's text, with the number of a frames-verified / bytes-received
// left out; "(the run)" for a livelock. Empty for a run that passed.
std::vector<std::string> failure_signature(const ScenarioReport& report);

// Step 2: scenario with its probabilistic faults replaced by the exact ones
// a run of scenario with seed injected (log, which must be complete()); its
// seed set to seed.
Scenario exact_faults(const Scenario& scenario, std::uint64_t seed, const FaultLog& log);

// Why the exact form of log (a run of scenario) would not run or not fit in
// a file: the log ran out of room, a host would need more than
// FaultySys::max_rules fault statements (or the net faults as many), or a
// statement would be longer than max_line_bytes. Empty when it fits.
std::string exact_form_problem(const Scenario& scenario, const FaultLog& log);

// Whether two runs injected the same syscall faults (host, time, call, fd,
// call numbers, kind, bytes) and held back the same segments (time and
// number), ignoring which rule or statement did it. False unless both logs
// are complete.
bool same_faults(const FaultLog& a, const FaultLog& b);

// "<stem>.seed<N>.repro.scn" for the scenario file's name.
std::string reproducer_file_name(std::string_view scenario_file, std::uint64_t seed);

}  // namespace eagain::harness
