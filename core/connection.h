// Connection: the policy of one TCP connection (client or server side), as a
// sans-IO state machine.
//
// Everything that decides what a connection does lives here: its states, the
// application heartbeat, dead-peer detection, connect timeout, reconnect with
// backoff, output backpressure and limits, and how it closes. Nothing here
// performs I/O or reads a clock: a driver (core/transport + core/reactor)
// moves bytes and socket events in and carries actions out, and every call
// that can depend on time takes `now`. Calls must see `now` non-decreasing.
//
// States (ConnectionState), with the edges the machine allows:
//
//   idle ──connect()──▶ connecting ──on_connected──▶ established
//   idle ──on_accepted()────────────────────────────▶ established
//   connecting ──failed / connect_timeout──▶ backoff (client with reconnect) | closed
//   established ──on_peer_eof──▶ half_closed_remote ──frames taken──▶ closing
//   established ──close()──▶ closing ──output flushed──▶ half_closed_local ──peer FIN──▶ closed
//   closing ──output flushed, peer FIN already seen──▶ closed | backoff
//   any state with a socket ──error, dead peer, hostile frame, limit, close_timeout──▶ closed | backoff
//   backoff ──reconnect time──▶ connecting;   backoff, idle ──close()──▶ closed
//
// `closing` means "no more frames from the app; flushing what is owed". A
// client whose config enables reconnect goes to `backoff` instead of `closed`
// whenever it loses a connection it did not close itself (close() was never
// called). `closed` is final: make a new Connection to start over.
//
// Method groups (none performs I/O):
//   getters     state(), role(), config(), close_info(), stats(),
//               backpressure(), transitions(), transition_count(),
//               transition_at(), reading_paused()
//   app inputs  connect(), on_accepted(), send_frame(), close(),
//               pause_reading(), resume_reading()
//   misbehaving-peer hook
//               send_unframed() (a harness playing a broken peer; see there)
//   socket inputs (from the driver)
//               on_connected(), on_connect_failed(), receive_space() + on_received(),
//               on_sent(), on_peer_eof(), on_error(), tick()
//   outputs     take_frames() (frames for the app), pending_output() (bytes to
//               send), wants_read(), wants_write(), next_deadline() and
//               next_timer(), poll_action(), poll_event()
//
// The driver's loop, after any input:
//   1. after on_received() or on_peer_eof(): take_frames(now, on_frame) —
//      frames go to the app in the callback, as views valid only during it.
//      A FIN or a hostile frame takes effect here, after the frames before
//      it were delivered, so skipping this stalls the close;
//   2. poll_action() until empty, performing each in order (start a connect,
//      shutdown(SHUT_WR), close the socket);
//   3. poll_event() until empty, telling the app;
//   4. while wants_write(): send pending_output(), then on_sent(now, k) —
//      which may queue more actions/events, so go back to 2 until quiet;
//   5. set the socket's interest from wants_read()/wants_write() and run
//      tick(now) at next_deadline(). A tick before the deadline does nothing.
// Socket inputs that arrive for a socket the machine has already given up on
// (an error after close_socket, say) are ignored and counted in
// stats().stale_inputs.
//
// Heartbeats (wire form, the default 20-byte header): a heartbeat is a
// header-only frame (body_len 0) whose cmd is config.heartbeat_cmd; reserved1
// is 0 for a ping and 1 for a pong, which echoes the ping's seq. A ping is
// sent after config.heartbeat_idle_timeout with no byte sent or received in
// either direction, so none while traffic flows; a ping received is answered
// with a pong. Heartbeat frames are consumed here and never reach the app; a
// frame with the heartbeat cmd and a non-empty body is an app frame.
//
// Timers (TimerKind): each has one entry in a table in connection.cpp that
// gives both its deadline in the current state and what its expiry does, so
// next_deadline() and tick() read the same rows and cannot drift apart.
//
// Dead peer: config.dead_peer_intervals heartbeat intervals without receiving
// a byte close the connection with dead_peer. The pong is what keeps an idle
// but alive peer from looking dead. While output backpressure is on we stop
// reading, so there sending progress (on_sent with k > 0) counts as proof of
// life instead. Limitation: a one-way stream whose receiver never answers
// looks dead to its sender (nothing is received, and no ping goes out while
// it sends); such a protocol sets dead_peer_intervals = 0.
#pragma once

#include "core/assert.h"
#include "core/byte_buffer.h"
#include "core/frame.h"
#include "core/rng.h"
#include "core/sys.h"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eagain {

enum class ConnectionRole : std::uint8_t { client, server };
std::string_view to_string(ConnectionRole role) noexcept;

enum class ConnectionState : std::uint8_t {
    idle,                // not started: a client before connect(), a server before on_accepted()
    connecting,          // a connect is under way
    established,         // both directions open
    half_closed_local,   // we sent our FIN (shutdown(SHUT_WR) done); still reading until the peer's FIN
    half_closed_remote,  // the peer's FIN seen; frames still buffered go to the app
    closing,             // no more app frames; flushing the output owed
    closed,              // final; the socket is closed
    backoff,             // client: waiting to reconnect
};
std::string_view to_string(ConnectionState state) noexcept;
// Whether the machine ever moves from one state to the other (the diagram
// above as data; set_state() asserts it).
bool transition_allowed(ConnectionState from, ConnectionState to) noexcept;

enum class CloseReason : std::uint8_t {
    local_close,            // the app called close() and it completed
    peer_closed,            // the peer's FIN, after everything owed was delivered and sent
    peer_closed_mid_frame,  // the peer's FIN with part of a frame still buffered
    reset,                  // ECONNRESET
    broken_pipe,            // EPIPE
    io_error,               // any other errno from the socket
    dead_peer,              // nothing received for dead_peer_intervals heartbeat intervals
    connect_failed,         // the connect failed (errno says why)
    connect_timeout,        // connecting for longer than connect_timeout (errno ETIMEDOUT)
    close_timeout,          // a graceful close took longer than close_timeout
    hostile_frame,          // the decoder rejected the stream (frame_error says how)
    output_limit_exceeded,  // a frame would have grown the output past output_limit_bytes
};
std::string_view to_string(CloseReason reason) noexcept;

struct CloseInfo {
    CloseReason reason = CloseReason::local_close;
    int errno_value = 0;                    // when an errno applies, else 0
    std::optional<FrameError> frame_error;  // when reason == hostile_frame

    friend bool operator==(const CloseInfo&, const CloseInfo&) = default;  // LCOV_EXCL_BR_LINE
};
// "hostile_frame: length field at stream offset 8 holds 0xffffffff: negative_length",
// "reset (ECONNRESET)", "local_close".
std::string describe(const CloseInfo& info);

// ---------------------------------------------------------------------------
// Configuration: every policy in one place.

struct ConnectionConfig {
    // --- framing (the default protocol: 20-byte DefaultHeader) ---------------
    // Largest frame accepted from the peer or from the app, header included.
    std::uint64_t max_frame_bytes = 16U * 1024U * 1024U;
    // Receive buffer limit (decoder read-ahead); 0 picks the decoder's default
    // (max_frame_bytes + 64 KiB).
    std::size_t receive_buffer_bytes = 0;

    // --- heartbeat and dead peer ---------------------------------------------
    // Idle time (no byte sent or received) after which a ping is sent; 0
    // disables pings (pings from the peer are still answered).
    Nanos heartbeat_idle_timeout = std::chrono::seconds{30};
    // cmd of heartbeat frames, ping and pong.
    std::uint32_t heartbeat_cmd = 0;
    // This many heartbeat_idle_timeout periods without receiving anything
    // close the connection with dead_peer; 0 disables. Needs pings enabled.
    std::uint32_t dead_peer_intervals = 3;

    // --- connect and close ---------------------------------------------------
    // Connecting longer than this fails the attempt with ETIMEDOUT; 0: never.
    Nanos connect_timeout = std::chrono::seconds{10};
    // A graceful close (from leaving established until the socket closes)
    // longer than this ends with close_timeout; 0: never.
    Nanos close_timeout = std::chrono::seconds{10};

    // --- reconnect (client only) -----------------------------------------------
    // Whether a client reconnects after losing a connection it did not close.
    bool reconnect = false;
    // Delay before retry k (k = 1, 2, ...): reconnect_initial_delay * 2^(k-1),
    // capped at reconnect_max_delay, then moved by a uniform offset within
    // ±reconnect_jitter_percent of itself (drawn from the seeded Rng), then
    // capped again: a delay never exceeds reconnect_max_delay. k counts
    // failed attempts since the last established connection.
    Nanos reconnect_initial_delay = std::chrono::seconds{1};
    Nanos reconnect_max_delay = std::chrono::seconds{60};
    std::uint32_t reconnect_jitter_percent = 20;  // 0..100
    // Retries after a loss before giving up (closed, with the last reason);
    // 0: unlimited.
    std::uint32_t reconnect_attempts_max = 0;

    // --- output ----------------------------------------------------------------
    // Backpressure: once buffered output exceeds the high-water mark the
    // connection stops reading from the peer (wants_read() is false) until
    // the output drains to the low-water mark or below. Hysteresis, so a
    // reader does not flap on and off around one threshold.
    std::size_t output_high_water_bytes = 1024U * 1024U;
    std::size_t output_low_water_bytes = 256U * 1024U;
    // Hard limit: a frame that would take buffered output past it is not
    // written, and the connection closes with output_limit_exceeded. At
    // least max_frame_bytes (validate()), so a frame the peer may send can
    // always be echoed; the default holds a frame at the default maximum
    // with as much again queued before it.
    std::size_t output_limit_bytes = 32U * 1024U * 1024U;
};

enum class ConfigError : std::uint8_t {
    none,
    max_frame_below_header,        // max_frame_bytes < 20
    max_frame_above_length_field,  // max_frame_bytes - 20 > INT32_MAX: body_len could not say it
    receive_buffer_below_max_frame,
    dead_peer_without_heartbeat,  // dead_peer_intervals > 0 with heartbeat_idle_timeout == 0
    negative_duration,
    water_marks_out_of_order,      // need low <= high < limit
    limit_below_header,            // output_limit_bytes < 20: not even a pong would fit
    output_limit_below_max_frame,  // output_limit_bytes < max_frame_bytes: a legal frame could never be sent
    jitter_above_100_percent,
    reconnect_delay_invalid,  // initial delay 0, or max delay below it
    reconnect_on_server,      // only a client can reconnect
};
std::string_view to_string(ConfigError error) noexcept;
ConfigError validate(const ConnectionConfig& config, ConnectionRole role) noexcept;

// ---------------------------------------------------------------------------
// Outputs.

// The machine's timers, in the order tick() runs those that are due at once
// (a late tick). At most the ones a state allows are armed: connect_timeout
// while connecting, reconnect in backoff, the others only while a socket is
// open.
enum class TimerKind : std::uint8_t {
    connect_timeout,  // connecting for connect_timeout: the attempt fails (ETIMEDOUT)
    reconnect,        // backoff over: the next connect starts
    close_timeout,    // a graceful close took close_timeout: the connection ends
    dead_peer,        // nothing received for dead_peer_intervals intervals: it ends
    heartbeat,        // established and idle for heartbeat_idle_timeout: a ping
};
inline constexpr std::size_t timer_kind_count = 5;  // TimerKinds, and rows of the table
std::string_view to_string(TimerKind kind) noexcept;

struct ConnectionTimer {
    TimerKind kind = TimerKind::connect_timeout;
    Nanos at{0};
    friend bool operator==(const ConnectionTimer&, const ConnectionTimer&) = default;  // LCOV_EXCL_BR_LINE
};

enum class ActionKind : std::uint8_t {
    start_connect,   // create a socket and connect(); report on_connected / on_connect_failed
    shutdown_write,  // shutdown(SHUT_WR): our FIN
    close_socket,    // close(fd); no more socket inputs for it
};
std::string_view to_string(ActionKind kind) noexcept;

struct Action {
    ActionKind kind = ActionKind::close_socket;
    std::uint32_t attempt = 0;  // start_connect: 1 for the first connect, counting every attempt
    friend bool operator==(const Action&, const Action&) = default;  // LCOV_EXCL_BR_LINE
};

enum class EventKind : std::uint8_t {
    established,          // the connection is open; the app may send
    closed,               // the connection ended (close); reconnecting says whether a retry follows
    reconnect_scheduled,  // a connect will start at reconnect_at (retry-th retry)
    heartbeat_sent,       // a ping was queued
    backpressure_on,      // output above high water: reading stopped
    backpressure_off,     // output at low water or below: reading resumed
};
std::string_view to_string(EventKind kind) noexcept;

struct Event {
    EventKind kind = EventKind::established;
    Nanos at{0};
    CloseInfo close;            // closed
    bool reconnecting = false;  // closed: a reconnect_scheduled follows
    Nanos reconnect_at{0};      // reconnect_scheduled
    std::uint32_t retry = 0;    // reconnect_scheduled: 1 for the first retry since the last success
};

enum class SendError : std::uint8_t {
    none,
    wrong_state,            // not established or half_closed_remote; nothing written
    frame_too_large,        // header + body > max_frame_bytes; nothing written
    output_limit_exceeded,  // nothing written, and the connection is now closing (aborted)
};
std::string_view to_string(SendError error) noexcept;

enum class StartError : std::uint8_t {
    none,
    wrong_state,  // not idle
    wrong_role,   // connect() on a server or on_accepted() on a client
};
std::string_view to_string(StartError error) noexcept;

struct ConnectionStats {
    std::uint64_t bytes_received = 0;
    std::uint64_t frames_delivered = 0;  // to the app, heartbeats excluded
    std::uint64_t frames_queued = 0;     // by send_frame
    std::uint64_t pings_sent = 0;
    std::uint64_t pongs_sent = 0;
    std::uint64_t pings_received = 0;
    std::uint64_t pongs_received = 0;
    std::uint64_t connect_attempts = 0;
    std::uint64_t stale_inputs = 0;
    // The most output bytes ever held unsent at once (frames, heartbeats and
    // unframed bytes queued but not yet taken by on_sent), over every socket
    // of this Connection: what backpressure and the hard limit bound.
    std::uint64_t max_output_bytes = 0;
};

struct Transition {
    Nanos at{0};
    ConnectionState from = ConnectionState::idle;
    ConnectionState to = ConnectionState::idle;
    friend bool operator==(const Transition&, const Transition&) = default;  // LCOV_EXCL_BR_LINE
};
// "connecting => established"
std::string to_string(const Transition& transition);

// ---------------------------------------------------------------------------

class Connection {
public:
    // Transitions kept for tests and traces (the oldest are dropped).
    static constexpr std::size_t history_capacity = 64;
    // At most this many actions/events wait for poll_*(); one input produces
    // only a few, and the driver drains both after every input.
    static constexpr std::size_t queue_capacity = 16;

    // config must validate() for role. jitter_seed seeds the reconnect
    // jitter (derive it from the run's root seed).
    Connection(ConnectionRole role, const ConnectionConfig& config, std::uint64_t jitter_seed);

    // --- getters --------------------------------------------------------------
    ConnectionRole role() const noexcept { return role_; }
    ConnectionState state() const noexcept { return state_; }
    const ConnectionConfig& config() const noexcept { return config_; }
    // Why the last connection ended (meaningful once one has).
    const std::optional<CloseInfo>& close_info() const noexcept { return close_info_; }
    const ConnectionStats& stats() const noexcept { return stats_; }
    bool backpressure() const noexcept { return backpressure_; }
    // The last history_capacity transitions, oldest first, and how many there
    // were in all.
    std::vector<Transition> transitions() const;
    std::uint64_t transition_count() const noexcept { return transition_count_; }
    // Transition number n (0-based, in the order taken), without copying the
    // history; n must still be kept: transition_count() - history_capacity
    // <= n < transition_count(). A driver that forwards every transition
    // after each input never falls that far behind.
    const Transition& transition_at(std::uint64_t n) const noexcept;
    // pause_reading() was called and resume_reading() not since.
    bool reading_paused() const noexcept { return read_paused_; }

    // --- app inputs -------------------------------------------------------------
    // Client: start connecting (action start_connect).
    StartError connect(Nanos now);
    // Server: the driver accepted this connection's socket; established now.
    StartError on_accepted(Nanos now);
    // Encodes one frame (header's body_len is ignored: the encoder writes it)
    // into the output. Allowed in established and half_closed_remote, also
    // from inside take_frames()' callback.
    SendError send_frame(Nanos now, const DefaultHeader& header, std::span<const std::uint8_t> body);
    // Graceful close: flush the output, send our FIN, read until the peer's
    // FIN (at most close_timeout), then close. Without a socket, closes at
    // once. Never reconnects afterwards. Idempotent.
    void close(Nanos now);
    // The app stops reading from the peer: wants_read() is false and
    // dead-peer detection is suspended (a pong we do not read proves
    // nothing); kept across reconnects. Allowed in every state, idempotent.
    // resume_reading() undoes it and restarts the dead-peer clock at now.
    void pause_reading(Nanos now);
    void resume_reading(Nanos now);

    // --- misbehaving-peer hook ----------------------------------------------------
    // Appends bytes to the output exactly as given, with no framing: for a
    // test harness that plays a broken peer (a header announcing a negative
    // body length, say), never for an application. Whatever follows on this
    // connection is no longer valid framing, so the peer is expected to close
    // it. Same states and output limit as send_frame (output_limit_exceeded
    // closes the connection); frame_too_large does not apply.
    SendError send_unframed(Nanos now, std::span<const std::uint8_t> bytes);

    // --- socket inputs ----------------------------------------------------------
    void on_connected(Nanos now);
    // errno_value: the connect's error (SO_ERROR or connect()'s own).
    void on_connect_failed(Nanos now, int errno_value);
    // Free space to recv() into, at most n bytes: empty when the connection
    // is not reading. Valid until on_received() or the next receive_space(),
    // which replaces it (so a recv() that failed needs no on_received()).
    std::span<std::uint8_t> receive_space(std::size_t n);
    // k bytes were written into the last receive_space() (0: none, e.g.
    // EAGAIN; a recv() that returned 0 is on_peer_eof()). Then take_frames().
    void on_received(Nanos now, std::size_t k);
    // recv() returned 0: the peer sent its FIN.
    void on_peer_eof(Nanos now);
    // The first k bytes of pending_output() were sent.
    void on_sent(Nanos now, std::size_t k);
    // A socket call failed with errno_value (never EAGAIN or EINTR: those are
    // the driver's to handle).
    void on_error(Nanos now, int errno_value);
    // Runs what is due at now; a tick before next_deadline() does nothing.
    void tick(Nanos now);

    // --- outputs ----------------------------------------------------------------
    // Calls on_frame(const Frame&) for every complete frame received (header
    // and body are views into the receive buffer, valid during the call; no
    // copy, no allocation). Returns how many frames the app got. on_frame may
    // call send_frame() and close(), nothing else of this Connection. Also
    // where a peer FIN and a hostile frame take effect, after the frames
    // before them were delivered.
    template <class OnFrame>
    std::size_t take_frames(Nanos now, OnFrame&& on_frame) {
        observe(now);
        std::size_t delivered = 0;
        if (!frames_pending_) {
            settle(now);
            return delivered;
        }
        const DecodeResult result = decoder_.drain([&](const Frame& frame) {
            if (!delivering()) {
                return;  // closed from inside the callback: the rest is dropped
            }
            if (frame.body.empty() && is_heartbeat_header(frame.header)) {
                on_heartbeat(now, frame.header);
                return;
            }
            ++delivered;
            on_frame(frame);
        });
        stats_.frames_delivered += delivered;
        after_drain(now, result);
        return delivered;
    }

    // Bytes to send now (empty when nothing is owed or the state forbids
    // sending). Valid until the next call other than a getter.
    std::span<const std::uint8_t> pending_output() const noexcept;
    bool wants_read() const noexcept;
    // True while output is owed, and while connecting (writability is how a
    // non-blocking connect completes).
    bool wants_write() const noexcept;
    // When tick() next has something to do; nullopt when nothing is timed.
    std::optional<Nanos> next_deadline() const noexcept;
    // The armed timer with the earliest deadline (of equal deadlines, the
    // first in TimerKind order): next_deadline() and what it is for.
    std::optional<ConnectionTimer> next_timer() const noexcept;
    std::optional<Action> poll_action() noexcept;
    std::optional<Event> poll_event() noexcept;

private:
    template <class T>
    class Queue {
    public:
        void push(const T& item) noexcept {
            EAGAIN_ASSERT(size_ < queue_capacity);  // the driver polls after every input
            items_[(head_ + size_) % queue_capacity] = item;
            ++size_;
        }
        std::optional<T> pop() noexcept {
            if (size_ == 0) {
                return std::nullopt;
            }
            const T item = items_[head_];
            head_ = (head_ + 1) % queue_capacity;
            --size_;
            return item;
        }

    private:
        std::array<T, queue_capacity> items_{};
        std::size_t head_ = 0;
        std::size_t size_ = 0;
    };

    bool is_heartbeat_header(std::span<const std::uint8_t> header) const noexcept;
    void on_heartbeat(Nanos now, std::span<const std::uint8_t> header);
    void after_drain(Nanos now, const DecodeResult& result);

    void observe(Nanos now) noexcept;
    void set_state(Nanos now, ConnectionState next);
    bool has_socket() const noexcept;
    bool delivering() const noexcept;
    bool reading() const noexcept;
    bool sending() const noexcept;
    bool app_may_send() const noexcept;
    bool dead_peer_watched() const noexcept;

    void start_connect(Nanos now);
    void reset_socket_state();
    void enter_closing(Nanos now, CloseReason reason);
    void arm_close_deadline(Nanos now) noexcept;
    void settle(Nanos now);
    void establish(Nanos now);
    void end(Nanos now, const CloseInfo& info);
    Nanos backoff_delay(std::uint32_t retry);
    void update_backpressure(Nanos now);
    void note_output_peak() noexcept;
    bool queue_heartbeat(Nanos now, std::uint32_t seq, std::uint32_t kind);

    // One row per TimerKind, in its order (connection.cpp): when the timer
    // is due in the current state (nullopt: not armed), and what expiry does.
    struct TimerEntry {
        TimerKind kind;
        std::optional<Nanos> (Connection::*deadline)() const noexcept;
        void (Connection::*expire)(Nanos now);
    };
    static const std::array<TimerEntry, timer_kind_count> timers_;
    std::optional<Nanos> connect_timeout_deadline() const noexcept;
    std::optional<Nanos> reconnect_deadline() const noexcept;
    std::optional<Nanos> close_timeout_deadline() const noexcept;
    std::optional<Nanos> dead_peer_deadline() const noexcept;
    std::optional<Nanos> heartbeat_deadline() const noexcept;
    void expire_connect_timeout(Nanos now);
    void expire_reconnect(Nanos now);
    void expire_close_timeout(Nanos now);
    void expire_dead_peer(Nanos now);
    void expire_heartbeat(Nanos now);

    ConnectionRole role_;
    ConnectionConfig config_;
    FrameSpec spec_;
    Rng rng_;
    ConnectionState state_ = ConnectionState::idle;
    Nanos now_{0};

    FrameDecoder decoder_;
    ByteBuffer output_;
    std::size_t receive_offered_ = 0;
    bool frames_pending_ = false;  // bytes received since the last take_frames()
    bool peer_eof_ = false;
    bool backpressure_ = false;
    bool local_close_ = false;  // the app called close(): never reconnect
    bool read_paused_ = false;  // pause_reading(): kept across sockets
    CloseReason closing_reason_ = CloseReason::local_close;

    Nanos idle_since_{0};   // last byte sent or received, or last ping decision
    Nanos alive_since_{0};  // last proof of life from the peer
    Nanos connect_deadline_{0};
    std::optional<Nanos> close_deadline_;  // armed on leaving established, cleared by end()
    Nanos reconnect_at_{0};
    std::uint32_t retry_ = 0;  // failed attempts since the last established connection
    std::uint32_t next_ping_seq_ = 0;

    std::optional<CloseInfo> close_info_;
    ConnectionStats stats_;
    Queue<Action> actions_;
    Queue<Event> events_;
    std::array<Transition, history_capacity> history_{};
    std::uint64_t transition_count_ = 0;
};

}  // namespace eagain
