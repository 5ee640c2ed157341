// The one-connection clients of the scenario language, idle-client and
// reconnecting-client (harness/apps.cpp maps the options): one
// ConnectionDriver client, so connect, heartbeats, dead-peer detection,
// reconnect and backoff are the Connection policy's own, unchanged.
//
// With frames > 0 it sends that many frames once established, at most
// in_flight unechoed at a time, each checked as LoadClient checks its own
// (header cmd, seq and connection 0; the body LoadClient::fill_body(0, seq)),
// and closes gracefully once all came back verified. Verification restarts
// per connection: after a lost connection, the frames not yet echoed are
// sent again, from the first unverified one, on the next connection (an
// echo of the lost connection cannot arrive on the new one). With frames 0
// it only stays connected.
//
// It is done when its Connection is closed for good: all frames verified
// and closed, the `close` action, or a loss it does not reconnect after.
// Errors: the final ending is not a local close, or it comes before every
// frame was verified. A loss followed by a reconnect is not an error (it is
// in the endings, and reconnect-at shows it).
#pragma once

#include "core/connection.h"
#include "core/transport.h"
#include "harness/app.h"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace eagain::harness {

struct OneConnectionOptions {
    ConnectionConfig connection;  // reconnect, heartbeats, backoff
    TransportOptions transport;
    std::uint64_t frames = 0;
    std::size_t body_bytes = 64;
    std::size_t in_flight = 32;
};

std::unique_ptr<App> make_one_connection_client(const AppContext& context, const OneConnectionOptions& options);

}  // namespace eagain::harness
