// The byte-stream programs: ByteEchoServer, BulkReceiverServer and
// BulkSender. Like FrameEchoServer they are built only on Reactor,
// Transport and Sys (the servers accept through apps/listener.h), so the
// same code runs on the real kernel and in the simulation; every syscall
// result is handled where core/transport.h says it is. The scenario kinds
// byte-echo, bulk-receiver and bulk-sender (harness/byte_apps.cpp) are
// these classes with their options read from the scenario.
//
//   ByteEchoServer      echoes every byte as it comes. Its unsent output per
//                       connection is bounded (echo_output_limit_bytes): at
//                       the bound it stops reading, so a peer that does not
//                       read its echo is pushed back through TCP (its sends
//                       turn short, then EAGAIN) instead of growing our
//                       memory; it reads again once half of it is sent. On
//                       the peer's FIN it sends what it owes, then closes.
//   BulkSender          writes total_bytes of the stream pattern
//                       (apps/byte_pattern.h), chunk_bytes offered per send,
//                       then shutdown(SHUT_WR), and closes on the peer's FIN
//                       or fin_wait after its own. Whatever the peer sends
//                       back is read and discarded (an echo must be read or
//                       both sides stall).
//   BulkReceiverServer  reads and checks every byte against the pattern, per
//                       connection from offset 0, and closes on the peer's
//                       FIN; fewer than expected_bytes by then is an error, a
//                       wrong byte a mismatch (and the connection is closed
//                       at once).
//
// None of them prints: what happened is in report().
#pragma once

#include "apps/listener.h"
#include "core/connection.h"
#include "core/reactor.h"
#include "core/sys.h"
#include "core/transport.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace eagain {

// ByteEchoServer: the most unsent echo one connection holds; it stops
// reading there and reads again at half of it (so it does not turn EPOLLIN
// on and off for every segment).
inline constexpr std::size_t echo_output_limit_bytes = 128U * 1024U;
// The most open connections a byte server keeps; beyond it new ones are
// closed at once.
inline constexpr std::size_t max_connections_per_byte_server = 100'000;
// BulkSender and BulkReceiverServer: bytes per send, and per recv, unless
// set.
inline constexpr std::size_t default_byte_chunk_bytes = 64U * 1024U;

// What a byte app's connections did.
struct ByteAppReport {
    // Keep this many problems (counts stay exact).
    static constexpr std::size_t problems_kept = 10;

    std::uint64_t mismatches = 0;       // bytes that came back wrong (BulkReceiverServer)
    std::uint64_t errors = 0;           // connections that ended before their work was done
    std::vector<std::string> problems;  // the first problems_kept mismatches and errors, described
    // How connections ended: the errno name when there was one
    // ("ECONNRESET") and the close reason ("reset"), each distinct ending
    // once, in the order first seen.
    std::vector<std::string> endings;
    std::set<std::string> states;          // to_string(ConnectionState) of every state reached
    std::uint64_t max_buffered_bytes = 0;  // the most output held unsent, per connection
    std::uint64_t bytes_received = 0;      // BulkReceiverServer: stream bytes received and checked
    Nanos finished{};                      // when the work was last seen progressing

    void note_ending(const CloseInfo& info);
    void note_problem(std::string what);
};

struct ByteServerOptions {
    SockAddr listen_address = SockAddr::ipv4_loopback(0);
    ListenerOptions listener;
    TransportOptions transport;
};

class ServerConnection;

// What ByteEchoServer and BulkReceiverServer share: the listener, the
// connections in accept order (ended ones are freed outside their own
// callbacks), holding reading, and the report.
class ByteServer {
public:
    virtual ~ByteServer();
    ByteServer(const ByteServer&) = delete;
    ByteServer& operator=(const ByteServer&) = delete;

    // Listens; the failing errno.
    VoidResult open();
    // The bound address (with the kernel-chosen port).
    SockAddr local_address() const { return listener_.local_address(); }
    // Stops accepting and closes every connection at once.
    void stop();
    // Every connection, and every one accepted while held, stops (true) or
    // resumes (false) reading from its peer.
    void hold_reading(bool held);
    const ByteAppReport& report() const noexcept { return report_; }
    std::size_t open_connections() const noexcept { return connections_.size(); }

    // --- for the connections -----------------------------------------------
    Reactor& reactor() const noexcept { return reactor_; }
    const TransportOptions& transport() const noexcept { return options_.transport; }
    ByteAppReport& observed() noexcept { return report_; }
    bool reading_held() const noexcept { return held_; }
    // A connection closed its socket: free it once its callback returned.
    void connection_ended();

protected:
    ByteServer(Reactor& reactor, const ByteServerOptions& options);
    virtual std::unique_ptr<ServerConnection> make_connection(int fd, std::uint64_t number) = 0;

private:
    void accepted(int fd);

    Reactor& reactor_;
    ByteServerOptions options_;
    Listener listener_;
    bool held_ = false;
    std::uint64_t accepted_count_ = 0;
    std::vector<std::unique_ptr<ServerConnection>> connections_;
    std::optional<Reactor::TimerId> sweep_timer_;  // cancelled by stop(): it captures this
    ByteAppReport report_;
};

class ByteEchoServer final : public ByteServer {
public:
    ByteEchoServer(Reactor& reactor, const ByteServerOptions& options) : ByteServer(reactor, options) {}
    ~ByteEchoServer() override;

private:
    std::unique_ptr<ServerConnection> make_connection(int fd, std::uint64_t number) override;
};

struct BulkReceiverOptions {
    ByteServerOptions server;
    std::uint64_t expected_bytes = 0;                         // per connection
    std::size_t read_chunk_bytes = default_byte_chunk_bytes;  // per recv (>= 1)
};

class BulkReceiverServer final : public ByteServer {
public:
    BulkReceiverServer(Reactor& reactor, const BulkReceiverOptions& options);
    ~BulkReceiverServer() override;

private:
    std::unique_ptr<ServerConnection> make_connection(int fd, std::uint64_t number) override;

    std::uint64_t expected_bytes_;
    std::size_t read_chunk_bytes_;
};

struct BulkSenderOptions {
    SockAddr server;
    std::uint64_t total_bytes = 0;
    std::size_t chunk_bytes = default_byte_chunk_bytes;  // offered per send (>= 1)
    Nanos connect_timeout{0};                            // still connecting after it: ETIMEDOUT; 0: none
    TransportOptions transport;
};

// One connection: connect, send the stream, shut down writing, wait for the
// peer's FIN.
class BulkSender final : private Transport::Events {
public:
    BulkSender(Reactor& reactor, const BulkSenderOptions& options);
    ~BulkSender();
    BulkSender(const BulkSender&) = delete;
    BulkSender& operator=(const BulkSender&) = delete;

    // Begins connecting (once). A connect that fails at once ends the
    // sender, with the error in report(); it always returns success.
    VoidResult start();
    // Closes the connection now (if started).
    void stop();
    // The connection ended (its work done or not: see report().errors).
    bool done() const noexcept { return ended_; }
    // Stops (true) or resumes (false) reading what the peer sends back.
    void hold_reading(bool held);
    const ByteAppReport& report() const noexcept { return report_; }

private:
    void established();
    void on_writable() override;
    void on_readable() override;
    void send_more();
    void finish_sending();
    void update_reading();
    void end(const CloseInfo& info);
    void cancel_connect_timer();

    // A sink for Transport::read that throws the bytes away.
    class DiscardSink {
    public:
        std::span<std::uint8_t> prepare(std::size_t n) {
            return std::span(scratch_).first(std::min(n, scratch_.size()));
        }
        void commit(std::size_t /*n*/) noexcept {}

    private:
        std::vector<std::uint8_t> scratch_ = std::vector<std::uint8_t>(64U * 1024U);
    };

    Reactor& reactor_;
    BulkSenderOptions options_;
    std::unique_ptr<Transport> transport_;
    std::vector<std::uint8_t> chunk_;  // the chunk being sent: the pattern at [sent_bytes_ - chunk_sent_, ...)
    std::size_t chunk_sent_ = 0;       // of chunk_, taken by the kernel
    std::uint64_t sent_bytes_ = 0;     // of the stream, taken by the kernel
    DiscardSink discard_;
    bool started_ = false;
    bool held_ = false;           // hold_reading
    bool write_shut_ = false;     // our FIN is queued
    bool peer_finished_ = false;  // recv returned 0
    bool ended_ = false;
    std::optional<Reactor::TimerId> fin_timer_;      // cancelled by end(): it captures this
    std::optional<Reactor::TimerId> connect_timer_;  // cancelled once established or ended: it captures this
    ByteAppReport report_;
};

}  // namespace eagain
