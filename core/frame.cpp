#include "core/frame.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

namespace eagain {

namespace {

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

constexpr std::uint64_t field_mask(std::size_t width_bytes) noexcept {
    return width_bytes >= 8 ? max_u64 : (std::uint64_t{1} << (8 * width_bytes)) - 1;
}

constexpr std::uint64_t sign_bit(std::size_t width_bytes) noexcept {
    return std::uint64_t{1} << (8 * width_bytes - 1);
}

// |adjustment| as an unsigned value, defined for INT64_MIN too.
constexpr std::uint64_t magnitude(std::int64_t value) noexcept {
    const auto bits = static_cast<std::uint64_t>(value);
    return value < 0 ? (0 - bits) : bits;
}

struct LengthVerdict {
    std::optional<FrameErrorKind> error;
    std::uint64_t frame_bytes = 0;  // header + body, when no error
};

// The whole frame size announced by a length field, or why it is refused.
// Every step is checked, so no announced value can wrap around into a small,
// plausible size.
LengthVerdict judge_length(const FrameSpec& spec, std::uint64_t length_field) noexcept {
    if (spec.length_signed && (length_field & sign_bit(spec.length_width_bytes)) != 0) {
        return {FrameErrorKind::negative_length};
    }
    std::uint64_t body_bytes = length_field;
    const std::uint64_t adjustment = magnitude(spec.length_adjustment_bytes);
    if (spec.length_adjustment_bytes >= 0) {
        if (body_bytes > max_u64 - adjustment) {
            return {FrameErrorKind::length_overflow};
        }
        body_bytes += adjustment;
    } else {
        if (body_bytes < adjustment) {
            return {FrameErrorKind::shorter_than_header};
        }
        body_bytes -= adjustment;
    }
    if (body_bytes > max_u64 - spec.header_bytes) {
        return {FrameErrorKind::length_overflow};
    }
    const std::uint64_t frame_bytes = spec.header_bytes + body_bytes;
    if (frame_bytes > spec.max_frame_bytes) {
        return {FrameErrorKind::too_large};
    }
    return {std::nullopt, frame_bytes};
}

}  // namespace

// ---------------------------------------------------------------------------
// FrameSpec

SpecError validate(const FrameSpec& spec) noexcept {
    const std::size_t width = spec.length_width_bytes;
    if (width != 1 && width != 2 && width != 4 && width != 8) {
        return SpecError::bad_length_width;
    }
    if (spec.length_offset_bytes > spec.header_bytes || spec.header_bytes - spec.length_offset_bytes < width) {
        return SpecError::length_field_outside_header;
    }
    if (spec.max_frame_bytes < spec.header_bytes) {
        return SpecError::max_below_header;
    }
    if (spec.max_frame_bytes > static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max())) {
        return SpecError::max_too_large;
    }
    return SpecError::none;
}

std::string_view to_string(SpecError error) noexcept {
    switch (error) {
        case SpecError::none: return "none";
        case SpecError::bad_length_width: return "length width must be 1, 2, 4 or 8 bytes";
        case SpecError::length_field_outside_header: return "length field extends past the header";
        case SpecError::max_below_header: return "max_frame_bytes is smaller than the header";
        case SpecError::max_too_large: return "max_frame_bytes exceeds PTRDIFF_MAX";
    }
    return "unknown SpecError";
}

// ---------------------------------------------------------------------------
// DefaultHeader

std::array<std::uint8_t, DefaultHeader::size_bytes> DefaultHeader::bytes() const noexcept {
    std::array<std::uint8_t, size_bytes> out{};
    const std::span<std::uint8_t> all(out);
    store_uint(all.subspan(0, 4), ByteOrder::big_endian, cmd);
    store_uint(all.subspan(4, 4), ByteOrder::big_endian, seq);
    store_uint(all.subspan(8, 4), ByteOrder::big_endian, body_len);
    store_uint(all.subspan(12, 4), ByteOrder::big_endian, reserved1);
    store_uint(all.subspan(16, 4), ByteOrder::big_endian, reserved2);
    return out;
}

DefaultHeader DefaultHeader::parse(std::span<const std::uint8_t, size_bytes> bytes) noexcept {
    const auto field = [&](std::size_t offset) {
        return static_cast<std::uint32_t>(load_uint(bytes.subspan(offset, 4), ByteOrder::big_endian));
    };
    return {field(0), field(4), field(8), field(12), field(16)};
}

// ---------------------------------------------------------------------------
// Encoder

std::string_view to_string(EncodeError error) noexcept {
    switch (error) {
        case EncodeError::none: return "none";
        case EncodeError::header_size_mismatch: return "header_size_mismatch";
        case EncodeError::frame_too_large: return "frame_too_large";
        case EncodeError::length_unrepresentable: return "length_unrepresentable";
        case EncodeError::buffer_full: return "buffer_full";
    }
    return "unknown EncodeError";
}

EncodeError encode_header(const FrameSpec& spec, std::span<std::uint8_t> header, std::uint64_t body_bytes) noexcept {
    EAGAIN_ASSERT(validate(spec) == SpecError::none);
    if (header.size() != spec.header_bytes) {
        return EncodeError::header_size_mismatch;
    }
    if (body_bytes > spec.max_frame_bytes - spec.header_bytes) {
        return EncodeError::frame_too_large;
    }
    // length_field = body_bytes - adjustment, checked for range.
    const std::uint64_t adjustment = magnitude(spec.length_adjustment_bytes);
    std::uint64_t length_field = body_bytes;
    if (spec.length_adjustment_bytes >= 0) {
        if (length_field < adjustment) {
            return EncodeError::length_unrepresentable;
        }
        length_field -= adjustment;
    } else {
        // Cannot wrap: body_bytes <= max_frame_bytes <= PTRDIFF_MAX (validate)
        // and adjustment <= 2^63, so the sum is at most 2^64 - 1.
        EAGAIN_ASSERT(length_field <= max_u64 - adjustment);
        length_field += adjustment;
    }
    const std::size_t width = spec.length_width_bytes;
    const std::uint64_t largest = spec.length_signed ? sign_bit(width) - 1 : field_mask(width);
    if (length_field > largest) {
        return EncodeError::length_unrepresentable;
    }
    store_uint(header.subspan(spec.length_offset_bytes, width), spec.length_byte_order, length_field);
    return EncodeError::none;
}

EncodeError encode_frame(const FrameSpec& spec, std::span<const std::uint8_t> header,
                         std::span<const std::uint8_t> body, ByteBuffer& out) {
    if (header.size() != spec.header_bytes) {
        return EncodeError::header_size_mismatch;
    }
    if (body.size() > spec.max_frame_bytes - spec.header_bytes) {
        return EncodeError::frame_too_large;
    }
    const std::size_t frame_bytes = header.size() + body.size();
    if (frame_bytes > out.writable_bytes()) {
        return EncodeError::buffer_full;
    }
    const std::span<std::uint8_t> space = out.prepare(frame_bytes);
    std::memcpy(space.data(), header.data(), header.size());
    const EncodeError error = encode_header(spec, space.first(header.size()), body.size());
    if (error != EncodeError::none) {
        return error;  // nothing committed
    }
    if (!body.empty()) {
        std::memcpy(space.data() + header.size(), body.data(), body.size());
    }
    out.commit(frame_bytes);
    return EncodeError::none;
}

// ---------------------------------------------------------------------------
// Decoder

std::string_view to_string(FrameErrorKind kind) noexcept {
    switch (kind) {
        case FrameErrorKind::negative_length: return "negative_length";
        case FrameErrorKind::shorter_than_header: return "shorter_than_header";
        case FrameErrorKind::too_large: return "too_large";
        case FrameErrorKind::length_overflow: return "length_overflow";
    }
    return "unknown FrameErrorKind";
}

std::string describe(const FrameError& error) {
    char text[160];
    std::snprintf(text, sizeof text, "length field at stream offset %llu holds 0x%llx: %s",
                  static_cast<unsigned long long>(error.stream_offset),
                  static_cast<unsigned long long>(error.length_field), to_string(error.kind).data());
    return text;
}

FrameDecoder::FrameDecoder(const FrameSpec& spec, std::size_t buffer_limit_bytes)
    : spec_(spec),
      buffer_(buffer_limit_bytes != 0 ? buffer_limit_bytes
              : spec.max_frame_bytes > ByteBuffer::unlimited - default_read_ahead_bytes
                  ? ByteBuffer::unlimited
                  : static_cast<std::size_t>(spec.max_frame_bytes) + default_read_ahead_bytes) {
    EAGAIN_ASSERT(validate(spec) == SpecError::none);
    // One maximal frame must fit, or a legal frame could never complete.
    EAGAIN_ASSERT(buffer_.limit() >= spec.max_frame_bytes);

    // The fields judge_length() accepts: no sign bit when signed, and
    // field + adjustment within [0, max_frame_bytes - header_bytes].
    const std::uint64_t largest_field =
        spec.length_signed ? sign_bit(spec.length_width_bytes) - 1 : field_mask(spec.length_width_bytes);
    const std::uint64_t largest_body = spec.max_frame_bytes - spec.header_bytes;
    const std::uint64_t adjustment = magnitude(spec.length_adjustment_bytes);
    std::uint64_t min_field = 0;
    std::uint64_t max_field = 0;
    bool any = false;
    if (spec.length_adjustment_bytes >= 0) {
        any = largest_body >= adjustment;
        max_field = any ? std::min(largest_field, largest_body - adjustment) : 0;
    } else {
        any = true;
        min_field = adjustment;
        max_field =
            largest_body > max_u64 - adjustment ? largest_field : std::min(largest_field, largest_body + adjustment);
    }
    accepted_.enabled = any && min_field <= max_field;
    accepted_.length_is_be32 = spec.length_width_bytes == 4 && spec.length_byte_order == ByteOrder::big_endian;
    accepted_.length_byte_order = spec.length_byte_order;
    accepted_.header_bytes = spec.header_bytes;
    accepted_.length_offset_bytes = spec.length_offset_bytes;
    accepted_.length_width_bytes = spec.length_width_bytes;
    accepted_.length_end_bytes = spec.length_offset_bytes + spec.length_width_bytes;
    accepted_.min_field = min_field;
    accepted_.field_span = max_field - min_field;
    accepted_.frame_bytes_bias = spec.header_bytes + static_cast<std::uint64_t>(spec.length_adjustment_bytes);
}

void FrameDecoder::commit(std::size_t n) {
    buffer_.commit(n);
    if (error_) {
        buffer_.clear();  // a failed stream is not read further: drop, do not grow
    }
}

bool FrameDecoder::feed(std::span<const std::uint8_t> bytes) {
    if (error_) {
        return true;  // accepted and discarded
    }
    return buffer_.append(bytes);
}

DecodeResult FrameDecoder::next_slow() {
    if (error_) {
        return DecodeResult::failed(*error_);
    }
    const std::span<const std::uint8_t> in = buffer_.readable();
    if (in.size() < accepted_.length_end_bytes) {
        return DecodeResult::need_more(spec_.header_bytes - in.size());
    }
    const std::uint64_t length_field = accepted_.load_length(in.data());
    const LengthVerdict verdict = judge_length(spec_, length_field);
    if (verdict.error) {
        error_ = FrameError{*verdict.error, stream_offset_ + spec_.length_offset_bytes, length_field};
        accepted_.enabled = false;
        buffer_.clear();
        return DecodeResult::failed(*error_);
    }
    // judge_length bounded frame_bytes by max_frame_bytes <= PTRDIFF_MAX.
    const auto frame_bytes = static_cast<std::size_t>(verdict.frame_bytes);
    // A complete acceptable frame here means the fast path's precomputed
    // range disagrees with judge_length(): a bug, not a peer's doing.
    EAGAIN_ASSERT(in.size() < frame_bytes);
    return DecodeResult::need_more(frame_bytes - in.size());
}

}  // namespace eagain
