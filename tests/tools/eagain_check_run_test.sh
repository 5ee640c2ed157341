#!/usr/bin/env bash
# eagain check and eagain run on the inputs a user gets wrong, as a user
# runs them (docs/scenario-language.md, "Lexical rules" and "Limits"):
#   1. a valid file passes check (0) and run (0); a file with no expect
#      statement fails both (1), with file:1:1;
#   2. check and run take files and directories; a missing path, an empty
#      directory and an unreadable file exit 2 with a message;
#   3. a FIFO named as a scenario is refused at once (2), never opened for
#      a blocking read (the command would hang);
#   4. a UTF-8 byte order mark is skipped; a bad host line is one problem;
#      beyond 20 problems "... and N more problems";
#   5. --seed takes a decimal 0 to 2^64 - 1 only: -1, 2^64 and more, 1_0
#      and 0x1 exit 2, never run with a wrapped seed;
#   6. a value over a limit says the maximum.
#
#   tests/tools/eagain_check_run_test.sh BUILD_DIR
set -euo pipefail

build="${1:?build directory}"
bin="$build/tools/eagain"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# status NAME ARGS...: runs eagain (at most 10 s: a hang is a failure),
# output in $work/NAME.out and .err; prints the exit status.
status() {
    local name="$1"
    shift
    local code=0
    timeout 10 "$bin" "$@" >"$work/$name.out" 2>"$work/$name.err" </dev/null || code=$?
    echo "$code"
}
expect_status() {
    local want="$1" name="$2"
    shift 2
    local got
    got="$(status "$name" "$@")"
    [[ "$got" == "$want" ]] || fail "$name: exit $got, expected $want; stdout: $(cat "$work/$name.out"); stderr: $(cat "$work/$name.err")"
}
contains() {
    grep -qF -- "$2" "$work/$1.out" "$work/$1.err" || fail "$1: no \"$2\" in: $(cat "$work/$1.out" "$work/$1.err")"
}

cat >"$work/ok.scn" <<'SCN'
# A client and an echo server, nothing wrong.
host server
host client
app server frame-echo port 7
app client frame-client connect server:7 frames 20
expect client frames-verified 20
expect done-by 1s
SCN
printf 'host server\nhost client\napp server frame-echo port 7\n' >"$work/nothing.scn"

# 1. Valid passes; nothing expected is an error of check and of run.
expect_status 0 check_ok check "$work/ok.scn"
expect_status 0 run_ok run "$work/ok.scn"
expect_status 1 check_nothing check "$work/nothing.scn"
contains check_nothing "nothing.scn:1:1: expected at least one expect statement"
expect_status 1 run_nothing run "$work/nothing.scn"
contains run_nothing "nothing.scn:1:1: expected at least one expect statement"

# 2. Files and directories; nothing to do is bad usage.
mkdir -p "$work/dir/sub" "$work/empty"
cp "$work/ok.scn" "$work/dir/sub/a.scn"
cp "$work/ok.scn" "$work/dir/b.scn"
expect_status 0 check_dir check "$work/dir"
[[ "$(grep -c ': ok' "$work/check_dir.out")" == 2 ]] || fail "check DIR: $(cat "$work/check_dir.out")"
expect_status 0 run_dir run "$work/dir"
contains run_dir "scenarios: 2 run, 2 passed"
for command in check run; do
    expect_status 2 "${command}_empty" "$command" "$work/empty"
    contains "${command}_empty" "no .scn file in this directory"
    expect_status 2 "${command}_missing" "$command" "$work/missing.scn"
    contains "${command}_missing" "no such file or directory"
done
if [[ "$(id -u)" != 0 ]]; then  # root reads a file whatever its mode
    cp "$work/ok.scn" "$work/secret.scn"
    chmod 000 "$work/secret.scn"
    expect_status 2 check_unreadable check "$work/secret.scn"
    expect_status 2 run_unreadable run "$work/secret.scn"
    contains run_unreadable "cannot read"
fi
expect_status 2 check_is_dir_file check "$work/dir/sub/a.scn" "$work/empty"

# 3. A FIFO is refused at once, by check and by run, alone or in a directory.
mkfifo "$work/fifo.scn"
expect_status 2 check_fifo check "$work/fifo.scn"
contains check_fifo "a FIFO, not a regular file"
expect_status 2 run_fifo run "$work/fifo.scn"
contains run_fifo "a FIFO, not a regular file"
mkdir "$work/with_fifo"
cp "$work/ok.scn" "$work/with_fifo/a.scn"
mkfifo "$work/with_fifo/b.scn"
expect_status 2 run_dir_fifo run "$work/with_fifo"
contains run_dir_fifo "PASS  $work/with_fifo/a.scn"

# 4. A byte order mark, a bad host line, many problems.
printf '\xEF\xBB\xBF' >"$work/bom.scn"
cat "$work/ok.scn" >>"$work/bom.scn"
expect_status 0 check_bom check "$work/bom.scn"
expect_status 0 run_bom run "$work/bom.scn"
sed 's/^host server$/host server fd-limit 1/' "$work/ok.scn" >"$work/bad_host.scn"
expect_status 1 check_bad_host check "$work/bad_host.scn"
[[ "$(wc -l <"$work/check_bad_host.out")" == 1 ]] || fail "a bad host line cascades: $(cat "$work/check_bad_host.out")"
contains check_bad_host "bad_host.scn:2:22: expected a whole number from 4 to 1048576"
{
    cat "$work/ok.scn"
    for _ in $(seq 25); do echo nonsense; done
} >"$work/many.scn"
expect_status 1 check_many check "$work/many.scn"
[[ "$(grep -c ': expected a statement' "$work/check_many.out")" == 20 ]] || fail "check_many: $(cat "$work/check_many.out")"
contains check_many "... and 5 more problems"
expect_status 1 run_many run "$work/many.scn"
contains run_many "  ... and 5 more problems"

# 5. --seed: decimal 0 to 2^64 - 1 only.
expect_status 0 seed_max run "$work/ok.scn" --seed 18446744073709551615
expect_status 0 seed_zero run "$work/ok.scn" --seed 0
for seed in -1 18446744073709551616 99999999999999999999999 1_0 0x1 ""; do
    expect_status 2 "seed_bad" run "$work/ok.scn" --seed "$seed"
    contains seed_bad "--seed: expected a decimal number from 0 to 18446744073709551615, found \"$seed\""
done

# 6. Limits say the maximum.
sed 's/frames 20$/frames 20 conns 100000000/' "$work/ok.scn" >"$work/conns.scn"
expect_status 1 check_conns check "$work/conns.scn"
contains check_conns 'conns.scn:5:58: expected a whole number from 1 to 32768, found "100000000": too large (at most 32768, one ephemeral port each)'
sed 's/done-by 1s$/done-by 3000h/' "$work/ok.scn" >"$work/long.scn"
expect_status 1 check_long check "$work/long.scn"
contains check_long 'found "3000h": too long (at most 2400h)'
echo "eagain check/run: all cases passed"
