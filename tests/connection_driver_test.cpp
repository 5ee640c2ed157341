// ConnectionDriver: the Connection policy over a real Transport and Reactor.
#include "core/connection_driver.h"

#include "core/linux_sys.h"
#include "tests/support/loopback.h"

#include <sys/epoll.h>
#include <catch2/catch.hpp>

#include <vector>

using namespace std::chrono_literals;

namespace {

struct CountingApp final : eagain::ConnectionDriver::App {
    std::vector<std::uint32_t> seqs;
    int closed = 0;
    void on_frame(eagain::ConnectionDriver& /*driver*/, const eagain::Frame& frame) override {
        seqs.push_back(eagain::DefaultHeader::parse(frame.header.first<eagain::DefaultHeader::size_bytes>()).seq);
    }
    void on_closed(eagain::ConnectionDriver& /*driver*/, const eagain::CloseInfo& /*info*/,
                   bool /*reconnecting*/) override {
        ++closed;
    }
};

}  // namespace

TEST_CASE("an edge-triggered connection whose receive buffer fills mid-burst still reads every frame",
          "[connection_driver]") {
    eagain::LinuxSys sys;
    const auto pair = eagain::test::connected_pair(sys);
    eagain::Reactor reactor(sys);
    CountingApp app;
    eagain::ConnectionConfig config;
    config.max_frame_bytes = 64;
    config.receive_buffer_bytes = 64;  // a few frames at a time
    eagain::TransportOptions transport;
    transport.trigger = eagain::TriggerMode::edge;
    eagain::ConnectionDriver server(reactor, app, eagain::ConnectionRole::server, config, transport, 1);
    server.start_accepted(pair.server, eagain::SockAddr{});

    // 2000 frames of 40 bytes in one burst: far more than the buffer holds,
    // so the reader stops with bytes still queued and no edge to come.
    constexpr std::uint32_t frames = 2000;
    eagain::ByteBuffer burst;
    for (std::uint32_t seq = 0; seq < frames; ++seq) {
        eagain::DefaultHeader header;
        header.cmd = 1;
        header.seq = seq;
        const std::array<std::uint8_t, 20> body{};
        REQUIRE(eagain::encode_frame(eagain::FrameSpec{}, header.bytes(), body, burst) == eagain::EncodeError::none);
    }
    std::size_t sent = 0;
    int idle_polls = 0;  // polls that delivered nothing: a stalled reader ends the loop
    while (idle_polls < 20 && (sent < burst.size() || app.seqs.size() < frames)) {
        if (sent < burst.size()) {
            const eagain::SizeResult r = sys.send(pair.client, burst.readable().subspan(sent), MSG_NOSIGNAL);
            if (r.ok())
                sent += r.value;
        }
        const std::size_t before = app.seqs.size();
        REQUIRE(reactor.poll(sent < burst.size() ? 0ms : 100ms).ok());
        idle_polls = app.seqs.size() == before ? idle_polls + 1 : 0;
    }
    REQUIRE(app.seqs.size() == frames);
    for (std::uint32_t seq = 0; seq < frames; ++seq)
        REQUIRE(app.seqs[seq] == seq);
    CHECK(app.closed == 0);
    (void)sys.close(pair.client);
}
