#include "tests/conformance/fixture.h"

#include <catch2/catch.hpp>

#include <exception>
#include <utility>

namespace eagain::conformance {

FdLeakCheck::FdLeakCheck(std::function<std::size_t()> open_fd_count)
    : open_fd_count_(std::move(open_fd_count)),
      open_at_start_(open_fd_count_()),
      uncaught_at_start_(std::uncaught_exceptions()) {}

FdLeakCheck::~FdLeakCheck() {
    if (std::uncaught_exceptions() != uncaught_at_start_)
        return;
    const std::size_t open_at_end = open_fd_count_();
    INFO("descriptors open at the start of the test: " << open_at_start_ << ", at the end: " << open_at_end);
    CHECK(open_at_end == open_at_start_);
}

}  // namespace eagain::conformance
