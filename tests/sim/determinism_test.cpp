// The trace as the determinism contract: the same workload and seed give
// the same trace, line for line, within one process; a different seed
// changes it where randomness enters (the link); and the trace leaves out
// no syscall.
#include "apps/frame_echo_server.h"
#include "apps/load_client.h"
#include "core/faulty_sys.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"
#include "tests/sim/sim_test_support.h"

#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace simtest = eagain::simtest;
using eagain::sim::RunStatus;

namespace {

constexpr std::uint64_t workload_frames = 3000;

struct Run {
    RunStatus status = RunStatus::idle;
    bool report_ok = false;
    std::uint64_t hash = 0;
    std::string hash_hex;
    std::vector<std::string> lines;
    // Calls that reached each host's SimKernel, by SysCall, as counted by
    // a rule-less FaultySys right above it.
    std::array<std::uint64_t, eagain::sys_call_count> server_calls{};
    std::array<std::uint64_t, eagain::sys_call_count> client_calls{};
    // Calls the client program made, as counted by the faulting FaultySys
    // it calls (injected errors make no inner call, so these are at least
    // client_calls).
    std::array<std::uint64_t, eagain::sys_call_count> client_program_calls{};
    std::uint64_t client_faults = 0;
};

// Echo load over a jittery, reordering link, with syscall faults in the
// client. Only world_seed varies between runs; the FaultySys seeds are
// fixed, so a difference between seeds comes from the world's RNG.
Run run_workload(std::uint64_t world_seed) {
    eagain::sim::WorldOptions options;
    options.trace_keep_lines = true;
    options.seed = world_seed;
    options.link.jitter = 150us;
    eagain::sim::World world(options);
    auto& server_host = world.add_host("server");
    auto& client_host = world.add_host("client");
    eagain::sim::ReorderFault reorder;
    reorder.denominator = 8;
    world.add_fault(reorder);  // every direction

    eagain::FaultySys server_counter(server_host, 1);
    eagain::FaultySys client_counter(client_host, 2);
    eagain::FaultySys client_faults(client_counter, 3);
    for (const auto& [call, kind] : {std::pair{eagain::SysCall::send, eagain::FaultKind::short_transfer},
                                     std::pair{eagain::SysCall::send, eagain::FaultKind::eagain},
                                     std::pair{eagain::SysCall::recv, eagain::FaultKind::eintr}}) {
        eagain::FaultRule rule;
        rule.call = call;
        rule.fault = kind;
        rule.short_limit_bytes = 9;
        rule.when = eagain::CallSelector::with_probability;
        rule.chance_numerator = 1;
        rule.chance_denominator = 5;
        REQUIRE(client_faults.add_rule(rule) == eagain::RuleError::none);
    }

    eagain::Reactor server_reactor(server_counter);
    eagain::Reactor client_reactor(client_faults);
    eagain::EchoServerOptions server_options;
    server_options.listen_address = server_host.address(AF_INET, 7);
    eagain::FrameEchoServer server(server_reactor, server_options);
    REQUIRE(server.open().ok());
    eagain::LoadOptions load;
    load.server = server.local_address();
    load.connections = 3;
    load.frames = workload_frames;
    load.in_flight_per_connection = 8;
    eagain::LoadClient client(client_reactor, load);
    client.start();
    world.add_reactor(server_host, server_reactor, &server_counter);
    world.add_reactor(client_host, client_reactor, &client_faults);

    Run run;
    run.status = world.run_for(60s, [&] { return client.done(); });
    run.report_ok = client.report().ok(workload_frames);
    run.hash = world.trace().hash();
    run.hash_hex = world.trace().hash_hex();
    run.lines = world.trace().lines();
    for (std::size_t i = 0; i < eagain::sys_call_count; ++i) {
        run.server_calls[i] = server_counter.calls(static_cast<eagain::SysCall>(i));
        run.client_calls[i] = client_counter.calls(static_cast<eagain::SysCall>(i));
        run.client_program_calls[i] = client_faults.calls(static_cast<eagain::SysCall>(i));
    }
    run.client_faults = client_faults.faults_injected();
    return run;
}

// Index of the first line where a and b differ (or the shorter length if
// one is a prefix of the other); npos if they are equal.
std::size_t first_difference(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    const std::size_t common = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < common; ++i) {
        if (a[i] != b[i])
            return i;
    }
    return a.size() == b.size() ? std::string::npos : common;
}

std::uint64_t fnv1a_of_lines(const std::vector<std::string>& lines) {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (const std::string& line : lines) {
        for (const char c : line + '\n') {
            hash ^= static_cast<unsigned char>(c);
            hash *= 0x100000001b3ULL;
        }
    }
    return hash;
}

}  // namespace

TEST_CASE("the same workload and seed give a byte-identical trace twice in one process, another seed gives another",
          "[sim]") {
    const Run first = run_workload(7);
    const Run second = run_workload(7);
    const Run other = run_workload(8);
    for (const Run* run : {&first, &second, &other}) {
        CHECK(run->status == RunStatus::done);
        CHECK(run->report_ok);
        CHECK(run->client_faults >= 100);  // the faults are part of what must repeat
    }
    REQUIRE(first.lines.size() > 4000);

    // Same seed: every line equal, so the same hash.
    const std::size_t diff = first_difference(first.lines, second.lines);
    INFO("first difference at line " << diff << ":\n"
                                     << (diff < first.lines.size() ? first.lines[diff] : "(end)") << "\n"
                                     << (diff < second.lines.size() ? second.lines[diff] : "(end)"));
    CHECK(first.lines.size() == second.lines.size());
    CHECK(diff == std::string::npos);
    CHECK(first.hash == second.hash);
    CHECK(first.hash_hex == second.hash_hex);
    // The hash is FNV-1a over the lines with their newlines, as documented,
    // so a trace written to a file hashes the same outside the process.
    CHECK(first.hash == fnv1a_of_lines(first.lines));

    // Another seed: a different trace, and not just in the header line
    // that names the seed: the first difference is a segment's arrival,
    // where the link's jitter and reordering draw from the world's RNG.
    CHECK(other.hash != first.hash);
    REQUIRE(simtest::is(first.lines[0], "ev", "world"));  // the one line that names the seed
    std::vector<std::string> first_body(first.lines.begin() + 1, first.lines.end());
    std::vector<std::string> other_body(other.lines.begin() + 1, other.lines.end());
    const std::size_t seed_diff = first_difference(first_body, other_body);
    REQUIRE(seed_diff != std::string::npos);
    REQUIRE(seed_diff < first_body.size());
    INFO("seeds differ first at:\n" << first_body[seed_diff]);
    CHECK(simtest::is(first_body[seed_diff], "ev", "seg"));
    CHECK(simtest::number(first_body[seed_diff], "arrive") != simtest::number(other_body[seed_diff], "arrive"));
}

TEST_CASE("trace_line_kind reads every line's ev from its place after t, as a sink counting kinds does", "[sim]") {
    const Run run = run_workload(7);
    REQUIRE(run.lines.size() > 4000);
    for (const std::string& line : run.lines) {
        const std::string_view kind = eagain::sim::trace_line_kind(line);
        INFO(line);
        REQUIRE(!kind.empty());
        CHECK(simtest::is(line, "ev", kind));
    }
    CHECK(eagain::sim::trace_line_kind(R"({"t":-5,"ev":"beyond_window","at":"x"})") == "beyond_window");
    CHECK(eagain::sim::trace_line_kind(R"({"ev":"sys","t":1})").empty());
    CHECK(eagain::sim::trace_line_kind(R"({"t":1,"ev":"sys)").empty());
    CHECK(eagain::sim::trace_line_kind("").empty());
}

TEST_CASE("the trace records every syscall that reaches the simulated kernel, with the right name", "[sim]") {
    const Run run = run_workload(7);
    REQUIRE(run.status == RunStatus::done);
    REQUIRE(run.report_ok);
    std::uint64_t server_total = 0;
    std::uint64_t client_total = 0;
    for (std::size_t i = 0; i < eagain::sys_call_count; ++i) {
        const std::string_view name = to_string(static_cast<eagain::SysCall>(i));
        std::uint64_t server_lines = 0;
        std::uint64_t client_lines = 0;
        for (const std::string& line : run.lines) {
            if (!simtest::is(line, "ev", "sys") || !simtest::is(line, "call", name))
                continue;
            server_lines += simtest::is(line, "host", "server") ? 1 : 0;
            client_lines += simtest::is(line, "host", "client") ? 1 : 0;
        }
        INFO(name);
        CHECK(server_lines == run.server_calls[i]);
        CHECK(client_lines == run.client_calls[i]);
        server_total += run.server_calls[i];
        client_total += run.client_calls[i];
    }
    // No sys line outside those names (a call traced under another name
    // would be missed above).
    CHECK(simtest::count_lines(run.lines, "sys", "host", "server") == server_total);
    CHECK(simtest::count_lines(run.lines, "sys", "host", "client") == client_total);
    // The spot check the counts rest on: the busy calls are all there.
    CHECK(run.client_calls[static_cast<std::size_t>(eagain::SysCall::send)] > 400);
    CHECK(run.client_calls[static_cast<std::size_t>(eagain::SysCall::recv)] > 400);
}

TEST_CASE("FaultySys makes no syscall the program did not make: its trace has no fcntl of its own", "[sim]") {
    // It tracks O_NONBLOCK from socket/accept4/fcntl instead of asking the
    // kernel with F_GETFL before each EAGAIN it might inject, so the trace
    // does not depend on which rules happen to be tried.
    const Run run = run_workload(7);
    REQUIRE(run.status == RunStatus::done);
    REQUIRE(run.report_ok);
    REQUIRE(run.client_faults >= 100);
    for (std::size_t i = 0; i < eagain::sys_call_count; ++i) {
        INFO(to_string(static_cast<eagain::SysCall>(i)));
        CHECK(run.client_calls[i] <= run.client_program_calls[i]);
    }
    const auto fcntl = static_cast<std::size_t>(eagain::SysCall::fcntl);
    CHECK(run.client_calls[fcntl] == run.client_program_calls[fcntl]);
    CHECK(simtest::count_lines(run.lines, "sys", "call", "fcntl") ==
          run.client_program_calls[fcntl] + run.server_calls[fcntl]);
}
