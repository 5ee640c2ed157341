#!/usr/bin/env bash
# Echo comparison: eagain-echo against eagain-baseline-echo (a plain
# level-triggered epoll server, bench/baseline_echo_server.cpp), both driven
# by eagain-load over loopback, then one table of frames/s, p99 and the ratio.
#
#   bench/echo_bench.sh
#   ECHO_BENCH_SCALE=0.2 bench/echo_bench.sh        a quick pass
#
# For every (conns, size) pair each server in turn is started on a free port,
# waited for until it listens, loaded with the same number of frames by
# eagain-load, and stopped with SIGTERM. Figures are ratios within one run on
# one machine; the servers and the load client share the cores.
#
# Environment (all optional):
#   ECHO_BENCH_BUILD       build tree with the binaries          (build/dev)
#   EAGAIN_ECHO            server under test     ($ECHO_BENCH_BUILD/tools/eagain-echo)
#   EAGAIN_LOAD            load client           ($ECHO_BENCH_BUILD/tools/eagain-load)
#   EAGAIN_BASELINE_ECHO   baseline server       ($ECHO_BENCH_BUILD/bench/eagain-baseline-echo)
#   ECHO_BENCH_ECHO_ARGS   extra eagain-echo flags, e.g. "--et"
#   ECHO_BENCH_CONNS       connection counts     ("1 100")
#   ECHO_BENCH_SIZES       body bytes per frame  ("64 16384")
#   ECHO_BENCH_SCALE       multiplies every frame count (1; any positive number)
#   ECHO_BENCH_FRAMES      a fixed frame count for every run instead
#
# Frame counts: frames = ECHO_BENCH_SCALE * 1.2e9 / (4096 + size), that is a
# frame is assumed to cost about as much as 4 KiB of payload: 288k frames of
# 64 bytes, 58k of 16 KiB, meant to take 1-3 s each. A run outside 0.5-5 s
# prints a note saying which way to move ECHO_BENCH_SCALE.
#
# Logs of every server and load run go to $ECHO_BENCH_BUILD/echo-bench/.
# Exits 1 if any load run failed (non-zero exit, no result line, errors > 0)
# or a server died under load; 2 on bad settings or missing binaries.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=${ECHO_BENCH_BUILD:-build/dev}
echo_bin=${EAGAIN_ECHO:-$build/tools/eagain-echo}
load_bin=${EAGAIN_LOAD:-$build/tools/eagain-load}
baseline_bin=${EAGAIN_BASELINE_ECHO:-$build/bench/eagain-baseline-echo}
read -r -a echo_args <<<"${ECHO_BENCH_ECHO_ARGS:-}"
read -r -a conns_list <<<"${ECHO_BENCH_CONNS:-1 100}"
read -r -a sizes_list <<<"${ECHO_BENCH_SIZES:-64 16384}"
scale=${ECHO_BENCH_SCALE:-1}
fixed_frames=${ECHO_BENCH_FRAMES:-}
logs=$build/echo-bench

# Bounds: how long a server may take to listen, to exit after SIGTERM, and
# how many ports to try when another process takes ours first.
listen_wait_polls=100 # x 0.05 s
stop_wait_polls=100   # x 0.05 s
port_attempts_max=5

fail_setup() {
    echo "echo_bench: $*" >&2
    exit 2
}

if ! [[ $scale =~ ^[0-9]*\.?[0-9]+$ ]] || awk -v s="$scale" 'BEGIN { exit !(s <= 0) }'; then
    fail_setup "ECHO_BENCH_SCALE must be a positive number, not '$scale'"
fi
if [[ -n $fixed_frames ]] && ! [[ $fixed_frames =~ ^[1-9][0-9]*$ ]]; then
    fail_setup "ECHO_BENCH_FRAMES must be a positive integer, not '$fixed_frames'"
fi
for n in "${conns_list[@]}" "${sizes_list[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || fail_setup "ECHO_BENCH_CONNS and ECHO_BENCH_SIZES take positive integers, not '$n'"
done
for bin in "$echo_bin" "$load_bin" "$baseline_bin"; do
    if [[ ! -x $bin ]]; then
        fail_setup "$bin is missing or not executable; build it (cmake --preset dev && cmake --build --preset dev -j2) or point EAGAIN_ECHO / EAGAIN_LOAD / EAGAIN_BASELINE_ECHO at it"
    fi
done
mkdir -p "$logs"

frames_for() { # conns size
    local frames
    if [[ -n $fixed_frames ]]; then
        frames=$fixed_frames
    else
        frames=$(awk -v s="$scale" -v size="$2" 'BEGIN { printf "%d", s * 1.2e9 / (4096 + size) }')
    fi
    # Every connection carries at least one frame.
    ((frames >= $1)) || frames=$1
    echo "$frames"
}

# True if some socket (any state, IPv4 or IPv6) has local port $1.
port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v hex="$hex" 'FNR > 1 { split($2, a, ":"); if (a[2] == hex) found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# True if a socket is in LISTEN (state 0A) on port $1. Reads /proc, so
# polling never opens a connection the server would have to serve.
port_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v hex="$hex" 'FNR > 1 { split($2, a, ":"); if (a[2] == hex && $4 == "0A") found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Below the default ephemeral range (32768-60999), so the load client's own
# outgoing ports never take the one we picked.
free_port() {
    local port tries
    for ((tries = 0; tries < 200; tries++)); do
        port=$((20000 + RANDOM % 12000))
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

server_pid=
stop_server() {
    [[ -n $server_pid ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    local polls
    for ((polls = 0; polls < stop_wait_polls; polls++)); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        echo "echo_bench: server $server_pid ignored SIGTERM for 5 s; killing it" >&2
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
trap stop_server EXIT

# start_server log binary args...: on success sets server_pid and server_port.
start_server() {
    local log=$1 attempt polls
    shift
    for ((attempt = 0; attempt < port_attempts_max; attempt++)); do
        server_port=$(free_port) || break
        "$@" --port "$server_port" >"$log" 2>&1 &
        server_pid=$!
        for ((polls = 0; polls < listen_wait_polls; polls++)); do
            if ! kill -0 "$server_pid" 2>/dev/null; then
                break # exited: maybe the port was taken after all; try another
            fi
            if port_listening "$server_port"; then
                return 0
            fi
            sleep 0.05
        done
        stop_server
    done
    echo "echo_bench: $1 did not listen after $port_attempts_max attempts; its last log ($log):" >&2
    tail -n 5 "$log" >&2
    return 1
}

# run_one name conns size frames binary args...: one server, one load run.
# Sets r_fps, r_p99, r_cpu_ns (server CPU ns per frame) (or "FAIL") and r_seconds.
run_one() {
    local name=$1 conns=$2 size=$3 frames=$4
    shift 4
    local tag="$name-c$conns-s$size"
    r_fps=FAIL r_p99=FAIL r_cpu_ns=FAIL r_seconds=
    start_server "$logs/$tag.server.log" "$@" || return 1

    local load_rc=0
    "$load_bin" --port "$server_port" --conns "$conns" --frames "$frames" --size "$size" \
        >"$logs/$tag.load.log" 2>&1 || load_rc=$?
    local server_alive=1
    kill -0 "$server_pid" 2>/dev/null || server_alive=0
    # The server's CPU time (user + system) for the whole run: steadier than
    # frames/s, which moves with how the scheduler places server and client
    # on the two cores.
    local cpu_ticks
    cpu_ticks=$(awk '{ print $14 + $15 }' "/proc/$server_pid/stat" 2>/dev/null || echo "")
    stop_server

    local line
    line=$(grep -E '^result ' "$logs/$tag.load.log" | tail -n 1 || true)
    local -A r=()
    local field
    for field in ${line#result }; do
        r[${field%%=*}]=${field#*=}
    done
    local why=
    if ((load_rc != 0)); then
        why="eagain-load exited $load_rc"
    elif [[ -z $line ]]; then
        why="no result line"
    elif [[ ${r[errors]:-} != 0 ]]; then
        why="errors=${r[errors]:-missing}"
    elif [[ -z ${r[frames_per_s]:-} || -z ${r[p99_us]:-} ]]; then
        why="result line without frames_per_s or p99_us"
    elif ((server_alive == 0)); then
        why="the server died during the run"
    fi
    if [[ -n $why ]]; then
        echo "  $name conns=$conns size=$size: FAILED ($why); log: $logs/$tag.load.log" >&2
        tail -n 5 "$logs/$tag.load.log" | sed 's/^/    /' >&2
        return 1
    fi
    r_fps=${r[frames_per_s]} r_p99=${r[p99_us]} r_seconds=${r[seconds]:-}
    r_cpu_ns=$(awk -v t="${cpu_ticks:-0}" -v hz="$(getconf CLK_TCK)" -v f="$frames" \
        'BEGIN { if (t > 0 && f > 0) printf "%.0f", t * 1e9 / hz / f; else print "-" }')
    printf '  %-8s conns=%-4s size=%-6s frames=%-8s %12.0f frames/s  p99 %s us  %s s\n' \
        "$name" "$conns" "$size" "$frames" "$r_fps" "$r_p99" "${r_seconds:-?}"
    if [[ -n $r_seconds ]]; then
        awk -v t="$r_seconds" 'BEGIN { exit !(t < 0.5) }' &&
            echo "    note: only $r_seconds s; raise ECHO_BENCH_SCALE for steadier figures"
        awk -v t="$r_seconds" 'BEGIN { exit !(t > 5) }' &&
            echo "    note: $r_seconds s; lower ECHO_BENCH_SCALE for a shorter pass"
    fi
    return 0
}

# Rounds a rate for the table; leaves FAIL as it is.
whole() {
    if [[ $1 == FAIL ]]; then echo FAIL; else awk -v x="$1" 'BEGIN { printf "%.0f", x }'; fi
}

echo "echo_bench: eagain=$echo_bin${echo_args[*]:+ ${echo_args[*]}} baseline=$baseline_bin load=$load_bin"
echo "echo_bench: logs in $logs/"
failures=0
rows=()
for conns in "${conns_list[@]}"; do
    for size in "${sizes_list[@]}"; do
        frames=$(frames_for "$conns" "$size")
        run_one eagain "$conns" "$size" "$frames" "$echo_bin" "${echo_args[@]}" || failures=$((failures + 1))
        e_fps=$r_fps e_p99=$r_p99 e_cpu=$r_cpu_ns
        run_one baseline "$conns" "$size" "$frames" "$baseline_bin" || failures=$((failures + 1))
        b_fps=$r_fps b_p99=$r_p99 b_cpu=$r_cpu_ns
        ratio=-
        if [[ $e_fps != FAIL && $b_fps != FAIL ]]; then
            ratio=$(awk -v e="$e_fps" -v b="$b_fps" 'BEGIN { if (b > 0) printf "%.2f", e / b; else print "-" }')
        fi
        rows+=("$(printf '%6s %7s %9s %14s %14s %7s %13s %13s %10s %10s' "$conns" "$size" "$frames" \
            "$(whole "$b_fps")" "$(whole "$e_fps")" "$ratio" "$b_p99" "$e_p99" "$b_cpu" "$e_cpu")")
    done
done

echo
printf '%6s %7s %9s %14s %14s %7s %13s %13s %10s %10s\n' conns size frames "baseline f/s" "eagain f/s" ratio \
    "baseline p99" "eagain p99" "base cpu" "eagain cpu"
printf '%s\n' "${rows[@]}"
echo "(f/s: frames per second; ratio: eagain / baseline, above 1 is faster; p99: microseconds;"
echo " cpu: the server's user+system CPU time per frame, in nanoseconds, at the kernel's tick resolution)"
if ((failures > 0)); then
    echo "echo_bench: $failures run(s) FAILED; see $logs/" >&2
    exit 1
fi
