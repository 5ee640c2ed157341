// Program: what the World's scheduler asks of a program on a simulated host.
// run_until() steps every program that is ready or whose deadline has come,
// in the order added, and with none of them runnable moves the clock to the
// earliest event or deadline (sim/world.h). A core Reactor, over a host's
// SimKernel or a FaultySys over it, is one (World::add_reactor); anything
// else that runs on a host (an external program, say) is another, with no
// change to the scheduler.
#pragma once

#include "core/sys.h"

#include <optional>

namespace eagain::sim {

class Program {
public:
    virtual ~Program() = default;
    // ready() and next_deadline() are questions, but may tidy what the
    // program keeps (a kernel drops stale readiness as it looks).
    // It has something to do now that is not a deadline: its host has an
    // epoll event to report, or a fault layer owes it an edge.
    virtual bool ready() = 0;
    // When it next wants a step with nothing ready; nullopt for never.
    virtual std::optional<Nanos> next_deadline() = 0;
    // One step: handle what is ready and what is due, never waiting.
    virtual void step() = 0;
};

}  // namespace eagain::sim
