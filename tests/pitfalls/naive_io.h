// Naive non-blocking socket I/O, written the way the seed programs write it:
// one variant per pitfall, each WRONG ON PURPOSE.
//
// tests/pitfalls/io_pitfalls_test.cpp runs every variant beside the correct
// driver (Transport, Reactor, ConnectionDriver) under the same faults and
// shows the same check passing for the driver and failing for the variant.
// Apart from its one pitfall each variant is as careful as it can be, so the
// failure is the pitfall's and nothing else's.
//
// Every loop takes a cap from the test harness: a variant that would spin or
// hang in a real program stops here, and the test counts how often it went
// round. All calls go through the Sys they are given (a FaultySys in the
// tests), so injected faults reach them and FaultySys::calls() counts them.
#pragma once

#include "core/reactor.h"
#include "core/sys.h"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace eagain::pitfalls {

// ---------------------------------------------------------------------------
// Sending

enum class NaiveSendEnd : std::uint8_t {
    sent,     // the variant believes every byte went out
    dropped,  // the variant gave up on the rest and kept the connection
    closed,   // the variant closed the fd
};

// Pitfall 1, partial write: one send, and its count is never looked at
// ("the kernel takes what I give it").
inline NaiveSendEnd naive_send_ignoring_count(Sys& sys, int fd, std::span<const std::uint8_t> bytes) {
    (void)sys.send(fd, bytes, MSG_NOSIGNAL);
    return NaiveSendEnd::sent;
}

// Pitfalls 2 and 3, EAGAIN and EINTR on send, as one seed function writes
// them both:
//     if (n < 0) { if (errno == EAGAIN) return; perror("send"); close(fd); }
// A partial write is continued, but EAGAIN returns ("try again later") and
// nothing ever comes back for the rest: it is dropped. Every other error is
// fatal, EINTR included: a healthy connection is closed.
inline NaiveSendEnd naive_send(Sys& sys, int fd, std::span<const std::uint8_t> bytes, int max_calls) {
    std::size_t sent = 0;
    for (int call = 0; call < max_calls && sent < bytes.size(); ++call) {
        const SizeResult r = sys.send(fd, bytes.subspan(sent), MSG_NOSIGNAL);
        if (!r.ok()) {
            if (would_block(r.error))
                return NaiveSendEnd::dropped;
            (void)sys.close(fd);
            return NaiveSendEnd::closed;
        }
        sent += r.value;
    }
    return sent == bytes.size() ? NaiveSendEnd::sent : NaiveSendEnd::dropped;
}

// Pitfalls 8 and 9: the blocking-style "send it all" loop, on a non-blocking
// socket:
//     while (sent < n) { r = send(fd, p + sent, n - sent, 0); if (r < 0) continue; sent += r; }
// A stalled peer turns it into a busy loop (every EAGAIN goes straight round
// again); a reset peer makes it send again after ECONNRESET, which gives
// EPIPE, and flags 0 (no MSG_NOSIGNAL) make that EPIPE raise SIGPIPE. run()
// goes round at most max_calls times and can be called again to go on.
class NaiveBusySender {
public:
    NaiveBusySender(Sys& sys, int fd, std::span<const std::uint8_t> bytes) : sys_(sys), fd_(fd), bytes_(bytes) {}

    void run(int max_calls) {
        for (int call = 0; call < max_calls && sent_ < bytes_.size(); ++call) {
            ++calls_;
            const SizeResult r = sys_.send(fd_, bytes_.subspan(sent_), 0);
            if (!r.ok()) {
                last_error_ = r.error;
                continue;
            }
            sent_ += r.value;
        }
    }
    bool done() const noexcept { return sent_ == bytes_.size(); }
    std::size_t sent_bytes() const noexcept { return sent_; }
    std::uint64_t calls() const noexcept { return calls_; }
    int last_error() const noexcept { return last_error_; }

private:
    Sys& sys_;
    int fd_;
    std::span<const std::uint8_t> bytes_;
    std::size_t sent_ = 0;
    std::uint64_t calls_ = 0;
    int last_error_ = 0;
};

// ---------------------------------------------------------------------------
// Connecting

struct NaiveConnect {
    int fd = -1;    // the connecting socket, or -1 when the variant gave up
    int error = 0;  // what it reports: 0, or the errno it took as failure
};

// Pitfall 6, EINTR on connect: only 0 and EINPROGRESS count as "under way";
// anything else, EINTR included, is "connect failed" and the socket is
// closed, although POSIX says the interrupted connect goes on.
inline NaiveConnect naive_connect(Sys& sys, const SockAddr& address) {
    const FdResult fd = sys.socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!fd.ok())
        return NaiveConnect{-1, fd.error};
    const VoidResult r = sys.connect(fd.value, address);
    if (!r.ok() && r.error != EINPROGRESS) {
        (void)sys.close(fd.value);
        return NaiveConnect{-1, r.error};
    }
    return NaiveConnect{fd.value, 0};
}

// ---------------------------------------------------------------------------
// Reading, as Reactor handlers (the variant's own event loop is pitfall 5)

// What a naive reader got, and whether it closed its fd.
struct NaiveReadLog {
    std::vector<std::uint8_t> received;
    std::uint64_t wakeups = 0;
    std::size_t max_bytes_per_wakeup = 0;
    bool closed = false;
    int error = 0;  // the errno it closed on, if any
};

// The read step the naive readers differ in; reactor.sys() makes the calls.
using NaiveReadStep = void (*)(Reactor& reactor, int fd, NaiveReadLog& log);

// Registers itself for `interest` and runs `step` on every wake-up. When the
// step closes the fd (log.closed), the registration is removed first, as the
// seeds do (epoll_ctl DEL, then close).
class NaiveReader final : private Reactor::Handler {
public:
    NaiveReader(Reactor& reactor, int fd, std::uint32_t interest, NaiveReadStep step)
        : reactor_(reactor), fd_(fd), step_(step) {
        add_error_ = reactor_.add(fd_, interest, *this).error;
    }
    ~NaiveReader() {
        if (!log_.closed && reactor_.registered(fd_))
            (void)reactor_.remove(fd_);
    }
    NaiveReader(const NaiveReader&) = delete;
    NaiveReader& operator=(const NaiveReader&) = delete;

    int add_error() const noexcept { return add_error_; }
    const NaiveReadLog& log() const noexcept { return log_; }

private:
    void on_ready(std::uint32_t /*events*/) override {
        if (log_.closed)
            return;
        ++log_.wakeups;
        const std::size_t before = log_.received.size();
        step_(reactor_, fd_, log_);
        log_.max_bytes_per_wakeup = std::max(log_.max_bytes_per_wakeup, log_.received.size() - before);
    }

    Reactor& reactor_;
    int fd_;
    NaiveReadStep step_;
    NaiveReadLog log_;
    int add_error_ = 0;
};

inline constexpr std::size_t naive_chunk_bytes = 4096;

inline void append(NaiveReadLog& log, std::span<const std::uint8_t> chunk, std::size_t n) {
    log.received.insert(log.received.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
}

inline void close_naively(Reactor& reactor, int fd, NaiveReadLog& log, int error) {
    if (reactor.registered(fd))
        (void)reactor.remove(fd);
    (void)reactor.sys().close(fd);
    log.closed = true;
    log.error = error;
}

// Pitfall 4, EINTR on recv (level-triggered, one recv per wake-up): EOF and
// EAGAIN are right, but every other error is fatal, EINTR included.
inline void naive_read_closing_on_eintr(Reactor& reactor, int fd, NaiveReadLog& log) {
    std::array<std::uint8_t, naive_chunk_bytes> chunk{};
    const SizeResult n = reactor.sys().recv(fd, chunk, 0);
    if (n.ok() && n.value > 0) {
        append(log, chunk, n.value);
    } else if (n.ok()) {
        close_naively(reactor, fd, log, 0);
    } else if (!would_block(n.error)) {
        close_naively(reactor, fd, log, n.error);  // perror("recv"); close(fd);
    }
}

// The seeds' level-triggered reader, one recv per wake-up:
//     n = recv(fd, buf, sizeof buf, 0);
//     if (n > 0) handle(buf, n); else if (errno == EAGAIN) return;
// Pitfall 7, recv 0: a 0 is neither case, so it is ignored. The fd stays
// open and, since a finished stream stays readable, every poll wakes it to
// read 0 again.
// Pitfall 10, edge-triggered: the same reader registered with EPOLLET. What
// its one recv left in the socket gets no new edge, so it waits until the
// peer sends more, which may be never.
inline void naive_read_once(Reactor& reactor, int fd, NaiveReadLog& log) {
    std::array<std::uint8_t, naive_chunk_bytes> chunk{};
    const SizeResult n = reactor.sys().recv(fd, chunk, 0);
    if (n.ok() && n.value > 0)
        append(log, chunk, n.value);
}

// Fairness, edge-triggered: drains to EAGAIN, as epoll(7) says, but with no
// bound on the bytes per wake-up. A peer that keeps the socket full holds
// the loop for as long as it keeps sending, and every other connection waits.
inline void naive_read_until_eagain(Reactor& reactor, int fd, NaiveReadLog& log) {
    std::array<std::uint8_t, naive_chunk_bytes> chunk{};
    for (int reads = 0; reads < 100'000; ++reads) {  // the harness's cap, not the variant's
        const SizeResult n = reactor.sys().recv(fd, chunk, 0);
        if (!n.ok() || n.value == 0)
            return;
        append(log, chunk, n.value);
    }
}

// ---------------------------------------------------------------------------
// The event loop

struct NaiveLoopEnd {
    int iterations = 0;
    int error = 0;  // the errno that ended the loop, 0 if it ran out of iterations or was told to stop
};

// Pitfall 5, EINTR on epoll_wait:
//     for (;;) { n = epoll_wait(...); if (n < 0) { perror("epoll_wait"); break; } ... }
// A signal arriving during the wait ends the program's event loop.
inline NaiveLoopEnd naive_event_loop(Sys& sys, int epoll_fd, int timeout_ms, int max_iterations,
                                     const std::function<void(const EpollEvent&)>& on_event,
                                     const std::function<bool()>& stop) {
    std::array<EpollEvent, 16> events{};
    NaiveLoopEnd end;
    for (; end.iterations < max_iterations && !stop(); ++end.iterations) {
        const FdResult n = sys.epoll_wait(epoll_fd, events, timeout_ms);
        if (!n.ok()) {
            end.error = n.error;
            return end;
        }
        for (int i = 0; i < n.value; ++i)
            on_event(events[static_cast<std::size_t>(i)]);
    }
    return end;
}

}  // namespace eagain::pitfalls
