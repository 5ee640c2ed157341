// What a sweep costs per seed (eagain sweep / explore, harness/sweep.h).
//
//   BM_SweepEcho           items/s = seeds/s: one small echo scenario
//                          (frame-echo + frame-client, 20 frames, three
//                          probabilistic syscall faults and a probabilistic
//                          reorder) run once per seed through run_scenario,
//                          as a sweep runs it in one process. Target: at
//                          least 1,000 seeds/s on one core.
//   BM_SweepEcho_Bare      items/s = seeds/s: the same 20 frames through
//                          the same FrameEchoServer and LoadClient with
//                          run_echo (harness/echo_run.h), no scenario layer
//                          and no faults: the floor the scenario runs on.
//
// BM_SweepEcho / BM_SweepEcho_Bare is what the scenario layer (parsing is
// not in it: a sweep parses once), the faults and the expectations cost.
// Every iteration checks its result and fails with SkipWithError rather
// than report the speed of a wrong answer.
#include "harness/echo_run.h"
#include "harness/runner.h"
#include "harness/scenario.h"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

namespace eagain::bench {
namespace {

constexpr std::string_view sweep_echo_scenario = R"(
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 20 size 64
fault server recv chance 1/10 -> EINTR
fault client send chance 1/8 -> short 7
fault client recv chance 1/16 -> EAGAIN
net reorder client->server chance 1/4 hold 1ms
expect client frames-verified 20
expect client no-errors
expect no-fd-leak
expect done-by 10s
)";

void BM_SweepEcho(benchmark::State& state) {
    const harness::ParseResult parsed = harness::parse_scenario(sweep_echo_scenario, "sweep-echo.scn");
    if (!parsed.ok()) {
        state.SkipWithError(parsed.errors.front().c_str());
        return;
    }
    std::uint64_t seed = 0;
    std::uint64_t faults = 0;
    for (auto _ : state) {
        harness::ScenarioRunOptions options;
        options.seed = ++seed;
        const harness::ScenarioReport report = harness::run_scenario(parsed.scenario, options);
        if (!report.passed) {
            const std::string why = "seed " + std::to_string(seed) + " failed: " +
                                    (report.failures.empty() ? report.setup_error : report.failures.front().happened);
            state.SkipWithError(why.c_str());
            return;
        }
        faults += report.faults_injected + report.segments_held;
        benchmark::DoNotOptimize(report.trace_hash.data());
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["faults_per_seed"] =
        benchmark::Counter(static_cast<double>(faults) / static_cast<double>(std::max<std::uint64_t>(seed, 1)));
}
BENCHMARK(BM_SweepEcho);

void BM_SweepEcho_Bare(benchmark::State& state) {
    std::uint64_t seed = 0;
    for (auto _ : state) {
        harness::EchoRunOptions options;
        options.seed = ++seed;
        options.frames = 20;
        options.faults = harness::EchoFaults::none;
        const harness::EchoRunResult result = harness::run_echo(options);
        if (!result.ok()) {
            state.SkipWithError(("seed " + std::to_string(seed) + " did not verify every frame").c_str());
            return;
        }
        benchmark::DoNotOptimize(result.trace_hash.data());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SweepEcho_Bare);

}  // namespace
}  // namespace eagain::bench
