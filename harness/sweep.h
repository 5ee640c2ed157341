// Sweeps: one scenario run once per seed over a range of seeds, each run
// independent and deterministic (harness/runner.h), summarised per seed.
//
// Seeds. A range "A..B" is every seed from A to B, both included. A shard
// "i/N" (1 <= i <= N) of it is the seeds with (seed - A) % N == i - 1, so
// shards 1/N ... N/N of one range are disjoint and together are the range:
// N machines each run one shard of the same range and their failing seeds
// together are the range's.
//
// Workers. With jobs > 1 the seeds are run by that many forked worker
// processes (never threads: the simulation is single-threaded by design),
// worker w taking the w-th, (w + jobs)-th, ... seed of the shard, each
// sending its outcomes back over a pipe. Outcomes are ordered by seed
// whatever the number of workers, so the result and its summary are the
// same for every jobs (wall time aside). A worker that dies (a crash in the
// code under test) leaves its unreported seeds as outcomes that say so.
#pragma once

#include "harness/runner.h"
#include "harness/scenario.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::harness {

struct SeedRange {
    std::uint64_t first = 1;
    std::uint64_t last = 1;  // included
    std::uint64_t size() const noexcept { return last - first + 1; }
};
// "A..B" with A <= B; nullopt otherwise (B - A + 1 must fit in 64 bits).
std::optional<SeedRange> parse_seed_range(std::string_view text) noexcept;

struct Shard {
    std::uint64_t index = 1;  // 1-based
    std::uint64_t count = 1;
};
// "i/N" with 1 <= i <= N; nullopt otherwise.
std::optional<Shard> parse_shard(std::string_view text) noexcept;

// Seeds one sweep runs at most (after sharding): every outcome is kept in
// memory. A longer range is split with --shard or into several ranges.
inline constexpr std::uint64_t max_sweep_seeds = 1'000'000;
// Worker processes at most.
inline constexpr unsigned max_sweep_jobs = 256;

// How many seeds of range the shard holds.
std::uint64_t shard_size(SeedRange range, Shard shard) noexcept;
// The k-th seed (from 0) of the shard.
std::uint64_t shard_seed(SeedRange range, Shard shard, std::uint64_t k) noexcept;

struct SeedOutcome {
    std::uint64_t seed = 0;
    bool passed = false;
    // Not run: the scenario's setup error, or why the worker died.
    std::string setup_error;
    // The failed expectations, each "expect ... (line N)"; "(the run)" for
    // a livelock.
    std::vector<std::string> failed;
    Nanos virtual_time{};
    std::uint64_t faults_injected = 0;
    std::string trace_hash;
    friend bool operator==(const SeedOutcome&, const SeedOutcome&) = default;
};

struct SweepOptions {
    SeedRange seeds;
    Shard shard;
    unsigned jobs = 1;  // 1: in this process
    // Apps to replace (ScenarioRunOptions::apps); its seed is set per run and
    // a trace_sink is ignored.
    ScenarioRunOptions run;
    // Called in this process after each outcome arrives (in arrival order,
    // which with workers is not seed order), with how many have and how many
    // will.
    std::function<void(const SeedOutcome& outcome, std::uint64_t done, std::uint64_t total)> progress;
};

struct SweepResult {
    std::string error;                  // bad options or could not start workers; nothing ran
    std::vector<SeedOutcome> outcomes;  // by seed
};

SweepResult sweep(const Scenario& scenario, const SweepOptions& options);

// One seed's run as a sweep records it.
SeedOutcome run_seed(const Scenario& scenario, std::uint64_t seed, const ScenarioRunOptions& run);
// "expect client no-errors (line 9)", or "(the run)" for a livelock.
std::string failure_label(const ExpectationFailure& failure);

struct SweepSummary {
    std::uint64_t seeds_run = 0;
    std::uint64_t passed = 0;
    std::uint64_t failed = 0;
    std::uint64_t not_run = 0;                 // setup errors and dead workers
    std::vector<std::uint64_t> failing_seeds;  // every one, in order
    // Each failed expectation with the number of seeds that failed it, most
    // first (then by label); not-run reasons likewise.
    std::vector<std::pair<std::string, std::uint64_t>> failures;
    std::vector<std::pair<std::string, std::uint64_t>> not_run_reasons;
    // Over the seeds that ran; the median is the lower middle one.
    Nanos virtual_time_min{};
    Nanos virtual_time_median{};
    Nanos virtual_time_max{};
};
SweepSummary summarize(const std::vector<SeedOutcome>& outcomes);

// The summary as a table, one "key  value" row per line, the same for every
// jobs (it holds no wall time). failing_seeds_shown: how many to list.
std::string format_summary(const SweepSummary& summary, std::size_t failing_seeds_shown = 10);

}  // namespace eagain::harness
