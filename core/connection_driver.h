// ConnectionDriver: one Connection (the policy) driven over one Transport
// (the syscalls) on a Reactor. This is the loop connection.h describes,
// written once: socket events and timer expiries go in, actions are carried
// out, frames and events go to the App.
//
// A server hands it an accepted socket (start_accepted); a client gives it
// an address (start_connect), and the Connection decides when to connect,
// give up, back off and reconnect; each attempt gets a fresh socket.
//
// App callbacks run inside Reactor::poll(). They may send frames and close
// this or any connection, but must not destroy a driver: the owner of
// drivers frees finished ones outside the callbacks (see finished()).
//
// Every call that changes the Connection (send_frame, close, pause_reading,
// resume_reading, send_unframed) pumps afterwards: actions are carried out,
// events reported, output sent and the socket's interest set, at once.
#pragma once

#include "core/connection.h"
#include "core/reactor.h"
#include "core/transport.h"

#include <memory>
#include <optional>

namespace eagain {

class ConnectionDriver final : private Transport::Events {
public:
    class App {
    public:
        virtual void on_established(ConnectionDriver& /*driver*/) {}
        // header and body are views valid during the call.
        virtual void on_frame(ConnectionDriver& driver, const Frame& frame) = 0;
        // Every Connection event (established, closed, reconnect_scheduled,
        // heartbeat_sent, backpressure on/off), after the specific callbacks.
        virtual void on_event(ConnectionDriver& /*driver*/, const Event& /*event*/) {}
        // The connection ended; reconnecting says whether the client retries.
        virtual void on_closed(ConnectionDriver& driver, const CloseInfo& info, bool reconnecting) = 0;
        // Every state change of the Connection, each exactly once and in
        // order, with the time it happened (forwarded from the pump, so a
        // transition into connecting arrives before that attempt's
        // connect(2), at the same virtual time). For observing: record,
        // don't act.
        virtual void on_transition(ConnectionDriver& /*driver*/, const Transition& /*transition*/) {}

    protected:
        ~App() = default;
    };

    ConnectionDriver(Reactor& reactor, App& app, ConnectionRole role, const ConnectionConfig& config,
                     const TransportOptions& transport, std::uint64_t seed);
    ~ConnectionDriver();
    ConnectionDriver(const ConnectionDriver&) = delete;
    ConnectionDriver& operator=(const ConnectionDriver&) = delete;

    // Server: fd is an accepted, non-blocking socket; the driver owns it.
    void start_accepted(int fd, const SockAddr& peer);
    // Client: connect to peer now, and again on the backoff schedule.
    void start_connect(const SockAddr& peer);

    SendError send_frame(const DefaultHeader& header, std::span<const std::uint8_t> body);
    // Graceful: flush, FIN, wait for the peer's FIN (bounded), close.
    void close();
    // Connection::pause_reading / resume_reading: stop or resume reading
    // from the socket (the peer then meets a zero window), in any state.
    void pause_reading();
    void resume_reading();
    // Connection::send_unframed: raw bytes for a harness playing a
    // misbehaving peer, never for an application.
    SendError send_unframed(std::span<const std::uint8_t> bytes);

    const Connection& connection() const noexcept { return connection_; }
    const SockAddr& peer() const noexcept { return peer_; }
    // The Connection reached closed and the socket is gone.
    bool finished() const noexcept { return connection_.state() == ConnectionState::closed && !transport_; }
    // The socket of the current attempt, -1 when there is none.
    int fd() const noexcept { return transport_ ? transport_->fd() : -1; }

private:
    class EventClock;
    Nanos now();
    Transport::Events& events() noexcept;
    void on_readable() override;
    void on_writable() override;

    // Carries out actions, reports events, sends owed output, until quiet;
    // then sets interest and the timer.
    void pump();
    void perform(const Action& action);
    void report(const Event& event);
    void begin_connect();
    void fail(int errno_value);
    void schedule_tick();
    void forward_transitions();

    Reactor& reactor_;
    Sys& sys_;
    App& app_;
    TransportOptions transport_options_;
    Connection connection_;
    std::optional<Transport> transport_;
    SockAddr peer_;
    std::optional<Reactor::TimerId> tick_timer_;
    bool pumping_ = false;
    std::uint64_t transitions_forwarded_ = 0;
    std::optional<Nanos> event_now_;  // the clock read once per wake-up (EventClock)
};

}  // namespace eagain
