// Runs a libFuzzer target's LLVMFuzzerTestOneInput on files, without
// libFuzzer: the corpus-replay regression test of builds that are not
// instrumented for fuzzing (gcc, ASan-only).
//
//   fuzz_<name>_replay PATH...
//
// Each PATH is a file or a directory (walked recursively, in sorted order).
// Exits non-zero if a path does not exist or no input was run; a failing
// input aborts inside the target, which reports what failed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

bool collect(const fs::path& path, std::vector<fs::path>& inputs) {
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (error || !fs::exists(status)) {
        std::fprintf(stderr, "replay: %s: no such file or directory\n", path.c_str());
        return false;
    }
    if (fs::is_directory(status)) {
        std::vector<fs::path> found;
        for (const fs::directory_entry& entry : fs::recursive_directory_iterator(path)) {
            if (entry.is_regular_file()) {
                found.push_back(entry.path());
            }
        }
        std::sort(found.begin(), found.end());
        inputs.insert(inputs.end(), found.begin(), found.end());
    } else {
        inputs.push_back(path);
    }
    return true;
}

bool run(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        std::fprintf(stderr, "replay: %s: cannot open\n", path.c_str());
        return false;
    }
    const std::vector<char> contents{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    // A copy in an allocation of exactly the input's size, so that ASan
    // catches a read one past the end as libFuzzer's own driver does.
    const auto data = std::make_unique<std::uint8_t[]>(contents.size());
    std::copy(contents.begin(), contents.end(), data.get());
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), contents.size());
    LLVMFuzzerTestOneInput(data.get(), contents.size());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE_OR_DIRECTORY...\n", argv[0]);
        return 2;
    }
    std::vector<fs::path> inputs;
    bool paths_ok = true;
    for (int i = 1; i < argc; ++i) {
        paths_ok = collect(argv[i], inputs) && paths_ok;
    }
    std::size_t ran = 0;
    for (const fs::path& input : inputs) {
        if (!run(input)) {
            paths_ok = false;
            continue;
        }
        ++ran;
    }
    std::printf("replay: ran %zu inputs\n", ran);
    if (!paths_ok) {
        return 1;
    }
    if (ran == 0) {
        std::fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    return 0;
}
