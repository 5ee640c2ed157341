// Transport's own contract, case by case, on real loopback sockets. The
// seed pitfalls, each against a naive variant, are in tests/pitfalls/.
#include "core/transport.h"

#include "core/faulty_sys.h"
#include "core/linux_sys.h"
#include "tests/support/loopback.h"

#include <sys/epoll.h>
#include <catch2/catch.hpp>

#include <csignal>
#include <map>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using eagain::ByteBuffer;
using eagain::FaultRule;
using eagain::FaultySys;
using eagain::ReadStatus;
using eagain::SysCall;
using eagain::Transport;
using eagain::WriteStatus;

namespace {

// Remembers the interest last given to epoll for each fd.
struct InterestRecordingSys final : eagain::LinuxSys {
    std::map<int, std::uint32_t> interest;
    int epoll_ctl_calls = 0;
    eagain::VoidResult epoll_ctl(int epfd, int op, int fd, eagain::EpollEvent event) override {
        ++epoll_ctl_calls;
        if (op == EPOLL_CTL_DEL) {
            interest.erase(fd);
        } else {
            interest[fd] = event.events;
        }
        return LinuxSys::epoll_ctl(epfd, op, fd, event);
    }
};

struct Quiet final : Transport::Events {
    int readable = 0;
    int writable = 0;
    void on_readable() override { ++readable; }
    void on_writable() override { ++writable; }
};

std::span<const std::uint8_t> bytes_of(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string read_available(eagain::Sys& sys, int fd, std::size_t expected) {
    std::string got;
    for (int round = 0; round < 100 && got.size() < expected; ++round) {
        if ((eagain::test::wait_once(sys, fd, EPOLLIN) & EPOLLIN) == 0)
            break;
        std::array<std::uint8_t, 4096> buffer{};
        const eagain::SizeResult r = sys.recv(fd, buffer, 0);
        if (!r.ok() || r.value == 0)
            break;
        got.append(reinterpret_cast<const char*>(buffer.data()), r.value);
    }
    return got;
}

}  // namespace

TEST_CASE("write sends the pieces in one sendmsg and keeps exactly the bytes the kernel did not take", "[transport]") {
    eagain::LinuxSys linux_sys;
    FaultySys sys(linux_sys, 1);
    const auto pair = eagain::test::connected_pair(sys);
    FaultRule shorten;
    shorten.call = SysCall::sendmsg;
    shorten.fault = eagain::FaultKind::short_transfer;
    shorten.short_limit_bytes = 7;
    REQUIRE(sys.add_rule(shorten) == eagain::RuleError::none);

    eagain::Reactor reactor(sys);
    Quiet events;
    Transport transport(reactor, pair.client, {}, events);
    ByteBuffer output;
    const std::string header = "HEADER:";
    const std::string body = "the body of the frame";
    const std::array<std::span<const std::uint8_t>, 2> pieces{bytes_of(header), bytes_of(body)};
    const eagain::WriteOutcome w = transport.write(output, pieces);
    CHECK(w.status == WriteStatus::pending);
    CHECK(w.bytes == 7);
    CHECK(sys.calls(SysCall::sendmsg) == 1);
    const std::string kept(reinterpret_cast<const char*>(output.readable().data()), output.size());
    CHECK(kept == body);

    // What follows goes after the kept rest, never around it.
    const std::string more = "+more";
    const std::array<std::span<const std::uint8_t>, 1> next{bytes_of(more)};
    CHECK(transport.write(output, next).status == WriteStatus::done);
    CHECK(output.empty());
    CHECK(read_available(sys, pair.server, header.size() + body.size() + more.size()) == header + body + more);
    (void)sys.close(pair.server);
}

TEST_CASE("write refuses everything when the unsent rest could not fit the output limit", "[transport]") {
    eagain::LinuxSys linux_sys;
    FaultySys sys(linux_sys, 1);
    const auto pair = eagain::test::connected_pair(sys);
    eagain::Reactor reactor(sys);
    Quiet events;
    Transport transport(reactor, pair.client, {}, events);
    ByteBuffer output(8);
    const std::string frame = "more than eight bytes";
    const std::array<std::span<const std::uint8_t>, 1> pieces{bytes_of(frame)};
    const eagain::WriteOutcome w = transport.write(output, pieces);
    CHECK(w.status == WriteStatus::over_limit);
    CHECK(w.bytes == 0);
    CHECK(sys.calls(SysCall::sendmsg) + sys.calls(SysCall::send) == 0);
    CHECK(output.empty());
    (void)sys.close(pair.server);
}

TEST_CASE("sending nothing makes no syscall", "[transport]") {
    eagain::LinuxSys linux_sys;
    FaultySys sys(linux_sys, 1);
    const auto pair = eagain::test::connected_pair(sys);
    eagain::Reactor reactor(sys);
    Quiet events;
    Transport transport(reactor, pair.client, {}, events);
    ByteBuffer output;
    CHECK(transport.send({}).status == WriteStatus::done);
    CHECK(transport.flush(output).status == WriteStatus::done);
    const std::array<std::span<const std::uint8_t>, 2> empty_pieces{};
    CHECK(transport.write(output, empty_pieces).status == WriteStatus::done);
    CHECK(sys.calls(SysCall::send) + sys.calls(SysCall::sendmsg) == 0);
    (void)sys.close(pair.server);
}

TEST_CASE("EPOLLOUT is asked for exactly while a send left bytes behind", "[transport]") {
    InterestRecordingSys linux_sys;
    FaultySys sys(linux_sys, 1);
    const auto pair = eagain::test::connected_pair(sys);
    FaultRule once_short;
    once_short.call = SysCall::send;
    once_short.fault = eagain::FaultKind::short_transfer;
    once_short.short_limit_bytes = 3;
    once_short.max_hits = 1;
    REQUIRE(sys.add_rule(once_short) == eagain::RuleError::none);
    FaultRule then_full;
    then_full.call = SysCall::send;
    then_full.fault = eagain::FaultKind::eagain;
    then_full.when = eagain::CallSelector::nth_call;
    then_full.call_number = 2;
    REQUIRE(sys.add_rule(then_full) == eagain::RuleError::none);

    eagain::Reactor reactor(sys);
    Quiet events;
    Transport transport(reactor, pair.client, {}, events);
    CHECK((linux_sys.interest.at(pair.client) & EPOLLOUT) == 0);
    ByteBuffer output;
    REQUIRE(output.append(bytes_of("0123456789")));
    const eagain::WriteOutcome first = transport.flush(output);
    CHECK(first.status == WriteStatus::pending);
    CHECK(first.bytes == 3);  // then EAGAIN
    CHECK((linux_sys.interest.at(pair.client) & EPOLLOUT) != 0);

    // EPOLLOUT arrives; the flush sends the rest and drops the interest.
    for (int i = 0; i < 10 && events.writable == 0; ++i)
        REQUIRE(reactor.poll(1s).ok());
    REQUIRE(events.writable >= 1);
    CHECK(transport.flush(output).status == WriteStatus::done);
    CHECK((linux_sys.interest.at(pair.client) & EPOLLOUT) == 0);
    CHECK(read_available(sys, pair.server, 10) == "0123456789");
    (void)sys.close(pair.server);
}

TEST_CASE("a read into a full sink makes no syscall and says so", "[transport]") {
    eagain::LinuxSys linux_sys;
    FaultySys sys(linux_sys, 1);
    const auto pair = eagain::test::connected_pair(sys);
    eagain::Reactor reactor(sys);
    Quiet events;
    Transport transport(reactor, pair.server, {}, events);
    ByteBuffer sink(4);
    REQUIRE(sink.append(bytes_of("full")));
    const eagain::ReadOutcome r = transport.read(sink);
    CHECK(r.status == ReadStatus::sink_full);
    CHECK(sys.calls(SysCall::recv) == 0);
    (void)sys.close(pair.client);
}

TEST_CASE("an edge-triggered read stops at its budget and asks the reactor to wake it again", "[transport]") {
    eagain::LinuxSys sys;
    const auto pair = eagain::test::connected_pair(sys);
    const std::string data(10'000, 'x');
    REQUIRE(sys.send(pair.client, bytes_of(data), MSG_NOSIGNAL).value == data.size());
    REQUIRE((eagain::test::wait_once(sys, pair.server, EPOLLIN) & EPOLLIN) != 0);

    eagain::Reactor reactor(sys);
    Quiet events;
    eagain::TransportOptions options;
    options.trigger = eagain::TriggerMode::edge;
    options.read_budget_bytes = 4096;
    options.recv_chunk_bytes = 1024;
    Transport transport(reactor, pair.server, options, events);
    ByteBuffer sink;
    const eagain::ReadOutcome first = transport.read(sink);
    CHECK(first.status == ReadStatus::more);
    CHECK(first.bytes == 4096);
    // No new edge will come for the queued bytes; the reactor's wake-up does.
    CHECK(reactor.next_deadline().has_value());
    std::size_t total = first.bytes;
    for (int i = 0; i < 10 && total < data.size(); ++i) {
        events.readable = 0;
        REQUIRE(reactor.poll(0ms).ok());
        if (events.readable == 0)
            continue;
        total += transport.read(sink).bytes;
    }
    CHECK(total == data.size());
    (void)sys.close(pair.client);
}

TEST_CASE("a oneshot transport re-arms its registration after every event, so no readiness is lost", "[transport]") {
    InterestRecordingSys sys;
    const auto pair = eagain::test::connected_pair(sys);
    eagain::Reactor reactor(sys);
    // Reads one recv (level semantics) per event into the sink.
    struct Reader final : Transport::Events {
        Transport* transport = nullptr;
        ByteBuffer sink;
        int events = 0;
        void on_readable() override {
            ++events;
            (void)transport->read(sink);
        }
        void on_writable() override {}
    } reader;
    eagain::TransportOptions options;
    options.trigger = eagain::TriggerMode::oneshot;
    options.recv_chunk_bytes = 1000;
    Transport transport(reactor, pair.server, options, reader);
    reader.transport = &transport;
    CHECK((sys.interest.at(pair.server) & EPOLLONESHOT) != 0);

    // 5000 bytes take five events of one 1000-byte recv each: after each
    // the registration would stay disarmed without the re-arm.
    const std::string data(5000, 'y');
    REQUIRE(sys.send(pair.client, bytes_of(data), MSG_NOSIGNAL).value == data.size());
    const int ctl_before = sys.epoll_ctl_calls;
    for (int i = 0; i < 50 && reader.sink.size() < data.size(); ++i)
        REQUIRE(reactor.poll(100ms).ok());
    CHECK(reader.sink.size() == data.size());
    CHECK(reader.events == 5);
    CHECK(sys.epoll_ctl_calls - ctl_before >= 5);  // one EPOLL_CTL_MOD per event
    CHECK((sys.interest.at(pair.server) & EPOLLONESHOT) != 0);

    // Data arriving later still wakes it.
    REQUIRE(sys.send(pair.client, bytes_of("late"), MSG_NOSIGNAL).value == 4);
    for (int i = 0; i < 10 && reader.sink.size() < data.size() + 4; ++i)
        REQUIRE(reactor.poll(100ms).ok());
    CHECK(reader.sink.size() == data.size() + 4);
    (void)sys.close(pair.client);
}

namespace {
volatile std::sig_atomic_t sigpipes = 0;
void count_sigpipe(int /*signal*/) {
    sigpipes = sigpipes + 1;
}
}  // namespace

TEST_CASE("a gathered write to a reset peer fails with ECONNRESET or EPIPE and raises no SIGPIPE", "[transport]") {
    eagain::LinuxSys sys;
    const auto pair = eagain::test::connected_pair(sys);
    REQUIRE(sys.set_linger(pair.server, true, 0).ok());
    REQUIRE(sys.close(pair.server).ok());  // RST
    REQUIRE((eagain::test::wait_once(sys, pair.client, EPOLLIN) & (EPOLLERR | EPOLLHUP)) != 0);

    struct sigaction counting {};
    counting.sa_handler = count_sigpipe;
    struct sigaction previous {};
    REQUIRE(sigaction(SIGPIPE, &counting, &previous) == 0);
    sigpipes = 0;
    eagain::Reactor reactor(sys);
    Quiet events;
    Transport transport(reactor, pair.client, {}, events);
    const std::string header = "header";
    const std::string body = "body";
    const std::array<std::span<const std::uint8_t>, 2> pieces{bytes_of(header), bytes_of(body)};
    std::vector<int> errors;
    for (int i = 0; i < 3; ++i) {
        ByteBuffer output;
        const eagain::WriteOutcome w = transport.write(output, pieces);
        REQUIRE(w.status == WriteStatus::failed);
        errors.push_back(w.error);
    }
    REQUIRE(sigaction(SIGPIPE, &previous, nullptr) == 0);
    // conformance: the first call reports the reset, later ones EPIPE.
    CHECK(errors == std::vector<int>{ECONNRESET, EPIPE, EPIPE});
    CHECK(sigpipes == 0);
}
