// Conformance: moving bytes over an established connection, and how it ends
// (flow control, FIN, RST, half-close, SHUT_RD, FIONREAD, MSG_PEEK, empty
// reads, readv/writev). See fixture.h for how these run against every Sys
// implementation.
#include "tests/conformance/fixture.h"
#include "tests/conformance/support.h"

#include <catch2/catch.hpp>

#include <sys/epoll.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace eagain::conformance {

// ===========================================================================
// Flow control

TEMPLATE_TEST_CASE("send to a non-reading peer gives short writes then EAGAIN, resumes after it reads, loses nothing",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // send(2): "When the message does not fit into the send buffer of the
    // socket ... in nonblocking I/O mode ... fail with EAGAIN"; a stream
    // socket takes what fits and returns that count (a short write). tcp(7):
    // the receiver's buffer bounds the window, so a reader that stops
    // reading stops the writer. epoll: EPOLLOUT comes back once the peer's
    // reading has made room. TCP is reliable: every byte send() accepted
    // arrives, in order. The buffers are made small (SO_SNDBUF, SO_RCVBUF),
    // but no count depends on their exact sizes: the loops only have bounds.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(
        sys, fx.loopback(AF_INET), PairOptions{.client_send_buffer_bytes = 4096, .server_receive_buffer_bytes = 4096});
    const int writer = pair.client.get();
    const int reader = pair.server.get();

    // Larger than any small buffer pair, so every fill ends in a short write.
    constexpr std::size_t chunk_bytes = 64 * 1024;
    // Bounds against a runaway, far above what small buffers take.
    constexpr int max_sends_per_fill = 1024;
    constexpr int max_settle_rounds = 32;
    constexpr int max_drain_rounds = 4096;
    constexpr int rounds = 3;

    std::vector<std::uint8_t> chunk(chunk_bytes);
    std::size_t sent_bytes = 0;
    std::size_t received_bytes = 0;
    int short_writes = 0;

    // Sends pattern bytes until EAGAIN; returns how many sends took bytes.
    const auto fill_until_eagain = [&] {
        for (int sends = 0; sends < max_sends_per_fill; ++sends) {
            for (std::size_t i = 0; i < chunk.size(); ++i) {
                chunk[i] = pattern_byte(sent_bytes + i);
            }
            const SizeResult sent = sys.send(writer, chunk, MSG_NOSIGNAL);
            if (!sent.ok()) {
                REQUIRE(errno_name(sent.error) == "EAGAIN");
                return sends;
            }
            REQUIRE(sent.value > 0);  // a send that takes nothing says EAGAIN instead
            REQUIRE(sent.value <= chunk.size());
            if (sent.value < chunk.size())
                ++short_writes;
            sent_bytes += sent.value;
        }
        FAIL("send never gave EAGAIN in " << max_sends_per_fill << " sends of " << chunk_bytes << " bytes");
        return 0;
    };
    // Reads everything there is now and checks it is the stream's next bytes.
    const auto drain_reader = [&] {
        const std::vector<std::uint8_t> bytes = recv_available(sys, reader);
        std::size_t mismatches = 0;
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            mismatches += bytes[i] == pattern_byte(received_bytes + i) ? 0 : 1;
        }
        INFO("stream offset " << received_bytes << ", " << bytes.size() << " bytes received");
        REQUIRE(mismatches == 0);
        received_bytes += bytes.size();
        return bytes.size();
    };

    for (int round = 0; round < rounds; ++round) {
        INFO("round " << round);
        const int short_writes_before = short_writes;
        // Round 0 starts on a fresh connection, later ones after EPOLLOUT:
        // either way the first send takes bytes.
        CHECK(fill_until_eagain() >= 1);
        CHECK(short_writes > short_writes_before);

        // While the reader does not read, the writer settles into not
        // writable. Data still in flight when send said EAGAIN may yet free
        // room, so EPOLLOUT may come a few times first; after it, send
        // must take bytes again.
        bool writer_blocked = false;
        for (int settle = 0; settle < max_settle_rounds && !writer_blocked; ++settle) {
            if (wait_for(sys, writer, EPOLLOUT, quiet_for_ms) == 0) {
                writer_blocked = true;
            } else {
                CHECK(fill_until_eagain() >= 1);
            }
        }
        REQUIRE(writer_blocked);

        // The reader reads until nothing more arrives: then every byte send
        // accepted has been delivered, and the writer has room again.
        bool reader_idle = false;
        for (int drain = 0; drain < max_drain_rounds && !reader_idle; ++drain) {
            drain_reader();
            reader_idle = wait_for(sys, reader, EPOLLIN, quiet_for_ms) == 0;
        }
        REQUIRE(reader_idle);
        CHECK(received_bytes == sent_bytes);
        CHECK(epoll_events_name(wait_for(sys, writer, EPOLLOUT, happens_within_ms)) == "EPOLLOUT");
    }

    // The end of the stream comes after the last byte.
    REQUIRE(sys.shutdown(writer, SHUT_WR).ok());
    REQUIRE((wait_for(sys, reader, EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
    CHECK(drain_reader() == 0);
    std::array<std::uint8_t, 16> buffer{};
    const SizeResult end = sys.recv(reader, buffer, 0);
    REQUIRE(end.ok());
    CHECK(end.value == 0);
    CHECK(received_bytes == sent_bytes);
    CHECK(short_writes >= rounds);
}

// ===========================================================================
// The end of a connection: FIN

TEMPLATE_TEST_CASE("after the peer's FIN recv returns the remaining data, then 0, and epoll reports EPOLLIN|EPOLLRDHUP",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // recv(2): "When a stream socket peer has performed an orderly shutdown,
    // the return value will be 0", after the data sent before it. epoll_ctl(2):
    // EPOLLRDHUP "Stream socket peer closed connection, or shut down writing
    // half of connection." The socket still readable (recv returns 0 without
    // blocking), and not EPOLLHUP: our own direction is still open.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int client = pair.client.get();
    send_whole(sys, pair.server.get(), "last words");

    SECTION("the peer shuts down its writing side") {
        REQUIRE(sys.shutdown(pair.server.get(), SHUT_WR).ok());
    }
    SECTION("the peer closes") {
        // Its receive queue is empty, so close() sends a FIN, not an RST.
        REQUIRE(pair.server.close().ok());
    }

    REQUIRE((wait_for(sys, client, EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), client, EPOLLIN | EPOLLRDHUP);
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLIN|EPOLLRDHUP");

    CHECK(as_text(recv_available(sys, client)) == "last words");
    std::array<std::uint8_t, 16> buffer{};
    const SizeResult end = sys.recv(client, buffer, 0);
    REQUIRE(end.ok());
    CHECK(end.value == 0);
    const SizeResult end_again = sys.recv(client, buffer, 0);
    REQUIRE(end_again.ok());
    CHECK(end_again.value == 0);  // the end of the stream stays
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLIN|EPOLLRDHUP");
}

TEMPLATE_TEST_CASE("after shutdown(SHUT_WR) the peer reads 0 but can still send back, EPOLLHUP once both sides shut",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // shutdown(2): SHUT_WR "further transmissions will be disallowed"; the
    // other direction stays open (a half-close). send(2): EPIPE "The local
    // end has been shut down on a connection oriented socket" (MSG_NOSIGNAL:
    // no SIGPIPE). epoll_ctl(2): EPOLLHUP is reported once the connection is
    // shut in both directions, not after a half-close.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int client = pair.client.get();
    const int server = pair.server.get();
    std::array<std::uint8_t, 16> buffer{};

    REQUIRE(sys.shutdown(client, SHUT_WR).ok());
    REQUIRE((wait_for(sys, server, EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
    const SizeResult end = sys.recv(server, buffer, 0);
    REQUIRE(end.ok());
    CHECK(end.value == 0);

    send_whole(sys, server, "still here");
    REQUIRE(wait_for_unread(sys, client, 10, happens_within_ms) == 10);
    CHECK(as_text(recv_available(sys, client)) == "still here");

    const SizeResult after_shutdown = sys.send(client, std::span(buffer).first(1), MSG_NOSIGNAL);
    REQUIRE_FALSE(after_shutdown.ok());
    CHECK(errno_name(after_shutdown.error) == "EPIPE");

    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), client, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    // Half-closed by us: writing would not block (it fails at once), nothing
    // to read, no hang-up.
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == "EPOLLOUT");

    REQUIRE(sys.shutdown(server, SHUT_WR).ok());
    REQUIRE((wait_for(sys, client, EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) ==
          epoll_events_name(EPOLLIN | EPOLLOUT | EPOLLHUP | EPOLLRDHUP));
}

// ===========================================================================
// The end of a connection: RST

TEMPLATE_TEST_CASE("after the peer's RST the first recv or send gives ECONNRESET, later sends EPIPE, no SIGPIPE",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // socket(7): SO_LINGER with l_onoff 1 and l_linger 0 makes close() reset
    // the connection. tcp(7)/recv(2): ECONNRESET "Connection reset by
    // peer". The reset is a pending socket error (SO_ERROR): whichever call
    // meets it first (recv, send or getsockopt) reports and clears it. After
    // that the socket is closed in both directions: recv returns 0 and send
    // gives EPIPE; send(2): MSG_NOSIGNAL "Don't generate a SIGPIPE signal",
    // so the test process survives. epoll reports EPOLLERR|EPOLLHUP, and
    // EPOLLIN|EPOLLRDHUP (reading no longer blocks).
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int client = pair.client.get();
    REQUIRE(sys.set_linger(pair.server.get(), true, 0).ok());
    REQUIRE(pair.server.close().ok());

    REQUIRE((wait_for(sys, client, EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), client, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    const std::string reset_events = epoll_events_name(EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP);
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) == reset_events);

    std::array<std::uint8_t, 16> buffer{};
    const auto recv_once = [&] { return sys.recv(client, buffer, 0); };
    const auto send_once = [&] { return sys.send(client, std::span(buffer).first(4), MSG_NOSIGNAL); };

    SECTION("recv first") {
        const SizeResult first = recv_once();
        REQUIRE_FALSE(first.ok());
        CHECK(errno_name(first.error) == "ECONNRESET");
    }
    SECTION("send first") {
        const SizeResult first = send_once();
        REQUIRE_FALSE(first.ok());
        CHECK(errno_name(first.error) == "ECONNRESET");
    }
    SECTION("SO_ERROR first") {
        const SysResult<int> first = sys.socket_error(client);
        REQUIRE(first.ok());
        CHECK(errno_name(first.value) == "ECONNRESET");
    }

    // The reset has been reported; what remains is a closed socket.
    const SysResult<int> pending = sys.socket_error(client);
    REQUIRE(pending.ok());
    CHECK(errno_name(pending.value) == "0");
    const SizeResult sent = send_once();
    REQUIRE_FALSE(sent.ok());
    CHECK(errno_name(sent.error) == "EPIPE");
    const SizeResult received = recv_once();
    REQUIRE(received.ok());
    CHECK(received.value == 0);
    // Reading the error cleared EPOLLERR; the hang-up stays.
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), client, 0)) ==
          epoll_events_name(EPOLLIN | EPOLLOUT | EPOLLHUP | EPOLLRDHUP));
}

TEMPLATE_TEST_CASE("close() with received data unread sends RST, not FIN: the peer gets ECONNRESET, after its own data",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // RFC 1122 4.2.2.13: "If such a host issues a CLOSE call while received
    // data is still pending in TCP, or if new data is received after CLOSE
    // is called, its TCP SHOULD send a RST to show that data was lost."
    // Linux does (tcp_close()), without SO_LINGER. The peer sees a reset,
    // not an end of stream: EPOLLERR|EPOLLHUP, recv ECONNRESET, then send
    // EPIPE and recv 0. The reset does not discard what the peer had
    // received and not yet read: recv returns that first, and the reset
    // after it.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int client = pair.client.get();
    std::array<std::uint8_t, 16> buffer{};

    send_whole(sys, client, "unread");
    REQUIRE(wait_for_unread(sys, pair.server.get(), 6, happens_within_ms) == 6);

    SECTION("the peer has read everything") {
        REQUIRE(pair.server.close().ok());
        REQUIRE((wait_for(sys, client, EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
        CHECK(epoll_events_name(wait_for(sys, client, EPOLLIN | EPOLLOUT | EPOLLRDHUP, 0)) ==
              epoll_events_name(EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP));
    }
    SECTION("the peer has unread data too: it reads that first") {
        send_whole(sys, pair.server.get(), "reply");
        REQUIRE(wait_for_unread(sys, client, 5, happens_within_ms) == 5);
        REQUIRE(pair.server.close().ok());
        REQUIRE((wait_for(sys, client, EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
        CHECK(epoll_events_name(wait_for(sys, client, EPOLLIN | EPOLLOUT | EPOLLRDHUP, 0)) ==
              epoll_events_name(EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP));
        const FdResult unread = sys.ioctl_fionread(client);
        REQUIRE(unread.ok());
        CHECK(unread.value == 5);
        const SizeResult reply = sys.recv(client, buffer, 0);
        REQUIRE(reply.ok());
        REQUIRE(reply.value == 5);
        CHECK(as_text(std::span(buffer).first(5)) == "reply");
    }

    const SizeResult reset = sys.recv(client, buffer, 0);
    REQUIRE_FALSE(reset.ok());
    CHECK(errno_name(reset.error) == "ECONNRESET");
    const SizeResult sent = sys.send(client, std::span(buffer).first(4), MSG_NOSIGNAL);
    REQUIRE_FALSE(sent.ok());
    CHECK(errno_name(sent.error) == "EPIPE");
    const SizeResult end = sys.recv(client, buffer, 0);
    REQUIRE(end.ok());
    CHECK(end.value == 0);
}

TEMPLATE_TEST_CASE("a send to a peer that closed succeeds, the RST it draws gives EPIPE, not ECONNRESET, and recv 0",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // The peer closed with nothing unread, so it sent a FIN: this side is in
    // CLOSE-WAIT and may still send, and send() takes the data (it cannot
    // know the peer will never read it). The peer's TCP answers data for a
    // closed socket with RST (RFC 1122 4.2.2.13). Linux turns a reset that
    // arrives in CLOSE-WAIT into EPIPE, not ECONNRESET (tcp_reset()): that
    // is the pending error SO_ERROR and the next send report. recv reports
    // no error at all: the FIN came first, and the end of the stream (0)
    // stays what recv returns.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int client = pair.client.get();
    std::array<std::uint8_t, 16> buffer{};

    REQUIRE(pair.server.close().ok());
    REQUIRE((wait_for(sys, client, EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
    send_whole(sys, client, "anyone there?");
    CHECK(epoll_events_name(wait_for(sys, client, EPOLLERR, happens_within_ms)) == "EPOLLERR|EPOLLHUP");
    CHECK(epoll_events_name(wait_for(sys, client, EPOLLIN | EPOLLOUT | EPOLLRDHUP, 0)) ==
          epoll_events_name(EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP));

    SECTION("send first") {
        const SizeResult sent = sys.send(client, std::span(buffer).first(4), MSG_NOSIGNAL);
        REQUIRE_FALSE(sent.ok());
        CHECK(errno_name(sent.error) == "EPIPE");
        const SysResult<int> pending = sys.socket_error(client);
        REQUIRE(pending.ok());
        CHECK(errno_name(pending.value) == "0");
    }
    SECTION("SO_ERROR first") {
        const SysResult<int> pending = sys.socket_error(client);
        REQUIRE(pending.ok());
        CHECK(errno_name(pending.value) == "EPIPE");
    }
    SECTION("recv first: 0, and the error stays pending") {
        const SizeResult end = sys.recv(client, buffer, 0);
        REQUIRE(end.ok());
        CHECK(end.value == 0);
        const SysResult<int> pending = sys.socket_error(client);
        REQUIRE(pending.ok());
        CHECK(errno_name(pending.value) == "EPIPE");
    }

    const SizeResult sent = sys.send(client, std::span(buffer).first(4), MSG_NOSIGNAL);
    REQUIRE_FALSE(sent.ok());
    CHECK(errno_name(sent.error) == "EPIPE");
    const SizeResult end = sys.recv(client, buffer, 0);
    REQUIRE(end.ok());
    CHECK(end.value == 0);
}

TEMPLATE_TEST_CASE("shutdown(SHUT_RD) is local: recv returns what is queued, then 0, the peer can still send",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // shutdown(2): SHUT_RD "further receptions will be disallowed". On Linux
    // TCP that only marks this socket: nothing goes to the peer (no FIN, no
    // RST), recv returns the data already queued and then 0 where it would
    // have given EAGAIN, and epoll reports EPOLLIN|EPOLLRDHUP at once, as
    // after a FIN. Data the peer sends afterwards is still accepted and
    // queued, and recv returns it, then 0 again: SHUT_RD does not discard.
    // The other direction is untouched.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int client = pair.client.get();
    const int server = pair.server.get();
    std::array<std::uint8_t, 16> buffer{};

    send_whole(sys, client, "before");
    REQUIRE(wait_for_unread(sys, server, 6, happens_within_ms) == 6);
    REQUIRE(sys.shutdown(server, SHUT_RD).ok());

    CHECK(epoll_events_name(wait_for(sys, server, EPOLLIN | EPOLLOUT | EPOLLRDHUP, 0)) ==
          epoll_events_name(EPOLLIN | EPOLLOUT | EPOLLRDHUP));
    // No FIN (EPOLLRDHUP), no RST (EPOLLERR) reaches the peer.
    CHECK(epoll_events_name(wait_for(sys, client, EPOLLIN | EPOLLRDHUP, quiet_for_ms)) == "0");
    CHECK(as_text(recv_available(sys, server)) == "before");
    const SizeResult end = sys.recv(server, buffer, 0);
    REQUIRE(end.ok());
    CHECK(end.value == 0);

    // Readable all along (level), so wait for the arrival as an edge.
    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), server, EPOLLIN | EPOLLET);
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, 0)) == "EPOLLIN");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, 0)) == "0");
    send_whole(sys, client, "after");
    CHECK(epoll_events_name(wait_once(sys, epoll.get(), server, happens_within_ms)) == "EPOLLIN");
    const FdResult unread = sys.ioctl_fionread(server);
    REQUIRE(unread.ok());
    CHECK(unread.value == 5);
    CHECK(as_text(recv_available(sys, server)) == "after");
    const SizeResult end_again = sys.recv(server, buffer, 0);
    REQUIRE(end_again.ok());
    CHECK(end_again.value == 0);

    send_whole(sys, server, "back");
    REQUIRE(wait_for_unread(sys, client, 4, happens_within_ms) == 4);
    CHECK(as_text(recv_available(sys, client)) == "back");
}

// ===========================================================================
// Reading and writing

TEMPLATE_TEST_CASE("send of 0 bytes returns 0 and puts nothing on the wire", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // send(2) returns the number of bytes sent: 0 of 0. For a stream socket
    // an empty send carries no data, so the peer has nothing to read (unlike
    // a datagram socket, where it would be an empty datagram).
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    std::array<std::uint8_t, 16> buffer{};

    const SizeResult empty = sys.send(pair.client.get(), std::span(buffer).first(0), MSG_NOSIGNAL);
    REQUIRE(empty.ok());
    CHECK(empty.value == 0);

    CHECK(epoll_events_name(wait_for(sys, pair.server.get(), EPOLLIN, quiet_for_ms)) == "0");
    const FdResult unread = sys.ioctl_fionread(pair.server.get());
    REQUIRE(unread.ok());
    CHECK(unread.value == 0);
    const SizeResult nothing = sys.recv(pair.server.get(), buffer, 0);
    REQUIRE_FALSE(nothing.ok());
    CHECK(errno_name(nothing.error) == "EAGAIN");

    // The next real byte is the first byte of the stream.
    send_whole(sys, pair.client.get(), "x");
    REQUIRE(wait_for_unread(sys, pair.server.get(), 1, happens_within_ms) == 1);
    CHECK(as_text(recv_available(sys, pair.server.get())) == "x");
}

TEMPLATE_TEST_CASE("recv into an empty buffer returns 0 if data is waiting, EAGAIN if not: 0 is no end of stream here",
                   "[conformance]", EAGAIN_CONFORMANCE_FIXTURES) {
    // recv(2): "The value 0 may also be returned if the requested number of
    // bytes to receive from a stream socket was 0." Linux returns 0 only
    // when there is something to read; with nothing, a non-blocking recv of
    // 0 bytes gives EAGAIN as any other would. Either way nothing is
    // consumed. After the peer's FIN it returns 0 too.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int server = pair.server.get();
    std::array<std::uint8_t, 16> buffer{};
    const auto recv_nothing = [&] { return sys.recv(server, std::span(buffer).first(0), 0); };

    const SizeResult idle = recv_nothing();
    REQUIRE_FALSE(idle.ok());
    CHECK(errno_name(idle.error) == "EAGAIN");

    send_whole(sys, pair.client.get(), "data");
    REQUIRE(wait_for_unread(sys, server, 4, happens_within_ms) == 4);
    const SizeResult waiting = recv_nothing();
    REQUIRE(waiting.ok());
    CHECK(waiting.value == 0);
    const FdResult unread = sys.ioctl_fionread(server);
    REQUIRE(unread.ok());
    CHECK(unread.value == 4);
    CHECK(as_text(recv_available(sys, server)) == "data");

    REQUIRE(sys.shutdown(pair.client.get(), SHUT_WR).ok());
    REQUIRE((wait_for(sys, server, EPOLLRDHUP, happens_within_ms) & EPOLLRDHUP) != 0);
    const SizeResult ended = recv_nothing();
    REQUIRE(ended.ok());
    CHECK(ended.value == 0);
}

TEMPLATE_TEST_CASE("ioctl FIONREAD counts the bytes received and not yet read", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // ioctl_tcp(7)/tcp(7): SIOCINQ (= FIONREAD) "Returns the amount of queued
    // unread data in the receive buffer."
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int server = pair.server.get();
    const auto unread = [&] {
        const FdResult n = sys.ioctl_fionread(server);
        REQUIRE(n.ok());
        return n.value;
    };

    CHECK(unread() == 0);
    send_whole(sys, pair.client.get(), "0123456789");
    REQUIRE(wait_for_unread(sys, server, 10, happens_within_ms) == 10);
    send_whole(sys, pair.client.get(), "abcdefghijklmnopqrst");
    REQUIRE(wait_for_unread(sys, server, 30, happens_within_ms) == 30);
    CHECK(unread() == 30);

    std::array<std::uint8_t, 5> five{};
    const SizeResult got = sys.recv(server, five, 0);
    REQUIRE(got.ok());
    REQUIRE(got.value == 5);
    CHECK(as_text(five) == "01234");
    CHECK(unread() == 25);

    CHECK(as_text(recv_available(sys, server)) == "56789abcdefghijklmnopqrst");
    CHECK(unread() == 0);
}

TEMPLATE_TEST_CASE("recv with MSG_PEEK returns the data without consuming it", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // recv(2): MSG_PEEK "causes the receive operation to return data from the
    // beginning of the receive queue without removing that data from the
    // queue. Thus, a subsequent receive call will return the same data."
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));
    const int server = pair.server.get();

    send_whole(sys, pair.client.get(), "peekaboo");
    REQUIRE(wait_for_unread(sys, server, 8, happens_within_ms) == 8);

    std::array<std::uint8_t, 4> first_four{};
    const SizeResult peeked = sys.recv(server, first_four, MSG_PEEK);
    REQUIRE(peeked.ok());
    REQUIRE(peeked.value == 4);
    CHECK(as_text(first_four) == "peek");
    const FdResult unread = sys.ioctl_fionread(server);
    REQUIRE(unread.ok());
    CHECK(unread.value == 8);

    CHECK(as_text(recv_available(sys, server)) == "peekaboo");
}

TEMPLATE_TEST_CASE("writev gathers and readv scatters the same byte stream", "[conformance]",
                   EAGAIN_CONFORMANCE_FIXTURES) {
    // writev(2): "writes iovcnt buffers of data ... in order"; readv(2):
    // "reads ... into the buffers ... filling each buffer before proceeding
    // to the next." On a stream socket the boundaries of the writer's
    // buffers are not kept: only the byte order is.
    TestType fx;
    const auto leak_check = check_fds_closed(fx);
    Sys& sys = fx.sys();
    const ConnectedPair pair = connect_pair(sys, fx.loopback(AF_INET));

    std::string scatter = "scatter";
    std::string dash = "-";
    std::string gather = "gather";
    const std::array<iovec, 3> out{{
        {scatter.data(), scatter.size()},
        {dash.data(), dash.size()},
        {gather.data(), gather.size()},
    }};
    const SizeResult written = sys.writev(pair.client.get(), out);
    REQUIRE(written.ok());
    REQUIRE(written.value == 14);
    REQUIRE(wait_for_unread(sys, pair.server.get(), 14, happens_within_ms) == 14);

    std::array<char, 4> a{};
    std::array<char, 4> b{};
    std::array<char, 16> c{};
    const std::array<iovec, 3> in{{
        {a.data(), a.size()},
        {b.data(), b.size()},
        {c.data(), c.size()},
    }};
    const SizeResult read = sys.readv(pair.server.get(), in);
    REQUIRE(read.ok());
    REQUIRE(read.value == 14);
    CHECK(std::string(a.data(), a.size()) == "scat");
    CHECK(std::string(b.data(), b.size()) == "ter-");
    CHECK(std::string(c.data(), 6) == "gather");
}

}  // namespace eagain::conformance
