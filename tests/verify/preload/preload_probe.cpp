// eagain-preload-probe: a small plain-libc program that the preload tests
// (preload_test.sh) run with and without libeagain-preload.so. Each mode
// makes a few socket calls on a loopback connection inside this one process
// (no child, nothing to leave running) and prints what it saw on stdout, one
// line, so the test compares text. Every wait is bounded (1 s).
//
//   preload-probe echo            send 11 bytes: "sent N peer K" (K: what the peer's first read got)
//   preload-probe et-eagain       edge-triggered reader: "recv EAGAIN|ok wake W recv ok N"
//   preload-probe epipe MODE      MODE nosignal|ignore|default: send, "send EPIPE" if it survives
//   preload-probe pipe            pipe + file read/write: "pipe ok file ok"
//   preload-probe two-conns       first recv on each of two connections: "a X b Y"
//   preload-probe blocked-thread  a thread blocked in recv; the main thread's echo
//                                 on another connection still completes: "other ok 5"
//   preload-probe fork            a child forked while a thread makes socket calls
//                                 makes its own and exits: "child 0" (killed by PID after 2 s)
//   preload-probe fionbio         blocking accept, then ioctl(FIONBIO): "recv X"
//   preload-probe dup             recv on a dup of a non-blocking socket: "recv X"
//   preload-probe poll            poll, poll, ppoll on a readable socket beside a
//                                 pipe: "poll X poll Y ppoll Z" (X: "ok N" or "EINTR")
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "preload-probe: %s: %s\n", what, std::strerror(errno));
    std::exit(2);
}

struct Pair {
    int listener = -1;
    int client = -1;
    int server = -1;
};

int listener_on_loopback(sockaddr_in& address) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    address = sockaddr_in{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, 16) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
        die("listen");
    return fd;
}

// A connected pair: blocking client, server made non-blocking (accept4).
Pair connected_pair(int listener, const sockaddr_in& address) {
    Pair pair;
    pair.listener = listener;
    pair.client = ::socket(AF_INET, SOCK_STREAM, 0);
    if (pair.client < 0 || ::connect(pair.client, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
        die("connect");
    pair.server = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
    if (pair.server < 0)
        die("accept4");
    return pair;
}

Pair loopback_pair() {
    sockaddr_in address{};
    return connected_pair(listener_on_loopback(address), address);
}

// Waits (bounded) until fd is readable, on an epoll set of its own.
bool readable(int fd) {
    const int epoll_fd = ::epoll_create1(0);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
    const int n = ::epoll_wait(epoll_fd, &event, 1, 1000);
    ::close(epoll_fd);
    return n == 1;
}

std::string outcome(ssize_t n) {
    return n >= 0 ? "ok " + std::to_string(n) : std::string(errno == EAGAIN ? "EAGAIN" : std::strerror(errno));
}

int echo() {
    const Pair pair = loopback_pair();
    const char message[] = "hello world";
    const ssize_t sent = ::send(pair.client, message, 11, 0);
    if (!readable(pair.server))
        die("peer never readable");
    ::usleep(50 * 1000);  // everything sent has arrived on loopback by now
    char buffer[64];
    const ssize_t got = ::recv(pair.server, buffer, sizeof buffer, 0);
    std::printf("sent %zd peer %zd\n", sent, got);
    return 0;
}

int et_eagain() {
    const Pair pair = loopback_pair();
    const int epoll_fd = ::epoll_create1(0);
    epoll_event event{};
    event.events = EPOLLIN | EPOLLET;
    event.data.fd = pair.server;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, pair.server, &event);
    if (::send(pair.client, "12345", 5, 0) != 5)
        die("send");
    if (::epoll_wait(epoll_fd, &event, 1, 1000) != 1)
        die("no first wake-up");
    char buffer[64];
    const std::string first = outcome(::recv(pair.server, buffer, sizeof buffer, 0));
    // An edge-triggered reader that met EAGAIN waits for the next edge; the
    // bytes are still there, so a kernel-faithful fault must wake it again.
    const int woke = ::epoll_wait(epoll_fd, &event, 1, 1000);
    const std::string second = outcome(::recv(pair.server, buffer, sizeof buffer, 0));
    std::printf("recv %s wake %d recv %s\n", first.c_str(), woke, second.c_str());
    return 0;
}

int epipe(const std::string& mode) {
    if (mode == "ignore")
        ::signal(SIGPIPE, SIG_IGN);
    const Pair pair = loopback_pair();
    const int flags = mode == "nosignal" ? MSG_NOSIGNAL : 0;
    const ssize_t n = ::send(pair.client, "x", 1, flags);
    std::printf("send %s\n", n == -1 && errno == EPIPE ? "EPIPE" : outcome(n).c_str());
    return 0;
}

int pipe_and_file() {
    int ends[2];
    if (::pipe(ends) != 0)
        die("pipe");
    char buffer[16] = {};
    const bool pipe_ok = ::write(ends[1], "abc", 3) == 3 && ::read(ends[0], buffer, sizeof buffer) == 3;
    char name[] = "/tmp/eagain-preload-probe-XXXXXX";
    const int file = ::mkstemp(name);
    ::unlink(name);
    const bool file_ok = file >= 0 && ::write(file, "defg", 4) == 4 && ::lseek(file, 0, SEEK_SET) == 0 &&
                         ::read(file, buffer, sizeof buffer) == 4;
    std::printf("pipe %s file %s\n", pipe_ok ? "ok" : "FAILED", file_ok ? "ok" : "FAILED");
    return 0;
}

int two_conns() {
    sockaddr_in address{};
    const int listener = listener_on_loopback(address);
    const Pair a = connected_pair(listener, address);
    const Pair b = connected_pair(listener, address);
    if (::send(a.client, "1", 1, 0) != 1 || ::send(b.client, "2", 1, 0) != 1 || !readable(a.server) ||
        !readable(b.server))
        die("send");
    char buffer[8];
    const std::string first_a = outcome(::recv(a.server, buffer, sizeof buffer, 0));
    const std::string first_b = outcome(::recv(b.server, buffer, sizeof buffer, 0));
    std::printf("a %s b %s\n", first_a.c_str(), first_b.c_str());
    return 0;
}

int blocked_thread() {
    sockaddr_in address{};
    const int listener = listener_on_loopback(address);
    const Pair blocked = connected_pair(listener, address);
    const Pair other = connected_pair(listener, address);
    ::fcntl(blocked.server, F_SETFL, 0);  // blocking: its recv waits for data
    std::thread reader([&] {
        char byte = 0;
        (void)::recv(blocked.server, &byte, 1, 0);
    });
    ::usleep(50 * 1000);  // the reader is in recv by now
    char buffer[8];
    std::string result = "FAILED";
    if (::send(other.client, "12345", 5, 0) == 5 && readable(other.server))
        result = outcome(::recv(other.server, buffer, sizeof buffer, 0));
    (void)::send(blocked.client, "x", 1, 0);  // lets the reader go
    reader.join();
    std::printf("other %s\n", result.c_str());
    return 0;
}

int fork_while_busy() {
    const Pair pair = loopback_pair();
    std::atomic<bool> stop{false};
    std::thread busy([&] {
        char byte = 0;
        while (!stop.load())
            (void)::recv(pair.server, &byte, 1, 0);  // EAGAIN, through the shim's lock
    });
    ::usleep(10 * 1000);
    int child_status = -1;
    for (int round = 0; round < 20 && child_status == -1; ++round) {
        const pid_t child = ::fork();
        if (child == 0) {
            const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            ::_exit(fd >= 0 && ::close(fd) == 0 ? 0 : 1);
        }
        int status = 0;
        pid_t done = 0;
        for (int waits = 0; waits < 200 && (done = ::waitpid(child, &status, WNOHANG)) == 0; ++waits)
            ::usleep(10 * 1000);
        if (done == 0) {
            ::kill(child, SIGKILL);  // a deadlocked child: ended by its PID
            ::waitpid(child, &status, 0);
            child_status = 99;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
            child_status = WEXITSTATUS(status);
        }
    }
    stop.store(true);
    busy.join();
    std::printf("child %d\n", child_status == -1 ? 0 : child_status);
    return 0;
}

int fionbio() {
    sockaddr_in address{};
    const int listener = listener_on_loopback(address);
    const int client = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(client, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
        die("connect");
    const int server = ::accept(listener, nullptr, nullptr);
    int on = 1;
    if (server < 0 || ::ioctl(server, FIONBIO, &on) != 0)
        die("FIONBIO");
    if (::send(client, "1", 1, 0) != 1 || !readable(server))
        die("send");
    char buffer[8];
    std::printf("recv %s\n", outcome(::recv(server, buffer, sizeof buffer, 0)).c_str());
    return 0;
}

int dup_of_socket() {
    const Pair pair = loopback_pair();
    const int copy = ::dup(pair.server);
    if (copy < 0 || ::send(pair.client, "1", 1, 0) != 1 || !readable(copy))
        die("dup");
    char buffer[8];
    std::printf("recv %s\n", outcome(::recv(copy, buffer, sizeof buffer, 0)).c_str());
    return 0;
}

std::string poll_outcome(int n) {
    return n == -1 && errno == EINTR ? std::string("EINTR") : outcome(n);
}

int poll_socket_and_pipe() {
    const Pair pair = loopback_pair();
    int ends[2];
    if (::pipe(ends) != 0 || ::send(pair.client, "1", 1, 0) != 1 || !readable(pair.server))
        die("poll set-up");
    pollfd set[2] = {{ends[0], POLLIN, 0}, {pair.server, POLLIN, 0}};
    const std::string first = poll_outcome(::poll(set, 2, 1000));
    const std::string second = poll_outcome(::poll(set, 2, 1000));
    const timespec second_long{1, 0};
    const std::string third = poll_outcome(::ppoll(set, 2, &second_long, nullptr));
    std::printf("poll %s poll %s ppoll %s\n", first.c_str(), second.c_str(), third.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "echo")
        return echo();
    if (mode == "et-eagain")
        return et_eagain();
    if (mode == "epipe" && argc > 2)
        return epipe(argv[2]);
    if (mode == "pipe")
        return pipe_and_file();
    if (mode == "two-conns")
        return two_conns();
    if (mode == "blocked-thread")
        return blocked_thread();
    if (mode == "fork")
        return fork_while_busy();
    if (mode == "fionbio")
        return fionbio();
    if (mode == "dup")
        return dup_of_socket();
    if (mode == "poll")
        return poll_socket_and_pipe();
    std::fprintf(stderr,
                 "usage: preload-probe echo|et-eagain|epipe MODE|pipe|two-conns|blocked-thread|fork|fionbio|dup|poll\n");
    return 2;
}
