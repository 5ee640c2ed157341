// Rng: the one random number generator of everything whose output must be
// reproducible from a seed (fault probabilities, jitter, the simulation).
//
// xoshiro256** seeded through splitmix64, with our own range reduction, so
// the sequence is the same under every compiler and standard library;
// std::*_distribution is not (its algorithms are unspecified).
#pragma once

#include "core/assert.h"

#include <array>
#include <cstdint>
#include <string_view>

namespace eagain {

class Rng {
    __extension__ using u128 = unsigned __int128;  // gcc and clang both have it

public:
    explicit Rng(std::uint64_t seed) noexcept {
        for (std::uint64_t& word : state_)
            word = splitmix64(seed);
    }

    std::uint64_t next_u64() noexcept {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

    // Uniform in [0, bound), bound > 0, without modulo bias (Lemire's
    // multiply-and-reject).
    std::uint64_t below(std::uint64_t bound) noexcept {
        EAGAIN_ASSERT(bound > 0);
        for (;;) {
            const u128 product = static_cast<u128>(next_u64()) * bound;
            const auto low = static_cast<std::uint64_t>(product);
            if (low >= (0 - bound) % bound)
                return static_cast<std::uint64_t>(product >> 64);
        }
    }

    // True with probability numerator / denominator (integer, so no float
    // rounding can differ between builds).
    bool chance(std::uint64_t numerator, std::uint64_t denominator) noexcept {
        EAGAIN_ASSERT(denominator > 0);
        if (numerator == 0)
            return false;
        if (numerator >= denominator)
            return true;
        return below(denominator) < numerator;
    }

    // A seed for a child generator, so subsystems draw from independent
    // streams and adding draws to one does not shift the others.
    std::uint64_t fork_seed() noexcept { return next_u64() ^ 0x9e3779b97f4a7c15ULL; }

    // The seed of the stream called name ("faults:HOST", "app:NAME",
    // "link:A->B", "reorder:A->B#k") under root: a function of the two
    // alone, so a stream keeps its numbers when other streams are added,
    // removed or reordered (a new host does not move an app's jitter).
    // FNV-1a of the name, mixed with root through splitmix64's finaliser.
    static std::uint64_t derive_seed(std::uint64_t root, std::string_view name) noexcept {
        std::uint64_t name_hash = 0xcbf29ce484222325ULL;  // FNV-1a offset basis
        for (const char c : name) {
            name_hash ^= static_cast<unsigned char>(c);
            name_hash *= 0x100000001b3ULL;  // FNV-1a prime
        }
        std::uint64_t state = root;
        const std::uint64_t mixed_root = splitmix64(state);
        state = mixed_root ^ name_hash;
        return splitmix64(state);
    }

private:
    static std::uint64_t splitmix64(std::uint64_t& x) noexcept {
        std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

    std::array<std::uint64_t, 4> state_{};
};

}  // namespace eagain
