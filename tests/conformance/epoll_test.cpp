// Conformance: when epoll reports readiness (level-triggered,
// edge-triggered, one-shot). See fixture.h for how these run against every
// Sys implementation.
#include "tests/conformance/fixture.h"
#include "tests/conformance/support.h"

#include <catch2/catch.hpp>

#include <sys/epoll.h>

#include <array>
#include <cstdint>

namespace eagain::conformance {

TEMPLATE_TEST_CASE("level-triggered epoll reports EPOLLIN on every wait while data remains unread", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // epoll(7): level-triggered (the default) epoll behaves like poll(2):
    // the fd is reported whenever it is ready, on every epoll_wait, until
    // the data has been read.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int server = pair.server.get();
    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), server, EPOLLIN);

    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, 0)) == "0");
    send_whole(sys, pair.client.get(), "0123456789");
    REQUIRE(wait_for_unread(sys, server, 10, happens_within_ms) == 10);

    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, 0)) == "EPOLLIN");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, 0)) == "EPOLLIN");

    std::array<std::uint8_t, 4> part{};
    const SizeResult got = sys.recv(server, part, 0);
    REQUIRE(got.ok());
    REQUIRE(got.value == 4);
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, 0)) == "EPOLLIN");

    CHECK(as_text(recv_available(sys, server)) == "456789");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, quiet_for_ms)) == "0");
}

TEMPLATE_TEST_CASE("edge-triggered epoll reports each arrival once, even while older data sits unread", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // epoll(7): with EPOLLET, epoll_wait reports the fd when new data
    // arrives, and not again for the same data however long it sits unread
    // (reading part of it does not re-arm). Linux reports every arrival,
    // not only the empty -> non-empty transition: the man page's advice to
    // read until EAGAIN is about not waiting forever, not a guarantee of
    // silence while data remains.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int server = pair.server.get();
    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), server, EPOLLIN | EPOLLET);

    send_whole(sys, pair.client.get(), "first");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, happens_within_ms)) == "EPOLLIN");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, quiet_for_ms)) == "0");

    std::array<std::uint8_t, 2> part{};
    const SizeResult got = sys.recv(server, part, 0);
    REQUIRE(got.ok());
    REQUIRE(got.value == 2);
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, quiet_for_ms)) == "0");

    // "rst" is still unread when "second" arrives.
    send_whole(sys, pair.client.get(), "second");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, happens_within_ms)) == "EPOLLIN");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, quiet_for_ms)) == "0");

    REQUIRE(wait_for_unread(sys, server, 9, happens_within_ms) == 9);
    CHECK(as_text(recv_available(sys, server)) == "rstsecond");
}

TEMPLATE_TEST_CASE("EPOLLONESHOT reports once, stays silent until re-armed with EPOLL_CTL_MOD, then reports again",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // epoll_ctl(2): EPOLLONESHOT "after an event notified for the file
    // descriptor is pulled out with epoll_wait(2), the associated file
    // descriptor is internally disabled and no other events will be
    // reported ... The user must call epoll_ctl() with EPOLL_CTL_MOD to rearm
    // the file descriptor with a new event mask." Re-arming checks readiness
    // at once: data already there is reported without a new arrival.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int server = pair.server.get();
    const Fd epoll = make_epoll(sys);
    const EpollEvent one_shot_in{EPOLLIN | EPOLLONESHOT, static_cast<std::uint64_t>(server)};
    REQUIRE(sys.epoll_ctl(epoll.get(), EPOLL_CTL_ADD, server, one_shot_in).ok());

    send_whole(sys, pair.client.get(), "data");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, happens_within_ms)) == "EPOLLIN");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, quiet_for_ms)) == "0");

    // Not even a new arrival wakes a disarmed fd.
    send_whole(sys, pair.client.get(), "more");
    REQUIRE(wait_for_unread(sys, server, 8, happens_within_ms) == 8);
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, quiet_for_ms)) == "0");

    REQUIRE(sys.epoll_ctl(epoll.get(), EPOLL_CTL_MOD, server, one_shot_in).ok());
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, 0)) == "EPOLLIN");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, quiet_for_ms)) == "0");

    CHECK(as_text(recv_available(sys, server)) == "datamore");
}

TEMPLATE_TEST_CASE("a connected socket with room in its send buffer reports EPOLLOUT, level-triggered", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // epoll_ctl(2): EPOLLOUT "The associated file is available for write(2)
    // operations." A fresh connection's send buffer is empty, so it is
    // reported on every wait, and keeps being reported after a small send.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int client = pair.client.get();
    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), client, EPOLLIN | EPOLLOUT | EPOLLRDHUP);

    CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLOUT");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLOUT");
    send_whole(sys, client, "hello");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLOUT");
    REQUIRE(wait_for_unread(sys, pair.server.get(), 5, happens_within_ms) == 5);
    CHECK(as_text(recv_available(sys, pair.server.get())) == "hello");
}

}  // namespace eagain::conformance
