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
    bool ok() const noexcept { return errors.empty(); }
};

inline constexpr std::size_t max_errors = 20;
// Lines longer than this are an error, not a reason to allocate without bound.
inline constexpr std::size_t max_line_bytes = 4096;

ParseResult parse_scenario(std::string_view text, std::string_view file_name);

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

// "250ns", "100us", "1ms", "2s", "5m", "1h", "0"; nullopt if malformed or
// out of range.
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
