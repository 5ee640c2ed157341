#include "core/reactor.h"

#include "tests/support/loopback.h"
#include "tests/support/manual_clock_sys.h"

#include <sys/epoll.h>
#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using eagain::EpollEvent;
using eagain::FdResult;
using eagain::Nanos;
using eagain::Reactor;
using eagain::test::ManualClockSys;

namespace {

struct Recorder final : Reactor::Handler {
    std::vector<std::uint32_t> events;
    std::function<void()> also;
    void on_ready(std::uint32_t e) override {
        events.push_back(e);
        if (also)
            also();
    }
};

void send_byte(eagain::Sys& sys, int fd) {
    const std::array<std::uint8_t, 1> byte{42};
    REQUIRE(sys.send(fd, byte, MSG_NOSIGNAL).value == 1);
}

// epoll_wait fails with EINTR the first `count` times.
struct InterruptedSys final : eagain::LinuxSys {
    int interrupts_left = 0;
    FdResult epoll_wait(int epfd, std::span<EpollEvent> events, int timeout_ms) override {
        if (interrupts_left > 0) {
            --interrupts_left;
            return FdResult::failure(EINTR);
        }
        return LinuxSys::epoll_wait(epfd, events, timeout_ms);
    }
};

}  // namespace

TEST_CASE("timers with equal deadlines run in the order they were added", "[reactor]") {
    ManualClockSys sys;
    Reactor reactor(sys);
    REQUIRE(reactor.open_error() == 0);
    std::string order;
    const Nanos at = sys.now() + 10ms;
    reactor.add_timer(at, [&] { order += 'a'; });
    reactor.add_timer(at + 1ms, [&] { order += 'c'; });
    reactor.add_timer(at, [&] { order += 'b'; });
    REQUIRE(reactor.next_deadline() == at);

    REQUIRE(reactor.poll(std::nullopt).value == 2);
    CHECK(sys.now() == at);
    CHECK(order == "ab");
    REQUIRE(reactor.poll(std::nullopt).value == 1);
    CHECK(order == "abc");
    CHECK(reactor.next_deadline() == std::nullopt);
}

TEST_CASE("poll waits until the next timer and no longer, rounding up to whole milliseconds", "[reactor]") {
    ManualClockSys sys;
    Reactor reactor(sys);
    int fired = 0;
    reactor.add_timer(sys.now() + 2500us, [&] { ++fired; });
    // Rounded down, the wait would end 0.5 ms early and the next poll would
    // spin on zero-length waits; rounded up, one poll runs the timer.
    REQUIRE(reactor.poll(std::nullopt).value == 1);
    CHECK(sys.last_timeout_ms == 3);
    CHECK(fired == 1);
    CHECK(sys.epoll_waits == 1);
}

TEST_CASE("a poll timeout shorter than the next timer returns without running it", "[reactor]") {
    ManualClockSys sys;
    Reactor reactor(sys);
    int fired = 0;
    reactor.add_timer(sys.now() + 1s, [&] { ++fired; });
    REQUIRE(reactor.poll(100ms).value == 0);
    CHECK(sys.last_timeout_ms == 100);
    CHECK(fired == 0);
}

TEST_CASE("a cancelled timer never runs", "[reactor]") {
    ManualClockSys sys;
    Reactor reactor(sys);
    int fired = 0;
    const Reactor::TimerId id = reactor.add_timer(sys.now() + 5ms, [&] { ++fired; });
    CHECK(reactor.cancel_timer(id));
    CHECK_FALSE(reactor.cancel_timer(id));
    sys.advance(10ms);
    REQUIRE(reactor.poll(0ms).value == 0);
    CHECK(fired == 0);
}

TEST_CASE("a timer added by a due timer runs on the next poll, not in the same one", "[reactor]") {
    ManualClockSys sys;
    Reactor reactor(sys);
    int chained = 0;
    std::function<void()> rearm = [&] {
        ++chained;
        reactor.add_timer(sys.now(), rearm);  // already due
    };
    reactor.add_timer(sys.now(), rearm);
    REQUIRE(reactor.poll(0ms).value == 1);
    CHECK(chained == 1);
    REQUIRE(reactor.poll(0ms).value == 1);
    CHECK(chained == 2);
}

TEST_CASE("a ready socket is dispatched to its handler with the reported events", "[reactor]") {
    eagain::LinuxSys sys;
    Reactor reactor(sys);
    const auto pair = eagain::test::connected_pair(sys);
    Recorder server;
    REQUIRE(reactor.add(pair.server, EPOLLIN, server).ok());
    REQUIRE(reactor.poll(0ms).value == 0);
    send_byte(sys, pair.client);
    REQUIRE(reactor.poll(2s).value == 1);
    REQUIRE(server.events.size() == 1);
    CHECK((server.events[0] & EPOLLIN) != 0);
    REQUIRE(reactor.remove(pair.server).ok());
    (void)sys.close(pair.client);
    (void)sys.close(pair.server);
}

TEST_CASE("an event for a socket removed earlier in the same batch is not delivered", "[reactor]") {
    eagain::LinuxSys sys;
    Reactor reactor(sys);
    const auto a = eagain::test::connected_pair(sys);
    const auto b = eagain::test::connected_pair(sys);
    Recorder first;
    Recorder second;
    REQUIRE(reactor.add(a.server, EPOLLIN, first).ok());
    REQUIRE(reactor.add(b.server, EPOLLIN, second).ok());
    // Whichever handler runs first removes the other socket.
    first.also = [&] {
        if (reactor.registered(b.server))
            REQUIRE(reactor.remove(b.server).ok());
    };
    second.also = [&] {
        if (reactor.registered(a.server))
            REQUIRE(reactor.remove(a.server).ok());
    };
    send_byte(sys, a.client);
    send_byte(sys, b.client);
    // Both are ready before the poll, so one epoll_wait reports both.
    REQUIRE((eagain::test::wait_once(sys, a.server, EPOLLIN) & EPOLLIN) != 0);
    REQUIRE((eagain::test::wait_once(sys, b.server, EPOLLIN) & EPOLLIN) != 0);
    REQUIRE(reactor.poll(0ms).value == 1);
    CHECK(first.events.size() + second.events.size() == 1);
    if (reactor.registered(a.server))
        REQUIRE(reactor.remove(a.server).ok());
    if (reactor.registered(b.server))
        REQUIRE(reactor.remove(b.server).ok());
    for (const int fd : {a.client, a.server, b.client, b.server})
        (void)sys.close(fd);
}

TEST_CASE("wake_again dispatches on the next poll without waiting and without an epoll event", "[reactor]") {
    ManualClockSys sys;
    Reactor reactor(sys);
    const auto pair = eagain::test::connected_pair(sys);
    Recorder handler;
    REQUIRE(reactor.add(pair.server, EPOLLIN | EPOLLET, handler).ok());
    reactor.add_timer(sys.now() + 1h, [] {});
    reactor.wake_again(pair.server, EPOLLIN);
    reactor.wake_again(pair.server, EPOLLIN);  // coalesced
    CHECK(reactor.next_deadline() == sys.now());
    const Nanos before = sys.now();
    REQUIRE(reactor.poll(std::nullopt).value == 1);
    CHECK(sys.now() == before);  // did not sleep towards the timer
    REQUIRE(handler.events == std::vector<std::uint32_t>{EPOLLIN});
    CHECK(reactor.next_deadline() == before + 1h);
    REQUIRE(reactor.remove(pair.server).ok());
    (void)sys.close(pair.client);
    (void)sys.close(pair.server);
}

TEST_CASE("epoll_wait interrupted by a signal is not an error and due timers still run", "[reactor]") {
    InterruptedSys sys;
    sys.interrupts_left = 1;
    Reactor reactor(sys);
    int fired = 0;
    reactor.add_timer(sys.now() - 1ms, [&] { ++fired; });
    const auto step = reactor.poll(0ms);
    REQUIRE(step.ok());
    CHECK(step.value == 1);
    CHECK(fired == 1);
    CHECK(sys.interrupts_left == 0);
}

TEST_CASE("run returns once a callback calls stop", "[reactor]") {
    ManualClockSys sys;
    Reactor reactor(sys);
    int ticks = 0;
    std::function<void()> tick = [&] {
        if (++ticks == 3) {
            reactor.stop();
            return;
        }
        reactor.add_timer(sys.now() + 1s, tick);
    };
    reactor.add_timer(sys.now() + 1s, tick);
    const Nanos start = sys.now();
    REQUIRE(reactor.run().ok());
    CHECK(ticks == 3);
    CHECK(sys.now() - start == 3s);
}
