// Fuzz target: the scenario parser (harness/scenario.h) on arbitrary text.
// It must never crash, hang or grow without bound, and what it reports must
// keep its shape: at most max_errors errors, each "file:line:col: expected
// ..., found ..." with a line inside the input and a column inside its line
// (or just past it, for "found end of line"). A scenario it accepts must be
// accepted again, identically, when parsed a second time, and written back
// by format_scenario as text that parses and is written again the same.
#include "fuzz/fuzz_check.h"
#include "harness/scenario.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view file_name = "fuzz.scn";

std::size_t count_lines(std::string_view text) {
    std::size_t lines = 1;
    for (const char c : text)
        lines += c == '\n' ? 1 : 0;
    return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const eagain::harness::ParseResult result = eagain::harness::parse_scenario(text, file_name);
    EAGAIN_FUZZ_CHECK(result.errors.size() <= eagain::harness::max_errors, std::to_string(result.errors.size()));
    const std::size_t lines = count_lines(text);
    for (const std::string& error : result.errors) {
        EAGAIN_FUZZ_CHECK(error.starts_with(std::string(file_name) + ":"), error);
        EAGAIN_FUZZ_CHECK(error.find(": expected ") != std::string::npos, error);
        EAGAIN_FUZZ_CHECK(error.find(", found ") != std::string::npos, error);
        const std::size_t line = std::stoul(error.substr(file_name.size() + 1));
        EAGAIN_FUZZ_CHECK(line >= 1 && line <= lines, error);
        const std::size_t column_at = error.find(':', file_name.size() + 1) + 1;
        const std::size_t column = std::stoul(error.substr(column_at));
        EAGAIN_FUZZ_CHECK(column >= 1 && column <= eagain::harness::max_line_bytes + 2, error);
    }
    if (result.ok()) {
        const eagain::harness::ParseResult again = eagain::harness::parse_scenario(text, file_name);
        EAGAIN_FUZZ_CHECK(again.ok(), again.errors.front());
        EAGAIN_FUZZ_CHECK(again.scenario.hosts.size() == result.scenario.hosts.size(), "hosts differ");
        EAGAIN_FUZZ_CHECK(again.scenario.apps.size() == result.scenario.apps.size(), "apps differ");
        EAGAIN_FUZZ_CHECK(again.scenario.expectations.size() == result.scenario.expectations.size(),
                          "expectations differ");
        const std::string written = eagain::harness::format_scenario(result.scenario);
        const eagain::harness::ParseResult reread = eagain::harness::parse_scenario(written, file_name);
        EAGAIN_FUZZ_CHECK(reread.ok(), reread.errors.front() + "\n" + written);
        EAGAIN_FUZZ_CHECK(eagain::harness::format_scenario(reread.scenario) == written, written);
    }
    return 0;
}
