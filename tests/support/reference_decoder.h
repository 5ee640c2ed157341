// A second, deliberately different implementation of length-field decoding,
// used only as a test oracle: it sees the whole stream at once, does its
// arithmetic in 128 bits instead of checked 64-bit steps, and builds owned
// copies. If FrameDecoder and this disagree, one of them is wrong.
#pragma once

#include "core/frame.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace eagain::testing {

struct OwnedFrame {
    std::uint64_t stream_offset = 0;
    std::vector<std::uint8_t> header;
    std::vector<std::uint8_t> body;

    friend bool operator==(const OwnedFrame&, const OwnedFrame&) = default;
};

struct ReferenceOutcome {
    std::vector<OwnedFrame> frames;
    DecodeStatus final_status = DecodeStatus::need_more;  // need_more or failed
    std::size_t bytes_missing = 0;                        // when need_more
    FrameError error;                                     // when failed
};

inline ReferenceOutcome reference_decode(const FrameSpec& spec, std::span<const std::uint8_t> stream) {
    __extension__ using u128 = unsigned __int128;
    __extension__ using i128 = __int128;
    ReferenceOutcome out;
    std::size_t at = 0;
    const std::size_t length_end = spec.length_offset_bytes + spec.length_width_bytes;
    for (;;) {
        const std::size_t left = stream.size() - at;
        if (left < length_end) {
            out.bytes_missing = spec.header_bytes - left;
            return out;
        }
        u128 raw = 0;
        for (std::size_t i = 0; i < spec.length_width_bytes; ++i) {
            const std::size_t byte_index =
                spec.length_byte_order == ByteOrder::big_endian ? i : spec.length_width_bytes - 1 - i;
            raw = (raw << 8) | stream[at + spec.length_offset_bytes + byte_index];
        }
        i128 value = static_cast<i128>(raw);
        const unsigned bits = static_cast<unsigned>(8 * spec.length_width_bytes);
        if (spec.length_signed && (raw >> (bits - 1)) != 0) {
            value -= static_cast<i128>(u128{1} << bits);
        }
        const i128 body = value + spec.length_adjustment_bytes;
        const i128 frame = body + static_cast<i128>(spec.header_bytes);
        FrameErrorKind kind{};
        bool bad = true;
        if (value < 0) {
            kind = FrameErrorKind::negative_length;
        } else if (body < 0) {
            kind = FrameErrorKind::shorter_than_header;
        } else if (frame > static_cast<i128>(UINT64_MAX)) {
            kind = FrameErrorKind::length_overflow;
        } else if (frame > static_cast<i128>(spec.max_frame_bytes)) {
            kind = FrameErrorKind::too_large;
        } else {
            bad = false;
        }
        if (bad) {
            out.final_status = DecodeStatus::failed;
            out.error = FrameError{kind, at + spec.length_offset_bytes, static_cast<std::uint64_t>(raw)};
            return out;
        }
        const auto frame_bytes = static_cast<std::size_t>(frame);
        if (left < frame_bytes) {
            out.bytes_missing = frame_bytes - left;
            return out;
        }
        const auto first = stream.begin() + static_cast<std::ptrdiff_t>(at);
        const auto header_end = first + static_cast<std::ptrdiff_t>(spec.header_bytes);
        const auto frame_end = first + static_cast<std::ptrdiff_t>(frame_bytes);
        out.frames.push_back(OwnedFrame{at, {first, header_end}, {header_end, frame_end}});
        at += frame_bytes;
    }
}

}  // namespace eagain::testing
