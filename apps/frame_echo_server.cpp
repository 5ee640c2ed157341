#include "apps/frame_echo_server.h"

#include "core/assert.h"

#include <algorithm>
#include <cerrno>
#include <string>

namespace eagain {

namespace {

ListenerOptions listener_options(const EchoServerOptions& options) {
    ListenerOptions listener;
    listener.backlog = options.backlog;
    listener.max_accepts_per_wakeup = options.max_accepts_per_wakeup;
    listener.accept_pause = options.accept_pause;
    return listener;
}

}  // namespace

FrameEchoServer::FrameEchoServer(Reactor& reactor, const EchoServerOptions& options, Log log)
    : reactor_(reactor),
      sys_(reactor.sys()),
      options_(options),
      log_(std::move(log)),
      listener_(
          reactor, listener_options(options), [this](int fd, const SockAddr& peer) { accepted(fd, peer); },
          [this](int error) { accept_failed(error); }) {}

FrameEchoServer::~FrameEchoServer() {
    stop();
}

VoidResult FrameEchoServer::open() {
    EAGAIN_ASSERT(!listener_.is_open());
    // A config no connection would accept (an output limit below the
    // largest frame, say) is refused here, before anything is opened.
    if (const ConfigError error = validate(options_.connection, ConnectionRole::server); error != ConfigError::none) {
        log("refusing to open: the connection config is not valid (" + std::string(to_string(error)) + ")");
        return VoidResult::failure(EINVAL);
    }
    return listener_.open(options_.listen_address);
}

SockAddr FrameEchoServer::local_address() const {
    return listener_.local_address();
}

void FrameEchoServer::stop() {
    listener_.close();
    if (sweep_timer_)
        reactor_.cancel_timer(*sweep_timer_);
    sweep_timer_.reset();
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

void FrameEchoServer::accepted(int fd, const SockAddr& peer) {
    ++stats_.accepted;
    if (connections_.size() >= options_.max_connections) {
        (void)sys_.close(fd);
        return;
    }
    auto driver =
        std::make_unique<ConnectionDriver>(reactor_, static_cast<ConnectionDriver::App&>(*this), ConnectionRole::server,
                                           options_.connection, options_.transport, options_.seed + stats_.accepted);
    ConnectionDriver& d = *driver;
    connections_.push_back(std::move(driver));
    if (reading_paused_)
        d.pause_reading();  // before the socket: it never reads until resumed
    d.start_accepted(fd, peer);
}

void FrameEchoServer::accept_failed(int error) {
    ++stats_.accept_errors;
    log("accept failed: " + errno_name(error) + "; pausing accepts");
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
