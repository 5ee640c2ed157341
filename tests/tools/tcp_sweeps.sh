#!/usr/bin/env bash
# The long TCP model sweep: every scenario in tests/sweeps/ over seeds
# 1..SEEDS with JOBS worker processes; fails if any seed of any file fails,
# and prints each file's summary table (its failing seeds included).
#
#   tests/tools/tcp_sweeps.sh BUILD_DIR SEEDS JOBS
#   tests/tools/tcp_sweeps.sh build/dev 3000 2
set -euo pipefail
cd "$(dirname "$0")/../.."

build="${1:?usage: $0 BUILD_DIR SEEDS JOBS}"
seeds="${2:?usage: $0 BUILD_DIR SEEDS JOBS}"
jobs="${3:?usage: $0 BUILD_DIR SEEDS JOBS}"
bin="$build/tools/eagain"
[[ -x "$bin" ]] || {
    echo "tcp_sweeps: $bin is missing (build the eagain target)" >&2
    exit 2
}

failed=0
files=0
for file in tests/sweeps/*.scn; do
    files=$((files + 1))
    status=0
    "$bin" sweep "$file" --seeds "1..$seeds" --jobs "$jobs" || status=$?
    if [[ "$status" != 0 ]]; then
        echo "tcp_sweeps: $file failed (exit $status)" >&2
        failed=$((failed + 1))
    fi
    echo
done
((files > 0)) || {
    echo "tcp_sweeps: no scenarios in tests/sweeps/" >&2
    exit 2
}
echo "tcp_sweeps: $files files x $seeds seeds, $failed files with failing seeds"
((failed == 0))
