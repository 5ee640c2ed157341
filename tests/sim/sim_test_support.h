// Helpers for the simulation tests (tests/sim/): reading the trace, and a
// small App for a ConnectionDriver that checks what comes back.
//
// The trace is the simulation's own record of what happened (every syscall
// with its result, every segment with its send and arrival time, every
// fault), so the tests read their observations from it rather than from
// the objects under test: a bug in the code under test cannot hide in its
// own counters.
#pragma once

#include "core/connection_driver.h"
#include "core/frame.h"
#include "sim/trace.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::simtest {

// --- trace lines ------------------------------------------------------------
// A trace line is a flat JSON object written by sim/trace.cpp. Keys are
// looked up after a ',' so a key-like text inside an escaped string value
// (where the quote follows a backslash) never matches.

// The raw text of key's value: a string without its quotes (escapes kept),
// a number or bool as written. nullopt if the line has no such key.
inline std::optional<std::string_view> field(std::string_view line, std::string_view key) {
    std::string needle = ",\"";
    needle += key;
    needle += "\":";
    const std::size_t at = line.find(needle);
    if (at == std::string_view::npos)
        return std::nullopt;
    std::string_view rest = line.substr(at + needle.size());
    if (!rest.empty() && rest.front() == '"') {
        rest.remove_prefix(1);
        std::size_t end = 0;
        while (end < rest.size() && rest[end] != '"')
            end += rest[end] == '\\' ? 2 : 1;
        return rest.substr(0, std::min(end, rest.size()));
    }
    const std::size_t end = rest.find_first_of(",}");
    return rest.substr(0, end);
}

inline std::optional<std::int64_t> number(std::string_view line, std::string_view key) {
    const std::optional<std::string_view> text =
        key == "t" ? std::optional<std::string_view>(line.substr(5, line.find(',') - 5)) : field(line, key);
    if (!text)
        return std::nullopt;
    std::int64_t value = 0;
    const auto result = std::from_chars(text->data(), text->data() + text->size(), value);
    if (result.ec != std::errc{} || result.ptr != text->data() + text->size())
        return std::nullopt;
    return value;
}

// The line's virtual time, from its leading {"t":<ns>.
inline Nanos time_of(std::string_view line) {
    return Nanos{number(line, "t").value_or(-1)};
}

inline bool is(std::string_view line, std::string_view key, std::string_view value) {
    const std::optional<std::string_view> text = field(line, key);
    return text && *text == value;
}

// One syscall as the trace recorded it.
struct TracedCall {
    Nanos at{};
    int fd = -1;
    std::int64_t len = 0;  // bytes offered (send/recv)
    bool ok = false;
    std::int64_t ret = 0;  // when ok
    std::string err;       // when not ok: "EAGAIN", ...
};

// Every traced call of `call` on `host`, in order (from kept trace lines,
// or lines a scenario run's trace_sink collected).
inline std::vector<TracedCall> calls(const std::vector<std::string>& lines, std::string_view host,
                                     std::string_view call) {
    std::vector<TracedCall> out;
    for (const std::string& line : lines) {
        if (!is(line, "ev", "sys") || !is(line, "host", host) || !is(line, "call", call))
            continue;
        TracedCall c;
        c.at = time_of(line);
        c.fd = static_cast<int>(number(line, "fd").value_or(-1));
        c.len = number(line, "len").value_or(0);
        if (const std::optional<std::int64_t> ret = number(line, "ret")) {
            c.ok = true;
            c.ret = *ret;
        } else {
            c.err = std::string(field(line, "err").value_or("?"));
        }
        out.push_back(std::move(c));
    }
    return out;
}

inline std::vector<TracedCall> calls(const sim::Trace& trace, std::string_view host, std::string_view call) {
    return calls(trace.lines(), host, call);
}

// Bytes the calls moved (successful results) with at in [from, to).
inline std::int64_t bytes_moved(const std::vector<TracedCall>& traced, Nanos from, Nanos to) {
    std::int64_t total = 0;
    for (const TracedCall& c : traced) {
        if (c.ok && c.at >= from && c.at < to)
            total += c.ret;
    }
    return total;
}

// Lines of kind ev (and, if key is given, with key equal to value).
inline std::size_t count_lines(const std::vector<std::string>& lines, std::string_view ev, std::string_view key = {},
                               std::string_view value = {}) {
    return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
        return is(l, "ev", ev) && (key.empty() || is(l, key, value));
    }));
}

inline std::size_t count_lines(const sim::Trace& trace, std::string_view ev, std::string_view key = {},
                               std::string_view value = {}) {
    return count_lines(trace.lines(), ev, key, value);
}

// The last n kept lines, one per line: context for a failure message.
inline std::string tail(const sim::Trace& trace, std::size_t n = 12) {
    const auto& lines = trace.lines();
    std::string out;
    for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) {
        out += lines[i];
        out += '\n';
    }
    return out;
}

// --- a checking App -----------------------------------------------------------
// Frames carry their number in seq and a body derived from it, so a lost,
// repeated, reordered or corrupted echo is counted as a mismatch.

inline std::vector<std::uint8_t> numbered_body(std::uint32_t seq, std::size_t size_bytes) {
    std::vector<std::uint8_t> body(size_bytes);
    for (std::size_t i = 0; i < body.size(); ++i)
        body[i] = static_cast<std::uint8_t>(seq * 31U + i * 7U + 1U);
    return body;
}

class EchoCheckingApp final : public ConnectionDriver::App {
public:
    static constexpr std::uint32_t frame_cmd = 7;  // not the heartbeat cmd (0)

    // frames_on_established: frames sent as soon as a connection is up.
    explicit EchoCheckingApp(std::uint32_t frames_on_established = 0, std::size_t body_bytes = 16)
        : frames_on_established_(frames_on_established), body_bytes_(body_bytes) {}

    // Sends the next numbered frame.
    SendError send_next(ConnectionDriver& driver) {
        DefaultHeader header;
        header.cmd = frame_cmd;
        header.seq = next_to_send_;
        const SendError error = driver.send_frame(header, numbered_body(next_to_send_, body_bytes_));
        if (error == SendError::none)
            ++next_to_send_;
        return error;
    }

    void on_established(ConnectionDriver& driver) override {
        established_attempts.push_back(driver.connection().stats().connect_attempts);
        for (std::uint32_t i = 0; i < frames_on_established_; ++i)
            (void)send_next(driver);
    }
    void on_frame(ConnectionDriver& /*driver*/, const Frame& frame) override {
        const DefaultHeader header = DefaultHeader::parse(frame.header.first<DefaultHeader::size_bytes>());
        const std::vector<std::uint8_t> expected = numbered_body(echoes_verified, body_bytes_);
        if (header.cmd != frame_cmd || header.seq != echoes_verified ||
            !std::equal(frame.body.begin(), frame.body.end(), expected.begin(), expected.end())) {
            ++mismatches;
            return;
        }
        ++echoes_verified;
    }
    void on_event(ConnectionDriver& /*driver*/, const Event& event) override { events.push_back(event); }
    void on_closed(ConnectionDriver& /*driver*/, const CloseInfo& info, bool reconnecting) override {
        closes.push_back(info);
        closes_reconnecting.push_back(reconnecting);
    }

    std::vector<Event> events_of(EventKind kind) const {
        std::vector<Event> out;
        std::copy_if(events.begin(), events.end(), std::back_inserter(out),
                     [&](const Event& e) { return e.kind == kind; });
        return out;
    }
    std::uint32_t frames_sent() const noexcept { return next_to_send_; }

    std::vector<std::uint64_t> established_attempts;  // the connect attempt number of each establishment
    std::uint32_t echoes_verified = 0;
    std::uint64_t mismatches = 0;
    std::vector<Event> events;
    std::vector<CloseInfo> closes;
    std::vector<bool> closes_reconnecting;

private:
    std::uint32_t frames_on_established_;
    std::size_t body_bytes_;
    std::uint32_t next_to_send_ = 0;
};

}  // namespace eagain::simtest
