#include "apps/byte_pattern.h"

namespace eagain {

std::uint8_t stream_pattern_byte(std::uint64_t offset_bytes) noexcept {
    // A multiply-xorshift mix (splitmix64's finaliser) of the position in
    // the period: any two positions give unrelated bytes.
    std::uint64_t x = (offset_bytes % stream_pattern_period_bytes + 1) * 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return static_cast<std::uint8_t>(x ^ (x >> 31));
}

void fill_stream_pattern(std::uint64_t offset_bytes, std::span<std::uint8_t> out) noexcept {
    std::uint8_t* const bytes = out.data();
    const std::size_t size = out.size();
    for (std::size_t k = 0; k < size; ++k)
        bytes[k] = stream_pattern_byte(offset_bytes + k);
}

std::optional<std::size_t> first_pattern_mismatch(std::uint64_t offset_bytes,
                                                  std::span<const std::uint8_t> bytes) noexcept {
    for (std::size_t k = 0; k < bytes.size(); ++k) {
        if (bytes[k] != stream_pattern_byte(offset_bytes + k))
            return k;
    }
    return std::nullopt;
}

}  // namespace eagain
