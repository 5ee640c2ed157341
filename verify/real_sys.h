// RealSys: the Sys under the preload shim's FaultySys. Each call is the real
// libc function the program called (found with dlsym(RTLD_NEXT), so never
// the shim's own interposed symbol again), made with the shim's lock
// released: a thread blocked in recv or epoll_wait holds up no other thread.
//
// FaultySys speaks Sys (send, recv, readv, ...), the program speaks libc
// (write, sendto, recvmsg, ...). The shim states the program's own call in
// a per-thread PendingCall before it calls FaultySys, and RealSys makes THAT
// call with the arguments FaultySys passed down (a shortened length, trimmed
// iovecs) and the rest of the program's (addresses, msghdr, sigmask): a
// program's recvfrom stays a recvfrom, its epoll_pwait's mask is set
// atomically by the kernel, its msghdr keeps its control data.
#pragma once

#include "core/sys.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <mutex>

namespace eagain::preload {

// The real libc functions, resolved once (resolve_real_libc) before any use.
struct RealLibc {
    int (*socket)(int, int, int);
    int (*accept)(int, sockaddr*, socklen_t*);
    int (*accept4)(int, sockaddr*, socklen_t*, int);
    int (*connect)(int, const sockaddr*, socklen_t);
    int (*close)(int);
    int (*shutdown)(int, int);
    ssize_t (*read)(int, void*, size_t);
    ssize_t (*write)(int, const void*, size_t);
    ssize_t (*readv)(int, const iovec*, int);
    ssize_t (*writev)(int, const iovec*, int);
    ssize_t (*send)(int, const void*, size_t, int);
    ssize_t (*sendto)(int, const void*, size_t, int, const sockaddr*, socklen_t);
    ssize_t (*sendmsg)(int, const msghdr*, int);
    ssize_t (*recv)(int, void*, size_t, int);
    ssize_t (*recvfrom)(int, void*, size_t, int, sockaddr*, socklen_t*);
    ssize_t (*recvmsg)(int, msghdr*, int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*setsockopt)(int, int, int, const void*, socklen_t);
    int (*getsockopt)(int, int, int, void*, socklen_t*);
    int (*epoll_create)(int);
    int (*epoll_create1)(int);
    int (*epoll_ctl)(int, int, int, epoll_event*);
    int (*epoll_wait)(int, epoll_event*, int, int);
    int (*epoll_pwait)(int, epoll_event*, int, int, const sigset_t*);
    int (*poll)(pollfd*, nfds_t, int);
    int (*ppoll)(pollfd*, nfds_t, const timespec*, const sigset_t*);
    int (*select)(int, fd_set*, fd_set*, fd_set*, timeval*);
    int (*pselect)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*);
    ssize_t (*read_chk)(int, void*, size_t, size_t);
    ssize_t (*recv_chk)(int, void*, size_t, size_t, int);
    ssize_t (*recvfrom_chk)(int, void*, size_t, size_t, int, sockaddr*, socklen_t*);
    int (*poll_chk)(pollfd*, nfds_t, int, size_t);
};
// Resolves every pointer the first time (the shim's constructor, or
// whichever interposed call comes first); then just returns the table.
const RealLibc& real_libc() noexcept;

// The libc call the program made, when it is not the Sys call of the same
// name FaultySys passes down.
enum class Original : unsigned char { same, accept, read, write, sendto, recvfrom, recvmsg, sendmsg, epoll_create, epoll_pwait, ppoll, poll_chk };

struct PendingCall {
    Original original = Original::same;
    const sockaddr* to = nullptr;  // connect, sendto
    socklen_t to_length = 0;
    sockaddr* from = nullptr;  // accept, accept4, recvfrom
    socklen_t* from_length = nullptr;
    const msghdr* send_message = nullptr;  // sendmsg
    msghdr* receive_message = nullptr;     // recvmsg
    int receive_flags = 0;                 // recvmsg with several iovecs (readv takes no flags)
    epoll_event* ctl_event = nullptr;      // epoll_ctl: the program's own pointer
    epoll_event* wait_events = nullptr;    // epoll_wait: the program's array, used as the kernel's buffer
    const sigset_t* sigmask = nullptr;     // epoll_pwait, ppoll
    const timespec* poll_timeout = nullptr;  // ppoll: the program's own timeout
    size_t poll_fds_length = 0;              // __poll_chk
    int epoll_size = 0;                    // epoll_create
};
// Set by the shim before each FaultySys call on this thread.
PendingCall& pending_call() noexcept;

// The lock around the process's FaultySys, and whether this thread holds
// it (a signal handler that calls send while its thread holds the lock is
// sent straight to libc instead of deadlocking).
std::mutex& faulty_lock() noexcept;
bool holding_faulty_lock() noexcept;
void set_holding_faulty_lock(bool holding) noexcept;

class RealSys final : public Sys {
public:
    FdResult socket(int domain, int type, int protocol) override;
    VoidResult bind(int fd, const SockAddr& address) override;
    VoidResult listen(int fd, int backlog) override;
    FdResult accept4(int fd, SockAddr* peer, int flags) override;
    VoidResult connect(int fd, const SockAddr& address) override;
    VoidResult getsockopt(int fd, int level, int name, std::span<std::byte> value, socklen_t* length) override;
    VoidResult setsockopt(int fd, int level, int name, std::span<const std::byte> value) override;
    SysResult<SockAddr> getsockname(int fd) override;
    SysResult<SockAddr> getpeername(int fd) override;
    SizeResult send(int fd, std::span<const std::uint8_t> data, int flags) override;
    SizeResult recv(int fd, std::span<std::uint8_t> buffer, int flags) override;
    SizeResult readv(int fd, std::span<const iovec> buffers) override;
    SizeResult writev(int fd, std::span<const iovec> buffers) override;
    SizeResult sendmsg(int fd, std::span<const iovec> buffers, int flags) override;
    VoidResult shutdown(int fd, int how) override;
    VoidResult close(int fd) override;
    FdResult fcntl(int fd, int command, int argument) override;
    FdResult ioctl_fionread(int fd) override;
    FdResult epoll_create1(int flags) override;
    VoidResult epoll_ctl(int epoll_fd, int op, int fd, EpollEvent event) override;
    FdResult epoll_wait(int epoll_fd, std::span<EpollEvent> events, int timeout_ms) override;
    FdResult poll(std::span<pollfd> fds, int timeout_ms) override;
    Nanos now() override;
};

}  // namespace eagain::preload
