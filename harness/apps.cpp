// The built-in app kinds (harness/app.h) and what they observe.
//
// Every kind reads its options (docs/scenario-language.md has the table and
// the defaults) into the config of the core code it runs, and refuses,
// before the run, options that make a config Connection would not accept.
// Heartbeats: `heartbeat D` sets the idle time before a ping; absent or 0
// means none (for idle-client the default is 30s), and with pings on a peer
// silent for 3 intervals (idle-client: `dead-after N`) is dead.
#include "apps/frame_echo_server.h"
#include "apps/load_client.h"
#include "harness/app.h"
#include "harness/one_connection_client.h"

#include <algorithm>
#include <array>
#include <limits>
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
    for (const std::string& ending : other.endings) {
        if (std::find(endings.begin(), endings.end(), ending) == endings.end())
            endings.push_back(ending);
    }
    states.insert(other.states.begin(), other.states.end());
    connect_attempts.insert(connect_attempts.end(), other.connect_attempts.begin(), other.connect_attempts.end());
    std::sort(connect_attempts.begin(), connect_attempts.end());
    heartbeats_sent += other.heartbeats_sent;
    max_buffered_bytes = std::max(max_buffered_bytes, other.max_buffered_bytes);
    bytes_received += other.bytes_received;
    finished = std::max(finished, other.finished);
}

void note_ending(AppObservations& observations, const CloseInfo& info) {
    const auto add = [&](std::string name) {
        if (std::find(observations.endings.begin(), observations.endings.end(), name) == observations.endings.end())
            observations.endings.push_back(std::move(name));
    };
    if (info.errno_value != 0)
        add(errno_name(info.errno_value));
    add(std::string(to_string(info.reason)));
}

void note_tally(AppObservations& observations, const ConnectionTally& tally) {
    observations.heartbeats_sent += tally.pings_sent;
    observations.max_buffered_bytes = std::max(observations.max_buffered_bytes, tally.max_output_bytes);
    static constexpr std::array<ConnectionState, 8> states{
        ConnectionState::idle,    ConnectionState::connecting,        ConnectionState::established,
        ConnectionState::closing, ConnectionState::half_closed_local, ConnectionState::half_closed_remote,
        ConnectionState::closed,  ConnectionState::backoff,
    };
    for (const ConnectionState state : states) {
        if (!tally.reached(state))
            continue;
        observations.states.emplace(to_string(state));
    }
    observations.connect_attempts.insert(observations.connect_attempts.end(), tally.connect_times.begin(),
                                         tally.connect_times.end());
    for (const EndingCount& ending : tally.endings)
        note_ending(observations, CloseInfo{ending.reason, ending.errno_value, {}});
}

void note_problem(AppObservations& observations, std::string what) {
    if (observations.problems.size() < problems_kept)
        observations.problems.push_back(std::move(what));
}

std::uint64_t option_count(const AppSpec& app, const std::string& key, std::uint64_t fallback) {
    const auto found = app.options.find(key);
    return found == app.options.end() ? fallback : parse_count(found->second).value_or(fallback);
}

std::uint64_t option_size(const AppSpec& app, const std::string& key, std::uint64_t fallback) {
    const auto found = app.options.find(key);
    return found == app.options.end() ? fallback : parse_size(found->second).value_or(fallback);
}

Nanos option_duration(const AppSpec& app, const std::string& key, Nanos fallback) {
    const auto found = app.options.find(key);
    return found == app.options.end() ? fallback : parse_duration(found->second).value_or(fallback);
}

std::uint32_t option_percent(const AppSpec& app, const std::string& key, std::uint32_t fallback) {
    const auto found = app.options.find(key);
    if (found == app.options.end() || found->second.empty())
        return fallback;
    const std::string& text = found->second;
    const auto n = parse_count(std::string_view(text).substr(0, text.size() - 1));
    return n ? static_cast<std::uint32_t>(std::min<std::uint64_t>(*n, 100)) : fallback;
}

TriggerMode trigger_of(const AppSpec& app) {
    const auto found = app.options.find("trigger");
    if (found == app.options.end() || found->second == "level")
        return TriggerMode::level;
    return found->second == "edge" ? TriggerMode::edge : TriggerMode::oneshot;
}

namespace {

using namespace std::chrono_literals;

// --- options (the parser checked their form) -----------------------------------

TransportOptions transport_of(const AppSpec& app) {
    TransportOptions transport;
    transport.trigger = trigger_of(app);
    return transport;
}

// `connect-timeout D` of the client kinds: an attempt still connecting after
// D fails with connect_timeout (ETIMEDOUT); 0: none (the kernel's SYN
// retries still end it). Absent: the Connection's default, 10s.
void set_connect_timeout(ConnectionConfig& config, const AppSpec& app) {
    config.connect_timeout = option_duration(app, "connect-timeout", config.connect_timeout);
}

// `heartbeat D` (0: none) with a dead peer after dead_after silent intervals.
void set_heartbeat(ConnectionConfig& config, Nanos idle, std::uint32_t dead_after) {
    config.heartbeat_idle_timeout = idle;
    config.dead_peer_intervals = idle > Nanos{0} ? dead_after : 0;
}

// Frame seqs are 32 bits on the wire.
constexpr std::uint64_t frames_max = std::numeric_limits<std::uint32_t>::max();

std::string config_problem(const ConnectionConfig& config, ConnectionRole role) {
    const ConfigError error = validate(config, role);
    return error == ConfigError::none
               ? std::string()
               : "its options make a connection config that is not valid (" + std::string(to_string(error)) + ")";
}

// --- frame-echo: FrameEchoServer ------------------------------------------------

EchoServerOptions echo_options(const AppSpec& spec) {
    EchoServerOptions options;
    options.transport = transport_of(spec);
    options.connection.max_frame_bytes = option_size(spec, "max-frame", 16U << 20);
    // Room for a frame at the maximum and as much again queued before it
    // (validate() wants at least one).
    const std::uint64_t max_frame = options.connection.max_frame_bytes;  // may be out of range: check_options says so
    const std::uint64_t twice = max_frame > std::numeric_limits<std::uint64_t>::max() / 2 ? max_frame : 2 * max_frame;
    options.connection.output_limit_bytes =
        std::max(options.connection.output_limit_bytes, static_cast<std::size_t>(twice));
    set_heartbeat(options.connection, option_duration(spec, "heartbeat", Nanos{0}), 3);
    options.backlog =
        static_cast<int>(std::min<std::uint64_t>(option_count(spec, "backlog", 1024), std::numeric_limits<int>::max()));
    return options;
}

class FrameEchoApp final : public App {
public:
    explicit FrameEchoApp(const AppContext& context) : reactor_(context.reactor), options_(echo_options(context.spec)) {
        options_.listen_address = context.address;
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
    void act(std::string_view action) override {
        if (!server_)
            return;
        if (action == "stop-reading")
            server_->pause_reading();
        else if (action == "resume-reading")
            server_->resume_reading();
    }
    AppObservations observations() const override {
        AppObservations o;
        if (server_)
            note_tally(o, server_->tally());
        return o;
    }

private:
    Reactor& reactor_;
    EchoServerOptions options_;
    std::unique_ptr<FrameEchoServer> server_;
};

// --- frame-client: LoadClient ------------------------------------------------------

LoadOptions load_options(const AppSpec& spec) {
    LoadOptions options;
    options.connections = static_cast<std::size_t>(option_count(spec, "conns", 1));
    options.frames = option_count(spec, "frames", 100);
    options.body_bytes = static_cast<std::size_t>(option_size(spec, "size", 64));
    options.in_flight_per_connection = static_cast<std::size_t>(option_count(spec, "in-flight", 32));
    options.transport = transport_of(spec);
    set_heartbeat(options.connection, option_duration(spec, "heartbeat", Nanos{0}), 3);
    set_connect_timeout(options.connection, spec);
    // Its own window of frames fits its output limits, whatever the size.
    size_for_load(options.connection, options.body_bytes, options.in_flight_per_connection);
    return options;
}

// A header of the default protocol whose body_len field holds 0xFFFFFFFF:
// -1 as the signed int32 the protocol says it is.
std::array<std::uint8_t, DefaultHeader::size_bytes> hostile_length_header() {
    DefaultHeader header;
    header.cmd = LoadClient::frame_cmd;
    header.body_len = 0xFFFFFFFFU;
    return header.bytes();
}

class FrameClientApp final : public App {
public:
    explicit FrameClientApp(const AppContext& context)
        : reactor_(context.reactor), options_(load_options(context.spec)) {
        options_.server = context.address;
        options_.seed = context.seed;
    }
    VoidResult start() override {
        client_ = std::make_unique<LoadClient>(reactor_, options_);
        client_->start();
        return VoidResult::success({});
    }
    // Closes every socket at once; what the client saw until then stays.
    void stop() override {
        if (!client_)
            return;
        stopped_ = observe(*client_);
        client_.reset();
    }
    bool done() const override { return client_ == nullptr || client_->done(); }
    void act(std::string_view action) override {
        if (!client_)
            return;
        if (action == "close") {
            client_->close();
        } else if (action == "stop-reading") {
            client_->pause_reading();
        } else if (action == "resume-reading") {
            client_->resume_reading();
        } else if (action == "send-hostile-length") {
            const auto header = hostile_length_header();
            (void)client_->send_unframed(header);
        }
    }
    AppObservations observations() const override { return client_ ? observe(*client_) : stopped_; }

private:
    static AppObservations observe(const LoadClient& client) {
        AppObservations o;
        const LoadReport& report = client.report();
        o.frames_verified = report.frames_verified;
        o.mismatches = report.mismatches;
        o.errors = report.errors;
        o.problems = report.problems;
        note_tally(o, client.tally());
        o.finished = report.finished;
        return o;
    }

    Reactor& reactor_;
    LoadOptions options_;
    std::unique_ptr<LoadClient> client_;
    AppObservations stopped_;
};

// --- idle-client and reconnecting-client -----------------------------------------------

OneConnectionOptions idle_options(const AppSpec& spec) {
    OneConnectionOptions options;
    options.transport = transport_of(spec);
    options.connection.reconnect = false;
    const Nanos idle = option_duration(spec, "heartbeat", 30s);
    options.connection.heartbeat_idle_timeout = idle;
    // Dead-peer detection needs pings: without them only an explicit
    // dead-after is kept (and refused by check_options).
    options.connection.dead_peer_intervals = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(option_count(spec, "dead-after", idle > Nanos{0} ? 3 : 0), 1U << 20));
    set_connect_timeout(options.connection, spec);
    return options;
}

OneConnectionOptions reconnecting_options(const AppSpec& spec) {
    OneConnectionOptions options;
    options.transport = transport_of(spec);
    options.frames = option_count(spec, "frames", 0);
    ConnectionConfig& config = options.connection;
    config.reconnect = true;
    config.reconnect_initial_delay = option_duration(spec, "backoff", 1s);
    config.reconnect_max_delay = option_duration(spec, "backoff-max", 60s);
    config.reconnect_jitter_percent = option_percent(spec, "jitter", 0);
    // The schedule is the subject here: no heartbeat traffic besides it.
    set_heartbeat(config, Nanos{0}, 0);
    set_connect_timeout(config, spec);
    return options;
}

template <class T>
AppFactory make() {
    return [](const AppContext& context) { return std::make_unique<T>(context); };
}

AppFactory make_one_connection(OneConnectionOptions (*options_of)(const AppSpec&)) {
    return [options_of](const AppContext& context) {
        return make_one_connection_client(context, options_of(context.spec));
    };
}

}  // namespace

const std::map<std::string, AppBuilder>& app_builders() {
    static const std::map<std::string, AppBuilder> builders{
        {"frame-echo",
         {make<FrameEchoApp>(),
          [](const AppSpec& spec) { return config_problem(echo_options(spec).connection, ConnectionRole::server); }}},
        {"frame-client",
         {make<FrameClientApp>(),
          [](const AppSpec& spec) {
              const LoadOptions options = load_options(spec);
              if (options.frames / options.connections > frames_max)
                  return std::string("frames above 2^32 per connection: seqs are 32 bits");
              return config_problem(options.connection, ConnectionRole::client);
          }}},
        {"idle-client",
         {make_one_connection(idle_options),
          [](const AppSpec& spec) { return config_problem(idle_options(spec).connection, ConnectionRole::client); }}},
        {"reconnecting-client",
         {make_one_connection(reconnecting_options),
          [](const AppSpec& spec) {
              const OneConnectionOptions options = reconnecting_options(spec);
              if (options.frames > frames_max)
                  return std::string("frames above 2^32: seqs are 32 bits");
              return config_problem(options.connection, ConnectionRole::client);
          }}},
    };
    static const std::map<std::string, AppBuilder> with_byte_kinds = add_byte_app_builders(builders);
    return with_byte_kinds;
}

}  // namespace eagain::harness
