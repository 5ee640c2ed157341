// A frame client written the way the seed programs write one, with one
// pitfall each, WRONG ON PURPOSE. Registered in place of frame-client for
// tests only (ScenarioRunOptions::apps, through naive_frame_client()), to
// show that a scenario catches the bug its opening comment names.
//
// It does frame-client's job (apps/load_client.h) the plain C way: per
// connection a non-blocking socket, connect(), an epoll registration
// (level-triggered), frames in LoadClient's format (header cmd, seq,
// reserved1 = the connection's index; body LoadClient::fill_body) with at
// most `in-flight` unanswered, one recv per event into `char buf[4096]`,
// every echo checked, and close() once all came back. So the real
// frame-echo echoes its frames, and it fills the observations frame-client's
// expectations read (frames-verified, no-errors, error) the way LoadClient
// does: the same problem texts, and endings as errno names and close
// reasons ("ECONNREFUSED", "connect_failed").
//
// NaiveClientPitfall::none is that client written carefully: after
// EINPROGRESS (or EINTR: POSIX says the interrupted connect goes on) it
// waits for EPOLLOUT and reads SO_ERROR, for at most 10 s (Connection's
// default connect_timeout), then gives up with ETIMEDOUT; it keeps what send() did not take,
// retries EINTR, sends with MSG_NOSIGNAL. Every other variant changes ONE
// line of it (commented with the C it models). Deterministic and bounded
// (every loop has the test harness's cap).
#pragma once

#include "core/reactor.h"
#include "harness/app.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::scenarios {

enum class NaiveClientPitfall : std::uint8_t {
    none,                      // the careful client
    skips_so_error,            // writable after EINPROGRESS taken for "connected"
    eintr_connect_is_failure,  // connect() -1 with EINTR: "connect failed", socket closed
    no_connect_timeout,        // waits for the kernel to give up on a connect (~127 s on Linux)
};
std::string_view to_string(NaiveClientPitfall pitfall) noexcept;

class NaiveFrameClient final : public harness::App {
public:
    NaiveFrameClient(const harness::AppContext& context, NaiveClientPitfall pitfall);
    ~NaiveFrameClient() override;
    NaiveFrameClient(const NaiveFrameClient&) = delete;
    NaiveFrameClient& operator=(const NaiveFrameClient&) = delete;

    VoidResult start() override;
    // Closes every socket; what was observed stays.
    void stop() override;
    bool done() const override { return ended_ == peers_.size(); }
    void act(std::string_view /*action*/) override {}
    harness::AppObservations observations() const override { return seen_; }

private:
    struct Peer final : Reactor::Handler {
        NaiveFrameClient* client = nullptr;
        std::size_t index = 0;
        int fd = -1;
        std::uint32_t interest = 0;  // as registered
        bool connecting = false;     // waiting for EPOLLOUT after EINPROGRESS
        std::optional<Reactor::TimerId> connect_deadline;
        bool ended = false;
        std::uint64_t quota = 0;
        std::uint32_t next_seq_to_send = 0;
        std::uint32_t next_seq_expected = 0;
        std::vector<std::uint8_t> input;   // received, not yet a whole frame
        std::vector<std::uint8_t> output;  // frames not yet sent
        void on_ready(std::uint32_t events) override { client->serve(*this, events); }
    };

    void connect(Peer& p);
    void serve(Peer& p, std::uint32_t events);
    void cancel_connect_deadline(Peer& p);
    void connected(Peer& p);
    // false: the connection ended.
    bool read(Peer& p);
    bool flush(Peer& p);
    bool take_frames(Peer& p);
    void queue_frames(Peer& p);
    void update_interest(Peer& p);
    void end(Peer& p, const CloseInfo& info);
    void problem(std::string what);

    Reactor& reactor_;
    SockAddr server_;
    NaiveClientPitfall pitfall_;
    std::size_t connections_ = 1;
    std::uint64_t frames_ = 100;
    std::size_t body_bytes_ = 64;
    std::size_t in_flight_ = 32;
    std::vector<std::unique_ptr<Peer>> peers_;  // never shrinks: a Peer outlives its callbacks
    std::vector<std::uint8_t> body_;            // scratch for building and checking bodies
    std::size_t ended_ = 0;
    harness::AppObservations seen_;
};

// A factory for ScenarioRunOptions::apps["frame-client"].
harness::AppFactory naive_frame_client(NaiveClientPitfall pitfall);

}  // namespace eagain::scenarios
