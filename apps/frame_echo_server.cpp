#include "apps/frame_echo_server.h"

#include "core/assert.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace eagain {

FrameEchoServer::FrameEchoServer(Reactor& reactor, const EchoServerOptions& options, Log log)
    : reactor_(reactor), sys_(reactor.sys()), options_(options), log_(std::move(log)) {}

FrameEchoServer::~FrameEchoServer() {
    stop();
}

VoidResult FrameEchoServer::open() {
    EAGAIN_ASSERT(listener_ < 0);
    // A config no connection would accept (an output limit below the
    // largest frame, say) is refused here, before anything is opened.
    if (const ConfigError error = validate(options_.connection, ConnectionRole::server); error != ConfigError::none) {
        log("refusing to open: the connection config is not valid (" + std::string(to_string(error)) + ")");
        return VoidResult::failure(EINVAL);
    }
    const FdResult listener =
        sys_.socket(options_.listen_address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!listener.ok())
        return VoidResult::failure(listener.error);
    const int fd = listener.value;
    VoidResult r = sys_.set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (r.ok())
        r = sys_.bind(fd, options_.listen_address);
    if (r.ok())
        r = sys_.listen(fd, options_.backlog);
    if (r.ok())
        r = reactor_.add(fd, EPOLLIN, *this);
    if (!r.ok()) {
        (void)sys_.close(fd);
        return r;
    }
    listener_ = fd;
    return r;
}

SockAddr FrameEchoServer::local_address() const {
    EAGAIN_ASSERT(listener_ >= 0);
    const SysResult<SockAddr> name = sys_.getsockname(listener_);
    return name.ok() ? name.value : SockAddr{};
}

void FrameEchoServer::stop() {
    for (std::optional<Reactor::TimerId>* timer : {&accept_resume_timer_, &sweep_timer_}) {
        if (*timer)
            reactor_.cancel_timer(**timer);
        timer->reset();
    }
    if (listener_ >= 0) {
        if (reactor_.registered(listener_))
            (void)reactor_.remove(listener_);
        (void)sys_.close(listener_);
        listener_ = -1;
    }
    // Destroying a driver closes its socket.
    for (const auto& driver : connections_)
        tally_.add(driver->connection().stats());
    connections_.clear();
}

void FrameEchoServer::pause_reading() {
    reading_paused_ = true;
    for (const auto& driver : connections_)
        driver->pause_reading();
}

void FrameEchoServer::resume_reading() {
    reading_paused_ = false;
    for (const auto& driver : connections_)
        driver->resume_reading();
}

ConnectionTally FrameEchoServer::tally() const {
    ConnectionTally all = tally_;
    for (const auto& driver : connections_)
        all.add(driver->connection().stats());
    return all;
}

void FrameEchoServer::on_ready(std::uint32_t /*events*/) {
    accept_one_batch();
}

void FrameEchoServer::accept_one_batch() {
    int interrupted = 0;
    for (std::size_t accepted = 0; accepted < options_.max_accepts_per_wakeup;) {
        SockAddr peer;
        const FdResult r = sys_.accept4(listener_, &peer, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (!r.ok()) {
            if (would_block(r.error))
                return;
            if (r.error == EINTR && ++interrupted <= 16)
                continue;
            // accept(2): the connection was aborted before we took it; the
            // next one may be fine.
            if (r.error == ECONNABORTED)
                continue;
            ++stats_.accept_errors;
            log("accept failed: " + errno_name(r.error) + "; pausing accepts");
            pause_accepting();
            return;
        }
        ++accepted;
        ++stats_.accepted;
        if (connections_.size() >= options_.max_connections) {
            (void)sys_.close(r.value);
            continue;
        }
        auto driver = std::make_unique<ConnectionDriver>(reactor_, static_cast<ConnectionDriver::App&>(*this),
                                                         ConnectionRole::server, options_.connection,
                                                         options_.transport, options_.seed + stats_.accepted);
        ConnectionDriver& d = *driver;
        connections_.push_back(std::move(driver));
        if (reading_paused_)
            d.pause_reading();  // before the socket: it never reads until resumed
        d.start_accepted(r.value, peer);
    }
}

void FrameEchoServer::pause_accepting() {
    if (accept_resume_timer_ || listener_ < 0)
        return;
    (void)reactor_.modify(listener_, 0);
    accept_resume_timer_ = reactor_.add_timer(sys_.now() + options_.accept_pause, [this] {
        accept_resume_timer_.reset();
        if (listener_ >= 0)
            (void)reactor_.modify(listener_, EPOLLIN);
    });
}

void FrameEchoServer::on_frame(ConnectionDriver& driver, const Frame& frame) {
    const DefaultHeader header = DefaultHeader::parse(frame.header.first<DefaultHeader::size_bytes>());
    if (driver.send_frame(header, frame.body) == SendError::none)
        ++stats_.frames_echoed;
}

void FrameEchoServer::on_transition(ConnectionDriver& /*driver*/, const Transition& transition) {
    tally_.note(transition);
}

void FrameEchoServer::on_closed(ConnectionDriver& driver, const CloseInfo& info, bool /*reconnecting*/) {
    ++stats_.closed;
    tally_.note_ending(info);
    if (info.reason == CloseReason::hostile_frame)
        ++stats_.hostile_frames;
    switch (info.reason) {
        case CloseReason::local_close:
        case CloseReason::peer_closed: break;
        case CloseReason::peer_closed_mid_frame:
        case CloseReason::reset:
        case CloseReason::broken_pipe:
        case CloseReason::io_error:
        case CloseReason::dead_peer:
        case CloseReason::connect_failed:
        case CloseReason::connect_timeout:
        case CloseReason::close_timeout:
        case CloseReason::hostile_frame:
        case CloseReason::output_limit_exceeded:
            log("closed " + driver.peer().to_string() + ": " + describe(info));
            break;
    }
    // Drivers are freed outside their own callbacks.
    if (!sweep_timer_) {
        sweep_timer_ = reactor_.add_timer(sys_.now(), [this] { sweep_finished(); });
    }
}

void FrameEchoServer::sweep_finished() {
    sweep_timer_.reset();
    std::erase_if(connections_, [this](const std::unique_ptr<ConnectionDriver>& d) {
        if (d->connection().state() != ConnectionState::closed)
            return false;
        tally_.add(d->connection().stats());
        return true;
    });
}

void FrameEchoServer::log(std::string_view line) const {
    if (log_)
        log_(line);
}

}  // namespace eagain
