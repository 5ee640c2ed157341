// Checks for the fuzz targets that stay on in release builds.
//
// A fuzz target's checks are its whole point, so they must not vanish under
// NDEBUG the way assert() does: a failed check prints what failed, the
// target's description of the input (spec, chunking) and aborts, which
// libFuzzer and the replay driver both report as a crash.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace eagain::fuzz {

// Prints the current input's scenario when a check fails; each target
// installs one for the duration of an input.
using ScenarioPrinter = void (*)(const void* scenario);

struct FailureContext {
    ScenarioPrinter printer = nullptr;
    const void* scenario = nullptr;
};

inline FailureContext& failure_context() noexcept {
    static FailureContext context;
    return context;
}

// Installs a scenario printer until destroyed (one per fuzz input).
class ScopedScenario {
public:
    ScopedScenario(ScenarioPrinter printer, const void* scenario) noexcept { failure_context() = {printer, scenario}; }
    ~ScopedScenario() { failure_context() = {}; }
    ScopedScenario(const ScopedScenario&) = delete;
    ScopedScenario& operator=(const ScopedScenario&) = delete;
};

// EAGAIN_FUZZ_VERBOSE=1 makes targets describe each input they run (for
// checking what a seed means; far too slow for fuzzing).
inline bool verbose() {
    static const bool on = [] {
        const char* value = std::getenv("EAGAIN_FUZZ_VERBOSE");
        return value != nullptr && *value != '\0' && *value != '0';
    }();
    return on;
}

[[noreturn]] inline void check_failed(const char* expression, const char* file, int line,
                                      const std::string& detail) noexcept {
    std::fprintf(stderr, "\n%s:%d: fuzz check failed: %s\n", file, line, expression);
    if (!detail.empty()) {
        std::fprintf(stderr, "  %s\n", detail.c_str());
    }
    const FailureContext& context = failure_context();
    if (context.printer != nullptr) {
        context.printer(context.scenario);
    }
    std::fflush(stderr);
    std::abort();
}

}  // namespace eagain::fuzz

// A macro only because the report needs the expression's text and location
// (as EAGAIN_ASSERT). detail is a std::string expression evaluated only when
// the check fails, so building it costs nothing on the fast path.
#define EAGAIN_FUZZ_CHECK(condition, detail) \
    ((condition) ? static_cast<void>(0) : ::eagain::fuzz::check_failed(#condition, __FILE__, __LINE__, (detail)))
