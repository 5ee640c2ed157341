// Naive policy variants: connection policy written the way the seed programs
// write it, each with the one mistake its pitfall test is about. They run on
// the same Reactor and Sys as the real ConnectionDriver, so the same check
// judges both: true for the driver, false for these.
//
//   NaiveConnector        takes the first EPOLLOUT of a non-blocking connect
//                         as success: no SO_ERROR (nor connect()'s own
//                         result), no connect timeout.
//   NaiveHeartbeatClient  pings on a fixed timer whatever the traffic, and
//                         never decides the peer is dead.
//   NaiveReconnectClient  retries after a delay that ignores the schedule:
//                         a fixed 1 s, or doubling that never starts over.
//   NaiveFrameServer      trusts the length field: waits for the body it
//                         announces (4 GiB for 0xffffffff), never closes.
//   NaiveBufferingEchoServer  always reads, and queues every echo in an
//                         output buffer without a limit.
//
// Test code, not a pattern: every one of them is wrong on purpose.
#pragma once

#include "core/byte_order.h"
#include "core/connection_driver.h"
#include "core/frame.h"
#include "core/reactor.h"
#include "core/sys.h"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::test {

// ---------------------------------------------------------------------------

class NaiveConnector final : private Reactor::Handler {
public:
    explicit NaiveConnector(Reactor& reactor) noexcept : reactor_(reactor), sys_(reactor.sys()) {}
    ~NaiveConnector() {
        if (fd_ < 0)
            return;
        if (reactor_.registered(fd_))
            (void)reactor_.remove(fd_);
        (void)sys_.close(fd_);
    }
    NaiveConnector(const NaiveConnector&) = delete;
    NaiveConnector& operator=(const NaiveConnector&) = delete;

    void start_connect(const SockAddr& address) {
        const FdResult socket = sys_.socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (!socket.ok())
            return;
        fd_ = socket.value;
        // The seed's comment: "non-blocking, so connect returns at once; the
        // result comes as EPOLLOUT". Its return value is not looked at.
        (void)sys_.connect(fd_, address);
        (void)reactor_.add(fd_, EPOLLOUT, *this);
    }

    // What the app was told.
    bool told_connected() const noexcept { return connected_; }
    int fd() const noexcept { return fd_; }

private:
    void on_ready(std::uint32_t events) override {
        if (connected_ || (events & EPOLLOUT) == 0)
            return;
        // The pitfall: EPOLLOUT also reports a failed connect; only SO_ERROR
        // says which. Never read here.
        connected_ = true;
        (void)reactor_.modify(fd_, EPOLLIN);
    }

    Reactor& reactor_;
    Sys& sys_;
    int fd_ = -1;
    bool connected_ = false;
};

// ---------------------------------------------------------------------------

// Same constructor and calls as ConnectionDriver, so one scenario runs both.
// config's heartbeat_idle_timeout and heartbeat_cmd set the fixed timer; the
// driver underneath has its own heartbeat and dead-peer detection off.
class NaiveHeartbeatClient final : private ConnectionDriver::App {
public:
    NaiveHeartbeatClient(Reactor& reactor, ConnectionDriver::App& app, ConnectionRole role,
                         const ConnectionConfig& config, const TransportOptions& transport, std::uint64_t seed)
        : reactor_(reactor),
          app_(app),
          interval_(config.heartbeat_idle_timeout),
          heartbeat_cmd_(config.heartbeat_cmd),
          driver_(reactor, *this, role, without_heartbeat(config), transport, seed) {}
    ~NaiveHeartbeatClient() {
        if (timer_)
            reactor_.cancel_timer(*timer_);
    }
    NaiveHeartbeatClient(const NaiveHeartbeatClient&) = delete;
    NaiveHeartbeatClient& operator=(const NaiveHeartbeatClient&) = delete;

    void start_connect(const SockAddr& peer) { driver_.start_connect(peer); }
    SendError send_frame(const DefaultHeader& header, std::span<const std::uint8_t> body) {
        return driver_.send_frame(header, body);
    }
    const ConnectionDriver& driver() const noexcept { return driver_; }

private:
    static ConnectionConfig without_heartbeat(ConnectionConfig config) {
        config.heartbeat_idle_timeout = Nanos{0};
        config.dead_peer_intervals = 0;
        return config;
    }

    // setInterval(ping, 30 s) once connected; traffic does not move it.
    void arm() {
        timer_ = reactor_.add_timer(reactor_.sys().now() + interval_, [this] {
            timer_.reset();
            const DefaultHeader ping{heartbeat_cmd_, next_seq_++, 0, 0, 0};
            if (driver_.send_frame(ping, {}) == SendError::none)
                arm();
        });
    }

    void on_established(ConnectionDriver& driver) override {
        arm();
        app_.on_established(driver);
    }
    void on_frame(ConnectionDriver& driver, const Frame& frame) override { app_.on_frame(driver, frame); }
    void on_event(ConnectionDriver& driver, const Event& event) override { app_.on_event(driver, event); }
    void on_closed(ConnectionDriver& driver, const CloseInfo& info, bool reconnecting) override {
        if (timer_)
            reactor_.cancel_timer(*timer_);
        timer_.reset();
        app_.on_closed(driver, info, reconnecting);
    }

    Reactor& reactor_;
    ConnectionDriver::App& app_;
    Nanos interval_;
    std::uint32_t heartbeat_cmd_;
    std::uint32_t next_seq_ = 0;
    std::optional<Reactor::TimerId> timer_;
    ConnectionDriver driver_;
};

// ---------------------------------------------------------------------------

// The delay before the next attempt, given how many attempts were made in
// all (1 after the first).
using NaiveDelayRule = std::function<Nanos(std::uint32_t attempts_made)>;

// "sleep(1); reconnect();"
inline NaiveDelayRule fixed_delay(Nanos delay) {
    return [delay](std::uint32_t /*attempts_made*/) { return delay; };
}

// Doubles per attempt up to cap, counting every attempt ever made: a success
// in between does not start it over.
inline NaiveDelayRule doubling_never_reset(Nanos initial, Nanos cap) {
    return [initial, cap](std::uint32_t attempts_made) {
        Nanos delay = initial;
        for (std::uint32_t k = 1; k < attempts_made && delay < cap; ++k)
            delay = std::min(cap, delay * 2);
        return delay;
    };
}

// A fresh ConnectionDriver (reconnect off) per attempt; on every loss, the
// next attempt at now + rule(attempts made).
class NaiveReconnectClient final : private ConnectionDriver::App {
public:
    // Attempts beyond this are not made (keeps a broken rule bounded).
    static constexpr std::uint32_t max_attempts = 256;

    NaiveReconnectClient(Reactor& reactor, ConnectionDriver::App& app, const ConnectionConfig& config,
                         const TransportOptions& transport, std::uint64_t seed, NaiveDelayRule rule)
        : reactor_(reactor),
          app_(app),
          config_(without_reconnect(config)),
          transport_(transport),
          seed_(seed),
          rule_(std::move(rule)) {}
    ~NaiveReconnectClient() {
        if (timer_)
            reactor_.cancel_timer(*timer_);
    }
    NaiveReconnectClient(const NaiveReconnectClient&) = delete;
    NaiveReconnectClient& operator=(const NaiveReconnectClient&) = delete;

    void start_connect(const SockAddr& peer) {
        peer_ = peer;
        attempt();
    }

private:
    static ConnectionConfig without_reconnect(ConnectionConfig config) {
        config.reconnect = false;
        return config;
    }

    void attempt() {
        if (attempts_ >= max_attempts)
            return;
        ++attempts_;
        // Runs from start_connect or a timer, never inside a driver's
        // callback, so finished drivers may go.
        std::erase_if(drivers_, [](const std::unique_ptr<ConnectionDriver>& d) { return d->finished(); });
        drivers_.push_back(std::make_unique<ConnectionDriver>(reactor_, static_cast<ConnectionDriver::App&>(*this),
                                                              ConnectionRole::client, config_, transport_,
                                                              seed_ + attempts_));
        drivers_.back()->start_connect(peer_);
    }

    void on_established(ConnectionDriver& driver) override { app_.on_established(driver); }
    void on_frame(ConnectionDriver& driver, const Frame& frame) override { app_.on_frame(driver, frame); }
    void on_event(ConnectionDriver& driver, const Event& event) override { app_.on_event(driver, event); }
    void on_closed(ConnectionDriver& driver, const CloseInfo& info, bool /*reconnecting*/) override {
        app_.on_closed(driver, info, true);
        timer_ = reactor_.add_timer(reactor_.sys().now() + rule_(attempts_), [this] {
            timer_.reset();
            attempt();
        });
    }

    Reactor& reactor_;
    ConnectionDriver::App& app_;
    ConnectionConfig config_;
    TransportOptions transport_;
    std::uint64_t seed_;
    NaiveDelayRule rule_;
    SockAddr peer_;
    std::uint32_t attempts_ = 0;
    std::optional<Reactor::TimerId> timer_;
    std::vector<std::unique_ptr<ConnectionDriver>> drivers_;
};

// ---------------------------------------------------------------------------

// Echoes frames of the default protocol, reading "header, then body_len
// bytes" as the seed does: body_len is believed. A body too large to hold is
// not allocated here (the seed would call malloc(body_len) and hang or die);
// the connection logs what it wanted and waits for those bytes, discarding
// them, for as long as the peer cares to keep it open.
// The listening half both naive servers share; nothing about it is naive.
// A server derives from it, accepts in on_ready() and calls stop_listening()
// from its own stop().
class NaiveListener : protected Reactor::Handler {
public:
    NaiveListener(const NaiveListener&) = delete;
    NaiveListener& operator=(const NaiveListener&) = delete;

    VoidResult open() {
        const FdResult fd = sys_.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (!fd.ok())
            return VoidResult::failure(fd.error);
        listener_ = fd.value;
        VoidResult r = sys_.bind(listener_, SockAddr::ipv4_loopback(0));
        if (r.ok())
            r = sys_.listen(listener_, 64);
        if (r.ok())
            r = reactor_.add(listener_, EPOLLIN, *this);
        return r;
    }
    SockAddr local_address() const {
        const SysResult<SockAddr> name = sys_.getsockname(listener_);
        return name.ok() ? name.value : SockAddr{};
    }

protected:
    explicit NaiveListener(Reactor& reactor) : reactor_(reactor), sys_(reactor.sys()) {}
    ~NaiveListener() { stop_listening(); }
    void stop_listening() {
        if (listener_ < 0)
            return;
        if (reactor_.registered(listener_))
            (void)reactor_.remove(listener_);
        (void)sys_.close(listener_);
        listener_ = -1;
    }

    Reactor& reactor_;
    Sys& sys_;
    int listener_ = -1;
};

class NaiveFrameServer final : public NaiveListener {
public:
    using Log = std::function<void(std::string_view)>;
    static constexpr std::size_t max_connections = 16;
    // Bodies up to this are buffered and echoed; above, only counted.
    static constexpr std::uint64_t body_held_bytes_max = 1U << 20;

    NaiveFrameServer(Reactor& reactor, Log log) : NaiveListener(reactor), log_(std::move(log)) {}
    ~NaiveFrameServer() { stop(); }

    void stop() {
        connections_.clear();
        stop_listening();
    }

private:
    class Conn final : private Reactor::Handler {
    public:
        Conn(NaiveFrameServer& server, int fd, const SockAddr& peer) : server_(server), fd_(fd), peer_(peer) {
            (void)server_.reactor_.add(fd_, EPOLLIN, *this);
        }
        ~Conn() { close(); }
        Conn(const Conn&) = delete;
        Conn& operator=(const Conn&) = delete;

    private:
        static constexpr int max_recvs_per_wakeup = 16;

        void on_ready(std::uint32_t /*events*/) override {
            std::array<std::uint8_t, 4096> chunk{};
            for (int i = 0; i < max_recvs_per_wakeup && fd_ >= 0; ++i) {
                const SizeResult r = server_.sys_.recv(fd_, chunk, 0);
                if (!r.ok()) {
                    if (!would_block(r.error) && r.error != EINTR)
                        close();
                    return;
                }
                if (r.value == 0) {
                    close();
                    return;
                }
                take(std::span<const std::uint8_t>(chunk).first(r.value));
            }
        }

        void take(std::span<const std::uint8_t> bytes) {
            while (!bytes.empty()) {
                if (header_have_ < header_.size()) {
                    const std::size_t n = std::min(bytes.size(), header_.size() - header_have_);
                    std::copy_n(bytes.begin(), n, header_.begin() + static_cast<std::ptrdiff_t>(header_have_));
                    header_have_ += n;
                    bytes = bytes.subspan(n);
                    if (header_have_ == header_.size())
                        begin_body();
                    continue;
                }
                const std::uint64_t missing = body_wanted_ - body_have_;
                const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), missing));
                if (body_wanted_ <= body_held_bytes_max)
                    body_.insert(body_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
                body_have_ += n;
                bytes = bytes.subspan(n);
                if (body_have_ == body_wanted_)
                    end_frame();
            }
            if (header_have_ == header_.size() && body_have_ == body_wanted_)
                end_frame();
        }

        void begin_body() {
            // uint32_t len = ntohl(hdr.body_len); believed as it stands.
            body_wanted_ = load_uint_fixed<4>(header_.data() + 8, ByteOrder::big_endian);
            body_have_ = 0;
            body_.clear();
            if (body_wanted_ > body_held_bytes_max)
                server_.log("wanted " + std::to_string(body_wanted_) + " bytes from " + peer_.to_string());
        }

        void end_frame() {
            if (body_wanted_ <= body_held_bytes_max) {
                std::vector<std::uint8_t> frame(header_.begin(), header_.end());
                frame.insert(frame.end(), body_.begin(), body_.end());
                (void)server_.sys_.send(fd_, frame, MSG_NOSIGNAL);  // small frames: the seed assumes it all goes
            }
            header_have_ = 0;
            body_wanted_ = 0;
            body_have_ = 0;
            body_.clear();
        }

        void close() {
            if (fd_ < 0)
                return;
            if (server_.reactor_.registered(fd_))
                (void)server_.reactor_.remove(fd_);
            (void)server_.sys_.close(fd_);
            fd_ = -1;
        }

        NaiveFrameServer& server_;
        int fd_ = -1;
        SockAddr peer_;
        std::array<std::uint8_t, DefaultHeader::size_bytes> header_{};
        std::size_t header_have_ = 0;
        std::uint64_t body_wanted_ = 0;
        std::uint64_t body_have_ = 0;
        std::vector<std::uint8_t> body_;
    };

    void on_ready(std::uint32_t /*events*/) override {
        SockAddr peer;
        const FdResult r = sys_.accept4(listener_, &peer, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (!r.ok())
            return;
        if (connections_.size() >= max_connections) {
            (void)sys_.close(r.value);
            return;
        }
        connections_.push_back(std::make_unique<Conn>(*this, r.value, peer));
    }

    void log(const std::string& line) const {
        if (log_)
            log_(line);
    }

    Log log_;
    std::vector<std::unique_ptr<Conn>> connections_;
};

// ---------------------------------------------------------------------------

// Echoes every byte it receives: "read(fd, buf); out.append(buf);
// write(fd, out)". Reading never stops, whatever out holds, so a peer that
// sends and never reads grows out without bound.
class NaiveBufferingEchoServer final : public NaiveListener {
public:
    using Log = std::function<void(std::string_view)>;
    static constexpr std::size_t max_connections = 16;
    static constexpr std::size_t recv_chunk_bytes = 64U * 1024U;

    NaiveBufferingEchoServer(Reactor& reactor, Log /*log*/) : NaiveListener(reactor) {}
    ~NaiveBufferingEchoServer() { stop(); }

    void stop() {
        connections_.clear();
        stop_listening();
    }

private:
    class Conn final : private Reactor::Handler {
    public:
        Conn(NaiveBufferingEchoServer& server, int fd) : server_(server), fd_(fd) {
            (void)server_.reactor_.add(fd_, EPOLLIN, *this);
        }
        ~Conn() { close(); }
        Conn(const Conn&) = delete;
        Conn& operator=(const Conn&) = delete;

    private:
        void on_ready(std::uint32_t events) override {
            if ((events & EPOLLOUT) != 0)
                flush();
            if (fd_ >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0)
                read_once();
        }

        void read_once() {
            std::vector<std::uint8_t> chunk(recv_chunk_bytes);
            const SizeResult r = server_.sys_.recv(fd_, chunk, 0);
            if (!r.ok()) {
                if (!would_block(r.error) && r.error != EINTR)
                    close();
                return;
            }
            if (r.value == 0) {
                close();
                return;
            }
            out_.insert(out_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(r.value));
            flush();
        }

        void flush() {
            if (out_.size() > sent_) {
                const SizeResult r =
                    server_.sys_.send(fd_, std::span<const std::uint8_t>(out_).subspan(sent_), MSG_NOSIGNAL);
                if (r.ok())
                    sent_ += r.value;
                else if (!would_block(r.error) && r.error != EINTR) {
                    close();
                    return;
                }
            }
            if (sent_ == out_.size()) {
                out_.clear();
                sent_ = 0;
            }
            (void)server_.reactor_.modify(fd_, EPOLLIN | (out_.empty() ? 0U : static_cast<std::uint32_t>(EPOLLOUT)));
        }

        void close() {
            if (fd_ < 0)
                return;
            if (server_.reactor_.registered(fd_))
                (void)server_.reactor_.remove(fd_);
            (void)server_.sys_.close(fd_);
            fd_ = -1;
        }

        NaiveBufferingEchoServer& server_;
        int fd_ = -1;
        std::vector<std::uint8_t> out_;  // no limit: the pitfall
        std::size_t sent_ = 0;
    };

    void on_ready(std::uint32_t /*events*/) override {
        const FdResult r = sys_.accept4(listener_, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (!r.ok())
            return;
        if (connections_.size() >= max_connections) {
            (void)sys_.close(r.value);
            return;
        }
        connections_.push_back(std::make_unique<Conn>(*this, r.value));
    }

    std::vector<std::unique_ptr<Conn>> connections_;
};

}  // namespace eagain::test
