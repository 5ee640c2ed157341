// `eagain verify`: its options and its run (tools/verify_command.cpp).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace eagain::tools {

struct VerifyArguments {
    std::string target;
    std::string protocol;
    std::vector<std::string> checks;
    std::uint64_t runs = 1;
    std::string report;
    std::string keep;
    std::string suite;
    std::string frame_spec;
    std::string max_frame;
    std::string preload;
    std::uint64_t seed = 1;
    bool list = false;
};

CLI::App* add_verify_command(CLI::App& app, VerifyArguments& arguments);
// The exit status: 0 all passed, 1 some failed, 2 bad usage, 3 some inconclusive.
int verify_command(const VerifyArguments& arguments);

}  // namespace eagain::tools
