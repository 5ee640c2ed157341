// eagain-baseline-echo: the plainest correct epoll echo server, the yardstick
// bench/echo_bench.sh holds eagain-echo against. Deliberately no eagain code:
// plain libc, one thread, level-triggered epoll, non-blocking sockets.
//
//   eagain-baseline-echo [--port P]      (default 0: the kernel picks one)
//
// It echoes bytes, not frames: every byte read is written back in order, which
// is a valid frame echo because frames come back unchanged. Per connection:
//   - one recv() of at most read_chunk_bytes per readiness event, so a busy
//     connection cannot starve the others;
//   - when nothing is pending the bytes are sent straight from the read
//     buffer; whatever send() does not take goes to the connection's output
//     buffer, and EPOLLOUT is on only while that buffer is non-empty;
//   - reading stops while more than pending_output_max_bytes wait to be sent
//     (a peer that sends and never reads cannot grow our memory), and resumes
//     once the buffer drains below it;
//   - after the peer's FIN the pending output is still flushed, then closed.
// SIGTERM and SIGINT arrive through a signalfd in the same epoll set and stop
// the loop; the server then closes every socket and exits 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

// One recv() per readiness event reads at most this much.
constexpr std::size_t read_chunk_bytes = 64U * 1024U;
// Reading pauses above this much unsent output; so a connection never holds
// more than this plus one read chunk.
constexpr std::size_t pending_output_max_bytes = 4U * 1024U * 1024U;
// Connections beyond this are accepted and closed at once.
constexpr std::size_t connections_max = 10000;
// accept() calls per wakeup of the listening socket (level-triggered: the
// rest wait for the next wakeup instead of starving established connections).
constexpr int accepts_per_wakeup_max = 64;
constexpr int events_per_wait_max = 256;

struct Connection {
    int fd = -1;
    std::vector<char> output;  // bytes read but not yet sent: output[output_sent..]
    std::size_t output_sent = 0;
    bool peer_finished = false;    // recv() returned 0; flush, then close
    std::uint32_t registered = 0;  // the epoll interest currently set for fd

    std::size_t pending_bytes() const { return output.size() - output_sent; }
};

void die(const char* what) {
    std::fprintf(stderr, "eagain-baseline-echo: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: eagain-baseline-echo [--port P]   (P in 0..65535; 0 picks a free port)\n");
    std::exit(2);
}

std::uint16_t parse_port(int argc, char** argv) {
    std::uint16_t port = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg != "--port" || i + 1 >= argc)
            usage();
        const std::string_view value = argv[++i];
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
        if (ec != std::errc{} || end != value.data() + value.size())
            usage();
    }
    return port;
}

int listen_on_loopback(std::uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        die("socket");
    const int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1)
        die("setsockopt(SO_REUSEADDR)");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(0x7f000001U);  // 127.0.0.1
    if (bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == -1)
        die("bind");
    if (listen(fd, SOMAXCONN) == -1)
        die("listen");
    return fd;
}

std::uint16_t bound_port(int fd) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == -1)
        die("getsockname");
    return ntohs(address.sin_port);
}

class Server {
public:
    Server(int epoll_fd, int listen_fd) : epoll_fd_(epoll_fd), listen_fd_(listen_fd) {}
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    ~Server() {
        for (auto& [fd, connection] : connections_)
            close(fd);
    }

    void on_listener_readable() {
        for (int i = 0; i < accepts_per_wakeup_max; ++i) {
            const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd == -1) {
                // EAGAIN: queue empty. ECONNABORTED, EMFILE, ...: give up for
                // this wakeup; level-triggered epoll reports the rest again.
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    std::fprintf(stderr, "eagain-baseline-echo: accept4: %s\n", std::strerror(errno));
                return;
            }
            if (connections_.size() >= connections_max) {
                close(fd);
                continue;
            }
            const int one = 1;
            // Echo latency, not Nagle's coalescing, is what the bench measures.
            if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1) {
                std::fprintf(stderr, "eagain-baseline-echo: setsockopt(TCP_NODELAY): %s\n", std::strerror(errno));
                close(fd);
                continue;
            }
            Connection& connection = connections_[fd];
            connection.fd = fd;
            set_interest(connection, EPOLLIN, EPOLL_CTL_ADD);
        }
    }

    void on_connection_event(int fd, std::uint32_t events) {
        const auto found = connections_.find(fd);
        if (found == connections_.end())
            return;  // closed earlier in this batch of events
        Connection& connection = found->second;
        // EPOLLERR/EPOLLHUP count as both readable and writable: the recv()
        // or send() below is what reports the error, or the end of stream.
        const bool failed = (events & (EPOLLERR | EPOLLHUP)) != 0;
        bool open = true;
        if ((events & EPOLLIN) != 0 || (failed && can_read(connection)))
            open = read_and_echo(connection);
        if (open && ((events & EPOLLOUT) != 0 || failed))
            open = flush(connection);
        if (open)
            open = update_interest(connection);
        if (!open) {
            close(fd);  // also removes fd from the epoll set
            connections_.erase(found);
        }
    }

private:
    static bool can_read(const Connection& connection) {
        return !connection.peer_finished && connection.pending_bytes() <= pending_output_max_bytes;
    }

    // Returns false when the connection is done with (error or reset).
    bool read_and_echo(Connection& connection) {
        if (!can_read(connection))
            return true;
        const ssize_t received = recv(connection.fd, read_buffer_.data(), read_buffer_.size(), 0);
        if (received == 0) {
            connection.peer_finished = true;
            return true;
        }
        if (received < 0) {
            // EAGAIN: a spurious wakeup. EINTR: level-triggered epoll says it again.
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        }
        const auto length = static_cast<std::size_t>(received);
        std::size_t sent = 0;
        if (connection.pending_bytes() == 0) {
            // Nothing queued, so order allows sending straight from read_buffer_.
            const ssize_t rc = send_some(connection.fd, read_buffer_.data(), length);
            if (rc < 0)
                return false;
            sent = static_cast<std::size_t>(rc);
        }
        append_output(connection, read_buffer_.data() + sent, length - sent);
        return true;
    }

    static void append_output(Connection& connection, const char* data, std::size_t length) {
        if (length == 0)
            return;
        // Drop the sent prefix before growing, so the buffer holds at most the
        // pending bytes plus one chunk.
        if (connection.output_sent > 0) {
            connection.output.erase(connection.output.begin(),
                                    connection.output.begin() + static_cast<std::ptrdiff_t>(connection.output_sent));
            connection.output_sent = 0;
        }
        connection.output.insert(connection.output.end(), data, data + length);
    }

    // Sends what the kernel takes now. Returns bytes sent (0 on EAGAIN/EINTR)
    // or -1 when the connection is broken (EPIPE, ECONNRESET, ...).
    static ssize_t send_some(int fd, const char* data, std::size_t length) {
        // MSG_NOSIGNAL: a peer that went away yields EPIPE, not a SIGPIPE.
        const ssize_t rc = send(fd, data, length, MSG_NOSIGNAL);
        if (rc >= 0)
            return rc;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        return -1;
    }

    // Returns false when the connection is broken.
    static bool flush(Connection& connection) {
        // Bounded: the output buffer is finite and each round either sends
        // something or stops.
        while (connection.pending_bytes() > 0) {
            const ssize_t rc =
                send_some(connection.fd, connection.output.data() + connection.output_sent, connection.pending_bytes());
            if (rc < 0)
                return false;
            if (rc == 0)
                return true;  // kernel buffer full; EPOLLOUT tells us when to go on
            connection.output_sent += static_cast<std::size_t>(rc);
        }
        connection.output.clear();
        connection.output_sent = 0;
        if (connection.output.capacity() > read_chunk_bytes)
            connection.output.shrink_to_fit();  // an idle connection keeps no large buffer
        return true;
    }

    // EPOLLIN while we may read, EPOLLOUT while output is pending. Returns
    // false when neither remains: the peer finished and everything was sent.
    bool update_interest(Connection& connection) {
        std::uint32_t wanted = 0;
        if (can_read(connection))
            wanted |= EPOLLIN;
        if (connection.pending_bytes() > 0)
            wanted |= EPOLLOUT;
        if (wanted == 0)
            return false;
        if (wanted != connection.registered)
            set_interest(connection, wanted, EPOLL_CTL_MOD);
        return true;
    }

    void set_interest(Connection& connection, std::uint32_t events, int operation) {
        epoll_event event{};
        event.events = events;
        event.data.fd = connection.fd;
        if (epoll_ctl(epoll_fd_, operation, connection.fd, &event) == -1)
            die("epoll_ctl");
        connection.registered = events;
    }

    int epoll_fd_;
    int listen_fd_;
    std::unordered_map<int, Connection> connections_;
    std::array<char, read_chunk_bytes> read_buffer_{};
};

// Blocks SIGTERM and SIGINT and returns a signalfd that reports them.
int stop_signal_fd() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &signals, nullptr) == -1)
        die("sigprocmask");
    const int fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd == -1)
        die("signalfd");
    return fd;
}

void add_readable(int epoll_fd, int fd) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) == -1)
        die("epoll_ctl");
}

}  // namespace

int main(int argc, char** argv) {
    const std::uint16_t requested_port = parse_port(argc, argv);
    // Before any socket exists, so no signal is ever delivered the default way.
    const int signal_fd = stop_signal_fd();
    const int listen_fd = listen_on_loopback(requested_port);
    const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd == -1)
        die("epoll_create1");
    add_readable(epoll_fd, listen_fd);
    add_readable(epoll_fd, signal_fd);

    std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(bound_port(listen_fd)));
    std::fflush(stdout);

    int stop_signal = 0;
    {
        // A heap-allocated Server: it holds the 64 KiB read buffer.
        auto server = std::make_unique<Server>(epoll_fd, listen_fd);
        std::array<epoll_event, events_per_wait_max> events{};
        while (stop_signal == 0) {
            const int ready = epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), -1);
            if (ready == -1) {
                if (errno == EINTR)
                    continue;  // e.g. resumed after SIGSTOP
                die("epoll_wait");
            }
            for (int i = 0; i < ready; ++i) {
                const epoll_event event = events[static_cast<std::size_t>(i)];  // a copy: epoll_event is packed
                if (event.data.fd == signal_fd) {
                    signalfd_siginfo info{};
                    if (read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
                        stop_signal = static_cast<int>(info.ssi_signo);
                } else if (event.data.fd == listen_fd) {
                    server->on_listener_readable();
                } else {
                    server->on_connection_event(event.data.fd, event.events);
                }
            }
        }
    }  // ~Server closes every connection
    close(listen_fd);
    close(epoll_fd);
    close(signal_fd);
    std::fprintf(stderr, "eagain-baseline-echo: stopped by %s\n", strsignal(stop_signal));
    return 0;
}
