#include "http/delivery.hpp"

#include "artifact/curl_guard.hpp"
#include "pss_config.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <charconv>
#include <ctime>
#include <curl/curl.h>
#include <vector>

namespace pss::http {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds k_first_backoff = 250ms;
constexpr milliseconds k_max_backoff = 5s;

// One attempt's result.
struct Attempt {
  enum class Kind { answered, transient, permanent, aborted } kind = Kind::transient;
  int status = 0;
  std::string error;
  std::optional<milliseconds> retry_after;
};

size_t discard(char*, size_t size, size_t n, void*) {
  return size * n;
}

struct HeaderState {
  std::optional<std::string> retry_after;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  std::string_view line(data, size * n);
  constexpr std::string_view k_name = "retry-after:";
  if (line.size() > k_name.size()) {
    bool match = true;
    for (std::size_t i = 0; i < k_name.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(line[i])) != k_name[i]) {
        match = false;
        break;
      }
    }
    if (match) {
      auto v = line.substr(k_name.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
        v.remove_prefix(1);
      }
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) {
        v.remove_suffix(1);
      }
      static_cast<HeaderState*>(user)->retry_after = std::string(v);
    }
  }
  return size * n;
}

Attempt post(const Delivery& d, milliseconds timeout, bool allow_private,
             const std::atomic<bool>& aborted) {
  Attempt a;
  if (aborted) {
    a.kind = Attempt::Kind::aborted;
    return a;
  }
  if (auto r = artifact::curl_global_init_once(); !r) {
    a.error = r.error().message;
    return a;
  }
  artifact::CurlHandle curl(curl_easy_init());
  if (!curl) {
    a.error = "libcurl: cannot create a handle";
    return a;
  }
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  for (const auto& [k, v] : d.headers) {
    headers = curl_slist_append(headers, (k + ": " + v).c_str());
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> guard_list(headers,
                                                                         curl_slist_free_all);
  CURL* c = curl.get();
  HeaderState hs;
  artifact::AddressGuard guard;
  std::array<char, CURL_ERROR_SIZE> errbuf{};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf.data());
  curl_easy_setopt(c, CURLOPT_URL, d.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); // a POST is not silently sent elsewhere
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, d.body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(d.body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "pssupervise/" PSS_VERSION);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, static_cast<void*>(&hs));
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, artifact::curl_abort_when_set);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<void*>(static_cast<const void*>(&aborted)));
  if (!allow_private && guard.install(c) != CURLE_OK) {
    a.kind = Attempt::Kind::permanent;
    a.error = "libcurl: cannot set up the address policy";
    return a;
  }
  CURLcode rc = curl_easy_perform(c);
  if (guard.refused_transfer(rc)) {
    a.kind = Attempt::Kind::permanent;
    a.error = "refused: " + guard.refused +
              " (answering to private networks is not allowed "
              "here: --allow-private-networks)";
    return a;
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK && aborted) {
    a.kind = Attempt::Kind::aborted;
    return a;
  }
  if (rc != CURLE_OK) {
    const char* why = errbuf[0] != '\0' ? errbuf.data() : curl_easy_strerror(rc);
    a.error = "POST " + d.url + ": " + why;
    a.kind = rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT
                 ? Attempt::Kind::permanent
                 : Attempt::Kind::transient;
    return a;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  a.status = static_cast<int>(status);
  if (a.status >= 200 && a.status < 300) {
    a.kind = Attempt::Kind::answered;
    return a;
  }
  a.error = "HTTP " + std::to_string(a.status);
  a.kind = is_transient_status(a.status) ? Attempt::Kind::transient : Attempt::Kind::permanent;
  if (hs.retry_after) {
    a.retry_after = parse_retry_after(*hs.retry_after, std::chrono::system_clock::now());
  }
  return a;
}

asio::awaitable<Attempt> post_task(Delivery d, milliseconds timeout, bool allow_private,
                                   std::shared_ptr<const std::atomic<bool>> aborted) {
  co_return post(d, timeout, allow_private, *aborted);
}

} // namespace

std::string_view to_string(DeliveryResult r) {
  switch (r) {
  case DeliveryResult::delivered:
    return "delivered";
  case DeliveryResult::refused:
    return "refused";
  case DeliveryResult::expired:
    return "expired";
  case DeliveryResult::abandoned:
    return "abandoned";
  }
  return "?";
}

bool is_transient_status(int status) {
  return status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599);
}

std::optional<milliseconds> parse_retry_after(std::string_view value,
                                              std::chrono::system_clock::time_point now) {
  if (value.empty()) {
    return std::nullopt;
  }
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
    std::uint64_t secs = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ec != std::errc() || p != value.data() + value.size()) {
      return std::nullopt;
    }
    constexpr std::uint64_t k_day = 86400;
    return milliseconds(std::min(secs, k_day) * 1000);
  }
  // An HTTP-date (IMF-fixdate): "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') {
    return std::nullopt;
  }
  auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto wait = std::chrono::duration_cast<milliseconds>(when - now);
  return std::clamp<milliseconds>(wait, 0ms, std::chrono::hours(24));
}

struct Deliverer::Impl {
  DelivererOptions opts;
  asio::thread_pool pool;
  std::shared_ptr<std::atomic<bool>> aborted = std::make_shared<std::atomic<bool>>(false);
  std::vector<std::weak_ptr<asio::steady_timer>> waits; // retry waits, cut short by abort()

  explicit Impl(DelivererOptions o) : opts(o), pool(std::max<std::size_t>(1, opts.concurrency)) {}
};

Deliverer::Deliverer(DelivererOptions opts) : m_impl(std::make_shared<Impl>(opts)) {}

Deliverer::~Deliverer() {
  m_impl->aborted->store(true);
  m_impl->pool.join();
}

void Deliverer::abort() {
  m_impl->aborted->store(true);
  for (auto& w : m_impl->waits) {
    if (auto t = w.lock()) {
      t->cancel();
    }
  }
  m_impl->waits.clear();
}

asio::awaitable<DeliveryOutcome> Deliverer::deliver(Delivery d) {
  auto self = m_impl;
  auto ex = co_await asio::this_coro::executor;
  DeliveryOutcome out;
  auto backoff = k_first_backoff;
  for (;;) {
    if (*self->aborted) {
      out.result = DeliveryResult::abandoned;
      co_return out;
    }
    auto left =
        std::chrono::duration_cast<milliseconds>(d.give_up_at - std::chrono::system_clock::now());
    if (left <= 0ms && out.attempts > 0) {
      out.result = DeliveryResult::expired;
      co_return out;
    }
    ++out.attempts;
    // At least 2 s even when late: a late answer still says what happened.
    auto timeout = std::clamp<milliseconds>(left, 2s, std::max(2000ms, self->opts.attempt_timeout));
    auto task = post_task(d, timeout, self->opts.allow_private_networks, self->aborted);
    Attempt a = co_await asio::co_spawn(self->pool, std::move(task), asio::use_awaitable);
    out.last_status = a.status;
    out.last_error = a.error;
    switch (a.kind) {
    case Attempt::Kind::answered:
      out.result = DeliveryResult::delivered;
      out.last_error.clear();
      co_return out;
    case Attempt::Kind::permanent:
      out.result = DeliveryResult::refused;
      co_return out;
    case Attempt::Kind::aborted:
      out.result = DeliveryResult::abandoned;
      co_return out;
    case Attempt::Kind::transient:
      break;
    }
    auto wait = a.retry_after ? std::max(*a.retry_after, backoff) : backoff;
    wait = std::min(wait, std::chrono::duration_cast<milliseconds>(
                              d.give_up_at - std::chrono::system_clock::now()));
    if (wait <= 0ms) {
      out.result = DeliveryResult::expired;
      co_return out;
    }
    auto t = std::make_shared<asio::steady_timer>(ex, wait);
    std::erase_if(self->waits, [](const auto& w) { return w.expired(); });
    self->waits.push_back(t);
    co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
    backoff = std::min(backoff * 2, k_max_backoff);
  }
}

} // namespace pss::http
