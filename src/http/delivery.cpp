#include "http/delivery.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <curl/curl.h>
#include <memory>

namespace pss::http {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

size_t discard(char*, size_t size, size_t n, void*) {
  return size * n;
}

asio::awaitable<Result<int>> post_task(Delivery d, std::chrono::milliseconds timeout) {
  co_return post_once(d, timeout);
}

} // namespace

Result<int> post_once(const Delivery& d, std::chrono::milliseconds timeout) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    return make_error("cannot initialize libcurl");
  }
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  for (const auto& [k, v] : d.headers) {
    headers = curl_slist_append(headers, (k + ": " + v).c_str());
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> guard(headers, curl_slist_free_all);
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, d.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, d.body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(d.body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min<long long>(timeout.count(), 10000)));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return make_error(std::string("POST ") + d.url + ": " + curl_easy_strerror(rc));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  return static_cast<int>(status);
}

asio::awaitable<DeliveryOutcome> deliver(asio::any_io_executor pool, Delivery d) {
  auto ex = co_await asio::this_coro::executor;
  DeliveryOutcome out;
  auto backoff = std::chrono::milliseconds(250);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        d.give_up_at - std::chrono::system_clock::now());
    if (left <= 0ms && out.attempts > 0) {
      co_return out; // one attempt at least: a late answer still says what happened
    }
    ++out.attempts;
    auto task = post_task(d, std::clamp<std::chrono::milliseconds>(left, 2s, 30s));
    Result<int> r = co_await asio::co_spawn(pool, std::move(task), asio::use_awaitable);
    if (r && *r >= 200 && *r < 300) {
      out.delivered = true;
      out.last_status = *r;
      co_return out;
    }
    if (r) {
      out.last_status = *r;
      out.last_error = "HTTP " + std::to_string(*r);
    } else {
      out.last_error = r.error().message;
    }
    auto wait = std::min<std::chrono::milliseconds>(
        backoff, std::chrono::duration_cast<std::chrono::milliseconds>(
                     d.give_up_at - std::chrono::system_clock::now()));
    if (wait <= 0ms) {
      co_return out;
    }
    asio::steady_timer t(ex, wait);
    co_await t.async_wait(asio::use_awaitable);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
  }
}

} // namespace pss::http
