#include "harness/one_connection_client.h"

#include "apps/load_client.h"
#include "core/assert.h"
#include "core/connection_driver.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace eagain::harness {

namespace {

class OneConnectionClient final : public App {
public:
    OneConnectionClient(const AppContext& context, const OneConnectionOptions& options)
        : reactor_(context.reactor), address_(context.address), seed_(context.seed), options_(options) {
        EAGAIN_ASSERT(options_.in_flight > 0);
        body_.resize(options_.body_bytes);
        callbacks_.client = this;
    }

    VoidResult start() override {
        EAGAIN_ASSERT(!driver_);
        driver_ = std::make_unique<ConnectionDriver>(reactor_, callbacks_, ConnectionRole::client, options_.connection,
                                                     options_.transport, seed_);
        driver_->start_connect(address_);
        return VoidResult::success({});
    }

    // At once, as a crash would: no ending is recorded.
    void stop() override {
        if (!driver_)
            return;
        stopped_stats_ = driver_->connection().stats();
        driver_.reset();
    }

    bool done() const override { return driver_ == nullptr || driver_->finished(); }

    void act(std::string_view action) override {
        if (!driver_)
            return;
        if (action == "close")
            driver_->close();
        else if (action == "stop-reading")
            driver_->pause_reading();
        else if (action == "resume-reading")
            driver_->resume_reading();
    }

    AppObservations observations() const override {
        AppObservations o;
        o.frames_verified = verified_;
        o.mismatches = mismatches_;
        o.errors = errors_;
        o.problems = problems_;
        ConnectionTally tally = tally_;
        tally.add(driver_ ? driver_->connection().stats() : stopped_stats_);
        note_tally(o, tally);
        o.finished = finished_;
        return o;
    }

private:
    struct Callbacks final : ConnectionDriver::App {
        OneConnectionClient* client = nullptr;
        void on_established(ConnectionDriver& driver) override { client->established(driver); }
        void on_frame(ConnectionDriver& driver, const Frame& frame) override { client->verify(driver, frame); }
        void on_closed(ConnectionDriver& /*driver*/, const CloseInfo& info, bool reconnecting) override {
            client->ended(info, reconnecting);
        }
        void on_transition(ConnectionDriver& /*driver*/, const Transition& transition) override {
            client->tally_.note(transition);
        }
    };

    Nanos now() const { return reactor_.sys().now(); }

    void problem(std::string what) {
        if (problems_.size() < problems_kept)
            problems_.push_back(std::move(what));
    }

    // Verification restarts per connection: resend from the first frame
    // not yet verified.
    void established(ConnectionDriver& driver) {
        next_to_send_ = verified_;
        send_more(driver);
    }

    void send_more(ConnectionDriver& driver) {
        while (next_to_send_ < options_.frames && next_to_send_ - verified_ < options_.in_flight) {
            const auto seq = static_cast<std::uint32_t>(next_to_send_);
            DefaultHeader header;
            header.cmd = LoadClient::frame_cmd;
            header.seq = seq;
            LoadClient::fill_body(0, seq, body_);
            if (const SendError error = driver.send_frame(header, body_); error != SendError::none) {
                // The connection ends (output limit) or is already ending:
                // on_closed says how.
                problem("send_frame of seq " + std::to_string(seq) + ": " + std::string(to_string(error)));
                return;
            }
            ++next_to_send_;
        }
    }

    void verify(ConnectionDriver& driver, const Frame& frame) {
        const DefaultHeader header = DefaultHeader::parse(frame.header.first<DefaultHeader::size_bytes>());
        const std::uint64_t seq = verified_;
        std::string wrong;
        if (header.cmd != LoadClient::frame_cmd || header.reserved1 != 0) {
            wrong = "header cmd " + std::to_string(header.cmd) + " / connection " + std::to_string(header.reserved1);
        } else if (header.seq != seq) {
            wrong = "seq " + std::to_string(header.seq) + ", expected " + std::to_string(seq);
        } else if (seq >= next_to_send_) {
            wrong = "seq " + std::to_string(seq) + " that was never sent";
        } else if (frame.body.size() != body_.size()) {
            wrong = "body of " + std::to_string(frame.body.size()) + " bytes, expected " + std::to_string(body_.size());
        } else {
            LoadClient::fill_body(0, header.seq, body_);
            if (!body_.empty() && std::memcmp(body_.data(), frame.body.data(), body_.size()) != 0) {
                const auto mine = std::mismatch(body_.begin(), body_.end(), frame.body.begin()).first;
                wrong = "body byte " + std::to_string(mine - body_.begin()) + " of seq " + std::to_string(seq);
            }
        }
        if (!wrong.empty()) {
            ++mismatches_;
            problem("mismatch: " + wrong);
            driver.close();
            return;
        }
        ++verified_;
        finished_ = now();
        if (verified_ == options_.frames) {
            driver.close();
            return;
        }
        send_more(driver);
    }

    void ended(const CloseInfo& info, bool reconnecting) {
        tally_.note_ending(info);
        finished_ = now();
        if (reconnecting)
            return;  // a loss it recovers from is not an error
        if (info.reason == CloseReason::local_close && verified_ == options_.frames)
            return;
        ++errors_;
        problem(options_.frames == 0 ? "ended: " + describe(info)
                                     : "ended after " + std::to_string(verified_) + " of " +
                                           std::to_string(options_.frames) + " frames: " + describe(info));
    }

    Reactor& reactor_;
    SockAddr address_;
    std::uint64_t seed_;
    OneConnectionOptions options_;
    Callbacks callbacks_;
    std::unique_ptr<ConnectionDriver> driver_;
    std::vector<std::uint8_t> body_;  // scratch for building and checking bodies
    std::uint64_t next_to_send_ = 0;  // on this connection
    std::uint64_t verified_ = 0;      // over all connections: the frames done
    std::uint64_t mismatches_ = 0;
    std::uint64_t errors_ = 0;
    std::vector<std::string> problems_;
    ConnectionTally tally_;
    ConnectionStats stopped_stats_;
    Nanos finished_{};
};

}  // namespace

std::unique_ptr<App> make_one_connection_client(const AppContext& context, const OneConnectionOptions& options) {
    return std::make_unique<OneConnectionClient>(context, options);
}

}  // namespace eagain::harness
