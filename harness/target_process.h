// The program under verification, as a process eagain started: spawned
// through /bin/sh with `{port}` replaced, in its own process group, with
// the preload shim in its environment; watched through /proc (is its port
// listening, how many fds, how much CPU); ended by its PID (SIGTERM, then
// SIGKILL after a bound), its group with it. Every wait here is bounded.
#pragma once

#include "core/sys.h"

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace eagain::harness::verify {

// How a process ended.
struct ExitStatus {
    bool signalled = false;
    int code = 0;  // the exit status, or the signal number
    // "exited with status 1", "killed by SIGPIPE".
    std::string describe() const;
};

struct TargetOptions {
    std::string command;  // shell words, {port} replaced before the start
    std::uint16_t port = 0;
    std::vector<std::pair<std::string, std::string>> environment;  // added to eagain's own
    std::string directory;                                         // stdout and stderr go here
};

// One process's line of /proc/PID/stat, the fields used here.
struct ProcessStat {
    pid_t parent = 0;
    bool exiting = false;              // state Z or X, or PF_EXITING in the flags
    std::uint64_t ticks = 0;           // utime + stime
    std::uint64_t children_ticks = 0;  // cutime + cstime (reaped children)
};

class TargetProcess {
public:
    // Starts it; nullopt and why in *error if fork/exec set-up failed.
    static std::optional<TargetProcess> start(const TargetOptions& options, std::string* error);
    TargetProcess(TargetProcess&& other) noexcept;
    TargetProcess& operator=(TargetProcess&&) = delete;
    TargetProcess(const TargetProcess&) = delete;
    ~TargetProcess();  // stops it if still running

    pid_t pid() const noexcept { return pid_; }
    // Waits until something listens on the port (/proc/net/tcp{,6}); an
    // error if the process ends first or the timeout passes.
    std::optional<std::string> wait_listening(Nanos timeout);
    // Reaps it without waiting: its status if it has ended. A process the
    // kernel is tearing down (its sockets may already be closed, so a peer
    // has seen it go) is waited for, up to 2 s, rather than called alive.
    std::optional<ExitStatus> poll_exit();
    // Open fds in /proc/PID/fd; -1 if it cannot be read.
    int open_fds() const;
    // User + system CPU of the process and its descendants, in clock ticks.
    std::uint64_t cpu_ticks() const;
    // Its processes stuck in a call other than a readiness wait, from
    // /proc/PID/wchan ("pid 8298 in anon_pipe_write"); empty if none.
    std::string blocked_calls() const;
    // SIGTERM, up to grace for it to end, then SIGKILL; the group after it.
    ExitStatus stop(Nanos grace);
    // The last bytes of its stderr, one line, for evidence.
    std::string stderr_tail(std::size_t max_bytes = 300) const;

private:
    // The process and its descendants, by PID.
    std::map<pid_t, ProcessStat> processes() const;
    TargetProcess(pid_t pid, std::uint16_t port, std::string directory) noexcept
        : pid_(pid), port_(port), directory_(std::move(directory)) {}

    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
    std::string directory_;
    std::optional<ExitStatus> ended_;
};

// A loopback port nothing listens on now (bound to port 0, read back,
// released); 0 if none could be had.
std::uint16_t free_loopback_port();
// Whether a TCP socket listens on this port (any address), from /proc/net.
bool port_listening(std::uint16_t port);
// "SIGPIPE", "SIGSEGV", ... ("signal 40" for one without a name).
std::string signal_name(int signal);
// Sleeps for d (bounded waits are built from these steps).
void sleep_for(Nanos d);
// CLOCK_MONOTONIC.
Nanos monotonic_now();

}  // namespace eagain::harness::verify
