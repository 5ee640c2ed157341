// Conformance: what a socket's state allows (never connected, listening,
// connected) and the errno Linux gives for the rest; binding addresses;
// descriptor numbers. See fixture.h for how these run against every Sys
// implementation.
#include "tests/conformance/fixture.h"
#include "tests/conformance/support.h"

#include <catch2/catch.hpp>

#include <sys/epoll.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <string>

namespace eagain::conformance {

// ===========================================================================
// Calls a socket's state does not allow

TEMPLATE_TEST_CASE("a socket that never connected: send gives EPIPE, recv, getpeername, shutdown ENOTCONN",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // recv(2): ENOTCONN "The socket is associated with a connection-oriented
    // protocol and has not been connected". getpeername(2): ENOTCONN "The
    // socket is not connected." shutdown(2): ENOTCONN "The specified socket
    // is not connected." send(2) lists ENOTCONN too, but Linux TCP answers
    // send on a socket in state CLOSE with EPIPE, as for one shut down
    // (MSG_NOSIGNAL: no SIGPIPE). accept(2): EINVAL "Socket is not listening
    // for connections". tcp(7): FIONREAD counts what is queued, none.
    // Being bound changes none of this.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Fd fd = stream_socket(sys, AF_INET);

    SECTION("never bound: getsockname gives the unspecified address, port 0") {
        const SysResult<SockAddr> name = sys.getsockname(fd.get());
        REQUIRE(name.ok());
        CHECK(name.value.to_string() == "0.0.0.0:0");
    }
    SECTION("bound, not listening") {
        REQUIRE(sys.bind(fd.get(), fx.loopback(AF_INET)).ok());
        const SysResult<SockAddr> name = sys.getsockname(fd.get());
        REQUIRE(name.ok());
        CHECK(name.value.port() != 0);
    }

    std::array<std::uint8_t, 4> buffer{};
    const SizeResult sent = sys.send(fd.get(), buffer, MSG_NOSIGNAL);
    REQUIRE_FALSE(sent.ok());
    CHECK(errno_name(sent.error) == "EPIPE");
    const SizeResult received = sys.recv(fd.get(), buffer, 0);
    REQUIRE_FALSE(received.ok());
    CHECK(errno_name(received.error) == "ENOTCONN");
    const SysResult<SockAddr> peer = sys.getpeername(fd.get());
    REQUIRE_FALSE(peer.ok());
    CHECK(errno_name(peer.error) == "ENOTCONN");
    const VoidResult shut = sys.shutdown(fd.get(), SHUT_RDWR);
    REQUIRE_FALSE(shut.ok());
    CHECK(errno_name(shut.error) == "ENOTCONN");
    const FdResult accepted = sys.accept4(fd.get(), nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    REQUIRE_FALSE(accepted.ok());
    CHECK(errno_name(accepted.error) == "EINVAL");
    const FdResult unread = sys.ioctl_fionread(fd.get());
    REQUIRE(unread.ok());
    CHECK(unread.value == 0);
}

TEMPLATE_TEST_CASE("a listening socket: FIONREAD gives EINVAL, recv ENOTCONN, send EPIPE, connect EISCONN, bind EINVAL",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // tcp(7): SIOCINQ (= FIONREAD) "The socket must not be in LISTEN state,
    // otherwise an error (EINVAL) is returned." A listener has no connection:
    // recv and getpeername give ENOTCONN, and send EPIPE (as on a socket
    // that never connected). connect(2): EISCONN "The socket is already
    // connected": Linux says so for any TCP socket not in state CLOSE,
    // a listener included. bind(2): EINVAL "The socket is already bound to
    // an address." listen(2) again is accepted (it only changes the
    // backlog).
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Listener listener = listen_on(sys, fx.loopback(AF_INET));
    const int fd = listener.fd.get();
    std::array<std::uint8_t, 4> buffer{};

    const FdResult unread = sys.ioctl_fionread(fd);
    REQUIRE_FALSE(unread.ok());
    CHECK(errno_name(unread.error) == "EINVAL");
    const SizeResult received = sys.recv(fd, buffer, 0);
    REQUIRE_FALSE(received.ok());
    CHECK(errno_name(received.error) == "ENOTCONN");
    const SysResult<SockAddr> peer = sys.getpeername(fd);
    REQUIRE_FALSE(peer.ok());
    CHECK(errno_name(peer.error) == "ENOTCONN");
    const SizeResult sent = sys.send(fd, buffer, MSG_NOSIGNAL);
    REQUIRE_FALSE(sent.ok());
    CHECK(errno_name(sent.error) == "EPIPE");
    const VoidResult connecting = sys.connect(fd, listener.address);
    REQUIRE_FALSE(connecting.ok());
    CHECK(errno_name(connecting.error) == "EISCONN");
    const VoidResult bound = sys.bind(fd, fx.loopback(AF_INET));
    REQUIRE_FALSE(bound.ok());
    CHECK(errno_name(bound.error) == "EINVAL");
    const VoidResult listening_again = sys.listen(fd, 8);
    INFO("listen again: " << errno_name(listening_again.error));
    CHECK(listening_again.ok());
}

TEMPLATE_TEST_CASE("a connected socket: listen, accept4 and bind give EINVAL", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // listen(2) lists no errno for this; Linux's inet_listen() takes only a
    // socket that is not connected and gives EINVAL otherwise. accept(2):
    // EINVAL "Socket
    // is not listening for connections". bind(2): EINVAL "The socket is
    // already bound to an address": connect() bound it implicitly.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));

    for (const int fd : {pair.client.get(), pair.server.get()}) {
        INFO((fd == pair.client.get() ? "client" : "server"));
        const VoidResult listening = sys.listen(fd, 8);
        REQUIRE_FALSE(listening.ok());
        CHECK(errno_name(listening.error) == "EINVAL");
        const FdResult accepted = sys.accept4(fd, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        REQUIRE_FALSE(accepted.ok());
        CHECK(errno_name(accepted.error) == "EINVAL");
        const VoidResult bound = sys.bind(fd, fx.loopback(AF_INET));
        REQUIRE_FALSE(bound.ok());
        CHECK(errno_name(bound.error) == "EINVAL");
    }
}

// ===========================================================================
// Binding

TEMPLATE_TEST_CASE("bind to an address in use gives EADDRINUSE, even with SO_REUSEADDR while it is listened on",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // bind(2): EADDRINUSE "The given address is already in use." A socket
    // that is only bound holds its port as much as a listener does. socket(7):
    // SO_REUSEADDR lets a bind reuse a local address "unless there is an
    // active listening socket bound to the address".
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Fd second = stream_socket(sys, AF_INET);

    SECTION("a listener holds the port") {
        const Listener listener = listen_on(sys, fx.loopback(AF_INET));
        const VoidResult bound = sys.bind(second.get(), listener.address);
        REQUIRE_FALSE(bound.ok());
        CHECK(errno_name(bound.error) == "EADDRINUSE");

        REQUIRE(sys.set_int_option(second.get(), SOL_SOCKET, SO_REUSEADDR, 1).ok());
        const VoidResult reusing = sys.bind(second.get(), listener.address);
        REQUIRE_FALSE(reusing.ok());
        CHECK(errno_name(reusing.error) == "EADDRINUSE");
    }
    SECTION("a socket only bound holds the port") {
        const Fd first = stream_socket(sys, AF_INET);
        REQUIRE(sys.bind(first.get(), fx.loopback(AF_INET)).ok());
        const SysResult<SockAddr> taken = sys.getsockname(first.get());
        REQUIRE(taken.ok());
        REQUIRE(taken.value.port() != 0);
        const VoidResult bound = sys.bind(second.get(), taken.value);
        REQUIRE_FALSE(bound.ok());
        CHECK(errno_name(bound.error) == "EADDRINUSE");
    }

    // The failed binds left the socket unbound: it can still bind elsewhere.
    const VoidResult elsewhere = sys.bind(second.get(), fx.loopback(AF_INET));
    INFO("bind to a free port after EADDRINUSE: " << errno_name(elsewhere.error));
    CHECK(elsewhere.ok());
}

TEMPLATE_TEST_CASE("bind of a bound socket gives EINVAL", "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // bind(2): EINVAL "The socket is already bound to an address." Also when
    // the new address is free: a socket is bound once.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Fd fd = stream_socket(sys, AF_INET);
    REQUIRE(sys.bind(fd.get(), fx.loopback(AF_INET)).ok());
    const SysResult<SockAddr> first_name = sys.getsockname(fd.get());
    REQUIRE(first_name.ok());

    const VoidResult again = sys.bind(fd.get(), fx.loopback(AF_INET));
    REQUIRE_FALSE(again.ok());
    CHECK(errno_name(again.error) == "EINVAL");
    const SysResult<SockAddr> name = sys.getsockname(fd.get());
    REQUIRE(name.ok());
    CHECK(name.value.to_string() == first_name.value.to_string());
}

TEMPLATE_TEST_CASE("listen without bind picks a free port on the wildcard address, reachable over loopback",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // ip(7): "When listen(2) is called on an unbound socket, the socket is
    // automatically bound to a random free port with the local address set
    // to INADDR_ANY." INADDR_ANY takes connections to any local address, so
    // a client reaches it through the loopback address and the chosen port.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Fd listener = stream_socket(sys, AF_INET);
    REQUIRE(sys.listen(listener.get(), 16).ok());
    const SysResult<SockAddr> name = sys.getsockname(listener.get());
    REQUIRE(name.ok());
    CHECK(name.value.family() == AF_INET);
    REQUIRE(name.value.port() != 0);
    CHECK(name.value.to_string() == "0.0.0.0:" + std::to_string(name.value.port()));

    const Fd client = stream_socket(sys, AF_INET);
    const VoidResult connecting = sys.connect(client.get(), fx.loopback(AF_INET).with_port(name.value.port()));
    REQUIRE((connecting.ok() || connecting.error == EINPROGRESS));
    CHECK(epoll_events_name(wait_for(sys, client.get(), EPOLLOUT, happens_within_ms)) == "EPOLLOUT");
    REQUIRE(wait_for(sys, listener.get(), EPOLLIN, happens_within_ms) == EPOLLIN);
    SockAddr peer;
    const FdResult accepted = sys.accept4(listener.get(), &peer, SOCK_NONBLOCK | SOCK_CLOEXEC);
    REQUIRE(accepted.ok());
    const Fd server(sys, accepted.value);
    const SysResult<SockAddr> server_name = sys.getsockname(server.get());
    REQUIRE(server_name.ok());
    // The accepted socket has the address the client used, not the wildcard.
    CHECK(server_name.value.to_string() == fx.loopback(AF_INET).with_port(name.value.port()).to_string());
}

// ===========================================================================
// Descriptor numbers

TEMPLATE_TEST_CASE("socket, epoll_create1 and accept4 return the lowest descriptor number not in use", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // POSIX (XSH 2.14, File Descriptor Allocation): a call that opens a
    // descriptor allocates the lowest-numbered one not open; Linux does so
    // for sockets, epoll instances and accepted connections. So a number
    // just closed comes back from the next call: code that keeps a closed
    // number around (in an epoll set's data, a table) meets a different
    // socket under it. Numbers are compared to one another, never to
    // constants: the process has others open.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    Fd first = stream_socket(sys, AF_INET);
    Fd second = stream_socket(sys, AF_INET);
    // first was the lowest free number, second the lowest after it: every
    // number below second is in use once first is taken again.
    CHECK(second.get() > first.get());
    const int freed = first.get();
    REQUIRE(first.close().ok());

    SECTION("socket") {
        const Fd again = stream_socket(sys, AF_INET);
        CHECK(again.get() == freed);
    }
    SECTION("epoll_create1") {
        const Fd epoll = make_epoll(sys);
        CHECK(epoll.get() == freed);
    }
    SECTION("accept4") {
        const Listener listener = listen_on(sys, fx.loopback(AF_INET));
        CHECK(listener.fd.get() == freed);
        const Fd client = stream_socket(sys, AF_INET);
        const VoidResult connecting = sys.connect(client.get(), listener.address);
        REQUIRE((connecting.ok() || connecting.error == EINPROGRESS));
        REQUIRE(wait_for(sys, listener.fd.get(), EPOLLIN, happens_within_ms) == EPOLLIN);

        const int freed_second = second.get();
        REQUIRE(second.close().ok());
        const FdResult accepted = sys.accept4(listener.fd.get(), nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        REQUIRE(accepted.ok());
        const Fd server(sys, accepted.value);
        CHECK(server.get() == freed_second);
    }
}

}  // namespace eagain::conformance
