// sim-echo: our echo server and load client in the simulation, with faults,
// every frame verified; prints the run's trace hash, the determinism check.
//
//   sim-echo --seed 1 --frames 2000 [--faults default|none] [--conns C]
//            [--size B] [--trace FILE]
//
// The faults of "default" are listed in harness/echo_run.h. Prints a short
// summary and `trace_hash: <16 hex digits>` as its last line; the same
// arguments print the same hash on every run, machine and compiler (wall
// time aside, the rest of the output is the same too). --trace writes every
// trace line, JSON, one per line: FNV-1a of that file is the hash.
//
// Exit status: 0 if the run finished and every frame was verified; 1 if not
// (the problem is printed to stderr, with the command that reproduces it);
// 2 on bad usage or a trace file that cannot be written.
#include "harness/echo_run.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace {

struct FileCloser {
    void operator()(std::FILE* file) const noexcept { std::fclose(file); }
};

std::string seconds_text(eagain::Nanos time) {
    const auto ns = time.count();
    char text[48];
    std::snprintf(text, sizeof text, "%lld.%09lld s", static_cast<long long>(ns / 1'000'000'000),
                  static_cast<long long>(ns % 1'000'000'000));
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"sim-echo: the echo server and load client in the simulation, with faults; prints the trace hash"};
    eagain::harness::EchoRunOptions options;
    std::string faults = "default";
    std::string trace_path;
    cli.add_option("--seed", options.seed, "root seed of the run")->required();
    cli.add_option("--frames", options.frames, "frames in all, spread over the connections")->required();
    cli.add_option("--faults", faults, "default (see harness/echo_run.h) or none")
        ->check(CLI::IsMember({"default", "none"}))
        ->capture_default_str();
    cli.add_option("--conns", options.connections, "connections")
        ->check(CLI::Range(std::size_t{1}, eagain::harness::EchoRunOptions::max_connections))
        ->capture_default_str();
    cli.add_option("--size", options.body_bytes, "body bytes per frame")
        ->check(CLI::Range(std::size_t{0}, eagain::harness::EchoRunOptions::max_body_bytes))
        ->capture_default_str();
    cli.add_option("--trace", trace_path, "write the trace here, one JSON object per line");
    try {
        cli.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        return cli.exit(error) == 0 ? 0 : 2;  // --help is not an error
    }
    options.faults = *eagain::harness::echo_faults_from_string(faults);

    std::unique_ptr<std::FILE, FileCloser> trace_file;
    bool trace_write_failed = false;
    if (!trace_path.empty()) {
        trace_file.reset(std::fopen(trace_path.c_str(), "w"));
        if (!trace_file) {
            std::fprintf(stderr, "sim-echo: cannot write %s: %s\n", trace_path.c_str(), std::strerror(errno));
            return 2;
        }
        options.trace_sink = [file = trace_file.get(), &trace_write_failed](std::string_view line) {
            if (std::fwrite(line.data(), 1, line.size(), file) != line.size() || std::fputc('\n', file) == EOF)
                trace_write_failed = true;
        };
    }

    const auto wall_start = std::chrono::steady_clock::now();
    const eagain::harness::EchoRunResult result = eagain::harness::run_echo(options);
    const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall_start;
    if (trace_file && std::fclose(trace_file.release()) != 0)
        trace_write_failed = true;

    const eagain::LoadReport& report = result.report;
    std::printf("sim-echo: seed %llu, faults %s, %llu frames over %zu connection(s), %zu-byte bodies\n",
                static_cast<unsigned long long>(options.seed), faults.c_str(),
                static_cast<unsigned long long>(options.frames), options.connections, options.body_bytes);
    if (!result.setup_error.empty()) {
        std::fprintf(stderr, "sim-echo: %s\n", result.setup_error.c_str());
        return 2;
    }
    std::printf("verified: %llu of %llu frames (%llu mismatches, %llu errors)\n",
                static_cast<unsigned long long>(report.frames_verified),
                static_cast<unsigned long long>(options.frames), static_cast<unsigned long long>(report.mismatches),
                static_cast<unsigned long long>(report.errors));
    std::printf("run: %s at %s virtual, %.3f s wall\n", std::string(to_string(result.status)).c_str(),
                seconds_text(result.virtual_time).c_str(), wall.count());
    std::string fault_text;
    for (const auto& [kind, count] : result.faults.by_kind()) {
        fault_text += fault_text.empty() ? "" : ", ";
        fault_text += std::string(kind) + " " + std::to_string(count);
    }
    std::printf("faults: %s (%llu in all)\n", fault_text.c_str(),
                static_cast<unsigned long long>(result.faults.total()));
    std::printf("network: %llu segments, %llu retransmissions, %llu dropped\n",
                static_cast<unsigned long long>(result.world.segments_sent),
                static_cast<unsigned long long>(result.world.retransmissions),
                static_cast<unsigned long long>(result.world.segments_dropped));
    std::printf("trace_lines: %llu\n", static_cast<unsigned long long>(result.trace_lines));

    bool ok = result.ok();
    if (!ok) {
        for (const std::string& problem : report.problems)
            std::fprintf(stderr, "sim-echo: %s\n", problem.c_str());
        if (result.status != eagain::sim::RunStatus::done)
            std::fprintf(stderr, "sim-echo: the run did not finish: %s at %s virtual\n",
                         std::string(to_string(result.status)).c_str(), seconds_text(result.virtual_time).c_str());
        std::fprintf(stderr,
                     "sim-echo: reproduce with: sim-echo --seed %llu --frames %llu --faults %s --conns %zu --size %zu "
                     "--trace t.jsonl\n",
                     static_cast<unsigned long long>(options.seed), static_cast<unsigned long long>(options.frames),
                     faults.c_str(), options.connections, options.body_bytes);
    }
    if (trace_write_failed) {
        std::fprintf(stderr, "sim-echo: writing %s failed\n", trace_path.c_str());
        ok = false;
    }
    std::printf("trace_hash: %s\n", result.trace_hash.c_str());
    return ok ? 0 : 1;
}
