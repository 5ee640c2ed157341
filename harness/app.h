// The apps a scenario runs ("app HOST KIND ..." in docs/scenario-language.md)
// as the runner sees them: something that starts, stops, carries out
// scripted actions, and shows what happened for the expectations to check.
//
// Every built-in kind (app_builders()) is one App implementation over
// the host's Reactor, so the very code the scenario is about runs unchanged
// in the simulation. Tests put deliberately buggy apps in a kind's place
// (ScenarioRunOptions::apps) to show that a scenario catches the bug its
// opening comment names.
#pragma once

#include "apps/connection_tally.h"
#include "core/connection.h"
#include "core/reactor.h"
#include "core/sys.h"
#include "core/transport.h"
#include "harness/scenario.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace eagain::harness {

// What an app shows the expectations. Each kind fills what it knows; an
// expectation on something a kind does not observe is refused before the
// run (AppKindEntry::expectations, harness/scenario.h), never checked
// against a zero.
struct AppObservations {
    std::uint64_t frames_verified = 0;  // echoed frames checked intact, in order
    std::uint64_t mismatches = 0;       // frames or bytes that came back wrong
    std::uint64_t errors = 0;           // connections that ended before their work was done
    std::vector<std::string> problems;  // the first few mismatches and errors, described
    // How connections ended: the errno name when there was one
    // ("ECONNRESET") and the close reason ("reset", "dead_peer",
    // "hostile_frame"), each distinct ending once, in the order first seen.
    std::vector<std::string> endings;
    // Connection states reached (to_string(ConnectionState)), and
    // "half_closed" for either half-closed state (the language's name).
    std::set<std::string> states;
    std::vector<Nanos> connect_attempts;   // virtual times of every connect() an attempt began with
    std::uint64_t heartbeats_sent = 0;     // pings
    std::uint64_t max_buffered_bytes = 0;  // the most output the app ever held unsent, per connection
    std::uint64_t bytes_received = 0;      // bulk: stream bytes received and checked
    Nanos finished{};                      // when the app's work was last seen progressing

    // Adds another instance's observations (an app restarted by an action).
    void merge(const AppObservations& other);
};

// Keep this many problems (counts stay exact).
inline constexpr std::size_t problems_kept = 10;

struct AppContext {
    Reactor& reactor;  // the app's host, over its FaultySys
    const AppSpec& spec;
    // Servers: the address to listen on (the host's, with the `port`
    // option). Clients: the address to connect to (`connect HOST:PORT`).
    SockAddr address;
    std::uint64_t seed = 1;
};

class App {
public:
    virtual ~App() = default;
    // Servers listen (the errno if they cannot); clients begin connecting.
    virtual VoidResult start() = 0;
    // Closes every socket at once (the `stop` action, and the run's end).
    virtual void stop() = 0;
    // The app's own work is over: a client whose connections all ended.
    // Servers are always done; the run waits for every app to be done.
    virtual bool done() const = 0;
    // A scripted action other than stop/start/restart (which the runner
    // carries out with stop() and start()): stop-reading, resume-reading,
    // close, send-hostile-length. Only actions the kind lists are called.
    virtual void act(std::string_view action) = 0;
    virtual AppObservations observations() const = 0;
};

using AppFactory = std::function<std::unique_ptr<App>(const AppContext&)>;

// How the runner builds one kind; what the kind is (its options, whether
// it listens, its actions and expectations) is its AppKindEntry
// (harness/scenario.h), which the parser checks a file against.
struct AppBuilder {
    AppFactory make;
    // Why an app's options cannot run, though they parse (a backoff-max
    // below the backoff, say); empty when they can. A setup error, before
    // anything runs.
    std::function<std::string(const AppSpec&)> check_options;
};

// kind -> how to build it, for every kind of app_kind_entries().
const std::map<std::string, AppBuilder>& app_builders();
// builders with the byte-stream kinds added: byte-echo, bulk-sender and
// bulk-receiver (harness/byte_apps.cpp, adapting apps/byte_apps.h).
std::map<std::string, AppBuilder> add_byte_app_builders(std::map<std::string, AppBuilder> builders);

// An app's options as values; the parser checked their form, so a missing
// option gives the fallback.
std::uint64_t option_count(const AppSpec& app, const std::string& key, std::uint64_t fallback);
std::uint64_t option_size(const AppSpec& app, const std::string& key, std::uint64_t fallback);
Nanos option_duration(const AppSpec& app, const std::string& key, Nanos fallback);
// "20%" -> 20 (at most 100).
std::uint32_t option_percent(const AppSpec& app, const std::string& key, std::uint32_t fallback);
// `trigger level|edge|oneshot`; level when absent.
TriggerMode trigger_of(const AppSpec& app);

// Records one connection's ending: its errno name (if any), then its reason.
void note_ending(AppObservations& observations, const CloseInfo& info);
// Records what a tally of connections shows: heartbeats, the output peak,
// states reached, connect attempts and endings.
void note_tally(AppObservations& observations, const ConnectionTally& tally);
// Records a problem (the count is the caller's; the text is kept while
// fewer than problems_kept are).
void note_problem(AppObservations& observations, std::string what);

}  // namespace eagain::harness
