#include "sim/sim_kernel.h"

#include "core/assert.h"
#include "sim/world.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>

namespace eagain::sim {

namespace {

constexpr std::uint32_t event_bits = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP;

SockAddr wildcard(int family) {
    if (family == AF_INET)
        return SockAddr::ipv4(0, 0);
    static const SockAddr any6 = *SockAddr::parse("[::]:0");
    return any6;
}

// Results as trace fields.
void put_result(Trace::Line& line, int value) {
    line.field("ret", value);
}
void put_result(Trace::Line& line, std::size_t value) {
    line.field("ret", static_cast<std::uint64_t>(value));
}
void put_result(Trace::Line& line, Unit) {
    line.field("ret", 0);
}
void put_result(Trace::Line& line, const SockAddr& value) {
    line.field("ret", value.to_string());
}

}  // namespace

bool is_wildcard(const SockAddr& address) noexcept {
    if (address.family() == AF_INET)
        return reinterpret_cast<const sockaddr_in*>(address.data())->sin_addr.s_addr == 0;
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(address.data())->sin6_addr);
}

bool is_loopback(const SockAddr& address) noexcept {
    if (address.family() == AF_INET)
        return (ntohl(reinterpret_cast<const sockaddr_in*>(address.data())->sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(address.data())->sin6_addr);
}

SimKernel::SimKernel(World& world, std::uint32_t index, std::string name, HostOptions options)
    : world_(world), index_(index), name_(std::move(name)), options_(options), files_(3) {
    next_ephemeral_ = options_.first_ephemeral_port;
}

SimKernel::~SimKernel() = default;

SockAddr SimKernel::address(int family, std::uint16_t port) const noexcept {
    if (family == AF_INET)
        return SockAddr::ipv4((10U << 24) | (index_ + 1U), port);
    std::string text = "[fd00::" + std::to_string(index_ + 1U) + "]:" + std::to_string(port);
    // index_ + 1 as decimal digits is also valid hex; parse cannot fail.
    return *SockAddr::parse(text);
}

bool SimKernel::owns_address(const SockAddr& address) const noexcept {
    return address.family() != AF_UNSPEC &&
           std::memcmp(this->address(address.family(), address.port()).data(), address.data(), address.size()) == 0;
}

Nanos SimKernel::now() {
    return world_.now();
}

// ===========================================================================
// Descriptors

template <class T, class Fields>
SysResult<T> traced(World& world, const std::string& host, std::string_view call, SysResult<T> result,
                    Fields&& fields) {
    Trace& trace = world.trace();
    if (trace.enabled()) {
        Trace::Line line = trace.line(world.now(), "sys");
        line.field("host", host).field("call", call);
        fields(line);
        if (result.ok())
            put_result(line, result.value);
        else
            line.field("err", errno_name(result.error));
    }
    return result;
}

SysResult<Endpoint*> SimKernel::socket_of(int fd) {
    if (fd < 0 || static_cast<std::size_t>(fd) >= files_.size() ||
        files_[static_cast<std::size_t>(fd)].kind == File::Kind::none)
        return SysResult<Endpoint*>::failure(EBADF);
    const File& file = files_[static_cast<std::size_t>(fd)];
    if (file.kind != File::Kind::socket)
        return SysResult<Endpoint*>::failure(ENOTSOCK);
    Endpoint* e = world_.endpoint(file.endpoint);
    EAGAIN_ASSERT(e != nullptr);
    return SysResult<Endpoint*>::success(e);
}

FdResult SimKernel::install(File file) {
    if (open_fds_ >= static_cast<std::size_t>(options_.fd_limit))
        return FdResult::failure(EMFILE);
    int fd = 0;
    if (!free_fds_.empty()) {
        std::pop_heap(free_fds_.begin(), free_fds_.end(), std::greater<>{});
        fd = free_fds_.back();
        free_fds_.pop_back();
        files_[static_cast<std::size_t>(fd)] = std::move(file);
    } else {
        fd = static_cast<int>(files_.size());
        files_.push_back(std::move(file));
    }
    ++open_fds_;
    return FdResult::success(fd);
}

std::uint16_t SimKernel::ephemeral_port(int family) {
    const std::uint16_t first = options_.first_ephemeral_port;
    for (std::uint32_t tries = 0; tries <= 65535U - first; ++tries) {
        const std::uint16_t port = next_ephemeral_;
        next_ephemeral_ = next_ephemeral_ == 65535 ? first : static_cast<std::uint16_t>(next_ephemeral_ + 1);
        if (!port_in_use(family, port))
            return port;
    }
    return 0;
}

bool SimKernel::port_in_use(int family, std::uint16_t port) const noexcept {
    return ports_.contains({family, port});
}

void SimKernel::release_port(const Endpoint& e) noexcept {
    if (!e.bound)
        return;
    const auto bound = ports_.find({e.family, e.local.port()});
    if (bound != ports_.end() && bound->second == e.id)
        ports_.erase(bound);
}

bool SimKernel::block_until(const std::function<bool()>& ready) {
    if (world_.running())
        return ready();
    return world_.advance_until(std::nullopt, ready);
}

// ===========================================================================
// Sockets

FdResult SimKernel::socket(int domain, int type, int protocol) {
    const auto fields = [&](Trace::Line& l) { l.field("domain", domain).field("type", type); };
    if (domain != AF_INET && domain != AF_INET6)
        return traced(world_, name_, "socket", FdResult::failure(EAFNOSUPPORT), fields);
    if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM || (protocol != 0 && protocol != IPPROTO_TCP))
        return traced(world_, name_, "socket", FdResult::failure(EPROTONOSUPPORT), fields);
    Endpoint& e = world_.new_endpoint(index_, domain);
    e.local = wildcard(domain);
    const FdResult fd =
        install(File{File::Kind::socket, e.id, nullptr, (type & SOCK_NONBLOCK) != 0, (type & SOCK_CLOEXEC) != 0});
    if (!fd.ok())
        world_.destroy_endpoint(e);
    return traced(world_, name_, "socket", fd, fields);
}

VoidResult SimKernel::bind(int fd, const SockAddr& address) {
    const auto fields = [&](Trace::Line& l) { l.field("fd", fd).field("addr", address.to_string()); };
    const auto done = [&](VoidResult r) { return traced(world_, name_, "bind", r, fields); };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return done(VoidResult::failure(found.error));
    Endpoint& e = *found.value;
    if (address.family() != e.family || e.bound)
        return done(VoidResult::failure(EINVAL));
    if (!is_wildcard(address) && !is_loopback(address) && !owns_address(address))
        return done(VoidResult::failure(EADDRNOTAVAIL));
    std::uint16_t port = address.port();
    if (port == 0) {
        port = ephemeral_port(e.family);
        if (port == 0)
            return done(VoidResult::failure(EADDRINUSE));
    } else if (port_in_use(e.family, port)) {
        return done(VoidResult::failure(EADDRINUSE));
    }
    ports_[{e.family, port}] = e.id;
    e.local = address.with_port(port);
    e.bound = true;
    return done(VoidResult::success({}));
}

VoidResult SimKernel::listen(int fd, int backlog) {
    const auto fields = [&](Trace::Line& l) { l.field("fd", fd).field("backlog", backlog); };
    const auto done = [&](VoidResult r) { return traced(world_, name_, "listen", r, fields); };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return done(VoidResult::failure(found.error));
    Endpoint& e = *found.value;
    if (e.state != TcpState::closed && e.state != TcpState::listen)
        return done(VoidResult::failure(EINVAL));
    if (e.connect_phase != ConnectPhase::unconnected)
        return done(VoidResult::failure(EINVAL));
    if (!e.bound) {
        const std::uint16_t port = ephemeral_port(e.family);
        if (port == 0)
            return done(VoidResult::failure(EADDRINUSE));
        ports_[{e.family, port}] = e.id;
        e.local = wildcard(e.family).with_port(port);
        e.bound = true;
    }
    const int somaxconn = world_.options().tcp.somaxconn;
    e.backlog = backlog < 0 || backlog > somaxconn ? somaxconn : backlog;
    e.state = TcpState::listen;
    e.rcv_shutdown = false;
    e.snd_shutdown = false;
    return done(VoidResult::success({}));
}

FdResult SimKernel::accept4(int fd, SockAddr* peer, int flags) {
    std::string peer_text;
    const auto fields = [&](Trace::Line& l) {
        l.field("fd", fd).field("flags", flags);
        if (!peer_text.empty())
            l.field("peer", peer_text);
    };
    const auto done = [&](FdResult r) { return traced(world_, name_, "accept4", r, fields); };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return done(FdResult::failure(found.error));
    if ((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != 0)
        return done(FdResult::failure(EINVAL));
    const std::uint64_t listener_id = found.value->id;
    const auto listener = [&] { return world_.endpoint(listener_id); };
    if (listener()->state != TcpState::listen)
        return done(FdResult::failure(EINVAL));
    if (listener()->accept_queue.empty()) {
        if (files_[static_cast<std::size_t>(fd)].nonblocking)
            return done(FdResult::failure(EAGAIN));
        if (!block_until([&] { return listener() == nullptr || !listener()->accept_queue.empty(); }) ||
            listener() == nullptr)
            return done(FdResult::failure(EAGAIN));
    }
    if (open_fds_ >= static_cast<std::size_t>(options_.fd_limit))
        return done(FdResult::failure(EMFILE));  // the connection stays queued
    Endpoint& l = *listener();
    const std::uint64_t child_id = l.accept_queue.front();
    l.accept_queue.pop_front();
    Endpoint* child = world_.endpoint(child_id);
    EAGAIN_ASSERT(child != nullptr);
    child->listener = 0;
    child->connect_phase = ConnectPhase::connected;
    const FdResult installed =
        install(File{File::Kind::socket, child_id, nullptr, (flags & SOCK_NONBLOCK) != 0, (flags & SOCK_CLOEXEC) != 0});
    EAGAIN_ASSERT(installed.ok());
    peer_text = child->remote.to_string();
    if (peer != nullptr)
        *peer = child->remote;
    return done(installed);
}

VoidResult SimKernel::connect(int fd, const SockAddr& address) {
    const auto fields = [&](Trace::Line& l) { l.field("fd", fd).field("addr", address.to_string()); };
    const auto done = [&](VoidResult r) { return traced(world_, name_, "connect", r, fields); };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return done(VoidResult::failure(found.error));
    Endpoint& e = *found.value;
    if (address.family() != e.family)
        return done(VoidResult::failure(e.family == AF_INET ? EAFNOSUPPORT : EINVAL));
    // __inet_stream_connect: the socket layer's state first, then TCP's.
    switch (e.connect_phase) {
        case ConnectPhase::connected: return done(VoidResult::failure(EISCONN));
        case ConnectPhase::connecting:
            if (e.state == TcpState::syn_sent)
                return done(VoidResult::failure(EALREADY));
            if (e.state == TcpState::closed) {
                const int error = e.error != 0 ? std::exchange(e.error, 0) : ECONNABORTED;
                e.connect_phase = ConnectPhase::unconnected;
                return done(VoidResult::failure(error));
            }
            e.connect_phase = ConnectPhase::connected;
            return done(VoidResult::success({}));
        case ConnectPhase::unconnected: break;
    }
    if (e.state != TcpState::closed)
        return done(VoidResult::failure(EISCONN));
    // A socket whose earlier connect failed starts afresh (tcp_disconnect).
    const int family = e.family;
    const std::uint64_t id = e.id;
    e.error = 0;
    e.reset = false;
    e.rcv_shutdown = e.snd_shutdown = e.fin_received = false;
    e.fin_queued = e.fin_sent = e.fin_acked = e.peer_fin_known = false;
    e.snd_una = e.snd_nxt = e.snd_max = e.rcv_nxt = 1;
    e.rcv_window_edge = 0;
    e.rcv.clear();
    const bool to_loopback = is_loopback(address);
    if (!e.bound) {
        const std::uint16_t port = ephemeral_port(family);
        if (port == 0)
            return done(VoidResult::failure(EADDRNOTAVAIL));
        ports_[{family, port}] = id;
        e.bound = true;
        e.local = wildcard(family).with_port(port);
    }
    if (is_wildcard(e.local)) {
        const SockAddr source = to_loopback
                                    ? (family == AF_INET6 ? SockAddr::ipv6_loopback(0) : SockAddr::ipv4_loopback(0))
                                    : this->address(family);
        e.local = source.with_port(e.local.port());
    }
    world_.start_connect(e, address);
    if (files_[static_cast<std::size_t>(fd)].nonblocking)
        return done(VoidResult::failure(EINPROGRESS));
    block_until([&] { return world_.endpoint(id)->state != TcpState::syn_sent; });
    if (e.state == TcpState::established) {
        e.connect_phase = ConnectPhase::connected;
        return done(VoidResult::success({}));
    }
    e.connect_phase = ConnectPhase::unconnected;
    return done(VoidResult::failure(e.error != 0 ? std::exchange(e.error, 0) : ETIMEDOUT));
}

VoidResult SimKernel::getsockopt(int fd, int level, int name, std::span<std::byte> value, socklen_t* length) {
    int reported = 0;
    const auto fields = [&](Trace::Line& l) {
        l.field("fd", fd).field("level", level).field("name", name).field("value", reported);
    };
    const auto done = [&](VoidResult r) { return traced(world_, name_, "getsockopt", r, fields); };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return done(VoidResult::failure(found.error));
    Endpoint& e = *found.value;
    if (level == SOL_SOCKET && name == SO_LINGER) {
        if (value.size() < sizeof(linger))
            return done(VoidResult::failure(EINVAL));
        const linger l{e.linger_on ? 1 : 0, e.linger_seconds};
        std::memcpy(value.data(), &l, sizeof l);
        *length = sizeof l;
        reported = l.l_onoff;
        return done(VoidResult::success({}));
    }
    if (level == SOL_SOCKET) {
        switch (name) {
            case SO_ERROR: reported = std::exchange(e.error, 0); break;
            case SO_SNDBUF: reported = static_cast<int>(e.snd_capacity); break;
            case SO_RCVBUF: reported = static_cast<int>(e.rcv_capacity); break;
            case SO_TYPE: reported = SOCK_STREAM; break;
            case SO_REUSEADDR: reported = e.reuseaddr ? 1 : 0; break;
            case SO_KEEPALIVE: reported = e.keepalive ? 1 : 0; break;
            case SO_ACCEPTCONN: reported = e.state == TcpState::listen ? 1 : 0; break;
            default: return done(VoidResult::failure(ENOPROTOOPT));
        }
    } else if (level == IPPROTO_TCP && name == TCP_NODELAY) {
        reported = e.nodelay ? 1 : 0;
    } else {
        return done(VoidResult::failure(ENOPROTOOPT));
    }
    if (value.size() < sizeof(int))
        return done(VoidResult::failure(EINVAL));
    std::memcpy(value.data(), &reported, sizeof reported);
    *length = sizeof reported;
    return done(VoidResult::success({}));
}

VoidResult SimKernel::setsockopt(int fd, int level, int name, std::span<const std::byte> value) {
    int requested = 0;
    if (value.size() >= sizeof(int))
        std::memcpy(&requested, value.data(), sizeof requested);
    const auto fields = [&](Trace::Line& l) {
        l.field("fd", fd).field("level", level).field("name", name).field("value", requested);
    };
    const auto done = [&](VoidResult r) { return traced(world_, name_, "setsockopt", r, fields); };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return done(VoidResult::failure(found.error));
    Endpoint& e = *found.value;
    if (level == SOL_SOCKET && name == SO_LINGER) {
        if (value.size() < sizeof(linger))
            return done(VoidResult::failure(EINVAL));
        linger l{};
        std::memcpy(&l, value.data(), sizeof l);
        e.linger_on = l.l_onoff != 0;
        e.linger_seconds = l.l_linger;
        return done(VoidResult::success({}));
    }
    if (value.size() < sizeof(int))
        return done(VoidResult::failure(EINVAL));
    const TcpOptions& tcp = world_.options().tcp;
    const auto buffer_size = [&](int minimum) {
        // sock_setsockopt: clamp to the sysctl maximum, then double.
        const int clamped = std::clamp(requested, 0, tcp.max_buffer_request);
        return static_cast<std::size_t>(std::max(clamped * 2, minimum));
    };
    if (level == SOL_SOCKET) {
        switch (name) {
            case SO_SNDBUF: e.snd_capacity = buffer_size(tcp.min_send_buffer_bytes); break;
            case SO_RCVBUF: e.rcv_capacity = buffer_size(tcp.min_receive_buffer_bytes); break;
            case SO_REUSEADDR: e.reuseaddr = requested != 0; break;
            case SO_REUSEPORT: break;
            case SO_KEEPALIVE: e.keepalive = requested != 0; break;
            default: return done(VoidResult::failure(ENOPROTOOPT));
        }
    } else if (level == IPPROTO_TCP && name == TCP_NODELAY) {
        e.nodelay = requested != 0;
    } else {
        return done(VoidResult::failure(ENOPROTOOPT));
    }
    return done(VoidResult::success({}));
}

SysResult<SockAddr> SimKernel::getsockname(int fd) {
    const auto fields = [&](Trace::Line& l) { l.field("fd", fd); };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return traced(world_, name_, "getsockname", SysResult<SockAddr>::failure(found.error), fields);
    return traced(world_, name_, "getsockname", SysResult<SockAddr>::success(found.value->local), fields);
}

SysResult<SockAddr> SimKernel::getpeername(int fd) {
    const auto fields = [&](Trace::Line& l) { l.field("fd", fd); };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return traced(world_, name_, "getpeername", SysResult<SockAddr>::failure(found.error), fields);
    const Endpoint& e = *found.value;
    if (e.state != TcpState::established && e.state != TcpState::syn_received)
        return traced(world_, name_, "getpeername", SysResult<SockAddr>::failure(ENOTCONN), fields);
    return traced(world_, name_, "getpeername", SysResult<SockAddr>::success(e.remote), fields);
}

// ===========================================================================
// Reading and writing

SizeResult SimKernel::do_send(int fd, std::span<const iovec> buffers, int flags, std::string_view call) {
    const std::size_t total = iov_total_bytes(buffers);
    const auto fields = [&](Trace::Line& l) {
        l.field("fd", fd).field("len", static_cast<std::uint64_t>(total)).field("flags", flags);
    };
    const auto done = [&](SizeResult r) {
        if (r.error == EPIPE && (flags & MSG_NOSIGNAL) == 0) {
            ++sigpipes_;
            if (world_.trace().enabled())
                world_.trace()
                    .line(world_.now(), "signal")
                    .field("host", name_)
                    .field("signal", "SIGPIPE")
                    .field("fd", fd);
        }
        return traced(world_, name_, call, r, fields);
    };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return done(SizeResult::failure(found.error));
    const std::uint64_t id = found.value->id;
    const bool nonblocking = files_[static_cast<std::size_t>(fd)].nonblocking || (flags & MSG_DONTWAIT) != 0;
    std::size_t sent = 0;
    for (;;) {
        Endpoint& e = *world_.endpoint(id);
        // tcp_sendmsg_locked: a pending error, then the state, then room.
        if (e.error != 0)
            return done(sent > 0 ? SizeResult::success(sent) : SizeResult::failure(std::exchange(e.error, 0)));
        if (e.snd_shutdown || e.state == TcpState::closed || e.state == TcpState::listen)
            return done(sent > 0 ? SizeResult::success(sent) : SizeResult::failure(EPIPE));
        if (e.state == TcpState::syn_sent || e.state == TcpState::syn_received) {
            if (nonblocking)
                return done(SizeResult::failure(EAGAIN));
            block_until([&] {
                const Endpoint& now = *world_.endpoint(id);
                return now.state != TcpState::syn_sent && now.state != TcpState::syn_received;
            });
            continue;
        }
        if (sent == total)
            return done(SizeResult::success(sent));
        const std::size_t room = e.snd_capacity > e.snd.size() ? e.snd_capacity - e.snd.size() : 0;
        if (room == 0) {
            e.nospace = true;
            if (sent > 0 || nonblocking)
                return done(sent > 0 ? SizeResult::success(sent) : SizeResult::failure(EAGAIN));
            const bool can = block_until([&] {
                const Endpoint& now = *world_.endpoint(id);
                return now.error != 0 || now.snd_shutdown || now.snd.size() < now.snd_capacity;
            });
            if (!can)
                return done(SizeResult::failure(EAGAIN));
            continue;
        }
        std::size_t want = std::min(room, total - sent);
        std::span<std::uint8_t> space = e.snd.prepare(want);
        std::size_t skip = sent;
        std::size_t copied = 0;
        for (const iovec& piece : buffers) {
            if (copied == want)
                break;
            if (skip >= piece.iov_len) {
                skip -= piece.iov_len;
                continue;
            }
            const std::size_t n = std::min(piece.iov_len - skip, want - copied);
            std::memcpy(space.data() + copied, static_cast<const std::uint8_t*>(piece.iov_base) + skip, n);
            copied += n;
            skip = 0;
        }
        e.snd.commit(copied);
        sent += copied;
        world_.output(e);
        if (nonblocking || sent == total)
            return done(SizeResult::success(sent));
    }
}

SizeResult SimKernel::do_recv(int fd, std::span<const iovec> buffers, int flags, std::string_view call) {
    const std::size_t total = iov_total_bytes(buffers);
    const auto fields = [&](Trace::Line& l) {
        l.field("fd", fd).field("len", static_cast<std::uint64_t>(total)).field("flags", flags);
    };
    const auto done = [&](SizeResult r) { return traced(world_, name_, call, r, fields); };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return done(SizeResult::failure(found.error));
    const std::uint64_t id = found.value->id;
    const bool nonblocking = files_[static_cast<std::size_t>(fd)].nonblocking || (flags & MSG_DONTWAIT) != 0;
    for (;;) {
        Endpoint& e = *world_.endpoint(id);
        if (e.state == TcpState::listen)
            return done(SizeResult::failure(ENOTCONN));
        // A zero-length recv is no shortcut: 0 with data waiting, and with
        // none whatever an empty buffer gives (EAGAIN, 0 after the FIN).
        if (!e.rcv.empty()) {
            const std::span<const std::uint8_t> readable = e.rcv.readable();
            std::size_t copied = 0;
            for (const iovec& piece : buffers) {
                const std::size_t n = std::min(piece.iov_len, readable.size() - copied);
                std::memcpy(piece.iov_base, readable.data() + copied, n);
                copied += n;
                if (copied == readable.size())
                    break;
            }
            if ((flags & MSG_PEEK) == 0) {
                e.rcv.consume(copied);
                world_.after_read(e);
            }
            return done(SizeResult::success(copied));
        }
        // tcp_recvmsg with nothing copied: end of stream, error, shutdown, state.
        if (e.fin_received)
            return done(SizeResult::success(0));
        if (e.error != 0)
            return done(SizeResult::failure(std::exchange(e.error, 0)));
        if (e.rcv_shutdown)
            return done(SizeResult::success(0));
        if (e.state == TcpState::closed)
            return done(SizeResult::failure(ENOTCONN));
        if (nonblocking)
            return done(SizeResult::failure(EAGAIN));
        const bool can = block_until([&] {
            const Endpoint& now = *world_.endpoint(id);
            return !now.rcv.empty() || now.rcv_shutdown || now.error != 0 || now.state == TcpState::closed;
        });
        if (!can)
            return done(SizeResult::failure(EAGAIN));
    }
}

SizeResult SimKernel::send(int fd, std::span<const std::uint8_t> data, int flags) {
    const iovec piece{const_cast<std::uint8_t*>(data.data()), data.size()};
    return do_send(fd, std::span(&piece, 1), flags, "send");
}

SizeResult SimKernel::recv(int fd, std::span<std::uint8_t> buffer, int flags) {
    const iovec piece{buffer.data(), buffer.size()};
    return do_recv(fd, std::span(&piece, 1), flags, "recv");
}

SizeResult SimKernel::readv(int fd, std::span<const iovec> buffers) {
    return do_recv(fd, buffers, 0, "readv");
}

SizeResult SimKernel::writev(int fd, std::span<const iovec> buffers) {
    return do_send(fd, buffers, 0, "writev");
}

SizeResult SimKernel::sendmsg(int fd, std::span<const iovec> buffers, int flags) {
    return do_send(fd, buffers, flags, "sendmsg");
}

VoidResult SimKernel::shutdown(int fd, int how) {
    const auto fields = [&](Trace::Line& l) { l.field("fd", fd).field("how", how); };
    const auto done = [&](VoidResult r) { return traced(world_, name_, "shutdown", r, fields); };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return done(VoidResult::failure(found.error));
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return done(VoidResult::failure(EINVAL));
    Endpoint& e = *found.value;
    const bool read_side = how == SHUT_RD || how == SHUT_RDWR;
    const bool write_side = how == SHUT_WR || how == SHUT_RDWR;
    switch (e.state) {
        case TcpState::closed:
            // inet_shutdown: ENOTCONN, though the flags are set all the same.
            e.rcv_shutdown = e.rcv_shutdown || read_side;
            e.snd_shutdown = e.snd_shutdown || write_side;
            world_.notify(e, 0xFFFFFFFFU, true);
            return done(VoidResult::failure(ENOTCONN));
        case TcpState::listen: return done(VoidResult::success({}));
        case TcpState::syn_sent:
        case TcpState::syn_received:
            world_.cancel_timer(e);
            e.state = TcpState::closed;
            e.connect_phase = ConnectPhase::unconnected;
            world_.notify(e, 0xFFFFFFFFU, true);
            return done(VoidResult::success({}));
        case TcpState::established: break;
    }
    const std::uint64_t id = e.id;
    if (read_side)
        e.rcv_shutdown = true;
    if (write_side)
        world_.shutdown_send(e);
    if (Endpoint* still = world_.endpoint(id))
        world_.notify(*still, 0xFFFFFFFFU, true);
    return done(VoidResult::success({}));
}

VoidResult SimKernel::close(int fd) {
    const auto fields = [&](Trace::Line& l) { l.field("fd", fd); };
    const auto done = [&](VoidResult r) { return traced(world_, name_, "close", r, fields); };
    if (fd < 3 || static_cast<std::size_t>(fd) >= files_.size() ||
        files_[static_cast<std::size_t>(fd)].kind == File::Kind::none)
        return done(VoidResult::failure(EBADF));
    File file = std::move(files_[static_cast<std::size_t>(fd)]);
    files_[static_cast<std::size_t>(fd)] = File{};
    free_fds_.push_back(fd);
    std::push_heap(free_fds_.begin(), free_fds_.end(), std::greater<>{});
    --open_fds_;
    if (file.kind == File::Kind::epoll) {
        EpollInstance& epoll = *file.epoll;
        while (!epoll.items.empty())
            remove_item(*epoll.items.begin()->second);
        std::erase(epolls_, &epoll);
        return done(VoidResult::success({}));
    }
    Endpoint& e = *world_.endpoint(file.endpoint);
    // The last reference to the file is gone: every epoll set forgets it.
    while (!e.watchers.empty())
        remove_item(*e.watchers.back());
    world_.close_endpoint(e);
    return done(VoidResult::success({}));
}

FdResult SimKernel::fcntl(int fd, int command, int argument) {
    const auto fields = [&](Trace::Line& l) { l.field("fd", fd).field("cmd", command).field("arg", argument); };
    const auto done = [&](FdResult r) { return traced(world_, name_, "fcntl", r, fields); };
    if (fd < 0 || static_cast<std::size_t>(fd) >= files_.size() ||
        files_[static_cast<std::size_t>(fd)].kind == File::Kind::none)
        return done(FdResult::failure(EBADF));
    File& file = files_[static_cast<std::size_t>(fd)];
    switch (command) {
        case F_GETFL: return done(FdResult::success(O_RDWR | (file.nonblocking ? O_NONBLOCK : 0)));
        case F_SETFL: file.nonblocking = (argument & O_NONBLOCK) != 0; return done(FdResult::success(0));
        case F_GETFD: return done(FdResult::success(file.cloexec ? FD_CLOEXEC : 0));
        case F_SETFD: file.cloexec = (argument & FD_CLOEXEC) != 0; return done(FdResult::success(0));
        default: return done(FdResult::failure(EINVAL));
    }
}

FdResult SimKernel::ioctl_fionread(int fd) {
    const auto fields = [&](Trace::Line& l) { l.field("fd", fd); };
    const auto done = [&](FdResult r) { return traced(world_, name_, "ioctl_fionread", r, fields); };
    const SysResult<Endpoint*> found = socket_of(fd);
    if (!found.ok())
        return done(FdResult::failure(found.error));
    if (found.value->state == TcpState::listen)
        return done(FdResult::failure(EINVAL));
    return done(FdResult::success(static_cast<int>(found.value->rcv.size())));
}

// ===========================================================================
// epoll

std::uint32_t SimKernel::readiness(Endpoint& e) {
    // tcp_poll, in its order.
    if (e.state == TcpState::listen)
        return e.accept_queue.empty() ? 0U : static_cast<std::uint32_t>(EPOLLIN);
    std::uint32_t mask = 0;
    if ((e.rcv_shutdown && e.snd_shutdown) || e.state == TcpState::closed)
        mask |= EPOLLHUP;
    if (e.rcv_shutdown)
        mask |= EPOLLIN | EPOLLRDHUP;
    if (e.state != TcpState::syn_sent && e.state != TcpState::syn_received) {
        if (!e.rcv.empty())
            mask |= EPOLLIN;
        if (e.snd_shutdown) {
            mask |= EPOLLOUT;
        } else {
            const std::size_t used = e.snd.size();
            const std::size_t room = e.snd_capacity > used ? e.snd_capacity - used : 0;
            if (room > 0 && room >= used / 2)  // sk_stream_is_writeable
                mask |= EPOLLOUT;
            else
                e.nospace = true;  // tcp_poll sets SOCK_NOSPACE
        }
    }
    if (e.error != 0)
        mask |= EPOLLERR;
    return mask;
}

void SimKernel::wake(EpollItem& item, std::uint32_t key, bool transition) {
    if (item.disabled)
        return;
    if ((key & (item.events | EPOLLERR | EPOLLHUP)) == 0)
        return;
    if (options_.edge_mode == EdgeMode::transition_only && (item.events & EPOLLET) != 0 && !transition)
        return;
    if (!item.on_ready_list) {
        item.on_ready_list = true;
        item.owner->ready.push_back(&item);
    }
}

void SimKernel::remove_item(EpollItem& item) {
    EpollInstance& epoll = *item.owner;
    if (item.on_ready_list)
        std::erase(epoll.ready, &item);
    if (Endpoint* e = world_.endpoint(item.endpoint))
        std::erase(e->watchers, &item);
    epoll.items.erase(item.fd);  // destroys item
}

std::size_t SimKernel::collect(EpollInstance& epoll, std::span<EpollEvent> events) {
    std::size_t n = 0;
    std::size_t pending = epoll.ready.size();
    while (pending > 0 && n < events.size()) {
        --pending;
        EpollItem* item = epoll.ready.front();
        epoll.ready.pop_front();
        item->on_ready_list = false;
        if (item->disabled)
            continue;
        Endpoint* e = world_.endpoint(item->endpoint);
        if (e == nullptr)
            continue;
        const std::uint32_t mask = readiness(*e) & (item->events | EPOLLERR | EPOLLHUP) & event_bits;
        if (mask == 0)
            continue;
        events[n++] = EpollEvent{mask, item->data};
        if ((item->events & EPOLLONESHOT) != 0) {
            item->disabled = true;
        } else if ((item->events & EPOLLET) == 0) {
            item->on_ready_list = true;  // level-triggered: back on the list while ready
            epoll.ready.push_back(item);
        }
    }
    return n;
}

bool SimKernel::epoll_ready(EpollInstance& epoll) {
    bool any = false;
    std::erase_if(epoll.ready, [&](EpollItem* item) {
        Endpoint* e = world_.endpoint(item->endpoint);
        const bool ready =
            !item->disabled && e != nullptr && (readiness(*e) & (item->events | EPOLLERR | EPOLLHUP) & event_bits) != 0;
        if (!ready)
            item->on_ready_list = false;
        any = any || ready;
        return !ready;
    });
    return any;
}

bool SimKernel::has_ready_events() {
    for (EpollInstance* epoll : epolls_) {
        if (!epoll->ready.empty() && epoll_ready(*epoll))
            return true;
    }
    return false;
}

FdResult SimKernel::epoll_create1(int flags) {
    const auto fields = [&](Trace::Line& l) { l.field("flags", flags); };
    if ((flags & ~EPOLL_CLOEXEC) != 0)
        return traced(world_, name_, "epoll_create1", FdResult::failure(EINVAL), fields);
    auto epoll = std::make_unique<EpollInstance>();
    epoll->kernel = this;
    EpollInstance* raw = epoll.get();
    const FdResult fd = install(File{File::Kind::epoll, 0, std::move(epoll), false, (flags & EPOLL_CLOEXEC) != 0});
    if (fd.ok())
        epolls_.push_back(raw);
    return traced(world_, name_, "epoll_create1", fd, fields);
}

VoidResult SimKernel::epoll_ctl(int epoll_fd, int op, int fd, EpollEvent event) {
    const auto fields = [&](Trace::Line& l) {
        l.field("epfd", epoll_fd)
            .field("op", op)
            .field("fd", fd)
            .field("events", event.events)
            .field("data", event.data);
    };
    const auto done = [&](VoidResult r) { return traced(world_, name_, "epoll_ctl", r, fields); };
    const auto open = [&](int d) {
        return d >= 0 && static_cast<std::size_t>(d) < files_.size() &&
               files_[static_cast<std::size_t>(d)].kind != File::Kind::none;
    };
    if (!open(epoll_fd) || !open(fd))
        return done(VoidResult::failure(EBADF));
    if (files_[static_cast<std::size_t>(epoll_fd)].kind != File::Kind::epoll || fd == epoll_fd)
        return done(VoidResult::failure(EINVAL));
    if (files_[static_cast<std::size_t>(fd)].kind != File::Kind::socket)
        return done(VoidResult::failure(EPERM));  // nested epoll is not modelled
    EpollInstance& epoll = *files_[static_cast<std::size_t>(epoll_fd)].epoll;
    Endpoint& e = *world_.endpoint(files_[static_cast<std::size_t>(fd)].endpoint);
    const auto existing = epoll.items.find(fd);
    EpollItem* item = nullptr;
    switch (op) {
        case EPOLL_CTL_ADD: {
            if (existing != epoll.items.end())
                return done(VoidResult::failure(EEXIST));
            auto created = std::make_unique<EpollItem>();
            item = created.get();
            item->owner = &epoll;
            item->fd = fd;
            item->endpoint = e.id;
            epoll.items.emplace(fd, std::move(created));
            e.watchers.push_back(item);
            break;
        }
        case EPOLL_CTL_MOD:
            if (existing == epoll.items.end())
                return done(VoidResult::failure(ENOENT));
            item = existing->second.get();
            break;
        case EPOLL_CTL_DEL:
            if (existing == epoll.items.end())
                return done(VoidResult::failure(ENOENT));
            remove_item(*existing->second);
            return done(VoidResult::success({}));
        default: return done(VoidResult::failure(EINVAL));
    }
    item->events = event.events;
    item->data = event.data;
    item->disabled = false;
    // ep_insert / ep_modify: already ready means on the ready list now.
    if ((readiness(e) & (item->events | EPOLLERR | EPOLLHUP) & event_bits) != 0 && !item->on_ready_list) {
        item->on_ready_list = true;
        epoll.ready.push_back(item);
    }
    return done(VoidResult::success({}));
}

FdResult SimKernel::epoll_wait(int epoll_fd, std::span<EpollEvent> events, int timeout_ms) {
    std::size_t reported = 0;
    const auto fields = [&](Trace::Line& l) {
        l.field("epfd", epoll_fd).field("max", static_cast<std::uint64_t>(events.size())).field("timeout", timeout_ms);
        if (reported == 0)
            return;
        std::string ready = "[";
        for (std::size_t i = 0; i < reported; ++i) {
            if (i > 0)
                ready += ',';
            ready += "[" + std::to_string(events[i].data) + ",\"" + epoll_mask_name(events[i].events) + "\"]";
        }
        ready += ']';
        l.raw("ready", ready);
    };
    const auto done = [&](FdResult r) { return traced(world_, name_, "epoll_wait", r, fields); };
    if (epoll_fd < 0 || static_cast<std::size_t>(epoll_fd) >= files_.size() ||
        files_[static_cast<std::size_t>(epoll_fd)].kind == File::Kind::none)
        return done(FdResult::failure(EBADF));
    if (files_[static_cast<std::size_t>(epoll_fd)].kind != File::Kind::epoll || events.empty())
        return done(FdResult::failure(EINVAL));
    EpollInstance& epoll = *files_[static_cast<std::size_t>(epoll_fd)].epoll;
    reported = collect(epoll, events);
    if (reported == 0 && timeout_ms != 0 && !world_.running()) {
        std::optional<Nanos> deadline;
        if (timeout_ms > 0)
            deadline = world_.now() + std::chrono::milliseconds(timeout_ms);
        world_.advance_until(deadline, [&] { return epoll_ready(epoll); });
        reported = collect(epoll, events);
    }
    return done(FdResult::success(static_cast<int>(reported)));
}

// ===========================================================================
// poll

std::uint32_t SimKernel::poll_mask(int fd) {
    if (fd < 0 || static_cast<std::size_t>(fd) >= files_.size())
        return POLLNVAL;
    File& file = files_[static_cast<std::size_t>(fd)];
    switch (file.kind) {
        case File::Kind::none: return POLLNVAL;
        case File::Kind::epoll: return epoll_ready(*file.epoll) ? static_cast<std::uint32_t>(POLLIN) : 0U;
        case File::Kind::socket: return readiness(*world_.endpoint(file.endpoint));
    }
    return POLLNVAL;
}

FdResult SimKernel::poll(std::span<pollfd> fds, int timeout_ms) {
    int ready = 0;
    const auto scan = [&] {
        ready = 0;
        for (pollfd& entry : fds) {
            entry.revents = 0;
            if (entry.fd < 0)
                continue;  // poll(2): the entry is ignored
            // POLLERR, POLLHUP and POLLNVAL are reported whether asked or not.
            const std::uint32_t asked = static_cast<std::uint16_t>(entry.events) | POLLERR | POLLHUP | POLLNVAL;
            entry.revents = static_cast<short>(poll_mask(entry.fd) & asked & (event_bits | POLLNVAL));
            if (entry.revents != 0)
                ++ready;
        }
        return ready > 0;
    };
    const auto mask_name = [](short bits) {
        const auto mask = static_cast<std::uint16_t>(bits);
        std::string name = epoll_mask_name(mask & event_bits);
        if ((mask & POLLNVAL) != 0)
            name = name == "0" ? "NVAL" : name + "|NVAL";
        return name;
    };
    const auto fields = [&](Trace::Line& l) {
        std::string set = "[";
        for (const pollfd& entry : fds) {
            if (set.size() > 1)
                set += ',';
            set += "[" + std::to_string(entry.fd) + ",\"" + mask_name(entry.events) + "\",\"" +
                   mask_name(entry.revents) + "\"]";
        }
        l.raw("fds", set + "]").field("timeout", timeout_ms);
    };
    if (fds.size() > static_cast<std::size_t>(options_.fd_limit))
        return traced(world_, name_, "poll", FdResult::failure(EINVAL), fields);  // more than RLIMIT_NOFILE
    if (!scan() && timeout_ms != 0 && !world_.running()) {
        std::optional<Nanos> deadline;
        if (timeout_ms > 0)
            deadline = world_.now() + std::chrono::milliseconds(timeout_ms);
        world_.advance_until(deadline, scan);
        scan();
    }
    return traced(world_, name_, "poll", FdResult::success(ready), fields);
}

}  // namespace eagain::sim
