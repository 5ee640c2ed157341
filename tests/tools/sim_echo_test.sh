#!/usr/bin/env bash
# sim-echo as a user runs it, and its determinism across processes:
#   1. the same seed in two processes prints the same trace_hash line (its
#      last line) and writes byte-identical --trace files;
#   2. the trace file has as many lines as sim-echo reports, and (if python3
#      is there to compute it) hashes to the printed FNV-1a hash;
#   3. different seeds give different hashes;
#   4. --faults none passes too, with a hash of its own;
#   5. bad usage exits 2.
#
#   tests/tools/sim_echo_test.sh BUILD_DIR
set -euo pipefail

build="${1:?build directory}"
bin="$build/tools/sim-echo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# run NAME ARGS...: runs sim-echo, which must exit 0, output in $work/NAME.out.
run() {
    local name="$1"
    shift
    "$bin" "$@" >"$work/$name.out" 2>"$work/$name.err" ||
        fail "sim-echo $* exited $?: $(cat "$work/$name.err")"
}
hash_line() {
    local last
    last="$(tail -n 1 "$work/$1.out")"
    [[ "$last" =~ ^trace_hash:\ [0-9a-f]{16}$ ]] || fail "$1: last line is not a trace_hash line: $last"
    echo "$last"
}

# 1. Same seed, two processes.
run a --seed 7 --frames 3000 --conns 3 --trace "$work/a.jsonl"
run b --seed 7 --frames 3000 --conns 3 --trace "$work/b.jsonl"
# (Assigned first: set -e stops at a failing assignment, not inside [[ ]].)
hash_a="$(hash_line a)"
hash_b="$(hash_line b)"
[[ "$hash_a" == "$hash_b" ]] || fail "seed 7 twice: $hash_a vs $hash_b"
cmp "$work/a.jsonl" "$work/b.jsonl" || fail "seed 7 twice: the trace files differ"
grep -q '^verified: 3000 of 3000 frames' "$work/a.out" || fail "not every frame verified: $(cat "$work/a.out")"
echo "seed 7 twice: $hash_a, traces identical"

# 2. The trace file is the traced run.
lines="$(wc -l <"$work/a.jsonl")"
reported="$(sed -n 's/^trace_lines: \([0-9]*\)$/\1/p' "$work/a.out")"
((lines > 0)) || fail "empty trace file"
[[ "$lines" == "$reported" ]] || fail "trace file has $lines lines, sim-echo reported $reported"
head -n 1 "$work/a.jsonl" | grep -q '^{"t":0,"ev":"world","seed":7}$' || fail "trace does not start with the world line"
if command -v python3 >/dev/null; then
    file_hash="$(python3 -c '
import sys
h = 0xcbf29ce484222325
for byte in open(sys.argv[1], "rb").read():
    h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
print("trace_hash: %016x" % h)' "$work/a.jsonl")"
    [[ "$file_hash" == "$hash_a" ]] || fail "the trace file hashes to ${file_hash#trace_hash: }, not the printed hash"
fi
echo "trace file: $lines lines, as reported"

# 3. Different seeds, different runs.
run c --seed 8 --frames 3000 --conns 3
hash_c="$(hash_line c)"
[[ "$hash_a" != "$hash_c" ]] || fail "seeds 7 and 8 gave the same hash"
echo "seed 8: $hash_c"

# 4. No faults.
run none1 --seed 7 --frames 3000 --conns 3 --faults none
run none2 --seed 7 --frames 3000 --conns 3 --faults none
hash_none1="$(hash_line none1)"
hash_none2="$(hash_line none2)"
[[ "$hash_none1" == "$hash_none2" ]] || fail "--faults none twice gave different hashes"
[[ "$hash_none1" != "$hash_a" ]] || fail "--faults none and default gave the same hash"
grep -q '^faults: .*(0 in all)$' "$work/none1.out" || fail "--faults none injected faults: $(grep '^faults' "$work/none1.out")"
echo "faults none: $hash_none1"

# 5. Bad usage.
expect_usage_error() {
    local status=0
    "$bin" "$@" >/dev/null 2>&1 || status=$?
    [[ "$status" == 2 ]] || fail "sim-echo $* exited $status, expected 2"
}
expect_usage_error --seed 1 --frames 10 --no-such-flag
expect_usage_error --seed 1 --frames 10 --faults some
expect_usage_error --frames 10
expect_usage_error --seed 1 --frames 10 --conns 0
expect_usage_error --seed 1 --frames 10 --trace "$work/no/such/dir/t.jsonl"
echo "bad usage: exit 2"
echo "PASS"
