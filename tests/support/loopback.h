// Connected TCP pairs over loopback, made through any Sys.
#pragma once

#include "core/sys.h"

#include <sys/epoll.h>
#include <catch2/catch.hpp>

namespace eagain::test {

// A non-blocking listening socket on 127.0.0.1 with a kernel-chosen port.
inline int listen_loopback(Sys& sys, int backlog = 64) {
    const FdResult listener = sys.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(listener.ok());
    REQUIRE(sys.set_int_option(listener.value, SOL_SOCKET, SO_REUSEADDR, 1).ok());
    REQUIRE(sys.bind(listener.value, SockAddr::ipv4_loopback(0)).ok());
    REQUIRE(sys.listen(listener.value, backlog).ok());
    return listener.value;
}

inline SockAddr local_address(Sys& sys, int fd) {
    const SysResult<SockAddr> name = sys.getsockname(fd);
    REQUIRE(name.ok());
    return name.value;
}

// Waits (bounded) for the first event on fd and returns its mask, 0 on
// timeout. fd must not be registered with another epoll set by the caller.
inline std::uint32_t wait_once(Sys& sys, int fd, std::uint32_t interest, int timeout_ms = 2000) {
    const FdResult ep = sys.epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(ep.ok());
    REQUIRE(sys.epoll_ctl(ep.value, EPOLL_CTL_ADD, fd, EpollEvent{interest, 0}).ok());
    EpollEvent event;
    const FdResult n = sys.epoll_wait(ep.value, std::span(&event, 1), timeout_ms);
    (void)sys.close(ep.value);
    REQUIRE(n.ok());
    return n.value == 1 ? event.events : 0;
}

struct SocketPair {
    int client = -1;
    int server = -1;
};

// A connected pair of non-blocking sockets.
inline SocketPair connected_pair(Sys& sys) {
    const int listener = listen_loopback(sys);
    const SockAddr address = local_address(sys, listener);
    const FdResult client = sys.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(client.ok());
    const VoidResult c = sys.connect(client.value, address);
    REQUIRE((c.ok() || c.error == EINPROGRESS));
    REQUIRE((wait_once(sys, listener, EPOLLIN) & EPOLLIN) != 0);
    const FdResult server = sys.accept4(listener, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    REQUIRE(server.ok());
    REQUIRE((wait_once(sys, client.value, EPOLLOUT) & EPOLLOUT) != 0);
    REQUIRE(sys.socket_error(client.value).value == 0);
    (void)sys.close(listener);
    return SocketPair{client.value, server.value};
}

}  // namespace eagain::test
