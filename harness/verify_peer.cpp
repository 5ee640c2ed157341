// The misbehaving peer (harness/verify_peer.h): its clients and their loop.
#include "harness/verify_peer.h"

#include "apps/byte_pattern.h"
#include "core/linux_sys.h"
#include "harness/target_process.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <memory>

namespace eagain::harness::verify {

std::uint64_t max_send_buffer_bytes() {
    std::ifstream in("/proc/sys/net/ipv4/tcp_wmem");
    std::uint64_t minimum = 0, initial = 0, maximum = 0;
    if (in >> minimum >> initial >> maximum && maximum > 0)
        return maximum;
    return 4ULL << 20;
}

namespace {

using std::chrono::milliseconds;

std::string millis(Nanos d) { return std::to_string(d.count() / 1'000'000) + " ms"; }

// The stream client number index sends, and so expects back: the byte
// pattern from an offset of its own, or whole frames whose headers and
// bodies are that pattern with the length field written by the encoder.
std::vector<std::uint8_t> client_stream(const PeerContext& context, std::uint64_t bytes, std::uint64_t body_bytes,
                                        std::uint64_t index) {
    const std::uint64_t origin = index * 7919;
    if (context.protocol == Protocol::bytes) {
        std::vector<std::uint8_t> stream(bytes);
        fill_stream_pattern(origin, stream);
        return stream;
    }
    const std::uint64_t frame_bytes = context.spec.header_bytes + body_bytes;
    const std::uint64_t frames = std::max<std::uint64_t>(1, bytes / frame_bytes);
    std::vector<std::uint8_t> stream(frames * frame_bytes);
    fill_stream_pattern(origin, stream);
    for (std::uint64_t f = 0; f < frames; ++f) {
        const std::span<std::uint8_t> header(stream.data() + f * frame_bytes, context.spec.header_bytes);
        (void)encode_header(context.spec, header, body_bytes);
    }
    return stream;
}

// One connection of the peer. The loop asks it what it waits for and
// when it next needs the clock, and tells it what became ready.
class Client {
public:
    virtual ~Client() = default;
    int fd = -1;
    bool connected = false;
    Nanos started{};

    // EPOLLIN / EPOLLOUT wanted now (0: only the clock).
    virtual std::uint32_t interest(Nanos now) const = 0;
    virtual void on_ready(std::uint32_t events, Nanos now) = 0;
    virtual void on_time(Nanos now) = 0;
    virtual bool done() const = 0;

    // Non-blocking connect to the target; false (and error set) if it failed at once.
    bool open(Sys& sys, const PeerContext& context, std::uint64_t receive_buffer_bytes, Nanos now) {
        started = now;
        const FdResult s = sys.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (!s.ok())
            return fail_connect(s.error);
        fd = s.value;
        (void)sys.set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1);
        if (receive_buffer_bytes > 0)
            (void)sys.set_int_option(fd, SOL_SOCKET, SO_RCVBUF, static_cast<int>(receive_buffer_bytes));
        const VoidResult c = sys.connect(fd, SockAddr::ipv4_loopback(context.port));
        if (!c.ok() && c.error != EINPROGRESS)
            return fail_connect(c.error);
        return true;
    }
    // On the first EPOLLOUT: SO_ERROR says whether the connect succeeded.
    bool finish_connect(Sys& sys) {
        const SysResult<int> e = sys.socket_error(fd);
        if (!e.ok() || e.value != 0)
            return fail_connect(e.ok() ? e.value : e.error);
        connected = true;
        return true;
    }

protected:
    virtual bool fail_connect(int error) = 0;
};

class EchoClient final : public Client {
public:
    EchoClient(Sys& sys, std::string name, std::vector<std::uint8_t> stream, const PeerSpec& spec)
        : sys_(sys), stream_(std::move(stream)), spec_(spec) {
        outcome.name = std::move(name);
        outcome.expected_bytes = stream_.size();
    }
    EchoOutcome outcome;
    bool half_close_allowed = true;
    Nanos stall_until{};

    bool received_all() const noexcept { return received_.size() >= stream_.size(); }
    bool done() const override { return finished_; }

    std::uint32_t interest(Nanos now) const override {
        if (finished_)
            return 0;
        if (!connected)
            return EPOLLOUT;
        std::uint32_t events = 0;
        if (now >= stall_until)
            events |= EPOLLIN;
        if (outcome.sent_bytes < stream_.size() && now >= next_send_)
            events |= EPOLLOUT;
        return events;
    }

    void on_ready(std::uint32_t events, Nanos now) override {
        if (!connected) {
            if (finish_connect(sys_))
                last_progress_ = now;
            return;
        }
        if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && now >= stall_until)
            read_some(now);
        if (!finished_ && (events & EPOLLOUT) != 0)
            send_some(now);
    }

    void on_time(Nanos now) override {
        if (finished_)
            return;
        if (!connected) {
            if (now - started > quiet_limit)
                give_up(now);  // a connect that never completes
            return;
        }
        if (stall_until > last_progress_ && now >= stall_until)
            last_progress_ = stall_until;  // the stall was ours: the quiet clock starts after it
        if (connected && !shut_ && half_close_allowed && spec_.half_close && outcome.sent_bytes == stream_.size()) {
            (void)sys_.shutdown(fd, SHUT_WR);
            shut_ = true;
            last_progress_ = now;
        }
        const bool waiting_for_us = now < stall_until || (received_all() && !half_close_allowed);
        const Nanos limit = received_all() ? eof_wait : quiet_limit;
        if (outcome.mismatch_at && now - mismatch_seen_ > milliseconds{200})
            finish(now);
        else if (!waiting_for_us && now - last_progress_ > limit)
            give_up(now);
        else if (received_all() && !spec_.half_close && half_close_allowed)
            finish(now);  // no FIN to wait for
    }

    void give_up(Nanos now) {
        outcome.gave_up = true;
        finish(now);
    }

private:
    bool fail_connect(int error) override {
        outcome.connect_failed = true;
        outcome.error = error;
        finished_ = true;
        return false;
    }

    void read_some(Nanos now) {
        std::array<std::uint8_t, 64 * 1024> chunk{};
        for (int round = 0; round < 16 && !finished_; ++round) {
            const SizeResult r = sys_.recv(fd, chunk, 0);
            if (!r.ok()) {
                if (would_block(r.error) || r.error == EINTR)
                    return;
                outcome.error = r.error;
                return finish(now);
            }
            if (r.value == 0) {
                outcome.eof = true;
                return finish(now);
            }
            take(std::span<const std::uint8_t>(chunk.data(), r.value), now);
        }
    }

    void take(std::span<const std::uint8_t> bytes, Nanos now) {
        last_progress_ = now;
        const std::size_t offset = received_.size();
        // Bounded: a target that sends without end cannot grow this past a
        // mebibyte beyond what was sent.
        const std::size_t room = stream_.size() + (1U << 20) - std::min(offset, stream_.size() + (1U << 20));
        received_.insert(received_.end(), bytes.begin(),
                         bytes.begin() + static_cast<std::ptrdiff_t>(std::min(bytes.size(), room)));
        outcome.received_bytes += bytes.size();
        if (outcome.mismatch_at)
            return;
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            const std::size_t at = offset + i;
            if (at >= stream_.size() || bytes[i] != stream_[at]) {
                outcome.mismatch_at = at;
                mismatch_seen_ = now;
                return;
            }
        }
    }

    void send_some(Nanos now) {
        for (int round = 0; round < 64 && outcome.sent_bytes < stream_.size(); ++round) {
            const std::size_t n = std::min<std::uint64_t>(spec_.write_bytes, stream_.size() - outcome.sent_bytes);
            const SizeResult r = sys_.send(fd, std::span(stream_.data() + outcome.sent_bytes, n), MSG_NOSIGNAL);
            if (!r.ok()) {
                if (would_block(r.error) || r.error == EINTR)
                    return;
                outcome.error = r.error;
                return finish(now);
            }
            outcome.sent_bytes += r.value;
            if (spec_.pause.count() > 0) {
                next_send_ = now + spec_.pause;
                return;
            }
        }
    }

    void finish(Nanos now) {
        if (finished_)
            return;
        finished_ = true;
        outcome.elapsed = now - started;
        classify_mismatch();
        if (fd >= 0)
            (void)sys_.close(fd);
        fd = -1;
    }

    // What the first wrong byte is: a gap (the bytes after it were sent
    // later), a repeat (sent earlier), or corruption.
    void classify_mismatch() {
        if (!outcome.mismatch_at)
            return;
        const std::uint64_t m = *outcome.mismatch_at;
        if (m >= stream_.size()) {
            outcome.mismatch = std::to_string(outcome.received_bytes - stream_.size()) + " bytes more than were sent";
            return;
        }
        const std::size_t window = std::min<std::size_t>(64, received_.size() - m);
        const auto begin = received_.begin() + static_cast<std::ptrdiff_t>(m);
        if (window >= 8) {
            const auto later = std::search(stream_.begin() + static_cast<std::ptrdiff_t>(m) + 1, stream_.end(),
                                           begin, begin + static_cast<std::ptrdiff_t>(window));
            if (later != stream_.end()) {
                const auto k = static_cast<std::uint64_t>(later - stream_.begin());
                outcome.mismatch = "bytes " + std::to_string(m) + ".." + std::to_string(k - 1) + " (" +
                                   std::to_string(k - m) + ") never came back; the echo goes on from byte " +
                                   std::to_string(k);
                outcome.mismatch_is_loss = true;
                return;
            }
            const auto earlier = std::search(stream_.begin(), stream_.begin() + static_cast<std::ptrdiff_t>(m), begin,
                                             begin + static_cast<std::ptrdiff_t>(window));
            if (earlier != stream_.begin() + static_cast<std::ptrdiff_t>(m)) {
                outcome.mismatch = "at byte " + std::to_string(m) + " the echo repeats bytes from " +
                                   std::to_string(earlier - stream_.begin());
                return;
            }
        }
        char text[96];
        std::snprintf(text, sizeof text, "byte %llu: sent 0x%02x, got 0x%02x", static_cast<unsigned long long>(m),
                      stream_[m], received_[m]);
        outcome.mismatch = text;
    }

    Sys& sys_;
    std::vector<std::uint8_t> stream_;
    std::vector<std::uint8_t> received_;
    PeerSpec spec_;
    Nanos next_send_{};
    Nanos last_progress_{};
    Nanos mismatch_seen_{};
    bool shut_ = false;
    bool finished_ = false;
};

// Sends, waits until some echo is unread in its receive buffer, and closes
// without reading it (the kernel then sends an RST) or with SO_LINGER {1, 0}.
class ResetClient final : public Client {
public:
    ResetClient(Sys& sys, std::vector<std::uint8_t> stream, bool linger)
        : sys_(sys), stream_(std::move(stream)), linger_(linger) {}
    bool reset = false;

    std::uint32_t interest(Nanos) const override {
        return finished_ || (connected && sent_ >= stream_.size()) ? 0U : std::uint32_t{EPOLLOUT};
    }
    bool done() const override { return finished_; }
    void on_ready(std::uint32_t, Nanos now) override {
        if (!connected) {
            (void)finish_connect(sys_);
            return;
        }
        while (sent_ < stream_.size()) {
            const SizeResult r = sys_.send(fd, std::span(stream_.data() + sent_, stream_.size() - sent_), MSG_NOSIGNAL);
            if (!r.ok())
                return (void)(would_block(r.error) || r.error == EINTR ? 0 : (close_now(now), 0));
            sent_ += r.value;
        }
    }
    void on_time(Nanos now) override {
        if (finished_ || !connected)
            return;
        const FdResult unread = sys_.ioctl_fionread(fd);
        if ((unread.ok() && unread.value > 0) || now - started > milliseconds{300})
            close_now(now);
    }

private:
    bool fail_connect(int) override {
        finished_ = true;
        return false;
    }
    void close_now(Nanos) {
        if (linger_)
            (void)sys_.set_linger(fd, true, 0);
        const FdResult unread = sys_.ioctl_fionread(fd);
        reset = linger_ || (unread.ok() && unread.value > 0);
        (void)sys_.close(fd);
        fd = -1;
        finished_ = true;
    }

    Sys& sys_;
    std::vector<std::uint8_t> stream_;
    std::size_t sent_ = 0;
    bool linger_ = false;
    bool finished_ = false;
};

// Sends a header whose length field is hostile and some body bytes, then
// waits for the target to close the connection.
class HostileClient final : public Client {
public:
    HostileClient(Sys& sys, std::vector<std::uint8_t> bytes, std::string length) : sys_(sys), bytes_(std::move(bytes)) {
        outcome.length = std::move(length);
    }
    HostileOutcome outcome;

    std::uint32_t interest(Nanos) const override {
        if (finished_)
            return 0;
        return !connected || sent_ < bytes_.size() ? std::uint32_t{EPOLLOUT} : std::uint32_t{EPOLLIN};
    }
    bool done() const override { return finished_; }
    void on_ready(std::uint32_t events, Nanos now) override {
        if (!connected) {
            (void)finish_connect(sys_);
            return;
        }
        if ((events & EPOLLOUT) != 0 && sent_ < bytes_.size()) {
            const SizeResult r = sys_.send(fd, std::span(bytes_.data() + sent_, bytes_.size() - sent_), MSG_NOSIGNAL);
            if (r.ok())
                sent_ += r.value;
            else if (!would_block(r.error) && r.error != EINTR)
                closed(now, "reset while sending, after " + millis(now - started));
            return;
        }
        std::array<std::uint8_t, 4096> sink{};
        const SizeResult r = sys_.recv(fd, sink, 0);
        if (r.ok() && r.value == 0)
            closed(now, "FIN after " + millis(now - started));
        else if (!r.ok() && !would_block(r.error) && r.error != EINTR)
            closed(now, errno_name(r.error) + " after " + millis(now - started));
    }
    void on_time(Nanos now) override {
        if (!finished_ && now - started > hostile_close_bound) {
            outcome.how = "still open " + millis(now - started) + " after the header";
            finish();
        }
    }

private:
    bool fail_connect(int error) override {
        outcome.how = "connect failed: " + errno_name(error);
        finished_ = true;
        return false;
    }
    void closed(Nanos, std::string how) {
        outcome.closed = true;
        outcome.how = std::move(how);
        finish();
    }
    void finish() {
        finished_ = true;
        (void)sys_.close(fd);
        fd = -1;
    }

    Sys& sys_;
    std::vector<std::uint8_t> bytes_;
    std::size_t sent_ = 0;
    bool finished_ = false;
};

// The epoll loop every client of one run shares (level-triggered; the
// data of each registration is the client's index).
class Loop {
public:
    explicit Loop(const PeerContext& context) : context_(context) { epoll_fd_ = sys_.epoll_create1(EPOLL_CLOEXEC).value; }
    ~Loop() { (void)sys_.close(epoll_fd_); }
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    Sys& sys() { return sys_; }
    bool ok() const { return epoll_fd_ >= 0; }

    // Connects c and drives it from now on.
    void add(Client& c, std::uint64_t receive_buffer_bytes = 0) {
        clients_.push_back(&c);
        registered_.push_back(0);
        fds_.push_back(-1);
        if (c.open(sys_, context_, receive_buffer_bytes, monotonic_now()))
            fds_.back() = c.fd;
    }

    // Runs until stop() says so or the deadline passes; false at the deadline.
    template <class Stop>
    bool run(Nanos deadline, Stop stop) {
        std::array<EpollEvent, 64> events{};
        for (;;) {
            const Nanos now = monotonic_now();
            for (Client* c : clients_)
                c->on_time(now);
            if (stop())
                return true;
            if (now >= deadline)
                return false;
            sync_interest(now);
            const FdResult n = sys_.epoll_wait(epoll_fd_, events, 10);
            const Nanos after = monotonic_now();
            for (int i = 0; n.ok() && i < n.value; ++i) {
                Client& c = *clients_[events[static_cast<std::size_t>(i)].data];
                if (!c.done() && c.fd >= 0)
                    c.on_ready(events[static_cast<std::size_t>(i)].events, after);
            }
        }
    }
    bool all_done() const {
        return std::all_of(clients_.begin(), clients_.end(), [](const Client* c) { return c->done(); });
    }

private:
    // Registers what each client wants now; a closed client's fd is
    // removed from the set before its number can be reused.
    void sync_interest(Nanos now) {
        for (std::size_t i = 0; i < clients_.size(); ++i) {
            Client& c = *clients_[i];
            if (fds_[i] >= 0 && c.fd != fds_[i]) {
                fds_[i] = -1;  // closed by the client: the kernel dropped it from the set
                continue;
            }
            if (fds_[i] < 0)
                continue;
            const std::uint32_t want = c.done() ? 0 : c.interest(now);
            if (want == registered_[i])
                continue;
            const int op = registered_[i] == 0 ? EPOLL_CTL_ADD : (want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD);
            (void)sys_.epoll_ctl(epoll_fd_, op, c.fd, EpollEvent{want, i});
            registered_[i] = want;
        }
    }

    LinuxSys sys_;
    const PeerContext& context_;
    int epoll_fd_ = -1;
    std::vector<Client*> clients_;
    std::vector<std::uint32_t> registered_;
    std::vector<int> fds_;
};

std::uint64_t payload_bytes(const PeerSpec& spec) {
    return spec.bytes != 0 ? spec.bytes : std::min<std::uint64_t>(2 * max_send_buffer_bytes(), 16ULL << 20);
}

PeerSpec fresh_client_spec(std::uint64_t bytes) {
    PeerSpec spec;
    spec.bytes = bytes;
    return spec;
}

// The target's CPU since ticks0 was read at from, as a share of one CPU
// (clock ticks are sysconf(_SC_CLK_TCK) a second).
CpuReading cpu_since(const PeerContext& context, std::uint64_t ticks0, Nanos from, std::string during) {
    const Nanos window = monotonic_now() - from;
    const std::uint64_t ticks = context.cpu_ticks() - ticks0;
    const double seconds = static_cast<double>(window.count()) / 1e9;
    const double ticks_per_second = static_cast<double>(::sysconf(_SC_CLK_TCK));
    return CpuReading{window, ticks, static_cast<double>(ticks) / (ticks_per_second * seconds), std::move(during)};
}

// During the stall: the CPU the target uses, and a second client's echo
// (second outlives the loop's use of it: it is the caller's).
void watch_stall(Loop& loop, const Check& check, const PeerContext& context, PeerReport& report, Nanos t0,
                 std::unique_ptr<EchoClient>& second) {
    const Nanos settle = check.peer.stall / 4;
    const Nanos end = t0 + check.peer.stall - milliseconds{100};
    (void)loop.run(t0 + settle, [] { return false; });
    const std::uint64_t ticks0 = context.cpu_ticks();
    const Nanos from = monotonic_now();
    if (std::count(check.oracles.begin(), check.oracles.end(), Oracle::second_client_served) > 0) {
        second = std::make_unique<EchoClient>(loop.sys(), "a second client",
                                              client_stream(context, 4096, check.peer.body_bytes, 1000),
                                              fresh_client_spec(4096));
        loop.add(*second);
        (void)loop.run(from + second_client_bound, [&] { return second->done(); });
        if (!second->done())
            second->give_up(monotonic_now());
        report.second_client = second->outcome;
    }
    (void)loop.run(end, [] { return false; });
    report.cpu = cpu_since(context, ticks0, from, "every client's " + millis(check.peer.stall) + " stall");
}

void watch_idle(Loop& loop, const Check& check, const PeerContext& context, PeerReport& report) {
    const std::uint64_t ticks0 = context.cpu_ticks();
    const Nanos from = monotonic_now();
    (void)loop.run(from + check.peer.idle, [] { return false; });
    report.cpu = cpu_since(context, ticks0, from, millis(check.peer.idle) + " with every client connected and silent");
}

void run_echo(const Check& check, const PeerContext& context, PeerReport& report) {
    Loop loop(context);
    const PeerSpec& spec = check.peer;
    std::vector<std::unique_ptr<EchoClient>> clients;
    const Nanos t0 = monotonic_now();
    for (std::uint64_t i = 0; i < spec.clients; ++i) {
        clients.push_back(std::make_unique<EchoClient>(loop.sys(), "client " + std::to_string(i + 1),
                                                       client_stream(context, payload_bytes(spec), spec.body_bytes, i),
                                                       spec));
        clients.back()->stall_until = t0 + spec.stall;
        clients.back()->half_close_allowed = spec.idle.count() == 0;
        loop.add(*clients.back(), spec.receive_buffer_bytes);
    }
    const Nanos deadline = t0 + check.deadline;
    std::unique_ptr<EchoClient> second;
    if (spec.stall.count() > 0)
        watch_stall(loop, check, context, report, t0, second);
    if (spec.idle.count() > 0) {
        (void)loop.run(deadline, [&] {
            return std::all_of(clients.begin(), clients.end(), [](const auto& c) { return c->done() || c->received_all(); });
        });
        watch_idle(loop, check, context, report);
        for (auto& c : clients)
            c->half_close_allowed = true;
    }
    (void)loop.run(deadline, [&] { return loop.all_done(); });
    for (auto& c : clients) {
        if (!c->done())
            c->give_up(monotonic_now());
        report.echoes.push_back(c->outcome);
    }
}

void run_resets(const Check& check, const PeerContext& context, PeerReport& report) {
    constexpr std::uint64_t batch = 50;
    for (std::uint64_t first = 0; first < check.peer.clients; first += batch) {
        Loop loop(context);
        std::vector<std::unique_ptr<ResetClient>> clients;
        for (std::uint64_t i = first; i < std::min(first + batch, check.peer.clients); ++i) {
            clients.push_back(std::make_unique<ResetClient>(
                loop.sys(), client_stream(context, payload_bytes(check.peer), check.peer.body_bytes, i),
                check.peer.linger));
            loop.add(*clients.back(), check.peer.receive_buffer_bytes);
        }
        (void)loop.run(monotonic_now() + std::chrono::seconds{5}, [&] { return loop.all_done(); });
        for (auto& c : clients)
            report.resets += c->reset ? 1 : 0;
    }
    sleep_for(milliseconds{300});  // the target meets the resets
}

// The raw length field value as the spec's width and order write it.
std::vector<std::uint8_t> hostile_bytes(const FrameSpec& spec, std::uint64_t raw) {
    std::vector<std::uint8_t> bytes(spec.header_bytes + 16);
    fill_stream_pattern(31, bytes);
    for (std::size_t i = 0; i < spec.length_width_bytes; ++i) {
        const std::size_t shift = 8 * (spec.length_byte_order == ByteOrder::big_endian ? spec.length_width_bytes - 1 - i : i);
        bytes[spec.length_offset_bytes + i] = static_cast<std::uint8_t>(raw >> shift);
    }
    return bytes;
}

void run_hostile(const Check& check, const PeerContext& context, PeerReport& report) {
    const FrameSpec& spec = context.spec;
    const std::uint64_t width_bits = 8 * spec.length_width_bytes;
    const std::uint64_t mask = width_bits >= 64 ? ~0ULL : (1ULL << width_bits) - 1;
    // A body of max + 1: the length field that announces it.
    const std::int64_t over = static_cast<std::int64_t>(spec.max_frame_bytes - spec.header_bytes + 1) -
                              spec.length_adjustment_bytes;
    std::vector<std::pair<std::string, std::uint64_t>> lengths;
    if (spec.length_signed)
        lengths.push_back({"-1", mask});
    lengths.push_back({std::to_string(over), static_cast<std::uint64_t>(over) & mask});
    if (spec.length_width_bytes >= 4)
        lengths.push_back({"2147483647", 0x7fffffffULL});
    Loop loop(context);
    std::vector<std::unique_ptr<HostileClient>> hostile;
    EchoClient good(loop.sys(), "the well-behaved client", client_stream(context, payload_bytes(check.peer),
                                                                          check.peer.body_bytes, 0),
                    check.peer);
    loop.add(good);
    for (const auto& [text, raw] : lengths) {
        hostile.push_back(std::make_unique<HostileClient>(loop.sys(), hostile_bytes(spec, raw), text));
        loop.add(*hostile.back());
    }
    (void)loop.run(monotonic_now() + check.deadline, [&] { return loop.all_done(); });
    if (!good.done())
        good.give_up(monotonic_now());
    report.echoes.push_back(good.outcome);
    for (const auto& h : hostile)
        report.hostile.push_back(h->outcome);
}

}  // namespace

PeerReport run_peer(const Check& check, const PeerContext& context) {
    PeerReport report;
    if (!Loop(context).ok()) {
        report.problem = "epoll_create1 failed";
        return report;
    }
    switch (check.peer.kind) {
        case PeerKind::echo: run_echo(check, context, report); break;
        case PeerKind::reset: run_resets(check, context, report); break;
        case PeerKind::hostile: run_hostile(check, context, report); break;
    }
    return report;
}

EchoOutcome run_fresh_client(const PeerContext& context, std::uint64_t bytes, Nanos deadline) {
    Loop loop(context);
    EchoClient client(loop.sys(), "a fresh client", client_stream(context, bytes, 100, 2000), fresh_client_spec(bytes));
    loop.add(client);
    (void)loop.run(monotonic_now() + deadline, [&] { return client.done(); });
    if (!client.done())
        client.give_up(monotonic_now());
    return client.outcome;
}

}  // namespace eagain::harness::verify
