#include "http/slots.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <string>
#include <vector>

using pss::http::Slots;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto k_never = Clock::time_point::max();

// Takes a slot (or not, by `deadline`), records the outcome as "<name>+" / "<name>-".
asio::awaitable<void> take(Slots& slots, std::string name, Clock::time_point deadline,
                           std::vector<std::string>& log) {
  bool got = co_await slots.acquire(deadline);
  log.push_back(name + (got ? "+" : "-"));
}

void spawn(asio::io_context& io, Slots& slots, const std::string& name,
           std::vector<std::string>& log, Clock::time_point deadline = k_never) {
  asio::co_spawn(io, take(slots, name, deadline, log), asio::detached);
}

// Runs every handler that is ready (and those they make ready), without waiting.
void settle(asio::io_context& io) {
  io.restart();
  io.poll();
}

} // namespace

TEST_CASE("http::Slots") {
  asio::io_context io;
  std::vector<std::string> log;

  SUBCASE("at most n holders; waiters are served in arrival order") {
    Slots slots(io.get_executor(), 2);
    for (const char* n : {"a", "b", "c", "d"}) {
      spawn(io, slots, n, log);
    }
    settle(io);
    CHECK(log == std::vector<std::string>{"a+", "b+"});
    CHECK(slots.held() == 2);
    CHECK(slots.waiting() == 2);
    slots.release();
    settle(io);
    CHECK(log == std::vector<std::string>{"a+", "b+", "c+"});
    slots.release();
    settle(io);
    CHECK(log.back() == "d+");
    CHECK(slots.held() == 2);
    CHECK(slots.waiting() == 0);
  }

  SUBCASE("a wait ends at its deadline without a slot, and its place is not kept") {
    Slots slots(io.get_executor(), 1);
    spawn(io, slots, "a", log);
    spawn(io, slots, "late", log, Clock::now()); // already due
    spawn(io, slots, "b", log);
    settle(io);
    CHECK(log == std::vector<std::string>{"a+", "late-"});
    slots.release();
    settle(io);
    CHECK(log.back() == "b+"); // not handed to the one that gave up
    CHECK(slots.held() == 1);
  }

  SUBCASE("close() ends every wait, and later ones, without a slot") {
    Slots slots(io.get_executor(), 1);
    spawn(io, slots, "a", log);
    spawn(io, slots, "b", log);
    settle(io);
    slots.close();
    spawn(io, slots, "c", log);
    settle(io);
    CHECK(log == std::vector<std::string>{"a+", "b-", "c-"});
  }
}
