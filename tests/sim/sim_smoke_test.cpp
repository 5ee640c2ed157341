#include "apps/frame_echo_server.h"
#include "apps/load_client.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;

TEST_CASE("smoke: echo in the simulation", "[sim]") {
    eagain::sim::World world;
    auto& server_host = world.add_host("server");
    auto& client_host = world.add_host("client");
    eagain::Reactor server_reactor(server_host);
    eagain::Reactor client_reactor(client_host);
    eagain::EchoServerOptions server_options;
    server_options.listen_address = server_host.address(AF_INET, 7);
    eagain::FrameEchoServer server(server_reactor, server_options);
    REQUIRE(server.open().ok());
    eagain::LoadOptions load;
    load.server = server.local_address();
    load.connections = 3;
    load.frames = 3000;
    eagain::LoadClient client(client_reactor, load);
    client.start();
    world.add_reactor(server_host, server_reactor);
    world.add_reactor(client_host, client_reactor);
    const auto status = world.run_for(60s, [&] { return client.done(); });
    INFO(to_string(status) << " at " << world.now().count() << " ns, trace lines " << world.trace().line_count());
    CHECK(status == eagain::sim::RunStatus::done);
    const auto& report = client.report();
    INFO((report.problems.empty() ? std::string() : report.problems.front()));
    CHECK(report.ok(3000));
    WARN("virtual " << world.now().count() << " ns, steps " << world.stats().program_steps << ", segments "
                    << world.stats().segments_sent << ", hash " << world.trace().hash_hex());
}
