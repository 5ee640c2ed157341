// Sys: the syscall boundary. Every socket call the driver makes goes through
// one virtual interface, so the same driver code runs on the real kernel
// (LinuxSys), on a simulated kernel (sim/SimKernel), and on either with
// faults injected by rule (FaultySys, a decorator).
//
// The calls are the Linux calls, one for one, with Linux's constants
// (AF_INET, SOCK_NONBLOCK, MSG_NOSIGNAL, EPOLLIN, EAGAIN, ...) and Linux's
// semantics as the reference: a result any implementation returns must be
// one Linux could return in that state. Two things differ from libc:
//   * errno travels as a value in SysResult, never through the global errno;
//   * pointers + lengths are spans, and socket addresses are SockAddr values.
//
// Nothing here retries, blocks on its own account, prints or exits. EINTR
// and EAGAIN come back to the caller like any other errno; deciding what
// they mean is the driver's job (core/transport.h).
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace eagain {

// Monotonic time since an arbitrary epoch (the Sys's own clock).
using Nanos = std::chrono::nanoseconds;

// The result of one call: a value, or the errno the call failed with.
// error == 0 means success; value is meaningful only then.
template <class T>
struct [[nodiscard]] SysResult {
    T value{};
    int error = 0;

    static SysResult success(T v) noexcept { return SysResult{v, 0}; }
    static SysResult failure(int errno_value) noexcept { return SysResult{T{}, errno_value}; }
    bool ok() const noexcept { return error == 0; }
};

struct Unit {
    friend bool operator==(Unit, Unit) = default;
};
using VoidResult = SysResult<Unit>;
using FdResult = SysResult<int>;
using SizeResult = SysResult<std::size_t>;

// EAGAIN and EWOULDBLOCK are the same number on Linux, but POSIX allows them
// to differ and recv(2) says to check both.
bool would_block(int errno_value) noexcept;
// "EAGAIN", "ECONNRESET", ...: the symbolic name, stable across libcs (unlike
// strerror), for logs and traces. Unknown numbers print as "errno 123".
std::string errno_name(int errno_value);

// An IPv4 or IPv6 socket address, held by value.
class SockAddr {
public:
    SockAddr() noexcept;
    static SockAddr ipv4(std::uint32_t host_order_address, std::uint16_t port) noexcept;
    static SockAddr ipv4_loopback(std::uint16_t port) noexcept;
    static SockAddr ipv6_loopback(std::uint16_t port) noexcept;
    // "127.0.0.1:8080", "[::1]:8080"; nullopt if it is neither.
    static std::optional<SockAddr> parse(std::string_view text);
    // An IPv4 or IPv6 literal ("127.0.0.1", "::1") and a port; nullopt if
    // host is neither.
    static std::optional<SockAddr> from_host(std::string_view host, std::uint16_t port);
    // From a kernel-filled sockaddr; nullopt unless AF_INET or AF_INET6.
    static std::optional<SockAddr> from_sockaddr(const sockaddr* address, socklen_t length) noexcept;

    int family() const noexcept;  // AF_INET or AF_INET6 (AF_UNSPEC when default-constructed)
    std::uint16_t port() const noexcept;
    SockAddr with_port(std::uint16_t port) const noexcept;
    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return length_; }
    // "127.0.0.1:8080" or "[::1]:8080".
    std::string to_string() const;

    friend bool operator==(const SockAddr& a, const SockAddr& b) noexcept;

private:
    sockaddr_storage storage_;
    socklen_t length_ = 0;
};

// One epoll event. Not the kernel's packed struct epoll_event: LinuxSys
// converts, so callers never deal with the packing.
struct EpollEvent {
    std::uint32_t events = 0;  // EPOLLIN | EPOLLOUT | EPOLLET | ...
    std::uint64_t data = 0;    // returned unchanged by epoll_wait
    friend bool operator==(const EpollEvent&, const EpollEvent&) = default;
};

// The calls, named so traces and fault rules can refer to them.
enum class SysCall : std::uint8_t {
    socket,
    bind,
    listen,
    accept4,
    connect,
    getsockopt,
    setsockopt,
    getsockname,
    getpeername,
    send,
    recv,
    readv,
    writev,
    sendmsg,
    shutdown,
    close,
    fcntl,
    ioctl_fionread,
    epoll_create1,
    epoll_ctl,
    epoll_wait,
    poll,
};
inline constexpr std::size_t sys_call_count = 22;
std::string_view to_string(SysCall call) noexcept;
std::optional<SysCall> sys_call_from_string(std::string_view name) noexcept;

class Sys {
public:
    virtual ~Sys() = default;

    virtual FdResult socket(int domain, int type, int protocol) = 0;
    virtual VoidResult bind(int fd, const SockAddr& address) = 0;
    virtual VoidResult listen(int fd, int backlog) = 0;
    // peer may be null. flags: SOCK_NONBLOCK | SOCK_CLOEXEC.
    virtual FdResult accept4(int fd, SockAddr* peer, int flags) = 0;
    virtual VoidResult connect(int fd, const SockAddr& address) = 0;
    // Raw option access, as the syscall: value is in/out, its size the length.
    virtual VoidResult getsockopt(int fd, int level, int name, std::span<std::byte> value, socklen_t* length) = 0;
    virtual VoidResult setsockopt(int fd, int level, int name, std::span<const std::byte> value) = 0;
    virtual SysResult<SockAddr> getsockname(int fd) = 0;
    virtual SysResult<SockAddr> getpeername(int fd) = 0;

    virtual SizeResult send(int fd, std::span<const std::uint8_t> data, int flags) = 0;
    virtual SizeResult recv(int fd, std::span<std::uint8_t> buffer, int flags) = 0;
    virtual SizeResult readv(int fd, std::span<const iovec> buffers) = 0;
    virtual SizeResult writev(int fd, std::span<const iovec> buffers) = 0;
    // sendmsg(2) with only the gather list and flags: writev that takes
    // MSG_NOSIGNAL, so a gathered send to a reset peer cannot raise SIGPIPE.
    virtual SizeResult sendmsg(int fd, std::span<const iovec> buffers, int flags) = 0;
    virtual VoidResult shutdown(int fd, int how) = 0;
    virtual VoidResult close(int fd) = 0;
    // F_GETFL (returns the flags) and F_SETFL (returns 0) only.
    virtual FdResult fcntl(int fd, int command, int argument) = 0;
    // ioctl(fd, FIONREAD): bytes readable now.
    virtual FdResult ioctl_fionread(int fd) = 0;

    virtual FdResult epoll_create1(int flags) = 0;
    // event is ignored for EPOLL_CTL_DEL.
    virtual VoidResult epoll_ctl(int epoll_fd, int op, int fd, EpollEvent event) = 0;
    // Returns how many entries of events were filled. timeout_ms: -1 blocks,
    // 0 polls.
    virtual FdResult epoll_wait(int epoll_fd, std::span<EpollEvent> events, int timeout_ms) = 0;
    // poll(2), level-triggered: fills each entry's revents (POLLNVAL for an
    // fd not open; an entry with a negative fd is skipped) and returns how
    // many entries have revents set. timeout_ms: -1 blocks, 0 polls.
    virtual FdResult poll(std::span<pollfd> fds, int timeout_ms) = 0;

    // Monotonic clock; never goes backwards.
    virtual Nanos now() = 0;

    // --- typed helpers over getsockopt/setsockopt (not virtual) ----------
    SysResult<int> get_int_option(int fd, int level, int name);
    VoidResult set_int_option(int fd, int level, int name, int value);
    // SO_ERROR: the pending error of a socket, cleared by reading it.
    SysResult<int> socket_error(int fd) { return get_int_option(fd, SOL_SOCKET, SO_ERROR); }
    // SO_LINGER {on, seconds}; {true, 0} makes close() send an RST.
    VoidResult set_linger(int fd, bool on, int seconds);
    VoidResult set_nonblocking(int fd, bool on);
};

// Total length of an iovec array; asserts it does not overflow.
std::size_t iov_total_bytes(std::span<const iovec> buffers) noexcept;

}  // namespace eagain
