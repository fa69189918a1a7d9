#include "cli/celery_analyze.hpp"

#include "artifact/uri.hpp"
#include "celery/analyze_task.hpp"
#include "celery/client.hpp"
#include "cli/worker.hpp"
#include "util/base64.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <cstdio>
#include <filesystem>

namespace pss::cli {

namespace {

// The bounty a worker gets for one input: local files by file:// URI (the worker must see
// the same path) with their hash, so the id is the one every backend gives them.
Result<model::Bounty> bounty_for(const backend::Job& job, const artifact::FetchOptions& fetch) {
  if (job.bounty) {
    return *job.bounty;
  }
  model::Bounty b;
  b.artifact_type = job.artifact_type;
  auto kind = artifact::classify_input(job.input);
  if (job.artifact_type == model::ArtifactType::url) {
    b.artifact_uri = "data:," + job.input;
    b.id = model::local_bounty_id(sha256_hex(job.input));
    return b;
  }
  if (kind == artifact::InputKind::http_uri) {
    b.artifact_uri = job.input; // the worker fetches it
    b.id = model::local_bounty_id(sha256_hex(job.input));
    return b;
  }
  auto art = artifact::fetch(job.input, fetch);
  if (!art) {
    return art.error();
  }
  b.sha256 = art->sha256;
  b.mimetype = art->mimetype;
  b.id = model::local_bounty_id(art->sha256);
  if (kind == artifact::InputKind::path || kind == artifact::InputKind::file_uri) {
    b.artifact_uri = artifact::file_uri(std::filesystem::absolute(art->path));
  } else { // stdin, data: — the bytes travel with the bounty
    auto bytes = artifact::fetch_bytes(job.input == "-" ? art->path.native() : job.input, fetch);
    if (!bytes) {
      return bytes.error();
    }
    b.artifact_uri = "data:application/octet-stream;base64," + base64_encode(*bytes);
  }
  return b;
}

} // namespace

int run_celery_analyze(const GlobalOptions& global, const AnalyzeOptions& opts,
                       std::vector<backend::Job> jobs, const artifact::FetchOptions& fetch,
                       Printer& printer, backend::Callbacks& callbacks) {
  auto log = log::get("celery");
  auto urls = celery_urls(opts.broker, opts.result_backend);
  std::vector<backend::JobResult> out(jobs.size());
  std::vector<celery::TaskCall> calls;
  std::vector<std::size_t> call_job; // call → job
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    out[i].index = jobs[i].index;
    out[i].input = jobs[i].input;
    if (jobs[i].error) {
      continue; // answered unknown below, for every engine
    }
    auto b = bounty_for(jobs[i], fetch);
    if (!b) {
      jobs[i].error = b.error().message;
      continue;
    }
    out[i].bounty = *b;
    celery::TaskCall call;
    call.args = celery::Json::array({celery::Json(model::to_json(*b))});
    calls.push_back(std::move(call));
    call_job.push_back(i);
  }
  for (const auto& engine : global.engines) {
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (jobs[i].error) {
        out[i].analyses.push_back(
            {engine, model::Analysis::unknown_because(*jobs[i].error,
                                                      std::string(model::k_skipped_cannot_fetch))});
      }
    }
    celery::ClientOptions co;
    co.broker = urls.broker;
    co.result_backend = urls.result_backend;
    co.queue = opts.queue.empty() ? engine : opts.queue;
    co.task_name = std::string(celery::k_analyze_task);
    co.wait = !opts.no_wait;
    co.wait_timeout = std::chrono::seconds(static_cast<long long>(opts.wait_timeout));
    auto sent = [&](std::size_t c, const std::string& id) {
      if (opts.no_wait) {
        std::printf("%s\t%s\t%s\n", jobs[call_job[c]].input.c_str(), co.queue.c_str(), id.c_str());
        std::fflush(stdout);
      }
      log->debug("{}: task {} on queue '{}'", jobs[call_job[c]].input, id, co.queue);
    };
    auto got = [&](std::size_t c, Result<celery::ResultMeta> meta) {
      backend::JobResult& r = out[call_job[c]];
      model::Analysis a;
      if (!meta) {
        a = model::Analysis::unknown_because(meta.error().message);
      } else if (meta->status != celery::k_success) {
        a = model::Analysis::unknown_because("worker: " + meta->error_text());
      } else {
        nlohmann::json value = meta->result;
        if (value.is_object() && value.contains(engine) && value[engine].is_object()) {
          value = value[engine]; // a worker running several engines
        }
        auto parsed = model::analysis_from_json(value);
        a = parsed ? *parsed
                   : model::Analysis::unknown_because("worker: unreadable analysis: " +
                                                      parsed.error().message);
      }
      r.analyses.push_back({engine, std::move(a)});
    };
    auto r = celery::call_tasks(co, calls, sent, got);
    if (!r) {
      throw Fatal(r.error().message);
    }
  }
  if (opts.no_wait) {
    return 0;
  }
  for (auto& r : out) {
    callbacks.fire(r);
    printer.add(std::move(r));
  }
  printer.finish();
  return printer.exit_code();
}

} // namespace pss::cli
