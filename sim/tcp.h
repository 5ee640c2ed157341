// The simulated kernel's internal objects: TCP endpoints, segments and epoll
// interest lists. Not part of the public API (sim/world.h, sim/sim_kernel.h);
// docs/sim-model.md describes the model they implement.
#pragma once

#include "core/byte_buffer.h"
#include "core/sys.h"

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <vector>

namespace eagain::sim {

class SimKernel;
struct EpollInstance;

// Address classes (127.0.0.0/8 and ::1; 0.0.0.0 and ::).
bool is_loopback(const SockAddr& address) noexcept;
bool is_wildcard(const SockAddr& address) noexcept;

// Segment flags, as on the wire.
inline constexpr std::uint8_t seg_syn = 1;
inline constexpr std::uint8_t seg_ack = 2;
inline constexpr std::uint8_t seg_fin = 4;
inline constexpr std::uint8_t seg_rst = 8;
// A zero-window probe: a pure ACK the receiver must answer with its window.
inline constexpr std::uint8_t seg_probe = 16;

struct Segment {
    std::uint64_t to_endpoint = 0;    // 0: a SYN, routed by (to_host, family, dst_port)
    std::uint64_t from_endpoint = 0;  // the sender's endpoint, for replies
    std::uint32_t from_host = 0;
    std::uint32_t to_host = 0;
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    int family = AF_INET;
    bool dst_loopback = false;
    std::uint8_t flags = 0;
    std::uint64_t seq = 0;  // relative: the SYN is 0, data starts at 1
    std::uint64_t ack = 0;
    std::uint32_t window = 0;
    std::vector<std::uint8_t> payload;
};

// TCP's states, folded: the closing states are flags on `established`.
enum class TcpState : std::uint8_t { closed, listen, syn_sent, syn_received, established };

// The socket layer's view of connect(), which Linux keeps apart from the TCP
// state: it decides EALREADY, the one-time 0, then EISCONN.
enum class ConnectPhase : std::uint8_t { unconnected, connecting, connected };

struct EpollItem {
    EpollInstance* owner = nullptr;
    int fd = -1;
    std::uint64_t endpoint = 0;
    std::uint32_t events = 0;  // the interest, with EPOLLET / EPOLLONESHOT
    std::uint64_t data = 0;
    bool on_ready_list = false;
    bool disabled = false;  // EPOLLONESHOT fired; EPOLL_CTL_MOD re-arms
};

struct EpollInstance {
    SimKernel* kernel = nullptr;
    std::map<int, std::unique_ptr<EpollItem>> items;  // by fd
    std::deque<EpollItem*> ready;                     // Linux's ready list, in wake-up order
};

struct Endpoint {
    std::uint64_t id = 0;
    std::uint32_t host = 0;
    int family = AF_INET;
    SockAddr local;
    SockAddr remote;
    bool bound = false;
    // The program closed its descriptor; the endpoint lives on until its FIN
    // is acknowledged and the peer's FIN has come (no TIME_WAIT), or it is
    // reset. A child not yet accepted has no descriptor but is no orphan.
    bool orphan = false;
    TcpState state = TcpState::closed;
    ConnectPhase connect_phase = ConnectPhase::unconnected;
    std::uint64_t peer = 0;  // the peer endpoint, once known
    std::uint32_t peer_host = 0;
    bool peer_loopback = false;
    int error = 0;  // pending socket error (SO_ERROR)

    // Shutdown as Linux's sk_shutdown: receiving side (FIN received, reset,
    // SHUT_RD) and sending side (SHUT_WR, close, reset).
    bool rcv_shutdown = false;
    bool snd_shutdown = false;
    bool fin_received = false;  // Linux's SOCK_DONE: recv returns 0 from now on
    bool reset = false;

    // Sending side. snd holds the bytes from snd_una on (sent but not
    // acknowledged, then not yet sent). snd_nxt is where sending goes on;
    // a retransmission timeout rewinds it to snd_una (go-back-N), while
    // snd_max keeps the highest sequence number ever sent (BSD's snd_max;
    // Linux's snd_nxt): an ACK up to snd_max is acceptable, and every
    // segment without data carries snd_max as its sequence number.
    std::size_t snd_capacity = 0;
    ByteBuffer snd;
    std::uint64_t snd_una = 1;
    std::uint64_t snd_nxt = 1;
    std::uint64_t snd_max = 1;
    std::uint64_t snd_window_edge = 1;  // highest sequence number the peer's window allows, exclusive
    std::uint64_t window_wl1 = 0;       // seq of the segment that last updated the window (snd_wl1)
    bool fin_queued = false;
    bool fin_sent = false;  // the FIN has been sent (at fin_seq) at least once
    bool fin_acked = false;
    std::uint64_t fin_seq = 0;
    bool nospace = false;  // a send found no room: wake EPOLLOUT when room returns

    // Receiving side.
    std::size_t rcv_capacity = 0;
    ByteBuffer rcv;
    std::uint64_t rcv_nxt = 1;
    std::map<std::uint64_t, std::vector<std::uint8_t>> out_of_order;  // by seq
    std::size_t out_of_order_bytes = 0;
    bool peer_fin_known = false;
    std::uint64_t peer_fin_seq = 0;
    std::uint32_t last_advertised_window = 0;
    // The right edge of the highest window advertised (rcv_nxt + window):
    // never moved left again (Linux's tcp_select_window), so what was once
    // inside the window is not dropped later. Only a ZeroWindowFault
    // advertises less.
    std::uint64_t rcv_window_edge = 0;
    std::uint64_t received_bytes = 0;  // stream bytes delivered in order

    // Timers: one retransmission/persist/handshake timer per endpoint. The
    // armed timer has a place in the event order, (timer_time,
    // timer_sequence); at most one event of this endpoint is queued
    // (timer_queued, with the current generation), at that place or before
    // it, and moves itself on when it comes early (World::arm_timer).
    std::uint64_t timer_generation = 0;
    bool timer_armed = false;
    Nanos timer_deadline{};  // when the armed timer is due (its place may be earlier: it re-queues)
    Nanos timer_time{};
    std::uint64_t timer_sequence = 0;
    bool timer_queued = false;
    Nanos timer_queued_time{};
    int retransmissions = 0;  // timeouts in a row with data in flight (icsk_retransmits)
    int probes = 0;           // zero window probes with no ACK since (icsk_probes_out)
    Nanos rto{};

    // Listener.
    int backlog = 0;
    std::deque<std::uint64_t> accept_queue;            // established children, oldest first
    std::map<std::uint64_t, std::uint64_t> half_open;  // client endpoint -> child in syn_received
    std::uint64_t listener = 0;                        // a child's listener

    // Options.
    bool linger_on = false;
    int linger_seconds = 0;
    bool nodelay = false;
    bool reuseaddr = false;
    bool keepalive = false;

    // Faults.
    Nanos zero_window_until{-1};
    bool offset_reset_done = false;  // a ResetFault at a stream offset fires once per connection

    std::vector<EpollItem*> watchers;
};

}  // namespace eagain::sim
