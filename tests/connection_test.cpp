// Connection, the sans-IO policy machine: every transition, and every policy
// (heartbeat, dead peer, backoff, timeouts, backpressure, limits, closing) in
// virtual time. The tests play the driver by hand: bytes go in through
// receive_space/on_received and come out through pending_output/on_sent.
#include "core/connection.h"
#include "tests/support/chunked.h"

#include <rapidcheck/catch.h>
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <set>
#include <utility>
#include <vector>

using namespace eagain;
using eagain::testing::OwnedFrame;
using S = ConnectionState;

namespace {

constexpr Nanos sec(std::int64_t n) {
    return std::chrono::seconds{n};
}
constexpr Nanos ms(std::int64_t n) {
    return std::chrono::milliseconds{n};
}
constexpr Nanos ns(std::int64_t n) {
    return Nanos{n};
}

constexpr std::uint32_t heartbeat_cmd = 99;

// Small limits so tests reach them with a few frames.
ConnectionConfig test_config() {
    ConnectionConfig config;
    config.max_frame_bytes = 1024;
    config.heartbeat_idle_timeout = sec(30);
    config.heartbeat_cmd = heartbeat_cmd;
    config.dead_peer_intervals = 3;
    config.connect_timeout = sec(5);
    config.close_timeout = sec(10);
    config.reconnect = false;
    config.reconnect_initial_delay = sec(1);
    config.reconnect_max_delay = sec(10);
    config.reconnect_jitter_percent = 0;
    config.output_high_water_bytes = 1000;
    config.output_low_water_bytes = 200;
    config.output_limit_bytes = 4000;
    return config;
}

ConnectionConfig reconnecting_config() {
    ConnectionConfig config = test_config();
    config.reconnect = true;
    return config;
}

std::vector<std::uint8_t> frame_bytes(std::uint32_t cmd, std::uint32_t seq, std::size_t body_bytes,
                                      std::uint32_t reserved1 = 0) {
    std::vector<std::uint8_t> body(body_bytes);
    for (std::size_t i = 0; i < body_bytes; ++i) {
        body[i] = static_cast<std::uint8_t>(seq + i);
    }
    ByteBuffer out;
    const DefaultHeader header{cmd, seq, 0, reserved1, 0};
    REQUIRE(encode_frame(FrameSpec{}, header.bytes(), body, out) == EncodeError::none);
    return {out.readable().begin(), out.readable().end()};
}

std::vector<std::uint8_t> ping_bytes(std::uint32_t seq) {
    return frame_bytes(heartbeat_cmd, seq, 0, 0);
}
std::vector<std::uint8_t> pong_bytes(std::uint32_t seq) {
    return frame_bytes(heartbeat_cmd, seq, 0, 1);
}

std::vector<std::uint8_t> concat(std::initializer_list<std::vector<std::uint8_t>> parts) {
    std::vector<std::uint8_t> out;
    for (const auto& part : parts) {
        out.insert(out.end(), part.begin(), part.end());
    }
    return out;
}

// What recv() would do: the bytes land in the connection's receive space.
void receive(Connection& c, Nanos now, const std::vector<std::uint8_t>& bytes) {
    const std::span<std::uint8_t> space = c.receive_space(bytes.size());
    REQUIRE(space.size() == bytes.size());
    if (!bytes.empty()) {
        std::memcpy(space.data(), bytes.data(), bytes.size());
    }
    c.on_received(now, bytes.size());
}

std::vector<OwnedFrame> take(Connection& c, Nanos now) {
    std::vector<OwnedFrame> frames;
    const std::size_t n = c.take_frames(now, [&](const Frame& f) { frames.push_back(eagain::testing::own(f)); });
    CHECK(n == frames.size());
    return frames;
}

// What send() would do with all of the pending output.
std::vector<std::uint8_t> flush(Connection& c, Nanos now) {
    const std::span<const std::uint8_t> out = c.pending_output();
    std::vector<std::uint8_t> bytes(out.begin(), out.end());
    c.on_sent(now, bytes.size());
    return bytes;
}

std::vector<Action> actions(Connection& c) {
    std::vector<Action> out;
    while (auto a = c.poll_action()) {
        out.push_back(*a);
    }
    return out;
}

std::vector<Event> events(Connection& c) {
    std::vector<Event> out;
    while (auto e = c.poll_event()) {
        out.push_back(*e);
    }
    return out;
}

std::vector<EventKind> kinds(const std::vector<Event>& list) {
    std::vector<EventKind> out;
    for (const Event& e : list) {
        out.push_back(e.kind);
    }
    return out;
}

std::vector<ActionKind> kinds(const std::vector<Action>& list) {
    std::vector<ActionKind> out;
    for (const Action& a : list) {
        out.push_back(a.kind);
    }
    return out;
}

std::vector<std::pair<S, S>> edges(const Connection& c) {
    std::vector<std::pair<S, S>> out;
    for (const Transition& t : c.transitions()) {
        out.emplace_back(t.from, t.to);
    }
    return out;
}

void clear_queues(Connection& c) {
    actions(c);
    events(c);
}

DefaultHeader app_header(std::uint32_t seq) {
    return DefaultHeader{7, seq, 0, 0, 0};
}

std::vector<std::uint8_t> body_of(std::size_t n) {
    return std::vector<std::uint8_t>(n, 0x5A);
}

// ---------------------------------------------------------------------------
// Fixture builders, one per state; queues drained unless said otherwise.

Connection idle_client(const ConnectionConfig& config = test_config(), std::uint64_t seed = 1) {
    return Connection(ConnectionRole::client, config, seed);
}

Connection connecting_client(Nanos now, const ConnectionConfig& config = test_config(), std::uint64_t seed = 1) {
    Connection c = idle_client(config, seed);
    REQUIRE(c.connect(now) == StartError::none);
    clear_queues(c);
    return c;
}

Connection established_client(Nanos now, const ConnectionConfig& config = test_config(), std::uint64_t seed = 1) {
    Connection c = connecting_client(now, config, seed);
    c.on_connected(now);
    clear_queues(c);
    return c;
}

Connection established_server(Nanos now, const ConnectionConfig& config = test_config()) {
    Connection c(ConnectionRole::server, config, 1);
    REQUIRE(c.on_accepted(now) == StartError::none);
    clear_queues(c);
    return c;
}

// The peer's FIN seen, one of its frames not yet taken by the app.
Connection half_closed_remote(Nanos now, const ConnectionConfig& config = test_config()) {
    Connection c = established_client(now, config);
    receive(c, now, frame_bytes(7, 1, 4));
    c.on_peer_eof(now);
    REQUIRE(c.state() == S::half_closed_remote);
    clear_queues(c);
    return c;
}

// close() with one frame of output not yet sent.
Connection closing(Nanos now, const ConnectionConfig& config = test_config()) {
    Connection c = established_client(now, config);
    REQUIRE(c.send_frame(now, app_header(1), body_of(10)) == SendError::none);
    c.close(now);
    REQUIRE(c.state() == S::closing);
    clear_queues(c);
    return c;
}

// close() done and our FIN sent; the peer's not yet.
Connection half_closed_local(Nanos now, const ConnectionConfig& config = test_config()) {
    Connection c = established_client(now, config);
    c.close(now);
    REQUIRE(c.state() == S::half_closed_local);
    clear_queues(c);
    return c;
}

// A reconnecting client whose first connect was refused.
Connection backoff_client(Nanos now, const ConnectionConfig& config = reconnecting_config()) {
    Connection c = connecting_client(now, config);
    c.on_connect_failed(now, ECONNREFUSED);
    REQUIRE(c.state() == S::backoff);
    clear_queues(c);
    return c;
}

Connection closed_client(Nanos now) {
    Connection c = established_client(now);
    c.on_error(now, ECONNRESET);
    REQUIRE(c.state() == S::closed);
    clear_queues(c);
    return c;
}

}  // namespace

// ===========================================================================
// Names and configuration

TEST_CASE("every enum value has its own name", "[connection]") {
    CHECK(to_string(ConnectionRole::client) == "client");
    CHECK(to_string(ConnectionRole::server) == "server");
    CHECK(to_string(S::idle) == "idle");
    CHECK(to_string(S::connecting) == "connecting");
    CHECK(to_string(S::established) == "established");
    CHECK(to_string(S::half_closed_local) == "half_closed_local");
    CHECK(to_string(S::half_closed_remote) == "half_closed_remote");
    CHECK(to_string(S::closing) == "closing");
    CHECK(to_string(S::closed) == "closed");
    CHECK(to_string(S::backoff) == "backoff");
    CHECK(to_string(CloseReason::local_close) == "local_close");
    CHECK(to_string(CloseReason::peer_closed) == "peer_closed");
    CHECK(to_string(CloseReason::peer_closed_mid_frame) == "peer_closed_mid_frame");
    CHECK(to_string(CloseReason::reset) == "reset");
    CHECK(to_string(CloseReason::broken_pipe) == "broken_pipe");
    CHECK(to_string(CloseReason::io_error) == "io_error");
    CHECK(to_string(CloseReason::dead_peer) == "dead_peer");
    CHECK(to_string(CloseReason::connect_failed) == "connect_failed");
    CHECK(to_string(CloseReason::connect_timeout) == "connect_timeout");
    CHECK(to_string(CloseReason::close_timeout) == "close_timeout");
    CHECK(to_string(CloseReason::hostile_frame) == "hostile_frame");
    CHECK(to_string(CloseReason::output_limit_exceeded) == "output_limit_exceeded");
    CHECK(to_string(ConfigError::none) == "none");
    CHECK(to_string(ConfigError::max_frame_below_header) == "max_frame_below_header");
    CHECK(to_string(ConfigError::max_frame_above_length_field) == "max_frame_above_length_field");
    CHECK(to_string(ConfigError::receive_buffer_below_max_frame) == "receive_buffer_below_max_frame");
    CHECK(to_string(ConfigError::dead_peer_without_heartbeat) == "dead_peer_without_heartbeat");
    CHECK(to_string(ConfigError::negative_duration) == "negative_duration");
    CHECK(to_string(ConfigError::water_marks_out_of_order) == "water_marks_out_of_order");
    CHECK(to_string(ConfigError::limit_below_header) == "limit_below_header");
    CHECK(to_string(ConfigError::jitter_above_100_percent) == "jitter_above_100_percent");
    CHECK(to_string(ConfigError::reconnect_delay_invalid) == "reconnect_delay_invalid");
    CHECK(to_string(ConfigError::reconnect_on_server) == "reconnect_on_server");
    CHECK(to_string(ActionKind::start_connect) == "start_connect");
    CHECK(to_string(ActionKind::shutdown_write) == "shutdown_write");
    CHECK(to_string(ActionKind::close_socket) == "close_socket");
    CHECK(to_string(EventKind::established) == "established");
    CHECK(to_string(EventKind::closed) == "closed");
    CHECK(to_string(EventKind::reconnect_scheduled) == "reconnect_scheduled");
    CHECK(to_string(EventKind::heartbeat_sent) == "heartbeat_sent");
    CHECK(to_string(EventKind::backpressure_on) == "backpressure_on");
    CHECK(to_string(EventKind::backpressure_off) == "backpressure_off");
    CHECK(to_string(SendError::none) == "none");
    CHECK(to_string(SendError::wrong_state) == "wrong_state");
    CHECK(to_string(SendError::frame_too_large) == "frame_too_large");
    CHECK(to_string(SendError::output_limit_exceeded) == "output_limit_exceeded");
    CHECK(to_string(StartError::none) == "none");
    CHECK(to_string(StartError::wrong_state) == "wrong_state");
    CHECK(to_string(StartError::wrong_role) == "wrong_role");
    CHECK(to_string(TimerKind::connect_timeout) == "connect_timeout");
    CHECK(to_string(TimerKind::reconnect) == "reconnect");
    CHECK(to_string(TimerKind::close_timeout) == "close_timeout");
    CHECK(to_string(TimerKind::dead_peer) == "dead_peer");
    CHECK(to_string(TimerKind::heartbeat) == "heartbeat");
    CHECK(to_string(Transition{sec(1), S::connecting, S::established}) == "connecting => established");
}

TEST_CASE("close reasons describe themselves with errno and frame error", "[connection]") {
    CHECK(describe(CloseInfo{CloseReason::local_close, 0, {}}) == "local_close");
    CHECK(describe(CloseInfo{CloseReason::reset, ECONNRESET, {}}) == "reset (ECONNRESET)");
    const FrameError error{FrameErrorKind::negative_length, 8, 0xffffffff};
    CHECK(describe(CloseInfo{CloseReason::hostile_frame, 0, error}) ==
          "hostile_frame: length field at stream offset 8 holds 0xffffffff: negative_length");
}

TEST_CASE("the default config is valid and each rule of validate() is enforced", "[connection]") {
    const auto client = ConnectionRole::client;
    CHECK(validate(ConnectionConfig{}, client) == ConfigError::none);
    CHECK(validate(ConnectionConfig{}, ConnectionRole::server) == ConfigError::none);
    CHECK(ConnectionConfig{}.heartbeat_idle_timeout == sec(30));
    ConnectionConfig c = test_config();
    REQUIRE(validate(c, client) == ConfigError::none);
    SECTION("max frame") {
        c.max_frame_bytes = 19;
        CHECK(validate(c, client) == ConfigError::max_frame_below_header);
        c.max_frame_bytes = 20ULL + 0x8000'0000ULL;
        CHECK(validate(c, client) == ConfigError::max_frame_above_length_field);
    }
    SECTION("receive buffer") {
        c.receive_buffer_bytes = 1000;
        CHECK(validate(c, client) == ConfigError::receive_buffer_below_max_frame);
    }
    SECTION("durations") {
        c.close_timeout = ns(-1);
        CHECK(validate(c, client) == ConfigError::negative_duration);
    }
    SECTION("dead peer needs heartbeats") {
        c.heartbeat_idle_timeout = ns(0);
        CHECK(validate(c, client) == ConfigError::dead_peer_without_heartbeat);
        c.dead_peer_intervals = 0;
        CHECK(validate(c, client) == ConfigError::none);
    }
    SECTION("water marks") {
        c.output_low_water_bytes = 1001;
        CHECK(validate(c, client) == ConfigError::water_marks_out_of_order);
        c.output_low_water_bytes = 200;
        c.output_high_water_bytes = 4000;
        CHECK(validate(c, client) == ConfigError::water_marks_out_of_order);
        c.output_low_water_bytes = 0;
        c.output_high_water_bytes = 0;
        c.output_limit_bytes = 19;
        CHECK(validate(c, client) == ConfigError::limit_below_header);
    }
    SECTION("an output limit that holds a frame at the maximum") {
        c.output_limit_bytes = c.max_frame_bytes - 1;
        c.output_high_water_bytes = c.output_low_water_bytes = 0;
        CHECK(validate(c, client) == ConfigError::output_limit_below_max_frame);
        c.output_limit_bytes = c.max_frame_bytes;
        CHECK(validate(c, client) == ConfigError::none);
        // The defaults: a 16 MiB frame fits (it did not, at 8 MiB).
        const ConnectionConfig defaults;
        CHECK(defaults.output_limit_bytes >= defaults.max_frame_bytes);
    }
    SECTION("jitter") {
        c.reconnect_jitter_percent = 101;
        CHECK(validate(c, client) == ConfigError::jitter_above_100_percent);
    }
    SECTION("reconnect") {
        c.reconnect = true;
        CHECK(validate(c, ConnectionRole::server) == ConfigError::reconnect_on_server);
        c.reconnect_initial_delay = ns(0);
        CHECK(validate(c, client) == ConfigError::reconnect_delay_invalid);
        c.reconnect_initial_delay = sec(11);
        CHECK(validate(c, client) == ConfigError::reconnect_delay_invalid);
    }
}

TEST_CASE("the transition table allows exactly the diagram's edges", "[connection]") {
    const std::vector<S> all{S::idle,    S::connecting, S::established, S::half_closed_local, S::half_closed_remote,
                             S::closing, S::closed,     S::backoff};
    std::size_t allowed = 0;
    for (S from : all) {
        for (S to : all) {
            allowed += transition_allowed(from, to) ? 1U : 0U;
            if (from == S::closed || from == to) {
                CHECK_FALSE(transition_allowed(from, to));
            }
        }
    }
    CHECK(allowed == 19);
}

// ===========================================================================
// Transitions, state by state

TEST_CASE("idle: connect, accept, close", "[connection]") {
    const Nanos t = sec(1);
    SECTION("a client's connect() starts attempt 1") {
        Connection c = idle_client();
        CHECK(c.state() == S::idle);
        CHECK(c.next_deadline() == std::nullopt);
        CHECK_FALSE(c.wants_read());
        CHECK_FALSE(c.wants_write());
        REQUIRE(c.connect(t) == StartError::none);
        CHECK(c.state() == S::connecting);
        CHECK(actions(c) == std::vector<Action>{Action{ActionKind::start_connect, 1}});
        CHECK(c.wants_write());  // writability reports the connect's end
        CHECK(c.next_deadline() == t + sec(5));
        CHECK(c.connect(t) == StartError::wrong_state);
    }
    SECTION("a server is established when accepted") {
        Connection c(ConnectionRole::server, test_config(), 1);
        CHECK(c.connect(t) == StartError::wrong_role);
        REQUIRE(c.on_accepted(t) == StartError::none);
        CHECK(c.state() == S::established);
        CHECK(kinds(events(c)) == std::vector<EventKind>{EventKind::established});
        CHECK(actions(c).empty());
        CHECK(c.on_accepted(t) == StartError::wrong_state);
    }
    SECTION("on_accepted() is for servers") {
        Connection c = idle_client();
        CHECK(c.on_accepted(t) == StartError::wrong_role);
        CHECK(c.state() == S::idle);
    }
    SECTION("close() closes at once, with no socket to close") {
        Connection c = idle_client();
        c.close(t);
        CHECK(c.state() == S::closed);
        CHECK(actions(c).empty());
        const auto e = events(c);
        REQUIRE(e.size() == 1);
        CHECK(e[0].kind == EventKind::closed);
        CHECK(e[0].close.reason == CloseReason::local_close);
        CHECK(c.send_frame(t, app_header(1), {}) == SendError::wrong_state);
    }
}

TEST_CASE("connecting: success, failure, timeout, close", "[connection]") {
    const Nanos t = sec(1);
    SECTION("on_connected establishes") {
        Connection c = connecting_client(t);
        c.on_connected(t + ms(3));
        CHECK(c.state() == S::established);
        const auto e = events(c);
        REQUIRE(e.size() == 1);
        CHECK(e[0].kind == EventKind::established);
        CHECK(e[0].at == t + ms(3));
        CHECK(c.wants_read());
        CHECK_FALSE(c.wants_write());
    }
    SECTION("a refused connect closes with connect_failed and its errno") {
        Connection c = connecting_client(t);
        c.on_connect_failed(t, ECONNREFUSED);
        CHECK(c.state() == S::closed);
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
        const auto e = events(c);
        REQUIRE(e.size() == 1);
        CHECK(e[0].close == CloseInfo{CloseReason::connect_failed, ECONNREFUSED, {}});
        CHECK_FALSE(e[0].reconnecting);
        REQUIRE(c.close_info());
        CHECK(c.close_info()->errno_value == ECONNREFUSED);
    }
    SECTION("an error while connecting is a failed connect") {
        Connection c = connecting_client(t);
        c.on_error(t, ECONNREFUSED);
        CHECK(c.close_info() == CloseInfo{CloseReason::connect_failed, ECONNREFUSED, {}});
    }
    SECTION("a reconnecting client backs off instead") {
        Connection c = connecting_client(t, reconnecting_config());
        c.on_connect_failed(t, ECONNREFUSED);
        CHECK(c.state() == S::backoff);
        const auto e = events(c);
        REQUIRE(e.size() == 2);
        CHECK(e[0].kind == EventKind::closed);
        CHECK(e[0].reconnecting);
        CHECK(e[1].kind == EventKind::reconnect_scheduled);
        CHECK(e[1].reconnect_at == t + sec(1));
        CHECK(e[1].retry == 1);
    }
    SECTION("close() closes the socket being connected") {
        Connection c = connecting_client(t, reconnecting_config());
        c.close(t);
        CHECK(c.state() == S::closed);  // no reconnect after a local close
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
    }
    SECTION("nothing is sent before the connection is established") {
        Connection c = connecting_client(t);
        CHECK(c.send_frame(t, app_header(1), {}) == SendError::wrong_state);
        CHECK(c.pending_output().empty());
        CHECK(c.receive_space(100).empty());
    }
}

TEST_CASE("connect timeout: connecting longer than connect_timeout fails with ETIMEDOUT", "[connection]") {
    const Nanos t = sec(100);
    SECTION("without reconnect: closed") {
        Connection c = connecting_client(t);
        REQUIRE(c.next_deadline() == t + sec(5));
        c.tick(t + sec(5) - ns(1));
        CHECK(c.state() == S::connecting);
        CHECK(actions(c).empty());
        c.tick(t + sec(5));
        CHECK(c.state() == S::closed);
        CHECK(c.close_info() == CloseInfo{CloseReason::connect_timeout, ETIMEDOUT, {}});
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
        CHECK(c.next_deadline() == std::nullopt);
    }
    SECTION("with reconnect: backoff, and the next attempt has its own timeout") {
        Connection c = connecting_client(t, reconnecting_config());
        c.tick(t + sec(5));
        CHECK(c.state() == S::backoff);
        CHECK(c.next_deadline() == t + sec(6));
        c.tick(t + sec(6));
        CHECK(c.state() == S::connecting);
        CHECK(c.next_deadline() == t + sec(11));
    }
    SECTION("connect_timeout 0 never times out") {
        ConnectionConfig config = test_config();
        config.connect_timeout = ns(0);
        Connection c = connecting_client(t, config);
        CHECK(c.next_deadline() == std::nullopt);
        c.tick(t + sec(100000));
        CHECK(c.state() == S::connecting);
    }
}

TEST_CASE("established: peer FIN, close, errors", "[connection]") {
    const Nanos t = sec(1);
    SECTION("the peer's FIN with nothing owed closes through half_closed_remote and closing") {
        Connection c = established_client(t);
        c.on_peer_eof(t + sec(1));
        CHECK(c.state() == S::closed);
        CHECK(c.close_info() == CloseInfo{CloseReason::peer_closed, 0, {}});
        CHECK(edges(c) == std::vector<std::pair<S, S>>{{S::idle, S::connecting},
                                                       {S::connecting, S::established},
                                                       {S::established, S::half_closed_remote},
                                                       {S::half_closed_remote, S::closing},
                                                       {S::closing, S::closed}});
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
    }
    SECTION("close() with nothing owed sends our FIN at once") {
        Connection c = established_client(t);
        c.close(t);
        CHECK(c.state() == S::half_closed_local);
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::shutdown_write});
        CHECK(c.wants_read());  // still reading until the peer's FIN
    }
    SECTION("ECONNRESET ends with reset") {
        Connection c = established_client(t);
        c.on_error(t, ECONNRESET);
        CHECK(c.state() == S::closed);
        CHECK(c.close_info() == CloseInfo{CloseReason::reset, ECONNRESET, {}});
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
    }
    SECTION("EPIPE ends with broken_pipe") {
        Connection c = established_client(t);
        c.on_error(t, EPIPE);
        CHECK(c.close_info() == CloseInfo{CloseReason::broken_pipe, EPIPE, {}});
    }
    SECTION("another errno ends with io_error") {
        Connection c = established_client(t);
        c.on_error(t, ETIMEDOUT);
        CHECK(c.close_info() == CloseInfo{CloseReason::io_error, ETIMEDOUT, {}});
    }
    SECTION("a reconnecting client retries after losing the connection") {
        Connection c = established_client(t, reconnecting_config());
        c.on_error(t + sec(2), ECONNRESET);
        CHECK(c.state() == S::backoff);
        CHECK(c.next_deadline() == t + sec(3));
    }
    SECTION("a server never retries") {
        Connection c = established_server(t);
        c.on_error(t, ECONNRESET);
        CHECK(c.state() == S::closed);
    }
}

TEST_CASE("half_closed_remote: frames before the FIN reach the app first", "[connection]") {
    const Nanos t = sec(1);
    SECTION("taking the frames moves on to closing, and the reply is flushed before closing") {
        Connection c = half_closed_remote(t);
        CHECK_FALSE(c.wants_read());  // nothing more will come
        const auto frames = c.take_frames(t, [&](const Frame&) {
            CHECK(c.send_frame(t, app_header(2), body_of(3)) == SendError::none);  // the reply owed
        });
        CHECK(frames == 1);
        CHECK(c.state() == S::closing);
        CHECK(c.send_frame(t, app_header(3), {}) == SendError::wrong_state);
        CHECK(c.wants_write());
        CHECK(actions(c).empty());
        const auto sent = flush(c, t + ms(1));
        CHECK(sent.size() == 23);
        CHECK(c.state() == S::closed);
        CHECK(c.close_info() == CloseInfo{CloseReason::peer_closed, 0, {}});
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
    }
    SECTION("the app may send outside the callback too, until the frames are taken") {
        Connection c = half_closed_remote(t);
        CHECK(c.send_frame(t, app_header(2), {}) == SendError::none);
    }
    SECTION("close() here ends as a local close") {
        Connection c = half_closed_remote(t);
        c.close(t);
        CHECK(c.state() == S::closing);
        CHECK(take(c, t).size() == 1);  // still delivered
        CHECK(c.state() == S::closed);
        CHECK(c.close_info()->reason == CloseReason::local_close);
    }
    SECTION("an error before the frames are taken ends with it") {
        Connection c = half_closed_remote(t);
        c.on_error(t, ECONNRESET);
        CHECK(c.state() == S::closed);
        CHECK(take(c, t).empty());  // nothing after closed
    }
}

TEST_CASE("closing: the output owed is flushed before our FIN", "[connection]") {
    const Nanos t = sec(1);
    Connection c = closing(t);
    CHECK(c.send_frame(t, app_header(2), {}) == SendError::wrong_state);
    CHECK(c.wants_write());
    SECTION("a partial send is not enough") {
        c.on_sent(t, 5);
        CHECK(c.state() == S::closing);
        CHECK(actions(c).empty());
        flush(c, t);
        CHECK(c.state() == S::half_closed_local);
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::shutdown_write});
    }
    SECTION("the peer's FIN while flushing: closed once flushed") {
        c.on_peer_eof(t);
        CHECK(c.state() == S::closing);
        flush(c, t);
        CHECK(c.state() == S::closed);
        CHECK(c.close_info()->reason == CloseReason::local_close);
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
    }
    SECTION("close() again changes nothing") {
        c.close(t);
        CHECK(c.state() == S::closing);
    }
    SECTION("a peer that never reads makes the close time out") {
        CHECK(c.next_deadline() == t + sec(10));
        c.tick(t + sec(10));
        CHECK(c.state() == S::closed);
        CHECK(c.close_info()->reason == CloseReason::close_timeout);
        CHECK(c.pending_output().empty());
    }
}

TEST_CASE("half_closed_local: read until the peer's FIN", "[connection]") {
    const Nanos t = sec(1);
    Connection c = half_closed_local(t);
    SECTION("frames still arrive, then the FIN closes") {
        receive(c, t + sec(1), frame_bytes(7, 5, 2));
        c.on_peer_eof(t + sec(1));
        CHECK(c.state() == S::half_closed_local);  // the frame first
        const auto frames = take(c, t + sec(1));
        REQUIRE(frames.size() == 1);
        CHECK(c.state() == S::closed);
        CHECK(c.close_info() == CloseInfo{CloseReason::local_close, 0, {}});
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
        CHECK(c.send_frame(t + sec(1), app_header(1), {}) == SendError::wrong_state);
    }
    SECTION("no FIN within close_timeout") {
        c.tick(t + sec(10) - ns(1));
        CHECK(c.state() == S::half_closed_local);
        c.tick(t + sec(10));
        CHECK(c.close_info()->reason == CloseReason::close_timeout);
    }
    SECTION("a FIN mid-frame is reported") {
        receive(c, t, std::vector<std::uint8_t>(10, 0));
        c.on_peer_eof(t);
        CHECK(take(c, t).empty());
        CHECK(c.close_info()->reason == CloseReason::peer_closed_mid_frame);
    }
    SECTION("no pings after our FIN") {
        c.tick(t + sec(9));
        CHECK(c.stats().pings_sent == 0);
    }
}

TEST_CASE("backoff: the retry starts at its time, close() cancels it", "[connection]") {
    const Nanos t = sec(1);
    Connection c = backoff_client(t);
    CHECK(c.next_deadline() == t + sec(1));
    CHECK_FALSE(c.wants_read());
    CHECK_FALSE(c.wants_write());
    SECTION("tick at the time") {
        c.tick(t + sec(1));
        CHECK(c.state() == S::connecting);
        CHECK(actions(c) == std::vector<Action>{Action{ActionKind::start_connect, 2}});
    }
    SECTION("close()") {
        c.close(t);
        CHECK(c.state() == S::closed);
        CHECK(actions(c).empty());  // no socket to close
        CHECK(c.next_deadline() == std::nullopt);
    }
}

TEST_CASE("closed: final, socket inputs are stale and produce nothing", "[connection]") {
    const Nanos t = sec(1);
    Connection c = closed_client(t);
    c.on_error(t, ECONNRESET);
    c.on_peer_eof(t);
    c.on_connected(t);
    c.on_connect_failed(t, ECONNREFUSED);
    c.on_sent(t, 0);
    c.tick(t + sec(1000));
    c.close(t + sec(1000));
    CHECK(c.stats().stale_inputs == 4);
    CHECK(c.state() == S::closed);
    CHECK(actions(c).empty());
    CHECK(events(c).empty());
    CHECK(c.receive_space(10).empty());
    c.on_received(t + sec(1000), 0);
    CHECK(c.pending_output().empty());
    CHECK(c.next_deadline() == std::nullopt);
    CHECK(c.send_frame(t + sec(1000), app_header(1), {}) == SendError::wrong_state);
    CHECK(c.connect(t + sec(1000)) == StartError::wrong_state);
}

TEST_CASE("every allowed transition is taken by some story", "[connection]") {
    const Nanos t = sec(1);
    std::set<std::pair<S, S>> seen;
    const auto record = [&seen](const Connection& c) {
        for (const Transition& tr : c.transitions()) {
            seen.emplace(tr.from, tr.to);
        }
    };
    {
        Connection c = established_server(t);
        record(c);
    }
    {
        Connection c = idle_client();
        c.close(t);
        record(c);
    }
    {
        Connection c = connecting_client(t);
        c.on_connect_failed(t, ECONNREFUSED);
        record(c);
    }
    {
        Connection c = backoff_client(t);  // connecting -> backoff
        c.tick(t + sec(1));                // backoff -> connecting
        c.on_connected(t + sec(1));
        c.on_error(t + sec(1), ECONNRESET);  // established -> backoff
        c.close(t + sec(1));                 // backoff -> closed
        record(c);
    }
    {
        Connection c = established_client(t);
        c.on_error(t, ECONNRESET);  // established -> closed
        record(c);
    }
    {
        Connection c = established_client(t);
        c.on_peer_eof(t);  // established -> half_closed_remote -> closing -> closed
        record(c);
    }
    {
        Connection c = half_closed_remote(t);
        c.on_error(t, ECONNRESET);  // half_closed_remote -> closed
        record(c);
    }
    {
        Connection c = half_closed_remote(t, reconnecting_config());
        c.on_error(t, ECONNRESET);  // half_closed_remote -> backoff
        record(c);
    }
    {
        Connection c = established_client(t, reconnecting_config());
        REQUIRE(c.send_frame(t, app_header(1), {}) == SendError::none);
        c.on_peer_eof(t);  // ... -> closing, flushing
        flush(c, t);       // closing -> backoff
        record(c);
    }
    {
        Connection c = closing(t);
        flush(c, t);       // closing -> half_closed_local
        c.on_peer_eof(t);  // half_closed_local -> closed
        record(c);
    }
    std::set<std::pair<S, S>> allowed;
    const std::vector<S> all{S::idle,    S::connecting, S::established, S::half_closed_local, S::half_closed_remote,
                             S::closing, S::closed,     S::backoff};
    for (S from : all) {
        for (S to : all) {
            if (transition_allowed(from, to)) {
                allowed.emplace(from, to);
            }
        }
    }
    CHECK(seen == allowed);
}

TEST_CASE("the history keeps the last transitions with their times", "[connection]") {
    Connection c = backoff_client(sec(1));
    for (int i = 0; i < 40; ++i) {
        const Nanos now = *c.next_deadline();
        c.tick(now);
        c.on_connect_failed(now, ECONNREFUSED);
        clear_queues(c);
    }
    CHECK(c.transition_count() == 2 + 80);
    const auto history = c.transitions();
    REQUIRE(history.size() == Connection::history_capacity);
    CHECK(history.back().to == S::backoff);
    CHECK(history.back().from == S::connecting);
    for (std::size_t i = 1; i < history.size(); ++i) {
        CHECK(history[i].from == history[i - 1].to);
        CHECK(history[i].at >= history[i - 1].at);
    }
}

// ===========================================================================
// Receiving

TEST_CASE("frames are views into the receive space, delivered in order", "[connection]") {
    const Nanos t = sec(1);
    Connection c = established_server(t);
    const auto stream = concat({frame_bytes(7, 1, 5), frame_bytes(7, 2, 0), frame_bytes(7, 3, 100)});
    const std::span<std::uint8_t> space = c.receive_space(stream.size());
    REQUIRE(space.size() == stream.size());
    std::memcpy(space.data(), stream.data(), stream.size());
    c.on_received(t, stream.size());
    std::vector<const std::uint8_t*> headers;
    std::vector<std::uint32_t> seqs;
    const std::size_t n = c.take_frames(t, [&](const Frame& f) {
        headers.push_back(f.header.data());
        seqs.push_back(DefaultHeader::parse(f.header.first<20>()).seq);
    });
    CHECK(n == 3);
    CHECK(seqs == std::vector<std::uint32_t>{1, 2, 3});
    REQUIRE(headers.size() == 3);
    CHECK(headers[0] == space.data());  // no copy
    CHECK(headers[1] == space.data() + 25);
    CHECK(c.stats().frames_delivered == 3);
    CHECK(c.stats().bytes_received == stream.size());
}

TEST_CASE("a frame split across receives is delivered once whole", "[connection]") {
    const Nanos t = sec(1);
    Connection c = established_server(t);
    const auto frame = frame_bytes(7, 1, 30);
    receive(c, t, {frame.begin(), frame.begin() + 12});
    CHECK(take(c, t).empty());
    c.on_received(t, 0);  // an EAGAIN between: nothing
    receive(c, t, {frame.begin() + 12, frame.end()});
    const auto frames = take(c, t);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].body.size() == 30);
}

TEST_CASE("a hostile frame closes with hostile_frame carrying the FrameError", "[connection]") {
    const Nanos t = sec(1);
    SECTION("negative length, after the good frame before it") {
        Connection c = established_server(t);
        const DefaultHeader bad{7, 2, 0xffffffff, 0, 0};
        const auto bad_bytes = bad.bytes();
        receive(c, t, concat({frame_bytes(7, 1, 3), {bad_bytes.begin(), bad_bytes.end()}}));
        const auto frames = take(c, t);
        CHECK(frames.size() == 1);
        CHECK(c.state() == S::closed);
        REQUIRE(c.close_info());
        CHECK(c.close_info()->reason == CloseReason::hostile_frame);
        REQUIRE(c.close_info()->frame_error);
        CHECK(*c.close_info()->frame_error == FrameError{FrameErrorKind::negative_length, 23 + 8, 0xffffffff});
        CHECK(describe(*c.close_info()) ==
              "hostile_frame: length field at stream offset 31 holds 0xffffffff: negative_length");
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
        const auto e = events(c);
        REQUIRE(e.size() == 1);
        CHECK(e[0].close == *c.close_info());
    }
    SECTION("a frame above max_frame_bytes") {
        Connection c = established_server(t);
        const DefaultHeader big{7, 1, 5000, 0, 0};
        const auto bytes = big.bytes();
        receive(c, t, {bytes.begin(), bytes.end()});
        take(c, t);
        REQUIRE(c.close_info());
        CHECK(c.close_info()->frame_error->kind == FrameErrorKind::too_large);
    }
    SECTION("a reconnecting client starts the next connection with a clean decoder") {
        Connection c = established_client(t, reconnecting_config());
        const DefaultHeader bad{7, 2, 0xffffffff, 0, 0};
        const auto bad_bytes = bad.bytes();
        receive(c, t, {bad_bytes.begin(), bad_bytes.end()});
        take(c, t);
        CHECK(c.state() == S::backoff);
        c.tick(t + sec(1));
        c.on_connected(t + sec(1));
        receive(c, t + sec(1), frame_bytes(7, 9, 1));
        const auto frames = take(c, t + sec(1));
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].stream_offset == 0);
    }
}

TEST_CASE("peer FIN: remaining frames delivered, owed output flushed, then closed", "[connection]") {
    const Nanos t = sec(1);
    Connection c = established_server(t);
    REQUIRE(c.send_frame(t, app_header(1), body_of(50)) == SendError::none);
    receive(c, t, concat({frame_bytes(7, 1, 3), frame_bytes(7, 2, 3)}));
    c.on_peer_eof(t);
    CHECK(c.state() == S::half_closed_remote);
    std::vector<std::uint32_t> replied;
    c.take_frames(t, [&](const Frame& f) {
        const auto seq = DefaultHeader::parse(f.header.first<20>()).seq;
        replied.push_back(seq);
        REQUIRE(c.send_frame(t, app_header(100 + seq), {}) == SendError::none);
    });
    CHECK(replied == std::vector<std::uint32_t>{1, 2});
    CHECK(c.state() == S::closing);
    CHECK(actions(c).empty());
    const auto sent = flush(c, t + ms(1));
    CHECK(sent.size() == 70 + 20 + 20);
    CHECK(c.state() == S::closed);
    CHECK(c.close_info() == CloseInfo{CloseReason::peer_closed, 0, {}});
    CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
    CHECK(edges(c) == std::vector<std::pair<S, S>>{{S::idle, S::established},
                                                   {S::established, S::half_closed_remote},
                                                   {S::half_closed_remote, S::closing},
                                                   {S::closing, S::closed}});
}

TEST_CASE("peer FIN inside a frame closes with peer_closed_mid_frame", "[connection]") {
    const Nanos t = sec(1);
    Connection c = established_server(t);
    const auto frame = frame_bytes(7, 1, 10);
    receive(c, t, {frame.begin(), frame.begin() + 25});
    c.on_peer_eof(t);
    take(c, t);
    CHECK(c.state() == S::closed);
    CHECK(c.close_info()->reason == CloseReason::peer_closed_mid_frame);
}

// ===========================================================================
// Heartbeat

TEST_CASE("a ping goes out exactly heartbeat_idle_timeout after the last traffic", "[connection][heartbeat]") {
    const Nanos t = sec(7);
    Connection c = established_client(t);
    REQUIRE(c.next_deadline() == t + sec(30));
    SECTION("not a nanosecond early") {
        c.tick(t + sec(30) - ns(1));
        CHECK(c.pending_output().empty());
        CHECK(events(c).empty());
    }
    SECTION("at the deadline: a header-only frame with the heartbeat cmd") {
        c.tick(t + sec(30));
        const auto e = events(c);
        REQUIRE(e.size() == 1);
        CHECK(e[0].kind == EventKind::heartbeat_sent);
        CHECK(e[0].at == t + sec(30));
        const auto sent = flush(c, t + sec(30));
        CHECK(sent == ping_bytes(0));
        CHECK(c.stats().pings_sent == 1);
        CHECK(c.next_deadline() == t + sec(60));
    }
    SECTION("a byte received restarts the idle clock") {
        receive(c, t + sec(20), std::vector<std::uint8_t>{0});
        CHECK(c.next_deadline() == t + sec(50));
    }
    SECTION("a byte sent restarts the idle clock") {
        REQUIRE(c.send_frame(t + sec(20), app_header(1), {}) == SendError::none);
        CHECK(c.next_deadline() == t + sec(30));  // queued is not sent
        c.on_sent(t + sec(21), 1);
        CHECK(c.next_deadline() == t + sec(51));
    }
    SECTION("output stuck in the buffer: no ping behind it, the clock restarts") {
        REQUIRE(c.send_frame(t, app_header(1), {}) == SendError::none);
        c.tick(t + sec(30));
        CHECK(c.stats().pings_sent == 0);
        CHECK(c.pending_output().size() == 20);
        CHECK(c.next_deadline() == t + sec(60));
    }
}

TEST_CASE("idle for an hour with a peer that answers: exactly 120 pings, at every 30 s", "[connection][heartbeat]") {
    Connection c = established_client(Nanos{0});
    std::vector<Nanos> ping_times;
    Nanos now{0};
    for (int step = 0; step < 10000; ++step) {
        const Nanos deadline = *c.next_deadline();
        if (deadline > sec(3600)) {
            break;
        }
        now = deadline;
        c.tick(now);
        for (const Event& e : events(c)) {
            CHECK(e.kind == EventKind::heartbeat_sent);
            ping_times.push_back(e.at);
        }
        const auto sent = flush(c, now);
        REQUIRE(sent.size() == 20);
        const auto seq = DefaultHeader::parse(std::span<const std::uint8_t>(sent).first<20>()).seq;
        receive(c, now, pong_bytes(seq));
        CHECK(take(c, now).empty());  // pongs are consumed
    }
    REQUIRE(ping_times.size() == 120);
    for (std::size_t i = 0; i < ping_times.size(); ++i) {
        CHECK(ping_times[i] == sec(30) * static_cast<std::int64_t>(i + 1));
    }
    CHECK(c.state() == S::established);
    CHECK(c.stats().pongs_received == 120);
}

TEST_CASE("no ping while traffic flows: an hour of a request every 10 s", "[connection][heartbeat]") {
    Connection c = established_client(Nanos{0});
    Nanos next_request = sec(10);
    for (int step = 0; step < 10000; ++step) {
        const Nanos deadline = *c.next_deadline();
        const Nanos now = std::min(deadline, next_request);
        if (now > sec(3600)) {
            break;
        }
        c.tick(now);
        if (now == next_request) {
            REQUIRE(c.send_frame(now, app_header(1), body_of(8)) == SendError::none);
            flush(c, now);
            receive(c, now + ms(2), frame_bytes(7, 1, 8));  // the reply
            CHECK(take(c, now + ms(2)).size() == 1);
            next_request += sec(10);
        }
    }
    CHECK(c.stats().pings_sent == 0);
    CHECK(events(c).empty());
    CHECK(c.state() == S::established);
}

TEST_CASE("heartbeat frames are consumed, pings are answered with pongs", "[connection][heartbeat]") {
    const Nanos t = sec(1);
    Connection c = established_server(t);
    SECTION("a ping is answered with a pong echoing its seq") {
        receive(c, t, ping_bytes(41));
        CHECK(take(c, t).empty());
        CHECK(flush(c, t) == pong_bytes(41));
        CHECK(c.stats().pings_received == 1);
        CHECK(c.stats().pongs_sent == 1);
    }
    SECTION("a pong is consumed silently") {
        receive(c, t, pong_bytes(3));
        CHECK(take(c, t).empty());
        CHECK(c.pending_output().empty());
        CHECK(c.stats().pongs_received == 1);
    }
    SECTION("a frame with the heartbeat cmd and a body is the app's") {
        receive(c, t, frame_bytes(heartbeat_cmd, 1, 4));
        CHECK(take(c, t).size() == 1);
        CHECK(c.stats().pings_received == 0);
    }
    SECTION("heartbeats interleaved with app frames") {
        receive(c, t, concat({frame_bytes(7, 1, 1), ping_bytes(5), frame_bytes(7, 2, 1)}));
        CHECK(take(c, t).size() == 2);
        CHECK(flush(c, t) == pong_bytes(5));
    }
}

TEST_CASE("pings disabled: none sent, the peer's still answered", "[connection][heartbeat]") {
    ConnectionConfig config = test_config();
    config.heartbeat_idle_timeout = ns(0);
    config.dead_peer_intervals = 0;
    Connection c = established_server(sec(1), config);
    CHECK(c.next_deadline() == std::nullopt);
    c.tick(sec(100000));
    CHECK(c.stats().pings_sent == 0);
    CHECK(c.state() == S::established);
    receive(c, sec(100000), ping_bytes(1));
    take(c, sec(100000));
    CHECK(flush(c, sec(100000)) == pong_bytes(1));
}

// ===========================================================================
// Dead peer

TEST_CASE("dead peer: dead_peer_intervals intervals with nothing received close the connection",
          "[connection][heartbeat]") {
    const Nanos t = sec(1);
    Connection c = established_client(t);
    SECTION("pings at 30 and 60 go unanswered; closed at 90") {
        std::vector<Nanos> pings;
        for (int i = 0; i < 10 && c.state() == S::established; ++i) {
            const Nanos now = *c.next_deadline();
            c.tick(now);
            for (const Event& e : events(c)) {
                if (e.kind == EventKind::heartbeat_sent) {
                    pings.push_back(e.at);
                } else {
                    CHECK(e.kind == EventKind::closed);
                    CHECK(e.at == t + sec(90));
                }
            }
            flush(c, now);
        }
        CHECK(pings == std::vector<Nanos>{t + sec(30), t + sec(60)});
        CHECK(c.state() == S::closed);
        CHECK(c.close_info() == CloseInfo{CloseReason::dead_peer, 0, {}});
        CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
    }
    SECTION("not a nanosecond early") {
        c.tick(t + sec(30));
        flush(c, t + sec(30));
        c.tick(t + sec(60));
        flush(c, t + sec(60));
        c.tick(t + sec(90) - ns(1));
        CHECK(c.state() == S::established);
    }
    SECTION("anything received restarts the count") {
        receive(c, t + sec(80), std::vector<std::uint8_t>{0});
        c.tick(t + sec(90));
        CHECK(c.state() == S::established);
        CHECK(c.next_deadline() == t + sec(110));  // the next ping; dead at 170
    }
    SECTION("under backpressure we stop reading; sends that progress keep the peer alive") {
        for (std::uint32_t i = 0; i < 10; ++i) {
            REQUIRE(c.send_frame(t, app_header(i), body_of(100)) == SendError::none);
        }
        REQUIRE(c.backpressure());
        c.on_sent(t + sec(80), 10);
        c.tick(t + sec(90));
        CHECK(c.state() == S::established);
        c.tick(t + sec(170));
        CHECK(c.close_info()->reason == CloseReason::dead_peer);
    }
}

// ===========================================================================
// Reconnect with backoff

namespace {

// Refuses every connect at once, except the max_attempts-th, which is left
// connecting; returns the times connects started.
std::vector<Nanos> refused_attempt_times(Connection& c, std::size_t max_attempts) {
    std::vector<Nanos> times;
    Nanos now = sec(0);
    REQUIRE(c.connect(now) == StartError::none);
    for (std::size_t i = 0; i < 1000 && times.size() < max_attempts; ++i) {
        bool started = false;
        for (const Action& a : actions(c)) {
            if (a.kind == ActionKind::start_connect) {
                CHECK(a.attempt == times.size() + 1);
                times.push_back(now);
                started = true;
            }
        }
        events(c);
        if (started && times.size() == max_attempts) {
            break;
        }
        if (started) {
            c.on_connect_failed(now, ECONNREFUSED);
            continue;
        }
        const auto deadline = c.next_deadline();
        if (!deadline) {
            break;
        }
        now = *deadline;
        c.tick(now);
    }
    return times;
}

}  // namespace

TEST_CASE("backoff doubles from the initial delay up to the cap", "[connection][backoff]") {
    Connection c = idle_client(reconnecting_config());
    const auto times = refused_attempt_times(c, 8);
    // Delays 1, 2, 4, 8, then the 10 s cap.
    CHECK(times == std::vector<Nanos>{sec(0), sec(1), sec(3), sec(7), sec(15), sec(25), sec(35), sec(45)});
}

TEST_CASE("backoff jitter is deterministic per seed and keeps to its bounds", "[connection][backoff]") {
    ConnectionConfig config = reconnecting_config();
    config.reconnect_jitter_percent = 25;
    const auto schedule = [&](std::uint64_t seed) {
        Connection c = idle_client(config, seed);
        return refused_attempt_times(c, 12);
    };
    const auto a = schedule(42);
    CHECK(a == schedule(42));
    CHECK(a != schedule(43));
    REQUIRE(a.size() == 12);
    const std::vector<std::int64_t> base_ms{1000, 2000, 4000, 8000, 10000, 10000, 10000, 10000, 10000, 10000, 10000};
    for (std::size_t i = 1; i < a.size(); ++i) {
        const auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(a[i] - a[i - 1]).count();
        const std::int64_t base = base_ms[i - 1];
        CAPTURE(i, delay, base);
        CHECK(delay >= base - base / 4);
        CHECK(delay <= std::min<std::int64_t>(base + base / 4, 10000));  // never above the cap
    }
}

TEST_CASE("the jitter drawn does not depend on how often the driver ticks", "[connection][backoff]") {
    // One draw per scheduled retry, none per tick: a driver that ticks every
    // 100 ms (and so starts each connect up to 100 ms late) gets the same
    // delays as one that ticks exactly at each deadline.
    ConnectionConfig config = reconnecting_config();
    config.reconnect_jitter_percent = 50;
    const auto delays = [&](Nanos tick_every) {
        Connection c = idle_client(config, 7);
        REQUIRE(c.connect(sec(0)) == StartError::none);
        std::vector<Nanos> out;
        Nanos now = sec(0);
        for (int i = 0; i < 10000 && out.size() < 6; ++i) {
            for (const Action& a : actions(c)) {
                if (a.kind == ActionKind::start_connect) {
                    c.on_connect_failed(now, ECONNREFUSED);
                }
            }
            for (const Event& e : events(c)) {
                if (e.kind == EventKind::reconnect_scheduled) {
                    out.push_back(e.reconnect_at - e.at);
                }
            }
            now = tick_every > Nanos{0} ? now + tick_every : *c.next_deadline();
            c.tick(now);
        }
        return out;
    };
    const auto exact = delays(Nanos{0});
    REQUIRE(exact.size() == 6);
    CHECK(delays(ms(100)) == exact);
    CHECK(delays(ms(7)) == exact);
}

TEST_CASE("reconnect_attempts_max: closed after that many retries with the last reason", "[connection][backoff]") {
    ConnectionConfig config = reconnecting_config();
    config.reconnect_attempts_max = 3;
    Connection c = idle_client(config);
    const auto times = refused_attempt_times(c, 100);
    CHECK(times == std::vector<Nanos>{sec(0), sec(1), sec(3), sec(7)});  // the first try and 3 retries
    CHECK(c.state() == S::closed);
    CHECK(c.close_info() == CloseInfo{CloseReason::connect_failed, ECONNREFUSED, {}});
}

TEST_CASE("backoff resets after a successful connection", "[connection][backoff]") {
    Connection c = idle_client(reconnecting_config());
    const auto times = refused_attempt_times(c, 4);  // retries 1..3 used: next delay would be 8 s
    REQUIRE(times.back() == sec(7));
    c.on_connected(sec(7));
    events(c);
    c.on_error(sec(20), ECONNRESET);
    const auto e = events(c);
    REQUIRE(e.size() == 2);
    CHECK(e[1].kind == EventKind::reconnect_scheduled);
    CHECK(e[1].retry == 1);
    CHECK(e[1].reconnect_at == sec(21));
}

// ===========================================================================
// Output: backpressure and the hard limit

TEST_CASE("backpressure: reading stops above high water and resumes at low water", "[connection][backpressure]") {
    const Nanos t = sec(1);
    Connection c = established_server(t);
    // Frames of 120 bytes: 8 are 960 (at most high water), the 9th is 1080.
    for (std::uint32_t i = 0; i < 8; ++i) {
        REQUIRE(c.send_frame(t, app_header(i), body_of(100)) == SendError::none);
    }
    CHECK_FALSE(c.backpressure());
    CHECK(c.wants_read());
    CHECK(events(c).empty());
    REQUIRE(c.send_frame(t, app_header(8), body_of(100)) == SendError::none);
    CHECK(c.backpressure());
    CHECK_FALSE(c.wants_read());
    CHECK(c.receive_space(100).empty());
    CHECK(kinds(events(c)) == std::vector<EventKind>{EventKind::backpressure_on});
    SECTION("draining to just above low water keeps it on") {
        c.on_sent(t, 1080 - 201);
        CHECK(c.backpressure());
        CHECK(events(c).empty());
        c.on_sent(t, 1);
        CHECK_FALSE(c.backpressure());
        CHECK(c.wants_read());
        const auto e = events(c);
        REQUIRE(e.size() == 1);
        CHECK(e[0].kind == EventKind::backpressure_off);
    }
    SECTION("sending more while on emits nothing more") {
        REQUIRE(c.send_frame(t, app_header(9), body_of(100)) == SendError::none);
        CHECK(events(c).empty());
    }
}

TEST_CASE("the output hard limit refuses the frame and closes with output_limit_exceeded",
          "[connection][backpressure]") {
    const Nanos t = sec(1);
    Connection c = established_server(t);
    // 33 frames of 120 bytes are 3960; one more would be 4080 > 4000.
    for (std::uint32_t i = 0; i < 33; ++i) {
        REQUIRE(c.send_frame(t, app_header(i), body_of(100)) == SendError::none);
    }
    CHECK(c.pending_output().size() == 3960);
    clear_queues(c);
    CHECK(c.send_frame(t, app_header(33), body_of(100)) == SendError::output_limit_exceeded);
    CHECK(c.state() == S::closed);
    CHECK(c.close_info() == CloseInfo{CloseReason::output_limit_exceeded, 0, {}});
    CHECK(c.pending_output().empty());
    CHECK(kinds(actions(c)) == std::vector<ActionKind>{ActionKind::close_socket});
    CHECK(kinds(events(c)) == std::vector<EventKind>{EventKind::closed});
}

TEST_CASE("a frame above max_frame_bytes is refused and the connection stays", "[connection][backpressure]") {
    const Nanos t = sec(1);
    Connection c = established_server(t);
    CHECK(c.send_frame(t, app_header(1), body_of(1024 - 20 + 1)) == SendError::frame_too_large);
    CHECK(c.send_frame(t, app_header(1), body_of(1024 - 20)) == SendError::none);
    CHECK(c.state() == S::established);
}

TEST_CASE("closing from inside take_frames drops the frames after it", "[connection]") {
    const Nanos t = sec(1);
    Connection c = established_server(t);
    receive(c, t, concat({frame_bytes(7, 1, 1), frame_bytes(7, 2, 1), frame_bytes(7, 3, 1)}));
    std::size_t seen = 0;
    const std::size_t delivered = c.take_frames(t, [&](const Frame&) {
        ++seen;
        // Way past the limit: the connection ends here.
        CHECK(c.send_frame(t, app_header(1), body_of(1004)) == SendError::none);
        CHECK(c.send_frame(t, app_header(1), body_of(1004)) == SendError::none);
        CHECK(c.send_frame(t, app_header(1), body_of(1004)) == SendError::none);
        CHECK(c.send_frame(t, app_header(1), body_of(1004)) == SendError::output_limit_exceeded);
    });
    CHECK(seen == 1);
    CHECK(delivered == 1);
    CHECK(c.state() == S::closed);
}

// ===========================================================================
// Ticks

TEST_CASE("a tick before the deadline changes nothing, in every state", "[connection]") {
    const Nanos t = sec(1);
    const auto check_no_op = [t](Connection c) {
        const S state = c.state();
        const auto deadline = c.next_deadline();
        const auto count = c.transition_count();
        const std::size_t output = c.pending_output().size();
        const Nanos early = deadline ? *deadline - ns(1) : t + sec(100000);
        c.tick(std::max(early, t));
        CHECK(c.state() == state);
        CHECK(c.next_deadline() == deadline);
        CHECK(c.transition_count() == count);
        CHECK(c.pending_output().size() == output);
        CHECK(actions(c).empty());
        CHECK(events(c).empty());
    };
    SECTION("idle") {
        check_no_op(idle_client());
    }
    SECTION("connecting") {
        check_no_op(connecting_client(t));
    }
    SECTION("established") {
        check_no_op(established_client(t));
    }
    SECTION("half_closed_remote") {
        check_no_op(half_closed_remote(t));
    }
    SECTION("closing") {
        check_no_op(closing(t));
    }
    SECTION("half_closed_local") {
        check_no_op(half_closed_local(t));
    }
    SECTION("backoff") {
        check_no_op(backoff_client(t));
    }
    SECTION("closed") {
        check_no_op(closed_client(t));
    }
}

// The timer table (connection.cpp) gives each TimerKind its deadline and its
// expiry in one row; here every kind is armed alone as the next timer, and
// ticking at its deadline does what the kind says. A kind added to the enum
// needs a case below (-Wswitch-enum) and a raised timer_kind_count.
TEST_CASE("every timer kind is the next deadline in some state and expires as it says", "[connection][timer]") {
    CHECK(to_string(static_cast<TimerKind>(timer_kind_count)) == "unknown TimerKind");  // count covers the enum
    const Nanos t = sec(1);
    for (std::size_t i = 0; i < timer_kind_count; ++i) {
        const auto kind = static_cast<TimerKind>(i);
        CAPTURE(to_string(kind));
        CHECK(to_string(kind) != "unknown TimerKind");
        switch (kind) {
            case TimerKind::connect_timeout: {
                Connection c = connecting_client(t);
                REQUIRE(c.next_timer() == ConnectionTimer{kind, t + sec(5)});
                c.tick(t + sec(5));
                CHECK(c.state() == S::closed);
                CHECK(c.close_info() == CloseInfo{CloseReason::connect_timeout, ETIMEDOUT, {}});
                break;
            }
            case TimerKind::reconnect: {
                Connection c = backoff_client(t);
                REQUIRE(c.next_timer() == ConnectionTimer{kind, t + sec(1)});
                c.tick(t + sec(1));
                CHECK(c.state() == S::connecting);
                CHECK(actions(c) == std::vector<Action>{Action{ActionKind::start_connect, 2}});
                break;
            }
            case TimerKind::close_timeout: {
                Connection c = half_closed_local(t);
                REQUIRE(c.next_timer() == ConnectionTimer{kind, t + sec(10)});
                c.tick(t + sec(10));
                CHECK(c.state() == S::closed);
                CHECK(c.close_info() == CloseInfo{CloseReason::close_timeout, 0, {}});
                break;
            }
            case TimerKind::dead_peer: {
                ConnectionConfig config = test_config();
                config.close_timeout = Nanos{0};
                Connection c = half_closed_local(t, config);  // reading, no pings, no close timeout
                REQUIRE(c.next_timer() == ConnectionTimer{kind, t + sec(90)});
                c.tick(t + sec(90));
                CHECK(c.state() == S::closed);
                CHECK(c.close_info() == CloseInfo{CloseReason::dead_peer, 0, {}});
                break;
            }
            case TimerKind::heartbeat: {
                Connection c = established_client(t);
                REQUIRE(c.next_timer() == ConnectionTimer{kind, t + sec(30)});
                c.tick(t + sec(30));
                CHECK(flush(c, t + sec(30)) == ping_bytes(0));
                CHECK(kinds(events(c)) == std::vector<EventKind>{EventKind::heartbeat_sent});
                CHECK(c.next_timer() == ConnectionTimer{kind, t + sec(60)});
                break;
            }
        }
    }
}

TEST_CASE("a late tick with several timers due runs the first in TimerKind order", "[connection][timer]") {
    const Nanos t = sec(1);
    ConnectionConfig config = test_config();
    config.close_timeout = sec(200);
    Connection c = half_closed_local(t, config);
    REQUIRE(c.next_timer() == ConnectionTimer{TimerKind::dead_peer, t + sec(90)});  // the earliest
    c.tick(t + sec(1000));  // close_timeout (+200 s) is due too, and comes first in the order
    CHECK(c.close_info() == CloseInfo{CloseReason::close_timeout, 0, {}});
}

TEST_CASE("a late tick does one ping, not one per missed interval", "[connection][heartbeat]") {
    ConnectionConfig config = test_config();
    config.dead_peer_intervals = 0;
    Connection c = established_client(sec(0), config);
    c.tick(sec(1000));
    CHECK(c.stats().pings_sent == 1);
    CHECK(c.next_deadline() == sec(1030));
}

// ===========================================================================
// Two connections on a virtual link

namespace {

// A client and a server joined by a link with a fixed latency each way;
// step() jumps to the earliest deadline or arrival (h11/quinn's Pair).
struct Pair {
    struct InFlight {
        Nanos arrival;
        std::vector<std::uint8_t> bytes;
    };

    Connection client;
    Connection server;
    Nanos latency;
    Nanos now{0};
    std::deque<InFlight> to_server;
    std::deque<InFlight> to_client;
    std::vector<Event> client_events;
    std::vector<Event> server_events;

    Pair(const ConnectionConfig& config, Nanos link_latency)
        : client(ConnectionRole::client, config, 1), server(ConnectionRole::server, config, 2), latency(link_latency) {
        REQUIRE(client.connect(now) == StartError::none);
        client.on_connected(now);
        REQUIRE(server.on_accepted(now) == StartError::none);
        settle();
    }

    void settle() {
        for (auto* side : {&client, &server}) {
            actions(*side);
            auto& log = side == &client ? client_events : server_events;
            for (const Event& e : events(*side)) {
                log.push_back(e);
            }
            auto& queue = side == &client ? to_server : to_client;
            if (side->wants_write()) {
                queue.push_back(InFlight{now + latency, flush(*side, now)});
            }
        }
    }

    // Returns false once nothing is scheduled before end.
    bool step(Nanos end) {
        Nanos next = end + ns(1);
        for (auto* side : {&client, &server}) {
            if (const auto d = side->next_deadline()) {
                next = std::min(next, *d);
            }
        }
        for (auto* queue : {&to_server, &to_client}) {
            if (!queue->empty()) {
                next = std::min(next, queue->front().arrival);
            }
        }
        if (next > end) {
            return false;
        }
        now = next;
        for (auto [queue, side] : {std::pair{&to_server, &server}, std::pair{&to_client, &client}}) {
            while (!queue->empty() && queue->front().arrival <= now) {
                receive(*side, now, queue->front().bytes);
                take(*side, now);
                queue->pop_front();
            }
        }
        client.tick(now);
        server.tick(now);
        settle();
        return true;
    }
};

}  // namespace

TEST_CASE("two idle peers keep each other alive for an hour with pings", "[connection][heartbeat]") {
    Pair pair(test_config(), ms(5));
    int steps = 0;
    while (pair.step(sec(3600))) {
        REQUIRE(++steps < 100000);
    }
    CHECK(pair.client.state() == S::established);
    CHECK(pair.server.state() == S::established);
    // Both sides go idle at the same instant, so both ping at 30 s; each
    // round trip then takes 2 x 5 ms, so the pings come every 30.010 s:
    // at 30 + 30.010 k <= 3600, k = 0..118.
    CHECK(pair.client.stats().pings_sent == 119);
    CHECK(pair.server.stats().pings_sent == 119);
    CHECK(pair.client.stats().pongs_received == 119);
    CHECK(pair.server.stats().pongs_received == 119);
}

// ===========================================================================
// The app's read pause, the output peak, unframed bytes, transition_at

TEST_CASE("pause_reading: nothing is read until resume_reading, in any state and across a reconnect",
          "[connection][pause]") {
    const Nanos t = sec(1);
    SECTION("established: no receive space, sending goes on") {
        Connection c = established_client(t);
        c.pause_reading(t);
        CHECK(c.reading_paused());
        CHECK_FALSE(c.wants_read());
        CHECK(c.receive_space(100).empty());
        REQUIRE(c.send_frame(t, app_header(1), body_of(10)) == SendError::none);
        CHECK(c.wants_write());
        CHECK(flush(c, t).size() == 30);
        c.resume_reading(t + sec(1));
        CHECK_FALSE(c.reading_paused());
        CHECK(c.wants_read());
        receive(c, t + sec(1), frame_bytes(7, 1, 4));
        CHECK(take(c, t + sec(1)).size() == 1);
    }
    SECTION("paused before the socket: a server accepted while paused starts paused") {
        Connection c(ConnectionRole::server, test_config(), 1);
        c.pause_reading(t);
        REQUIRE(c.on_accepted(t) == StartError::none);
        CHECK_FALSE(c.wants_read());
        c.resume_reading(t);
        CHECK(c.wants_read());
    }
    SECTION("the pause outlives a lost connection: the next one starts paused") {
        Connection c = established_client(t, reconnecting_config());
        c.pause_reading(t);
        c.on_error(t, ECONNRESET);
        REQUIRE(c.state() == S::backoff);
        c.tick(t + sec(1));
        REQUIRE(c.state() == S::connecting);
        c.on_connected(t + sec(1));
        CHECK(c.state() == S::established);
        CHECK(c.reading_paused());
        CHECK_FALSE(c.wants_read());
    }
    SECTION("pause and resume are idempotent") {
        Connection c = established_client(t);
        c.pause_reading(t);
        c.pause_reading(t);
        c.resume_reading(t);
        c.resume_reading(t);
        CHECK(c.wants_read());
        CHECK(events(c).empty());
        CHECK(actions(c).empty());
    }
}

TEST_CASE("pause_reading suspends dead-peer detection, its clock restarts at resume", "[connection][pause]") {
    const Nanos t = sec(1);
    Connection c = established_client(t);  // pings at 30 s idle, dead after 90 s
    c.pause_reading(t + sec(10));
    // Pings still go out on the idle schedule; nothing can be heard.
    for (int i = 0; i < 10; ++i) {
        const Nanos now = *c.next_deadline();
        c.tick(now);
        flush(c, now);
    }
    CHECK(c.state() == S::established);
    CHECK(c.stats().pings_sent == 10);
    const Nanos resumed = t + sec(400);
    c.resume_reading(resumed);
    c.tick(resumed + sec(90) - ns(1));
    flush(c, resumed + sec(90) - ns(1));
    CHECK(c.state() == S::established);
    c.tick(resumed + sec(90));
    CHECK(c.state() == S::closed);
    CHECK(c.close_info() == CloseInfo{CloseReason::dead_peer, 0, {}});
}

TEST_CASE("stats().max_output_bytes is the most output ever held unsent", "[connection][backpressure]") {
    const Nanos t = sec(1);
    Connection c = established_client(t, reconnecting_config());
    CHECK(c.stats().max_output_bytes == 0);
    REQUIRE(c.send_frame(t, app_header(1), body_of(100)) == SendError::none);
    REQUIRE(c.send_frame(t, app_header(2), body_of(100)) == SendError::none);
    CHECK(c.stats().max_output_bytes == 240);
    c.on_sent(t, 200);
    REQUIRE(c.send_frame(t, app_header(3), body_of(100)) == SendError::none);  // 40 + 120
    CHECK(c.stats().max_output_bytes == 240);
    REQUIRE(c.send_unframed(t, body_of(300)) == SendError::none);  // 460
    CHECK(c.stats().max_output_bytes == 460);
    flush(c, t);
    // A ping counts too, and the peak outlives the socket.
    c.tick(t + sec(30));
    CHECK(c.pending_output().size() == 20);
    CHECK(c.stats().max_output_bytes == 460);
    c.on_error(t + sec(30), ECONNRESET);
    CHECK(c.stats().max_output_bytes == 460);
}

TEST_CASE("send_unframed: bytes go out exactly as given, and the peer takes a negative length as hostile",
          "[connection]") {
    const Nanos t = sec(1);
    SECTION("a header announcing body_len -1 closes the peer with hostile_frame") {
        Connection sender = established_client(t);
        DefaultHeader hostile{7, 1, 0xFFFFFFFFU, 0, 0};
        const auto header = hostile.bytes();
        REQUIRE(sender.send_frame(t, app_header(0), body_of(3)) == SendError::none);
        REQUIRE(sender.send_unframed(t, header) == SendError::none);
        CHECK(sender.stats().frames_queued == 1);  // the raw bytes are no frame
        const std::vector<std::uint8_t> wire = flush(sender, t);
        REQUIRE(wire.size() == 23 + 20);
        CHECK(std::equal(header.begin(), header.end(), wire.begin() + 23));

        Connection receiver = established_server(t);
        receive(receiver, t, wire);
        CHECK(take(receiver, t).size() == 1);  // the good frame before it
        CHECK(receiver.state() == S::closed);
        REQUIRE(receiver.close_info());
        CHECK(receiver.close_info()->reason == CloseReason::hostile_frame);
        CHECK(*receiver.close_info()->frame_error == FrameError{FrameErrorKind::negative_length, 23 + 8, 0xffffffff});
    }
    SECTION("only where send_frame is allowed") {
        Connection c = connecting_client(t);
        CHECK(c.send_unframed(t, body_of(4)) == SendError::wrong_state);
        CHECK(c.pending_output().empty());
    }
    SECTION("the output limit holds: past it the connection closes") {
        Connection c = established_client(t);
        CHECK(c.send_unframed(t, body_of(4000)) == SendError::none);
        clear_queues(c);
        CHECK(c.send_unframed(t, body_of(1)) == SendError::output_limit_exceeded);
        CHECK(c.state() == S::closed);
        CHECK(c.close_info() == CloseInfo{CloseReason::output_limit_exceeded, 0, {}});
    }
}

TEST_CASE("transition_at(n) is the n-th transition while the history keeps it", "[connection]") {
    Connection c = backoff_client(sec(0));
    c.tick(sec(1));
    const std::vector<Transition> all = c.transitions();
    REQUIRE(c.transition_count() == 3);  // idle => connecting => backoff => connecting
    for (std::uint64_t n = 0; n < c.transition_count(); ++n)
        CHECK(c.transition_at(n) == all[n]);
    CHECK(c.transition_at(2) == Transition{sec(1), S::backoff, S::connecting});
}

// ===========================================================================
// Properties

namespace {

enum class Op : std::uint8_t {
    advance,
    connect,
    accept,
    connected,
    connect_failed,
    receive_frame,
    receive_ping,
    receive_garbage,
    take,
    send_frame,
    sent_some,
    peer_eof,
    error,
    close,
    pause_reading,
    resume_reading,
    send_unframed,
};

}  // namespace

TEST_CASE("random input sequences keep the connection's invariants", "[connection][property]") {
    rc::prop("invariants", [] {
        const bool is_client = *rc::gen::arbitrary<bool>();
        ConnectionConfig config = test_config();
        config.reconnect = is_client && *rc::gen::arbitrary<bool>();
        config.reconnect_jitter_percent = *rc::gen::inRange<std::uint32_t>(0, 101);
        config.reconnect_attempts_max = *rc::gen::inRange<std::uint32_t>(0, 4);
        Connection c(is_client ? ConnectionRole::client : ConnectionRole::server, config,
                     *rc::gen::arbitrary<std::uint64_t>());
        Nanos now{0};
        bool closed_seen = false;
        // Endings are rare so that sequences spend time in the later states.
        const auto ops = *rc::gen::container<std::vector<Op>>(rc::gen::weightedElement<Op>({
            {8, Op::advance},
            {3, Op::connect},
            {3, Op::accept},
            {4, Op::connected},
            {1, Op::connect_failed},
            {8, Op::receive_frame},
            {3, Op::receive_ping},
            {1, Op::receive_garbage},
            {8, Op::take},
            {8, Op::send_frame},
            {8, Op::sent_some},
            {1, Op::peer_eof},
            {1, Op::error},
            {1, Op::close},
            {2, Op::pause_reading},
            {2, Op::resume_reading},
            {1, Op::send_unframed},
        }));
        std::uint64_t output_peak = 0;
        for (const Op op : ops) {
            switch (op) {
                case Op::advance: {
                    now += Nanos{*rc::gen::inRange<std::int64_t>(0, 40'000'000'000)};
                    c.tick(now);
                    const auto deadline = c.next_deadline();
                    RC_ASSERT(!deadline || *deadline > now);  // everything due was done
                    const auto timer = c.next_timer();
                    RC_ASSERT(deadline == (timer ? std::optional<Nanos>{timer->at} : std::nullopt));
                    break;
                }
                case Op::connect: (void)c.connect(now); break;
                case Op::accept: (void)c.on_accepted(now); break;
                case Op::connected: c.on_connected(now); break;
                case Op::connect_failed: c.on_connect_failed(now, ECONNREFUSED); break;
                case Op::receive_frame:
                case Op::receive_ping:
                case Op::receive_garbage: {
                    std::vector<std::uint8_t> bytes =
                        op == Op::receive_frame ? frame_bytes(7, 1, *rc::gen::inRange<std::size_t>(0, 300))
                        : op == Op::receive_ping
                            ? ping_bytes(1)
                            : *rc::gen::container<std::vector<std::uint8_t>>(rc::gen::arbitrary<std::uint8_t>());
                    const std::span<std::uint8_t> space = c.receive_space(bytes.size());
                    const std::size_t n = std::min(space.size(), bytes.size());
                    if (n > 0) {
                        std::memcpy(space.data(), bytes.data(), n);
                    }
                    c.on_received(now, n);
                    break;
                }
                case Op::take: c.take_frames(now, [](const Frame&) {}); break;
                case Op::send_frame:
                    (void)c.send_frame(now, app_header(1), body_of(*rc::gen::inRange<std::size_t>(0, 1005)));
                    break;
                case Op::sent_some: {
                    const std::size_t pending = c.pending_output().size();
                    c.on_sent(now, pending == 0 ? 0 : *rc::gen::inRange<std::size_t>(0, pending + 1));
                    break;
                }
                case Op::peer_eof: c.on_peer_eof(now); break;
                case Op::error: c.on_error(now, *rc::gen::element(ECONNRESET, EPIPE, EHOSTUNREACH)); break;
                case Op::close: c.close(now); break;
                case Op::pause_reading: c.pause_reading(now); break;
                case Op::resume_reading: c.resume_reading(now); break;
                case Op::send_unframed:
                    (void)c.send_unframed(now, body_of(*rc::gen::inRange<std::size_t>(0, 300)));
                    break;
            }
            const auto acts = actions(c);
            const auto evs = events(c);
            if (closed_seen) {
                RC_ASSERT(acts.empty());
                RC_ASSERT(evs.empty());
            }
            RC_ASSERT(c.pending_output().size() <= config.output_limit_bytes);
            RC_ASSERT(c.pending_output().size() <= c.stats().max_output_bytes);
            RC_ASSERT(c.stats().max_output_bytes >= output_peak);  // never goes down
            output_peak = c.stats().max_output_bytes;
            if (c.reading_paused()) {
                RC_ASSERT(!c.wants_read());
                RC_ASSERT(c.receive_space(1).empty());
            }
            if (c.backpressure()) {
                RC_ASSERT(!c.wants_read());
            }
            if (c.transition_count() > 0) {
                RC_ASSERT(c.transitions().back().to == c.state());
            }
            if (c.state() == S::closed) {
                closed_seen = true;
                RC_ASSERT(c.pending_output().empty());
                RC_ASSERT(!c.wants_read());
                RC_ASSERT(!c.wants_write());
                RC_ASSERT(!c.next_deadline().has_value());
                RC_ASSERT(c.close_info().has_value());
            }
        }
    });
}
