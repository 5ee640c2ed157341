// RealSys and the real libc table: see real_sys.h.
#include "verify/real_sys.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace eagain::preload {
namespace {

template <class Pointer>
void resolve(Pointer& pointer, const char* name) noexcept {
    pointer = reinterpret_cast<Pointer>(::dlsym(RTLD_NEXT, name));
}

RealLibc resolve_all() noexcept {
    RealLibc real{};
    resolve(real.socket, "socket");
    resolve(real.accept, "accept");
    resolve(real.accept4, "accept4");
    resolve(real.connect, "connect");
    resolve(real.close, "close");
    resolve(real.shutdown, "shutdown");
    resolve(real.read, "read");
    resolve(real.write, "write");
    resolve(real.readv, "readv");
    resolve(real.writev, "writev");
    resolve(real.send, "send");
    resolve(real.sendto, "sendto");
    resolve(real.sendmsg, "sendmsg");
    resolve(real.recv, "recv");
    resolve(real.recvfrom, "recvfrom");
    resolve(real.recvmsg, "recvmsg");
    resolve(real.fcntl, "fcntl");
    resolve(real.fcntl64, "fcntl64");
    resolve(real.ioctl, "ioctl");
    resolve(real.setsockopt, "setsockopt");
    resolve(real.getsockopt, "getsockopt");
    resolve(real.epoll_create, "epoll_create");
    resolve(real.epoll_create1, "epoll_create1");
    resolve(real.epoll_ctl, "epoll_ctl");
    resolve(real.epoll_wait, "epoll_wait");
    resolve(real.epoll_pwait, "epoll_pwait");
    resolve(real.poll, "poll");
    resolve(real.ppoll, "ppoll");
    resolve(real.select, "select");
    resolve(real.pselect, "pselect");
    resolve(real.read_chk, "__read_chk");
    resolve(real.recv_chk, "__recv_chk");
    resolve(real.recvfrom_chk, "__recvfrom_chk");
    resolve(real.poll_chk, "__poll_chk");
    if (real.fcntl64 == nullptr)
        real.fcntl64 = real.fcntl;  // a libc older than 2.28
    return real;
}

// Trivially constructed thread_locals, initial-exec: no allocation and no
// __tls_get_addr on the path of every call.
[[gnu::tls_model("initial-exec")]] thread_local PendingCall t_pending;
[[gnu::tls_model("initial-exec")]] thread_local bool t_holding = false;

// The real call f with the shim's lock released (when this thread holds
// it), errno kept across the re-lock.
template <class F>
auto unlocked(F f) {
    if (!t_holding)
        return f();
    faulty_lock().unlock();
    t_holding = false;
    const auto rc = f();
    const int error = errno;
    faulty_lock().lock();
    t_holding = true;
    errno = error;
    return rc;
}

VoidResult void_result(int rc) noexcept {
    return rc == -1 ? VoidResult::failure(errno) : VoidResult::success({});
}
FdResult int_result(int rc) noexcept {
    return rc == -1 ? FdResult::failure(errno) : FdResult::success(rc);
}
SizeResult size_result(ssize_t rc) noexcept {
    return rc == -1 ? SizeResult::failure(errno) : SizeResult::success(static_cast<std::size_t>(rc));
}

// recvmsg into buffers, not the program's own iovecs (FaultySys may have
// shortened them), on the program's own msghdr (the kernel writes its
// msg_flags, msg_namelen and msg_controllen back there).
SizeResult receive_message(int fd, msghdr* message, iovec* buffers, std::size_t count, int flags) {
    iovec* const own = message->msg_iov;
    const std::size_t own_count = message->msg_iovlen;
    message->msg_iov = buffers;
    message->msg_iovlen = count;
    const ssize_t rc = unlocked([&] { return real_libc().recvmsg(fd, message, flags); });
    const int error = errno;
    message->msg_iov = own;
    message->msg_iovlen = own_count;
    errno = error;
    return size_result(rc);
}

}  // namespace

const RealLibc& real_libc() noexcept {
    static const RealLibc real = resolve_all();
    return real;
}

PendingCall& pending_call() noexcept {
    return t_pending;
}

std::mutex& faulty_lock() noexcept {
    static std::mutex lock;
    return lock;
}

bool holding_faulty_lock() noexcept {
    return t_holding;
}

void set_holding_faulty_lock(bool holding) noexcept {
    t_holding = holding;
}

FdResult RealSys::socket(int domain, int type, int protocol) {
    return int_result(real_libc().socket(domain, type, protocol));
}

VoidResult RealSys::bind(int fd, const SockAddr& address) {
    return void_result(::bind(fd, address.data(), address.size()));
}

VoidResult RealSys::listen(int fd, int backlog) {
    return void_result(::listen(fd, backlog));
}

FdResult RealSys::accept4(int fd, SockAddr*, int flags) {
    const PendingCall& call = t_pending;
    if (call.original == Original::accept)
        return int_result(unlocked([&] { return real_libc().accept(fd, call.from, call.from_length); }));
    return int_result(unlocked([&] { return real_libc().accept4(fd, call.from, call.from_length, flags); }));
}

VoidResult RealSys::connect(int fd, const SockAddr&) {
    const PendingCall& call = t_pending;
    return void_result(unlocked([&] { return real_libc().connect(fd, call.to, call.to_length); }));
}

VoidResult RealSys::getsockopt(int fd, int level, int name, std::span<std::byte> value, socklen_t* length) {
    return void_result(real_libc().getsockopt(fd, level, name, value.data(), length));
}

VoidResult RealSys::setsockopt(int fd, int level, int name, std::span<const std::byte> value) {
    return void_result(real_libc().setsockopt(fd, level, name, value.data(), static_cast<socklen_t>(value.size())));
}

SysResult<SockAddr> RealSys::getsockname(int) {
    return SysResult<SockAddr>::failure(ENOSYS);  // FaultySys never asks; the program's goes straight to libc
}

SysResult<SockAddr> RealSys::getpeername(int) {
    return SysResult<SockAddr>::failure(ENOSYS);
}

SizeResult RealSys::send(int fd, std::span<const std::uint8_t> data, int flags) {
    const PendingCall& call = t_pending;
    const RealLibc& real = real_libc();
    if (call.original == Original::write)
        return size_result(unlocked([&] { return real.write(fd, data.data(), data.size()); }));
    if (call.original == Original::sendto) {
        return size_result(
            unlocked([&] { return real.sendto(fd, data.data(), data.size(), flags, call.to, call.to_length); }));
    }
    return size_result(unlocked([&] { return real.send(fd, data.data(), data.size(), flags); }));
}

SizeResult RealSys::recv(int fd, std::span<std::uint8_t> buffer, int flags) {
    const PendingCall& call = t_pending;
    const RealLibc& real = real_libc();
    if (call.original == Original::read)
        return size_result(unlocked([&] { return real.read(fd, buffer.data(), buffer.size()); }));
    if (call.original == Original::recvfrom) {
        return size_result(unlocked(
            [&] { return real.recvfrom(fd, buffer.data(), buffer.size(), flags, call.from, call.from_length); }));
    }
    if (call.original == Original::recvmsg) {
        iovec only{buffer.data(), buffer.size()};
        return receive_message(fd, call.receive_message, &only, 1, flags);
    }
    return size_result(unlocked([&] { return real.recv(fd, buffer.data(), buffer.size(), flags); }));
}

SizeResult RealSys::readv(int fd, std::span<const iovec> buffers) {
    const PendingCall& call = t_pending;
    if (call.original == Original::recvmsg) {
        // recvmsg with several iovecs; the program's flags travel here.
        return receive_message(fd, call.receive_message, const_cast<iovec*>(buffers.data()), buffers.size(),
                               call.receive_flags);
    }
    return size_result(
        unlocked([&] { return real_libc().readv(fd, buffers.data(), static_cast<int>(buffers.size())); }));
}

SizeResult RealSys::writev(int fd, std::span<const iovec> buffers) {
    return size_result(
        unlocked([&] { return real_libc().writev(fd, buffers.data(), static_cast<int>(buffers.size())); }));
}

SizeResult RealSys::sendmsg(int fd, std::span<const iovec> buffers, int flags) {
    const PendingCall& call = t_pending;
    msghdr message{};
    if (call.original == Original::sendmsg && call.send_message != nullptr)
        message = *call.send_message;  // its name and control data
    message.msg_iov = const_cast<iovec*>(buffers.data());
    message.msg_iovlen = buffers.size();
    return size_result(unlocked([&] { return real_libc().sendmsg(fd, &message, flags); }));
}

VoidResult RealSys::shutdown(int fd, int how) {
    return void_result(real_libc().shutdown(fd, how));
}

VoidResult RealSys::close(int fd) {
    return void_result(unlocked([&] { return real_libc().close(fd); }));
}

FdResult RealSys::fcntl(int fd, int command, int argument) {
    return int_result(real_libc().fcntl(fd, command, argument));
}

FdResult RealSys::ioctl_fionread(int fd) {
    int count = 0;
    if (real_libc().ioctl(fd, FIONREAD, &count) == -1)
        return FdResult::failure(errno);
    return FdResult::success(count);
}

FdResult RealSys::epoll_create1(int flags) {
    const PendingCall& call = t_pending;
    if (call.original == Original::epoll_create)
        return int_result(real_libc().epoll_create(call.epoll_size));
    return int_result(real_libc().epoll_create1(flags));
}

VoidResult RealSys::epoll_ctl(int epoll_fd, int op, int fd, EpollEvent) {
    // The program's own event pointer: the same data, and the same EFAULT
    // for a null one.
    return void_result(real_libc().epoll_ctl(epoll_fd, op, fd, t_pending.ctl_event));
}

FdResult RealSys::epoll_wait(int epoll_fd, std::span<EpollEvent> events, int timeout_ms) {
    const PendingCall& call = t_pending;
    epoll_event* raw = call.wait_events;  // the program's array, at least events.size() long
    const int max = static_cast<int>(std::min<std::size_t>(events.size(), INT_MAX));
    const int n = unlocked([&] {
        if (call.original == Original::epoll_pwait)
            return real_libc().epoll_pwait(epoll_fd, raw, max, timeout_ms, call.sigmask);
        return real_libc().epoll_wait(epoll_fd, raw, max, timeout_ms);
    });
    if (n == -1)
        return FdResult::failure(errno);
    for (int i = 0; i < n; ++i) {
        const auto index = static_cast<std::size_t>(i);
        events[index] = EpollEvent{raw[index].events, raw[index].data.u64};
    }
    return FdResult::success(n);
}

FdResult RealSys::poll(std::span<pollfd> fds, int timeout_ms) {
    const PendingCall& call = t_pending;
    const auto count = static_cast<nfds_t>(fds.size());
    const int n = unlocked([&] {
        if (call.original == Original::ppoll)
            return real_libc().ppoll(fds.data(), count, call.poll_timeout, call.sigmask);
        if (call.original == Original::poll_chk)
            return real_libc().poll_chk(fds.data(), count, timeout_ms, call.poll_fds_length);
        return real_libc().poll(fds.data(), count, timeout_ms);
    });
    return n == -1 ? FdResult::failure(errno) : FdResult::success(n);
}

Nanos RealSys::now() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace eagain::preload
