#include "cli/analyze.hpp"

#include "artifact/fetch.hpp"
#include "artifact/spool.hpp"
#include "artifact/walk.hpp"
#include "backend/callbacks.hpp"
#include "backend/factory.hpp"
#include "cli/printer.hpp"
#include "cli/scan_policy.hpp"
#include "cli/size.hpp"
#include "model/bounty.hpp"
#include "util/command_loop.hpp"
#include "util/log.hpp"
#include "util/posix.hpp"
#include "util/temp_file.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <unistd.h>

namespace pss::cli {

namespace asio = boost::asio;

namespace {

constexpr std::size_t k_progress_min_inputs = 10;  // fewer: no progress line
constexpr std::chrono::seconds k_unwind_limit{30}; // after an interrupt stopped the engines

// A bounty file read: the bounty, and its data: artifact if that was spooled to a file.
struct BountyFile {
  model::Bounty bounty;
  std::optional<backend::FetchedArtifact> fetched;
};

// Reads a bounty file (or "-"/URI); the error names the file. With `spool`, a large data:
// artifact is decoded into fo.temp_dir as the file is read (artifact/spool.hpp): the bounty
// holds a short stand-in for its URI, the job the file, and the file's text is freed before it
// is parsed, so a 50 MB artifact costs its bounty file's size in memory, once. Without (the
// Celery backend: the bytes must travel with the bounty), the bounty is parsed whole.
Result<BountyFile> read_bounty(const std::string& input, const artifact::FetchOptions& fo,
                               bool spool) {
  auto bytes = artifact::fetch_bytes(input, fo);
  if (!bytes) {
    return bytes.error();
  }
  BountyFile out;
  std::string small_body;
  std::string_view text = *bytes;
  if (spool) {
    auto spooled = artifact::spool_data_artifact(*bytes, fo.temp_dir, fo.max_size);
    // An Error (bad base64, too large): the bounty is parsed as it is, and its scan answers
    // unknown with that same error when it fetches the URI, as without spooling.
    if (spooled && *spooled) {
      artifact::SpooledArtifact& s = **spooled;
      backend::FetchedArtifact f;
      f.path = s.file.path();
      f.size = s.size;
      f.owner = std::make_shared<const TempFile>(std::move(s.file)); // removed with the job
      out.fetched = std::move(f);
      small_body = std::move(s.body);
      text = small_body;
      std::string().swap(*bytes); // freed before the parse
    }
  }
  auto b = model::parse_bounty(text);
  if (!b) {
    return make_error(quote(input) + ": invalid bounty: " + b.error().message);
  }
  out.bounty = std::move(*b);
  return out;
}

} // namespace

void setup_analyze(CLI::App& app, AnalyzeOptions& opts) {
  app.add_option("inputs", opts.inputs,
                 "Files, directories (recursed), '-' for stdin, or file://, data:, http(s):// URIs")
      ->required();
  app.add_flag("-v,--verbose", opts.verbose, "Print each Bounty and Analysis as indented JSON");
  app.add_option("--backend", opts.backend, "Where scans run")
      ->check(CLI::IsMember({"local", "process", "celery"}))
      ->capture_default_str();
  app.add_option("--concurrency", opts.concurrency,
                 "Artifacts scanned at once; with --backend process, worker processes "
                 "(default: the number of cores)");
  app.add_option("--format", opts.format, "Output: one line per artifact, or JSON lines")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("-t,--type", opts.type,
                 "Inputs are files/URIs to fetch (file), URLs to scan as URL artifacts (url), "
                 "or JSON bounty files (bounty)")
      ->check(CLI::IsMember({"file", "url", "bounty"}))
      ->capture_default_str();
  app.add_option("--timeout", opts.timeout, "Seconds allowed per scan (default: the engine's)");
  app.add_option("--max-size", opts.max_size, "Largest artifact fetched (e.g. 512M, 2G)")
      ->capture_default_str();
  const std::string celery_group = "Celery backend";
  app.add_option("--broker", opts.broker,
                 "Broker URL, redis:// or amqp:// (default: $PSS_BROKER_URL, else "
                 "redis://127.0.0.1:6379/0)")
      ->group(celery_group);
  app.add_option("--result-backend", opts.result_backend,
                 "Result backend URL, Redis (default: $PSS_RESULT_BACKEND, else the broker if "
                 "it is Redis)")
      ->group(celery_group);
  app.add_option("--queue", opts.queue, "Queue of the workers (default: the engine's name)")
      ->group(celery_group);
  app.add_flag("--no-wait", opts.no_wait,
               "Submit and print 'input<TAB>queue<TAB>task id' lines; do not wait")
      ->group(celery_group);
  app.add_option("--on-success", opts.on_success,
                 "Run this command (no shell) for each answer: the Analysis as JSON on stdin");
  app.add_option("--on-error", opts.on_error,
                 "Run this command (no shell) for each scan that failed: the reason as JSON on "
                 "stdin");
  app.add_option("--callback-timeout", opts.callback_timeout, "Seconds allowed per callback")
      ->capture_default_str();
  app.add_option("--wait-timeout", opts.wait_timeout, "Seconds to wait for each result")
      ->capture_default_str()
      ->group(celery_group);
}

int run_analyze(const GlobalOptions& global, const AnalyzeOptions& opts) {
  auto log = log::get("analyze");
  auto max_size = parse_size(opts.max_size);
  if (!max_size) {
    throw Fatal("--max-size: " + max_size.error().message);
  }
  std::size_t concurrency = opts.concurrency;
  if (concurrency == 0) {
    concurrency = std::max(1U, std::thread::hardware_concurrency());
  }

  auto tmp = TempDir::create(temp_base_dir(), "pssupervise-");
  if (!tmp) {
    throw Fatal(tmp.error().message + " (set TMPDIR to a writable directory)");
  }
  // libmagic costs ~1 ms per text file, and only JSON and verbose output and the callbacks
  // show the bounty's mimetype: for text output without callbacks, only the engines' need for
  // it (their categories, their own callbacks) decides. The same for a local file's sha256
  // (reading and hashing it costs more CPU than clamd's answer from its cache); the result
  // cache hashes what it looks up itself.
  bool shows_bounty = opts.verbose || global.verbose || opts.format == "json" ||
                      !opts.on_success.empty() || !opts.on_error.empty();
  ScanPolicy policy; // the user's own files and network: nothing is refused
  policy.backend = opts.backend;
  policy.concurrency = concurrency;
  policy.temp_dir = tmp->path();
  policy.max_size = *max_size;
  policy.timeout = opts.timeout;
  policy.allow_private_networks = true;
  policy.allowed_file_prefixes.reset();
  policy.identify_only_if_needed = !shows_bounty;
  policy.digest_only_if_needed = !shows_bounty;
  policy.broker = opts.broker;
  policy.result_backend = opts.result_backend;
  auto bo = backend_options(global, policy);
  bo.celery.queue = opts.queue;
  bo.celery.wait = !opts.no_wait;
  bo.celery.wait_timeout =
      std::chrono::milliseconds(static_cast<long long>(opts.wait_timeout * 1000));
  if (opts.no_wait) {
    bo.celery.on_sent = [](const std::string& input, const std::string& queue,
                           const std::string& id) {
      std::printf("%s\t%s\t%s\n", input.c_str(), queue.c_str(), id.c_str());
      std::fflush(stdout);
    };
  }

  const artifact::FetchOptions fetch = bo.local.fetch;
  CommandLoop loop;
  auto backend = backend::make_backend(std::move(bo), loop.executor());

  // Inputs → jobs. Directories expand in a stable order; bounty files are read up front so
  // a bad one is reported (as an unknown result) without stopping the others.
  std::vector<backend::Job> jobs;
  std::vector<std::string> expanded;
  std::vector<artifact::WalkError> walk_errors;
  bool stdin_used = false;
  for (const auto& in : opts.inputs) {
    if (in == "-") {
      if (stdin_used) {
        throw Fatal("'-' (stdin) can be given only once");
      }
      stdin_used = true;
    }
  }
  if (opts.type == "url") {
    expanded = opts.inputs;
  } else {
    artifact::expand_inputs(opts.inputs, expanded, walk_errors);
  }
  for (auto& e : walk_errors) {
    backend::Job j;
    j.index = jobs.size();
    j.input = e.input;
    j.error = e.message; // an unreadable directory still gets an answer
    jobs.push_back(std::move(j));
  }
  for (auto& in : expanded) {
    backend::Job j;
    j.index = jobs.size();
    j.input = in;
    if (opts.type == "url") {
      j.artifact_type = model::ArtifactType::url;
    } else if (opts.type == "bounty") {
      auto b = read_bounty(in, fetch, backend->scans_here());
      if (b) {
        j.bounty = std::move(b->bounty);
        j.fetched = std::move(b->fetched);
      } else {
        j.error = b.error().message; // answered unknown; the other inputs go on
      }
    }
    jobs.push_back(std::move(j));
  }

  bool progress = ::isatty(STDERR_FILENO) && jobs.size() >= k_progress_min_inputs;
  Format format = opts.verbose || global.verbose ? Format::verbose
                  : opts.format == "json"        ? Format::json
                                                 : Format::text;
  Printer printer(format, jobs.size(), global.engines.size() > 1, progress && !opts.no_wait);
  backend::Callbacks callbacks; // the caller's: where the results arrive, in every backend
  callbacks.set_for_all(
      {backend::split_command(opts.on_success), backend::split_command(opts.on_error),
       std::chrono::milliseconds(static_cast<long long>(opts.callback_timeout * 1000))});

  int exit_code = 0;
  bool interrupted = false;
  auto sink = [&](backend::JobResult r) {
    if (!interrupted) {
      callbacks.fire(r);
      printer.add(std::move(r));
    }
  };
  auto main_task = [&]() -> asio::awaitable<void> {
    std::exception_ptr ep;
    try {
      if (!interrupted) {
        auto run = backend->run(std::move(jobs), sink);
        co_await std::move(run);
      }
    } catch (...) {
      ep = std::current_exception();
    }
    if (!opts.no_wait) {
      printer.finish();
    }
    if (!interrupted) {         // else the signal handler stops it
      co_await backend->stop(); // also when starting failed: stop what did start
    }
    if (ep) {
      std::rethrow_exception(ep);
    }
    if (!interrupted && !opts.no_wait) {
      exit_code = printer.exit_code();
    }
  };
  // An interrupt stops the engines (servers, Wine, worker processes) at once; the scans in
  // flight then end quickly and everything unwinds in order. Should anything not, we leave.
  loop.on_signal([&](int sig) {
    interrupted = true;
    exit_code = 128 + sig;
    printer.finish();
    log->warn("interrupted by signal {}: stopping engines", sig);
    backend->cancel();
    loop.give_up_after(backend->stop(), k_unwind_limit, exit_code,
                       "scans did not end within " + std::to_string(k_unwind_limit.count()) +
                           " s of the interrupt");
  });
  try {
    loop.run(main_task());
  } catch (...) {
    if (!interrupted) {
      throw;
    }
  }
  return exit_code;
}

} // namespace pss::cli
