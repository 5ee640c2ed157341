// The built-in app kinds (harness/app.h) and what they observe.
#include "apps/frame_echo_server.h"
#include "apps/load_client.h"
#include "harness/app.h"

#include <algorithm>
#include <utility>

namespace eagain::harness {

void AppObservations::merge(const AppObservations& other) {
    frames_verified += other.frames_verified;
    mismatches += other.mismatches;
    errors += other.errors;
    for (const std::string& p : other.problems) {
        if (problems.size() < problems_kept)
            problems.push_back(p);
    }
    endings.insert(endings.end(), other.endings.begin(), other.endings.end());
    states.insert(other.states.begin(), other.states.end());
    connect_attempts.insert(connect_attempts.end(), other.connect_attempts.begin(), other.connect_attempts.end());
    std::sort(connect_attempts.begin(), connect_attempts.end());
    heartbeats_sent += other.heartbeats_sent;
    max_buffered_bytes = std::max(max_buffered_bytes, other.max_buffered_bytes);
    bytes_received += other.bytes_received;
    finished = std::max(finished, other.finished);
}

void note_ending(AppObservations& observations, const CloseInfo& info) {
    if (info.errno_value != 0)
        observations.endings.push_back(errno_name(info.errno_value));
    observations.endings.emplace_back(to_string(info.reason));
}

void note_problem(AppObservations& observations, std::string what) {
    if (observations.problems.size() < problems_kept)
        observations.problems.push_back(std::move(what));
}

namespace {

std::uint64_t option_count(const AppSpec& app, const std::string& key, std::uint64_t fallback) {
    const auto found = app.options.find(key);
    return found == app.options.end() ? fallback : parse_count(found->second).value_or(fallback);
}

std::uint64_t option_size(const AppSpec& app, const std::string& key, std::uint64_t fallback) {
    const auto found = app.options.find(key);
    return found == app.options.end() ? fallback : parse_size(found->second).value_or(fallback);
}

TriggerMode trigger_of(const AppSpec& app) {
    const auto found = app.options.find("trigger");
    if (found == app.options.end() || found->second == "level")
        return TriggerMode::level;
    return found->second == "edge" ? TriggerMode::edge : TriggerMode::oneshot;
}

// frame-echo: FrameEchoServer.
class FrameEchoApp final : public App {
public:
    explicit FrameEchoApp(const AppContext& context) : reactor_(context.reactor) {
        options_.listen_address = context.address;
        options_.transport.trigger = trigger_of(context.spec);
        options_.connection.max_frame_bytes = option_size(context.spec, "max-frame", 16U << 20);
        options_.connection.heartbeat_idle_timeout = Nanos{0};
        options_.connection.dead_peer_intervals = 0;
        options_.seed = context.seed;
    }
    VoidResult start() override {
        server_ = std::make_unique<FrameEchoServer>(reactor_, options_);
        return server_->open();
    }
    void stop() override {
        if (server_)
            server_->stop();
    }
    bool done() const override { return true; }
    void act(std::string_view /*action*/) override {}
    AppObservations observations() const override { return {}; }

private:
    Reactor& reactor_;
    EchoServerOptions options_;
    std::unique_ptr<FrameEchoServer> server_;
};

// frame-client: LoadClient.
class FrameClientApp final : public App {
public:
    explicit FrameClientApp(const AppContext& context) : reactor_(context.reactor) {
        const AppSpec& spec = context.spec;
        options_.server = context.address;
        options_.connections = static_cast<std::size_t>(option_count(spec, "conns", 1));
        options_.frames = option_count(spec, "frames", 100);
        options_.body_bytes = static_cast<std::size_t>(option_size(spec, "size", 64));
        options_.in_flight_per_connection = static_cast<std::size_t>(option_count(spec, "in-flight", 32));
        options_.transport.trigger = trigger_of(spec);
        options_.seed = context.seed;
    }
    VoidResult start() override {
        client_ = std::make_unique<LoadClient>(reactor_, options_);
        client_->start();
        return VoidResult::success({});
    }
    void stop() override { client_.reset(); }
    bool done() const override { return client_ == nullptr || client_->done(); }
    void act(std::string_view /*action*/) override {}
    AppObservations observations() const override {
        AppObservations o;
        if (!client_)
            return o;
        const LoadReport& report = client_->report();
        o.frames_verified = report.frames_verified;
        o.mismatches = report.mismatches;
        o.errors = report.errors;
        o.problems = report.problems;
        for (const CloseInfo& info : report.endings)
            note_ending(o, info);
        o.finished = report.finished;
        return o;
    }

private:
    Reactor& reactor_;
    LoadOptions options_;
    std::unique_ptr<LoadClient> client_;
};

template <class T>
AppFactory make() {
    return [](const AppContext& context) { return std::make_unique<T>(context); };
}

}  // namespace

const std::map<std::string, AppKind>& builtin_app_kinds() {
    static const std::map<std::string, AppKind> kinds{
        {"frame-echo", {make<FrameEchoApp>(), true, {}, {}}},
        {"frame-client", {make<FrameClientApp>(), false, {}, {"frames-verified", "no-errors", "error"}}},
    };
    static const std::map<std::string, AppKind> with_byte_kinds = add_byte_app_kinds(kinds);
    return with_byte_kinds;
}

}  // namespace eagain::harness
