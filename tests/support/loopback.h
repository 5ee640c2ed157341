// Loopback sockets as raw fds, for tests that hand them to a Transport or a
// ConnectionDriver (which take ownership). A thin layer over the
// conformance suite's Sys-generic helpers (tests/conformance/support.h),
// which hold owned fds.
#pragma once

#include "core/sys.h"
#include "tests/conformance/support.h"

#include <sys/epoll.h>
#include <catch2/catch.hpp>

namespace eagain::test {

// A non-blocking listening socket on 127.0.0.1 with a kernel-chosen port;
// the caller closes it.
inline int listen_loopback(Sys& sys, int backlog = 64) {
    return conformance::listen_on(sys, SockAddr::ipv4_loopback(0), 0, backlog).fd.release();
}

inline SockAddr local_address(Sys& sys, int fd) {
    const SysResult<SockAddr> name = sys.getsockname(fd);
    REQUIRE(name.ok());
    return name.value;
}

// Waits (bounded) for the first event on fd and returns its mask, 0 on
// timeout. fd must not be registered with another epoll set by the caller.
inline std::uint32_t wait_once(Sys& sys, int fd, std::uint32_t interest, int timeout_ms = 2000) {
    return conformance::wait_for(sys, fd, interest, timeout_ms);
}

struct SocketPair {
    int client = -1;
    int server = -1;
};

// A connected pair of non-blocking sockets; the caller closes both.
inline SocketPair connected_pair(Sys& sys) {
    conformance::ConnectedPair pair = conformance::connect_pair(sys, SockAddr::ipv4_loopback(0));
    return SocketPair{pair.client.release(), pair.server.release()};
}

}  // namespace eagain::test
