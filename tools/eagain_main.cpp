// eagain: the scenario tool (docs/scenario-language.md is the language).
//
//   eagain check FILE|DIR...             parse and validate scenario files;
//                                        print each problem as
//                                        file:line:col: expected ..., found ...
//   eagain run FILE|DIR... [--seed N] [--trace out.jsonl]
//                                        run scenarios (a directory: every
//                                        .scn below it, in name order); one
//                                        line per scenario, each failed
//                                        expectation explained, a summary
//
//   eagain sweep FILE --seeds A..B [--jobs N] [--shard i/N]
//                                        run one scenario once per seed;
//                                        a summary table (harness/sweep.h)
//   eagain explore FILE --seeds A..B [--out DIR] [--max-runs N]
//                                        find the first failing seed, write
//                                        a minimised reproducer with its
//                                        exact faults to DIR (default .),
//                                        print its path (harness/explore.h);
//                                        too many faults to list: its chance
//                                        rules and seed, the header says why
//   eagain verify --target 'CMD {port}' --protocol bytes|frames [...]
//                                        judge an unmodified program on the
//                                        real kernel (tools/verify_command.cpp,
//                                        docs/verify.md); its own exit codes
//
// Exit 0 when every file is valid (check) / passed (run, sweep) / no seed
// failed (explore), 1 when any has problems or fails or cannot run yet (or
// explore found a failing seed), 2 on bad usage or an unreadable file: a
// missing path, a directory with no .scn file, a file that is not a
// regular file (a FIFO is refused, never opened for blocking reads) or is
// over 1 MiB, a --seed that is not a decimal 0 to 2^64 - 1.
// sweep and explore draw a progress bar on stderr when it is a terminal.
#include "harness/explore.h"
#include "harness/runner.h"
#include "harness/scenario.h"
#include "harness/sweep.h"
#include "tools/verify_command.h"

#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

std::optional<std::vector<std::string>> scenario_files(const std::vector<std::string>& paths);

namespace {

// A scenario file's text, or why it cannot be read. Only a regular file
// is read (a FIFO or a device would block or never end), opened without
// blocking and checked again once open; files are bounded: a scenario is a
// page of text, not a data set (harness::max_file_bytes).
struct FileText {
    std::string text;
    std::string problem;  // empty when read
};
FileText read_file(const std::string& path) {
    const auto not_regular = [](const struct stat& st) -> std::string {
        if (S_ISDIR(st.st_mode))
            return "a directory, not a scenario file";
        if (S_ISFIFO(st.st_mode))
            return "a FIFO, not a regular file (it is not read: it could block for ever)";
        return "not a regular file (a device or socket is not read)";
    };
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return {{}, std::strerror(errno)};
    if (!S_ISREG(st.st_mode))
        return {{}, not_regular(st)};
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return {{}, std::strerror(errno)};
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    if (::fstat(fd, &st) != 0)
        return {{}, std::strerror(errno)};
    if (!S_ISREG(st.st_mode))  // replaced between stat and open
        return {{}, not_regular(st)};
    constexpr std::size_t max_bytes = eagain::harness::max_file_bytes;
    const auto too_large = [](std::uint64_t bytes) {
        return "over 1 MiB (" + std::to_string(bytes) + " bytes; a scenario file holds at most " +
               std::to_string(max_bytes) + ")";
    };
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
        return {{}, too_large(static_cast<std::uint64_t>(st.st_size))};
    std::string text(max_bytes + 1, '\0');
    std::size_t length = 0;
    while (length < text.size()) {
        const ssize_t n = ::read(fd, text.data() + length, text.size() - length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return {{}, std::strerror(errno)};
        if (n == 0)
            break;
        length += static_cast<std::size_t>(n);
    }
    if (length > max_bytes)  // grew while read
        return {{}, too_large(length)};
    text.resize(length);
    return {std::move(text), {}};
}

// "... and N more problems" after the listed ones, if any were not listed.
void print_problems(const eagain::harness::ParseResult& result, const char* indent) {
    for (const std::string& error : result.errors)
        std::printf("%s%s\n", indent, error.c_str());
    if (result.errors_not_listed != 0)
        std::printf("%s... and %zu more problem%s\n", indent, result.errors_not_listed,
                    result.errors_not_listed == 1 ? "" : "s");
}

int check(const std::vector<std::string>& paths) {
    const std::optional<std::vector<std::string>> files = scenario_files(paths);
    if (!files)
        return 2;
    int status = 0;
    for (const std::string& file : *files) {
        const FileText read = read_file(file);
        if (!read.problem.empty()) {
            std::fprintf(stderr, "%s: cannot read: %s\n", file.c_str(), read.problem.c_str());
            status = 2;
            continue;
        }
        const eagain::harness::ParseResult result = eagain::harness::parse_scenario(read.text, file);
        print_problems(result, "");
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

// FILE|DIR arguments as a list of scenario files: directories
// recursively (every .scn below that is not a directory, so a FIFO named
// .scn is refused by read_file, not skipped), in name order so every run
// lists them alike. nullopt, said on stderr, when a path is missing, a
// directory cannot be read or holds no .scn file: nothing to check or run
// is bad usage, not a pass.
std::optional<std::vector<std::string>> scenario_files(const std::vector<std::string>& paths) {
    std::vector<std::string> files;
    for (const std::string& path : paths) {
        std::error_code error;
        const std::filesystem::file_status status = std::filesystem::status(path, error);
        if (error || !std::filesystem::exists(status)) {
            std::fprintf(stderr, "%s: no such file or directory\n", path.c_str());
            return std::nullopt;
        }
        if (!std::filesystem::is_directory(status)) {
            files.push_back(path);
            continue;
        }
        std::vector<std::string> found;
        std::filesystem::recursive_directory_iterator entries(path, error);
        for (; !error && entries != std::filesystem::recursive_directory_iterator(); entries.increment(error)) {
            std::error_code type_error;
            if (entries->path().extension() == ".scn" && !entries->is_directory(type_error))
                found.push_back(entries->path().string());
        }
        if (error) {
            std::fprintf(stderr, "%s: cannot read the directory: %s\n", path.c_str(), error.message().c_str());
            return std::nullopt;
        }
        if (found.empty()) {
            std::fprintf(stderr, "%s: no .scn file in this directory (nothing to do)\n", path.c_str());
            return std::nullopt;
        }
        std::sort(found.begin(), found.end());
        files.insert(files.end(), found.begin(), found.end());
    }
    return files;
}

// --seed: a decimal number from 0 to 2^64 - 1, nothing else (no sign, no
// _, no hex); CLI11's own reading wraps -1 round to 2^64 - 1.
std::optional<std::uint64_t> parse_seed(const std::string& text) {
    if (text.find('_') != std::string::npos)
        return std::nullopt;
    return eagain::harness::parse_count(text);
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
    std::size_t unreadable = 0;
    for (const std::string& file : *files) {
        const FileText read = read_file(file);
        if (!read.problem.empty()) {
            std::printf("ERROR %s: cannot read: %s\n", file.c_str(), read.problem.c_str());
            ++unreadable;
            continue;
        }
        const eagain::harness::ParseResult parsed = eagain::harness::parse_scenario(read.text, file);
        if (!parsed.ok()) {
            std::printf("ERROR %s: does not parse\n", file.c_str());
            print_problems(parsed, "  ");
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
                not_run + unreadable);
    if (unreadable != 0)
        return 2;
    return failed == 0 && not_run == 0 ? 0 : 1;
}

// A progress bar on stderr, redrawn at most every 100 ms, only when stderr
// is a terminal; cleared when done.
class ProgressBar {
public:
    ProgressBar() : shown_(isatty(STDERR_FILENO) == 1) {}
    ~ProgressBar() { clear(); }
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    void update(std::uint64_t done, std::uint64_t total, std::uint64_t failed) {
        if (!shown_)
            return;
        const auto now = std::chrono::steady_clock::now();
        if (drawn_ && done != total && now - last_ < std::chrono::milliseconds(100))
            return;
        last_ = now;
        drawn_ = true;
        constexpr std::uint64_t width = 30;
        const std::uint64_t filled = total == 0 ? width : done * width / total;
        std::string bar(static_cast<std::size_t>(filled), '#');
        bar.resize(width, '.');
        std::fprintf(stderr, "\r[%s] %llu/%llu seeds, %llu failed", bar.c_str(), static_cast<unsigned long long>(done),
                     static_cast<unsigned long long>(total), static_cast<unsigned long long>(failed));
        std::fflush(stderr);
    }
    void clear() {
        if (shown_ && drawn_)
            std::fprintf(stderr, "\r\033[K");
        drawn_ = false;
    }

private:
    bool shown_;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point last_{};
};

// The scenario in file, parsed; its problems printed. Exit status 2
// (unreadable) or 1 (does not parse) through status when nullopt.
std::optional<eagain::harness::Scenario> load(const std::string& file, int& status) {
    const FileText read = read_file(file);
    if (!read.problem.empty()) {
        std::fprintf(stderr, "%s: cannot read: %s\n", file.c_str(), read.problem.c_str());
        status = 2;
        return std::nullopt;
    }
    eagain::harness::ParseResult parsed = eagain::harness::parse_scenario(read.text, file);
    if (!parsed.ok()) {
        std::printf("ERROR %s: does not parse\n", file.c_str());
        print_problems(parsed, "  ");
        status = 1;
        return std::nullopt;
    }
    return std::move(parsed.scenario);
}

int sweep_command(const std::string& file, const std::string& seeds_text, unsigned jobs,
                  const std::string& shard_text) {
    using namespace eagain::harness;
    const std::optional<SeedRange> seeds = parse_seed_range(seeds_text);
    if (!seeds) {
        std::fprintf(stderr, "--seeds: expected A..B with A <= B, found \"%s\"\n", seeds_text.c_str());
        return 2;
    }
    const std::optional<Shard> shard = shard_text.empty() ? Shard{} : parse_shard(shard_text);
    if (!shard) {
        std::fprintf(stderr, "--shard: expected i/N with 1 <= i <= N, found \"%s\"\n", shard_text.c_str());
        return 2;
    }
    if (shard_size(*seeds, *shard) > max_sweep_seeds) {
        std::fprintf(stderr, "--seeds: %llu seeds in one sweep; at most %llu (split the range, or use --shard)\n",
                     static_cast<unsigned long long>(shard_size(*seeds, *shard)),
                     static_cast<unsigned long long>(max_sweep_seeds));
        return 2;
    }
    int status = 0;
    const std::optional<Scenario> scenario = load(file, status);
    if (!scenario)
        return status;

    SweepOptions options;
    options.seeds = *seeds;
    options.shard = *shard;
    options.jobs = jobs;
    ProgressBar bar;
    std::uint64_t failed = 0;
    options.progress = [&](const SeedOutcome& outcome, std::uint64_t done, std::uint64_t total) {
        failed += outcome.passed ? 0 : 1;
        bar.update(done, total, failed);
    };
    const auto wall_start = std::chrono::steady_clock::now();
    const SweepResult result = sweep(*scenario, options);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    bar.clear();
    if (!result.error.empty()) {
        std::fprintf(stderr, "sweep: %s\n", result.error.c_str());
        return 2;
    }
    const SweepSummary summary = summarize(result.outcomes);
    std::printf("sweep %s  seeds %llu..%llu  shard %llu/%llu\n", file.c_str(),
                static_cast<unsigned long long>(seeds->first), static_cast<unsigned long long>(seeds->last),
                static_cast<unsigned long long>(shard->index), static_cast<unsigned long long>(shard->count));
    std::printf("%s", format_summary(summary).c_str());
    std::printf("wall time             %.3fs with %u jobs (%.0f seeds/s)\n", wall, jobs,
                wall > 0 ? static_cast<double>(summary.seeds_run) / wall : 0.0);
    return summary.failed == 0 && summary.not_run == 0 ? 0 : 1;
}

int explore_command(const std::string& file, const std::string& seeds_text, const std::string& out_dir,
                    std::size_t max_runs) {
    using namespace eagain::harness;
    const std::optional<SeedRange> seeds = parse_seed_range(seeds_text);
    if (!seeds) {
        std::fprintf(stderr, "--seeds: expected A..B with A <= B, found \"%s\"\n", seeds_text.c_str());
        return 2;
    }
    std::error_code error;
    if (!std::filesystem::is_directory(out_dir, error)) {
        std::fprintf(stderr, "--out: %s is not a directory\n", out_dir.c_str());
        return 2;
    }
    int status = 0;
    const std::optional<Scenario> scenario = load(file, status);
    if (!scenario)
        return status;

    ExploreOptions options;
    options.seeds = *seeds;
    options.max_runs = max_runs;
    ProgressBar bar;
    std::uint64_t done = 0;
    options.progress = [&](std::uint64_t /*seed*/, bool passed) {
        ++done;
        bar.update(done, seeds->size(), passed ? 0 : 1);
    };
    const ExploreResult result = explore(*scenario, options);
    bar.clear();
    if (!result.error.empty()) {
        std::fprintf(stderr, "explore %s: %s\n", file.c_str(), result.error.c_str());
        return 1;
    }
    std::printf("explore %s  seeds %llu..%llu\n", file.c_str(), static_cast<unsigned long long>(seeds->first),
                static_cast<unsigned long long>(seeds->last));
    if (!result.failing_seed) {
        std::printf("no failing seed: %llu seeds run, all passed\n", static_cast<unsigned long long>(result.seeds_run));
        return 0;
    }
    std::printf("seed %llu fails (%llu seeds run):\n", static_cast<unsigned long long>(*result.failing_seed),
                static_cast<unsigned long long>(result.seeds_run));
    for (const std::string& failed : result.failure)
        std::printf("  %s\n", failed.c_str());
    if (result.not_exact_reason.empty())
        std::printf("exact faults %zu, minimised to %zu in %zu runs", result.faults_before, result.faults_after,
                    result.runs);
    else
        std::printf("not exact (%s): chance rules kept with the seed, faults injected %zu -> %zu in %zu runs",
                    result.not_exact_reason.c_str(), result.faults_before, result.faults_after, result.runs);
    for (const std::string& change : result.workload_changes)
        std::printf("; %s", change.c_str());
    std::printf("%s\n", result.budget_exhausted ? " (stopped at --max-runs)" : "");
    std::printf("%s\n", result.seed_needed ? "the seed is still needed (see the file's header)"
                                           : "no seed needed: it fails the same way with other seeds");
    const std::filesystem::path path =
        std::filesystem::path(out_dir) / reproducer_file_name(scenario->file, *result.failing_seed);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << result.reproducer_text;
    out.close();
    if (!out) {
        std::fprintf(stderr, "%s: cannot write\n", path.string().c_str());
        return 2;
    }
    std::printf("reproducer: %s\n", path.string().c_str());
    return 1;
}

int main(int argc, char** argv) {
    CLI::App app{"eagain: deterministic simulation and fault injection for non-blocking TCP code"};
    app.require_subcommand(1);
    std::vector<std::string> files;
    CLI::App* check_command = app.add_subcommand("check", "parse and validate scenario files");
    check_command->add_option("paths", files, "scenario files or directories")->required();
    std::vector<std::string> run_paths;
    std::string seed_text;
    std::string trace_path;
    CLI::App* run_command = app.add_subcommand("run", "run scenarios and check their expectations");
    run_command->add_option("paths", run_paths, "scenario files or directories")->required();
    run_command->add_option("--seed", seed_text, "override every scenario's seed (0 to 2^64 - 1, decimal)");
    run_command->add_option("--trace", trace_path, "write the trace (JSON lines) of the one scenario run");

    std::string scenario_file;
    std::string seeds_text;
    unsigned jobs = 1;
    std::string shard_text;
    CLI::App* sweep_cmd = app.add_subcommand("sweep", "run one scenario once per seed and summarise");
    sweep_cmd->add_option("file", scenario_file, "scenario file (.scn)")->required();
    sweep_cmd->add_option("--seeds", seeds_text, "seeds A..B (both included)")->required();
    sweep_cmd->add_option("--jobs", jobs, "worker processes")->check(CLI::Range(1U, eagain::harness::max_sweep_jobs));
    sweep_cmd->add_option("--shard", shard_text, "i/N: only seeds with (seed - A) % N == i - 1");

    std::string out_dir = ".";
    std::size_t max_runs = 500;
    CLI::App* explore_cmd =
        app.add_subcommand("explore", "find a failing seed and write a minimised reproducer with exact faults");
    explore_cmd->add_option("file", scenario_file, "scenario file (.scn)")->required();
    explore_cmd->add_option("--seeds", seeds_text, "seeds A..B to try, in order")->required();
    explore_cmd->add_option("--out", out_dir, "directory for the reproducer (default: .)");
    explore_cmd->add_option("--max-runs", max_runs, "runs to spend checking and minimising (default 500)")
        ->check(CLI::Range(std::size_t{5}, std::size_t{1000000}));
    eagain::tools::VerifyArguments verify_arguments;
    CLI::App* verify_cmd = eagain::tools::add_verify_command(app, verify_arguments);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    if (check_command->parsed())
        return check(files);
    if (run_command->parsed()) {
        std::optional<std::uint64_t> seed;
        if (run_command->count("--seed") != 0) {
            seed = parse_seed(seed_text);
            if (!seed) {
                std::fprintf(stderr, "--seed: expected a decimal number from 0 to %llu, found \"%s\"\n",
                             static_cast<unsigned long long>(std::numeric_limits<std::uint64_t>::max()),
                             seed_text.c_str());
                return 2;
            }
        }
        return run(run_paths, seed, trace_path);
    }
    if (sweep_cmd->parsed())
        return sweep_command(scenario_file, seeds_text, jobs, shard_text);
    if (explore_cmd->parsed())
        return explore_command(scenario_file, seeds_text, out_dir, max_runs);
    if (verify_cmd->parsed())
        return eagain::tools::verify_command(verify_arguments);
    return 2;
}
