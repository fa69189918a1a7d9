// Classification of IP addresses for SSRF protection: is this an address on the public
// Internet, or a loopback, private, link-local, ... one that a remote party must not reach
// through us? Pure: no I/O, no name resolution.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <sys/socket.h>

namespace pss::artifact {

enum class AddressClass {
  public_,      // routable on the Internet
  unspecified,  // 0.0.0.0, ::
  this_network, // 0.0.0.0/8 (RFC 1122; Linux connects 0.x.y.z to the local host)
  loopback,     // 127.0.0.0/8, ::1
  private_,     // 10/8, 172.16/12, 192.168/16 (RFC 1918); fc00::/7 (ULA); fec0::/10 (site-local)
  shared,       // 100.64.0.0/10, carrier-grade NAT (RFC 6598)
  link_local,   // 169.254/16, fe80::/10
  multicast,    // 224/4, ff00::/8
  broadcast,    // 255.255.255.255
  reserved,     // special-purpose: 192.0.0/24, documentation, benchmarking, 240/4, 100::/64, ...
  unsupported,  // not IPv4 or IPv6 (AF_UNIX, ...)
};

// IPv6 addresses that embed an IPv4 one take the class of the IPv4 address: IPv4-mapped
// (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), NAT64
// (64:ff9b::/96) and 6to4 (2002::/16).
AddressClass classify(const sockaddr* address);
// A numeric IPv4 or IPv6 address ("10.0.0.1", "::ffff:127.0.0.1"); nullopt if `text` is not
// one (a host name, a zone index "fe80::1%eth0", an empty string).
std::optional<AddressClass> classify(std::string_view text);

// Only public_ addresses may be fetched from when private networks are not allowed.
inline bool is_public(AddressClass c) {
  return c == AddressClass::public_;
}

// "a loopback address", "a private address", ... for messages: "127.0.0.1 is a loopback
// address".
std::string_view describe(AddressClass c);

// The numeric text of an AF_INET or AF_INET6 address ("127.0.0.1", "::1"); "(unknown address
// family N)" otherwise.
std::string address_text(const sockaddr* address);

} // namespace pss::artifact
