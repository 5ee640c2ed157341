// What the real programs share: process set-up that has no place in core
// (signals, fd limits), kept to the few lines each tool needs.
#pragma once

#include "core/reactor.h"

#include <functional>

namespace eagain::tools {

// SIGPIPE ignored (a reset peer must not kill the process: sends use
// MSG_NOSIGNAL, this covers any other write path), and RLIMIT_NOFILE's soft
// limit raised to the hard limit (one fd per connection).
void prepare_process();

// SIGTERM and SIGINT, blocked and delivered through a signalfd registered
// with the reactor: on_signal runs inside Reactor::poll(), never in a signal
// handler. Returns false (and the errno) if it cannot be set up.
class StopSignals final : private Reactor::Handler {
public:
    StopSignals(Reactor& reactor, std::function<void(int signal)> on_signal);
    ~StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;
    int error() const noexcept { return error_; }

private:
    void on_ready(std::uint32_t events) override;

    Reactor& reactor_;
    std::function<void(int)> on_signal_;
    int fd_ = -1;
    int error_ = 0;
};

// Open file descriptors of this process (/proc/self/fd), or -1.
int open_fd_count();

}  // namespace eagain::tools
