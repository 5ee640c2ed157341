#!/usr/bin/env bash
# The main job. For now: build, run every test (codec, Sys conformance on
# Linux and the simulated kernel, FaultySys, driver, the seed pitfalls
# against their naive variants, the real echo server under 1000
# connections, our code inside the simulation), run sim-echo under the
# default faults, fuzz every target briefly, and print one readable summary. (The scenario suite takes this
# place once scenarios exist.)
#
#   ./scripts/run.sh                 fuzz 10 s per target
#   EAGAIN_FUZZ_SECONDS=60 ./scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds="${EAGAIN_FUZZ_SECONDS:-10}"
logs=build/run-logs
mkdir -p "$logs"

./scripts/setup.sh

echo "== building (dev preset; log: $logs/build.log)"
{ cmake --preset dev && cmake --build --preset dev; } >"$logs/build.log" 2>&1 || {
    tail -n 40 "$logs/build.log"
    echo "run: build failed"
    exit 1
}

echo "== tests (log: $logs/tests.log)"
tests_ok=1
ctest --preset dev -j "$(nproc)" >"$logs/tests.log" 2>&1 || tests_ok=0
if [[ $tests_ok -eq 0 ]]; then
    sed -n '/The following tests FAILED/,$p' "$logs/tests.log"
fi
tests_line="$(grep -E 'tests passed, [0-9]+ tests? failed out of' "$logs/tests.log" | tail -n 1)"

pitfalls_line="$(build/dev/tests/eagain-tests "[pitfall]" 2>&1 | grep -E '^(All tests passed|test cases:)' | tail -n 1)"
ctest --preset dev -R '^tools\.' -V >"$logs/tools.log" 2>&1 || true
echo_line="$(grep -E 'load over' "$logs/tools.log" | sed 's/^[0-9]*: //' | tail -n 1)"

sim_line="$(build/dev/tests/eagain-tests "[sim]" 2>&1 | grep -E '^(All tests passed|test cases:)' | tail -n 1)"
echo "== sim-echo: 10,000 frames over 8 connections in the simulation, default faults"
sim_ok=1
build/dev/tools/sim-echo --seed 1 --frames 10000 --conns 8 | tee "$logs/sim-echo.log" || sim_ok=0
sim_echo_line="$(grep -E '^verified:' "$logs/sim-echo.log" | sed 's/^verified: //'), $(tail -n 1 "$logs/sim-echo.log")"

echo "== scenarios (log: $logs/scenarios.log)"
scenarios_ok=1
build/dev/tools/eagain run scenarios/ >"$logs/scenarios.log" 2>&1 || scenarios_ok=0
grep -E '^(PASS|FAIL|ERROR) ' "$logs/scenarios.log" || true
scenarios_line="$(tail -n 1 "$logs/scenarios.log")"

echo "== fuzz smoke, ${fuzz_seconds} s per target"
fuzz_ok=1
./scripts/fuzz-smoke.sh "$fuzz_seconds" || fuzz_ok=0

verdict() { if [[ $1 -eq 1 ]]; then echo ok; else echo FAILED; fi; }
echo
echo "== eagain main job: summary"
printf '  %-14s %-7s %s\n' "all tests" "$(verdict $tests_ok)" "${tests_line:-no CTest summary, see $logs/tests.log}"
printf '  %-14s %-7s %s\n' "seed pitfalls" "" "${pitfalls_line:-?} (each: ours passes, the naive variant is caught)"
printf '  %-14s %-7s %s\n' "eagain-echo" "" "${echo_line:-see $logs/tools.log}"
printf '  %-14s %-7s %s\n' "simulation" "" "${sim_line:-?} (tests/sim: TCP model, faults, our code in it)"
printf '  %-14s %-7s %s\n' "sim-echo" "$(verdict $sim_ok)" "$sim_echo_line"
printf '  %-14s %-7s %s\n' "scenarios" "$(verdict $scenarios_ok)" "$scenarios_line (eagain run scenarios/)"
printf '  %-14s %-7s %s\n' "fuzz smoke" "$(verdict $fuzz_ok)" "every target ${fuzz_seconds} s from its corpus (table above)"
if [[ $tests_ok -eq 1 && $fuzz_ok -eq 1 && $sim_ok -eq 1 && $scenarios_ok -eq 1 ]]; then
    echo "  result: OK"
else
    echo "  result: FAILED"
    exit 1
fi
