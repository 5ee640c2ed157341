#include "tools/process.h"

#include <dirent.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

namespace eagain::tools {

void prepare_process() {
    std::signal(SIGPIPE, SIG_IGN);
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &limit);
    }
}

StopSignals::StopSignals(Reactor& reactor, std::function<void(int)> on_signal)
    : reactor_(reactor), on_signal_(std::move(on_signal)) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) {
        error_ = errno;
        return;
    }
    fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd_ < 0) {
        error_ = errno;
        return;
    }
    const VoidResult r = reactor_.add(fd_, EPOLLIN, *this);
    if (!r.ok())
        error_ = r.error;
}

StopSignals::~StopSignals() {
    if (fd_ < 0)
        return;
    if (reactor_.registered(fd_))
        (void)reactor_.remove(fd_);
    ::close(fd_);
}

void StopSignals::on_ready(std::uint32_t /*events*/) {
    for (;;) {
        signalfd_siginfo info{};
        const ssize_t n = ::read(fd_, &info, sizeof info);
        if (n != static_cast<ssize_t>(sizeof info))
            return;  // EAGAIN: all read
        on_signal_(static_cast<int>(info.ssi_signo));
    }
}

int open_fd_count() {
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr)
        return -1;
    int count = 0;
    while (const dirent* entry = readdir(dir)) {
        if (entry->d_name[0] != '.')
            ++count;
    }
    closedir(dir);
    return count - 1;  // the directory stream's own fd
}

}  // namespace eagain::tools
