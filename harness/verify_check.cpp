// The .verify file parser (harness/verify_check.h). Each statement is one
// line of words; `about` takes one double-quoted string. `fault` lines are
// handed, in place, to the scenario parser's own fault grammar
// (parse_fault_file), so a check's faults mean what a scenario's mean.
#include "harness/verify_check.h"

#include <algorithm>
#include <array>
#include <utility>

namespace eagain::harness::verify {

std::string_view to_string(Protocol protocol) noexcept {
    switch (protocol) {
        case Protocol::bytes: return "bytes";
        case Protocol::frames: return "frames";
    }
    return "?";
}

std::string_view to_string(PeerKind kind) noexcept {
    switch (kind) {
        case PeerKind::echo: return "echo";
        case PeerKind::reset: return "reset";
        case PeerKind::hostile: return "hostile";
    }
    return "?";
}

namespace {

constexpr std::array<std::pair<std::string_view, Oracle>, 7> oracle_names{{
    {"echo-intact", Oracle::echo_intact},
    {"alive", Oracle::alive},
    {"idle-cpu", Oracle::idle_cpu},
    {"second-client-served", Oracle::second_client_served},
    {"served-after", Oracle::served_after},
    {"fd-baseline", Oracle::fd_baseline},
    {"hostile-closed", Oracle::hostile_closed},
}};

struct Word {
    std::string_view text;
    int column = 0;
};

// Splits a line into words (a "..." string is one word, quotes kept);
// a # outside a string starts a comment.
std::vector<Word> split_words(std::string_view line) {
    std::vector<Word> words;
    std::size_t i = 0;
    while (i < line.size()) {
        if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
            ++i;
            continue;
        }
        if (line[i] == '#')
            break;
        const std::size_t start = i;
        if (line[i] == '"') {
            const std::size_t close = line.find('"', i + 1);
            i = close == std::string_view::npos ? line.size() : close + 1;
        } else {
            while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
                ++i;
        }
        words.push_back({line.substr(start, i - start), static_cast<int>(start) + 1});
    }
    return words;
}

class Parser {
public:
    explicit Parser(std::string_view file) { result_.check.file = std::string(file); }

    void statement(int line, const std::vector<Word>& words) {
        line_ = line;
        const std::string_view s = words[0].text;
        saw_check_ = saw_check_ || s == "check";
        saw_expect_ = saw_expect_ || s == "expect";
        if (s == "check")
            name(words);
        else if (s == "about")
            about(words);
        else if (s == "protocol")
            protocol(words);
        else if (s == "peer")
            peer(words);
        else if (s == "expect")
            expect(words);
        else if (s == "deadline")
            deadline(words);
        else if (s == "fault")
            return;  // parsed with the whole file by parse_fault_file
        else
            fail(words[0], "a statement (check, about, protocol, peer, fault, expect, deadline)");
    }

    CheckParse finish(bool saw_peer) {
        Check& c = result_.check;
        if (!saw_check_)
            result_.errors.push_back(c.file + ":1:1: expected a `check NAME` statement, found none");
        if (!saw_peer)
            result_.errors.push_back(c.file + ":1:1: expected a `peer` statement, found none");
        if (!saw_expect_)
            result_.errors.push_back(c.file + ":1:1: expected at least one `expect`, found none (it would pass "
                                              "whatever happened)");
        return std::move(result_);
    }

    std::vector<std::string>& errors() { return result_.errors; }

private:
    void fail(const Word& w, std::string_view expected) {
        result_.errors.push_back(result_.check.file + ":" + std::to_string(line_) + ":" + std::to_string(w.column) +
                                 ": expected " + std::string(expected) + ", found " +
                                 (w.text.empty() ? std::string("end of line") : "'" + std::string(w.text) + "'"));
    }
    // The word after position i, or an empty one at the end of the line.
    Word at(const std::vector<Word>& words, std::size_t i) const {
        if (i < words.size())
            return words[i];
        const Word& last = words.back();
        return {{}, last.column + static_cast<int>(last.text.size())};
    }
    bool no_more(const std::vector<Word>& words, std::size_t i) {
        if (i >= words.size())
            return true;
        fail(words[i], "end of line");
        return false;
    }

    void name(const std::vector<Word>& words) {
        const Word w = at(words, 1);
        const bool good = !w.text.empty() && std::all_of(w.text.begin(), w.text.end(), [](char ch) {
            return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
        });
        if (!good)
            return fail(w, "a check name (lower-case letters, digits and -)");
        result_.check.name = std::string(w.text);
        no_more(words, 2);
    }
    void about(const std::vector<Word>& words) {
        const Word w = at(words, 1);
        if (w.text.size() < 2 || w.text.front() != '"' || w.text.back() != '"')
            return fail(w, "a \"quoted\" description");
        result_.check.about = std::string(w.text.substr(1, w.text.size() - 2));
        no_more(words, 2);
    }
    void protocol(const std::vector<Word>& words) {
        const Word w = at(words, 1);
        if (w.text == "bytes")
            result_.check.protocol = Protocol::bytes;
        else if (w.text == "frames")
            result_.check.protocol = Protocol::frames;
        else if (w.text != "any")
            return fail(w, "bytes, frames or any");
        no_more(words, 2);
    }
    void deadline(const std::vector<Word>& words) {
        const Word w = at(words, 1);
        const std::optional<Nanos> d = parse_duration(w.text);
        if (!d || d->count() == 0)
            return fail(w, "a duration above 0 (10s, 500ms)");
        result_.check.deadline = *d;
        no_more(words, 2);
    }
    void expect(const std::vector<Word>& words) {
        const Word w = at(words, 1);
        const auto it = std::find_if(oracle_names.begin(), oracle_names.end(),
                                     [&](const auto& entry) { return entry.first == w.text; });
        if (it == oracle_names.end())
            return fail(w, "an oracle (echo-intact, alive, idle-cpu, second-client-served, served-after, "
                           "fd-baseline, hostile-closed)");
        result_.check.oracles.push_back(it->second);
        no_more(words, 2);
    }
    void peer(const std::vector<Word>& words);
    bool peer_option(const std::vector<Word>& words, std::size_t& i);

    CheckParse result_;
    int line_ = 0;
    bool saw_check_ = false;
    bool saw_expect_ = false;
};

void Parser::peer(const std::vector<Word>& words) {
    PeerSpec& p = result_.check.peer;
    const Word kind = at(words, 1);
    if (kind.text == "echo")
        p.kind = PeerKind::echo;
    else if (kind.text == "reset")
        p.kind = PeerKind::reset;
    else if (kind.text == "hostile")
        p.kind = PeerKind::hostile;
    else
        return fail(kind, "a peer kind (echo, reset, hostile)");
    std::size_t i = 2;
    while (i < words.size())
        if (!peer_option(words, i))
            return;
}

// One option of `peer` at words[i], advancing i past it; false on an error.
bool Parser::peer_option(const std::vector<Word>& words, std::size_t& i) {
    PeerSpec& p = result_.check.peer;
    const Word key = words[i];
    if (key.text == "no-half-close" || key.text == "linger") {
        (key.text == "linger" ? p.linger : p.half_close) = key.text == "linger";
        ++i;
        return true;
    }
    const Word value = at(words, i + 1);
    i += 2;
    const auto size = [&](std::uint64_t& out, std::uint64_t minimum, std::uint64_t maximum) {
        const std::optional<std::uint64_t> n = parse_size(value.text);
        if (!n || *n < minimum || *n > maximum) {
            fail(value, "a size from " + format_size(minimum) + " to " + format_size(maximum));
            return false;
        }
        out = *n;
        return true;
    };
    const auto duration = [&](Nanos& out) {
        const std::optional<Nanos> d = parse_duration(value.text);
        if (!d || *d > std::chrono::seconds{60}) {
            fail(value, "a duration up to 60s");
            return false;
        }
        out = *d;
        return true;
    };
    if (key.text == "clients")
        return size(p.clients, 1, 1000);
    if (key.text == "bytes") {
        if (value.text == "auto") {
            p.bytes = 0;
            return true;
        }
        return size(p.bytes, 1, 64ULL << 20);
    }
    if (key.text == "body")
        return size(p.body_bytes, 0, 1ULL << 20);
    if (key.text == "write")
        return size(p.write_bytes, 1, 16ULL << 20);
    if (key.text == "receive-buffer")
        return size(p.receive_buffer_bytes, 1, 64ULL << 20);
    if (key.text == "pause")
        return duration(p.pause);
    if (key.text == "stall")
        return duration(p.stall);
    if (key.text == "idle")
        return duration(p.idle);
    fail(key, "a peer option (clients, bytes, body, write, pause, receive-buffer, stall, idle, no-half-close, "
              "linger)");
    return false;
}

}  // namespace

CheckParse parse_check(std::string_view text, std::string_view file_name) {
    Parser parser(file_name);
    // The fault lines in place and every other line blanked, so the scenario
    // parser's positions are the file's.
    std::string fault_text;
    std::vector<FaultLine> fault_lines;
    bool saw_peer = false;
    int line = 0;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string_view content = text.substr(start, end - start);
        ++line;
        const std::vector<Word> words = split_words(content);
        if (!words.empty() && words[0].text == "fault") {
            fault_text += content;
            fault_lines.push_back({std::string(content), {line, words[0].column}});
        } else if (!words.empty()) {
            saw_peer = saw_peer || words[0].text == "peer";
            parser.statement(line, words);
        }
        fault_text += '\n';
        start = end + 1;
    }
    FaultFileResult faults = parse_fault_file(fault_text, file_name);
    for (std::string& e : faults.errors)
        parser.errors().push_back(std::move(e));
    CheckParse result = parser.finish(saw_peer);
    result.check.faults = std::move(fault_lines);
    result.check.rules = std::move(faults.rules);
    return result;
}

std::string fault_file_text(const Check& check) {
    std::string text = "# " + check.file + "\n";
    for (const FaultLine& f : check.faults)
        text += f.text + "\n";
    return text;
}

}  // namespace eagain::harness::verify
