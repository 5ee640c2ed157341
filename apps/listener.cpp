#include "apps/listener.h"

#include "core/assert.h"

#include <sys/epoll.h>

#include <cerrno>
#include <utility>

namespace eagain {

Listener::Listener(Reactor& reactor, const ListenerOptions& options, Accepted accepted, Failed failed)
    : reactor_(reactor), options_(options), accepted_(std::move(accepted)), failed_(std::move(failed)) {
    EAGAIN_ASSERT(options_.max_eintr_retries >= 0);
}

Listener::~Listener() {
    close();
}

VoidResult Listener::open(const SockAddr& address) {
    EAGAIN_ASSERT(fd_ < 0);
    Sys& sys = reactor_.sys();
    const FdResult socket = sys.socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!socket.ok())
        return VoidResult::failure(socket.error);
    VoidResult r = sys.set_int_option(socket.value, SOL_SOCKET, SO_REUSEADDR, 1);
    if (r.ok())
        r = sys.bind(socket.value, address);
    if (r.ok())
        r = sys.listen(socket.value, options_.backlog);
    if (r.ok())
        r = reactor_.add(socket.value, EPOLLIN, *this);
    if (!r.ok()) {
        (void)sys.close(socket.value);
        return r;
    }
    fd_ = socket.value;
    return r;
}

void Listener::close() {
    if (resume_timer_)
        reactor_.cancel_timer(*resume_timer_);
    resume_timer_.reset();
    if (fd_ < 0)
        return;
    if (reactor_.registered(fd_))
        (void)reactor_.remove(fd_);
    (void)reactor_.sys().close(fd_);
    fd_ = -1;
}

SockAddr Listener::local_address() const {
    EAGAIN_ASSERT(fd_ >= 0);
    const SysResult<SockAddr> name = reactor_.sys().getsockname(fd_);
    return name.ok() ? name.value : SockAddr{};
}

void Listener::on_ready(std::uint32_t /*events*/) {
    int interrupted = 0;
    for (std::size_t accepted = 0; accepted < options_.max_accepts_per_wakeup && fd_ >= 0;) {
        SockAddr peer;
        const FdResult r = reactor_.sys().accept4(fd_, &peer, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (!r.ok()) {
            if (would_block(r.error))
                return;
            if (r.error == EINTR && ++interrupted <= options_.max_eintr_retries)
                continue;
            // accept(2): the connection was aborted before we took it; the
            // next one may be fine.
            if (r.error == ECONNABORTED)
                continue;
            if (failed_)
                failed_(r.error);
            pause();
            return;
        }
        ++accepted;
        accepted_(r.value, peer);
    }
}

void Listener::pause() {
    if (resume_timer_ || fd_ < 0)
        return;
    (void)reactor_.modify(fd_, 0);
    resume_timer_ = reactor_.add_timer(reactor_.sys().now() + options_.accept_pause, [this] {
        resume_timer_.reset();
        if (fd_ >= 0)
            (void)reactor_.modify(fd_, EPOLLIN);
    });
}

}  // namespace eagain
