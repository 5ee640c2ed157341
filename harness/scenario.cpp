#include "harness/scenario.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <initializer_list>
#include <limits>
#include <utility>

namespace eagain::harness {

namespace {

struct Word {
    std::string_view text;
    int column = 0;
};

// Splits a line into words: spaces and tabs separate, '#' ends the line,
// "->" is a word of its own.
std::vector<Word> split(std::string_view line) {
    std::vector<Word> words;
    std::size_t i = 0;
    while (i < line.size()) {
        const char c = line[i];
        if (c == '#')
            break;
        if (c == ' ' || c == '\t' || c == '\r') {
            ++i;
            continue;
        }
        const std::size_t start = i;
        if (line.compare(i, 2, "->") == 0) {
            i += 2;
        } else {
            while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '#' &&
                   line.compare(i, 2, "->") != 0)
                ++i;
        }
        words.push_back(Word{line.substr(start, i - start), static_cast<int>(start) + 1});
    }
    return words;
}

std::optional<std::uint64_t> count_of(std::string_view word) noexcept {
    if (word.empty() || word.front() == '_' || word.back() == '_')
        return std::nullopt;
    std::uint64_t value = 0;
    for (const char c : word) {
        if (c == '_')
            continue;
        if (c < '0' || c > '9')
            return std::nullopt;
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
            return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

// An integer followed by a unit from units; the unit's multiplier applies.
template <std::size_t N>
std::optional<std::uint64_t> parse_with_unit(std::string_view word,
                                             const std::array<std::pair<std::string_view, std::uint64_t>, N>& units,
                                             bool unit_required) noexcept {
    std::size_t digits = 0;
    while (digits < word.size() && ((word[digits] >= '0' && word[digits] <= '9') || word[digits] == '_'))
        ++digits;
    const std::optional<std::uint64_t> number = count_of(word.substr(0, digits));
    if (!number)
        return std::nullopt;
    const std::string_view unit = word.substr(digits);
    if (unit.empty())
        return unit_required && *number != 0 ? std::nullopt : number;
    for (const auto& [name, multiplier] : units) {
        if (unit == name) {
            if (*number > std::numeric_limits<std::uint64_t>::max() / multiplier)
                return std::nullopt;
            return *number * multiplier;
        }
    }
    return std::nullopt;
}

bool is_name(std::string_view word) noexcept {
    if (word.empty() || std::isalpha(static_cast<unsigned char>(word.front())) == 0)
        return false;
    return std::all_of(word.begin(), word.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_'; });
}

// Digits (with _) and then letters only: a number in the right form that
// parse_* refused for its size, so the message can say "too large".
bool digits_then_unit(std::string_view word, std::initializer_list<std::string_view> units) noexcept {
    std::size_t digits = 0;
    while (digits < word.size() && ((word[digits] >= '0' && word[digits] <= '9') || word[digits] == '_'))
        ++digits;
    if (digits == 0 || word.front() == '_' || word[digits - 1] == '_')
        return false;
    const std::string_view unit = word.substr(digits);
    return std::find(units.begin(), units.end(), unit) != units.end();
}
bool number_too_large(std::string_view word) noexcept {
    return digits_then_unit(word, {""}) && !count_of(word);
}
bool size_too_large(std::string_view word) noexcept {
    return digits_then_unit(word, {"", "K", "KiB", "M", "MiB"}) && !parse_size(word);
}
bool duration_too_long(std::string_view word) noexcept {
    return digits_then_unit(word, {"ns", "us", "ms", "s", "m", "h"}) && !parse_duration(word);
}

std::optional<FaultKind> errno_fault(std::string_view word) noexcept {
    static constexpr std::array<std::pair<std::string_view, FaultKind>, 8> names{{
        {"EAGAIN", FaultKind::eagain},
        {"EINTR", FaultKind::eintr},
        {"ECONNRESET", FaultKind::econnreset},
        {"EPIPE", FaultKind::epipe},
        {"ECONNREFUSED", FaultKind::econnrefused},
        {"ETIMEDOUT", FaultKind::etimedout},
        {"ECONNABORTED", FaultKind::econnaborted},
        {"EMFILE", FaultKind::emfile},
    }};
    for (const auto& [name, kind] : names) {
        if (word == name)
            return kind;
    }
    return std::nullopt;
}

}  // namespace

const std::vector<AppKindEntry>& app_kind_entries() {
    static const std::vector<AppKindEntry> kinds{
        {"frame-echo",
         {{"port", ValueType::port},
          {"max-frame", ValueType::size, frame_header_bytes, max_frame_bytes, "the header included"},
          {"heartbeat", ValueType::duration},
          {"backlog", ValueType::count, 0, max_backlog, "what listen(2) takes"}},
         {},
         true,
         {"stop-reading", "resume-reading"},
         {"max-buffered", "heartbeats", "error", "state"}},
        {"byte-echo",
         {{"port", ValueType::port}, {"backlog", ValueType::positive, 1, max_backlog, "what listen(2) takes"}},
         {},
         true,
         {"stop-reading", "resume-reading"},
         {"max-buffered", "error", "state", "no-errors"}},
        {"frame-client",
         {{"connect", ValueType::endpoint},
          {"frames", ValueType::count, 0, max_frames, "frames in all"},
          {"size", ValueType::size, 0, max_frame_bytes - frame_header_bytes, "a frame with its 20-byte header"},
          {"conns", ValueType::positive, 1, max_connections_per_host, "one ephemeral port each"},
          {"in-flight", ValueType::positive, 1, max_number},
          {"heartbeat", ValueType::duration},
          {"connect-timeout", ValueType::duration}},
         {"connect"},
         false,
         {"stop-reading", "resume-reading", "close", "send-hostile-length"},
         {"frames-verified", "no-errors", "error", "state", "heartbeats", "max-buffered"}},
        {"bulk-sender",
         {{"connect", ValueType::endpoint},
          {"bytes", ValueType::size},
          {"chunk", ValueType::size, 1, max_chunk_bytes, "bytes per send"},
          {"connect-timeout", ValueType::duration}},
         {"connect", "bytes"},
         false,
         {"stop-reading", "resume-reading"},
         {"max-buffered", "error", "state", "no-errors"}},
        {"bulk-receiver",
         {{"port", ValueType::port},
          {"bytes", ValueType::size},
          {"read-chunk", ValueType::size, 1, max_chunk_bytes, "bytes per read"},
          {"backlog", ValueType::positive, 1, max_backlog, "what listen(2) takes"}},
         {"port", "bytes"},
         true,
         {"stop-reading", "resume-reading"},
         {"bytes-received", "error", "state", "no-errors"}},
        {"idle-client",
         {{"connect", ValueType::endpoint},
          {"heartbeat", ValueType::duration},
          {"dead-after", ValueType::count, 0, max_dead_after, "heartbeat intervals"},
          {"connect-timeout", ValueType::duration}},
         {"connect"},
         false,
         {"close", "stop-reading", "resume-reading"},
         {"heartbeats", "error", "state", "no-errors"}},
        {"reconnecting-client",
         {{"connect", ValueType::endpoint},
          {"backoff", ValueType::duration},
          {"backoff-max", ValueType::duration},
          {"jitter", ValueType::percent},
          {"frames", ValueType::count, 0, max_frames, "frames in all"},
          {"connect-timeout", ValueType::duration}},
         {"connect"},
         false,
         {"close", "stop-reading", "resume-reading"},
         {"reconnect-at", "state", "error", "frames-verified", "no-errors"}},
    };
    return kinds;
}

namespace {

// "frame-echo, byte-echo, ...": every kind, in the entries' order.
std::string kind_names() {
    std::string names;
    for (const AppKindEntry& kind : app_kind_entries())
        names += (names.empty() ? "" : ", ") + std::string(kind.kind);
    return names;
}

}  // namespace

const AppKindEntry* find_app_kind(std::string_view name) noexcept {
    const auto& kinds = app_kind_entries();
    const auto found = std::find_if(kinds.begin(), kinds.end(), [&](const AppKindEntry& k) { return k.kind == name; });
    return found == kinds.end() ? nullptr : &*found;
}

namespace {

constexpr std::array<std::string_view, 7> actions{"stop-reading", "resume-reading",     "stop", "start", "restart",
                                                  "close",        "send-hostile-length"};
constexpr std::array<std::string_view, 3> world_expectations{"no-fd-leak", "no-sigpipe", "done-by"};
constexpr std::array<std::string_view, 9> app_expectations{"frames-verified", "no-errors",      "error",
                                                           "state",           "reconnect-at",   "heartbeats",
                                                           "max-buffered",    "bytes-received", "done-by"};
// ConnectionState names (core/connection.h), as apps record them.
constexpr std::array<std::string_view, 8> connection_states{
    "idle", "connecting", "established", "half_closed_local", "half_closed_remote", "closing", "closed", "backoff"};

// CloseReason names (core/connection.h), for "expect APP error REASON".
constexpr std::array<std::string_view, 12> close_reasons{"local_close",   "peer_closed",    "peer_closed_mid_frame",
                                                         "reset",         "broken_pipe",    "io_error",
                                                         "dead_peer",     "connect_failed", "connect_timeout",
                                                         "close_timeout", "hostile_frame",  "output_limit_exceeded"};

template <std::size_t N>
bool one_of(std::string_view word, const std::array<std::string_view, N>& choices) noexcept {
    return std::find(choices.begin(), choices.end(), word) != choices.end();
}

template <typename Choices>
std::string list(const Choices& choices) {
    std::string out;
    for (const std::string_view choice : choices) {
        if (!out.empty())
            out += ", ";
        out += choice;
    }
    return out;
}

// One statement's words, read left to right.
class Cursor {
public:
    Cursor(const std::vector<Word>& words, int end_column) : words_(words), end_column_(end_column) {}
    bool done() const noexcept { return next_ >= words_.size(); }
    const Word& peek() const noexcept { return done() ? end_ : words_[next_]; }
    Word take() noexcept { return done() ? end_ : words_[next_++]; }
    // The word after key among the key-value pairs from word first on
    // (the statement read or not); empty if key is not one of them.
    std::string_view value_of(std::string_view key, std::size_t first) const noexcept {
        for (std::size_t i = first; i + 1 < words_.size(); i += 2) {
            if (words_[i].text == key)
                return words_[i + 1].text;
        }
        return {};
    }

private:
    const std::vector<Word>& words_;
    std::size_t next_ = 0;
    int end_column_;
    Word end_{std::string_view(), end_column_};
};

// Thrown inside one statement to abandon it; caught per line, never
// escapes parse_scenario.
struct StatementError {};

// What a file may hold: a whole scenario, or only `fault target ...`
// statements (parse_fault_file), read by the same fault routine.
enum class Grammar : std::uint8_t { scenario, fault_file };

class Parser {
public:
    explicit Parser(std::string_view file, Grammar grammar = Grammar::scenario) : grammar_(grammar) {
        result_.scenario.file = std::string(file);
        if (grammar_ == Grammar::fault_file) {
            // The one host a fault file names: the program under the shim.
            result_.scenario.hosts.push_back(HostSpec{std::string(fault_file_host), {}, {}});
            seen_expect_ = true;  // a fault file checks nothing itself
        }
    }

    void line(int number, std::string_view text) {
        line_ = number;
        if (text.size() > max_line_bytes) {
            error(Word{text.substr(max_line_bytes, 1), static_cast<int>(max_line_bytes) + 1},
                  "a line of at most " + std::to_string(max_line_bytes) + " bytes");
            return;
        }
        const std::vector<Word> words = split(text);
        if (words.empty())
            return;
        seen_expect_ = seen_expect_ || words.front().text == "expect";
        Cursor cursor(words, static_cast<int>(text.size()) + 1);
        try {
            statement(cursor);
            if (!cursor.done())
                fail(cursor.peek(), "end of line");
        } catch (const StatementError&) {
        }
    }

    ParseResult finish() && {
        if (!seen_expect_) {
            // First in the list: line 1 comes before every other line.
            std::vector<std::string> others = std::move(result_.errors);
            result_.errors.clear();
            line_ = 1;
            error(Word{std::string_view(), 1},
                  "at least one expect statement (a scenario that checks nothing passes whatever happens)",
                  "found none");
            for (std::string& other : others) {
                if (result_.errors.size() < max_errors)
                    result_.errors.push_back(std::move(other));
                else
                    ++result_.errors_not_listed;
            }
        }
        return std::move(result_);
    }

    // The whole file is refused: too long to read.
    void too_long(std::size_t bytes) {
        line_ = 1;
        error(Word{std::string_view(), 1}, "a file of at most " + std::to_string(max_file_bytes) + " bytes (1 MiB)",
              "found " + std::to_string(bytes) + " bytes");
        seen_expect_ = true;
    }

private:
    // --- errors -------------------------------------------------------------
    // "expected EXPECTED, found FOUND" (found: the word, quoted).
    void error(const Word& at, const std::string& expected, std::string found = {}) {
        if (result_.errors.size() >= max_errors) {
            ++result_.errors_not_listed;
            return;
        }
        if (found.empty())
            found = "found " + (at.text.empty() ? std::string("end of line") : "\"" + printable(at.text) + "\"");
        result_.errors.push_back(result_.scenario.file + ":" + std::to_string(line_) + ":" + std::to_string(at.column) +
                                 ": expected " + expected + ", " + found);
    }
    [[noreturn]] void fail(const Word& at, const std::string& expected) {
        error(at, expected);
        throw StatementError{};
    }
    // A well-formed value beyond a limit: "..., found "3000h": too long (at
    // most 2400h)".
    [[noreturn]] void fail_limit(const Word& at, const std::string& expected, std::string_view too,
                                 const std::string& limit) {
        error(at, expected, "found \"" + printable(at.text) + "\": " + std::string(too) + " (at most " + limit + ")");
        throw StatementError{};
    }
    // The same for a limit on a sum or a number of statements: "found
    // "NAME": too many (at most N ...)".
    [[noreturn]] void fail_total(const Word& at, const std::string& expected, const std::string& what_and_limit) {
        error(at, expected, "found \"" + printable(at.text) + "\": too many (" + what_and_limit + ")");
        throw StatementError{};
    }
    static std::string printable(std::string_view text) {
        std::string out;
        for (const char c : text.substr(0, 40)) {
            const auto byte = static_cast<unsigned char>(c);
            out += byte >= 0x20 && byte < 0x7F && c != '"' ? std::string(1, c) : "?";
        }
        return text.size() > 40 ? out + "..." : out;
    }

    // --- values ---------------------------------------------------------------
    static constexpr std::string_view duration_expected = "a duration (250ns, 100us, 1ms, 2s, 5m, 1h)";
    Nanos duration_of(const Word& w, Nanos maximum = max_duration) {
        const std::optional<Nanos> d = parse_duration(w.text);
        if (!d) {
            if (duration_too_long(w.text))
                fail_limit(w, std::string(duration_expected), "too long", format_duration(max_duration));
            fail(w, std::string(duration_expected));
        }
        if (*d > maximum)
            fail_limit(w, std::string(duration_expected), "too long", format_duration(maximum));
        return *d;
    }
    Nanos duration(Cursor& c, Nanos maximum = max_duration) { return duration_of(c.take(), maximum); }
    // A whole number in [minimum, maximum]; above maximum says so.
    std::uint64_t count_in(const Word& w, std::uint64_t minimum, std::uint64_t maximum, std::string_view why = {}) {
        const std::optional<std::uint64_t> n = count_of(w.text);
        const std::string expected =
            maximum >= max_number ? "a whole number of at least " + std::to_string(minimum)
                                  : "a whole number from " + std::to_string(minimum) + " to " + std::to_string(maximum);
        if (!n && !number_too_large(w.text))
            fail(w, expected);
        if (!n || *n > maximum)
            fail_limit(w, expected, "too large",
                       std::to_string(maximum) + (why.empty() ? "" : ", " + std::string(why)));
        if (*n < minimum)
            fail(w, expected);
        return *n;
    }
    std::uint64_t count(Cursor& c, std::uint64_t minimum = 0, std::uint64_t maximum = max_number) {
        return count_in(c.take(), minimum, maximum);
    }
    std::uint64_t size_in(const Word& w, std::uint64_t minimum, std::uint64_t maximum, std::string_view why = {}) {
        const std::optional<std::uint64_t> n = parse_size(w.text);
        const std::string expected = minimum == 0 ? std::string("a size in bytes (64, 16KiB, 4MiB)")
                                                  : "a size of at least " + format_size(minimum) +
                                                        (minimum == 1 ? " byte" : " bytes") + " (64, 16KiB, 4MiB)";
        if (!n && !size_too_large(w.text))
            fail(w, expected);
        if (!n || *n > maximum)
            fail_limit(w, expected, "too large", format_size(maximum) + (why.empty() ? "" : ", " + std::string(why)));
        if (*n < minimum)
            fail(w, expected);
        return *n;
    }
    std::uint64_t size(Cursor& c, std::uint64_t minimum = 0, std::uint64_t maximum = max_number) {
        return size_in(c.take(), minimum, maximum);
    }
    std::pair<std::uint64_t, std::uint64_t> chance(Cursor& c) {
        const Word w = c.take();
        const std::size_t slash = w.text.find('/');
        const auto numerator = count_of(w.text.substr(0, slash));
        const auto denominator = slash == std::string_view::npos ? std::nullopt : count_of(w.text.substr(slash + 1));
        if (!numerator || !denominator || *denominator == 0 || *numerator > *denominator)
            fail(w, "a chance N/D with 0 <= N <= D and D > 0 (1/8)");
        return {*numerator, *denominator};
    }
    // "3,17,40": numbers from 1, strictly increasing, one word.
    std::vector<std::uint64_t> number_list(Cursor& c, std::string_view what) {
        const Word w = c.take();
        std::vector<std::uint64_t> numbers;
        std::string_view rest = w.text;
        bool well_formed = !rest.empty();
        while (well_formed && !rest.empty()) {
            const std::size_t comma = rest.find(',');
            const std::optional<std::uint64_t> n = count_of(rest.substr(0, comma));
            well_formed = n && *n >= 1 && *n <= (1ULL << 40) && (numbers.empty() || *n > numbers.back()) &&
                          numbers.size() < max_call_list;
            if (well_formed)
                numbers.push_back(*n);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            if (comma != std::string_view::npos && rest.empty())
                well_formed = false;  // a trailing comma
        }
        if (!well_formed)
            fail(w, "a list of " + std::string(what) + " numbers from 1, strictly increasing, no spaces (3,17,40)");
        return numbers;
    }
    void keyword(Cursor& c, std::string_view expected) {
        const Word w = c.take();
        if (w.text != expected)
            fail(w, "\"" + std::string(expected) + "\"");
    }
    std::string new_name(Cursor& c, std::string_view what) {
        const Word w = c.take();
        if (!is_name(w.text))
            fail(w, std::string(what) + " (a letter, then letters, digits, - or _)");
        return std::string(w.text);
    }
    const HostSpec* find_host(std::string_view name) const {
        for (const HostSpec& host : result_.scenario.hosts) {
            if (host.name == name)
                return &host;
        }
        return nullptr;
    }
    const AppSpec* find_app(std::string_view name) const {
        for (const AppSpec& app : result_.scenario.apps) {
            if (app.name == name)
                return &app;
        }
        return nullptr;
    }
    std::string host(Cursor& c, bool any_allowed = false) {
        const Word w = c.take();
        if (any_allowed && w.text == "*")
            return std::string();
        if (find_host(w.text) == nullptr)
            fail(w, any_allowed ? "a host declared above, or *" : "a host declared above");
        return std::string(w.text);
    }
    std::string app(Cursor& c) {
        const Word w = c.take();
        if (find_app(w.text) == nullptr)
            fail(w, "an app declared above (by its name)");
        return std::string(w.text);
    }
    SourceLocation where(const Word& first) const { return SourceLocation{line_, first.column}; }

    // --- statements -------------------------------------------------------------
    void statement(Cursor& c) {
        const Word first = c.take();
        const std::string_view s = first.text;
        if (grammar_ == Grammar::fault_file) {
            fault_file_statement(c, first);
            return;
        }
        if (s == "seed")
            seed(c, first);
        else if (s == "network")
            link_options(c, result_.scenario.network);
        else if (s == "link")
            link(c, first);
        else if (s == "tcp")
            tcp(c);
        else if (s == "host")
            host_statement(c, first);
        else if (s == "app")
            app_statement(c, first);
        else if (s == "fault")
            fault(c, first);
        else if (s == "net")
            net(c, first);
        else if (s == "at")
            action(c, first);
        else if (s == "expect")
            expect(c, first);
        else
            fail(first, "a statement (seed, network, link, tcp, host, app, fault, net, at, expect)");
    }

    void seed(Cursor& c, const Word& first) {
        if (seen_seed_)
            fail(first, "one seed statement at most");
        seen_seed_ = true;
        const Word w = c.take();
        const std::optional<std::uint64_t> n = count_of(w.text);
        if (!n) {
            if (number_too_large(w.text))
                fail_limit(w, "a whole number", "too large", std::to_string(std::numeric_limits<std::uint64_t>::max()));
            fail(w, "a whole number");
        }
        result_.scenario.seed = *n;
    }

    void link_options(Cursor& c, sim::LinkOptions& link) {
        while (!c.done()) {
            const Word key = c.take();
            if (key.text == "latency")
                link.latency = duration(c);
            else if (key.text == "jitter")
                link.jitter = duration(c);
            else if (key.text == "mss")
                link.mss = static_cast<std::uint32_t>(count(c, 1, 65535));
            else
                fail(key, "latency, jitter or mss");
        }
    }

    void link(Cursor& c, const Word& first) {
        LinkSpec spec;
        spec.a = host(c);
        spec.b = host(c);
        spec.link = result_.scenario.network;
        spec.where = where(first);
        link_options(c, spec.link);
        result_.scenario.links.push_back(std::move(spec));
    }

    void tcp(Cursor& c) {
        sim::TcpOptions& tcp = result_.scenario.tcp;
        while (!c.done()) {
            const Word key = c.take();
            if (key.text == "send-buffer") {
                tcp.send_buffer_bytes = static_cast<int>(
                    size(c, static_cast<std::uint64_t>(tcp.min_send_buffer_bytes), max_tcp_buffer_bytes));
            } else if (key.text == "receive-buffer") {
                tcp.receive_buffer_bytes = static_cast<int>(
                    size(c, static_cast<std::uint64_t>(tcp.min_receive_buffer_bytes), max_tcp_buffer_bytes));
            } else if (key.text == "rto-min") {
                const Word w = c.peek();
                tcp.rto_min = duration(c, max_rto_min);
                if (tcp.rto_min < min_rto)
                    fail(w, "a duration of at least " + format_duration(min_rto));
            } else if (key.text == "retries") {
                tcp.retries = static_cast<int>(count(c, 0, 100));
            } else if (key.text == "syn-retries") {
                tcp.syn_retries = static_cast<int>(count(c, 0, max_syn_retries));
            } else
                fail(key, "send-buffer, receive-buffer, rto-min, retries or syn-retries");
        }
    }

    void host_statement(Cursor& c, const Word& first) {
        const Word name_word = c.peek();
        HostSpec spec;
        spec.name = new_name(c, "a host name");
        if (find_host(spec.name) != nullptr)
            fail(name_word, "a host name not declared before");
        spec.where = where(first);
        if (result_.scenario.hosts.size() >= max_hosts)
            fail_total(name_word, "a host", "at most " + std::to_string(max_hosts) + " hosts");
        // Declared before its options are read: a mistake in them is one
        // problem, not one more on every line that names the host.
        result_.scenario.hosts.push_back(std::move(spec));
        host_options(c, result_.scenario.hosts.back());
    }

    void host_options(Cursor& c, HostSpec& spec) {
        while (!c.done()) {
            const Word key = c.take();
            if (key.text == "edge") {
                const Word mode = c.take();
                if (mode.text == "linux")
                    spec.options.edge_mode = sim::EdgeMode::linux_every_arrival;
                else if (mode.text == "strict")
                    spec.options.edge_mode = sim::EdgeMode::transition_only;
                else
                    fail(mode, "linux or strict");
            } else if (key.text == "fd-limit") {
                spec.options.fd_limit = static_cast<int>(count(c, 4, 1U << 20));
            } else {
                fail(key, "edge or fd-limit");
            }
        }
    }

    void value(const Word& w, const OptionRule& rule) {
        const ValueType type = rule.type;
        switch (type) {
            case ValueType::port: {
                const auto n = count_of(w.text);
                if (!n || *n == 0 || *n > 65535)
                    fail(w, "a port from 1 to 65535");
                return;
            }
            case ValueType::endpoint: {
                const std::size_t colon = w.text.rfind(':');
                const auto port = colon == std::string_view::npos ? std::nullopt : count_of(w.text.substr(colon + 1));
                if (colon == std::string_view::npos || find_host(w.text.substr(0, colon)) == nullptr || !port ||
                    *port == 0 || *port > 65535)
                    fail(w, "host:port with a host declared above");
                return;
            }
            case ValueType::count:
            case ValueType::positive:
                (void)count_in(w, std::max<std::uint64_t>(rule.minimum, type == ValueType::positive ? 1 : 0),
                               rule.maximum, rule.above);
                return;
            case ValueType::size: (void)size_in(w, rule.minimum, rule.maximum, rule.above); return;
            case ValueType::duration: (void)duration_of(w); return;
            case ValueType::percent: {
                const auto n = w.text.ends_with('%') ? count_of(w.text.substr(0, w.text.size() - 1)) : std::nullopt;
                if (!n || *n > 100)
                    fail(w, "a percentage from 0% to 100%");
                return;
            }
            case ValueType::trigger:
                if (w.text != "level" && w.text != "edge" && w.text != "oneshot")
                    fail(w, "level, edge or oneshot");
                return;
            case ValueType::name:
                if (!is_name(w.text) || find_app(w.text) != nullptr)
                    fail(w, "an app name not used before");
                return;
        }
    }

    void app_statement(Cursor& c, const Word& first) {
        AppSpec spec;
        spec.host = host(c);
        const Word kind_word = c.take();
        const AppKindEntry* const kind = find_app_kind(kind_word.text);
        if (kind == nullptr)
            fail(kind_word, "an app kind (" + kind_names() + ")");
        spec.kind = std::string(kind->kind);
        spec.where = where(first);
        if (result_.scenario.apps.size() >= max_apps)
            fail_total(first, "an app", "at most " + std::to_string(max_apps) + " apps");
        try {
            app_options(c, first, *kind, spec);
        } catch (const StatementError&) {
            // Declared all the same when its name is clear, so the lines
            // that name it report nothing more.
            std::string_view name = c.value_of("name", 3);
            if (name.empty())
                name = spec.host;
            if (is_name(name) && find_app(name) == nullptr) {
                spec.name = std::string(name);
                result_.scenario.apps.push_back(std::move(spec));
            }
            throw;
        }
    }

    void app_options(Cursor& c, const Word& first, const AppKindEntry& kind_rule, AppSpec& spec) {
        const AppKindEntry* const kind = &kind_rule;
        std::map<std::string, Word, std::less<>> value_words;  // for the problems below
        while (!c.done()) {
            const Word key = c.take();
            OptionRule rule{key.text, ValueType::name};
            if (key.text == "trigger") {
                rule.type = ValueType::trigger;
            } else if (key.text != "name") {
                const auto found = std::find_if(kind->options.begin(), kind->options.end(),
                                                [&](const OptionRule& r) { return r.key == key.text; });
                if (found == kind->options.end()) {
                    std::string known = "trigger, name";
                    for (const OptionRule& r : kind->options)
                        known += ", " + std::string(r.key);
                    fail(key, "an option of " + spec.kind + " (" + known + ")");
                }
                rule = *found;
            }
            if (spec.options.contains(std::string(key.text)))
                fail(key, "each option once");
            const Word v = c.take();
            value(v, rule);
            spec.options[std::string(key.text)] = std::string(v.text);
            value_words.emplace(std::string(key.text), v);
        }
        for (const std::string_view required : kind->required) {
            if (!spec.options.contains(std::string(required)))
                fail(c.peek(), "option " + std::string(required) + " for " + spec.kind);
        }
        spec.name = spec.options.contains("name") ? spec.options["name"] : spec.host;
        if (find_app(spec.name) != nullptr)
            fail(first, "a name for this app (\"name NAME\"): " + spec.name + " is taken");
        app_options_agree(spec, value_words);
        app_totals(spec, value_words, first);
        result_.scenario.apps.push_back(spec);
    }

    // Options each valid alone that make no connection config together:
    // what the runner would refuse, said here with a column.
    void app_options_agree(const AppSpec& spec, const std::map<std::string, Word, std::less<>>& words) {
        const auto word = [&](std::string_view key) { return words.find(key)->second; };
        const auto duration_option = [&](std::string_view key) {
            const auto found = words.find(key);
            return found == words.end() ? std::optional<Nanos>() : parse_duration(found->second.text);
        };
        if (spec.kind == "reconnecting-client") {
            const Nanos backoff = duration_option("backoff").value_or(std::chrono::seconds{1});
            const Nanos backoff_max = duration_option("backoff-max").value_or(std::chrono::seconds{60});
            if (backoff == Nanos{0})
                fail(word("backoff"), "a backoff above 0 (the delay before the first retry)");
            if (backoff_max < backoff)
                fail(words.contains("backoff-max") ? word("backoff-max") : word("backoff"),
                     "a backoff-max of at least the backoff (" + format_duration(backoff) + ")");
        }
        if (spec.kind == "idle-client" && words.contains("dead-after")) {
            const Nanos heartbeat = duration_option("heartbeat").value_or(std::chrono::seconds{30});
            if (heartbeat == Nanos{0} && count_of(word("dead-after").text).value_or(0) != 0)
                fail(word("dead-after"),
                     "dead-after 0 with heartbeat 0 (a dead peer is one silent for dead-after "
                     "heartbeat intervals: without heartbeats there is none)");
        }
    }

    // What the apps of the file take in all: connections (ephemeral ports
    // per host, memory in all), frames and bytes in flight.
    void app_totals(const AppSpec& spec, const std::map<std::string, Word, std::less<>>& words, const Word& first) {
        if (spec.kind == "frame-echo" || spec.kind == "byte-echo" || spec.kind == "bulk-receiver")
            return;
        const auto count_option = [&](std::string_view key, std::uint64_t fallback) {
            const auto found = words.find(key);
            return found == words.end() ? fallback : count_of(found->second.text).value_or(fallback);
        };
        const auto at = [&](std::string_view key) {
            const auto found = words.find(key);
            return found == words.end() ? first : found->second;
        };
        const std::uint64_t conns = spec.kind == "frame-client" ? count_option("conns", 1) : 1;
        const std::string conns_expected =
            words.contains("conns") ? "fewer conns" : "a client on a host with connections left";
        std::uint64_t& host_conns = connections_per_host_[spec.host];
        if (host_conns + conns > max_connections_per_host)
            fail_total(at("conns"), conns_expected,
                       "at most " + std::to_string(max_connections_per_host) +
                           " connections from one host, one ephemeral port each; " + std::to_string(host_conns) +
                           " are taken by apps above");
        if (connections_ + conns > max_connections)
            fail_total(at("conns"), conns_expected,
                       "at most " + std::to_string(max_connections) + " connections in all; " +
                           std::to_string(connections_) + " are taken by apps above");
        std::uint64_t frames = 0;
        std::uint64_t in_flight_bytes = 0;
        if (spec.kind == "frame-client" || spec.kind == "reconnecting-client") {
            frames = count_option("frames", spec.kind == "frame-client" ? 100 : 0);
            if (frames_ + frames > max_frames)
                fail_total(at("frames"), "fewer frames",
                           "at most " + std::to_string(max_frames) + " frames in all; " + std::to_string(frames_) +
                               " are taken by apps above");
        }
        if (spec.kind == "frame-client") {
            const auto found = words.find("size");
            const std::uint64_t body = found == words.end() ? 64 : parse_size(found->second.text).value_or(64);
            // Each factor is at most 2^40 and the product is checked in steps.
            // A connection never has more in flight than its share of the
            // frames (the first frames % conns get one more).
            const std::uint64_t per_connection =
                std::min(count_option("in-flight", 32), frames / conns + (frames % conns != 0 ? 1 : 0));
            const std::uint64_t frame = body + frame_header_bytes;
            const bool too_many = per_connection > max_in_flight_bytes / frame ||
                                  per_connection * frame > max_in_flight_bytes / conns ||
                                  in_flight_bytes_ + per_connection * frame * conns > max_in_flight_bytes;
            if (too_many)
                fail_total(at("in-flight"), "fewer in-flight (or conns, or a smaller size)",
                           "conns x in-flight x (size + 20) is at most " + std::to_string(max_in_flight_bytes) +
                               " bytes (256 MiB) in all; " + std::to_string(in_flight_bytes_) +
                               " are taken by apps above");
            in_flight_bytes = per_connection * frame * conns;
        }
        host_conns += conns;
        connections_ += conns;
        frames_ += frames;
        in_flight_bytes_ += in_flight_bytes;
    }

    // A fault file's one statement: "fault target ...".
    void fault_file_statement(Cursor& c, const Word& first) {
        if (first.text != "fault")
            fail(first, "a fault statement (fault target CALL SELECTOR -> RESULT)");
        if (c.peek().text != fault_file_host)
            fail(c.peek(), "the host word \"" + std::string(fault_file_host) + "\"");
        fault(c, first);
    }

    // The selector of a fault rule ("call 3", "chance 1/8", ...), into rule;
    // its first word, for the problems found later.
    Word fault_selector(Cursor& c, FaultRule& rule) {
        const Word selector = c.take();
        if (selector.text == "always") {
            rule.when = CallSelector::every_call;
        } else if (selector.text == "call") {
            rule.when = CallSelector::nth_call;
            rule.call_number = count(c, 1);
        } else if (selector.text == "every") {
            rule.when = CallSelector::every_kth_call;
            rule.call_number = count(c, 1);
        } else if (selector.text == "from") {
            rule.when = CallSelector::from_nth_call;
            rule.call_number = count(c, 1);
        } else if (selector.text == "offset") {
            rule.when = CallSelector::at_stream_offset;
            rule.stream_offset_bytes = size(c);
        } else if (selector.text == "chance") {
            rule.when = CallSelector::with_probability;
            std::tie(rule.chance_numerator, rule.chance_denominator) = chance(c);
        } else if (selector.text == "calls") {
            rule.when = CallSelector::call_list;
            rule.call_list = number_list(c, "call");
        } else {
            fail(selector, "a selector (always, call N, calls N,N,..., every N, from N, offset S, chance N/D)");
        }
        return selector;
    }

    void fault(Cursor& c, const Word& first) {
        SyscallFaultSpec spec;
        const Word host_word = c.peek();
        spec.host = host(c);
        spec.where = where(first);
        std::size_t& rules = fault_rules_per_host_[spec.host];
        if (rules >= max_fault_rules_per_host)
            fail_total(host_word, "a host with fewer fault rules",
                       "at most " + std::to_string(max_fault_rules_per_host) + " fault rules on one host");
        const Word call_word = c.take();
        const std::optional<SysCall> call = sys_call_from_string(call_word.text);
        if (!call)
            fail(call_word, "a syscall name (send, recv, sendmsg, accept4, connect, epoll_wait, ...)");
        FaultRule& rule = spec.rule;
        rule.call = *call;
        const Word selector = fault_selector(c, rule);
        while (c.peek().text == "fd" || c.peek().text == "times") {
            const Word key = c.take();
            if (key.text == "fd")
                rule.fd = static_cast<int>(count(c, 0, 1U << 20));
            else
                rule.max_hits = count(c, 1);
        }
        keyword(c, "->");
        const Word result = c.take();
        if (result.text == "short") {
            rule.fault = FaultKind::short_transfer;
            const Word limit = c.take();
            if (limit.text.empty())
                fail(limit, "the most bytes the call moves after short (short 5)");
            rule.short_limit_bytes = static_cast<std::size_t>(size_in(limit, 1, max_number));
        } else if (const std::optional<FaultKind> kind = errno_fault(result.text)) {
            rule.fault = *kind;
        } else {
            fail(result,
                 "a result (short N, EAGAIN, EINTR, ECONNRESET, EPIPE, ECONNREFUSED, ETIMEDOUT, ECONNABORTED, "
                 "EMFILE)");
        }
        if (rule.when == CallSelector::at_stream_offset && rule.call != SysCall::send && rule.call != SysCall::recv &&
            rule.call != SysCall::writev && rule.call != SysCall::readv)
            fail(selector, "a selector other than offset S for " + std::string(call_word.text) +
                               " (offset S needs send, writev, recv or readv)");
        if (const RuleError problem = validate_rule(rule); problem != RuleError::none)
            fail(result, "a fault FaultySys can inject here (" + std::string(to_string(problem)) + ")");
        ++rules;
        result_.scenario.syscall_faults.push_back(std::move(spec));
    }

    // A port filter, optional: "port N".
    std::uint16_t optional_port(Cursor& c) {
        if (c.peek().text != "port")
            return 0;
        c.take();
        return static_cast<std::uint16_t>(count(c, 1, 65535));
    }
    // "A -> B" between hosts, * for any.
    std::pair<std::string, std::string> direction(Cursor& c) {
        std::string from = host(c, true);
        keyword(c, "->");
        std::string to = host(c, true);
        return {std::move(from), std::move(to)};
    }
    // [at D] [for D]
    void period(Cursor& c, Nanos& start, Nanos& length) {
        while (c.peek().text == "at" || c.peek().text == "for") {
            const Word key = c.take();
            (key.text == "at" ? start : length) = duration(c);
        }
    }

    // at D for D
    void required_period(Cursor& c, Nanos& start, Nanos& length) {
        keyword(c, "at");
        start = duration(c);
        keyword(c, "for");
        length = duration(c);
    }

    void net(Cursor& c, const Word& first) {
        if (result_.scenario.net_faults.size() >= max_net_faults)
            fail_total(first, "fewer net statements", "at most " + std::to_string(max_net_faults) + " network faults");
        const Word kind = c.take();
        NetFaultSpec spec;
        spec.where = where(first);
        if (kind.text == "reset") {
            sim::ResetFault f;
            f.host = host(c);
            f.port = optional_port(c);
            const Word when = c.take();
            if (when.text == "at")
                f.at = duration(c);
            else if (when.text == "offset")
                f.at_received_offset = static_cast<std::int64_t>(size(c));
            else
                fail(when, "at D or offset S");
            if (c.peek().text == "one-sided") {
                c.take();
                f.one_sided = true;
            }
            spec.fault = f;
        } else if (kind.text == "zero-window") {
            sim::ZeroWindowFault f;
            f.host = host(c);
            f.port = optional_port(c);
            required_period(c, f.start, f.duration);
            spec.fault = f;
        } else if (kind.text == "reorder") {
            sim::ReorderFault f;
            std::tie(f.from, f.to) = direction(c);
            const Word how = c.take();
            if (how.text == "chance")
                std::tie(f.numerator, f.denominator) = chance(c);
            else if (how.text == "segments")
                f.held_segments = number_list(c, "segment");
            else
                fail(how, "chance N/D or segments N,N,...");
            if (c.peek().text == "hold") {
                c.take();
                f.hold_back = duration(c);
            }
            period(c, f.start, f.duration);
            spec.fault = f;
        } else if (kind.text == "delay") {
            sim::DelayFault f;
            std::tie(f.from, f.to) = direction(c);
            keyword(c, "extra");
            f.extra = duration(c);
            period(c, f.start, f.duration);
            spec.fault = f;
        } else if (kind.text == "partition") {
            sim::PartitionFault f;
            f.a = host(c);
            f.b = host(c);
            required_period(c, f.start, f.duration);
            spec.fault = f;
        } else {
            fail(kind, "a network fault (reset, zero-window, reorder, delay, partition)");
        }
        result_.scenario.net_faults.push_back(std::move(spec));
    }

    void action(Cursor& c, const Word& first) {
        ActionSpec spec;
        spec.at = duration(c);
        spec.app = app(c);
        const Word what = c.take();
        if (!one_of(what.text, actions))
            fail(what, "an action (" + list(actions) + ")");
        if (const AppSpec* target = find_app(spec.app); target != nullptr) {
            const AppKindEntry& kind = *find_app_kind(target->kind);
            if (!kind.honours(what.text))
                fail(what, "an action " + target->kind + " honours (stop, start, restart" +
                               (kind.actions.empty() ? "" : ", " + list(kind.actions)) + ")");
        }
        spec.action = std::string(what.text);
        spec.where = where(first);
        result_.scenario.actions.push_back(std::move(spec));
    }

    void expect(Cursor& c, const Word& first) {
        ExpectSpec spec;
        spec.where = where(first);
        const Word head = c.peek();
        if (one_of(head.text, world_expectations)) {
            spec.what = std::string(c.take().text);
            if (spec.what == "done-by") {
                spec.arguments.emplace_back(c.peek().text);
                duration(c);
            }
        } else {
            if (find_app(head.text) == nullptr)
                fail(head, "an app declared above, or " + list(world_expectations));
            spec.app = std::string(c.take().text);
            const Word what = c.take();
            if (!one_of(what.text, app_expectations))
                fail(what, "an expectation (" + list(app_expectations) + ")");
            const AppSpec& target = *find_app(spec.app);
            const AppKindEntry& kind = *find_app_kind(target.kind);
            if (!kind.observes(what.text))
                fail(what, "an expectation " + target.kind + " observes (" + list(kind.expectations) + ", done-by)");
            spec.what = std::string(what.text);
            app_expectation_arguments(c, spec);
        }
        result_.scenario.expectations.push_back(std::move(spec));
    }

    // What follows "expect APP WHAT", checked by WHAT, each word as written.
    void app_expectation_arguments(Cursor& c, ExpectSpec& spec) {
        const auto argument = [&](auto check) {
            spec.arguments.emplace_back(std::string(c.peek().text));
            check();
        };
        if (spec.what == "frames-verified" || spec.what == "heartbeats") {
            argument([&] { count(c); });
        } else if (spec.what == "max-buffered" || spec.what == "bytes-received") {
            argument([&] { size(c); });
        } else if (spec.what == "done-by") {
            argument([&] { duration(c); });
        } else if (spec.what == "error") {
            argument([&] {
                const Word w = c.take();
                if (!errno_fault(w.text) && !one_of(w.text, close_reasons))
                    fail(w, "an errno name (ECONNRESET, EPIPE, ETIMEDOUT, ...) or a close reason (" +
                                list(close_reasons) + ")");
            });
        } else if (spec.what == "state") {
            argument([&] {
                const Word w = c.take();
                if (!one_of(w.text, connection_states))
                    fail(w, "a connection state (" + list(connection_states) + ")");
            });
        } else if (spec.what == "reconnect-at") {
            if (c.done())
                fail(c.peek(), "one or more times");
            while (!c.done())
                argument([&] { duration(c); });
        }
    }

    ParseResult result_;
    int line_ = 0;
    bool seen_seed_ = false;
    bool seen_expect_ = false;
    std::map<std::string, std::size_t, std::less<>> fault_rules_per_host_;
    Grammar grammar_;
    std::map<std::string, std::uint64_t, std::less<>> connections_per_host_;
    std::uint64_t connections_ = 0;
    std::uint64_t frames_ = 0;
    std::uint64_t in_flight_bytes_ = 0;
};

}  // namespace

std::string format_duration(Nanos duration) {
    const std::int64_t ns = duration.count();
    if (ns == 0)
        return "0";
    static constexpr std::array<std::pair<std::int64_t, std::string_view>, 6> units{{
        {3'600'000'000'000, "h"},
        {60'000'000'000, "m"},
        {1'000'000'000, "s"},
        {1'000'000, "ms"},
        {1'000, "us"},
        {1, "ns"},
    }};
    for (const auto& [scale, unit] : units) {
        if (ns % scale == 0)
            return std::to_string(ns / scale) + std::string(unit);
    }
    return std::to_string(ns) + "ns";  // LCOV_EXCL_LINE: the 1ns unit divides everything
}

std::optional<Nanos> parse_duration(std::string_view word) noexcept {
    using namespace std::chrono;
    static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 6> units{{
        {"ns", 1},
        {"us", 1'000},
        {"ms", 1'000'000},
        {"s", 1'000'000'000},
        {"m", 60'000'000'000},
        {"h", 3'600'000'000'000},
    }};
    const std::optional<std::uint64_t> ns = parse_with_unit(word, units, true);
    // Virtual time, but bounded.
    if (!ns || *ns > static_cast<std::uint64_t>(max_duration.count()))
        return std::nullopt;
    return Nanos(static_cast<Nanos::rep>(*ns));
}

std::optional<std::uint64_t> parse_count(std::string_view word) noexcept {
    return count_of(word);
}

std::optional<std::uint64_t> parse_size(std::string_view word) noexcept {
    static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 4> units{{
        {"K", 1024},
        {"KiB", 1024},
        {"M", 1024 * 1024},
        {"MiB", 1024 * 1024},
    }};
    return parse_with_unit(word, units, false);
}

std::string format_size(std::uint64_t size_bytes) {
    if (size_bytes != 0 && size_bytes % (1024 * 1024) == 0)
        return std::to_string(size_bytes / (1024 * 1024)) + "M";
    if (size_bytes != 0 && size_bytes % 1024 == 0)
        return std::to_string(size_bytes / 1024) + "K";
    return std::to_string(size_bytes);
}

namespace {

ParseResult parse(std::string_view text, std::string_view file_name, Grammar grammar) {
    Parser parser(file_name, grammar);
    if (text.size() > max_file_bytes) {
        parser.too_long(text.size());
        return std::move(parser).finish();
    }
    // A UTF-8 byte order mark, as some editors write: not part of line 1.
    if (text.starts_with("\xEF\xBB\xBF"))
        text.remove_prefix(3);
    int number = 0;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        parser.line(++number, text.substr(start, end - start));
        if (end == text.size())
            break;
        start = end + 1;
    }
    return std::move(parser).finish();
}

}  // namespace

ParseResult parse_scenario(std::string_view text, std::string_view file_name) {
    return parse(text, file_name, Grammar::scenario);
}

FaultFileResult parse_fault_file(std::string_view text, std::string_view file_name) {
    ParseResult parsed = parse(text, file_name, Grammar::fault_file);
    FaultFileResult result;
    result.errors = std::move(parsed.errors);
    result.errors_not_listed = parsed.errors_not_listed;
    if (result.errors.empty()) {
        for (const SyscallFaultSpec& spec : parsed.scenario.syscall_faults)
            result.rules.push_back(spec.rule);
    }
    return result;
}

}  // namespace eagain::harness
