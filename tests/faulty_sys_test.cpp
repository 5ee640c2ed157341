#include "core/faulty_sys.h"
#include "core/linux_sys.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

using eagain::CallSelector;
using eagain::EpollEvent;
using eagain::FaultEvent;
using eagain::FaultKind;
using eagain::FaultRule;
using eagain::FaultySys;
using eagain::LinuxSys;
using eagain::RuleError;
using eagain::SizeResult;
using eagain::SockAddr;
using eagain::Sys;
using eagain::SysCall;

namespace {

// Every wait in these tests is bounded by this; none should come near it.
constexpr int wait_ms = 2000;

constexpr auto epoll_in = static_cast<std::uint32_t>(EPOLLIN);
constexpr auto epoll_out = static_cast<std::uint32_t>(EPOLLOUT);
constexpr auto epoll_et = static_cast<std::uint32_t>(EPOLLET);
constexpr auto epoll_oneshot = static_cast<std::uint32_t>(EPOLLONESHOT);

std::vector<std::uint8_t> iota_bytes(std::size_t n, std::uint8_t first = 0) {
    std::vector<std::uint8_t> out(n);
    std::iota(out.begin(), out.end(), first);
    return out;
}

// "ok 3", "EAGAIN": one call's outcome, so a sequence of calls compares as a
// readable list.
std::string outcome(const SizeResult& result) {
    if (result.ok())
        return "ok " + std::to_string(result.value);
    return eagain::errno_name(result.error);
}

// Waits, on an epoll set of its own (level-triggered, so it takes no edge
// from the set a test watches), until fd reports one of events.
bool wait_for(Sys& sys, int fd, std::uint32_t events) {
    const auto epoll_fd = sys.epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(epoll_fd.ok());
    REQUIRE(sys.epoll_ctl(epoll_fd.value, EPOLL_CTL_ADD, fd, EpollEvent{events, 0}).ok());
    std::array<EpollEvent, 1> ready{};
    const auto n = sys.epoll_wait(epoll_fd.value, ready, wait_ms);
    REQUIRE(sys.close(epoll_fd.value).ok());
    return n.ok() && n.value == 1;
}

// Everything fd has to read right now, after waiting until something is
// there; stops at EAGAIN.
std::vector<std::uint8_t> drain(Sys& sys, int fd) {
    REQUIRE(wait_for(sys, fd, epoll_in));
    std::vector<std::uint8_t> out;
    std::array<std::uint8_t, 256> chunk{};
    for (int reads = 0; reads < 1000; ++reads) {
        const auto n = sys.recv(fd, chunk, 0);
        if (!n.ok()) {
            REQUIRE(eagain::would_block(n.error));
            return out;
        }
        REQUIRE(n.value > 0);
        out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n.value));
    }
    FAIL("drain did not reach EAGAIN");
    return out;
}

void send_all(Sys& sys, int fd, const std::vector<std::uint8_t>& bytes) {
    const auto n = sys.send(fd, bytes, MSG_NOSIGNAL);
    REQUIRE(n.ok());
    REQUIRE(n.value == bytes.size());
}

// A connected non-blocking loopback pair, made through the real kernel
// directly so a FaultySys's call numbers start at the test's own calls.
struct Loopback {
    LinuxSys linux_sys;
    int listener = -1;
    std::uint16_t port = 0;
    int client = -1;
    int server = -1;

    Loopback() {
        listener = make_socket();
        REQUIRE(linux_sys.bind(listener, SockAddr::ipv4_loopback(0)).ok());
        REQUIRE(linux_sys.listen(listener, 16).ok());
        const auto name = linux_sys.getsockname(listener);
        REQUIRE(name.ok());
        port = name.value.port();
        client = connect_client();
        server = accept_server();
        REQUIRE(wait_for(linux_sys, client, epoll_out));
    }
    ~Loopback() {
        for (const int fd : {server, client, listener}) {
            if (fd >= 0)
                (void)linux_sys.close(fd);
        }
    }
    Loopback(const Loopback&) = delete;
    Loopback& operator=(const Loopback&) = delete;

    int make_socket() {
        const auto fd = linux_sys.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        REQUIRE(fd.ok());
        return fd.value;
    }
    int connect_client() {
        const int fd = make_socket();
        const auto connected = linux_sys.connect(fd, SockAddr::ipv4_loopback(port));
        REQUIRE((connected.ok() || connected.error == EINPROGRESS));
        return fd;
    }
    int accept_server() {
        REQUIRE(wait_for(linux_sys, listener, epoll_in));
        const auto fd = linux_sys.accept4(listener, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        REQUIRE(fd.ok());
        return fd.value;
    }
    // The fds were made on the kernel directly, so a FaultySys above it
    // has not seen them made non-blocking: it learns that from an F_GETFL
    // through it (set_nonblocking makes one), as it would from a program's.
    void adopt(FaultySys& faulty) const {
        for (const int fd : {listener, client, server})
            REQUIRE(faulty.set_nonblocking(fd, true).ok());
    }
    // Puts bytes in flight to `to` and waits until they can be read there.
    void deliver(int from, int to, const std::vector<std::uint8_t>& bytes) {
        send_all(linux_sys, from, bytes);
        REQUIRE(wait_for(linux_sys, to, epoll_in));
    }
};

FaultRule rule_on(SysCall call, FaultKind fault) {
    FaultRule rule;
    rule.call = call;
    rule.fault = fault;
    return rule;
}

// recv of one byte, n times, as outcomes.
std::vector<std::string> recv_one_byte(Sys& sys, int fd, int times) {
    std::vector<std::string> outcomes;
    std::array<std::uint8_t, 1> byte{};
    for (int i = 0; i < times; ++i)
        outcomes.push_back(outcome(sys.recv(fd, byte, 0)));
    return outcomes;
}

int epoll_set(FaultySys& faulty) {
    const auto epoll_fd = faulty.epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(epoll_fd.ok());
    return epoll_fd.value;
}

}  // namespace

// ===========================================================================
// Rules

TEST_CASE("add_rule rejects a fault Linux could not return from that call", "[faulty]") {
    LinuxSys linux_sys;
    FaultySys faulty(linux_sys, 1);
    const std::vector<std::pair<SysCall, FaultKind>> impossible = {
        {SysCall::recv, FaultKind::emfile},
        {SysCall::close, FaultKind::short_transfer},
        {SysCall::recv, FaultKind::epipe},
        {SysCall::readv, FaultKind::epipe},
        {SysCall::epoll_wait, FaultKind::eagain},
        {SysCall::bind, FaultKind::eintr},
        {SysCall::connect, FaultKind::eagain},
        {SysCall::accept4, FaultKind::econnreset},
        {SysCall::epoll_ctl, FaultKind::eintr},
        {SysCall::send, FaultKind::econnrefused},
        {SysCall::accept4, FaultKind::short_transfer},
        {SysCall::connect, FaultKind::emfile},
        {SysCall::poll, FaultKind::eagain},
        {SysCall::poll, FaultKind::short_transfer},
    };
    for (const auto& [call, fault] : impossible) {
        INFO(eagain::to_string(call) << " " << eagain::to_string(fault));
        FaultRule rule = rule_on(call, fault);
        rule.short_limit_bytes = 1;
        CHECK(faulty.add_rule(rule) == RuleError::fault_impossible_for_call);
    }
    CHECK(faulty.rule_count() == 0);
}

TEST_CASE("add_rule accepts every fault Linux can return from that call", "[faulty]") {
    LinuxSys linux_sys;
    FaultySys faulty(linux_sys, 1);
    const std::vector<std::pair<SysCall, FaultKind>> possible = {
        {SysCall::send, FaultKind::short_transfer}, {SysCall::writev, FaultKind::short_transfer},
        {SysCall::recv, FaultKind::short_transfer}, {SysCall::readv, FaultKind::short_transfer},
        {SysCall::send, FaultKind::eagain},         {SysCall::recv, FaultKind::eagain},
        {SysCall::accept4, FaultKind::eagain},      {SysCall::epoll_wait, FaultKind::eintr},
        {SysCall::connect, FaultKind::eintr},       {SysCall::close, FaultKind::eintr},
        {SysCall::send, FaultKind::econnreset},     {SysCall::recv, FaultKind::econnreset},
        {SysCall::writev, FaultKind::epipe},        {SysCall::connect, FaultKind::econnrefused},
        {SysCall::connect, FaultKind::etimedout},   {SysCall::accept4, FaultKind::econnaborted},
        {SysCall::accept4, FaultKind::emfile},      {SysCall::poll, FaultKind::eintr},
    };
    for (const auto& [call, fault] : possible) {
        INFO(eagain::to_string(call) << " " << eagain::to_string(fault));
        FaultRule rule = rule_on(call, fault);
        rule.short_limit_bytes = 1;
        CHECK(faulty.add_rule(rule) == RuleError::none);
    }
    CHECK(faulty.rule_count() == possible.size());
}

TEST_CASE("add_rule rejects malformed selectors and limits", "[faulty]") {
    LinuxSys linux_sys;
    FaultySys faulty(linux_sys, 1);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    SECTION("a short transfer of zero bytes") {
        rule.fault = FaultKind::short_transfer;
        CHECK(faulty.add_rule(rule) == RuleError::short_limit_zero);
    }
    SECTION("a stream offset on a call that moves no stream bytes") {
        rule.call = SysCall::accept4;
        rule.when = CallSelector::at_stream_offset;
        CHECK(faulty.add_rule(rule) == RuleError::offset_needs_transfer);
    }
    SECTION("call number zero") {
        rule.call_number = 0;
        for (const CallSelector when :
             {CallSelector::nth_call, CallSelector::every_kth_call, CallSelector::from_nth_call}) {
            rule.when = when;
            CHECK(faulty.add_rule(rule) == RuleError::call_number_zero);
        }
    }
    SECTION("a chance with denominator zero or above one") {
        rule.when = CallSelector::with_probability;
        rule.chance_denominator = 0;
        CHECK(faulty.add_rule(rule) == RuleError::bad_chance);
        rule.chance_numerator = 3;
        rule.chance_denominator = 2;
        CHECK(faulty.add_rule(rule) == RuleError::bad_chance);
    }
    SECTION("a call list that is empty, starts at 0, or is not strictly increasing") {
        rule.when = CallSelector::call_list;
        CHECK(faulty.add_rule(rule) == RuleError::bad_call_list);
        rule.call_list = {0, 3};
        CHECK(faulty.add_rule(rule) == RuleError::bad_call_list);
        rule.call_list = {3, 3};
        CHECK(faulty.add_rule(rule) == RuleError::bad_call_list);
        rule.call_list = {5, 3};
        CHECK(faulty.add_rule(rule) == RuleError::bad_call_list);
        rule.call_list.assign(eagain::max_call_list + 1, 0);
        std::iota(rule.call_list.begin(), rule.call_list.end(), 1);
        CHECK(faulty.add_rule(rule) == RuleError::bad_call_list);
    }
    SECTION("max_hits zero") {
        rule.max_hits = 0;
        CHECK(faulty.add_rule(rule) == RuleError::max_hits_zero);
    }
    SECTION("a negative fd filter") {
        rule.fd = -1;
        CHECK(faulty.add_rule(rule) == RuleError::negative_fd);
    }
    SECTION("more than max_rules") {
        for (std::size_t i = 0; i < FaultySys::max_rules; ++i)
            REQUIRE(faulty.add_rule(rule) == RuleError::none);
        CHECK(faulty.add_rule(rule) == RuleError::too_many_rules);
        CHECK(faulty.rule_count() == FaultySys::max_rules);
        return;
    }
    CHECK(faulty.rule_count() == 0);
}

TEST_CASE("every fault enum value has its own name", "[faulty]") {
    std::vector<std::string> names;
    for (int i = 0; i <= static_cast<int>(FaultKind::emfile); ++i)
        names.emplace_back(eagain::to_string(static_cast<FaultKind>(i)));
    for (int i = 0; i <= static_cast<int>(CallSelector::call_list); ++i)
        names.emplace_back(eagain::to_string(static_cast<CallSelector>(i)));
    for (int i = 0; i <= static_cast<int>(RuleError::too_many_rules); ++i)
        names.emplace_back(eagain::to_string(static_cast<RuleError>(i)));
    for (const std::string& name : names)
        CHECK(name.rfind("unknown", 0) == std::string::npos);
    std::sort(names.begin(), names.end());
    CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
}

// ===========================================================================
// Selectors

TEST_CASE("an nth_call rule fires on exactly the n-th matching call", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    rule.when = CallSelector::nth_call;
    rule.call_number = 3;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    CHECK(recv_one_byte(faulty, net.server, 5) == std::vector<std::string>{"ok 1", "ok 1", "EAGAIN", "ok 1", "ok 1"});
}

TEST_CASE("an every_kth_call rule fires on every k-th matching call", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    rule.when = CallSelector::every_kth_call;
    rule.call_number = 2;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    CHECK(recv_one_byte(faulty, net.server, 6) ==
          std::vector<std::string>{"ok 1", "EAGAIN", "ok 1", "EAGAIN", "ok 1", "EAGAIN"});
}

TEST_CASE("a from_nth_call rule fires on the n-th matching call and every one after", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    rule.when = CallSelector::from_nth_call;
    rule.call_number = 3;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    CHECK(recv_one_byte(faulty, net.server, 5) ==
          std::vector<std::string>{"ok 1", "ok 1", "EAGAIN", "EAGAIN", "EAGAIN"});
}

TEST_CASE("an fd filter counts and faults only calls on that fd", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    std::vector<FaultEvent> faults;
    faulty.set_observer([&](const FaultEvent& event) { faults.push_back(event); });
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    rule.fd = net.server;
    rule.when = CallSelector::nth_call;
    rule.call_number = 2;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    net.deliver(net.server, net.client, iota_bytes(10));

    CHECK(recv_one_byte(faulty, net.client, 1) == std::vector<std::string>{"ok 1"});
    CHECK(recv_one_byte(faulty, net.server, 1) == std::vector<std::string>{"ok 1"});
    CHECK(recv_one_byte(faulty, net.client, 2) == std::vector<std::string>{"ok 1", "ok 1"});
    CHECK(recv_one_byte(faulty, net.server, 1) == std::vector<std::string>{"EAGAIN"});
    REQUIRE(faults.size() == 1);
    CHECK(faults[0].fd == net.server);
    CHECK(faults[0].call_number == 2);
    CHECK(faults[0].syscall_number == 5);
}

TEST_CASE("per_fd counting numbers each fd's calls apart, whatever order they interleave in", "[faulty]") {
    Loopback net;
    const auto counting = GENERATE(eagain::RuleCounting::per_rule, eagain::RuleCounting::per_fd);
    FaultySys faulty(net.linux_sys, 1, counting);
    net.adopt(faulty);
    std::vector<FaultEvent> faults;
    faulty.set_observer([&](const FaultEvent& event) { faults.push_back(event); });
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    rule.when = CallSelector::nth_call;
    rule.call_number = 2;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    net.deliver(net.server, net.client, iota_bytes(10));

    std::vector<std::string> outcomes;
    for (const int fd : {net.server, net.client, net.server, net.client})
        outcomes.push_back(recv_one_byte(faulty, fd, 1).front());
    if (counting == eagain::RuleCounting::per_rule) {
        CHECK(outcomes == std::vector<std::string>{"ok 1", "EAGAIN", "ok 1", "ok 1"});
        REQUIRE(faults.size() == 1);
    } else {
        CHECK(outcomes == std::vector<std::string>{"ok 1", "ok 1", "EAGAIN", "EAGAIN"});
        REQUIRE(faults.size() == 2);
        CHECK(faults[0].fd == net.server);
        CHECK(faults[0].call_number == 2);  // the fd's own number, not the 3rd recv overall
        CHECK(faults[0].syscall_number == 3);
        CHECK(faults[1].fd == net.client);
        CHECK(faults[1].call_number == 2);
        CHECK(faults[1].syscall_number == 4);
    }
    CHECK(faulty.rule_hits(0) == faults.size());
}

TEST_CASE("per_fd counting limits max_hits and walks call lists on each fd", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1, eagain::RuleCounting::per_fd);
    net.adopt(faulty);
    FaultRule once = rule_on(SysCall::recv, FaultKind::eagain);
    once.max_hits = 1;
    FaultRule listed = rule_on(SysCall::send, FaultKind::short_transfer);
    listed.short_limit_bytes = 1;
    listed.when = CallSelector::call_list;
    listed.call_list = {2};
    REQUIRE(faulty.add_rule(once) == RuleError::none);
    REQUIRE(faulty.add_rule(listed) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    net.deliver(net.server, net.client, iota_bytes(10));

    CHECK(recv_one_byte(faulty, net.client, 2) == std::vector<std::string>{"EAGAIN", "ok 1"});
    CHECK(recv_one_byte(faulty, net.server, 2) == std::vector<std::string>{"EAGAIN", "ok 1"});
    CHECK(faulty.rule_hits(0) == 2);
    std::vector<std::string> sends;
    for (const int fd : {net.client, net.server, net.server, net.client})
        sends.push_back(outcome(faulty.send(fd, iota_bytes(4), MSG_NOSIGNAL)));
    CHECK(sends == std::vector<std::string>{"ok 4", "ok 4", "ok 1", "ok 1"});
}

TEST_CASE("per_fd counting starts afresh on an fd closed and handed out again", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1, eagain::RuleCounting::per_fd);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    rule.when = CallSelector::nth_call;
    rule.call_number = 1;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    CHECK(recv_one_byte(faulty, net.server, 2) == std::vector<std::string>{"EAGAIN", "ok 1"});

    const int second_client = net.connect_client();
    REQUIRE(wait_for(net.linux_sys, net.listener, epoll_in));
    const int old_server = net.server;
    REQUIRE(faulty.close(net.server).ok());
    net.server = -1;
    const auto accepted = faulty.accept4(net.listener, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    REQUIRE(accepted.ok());
    net.server = accepted.value;
    REQUIRE(net.server == old_server);
    net.deliver(second_client, net.server, iota_bytes(10));
    CHECK(recv_one_byte(faulty, net.server, 2) == std::vector<std::string>{"EAGAIN", "ok 1"});
    CHECK(faulty.rule_hits(0) == 2);
    REQUIRE(faulty.close(second_client).ok());
}

TEST_CASE("a short write at a stream offset ends the transfer exactly at the offset", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::send, FaultKind::short_transfer);
    rule.fd = net.client;
    rule.when = CallSelector::at_stream_offset;
    rule.stream_offset_bytes = 7;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    const auto bytes = iota_bytes(20);

    SECTION("a call that ends before the offset is not cut") {
        CHECK(outcome(faulty.send(net.client, std::span(bytes).first(4), 0)) == "ok 4");
        CHECK(outcome(faulty.send(net.client, std::span(bytes).subspan(4), 0)) == "ok 3");
        CHECK(drain(net.linux_sys, net.server) == iota_bytes(7));
    }
    SECTION("a call that starts at the offset is not cut") {
        CHECK(outcome(faulty.send(net.client, std::span(bytes).first(7), 0)) == "ok 7");
        CHECK(outcome(faulty.send(net.client, std::span(bytes).subspan(7), 0)) == "ok 13");
        CHECK(faulty.faults_injected() == 0);
        return;
    }
    CHECK(faulty.faults_injected() == 1);
    CHECK(outcome(faulty.send(net.client, std::span(bytes).subspan(7), 0)) == "ok 13");
    CHECK(drain(net.linux_sys, net.server) == iota_bytes(13, 7));
}

TEST_CASE("a short read at a stream offset ends the read exactly at the offset", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::short_transfer);
    rule.when = CallSelector::at_stream_offset;
    rule.stream_offset_bytes = 3;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    std::array<std::uint8_t, 100> buffer{};
    CHECK(outcome(faulty.recv(net.server, buffer, 0)) == "ok 3");
    CHECK(outcome(faulty.recv(net.server, buffer, 0)) == "ok 7");
    CHECK(faulty.faults_injected() == 1);
}

TEST_CASE("an error at a stream offset fires on the call that would move that byte", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    rule.when = CallSelector::at_stream_offset;
    rule.stream_offset_bytes = 4;
    rule.max_hits = 1;  // EAGAIN moves nothing, so the retry covers the offset again
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    std::array<std::uint8_t, 2> buffer{};
    std::vector<std::string> outcomes;
    for (int i = 0; i < 4; ++i)
        outcomes.push_back(outcome(faulty.recv(net.server, buffer, 0)));
    CHECK(outcomes == std::vector<std::string>{"ok 2", "ok 2", "EAGAIN", "ok 2"});
    CHECK(buffer[0] == 4);
}

TEST_CASE("a probability rule decides the same per seed and differently between seeds", "[faulty]") {
    // epoll_wait on an empty set consumes nothing, so every call is a pure
    // decision.
    const auto decisions = [](std::uint64_t seed) {
        LinuxSys linux_sys;
        FaultySys faulty(linux_sys, seed);
        FaultRule rule = rule_on(SysCall::epoll_wait, FaultKind::eintr);
        rule.when = CallSelector::with_probability;
        rule.chance_numerator = 1;
        rule.chance_denominator = 2;
        REQUIRE(faulty.add_rule(rule) == RuleError::none);
        const int epoll_fd = epoll_set(faulty);
        std::vector<bool> interrupted;
        std::array<EpollEvent, 1> events{};
        for (int i = 0; i < 64; ++i) {
            const auto n = faulty.epoll_wait(epoll_fd, events, 0);
            REQUIRE((n.ok() || n.error == EINTR));
            interrupted.push_back(!n.ok());
        }
        REQUIRE(faulty.close(epoll_fd).ok());
        return interrupted;
    };
    const std::vector<bool> first = decisions(7);
    CHECK(decisions(7) == first);
    CHECK(decisions(8) != first);
    CHECK(std::count(first.begin(), first.end(), true) > 0);
    CHECK(std::count(first.begin(), first.end(), false) > 0);
}

TEST_CASE("a call-list rule fires on exactly the listed matching calls", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    rule.when = CallSelector::call_list;
    rule.call_list = {2, 3, 6};
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    CHECK(recv_one_byte(faulty, net.server, 7) ==
          std::vector<std::string>{"ok 1", "EAGAIN", "EAGAIN", "ok 1", "ok 1", "EAGAIN", "ok 1"});
    CHECK(faulty.rule_hits(0) == 3);
}

TEST_CASE("probability rules replaced by call lists of the calls they fired on give the same faults", "[faulty]") {
    // Two probability rules on one call, the first of which often wins: the
    // lists are built from the observed call numbers, per rule, and must
    // reproduce the same faults without drawing (with another seed, too).
    const auto run = [](std::uint64_t seed, const std::vector<FaultRule>& rules) {
        LinuxSys linux_sys;
        FaultySys faulty(linux_sys, seed);
        for (const FaultRule& rule : rules)
            REQUIRE(faulty.add_rule(rule) == RuleError::none);
        std::vector<FaultEvent> events;
        faulty.set_observer([&](const FaultEvent& event) { events.push_back(event); });
        const int epoll_fd = epoll_set(faulty);
        std::array<EpollEvent, 1> ready{};
        for (int i = 0; i < 200; ++i)
            (void)faulty.epoll_wait(epoll_fd, ready, 0);
        REQUIRE(faulty.close(epoll_fd).ok());
        return events;
    };
    std::vector<FaultRule> chance_rules(2, rule_on(SysCall::epoll_wait, FaultKind::eintr));
    chance_rules[0].when = CallSelector::with_probability;
    chance_rules[0].chance_numerator = 1;
    chance_rules[0].chance_denominator = 3;
    chance_rules[1] = chance_rules[0];
    chance_rules[1].chance_numerator = 1;
    chance_rules[1].chance_denominator = 2;
    chance_rules[1].max_hits = 20;
    const std::vector<FaultEvent> original = run(11, chance_rules);
    REQUIRE(original.size() > 40);

    std::vector<FaultRule> exact = chance_rules;
    for (FaultRule& rule : exact) {
        rule.when = CallSelector::call_list;
        rule.call_list.clear();
        rule.max_hits.reset();
    }
    for (const FaultEvent& event : original)
        exact[event.rule_index].call_list.push_back(event.call_number);
    CHECK(run(11, exact) == original);
    CHECK(run(12, exact) == original);
}

TEST_CASE("a rule stops firing after max_hits", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    rule.max_hits = 2;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    CHECK(recv_one_byte(faulty, net.server, 4) == std::vector<std::string>{"EAGAIN", "EAGAIN", "ok 1", "ok 1"});
    CHECK(faulty.rule_hits(0) == 2);
    CHECK(faulty.faults_injected() == 2);
}

TEST_CASE("the first rule that fires wins", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule first = rule_on(SysCall::recv, FaultKind::econnreset);
    first.when = CallSelector::nth_call;
    first.call_number = 2;
    REQUIRE(faulty.add_rule(first) == RuleError::none);
    REQUIRE(faulty.add_rule(rule_on(SysCall::recv, FaultKind::eagain)) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    CHECK(recv_one_byte(faulty, net.server, 3) == std::vector<std::string>{"EAGAIN", "ECONNRESET", "EAGAIN"});
    CHECK(faulty.rule_hits(0) == 1);
    CHECK(faulty.rule_hits(1) == 2);
}

// ===========================================================================
// What each fault does

TEST_CASE("a short write puts exactly the allowed bytes on the wire", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::send, FaultKind::short_transfer);
    rule.short_limit_bytes = 3;
    FaultRule vectored = rule;
    vectored.call = SysCall::writev;
    vectored.short_limit_bytes = 5;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    REQUIRE(faulty.add_rule(vectored) == RuleError::none);

    SECTION("send") {
        CHECK(outcome(faulty.send(net.client, iota_bytes(10), 0)) == "ok 3");
        CHECK(drain(net.linux_sys, net.server) == iota_bytes(3));
    }
    SECTION("writev, with the iovecs trimmed") {
        auto head = iota_bytes(4, 0);
        auto body = iota_bytes(6, 100);
        const std::array<iovec, 2> buffers = {iovec{head.data(), head.size()}, iovec{body.data(), body.size()}};
        CHECK(outcome(faulty.writev(net.client, buffers)) == "ok 5");
        CHECK(drain(net.linux_sys, net.server) == std::vector<std::uint8_t>{0, 1, 2, 3, 100});
    }
    SECTION("a call no longer than the limit is left alone") {
        CHECK(outcome(faulty.send(net.client, iota_bytes(3), 0)) == "ok 3");
        CHECK(faulty.faults_injected() == 0);
    }
}

TEST_CASE("a short read offers at most the allowed bytes", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::short_transfer);
    rule.short_limit_bytes = 4;
    FaultRule vectored = rule;
    vectored.call = SysCall::readv;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    REQUIRE(faulty.add_rule(vectored) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));

    SECTION("recv") {
        std::array<std::uint8_t, 100> buffer{};
        CHECK(outcome(faulty.recv(net.server, buffer, 0)) == "ok 4");
    }
    SECTION("readv, with the iovecs trimmed") {
        std::array<std::uint8_t, 3> first{};
        std::array<std::uint8_t, 50> second{};
        const std::array<iovec, 2> buffers = {iovec{first.data(), first.size()}, iovec{second.data(), second.size()}};
        CHECK(outcome(faulty.readv(net.server, buffers)) == "ok 4");
        CHECK(first == std::array<std::uint8_t, 3>{0, 1, 2});
        CHECK(second[0] == 3);
    }
    CHECK(net.linux_sys.ioctl_fionread(net.server).value == 6);
}

TEST_CASE("EAGAIN is never injected on a blocking fd", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    REQUIRE(faulty.add_rule(rule_on(SysCall::recv, FaultKind::eagain)) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(10));
    REQUIRE(faulty.set_nonblocking(net.server, false).ok());
    std::array<std::uint8_t, 1> byte{};
    CHECK(outcome(faulty.recv(net.server, byte, 0)) == "ok 1");
    CHECK(faulty.faults_injected() == 0);
    SECTION("but is with MSG_DONTWAIT, which makes that one call non-blocking") {
        CHECK(outcome(faulty.recv(net.server, byte, MSG_DONTWAIT)) == "EAGAIN");
    }
    SECTION("and is again once the fd is non-blocking") {
        REQUIRE(faulty.set_nonblocking(net.server, true).ok());
        CHECK(outcome(faulty.recv(net.server, byte, 0)) == "EAGAIN");
    }
}

// Whether an fd is blocking is known from the calls the program makes, never
// asked of the inner Sys: a rule-less FaultySys between them counts what
// reaches the kernel.
TEST_CASE("FaultySys tracks O_NONBLOCK from the program's calls and makes no fcntl of its own", "[faulty]") {
    Loopback net;
    FaultySys below(net.linux_sys, 0);  // counts the calls that reach the kernel
    FaultySys faulty(below, 1);
    REQUIRE(faulty.add_rule(rule_on(SysCall::recv, FaultKind::eagain)) == RuleError::none);
    std::array<std::uint8_t, 1> byte{};
    const auto recv_outcome = [&](int fd) { return outcome(faulty.recv(fd, byte, 0)); };
    std::vector<int> to_close;

    SECTION("an fd it did not see made counts as blocking: no EAGAIN, though the kernel's fd is non-blocking") {
        net.deliver(net.client, net.server, iota_bytes(1));
        CHECK(recv_outcome(net.server) == "ok 1");
        CHECK(recv_outcome(net.server) == "EAGAIN");  // the kernel's own: nothing left to read
        CHECK(faulty.faults_injected() == 0);
        SECTION("until the program's own F_GETFL shows O_NONBLOCK") {
            const auto flags = faulty.fcntl(net.server, F_GETFL, 0);
            REQUIRE(flags.ok());
            REQUIRE((flags.value & O_NONBLOCK) != 0);
            CHECK(recv_outcome(net.server) == "EAGAIN");
            CHECK(faulty.faults_injected() == 1);
        }
    }
    SECTION("socket() with and without SOCK_NONBLOCK, then F_SETFL") {
        const auto nonblocking = faulty.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        const auto blocking = faulty.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(nonblocking.ok());
        REQUIRE(blocking.ok());
        to_close = {nonblocking.value, blocking.value};
        CHECK(recv_outcome(nonblocking.value) == "EAGAIN");  // injected: the inner call is not made
        CHECK(recv_outcome(blocking.value) == "ENOTCONN");   // the kernel's answer, not an injection
        CHECK(faulty.faults_injected() == 1);
        REQUIRE(faulty.fcntl(blocking.value, F_SETFL, O_RDWR | O_NONBLOCK).ok());
        REQUIRE(faulty.fcntl(nonblocking.value, F_SETFL, O_RDWR).ok());
        CHECK(recv_outcome(blocking.value) == "EAGAIN");
        CHECK(recv_outcome(nonblocking.value) == "ENOTCONN");
        CHECK(faulty.faults_injected() == 2);
    }
    SECTION("a closed fd's number, reused by a blocking socket, is blocking") {
        const auto first = faulty.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        REQUIRE(first.ok());
        REQUIRE(faulty.close(first.value).ok());
        const auto reused = faulty.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(reused.ok());
        to_close = {reused.value};
        REQUIRE(reused.value == first.value);  // lowest free fd
        CHECK(recv_outcome(reused.value) == "ENOTCONN");
        CHECK(faulty.faults_injected() == 0);
    }
    SECTION("accept4: its flags decide, not the listener's O_NONBLOCK (Linux does not inherit it)") {
        FaultRule refuse = rule_on(SysCall::accept4, FaultKind::eagain);
        refuse.max_hits = 1;
        REQUIRE(faulty.add_rule(refuse) == RuleError::none);
        // The listener was made on the kernel directly: blocking as far as
        // FaultySys knows, so its accept4 rule does not fire.
        CHECK(faulty.accept4(net.listener, nullptr, SOCK_NONBLOCK).error == EAGAIN);  // the kernel's: none queued
        CHECK(faulty.rule_hits(1) == 0);
        REQUIRE(faulty.fcntl(net.listener, F_SETFL, O_RDWR | O_NONBLOCK).ok());
        CHECK(faulty.accept4(net.listener, nullptr, SOCK_NONBLOCK).error == EAGAIN);
        CHECK(faulty.rule_hits(1) == 1);

        const int first_client = net.connect_client();
        const int second_client = net.connect_client();
        to_close = {first_client, second_client};
        REQUIRE(wait_for(net.linux_sys, net.listener, epoll_in));
        const auto nonblocking = faulty.accept4(net.listener, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        REQUIRE(nonblocking.ok());
        to_close.push_back(nonblocking.value);
        REQUIRE(wait_for(net.linux_sys, net.listener, epoll_in));
        const auto blocking = faulty.accept4(net.listener, nullptr, SOCK_CLOEXEC);
        REQUIRE(blocking.ok());
        to_close.push_back(blocking.value);
        CHECK(recv_outcome(nonblocking.value) == "EAGAIN");  // injected
        CHECK(faulty.rule_hits(0) == 1);
        // Blocking: a byte waits for it, so the kernel's recv returns at once.
        const bool first_is_blocking =
            net.linux_sys.getpeername(blocking.value).value == net.linux_sys.getsockname(first_client).value;
        send_all(net.linux_sys, first_is_blocking ? first_client : second_client, iota_bytes(1));
        REQUIRE(wait_for(net.linux_sys, blocking.value, epoll_in));
        CHECK(recv_outcome(blocking.value) == "ok 1");
        CHECK(faulty.rule_hits(0) == 1);
    }
    for (const int fd : to_close)
        REQUIRE(faulty.close(fd).ok());
    // The fcntl calls that reached the kernel are the program's, none more.
    CHECK(below.calls(SysCall::fcntl) == faulty.calls(SysCall::fcntl));
}

TEST_CASE("injected errors perform no inner call", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    SECTION("send: nothing reaches the peer") {
        const FaultKind fault = GENERATE(FaultKind::eagain, FaultKind::eintr, FaultKind::econnreset, FaultKind::epipe);
        FaultRule rule = rule_on(SysCall::send, fault);
        rule.max_hits = 1;
        REQUIRE(faulty.add_rule(rule) == RuleError::none);
        CHECK_FALSE(faulty.send(net.client, iota_bytes(10), MSG_NOSIGNAL).ok());
        // TCP keeps order: had the faulted send sent anything, it would
        // arrive before this marker.
        send_all(faulty, net.client, {0xee});
        CHECK(drain(net.linux_sys, net.server) == std::vector<std::uint8_t>{0xee});
    }
    SECTION("recv: nothing is consumed") {
        const FaultKind fault = GENERATE(FaultKind::eagain, FaultKind::eintr, FaultKind::econnreset);
        REQUIRE(faulty.add_rule(rule_on(SysCall::recv, fault)) == RuleError::none);
        net.deliver(net.client, net.server, iota_bytes(5));
        std::array<std::uint8_t, 100> buffer{};
        CHECK_FALSE(faulty.recv(net.server, buffer, 0).ok());
        CHECK(net.linux_sys.ioctl_fionread(net.server).value == 5);
    }
}

TEST_CASE("EINTR on connect performs the connect, writable and SO_ERROR 0 follow", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    REQUIRE(faulty.add_rule(rule_on(SysCall::connect, FaultKind::eintr)) == RuleError::none);
    const auto fd = faulty.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd.ok());
    CHECK(faulty.connect(fd.value, SockAddr::ipv4_loopback(net.port)).error == EINTR);

    const int epoll_fd = epoll_set(faulty);
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd.value, EpollEvent{epoll_out, 1}).ok());
    std::array<EpollEvent, 4> events{};
    const auto n = faulty.epoll_wait(epoll_fd, events, wait_ms);
    REQUIRE(n.ok());
    REQUIRE(n.value == 1);
    CHECK((events[0].events & epoll_out) != 0);
    CHECK(faulty.socket_error(fd.value).value == 0);
    CHECK(faulty.getpeername(fd.value).value.port() == net.port);
    CHECK(faulty.rule_hits(0) == 1);
    REQUIRE(faulty.close(epoll_fd).ok());
    REQUIRE(faulty.close(fd.value).ok());
}

TEST_CASE("ECONNREFUSED on connect is reported without attempting the connection", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::connect, FaultKind::econnrefused);
    rule.max_hits = 1;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    const int fd = net.make_socket();
    CHECK(faulty.connect(fd, SockAddr::ipv4_loopback(net.port)).error == ECONNREFUSED);
    // Had an attempt started, a second connect would say EALREADY or EISCONN.
    const auto again = faulty.connect(fd, SockAddr::ipv4_loopback(net.port));
    CHECK((again.ok() || again.error == EINPROGRESS));
    REQUIRE(faulty.close(fd).ok());
}

TEST_CASE("EINTR on close still closes the fd", "[faulty]") {
    LinuxSys linux_sys;
    FaultySys faulty(linux_sys, 1);
    REQUIRE(faulty.add_rule(rule_on(SysCall::close, FaultKind::eintr)) == RuleError::none);
    const auto fd = faulty.epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(fd.ok());
    CHECK(faulty.close(fd.value).error == EINTR);
    CHECK(linux_sys.fcntl(fd.value, F_GETFL, 0).error == EBADF);
}

// ===========================================================================
// Readiness owed by injected faults

TEST_CASE("an injected EAGAIN owes the edge-triggered readiness it hid", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    rule.when = CallSelector::nth_call;
    rule.call_number = 1;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    const int epoll_fd = epoll_set(faulty);
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, net.server, EpollEvent{epoll_in | epoll_et, 42}).ok());
    send_all(net.linux_sys, net.client, iota_bytes(5));

    std::array<EpollEvent, 8> events{};
    REQUIRE(faulty.epoll_wait(epoll_fd, events, wait_ms).value == 1);
    REQUIRE(events[0] == EpollEvent{epoll_in, 42});
    std::array<std::uint8_t, 100> buffer{};
    REQUIRE(faulty.recv(net.server, buffer, 0).error == EAGAIN);

    // The kernel gave its one edge already: a driver seeing only the inner
    // epoll_wait would wait forever for data that is sitting there.
    CHECK(net.linux_sys.epoll_wait(epoll_fd, events, 0).value == 0);

    const eagain::Nanos before = faulty.now();
    const auto n = faulty.epoll_wait(epoll_fd, events, wait_ms);
    CHECK(faulty.now() - before < std::chrono::milliseconds(wait_ms / 2));  // owed edges do not wait
    REQUIRE(n.value == 1);
    CHECK(events[0] == EpollEvent{epoll_in, 42});
    CHECK(outcome(faulty.recv(net.server, buffer, 0)) == "ok 5");
    CHECK(faulty.epoll_wait(epoll_fd, events, 0).value == 0);  // delivered once
    REQUIRE(faulty.close(epoll_fd).ok());
}

TEST_CASE("an owed edge is OR-ed into the inner event for the same fd, never duplicated", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    REQUIRE(faulty.add_rule(rule_on(SysCall::send, FaultKind::eagain)) == RuleError::none);
    const int epoll_fd = epoll_set(faulty);
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, net.client, EpollEvent{epoll_in | epoll_out | epoll_et, 7}).ok());
    std::array<EpollEvent, 8> events{};
    REQUIRE(faulty.epoll_wait(epoll_fd, events, wait_ms).value == 1);  // the first writable edge
    REQUIRE(faulty.send(net.client, iota_bytes(3), 0).error == EAGAIN);
    net.deliver(net.server, net.client, iota_bytes(3));

    REQUIRE(faulty.epoll_wait(epoll_fd, events, wait_ms).value == 1);
    CHECK(events[0].data == 7);
    CHECK((events[0].events & epoll_in) != 0);
    CHECK((events[0].events & epoll_out) != 0);
    REQUIRE(faulty.close(epoll_fd).ok());
}

TEST_CASE("owed edges respect maxevents and wait for the next epoll_wait", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    REQUIRE(faulty.add_rule(rule_on(SysCall::recv, FaultKind::eintr)) == RuleError::none);
    const int epoll_fd = epoll_set(faulty);
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, net.server, EpollEvent{epoll_in | epoll_et, 1}).ok());
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, net.client, EpollEvent{epoll_in | epoll_et, 2}).ok());
    std::array<std::uint8_t, 10> buffer{};
    REQUIRE(faulty.recv(net.server, buffer, 0).error == EINTR);
    REQUIRE(faulty.recv(net.client, buffer, 0).error == EINTR);

    std::array<EpollEvent, 1> one{};
    std::vector<std::uint64_t> delivered;
    for (int i = 0; i < 2; ++i) {
        REQUIRE(faulty.epoll_wait(epoll_fd, one, 0).value == 1);
        delivered.push_back(one[0].data);
    }
    std::sort(delivered.begin(), delivered.end());
    CHECK(delivered == std::vector<std::uint64_t>{1, 2});
    CHECK(faulty.epoll_wait(epoll_fd, one, 0).value == 0);
    REQUIRE(faulty.close(epoll_fd).ok());
}

TEST_CASE("an owed edge on a disarmed ONESHOT registration waits for the re-arm", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eagain);
    rule.max_hits = 1;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    const int epoll_fd = epoll_set(faulty);
    const EpollEvent oneshot{epoll_in | epoll_et | epoll_oneshot, 9};
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, net.server, oneshot).ok());
    std::array<EpollEvent, 8> events{};
    std::array<std::uint8_t, 100> buffer{};

    SECTION("disarmed by the kernel's event") {
        send_all(net.linux_sys, net.client, iota_bytes(5));
        REQUIRE(faulty.epoll_wait(epoll_fd, events, wait_ms).value == 1);
        REQUIRE(faulty.recv(net.server, buffer, 0).error == EAGAIN);
        CHECK(faulty.epoll_wait(epoll_fd, events, 0).value == 0);
    }
    SECTION("disarmed by delivering the owed edge: the kernel's copy waits too") {
        REQUIRE(faulty.recv(net.server, buffer, 0).error == EAGAIN);  // nothing there yet: spurious, legal
        REQUIRE(faulty.epoll_wait(epoll_fd, events, 0).value == 1);
        net.deliver(net.client, net.server, iota_bytes(5));
        CHECK(faulty.epoll_wait(epoll_fd, events, 0).value == 0);
    }
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_MOD, net.server, oneshot).ok());
    REQUIRE(faulty.epoll_wait(epoll_fd, events, wait_ms).value == 1);
    CHECK(events[0] == EpollEvent{epoll_in, 9});
    CHECK(outcome(faulty.recv(net.server, buffer, 0)) == "ok 5");
    REQUIRE(faulty.close(epoll_fd).ok());
}

TEST_CASE("EINTR on epoll_wait returns no events and leaves the readiness", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::epoll_wait, FaultKind::eintr);
    rule.max_hits = 1;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    const int epoll_fd = epoll_set(faulty);
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, net.server, EpollEvent{epoll_in | epoll_et, 3}).ok());
    net.deliver(net.client, net.server, iota_bytes(5));

    std::array<EpollEvent, 4> events{};
    events.fill(EpollEvent{0xdead, 0xbeef});
    const auto interrupted = faulty.epoll_wait(epoll_fd, events, wait_ms);
    CHECK(interrupted.error == EINTR);
    CHECK(events[0] == EpollEvent{0xdead, 0xbeef});
    // The edge-triggered edge is still there, so the inner was not called.
    REQUIRE(faulty.epoll_wait(epoll_fd, events, wait_ms).value == 1);
    CHECK(events[0] == EpollEvent{epoll_in, 3});
    REQUIRE(faulty.close(epoll_fd).ok());
}

TEST_CASE("EINTR on poll fills no revents, and the readiness is there on the next poll", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::poll, FaultKind::eintr);
    rule.max_hits = 1;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(5));

    std::array<pollfd, 1> set{{{net.server, POLLIN, 0x7f}}};
    CHECK(faulty.poll(set, wait_ms).error == EINTR);
    CHECK(set[0].revents == 0x7f);  // untouched: the call was not made
    CHECK(faulty.calls(SysCall::poll) == 1);
    const eagain::FdResult again = faulty.poll(set, wait_ms);
    REQUIRE(again.ok());
    CHECK(again.value == 1);
    CHECK(set[0].revents == POLLIN);
}

TEST_CASE("EMFILE on accept4 leaves the connection queued and owes the listener's edge", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::accept4, FaultKind::emfile);
    rule.max_hits = 1;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    const int epoll_fd = epoll_set(faulty);
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, net.listener, EpollEvent{epoll_in | epoll_et, 5}).ok());
    const int second_client = net.connect_client();
    std::array<EpollEvent, 4> events{};
    REQUIRE(faulty.epoll_wait(epoll_fd, events, wait_ms).value == 1);
    CHECK(faulty.accept4(net.listener, nullptr, SOCK_NONBLOCK).error == EMFILE);
    REQUIRE(faulty.epoll_wait(epoll_fd, events, 0).value == 1);
    CHECK(events[0] == EpollEvent{epoll_in, 5});
    const auto accepted = faulty.accept4(net.listener, nullptr, SOCK_NONBLOCK);
    CHECK(accepted.ok());
    REQUIRE(faulty.close(accepted.value).ok());
    REQUIRE(faulty.close(second_client).ok());
    REQUIRE(faulty.close(epoll_fd).ok());
}

TEST_CASE("close and EPOLL_CTL_DEL drop owed edges", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    REQUIRE(faulty.add_rule(rule_on(SysCall::recv, FaultKind::eagain)) == RuleError::none);
    const int epoll_fd = epoll_set(faulty);
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, net.server, EpollEvent{epoll_in | epoll_et, 1}).ok());
    std::array<std::uint8_t, 10> buffer{};
    REQUIRE(faulty.recv(net.server, buffer, 0).error == EAGAIN);
    SECTION("close") {
        REQUIRE(faulty.close(net.server).ok());
        net.server = -1;
    }
    SECTION("EPOLL_CTL_DEL") {
        REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_DEL, net.server, EpollEvent{}).ok());
    }
    std::array<EpollEvent, 4> events{};
    CHECK(faulty.epoll_wait(epoll_fd, events, 0).value == 0);
    REQUIRE(faulty.close(epoll_fd).ok());
}

TEST_CASE("closing an epoll fd drops the owed edges of its registrations, and only those", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    REQUIRE(faulty.add_rule(rule_on(SysCall::recv, FaultKind::eintr)) == RuleError::none);
    const int closing = epoll_set(faulty);
    const int staying = epoll_set(faulty);
    REQUIRE(faulty.epoll_ctl(closing, EPOLL_CTL_ADD, net.server, EpollEvent{epoll_in | epoll_et, 1}).ok());
    REQUIRE(faulty.epoll_ctl(staying, EPOLL_CTL_ADD, net.server, EpollEvent{epoll_in | epoll_et, 2}).ok());
    std::array<std::uint8_t, 10> buffer{};
    REQUIRE(faulty.recv(net.server, buffer, 0).error == EINTR);
    CHECK(faulty.owes_edges());
    REQUIRE(faulty.close(closing).ok());
    CHECK(faulty.owes_edges());  // the other set's edge is still owed
    std::array<EpollEvent, 4> events{};
    REQUIRE(faulty.epoll_wait(staying, events, 0).value == 1);
    CHECK(events[0] == EpollEvent{epoll_in, 2});
    CHECK_FALSE(faulty.owes_edges());
    REQUIRE(faulty.close(staying).ok());
}

TEST_CASE("EPOLL_CTL_MOD with new data: the owed edge and the inner's events carry the new data", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::eintr);
    rule.max_hits = 1;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    const int epoll_fd = epoll_set(faulty);
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, net.server, EpollEvent{epoll_in | epoll_et, 1}).ok());
    std::array<std::uint8_t, 10> buffer{};
    REQUIRE(faulty.recv(net.server, buffer, 0).error == EINTR);
    REQUIRE(faulty.epoll_ctl(epoll_fd, EPOLL_CTL_MOD, net.server, EpollEvent{epoll_in | epoll_et, 9}).ok());
    std::array<EpollEvent, 4> events{};
    REQUIRE(faulty.epoll_wait(epoll_fd, events, 0).value == 1);
    CHECK(events[0] == EpollEvent{epoll_in, 9});
    CHECK_FALSE(faulty.owes_edges());

    // The inner's event for the new data is matched to the registration:
    // an edge owed again is OR-ed into it, not appended as a second event.
    REQUIRE(faulty.add_rule(rule_on(SysCall::send, FaultKind::eintr)) == RuleError::none);
    REQUIRE(
        faulty.epoll_ctl(epoll_fd, EPOLL_CTL_MOD, net.server, EpollEvent{epoll_in | epoll_out | epoll_et, 10}).ok());
    REQUIRE(faulty.send(net.server, iota_bytes(1), 0).error == EINTR);
    REQUIRE(faulty.epoll_wait(epoll_fd, events, wait_ms).value == 1);  // the MOD's writable edge, and the owed one
    CHECK(events[0] == EpollEvent{epoll_out, 10});
    CHECK_FALSE(faulty.owes_edges());
    REQUIRE(faulty.close(epoll_fd).ok());
}

TEST_CASE("a reused fd starts its stream byte count from zero", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    FaultRule rule = rule_on(SysCall::recv, FaultKind::short_transfer);
    rule.when = CallSelector::at_stream_offset;
    rule.stream_offset_bytes = 5;
    REQUIRE(faulty.add_rule(rule) == RuleError::none);
    net.deliver(net.client, net.server, iota_bytes(3));
    std::array<std::uint8_t, 100> buffer{};
    REQUIRE(outcome(faulty.recv(net.server, buffer, 0)) == "ok 3");  // short of the offset: the cut stays pending

    // The second client's socket is made first, so the fd the close frees
    // is the lowest free one when accept4 runs.
    const int second_client = net.connect_client();
    REQUIRE(wait_for(net.linux_sys, net.listener, epoll_in));
    const int old_server = net.server;
    REQUIRE(faulty.close(net.server).ok());
    net.server = -1;
    const auto accepted = faulty.accept4(net.listener, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    REQUIRE(accepted.ok());
    net.server = accepted.value;
    REQUIRE(net.server == old_server);  // lowest free fd: the same number

    net.deliver(second_client, net.server, iota_bytes(10));
    CHECK(outcome(faulty.recv(net.server, buffer, 0)) == "ok 5");  // not 2: the old stream's 3 bytes are gone
    CHECK(faulty.rule_hits(0) == 1);
    REQUIRE(faulty.close(second_client).ok());
}

// ===========================================================================
// Observing

TEST_CASE("the observer receives every injected fault with its call, fd, number and rule", "[faulty]") {
    Loopback net;
    FaultySys faulty(net.linux_sys, 1);
    net.adopt(faulty);
    std::vector<FaultEvent> faults;
    faulty.set_observer([&](const FaultEvent& event) { faults.push_back(event); });
    FaultRule again = rule_on(SysCall::recv, FaultKind::eagain);
    again.fd = net.server;
    again.when = CallSelector::nth_call;
    again.call_number = 2;
    FaultRule short_write = rule_on(SysCall::send, FaultKind::short_transfer);
    short_write.short_limit_bytes = 3;
    short_write.max_hits = 1;
    FaultRule short_read = rule_on(SysCall::recv, FaultKind::short_transfer);
    short_read.short_limit_bytes = 2;
    short_read.when = CallSelector::nth_call;
    short_read.call_number = 3;
    REQUIRE(faulty.add_rule(again) == RuleError::none);
    REQUIRE(faulty.add_rule(short_write) == RuleError::none);
    REQUIRE(faulty.add_rule(short_read) == RuleError::none);

    REQUIRE(outcome(faulty.send(net.client, iota_bytes(10), 0)) == "ok 3");
    REQUIRE(outcome(faulty.send(net.client, iota_bytes(10), 0)) == "ok 10");
    REQUIRE(wait_for(net.linux_sys, net.server, epoll_in));
    std::array<std::uint8_t, 100> buffer{};
    REQUIRE(outcome(faulty.recv(net.server, std::span(buffer).first(1), 0)) == "ok 1");
    REQUIRE(outcome(faulty.recv(net.server, buffer, 0)) == "EAGAIN");
    REQUIRE(outcome(faulty.recv(net.server, buffer, 0)) == "ok 2");

    REQUIRE(faults.size() == 3);
    CHECK(faults[0] == FaultEvent{SysCall::send, net.client, 1, 1, 1, FaultKind::short_transfer, 10, 3});
    CHECK(faults[1] == FaultEvent{SysCall::recv, net.server, 2, 2, 0, FaultKind::eagain, 0, 0});
    CHECK(faults[2] == FaultEvent{SysCall::recv, net.server, 3, 3, 2, FaultKind::short_transfer, 100, 2});
    CHECK(eagain::describe(faults[0]) == "short write 3 of 10 bytes");
    CHECK(eagain::describe(faults[1]) == "EAGAIN");
    CHECK(eagain::describe(faults[2]) == "short read 2 of 100 bytes");
    CHECK(faulty.faults_injected() == 3);
    CHECK(faulty.calls(SysCall::send) == 2);
    CHECK(faulty.calls(SysCall::recv) == 3);
    CHECK(faulty.calls(SysCall::accept4) == 0);
}
