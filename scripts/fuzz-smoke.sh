#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset) and runs each of them for a
# short while, then prints one line per target.
#
#   scripts/fuzz-smoke.sh [seconds-per-target]     (default 30)
#
# Each target starts from a fresh copy of its committed seeds
# (fuzz/corpus/<name>/) in build/fuzz/smoke/corpus/<name>/, so the inputs it
# discovers never land in the repository, and uses fuzz/<name>.dict when there
# is one. libFuzzer's output goes to build/fuzz/smoke/logs/<name>.log; a crash
# reproducer to build/fuzz/smoke/artifacts/<name>/. To keep one as a
# regression test, copy it into fuzz/corpus/<name>/: the corpus replay test
# (ctest -R fuzz_corpus) then runs it in every gcc and sanitizer build.
#
# Exits non-zero if any target crashed, leaked, timed out or ran out of memory.
set -euo pipefail

seconds=${1:-30}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
    echo "usage: $0 [seconds-per-target]" >&2
    exit 2
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/setup.sh
build_log=build/fuzz/smoke-build.log
mkdir -p build/fuzz
if ! { cmake --preset fuzz && cmake --build --preset fuzz --target eagain-fuzzers; } >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    echo "fuzz-smoke: build failed (full log: $build_log)" >&2
    exit 1
fi

smoke=build/fuzz/smoke
rm -rf "$smoke"
mkdir -p "$smoke/corpus" "$smoke/logs" "$smoke/artifacts"

shopt -s nullglob
binaries=(build/fuzz/fuzz/fuzz_*)
if ((${#binaries[@]} == 0)); then
    echo "fuzz-smoke: no fuzz_* binaries in build/fuzz/fuzz" >&2
    exit 1
fi

# final_stat NAME LOG: a value from libFuzzer's -print_final_stats block.
# These parsers print nothing (and succeed) when a run died too early to
# report: a seed that crashes is reported before any coverage line.
final_stat() { { grep -a "^stat::$1:" "$2" || true; } | tail -n 1 | awk '{print $2}'; }

rows=()
failed=0
for binary in "${binaries[@]}"; do
    name=${binary##*/fuzz_}
    corpus=$smoke/corpus/$name
    artifacts=$smoke/artifacts/$name/
    log=$smoke/logs/$name.log
    mkdir -p "$corpus" "$artifacts"
    if [[ -d fuzz/corpus/$name ]]; then
        cp -R "fuzz/corpus/$name/." "$corpus/"
    fi
    # The scenario suite seeds the parser's fuzzing: every statement form
    # the suite uses, in real combinations (named by path, so none collide).
    if [[ $name == scenario_parser ]]; then
        while IFS= read -r -d '' file; do
            cp "$file" "$corpus/suite_$(echo "${file#scenarios/}" | tr '/' '_')"
        done < <(find scenarios -name '*.scn' -print0)
    fi
    options=(
        -max_total_time="$seconds"
        -print_final_stats=1
        -rss_limit_mb=2048
        -timeout=10
        -max_len=16384
        -artifact_prefix="$artifacts"
    )
    if [[ -f fuzz/$name.dict ]]; then
        options+=(-dict="fuzz/$name.dict")
    fi

    echo "fuzz-smoke: $name for ${seconds}s (log: $log)" >&2
    status=0
    "$binary" "${options[@]}" "$corpus" >"$log" 2>&1 || status=$?

    executions=$(final_stat number_of_executed_units "$log")
    per_second=$(final_stat average_exec_per_sec "$log")
    coverage=$({ grep -aoE 'cov: [0-9]+ ft: [0-9]+' "$log" || true; } | tail -n 1 | awk '{print $2 "/" $4}')
    corpus_files=$(find "$corpus" -type f | wc -l)
    result=ok
    if ((status != 0)); then
        failed=1
        reproducer=$({ grep -aoE 'Test unit written to .*' "$log" || true; } | tail -n 1 | sed 's/^Test unit written to //')
        result="CRASH ${reproducer:-(no reproducer written, exit status $status)}"
        {
            echo
            echo "=== $name: last lines of $log"
            tail -n 60 "$log"
            echo "==="
        } >&2
    fi
    rows+=("$(printf '%-18s %7s %12s %9s %10s %8s  %s' "$name" "$seconds" "${executions:-?}" \
        "${per_second:-?}" "${coverage:-?}" "$corpus_files" "$result")")
done

echo
printf '%-18s %7s %12s %9s %10s %8s  %s\n' target seconds executions exec/s cov/ft corpus result
for row in "${rows[@]}"; do
    echo "$row"
done
exit "$failed"
