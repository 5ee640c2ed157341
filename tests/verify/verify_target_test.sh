#!/usr/bin/env bash
# eagain verify against one of the test targets (tests/verify/targets/), as
# a user runs it, judged from its exit status and its --report JSON:
#
#   verify_target_test.sh BUILD_DIR TARGET PROTOCOL pass [CHECKS|all [RUNS]]
#       every check of the default suite (or those named) passes, RUNS
#       times (default 1). TARGET is a test target's name, or a command
#       with {port} (a real program).
#   verify_target_test.sh BUILD_DIR TARGET PROTOCOL KIND CHECKS
#       the checks named (comma-separated) are run; at least one fails
#       with KIND, and none is inconclusive (the shim saw the target, and
#       the faults of each check fired)
set -euo pipefail

build="${1:?build directory}"
target="${2:?target name}"
protocol="${3:?bytes or frames}"
expected="${4:?pass or a kind}"
bin="$build/tools/eagain"
if [[ "$target" == *"{port}"* ]]; then
    command="$target"
else
    program="$build/tests/verify/targets/verify-target-$target"
    [[ -x "$program" ]] || { echo "FAIL: no target $program" >&2; exit 1; }
    command="$program {port}"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    cat "$work/out" >&2 2>/dev/null || true
    exit 1
}
args=(verify --target "$command" --protocol "$protocol" --report "$work/report.json")
if [[ "$expected" == pass ]]; then
    [[ "${5:-all}" == all ]] || args+=(--checks "$5")
    args+=(--runs "${6:-1}")
else
    args+=(--checks "${5:?the checks that must catch it}")
fi
set +e
"$bin" "${args[@]}" >"$work/out" 2>&1
status=$?
set -e
cat "$work/out"

kinds="$(python3 -c '
import json, sys
for c in json.load(open(sys.argv[1]))["checks"]:
    print(c["name"], c["verdict"], c["kind"] or "-")' "$work/report.json")" || fail "no readable report"

if [[ "$expected" == pass ]]; then
    [[ $status -eq 0 ]] || fail "$target: expected every check to pass, eagain verify exited $status"
    if grep -qv " pass " <<<"$kinds"; then fail "$target: not every check passed: $kinds"; fi
    echo "OK: $target passes all $(wc -l <<<"$kinds") checks"
    exit 0
fi
[[ $status -eq 1 ]] || fail "$target: expected a failure (exit 1), eagain verify exited $status"
grep -q " fail $expected\$" <<<"$kinds" || fail "$target: no check failed with $expected: $kinds"
if grep -q " inconclusive " <<<"$kinds"; then fail "$target: a check was inconclusive: $kinds"; fi
echo "OK: $target caught as $expected"
