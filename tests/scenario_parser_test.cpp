// The scenario parser (harness/scenario.h): what a valid file becomes, and
// the exact message for each kind of mistake.
#include "harness/scenario.h"

#include <rapidcheck.h>
#include <catch2/catch.hpp>

#include <string>
#include <variant>

namespace eagain::harness {
namespace {

using namespace std::chrono_literals;

ParseResult parse(std::string_view text) {
    return parse_scenario(text, "t.scn");
}

// The one error a one-problem file gives.
std::string only_error(std::string_view text) {
    const ParseResult result = parse(text);
    REQUIRE(result.errors.size() == 1);
    return result.errors.front();
}

constexpr std::string_view two_hosts = "host server\nhost client\n";

}  // namespace

TEST_CASE("a valid scenario becomes hosts, apps, faults, actions and expectations with their values", "[scenario]") {
    const ParseResult result = parse(R"(# a comment line
seed 7
network latency 1ms jitter 20us mss 1000
tcp send-buffer 16KiB retries 3
host server edge strict
host client   # trailing comment
link server client latency 5ms
app server frame-echo port 7 trigger edge backlog 0
app client frame-client connect server:7 frames 100_000 size 64 conns 2
fault client send call 3 -> short 5
fault client recv chance 1/8 times 10 -> EINTR
fault server accept4 every 2 -> EMFILE
net reorder client->server chance 1/4 hold 2ms
net reset server port 7 offset 16KiB one-sided
net partition server client at 1s for 60s
at 10ms server stop-reading
expect client frames-verified 100000
expect client reconnect-at 0 1s 3s
expect no-fd-leak
expect done-by 5s
)");
    INFO((result.errors.empty() ? std::string() : result.errors.front()));
    REQUIRE(result.ok());
    const Scenario& s = result.scenario;
    CHECK(s.seed == 7);
    CHECK(s.network.latency == 1ms);
    CHECK(s.network.jitter == 20us);
    CHECK(s.network.mss == 1000);
    CHECK(s.tcp.send_buffer_bytes == 16384);
    CHECK(s.tcp.retries == 3);
    REQUIRE(s.hosts.size() == 2);
    CHECK(s.hosts[0].options.edge_mode == sim::EdgeMode::transition_only);
    CHECK(s.hosts[1].options.edge_mode == sim::EdgeMode::linux_every_arrival);
    CHECK(s.hosts[1].where.line == 6);
    REQUIRE(s.links.size() == 1);
    CHECK(s.links[0].link.latency == 5ms);
    CHECK(s.links[0].link.mss == 1000);  // the rest from network
    REQUIRE(s.apps.size() == 2);
    CHECK(s.apps[0].options.at("backlog") == "0");  // Linux takes 0 (one connection queued)
    CHECK(s.apps[1].kind == "frame-client");
    CHECK(s.apps[1].name == "client");
    CHECK(s.apps[1].options.at("frames") == "100_000");
    REQUIRE(s.syscall_faults.size() == 3);
    const FaultRule& short_send = s.syscall_faults[0].rule;
    CHECK(short_send.call == SysCall::send);
    CHECK(short_send.when == CallSelector::nth_call);
    CHECK(short_send.call_number == 3);
    CHECK(short_send.fault == FaultKind::short_transfer);
    CHECK(short_send.short_limit_bytes == 5);
    const FaultRule& eintr = s.syscall_faults[1].rule;
    CHECK(eintr.when == CallSelector::with_probability);
    CHECK(eintr.chance_numerator == 1);
    CHECK(eintr.chance_denominator == 8);
    CHECK(eintr.max_hits == 10U);
    CHECK(s.syscall_faults[2].rule.fault == FaultKind::emfile);
    REQUIRE(s.net_faults.size() == 3);
    const auto& reorder = std::get<sim::ReorderFault>(s.net_faults[0].fault);
    CHECK(reorder.from == "client");
    CHECK(reorder.to == "server");
    CHECK(reorder.hold_back == 2ms);
    const auto& reset = std::get<sim::ResetFault>(s.net_faults[1].fault);
    CHECK(reset.port == 7);
    CHECK(reset.at_received_offset == 16384);
    CHECK(reset.one_sided);
    CHECK(std::get<sim::PartitionFault>(s.net_faults[2].fault).duration == 60s);
    REQUIRE(s.actions.size() == 1);
    CHECK(s.actions[0].at == 10ms);
    CHECK(s.actions[0].action == "stop-reading");
    REQUIRE(s.expectations.size() == 4);
    CHECK(s.expectations[1].arguments == std::vector<std::string>{"0", "1s", "3s"});
    CHECK(s.expectations[2].app.empty());
    CHECK(s.expectations[3].arguments == std::vector<std::string>{"5s"});
}

TEST_CASE("each mistake is reported as file:line:col: expected ..., found ...", "[scenario]") {
    CHECK(only_error("hots server") ==
          "t.scn:1:1: expected a statement (seed, network, link, tcp, host, app, fault, net, at, expect), found "
          "\"hots\"");
    CHECK(only_error("network latency 10 ms") ==
          "t.scn:1:17: expected a duration (250ns, 100us, 1ms, 2s, 5m, 1h), found \"10\"");
    CHECK(only_error("host a\napp b frame-echo") == "t.scn:2:5: expected a host declared above, found \"b\"");
    CHECK(only_error("host a\nhost a") == "t.scn:2:6: expected a host name not declared before, found \"a\"");
    CHECK(only_error(std::string(two_hosts) + "app server frame-echo prot 7") ==
          "t.scn:3:23: expected an option of frame-echo (trigger, name, port, max-frame, heartbeat, backlog), found "
          "\"prot\"");
    CHECK(only_error(std::string(two_hosts) + "app client frame-client frames 10") ==
          "t.scn:3:34: expected option connect for frame-client, found end of line");
    CHECK(only_error(std::string(two_hosts) + "app client frame-client connect nowhere:7") ==
          "t.scn:3:33: expected host:port with a host declared above, found \"nowhere:7\"");
    CHECK(only_error(std::string(two_hosts) + "fault client bind call 1 -> EAGAIN") ==
          "t.scn:3:29: expected a fault FaultySys can inject here (Linux cannot return this fault from this "
          "call), found \"EAGAIN\"");
    CHECK(only_error(std::string(two_hosts) + "fault client send call 1 EAGAIN") ==
          "t.scn:3:26: expected \"->\", found \"EAGAIN\"");
    CHECK(only_error(std::string(two_hosts) + "fault client recv chance 9/8 -> EINTR") ==
          "t.scn:3:26: expected a chance N/D with 0 <= N <= D and D > 0 (1/8), found \"9/8\"");
    CHECK(only_error(std::string(two_hosts) + "fault client recv call 0 -> EINTR") ==
          "t.scn:3:24: expected a whole number of at least 1, found \"0\"");
    CHECK(only_error("seed 1 2") == "t.scn:1:8: expected end of line, found \"2\"");
    CHECK(only_error("seed 1\nseed 2") == "t.scn:2:1: expected one seed statement at most, found \"seed\"");
    CHECK(only_error(std::string(two_hosts) + "net partition server at 1s for 2s") ==
          "t.scn:3:22: expected a host declared above, found \"at\"");
    CHECK(only_error(std::string(two_hosts) + "net zero-window server at 1s") ==
          "t.scn:3:29: expected \"for\", found end of line");
    CHECK(only_error("host a\nat 1s a stop") == "t.scn:2:7: expected an app declared above (by its name), found \"a\"");
    CHECK(only_error(std::string(two_hosts) + "app server frame-echo\nat 1s server explode") ==
          "t.scn:4:14: expected an action (stop-reading, resume-reading, stop, start, restart, close, "
          "send-hostile-length), found \"explode\"");
    CHECK(only_error(std::string(two_hosts) + "app server frame-echo\nexpect server frames-verified lots") ==
          "t.scn:4:31: expected a whole number of at least 0, found \"lots\"");
    CHECK(only_error(std::string(two_hosts) + "app server frame-echo\nexpect server error EWHAT") ==
          "t.scn:4:21: expected an errno name (ECONNRESET, EPIPE, ETIMEDOUT, ...) or a close reason (local_close, "
          "peer_closed, peer_closed_mid_frame, reset, broken_pipe, io_error, dead_peer, connect_failed, "
          "connect_timeout, close_timeout, hostile_frame, output_limit_exceeded), found \"EWHAT\"");
    CHECK(parse(std::string(two_hosts) + "app server frame-echo\nexpect server error dead_peer").ok());
    CHECK(only_error(std::string(two_hosts) + "app server frame-echo\napp server byte-echo") ==
          "t.scn:4:1: expected a name for this app (\"name NAME\"): server is taken, found \"app\"");
    CHECK(only_error(std::string(5000, 'x')) == "t.scn:1:4097: expected a line of at most 4096 bytes, found \"x\"");
}

TEST_CASE("exact faults: a call list selector and a reorder of listed segments", "[scenario]") {
    const ParseResult result = parse(std::string(two_hosts) + R"(fault server recv calls 3,17,1_000 fd 5 -> EINTR
fault client send calls 2 -> short 7
net reorder client->server segments 4,9 hold 2ms at 1ms
net reorder *->* chance 1/8
)");
    INFO((result.errors.empty() ? std::string() : result.errors.front()));
    REQUIRE(result.ok());
    const Scenario& s = result.scenario;
    REQUIRE(s.syscall_faults.size() == 2);
    CHECK(s.syscall_faults[0].rule.when == CallSelector::call_list);
    CHECK(s.syscall_faults[0].rule.call_list == std::vector<std::uint64_t>{3, 17, 1000});
    CHECK(s.syscall_faults[0].rule.fd == 5);
    CHECK(s.syscall_faults[1].rule.call_list == std::vector<std::uint64_t>{2});
    CHECK(s.syscall_faults[1].rule.short_limit_bytes == 7);
    REQUIRE(s.net_faults.size() == 2);
    const auto& exact = std::get<sim::ReorderFault>(s.net_faults[0].fault);
    CHECK(exact.held_segments == std::vector<std::uint64_t>{4, 9});
    CHECK(exact.hold_back == 2ms);
    CHECK(exact.start == 1ms);
    CHECK(std::get<sim::ReorderFault>(s.net_faults[1].fault).held_segments.empty());

    const std::string list_error =
        "expected a list of call numbers from 1, strictly increasing, no spaces (3,17,40), found ";
    for (const std::string_view bad : {"3,3", "5,2", "0,1", "1,", ",1", "1,,2", "x", "->"}) {
        const std::string error = only_error(std::string(two_hosts) + "fault server recv calls " + std::string(bad) +
                                             (bad == "->" ? " EINTR" : " -> EINTR"));
        CHECK(error == "t.scn:3:25: " + list_error + "\"" + std::string(bad) + "\"");
    }
    CHECK(only_error(std::string(two_hosts) + "net reorder client->server segments 2,1") ==
          "t.scn:3:37: expected a list of segment numbers from 1, strictly increasing, no spaces (3,17,40), found "
          "\"2,1\"");
    CHECK(only_error(std::string(two_hosts) + "net reorder client->server hold 1ms") ==
          "t.scn:3:28: expected chance N/D or segments N,N,..., found \"hold\"");
}

TEST_CASE("the parser reports every bad line, up to its limit, and keeps what was valid", "[scenario]") {
    const ParseResult some = parse("host a\nbogus\nhost b\nseed x\napp a frame-echo\n");
    REQUIRE(some.errors.size() == 2);
    CHECK(some.errors[0].starts_with("t.scn:2:1: "));
    CHECK(some.errors[1].starts_with("t.scn:4:6: "));
    CHECK(some.scenario.hosts.size() == 2);
    CHECK(some.scenario.apps.size() == 1);
    std::string many;
    for (int i = 0; i < 100; ++i)
        many += "nonsense\n";
    CHECK(parse(many).errors.size() == max_errors);
}

TEST_CASE("durations and sizes: units, underscores, zero, and the malformed", "[scenario]") {
    CHECK(parse_duration("250ns") == 250ns);
    CHECK(parse_duration("100us") == 100us);
    CHECK(parse_duration("1_500ms") == 1500ms);
    CHECK(parse_duration("2s") == 2s);
    CHECK(parse_duration("5m") == 5min);
    CHECK(parse_duration("1h") == 1h);
    CHECK(parse_duration("0") == 0ns);
    CHECK_FALSE(parse_duration("5").has_value());  // a unit is required but for 0
    CHECK_FALSE(parse_duration("1.5s").has_value());
    CHECK_FALSE(parse_duration("s").has_value());
    CHECK_FALSE(parse_duration("-1s").has_value());
    CHECK_FALSE(parse_duration("99999999999999999999h").has_value());
    CHECK_FALSE(parse_duration("101d").has_value());
    CHECK(parse_size("64") == 64U);
    CHECK(parse_size("16KiB") == 16384U);
    CHECK(parse_size("4M") == 4194304U);
    CHECK_FALSE(parse_size("4MB").has_value());
    CHECK_FALSE(parse_size("_4").has_value());
}

TEST_CASE("any text at all parses without crashing into well-formed errors", "[scenario][property]") {
    const bool ok = rc::check("arbitrary text", [](const std::string& text) {
        const ParseResult result = parse(text);
        RC_ASSERT(result.errors.size() <= max_errors);
        for (const std::string& error : result.errors) {
            RC_ASSERT(error.starts_with("t.scn:"));
            RC_ASSERT(error.find(": expected ") != std::string::npos);
        }
    });
    CHECK(ok);
    const bool ok_words = rc::check("statements of scenario words", [](const std::vector<int>& picks) {
        static const std::vector<std::string> words{
            "host",   "a",   "b",     "app", "frame-echo", "port",   "7",  "fault", "send", "call", "1",   "->",
            "EAGAIN", "net", "reset", "at",  "1s",         "expect", "\n", "\n",    "#",    "a:7",  "1/2", "short"};
        std::string text;
        for (const int pick : picks)
            text += words[static_cast<std::size_t>(pick) % words.size()] + " ";
        const ParseResult result = parse(text);
        RC_ASSERT(result.errors.size() <= max_errors);
    });
    CHECK(ok_words);
}

}  // namespace eagain::harness
