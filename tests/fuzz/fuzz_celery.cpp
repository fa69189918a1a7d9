// Fuzzes the Celery protocol parsers: parse_envelope (and the unacked value of what it accepts
// through redelivery_from_unacked), redelivery_from_unacked, parse_result_meta and
// parse_isoformat (whose output must survive to_isoformat → parse_isoformat).
#include "celery/envelope.hpp"
#include "celery/kombu_redis.hpp"
#include "celery/result_meta.hpp"
#include "check.hpp"

using namespace pss::celery;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto in = pss::fuzz::as_view(data, size);

  if (auto m = parse_envelope(in)) {
    FUZZ_CHECK(m->raw == in);
    auto r = redelivery_from_unacked(unacked_value(*m));
    if (!m->exchange.empty() || !m->routing_key.empty()) {
      FUZZ_CHECK(r.has_value());
      FUZZ_CHECK(r->exchange == m->exchange && r->routing_key == m->routing_key);
      // A restored message is still a task message, now marked redelivered.
      auto again = parse_envelope(r->message);
      FUZZ_CHECK(again.has_value());
      FUZZ_CHECK(again->id == m->id && again->task == m->task);
    }
  }
  if (auto r = redelivery_from_unacked(in)) {
    FUZZ_CHECK(!r->exchange.empty() || !r->routing_key.empty());
  }
  if (auto meta = parse_result_meta(in)) {
    (void)meta->ready();
    (void)meta->error_text();
  }
  if (auto t = parse_isoformat(in)) {
    std::string iso = to_isoformat(*t);
    auto back = parse_isoformat(iso);
    FUZZ_CHECK(back.has_value());
    FUZZ_CHECK(to_isoformat(*back) == iso);
    (void)to_isoformat_naive(*t);
  }
  return 0;
}
