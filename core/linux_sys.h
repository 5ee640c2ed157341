// LinuxSys: Sys over the real kernel. Each call is the libc call and nothing
// more: no retries, no logging, errno copied into the result.
#pragma once

#include "core/sys.h"

namespace eagain {

class LinuxSys : public Sys {
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

}  // namespace eagain
