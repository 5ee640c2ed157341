// Invariant checks that stay on in every build type.
//
// A fault-injection harness that hides a broken invariant behind NDEBUG would
// report a wrong result instead of a crash, so these are never compiled out.
// A failed check is a bug in the caller or in eagain, never a peer's fault:
// peers' mistakes are returned as error values.
#pragma once

namespace eagain::detail {
[[noreturn]] void assertion_failed(const char* expression, const char* file, int line) noexcept;
}  // namespace eagain::detail

// A macro only because the message needs the expression's text and location
// (std::source_location is not usable with clang 14 on libstdc++ 12).
#define EAGAIN_ASSERT(condition) \
    ((condition) ? static_cast<void>(0) : ::eagain::detail::assertion_failed(#condition, __FILE__, __LINE__))
