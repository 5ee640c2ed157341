// `eagain verify` (docs/verify.md): the command line over harness/verify.h.
//
//   eagain verify --target 'CMD {port}' --protocol bytes|frames
//                 [--checks a,b] [--runs N] [--report out.json] [--keep DIR]
//                 [--suite DIR] [--frame-spec SPEC] [--max-frame N]
//                 [--preload PATH] [--seed N] [--list]
//
// Exit 0 when every check passed, 1 when any failed, 2 on bad usage (and
// when the shim refused the fault rules), 3 when none failed but some were
// inconclusive. A progress line on stderr when it is a terminal.
#include "tools/verify_command.h"

#include "harness/scenario.h"
#include "harness/verify.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#ifndef EAGAIN_DEFAULT_SUITE
#define EAGAIN_DEFAULT_SUITE "scenarios/verify"
#endif
#ifndef EAGAIN_DEFAULT_PRELOAD
#define EAGAIN_DEFAULT_PRELOAD "libeagain-preload.so"
#endif

namespace eagain::tools {

using namespace eagain::harness::verify;

CLI::App* add_verify_command(CLI::App& app, VerifyArguments& a) {
    CLI::App* cmd = app.add_subcommand("verify", "judge an unmodified program's edge-case handling on the real kernel");
    cmd->add_option("--target", a.target, "the program, as shell words; {port} is replaced by a free loopback port");
    cmd->add_option("--protocol", a.protocol, "what it speaks: bytes (an echo) or frames (a length-field frame echo)")
        ->check(CLI::IsMember({"bytes", "frames"}));
    cmd->add_option("--checks", a.checks, "only these checks (comma-separated names)")->delimiter(',');
    cmd->add_option("--runs", a.runs, "runs per check; a check passes only if every run does")
        ->check(CLI::Range(1, 1000));
    cmd->add_option("--report", a.report, "write the verdicts as JSON to this file");
    cmd->add_option("--keep", a.keep, "keep each run's files (faults, shim log, target stdout/stderr) below DIR");
    cmd->add_option("--suite", a.suite, "the checks: a .verify file or a directory of them (default: the built-in suite)");
    cmd->add_option("--frame-spec", a.frame_spec, "frames: header=20,offset=8,width=4,order=big,signed,adjust=0");
    cmd->add_option("--max-frame", a.max_frame, "frames: the largest body the target accepts (default 1 MiB)");
    cmd->add_option("--preload", a.preload, "the shim (default: the one built beside this eagain)");
    cmd->add_option("--seed", a.seed, "seed of the shim's chance rules (default 1)");
    cmd->add_flag("--list", a.list, "list the checks and what they do, and exit");
    return cmd;
}

namespace {

int list_checks(const std::vector<Check>& checks) {
    for (const Check& c : checks)
        std::printf("%-24s %-7s %s\n", c.name.c_str(),
                    c.protocol ? std::string(to_string(*c.protocol)).c_str() : "any", c.about.c_str());
    return 0;
}

// The checks to run: the suite's that apply to the protocol, narrowed by
// --checks (an unknown name is a usage error).
std::optional<std::vector<Check>> select_checks(const std::vector<Check>& suite, const VerifyArguments& a,
                                                Protocol protocol) {
    std::set<std::string> wanted(a.checks.begin(), a.checks.end());
    for (const std::string& name : wanted)
        if (std::none_of(suite.begin(), suite.end(), [&](const Check& c) { return c.name == name; })) {
            std::fprintf(stderr, "--checks: no check named '%s' (eagain verify --list shows them)\n", name.c_str());
            return std::nullopt;
        }
    std::vector<Check> chosen;
    for (const Check& c : suite)
        if ((wanted.empty() || wanted.count(c.name) != 0) && c.applies_to(protocol))
            chosen.push_back(c);
    if (chosen.empty())
        std::fprintf(stderr, "no check applies to --protocol %s\n", std::string(to_string(protocol)).c_str());
    return chosen;
}

std::optional<VerifyOptions> options_from(const VerifyArguments& a) {
    VerifyOptions o;
    o.target = a.target;
    o.protocol = a.protocol == "frames" ? Protocol::frames : Protocol::bytes;
    o.frame_spec_option = a.frame_spec;
    if (!a.max_frame.empty())
        o.frame_spec_option += (o.frame_spec_option.empty() ? "" : ",") + std::string("max-body=") + a.max_frame;
    std::string error;
    const std::optional<FrameSpec> spec = parse_frame_spec(o.frame_spec_option, &error);
    if (!spec) {
        std::fprintf(stderr, "--frame-spec: %s\n", error.c_str());
        return std::nullopt;
    }
    o.spec = *spec;
    o.preload = a.preload.empty() ? EAGAIN_DEFAULT_PRELOAD : a.preload;
#ifdef EAGAIN_PRELOAD_RUNTIME
    if (a.preload.empty())
        o.preload_runtime = EAGAIN_PRELOAD_RUNTIME;
#endif
    if (::access(o.preload.c_str(), R_OK) != 0) {
        std::fprintf(stderr, "--preload: %s cannot be read (build the eagain-preload target, or name it)\n",
                     o.preload.c_str());
        return std::nullopt;
    }
    o.suite = a.suite;
    o.keep = a.keep;
    o.runs = a.runs;
    o.seed = a.seed;
    return o;
}

}  // namespace

int verify_command(const VerifyArguments& a) {
    std::vector<std::string> errors;
    const std::vector<Check> suite = load_suite(a.suite.empty() ? EAGAIN_DEFAULT_SUITE : a.suite, &errors);
    for (const std::string& e : errors)
        std::fprintf(stderr, "%s\n", e.c_str());
    if (!errors.empty())
        return 2;
    if (a.list)
        return list_checks(suite);
    if (a.target.empty() || a.protocol.empty()) {
        std::fprintf(stderr, "verify: --target and --protocol are required (eagain verify --help)\n");
        return 2;
    }
    if (a.target.find("{port}") == std::string::npos) {
        std::fprintf(stderr, "--target: expected {port} in the command, where the port it listens on goes\n");
        return 2;
    }
    const std::optional<VerifyOptions> options = options_from(a);
    if (!options)
        return 2;
    const std::optional<std::vector<Check>> checks = select_checks(suite, a, options->protocol);
    if (!checks || checks->empty())
        return 2;
    // What a target forks and leaves behind is reparented to eagain, which
    // reaps it when it ends the target's process group.
    (void)::prctl(PR_SET_CHILD_SUBREAPER, 1);
    const bool terminal = ::isatty(2) != 0;
    std::vector<CheckResult> results;
    for (std::size_t i = 0; i < checks->size(); ++i) {
        const Check& check = (*checks)[i];
        results.push_back(run_check(check, *options, [&](std::uint64_t run) {
            if (terminal)
                std::fprintf(stderr, "\r\033[K[%zu/%zu] %s run %llu/%llu", i + 1, checks->size(), check.name.c_str(),
                             static_cast<unsigned long long>(run), static_cast<unsigned long long>(options->runs));
        }));
        if (results.back().usage_error) {
            std::fprintf(stderr, "%s%s: the shim refused the fault rules: %s\n", terminal ? "\r\033[K" : "",
                         check.file.c_str(), results.back().evidence.c_str());
            return 2;
        }
    }
    if (terminal)
        std::fprintf(stderr, "\r\033[K");
    std::printf("verify %s  (%s, %zu checks)\n", options->target.c_str(),
                std::string(to_string(options->protocol)).c_str(), results.size());
    std::fputs(report_table(results).c_str(), stdout);
    const auto count = [&](Verdict v) {
        return std::count_if(results.begin(), results.end(), [&](const CheckResult& r) { return r.verdict == v; });
    };
    std::printf("%td passed, %td failed, %td inconclusive\n", count(Verdict::pass), count(Verdict::fail),
                count(Verdict::inconclusive));
    if (!a.report.empty()) {
        std::ofstream out(a.report, std::ios::binary | std::ios::trunc);
        out << report_json(*options, results);
        if (!out) {
            std::fprintf(stderr, "--report: cannot write %s\n", a.report.c_str());
            return 2;
        }
    }
    return count(Verdict::fail) > 0 ? 1 : count(Verdict::inconclusive) > 0 ? 3 : 0;
}

}  // namespace eagain::tools
