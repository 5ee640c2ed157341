#include "sim/trace.h"

#include "core/assert.h"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <utility>

namespace eagain::sim {

namespace {

// Bytes a JSON string cannot hold as they are: '"', '\\' and controls.
constexpr std::array<bool, 256> needs_escape = [] {
    std::array<bool, 256> table{};
    for (std::size_t byte = 0; byte < 0x20; ++byte)
        table[byte] = true;
    table['"'] = true;
    table['\\'] = true;
    return table;
}();

// Worst case of an escaped string: every byte as \u00XX, and the quotes.
constexpr std::size_t escaped_bytes_max(std::string_view text) noexcept {
    return 6 * text.size() + 2;
}

// text as a JSON string at `at`; returns the end. Most text (every key,
// host names, call names) needs no escape: it is found so and copied whole.
char* put_escaped(char* at, std::string_view text) noexcept {
    static constexpr std::string_view hex = "0123456789abcdef";
    *at++ = '"';
    std::size_t clean = 0;
    while (clean < text.size() && !needs_escape[static_cast<unsigned char>(text[clean])])
        ++clean;
    std::memcpy(at, text.data(), clean);
    at += clean;
    for (const char c : text.substr(clean)) {
        const auto byte = static_cast<unsigned char>(c);
        if (!needs_escape[byte]) {
            *at++ = c;
        } else if (c == '"' || c == '\\') {
            *at++ = '\\';
            *at++ = c;
        } else {
            for (const char e : {'\\', 'u', '0', '0', hex[byte >> 4], hex[byte & 0xF]})
                *at++ = e;
        }
    }
    *at++ = '"';
    return at;
}

// Writes a line into a Trace's buffer in place: room(n) hands out n bytes
// after the line so far, end_at() says where the writing stopped. The
// buffer only grows, so after the first lines no field allocates, and a
// field costs a capacity check or two instead of one per byte.
class Writer {
public:
    Writer(std::string& buffer, std::size_t& length) noexcept : buffer_(buffer), length_(length) {}

    char* room(std::size_t n) {
        if (buffer_.size() - length_ < n)
            grow(n);
        return buffer_.data() + length_;
    }
    void end_at(const char* end) noexcept { length_ = static_cast<std::size_t>(end - buffer_.data()); }

    void append(std::string_view text) {
        char* at = room(text.size());
        std::memcpy(at, text.data(), text.size());
        end_at(at + text.size());
    }
    void escaped(std::string_view text) { end_at(put_escaped(room(escaped_bytes_max(text)), text)); }
    template <class Integer>
    void number(Integer value) {
        constexpr std::size_t digits_max = 24;  // 20 digits and a sign, rounded up
        char* at = room(digits_max);
        end_at(std::to_chars(at, at + digits_max, value).ptr);
    }
    // ,"name":
    void key(std::string_view name) {
        char* at = room(escaped_bytes_max(name) + 2);
        *at++ = ',';
        at = put_escaped(at, name);
        *at++ = ':';
        end_at(at);
    }

private:
    // Out of line, so that room() stays small enough to inline.
    [[gnu::noinline]] void grow(std::size_t n) { buffer_.resize(std::max(2 * buffer_.size(), length_ + n)); }

    std::string& buffer_;
    std::size_t& length_;
};

}  // namespace

Trace::Line::~Line() {
    if (trace_ != nullptr)
        trace_->finish();
}

Trace::Line& Trace::Line::field(std::string_view key, std::int64_t value) {
    Writer out(trace_->current_, trace_->length_);
    out.key(key);
    out.number(value);
    trace_->hash_written();
    return *this;
}

Trace::Line& Trace::Line::field(std::string_view key, std::uint64_t value) {
    Writer out(trace_->current_, trace_->length_);
    out.key(key);
    out.number(value);
    trace_->hash_written();
    return *this;
}

Trace::Line& Trace::Line::field(std::string_view key, std::string_view value) {
    Writer out(trace_->current_, trace_->length_);
    out.key(key);
    out.escaped(value);
    trace_->hash_written();
    return *this;
}

Trace::Line& Trace::Line::field(std::string_view key, bool value) {
    Writer out(trace_->current_, trace_->length_);
    out.key(key);
    out.append(value ? "true" : "false");
    trace_->hash_written();
    return *this;
}

Trace::Line& Trace::Line::raw(std::string_view key, std::string_view json) {
    Writer out(trace_->current_, trace_->length_);
    out.key(key);
    out.append(json);
    trace_->hash_written();
    return *this;
}

Trace::Line Trace::line(Nanos time, std::string_view kind) {
    EAGAIN_ASSERT(enabled());
    length_ = 0;
    Writer out(current_, length_);
    out.append("{\"t\":");
    out.number(static_cast<std::int64_t>(time.count()));
    out.append(",\"ev\":");
    out.escaped(kind);
    hashed_ = 0;
    hash_written();
    return Line(this);
}

void Trace::hash_written() noexcept {
    // FNV-1a: one multiply per byte, each waiting for the last, the bulk of
    // a traced step. Hashing every field as soon as it is written lets the
    // CPU format the next one while these multiplies are in flight.
    std::uint64_t hash = hash_;
    for (const char c : std::string_view(current_).substr(hashed_, length_ - hashed_)) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 0x100000001b3ULL;  // FNV-1a prime
    }
    hash_ = hash;
    hashed_ = length_;
}

void Trace::finish() {
    Writer(current_, length_).append("}");
    hash_written();
    const std::string_view line(current_.data(), length_);
    hash_ ^= static_cast<unsigned char>('\n');
    hash_ *= 0x100000001b3ULL;
    ++line_count_;
    if (sink_)
        sink_(line);
    if (keep_lines_)
        lines_.emplace_back(line);
}

std::string Trace::hash_hex() const {
    static constexpr std::string_view hex = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 0; i < 16; ++i)
        out[static_cast<std::size_t>(15 - i)] = hex[(hash_ >> (4 * i)) & 0xF];
    return out;
}

std::string_view trace_line_kind(std::string_view line) noexcept {
    constexpr std::string_view time_key = "{\"t\":";
    constexpr std::string_view kind_key = ",\"ev\":\"";
    if (!line.starts_with(time_key))
        return {};
    std::size_t at = time_key.size();
    while (at < line.size() && (line[at] == '-' || (line[at] >= '0' && line[at] <= '9')))
        ++at;
    if (line.substr(at, kind_key.size()) != kind_key)
        return {};
    at += kind_key.size();
    const std::size_t end = line.find('"', at);  // kinds are plain words: no escaped quote
    return end == std::string_view::npos ? std::string_view() : line.substr(at, end - at);
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
