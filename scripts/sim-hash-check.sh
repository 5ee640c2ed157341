#!/usr/bin/env bash
# The determinism check across builds: runs sim-echo (default faults) from
# every build directory given, for each seed, and fails unless every build
# verified every frame and printed the same trace_hash line; then runs the
# scenario suite (eagain run scenarios/) from every build and fails unless
# every scenario has the same verdict and trace hash in all of them.
#
#   scripts/sim-hash-check.sh [-s "SEEDS"] [-f FRAMES] [-c CONNS] BUILD_DIR...
#   scripts/sim-hash-check.sh build/dev build/dev-clang build/asan
#
# Prints one row per seed: the hash from each build and whether they agree.
# A differing hash is a determinism bug (evaluation order, a std
# distribution, unordered iteration, pointer order, an uninitialised read):
# rerun the seed with --trace in two builds and diff the files; the first
# differing line says where.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds="1 2 3 42 1000"
frames=2000
conns=4
while getopts "s:f:c:" option; do
    case "$option" in
        s) seeds="$OPTARG" ;;
        f) frames="$OPTARG" ;;
        c) conns="$OPTARG" ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
(($# > 0)) || {
    echo "usage: $0 [-s SEEDS] [-f FRAMES] [-c CONNS] BUILD_DIR..." >&2
    exit 2
}
builds=("$@")
for build in "${builds[@]}"; do
    [[ -x "$build/tools/sim-echo" ]] || {
        echo "sim-hash-check: $build/tools/sim-echo is missing (build the sim-echo target)" >&2
        exit 2
    }
done

echo "sim-echo --frames $frames --conns $conns --faults default"
printf '%-6s' seed
for build in "${builds[@]}"; do printf '  %-18s' "$(basename "$build")"; done
printf '  %s\n' agree

disagreements=0
for seed in $seeds; do
    printf '%-6s' "$seed"
    first=""
    agree=yes
    for build in "${builds[@]}"; do
        status=0
        out="$("$build/tools/sim-echo" --seed "$seed" --frames "$frames" --conns "$conns" 2>&1)" || status=$?
        last="$(tail -n 1 <<<"$out")"
        if [[ "$status" != 0 || ! "$last" =~ ^trace_hash:\ [0-9a-f]{16}$ ]]; then
            cell="FAILED (exit $status)"
            [[ "$status" != 0 ]] || cell="no hash line"
            agree=no
            echo >&2
            echo "sim-hash-check: $build, seed $seed:" >&2
            echo "$out" >&2
        else
            cell="${last#trace_hash: }"
        fi
        [[ -n "$first" ]] || first="$cell"
        [[ "$cell" == "$first" ]] || agree=no
        printf '  %-18s' "$cell"
    done
    printf '  %s\n' "$agree"
    [[ "$agree" == yes ]] || disagreements=$((disagreements + 1))
done

# The scenario suite: every scenario's verdict and trace hash, per build.
echo
echo "eagain run scenarios/: verdict and trace hash of every scenario"
reference=""
scenario_disagreements=0
for build in "${builds[@]}"; do
    [[ -x "$build/tools/eagain" ]] || {
        echo "sim-hash-check: $build/tools/eagain is missing (build the eagain target)" >&2
        exit 2
    }
    # "PASS  file  virtual ...  hash H" -> "file PASS H"
    table="$("$build/tools/eagain" run scenarios/ 2>&1 | awk '$1 == "PASS" || $1 == "FAIL" {print $2, $1, $NF}' || true)"
    count="$(grep -c . <<<"$table" || true)"
    if [[ -z "$reference" ]]; then
        reference="$table"
        printf '  %-18s %s scenarios (reference)\n' "$(basename "$build")" "$count"
    elif [[ "$table" == "$reference" ]]; then
        printf '  %-18s %s scenarios, all agree\n' "$(basename "$build")" "$count"
    else
        printf '  %-18s DISAGREES:\n' "$(basename "$build")"
        diff <(echo "$reference") <(echo "$table") | sed 's/^/    /' || true
        scenario_disagreements=$((scenario_disagreements + 1))
    fi
done

if ((disagreements > 0 || scenario_disagreements > 0)); then
    echo "sim-hash-check: $disagreements seed(s) and $scenario_disagreements build(s) of the scenario suite disagree or failed; rerun one with --trace FILE in two builds and diff" >&2
    exit 1
fi
echo "sim-hash-check: all builds agree"
