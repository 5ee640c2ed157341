// Conformance: what poll(2) reports for a TCP socket, a listening socket, an
// epoll fd and a descriptor that is not open, and that a timeout waits. The
// bits are epoll's (POLLIN == EPOLLIN, ...), as tcp_poll computes them once
// for both. See fixture.h for how these run against every Sys.
#include "tests/conformance/fixture.h"
#include "tests/conformance/support.h"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/epoll.h>

#include <array>
#include <cstdint>
#include <string>

namespace eagain::conformance {
namespace {

// "POLLIN|POLLOUT", "POLLNVAL", "0": compared as names, so a failing check
// says which bits differ.
std::string poll_events_name(short revents) {
    auto bits = static_cast<std::uint16_t>(revents);
    std::string text;
    if ((bits & POLLNVAL) != 0) {
        text = "POLLNVAL";
        bits = static_cast<std::uint16_t>(bits & ~POLLNVAL);
    }
    if (bits != 0) {
        std::string rest = epoll_events_name(bits);  // "EPOLLIN|EPOLLOUT"
        for (std::size_t at = rest.find("EPOLL"); at != std::string::npos; at = rest.find("EPOLL", at + 4))
            rest.erase(at, 1);
        text += (text.empty() ? "" : "|") + rest;
    }
    return text.empty() ? "0" : text;
}

// One poll of one fd; what it reported, after checking the count agrees.
short poll_one(Sys& sys, int fd, short events, int timeout_ms) {
    std::array<pollfd, 1> set{{{fd, events, 0}}};
    const FdResult r = sys.poll(set, timeout_ms);
    REQUIRE(r.ok());
    REQUIRE(r.value == (set[0].revents != 0 ? 1 : 0));
    return set[0].revents;
}

}  // namespace

TEMPLATE_TEST_CASE("poll reports POLLOUT on a fresh connection and POLLIN only once data has arrived",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // poll(2) is level-triggered: the same readiness on every call while it
    // lasts, nothing while the receive queue is empty.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int server = pair.server.get();

    CHECK(poll_events_name(poll_one(sys, server, POLLIN | POLLOUT, 0)) == "POLLOUT");
    CHECK(poll_events_name(poll_one(sys, server, POLLIN, quiet_for_ms)) == "0");

    send_whole(sys, pair.client.get(), "ping");
    CHECK(poll_events_name(poll_one(sys, server, POLLIN, happens_within_ms)) == "POLLIN");
    CHECK(poll_events_name(poll_one(sys, server, POLLIN | POLLOUT, 0)) == "POLLIN|POLLOUT");
    CHECK(as_text(recv_available(sys, server)) == "ping");
    CHECK(poll_events_name(poll_one(sys, server, POLLIN, 0)) == "0");
}

TEMPLATE_TEST_CASE("poll reports POLLIN and POLLRDHUP after the peer's FIN, and POLLHUP once both directions are shut",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // tcp_poll: RCV_SHUTDOWN gives POLLIN|POLLRDHUP (a read returns 0);
    // SHUTDOWN_MASK (both directions) adds POLLHUP, reported unasked.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int server = pair.server.get();

    REQUIRE(sys.shutdown(pair.client.get(), SHUT_WR).ok());
    CHECK(poll_events_name(poll_one(sys, server, POLLRDHUP, happens_within_ms)) == "POLLRDHUP");
    CHECK(poll_events_name(poll_one(sys, server, POLLIN | POLLRDHUP, 0)) == "POLLIN|POLLRDHUP");

    REQUIRE(sys.shutdown(server, SHUT_WR).ok());
    CHECK(poll_events_name(poll_one(sys, server, POLLIN, 0)) == "POLLIN|POLLHUP");
    CHECK(poll_events_name(poll_one(sys, server, 0, 0)) == "POLLHUP");
}

TEMPLATE_TEST_CASE("poll reports POLLERR and POLLHUP unasked once the peer has reset the connection",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // An RST sets the socket's error and closes both directions: with no
    // events asked, poll still reports POLLERR|POLLHUP, and waits for them.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int server = pair.server.get();

    REQUIRE(sys.set_linger(pair.client.get(), true, 0).ok());
    REQUIRE(pair.client.close().ok());
    CHECK(poll_events_name(poll_one(sys, server, 0, happens_within_ms)) == "POLLERR|POLLHUP");
    const SysResult<int> error = sys.socket_error(server);
    REQUIRE(error.ok());
    CHECK(errno_name(error.value) == "ECONNRESET");
}

TEMPLATE_TEST_CASE("poll reports POLLNVAL for a descriptor that is not open and skips an entry whose fd is negative",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // poll(2): "fd ... not open" gives POLLNVAL in revents, asked or not; a
    // negative fd's events are ignored and its revents is 0. The count is
    // of entries with revents set.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    Fd socket = stream_socket(sys, AF_INET);
    const int closed = socket.get();
    REQUIRE(socket.close().ok());

    std::array<pollfd, 2> set{{{closed, POLLIN, 0}, {-1, POLLIN, 0x7fff}}};
    const FdResult r = sys.poll(set, 0);
    REQUIRE(r.ok());
    CHECK(r.value == 1);
    CHECK(poll_events_name(set[0].revents) == "POLLNVAL");
    CHECK(poll_events_name(set[1].revents) == "0");
}

TEMPLATE_TEST_CASE("poll reports POLLIN on a listening socket with a queued connection and on an epoll fd with an event",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // A listener is readable while accept(2) would not block; an epoll fd
    // is readable while epoll_wait would report something.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Listener listener = listen_on(sys, fx.loopback(AF_INET));
    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), listener.fd.get(), EPOLLIN);
    CHECK(poll_events_name(poll_one(sys, listener.fd.get(), POLLIN, 0)) == "0");
    CHECK(poll_events_name(poll_one(sys, epoll.get(), POLLIN, 0)) == "0");

    const Fd client = stream_socket(sys, AF_INET);
    const VoidResult connected = sys.connect(client.get(), listener.address);
    REQUIRE((connected.ok() || connected.error == EINPROGRESS));
    CHECK(poll_events_name(poll_one(sys, listener.fd.get(), POLLIN, happens_within_ms)) == "POLLIN");
    CHECK(poll_events_name(poll_one(sys, epoll.get(), POLLIN, 0)) == "POLLIN");

    const FdResult accepted = sys.accept4(listener.fd.get(), nullptr, SOCK_NONBLOCK);
    REQUIRE(accepted.ok());
    const Fd server(sys, accepted.value);
    CHECK(poll_events_name(poll_one(sys, listener.fd.get(), POLLIN, 0)) == "0");
}

}  // namespace eagain::conformance
