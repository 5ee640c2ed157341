// The baseline: framing the way the seed programs do it, kept deliberately
// naive so the benchmark measures what eagain's decoder replaces.
//
//   std::string buffer;  buffer.append(buf, n);       // after each recv()
//   while (buffer.size() >= 20) {
//       len = ntohl(body_len);  if (buffer.size() < 20 + len) break;
//       std::string body = buffer.substr(20, len);    // a copy per frame
//       handle(...);
//       buffer.erase(0, 20 + len);                    // shifts the rest down
//   }
//
// No error checks beyond what the seed code has: a negative length is not
// rejected. Only the default protocol (20-byte header, body_len at offset 8).
#pragma once

#include "bench/frame_streams.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace eagain::bench {

class NaiveDecoder {
public:
    static constexpr std::size_t header_bytes = 20;

    // One recv()'s worth of bytes: append, then handle every complete frame.
    void on_received(std::span<const std::uint8_t> chunk, FrameTally& tally) {
        buffer_.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        while (buffer_.size() >= header_bytes) {
            const std::span<const std::uint8_t, header_bytes> header(
                reinterpret_cast<const std::uint8_t*>(buffer_.data()), header_bytes);
            // ntohl(*(uint32_t*)(header + 8))
            const std::uint32_t body_len = load_be32(header.subspan<8, 4>());
            if (buffer_.size() < header_bytes + body_len) {
                break;
            }
            const std::string body = buffer_.substr(header_bytes, body_len);
            tally.count(header, body.data(), body.size());
            buffer_.erase(0, header_bytes + body_len);
        }
    }

    std::size_t buffered_bytes() const noexcept { return buffer_.size(); }

private:
    std::string buffer_;
};

}  // namespace eagain::bench
