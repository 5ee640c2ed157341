// eagain-echo: a frame echo server on the real kernel.
//
//   eagain-echo --port 7000 [--host 127.0.0.1] [--et] [--max-frame 16777216]
//               [--output-limit BYTES]
//
// Echoes every frame of the default protocol (20-byte header, big-endian
// int32 body_len at offset 8) back unchanged, for any number of clients. A
// hostile frame (negative or oversized length) closes that connection only
// and is logged with the peer's address and the reason. A connection holds
// at most --output-limit bytes of unsent output (at least --max-frame, so a
// frame at the maximum is always echoed; exit 2 otherwise). SIGTERM or SIGINT
// stop it cleanly: every socket is closed and the process checks that it
// holds no more fds than before it started (exit 3 if it does).
#include "apps/frame_echo_server.h"
#include "core/linux_sys.h"
#include "tools/process.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <optional>
#include <string>

int main(int argc, char** argv) {
    CLI::App cli{"eagain-echo: a frame echo server (default FrameSpec) on the real kernel"};
    std::uint16_t port = 0;
    std::string host = "127.0.0.1";
    bool edge_triggered = false;
    std::uint64_t max_frame_bytes = eagain::ConnectionConfig{}.max_frame_bytes;
    cli.add_option("--port", port, "TCP port to listen on (0: any free port, printed)")->required();
    cli.add_option("--host", host, "address to listen on: IPv4 or IPv6 literal")->capture_default_str();
    cli.add_flag("--et", edge_triggered, "edge-triggered epoll (drain reads to EAGAIN)");
    cli.add_option("--max-frame", max_frame_bytes, "largest frame accepted, header included, in bytes")
        ->check(CLI::Range(std::uint64_t{20}, std::uint64_t{0x7fffffff}))
        ->capture_default_str();
    std::optional<std::uint64_t> output_limit_bytes;
    cli.add_option("--output-limit", output_limit_bytes,
                   "unsent output a connection may hold, in bytes, at least --max-frame "
                   "(default: 32 MiB, or twice --max-frame if that is more)")
        ->check(CLI::Range(std::uint64_t{20}, std::uint64_t{1} << 40));
    CLI11_PARSE(cli, argc, argv);

    const auto address = eagain::SockAddr::from_host(host, port);
    if (!address) {
        std::fprintf(stderr, "eagain-echo: --host %s is not an IPv4 or IPv6 address\n", host.c_str());
        return 2;
    }

    eagain::tools::prepare_process();
    const int fds_at_start = eagain::tools::open_fd_count();
    eagain::EchoServerStats stats;
    {
        eagain::LinuxSys sys;
        eagain::Reactor reactor(sys);
        if (reactor.open_error() != 0) {
            std::fprintf(stderr, "eagain-echo: epoll_create1: %s\n", eagain::errno_name(reactor.open_error()).c_str());
            return 1;
        }
        eagain::EchoServerOptions options;
        options.listen_address = *address;
        options.transport.trigger = edge_triggered ? eagain::TriggerMode::edge : eagain::TriggerMode::level;
        options.connection.max_frame_bytes = max_frame_bytes;
        options.connection.output_limit_bytes = static_cast<std::size_t>(output_limit_bytes.value_or(
            std::max<std::uint64_t>(options.connection.output_limit_bytes, 2 * max_frame_bytes)));
        if (const eagain::ConfigError error = eagain::validate(options.connection, eagain::ConnectionRole::server);
            error != eagain::ConfigError::none) {
            std::fprintf(stderr, "eagain-echo: --output-limit %llu with --max-frame %llu: %s\n",
                         static_cast<unsigned long long>(options.connection.output_limit_bytes),
                         static_cast<unsigned long long>(max_frame_bytes),
                         std::string(eagain::to_string(error)).c_str());
            return 2;
        }
        eagain::FrameEchoServer server(reactor, options, [](std::string_view line) {
            std::fprintf(stderr, "eagain-echo: %.*s\n", static_cast<int>(line.size()), line.data());
        });
        const eagain::VoidResult opened = server.open();
        if (!opened.ok()) {
            std::fprintf(stderr, "eagain-echo: cannot listen on %s: %s\n", address->to_string().c_str(),
                         eagain::errno_name(opened.error).c_str());
            return 1;
        }
        eagain::tools::StopSignals signals(reactor, [&](int signal) {
            std::fprintf(stderr, "eagain-echo: %s: stopping\n", signal == SIGTERM ? "SIGTERM" : "SIGINT");
            server.stop();
            reactor.stop();
        });
        if (signals.error() != 0) {
            std::fprintf(stderr, "eagain-echo: signalfd: %s\n", eagain::errno_name(signals.error()).c_str());
            return 1;
        }
        std::printf("listening on %s (%s)\n", server.local_address().to_string().c_str(),
                    std::string(eagain::to_string(options.transport.trigger)).c_str());
        std::fflush(stdout);
        const eagain::VoidResult ran = reactor.run();
        stats = server.stats();
        if (!ran.ok()) {
            std::fprintf(stderr, "eagain-echo: epoll_wait: %s\n", eagain::errno_name(ran.error).c_str());
            return 1;
        }
    }
    const int fds_at_end = eagain::tools::open_fd_count();
    std::fprintf(stderr,
                 "eagain-echo: accepted %llu, closed %llu, frames echoed %llu, hostile frames %llu, "
                 "accept errors %llu; open fds %d at start, %d at end\n",
                 static_cast<unsigned long long>(stats.accepted), static_cast<unsigned long long>(stats.closed),
                 static_cast<unsigned long long>(stats.frames_echoed),
                 static_cast<unsigned long long>(stats.hostile_frames),
                 static_cast<unsigned long long>(stats.accept_errors), fds_at_start, fds_at_end);
    return fds_at_end > fds_at_start ? 3 : 0;
}
