// run_scenario: builds a World from a parsed Scenario (harness/scenario.h),
// runs it and checks its expectations.
//
// Apps are the kinds of app_kind_entries() (harness/scenario.h), built by
// app_builders() (harness/app.h). An app kind, action or expectation the
// runner cannot run, or an expectation on an app that does not observe it,
// is refused by the parser where it is written and, in a Scenario built in
// code, reported by the runner as a setup error with its place before
// anything runs, never silently passed.
//
// The run: every host gets one Reactor over a FaultySys over its SimKernel.
// Each random stream is seeded from the scenario's seed and its own name
// (Rng::derive_seed): a host's faults from "faults:HOST", an app's own
// randomness from "app:NAME" (and the world's links and reorder faults
// from theirs, sim/world.h), so declaring another host or app, or
// declaring them in another order, changes no other stream. Servers start
// first; each host's descriptor count is taken as its baseline; then the
// clients start. The world runs until every app is done, or the latest
// done-by time of the file (1 virtual hour without one); each done-by is
// judged against when its app (world-wide: the last app) was done. Then one more virtual second lets
// servers see the last FINs, and the fd counts are compared with the
// baselines (servers still running).
#pragma once

#include "harness/app.h"
#include "harness/scenario.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::harness {

struct FaultLog;

struct ScenarioRunOptions {
    std::optional<std::uint64_t> seed;  // overrides the file's seed
    std::function<void(std::string_view line)> trace_sink;
    // App kind -> the app to run for it instead of the built-in one
    // (harness/app.h); the kind's actions and expectations stay as built in.
    std::map<std::string, AppFactory> apps;
    // Where to record the run's faults beyond the report's first
    // max_listed_faults (exploration's exact form needs them all); nullptr:
    // nowhere. Cleared at the start of the run.
    FaultLog* fault_log = nullptr;
};

struct ExpectationFailure {
    SourceLocation where;     // the expect statement
    std::string expectation;  // the statement, reassembled
    std::string expected;
    std::string happened;
    Nanos at{};                           // virtual time of the check
    std::vector<std::string> trace_tail;  // the last trace lines before it
};

struct InjectedFault {
    std::string host;
    Nanos at{};
    FaultEvent event;
    friend bool operator==(const InjectedFault&, const InjectedFault&) = default;
};

// A segment a `net reorder` fault held back.
struct HeldSegment {
    std::size_t net_fault = 0;  // index in Scenario::net_faults
    std::uint64_t segment = 0;  // the fault's own count of segments it matched (sim::ReorderFault)
    Nanos at{};                 // when it was sent
    friend bool operator==(const HeldSegment&, const HeldSegment&) = default;
};

// The faults of one run, in order, up to capacity of each kind; the totals
// count them all, so a log that ran out of room says so (complete()) and
// memory stays bounded however many faults a run injects (a `chance 1/1`
// rule can inject millions).
struct FaultLog {
    static constexpr std::size_t default_capacity = 20'000;
    std::size_t capacity = default_capacity;
    std::vector<InjectedFault> injected;
    std::vector<HeldSegment> held_segments;
    std::uint64_t injected_total = 0;
    std::uint64_t held_total = 0;

    void add(InjectedFault fault);
    void add(HeldSegment segment);
    void clear();
    bool complete() const noexcept { return injected.size() == injected_total && held_segments.size() == held_total; }
};

// A report lists at most this many of each (the rest are counted).
inline constexpr std::size_t max_listed_faults = 100;

struct ScenarioReport {
    std::string setup_error;  // not runnable / could not start; empty if it ran
    bool passed = false;
    Nanos virtual_time{};
    std::uint64_t faults_injected = 0;  // syscall faults; network faults are in the trace
    std::uint64_t segments_held = 0;    // by reorder faults
    std::string trace_hash;
    std::uint64_t trace_lines = 0;
    std::vector<ExpectationFailure> failures;
    // The first max_listed_faults syscall faults injected, in order (all of
    // them: ScenarioRunOptions::fault_log).
    std::vector<InjectedFault> injected;
    // The first max_listed_faults segments a reorder fault held back.
    std::vector<HeldSegment> held_segments;
};

// Never throws on a failing scenario; the report says what went wrong.
ScenarioReport run_scenario(const Scenario& scenario, const ScenarioRunOptions& options = {});

}  // namespace eagain::harness
