#include "artifact/address.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <string>
#include <sys/un.h>

using pss::artifact::AddressClass;

namespace {

AddressClass of(const char* text) {
  auto c = pss::artifact::classify(std::string_view(text));
  REQUIRE_MESSAGE(c.has_value(), text);
  return *c;
}

} // namespace

TEST_CASE("artifact::classify IPv4") {
  SUBCASE("public") {
    for (const char* a :
         {"1.1.1.1", "8.8.8.8", "93.184.216.34", "9.255.255.255", "11.0.0.0", "100.63.255.255",
          "100.128.0.0", "126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0",
          "172.15.255.255", "172.32.0.0", "192.0.1.0", "192.167.255.255", "192.169.0.0",
          "198.17.255.255", "198.20.0.0", "223.255.255.255"}) {
      CHECK_MESSAGE(of(a) == AddressClass::public_, a);
    }
  }
  SUBCASE("unspecified and this network") {
    CHECK(of("0.0.0.0") == AddressClass::unspecified);
    CHECK(of("0.0.0.1") == AddressClass::this_network);
    CHECK(of("0.255.255.255") == AddressClass::this_network);
  }
  SUBCASE("loopback") {
    CHECK(of("127.0.0.1") == AddressClass::loopback);
    CHECK(of("127.0.0.0") == AddressClass::loopback);
    CHECK(of("127.255.255.254") == AddressClass::loopback);
    CHECK(of("127.1.2.3") == AddressClass::loopback);
  }
  SUBCASE("private (RFC 1918)") {
    for (const char* a : {"10.0.0.0", "10.0.0.1", "10.255.255.255", "172.16.0.0", "172.20.1.1",
                          "172.31.255.255", "192.168.0.0", "192.168.1.1", "192.168.255.255"}) {
      CHECK_MESSAGE(of(a) == AddressClass::private_, a);
    }
  }
  SUBCASE("shared, link-local, multicast, broadcast") {
    CHECK(of("100.64.0.0") == AddressClass::shared);
    CHECK(of("100.127.255.255") == AddressClass::shared);
    CHECK(of("169.254.0.0") == AddressClass::link_local);
    CHECK(of("169.254.169.254") == AddressClass::link_local); // cloud metadata services
    CHECK(of("224.0.0.1") == AddressClass::multicast);
    CHECK(of("239.255.255.255") == AddressClass::multicast);
    CHECK(of("255.255.255.255") == AddressClass::broadcast);
  }
  SUBCASE("reserved") {
    for (const char* a : {"192.0.0.8", "192.0.2.1", "192.88.99.1", "198.18.0.1", "198.19.255.255",
                          "198.51.100.7", "203.0.113.9", "240.0.0.1", "255.255.255.254"}) {
      CHECK_MESSAGE(of(a) == AddressClass::reserved, a);
    }
  }
}

TEST_CASE("artifact::classify IPv6") {
  SUBCASE("public") {
    for (const char* a :
         {"2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "2001:4860::8888", "2001:200::1",
          "3ffe::1", "2002:0808:0808::1", "64:ff9b::808:808", "::ffff:8.8.8.8"}) {
      CHECK_MESSAGE(of(a) == AddressClass::public_, a);
    }
  }
  SUBCASE("unspecified, loopback") {
    CHECK(of("::") == AddressClass::unspecified);
    CHECK(of("::1") == AddressClass::loopback);
    CHECK(of("0:0:0:0:0:0:0:1") == AddressClass::loopback);
  }
  SUBCASE("unique local, site-local, link-local, multicast") {
    CHECK(of("fc00::1") == AddressClass::private_);
    CHECK(of("fd12:3456:789a::1") == AddressClass::private_);
    CHECK(of("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == AddressClass::private_);
    CHECK(of("fec0::1") == AddressClass::private_);
    CHECK(of("fe80::1") == AddressClass::link_local);
    CHECK(of("febf:ffff::1") == AddressClass::link_local);
    CHECK(of("ff02::1") == AddressClass::multicast);
    CHECK(of("ff05::1:3") == AddressClass::multicast);
  }
  SUBCASE("embedded IPv4 addresses take the IPv4 class") {
    CHECK(of("::ffff:127.0.0.1") == AddressClass::loopback); // mapped
    CHECK(of("::ffff:7f00:1") == AddressClass::loopback);    // the same, in hex
    CHECK(of("::ffff:10.1.2.3") == AddressClass::private_);  //
    CHECK(of("::ffff:169.254.169.254") == AddressClass::link_local);
    CHECK(of("::ffff:0.0.0.0") == AddressClass::unspecified);
    CHECK(of("::127.0.0.1") == AddressClass::loopback); // compatible (deprecated)
    CHECK(of("::192.168.0.1") == AddressClass::private_);
    CHECK(of("::ffff:0:127.0.0.1") == AddressClass::loopback); // translated
    CHECK(of("64:ff9b::127.0.0.1") == AddressClass::loopback); // NAT64
    CHECK(of("64:ff9b::a00:1") == AddressClass::private_);
    CHECK(of("64:ff9b:1::1") == AddressClass::private_);     // local-use NAT64
    CHECK(of("2002:7f00:1::") == AddressClass::loopback);    // 6to4 of 127.0.0.1
    CHECK(of("2002:c0a8:101::1") == AddressClass::private_); // 6to4 of 192.168.1.1
  }
  SUBCASE("reserved") {
    for (const char* a : {"2001:db8::1", "2001::1", "2001:1ff::1", "100::1", "3fff::1", "4000::1",
                          "::2:0:0:1", "1::1", "e000::1"}) {
      CHECK_MESSAGE(of(a) == AddressClass::reserved, a);
    }
  }
}

TEST_CASE("artifact::classify text that is not an address") {
  using pss::artifact::classify;
  for (const char* t :
       {"", "localhost", "example.com", "127.1", "0x7f000001", "2130706433", "127.0.0.1 ", " ::1",
        "[::1]", "fe80::1%eth0", "1.2.3.4.5", "::g", "127.000.000.001"}) {
    CHECK_MESSAGE(!classify(std::string_view(t)).has_value(), t);
  }
  CHECK(!classify(std::string_view("127.0.0.1\0", 10)).has_value());
}

TEST_CASE("artifact::classify sockaddr") {
  using pss::artifact::address_text;
  using pss::artifact::classify;

  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(80);
  REQUIRE(::inet_pton(AF_INET, "127.0.0.1", &in.sin_addr) == 1);
  CHECK(classify(reinterpret_cast<const sockaddr*>(&in)) == AddressClass::loopback);
  CHECK(address_text(reinterpret_cast<const sockaddr*>(&in)) == "127.0.0.1");
  REQUIRE(::inet_pton(AF_INET, "93.184.216.34", &in.sin_addr) == 1);
  CHECK(classify(reinterpret_cast<const sockaddr*>(&in)) == AddressClass::public_);

  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  REQUIRE(::inet_pton(AF_INET6, "::ffff:192.168.1.1", &in6.sin6_addr) == 1);
  CHECK(classify(reinterpret_cast<const sockaddr*>(&in6)) == AddressClass::private_);
  CHECK(address_text(reinterpret_cast<const sockaddr*>(&in6)) == "::ffff:192.168.1.1");
  REQUIRE(::inet_pton(AF_INET6, "::1", &in6.sin6_addr) == 1);
  CHECK(classify(reinterpret_cast<const sockaddr*>(&in6)) == AddressClass::loopback);
  CHECK(address_text(reinterpret_cast<const sockaddr*>(&in6)) == "::1");

  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  CHECK(classify(reinterpret_cast<const sockaddr*>(&un)) == AddressClass::unsupported);
  CHECK(address_text(reinterpret_cast<const sockaddr*>(&un)) == "(unknown address family 1)");
  CHECK(classify(static_cast<const sockaddr*>(nullptr)) == AddressClass::unsupported);
  CHECK_FALSE(pss::artifact::is_public(AddressClass::unsupported));
}

TEST_CASE("artifact::describe") {
  using pss::artifact::describe;
  CHECK(describe(AddressClass::loopback) == "a loopback address");
  CHECK(describe(AddressClass::private_) == "a private address");
  CHECK(describe(AddressClass::link_local) == "a link-local address");
  CHECK(describe(AddressClass::shared) == "a shared (carrier-grade NAT) address");
  CHECK(describe(AddressClass::unspecified) == "an unspecified address");
  CHECK(describe(AddressClass::public_) == "a public address");
}
