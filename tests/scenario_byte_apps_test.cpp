// The byte-stream app kinds (apps/byte_apps.h, as harness/byte_apps.cpp
// runs them) in scenarios: what each promises, checked through the runner's
// expectations and the trace, and, for the pitfalls they guard against, a
// deliberately buggy app in their place that the same scenario catches.
#include "core/transport.h"
#include "apps/byte_pattern.h"
#include "harness/runner.h"
#include "harness/scenario.h"
#include "tests/scenarios/naive_echo_server.h"

#include <catch2/catch.hpp>

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace eagain::harness {
namespace {

using namespace std::chrono_literals;

Scenario parsed(std::string_view text) {
    ParseResult result = parse_scenario(text, "t.scn");
    INFO((result.errors.empty() ? std::string() : result.errors.front()));
    REQUIRE(result.ok());
    return std::move(result.scenario);
}

Scenario load(const std::string& relative) {
    std::ifstream in(std::string(EAGAIN_SOURCE_DIR) + "/" + relative);
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    return parsed(text.str());
}

std::string failures_text(const ScenarioReport& report) {
    std::string text = report.setup_error;
    for (const ExpectationFailure& failure : report.failures)
        text += failure.expectation + " -> " + failure.happened + "\n";
    return text;
}

const ExpectationFailure* failure_of(const ScenarioReport& report, std::string_view expectation) {
    for (const ExpectationFailure& failure : report.failures) {
        if (failure.expectation == expectation)
            return &failure;
    }
    return nullptr;
}

// One traced syscall: {"t":...,"ev":"sys","host":H,"call":C,...,"len":N,"ret":N | "err":E}.
struct TracedCall {
    Nanos at{};
    std::uint64_t len = 0;
    std::optional<std::uint64_t> ret;
    std::string err;
};

std::optional<std::uint64_t> number_field(std::string_view line, std::string_view key) {
    const std::string pattern = "\"" + std::string(key) + "\":";
    const std::size_t at = line.find(pattern);
    if (at == std::string_view::npos)
        return std::nullopt;
    std::uint64_t value = 0;
    std::size_t i = at + pattern.size();
    if (i >= line.size() || line[i] < '0' || line[i] > '9')
        return std::nullopt;
    for (; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i)
        value = value * 10 + static_cast<std::uint64_t>(line[i] - '0');
    return value;
}

// Collects one host's calls of one syscall from the trace as it is written.
struct CallLog {
    std::vector<TracedCall> calls;

    std::function<void(std::string_view)> sink(std::string host, std::string call) {
        const std::string wanted = R"("ev":"sys","host":")" + host + R"(","call":")" + call + "\"";
        return [this, wanted](std::string_view line) {
            if (line.find(wanted) == std::string_view::npos)
                return;
            TracedCall c;
            c.at = Nanos(static_cast<Nanos::rep>(number_field(line, "t").value_or(0)));
            c.len = number_field(line, "len").value_or(0);
            c.ret = number_field(line, "ret");
            const std::size_t err = line.find(R"("err":")");
            if (err != std::string_view::npos)
                c.err = std::string(line.substr(err + 7, line.find('"', err + 7) - err - 7));
            calls.push_back(std::move(c));
        };
    }
    std::uint64_t bytes_taken() const {
        std::uint64_t total = 0;
        for (const TracedCall& c : calls)
            total += c.ret.value_or(0);
        return total;
    }
    std::size_t count(const std::function<bool(const TracedCall&)>& matches) const {
        return static_cast<std::size_t>(std::count_if(calls.begin(), calls.end(), matches));
    }
};

// bulk-sender written the seeds' way, WRONG ON PURPOSE: send()'s count is
// never looked at ("the kernel takes what I give it"), so the rest of every
// short write is lost. Otherwise careful: EAGAIN and EINTR wait for the next
// EPOLLOUT, the FIN goes after the last chunk, recv 0 closes.
class CountIgnoringSender final : public App, private Reactor::Handler {
public:
    explicit CountIgnoringSender(const AppContext& context)
        : reactor_(context.reactor),
          server_(context.address),
          total_bytes_(parse_size(context.spec.options.at("bytes")).value_or(0)) {}
    ~CountIgnoringSender() override { stop(); }

    VoidResult start() override {
        const Transport::ConnectStart connect = Transport::start_connect(reactor_.sys(), server_);
        if (connect.status == ConnectStatus::failed) {
            ended_ = true;
            return VoidResult::success({});
        }
        fd_ = connect.fd;
        (void)reactor_.add(fd_, EPOLLIN | EPOLLOUT, *this);
        return VoidResult::success({});
    }
    void stop() override {
        if (fd_ >= 0) {
            (void)reactor_.remove(fd_);
            (void)reactor_.sys().close(fd_);
            fd_ = -1;
        }
        ended_ = true;
    }
    bool done() const override { return ended_; }
    void act(std::string_view /*action*/) override {}
    AppObservations observations() const override { return {}; }

private:
    void on_ready(std::uint32_t events) override {
        Sys& sys = reactor_.sys();
        if ((events & EPOLLIN) != 0) {
            std::array<std::uint8_t, 4096> scratch{};
            const SizeResult r = sys.recv(fd_, scratch, 0);
            if ((r.ok() && r.value == 0) || (!r.ok() && !would_block(r.error) && r.error != EINTR)) {
                stop();
                return;
            }
        }
        if ((events & EPOLLOUT) == 0 || shut_)
            return;
        for (int call = 0; call < 1000 && sent_bytes_ < total_bytes_; ++call) {
            chunk_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(64 * 1024, total_bytes_ - sent_bytes_)));
            fill_stream_pattern(sent_bytes_, chunk_);
            const SizeResult r = sys.send(fd_, chunk_, MSG_NOSIGNAL);
            if (!r.ok()) {
                if (!would_block(r.error) && r.error != EINTR)
                    stop();
                return;
            }
            sent_bytes_ += chunk_.size();  // the pitfall: not r.value
        }
        if (sent_bytes_ >= total_bytes_) {
            (void)sys.shutdown(fd_, SHUT_WR);
            shut_ = true;
            (void)reactor_.modify(fd_, EPOLLIN);
        }
    }

    Reactor& reactor_;
    SockAddr server_;
    std::uint64_t total_bytes_;
    std::vector<std::uint8_t> chunk_;
    std::uint64_t sent_bytes_ = 0;
    int fd_ = -1;
    bool shut_ = false;
    bool ended_ = false;
};

std::string bulk_short_writes(std::string_view trigger) {
    return "host receiver\nhost sender\n"
           "app receiver bulk-receiver port 9 bytes 1MiB trigger " +
           std::string(trigger) +
           "\n"
           "app sender bulk-sender connect receiver:9 bytes 1MiB trigger " +
           std::string(trigger) + R"(
fault sender send every 3 -> short 7
fault receiver recv every 2 -> short 1000
expect receiver bytes-received 1MiB
expect receiver no-errors
expect receiver state closed
expect sender no-errors
expect sender state established
expect sender max-buffered 64KiB
expect no-fd-leak
expect no-sigpipe
expect done-by 10s
)";
}

}  // namespace

TEST_CASE("the stream pattern has a prime period and catches a slip of any chunk size at once", "[scenario][bytes]") {
    CHECK(stream_pattern_byte(0) == stream_pattern_byte(stream_pattern_period_bytes));
    CHECK(stream_pattern_byte(12345) == stream_pattern_byte(12345 + 3 * stream_pattern_period_bytes));
    std::vector<std::uint8_t> stream(4096);
    fill_stream_pattern(1'000'000, stream);
    CHECK_FALSE(first_pattern_mismatch(1'000'000, stream));
    // The bytes that should be at some offset, read as if they were
    // elsewhere: a lost, repeated or reordered stretch of any usual length.
    for (const std::uint64_t slip : {1ULL, 7ULL, 1460ULL, 4096ULL, 65536ULL, 1ULL << 20}) {
        const std::optional<std::size_t> wrong = first_pattern_mismatch(1'000'000 + slip, stream);
        INFO("slip " << slip);
        REQUIRE(wrong);
        CHECK(*wrong < 4);
    }
}

TEST_CASE("bulk-sender's 1MiB reaches bulk-receiver intact through short sends and short reads", "[scenario][bytes]") {
    const std::string trigger = GENERATE("level", "edge");
    CallLog sends;
    ScenarioRunOptions options;
    options.trace_sink = sends.sink("sender", "send");
    const ScenarioReport report = run_scenario(parsed(bulk_short_writes(trigger)), options);
    INFO(trigger << ": " << failures_text(report));
    REQUIRE(report.setup_error.empty());
    CHECK(report.passed);
    // The short writes happened, and every byte was handed over exactly once.
    const auto short_sends = std::count_if(report.injected.begin(), report.injected.end(), [](const InjectedFault& f) {
        return f.host == "sender" && f.event.fault == FaultKind::short_transfer && f.event.requested_bytes > 7;
    });
    CHECK(short_sends >= 10);
    CHECK(sends.bytes_taken() == 1024 * 1024);
}

TEST_CASE("a sender that ignores send()'s count is caught at the first byte it lost", "[scenario][bytes]") {
    ScenarioRunOptions options;
    options.apps["bulk-sender"] = [](const AppContext& context) {
        return std::make_unique<CountIgnoringSender>(context);
    };
    const ScenarioReport report = run_scenario(parsed(bulk_short_writes("level")), options);
    INFO(failures_text(report));
    REQUIRE(report.setup_error.empty());
    CHECK_FALSE(report.passed);
    const ExpectationFailure* received = failure_of(report, "expect receiver bytes-received 1MiB");
    REQUIRE(received != nullptr);
    // The 3rd send moved 7 bytes of its 64KiB chunk; the receiver finds the
    // stream out of step at the first byte of the next chunk.
    CHECK(received->happened.find(" received, 1 wrong; first problem: connection 1: byte at offset ") !=
          std::string::npos);
    CHECK(received->expected == "1048576 bytes received, all intact");

    SECTION("and so does partial-writes/bulk-short-writes.scn, which passes with the real sender") {
        const Scenario file = load("scenarios/partial-writes/bulk-short-writes.scn");
        const ScenarioReport correct = run_scenario(file);
        INFO(failures_text(correct));
        CHECK(correct.passed);
        const ScenarioReport naive = run_scenario(file, options);
        INFO(failures_text(naive));
        REQUIRE(naive.setup_error.empty());
        CHECK(failure_of(naive, "expect receiver bytes-received 1MiB") != nullptr);
    }
}

TEST_CASE("a stalled bulk-receiver: the sender's sends turn short, then EAGAIN, and it waits holding one chunk",
          "[scenario][bytes]") {
    CallLog sends;
    ScenarioRunOptions options;
    options.trace_sink = sends.sink("sender", "send");
    const ScenarioReport report = run_scenario(parsed(R"(
network latency 500us
host receiver
host sender
app receiver bulk-receiver port 9 bytes 4MiB
app sender bulk-sender connect receiver:9 bytes 4MiB chunk 24KiB
at 0 receiver stop-reading
at 2s receiver resume-reading
expect receiver bytes-received 4MiB
expect receiver no-errors
expect sender no-errors
expect sender max-buffered 24KiB
expect no-fd-leak
expect done-by 10s
)"),
                                               options);
    INFO(failures_text(report));
    REQUIRE(report.setup_error.empty());
    CHECK(report.passed);
    const auto stalled = [](const TracedCall& c) { return c.at < 2s; };
    CHECK(sends.count([&](const TracedCall& c) { return stalled(c) && c.ret && *c.ret < c.len; }) >= 1);
    CHECK(sends.count([&](const TracedCall& c) { return stalled(c) && c.err == "EAGAIN"; }) >= 1);
    // After the window shut the sender sleeps on EPOLLOUT: no send until
    // the receiver reads again (a spinning sender would make thousands).
    CHECK(sends.count([](const TracedCall& c) { return c.at > 10ms && c.at < 2s; }) == 0);
    CHECK(sends.bytes_taken() == 4 * 1024 * 1024);
    CHECK(report.virtual_time > 2s);

    SECTION("the sender's peak of unsent bytes is the chunk it offered, and a smaller bound fails saying so") {
        const ScenarioReport tight = run_scenario(parsed(R"(
host receiver
host sender
app receiver bulk-receiver port 9 bytes 1MiB
app sender bulk-sender connect receiver:9 bytes 1MiB chunk 24KiB
at 0 receiver stop-reading
at 1s receiver resume-reading
expect sender max-buffered 24575
)"));
        REQUIRE(tight.failures.size() == 1);
        CHECK(tight.failures.front().happened == "24576 bytes buffered at the peak");
    }
}

TEST_CASE("byte-echo echoes frames intact under short writes, EAGAIN and EINTR, level- and edge-triggered",
          "[scenario][bytes]") {
    const std::string trigger = GENERATE("level", "edge");
    // Edge-triggered on strict edges: bytes left unread never bring another wake-up.
    const std::string text = "host server" + std::string(trigger == "edge" ? " edge strict" : "") +
                             "\nhost client\napp server byte-echo port 7 trigger " + trigger + R"(
app client frame-client connect server:7 frames 500 size 4KiB in-flight 16
fault server send every 3 -> short 7
fault server send every 5 -> EAGAIN
fault server send every 7 -> EINTR
fault server recv every 2 -> short 1000
fault server recv every 5 -> EINTR
fault server recv every 11 -> EAGAIN
fault server accept4 call 1 -> EINTR
expect client frames-verified 500
expect client no-errors
expect server no-errors
expect server state closed
expect no-fd-leak
expect no-sigpipe
expect done-by 10s
)";
    const Scenario scenario = parsed(text);
    const ScenarioReport report = run_scenario(scenario);
    INFO(trigger << ": " << failures_text(report));
    REQUIRE(report.setup_error.empty());
    CHECK(report.passed);
    CHECK(report.faults_injected >= 50);  // every rule fires many times over 2 MiB each way

    SECTION("an echo that ignores send()'s count fails the same scenario") {
        ScenarioRunOptions naive;
        naive.apps["byte-echo"] = [](const AppContext& context) {
            return std::make_unique<scenarios::NaiveEchoServer>(context,
                                                                scenarios::NaivePitfall::ignores_partial_writes);
        };
        const ScenarioReport caught = run_scenario(scenario, naive);
        INFO(failures_text(caught));
        REQUIRE(caught.setup_error.empty());
        CHECK(failure_of(caught, "expect client frames-verified 500") != nullptr);
    }
}

TEST_CASE("edge-triggered byte-echo-drains-to-eagain catches an echo that reads once per edge", "[scenario][bytes]") {
    const Scenario scenario = load("scenarios/epoll/byte-echo-drains-to-eagain.scn");
    const ScenarioReport correct = run_scenario(scenario);
    INFO(failures_text(correct));
    CHECK(correct.passed);

    ScenarioRunOptions naive;
    naive.apps["byte-echo"] = [](const AppContext& context) {
        return std::make_unique<scenarios::NaiveEchoServer>(context, scenarios::NaivePitfall::et_reads_once);
    };
    const ScenarioReport stalled = run_scenario(scenario, naive);
    INFO(failures_text(stalled));
    REQUIRE(stalled.setup_error.empty());
    CHECK_FALSE(stalled.passed);
    const ExpectationFailure* done = failure_of(stalled, "expect done-by 10s");
    REQUIRE(done != nullptr);
    CHECK(done->happened.starts_with("still running"));
}

TEST_CASE("byte-echo whose peer stops reading holds at most its bound, and stops reading itself", "[scenario][bytes]") {
    CallLog recvs;
    ScenarioRunOptions options;
    options.trace_sink = recvs.sink("server", "recv");
    // The client never resumes: the run ends at done-by with the client
    // still blocked, which is the point.
    const ScenarioReport report = run_scenario(parsed(R"(
host server
host client
app server byte-echo port 7
app client bulk-sender connect server:7 bytes 16MiB
at 0 client stop-reading
expect server max-buffered 128KiB
expect server no-errors
expect done-by 5s
)"),
                                               options);
    INFO(failures_text(report));
    REQUIRE(report.setup_error.empty());
    REQUIRE(report.failures.size() == 1);
    CHECK(report.failures.front().expectation == "expect done-by 5s");
    // The echo read no more than its bound, the client's receive buffer and
    // the kernel send buffer take (128 + 128 + 64 KiB) and then stopped:
    // nothing read after the first few milliseconds.
    CHECK(recvs.bytes_taken() <= 320 * 1024);
    CHECK(recvs.count([](const TracedCall& c) { return c.at > 100ms; }) == 0);

    SECTION("and once its peer reads again everything flows, within the same bound") {
        const ScenarioReport resumed = run_scenario(parsed(R"(
host server
host client
app server byte-echo port 7
app client bulk-sender connect server:7 bytes 4MiB
at 0 client stop-reading
at 2s client resume-reading
expect server max-buffered 128KiB
expect server no-errors
expect client no-errors
expect no-fd-leak
expect done-by 10s
)"));
        INFO(failures_text(resumed));
        CHECK(resumed.passed);
    }
}

TEST_CASE("a failing byte expectation says what was observed", "[scenario][bytes]") {
    const ScenarioReport report = run_scenario(parsed(R"(
host receiver
host sender
app receiver bulk-receiver port 9 bytes 1MiB
app sender bulk-sender connect receiver:9 bytes 512KiB
expect receiver bytes-received 1MiB
expect receiver no-errors
expect sender no-errors
expect done-by 10s
)"));
    REQUIRE(report.setup_error.empty());
    REQUIRE(report.failures.size() == 2);
    CHECK(report.failures[0].expectation == "expect receiver bytes-received 1MiB");
    CHECK(report.failures[0].happened ==
          "524288 received, 0 wrong; first problem: connection 1: ended after 524288 of 1048576 bytes: peer_closed");
    CHECK(report.failures[1].expectation == "expect receiver no-errors");
    CHECK(report.failures[1].happened ==
          "1 errors, 0 mismatches; first problem: connection 1: ended after 524288 of 1048576 bytes: peer_closed");
}

TEST_CASE("a reset reaches both byte apps as ECONNRESET, and connect errors end a sender", "[scenario][bytes]") {
    SECTION("reset mid-stream") {
        const ScenarioReport report = run_scenario(parsed(R"(
host receiver
host sender
app receiver bulk-receiver port 9 bytes 1MiB
app sender bulk-sender connect receiver:9 bytes 1MiB
net reset receiver port 9 offset 100000
expect receiver error ECONNRESET
expect sender error ECONNRESET
expect sender state closed
expect receiver no-errors
expect no-fd-leak
expect no-sigpipe
expect done-by 10s
)"));
        REQUIRE(report.setup_error.empty());
        REQUIRE(report.failures.size() == 1);
        CHECK(report.failures.front().happened ==
              "1 errors, 0 mismatches; first problem: connection 1: ended after 100000 of 1048576 bytes: reset "
              "(ECONNRESET)");
    }
    SECTION("connection refused") {
        const ScenarioReport report = run_scenario(parsed(R"(
host receiver
host sender
app receiver bulk-receiver port 9 bytes 1MiB
app sender bulk-sender connect receiver:10 bytes 1MiB
expect sender error ECONNREFUSED
expect sender state established
expect no-fd-leak
expect done-by 10s
)"));
        REQUIRE(report.setup_error.empty());
        REQUIRE(report.failures.size() == 1);
        CHECK(report.failures.front().happened == "states reached: closed, connecting");
    }
}

TEST_CASE("byte apps refuse expectations they do not observe, the servers take a backlog", "[scenario][bytes]") {
    const ParseResult refused = parse_scenario(R"(
host receiver
host sender
app receiver bulk-receiver port 9 bytes 1MiB backlog 16
app sender bulk-sender connect receiver:9 bytes 1MiB
expect sender bytes-received 1MiB
)",
                                               "t.scn");
    REQUIRE(refused.errors.size() == 1);
    CHECK(refused.errors.front().starts_with("t.scn:6:15: expected an expectation bulk-sender observes"));
    Scenario scenario = parsed(R"(
host receiver
host sender
app receiver bulk-receiver port 9 bytes 1MiB backlog 16
app sender bulk-sender connect receiver:9 bytes 1MiB
expect sender no-errors
)");
    scenario.expectations.back().what = "bytes-received";
    CHECK(run_scenario(scenario).setup_error == "t.scn:6:1: expectation bytes-received: bulk-sender does not observe it");
    const ParseResult frame_client =
        parse_scenario("host a\napp a frame-client connect a:7 backlog 16\nexpect no-fd-leak\n", "t.scn");
    REQUIRE(frame_client.errors.size() == 1);
    CHECK(frame_client.errors.front().starts_with("t.scn:2:32: expected an option of frame-client"));
    CHECK(parse_scenario("host a\napp a byte-echo backlog 16\nexpect no-fd-leak\n", "t.scn").ok());
    CHECK_FALSE(parse_scenario("host a\napp a byte-echo backlog 0\nexpect no-fd-leak\n", "t.scn").ok());
}

}  // namespace eagain::harness
