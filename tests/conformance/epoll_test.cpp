// Conformance: when epoll reports readiness (level-triggered,
// edge-triggered, one-shot, EPOLL_CTL_MOD), which events it reports unasked,
// and what the interest list accepts. See fixture.h for how these run
// against every Sys implementation.
#include "tests/conformance/fixture.h"
#include "tests/conformance/support.h"

#include <catch2/catch.hpp>

#include <sys/epoll.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <vector>

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

TEMPLATE_TEST_CASE("edge-triggered EPOLLOUT: one edge when added, then one after EAGAIN once the reader makes room",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // epoll(7): with EPOLLET an fd is reported when it becomes ready. For
    // EPOLLOUT that is when a send buffer that had no room (send gave EAGAIN)
    // gets room again; adding a writable fd reports it once too. A send that
    // succeeds changes nothing (writable before, writable after): no edge.
    // Data still in flight when send said EAGAIN may free room and bring an
    // edge before the reader reads, so the writer fills again after each
    // edge until none comes. The buffers are small, and no count depends on
    // their sizes: the loops only have bounds.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(
        sys, fx.loopback(AF_INET), PairOptions{.client_send_buffer_bytes = 4096, .server_receive_buffer_bytes = 4096});
    const int writer = pair.client.get();
    const int reader = pair.server.get();
    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), writer, EPOLLOUT | EPOLLET);

    CHECK(epoll_events_name(wait_once(sys, epoll.get(), writer, 0)) == "EPOLLOUT");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), writer, quiet_for_ms)) == "0");
    send_whole(sys, writer, "x");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), writer, quiet_for_ms)) == "0");

    // Bounds against a runaway, far above what small buffers take.
    constexpr int max_sends_per_fill = 1024;
    constexpr int max_settle_rounds = 32;
    constexpr int max_drain_rounds = 4096;
    std::vector<std::uint8_t> chunk(64 * 1024);
    std::size_t sent_bytes = 1;  // the "x"
    const auto fill_until_eagain = [&] {
        for (int sends = 0; sends < max_sends_per_fill; ++sends) {
            const SizeResult sent = sys.send(writer, chunk, MSG_NOSIGNAL);
            if (!sent.ok()) {
                REQUIRE(errno_name(sent.error) == "EAGAIN");
                return;
            }
            sent_bytes += sent.value;
        }
        FAIL("send never gave EAGAIN in " << max_sends_per_fill << " sends");
    };

    fill_until_eagain();
    bool writer_blocked = false;
    for (int settle = 0; settle < max_settle_rounds && !writer_blocked; ++settle) {
        const std::uint32_t events = wait_once(sys, epoll.get(), writer, quiet_for_ms);
        if (events == 0) {
            writer_blocked = true;
        } else {
            CHECK(epoll_events_name(events) == "EPOLLOUT");
            fill_until_eagain();
        }
    }
    REQUIRE(writer_blocked);

    std::size_t received_bytes = 0;
    bool reader_idle = false;
    for (int drain = 0; drain < max_drain_rounds && !reader_idle; ++drain) {
        received_bytes += recv_available(sys, reader).size();
        reader_idle = wait_for(sys, reader, EPOLLIN, quiet_for_ms) == 0;
    }
    REQUIRE(reader_idle);
    CHECK(received_bytes == sent_bytes);

    // The room the reader made is reported once, however it came back.
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), writer, happens_within_ms)) == "EPOLLOUT");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), writer, quiet_for_ms)) == "0");
}

TEMPLATE_TEST_CASE("EPOLL_CTL_MOD checks readiness at once: it re-arms EPOLLONESHOT, renews an edge, adds a level",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // epoll_ctl(2): EPOLLONESHOT disables the fd after one report, EPOLLOUT
    // as much as EPOLLIN, until "epoll_ctl() with EPOLL_CTL_MOD" re-arms it.
    // Linux's EPOLL_CTL_MOD, like EPOLL_CTL_ADD, polls the fd under the new
    // mask straight away and queues it if it is ready, so an fd that is
    // ready when modified is reported on the next epoll_wait: a one-shot fd
    // re-armed, an edge-triggered fd that is still ready (a new edge without
    // new I/O), a level-triggered fd given a new event it already has.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int client = pair.client.get();
    const Fd epoll = make_epoll(sys);
    const auto modify = [&](std::uint32_t events) {
        const VoidResult modified =
            sys.epoll_ctl(epoll.get(), EPOLL_CTL_MOD, client, EpollEvent{events, static_cast<std::uint64_t>(client)});
        INFO("epoll_ctl(MOD): " << errno_name(modified.error));
        REQUIRE(modified.ok());
    };

    SECTION("EPOLLONESHOT with EPOLLOUT") {
        add_interest(sys, epoll.get(), client, EPOLLOUT | EPOLLONESHOT);
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLOUT");
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, quiet_for_ms)) == "0");
        modify(EPOLLOUT | EPOLLONESHOT);
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLOUT");
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, quiet_for_ms)) == "0");
    }
    SECTION("EPOLLET with EPOLLOUT") {
        add_interest(sys, epoll.get(), client, EPOLLOUT | EPOLLET);
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLOUT");
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, quiet_for_ms)) == "0");
        modify(EPOLLOUT | EPOLLET);
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLOUT");
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, quiet_for_ms)) == "0");
    }
    SECTION("level-triggered, EPOLLOUT added to EPOLLIN and taken away") {
        add_interest(sys, epoll.get(), client, EPOLLIN);
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, quiet_for_ms)) == "0");
        modify(EPOLLIN | EPOLLOUT);
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLOUT");
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLOUT");
        modify(EPOLLIN);
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, quiet_for_ms)) == "0");
    }
}

// ===========================================================================
// Which events are reported

TEMPLATE_TEST_CASE("a new or bound socket reports EPOLLOUT|EPOLLHUP, a listener only EPOLLIN, when one is queued",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // A TCP socket in state CLOSE (new, or only bound) counts as hung up:
    // Linux's tcp_poll reports EPOLLHUP for it, and EPOLLOUT (a send would
    // not block: it fails at once with EPIPE), but not EPOLLIN. EPOLLHUP
    // comes whether asked for or not (epoll_ctl(2): "epoll_wait(2) will
    // always wait for this event; it is not necessary to set it in events").
    // So an event loop that registers a socket before connect() sees a
    // hang-up. A listening socket is never writable nor hung up: it reports
    // EPOLLIN while a connection waits to be accepted, otherwise nothing.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Fd fd = stream_socket(sys, AF_INET);
    const std::uint32_t all = EPOLLIN | EPOLLOUT | EPOLLRDHUP;

    SECTION("a new socket") {
        CHECK(epoll_events_name(wait_for(sys, fd.get(), all, 0)) == "EPOLLOUT|EPOLLHUP");
        CHECK(epoll_events_name(wait_for(sys, fd.get(), EPOLLIN, 0)) == "EPOLLHUP");
    }
    SECTION("a bound socket") {
        REQUIRE(sys.bind(fd.get(), fx.loopback(AF_INET)).ok());
        CHECK(epoll_events_name(wait_for(sys, fd.get(), all, 0)) == "EPOLLOUT|EPOLLHUP");
        CHECK(epoll_events_name(wait_for(sys, fd.get(), EPOLLIN, 0)) == "EPOLLHUP");
    }
    SECTION("a listening socket") {
        const Listener listener = listen_on(sys, fx.loopback(AF_INET));
        CHECK(epoll_events_name(wait_for(sys, listener.fd.get(), all, 0)) == "0");
        const VoidResult connecting = sys.connect(fd.get(), listener.address);
        REQUIRE((connecting.ok() || connecting.error == EINPROGRESS));
        CHECK(epoll_events_name(wait_for(sys, listener.fd.get(), all, happens_within_ms)) == "EPOLLIN");
        const FdResult accepted = sys.accept4(listener.fd.get(), nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        REQUIRE(accepted.ok());
        const Fd server(sys, accepted.value);
        CHECK(epoll_events_name(wait_for(sys, listener.fd.get(), all, 0)) == "0");
    }
}

TEMPLATE_TEST_CASE("EPOLLERR and EPOLLHUP are reported unasked, EPOLLIN and EPOLLRDHUP only when asked for",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // epoll_ctl(2): EPOLLERR and EPOLLHUP: "epoll_wait(2) will always wait
    // for this event; it is not necessary to set it in events", so an fd
    // registered with no events at all still reports them. Every other
    // event is reported only if asked for: the peer's FIN alone (EPOLLIN,
    // EPOLLRDHUP) wakes nobody who asked for neither, and EPOLLIN alone does
    // not bring EPOLLRDHUP along. With EPOLLET the unasked events are edges
    // too: reported once.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int client = pair.client.get();
    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), client, 0);
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "0");

    SECTION("the peer's FIN") {
        REQUIRE(sys.shutdown(pair.server.get(), SHUT_WR).ok());
        REQUIRE((wait_for(sys, client, EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "0");
        CHECK(epoll_events_name(wait_for(sys, client, EPOLLIN, 0)) == "EPOLLIN");
        CHECK(epoll_events_name(wait_for(sys, client, EPOLLOUT, 0)) == "EPOLLOUT");

        // Shutting our side too closes both directions: a hang-up.
        REQUIRE(sys.shutdown(client, SHUT_WR).ok());
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLHUP");
        CHECK(epoll_events_name(wait_for(sys, client, EPOLLIN, 0)) == "EPOLLIN|EPOLLHUP");
    }
    SECTION("the peer's RST") {
        REQUIRE(sys.set_linger(pair.server.get(), true, 0).ok());
        REQUIRE(pair.server.close().ok());
        REQUIRE((wait_for(sys, client, EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLERR|EPOLLHUP");
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLERR|EPOLLHUP");

        const VoidResult modified = sys.epoll_ctl(epoll.get(), EPOLL_CTL_MOD, client,
                                                  EpollEvent{EPOLLIN | EPOLLET, static_cast<std::uint64_t>(client)});
        REQUIRE(modified.ok());
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLIN|EPOLLERR|EPOLLHUP");
        CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, quiet_for_ms)) == "0");
    }
}

// ===========================================================================
// The interest list

TEMPLATE_TEST_CASE("epoll_ctl gives EEXIST, ENOENT, EBADF and EINVAL for what the interest list cannot do",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // epoll_ctl(2) ERRORS: EEXIST "op was EPOLL_CTL_ADD, and the supplied
    // file descriptor fd is already registered with this epoll instance."
    // ENOENT "op was EPOLL_CTL_MOD or EPOLL_CTL_DEL, and fd is not registered
    // with this epoll instance." EBADF "epfd or fd is not a valid file
    // descriptor." EINVAL "epfd is not an epoll file descriptor, or fd is the
    // same as epfd, or the requested operation op is not supported by this
    // interface." epoll_wait(2): EINVAL "epfd is not an epoll file
    // descriptor". After EPOLL_CTL_DEL nothing is reported for the fd.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Fd epoll = make_epoll(sys);
    const Fd unconnected = stream_socket(sys, AF_INET);  // reports EPOLLOUT|EPOLLHUP
    const int ep = epoll.get();
    const int fd = unconnected.get();
    const auto ctl = [&](int epoll_fd, int op, int target) {
        return sys.epoll_ctl(epoll_fd, op, target, EpollEvent{EPOLLOUT, static_cast<std::uint64_t>(target)});
    };
    const auto error_of = [](VoidResult result) { return errno_name(result.error); };

    SECTION("a closed descriptor: EBADF, as fd or as epfd") {
        Fd closed = stream_socket(sys, AF_INET);
        const int number = closed.get();
        REQUIRE(closed.close().ok());
        // Nothing opens a descriptor until these are done, so the number
        // stays closed.
        CHECK(error_of(ctl(ep, EPOLL_CTL_ADD, number)) == "EBADF");
        CHECK(error_of(ctl(ep, EPOLL_CTL_MOD, number)) == "EBADF");
        CHECK(error_of(ctl(ep, EPOLL_CTL_DEL, number)) == "EBADF");
        CHECK(error_of(ctl(number, EPOLL_CTL_ADD, fd)) == "EBADF");
    }
    SECTION("not an epoll instance, the instance itself, an unknown op: EINVAL") {
        CHECK(error_of(ctl(fd, EPOLL_CTL_ADD, ep)) == "EINVAL");
        CHECK(error_of(ctl(ep, EPOLL_CTL_ADD, ep)) == "EINVAL");
        CHECK(error_of(ctl(ep, 99, fd)) == "EINVAL");
        std::array<EpollEvent, 4> events{};
        const FdResult waited = sys.epoll_wait(fd, events, 0);
        REQUIRE_FALSE(waited.ok());
        CHECK(errno_name(waited.error) == "EINVAL");
    }
    SECTION("registered or not: EEXIST, ENOENT") {
        CHECK(error_of(ctl(ep, EPOLL_CTL_MOD, fd)) == "ENOENT");
        CHECK(error_of(ctl(ep, EPOLL_CTL_DEL, fd)) == "ENOENT");
        REQUIRE(ctl(ep, EPOLL_CTL_ADD, fd).ok());
        CHECK(error_of(ctl(ep, EPOLL_CTL_ADD, fd)) == "EEXIST");
        CHECK(epoll_events_name(wait_once(sys, ep, fd, 0)) == "EPOLLOUT|EPOLLHUP");

        REQUIRE(ctl(ep, EPOLL_CTL_DEL, fd).ok());
        CHECK(epoll_events_name(wait_once(sys, ep, fd, 0)) == "0");
        CHECK(error_of(ctl(ep, EPOLL_CTL_DEL, fd)) == "ENOENT");
        CHECK(error_of(ctl(ep, EPOLL_CTL_MOD, fd)) == "ENOENT");
        CHECK(ctl(ep, EPOLL_CTL_ADD, fd).ok());
    }
}

TEMPLATE_TEST_CASE("close removes a socket from the interest list: the next socket with its number is new to epoll",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // epoll(7), Q6: "Will closing a file descriptor cause it to be removed
    // from all epoll interest lists? Yes, if this is the only file descriptor
    // referring to the underlying open file description" (Sys has no dup, so
    // it always is). Nothing more is reported for it. The next socket gets
    // the same number (the lowest free one) but is a different file: it is
    // not registered (EPOLL_CTL_MOD gives ENOENT) and EPOLL_CTL_ADD takes it
    // without EEXIST.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const Fd epoll = make_epoll(sys);
    Fd first = stream_socket(sys, AF_INET);
    const int number = first.get();
    add_interest(sys, epoll.get(), number, EPOLLOUT);
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), number, 0)) == "EPOLLOUT|EPOLLHUP");

    REQUIRE(first.close().ok());
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), number, 0)) == "0");

    const Fd second = stream_socket(sys, AF_INET);
    REQUIRE(second.get() == number);
    const VoidResult modified =
        sys.epoll_ctl(epoll.get(), EPOLL_CTL_MOD, number, EpollEvent{EPOLLOUT, static_cast<std::uint64_t>(number)});
    REQUIRE_FALSE(modified.ok());
    CHECK(errno_name(modified.error) == "ENOENT");
    add_interest(sys, epoll.get(), number, EPOLLOUT);
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), number, 0)) == "EPOLLOUT|EPOLLHUP");
}

}  // namespace eagain::conformance
