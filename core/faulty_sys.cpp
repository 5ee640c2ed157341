#include "core/faulty_sys.h"

#include "core/assert.h"

#include <fcntl.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <limits>

namespace eagain {
namespace {

constexpr auto epoll_in = static_cast<std::uint32_t>(EPOLLIN);
constexpr auto epoll_out = static_cast<std::uint32_t>(EPOLLOUT);
constexpr auto epoll_oneshot = static_cast<std::uint32_t>(EPOLLONESHOT);

bool is_transfer(SysCall call) noexcept {
    return call == SysCall::send || call == SysCall::writev || call == SysCall::sendmsg || call == SysCall::recv ||
           call == SysCall::readv;
}

bool is_sending(SysCall call) noexcept {
    return call == SysCall::send || call == SysCall::writev || call == SysCall::sendmsg;
}

// The table of what Linux can return from each call (man 2 send, recv,
// readv, connect, accept4, close, epoll_wait, poll).
bool fault_possible(SysCall call, FaultKind fault) noexcept {
    switch (fault) {
        case FaultKind::short_transfer: return is_transfer(call);
        case FaultKind::eagain: return is_transfer(call) || call == SysCall::accept4;
        case FaultKind::eintr:
            return is_transfer(call) || call == SysCall::accept4 || call == SysCall::connect ||
                   call == SysCall::close || call == SysCall::epoll_wait || call == SysCall::poll;
        case FaultKind::econnreset: return is_transfer(call);
        case FaultKind::epipe: return is_sending(call);  // a read never reports EPIPE
        case FaultKind::econnrefused:
        case FaultKind::etimedout: return call == SysCall::connect;
        case FaultKind::econnaborted:
        case FaultKind::emfile: return call == SysCall::accept4;
    }
    return false;
}

int errno_of(FaultKind fault) noexcept {
    switch (fault) {
        case FaultKind::short_transfer: return 0;
        case FaultKind::eagain: return EAGAIN;
        case FaultKind::eintr: return EINTR;
        case FaultKind::econnreset: return ECONNRESET;
        case FaultKind::epipe: return EPIPE;
        case FaultKind::econnrefused: return ECONNREFUSED;
        case FaultKind::etimedout: return ETIMEDOUT;
        case FaultKind::econnaborted: return ECONNABORTED;
        case FaultKind::emfile: return EMFILE;
    }
    return 0;
}

// Whether the readiness that led the driver to this call is still there
// after the fault: then an edge-triggered driver needs another wake-up.
// After a reset or refusal the driver closes, so nothing is owed.
bool leaves_readiness(FaultKind fault) noexcept {
    switch (fault) {
        case FaultKind::short_transfer:
        case FaultKind::eagain:
        case FaultKind::eintr:
        case FaultKind::econnaborted:  // the next pending connection is still queued
        case FaultKind::emfile: return true;
        case FaultKind::econnreset:
        case FaultKind::epipe:
        case FaultKind::econnrefused:
        case FaultKind::etimedout: return false;
    }
    return false;
}

std::vector<iovec> trimmed(std::span<const iovec> buffers, std::size_t limit_bytes) {
    std::vector<iovec> out;
    std::size_t left = limit_bytes;
    for (const iovec& buffer : buffers) {
        if (left == 0)
            break;
        const std::size_t take = std::min(buffer.iov_len, left);
        out.push_back(iovec{buffer.iov_base, take});
        left -= take;
    }
    return out;
}

// What is left of a timeout that started at start, in whole milliseconds
// rounded up (so a retry never returns before the caller's deadline).
int remaining_timeout_ms(int timeout_ms, Nanos start, Nanos now) noexcept {
    if (timeout_ms < 0)
        return timeout_ms;
    const Nanos left = std::chrono::milliseconds(timeout_ms) - (now - start);
    if (left <= Nanos::zero())
        return 0;
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
}

}  // namespace

RuleError validate_rule(const FaultRule& rule) noexcept {
    if (!fault_possible(rule.call, rule.fault))
        return RuleError::fault_impossible_for_call;
    if (rule.fd.has_value() && *rule.fd < 0)
        return RuleError::negative_fd;
    if (rule.when == CallSelector::at_stream_offset && !is_transfer(rule.call))
        return RuleError::offset_needs_transfer;
    if (rule.fault == FaultKind::short_transfer && rule.when != CallSelector::at_stream_offset &&
        rule.short_limit_bytes == 0) {
        return RuleError::short_limit_zero;
    }
    const bool numbered = rule.when == CallSelector::nth_call || rule.when == CallSelector::every_kth_call ||
                          rule.when == CallSelector::from_nth_call;
    if (numbered && rule.call_number == 0)
        return RuleError::call_number_zero;
    if (rule.when == CallSelector::with_probability &&
        (rule.chance_denominator == 0 || rule.chance_numerator > rule.chance_denominator)) {
        return RuleError::bad_chance;
    }
    if (rule.when == CallSelector::call_list) {
        const std::vector<std::uint64_t>& list = rule.call_list;
        if (list.empty() || list.size() > max_call_list || list.front() == 0 ||
            std::adjacent_find(list.begin(), list.end(), std::greater_equal<>()) != list.end())
            return RuleError::bad_call_list;
    }
    if (rule.max_hits.has_value() && *rule.max_hits == 0)
        return RuleError::max_hits_zero;
    return RuleError::none;
}

std::string_view to_string(FaultKind kind) noexcept {
    switch (kind) {
        case FaultKind::short_transfer: return "short_transfer";
        case FaultKind::eagain: return "eagain";
        case FaultKind::eintr: return "eintr";
        case FaultKind::econnreset: return "econnreset";
        case FaultKind::epipe: return "epipe";
        case FaultKind::econnrefused: return "econnrefused";
        case FaultKind::etimedout: return "etimedout";
        case FaultKind::econnaborted: return "econnaborted";
        case FaultKind::emfile: return "emfile";
    }
    return "unknown FaultKind";
}

std::string_view to_string(CallSelector selector) noexcept {
    switch (selector) {
        case CallSelector::every_call: return "every_call";
        case CallSelector::nth_call: return "nth_call";
        case CallSelector::every_kth_call: return "every_kth_call";
        case CallSelector::from_nth_call: return "from_nth_call";
        case CallSelector::at_stream_offset: return "at_stream_offset";
        case CallSelector::with_probability: return "with_probability";
        case CallSelector::call_list: return "call_list";
    }
    return "unknown CallSelector";
}

std::string_view to_string(RuleError error) noexcept {
    switch (error) {
        case RuleError::none: return "none";
        case RuleError::fault_impossible_for_call: return "Linux cannot return this fault from this call";
        case RuleError::short_limit_zero: return "a short transfer needs short_limit_bytes >= 1";
        case RuleError::offset_needs_transfer: return "at_stream_offset needs send, writev, recv or readv";
        case RuleError::call_number_zero: return "call numbers start at 1";
        case RuleError::bad_chance: return "chance needs 0 < denominator and numerator <= denominator";
        case RuleError::max_hits_zero: return "max_hits must be at least 1";
        case RuleError::negative_fd: return "fd filter is negative";
        case RuleError::bad_call_list: return "a call list needs 1 to 4096 call numbers from 1, strictly increasing";
        case RuleError::too_many_rules: return "too many rules";
    }
    return "unknown RuleError";
}

std::string describe(const FaultEvent& event) {
    if (event.fault == FaultKind::short_transfer) {
        return std::string(is_sending(event.call) ? "short write " : "short read ") +
               std::to_string(event.limit_bytes) + " of " + std::to_string(event.requested_bytes) + " bytes";
    }
    return errno_name(errno_of(event.fault));
}

FaultySys::FaultySys(Sys& inner, std::uint64_t seed, RuleCounting counting) noexcept
    : inner_(inner), rng_(seed), counting_(counting) {}

RuleError FaultySys::add_rule(const FaultRule& rule) {
    const RuleError error = validate_rule(rule);
    if (error != RuleError::none)
        return error;
    if (rules_.size() >= max_rules)
        return RuleError::too_many_rules;
    rules_.push_back(RuleState{rule, RuleCount{}, {}, 0});
    return RuleError::none;
}

std::uint64_t FaultySys::rule_hits(std::size_t rule_index) const noexcept {
    EAGAIN_ASSERT(rule_index < rules_.size());
    return rules_[rule_index].total_hits;
}

std::uint64_t FaultySys::calls(SysCall call) const noexcept {
    return calls_[static_cast<std::size_t>(call)];
}

// ---------------------------------------------------------------------------
// Choosing and recording faults

FaultySys::RuleCount& FaultySys::count_of(RuleState& state, int fd) {
    if (counting_ == RuleCounting::per_rule)
        return state.all;
    return state.by_fd[fd];
}

std::optional<FaultySys::Pick> FaultySys::pick(SysCall call, int fd, std::optional<Transfer> transfer,
                                               bool nonblocking_by_flags) {
    std::optional<Pick> chosen;
    // Every matching rule counts the call and draws, even after one was
    // chosen, so a rule's decisions do not depend on the rules before it.
    for (std::size_t index = 0; index < rules_.size(); ++index) {
        RuleState& state = rules_[index];
        const FaultRule& rule = state.rule;
        if (rule.call != call || (rule.fd.has_value() && *rule.fd != fd))
            continue;
        RuleCount& count = count_of(state, fd);
        const std::uint64_t number = ++count.matching_calls;
        bool selected = false;
        switch (rule.when) {
            case CallSelector::every_call: selected = true; break;
            case CallSelector::nth_call: selected = number == rule.call_number; break;
            case CallSelector::every_kth_call: selected = number % rule.call_number == 0; break;
            case CallSelector::from_nth_call: selected = number >= rule.call_number; break;
            case CallSelector::at_stream_offset: {
                EAGAIN_ASSERT(transfer.has_value());
                const std::uint64_t start = transfer->stream_start_bytes;
                const std::uint64_t end = start + transfer->length_bytes;
                const std::uint64_t offset = rule.stream_offset_bytes;
                // A cut needs bytes on both sides of the offset; an error
                // fires on the call that would move the byte at the offset.
                selected = rule.fault == FaultKind::short_transfer ? start < offset && offset < end
                                                                   : start <= offset && offset < end;
                break;
            }
            case CallSelector::with_probability:
                selected = rng_.chance(rule.chance_numerator, rule.chance_denominator);
                break;
            case CallSelector::call_list:
                // Call numbers rise by one per matching call, so the list is
                // walked once, never searched.
                selected = count.next_listed < rule.call_list.size() && rule.call_list[count.next_listed] == number;
                if (selected)
                    ++count.next_listed;
                break;
        }
        if (!selected || chosen.has_value())
            continue;
        if (rule.max_hits.has_value() && count.hits >= *rule.max_hits)
            continue;
        Pick candidate{index, number, rule.fault, 0, false};
        if (rule.fault == FaultKind::short_transfer) {
            EAGAIN_ASSERT(transfer.has_value());
            if (rule.when == CallSelector::at_stream_offset) {
                candidate.limit_bytes =
                    static_cast<std::size_t>(rule.stream_offset_bytes - transfer->stream_start_bytes);
                candidate.at_offset = true;
            } else {
                if (transfer->length_bytes <= rule.short_limit_bytes)
                    continue;  // nothing to shorten
                candidate.limit_bytes = rule.short_limit_bytes;
            }
        }
        // A blocking call would have waited, not failed.
        if (rule.fault == FaultKind::eagain && !nonblocking_by_flags && !is_nonblocking(fd))
            continue;
        chosen = candidate;
    }
    return chosen;
}

bool FaultySys::is_nonblocking(int fd) const noexcept {
    return nonblocking_fds_.contains(fd);
}

void FaultySys::set_nonblocking_seen(int fd, bool nonblocking) {
    if (nonblocking)
        nonblocking_fds_.insert(fd);
    else
        nonblocking_fds_.erase(fd);
}

void FaultySys::record(const Pick& chosen, SysCall call, int fd, std::size_t requested_bytes) {
    RuleState& state = rules_[chosen.rule_index];
    ++count_of(state, fd).hits;
    ++state.total_hits;
    ++faults_injected_;
    if (!observer_)
        return;
    FaultEvent event;
    event.call = call;
    event.fd = fd;
    event.call_number = chosen.call_number;
    event.syscall_number = calls(call);
    event.rule_index = chosen.rule_index;
    event.fault = chosen.fault;
    if (chosen.fault == FaultKind::short_transfer) {
        event.requested_bytes = requested_bytes;
        event.limit_bytes = chosen.limit_bytes;
    }
    observer_(event);
}

void FaultySys::owe(int fd, std::uint32_t direction) {
    for (auto it = watched_by_.lower_bound({fd, std::numeric_limits<int>::min()});
         it != watched_by_.end() && it->first == fd; ++it) {
        const RegistrationKey key{it->second, fd};
        Registration& registration = registrations_.at(key);
        if ((registration.events & direction) != 0) {
            registration.owed |= direction;
            sync_owed(key, registration);
        }
    }
}

void FaultySys::sync_owed(const RegistrationKey& key, const Registration& registration) {
    if (registration.owed != 0 && registration.armed)
        owed_.insert(key);
    else
        owed_.erase(key);
}

void FaultySys::deliver(const RegistrationKey& key, Registration& registration) {
    registration.owed = 0;
    if ((registration.events & epoll_oneshot) != 0)
        registration.armed = false;
    sync_owed(key, registration);
}

FaultySys::Registrations::iterator FaultySys::erase_registration(Registrations::iterator it) {
    const auto [epoll_fd, fd] = it->first;
    watched_by_.erase({fd, epoll_fd});
    by_data_.erase({epoll_fd, it->second.data, fd});
    owed_.erase(it->first);
    return registrations_.erase(it);
}

void FaultySys::forget_fd(int fd) {
    stream_bytes_.erase(fd);
    forget_counts(fd);
    nonblocking_fds_.erase(fd);
    // A closed fd leaves every epoll set, and a closed epoll fd takes its
    // registrations with it.
    while (true) {
        const auto watched = watched_by_.lower_bound({fd, std::numeric_limits<int>::min()});
        if (watched == watched_by_.end() || watched->first != fd)
            break;
        erase_registration(registrations_.find({watched->second, fd}));
    }
    for (auto it = registrations_.lower_bound({fd, std::numeric_limits<int>::min()});
         it != registrations_.end() && it->first.first == fd;)
        it = erase_registration(it);
}

void FaultySys::forget_counts(int fd) {
    if (counting_ != RuleCounting::per_fd)
        return;
    for (RuleState& state : rules_)
        state.by_fd.erase(fd);
}

FaultySys::Registrations::iterator FaultySys::registration_by_data(int epoll_fd, std::uint64_t data) {
    const auto it = by_data_.lower_bound({epoll_fd, data, std::numeric_limits<int>::min()});
    if (it == by_data_.end() || std::get<0>(*it) != epoll_fd || std::get<1>(*it) != data)
        return registrations_.end();
    return registrations_.find({epoll_fd, std::get<2>(*it)});
}

// ---------------------------------------------------------------------------
// Calls

FdResult FaultySys::socket(int domain, int type, int protocol) {
    ++calls_[static_cast<std::size_t>(SysCall::socket)];
    const FdResult result = inner_.socket(domain, type, protocol);
    if (result.ok()) {
        forget_fd(result.value);
        set_nonblocking_seen(result.value, (type & SOCK_NONBLOCK) != 0);
    }
    return result;
}

VoidResult FaultySys::bind(int fd, const SockAddr& address) {
    ++calls_[static_cast<std::size_t>(SysCall::bind)];
    return inner_.bind(fd, address);
}

VoidResult FaultySys::listen(int fd, int backlog) {
    ++calls_[static_cast<std::size_t>(SysCall::listen)];
    return inner_.listen(fd, backlog);
}

FdResult FaultySys::accept4(int fd, SockAddr* peer, int flags) {
    ++calls_[static_cast<std::size_t>(SysCall::accept4)];
    if (const std::optional<Pick> chosen = pick(SysCall::accept4, fd, std::nullopt, false)) {
        // Every accept4 fault leaves the pending connection queued.
        EAGAIN_ASSERT(chosen->fault != FaultKind::short_transfer);
        record(*chosen, SysCall::accept4, fd, 0);
        owe(fd, epoll_in);
        return FdResult::failure(errno_of(chosen->fault));
    }
    const FdResult result = inner_.accept4(fd, peer, flags);
    if (result.ok()) {
        forget_fd(result.value);
        // Linux's accept4 does not inherit the listener's O_NONBLOCK: only
        // the flags argument decides.
        set_nonblocking_seen(result.value, (flags & SOCK_NONBLOCK) != 0);
    }
    return result;
}

VoidResult FaultySys::connect(int fd, const SockAddr& address) {
    ++calls_[static_cast<std::size_t>(SysCall::connect)];
    const std::optional<Pick> chosen = pick(SysCall::connect, fd, std::nullopt, false);
    if (!chosen.has_value())
        return inner_.connect(fd, address);
    if (chosen->fault != FaultKind::eintr) {
        // ECONNREFUSED / ETIMEDOUT, reported synchronously; no attempt made.
        record(*chosen, SysCall::connect, fd, 0);
        return VoidResult::failure(errno_of(chosen->fault));
    }
    const VoidResult result = inner_.connect(fd, address);
    if (!result.ok() && result.error != EINPROGRESS)
        return result;
    record(*chosen, SysCall::connect, fd, 0);
    // Already connected: the socket is writable now, and a driver that saw
    // EINTR waits for that. Still in progress: the completion's own EPOLLOUT
    // comes; owing one early would announce a connection not yet made.
    if (result.ok())
        owe(fd, epoll_out);
    return VoidResult::failure(EINTR);
}

VoidResult FaultySys::getsockopt(int fd, int level, int name, std::span<std::byte> value, socklen_t* length) {
    ++calls_[static_cast<std::size_t>(SysCall::getsockopt)];
    return inner_.getsockopt(fd, level, name, value, length);
}

VoidResult FaultySys::setsockopt(int fd, int level, int name, std::span<const std::byte> value) {
    ++calls_[static_cast<std::size_t>(SysCall::setsockopt)];
    return inner_.setsockopt(fd, level, name, value);
}

SysResult<SockAddr> FaultySys::getsockname(int fd) {
    ++calls_[static_cast<std::size_t>(SysCall::getsockname)];
    return inner_.getsockname(fd);
}

SysResult<SockAddr> FaultySys::getpeername(int fd) {
    ++calls_[static_cast<std::size_t>(SysCall::getpeername)];
    return inner_.getpeername(fd);
}

template <class Perform>
SizeResult FaultySys::transfer_call(SysCall call, int fd, std::size_t length_bytes, int flags, Perform perform) {
    ++calls_[static_cast<std::size_t>(call)];
    const bool sending = is_sending(call);
    // MSG_PEEK leaves the bytes in the stream, so they are not counted.
    const bool moves_stream = (flags & MSG_PEEK) == 0;
    const auto position = [&]() -> std::uint64_t {
        const auto it = stream_bytes_.find(fd);
        if (it == stream_bytes_.end())
            return 0;
        return sending ? it->second.sent : it->second.received;
    };
    const auto advance = [&](const SizeResult& result) {
        if (!result.ok() || result.value == 0 || !moves_stream)
            return;
        StreamBytes& bytes = stream_bytes_[fd];
        (sending ? bytes.sent : bytes.received) += result.value;
    };
    const std::uint32_t direction = sending ? epoll_out : epoll_in;

    const std::optional<Pick> chosen = pick(call, fd, Transfer{position(), length_bytes}, (flags & MSG_DONTWAIT) != 0);
    if (!chosen.has_value()) {
        const SizeResult result = perform(length_bytes);
        advance(result);
        return result;
    }
    if (chosen->fault == FaultKind::short_transfer) {
        const SizeResult result = perform(chosen->limit_bytes);
        advance(result);
        // A cut at an offset that the inner call did not reach stays pending.
        if (result.ok() && (!chosen->at_offset || result.value == chosen->limit_bytes)) {
            record(*chosen, call, fd, length_bytes);
            // A short write owes EPOLLOUT: on Linux a short send means the
            // buffer is full, and a writer rightly waits for EPOLLOUT. A
            // short read owes nothing: "a short read means the socket is
            // empty" is the edge-triggered pitfall this fault exists to
            // expose; a reader that drains to EAGAIN reads the rest anyway.
            if (sending)
                owe(fd, direction);
        }
        return result;
    }
    record(*chosen, call, fd, length_bytes);
    if (leaves_readiness(chosen->fault))
        owe(fd, direction);
    return SizeResult::failure(errno_of(chosen->fault));
}

SizeResult FaultySys::send(int fd, std::span<const std::uint8_t> data, int flags) {
    return transfer_call(SysCall::send, fd, data.size(), flags,
                         [&](std::size_t limit_bytes) { return inner_.send(fd, data.first(limit_bytes), flags); });
}

SizeResult FaultySys::recv(int fd, std::span<std::uint8_t> buffer, int flags) {
    return transfer_call(SysCall::recv, fd, buffer.size(), flags,
                         [&](std::size_t limit_bytes) { return inner_.recv(fd, buffer.first(limit_bytes), flags); });
}

SizeResult FaultySys::readv(int fd, std::span<const iovec> buffers) {
    const std::size_t length_bytes = iov_total_bytes(buffers);
    return transfer_call(SysCall::readv, fd, length_bytes, 0, [&](std::size_t limit_bytes) {
        if (limit_bytes == length_bytes)
            return inner_.readv(fd, buffers);
        return inner_.readv(fd, trimmed(buffers, limit_bytes));
    });
}

SizeResult FaultySys::writev(int fd, std::span<const iovec> buffers) {
    const std::size_t length_bytes = iov_total_bytes(buffers);
    return transfer_call(SysCall::writev, fd, length_bytes, 0, [&](std::size_t limit_bytes) {
        if (limit_bytes == length_bytes)
            return inner_.writev(fd, buffers);
        return inner_.writev(fd, trimmed(buffers, limit_bytes));
    });
}

SizeResult FaultySys::sendmsg(int fd, std::span<const iovec> buffers, int flags) {
    const std::size_t length_bytes = iov_total_bytes(buffers);
    return transfer_call(SysCall::sendmsg, fd, length_bytes, flags, [&](std::size_t limit_bytes) {
        if (limit_bytes == length_bytes)
            return inner_.sendmsg(fd, buffers, flags);
        return inner_.sendmsg(fd, trimmed(buffers, limit_bytes), flags);
    });
}

VoidResult FaultySys::shutdown(int fd, int how) {
    ++calls_[static_cast<std::size_t>(SysCall::shutdown)];
    return inner_.shutdown(fd, how);
}

VoidResult FaultySys::close(int fd) {
    ++calls_[static_cast<std::size_t>(SysCall::close)];
    const std::optional<Pick> chosen = pick(SysCall::close, fd, std::nullopt, false);
    // Linux releases the fd whatever close reports, so the state goes too —
    // before the inner close, which may let another thread (an inner Sys
    // that unlocks around the real call) get the same number back.
    forget_fd(fd);
    const VoidResult result = inner_.close(fd);
    if (!chosen.has_value() || !result.ok())
        return result;
    EAGAIN_ASSERT(chosen->fault == FaultKind::eintr);
    record(*chosen, SysCall::close, fd, 0);
    forget_counts(fd);  // the hit just recorded belonged to the closed fd
    return VoidResult::failure(EINTR);
}

FdResult FaultySys::fcntl(int fd, int command, int argument) {
    ++calls_[static_cast<std::size_t>(SysCall::fcntl)];
    const FdResult result = inner_.fcntl(fd, command, argument);
    // The program's own F_SETFL sets O_NONBLOCK, and its own F_GETFL says
    // what it is (how an fd this FaultySys did not see created becomes known).
    if (result.ok() && command == F_SETFL)
        set_nonblocking_seen(fd, (argument & O_NONBLOCK) != 0);
    else if (result.ok() && command == F_GETFL)
        set_nonblocking_seen(fd, (result.value & O_NONBLOCK) != 0);
    return result;
}

FdResult FaultySys::ioctl_fionread(int fd) {
    ++calls_[static_cast<std::size_t>(SysCall::ioctl_fionread)];
    return inner_.ioctl_fionread(fd);
}

FdResult FaultySys::epoll_create1(int flags) {
    ++calls_[static_cast<std::size_t>(SysCall::epoll_create1)];
    const FdResult result = inner_.epoll_create1(flags);
    if (result.ok())
        forget_fd(result.value);
    return result;
}

VoidResult FaultySys::epoll_ctl(int epoll_fd, int op, int fd, EpollEvent event) {
    ++calls_[static_cast<std::size_t>(SysCall::epoll_ctl)];
    const VoidResult result = inner_.epoll_ctl(epoll_fd, op, fd, event);
    if (!result.ok())
        return result;
    const RegistrationKey key{epoll_fd, fd};
    if (op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) {
        // ADD starts fresh; MOD re-arms a ONESHOT registration, and edges
        // owed for a direction no longer registered are dropped.
        auto [it, added] = registrations_.try_emplace(key);
        Registration& registration = it->second;
        if (added)
            watched_by_.insert({fd, epoll_fd});
        else
            by_data_.erase({epoll_fd, registration.data, fd});
        const std::uint32_t owed = op == EPOLL_CTL_ADD ? 0 : registration.owed & event.events;
        registration = Registration{event.events, event.data, true, owed};
        by_data_.insert({epoll_fd, registration.data, fd});
        sync_owed(key, registration);
    } else if (op == EPOLL_CTL_DEL) {
        if (const auto it = registrations_.find(key); it != registrations_.end())
            erase_registration(it);
    }
    return result;
}

FdResult FaultySys::epoll_wait(int epoll_fd, std::span<EpollEvent> events, int timeout_ms) {
    ++calls_[static_cast<std::size_t>(SysCall::epoll_wait)];
    if (const std::optional<Pick> chosen = pick(SysCall::epoll_wait, epoll_fd, std::nullopt, false)) {
        // The kernel keeps the readiness; the caller just waits again.
        EAGAIN_ASSERT(chosen->fault == FaultKind::eintr);
        record(*chosen, SysCall::epoll_wait, epoll_fd, 0);
        return FdResult::failure(EINTR);
    }

    const auto owed_here = [&] {
        const auto it = owed_.lower_bound({epoll_fd, std::numeric_limits<int>::min()});
        return it != owed_.end() && it->first == epoll_fd;
    };

    const Nanos start = timeout_ms > 0 ? inner_.now() : Nanos::zero();
    // Each retry follows an inner result made only of ONESHOT registrations
    // the kernel has now disarmed, so there are at most as many retries as
    // registrations.
    const std::size_t max_attempts = registrations_.size() + 1;
    for (std::size_t attempt = 0; attempt < max_attempts; ++attempt) {
        const int timeout_now =
            owed_here() ? 0 : (attempt == 0 ? timeout_ms : remaining_timeout_ms(timeout_ms, start, inner_.now()));
        const FdResult result = inner_.epoll_wait(epoll_fd, events, timeout_now);
        if (!result.ok())
            return result;

        std::size_t kept = 0;
        std::size_t dropped = 0;
        for (std::size_t i = 0; i < static_cast<std::size_t>(result.value); ++i) {
            EpollEvent event = events[i];
            if (const auto found = registration_by_data(epoll_fd, event.data); found != registrations_.end()) {
                Registration& registration = found->second;
                if (!registration.armed) {
                    // We already delivered this ONESHOT registration's event
                    // from an owed edge; the kernel's copy must wait for the
                    // re-arm like ours did (which makes the kernel re-check).
                    ++dropped;
                    continue;
                }
                event.events |= registration.owed;
                deliver(found->first, registration);
            }
            events[kept++] = event;
        }
        // The owed edges the inner did not report, in fd order; only owed
        // registrations are visited, never the idle ones.
        for (auto it = owed_.lower_bound({epoll_fd, std::numeric_limits<int>::min()});
             it != owed_.end() && it->first == epoll_fd && kept < events.size();) {
            const RegistrationKey key = *it;
            ++it;  // deliver() removes key from owed_
            Registration& registration = registrations_.at(key);
            events[kept++] = EpollEvent{registration.owed, registration.data};
            deliver(key, registration);
        }
        if (kept > 0 || dropped == 0 || timeout_now == 0)
            return FdResult::success(static_cast<int>(kept));
    }
    return FdResult::success(0);
}

FdResult FaultySys::poll(std::span<pollfd> fds, int timeout_ms) {
    ++calls_[static_cast<std::size_t>(SysCall::poll)];
    // poll is level-triggered: an edge owed to epoll means nothing here, and
    // an EINTR leaves every readiness for the next call. The fd a rule names
    // is the first entry's.
    const int first_fd = fds.empty() ? -1 : fds.front().fd;
    if (const std::optional<Pick> chosen = pick(SysCall::poll, first_fd, std::nullopt, false)) {
        EAGAIN_ASSERT(chosen->fault == FaultKind::eintr);
        record(*chosen, SysCall::poll, first_fd, 0);
        return FdResult::failure(EINTR);
    }
    return inner_.poll(fds, timeout_ms);
}

Nanos FaultySys::now() {
    return inner_.now();
}

}  // namespace eagain
