// Reactor: one epoll instance, the sockets registered with it, and timers.
//
// Step-driven, so the same loop runs on Linux and in virtual time:
//
//   poll(timeout)    one epoll_wait (bounded by the next timer), dispatch each
//                    ready socket to its Handler, then run the timers that are
//                    due, in (deadline, creation order) order;
//   next_deadline()  when poll() must next run even if no socket is ready;
//   run()            on Linux: poll() until stop() (never busy-waits: it
//                    sleeps in epoll_wait until a socket or a timer is due).
//
// Sockets are level- or edge-triggered per registration (EPOLLET in the
// interest mask). A handler may add, modify or remove any registration,
// including its own, and add or cancel timers, from inside a callback; an
// event for a socket removed earlier in the same batch is not delivered.
//
// wake_again(fd) asks for a dispatch on the next poll() without waiting for
// epoll: an edge-triggered reader that stopped before EAGAIN (its budget per
// wakeup ran out, or its receive buffer is full) will not get another edge
// for data already there, so it asks to be woken by the reactor instead.
#pragma once

#include "core/sys.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace eagain {

struct ReactorLimits {
    // Events taken from one epoll_wait; the rest wait for the next poll.
    std::size_t max_events_per_poll = 256;
    // A registration is indexed by fd; larger fds are refused (EMFILE).
    int max_fd = 1 << 20;
};

class Reactor {
public:
    class Handler {
    public:
        // events: what epoll reported (EPOLLIN | EPOLLOUT | EPOLLERR | ...),
        // or what wake_again() asked for.
        virtual void on_ready(std::uint32_t events) = 0;

    protected:
        ~Handler() = default;
    };

    // Timers are identified by their position in the run order.
    struct TimerId {
        Nanos deadline{};
        std::uint64_t sequence = 0;
        friend auto operator<=>(const TimerId&, const TimerId&) = default;
    };

    // Creates the epoll instance; check open_error() before use.
    explicit Reactor(Sys& sys, ReactorLimits limits = {});
    ~Reactor();
    Reactor(const Reactor&) = delete;
    Reactor& operator=(const Reactor&) = delete;

    // 0, or the errno epoll_create1 failed with.
    int open_error() const noexcept { return open_error_; }
    Sys& sys() const noexcept { return sys_; }

    // --- sockets -----------------------------------------------------------
    // interest: EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET | EPOLLONESHOT ...
    VoidResult add(int fd, std::uint32_t interest, Handler& handler);
    VoidResult modify(int fd, std::uint32_t interest);
    // Forgets the registration (EPOLL_CTL_DEL). Call before close(fd).
    VoidResult remove(int fd);
    bool registered(int fd) const noexcept;
    void wake_again(int fd, std::uint32_t events);

    // --- timers ------------------------------------------------------------
    // deadline is on sys().now()'s clock. Timers with equal deadlines run in
    // the order they were added.
    TimerId add_timer(Nanos deadline, std::function<void()> callback);
    // False if it already ran or was cancelled.
    bool cancel_timer(const TimerId& id);

    // --- stepping ----------------------------------------------------------
    // One step. timeout: the longest to wait for a socket (nullopt: until the
    // next timer, or indefinitely if there is none). Returns how many socket
    // events and timers were dispatched. EINTR from epoll_wait is not an
    // error: the step dispatches nothing and runs due timers.
    SysResult<std::size_t> poll(std::optional<Nanos> timeout);
    // The earliest time poll() has work without a socket becoming ready:
    // the first timer, or now if a wake_again() is pending. nullopt: none.
    std::optional<Nanos> next_deadline();
    // poll() until stop(); returns the first epoll_wait error, if any.
    VoidResult run();
    void stop() noexcept { stopped_ = true; }
    bool stopped() const noexcept { return stopped_; }

private:
    struct Registration {
        Handler* handler = nullptr;
        std::uint32_t generation = 0;  // tells a stale event from a live one
        std::uint32_t wake_again_events = 0;
    };

    int wait_timeout_ms(std::optional<Nanos> timeout);
    std::size_t dispatch(int fd, std::uint32_t generation, std::uint32_t events);
    std::size_t run_due_timers();
    std::size_t run_wake_agains();

    Sys& sys_;
    ReactorLimits limits_;
    int epoll_fd_ = -1;
    int open_error_ = 0;
    bool stopped_ = false;
    std::vector<Registration> registrations_;  // by fd
    std::vector<int> wake_again_fds_;          // in request order
    std::vector<int> wake_again_running_;      // the pass run_wake_agains() is dispatching
    std::vector<EpollEvent> events_;
    std::map<TimerId, std::function<void()>> timers_;
    std::uint64_t next_timer_sequence_ = 0;
};

}  // namespace eagain
