// A frame echo server written the way the seed programs write one, with one
// pitfall each, WRONG ON PURPOSE. Registered in place of frame-echo for
// tests only (ScenarioRunOptions::apps, through naive_echo()), to show that a
// scenario catches the bug its opening comment names.
//
// It is the plain C server: a listening socket, one epoll registration per
// connection, `char buf[4096]` per recv, an input buffer cut into frames by
// the header's body_len (core/frame.h's default protocol), and an output
// buffer echoed back. NaivePitfall::none is that server written carefully:
// reads to EAGAIN under EPOLLET and one recv per event otherwise, retries
// EINTR (and ECONNABORTED from accept4), cuts every frame out of each read
// and keeps a partial one, keeps what send() did not take and waits for
// EPOLLOUT, stops reading from a connection that owes 1 MiB (the built-in
// server's high water), sends with MSG_NOSIGNAL, re-arms EPOLLONESHOT,
// refuses a frame over max-frame (shutdown, then discard until the peer
// closes, so the peer sees a FIN, not an RST), and on recv 0 finishes
// sending what it owes, then closes. It
// passes every scenario its tests run it in; every other variant is that
// code with ONE line changed (each commented with the C it models), so a
// failure is the pitfall's and nothing else's.
//
// Honours the frame-echo options `port`, `trigger level|edge|oneshot` and
// `max-frame`. Deterministic, and bounded: every loop has a cap (the test
// harness's, not the variant's), so a variant that would spin in a real
// program shows as a livelock or a stall in the simulation, never a hang.
#pragma once

#include "core/reactor.h"
#include "harness/app.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

namespace eagain::scenarios {

enum class NaivePitfall : std::uint8_t {
    none,                          // the careful server
    ignores_partial_writes,        // send once, never look at the count
    eintr_is_fatal,                // EINTR on recv or send closes the connection
    drops_data_on_eagain,          // send() says EAGAIN: the rest of the output is thrown away
    et_stops_on_short_read,        // EPOLLET: stops reading when recv returns less than asked
    et_reads_once,                 // EPOLLET: one recv per edge, as under level triggering
    ignores_recv_zero,             // recv returns 0: nothing happens, the fd stays open
    oneshot_not_rearmed,           // EPOLLONESHOT: no EPOLL_CTL_MOD after an event
    trusts_length_field,           // waits for whatever body_len says: no max-frame check
    sends_without_nosignal,        // send(fd, buf, n, 0): EPIPE raises SIGPIPE
    decoder_assumes_whole_header,  // a header is never split across reads: a partial one is dropped
    one_frame_per_read,            // `if`, not `while`: one frame per read, the rest waits for the next
    unbounded_output,              // no high-water mark: reads on while the peer does not read its echoes
    accept_gives_up_on_eintr,      // EINTR or ECONNABORTED from accept4 closes the listener
};
std::string_view to_string(NaivePitfall pitfall) noexcept;

class NaiveEchoServer final : public harness::App, private Reactor::Handler {
public:
    NaiveEchoServer(const harness::AppContext& context, NaivePitfall pitfall);
    ~NaiveEchoServer() override;
    NaiveEchoServer(const NaiveEchoServer&) = delete;
    NaiveEchoServer& operator=(const NaiveEchoServer&) = delete;

    VoidResult start() override;
    void stop() override;
    bool done() const override { return true; }
    void act(std::string_view /*action*/) override {}
    // Only max_buffered_bytes: the most output one connection held unsent.
    harness::AppObservations observations() const override;

private:
    enum class Trigger : std::uint8_t { level, edge, oneshot };

    struct Connection final : Reactor::Handler {
        NaiveEchoServer* server = nullptr;
        int fd = -1;
        std::uint32_t interest = 0;        // as registered
        std::vector<std::uint8_t> input;   // received, not yet a whole frame
        std::vector<std::uint8_t> output;  // echoed, not yet sent
        bool peer_finished = false;        // recv returned 0: send what is owed, then close
        bool refused = false;              // a frame over the limit: shut down, discard until the peer closes
        void on_ready(std::uint32_t events) override { server->serve(*this, events); }
    };

    // The listener.
    void on_ready(std::uint32_t events) override;
    // One event on a connection. Every path that closes it returns at once:
    // closing destroys the Connection.
    void serve(Connection& c, std::uint32_t events);
    // false: the connection was closed.
    bool read(Connection& c);
    bool flush(Connection& c);
    bool discard(Connection& c);
    void take_frames(Connection& c);
    void refuse(Connection& c);
    void update_interest(Connection& c);
    std::uint32_t wanted_interest(const Connection& c) const;
    void close_connection(Connection& c);

    Reactor& reactor_;
    SockAddr address_;
    NaivePitfall pitfall_;
    Trigger trigger_ = Trigger::level;
    std::uint64_t max_frame_bytes_ = 0;
    std::size_t output_limit_bytes_ = 0;  // stop reading from a connection holding this much unsent
    std::uint64_t max_buffered_bytes_ = 0;
    int listener_ = -1;
    std::map<int, std::unique_ptr<Connection>> connections_;
};

// A factory for ScenarioRunOptions::apps["frame-echo"].
harness::AppFactory naive_echo(NaivePitfall pitfall);

}  // namespace eagain::scenarios
