// ManualClockSys: the real kernel's sockets with a clock the test moves.
//
// epoll_wait never sleeps: it polls the kernel (timeout 0) and, when nothing
// is ready, advances the clock by the timeout it was given, as if it had
// slept exactly that long. Timer tests then assert exact virtual times on a
// real epoll instance without waiting.
#pragma once

#include "core/linux_sys.h"

namespace eagain::test {

class ManualClockSys final : public LinuxSys {
public:
    Nanos now() override { return now_; }
    void advance(Nanos by) { now_ += by; }

    FdResult epoll_wait(int epoll_fd, std::span<EpollEvent> events, int timeout_ms) override {
        ++epoll_waits;
        const FdResult r = LinuxSys::epoll_wait(epoll_fd, events, 0);
        if (r.ok() && r.value == 0 && timeout_ms > 0)
            now_ += std::chrono::milliseconds(timeout_ms);
        last_timeout_ms = timeout_ms;
        return r;
    }

    int epoll_waits = 0;
    int last_timeout_ms = 0;

private:
    Nanos now_{std::chrono::seconds(1000)};
};

}  // namespace eagain::test
