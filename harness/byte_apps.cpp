// The byte-stream app kinds (docs/scenario-language.md): byte-echo,
// bulk-sender and bulk-receiver. Like FrameEchoServer they are built only on
// Reactor, Transport and Sys, so the same code would run on the real kernel;
// every syscall result is handled where core/transport.h says it is.
//
//   byte-echo      echoes every byte as it comes. Its unsent output per
//                  connection is bounded (echo_output_limit_bytes): at the
//                  bound it stops reading, so a peer that does not read its
//                  echo is pushed back through TCP (its sends turn short,
//                  then EAGAIN) instead of growing our memory; it reads
//                  again once half of it is sent. On the peer's FIN it
//                  sends what it owes, then closes.
//   bulk-sender    writes `bytes` bytes of the stream pattern
//                  (harness/byte_pattern.h), `chunk` bytes offered per send,
//                  then shutdown(SHUT_WR), and closes on the peer's FIN or
//                  fin_wait after its own. Whatever the peer sends back is
//                  read and discarded (an echo must be read or both sides
//                  stall).
//   bulk-receiver  reads and checks every byte against the pattern, per
//                  connection from offset 0, and closes on the peer's FIN;
//                  fewer than `bytes` by then is an error, a wrong byte a
//                  mismatch (and the connection is closed at once).
#include "apps/listener.h"
#include "core/assert.h"
#include "core/byte_buffer.h"
#include "core/reactor.h"
#include "core/transport.h"
#include "harness/app.h"
#include "harness/byte_pattern.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace eagain::harness {

// --- the stream pattern ------------------------------------------------------

std::uint8_t stream_pattern_byte(std::uint64_t offset_bytes) noexcept {
    // A multiply-xorshift mix (splitmix64's finaliser) of the position in
    // the period: any two positions give unrelated bytes.
    std::uint64_t x = (offset_bytes % stream_pattern_period_bytes + 1) * 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return static_cast<std::uint8_t>(x ^ (x >> 31));
}

void fill_stream_pattern(std::uint64_t offset_bytes, std::span<std::uint8_t> out) noexcept {
    std::uint8_t* const bytes = out.data();
    const std::size_t size = out.size();
    for (std::size_t k = 0; k < size; ++k)
        bytes[k] = stream_pattern_byte(offset_bytes + k);
}

std::optional<std::size_t> first_pattern_mismatch(std::uint64_t offset_bytes,
                                                  std::span<const std::uint8_t> bytes) noexcept {
    for (std::size_t k = 0; k < bytes.size(); ++k) {
        if (bytes[k] != stream_pattern_byte(offset_bytes + k))
            return k;
    }
    return std::nullopt;
}

namespace {

using namespace std::chrono_literals;

// --- limits ------------------------------------------------------------------

// byte-echo: the most unsent echo one connection holds; it stops reading
// there and reads again at echo_resume_reading_bytes (half, so it does not
// turn EPOLLIN on and off for every segment).
constexpr std::size_t echo_output_limit_bytes = 128U * 1024U;
constexpr std::size_t echo_resume_reading_bytes = echo_output_limit_bytes / 2;
// Read-then-send rounds per wake-up; an edge-triggered reader that uses them
// all asks the reactor to wake it again (no new edge comes for bytes
// already queued).
constexpr int rounds_per_wakeup = 4;
// Servers: the listen backlog when the `backlog` option is absent (the
// accept path's own bounds are ListenerOptions' defaults).
constexpr int default_backlog = ListenerOptions{}.backlog;
// Beyond this many open connections a server closes new ones at once.
constexpr std::size_t max_connections_per_server = 100'000;
// bulk-sender: bytes offered per send (the `chunk` option's default and
// bound), bytes handed over per wake-up before letting others run, and how
// long it waits for the peer's FIN after sending its own.
constexpr std::size_t default_chunk_bytes = 64U * 1024U;
constexpr std::size_t max_chunk_bytes = 16U << 20;
constexpr std::size_t send_budget_bytes = 256U * 1024U;
constexpr Nanos fin_wait = 10s;
// What a sender reads back is discarded through a buffer of this size.
constexpr std::size_t discard_buffer_bytes = 64U * 1024U;

// A size option bounded to [1, maximum]: 0 bytes per call would make no
// progress.
std::size_t bounded_size(const AppSpec& app, const std::string& key, std::size_t fallback, std::size_t maximum) {
    return static_cast<std::size_t>(std::clamp<std::uint64_t>(option_size(app, key, fallback), 1, maximum));
}

// How a socket error ends a connection.
CloseInfo ended_by_error(int error) {
    switch (error) {
        case ECONNRESET: return CloseInfo{CloseReason::reset, error, std::nullopt};
        case EPIPE: return CloseInfo{CloseReason::broken_pipe, error, std::nullopt};
        default: return CloseInfo{CloseReason::io_error, error, std::nullopt};
    }
}

std::string byte_text(std::uint8_t byte) {
    char text[8];
    std::snprintf(text, sizeof text, "0x%02x", static_cast<unsigned>(byte));
    return text;
}

// A sink for Transport::read that throws the bytes away.
class DiscardSink {
public:
    std::span<std::uint8_t> prepare(std::size_t n) { return std::span(scratch_).first(std::min(n, scratch_.size())); }
    void commit(std::size_t /*n*/) noexcept {}

private:
    std::vector<std::uint8_t> scratch_ = std::vector<std::uint8_t>(discard_buffer_bytes);
};

// --- servers -------------------------------------------------------------------

// One accepted connection of a byte server.
class ServerConnection {
public:
    virtual ~ServerConnection() = default;
    // Its socket is closed; it only waits to be swept.
    virtual bool ended() const = 0;
    // The stop-reading (true) and resume-reading (false) actions.
    virtual void hold_reading(bool held) = 0;
    // The stop action, and the run's end: close now.
    virtual void stop() = 0;
};

// What byte-echo and bulk-receiver share: the listener, the connections in
// accept order (ended ones are freed outside their own callbacks), the
// reading actions and the observations.
class ByteServerApp : public App {
public:
    explicit ByteServerApp(const AppContext& context)
        : reactor_(context.reactor),
          address_(context.address),
          listener_(context.reactor, listener_options(context.spec),
                    [this](int fd, const SockAddr& /*peer*/) { accepted(fd); }) {
        transport_.trigger = trigger_of(context.spec);
    }
    ~ByteServerApp() override { stop(); }

    VoidResult start() override { return listener_.open(address_); }
    void stop() override {
        listener_.close();
        if (sweep_timer_)
            reactor_.cancel_timer(*sweep_timer_);
        sweep_timer_.reset();
        for (const auto& connection : connections_)
            connection->stop();
        connections_.clear();
    }
    bool done() const override { return true; }
    void act(std::string_view action) override {
        held_ = action == "stop-reading";
        for (const auto& connection : connections_)
            connection->hold_reading(held_);
    }
    AppObservations observations() const override { return observations_; }

    // --- for the connections -----------------------------------------------
    Reactor& reactor() const noexcept { return reactor_; }
    const TransportOptions& transport() const noexcept { return transport_; }
    AppObservations& observed() noexcept { return observations_; }
    bool reading_held() const noexcept { return held_; }
    // A connection closed its socket: free it once its callback returned.
    void connection_ended() {
        if (!sweep_timer_)
            sweep_timer_ = reactor_.add_timer(reactor_.sys().now(), [this] {
                sweep_timer_.reset();
                std::erase_if(connections_, [](const auto& c) { return c->ended(); });
            });
    }

protected:
    virtual std::unique_ptr<ServerConnection> make_connection(int fd, std::uint64_t number) = 0;

private:
    static ListenerOptions listener_options(const AppSpec& spec) {
        ListenerOptions options;
        options.backlog = static_cast<int>(std::clamp<std::uint64_t>(
            option_size(spec, "backlog", static_cast<std::uint64_t>(default_backlog)), 1, 1U << 16));
        return options;
    }

    void accepted(int fd) {
        ++accepted_count_;
        if (connections_.size() >= max_connections_per_server) {
            (void)reactor_.sys().close(fd);
            note_problem(observations_, "connection " + std::to_string(accepted_count_) +
                                            " closed at once: over the limit of open connections");
            return;
        }
        connections_.push_back(make_connection(fd, accepted_count_));
    }

    Reactor& reactor_;
    SockAddr address_;
    TransportOptions transport_;
    Listener listener_;
    bool held_ = false;
    std::uint64_t accepted_count_ = 0;
    std::vector<std::unique_ptr<ServerConnection>> connections_;
    std::optional<Reactor::TimerId> sweep_timer_;  // cancelled by stop(): it captures this
    AppObservations observations_;
};

// --- byte-echo -----------------------------------------------------------------

class EchoConnection final : public ServerConnection, private Transport::Events {
public:
    EchoConnection(ByteServerApp& server, int fd, std::uint64_t number)
        : server_(server), number_(number), transport_(server.reactor(), fd, server.transport(), *this) {
        server_.observed().states.insert(std::string(to_string(ConnectionState::established)));
        if (transport_.open_error() != 0) {
            end(ended_by_error(transport_.open_error()));
            return;
        }
        hold_reading(server_.reading_held());
    }

    bool ended() const override { return ended_; }
    void hold_reading(bool held) override {
        held_ = held;
        update_reading();
    }
    void stop() override { end(CloseInfo{CloseReason::local_close, 0, std::nullopt}); }

private:
    void on_readable() override {
        for (int round = 0; round < rounds_per_wakeup; ++round) {
            if (ended_ || !transport_.reading())
                return;
            // Straight into the output: the bytes read are the bytes owed.
            const ReadOutcome read = transport_.read(output_);
            if (read.status == ReadStatus::failed) {
                end(ended_by_error(read.error));  // before sending: a send would report EPIPE instead
                return;
            }
            if (read.status == ReadStatus::peer_finished) {
                peer_finished_ = true;
                server_.observed().states.insert(std::string(to_string(ConnectionState::half_closed_remote)));
            }
            if (!echo())
                return;
            switch (read.status) {
                case ReadStatus::drained:        // EAGAIN: the next edge or level report brings more
                case ReadStatus::more:           // level: epoll reports again; edge: the transport asked
                case ReadStatus::peer_finished:  // echo() closes once the rest is sent
                    return;
                case ReadStatus::sink_full: continue;  // echo() made room, or stopped reading
                case ReadStatus::failed: EAGAIN_ASSERT(false && "handled above"); return;
            }
        }
        if (!ended_ && transport_.reading() && transport_.options().trigger == TriggerMode::edge)
            server_.reactor().wake_again(transport_.fd(), EPOLLIN);
    }

    void on_writable() override { (void)echo(); }

    // Sends what is owed, as far as the kernel takes it; applies the bound;
    // closes after the peer's FIN once nothing is owed. False if the
    // connection ended.
    bool echo() {
        if (!output_.empty()) {
            const std::size_t before = output_.size();
            const WriteOutcome sent = transport_.flush(output_);
            if (sent.status == WriteStatus::failed) {
                end(ended_by_error(sent.error));
                return false;
            }
            if (output_.size() != before)
                server_.observed().finished = server_.reactor().sys().now();
        }
        AppObservations& observed = server_.observed();
        observed.max_buffered_bytes = std::max<std::uint64_t>(observed.max_buffered_bytes, output_.size());
        if (output_.full())
            backpressured_ = true;
        else if (output_.size() <= echo_resume_reading_bytes)
            backpressured_ = false;
        if (peer_finished_ && output_.empty()) {
            end(CloseInfo{CloseReason::peer_closed, 0, std::nullopt});
            return false;
        }
        update_reading();
        return true;
    }

    // The one place reading is turned on or off.
    void update_reading() {
        if (!ended_)
            transport_.set_reading(!held_ && !backpressured_ && !peer_finished_);
    }

    void end(const CloseInfo& info) {
        if (ended_)
            return;
        ended_ = true;
        transport_.close();
        AppObservations& observed = server_.observed();
        note_ending(observed, info);
        observed.states.insert(std::string(to_string(ConnectionState::closed)));
        observed.finished = server_.reactor().sys().now();
        if (info.errno_value != 0) {
            ++observed.errors;
            note_problem(observed, "connection " + std::to_string(number_) + ": " + describe(info) + " with " +
                                       std::to_string(output_.size()) + " bytes unsent");
        }
        server_.connection_ended();
    }

    ByteServerApp& server_;
    std::uint64_t number_;
    Transport transport_;
    ByteBuffer output_{echo_output_limit_bytes};
    bool held_ = false;           // the stop-reading action
    bool backpressured_ = false;  // output at its bound, not yet half sent
    bool peer_finished_ = false;  // recv returned 0
    bool ended_ = false;
};

class ByteEchoApp final : public ByteServerApp {
public:
    explicit ByteEchoApp(const AppContext& context) : ByteServerApp(context) {}
    ~ByteEchoApp() override { stop(); }

private:
    std::unique_ptr<ServerConnection> make_connection(int fd, std::uint64_t number) override {
        return std::make_unique<EchoConnection>(*this, fd, number);
    }
};

// --- bulk-receiver ---------------------------------------------------------------

// A sink for Transport::read that checks what it is given against the
// pattern. After the first wrong byte (or a byte past the expected total)
// it offers no more room, so the read stops there.
class PatternSink {
public:
    PatternSink(std::size_t chunk_bytes, std::uint64_t expected_bytes)
        : scratch_(chunk_bytes), expected_bytes_(expected_bytes) {}

    std::span<std::uint8_t> prepare(std::size_t n) {
        if (wrong_at_)
            return {};
        return std::span(scratch_).first(std::min(n, scratch_.size()));
    }
    void commit(std::size_t n) noexcept {
        EAGAIN_ASSERT(n <= scratch_.size());
        const std::span<const std::uint8_t> got(scratch_.data(), n);
        const std::size_t allowed = static_cast<std::size_t>(
            std::min<std::uint64_t>(n, expected_bytes_ - std::min(expected_bytes_, verified_)));
        const std::optional<std::size_t> wrong = first_pattern_mismatch(verified_, got.first(allowed));
        if (wrong) {
            wrong_at_ = verified_ + *wrong;
            wrong_byte_ = got[*wrong];
            verified_ += *wrong;
        } else if (allowed < n) {
            wrong_at_ = verified_ + allowed;  // beyond the end
            wrong_byte_ = got[allowed];
            verified_ += allowed;
        } else {
            verified_ += n;
        }
    }

    std::uint64_t verified() const noexcept { return verified_; }
    // The stream offset of the first wrong byte, if there was one.
    std::optional<std::uint64_t> wrong_at() const noexcept { return wrong_at_; }
    std::uint8_t wrong_byte() const noexcept { return wrong_byte_; }

private:
    std::vector<std::uint8_t> scratch_;
    std::uint64_t expected_bytes_;
    std::uint64_t verified_ = 0;
    std::optional<std::uint64_t> wrong_at_;
    std::uint8_t wrong_byte_ = 0;
};

class ReceiverConnection final : public ServerConnection, private Transport::Events {
public:
    ReceiverConnection(ByteServerApp& server, int fd, std::uint64_t number, std::uint64_t expected_bytes,
                       std::size_t read_chunk_bytes)
        : server_(server),
          number_(number),
          expected_bytes_(expected_bytes),
          sink_(read_chunk_bytes, expected_bytes),
          transport_(server.reactor(), fd, with_chunk(server.transport(), read_chunk_bytes), *this) {
        server_.observed().states.insert(std::string(to_string(ConnectionState::established)));
        if (transport_.open_error() != 0) {
            end(ended_by_error(transport_.open_error()));
            return;
        }
        hold_reading(server_.reading_held());
    }

    bool ended() const override { return ended_; }
    void hold_reading(bool held) override {
        if (!ended_)
            transport_.set_reading(!held);
    }
    void stop() override { end(CloseInfo{CloseReason::local_close, 0, std::nullopt}); }

private:
    static TransportOptions with_chunk(TransportOptions options, std::size_t read_chunk_bytes) {
        options.recv_chunk_bytes = read_chunk_bytes;
        options.read_budget_bytes = std::max(options.read_budget_bytes, read_chunk_bytes);
        return options;
    }

    void on_readable() override {
        for (int round = 0; round < rounds_per_wakeup; ++round) {
            if (ended_ || !transport_.reading())
                return;
            const std::uint64_t before = sink_.verified();
            const ReadOutcome read = transport_.read(sink_);
            AppObservations& observed = server_.observed();
            observed.bytes_received += sink_.verified() - before;
            if (sink_.verified() != before)
                observed.finished = server_.reactor().sys().now();
            if (sink_.wrong_at()) {
                wrong_byte();
                return;
            }
            switch (read.status) {
                case ReadStatus::drained:  // EAGAIN: the next edge or level report brings more
                case ReadStatus::more:     // level: epoll reports again; edge: the transport asked
                    return;
                case ReadStatus::sink_full: continue;  // only after a wrong byte, handled above
                case ReadStatus::peer_finished: end(CloseInfo{CloseReason::peer_closed, 0, std::nullopt}); return;
                case ReadStatus::failed: end(ended_by_error(read.error)); return;
            }
        }
        if (!ended_ && transport_.reading() && transport_.options().trigger == TriggerMode::edge)
            server_.reactor().wake_again(transport_.fd(), EPOLLIN);
    }

    void on_writable() override {}  // never writes

    void wrong_byte() {
        const std::uint64_t at = *sink_.wrong_at();
        AppObservations& observed = server_.observed();
        ++observed.mismatches;
        note_problem(observed, "connection " + std::to_string(number_) + ": " +
                                   (at >= expected_bytes_ ? "byte " + std::to_string(at) + " received, beyond the " +
                                                                std::to_string(expected_bytes_) + " expected"
                                                          : "byte at offset " + std::to_string(at) + " is " +
                                                                byte_text(sink_.wrong_byte()) + ", expected " +
                                                                byte_text(stream_pattern_byte(at))));
        mismatched_ = true;
        end(CloseInfo{CloseReason::local_close, 0, std::nullopt});
    }

    void end(const CloseInfo& info) {
        if (ended_)
            return;
        ended_ = true;
        transport_.close();
        AppObservations& observed = server_.observed();
        note_ending(observed, info);
        observed.states.insert(std::string(to_string(ConnectionState::closed)));
        // A wrong byte is already counted, as a mismatch.
        if (!mismatched_ && (sink_.verified() != expected_bytes_ || info.errno_value != 0)) {
            ++observed.errors;
            note_problem(observed, "connection " + std::to_string(number_) + ": ended after " +
                                       std::to_string(sink_.verified()) + " of " + std::to_string(expected_bytes_) +
                                       " bytes: " + describe(info));
        }
        server_.connection_ended();
    }

    ByteServerApp& server_;
    std::uint64_t number_;
    std::uint64_t expected_bytes_;
    PatternSink sink_;
    Transport transport_;
    bool mismatched_ = false;
    bool ended_ = false;
};

class BulkReceiverApp final : public ByteServerApp {
public:
    explicit BulkReceiverApp(const AppContext& context)
        : ByteServerApp(context),
          expected_bytes_(option_size(context.spec, "bytes", 0)),
          read_chunk_bytes_(bounded_size(context.spec, "read-chunk", default_chunk_bytes, max_chunk_bytes)) {}
    ~BulkReceiverApp() override { stop(); }

private:
    std::unique_ptr<ServerConnection> make_connection(int fd, std::uint64_t number) override {
        return std::make_unique<ReceiverConnection>(*this, fd, number, expected_bytes_, read_chunk_bytes_);
    }

    std::uint64_t expected_bytes_;
    std::size_t read_chunk_bytes_;
};

// --- bulk-sender -------------------------------------------------------------------

class BulkSenderApp final : public App, private Transport::Events {
public:
    explicit BulkSenderApp(const AppContext& context)
        : reactor_(context.reactor),
          server_(context.address),
          total_bytes_(option_size(context.spec, "bytes", 0)),
          chunk_bytes_(bounded_size(context.spec, "chunk", default_chunk_bytes, max_chunk_bytes)),
          connect_timeout_(option_duration(context.spec, "connect-timeout", Nanos{0})) {
        transport_options_.trigger = trigger_of(context.spec);
    }
    ~BulkSenderApp() override { stop(); }

    VoidResult start() override {
        EAGAIN_ASSERT(!started_);
        started_ = true;
        observations_.states.insert(std::string(to_string(ConnectionState::connecting)));
        const Transport::ConnectStart connect = Transport::start_connect(reactor_.sys(), server_);
        if (connect.status == ConnectStatus::failed) {
            end(CloseInfo{CloseReason::connect_failed, connect.error, std::nullopt});
            return VoidResult::success({});
        }
        const bool connecting = connect.status == ConnectStatus::in_progress;
        transport_ = std::make_unique<Transport>(reactor_, connect.fd, transport_options_,
                                                 static_cast<Transport::Events&>(*this), connecting);
        if (transport_->open_error() != 0) {
            end(ended_by_error(transport_->open_error()));
            return VoidResult::success({});
        }
        if (!connecting) {
            established();
        } else if (connect_timeout_ > Nanos{0}) {
            // `connect-timeout D`: still connecting after D is an ETIMEDOUT
            // of our own (0, the default: the kernel's SYN retries decide).
            connect_timer_ = reactor_.add_timer(reactor_.sys().now() + connect_timeout_, [this] {
                connect_timer_.reset();
                if (!ended_ && transport_ && transport_->connecting())
                    end(CloseInfo{CloseReason::connect_timeout, ETIMEDOUT, std::nullopt});
            });
        }
        return VoidResult::success({});
    }

    void stop() override {
        if (started_)
            end(CloseInfo{CloseReason::local_close, 0, std::nullopt});
    }
    bool done() const override { return ended_; }
    void act(std::string_view action) override {
        held_ = action == "stop-reading";
        update_reading();
    }
    AppObservations observations() const override { return observations_; }

private:
    void established() {
        cancel_connect_timer();
        observations_.states.insert(std::string(to_string(ConnectionState::established)));
        update_reading();
        send_more();
    }

    void on_writable() override {
        if (ended_)
            return;
        if (transport_->connecting()) {
            // connect(2): EPOLLOUT comes on failure too; SO_ERROR says which.
            const int error = transport_->finish_connect();
            if (error != 0) {
                end(CloseInfo{CloseReason::connect_failed, error, std::nullopt});
                return;
            }
            established();
            return;
        }
        send_more();
    }

    // Hands the kernel the stream, one chunk offered per send, until it is
    // all sent, the kernel takes no more (EPOLLOUT brings us back), or this
    // wake-up's budget is spent.
    void send_more() {
        std::size_t budget = send_budget_bytes;
        while (!ended_ && !write_shut_ && sent_bytes_ < total_bytes_) {
            if (budget == 0) {
                // Writable still, as far as we know: no EPOLLOUT edge will
                // come, so ask to be woken once the others had their turn.
                reactor_.wake_again(transport_->fd(), EPOLLOUT);
                return;
            }
            if (chunk_sent_ == chunk_.size()) {
                chunk_.resize(
                    static_cast<std::size_t>(std::min<std::uint64_t>(chunk_bytes_, total_bytes_ - sent_bytes_)));
                fill_stream_pattern(sent_bytes_, chunk_);
                chunk_sent_ = 0;
            }
            // Transport::send continues after short writes and retries
            // EINTR; what it returns untaken stays in chunk_, in order.
            const WriteOutcome sent = transport_->send(std::span(chunk_).subspan(chunk_sent_));
            chunk_sent_ += sent.bytes;
            sent_bytes_ += sent.bytes;
            budget -= std::min(budget, sent.bytes);
            if (sent.bytes > 0)
                observations_.finished = reactor_.sys().now();
            EAGAIN_ASSERT(chunk_sent_ <= chunk_.size());
            observations_.max_buffered_bytes =
                std::max<std::uint64_t>(observations_.max_buffered_bytes, chunk_.size() - chunk_sent_);
            switch (sent.status) {
                case WriteStatus::done: break;
                case WriteStatus::pending: return;  // EPOLLOUT is requested
                case WriteStatus::failed: end(ended_by_error(sent.error)); return;
                case WriteStatus::over_limit: EAGAIN_ASSERT(false && "send() has no limit"); return;
            }
        }
        if (!ended_ && !write_shut_ && sent_bytes_ == total_bytes_)
            finish_sending();
    }

    // shutdown(SHUT_WR): our FIN goes after the last byte; then the peer's
    // FIN ends the connection, or fin_wait does.
    void finish_sending() {
        const VoidResult shut = transport_->shutdown_write();
        if (!shut.ok()) {
            end(ended_by_error(shut.error));
            return;
        }
        write_shut_ = true;
        observations_.states.insert(std::string(to_string(ConnectionState::half_closed_local)));
        if (peer_finished_) {
            end(CloseInfo{CloseReason::peer_closed, 0, std::nullopt});
            return;
        }
        fin_timer_ = reactor_.add_timer(reactor_.sys().now() + fin_wait, [this] {
            fin_timer_.reset();
            end(CloseInfo{CloseReason::close_timeout, 0, std::nullopt});
        });
    }

    void on_readable() override {
        for (int round = 0; round < rounds_per_wakeup; ++round) {
            if (ended_ || !transport_->reading())
                return;
            const ReadOutcome read = transport_->read(discard_);
            switch (read.status) {
                case ReadStatus::drained:  // EAGAIN: the next edge or level report brings more
                case ReadStatus::more:     // level: epoll reports again; edge: the transport asked
                    return;
                case ReadStatus::sink_full: continue;  // never: the discard sink always has room
                case ReadStatus::peer_finished:
                    // The peer sends no more; it may still read, so a sender
                    // that is not done goes on (a peer that closed answers
                    // with RST, and the send fails).
                    peer_finished_ = true;
                    if (write_shut_)
                        end(CloseInfo{CloseReason::peer_closed, 0, std::nullopt});
                    else
                        update_reading();
                    return;
                case ReadStatus::failed: end(ended_by_error(read.error)); return;
            }
        }
        if (!ended_ && transport_->reading() && transport_options_.trigger == TriggerMode::edge)
            reactor_.wake_again(transport_->fd(), EPOLLIN);
    }

    // The one place reading is turned on or off.
    void update_reading() {
        if (!ended_ && transport_ && !transport_->connecting())
            transport_->set_reading(!held_ && !peer_finished_);
    }

    void end(const CloseInfo& info) {
        if (ended_)
            return;
        ended_ = true;
        if (fin_timer_)
            reactor_.cancel_timer(*fin_timer_);
        fin_timer_.reset();
        cancel_connect_timer();
        // Closed, not destroyed: this may run inside the transport's own callback.
        if (transport_)
            transport_->close();
        note_ending(observations_, info);
        observations_.states.insert(std::string(to_string(ConnectionState::closed)));
        observations_.finished = reactor_.sys().now();
        const bool complete = write_shut_ && info.errno_value == 0;
        if (!complete) {
            ++observations_.errors;
            note_problem(observations_, "ended after " + std::to_string(sent_bytes_) + " of " +
                                            std::to_string(total_bytes_) + " bytes sent: " + describe(info));
        }
    }

    void cancel_connect_timer() {
        if (connect_timer_)
            reactor_.cancel_timer(*connect_timer_);
        connect_timer_.reset();
    }

    Reactor& reactor_;
    SockAddr server_;
    std::uint64_t total_bytes_;
    std::size_t chunk_bytes_;
    TransportOptions transport_options_;
    std::unique_ptr<Transport> transport_;
    std::vector<std::uint8_t> chunk_;  // the chunk being sent: the pattern at [sent_bytes_ - chunk_sent_, ...)
    std::size_t chunk_sent_ = 0;       // of chunk_, taken by the kernel
    std::uint64_t sent_bytes_ = 0;     // of the stream, taken by the kernel
    DiscardSink discard_;
    bool started_ = false;
    bool held_ = false;           // the stop-reading action
    bool write_shut_ = false;     // our FIN is queued
    bool peer_finished_ = false;  // recv returned 0
    bool ended_ = false;
    std::optional<Reactor::TimerId> fin_timer_;      // cancelled by end(): it captures this
    Nanos connect_timeout_;                          // 0: none
    std::optional<Reactor::TimerId> connect_timer_;  // cancelled once established or ended: it captures this
    AppObservations observations_;
};

template <class T>
AppFactory make() {
    return [](const AppContext& context) { return std::make_unique<T>(context); };
}

}  // namespace

std::map<std::string, AppKind> add_byte_app_kinds(std::map<std::string, AppKind> kinds) {
    kinds.emplace("byte-echo", AppKind{make<ByteEchoApp>(),
                                       true,
                                       {"stop-reading", "resume-reading"},
                                       {"max-buffered", "error", "state", "no-errors"},
                                       {}});
    kinds.emplace("bulk-sender", AppKind{make<BulkSenderApp>(),
                                         false,
                                         {"stop-reading", "resume-reading"},
                                         {"max-buffered", "error", "state", "no-errors"},
                                         {}});
    kinds.emplace("bulk-receiver", AppKind{make<BulkReceiverApp>(),
                                           true,
                                           {"stop-reading", "resume-reading"},
                                           {"bytes-received", "error", "state", "no-errors"},
                                           {}});
    return kinds;
}

}  // namespace eagain::harness
