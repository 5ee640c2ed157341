// A one-connection client written the way the seed programs write their
// connection policy (heartbeat, dead peer, reconnect), with one pitfall
// each, WRONG ON PURPOSE. Registered for tests only (ScenarioRunOptions::apps,
// through naive_policy_client()) in place of frame-client (conns 1),
// idle-client or reconnecting-client, to show that a scenario catches the
// bug its opening comment names.
//
// It is plain C over the Reactor: one non-blocking socket at a time;
// connect(), then EPOLLOUT and SO_ERROR, for at most 10 s (Connection's
// default connect_timeout); level-triggered epoll, one recv per event into
// char buf[4096]; frames as the kind it replaces sends them (cmd 1, seq,
// reserved1 0, body LoadClient::fill_body(0, seq)), at most `in-flight`
// unechoed, every echo checked; close() at once when all came back. Its
// policy with NaivePolicyPitfall::none is the one core/connection.h
// specifies, written by hand:
//   - heartbeat D: a ping (a header-only frame, cmd 0, reserved1 0) once
//     nothing was sent or received for D, none while output is unsent; a
//     ping from the peer is answered with a pong (reserved1 1, its seq).
//   - dead peer (with heartbeats): nothing received for dead-after x D (3
//     intervals unless idle-client's dead-after says otherwise) ends the
//     connection as dead_peer.
//   - reconnect (reconnecting-client): after a loss it did not cause, the
//     next connect(2) backoff x 2^(k-1) later, capped at backoff-max, k
//     counting failures since the last established connection; the frames
//     not yet verified are sent again, from the first, on the new connection.
// Every other variant changes ONE line of that, commented with the code it
// models.
//
// It fills what the replaced kind's expectations read, as that kind does:
// frames-verified, no-errors (the same problem texts), error (errno names
// and close reasons), state (connecting, established, backoff, closed),
// reconnect-at (the virtual time of every connect(2)), heartbeats (pings
// sent), max-buffered (the output peak). Not modelled: reconnect jitter
// (taken as 0: the scenarios using this client have none), a graceful close
// (it closes the socket at once, so states closing and half_closed_* are
// never reached), and stop-reading/resume-reading (ignored). Deterministic
// and bounded: every loop and the number of connects have a cap.
#pragma once

#include "core/reactor.h"
#include "harness/app.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::scenarios {

enum class NaivePolicyPitfall : std::uint8_t {
    none,                   // the careful client
    pings_on_fixed_timer,   // setInterval(ping, D): pings every D, traffic or not
    no_dead_peer,           // pings, but never gives up on a peer that stays silent
    fixed_reconnect_delay,  // sleep(backoff); connect(); the delay never grows
    never_reconnects,       // a lost connection is the end: nothing calls connect() again
    backoff_never_reset,    // the failure count survives a success: the next loss waits long
};
std::string_view to_string(NaivePolicyPitfall pitfall) noexcept;

// The kind it stands in for: which options it reads and their defaults
// (docs/scenario-language.md), and how it words its problems.
enum class NaiveKind : std::uint8_t { frame_client, idle_client, reconnecting_client };

class NaivePolicyClient final : public harness::App, private Reactor::Handler {
public:
    NaivePolicyClient(const harness::AppContext& context, NaiveKind kind, NaivePolicyPitfall pitfall);
    ~NaivePolicyClient() override;
    NaivePolicyClient(const NaivePolicyClient&) = delete;
    NaivePolicyClient& operator=(const NaivePolicyClient&) = delete;

    VoidResult start() override;
    // Closes the socket at once, no ending recorded; what was observed stays.
    void stop() override;
    bool done() const override { return done_; }
    // `close`: close(fd) at once (or no reconnect if waiting for one).
    void act(std::string_view action) override;
    harness::AppObservations observations() const override { return seen_; }

private:
    void on_ready(std::uint32_t events) override;

    void connect();
    void connected();
    // false: the connection ended.
    bool flush();
    bool read();
    bool take_frames();
    void queue_frames();
    void queue_heartbeat(std::uint32_t seq, std::uint32_t kind);
    void update_interest();
    // When the next ping is due, less one interval.
    Nanos ping_clock() const;
    bool watches_dead_peer() const;
    void arm_heartbeat();
    void on_heartbeat_timer();
    void lost(const CloseInfo& info);
    void close_socket();
    void cancel(std::optional<Reactor::TimerId>& timer);
    void problem(std::string what);
    Nanos now() const { return reactor_.sys().now(); }

    Reactor& reactor_;
    SockAddr server_;
    NaiveKind kind_;
    NaivePolicyPitfall pitfall_;
    // Options, as the replaced kind reads them.
    std::uint64_t conns_ = 1;
    std::uint64_t frames_ = 0;
    std::size_t body_bytes_ = 64;
    std::size_t in_flight_ = 32;
    Nanos heartbeat_{0};  // 0: no pings, no dead-peer detection
    std::uint32_t dead_after_ = 0;
    bool reconnect_ = false;
    Nanos backoff_{0};
    Nanos backoff_max_{0};

    int fd_ = -1;
    std::uint32_t interest_ = 0;  // as registered
    bool connecting_ = false;     // waiting for EPOLLOUT after EINPROGRESS
    bool done_ = false;
    std::uint32_t failures_ = 0;  // since the last established connection
    std::optional<Reactor::TimerId> connect_deadline_;
    std::optional<Reactor::TimerId> heartbeat_timer_;
    std::optional<Reactor::TimerId> reconnect_timer_;
    Nanos last_io_{0};        // last byte sent or received, or the last ping decision
    Nanos last_ping_{0};      // the last ping decision (the fixed timer's clock)
    Nanos last_received_{0};  // last byte received
    std::uint32_t next_ping_seq_ = 0;
    std::uint64_t next_to_send_ = 0;   // on this connection
    std::uint64_t verified_ = 0;       // over all connections
    std::vector<std::uint8_t> input_;  // received, not yet a whole frame
    std::vector<std::uint8_t> output_;
    std::vector<std::uint8_t> body_;  // scratch for building and checking bodies
    harness::AppObservations seen_;
};

// A factory for ScenarioRunOptions::apps[<the kind's name>].
harness::AppFactory naive_policy_client(NaiveKind kind, NaivePolicyPitfall pitfall);

}  // namespace eagain::scenarios
