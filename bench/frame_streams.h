// Prebuilt encoded streams for the framing benchmarks, and the per-frame
// "handling" that every decoder under comparison performs identically.
//
// A stream is built once (outside any timed region) with the real encoder, and
// carries the totals a correct decode must reproduce, so a benchmark that
// silently decodes nothing, or the wrong thing, fails instead of reporting a
// great number.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace eagain::bench {

struct EncodedStream {
    std::vector<std::uint8_t> bytes;
    std::uint64_t frame_count = 0;
    // Sum of every frame's seq field (frame i carries seq = i).
    std::uint64_t seq_sum = 0;
    std::uint64_t body_bytes_sum = 0;
};

// frame_count frames of the default protocol (FrameSpec{}, DefaultHeader),
// each with a body of body_bytes, encoded back to back.
EncodedStream build_default_stream(std::size_t frame_count, std::size_t body_bytes);

// A 4-byte big-endian header field, as seed code reads it (ntohl); compiles to
// one load and a byte swap, so the per-frame handling stays negligible.
inline std::uint32_t load_be32(std::span<const std::uint8_t, 4> bytes) noexcept {
    return (std::uint32_t{bytes[0]} << 24U) | (std::uint32_t{bytes[1]} << 16U) | (std::uint32_t{bytes[2]} << 8U) |
           std::uint32_t{bytes[3]};
}

// What a decode saw, to compare against the stream's totals.
struct FrameTally {
    std::uint64_t frame_count = 0;
    std::uint64_t seq_sum = 0;
    std::uint64_t body_bytes_sum = 0;

    // The per-frame work of every decoder under comparison: read one 4-byte
    // header field (seq, at offset 4) and hand the body to an opaque consumer.
    // Kept deliberately cheap so the decoders' own costs dominate.
    void count(std::span<const std::uint8_t> header, const void* body_data, std::size_t body_size) noexcept {
        benchmark::DoNotOptimize(body_data);
        ++frame_count;
        seq_sum += load_be32(header.subspan<4, 4>());
        body_bytes_sum += body_size;
    }
};

// Empty if tally matches stream, otherwise what differs (for SkipWithError).
// By value, so the caller's tally never has its address taken and can live in
// registers while frames are counted.
std::string mismatch(const EncodedStream& stream, FrameTally tally);

}  // namespace eagain::bench
