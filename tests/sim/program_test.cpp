// The scheduler's side of sim::Program (sim/program.h): a program that is
// not a Reactor is stepped when ready or due, and the clock jumps to its
// deadline when nothing else happens.
#include "sim/program.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"

#include <catch2/catch.hpp>

#include <optional>
#include <vector>

namespace eagain::sim {
namespace {

using namespace std::chrono_literals;

// Wants a step every `period` until it has taken `steps`; ready (without a
// deadline) once, at the start.
class Ticker final : public Program {
public:
    Ticker(World& world, Nanos period, std::size_t steps) : world_(world), period_(period), steps_(steps) {}
    bool ready() override { return !started_; }
    std::optional<Nanos> next_deadline() override {
        if (seen_.size() >= steps_)
            return std::nullopt;
        return next_;
    }
    void step() override {
        started_ = true;
        seen_.push_back(world_.now());
        next_ = world_.now() + period_;
    }
    const std::vector<Nanos>& seen() const { return seen_; }

private:
    World& world_;
    Nanos period_;
    std::size_t steps_;
    bool started_ = false;
    Nanos next_{};
    std::vector<Nanos> seen_;
};

TEST_CASE("a Program that is not a Reactor is stepped when ready and at each deadline, the clock jumping between",
          "[sim]") {
    WorldOptions options;
    options.trace = false;
    World world(options);
    SimKernel& host = world.add_host("h");
    Ticker fast(world, 250ms, 4);
    Ticker slow(world, 1s, 2);
    world.add_program(host, fast);
    world.add_program(host, slow);
    CHECK(world.run_until(1h) == RunStatus::idle);  // nothing more can happen
    CHECK(fast.seen() == std::vector<Nanos>{0ms, 250ms, 500ms, 750ms});
    CHECK(slow.seen() == std::vector<Nanos>{0s, 1s});
    CHECK(world.now() == 1s);
}

}  // namespace
}  // namespace eagain::sim
