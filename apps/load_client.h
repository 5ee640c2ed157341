// LoadClient: opens N connections to a frame echo server, sends frames with
// a bounded number in flight per connection, and checks every echoed byte.
//
// Each frame carries (connection, seq) in its header and a body derived
// from both, so a lost, duplicated, reordered, truncated or corrupted frame
// is a mismatch, reported with what was expected and what came back. A
// connection closes gracefully once all its frames came back. Latency is
// measured per frame from the send call to the echo's arrival, on the Sys
// clock (virtual time in the simulation).
//
// While it runs, its connections can be closed (close), stop and resume
// reading (pause_reading: the server's echoes then meet a zero window), and
// be made to send bytes that are not a frame (send_unframed, for a harness
// playing a misbehaving client). tally() says what the connections did.
#pragma once

#include "apps/connection_tally.h"
#include "core/connection_driver.h"
#include "core/reactor.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace eagain {

struct LoadOptions {
    SockAddr server;
    std::size_t connections = 1;
    // Frames in all, spread evenly over the connections.
    std::uint64_t frames = 1000;
    std::size_t body_bytes = 64;
    // Frames sent but not yet echoed, per connection.
    std::size_t in_flight_per_connection = 32;
    TransportOptions transport;
    ConnectionConfig connection;
    std::uint64_t seed = 1;
    // Mismatch descriptions kept (the count is always exact).
    std::size_t mismatches_kept = 10;
};

// Sizes config for a load of body_bytes frames, in_flight_per_connection at
// a time: max_frame_bytes holds one, the output limit two full windows and
// the high-water mark one, so neither the client nor an echo server
// configured alike stops on its own limits (output_limit_exceeded, or both
// ends waiting on backpressure) for any frame size.
void size_for_load(ConnectionConfig& config, std::size_t body_bytes, std::size_t in_flight_per_connection);

struct LoadReport {
    std::uint64_t frames_sent = 0;
    std::uint64_t frames_verified = 0;
    std::uint64_t bytes_verified = 0;  // header + body, echoed and checked
    std::uint64_t mismatches = 0;
    std::uint64_t errors = 0;           // connections that ended before all their frames came back
    std::vector<std::string> problems;  // the first mismatches and errors, described
    std::vector<CloseInfo> endings;     // how each connection ended, in the order they did
    Nanos started{0};
    Nanos finished{0};
    std::vector<Nanos> latencies;  // one per verified frame, in arrival order

    // p in [0, 100]; 0 when nothing was measured.
    Nanos latency_percentile(unsigned p) const;
    bool ok(std::uint64_t frames_expected) const {
        return mismatches == 0 && errors == 0 && frames_verified == frames_expected;
    }
};

class LoadClient final {
public:
    static constexpr std::uint32_t frame_cmd = 1;

    LoadClient(Reactor& reactor, const LoadOptions& options);
    ~LoadClient();
    LoadClient(const LoadClient&) = delete;
    LoadClient& operator=(const LoadClient&) = delete;

    // Connects every connection (connects are non-blocking; the reactor
    // carries them out).
    void start();
    // Every connection has ended, one way or another.
    bool done() const noexcept { return ended_ == peers_.size(); }
    const LoadReport& report() const noexcept { return report_; }
    ConnectionTally tally() const;

    // Graceful close of every connection now (one that has not got all its
    // frames back then counts as an error, as any early end does).
    void close();
    // Every connection stops / resumes reading, whatever its state
    // (Connection::pause_reading).
    void pause_reading();
    void resume_reading();
    // Misbehaving-peer hook: queues bytes, exactly as given, on every
    // connection that may send now (ConnectionDriver::send_unframed).
    // Returns on how many.
    std::size_t send_unframed(std::span<const std::uint8_t> bytes);

    // The body of frame seq on connection index (exposed for tests).
    static void fill_body(std::size_t connection, std::uint32_t seq, std::span<std::uint8_t> body) noexcept;

private:
    // One connection: the driver's App, so callbacks arrive knowing whose.
    struct Peer final : ConnectionDriver::App {
        LoadClient* client = nullptr;
        std::unique_ptr<ConnectionDriver> driver;
        std::size_t index = 0;
        std::uint64_t quota = 0;
        std::uint32_t next_seq_to_send = 0;
        std::uint32_t next_seq_expected = 0;
        std::vector<Nanos> sent_at;  // ring of in_flight_per_connection send times
        bool closing = false;        // close() was called: echoes still arriving are checked, nothing more sent
        bool ended = false;

        void on_established(ConnectionDriver& /*driver*/) override { client->send_more(*this); }
        void on_frame(ConnectionDriver& /*driver*/, const Frame& frame) override { client->verify(*this, frame); }
        void on_closed(ConnectionDriver& /*driver*/, const CloseInfo& info, bool /*reconnecting*/) override {
            client->end(*this, info);
        }
        void on_transition(ConnectionDriver& /*driver*/, const Transition& transition) override {
            client->tally_.note(transition);
        }
    };

    void verify(Peer& peer, const Frame& frame);
    void end(Peer& peer, const CloseInfo& info);
    void send_more(Peer& peer);
    void problem(std::string what);

    Reactor& reactor_;
    LoadOptions options_;
    std::vector<std::unique_ptr<Peer>> peers_;
    std::vector<std::uint8_t> body_;  // scratch for building and checking bodies
    std::size_t ended_ = 0;
    LoadReport report_;
    ConnectionTally tally_;  // transitions and endings; stats are added in tally()
};

}  // namespace eagain
