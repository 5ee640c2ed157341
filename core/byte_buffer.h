// ByteBuffer: one direction of a byte stream, as a contiguous readable region
// followed by free space.
//
//   [ consumed | readable ............ | free .............. ]
//              ^ readable().data()      ^ prepare(n).data()
//
// Writers (recv, the frame encoder) ask for free space with prepare(n), write
// into it, and publish what they wrote with commit(k). Readers look at
// readable() in place and drop what they used with consume(k). No call copies
// the readable region except prepare() when it has to make room, and that copy
// is amortised O(1) per byte (see bytes_moved()): the buffer slides the
// readable region to the front only when it is no longer than the consumed
// prefix (so slides copy at most what was consumed) and, while it may still
// grow, no longer than a quarter of the allocation; otherwise it grows
// geometrically (so growth copies less than twice the final allocation).
//
// An optional limit caps size(): prepare() then hands out only what fits and
// append() refuses instead of growing. This is the hook for backpressure: a
// full receive buffer means "stop reading from this peer". The allocation never
// exceeds twice the limit, and only bytes actually written make it grow.
//
// Spans returned by readable() stay valid until the next prepare(), append()
// or clear(); consume() never moves bytes, so a reader may keep views into
// several consumed regions until it next writes.
#pragma once

#include "core/assert.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>

namespace eagain {

class ByteBuffer {
public:
    static constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

    explicit ByteBuffer(std::size_t limit_bytes = unlimited) noexcept;
    ByteBuffer(ByteBuffer&& other) noexcept;
    ByteBuffer& operator=(ByteBuffer&& other) noexcept;
    ByteBuffer(const ByteBuffer&) = delete;
    ByteBuffer& operator=(const ByteBuffer&) = delete;
    ~ByteBuffer() = default;

    // --- reading ---------------------------------------------------------
    std::span<const std::uint8_t> readable() const noexcept { return {storage_.get() + read_, write_ - read_}; }
    std::size_t size() const noexcept { return write_ - read_; }
    bool empty() const noexcept { return write_ == read_; }

    // Drops the first n readable bytes (n <= size()).
    void consume(std::size_t n) noexcept {
        EAGAIN_ASSERT(n <= size());
        read_ += n;
        if (read_ == write_ && prepared_ == 0) {
            // Rewinding an empty buffer is free and makes the next compaction
            // unnecessary; the bytes themselves are left in place. Not while
            // a prepare() span is outstanding: its bytes must land after the
            // readable region, wherever that is.
            read_ = 0;
            write_ = 0;
        }
    }

    // --- writing ---------------------------------------------------------
    // Free space for up to n bytes directly after the readable region:
    // exactly min(n, writable_bytes()) bytes, so an empty span means the
    // buffer is at its limit (or n == 0). The span stays valid, and commit()
    // publishes into it, until commit() or the next prepare()/append():
    // reading (consume) and clear() in between do not disturb it, so a
    // caller may prepare, decode what is already there, then commit.
    std::span<std::uint8_t> prepare(std::size_t n);

    // Publishes the first n bytes written into the last prepare() span.
    void commit(std::size_t n) noexcept {
        EAGAIN_ASSERT(n <= prepared_);
        write_ += n;
        prepared_ = 0;
    }

    // Copies all of bytes in, or nothing if they would exceed the limit.
    [[nodiscard]] bool append(std::span<const std::uint8_t> bytes);

    // Drops everything readable. Keeps the allocation and any outstanding
    // prepare() span.
    void clear() noexcept;

    // Releases the allocation if the buffer is empty and no prepare() span
    // is outstanding (an idle connection should not pin its high-water mark
    // of memory).
    void release_if_empty() noexcept;

    // --- limits and accounting --------------------------------------------
    std::size_t limit() const noexcept { return limit_; }
    // How many more bytes fit before the limit.
    std::size_t writable_bytes() const noexcept { return limit_ - size(); }
    bool full() const noexcept { return size() == limit_; }
    // Bytes currently allocated.
    std::size_t capacity() const noexcept { return capacity_; }
    // Readable bytes copied by compaction or growth since construction. The
    // amortisation contract: bytes_moved() <= bytes consumed + 2 * the
    // largest capacity() reached (per allocation, after release_if_empty()).
    std::uint64_t bytes_moved() const noexcept { return bytes_moved_; }

private:
    void make_room(std::size_t n);
    void move_readable_to(std::uint8_t* destination) noexcept;

    std::unique_ptr<std::uint8_t[]> storage_;
    std::size_t capacity_ = 0;
    std::size_t read_ = 0;
    std::size_t write_ = 0;
    std::size_t prepared_ = 0;
    std::size_t limit_ = unlimited;
    std::uint64_t bytes_moved_ = 0;
};

}  // namespace eagain
