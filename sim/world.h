// World: the simulation. One virtual clock (integer nanoseconds), one event
// queue ordered by (time, sequence number), seeded random streams (one per
// link's jitter, one per reorder fault, each seeded from the world's seed
// and its name with Rng::derive_seed, so adding a host or a fault moves no
// other stream), the hosts (each
// a SimKernel behind Sys, with its own fd table), the links between them,
// the network faults, and the trace.
//
// Nothing here is global: every simulated thing hangs off a World passed by
// reference, so two worlds in one process never touch each other.
//
// Running programs. A program is a sim::Program on one host (add_program;
// sim/program.h): a core Reactor on the host's SimKernel is one
// (add_reactor). run_until() repeats:
//   1. step every runnable program, in the order added, where runnable means
//      it is ready() (for a reactor: its host has an epoll event to report,
//      or its FaultySys owes it an edge) or its next_deadline() has come;
//   2. when none is runnable, jump the clock to the earliest of the next
//      event (a segment arriving, a TCP timer, a fault, an action) and the
//      programs' deadlines, and handle the events due then.
// So an hour with nothing happening costs a handful of steps.
//
// Without programs, a test drives a SimKernel directly like the real
// kernel: epoll_wait with a timeout (and a blocking socket call) lets the
// network run in virtual time until something is ready or the timeout
// passes. Inside run_until() a program's waits never advance time.
#pragma once

#include "core/faulty_sys.h"
#include "core/reactor.h"
#include "core/rng.h"
#include "core/sys.h"
#include "sim/options.h"
#include "sim/program.h"
#include "sim/tcp.h"
#include "sim/trace.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace eagain::sim {

class SimKernel;

enum class RunStatus : std::uint8_t {
    done,      // the caller's condition became true
    deadline,  // virtual time reached the deadline
    idle,      // nothing is left that could ever happen
    livelock,  // programs kept stepping without time moving (max_rounds_per_instant)
};
std::string_view to_string(RunStatus status) noexcept;

struct WorldStats {
    std::uint64_t segments_sent = 0;
    std::uint64_t segments_dropped = 0;
    std::uint64_t retransmissions = 0;
};

class World {
public:
    explicit World(WorldOptions options = {});
    ~World();
    World(const World&) = delete;
    World& operator=(const World&) = delete;

    // Host i (from 0, in the order added) has the addresses 10.0.0.<i+1> and
    // fd00::<i+1>, and answers on 127.0.0.1 and ::1 to itself. Names are unique.
    SimKernel& add_host(std::string name, HostOptions options = {});
    SimKernel* find_host(std::string_view name) noexcept;
    SimKernel& host(std::size_t index) noexcept { return *hosts_[index]; }
    std::size_t host_count() const noexcept { return hosts_.size(); }
    // Both directions between a and b (a == b: the host's loopback). A pair
    // never given has WorldOptions::link; hosts added later do not change it.
    void set_link(const SimKernel& a, const SimKernel& b, LinkOptions link);

    Nanos now() const noexcept { return now_; }
    Trace& trace() noexcept { return trace_; }
    const Trace& trace() const noexcept { return trace_; }
    const WorldOptions& options() const noexcept { return options_; }
    const WorldStats& stats() const noexcept { return stats_; }

    // --- faults and scripted actions --------------------------------------
    void add_fault(const ResetFault& fault);
    void add_fault(const ZeroWindowFault& fault);
    void add_fault(const ReorderFault& fault);
    void add_fault(const DelayFault& fault);
    void add_fault(const PartitionFault& fault);
    // Runs action at virtual time `time` (now if earlier), between steps.
    void at(Nanos time, std::function<void()> action);

    // --- programs ---------------------------------------------------------
    // The reactor must use host, or faults (a FaultySys over host), as its
    // Sys. With faults, the program is also runnable while faults owes it
    // an edge, and every fault it injects goes into the trace (this sets
    // its observer).
    void add_reactor(SimKernel& host, Reactor& reactor, FaultySys* faults = nullptr);
    // Any program on host; it must outlive the World's runs.
    void add_program(SimKernel& host, Program& program);

    // Runs until done() is true (checked before every round), virtual time
    // reaches deadline, nothing can happen any more, or a livelock.
    RunStatus run_until(Nanos deadline, const std::function<bool()>& done = {});
    RunStatus run_for(Nanos duration, const std::function<bool()>& done = {}) {
        return run_until(now_ + duration, done);
    }

private:
    friend class SimKernel;

    enum class EventKind : std::uint8_t { segment, endpoint_timer, action };
    struct Event {
        Nanos time{};
        std::uint64_t sequence = 0;
        EventKind kind = EventKind::action;
        std::uint32_t slot = 0;        // segment or action pool index
        std::uint64_t endpoint = 0;    // endpoint_timer
        std::uint64_t generation = 0;  // endpoint_timer
    };
    struct EventLater {
        bool operator()(const Event& a, const Event& b) const noexcept {
            return a.time != b.time ? a.time > b.time : a.sequence > b.sequence;
        }
    };
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view name) const noexcept { return std::hash<std::string_view>{}(name); }
    };
    struct HostedProgram {
        SimKernel* host = nullptr;
        Program* program = nullptr;
    };
    struct LinkFault {
        enum class Kind : std::uint8_t { reorder, delay, partition } kind = Kind::delay;
        std::int64_t from = -1;  // host index, -1: any
        std::int64_t to = -1;
        bool both_ways = false;
        Nanos start{};
        Nanos end{};
        std::uint64_t numerator = 0;
        std::uint64_t denominator = 1;
        Nanos extra{};
        // reorder only: its index among reorder faults, the segments it
        // matched so far, and the exact form's list and position in it.
        std::size_t reorder_index = 0;
        std::uint64_t matched_segments = 0;
        std::vector<std::uint64_t> held_segments{};
        std::size_t next_held = 0;
        // reorder by chance: its own stream, "reorder:FROM->TO#k" (k: the
        // earlier reorder faults with the same FROM and TO; * for any host).
        Rng rng{0};
    };

    // --- events -----------------------------------------------------------
    // Queues event with the next sequence number; queue() with its own.
    void push_event(Event event);
    void queue(const Event& event);
    // Handles the earliest event; false if there is none.
    bool handle_next_event();
    std::optional<Nanos> next_event_time() const noexcept;
    // The network alone, for a SimKernel's blocking wait: handles events
    // until ready() or virtual time passes deadline (nullopt: no deadline).
    // True if ready() became true.
    bool advance_until(std::optional<Nanos> deadline, const std::function<bool()>& ready);
    bool running() const noexcept { return running_; }

    // The link between hosts a and b (either order; a == b: loopback).
    const LinkOptions& link_between(std::uint32_t a, std::uint32_t b) const noexcept;

    // --- endpoints ----------------------------------------------------------
    Endpoint& new_endpoint(std::uint32_t host, int family);
    Endpoint* endpoint(std::uint64_t id) noexcept;
    void destroy_endpoint(Endpoint& endpoint);

    // --- TCP ------------------------------------------------------------------
    std::uint32_t host_index_for(const SimKernel& from, const SockAddr& address, bool* loopback) const;
    void start_connect(Endpoint& client, const SockAddr& address);
    void transmit(Endpoint& from, std::uint8_t flags, std::uint64_t seq, std::span<const std::uint8_t> payload);
    // A free segment slot in the pool (grown if none is free).
    std::uint32_t new_segment_slot();
    // The MSS of the link from e's host towards its peer.
    std::uint32_t mss_toward(const Endpoint& e) const noexcept;
    // Puts the segment in pool slot `slot` on the wire (or drops it, by a fault).
    void send_segment(std::uint32_t slot);
    void send_reset_to(const Segment& offending);
    void deliver(std::uint32_t slot);
    void handle_syn(const Segment& segment);
    void handle_segment(Endpoint& endpoint, const Segment& segment);
    void handle_ack(Endpoint& endpoint, const Segment& segment);
    void handle_data(Endpoint& endpoint, const Segment& segment);
    // In-order bytes into the receive buffer (a ResetFault at an offset may
    // cut them short and reset the connection: false then).
    bool deliver(Endpoint& endpoint, std::span<const std::uint8_t> bytes, std::size_t& delivered);
    void handle_timer(Endpoint& endpoint);
    void on_established(Endpoint& endpoint);
    void output(Endpoint& endpoint);
    void send_ack(Endpoint& endpoint, std::uint8_t extra_flags = 0);
    void maybe_window_update(Endpoint& endpoint);
    std::uint32_t advertised_window(const Endpoint& endpoint) const noexcept;
    void arm_timer(Endpoint& endpoint, Nanos delay);
    // Queues the endpoint's timer event at (time, sequence).
    void queue_timer(Endpoint& endpoint, Nanos time, std::uint64_t sequence);
    void cancel_timer(Endpoint& endpoint) noexcept;
    // The peer's RST arrived (or a reset fault struck): the error by state,
    // as Linux's tcp_reset, then everything is torn down.
    void receive_reset(Endpoint& endpoint, std::string_view reason);
    // Sends an RST to the peer and tears this endpoint down (abortive close).
    void abort(Endpoint& endpoint, std::string_view reason);
    void fail(Endpoint& endpoint, int error, std::string_view reason);
    void maybe_finish_orphan(Endpoint& endpoint);
    void close_endpoint(Endpoint& endpoint);  // the last fd was closed
    void shutdown_send(Endpoint& endpoint);
    void after_read(Endpoint& endpoint);  // the program consumed receive-buffer bytes
    void notify(Endpoint& endpoint, std::uint32_t key, bool transition);
    // Every established, not reset endpoint that connection_matches.
    void for_each_connection(std::int64_t host, std::uint16_t port, const std::function<void(Endpoint&)>& act);
    // host: an index, or -1 for any; port 0: any.
    bool connection_matches(const Endpoint& endpoint, std::int64_t host, std::uint16_t port) const noexcept;
    std::int64_t host_selector(const std::string& name) const;

    std::string endpoint_name(const Endpoint& endpoint) const;
    void trace_note(const Endpoint& endpoint, std::string_view what, std::string_view reason);

    WorldOptions options_;
    Nanos now_{0};
    std::uint64_t next_sequence_ = 0;
    std::vector<Event> events_;         // a binary heap under EventLater
    std::deque<Segment> segment_pool_;  // a deque: references stay valid while segments are added
    std::vector<std::uint32_t> free_segments_;
    std::vector<std::function<void()>> action_pool_;
    std::vector<std::uint32_t> free_actions_;
    // Jitter of the link from one host to another: its own stream,
    // "link:A->B", made when the link first draws.
    Rng& link_rng(std::uint32_t from, std::uint32_t to);
    std::map<std::pair<std::uint32_t, std::uint32_t>, Rng> link_rngs_;
    Trace trace_;
    WorldStats stats_;

    std::vector<std::unique_ptr<SimKernel>> hosts_;
    // The links set_link() gave, by (lower, higher) host index; a pair not
    // here has options_.link. Nothing per host: add_host is O(1) amortised.
    std::map<std::pair<std::uint32_t, std::uint32_t>, LinkOptions> links_;
    // Looked up only, never iterated (so its order cannot reach the trace).
    std::unordered_map<std::string, std::uint32_t, NameHash, std::equal_to<>> host_by_name_;
    std::vector<LinkFault> link_faults_;
    std::size_t reorder_faults_ = 0;
    // With the fault's host resolved to an index (-1: any) once, at
    // add_fault, not on every segment.
    std::vector<std::pair<ResetFault, std::int64_t>> offset_resets_;
    std::vector<std::pair<ZeroWindowFault, std::int64_t>> zero_windows_;

    std::vector<std::unique_ptr<Endpoint>> endpoints_;  // by slot
    std::vector<std::uint32_t> endpoint_generations_;
    std::vector<std::uint32_t> free_endpoint_slots_;

    std::vector<HostedProgram> programs_;
    std::vector<std::unique_ptr<Program>> reactor_programs_;  // add_reactor's
    bool running_ = false;
};

}  // namespace eagain::sim
