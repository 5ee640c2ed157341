// SimKernel: one simulated host's kernel behind Sys. Its own fd table
// (lowest free descriptor, as POSIX), its TCP sockets and epoll instances;
// the network between hosts and the clock belong to the World.
//
// Every call is traced (sim/trace.h) with its arguments and result. Calls
// return what Linux returns in the same state (docs/sim-model.md lists the
// states modelled and where the model is simpler); the conformance suite
// (tests/conformance/) runs the same tests here and on Linux.
#pragma once

#include "core/sys.h"
#include "sim/options.h"
#include "sim/tcp.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace eagain::sim {

class World;

class SimKernel final : public Sys {
public:
    SimKernel(World& world, std::uint32_t index, std::string name, HostOptions options);
    ~SimKernel() override;
    SimKernel(const SimKernel&) = delete;
    SimKernel& operator=(const SimKernel&) = delete;

    World& world() const noexcept { return world_; }
    const std::string& name() const noexcept { return name_; }
    std::uint32_t index() const noexcept { return index_; }
    const HostOptions& options() const noexcept { return options_; }
    // This host's own address (not loopback) for family, with port.
    SockAddr address(int family, std::uint16_t port = 0) const noexcept;
    bool owns_address(const SockAddr& address) const noexcept;

    // Descriptors open now, 0-2 (stdio) included.
    std::size_t open_fd_count() const noexcept { return open_fds_; }
    // Sends that hit EPIPE without MSG_NOSIGNAL: on Linux each would have
    // raised SIGPIPE, which kills a program that does not ignore it.
    std::uint64_t sigpipe_count() const noexcept { return sigpipes_; }
    // Some epoll instance of this host has an event to report now.
    bool has_ready_events();

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

private:
    friend class World;

    struct File {
        enum class Kind : std::uint8_t { none, socket, epoll } kind = Kind::none;
        std::uint64_t endpoint = 0;
        std::unique_ptr<EpollInstance> epoll;
        bool nonblocking = false;
        bool cloexec = false;
    };

    // The endpoint behind a socket fd, or the errno (EBADF, ENOTSOCK).
    SysResult<Endpoint*> socket_of(int fd);
    FdResult install(File file);
    SizeResult do_send(int fd, std::span<const iovec> buffers, int flags, std::string_view call);
    SizeResult do_recv(int fd, std::span<const iovec> buffers, int flags, std::string_view call);
    std::uint16_t ephemeral_port(int family);
    bool port_in_use(int family, std::uint16_t port) const noexcept;
    void release_port(const Endpoint& endpoint) noexcept;
    // Linux's tcp_poll: the readiness mask of an endpoint now.
    std::uint32_t readiness(Endpoint& endpoint);
    void wake(EpollItem& item, std::uint32_t key, bool transition);
    void remove_item(EpollItem& item);
    std::size_t collect(EpollInstance& epoll, std::span<EpollEvent> events);
    bool epoll_ready(EpollInstance& epoll);
    // What poll(2) reports for fd now, before masking: tcp_poll's mask for a
    // socket, POLLIN for an epoll fd with events to report, POLLNVAL for a
    // descriptor not open.
    std::uint32_t poll_mask(int fd);
    // Linux blocks; here the network runs until ready() (outside
    // World::run_until only). False if it cannot become ready.
    bool block_until(const std::function<bool()>& ready);

    World& world_;
    std::uint32_t index_;
    std::string name_;
    HostOptions options_;
    std::vector<File> files_;
    std::size_t open_fds_ = 3;
    std::vector<int> free_fds_;  // a min-heap of closed descriptors below files_.size()
    std::map<std::pair<int, std::uint16_t>, std::uint64_t> ports_;  // (family, port) -> bound endpoint
    std::uint16_t next_ephemeral_ = 0;
    std::vector<EpollInstance*> epolls_;  // instances of this host, by creation
    std::uint64_t sigpipes_ = 0;
};

}  // namespace eagain::sim
