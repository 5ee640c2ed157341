// A connection reset in the middle of the stream, by a network fault (at a
// virtual time, or once the server has received a given number of bytes):
// both programs must see ECONNRESET, close that connection and its fd, and
// the other connection must carry on untouched.
#include "apps/frame_echo_server.h"
#include "apps/load_client.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"
#include "tests/sim/sim_test_support.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace simtest = eagain::simtest;
using eagain::Nanos;
using eagain::sim::RunStatus;

namespace {

// The fds on host that a call failed on with ECONNRESET, and whether each
// was closed afterwards (by a successful close on the same fd).
struct ResetFds {
    std::vector<int> fds;
    std::size_t closed_after = 0;
};

ResetFds reset_fds(const eagain::sim::Trace& trace, std::string_view host) {
    ResetFds out;
    std::vector<bool> open_reset;  // by position in fds: reset seen, close not yet
    for (const std::string& line : trace.lines()) {
        if (!simtest::is(line, "ev", "sys") || !simtest::is(line, "host", host))
            continue;
        const int fd = static_cast<int>(simtest::number(line, "fd").value_or(-1));
        if (simtest::is(line, "err", "ECONNRESET")) {
            if (std::find(out.fds.begin(), out.fds.end(), fd) == out.fds.end()) {
                out.fds.push_back(fd);
                open_reset.push_back(true);
            }
        } else if (simtest::is(line, "call", "close") && simtest::number(line, "ret") == 0) {
            for (std::size_t i = 0; i < out.fds.size(); ++i) {
                if (out.fds[i] == fd && open_reset[i]) {
                    open_reset[i] = false;
                    ++out.closed_after;
                }
            }
        }
    }
    return out;
}

}  // namespace

TEST_CASE(
    "an RST mid-stream gives ECONNRESET on both sides, both close the connection and its fd, the other "
    "connection is untouched",
    "[sim]") {
    eagain::sim::WorldOptions options;
    options.trace_keep_lines = true;
    eagain::sim::World world(options);
    auto& server_host = world.add_host("server");
    eagain::sim::HostOptions client_options;
    client_options.first_ephemeral_port = 40000;  // connection 0 is 40000, connection 1 is 40001
    auto& client_host = world.add_host("client", client_options);

    eagain::sim::ResetFault reset;
    reset.host = "server";
    reset.port = 40000;
    // Echoes connection 0 can get before the reset cuts it off.
    std::uint64_t most_echoes = 0;
    SECTION("at a virtual time") {
        reset.at = 3ms;  // 1000 frames per connection take about 6 ms
        most_echoes = 999;
    }
    SECTION("at a stream offset") {
        // Ten bytes into frame 300 (84-byte frames): the server has whole
        // frames 0..299 at most to echo.
        reset.at_received_offset = 300 * 84 + 10;
        most_echoes = 300;
    }
    world.add_fault(reset);

    eagain::Reactor server_reactor(server_host);
    eagain::Reactor client_reactor(client_host);
    eagain::EchoServerOptions server_options;
    server_options.listen_address = server_host.address(AF_INET, 7);
    std::vector<std::string> server_log;
    eagain::FrameEchoServer server(server_reactor, server_options,
                                   [&](std::string_view line) { server_log.emplace_back(line); });
    REQUIRE(server.open().ok());
    const std::size_t server_fds = server_host.open_fd_count();
    const std::size_t client_fds = client_host.open_fd_count();

    eagain::LoadOptions load;
    load.server = server.local_address();
    load.connections = 2;
    load.frames = 2000;
    load.body_bytes = 64;
    eagain::LoadClient client(client_reactor, load);
    client.start();
    world.add_reactor(server_host, server_reactor);
    world.add_reactor(client_host, client_reactor);

    RunStatus status = world.run_for(30s, [&] { return client.done(); });
    const eagain::LoadReport& report = client.report();
    INFO("virtual " << world.now().count() << " ns; trace tail:\n" << simtest::tail(world.trace()));
    INFO("client run: " << to_string(status));
    REQUIRE(status == RunStatus::done);
    // Then until the server has let go of both connections and every fd
    // is back (bounded: a leak shows as the deadline).
    status = world.run_for(30s, [&] {
        return server.open_connections() == 0 && server_host.open_fd_count() == server_fds &&
               client_host.open_fd_count() == client_fds;
    });
    CHECK(status == RunStatus::done);

    // The client: connection 0 ended early with ECONNRESET, connection 1
    // got all its 1000 frames, nothing came back wrong.
    CHECK(report.errors == 1);
    CHECK(report.mismatches == 0);
    CHECK(report.frames_verified > 1000);  // connection 1's 1000, and some of connection 0's
    CHECK(report.frames_verified <= 1000 + most_echoes);
    REQUIRE(report.problems.size() == 1);
    CHECK(report.problems[0].find("connection 0:") == 0);
    CHECK(report.problems[0].find("reset (ECONNRESET)") != std::string::npos);
    // The server: the reset connection closed with ECONNRESET (logged, as
    // an abnormal close is), the other one closed normally (not logged).
    REQUIRE(server_log.size() == 1);
    CHECK(server_log[0] == "closed 10.0.0.2:40000: reset (ECONNRESET)");
    CHECK(server.stats().closed == 2);
    CHECK(server.open_connections() == 0);

    // Each side's program met ECONNRESET from a syscall on exactly one fd,
    // and closed that fd afterwards; and no fd is left open on either host.
    const ResetFds server_resets = reset_fds(world.trace(), "server");
    const ResetFds client_resets = reset_fds(world.trace(), "client");
    CHECK(server_resets.fds.size() == 1);
    CHECK(server_resets.closed_after == 1);
    CHECK(client_resets.fds.size() == 1);
    CHECK(client_resets.closed_after == 1);
    CHECK(server_host.open_fd_count() == server_fds);
    CHECK(client_host.open_fd_count() == client_fds);
}
