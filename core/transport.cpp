#include "core/transport.h"

#include "core/assert.h"

#include <sys/epoll.h>

#include <array>
#include <cerrno>

namespace eagain {
namespace {

// sendmsg(2) takes at most IOV_MAX buffers; a frame is two, and a caller's
// output buffer one more.
constexpr std::size_t max_write_pieces = 8;

}  // namespace

std::string_view to_string(TriggerMode mode) noexcept {
    switch (mode) {
        case TriggerMode::level: return "level-triggered";
        case TriggerMode::edge: return "edge-triggered";
        case TriggerMode::oneshot: return "oneshot";
    }
    return "?";
}

std::string_view to_string(ReadStatus status) noexcept {
    switch (status) {
        case ReadStatus::drained: return "drained";
        case ReadStatus::more: return "more";
        case ReadStatus::sink_full: return "sink_full";
        case ReadStatus::peer_finished: return "peer_finished";
        case ReadStatus::failed: return "failed";
    }
    return "?";
}

std::string_view to_string(WriteStatus status) noexcept {
    switch (status) {
        case WriteStatus::done: return "done";
        case WriteStatus::pending: return "pending";
        case WriteStatus::over_limit: return "over_limit";
        case WriteStatus::failed: return "failed";
    }
    return "?";
}

Transport::Transport(Reactor& reactor, int fd, TransportOptions options, Events& events, bool connecting)
    : reactor_(reactor), sys_(reactor.sys()), fd_(fd), options_(options), events_(events), connecting_(connecting) {
    EAGAIN_ASSERT(fd >= 0);
    EAGAIN_ASSERT(options_.read_budget_bytes > 0);
    EAGAIN_ASSERT(options_.recv_chunk_bytes > 0);
    EAGAIN_ASSERT(options_.max_eintr_retries >= 0);
    interest_ = EPOLLIN | EPOLLRDHUP | (connecting_ ? EPOLLOUT : 0U) | trigger_flags();
    const VoidResult added = reactor_.add(fd_, interest_, *this);
    if (!added.ok())
        open_error_ = added.error;
}

Transport::~Transport() {
    if (destroyed_ != nullptr)
        *destroyed_ = true;
    close();
}

Transport::ConnectStart Transport::start_connect(Sys& sys, const SockAddr& address) {
    const FdResult socket = sys.socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!socket.ok())
        return ConnectStart{ConnectStatus::failed, -1, socket.error};
    const VoidResult r = sys.connect(socket.value, address);
    if (r.ok())
        return ConnectStart{ConnectStatus::connected, socket.value, 0};
    // connect(2): EINPROGRESS for a non-blocking socket; EINTR means the
    // attempt goes on asynchronously (POSIX), so both are "wait for EPOLLOUT
    // and read SO_ERROR". Retrying connect() instead would get EALREADY.
    if (r.error == EINPROGRESS || r.error == EINTR) {
        return ConnectStart{ConnectStatus::in_progress, socket.value, 0};
    }
    (void)sys.close(socket.value);
    return ConnectStart{ConnectStatus::failed, -1, r.error};
}

int Transport::finish_connect() {
    EAGAIN_ASSERT(connecting_);
    const SysResult<int> so_error = sys_.socket_error(fd_);
    const int error = so_error.ok() ? so_error.value : so_error.error;
    // connect(2): EPOLLOUT fires on failure too; only SO_ERROR 0 is success.
    if (error == 0) {
        connecting_ = false;
        update_interest();
    }
    return error;
}

void Transport::set_reading(bool on) {
    if (reading_ == on)
        return;
    reading_ = on;
    update_interest();
    // An edge-triggered reader that stopped before EAGAIN will get no new
    // edge for what is already queued: look again now.
    if (on && options_.trigger == TriggerMode::edge && is_open())
        reactor_.wake_again(fd_, EPOLLIN);
}

SizeResult Transport::send_retrying(std::span<const iovec> buffers) {
    int interrupted = 0;
    for (;;) {
        SizeResult r =
            buffers.size() == 1
                ? sys_.send(fd_, std::span(static_cast<const std::uint8_t*>(buffers[0].iov_base), buffers[0].iov_len),
                            MSG_NOSIGNAL)
                : sys_.sendmsg(fd_, buffers, MSG_NOSIGNAL);  // writev with flags
        if (!r.ok() && r.error == EINTR && ++interrupted <= options_.max_eintr_retries)
            continue;
        return r;
    }
}

WriteOutcome Transport::send(std::span<const std::uint8_t> bytes) {
    WriteOutcome outcome;
    while (outcome.bytes < bytes.size()) {
        const std::span<const std::uint8_t> rest = bytes.subspan(outcome.bytes);
        const iovec piece{const_cast<std::uint8_t*>(rest.data()), rest.size()};
        const SizeResult r = send_retrying(std::span(&piece, 1));
        if (!r.ok()) {
            // EAGAIN: the send buffer is full; EINTR past the retry bound:
            // either way, wait for EPOLLOUT with the rest kept.
            if (would_block(r.error) || r.error == EINTR)
                break;
            outcome.status = WriteStatus::failed;
            outcome.error = r.error;
            return outcome;
        }
        EAGAIN_ASSERT(r.value <= rest.size());  // the kernel never takes more than offered
        outcome.bytes += r.value;
    }
    const bool rest_kept = outcome.bytes < bytes.size();
    outcome.status = rest_kept ? WriteStatus::pending : WriteStatus::done;
    set_want_write(rest_kept);
    return outcome;
}

WriteOutcome Transport::flush(ByteBuffer& output) {
    const WriteOutcome outcome = send(output.readable());
    output.consume(outcome.bytes);
    if (output.empty())
        output.release_if_empty();
    return outcome;
}

void Transport::set_want_write(bool on) {
    if (want_write_ == on)
        return;
    want_write_ = on;
    update_interest();
}

WriteOutcome Transport::write(ByteBuffer& output, std::span<const std::span<const std::uint8_t>> pieces) {
    EAGAIN_ASSERT(pieces.size() < max_write_pieces);
    std::size_t total = 0;
    for (const auto& p : pieces)
        total += p.size();
    if (output.limit() - output.size() < total)
        return WriteOutcome{WriteStatus::over_limit, 0, 0};

    // Something is already queued: order demands the new bytes go after it.
    if (!output.empty() || want_write_ || connecting_) {
        for (const auto& p : pieces) {
            const bool appended = output.append(p);
            EAGAIN_ASSERT(appended);  // room was checked above
        }
        if (connecting_)
            return WriteOutcome{WriteStatus::pending, 0, 0};
        return flush(output);
    }

    std::array<iovec, max_write_pieces> iov{};
    std::size_t count = 0;
    for (const auto& p : pieces) {
        if (p.empty())
            continue;  // never hand the kernel a 0-byte piece
        iov[count++] = iovec{const_cast<std::uint8_t*>(p.data()), p.size()};
    }
    if (count == 0)
        return WriteOutcome{WriteStatus::done, 0, 0};

    WriteOutcome outcome;
    const SizeResult r = send_retrying(std::span(iov.data(), count));
    std::size_t sent = 0;
    if (r.ok()) {
        sent = r.value;
        EAGAIN_ASSERT(sent <= total);
    } else if (!would_block(r.error) && r.error != EINTR) {
        return WriteOutcome{WriteStatus::failed, 0, r.error};
    }
    outcome.bytes = sent;
    // Keep exactly the bytes the kernel did not take, in order.
    for (const auto& p : pieces) {
        if (sent >= p.size()) {
            sent -= p.size();
            continue;
        }
        const bool appended = output.append(p.subspan(sent));
        EAGAIN_ASSERT(appended);
        sent = 0;
    }
    outcome.status = output.empty() ? WriteStatus::done : WriteStatus::pending;
    set_want_write(!output.empty());
    return outcome;
}

VoidResult Transport::shutdown_write() {
    EAGAIN_ASSERT(is_open());
    return sys_.shutdown(fd_, SHUT_WR);
}

void Transport::close() {
    if (fd_ < 0)
        return;
    if (reactor_.registered(fd_))
        (void)reactor_.remove(fd_);
    // close(2): never retried; on Linux the fd is released even on EINTR.
    (void)sys_.close(fd_);
    fd_ = -1;
}

void Transport::update_interest() {
    if (fd_ < 0 || open_error_ != 0)
        return;
    // EPOLLRDHUP only while reading: level-triggered, a peer's FIN would
    // otherwise be reported on every poll while we are not reading.
    std::uint32_t interest = 0;
    if (reading_)
        interest |= EPOLLIN | EPOLLRDHUP;
    if (want_write_ || connecting_)
        interest |= EPOLLOUT;
    interest |= trigger_flags();
    if (interest == interest_)
        return;
    interest_ = interest;
    (void)reactor_.modify(fd_, interest_);
}

std::uint32_t Transport::trigger_flags() const noexcept {
    switch (options_.trigger) {
        case TriggerMode::level: return 0;
        case TriggerMode::edge: return EPOLLET;
        case TriggerMode::oneshot: return EPOLLONESHOT;
    }
    return 0;
}

void Transport::on_ready(std::uint32_t events) {
    bool destroyed = false;
    destroyed_ = &destroyed;
    dispatch(events);
    if (destroyed)
        return;  // the owner destroyed us while handling the event
    destroyed_ = nullptr;
    // EPOLLONESHOT disarmed the registration when it reported: arm it again
    // with the current interest (MOD re-polls, so nothing queued is missed).
    if (options_.trigger == TriggerMode::oneshot && is_open() && reactor_.registered(fd_))
        (void)reactor_.modify(fd_, interest_);
}

void Transport::dispatch(std::uint32_t events) {
    // EPOLLERR/EPOLLHUP count as both readable and writable: the read or the
    // write that follows returns the error, and that is where it is handled.
    const bool error = (events & (EPOLLERR | EPOLLHUP)) != 0;
    const bool readable = error || (events & (EPOLLIN | EPOLLRDHUP)) != 0;
    const bool writable = error || (events & EPOLLOUT) != 0;
    if (connecting_) {
        // May destroy this Transport: on_ready() checks before touching it.
        if (readable || writable)
            events_.on_writable();
        return;
    }
    if (readable) {
        bool* const outer = destroyed_;
        events_.on_readable();
        if (*outer)
            return;  // the owner destroyed us while handling the read
    }
    // The owner may also have closed the socket while handling the read.
    if (writable && is_open())
        events_.on_writable();
}

}  // namespace eagain
