#include "tests/scenarios/naive_echo_server.h"

#include "core/frame.h"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

namespace eagain::scenarios {

namespace {

constexpr std::size_t chunk_bytes = 4096;  // char buf[4096];
constexpr std::size_t header_bytes = DefaultHeader::size_bytes;
// Output held unsent beyond which the server stops reading: the careful
// server's backpressure.
constexpr std::size_t output_limit_bytes = 1U << 20;
// The test harness's caps on every loop, not the variants': far above what a
// scenario needs, so they only stop a variant that would go round forever.
constexpr int max_calls_per_event = 10'000;
constexpr int max_accepts_per_event = 64;

}  // namespace

std::string_view to_string(NaivePitfall pitfall) noexcept {
    switch (pitfall) {
        case NaivePitfall::none: return "none";
        case NaivePitfall::ignores_partial_writes: return "ignores_partial_writes";
        case NaivePitfall::eintr_is_fatal: return "eintr_is_fatal";
        case NaivePitfall::drops_data_on_eagain: return "drops_data_on_eagain";
        case NaivePitfall::et_stops_on_short_read: return "et_stops_on_short_read";
        case NaivePitfall::et_reads_once: return "et_reads_once";
        case NaivePitfall::ignores_recv_zero: return "ignores_recv_zero";
        case NaivePitfall::oneshot_not_rearmed: return "oneshot_not_rearmed";
        case NaivePitfall::trusts_length_field: return "trusts_length_field";
        case NaivePitfall::sends_without_nosignal: return "sends_without_nosignal";
        case NaivePitfall::decoder_assumes_whole_header: return "decoder_assumes_whole_header";
        case NaivePitfall::one_frame_per_read: return "one_frame_per_read";
        case NaivePitfall::unbounded_output: return "unbounded_output";
        case NaivePitfall::accept_gives_up_on_eintr: return "accept_gives_up_on_eintr";
    }
    return "?";
}

NaiveEchoServer::NaiveEchoServer(const harness::AppContext& context, NaivePitfall pitfall)
    : reactor_(context.reactor), address_(context.address), pitfall_(pitfall) {
    switch (harness::trigger_of(context.spec)) {
        case TriggerMode::level: trigger_ = Trigger::level; break;
        case TriggerMode::edge: trigger_ = Trigger::edge; break;
        case TriggerMode::oneshot: trigger_ = Trigger::oneshot; break;
    }
    max_frame_bytes_ = harness::option_size(context.spec, "max-frame", 16U << 20);
    // unbounded_output: the check is missing; the server reads (and echoes
    // into its output) whatever arrives, however much it already owes.
    //     if (c->outlen >= HIGH_WATER) ev.events &= ~EPOLLIN;
    output_limit_bytes_ =
        pitfall_ == NaivePitfall::unbounded_output ? std::numeric_limits<std::size_t>::max() : output_limit_bytes;
}

harness::AppObservations NaiveEchoServer::observations() const {
    harness::AppObservations seen;
    seen.max_buffered_bytes = max_buffered_bytes_;
    return seen;
}

NaiveEchoServer::~NaiveEchoServer() {
    stop();
}

VoidResult NaiveEchoServer::start() {
    Sys& sys = reactor_.sys();
    const FdResult fd = sys.socket(address_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!fd.ok())
        return VoidResult::failure(fd.error);
    listener_ = fd.value;
    for (const VoidResult step :
         {sys.set_int_option(listener_, SOL_SOCKET, SO_REUSEADDR, 1), sys.bind(listener_, address_),
          sys.listen(listener_, 128), reactor_.add(listener_, EPOLLIN, *this)}) {
        if (!step.ok()) {
            (void)sys.close(listener_);
            listener_ = -1;
            return step;
        }
    }
    return VoidResult::success({});
}

void NaiveEchoServer::stop() {
    for (auto& [fd, connection] : connections_) {
        (void)reactor_.remove(fd);
        (void)reactor_.sys().close(fd);
    }
    connections_.clear();
    if (listener_ >= 0) {
        (void)reactor_.remove(listener_);
        (void)reactor_.sys().close(listener_);
        listener_ = -1;
    }
}

void NaiveEchoServer::on_ready(std::uint32_t /*events*/) {
    for (int i = 0; i < max_accepts_per_event; ++i) {
        const FdResult accepted = reactor_.sys().accept4(listener_, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (!accepted.ok()) {
            // EINTR and ECONNABORTED are transient; anything else waits
            // for the next event.
            if (accepted.error == EINTR || accepted.error == ECONNABORTED) {
                // accept_gives_up_on_eintr:
                //     if (errno != EAGAIN) { perror("accept"); close(lfd); return; }
                // a signal or a connection that died in the queue ends the server's accepting.
                if (pitfall_ == NaivePitfall::accept_gives_up_on_eintr) {
                    (void)reactor_.remove(listener_);
                    (void)reactor_.sys().close(listener_);
                    listener_ = -1;
                    return;
                }
                continue;
            }
            return;
        }
        auto connection = std::make_unique<Connection>();
        connection->server = this;
        connection->fd = accepted.value;
        connection->interest = wanted_interest(*connection);
        if (!reactor_.add(accepted.value, connection->interest, *connection).ok()) {
            (void)reactor_.sys().close(accepted.value);
            continue;
        }
        connections_[accepted.value] = std::move(connection);
    }
}

void NaiveEchoServer::serve(Connection& c, std::uint32_t /*events*/) {
    if (c.refused) {
        if (discard(c))
            update_interest(c);
        return;
    }
    if (!flush(c))
        return;
    if (!c.peer_finished && c.output.size() < output_limit_bytes_ && !read(c))
        return;
    if (c.peer_finished && c.output.empty()) {
        close_connection(c);
        return;
    }
    update_interest(c);
}

bool NaiveEchoServer::read(Connection& c) {
    Sys& sys = reactor_.sys();
    std::array<std::uint8_t, chunk_bytes> chunk{};
    for (int call = 0; call < max_calls_per_event; ++call) {
        const SizeResult n = sys.recv(c.fd, chunk, 0);
        if (!n.ok()) {
            if (would_block(n.error))
                return true;
            if (n.error == EINTR && pitfall_ != NaivePitfall::eintr_is_fatal)
                continue;
            // eintr_is_fatal: if (errno != EAGAIN) { perror("recv"); close(fd); }
            close_connection(c);
            return false;
        }
        if (n.value == 0) {
            // ignores_recv_zero:
            //     if (n > 0) echo(buf, n); else if (n < 0 && errno != EAGAIN) close(fd);
            // 0 is neither case; the connection stays open in CLOSE_WAIT.
            if (pitfall_ != NaivePitfall::ignores_recv_zero)
                c.peer_finished = true;
            return true;
        }
        c.input.insert(c.input.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n.value));
        take_frames(c);
        if (c.refused)
            return discard(c);
        if (!flush(c))
            return false;
        // Level-triggered and oneshot: one recv per event; epoll says so
        // again while bytes are left.
        if (trigger_ != Trigger::edge)
            return true;
        // et_reads_once: the level-triggered reader registered with EPOLLET.
        if (pitfall_ == NaivePitfall::et_reads_once)
            return true;
        // et_stops_on_short_read: if (n < sizeof buf) break;  /* "drained" */
        if (pitfall_ == NaivePitfall::et_stops_on_short_read && n.value < chunk.size())
            return true;
        if (c.output.size() >= output_limit_bytes_)
            return true;  // the EPOLLOUT edge that drains it reads on
    }
    // The cap: no new edge comes for what is left, so ask for a wake-up.
    reactor_.wake_again(c.fd, EPOLLIN);
    return true;
}

void NaiveEchoServer::take_frames(Connection& c) {
    std::size_t at = 0;
    while (c.input.size() - at >= header_bytes) {
        const DefaultHeader header =
            DefaultHeader::parse(std::span<const std::uint8_t, header_bytes>(c.input.data() + at, header_bytes));
        const std::uint64_t body_bytes = header.body_len;  // ntohl(hdr->body_len)
        // trusts_length_field: the check is missing; the server waits for
        // (and would malloc) whatever body_len says.
        //     if (len < 0 || sizeof hdr + len > MAX_FRAME) { refuse(fd); return; }
        if (pitfall_ != NaivePitfall::trusts_length_field &&
            (body_bytes > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()) ||
             header_bytes + body_bytes > max_frame_bytes_)) {
            refuse(c);
            return;
        }
        if (c.input.size() - at < header_bytes + body_bytes)
            break;  // wait for the rest of the body
        const auto frame = c.input.begin() + static_cast<std::ptrdiff_t>(at);
        c.output.insert(c.output.end(), frame, frame + static_cast<std::ptrdiff_t>(header_bytes + body_bytes));
        max_buffered_bytes_ = std::max<std::uint64_t>(max_buffered_bytes_, c.output.size());
        at += header_bytes + body_bytes;
        // one_frame_per_read: if (len >= sizeof hdr + body) { echo(...); }  /* `if`, not `while` */
        // the frames after the first wait, unparsed, for the next read.
        if (pitfall_ == NaivePitfall::one_frame_per_read)
            break;
    }
    // decoder_assumes_whole_header:
    //     if (len - off < sizeof hdr) len = off = 0;  /* a header never straddles two reads */
    // the bytes of a header split across reads are dropped.
    if (pitfall_ == NaivePitfall::decoder_assumes_whole_header && c.input.size() - at < header_bytes)
        at = c.input.size();
    c.input.erase(c.input.begin(), c.input.begin() + static_cast<std::ptrdiff_t>(at));
}

void NaiveEchoServer::refuse(Connection& c) {
    // The stream can no longer be trusted: stop echoing, send a FIN, and
    // read until the peer closes (closing with bytes unread would send an
    // RST, which can overtake the FIN's meaning at the peer).
    c.refused = true;
    c.input.clear();
    c.output.clear();
    (void)reactor_.sys().shutdown(c.fd, SHUT_WR);
}

bool NaiveEchoServer::discard(Connection& c) {
    std::array<std::uint8_t, chunk_bytes> chunk{};
    for (int call = 0; call < max_calls_per_event; ++call) {
        const SizeResult n = reactor_.sys().recv(c.fd, chunk, 0);
        if (n.ok() && n.value > 0)
            continue;
        if (!n.ok() && (would_block(n.error) || n.error == EINTR))
            return true;
        close_connection(c);
        return false;
    }
    reactor_.wake_again(c.fd, EPOLLIN);
    return true;
}

bool NaiveEchoServer::flush(Connection& c) {
    Sys& sys = reactor_.sys();
    // sends_without_nosignal: send(fd, p, n, 0)
    const int flags = pitfall_ == NaivePitfall::sends_without_nosignal ? 0 : MSG_NOSIGNAL;
    if (pitfall_ == NaivePitfall::ignores_partial_writes) {
        // send(fd, buf, n, MSG_NOSIGNAL);  /* the count is never looked at */
        if (!c.output.empty())
            (void)sys.send(c.fd, c.output, flags);
        c.output.clear();
        return true;
    }
    std::size_t sent = 0;
    for (int call = 0; call < max_calls_per_event && sent < c.output.size(); ++call) {
        const SizeResult n = sys.send(c.fd, std::span<const std::uint8_t>(c.output).subspan(sent), flags);
        if (!n.ok()) {
            if (would_block(n.error)) {
                // drops_data_on_eagain: if (errno == EAGAIN) return;  /* "try later": buf is gone */
                if (pitfall_ == NaivePitfall::drops_data_on_eagain)
                    sent = c.output.size();
                break;  // the rest waits for EPOLLOUT
            }
            if (n.error == EINTR && pitfall_ != NaivePitfall::eintr_is_fatal)
                continue;
            // eintr_is_fatal: if (errno != EAGAIN) { perror("send"); close(fd); }
            close_connection(c);
            return false;
        }
        sent += n.value;
    }
    c.output.erase(c.output.begin(), c.output.begin() + static_cast<std::ptrdiff_t>(sent));
    return true;
}

std::uint32_t NaiveEchoServer::wanted_interest(const Connection& c) const {
    switch (trigger_) {
        case Trigger::edge: return EPOLLIN | EPOLLOUT | EPOLLET;
        case Trigger::level:
        case Trigger::oneshot: {
            const bool reading = c.refused || (!c.peer_finished && c.output.size() < output_limit_bytes_);
            const std::uint32_t interest = (reading ? EPOLLIN : 0U) | (c.output.empty() ? 0U : EPOLLOUT);
            return trigger_ == Trigger::oneshot ? interest | EPOLLONESHOT : interest;
        }
    }
    return 0;
}

void NaiveEchoServer::update_interest(Connection& c) {
    const std::uint32_t wanted = wanted_interest(c);
    if (trigger_ == Trigger::oneshot) {
        // oneshot_not_rearmed: the event disarmed the registration and
        //     epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
        // is missing, so no event ever comes again.
        if (pitfall_ == NaivePitfall::oneshot_not_rearmed)
            return;
    } else if (wanted == c.interest) {
        return;
    }
    c.interest = wanted;
    (void)reactor_.modify(c.fd, wanted);
}

void NaiveEchoServer::close_connection(Connection& c) {
    const int fd = c.fd;
    (void)reactor_.remove(fd);
    (void)reactor_.sys().close(fd);
    connections_.erase(fd);  // destroys c
}

harness::AppFactory naive_echo(NaivePitfall pitfall) {
    return
        [pitfall](const harness::AppContext& context) { return std::make_unique<NaiveEchoServer>(context, pitfall); };
}

}  // namespace eagain::scenarios
