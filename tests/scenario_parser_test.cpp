// The scenario parser (harness/scenario.h): what a valid file becomes, and
// the exact message for each kind of mistake.
#include "harness/scenario.h"

#include <rapidcheck.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace eagain::harness {
namespace {

using namespace std::chrono_literals;

ParseResult parse(std::string_view text) {
    return parse_scenario(text, "t.scn");
}

// The one error a one-problem file gives (an expectation added at its end:
// a file without one is a problem of its own).
std::string only_error(std::string_view text) {
    const ParseResult result = parse(std::string(text) + "\nexpect no-fd-leak\n");
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
expect client heartbeats 2
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
    CHECK(s.expectations[1].arguments == std::vector<std::string>{"2"});
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
    CHECK(only_error(std::string(two_hosts) + "app server frame-echo\nexpect server heartbeats lots") ==
          "t.scn:4:26: expected a whole number of at least 0, found \"lots\"");
    CHECK(only_error("host a\napp a nosuch") ==
          "t.scn:2:7: expected an app kind (frame-echo, byte-echo, frame-client, bulk-sender, bulk-receiver, "
          "idle-client, reconnecting-client), found \"nosuch\"");
    // An expectation or action the app's kind does not observe or honour is
    // refused where it is written (the kind's AppKindEntry), as run would.
    CHECK(only_error(std::string(two_hosts) + "app server frame-echo\nexpect server frames-verified 10") ==
          "t.scn:4:15: expected an expectation frame-echo observes (max-buffered, heartbeats, error, state, "
          "done-by), found \"frames-verified\"");
    CHECK(only_error(std::string(two_hosts) + "app server frame-echo\nat 1s server close") ==
          "t.scn:4:14: expected an action frame-echo honours (stop, start, restart, stop-reading, "
          "resume-reading), found \"close\"");
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
expect no-fd-leak
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
    const ParseResult some = parse("host a\nbogus\nhost b\nseed x\napp a frame-echo\nexpect no-fd-leak\n");
    REQUIRE(some.errors.size() == 2);
    CHECK(some.errors[0].starts_with("t.scn:2:1: "));
    CHECK(some.errors[1].starts_with("t.scn:4:6: "));
    CHECK(some.scenario.hosts.size() == 2);
    CHECK(some.scenario.apps.size() == 1);
    std::string many;
    for (int i = 0; i < 100; ++i)
        many += "nonsense\n";
    const ParseResult too_many = parse(many + "expect no-fd-leak\n");
    CHECK(too_many.errors.size() == max_errors);
    CHECK(too_many.errors_not_listed == 100 - max_errors);  // "... and 80 more problems"
    CHECK(some.errors_not_listed == 0);
}

TEST_CASE("a scenario with no expect statement is an error: it would pass whatever happened", "[scenario]") {
    const ParseResult none = parse("host server\nhost client\napp server frame-echo\n");
    REQUIRE(none.errors.size() == 1);
    CHECK(none.errors.front() ==
          "t.scn:1:1: expected at least one expect statement (a scenario that checks nothing passes whatever "
          "happens), found none");
    CHECK(parse("").errors.size() == 1);
    CHECK(parse("# only a comment\n").errors.size() == 1);
    // Listed first (line 1), before the problems of later lines.
    const ParseResult with_others = parse("host a\nbogus\n");
    REQUIRE(with_others.errors.size() == 2);
    CHECK(with_others.errors[0].starts_with("t.scn:1:1: expected at least one expect statement"));
    CHECK(with_others.errors[1].starts_with("t.scn:2:1: "));
    // A broken expect line is still an expect statement: its own problem
    // is the one reported.
    CHECK(parse("host a\nexpect a nothing\n").errors.size() == 1);
    CHECK(parse("host a\nexpect no-fd-leak\n").ok());
}

TEST_CASE("reading input: a byte order mark, a bad host line, values too large, messages in the language's words",
          "[scenario]") {
    SECTION("a UTF-8 byte order mark at the start is skipped") {
        const ParseResult bom = parse("\xEF\xBB\xBFhost a\nexpect no-fd-leak\n");
        INFO((bom.errors.empty() ? std::string() : bom.errors.front()));
        CHECK(bom.ok());
        CHECK(bom.scenario.hosts.at(0).name == "a");
        // Only at the start.
        CHECK_FALSE(parse("host a\n\xEF\xBB\xBFhost b\nexpect no-fd-leak\n").ok());
    }
    SECTION("a host whose options are wrong is still declared: one problem, not one per line naming it") {
        const ParseResult r = parse(R"(host server fd-limit 1
host client
app server frame-echo
app client frame-client connect server:7
fault server recv call 1 -> EINTR
expect server error reset
expect no-fd-leak
)");
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors.front() == "t.scn:1:22: expected a whole number from 4 to 1048576, found \"1\"");
    }
    SECTION("an app whose options are wrong is still declared when its name is clear") {
        const ParseResult r = parse(R"(host server
host client
app server frame-echo port 0
app client frame-client connect server:7 conns 0 name c
at 1s server stop
expect c no-errors
expect no-fd-leak
)");
        REQUIRE(r.errors.size() == 2);
        CHECK(r.errors[0].starts_with("t.scn:3:28: expected a port from 1 to 65535"));
        CHECK(r.errors[1].starts_with("t.scn:4:48: expected a whole number from 1 to 32768"));
    }
    SECTION("a duration above the limit is too long, and says the maximum") {
        CHECK(only_error("at 3000h x stop") ==
              "t.scn:1:4: expected a duration (250ns, 100us, 1ms, 2s, 5m, 1h), found \"3000h\": too long (at most "
              "2400h)");
        CHECK(only_error("network latency 99999999999999999999999h").ends_with(": too long (at most 2400h)"));
        CHECK(only_error("network latency 2401h").ends_with(": too long (at most 2400h)"));
        CHECK(parse("network latency 2400h\nexpect no-fd-leak").ok());
        CHECK(only_error("network latency 5x") ==
              "t.scn:1:17: expected a duration (250ns, 100us, 1ms, 2s, 5m, 1h), found \"5x\"");
        CHECK(only_error("seed 99999999999999999999999") ==
              "t.scn:1:6: expected a whole number, found \"99999999999999999999999\": too large (at most "
              "18446744073709551615)");
    }
    SECTION("short without a size, or of 0, names no internal field") {
        CHECK(only_error(std::string(two_hosts) + "fault client send call 1 -> short") ==
              "t.scn:3:34: expected the most bytes the call moves after short (short 5), found end of line");
        CHECK(only_error(std::string(two_hosts) + "fault client send call 1 -> short 0") ==
              "t.scn:3:35: expected a size of at least 1 byte (64, 16KiB, 4MiB), found \"0\"");
        CHECK(only_error(std::string(two_hosts) + "fault client connect offset 5 -> ECONNREFUSED") ==
              "t.scn:3:22: expected a selector other than offset S for connect (offset S needs send, writev, recv "
              "or readv), found \"offset\"");
    }
}

TEST_CASE("every limit of the runner is checked where it is written, with the maximum", "[scenario][limits]") {
    const std::string apps = std::string(two_hosts) + "app server frame-echo\n";
    SECTION("connections: one ephemeral port each on a host, and in all") {
        CHECK(only_error(apps + "app client frame-client connect server:7 conns 100000000") ==
              "t.scn:4:48: expected a whole number from 1 to 32768, found \"100000000\": too large (at most 32768, "
              "one ephemeral port each)");
        CHECK(parse(apps + "app client frame-client connect server:7 conns 32768 frames 32768 in-flight 1\n"
                           "expect no-fd-leak")
                  .ok());
        const std::string error = only_error(apps +
                                             "app client frame-client connect server:7 conns 32768 in-flight 1\n"
                                             "app client idle-client name idle connect server:7");
        CHECK(
            error.starts_with("t.scn:5:1: expected a client on a host with connections left, found \"app\": too many "
                              "(at most 32768 connections from "
                              "one host, one ephemeral port each; 32768 are taken by apps above)"));
        std::string hosts;
        std::string clients;
        for (int i = 0; i < 3; ++i) {
            hosts += "host h" + std::to_string(i) + "\n";
            clients += "app h" + std::to_string(i) + " frame-client connect server:7 conns 30000 frames 0\n";
        }
        CHECK(only_error(apps + hosts + clients)
                  .starts_with("t.scn:9:44: expected fewer conns, found \"30000\": too many "
                               "(at most 65536 connections in all"));
    }
    SECTION("frames and bytes in flight, in all") {
        CHECK(only_error(apps + "app client frame-client connect server:7 frames 16777217")
                  .ends_with("too large (at most 16777216, frames in all)"));
        CHECK(only_error(apps + "app client frame-client connect server:7 frames 16777216\n"
                                "app client reconnecting-client name r connect server:7 frames 1")
                  .starts_with(
                      "t.scn:5:63: expected fewer frames, found \"1\": too many (at most 16777216 frames in all"));
        CHECK(only_error(apps + "app client frame-client connect server:7 conns 64 in-flight 64 size 64KiB frames 4096")
                  .starts_with("t.scn:4:61: expected fewer in-flight (or conns, or a smaller size), found \"64\": too "
                               "many (conns x in-flight x (size + "
                               "20) is at most 268435456 bytes (256 MiB) in all"));
        CHECK(parse(apps + "app client frame-client connect server:7 conns 64 in-flight 64 size 60KiB frames 4096\n"
                           "expect no-fd-leak")
                  .ok());
        // A connection never has more in flight than its share of the frames.
        CHECK(parse(apps + "app client frame-client connect server:7 conns 64 in-flight 64 size 64KiB frames 64\n"
                           "expect no-fd-leak")
                  .ok());
        CHECK(parse(apps + "app client frame-client connect server:7 size 16777196 frames 2\nexpect no-fd-leak").ok());
        CHECK(only_error(apps + "app client frame-client connect server:7 size 16777196 frames 32").find(
                  "expected fewer in-flight") != std::string::npos);
    }
    SECTION("frames, chunks, backlogs, buffers and retries") {
        CHECK(only_error(apps + "app client frame-client connect server:7 size 16MiB")
                  .ends_with("found \"16MiB\": too large (at most 16777196, a frame with its 20-byte header)"));
        CHECK(
            parse(apps + "app client frame-client connect server:7 size 16777196 in-flight 1\nexpect no-fd-leak").ok());
        CHECK(only_error(std::string(two_hosts) + "app server frame-echo max-frame 0") ==
              "t.scn:3:33: expected a size of at least 20 bytes (64, 16KiB, 4MiB), found \"0\"");
        CHECK(only_error(std::string(two_hosts) + "app server frame-echo max-frame 17MiB")
                  .ends_with("too large (at most 16M, the header included)"));
        CHECK(only_error(std::string(two_hosts) + "app server frame-echo backlog 65536")
                  .ends_with("too large (at most 65535, what listen(2) takes)"));
        CHECK(only_error(std::string(two_hosts) + "app client bulk-sender connect server:7 bytes 1M chunk 0") ==
              "t.scn:3:56: expected a size of at least 1 byte (64, 16KiB, 4MiB), found \"0\"");
        CHECK(only_error(std::string(two_hosts) + "app client bulk-sender connect server:7 bytes 1M chunk 17M")
                  .ends_with("too large (at most 16M, bytes per send)"));
        CHECK(only_error(std::string(two_hosts) + "app client bulk-sender connect server:7 bytes 2000G")
                  .starts_with("t.scn:3:47: expected a size in bytes (64, 16KiB, 4MiB), found \"2000G\""));
        CHECK(only_error(std::string(two_hosts) + "app client bulk-sender connect server:7 bytes 2000000M")
                  .ends_with("too large (at most 1048576M)"));
        CHECK(only_error(std::string(two_hosts) + "app client idle-client connect server:7 dead-after 1001")
                  .ends_with("too large (at most 1000, heartbeat intervals)"));
        CHECK(only_error("tcp syn-retries 21") ==
              "t.scn:1:17: expected a whole number from 0 to 20, found \"21\": too large (at most 20)");
        CHECK(only_error("tcp send-buffer 2G").starts_with("t.scn:1:17: expected a size of at least 4608 bytes"));
        CHECK(only_error("tcp send-buffer 2048M").ends_with("too large (at most 1024M)"));
        CHECK(only_error("tcp receive-buffer 100").starts_with("t.scn:1:20: expected a size of at least 2304 bytes"));
        CHECK(only_error("tcp rto-min 0") == "t.scn:1:13: expected a duration of at least 1ms, found \"0\"");
        CHECK(only_error("tcp rto-min 121s").ends_with("too long (at most 2m)"));
    }
    SECTION("reconnect schedules and heartbeats that make no connection") {
        CHECK(only_error(apps + "app client reconnecting-client connect server:7 backoff 0") ==
              "t.scn:4:57: expected a backoff above 0 (the delay before the first retry), found \"0\"");
        CHECK(only_error(apps + "app client reconnecting-client connect server:7 backoff 2m") ==
              "t.scn:4:57: expected a backoff-max of at least the backoff (2m), found \"2m\"");
        CHECK(only_error(apps + "app client idle-client connect server:7 heartbeat 0 dead-after 2")
                  .starts_with("t.scn:4:64: expected dead-after 0 with heartbeat 0"));
        CHECK(parse(apps + "app client idle-client connect server:7 heartbeat 0 dead-after 0\nexpect no-fd-leak").ok());
        CHECK(parse(apps + "app client frame-client connect server:7 connect-timeout 0\nexpect no-fd-leak").ok());
    }
    SECTION("hosts, apps, network faults and fault rules per host") {
        std::string hosts;
        for (std::size_t i = 0; i <= max_hosts; ++i)
            hosts += "host h" + std::to_string(i) + "\n";
        CHECK(only_error(hosts) == "t.scn:257:6: expected a host, found \"h256\": too many (at most 256 hosts)");
        std::string rules = std::string(two_hosts);
        for (std::size_t i = 0; i <= max_fault_rules_per_host; ++i)
            rules += "fault client recv call " + std::to_string(i + 1) + " -> EINTR\n";
        CHECK(only_error(rules + "fault server recv call 1 -> EINTR") ==
              "t.scn:259:7: expected a host with fewer fault rules, found \"client\": too many (at most 256 fault "
              "rules on one host)");
        std::string nets = std::string(two_hosts);
        for (std::size_t i = 0; i <= max_net_faults; ++i)
            nets += "net delay client->server extra 1ms\n";
        CHECK(
            only_error(nets).starts_with("t.scn:1027:1: expected fewer net statements, found \"net\": too many "
                                         "(at most 1024 network faults)"));
        std::string many_apps = "host a\n";
        for (std::size_t i = 0; i <= max_apps; ++i)
            many_apps += "app a frame-echo name e" + std::to_string(i) + " port " + std::to_string(i + 1) + "\n";
        CHECK(
            only_error(many_apps).starts_with("t.scn:1026:1: expected an app, found \"app\": too many (at most "
                                              "1024 apps)"));
    }
    SECTION("a file over 1 MiB is refused whole") {
        const ParseResult big = parse(std::string(max_file_bytes + 1, '#'));
        REQUIRE(big.errors.size() == 1);
        CHECK(big.errors.front() == "t.scn:1:1: expected a file of at most 1048576 bytes (1 MiB), found 1048577 bytes");
    }
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

namespace eagain::harness {
namespace {

// The docs' two tables of app kinds, row by row: "| `kind` | ... |".
std::map<std::string, std::vector<std::string>> docs_rows(std::string_view first_header) {
    std::ifstream in(std::string(EAGAIN_SOURCE_DIR) + "/docs/scenario-language.md");
    REQUIRE(in);
    std::map<std::string, std::vector<std::string>> rows;
    bool inside = false;
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with(first_header)) {
            inside = true;
            continue;
        }
        if (!inside || line.starts_with("|---"))
            continue;
        if (!line.starts_with("| `"))
            break;
        std::vector<std::string> cells;
        std::size_t at = 1;
        for (std::size_t bar; (bar = line.find(" |", at)) != std::string::npos; at = bar + 2)
            cells.push_back(line.substr(at + 1, bar - at - 1));
        const std::string kind = cells.front().substr(1, cells.front().size() - 2);
        rows[kind] = cells;
    }
    return rows;
}

}  // namespace

TEST_CASE("the docs' tables of app kinds say what each kind's entry says", "[scenario]") {
    const auto options = docs_rows("| kind | what it does | options (defaults) |");
    const auto checks = docs_rows("| kind | actions | expectations |");
    REQUIRE(options.size() == app_kind_entries().size());
    REQUIRE(checks.size() == app_kind_entries().size());
    const auto listed = [](const std::string& cell) {
        std::vector<std::string> words;
        for (std::size_t open = cell.find('`'); open != std::string::npos; open = cell.find('`', open)) {
            const std::size_t close = cell.find('`', open + 1);
            words.push_back(cell.substr(open + 1, close - open - 1));
            open = close + 1;
        }
        return words;
    };
    for (const AppKindEntry& kind : app_kind_entries()) {
        const std::string name(kind.kind);
        INFO(name);
        REQUIRE(options.contains(name));
        for (const OptionRule& rule : kind.options)
            CHECK(options.at(name).back().find("`" + std::string(rule.key)) != std::string::npos);
        REQUIRE(checks.contains(name));
        CHECK(listed(checks.at(name)[1]) == std::vector<std::string>(kind.actions.begin(), kind.actions.end()));
        CHECK(listed(checks.at(name)[2]) ==
              std::vector<std::string>(kind.expectations.begin(), kind.expectations.end()));
    }
}

}  // namespace eagain::harness

namespace eagain::harness {

// ===========================================================================
// Fault files (parse_fault_file): what the preload shim reads

TEST_CASE("a fault file gives its target rules in order, comments and blank lines skipped", "[scenario][fault-file]") {
    const FaultFileResult result = parse_fault_file(R"(# faults for the program under the shim

fault target send call 1 -> short 3
  fault target recv every 2 times 4 -> EAGAIN   # trailing comment
fault target accept4 calls 1,3 -> EMFILE
)",
                                                    "f.faults");
    REQUIRE(result.errors == std::vector<std::string>{});
    REQUIRE(result.rules.size() == 3);
    CHECK(result.rules[0].call == SysCall::send);
    CHECK(result.rules[0].when == CallSelector::nth_call);
    CHECK(result.rules[0].call_number == 1);
    CHECK(result.rules[0].fault == FaultKind::short_transfer);
    CHECK(result.rules[0].short_limit_bytes == 3);
    CHECK(result.rules[1].call == SysCall::recv);
    CHECK(result.rules[1].when == CallSelector::every_kth_call);
    CHECK(result.rules[1].max_hits == std::optional<std::uint64_t>(4));
    CHECK(result.rules[2].call_list == std::vector<std::uint64_t>{1, 3});
    CHECK(result.rules[2].fault == FaultKind::emfile);
    CHECK(parse_fault_file("", "empty.faults").ok());
    CHECK(parse_fault_file("# nothing\n\n", "empty.faults").rules.empty());
}

TEST_CASE("a fault file refuses other statements, other hosts and bad faults, with file:line:col", "[scenario][fault-file]") {
    const auto errors = [](std::string_view text) { return parse_fault_file(text, "f.faults").errors; };
    CHECK(errors("host server\n") ==
          std::vector<std::string>{
              "f.faults:1:1: expected a fault statement (fault target CALL SELECTOR -> RESULT), found \"host\""});
    CHECK(errors("\nfault server send call 1 -> EPIPE\n") ==
          std::vector<std::string>{"f.faults:2:7: expected the host word \"target\", found \"server\""});
    CHECK(errors("fault\n") ==
          std::vector<std::string>{"f.faults:1:6: expected the host word \"target\", found end of line"});
    CHECK(errors("fault target recv call 1 -> EPIPE\n") ==
          std::vector<std::string>{"f.faults:1:29: expected a fault FaultySys can inject here (Linux cannot return "
                                   "this fault from this call), found \"EPIPE\""});
    CHECK(errors("fault target sned call 1 -> EAGAIN\n").front().starts_with("f.faults:1:14: expected a syscall name"));
    CHECK(errors("expect no-fd-leak\nfault target send call 1 -> EPIPE\n").size() == 1);
    const FaultFileResult mixed = parse_fault_file("fault target send call 1 -> EPIPE\nseed 3\n", "f.faults");
    CHECK(mixed.errors.size() == 1);
    CHECK(mixed.rules.empty());  // a file with errors gives no rules
}

}  // namespace eagain::harness
