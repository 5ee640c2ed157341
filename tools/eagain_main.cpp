// eagain: the scenario tool (docs/scenario-language.md is the language).
//
//   eagain check FILE...                 parse and validate scenario files;
//                                        print each problem as
//                                        file:line:col: expected ..., found ...
//   eagain run FILE|DIR... [--seed N] [--trace out.jsonl]
//                                        run scenarios (a directory: every
//                                        .scn below it, in name order); one
//                                        line per scenario, each failed
//                                        expectation explained, a summary
//
// Exit 0 when every file is valid (check) / passed (run), 1 when any has
// problems or fails or cannot run yet, 2 on bad usage or an unreadable file.
// (sweep and explore come later.)
#include "harness/runner.h"
#include "harness/scenario.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

// The file's text, or nullopt if it cannot be read. Files are bounded: a
// scenario is a page of text, not a data set.
std::optional<std::string> read_file(const std::string& path) {
    constexpr std::size_t max_bytes = 1 << 20;
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    std::string text(max_bytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad())
        return std::nullopt;
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_bytes)
        return std::nullopt;
    return text;
}

int check(const std::vector<std::string>& files) {
    int status = 0;
    for (const std::string& file : files) {
        const std::optional<std::string> text = read_file(file);
        if (!text) {
            std::fprintf(stderr, "%s: cannot read (missing, unreadable or over 1 MiB)\n", file.c_str());
            status = 2;
            continue;
        }
        const eagain::harness::ParseResult result = eagain::harness::parse_scenario(*text, file);
        for (const std::string& error : result.errors)
            std::printf("%s\n", error.c_str());
        if (!result.ok()) {
            status = status == 0 ? 1 : status;
            continue;
        }
        const eagain::harness::Scenario& s = result.scenario;
        std::printf(
            "%s: ok (%zu hosts, %zu apps, %zu syscall faults, %zu network faults, %zu actions, %zu "
            "expectations)\n",
            file.c_str(), s.hosts.size(), s.apps.size(), s.syscall_faults.size(), s.net_faults.size(), s.actions.size(),
            s.expectations.size());
    }
    return status;
}

}  // namespace

std::string seconds(eagain::Nanos t) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6fs", static_cast<double>(t.count()) / 1e9);
    return text;
}

// FILE|DIR arguments as a list of .scn files: directories recursively, in
// name order so every run lists them alike.
std::optional<std::vector<std::string>> scenario_files(const std::vector<std::string>& paths) {
    std::vector<std::string> files;
    for (const std::string& path : paths) {
        std::error_code error;
        if (std::filesystem::is_directory(path, error)) {
            std::vector<std::string> found;
            for (const auto& entry : std::filesystem::recursive_directory_iterator(path, error)) {
                if (entry.is_regular_file() && entry.path().extension() == ".scn")
                    found.push_back(entry.path().string());
            }
            std::sort(found.begin(), found.end());
            files.insert(files.end(), found.begin(), found.end());
        } else if (std::filesystem::exists(path, error)) {
            files.push_back(path);
        } else {
            std::fprintf(stderr, "%s: no such file or directory\n", path.c_str());
            return std::nullopt;
        }
    }
    return files;
}

int run(const std::vector<std::string>& paths, std::optional<std::uint64_t> seed, const std::string& trace_path) {
    const std::optional<std::vector<std::string>> files = scenario_files(paths);
    if (!files)
        return 2;
    if (!trace_path.empty() && files->size() != 1) {
        std::fprintf(stderr, "--trace needs exactly one scenario (got %zu)\n", files->size());
        return 2;
    }
    std::ofstream trace_file;
    if (!trace_path.empty()) {
        trace_file.open(trace_path, std::ios::binary | std::ios::trunc);
        if (!trace_file) {
            std::fprintf(stderr, "%s: cannot write\n", trace_path.c_str());
            return 2;
        }
    }
    std::size_t passed = 0;
    std::size_t failed = 0;
    std::size_t not_run = 0;
    for (const std::string& file : *files) {
        const std::optional<std::string> text = read_file(file);
        if (!text) {
            std::printf("ERROR %s: cannot read\n", file.c_str());
            ++not_run;
            continue;
        }
        const eagain::harness::ParseResult parsed = eagain::harness::parse_scenario(*text, file);
        if (!parsed.ok()) {
            std::printf("ERROR %s: does not parse\n", file.c_str());
            for (const std::string& error : parsed.errors)
                std::printf("  %s\n", error.c_str());
            ++not_run;
            continue;
        }
        eagain::harness::ScenarioRunOptions options;
        options.seed = seed;
        if (trace_file.is_open())
            options.trace_sink = [&](std::string_view line) { trace_file << line << '\n'; };
        const auto wall_start = std::chrono::steady_clock::now();
        const eagain::harness::ScenarioReport report = eagain::harness::run_scenario(parsed.scenario, options);
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
        if (!report.setup_error.empty()) {
            std::printf("ERROR %s: %s\n", file.c_str(), report.setup_error.c_str());
            ++not_run;
            continue;
        }
        std::printf("%s  %s  virtual %s  wall %.3fs  faults %llu  hash %s\n", report.passed ? "PASS" : "FAIL",
                    file.c_str(), seconds(report.virtual_time).c_str(), wall,
                    static_cast<unsigned long long>(report.faults_injected), report.trace_hash.c_str());
        for (const eagain::harness::ExpectationFailure& failure : report.failures) {
            std::printf("  %s:%d: %s\n", file.c_str(), failure.where.line, failure.expectation.c_str());
            std::printf("    expected: %s\n", failure.expected.c_str());
            std::printf("    happened: %s\n", failure.happened.c_str());
            if (&failure != &report.failures.front() && failure.trace_tail == report.failures.front().trace_tail) {
                std::printf("    at virtual time %s (the trace before it: as above)\n", seconds(failure.at).c_str());
                continue;
            }
            std::printf("    at virtual time %s; the trace before it:\n", seconds(failure.at).c_str());
            for (const std::string& line : failure.trace_tail)
                std::printf("      %s\n", line.c_str());
        }
        (report.passed ? passed : failed) += 1;
    }
    std::printf("scenarios: %zu run, %zu passed, %zu failed, %zu could not run\n", passed + failed, passed, failed,
                not_run);
    return failed == 0 && not_run == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
    CLI::App app{"eagain: deterministic simulation and fault injection for non-blocking TCP code"};
    app.require_subcommand(1);
    std::vector<std::string> files;
    CLI::App* check_command = app.add_subcommand("check", "parse and validate scenario files");
    check_command->add_option("files", files, "scenario files (.scn)")->required();
    std::vector<std::string> run_paths;
    std::optional<std::uint64_t> seed;
    std::string trace_path;
    CLI::App* run_command = app.add_subcommand("run", "run scenarios and check their expectations");
    run_command->add_option("paths", run_paths, "scenario files or directories")->required();
    run_command->add_option("--seed", seed, "override every scenario's seed");
    run_command->add_option("--trace", trace_path, "write the trace (JSON lines) of the one scenario run");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    if (check_command->parsed())
        return check(files);
    if (run_command->parsed())
        return run(run_paths, seed, trace_path);
    return 2;
}
