#include "core/assert.h"

#include <cstdio>
#include <cstdlib>

namespace eagain::detail {

void assertion_failed(const char* expression, const char* file, int line) noexcept {
    std::fprintf(stderr, "%s:%d: eagain assertion failed: %s\n", file, line, expression);
    std::abort();
}

}  // namespace eagain::detail
