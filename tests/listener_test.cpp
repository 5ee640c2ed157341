// apps/listener.h: the accept path every server app shares, over the real
// loopback with faults injected into accept4 (FaultySys) and a clock the
// test moves (ManualClockSys).
#include "apps/listener.h"

#include "core/faulty_sys.h"
#include "tests/support/manual_clock_sys.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cerrno>
#include <optional>
#include <vector>

namespace {

using namespace std::chrono_literals;
using eagain::FaultKind;
using eagain::SysCall;

struct Setup {
    explicit Setup(eagain::ListenerOptions options = {})
        : listener(
              reactor, options,
              [this](int fd, const eagain::SockAddr& peer) {
                  accepted.push_back(fd);
                  peers.push_back(peer);
                  if (close_after_first)
                      listener.close();
              },
              [this](int error) { failures.push_back(error); }) {
        REQUIRE(listener.open(eagain::SockAddr::ipv4_loopback(0)).ok());
    }
    ~Setup() {
        listener.close();
        for (const int fd : accepted)
            (void)clock_sys.close(fd);
        for (const int fd : clients)
            (void)clock_sys.close(fd);
    }

    // A blocking connect: when it returns the connection waits in the
    // listener's accept queue.
    void connect_clients(int n) {
        for (int i = 0; i < n; ++i) {
            const eagain::FdResult fd = clock_sys.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            REQUIRE(fd.ok());
            clients.push_back(fd.value);
            REQUIRE(clock_sys.connect(fd.value, listener.local_address()).ok());
        }
    }
    void add_rule(FaultKind fault, eagain::CallSelector when, std::uint64_t number, std::optional<std::uint64_t> hits) {
        eagain::FaultRule rule;
        rule.call = SysCall::accept4;
        rule.fault = fault;
        rule.when = when;
        rule.call_number = number;
        rule.max_hits = hits;
        REQUIRE(sys.add_rule(rule) == eagain::RuleError::none);
    }
    std::uint64_t accept_calls() { return sys.calls(SysCall::accept4); }

    eagain::test::ManualClockSys clock_sys;
    eagain::FaultySys sys{clock_sys, 1};
    eagain::Reactor reactor{sys};
    std::vector<int> accepted;
    std::vector<eagain::SockAddr> peers;
    std::vector<int> failures;
    std::vector<int> clients;
    bool close_after_first = false;
    eagain::Listener listener;
};

}  // namespace

TEST_CASE("one wake-up accepts every waiting connection and stops at EAGAIN", "[listener]") {
    Setup s;
    s.connect_clients(3);
    REQUIRE(s.reactor.poll(0ms).ok());
    CHECK(s.accepted.size() == 3);
    CHECK(s.accept_calls() == 4);  // three connections, then EAGAIN
    CHECK(s.failures.empty());
    for (const eagain::SockAddr& peer : s.peers)
        CHECK(peer.port() != 0);
    // Nothing waits: the level-triggered listener is not reported again.
    REQUIRE(s.reactor.poll(0ms).ok());
    CHECK(s.accept_calls() == 4);
}

TEST_CASE("at most max_accepts_per_wakeup per wake-up, the rest come on the next poll", "[listener]") {
    eagain::ListenerOptions options;
    options.max_accepts_per_wakeup = 2;
    Setup s(options);
    s.connect_clients(3);
    REQUIRE(s.reactor.poll(0ms).ok());
    CHECK(s.accepted.size() == 2);
    CHECK(s.accept_calls() == 2);  // no EAGAIN asked for: the batch was full
    REQUIRE(s.reactor.poll(0ms).ok());
    CHECK(s.accepted.size() == 3);
    CHECK(s.accept_calls() == 4);
}

TEST_CASE("EINTR is retried at once up to the bound, one more pauses accepting like EMFILE", "[listener]") {
    constexpr int bound = eagain::default_max_eintr_retries;
    STATIC_REQUIRE(bound == eagain::TransportOptions{}.max_eintr_retries);
    STATIC_REQUIRE(bound == eagain::ListenerOptions{}.max_eintr_retries);

    SECTION("bound EINTRs in a row: retried within the same wake-up") {
        Setup s;
        s.add_rule(FaultKind::eintr, eagain::CallSelector::from_nth_call, 1, bound);
        s.connect_clients(1);
        REQUIRE(s.reactor.poll(0ms).ok());
        CHECK(s.accepted.size() == 1);
        CHECK(s.accept_calls() == static_cast<std::uint64_t>(bound) + 2);  // the EINTRs, the accept, EAGAIN
        CHECK(s.failures.empty());
        CHECK_FALSE(s.listener.paused());
    }
    SECTION("bound + 1 EINTRs: the batch gives up, pauses, and the pause ends on its timer") {
        Setup s;
        s.add_rule(FaultKind::eintr, eagain::CallSelector::from_nth_call, 1, bound + 1);
        s.connect_clients(1);
        REQUIRE(s.reactor.poll(0ms).ok());
        CHECK(s.accepted.empty());
        CHECK(s.accept_calls() == static_cast<std::uint64_t>(bound) + 1);
        REQUIRE(s.failures == std::vector<int>{EINTR});
        CHECK(s.listener.paused());
        // Paused: the waiting connection is not asked for on every poll.
        REQUIRE(s.reactor.poll(0ms).ok());
        CHECK(s.accept_calls() == static_cast<std::uint64_t>(bound) + 1);
        const eagain::Nanos start = s.sys.now();
        for (int i = 0; i < 5 && s.accepted.empty(); ++i)
            REQUIRE(s.reactor.poll(std::nullopt).ok());
        CHECK(s.accepted.size() == 1);
        CHECK(s.sys.now() - start >= eagain::ListenerOptions{}.accept_pause);
        CHECK_FALSE(s.listener.paused());
    }
    SECTION("the bound counts EINTRs per batch, not in total") {
        Setup s;
        // bound EINTRs, the accept and EAGAIN, then bound more on the next
        // wake-up: 2 * bound in all, never more than bound in a row.
        eagain::FaultRule rule;
        rule.call = SysCall::accept4;
        rule.fault = FaultKind::eintr;
        rule.when = eagain::CallSelector::call_list;
        for (std::uint64_t call = 1; call <= 2 * bound + 2; ++call) {
            if (call != bound + 1 && call != bound + 2)
                rule.call_list.push_back(call);
        }
        REQUIRE(s.sys.add_rule(rule) == eagain::RuleError::none);
        s.connect_clients(1);
        REQUIRE(s.reactor.poll(0ms).ok());
        CHECK(s.accepted.size() == 1);
        CHECK(s.accept_calls() == static_cast<std::uint64_t>(bound) + 2);
        s.connect_clients(1);
        REQUIRE(s.reactor.poll(0ms).ok());
        CHECK(s.accepted.size() == 2);
        CHECK(s.accept_calls() == 2 * static_cast<std::uint64_t>(bound) + 4);
        CHECK(s.failures.empty());
    }
}

TEST_CASE("ECONNABORTED skips to the next connection without pausing", "[listener]") {
    Setup s;
    s.add_rule(FaultKind::econnaborted, eagain::CallSelector::nth_call, 1, 1);
    s.connect_clients(1);
    REQUIRE(s.reactor.poll(0ms).ok());
    CHECK(s.accepted.size() == 1);  // FaultySys leaves the connection queued
    CHECK(s.accept_calls() == 3);   // ECONNABORTED, the accept, EAGAIN
    CHECK(s.failures.empty());
    CHECK_FALSE(s.listener.paused());
}

TEST_CASE("EMFILE is reported once and pauses accepting for accept_pause", "[listener]") {
    eagain::ListenerOptions options;
    options.accept_pause = 250ms;
    Setup s(options);
    s.add_rule(FaultKind::emfile, eagain::CallSelector::nth_call, 1, 1);
    s.connect_clients(1);
    const eagain::Nanos start = s.sys.now();
    for (int i = 0; i < 10; ++i)
        REQUIRE(s.reactor.poll(0ms).ok());
    CHECK(s.accept_calls() == 1);
    REQUIRE(s.failures == std::vector<int>{EMFILE});
    for (int i = 0; i < 5 && s.accepted.empty(); ++i)
        REQUIRE(s.reactor.poll(std::nullopt).ok());
    CHECK(s.accepted.size() == 1);
    CHECK(s.sys.now() - start >= 250ms);
}

TEST_CASE("a callback that closes the listener ends the batch, and close is idempotent", "[listener]") {
    Setup s;
    s.close_after_first = true;
    s.connect_clients(2);
    REQUIRE(s.reactor.poll(0ms).ok());
    CHECK(s.accepted.size() == 1);
    CHECK(s.accept_calls() == 1);
    CHECK_FALSE(s.listener.is_open());
    s.listener.close();
    CHECK_FALSE(s.listener.is_open());
}
