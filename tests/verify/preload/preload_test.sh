#!/usr/bin/env bash
# The preload shim's tests (CTest runs one case per test): the probe
# (preload_probe.cpp) started with and without libeagain-preload.so, with
# rules from a fault file, and what it printed, its exit status and the
# shim's log compared. Every run is bounded by `timeout`, which ends its one
# child by PID; the probe starts no process of its own.
#
#   preload_test.sh PROBE SHIM CASE
set -uo pipefail
probe=$1
shim=$2
case_name=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
    echo "FAIL $case_name: $*" >&2
    exit 1
}

# run RULES ARGS...: the probe under the shim with RULES as its fault file;
# stdout in $out, stderr in $work/err, exit status in $status.
run() {
    printf '%s\n' "$1" > "$work/rules.faults"
    shift
    # Under ASan the runtime must be the first library loaded, before the
    # shim (EAGAIN_PRELOAD_RUNTIME, set by verify/CMakeLists.txt then).
    out=$(EAGAIN_FAULTS="$work/rules.faults" EAGAIN_PRELOAD_LOG="$work/log" \
        LD_PRELOAD="${EAGAIN_PRELOAD_RUNTIME:+$EAGAIN_PRELOAD_RUNTIME:}$shim" \
        timeout -k 1 10 "$probe" "$@" 2> "$work/err")
    status=$?
}

expect_out() {
    [ "$status" -eq 0 ] || fail "exit status $status, stderr: $(cat "$work/err")"
    [ "$out" = "$1" ] || fail "printed '$out', expected '$1'"
}

case "$case_name" in
    no-rules-same)
        for mode in echo et-eagain pipe two-conns "epipe nosignal" blocked-thread fork fionbio dup poll; do
            plain=$(timeout -k 1 10 "$probe" $mode) || fail "$mode without the shim"
            run "# no rules" $mode
            expect_out "$plain"
        done
        grep -q '"event":"loaded","rules":0' "$work/log" || fail "no loaded line: $(cat "$work/log")"
        ;;
    short-write)
        run "fault target send call 1 -> short 3" echo
        expect_out "sent 3 peer 3"
        grep -q '"event":"fault","call":"send","fd":[0-9]*,"call_number":1,"fault":"short write 3 of 11 bytes"' \
            "$work/log" || fail "no fault line: $(cat "$work/log")"
        ;;
    poll-eintr)
        # poll and ppoll on a set with a TCP socket go through the rules
        # (both count as poll calls); the readiness is there after EINTR.
        run "fault target poll call 1 -> EINTR
fault target poll call 3 -> EINTR" poll
        expect_out "poll EINTR poll ok 1 ppoll EINTR"
        [ "$(grep -c '"event":"fault","call":"poll"' "$work/log")" -eq 2 ] || fail "fault lines: $(cat "$work/log")"
        ;;
    et-eagain-wakes)
        run "fault target recv call 1 -> EAGAIN" et-eagain
        expect_out "recv EAGAIN wake 1 recv ok 5"
        ;;
    epipe-sigpipe)
        run "fault target send call 1 -> EPIPE" epipe default
        [ "$status" -eq $((128 + 13)) ] || fail "default SIGPIPE: exit status $status, expected 141 (SIGPIPE)"
        grep -q '"event":"sigpipe"' "$work/log" || fail "no sigpipe line: $(cat "$work/log")"
        run "fault target send call 1 -> EPIPE" epipe nosignal
        expect_out "send EPIPE"
        run "fault target send call 1 -> EPIPE" epipe ignore
        expect_out "send EPIPE"
        ;;
    pipe-untouched)
        run "fault target recv always -> ECONNRESET
fault target send always -> EPIPE" pipe
        expect_out "pipe ok file ok"
        if grep -q '"event":"fault"' "$work/log"; then fail "a fault on a pipe or file: $(cat "$work/log")"; fi
        ;;
    bad-rules-125)
        run "# line 1
fault target recv cal 1 -> EAGAIN" echo
        [ "$status" -eq 125 ] || fail "exit status $status, expected 125"
        grep -q "rules.faults:2:19: expected a selector" "$work/err" || fail "stderr: $(cat "$work/err")"
        [ -z "$out" ] || fail "the program ran: '$out'"
        ;;
    per-connection)
        run "fault target recv call 1 -> EAGAIN" two-conns
        expect_out "a EAGAIN b EAGAIN"
        [ "$(grep -c '"event":"fault","call":"recv","fd":[0-9]*,"call_number":1,"fault":"EAGAIN"' "$work/log")" -eq 2 ] ||
            fail "expected two recv faults: $(cat "$work/log")"
        ;;
    threads-and-fork)
        # A thread blocked in recv holds up no other; a child forked while
        # another thread is inside the shim starts with its lock free.
        run "fault target recv every 2 -> EINTR" blocked-thread
        expect_out "other ok 5"
        run "fault target recv every 3 -> EAGAIN" fork
        expect_out "child 0"
        ;;
    learns-nonblocking)
        # FIONBIO (CPython's setblocking) and an fd the shim did not see
        # made (a dup, asked with getsockopt): EAGAIN only once O_NONBLOCK is known.
        run "fault target recv call 1 -> EAGAIN" fionbio
        expect_out "recv EAGAIN"
        run "fault target recv call 1 -> EAGAIN" dup
        expect_out "recv EAGAIN"
        ;;
    *)
        fail "unknown case"
        ;;
esac
echo "PASS $case_name"
