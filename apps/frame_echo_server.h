// FrameEchoServer: accepts connections and echoes every frame of the default
// protocol back unchanged, each connection driven by a ConnectionDriver.
//
// Built only on Reactor and Sys, so the very same server runs on the real
// kernel (tools/eagain-echo) and in the simulation. It never prints: what a
// human should know (a hostile frame, with the peer and the reason; accept
// failures) goes to the log callback.
//
// Accepting is apps/listener.h's: at most max_accepts_per_wakeup per
// readiness event; EAGAIN ends the batch, EINTR retries (bounded),
// ECONNABORTED skips that connection, and EMFILE/ENFILE/ENOBUFS/ENOMEM are
// logged and pause accepting for accept_pause.
//
// Reading can be paused for every connection at once (pause_reading: the
// peers' sends then meet a zero window), including those accepted while it
// is paused, until resume_reading. tally() says what the connections did,
// the ended ones included.
#pragma once

#include "apps/connection_tally.h"
#include "apps/listener.h"
#include "core/connection_driver.h"
#include "core/reactor.h"
#include "core/sys.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace eagain {

struct EchoServerOptions {
    SockAddr listen_address = SockAddr::ipv4_loopback(0);  // port 0: the kernel picks
    // The listener's (ListenerOptions, with its EINTR bound).
    int backlog = 1024;
    TransportOptions transport;
    ConnectionConfig connection;
    std::size_t max_connections = 100'000;  // beyond this, new connections are closed at once
    std::size_t max_accepts_per_wakeup = 64;
    Nanos accept_pause = std::chrono::milliseconds(100);
    std::uint64_t seed = 1;  // each connection's jitter seed derives from it
};

struct EchoServerStats {
    std::uint64_t accepted = 0;  // including those closed at once over max_connections
    std::uint64_t closed = 0;
    std::uint64_t frames_echoed = 0;
    std::uint64_t hostile_frames = 0;
    std::uint64_t accept_errors = 0;  // EMFILE and the like
};

class FrameEchoServer final : private ConnectionDriver::App {
public:
    using Log = std::function<void(std::string_view)>;

    FrameEchoServer(Reactor& reactor, const EchoServerOptions& options, Log log = {});
    ~FrameEchoServer();
    FrameEchoServer(const FrameEchoServer&) = delete;
    FrameEchoServer& operator=(const FrameEchoServer&) = delete;

    // socket, SO_REUSEADDR, bind, listen, register. Returns the failing
    // errno; EINVAL, with nothing opened, when options.connection does not
    // validate() for a server (core/connection.h).
    VoidResult open();
    // The bound address (with the kernel-chosen port).
    SockAddr local_address() const;
    // Stops accepting and closes every connection at once.
    void stop();

    // Every connection, and every one accepted until resume_reading(),
    // stops reading from its peer (Connection::pause_reading).
    void pause_reading();
    void resume_reading();

    std::size_t open_connections() const noexcept { return connections_.size(); }
    const EchoServerStats& stats() const noexcept { return stats_; }
    // What every connection since open() did: live ones as of now, and the
    // ended ones (kept as totals, not as connections).
    ConnectionTally tally() const;

private:
    void on_frame(ConnectionDriver& driver, const Frame& frame) override;
    void on_closed(ConnectionDriver& driver, const CloseInfo& info, bool reconnecting) override;
    void on_transition(ConnectionDriver& driver, const Transition& transition) override;
    void accepted(int fd, const SockAddr& peer);
    void accept_failed(int error);
    void sweep_finished();
    void log(std::string_view line) const;

    Reactor& reactor_;
    Sys& sys_;
    EchoServerOptions options_;
    Log log_;
    Listener listener_;
    std::optional<Reactor::TimerId> sweep_timer_;                 // cancelled by stop(): it captures this
    std::vector<std::unique_ptr<ConnectionDriver>> connections_;  // in accept order
    EchoServerStats stats_;
    ConnectionTally tally_;  // transitions and endings of all; stats of the freed connections
    bool reading_paused_ = false;
};

}  // namespace eagain
