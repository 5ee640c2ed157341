#include "harness/runner.h"

#include "apps/frame_echo_server.h"
#include "apps/load_client.h"
#include "core/faulty_sys.h"
#include "core/reactor.h"
#include "core/rng.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <variant>

namespace eagain::harness {

namespace {

using namespace std::chrono_literals;

constexpr Nanos default_deadline = 1h;
constexpr Nanos settle_time = 1s;  // for servers to see the last FINs before fds are counted
constexpr std::size_t trace_tail_lines = 12;

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
    return found != app.options.end() && found->second == "edge" ? TriggerMode::edge : TriggerMode::level;
}

std::string statement_text(const ExpectSpec& e) {
    std::string text = "expect";
    if (!e.app.empty())
        text += " " + e.app;
    text += " " + e.what;
    for (const std::string& argument : e.arguments)
        text += " " + argument;
    return text;
}

struct Host {
    sim::SimKernel* kernel = nullptr;
    std::unique_ptr<FaultySys> faults;
    std::unique_ptr<Reactor> reactor;
    std::size_t baseline_fds = 0;
};

class FrameEchoApp final : public ServerApp {
public:
    explicit FrameEchoApp(const ServerAppContext& context) {
        EchoServerOptions options;
        options.listen_address = context.listen_address;
        options.transport.trigger = context.trigger;
        options.connection.max_frame_bytes = context.max_frame_bytes;
        options.seed = context.seed;
        server_ = std::make_unique<FrameEchoServer>(context.reactor, options);
    }
    VoidResult open() override { return server_->open(); }
    void stop() override { server_->stop(); }

private:
    std::unique_ptr<FrameEchoServer> server_;
};

struct Server {
    const AppSpec* spec = nullptr;
    ServerAppFactory factory;
    std::optional<ServerAppContext> context;
    std::unique_ptr<ServerApp> server;
};

struct Client {
    const AppSpec* spec = nullptr;
    std::unique_ptr<LoadClient> client;
    std::uint64_t frames = 0;
};

}  // namespace

ScenarioReport run_scenario(const Scenario& scenario, const ScenarioRunOptions& options) {
    ScenarioReport report;
    for (const AppSpec& app : scenario.apps) {
        if (app.kind != "frame-echo" && app.kind != "frame-client") {
            report.setup_error = "app kind " + app.kind + " (line " + std::to_string(app.where.line) +
                                 ") is not runnable yet: the runner supports frame-echo and frame-client";
            return report;
        }
        if (app.options.contains("heartbeat")) {
            report.setup_error =
                "app option heartbeat (line " + std::to_string(app.where.line) + ") is not runnable yet";
            return report;
        }
    }
    for (const ActionSpec& action : scenario.actions) {
        const auto app = std::find_if(scenario.apps.begin(), scenario.apps.end(),
                                      [&](const AppSpec& a) { return a.name == action.app; });
        if (app->kind != "frame-echo" ||
            (action.action != "stop" && action.action != "start" && action.action != "restart")) {
            report.setup_error = "action " + action.action + " on " + app->kind + " (line " +
                                 std::to_string(action.where.line) + ") is not runnable yet";
            return report;
        }
    }
    for (const ExpectSpec& e : scenario.expectations) {
        static const std::vector<std::string> runnable{"frames-verified", "no-errors",  "error",
                                                       "no-fd-leak",      "no-sigpipe", "done-by"};
        if (std::find(runnable.begin(), runnable.end(), e.what) == runnable.end()) {
            report.setup_error =
                "expectation " + e.what + " (line " + std::to_string(e.where.line) + ") is not runnable yet";
            return report;
        }
    }

    const std::uint64_t seed = options.seed.value_or(scenario.seed);
    std::deque<std::string> tail;
    sim::WorldOptions world_options;
    world_options.seed = seed;
    world_options.link = scenario.network;
    world_options.tcp = scenario.tcp;
    world_options.trace_sink = [&](std::string_view line) {
        if (tail.size() == trace_tail_lines)
            tail.pop_front();
        tail.emplace_back(line);
        if (options.trace_sink)
            options.trace_sink(line);
    };
    sim::World world(world_options);

    Rng seeds(seed);
    std::map<std::string, Host> hosts;
    for (const HostSpec& spec : scenario.hosts) {
        Host& host = hosts[spec.name];
        host.kernel = &world.add_host(spec.name, spec.options);
        host.faults = std::make_unique<FaultySys>(*host.kernel, seeds.fork_seed());
        host.reactor = std::make_unique<Reactor>(*host.faults);
        world.add_reactor(*host.kernel, *host.reactor, host.faults.get());
    }
    for (const LinkSpec& link : scenario.links)
        world.set_link(*hosts[link.a].kernel, *hosts[link.b].kernel, link.link);
    for (const SyscallFaultSpec& fault : scenario.syscall_faults) {
        if (hosts[fault.host].faults->add_rule(fault.rule) != RuleError::none) {
            report.setup_error = "fault on line " + std::to_string(fault.where.line) + " was refused";
            return report;
        }
    }
    for (const NetFaultSpec& fault : scenario.net_faults)
        std::visit([&](const auto& f) { world.add_fault(f); }, fault.fault);

    // Servers first, so clients find them listening.
    std::map<std::string, Server> servers;
    for (const AppSpec& app : scenario.apps) {
        if (app.kind != "frame-echo")
            continue;
        Server& server = servers[app.name];
        server.spec = &app;
        Host& host = hosts[app.host];
        server.context.emplace(ServerAppContext{
            *host.reactor,
            host.kernel->address(AF_INET, static_cast<std::uint16_t>(option_count(app, "port", 7))),
            trigger_of(app),
            static_cast<std::size_t>(option_size(app, "max-frame", 16U << 20)),
            seeds.fork_seed(),
        });
        const auto replaced = options.servers.find(app.kind);
        server.factory =
            replaced != options.servers.end()
                ? replaced->second
                : ServerAppFactory([](const ServerAppContext& c) { return std::make_unique<FrameEchoApp>(c); });
        server.server = server.factory(*server.context);
        if (const VoidResult opened = server.server->open(); !opened.ok()) {
            report.setup_error = "frame-echo " + app.name + " could not listen: " + errno_name(opened.error);
            return report;
        }
    }
    for (auto& [name, host] : hosts)
        host.baseline_fds = host.kernel->open_fd_count();

    std::vector<Client> clients;
    for (const AppSpec& app : scenario.apps) {
        if (app.kind != "frame-client")
            continue;
        const std::string& target = app.options.at("connect");
        const std::size_t colon = target.rfind(':');
        LoadOptions load;
        load.server = hosts[target.substr(0, colon)].kernel->address(
            AF_INET, static_cast<std::uint16_t>(parse_count(target.substr(colon + 1)).value_or(0)));
        load.connections = static_cast<std::size_t>(option_count(app, "conns", 1));
        load.frames = option_count(app, "frames", 100);
        load.body_bytes = static_cast<std::size_t>(option_size(app, "size", 64));
        load.in_flight_per_connection = static_cast<std::size_t>(option_count(app, "in-flight", 32));
        load.transport.trigger = trigger_of(app);
        load.seed = seeds.fork_seed();
        Client& client = clients.emplace_back();
        client.spec = &app;
        client.frames = load.frames;
        client.client = std::make_unique<LoadClient>(*hosts[app.host].reactor, load);
        client.client->start();
    }
    for (const ActionSpec& action : scenario.actions) {
        Server& server = servers[action.app];
        world.at(action.at, [&server, &action] {
            if (action.action == "stop" || action.action == "restart") {
                if (server.server)
                    server.server->stop();
                server.server.reset();
            }
            if (action.action == "start" || action.action == "restart") {
                if (!server.server) {
                    server.server = server.factory(*server.context);
                    (void)server.server->open();
                }
            }
        });
    }

    Nanos deadline = default_deadline;
    for (const ExpectSpec& e : scenario.expectations) {
        if (e.what == "done-by")
            deadline = *parse_duration(e.arguments.front());
    }
    const auto clients_done = [&] {
        return std::all_of(clients.begin(), clients.end(), [](const Client& c) { return c.client->done(); });
    };
    const sim::RunStatus status = world.run_until(deadline, clients_done);
    const Nanos finished_at = world.now();
    const bool finished = status == sim::RunStatus::done || (clients.empty() && status != sim::RunStatus::livelock);
    if (status == sim::RunStatus::done)
        (void)world.run_for(settle_time);

    const auto fail = [&](const ExpectSpec& e, std::string expected, std::string happened, Nanos at) {
        report.failures.push_back(ExpectationFailure{e.where, statement_text(e), std::move(expected),
                                                     std::move(happened), at,
                                                     std::vector<std::string>(tail.begin(), tail.end())});
    };
    if (status == sim::RunStatus::livelock) {
        report.failures.push_back(ExpectationFailure{{},
                                                     "(the run)",
                                                     "programs that make progress",
                                                     "a livelock: programs stepped without time moving",
                                                     finished_at,
                                                     std::vector<std::string>(tail.begin(), tail.end())});
    }
    for (const ExpectSpec& e : scenario.expectations) {
        const auto client =
            std::find_if(clients.begin(), clients.end(), [&](const Client& c) { return c.spec->name == e.app; });
        const LoadReport* load = client == clients.end() ? nullptr : &client->client->report();
        if (e.what == "done-by") {
            if (!finished)
                fail(e, "every client done by " + e.arguments.front(),
                     "still running at " + std::to_string(finished_at.count()) + " ns (" +
                         std::string(sim::to_string(status)) + ")",
                     finished_at);
        } else if (e.what == "frames-verified") {
            const std::uint64_t wanted = parse_count(e.arguments.front()).value_or(0);
            if (load == nullptr)
                fail(e, "a frame-client named " + e.app, "no such client", finished_at);
            else if (load->frames_verified != wanted || load->mismatches != 0)
                fail(e, std::to_string(wanted) + " frames verified, none wrong",
                     std::to_string(load->frames_verified) + " verified, " + std::to_string(load->mismatches) +
                         " wrong" + (load->problems.empty() ? "" : "; first problem: " + load->problems.front()),
                     load->finished);
        } else if (e.what == "no-errors") {
            if (load != nullptr && (load->errors != 0 || load->mismatches != 0))
                fail(e, "no connection ended early, no frame wrong",
                     std::to_string(load->errors) + " errors, " + std::to_string(load->mismatches) + " mismatches" +
                         (load->problems.empty() ? "" : "; first: " + load->problems.front()),
                     load->finished);
        } else if (e.what == "error") {
            const std::string& name = e.arguments.front();
            const bool seen =
                load != nullptr && std::any_of(load->problems.begin(), load->problems.end(),
                                               [&](const std::string& p) { return p.find(name) != std::string::npos; });
            if (!seen)
                fail(e, "a connection of " + e.app + " ended with " + name,
                     load == nullptr || load->problems.empty() ? "no connection ended with an error"
                                                               : "problems: " + load->problems.front(),
                     finished_at);
        } else if (e.what == "no-fd-leak") {
            if (!finished) {
                fail(e, "every host back to its descriptor count once the clients are done",
                     "not checkable: the clients were still running (" + std::string(sim::to_string(status)) + ")",
                     finished_at);
                continue;
            }
            for (const auto& [name, host] : hosts) {
                const std::size_t now = host.kernel->open_fd_count();
                if (now != host.baseline_fds)
                    fail(e,
                         name + " holds " + std::to_string(host.baseline_fds) + " descriptors, as before the clients",
                         name + " holds " + std::to_string(now), world.now());
            }
        } else if (e.what == "no-sigpipe") {
            for (const auto& [name, host] : hosts) {
                if (host.kernel->sigpipe_count() != 0)
                    fail(
                        e, "no SIGPIPE",
                        name + ": " + std::to_string(host.kernel->sigpipe_count()) + " sends would have raised SIGPIPE",
                        world.now());
            }
        }
    }
    for (auto& [name, server] : servers) {
        if (server.server)
            server.server->stop();
    }
    for (const auto& [name, host] : hosts)
        report.faults_injected += host.faults->faults_injected();
    report.virtual_time = finished_at;
    report.trace_hash = world.trace().hash_hex();
    report.trace_lines = world.trace().line_count();
    report.passed = report.failures.empty();
    return report;
}

}  // namespace eagain::harness
