// A byte echo server written the way the seed programs write one, with one
// pitfall each, WRONG ON PURPOSE. Registered in place of frame-echo or
// byte-echo for tests only (ScenarioRunOptions::apps), to show that a
// scenario catches the bug its opening comment names. Apart from its
// pitfall each variant is careful: it reads to EAGAIN where it should,
// closes on recv 0, and never leaks an fd, so a failure is the pitfall's
// and nothing else's.
#pragma once

#include "core/reactor.h"
#include "harness/runner.h"
#include "tests/pitfalls/naive_io.h"

#include <sys/epoll.h>

#include <array>
#include <map>
#include <memory>

namespace eagain::scenarios {

enum class NaivePitfall : std::uint8_t {
    ignores_partial_writes,  // send once, never look at the count
    eintr_is_fatal,          // EINTR on recv or send closes the connection
    one_read_per_edge,       // edge-triggered, yet one recv per wake-up, as if level-triggered
};

class NaiveEchoServer final : public harness::App, private Reactor::Handler {
public:
    NaiveEchoServer(const harness::AppContext& context, NaivePitfall pitfall)
        : reactor_(context.reactor), address_(context.address), pitfall_(pitfall) {}
    ~NaiveEchoServer() override { stop(); }

    VoidResult start() override {
        Sys& sys = reactor_.sys();
        const FdResult fd = sys.socket(address_.family(), SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (!fd.ok())
            return VoidResult::failure(fd.error);
        listener_ = fd.value;
        for (const VoidResult step :
             {sys.bind(listener_, address_), sys.listen(listener_, 128), reactor_.add(listener_, EPOLLIN, *this)}) {
            if (!step.ok())
                return step;
        }
        return VoidResult::success({});
    }

    void stop() override {
        for (auto& [fd, connection] : connections_)
            close_connection(fd);
        connections_.clear();
        if (listener_ >= 0) {
            (void)reactor_.remove(listener_);
            (void)reactor_.sys().close(listener_);
            listener_ = -1;
        }
    }

    bool done() const override { return true; }
    void act(std::string_view /*action*/) override {}
    harness::AppObservations observations() const override { return {}; }

private:
    struct Connection final : Reactor::Handler {
        NaiveEchoServer* server = nullptr;
        int fd = -1;
        void on_ready(std::uint32_t /*events*/) override { server->echo(fd); }
    };

    // The listener.
    void on_ready(std::uint32_t /*events*/) override {
        for (int i = 0; i < 64; ++i) {
            const FdResult accepted = reactor_.sys().accept4(listener_, nullptr, SOCK_NONBLOCK);
            if (!accepted.ok())
                return;
            auto connection = std::make_unique<Connection>();
            connection->server = this;
            connection->fd = accepted.value;
            const std::uint32_t edge = pitfall_ == NaivePitfall::one_read_per_edge ? EPOLLET : 0U;
            (void)reactor_.add(accepted.value, EPOLLIN | edge, *connection);
            connections_[accepted.value] = std::move(connection);
        }
    }

    void echo(int fd) {
        Sys& sys = reactor_.sys();
        std::array<std::uint8_t, 4096> chunk{};
        const SizeResult n = sys.recv(fd, chunk, 0);
        if (!n.ok()) {
            // Level-triggered, epoll says so again. (one_read_per_edge: an
            // edge-triggered socket says nothing more about bytes left behind.)
            if (would_block(n.error) || (n.error == EINTR && pitfall_ != NaivePitfall::eintr_is_fatal))
                return;
            finish(fd);
            return;
        }
        if (n.value == 0) {
            finish(fd);
            return;
        }
        const std::span<const std::uint8_t> bytes(chunk.data(), n.value);
        if (pitfall_ == NaivePitfall::ignores_partial_writes) {
            pitfalls::naive_send_ignoring_count(sys, fd, bytes);
            return;
        }
        // eintr_is_fatal: partial writes are continued, but any error but
        // EAGAIN ends the connection, EINTR included:
        //     if (n < 0) { if (errno == EAGAIN) return; perror("send"); close(fd); }
        // (EAGAIN drops the rest too, a second pitfall its scenario leaves alone.)
        // one_read_per_edge sends the same way but retries EINTR; its
        // scenario keeps little in flight, so its sends never meet EAGAIN.
        std::size_t sent = 0;
        for (int call = 0; call < 1000 && sent < bytes.size(); ++call) {
            const SizeResult r = sys.send(fd, bytes.subspan(sent), MSG_NOSIGNAL);
            if (!r.ok() && r.error == EINTR && pitfall_ == NaivePitfall::one_read_per_edge)
                continue;
            if (!r.ok()) {
                if (!would_block(r.error))
                    finish(fd);
                return;
            }
            sent += r.value;
        }
    }

    void finish(int fd) {
        close_connection(fd);
        connections_.erase(fd);
    }
    void close_connection(int fd) {
        (void)reactor_.remove(fd);
        (void)reactor_.sys().close(fd);
    }

    Reactor& reactor_;
    SockAddr address_;
    NaivePitfall pitfall_;
    int listener_ = -1;
    std::map<int, std::unique_ptr<Connection>> connections_;
};

}  // namespace eagain::scenarios
