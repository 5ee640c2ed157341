#include "sim/trace.h"

#include "core/assert.h"

#include <sys/epoll.h>

#include <array>
#include <charconv>
#include <utility>

namespace eagain::sim {

namespace {

void append_escaped(std::string& out, std::string_view text) {
    out += '"';
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (byte < 0x20) {
            static constexpr std::string_view hex = "0123456789abcdef";
            out += "\\u00";
            out += hex[byte >> 4];
            out += hex[byte & 0xF];
        } else {
            out += c;
        }
    }
    out += '"';
}

template <class Integer>
void append_number(std::string& out, Integer value) {
    std::array<char, 24> digits{};
    const auto result = std::to_chars(digits.data(), digits.data() + digits.size(), value);
    out.append(digits.data(), result.ptr);
}

void append_key(std::string& out, std::string_view key) {
    out += ',';
    append_escaped(out, key);
    out += ':';
}

}  // namespace

Trace::Line::~Line() {
    if (trace_ != nullptr)
        trace_->finish();
}

Trace::Line& Trace::Line::field(std::string_view key, std::int64_t value) {
    append_key(trace_->current_, key);
    append_number(trace_->current_, value);
    return *this;
}

Trace::Line& Trace::Line::field(std::string_view key, std::uint64_t value) {
    append_key(trace_->current_, key);
    append_number(trace_->current_, value);
    return *this;
}

Trace::Line& Trace::Line::field(std::string_view key, std::string_view value) {
    append_key(trace_->current_, key);
    append_escaped(trace_->current_, value);
    return *this;
}

Trace::Line& Trace::Line::field(std::string_view key, bool value) {
    append_key(trace_->current_, key);
    trace_->current_ += value ? "true" : "false";
    return *this;
}

Trace::Line& Trace::Line::raw(std::string_view key, std::string_view json) {
    append_key(trace_->current_, key);
    trace_->current_ += json;
    return *this;
}

Trace::Line Trace::line(Nanos time, std::string_view kind) {
    EAGAIN_ASSERT(enabled_);
    current_.clear();
    current_ += "{\"t\":";
    append_number(current_, static_cast<std::int64_t>(time.count()));
    current_ += ",\"ev\":";
    append_escaped(current_, kind);
    return Line(this);
}

void Trace::finish() {
    current_ += '}';
    for (const char c : current_) {
        hash_ ^= static_cast<unsigned char>(c);
        hash_ *= 0x100000001b3ULL;  // FNV-1a prime
    }
    hash_ ^= static_cast<unsigned char>('\n');
    hash_ *= 0x100000001b3ULL;
    ++line_count_;
    if (sink_)
        sink_(current_);
    if (keep_lines_)
        lines_.push_back(current_);
}

std::string Trace::hash_hex() const {
    static constexpr std::string_view hex = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 0; i < 16; ++i)
        out[static_cast<std::size_t>(15 - i)] = hex[(hash_ >> (4 * i)) & 0xF];
    return out;
}

std::string epoll_mask_name(std::uint32_t events) {
    static constexpr std::array<std::pair<std::uint32_t, std::string_view>, 6> names{{
        {EPOLLIN, "IN"},
        {EPOLLPRI, "PRI"},
        {EPOLLOUT, "OUT"},
        {EPOLLERR, "ERR"},
        {EPOLLHUP, "HUP"},
        {EPOLLRDHUP, "RDHUP"},
    }};
    std::string out;
    for (const auto& [bit, name] : names) {
        if ((events & bit) == 0)
            continue;
        if (!out.empty())
            out += '|';
        out += name;
    }
    return out.empty() ? "0" : out;
}

}  // namespace eagain::sim
