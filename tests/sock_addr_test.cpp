#include "core/sys.h"

#include <catch2/catch.hpp>

using eagain::SockAddr;

TEST_CASE("an address parses from host:port and prints back the same", "[sock_addr]") {
    for (const char* text : {"127.0.0.1:8080", "[::1]:443", "10.1.2.3:0", "[fe80::1]:65535"}) {
        const auto address = SockAddr::parse(text);
        REQUIRE(address.has_value());
        CHECK(address->to_string() == text);
    }
    CHECK(SockAddr::parse("127.0.0.1:8080")->family() == AF_INET);
    CHECK(SockAddr::parse("[::1]:8080")->port() == 8080);
    CHECK(*SockAddr::parse("127.0.0.1:7") == SockAddr::ipv4_loopback(7));
    CHECK(*SockAddr::parse("[::1]:7") == SockAddr::ipv6_loopback(7));
}

TEST_CASE("an address that is not IPv4 host:port or [IPv6]:port does not parse", "[sock_addr]") {
    for (const char* text : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:80x", "::1:80",
                             "[127.0.0.1]:80", "[::1]80", "[::1", "localhost:80", "1.2.3:80"}) {
        INFO(text);
        CHECK_FALSE(SockAddr::parse(text).has_value());
    }
}

TEST_CASE("from_host takes an IPv4 or IPv6 literal and a port", "[sock_addr]") {
    CHECK(*SockAddr::from_host("127.0.0.1", 9) == SockAddr::ipv4_loopback(9));
    CHECK(*SockAddr::from_host("::1", 9) == SockAddr::ipv6_loopback(9));
    CHECK_FALSE(SockAddr::from_host("localhost", 9).has_value());
    CHECK_FALSE(SockAddr::from_host("[::1]", 9).has_value());
    CHECK(SockAddr::ipv4_loopback(1).with_port(2) == SockAddr::ipv4_loopback(2));
}
