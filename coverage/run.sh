#!/usr/bin/env bash
# Line and branch coverage of eagain's own sources (core/, later sim/):
# builds the `coverage` preset (gcc --coverage, -O0), runs every test,
# captures with lcov, writes HTML to build/coverage/html/ and prints lcov's
# summary, per file and in total.
#
# Branch coverage leaves out lines with EAGAIN_ASSERT: the failing side of an
# invariant check aborts by design and has no test that could reach it
# without a bug. Exception edges (a throwing operator new inside std::) are
# left out too: the codec never throws on its own.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cmake --preset coverage >/dev/null
cmake --build --preset coverage

build=build/coverage
find "$build" -name '*.gcda' -delete
ctest --preset coverage -j "$(nproc)" --output-on-failure | tail -n 3

rc=(--rc lcov_branch_coverage=1 --rc geninfo_no_exception_branch=1
    --rc 'lcov_excl_br_line=LCOV_EXCL_BR_LINE|EAGAIN_ASSERT')
# geninfo 1.16 under Debian 12's Perl warns "Subroutine ... redefined"; noise.
lcov "${rc[@]}" --quiet --capture --directory "$build" --output-file "$build/all.info" \
    2> >(grep -v 'redefined at' >&2)
lcov "${rc[@]}" --quiet --extract "$build/all.info" "$PWD/core/*" "$PWD/sim/*" --output-file "$build/eagain.info"
genhtml "${rc[@]}" --quiet --branch-coverage --legend --output-directory "$build/html" "$build/eagain.info"

echo
echo "== coverage of eagain sources (HTML: $build/html/index.html)"
lcov "${rc[@]}" --list "$build/eagain.info"
lcov "${rc[@]}" --summary "$build/eagain.info"
