// `eagain verify`'s engine (harness/verify.h): one run of a check, its
// oracles and verdict, the suite, the report.
#include "harness/verify.h"

#include "harness/target_process.h"
#include "harness/verify_peer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace eagain::harness::verify {

std::string_view to_string(Verdict verdict) noexcept {
    switch (verdict) {
        case Verdict::pass: return "pass";
        case Verdict::fail: return "fail";
        case Verdict::inconclusive: return "inconclusive";
    }
    return "?";
}

std::string_view to_string(ProblemKind kind) noexcept {
    switch (kind) {
        case ProblemKind::none: return "-";
        case ProblemKind::data_loss: return "data-loss";
        case ProblemKind::data_corruption: return "data-corruption";
        case ProblemKind::stall: return "stall";
        case ProblemKind::missing_eof: return "missing-eof";
        case ProblemKind::connection_dropped: return "connection-dropped";
        case ProblemKind::crash: return "crash";
        case ProblemKind::killed_by_sigpipe: return "killed-by-sigpipe";
        case ProblemKind::exited: return "exited";
        case ProblemKind::busy_loop: return "busy-loop";
        case ProblemKind::starvation: return "starvation";
        case ProblemKind::fd_leak: return "fd-leak";
        case ProblemKind::accepted_hostile_length: return "accepted-hostile-length";
    }
    return "?";
}

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// A problem an oracle found: its kind and the evidence.
struct Finding {
    ProblemKind kind = ProblemKind::none;
    std::string evidence;
};

// What the shim wrote (EAGAIN_PRELOAD_LOG).
struct ShimLog {
    bool loaded = false;
    std::uint64_t tcp_fds = 0;
    std::vector<std::string> faults;
    std::uint64_t sigpipes = 0;
};

ShimLog read_shim_log(const std::string& path) {
    ShimLog log;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        const nlohmann::json entry = nlohmann::json::parse(line, nullptr, false);
        if (!entry.is_object())
            continue;
        const std::string event = entry.value("event", "");
        if (event == "loaded")
            log.loaded = true;
        else if (event == "tcp-fd")
            ++log.tcp_fds;
        else if (event == "sigpipe")
            ++log.sigpipes;
        else if (event == "fault")
            log.faults.push_back(entry.value("call", "?") + " #" + std::to_string(entry.value("call_number", 0)) +
                                 " on fd " + std::to_string(entry.value("fd", -1)) + ": " + entry.value("fault", "?"));
    }
    return log;
}

std::string percent(double fraction) { return std::to_string(static_cast<int>(fraction * 100 + 0.5)) + "%"; }

// echo-intact for one client: the first thing wrong with what came back.
std::optional<Finding> judge_echo(const EchoOutcome& e) {
    const std::string who = e.name + ": ";
    if (e.connect_failed)
        return Finding{ProblemKind::connection_dropped, who + "connect failed: " + errno_name(e.error)};
    if (!e.mismatch.empty())
        return Finding{e.mismatch_is_loss ? ProblemKind::data_loss : ProblemKind::data_corruption, who + e.mismatch};
    const std::string progress = std::to_string(e.received_bytes) + " of " + std::to_string(e.expected_bytes) +
                                 " bytes came back";
    if (e.received_bytes < e.expected_bytes && (e.eof || e.error != 0)) {
        const std::string how = e.eof ? "closed the connection (FIN)" : "ended the connection (" + errno_name(e.error) + ")";
        // Everything had been sent: the target had the bytes and ended the
        // stream without them. Still sending: it dropped the connection.
        if (e.sent_bytes == e.expected_bytes)
            return Finding{ProblemKind::data_loss, who + "all " + std::to_string(e.sent_bytes) +
                                                       " bytes were sent, and the target " + how + " when " + progress};
        return Finding{ProblemKind::connection_dropped, who + "the target " + how + " when " + progress + ", with " +
                                                            std::to_string(e.sent_bytes) + " sent"};
    }
    if (e.received_bytes < e.expected_bytes)
        return Finding{ProblemKind::stall, who + "only " + progress + ", then nothing for " +
                                               std::to_string(quiet_limit.count() / 1'000'000'000) + " s (" +
                                               std::to_string(e.sent_bytes) + " sent)"};
    if (!e.eof)
        return Finding{e.error != 0 ? ProblemKind::connection_dropped : ProblemKind::missing_eof,
                       who + "all " + std::to_string(e.expected_bytes) + " bytes came back, then " +
                           (e.error != 0 ? errno_name(e.error) + " instead of a FIN"
                                         : "no FIN within " + std::to_string(eof_wait.count() / 1'000'000'000) +
                                               " s of our half-close")};
    return std::nullopt;
}

struct RunContext {
    const Check& check;
    TargetProcess& target;
    const PeerReport& peer;
    const PeerContext& peer_context;
    int baseline_fds = -1;
};

std::optional<Finding> judge_alive(TargetProcess& target) {
    const std::optional<ExitStatus> ended = target.poll_exit();
    if (!ended)
        return std::nullopt;
    std::string evidence = "the target " + ended->describe() + " during the check";
    const std::string tail = target.stderr_tail(160);
    if (!tail.empty())
        evidence += " (stderr: " + tail + ")";
    if (ended->signalled)
        return Finding{ended->code == SIGPIPE ? ProblemKind::killed_by_sigpipe : ProblemKind::crash, evidence};
    return Finding{ProblemKind::exited, evidence};
}

std::optional<Finding> judge_fd_baseline(RunContext& r) {
    if (r.baseline_fds < 0)
        return std::nullopt;
    int now = r.target.open_fds();
    const Nanos until = monotonic_now() + std::chrono::seconds{3};
    while (now > r.baseline_fds && monotonic_now() < until && !r.target.poll_exit()) {
        sleep_for(milliseconds{50});
        now = r.target.open_fds();
    }
    if (now <= r.baseline_fds || now < 0)
        return std::nullopt;
    return Finding{ProblemKind::fd_leak, std::to_string(now) + " fds open 3 s after every client closed, " +
                                             std::to_string(r.baseline_fds) + " before the first"};
}

std::optional<Finding> judge(Oracle oracle, RunContext& r) {
    const PeerReport& p = r.peer;
    switch (oracle) {
        case Oracle::alive: return judge_alive(r.target);
        case Oracle::echo_intact:
            for (const EchoOutcome& e : p.echoes)
                if (std::optional<Finding> f = judge_echo(e)) {
                    if (const std::string blocked = r.target.blocked_calls(); !blocked.empty())
                        f->evidence += "; the target is stuck: " + blocked;
                    return f;
                }
            return std::nullopt;
        case Oracle::idle_cpu:
            if (p.cpu && p.cpu->fraction > 0.3)
                return Finding{ProblemKind::busy_loop, "the target used " + percent(p.cpu->fraction) + " of a CPU (" +
                                                           std::to_string(p.cpu->ticks) + " ticks in " +
                                                           std::to_string(p.cpu->window.count() / 1'000'000) +
                                                           " ms) during " + p.cpu->during};
            return std::nullopt;
        case Oracle::second_client_served:
            if (p.second_client && judge_echo(*p.second_client))
                return Finding{ProblemKind::starvation,
                               "while the first client stalled, a second client's 4096-byte echo was not done within " +
                                   std::to_string(second_client_bound.count() / 1'000'000) + " ms (" +
                                   std::to_string(p.second_client->received_bytes) + " bytes back)"};
            return std::nullopt;
        case Oracle::served_after: {
            const EchoOutcome fresh = run_fresh_client(r.peer_context, 4096, std::chrono::seconds{5});
            if (std::optional<Finding> f = judge_echo(fresh)) {
                f->evidence = "after the peer was done, " + f->evidence;
                return f;
            }
            return std::nullopt;
        }
        case Oracle::fd_baseline: return judge_fd_baseline(r);
        case Oracle::hostile_closed:
            for (const HostileOutcome& h : p.hostile)
                if (!h.closed)
                    return Finding{ProblemKind::accepted_hostile_length,
                                   "a header with length field " + h.length + ": " + h.how};
            return std::nullopt;
    }
    return std::nullopt;
}

std::string make_run_directory(const VerifyOptions& options, const Check& check, std::uint64_t run) {
    if (!options.keep.empty()) {
        const fs::path dir = fs::path(options.keep) / check.name / ("run-" + std::to_string(run));
        std::error_code ignored;
        fs::create_directories(dir, ignored);
        return dir.string();
    }
    std::string pattern = (fs::temp_directory_path() / "eagain-verify-XXXXXX").string();
    return ::mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
}

// Fails the run when eagain cannot stand behind a verdict.
std::optional<std::string> doubt(const Check& check, const ShimLog& shim) {
    if (!shim.loaded)
        return "the preload shim did not load in the target (a static or setuid binary?), so no fault reached it";
    if (shim.tcp_fds == 0)
        return "the shim saw none of the target's socket calls (static linking, raw syscalls or io_uring?)";
    if (!check.rules.empty() && shim.faults.empty())
        return "no fault rule fired: the target made none of the calls the rules name";
    return std::nullopt;
}

struct RunOutcome {
    Verdict verdict = Verdict::inconclusive;
    Finding finding;
    std::vector<std::string> faults;
    bool usage_error = false;
};

RunOutcome run_once(const Check& check, const VerifyOptions& options, const std::string& dir) {
    RunOutcome out;
    {
        std::ofstream(dir + "/faults") << fault_file_text(check);
    }
    const std::uint16_t port = free_loopback_port();
    std::string command = options.target;
    for (std::size_t at = command.find("{port}"); at != std::string::npos; at = command.find("{port}"))
        command.replace(at, 6, std::to_string(port));
    const char* existing = std::getenv("LD_PRELOAD");
    const std::string runtime = options.preload_runtime.empty() ? "" : options.preload_runtime + ":";
    TargetOptions target_options{command, port,
                                 {{"LD_PRELOAD", runtime + options.preload + (existing ? std::string(":") + existing : "")},
                                  {"EAGAIN_FAULTS", dir + "/faults"},
                                  {"EAGAIN_PRELOAD_LOG", dir + "/shim.log"},
                                  {"EAGAIN_SEED", std::to_string(options.seed)}},
                                 dir};
    if (!runtime.empty())
        target_options.environment.push_back({"ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0"});
    std::string error;
    std::optional<TargetProcess> target = TargetProcess::start(target_options, &error);
    if (target)
        if (std::optional<std::string> problem = target->wait_listening(options.startup_timeout))
            error = *problem;
    if (!error.empty()) {
        out.usage_error = target && target->poll_exit() && target->poll_exit()->code == 125;
        out.finding.evidence = error;
        return out;
    }
    sleep_for(milliseconds{50});
    const PeerContext peer_context{port, options.protocol, options.spec, [&] { return target->cpu_ticks(); }};
    const int baseline = target->open_fds();
    const PeerReport peer = run_peer(check, peer_context);
    RunContext context{check, *target, peer, peer_context, baseline};
    std::vector<Oracle> order = check.oracles;  // a death explains everything after it: alive first
    std::stable_partition(order.begin(), order.end(), [](Oracle o) { return o == Oracle::alive; });
    std::optional<Finding> finding;
    for (Oracle oracle : order)
        if (!finding)
            finding = judge(oracle, context);
    // A target that dies of what the peer did may still be exiting when the
    // peer is done; its death, not the broken echo after it, is the finding.
    if (finding && finding->kind != ProblemKind::crash && finding->kind != ProblemKind::killed_by_sigpipe &&
        finding->kind != ProblemKind::exited && std::count(order.begin(), order.end(), Oracle::alive) > 0) {
        sleep_for(milliseconds{300});
        if (std::optional<Finding> death = judge_alive(*target))
            finding = death;
    }
    target->stop(milliseconds{2000});
    const ShimLog shim = read_shim_log(dir + "/shim.log");
    out.faults = shim.faults;
    if (!peer.problem.empty()) {
        out.finding.evidence = "the peer could not run: " + peer.problem;
    } else if (finding) {
        out.verdict = Verdict::fail;
        out.finding = *finding;
        if (const std::optional<std::string> why = doubt(check, shim); why && !shim.loaded)
            out.finding.evidence += " (" + *why + ")";
    } else if (const std::optional<std::string> why = doubt(check, shim)) {
        out.finding.evidence = *why;
    } else {
        out.verdict = Verdict::pass;
    }
    return out;
}

std::string shell_quote(const std::string& word) {
    const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-_./=:,+").find(c) != std::string_view::npos;
    });
    if (plain)
        return word;
    std::string quoted = "'";
    for (char c : word)
        quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

}  // namespace

std::string replay_command(const Check& check, const VerifyOptions& options) {
    std::string command = "eagain verify --target " + shell_quote(options.target) + " --protocol " +
                          std::string(to_string(options.protocol));
    if (!options.frame_spec_option.empty())
        command += " --frame-spec " + shell_quote(options.frame_spec_option);
    if (!options.suite.empty())
        command += " --suite " + shell_quote(options.suite);
    if (options.seed != 1)
        command += " --seed " + std::to_string(options.seed);
    return command + " --checks " + check.name;
}

CheckResult run_check(const Check& check, const VerifyOptions& options,
                      const std::function<void(std::uint64_t run)>& progress) {
    CheckResult result;
    result.name = check.name;
    result.file = check.file;
    result.replay = replay_command(check, options);
    for (std::uint64_t run = 1; run <= options.runs; ++run) {
        if (progress)
            progress(run);
        const std::string dir = make_run_directory(options, check, run);
        if (dir.empty()) {
            result.evidence = "cannot make a directory for the run";
            return result;
        }
        RunOutcome outcome = run_once(check, options, dir);
        if (options.keep.empty()) {
            std::error_code ignored;
            fs::remove_all(dir, ignored);
        }
        result.runs = run;
        result.verdict = outcome.verdict;
        result.kind = outcome.finding.kind;
        result.evidence = outcome.finding.evidence;
        result.faults = std::move(outcome.faults);
        result.usage_error = outcome.usage_error;
        if (options.runs > 1 && outcome.verdict != Verdict::pass)
            result.evidence = "run " + std::to_string(run) + " of " + std::to_string(options.runs) + ": " +
                              result.evidence;
        if (outcome.verdict != Verdict::pass)
            return result;
    }
    return result;
}

std::vector<Check> load_suite(const std::string& path, std::vector<std::string>* errors) {
    std::vector<std::string> files;
    std::error_code error;
    if (fs::is_directory(path, error)) {
        for (auto it = fs::recursive_directory_iterator(path, error); !error && it != fs::recursive_directory_iterator();
             it.increment(error))
            if (it->path().extension() == ".verify" && it->is_regular_file(error))
                files.push_back(it->path().string());
        std::sort(files.begin(), files.end());
    } else {
        files.push_back(path);
    }
    if (files.empty())
        errors->push_back(path + ": no .verify file here");
    std::vector<Check> checks;
    for (const std::string& file : files) {
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            errors->push_back(file + ": cannot be read");
            continue;
        }
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (text.size() > max_file_bytes) {
            errors->push_back(file + ": over 1 MiB; a check is a page of text");
            continue;
        }
        CheckParse parsed = parse_check(text, file);
        errors->insert(errors->end(), parsed.errors.begin(), parsed.errors.end());
        if (parsed.ok())
            checks.push_back(std::move(parsed.check));
    }
    for (std::size_t i = 0; i < checks.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (checks[i].name == checks[j].name)
                errors->push_back(checks[i].file + ":1:1: expected a check name of its own, found '" + checks[i].name +
                                  "' (also " + checks[j].file + ")");
    return checks;
}

std::string report_json(const VerifyOptions& options, const std::vector<CheckResult>& results) {
    nlohmann::ordered_json report;
    report["target"] = options.target;
    report["protocol"] = std::string(to_string(options.protocol));
    report["checks"] = nlohmann::ordered_json::array();
    for (const CheckResult& r : results)
        report["checks"].push_back({{"name", r.name},
                                    {"verdict", std::string(to_string(r.verdict))},
                                    {"kind", r.kind == ProblemKind::none ? "" : std::string(to_string(r.kind))},
                                    {"evidence", r.evidence},
                                    {"faults", r.faults},
                                    {"replay", r.replay},
                                    {"runs", r.runs},
                                    {"file", r.file}});
    return report.dump(2) + "\n";
}

std::string report_table(const std::vector<CheckResult>& results) {
    std::size_t name_width = 5;
    for (const CheckResult& r : results)
        name_width = std::max(name_width, r.name.size());
    std::ostringstream out;
    const auto row = [&](std::string_view name, std::string_view verdict, std::string_view kind) {
        out << name << std::string(name_width + 2 - name.size(), ' ') << verdict
            << std::string(14 - std::min<std::size_t>(13, verdict.size()), ' ') << kind
            << std::string(25 - std::min<std::size_t>(24, kind.size()), ' ');
    };
    row("check", "verdict", "kind");
    out << "evidence\n";
    for (const CheckResult& r : results) {
        row(r.name, to_string(r.verdict), to_string(r.kind));
        out << (r.evidence.empty() ? "-" : r.evidence) << "\n";
        if (r.verdict != Verdict::pass) {
            for (std::size_t i = 0; i < std::min<std::size_t>(3, r.faults.size()); ++i)
                out << std::string(name_width + 2, ' ') << "  injected: " << r.faults[i] << "\n";
            if (r.faults.size() > 3)
                out << std::string(name_width + 2, ' ') << "  ... and " << r.faults.size() - 3 << " more faults\n";
            out << std::string(name_width + 2, ' ') << "  replay: " << r.replay << "\n";
        }
    }
    return out.str();
}

std::optional<FrameSpec> parse_frame_spec(std::string_view text, std::string* error) {
    FrameSpec spec;
    spec.max_frame_bytes = spec.header_bytes + (1U << 20);
    std::uint64_t max_body = 1U << 20;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        const std::string_view item = text.substr(start, comma - start);
        start = comma + 1;
        const std::size_t eq = item.find('=');
        const std::string_view key = item.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        const std::optional<std::uint64_t> n = parse_size(value);
        if (key == "signed" || key == "unsigned")
            spec.length_signed = key == "signed";
        else if (key == "order" && (value == "big" || value == "little"))
            spec.length_byte_order = value == "big" ? ByteOrder::big_endian : ByteOrder::little_endian;
        else if (key == "header" && n)
            spec.header_bytes = *n;
        else if (key == "offset" && n)
            spec.length_offset_bytes = *n;
        else if (key == "width" && n)
            spec.length_width_bytes = *n;
        else if (key == "max-body" && n)
            max_body = *n;
        else if (key == "adjust" && !value.empty()) {
            char* end = nullptr;
            const std::string v(value);
            spec.length_adjustment_bytes = std::strtoll(v.c_str(), &end, 10);
            if (*end != '\0') {
                *error = "adjust takes a whole number, found '" + v + "'";
                return std::nullopt;
            }
        } else {
            *error = "expected header=N, offset=N, width=1|2|4|8, order=big|little, signed, unsigned, adjust=N or "
                     "max-body=N, found '" + std::string(item) + "'";
            return std::nullopt;
        }
    }
    spec.max_frame_bytes = spec.header_bytes + max_body;
    if (const SpecError e = validate(spec); e != SpecError::none) {
        *error = std::string(to_string(e));
        return std::nullopt;
    }
    return spec;
}

}  // namespace eagain::harness::verify
