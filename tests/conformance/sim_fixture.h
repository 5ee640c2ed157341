// SimFixture: the conformance suite against the simulated kernel, one host
// talking to itself over its loopback link. See fixture.h for what a
// fixture provides. The tests' bounded epoll_wait timeouts pass in virtual
// time here, so "nothing happens within 50 ms" costs no wall time.
#pragma once

#include "core/sys.h"
#include "sim/sim_kernel.h"
#include "sim/world.h"

#include <cstddef>

namespace eagain::conformance {

class SimFixture {
public:
    SimFixture() : host_(world_.add_host("local")) {}
    Sys& sys() { return host_; }
    SockAddr loopback(int family) const {
        return family == AF_INET6 ? SockAddr::ipv6_loopback(0) : SockAddr::ipv4_loopback(0);
    }
    std::size_t open_fd_count() const { return host_.open_fd_count(); }

private:
    sim::World world_;
    sim::SimKernel& host_;
};

}  // namespace eagain::conformance
