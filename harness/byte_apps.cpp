// The byte-stream app kinds (docs/scenario-language.md): byte-echo,
// bulk-receiver and bulk-sender. The programs are apps/byte_apps.h's
// ByteEchoServer, BulkReceiverServer and BulkSender; this file only adapts
// them to a scenario: options to their config, the stop-reading and
// resume-reading actions to hold_reading, and their report to the
// observations the expectations check.
#include "apps/byte_apps.h"
#include "harness/app.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

namespace eagain::harness {
namespace {

static_assert(ByteAppReport::problems_kept == problems_kept);

// A size option bounded to [1, max_chunk_bytes] (harness/scenario.h; the
// parser refuses the rest): 0 bytes per call would make no progress.
std::size_t chunk_size(const AppSpec& app, const std::string& key) {
    return static_cast<std::size_t>(
        std::clamp<std::uint64_t>(option_size(app, key, default_byte_chunk_bytes), 1, max_chunk_bytes));
}

AppObservations observations_of(const ByteAppReport& report) {
    AppObservations observations;
    observations.mismatches = report.mismatches;
    observations.errors = report.errors;
    observations.problems = report.problems;
    observations.endings = report.endings;
    observations.states = report.states;
    observations.max_buffered_bytes = report.max_buffered_bytes;
    observations.bytes_received = report.bytes_received;
    observations.finished = report.finished;
    return observations;
}

bool holds_reading(std::string_view action) {
    return action == "stop-reading";  // else resume-reading, the only other action listed
}

// `port` is in context.address; `backlog` (1 to max_backlog) and `trigger`.
ByteServerOptions server_options(const AppContext& context) {
    ByteServerOptions options;
    options.listen_address = context.address;
    options.listener.backlog = static_cast<int>(std::clamp<std::uint64_t>(
        option_size(context.spec, "backlog", static_cast<std::uint64_t>(options.listener.backlog)), 1, max_backlog));
    options.transport.trigger = trigger_of(context.spec);
    return options;
}

template <class Server>
class ByteServerApp final : public App {
public:
    template <class Options>
    ByteServerApp(const AppContext& context, const Options& options) : server_(context.reactor, options) {}

    VoidResult start() override { return server_.open(); }
    void stop() override { server_.stop(); }
    bool done() const override { return true; }
    void act(std::string_view action) override { server_.hold_reading(holds_reading(action)); }
    AppObservations observations() const override { return observations_of(server_.report()); }

private:
    Server server_;
};

std::unique_ptr<App> make_byte_echo(const AppContext& context) {
    return std::make_unique<ByteServerApp<ByteEchoServer>>(context, server_options(context));
}

// `bytes S` expected per connection, `read-chunk S` per recv.
std::unique_ptr<App> make_bulk_receiver(const AppContext& context) {
    BulkReceiverOptions options;
    options.server = server_options(context);
    options.expected_bytes = option_size(context.spec, "bytes", 0);
    options.read_chunk_bytes = chunk_size(context.spec, "read-chunk");
    return std::make_unique<ByteServerApp<BulkReceiverServer>>(context, options);
}

class BulkSenderApp final : public App {
public:
    BulkSenderApp(const AppContext& context, const BulkSenderOptions& options) : sender_(context.reactor, options) {}

    VoidResult start() override { return sender_.start(); }
    void stop() override { sender_.stop(); }
    bool done() const override { return sender_.done(); }
    void act(std::string_view action) override { sender_.hold_reading(holds_reading(action)); }
    AppObservations observations() const override { return observations_of(sender_.report()); }

private:
    BulkSender sender_;
};

// `connect HOST:PORT` is in context.address; `bytes S`, `chunk S`,
// `connect-timeout D` and `trigger`.
std::unique_ptr<App> make_bulk_sender(const AppContext& context) {
    BulkSenderOptions options;
    options.server = context.address;
    options.total_bytes = option_size(context.spec, "bytes", 0);
    options.chunk_bytes = chunk_size(context.spec, "chunk");
    options.connect_timeout = option_duration(context.spec, "connect-timeout", Nanos{0});
    options.transport.trigger = trigger_of(context.spec);
    return std::make_unique<BulkSenderApp>(context, options);
}

}  // namespace

std::map<std::string, AppBuilder> add_byte_app_builders(std::map<std::string, AppBuilder> builders) {
    builders.emplace("byte-echo", AppBuilder{make_byte_echo, {}});
    builders.emplace("bulk-sender", AppBuilder{make_bulk_sender, {}});
    builders.emplace("bulk-receiver", AppBuilder{make_bulk_receiver, {}});
    return builders;
}

}  // namespace eagain::harness
