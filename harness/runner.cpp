#include "harness/runner.h"

#include "core/faulty_sys.h"
#include "core/reactor.h"
#include "core/rng.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace eagain::harness {

namespace {

using namespace std::chrono_literals;

constexpr Nanos default_deadline = 1h;
constexpr Nanos settle_time = 1s;  // for servers to see the last FINs before fds are counted
constexpr std::size_t trace_tail_lines = 12;

struct Host {
    sim::SimKernel* kernel = nullptr;
    std::unique_ptr<FaultySys> faults;
    std::unique_ptr<Reactor> reactor;
    std::size_t baseline_fds = 0;
};

// One app statement and the instance running it. A restart retires the
// instance (its observations still count) and starts a fresh one.
struct RunningApp {
    const AppSpec* spec = nullptr;
    const AppKindEntry* kind = nullptr;
    AppFactory factory;
    std::optional<AppContext> context;
    std::unique_ptr<App> app;
    std::vector<std::unique_ptr<App>> retired;
    std::optional<Nanos> done_at;  // when the run first saw it done (for "expect APP done-by")

    AppObservations observations() const {
        AppObservations all;
        for (const auto& old : retired)
            all.merge(old->observations());
        if (app)
            all.merge(app->observations());
        return all;
    }
    bool done() const { return app == nullptr || app->done(); }
};

SockAddr resolve(std::map<std::string, Host>& hosts, const AppSpec& app) {
    if (const auto target = app.options.find("connect"); target != app.options.end()) {
        const std::size_t colon = target->second.rfind(':');
        return hosts[target->second.substr(0, colon)].kernel->address(
            AF_INET, static_cast<std::uint16_t>(parse_count(target->second.substr(colon + 1)).value_or(0)));
    }
    const auto port = app.options.find("port");
    return hosts[app.host].kernel->address(
        AF_INET, static_cast<std::uint16_t>(port == app.options.end() ? 7 : parse_count(port->second).value_or(7)));
}

// "file:line:col: ", the start of a setup error about a statement.
std::string place(const Scenario& scenario, const SourceLocation& where) {
    return scenario.file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": ";
}

// Why the runner cannot run this scenario: the first reason, with its place
// ("file:line:col: ..."); empty when it can. The parser refuses all of this
// where it is written; a Scenario built in code meets it here.
std::string unrunnable(const Scenario& scenario) {
    const auto& builders = app_builders();
    const auto at = [&](const SourceLocation& where) { return place(scenario, where); };
    std::map<std::string, const AppKindEntry*> kind_of;  // app name -> its kind
    for (const AppSpec& app : scenario.apps) {
        const AppKindEntry* kind = find_app_kind(app.kind);
        if (kind == nullptr || !builders.contains(app.kind))
            return at(app.where) + "app kind " + app.kind + " is not runnable";
        kind_of[app.name] = kind;
        if (const auto& check = builders.at(app.kind).check_options; check) {
            if (const std::string problem = check(app); !problem.empty())
                return at(app.where) + app.kind + " " + app.name + ": " + problem;
        }
    }
    for (const ActionSpec& action : scenario.actions) {
        const AppKindEntry& kind = *kind_of.at(action.app);
        if (!kind.honours(action.action))
            return at(action.where) + "action " + action.action + ": " + std::string(kind.kind) + " does not do it";
    }
    for (const ExpectSpec& e : scenario.expectations) {
        if (e.app.empty())
            continue;
        const AppKindEntry& kind = *kind_of.at(e.app);
        if (!kind.observes(e.what))
            return at(e.where) + "expectation " + e.what + ": " + std::string(kind.kind) + " does not observe it";
    }
    return {};
}

std::string times_text(const std::vector<Nanos>& times) {
    std::string text;
    for (const Nanos t : times)
        text += (text.empty() ? "" : " ") + format_duration(t);
    return text.empty() ? "none" : text;
}

using Fail = std::function<void(const ExpectSpec&, std::string expected, std::string happened, Nanos at)>;

std::string first_problem(const AppObservations& seen) {
    return seen.problems.empty() ? "" : "; first problem: " + seen.problems.front();
}

void check_world_expectation(const ExpectSpec& e, bool finished, sim::RunStatus status, Nanos finished_at,
                             sim::World& world, std::map<std::string, Host>& hosts, const Fail& fail) {
    if (e.what == "done-by") {
        // Judged against when the last app was done, not only whether the
        // run ended: the run goes on to the latest done-by of the file.
        const Nanos by = *parse_duration(e.arguments.front());
        if (!finished)
            fail(e, "every app done by " + e.arguments.front(),
                 "still running at " + format_duration(finished_at) + " (" + std::string(sim::to_string(status)) + ")",
                 finished_at);
        else if (finished_at > by)
            fail(e, "every app done by " + e.arguments.front(),
                 "the last app was done at " + format_duration(finished_at), finished_at);
    } else if (e.what == "no-fd-leak") {
        if (!finished) {
            fail(e, "every host back to its descriptor count once the apps are done",
                 "not checkable: apps were still running (" + std::string(sim::to_string(status)) + ")", finished_at);
            return;
        }
        for (const auto& [name, host] : hosts) {
            // More than before is a leak; fewer is a server an action stopped.
            const std::size_t now = host.kernel->open_fd_count();
            if (now > host.baseline_fds)
                fail(e,
                     name + " holds at most " + std::to_string(host.baseline_fds) +
                         " descriptors, as before the clients started",
                     name + " holds " + std::to_string(now) + " (" + std::to_string(now - host.baseline_fds) +
                         " leaked)",
                     world.now());
        }
    } else if (e.what == "no-sigpipe") {
        for (const auto& [name, host] : hosts) {
            if (host.kernel->sigpipe_count() != 0)
                fail(e, "no SIGPIPE",
                     name + ": " + std::to_string(host.kernel->sigpipe_count()) +
                         " sends without MSG_NOSIGNAL hit EPIPE (each a SIGPIPE, which kills a process by default)",
                     world.now());
        }
    }
}

void check_app_expectation(const ExpectSpec& e, const AppObservations& seen, Nanos finished_at, const Fail& fail) {
    const std::string& argument = e.arguments.empty() ? std::string() : e.arguments.front();
    if (e.what == "frames-verified") {
        const std::uint64_t wanted = parse_count(argument).value_or(0);
        if (seen.frames_verified != wanted || seen.mismatches != 0)
            fail(e, std::to_string(wanted) + " frames verified, none wrong",
                 std::to_string(seen.frames_verified) + " verified, " + std::to_string(seen.mismatches) + " wrong" +
                     first_problem(seen),
                 seen.finished);
    } else if (e.what == "no-errors") {
        if (seen.errors != 0 || seen.mismatches != 0)
            fail(e, "no connection ended early, nothing wrong",
                 std::to_string(seen.errors) + " errors, " + std::to_string(seen.mismatches) + " mismatches" +
                     first_problem(seen),
                 seen.finished);
    } else if (e.what == "error") {
        if (std::find(seen.endings.begin(), seen.endings.end(), argument) == seen.endings.end()) {
            std::string endings;
            for (const std::string& ending : seen.endings)
                endings += (endings.empty() ? "" : ", ") + ending;
            fail(e, "a connection of " + e.app + " ended with " + argument,
                 endings.empty() ? "no connection ended" : "connections ended with: " + endings, finished_at);
        }
    } else if (e.what == "state") {
        if (!seen.states.contains(argument)) {
            std::string states;
            for (const std::string& state : seen.states)
                states += (states.empty() ? "" : ", ") + state;
            fail(e, "a connection of " + e.app + " in state " + argument,
                 "states reached: " + (states.empty() ? std::string("none") : states), finished_at);
        }
    } else if (e.what == "reconnect-at") {
        std::vector<Nanos> wanted;
        for (const std::string& t : e.arguments)
            wanted.push_back(*parse_duration(t));
        if (seen.connect_attempts != wanted)
            fail(e, "connect attempts at " + times_text(wanted),
                 "connect attempts at " + times_text(seen.connect_attempts), finished_at);
    } else if (e.what == "heartbeats") {
        const std::uint64_t wanted = parse_count(argument).value_or(0);
        if (seen.heartbeats_sent != wanted)
            fail(e, std::to_string(wanted) + " heartbeats sent", std::to_string(seen.heartbeats_sent) + " sent",
                 finished_at);
    } else if (e.what == "max-buffered") {
        const std::uint64_t limit = parse_size(argument).value_or(0);
        if (seen.max_buffered_bytes > limit)
            fail(e, "at most " + std::to_string(limit) + " bytes buffered unsent",
                 std::to_string(seen.max_buffered_bytes) + " bytes buffered at the peak", finished_at);
    } else if (e.what == "bytes-received") {
        const std::uint64_t wanted = parse_size(argument).value_or(0);
        if (seen.bytes_received != wanted || seen.mismatches != 0)
            fail(e, std::to_string(wanted) + " bytes received, all intact",
                 std::to_string(seen.bytes_received) + " received, " + std::to_string(seen.mismatches) + " wrong" +
                     first_problem(seen),
                 seen.finished);
    }
}

}  // namespace

void FaultLog::add(InjectedFault fault) {
    ++injected_total;
    if (injected.size() < capacity)
        injected.push_back(std::move(fault));
}

void FaultLog::add(HeldSegment segment) {
    ++held_total;
    if (held_segments.size() < capacity)
        held_segments.push_back(segment);
}

void FaultLog::clear() {
    injected.clear();
    held_segments.clear();
    injected_total = 0;
    held_total = 0;
}

namespace {

// One run of a scenario, in the order it happens: the world and its hosts
// and faults (build), the apps, servers first (start_apps), the timed
// actions (schedule_actions), the run to the latest done-by (run), the
// expectations (check), and the end of the trace (finish).
class ScenarioRun {
public:
    ScenarioRun(const Scenario& scenario, const ScenarioRunOptions& options)
        : scenario_(scenario),
          options_(options),
          seed_(options.seed.value_or(scenario.seed)),
          world_(world_options()) {}

    ScenarioReport run() {
        if (build() && start_apps()) {
            schedule_actions();
            const auto [status, finished] = run_to_deadline();
            check(status, finished);
            finish();
        }
        return std::move(report_);
    }

private:
    sim::WorldOptions world_options() {
        sim::WorldOptions world_options;
        world_options.seed = seed_;
        world_options.link = scenario_.network;
        world_options.tcp = scenario_.tcp;
        world_options.trace_sink = [this](std::string_view line) {
            if (tail_.size() == trace_tail_lines)
                tail_.pop_front();
            tail_.emplace_back(line);
            if (options_.trace_sink)
                options_.trace_sink(line);
        };
        if (options_.fault_log != nullptr)
            options_.fault_log->clear();
        world_options.fault_observer = [this](std::string_view host, Nanos at, const FaultEvent& event) {
            const bool listed = report_.injected.size() < max_listed_faults;
            if (!listed && options_.fault_log == nullptr)
                return;
            InjectedFault fault{std::string(host), at, event};
            if (listed)
                report_.injected.push_back(fault);
            if (options_.fault_log != nullptr)
                options_.fault_log->add(std::move(fault));
        };
        world_options.held_back_observer = [this](std::size_t reorder_fault, std::uint64_t segment, Nanos at) {
            const HeldSegment held{reorder_net_faults_.at(reorder_fault), segment, at};
            ++report_.segments_held;
            if (report_.held_segments.size() < max_listed_faults)
                report_.held_segments.push_back(held);
            if (options_.fault_log != nullptr)
                options_.fault_log->add(held);
        };
        return world_options;
    }

    // Hosts, links and faults. Every stream is seeded by its name
    // (Rng::derive_seed), so adding a host or an app leaves the others'
    // numbers alone. False, with the setup error, if a fault was refused.
    bool build() {
        for (const HostSpec& spec : scenario_.hosts) {
            Host& host = hosts_[spec.name];
            host.kernel = &world_.add_host(spec.name, spec.options);
            host.faults = std::make_unique<FaultySys>(*host.kernel, Rng::derive_seed(seed_, "faults:" + spec.name));
            host.reactor = std::make_unique<Reactor>(*host.faults);
            world_.add_reactor(*host.kernel, *host.reactor, host.faults.get());
        }
        for (const LinkSpec& link : scenario_.links)
            world_.set_link(*hosts_[link.a].kernel, *hosts_[link.b].kernel, link.link);
        for (const SyscallFaultSpec& fault : scenario_.syscall_faults) {
            if (const RuleError refused = hosts_[fault.host].faults->add_rule(fault.rule); refused != RuleError::none) {
                report_.setup_error = place(scenario_, fault.where) + "fault refused by FaultySys (" +
                                      std::string(to_string(refused)) + ")";
                return false;
            }
        }
        for (std::size_t i = 0; i < scenario_.net_faults.size(); ++i) {
            if (std::holds_alternative<sim::ReorderFault>(scenario_.net_faults[i].fault))
                reorder_net_faults_.push_back(i);
            std::visit([&](const auto& f) { world_.add_fault(f); }, scenario_.net_faults[i].fault);
        }
        return true;
    }

    VoidResult start(RunningApp& app) {
        app.app = app.factory(*app.context);
        return app.app->start();
    }

    // Every app gets its context (and its seed, by name); servers start
    // first, so clients find them listening. False, with the setup error,
    // if a server could not listen.
    bool start_apps() {
        for (const AppSpec& spec : scenario_.apps) {
            RunningApp& app = apps_[spec.name];
            app.spec = &spec;
            app.kind = find_app_kind(spec.kind);
            const auto replaced = options_.apps.find(spec.kind);
            app.factory = replaced != options_.apps.end() ? replaced->second : app_builders().at(spec.kind).make;
            app.context.emplace(AppContext{*hosts_[spec.host].reactor, spec, resolve(hosts_, spec),
                                           Rng::derive_seed(seed_, "app:" + spec.name)});
        }
        for (const AppSpec& spec : scenario_.apps) {
            if (!apps_[spec.name].kind->server)
                continue;
            if (const VoidResult started = start(apps_[spec.name]); !started.ok()) {
                report_.setup_error =
                    place(scenario_, spec.where) + spec.kind + " " + spec.name + " could not listen: " +
                    errno_name(started.error);
                return false;
            }
        }
        for (auto& [name, host] : hosts_)
            host.baseline_fds = host.kernel->open_fd_count();
        for (const AppSpec& spec : scenario_.apps) {
            if (apps_[spec.name].kind->server)
                continue;
            // A client's failure to start shows in its observations.
            (void)start(apps_[spec.name]);
        }
        return true;
    }

    void schedule_actions() {
        for (const ActionSpec& action : scenario_.actions) {
            RunningApp& app = apps_[action.app];
            world_.at(action.at, [this, &app, &action] {
                const bool stopping = action.action == "stop" || action.action == "restart";
                const bool starting = action.action == "start" || action.action == "restart";
                if (stopping && app.app) {
                    app.app->stop();
                    app.retired.push_back(std::move(app.app));
                }
                if (starting && !app.app)
                    (void)start(app);
                if (!stopping && !starting && app.app)
                    app.app->act(action.action);
            });
        }
    }

    // The run lasts until every app is done or the latest done-by (of the
    // world or of any app) has passed: each done-by is then judged against
    // the time its app, or the last app, was done. Whether it finished.
    std::pair<sim::RunStatus, bool> run_to_deadline() {
        std::optional<Nanos> latest_done_by;
        for (const ExpectSpec& e : scenario_.expectations) {
            if (e.what == "done-by")
                latest_done_by = std::max(latest_done_by.value_or(Nanos{0}), *parse_duration(e.arguments.front()));
        }
        const Nanos deadline = latest_done_by.value_or(default_deadline);
        const auto all_done = [this] {
            bool all = true;
            for (auto& [name, app] : apps_) {
                const bool done = app.done();
                if (done && !app.done_at)
                    app.done_at = world_.now();
                all = all && done;
            }
            return all;
        };
        const sim::RunStatus status = world_.run_until(deadline, all_done);
        finished_at_ = world_.now();
        const bool finished = status == sim::RunStatus::done || (all_done() && status != sim::RunStatus::livelock);
        if (finished)
            (void)world_.run_for(settle_time);
        return {status, finished};
    }

    void check(sim::RunStatus status, bool finished) {
        const auto fail = [this](const ExpectSpec& e, std::string expected, std::string happened, Nanos at) {
            report_.failures.push_back(ExpectationFailure{e.where, format_expectation(e), std::move(expected),
                                                          std::move(happened), at,
                                                          std::vector<std::string>(tail_.begin(), tail_.end())});
        };
        if (status == sim::RunStatus::livelock) {
            report_.failures.push_back(ExpectationFailure{{},
                                                          "(the run)",
                                                          "programs that make progress",
                                                          "a livelock: programs stepped without time moving",
                                                          finished_at_,
                                                          std::vector<std::string>(tail_.begin(), tail_.end())});
        }
        for (const ExpectSpec& e : scenario_.expectations) {
            if (e.app.empty()) {
                check_world_expectation(e, finished, status, finished_at_, world_, hosts_, fail);
                continue;
            }
            const RunningApp& app = apps_.at(e.app);
            if (e.what == "done-by") {
                const Nanos by = *parse_duration(e.arguments.front());
                if (!app.done_at || *app.done_at > by)
                    fail(e, e.app + " done by " + e.arguments.front(),
                         app.done_at ? "done at " + format_duration(*app.done_at)
                                     : "still running at " + format_duration(finished_at_),
                         app.done_at.value_or(finished_at_));
                continue;
            }
            check_app_expectation(e, app.observations(), finished_at_, fail);
        }
    }

    void finish() {
        for (auto& [name, app] : apps_) {
            if (app.app)
                app.app->stop();
        }
        for (const auto& [name, host] : hosts_)
            report_.faults_injected += host.faults->faults_injected();
        report_.virtual_time = finished_at_;
        // The trace ends here, with the apps stopped: the hosts' reactors
        // close their epoll fds as they go, after the hash is read, and
        // trace nothing.
        world_.trace().end();
        report_.trace_hash = world_.trace().hash_hex();
        report_.trace_lines = world_.trace().line_count();
        report_.passed = report_.failures.empty();
    }

    const Scenario& scenario_;
    const ScenarioRunOptions& options_;
    const std::uint64_t seed_;
    ScenarioReport report_;
    std::deque<std::string> tail_;
    std::vector<std::size_t> reorder_net_faults_;  // the world's reorder fault index -> net fault index
    Nanos finished_at_{};
    // Declared after what its callbacks use, before what uses it; the apps
    // (on the hosts' reactors) are destroyed before the hosts, the hosts
    // before the world.
    sim::World world_;
    std::map<std::string, Host> hosts_;
    std::map<std::string, RunningApp> apps_;
};

}  // namespace

ScenarioReport run_scenario(const Scenario& scenario, const ScenarioRunOptions& options) {
    ScenarioReport report;
    report.setup_error = unrunnable(scenario);
    if (!report.setup_error.empty())
        return report;
    return ScenarioRun(scenario, options).run();
}

}  // namespace eagain::harness
