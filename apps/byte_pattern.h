// The byte stream BulkSender writes and BulkReceiverServer checks
// (apps/byte_apps.h), in one place so the two cannot drift apart.
//
// Byte i of every connection's stream (counted from 0 on that connection)
// is a function of i alone: i modulo a prime period, mixed so that
// neighbouring bytes look unrelated. A stream that lost, repeated or
// reordered bytes is out of step with the pattern from the first wrong byte
// on (a one-byte slip is caught at that byte with probability 255/256, and
// within a few bytes almost surely), unless the slip is a whole multiple of
// the period. The period is prime, so no chunk, buffer or segment size that
// is a power of two, or a small multiple of one, is such a multiple.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace eagain {

// Prime, larger than 2^19 and than any default chunk or buffer size.
inline constexpr std::uint64_t stream_pattern_period_bytes = 1'000'003;

// The byte at stream offset offset_bytes.
std::uint8_t stream_pattern_byte(std::uint64_t offset_bytes) noexcept;
// out[k] = stream_pattern_byte(offset_bytes + k).
void fill_stream_pattern(std::uint64_t offset_bytes, std::span<std::uint8_t> out) noexcept;
// The index in bytes of the first byte that is not the pattern's at
// offset_bytes + index; nullopt if all of them are.
std::optional<std::size_t> first_pattern_mismatch(std::uint64_t offset_bytes,
                                                  std::span<const std::uint8_t> bytes) noexcept;

}  // namespace eagain
