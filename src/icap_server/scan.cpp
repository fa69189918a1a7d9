// A spooled body to the backend: a local artifact where the scans run here, else a bounty that
// carries its bytes.
#include "icap_server/server_impl.hpp"
#include "model/bounty.hpp"
#include "util/base64.hpp"

#include <unistd.h>

namespace pss::icap_server {

namespace {

constexpr std::size_t k_max_input_name = 2048; // a job's input (the HTTP URL), for logs
// A scan elsewhere (Celery) is bounded by its bounty's expiration.
constexpr auto k_remote_expiry = std::chrono::seconds(300);

// Where the body came from, as the job's input (logs, the bounty's URI): the HTTP request's URL.
std::string input_name(const icap::Request& r) {
  std::string_view line = r.req_head.start_line;
  const auto sp1 = line.find(' ');
  std::string target;
  if (sp1 != std::string_view::npos) {
    line.remove_prefix(sp1 + 1);
    target = std::string(line.substr(0, line.find(' ')));
  }
  if (!target.empty() && target.front() == '/') {
    if (const std::string* host = r.req_head.fields.find("Host")) {
      target = "http://" + *host + target;
    }
  }
  if (target.empty()) {
    target = r.url.text();
  }
  return header_value(target, k_max_input_name);
}

} // namespace

asio::awaitable<Verdict> Server::Impl::scan(std::shared_ptr<Impl> self, const icap::Request& r,
                                            const Body& body,
                                            const std::vector<std::string>& engines) {
  (void)self; // keeps this Impl alive while the scan runs
  Verdict v;
  v.kind = Verdict::Kind::unknown;
  const bool slot = co_await scan_slots.acquire(Clock::now() + opts.slot_timeout);
  if (!slot) {
    v.errors.push_back(
        stopping ? "the server stopped before the scan"
                 : "no scan slot free within " + std::to_string(opts.slot_timeout.count()) +
                       " s (--concurrency " + std::to_string(opts.concurrency) + ")");
    co_return v;
  }
  ++scanning;
  backend::Job job;
  job.input = input_name(r);
  job.engines = engines;
  if (backend->scans_here()) {
    job.fetched =
        backend::FetchedArtifact{body.spool->path(), body.kept, body.sha256, {}, body.spool};
  } else if (auto b = remote_bounty(body)) {
    job.bounty = std::move(*b);
  } else {
    job.error = b.error().message;
  }
  const auto started = Clock::now();
  auto run = backend->run_one(std::move(job));
  backend::JobResult result = co_await std::move(run);
  scan_slots.release();
  --scanning;
  const double secs = seconds_since(started);
  for (const auto& a : result.analyses) {
    scans.inc({a.engine, std::string(model::to_string(a.analysis.result))});
    latency.observe({a.engine}, secs);
  }
  co_return combine(result.analyses);
}

Result<model::Bounty> Server::Impl::remote_bounty(const Body& body) {
  std::string bytes(static_cast<std::size_t>(body.kept), '\0');
  if (body.kept > 0 && ::pread(body.spool->fd(), bytes.data(), bytes.size(), 0) !=
                           static_cast<ssize_t>(bytes.size())) {
    return make_error("cannot read back the spooled body");
  }
  model::Bounty b;
  b.sha256 = body.sha256;
  b.id = model::local_bounty_id(*b.sha256);
  b.artifact_uri = "data:application/octet-stream;base64," + base64_encode(bytes);
  b.expiration = std::chrono::system_clock::now() + k_remote_expiry;
  return b;
}

} // namespace pss::icap_server
