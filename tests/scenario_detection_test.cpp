// Proof that the scenarios catch the bugs they say they guard against: each
// runs against the correct app and passes, then against a deliberately
// buggy one written the seeds' way (tests/scenarios/naive_echo_server.h)
// and fails, with the failure explained in terms of the pitfall.
#include "harness/runner.h"
#include "harness/scenario.h"
#include "tests/scenarios/naive_echo_server.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

namespace eagain::scenarios {
namespace {

harness::Scenario load(const std::string& relative) {
    const std::string path = std::string(EAGAIN_SOURCE_DIR) + "/" + relative;
    std::ifstream in(path);
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    harness::ParseResult parsed = harness::parse_scenario(text.str(), relative);
    INFO((parsed.errors.empty() ? std::string() : parsed.errors.front()));
    REQUIRE(parsed.ok());
    return std::move(parsed.scenario);
}

harness::ScenarioRunOptions with_naive_echo(NaivePitfall pitfall) {
    harness::ScenarioRunOptions options;
    options.apps["frame-echo"] = [pitfall](const harness::AppContext& context) {
        return std::make_unique<NaiveEchoServer>(context, pitfall);
    };
    return options;
}

std::string failed_expectations(const harness::ScenarioReport& report) {
    std::string text;
    for (const harness::ExpectationFailure& failure : report.failures)
        text += failure.expectation + " -> " + failure.happened + "\n";
    return text;
}

}  // namespace

TEST_CASE("short-send-at-echo-server catches a server that ignores send()'s count", "[scenario][detection]") {
    const harness::Scenario scenario = load("scenarios/partial-writes/short-send-at-echo-server.scn");
    const harness::ScenarioReport correct = run_scenario(scenario);
    INFO(failed_expectations(correct));
    CHECK(correct.passed);

    const harness::ScenarioReport naive = run_scenario(scenario, with_naive_echo(NaivePitfall::ignores_partial_writes));
    INFO(failed_expectations(naive));
    REQUIRE(naive.setup_error.empty());
    CHECK_FALSE(naive.passed);
    REQUIRE_FALSE(naive.failures.empty());
    // The lost bytes put the client's stream out of step: frames come back
    // wrong or not at all, and the run never completes.
    CHECK(naive.failures.front().expectation == "expect client frames-verified 300");
    CHECK(naive.failures.front().happened.find("verified") != std::string::npos);
}

TEST_CASE("eintr-on-send-recv-epoll-wait catches a server that treats EINTR as fatal", "[scenario][detection]") {
    const harness::Scenario scenario = load("scenarios/eintr/eintr-on-send-recv-epoll-wait.scn");
    const harness::ScenarioReport correct = run_scenario(scenario);
    INFO(failed_expectations(correct));
    CHECK(correct.passed);

    const harness::ScenarioReport naive = run_scenario(scenario, with_naive_echo(NaivePitfall::eintr_is_fatal));
    INFO(failed_expectations(naive));
    REQUIRE(naive.setup_error.empty());
    CHECK_FALSE(naive.passed);
    // The server closes healthy connections: the client's end early.
    const std::string failures = failed_expectations(naive);
    CHECK(failures.find("expect client no-errors -> ") != std::string::npos);
    CHECK(failures.find("ended after") != std::string::npos);
}

}  // namespace eagain::scenarios
