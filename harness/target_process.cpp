// TargetProcess (harness/target_process.h): fork/exec, /proc readings, stop.
#include "harness/target_process.h"

#include "core/linux_sys.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

namespace eagain::harness::verify {

std::string signal_name(int signal) {
    const char* abbrev = sigabbrev_np(signal);
    return abbrev != nullptr ? "SIG" + std::string(abbrev) : "signal " + std::to_string(signal);
}

std::string ExitStatus::describe() const {
    return signalled ? "killed by " + signal_name(code) : "exited with status " + std::to_string(code);
}

Nanos monotonic_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return Nanos{static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec};
}

void sleep_for(Nanos d) {
    timespec ts{static_cast<time_t>(d.count() / 1'000'000'000), static_cast<long>(d.count() % 1'000'000'000)};
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

std::uint16_t free_loopback_port() {
    LinuxSys sys;
    const FdResult fd = sys.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!fd.ok())
        return 0;
    std::uint16_t port = 0;
    if (sys.bind(fd.value, SockAddr::ipv4_loopback(0)).ok()) {
        const SysResult<SockAddr> bound = sys.getsockname(fd.value);
        if (bound.ok())
            port = bound.value.port();
    }
    (void)sys.close(fd.value);
    return port;
}

namespace {

// /proc/net/tcp: "sl local_address rem_address st ...", the local address
// as HEX:PORT in hex, st 0A for LISTEN.
bool listening_in(const char* table, std::uint16_t port) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string slot, local, remote, state;
        words >> slot >> local >> remote >> state;
        const std::size_t colon = local.rfind(':');
        if (colon == std::string::npos || state != "0A")
            continue;
        if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) == port)
            return true;
    }
    return false;
}

// /proc/PID/stat; its second field, the command, may hold spaces and
// parentheses, so the fields are counted from the last ')'.
std::optional<ProcessStat> read_stat(const std::string& pid) {
    std::ifstream in("/proc/" + pid + "/stat");
    std::string text;
    if (!std::getline(in, text))
        return std::nullopt;
    const std::size_t close = text.rfind(')');
    if (close == std::string::npos)
        return std::nullopt;
    std::istringstream fields(text.substr(close + 2));
    std::vector<std::string> f;
    std::string word;
    while (fields >> word && f.size() < 15)
        f.push_back(word);
    if (f.size() < 15)
        return std::nullopt;
    // From field 3 (state): 4 ppid is f[1]; 9 flags f[6]; 14 utime f[11],
    // 15 stime f[12], 16 cutime f[13], 17 cstime f[14].
    constexpr unsigned long pf_exiting = 0x4;  // set first thing in do_exit, before the fds close
    ProcessStat s;
    s.parent = static_cast<pid_t>(std::strtol(f[1].c_str(), nullptr, 10));
    s.exiting = f[0] == "Z" || f[0] == "X" || (std::strtoul(f[6].c_str(), nullptr, 10) & pf_exiting) != 0;
    s.ticks = std::strtoull(f[11].c_str(), nullptr, 10) + std::strtoull(f[12].c_str(), nullptr, 10);
    s.children_ticks = std::strtoull(f[13].c_str(), nullptr, 10) + std::strtoull(f[14].c_str(), nullptr, 10);
    return s;
}

}  // namespace

bool port_listening(std::uint16_t port) {
    return listening_in("/proc/net/tcp", port) || listening_in("/proc/net/tcp6", port);
}

std::optional<TargetProcess> TargetProcess::start(const TargetOptions& options, std::string* error) {
    const std::string out = options.directory + "/stdout";
    const std::string err = options.directory + "/stderr";
    const std::string exec_line = "exec " + options.command;
    const pid_t pid = ::fork();
    if (pid < 0) {
        *error = std::string("fork: ") + std::strerror(errno);
        return std::nullopt;
    }
    if (pid == 0) {
        ::setpgid(0, 0);
        const int in_fd = ::open("/dev/null", O_RDONLY);
        const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in_fd < 0 || out_fd < 0 || err_fd < 0)
            ::_exit(126);
        ::dup2(in_fd, 0);
        ::dup2(out_fd, 1);
        ::dup2(err_fd, 2);
        for (const auto& [name, value] : options.environment)
            ::setenv(name.c_str(), value.c_str(), 1);
        // As a shell would start it: SIGPIPE default and nothing blocked, even
        // if eagain's own caller ignored or blocked it (a buggy target would
        // then survive a SIGPIPE and look correct).
        ::signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execl("/bin/sh", "sh", "-c", exec_line.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::setpgid(pid, pid);  // also here, so the group exists before either side runs on
    return TargetProcess(pid, options.port, options.directory);
}

TargetProcess::TargetProcess(TargetProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), port_(other.port_), directory_(std::move(other.directory_)),
      ended_(std::move(other.ended_)) {}

TargetProcess::~TargetProcess() {
    if (pid_ > 0)
        (void)stop(std::chrono::milliseconds{500});
}

std::optional<std::string> TargetProcess::wait_listening(Nanos timeout) {
    const Nanos until = monotonic_now() + timeout;
    for (;;) {
        if (const std::optional<ExitStatus> ended = poll_exit()) {
            std::string tail = stderr_tail();
            return "the target " + ended->describe() + " before listening on port " + std::to_string(port_) +
                   (tail.empty() ? "" : " (stderr: " + tail + ")");
        }
        if (port_listening(port_))
            return std::nullopt;
        if (monotonic_now() > until)
            return "the target did not listen on port " + std::to_string(port_) + " within " +
                   std::to_string(timeout.count() / 1'000'000) + " ms";
        sleep_for(std::chrono::milliseconds{10});
    }
}

std::optional<ExitStatus> TargetProcess::poll_exit() {
    if (ended_ || pid_ <= 0)
        return ended_;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0) {
        const std::optional<ProcessStat> stat = read_stat(std::to_string(pid_));
        for (const Nanos until = monotonic_now() + std::chrono::seconds{2};
             r == 0 && stat && stat->exiting && monotonic_now() < until;
             r = ::waitpid(pid_, &status, WNOHANG))
            sleep_for(std::chrono::milliseconds{1});
    }
    if (r == pid_)
        ended_ = WIFSIGNALED(status) ? ExitStatus{true, WTERMSIG(status)} : ExitStatus{false, WEXITSTATUS(status)};
    return ended_;
}

int TargetProcess::open_fds() const {
    DIR* dir = ::opendir(("/proc/" + std::to_string(pid_) + "/fd").c_str());
    if (dir == nullptr)
        return -1;
    int count = 0;
    while (const dirent* entry = ::readdir(dir))
        if (entry->d_name[0] != '.')
            ++count;
    ::closedir(dir);
    return count;
}

std::map<pid_t, ProcessStat> TargetProcess::processes() const {
    std::map<pid_t, ProcessStat> all;
    if (DIR* dir = ::opendir("/proc")) {
        while (const dirent* entry = ::readdir(dir))
            if (entry->d_name[0] >= '1' && entry->d_name[0] <= '9')
                if (const std::optional<ProcessStat> s = read_stat(entry->d_name))
                    all[static_cast<pid_t>(std::strtol(entry->d_name, nullptr, 10))] = *s;
        ::closedir(dir);
    }
    const auto descends = [&](pid_t p) {
        for (int depth = 0; depth < 64 && p > 1; ++depth) {
            if (p == pid_)
                return true;
            const auto it = all.find(p);
            if (it == all.end())
                return false;
            p = it->second.parent;
        }
        return false;
    };
    std::erase_if(all, [&](const auto& entry) { return !descends(entry.first); });
    return all;
}

std::uint64_t TargetProcess::cpu_ticks() const {
    std::uint64_t ticks = 0;
    for (const auto& [p, s] : processes())
        ticks += s.ticks + (p == pid_ ? s.children_ticks : 0);
    return ticks;
}

std::string TargetProcess::blocked_calls() const {
    std::string blocked;
    for (const auto& [p, s] : processes()) {
        std::ifstream in("/proc/" + std::to_string(p) + "/wchan");
        std::string where;
        std::getline(in, where);
        // Waiting for readiness is what an idle event loop does; anything
        // else (a pipe write, a socket send) is a process stuck in one call.
        const bool waiting = where.empty() || where == "0" || where.find("poll") != std::string::npos ||
                             where.find("select") != std::string::npos || where == "do_epoll_wait";
        if (!waiting)
            blocked += (blocked.empty() ? "" : ", ") + std::string("pid ") + std::to_string(p) + " in " + where;
    }
    return blocked;
}

ExitStatus TargetProcess::stop(Nanos grace) {
    if (pid_ <= 0)
        return ended_.value_or(ExitStatus{});
    if (!poll_exit()) {
        ::kill(pid_, SIGTERM);
        const Nanos until = monotonic_now() + grace;
        while (!poll_exit() && monotonic_now() < until)
            sleep_for(std::chrono::milliseconds{5});
        if (!poll_exit()) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            if (::waitpid(pid_, &status, 0) == pid_)
                ended_ = ExitStatus{true, SIGKILL};
        }
    }
    // What it forked and left behind (a socat child), reaped here: eagain
    // is their subreaper (verify_command), so none is left a zombie.
    ::kill(-pid_, SIGKILL);
    const Nanos until = monotonic_now() + std::chrono::milliseconds{500};
    for (int status = 0; ::waitpid(-pid_, &status, WNOHANG) >= 0 && monotonic_now() < until;)
        sleep_for(std::chrono::milliseconds{1});
    pid_ = -1;
    return ended_.value_or(ExitStatus{});
}

std::string TargetProcess::stderr_tail(std::size_t max_bytes) const {
    std::ifstream in(directory_ + "/stderr", std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > max_bytes)
        text = "..." + text.substr(text.size() - max_bytes);
    for (char& c : text)
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
    while (!text.empty() && text.back() == ' ')
        text.pop_back();
    return text;
}

}  // namespace eagain::harness::verify
