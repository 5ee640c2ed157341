// eagain: the scenario tool. So far one subcommand:
//
//   eagain check FILE...   parse and validate scenario files; print each
//                          problem as file:line:col: expected ..., found ...
//
// Exit 0 when every file is valid, 1 when any has problems, 2 on bad usage
// or a file that cannot be read. (run, sweep and explore come with the
// scenario runner; docs/scenario-language.md is the language.)
#include "harness/scenario.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

// The file's text, or nullopt if it cannot be read. Files are bounded: a
// scenario is a page of text, not a data set.
std::optional<std::string> read_file(const std::string& path) {
    constexpr std::size_t max_bytes = 1 << 20;
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    std::string text(max_bytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad())
        return std::nullopt;
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_bytes)
        return std::nullopt;
    return text;
}

int check(const std::vector<std::string>& files) {
    int status = 0;
    for (const std::string& file : files) {
        const std::optional<std::string> text = read_file(file);
        if (!text) {
            std::fprintf(stderr, "%s: cannot read (missing, unreadable or over 1 MiB)\n", file.c_str());
            status = 2;
            continue;
        }
        const eagain::harness::ParseResult result = eagain::harness::parse_scenario(*text, file);
        for (const std::string& error : result.errors)
            std::printf("%s\n", error.c_str());
        if (!result.ok()) {
            status = status == 0 ? 1 : status;
            continue;
        }
        const eagain::harness::Scenario& s = result.scenario;
        std::printf(
            "%s: ok (%zu hosts, %zu apps, %zu syscall faults, %zu network faults, %zu actions, %zu "
            "expectations)\n",
            file.c_str(), s.hosts.size(), s.apps.size(), s.syscall_faults.size(), s.net_faults.size(), s.actions.size(),
            s.expectations.size());
    }
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"eagain: deterministic simulation and fault injection for non-blocking TCP code"};
    app.require_subcommand(1);
    std::vector<std::string> files;
    CLI::App* check_command = app.add_subcommand("check", "parse and validate scenario files");
    check_command->add_option("files", files, "scenario files (.scn)")->required();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    if (check_command->parsed())
        return check(files);
    return 2;
}
