// LinuxFixture: the conformance suite against the real kernel, over the
// loopback interface. See fixture.h for what a fixture provides.
#pragma once

#include "core/linux_sys.h"
#include "core/sys.h"

#include <cstddef>

namespace eagain::conformance {

class LinuxFixture {
public:
    Sys& sys() { return sys_; }
    SockAddr loopback(int family) const;
    // Entries of /proc/self/fd: the whole process's descriptors, which is
    // right here because nothing else in the test process opens any while a
    // test runs.
    static std::size_t open_fd_count();

private:
    LinuxSys sys_;
};

}  // namespace eagain::conformance
