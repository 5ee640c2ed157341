#include "tests/conformance/support.h"

#include <catch2/catch.hpp>

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <utility>

namespace eagain::conformance {
namespace {

// epoll_wait may be cut short by a signal (EINTR); nothing in the test
// process sends any, so a few retries are plenty.
constexpr int max_interrupted_waits = 8;
// wait_for_unread: arrivals to wait through before giving up.
constexpr int max_arrivals = 1024;

std::string describe(const char* what, int error) {
    return std::string(what) + " failed: " + errno_name(error);
}

}  // namespace

// --- Fd ----------------------------------------------------------------------

Fd::Fd(Fd&& other) noexcept : sys_(other.sys_), fd_(std::exchange(other.fd_, -1)) {}

Fd& Fd::operator=(Fd&& other) noexcept {
    if (this != &other) {
        (void)close();
        sys_ = other.sys_;
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

Fd::~Fd() {
    (void)close();
}

VoidResult Fd::close() {
    if (fd_ < 0)
        return VoidResult::failure(EBADF);
    return sys_->close(std::exchange(fd_, -1));
}

void Fd::reset(int fd) {
    REQUIRE(sys_ != nullptr);
    (void)close();
    fd_ = fd;
}

// --- events ------------------------------------------------------------------

std::string epoll_events_name(std::uint32_t events) {
    struct Named {
        std::uint32_t bit;
        const char* name;
    };
    static constexpr std::array<Named, 7> names{{
        {EPOLLIN, "EPOLLIN"},
        {EPOLLPRI, "EPOLLPRI"},
        {EPOLLOUT, "EPOLLOUT"},
        {EPOLLERR, "EPOLLERR"},
        {EPOLLHUP, "EPOLLHUP"},
        {EPOLLRDHUP, "EPOLLRDHUP"},
        {EPOLLET, "EPOLLET"},
    }};
    // Only the flags the suite registers for: RDNORM/WRNORM and friends are
    // never asked for, so epoll never reports them here.
    std::string text;
    for (const Named& n : names) {
        if ((events & n.bit) != 0) {
            text += text.empty() ? "" : "|";
            text += n.name;
            events &= ~n.bit;
        }
    }
    if (events != 0) {
        text += (text.empty() ? "0x" : "|0x") + std::to_string(events);
    }
    return text.empty() ? "0" : text;
}

// --- sockets -----------------------------------------------------------------

Fd stream_socket(Sys& sys, int family) {
    const FdResult fd = sys.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    INFO(describe("socket", fd.error));
    REQUIRE(fd.ok());
    return Fd(sys, fd.value);
}

Listener listen_on(Sys& sys, const SockAddr& address, int receive_buffer_bytes, int backlog) {
    Fd fd = stream_socket(sys, address.family());
    if (receive_buffer_bytes > 0) {
        const VoidResult set = sys.set_int_option(fd.get(), SOL_SOCKET, SO_RCVBUF, receive_buffer_bytes);
        INFO(describe("setsockopt(SO_RCVBUF)", set.error));
        REQUIRE(set.ok());
    }
    const VoidResult bound = sys.bind(fd.get(), address);
    INFO(describe("bind", bound.error) << " to " << address.to_string());
    REQUIRE(bound.ok());
    const VoidResult listening = sys.listen(fd.get(), backlog);
    INFO(describe("listen", listening.error));
    REQUIRE(listening.ok());
    const SysResult<SockAddr> name = sys.getsockname(fd.get());
    INFO(describe("getsockname", name.error));
    REQUIRE(name.ok());
    REQUIRE(name.value.port() != 0);
    return Listener{std::move(fd), name.value};
}

ConnectedPair connect_pair(Sys& sys, const SockAddr& loopback, PairOptions options) {
    Listener listener = listen_on(sys, loopback, options.server_receive_buffer_bytes);
    Fd client = stream_socket(sys, loopback.family());
    if (options.client_send_buffer_bytes > 0) {
        const VoidResult set =
            sys.set_int_option(client.get(), SOL_SOCKET, SO_SNDBUF, options.client_send_buffer_bytes);
        INFO(describe("setsockopt(SO_SNDBUF)", set.error));
        REQUIRE(set.ok());
    }
    const VoidResult connecting = sys.connect(client.get(), listener.address);
    INFO(describe("connect", connecting.error));
    REQUIRE((connecting.ok() || connecting.error == EINPROGRESS));
    REQUIRE(wait_for(sys, client.get(), EPOLLOUT, happens_within_ms) == EPOLLOUT);
    const SysResult<int> pending = sys.socket_error(client.get());
    REQUIRE(pending.ok());
    REQUIRE(pending.value == 0);

    REQUIRE(wait_for(sys, listener.fd.get(), EPOLLIN, happens_within_ms) == EPOLLIN);
    const FdResult accepted = sys.accept4(listener.fd.get(), nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    INFO(describe("accept4", accepted.error));
    REQUIRE(accepted.ok());
    return ConnectedPair{std::move(client), Fd(sys, accepted.value)};
}

// --- epoll -------------------------------------------------------------------

Fd make_epoll(Sys& sys) {
    const FdResult fd = sys.epoll_create1(EPOLL_CLOEXEC);
    INFO(describe("epoll_create1", fd.error));
    REQUIRE(fd.ok());
    return Fd(sys, fd.value);
}

void add_interest(Sys& sys, int epoll_fd, int fd, std::uint32_t events) {
    const VoidResult added =
        sys.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, EpollEvent{events, static_cast<std::uint64_t>(fd)});
    INFO(describe("epoll_ctl(ADD)", added.error));
    REQUIRE(added.ok());
}

std::uint32_t wait_once(Sys& sys, int epoll_fd, int fd, int timeout_ms) {
    std::array<EpollEvent, 8> events{};
    for (int attempt = 0; attempt < max_interrupted_waits; ++attempt) {
        const FdResult n = sys.epoll_wait(epoll_fd, events, timeout_ms);
        if (!n.ok() && n.error == EINTR)
            continue;
        INFO(describe("epoll_wait", n.error));
        REQUIRE(n.ok());
        REQUIRE(n.value >= 0);
        REQUIRE(static_cast<std::size_t>(n.value) <= events.size());
        std::uint32_t reported = 0;
        for (std::size_t i = 0; i < static_cast<std::size_t>(n.value); ++i) {
            // Each registered fd appears at most once per epoll_wait.
            REQUIRE(events[i].data == static_cast<std::uint64_t>(fd));
            REQUIRE(reported == 0);
            reported = events[i].events;
            REQUIRE(reported != 0);
        }
        return reported;
    }
    FAIL("epoll_wait interrupted " << max_interrupted_waits << " times in a row");
    return 0;
}

std::uint32_t wait_for(Sys& sys, int fd, std::uint32_t interest, int timeout_ms) {
    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), fd, interest);
    return wait_once(sys, epoll.get(), fd, timeout_ms);
}

std::size_t wait_for_unread(Sys& sys, int fd, std::size_t at_least, int timeout_ms) {
    const Fd epoll = make_epoll(sys);
    add_interest(sys, epoll.get(), fd, EPOLLIN | EPOLLRDHUP | EPOLLET);
    for (int arrival = 0; arrival < max_arrivals; ++arrival) {
        const FdResult unread = sys.ioctl_fionread(fd);
        INFO(describe("ioctl(FIONREAD)", unread.error));
        REQUIRE(unread.ok());
        REQUIRE(unread.value >= 0);
        if (static_cast<std::size_t>(unread.value) >= at_least)
            return static_cast<std::size_t>(unread.value);
        const std::uint32_t events = wait_once(sys, epoll.get(), fd, timeout_ms);
        if (events == 0 || (events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP)) != 0) {
            const FdResult last = sys.ioctl_fionread(fd);
            REQUIRE(last.ok());
            return static_cast<std::size_t>(last.value);
        }
    }
    FAIL("more than " << max_arrivals << " arrivals without reaching " << at_least << " unread bytes");
    return 0;
}

// --- data --------------------------------------------------------------------

void send_whole(Sys& sys, int fd, std::span<const std::uint8_t> data) {
    const SizeResult sent = sys.send(fd, data, MSG_NOSIGNAL);
    INFO(describe("send", sent.error));
    REQUIRE(sent.ok());
    REQUIRE(sent.value == data.size());
}

void send_whole(Sys& sys, int fd, std::string_view text) {
    send_whole(sys, fd, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

std::vector<std::uint8_t> recv_available(Sys& sys, int fd, std::size_t max_bytes) {
    std::vector<std::uint8_t> out;
    std::array<std::uint8_t, 4096> chunk{};
    while (out.size() < max_bytes) {
        const std::size_t want = std::min(chunk.size(), max_bytes - out.size());
        const SizeResult got = sys.recv(fd, std::span(chunk).first(want), 0);
        if (!got.ok()) {
            INFO(describe("recv", got.error));
            REQUIRE(would_block(got.error));
            break;
        }
        if (got.value == 0)
            break;
        REQUIRE(got.value <= want);
        out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(got.value));
    }
    return out;
}

std::string as_text(std::span<const std::uint8_t> bytes) {
    return std::string(bytes.begin(), bytes.end());
}

}  // namespace eagain::conformance
