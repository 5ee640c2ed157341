// eagain-sim-rss: the memory of many concurrent simulated echo connections.
//
//   eagain-sim-rss [connections=10000] [frames_per_connection=10] [growth_limit_mib=1024]
//
// One World, two hosts: FrameEchoServer on one, LoadClient with every
// connection started at once on the other, as in tests/sim. All
// connections must be open at the same time (the server host's peak of
// open descriptors says so) and every frame must come back intact.
//
// It prints the process's peak RSS (getrusage ru_maxrss) before the World
// is built (the empty baseline: the binary and its libraries) and after
// the run, and the growth between them. A process of its own, because
// ru_maxrss is a high-water mark that never goes down: inside eagain-bench
// it would measure whichever benchmark ran before.
//
// Exit status: 0 if the run was correct and the growth stayed below the
// limit, 1 if not, 2 on bad arguments.
#include "apps/frame_echo_server.h"
#include "apps/load_client.h"
#include "core/reactor.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using namespace std::chrono_literals;

// Peak resident set size of this process so far, KiB (Linux's unit).
long peak_rss_kib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}

bool parse_count(const char* text, std::uint64_t& out) {
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (end == text || *end != '\0' || value == 0)
        return false;
    out = value;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t connections = 10'000;
    std::uint64_t frames_per_connection = 10;
    std::uint64_t growth_limit_mib = 1024;
    if (argc > 4 || (argc > 1 && !parse_count(argv[1], connections)) ||
        (argc > 2 && !parse_count(argv[2], frames_per_connection)) ||
        (argc > 3 && !parse_count(argv[3], growth_limit_mib))) {
        std::fprintf(stderr, "usage: %s [connections] [frames_per_connection] [growth_limit_mib]\n", argv[0]);
        return 2;
    }
    const long baseline_kib = peak_rss_kib();
    const auto wall_start = std::chrono::steady_clock::now();

    bool ok = true;
    std::size_t peak_server_fds = 0;
    {
        eagain::sim::WorldOptions options;
        // Every SYN arrives in the same instant: the accept queue must hold
        // them all, as a real server for 10k clients raises somaxconn.
        options.tcp.somaxconn = static_cast<int>(connections) + 1;
        eagain::sim::World world(options);
        auto& server_host = world.add_host("server");
        auto& client_host = world.add_host("client");
        eagain::Reactor server_reactor(server_host);
        eagain::Reactor client_reactor(client_host);
        eagain::EchoServerOptions server_options;
        server_options.listen_address = server_host.address(AF_INET, 7);
        server_options.backlog = static_cast<int>(connections) + 1;
        eagain::FrameEchoServer server(server_reactor, server_options);
        if (!server.open().ok()) {
            std::fprintf(stderr, "server open failed\n");
            return 1;
        }
        eagain::LoadOptions load;
        load.server = server.local_address();
        load.connections = static_cast<std::size_t>(connections);
        load.frames = connections * frames_per_connection;
        eagain::LoadClient client(client_reactor, load);
        client.start();
        world.add_reactor(server_host, server_reactor);
        world.add_reactor(client_host, client_reactor);
        // Descriptors besides connections on the server host: stdio, the
        // listener, the reactor's epoll.
        const std::size_t server_base_fds = server_host.open_fd_count();
        const auto status = world.run_for(10min, [&] {
            peak_server_fds = std::max(peak_server_fds, server_host.open_fd_count());
            return client.done();
        });
        const eagain::LoadReport& report = client.report();
        const std::size_t peak_open = peak_server_fds - server_base_fds;
        std::printf("run: %s at virtual %.3f ms, frames verified %llu of %llu, mismatches %llu, errors %llu\n",
                    std::string(to_string(status)).c_str(), static_cast<double>(world.now().count()) / 1e6,
                    static_cast<unsigned long long>(report.frames_verified),
                    static_cast<unsigned long long>(load.frames), static_cast<unsigned long long>(report.mismatches),
                    static_cast<unsigned long long>(report.errors));
        std::printf("peak concurrent server connections: %zu of %llu; trace lines %llu, hash %s\n", peak_open,
                    static_cast<unsigned long long>(connections),
                    static_cast<unsigned long long>(world.trace().line_count()), world.trace().hash_hex().c_str());
        if (!report.problems.empty())
            std::printf("first problem: %s\n", report.problems.front().c_str());
        ok = status == eagain::sim::RunStatus::done && report.ok(load.frames) && peak_open == connections;
    }
    const long peak_kib = peak_rss_kib();
    const bool within_limit = static_cast<std::uint64_t>(peak_kib - baseline_kib) < growth_limit_mib * 1024;
    const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    std::printf("peak RSS: baseline %ld KiB, after %ld KiB, growth %ld KiB (%.1f MiB, %.1f KiB per connection)\n",
                baseline_kib, peak_kib, peak_kib - baseline_kib, static_cast<double>(peak_kib - baseline_kib) / 1024.0,
                static_cast<double>(peak_kib - baseline_kib) / static_cast<double>(connections));
    std::printf("growth limit %llu MiB: %s\n", static_cast<unsigned long long>(growth_limit_mib),
                within_limit ? "within" : "EXCEEDED");
    std::printf("wall: %.2f s; %s\n", wall_s, ok && within_limit ? "OK" : "FAILED");
    return ok && within_limit ? 0 : 1;
}
