// format_scenario (harness/scenario.h): what it writes parses back to the
// same Scenario, for every scenario file in the tree and for generated ones.
#include "harness/scenario.h"

#include <rapidcheck.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace eagain::harness {
namespace {

// The same scenario, source locations and file name aside. Returns the
// first difference, or empty.
std::string difference(const Scenario& a, const Scenario& b) {
    if (a.seed != b.seed)
        return "seed";
    if (!(a.network == b.network))
        return "network";
    if (!(a.tcp == b.tcp))
        return "tcp";
    const auto sizes = [](const auto& x, const auto& y) { return x.size() == y.size(); };
    if (!sizes(a.hosts, b.hosts) || !sizes(a.links, b.links) || !sizes(a.apps, b.apps) ||
        !sizes(a.syscall_faults, b.syscall_faults) || !sizes(a.net_faults, b.net_faults) ||
        !sizes(a.actions, b.actions) || !sizes(a.expectations, b.expectations))
        return "statement counts";
    for (std::size_t i = 0; i < a.hosts.size(); ++i) {
        if (a.hosts[i].name != b.hosts[i].name || !(a.hosts[i].options == b.hosts[i].options))
            return "host " + std::to_string(i);
    }
    for (std::size_t i = 0; i < a.links.size(); ++i) {
        if (a.links[i].a != b.links[i].a || a.links[i].b != b.links[i].b || !(a.links[i].link == b.links[i].link))
            return "link " + std::to_string(i);
    }
    for (std::size_t i = 0; i < a.apps.size(); ++i) {
        if (a.apps[i].host != b.apps[i].host || a.apps[i].kind != b.apps[i].kind || a.apps[i].name != b.apps[i].name ||
            a.apps[i].options != b.apps[i].options)
            return "app " + std::to_string(i);
    }
    for (std::size_t i = 0; i < a.syscall_faults.size(); ++i) {
        if (a.syscall_faults[i].host != b.syscall_faults[i].host ||
            !(a.syscall_faults[i].rule == b.syscall_faults[i].rule))
            return "fault " + std::to_string(i);
    }
    for (std::size_t i = 0; i < a.net_faults.size(); ++i) {
        if (!(a.net_faults[i].fault == b.net_faults[i].fault))
            return "net " + std::to_string(i);
    }
    for (std::size_t i = 0; i < a.actions.size(); ++i) {
        if (a.actions[i].at != b.actions[i].at || a.actions[i].app != b.actions[i].app ||
            a.actions[i].action != b.actions[i].action)
            return "at " + std::to_string(i);
    }
    for (std::size_t i = 0; i < a.expectations.size(); ++i) {
        if (a.expectations[i].app != b.expectations[i].app || a.expectations[i].what != b.expectations[i].what ||
            a.expectations[i].arguments != b.expectations[i].arguments)
            return "expect " + std::to_string(i);
    }
    return {};
}

// Parses text, formats it, parses that: "" if both parse and agree, else
// what went wrong.
std::string round_trip_problem(const std::string& text) {
    const ParseResult first = parse_scenario(text, "original.scn");
    if (!first.ok())
        return "the original does not parse: " + first.errors.front();
    const std::string written = format_scenario(first.scenario);
    const ParseResult second = parse_scenario(written, "written.scn");
    if (!second.ok())
        return "the written text does not parse: " + second.errors.front() + "\n" + written;
    if (const std::string diff = difference(first.scenario, second.scenario); !diff.empty())
        return "differs in " + diff + ":\n" + written;
    if (format_scenario(second.scenario) != written)
        return "writing it again gives other text:\n" + written;
    return {};
}

std::string duration_word(std::uint64_t value, int unit) {
    static const std::vector<std::string> units{"ns", "us", "ms", "s", "m"};
    return value == 0 ? "0" : std::to_string(value) + units[static_cast<std::size_t>(unit) % units.size()];
}

}  // namespace

TEST_CASE("every scenario file in the tree is written back to text that parses to the same scenario",
          "[scenario][writer]") {
    const std::filesystem::path root = std::filesystem::path(EAGAIN_SOURCE_DIR);
    std::vector<std::filesystem::path> files;
    for (const char* folder : {"scenarios", "fuzz/corpus/scenario_parser"}) {
        for (const auto& entry : std::filesystem::recursive_directory_iterator(root / folder)) {
            if (entry.is_regular_file())
                files.push_back(entry.path());
        }
    }
    REQUIRE(files.size() >= 6);
    std::size_t valid = 0;
    for (const std::filesystem::path& file : files) {
        std::ifstream in(file);
        std::stringstream text;
        text << in.rdbuf();
        if (!parse_scenario(text.str(), "f").ok())
            continue;  // the corpus holds broken files on purpose
        ++valid;
        INFO(file.string());
        CHECK(round_trip_problem(text.str()).empty());
    }
    CHECK(valid >= 6);
}

TEST_CASE("exact fault statements are written as they are read", "[scenario][writer]") {
    const std::string text = R"(host server
host client
fault server recv calls 3,17,40 fd 5 -> EINTR
fault client send calls 1 times 2 -> short 7
net reorder client->server segments 2,9 hold 3ms
net reorder *->client chance 1/8 hold 2ms at 1ms for 3s
expect no-fd-leak
)";
    CHECK(round_trip_problem(text).empty());
    CHECK(format_scenario(parse_scenario(text, "t.scn").scenario) == text);
}

TEST_CASE("a statement is never written longer than it was read, so a full-length line stays valid",
          "[scenario][writer]") {
    CHECK(format_size(0) == "0");
    CHECK(format_size(100) == "100");
    CHECK(format_size(1536 * 1024) == "1536K");
    CHECK(format_size(4 << 20) == "4M");
    for (const std::uint64_t size : {1ULL, 1023ULL, 1024ULL, 4096ULL, 1048577ULL, 3ULL << 30})
        CHECK(parse_size(format_size(size)) == size);
    // A calls list that fills the line, with sizes and numbers written the
    // long way and extra blanks.
    std::string line = "fault  a send  calls ";
    for (std::uint64_t call = 1; line.size() < max_line_bytes - 60; ++call)
        line += std::to_string(call) + ",";
    line += "99999   fd 0004 times 1_0 -> short 1048576";
    REQUIRE(line.size() <= max_line_bytes);
    const std::string text =
        "host a\n" + line + "\nnet reorder a->a segments " + line.substr(21, 3000) + "9999999\nexpect no-fd-leak\n";
    INFO(round_trip_problem(text));
    CHECK(round_trip_problem(text).empty());
}

TEST_CASE("generated scenarios are written back to text that parses to the same scenario",
          "[scenario][writer][property]") {
    const bool ok = rc::check("format_scenario round trip", [] {
        const auto n = [](std::uint64_t low, std::uint64_t high) { return *rc::gen::inRange(low, high + 1); };
        const auto duration = [&] { return duration_word(n(0, 5000), static_cast<int>(n(0, 4))); };
        const auto pick = [&](const std::vector<std::string>& choices) {
            return choices[static_cast<std::size_t>(n(0, choices.size() - 1))];
        };
        std::string text;
        if (n(0, 1) == 1)
            text += "seed " + std::to_string(*rc::gen::arbitrary<std::uint64_t>()) + "\n";
        if (n(0, 1) == 1)
            text +=
                "network latency " + duration() + " jitter " + duration() + " mss " + std::to_string(n(1, 9000)) + "\n";
        if (n(0, 1) == 1)
            text += "tcp send-buffer " + std::to_string(n(4608, 1 << 20)) + " rto-min " +
                    duration_word(n(1, 120'000), 2) + " retries " + std::to_string(n(0, 100)) + " syn-retries " +
                    std::to_string(n(0, 20)) + " receive-buffer " + std::to_string(n(2304, 1 << 20)) + "\n";
        text += "host a" + pick({"", " edge strict", " edge linux", " fd-limit 64"}) + "\n";
        text += "host b\n";
        if (n(0, 1) == 1)
            text += "link a b" + pick({"", " latency " + duration(), " mss 500 jitter " + duration()}) + "\n";
        const std::string port = std::to_string(n(1, 65535));
        text += "app a frame-echo port " + port + pick({"", " trigger edge", " max-frame 4KiB heartbeat 1s"}) + "\n";
        text += "app b frame-client connect a:" + port + " frames " + std::to_string(n(0, 100000)) +
                pick({"", " size 64", " conns 3 in-flight 2", " name c1"}) + "\n";
        const std::size_t faults = n(0, 6);
        for (std::size_t i = 0; i < faults; ++i) {
            std::string selector = pick({"always", "call", "every", "from", "offset", "chance", "calls"});
            if (selector == "call" || selector == "every" || selector == "from")
                selector += " " + std::to_string(n(1, 1000));
            else if (selector == "offset")
                selector += " " + std::to_string(n(0, 100000));
            else if (selector == "chance") {
                const std::uint64_t d = n(1, 1000);
                selector += " " + std::to_string(n(0, d)) + "/" + std::to_string(d);
            } else if (selector == "calls") {
                std::string list;
                std::uint64_t call = 0;
                for (std::size_t k = n(1, 20); k > 0; --k) {
                    call += n(1, 50);
                    list += (list.empty() ? "" : ",") + std::to_string(call);
                }
                selector += " " + list;
            }
            std::string extra = pick({"", " fd 4", " times 3", " fd 9 times 1"});
            std::string result = pick({"EAGAIN", "EINTR", "ECONNRESET", "short"});
            if (result == "short")
                result += " " + std::to_string(n(1, 4096));
            text += "fault " + pick({"a", "b"}) + " " + pick({"send", "recv"}) + " " + selector + extra + " -> " +
                    result + "\n";
        }
        const std::size_t nets = n(0, 4);
        for (std::size_t i = 0; i < nets; ++i) {
            const std::string kind = pick({"reset", "zero-window", "reorder", "delay", "partition"});
            const std::string direction = pick({"a", "b", "*"}) + "->" + pick({"a", "b", "*"});
            const std::string period =
                pick({"", " at " + duration(), " for " + duration(), " at " + duration() + " for " + duration()});
            if (kind == "reset")
                text += "net reset " + pick({"a", "b"}) + pick({"", " port 7"}) +
                        pick({" at " + duration(), " offset " + std::to_string(n(0, 1 << 20))}) +
                        pick({"", " one-sided"}) + "\n";
            else if (kind == "zero-window")
                text += "net zero-window a" + pick({"", " port 9"}) + " at " + duration() + " for " + duration() + "\n";
            else if (kind == "reorder")
                text += "net reorder " + direction +
                        pick({" chance 1/4", " chance 0/3", " segments 1,5,6", " segments 2"}) +
                        pick({"", " hold " + duration()}) + period + "\n";
            else if (kind == "delay")
                text += "net delay " + direction + " extra " + duration() + period + "\n";
            else
                text += "net partition a b at " + duration() + " for " + duration() + "\n";
        }
        const std::string client = text.find("name c1") != std::string::npos ? "c1" : "b";
        if (n(0, 1) == 1)
            text += "at " + duration() + " " + client + " " + pick({"close", "stop", "restart", "stop-reading"}) + "\n";
        text += "expect " + client + " frames-verified " + pick({"100", "1_000", "0"}) + "\n";
        if (n(0, 1) == 1)
            text += "expect " + client + " heartbeats " + pick({"0", "3"}) + "\n";
        text += pick({"expect no-fd-leak\n", "expect done-by " + duration() + "\n", ""});
        RC_ASSERT(round_trip_problem(text) == std::string());
    });
    CHECK(ok);
}

}  // namespace eagain::harness
