// eagain-load: a load client for a frame echo server on the real kernel.
//
//   eagain-load --port 7000 --conns 100 --frames 100000 --size 64
//
// --frames is the total over all connections. Every echoed byte is checked;
// prints frames/s, MB/s, latency p50/p99/max and errors, then one
// machine-readable `result ...` line last. Exit 1 on any mismatch, error or
// timeout.
#include "apps/load_client.h"
#include "core/linux_sys.h"
#include "tools/process.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    CLI::App cli{"eagain-load: drives a frame echo server and verifies every echoed byte"};
    std::uint16_t port = 0;
    std::string host = "127.0.0.1";
    std::size_t conns = 1;
    std::uint64_t frames = 10000;
    std::size_t size = 64;
    std::size_t in_flight = 32;
    bool edge_triggered = false;
    double timeout_s = 120;
    cli.add_option("--port", port, "server port")->required();
    cli.add_option("--host", host, "server address: IPv4 or IPv6 literal")->capture_default_str();
    cli.add_option("--conns", conns, "concurrent connections")->check(CLI::Range(1, 1'000'000))->capture_default_str();
    cli.add_option("--frames", frames, "frames in all, spread over the connections")->capture_default_str();
    cli.add_option("--size", size, "body bytes per frame")
        ->check(CLI::Range(0, 16 * 1024 * 1024 - 20))
        ->capture_default_str();
    cli.add_option("--in-flight", in_flight, "frames awaiting their echo, per connection")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    cli.add_flag("--et", edge_triggered, "edge-triggered epoll");
    cli.add_option("--timeout", timeout_s, "give up after this many seconds")->capture_default_str();
    CLI11_PARSE(cli, argc, argv);

    const auto address = eagain::SockAddr::from_host(host, port);
    if (!address) {
        std::fprintf(stderr, "eagain-load: --host %s is not an IPv4 or IPv6 address\n", host.c_str());
        return 2;
    }
    eagain::tools::prepare_process();

    eagain::LinuxSys sys;
    eagain::Reactor reactor(sys);
    if (reactor.open_error() != 0) {
        std::fprintf(stderr, "eagain-load: epoll_create1: %s\n", eagain::errno_name(reactor.open_error()).c_str());
        return 1;
    }
    eagain::LoadOptions options;
    options.server = *address;
    options.connections = conns;
    options.frames = frames;
    options.body_bytes = size;
    options.in_flight_per_connection = in_flight;
    options.transport.trigger = edge_triggered ? eagain::TriggerMode::edge : eagain::TriggerMode::level;
    // The client measures; it must not give up on a busy server.
    options.connection.connect_timeout = std::chrono::seconds(30);
    // Room for a full window of echoes without tripping backpressure limits.
    eagain::size_for_load(options.connection, size, in_flight);
    eagain::LoadClient client(reactor, options);
    client.start();

    const eagain::Nanos deadline =
        sys.now() + std::chrono::duration_cast<eagain::Nanos>(std::chrono::duration<double>(timeout_s));
    bool timed_out = false;
    while (!client.done()) {
        const eagain::Nanos now = sys.now();
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        const auto step = reactor.poll(deadline - now);
        if (!step.ok()) {
            std::fprintf(stderr, "eagain-load: epoll_wait: %s\n", eagain::errno_name(step.error).c_str());
            return 1;
        }
    }

    const eagain::LoadReport& r = client.report();
    const double seconds = std::chrono::duration<double>(r.finished - r.started).count();
    const double frames_per_s = seconds > 0 ? static_cast<double>(r.frames_verified) / seconds : 0.0;
    const double mb_per_s = seconds > 0 ? static_cast<double>(r.bytes_verified) / seconds / 1e6 : 0.0;
    const auto us = [&](unsigned p) {
        return static_cast<long long>(
            std::chrono::duration_cast<std::chrono::microseconds>(r.latency_percentile(p)).count());
    };
    for (const std::string& problem : r.problems)
        std::fprintf(stderr, "eagain-load: %s\n", problem.c_str());
    if (timed_out)
        std::fprintf(stderr, "eagain-load: timed out after %.0f s\n", timeout_s);
    std::printf("%llu of %llu frames verified over %zu connections in %.3f s\n",
                static_cast<unsigned long long>(r.frames_verified), static_cast<unsigned long long>(frames), conns,
                seconds);
    std::printf("%.0f frames/s, %.1f MB/s; latency p50 %lld us, p99 %lld us, max %lld us\n", frames_per_s, mb_per_s,
                us(50), us(99), us(100));
    std::printf("mismatches %llu, errors %llu\n", static_cast<unsigned long long>(r.mismatches),
                static_cast<unsigned long long>(r.errors + (timed_out ? 1 : 0)));
    std::printf(
        "result frames=%llu bytes=%llu seconds=%.6f frames_per_s=%.1f mb_per_s=%.3f p50_us=%lld p99_us=%lld "
        "max_us=%lld errors=%llu\n",
        static_cast<unsigned long long>(r.frames_verified), static_cast<unsigned long long>(r.bytes_verified), seconds,
        frames_per_s, mb_per_s, us(50), us(99), us(100),
        static_cast<unsigned long long>(r.mismatches + r.errors + (timed_out ? 1 : 0)));
    return r.ok(frames) && !timed_out ? 0 : 1;
}
