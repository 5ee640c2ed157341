// Feeding a FrameDecoder a stream in given chunks and collecting what it
// yields, in the same shape as the reference decoder's outcome.
#pragma once

#include "core/frame.h"
#include "tests/support/reference_decoder.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace eagain::testing {

inline OwnedFrame own(const Frame& frame) {
    return OwnedFrame{
        frame.stream_offset, {frame.header.begin(), frame.header.end()}, {frame.body.begin(), frame.body.end()}};
}

// Calls decoder.next() into out until it needs more or has failed; returns
// the last result.
inline DecodeResult take_by_next(FrameDecoder& decoder, std::vector<OwnedFrame>& out) {
    for (;;) {
        DecodeResult result = decoder.next();
        if (result.status != DecodeStatus::frame) {
            return result;
        }
        out.push_back(own(result.frame));
    }
}

// The same through FrameDecoder::drain(on_frame).
inline DecodeResult take_by_drain(FrameDecoder& decoder, std::vector<OwnedFrame>& out) {
    return decoder.drain([&](const Frame& frame) { out.push_back(own(frame)); });
}

// Splits stream at the given chunk sizes (the last chunk takes whatever is
// left), writing odd chunks recv-style through prepare/commit and even ones
// through feed(); every fourth chunk feeds its first half, prepares space for
// the rest, takes the frames out, and only then commits. After each chunk it takes the
// frames out, alternating between a next() loop and drain() every other pair
// of chunks, so both output paths see every input path.
inline ReferenceOutcome decode_in_chunks(const FrameSpec& spec, std::span<const std::uint8_t> stream,
                                         std::span<const std::size_t> chunk_sizes) {
    FrameDecoder decoder(spec);
    ReferenceOutcome outcome;
    DecodeResult last = decoder.next();
    std::size_t at = 0;
    std::size_t chunk_index = 0;
    while (at < stream.size()) {
        std::size_t n = stream.size() - at;
        if (chunk_index < chunk_sizes.size()) {
            n = std::min(n, chunk_sizes[chunk_index]);
        }
        const std::span<const std::uint8_t> chunk = stream.subspan(at, n);
        if (chunk_index % 2 == 0) {
            if (!decoder.feed(chunk)) {
                break;  // caller checks the outcome; a refused feed loses frames
            }
        } else if (chunk_index % 4 == 3) {
            // Frames buffered but not yet taken out when space is prepared,
            // taken out before the prepared bytes are committed: a read loop
            // that decodes while its recv() is pending.
            const std::size_t head = n / 2;
            if (!decoder.feed(chunk.first(head))) {
                break;
            }
            const std::span<std::uint8_t> space = decoder.prepare(n - head);
            take_by_drain(decoder, outcome.frames);
            if (!space.empty()) {  // an empty span may have a null data()
                std::memcpy(space.data(), chunk.data() + head, space.size());
            }
            decoder.commit(space.size());
            n = head + space.size();
        } else {
            const std::span<std::uint8_t> space = decoder.prepare(n);
            if (!space.empty()) {  // an empty span may have a null data()
                std::memcpy(space.data(), chunk.data(), space.size());
            }
            decoder.commit(space.size());
            n = space.size();
        }
        at += n;
        last =
            (chunk_index / 2) % 2 == 0 ? take_by_next(decoder, outcome.frames) : take_by_drain(decoder, outcome.frames);
        ++chunk_index;
    }
    outcome.final_status = last.status;
    outcome.bytes_missing = last.status == DecodeStatus::need_more ? last.bytes_missing : 0;
    outcome.error = last.error;
    return outcome;
}

inline std::vector<std::uint8_t> bytes_of(std::initializer_list<int> values) {
    std::vector<std::uint8_t> out;
    for (const int v : values) {
        out.push_back(static_cast<std::uint8_t>(v));
    }
    return out;
}

}  // namespace eagain::testing
