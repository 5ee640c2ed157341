// The conformance suite's fixtures: one per Sys implementation the suite
// runs against. Every conformance test is a TEMPLATE_TEST_CASE over
// EAGAIN_CONFORMANCE_FIXTURES, so each implementation runs the very same
// test bodies; a case that passes on one and not another is a bug in the
// one that differs from Linux.
//
// A fixture type provides, and the tests use nothing else of it:
//   Sys& sys();                           the implementation under test
//   SockAddr loopback(int family) const;  AF_INET or AF_INET6 loopback, port 0
//                                         (tests bind to it and read the real
//                                         port back with getsockname)
//   std::size_t open_fd_count();          descriptors open in sys() now, for
//                                         the leak check at the end of a test
// It is default-constructible, and a fresh one is built for every test run
// (every SECTION path), so no state leaks from one test into the next.
//
// Adding an implementation: write its fixture (e.g. SimFixture holding a
// SimKernel) in its own header, include it below and append it to
// EAGAIN_CONFORMANCE_FIXTURES. Nothing else changes.
#pragma once

#include "core/sys.h"
#include "tests/conformance/linux_fixture.h"
#include "tests/conformance/sim_fixture.h"

#include <cstddef>
#include <functional>

// The one list of fixtures. A macro, not a std::tuple for
// TEMPLATE_LIST_TEST_CASE, because Catch names each TEMPLATE_TEST_CASE
// instance after the spelling of its type ("... - LinuxFixture") but each
// list instance only by an index ("... - 0"), and CTest's summary should say
// which implementation failed. The names are unqualified: the test files
// open namespace eagain::conformance.
#define EAGAIN_CONFORMANCE_FIXTURES LinuxFixture, SimFixture

namespace eagain::conformance {

// Checks, when it goes out of scope, that as many descriptors are open as
// when it was made. Declared right after the fixture, it outlives every Fd
// of the test body, so it sees them all closed. It stays quiet while an
// exception (a failed REQUIRE) unwinds: that test has failed already.
class FdLeakCheck {
public:
    explicit FdLeakCheck(std::function<std::size_t()> open_fd_count);
    FdLeakCheck(const FdLeakCheck&) = delete;
    FdLeakCheck& operator=(const FdLeakCheck&) = delete;
    ~FdLeakCheck();

private:
    std::function<std::size_t()> open_fd_count_;
    std::size_t open_at_start_;
    int uncaught_at_start_;
};

template <class Fixture>
FdLeakCheck check_fds_closed(Fixture& fixture) {
    return FdLeakCheck([&fixture] { return fixture.open_fd_count(); });
}

}  // namespace eagain::conformance
