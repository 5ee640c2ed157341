#include "sim/world.h"

#include "core/assert.h"
#include "sim/sim_kernel.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <iterator>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace eagain::sim {

namespace {

constexpr std::uint32_t no_host = 0xFFFFFFFFU;
// sk_state_change and sk_error_report wake every waiter, whatever it asked for.
constexpr std::uint32_t wake_all = 0xFFFFFFFFU;

Nanos saturating_add(Nanos a, Nanos b) noexcept {
    return b > Nanos::max() - a ? Nanos::max() : a + b;
}

// A retransmission timeout doubled, at most cap (Linux's TCP_RTO_MAX) and
// never less than it was; the doubling saturates instead of overflowing.
Nanos doubled(Nanos rto, Nanos cap) noexcept {
    return std::max(rto, std::min(cap, saturating_add(rto, rto)));
}

// The timeout after `doublings` timeouts in a row, from base: at most
// log2(cap / base) + 1 steps, however large doublings is.
Nanos backed_off(Nanos base, int doublings, Nanos cap) noexcept {
    Nanos rto = base;
    for (int i = 0; i < doublings; ++i) {
        const Nanos next = doubled(rto, cap);
        if (next == rto)
            break;
        rto = next;
    }
    return rto;
}

std::string flags_name(std::uint8_t flags) {
    std::string out;
    if ((flags & seg_syn) != 0)
        out += 'S';
    if ((flags & seg_fin) != 0)
        out += 'F';
    if ((flags & seg_rst) != 0)
        out += 'R';
    if ((flags & seg_ack) != 0)
        out += 'A';
    if ((flags & seg_probe) != 0)
        out += 'W';  // window probe
    return out;
}

// Keeps the bytes of [seq, seq + size) that the out-of-order queue does not
// hold yet, each byte once: a retransmission cut differently from the
// original (after short sends, or a rewind) overlaps what is queued
// without matching its start.
void store_out_of_order(Endpoint& e, std::uint64_t seq, std::span<const std::uint8_t> data) {
    const std::uint64_t end = seq + data.size();
    std::uint64_t at = seq;
    if (auto after = e.out_of_order.upper_bound(at); after != e.out_of_order.begin()) {
        const auto before = std::prev(after);
        at = std::max(at, before->first + before->second.size());  // covered by the one starting before
    }
    while (at < end) {
        const auto next = e.out_of_order.lower_bound(at);
        const std::uint64_t gap_end = next == e.out_of_order.end() ? end : std::min(end, next->first);
        if (gap_end > at) {
            const auto bytes = data.subspan(static_cast<std::size_t>(at - seq), static_cast<std::size_t>(gap_end - at));
            e.out_of_order.emplace_hint(next, at, std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
            e.out_of_order_bytes += bytes.size();
        }
        if (next == e.out_of_order.end() || next->first >= end)
            break;
        at = next->first + next->second.size();
    }
}

}  // namespace

std::string_view to_string(RunStatus status) noexcept {
    switch (status) {
        case RunStatus::done: return "done";
        case RunStatus::deadline: return "deadline";
        case RunStatus::idle: return "idle";
        case RunStatus::livelock: return "livelock";
    }
    return "?";
}

World::World(WorldOptions options) : options_(std::move(options)) {
    trace_.set_enabled(options_.trace);
    trace_.set_keep_lines(options_.trace_keep_lines);
    if (options_.trace_sink)
        trace_.set_sink(options_.trace_sink);
    if (trace_.enabled())
        trace_.line(now_, "world").field("seed", options_.seed);
}

World::~World() = default;

// ===========================================================================
// Hosts and links

SimKernel& World::add_host(std::string name, HostOptions options) {
    EAGAIN_ASSERT(find_host(name) == nullptr);
    const auto index = static_cast<std::uint32_t>(hosts_.size());
    if (trace_.enabled())
        trace_.line(now_, "host").field("host", name).field("index", index);
    hosts_.push_back(std::make_unique<SimKernel>(*this, index, std::move(name), options));
    host_by_name_.emplace(hosts_.back()->name(), index);
    return *hosts_.back();
}

SimKernel* World::find_host(std::string_view name) noexcept {
    const auto found = host_by_name_.find(name);
    return found == host_by_name_.end() ? nullptr : hosts_[found->second].get();
}

void World::set_link(const SimKernel& a, const SimKernel& b, LinkOptions link) {
    EAGAIN_ASSERT(&a.world() == this);
    EAGAIN_ASSERT(&b.world() == this);
    const std::pair<std::uint32_t, std::uint32_t> key = std::minmax(a.index(), b.index());
    if (link == options_.link)
        links_.erase(key);  // the default again: implicit, as if never given
    else
        links_.insert_or_assign(key, link);
}

const LinkOptions& World::link_between(std::uint32_t a, std::uint32_t b) const noexcept {
    const auto found = links_.find(std::pair<std::uint32_t, std::uint32_t>(std::minmax(a, b)));
    return found == links_.end() ? options_.link : found->second;
}

std::uint32_t World::host_index_for(const SimKernel& from, const SockAddr& address, bool* loopback) const {
    *loopback = is_loopback(address);
    if (*loopback)
        return from.index();
    for (const auto& host : hosts_) {
        if (host->owns_address(address))
            return host->index();
    }
    return no_host;
}

std::int64_t World::host_selector(const std::string& name) const {
    if (name.empty())
        return -1;
    const auto found = host_by_name_.find(name);
    EAGAIN_ASSERT(found != host_by_name_.end() && "a fault names a host that does not exist");
    return found == host_by_name_.end() ? -2 : found->second;
}

// ===========================================================================
// Events

void World::push_event(Event event) {
    event.sequence = next_sequence_++;
    queue(event);
}

void World::queue(const Event& event) {
    events_.push_back(event);
    std::push_heap(events_.begin(), events_.end(), EventLater{});
}

std::optional<Nanos> World::next_event_time() const noexcept {
    if (events_.empty())
        return std::nullopt;
    return events_.front().time;
}

bool World::handle_next_event() {
    if (events_.empty())
        return false;
    std::pop_heap(events_.begin(), events_.end(), EventLater{});
    const Event event = events_.back();
    events_.pop_back();
    now_ = std::max(now_, event.time);
    switch (event.kind) {
        case EventKind::segment: deliver(event.slot); break;
        case EventKind::endpoint_timer: {
            Endpoint* target = endpoint(event.endpoint);
            if (target == nullptr || target->timer_generation != event.generation)
                break;  // given up for an earlier one (arm_timer)
            target->timer_queued = false;
            if (!target->timer_armed)
                break;  // cancelled
            if (event.time != target->timer_time || event.sequence != target->timer_sequence) {
                // Re-armed since this event was queued: on to the timer's place.
                queue_timer(*target, target->timer_time, target->timer_sequence);
                break;
            }
            if (target->timer_deadline > now_) {  // pushed back since: wait on
                queue_timer(*target, target->timer_deadline, next_sequence_++);
                break;
            }
            target->timer_armed = false;
            handle_timer(*target);
            break;
        }
        case EventKind::action: {
            std::function<void()> action = std::move(action_pool_[event.slot]);
            action_pool_[event.slot] = nullptr;
            free_actions_.push_back(event.slot);
            action();
            break;
        }
    }
    return true;
}

bool World::advance_until(std::optional<Nanos> deadline, const std::function<bool()>& ready) {
    for (;;) {
        if (ready())
            return true;
        const std::optional<Nanos> next = next_event_time();
        if (!next || (deadline && *next > *deadline)) {
            if (deadline)
                now_ = std::max(now_, *deadline);
            return ready();
        }
        handle_next_event();
    }
}

void World::at(Nanos time, std::function<void()> action) {
    std::uint32_t slot = 0;
    if (!free_actions_.empty()) {
        slot = free_actions_.back();
        free_actions_.pop_back();
        action_pool_[slot] = std::move(action);
    } else {
        slot = static_cast<std::uint32_t>(action_pool_.size());
        action_pool_.push_back(std::move(action));
    }
    push_event(Event{std::max(time, now_), 0, EventKind::action, slot, 0, 0});
}

// ===========================================================================
// Programs

namespace {

// A core Reactor as a program: ready when its host has an epoll event to
// report or its FaultySys owes it an edge; a step is one poll(0).
class ReactorProgram final : public Program {
public:
    ReactorProgram(SimKernel& host, Reactor& reactor, const FaultySys* faults)
        : host_(host), reactor_(reactor), faults_(faults) {}
    bool ready() override { return host_.has_ready_events() || (faults_ != nullptr && faults_->owes_edges()); }
    std::optional<Nanos> next_deadline() override { return reactor_.next_deadline(); }
    void step() override { (void)reactor_.poll(Nanos{0}); }

private:
    SimKernel& host_;
    Reactor& reactor_;
    const FaultySys* faults_;
};

}  // namespace

void World::add_program(SimKernel& host, Program& program) {
    EAGAIN_ASSERT(&host.world() == this);
    programs_.push_back(HostedProgram{&host, &program});
}

void World::add_reactor(SimKernel& host, Reactor& reactor, FaultySys* faults) {
    reactor_programs_.push_back(std::make_unique<ReactorProgram>(host, reactor, faults));
    add_program(host, *reactor_programs_.back());
    if (faults == nullptr)
        return;
    faults->set_observer([this, &host](const FaultEvent& event) {
        if (trace_.enabled())
            trace_.line(now_, "fault")
                .field("host", host.name())
                .field("call", to_string(event.call))
                .field("fd", event.fd)
                .field("rule", static_cast<std::uint64_t>(event.rule_index))
                .field("call_number", event.call_number)
                .field("what", describe(event));
        if (options_.fault_observer)
            options_.fault_observer(host.name(), now_, event);
    });
}

RunStatus World::run_until(Nanos deadline, const std::function<bool()>& done) {
    EAGAIN_ASSERT(!running_);
    running_ = true;
    struct Guard {
        bool& flag;
        ~Guard() { flag = false; }
    } guard{running_};

    Nanos instant = now_;
    std::uint64_t rounds_at_instant = 0;
    for (;;) {
        if (done && done())
            return RunStatus::done;
        bool stepped = false;
        for (std::size_t i = 0; i < programs_.size(); ++i) {
            const HostedProgram hosted = programs_[i];
            const bool ready = hosted.program->ready();
            const std::optional<Nanos> due = hosted.program->next_deadline();
            if (!ready && !(due && *due <= now_))
                continue;
            if (!ready && trace_.enabled())
                trace_.line(now_, "timer").field("host", hosted.host->name());
            hosted.program->step();
            stepped = true;
        }
        if (stepped) {
            if (now_ != instant) {
                instant = now_;
                rounds_at_instant = 0;
            } else if (++rounds_at_instant > options_.max_rounds_per_instant) {
                if (trace_.enabled())
                    trace_.line(now_, "livelock").field("rounds", rounds_at_instant);
                return RunStatus::livelock;
            }
            continue;
        }
        std::optional<Nanos> next = next_event_time();
        for (const HostedProgram& hosted : programs_) {
            const std::optional<Nanos> due = hosted.program->next_deadline();
            if (due && (!next || *due < *next))
                next = due;
        }
        if (!next)
            return RunStatus::idle;
        if (*next > deadline) {
            now_ = std::max(now_, deadline);
            return RunStatus::deadline;
        }
        now_ = std::max(now_, *next);
        while (!events_.empty() && events_.front().time <= now_)
            handle_next_event();
    }
}

// ===========================================================================
// Endpoints

Endpoint& World::new_endpoint(std::uint32_t host, int family) {
    std::uint32_t slot = 0;
    if (!free_endpoint_slots_.empty()) {
        slot = free_endpoint_slots_.back();
        free_endpoint_slots_.pop_back();
    } else {
        slot = static_cast<std::uint32_t>(endpoints_.size());
        endpoints_.emplace_back();
        endpoint_generations_.push_back(0);
    }
    const std::uint32_t generation = ++endpoint_generations_[slot];
    endpoints_[slot] = std::make_unique<Endpoint>();
    Endpoint& e = *endpoints_[slot];
    e.id = (static_cast<std::uint64_t>(generation) << 32) | (slot + 1U);
    e.host = host;
    e.family = family;
    e.snd_capacity = static_cast<std::size_t>(options_.tcp.send_buffer_bytes);
    e.rcv_capacity = static_cast<std::size_t>(options_.tcp.receive_buffer_bytes);
    e.rto = options_.tcp.rto_min;
    return e;
}

Endpoint* World::endpoint(std::uint64_t id) noexcept {
    const std::uint64_t slot_plus_one = id & 0xFFFFFFFFU;
    if (slot_plus_one == 0 || slot_plus_one > endpoints_.size())
        return nullptr;
    Endpoint* e = endpoints_[slot_plus_one - 1].get();
    return e != nullptr && e->id == id ? e : nullptr;
}

void World::destroy_endpoint(Endpoint& e) {
    EAGAIN_ASSERT(e.watchers.empty());
    if (e.listener != 0) {
        if (Endpoint* listener = endpoint(e.listener)) {
            std::erase_if(listener->half_open, [&](const auto& entry) { return entry.second == e.id; });
            std::erase(listener->accept_queue, e.id);
        }
    }
    hosts_[e.host]->release_port(e);
    const std::uint64_t slot = (e.id & 0xFFFFFFFFU) - 1;
    free_endpoint_slots_.push_back(static_cast<std::uint32_t>(slot));
    endpoints_[slot].reset();
}

std::string World::endpoint_name(const Endpoint& e) const {
    return hosts_[e.host]->name() + ":" + std::to_string(e.local.port());
}

bool World::connection_matches(const Endpoint& e, std::int64_t host, std::uint16_t port) const noexcept {
    return (host < 0 || e.host == host) && (port == 0 || e.local.port() == port || e.remote.port() == port);
}

void World::trace_note(const Endpoint& e, std::string_view what, std::string_view reason) {
    if (trace_.enabled())
        trace_.line(now_, what).field("at", endpoint_name(e)).field("reason", reason);
}

// ===========================================================================
// Segments on the wire

std::uint32_t World::new_segment_slot() {
    if (free_segments_.empty()) {
        segment_pool_.emplace_back();
        return static_cast<std::uint32_t>(segment_pool_.size() - 1);
    }
    const std::uint32_t slot = free_segments_.back();
    free_segments_.pop_back();
    return slot;
}

std::uint32_t World::mss_toward(const Endpoint& e) const noexcept {
    const std::uint32_t to = e.peer_host == no_host ? e.host : e.peer_host;
    return link_between(e.host, to).mss;
}

void World::transmit(Endpoint& from, std::uint8_t flags, std::uint64_t seq, std::span<const std::uint8_t> payload) {
    const std::uint32_t slot = new_segment_slot();
    Segment& s = segment_pool_[slot];
    s.to_endpoint = (flags & seg_syn) != 0 && (flags & seg_ack) == 0 ? 0 : from.peer;
    s.from_endpoint = from.id;
    s.from_host = from.host;
    s.to_host = from.peer_host;
    s.src_port = from.local.port();
    s.dst_port = from.remote.port();
    s.family = from.family;
    s.dst_loopback = from.peer_loopback;
    s.flags = flags;
    s.seq = seq;
    s.ack = (flags & seg_ack) != 0 ? from.rcv_nxt : 0;
    s.window = advertised_window(from);
    s.payload.assign(payload.begin(), payload.end());
    if ((flags & seg_ack) != 0)
        from.last_advertised_window = s.window;
    if ((flags & (seg_ack | seg_syn)) != 0)
        from.rcv_window_edge = std::max(from.rcv_window_edge, from.rcv_nxt + s.window);
    send_segment(slot);
}

void World::send_reset_to(const Segment& offending) {
    const std::uint32_t slot = new_segment_slot();
    // offending may live in the pool: read it before writing the reply.
    Segment reply;
    reply.to_endpoint = offending.from_endpoint;
    reply.from_endpoint = 0;
    reply.from_host = offending.to_host;
    reply.to_host = offending.from_host;
    reply.src_port = offending.dst_port;
    reply.dst_port = offending.src_port;
    reply.family = offending.family;
    reply.dst_loopback = offending.dst_loopback;
    reply.flags = seg_rst | seg_ack;
    reply.seq = offending.ack;
    reply.ack = offending.seq + offending.payload.size() + ((offending.flags & (seg_syn | seg_fin)) != 0 ? 1 : 0);
    std::vector<std::uint8_t> keep = std::move(segment_pool_[slot].payload);
    keep.clear();
    reply.payload = std::move(keep);
    segment_pool_[slot] = std::move(reply);
    send_segment(slot);
}

Rng& World::link_rng(std::uint32_t from, std::uint32_t to) {
    const auto found = link_rngs_.find({from, to});
    if (found != link_rngs_.end())
        return found->second;
    const std::string name = "link:" + hosts_[from]->name() + "->" + hosts_[to]->name();
    return link_rngs_.emplace(std::pair{from, to}, Rng(Rng::derive_seed(options_.seed, name))).first->second;
}

void World::send_segment(std::uint32_t slot) {
    Segment& s = segment_pool_[slot];
    ++stats_.segments_sent;
    std::string_view drop;
    std::string note;
    Nanos delay{};
    if (s.to_host == no_host) {
        drop = "no route to host";
    } else {
        const LinkOptions& link = link_between(s.from_host, s.to_host);
        delay = link.latency;
        if (link.jitter > Nanos{0})
            delay += Nanos(static_cast<Nanos::rep>(
                link_rng(s.from_host, s.to_host).below(static_cast<std::uint64_t>(link.jitter.count()) + 1)));
        for (LinkFault& fault : link_faults_) {
            if (now_ < fault.start || now_ >= fault.end)
                continue;
            const bool forward =
                (fault.from < 0 || fault.from == s.from_host) && (fault.to < 0 || fault.to == s.to_host);
            const bool backward = fault.both_ways && (fault.from < 0 || fault.from == s.to_host) &&
                                  (fault.to < 0 || fault.to == s.from_host);
            if (!forward && !backward)
                continue;
            switch (fault.kind) {
                case LinkFault::Kind::partition: drop = "partition"; break;
                case LinkFault::Kind::delay:
                    delay += fault.extra;
                    note = "delayed";
                    break;
                case LinkFault::Kind::reorder: {
                    const std::uint64_t number = ++fault.matched_segments;
                    bool hold = false;
                    if (fault.held_segments.empty()) {
                        hold = fault.rng.chance(fault.numerator, fault.denominator);
                    } else if (fault.next_held < fault.held_segments.size() &&
                               fault.held_segments[fault.next_held] == number) {
                        // Numbers rise by one per matching segment: the list is walked once.
                        hold = true;
                        ++fault.next_held;
                    }
                    if (hold) {
                        delay += fault.extra;
                        note = "held back";
                        if (options_.held_back_observer)
                            options_.held_back_observer(fault.reorder_index, number, now_);
                    }
                    break;
                }
            }
        }
    }
    const Nanos arrival = saturating_add(now_, delay);
    if (trace_.enabled()) {
        const std::string from = hosts_[s.from_host]->name() + ":" + std::to_string(s.src_port);
        const std::string to =
            (s.to_host == no_host ? std::string("?") : hosts_[s.to_host]->name()) + ":" + std::to_string(s.dst_port);
        Trace::Line line = trace_.line(now_, "seg");
        line.field("src", from)
            .field("dst", to)
            .field("flags", flags_name(s.flags))
            .field("seq", s.seq)
            .field("ack", s.ack)
            .field("len", static_cast<std::uint64_t>(s.payload.size()))
            .field("win", s.window);
        if (!drop.empty())
            line.field("drop", drop);
        else
            line.field("arrive", static_cast<std::int64_t>(arrival.count()));
        if (!note.empty())
            line.field("fault", note);
    }
    if (!drop.empty()) {
        ++stats_.segments_dropped;
        free_segments_.push_back(slot);
        return;
    }
    push_event(Event{arrival, 0, EventKind::segment, slot, 0, 0});
}

void World::deliver(std::uint32_t slot) {
    const Segment& s = segment_pool_[slot];
    if (s.to_endpoint == 0) {
        handle_syn(s);
    } else if (Endpoint* e = endpoint(s.to_endpoint); e != nullptr && e->state != TcpState::closed) {
        handle_segment(*e, s);
    } else if ((s.flags & seg_rst) == 0) {
        // Nothing has this connection any more: answer with an RST.
        send_reset_to(s);
    }
    free_segments_.push_back(slot);
}

// ===========================================================================
// TCP: connection set-up

void World::start_connect(Endpoint& client, const SockAddr& address) {
    bool loopback = false;
    client.peer_host = host_index_for(*hosts_[client.host], address, &loopback);
    client.peer_loopback = loopback;
    client.peer = 0;
    client.remote = address;
    client.state = TcpState::syn_sent;
    client.connect_phase = ConnectPhase::connecting;
    client.retransmissions = 0;
    transmit(client, seg_syn, 0, {});
    arm_timer(client, options_.tcp.syn_timeout);
}

void World::handle_syn(const Segment& s) {
    SimKernel& kernel = *hosts_[s.to_host];
    Endpoint* listener = nullptr;
    if (const auto bound = kernel.ports_.find({s.family, s.dst_port}); bound != kernel.ports_.end())
        listener = endpoint(bound->second);
    if (listener != nullptr && listener->state == TcpState::listen) {
        const SockAddr& local = listener->local;
        const bool wildcard = is_wildcard(local);
        const bool local_loopback = is_loopback(local);
        if (!wildcard && local_loopback != s.dst_loopback)
            listener = nullptr;
    } else {
        listener = nullptr;
    }
    if (listener == nullptr) {
        if (trace_.enabled())
            trace_.line(now_, "refused").field("host", kernel.name()).field("port", static_cast<unsigned>(s.dst_port));
        send_reset_to(s);
        return;
    }
    if (const auto existing = listener->half_open.find(s.from_endpoint); existing != listener->half_open.end()) {
        if (Endpoint* child = endpoint(existing->second))
            transmit(*child, seg_syn | seg_ack, 0, {});  // our SYN-ACK was lost: again
        return;
    }
    const std::size_t limit = static_cast<std::size_t>(std::min(listener->backlog, options_.tcp.somaxconn));
    if (listener->accept_queue.size() + listener->half_open.size() > limit) {
        trace_note(*listener, "syn_dropped", "accept queue full");
        return;
    }
    Endpoint& child = new_endpoint(s.to_host, s.family);
    const std::uint64_t listener_id = listener->id;
    listener = endpoint(listener_id);  // new_endpoint may have grown the table; the object is stable
    child.local = s.dst_loopback ? (s.family == AF_INET6 ? SockAddr::ipv6_loopback(s.dst_port)
                                                         : SockAddr::ipv4_loopback(s.dst_port))
                                 : kernel.address(s.family, s.dst_port);
    child.remote = s.dst_loopback ? (s.family == AF_INET6 ? SockAddr::ipv6_loopback(s.src_port)
                                                          : SockAddr::ipv4_loopback(s.src_port))
                                  : hosts_[s.from_host]->address(s.family, s.src_port);
    child.bound = true;
    child.peer = s.from_endpoint;
    child.peer_host = s.from_host;
    child.peer_loopback = s.dst_loopback;
    child.state = TcpState::syn_received;
    child.listener = listener_id;
    child.snd_capacity = listener->snd_capacity;
    child.rcv_capacity = listener->rcv_capacity;
    child.nodelay = listener->nodelay;
    child.keepalive = listener->keepalive;
    child.linger_on = listener->linger_on;
    child.linger_seconds = listener->linger_seconds;
    child.rcv_nxt = s.seq + 1;
    child.snd_window_edge = 1 + s.window;
    child.window_wl1 = s.seq;
    listener->half_open[s.from_endpoint] = child.id;
    transmit(child, seg_syn | seg_ack, 0, {});
    child.snd_una = 1;
    child.snd_nxt = 1;
    child.snd_max = 1;
    arm_timer(child, options_.tcp.syn_timeout);
}

void World::handle_segment(Endpoint& e, const Segment& s) {
    const std::uint64_t id = e.id;
    if ((s.flags & seg_rst) != 0) {
        if (e.state == TcpState::listen)
            return;
        if (e.state == TcpState::syn_received) {
            trace_note(e, "half_open_reset", "rst received");
            cancel_timer(e);
            destroy_endpoint(e);
            return;
        }
        receive_reset(e, "rst received");
        return;
    }
    switch (e.state) {
        case TcpState::syn_sent:
            if ((s.flags & (seg_syn | seg_ack)) != (seg_syn | seg_ack))
                return;
            e.peer = s.from_endpoint;
            e.rcv_nxt = s.seq + 1;
            e.snd_una = 1;
            e.snd_nxt = 1;
            e.snd_max = 1;
            e.snd_window_edge = s.ack + s.window;
            e.window_wl1 = s.seq;
            e.state = TcpState::established;
            e.retransmissions = 0;
            cancel_timer(e);
            send_ack(e);
            notify(e, wake_all, true);  // tcp_finish_connect: sk_state_change
            return;
        case TcpState::syn_received: {
            if ((s.flags & seg_ack) == 0 || (s.flags & seg_syn) != 0)
                return;
            e.state = TcpState::established;
            e.retransmissions = 0;
            cancel_timer(e);
            if (Endpoint* listener = endpoint(e.listener)) {
                std::erase_if(listener->half_open, [&](const auto& entry) { return entry.second == e.id; });
                const bool was_empty = listener->accept_queue.empty();
                listener->accept_queue.push_back(e.id);
                notify(*listener, EPOLLIN, was_empty);
            }
            break;
        }
        case TcpState::established:
            if ((s.flags & seg_syn) != 0) {  // a repeated SYN-ACK: our ACK was lost
                send_ack(e);
                return;
            }
            break;
        case TcpState::listen:
        case TcpState::closed: return;
    }
    if ((s.flags & seg_ack) != 0)
        handle_ack(e, s);
    if (endpoint(id) == nullptr || e.state != TcpState::established)
        return;
    if (!s.payload.empty() || (s.flags & (seg_fin | seg_probe)) != 0)
        handle_data(e, s);
    if (Endpoint* still = endpoint(id))
        maybe_finish_orphan(*still);
}

// ===========================================================================
// TCP: data

std::uint32_t World::advertised_window(const Endpoint& e) const noexcept {
    for (const auto& [fault, host] : zero_windows_) {
        if (now_ >= fault.start && now_ < saturating_add(fault.start, fault.duration) &&
            connection_matches(e, host, fault.port))
            return 0;
    }
    const std::size_t used = e.rcv.size() + e.out_of_order_bytes;
    const std::uint64_t room = e.rcv_capacity > used ? e.rcv_capacity - used : 0;
    // tcp_select_window: a window that would pull the right edge back in
    // (out-of-order bytes inside it, a smaller SO_RCVBUF) keeps the edge.
    const std::uint64_t promised = e.rcv_window_edge > e.rcv_nxt ? e.rcv_window_edge - e.rcv_nxt : 0;
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(std::max(room, promised), 0xFFFFFFFFU));
}

void World::send_ack(Endpoint& e, std::uint8_t extra_flags) {
    // snd_max, not a rewound snd_nxt: the peer's window update test
    // (tcp_may_update_window) would take an older number for an old segment.
    transmit(e, static_cast<std::uint8_t>(seg_ack | extra_flags), e.snd_max, {});
}

void World::handle_ack(Endpoint& e, const Segment& s) {
    // Acceptable: from snd_una up to the highest sequence number sent. An
    // ACK for data sent before a go-back-N rewind is beyond snd_nxt but
    // not beyond snd_max (tcp_ack checks against Linux's snd_nxt, which
    // never rewinds). An older one changes nothing, window included.
    if (s.ack < e.snd_una || s.ack > e.snd_max)
        return;
    e.probes = 0;  // an answer: the peer is there (tcp_ack: icsk_probes_out = 0)
    const std::uint64_t prior_una = e.snd_una;
    bool freed = false;
    if (s.ack > e.snd_una) {
        const std::uint64_t acked = s.ack - e.snd_una;
        const std::size_t data = static_cast<std::size_t>(std::min<std::uint64_t>(acked, e.snd.size()));
        e.snd.consume(data);
        if (e.snd.empty())
            e.snd.release_if_empty();
        if (e.fin_sent && s.ack == e.fin_seq + 1)
            e.fin_acked = true;
        e.snd_una = s.ack;
        if (e.snd_nxt < e.snd_una)
            e.snd_nxt = e.snd_una;  // acknowledged past a rewind: not sent again
        e.retransmissions = 0;
        e.rto = options_.tcp.rto_min;
        if (e.snd_una == e.snd_max)
            cancel_timer(e);
        else
            arm_timer(e, e.rto);
        freed = data > 0;
    }
    // tcp_may_update_window: a newer ACK, a newer segment, or the same
    // segment number with a larger window or a zero one.
    const std::uint64_t window_now = e.snd_window_edge > prior_una ? e.snd_window_edge - prior_una : 0;
    if (s.ack > prior_una || s.seq > e.window_wl1 ||
        (s.seq == e.window_wl1 && (s.window > window_now || s.window == 0))) {
        e.window_wl1 = s.seq;
        e.snd_window_edge = s.ack + s.window;
    }
    if (freed && e.nospace) {
        const std::size_t used = e.snd.size();
        const std::size_t room = e.snd_capacity > used ? e.snd_capacity - used : 0;
        if (room > 0 && room >= used / 2) {  // sk_stream_is_writeable
            e.nospace = false;
            notify(e, EPOLLOUT, true);
        }
    }
    output(e);
}

// In-order bytes go to the receive buffer, with a ResetFault at a stream
// offset cutting them short: false if that reset the connection (e may be
// gone). delivered counts the bytes that went in.
bool World::deliver(Endpoint& e, std::span<const std::uint8_t> bytes, std::size_t& delivered) {
    for (const auto& [fault, host] : offset_resets_) {
        if (e.offset_reset_done || !connection_matches(e, host, fault.port))
            continue;
        const auto offset = static_cast<std::uint64_t>(fault.at_received_offset);
        if (e.received_bytes + bytes.size() < offset)
            continue;
        e.offset_reset_done = true;
        const std::size_t before = static_cast<std::size_t>(offset - e.received_bytes);
        (void)e.rcv.append(bytes.first(before));
        e.received_bytes += before;
        e.rcv_nxt += before;
        delivered += before;
        if (!fault.one_sided && e.peer != 0)
            transmit(e, seg_rst, e.snd_max, {});
        receive_reset(e, "reset fault at stream offset");
        return false;
    }
    (void)e.rcv.append(bytes);
    e.received_bytes += bytes.size();
    e.rcv_nxt += bytes.size();
    delivered += bytes.size();
    return true;
}

void World::handle_data(Endpoint& e, const Segment& s) {
    if ((s.flags & seg_probe) != 0) {
        send_ack(e);
        return;
    }
    std::uint64_t seq = s.seq;
    std::span<const std::uint8_t> data(s.payload);
    if (e.orphan && !data.empty() && seq + data.size() > e.rcv_nxt) {
        // tcp_rcv_state_process: new data for a socket the program closed.
        abort(e, "data after close");
        return;
    }
    bool fin = (s.flags & seg_fin) != 0;
    const std::uint64_t right = e.rcv_nxt + advertised_window(e);
    if (seq + data.size() > right) {
        const std::size_t keep = seq >= right ? 0 : static_cast<std::size_t>(right - seq);
        if (trace_.enabled() && keep < data.size())
            trace_.line(now_, "beyond_window")
                .field("at", endpoint_name(e))
                .field("seq", seq)
                .field("dropped", static_cast<std::uint64_t>(data.size() - keep));
        data = data.first(keep);
        fin = false;
    }
    if (seq < e.rcv_nxt) {
        const std::size_t skip = static_cast<std::size_t>(std::min<std::uint64_t>(e.rcv_nxt - seq, data.size()));
        data = data.subspan(skip);
        seq += skip;
    }
    const bool was_empty = e.rcv.empty();
    std::size_t delivered = 0;
    const std::uint64_t id = e.id;
    bool alive = true;
    if (!data.empty()) {
        if (seq == e.rcv_nxt) {
            alive = deliver(e, data, delivered);
        } else {
            store_out_of_order(e, seq, data);
        }
    }
    if (alive && fin) {
        e.peer_fin_known = true;
        e.peer_fin_seq = s.seq + s.payload.size();
    }
    while (alive && !e.out_of_order.empty() && e.out_of_order.begin()->first <= e.rcv_nxt) {
        auto first = e.out_of_order.begin();
        std::vector<std::uint8_t> bytes = std::move(first->second);
        const std::uint64_t start = first->first;
        e.out_of_order.erase(first);
        e.out_of_order_bytes -= bytes.size();
        if (start + bytes.size() > e.rcv_nxt)
            alive = deliver(e, std::span<const std::uint8_t>(bytes).subspan(static_cast<std::size_t>(e.rcv_nxt - start)),
                            delivered);
    }
    if (!alive) {
        if (Endpoint* still = endpoint(id); still != nullptr && delivered > 0)
            notify(*still, EPOLLIN, was_empty);
        return;
    }
    bool finished = false;
    if (e.peer_fin_known && !e.fin_received && e.rcv_nxt == e.peer_fin_seq) {
        e.fin_received = true;
        e.rcv_shutdown = true;
        e.rcv_nxt += 1;
        finished = true;
    }
    send_ack(e);
    if (delivered > 0)
        notify(e, EPOLLIN, was_empty);
    if (finished)
        notify(e, wake_all, true);  // tcp_fin: sk_state_change
}

void World::output(Endpoint& e) {
    if (e.state != TcpState::established || e.reset || e.fin_acked)
        return;
    const std::uint32_t mss = mss_toward(e);
    const auto data_end = [&] { return e.snd_una + e.snd.size(); };
    for (;;) {
        if (e.snd_nxt < data_end()) {
            const std::uint64_t allowed = e.snd_window_edge > e.snd_nxt ? e.snd_window_edge - e.snd_nxt : 0;
            const std::uint64_t n = std::min({data_end() - e.snd_nxt, allowed, static_cast<std::uint64_t>(mss)});
            if (n == 0)
                break;
            const auto offset = static_cast<std::size_t>(e.snd_nxt - e.snd_una);
            transmit(e, seg_ack, e.snd_nxt, e.snd.readable().subspan(offset, static_cast<std::size_t>(n)));
            e.snd_nxt += n;
            e.snd_max = std::max(e.snd_max, e.snd_nxt);
            if (!e.timer_armed)
                arm_timer(e, e.rto);
            continue;
        }
        // The FIN follows the last byte, the first time and after every
        // rewind to before it (until it is acknowledged).
        if (e.fin_queued && e.snd_nxt == data_end()) {
            EAGAIN_ASSERT(!e.fin_sent || e.fin_seq == data_end());
            e.fin_seq = data_end();
            transmit(e, seg_ack | seg_fin, e.fin_seq, {});
            e.fin_sent = true;
            e.snd_nxt = e.fin_seq + 1;
            e.snd_max = std::max(e.snd_max, e.snd_nxt);
            if (!e.timer_armed)
                arm_timer(e, e.rto);
        }
        break;
    }
    // Data waiting and nothing in flight (a zero window): the persist
    // timer probes it (handle_timer).
    if (!e.timer_armed && e.snd_nxt < data_end() && e.snd_una == e.snd_max)
        arm_timer(e, e.rto);
}

void World::maybe_window_update(Endpoint& e) {
    if (e.state != TcpState::established || e.reset || e.fin_received)
        return;
    const std::uint32_t window = advertised_window(e);
    const std::uint32_t last = e.last_advertised_window;
    const std::uint32_t mss = mss_toward(e);
    const std::size_t step = std::min<std::size_t>(mss, e.rcv_capacity / 2);
    if (window > last && (last == 0 || window - last >= step))
        send_ack(e);
}

void World::after_read(Endpoint& e) {
    if (e.rcv.empty())
        e.rcv.release_if_empty();
    maybe_window_update(e);
}

// ===========================================================================
// TCP: timers

// A timer armed while none is takes the next sequence number, and that
// (deadline, sequence) is its place among the events, as if it had an event
// of its own. But cancel_timer leaves the queued event where it is, and a
// timer armed again finds it there, earlier than its place: when it comes,
// it moves itself on (handle_next_event). A connection that sends and is
// acknowledged, over and over, so keeps one timer event instead of piling
// up one stale event per send (each RTO long). A place earlier than the
// queued event's gives that event up and queues a new one.
void World::arm_timer(Endpoint& e, Nanos delay) {
    const Nanos deadline = saturating_add(now_, delay);
    if (e.timer_armed && e.timer_deadline <= deadline) {
        // The queued event comes first and re-queues itself for the new deadline.
        e.timer_deadline = deadline;
        return;
    }
    e.timer_armed = true;
    e.timer_deadline = deadline;
    e.timer_time = deadline;
    e.timer_sequence = next_sequence_++;
    // The queued event's sequence number is older, so at an equal time it comes first too.
    if (e.timer_queued && e.timer_queued_time <= deadline)
        return;
    ++e.timer_generation;  // any queued event is given up
    queue_timer(e, deadline, e.timer_sequence);
}

void World::queue_timer(Endpoint& e, Nanos time, std::uint64_t sequence) {
    e.timer_time = time;
    e.timer_sequence = sequence;
    e.timer_queued = true;
    e.timer_queued_time = time;
    queue(Event{time, sequence, EventKind::endpoint_timer, 0, e.id, e.timer_generation});
}

void World::cancel_timer(Endpoint& e) noexcept {
    e.timer_armed = false;  // its queued event stays, for the next arm_timer
}

void World::handle_timer(Endpoint& e) {
    const TcpOptions& tcp = options_.tcp;
    switch (e.state) {
        case TcpState::syn_sent:
            if (++e.retransmissions > tcp.syn_retries) {
                fail(e, ETIMEDOUT, "connect timed out: no answer to SYN");
                return;
            }
            trace_note(e, "timer", "SYN retransmission");
            ++stats_.retransmissions;
            transmit(e, seg_syn, 0, {});
            arm_timer(e, backed_off(tcp.syn_timeout, e.retransmissions, tcp.rto_max));
            return;
        case TcpState::syn_received:
            if (++e.retransmissions > tcp.synack_retries) {
                trace_note(e, "half_open_dropped", "no answer to SYN-ACK");
                destroy_endpoint(e);
                return;
            }
            trace_note(e, "timer", "SYN-ACK retransmission");
            ++stats_.retransmissions;
            transmit(e, seg_syn | seg_ack, 0, {});
            arm_timer(e, backed_off(tcp.syn_timeout, e.retransmissions, tcp.rto_max));
            return;
        case TcpState::established: break;
        case TcpState::listen:
        case TcpState::closed: return;
    }
    const bool in_flight = e.snd_una < e.snd_max;
    const bool window_closed = e.snd_window_edge <= e.snd_una;
    if (!e.snd.empty() && (window_closed || !in_flight)) {
        // The persist timer (tcp_probe_timer): data waits for a window the
        // peer has closed. A probe is not a retransmission: each answer
        // starts the count again, and only `retries` probes in a row with
        // no answer fail the connection.
        if (++e.probes > tcp.retries) {
            fail(e, ETIMEDOUT, "zero window probes unanswered");
            return;
        }
        trace_note(e, "timer", "zero window probe");
        e.snd_nxt = e.snd_una;  // what went beyond the closed window goes again when it opens
        send_ack(e, seg_probe);
        e.rto = doubled(e.rto, tcp.rto_max);
        arm_timer(e, e.rto);
        return;
    }
    if (in_flight) {
        // tcp_retransmit_timer: after `retries` retransmissions, the next
        // timeout fails the connection (as tcp_retries2 does on Linux).
        if (++e.retransmissions > tcp.retries) {
            fail(e, ETIMEDOUT, "retransmissions exhausted");
            return;
        }
        trace_note(e, "timer", "retransmission");
        ++stats_.retransmissions;
        e.snd_nxt = e.snd_una;  // go-back-N; snd_max stays
        e.rto = doubled(e.rto, tcp.rto_max);
        output(e);
        if (!e.timer_armed)
            arm_timer(e, e.rto);
        return;
    }
    if (e.orphan) {
        trace_note(e, "timer", "FIN wait timed out");
        destroy_endpoint(e);
    }
}

// ===========================================================================
// TCP: resets, errors, closing

void World::fail(Endpoint& e, int error, std::string_view reason) {
    if (trace_.enabled())
        trace_.line(now_, "error")
            .field("at", endpoint_name(e))
            .field("errno", errno_name(error))
            .field("reason", reason);
    cancel_timer(e);
    e.error = error;
    e.state = TcpState::closed;
    e.rcv_shutdown = true;
    e.snd_shutdown = true;
    e.snd.clear();
    e.snd.release_if_empty();
    e.out_of_order.clear();
    e.out_of_order_bytes = 0;
    if (e.orphan) {
        destroy_endpoint(e);
        return;
    }
    notify(e, wake_all, true);
}

void World::receive_reset(Endpoint& e, std::string_view reason) {
    // tcp_reset: the error depends on the state the RST finds.
    int error = ECONNRESET;
    if (e.state == TcpState::syn_sent)
        error = ECONNREFUSED;
    else if (e.fin_received)
        error = EPIPE;
    e.reset = true;
    fail(e, error, reason);
}

void World::abort(Endpoint& e, std::string_view reason) {
    if (e.peer != 0 && (e.state == TcpState::established || e.state == TcpState::syn_received)) {
        trace_note(e, "abort", reason);
        transmit(e, seg_rst | seg_ack, e.snd_max, {});
    }
    e.reset = true;
    cancel_timer(e);
    if (e.orphan || e.listener != 0) {
        e.orphan = true;
        fail(e, 0, reason);
    } else {
        fail(e, ECONNRESET, reason);
    }
}

void World::shutdown_send(Endpoint& e) {
    if (e.snd_shutdown)
        return;
    e.snd_shutdown = true;
    e.fin_queued = true;
    output(e);
}

void World::maybe_finish_orphan(Endpoint& e) {
    if (!e.orphan || e.state != TcpState::established)
        return;
    if (e.fin_acked && e.fin_received) {
        cancel_timer(e);
        destroy_endpoint(e);
    } else if (e.fin_acked && !e.timer_armed) {
        arm_timer(e, options_.tcp.fin_timeout);
    }
}

void World::close_endpoint(Endpoint& e) {
    e.orphan = true;
    switch (e.state) {
        case TcpState::closed:
        case TcpState::syn_sent:
            cancel_timer(e);
            destroy_endpoint(e);
            return;
        case TcpState::listen: {
            // Connections nobody accepted are reset (inet_csk_listen_stop).
            std::vector<std::uint64_t> children(e.accept_queue.begin(), e.accept_queue.end());
            for (const auto& entry : e.half_open)
                children.push_back(entry.second);
            for (const std::uint64_t child_id : children) {
                if (Endpoint* child = endpoint(child_id))
                    abort(*child, "listener closed");
            }
            destroy_endpoint(e);
            return;
        }
        case TcpState::syn_received: abort(e, "closed"); return;
        case TcpState::established: break;
    }
    if (!e.rcv.empty()) {
        abort(e, "closed with unread data");
        return;
    }
    if (e.linger_on && e.linger_seconds == 0) {
        abort(e, "SO_LINGER 0");
        return;
    }
    e.rcv_shutdown = true;
    shutdown_send(e);
    maybe_finish_orphan(e);
}

void World::notify(Endpoint& e, std::uint32_t key, bool transition) {
    for (EpollItem* item : e.watchers)
        item->owner->kernel->wake(*item, key, transition);
}

// ===========================================================================
// Faults

void World::for_each_connection(std::int64_t host, std::uint16_t port, const std::function<void(Endpoint&)>& act) {
    // In slot order, so the order is the same on every run. act may tear
    // the endpoint down (only its slot is cleared; the table keeps its size).
    for (std::size_t slot = 0; slot < endpoints_.size(); ++slot) {
        Endpoint* e = endpoints_[slot].get();
        if (e != nullptr && !e->reset && e->state == TcpState::established && connection_matches(*e, host, port))
            act(*e);
    }
}

void World::add_fault(const ResetFault& fault) {
    const std::int64_t host = host_selector(fault.host);
    if (trace_.enabled())
        trace_.line(now_, "fault_scheduled")
            .field("kind", "reset")
            .field("host", fault.host)
            .field("port", static_cast<unsigned>(fault.port))
            .field("at", static_cast<std::int64_t>(fault.at.count()))
            .field("offset", fault.at_received_offset);
    if (fault.at_received_offset >= 0)
        offset_resets_.push_back({fault, host});
    if (fault.at < Nanos{0})
        return;
    at(fault.at, [this, host, fault] {
        for_each_connection(host, fault.port, [&](Endpoint& e) {
            if (!fault.one_sided && e.peer != 0)
                transmit(e, seg_rst, e.snd_max, {});
            receive_reset(e, "reset fault");
        });
    });
}

void World::add_fault(const ZeroWindowFault& fault) {
    const std::int64_t host = host_selector(fault.host);
    if (trace_.enabled())
        trace_.line(now_, "fault_scheduled")
            .field("kind", "zero_window")
            .field("host", fault.host)
            .field("port", static_cast<unsigned>(fault.port))
            .field("start", static_cast<std::int64_t>(fault.start.count()))
            .field("duration", static_cast<std::int64_t>(fault.duration.count()));
    zero_windows_.push_back({fault, host});
    // When it ends, the endpoints say their window is open again.
    at(saturating_add(fault.start, fault.duration), [this, host, fault] {
        std::erase_if(zero_windows_, [&](const auto& entry) {
            const ZeroWindowFault& f = entry.first;
            return f.host == fault.host && f.port == fault.port && f.start == fault.start &&
                   f.duration == fault.duration;
        });
        for_each_connection(host, fault.port, [&](Endpoint& e) { send_ack(e); });
    });
}

void World::add_fault(const ReorderFault& fault) {
    EAGAIN_ASSERT(fault.held_segments.empty() || fault.held_segments.front() > 0);
    EAGAIN_ASSERT(std::adjacent_find(fault.held_segments.begin(), fault.held_segments.end(), std::greater_equal<>()) ==
                  fault.held_segments.end());
    if (trace_.enabled()) {
        Trace::Line line = trace_.line(now_, "fault_scheduled");
        line.field("kind", "reorder").field("from", fault.from).field("to", fault.to);
        if (fault.held_segments.empty()) {
            line.field("numerator", fault.numerator).field("denominator", fault.denominator);
        } else {
            std::string list = "[";
            for (const std::uint64_t number : fault.held_segments)
                list += (list.size() > 1 ? "," : "") + std::to_string(number);
            line.raw("segments", list + "]");
        }
        line.field("hold_back", static_cast<std::int64_t>(fault.hold_back.count()));
    }
    LinkFault link_fault{LinkFault::Kind::reorder,
                         host_selector(fault.from),
                         host_selector(fault.to),
                         false,
                         fault.start,
                         saturating_add(fault.start, fault.duration),
                         fault.numerator,
                         fault.denominator,
                         fault.hold_back};
    link_fault.reorder_index = reorder_faults_++;
    link_fault.held_segments = fault.held_segments;
    const auto same_direction = [&](const LinkFault& other) {
        return other.kind == LinkFault::Kind::reorder && other.from == link_fault.from && other.to == link_fault.to;
    };
    const auto host_or_any = [](const std::string& name) { return name.empty() ? std::string("*") : name; };
    link_fault.rng = Rng(Rng::derive_seed(
        options_.seed, "reorder:" + host_or_any(fault.from) + "->" + host_or_any(fault.to) + "#" +
                           std::to_string(std::count_if(link_faults_.begin(), link_faults_.end(), same_direction))));
    link_faults_.push_back(std::move(link_fault));
}

void World::add_fault(const DelayFault& fault) {
    if (trace_.enabled())
        trace_.line(now_, "fault_scheduled")
            .field("kind", "delay")
            .field("from", fault.from)
            .field("to", fault.to)
            .field("start", static_cast<std::int64_t>(fault.start.count()))
            .field("duration", static_cast<std::int64_t>(fault.duration.count()))
            .field("extra", static_cast<std::int64_t>(fault.extra.count()));
    link_faults_.push_back(LinkFault{LinkFault::Kind::delay, host_selector(fault.from), host_selector(fault.to), false,
                                     fault.start, saturating_add(fault.start, fault.duration), 1, 1, fault.extra});
}

void World::add_fault(const PartitionFault& fault) {
    if (trace_.enabled())
        trace_.line(now_, "fault_scheduled")
            .field("kind", "partition")
            .field("a", fault.a)
            .field("b", fault.b)
            .field("start", static_cast<std::int64_t>(fault.start.count()))
            .field("duration", static_cast<std::int64_t>(fault.duration.count()));
    link_faults_.push_back(LinkFault{LinkFault::Kind::partition, host_selector(fault.a), host_selector(fault.b), true,
                                     fault.start, saturating_add(fault.start, fault.duration), 1, 1, Nanos{0}});
}

}  // namespace eagain::sim
