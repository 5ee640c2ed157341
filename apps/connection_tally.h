// ConnectionTally: what a group of connections did over their lives, summed
// or maxed over every one of them, live or ended, for an app's report (and
// the scenario expectations: heartbeats, max-buffered, state, reconnect-at,
// error).
//
// Fed from a ConnectionDriver::App's callbacks: note(transition) for every
// on_transition, note_ending(info) for every on_closed, and add(stats) once
// per Connection with its final (or current) stats. Everything is bounded:
// connect times are kept up to connect_times_kept (all are counted), and
// endings are kept as distinct (reason, errno) pairs with a count each,
// which there are only so many of.
#pragma once

#include "core/connection.h"

#include <cstdint>
#include <vector>

namespace eagain {

struct EndingCount {
    CloseReason reason = CloseReason::local_close;
    int errno_value = 0;
    std::uint64_t count = 0;
    friend bool operator==(const EndingCount&, const EndingCount&) = default;  // LCOV_EXCL_BR_LINE
};

struct ConnectionTally {
    static constexpr std::size_t connect_times_kept = 4096;

    std::uint64_t pings_sent = 0;        // summed over the connections
    std::uint64_t max_output_bytes = 0;  // the peak of any one connection's unsent output
    std::uint32_t states_reached = 0;    // bit (1 << state) set: some connection entered it
    // The time of every transition into connecting, in order: each is a
    // connect(2) the driver made at that virtual time (the first kept).
    std::vector<Nanos> connect_times;
    std::uint64_t connects = 0;  // all of them, kept or not
    // How connections ended, by distinct (reason, errno), in the order each
    // was first seen.
    std::vector<EndingCount> endings;

    void note(const Transition& transition);
    void note_ending(const CloseInfo& info);
    void add(const ConnectionStats& stats) noexcept;

    bool reached(ConnectionState state) const noexcept { return (states_reached & bit(state)) != 0; }
    static std::uint32_t bit(ConnectionState state) noexcept { return 1U << static_cast<unsigned>(state); }
};

}  // namespace eagain
