#include "tests/scenarios/naive_client.h"

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

constexpr std::size_t chunk_bytes = 4096;  // char buf[4096];
constexpr std::size_t header_bytes = DefaultHeader::size_bytes;
// The test harness's cap on every loop, not the variants'.
constexpr int max_calls_per_event = 10'000;

// How an errno ends an established connection (as core/connection.h names it).
CloseReason reason_for(int error) {
    if (error == ECONNRESET)
        return CloseReason::reset;
    if (error == EPIPE)
        return CloseReason::broken_pipe;
    return CloseReason::io_error;
}

}  // namespace

std::string_view to_string(NaiveClientPitfall pitfall) noexcept {
    switch (pitfall) {
        case NaiveClientPitfall::none: return "none";
        case NaiveClientPitfall::skips_so_error: return "skips_so_error";
        case NaiveClientPitfall::eintr_connect_is_failure: return "eintr_connect_is_failure";
        case NaiveClientPitfall::no_connect_timeout: return "no_connect_timeout";
    }
    return "?";
}

NaiveFrameClient::NaiveFrameClient(const harness::AppContext& context, NaiveClientPitfall pitfall)
    : reactor_(context.reactor), server_(context.address), pitfall_(pitfall) {
    connections_ =
        static_cast<std::size_t>(std::max<std::uint64_t>(1, harness::option_count(context.spec, "conns", 1)));
    frames_ = harness::option_count(context.spec, "frames", 100);
    body_bytes_ = static_cast<std::size_t>(harness::option_size(context.spec, "size", 64));
    in_flight_ =
        static_cast<std::size_t>(std::max<std::uint64_t>(1, harness::option_count(context.spec, "in-flight", 32)));
    body_.resize(body_bytes_);
}

NaiveFrameClient::~NaiveFrameClient() {
    stop();
}

VoidResult NaiveFrameClient::start() {
    for (std::size_t i = 0; i < connections_; ++i) {
        auto peer = std::make_unique<Peer>();
        peer->client = this;
        peer->index = i;
        peer->quota = frames_ / connections_ + (i < frames_ % connections_ ? 1 : 0);
        peers_.push_back(std::move(peer));
    }
    for (const auto& peer : peers_) {
        if (peer->quota == 0) {
            peer->ended = true;
            ++ended_;
            continue;
        }
        connect(*peer);
    }
    return VoidResult::success({});
}

void NaiveFrameClient::stop() {
    for (const auto& peer : peers_) {
        cancel_connect_deadline(*peer);
        if (peer->fd < 0)
            continue;
        if (reactor_.registered(peer->fd))
            (void)reactor_.remove(peer->fd);
        (void)reactor_.sys().close(peer->fd);
        peer->fd = -1;
        if (!peer->ended) {
            peer->ended = true;
            ++ended_;
        }
    }
}

void NaiveFrameClient::connect(Peer& p) {
    Sys& sys = reactor_.sys();
    const FdResult fd = sys.socket(server_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!fd.ok()) {
        end(p, CloseInfo{CloseReason::connect_failed, fd.error, {}});
        return;
    }
    p.fd = fd.value;
    const VoidResult r = sys.connect(p.fd, server_);
    if (r.ok()) {
        connected(p);
        return;
    }
    // eintr_connect_is_failure:
    //     if (connect(fd, ...) < 0 && errno != EINPROGRESS) { perror("connect"); close(fd); return -1; }
    // although POSIX says an interrupted connect goes on asynchronously.
    const bool under_way =
        r.error == EINPROGRESS || (r.error == EINTR && pitfall_ != NaiveClientPitfall::eintr_connect_is_failure);
    if (!under_way) {
        end(p, CloseInfo{CloseReason::connect_failed, r.error, {}});
        return;
    }
    p.connecting = true;
    p.interest = EPOLLOUT;
    if (const VoidResult added = reactor_.add(p.fd, p.interest, p); !added.ok()) {
        end(p, CloseInfo{CloseReason::connect_failed, added.error, {}});
        return;
    }
    // no_connect_timeout: the attempt lasts as long as the kernel keeps
    // retrying the SYN (127 s on Linux); nothing of the client's own ends it.
    if (pitfall_ == NaiveClientPitfall::no_connect_timeout)
        return;
    p.connect_deadline = reactor_.add_timer(sys.now() + ConnectionConfig{}.connect_timeout, [this, &p] {
        p.connect_deadline.reset();
        end(p, CloseInfo{CloseReason::connect_timeout, ETIMEDOUT, {}});
    });
}

void NaiveFrameClient::cancel_connect_deadline(Peer& p) {
    if (p.connect_deadline)
        reactor_.cancel_timer(*p.connect_deadline);
    p.connect_deadline.reset();
}

void NaiveFrameClient::serve(Peer& p, std::uint32_t /*events*/) {
    if (p.ended)
        return;
    if (p.connecting) {
        // skips_so_error: writable means connected.
        //     if (ev.events & EPOLLOUT) state = CONNECTED;
        // The careful client asks getsockopt(SO_ERROR) first: the socket
        // turns writable when the attempt fails too.
        if (pitfall_ != NaiveClientPitfall::skips_so_error) {
            const SysResult<int> error = reactor_.sys().socket_error(p.fd);
            const int pending = error.ok() ? error.value : error.error;
            if (pending != 0) {
                end(p, CloseInfo{CloseReason::connect_failed, pending, {}});
                return;
            }
        }
        p.connecting = false;
        cancel_connect_deadline(p);
        connected(p);
        return;
    }
    if (!flush(p) || !read(p))
        return;
    update_interest(p);
}

void NaiveFrameClient::connected(Peer& p) {
    queue_frames(p);
    if (!flush(p))
        return;
    if (!reactor_.registered(p.fd)) {
        p.interest = EPOLLIN | (p.output.empty() ? 0U : EPOLLOUT);
        if (const VoidResult added = reactor_.add(p.fd, p.interest, p); !added.ok())
            end(p, CloseInfo{CloseReason::io_error, added.error, {}});
        return;
    }
    update_interest(p);
}

void NaiveFrameClient::queue_frames(Peer& p) {
    while (p.next_seq_to_send < p.quota && p.next_seq_to_send - p.next_seq_expected < in_flight_) {
        const std::uint32_t seq = p.next_seq_to_send++;
        DefaultHeader header;
        header.cmd = LoadClient::frame_cmd;
        header.seq = seq;
        header.body_len = static_cast<std::uint32_t>(body_bytes_);
        header.reserved1 = static_cast<std::uint32_t>(p.index);
        const auto bytes = header.bytes();
        LoadClient::fill_body(p.index, seq, body_);
        p.output.insert(p.output.end(), bytes.begin(), bytes.end());
        p.output.insert(p.output.end(), body_.begin(), body_.end());
    }
}

bool NaiveFrameClient::flush(Peer& p) {
    std::size_t sent = 0;
    for (int call = 0; call < max_calls_per_event && sent < p.output.size(); ++call) {
        const SizeResult n =
            reactor_.sys().send(p.fd, std::span<const std::uint8_t>(p.output).subspan(sent), MSG_NOSIGNAL);
        if (!n.ok()) {
            if (would_block(n.error))
                break;  // the rest waits for EPOLLOUT
            if (n.error == EINTR)
                continue;
            end(p, CloseInfo{reason_for(n.error), n.error, {}});
            return false;
        }
        sent += n.value;
    }
    p.output.erase(p.output.begin(), p.output.begin() + static_cast<std::ptrdiff_t>(sent));
    return true;
}

bool NaiveFrameClient::read(Peer& p) {
    // Level-triggered: one recv per event; epoll says so again while bytes are left.
    std::array<std::uint8_t, chunk_bytes> chunk{};
    const SizeResult n = reactor_.sys().recv(p.fd, chunk, 0);
    if (!n.ok()) {
        if (would_block(n.error) || n.error == EINTR)
            return true;
        end(p, CloseInfo{reason_for(n.error), n.error, {}});
        return false;
    }
    if (n.value == 0) {
        end(p, CloseInfo{p.input.empty() ? CloseReason::peer_closed : CloseReason::peer_closed_mid_frame, 0, {}});
        return false;
    }
    p.input.insert(p.input.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n.value));
    return take_frames(p);
}

bool NaiveFrameClient::take_frames(Peer& p) {
    const Nanos now = reactor_.sys().now();
    std::size_t at = 0;
    while (p.input.size() - at >= header_bytes) {
        const DefaultHeader header =
            DefaultHeader::parse(std::span<const std::uint8_t, header_bytes>(p.input.data() + at, header_bytes));
        const std::uint32_t seq = p.next_seq_expected;
        std::string wrong;
        // Every frame this client sends has body_bytes_ of body: any other
        // length is wrong at once, without waiting for the body it announces.
        if (header.body_len != body_bytes_) {
            wrong = "body of " + std::to_string(header.body_len) + " bytes, expected " + std::to_string(body_bytes_);
        } else if (p.input.size() - at < header_bytes + body_bytes_) {
            break;
        } else if (header.cmd != LoadClient::frame_cmd || header.reserved1 != p.index) {
            wrong = "header cmd " + std::to_string(header.cmd) + " / connection " + std::to_string(header.reserved1);
        } else if (header.seq != seq) {
            wrong = "seq " + std::to_string(header.seq) + ", expected " + std::to_string(seq);
        } else if (seq >= p.next_seq_to_send) {
            wrong = "seq " + std::to_string(seq) + " that was never sent";
        } else {
            LoadClient::fill_body(p.index, seq, body_);
            const std::uint8_t* body = p.input.data() + at + header_bytes;
            if (!body_.empty() && std::memcmp(body_.data(), body, body_.size()) != 0) {
                const auto mine = std::mismatch(body_.begin(), body_.end(), body).first;
                wrong = "body byte " + std::to_string(mine - body_.begin()) + " of seq " + std::to_string(seq);
            }
        }
        if (!wrong.empty()) {
            ++seen_.mismatches;
            problem("connection " + std::to_string(p.index) + ": mismatch: " + wrong);
            end(p, CloseInfo{CloseReason::local_close, 0, {}});
            return false;
        }
        at += header_bytes + body_bytes_;
        ++seen_.frames_verified;
        seen_.finished = now;
        ++p.next_seq_expected;
        if (p.next_seq_expected == p.quota) {
            end(p, CloseInfo{CloseReason::local_close, 0, {}});  // close(fd): all came back
            return false;
        }
    }
    p.input.erase(p.input.begin(), p.input.begin() + static_cast<std::ptrdiff_t>(at));
    queue_frames(p);
    return flush(p);
}

void NaiveFrameClient::update_interest(Peer& p) {
    const std::uint32_t wanted = EPOLLIN | (p.output.empty() ? 0U : EPOLLOUT);
    if (wanted == p.interest)
        return;
    p.interest = wanted;
    (void)reactor_.modify(p.fd, wanted);
}

void NaiveFrameClient::end(Peer& p, const CloseInfo& info) {
    if (p.ended)
        return;
    p.ended = true;
    ++ended_;
    cancel_connect_deadline(p);
    if (p.fd >= 0) {
        if (reactor_.registered(p.fd))
            (void)reactor_.remove(p.fd);
        (void)reactor_.sys().close(p.fd);
        p.fd = -1;
    }
    harness::note_ending(seen_, info);
    if (p.next_seq_expected != p.quota) {
        ++seen_.errors;
        problem("connection " + std::to_string(p.index) + ": ended after " + std::to_string(p.next_seq_expected) +
                " of " + std::to_string(p.quota) + " frames: " + describe(info));
    }
}

void NaiveFrameClient::problem(std::string what) {
    harness::note_problem(seen_, std::move(what));
}

harness::AppFactory naive_frame_client(NaiveClientPitfall pitfall) {
    return
        [pitfall](const harness::AppContext& context) { return std::make_unique<NaiveFrameClient>(context, pitfall); };
}

}  // namespace eagain::scenarios
