// The simulated kernel's TCP model and network faults, driven through Sys
// the way the conformance suite drives it (tests/conformance/support.h):
// waits are epoll_wait timeouts, which pass in virtual time, so every time
// below is exact. What Linux does in the same situation is pinned by the
// conformance suite; these tests pin what only a simulation can: timings,
// segments, and the faults.
#include "sim/sim_kernel.h"
#include "sim/world.h"
#include "tests/conformance/support.h"

#include <catch2/catch.hpp>

#include <sys/epoll.h>

#include <algorithm>
#include <string>
#include <vector>

namespace eagain::sim {
namespace {

using namespace std::chrono_literals;
using conformance::as_text;
using conformance::Fd;
using conformance::pattern_byte;
using conformance::recv_available;
using conformance::send_whole;
using conformance::wait_for;
using conformance::wait_for_unread;

constexpr int long_wait_ms = 10 * 60 * 1000;  // virtual: costs nothing

struct Net {
    explicit Net(WorldOptions options = quiet()) : world(std::move(options)) {}
    static WorldOptions quiet() {
        WorldOptions options;
        options.link.latency = 1ms;
        options.trace_keep_lines = true;
        return options;
    }
    World world;
    SimKernel& client = world.add_host("client");
    SimKernel& server = world.add_host("server");

    // Trace lines containing every one of the fragments.
    std::vector<std::string> lines_with(std::initializer_list<std::string_view> fragments) const {
        std::vector<std::string> found;
        for (const std::string& line : world.trace().lines()) {
            if (std::all_of(fragments.begin(), fragments.end(),
                            [&](std::string_view f) { return line.find(f) != std::string::npos; }))
                found.push_back(line);
        }
        return found;
    }
};

Fd open_socket(Sys& sys) {
    const FdResult fd = sys.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    REQUIRE(fd.ok());
    return Fd(sys, fd.value);
}

Fd listen_at(SimKernel& host, std::uint16_t port, int backlog = 16, int receive_buffer = 0) {
    Fd fd = open_socket(host);
    if (receive_buffer > 0)
        REQUIRE(host.set_int_option(fd.get(), SOL_SOCKET, SO_RCVBUF, receive_buffer).ok());
    REQUIRE(host.bind(fd.get(), host.address(AF_INET, port)).ok());
    REQUIRE(host.listen(fd.get(), backlog).ok());
    return fd;
}

struct Pair {
    Fd client;
    Fd server;
};

Pair connect_across(Net& net, std::uint16_t port = 80, int server_receive_buffer = 0) {
    Fd listener = listen_at(net.server, port, 16, server_receive_buffer);
    Fd client = open_socket(net.client);
    const VoidResult c = net.client.connect(client.get(), net.server.address(AF_INET, port));
    REQUIRE(c.error == EINPROGRESS);
    REQUIRE(wait_for(net.client, client.get(), EPOLLOUT, long_wait_ms) == EPOLLOUT);
    REQUIRE(wait_for(net.server, listener.get(), EPOLLIN, long_wait_ms) == EPOLLIN);
    const FdResult accepted = net.server.accept4(listener.get(), nullptr, SOCK_NONBLOCK);
    REQUIRE(accepted.ok());
    return Pair{std::move(client), Fd(net.server, accepted.value)};
}

std::vector<std::uint8_t> pattern(std::size_t offset, std::size_t length) {
    std::vector<std::uint8_t> bytes(length);
    for (std::size_t i = 0; i < length; ++i)
        bytes[i] = pattern_byte(offset + i);
    return bytes;
}

// Reads everything that arrives on fd until `total` bytes came; checks the pattern.
std::size_t receive_pattern(SimKernel& host, int fd, std::size_t total) {
    std::size_t received = 0;
    for (int round = 0; round < 100000 && received < total; ++round) {
        if (wait_for_unread(host, fd, 1, long_wait_ms) == 0)
            break;
        const std::vector<std::uint8_t> got = recv_available(host, fd);
        for (std::size_t i = 0; i < got.size(); ++i)
            REQUIRE(got[i] == pattern_byte(received + i));
        received += got.size();
    }
    return received;
}

}  // namespace

TEST_CASE("the handshake takes one round trip for the client and one and a half for the server", "[sim][tcp]") {
    Net net;
    Fd listener = listen_at(net.server, 80);
    Fd client = open_socket(net.client);
    const Nanos start = net.world.now();
    REQUIRE(net.client.connect(client.get(), net.server.address(AF_INET, 80)).error == EINPROGRESS);
    REQUIRE(wait_for(net.client, client.get(), EPOLLOUT, long_wait_ms) == EPOLLOUT);
    CHECK(net.world.now() - start == 2ms);  // SYN, SYN-ACK
    REQUIRE(wait_for(net.server, listener.get(), EPOLLIN, long_wait_ms) == EPOLLIN);
    CHECK(net.world.now() - start == 3ms);  // and the ACK
    const SysResult<SockAddr> peer = net.client.getpeername(client.get());
    REQUIRE(peer.ok());
    CHECK(peer.value.to_string() == "10.0.0.2:80");
    const SysResult<SockAddr> name = net.client.getsockname(client.get());
    REQUIRE(name.ok());
    CHECK(name.value.to_string() == "10.0.0.1:32768");  // the first ephemeral port
}

TEST_CASE("a full accept queue drops the SYN and the client's retransmission one second later gets in", "[sim][tcp]") {
    Net net;
    Fd listener = listen_at(net.server, 80, 0);  // backlog 0 holds one connection
    Fd first = open_socket(net.client);
    Fd second = open_socket(net.client);
    REQUIRE(net.client.connect(first.get(), net.server.address(AF_INET, 80)).error == EINPROGRESS);
    REQUIRE(wait_for(net.client, first.get(), EPOLLOUT, long_wait_ms) == EPOLLOUT);
    const Nanos start = net.world.now();
    REQUIRE(net.client.connect(second.get(), net.server.address(AF_INET, 80)).error == EINPROGRESS);
    // The queue is full until the server accepts, 500 ms later.
    CHECK(wait_for(net.client, second.get(), EPOLLOUT, 500) == 0);
    CHECK(net.lines_with({"\"ev\":\"syn_dropped\"", "accept queue full"}).size() == 1);
    const FdResult accepted = net.server.accept4(listener.get(), nullptr, SOCK_NONBLOCK);
    REQUIRE(accepted.ok());
    const Fd first_server(net.server, accepted.value);
    REQUIRE(wait_for(net.client, second.get(), EPOLLOUT, long_wait_ms) == EPOLLOUT);
    CHECK(net.world.now() - start == 1s + 2ms);  // SYN again at +1 s, then SYN-ACK
    CHECK(net.client.socket_error(second.get()).value == 0);
}

TEST_CASE("connect to an address nobody answers times out with ETIMEDOUT after 127 s of SYN retransmissions",
          "[sim][tcp]") {
    Net net;
    Fd client = open_socket(net.client);
    const Nanos start = net.world.now();
    REQUIRE(net.client.connect(client.get(), SockAddr::ipv4((10U << 24) | 99U, 80)).error == EINPROGRESS);
    CHECK(wait_for(net.client, client.get(), EPOLLOUT, 126'999) == 0);
    CHECK(wait_for(net.client, client.get(), EPOLLOUT, long_wait_ms) == (EPOLLOUT | EPOLLERR | EPOLLHUP));
    CHECK(net.world.now() - start == 127s);  // 1 + 2 + 4 + ... + 64
    CHECK(errno_name(net.client.socket_error(client.get()).value) == "ETIMEDOUT");
    CHECK(net.lines_with({"\"ev\":\"seg\"", "\"flags\":\"S\"", "no route to host"}).size() == 7);
}

TEST_CASE("SYN retransmissions back off to rto_max and stay there, however many syn_retries", "[sim][tcp]") {
    // Doubling 1 s without a cap overflows 64-bit nanoseconds at the 34th
    // retransmission; Linux caps every backoff at TCP_RTO_MAX (120 s).
    WorldOptions options = Net::quiet();
    options.tcp.syn_retries = 100;
    Net net(options);
    Fd client = open_socket(net.client);
    const Nanos start = net.world.now();
    REQUIRE(net.client.connect(client.get(), SockAddr::ipv4((10U << 24) | 99U, 80)).error == EINPROGRESS);
    CHECK(wait_for(net.client, client.get(), EPOLLOUT, 24 * 3600 * 1000) == (EPOLLOUT | EPOLLERR | EPOLLHUP));
    CHECK(errno_name(net.client.socket_error(client.get()).value) == "ETIMEDOUT");
    // 1 + 2 + ... + 64 s, then 94 more timeouts of 120 s: 101 in all, the last fails.
    CHECK(net.world.now() - start == 127s + 94 * 120s);
    const std::vector<std::string> syns = net.lines_with({"\"ev\":\"seg\"", "\"flags\":\"S\""});
    REQUIRE(syns.size() == 101);
    long long previous = -1;
    long long longest_gap = 0;
    for (const std::string& line : syns) {
        const long long t = std::stoll(line.substr(line.find("\"t\":") + 4));
        if (previous >= 0)
            longest_gap = std::max(longest_gap, t - previous);
        previous = t;
    }
    CHECK(longest_gap == std::chrono::nanoseconds(120s).count());
}

TEST_CASE("a world of 20,000 hosts: links not given are the default, a link given applies both ways", "[sim][world]") {
    // The link table used to be hosts x hosts, copied on every add_host
    // (cubic in the host count: hours for this many).
    WorldOptions options = Net::quiet();
    options.trace = false;
    World world(options);
    for (int i = 0; i < 20'000; ++i)
        (void)world.add_host("h" + std::to_string(i));
    LinkOptions slow = options.link;
    slow.latency = 9ms;
    world.set_link(world.host(19'999), world.host(3), slow);
    (void)world.add_host("late");  // a host added later leaves the links alone
    SimKernel& a = world.host(3);
    SimKernel& b = world.host(19'999);
    REQUIRE(world.find_host("h19999") == &b);
    REQUIRE(world.find_host("late") == &world.host(20'000));
    Fd listener = listen_at(a, 80);
    const auto handshake_time = [&](SimKernel& from, SimKernel& to) {
        Fd client = open_socket(from);
        const Nanos start = world.now();
        REQUIRE(from.connect(client.get(), to.address(AF_INET, 80)).error == EINPROGRESS);
        REQUIRE(wait_for(from, client.get(), EPOLLOUT, long_wait_ms) == EPOLLOUT);
        const Nanos connected = world.now() - start;
        REQUIRE(wait_for(a, listener.get(), EPOLLIN, long_wait_ms) == EPOLLIN);
        const FdResult accepted = a.accept4(listener.get(), nullptr, SOCK_NONBLOCK);
        REQUIRE(accepted.ok());
        (void)a.close(accepted.value);
        return connected;
    };
    CHECK(handshake_time(b, a) == 18ms);                  // the link given, SYN and SYN-ACK
    CHECK(handshake_time(world.host(7), a) == 2ms);       // the default
    CHECK(handshake_time(world.host(20'000), a) == 2ms);  // the default, for the host added later
}

TEST_CASE("a send larger than the MSS leaves in MSS-sized segments and arrives whole", "[sim][tcp]") {
    WorldOptions options = Net::quiet();
    options.link.mss = 1000;
    Net net(options);
    Pair pair = connect_across(net);
    send_whole(net.client, pair.client.get(), pattern(0, 4500));
    CHECK(receive_pattern(net.server, pair.server.get(), 4500) == 4500);
    const auto lengths = [&](std::string_view len) {
        return net.lines_with({"\"ev\":\"seg\"", "\"src\":\"client:", std::string("\"len\":") + std::string(len)})
            .size();
    };
    CHECK(lengths("1000,") == 4);
    CHECK(lengths("500,") == 1);
}

TEST_CASE("SO_SNDBUF and SO_RCVBUF are doubled and clamped as Linux does, and size the window", "[sim][tcp]") {
    Net net;
    Fd fd = open_socket(net.client);
    REQUIRE(net.client.set_int_option(fd.get(), SOL_SOCKET, SO_RCVBUF, 5000).ok());
    CHECK(net.client.get_int_option(fd.get(), SOL_SOCKET, SO_RCVBUF).value == 10000);
    REQUIRE(net.client.set_int_option(fd.get(), SOL_SOCKET, SO_SNDBUF, 1).ok());
    CHECK(net.client.get_int_option(fd.get(), SOL_SOCKET, SO_SNDBUF).value == 4608);
    REQUIRE(net.client.set_int_option(fd.get(), SOL_SOCKET, SO_SNDBUF, 1 << 30).ok());
    CHECK(net.client.get_int_option(fd.get(), SOL_SOCKET, SO_SNDBUF).value == 2 * 212992);
}

TEST_CASE("a reader that stops reading closes its window: the writer fills both buffers, then gets EAGAIN",
          "[sim][tcp]") {
    Net net;
    Pair pair = connect_across(net, 80, 2000);  // server window: 4000 bytes
    REQUIRE(net.client.set_int_option(pair.client.get(), SOL_SOCKET, SO_SNDBUF, 3000).ok());  // 6000 bytes
    std::size_t sent = 0;
    std::vector<std::size_t> accepted;
    for (int round = 0; round < 100; ++round) {
        const SizeResult r = net.client.send(pair.client.get(), pattern(sent, 1500), MSG_NOSIGNAL);
        if (!r.ok()) {
            REQUIRE(r.error == EAGAIN);
            // Let what is in flight arrive and be acknowledged.
            if (wait_for(net.client, pair.client.get(), EPOLLOUT, 1000) == 0)
                break;
            continue;
        }
        accepted.push_back(r.value);
        sent += r.value;
    }
    // Not writable (Linux reports EPOLLOUT only once a third of the buffer is
    // free), but what room there is still takes a short write.
    for (SizeResult r = net.client.send(pair.client.get(), pattern(sent, 1500), MSG_NOSIGNAL); r.ok();
         r = net.client.send(pair.client.get(), pattern(sent, 1500), MSG_NOSIGNAL)) {
        accepted.push_back(r.value);
        sent += r.value;
    }
    CHECK(sent == 4000 + 6000);  // the peer's window, then our own buffer
    CHECK(std::count(accepted.begin(), accepted.end(), 1500U) >= 4);
    CHECK(std::count_if(accepted.begin(), accepted.end(), [](std::size_t n) { return n < 1500; }) >= 1);
    CHECK(net.lines_with({"\"ev\":\"seg\"", "\"src\":\"server:80\"", "\"win\":0,"}).size() >= 1);
    CHECK(receive_pattern(net.server, pair.server.get(), sent) == sent);
}

TEST_CASE("jitter reorders segments, the receiver's out-of-order queue puts the stream back together", "[sim][tcp]") {
    WorldOptions options = Net::quiet();
    options.link.jitter = 5ms;
    options.link.mss = 100;
    options.seed = 7;
    Net net(options);
    Pair pair = connect_across(net);
    send_whole(net.client, pair.client.get(), pattern(0, 20000));
    CHECK(receive_pattern(net.server, pair.server.get(), 20000) == 20000);
    // Arrival order differs from send order for some data segments.
    std::vector<std::pair<long long, long long>> arrivals;  // (arrive, seq)
    for (const std::string& line : net.lines_with({"\"ev\":\"seg\"", "\"src\":\"client:", "\"len\":100,"})) {
        const auto number_after = [&](std::string_view key) {
            const std::size_t at = line.find(key) + key.size();
            return std::stoll(line.substr(at));
        };
        arrivals.emplace_back(number_after("\"arrive\":"), number_after("\"seq\":"));
    }
    REQUIRE(arrivals.size() >= 200);
    std::sort(arrivals.begin(), arrivals.end());
    const bool reordered = !std::is_sorted(arrivals.begin(), arrivals.end(),
                                           [](const auto& a, const auto& b) { return a.second < b.second; });
    CHECK(reordered);
}

TEST_CASE("a partition loses segments, after the heal the retransmission timer delivers everything", "[sim][tcp]") {
    Net net;
    Pair pair = connect_across(net);
    const Nanos start = net.world.now();
    net.world.add_fault(PartitionFault{"client", "server", start, 1s});
    send_whole(net.client, pair.client.get(), pattern(0, 1000));
    CHECK(wait_for_unread(net.server, pair.server.get(), 1, 999) == 0);
    // Sent at +0, again at +200 ms and +600 ms (all lost), and at +1400 ms,
    // after the heal: the timeout doubles each time.
    CHECK(receive_pattern(net.server, pair.server.get(), 1000) == 1000);
    CHECK(net.world.now() - start == 1400ms + 1ms);
    CHECK(net.lines_with({"\"drop\":\"partition\""}).size() == 3);
    CHECK(net.world.stats().retransmissions == 3);
}

TEST_CASE("a partition that outlasts the retransmissions fails the connection with ETIMEDOUT", "[sim][tcp]") {
    WorldOptions options = Net::quiet();
    options.tcp.retries = 3;
    Net net(options);
    Pair pair = connect_across(net);
    const Nanos start = net.world.now();
    net.world.add_fault(PartitionFault{"server", "client", start, 1h});
    send_whole(net.client, pair.client.get(), pattern(0, 10));
    REQUIRE((wait_for(net.client, pair.client.get(), EPOLLIN, long_wait_ms) & EPOLLERR) != 0);
    CHECK(net.world.now() - start == 200ms + 400ms + 800ms + 1600ms);
    std::array<std::uint8_t, 16> buffer{};
    CHECK(errno_name(net.client.recv(pair.client.get(), buffer, 0).error) == "ETIMEDOUT");
}

TEST_CASE("segments inside a window once advertised are kept while earlier ones are missing", "[sim][tcp]") {
    // The receiver counts out-of-order bytes against its buffer; before, that
    // pulled its window's right edge back in and it dropped, as beyond the
    // window, segments the sender had sent inside the window it was given.
    // Linux never moves the right edge left (tcp_select_window).
    Net net;
    Pair pair = connect_across(net, 80, 2304);  // server window: 4608 bytes
    net.world.add_fault(ReorderFault{"client", "server", net.world.now(), 1h, 0, 1, 5ms, {1}});
    const Nanos start = net.world.now();
    send_whole(net.client, pair.client.get(), pattern(0, 4608));  // 1460, 1460, 1460, 228
    CHECK(receive_pattern(net.server, pair.server.get(), 4608) == 4608);
    CHECK(net.lines_with({"\"ev\":\"beyond_window\""}).empty());
    CHECK(net.world.stats().retransmissions == 0);
    CHECK(net.world.now() - start == 6ms);  // the held-back first segment, 5 ms late
}

TEST_CASE("a delay fault adds its extra to every segment in its period, a delay beyond the RTO retransmits",
          "[sim][tcp]") {
    Net net;
    Pair pair = connect_across(net);
    const Nanos start = net.world.now();
    net.world.add_fault(DelayFault{"client", "server", start, 1s, 250ms});
    send_whole(net.client, pair.client.get(), pattern(0, 100));
    CHECK(wait_for_unread(net.server, pair.server.get(), 100, long_wait_ms) == 100);
    CHECK(net.world.now() - start == 251ms);
    // 250 ms is longer than the retransmission timeout: at 200 ms the
    // sender gives the segment up for lost and sends it again (delayed
    // too); the receiver drops the duplicate.
    CHECK(net.lines_with({"\"fault\":\"delayed\""}).size() == 2);
    CHECK(net.world.stats().retransmissions == 1);
    CHECK(wait_for_unread(net.server, pair.server.get(), 101, 1000) == 100);
    CHECK(recv_available(net.server, pair.server.get()) == pattern(0, 100));
}

TEST_CASE("a reorder fault holds segments back so later ones overtake them, and the stream stays intact",
          "[sim][tcp]") {
    WorldOptions options = Net::quiet();
    options.link.mss = 100;
    Net net(options);
    Pair pair = connect_across(net);
    net.world.add_fault(ReorderFault{"client", "server", net.world.now(), 1h, 1, 3, 5ms});
    send_whole(net.client, pair.client.get(), pattern(0, 10000));
    CHECK(receive_pattern(net.server, pair.server.get(), 10000) == 10000);
    const std::size_t held = net.lines_with({"\"fault\":\"held back\""}).size();
    CHECK(held >= 15);  // about a third of 100 data segments
    CHECK(held <= 60);
}

TEST_CASE("a reset fault at a time resets both ends: ECONNRESET on each", "[sim][tcp][faults]") {
    Net net;
    Pair pair = connect_across(net);
    net.world.add_fault(ResetFault{"server", 80, net.world.now() + 10ms, -1, false});
    REQUIRE((wait_for(net.server, pair.server.get(), EPOLLIN, long_wait_ms) & EPOLLERR) != 0);
    REQUIRE((wait_for(net.client, pair.client.get(), EPOLLIN, long_wait_ms) & EPOLLERR) != 0);
    std::array<std::uint8_t, 16> buffer{};
    CHECK(errno_name(net.server.recv(pair.server.get(), buffer, 0).error) == "ECONNRESET");
    CHECK(errno_name(net.client.send(pair.client.get(), std::span(buffer).first(1), MSG_NOSIGNAL).error) ==
          "ECONNRESET");
    CHECK(errno_name(net.client.send(pair.client.get(), std::span(buffer).first(1), MSG_NOSIGNAL).error) == "EPIPE");
    CHECK(net.client.sigpipe_count() == 0);
}

TEST_CASE("a reset fault at a stream offset delivers exactly the bytes before it, then ECONNRESET",
          "[sim][tcp][faults]") {
    Net net;
    Pair pair = connect_across(net);
    net.world.add_fault(ResetFault{"server", 80, -1ns, 2500, false});
    send_whole(net.client, pair.client.get(), pattern(0, 4000));
    REQUIRE((wait_for(net.server, pair.server.get(), EPOLLRDHUP, long_wait_ms) & EPOLLERR) != 0);
    CHECK(net.server.ioctl_fionread(pair.server.get()).value == 2500);
    std::vector<std::uint8_t> got(4000);
    const SizeResult read = net.server.recv(pair.server.get(), got, 0);
    REQUIRE(read.ok());
    got.resize(read.value);
    CHECK(got == pattern(0, 2500));
    std::array<std::uint8_t, 16> buffer{};
    CHECK(errno_name(net.server.recv(pair.server.get(), buffer, 0).error) == "ECONNRESET");
    // Without MSG_NOSIGNAL the writer would have died of SIGPIPE: counted.
    REQUIRE((wait_for(net.client, pair.client.get(), EPOLLRDHUP, long_wait_ms) & EPOLLERR) != 0);
    CHECK(errno_name(net.client.send(pair.client.get(), std::span(buffer).first(1), 0).error) == "ECONNRESET");
    CHECK(errno_name(net.client.send(pair.client.get(), std::span(buffer).first(1), 0).error) == "EPIPE");
    CHECK(net.client.sigpipe_count() == 1);
}

TEST_CASE("a forced zero window stalls the writer for its duration, the window update at its end resumes it",
          "[sim][tcp][faults]") {
    Net net;
    Pair pair = connect_across(net);
    const Nanos start = net.world.now();
    net.world.add_fault(ZeroWindowFault{"server", 80, start, 10s});
    send_whole(net.client, pair.client.get(), pattern(0, 3000));
    CHECK(wait_for_unread(net.server, pair.server.get(), 1, 9999) == 0);
    CHECK(net.lines_with({"\"ev\":\"beyond_window\""}).size() >= 1);
    CHECK(receive_pattern(net.server, pair.server.get(), 3000) == 3000);
    // The window update leaves at 10 s and arrives 1 ms later; the data it
    // lets out arrives 1 ms after that.
    CHECK(net.world.now() - start == 10s + 2ms);
}

TEST_CASE("timeouts while the peer's window is zero are probes, not retransmissions: a long zero window survives",
          "[sim][tcp][faults]") {
    // Data in flight when the window closes is dropped beyond it; the timer
    // that then fires finds the window zero. Before, that timeout counted
    // as a retransmission (and sent data into the closed window). Linux's
    // persist timer probes instead and counts only unanswered probes, so a
    // zero window far longer than the retries (here 3: 0.2 + 0.4 + 0.8 +
    // 1.6 s) does not fail a connection whose peer answers every probe.
    WorldOptions options = Net::quiet();
    options.tcp.retries = 3;
    Net net(options);
    Pair pair = connect_across(net);
    const Nanos start = net.world.now();
    net.world.add_fault(ZeroWindowFault{"server", 80, start, 10s});
    send_whole(net.client, pair.client.get(), pattern(0, 3000));
    CHECK(receive_pattern(net.server, pair.server.get(), 3000) == 3000);
    CHECK(net.world.now() - start == 10s + 2ms);
    CHECK(net.client.socket_error(pair.client.get()).value == 0);
    CHECK(net.world.stats().retransmissions == 0);
    CHECK(net.lines_with({"\"ev\":\"timer\"", "zero window probe"}).size() >= 4);
}

TEST_CASE("strict edge mode wakes only when a buffer turns non-empty, Linux mode on every arrival", "[sim][epoll]") {
    const auto wakes_for_second_arrival = [](EdgeMode mode) {
        WorldOptions options = Net::quiet();
        World world(options);
        world.add_host("client");
        HostOptions host_options;
        host_options.edge_mode = mode;
        SimKernel& client = world.host(0);
        SimKernel& server = world.add_host("server", host_options);
        Fd listener = listen_at(server, 80);
        Fd sender = open_socket(client);
        REQUIRE(client.connect(sender.get(), server.address(AF_INET, 80)).error == EINPROGRESS);
        REQUIRE(wait_for(server, listener.get(), EPOLLIN, long_wait_ms) == EPOLLIN);
        const Fd receiver(server, server.accept4(listener.get(), nullptr, SOCK_NONBLOCK).value);
        const Fd epoll = conformance::make_epoll(server);
        conformance::add_interest(server, epoll.get(), receiver.get(), EPOLLIN | EPOLLET);
        send_whole(client, sender.get(), "one");
        REQUIRE(conformance::wait_once(server, epoll.get(), receiver.get(), long_wait_ms) == EPOLLIN);
        send_whole(client, sender.get(), "two");  // arrives while "one" is unread
        return conformance::wait_once(server, epoll.get(), receiver.get(), 100) == EPOLLIN;
    };
    CHECK(wakes_for_second_arrival(EdgeMode::linux_every_arrival));
    CHECK_FALSE(wakes_for_second_arrival(EdgeMode::transition_only));
}

TEST_CASE("descriptors are the lowest free numbers, and fd_limit gives EMFILE", "[sim][kernel]") {
    World world;
    HostOptions options;
    options.fd_limit = 6;  // 0-2 are stdio
    SimKernel& host = world.add_host("h", options);
    const int a = host.socket(AF_INET, SOCK_STREAM, 0).value;
    const int b = host.socket(AF_INET, SOCK_STREAM, 0).value;
    const int c = host.socket(AF_INET, SOCK_STREAM, 0).value;
    CHECK(std::vector{a, b, c} == std::vector{3, 4, 5});
    CHECK(errno_name(host.socket(AF_INET, SOCK_STREAM, 0).error) == "EMFILE");
    REQUIRE(host.close(b).ok());
    CHECK(host.epoll_create1(0).value == 4);
    CHECK(host.open_fd_count() == 6);
    CHECK(errno_name(host.close(b + 10).error) == "EBADF");
}

TEST_CASE("a program spinning on a level-triggered event it never consumes is reported as a livelock", "[sim][world]") {
    struct Ignore final : Reactor::Handler {
        void on_ready(std::uint32_t /*events*/) override {}
    };
    WorldOptions options = Net::quiet();
    options.max_rounds_per_instant = 50;
    Net net(options);
    Pair pair = connect_across(net);
    Reactor reactor(net.server);
    Ignore ignore;
    REQUIRE(reactor.add(pair.server.get(), EPOLLIN, ignore).ok());
    net.world.add_reactor(net.server, reactor);
    send_whole(net.client, pair.client.get(), "never read");
    CHECK(net.world.run_for(1s) == RunStatus::livelock);
    CHECK(net.lines_with({"\"ev\":\"livelock\""}).size() == 1);
    REQUIRE(reactor.remove(pair.server.get()).ok());
}

TEST_CASE("the same seed gives the same trace, another seed a different one", "[sim][determinism]") {
    const auto run = [](std::uint64_t seed) {
        WorldOptions options = Net::quiet();
        options.seed = seed;
        options.link.jitter = 3ms;
        options.link.mss = 200;
        Net net(options);
        Pair pair = connect_across(net);
        send_whole(net.client, pair.client.get(), pattern(0, 5000));
        REQUIRE(receive_pattern(net.server, pair.server.get(), 5000) == 5000);
        return net.world.trace().lines();
    };
    const std::vector<std::string> first = run(1);
    CHECK(first == run(1));
    CHECK(first != run(2));
}

}  // namespace eagain::sim
