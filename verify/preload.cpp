// libeagain-preload.so: an LD_PRELOAD shim that routes an unmodified
// program's libc socket calls on TCP fds (AF_INET/AF_INET6 SOCK_STREAM)
// through one process-wide FaultySys (RuleCounting::per_fd) over RealSys
// (real_sys.h), so faults from a rules file hit the program on the real
// kernel with the kernel's contract kept. Files, pipes, AF_UNIX sockets,
// stdio and every call not listed below go straight to libc.
//
// Environment (docs: issue 13, BRIEF13.md):
//   EAGAIN_FAULTS=<file>       `fault target ...` lines (harness parse_fault_file);
//                              a bad file: its errors on stderr, _exit(125) at load.
//   EAGAIN_SEED=<n>            FaultySys seed (default 1).
//   EAGAIN_PRELOAD_LOG=<file>  JSON lines, O_APPEND, one write(2) each:
//                              loaded, tcp-fd, fault, sigpipe.
//
// Which fd is TCP: seen created by socket/accept/accept4, or asked lazily
// with getsockopt(SO_DOMAIN/SO_TYPE) the first time the program uses an fd
// the shim did not see created; cached per fd, forgotten on close.
//
// Call mapping (the Sys name is what rules name): read/__read_chk -> recv,
// write -> send, sendto -> send, recvfrom/__recv_chk/__recvfrom_chk ->
// recv, recvmsg -> recv (one iovec) or readv (several), accept -> accept4,
// epoll_create -> epoll_create1, epoll_pwait -> epoll_wait. RealSys makes
// the program's own call (real_sys.h).
//
// Locking: one mutex around FaultySys, released around every real call
// (RealSys), so a blocked recv or epoll_wait holds up no other thread;
// pthread_atfork takes it around fork so a child starts with it free.
// A transfer in a direction no rule names (no send/writev/sendmsg rule, or
// no recv/readv rule) skips FaultySys and the lock: RealSys makes it
// directly, which is most of a program's calls in most checks.
// poll/ppoll/__poll_chk go through FaultySys when a TCP socket is in the
// set, so a rule can interrupt the wait with EINTR; they are level-triggered,
// so the kernel's readiness is all they need otherwise. select/pselect pass
// straight through (counted as calls seen).
#include "core/faulty_sys.h"
#include "harness/scenario.h"
#include "verify/real_sys.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>
#include <type_traits>
#include <vector>

namespace eagain::preload {
namespace {

// --- the process's FaultySys --------------------------------------------------

std::atomic<bool> g_ready{false};
alignas(RealSys) unsigned char g_real_storage[sizeof(RealSys)];
alignas(FaultySys) unsigned char g_faulty_storage[sizeof(FaultySys)];
// Never destroyed: atexit handlers and other threads may still make socket
// calls while the process exits.
FaultySys& faulty() noexcept {
    return *std::launder(reinterpret_cast<FaultySys*>(g_faulty_storage));
}
RealSys& real_sys() noexcept {
    return *std::launder(reinterpret_cast<RealSys*>(g_real_storage));
}
std::atomic<std::uint64_t> g_socket_calls{0};
// Whether some rule names a call that moves bytes in that direction (send,
// writev, sendmsg; recv, readv). Set once at load, before g_ready.
bool g_send_rules = false;
bool g_receive_rules = false;
int g_log_fd = -1;
[[gnu::tls_model("initial-exec")]] thread_local bool t_injected_epipe = false;

// --- the log ------------------------------------------------------------------

void log_line(const char* format, ...) __attribute__((format(printf, 1, 2)));
void log_line(const char* format, ...) {
    if (g_log_fd < 0)
        return;
    char line[512];
    int length = std::snprintf(line, sizeof line, "{\"pid\":%d,", static_cast<int>(::getpid()));
    va_list arguments;
    va_start(arguments, format);
    length += std::vsnprintf(line + length, sizeof line - static_cast<std::size_t>(length) - 2, format, arguments);
    va_end(arguments);
    length = std::min<int>(length, static_cast<int>(sizeof line) - 2);
    line[length++] = '}';
    line[length++] = '\n';
    const int saved = errno;
    (void)real_libc().write(g_log_fd, line, static_cast<std::size_t>(length));  // one write(2): lines never interleave
    errno = saved;
}

void log_fault(const FaultEvent& event) {
    if (event.fault == FaultKind::epipe)
        t_injected_epipe = true;
    const std::string call(to_string(event.call));
    log_line(R"("event":"fault","call":"%s","fd":%d,"call_number":%)" PRIu64 R"(,"fault":"%s")", call.c_str(),
             event.fd, event.call_number, describe(event).c_str());
}

// --- which fds are TCP --------------------------------------------------------

enum class FdKind : std::uint8_t { unknown, tcp, epoll, other };
constexpr int max_cached_fd = 1 << 16;  // above it, asked every time
std::atomic<FdKind> g_fd_kinds[max_cached_fd];

void set_kind(int fd, FdKind kind) noexcept {
    if (fd >= 0 && fd < max_cached_fd)
        g_fd_kinds[fd].store(kind, std::memory_order_relaxed);
}

bool is_tcp_socket(int domain, int type) noexcept {
    return (domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_STREAM;
}

FdKind ask_kind(int fd) noexcept {
    const int saved = errno;
    int domain = 0;
    int type = 0;
    socklen_t length = sizeof domain;
    const bool tcp = real_libc().getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 &&
                     (length = sizeof type, real_libc().getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0) &&
                     is_tcp_socket(domain, type);
    errno = saved;
    return tcp ? FdKind::tcp : FdKind::other;
}

void learn_nonblocking(int fd);

FdKind kind_of(int fd) noexcept {
    if (fd < 0)
        return FdKind::other;
    if (fd < max_cached_fd) {
        const FdKind known = g_fd_kinds[fd].load(std::memory_order_relaxed);
        if (known != FdKind::unknown)
            return known;
    }
    const FdKind kind = ask_kind(fd);
    set_kind(fd, kind);
    // Inherited or made before the shim: FaultySys counts it blocking until
    // an F_GETFL says otherwise, so it gets one.
    if (kind == FdKind::tcp)
        learn_nonblocking(fd);
    return kind;
}

// What the shim knows of fd without asking the kernel again (above the
// cache, it asks: a close must not leave FaultySys state behind).
FdKind cached_kind(int fd) noexcept {
    if (fd < 0)
        return FdKind::other;
    if (fd < max_cached_fd)
        return g_fd_kinds[fd].load(std::memory_order_relaxed);
    return ask_kind(fd);
}

// Routed only when the shim is loaded and this thread is not already
// inside it (a signal handler interrupting the shim goes straight to libc).
bool routing() noexcept {
    return g_ready.load(std::memory_order_acquire) && !holding_faulty_lock();
}
bool routed_fd(int fd) noexcept {
    return routing() && kind_of(fd) == FdKind::tcp;
}

// --- one routed call ------------------------------------------------------------

// Holds the lock for one FaultySys call, with the call the program made.
class Routed {
public:
    explicit Routed(const PendingCall& call) : saved_errno_(errno) {
        g_socket_calls.fetch_add(1, std::memory_order_relaxed);
        t_injected_epipe = false;
        faulty_lock().lock();
        set_holding_faulty_lock(true);
        pending_call() = call;
    }
    ~Routed() {
        set_holding_faulty_lock(false);
        faulty_lock().unlock();
    }
    Routed(const Routed&) = delete;
    Routed& operator=(const Routed&) = delete;
    // The libc return value, errno set as libc would (kept on success).
    template <class T>
    auto result(const SysResult<T>& r) const noexcept {
        errno = r.ok() ? saved_errno_ : r.error;
        if constexpr (std::is_same_v<T, std::size_t>)
            return r.ok() ? static_cast<ssize_t>(r.value) : ssize_t{-1};
        else if constexpr (std::is_same_v<T, int>)
            return r.ok() ? r.value : -1;
        else
            return r.ok() ? 0 : -1;
    }

private:
    int saved_errno_;
};

// Runs f(faulty()) under the lock; the libc-style result.
template <class F>
auto through_faulty(const PendingCall& call, F f) {
    const Routed routed(call);
    return routed.result(f(faulty()));
}

// A transfer no rule could touch (none names a call of its direction):
// FaultySys would only count it, so RealSys makes it without the lock. Its
// byte offsets matter only to rules of that direction, and it owes no edge.
template <class F>
auto through_faulty_if(bool ruled, const PendingCall& call, F f) {
    if (ruled)
        return through_faulty(call, f);
    g_socket_calls.fetch_add(1, std::memory_order_relaxed);
    t_injected_epipe = false;
    const int saved_errno = errno;
    pending_call() = call;
    const SizeResult r = f(real_sys());
    errno = r.ok() ? saved_errno : r.error;
    return r.ok() ? static_cast<ssize_t>(r.value) : ssize_t{-1};
}

void learn_nonblocking(int fd) {
    if (!routing())
        return;
    (void)through_faulty(PendingCall{}, [&](FaultySys& sys) { return sys.fcntl(fd, F_GETFL, 0); });
}

// The kernel raises SIGPIPE on the calling thread when a send meets EPIPE
// without MSG_NOSIGNAL; for an injected EPIPE the shim does the same, after
// the lock is released (a handler may send).
ssize_t with_sigpipe(ssize_t rc, int fd, int flags) {
    if (rc == -1 && errno == EPIPE && t_injected_epipe && (flags & MSG_NOSIGNAL) == 0) {
        const int saved = errno;
        log_line(R"("event":"sigpipe","fd":%d)", fd);
        ::pthread_kill(::pthread_self(), SIGPIPE);
        errno = saved;
    }
    return rc;
}

int new_tcp_fd(int fd, const char* how) {
    if (fd >= 0) {
        set_kind(fd, FdKind::tcp);
        log_line(R"("event":"tcp-fd","fd":%d,"how":"%s")", fd, how);
    }
    return fd;
}

std::span<std::uint8_t> bytes(void* data, size_t length) noexcept {
    return {static_cast<std::uint8_t*>(data), length};
}
std::span<const std::uint8_t> bytes(const void* data, size_t length) noexcept {
    return {static_cast<const std::uint8_t*>(data), length};
}
bool routable_iov(int count) noexcept {
    return count >= 0 && count <= IOV_MAX;
}

// --- the routed calls, shared by the symbols below -----------------------------

ssize_t routed_receive(int fd, void* buffer, size_t length, int flags, PendingCall call) {
    return through_faulty_if(g_receive_rules, call,
                             [&](Sys& sys) { return sys.recv(fd, bytes(buffer, length), flags); });
}

ssize_t routed_send(int fd, const void* data, size_t length, int flags, PendingCall call) {
    const ssize_t rc =
        through_faulty_if(g_send_rules, call, [&](Sys& sys) { return sys.send(fd, bytes(data, length), flags); });
    return with_sigpipe(rc, fd, flags);
}

int routed_accept(int fd, sockaddr* address, socklen_t* length, int flags, Original original, const char* how) {
    PendingCall call;
    call.original = original;
    call.from = address;
    call.from_length = length;
    return new_tcp_fd(through_faulty(call, [&](FaultySys& sys) { return sys.accept4(fd, nullptr, flags); }), how);
}

int routed_fcntl(int fd, int command, void* argument, int (*real)(int, int, ...)) {
    if ((command == F_GETFL || command == F_SETFL) && routed_fd(fd)) {
        const auto flags = static_cast<int>(reinterpret_cast<std::intptr_t>(argument));
        return through_faulty(PendingCall{}, [&](FaultySys& sys) { return sys.fcntl(fd, command, flags); });
    }
    const int rc = real(fd, command, argument);
    if (rc >= 0 && (command == F_DUPFD || command == F_DUPFD_CLOEXEC))
        set_kind(rc, FdKind::unknown);  // a new fd: asked when first used
    return rc;
}

int routed_epoll_wait(int epoll_fd, epoll_event* events, int max_events, int timeout_ms, const sigset_t* mask,
                      bool with_mask) {
    // Above max_routed_events (no real program asks that many at once) the
    // call goes straight to libc rather than allocate without bound.
    constexpr int max_routed_events = 1 << 16;
    if (!routing() || max_events <= 0 || max_events > max_routed_events || events == nullptr) {
        return with_mask ? real_libc().epoll_pwait(epoll_fd, events, max_events, timeout_ms, mask)
                         : real_libc().epoll_wait(epoll_fd, events, max_events, timeout_ms);
    }
    PendingCall call;
    call.original = with_mask ? Original::epoll_pwait : Original::same;
    call.wait_events = events;
    call.sigmask = mask;
    // FaultySys fills EpollEvents; RealSys uses the program's array as the
    // kernel's buffer, so it is converted back here.
    static thread_local std::vector<EpollEvent> converted;
    converted.resize(static_cast<std::size_t>(max_events));
    const int n = through_faulty(call, [&](FaultySys& sys) { return sys.epoll_wait(epoll_fd, converted, timeout_ms); });
    for (int i = 0; i < n; ++i) {
        const EpollEvent& event = converted[static_cast<std::size_t>(i)];
        events[i].events = event.events;
        events[i].data.u64 = event.data;
    }
    return n;
}

bool polls_tcp(const pollfd* fds, nfds_t count) noexcept {
    if (!routing() || fds == nullptr)
        return false;
    for (nfds_t i = 0; i < count; ++i)
        if (fds[i].fd >= 0 && kind_of(fds[i].fd) == FdKind::tcp)
            return true;
    return false;
}

int routed_poll(pollfd* fds, nfds_t count, int timeout_ms, const PendingCall& call) {
    return through_faulty(call, [&](FaultySys& sys) { return sys.poll(std::span<pollfd>(fds, count), timeout_ms); });
}

// --- loading ----------------------------------------------------------------------

[[noreturn]] void refuse(const std::string& message) {
    const std::string line = "eagain-preload: " + message + "\n";
    (void)real_libc().write(STDERR_FILENO, line.data(), line.size());
    ::_exit(125);
}

std::vector<FaultRule> read_rules() {
    const char* file = std::getenv("EAGAIN_FAULTS");
    if (file == nullptr || *file == '\0')
        return {};
    std::ifstream in(file, std::ios::binary);
    if (!in)
        refuse(std::string("cannot read EAGAIN_FAULTS file ") + file + ": " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    const harness::FaultFileResult parsed = harness::parse_fault_file(text.str(), file);
    if (!parsed.ok()) {
        std::string message;
        for (const std::string& error : parsed.errors)
            message += error + "\n";
        if (parsed.errors_not_listed > 0)
            message += "... and " + std::to_string(parsed.errors_not_listed) + " more problems\n";
        const std::string all = message;
        (void)real_libc().write(STDERR_FILENO, all.data(), all.size());
        ::_exit(125);
    }
    return parsed.rules;
}

std::uint64_t read_seed() {
    const char* text = std::getenv("EAGAIN_SEED");
    if (text == nullptr || *text == '\0')
        return 1;
    char* end = nullptr;
    errno = 0;
    const unsigned long long seed = std::strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || *text == '-')
        refuse(std::string("EAGAIN_SEED is not a whole number: ") + text);
    return seed;
}

void open_log() {
    const char* file = std::getenv("EAGAIN_PRELOAD_LOG");
    if (file == nullptr || *file == '\0')
        return;
    g_log_fd = ::open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (g_log_fd < 0)
        refuse(std::string("cannot open EAGAIN_PRELOAD_LOG file ") + file + ": " + std::strerror(errno));
}

void lock_for_fork() {
    faulty_lock().lock();
}
void unlock_after_fork() {
    faulty_lock().unlock();
}

__attribute__((constructor)) void load() {
    const int saved = errno;
    (void)real_libc();
    open_log();
    const std::vector<FaultRule> rules = read_rules();
    auto* real = new (g_real_storage) RealSys();
    auto* sys = new (g_faulty_storage) FaultySys(*real, read_seed(), RuleCounting::per_fd);
    for (const FaultRule& rule : rules) {
        if (const RuleError error = sys->add_rule(rule); error != RuleError::none)
            refuse(std::string("a rule FaultySys refuses: ") + std::string(to_string(error)));
        g_send_rules = g_send_rules || rule.call == SysCall::send || rule.call == SysCall::writev ||
                       rule.call == SysCall::sendmsg;
        g_receive_rules = g_receive_rules || rule.call == SysCall::recv || rule.call == SysCall::readv;
    }
    sys->set_observer(log_fault);
    ::pthread_atfork(lock_for_fork, unlock_after_fork, unlock_after_fork);
    log_line(R"("event":"loaded","rules":%zu)", rules.size());
    g_ready.store(true, std::memory_order_release);
    errno = saved;
}

}  // namespace

// Socket calls the shim routed (for a caller that dlopens the shim, e.g. the
// benchmark): 0 means it saw none of the program's socket calls.
extern "C" __attribute__((visibility("default"))) std::uint64_t eagain_preload_socket_calls() noexcept {
    return g_socket_calls.load(std::memory_order_relaxed);
}

}  // namespace eagain::preload

// =============================================================================
// The interposed symbols: each one line of routing, the rest in the helpers.

using namespace eagain;
using namespace eagain::preload;

namespace {
void count_call() noexcept {
    g_socket_calls.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

// Built with -fvisibility=hidden: only these are exported.
#pragma GCC visibility push(default)
extern "C" {

int socket(int domain, int type, int protocol) noexcept {
    if (!routing() || !is_tcp_socket(domain, type)) {
        const int fd = real_libc().socket(domain, type, protocol);
        set_kind(fd, is_tcp_socket(domain, type) ? FdKind::unknown : FdKind::other);
        return fd;
    }
    return new_tcp_fd(
        through_faulty(PendingCall{}, [&](FaultySys& sys) { return sys.socket(domain, type, protocol); }), "socket");
}

int accept(int fd, sockaddr* address, socklen_t* length) {
    if (!routed_fd(fd)) {
        const int accepted = real_libc().accept(fd, address, length);
        set_kind(accepted, routing() ? FdKind::other : FdKind::unknown);
        return accepted;
    }
    return routed_accept(fd, address, length, 0, Original::accept, "accept");
}

int accept4(int fd, sockaddr* address, socklen_t* length, int flags) {
    if (!routed_fd(fd)) {
        const int accepted = real_libc().accept4(fd, address, length, flags);
        set_kind(accepted, routing() ? FdKind::other : FdKind::unknown);
        return accepted;
    }
    return routed_accept(fd, address, length, flags, Original::same, "accept4");
}

int connect(int fd, const sockaddr* address, socklen_t length) {
    if (!routed_fd(fd))
        return real_libc().connect(fd, address, length);
    PendingCall call;
    call.to = address;
    call.to_length = length;
    return through_faulty(call, [&](FaultySys& sys) { return sys.connect(fd, SockAddr{}); });
}

int close(int fd) {
    const FdKind kind = routing() ? cached_kind(fd) : FdKind::unknown;
    int rc = 0;
    if (kind == FdKind::tcp || kind == FdKind::epoll)
        rc = through_faulty(PendingCall{}, [&](FaultySys& sys) { return sys.close(fd); });
    else
        rc = real_libc().close(fd);
    // After the close: a number another thread got meanwhile is just asked again.
    set_kind(fd, FdKind::unknown);
    return rc;
}

int shutdown(int fd, int how) noexcept {
    if (!routed_fd(fd))
        return real_libc().shutdown(fd, how);
    return through_faulty(PendingCall{}, [&](FaultySys& sys) { return sys.shutdown(fd, how); });
}

ssize_t read(int fd, void* buffer, size_t length) {
    if (!routed_fd(fd))
        return real_libc().read(fd, buffer, length);
    return routed_receive(fd, buffer, length, 0, PendingCall{Original::read});
}

ssize_t __read_chk(int fd, void* buffer, size_t length, size_t buffer_length) {
    if (!routed_fd(fd) || length > buffer_length)
        return real_libc().read_chk(fd, buffer, length, buffer_length);
    return routed_receive(fd, buffer, length, 0, PendingCall{Original::read});
}

ssize_t write(int fd, const void* data, size_t length) {
    if (!routed_fd(fd))
        return real_libc().write(fd, data, length);
    return routed_send(fd, data, length, 0, PendingCall{Original::write});
}

ssize_t readv(int fd, const iovec* buffers, int count) {
    if (!routed_fd(fd) || !routable_iov(count))
        return real_libc().readv(fd, buffers, count);
    const std::span<const iovec> all(buffers, static_cast<std::size_t>(count));
    return through_faulty_if(g_receive_rules, PendingCall{}, [&](Sys& sys) { return sys.readv(fd, all); });
}

ssize_t writev(int fd, const iovec* buffers, int count) {
    if (!routed_fd(fd) || !routable_iov(count))
        return real_libc().writev(fd, buffers, count);
    const std::span<const iovec> all(buffers, static_cast<std::size_t>(count));
    return with_sigpipe(through_faulty_if(g_send_rules, PendingCall{}, [&](Sys& sys) { return sys.writev(fd, all); }),
                        fd, 0);
}

ssize_t send(int fd, const void* data, size_t length, int flags) {
    if (!routed_fd(fd))
        return real_libc().send(fd, data, length, flags);
    return routed_send(fd, data, length, flags, PendingCall{});
}

ssize_t sendto(int fd, const void* data, size_t length, int flags, const sockaddr* address, socklen_t address_length) {
    if (!routed_fd(fd))
        return real_libc().sendto(fd, data, length, flags, address, address_length);
    PendingCall call{Original::sendto};
    call.to = address;
    call.to_length = address_length;
    return routed_send(fd, data, length, flags, call);
}

ssize_t sendmsg(int fd, const msghdr* message, int flags) {
    if (!routed_fd(fd) || message == nullptr || message->msg_iovlen > IOV_MAX)
        return real_libc().sendmsg(fd, message, flags);
    PendingCall call{Original::sendmsg};
    call.send_message = message;
    const std::span<const iovec> all(message->msg_iov, message->msg_iovlen);
    return with_sigpipe(through_faulty_if(g_send_rules, call, [&](Sys& sys) { return sys.sendmsg(fd, all, flags); }),
                        fd, flags);
}

ssize_t recv(int fd, void* buffer, size_t length, int flags) {
    if (!routed_fd(fd))
        return real_libc().recv(fd, buffer, length, flags);
    return routed_receive(fd, buffer, length, flags, PendingCall{});
}

ssize_t __recv_chk(int fd, void* buffer, size_t length, size_t buffer_length, int flags) {
    if (!routed_fd(fd) || length > buffer_length)
        return real_libc().recv_chk(fd, buffer, length, buffer_length, flags);
    return routed_receive(fd, buffer, length, flags, PendingCall{});
}

ssize_t recvfrom(int fd, void* buffer, size_t length, int flags, sockaddr* address, socklen_t* address_length) {
    if (!routed_fd(fd))
        return real_libc().recvfrom(fd, buffer, length, flags, address, address_length);
    PendingCall call{Original::recvfrom};
    call.from = address;
    call.from_length = address_length;
    return routed_receive(fd, buffer, length, flags, call);
}

ssize_t __recvfrom_chk(int fd, void* buffer, size_t length, size_t buffer_length, int flags, sockaddr* address,
                       socklen_t* address_length) {
    if (!routed_fd(fd) || length > buffer_length)
        return real_libc().recvfrom_chk(fd, buffer, length, buffer_length, flags, address, address_length);
    return recvfrom(fd, buffer, length, flags, address, address_length);
}

ssize_t recvmsg(int fd, msghdr* message, int flags) {
    if (!routed_fd(fd) || message == nullptr || message->msg_iovlen > IOV_MAX)
        return real_libc().recvmsg(fd, message, flags);
    PendingCall call{Original::recvmsg};
    call.receive_message = message;
    call.receive_flags = flags;
    if (message->msg_iovlen == 1)
        return routed_receive(fd, message->msg_iov[0].iov_base, message->msg_iov[0].iov_len, flags, call);
    const std::span<const iovec> all(message->msg_iov, message->msg_iovlen);
    return through_faulty_if(g_receive_rules, call, [&](Sys& sys) { return sys.readv(fd, all); });
}

int fcntl(int fd, int command, ...) {
    va_list arguments;
    va_start(arguments, command);
    void* argument = va_arg(arguments, void*);
    va_end(arguments);
    return routed_fcntl(fd, command, argument, real_libc().fcntl);
}

int fcntl64(int fd, int command, ...) {
    va_list arguments;
    va_start(arguments, command);
    void* argument = va_arg(arguments, void*);
    va_end(arguments);
    return routed_fcntl(fd, command, argument, real_libc().fcntl64);
}

int ioctl(int fd, unsigned long request, ...) noexcept {
    va_list arguments;
    va_start(arguments, request);
    void* argument = va_arg(arguments, void*);
    va_end(arguments);
    const int rc = real_libc().ioctl(fd, request, argument);
    // FIONBIO sets O_NONBLOCK (CPython's setblocking): FaultySys learns it
    // from an F_GETFL, as from the program's own.
    if (rc == 0 && request == FIONBIO && routed_fd(fd))
        learn_nonblocking(fd);
    return rc;
}

int setsockopt(int fd, int level, int name, const void* value, socklen_t length) noexcept {
    if (routed_fd(fd))
        count_call();  // FaultySys injects nothing here: the kernel's answer as it is
    return real_libc().setsockopt(fd, level, name, value, length);
}

int getsockopt(int fd, int level, int name, void* value, socklen_t* length) noexcept {
    if (routed_fd(fd))
        count_call();
    return real_libc().getsockopt(fd, level, name, value, length);
}

int epoll_create(int size) noexcept {
    if (!routing())
        return real_libc().epoll_create(size);
    PendingCall call{Original::epoll_create};
    call.epoll_size = size;
    const int fd = through_faulty(call, [&](FaultySys& sys) { return sys.epoll_create1(0); });
    set_kind(fd, FdKind::epoll);
    return fd;
}

int epoll_create1(int flags) noexcept {
    if (!routing())
        return real_libc().epoll_create1(flags);
    const int fd = through_faulty(PendingCall{}, [&](FaultySys& sys) { return sys.epoll_create1(flags); });
    set_kind(fd, FdKind::epoll);
    return fd;
}

int epoll_ctl(int epoll_fd, int op, int fd, epoll_event* event) noexcept {
    if (!routed_fd(fd))
        return real_libc().epoll_ctl(epoll_fd, op, fd, event);
    PendingCall call;
    call.ctl_event = event;
    const EpollEvent registered = event == nullptr ? EpollEvent{} : EpollEvent{event->events, event->data.u64};
    return through_faulty(call, [&](FaultySys& sys) { return sys.epoll_ctl(epoll_fd, op, fd, registered); });
}

int epoll_wait(int epoll_fd, epoll_event* events, int max_events, int timeout_ms) {
    return routed_epoll_wait(epoll_fd, events, max_events, timeout_ms, nullptr, false);
}

int epoll_pwait(int epoll_fd, epoll_event* events, int max_events, int timeout_ms, const sigset_t* mask) {
    // The kernel's epoll_pwait sets the mask atomically (RealSys calls it
    // with the mask); FaultySys's own retries each pass the mask again.
    return routed_epoll_wait(epoll_fd, events, max_events, timeout_ms, mask, true);
}

// glibc 2.36's <poll.h> declares the array of poll and ppoll write-only
// (__attr_access write_only), which it is not: poll reads fd and events. gcc
// then takes our reading of it for a read of uninitialised memory. (clang has
// no such warning and would reject the pragma under -Werror.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
int poll(pollfd* fds, nfds_t count, int timeout_ms) {
    if (!polls_tcp(fds, count)) {
        count_call();
        return real_libc().poll(fds, count, timeout_ms);
    }
    return routed_poll(fds, count, timeout_ms, PendingCall{});
}

int __poll_chk(pollfd* fds, nfds_t count, int timeout_ms, size_t fds_length) {
    if (!polls_tcp(fds, count)) {
        count_call();
        return real_libc().poll_chk(fds, count, timeout_ms, fds_length);
    }
    PendingCall call;
    call.original = Original::poll_chk;
    call.poll_fds_length = fds_length;
    return routed_poll(fds, count, timeout_ms, call);
}

int ppoll(pollfd* fds, nfds_t count, const timespec* timeout, const sigset_t* mask) {
    if (!polls_tcp(fds, count)) {
        count_call();
        return real_libc().ppoll(fds, count, timeout, mask);
    }
    PendingCall call;
    call.original = Original::ppoll;
    call.poll_timeout = timeout;  // RealSys passes the program's own timeout and mask
    call.sigmask = mask;
    const int timeout_ms = timeout == nullptr ? -1 : static_cast<int>(std::min<long long>(
        INT_MAX, static_cast<long long>(timeout->tv_sec) * 1000 + (timeout->tv_nsec + 999'999) / 1'000'000));
    return routed_poll(fds, count, timeout_ms, call);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

int select(int count, fd_set* read_fds, fd_set* write_fds, fd_set* error_fds, timeval* timeout) {
    count_call();
    return real_libc().select(count, read_fds, write_fds, error_fds, timeout);
}

int pselect(int count, fd_set* read_fds, fd_set* write_fds, fd_set* error_fds, const timespec* timeout,
            const sigset_t* mask) {
    count_call();
    return real_libc().pselect(count, read_fds, write_fds, error_fds, timeout, mask);
}

}  // extern "C"
#pragma GCC visibility pop
