// Trace: what happened in a simulation, one JSON object per line, in the
// order it happened, each stamped with virtual time ("t", nanoseconds), and a
// running hash of those lines.
//
// The hash is the determinism contract: the same workload, seed and options
// give byte-identical lines, hence the same hash, on every run, machine and
// compiler. It is FNV-1a (64-bit) over the bytes of every line including its
// newline, so `sim-echo ... --trace t.jsonl` and hashing t.jsonl agree.
//
// Lines are kept in memory only if asked (keep_lines), and written to a
// sink if one is set; the hash is always kept while tracing is enabled.
//
// end() closes the trace: the hash, the line count, the kept lines and what
// the sink was given are final and describe exactly the same lines. A
// program torn down after the run (a Reactor closing its epoll fd, say)
// then traces nothing, so a --trace file always hashes to the printed hash.
#pragma once

#include "core/sys.h"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace eagain::sim {

class Trace {
public:
    // One line under construction; written out when it goes out of scope.
    class Line {
    public:
        Line(Line&& other) noexcept : trace_(std::exchange(other.trace_, nullptr)) {}
        Line(const Line&) = delete;
        Line& operator=(const Line&) = delete;
        Line& operator=(Line&&) = delete;
        ~Line();

        Line& field(std::string_view key, std::int64_t value);
        Line& field(std::string_view key, std::uint64_t value);
        Line& field(std::string_view key, int value) { return field(key, static_cast<std::int64_t>(value)); }
        Line& field(std::string_view key, unsigned value) { return field(key, static_cast<std::uint64_t>(value)); }
        Line& field(std::string_view key, std::string_view value);
        Line& field(std::string_view key, const char* value) { return field(key, std::string_view(value)); }
        Line& field(std::string_view key, bool value);
        // Appends raw JSON (an array or object the caller built).
        Line& raw(std::string_view key, std::string_view json);

    private:
        friend class Trace;
        explicit Line(Trace* trace) noexcept : trace_(trace) {}
        Trace* trace_;
    };

    bool enabled() const noexcept { return enabled_ && !ended_; }
    void set_enabled(bool on) noexcept { enabled_ = on; }
    // No line after this one; enabled() is false from now on.
    void end() noexcept { ended_ = true; }
    bool ended() const noexcept { return ended_; }
    void set_keep_lines(bool on) noexcept { keep_lines_ = on; }
    // Called with every finished line, without its newline.
    void set_sink(std::function<void(std::string_view line)> sink) { sink_ = std::move(sink); }

    // Starts a line {"t":<time>,"ev":"<kind>" ...}. Only call when enabled().
    Line line(Nanos time, std::string_view kind);

    std::uint64_t hash() const noexcept { return hash_; }
    // The hash as 16 lower-case hex digits.
    std::string hash_hex() const;
    std::uint64_t line_count() const noexcept { return line_count_; }
    const std::vector<std::string>& lines() const noexcept { return lines_; }

private:
    // Adds the bytes written since the last call to the hash.
    void hash_written() noexcept;
    void finish();

    bool enabled_ = true;
    bool ended_ = false;
    bool keep_lines_ = false;
    std::function<void(std::string_view)> sink_;
    // The line being built is current_'s first length_ bytes; current_ is
    // a buffer that only grows (trace.cpp's Writer).
    std::string current_;
    std::size_t length_ = 0;
    std::size_t hashed_ = 0;                      // current_'s first hashed_ bytes are in hash_
    std::uint64_t hash_ = 0xcbf29ce484222325ULL;  // FNV-1a offset basis
    std::uint64_t line_count_ = 0;
    std::vector<std::string> lines_;
};

// The "ev" of a line a Trace wrote ("sys", "seg", "beyond_window"), read
// from its fixed place after "t" rather than searched for; empty if the
// line does not start as Trace::line writes it. For sinks that count kinds.
std::string_view trace_line_kind(std::string_view line) noexcept;

// "EPOLLIN|EPOLLOUT": the flags of an epoll mask, for traces.
std::string epoll_mask_name(std::uint32_t events);

}  // namespace eagain::sim
