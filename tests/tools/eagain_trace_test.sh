#!/usr/bin/env bash
# eagain run --trace as a user runs it: the file written hashes (FNV-1a,
# 64-bit, over every byte) to the hash the PASS/FAIL line prints, and has
# as many lines as the run traced; the same run twice writes the same file.
#
#   tests/tools/eagain_trace_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

build="${1:?build directory}"
source_dir="${2:?source directory}"
bin="$build/tools/eagain"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
command -v python3 >/dev/null || { echo "SKIP: no python3 to hash the file"; exit 0; }

fnv1a() {
    python3 -c '
import sys
h = 0xcbf29ce484222325
for byte in open(sys.argv[1], "rb").read():
    h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
print("%016x" % h)' "$1"
}

for scenario in partial-writes/short-send-at-echo-server.scn reordering/jitter-and-held-back-segments.scn; do
    file="$source_dir/scenarios/$scenario"
    [[ -f "$file" ]] || fail "no scenario $file"
    name="$(basename "$scenario" .scn)"
    "$bin" run "$file" --trace "$work/$name.jsonl" >"$work/$name.out" 2>&1 || fail "eagain run $scenario: $(cat "$work/$name.out")"
    printed="$(sed -n 's/^PASS .* hash \([0-9a-f]\{16\}\)$/\1/p' "$work/$name.out")"
    [[ -n "$printed" ]] || fail "$scenario: no PASS line with a hash: $(cat "$work/$name.out")"
    written="$(fnv1a "$work/$name.jsonl")"
    [[ "$written" == "$printed" ]] || fail "$scenario: the --trace file hashes to $written, eagain printed $printed"
    "$bin" run "$file" --trace "$work/$name.again.jsonl" >/dev/null 2>&1 || fail "eagain run $scenario again"
    cmp -s "$work/$name.jsonl" "$work/$name.again.jsonl" || fail "$scenario: two runs wrote different traces"
    echo "$scenario: $(wc -l <"$work/$name.jsonl") lines, hash $printed = FNV-1a of the file"
done
echo "PASS"
