#include "core/connection.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>

namespace eagain {

namespace {

constexpr std::size_t header_bytes = DefaultHeader::size_bytes;
// reserved1 of a heartbeat frame.
constexpr std::uint32_t heartbeat_ping = 0;
constexpr std::uint32_t heartbeat_pong = 1;
// tick() expires one timer per pass; one tick can chain at most
// close -> backoff (a delay jittered down to zero) -> connecting, so a few
// passes suffice.
constexpr int tick_passes_max = 4;

FrameSpec spec_for(const ConnectionConfig& config) {
    FrameSpec spec;
    spec.max_frame_bytes = config.max_frame_bytes;
    return spec;
}

// Row i of the timer table is TimerKind i: every kind has exactly one row
// (the table's size is timer_kind_count), in the kinds' order, which is the
// order tick() runs timers due at once.
template <class Rows>
constexpr bool rows_in_kind_order(const Rows& rows) {
    for (std::size_t i = 0; i < rows.size(); ++i) {
        if (static_cast<std::size_t>(rows[i].kind) != i) {
            return false;
        }
    }
    return true;
}

const ConnectionConfig& checked(const ConnectionConfig& config, ConnectionRole role) {
    EAGAIN_ASSERT(validate(config, role) == ConfigError::none);
    return config;
}

}  // namespace

// ---------------------------------------------------------------------------
// Names

std::string_view to_string(ConnectionRole role) noexcept {
    switch (role) {
        case ConnectionRole::client: return "client";
        case ConnectionRole::server: return "server";
    }
    return "unknown ConnectionRole";
}

std::string_view to_string(ConnectionState state) noexcept {
    switch (state) {
        case ConnectionState::idle: return "idle";
        case ConnectionState::connecting: return "connecting";
        case ConnectionState::established: return "established";
        case ConnectionState::half_closed_local: return "half_closed_local";
        case ConnectionState::half_closed_remote: return "half_closed_remote";
        case ConnectionState::closing: return "closing";
        case ConnectionState::closed: return "closed";
        case ConnectionState::backoff: return "backoff";
    }
    return "unknown ConnectionState";
}

std::string_view to_string(CloseReason reason) noexcept {
    switch (reason) {
        case CloseReason::local_close: return "local_close";
        case CloseReason::peer_closed: return "peer_closed";
        case CloseReason::peer_closed_mid_frame: return "peer_closed_mid_frame";
        case CloseReason::reset: return "reset";
        case CloseReason::broken_pipe: return "broken_pipe";
        case CloseReason::io_error: return "io_error";
        case CloseReason::dead_peer: return "dead_peer";
        case CloseReason::connect_failed: return "connect_failed";
        case CloseReason::connect_timeout: return "connect_timeout";
        case CloseReason::close_timeout: return "close_timeout";
        case CloseReason::hostile_frame: return "hostile_frame";
        case CloseReason::output_limit_exceeded: return "output_limit_exceeded";
    }
    return "unknown CloseReason";
}

std::string describe(const CloseInfo& info) {
    std::string text(to_string(info.reason));
    if (info.errno_value != 0) {
        text += " (" + errno_name(info.errno_value) + ")";
    }
    if (info.frame_error) {
        text += ": " + describe(*info.frame_error);
    }
    return text;
}

std::string_view to_string(ConfigError error) noexcept {
    switch (error) {
        case ConfigError::none: return "none";
        case ConfigError::max_frame_below_header: return "max_frame_below_header";
        case ConfigError::max_frame_above_length_field: return "max_frame_above_length_field";
        case ConfigError::receive_buffer_below_max_frame: return "receive_buffer_below_max_frame";
        case ConfigError::dead_peer_without_heartbeat: return "dead_peer_without_heartbeat";
        case ConfigError::negative_duration: return "negative_duration";
        case ConfigError::water_marks_out_of_order: return "water_marks_out_of_order";
        case ConfigError::limit_below_header: return "limit_below_header";
        case ConfigError::output_limit_below_max_frame: return "output_limit_below_max_frame";
        case ConfigError::jitter_above_100_percent: return "jitter_above_100_percent";
        case ConfigError::reconnect_delay_invalid: return "reconnect_delay_invalid";
        case ConfigError::reconnect_on_server: return "reconnect_on_server";
    }
    return "unknown ConfigError";
}

std::string_view to_string(ActionKind kind) noexcept {
    switch (kind) {
        case ActionKind::start_connect: return "start_connect";
        case ActionKind::shutdown_write: return "shutdown_write";
        case ActionKind::close_socket: return "close_socket";
    }
    return "unknown ActionKind";
}

std::string_view to_string(EventKind kind) noexcept {
    switch (kind) {
        case EventKind::established: return "established";
        case EventKind::closed: return "closed";
        case EventKind::reconnect_scheduled: return "reconnect_scheduled";
        case EventKind::heartbeat_sent: return "heartbeat_sent";
        case EventKind::backpressure_on: return "backpressure_on";
        case EventKind::backpressure_off: return "backpressure_off";
    }
    return "unknown EventKind";
}

std::string_view to_string(SendError error) noexcept {
    switch (error) {
        case SendError::none: return "none";
        case SendError::wrong_state: return "wrong_state";
        case SendError::frame_too_large: return "frame_too_large";
        case SendError::output_limit_exceeded: return "output_limit_exceeded";
    }
    return "unknown SendError";
}

std::string_view to_string(StartError error) noexcept {
    switch (error) {
        case StartError::none: return "none";
        case StartError::wrong_state: return "wrong_state";
        case StartError::wrong_role: return "wrong_role";
    }
    return "unknown StartError";
}

std::string_view to_string(TimerKind kind) noexcept {
    switch (kind) {
        case TimerKind::connect_timeout: return "connect_timeout";
        case TimerKind::reconnect: return "reconnect";
        case TimerKind::close_timeout: return "close_timeout";
        case TimerKind::dead_peer: return "dead_peer";
        case TimerKind::heartbeat: return "heartbeat";
    }
    return "unknown TimerKind";
}

std::string to_string(const Transition& transition) {
    return std::string(to_string(transition.from)) + " => " + std::string(to_string(transition.to));
}

// ---------------------------------------------------------------------------
// Rules

bool transition_allowed(ConnectionState from, ConnectionState to) noexcept {
    using S = ConnectionState;
    switch (from) {
        case S::idle: return to == S::connecting || to == S::established || to == S::closed;
        case S::connecting: return to == S::established || to == S::backoff || to == S::closed;
        case S::established:
            return to == S::half_closed_remote || to == S::closing || to == S::closed || to == S::backoff;
        // Only a local close gets here, and it never reconnects.
        case S::half_closed_local: return to == S::closed;
        case S::half_closed_remote: return to == S::closing || to == S::closed || to == S::backoff;
        case S::closing: return to == S::half_closed_local || to == S::closed || to == S::backoff;
        case S::closed: return false;
        case S::backoff: return to == S::connecting || to == S::closed;
    }
    return false;
}

ConfigError validate(const ConnectionConfig& config, ConnectionRole role) noexcept {
    if (config.max_frame_bytes < header_bytes) {
        return ConfigError::max_frame_below_header;
    }
    if (config.max_frame_bytes - header_bytes > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
        return ConfigError::max_frame_above_length_field;
    }
    if (config.receive_buffer_bytes != 0 && config.receive_buffer_bytes < config.max_frame_bytes) {
        return ConfigError::receive_buffer_below_max_frame;
    }
    const Nanos zero{0};
    if (config.heartbeat_idle_timeout < zero || config.connect_timeout < zero || config.close_timeout < zero ||
        config.reconnect_initial_delay < zero || config.reconnect_max_delay < zero) {
        return ConfigError::negative_duration;
    }
    if (config.dead_peer_intervals > 0 && config.heartbeat_idle_timeout == zero) {
        return ConfigError::dead_peer_without_heartbeat;
    }
    if (config.output_low_water_bytes > config.output_high_water_bytes ||
        config.output_high_water_bytes >= config.output_limit_bytes) {
        return ConfigError::water_marks_out_of_order;
    }
    if (config.output_limit_bytes < header_bytes) {
        return ConfigError::limit_below_header;
    }
    if (config.output_limit_bytes < config.max_frame_bytes) {
        return ConfigError::output_limit_below_max_frame;
    }
    if (config.reconnect_jitter_percent > 100) {
        return ConfigError::jitter_above_100_percent;
    }
    if (config.reconnect) {
        if (role == ConnectionRole::server) {
            return ConfigError::reconnect_on_server;
        }
        if (config.reconnect_initial_delay == zero || config.reconnect_max_delay < config.reconnect_initial_delay) {
            return ConfigError::reconnect_delay_invalid;
        }
    }
    return ConfigError::none;
}

// ---------------------------------------------------------------------------
// Construction, state, history

Connection::Connection(ConnectionRole role, const ConnectionConfig& config, std::uint64_t jitter_seed)
    : role_(role),
      config_(checked(config, role)),
      spec_(spec_for(config)),
      rng_(jitter_seed),
      decoder_(spec_, config.receive_buffer_bytes),
      output_(config.output_limit_bytes) {}

void Connection::observe(Nanos now) noexcept {
    EAGAIN_ASSERT(now >= now_);  // time never runs backwards
    now_ = now;
}

void Connection::set_state(Nanos now, ConnectionState next) {
    EAGAIN_ASSERT(transition_allowed(state_, next));
    history_[transition_count_ % history_capacity] = Transition{now, state_, next};
    ++transition_count_;
    state_ = next;
}

std::vector<Transition> Connection::transitions() const {
    const std::uint64_t kept = std::min<std::uint64_t>(transition_count_, history_capacity);
    std::vector<Transition> out;
    out.reserve(static_cast<std::size_t>(kept));
    for (std::uint64_t i = transition_count_ - kept; i < transition_count_; ++i) {
        out.push_back(history_[i % history_capacity]);
    }
    return out;
}

const Transition& Connection::transition_at(std::uint64_t n) const noexcept {
    EAGAIN_ASSERT(n < transition_count_);
    EAGAIN_ASSERT(transition_count_ - n <= history_capacity);  // still kept
    return history_[n % history_capacity];
}

bool Connection::has_socket() const noexcept {
    switch (state_) {
        case ConnectionState::connecting:
        case ConnectionState::established:
        case ConnectionState::half_closed_local:
        case ConnectionState::half_closed_remote:
        case ConnectionState::closing: return true;
        case ConnectionState::idle:
        case ConnectionState::closed:
        case ConnectionState::backoff: return false;
    }
    return false;
}

// Received frames still go to the app.
bool Connection::delivering() const noexcept {
    return has_socket() && state_ != ConnectionState::connecting;
}

// The peer may still send us bytes (ignoring backpressure).
bool Connection::reading() const noexcept {
    switch (state_) {
        case ConnectionState::established:
        case ConnectionState::half_closed_local:
        case ConnectionState::closing: return !peer_eof_;
        case ConnectionState::idle:
        case ConnectionState::connecting:
        case ConnectionState::half_closed_remote:
        case ConnectionState::closed:
        case ConnectionState::backoff: return false;
    }
    return false;
}

// Buffered output may still go out.
bool Connection::sending() const noexcept {
    return state_ == ConnectionState::established || state_ == ConnectionState::half_closed_remote ||
           state_ == ConnectionState::closing;
}

bool Connection::app_may_send() const noexcept {
    return state_ == ConnectionState::established || state_ == ConnectionState::half_closed_remote;
}

// Not while the app has paused reading: a pong we do not read is no sign of
// anything.
bool Connection::dead_peer_watched() const noexcept {
    return config_.dead_peer_intervals > 0 && reading() && !read_paused_;
}

// ---------------------------------------------------------------------------
// Starting and ending a socket

void Connection::reset_socket_state() {
    decoder_ = FrameDecoder(spec_, config_.receive_buffer_bytes);
    output_.clear();
    output_.release_if_empty();
    receive_offered_ = 0;
    frames_pending_ = false;
    peer_eof_ = false;
    backpressure_ = false;
    closing_reason_ = CloseReason::local_close;
    close_deadline_.reset();
}

void Connection::start_connect(Nanos now) {
    reset_socket_state();
    ++stats_.connect_attempts;
    set_state(now, ConnectionState::connecting);
    connect_deadline_ = now + config_.connect_timeout;
    actions_.push(Action{ActionKind::start_connect, static_cast<std::uint32_t>(stats_.connect_attempts)});
}

void Connection::establish(Nanos now) {
    set_state(now, ConnectionState::established);
    retry_ = 0;  // a success resets the backoff
    idle_since_ = now;
    alive_since_ = now;
    Event event;
    event.kind = EventKind::established;
    event.at = now;
    events_.push(event);
}

// The one way a connection ends, gracefully or not: whatever is still
// buffered for output is dropped, the socket (if any) is closed, and the
// client either schedules a retry or the machine is closed for good. May run
// inside take_frames()' callback, so it leaves the decoder alone (the next
// socket gets a fresh one).
void Connection::end(Nanos now, const CloseInfo& info) {
    if (has_socket()) {
        actions_.push(Action{ActionKind::close_socket, 0});
    }
    output_.clear();
    backpressure_ = false;
    close_deadline_.reset();  // the graceful close, if one was under way, is over
    close_info_ = info;

    const bool retry = role_ == ConnectionRole::client && config_.reconnect && !local_close_ &&
                       (config_.reconnect_attempts_max == 0 || retry_ < config_.reconnect_attempts_max);
    Event closed;
    closed.kind = EventKind::closed;
    closed.at = now;
    closed.close = info;
    closed.reconnecting = retry;
    events_.push(closed);
    if (!retry) {
        set_state(now, ConnectionState::closed);
        return;
    }
    ++retry_;
    reconnect_at_ = now + backoff_delay(retry_);
    set_state(now, ConnectionState::backoff);
    Event scheduled;
    scheduled.kind = EventKind::reconnect_scheduled;
    scheduled.at = now;
    scheduled.reconnect_at = reconnect_at_;
    scheduled.retry = retry_;
    events_.push(scheduled);
}

Nanos Connection::backoff_delay(std::uint32_t retry) {
    EAGAIN_ASSERT(retry >= 1);
    const Nanos cap = config_.reconnect_max_delay;
    Nanos base = config_.reconnect_initial_delay;
    // At most 63 doublings before base reaches any cap.
    for (std::uint32_t k = 1; k < retry && base < cap; ++k) {
        base = base > cap / 2 ? cap : base * 2;
    }
    base = std::min(base, cap);
    if (config_.reconnect_jitter_percent == 0) {
        return base;
    }
    // Integer percent of base without overflowing base * percent.
    const std::int64_t b = base.count();
    const std::int64_t percent = config_.reconnect_jitter_percent;
    const std::int64_t spread = b / 100 * percent + b % 100 * percent / 100;
    const auto draw = rng_.below(2 * static_cast<std::uint64_t>(spread) + 1);
    const std::int64_t offset = static_cast<std::int64_t>(draw) - spread;  // in [-spread, spread]
    if (offset > cap.count() - b) {
        return cap;
    }
    return Nanos{b + offset};
}

void Connection::arm_close_deadline(Nanos now) noexcept {
    if (!close_deadline_ && config_.close_timeout > Nanos{0}) {
        close_deadline_ = now + config_.close_timeout;
    }
}

void Connection::enter_closing(Nanos now, CloseReason reason) {
    arm_close_deadline(now);
    closing_reason_ = reason;
    set_state(now, ConnectionState::closing);
}

// What follows once every received frame was delivered: a peer FIN moves
// half_closed_remote on to closing, and closing ends once the output is
// flushed (with our FIN first if the peer has not sent its own).
void Connection::settle(Nanos now) {
    if (frames_pending_) {
        return;  // take_frames() first: frames before a FIN go to the app
    }
    const bool mid_frame = !decoder_.buffered().empty();
    switch (state_) {
        case ConnectionState::half_closed_remote:
            enter_closing(now, mid_frame ? CloseReason::peer_closed_mid_frame : CloseReason::peer_closed);
            break;
        case ConnectionState::half_closed_local:
            if (peer_eof_) {
                end(now, CloseInfo{mid_frame ? CloseReason::peer_closed_mid_frame : CloseReason::local_close, 0, {}});
            }
            return;
        case ConnectionState::closing: break;
        case ConnectionState::idle:
        case ConnectionState::connecting:
        case ConnectionState::established:
        case ConnectionState::closed:
        case ConnectionState::backoff: return;
    }
    // closing
    if (!output_.empty()) {
        return;
    }
    if (peer_eof_) {
        const bool lost_bytes = mid_frame && closing_reason_ == CloseReason::local_close;
        end(now, CloseInfo{lost_bytes ? CloseReason::peer_closed_mid_frame : closing_reason_, 0, {}});
        return;
    }
    set_state(now, ConnectionState::half_closed_local);
    actions_.push(Action{ActionKind::shutdown_write, 0});
}

// ---------------------------------------------------------------------------
// App inputs

StartError Connection::connect(Nanos now) {
    observe(now);
    if (role_ != ConnectionRole::client) {
        return StartError::wrong_role;
    }
    if (state_ != ConnectionState::idle) {
        return StartError::wrong_state;
    }
    start_connect(now);
    return StartError::none;
}

StartError Connection::on_accepted(Nanos now) {
    observe(now);
    if (role_ != ConnectionRole::server) {
        return StartError::wrong_role;
    }
    if (state_ != ConnectionState::idle) {
        return StartError::wrong_state;
    }
    reset_socket_state();
    establish(now);
    return StartError::none;
}

SendError Connection::send_frame(Nanos now, const DefaultHeader& header, std::span<const std::uint8_t> body) {
    observe(now);
    if (!app_may_send()) {
        return SendError::wrong_state;
    }
    if (body.size() > config_.max_frame_bytes - header_bytes) {
        return SendError::frame_too_large;
    }
    const EncodeError error = encode_frame(spec_, header.bytes(), body, output_);
    if (error == EncodeError::buffer_full) {
        end(now, CloseInfo{CloseReason::output_limit_exceeded, 0, {}});
        return SendError::output_limit_exceeded;
    }
    // The size check above and validate()'s bound on max_frame_bytes leave
    // nothing else the encoder could refuse.
    EAGAIN_ASSERT(error == EncodeError::none);
    ++stats_.frames_queued;
    note_output_peak();
    update_backpressure(now);
    return SendError::none;
}

SendError Connection::send_unframed(Nanos now, std::span<const std::uint8_t> bytes) {
    observe(now);
    if (!app_may_send()) {
        return SendError::wrong_state;
    }
    if (!output_.append(bytes)) {
        end(now, CloseInfo{CloseReason::output_limit_exceeded, 0, {}});
        return SendError::output_limit_exceeded;
    }
    note_output_peak();
    update_backpressure(now);
    return SendError::none;
}

void Connection::close(Nanos now) {
    observe(now);
    local_close_ = true;
    switch (state_) {
        case ConnectionState::idle:
        case ConnectionState::connecting:
        case ConnectionState::backoff: end(now, CloseInfo{CloseReason::local_close, 0, {}}); return;
        case ConnectionState::established:
        case ConnectionState::half_closed_remote:
            enter_closing(now, CloseReason::local_close);
            settle(now);
            return;
        case ConnectionState::closing:
        case ConnectionState::half_closed_local:
        case ConnectionState::closed: return;  // already on its way
    }
}

void Connection::pause_reading(Nanos now) {
    observe(now);
    read_paused_ = true;
}

void Connection::resume_reading(Nanos now) {
    observe(now);
    if (!read_paused_) {
        return;
    }
    read_paused_ = false;
    alive_since_ = now;  // the peer could not be heard while paused
}

// ---------------------------------------------------------------------------
// Socket inputs

void Connection::on_connected(Nanos now) {
    observe(now);
    if (state_ != ConnectionState::connecting) {
        ++stats_.stale_inputs;
        return;
    }
    establish(now);
}

void Connection::on_connect_failed(Nanos now, int errno_value) {
    observe(now);
    EAGAIN_ASSERT(errno_value != 0);
    if (state_ != ConnectionState::connecting) {
        ++stats_.stale_inputs;
        return;
    }
    end(now, CloseInfo{CloseReason::connect_failed, errno_value, {}});
}

std::span<std::uint8_t> Connection::receive_space(std::size_t n) {
    if (!wants_read()) {
        return {};
    }
    const std::span<std::uint8_t> space = decoder_.prepare(n);
    receive_offered_ = space.size();
    return space;
}

void Connection::on_received(Nanos now, std::size_t k) {
    observe(now);
    EAGAIN_ASSERT(k <= receive_offered_);
    if (receive_offered_ == 0) {
        return;
    }
    decoder_.commit(k);
    receive_offered_ = 0;
    if (k == 0) {
        return;
    }
    stats_.bytes_received += k;
    idle_since_ = now;
    alive_since_ = now;
    frames_pending_ = true;
}

void Connection::on_peer_eof(Nanos now) {
    observe(now);
    if (!reading()) {
        ++stats_.stale_inputs;
        return;
    }
    peer_eof_ = true;
    if (state_ == ConnectionState::established) {
        arm_close_deadline(now);
        set_state(now, ConnectionState::half_closed_remote);
    }
    settle(now);
}

void Connection::on_sent(Nanos now, std::size_t k) {
    observe(now);
    EAGAIN_ASSERT(k <= pending_output().size());
    if (k == 0) {
        return;
    }
    output_.consume(k);
    idle_since_ = now;
    if (backpressure_) {
        alive_since_ = now;  // not reading: the peer taking our bytes is its sign of life
    }
    update_backpressure(now);
    settle(now);
}

void Connection::on_error(Nanos now, int errno_value) {
    observe(now);
    EAGAIN_ASSERT(errno_value != 0);
    EAGAIN_ASSERT(!would_block(errno_value));  // the driver waits for readiness instead
    EAGAIN_ASSERT(errno_value != EINTR);       // the driver retries instead
    if (!has_socket()) {
        ++stats_.stale_inputs;
        return;
    }
    CloseReason reason = CloseReason::io_error;
    if (state_ == ConnectionState::connecting) {
        reason = CloseReason::connect_failed;
    } else if (errno_value == ECONNRESET) {
        reason = CloseReason::reset;
    } else if (errno_value == EPIPE) {
        reason = CloseReason::broken_pipe;
    }
    end(now, CloseInfo{reason, errno_value, {}});
}

void Connection::tick(Nanos now) {
    observe(now);
    for (int pass = 0; pass < tick_passes_max; ++pass) {
        // Of the timers due, the first in table order: expiring one can
        // disarm or move the others, so each pass looks again.
        const auto due = std::find_if(timers_.begin(), timers_.end(), [&](const TimerEntry& timer) {
            const std::optional<Nanos> at = (this->*timer.deadline)();
            return at && *at <= now;
        });
        if (due == timers_.end()) {
            return;
        }
        (this->*due->expire)(now);
    }
}

// ---------------------------------------------------------------------------
// Timers: one row per TimerKind, its deadline and its expiry side by side

constexpr std::array<Connection::TimerEntry, timer_kind_count> Connection::timers_{{
    {TimerKind::connect_timeout, &Connection::connect_timeout_deadline, &Connection::expire_connect_timeout},
    {TimerKind::reconnect, &Connection::reconnect_deadline, &Connection::expire_reconnect},
    {TimerKind::close_timeout, &Connection::close_timeout_deadline, &Connection::expire_close_timeout},
    {TimerKind::dead_peer, &Connection::dead_peer_deadline, &Connection::expire_dead_peer},
    {TimerKind::heartbeat, &Connection::heartbeat_deadline, &Connection::expire_heartbeat},
}};

std::optional<Nanos> Connection::connect_timeout_deadline() const noexcept {
    if (state_ != ConnectionState::connecting || config_.connect_timeout == Nanos{0}) {
        return std::nullopt;
    }
    return connect_deadline_;
}

void Connection::expire_connect_timeout(Nanos now) {
    end(now, CloseInfo{CloseReason::connect_timeout, ETIMEDOUT, {}});
}

std::optional<Nanos> Connection::reconnect_deadline() const noexcept {
    if (state_ != ConnectionState::backoff) {
        return std::nullopt;
    }
    return reconnect_at_;
}

void Connection::expire_reconnect(Nanos now) {
    start_connect(now);
}

std::optional<Nanos> Connection::close_timeout_deadline() const noexcept {
    return close_deadline_;  // armed only while a socket is open, cleared by end()
}

void Connection::expire_close_timeout(Nanos now) {
    end(now, CloseInfo{CloseReason::close_timeout, 0, {}});
}

std::optional<Nanos> Connection::dead_peer_deadline() const noexcept {
    if (!dead_peer_watched()) {
        return std::nullopt;
    }
    return alive_since_ + config_.heartbeat_idle_timeout * config_.dead_peer_intervals;
}

void Connection::expire_dead_peer(Nanos now) {
    end(now, CloseInfo{CloseReason::dead_peer, 0, {}});
}

std::optional<Nanos> Connection::heartbeat_deadline() const noexcept {
    if (state_ != ConnectionState::established || config_.heartbeat_idle_timeout == Nanos{0}) {
        return std::nullopt;
    }
    return idle_since_ + config_.heartbeat_idle_timeout;
}

void Connection::expire_heartbeat(Nanos now) {
    idle_since_ = now;  // the next ping is one idle period away, sent or not
    // Unsent output already is traffic for the peer; a ping behind it would
    // add nothing.
    if (!output_.empty() || !queue_heartbeat(now, next_ping_seq_, heartbeat_ping)) {
        return;
    }
    ++next_ping_seq_;
    ++stats_.pings_sent;
    Event event;
    event.kind = EventKind::heartbeat_sent;
    event.at = now;
    events_.push(event);
}

// ---------------------------------------------------------------------------
// Heartbeats

bool Connection::is_heartbeat_header(std::span<const std::uint8_t> header) const noexcept {
    EAGAIN_ASSERT(header.size() == header_bytes);
    return load_uint_fixed<4>(header.data(), ByteOrder::big_endian) == config_.heartbeat_cmd;
}

void Connection::on_heartbeat(Nanos now, std::span<const std::uint8_t> header) {
    const DefaultHeader parsed = DefaultHeader::parse(header.first<header_bytes>());
    if (parsed.reserved1 != heartbeat_ping) {
        ++stats_.pongs_received;
        return;
    }
    ++stats_.pings_received;
    if (app_may_send() && queue_heartbeat(now, parsed.seq, heartbeat_pong)) {
        ++stats_.pongs_sent;
    }
}

bool Connection::queue_heartbeat(Nanos now, std::uint32_t seq, std::uint32_t kind) {
    const DefaultHeader header{config_.heartbeat_cmd, seq, 0, kind, 0};
    const EncodeError error = encode_frame(spec_, header.bytes(), {}, output_);
    if (error == EncodeError::buffer_full) {
        end(now, CloseInfo{CloseReason::output_limit_exceeded, 0, {}});
        return false;
    }
    EAGAIN_ASSERT(error == EncodeError::none);
    note_output_peak();
    update_backpressure(now);
    return true;
}

void Connection::after_drain(Nanos now, const DecodeResult& result) {
    frames_pending_ = false;
    if (!delivering()) {
        return;  // ended from inside the callback; the next socket gets a fresh decoder
    }
    if (result.status == DecodeStatus::failed) {
        end(now, CloseInfo{CloseReason::hostile_frame, 0, result.error});
        return;
    }
    settle(now);
}

// ---------------------------------------------------------------------------
// Output side

void Connection::update_backpressure(Nanos now) {
    Event event;
    event.at = now;
    if (!backpressure_ && output_.size() > config_.output_high_water_bytes) {
        backpressure_ = true;
        alive_since_ = now;  // reading stops now; liveness is judged by sends from here
        event.kind = EventKind::backpressure_on;
        events_.push(event);
    } else if (backpressure_ && output_.size() <= config_.output_low_water_bytes) {
        backpressure_ = false;
        event.kind = EventKind::backpressure_off;
        events_.push(event);
    }
}

void Connection::note_output_peak() noexcept {
    stats_.max_output_bytes = std::max<std::uint64_t>(stats_.max_output_bytes, output_.size());
}

std::span<const std::uint8_t> Connection::pending_output() const noexcept {
    if (!sending()) {
        return {};
    }
    return output_.readable();
}

bool Connection::wants_read() const noexcept {
    return reading() && !backpressure_ && !read_paused_ && decoder_.buffer().writable_bytes() > 0;
}

bool Connection::wants_write() const noexcept {
    return state_ == ConnectionState::connecting || (sending() && !output_.empty());
}

std::optional<Nanos> Connection::next_deadline() const noexcept {
    const std::optional<ConnectionTimer> timer = next_timer();
    if (!timer) {
        return std::nullopt;
    }
    return timer->at;
}

std::optional<ConnectionTimer> Connection::next_timer() const noexcept {
    static_assert(rows_in_kind_order(timers_), "one timer row per TimerKind, in its order");
    std::optional<ConnectionTimer> earliest;
    for (const TimerEntry& timer : timers_) {
        const std::optional<Nanos> at = (this->*timer.deadline)();
        if (at && (!earliest || *at < earliest->at)) {
            earliest = ConnectionTimer{timer.kind, *at};
        }
    }
    return earliest;
}

std::optional<Action> Connection::poll_action() noexcept {
    return actions_.pop();
}

std::optional<Event> Connection::poll_event() noexcept {
    return events_.pop();
}

}  // namespace eagain
