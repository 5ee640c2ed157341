// FrameEchoServer's accept path (its echo path runs in tests/pitfalls/ and
// tests/tools/).
#include "apps/frame_echo_server.h"

#include "core/faulty_sys.h"
#include "tests/support/manual_clock_sys.h"

#include <sys/epoll.h>
#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("EMFILE on accept pauses accepting instead of spinning, then the waiting connection is accepted",
          "[echo_server]") {
    eagain::test::ManualClockSys clock_sys;
    eagain::FaultySys sys(clock_sys, 1);
    eagain::FaultRule emfile;
    emfile.call = eagain::SysCall::accept4;
    emfile.fault = eagain::FaultKind::emfile;
    emfile.when = eagain::CallSelector::nth_call;
    emfile.call_number = 1;
    REQUIRE(sys.add_rule(emfile) == eagain::RuleError::none);

    eagain::Reactor reactor(sys);
    std::vector<std::string> log;
    eagain::EchoServerOptions options;
    options.accept_pause = 100ms;
    eagain::FrameEchoServer server(reactor, options, [&](std::string_view line) { log.emplace_back(line); });
    REQUIRE(server.open().ok());

    const eagain::FdResult client = clock_sys.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(client.ok());
    const eagain::VoidResult c = clock_sys.connect(client.value, server.local_address());
    REQUIRE((c.ok() || c.error == EINPROGRESS));

    // The listener is level-triggered: a server that kept it registered would
    // call accept4 on every poll while the connection waits.
    const eagain::Nanos start = sys.now();
    for (int i = 0; i < 20; ++i)
        REQUIRE(reactor.poll(0ms).ok());
    CHECK(sys.calls(eagain::SysCall::accept4) == 1);
    CHECK(server.stats().accept_errors == 1);
    CHECK(server.open_connections() == 0);
    REQUIRE(log.size() == 1);
    CHECK(log[0] == "accept failed: EMFILE; pausing accepts");

    // The pause ends on its timer and the connection that waited is taken.
    for (int i = 0; i < 5 && server.open_connections() == 0; ++i)
        REQUIRE(reactor.poll(std::nullopt).ok());
    CHECK(server.open_connections() == 1);
    CHECK(sys.now() - start >= 100ms);
    CHECK(server.stats().accepted == 1);
    server.stop();
    (void)clock_sys.close(client.value);
}

TEST_CASE("open refuses a connection config a frame at the maximum could not be echoed with, opening nothing",
          "[echo_server]") {
    eagain::test::ManualClockSys clock_sys;
    eagain::FaultySys sys(clock_sys, 1);
    eagain::Reactor reactor(sys);
    std::vector<std::string> log;
    eagain::EchoServerOptions options;
    options.connection.max_frame_bytes = 16U << 20;
    options.connection.output_limit_bytes = 8U << 20;  // the old default: a 9 MiB frame was never echoed
    eagain::FrameEchoServer server(reactor, options, [&](std::string_view line) { log.emplace_back(line); });
    const std::uint64_t sockets_before = sys.calls(eagain::SysCall::socket);
    const eagain::VoidResult opened = server.open();
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error == EINVAL);
    CHECK(sys.calls(eagain::SysCall::socket) == sockets_before);
    REQUIRE(log.size() == 1);
    CHECK(log[0].find("output_limit_below_max_frame") != std::string::npos);

    // The defaults hold a frame at the maximum.
    eagain::FrameEchoServer fine(reactor, eagain::EchoServerOptions{});
    CHECK(fine.open().ok());
    fine.stop();
}
