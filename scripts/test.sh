#!/usr/bin/env bash
# Sets up, builds and runs every test, ending in CTest's summary.
#
#   ./scripts/test.sh            the dev preset (gcc, RelWithDebInfo)
#   ./scripts/test.sh asan       the same tests under ASan + UBSan
#   ./scripts/test.sh dev-clang  the same tests built with clang-14
set -euo pipefail
cd "$(dirname "$0")/.."

preset="${1:-dev}"
./scripts/setup.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset" -j "$(nproc)"
