// The .verify check files (harness/verify_check.h) and --frame-spec
// (harness/verify.h): what they read, and each mistake at its position.
#include "harness/verify.h"
#include "harness/verify_check.h"

#include <catch2/catch.hpp>

using namespace eagain;
using namespace eagain::harness::verify;

TEST_CASE("a check file reads into its peer, faults and oracles", "[verify]") {
    const CheckParse p = parse_check("# comment\n"
                                     "check stalled\n"
                                     "about \"a slow reader\"\n"
                                     "protocol frames\n"
                                     "fault target send every 2 -> short 7\n"
                                     "peer echo clients 3 bytes auto body 50 write 1 pause 5ms receive-buffer 4K "
                                     "stall 2s no-half-close\n"
                                     "deadline 30s\n"
                                     "expect echo-intact\n"
                                     "expect idle-cpu\n",
                                     "x.verify");
    REQUIRE(p.ok());
    const Check& c = p.check;
    CHECK(c.name == "stalled");
    CHECK(c.about == "a slow reader");
    CHECK(c.protocol == Protocol::frames);
    CHECK_FALSE(c.applies_to(Protocol::bytes));
    CHECK(c.peer.clients == 3);
    CHECK(c.peer.bytes == 0);  // auto
    CHECK(c.peer.body_bytes == 50);
    CHECK(c.peer.write_bytes == 1);
    CHECK(c.peer.pause == std::chrono::milliseconds{5});
    CHECK(c.peer.receive_buffer_bytes == 4096);
    CHECK(c.peer.stall == std::chrono::seconds{2});
    CHECK_FALSE(c.peer.half_close);
    CHECK(c.deadline == std::chrono::seconds{30});
    CHECK(c.oracles == std::vector<Oracle>{Oracle::echo_intact, Oracle::idle_cpu});
    REQUIRE(c.rules.size() == 1);
    CHECK(c.rules[0].call == SysCall::send);
    CHECK(c.rules[0].short_limit_bytes == 7);
    CHECK(fault_file_text(c) == "# x.verify\nfault target send every 2 -> short 7\n");
}

TEST_CASE("a check file's mistakes are reported at file:line:col", "[verify]") {
    const auto errors = [](std::string_view text) { return parse_check(text, "c.verify").errors; };
    CHECK(errors("check a\npeer echo\nexpect alive\nbogus 1\n") ==
          std::vector<std::string>{"c.verify:4:1: expected a statement (check, about, protocol, peer, fault, expect, "
                                   "deadline), found 'bogus'"});
    CHECK(errors("check a\npeer echo clients 0\nexpect alive\n") ==
          std::vector<std::string>{"c.verify:2:19: expected a size from 1 to 1000, found '0'"});
    CHECK(errors("check a\npeer echo stall\nexpect alive\n") ==
          std::vector<std::string>{"c.verify:2:16: expected a duration up to 60s, found end of line"});
    CHECK(errors("check A\npeer echo\nexpect alive\n") ==
          std::vector<std::string>{"c.verify:1:7: expected a check name (lower-case letters, digits and -), found 'A'"});
    CHECK(errors("check a\npeer echo\nexpect everything\n") ==
          std::vector<std::string>{"c.verify:3:8: expected an oracle (echo-intact, alive, idle-cpu, "
                                   "second-client-served, served-after, fd-baseline, hostile-closed), found "
                                   "'everything'"});
    // The fault statement is the scenario language's, at the file's position.
    const std::vector<std::string> fault = errors("check a\npeer echo\n  fault target recv every 0 -> EAGAIN\nexpect alive\n");
    REQUIRE(fault.size() == 1);
    CHECK(fault[0].rfind("c.verify:3:", 0) == 0);
    CHECK(errors("# nothing\n").size() == 3);  // no check, no peer, no expect
}

TEST_CASE("the --frame-spec option reads a length-field protocol over the default one", "[verify]") {
    std::string error;
    const std::optional<FrameSpec> plain = parse_frame_spec("", &error);
    REQUIRE(plain);
    CHECK(plain->header_bytes == 20);
    CHECK(plain->max_frame_bytes == 20 + (1U << 20));
    const std::optional<FrameSpec> spec = parse_frame_spec("header=8,offset=0,width=2,order=little,unsigned,adjust=-8,max-body=64K", &error);
    REQUIRE(spec);
    CHECK(spec->length_width_bytes == 2);
    CHECK(spec->length_byte_order == ByteOrder::little_endian);
    CHECK_FALSE(spec->length_signed);
    CHECK(spec->length_adjustment_bytes == -8);
    CHECK(spec->max_frame_bytes == 8 + 65536);
    CHECK_FALSE(parse_frame_spec("width=3", &error));
    CHECK(error == "length width must be 1, 2, 4 or 8 bytes");
    CHECK_FALSE(parse_frame_spec("colour=red", &error));
}
