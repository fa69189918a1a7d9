// libcurl set-up shared by everything that makes a request a remote party asked for (artifact
// fetches, answers to a bounty's response_url): one global initialization, and the address
// guard that keeps such requests off loopback and private networks.
#pragma once

#include "artifact/address.hpp"
#include "util/error.hpp"

#include <curl/curl.h>
#include <memory>
#include <string>

namespace pss::artifact {

// curl_global_init, once per process (thread-safe).
Result<void> curl_global_init_once();

// A CURLOPT_XFERINFOFUNCTION whose data is a `const std::atomic<bool>*`: the transfer ends
// (CURLE_ABORTED_BY_CALLBACK) within about a second once the flag is true.
int curl_abort_when_set(void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t);

struct CurlCleanup {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using CurlHandle = std::unique_ptr<CURL, CurlCleanup>;

// Refuses, on one handle, every connection to an address that is not public: libcurl asks us
// for each socket it would connect (after name resolution, for every redirect and every
// address tried) and gets none for such an address, so no packet goes out to it; a second
// check before the request is sent covers any other connection. Proxies from the environment
// are turned off, since a proxy would connect where we cannot see. The guard must outlive the
// transfer.
struct AddressGuard {
  std::string refused; // "127.0.0.1 is a loopback address", for the first address refused

  void refuse(const std::string& address, AddressClass c);
  // Installs the guard on `h`; the first setopt error, or CURLE_OK.
  CURLcode install(CURL* h);
  // Whether the transfer's failure `rc` was the guard's refusal.
  bool refused_transfer(CURLcode rc) const {
    return !refused.empty() && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_ABORTED_BY_CALLBACK);
  }
};

} // namespace pss::artifact
