#include "harness/explore.h"

#include "core/assert.h"
#include "core/faulty_sys.h"

#include <algorithm>
#include <array>
#include <compare>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <utility>
#include <variant>

namespace eagain::harness {

namespace {

// A `calls` / `segments` list longer than this is split over several
// statements (same rule, consecutive, disjoint lists: the same faults), so
// every line stays far below max_line_bytes.
constexpr std::size_t max_listed_per_statement = 200;
// Runs kept back from minimising for the seed check (2) and the final check.
constexpr std::size_t reserved_runs = 3;

// One fault ddmin may keep or drop.
struct Unit {
    enum class Kind : std::uint8_t { syscall_rule, syscall_call, net_fault, net_segment };
    Kind kind = Kind::syscall_rule;
    std::size_t index = 0;     // in Scenario::syscall_faults or net_faults
    std::uint64_t number = 0;  // the call or segment, for the listed kinds
    friend auto operator<=>(const Unit&, const Unit&) = default;
};

const std::vector<std::uint64_t>* held_list(const NetFault& fault) {
    const auto* reorder = std::get_if<sim::ReorderFault>(&fault);
    return reorder != nullptr && !reorder->held_segments.empty() ? &reorder->held_segments : nullptr;
}

std::vector<Unit> units_of(const Scenario& scenario) {
    std::vector<Unit> units;
    for (std::size_t i = 0; i < scenario.syscall_faults.size(); ++i) {
        const FaultRule& rule = scenario.syscall_faults[i].rule;
        if (rule.when != CallSelector::call_list) {
            units.push_back(Unit{Unit::Kind::syscall_rule, i, 0});
            continue;
        }
        for (const std::uint64_t call : rule.call_list)
            units.push_back(Unit{Unit::Kind::syscall_call, i, call});
    }
    for (std::size_t i = 0; i < scenario.net_faults.size(); ++i) {
        const std::vector<std::uint64_t>* held = held_list(scenario.net_faults[i].fault);
        if (held == nullptr) {
            units.push_back(Unit{Unit::Kind::net_fault, i, 0});
            continue;
        }
        for (const std::uint64_t segment : *held)
            units.push_back(Unit{Unit::Kind::net_segment, i, segment});
    }
    return units;
}

// scenario with only the faults in kept (a subset of units_of(scenario)).
Scenario with_units(const Scenario& scenario, const std::vector<Unit>& kept) {
    const std::set<Unit> keep(kept.begin(), kept.end());
    Scenario out = scenario;
    out.syscall_faults.clear();
    out.net_faults.clear();
    for (std::size_t i = 0; i < scenario.syscall_faults.size(); ++i) {
        SyscallFaultSpec spec = scenario.syscall_faults[i];
        if (spec.rule.when != CallSelector::call_list) {
            if (keep.contains(Unit{Unit::Kind::syscall_rule, i, 0}))
                out.syscall_faults.push_back(std::move(spec));
            continue;
        }
        std::erase_if(spec.rule.call_list, [&](std::uint64_t call) {
            return !keep.contains(Unit{Unit::Kind::syscall_call, i, call});
        });
        if (!spec.rule.call_list.empty())
            out.syscall_faults.push_back(std::move(spec));
    }
    for (std::size_t i = 0; i < scenario.net_faults.size(); ++i) {
        NetFaultSpec spec = scenario.net_faults[i];
        if (held_list(spec.fault) == nullptr) {
            if (keep.contains(Unit{Unit::Kind::net_fault, i, 0}))
                out.net_faults.push_back(std::move(spec));
            continue;
        }
        auto& held = std::get<sim::ReorderFault>(spec.fault).held_segments;
        std::erase_if(held, [&](std::uint64_t segment) {
            return !keep.contains(Unit{Unit::Kind::net_segment, i, segment});
        });
        if (!held.empty())
            out.net_faults.push_back(std::move(spec));
    }
    return out;
}

// Splits numbers into lists of at most max_listed_per_statement.
std::vector<std::vector<std::uint64_t>> in_pieces(const std::vector<std::uint64_t>& numbers) {
    std::vector<std::vector<std::uint64_t>> pieces;
    for (std::size_t start = 0; start < numbers.size(); start += max_listed_per_statement) {
        const std::size_t end = std::min(numbers.size(), start + max_listed_per_statement);
        pieces.emplace_back(numbers.begin() + static_cast<std::ptrdiff_t>(start),
                            numbers.begin() + static_cast<std::ptrdiff_t>(end));
    }
    return pieces;
}

std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    return text;
}

// Runs candidates against the failure being minimised, within a budget.
class Oracle {
public:
    Oracle(const ScenarioRunOptions& run, std::vector<std::string> signature, std::size_t budget)
        : run_(run), signature_(std::move(signature)), budget_(budget) {}

    // candidate run with its own seed fails the same way (false once the
    // budget is spent).
    bool fails_same(const Scenario& candidate, FaultLog* log = nullptr) {
        if (runs_ >= budget_) {
            exhausted_ = true;
            return false;
        }
        ++runs_;
        ScenarioRunOptions options;
        options.apps = run_.apps;
        options.fault_log = log;
        last_ = run_scenario(candidate, options);
        return last_.setup_error.empty() && !last_.passed && failure_signature(last_) == signature_;
    }
    const ScenarioReport& last() const noexcept { return last_; }
    std::size_t runs() const noexcept { return runs_; }
    bool exhausted() const noexcept { return exhausted_; }
    void extend(std::size_t runs) noexcept { budget_ += runs; }

private:
    const ScenarioRunOptions& run_;
    std::vector<std::string> signature_;
    std::size_t budget_;
    std::size_t runs_ = 0;
    bool exhausted_ = false;
    ScenarioReport last_;
};

// Zeller's ddmin: the smallest subset of units (1-minimal within the budget)
// for which fails() holds, given that it holds for all of them.
std::vector<Unit> ddmin(std::vector<Unit> units, const std::function<bool(const std::vector<Unit>&)>& fails) {
    if (units.empty() || fails({}))
        return {};
    std::size_t n = 2;
    while (units.size() >= 2) {
        std::vector<std::vector<Unit>> chunks;
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t begin = units.size() * i / n;
            const std::size_t end = units.size() * (i + 1) / n;
            chunks.emplace_back(units.begin() + static_cast<std::ptrdiff_t>(begin),
                                units.begin() + static_cast<std::ptrdiff_t>(end));
        }
        bool reduced = false;
        for (const std::vector<Unit>& chunk : chunks) {
            if (fails(chunk)) {
                units = chunk;
                n = 2;
                reduced = true;
                break;
            }
        }
        // With two chunks each complement is the other chunk, tried above.
        for (std::size_t i = 0; !reduced && n > 2 && i < chunks.size(); ++i) {
            std::vector<Unit> complement;
            for (std::size_t j = 0; j < chunks.size(); ++j) {
                if (j != i)
                    complement.insert(complement.end(), chunks[j].begin(), chunks[j].end());
            }
            if (fails(complement)) {
                units = std::move(complement);
                n = std::max<std::size_t>(n - 1, 2);
                reduced = true;
            }
        }
        if (!reduced) {
            if (n >= units.size())
                break;
            n = std::min(n * 2, units.size());
        }
    }
    return units;
}

// The workload options the minimiser halves, and how each is read.
struct WorkloadKey {
    std::string_view key;
    bool size;  // a size (bytes) rather than a count
};
constexpr std::array<WorkloadKey, 3> workload_keys{{{"frames", false}, {"bytes", true}, {"conns", false}}};

std::optional<std::uint64_t> read_value(const WorkloadKey& key, std::string_view text) {
    return key.size ? parse_size(text) : parse_count(text);
}

// base with app's `key` set to value, and what counted the old value with it.
Scenario with_workload(const Scenario& base, std::size_t app_index, const WorkloadKey& key, std::uint64_t old_value,
                       std::uint64_t value) {
    Scenario out = base;
    AppSpec& app = out.apps[app_index];
    app.options[std::string(key.key)] = std::to_string(value);
    for (ExpectSpec& e : out.expectations) {
        if (e.arguments.empty())
            continue;
        const bool counts_frames = key.key == "frames" && e.what == "frames-verified" && e.app == app.name &&
                                   parse_count(e.arguments.front()) == old_value;
        const bool counts_bytes =
            key.key == "bytes" && e.what == "bytes-received" && parse_size(e.arguments.front()) == old_value;
        if (counts_frames || counts_bytes)
            e.arguments.front() = std::to_string(value);
    }
    // The other end of a byte stream (bulk-sender bytes -> bulk-receiver bytes).
    if (key.key == "bytes") {
        for (AppSpec& other : out.apps) {
            const auto bytes = other.options.find("bytes");
            if (&other != &app && bytes != other.options.end() && parse_size(bytes->second) == old_value)
                bytes->second = std::to_string(value);
        }
    }
    return out;
}

bool has_jitter(const Scenario& scenario) {
    return scenario.network.jitter > Nanos{0} ||
           std::any_of(scenario.links.begin(), scenario.links.end(),
                       [](const LinkSpec& link) { return link.link.jitter > Nanos{0}; });
}

Scenario without_jitter(Scenario scenario) {
    scenario.network.jitter = Nanos{0};
    for (LinkSpec& link : scenario.links)
        link.link.jitter = Nanos{0};
    return scenario;
}

std::string header(const ExploreResult& result, const Scenario& source, std::uint64_t seed,
                   const std::vector<std::uint64_t>& other_seeds, std::size_t max_runs) {
    std::string text;
    const auto line = [&text](const std::string& l) { text += "# " + l + "\n"; };
    line("Reproduces a failure of " + (source.file.empty() ? std::string("a scenario") : source.file) +
         " found with seed " + std::to_string(seed) + ".");
    if (result.not_exact_reason.empty()) {
        line("generated by eagain explore; exact faults, no probabilities");
    } else {
        line("generated by eagain explore; NOT exact: its faults are still chance rules, drawn from seed " +
             std::to_string(seed) + ",");
        line("so it reproduces only as long as the code makes the same calls. Why not exact:");
        line("  " + result.not_exact_reason);
    }
    if (!result.exact_at_first_problem.empty() && result.not_exact_reason.empty())
        line("Made exact after minimising with the seed first: at first " + result.exact_at_first_problem + ".");
    line("It fails the same way as that seed did; the failed expectations:");
    for (const std::string& failed : result.failure)
        line("  " + failed);
    for (const std::string& explanation : result.explanations)
        line("    " + explanation);
    std::string minimised = "Minimised in " + std::to_string(result.runs) +
                            " runs: " + (result.not_exact_reason.empty() ? "faults " : "faults injected ") +
                            std::to_string(result.faults_before) + " -> " + std::to_string(result.faults_after);
    for (const std::string& change : result.workload_changes)
        minimised += "; " + change;
    if (result.jitter_needed)
        minimised += "; link jitter kept (without it the failure goes)";
    line(minimised + ".");
    if (result.budget_exhausted)
        line("Minimising stopped at its limit of " + std::to_string(max_runs) + " runs: a smaller one may exist.");
    std::string others;
    for (const std::uint64_t s : other_seeds)
        others += (others.empty() ? "" : " and ") + std::to_string(s);
    if (!result.not_exact_reason.empty()) {
        line("Keeps seed " + std::to_string(seed) + ": the chance rules draw from it.");
    } else if (!result.seed_needed) {
        line("No seed needed: it fails the same way with seeds " + others + " too.");
    } else {
        line("Keeps seed " + std::to_string(seed) + ": with seed " + others + " it does not fail the same way (" +
             (has_jitter(result.reproducer) ? std::string("its link jitter is drawn from the seed")
                                   : std::string("something drawn from the seed, such as an app's own jitter, "
                                                 "is part of the failure")) +
             ").");
    }
    return text;
}

}  // namespace

std::vector<std::string> failure_signature(const ScenarioReport& report) {
    std::set<std::string> statements;
    for (const ExpectationFailure& failure : report.failures) {
        std::string text = failure.expectation;
        for (const std::string_view counted : {" frames-verified ", " bytes-received "}) {
            const std::size_t at = text.find(counted);
            if (at != std::string::npos)
                text.resize(at + counted.size() - 1);
        }
        statements.insert(std::move(text));
    }
    return {statements.begin(), statements.end()};
}

Scenario exact_faults(const Scenario& scenario, std::uint64_t seed, const FaultLog& log) {
    EAGAIN_ASSERT(log.complete());
    Scenario out = scenario;
    out.seed = seed;
    out.syscall_faults.clear();
    out.net_faults.clear();

    // (host, the host's rule index) -> statement index: the runner adds each
    // host's rules in statement order.
    std::map<std::pair<std::string, std::size_t>, std::size_t> statement_of_rule;
    std::map<std::string, std::size_t> rules_per_host;
    for (std::size_t i = 0; i < scenario.syscall_faults.size(); ++i) {
        const std::string& host = scenario.syscall_faults[i].host;
        statement_of_rule[{host, rules_per_host[host]++}] = i;
    }
    std::vector<std::vector<std::uint64_t>> fired(scenario.syscall_faults.size());
    for (const InjectedFault& fault : log.injected) {
        const auto statement = statement_of_rule.find({fault.host, fault.event.rule_index});
        EAGAIN_ASSERT(statement != statement_of_rule.end());
        fired[statement->second].push_back(fault.event.call_number);
    }
    for (std::size_t i = 0; i < scenario.syscall_faults.size(); ++i) {
        const SyscallFaultSpec& spec = scenario.syscall_faults[i];
        if (spec.rule.when != CallSelector::with_probability) {
            out.syscall_faults.push_back(spec);
            continue;
        }
        // A rule's own call numbers only rise.
        EAGAIN_ASSERT(std::is_sorted(fired[i].begin(), fired[i].end()));
        for (std::vector<std::uint64_t>& piece : in_pieces(fired[i])) {
            SyscallFaultSpec exact = spec;
            exact.rule.when = CallSelector::call_list;
            exact.rule.chance_numerator = FaultRule{}.chance_numerator;
            exact.rule.chance_denominator = FaultRule{}.chance_denominator;
            exact.rule.max_hits.reset();  // the list holds only the hits
            exact.rule.call_list = std::move(piece);
            out.syscall_faults.push_back(std::move(exact));
        }
    }

    std::vector<std::vector<std::uint64_t>> held(scenario.net_faults.size());
    for (const HeldSegment& segment : log.held_segments)
        held.at(segment.net_fault).push_back(segment.segment);
    for (std::size_t i = 0; i < scenario.net_faults.size(); ++i) {
        const NetFaultSpec& spec = scenario.net_faults[i];
        const auto* reorder = std::get_if<sim::ReorderFault>(&spec.fault);
        if (reorder == nullptr || !reorder->held_segments.empty()) {
            out.net_faults.push_back(spec);
            continue;
        }
        for (std::vector<std::uint64_t>& piece : in_pieces(held[i])) {
            sim::ReorderFault exact = *reorder;
            exact.numerator = sim::ReorderFault{}.numerator;
            exact.denominator = sim::ReorderFault{}.denominator;
            exact.held_segments = std::move(piece);
            out.net_faults.push_back(NetFaultSpec{exact, spec.where});
        }
    }
    return out;
}

std::string exact_form_problem(const Scenario& scenario, const FaultLog& log) {
    const auto count = [](std::uint64_t n) { return std::to_string(n); };
    if (!log.complete())
        return count(log.injected_total) + " syscall faults injected and " + count(log.held_total) +
               " segments held back: more than the " + count(log.capacity) +
               " of each that a run's fault log keeps to list one by one";
    const Scenario exact = exact_faults(scenario, scenario.seed, log);
    std::map<std::string, std::size_t> statements_per_host;
    for (const SyscallFaultSpec& fault : exact.syscall_faults) {
        if (format_syscall_fault(fault).size() > max_line_bytes)
            return "a fault statement on host " + fault.host + " would be longer than " + count(max_line_bytes) +
                   " bytes";
        ++statements_per_host[fault.host];
    }
    for (const auto& [host, statements] : statements_per_host) {
        if (statements > max_fault_rules_per_host)
            return count(log.injected_total) + " syscall faults were injected; listed call by call they take " +
                   count(statements) + " fault statements on host " + host + " (at most " +
                   count(max_fault_rules_per_host) + " per host)";
    }
    if (exact.net_faults.size() > FaultySys::max_rules)
        return count(log.held_total) + " segments were held back; listed one by one they take " +
               count(exact.net_faults.size()) + " net statements (at most " + count(FaultySys::max_rules) + " here)";
    for (const NetFaultSpec& fault : exact.net_faults) {
        if (format_net_fault(fault.fault).size() > max_line_bytes)
            return "a net statement would be longer than " + count(max_line_bytes) + " bytes";
    }
    return {};
}

bool same_faults(const FaultLog& a, const FaultLog& b) {
    const auto same_injected = [](InjectedFault x, InjectedFault y) {
        x.event.rule_index = 0;
        y.event.rule_index = 0;
        return x == y;
    };
    const auto same_held = [](const HeldSegment& x, const HeldSegment& y) {
        return x.segment == y.segment && x.at == y.at;
    };
    return a.complete() && b.complete() &&
           std::equal(a.injected.begin(), a.injected.end(), b.injected.begin(), b.injected.end(), same_injected) &&
           std::equal(a.held_segments.begin(), a.held_segments.end(), b.held_segments.begin(), b.held_segments.end(),
                      same_held);
}

std::string reproducer_file_name(std::string_view scenario_file, std::uint64_t seed) {
    std::string stem = std::filesystem::path(scenario_file).stem().string();
    if (stem.empty())
        stem = "scenario";
    return stem + ".seed" + std::to_string(seed) + ".repro.scn";
}

namespace {

// Step 3 on base (its faults, then link jitter, then the workload, then
// the faults again): the faults of base kept; base loses its jitter and
// its workload shrinks as far as the failure allows.
std::vector<Unit> minimise(Scenario& base, Oracle& oracle, ExploreResult& result) {
    std::vector<Unit> kept = units_of(base);
    const auto fails_with = [&](const std::vector<Unit>& units) { return oracle.fails_same(with_units(base, units)); };
    kept = ddmin(std::move(kept), fails_with);
    if (has_jitter(base)) {
        const Scenario still = without_jitter(base);
        if (oracle.fails_same(with_units(still, kept)))
            base = still;
        else
            result.jitter_needed = !oracle.exhausted();
    }
    for (std::size_t a = 0; a < base.apps.size(); ++a) {
        for (const WorkloadKey& key : workload_keys) {
            const auto written = base.apps[a].options.find(std::string(key.key));
            if (written == base.apps[a].options.end())
                continue;
            const std::optional<std::uint64_t> original = read_value(key, written->second);
            std::uint64_t value = original.value_or(0);
            while (value > 1) {
                const Scenario smaller = with_workload(base, a, key, value, value / 2);
                if (!oracle.fails_same(with_units(smaller, kept)))
                    break;
                base = smaller;
                value /= 2;
            }
            if (original && value != *original)
                result.workload_changes.push_back(base.apps[a].name + " " + std::string(key.key) + " " +
                                                  std::to_string(*original) + " -> " + std::to_string(value));
        }
    }
    if (kept.size() > 1)
        kept = ddmin(std::move(kept), fails_with);
    return kept;
}

}  // namespace

ExploreResult explore(const Scenario& scenario, const ExploreOptions& options) {
    ExploreResult result;
    if (options.seeds.first > options.seeds.last) {
        result.error = "bad seed range";
        return result;
    }
    if (options.max_runs < 2 + reserved_runs) {
        result.error = "max_runs must be at least " + std::to_string(2 + reserved_runs);
        return result;
    }
    ScenarioRunOptions run;
    run.apps = options.run.apps;
    // Bounded (FaultLog::capacity): memory does not grow with the faults.
    FaultLog failing_log;
    run.fault_log = &failing_log;

    // 1. The first failing seed.
    ScenarioReport failing;
    for (std::uint64_t seed = options.seeds.first;; ++seed) {
        run.seed = seed;
        ScenarioReport report = run_scenario(scenario, run);
        ++result.seeds_run;
        if (!report.setup_error.empty()) {
            result.error = "seed " + std::to_string(seed) + ": " + report.setup_error;
            return result;
        }
        if (options.progress)
            options.progress(seed, report.passed);
        if (!report.passed) {
            result.failing_seed = seed;
            failing = std::move(report);
            break;
        }
        if (seed == options.seeds.last)
            return result;
    }
    const std::uint64_t seed = *result.failing_seed;
    result.failure = failure_signature(failing);
    Oracle oracle(options.run, result.failure, options.max_runs - reserved_runs);

    // 2. Exact faults, checked to be the same faults and the same failure.
    //    Too many to list: minimise the chance form with this seed first
    //    (fewer rules, a smaller workload, so fewer faults), then try again.
    Scenario source = scenario;
    source.seed = seed;
    FaultLog log;
    const std::string too_many = exact_form_problem(source, failing_log);
    if (!too_many.empty()) {
        const std::vector<Unit> kept = minimise(source, oracle, result);
        source = with_units(source, kept);
        if (!oracle.fails_same(source, &log)) {
            result.error = "the chance form minimised for seed " + std::to_string(seed) +
                           (oracle.exhausted() ? " could not be checked within --max-runs"
                                               : " did not fail the same way again (a determinism bug in eagain)");
            return result;
        }
        failing_log = log;
        result.exact_at_first_problem = "seed " + std::to_string(seed) + ": " + too_many;
        result.not_exact_reason = exact_form_problem(source, failing_log);
        if (!result.not_exact_reason.empty()) {
            result.not_exact_reason =
                "minimised with seed " + std::to_string(seed) + ", still " + result.not_exact_reason;
            result.faults_before = failing.faults_injected + failing.segments_held;
            result.faults_after = failing_log.injected_total + failing_log.held_total;
        }
    }
    Scenario minimal;
    if (result.not_exact_reason.empty()) {
        result.exact = exact_faults(source, seed, failing_log);
        const bool exact_fails = oracle.fails_same(result.exact, &log);
        if (!oracle.last().setup_error.empty()) {
            result.error =
                "the exact form of seed " + std::to_string(seed) + " does not run: " + oracle.last().setup_error;
            return result;
        }
        if (!exact_fails || !same_faults(log, failing_log)) {
            result.error = "the exact faults of seed " + std::to_string(seed) +
                           (exact_fails ? " were not injected the same way" : " did not fail the same way") +
                           " (a determinism bug in eagain)";
            return result;
        }

        // 3. Minimising.
        Scenario base = result.exact;
        result.faults_before = units_of(base).size();
        const std::vector<Unit> kept = minimise(base, oracle, result);
        result.faults_after = kept.size();
        minimal = with_units(base, kept);
    } else {
        result.exact = source;  // no exact form: the minimised chance form
        minimal = source;
    }
    result.budget_exhausted = oracle.exhausted();

    // 4. The seed: two others, 1 (no seed statement) first. Chance rules
    //    need theirs.
    oracle.extend(reserved_runs);
    std::vector<std::uint64_t> other_seeds;
    for (const std::uint64_t candidate : {std::uint64_t{1}, seed + 1, seed + 2}) {
        if (candidate != seed && other_seeds.size() < 2)
            other_seeds.push_back(candidate);
    }
    result.seed_needed = !result.not_exact_reason.empty();
    for (const std::uint64_t other : other_seeds) {
        if (result.seed_needed)
            break;
        Scenario reseeded = minimal;
        reseeded.seed = other;
        if (!oracle.fails_same(reseeded)) {
            result.seed_needed = true;
            other_seeds = {other};
        }
    }
    minimal.seed = result.seed_needed ? seed : 1;

    // 5. The file, read back and run.
    result.reproducer = minimal;
    const std::string body = format_scenario(minimal);
    ParseResult reread = parse_scenario(body, "reproducer");
    if (!reread.ok()) {
        result.error = "the reproducer does not parse: " + reread.errors.front();
        return result;
    }
    if (!oracle.fails_same(reread.scenario)) {
        result.error = "the reproducer as written does not fail the same way (a bug in eagain explore)";
        return result;
    }
    result.runs = oracle.runs();
    for (const ExpectationFailure& failure : oracle.last().failures)
        result.explanations.push_back(one_line(failure.expectation + ": " + failure.happened));
    result.reproducer_text = header(result, scenario, seed, other_seeds, options.max_runs) + body;
    return result;
}

}  // namespace eagain::harness
