#!/usr/bin/env bash
# The real programs on loopback, as a user runs them:
#   1. eagain-load drives CONNS concurrent connections through eagain-echo
#      and verifies every echoed byte (its exit status says so);
#   2. a hostile frame (negative length) from a raw client closes that
#      connection only, is logged with the peer and the reason, and a load
#      run right after it still passes;
#   3. eagain-echo's open fd count returns to its value before the load;
#   4. SIGTERM stops eagain-echo with exit 0 (3 would mean it leaked fds).
#
#   tests/tools/echo_load_test.sh BUILD_DIR [CONNS]
set -euo pipefail

build="${1:?build directory}"
conns="${2:-1000}"
echo_bin="$build/tools/eagain-echo"
load_bin="$build/tools/eagain-load"
work="$(mktemp -d)"
echo_pid=""
cleanup() {
    if [[ -n "$echo_pid" ]] && kill -0 "$echo_pid" 2>/dev/null; then kill -KILL "$echo_pid"; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- eagain-echo stderr:" >&2
    cat "$work/echo.err" >&2 || true
    exit 1
}

# eagain-load needs one fd per connection, so does the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

"$echo_bin" --port 0 >"$work/echo.out" 2>"$work/echo.err" &
echo_pid=$!
port=""
for _ in $(seq 100); do
    port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/echo.out")"
    [[ -n "$port" ]] && break
    sleep 0.05
done
[[ -n "$port" ]] || fail "eagain-echo did not print its port"

fd_count() { find "/proc/$echo_pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
fds_before="$(fd_count)"

# 1. Many concurrent connections, every byte verified.
"$load_bin" --port "$port" --conns "$conns" --frames $((conns * 20)) --size 200 --in-flight 4 \
    >"$work/load.out" 2>&1 || { cat "$work/load.out" >&2; fail "eagain-load with $conns connections"; }
grep -q '^result .* errors=0$' "$work/load.out" || fail "no clean result line: $(tail -1 "$work/load.out")"
echo "load over $conns connections: $(grep 'frames/s' "$work/load.out")"

# 2. A hostile frame: header with body_len 0xffffffff (negative as int32).
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf '\x00\x00\x00\x01\x00\x00\x00\x07\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00' >&3
# The server closes the connection: reading returns end of stream.
if ! timeout 5 cat <&3 >/dev/null; then fail "server did not close the hostile connection"; fi
exec 3<&-
grep -q 'hostile_frame' "$work/echo.err" || fail "hostile frame not logged"
grep -q 'negative_length' "$work/echo.err" || fail "hostile frame logged without its reason"
grep -q 'closed 127\.0\.0\.1:[0-9]*: hostile_frame' "$work/echo.err" || fail "hostile frame logged without the peer"
"$load_bin" --port "$port" --conns 4 --frames 400 --size 64 >"$work/load2.out" 2>&1 ||
    fail "load after a hostile frame: $(cat "$work/load2.out")"
echo "hostile frame: $(grep hostile_frame "$work/echo.err")"

# 2b. A frame at the largest size eagain-echo accepts by default (16 MiB,
#     the 20-byte header included) is echoed whole: the server's output
#     limit holds a whole frame (it was 8 MiB, and the connection closed
#     with output_limit_exceeded).
"$load_bin" --port "$port" --conns 1 --frames 2 --size $((16 * 1024 * 1024 - 20)) --in-flight 1 \
    >"$work/load_max.out" 2>&1 || fail "two 16 MiB frames: $(cat "$work/load_max.out")"
grep -q '^result .* errors=0$' "$work/load_max.out" || fail "16 MiB frames: $(tail -1 "$work/load_max.out")"
echo "frames at the maximum: $(tail -1 "$work/load_max.out")"

# 3. Every connection's fd is closed again (the server closes after the
#    clients' FIN, so allow it a moment).
fds_after=""
for _ in $(seq 100); do
    fds_after="$(fd_count)"
    [[ "$fds_after" == "$fds_before" ]] && break
    sleep 0.05
done
[[ "$fds_after" == "$fds_before" ]] || fail "eagain-echo holds $fds_after fds, $fds_before before the load"
echo "eagain-echo fds: $fds_before before, $fds_after after"

# 4. Clean stop.
kill -TERM "$echo_pid"
status=0
wait "$echo_pid" || status=$?
echo_pid=""
[[ "$status" == 0 ]] || fail "eagain-echo exited $status after SIGTERM"
grep -q 'SIGTERM: stopping' "$work/echo.err" || fail "SIGTERM not reported"

# 5. A configuration that could never echo a frame at the maximum is refused.
bad_status=0
"$echo_bin" --port 0 --max-frame 4194304 --output-limit 4194303 >/dev/null 2>"$work/bad.err" || bad_status=$?
[[ "$bad_status" == 2 ]] || fail "--output-limit below --max-frame exited $bad_status, expected 2"
grep -q 'output_limit_below_max_frame' "$work/bad.err" || fail "no reason for the refusal: $(cat "$work/bad.err")"
echo "output limit below max frame: refused ($(cat "$work/bad.err"))"
echo "PASS"
