// Transport: the syscall driver of one non-blocking TCP socket.
//
// Every result a socket call can give is turned into one of a few outcomes
// here, once, by the rules of the man pages:
//
//   send/sendmsg  n < len      keep the rest, ask for EPOLLOUT, send it later
//                 EAGAIN       keep everything, ask for EPOLLOUT
//                 EINTR        retry at once (bounded)
//                 EPIPE/ECONNRESET   the connection is over, with that errno
//                 MSG_NOSIGNAL always (send, or sendmsg for a gathered
//                 write: writev takes no flags): a reset peer must not
//                 raise SIGPIPE
//                 never a 0-byte send; EPOLLOUT dropped as soon as drained
//   recv          n > 0        hand the bytes on
//                 0            the peer finished sending (FIN)
//                 EAGAIN       nothing more for now
//                 EINTR        retry at once (bounded)
//   edge-triggered reads drain until EAGAIN (a short read does NOT mean the
//   socket is empty); level-triggered reads do one recv per wake-up, since
//   epoll reports again while bytes remain. Either way the bytes read per
//   wake-up are bounded, so one busy peer cannot starve the others: an
//   edge-triggered reader that stops early asks the reactor to wake it
//   again (no new edge would come for bytes already queued).
//   connect       0 | EINPROGRESS | EINTR   in progress: wait for EPOLLOUT,
//                 then SO_ERROR says how it ended (POSIX: an interrupted
//                 connect continues asynchronously)
//
// The Transport owns the fd and its reactor registration; buffers belong to
// the caller (a Connection's, a plain ByteBuffer), so no byte is copied
// between the driver and its owner.
#pragma once

#include "core/byte_buffer.h"
#include "core/reactor.h"
#include "core/sys.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace eagain {

// level: reported while readable/writable. edge: EPOLLET, reported on
// arrivals. oneshot: EPOLLONESHOT, level semantics but disarmed after each
// report; the Transport re-arms (EPOLL_CTL_MOD) after handling every event,
// the pattern for handing a socket to one worker at a time.
enum class TriggerMode : std::uint8_t { level, edge, oneshot };
std::string_view to_string(TriggerMode mode) noexcept;

// Consecutive EINTRs a call is retried at once before the step goes back to
// the reactor: Transport's send/recv (TransportOptions) and the listener's
// accept4 (apps/listener.h) share this bound.
inline constexpr int default_max_eintr_retries = 16;

struct TransportOptions {
    TriggerMode trigger = TriggerMode::level;
    // Upper bound on bytes read per wake-up (fairness between peers).
    std::size_t read_budget_bytes = 256U * 1024U;
    // Bytes asked of one recv call.
    std::size_t recv_chunk_bytes = 64U * 1024U;
    // Consecutive EINTRs retried within one call before giving the step
    // back to the reactor (which wakes the transport again).
    int max_eintr_retries = default_max_eintr_retries;
};

enum class ReadStatus : std::uint8_t {
    drained,  // EAGAIN: nothing more until epoll says so
    more,     // stopped early (level-triggered, or budget spent): more may be queued
    // The caller's buffer has no room. Bytes may still be queued: once the
    // caller has made room it must read again (edge-triggered: ask
    // Reactor::wake_again, as no new edge will come) or set_reading(false).
    sink_full,
    peer_finished,  // recv returned 0: the peer sent FIN; nothing more will arrive
    failed,         // error holds the errno (ECONNRESET, ...)
};
std::string_view to_string(ReadStatus status) noexcept;

struct ReadOutcome {
    ReadStatus status = ReadStatus::drained;
    std::size_t bytes = 0;  // read by this call, whatever the status
    int error = 0;
};

enum class WriteStatus : std::uint8_t {
    done,        // everything handed over to the kernel
    pending,     // the rest is buffered; EPOLLOUT is requested
    over_limit,  // the output buffer's limit would be exceeded; nothing was taken
    failed,      // error holds the errno (EPIPE, ECONNRESET, ...)
};
std::string_view to_string(WriteStatus status) noexcept;

struct WriteOutcome {
    WriteStatus status = WriteStatus::done;
    std::size_t bytes = 0;  // handed to the kernel by this call
    int error = 0;
};

enum class ConnectStatus : std::uint8_t { connected, in_progress, failed };

class Transport final : private Reactor::Handler {
public:
    // What the socket's owner is told. Called from inside Reactor::poll().
    class Events {
    public:
        // EPOLLIN (or EPOLLRDHUP/ERR/HUP, which a read will explain).
        virtual void on_readable() = 0;
        // EPOLLOUT while output is pending or a connect is in progress.
        virtual void on_writable() = 0;

    protected:
        ~Events() = default;
    };

    // Takes ownership of fd (non-blocking, connected or connecting) and
    // registers it for reading (and writing, while connecting).
    Transport(Reactor& reactor, int fd, TransportOptions options, Events& events, bool connecting = false);
    ~Transport();
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    // 0, or the errno the reactor registration failed with.
    int open_error() const noexcept { return open_error_; }
    int fd() const noexcept { return fd_; }
    bool is_open() const noexcept { return fd_ >= 0; }
    const TransportOptions& options() const noexcept { return options_; }

    // --- connect -----------------------------------------------------------
    struct ConnectStart {
        ConnectStatus status = ConnectStatus::failed;
        int fd = -1;
        int error = 0;
    };
    // A non-blocking socket connecting to address.
    static ConnectStart start_connect(Sys& sys, const SockAddr& address);
    // After on_writable() while connecting: SO_ERROR's verdict (0: connected).
    int finish_connect();
    bool connecting() const noexcept { return connecting_; }

    // --- reading -----------------------------------------------------------
    // Reads into sink (anything with prepare(n) -> span<uint8_t> and
    // commit(k): a ByteBuffer, a FrameDecoder).
    template <class Sink>
    ReadOutcome read(Sink& sink);
    // Stop / resume asking for EPOLLIN (backpressure, half-close).
    void set_reading(bool on);
    bool reading() const noexcept { return reading_; }

    // --- writing -----------------------------------------------------------
    // Sends as much of bytes as the kernel takes now (outcome.bytes); the
    // caller keeps the rest and calls again on_writable(). EPOLLOUT stays
    // requested exactly while a send left bytes behind. Empty bytes: no
    // syscall (a 0-byte send is never made).
    WriteOutcome send(std::span<const std::uint8_t> bytes);
    // Sends output's readable bytes until drained or EAGAIN, consuming what
    // the kernel took; EPOLLOUT stays requested exactly while bytes remain.
    WriteOutcome flush(ByteBuffer& output);
    // Sends pieces after whatever output already holds. With output empty
    // they go out in one sendmsg (writev with MSG_NOSIGNAL), straight from the caller's memory; what the
    // kernel does not take is copied into output. All or nothing: if the
    // unsent rest could not fit output's limit, nothing is sent.
    WriteOutcome write(ByteBuffer& output, std::span<const std::span<const std::uint8_t>> pieces);

    // shutdown(SHUT_WR): sends FIN once the caller has flushed everything.
    VoidResult shutdown_write();
    // Deregisters and closes the fd. Idempotent.
    void close();

private:
    void on_ready(std::uint32_t events) override;
    void dispatch(std::uint32_t events);
    void update_interest();
    std::uint32_t trigger_flags() const noexcept;
    void set_want_write(bool on);
    SizeResult send_retrying(std::span<const iovec> buffers);

    Reactor& reactor_;
    Sys& sys_;
    int fd_ = -1;
    int open_error_ = 0;
    TransportOptions options_;
    Events& events_;
    bool connecting_ = false;
    bool reading_ = true;
    bool want_write_ = false;
    std::uint32_t interest_ = 0;  // as last given to epoll
    // Set while on_ready() runs: the owner may destroy this Transport from
    // inside on_readable() (closing on a reset, say), and on_ready() must
    // then not touch it again.
    bool* destroyed_ = nullptr;
};

// ---------------------------------------------------------------------------

template <class Sink>
ReadOutcome Transport::read(Sink& sink) {
    ReadOutcome outcome;
    int interrupted = 0;
    while (outcome.bytes < options_.read_budget_bytes) {
        const std::size_t want = std::min(options_.recv_chunk_bytes, options_.read_budget_bytes - outcome.bytes);
        const std::span<std::uint8_t> space = sink.prepare(want);
        if (space.empty()) {
            outcome.status = ReadStatus::sink_full;
            return outcome;
        }
        const SizeResult r = sys_.recv(fd_, space, 0);
        if (!r.ok()) {
            sink.commit(0);
            if (r.error == EINTR && ++interrupted <= options_.max_eintr_retries)
                continue;
            if (r.error == EINTR) {
                outcome.status = ReadStatus::more;
                if (options_.trigger == TriggerMode::edge)
                    reactor_.wake_again(fd_, EPOLLIN);
                return outcome;
            }
            if (would_block(r.error)) {
                outcome.status = ReadStatus::drained;
                return outcome;
            }
            outcome.status = ReadStatus::failed;
            outcome.error = r.error;
            return outcome;
        }
        sink.commit(r.value);
        if (r.value == 0) {
            // recv(2): 0 on a stream socket is the peer's orderly shutdown.
            outcome.status = ReadStatus::peer_finished;
            return outcome;
        }
        outcome.bytes += r.value;
        // Level-triggered (and oneshot, re-armed with level semantics after
        // the event): epoll reports again while bytes remain, so one recv
        // per wake-up is enough and keeps the loop fair.
        if (options_.trigger != TriggerMode::edge) {
            outcome.status = ReadStatus::more;
            return outcome;
        }
    }
    // Edge-triggered and the budget is spent before EAGAIN: no new edge will
    // come for the bytes still queued, so ask to be woken after the others.
    outcome.status = ReadStatus::more;
    reactor_.wake_again(fd_, EPOLLIN);
    return outcome;
}

}  // namespace eagain
