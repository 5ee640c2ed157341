// apps/byte_apps.h without the scenario harness: the byte programs on one
// Reactor over the real loopback, as a tool would run them.
#include "apps/byte_apps.h"

#include "tests/support/manual_clock_sys.h"

#include <catch2/catch.hpp>

#include <string>

namespace {

using namespace std::chrono_literals;

// Polls until done() or the step bound (each poll moves bytes or time).
template <class Done>
bool run_until(eagain::Reactor& reactor, Done done) {
    for (int step = 0; step < 100'000 && !done(); ++step)
        REQUIRE(reactor.poll(10ms).ok());
    return done();
}

}  // namespace

TEST_CASE("BulkSender's stream reaches BulkReceiverServer intact, then both ends close cleanly", "[byte_apps]") {
    eagain::test::ManualClockSys sys;
    eagain::Reactor reactor(sys);
    eagain::BulkReceiverOptions receiver_options;
    receiver_options.expected_bytes = 3U << 20;
    receiver_options.read_chunk_bytes = 1000;  // not a divisor of anything the sender uses
    eagain::BulkReceiverServer receiver(reactor, receiver_options);
    REQUIRE(receiver.open().ok());

    eagain::BulkSenderOptions sender_options;
    sender_options.total_bytes = receiver_options.expected_bytes;
    sender_options.chunk_bytes = 7777;
    sender_options.server = receiver.local_address();
    eagain::BulkSender sender(reactor, sender_options);
    REQUIRE(sender.start().ok());

    REQUIRE(run_until(reactor, [&] { return sender.done() && receiver.open_connections() == 0; }));
    const eagain::ByteAppReport& sent = sender.report();
    const eagain::ByteAppReport& received = receiver.report();
    INFO((sent.problems.empty() ? std::string() : sent.problems.front()));
    INFO((received.problems.empty() ? std::string() : received.problems.front()));
    CHECK(sent.errors == 0);
    CHECK(sent.states.count("half_closed_local") == 1);
    CHECK(sent.max_buffered_bytes <= sender_options.chunk_bytes);
    CHECK(received.bytes_received == receiver_options.expected_bytes);
    CHECK(received.mismatches == 0);
    CHECK(received.errors == 0);
    CHECK(received.endings == std::vector<std::string>{"peer_closed"});
}

TEST_CASE("ByteEchoServer echoes a BulkSender's stream back, within its output bound", "[byte_apps]") {
    eagain::test::ManualClockSys sys;
    eagain::Reactor reactor(sys);
    eagain::ByteEchoServer echo(reactor, eagain::ByteServerOptions{});
    REQUIRE(echo.open().ok());

    eagain::BulkSenderOptions sender_options;
    sender_options.server = echo.local_address();
    sender_options.total_bytes = 2U << 20;
    eagain::BulkSender sender(reactor, sender_options);
    REQUIRE(sender.start().ok());

    REQUIRE(run_until(reactor, [&] { return sender.done() && echo.open_connections() == 0; }));
    CHECK(sender.report().errors == 0);
    CHECK(echo.report().errors == 0);
    CHECK(echo.report().max_buffered_bytes <= eagain::echo_output_limit_bytes);
    CHECK(echo.report().states.count("half_closed_remote") == 1);
    CHECK(echo.report().endings == std::vector<std::string>{"peer_closed"});
}
