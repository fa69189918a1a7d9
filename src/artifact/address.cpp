#include "artifact/address.hpp"

#include <arpa/inet.h>
#include <array>
#include <cstdint>
#include <cstring>
#include <netinet/in.h>

namespace pss::artifact {

namespace {

using Ipv6 = std::array<std::uint8_t, 16>;

// True if the top `bits` bits of `a` are those of `prefix` (both in host order).
constexpr bool in_v4(std::uint32_t a, std::uint32_t prefix, int bits) {
  std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
  return (a & mask) == (prefix & mask);
}

constexpr std::uint32_t v4(unsigned a, unsigned b, unsigned c, unsigned d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

// IANA IPv4 Special-Purpose Address Registry (RFC 6890 and updates), plus multicast.
AddressClass classify_v4(std::uint32_t a) {
  if (a == 0) {
    return AddressClass::unspecified;
  }
  if (a == v4(255, 255, 255, 255)) {
    return AddressClass::broadcast;
  }
  struct Range {
    std::uint32_t prefix;
    int bits;
    AddressClass cls;
  };
  static constexpr Range k_ranges[] = {
      {v4(0, 0, 0, 0), 8, AddressClass::this_network},
      {v4(10, 0, 0, 0), 8, AddressClass::private_},
      {v4(100, 64, 0, 0), 10, AddressClass::shared},
      {v4(127, 0, 0, 0), 8, AddressClass::loopback},
      {v4(169, 254, 0, 0), 16, AddressClass::link_local},
      {v4(172, 16, 0, 0), 12, AddressClass::private_},
      {v4(192, 0, 0, 0), 24, AddressClass::reserved},   // IETF protocol assignments
      {v4(192, 0, 2, 0), 24, AddressClass::reserved},   // TEST-NET-1
      {v4(192, 88, 99, 0), 24, AddressClass::reserved}, // 6to4 relay anycast (deprecated)
      {v4(192, 168, 0, 0), 16, AddressClass::private_},
      {v4(198, 18, 0, 0), 15, AddressClass::reserved},   // benchmarking
      {v4(198, 51, 100, 0), 24, AddressClass::reserved}, // TEST-NET-2
      {v4(203, 0, 113, 0), 24, AddressClass::reserved},  // TEST-NET-3
      {v4(224, 0, 0, 0), 4, AddressClass::multicast},
      {v4(240, 0, 0, 0), 4, AddressClass::reserved}, // future use
  };
  for (const Range& r : k_ranges) {
    if (in_v4(a, r.prefix, r.bits)) {
      return r.cls;
    }
  }
  return AddressClass::public_;
}

std::uint32_t v4_at(const Ipv6& b, std::size_t i) {
  return (std::uint32_t{b[i]} << 24) | (std::uint32_t{b[i + 1]} << 16) |
         (std::uint32_t{b[i + 2]} << 8) | std::uint32_t{b[i + 3]};
}

bool all_zero(const Ipv6& b, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i) {
    if (b[i] != 0) {
      return false;
    }
  }
  return true;
}

// IANA IPv6 Special-Purpose Address Registry (RFC 6890 and updates), plus multicast; and
// everything outside 2000::/3, the only range allocated for global unicast.
AddressClass classify_v6(const Ipv6& b) {
  if (all_zero(b, 0, 10)) {
    if (b[10] == 0xff && b[11] == 0xff) {
      return classify_v4(v4_at(b, 12)); // ::ffff:a.b.c.d, IPv4-mapped
    }
    if (b[10] == 0 && b[11] == 0) {
      if (all_zero(b, 12, 15)) {
        if (b[15] == 0) {
          return AddressClass::unspecified;
        }
        if (b[15] == 1) {
          return AddressClass::loopback;
        }
      }
      return classify_v4(v4_at(b, 12)); // ::a.b.c.d, IPv4-compatible (deprecated)
    }
  }
  if (all_zero(b, 0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0) {
    return classify_v4(v4_at(b, 12)); // ::ffff:0:a.b.c.d, IPv4-translated (RFC 2765)
  }
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) {
    if (all_zero(b, 4, 12)) {
      return classify_v4(v4_at(b, 12)); // 64:ff9b::/96, NAT64 well-known prefix
    }
    if (b[4] == 0x00 && b[5] == 0x01) {
      return AddressClass::private_; // 64:ff9b:1::/48, local-use NAT64 (RFC 8215)
    }
  }
  if (b[0] == 0x01 && b[1] == 0x00 && all_zero(b, 2, 8)) {
    return AddressClass::reserved; // 100::/64, discard-only
  }
  if ((b[0] & 0xfe) == 0xfc) {
    return AddressClass::private_; // fc00::/7, unique local
  }
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
    return AddressClass::link_local; // fe80::/10
  }
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) {
    return AddressClass::private_; // fec0::/10, site-local (deprecated)
  }
  if (b[0] == 0xff) {
    return AddressClass::multicast;
  }
  if ((b[0] & 0xe0) != 0x20) {
    return AddressClass::reserved; // outside 2000::/3
  }
  if (b[0] == 0x20 && b[1] == 0x02) {
    return classify_v4(v4_at(b, 2)); // 2002::/16, 6to4
  }
  if (b[0] == 0x20 && b[1] == 0x01) {
    if (b[2] == 0x0d && b[3] == 0xb8) {
      return AddressClass::reserved; // 2001:db8::/32, documentation
    }
    if ((b[2] & 0xfe) == 0x00) {
      return AddressClass::reserved; // 2001::/23, IETF protocol assignments (Teredo, ...)
    }
  }
  if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0x00) {
    return AddressClass::reserved; // 3fff::/20, documentation (RFC 9637)
  }
  return AddressClass::public_;
}

} // namespace

AddressClass classify(const sockaddr* address) {
  if (address == nullptr) {
    return AddressClass::unsupported;
  }
  if (address->sa_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof in);
    return classify_v4(ntohl(in.sin_addr.s_addr));
  }
  if (address->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof in6);
    Ipv6 b{};
    std::memcpy(b.data(), &in6.sin6_addr, b.size());
    return classify_v6(b);
  }
  return AddressClass::unsupported;
}

std::optional<AddressClass> classify(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
    return std::nullopt;
  }
  std::string s(text); // inet_pton wants a NUL-terminated string
  if (s.find('\0') != std::string::npos) {
    return std::nullopt;
  }
  in_addr a4{};
  if (::inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    return classify_v4(ntohl(a4.s_addr));
  }
  in6_addr a6{};
  if (::inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    Ipv6 b{};
    std::memcpy(b.data(), &a6, b.size());
    return classify_v6(b);
  }
  return std::nullopt;
}

std::string_view describe(AddressClass c) {
  switch (c) {
  case AddressClass::public_:
    return "a public address";
  case AddressClass::unspecified:
    return "an unspecified address";
  case AddressClass::this_network:
    return "a \"this network\" address";
  case AddressClass::loopback:
    return "a loopback address";
  case AddressClass::private_:
    return "a private address";
  case AddressClass::shared:
    return "a shared (carrier-grade NAT) address";
  case AddressClass::link_local:
    return "a link-local address";
  case AddressClass::multicast:
    return "a multicast address";
  case AddressClass::broadcast:
    return "a broadcast address";
  case AddressClass::reserved:
    return "a reserved address";
  case AddressClass::unsupported:
    break;
  }
  return "not an IP address";
}

std::string address_text(const sockaddr* address) {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  if (address != nullptr && address->sa_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof in);
    if (::inet_ntop(AF_INET, &in.sin_addr, buf.data(), buf.size()) != nullptr) {
      return buf.data();
    }
  } else if (address != nullptr && address->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof in6);
    if (::inet_ntop(AF_INET6, &in6.sin6_addr, buf.data(), buf.size()) != nullptr) {
      return buf.data();
    }
  }
  int family = address == nullptr ? -1 : address->sa_family;
  return "(unknown address family " + std::to_string(family) + ")";
}

} // namespace pss::artifact
