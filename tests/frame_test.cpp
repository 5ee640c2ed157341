#include "core/frame.h"
#include "tests/support/chunked.h"
#include "tests/support/reference_decoder.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using namespace eagain;
using eagain::testing::bytes_of;
using eagain::testing::OwnedFrame;
using eagain::testing::take_by_next;

namespace {

std::vector<std::uint8_t> body_of(std::size_t n, std::uint8_t first = 0) {
    std::vector<std::uint8_t> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = static_cast<std::uint8_t>(first + i);
    }
    return out;
}

// A default-protocol frame as bytes.
std::vector<std::uint8_t> default_frame(std::uint32_t cmd, std::uint32_t seq, const std::vector<std::uint8_t>& body) {
    ByteBuffer out;
    const DefaultHeader header{cmd, seq, 0, 0, 0};
    REQUIRE(encode_frame(FrameSpec{}, header.bytes(), body, out) == EncodeError::none);
    return {out.readable().begin(), out.readable().end()};
}

// A default-protocol header announcing body_len, as raw bytes (for lengths
// the encoder would refuse).
std::vector<std::uint8_t> raw_default_header(std::uint32_t body_len) {
    const DefaultHeader header{7, 1, body_len, 0, 0};
    const auto bytes = header.bytes();
    return {bytes.begin(), bytes.end()};
}

std::vector<std::uint8_t> concat(std::initializer_list<std::vector<std::uint8_t>> parts) {
    std::vector<std::uint8_t> out;
    for (const auto& part : parts) {
        out.insert(out.end(), part.begin(), part.end());
    }
    return out;
}

std::vector<OwnedFrame> decode_all(FrameDecoder& decoder, const std::vector<std::uint8_t>& stream,
                                   DecodeResult* last = nullptr) {
    REQUIRE(decoder.feed(stream));
    std::vector<OwnedFrame> frames;
    const DecodeResult result = take_by_next(decoder, frames);
    if (last != nullptr) {
        *last = result;
    }
    return frames;
}

// Encodes a body under spec with a header whose non-length bytes are 0xAA.
std::vector<std::uint8_t> encoded(const FrameSpec& spec, const std::vector<std::uint8_t>& body) {
    std::vector<std::uint8_t> header(spec.header_bytes, 0xAA);
    ByteBuffer out;
    REQUIRE(encode_frame(spec, header, body, out) == EncodeError::none);
    return {out.readable().begin(), out.readable().end()};
}

}  // namespace

// ===========================================================================
// The default protocol

TEST_CASE("the default spec is the seed protocol and is valid", "[frame][spec]") {
    const FrameSpec spec;
    CHECK(validate(spec) == SpecError::none);
    CHECK(spec.header_bytes == 20);
    CHECK(spec.length_offset_bytes == 8);
    CHECK(spec.length_width_bytes == 4);
    CHECK(spec.length_byte_order == ByteOrder::big_endian);
    CHECK(spec.length_signed);
    CHECK(spec.length_adjustment_bytes == 0);
}

TEST_CASE("DefaultHeader is five big-endian uint32 fields", "[frame][default]") {
    const DefaultHeader header{0x01020304, 0x05060708, 0x090A0B0C, 0x0D0E0F10, 0x11121314};
    const auto bytes = header.bytes();
    CHECK(std::vector<std::uint8_t>(bytes.begin(), bytes.end()) ==
          bytes_of({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}));
    CHECK(DefaultHeader::parse(bytes) == header);
}

TEST_CASE("a default frame encodes as header with body_len then body", "[frame][encode]") {
    const auto frame = default_frame(0x11, 0x22, bytes_of({'h', 'i', '!'}));
    CHECK(frame == bytes_of({0, 0, 0, 0x11, 0, 0, 0, 0x22, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 'h', 'i', '!'}));
}

TEST_CASE("one whole frame decodes to its header and body and offset", "[frame][decode]") {
    FrameDecoder decoder;
    const auto frame = default_frame(5, 9, body_of(32));
    const std::span<std::uint8_t> received = decoder.prepare(frame.size());  // where recv() would write
    std::memcpy(received.data(), frame.data(), frame.size());
    decoder.commit(frame.size());
    const DecodeResult result = decoder.next();
    REQUIRE(result.status == DecodeStatus::frame);
    CHECK(result.frame.stream_offset == 0);
    CHECK(result.frame.header.size() == 20);
    const DefaultHeader header = DefaultHeader::parse(result.frame.header.first<20>());
    CHECK(header.cmd == 5);
    CHECK(header.seq == 9);
    CHECK(header.body_len == 32);
    CHECK(std::vector<std::uint8_t>(result.frame.body.begin(), result.frame.body.end()) == body_of(32));
    // The frame is a view of the received bytes in place, not a copy.
    CHECK(result.frame.header.data() == received.data());
    CHECK(result.frame.body.data() == received.data() + 20);

    const DecodeResult after = decoder.next();
    CHECK(after.status == DecodeStatus::need_more);
    CHECK(after.bytes_missing == 20);
    CHECK(decoder.stream_offset() == 52);
}

TEST_CASE("a frame with an empty body is a frame", "[frame][decode][boundary]") {
    FrameDecoder decoder;
    const auto frames = decode_all(decoder, default_frame(1, 2, {}));
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].body.empty());
    CHECK(decoder.stream_offset() == 20);
}

// ===========================================================================
// Half and sticky packets

TEST_CASE("a half packet yields need_more with the bytes still missing", "[frame][decode][chunking]") {
    const auto frame = default_frame(1, 1, body_of(32));
    FrameDecoder decoder;
    SECTION("nothing yet") {
        CHECK(decoder.next().bytes_missing == 20);
    }
    SECTION("part of the header, length field incomplete") {
        REQUIRE(decoder.feed(std::span(frame).first(10)));
        const DecodeResult result = decoder.next();
        CHECK(result.status == DecodeStatus::need_more);
        CHECK(result.bytes_missing == 10);
    }
    SECTION("length field complete, header not") {
        REQUIRE(decoder.feed(std::span(frame).first(12)));
        const DecodeResult result = decoder.next();
        CHECK(result.status == DecodeStatus::need_more);
        CHECK(result.bytes_missing == 40);
    }
    SECTION("header complete, body partial") {
        REQUIRE(decoder.feed(std::span(frame).first(30)));
        const DecodeResult result = decoder.next();
        CHECK(result.status == DecodeStatus::need_more);
        CHECK(result.bytes_missing == 22);
        SECTION("the rest completes it") {
            REQUIRE(decoder.feed(std::span(frame).subspan(30)));
            CHECK(decoder.next().status == DecodeStatus::frame);
        }
    }
}

TEST_CASE("a frame split at every possible point decodes the same", "[frame][decode][chunking]") {
    const auto frame = default_frame(3, 4, body_of(32, 50));
    for (std::size_t split = 0; split <= frame.size(); ++split) {
        CAPTURE(split);
        FrameDecoder decoder;
        std::vector<OwnedFrame> frames;
        REQUIRE(decoder.feed(std::span(frame).first(split)));
        take_by_next(decoder, frames);
        CHECK(frames.size() == (split == frame.size() ? 1U : 0U));
        REQUIRE(decoder.feed(std::span(frame).subspan(split)));
        take_by_next(decoder, frames);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].body == body_of(32, 50));
    }
}

TEST_CASE("sticky packets: many frames in one chunk come out one by one", "[frame][decode][chunking]") {
    const auto stream = concat({default_frame(1, 1, body_of(3)), default_frame(1, 2, {}),
                                default_frame(1, 3, body_of(100)), default_frame(1, 4, body_of(1))});
    FrameDecoder decoder;
    const auto frames = decode_all(decoder, stream);
    REQUIRE(frames.size() == 4);
    CHECK(frames[0].stream_offset == 0);
    CHECK(frames[1].stream_offset == 23);
    CHECK(frames[2].stream_offset == 43);
    CHECK(frames[3].stream_offset == 163);
    CHECK(frames[2].body == body_of(100));
    CHECK(decoder.stream_offset() == stream.size());
}

TEST_CASE("sticky and half at once: a chunk ends inside the third frame", "[frame][decode][chunking]") {
    const auto stream =
        concat({default_frame(1, 1, body_of(8)), default_frame(1, 2, body_of(8)), default_frame(1, 3, body_of(8))});
    FrameDecoder decoder;
    DecodeResult last;
    auto frames = decode_all(decoder, {stream.begin(), stream.end() - 5}, &last);
    CHECK(frames.size() == 2);
    CHECK(last.status == DecodeStatus::need_more);
    CHECK(last.bytes_missing == 5);
    CHECK(decoder.buffered().size() == 23);
}

TEST_CASE("a stream fed one byte at a time yields every frame exactly once", "[frame][decode][chunking]") {
    std::vector<std::uint8_t> stream;
    for (std::uint32_t i = 0; i < 50; ++i) {
        const auto frame = default_frame(9, i, body_of(i % 7 * 5, static_cast<std::uint8_t>(i)));
        stream.insert(stream.end(), frame.begin(), frame.end());
    }
    const std::vector<std::size_t> ones(stream.size(), 1);
    const auto outcome = eagain::testing::decode_in_chunks(FrameSpec{}, stream, ones);
    REQUIRE(outcome.frames.size() == 50);
    for (std::uint32_t i = 0; i < 50; ++i) {
        CHECK(DefaultHeader::parse(std::span<const std::uint8_t, 20>(outcome.frames[i].header.data(), 20)).seq == i);
        CHECK(outcome.frames[i].body == body_of(i % 7 * 5, static_cast<std::uint8_t>(i)));
    }
    CHECK(outcome.final_status == DecodeStatus::need_more);
}

TEST_CASE("earlier frames stay valid while later ones are decoded", "[frame][decode]") {
    FrameDecoder decoder;
    REQUIRE(decoder.feed(concat({default_frame(1, 1, body_of(4, 10)), default_frame(1, 2, body_of(4, 20))})));
    const DecodeResult first = decoder.next();
    const DecodeResult second = decoder.next();
    REQUIRE(first.status == DecodeStatus::frame);
    REQUIRE(second.status == DecodeStatus::frame);
    CHECK(std::vector<std::uint8_t>(first.frame.body.begin(), first.frame.body.end()) == body_of(4, 10));
    CHECK(std::vector<std::uint8_t>(second.frame.body.begin(), second.frame.body.end()) == body_of(4, 20));
}

TEST_CASE("recv-style input through prepare and commit decodes like feed", "[frame][decode]") {
    const auto stream = concat({default_frame(1, 1, body_of(40)), default_frame(1, 2, body_of(3))});
    FrameDecoder decoder;
    std::vector<OwnedFrame> frames;
    std::size_t at = 0;
    while (at < stream.size()) {
        const std::span<std::uint8_t> space = decoder.prepare(7);  // a 7-byte recv buffer
        const std::size_t n = std::min(space.size(), stream.size() - at);
        std::memcpy(space.data(), stream.data() + at, n);
        decoder.commit(n);
        at += n;
        take_by_next(decoder, frames);
    }
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].body == body_of(40));
    CHECK(frames[1].body == body_of(3));
}

TEST_CASE("drain hands over every complete frame then says what next() would", "[frame][decode]") {
    FrameDecoder decoder;
    const auto stream =
        concat({default_frame(1, 1, body_of(3)), default_frame(1, 2, {}), default_frame(1, 3, body_of(9))});
    SECTION("ending in need_more") {
        REQUIRE(decoder.feed(std::span(stream).first(stream.size() - 4)));
        std::vector<std::uint32_t> seqs;
        const DecodeResult result = decoder.drain(
            [&](const Frame& frame) { seqs.push_back(DefaultHeader::parse(frame.header.first<20>()).seq); });
        CHECK(seqs == std::vector<std::uint32_t>{1, 2});
        CHECK(result.status == DecodeStatus::need_more);
        CHECK(result.bytes_missing == 4);
        CHECK(decoder.stream_offset() == 43);
    }
    SECTION("ending in an error, after the frames before it") {
        REQUIRE(decoder.feed(concat({stream, raw_default_header(0x80000001U)})));
        int frames = 0;
        const DecodeResult result = decoder.drain([&](const Frame&) { ++frames; });
        CHECK(frames == 3);
        REQUIRE(result.status == DecodeStatus::failed);
        CHECK(result.error.kind == FrameErrorKind::negative_length);
        CHECK(result.error.stream_offset == stream.size() + 8);
        CHECK(decoder.drain([&](const Frame&) { ++frames; }).status == DecodeStatus::failed);
        CHECK(frames == 3);
    }
    SECTION("with nothing buffered") {
        CHECK(decoder.drain([](const Frame&) { FAIL("no frame expected"); }).bytes_missing == 20);
    }
}

TEST_CASE("bytes received between prepare and commit survive decoding in between", "[frame][decode]") {
    // prepare(), then decode what is already buffered, then commit() what
    // recv() wrote: the decoder's buffer empties and must not rewind under
    // the prepared span (found by fuzzing: the old frame came back instead).
    FrameDecoder decoder;
    REQUIRE(decoder.feed(default_frame(1, 1, bytes_of({'a', 'b', 'c', 'd'}))));
    const auto second = default_frame(1, 2, bytes_of({'w', 'x', 'y', 'z'}));
    const std::span<std::uint8_t> space = decoder.prepare(second.size());
    std::memcpy(space.data(), second.data(), second.size());
    std::vector<OwnedFrame> frames;
    take_by_next(decoder, frames);
    decoder.commit(second.size());
    take_by_next(decoder, frames);
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].body == bytes_of({'a', 'b', 'c', 'd'}));
    CHECK(frames[1].body == bytes_of({'w', 'x', 'y', 'z'}));
    CHECK(frames[1].stream_offset == 24);
}

TEST_CASE("a commit after the decoder failed between prepare and commit is discarded", "[frame][error]") {
    FrameDecoder decoder;
    REQUIRE(decoder.feed(raw_default_header(0x80000000U)));
    const std::span<std::uint8_t> space = decoder.prepare(10);
    REQUIRE(space.size() == 10);
    CHECK(decoder.next().status == DecodeStatus::failed);
    decoder.commit(10);
    CHECK(decoder.buffered().empty());
    CHECK(decoder.next().error.stream_offset == 8);
}

// ===========================================================================
// Errors

TEST_CASE("a negative body_len fails with negative_length at the length field's offset", "[frame][error]") {
    const auto length = GENERATE(0x80000000U, 0xFFFFFFFFU, 0xFFFFFFECU);
    CAPTURE(length);
    SECTION("in the first frame") {
        FrameDecoder decoder;
        DecodeResult last;
        const auto frames = decode_all(decoder, raw_default_header(length), &last);
        CHECK(frames.empty());
        REQUIRE(last.status == DecodeStatus::failed);
        CHECK(last.error.kind == FrameErrorKind::negative_length);
        CHECK(last.error.stream_offset == 8);
        CHECK(last.error.length_field == length);
    }
    SECTION("after a good frame, which is still delivered") {
        FrameDecoder decoder;
        DecodeResult last;
        const auto frames =
            decode_all(decoder, concat({default_frame(1, 1, body_of(32)), raw_default_header(length)}), &last);
        CHECK(frames.size() == 1);
        REQUIRE(last.status == DecodeStatus::failed);
        CHECK(last.error.kind == FrameErrorKind::negative_length);
        CHECK(last.error.stream_offset == 52 + 8);
    }
}

TEST_CASE("a length field is judged as soon as it is complete", "[frame][error]") {
    // Only 12 of 20 header bytes: the length field (bytes 8..11) is there.
    const auto header = raw_default_header(0x80000000U);
    FrameDecoder decoder;
    REQUIRE(decoder.feed(std::span(header).first(12)));
    CHECK(decoder.next().status == DecodeStatus::failed);
    SECTION("but not before") {
        FrameDecoder early;
        REQUIRE(early.feed(std::span(header).first(11)));
        CHECK(early.next().status == DecodeStatus::need_more);
    }
}

TEST_CASE("frame sizes at the maximum are accepted and one past it are not", "[frame][error][boundary]") {
    FrameSpec spec;
    spec.max_frame_bytes = 20 + 100;
    SECTION("body of max - header bytes: frame exactly max") {
        FrameDecoder decoder(spec);
        const auto frames = decode_all(decoder, concat({raw_default_header(100), body_of(100)}));
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].body.size() == 100);
    }
    SECTION("one more byte: too_large") {
        FrameDecoder decoder(spec);
        DecodeResult last;
        decode_all(decoder, raw_default_header(101), &last);
        REQUIRE(last.status == DecodeStatus::failed);
        CHECK(last.error.kind == FrameErrorKind::too_large);
        CHECK(last.error.length_field == 101);
        CHECK(last.error.stream_offset == 8);
    }
    SECTION("the largest positive int32: too_large, not negative") {
        FrameDecoder decoder(spec);
        DecodeResult last;
        decode_all(decoder, raw_default_header(0x7FFFFFFF), &last);
        CHECK(last.error.kind == FrameErrorKind::too_large);
    }
    SECTION("the encoder refuses the same sizes") {
        ByteBuffer out;
        const auto header = DefaultHeader{}.bytes();
        CHECK(encode_frame(spec, header, body_of(100), out) == EncodeError::none);
        CHECK(encode_frame(spec, header, body_of(101), out) == EncodeError::frame_too_large);
        CHECK(out.size() == 120);
    }
}

TEST_CASE("an unsigned length with its top bit set is a size and not a sign", "[frame][error]") {
    FrameSpec spec;
    spec.length_signed = false;
    FrameDecoder decoder(spec);
    DecodeResult last;
    decode_all(decoder, raw_default_header(0x80000000U), &last);
    REQUIRE(last.status == DecodeStatus::failed);
    CHECK(last.error.kind == FrameErrorKind::too_large);
}

TEST_CASE("a length that counts the header must cover the header", "[frame][error][adjustment]") {
    FrameSpec spec;
    spec.length_adjustment_bytes = -20;  // body_len counts the whole frame
    SECTION("length 19 would end inside the header") {
        FrameDecoder decoder(spec);
        DecodeResult last;
        decode_all(decoder, raw_default_header(19), &last);
        REQUIRE(last.status == DecodeStatus::failed);
        CHECK(last.error.kind == FrameErrorKind::shorter_than_header);
        CHECK(last.error.length_field == 19);
    }
    SECTION("length 20 is a header-only frame") {
        FrameDecoder decoder(spec);
        const auto frames = decode_all(decoder, raw_default_header(20));
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].body.empty());
    }
    SECTION("length 25 carries five body bytes") {
        FrameDecoder decoder(spec);
        const auto frames = decode_all(decoder, concat({raw_default_header(25), body_of(5)}));
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].body == body_of(5));
    }
}

TEST_CASE("length arithmetic that would wrap around 64 bits is length_overflow", "[frame][error][overflow]") {
    FrameSpec spec;
    spec.header_bytes = 8;
    spec.length_offset_bytes = 0;
    spec.length_width_bytes = 8;
    spec.length_signed = false;
    spec.max_frame_bytes = static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max());
    const auto all_ones = bytes_of({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});

    SECTION("length + header wraps") {
        FrameDecoder decoder(spec);
        DecodeResult last;
        decode_all(decoder, all_ones, &last);
        REQUIRE(last.status == DecodeStatus::failed);
        CHECK(last.error.kind == FrameErrorKind::length_overflow);
        CHECK(last.error.length_field == std::numeric_limits<std::uint64_t>::max());
        CHECK(last.error.stream_offset == 0);
    }
    SECTION("length + adjustment wraps") {
        spec.length_adjustment_bytes = 1;
        FrameDecoder decoder(spec);
        DecodeResult last;
        decode_all(decoder, all_ones, &last);
        CHECK(last.error.kind == FrameErrorKind::length_overflow);
    }
    SECTION("a length just below the wrap is merely too large") {
        FrameDecoder decoder(spec);
        DecodeResult last;
        decode_all(decoder, bytes_of({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF7}), &last);
        CHECK(last.error.kind == FrameErrorKind::too_large);
    }
    SECTION("the most negative adjustment does not wrap the other way") {
        spec.length_adjustment_bytes = std::numeric_limits<std::int64_t>::min();
        FrameDecoder decoder(spec);
        DecodeResult last;
        decode_all(decoder, bytes_of({0, 0, 0, 0, 0, 0, 0, 5}), &last);
        CHECK(last.error.kind == FrameErrorKind::shorter_than_header);
    }
}

TEST_CASE("a failed decoder stays failed and never resynchronises", "[frame][error]") {
    FrameDecoder decoder;
    DecodeResult last;
    decode_all(decoder, concat({raw_default_header(0xFFFFFFFFU), default_frame(1, 1, body_of(4))}), &last);
    REQUIRE(last.status == DecodeStatus::failed);
    const FrameError error = last.error;
    CHECK(decoder.failed());
    CHECK(decoder.buffered().empty());

    // Valid frames after the error are not delivered: the stream boundary
    // is lost, and bytes that happen to parse are not frames.
    for (int i = 0; i < 100; ++i) {
        REQUIRE(decoder.feed(default_frame(1, 2, body_of(1000))));
        const std::span<std::uint8_t> space = decoder.prepare(500);
        decoder.commit(space.size());
        const DecodeResult again = decoder.next();
        CHECK(again.status == DecodeStatus::failed);
        CHECK(again.error == error);
    }
    // ...and discarded, so a peer that keeps sending cannot grow memory.
    CHECK(decoder.buffered().empty());
    CHECK(decoder.buffer().capacity() <= 64 * 1024);
}

TEST_CASE("every error value has a name and values outside the enum say so", "[frame][error]") {
    for (const auto kind : {FrameErrorKind::negative_length, FrameErrorKind::shorter_than_header,
                            FrameErrorKind::too_large, FrameErrorKind::length_overflow}) {
        CHECK_FALSE(to_string(kind).empty());
        CHECK(to_string(kind).find("unknown") == std::string_view::npos);
    }
    for (const auto error : {SpecError::none, SpecError::bad_length_width, SpecError::length_field_outside_header,
                             SpecError::max_below_header, SpecError::max_too_large}) {
        CHECK(to_string(error).find("unknown") == std::string_view::npos);
    }
    for (const auto error : {EncodeError::none, EncodeError::header_size_mismatch, EncodeError::frame_too_large,
                             EncodeError::length_unrepresentable, EncodeError::buffer_full}) {
        CHECK(to_string(error).find("unknown") == std::string_view::npos);
    }
    // A corrupted value (e.g. read from a bad trace) is named, not undefined.
    CHECK(to_string(static_cast<FrameErrorKind>(200)) == "unknown FrameErrorKind");
    CHECK(to_string(static_cast<SpecError>(200)) == "unknown SpecError");
    CHECK(to_string(static_cast<EncodeError>(200)) == "unknown EncodeError");
}

TEST_CASE("describe names the offset and the raw field and the kind", "[frame][error]") {
    const FrameError error{FrameErrorKind::too_large, 60, 0x7fffffff};
    const std::string text = describe(error);
    CHECK_THAT(text, Catch::Contains("60") && Catch::Contains("0x7fffffff") && Catch::Contains("too_large"));
    CHECK(to_string(FrameErrorKind::negative_length) == "negative_length");
    CHECK(to_string(FrameErrorKind::shorter_than_header) == "shorter_than_header");
    CHECK(to_string(FrameErrorKind::length_overflow) == "length_overflow");
}

// ===========================================================================
// Memory

TEST_CASE("a hostile length reserves nothing before the bytes arrive", "[frame][memory]") {
    FrameSpec spec;
    spec.max_frame_bytes = std::uint64_t{1} << 30;  // 1 GiB frames are legal here
    FrameDecoder decoder(spec);
    DecodeResult last;
    decode_all(decoder, raw_default_header((1U << 30) - 20), &last);
    REQUIRE(last.status == DecodeStatus::need_more);
    CHECK(last.bytes_missing == (1U << 30) - 20);
    CHECK(decoder.buffer().capacity() <= 4096);
    // A recv-sized prepare is honoured as asked, not as announced.
    CHECK(decoder.prepare(16384).size() == 16384);
    CHECK(decoder.buffer().capacity() <= 2 * 16384 + 4096);
}

TEST_CASE("after need_more the decoder always has room for the missing bytes", "[frame][memory][limit]") {
    FrameSpec spec;
    spec.max_frame_bytes = 20 + 50;
    // The tightest legal limit: one maximal frame.
    FrameDecoder decoder(spec, 70);
    const auto stream =
        concat({default_frame(1, 1, body_of(50)), default_frame(1, 2, body_of(50)), default_frame(1, 3, body_of(50))});
    std::vector<OwnedFrame> frames;
    std::size_t at = 0;
    while (at < stream.size()) {
        const DecodeResult result = take_by_next(decoder, frames);
        REQUIRE(result.status == DecodeStatus::need_more);
        const std::span<std::uint8_t> space = decoder.prepare(result.bytes_missing);
        REQUIRE(space.size() == result.bytes_missing);
        const std::size_t n = std::min(space.size(), stream.size() - at);
        std::memcpy(space.data(), stream.data() + at, n);
        decoder.commit(n);
        at += n;
    }
    take_by_next(decoder, frames);
    CHECK(frames.size() == 3);
    CHECK(decoder.buffer().capacity() <= 140);
}

TEST_CASE("feed refuses input beyond the buffer limit and keeps what it has", "[frame][memory][limit]") {
    FrameSpec spec;
    spec.max_frame_bytes = 20 + 50;
    FrameDecoder decoder(spec, 100);
    const auto big = concat({default_frame(1, 1, body_of(50)), default_frame(1, 2, body_of(50))});
    CHECK_FALSE(decoder.feed(big));  // 140 > 100
    CHECK(decoder.buffered().empty());
    CHECK(decoder.feed(std::span(big).first(100)));
    CHECK(decoder.next().status == DecodeStatus::frame);
}

// ===========================================================================
// Widths, byte orders, adjustments

TEST_CASE("every length width and byte order puts the length where the spec says", "[frame][spec]") {
    const std::size_t width = GENERATE(1U, 2U, 4U, 8U);
    const ByteOrder order = GENERATE(ByteOrder::big_endian, ByteOrder::little_endian);
    CAPTURE(width, order == ByteOrder::big_endian);
    FrameSpec spec;
    spec.header_bytes = 2 + width + 1;  // a byte before and after the field, one more
    spec.length_offset_bytes = 2;
    spec.length_width_bytes = width;
    spec.length_byte_order = order;
    spec.length_signed = false;
    spec.max_frame_bytes = 1024;
    REQUIRE(validate(spec) == SpecError::none);

    const auto frame = encoded(spec, body_of(width == 1 ? 0x7B : 0x123));
    const std::size_t body_len = width == 1 ? 0x7B : 0x123;
    // The field's bytes, written out by hand.
    std::vector<std::uint8_t> field(width, 0);
    const std::uint8_t low = static_cast<std::uint8_t>(body_len & 0xFF);
    const std::uint8_t high = static_cast<std::uint8_t>(body_len >> 8);
    if (order == ByteOrder::big_endian) {
        field[width - 1] = low;
        if (width > 1)
            field[width - 2] = high;
    } else {
        field[0] = low;
        if (width > 1)
            field[1] = high;
    }
    CHECK(std::vector<std::uint8_t>(frame.begin() + 2, frame.begin() + 2 + static_cast<std::ptrdiff_t>(width)) ==
          field);
    CHECK(frame[0] == 0xAA);
    CHECK(frame[2 + width] == 0xAA);

    FrameDecoder decoder(spec);
    CHECK(decoder.spec() == spec);
    const auto frames = decode_all(decoder, frame);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].body.size() == body_len);
}

TEST_CASE("signed fields of every width reject their negative values", "[frame][spec][error]") {
    const std::size_t width = GENERATE(1U, 2U, 4U, 8U);
    CAPTURE(width);
    FrameSpec spec;
    spec.header_bytes = width;
    spec.length_offset_bytes = 0;
    spec.length_width_bytes = width;
    spec.length_signed = true;
    spec.max_frame_bytes = 1024;
    std::vector<std::uint8_t> minus_one(width, 0xFF);
    FrameDecoder decoder(spec);
    DecodeResult last;
    decode_all(decoder, minus_one, &last);
    REQUIRE(last.status == DecodeStatus::failed);
    CHECK(last.error.kind == FrameErrorKind::negative_length);
}

TEST_CASE("a length counting everything after the field (Netty's usual case)", "[frame][adjustment]") {
    // header: 2-byte magic, 2-byte length, 4-byte request id; length counts
    // the request id and the body.
    FrameSpec spec;
    spec.header_bytes = 8;
    spec.length_offset_bytes = 2;
    spec.length_width_bytes = 2;
    spec.length_signed = false;
    spec.length_adjustment_bytes = -4;
    spec.max_frame_bytes = 1000;
    REQUIRE(validate(spec) == SpecError::none);
    const auto wire = bytes_of({0xCA, 0xFE, 0x00, 0x07, 0, 0, 0, 42, 'a', 'b', 'c'});
    FrameDecoder decoder(spec);
    const auto frames = decode_all(decoder, wire);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].body == bytes_of({'a', 'b', 'c'}));
    CHECK(encoded(spec, bytes_of({'a', 'b', 'c'}))[3] == 7);
}

TEST_CASE("a positive adjustment adds fixed trailer bytes to every body", "[frame][adjustment]") {
    FrameSpec spec;
    spec.length_adjustment_bytes = 4;  // e.g. a 4-byte checksum after the counted body
    FrameDecoder decoder(spec);
    const auto frames = decode_all(decoder, concat({raw_default_header(2), body_of(6)}));
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].body.size() == 6);
}

// ===========================================================================
// Spec validation and encoder errors

TEST_CASE("validate names what is wrong with a spec", "[frame][spec]") {
    FrameSpec spec;
    SECTION("width") {
        spec.length_width_bytes = GENERATE(0U, 3U, 5U, 16U);
        CHECK(validate(spec) == SpecError::bad_length_width);
    }
    SECTION("field past the header") {
        spec.length_offset_bytes = 17;
        CHECK(validate(spec) == SpecError::length_field_outside_header);
        spec.length_offset_bytes = 16;
        CHECK(validate(spec) == SpecError::none);
        spec.length_offset_bytes = std::numeric_limits<std::size_t>::max();
        CHECK(validate(spec) == SpecError::length_field_outside_header);
    }
    SECTION("max below the header") {
        spec.max_frame_bytes = 19;
        CHECK(validate(spec) == SpecError::max_below_header);
        spec.max_frame_bytes = 20;
        CHECK(validate(spec) == SpecError::none);
    }
    SECTION("max beyond any span") {
        spec.max_frame_bytes = std::numeric_limits<std::uint64_t>::max();
        CHECK(validate(spec) == SpecError::max_too_large);
    }
    CHECK_FALSE(to_string(validate(spec)).empty());
}

TEST_CASE("the encoder refuses what the decoder could not read back", "[frame][encode][error]") {
    ByteBuffer out;
    SECTION("header of the wrong size") {
        const std::vector<std::uint8_t> short_header(19);
        CHECK(encode_frame(FrameSpec{}, short_header, body_of(1), out) == EncodeError::header_size_mismatch);
        std::vector<std::uint8_t> header(21);
        CHECK(encode_header(FrameSpec{}, header, 1) == EncodeError::header_size_mismatch);
    }
    SECTION("a body the field cannot express") {
        FrameSpec spec;
        spec.header_bytes = 1;
        spec.length_offset_bytes = 0;
        spec.length_width_bytes = 1;
        spec.length_signed = true;
        spec.max_frame_bytes = 10000;
        const std::vector<std::uint8_t> header(1);
        CHECK(encode_frame(spec, header, body_of(127), out) == EncodeError::none);
        CHECK(encode_frame(spec, header, body_of(128), out) == EncodeError::length_unrepresentable);
        spec.length_signed = false;
        CHECK(encode_frame(spec, header, body_of(255), out) == EncodeError::none);
        CHECK(encode_frame(spec, header, body_of(256), out) == EncodeError::length_unrepresentable);
    }
    SECTION("a body shorter than a positive adjustment") {
        FrameSpec spec;
        spec.length_adjustment_bytes = 4;
        CHECK(encode_frame(spec, DefaultHeader{}.bytes(), body_of(3), out) == EncodeError::length_unrepresentable);
        CHECK(encode_frame(spec, DefaultHeader{}.bytes(), body_of(4), out) == EncodeError::none);
    }
    SECTION("an output buffer at its limit takes nothing") {
        ByteBuffer limited(30);
        CHECK(encode_frame(FrameSpec{}, DefaultHeader{}.bytes(), body_of(10), limited) == EncodeError::none);
        CHECK(encode_frame(FrameSpec{}, DefaultHeader{}.bytes(), body_of(1), limited) == EncodeError::buffer_full);
        CHECK(limited.size() == 30);
    }
    SECTION("a failed encode leaves earlier output intact") {
        REQUIRE(encode_frame(FrameSpec{}, DefaultHeader{}.bytes(), body_of(2), out) == EncodeError::none);
        FrameSpec spec;
        spec.length_adjustment_bytes = 4;
        CHECK(encode_frame(spec, DefaultHeader{}.bytes(), body_of(1), out) == EncodeError::length_unrepresentable);
        CHECK(out.size() == 22);
    }
    CHECK(to_string(EncodeError::buffer_full) == "buffer_full");
}

TEST_CASE("header and body as two writev segments equal the buffered encoding", "[frame][encode]") {
    const auto body = body_of(33);
    auto header = DefaultHeader{42, 43, 0, 0, 0}.bytes();
    REQUIRE(encode_header(FrameSpec{}, header, body.size()) == EncodeError::none);
    const std::vector<std::uint8_t> gathered = concat({{header.begin(), header.end()}, body});
    CHECK(gathered == default_frame(42, 43, body));
}
