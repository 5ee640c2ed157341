// Scenario files (.scn): the parsed form of docs/scenario-language.md, and
// the parser. Parsing checks everything that can be checked without running:
// syntax, units, names declared before use, options known for each app
// kind, and fault rules FaultySys would accept. Each problem is reported as
// "file:line:col: expected ..., found ..."; the parser never throws,
// crashes or loops, whatever the input (it is a fuzz target).
#pragma once

#include "core/faulty_sys.h"
#include "core/sys.h"
#include "sim/options.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace eagain::harness {

struct SourceLocation {
    int line = 0;    // 1-based
    int column = 0;  // 1-based, of the statement's first word
};

struct HostSpec {
    std::string name;
    sim::HostOptions options;
    SourceLocation where;
};

struct LinkSpec {
    std::string a;
    std::string b;
    sim::LinkOptions link;
    SourceLocation where;
};

struct AppSpec {
    std::string host;
    std::string kind;  // frame-echo, byte-echo, frame-client, bulk-sender, ...
    std::string name;  // unique; defaults to the host's name
    // key -> value as written, each checked against the kind's table
    // (scenario.cpp) for a known key and a well-formed value.
    std::map<std::string, std::string> options;
    SourceLocation where;
};

struct SyscallFaultSpec {
    std::string host;
    FaultRule rule;
    SourceLocation where;
};

using NetFault =
    std::variant<sim::ResetFault, sim::ZeroWindowFault, sim::ReorderFault, sim::DelayFault, sim::PartitionFault>;
struct NetFaultSpec {
    NetFault fault;
    SourceLocation where;
};

struct ActionSpec {
    Nanos at{};
    std::string app;
    std::string action;  // stop-reading, resume-reading, stop, start, restart, close, send-hostile-length
    SourceLocation where;
};

struct ExpectSpec {
    std::string app;  // empty for the world-wide ones (no-fd-leak, no-sigpipe, done-by)
    std::string what;
    std::vector<std::string> arguments;  // as written, checked by kind
    SourceLocation where;
};

struct Scenario {
    std::string file;
    std::uint64_t seed = 1;
    sim::LinkOptions network;
    sim::TcpOptions tcp;
    std::vector<HostSpec> hosts;
    std::vector<LinkSpec> links;
    std::vector<AppSpec> apps;
    std::vector<SyscallFaultSpec> syscall_faults;
    std::vector<NetFaultSpec> net_faults;
    std::vector<ActionSpec> actions;
    std::vector<ExpectSpec> expectations;
};

struct ParseResult {
    Scenario scenario;
    // "file:line:col: expected ..., found ...", in line order; empty when
    // the scenario is valid. At most max_errors.
    std::vector<std::string> errors;
    // Problems found beyond the first max_errors (say "... and N more
    // problems").
    std::size_t errors_not_listed = 0;
    bool ok() const noexcept { return errors.empty(); }
};

// Problems listed; the rest are counted (ParseResult::errors_not_listed).
inline constexpr std::size_t max_errors = 20;

// --- limits ------------------------------------------------------------------
// Every limit the runner has, checked where the file is read, so a file
// that passes `eagain check` runs (docs/scenario-language.md, "Limits").
// Each is reported as "file:line:col: expected ..., found ...: too ...
// (at most N)".
//
// The file: a scenario is a page of text, not a data set.
inline constexpr std::size_t max_file_bytes = 1U << 20;
// Lines longer than this are an error, not a reason to allocate without bound.
inline constexpr std::size_t max_line_bytes = 4096;
// Every duration: 100 days of virtual time. A sum of a few of them (at D
// for D, heartbeat x dead-after) stays far from Nanos' 292 years.
inline constexpr Nanos max_duration = std::chrono::hours{2400};
// Every size and count that has no tighter limit below.
inline constexpr std::uint64_t max_number = 1ULL << 40;
inline constexpr std::size_t max_hosts = 256;
inline constexpr std::size_t max_apps = 1024;
inline constexpr std::size_t max_net_faults = 1024;
// What FaultySys::add_rule takes on one host.
inline constexpr std::size_t max_fault_rules_per_host = FaultySys::max_rules;
// A host's connecting sockets each take one ephemeral port (32768..65535:
// sim::HostOptions::first_ephemeral_port): `conns` over the client apps of
// one host.
inline constexpr std::uint64_t max_connections_per_host = 65536 - 32768;
// `conns` over every client app (one per idle-client, reconnecting-client and
// bulk-sender): each connection costs both ends about 9 KiB of memory and
// the run's time grows with their number.
inline constexpr std::uint64_t max_connections = 65536;
// `frames` over every frame-client and reconnecting-client: the client keeps
// one latency sample (8 bytes) per frame.
inline constexpr std::uint64_t max_frames = 1ULL << 24;
// conns x in-flight x (size + 20) over every frame-client, in-flight taken
// as at most a connection's share of its frames: the bytes of frames in
// flight at once, which both ends may buffer.
inline constexpr std::uint64_t max_in_flight_bytes = 256ULL << 20;
// A frame, its 20-byte header included: frame-echo's `max-frame` is 20 to
// this (the default), a frame-client's `size` (the body) at most this less
// the header.
inline constexpr std::uint64_t frame_header_bytes = 20;
inline constexpr std::uint64_t max_frame_bytes = 16ULL << 20;
// bulk-sender `chunk`, bulk-receiver `read-chunk`: bytes per call, 1 to this.
inline constexpr std::uint64_t max_chunk_bytes = 16ULL << 20;
// `backlog`: what listen(2) takes on Linux (somaxconn's own maximum).
inline constexpr std::uint64_t max_backlog = 65535;
// idle-client `dead-after`: intervals (heartbeat x dead-after must fit in
// virtual time).
inline constexpr std::uint64_t max_dead_after = 1000;
// tcp send-buffer / receive-buffer: Linux's smallest (sim::TcpOptions'
// min_send_buffer_bytes, min_receive_buffer_bytes) to 1 GiB.
inline constexpr std::uint64_t max_tcp_buffer_bytes = 1ULL << 30;
// tcp syn-retries: SYN retransmissions (each waits twice the one before).
inline constexpr std::uint64_t max_syn_retries = 20;
// tcp rto-min: 1ms to the model's rto_max (sim::TcpOptions, Linux's TCP_RTO_MAX).
inline constexpr Nanos min_rto = std::chrono::milliseconds{1};
inline constexpr Nanos max_rto_min = std::chrono::seconds{120};

// A UTF-8 byte order mark at the start is skipped. A scenario with no
// `expect` statement is an error (it would pass whatever happened).
ParseResult parse_scenario(std::string_view text, std::string_view file_name);

// A fault file (what the preload shim reads from EAGAIN_FAULTS): comments,
// blank lines and `fault target CALL SELECTOR [fd N] [times N] -> RESULT`
// statements only, the scenario's fault statement with the host word
// fault_file_host; any other statement is an error. Errors as
// parse_scenario's; rules in file order, empty unless there are no errors.
inline constexpr std::string_view fault_file_host = "target";
struct FaultFileResult {
    std::vector<FaultRule> rules;
    std::vector<std::string> errors;
    std::size_t errors_not_listed = 0;
    bool ok() const noexcept { return errors.empty(); }
};
FaultFileResult parse_fault_file(std::string_view text, std::string_view file_name);

// The scenario as text that parse_scenario reads back to the same Scenario
// (source locations and file name aside): one statement per line, in the
// order seed, network, tcp, host, link, app, fault, net, at, expect, with
// values left at their defaults not written (no seed line for seed 1). App
// options and expectation arguments are written as they were written;
// numbers, durations and sizes in their shortest form, so no statement is
// longer than the line it was read from (a line of max_line_bytes stays
// within the limit). No comments: a caller that wants some puts them in
// front.
std::string format_scenario(const Scenario& scenario);
// One statement each, as format_scenario writes it.
std::string format_syscall_fault(const SyscallFaultSpec& fault);
std::string format_net_fault(const NetFault& fault);
std::string format_expectation(const ExpectSpec& expectation);
// "3,17,40": the list syntax of `calls` and `segments`.
std::string format_number_list(const std::vector<std::uint64_t>& numbers);

// One entry per app kind, read by the parser (and so `eagain check`), the
// runner (harness/app.h adds only how to build one) and the docs' tables:
// its options with their types and limits, the options it requires, whether
// it listens (started before the clients), the actions it honours beyond
// stop, start and restart, and the expectations it observes beyond done-by.
// An action or expectation a kind does not list is refused where it is
// written, never checked against a zero.
enum class ValueType : std::uint8_t { port, endpoint, count, positive, size, duration, percent, trigger, name };

struct OptionRule {
    std::string_view key;
    ValueType type;
    // count, positive, size: the range, beyond the type's own (positive:
    // from 1); duration: only the maximum.
    std::uint64_t minimum = 0;
    std::uint64_t maximum = max_number;
    // Why a value above maximum cannot run, for the message.
    std::string_view above = {};
};

struct AppKindEntry {
    std::string_view kind;
    std::vector<OptionRule> options;
    std::vector<std::string_view> required;
    bool server = false;
    std::vector<std::string_view> actions;
    std::vector<std::string_view> expectations;

    bool honours(std::string_view action) const noexcept {
        return action == "stop" || action == "start" || action == "restart" ||
               std::find(actions.begin(), actions.end(), action) != actions.end();
    }
    bool observes(std::string_view expectation) const noexcept {
        return expectation == "done-by" ||
               std::find(expectations.begin(), expectations.end(), expectation) != expectations.end();
    }
};

// Every kind, in the order the docs list them; nullptr for a name that is none.
const std::vector<AppKindEntry>& app_kind_entries();
const AppKindEntry* find_app_kind(std::string_view name) noexcept;

// "250ns", "100us", "1ms", "2s", "5m", "1h", "0"; nullopt if malformed or
// above max_duration.
std::optional<Nanos> parse_duration(std::string_view word) noexcept;
// The exact duration in the largest unit that divides it ("2s", "1000200us",
// "0"): parse_duration(format_duration(d)) == d.
std::string format_duration(Nanos duration);
// "100", "100_000"; nullopt if malformed or above 2^64 - 1.
std::optional<std::uint64_t> parse_count(std::string_view word) noexcept;
// "64", "16KiB", "16K", "4MiB", "4M"; "100_000".
std::optional<std::uint64_t> parse_size(std::string_view word) noexcept;
// The exact size in the largest unit that divides it ("4M", "1536K", "100",
// "0"), never longer than any way of writing it that parse_size reads:
// parse_size(format_size(n)) == n.
std::string format_size(std::uint64_t size_bytes);

}  // namespace eagain::harness
