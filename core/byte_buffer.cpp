#include "core/byte_buffer.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace eagain {

namespace {

// Small enough for an idle connection, large enough that a typical recv()
// does not grow the buffer several times in a row.
constexpr std::size_t initial_capacity_bytes = 4096;

// The allocation ceiling for a given limit: twice the limit. With that much
// room, whenever the tail is too short the consumed prefix is at least as long
// as the readable region, so compaction stays amortised O(1) per byte.
std::size_t capacity_ceiling(std::size_t limit_bytes) noexcept {
    if (limit_bytes > ByteBuffer::unlimited / 2) {
        return ByteBuffer::unlimited;
    }
    return 2 * limit_bytes;
}

}  // namespace

ByteBuffer::ByteBuffer(std::size_t limit_bytes) noexcept : limit_(limit_bytes) {}

ByteBuffer::ByteBuffer(ByteBuffer&& other) noexcept
    : storage_(std::move(other.storage_)),
      capacity_(std::exchange(other.capacity_, 0)),
      read_(std::exchange(other.read_, 0)),
      write_(std::exchange(other.write_, 0)),
      prepared_(std::exchange(other.prepared_, 0)),
      limit_(other.limit_),
      bytes_moved_(std::exchange(other.bytes_moved_, 0)) {}

ByteBuffer& ByteBuffer::operator=(ByteBuffer&& other) noexcept {
    if (this != &other) {
        storage_ = std::move(other.storage_);
        capacity_ = std::exchange(other.capacity_, 0);
        read_ = std::exchange(other.read_, 0);
        write_ = std::exchange(other.write_, 0);
        prepared_ = std::exchange(other.prepared_, 0);
        limit_ = other.limit_;
        bytes_moved_ = std::exchange(other.bytes_moved_, 0);
    }
    return *this;
}

std::span<std::uint8_t> ByteBuffer::prepare(std::size_t n) {
    n = std::min(n, writable_bytes());
    if (capacity_ - write_ < n) {
        make_room(n);
    }
    EAGAIN_ASSERT(capacity_ - write_ >= n);
    prepared_ = n;
    return {storage_.get() + write_, n};
}

bool ByteBuffer::append(std::span<const std::uint8_t> bytes) {
    if (bytes.size() > writable_bytes()) {
        return false;
    }
    if (bytes.empty()) {
        return true;
    }
    const std::span<std::uint8_t> space = prepare(bytes.size());
    std::memcpy(space.data(), bytes.data(), bytes.size());
    commit(bytes.size());
    return true;
}

void ByteBuffer::clear() noexcept {
    consume(size());
}

void ByteBuffer::release_if_empty() noexcept {
    if (empty() && prepared_ == 0) {
        storage_.reset();
        capacity_ = 0;
        read_ = 0;
        write_ = 0;
    }
}

void ByteBuffer::move_readable_to(std::uint8_t* destination) noexcept {
    const std::size_t readable_bytes = size();
    if (readable_bytes > 0) {
        std::memmove(destination, storage_.get() + read_, readable_bytes);
    }
    bytes_moved_ += readable_bytes;
    read_ = 0;
    write_ = readable_bytes;
}

void ByteBuffer::make_room(std::size_t n) {
    const std::size_t readable_bytes = size();
    EAGAIN_ASSERT(n <= limit_ - readable_bytes);

    // Slide to the front when that copies no more than was consumed since the
    // last move: each byte is then moved at most once per byte consumed.
    // While the allocation may still grow, slide only a short region: a reader
    // that always leaves most of a read behind (frames a little longer than
    // its reads) would otherwise have every received byte copied twice.
    // Growing instead makes each later slide serve several reads.
    const std::size_t ceiling = capacity_ceiling(limit_);
    if (read_ >= readable_bytes && capacity_ - readable_bytes >= n &&
        (readable_bytes <= capacity_ / 4 || capacity_ == ceiling)) {
        move_readable_to(storage_.get());
        return;
    }

    const std::size_t doubled = capacity_ > ceiling / 2 ? ceiling : 2 * capacity_;
    const std::size_t new_capacity = std::min(std::max({initial_capacity_bytes, readable_bytes + n, doubled}), ceiling);
    // At the ceiling the slide above always applies (see capacity_ceiling), so
    // growth here is real growth.
    EAGAIN_ASSERT(new_capacity > capacity_);
    EAGAIN_ASSERT(new_capacity >= readable_bytes + n);

    auto grown = std::make_unique_for_overwrite<std::uint8_t[]>(new_capacity);
    move_readable_to(grown.get());
    storage_ = std::move(grown);
    capacity_ = new_capacity;
}

}  // namespace eagain
