#!/usr/bin/env bash
# eagain sweep and eagain explore as a user runs them:
#   1. a sweep where every seed passes exits 0 and prints the summary table;
#      with stderr not a terminal there is no progress bar (stderr empty);
#   2. a sweep with failing seeds exits 1, and its output is the same with
#      --jobs 1 and --jobs 3 (the wall time line aside);
#   3. shards 1/3, 2/3, 3/3 together run the whole range, with its failures;
#   4. explore writes a reproducer with no `chance` left, prints its path,
#      exits 1; `eagain run` of the reproducer fails with and without
#      --seed; explore over passing seeds exits 0 and writes nothing; a
#      run with too many faults to list still gives a file that runs and
#      fails the same way (its chance rules and seed, said in its header);
#   5. bad usage exits 2.
#
#   tests/tools/eagain_sweep_test.sh BUILD_DIR
set -euo pipefail

build="${1:?build directory}"
bin="$build/tools/eagain"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# status NAME ARGS...: runs eagain, output in $work/NAME.out and .err; prints
# the exit status.
status() {
    local name="$1"
    shift
    local code=0
    "$bin" "$@" >"$work/$name.out" 2>"$work/$name.err" || code=$?
    echo "$code"
}
# row NAME KEY: the value of a summary row.
row() {
    sed -n "s/^$2  *//p" "$work/$1.out" | head -n 1
}

cat >"$work/pass.scn" <<'EOF'
# Every seed passes: EINTR is retried by our server and client.
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 40 size 64
fault server recv chance 1/10 -> EINTR
fault client send chance 1/5 -> short 7
expect client frames-verified 40
expect client no-errors
expect no-fd-leak
expect done-by 10s
EOF
cat >"$work/reset.scn" <<'EOF'
# Some seeds fail: the client's recv now and then reports ECONNRESET, and it
# gives up that connection (as it should; the expectations say otherwise).
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 100 size 64 in-flight 4
fault client recv chance 1/150 -> ECONNRESET
fault client send chance 1/6 -> short 7
net reorder client->server chance 1/4 hold 1ms
expect client frames-verified 100
expect client no-errors
expect no-fd-leak
expect done-by 10s
EOF

# 1. All pass.
code="$(status pass sweep "$work/pass.scn" --seeds 1..200)"
[[ "$code" == 0 ]] || fail "sweep of passing seeds exited $code: $(cat "$work/pass.out" "$work/pass.err")"
[[ "$(row pass 'seeds run')" == 200 ]] || fail "seeds run: $(cat "$work/pass.out")"
[[ "$(row pass passed)" == 200 ]] || fail "passed: $(cat "$work/pass.out")"
[[ "$(row pass failed)" == 0 ]] || fail "failed: $(cat "$work/pass.out")"
grep -q '^virtual time  *min .*s  median .*s  max .*s$' "$work/pass.out" || fail "no virtual time row"
grep -q '^wall time  ' "$work/pass.out" || fail "no wall time row"
[[ ! -s "$work/pass.err" ]] || fail "stderr is not a terminal, yet: $(cat "$work/pass.err")"
echo "all pass: exit 0, table, no progress bar"

# 2. Failures; the same summary whatever --jobs.
code="$(status one sweep "$work/reset.scn" --seeds 1..60)"
[[ "$code" == 1 ]] || fail "sweep with failing seeds exited $code"
code="$(status three sweep "$work/reset.scn" --seeds 1..60 --jobs 3)"
[[ "$code" == 1 ]] || fail "sweep --jobs 3 with failing seeds exited $code"
failed="$(row one failed)"
((failed > 0)) || fail "no seed failed: $(cat "$work/one.out")"
grep -q '^failing seeds  ' "$work/one.out" || fail "no failing seeds row"
grep -q "^  failed  *$failed  expect client no-errors (line 11)$" "$work/one.out" ||
    fail "no per-expectation count: $(cat "$work/one.out")"
diff <(grep -v '^wall time' "$work/one.out") <(grep -v '^wall time' "$work/three.out") ||
    fail "--jobs 1 and --jobs 3 summaries differ"
echo "failures: exit 1, $failed failed, same summary with --jobs 3"

# 3. Shards.
total_run=0
total_failed=0
for i in 1 2 3; do
    code="$(status "shard$i" sweep "$work/reset.scn" --seeds 1..60 --shard "$i/3" --jobs 2)"
    [[ "$code" == 0 || "$code" == 1 ]] || fail "shard $i/3 exited $code"
    grep -q "shard $i/3$" "$work/shard$i.out" || fail "shard $i/3 not named in its header"
    total_run=$((total_run + $(row "shard$i" 'seeds run')))
    total_failed=$((total_failed + $(row "shard$i" failed)))
done
[[ "$total_run" == 60 ]] || fail "shards ran $total_run seeds, not 60"
[[ "$total_failed" == "$failed" ]] || fail "shards failed $total_failed seeds, the whole range $failed"
echo "shards: 60 seeds, $total_failed failed, as the whole"

# 4. Explore.
mkdir "$work/out"
code="$(status explore explore "$work/reset.scn" --seeds 1..60 --out "$work/out")"
[[ "$code" == 1 ]] || fail "explore that finds a failure exited $code: $(cat "$work/explore.err")"
repro="$(sed -n 's/^reproducer: //p' "$work/explore.out")"
[[ -f "$repro" ]] || fail "no reproducer at '$repro': $(cat "$work/explore.out")"
[[ "$(basename "$repro")" =~ ^reset\.seed[0-9]+\.repro\.scn$ ]] || fail "reproducer name: $repro"
grep -q '^# generated by eagain explore; exact faults, no probabilities$' "$repro" || fail "no header"
! grep -v '^#' "$repro" | grep -q chance || fail "a chance is left: $(cat "$repro")"
grep -q '^fault client recv calls [0-9]* -> ECONNRESET$' "$repro" || fail "not minimal: $(cat "$repro")"
code="$(status rerun run "$repro")"
[[ "$code" == 1 ]] || fail "the reproducer passed: $(cat "$work/rerun.out")"
grep -q 'expect client no-errors' "$work/rerun.out" || fail "the reproducer fails otherwise: $(cat "$work/rerun.out")"
code="$(status reseeded run "$repro" --seed 987654)"
[[ "$code" == 1 ]] || fail "the reproducer passed with another seed"
echo "explore: $(basename "$repro") fails with and without --seed"

# 4b. Too many faults to list one by one (a livelock: 100,000 EAGAINs in
#     one instant): explore still writes a file that runs and fails the
#     same way, keeping the chance rule and the seed, and says why.
cat >"$work/flood.scn" <<'EOF2'
# Every recv of the client says EAGAIN: the client spins and time stops.
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 3 size 1KiB
fault client recv chance 1/1 -> EAGAIN
expect client frames-verified 3
EOF2
mkdir "$work/flood"
code="$(status flood explore "$work/flood.scn" --seeds 7..9 --out "$work/flood")"
[[ "$code" == 1 ]] || fail "explore of a fault flood exited $code: $(cat "$work/flood.err")"
flood_repro="$(sed -n 's/^reproducer: //p' "$work/flood.out")"
[[ -f "$flood_repro" ]] || fail "no reproducer for the flood: $(cat "$work/flood.out" "$work/flood.err")"
grep -q '^not exact (' "$work/flood.out" || fail "explore does not say it is not exact: $(cat "$work/flood.out")"
grep -q '^# generated by eagain explore; NOT exact' "$flood_repro" || fail "no not-exact header: $(cat "$flood_repro")"
grep -q '^seed 7$' "$flood_repro" || fail "the seed is not kept: $(cat "$flood_repro")"
code="$(status flood_check check "$flood_repro")"
[[ "$code" == 0 ]] || fail "eagain check refuses the flood reproducer: $(cat "$work/flood_check.out")"
code="$(status flood_rerun run "$flood_repro")"
[[ "$code" == 1 ]] || fail "the flood reproducer passed: $(cat "$work/flood_rerun.out")"
grep -q 'a livelock' "$work/flood_rerun.out" || fail "the flood reproducer fails otherwise: $(cat "$work/flood_rerun.out")"
echo "explore, too many faults to list: $(basename "$flood_repro") keeps its chance rule and seed, and fails the same way"

mkdir "$work/none"
code="$(status quiet explore "$work/pass.scn" --seeds 1..30 --out "$work/none")"
[[ "$code" == 0 ]] || fail "explore over passing seeds exited $code"
grep -q '^no failing seed: 30 seeds run, all passed$' "$work/quiet.out" || fail "$(cat "$work/quiet.out")"
[[ -z "$(ls -A "$work/none")" ]] || fail "explore over passing seeds wrote $(ls "$work/none")"
echo "explore, all passing: exit 0, nothing written"

# 5. Bad usage.
expect_usage_error() {
    local code
    code="$(status usage "$@")"
    [[ "$code" == 2 ]] || fail "eagain $* exited $code, expected 2"
}
expect_usage_error sweep "$work/pass.scn" --seeds 5..3
expect_usage_error sweep "$work/pass.scn" --seeds 1-3
expect_usage_error sweep "$work/pass.scn"
expect_usage_error sweep "$work/pass.scn" --seeds 1..3 --shard 0/2
expect_usage_error sweep "$work/pass.scn" --seeds 1..3 --shard 3/2
expect_usage_error sweep "$work/pass.scn" --seeds 1..3 --jobs 0
expect_usage_error sweep "$work/pass.scn" --seeds 1..2000000
expect_usage_error sweep "$work/no-such.scn" --seeds 1..3
expect_usage_error explore "$work/pass.scn" --seeds 1..3 --out "$work/no/such/dir"
expect_usage_error explore "$work/pass.scn" --seeds x..3
echo "bad usage: exit 2"
echo "PASS"
