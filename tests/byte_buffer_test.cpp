#include "core/byte_buffer.h"

#include <rapidcheck/catch.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <deque>
#include <numeric>
#include <vector>

using eagain::ByteBuffer;

namespace {

std::vector<std::uint8_t> contents(const ByteBuffer& buffer) {
    const auto view = buffer.readable();
    return {view.begin(), view.end()};
}

std::vector<std::uint8_t> iota_bytes(std::size_t n, std::uint8_t first = 0) {
    std::vector<std::uint8_t> out(n);
    std::iota(out.begin(), out.end(), first);
    return out;
}

}  // namespace

// ===========================================================================
// Writing and reading

TEST_CASE("a new buffer is empty and allocates nothing", "[buffer]") {
    ByteBuffer buffer;
    CHECK(buffer.empty());
    CHECK(buffer.size() == 0);
    CHECK(buffer.readable().empty());
    CHECK(buffer.capacity() == 0);
    SECTION("prepare(0) still allocates nothing") {
        CHECK(buffer.prepare(0).empty());
        CHECK(buffer.capacity() == 0);
    }
}

TEST_CASE("bytes written into prepare() become readable only when committed", "[buffer]") {
    ByteBuffer buffer;
    const std::span<std::uint8_t> space = buffer.prepare(10);
    REQUIRE(space.size() == 10);
    const auto bytes = iota_bytes(10, 1);
    std::memcpy(space.data(), bytes.data(), bytes.size());
    CHECK(buffer.empty());

    SECTION("commit of everything prepared") {
        buffer.commit(10);
        CHECK(contents(buffer) == bytes);
    }
    SECTION("commit of a prefix, as after a short recv") {
        buffer.commit(4);
        CHECK(contents(buffer) == iota_bytes(4, 1));
        const std::span<std::uint8_t> more = buffer.prepare(2);
        CHECK(more.data() == buffer.readable().data() + 4);  // directly after the readable bytes
    }
    SECTION("commit of nothing, as after recv returned EAGAIN") {
        buffer.commit(0);
        CHECK(buffer.empty());
    }
}

TEST_CASE("consume drops a prefix without moving the rest", "[buffer]") {
    ByteBuffer buffer;
    REQUIRE(buffer.append(iota_bytes(100)));
    const std::uint8_t* before = buffer.readable().data();
    buffer.consume(30);
    CHECK(buffer.size() == 70);
    CHECK(buffer.readable().data() == before + 30);
    CHECK(buffer.readable()[0] == 30);
    CHECK(buffer.bytes_moved() == 0);

    SECTION("consuming the rest rewinds to the front for free") {
        const std::span<const std::uint8_t> old_view = buffer.readable();
        buffer.consume(70);
        CHECK(buffer.empty());
        // The consumed bytes are still where they were: views a reader still
        // holds do not change under it.
        CHECK(old_view[69] == 99);
        const std::span<std::uint8_t> space = buffer.prepare(8);
        CHECK(space.data() == before);
        CHECK(buffer.bytes_moved() == 0);
    }
}

TEST_CASE("a prepared span survives reading in between prepare and commit", "[buffer]") {
    // A read loop may prepare space, hand what is already buffered to the
    // decoder, and only then commit what recv() wrote.
    ByteBuffer buffer;
    REQUIRE(buffer.append(iota_bytes(8)));
    const std::span<std::uint8_t> space = buffer.prepare(4);
    REQUIRE(space.size() == 4);
    const auto fresh = iota_bytes(4, 200);
    std::memcpy(space.data(), fresh.data(), fresh.size());

    SECTION("consuming everything does not rewind under the span") {
        buffer.consume(8);
        buffer.commit(4);
        CHECK(contents(buffer) == fresh);
    }
    SECTION("clear does not cancel the span") {
        buffer.clear();
        buffer.commit(4);
        CHECK(contents(buffer) == fresh);
    }
    SECTION("release_if_empty does not free the span's memory") {
        buffer.consume(8);
        buffer.release_if_empty();
        CHECK(buffer.capacity() > 0);
        buffer.commit(4);
        CHECK(contents(buffer) == fresh);
        buffer.consume(4);
        buffer.release_if_empty();
        CHECK(buffer.capacity() == 0);
    }
}

TEST_CASE("growth keeps the readable bytes intact", "[buffer]") {
    ByteBuffer buffer;
    std::vector<std::uint8_t> expected;
    for (std::uint8_t round = 0; round < 40; ++round) {
        const auto chunk = iota_bytes(1000, round);
        REQUIRE(buffer.append(chunk));
        expected.insert(expected.end(), chunk.begin(), chunk.end());
    }
    CHECK(contents(buffer) == expected);
    CHECK(buffer.capacity() >= 40000);
    CHECK(buffer.capacity() < 2 * 40000 + 4096);
}

TEST_CASE("release_if_empty frees only an empty buffer", "[buffer]") {
    ByteBuffer buffer;
    REQUIRE(buffer.append(iota_bytes(10)));
    buffer.release_if_empty();
    CHECK(buffer.capacity() > 0);
    CHECK(buffer.size() == 10);
    buffer.consume(10);
    buffer.release_if_empty();
    CHECK(buffer.capacity() == 0);
    REQUIRE(buffer.append(iota_bytes(3)));
    CHECK(contents(buffer) == iota_bytes(3));
}

TEST_CASE("a moved-from buffer is empty and usable", "[buffer]") {
    ByteBuffer source(1000);
    REQUIRE(source.append(iota_bytes(10)));
    ByteBuffer target(std::move(source));
    CHECK(contents(target) == iota_bytes(10));
    CHECK(target.limit() == 1000);
    CHECK(source.empty());  // NOLINT(bugprone-use-after-move): the contract under test
    CHECK(source.capacity() == 0);
    REQUIRE(source.append(iota_bytes(5)));
    CHECK(contents(source) == iota_bytes(5));

    ByteBuffer assigned;
    assigned = std::move(target);
    CHECK(contents(assigned) == iota_bytes(10));
    CHECK(target.empty());  // NOLINT(bugprone-use-after-move)

    ByteBuffer& alias = assigned;
    assigned = std::move(alias);  // self-move keeps the contents
    CHECK(contents(assigned) == iota_bytes(10));
}

// ===========================================================================
// Limit (backpressure)

TEST_CASE("a limited buffer reports full instead of growing", "[buffer][limit]") {
    ByteBuffer buffer(16);
    REQUIRE(buffer.append(iota_bytes(10)));
    CHECK(buffer.writable_bytes() == 6);
    CHECK_FALSE(buffer.full());

    SECTION("prepare hands out only what fits") {
        CHECK(buffer.prepare(100).size() == 6);
        buffer.commit(6);
        CHECK(buffer.full());
        CHECK(buffer.prepare(1).empty());
    }
    SECTION("append is all or nothing") {
        CHECK_FALSE(buffer.append(iota_bytes(7)));
        CHECK(contents(buffer) == iota_bytes(10));
        CHECK(buffer.append(iota_bytes(6)));
        CHECK(buffer.full());
    }
    SECTION("consuming makes room again") {
        CHECK(buffer.append(iota_bytes(6)));
        buffer.consume(5);
        CHECK(buffer.writable_bytes() == 5);
        CHECK(buffer.append(iota_bytes(5, 100)));
        CHECK(buffer.size() == 16);
        CHECK(buffer.readable()[0] == 5);
        CHECK(buffer.readable()[15] == 104);
    }
    CHECK(buffer.capacity() <= 2 * buffer.limit());
}

TEST_CASE("a limited buffer held one byte short of full never copies quadratically", "[buffer][limit]") {
    // The pathological pattern for naive compaction: the reader consumes one
    // byte, the writer adds one, and the buffer stays nearly full. Sliding
    // the whole region each time would copy limit bytes per byte moved.
    constexpr std::size_t limit = 4096;
    ByteBuffer buffer(limit);
    REQUIRE(buffer.append(iota_bytes(limit - 1)));
    std::uint64_t consumed = 0;
    for (int step = 0; step < 100000; ++step) {
        buffer.consume(1);
        ++consumed;
        const std::uint8_t value = static_cast<std::uint8_t>(step);
        REQUIRE(buffer.append(std::span<const std::uint8_t>(&value, 1)));
    }
    CHECK(buffer.size() == limit - 1);
    // Quadratic sliding would have moved ~limit bytes per step: 400 MB.
    CHECK(buffer.bytes_moved() <= consumed + 2 * buffer.capacity());
    CHECK(buffer.capacity() <= 2 * limit);
}

TEST_CASE("an unlimited sliding window copies at most once per byte", "[buffer]") {
    ByteBuffer buffer;
    std::uint64_t consumed = 0;
    // Keep ~1000 bytes resident while streaming 10 MB through.
    for (int step = 0; step < 10000; ++step) {
        REQUIRE(buffer.append(iota_bytes(1000, static_cast<std::uint8_t>(step))));
        if (buffer.size() > 1000) {
            consumed += buffer.size() - 999;
            buffer.consume(buffer.size() - 999);
        }
    }
    CHECK(buffer.bytes_moved() <= consumed + 2 * buffer.capacity());
    CHECK(buffer.capacity() <= 8192);  // resident size, not total throughput, sets the allocation
}

TEST_CASE("a reader that leaves most of each read behind is not copied twice per byte", "[buffer]") {
    // 64 KiB reads of 65556-byte frames: after each frame almost a whole read
    // is left over. Sliding that leftover before every read copies each byte
    // a second time (0.97 moved per byte measured); growing once instead
    // lets later slides serve several reads.
    constexpr std::size_t read_bytes = 64 * 1024;
    constexpr std::size_t frame_bytes = 20 + 64 * 1024;
    ByteBuffer buffer;
    std::uint64_t received = 0;
    const auto chunk = iota_bytes(read_bytes);
    for (int read = 0; read < 2000; ++read) {
        REQUIRE(buffer.append(chunk));
        received += read_bytes;
        while (buffer.size() >= frame_bytes) {
            buffer.consume(frame_bytes);
        }
    }
    CHECK(static_cast<double>(buffer.bytes_moved()) < 0.5 * static_cast<double>(received));
    CHECK(buffer.capacity() <= 8 * frame_bytes);
}

// ===========================================================================
// Model check

TEST_CASE("ByteBuffer behaves like a byte queue under any operation sequence", "[buffer][property]") {
    rc::prop("matches std::deque and keeps the amortisation and limit contracts", [] {
        const bool limited = *rc::gen::arbitrary<bool>();
        const std::size_t limit = limited ? *rc::gen::inRange<std::size_t>(1, 5000) : ByteBuffer::unlimited;
        ByteBuffer buffer(limit);
        std::deque<std::uint8_t> model;
        std::uint64_t consumed = 0;
        std::size_t peak_capacity = 0;  // per allocation; this model never releases
        std::uint8_t next_byte = 0;
        const auto steps = *rc::gen::inRange(1, 200);
        for (int step = 0; step < steps; ++step) {
            const int op = *rc::gen::inRange(0, 4);
            if (op == 0) {  // recv-style write, possibly short
                const auto asked = *rc::gen::inRange<std::size_t>(0, 3000);
                const std::span<std::uint8_t> space = buffer.prepare(asked);
                RC_ASSERT(space.size() == std::min(asked, limit - model.size()));
                const auto wrote = *rc::gen::inRange<std::size_t>(0, space.size() + 1);
                for (std::size_t i = 0; i < wrote; ++i) {
                    space[i] = next_byte;
                    model.push_back(next_byte++);
                }
                buffer.commit(wrote);
            } else if (op == 1) {  // append, all or nothing
                const auto n = *rc::gen::inRange<std::size_t>(0, 3000);
                std::vector<std::uint8_t> bytes(n);
                for (auto& b : bytes) {
                    b = next_byte++;
                }
                const bool fits = n <= limit - model.size();
                RC_ASSERT(buffer.append(bytes) == fits);
                if (fits) {
                    model.insert(model.end(), bytes.begin(), bytes.end());
                }
            } else if (op == 2) {
                const auto n = *rc::gen::inRange<std::size_t>(0, model.size() + 1);
                buffer.consume(n);
                consumed += n;
                model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
            } else {
                if (*rc::gen::inRange(0, 10) == 0) {
                    buffer.clear();
                    model.clear();
                }
            }
            RC_ASSERT(buffer.size() == model.size());
            RC_ASSERT(std::equal(model.begin(), model.end(), buffer.readable().begin()));
            RC_ASSERT(buffer.full() == (model.size() == limit));
            peak_capacity = std::max(peak_capacity, buffer.capacity());
            RC_ASSERT(buffer.bytes_moved() <= consumed + 2 * peak_capacity);
            if (limited) {
                RC_ASSERT(buffer.capacity() <= 2 * limit);
            }
        }
    });
}
