// FrameSpec from fuzz input, shared by the frame fuzz targets.
//
// Every field is read from the END of the input (FuzzedDataProvider's
// integers), one fixed-size integer per field so that seeds can be written by
// hand; a multi-byte integer appears little-endian in the file, directly in
// front of the bytes consumed before it. In consumption order:
//
//   width       u8   {1, 2, 4, 8}[b % 4]
//   header      u8   width + b % (65 - width)            -> width..64
//   offset      u8   b % (header - width + 1)             -> field inside header
//   flags       u8   bit 0: little endian, bit 1: unsigned (0 = like the default)
//   adjustment  u8   b % 8 picks:
//                      0  0                         1  +u8 (one more byte)
//                      2  -u8 (one more byte)       3  -header
//                      4  -(header - offset - width): length counts what follows the field
//                      5  INT64_MIN                 6  INT64_MAX
//                      7  u64 (eight more bytes) as two's complement
//   max_frame   u8   b % 8 picks:
//                      0  16 MiB                    1  header (bodies must be empty)
//                      2  header + u8               3  header + u16
//                      4  header + u32 % 4 MiB      5  PTRDIFF_MAX
//                      6  header + u64 % (PTRDIFF_MAX - header + 1)
//                      7  2^32 + u8 (just past 32 bits)
//
// Every spec produced validates; nothing here ever rejects an input.
#pragma once

#include "core/frame.h"
#include "fuzz/fuzz_check.h"

#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <span>
#include <string>

namespace eagain::fuzz {

inline constexpr std::size_t max_fuzzed_header_bytes = 64;
inline constexpr std::uint64_t ptrdiff_max = static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max());

inline FrameSpec consume_spec(FuzzedDataProvider& input) {
    constexpr std::array<std::size_t, 4> widths{1, 2, 4, 8};
    FrameSpec spec;
    spec.length_width_bytes = widths[input.ConsumeIntegral<std::uint8_t>() % widths.size()];
    const std::size_t width = spec.length_width_bytes;
    spec.header_bytes = width + input.ConsumeIntegral<std::uint8_t>() % (max_fuzzed_header_bytes + 1 - width);
    spec.length_offset_bytes = input.ConsumeIntegral<std::uint8_t>() % (spec.header_bytes - width + 1);
    const std::uint8_t flags = input.ConsumeIntegral<std::uint8_t>();
    spec.length_byte_order = (flags & 1U) != 0 ? ByteOrder::little_endian : ByteOrder::big_endian;
    spec.length_signed = (flags & 2U) == 0;

    const auto header = static_cast<std::int64_t>(spec.header_bytes);
    switch (input.ConsumeIntegral<std::uint8_t>() % 8) {
        case 0: spec.length_adjustment_bytes = 0; break;
        case 1: spec.length_adjustment_bytes = input.ConsumeIntegral<std::uint8_t>(); break;
        case 2: spec.length_adjustment_bytes = -std::int64_t{input.ConsumeIntegral<std::uint8_t>()}; break;
        case 3: spec.length_adjustment_bytes = -header; break;
        case 4:
            spec.length_adjustment_bytes =
                -static_cast<std::int64_t>(spec.header_bytes - spec.length_offset_bytes - width);
            break;
        case 5: spec.length_adjustment_bytes = std::numeric_limits<std::int64_t>::min(); break;
        case 6: spec.length_adjustment_bytes = std::numeric_limits<std::int64_t>::max(); break;
        default:
            spec.length_adjustment_bytes = static_cast<std::int64_t>(input.ConsumeIntegral<std::uint64_t>());
            break;
    }

    const std::uint64_t header_u64 = spec.header_bytes;
    switch (input.ConsumeIntegral<std::uint8_t>() % 8) {
        case 0: spec.max_frame_bytes = 16U * 1024U * 1024U; break;
        case 1: spec.max_frame_bytes = header_u64; break;
        case 2: spec.max_frame_bytes = header_u64 + input.ConsumeIntegral<std::uint8_t>(); break;
        case 3: spec.max_frame_bytes = header_u64 + input.ConsumeIntegral<std::uint16_t>(); break;
        case 4:
            spec.max_frame_bytes = header_u64 + input.ConsumeIntegral<std::uint32_t>() % (4U * 1024U * 1024U);
            break;
        case 5: spec.max_frame_bytes = ptrdiff_max; break;
        case 6:
            spec.max_frame_bytes = header_u64 + input.ConsumeIntegral<std::uint64_t>() % (ptrdiff_max - header_u64 + 1);
            break;
        default: spec.max_frame_bytes = (std::uint64_t{1} << 32U) + input.ConsumeIntegral<std::uint8_t>(); break;
    }
    return spec;
}

// Every target's input starts (from the end) with a mode byte: 0xc0 and above
// mean a fuzzed spec follows, below that the default FrameSpec{}. The low
// two bits are each target's own.
inline constexpr std::uint8_t custom_spec_mode = 0xc0;

inline FrameSpec consume_spec_for_mode(std::uint8_t mode, FuzzedDataProvider& input) {
    const FrameSpec spec = mode >= custom_spec_mode ? consume_spec(input) : FrameSpec{};
    EAGAIN_FUZZ_CHECK(validate(spec) == SpecError::none, std::string(to_string(validate(spec))));
    return spec;
}

inline std::string describe_spec(const FrameSpec& spec) {
    char text[256];
    std::snprintf(text, sizeof text,
                  "FrameSpec{header_bytes=%zu, length_offset_bytes=%zu, length_width_bytes=%zu, %s, %s, "
                  "length_adjustment_bytes=%lld, max_frame_bytes=%llu}",
                  spec.header_bytes, spec.length_offset_bytes, spec.length_width_bytes,
                  spec.length_byte_order == ByteOrder::big_endian ? "big_endian" : "little_endian",
                  spec.length_signed ? "signed" : "unsigned", static_cast<long long>(spec.length_adjustment_bytes),
                  static_cast<unsigned long long>(spec.max_frame_bytes));
    return text;
}

// Up to max_bytes of bytes as hex, for failure reports.
inline std::string hex_prefix(std::span<const std::uint8_t> bytes, std::size_t max_bytes = 64) {
    std::string text;
    const std::size_t shown = bytes.size() < max_bytes ? bytes.size() : max_bytes;
    for (std::size_t i = 0; i < shown; ++i) {
        char byte_text[4];
        std::snprintf(byte_text, sizeof byte_text, "%02x", bytes[i]);
        text += byte_text;
        if (i + 1 < shown) {
            text += ' ';
        }
    }
    if (shown < bytes.size()) {
        text += " ... (" + std::to_string(bytes.size()) + " bytes)";
    }
    return text;
}

}  // namespace eagain::fuzz
