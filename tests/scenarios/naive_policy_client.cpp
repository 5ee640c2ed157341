#include "tests/scenarios/naive_policy_client.h"

#include "apps/load_client.h"
#include "core/connection.h"
#include "core/frame.h"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <span>

namespace eagain::scenarios {

namespace {

using namespace std::chrono_literals;

constexpr std::size_t chunk_bytes = 4096;  // char buf[4096];
constexpr std::size_t header_bytes = DefaultHeader::size_bytes;
constexpr std::uint32_t heartbeat_cmd = 0;  // ConnectionConfig's default
constexpr std::uint32_t ping = 0;           // reserved1 of a ping; a pong's is 1
constexpr std::uint32_t pong = 1;
// The test harness's caps, not the variants'.
constexpr int max_calls_per_event = 10'000;
constexpr std::size_t max_connects = 10'000;

// How an errno ends an established connection (as core/connection.h names it).
CloseReason reason_for(int error) {
    if (error == ECONNRESET)
        return CloseReason::reset;
    if (error == EPIPE)
        return CloseReason::broken_pipe;
    return CloseReason::io_error;
}

}  // namespace

std::string_view to_string(NaivePolicyPitfall pitfall) noexcept {
    switch (pitfall) {
        case NaivePolicyPitfall::none: return "none";
        case NaivePolicyPitfall::pings_on_fixed_timer: return "pings_on_fixed_timer";
        case NaivePolicyPitfall::no_dead_peer: return "no_dead_peer";
        case NaivePolicyPitfall::fixed_reconnect_delay: return "fixed_reconnect_delay";
        case NaivePolicyPitfall::never_reconnects: return "never_reconnects";
        case NaivePolicyPitfall::backoff_never_reset: return "backoff_never_reset";
    }
    return "?";
}

NaivePolicyClient::NaivePolicyClient(const harness::AppContext& context, NaiveKind kind, NaivePolicyPitfall pitfall)
    : reactor_(context.reactor), server_(context.address), kind_(kind), pitfall_(pitfall) {
    const harness::AppSpec& spec = context.spec;
    switch (kind_) {
        case NaiveKind::frame_client:
            // One connection only: the kinds it also replaces have one.
            conns_ = harness::option_count(spec, "conns", 1);
            frames_ = harness::option_count(spec, "frames", 100);
            heartbeat_ = harness::option_duration(spec, "heartbeat", 0s);
            dead_after_ = heartbeat_ > 0s ? 3 : 0;
            break;
        case NaiveKind::idle_client:
            heartbeat_ = harness::option_duration(spec, "heartbeat", 30s);
            dead_after_ =
                static_cast<std::uint32_t>(harness::option_count(spec, "dead-after", heartbeat_ > 0s ? 3 : 0));
            break;
        case NaiveKind::reconnecting_client:
            frames_ = harness::option_count(spec, "frames", 0);
            reconnect_ = true;
            backoff_ = harness::option_duration(spec, "backoff", 1s);
            backoff_max_ = harness::option_duration(spec, "backoff-max", 60s);
            break;
    }
    body_bytes_ = static_cast<std::size_t>(harness::option_size(spec, "size", 64));
    in_flight_ = static_cast<std::size_t>(std::max<std::uint64_t>(1, harness::option_count(spec, "in-flight", 32)));
    body_.resize(body_bytes_);
}

NaivePolicyClient::~NaivePolicyClient() {
    stop();
}

VoidResult NaivePolicyClient::start() {
    if (conns_ != 1) {
        ++seen_.errors;
        problem("the naive policy client runs one connection, not " + std::to_string(conns_));
        done_ = true;
        return VoidResult::success({});
    }
    connect();
    return VoidResult::success({});
}

void NaivePolicyClient::stop() {
    cancel(reconnect_timer_);
    close_socket();
    done_ = true;
}

void NaivePolicyClient::act(std::string_view action) {
    if (action != "close" || done_)
        return;
    cancel(reconnect_timer_);
    lost(CloseInfo{CloseReason::local_close, 0, {}});
}

void NaivePolicyClient::connect() {
    if (seen_.connect_attempts.size() == max_connects) {
        problem("gave up after " + std::to_string(max_connects) + " connects (the test's cap)");
        ++seen_.errors;
        done_ = true;
        return;
    }
    Sys& sys = reactor_.sys();
    seen_.states.emplace("connecting");
    seen_.connect_attempts.push_back(now());
    const FdResult fd = sys.socket(server_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!fd.ok()) {
        lost(CloseInfo{CloseReason::connect_failed, fd.error, {}});
        return;
    }
    fd_ = fd.value;
    const VoidResult r = sys.connect(fd_, server_);
    if (r.ok()) {
        connected();
        return;
    }
    // POSIX: an interrupted connect goes on asynchronously, as EINPROGRESS does.
    if (r.error != EINPROGRESS && r.error != EINTR) {
        lost(CloseInfo{CloseReason::connect_failed, r.error, {}});
        return;
    }
    connecting_ = true;
    interest_ = EPOLLOUT;
    if (const VoidResult added = reactor_.add(fd_, interest_, *this); !added.ok()) {
        lost(CloseInfo{CloseReason::connect_failed, added.error, {}});
        return;
    }
    connect_deadline_ = reactor_.add_timer(now() + ConnectionConfig{}.connect_timeout, [this] {
        connect_deadline_.reset();
        lost(CloseInfo{CloseReason::connect_timeout, ETIMEDOUT, {}});
    });
}

void NaivePolicyClient::on_ready(std::uint32_t /*events*/) {
    if (fd_ < 0)
        return;
    if (connecting_) {
        const SysResult<int> error = reactor_.sys().socket_error(fd_);
        const int pending = error.ok() ? error.value : error.error;
        if (pending != 0) {
            lost(CloseInfo{CloseReason::connect_failed, pending, {}});
            return;
        }
        connected();
        return;
    }
    if (!flush() || !read())
        return;
    update_interest();
}

void NaivePolicyClient::connected() {
    connecting_ = false;
    cancel(connect_deadline_);
    seen_.states.emplace("established");
    // backoff_never_reset: the reset below is missing, as in
    //     static int failures;  /* ++ on every failure, never cleared */
    // so one loss after a long outage waits as long as the outage's last retry.
    if (pitfall_ != NaivePolicyPitfall::backoff_never_reset)
        failures_ = 0;
    last_io_ = now();
    last_ping_ = now();
    last_received_ = now();
    input_.clear();
    output_.clear();
    next_to_send_ = verified_;  // echoes of a lost connection never come: send again from the first unverified
    queue_frames();
    if (!flush())
        return;
    if (!reactor_.registered(fd_)) {
        interest_ = EPOLLIN | (output_.empty() ? 0U : EPOLLOUT);
        if (const VoidResult added = reactor_.add(fd_, interest_, *this); !added.ok()) {
            lost(CloseInfo{CloseReason::io_error, added.error, {}});
            return;
        }
    } else {
        update_interest();
    }
    if (heartbeat_ > 0s)
        arm_heartbeat();
}

void NaivePolicyClient::queue_frames() {
    while (next_to_send_ < frames_ && next_to_send_ - verified_ < in_flight_) {
        const auto seq = static_cast<std::uint32_t>(next_to_send_++);
        DefaultHeader header;
        header.cmd = LoadClient::frame_cmd;
        header.seq = seq;
        header.body_len = static_cast<std::uint32_t>(body_bytes_);
        const auto bytes = header.bytes();
        LoadClient::fill_body(0, seq, body_);
        output_.insert(output_.end(), bytes.begin(), bytes.end());
        output_.insert(output_.end(), body_.begin(), body_.end());
    }
    seen_.max_buffered_bytes = std::max<std::uint64_t>(seen_.max_buffered_bytes, output_.size());
}

void NaivePolicyClient::queue_heartbeat(std::uint32_t seq, std::uint32_t kind) {
    DefaultHeader header;
    header.cmd = heartbeat_cmd;
    header.seq = seq;
    header.reserved1 = kind;
    const auto bytes = header.bytes();
    output_.insert(output_.end(), bytes.begin(), bytes.end());
    seen_.max_buffered_bytes = std::max<std::uint64_t>(seen_.max_buffered_bytes, output_.size());
}

bool NaivePolicyClient::flush() {
    std::size_t sent = 0;
    for (int call = 0; call < max_calls_per_event && sent < output_.size(); ++call) {
        const SizeResult n =
            reactor_.sys().send(fd_, std::span<const std::uint8_t>(output_).subspan(sent), MSG_NOSIGNAL);
        if (!n.ok()) {
            if (would_block(n.error))
                break;  // the rest waits for EPOLLOUT
            if (n.error == EINTR)
                continue;
            lost(CloseInfo{reason_for(n.error), n.error, {}});
            return false;
        }
        sent += n.value;
    }
    if (sent > 0)
        last_io_ = now();
    output_.erase(output_.begin(), output_.begin() + static_cast<std::ptrdiff_t>(sent));
    return true;
}

bool NaivePolicyClient::read() {
    // Level-triggered: one recv per event; epoll says so again while bytes are left.
    std::array<std::uint8_t, chunk_bytes> chunk{};
    const SizeResult n = reactor_.sys().recv(fd_, chunk, 0);
    if (!n.ok()) {
        if (would_block(n.error) || n.error == EINTR)
            return true;
        lost(CloseInfo{reason_for(n.error), n.error, {}});
        return false;
    }
    if (n.value == 0) {
        lost(CloseInfo{input_.empty() ? CloseReason::peer_closed : CloseReason::peer_closed_mid_frame, 0, {}});
        return false;
    }
    last_io_ = now();
    last_received_ = now();
    input_.insert(input_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n.value));
    return take_frames();
}

bool NaivePolicyClient::take_frames() {
    std::size_t at = 0;
    while (input_.size() - at >= header_bytes) {
        const DefaultHeader header =
            DefaultHeader::parse(std::span<const std::uint8_t, header_bytes>(input_.data() + at, header_bytes));
        if (header.cmd == heartbeat_cmd && header.body_len == 0) {
            // A ping is answered with a pong of its seq; a pong only shows the peer is alive.
            if (header.reserved1 == ping)
                queue_heartbeat(header.seq, pong);
            at += header_bytes;
            continue;
        }
        const std::uint64_t seq = verified_;
        std::string wrong;
        // Every frame this client sends has body_bytes_ of body: any other
        // length is wrong at once, without waiting for the body it announces.
        if (header.body_len != body_bytes_) {
            wrong = "body of " + std::to_string(header.body_len) + " bytes, expected " + std::to_string(body_bytes_);
        } else if (input_.size() - at < header_bytes + body_bytes_) {
            break;
        } else if (header.cmd != LoadClient::frame_cmd || header.reserved1 != 0) {
            wrong = "header cmd " + std::to_string(header.cmd) + " / connection " + std::to_string(header.reserved1);
        } else if (header.seq != seq) {
            wrong = "seq " + std::to_string(header.seq) + ", expected " + std::to_string(seq);
        } else if (seq >= next_to_send_) {
            wrong = "seq " + std::to_string(seq) + " that was never sent";
        } else {
            LoadClient::fill_body(0, header.seq, body_);
            const std::uint8_t* body = input_.data() + at + header_bytes;
            if (!body_.empty() && std::memcmp(body_.data(), body, body_.size()) != 0) {
                const auto mine = std::mismatch(body_.begin(), body_.end(), body).first;
                wrong = "body byte " + std::to_string(mine - body_.begin()) + " of seq " + std::to_string(seq);
            }
        }
        if (!wrong.empty()) {
            ++seen_.mismatches;
            problem("mismatch: " + wrong);
            lost(CloseInfo{CloseReason::local_close, 0, {}});
            return false;
        }
        at += header_bytes + body_bytes_;
        ++verified_;
        ++seen_.frames_verified;
        seen_.finished = now();
        if (verified_ == frames_) {
            lost(CloseInfo{CloseReason::local_close, 0, {}});  // close(fd): all came back
            return false;
        }
    }
    input_.erase(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(at));
    queue_frames();
    return flush();
}

void NaivePolicyClient::update_interest() {
    const std::uint32_t wanted = EPOLLIN | (output_.empty() ? 0U : EPOLLOUT);
    if (wanted == interest_)
        return;
    interest_ = wanted;
    (void)reactor_.modify(fd_, wanted);
}

Nanos NaivePolicyClient::ping_clock() const {
    // pings_on_fixed_timer: the ping runs on a clock of its own,
    //     setInterval(send_ping, interval);
    // where the careful client counts from the last byte sent or received.
    return pitfall_ == NaivePolicyPitfall::pings_on_fixed_timer ? last_ping_ : last_io_;
}

bool NaivePolicyClient::watches_dead_peer() const {
    // no_dead_peer: nothing watches the silence, as in
    //     on_timer() { send_ping(fd); }   /* no: if (now - last_recv > 3 * interval) close(fd); */
    // so the client pings into it for as long as TCP keeps the socket open
    // (with data unacknowledged ~15 minutes of retransmissions; with none, forever).
    return dead_after_ > 0 && pitfall_ != NaivePolicyPitfall::no_dead_peer;
}

// One timer for both: it fires at the earlier of the next ping and the
// dead-peer deadline as they stood when it was armed; traffic since only
// moves them later, so it checks again and re-arms.
void NaivePolicyClient::arm_heartbeat() {
    Nanos due = ping_clock() + heartbeat_;
    if (watches_dead_peer())
        due = std::min(due, last_received_ + heartbeat_ * dead_after_);
    heartbeat_timer_ = reactor_.add_timer(due, [this] {
        heartbeat_timer_.reset();
        on_heartbeat_timer();
    });
}

void NaivePolicyClient::on_heartbeat_timer() {
    const Nanos t = now();
    if (watches_dead_peer() && t >= last_received_ + heartbeat_ * dead_after_) {
        lost(CloseInfo{CloseReason::dead_peer, 0, {}});
        return;
    }
    if (t >= ping_clock() + heartbeat_) {
        last_io_ = t;  // the next ping is one interval away, sent or not
        last_ping_ = t;
        // Unsent output already is traffic for the peer: no ping behind it.
        if (output_.empty()) {
            queue_heartbeat(next_ping_seq_++, ping);
            ++seen_.heartbeats_sent;
            if (!flush())
                return;
            update_interest();
        }
    }
    arm_heartbeat();
}

void NaivePolicyClient::lost(const CloseInfo& info) {
    close_socket();
    harness::note_ending(seen_, info);
    seen_.finished = now();
    if (reconnect_ && info.reason != CloseReason::local_close) {
        // never_reconnects: this branch is missing, as in
        //     if (n <= 0) { close(fd); fprintf(stderr, "connection lost\n"); return; }
        // with nothing that ever calls connect() again.
        if (pitfall_ != NaivePolicyPitfall::never_reconnects) {
            ++failures_;
            Nanos delay = backoff_;
            // fixed_reconnect_delay: `sleep(backoff); connect();` with the
            // doubling below missing, so a down server gets a connect every
            // backoff for as long as it is down.
            if (pitfall_ != NaivePolicyPitfall::fixed_reconnect_delay) {
                for (std::uint32_t k = 1; k < failures_ && delay < backoff_max_; ++k)
                    delay = std::min(backoff_max_, delay * 2);
            }
            delay = std::min(delay, backoff_max_);
            seen_.states.emplace("backoff");
            reconnect_timer_ = reactor_.add_timer(now() + delay, [this] {
                reconnect_timer_.reset();
                connect();
            });
            return;
        }
    }
    seen_.states.emplace("closed");
    done_ = true;
    if (info.reason == CloseReason::local_close && verified_ == frames_)
        return;
    ++seen_.errors;
    problem(frames_ == 0 ? "ended: " + describe(info)
                         : "ended after " + std::to_string(verified_) + " of " + std::to_string(frames_) +
                               " frames: " + describe(info));
}

void NaivePolicyClient::close_socket() {
    cancel(connect_deadline_);
    cancel(heartbeat_timer_);
    connecting_ = false;
    if (fd_ < 0)
        return;
    if (reactor_.registered(fd_))
        (void)reactor_.remove(fd_);
    (void)reactor_.sys().close(fd_);
    fd_ = -1;
}

void NaivePolicyClient::cancel(std::optional<Reactor::TimerId>& timer) {
    if (timer)
        reactor_.cancel_timer(*timer);
    timer.reset();
}

void NaivePolicyClient::problem(std::string what) {
    // frame-client (LoadClient) names the connection; the one-connection kinds do not.
    harness::note_problem(seen_, kind_ == NaiveKind::frame_client ? "connection 0: " + what : std::move(what));
}

harness::AppFactory naive_policy_client(NaiveKind kind, NaivePolicyPitfall pitfall) {
    return [kind, pitfall](const harness::AppContext& context) {
        return std::make_unique<NaivePolicyClient>(context, kind, pitfall);
    };
}

}  // namespace eagain::scenarios
