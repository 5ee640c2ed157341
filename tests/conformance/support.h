// Helpers for conformance tests, written against Sys& only.
//
// Waiting rule: a test waits only inside sys.epoll_wait or sys.poll with a bounded
// timeout (in the simulation that timeout advances virtual time). Nothing
// here sleeps, reads a clock or loops without a bound, and every loop that
// waits for the kernel has a maximum number of rounds.
//
// Helpers REQUIRE what must hold for the test to make sense (a socket could
// be made, a connection was set up); they are not where behaviour is pinned.
#pragma once

#include "core/sys.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace eagain::conformance {

// For what must happen (a connection completing, data arriving). Long,
// because a loaded machine may be slow, and it is only spent on failure.
inline constexpr int happens_within_ms = 5000;
// For what must not happen: how long to watch for an event before deciding
// none is coming. Everything on loopback happens in microseconds.
inline constexpr int quiet_for_ms = 50;

// An owned descriptor of one Sys, closed when it goes out of scope.
class Fd {
public:
    Fd() = default;
    Fd(Sys& sys, int fd) noexcept : sys_(&sys), fd_(fd) {}
    Fd(Fd&& other) noexcept;
    Fd& operator=(Fd&& other) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd();

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    // Closes now, for tests where the close is the event under test.
    VoidResult close();
    // Gives the fd up (to a Transport, say) without closing it.
    int release() noexcept { return std::exchange(fd_, -1); }
    // Closes the fd held, if any, and holds fd instead (same Sys).
    void reset(int fd);

private:
    Sys* sys_ = nullptr;
    int fd_ = -1;
};

// "EPOLLIN|EPOLLRDHUP": compare these, not the numbers, so a failing check
// prints which flags differ.
std::string epoll_events_name(std::uint32_t events);

struct Listener {
    Fd fd;
    SockAddr address;  // with the port the kernel chose
};

// A non-blocking listening socket on address (port 0: any free port).
// receive_buffer_bytes > 0 sets SO_RCVBUF before listen(), which accepted
// sockets inherit and which fixes the window they advertise.
Listener listen_on(Sys& sys, const SockAddr& address, int receive_buffer_bytes = 0, int backlog = 16);

// A non-blocking TCP socket of the address's family, not connected.
Fd stream_socket(Sys& sys, int family);

struct PairOptions {
    int client_send_buffer_bytes = 0;     // SO_SNDBUF of the client, set before connect; 0 leaves the default
    int server_receive_buffer_bytes = 0;  // SO_RCVBUF of the server side, set on the listener before listen
};

// An established connection: client connected (non-blocking connect, then
// EPOLLOUT and SO_ERROR 0) and server accepted with accept4(SOCK_NONBLOCK).
// The listener is closed before returning.
struct ConnectedPair {
    Fd client;
    Fd server;
};
ConnectedPair connect_pair(Sys& sys, const SockAddr& loopback, PairOptions options = {});

Fd make_epoll(Sys& sys);
// EPOLL_CTL_ADD of fd with data = fd.
void add_interest(Sys& sys, int epoll_fd, int fd, std::uint32_t events);

// One epoll_wait; the events reported for fd, 0 if nothing was reported
// within timeout_ms. An epoll_wait interrupted by a signal is repeated (a
// bounded number of times).
std::uint32_t wait_once(Sys& sys, int epoll_fd, int fd, int timeout_ms);

// Waits until fd reports any of interest, through a private level-triggered
// epoll set holding only fd with exactly that interest (plus EPOLLERR and
// EPOLLHUP, which epoll always reports). Returns the reported mask, 0 on
// timeout.
std::uint32_t wait_for(Sys& sys, int fd, std::uint32_t interest, int timeout_ms);

// Waits until FIONREAD on fd says at least at_least bytes are unread, or
// the peer's FIN is seen; returns the last FIONREAD. Edge-triggered, so it
// wakes once per arrival and never spins on data that is already there.
std::size_t wait_for_unread(Sys& sys, int fd, std::size_t at_least, int timeout_ms);

// send() of data that must be taken whole (small messages on a connection
// with room).
void send_whole(Sys& sys, int fd, std::span<const std::uint8_t> data);
void send_whole(Sys& sys, int fd, std::string_view text);

// recv() until EAGAIN or end of stream, at most max_bytes; what was read.
std::vector<std::uint8_t> recv_available(Sys& sys, int fd, std::size_t max_bytes = 1 << 20);
std::string as_text(std::span<const std::uint8_t> bytes);

// The test stream's byte at offset: a pattern with period 251 (prime, so it
// does not line up with any buffer size), to catch lost or reordered data.
inline std::uint8_t pattern_byte(std::size_t offset) noexcept {
    return static_cast<std::uint8_t>(offset % 251);
}

}  // namespace eagain::conformance
