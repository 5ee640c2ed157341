#include "tests/conformance/linux_fixture.h"

#include <filesystem>

namespace eagain::conformance {

SockAddr LinuxFixture::loopback(int family) const {
    return family == AF_INET6 ? SockAddr::ipv6_loopback(0) : SockAddr::ipv4_loopback(0);
}

std::size_t LinuxFixture::open_fd_count() {
    // The directory iterator holds one descriptor of its own while it runs;
    // it is counted every time, so differences stay exact.
    std::size_t count = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        ++count;
    }
    return count;
}

}  // namespace eagain::conformance
