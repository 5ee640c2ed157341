#include "apps/connection_tally.h"

#include <algorithm>

namespace eagain {

void ConnectionTally::note(const Transition& transition) {
    states_reached |= bit(transition.to);
    if (transition.to != ConnectionState::connecting)
        return;
    ++connects;
    if (connect_times.size() < connect_times_kept)
        connect_times.push_back(transition.at);
}

void ConnectionTally::note_ending(const CloseInfo& info) {
    const auto same = [&](const EndingCount& e) {
        return e.reason == info.reason && e.errno_value == info.errno_value;
    };
    const auto found = std::find_if(endings.begin(), endings.end(), same);
    if (found != endings.end()) {
        ++found->count;
        return;
    }
    endings.push_back(EndingCount{info.reason, info.errno_value, 1});
}

void ConnectionTally::add(const ConnectionStats& stats) noexcept {
    pings_sent += stats.pings_sent;
    max_output_bytes = std::max(max_output_bytes, stats.max_output_bytes);
}

}  // namespace eagain
