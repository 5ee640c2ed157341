#include "core/linux_sys.h"

#include "core/assert.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <ctime>

namespace eagain {
namespace {

VoidResult void_result(int rc) noexcept {
    if (rc == -1)
        return VoidResult::failure(errno);
    return VoidResult::success({});
}

FdResult int_result(int rc) noexcept {
    if (rc == -1)
        return FdResult::failure(errno);
    return FdResult::success(rc);
}

SizeResult size_result(ssize_t rc) noexcept {
    if (rc == -1)
        return SizeResult::failure(errno);
    return SizeResult::success(static_cast<std::size_t>(rc));
}

// getsockname(2) and getpeername(2) have the same shape.
SysResult<SockAddr> address_result(int fd, int (*call)(int, sockaddr*, socklen_t*)) noexcept {
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    if (call(fd, reinterpret_cast<sockaddr*>(&storage), &length) == -1)
        return SysResult<SockAddr>::failure(errno);
    return SysResult<SockAddr>::success(
        SockAddr::from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), length).value_or(SockAddr{}));
}

int iov_count(std::span<const iovec> buffers) noexcept {
    // readv/writev reject more than IOV_MAX entries with EINVAL; callers
    // keep below it, so a longer array is a programming error.
    EAGAIN_ASSERT(buffers.size() <= IOV_MAX);
    return static_cast<int>(buffers.size());
}

}  // namespace

FdResult LinuxSys::socket(int domain, int type, int protocol) {
    return int_result(::socket(domain, type, protocol));
}

VoidResult LinuxSys::bind(int fd, const SockAddr& address) {
    return void_result(::bind(fd, address.data(), address.size()));
}

VoidResult LinuxSys::listen(int fd, int backlog) {
    return void_result(::listen(fd, backlog));
}

FdResult LinuxSys::accept4(int fd, SockAddr* peer, int flags) {
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    const int rc = ::accept4(fd, reinterpret_cast<sockaddr*>(&storage), &length, flags);
    if (rc == -1)
        return FdResult::failure(errno);
    if (peer != nullptr) {
        *peer = SockAddr::from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), length).value_or(SockAddr{});
    }
    return FdResult::success(rc);
}

VoidResult LinuxSys::connect(int fd, const SockAddr& address) {
    return void_result(::connect(fd, address.data(), address.size()));
}

VoidResult LinuxSys::getsockopt(int fd, int level, int name, std::span<std::byte> value, socklen_t* length) {
    EAGAIN_ASSERT(length != nullptr);
    EAGAIN_ASSERT(*length <= value.size());
    return void_result(::getsockopt(fd, level, name, value.data(), length));
}

VoidResult LinuxSys::setsockopt(int fd, int level, int name, std::span<const std::byte> value) {
    return void_result(::setsockopt(fd, level, name, value.data(), static_cast<socklen_t>(value.size())));
}

SysResult<SockAddr> LinuxSys::getsockname(int fd) {
    return address_result(fd, ::getsockname);
}

SysResult<SockAddr> LinuxSys::getpeername(int fd) {
    return address_result(fd, ::getpeername);
}

SizeResult LinuxSys::send(int fd, std::span<const std::uint8_t> data, int flags) {
    return size_result(::send(fd, data.data(), data.size(), flags));
}

SizeResult LinuxSys::recv(int fd, std::span<std::uint8_t> buffer, int flags) {
    return size_result(::recv(fd, buffer.data(), buffer.size(), flags));
}

SizeResult LinuxSys::readv(int fd, std::span<const iovec> buffers) {
    return size_result(::readv(fd, buffers.data(), iov_count(buffers)));
}

SizeResult LinuxSys::writev(int fd, std::span<const iovec> buffers) {
    return size_result(::writev(fd, buffers.data(), iov_count(buffers)));
}

SizeResult LinuxSys::sendmsg(int fd, std::span<const iovec> buffers, int flags) {
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(buffers.data());
    message.msg_iovlen = static_cast<std::size_t>(iov_count(buffers));
    return size_result(::sendmsg(fd, &message, flags));
}

VoidResult LinuxSys::shutdown(int fd, int how) {
    return void_result(::shutdown(fd, how));
}

// close(2): on Linux the fd is released even when close reports EINTR, so
// it must never be retried (a retry could close an fd another thread got).
VoidResult LinuxSys::close(int fd) {
    return void_result(::close(fd));
}

FdResult LinuxSys::fcntl(int fd, int command, int argument) {
    EAGAIN_ASSERT(command == F_GETFL || command == F_SETFL);
    if (command == F_GETFL)
        return int_result(::fcntl(fd, F_GETFL));
    return int_result(::fcntl(fd, F_SETFL, argument));
}

FdResult LinuxSys::ioctl_fionread(int fd) {
    int count = 0;
    if (::ioctl(fd, FIONREAD, &count) == -1)
        return FdResult::failure(errno);
    return FdResult::success(count);
}

FdResult LinuxSys::epoll_create1(int flags) {
    return int_result(::epoll_create1(flags));
}

VoidResult LinuxSys::epoll_ctl(int epoll_fd, int op, int fd, EpollEvent event) {
    epoll_event e{};
    e.events = event.events;
    e.data.u64 = event.data;
    return void_result(::epoll_ctl(epoll_fd, op, fd, op == EPOLL_CTL_DEL ? nullptr : &e));
}

FdResult LinuxSys::epoll_wait(int epoll_fd, std::span<EpollEvent> events, int timeout_ms) {
    // Converted through a fixed array in batches of at most its size, so no
    // allocation on the hot path; callers rarely ask for more at once.
    std::array<epoll_event, 256> raw;
    const int max = static_cast<int>(std::min(events.size(), raw.size()));
    EAGAIN_ASSERT(max > 0);
    const int n = ::epoll_wait(epoll_fd, raw.data(), max, timeout_ms);
    if (n == -1)
        return FdResult::failure(errno);
    for (int i = 0; i < n; ++i) {
        events[static_cast<std::size_t>(i)] =
            EpollEvent{raw[static_cast<std::size_t>(i)].events, raw[static_cast<std::size_t>(i)].data.u64};
    }
    return FdResult::success(n);
}

FdResult LinuxSys::poll(std::span<pollfd> fds, int timeout_ms) {
    const int n = ::poll(fds.data(), static_cast<nfds_t>(fds.size()), timeout_ms);
    return n == -1 ? FdResult::failure(errno) : FdResult::success(n);
}

Nanos LinuxSys::now() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace eagain
