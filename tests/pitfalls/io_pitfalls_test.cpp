// The pitfalls of non-blocking TCP I/O, one test per pitfall, on loopback
// through FaultySys(LinuxSys).
//
// Each test runs the correct driver (Transport, Reactor, ConnectionDriver)
// and a naive variant written the way the seed programs write it
// (tests/pitfalls/naive_io.h) under the same faults, and judges both with
// the same check function: it must hold for the driver and fail for the
// variant, so every check is shown able to fail.
//
// Faults are injected on our socket only. The peer's I/O goes straight to
// the kernel, so FaultySys::calls() counts our side's syscalls alone. Every
// wait is an epoll_wait or a Reactor::poll with a timeout, every loop has a
// bound, and every test ends with as many descriptors open as it began with.
#include "core/connection_driver.h"
#include "core/faulty_sys.h"
#include "core/linux_sys.h"
#include "core/reactor.h"
#include "core/rng.h"
#include "core/transport.h"
#include "tests/conformance/fixture.h"
#include "tests/conformance/linux_fixture.h"
#include "tests/pitfalls/naive_io.h"
#include "tests/support/loopback.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using eagain::ByteBuffer;
using eagain::CallSelector;
using eagain::CloseInfo;
using eagain::CloseReason;
using eagain::ConnectionDriver;
using eagain::ConnectStatus;
using eagain::FaultKind;
using eagain::FaultRule;
using eagain::FaultySys;
using eagain::LinuxSys;
using eagain::Nanos;
using eagain::Reactor;
using eagain::ReadStatus;
using eagain::RuleError;
using eagain::SizeResult;
using eagain::SockAddr;
using eagain::Sys;
using eagain::SysCall;
using eagain::Transport;
using eagain::TransportOptions;
using eagain::TriggerMode;
using eagain::WriteOutcome;
using eagain::WriteStatus;
using eagain::conformance::Fd;
namespace pitfalls = eagain::pitfalls;

namespace {

// --- limits -----------------------------------------------------------------
// A correct driver finishes in a few dozen polls at most; this bound only
// stops a broken one.
constexpr int max_polls_to_finish = 2000;
constexpr Nanos poll_timeout = 10ms;
// Polls in a row that dispatched nothing: whatever was going to happen has.
constexpr int quiet_polls = 3;
// Bounded waits outside the reactor (connect, accept, a byte arriving).
constexpr int wait_ms = 2000;

constexpr auto epoll_in = static_cast<std::uint32_t>(EPOLLIN);
constexpr auto epoll_out = static_cast<std::uint32_t>(EPOLLOUT);
constexpr auto epoll_et = static_cast<std::uint32_t>(EPOLLET);
constexpr auto epoll_rdhup = static_cast<std::uint32_t>(EPOLLRDHUP);

// Bytes no reordering, duplication or loss can leave unchanged by accident.
std::vector<std::uint8_t> pattern(std::size_t size_bytes, std::uint64_t seed) {
    eagain::Rng rng(seed);
    std::vector<std::uint8_t> bytes(size_bytes);
    for (std::uint8_t& b : bytes)
        b = static_cast<std::uint8_t>(rng.next_u64());
    return bytes;
}

FaultRule rule_on(SysCall call, FaultKind fault) {
    FaultRule rule;
    rule.call = call;
    rule.fault = fault;
    return rule;
}

// --- descriptors --------------------------------------------------------------

// The conformance suite's check that every descriptor a test opened is
// closed again, counting this process's descriptors.
class FdLeakCheck : public eagain::conformance::FdLeakCheck {
public:
    FdLeakCheck() : eagain::conformance::FdLeakCheck(eagain::conformance::LinuxFixture::open_fd_count) {}
};

// Whether the kernel has closed fd: the variants are judged by what the
// kernel says, not by what they believe. No descriptor is opened while a
// test runs a variant, so the number cannot have been reused.
bool kernel_closed(Sys& kernel, int fd) {
    return kernel.fcntl(fd, F_GETFL, 0).error == EBADF;
}

// --- SIGPIPE ------------------------------------------------------------------

// Counts SIGPIPEs while it lives instead of letting the default action kill
// the test process, and puts the previous disposition back afterwards.
class SigpipeCounter {
public:
    SigpipeCounter() {
        count_.store(0);
        struct sigaction counting {};
        counting.sa_handler = &on_sigpipe;
        sigemptyset(&counting.sa_mask);
        REQUIRE(sigaction(SIGPIPE, &counting, &previous_) == 0);
    }
    ~SigpipeCounter() { (void)sigaction(SIGPIPE, &previous_, nullptr); }
    SigpipeCounter(const SigpipeCounter&) = delete;
    SigpipeCounter& operator=(const SigpipeCounter&) = delete;

    int count() const noexcept { return count_.load(); }

private:
    // A lock-free atomic is safe to touch from a signal handler.
    static void on_sigpipe(int /*signal*/) { count_.fetch_add(1); }
    static inline std::atomic<int> count_{0};
    static_assert(std::atomic<int>::is_always_lock_free);

    struct sigaction previous_ {};
};

// --- the world ----------------------------------------------------------------

// Socket buffer sizes set before the connection exists (so the advertised
// window starts small too); 0 keeps the kernel's default.
struct BufferSizes {
    int our_send_bytes = 0;
    int peer_receive_bytes = 0;
};

// Our socket and the peer's, connected over loopback. Ours is used through
// `faulty` (and `reactor`, which is built on it), the peer's through `kernel`
// directly. The pair is made through the kernel too, so the call numbers of
// fault rules count the test's own calls.
struct Loopback {
    explicit Loopback(BufferSizes sizes = {}) {
        Fd listener(kernel, make_socket());
        REQUIRE(kernel.set_int_option(listener.get(), SOL_SOCKET, SO_REUSEADDR, 1).ok());
        if (sizes.peer_receive_bytes > 0)  // accepted sockets inherit it
            REQUIRE(kernel.set_int_option(listener.get(), SOL_SOCKET, SO_RCVBUF, sizes.peer_receive_bytes).ok());
        REQUIRE(kernel.bind(listener.get(), SockAddr::ipv4_loopback(0)).ok());
        REQUIRE(kernel.listen(listener.get(), 4).ok());

        ours.reset(make_socket());
        if (sizes.our_send_bytes > 0)
            REQUIRE(kernel.set_int_option(ours.get(), SOL_SOCKET, SO_SNDBUF, sizes.our_send_bytes).ok());
        const auto connected = kernel.connect(ours.get(), eagain::test::local_address(kernel, listener.get()));
        REQUIRE((connected.ok() || connected.error == EINPROGRESS));
        REQUIRE((eagain::test::wait_once(kernel, listener.get(), epoll_in, wait_ms) & epoll_in) != 0);
        const auto accepted = kernel.accept4(listener.get(), nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        REQUIRE(accepted.ok());
        peer.reset(accepted.value);
        REQUIRE((eagain::test::wait_once(kernel, ours.get(), epoll_out, wait_ms) & epoll_out) != 0);
        REQUIRE(kernel.socket_error(ours.get()).value == 0);
        our_fd = ours.get();
        // Made on the kernel directly: FaultySys learns that it is
        // non-blocking from this F_GETFL through it (it never asks itself).
        REQUIRE(faulty.set_nonblocking(our_fd, true).ok());
    }

    int make_socket() {
        const auto fd = kernel.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        REQUIRE(fd.ok());
        return fd.value;
    }

    // A fault on our socket only.
    void inject(FaultRule rule) {
        rule.fd = our_fd;
        REQUIRE(faulty.add_rule(rule) == RuleError::none);
    }

    // Sends all of bytes from the peer, waiting (bounded) for room.
    void peer_sends(std::span<const std::uint8_t> bytes) {
        std::size_t sent = 0;
        for (int round = 0; round < 1000 && sent < bytes.size(); ++round) {
            const SizeResult r = kernel.send(peer.get(), bytes.subspan(sent), MSG_NOSIGNAL);
            if (r.ok()) {
                sent += r.value;
                continue;
            }
            REQUIRE(eagain::would_block(r.error));
            REQUIRE((eagain::test::wait_once(kernel, peer.get(), epoll_out, wait_ms) & epoll_out) != 0);
        }
        REQUIRE(sent == bytes.size());
    }

    // Sends from the peer until its buffers and ours are full (EAGAIN);
    // returns how many of bytes went.
    std::size_t peer_fills(std::span<const std::uint8_t> bytes) {
        std::size_t sent = 0;
        for (int calls = 0; calls < 1000 && sent < bytes.size(); ++calls) {
            const SizeResult r = kernel.send(peer.get(), bytes.subspan(sent), MSG_NOSIGNAL);
            if (!r.ok()) {
                REQUIRE(eagain::would_block(r.error));
                return sent;
            }
            sent += r.value;
        }
        FAIL("the peer never met EAGAIN");
        return sent;
    }

    // Waits (bounded) until `size_bytes` are queued for us to read, so a
    // reader meets all of them at its first wake-up.
    void wait_until_queued_for_us(std::size_t size_bytes) { wait_until_queued(our_fd, size_bytes); }
    void wait_until_queued(int fd, std::size_t size_bytes) {
        for (int round = 0; round < 100; ++round) {
            const auto queued = kernel.ioctl_fionread(fd);
            REQUIRE(queued.ok());
            if (static_cast<std::size_t>(queued.value) >= size_bytes)
                return;
            (void)eagain::test::wait_once(kernel, fd, epoll_in, 10);
        }
        FAIL("the peer's bytes did not arrive");
    }

    std::size_t unread_by_us() {
        const auto queued = kernel.ioctl_fionread(our_fd);
        REQUIRE(queued.ok());
        return static_cast<std::size_t>(queued.value);
    }

    std::uint64_t our_sends() const {
        return faulty.calls(SysCall::send) + faulty.calls(SysCall::writev) + faulty.calls(SysCall::sendmsg);
    }

    LinuxSys kernel;
    FaultySys faulty{kernel, 1};
    Reactor reactor{faulty};
    Fd ours{faulty, -1};
    Fd peer{faulty, -1};
    int our_fd = -1;  // the number, whoever owns it by now
};

// Polls until done() or max_polls polls; returns the polls made.
template <class Done>
int poll_until(Reactor& reactor, Done&& done, int max_polls = max_polls_to_finish) {
    for (int polls = 0; polls < max_polls; ++polls) {
        if (done())
            return polls;
        REQUIRE(reactor.poll(poll_timeout).ok());
    }
    return max_polls;
}

// Polls until quiet_polls polls in a row dispatch nothing, or max_polls.
int poll_until_quiet(Reactor& reactor, int max_polls = 100) {
    int quiet = 0;
    for (int polls = 0; polls < max_polls; ++polls) {
        const auto step = reactor.poll(poll_timeout);
        REQUIRE(step.ok());
        quiet = step.value == 0 ? quiet + 1 : 0;
        if (quiet == quiet_polls)
            return polls + 1;
    }
    return max_polls;
}

// --- the peer's reading end ---------------------------------------------------

// Takes whatever reaches the peer, straight from the kernel (no faults, not
// counted), on our Reactor so that one poll drives both ends. Level-triggered;
// it leaves the reactor at EOF, where a finished stream would otherwise be
// reported on every poll.
class PeerReader final : private Reactor::Handler {
public:
    enum class Start : std::uint8_t { reading, paused };

    explicit PeerReader(Loopback& net, Start start = Start::reading) : net_(net) {
        if (start == Start::reading)
            resume();
    }
    ~PeerReader() { pause(); }
    PeerReader(const PeerReader&) = delete;
    PeerReader& operator=(const PeerReader&) = delete;

    void resume() {
        if (!net_.reactor.registered(net_.peer.get()) && !eof_)
            REQUIRE(net_.reactor.add(net_.peer.get(), epoll_in, *this).ok());
    }
    void pause() {
        if (net_.reactor.registered(net_.peer.get()))
            (void)net_.reactor.remove(net_.peer.get());
    }
    const std::vector<std::uint8_t>& received() const noexcept { return received_; }
    bool saw_eof() const noexcept { return eof_; }

private:
    void on_ready(std::uint32_t /*events*/) override {
        std::array<std::uint8_t, 64 * 1024> chunk{};
        for (int reads = 0; reads < 64; ++reads) {
            const SizeResult n = net_.kernel.recv(net_.peer.get(), chunk, 0);
            if (!n.ok()) {
                REQUIRE(eagain::would_block(n.error));
                return;
            }
            if (n.value == 0) {
                eof_ = true;
                pause();
                return;
            }
            received_.insert(received_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n.value));
        }
    }

    Loopback& net_;
    std::vector<std::uint8_t> received_;
    bool eof_ = false;
};

// --- the correct drivers ------------------------------------------------------

// Sends through a Transport from an output buffer, flushed on every EPOLLOUT
// until drained. Does not read.
class TransportSender final : private Transport::Events {
public:
    TransportSender(Reactor& reactor, int fd) : transport_(reactor, fd, TransportOptions{}, *this) {
        REQUIRE(transport_.open_error() == 0);
        transport_.set_reading(false);
    }
    TransportSender(const TransportSender&) = delete;
    TransportSender& operator=(const TransportSender&) = delete;

    void write(std::span<const std::uint8_t> bytes) {
        const std::array<std::span<const std::uint8_t>, 1> pieces{bytes};
        note(transport_.write(output_, pieces));
    }
    std::size_t buffered_bytes() const noexcept { return output_.size(); }
    int error() const noexcept { return error_; }

private:
    void on_readable() override {}
    void on_writable() override { note(transport_.flush(output_)); }
    void note(const WriteOutcome& outcome) {
        REQUIRE(outcome.status != WriteStatus::over_limit);
        if (outcome.status == WriteStatus::failed) {
            error_ = outcome.error;
            transport_.close();
        }
    }

    Transport transport_;
    ByteBuffer output_;
    int error_ = 0;
};

// Reads through a Transport into a buffer until the peer finishes or fails.
class TransportReader final : private Transport::Events {
public:
    TransportReader(Reactor& reactor, int fd, TransportOptions options) : transport_(reactor, fd, options, *this) {
        REQUIRE(transport_.open_error() == 0);
    }
    TransportReader(const TransportReader&) = delete;
    TransportReader& operator=(const TransportReader&) = delete;

    std::span<const std::uint8_t> received() const noexcept { return received_.readable(); }
    bool closed() const noexcept { return !transport_.is_open(); }
    std::size_t max_bytes_per_wakeup() const noexcept { return max_bytes_per_wakeup_; }

private:
    void on_readable() override {
        const eagain::ReadOutcome outcome = transport_.read(received_);
        max_bytes_per_wakeup_ = std::max(max_bytes_per_wakeup_, outcome.bytes);
        if (outcome.status == ReadStatus::peer_finished || outcome.status == ReadStatus::failed)
            transport_.close();
    }
    void on_writable() override {}

    Transport transport_;
    ByteBuffer received_;
    std::size_t max_bytes_per_wakeup_ = 0;
};

// A Transport connecting: finish_connect() at the first EPOLLOUT.
class TransportConnector final : private Transport::Events {
public:
    TransportConnector(Reactor& reactor, int fd) : transport_(reactor, fd, TransportOptions{}, *this, true) {
        REQUIRE(transport_.open_error() == 0);
    }
    TransportConnector(const TransportConnector&) = delete;
    TransportConnector& operator=(const TransportConnector&) = delete;

    int fd() const noexcept { return transport_.fd(); }
    // SO_ERROR's verdict once the connect has ended.
    std::optional<int> result() const noexcept { return result_; }

private:
    void on_readable() override {}
    void on_writable() override {
        if (transport_.connecting())
            result_ = transport_.finish_connect();
    }

    Transport transport_;
    std::optional<int> result_;
};

// A ConnectionDriver's app that records what it is told.
struct RecordingApp final : ConnectionDriver::App {
    void on_frame(ConnectionDriver& /*driver*/, const eagain::Frame& /*frame*/) override { ++frames; }
    void on_closed(ConnectionDriver& /*driver*/, const CloseInfo& info, bool /*reconnecting*/) override {
        closed = info;
    }
    std::size_t frames = 0;
    std::optional<CloseInfo> closed;
};

// A ConnectionDriver's configuration without pings: the tests run for well
// under a heartbeat interval anyway, and no byte should go out that the test
// did not ask for.
eagain::ConnectionConfig quiet_config() {
    eagain::ConnectionConfig config;
    config.heartbeat_idle_timeout = Nanos{0};
    config.dead_peer_intervals = 0;
    return config;
}

std::vector<std::uint8_t> encoded_frame(std::uint32_t seq, std::span<const std::uint8_t> body) {
    eagain::DefaultHeader header;
    header.cmd = 7;
    header.seq = seq;
    ByteBuffer out;
    REQUIRE(eagain::encode_frame(eagain::FrameSpec{}, header.bytes(), body, out) == eagain::EncodeError::none);
    return {out.readable().begin(), out.readable().end()};
}

// =============================================================================
// The checks, one per pitfall family. Each is what the test asserts for the
// driver (true) and for the naive variant (false).

// Did the receiver get every byte that was sent, identical and in order?
struct Delivery {
    std::size_t sent_bytes = 0;
    std::size_t received_bytes = 0;
    std::size_t matching_prefix_bytes = 0;  // received bytes equal to the sent ones, from the start

    bool complete() const noexcept { return received_bytes == sent_bytes && matching_prefix_bytes == received_bytes; }
};

Delivery check_delivery(std::span<const std::uint8_t> sent, std::span<const std::uint8_t> received) {
    Delivery d{sent.size(), received.size(), 0};
    while (d.matching_prefix_bytes < std::min(sent.size(), received.size()) &&
           sent[d.matching_prefix_bytes] == received[d.matching_prefix_bytes])
        ++d.matching_prefix_bytes;
    return d;
}

std::string describe(const Delivery& d) {
    return "sent " + std::to_string(d.sent_bytes) + " bytes, received " + std::to_string(d.received_bytes) +
           ", the first " + std::to_string(d.matching_prefix_bytes) + " identical";
}

}  // namespace

// =============================================================================
// 1. Partial write

TEST_CASE(
    "a partial send keeps the rest: Transport delivers every byte in order, a sender ignoring the count "
    "loses the tail",
    "[pitfall]") {
    // send(2) on a non-blocking socket may take fewer bytes than offered and
    // says how many; the rest is the caller's to send again.
    const FdLeakCheck leaks;
    Loopback net;
    const std::vector<std::uint8_t> payload = pattern(64 * 1024, 1);
    FaultRule short_send = rule_on(SysCall::send, FaultKind::short_transfer);
    short_send.short_limit_bytes = 1000;
    net.inject(short_send);
    PeerReader peer(net);

    SECTION("Transport: write, then flush on EPOLLOUT until done") {
        TransportSender sender(net.reactor, net.ours.release());
        sender.write(payload);
        poll_until(net.reactor, [&] { return peer.received().size() == payload.size(); });
        const Delivery delivery = check_delivery(payload, peer.received());
        INFO(describe(delivery));
        CHECK(delivery.complete());
        CHECK(net.faulty.rule_hits(0) >= payload.size() / 1000);
    }
    SECTION("naive: one send, its count ignored") {
        (void)pitfalls::naive_send_ignoring_count(net.faulty, net.ours.get(), payload);
        poll_until_quiet(net.reactor);
        const Delivery delivery = check_delivery(payload, peer.received());
        INFO(describe(delivery));
        CHECK_FALSE(delivery.complete());
        CHECK(delivery.received_bytes == 1000);
    }
}

// =============================================================================
// 2. EAGAIN with the remainder buffered

TEST_CASE("EAGAIN on send keeps the bytes: Transport resumes on EPOLLOUT, a sender returning on EAGAIN drops them",
          "[pitfall]") {
    // send(2): EAGAIN "the socket is marked nonblocking and the requested
    // operation would block"; nothing was taken, and epoll's EPOLLOUT says
    // when to try again.
    const FdLeakCheck leaks;
    Loopback net;
    FaultRule busy = rule_on(SysCall::send, FaultKind::eagain);
    busy.when = CallSelector::every_kth_call;
    busy.call_number = 2;
    net.inject(busy);
    PeerReader peer(net);
    const std::vector<std::uint8_t> payload = pattern(16 * 4096, 2);
    const auto message = [&](std::size_t i) { return std::span(payload).subspan(i * 4096, 4096); };

    SECTION("Transport: what EAGAIN refused waits in the output buffer") {
        TransportSender sender(net.reactor, net.ours.release());
        for (std::size_t i = 0; i < 16; ++i)
            sender.write(message(i));
        poll_until(net.reactor, [&] { return peer.received().size() == payload.size(); });
        const Delivery delivery = check_delivery(payload, peer.received());
        INFO(describe(delivery));
        CHECK(delivery.complete());
        CHECK(net.faulty.rule_hits(0) > 0);
    }
    SECTION("naive: if (errno == EAGAIN) return;") {
        for (std::size_t i = 0; i < 16; ++i)
            REQUIRE(pitfalls::naive_send(net.faulty, net.ours.get(), message(i), 100) !=
                    pitfalls::NaiveSendEnd::closed);
        poll_until_quiet(net.reactor);
        const Delivery delivery = check_delivery(payload, peer.received());
        INFO(describe(delivery));
        CHECK_FALSE(delivery.complete());
        CHECK(delivery.matching_prefix_bytes == 4096);  // the second message is the first lost
    }
}

// =============================================================================
// 3-6. EINTR

TEST_CASE(
    "EINTR on send is retried: Transport delivers everything, a sender treating it as fatal closes a healthy "
    "connection",
    "[pitfall]") {
    // send(2): EINTR "a signal occurred before any data was transmitted";
    // nothing was sent and the call can simply be made again.
    const FdLeakCheck leaks;
    Loopback net;
    FaultRule interrupted = rule_on(SysCall::send, FaultKind::eintr);
    interrupted.when = CallSelector::every_kth_call;
    interrupted.call_number = 2;
    net.inject(interrupted);
    PeerReader peer(net);
    const std::vector<std::uint8_t> payload = pattern(16 * 4096, 3);
    const auto message = [&](std::size_t i) { return std::span(payload).subspan(i * 4096, 4096); };

    SECTION("Transport: retried at once") {
        TransportSender sender(net.reactor, net.ours.release());
        for (std::size_t i = 0; i < 16; ++i)
            sender.write(message(i));
        poll_until(net.reactor, [&] { return peer.received().size() == payload.size(); });
        const Delivery delivery = check_delivery(payload, peer.received());
        INFO(describe(delivery));
        CHECK(delivery.complete());
        CHECK(sender.error() == 0);
        CHECK_FALSE(peer.saw_eof());
        CHECK(net.faulty.rule_hits(0) > 0);
    }
    SECTION("naive: perror(\"send\"); close(fd);") {
        for (std::size_t i = 0; i < 16; ++i) {
            if (pitfalls::naive_send(net.faulty, net.ours.get(), message(i), 100) == pitfalls::NaiveSendEnd::closed) {
                net.ours.release();
                break;
            }
        }
        poll_until(net.reactor, [&] { return peer.saw_eof(); });
        const Delivery delivery = check_delivery(payload, peer.received());
        INFO(describe(delivery));
        CHECK_FALSE(delivery.complete());
        CHECK(peer.saw_eof());  // it hung up on the peer
        CHECK(delivery.received_bytes == 4096);
    }
}

TEST_CASE("EINTR on recv is retried: Transport reads everything, a reader treating it as fatal closes mid-stream",
          "[pitfall]") {
    // recv(2): EINTR "the receive was interrupted by delivery of a signal
    // before any data was available"; nothing was consumed.
    const FdLeakCheck leaks;
    Loopback net;
    FaultRule interrupted = rule_on(SysCall::recv, FaultKind::eintr);
    interrupted.when = CallSelector::every_kth_call;
    interrupted.call_number = 2;
    net.inject(interrupted);
    const std::vector<std::uint8_t> payload = pattern(64 * 1024, 4);
    net.peer_sends(payload);

    SECTION("Transport: retried at once") {
        TransportOptions options;
        options.recv_chunk_bytes = 4096;  // many recv calls, so many of them interrupted
        TransportReader reader(net.reactor, net.ours.release(), options);
        poll_until(net.reactor, [&] { return reader.received().size() == payload.size(); });
        const Delivery delivery = check_delivery(payload, reader.received());
        INFO(describe(delivery));
        CHECK(delivery.complete());
        CHECK_FALSE(reader.closed());
        CHECK(net.faulty.rule_hits(0) > 0);
    }
    SECTION("naive: perror(\"recv\"); close(fd);") {
        pitfalls::NaiveReader reader(net.reactor, net.ours.get(), epoll_in, pitfalls::naive_read_closing_on_eintr);
        REQUIRE(reader.add_error() == 0);
        poll_until(net.reactor, [&] { return reader.log().closed; });
        if (reader.log().closed)
            net.ours.release();
        const Delivery delivery = check_delivery(payload, reader.log().received);
        INFO(describe(delivery));
        CHECK_FALSE(delivery.complete());
        CHECK(reader.log().error == EINTR);
    }
}

TEST_CASE("EINTR on epoll_wait is zero events: Reactor::poll goes on, a loop that breaks on it stops serving",
          "[pitfall]") {
    // epoll_wait(2): EINTR "the call was interrupted by a signal handler
    // before any requested event occurred"; readiness stays for the next
    // call. A signal arriving while the program waits is routine.
    const FdLeakCheck leaks;
    Loopback net;
    FaultRule interrupted = rule_on(SysCall::epoll_wait, FaultKind::eintr);
    interrupted.max_hits = 3;  // the first three waits
    // On any epoll set: the test's own waits go to the kernel directly.
    REQUIRE(net.faulty.add_rule(interrupted) == RuleError::none);
    const std::vector<std::uint8_t> payload = pattern(16 * 1024, 5);
    net.peer_sends(payload);

    SECTION("Reactor::poll: an interrupted wait dispatches nothing and the next one serves") {
        TransportReader reader(net.reactor, net.ours.release(), TransportOptions{});
        poll_until(net.reactor, [&] { return reader.received().size() == payload.size(); });
        const Delivery delivery = check_delivery(payload, reader.received());
        INFO(describe(delivery));
        CHECK(delivery.complete());
        CHECK(net.faulty.rule_hits(0) == 3);
    }
    SECTION("naive: if (n < 0) { perror(\"epoll_wait\"); break; }") {
        const auto epoll_fd = net.faulty.epoll_create1(EPOLL_CLOEXEC);
        REQUIRE(epoll_fd.ok());
        const Fd epoll(net.faulty, epoll_fd.value);
        REQUIRE(net.faulty.epoll_ctl(epoll.get(), EPOLL_CTL_ADD, net.our_fd, eagain::EpollEvent{epoll_in, 1}).ok());
        std::vector<std::uint8_t> received;
        // The loop's reading is right (drain to EAGAIN): only its wait is naive.
        const auto read_all = [&](const eagain::EpollEvent& /*event*/) {
            std::array<std::uint8_t, 4096> chunk{};
            for (int reads = 0; reads < 100; ++reads) {
                const SizeResult n = net.faulty.recv(net.our_fd, chunk, 0);
                if (!n.ok() || n.value == 0)
                    return;
                received.insert(received.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n.value));
            }
        };
        const pitfalls::NaiveLoopEnd end = pitfalls::naive_event_loop(
            net.faulty, epoll.get(), 10, 100, read_all, [&] { return received.size() == payload.size(); });
        const Delivery delivery = check_delivery(payload, received);
        INFO(describe(delivery));
        CHECK_FALSE(delivery.complete());
        CHECK(end.error == EINTR);
        CHECK(end.iterations == 0);
    }
}

namespace {

// Is the connection the variant reports really there and usable? A byte sent
// from our socket must reach the peer the listener accepted.
struct ConnectVerdict {
    int reported_error = -1;  // what the variant says: 0 connected, else the errno it took as failure
    bool accepted = false;    // the listener had a connection to accept
    bool byte_arrived = false;

    bool ok() const noexcept { return reported_error == 0 && accepted && byte_arrived; }
};

ConnectVerdict check_connect(LinuxSys& kernel, int listener, int reported_error, int our_fd) {
    ConnectVerdict verdict;
    verdict.reported_error = reported_error;
    if ((eagain::test::wait_once(kernel, listener, epoll_in, wait_ms) & epoll_in) == 0)
        return verdict;
    const auto accepted = kernel.accept4(listener, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (!accepted.ok())
        return verdict;
    const Fd peer(kernel, accepted.value);
    verdict.accepted = true;
    if (reported_error != 0 || our_fd < 0)
        return verdict;
    const std::array<std::uint8_t, 1> byte{0x5a};
    if (!kernel.send(our_fd, byte, MSG_NOSIGNAL).ok())
        return verdict;
    if ((eagain::test::wait_once(kernel, peer.get(), epoll_in, wait_ms) & epoll_in) == 0)
        return verdict;
    std::array<std::uint8_t, 2> got{};
    const SizeResult n = kernel.recv(peer.get(), got, 0);
    verdict.byte_arrived = n.ok() && n.value == 1 && got[0] == byte[0];
    return verdict;
}

std::string describe(const ConnectVerdict& v) {
    return "reported " + eagain::errno_name(v.reported_error) + ", accepted " + (v.accepted ? "yes" : "no") +
           ", byte arrived " + (v.byte_arrived ? "yes" : "no");
}

}  // namespace

TEST_CASE(
    "EINTR on connect means in progress: Transport waits for EPOLLOUT and SO_ERROR 0, a connector calling it "
    "failure throws a good connection away",
    "[pitfall]") {
    // connect(2): EINTR "the system call was interrupted by a signal that
    // was caught"; POSIX: the connection is then established asynchronously,
    // as after EINPROGRESS.
    const FdLeakCheck leaks;
    LinuxSys kernel;
    FaultySys faulty(kernel, 1);
    Reactor reactor(faulty);
    const Fd listener(kernel, eagain::test::listen_loopback(kernel));
    const SockAddr address = eagain::test::local_address(kernel, listener.get());
    FaultRule interrupted = rule_on(SysCall::connect, FaultKind::eintr);
    interrupted.max_hits = 1;
    REQUIRE(faulty.add_rule(interrupted) == RuleError::none);  // the socket does not exist yet: any fd

    SECTION("Transport::start_connect, EPOLLOUT, finish_connect") {
        const Transport::ConnectStart start = Transport::start_connect(faulty, address);
        REQUIRE(start.status == ConnectStatus::in_progress);
        TransportConnector connector(reactor, start.fd);
        poll_until(reactor, [&] { return connector.result().has_value(); });
        REQUIRE(connector.result().has_value());
        const ConnectVerdict verdict = check_connect(kernel, listener.get(), *connector.result(), connector.fd());
        INFO(describe(verdict));
        CHECK(verdict.ok());
        CHECK(faulty.rule_hits(0) == 1);
    }
    SECTION("naive: if (connect(...) < 0 && errno != EINPROGRESS) fail") {
        const pitfalls::NaiveConnect naive = pitfalls::naive_connect(faulty, address);
        const Fd socket(faulty, naive.fd);
        const ConnectVerdict verdict = check_connect(kernel, listener.get(), naive.error, naive.fd);
        INFO(describe(verdict));
        CHECK_FALSE(verdict.ok());
        CHECK(verdict.reported_error == EINTR);
        CHECK(verdict.accepted);  // the kernel did connect: the variant threw it away
    }
}

// =============================================================================
// 7. recv 0: the peer's FIN

namespace {

// After the peer's FIN: is our socket closed within a bounded number of
// polls, without recv being called again and again for the 0?
struct FinVerdict {
    bool fd_closed = false;
    std::uint64_t recv_calls = 0;
    int polls = 0;

    // The frame's bytes, then the 0; a level-triggered reader may see each
    // in a wake-up of its own, and a spurious wake-up costs one more.
    static constexpr std::uint64_t max_recv_calls = 4;
    bool ok() const noexcept { return fd_closed && recv_calls <= max_recv_calls; }
};

std::string describe(const FinVerdict& v) {
    return std::string("fd ") + (v.fd_closed ? "closed" : "open") + " after " + std::to_string(v.polls) + " polls, " +
           std::to_string(v.recv_calls) + " recv calls";
}

}  // namespace

TEST_CASE(
    "recv returning 0 is the peer's FIN: ConnectionDriver closes the socket, a reader ignoring 0 keeps it and "
    "spins",
    "[pitfall]") {
    // recv(2): "When a stream socket peer has performed an orderly shutdown,
    // the return value will be 0 (the traditional end-of-file return)". The
    // end of the stream stays readable, so level-triggered epoll reports it
    // on every wait until the fd is closed.
    const FdLeakCheck leaks;
    Loopback net;
    const std::vector<std::uint8_t> frame = encoded_frame(1, pattern(5, 7));
    net.peer_sends(frame);
    REQUIRE(net.kernel.shutdown(net.peer.get(), SHUT_WR).ok());
    constexpr int max_polls = 50;

    SECTION("ConnectionDriver: peer_finished, flush, close") {
        RecordingApp app;
        ConnectionDriver driver(net.reactor, app, eagain::ConnectionRole::server, quiet_config(), TransportOptions{},
                                1);
        driver.start_accepted(net.ours.release(), SockAddr::ipv4_loopback(1));
        FinVerdict verdict;
        verdict.polls = poll_until(
            net.reactor, [&] { return driver.finished(); }, max_polls);
        verdict.fd_closed = kernel_closed(net.kernel, net.our_fd);
        verdict.recv_calls = net.faulty.calls(SysCall::recv);
        INFO(describe(verdict));
        CHECK(verdict.ok());
        CHECK(app.frames == 1);
        REQUIRE(app.closed.has_value());
        CHECK(app.closed->reason == CloseReason::peer_closed);
    }
    SECTION("naive: if (n > 0) handle(); else if (errno == EAGAIN) return;") {
        pitfalls::NaiveReader reader(net.reactor, net.ours.get(), epoll_in, pitfalls::naive_read_once);
        REQUIRE(reader.add_error() == 0);
        FinVerdict verdict;
        verdict.polls = poll_until(
            net.reactor, [&] { return kernel_closed(net.kernel, net.our_fd); }, max_polls);
        verdict.fd_closed = kernel_closed(net.kernel, net.our_fd);
        verdict.recv_calls = net.faulty.calls(SysCall::recv);
        INFO(describe(verdict));
        CHECK_FALSE(verdict.ok());
        CHECK_FALSE(verdict.fd_closed);
        CHECK(verdict.recv_calls >= max_polls);  // woken on every poll to read 0 again
        CHECK(reader.log().received == frame);
    }
}

// =============================================================================
// 8. RST mid-stream

namespace {

// After the peer's RST: is the reset reported as an errno, the socket
// closed, and the process spared SIGPIPE (whose default action kills it)?
struct ResetVerdict {
    int reported_error = 0;
    bool fd_closed = false;
    int sigpipes = 0;

    bool ok() const noexcept {
        return (reported_error == ECONNRESET || reported_error == EPIPE) && fd_closed && sigpipes == 0;
    }
};

std::string describe(const ResetVerdict& v) {
    return "reported " + eagain::errno_name(v.reported_error) + ", fd " + (v.fd_closed ? "closed" : "open") + ", " +
           std::to_string(v.sigpipes) + " SIGPIPE";
}

// Buffers small enough that a few hundred KiB stall the stream.
constexpr BufferSizes small_buffers{16 * 1024, 16 * 1024};

// The peer resets the connection: SO_LINGER {on, 0 s} makes close() send RST.
void peer_resets(Loopback& net) {
    REQUIRE(net.kernel.set_linger(net.peer.get(), true, 0).ok());
    (void)net.peer.close();
}

}  // namespace

TEST_CASE(
    "a peer's RST mid-stream: ConnectionDriver reports ECONNRESET and closes without SIGPIPE, a sender "
    "without MSG_NOSIGNAL raises SIGPIPE",
    "[pitfall]") {
    // socket(7): SO_LINGER {1, 0} makes close() abort the connection (RST).
    // The first call to meet the reset gets ECONNRESET, later sends EPIPE;
    // send(2): EPIPE also raises SIGPIPE "unless MSG_NOSIGNAL is set", and
    // SIGPIPE's default action terminates the process.
    const FdLeakCheck leaks;
    const SigpipeCounter sigpipes;
    Loopback net(small_buffers);
    const std::vector<std::uint8_t> body = pattern(16 * 1024, 8);

    SECTION("ConnectionDriver: the reset is a close reason") {
        RecordingApp app;
        ConnectionDriver driver(net.reactor, app, eagain::ConnectionRole::server, quiet_config(), TransportOptions{},
                                1);
        driver.start_accepted(net.ours.release(), SockAddr::ipv4_loopback(1));
        for (std::uint32_t seq = 0; seq < 32; ++seq)
            REQUIRE(driver.send_frame(eagain::DefaultHeader{7, seq, 0, 0, 0}, body) == eagain::SendError::none);
        poll_until_quiet(net.reactor);
        REQUIRE(driver.connection().wants_write());  // stalled mid-stream, output owed
        peer_resets(net);
        poll_until(
            net.reactor, [&] { return driver.finished(); }, 50);
        ResetVerdict verdict;
        verdict.reported_error = app.closed ? app.closed->errno_value : 0;
        verdict.fd_closed = kernel_closed(net.kernel, net.our_fd);
        verdict.sigpipes = sigpipes.count();
        INFO(describe(verdict));
        CHECK(verdict.ok());
        REQUIRE(app.closed.has_value());
        CHECK((app.closed->reason == CloseReason::reset || app.closed->reason == CloseReason::broken_pipe));
    }
    SECTION("naive: send(fd, p, n, 0) in a loop that retries every error") {
        const std::vector<std::uint8_t> stream = pattern(32 * body.size(), 8);
        pitfalls::NaiveBusySender sender(net.faulty, net.ours.get(), stream);
        sender.run(200);
        REQUIRE_FALSE(sender.done());  // stalled mid-stream
        peer_resets(net);
        REQUIRE((eagain::test::wait_once(net.kernel, net.our_fd, epoll_rdhup, wait_ms) & epoll_rdhup) != 0);
        sender.run(10);
        ResetVerdict verdict;
        verdict.reported_error = sender.last_error();
        verdict.fd_closed = kernel_closed(net.kernel, net.our_fd);
        verdict.sigpipes = sigpipes.count();
        INFO(describe(verdict));
        CHECK_FALSE(verdict.ok());
        CHECK(verdict.sigpipes > 0);  // each would have killed an unprepared process
    }
}

// =============================================================================
// 9. A peer that stops reading, then resumes

namespace {

// A writer facing a zero window: does it wait for EPOLLOUT instead of
// calling send over and over, and deliver everything once the peer reads?
struct StallVerdict {
    std::uint64_t sends_while_stalled = 0;
    Delivery delivery;

    // Fill the buffers, meet EAGAIN, perhaps a few more as ACKs free room;
    // then nothing until the peer reads.
    static constexpr std::uint64_t max_sends_while_stalled = 16;
    bool ok() const noexcept { return sends_while_stalled <= max_sends_while_stalled && delivery.complete(); }
};

std::string describe(const StallVerdict& v) {
    return std::to_string(v.sends_while_stalled) + " sends while the peer was not reading; " + describe(v.delivery);
}

// Polls (and so stalls) for this long with the peer not reading.
constexpr int stalled_polls = 20;

}  // namespace

TEST_CASE("a peer that stops reading: Transport waits for EPOLLOUT with everything buffered, a busy send loop spins",
          "[pitfall]") {
    // tcp(7): a receiver that does not read closes its window; the sender's
    // buffer fills and send gives EAGAIN until the receiver reads again.
    // epoll reports EPOLLOUT once there is room; a loop that does not wait
    // for it burns a CPU for as long as the peer is away.
    const FdLeakCheck leaks;
    Loopback net(small_buffers);
    const std::vector<std::uint8_t> payload = pattern(256 * 1024, 9);
    PeerReader peer(net, PeerReader::Start::paused);
    StallVerdict verdict;

    SECTION("Transport: EAGAIN, EPOLLOUT requested, nothing more until the peer reads") {
        TransportSender sender(net.reactor, net.ours.release());
        const std::uint64_t sends_before = net.our_sends();
        sender.write(payload);
        for (int polls = 0; polls < stalled_polls; ++polls)
            REQUIRE(net.reactor.poll(poll_timeout).ok());
        verdict.sends_while_stalled = net.our_sends() - sends_before;
        REQUIRE(sender.buffered_bytes() > 0);  // stalled, the rest kept

        peer.resume();
        poll_until(net.reactor, [&] { return peer.received().size() == payload.size(); });
        verdict.delivery = check_delivery(payload, peer.received());
        INFO(describe(verdict));
        CHECK(verdict.ok());
        CHECK(sender.error() == 0);
    }
    SECTION("naive: while (sent < n) { r = send(...); if (r < 0) continue; sent += r; }") {
        pitfalls::NaiveBusySender sender(net.faulty, net.ours.get(), payload);
        const std::uint64_t sends_before = net.our_sends();
        sender.run(5000);  // the cap stands for the time the peer is away
        verdict.sends_while_stalled = net.our_sends() - sends_before;
        REQUIRE_FALSE(sender.done());

        peer.resume();
        for (int round = 0; round < max_polls_to_finish && peer.received().size() < payload.size(); ++round) {
            sender.run(64);
            REQUIRE(net.reactor.poll(0ms).ok());
        }
        verdict.delivery = check_delivery(payload, peer.received());
        INFO(describe(verdict));
        CHECK_FALSE(verdict.ok());
        CHECK(verdict.sends_while_stalled > 100 * StallVerdict::max_sends_while_stalled);
        CHECK(verdict.delivery.complete());  // it gets there, at the price of the spin
    }
}

// =============================================================================
// 10. Edge-triggered reading with short reads

namespace {

// After an edge-triggered reader has had its wake-ups: did it take every
// byte, or are some left in the socket with no edge to come for them?
struct DrainVerdict {
    Delivery delivery;
    std::size_t unread_bytes = 0;  // FIONREAD on our socket

    bool ok() const noexcept { return delivery.complete() && unread_bytes == 0; }
};

std::string describe(const DrainVerdict& v) {
    return describe(v.delivery) + ", " + std::to_string(v.unread_bytes) + " bytes left unread in the socket";
}

}  // namespace

TEST_CASE(
    "edge-triggered reading drains to EAGAIN: Transport takes every byte through short reads, a reader "
    "doing one recv per edge leaves bytes stuck",
    "[pitfall]") {
    // epoll(7): with EPOLLET an event comes when the readiness changes, so
    // "wait for an event only after read(2) returned EAGAIN". Bytes a reader
    // leaves behind get no new edge until the peer sends again.
    const FdLeakCheck leaks;
    Loopback net;
    FaultRule short_read = rule_on(SysCall::recv, FaultKind::short_transfer);
    short_read.short_limit_bytes = 1000;
    short_read.when = CallSelector::every_kth_call;
    short_read.call_number = 2;
    net.inject(short_read);
    const std::vector<std::uint8_t> payload = pattern(32 * 1024, 10);
    net.peer_sends(payload);
    net.wait_until_queued_for_us(payload.size());  // one edge for all of it
    DrainVerdict verdict;

    SECTION("Transport, edge-triggered: recv until EAGAIN, short reads or not") {
        TransportOptions options;
        options.trigger = TriggerMode::edge;
        options.recv_chunk_bytes = pitfalls::naive_chunk_bytes;
        TransportReader reader(net.reactor, net.ours.release(), options);
        poll_until(net.reactor, [&] { return reader.received().size() == payload.size(); });
        verdict.delivery = check_delivery(payload, reader.received());
        verdict.unread_bytes = net.unread_by_us();
        INFO(describe(verdict));
        CHECK(verdict.ok());
        CHECK(net.faulty.rule_hits(0) > 0);
    }
    SECTION("naive: the level-triggered reader registered with EPOLLET") {
        pitfalls::NaiveReader reader(net.reactor, net.ours.get(), epoll_in | epoll_et, pitfalls::naive_read_once);
        REQUIRE(reader.add_error() == 0);
        poll_until_quiet(net.reactor);
        verdict.delivery = check_delivery(payload, reader.log().received);
        verdict.unread_bytes = net.unread_by_us();
        INFO(describe(verdict));
        CHECK_FALSE(verdict.ok());
        CHECK(verdict.unread_bytes > 0);
        CHECK(reader.log().wakeups == 1);  // one edge, and no other
    }
}

// =============================================================================
// Fairness: a bounded read per wake-up

namespace {

// With one peer's backlog far larger than the budget: is the work done for
// it per wake-up bounded, and is a quiet peer served in the very first poll?
struct FairnessVerdict {
    std::size_t budget_bytes = 0;
    std::size_t busy_max_bytes_per_wakeup = 0;
    bool quiet_served_in_first_poll = false;

    bool ok() const noexcept { return quiet_served_in_first_poll && busy_max_bytes_per_wakeup <= budget_bytes; }
};

std::string describe(const FairnessVerdict& v) {
    return "the busy peer got up to " + std::to_string(v.busy_max_bytes_per_wakeup) + " bytes per wake-up (budget " +
           std::to_string(v.budget_bytes) + "), the quiet one was " +
           (v.quiet_served_in_first_poll ? "served in the first poll" : "not served in the first poll");
}

}  // namespace

TEST_CASE(
    "a peer with a large backlog does not hold the loop: Transport reads a budget per wake-up, an unbounded "
    "edge-triggered drain reads the whole backlog first",
    "[pitfall]") {
    // Draining to EAGAIN is what edge-triggering demands, but a peer that
    // keeps the socket full keeps the drain going while every other
    // connection waits. libuv caps the work per wake-up ("prevent loop
    // starvation"); an edge-triggered reader that stops early must ask to be
    // woken again (Reactor::wake_again), since no new edge will come.
    const FdLeakCheck leaks;
    Loopback net;  // ours is the busy connection
    const eagain::test::SocketPair quiet_pair = eagain::test::connected_pair(net.kernel);
    Fd quiet_ours(net.faulty, quiet_pair.client);
    const Fd quiet_peer(net.kernel, quiet_pair.server);

    const std::vector<std::uint8_t> stream = pattern(8 * 1024 * 1024, 11);
    const std::span<const std::uint8_t> backlog = std::span(stream).first(net.peer_fills(stream));
    const std::vector<std::uint8_t> hello = pattern(5, 12);
    REQUIRE(net.kernel.send(quiet_peer.get(), hello, MSG_NOSIGNAL).value == hello.size());
    net.wait_until_queued(quiet_ours.get(), hello.size());

    FairnessVerdict verdict;
    verdict.budget_bytes = 8 * 1024;
    REQUIRE(backlog.size() > 8 * verdict.budget_bytes);
    // Both are registered with their bytes already there, so epoll reports
    // them in registration order: the busy one first.
    SECTION("Transport, edge-triggered, read_budget_bytes per wake-up") {
        TransportOptions options;
        options.trigger = TriggerMode::edge;
        options.read_budget_bytes = verdict.budget_bytes;
        options.recv_chunk_bytes = pitfalls::naive_chunk_bytes;
        TransportReader busy(net.reactor, net.ours.release(), options);
        TransportReader quiet(net.reactor, quiet_ours.release(), options);
        REQUIRE(net.reactor.poll(poll_timeout).ok());
        verdict.quiet_served_in_first_poll = quiet.received().size() == hello.size();
        poll_until(net.reactor, [&] { return busy.received().size() == backlog.size(); });
        verdict.busy_max_bytes_per_wakeup = busy.max_bytes_per_wakeup();
        INFO(describe(verdict));
        CHECK(verdict.ok());
        CHECK(check_delivery(backlog, busy.received()).complete());  // and the busy one still gets everything
    }
    SECTION("naive: recv until EAGAIN, no budget") {
        pitfalls::NaiveReader busy(net.reactor, net.ours.get(), epoll_in | epoll_et, pitfalls::naive_read_until_eagain);
        pitfalls::NaiveReader quiet(net.reactor, quiet_ours.get(), epoll_in | epoll_et,
                                    pitfalls::naive_read_until_eagain);
        REQUIRE(busy.add_error() == 0);
        REQUIRE(quiet.add_error() == 0);
        REQUIRE(net.reactor.poll(poll_timeout).ok());
        verdict.quiet_served_in_first_poll = quiet.log().received.size() == hello.size();
        verdict.busy_max_bytes_per_wakeup = busy.log().max_bytes_per_wakeup;
        INFO(describe(verdict));
        CHECK_FALSE(verdict.ok());
        CHECK(verdict.busy_max_bytes_per_wakeup == backlog.size());  // all of it before the quiet peer's turn
    }
}
