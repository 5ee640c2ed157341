#include "core/sys.h"

#include "core/assert.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>

namespace eagain {

bool would_block(int errno_value) noexcept {
    // The comparison is redundant on Linux (EAGAIN == EWOULDBLOCK); written
    // out so the rule stays visible.
    return errno_value == EAGAIN || errno_value == EWOULDBLOCK;  // NOLINT(misc-redundant-expression)
}

std::string errno_name(int errno_value) {
    switch (errno_value) {
        case 0: return "0";
        case EAGAIN: return "EAGAIN";
        case EINTR: return "EINTR";
        case EINPROGRESS: return "EINPROGRESS";
        case EALREADY: return "EALREADY";
        case EISCONN: return "EISCONN";
        case ENOTCONN: return "ENOTCONN";
        case ECONNRESET: return "ECONNRESET";
        case ECONNREFUSED: return "ECONNREFUSED";
        case ECONNABORTED: return "ECONNABORTED";
        case ETIMEDOUT: return "ETIMEDOUT";
        case EPIPE: return "EPIPE";
        case EMFILE: return "EMFILE";
        case ENFILE: return "ENFILE";
        case EBADF: return "EBADF";
        case EINVAL: return "EINVAL";
        case EFAULT: return "EFAULT";
        case ENOTSOCK: return "ENOTSOCK";
        case EADDRINUSE: return "EADDRINUSE";
        case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
        case EAFNOSUPPORT: return "EAFNOSUPPORT";
        case ENETUNREACH: return "ENETUNREACH";
        case EHOSTUNREACH: return "EHOSTUNREACH";
        case ENOBUFS: return "ENOBUFS";
        case ENOMEM: return "ENOMEM";
        case EEXIST: return "EEXIST";
        case ENOENT: return "ENOENT";
        case EOPNOTSUPP: return "EOPNOTSUPP";
        case ENOPROTOOPT: return "ENOPROTOOPT";
        case EPERM: return "EPERM";
        case EACCES: return "EACCES";
        default: return "errno " + std::to_string(errno_value);
    }
}

namespace {
constexpr std::array<std::string_view, sys_call_count> sys_call_names = {
    "socket",      "bind",        "listen", "accept4",        "connect",       "getsockopt", "setsockopt",
    "getsockname", "getpeername", "send",   "recv",           "readv",         "writev",     "sendmsg",
    "shutdown",    "close",       "fcntl",  "ioctl_fionread", "epoll_create1", "epoll_ctl",  "epoll_wait",
    "poll",
};
static_assert(static_cast<std::size_t>(SysCall::poll) + 1 == sys_call_count);
}  // namespace

std::string_view to_string(SysCall call) noexcept {
    return sys_call_names[static_cast<std::size_t>(call)];
}

std::optional<SysCall> sys_call_from_string(std::string_view name) noexcept {
    for (std::size_t i = 0; i < sys_call_names.size(); ++i) {
        if (sys_call_names[i] == name)
            return static_cast<SysCall>(i);
    }
    return std::nullopt;
}

// --- SockAddr --------------------------------------------------------------

SockAddr::SockAddr() noexcept : storage_{} {
    storage_.ss_family = AF_UNSPEC;
}

SockAddr SockAddr::ipv4(std::uint32_t host_order_address, std::uint16_t port) noexcept {
    SockAddr a;
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    in.sin_addr.s_addr = htonl(host_order_address);
    std::memcpy(&a.storage_, &in, sizeof in);
    a.length_ = sizeof in;
    return a;
}

SockAddr SockAddr::ipv4_loopback(std::uint16_t port) noexcept {
    return ipv4(INADDR_LOOPBACK, port);
}

SockAddr SockAddr::ipv6_loopback(std::uint16_t port) noexcept {
    SockAddr a;
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    in6.sin6_addr = in6addr_loopback;
    std::memcpy(&a.storage_, &in6, sizeof in6);
    a.length_ = sizeof in6;
    return a;
}

std::optional<SockAddr> SockAddr::parse(std::string_view text) {
    std::string host;
    std::string_view port_text;
    int family = AF_INET;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
        family = AF_INET6;
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos)
            return std::nullopt;
        host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
    }
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535)
        return std::nullopt;
    // Brackets are for IPv6 only, and an IPv6 literal needs them.
    const std::optional<SockAddr> address = from_host(host, static_cast<std::uint16_t>(port));
    if (!address || address->family() != family)
        return std::nullopt;
    return address;
}

std::optional<SockAddr> SockAddr::from_host(std::string_view host, std::uint16_t port) {
    const std::string text(host);
    SockAddr a;
    sockaddr_in in{};
    if (inet_pton(AF_INET, text.c_str(), &in.sin_addr) == 1) {
        in.sin_family = AF_INET;
        in.sin_port = htons(port);
        std::memcpy(&a.storage_, &in, sizeof in);
        a.length_ = sizeof in;
        return a;
    }
    sockaddr_in6 in6{};
    if (inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        std::memcpy(&a.storage_, &in6, sizeof in6);
        a.length_ = sizeof in6;
        return a;
    }
    return std::nullopt;
}

std::optional<SockAddr> SockAddr::from_sockaddr(const sockaddr* address, socklen_t length) noexcept {
    if (address == nullptr)
        return std::nullopt;
    SockAddr a;
    if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
        std::memcpy(&a.storage_, address, sizeof(sockaddr_in));
        a.length_ = sizeof(sockaddr_in);
        return a;
    }
    if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
        std::memcpy(&a.storage_, address, sizeof(sockaddr_in6));
        a.length_ = sizeof(sockaddr_in6);
        return a;
    }
    return std::nullopt;
}

int SockAddr::family() const noexcept {
    return storage_.ss_family;
}

std::uint16_t SockAddr::port() const noexcept {
    if (family() == AF_INET) {
        sockaddr_in in;
        std::memcpy(&in, &storage_, sizeof in);
        return ntohs(in.sin_port);
    }
    if (family() == AF_INET6) {
        sockaddr_in6 in6;
        std::memcpy(&in6, &storage_, sizeof in6);
        return ntohs(in6.sin6_port);
    }
    return 0;
}

SockAddr SockAddr::with_port(std::uint16_t port) const noexcept {
    SockAddr a = *this;
    const std::uint16_t net = htons(port);
    // sin_port and sin6_port are both at offset 2.
    static_assert(offsetof(sockaddr_in, sin_port) == offsetof(sockaddr_in6, sin6_port));
    if (family() == AF_INET || family() == AF_INET6) {
        std::memcpy(reinterpret_cast<char*>(&a.storage_) + offsetof(sockaddr_in, sin_port), &net, sizeof net);
    }
    return a;
}

std::string SockAddr::to_string() const {
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (family() == AF_INET) {
        sockaddr_in in;
        std::memcpy(&in, &storage_, sizeof in);
        inet_ntop(AF_INET, &in.sin_addr, text.data(), static_cast<socklen_t>(text.size()));
        return std::string(text.data()) + ":" + std::to_string(port());
    }
    if (family() == AF_INET6) {
        sockaddr_in6 in6;
        std::memcpy(&in6, &storage_, sizeof in6);
        inet_ntop(AF_INET6, &in6.sin6_addr, text.data(), static_cast<socklen_t>(text.size()));
        return "[" + std::string(text.data()) + "]:" + std::to_string(port());
    }
    return "(unspecified)";
}

bool operator==(const SockAddr& a, const SockAddr& b) noexcept {
    return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
}

// --- Sys helpers -----------------------------------------------------------

SysResult<int> Sys::get_int_option(int fd, int level, int name) {
    int value = 0;
    socklen_t length = sizeof value;
    const VoidResult r = getsockopt(fd, level, name, std::as_writable_bytes(std::span(&value, 1)), &length);
    if (!r.ok())
        return SysResult<int>::failure(r.error);
    return SysResult<int>::success(value);
}

VoidResult Sys::set_int_option(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, std::as_bytes(std::span(&value, 1)));
}

VoidResult Sys::set_linger(int fd, bool on, int seconds) {
    const linger l{on ? 1 : 0, seconds};
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, std::as_bytes(std::span(&l, 1)));
}

VoidResult Sys::set_nonblocking(int fd, bool on) {
    const FdResult flags = fcntl(fd, F_GETFL, 0);
    if (!flags.ok())
        return VoidResult::failure(flags.error);
    const int wanted = on ? (flags.value | O_NONBLOCK) : (flags.value & ~O_NONBLOCK);
    if (wanted == flags.value)
        return VoidResult::success({});
    const FdResult r = fcntl(fd, F_SETFL, wanted);
    if (!r.ok())
        return VoidResult::failure(r.error);
    return VoidResult::success({});
}

std::size_t iov_total_bytes(std::span<const iovec> buffers) noexcept {
    std::size_t total = 0;
    for (const iovec& v : buffers) {
        EAGAIN_ASSERT(v.iov_len <= std::numeric_limits<std::size_t>::max() - total);
        total += v.iov_len;
    }
    return total;
}

}  // namespace eagain
