// apps/byte_apps.h: ByteEchoServer, BulkReceiverServer, BulkSender.
#include "apps/byte_apps.h"

#include "apps/byte_pattern.h"
#include "core/assert.h"
#include "core/byte_buffer.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <utility>

namespace eagain {

namespace {

using namespace std::chrono_literals;

// --- limits ------------------------------------------------------------------

// ByteEchoServer reads again once its unsent echo is down to this.
constexpr std::size_t echo_resume_reading_bytes = echo_output_limit_bytes / 2;
// Read-then-send rounds per wake-up; an edge-triggered reader that uses them
// all asks the reactor to wake it again (no new edge comes for bytes
// already queued).
constexpr int rounds_per_wakeup = 4;
// BulkSender: bytes handed over per wake-up before letting others run, and
// how long it waits for the peer's FIN after sending its own.
constexpr std::size_t send_budget_bytes = 256U * 1024U;
constexpr Nanos fin_wait = 10s;

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

}  // namespace

void ByteAppReport::note_ending(const CloseInfo& info) {
    const auto add = [&](std::string name) {
        if (std::find(endings.begin(), endings.end(), name) == endings.end())
            endings.push_back(std::move(name));
    };
    if (info.errno_value != 0)
        add(errno_name(info.errno_value));
    add(std::string(to_string(info.reason)));
}

void ByteAppReport::note_problem(std::string what) {
    if (problems.size() < problems_kept)
        problems.push_back(std::move(what));
}

// --- servers -------------------------------------------------------------------

// One accepted connection of a byte server.
class ServerConnection {
public:
    virtual ~ServerConnection() = default;
    // Its socket is closed; it only waits to be swept.
    virtual bool ended() const = 0;
    // ByteServer::hold_reading: stop (true) or resume (false) reading.
    virtual void hold_reading(bool held) = 0;
    // ByteServer::stop: close now.
    virtual void stop() = 0;
};

ByteServer::ByteServer(Reactor& reactor, const ByteServerOptions& options)
    : reactor_(reactor),
      options_(options),
      listener_(reactor, options.listener, [this](int fd, const SockAddr& /*peer*/) { accepted(fd); }) {}

ByteServer::~ByteServer() {
    stop();
}

VoidResult ByteServer::open() {
    return listener_.open(options_.listen_address);
}

void ByteServer::stop() {
    listener_.close();
    if (sweep_timer_)
        reactor_.cancel_timer(*sweep_timer_);
    sweep_timer_.reset();
    for (const auto& connection : connections_)
        connection->stop();
    connections_.clear();
}

void ByteServer::hold_reading(bool held) {
    held_ = held;
    for (const auto& connection : connections_)
        connection->hold_reading(held_);
}

void ByteServer::connection_ended() {
    if (!sweep_timer_)
        sweep_timer_ = reactor_.add_timer(reactor_.sys().now(), [this] {
            sweep_timer_.reset();
            std::erase_if(connections_, [](const auto& c) { return c->ended(); });
        });
}

void ByteServer::accepted(int fd) {
    ++accepted_count_;
    if (connections_.size() >= max_connections_per_byte_server) {
        (void)reactor_.sys().close(fd);
        report_.note_problem("connection " + std::to_string(accepted_count_) +
                             " closed at once: over the limit of open connections");
        return;
    }
    connections_.push_back(make_connection(fd, accepted_count_));
}

namespace {

// --- byte-echo -----------------------------------------------------------------

class EchoConnection final : public ServerConnection, private Transport::Events {
public:
    EchoConnection(ByteServer& server, int fd, std::uint64_t number)
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
        ByteAppReport& observed = server_.observed();
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
        ByteAppReport& observed = server_.observed();
        observed.note_ending(info);
        observed.states.insert(std::string(to_string(ConnectionState::closed)));
        observed.finished = server_.reactor().sys().now();
        if (info.errno_value != 0) {
            ++observed.errors;
            observed.note_problem("connection " + std::to_string(number_) + ": " + describe(info) + " with " +
                                  std::to_string(output_.size()) + " bytes unsent");
        }
        server_.connection_ended();
    }

    ByteServer& server_;
    std::uint64_t number_;
    Transport transport_;
    ByteBuffer output_{echo_output_limit_bytes};
    bool held_ = false;           // ServerConnection::hold_reading
    bool backpressured_ = false;  // output at its bound, not yet half sent
    bool peer_finished_ = false;  // recv returned 0
    bool ended_ = false;
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
    ReceiverConnection(ByteServer& server, int fd, std::uint64_t number, std::uint64_t expected_bytes,
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
            ByteAppReport& observed = server_.observed();
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
        ByteAppReport& observed = server_.observed();
        ++observed.mismatches;
        observed.note_problem("connection " + std::to_string(number_) + ": " +
                              (at >= expected_bytes_
                                   ? "byte " + std::to_string(at) + " received, beyond the " +
                                         std::to_string(expected_bytes_) + " expected"
                                   : "byte at offset " + std::to_string(at) + " is " + byte_text(sink_.wrong_byte()) +
                                         ", expected " + byte_text(stream_pattern_byte(at))));
        mismatched_ = true;
        end(CloseInfo{CloseReason::local_close, 0, std::nullopt});
    }

    void end(const CloseInfo& info) {
        if (ended_)
            return;
        ended_ = true;
        transport_.close();
        ByteAppReport& observed = server_.observed();
        observed.note_ending(info);
        observed.states.insert(std::string(to_string(ConnectionState::closed)));
        // A wrong byte is already counted, as a mismatch.
        if (!mismatched_ && (sink_.verified() != expected_bytes_ || info.errno_value != 0)) {
            ++observed.errors;
            observed.note_problem("connection " + std::to_string(number_) + ": ended after " +
                                  std::to_string(sink_.verified()) + " of " + std::to_string(expected_bytes_) +
                                  " bytes: " + describe(info));
        }
        server_.connection_ended();
    }

    ByteServer& server_;
    std::uint64_t number_;
    std::uint64_t expected_bytes_;
    PatternSink sink_;
    Transport transport_;
    bool mismatched_ = false;
    bool ended_ = false;
};

}  // namespace

ByteEchoServer::~ByteEchoServer() {
    stop();
}

std::unique_ptr<ServerConnection> ByteEchoServer::make_connection(int fd, std::uint64_t number) {
    return std::make_unique<EchoConnection>(*this, fd, number);
}

BulkReceiverServer::BulkReceiverServer(Reactor& reactor, const BulkReceiverOptions& options)
    : ByteServer(reactor, options.server),
      expected_bytes_(options.expected_bytes),
      read_chunk_bytes_(options.read_chunk_bytes) {
    EAGAIN_ASSERT(read_chunk_bytes_ >= 1);
}

BulkReceiverServer::~BulkReceiverServer() {
    stop();
}

std::unique_ptr<ServerConnection> BulkReceiverServer::make_connection(int fd, std::uint64_t number) {
    return std::make_unique<ReceiverConnection>(*this, fd, number, expected_bytes_, read_chunk_bytes_);
}

// --- bulk-sender -------------------------------------------------------------------

BulkSender::BulkSender(Reactor& reactor, const BulkSenderOptions& options) : reactor_(reactor), options_(options) {
    EAGAIN_ASSERT(options_.chunk_bytes >= 1);
}

BulkSender::~BulkSender() {
    stop();
}

VoidResult BulkSender::start() {
    EAGAIN_ASSERT(!started_);
    started_ = true;
    report_.states.insert(std::string(to_string(ConnectionState::connecting)));
    const Transport::ConnectStart connect = Transport::start_connect(reactor_.sys(), options_.server);
    if (connect.status == ConnectStatus::failed) {
        end(CloseInfo{CloseReason::connect_failed, connect.error, std::nullopt});
        return VoidResult::success({});
    }
    const bool connecting = connect.status == ConnectStatus::in_progress;
    transport_ = std::make_unique<Transport>(reactor_, connect.fd, options_.transport,
                                             static_cast<Transport::Events&>(*this), connecting);
    if (transport_->open_error() != 0) {
        end(ended_by_error(transport_->open_error()));
        return VoidResult::success({});
    }
    if (!connecting) {
        established();
    } else if (options_.connect_timeout > Nanos{0}) {
        // Still connecting after connect_timeout is an ETIMEDOUT of our
        // own (0, the default: the kernel's SYN retries decide).
        connect_timer_ = reactor_.add_timer(reactor_.sys().now() + options_.connect_timeout, [this] {
            connect_timer_.reset();
            if (!ended_ && transport_ && transport_->connecting())
                end(CloseInfo{CloseReason::connect_timeout, ETIMEDOUT, std::nullopt});
        });
    }
    return VoidResult::success({});
}

void BulkSender::stop() {
    if (started_)
        end(CloseInfo{CloseReason::local_close, 0, std::nullopt});
}
void BulkSender::hold_reading(bool held) {
    held_ = held;
    update_reading();
}

void BulkSender::established() {
    cancel_connect_timer();
    report_.states.insert(std::string(to_string(ConnectionState::established)));
    update_reading();
    send_more();
}

void BulkSender::on_writable() {
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
void BulkSender::send_more() {
    std::size_t budget = send_budget_bytes;
    while (!ended_ && !write_shut_ && sent_bytes_ < options_.total_bytes) {
        if (budget == 0) {
            // Writable still, as far as we know: no EPOLLOUT edge will
            // come, so ask to be woken once the others had their turn.
            reactor_.wake_again(transport_->fd(), EPOLLOUT);
            return;
        }
        if (chunk_sent_ == chunk_.size()) {
            chunk_.resize(static_cast<std::size_t>(
                std::min<std::uint64_t>(options_.chunk_bytes, options_.total_bytes - sent_bytes_)));
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
            report_.finished = reactor_.sys().now();
        EAGAIN_ASSERT(chunk_sent_ <= chunk_.size());
        report_.max_buffered_bytes = std::max<std::uint64_t>(report_.max_buffered_bytes, chunk_.size() - chunk_sent_);
        switch (sent.status) {
            case WriteStatus::done: break;
            case WriteStatus::pending: return;  // EPOLLOUT is requested
            case WriteStatus::failed: end(ended_by_error(sent.error)); return;
            case WriteStatus::over_limit: EAGAIN_ASSERT(false && "send() has no limit"); return;
        }
    }
    if (!ended_ && !write_shut_ && sent_bytes_ == options_.total_bytes)
        finish_sending();
}

// shutdown(SHUT_WR): our FIN goes after the last byte; then the peer's
// FIN ends the connection, or fin_wait does.
void BulkSender::finish_sending() {
    const VoidResult shut = transport_->shutdown_write();
    if (!shut.ok()) {
        end(ended_by_error(shut.error));
        return;
    }
    write_shut_ = true;
    report_.states.insert(std::string(to_string(ConnectionState::half_closed_local)));
    if (peer_finished_) {
        end(CloseInfo{CloseReason::peer_closed, 0, std::nullopt});
        return;
    }
    fin_timer_ = reactor_.add_timer(reactor_.sys().now() + fin_wait, [this] {
        fin_timer_.reset();
        end(CloseInfo{CloseReason::close_timeout, 0, std::nullopt});
    });
}

void BulkSender::on_readable() {
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
    if (!ended_ && transport_->reading() && options_.transport.trigger == TriggerMode::edge)
        reactor_.wake_again(transport_->fd(), EPOLLIN);
}

// The one place reading is turned on or off.
void BulkSender::update_reading() {
    if (!ended_ && transport_ && !transport_->connecting())
        transport_->set_reading(!held_ && !peer_finished_);
}

void BulkSender::end(const CloseInfo& info) {
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
    report_.note_ending(info);
    report_.states.insert(std::string(to_string(ConnectionState::closed)));
    report_.finished = reactor_.sys().now();
    const bool complete = write_shut_ && info.errno_value == 0;
    if (!complete) {
        ++report_.errors;
        report_.note_problem("ended after " + std::to_string(sent_bytes_) + " of " +
                             std::to_string(options_.total_bytes) + " bytes sent: " + describe(info));
    }
}

void BulkSender::cancel_connect_timer() {
    if (connect_timer_)
        reactor_.cancel_timer(*connect_timer_);
    connect_timer_.reset();
}

}  // namespace eagain
