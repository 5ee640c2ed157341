// FaultySys: a Sys decorator that injects syscall-level faults by rule over
// any inner Sys (LinuxSys, SimKernel). A call no rule fires on goes straight
// to the inner Sys. Single-threaded, like everything behind Sys.
//
// Rules are checked in the order added; the first that fires wins. Each rule
// counts the calls that match its syscall and fd filter (1-based) — over all
// fds (RuleCounting::per_rule, the default) or on each fd apart
// (RuleCounting::per_fd: the k-th recv on each socket, whatever order the
// connections came in; count, hits and call list start afresh when the fd
// is closed or handed out again by socket/accept4/epoll_create1) — and a
// probability rule draws from the seeded Rng exactly once per such call,
// whether or not it or an earlier rule fires — so the same seed and the same
// sequence of calls give the same faults. A call-list rule draws nothing:
// it is the exact form a probability rule takes once the call numbers it
// fired on are known (FaultEvent::call_number), and with every probability
// rule replaced so, the same calls give the same faults with no Rng at all.
//
// What an injected fault does:
//   * EAGAIN, EINTR, ECONNRESET, EPIPE, ECONNABORTED, EMFILE, and
//     ECONNREFUSED/ETIMEDOUT on connect: returned WITHOUT the inner call —
//     nothing consumed, nothing sent, no connection attempted. (Linux
//     returns both from connect() itself for a blocking socket, and a
//     connect() retried after a failed non-blocking attempt returns the
//     pending error; a non-blocking first attempt on loopback gives
//     EINPROGRESS and the refusal later through SO_ERROR, which the
//     conformance suite pins. A driver must handle both paths.)
//   * EINTR on connect: the inner connect IS performed (POSIX: an interrupted
//     connect continues asynchronously) and EINTR replaces its 0/EINPROGRESS;
//     the driver then waits for writability and reads SO_ERROR. If the inner
//     connect fails outright its error is returned and no fault is recorded.
//   * EINTR on close: the inner close IS performed (Linux releases the fd
//     even when close reports EINTR).
//   * Short transfer: send/writev get at most the limit and really move only
//     those bytes (data truncated, iovecs trimmed); recv/readv are offered at
//     most the limit. At a stream offset the limit is cut so the transfer
//     ends exactly there; such a cut is recorded only when the inner moved
//     all the bytes up to the offset (otherwise it stays pending).
//   * EAGAIN is never injected on a blocking fd (MSG_DONTWAIT also counts
//     for send/recv): the rule is skipped. FaultySys makes no call the
//     program did not make, so it does not ask the inner fcntl(F_GETFL):
//     it tracks O_NONBLOCK from the calls it sees — socket() and accept4()
//     with SOCK_NONBLOCK, fcntl(F_SETFL), and the result of the program's
//     own fcntl(F_GETFL). An fd it did not see created (made on the inner
//     Sys directly, inherited by a preloaded program) counts as blocking
//     until one of those calls says otherwise: wrongly taking a blocking fd
//     for non-blocking would inject an EAGAIN a correct blocking program
//     cannot get, while the other mistake only skips a fault.
//   * Errors are not sticky: an injected ECONNRESET/EPIPE fails that one call
//     and the connection stays intact underneath; a driver is expected to
//     close on them, as it must after a real reset.
//
// Readiness: an injected fault that leaves readiness unconsumed (EAGAIN,
// EINTR, short writes; EMFILE and ECONNABORTED on accept4) owes an edge:
// EPOLLIN for recv/readv/accept4, EPOLLOUT for send/writev. A short READ
// owes nothing, on purpose: an edge-triggered reader must drain to EAGAIN,
// and one that stops at a short read ("less than I asked for, so it is
// empty") is the pitfall the fault is there to expose — it stalls until
// the peer sends again. (A short write does owe EPOLLOUT: on Linux it means
// the send buffer is full, and waiting for EPOLLOUT is then right.) FaultySys watches epoll_ctl, and the next
// epoll_wait on an epoll fd where that fd is registered for that direction
// (and armed, for EPOLLONESHOT) reports it with the registered data, OR-ed
// into the inner's entry for the same registration or appended if there is
// room. While edges are owed the inner epoll_wait is called with timeout 0.
// Spurious wake-ups are legal; lost ones are not. Registrations are matched
// to the inner's results by their data, so give each fd its own data.
// close() and EPOLL_CTL_DEL drop owed edges; close() and a new fd from
// accept4/socket reset the byte counters, so fd reuse starts fresh.
#pragma once

#include "core/rng.h"
#include "core/sys.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace eagain {

// What to inject. Which kinds a syscall accepts is what Linux can return from
// it (see add_rule).
enum class FaultKind : std::uint8_t {
    short_transfer,  // send/writev/recv/readv
    eagain,          // send/writev/recv/readv/accept4
    eintr,           // send/writev/recv/readv/accept4/connect/close/epoll_wait/poll
    econnreset,      // send/writev/recv/readv
    epipe,           // send/writev
    econnrefused,    // connect
    etimedout,       // connect
    econnaborted,    // accept4
    emfile,          // accept4
};
std::string_view to_string(FaultKind kind) noexcept;

// Which of the matching calls a rule fires on.
enum class CallSelector : std::uint8_t {
    every_call,
    nth_call,          // call number == call_number
    every_kth_call,    // call number a multiple of call_number
    from_nth_call,     // call number >= call_number
    at_stream_offset,  // the transfer whose byte range covers stream_offset_bytes
    with_probability,  // chance_numerator / chance_denominator
    call_list,         // call number in call_list (sorted, strictly increasing)
};
std::string_view to_string(CallSelector selector) noexcept;

struct FaultRule {
    // The syscall the rule applies to.
    SysCall call = SysCall::recv;
    // Only calls on this fd (the listening fd for accept4, the epoll fd for
    // epoll_wait, the first entry's fd for poll); nullopt: any fd. Call numbers count only matching calls.
    std::optional<int> fd;
    FaultKind fault = FaultKind::eagain;
    // short_transfer, except at_stream_offset: the most bytes the call moves
    // (>= 1). A call no longer than this is not shortened and the rule does
    // not fire on it.
    std::size_t short_limit_bytes = 0;
    CallSelector when = CallSelector::every_call;
    // nth_call and from_nth_call: the 1-based call number; every_kth_call: k.
    std::uint64_t call_number = 1;
    // at_stream_offset (send/writev/recv/readv only): a byte offset in the
    // fd's stream in the call's direction (bytes FaultySys saw moved, MSG_PEEK
    // excluded). Errors fire on the call whose offered range [start, start +
    // length) covers it — and on every retry, so give them max_hits; a short
    // transfer fires when start < offset < start + length and ends the
    // transfer at the offset.
    std::uint64_t stream_offset_bytes = 0;
    // with_probability: fires with chance numerator / denominator
    // (0 < denominator, numerator <= denominator).
    std::uint64_t chance_numerator = 0;
    std::uint64_t chance_denominator = 1;
    // call_list: the 1-based call numbers it fires on, strictly increasing,
    // at most max_call_list long.
    std::vector<std::uint64_t> call_list{};
    // Fires at most this many times (>= 1); nullopt: no limit.
    std::optional<std::uint64_t> max_hits;
    friend bool operator==(const FaultRule&, const FaultRule&) = default;
};

// The longest call list one rule takes (a scenario line holds fewer).
inline constexpr std::size_t max_call_list = 4096;

enum class RuleError : std::uint8_t {
    none,
    fault_impossible_for_call,  // Linux cannot return this fault from this syscall
    short_limit_zero,           // a short transfer of 0 bytes would read as EOF / is not a send result
    offset_needs_transfer,      // at_stream_offset on a call that moves no stream bytes
    call_number_zero,           // call numbers are 1-based; every 0th call is meaningless
    bad_chance,                 // denominator 0, or numerator above it
    max_hits_zero,              // a rule that may never fire is a mistake
    negative_fd,                // fds are never negative; nullopt means any fd
    bad_call_list,              // empty, not strictly increasing, a 0, or over max_call_list
    too_many_rules,             // more than FaultySys::max_rules
};
std::string_view to_string(RuleError error) noexcept;
// What add_rule would say of rule, without a FaultySys (none: it is valid).
// too_many_rules is never returned here.
RuleError validate_rule(const FaultRule& rule) noexcept;

// One injected fault, as the trace records it.
struct FaultEvent {
    SysCall call = SysCall::recv;
    int fd = -1;
    std::uint64_t call_number = 0;     // the rule's own count of matching calls (on this fd, per_fd)
    std::uint64_t syscall_number = 0;  // all calls of this syscall through this FaultySys
    std::size_t rule_index = 0;        // order the rule was added, from 0
    FaultKind fault = FaultKind::eagain;
    std::size_t requested_bytes = 0;  // short_transfer: the caller's length
    std::size_t limit_bytes = 0;      // short_transfer: what was offered to the inner call
    friend bool operator==(const FaultEvent&, const FaultEvent&) = default;
};
// "short write 3 of 10 bytes", "short read 3 of 10 bytes", "EAGAIN", ...
std::string describe(const FaultEvent& event);

// How a rule counts its matching calls and hits (see the header comment).
enum class RuleCounting : std::uint8_t { per_rule, per_fd };

// Called for every injected fault, after the call completed. Must not call
// back into the FaultySys.
using FaultObserver = std::function<void(const FaultEvent&)>;

class FaultySys final : public Sys {
public:
    static constexpr std::size_t max_rules = 256;

    FaultySys(Sys& inner, std::uint64_t seed, RuleCounting counting = RuleCounting::per_rule) noexcept;

    // Rules get indices 0, 1, ... in the order added. On error nothing is added.
    [[nodiscard]] RuleError add_rule(const FaultRule& rule);
    std::size_t rule_count() const noexcept { return rules_.size(); }
    void set_observer(FaultObserver observer) { observer_ = std::move(observer); }

    std::uint64_t faults_injected() const noexcept { return faults_injected_; }
    // Some armed registration is owed an edge: the next epoll_wait reports
    // it even if the inner Sys has nothing ready (a simulation steps the
    // program on this, as it would on inner readiness). O(1): the owed
    // registrations are kept in a set of their own, so a simulation that
    // asks this every step pays nothing for idle registrations.
    bool owes_edges() const noexcept { return !owed_.empty(); }
    // Every hit of the rule, over all fds in either counting mode.
    std::uint64_t rule_hits(std::size_t rule_index) const noexcept;
    // Calls made through this FaultySys (injected or not).
    std::uint64_t calls(SysCall call) const noexcept;

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
    // What a rule has counted, over all fds or on one (RuleCounting).
    struct RuleCount {
        std::uint64_t matching_calls = 0;
        std::uint64_t hits = 0;       // what max_hits limits
        std::size_t next_listed = 0;  // call_list: the first entry not yet reached
    };
    struct RuleState {
        FaultRule rule;
        RuleCount all;                     // per_rule
        std::map<int, RuleCount> by_fd{};  // per_fd
        std::uint64_t total_hits = 0;      // rule_hits, either mode
    };
    // The stream position and length of a send/writev/recv/readv.
    struct Transfer {
        std::uint64_t stream_start_bytes = 0;
        std::size_t length_bytes = 0;
    };
    struct Pick {
        std::size_t rule_index = 0;
        std::uint64_t call_number = 0;
        FaultKind fault = FaultKind::eagain;
        std::size_t limit_bytes = 0;  // short_transfer only
        bool at_offset = false;       // short_transfer cut at a stream offset
    };
    struct Registration {
        std::uint32_t events = 0;  // as registered, incl. EPOLLET/EPOLLONESHOT
        std::uint64_t data = 0;
        bool armed = true;       // false after an EPOLLONESHOT registration reported
        std::uint32_t owed = 0;  // EPOLLIN/EPOLLOUT owed by injected faults
    };
    struct StreamBytes {
        std::uint64_t sent = 0;
        std::uint64_t received = 0;
    };

    std::optional<Pick> pick(SysCall call, int fd, std::optional<Transfer> transfer, bool nonblocking_by_flags);
    RuleCount& count_of(RuleState& state, int fd);
    // O_NONBLOCK as the calls this FaultySys saw set it (never asked of
    // the inner Sys); an fd it did not see created counts as blocking.
    bool is_nonblocking(int fd) const noexcept;
    void set_nonblocking_seen(int fd, bool nonblocking);
    void record(const Pick& chosen, SysCall call, int fd, std::size_t requested_bytes);
    using RegistrationKey = std::pair<int, int>;  // (epoll fd, fd)
    using Registrations = std::map<RegistrationKey, Registration>;
    void owe(int fd, std::uint32_t direction);
    void forget_fd(int fd);
    void forget_counts(int fd);  // per_fd: the fd's rule counts
    // Every change to a registration's owed or armed goes through here, so
    // owed_ holds exactly the armed registrations with owed != 0.
    void sync_owed(const RegistrationKey& key, const Registration& registration);
    // Report an owed edge: clears it and disarms an EPOLLONESHOT registration.
    void deliver(const RegistrationKey& key, Registration& registration);
    Registrations::iterator erase_registration(Registrations::iterator it);
    // send/writev/recv/readv: perform(limit_bytes) makes the inner call.
    template <class Perform>
    SizeResult transfer_call(SysCall call, int fd, std::size_t length_bytes, int flags, Perform perform);
    // The registration of epoll_fd with this data (the lowest fd if several).
    Registrations::iterator registration_by_data(int epoll_fd, std::uint64_t data);

    Sys& inner_;
    Rng rng_;
    RuleCounting counting_;
    FaultObserver observer_;
    std::vector<RuleState> rules_;
    std::array<std::uint64_t, sys_call_count> calls_{};
    std::uint64_t faults_injected_ = 0;
    std::map<int, StreamBytes> stream_bytes_;
    // fds whose O_NONBLOCK is set, as seen from socket(SOCK_NONBLOCK),
    // accept4(SOCK_NONBLOCK) and fcntl(F_SETFL / F_GETFL) through this
    // FaultySys; every other fd counts as blocking.
    std::set<int> nonblocking_fds_;
    // Keyed by (epoll fd, fd); ordered so delivery order is deterministic.
    // The three indexes beside it make every per-call lookup O(log n) and
    // keep the per-step work independent of how many fds are registered.
    Registrations registrations_;
    std::set<std::pair<int, int>> watched_by_;               // (fd, epoll fd) of every registration
    std::set<std::tuple<int, std::uint64_t, int>> by_data_;  // (epoll fd, data, fd) of every registration
    std::set<RegistrationKey> owed_;                         // armed registrations with owed != 0
};

}  // namespace eagain
