#include "core/assert.h"

#include <cstdio>
#include <cstdlib>

namespace eagain::detail {

// Runs only when an invariant is broken, so no passing test reaches it.
// LCOV_EXCL_START
void assertion_failed(const char* expression, const char* file, int line) noexcept {
    std::fprintf(stderr, "%s:%d: eagain assertion failed: %s\n", file, line, expression);
    std::abort();
}
// LCOV_EXCL_STOP

}  // namespace eagain::detail
