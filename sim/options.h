// The simulation's knobs: the network, the TCP model, hosts, and the
// network faults. Every field says its unit; docs/sim-model.md says what
// each one models and where the model differs from Linux.
#pragma once

#include "core/faulty_sys.h"
#include "core/sys.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::sim {

using namespace std::chrono_literals;

// A link between two hosts (or a host and itself), both directions alike.
struct LinkOptions {
    // One-way delay of every segment, nanoseconds.
    Nanos latency = 100us;
    // Each segment's delay gains a uniform extra in [0, jitter], drawn from
    // the world's RNG. Nonzero jitter reorders segments (as netem does), so
    // receivers exercise their out-of-order queue.
    Nanos jitter = 0ns;
    // Largest payload of one segment, bytes.
    std::uint32_t mss = 1460;
    friend bool operator==(const LinkOptions&, const LinkOptions&) = default;
};

struct TcpOptions {
    // Payload bytes a socket's send / receive buffer holds when the program
    // does not set SO_SNDBUF / SO_RCVBUF. getsockopt reports these numbers.
    int send_buffer_bytes = 64 * 1024;
    int receive_buffer_bytes = 128 * 1024;
    // setsockopt(SO_SNDBUF/SO_RCVBUF, v) as Linux: v is clamped to
    // [min, max_buffer_request] and doubled; the doubled value is both what
    // getsockopt reports and the payload the buffer holds.
    int max_buffer_request = 212992;  // net.core.wmem_max / rmem_max
    int min_send_buffer_bytes = 4608;
    int min_receive_buffer_bytes = 2304;
    // The accept queue holds at most min(backlog, somaxconn) + 1 connections
    // (Linux's off-by-one); a SYN arriving when it is full is dropped.
    int somaxconn = 4096;
    // SYN retransmissions: first after syn_timeout, doubling up to rto_max
    // (Linux's TCP_RTO_MAX caps this backoff too); after syn_retries of
    // them, the next timeout fails connect() with ETIMEDOUT (Linux: 1 s,
    // 6 -> 127 s).
    Nanos syn_timeout = 1s;
    int syn_retries = 6;
    // SYN-ACK retransmissions of a half-open connection, backed off as the
    // SYN's; the timeout after the last drops it (Linux: 5).
    int synack_retries = 5;
    // Data retransmission timeout: starts at rto_min, doubles per timeout up
    // to rto_max. retries counts retransmissions as tcp_retries2 does: after
    // `retries` of them with no ACK advancing, the next timeout (the
    // (retries + 1)-th in a row) fails the connection with ETIMEDOUT
    // (Linux: 200 ms, 120 s, tcp_retries2 = 15 -> 924.6 s). Zero window
    // probes are limited alike, counting only probes with no ACK since.
    Nanos rto_min = 200ms;
    Nanos rto_max = 120s;
    int retries = 15;
    // A closed socket waiting for the peer's FIN gives up after this
    // (tcp_fin_timeout).
    Nanos fin_timeout = 60s;
    friend bool operator==(const TcpOptions&, const TcpOptions&) = default;
};

// Edge-triggered epoll, as Linux does it (a wake-up for every arrival, even
// while older data is unread) or harsher: only when a condition turns from
// false to true (the buffer was empty, the socket was not writable).
enum class EdgeMode : std::uint8_t { linux_every_arrival, transition_only };

struct HostOptions {
    EdgeMode edge_mode = EdgeMode::linux_every_arrival;
    // RLIMIT_NOFILE: socket()/accept4()/epoll_create1() give EMFILE at this
    // many open descriptors (0, 1 and 2 count as open, as stdio).
    int fd_limit = 1 << 20;
    // First port handed out for an implicit bind (connect, listen without
    // bind, bind to port 0); they are handed out in order, skipping used ones.
    std::uint16_t first_ephemeral_port = 32768;
    friend bool operator==(const HostOptions&, const HostOptions&) = default;
};

struct WorldOptions {
    std::uint64_t seed = 1;
    LinkOptions link;  // every pair of hosts, until set_link() says otherwise
    TcpOptions tcp;
    bool trace = true;
    // Given to the Trace before its first line (the world's own, written by
    // the constructor), so a sink or the kept lines hold every line and
    // hash to Trace::hash(). Setting them on world.trace() later misses it.
    std::function<void(std::string_view line)> trace_sink;
    bool trace_keep_lines = false;
    // Told of every syscall fault a FaultySys given to add_reactor injects
    // (host name, virtual time, the fault), after the trace is.
    std::function<void(std::string_view host, Nanos at, const FaultEvent& event)> fault_observer;
    // Told of every segment a ReorderFault holds back: which fault (the
    // order it was added among reorder faults, from 0), the segment's number
    // in that fault's count (ReorderFault::held_segments), and when it was sent.
    std::function<void(std::size_t reorder_fault, std::uint64_t segment, Nanos at)> held_back_observer;
    // World::run gives up with RunStatus::livelock after this many rounds of
    // host steps without virtual time moving (a program spinning on a
    // level-triggered event it never consumes).
    std::uint64_t max_rounds_per_instant = 100000;
};

// --- network faults -----------------------------------------------------
// A fault names hosts by name; an empty name matches every host. A port of 0
// matches every connection; otherwise the connection's local or remote port
// must equal it. Times are virtual, from the start of the world.

// The connection is reset: the endpoint on `host` receives an RST (as from
// the peer or a middlebox) and, unless one_sided, an RST is also sent to
// the peer, which receives it one link latency later.
struct ResetFault {
    std::string host;
    std::uint16_t port = 0;
    // When: at this virtual time (if >= 0) ...
    Nanos at = -1ns;
    // ... or once the endpoint has received this many bytes of the stream
    // (if >= 0): the bytes up to the offset are delivered, the rest of that
    // segment is not, and the reset follows. Fires once per connection.
    std::int64_t at_received_offset = -1;
    bool one_sided = false;
    friend bool operator==(const ResetFault&, const ResetFault&) = default;
};

// The endpoints on `host` advertise a zero receive window from `start` for
// `duration`, whatever room their buffers have, and drop data that arrives
// beyond it; then they advertise their real window again.
struct ZeroWindowFault {
    std::string host;
    std::uint16_t port = 0;
    Nanos start = 0ns;
    Nanos duration = 1s;
    friend bool operator==(const ZeroWindowFault&, const ZeroWindowFault&) = default;
};

// Segments from `from` to `to` sent during [start, start + duration) are,
// with probability numerator/denominator each, held back by `hold_back`, so
// later segments overtake them. The fault numbers the segments it matches
// (direction and period) 1, 2, ... in the order sent; with held_segments
// non-empty it holds exactly the segments with those numbers and draws
// nothing (the exact form exploration writes: which segments a probability
// fault held is in WorldOptions::held_back_observer).
struct ReorderFault {
    std::string from;
    std::string to;
    Nanos start = 0ns;
    Nanos duration = Nanos::max();
    std::uint64_t numerator = 1;
    std::uint64_t denominator = 4;
    Nanos hold_back = 1ms;
    // Segment numbers, strictly increasing, from 1; empty: by probability.
    std::vector<std::uint64_t> held_segments{};
    friend bool operator==(const ReorderFault&, const ReorderFault&) = default;
};

// Segments from `from` to `to` sent during [start, start + duration) take
// `extra` longer (all of them, so their order is kept).
struct DelayFault {
    std::string from;
    std::string to;
    Nanos start = 0ns;
    Nanos duration = 1s;
    Nanos extra = 100ms;
    friend bool operator==(const DelayFault&, const DelayFault&) = default;
};

// Segments between `a` and `b`, either way, sent during
// [start, start + duration) are lost; TCP retransmits after the heal.
struct PartitionFault {
    std::string a;
    std::string b;
    Nanos start = 0ns;
    Nanos duration = 1s;
    friend bool operator==(const PartitionFault&, const PartitionFault&) = default;
};

}  // namespace eagain::sim
