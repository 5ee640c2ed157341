// Unsigned integers of 1 to 8 bytes in either byte order, read from and written
// to byte spans without alignment requirements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace eagain {

enum class ByteOrder : std::uint8_t { big_endian, little_endian };

// Reads bytes.size() (1..8) bytes as an unsigned integer.
constexpr std::uint64_t load_uint(std::span<const std::uint8_t> bytes, ByteOrder order) noexcept {
    std::uint64_t value = 0;
    if (order == ByteOrder::big_endian) {
        for (const std::uint8_t byte : bytes) {
            value = (value << 8U) | byte;
        }
    } else {
        for (std::size_t i = bytes.size(); i > 0; --i) {
            value = (value << 8U) | bytes[i - 1];
        }
    }
    return value;
}

// Writes the low bytes.size() (1..8) bytes of value.
constexpr void store_uint(std::span<std::uint8_t> bytes, ByteOrder order, std::uint64_t value) noexcept {
    const std::size_t width = bytes.size();
    for (std::size_t i = 0; i < width; ++i) {
        const auto byte = static_cast<std::uint8_t>(value >> (8U * i));
        if (order == ByteOrder::big_endian) {
            bytes[width - 1 - i] = byte;
        } else {
            bytes[i] = byte;
        }
    }
}

}  // namespace eagain
