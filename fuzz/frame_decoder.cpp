// Fuzz target: FrameDecoder, fed in fuzzed chunks, against itself fed in one
// go and against the reference decoder (tests/support/reference_decoder.h),
// for the default protocol and for fuzzed FrameSpecs, with every invariant of
// frame.h and byte_buffer.h checked after each input step.
//
// Input layout. FuzzedDataProvider takes integers from the END of the input
// and byte strings from the FRONT, so a seed reads
//
//   [stream bytes, chunk after chunk][chunk sizes, last first][limit][spec, reversed][mode]
//
// Consumed from the end, in this order:
//   mode         u8   mode >= 0xc0: a fuzzed spec follows (fuzz/fuzz_spec.h);
//                     otherwise FrameSpec{}, the default 20-byte protocol.
//                     mode & 3 picks the decoder's buffer limit:
//                       0  0 (FrameDecoder's default, max_frame + 64 KiB)
//                       1  max_frame_bytes exactly (tightest legal: backpressure)
//                       2  max_frame_bytes + u8    3  max_frame_bytes + u16
//   spec fields  (only for mode >= 0xc0; see fuzz/fuzz_spec.h)
//   limit extra  u8 or u16, only for limit modes 2 and 3
//   then, until the input is used up, one u8 per chunk:
//     0..254     the next chunk is that many stream bytes from the front
//                (fewer if the input ends first); 0 is an empty chunk
//     255        the next chunk is all the remaining stream bytes
// The stream is the concatenation of the chunks. Chunk i goes in through
// feed() when i is even and through prepare()/memcpy/commit() when i is odd;
// every fourth chunk (i % 4 == 3) prepares more than it commits, as a recv()
// that returns less than it was offered, and chunks with i % 8 == 5 decode
// what is already buffered between their prepare() and commit(). After every input step the decoder
// is emptied, alternately by calling next() until it stops returning frames
// and by drain(on_frame); the one-shot run uses drain().
//
// Set EAGAIN_FUZZ_VERBOSE=1 to print each input's scenario (replay builds).
#include "core/frame.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_spec.h"
#include "tests/support/reference_decoder.h"

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace {

using eagain::DecodeResult;
using eagain::DecodeStatus;
using eagain::Frame;
using eagain::FrameDecoder;
using eagain::FrameError;
using eagain::FrameSpec;
using eagain::testing::OwnedFrame;
using eagain::testing::ReferenceOutcome;

constexpr std::uint8_t rest_of_stream = 0xff;
// ByteBuffer's first allocation; below this, capacity is not "proportional".
constexpr std::uint64_t initial_capacity_bytes = 4096;

struct Scenario {
    FrameSpec spec;
    std::size_t buffer_limit_bytes = 0;  // as passed to FrameDecoder (0: its default)
    std::vector<std::uint8_t> stream;
    std::vector<std::size_t> chunk_sizes;
};

std::string status_name(DecodeStatus status) {
    switch (status) {
        case DecodeStatus::frame: return "frame";
        case DecodeStatus::need_more: return "need_more";
        case DecodeStatus::failed: return "failed";
    }
    return "?";
}

void print_scenario(const void* opaque) {
    const auto& scenario = *static_cast<const Scenario*>(opaque);
    std::fprintf(stderr, "  spec: %s\n", eagain::fuzz::describe_spec(scenario.spec).c_str());
    std::fprintf(stderr, "  buffer_limit_bytes: %zu (0 = default)\n", scenario.buffer_limit_bytes);
    std::string sizes;
    for (std::size_t i = 0; i < scenario.chunk_sizes.size() && i < 64; ++i) {
        sizes += std::to_string(scenario.chunk_sizes[i]) + " ";
    }
    if (scenario.chunk_sizes.size() > 64) {
        sizes += "...";
    }
    std::fprintf(stderr, "  chunks (%zu): %s\n", scenario.chunk_sizes.size(), sizes.c_str());
    std::fprintf(stderr, "  stream: %s\n", eagain::fuzz::hex_prefix(scenario.stream, 96).c_str());
}

Scenario consume_scenario(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider input(data, size);
    Scenario scenario;
    const std::uint8_t mode = input.ConsumeIntegral<std::uint8_t>();
    scenario.spec = eagain::fuzz::consume_spec_for_mode(mode, input);
    const auto max_frame = static_cast<std::size_t>(scenario.spec.max_frame_bytes);
    switch (mode & 3U) {
        case 0: scenario.buffer_limit_bytes = 0; break;
        case 1: scenario.buffer_limit_bytes = max_frame; break;
        case 2: scenario.buffer_limit_bytes = max_frame + input.ConsumeIntegral<std::uint8_t>(); break;
        default: scenario.buffer_limit_bytes = max_frame + input.ConsumeIntegral<std::uint16_t>(); break;
    }
    while (input.remaining_bytes() > 0) {
        const std::uint8_t size_code = input.ConsumeIntegral<std::uint8_t>();
        const std::vector<std::uint8_t> chunk = size_code == rest_of_stream
                                                    ? input.ConsumeRemainingBytes<std::uint8_t>()
                                                    : input.ConsumeBytes<std::uint8_t>(size_code);
        scenario.chunk_sizes.push_back(chunk.size());
        scenario.stream.insert(scenario.stream.end(), chunk.begin(), chunk.end());
    }
    return scenario;
}

struct Outcome {
    std::vector<OwnedFrame> frames;
    DecodeStatus final_status = DecodeStatus::need_more;
    std::size_t bytes_missing = 0;  // when need_more
    FrameError error;               // when failed
};

std::string describe_frame(const OwnedFrame& frame) {
    return "{offset " + std::to_string(frame.stream_offset) + ", header " + eagain::fuzz::hex_prefix(frame.header, 24) +
           ", body " + eagain::fuzz::hex_prefix(frame.body, 24) + "}";
}

std::string describe_outcome(const Outcome& outcome) {
    std::string text = std::to_string(outcome.frames.size()) + " frames, then " + status_name(outcome.final_status);
    if (outcome.final_status == DecodeStatus::need_more) {
        text += " (bytes_missing " + std::to_string(outcome.bytes_missing) + ")";
    } else {
        text += " (" + eagain::describe(outcome.error) + ")";
    }
    return text;
}

// Requires two runs to agree on everything the reference decoder reports.
void check_same_outcome(const char* expected_name, const Outcome& expected, const char* actual_name,
                        const Outcome& actual) {
    const std::string names = std::string(expected_name) + " vs " + actual_name + ": ";
    const std::size_t common = std::min(expected.frames.size(), actual.frames.size());
    for (std::size_t i = 0; i < common; ++i) {
        EAGAIN_FUZZ_CHECK(expected.frames[i] == actual.frames[i],
                          names + "frame " + std::to_string(i) + " differs: " + describe_frame(expected.frames[i]) +
                              " vs " + describe_frame(actual.frames[i]));
    }
    EAGAIN_FUZZ_CHECK(expected.frames.size() == actual.frames.size(),
                      names + describe_outcome(expected) + " vs " + describe_outcome(actual));
    EAGAIN_FUZZ_CHECK(expected.final_status == actual.final_status,
                      names + describe_outcome(expected) + " vs " + describe_outcome(actual));
    if (expected.final_status == DecodeStatus::need_more) {
        EAGAIN_FUZZ_CHECK(expected.bytes_missing == actual.bytes_missing,
                          names + describe_outcome(expected) + " vs " + describe_outcome(actual));
    } else {
        EAGAIN_FUZZ_CHECK(expected.error == actual.error,
                          names + describe_outcome(expected) + " vs " + describe_outcome(actual));
    }
}

// How a CheckedDecoder empties its decoder after input: the first time (at
// construction) this way, then alternating.
enum class ReadLoop : std::uint8_t { next, drain };

// One FrameDecoder under test: bytes go in through either input path, and
// after every step next() is drained and every invariant checked.
class CheckedDecoder {
public:
    CheckedDecoder(const FrameSpec& spec, std::size_t buffer_limit_bytes, ReadLoop first_loop)
        : spec_(spec), first_loop_(first_loop), decoder_(spec, buffer_limit_bytes), bytes_missing_(spec.header_bytes) {
        const std::size_t limit = decoder_.buffer().limit();
        EAGAIN_FUZZ_CHECK(limit >= spec.max_frame_bytes, "buffer limit " + std::to_string(limit));
        if (buffer_limit_bytes != 0) {
            EAGAIN_FUZZ_CHECK(limit == buffer_limit_bytes, "buffer limit " + std::to_string(limit));
        }
        EAGAIN_FUZZ_CHECK(!decoder_.failed(), "");
        EAGAIN_FUZZ_CHECK(decoder_.spec() == spec, "");
        EAGAIN_FUZZ_CHECK(decoder_.stream_offset() == 0, "");
        EAGAIN_FUZZ_CHECK(decoder_.buffered().empty(), "");
        drain();  // a fresh decoder needs a whole header
        EAGAIN_FUZZ_CHECK(outcome_.bytes_missing == spec.header_bytes, "");
    }

    // The feed() path. A refused feed is split: whatever fits goes in, the
    // decoder is drained, and the rest follows (backpressure, as a driver
    // that stops reading until the application takes frames).
    void input_by_feed(std::span<const std::uint8_t> bytes) {
        for (;;) {
            const std::size_t size_before = decoder_.buffer().size();
            if (decoder_.feed(bytes)) {
                after_input(bytes.size());
                return;
            }
            EAGAIN_FUZZ_CHECK(!decoder_.failed(), "a failed decoder must accept and discard input");
            EAGAIN_FUZZ_CHECK(decoder_.buffer().size() == size_before, "a refused feed() copied bytes");
            // frame.h: a refusal "cannot happen while next() is drained to
            // need_more and bytes.size() <= bytes_missing" (we always are).
            EAGAIN_FUZZ_CHECK(bytes.size() > bytes_missing_, "feed() of " + std::to_string(bytes.size()) +
                                                                 " bytes refused with bytes_missing " +
                                                                 std::to_string(bytes_missing_));
            const std::size_t fits = decoder_.buffer().writable_bytes();
            EAGAIN_FUZZ_CHECK(fits > 0, "drained decoder has no room: no frame could ever complete");
            EAGAIN_FUZZ_CHECK(fits < bytes.size(), "feed() refused bytes that fit: writable " + std::to_string(fits));
            EAGAIN_FUZZ_CHECK(decoder_.feed(bytes.first(fits)), "feed() of writable_bytes() refused");
            after_input(fits);
            bytes = bytes.subspan(fits);
        }
    }

    // The prepare()/commit() path, as recv() into the decoder's buffer.
    // over_ask asks for more space than there are bytes, as a recv() that
    // returns less than it was offered. decode_before_commit takes out the
    // frames already buffered between prepare() and commit(), which must not
    // disturb the prepared span (byte_buffer.h).
    void input_by_prepare(std::span<const std::uint8_t> bytes, bool over_ask, bool decode_before_commit) {
        // For decode_before_commit, the first half goes in by feed() and is
        // NOT taken out yet, so that complete frames sit in the buffer while
        // space for the rest is prepared: taking them out then empties the
        // buffer under an outstanding prepare() span.
        bool undrained = false;
        if (decode_before_commit && bytes.size() >= 2) {
            const std::span<const std::uint8_t> head = bytes.first(bytes.size() / 2);
            if (decoder_.feed(head)) {
                fed_bytes_ += head.size();
                check_state();
                bytes = bytes.subspan(head.size());
                undrained = true;
            }
        }
        do {
            const std::size_t wanted = over_ask ? 2 * bytes.size() + 1 : bytes.size();
            const std::span<std::uint8_t> space = decoder_.prepare(wanted);
            EAGAIN_FUZZ_CHECK(space.size() <= wanted, "prepare() offered " + std::to_string(space.size()));
            if (!decoder_.failed() && !undrained) {
                // frame.h: "After next() returned need_more, at least
                // min(n, bytes_missing) bytes are offered."
                EAGAIN_FUZZ_CHECK(space.size() >= std::min(wanted, bytes_missing_),
                                  "prepare(" + std::to_string(wanted) + ") offered " + std::to_string(space.size()) +
                                      " with bytes_missing " + std::to_string(bytes_missing_));
            }
            const std::size_t taken = std::min(space.size(), bytes.size());
            // Undecoded frames may fill the buffer (the decode_before_commit
            // head); room comes once they are taken out, and the loop goes
            // round again with the decoder drained.
            EAGAIN_FUZZ_CHECK(taken > 0 || bytes.empty() || undrained,
                              "prepare() offered no room to a drained decoder");
            if (decode_before_commit) {
                pending_prepare_bytes_ = space.size();
                drain();
                check_state();
                pending_prepare_bytes_ = 0;
                undrained = false;
            }
            if (taken > 0) {
                std::memcpy(space.data(), bytes.data(), taken);
            }
            decoder_.commit(taken);
            after_input(taken);
            bytes = bytes.subspan(taken);
        } while (!bytes.empty());
    }

    // Once everything is in: the outcome, plus the checks that a failed
    // decoder stays failed and keeps discarding input.
    Outcome finish(std::span<const std::uint8_t> stream) {
        EAGAIN_FUZZ_CHECK(fed_bytes_ == stream.size(), "fed " + std::to_string(fed_bytes_));
        if (outcome_.final_status == DecodeStatus::failed) {
            EAGAIN_FUZZ_CHECK(decoder_.feed(stream), "a failed decoder refused input");
            after_input(stream.size());
            const std::span<std::uint8_t> space = decoder_.prepare(stream.size());
            if (!space.empty()) {
                std::memcpy(space.data(), stream.data(), space.size());
            }
            decoder_.commit(space.size());
            after_input(space.size());
        }
        return outcome_;
    }

private:
    void after_input(std::size_t bytes) {
        fed_bytes_ += bytes;
        check_state();
        drain();
        check_state();
    }

    void check_state() const {
        const eagain::ByteBuffer& buffer = decoder_.buffer();
        if (decoder_.failed()) {
            EAGAIN_FUZZ_CHECK(buffer.size() == 0, "a failed decoder buffered " + std::to_string(buffer.size()));
        } else {
            EAGAIN_FUZZ_CHECK(decoder_.stream_offset() + decoder_.buffered().size() == fed_bytes_,
                              "stream_offset " + std::to_string(decoder_.stream_offset()) + " + buffered " +
                                  std::to_string(decoder_.buffered().size()) + " != fed " + std::to_string(fed_bytes_));
        }
        EAGAIN_FUZZ_CHECK(buffer.size() <= buffer.limit(), "");
        // byte_buffer.h: "The allocation never exceeds twice the limit".
        const std::size_t capacity = buffer.capacity();
        EAGAIN_FUZZ_CHECK(capacity - capacity / 2 <= buffer.limit(),
                          "capacity " + std::to_string(capacity) + " > 2 * limit " + std::to_string(buffer.limit()));
        // "only bytes actually written make it grow": memory follows bytes
        // received, never announced lengths. A growth goes to at most
        // max(4096, readable + requested, 2 * old capacity), and happens
        // only when the old capacity is below 2 * readable + requested (no
        // room behind the readable bytes) or below 4 * readable (a slide
        // would copy too much); with requests of at most 2 * (bytes then
        // committed) + 1 (see input_by_prepare) this bound follows.
        // Bytes of an outstanding prepare() count as fed: they are what the
        // caller asked room for, and are checked between prepare() and
        // commit() by decode_before_commit.
        const std::uint64_t written = fed_bytes_ + pending_prepare_bytes_;
        EAGAIN_FUZZ_CHECK(capacity <= std::max(initial_capacity_bytes, 8 * written + 8),
                          "capacity " + std::to_string(capacity) + " after " + std::to_string(fed_bytes_) +
                              " bytes fed and " + std::to_string(pending_prepare_bytes_) + " prepared");
        // byte_buffer.h's amortisation contract: bytes_moved() <= bytes
        // consumed + 2 * the largest capacity (a decoder never releases its
        // allocation, so that is the current one). The decoder consumes
        // exactly the frames it returns: stream_offset() bytes.
        EAGAIN_FUZZ_CHECK(buffer.bytes_moved() <= decoder_.stream_offset() + 2 * std::uint64_t{capacity},
                          "bytes_moved " + std::to_string(buffer.bytes_moved()) + " with " +
                              std::to_string(decoder_.stream_offset()) + " bytes consumed, capacity " +
                              std::to_string(capacity));
    }

    // Empties the decoder after an input step, alternately by looping on
    // next() and by drain(on_frame), and checks every frame and the result.
    void drain() {
        const bool by_next = (drains_ % 2 == 0) == (first_loop_ == ReadLoop::next);
        ++drains_;
        const bool was_failed = decoder_.failed();
        pending_.clear();
        const DecodeResult end = by_next ? drain_by_next() : drain_by_drain();
        switch (end.status) {
            case DecodeStatus::frame: EAGAIN_FUZZ_CHECK(false, "the read loop stopped on a frame"); break;
            case DecodeStatus::need_more: check_need_more(end); break;
            case DecodeStatus::failed: check_failure(end, was_failed); break;
        }
        // Copied out only now: frame.h says later next() calls do not
        // invalidate earlier frames (ASan checks that they are still there).
        for (const Frame& frame : pending_) {
            outcome_.frames.push_back(OwnedFrame{frame.stream_offset,
                                                 {frame.header.begin(), frame.header.end()},
                                                 {frame.body.begin(), frame.body.end()}});
        }
        fed_at_last_drain_ = fed_bytes_;
    }

    DecodeResult drain_by_next() {
        // Each frame is at least one byte, so this many calls always suffice.
        const std::size_t max_calls = decoder_.buffered().size() + 1;
        for (std::size_t call = 0;; ++call) {
            EAGAIN_FUZZ_CHECK(call < max_calls, "next() returned more frames than bytes buffered");
            const std::span<const std::uint8_t> before = decoder_.buffered();
            const std::uint64_t offset_before = decoder_.stream_offset();
            const DecodeResult result = decoder_.next();
            if (result.status != DecodeStatus::frame) {
                return result;
            }
            const Frame& frame = result.frame;
            check_frame(frame, before, offset_before);
            const std::size_t frame_bytes = frame.header.size() + frame.body.size();
            EAGAIN_FUZZ_CHECK(frame.stream_offset == offset_before, "next() skipped bytes");
            EAGAIN_FUZZ_CHECK(decoder_.stream_offset() == offset_before + frame_bytes, "stream_offset did not advance");
            EAGAIN_FUZZ_CHECK(decoder_.buffered().size() == before.size() - frame_bytes, "frame not consumed");
            pending_.push_back(frame);
        }
    }

    DecodeResult drain_by_drain() {
        const std::span<const std::uint8_t> before = decoder_.buffered();
        const std::uint64_t offset_before = decoder_.stream_offset();
        std::size_t calls = 0;
        const DecodeResult result = decoder_.drain([&](const Frame& frame) {
            ++calls;
            EAGAIN_FUZZ_CHECK(calls <= before.size(), "drain() passed more frames than bytes buffered");
            check_frame(frame, before, offset_before);
            pending_.push_back(frame);
        });
        const std::uint64_t taken = next_frame_offset_ - offset_before;
        if (result.status == DecodeStatus::need_more) {
            EAGAIN_FUZZ_CHECK(decoder_.stream_offset() == next_frame_offset_,
                              "drain(): stream_offset " + std::to_string(decoder_.stream_offset()) +
                                  " after frames up to " + std::to_string(next_frame_offset_));
            EAGAIN_FUZZ_CHECK(decoder_.buffered().size() == before.size() - taken,
                              "drain() did not consume its frames");
        }
        return result;
    }

    // A frame from a read loop that started with before buffered at stream
    // offset offset_before: it must be the next frame, lie where the stream
    // puts it inside before, and be a well-formed view.
    void check_frame(const Frame& frame, std::span<const std::uint8_t> before, std::uint64_t offset_before) {
        const std::size_t frame_bytes = frame.header.size() + frame.body.size();
        EAGAIN_FUZZ_CHECK(frame.header.size() == spec_.header_bytes,
                          "header of " + std::to_string(frame.header.size()) + " bytes");
        EAGAIN_FUZZ_CHECK(frame_bytes <= spec_.max_frame_bytes, "frame of " + std::to_string(frame_bytes) + " bytes");
        EAGAIN_FUZZ_CHECK(frame.stream_offset == next_frame_offset_, "frame at " + std::to_string(frame.stream_offset) +
                                                                         ", previous frame ended at " +
                                                                         std::to_string(next_frame_offset_));
        EAGAIN_FUZZ_CHECK(frame.stream_offset >= offset_before, "frame before the read loop's first byte");
        const std::uint64_t delta = frame.stream_offset - offset_before;
        EAGAIN_FUZZ_CHECK(delta + frame_bytes <= before.size(), "frame of " + std::to_string(frame_bytes) +
                                                                    " bytes at " + std::to_string(delta) + " of " +
                                                                    std::to_string(before.size()) + " buffered");
        // Views into the decoder's buffer, in stream order, header then body.
        EAGAIN_FUZZ_CHECK(frame.header.data() == before.data() + delta, "header is not where the stream puts it");
        EAGAIN_FUZZ_CHECK(frame.body.data() == frame.header.data() + frame.header.size(),
                          "body does not follow header");
        if (spec_ == FrameSpec{}) {
            const auto header = eagain::DefaultHeader::parse(frame.header.first<eagain::DefaultHeader::size_bytes>());
            EAGAIN_FUZZ_CHECK(header.body_len == frame.body.size(), "body_len " + std::to_string(header.body_len));
            const auto bytes = header.bytes();
            EAGAIN_FUZZ_CHECK(std::equal(bytes.begin(), bytes.end(), frame.header.begin()),
                              "DefaultHeader does not round-trip");
        }
        next_frame_offset_ = frame.stream_offset + frame_bytes;
    }

    void check_need_more(const DecodeResult& result) {
        EAGAIN_FUZZ_CHECK(!decoder_.failed(), "need_more from a failed decoder");
        EAGAIN_FUZZ_CHECK(result.bytes_missing > 0, "need_more with bytes_missing 0");
        // What is left must be exactly the start of one incomplete frame:
        // the reference decoder, shown only those bytes, agrees.
        const ReferenceOutcome rest = eagain::testing::reference_decode(spec_, decoder_.buffered());
        EAGAIN_FUZZ_CHECK(rest.frames.empty(), "need_more with a complete frame buffered");
        EAGAIN_FUZZ_CHECK(rest.final_status == DecodeStatus::need_more,
                          "need_more where the reference fails: " + eagain::describe(rest.error));
        EAGAIN_FUZZ_CHECK(rest.bytes_missing == result.bytes_missing,
                          "bytes_missing " + std::to_string(result.bytes_missing) + ", reference " +
                              std::to_string(rest.bytes_missing) + ", buffered " +
                              std::to_string(decoder_.buffered().size()));
        bytes_missing_ = result.bytes_missing;
        outcome_.final_status = DecodeStatus::need_more;
        outcome_.bytes_missing = result.bytes_missing;
    }

    void check_failure(const DecodeResult& result, bool was_failed) {
        EAGAIN_FUZZ_CHECK(decoder_.failed(), "failed result from a decoder that is not failed()");
        EAGAIN_FUZZ_CHECK(decoder_.buffer().size() == 0, "failed decoder kept its bytes");
        const FrameError& error = result.error;
        if (was_failed) {
            EAGAIN_FUZZ_CHECK(outcome_.final_status == DecodeStatus::failed, "");
            EAGAIN_FUZZ_CHECK(error == outcome_.error, "error changed from " + eagain::describe(outcome_.error) +
                                                           " to " + eagain::describe(error));
        } else {
            EAGAIN_FUZZ_CHECK(error.stream_offset == decoder_.stream_offset() + spec_.length_offset_bytes,
                              eagain::describe(error) + " but the failed frame starts at " +
                                  std::to_string(decoder_.stream_offset()));
            // "A length field is checked as soon as it is complete": the
            // failure shows in the first drain after its last byte arrived.
            const std::uint64_t field_end = error.stream_offset + spec_.length_width_bytes;
            EAGAIN_FUZZ_CHECK(field_end <= fed_bytes_, "failed on a length field not yet received");
            EAGAIN_FUZZ_CHECK(fed_at_last_drain_ < field_end,
                              "length field complete after " + std::to_string(field_end) +
                                  " bytes but the failure showed only after " + std::to_string(fed_bytes_));
            outcome_.final_status = DecodeStatus::failed;
            outcome_.error = error;
        }
        const DecodeResult again = decoder_.next();
        EAGAIN_FUZZ_CHECK(again.status == DecodeStatus::failed && again.error == error,
                          "next() after failure returned " + status_name(again.status));
    }

    FrameSpec spec_;
    ReadLoop first_loop_;
    std::uint64_t drains_ = 0;
    FrameDecoder decoder_;
    std::uint64_t fed_bytes_ = 0;
    std::uint64_t pending_prepare_bytes_ = 0;  // prepared, not yet committed
    std::uint64_t fed_at_last_drain_ = 0;
    std::uint64_t next_frame_offset_ = 0;
    // From the last need_more; before any input, a whole header is missing.
    std::size_t bytes_missing_;
    std::vector<Frame> pending_;
    Outcome outcome_;
};

Outcome from_reference(const ReferenceOutcome& reference) {
    return Outcome{reference.frames, reference.final_status, reference.bytes_missing, reference.error};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const Scenario scenario = consume_scenario(data, size);
    const eagain::fuzz::ScopedScenario context(print_scenario, &scenario);
    const std::span<const std::uint8_t> stream(scenario.stream);

    CheckedDecoder chunked(scenario.spec, scenario.buffer_limit_bytes, ReadLoop::drain);
    std::size_t at = 0;
    for (std::size_t i = 0; i < scenario.chunk_sizes.size(); ++i) {
        const std::span<const std::uint8_t> chunk = stream.subspan(at, scenario.chunk_sizes[i]);
        if (i % 2 == 0) {
            chunked.input_by_feed(chunk);
        } else {
            chunked.input_by_prepare(chunk, i % 4 == 3, i % 8 == 5);
        }
        at += chunk.size();
    }
    const Outcome chunked_outcome = chunked.finish(stream);

    // The whole stream in one prepare()/commit(), with room for all of it,
    // then one drain(on_frame).
    const std::size_t one_shot_limit = std::max(static_cast<std::size_t>(scenario.spec.max_frame_bytes), stream.size());
    CheckedDecoder one_shot(scenario.spec, one_shot_limit, ReadLoop::next);
    one_shot.input_by_prepare(stream, false, false);
    const Outcome one_shot_outcome = one_shot.finish(stream);

    const Outcome reference = from_reference(eagain::testing::reference_decode(scenario.spec, stream));
    check_same_outcome("reference", reference, "one-shot", one_shot_outcome);
    check_same_outcome("reference", reference, "chunked", chunked_outcome);

    if (eagain::fuzz::verbose()) {
        print_scenario(&scenario);
        std::fprintf(stderr, "  outcome: %s\n", describe_outcome(reference).c_str());
    }
    return 0;
}
