#include "harness/sweep.h"

#include "core/assert.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <map>

namespace eagain::harness {

namespace {

std::optional<std::uint64_t> whole_number(std::string_view text) noexcept {
    // Seeds are plain decimal numbers; parse_count also takes "1_000".
    return parse_count(text);
}

// --- the worker pipe protocol -------------------------------------------------
// One outcome is a header line "outcome N" and N lines: seed, passed,
// virtual time (ns), faults injected, trace hash, setup error, then one line
// per failed expectation. Strings never hold a newline (replaced by spaces).

std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    return text;
}

std::string encode(const SeedOutcome& outcome) {
    std::vector<std::string> lines{std::to_string(outcome.seed),
                                   outcome.passed ? "1" : "0",
                                   std::to_string(outcome.virtual_time.count()),
                                   std::to_string(outcome.faults_injected),
                                   one_line(outcome.trace_hash),
                                   one_line(outcome.setup_error)};
    for (const std::string& failed : outcome.failed)
        lines.push_back(one_line(failed));
    std::string text = "outcome " + std::to_string(lines.size()) + "\n";
    for (const std::string& line : lines)
        text += line + "\n";
    return text;
}

std::optional<SeedOutcome> decode(const std::vector<std::string>& lines) {
    if (lines.size() < 6)
        return std::nullopt;
    SeedOutcome outcome;
    const auto seed = whole_number(lines[0]);
    const auto virtual_ns = whole_number(lines[2]);
    const auto faults = whole_number(lines[3]);
    if (!seed || !virtual_ns || !faults || (lines[1] != "0" && lines[1] != "1"))
        return std::nullopt;
    outcome.seed = *seed;
    outcome.passed = lines[1] == "1";
    outcome.virtual_time = Nanos(static_cast<Nanos::rep>(*virtual_ns));
    outcome.faults_injected = *faults;
    outcome.trace_hash = lines[4];
    outcome.setup_error = lines[5];
    outcome.failed.assign(lines.begin() + 6, lines.end());
    return outcome;
}

// Writes all of text to fd (a blocking pipe); false if the reader is gone.
bool write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        const ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Reads one worker's outcomes as they come.
class WorkerReader {
public:
    // Takes the bytes just read; returns the outcomes they completed, or
    // nullopt if the stream is malformed.
    std::optional<std::vector<SeedOutcome>> feed(std::string_view bytes) {
        buffer_.append(bytes);
        std::vector<SeedOutcome> complete;
        std::size_t start = 0;
        for (std::size_t end = buffer_.find('\n'); end != std::string::npos; end = buffer_.find('\n', start)) {
            lines_.emplace_back(buffer_, start, end - start);
            start = end + 1;
        }
        buffer_.erase(0, start);
        while (!lines_.empty()) {
            const std::string& header = lines_.front();
            const auto count = header.rfind("outcome ", 0) == 0 ? whole_number(header.substr(8)) : std::nullopt;
            if (!count || *count > 100000)
                return std::nullopt;
            if (lines_.size() < 1 + *count)
                break;
            const std::vector<std::string> record(lines_.begin() + 1,
                                                  lines_.begin() + 1 + static_cast<std::ptrdiff_t>(*count));
            lines_.erase(lines_.begin(), lines_.begin() + 1 + static_cast<std::ptrdiff_t>(*count));
            std::optional<SeedOutcome> outcome = decode(record);
            if (!outcome)
                return std::nullopt;
            complete.push_back(std::move(*outcome));
        }
        return complete;
    }

private:
    std::string buffer_;
    std::deque<std::string> lines_;
};

std::string exit_description(int status) {
    if (WIFSIGNALED(status))
        return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
    if (WIFEXITED(status))
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    return "ended with wait status " + std::to_string(status);
}

struct Worker {
    pid_t pid = -1;
    int read_fd = -1;
    WorkerReader reader;
    bool malformed = false;
};

// The forked sweep: workers run their seeds and report; this process
// collects. outcomes is indexed by the seed's position in the shard.
std::string sweep_in_workers(const Scenario& scenario, const SweepOptions& options, std::uint64_t total,
                             std::vector<std::optional<SeedOutcome>>& outcomes) {
    const auto workers_wanted = static_cast<unsigned>(std::min<std::uint64_t>(options.jobs, total));
    std::vector<Worker> workers(workers_wanted);
    // Output still buffered would be written again by every child.
    std::fflush(stdout);
    std::fflush(stderr);
    std::string error;
    for (unsigned w = 0; w < workers_wanted; ++w) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            error = std::string("pipe: ") + std::strerror(errno);
            break;
        }
        const pid_t pid = ::fork();
        if (pid < 0) {
            error = std::string("fork: ") + std::strerror(errno);
            ::close(fds[0]);
            ::close(fds[1]);
            break;
        }
        if (pid == 0) {
            // The worker. Only the write end of its own pipe matters; the
            // read ends of earlier workers' pipes are dropped so their EOF
            // does not wait for this process.
            ::close(fds[0]);
            for (unsigned earlier = 0; earlier < w; ++earlier)
                ::close(workers[earlier].read_fd);
            for (std::uint64_t k = w; k < total; k += workers_wanted) {
                const SeedOutcome outcome =
                    run_seed(scenario, shard_seed(options.seeds, options.shard, k), options.run);
                if (!write_all(fds[1], encode(outcome)))
                    ::_exit(3);
            }
            ::_exit(0);  // no atexit handlers, no flushing of the parent's buffers
        }
        ::close(fds[1]);
        workers[w].pid = pid;
        workers[w].read_fd = fds[0];
    }

    std::uint64_t done = 0;
    std::vector<pollfd> polled;
    std::vector<char> chunk(64 * 1024);
    for (;;) {
        polled.clear();
        for (const Worker& worker : workers) {
            if (worker.read_fd >= 0)
                polled.push_back(pollfd{worker.read_fd, POLLIN, 0});
        }
        if (polled.empty())
            break;
        if (::poll(polled.data(), polled.size(), -1) < 0) {
            if (errno == EINTR)
                continue;
            error = std::string("poll: ") + std::strerror(errno);
            break;
        }
        for (const pollfd& p : polled) {
            if (p.revents == 0)
                continue;
            Worker& worker = *std::find_if(workers.begin(), workers.end(),
                                           [&](const Worker& candidate) { return candidate.read_fd == p.fd; });
            const ssize_t n = ::read(worker.read_fd, chunk.data(), chunk.size());
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                ::close(worker.read_fd);
                worker.read_fd = -1;
                continue;
            }
            std::optional<std::vector<SeedOutcome>> arrived =
                worker.reader.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
            if (!arrived) {
                worker.malformed = true;
                ::close(worker.read_fd);
                worker.read_fd = -1;
                continue;
            }
            for (SeedOutcome& outcome : *arrived) {
                // Which position of the shard this seed is: seeds of a shard
                // are A + (i - 1) + k * N.
                const std::uint64_t k =
                    (outcome.seed - options.seeds.first - (options.shard.index - 1)) / options.shard.count;
                if (k < total && shard_seed(options.seeds, options.shard, k) == outcome.seed && !outcomes[k]) {
                    outcomes[k] = std::move(outcome);
                    ++done;
                    if (options.progress)
                        options.progress(*outcomes[k], done, total);
                }
            }
        }
    }
    for (Worker& worker : workers) {
        if (worker.read_fd >= 0)
            ::close(worker.read_fd);
        if (worker.pid < 0)
            continue;
        int status = 0;
        while (::waitpid(worker.pid, &status, 0) < 0 && errno == EINTR) {
        }
        const std::string how = worker.malformed ? "sent a malformed report" : exit_description(status);
        // Seeds this worker was given but never reported.
        const auto index = static_cast<std::uint64_t>(&worker - workers.data());
        for (std::uint64_t k = index; k < total; k += workers_wanted) {
            if (outcomes[k])
                continue;
            SeedOutcome lost;
            lost.seed = shard_seed(options.seeds, options.shard, k);
            lost.setup_error = "worker process " + how + " before reporting this seed";
            outcomes[k] = std::move(lost);
            ++done;
        }
    }
    return error;
}

}  // namespace

std::optional<SeedRange> parse_seed_range(std::string_view text) noexcept {
    const std::size_t dots = text.find("..");
    if (dots == std::string_view::npos)
        return std::nullopt;
    const auto first = whole_number(text.substr(0, dots));
    const auto last = whole_number(text.substr(dots + 2));
    if (!first || !last || *first > *last || (*first == 0 && *last == std::numeric_limits<std::uint64_t>::max()))
        return std::nullopt;
    return SeedRange{*first, *last};
}

std::optional<Shard> parse_shard(std::string_view text) noexcept {
    const std::size_t slash = text.find('/');
    if (slash == std::string_view::npos)
        return std::nullopt;
    const auto index = whole_number(text.substr(0, slash));
    const auto count = whole_number(text.substr(slash + 1));
    if (!index || !count || *index < 1 || *index > *count)
        return std::nullopt;
    return Shard{*index, *count};
}

std::uint64_t shard_size(SeedRange range, Shard shard) noexcept {
    const std::uint64_t size = range.size();
    if (shard.index - 1 >= size)
        return 0;
    return (size - (shard.index - 1) + shard.count - 1) / shard.count;
}

std::uint64_t shard_seed(SeedRange range, Shard shard, std::uint64_t k) noexcept {
    return range.first + (shard.index - 1) + k * shard.count;
}

std::string failure_label(const ExpectationFailure& failure) {
    if (failure.where.line == 0)
        return failure.expectation;
    return failure.expectation + " (line " + std::to_string(failure.where.line) + ")";
}

SeedOutcome run_seed(const Scenario& scenario, std::uint64_t seed, const ScenarioRunOptions& run) {
    ScenarioRunOptions options;
    options.seed = seed;
    options.apps = run.apps;
    const ScenarioReport report = run_scenario(scenario, options);
    SeedOutcome outcome;
    outcome.seed = seed;
    outcome.passed = report.setup_error.empty() && report.passed;
    outcome.setup_error = report.setup_error;
    for (const ExpectationFailure& failure : report.failures)
        outcome.failed.push_back(failure_label(failure));
    outcome.virtual_time = report.virtual_time;
    outcome.faults_injected = report.faults_injected;
    outcome.trace_hash = report.trace_hash;
    return outcome;
}

SweepResult sweep(const Scenario& scenario, const SweepOptions& options) {
    SweepResult result;
    if (options.seeds.first > options.seeds.last || options.shard.index < 1 ||
        options.shard.index > options.shard.count) {
        result.error = "bad seed range or shard";
        return result;
    }
    if (options.jobs < 1 || options.jobs > max_sweep_jobs) {
        result.error = "jobs must be from 1 to " + std::to_string(max_sweep_jobs);
        return result;
    }
    const std::uint64_t total = shard_size(options.seeds, options.shard);
    if (total > max_sweep_seeds) {
        result.error = std::to_string(total) + " seeds in one sweep; at most " + std::to_string(max_sweep_seeds) +
                       " (split the range, or use --shard)";
        return result;
    }
    std::vector<std::optional<SeedOutcome>> outcomes(total);
    if (options.jobs == 1 || total <= 1) {
        for (std::uint64_t k = 0; k < total; ++k) {
            outcomes[k] = run_seed(scenario, shard_seed(options.seeds, options.shard, k), options.run);
            if (options.progress)
                options.progress(*outcomes[k], k + 1, total);
        }
    } else {
        result.error = sweep_in_workers(scenario, options, total, outcomes);
        if (!result.error.empty())
            return result;
    }
    result.outcomes.reserve(total);
    for (std::optional<SeedOutcome>& outcome : outcomes) {
        EAGAIN_ASSERT(outcome.has_value());
        result.outcomes.push_back(std::move(*outcome));
    }
    return result;
}

SweepSummary summarize(const std::vector<SeedOutcome>& outcomes) {
    SweepSummary summary;
    std::map<std::string, std::uint64_t> failures;
    std::map<std::string, std::uint64_t> reasons;
    std::vector<Nanos> times;
    for (const SeedOutcome& outcome : outcomes) {
        ++summary.seeds_run;
        if (!outcome.setup_error.empty()) {
            ++summary.not_run;
            ++reasons[outcome.setup_error];
            continue;
        }
        times.push_back(outcome.virtual_time);
        if (outcome.passed) {
            ++summary.passed;
            continue;
        }
        ++summary.failed;
        summary.failing_seeds.push_back(outcome.seed);
        for (const std::string& failed : outcome.failed)
            ++failures[failed];
    }
    const auto most_first = [](const std::map<std::string, std::uint64_t>& counts) {
        std::vector<std::pair<std::string, std::uint64_t>> sorted(counts.begin(), counts.end());
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const auto& a, const auto& b) { return a.second > b.second; });
        return sorted;
    };
    summary.failures = most_first(failures);
    summary.not_run_reasons = most_first(reasons);
    std::sort(summary.failing_seeds.begin(), summary.failing_seeds.end());
    if (!times.empty()) {
        std::sort(times.begin(), times.end());
        summary.virtual_time_min = times.front();
        summary.virtual_time_median = times[(times.size() - 1) / 2];
        summary.virtual_time_max = times.back();
    }
    return summary;
}

std::string format_summary(const SweepSummary& summary, std::size_t failing_seeds_shown) {
    std::string out;
    const auto row = [&out](std::string_view key, const std::string& value) {
        std::string line(key);
        line.resize(std::max<std::size_t>(line.size() + 2, 22), ' ');
        out += line + value + "\n";
    };
    row("seeds run", std::to_string(summary.seeds_run));
    row("passed", std::to_string(summary.passed));
    row("failed", std::to_string(summary.failed));
    if (summary.not_run != 0)
        row("could not run", std::to_string(summary.not_run));
    if (!summary.failing_seeds.empty()) {
        std::string seeds;
        const std::size_t shown = std::min(failing_seeds_shown, summary.failing_seeds.size());
        for (std::size_t i = 0; i < shown; ++i)
            seeds += (i == 0 ? "" : " ") + std::to_string(summary.failing_seeds[i]);
        if (shown < summary.failing_seeds.size())
            seeds += " ... (" + std::to_string(summary.failing_seeds.size() - shown) + " more)";
        row("failing seeds", seeds);
    }
    for (const auto& [label, count] : summary.failures)
        row("  failed", std::to_string(count) + "  " + label);
    for (const auto& [reason, count] : summary.not_run_reasons)
        row("  not run", std::to_string(count) + "  " + reason);
    const auto seconds = [](Nanos t) {
        char text[32];
        std::snprintf(text, sizeof text, "%.6fs", static_cast<double>(t.count()) / 1e9);
        return std::string(text);
    };
    if (summary.passed + summary.failed != 0)
        row("virtual time", "min " + seconds(summary.virtual_time_min) + "  median " +
                                seconds(summary.virtual_time_median) + "  max " + seconds(summary.virtual_time_max));
    return out;
}

}  // namespace eagain::harness
