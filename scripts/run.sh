#!/usr/bin/env bash
# The main job: the scenario suite. Builds, replays every scenario under
# scenarios/ (each a known failure sequence, byte for byte), shows that each
# pitfall's scenario catches a deliberately buggy app, sweeps the echo
# scenarios over many seeds, runs sim-echo, fuzzes every target briefly, and
# prints one readable summary. (The full test suite is scripts/test.sh.)
#
#   ./scripts/run.sh                 fuzz 10 s per target, sweep 200 seeds
#   EAGAIN_FUZZ_SECONDS=60 EAGAIN_SWEEP_SEEDS=2000 ./scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds="${EAGAIN_FUZZ_SECONDS:-10}"
sweep_seeds="${EAGAIN_SWEEP_SEEDS:-200}"
logs=build/run-logs
mkdir -p "$logs"

./scripts/setup.sh

echo "== building (dev preset; log: $logs/build.log)"
{ cmake --preset dev && cmake --build --preset dev; } >"$logs/build.log" 2>&1 || {
    tail -n 40 "$logs/build.log"
    echo "run: build failed"
    exit 1
}
eagain=build/dev/tools/eagain

echo "== the scenario suite: eagain run scenarios/ (log: $logs/scenarios.log)"
scenarios_ok=1
"$eagain" run scenarios/ >"$logs/scenarios.log" 2>&1 || scenarios_ok=0
# Every line: PASS/FAIL, the file, virtual and wall time, faults, trace hash;
# each failure explained under its line.
cat "$logs/scenarios.log"
scenarios_line="$(tail -n 1 "$logs/scenarios.log")"
# Per theme (the folder under scenarios/): passed/run.
themes="$(awk '$1 == "PASS" || $1 == "FAIL" {
                 split($2, part, "/"); theme = part[2]; run[theme]++; if ($1 == "PASS") ok[theme]++
               }
               END { for (t in run) printf "%s %d/%d\n", t, ok[t], run[t] }' "$logs/scenarios.log" |
          sort | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')"

echo "== detection: each pitfall's scenario against a deliberately buggy app (log: $logs/detection.log)"
detection_ok=1
build/dev/tests/eagain-tests "[detection]" >"$logs/detection.log" 2>&1 || detection_ok=0
detection_line="$(grep -E '^(All tests passed|test cases:)' "$logs/detection.log" | tail -n 1)"
[[ $detection_ok -eq 1 ]] || tail -n 40 "$logs/detection.log"

echo "== sweep: the scenarios with random faults or jitter, seeds 1..$sweep_seeds (log: $logs/sweep.log)"
sweep_ok=1
sweep_line=""
: >"$logs/sweep.log"
for scenario in $(grep -lE 'chance|jitter [1-9]' scenarios/*/*.scn); do
    "$eagain" sweep "$scenario" --seeds "1..$sweep_seeds" --jobs "$(nproc)" >>"$logs/sweep.log" 2>&1 || sweep_ok=0
done
sweep_line="$(awk '/^sweep / {n++} /^seeds run/ {run += $3} /^passed/ {passed += $2}
                   END {printf "%d scenarios, %d seeds run, %d passed", n, run, passed}' "$logs/sweep.log")"
grep -E '^(sweep |seeds run|failed|failing seeds)' "$logs/sweep.log"
[[ $sweep_ok -eq 1 ]] || tail -n 40 "$logs/sweep.log"

echo "== sim-echo: 10,000 frames over 8 connections in the simulation, default faults"
sim_ok=1
build/dev/tools/sim-echo --seed 1 --frames 10000 --conns 8 | tee "$logs/sim-echo.log" || sim_ok=0
sim_echo_line="$(grep -E '^verified:' "$logs/sim-echo.log" | sed 's/^verified: //'), $(tail -n 1 "$logs/sim-echo.log")"

echo "== fuzz smoke, ${fuzz_seconds} s per target"
fuzz_ok=1
./scripts/fuzz-smoke.sh "$fuzz_seconds" || fuzz_ok=0

verdict() { if [[ $1 -eq 1 ]]; then echo ok; else echo FAILED; fi; }
echo
echo "== eagain main job: summary"
printf '  %-12s %-7s %s\n' "scenarios" "$(verdict $scenarios_ok)" "$scenarios_line"
printf '  %-12s %-7s %s\n' "" "" "by theme: $themes"
printf '  %-12s %-7s %s\n' "detection" "$(verdict $detection_ok)" "${detection_line:-?} (each pitfall's scenario fails against its buggy app, passes against ours)"
printf '  %-12s %-7s %s\n' "sweep" "$(verdict $sweep_ok)" "$sweep_line"
printf '  %-12s %-7s %s\n' "sim-echo" "$(verdict $sim_ok)" "$sim_echo_line"
printf '  %-12s %-7s %s\n' "fuzz smoke" "$(verdict $fuzz_ok)" "every target ${fuzz_seconds} s from its corpus (table above)"
if [[ $scenarios_ok -eq 1 && $detection_ok -eq 1 && $sweep_ok -eq 1 && $sim_ok -eq 1 && $fuzz_ok -eq 1 ]]; then
    echo "  result: OK"
else
    echo "  result: FAILED"
    exit 1
fi
