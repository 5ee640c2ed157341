// Framing throughput: eagain's FrameDecoder against the seed programs' naive
// std::string decoder, and against memcpy, the floor any recv path pays.
//
// Every benchmark replays one prebuilt stream per iteration, chunk by chunk,
// the way a read loop sees it: each chunk is copied into the decoder (as recv()
// would write it), then every complete frame is taken out and handled. A
// decoder object lives across iterations, like a long-lived connection.
//
// Read the results as ratios within one run:
//   BM_DecodeSmall / BM_NaiveDecodeSmall  items/s  (frames/s; drain(), as a
//                                         read loop takes frames out)
//   BM_DecodeSmallNext                    the same through next() per frame
//   BM_DecodeLarge / BM_MemcpyLarge       bytes/s
#include "bench/frame_streams.h"
#include "bench/naive_decoder.h"
#include "core/frame.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace eagain::bench {
namespace {

// A seed program's `char buf[4096]`.
constexpr std::size_t small_chunk_bytes = 4096;
constexpr std::size_t small_body_bytes = 32;
// 64 Ki frames of 52 bytes: 3.25 MiB, exactly 832 chunks of 4096.
constexpr std::size_t small_frame_count = 64U * 1024U;

constexpr std::size_t large_chunk_bytes = 64U * 1024U;
constexpr std::size_t large_body_bytes = 64U * 1024U;
// 4 MiB of bodies: larger than L2, so no variant runs from a warm L2 only.
constexpr std::size_t large_frame_count = 64;

const EncodedStream& small_stream() {
    static const EncodedStream stream = build_default_stream(small_frame_count, small_body_bytes);
    return stream;
}

const EncodedStream& large_stream() {
    static const EncodedStream stream = build_default_stream(large_frame_count, large_body_bytes);
    return stream;
}

// items/s = frames/s and bytes/s over every iteration's whole stream.
void report_throughput(benchmark::State& state, const EncodedStream& stream) {
    const auto iterations = static_cast<std::int64_t>(state.iterations());
    state.SetItemsProcessed(iterations * static_cast<std::int64_t>(stream.frame_count));
    state.SetBytesProcessed(iterations * static_cast<std::int64_t>(stream.bytes.size()));
}

// How frames are taken out after each read: drain(on_frame), the read
// loop's call, or one next() per frame.
enum class Output { drain, next };

// Replays stream into decoder in chunk_bytes pieces via prepare/memcpy/commit,
// taking frames out after each. Returns an error text, empty on success.
// A template on the output path so each variant is compiled on its own.
template <Output output>
std::string decode_stream(FrameDecoder& decoder, const EncodedStream& stream, std::size_t chunk_bytes,
                          FrameTally& tally) {
    const std::span<const std::uint8_t> all(stream.bytes);
    for (std::size_t offset = 0; offset < all.size(); offset += chunk_bytes) {
        const std::size_t n = std::min(chunk_bytes, all.size() - offset);
        const std::span<std::uint8_t> space = decoder.prepare(n);
        if (space.size() < n) {
            return "decoder offered " + std::to_string(space.size()) + " bytes, wanted " + std::to_string(n);
        }
        std::memcpy(space.data(), all.data() + offset, n);
        decoder.commit(n);
        if constexpr (output == Output::drain) {
            const DecodeResult result = decoder.drain(
                [&tally](const Frame& frame) { tally.count(frame.header, frame.body.data(), frame.body.size()); });
            if (result.status == DecodeStatus::failed) {
                return describe(result.error);
            }
        } else {
            for (;;) {
                // A fresh result per call: assigning into one reused variable
                // makes gcc copy the whole DecodeResult every frame.
                const DecodeResult result = decoder.next();
                if (result.status == DecodeStatus::frame) {
                    tally.count(result.frame.header, result.frame.body.data(), result.frame.body.size());
                    continue;
                }
                if (result.status == DecodeStatus::failed) {
                    return describe(result.error);
                }
                break;
            }
        }
    }
    if (!decoder.buffered().empty()) {
        return std::to_string(decoder.buffered().size()) + " bytes left undecoded";
    }
    return mismatch(stream, tally);
}

template <Output output>
void run_decoder(benchmark::State& state, const EncodedStream& stream, std::size_t chunk_bytes) {
    FrameDecoder decoder;
    for (auto _ : state) {
        FrameTally tally;
        const std::string error = decode_stream<output>(decoder, stream, chunk_bytes, tally);
        if (!error.empty()) {
            state.SkipWithError(error.c_str());
            return;
        }
    }
    report_throughput(state, stream);
    // Compaction copies per byte received (ByteBuffer::bytes_moved): the
    // decoder's own copying on top of the unavoidable recv copy.
    state.counters["moved_per_byte"] =
        static_cast<double>(decoder.buffer().bytes_moved()) /
        (static_cast<double>(state.iterations()) * static_cast<double>(stream.bytes.size()));
}

void BM_DecodeSmall(benchmark::State& state) {
    run_decoder<Output::drain>(state, small_stream(), small_chunk_bytes);
}
BENCHMARK(BM_DecodeSmall);

// The same through next(), one call per frame.
void BM_DecodeSmallNext(benchmark::State& state) {
    run_decoder<Output::next>(state, small_stream(), small_chunk_bytes);
}
BENCHMARK(BM_DecodeSmallNext);

void BM_NaiveDecodeSmall(benchmark::State& state) {
    const EncodedStream& stream = small_stream();
    const std::span<const std::uint8_t> all(stream.bytes);
    NaiveDecoder decoder;
    // The seed program's receive buffer: recv() fills it, then the decoder
    // appends from it (the naive design's second copy).
    std::array<std::uint8_t, small_chunk_bytes> buf;
    for (auto _ : state) {
        FrameTally tally;
        for (std::size_t offset = 0; offset < all.size(); offset += small_chunk_bytes) {
            const std::size_t n = std::min(small_chunk_bytes, all.size() - offset);
            std::memcpy(buf.data(), all.data() + offset, n);  // recv(fd, buf, sizeof buf)
            benchmark::DoNotOptimize(buf.data());
            decoder.on_received(std::span<const std::uint8_t>(buf.data(), n), tally);
        }
        std::string error = decoder.buffered_bytes() != 0
                                ? std::to_string(decoder.buffered_bytes()) + " bytes left undecoded"
                                : mismatch(stream, tally);
        if (!error.empty()) {
            state.SkipWithError(error.c_str());
            return;
        }
    }
    report_throughput(state, stream);
}
BENCHMARK(BM_NaiveDecodeSmall);

void BM_DecodeLarge(benchmark::State& state) {
    run_decoder<Output::drain>(state, large_stream(), large_chunk_bytes);
}
BENCHMARK(BM_DecodeLarge);

// The floor: the same bytes in the same chunks copied into one chunk-sized
// buffer, with no framing at all.
void BM_MemcpyLarge(benchmark::State& state) {
    const EncodedStream& stream = large_stream();
    const std::span<const std::uint8_t> all(stream.bytes);
    std::vector<std::uint8_t> destination(large_chunk_bytes);
    benchmark::DoNotOptimize(destination.data());
    for (auto _ : state) {
        for (std::size_t offset = 0; offset < all.size(); offset += large_chunk_bytes) {
            const std::size_t n = std::min(large_chunk_bytes, all.size() - offset);
            std::memcpy(destination.data(), all.data() + offset, n);
            benchmark::ClobberMemory();
        }
    }
    report_throughput(state, stream);
}
BENCHMARK(BM_MemcpyLarge);

}  // namespace
}  // namespace eagain::bench
