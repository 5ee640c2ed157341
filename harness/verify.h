// `eagain verify` (docs/verify.md): an unmodified program judged on the real
// kernel, one check of the suite at a time. For each check a fresh instance
// of the target is started with the preload shim (verify/preload.cpp) and
// the check's fault rules in its environment, the peer plays the check
// against it (harness/verify_peer.h), and the oracles turn what the peer and
// /proc saw into a verdict: pass, fail with the kind of problem and one
// line of evidence, or inconclusive with the reason eagain cannot stand
// behind either (the shim saw no socket call, no fault fired, the target
// never listened).
#pragma once

#include "core/frame.h"
#include "harness/verify_check.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::harness::verify {

enum class Verdict : std::uint8_t { pass, fail, inconclusive };
std::string_view to_string(Verdict verdict) noexcept;

// The kind of a failure (issue 13's list).
enum class ProblemKind : std::uint8_t {
    none,
    data_loss,
    data_corruption,
    stall,
    missing_eof,
    connection_dropped,
    crash,               // killed by a signal other than SIGPIPE
    killed_by_sigpipe,
    exited,
    busy_loop,
    starvation,
    fd_leak,
    accepted_hostile_length,
};
std::string_view to_string(ProblemKind kind) noexcept;

struct VerifyOptions {
    std::string target;  // the command, with {port}
    Protocol protocol = Protocol::bytes;
    FrameSpec spec;                 // frames: the length-field protocol
    std::string frame_spec_option;  // as given on the command line, for the replay command
    std::string preload;            // libeagain-preload.so
    // Loaded before the shim, with the sanitizer's leak check off in the
    // target (its leaks are not the shim's): libasan, when the shim was
    // built with ASan. Empty otherwise.
    std::string preload_runtime;
    std::string suite;              // as given (empty: the default), for the replay command
    std::string keep;               // keep each run's files below this directory; empty: a temporary one, removed
    std::uint64_t runs = 1;
    std::uint64_t seed = 1;
    Nanos startup_timeout = std::chrono::seconds{10};
};

struct CheckResult {
    std::string name;
    std::string file;
    Verdict verdict = Verdict::inconclusive;
    ProblemKind kind = ProblemKind::none;
    std::string evidence;             // one line
    std::vector<std::string> faults;  // what the shim injected ("send #2 on fd 5: short write 1 of 4096 bytes")
    std::string replay;               // the command that runs this check alone
    std::uint64_t runs = 0;           // runs made (a failing run ends them)
    bool usage_error = false;         // the shim refused the fault rules (exit 2)
};

// Reads every .verify file below path (a file or a directory, in name
// order); the parse errors, file:line:col, in *errors.
std::vector<Check> load_suite(const std::string& path, std::vector<std::string>* errors);

// Runs one check options.runs times (until one fails) against a fresh
// instance of the target each time. progress, if set, is told each run.
CheckResult run_check(const Check& check, const VerifyOptions& options,
                      const std::function<void(std::uint64_t run)>& progress = {});

// The replay command for one check.
std::string replay_command(const Check& check, const VerifyOptions& options);

// The report as JSON: {"target", "protocol", "checks": [{"name", "verdict",
// "kind", "evidence", "faults", "replay", "runs"}]}.
std::string report_json(const VerifyOptions& options, const std::vector<CheckResult>& results);
// The table the CLI prints: check, verdict, kind, evidence, replay.
std::string report_table(const std::vector<CheckResult>& results);

// "header=20,offset=8,width=4,order=big,signed,adjust=0,max-body=1048576"
// (any subset, over the default FrameSpec with a 1 MiB body); nullopt and
// *error on a mistake.
std::optional<FrameSpec> parse_frame_spec(std::string_view text, std::string* error);

}  // namespace eagain::harness::verify
