#include "bench/frame_streams.h"

#include "core/byte_buffer.h"
#include "core/frame.h"

#include <stdexcept>

namespace eagain::bench {

EncodedStream build_default_stream(std::size_t frame_count, std::size_t body_bytes) {
    const FrameSpec spec;
    ByteBuffer out;
    EncodedStream stream;
    std::vector<std::uint8_t> body(body_bytes);
    for (std::size_t i = 0; i < frame_count; ++i) {
        for (std::size_t b = 0; b < body.size(); ++b) {
            body[b] = static_cast<std::uint8_t>(i + b);
        }
        DefaultHeader header;
        header.cmd = 1;
        header.seq = static_cast<std::uint32_t>(i);
        const auto header_bytes = header.bytes();
        if (encode_frame(spec, header_bytes, body, out) != EncodeError::none) {
            throw std::runtime_error("build_default_stream: encode_frame failed");
        }
        stream.seq_sum += header.seq;
        stream.body_bytes_sum += body.size();
    }
    stream.frame_count = frame_count;
    const auto readable = out.readable();
    stream.bytes.assign(readable.begin(), readable.end());
    return stream;
}

std::string mismatch(const EncodedStream& stream, FrameTally tally) {
    if (tally.frame_count != stream.frame_count) {
        return "decoded " + std::to_string(tally.frame_count) + " frames, expected " +
               std::to_string(stream.frame_count);
    }
    if (tally.seq_sum != stream.seq_sum) {
        return "seq sum " + std::to_string(tally.seq_sum) + ", expected " + std::to_string(stream.seq_sum);
    }
    if (tally.body_bytes_sum != stream.body_bytes_sum) {
        return "body bytes " + std::to_string(tally.body_bytes_sum) + ", expected " +
               std::to_string(stream.body_bytes_sum);
    }
    return {};
}

}  // namespace eagain::bench
