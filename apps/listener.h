// Listener: the one listening socket and accept path of every server app
// (FrameEchoServer, ByteEchoServer, BulkReceiverServer).
//
// open(): socket(SOCK_NONBLOCK | SOCK_CLOEXEC), SO_REUSEADDR, bind, listen,
// and a level-triggered EPOLLIN registration, in that order; on a failure
// the socket is closed and the errno returned.
//
// On each readiness event it calls accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) at
// most max_accepts_per_wakeup times (level-triggered: the rest come on the
// next poll), handing each accepted socket to the Accepted callback, which
// owns it from then on. accept4(2)'s errors:
//   EAGAIN         the queue is drained: the batch ends
//   EINTR          retried at once, at most max_eintr_retries in a row per
//                  batch (default_max_eintr_retries, as Transport's); past
//                  the bound it is treated like the errors below
//   ECONNABORTED   that connection is already gone; the next may be fine
//   anything else  (EMFILE, ENFILE, ENOBUFS, ENOMEM) the Failed callback is
//                  told, and accepting pauses for accept_pause: the interest
//                  is set to 0 and restored by a timer, since a
//                  level-triggered listener would otherwise report the same
//                  waiting connection on every poll.
// The callbacks may close() the listener; the batch then ends.
#pragma once

#include "core/reactor.h"
#include "core/sys.h"
#include "core/transport.h"

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>

namespace eagain {

struct ListenerOptions {
    int backlog = 1024;
    std::size_t max_accepts_per_wakeup = 64;
    int max_eintr_retries = default_max_eintr_retries;
    Nanos accept_pause = std::chrono::milliseconds(100);
};

class Listener final : private Reactor::Handler {
public:
    using Accepted = std::function<void(int fd, const SockAddr& peer)>;
    using Failed = std::function<void(int error)>;  // accepting pauses after it returns

    Listener(Reactor& reactor, const ListenerOptions& options, Accepted accepted, Failed failed = {});
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // socket, SO_REUSEADDR, bind, listen, register; the failing errno.
    VoidResult open(const SockAddr& address);
    // Cancels a pending resume, deregisters and closes the socket. Idempotent.
    void close();

    bool is_open() const noexcept { return fd_ >= 0; }
    int fd() const noexcept { return fd_; }
    // The bound address (with the kernel-chosen port); {} if getsockname fails.
    SockAddr local_address() const;
    // Accepting is paused after an error, until the resume timer fires.
    bool paused() const noexcept { return resume_timer_.has_value(); }

private:
    void on_ready(std::uint32_t events) override;
    void pause();

    Reactor& reactor_;
    ListenerOptions options_;
    Accepted accepted_;
    Failed failed_;
    int fd_ = -1;
    std::optional<Reactor::TimerId> resume_timer_;  // cancelled by close(): it captures this
};

}  // namespace eagain
