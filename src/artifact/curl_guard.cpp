#include "artifact/curl_guard.hpp"

#include <atomic>
#include <sys/socket.h>

namespace pss::artifact {

namespace {

struct CurlGlobal {
  CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  // No curl_global_cleanup(): other threads may still use libcurl while statics die.
};

curl_socket_t guarded_open_socket(void* clientp, curlsocktype /*purpose*/, curl_sockaddr* address) {
  auto* guard = static_cast<AddressGuard*>(clientp);
  AddressClass c = classify(&address->addr);
  if (!is_public(c)) {
    guard->refuse(address_text(&address->addr), c);
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

// Once connected, before the request is sent: should a connection ever be made without
// guarded_open_socket(), it is still not used.
int guarded_prereq(void* clientp, char* conn_primary_ip, char* /*conn_local_ip*/,
                   int /*conn_primary_port*/, int /*conn_local_port*/) {
  auto* guard = static_cast<AddressGuard*>(clientp);
  std::string ip = conn_primary_ip == nullptr ? "" : conn_primary_ip;
  auto c = classify(ip);
  if (!c || !is_public(*c)) {
    guard->refuse(ip.empty() ? "(unknown)" : ip, c.value_or(AddressClass::unsupported));
    return CURL_PREREQFUNC_ABORT;
  }
  return CURL_PREREQFUNC_OK;
}

} // namespace

Result<void> curl_global_init_once() {
  static const CurlGlobal global; // thread-safe initialization (C++11 magic statics)
  if (global.code != CURLE_OK) {
    return make_error(std::string("libcurl: cannot initialize: ") +
                      curl_easy_strerror(global.code));
  }
  return {};
}

int curl_abort_when_set(void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(flag)->load() ? 1 : 0;
}

void AddressGuard::refuse(const std::string& address, AddressClass c) {
  if (refused.empty()) {
    refused = address + " is " + std::string(describe(c));
  }
}

CURLcode AddressGuard::install(CURL* h) {
  CURLcode rc = CURLE_OK;
  auto check = [&rc](CURLcode r) {
    if (rc == CURLE_OK) {
      rc = r;
    }
  };
  check(curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, &guarded_open_socket));
  check(curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, static_cast<void*>(this)));
  check(curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, &guarded_prereq));
  check(curl_easy_setopt(h, CURLOPT_PREREQDATA, static_cast<void*>(this)));
  check(curl_easy_setopt(h, CURLOPT_PROXY, ""));
  return rc;
}

} // namespace pss::artifact
