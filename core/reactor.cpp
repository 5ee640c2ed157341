#include "core/reactor.h"

#include "core/assert.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace eagain {
namespace {

std::uint64_t event_data(int fd, std::uint32_t generation) noexcept {
    return (static_cast<std::uint64_t>(generation) << 32) | static_cast<std::uint32_t>(fd);
}

}  // namespace

Reactor::Reactor(Sys& sys, ReactorLimits limits) : sys_(sys), limits_(limits) {
    EAGAIN_ASSERT(limits_.max_events_per_poll > 0);
    EAGAIN_ASSERT(limits_.max_fd > 0);
    const FdResult epoll = sys_.epoll_create1(EPOLL_CLOEXEC);
    if (!epoll.ok()) {
        open_error_ = epoll.error;
        return;
    }
    epoll_fd_ = epoll.value;
    events_.resize(limits_.max_events_per_poll);
}

Reactor::~Reactor() {
    // Registered sockets belong to their owners; only the epoll fd is ours.
    // close(2): never retried, the fd is gone even on EINTR.
    if (epoll_fd_ >= 0)
        (void)sys_.close(epoll_fd_);
}

VoidResult Reactor::add(int fd, std::uint32_t interest, Handler& handler) {
    EAGAIN_ASSERT(open_error_ == 0);
    EAGAIN_ASSERT(fd >= 0);
    if (fd > limits_.max_fd)
        return VoidResult::failure(EMFILE);
    if (static_cast<std::size_t>(fd) >= registrations_.size()) {
        registrations_.resize(static_cast<std::size_t>(fd) + 1);
    }
    Registration& r = registrations_[static_cast<std::size_t>(fd)];
    EAGAIN_ASSERT(r.handler == nullptr);  // one registration per fd
    // The generation changes with every registration of this fd number, so
    // an event queued for a closed socket cannot reach the fd's next owner.
    const std::uint32_t generation = r.generation + 1;
    const VoidResult result =
        sys_.epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, EpollEvent{interest, event_data(fd, generation)});
    if (!result.ok())
        return result;
    r.handler = &handler;
    r.generation = generation;
    r.wake_again_events = 0;
    return result;
}

VoidResult Reactor::modify(int fd, std::uint32_t interest) {
    EAGAIN_ASSERT(registered(fd));
    const Registration& r = registrations_[static_cast<std::size_t>(fd)];
    return sys_.epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, EpollEvent{interest, event_data(fd, r.generation)});
}

VoidResult Reactor::remove(int fd) {
    EAGAIN_ASSERT(registered(fd));
    Registration& r = registrations_[static_cast<std::size_t>(fd)];
    r.handler = nullptr;
    r.wake_again_events = 0;
    return sys_.epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, EpollEvent{});
}

bool Reactor::registered(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < registrations_.size() &&
           registrations_[static_cast<std::size_t>(fd)].handler != nullptr;
}

void Reactor::wake_again(int fd, std::uint32_t events) {
    EAGAIN_ASSERT(registered(fd));
    Registration& r = registrations_[static_cast<std::size_t>(fd)];
    if (r.wake_again_events == 0)
        wake_again_fds_.push_back(fd);
    r.wake_again_events |= events;
}

Reactor::TimerId Reactor::add_timer(Nanos deadline, std::function<void()> callback) {
    EAGAIN_ASSERT(callback != nullptr);
    const TimerId id{deadline, next_timer_sequence_++};
    timers_.emplace(id, std::move(callback));
    return id;
}

bool Reactor::cancel_timer(const TimerId& id) {
    return timers_.erase(id) == 1;
}

std::optional<Nanos> Reactor::next_deadline() {
    if (!wake_again_fds_.empty())
        return sys_.now();
    if (timers_.empty())
        return std::nullopt;
    return timers_.begin()->first.deadline;
}

int Reactor::wait_timeout_ms(std::optional<Nanos> timeout) {
    if (!wake_again_fds_.empty())
        return 0;
    std::optional<Nanos> wait = timeout;
    if (!timers_.empty()) {
        const Nanos until_timer = std::max(Nanos{0}, timers_.begin()->first.deadline - sys_.now());
        wait = wait ? std::min(*wait, until_timer) : until_timer;
    }
    if (!wait)
        return -1;
    if (*wait <= Nanos{0})
        return 0;
    // Rounded up: waking a fraction of a millisecond early would find the
    // timer not yet due and spin on zero-length waits until it is.
    const auto ms = (wait->count() + 999'999) / 1'000'000;
    return static_cast<int>(std::min<std::int64_t>(ms, INT_MAX));
}

SysResult<std::size_t> Reactor::poll(std::optional<Nanos> timeout) {
    EAGAIN_ASSERT(open_error_ == 0);
    const int timeout_ms = wait_timeout_ms(timeout);
    const FdResult ready = sys_.epoll_wait(epoll_fd_, events_, timeout_ms);
    // epoll_wait(2): EINTR means a signal arrived first; readiness is kept
    // by the kernel and reported by the next call.
    if (!ready.ok() && ready.error != EINTR)
        return SysResult<std::size_t>::failure(ready.error);

    std::size_t dispatched = 0;
    const int count = ready.ok() ? ready.value : 0;
    for (int i = 0; i < count; ++i) {
        const EpollEvent& e = events_[static_cast<std::size_t>(i)];
        dispatched +=
            dispatch(static_cast<int>(e.data & 0xffffffffU), static_cast<std::uint32_t>(e.data >> 32), e.events);
    }
    dispatched += run_wake_agains();
    dispatched += run_due_timers();
    return SysResult<std::size_t>::success(dispatched);
}

std::size_t Reactor::dispatch(int fd, std::uint32_t generation, std::uint32_t events) {
    if (!registered(fd))
        return 0;
    Registration& r = registrations_[static_cast<std::size_t>(fd)];
    if (r.generation != generation)
        return 0;
    r.handler->on_ready(events);
    return 1;
}

std::size_t Reactor::run_wake_agains() {
    // Only the requests made before this pass: a handler that asks again
    // from inside its callback runs on the next poll, after the others.
    // Two lists swapped back and forth, so a steady stream of requests
    // allocates nothing.
    EAGAIN_ASSERT(wake_again_running_.empty());
    wake_again_running_.swap(wake_again_fds_);
    std::size_t dispatched = 0;
    for (const int fd : wake_again_running_) {
        if (!registered(fd))
            continue;
        Registration& r = registrations_[static_cast<std::size_t>(fd)];
        const std::uint32_t events = std::exchange(r.wake_again_events, 0);
        if (events == 0)
            continue;
        dispatched += dispatch(fd, r.generation, events);
    }
    wake_again_running_.clear();
    return dispatched;
}

std::size_t Reactor::run_due_timers() {
    const Nanos now = sys_.now();
    // Timers added by a callback run on a later poll even if already due, so
    // a timer that re-arms itself at "now" cannot starve the sockets.
    const std::uint64_t end_sequence = next_timer_sequence_;
    std::size_t ran = 0;
    auto it = timers_.begin();
    while (it != timers_.end() && it->first.deadline <= now) {
        if (it->first.sequence >= end_sequence) {
            ++it;
            continue;
        }
        const TimerId id = it->first;
        std::function<void()> callback = std::move(it->second);
        timers_.erase(it);
        callback();
        ++ran;
        // The callback may have added or cancelled timers: look the next one
        // up again rather than trust an iterator into a changed map.
        it = timers_.upper_bound(id);
    }
    return ran;
}

VoidResult Reactor::run() {
    while (!stopped_) {
        const SysResult<std::size_t> step = poll(std::nullopt);
        if (!step.ok())
            return VoidResult::failure(step.error);
    }
    return VoidResult::success({});
}

}  // namespace eagain
