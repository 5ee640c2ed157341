#include "core/connection_driver.h"

#include "core/assert.h"

#include <sys/epoll.h>

namespace eagain {
namespace {

// Transport::read's sink: the Connection's receive buffer, so recv() writes
// straight into the frame decoder.
struct ReceiveSink {
    Connection& connection;
    Nanos now;
    std::span<std::uint8_t> prepare(std::size_t n) { return connection.receive_space(n); }
    void commit(std::size_t k) { connection.on_received(now, k); }
};

// One input rarely needs more than a few rounds (send, which frees room,
// which lifts backpressure, ...); the bound only guards against a policy bug
// turning into an endless loop.
constexpr int max_pump_rounds = 64;

}  // namespace

ConnectionDriver::ConnectionDriver(Reactor& reactor, App& app, ConnectionRole role, const ConnectionConfig& config,
                                   const TransportOptions& transport, std::uint64_t seed)
    : reactor_(reactor),
      sys_(reactor.sys()),
      app_(app),
      transport_options_(transport),
      connection_(role, config, seed) {}

ConnectionDriver::~ConnectionDriver() {
    if (tick_timer_)
        reactor_.cancel_timer(*tick_timer_);
    transport_.reset();
}

Nanos ConnectionDriver::now() {
    return event_now_ ? *event_now_ : sys_.now();
}

// One clock read per wake-up: everything the wake-up does happens "now", and
// reading the clock per frame cost the echo server 8% of its time.
class ConnectionDriver::EventClock {
public:
    explicit EventClock(ConnectionDriver& driver) : driver_(driver), outer_(driver.event_now_) {
        if (!outer_)
            driver_.event_now_ = driver_.sys_.now();
    }
    ~EventClock() { driver_.event_now_ = outer_; }
    EventClock(const EventClock&) = delete;
    EventClock& operator=(const EventClock&) = delete;

private:
    ConnectionDriver& driver_;
    std::optional<Nanos> outer_;
};

Transport::Events& ConnectionDriver::events() noexcept {
    return *this;
}

void ConnectionDriver::start_accepted(int fd, const SockAddr& peer) {
    EAGAIN_ASSERT(!transport_);
    peer_ = peer;
    transport_.emplace(reactor_, fd, transport_options_, events(), false);
    EAGAIN_ASSERT(connection_.on_accepted(now()) == StartError::none);
    if (transport_->open_error() != 0)
        fail(transport_->open_error());
    pump();
}

void ConnectionDriver::start_connect(const SockAddr& peer) {
    EAGAIN_ASSERT(!transport_);
    peer_ = peer;
    EAGAIN_ASSERT(connection_.connect(now()) == StartError::none);
    pump();
}

SendError ConnectionDriver::send_frame(const DefaultHeader& header, std::span<const std::uint8_t> body) {
    const SendError error = connection_.send_frame(now(), header, body);
    pump();  // a no-op from inside a callback: the running pump sends it
    return error;
}

void ConnectionDriver::close() {
    connection_.close(now());
    pump();
}

void ConnectionDriver::pause_reading() {
    connection_.pause_reading(now());
    pump();
}

void ConnectionDriver::resume_reading() {
    connection_.resume_reading(now());
    pump();  // sets reading interest again (and, edge-triggered, looks again)
}

SendError ConnectionDriver::send_unframed(std::span<const std::uint8_t> bytes) {
    const SendError error = connection_.send_unframed(now(), bytes);
    pump();
    return error;
}

void ConnectionDriver::on_readable() {
    const EventClock clock(*this);
    if (!transport_ || transport_->connecting())
        return;
    const Nanos at = now();
    ReceiveSink sink{connection_, at};
    const ReadOutcome read = transport_->read(sink);
    // The peer's FIN takes effect in take_frames, after the frames before it.
    if (read.status == ReadStatus::peer_finished)
        connection_.on_peer_eof(at);
    // Frames the app sends back from on_frame are sent together by the pump
    // below, not one syscall each.
    pumping_ = true;
    connection_.take_frames(at, [&](const Frame& frame) { app_.on_frame(*this, frame); });
    pumping_ = false;
    if (read.status == ReadStatus::failed)
        fail(read.error);
    // The receive buffer filled before the socket was drained. take_frames
    // has made room; an edge-triggered socket gets no new edge for bytes
    // already queued, so look again on the next poll. (When the policy stops
    // reading instead, set_reading(true) looks again once it resumes.)
    if (read.status == ReadStatus::sink_full && transport_ && connection_.wants_read())
        reactor_.wake_again(transport_->fd(), EPOLLIN);
    pump();
}

void ConnectionDriver::on_writable() {
    const EventClock clock(*this);
    if (!transport_)
        return;
    if (transport_->connecting()) {
        const int error = transport_->finish_connect();
        if (error == 0) {
            connection_.on_connected(now());
        } else {
            connection_.on_connect_failed(now(), error);
        }
    }
    pump();
}

void ConnectionDriver::fail(int errno_value) {
    connection_.on_error(now(), errno_value);
}

void ConnectionDriver::begin_connect() {
    EAGAIN_ASSERT(!transport_);
    const Transport::ConnectStart start = Transport::start_connect(sys_, peer_);
    if (start.status == ConnectStatus::failed) {
        connection_.on_connect_failed(now(), start.error);
        return;
    }
    transport_.emplace(reactor_, start.fd, transport_options_, events(), start.status == ConnectStatus::in_progress);
    if (transport_->open_error() != 0) {
        connection_.on_connect_failed(now(), transport_->open_error());
        return;
    }
    // connect(2) may succeed at once; otherwise EPOLLOUT + SO_ERROR tell.
    if (start.status == ConnectStatus::connected)
        connection_.on_connected(now());
}

void ConnectionDriver::perform(const Action& action) {
    switch (action.kind) {
        case ActionKind::start_connect: begin_connect(); return;
        case ActionKind::shutdown_write:
            if (transport_) {
                const VoidResult r = transport_->shutdown_write();
                if (!r.ok())
                    fail(r.error);
            }
            return;
        case ActionKind::close_socket: transport_.reset(); return;
    }
}

void ConnectionDriver::report(const Event& event) {
    switch (event.kind) {
        case EventKind::established: app_.on_established(*this); break;
        case EventKind::closed: app_.on_closed(*this, event.close, event.reconnecting); break;
        case EventKind::reconnect_scheduled:
        case EventKind::heartbeat_sent:
        case EventKind::backpressure_on:
        case EventKind::backpressure_off: break;
    }
    app_.on_event(*this, event);
}

void ConnectionDriver::pump() {
    if (pumping_)
        return;
    pumping_ = true;
    bool send_blocked = false;  // EAGAIN seen: wait for EPOLLOUT, do not ask again now
    for (int round = 0; round < max_pump_rounds; ++round) {
        bool progressed = false;
        // Before the actions: a transition into connecting reaches the app
        // before that attempt's connect(2).
        forward_transitions();
        while (const std::optional<Action> action = connection_.poll_action()) {
            perform(*action);
            progressed = true;
        }
        while (const std::optional<Event> event = connection_.poll_event()) {
            report(*event);
            progressed = true;
        }
        if (!send_blocked && transport_ && !transport_->connecting() && connection_.wants_write()) {
            const std::span<const std::uint8_t> owed = connection_.pending_output();
            if (!owed.empty()) {
                const WriteOutcome sent = transport_->send(owed);
                if (sent.bytes > 0) {
                    connection_.on_sent(now(), sent.bytes);
                    progressed = true;
                }
                if (sent.status == WriteStatus::failed) {
                    fail(sent.error);
                    progressed = true;
                } else if (sent.status == WriteStatus::pending) {
                    send_blocked = true;
                }
            }
        }
        if (!progressed)
            break;
    }
    forward_transitions();
    if (transport_ && !transport_->connecting())
        transport_->set_reading(connection_.wants_read());
    schedule_tick();
    pumping_ = false;
}

void ConnectionDriver::forward_transitions() {
    // Every Connection input is followed by a pump, and one input takes only
    // a few transitions, so none has left the history yet.
    while (transitions_forwarded_ < connection_.transition_count())
        app_.on_transition(*this, connection_.transition_at(transitions_forwarded_++));
}

void ConnectionDriver::schedule_tick() {
    const std::optional<Nanos> deadline = connection_.next_deadline();
    // Traffic pushes the idle deadline later on every wake-up. A timer that
    // is already armed earlier stays: it fires early, the tick is a no-op
    // (Connection allows that) and the pump arms the real deadline then. So
    // a busy connection re-arms about once per deadline period, not once per
    // wake-up.
    if (tick_timer_ && deadline && *deadline < tick_timer_->deadline) {
        reactor_.cancel_timer(*tick_timer_);
        tick_timer_.reset();
    }
    if (!deadline || tick_timer_)
        return;
    tick_timer_ = reactor_.add_timer(*deadline, [this] {
        tick_timer_.reset();
        const EventClock clock(*this);
        connection_.tick(now());
        pump();
    });
}

}  // namespace eagain
