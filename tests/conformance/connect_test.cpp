// Conformance: setting up connections (connect, accept4, SO_ERROR, the
// accept queue). See fixture.h for how these run against every Sys
// implementation.
#include "tests/conformance/fixture.h"
#include "tests/conformance/support.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/epoll.h>

#include <array>
#include <cerrno>
#include <cstdint>

namespace eagain::conformance {

// ===========================================================================
// connect

TEMPLATE_TEST_CASE("non-blocking connect gives EINPROGRESS, then EPOLLOUT with SO_ERROR 0", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // connect(2): "The socket is nonblocking and the connection cannot be
    // completed immediately ... EINPROGRESS. It is possible to select(2) or
    // poll(2) for completion by selecting the socket for writing ... use
    // getsockopt(2) to read the SO_ERROR option". POSIX would also allow an
    // immediate success; Linux TCP never gives one, loopback included: the
    // handshake completes after connect() has returned, because the SYN-ACK
    // waits on the socket lock connect() holds. So EINPROGRESS is pinned,
    // and a simulated handshake must take time too.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Listener listener = listen_on(sys, fx.loopback(AF_INET));
    const Fd client = stream_socket(sys, AF_INET);

    const VoidResult connecting = sys.connect(client.get(), listener.address);
    REQUIRE_FALSE(connecting.ok());
    REQUIRE(errno_name(connecting.error) == "EINPROGRESS");

    const std::uint32_t events = wait_for(sys, client.get(), EPOLLOUT, happens_within_ms);
    CHECK(epoll_events_name(events) == "EPOLLOUT");
    const SysResult<int> pending = sys.socket_error(client.get());
    REQUIRE(pending.ok());
    CHECK(errno_name(pending.value) == "0");

    SECTION("the connection is established: addresses agree on both ends") {
        REQUIRE(wait_for(sys, listener.fd.get(), EPOLLIN, happens_within_ms) == EPOLLIN);
        SockAddr peer_of_server;
        const FdResult accepted = sys.accept4(listener.fd.get(), &peer_of_server, SOCK_NONBLOCK | SOCK_CLOEXEC);
        REQUIRE(accepted.ok());
        const Fd server(sys, accepted.value);

        const SysResult<SockAddr> client_name = sys.getsockname(client.get());
        const SysResult<SockAddr> client_peer = sys.getpeername(client.get());
        const SysResult<SockAddr> server_name = sys.getsockname(server.get());
        REQUIRE(client_name.ok());
        REQUIRE(client_peer.ok());
        REQUIRE(server_name.ok());
        CHECK(peer_of_server.to_string() == client_name.value.to_string());
        CHECK(client_peer.value.to_string() == listener.address.to_string());
        CHECK(server_name.value.to_string() == listener.address.to_string());
    }
    SECTION("connecting again reports the completed connect once, then gives EISCONN") {
        // connect(2): EISCONN "The socket is already connected." Linux only
        // says so from the third call on: the first connect() after the
        // handshake completed returns 0, the result of the pending connect
        // (the portable way to learn it without SO_ERROR); the socket counts
        // as connected only from then on.
        const VoidResult completion = sys.connect(client.get(), listener.address);
        INFO("second connect: " << errno_name(completion.error));
        CHECK(completion.ok());
        const VoidResult again = sys.connect(client.get(), listener.address);
        REQUIRE_FALSE(again.ok());
        CHECK(errno_name(again.error) == "EISCONN");
    }
}

TEMPLATE_TEST_CASE("connect to a port nobody listens on fails with ECONNREFUSED through SO_ERROR, read once",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // connect(2): ECONNREFUSED "A connect() on a stream socket found no one
    // listening on the remote address"; for a non-blocking connect it comes
    // through SO_ERROR once the socket polls writable. socket(7): SO_ERROR
    // "Get and clear the pending socket error": a second read gives 0.
    // The port is held by a socket that is bound but not listening, so no
    // other process can start listening on it while the test runs.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Fd bound_only = stream_socket(sys, AF_INET);
    REQUIRE(sys.bind(bound_only.get(), fx.loopback(AF_INET)).ok());
    const SysResult<SockAddr> closed_port = sys.getsockname(bound_only.get());
    REQUIRE(closed_port.ok());
    REQUIRE(closed_port.value.port() != 0);

    const Fd client = stream_socket(sys, AF_INET);
    const VoidResult connecting = sys.connect(client.get(), closed_port.value);
    REQUIRE_FALSE(connecting.ok());
    REQUIRE(errno_name(connecting.error) == "EINPROGRESS");

    // Linux reports the refused socket as writable, in error, and hung up
    // (the socket is closed in both directions).
    const std::uint32_t events = wait_for(sys, client.get(), EPOLLOUT, happens_within_ms);
    CHECK(epoll_events_name(events) == epoll_events_name(EPOLLOUT | EPOLLERR | EPOLLHUP));

    const SysResult<int> first = sys.socket_error(client.get());
    REQUIRE(first.ok());
    CHECK(errno_name(first.value) == "ECONNREFUSED");
    const SysResult<int> second = sys.socket_error(client.get());
    REQUIRE(second.ok());
    CHECK(errno_name(second.value) == "0");
}

TEMPLATE_TEST_CASE("after a refused connect the next call reports it once, connect() starts over only the time after",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // The refusal is a pending error (SO_ERROR) that the first call to meet
    // it reports and clears: send, recv, getsockopt(SO_ERROR) or connect.
    // After it the socket is closed: recv returns 0 and send gives EPIPE, as
    // after a reset. connect() reports the outcome of the attempt before it
    // starts a new one, as it reports a completed connect with 0: the
    // pending ECONNREFUSED, or, if something else took it, ECONNABORTED
    // (Linux's "the attempt failed and there is no error left to say why";
    // connect(2) does not list it). Only the connect() after that starts a
    // new attempt (EINPROGRESS), here refused again.
    // The port is held by a socket that is bound but not listening, as in
    // the test above.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Fd bound_only = stream_socket(sys, AF_INET);
    REQUIRE(sys.bind(bound_only.get(), fx.loopback(AF_INET)).ok());
    const SysResult<SockAddr> closed_port = sys.getsockname(bound_only.get());
    REQUIRE(closed_port.ok());
    REQUIRE(closed_port.value.port() != 0);

    const Fd client = stream_socket(sys, AF_INET);
    const auto connect_once = [&] { return sys.connect(client.get(), closed_port.value); };
    const auto wait_refused = [&] {
        REQUIRE(epoll_events_name(wait_for(sys, client.get(), EPOLLOUT, happens_within_ms)) ==
                epoll_events_name(EPOLLOUT | EPOLLERR | EPOLLHUP));
    };
    const VoidResult connecting = connect_once();
    REQUIRE_FALSE(connecting.ok());
    REQUIRE(errno_name(connecting.error) == "EINPROGRESS");
    wait_refused();
    std::array<std::uint8_t, 4> buffer{};

    SECTION("connect first: ECONNREFUSED") {
        const VoidResult again = connect_once();
        REQUIRE_FALSE(again.ok());
        CHECK(errno_name(again.error) == "ECONNREFUSED");
        const SysResult<int> pending = sys.socket_error(client.get());
        REQUIRE(pending.ok());
        CHECK(errno_name(pending.value) == "0");
    }
    SECTION("SO_ERROR first, then connect: ECONNABORTED") {
        const SysResult<int> pending = sys.socket_error(client.get());
        REQUIRE(pending.ok());
        CHECK(errno_name(pending.value) == "ECONNREFUSED");
        const VoidResult again = connect_once();
        REQUIRE_FALSE(again.ok());
        CHECK(errno_name(again.error) == "ECONNABORTED");
    }
    SECTION("send first: ECONNREFUSED, then EPIPE; recv 0") {
        const SizeResult first = sys.send(client.get(), buffer, MSG_NOSIGNAL);
        REQUIRE_FALSE(first.ok());
        CHECK(errno_name(first.error) == "ECONNREFUSED");
        const SizeResult second = sys.send(client.get(), buffer, MSG_NOSIGNAL);
        REQUIRE_FALSE(second.ok());
        CHECK(errno_name(second.error) == "EPIPE");
        const SizeResult received = sys.recv(client.get(), buffer, 0);
        REQUIRE(received.ok());
        CHECK(received.value == 0);
        const VoidResult again = connect_once();
        REQUIRE_FALSE(again.ok());
        CHECK(errno_name(again.error) == "ECONNABORTED");
    }
    SECTION("recv first: ECONNREFUSED, then 0") {
        const SizeResult first = sys.recv(client.get(), buffer, 0);
        REQUIRE_FALSE(first.ok());
        CHECK(errno_name(first.error) == "ECONNREFUSED");
        const SizeResult second = sys.recv(client.get(), buffer, 0);
        REQUIRE(second.ok());
        CHECK(second.value == 0);
        const VoidResult again = connect_once();
        REQUIRE_FALSE(again.ok());
        CHECK(errno_name(again.error) == "ECONNABORTED");
    }

    // The attempt has been reported; the next connect() is a new one.
    const VoidResult retry = connect_once();
    REQUIRE_FALSE(retry.ok());
    CHECK(errno_name(retry.error) == "EINPROGRESS");
    wait_refused();
    const VoidResult retry_outcome = connect_once();
    REQUIRE_FALSE(retry_outcome.ok());
    CHECK(errno_name(retry_outcome.error) == "ECONNREFUSED");
}

TEMPLATE_TEST_CASE("a connect to a full accept queue stays in progress (EALREADY, EAGAIN) until the server accepts",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // listen(2): "If a connection request arrives when the queue is full,
    // the client may receive an error with an indication of ECONNREFUSED
    // or, if the underlying protocol supports retransmission, the request
    // may be ignored so that a later reattempt at connection succeeds."
    // Linux TCP ignores the SYN (no RST), and its accept queue holds
    // backlog + 1 connections: with listen(fd, 1) two connects complete and
    // the third stays in SYN-SENT, with nothing for epoll to report.
    // connect(2): EALREADY "The socket is nonblocking and a previous
    // connection attempt has not yet been completed." Meanwhile send and
    // recv give EAGAIN (they would wait for the connection, and the socket
    // is non-blocking), not ENOTCONN; getpeername gives ENOTCONN. The client
    // retransmits its SYN (after 1 s on Linux), so once the server accepts
    // a connection and makes room, the third connect completes.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Listener listener = listen_on(sys, fx.loopback(AF_INET), 0, /*backlog=*/1);
    const auto start_connect = [&] {
        Fd client = stream_socket(sys, AF_INET);
        const VoidResult connecting = sys.connect(client.get(), listener.address);
        REQUIRE_FALSE(connecting.ok());
        REQUIRE(errno_name(connecting.error) == "EINPROGRESS");
        return client;
    };
    const Fd first = start_connect();
    CHECK(epoll_events_name(wait_for(sys, first.get(), EPOLLOUT, happens_within_ms)) == "EPOLLOUT");
    const Fd second = start_connect();
    CHECK(epoll_events_name(wait_for(sys, second.get(), EPOLLOUT, happens_within_ms)) == "EPOLLOUT");
    const Fd third = start_connect();
    CHECK(epoll_events_name(wait_for(sys, third.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, quiet_for_ms)) == "0");

    const VoidResult again = sys.connect(third.get(), listener.address);
    REQUIRE_FALSE(again.ok());
    CHECK(errno_name(again.error) == "EALREADY");
    std::array<std::uint8_t, 4> buffer{};
    const SizeResult sent = sys.send(third.get(), buffer, MSG_NOSIGNAL);
    REQUIRE_FALSE(sent.ok());
    CHECK(errno_name(sent.error) == "EAGAIN");
    const SizeResult received = sys.recv(third.get(), buffer, 0);
    REQUIRE_FALSE(received.ok());
    CHECK(errno_name(received.error) == "EAGAIN");
    const SysResult<SockAddr> peer = sys.getpeername(third.get());
    REQUIRE_FALSE(peer.ok());
    CHECK(errno_name(peer.error) == "ENOTCONN");
    const SysResult<int> pending = sys.socket_error(third.get());
    REQUIRE(pending.ok());
    CHECK(errno_name(pending.value) == "0");

    const FdResult accepted = sys.accept4(listener.fd.get(), nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    REQUIRE(accepted.ok());
    const Fd server(sys, accepted.value);
    CHECK(epoll_events_name(wait_for(sys, third.get(), EPOLLOUT, happens_within_ms)) == "EPOLLOUT");
    const SysResult<int> outcome = sys.socket_error(third.get());
    REQUIRE(outcome.ok());
    CHECK(errno_name(outcome.value) == "0");
}

// ===========================================================================
// accept4

TEMPLATE_TEST_CASE("accept4 on an empty accept queue gives EAGAIN", "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // accept(2): EAGAIN or EWOULDBLOCK "The socket is marked nonblocking and
    // no connections are present to be accepted." Linux returns EAGAIN
    // (the same number as EWOULDBLOCK).
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Listener listener = listen_on(sys, fx.loopback(AF_INET));

    SECTION("before any connection") {
        const FdResult accepted = sys.accept4(listener.fd.get(), nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        REQUIRE_FALSE(accepted.ok());
        CHECK(errno_name(accepted.error) == "EAGAIN");
        // Nothing to accept means the listener does not poll readable.
        CHECK(epoll_events_name(wait_for(sys, listener.fd.get(), EPOLLIN, 0)) == "0");
    }
    SECTION("after the only queued connection was accepted") {
        const Fd client = stream_socket(sys, AF_INET);
        const VoidResult connecting = sys.connect(client.get(), listener.address);
        REQUIRE((connecting.ok() || connecting.error == EINPROGRESS));
        REQUIRE(wait_for(sys, listener.fd.get(), EPOLLIN, happens_within_ms) == EPOLLIN);
        const FdResult first = sys.accept4(listener.fd.get(), nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        REQUIRE(first.ok());
        const Fd server(sys, first.value);

        const FdResult second = sys.accept4(listener.fd.get(), nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        REQUIRE_FALSE(second.ok());
        CHECK(errno_name(second.error) == "EAGAIN");
    }
}

TEMPLATE_TEST_CASE("accept4 does not pass the listener's O_NONBLOCK on, SOCK_NONBLOCK sets it", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // accept(2): "On Linux, the new socket returned by accept() does not
    // inherit file status flags such as O_NONBLOCK and O_ASYNC from the
    // listening socket." accept4(2): SOCK_NONBLOCK "Set the O_NONBLOCK file
    // status flag on the open file description". Code that accepts from a
    // non-blocking listener without it gets a blocking socket. (The socket
    // accepted without it is only inspected and closed here, never waited
    // on.) fcntl(2) F_GETFL of a socket also says O_RDWR.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Listener listener = listen_on(sys, fx.loopback(AF_INET));
    const FdResult listener_flags = sys.fcntl(listener.fd.get(), F_GETFL, 0);
    REQUIRE(listener_flags.ok());
    REQUIRE((listener_flags.value & O_NONBLOCK) != 0);

    const auto accept_one = [&](int flags) {
        const Fd client = stream_socket(sys, AF_INET);
        const VoidResult connecting = sys.connect(client.get(), listener.address);
        REQUIRE((connecting.ok() || connecting.error == EINPROGRESS));
        REQUIRE(wait_for(sys, listener.fd.get(), EPOLLIN, happens_within_ms) == EPOLLIN);
        const FdResult accepted = sys.accept4(listener.fd.get(), nullptr, flags);
        REQUIRE(accepted.ok());
        const Fd server(sys, accepted.value);
        const FdResult server_flags = sys.fcntl(server.get(), F_GETFL, 0);
        REQUIRE(server_flags.ok());
        CHECK((server_flags.value & O_ACCMODE) == O_RDWR);
        return server_flags.value;
    };
    CHECK((accept_one(SOCK_CLOEXEC) & O_NONBLOCK) == 0);
    CHECK((accept_one(SOCK_NONBLOCK | SOCK_CLOEXEC) & O_NONBLOCK) != 0);
}

TEMPLATE_TEST_CASE("closing a listener resets the connections still in its accept queue", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // A connection in the accept queue is established as far as the client
    // can tell: connect() completed. Closing the listener makes Linux abort
    // those connections with an RST (inet_csk_listen_stop()), so the
    // client sees a reset as if the server had closed with SO_LINGER 0:
    // EPOLLERR|EPOLLHUP with EPOLLIN|EPOLLRDHUP, recv ECONNRESET, then send
    // EPIPE.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    Listener listener = listen_on(sys, fx.loopback(AF_INET));
    const Fd client = stream_socket(sys, AF_INET);
    const VoidResult connecting = sys.connect(client.get(), listener.address);
    REQUIRE((connecting.ok() || connecting.error == EINPROGRESS));
    REQUIRE(wait_for(sys, client.get(), EPOLLOUT, happens_within_ms) == EPOLLOUT);
    REQUIRE(wait_for(sys, listener.fd.get(), EPOLLIN, happens_within_ms) == EPOLLIN);

    REQUIRE(listener.fd.close().ok());
    REQUIRE((wait_for(sys, client.get(), EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
    CHECK(epoll_events_name(wait_for(sys, client.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, 0)) ==
          epoll_events_name(EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP));
    std::array<std::uint8_t, 4> buffer{};
    const SizeResult received = sys.recv(client.get(), buffer, 0);
    REQUIRE_FALSE(received.ok());
    CHECK(errno_name(received.error) == "ECONNRESET");
    const SizeResult sent = sys.send(client.get(), buffer, MSG_NOSIGNAL);
    REQUIRE_FALSE(sent.ok());
    CHECK(errno_name(sent.error) == "EPIPE");
}

// ===========================================================================
// IPv6

TEMPLATE_TEST_CASE("a connection over IPv6 loopback carries data both ways", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // ipv6(7): AF_INET6 stream sockets behave as AF_INET ones; ::1 is the
    // loopback address. Hosts without IPv6 (socket() gives EAFNOSUPPORT) or
    // without ::1 (bind() gives EADDRNOTAVAIL) skip this test with a warning;
    // that is decided from those results, not assumed.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    {
        const FdResult probe = sys.socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (!probe.ok() && probe.error == EAFNOSUPPORT) {
            WARN("skipped: no IPv6 here (socket(AF_INET6) gave EAFNOSUPPORT)");
            return;
        }
        REQUIRE(probe.ok());
        const Fd probe_fd(sys, probe.value);
        const VoidResult bound = sys.bind(probe_fd.get(), fx.loopback(AF_INET6));
        if (!bound.ok() && bound.error == EADDRNOTAVAIL) {
            WARN("skipped: ::1 is not configured here (bind gave EADDRNOTAVAIL)");
            return;
        }
        REQUIRE(bound.ok());
    }

    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET6));
    const SysResult<SockAddr> client_peer = sys.getpeername(pair.client.get());
    REQUIRE(client_peer.ok());
    CHECK(client_peer.value.family() == AF_INET6);

    send_whole(sys, pair.client.get(), "ping");
    REQUIRE(wait_for_unread(sys, pair.server.get(), 4, happens_within_ms) == 4);
    CHECK(as_text(recv_available(sys, pair.server.get())) == "ping");
    send_whole(sys, pair.server.get(), "pong");
    REQUIRE(wait_for_unread(sys, pair.client.get(), 4, happens_within_ms) == 4);
    CHECK(as_text(recv_available(sys, pair.client.get())) == "pong");
}

}  // namespace eagain::conformance
