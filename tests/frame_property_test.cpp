// Properties of the frame codec, checked over generated specs, frames and
// chunkings. The oracle for arbitrary input is reference_decode, an
// independent whole-stream implementation (tests/support/reference_decoder.h).
#include "core/frame.h"
#include "tests/support/chunked.h"
#include "tests/support/reference_decoder.h"

#include <rapidcheck/catch.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace eagain;
using eagain::testing::decode_in_chunks;
using eagain::testing::OwnedFrame;
using eagain::testing::reference_decode;
using eagain::testing::ReferenceOutcome;

namespace {

constexpr std::size_t body_cap_bytes = 600;  // keeps each case fast

// Uniform over all 256 values. rc::gen::arbitrary<std::uint8_t> scales with the
// test size and almost never sets the top bit, which hides every negative
// and oversized length field.
rc::Gen<std::uint8_t> any_byte() {
    return rc::gen::cast<std::uint8_t>(rc::gen::inRange(0, 256));
}

rc::Gen<FrameSpec> any_spec() {
    return rc::gen::exec([] {
        FrameSpec spec;
        spec.length_width_bytes = *rc::gen::element<std::size_t>(1, 2, 4, 8);
        spec.header_bytes = spec.length_width_bytes + *rc::gen::inRange<std::size_t>(0, 24);
        spec.length_offset_bytes = *rc::gen::inRange<std::size_t>(0, spec.header_bytes - spec.length_width_bytes + 1);
        spec.length_byte_order = *rc::gen::element(ByteOrder::big_endian, ByteOrder::little_endian);
        spec.length_signed = *rc::gen::arbitrary<bool>();
        const auto header = static_cast<std::int64_t>(spec.header_bytes);
        spec.length_adjustment_bytes = *rc::gen::weightedOneOf<std::int64_t>({
            {4, rc::gen::just<std::int64_t>(0)},
            {2, rc::gen::just(-header)},
            {4, rc::gen::inRange<std::int64_t>(-header - 8, 9)},
            {1, rc::gen::element(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max())},
        });
        spec.max_frame_bytes = *rc::gen::weightedOneOf<std::uint64_t>({
            {8, rc::gen::inRange<std::uint64_t>(spec.header_bytes, spec.header_bytes + 2 * body_cap_bytes)},
            {1, rc::gen::just(std::uint64_t{spec.header_bytes})},
            {1, rc::gen::just(static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max()))},
        });
        RC_ASSERT(validate(spec) == SpecError::none);
        return spec;
    });
}

// The body sizes spec can carry, capped at body_cap_bytes; nullopt if none.
std::optional<std::pair<std::size_t, std::size_t>> body_range(const FrameSpec& spec) {
    const std::uint64_t largest_field = spec.length_signed ? (std::uint64_t{1} << (8 * spec.length_width_bytes - 1)) - 1
                                        : spec.length_width_bytes == 8
                                            ? std::numeric_limits<std::uint64_t>::max()
                                            : (std::uint64_t{1} << (8 * spec.length_width_bytes)) - 1;
    // body = field + adjustment, field in [0, largest_field]
    __extension__ using i128 = __int128;
    const i128 adjustment = spec.length_adjustment_bytes;
    const i128 lo = std::max<i128>(0, adjustment);
    const i128 hi = std::min<i128>({static_cast<i128>(largest_field) + adjustment,
                                    static_cast<i128>(spec.max_frame_bytes - spec.header_bytes),
                                    static_cast<i128>(body_cap_bytes)});
    if (lo > hi) {
        return std::nullopt;
    }
    return std::pair{static_cast<std::size_t>(lo), static_cast<std::size_t>(hi)};
}

rc::Gen<std::vector<std::size_t>> any_chunking() {
    return rc::gen::container<std::vector<std::size_t>>(rc::gen::weightedOneOf<std::size_t>({
        {6, rc::gen::inRange<std::size_t>(0, 40)},
        {2, rc::gen::just<std::size_t>(1)},
        {2, rc::gen::inRange<std::size_t>(40, 5000)},
    }));
}

struct Encoded {
    std::vector<OwnedFrame> frames;
    std::vector<std::uint8_t> stream;
};

// Encodes bodies with random header bytes; the expected frames carry the
// header as it must come back (length field filled in).
Encoded encode_all(const FrameSpec& spec, const std::vector<std::vector<std::uint8_t>>& bodies) {
    Encoded out;
    ByteBuffer wire;
    for (const auto& body : bodies) {
        auto header = *rc::gen::container<std::vector<std::uint8_t>>(spec.header_bytes, any_byte());
        const std::uint64_t offset = wire.size();
        RC_ASSERT(encode_frame(spec, header, body, wire) == EncodeError::none);
        RC_ASSERT(encode_header(spec, header, body.size()) == EncodeError::none);
        out.frames.push_back(OwnedFrame{offset, header, body});
    }
    out.stream.assign(wire.readable().begin(), wire.readable().end());
    return out;
}

std::vector<std::vector<std::uint8_t>> bodies_for(const FrameSpec& spec, std::size_t max_frames) {
    const auto range = body_range(spec);
    RC_PRE(range.has_value());
    const auto count = *rc::gen::inRange<std::size_t>(0, max_frames + 1);
    std::vector<std::vector<std::uint8_t>> bodies;
    for (std::size_t i = 0; i < count; ++i) {
        const auto size = *rc::gen::inRange(range->first, range->second + 1);
        bodies.push_back(*rc::gen::container<std::vector<std::uint8_t>>(size, any_byte()));
    }
    return bodies;
}

void check_same(const ReferenceOutcome& actual, const ReferenceOutcome& expected) {
    RC_ASSERT(actual.frames.size() == expected.frames.size());
    for (std::size_t i = 0; i < expected.frames.size(); ++i) {
        RC_ASSERT(actual.frames[i] == expected.frames[i]);
    }
    RC_ASSERT(actual.final_status == expected.final_status);
    if (expected.final_status == DecodeStatus::need_more) {
        RC_ASSERT(actual.bytes_missing == expected.bytes_missing);
    } else {
        RC_ASSERT(actual.error == expected.error);
    }
}

// Labels the distribution rapidcheck prints, so a generator that stops
// reaching some outcome is visible in the test output.
std::string outcome_tag(const ReferenceOutcome& outcome) {
    std::string tag = outcome.frames.empty() ? "no frames, " : "frames, ";
    if (outcome.final_status == DecodeStatus::need_more) {
        return tag + "need_more";
    }
    return tag + std::string(to_string(outcome.error.kind));
}

}  // namespace

TEST_CASE("any frames under any chunking decode to exactly those frames in order", "[frame][property]") {
    rc::prop("default spec", [] {
        const FrameSpec spec;
        const auto encoded = encode_all(spec, bodies_for(spec, 20));
        const auto chunks = *any_chunking();
        const auto outcome = decode_in_chunks(spec, encoded.stream, chunks);
        RC_ASSERT(outcome.frames == encoded.frames);
        RC_ASSERT(outcome.final_status == DecodeStatus::need_more);
        RC_ASSERT(outcome.bytes_missing == spec.header_bytes);
    });
    rc::prop("any valid spec", [] {
        const FrameSpec spec = *any_spec();
        const auto encoded = encode_all(spec, bodies_for(spec, 20));
        const auto outcome = decode_in_chunks(spec, encoded.stream, *any_chunking());
        RC_ASSERT(outcome.frames == encoded.frames);
        RC_ASSERT(outcome.final_status == DecodeStatus::need_more);
    });
}

TEST_CASE("arbitrary bytes decode exactly as the reference decoder says", "[frame][property]") {
    // Never out of bounds (ASan runs this too), never throws, and the result
    // (frames, need_more with its count, or the error and its offset) is the
    // one an independent implementation computes.
    rc::prop("random bytes, random spec, random chunking", [] {
        const FrameSpec spec = *any_spec();
        const auto stream = *rc::gen::container<std::vector<std::uint8_t>>(any_byte());
        const auto outcome = decode_in_chunks(spec, stream, *any_chunking());
        check_same(outcome, reference_decode(spec, stream));
        RC_TAG(outcome_tag(outcome));
    });
    rc::prop("valid frames with bytes flipped", [] {
        const FrameSpec spec = *any_spec();
        auto encoded = encode_all(spec, bodies_for(spec, 10));
        RC_PRE(!encoded.stream.empty());
        const auto flips = *rc::gen::inRange(1, 4);
        for (int i = 0; i < flips; ++i) {
            const auto at = *rc::gen::inRange<std::size_t>(0, encoded.stream.size());
            encoded.stream[at] = *any_byte();
        }
        const auto truncate = *rc::gen::inRange<std::size_t>(0, encoded.stream.size() + 1);
        encoded.stream.resize(truncate);
        const auto outcome = decode_in_chunks(spec, encoded.stream, *any_chunking());
        check_same(outcome, reference_decode(spec, encoded.stream));
        RC_TAG(outcome_tag(outcome));
    });
}

TEST_CASE("length fields at the arithmetic edges are judged as the reference judges them", "[frame][property]") {
    rc::prop("boundary length values under any spec", [] {
        const FrameSpec spec = *any_spec();
        const std::uint64_t header = spec.header_bytes;
        const std::uint64_t width_mask = spec.length_width_bytes == 8
                                             ? std::numeric_limits<std::uint64_t>::max()
                                             : (std::uint64_t{1} << (8 * spec.length_width_bytes)) - 1;
        const auto adjustment = static_cast<std::uint64_t>(spec.length_adjustment_bytes);
        const std::uint64_t near = *rc::gen::element<std::uint64_t>(
            0, 1, width_mask, width_mask >> 1, (width_mask >> 1) + 1, spec.max_frame_bytes - header,
            spec.max_frame_bytes - header - adjustment, 0 - adjustment, 0 - adjustment - header,
            std::numeric_limits<std::uint64_t>::max() - header);
        const auto delta = *rc::gen::inRange<std::int64_t>(-2, 3);
        const std::uint64_t field = (near + static_cast<std::uint64_t>(delta)) & width_mask;

        std::vector<std::uint8_t> stream(spec.header_bytes, 0x5A);
        store_uint(std::span(stream).subspan(spec.length_offset_bytes, spec.length_width_bytes), spec.length_byte_order,
                   field);
        stream.resize(stream.size() + *rc::gen::inRange<std::size_t>(0, 64), 0x5A);
        const auto outcome = decode_in_chunks(spec, stream, *any_chunking());
        check_same(outcome, reference_decode(spec, stream));
        RC_TAG(outcome_tag(outcome));
    });
}

TEST_CASE("encode then decode is the identity under any valid spec", "[frame][property]") {
    rc::prop("one frame, header fields and body preserved", [] {
        const FrameSpec spec = *any_spec();
        const auto encoded = encode_all(spec, bodies_for(spec, 1));
        FrameDecoder decoder(spec);
        RC_ASSERT(decoder.feed(encoded.stream));
        for (const auto& expected : encoded.frames) {
            const DecodeResult result = decoder.next();
            RC_ASSERT(result.status == DecodeStatus::frame);
            RC_ASSERT(eagain::testing::own(result.frame) == expected);
        }
        RC_ASSERT(decoder.next().status == DecodeStatus::need_more);
    });
    rc::prop("the encoder accepts exactly the body sizes the spec can carry", [] {
        const FrameSpec spec = *any_spec();
        const auto size = *rc::gen::inRange<std::size_t>(0, body_cap_bytes + 1);
        const auto range = body_range(spec);
        const bool carriable = range && size >= range->first && size <= range->second;
        std::vector<std::uint8_t> header(spec.header_bytes);
        const EncodeError error = encode_header(spec, header, size);
        RC_ASSERT((error == EncodeError::none) == carriable);
        if (carriable) {
            // What was written reads back as the same size.
            FrameDecoder decoder(spec);
            RC_ASSERT(decoder.feed(header));
            const std::vector<std::uint8_t> body(size);
            RC_ASSERT(decoder.feed(body));
            const DecodeResult result = decoder.next();
            RC_ASSERT(result.status == DecodeStatus::frame);
            RC_ASSERT(result.frame.body.size() == size);
        }
    });
}
