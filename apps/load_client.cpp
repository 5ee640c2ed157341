#include "apps/load_client.h"

#include "core/assert.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

namespace eagain {

void size_for_load(ConnectionConfig& config, std::size_t body_bytes, std::size_t in_flight_per_connection) {
    const std::size_t frame_bytes = body_bytes + DefaultHeader::size_bytes;
    config.max_frame_bytes = std::max<std::uint64_t>(config.max_frame_bytes, frame_bytes);
    // Saturating: options read from a file may ask for absurd windows.
    constexpr std::size_t window_max = (std::numeric_limits<std::size_t>::max() - 64) / 2;
    const std::size_t window_bytes = in_flight_per_connection > window_max / std::max<std::size_t>(frame_bytes, 1)
                                         ? window_max
                                         : in_flight_per_connection * frame_bytes;
    config.output_limit_bytes = std::max(config.output_limit_bytes, 2 * window_bytes + 64);
    config.output_high_water_bytes = std::max(config.output_high_water_bytes, window_bytes);
    config.output_low_water_bytes = std::min(config.output_low_water_bytes, config.output_high_water_bytes);
}

Nanos LoadReport::latency_percentile(unsigned p) const {
    EAGAIN_ASSERT(p <= 100);
    if (latencies.empty())
        return Nanos{0};
    std::vector<Nanos> sorted = latencies;
    // Nearest rank: the smallest value with at least p% of samples at or below it.
    const std::size_t rank = std::max<std::size_t>(1, (sorted.size() * p + 99) / 100);
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(rank - 1), sorted.end());
    return sorted[rank - 1];
}

LoadClient::LoadClient(Reactor& reactor, const LoadOptions& options) : reactor_(reactor), options_(options) {
    EAGAIN_ASSERT(options_.connections > 0);
    EAGAIN_ASSERT(options_.in_flight_per_connection > 0);
    body_.resize(options_.body_bytes);
    report_.latencies.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(options_.frames, 1U << 24)));
    for (std::size_t i = 0; i < options_.connections; ++i) {
        auto peer = std::make_unique<Peer>();
        peer->client = this;
        peer->index = i;
        peer->quota = options_.frames / options_.connections + (i < options_.frames % options_.connections ? 1 : 0);
        peer->sent_at.resize(options_.in_flight_per_connection);
        peer->driver = std::make_unique<ConnectionDriver>(reactor_, *peer, ConnectionRole::client, options_.connection,
                                                          options_.transport, options_.seed + i);
        peers_.push_back(std::move(peer));
    }
}

LoadClient::~LoadClient() = default;

void LoadClient::fill_body(std::size_t connection, std::uint32_t seq, std::span<std::uint8_t> body) noexcept {
    // Differs between neighbouring frames and connections at every offset,
    // so a shifted, swapped or truncated body cannot compare equal.
    const std::uint32_t base = static_cast<std::uint32_t>(connection) * 131U + seq * 7U;
    // Through locals: a byte store may alias the span's own size, which
    // would otherwise be reloaded on every byte and block vectorisation.
    std::uint8_t* const out = body.data();
    const std::size_t size = body.size();
    for (std::size_t i = 0; i < size; ++i)
        out[i] = static_cast<std::uint8_t>(base + i * 13U + (i >> 8));
}

void LoadClient::start() {
    report_.started = reactor_.sys().now();
    for (auto& peer : peers_) {
        if (peer->quota == 0) {
            peer->ended = true;
            ++ended_;
            continue;
        }
        peer->driver->start_connect(options_.server);
    }
}

ConnectionTally LoadClient::tally() const {
    ConnectionTally all = tally_;
    for (const auto& peer : peers_)
        all.add(peer->driver->connection().stats());
    return all;
}

void LoadClient::close() {
    for (auto& peer : peers_) {
        if (peer->ended)
            continue;
        peer->closing = true;
        peer->driver->close();
    }
}

void LoadClient::pause_reading() {
    for (auto& peer : peers_)
        peer->driver->pause_reading();
}

void LoadClient::resume_reading() {
    for (auto& peer : peers_)
        peer->driver->resume_reading();
}

std::size_t LoadClient::send_unframed(std::span<const std::uint8_t> bytes) {
    std::size_t sent = 0;
    for (auto& peer : peers_) {
        if (!peer->ended && peer->driver->send_unframed(bytes) == SendError::none)
            ++sent;
    }
    return sent;
}

void LoadClient::send_more(Peer& peer) {
    if (peer.closing)
        return;
    while (peer.next_seq_to_send < peer.quota &&
           peer.next_seq_to_send - peer.next_seq_expected < options_.in_flight_per_connection) {
        const std::uint32_t seq = peer.next_seq_to_send;
        DefaultHeader header;
        header.cmd = frame_cmd;
        header.seq = seq;
        header.reserved1 = static_cast<std::uint32_t>(peer.index);
        fill_body(peer.index, seq, body_);
        peer.sent_at[seq % options_.in_flight_per_connection] = reactor_.sys().now();
        const SendError error = peer.driver->send_frame(header, body_);
        if (error != SendError::none) {
            problem("connection " + std::to_string(peer.index) + ": send_frame: " + std::string(to_string(error)));
            ++report_.errors;
            peer.driver->close();
            return;
        }
        ++peer.next_seq_to_send;
        ++report_.frames_sent;
    }
}

void LoadClient::verify(Peer& peer, const Frame& frame) {
    const Nanos now = reactor_.sys().now();
    const DefaultHeader header = DefaultHeader::parse(frame.header.first<DefaultHeader::size_bytes>());
    const std::uint32_t seq = peer.next_seq_expected;
    std::string wrong;
    if (header.cmd != frame_cmd || header.reserved1 != peer.index) {
        wrong = "header cmd " + std::to_string(header.cmd) + " / connection " + std::to_string(header.reserved1);
    } else if (header.seq != seq) {
        wrong = "seq " + std::to_string(header.seq) + ", expected " + std::to_string(seq);
    } else if (seq >= peer.next_seq_to_send) {
        wrong = "seq " + std::to_string(seq) + " that was never sent";
    } else if (frame.body.size() != options_.body_bytes) {
        wrong =
            "body of " + std::to_string(frame.body.size()) + " bytes, expected " + std::to_string(options_.body_bytes);
    } else {
        fill_body(peer.index, seq, body_);
        const bool equal = body_.empty() || std::memcmp(body_.data(), frame.body.data(), body_.size()) == 0;
        if (!equal) {
            const auto mine = std::mismatch(body_.begin(), body_.end(), frame.body.begin()).first;
            wrong = "body byte " + std::to_string(mine - body_.begin()) + " of seq " + std::to_string(seq);
        }
    }
    if (!wrong.empty()) {
        ++report_.mismatches;
        problem("connection " + std::to_string(peer.index) + ": mismatch: " + wrong);
        peer.driver->close();
        return;
    }
    report_.latencies.push_back(now - peer.sent_at[seq % options_.in_flight_per_connection]);
    ++report_.frames_verified;
    report_.bytes_verified += frame.header.size() + frame.body.size();
    report_.finished = now;
    ++peer.next_seq_expected;
    if (peer.next_seq_expected == peer.quota) {
        peer.driver->close();
        return;
    }
    send_more(peer);
}

void LoadClient::end(Peer& peer, const CloseInfo& info) {
    if (peer.ended)
        return;
    peer.ended = true;
    ++ended_;
    report_.endings.push_back(info);
    tally_.note_ending(info);
    if (peer.next_seq_expected != peer.quota) {
        ++report_.errors;
        problem("connection " + std::to_string(peer.index) + ": ended after " + std::to_string(peer.next_seq_expected) +
                " of " + std::to_string(peer.quota) + " frames: " + describe(info));
    }
}

void LoadClient::problem(std::string what) {
    if (report_.problems.size() < options_.mismatches_kept)
        report_.problems.push_back(std::move(what));
}

}  // namespace eagain
