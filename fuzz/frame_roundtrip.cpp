// Fuzz target: whatever encode_frame / encode_header accept, FrameDecoder
// gives back unchanged; whatever they refuse, they refuse for the reason an
// independent 128-bit model predicts, and without writing anything.
//
// Input layout (FuzzedDataProvider: integers from the END, bytes from the
// FRONT). Consumed from the end, in this order:
//   mode         u8   mode >= 0xc0: a fuzzed spec follows (fuzz/fuzz_spec.h),
//                     otherwise FrameSpec{}. mode & 3 picks the output
//                     ByteBuffer's limit: 0 and 3 unlimited, 1 u8, 2 u16
//                     (the limit follows the spec fields).
//   spec fields  (only for mode >= 0xc0)
//   limit        u8 or u16, only for modes 1 and 2
//   chunking     u8   how the encoded stream is cut for decoding:
//                     largest chunk {1, 3, 16, 200, 65536}[b % 5], sizes from
//                     a xorshift generator seeded with b
//   then, until the input is used up, one frame each:
//     code       u8   0..253: body of that many bytes
//                     254: a header one byte too long (header_size_mismatch)
//                     255: body size is a u16 read next from the end
//     header     spec.header_bytes bytes from the front (zeros past the end)
//     body       that many bytes from the front (fewer if the input ends)
// The encoded stream is decoded in chunks that alternate between feed() and
// prepare()/commit().
#include "core/byte_order.h"
#include "core/frame.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_spec.h"
#include "tests/support/reference_decoder.h"

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace {

using eagain::ByteBuffer;
using eagain::DecodeResult;
using eagain::DecodeStatus;
using eagain::EncodeError;
using eagain::FrameDecoder;
using eagain::FrameSpec;
using eagain::testing::OwnedFrame;

constexpr std::uint8_t wrong_header_code = 254;
constexpr std::uint8_t long_body_code = 255;

struct FrameInput {
    std::vector<std::uint8_t> header;  // the caller's header, length field not yet written
    std::vector<std::uint8_t> body;
};

struct Scenario {
    FrameSpec spec;
    std::size_t output_limit_bytes = ByteBuffer::unlimited;
    std::uint8_t chunking = 0;
    std::vector<FrameInput> frames;
};

void print_scenario(const void* opaque) {
    const auto& scenario = *static_cast<const Scenario*>(opaque);
    std::fprintf(stderr, "  spec: %s\n", eagain::fuzz::describe_spec(scenario.spec).c_str());
    std::fprintf(stderr, "  output_limit_bytes: %zu, chunking: %u\n", scenario.output_limit_bytes,
                 unsigned{scenario.chunking});
    for (std::size_t i = 0; i < scenario.frames.size() && i < 16; ++i) {
        std::fprintf(stderr, "  frame %zu: header %s, body %s\n", i,
                     eagain::fuzz::hex_prefix(scenario.frames[i].header, 24).c_str(),
                     eagain::fuzz::hex_prefix(scenario.frames[i].body, 24).c_str());
    }
}

Scenario consume_scenario(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider input(data, size);
    Scenario scenario;
    const std::uint8_t mode = input.ConsumeIntegral<std::uint8_t>();
    scenario.spec = eagain::fuzz::consume_spec_for_mode(mode, input);
    switch (mode & 3U) {
        case 1: scenario.output_limit_bytes = input.ConsumeIntegral<std::uint8_t>(); break;
        case 2: scenario.output_limit_bytes = input.ConsumeIntegral<std::uint16_t>(); break;
        default: scenario.output_limit_bytes = ByteBuffer::unlimited; break;
    }
    scenario.chunking = input.ConsumeIntegral<std::uint8_t>();
    while (input.remaining_bytes() > 0) {
        const std::uint8_t code = input.ConsumeIntegral<std::uint8_t>();
        FrameInput frame;
        std::size_t body_bytes = code;
        std::size_t header_bytes = scenario.spec.header_bytes;
        if (code == wrong_header_code) {
            header_bytes += 1;
            body_bytes = 0;
        } else if (code == long_body_code) {
            body_bytes = input.ConsumeIntegral<std::uint16_t>();
        }
        frame.header = input.ConsumeBytes<std::uint8_t>(header_bytes);
        frame.header.resize(header_bytes, 0);
        frame.body = input.ConsumeBytes<std::uint8_t>(body_bytes);
        scenario.frames.push_back(std::move(frame));
    }
    return scenario;
}

__extension__ using i128 = __int128;

// What encode_frame should answer, worked out in 128 bits, in the order
// encode_frame checks: header size, frame size, room in out, length field.
EncodeError expected_error(const FrameSpec& spec, const FrameInput& frame, std::size_t writable_bytes,
                           bool into_buffer) {
    if (frame.header.size() != spec.header_bytes) {
        return EncodeError::header_size_mismatch;
    }
    const i128 frame_bytes = static_cast<i128>(frame.header.size()) + static_cast<i128>(frame.body.size());
    if (frame_bytes > static_cast<i128>(spec.max_frame_bytes)) {
        return EncodeError::frame_too_large;
    }
    if (into_buffer && frame_bytes > static_cast<i128>(writable_bytes)) {
        return EncodeError::buffer_full;
    }
    const i128 length_field = static_cast<i128>(frame.body.size()) - spec.length_adjustment_bytes;
    const unsigned value_bits = static_cast<unsigned>(8 * spec.length_width_bytes) - (spec.length_signed ? 1U : 0U);
    const i128 largest = (i128{1} << value_bits) - 1;
    if (length_field < 0 || length_field > largest) {
        return EncodeError::length_unrepresentable;
    }
    return EncodeError::none;
}

std::string error_name(EncodeError error) {
    return std::string(eagain::to_string(error));
}

// xorshift64: chunk sizes for decoding, reproducible from one byte.
class ChunkSizes {
public:
    explicit ChunkSizes(std::uint8_t seed) noexcept
        : state_(0x9e3779b97f4a7c15ULL ^ seed), largest_(largest_chunks[seed % largest_chunks.size()]) {}

    std::size_t next() noexcept {
        state_ ^= state_ << 13U;
        state_ ^= state_ >> 7U;
        state_ ^= state_ << 17U;
        std::size_t size = static_cast<std::size_t>(state_ % (largest_ + 1));
        // An empty chunk is a useful case, two in a row are not.
        if (size == 0 && last_was_empty_) {
            size = 1;
        }
        last_was_empty_ = size == 0;
        return size;
    }

private:
    static constexpr std::array<std::size_t, 5> largest_chunks{1, 3, 16, 200, 65536};
    std::uint64_t state_;
    std::size_t largest_;
    bool last_was_empty_ = false;
};

// Decodes stream in chunks; returns the frames and checks the end state.
std::vector<OwnedFrame> decode_chunked(const FrameSpec& spec, std::span<const std::uint8_t> stream,
                                       std::uint8_t chunking) {
    FrameDecoder decoder(spec);
    ChunkSizes sizes(chunking);
    std::vector<OwnedFrame> frames;
    std::size_t at = 0;
    DecodeResult last;
    for (std::size_t step = 0;; ++step) {
        // Drain after every step (including before the first byte).
        for (;;) {
            last = decoder.next();
            if (last.status != DecodeStatus::frame) {
                break;
            }
            frames.push_back(OwnedFrame{last.frame.stream_offset,
                                        {last.frame.header.begin(), last.frame.header.end()},
                                        {last.frame.body.begin(), last.frame.body.end()}});
        }
        EAGAIN_FUZZ_CHECK(last.status == DecodeStatus::need_more,
                          "decoding encoder output failed: " + eagain::describe(last.error));
        if (at == stream.size()) {
            break;
        }
        // Never more than fits: a drained decoder always has room for one byte.
        const std::size_t room = decoder.buffer().writable_bytes();
        EAGAIN_FUZZ_CHECK(room > 0, "drained decoder has no room");
        const std::size_t size = std::min({sizes.next(), stream.size() - at, room});
        const std::span<const std::uint8_t> chunk = stream.subspan(at, size);
        if (step % 2 == 0) {
            EAGAIN_FUZZ_CHECK(decoder.feed(chunk), "feed() of " + std::to_string(size) + " bytes refused");
        } else {
            const std::span<std::uint8_t> space = decoder.prepare(size);
            EAGAIN_FUZZ_CHECK(space.size() == size, "prepare() offered " + std::to_string(space.size()));
            if (size > 0) {
                std::memcpy(space.data(), chunk.data(), size);
            }
            decoder.commit(size);
        }
        at += size;
    }
    EAGAIN_FUZZ_CHECK(last.bytes_missing == spec.header_bytes,
                      "encoder output ends inside a frame: bytes_missing " + std::to_string(last.bytes_missing));
    EAGAIN_FUZZ_CHECK(decoder.buffered().empty(), "bytes left over after the last frame");
    EAGAIN_FUZZ_CHECK(decoder.stream_offset() == stream.size(), "");
    return frames;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const Scenario scenario = consume_scenario(data, size);
    const eagain::fuzz::ScopedScenario context(print_scenario, &scenario);
    if (eagain::fuzz::verbose()) {
        print_scenario(&scenario);
    }
    const FrameSpec& spec = scenario.spec;

    ByteBuffer out(scenario.output_limit_bytes);
    std::vector<std::uint8_t> gathered;  // the writev() path: header storage + body, per frame
    std::vector<OwnedFrame> expected;
    for (std::size_t i = 0; i < scenario.frames.size(); ++i) {
        const FrameInput& frame = scenario.frames[i];
        const std::string which = "frame " + std::to_string(i) + ": ";

        // encode_header into separate header storage.
        std::vector<std::uint8_t> header = frame.header;
        const EncodeError header_error = eagain::encode_header(spec, header, frame.body.size());
        const EncodeError header_expected = expected_error(spec, frame, 0, false);
        EAGAIN_FUZZ_CHECK(header_error == header_expected, which + "encode_header: " + error_name(header_error) +
                                                               ", expected " + error_name(header_expected));
        if (header_error == EncodeError::none) {
            // Only the length field changed, and it reads back as body - adjustment.
            const std::size_t field_begin = spec.length_offset_bytes;
            const std::size_t field_end = field_begin + spec.length_width_bytes;
            for (std::size_t b = 0; b < header.size(); ++b) {
                EAGAIN_FUZZ_CHECK((b >= field_begin && b < field_end) || header[b] == frame.header[b],
                                  which + "encode_header changed byte " + std::to_string(b));
            }
            const std::uint64_t field =
                eagain::load_uint(std::span<const std::uint8_t>(header).subspan(field_begin, spec.length_width_bytes),
                                  spec.length_byte_order);
            const i128 expected_field = static_cast<i128>(frame.body.size()) - spec.length_adjustment_bytes;
            EAGAIN_FUZZ_CHECK(static_cast<i128>(field) == expected_field,
                              which + "length field " + std::to_string(field));
        } else {
            EAGAIN_FUZZ_CHECK(header == frame.header, which + "a refused encode_header wrote into the header");
        }

        // encode_frame into the output buffer, all or nothing.
        const std::size_t size_before = out.size();
        const std::size_t writable_before = out.writable_bytes();
        const EncodeError frame_error = eagain::encode_frame(spec, frame.header, frame.body, out);
        const EncodeError frame_expected = expected_error(spec, frame, writable_before, true);
        EAGAIN_FUZZ_CHECK(frame_error == frame_expected, which + "encode_frame: " + error_name(frame_error) +
                                                             ", expected " + error_name(frame_expected));
        if (eagain::fuzz::verbose()) {
            std::fprintf(stderr, "  %s%zu + %zu bytes: encode_header %s, encode_frame %s\n", which.c_str(),
                         frame.header.size(), frame.body.size(), error_name(header_error).c_str(),
                         error_name(frame_error).c_str());
        }
        if (frame_error != EncodeError::none) {
            EAGAIN_FUZZ_CHECK(out.size() == size_before, which + "a refused encode_frame wrote bytes");
            continue;
        }
        EAGAIN_FUZZ_CHECK(out.size() == size_before + header.size() + frame.body.size(), which + "wrong size written");
        EAGAIN_FUZZ_CHECK(out.capacity() - out.capacity() / 2 <= out.limit(), "capacity above twice the limit");
        expected.push_back(OwnedFrame{gathered.size(), header, frame.body});
        gathered.insert(gathered.end(), header.begin(), header.end());
        gathered.insert(gathered.end(), frame.body.begin(), frame.body.end());
    }

    const std::span<const std::uint8_t> stream = out.readable();
    EAGAIN_FUZZ_CHECK(std::equal(stream.begin(), stream.end(), gathered.begin(), gathered.end()),
                      "encode_frame and encode_header + body produced different bytes: " +
                          eagain::fuzz::hex_prefix(stream, 48) + " vs " + eagain::fuzz::hex_prefix(gathered, 48));

    const std::vector<OwnedFrame> decoded = decode_chunked(spec, stream, scenario.chunking);
    EAGAIN_FUZZ_CHECK(decoded == expected, "decoded " + std::to_string(decoded.size()) + " frames, encoded " +
                                               std::to_string(expected.size()));
    const eagain::testing::ReferenceOutcome reference = eagain::testing::reference_decode(spec, stream);
    EAGAIN_FUZZ_CHECK(reference.frames == expected && reference.final_status == DecodeStatus::need_more,
                      "the reference decoder disagrees with the encoder");
    return 0;
}
