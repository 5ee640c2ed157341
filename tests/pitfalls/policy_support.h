// What the policy pitfall tests observe a client or server by, from outside,
// so the same check judges the real ConnectionDriver and a naive variant:
//
//   WitnessSys   a Sys decorator that records every connect() (virtual time,
//                fd, result), which sockets the code under test opened and
//                has not closed, and the bytes each accepted socket took in
//                and sent out;
//   RawPeer      the far end of one connection, on the same Reactor: decodes
//                frames, records when each ping arrived, optionally answers
//                pings with pongs and echoes app frames;
//   RawServer    accepts into RawPeers from a listening socket;
//   ClientRecorder  a ConnectionDriver::App that writes down what the app
//                was told, and when.
//
// Every record is bounded (record_capacity); what does not fit is counted.
#pragma once

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
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <vector>

namespace eagain::test {

// Every record kept by these helpers holds at most this many entries; a run
// that produces more has gone wrong in a way the overflow counter shows.
inline constexpr std::size_t record_capacity = 1024;

template <class T>
void record_bounded(std::vector<T>& record, const T& item, std::uint64_t& overflow) {
    if (record.size() < record_capacity) {
        record.push_back(item);
    } else {
        ++overflow;
    }
}

// ---------------------------------------------------------------------------

class WitnessSys final : public Sys {
public:
    struct ConnectCall {
        Nanos at{0};
        int fd = -1;
        int error = 0;  // 0, EINPROGRESS, ECONNREFUSED, ...
    };

    // One accepted connection's byte counts, kept after it closes.
    struct Traffic {
        SockAddr peer;
        std::uint64_t received_bytes = 0;
        std::uint64_t sent_bytes = 0;
        // The most received and not (yet) sent back, measured after every
        // receive: for an echo server, the output it buffers (up to one
        // partial frame).
        std::uint64_t unsent_bytes_max = 0;
        bool open = true;
    };

    explicit WitnessSys(Sys& inner) noexcept : inner_(inner) {}

    const std::vector<ConnectCall>& connects() const noexcept { return connects_; }
    std::vector<Nanos> connect_times() const {
        std::vector<Nanos> times;
        for (const ConnectCall& call : connects_)
            times.push_back(call.at);
        return times;
    }
    // Sockets made by socket() or accept4() through this Sys and not closed
    // through it.
    const std::set<int>& open_sockets() const noexcept { return open_sockets_; }
    std::uint64_t overflow() const noexcept { return overflow_; }
    // The accepted connection from peer (the latest, if there were several).
    const Traffic* traffic_from(const SockAddr& peer) const noexcept {
        for (auto it = traffic_.rbegin(); it != traffic_.rend(); ++it) {
            if (it->peer == peer)
                return &*it;
        }
        return nullptr;
    }

    FdResult socket(int domain, int type, int protocol) override {
        const FdResult r = inner_.socket(domain, type, protocol);
        if (r.ok())
            open_sockets_.insert(r.value);
        return r;
    }
    VoidResult bind(int fd, const SockAddr& address) override { return inner_.bind(fd, address); }
    VoidResult listen(int fd, int backlog) override { return inner_.listen(fd, backlog); }
    FdResult accept4(int fd, SockAddr* peer, int flags) override {
        SockAddr from;
        const FdResult r = inner_.accept4(fd, &from, flags);
        if (!r.ok())
            return r;
        if (peer != nullptr)
            *peer = from;
        open_sockets_.insert(r.value);
        if (traffic_.size() < record_capacity) {
            traffic_by_fd_[r.value] = traffic_.size();
            traffic_.push_back(Traffic{from, 0, 0, 0, true});
        } else {
            ++overflow_;
        }
        return r;
    }
    VoidResult connect(int fd, const SockAddr& address) override {
        const Nanos at = inner_.now();
        const VoidResult r = inner_.connect(fd, address);
        record_bounded(connects_, ConnectCall{at, fd, r.error}, overflow_);
        return r;
    }
    VoidResult getsockopt(int fd, int level, int name, std::span<std::byte> value, socklen_t* length) override {
        return inner_.getsockopt(fd, level, name, value, length);
    }
    VoidResult setsockopt(int fd, int level, int name, std::span<const std::byte> value) override {
        return inner_.setsockopt(fd, level, name, value);
    }
    SysResult<SockAddr> getsockname(int fd) override { return inner_.getsockname(fd); }
    SysResult<SockAddr> getpeername(int fd) override { return inner_.getpeername(fd); }
    SizeResult send(int fd, std::span<const std::uint8_t> data, int flags) override {
        return count_sent(fd, inner_.send(fd, data, flags));
    }
    SizeResult recv(int fd, std::span<std::uint8_t> buffer, int flags) override {
        return count_received(fd, inner_.recv(fd, buffer, flags), (flags & MSG_PEEK) != 0);
    }
    SizeResult readv(int fd, std::span<const iovec> buffers) override {
        return count_received(fd, inner_.readv(fd, buffers), false);
    }
    SizeResult writev(int fd, std::span<const iovec> buffers) override {
        return count_sent(fd, inner_.writev(fd, buffers));
    }
    SizeResult sendmsg(int fd, std::span<const iovec> buffers, int flags) override {
        return count_sent(fd, inner_.sendmsg(fd, buffers, flags));
    }
    VoidResult shutdown(int fd, int how) override { return inner_.shutdown(fd, how); }
    VoidResult close(int fd) override {
        // close(2): the fd is released even on EINTR.
        open_sockets_.erase(fd);
        if (Traffic* traffic = traffic_of(fd)) {
            traffic->open = false;
            traffic_by_fd_.erase(fd);
        }
        return inner_.close(fd);
    }
    FdResult fcntl(int fd, int command, int argument) override { return inner_.fcntl(fd, command, argument); }
    FdResult ioctl_fionread(int fd) override { return inner_.ioctl_fionread(fd); }
    FdResult epoll_create1(int flags) override { return inner_.epoll_create1(flags); }
    VoidResult epoll_ctl(int epoll_fd, int op, int fd, EpollEvent event) override {
        return inner_.epoll_ctl(epoll_fd, op, fd, event);
    }
    FdResult epoll_wait(int epoll_fd, std::span<EpollEvent> events, int timeout_ms) override {
        return inner_.epoll_wait(epoll_fd, events, timeout_ms);
    }
    FdResult poll(std::span<pollfd> fds, int timeout_ms) override { return inner_.poll(fds, timeout_ms); }
    Nanos now() override { return inner_.now(); }

private:
    Traffic* traffic_of(int fd) noexcept {
        const auto it = traffic_by_fd_.find(fd);
        return it == traffic_by_fd_.end() ? nullptr : &traffic_[it->second];
    }
    SizeResult count_sent(int fd, SizeResult r) {
        Traffic* traffic = traffic_of(fd);
        if (traffic != nullptr && r.ok())
            traffic->sent_bytes += r.value;
        return r;
    }
    SizeResult count_received(int fd, SizeResult r, bool peek) {
        Traffic* traffic = traffic_of(fd);
        if (traffic != nullptr && r.ok() && !peek) {
            traffic->received_bytes += r.value;
            // Never negative for an echo: nothing is sent before it arrived.
            const std::uint64_t unsent =
                traffic->received_bytes > traffic->sent_bytes ? traffic->received_bytes - traffic->sent_bytes : 0;
            traffic->unsent_bytes_max = std::max(traffic->unsent_bytes_max, unsent);
        }
        return r;
    }

    Sys& inner_;
    std::vector<ConnectCall> connects_;
    std::set<int> open_sockets_;
    std::vector<Traffic> traffic_;              // in accept order
    std::map<int, std::size_t> traffic_by_fd_;  // open accepted fds -> traffic_
    std::uint64_t overflow_ = 0;
};

// ---------------------------------------------------------------------------

struct PeerBehaviour {
    std::uint32_t heartbeat_cmd = 99;
    bool answer_pings = true;
    bool echo_frames = true;
};

class RawPeer final : private Reactor::Handler {
public:
    // Takes ownership of fd (connected, non-blocking); sys is the one it was
    // made with, and closes it.
    RawPeer(Reactor& reactor, Sys& sys, int fd, PeerBehaviour behaviour)
        : reactor_(reactor), sys_(sys), fd_(fd), behaviour_(behaviour) {
        registered_ = reactor_.add(fd_, EPOLLIN, *this).ok();
    }
    ~RawPeer() { close(); }
    RawPeer(const RawPeer&) = delete;
    RawPeer& operator=(const RawPeer&) = delete;

    bool registered() const noexcept { return registered_; }
    const std::vector<Nanos>& ping_times() const noexcept { return ping_times_; }
    std::uint64_t app_frames() const noexcept { return app_frames_; }
    bool saw_eof() const noexcept { return saw_eof_; }
    bool is_open() const noexcept { return fd_ >= 0; }
    // Sends that the kernel did not take whole (the peer's frames are tiny,
    // so any is a surprise the test reports).
    std::uint64_t short_sends() const noexcept { return short_sends_; }
    std::uint64_t overflow() const noexcept { return overflow_; }

    void close() {
        if (fd_ < 0)
            return;
        if (reactor_.registered(fd_))
            (void)reactor_.remove(fd_);
        (void)sys_.close(fd_);
        fd_ = -1;
    }

private:
    static constexpr int max_recvs_per_wakeup = 16;

    void on_ready(std::uint32_t /*events*/) override {
        for (int i = 0; i < max_recvs_per_wakeup && fd_ >= 0; ++i) {
            const std::span<std::uint8_t> space = decoder_.prepare(4096);
            const SizeResult r = sys_.recv(fd_, space, 0);
            if (!r.ok()) {
                decoder_.commit(0);
                if (!would_block(r.error) && r.error != EINTR)
                    finish();
                return;
            }
            decoder_.commit(r.value);
            if (r.value == 0) {
                finish();
                return;
            }
            const DecodeResult result = decoder_.drain([&](const Frame& frame) { on_frame(frame); });
            if (result.status == DecodeStatus::failed) {
                finish();
                return;
            }
        }
    }

    void on_frame(const Frame& frame) {
        const DefaultHeader header = DefaultHeader::parse(frame.header.first<DefaultHeader::size_bytes>());
        const bool heartbeat = header.cmd == behaviour_.heartbeat_cmd && frame.body.empty();
        if (heartbeat && header.reserved1 == 0) {
            record_bounded(ping_times_, sys_.now(), overflow_);
            if (behaviour_.answer_pings)
                send_frame(DefaultHeader{header.cmd, header.seq, 0, 1, 0}, {});
            return;
        }
        if (heartbeat)
            return;  // a pong
        ++app_frames_;
        if (behaviour_.echo_frames)
            send_frame(header, frame.body);
    }

    void send_frame(const DefaultHeader& header, std::span<const std::uint8_t> body) {
        ByteBuffer out;
        if (encode_frame(FrameSpec{}, header.bytes(), body, out) != EncodeError::none) {
            ++short_sends_;
            return;
        }
        const SizeResult r = sys_.send(fd_, out.readable(), MSG_NOSIGNAL);
        if (!r.ok() || r.value != out.size())
            ++short_sends_;
    }

    void finish() {
        saw_eof_ = true;
        close();
    }

    Reactor& reactor_;
    Sys& sys_;
    int fd_ = -1;
    PeerBehaviour behaviour_;
    bool registered_ = false;
    FrameDecoder decoder_;
    std::vector<Nanos> ping_times_;
    std::uint64_t app_frames_ = 0;
    bool saw_eof_ = false;
    std::uint64_t short_sends_ = 0;
    std::uint64_t overflow_ = 0;
};

class RawServer final : private Reactor::Handler {
public:
    static constexpr std::size_t max_peers = 8;

    // listener: a listening, non-blocking socket the server does not own.
    RawServer(Reactor& reactor, Sys& sys, int listener, PeerBehaviour behaviour)
        : reactor_(reactor), sys_(sys), listener_(listener), behaviour_(behaviour) {
        registered_ = reactor_.add(listener_, EPOLLIN, *this).ok();
    }
    ~RawServer() {
        if (reactor_.registered(listener_))
            (void)reactor_.remove(listener_);
    }
    RawServer(const RawServer&) = delete;
    RawServer& operator=(const RawServer&) = delete;

    bool registered() const noexcept { return registered_; }
    std::size_t peer_count() const noexcept { return peers_.size(); }
    RawPeer& peer(std::size_t index) { return *peers_.at(index); }
    std::uint64_t refused() const noexcept { return refused_; }

private:
    void on_ready(std::uint32_t /*events*/) override {
        const FdResult r = sys_.accept4(listener_, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (!r.ok())
            return;  // EAGAIN and the like: level-triggered, it comes back
        if (peers_.size() >= max_peers) {
            ++refused_;
            (void)sys_.close(r.value);
            return;
        }
        peers_.push_back(std::make_unique<RawPeer>(reactor_, sys_, r.value, behaviour_));
    }

    Reactor& reactor_;
    Sys& sys_;
    int listener_ = -1;
    PeerBehaviour behaviour_;
    bool registered_ = false;
    std::vector<std::unique_ptr<RawPeer>> peers_;
    std::uint64_t refused_ = 0;
};

// ---------------------------------------------------------------------------

struct ClosedRecord {
    Nanos at{0};
    CloseInfo info;
    bool reconnecting = false;
};

class ClientRecorder final : public ConnectionDriver::App {
public:
    explicit ClientRecorder(Sys& clock) noexcept : clock_(clock) {}

    const std::vector<Nanos>& established_at() const noexcept { return established_at_; }
    const std::vector<ClosedRecord>& closed() const noexcept { return closed_; }
    const std::vector<Nanos>& heartbeats_sent() const noexcept { return heartbeats_sent_; }
    const std::vector<Event>& reconnects_scheduled() const noexcept { return reconnects_scheduled_; }
    std::uint64_t frames() const noexcept { return frames_; }
    std::uint64_t overflow() const noexcept { return overflow_; }
    // Called for every frame, after it is counted (the tests' echo checks).
    std::function<void(ConnectionDriver&, const Frame&)> on_frame_hook;

    void on_established(ConnectionDriver& /*driver*/) override {
        record_bounded(established_at_, clock_.now(), overflow_);
    }
    void on_frame(ConnectionDriver& driver, const Frame& frame) override {
        ++frames_;
        if (on_frame_hook)
            on_frame_hook(driver, frame);
    }
    void on_event(ConnectionDriver& /*driver*/, const Event& event) override {
        switch (event.kind) {
            case EventKind::heartbeat_sent: record_bounded(heartbeats_sent_, event.at, overflow_); break;
            case EventKind::reconnect_scheduled: record_bounded(reconnects_scheduled_, event, overflow_); break;
            case EventKind::established:
            case EventKind::closed:
            case EventKind::backpressure_on:
            case EventKind::backpressure_off: break;
        }
    }
    void on_closed(ConnectionDriver& /*driver*/, const CloseInfo& info, bool reconnecting) override {
        record_bounded(closed_, ClosedRecord{clock_.now(), info, reconnecting}, overflow_);
    }

private:
    Sys& clock_;
    std::vector<Nanos> established_at_;
    std::vector<ClosedRecord> closed_;
    std::vector<Nanos> heartbeats_sent_;
    std::vector<Event> reconnects_scheduled_;
    std::uint64_t frames_ = 0;
    std::uint64_t overflow_ = 0;
};

}  // namespace eagain::test
