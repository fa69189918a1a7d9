// One request on a connection: read as it arrives (icap/request_reader), its body spooled,
// its preview continued or answered, then scanned and answered (icap_server/answer).
#include "icap_server/server_impl.hpp"
#include "util/size.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <unistd.h>

namespace pss::icap_server {

namespace {

constexpr std::size_t k_read_size = 64 * 1024;  // a read while a request is in progress
constexpr std::size_t k_echo_chunk = 64 * 1024; // a body echoed from its spool file
// A client that did not allow 204 keeps no copy of the body, and Squid (5.7, bug 5352) then
// stops sending a body over 64 KiB until the answer has begun: past this much body, the
// answer's head (the message unmodified) goes out before the verdict, and its body only after
// it; a body found infected then ends the connection after the head.
constexpr std::uint64_t k_commit_after = 32 * 1024;
// And Squid then waits for the answer's body to move before it reads more from the origin
// whenever its 64 KiB buffer towards us fills (bug 5352, PR 1777): one byte of the body goes
// out for each this much received, so at most 1/65536 of it before the verdict.
constexpr std::uint64_t k_trickle_every = 64 * 1024;

// The Content-Length of the encapsulated HTTP message whose body this is, if it says one.
std::optional<std::uint64_t> content_length(const icap::Request& r) {
  const icap::Head& h = r.line.method == "RESPMOD" ? r.res_head : r.req_head;
  const std::string* v = h.fields.find("Content-Length");
  std::uint64_t n = 0;
  if (v == nullptr || v->empty() ||
      std::from_chars(v->data(), v->data() + v->size(), n).ptr != v->data() + v->size()) {
    return std::nullopt;
  }
  return n;
}

std::string method_label(const icap::RequestReader& reader) {
  // Only what the reader accepts, so that the label's values stay few.
  return reader.request().line.method.empty() ? "-" : reader.request().line.method;
}

} // namespace

void Server::Impl::keep_body(Body& b, std::string_view bytes) {
  b.seen += bytes.size();
  if (!b.spool) {
    return;
  }
  if (b.kept + bytes.size() > opts.body_limit) {
    b.over = true;
    b.spool.reset(); // its disk space back now; the rest is only counted
    return;
  }
  if (auto w = b.spool->write(bytes); !w) {
    b.error = "cannot spool the body: " + w.error().message;
    b.spool.reset();
    return;
  }
  b.hash.update(bytes);
  b.kept += bytes.size();
}

asio::awaitable<bool> Server::Impl::trickle(Conn& c, Body& body) {
  const std::uint64_t due =
      std::min(body.kept - 1, 1 + (body.kept - k_commit_after) / k_trickle_every);
  if (body.sent >= due) {
    co_return true;
  }
  std::string data(static_cast<std::size_t>(due - body.sent), '\0');
  if (::pread(body.spool->fd(), data.data(), data.size(), static_cast<off_t>(body.sent)) !=
      static_cast<ssize_t>(data.size())) {
    co_return true; // nothing sent: the echo reads it again, or says why
  }
  std::string out;
  icap::write_chunk(out, data);
  auto sent = send(c, out, opts.write_timeout);
  if (!co_await std::move(sent)) {
    co_return false;
  }
  body.sent = due;
  co_return true;
}

asio::awaitable<bool> Server::Impl::handle_request(std::shared_ptr<Impl> self,
                                                   std::shared_ptr<Conn> c, std::string& in) {
  auto& s = *self;
  const auto started = Clock::now();
  icap::RequestReader reader(s.limits);
  std::string bytes; // one feed's body bytes
  Body body;
  bool continued = false;
  bool at_preview = false; // answered at the preview's end, before any 100 Continue
  bool committed = false;  // the head of an unmodified answer went out (k_commit_after)
  std::vector<std::string> engines;

  // `why` by value: a coroutine keeps its reference parameters, and the callers pass
  // members of temporaries (ReadResult::error() returns a copy).
  auto fail = [&](int status, std::string why) -> asio::awaitable<bool> {
    s.log->warn("connection {} from {}: {} {}: {}", c->id, c->peer, status, reason_phrase(status),
                why);
    s.requests.inc({method_label(reader), std::to_string(status)});
    const std::string out = error_answer(status, s.istag, why, true);
    auto sent = send(*c, out, s.opts.write_timeout);
    if (co_await std::move(sent)) {
      auto linger = s.linger(*c);
      co_await std::move(linger);
    }
    co_return false; // what follows on the connection cannot be framed
  };

  for (bool done = false; !done;) {
    bytes.clear();
    auto p = reader.feed(in, bytes);
    if (!p) {
      auto failed = fail(p.error().status, p.error().message);
      co_return co_await std::move(failed);
    }
    in.erase(0, p->used);
    if (!bytes.empty()) {
      s.keep_body(body, bytes);
      const icap::Request& r = reader.request();
      if (!committed && !r.allow_204 && (continued || !r.preview) && body.spool &&
          body.kept >= k_commit_after && !reader.complete()) {
        Verdict clean;
        clean.kind = Verdict::Kind::clean;
        Policy early;
        early.close = !r.keep_alive || s.stopping;
        early.istag = s.istag;
        const std::string head = answer(r, clean, early).head;
        auto sent = send(*c, head, s.opts.write_timeout);
        if (!co_await std::move(sent)) {
          co_return false;
        }
        committed = true;
      }
      if (committed && body.spool && !reader.complete()) {
        auto nudge = s.trickle(*c, body);
        if (!co_await std::move(nudge)) {
          co_return false;
        }
      }
    }
    switch (p->event) {
    case icap::RequestReader::Event::head: {
      const icap::Request& r = reader.request();
      auto chosen = s.route(r.url.service);
      if (!chosen) {
        std::string names = "avscan";
        for (const auto& e : s.backend->engines()) {
          names += ", " + e.name;
        }
        const std::string why =
            "no service '" + header_value(r.url.service, 100) + "' here (" + names + ")";
        auto failed = fail(404, why);
        co_return co_await std::move(failed);
      }
      engines = std::move(*chosen);
      if (r.has_body() && !r.is_options()) {
        auto f = TempFile::create(s.opts.temp_dir, "icap-body-");
        if (f) {
          body.spool = std::make_shared<TempFile>(std::move(*f));
        } else {
          body.error = "cannot spool the body: " + f.error().message;
        }
      }
      break;
    }
    case icap::RequestReader::Event::preview_end: {
      // A body its HTTP head says is over the limit is answered now: the client keeps it.
      if (auto n = content_length(reader.request()); n && *n > s.opts.body_limit) {
        body.over = true;
        body.spool.reset();
        at_preview = true;
        done = true;
        break;
      }
      const std::string go_on = continue_answer();
      auto sent = send(*c, go_on, s.opts.write_timeout);
      if (!co_await std::move(sent)) {
        co_return false;
      }
      reader.continue_after_preview();
      continued = true;
      break;
    }
    case icap::RequestReader::Event::complete:
      done = true;
      break;
    case icap::RequestReader::Event::more: {
      // Every read bounded: the head once begun, and each read of the body (progress).
      const std::size_t old = in.size();
      in.resize(old + k_read_size);
      if (reader.has_head()) {
        c->stream.expires_after(s.opts.read_timeout); // the body's progress
      } else {
        c->stream.expires_at(started + s.opts.read_timeout); // the head as a whole
      }
      auto [ec, n] = co_await c->stream.async_read_some(asio::buffer(in.data() + old, k_read_size),
                                                        asio::as_tuple(asio::use_awaitable));
      in.resize(old + n);
      if (ec == asio::error::eof) {
        if (auto e = reader.at_eof()) { // the client may still read: say why
          auto failed = fail(e->status, e->message);
          co_return co_await std::move(failed);
        }
        co_return false;
      }
      if (ec) {
        if (reader.started()) {
          s.log->warn("connection {} from {}: {} ({}): closed", c->id, c->peer, ec.message(),
                      reader.where());
        }
        co_return false; // a timeout closed the socket: nothing can be answered
      }
      break;
    }
    }
  }

  const icap::Request& r = reader.request();
  const bool keep = r.keep_alive && !s.stopping && !c->evicted;
  if (r.is_options()) {
    ServiceInfo info{s.istag, s.service_text(r.url.service), s.opts.max_connections};
    s.requests.inc({"OPTIONS", "200"});
    const std::string out = options_answer(info, !keep);
    auto send_options = send(*c, out, s.opts.write_timeout);
    const bool sent = co_await std::move(send_options);
    s.request_seconds.observe({"OPTIONS"}, seconds_since(started));
    const bool stays = sent && keep;
    co_return stays;
  }

  Verdict verdict;
  if (!r.has_body()) {
    verdict.kind = Verdict::Kind::clean; // an HTTP message without a body: nothing to scan
  } else if (body.over) {
    verdict.errors.push_back("the body is over the " + format_size(s.opts.body_limit) +
                             " limit (--body-limit): not scanned");
  } else if (!body.error.empty()) {
    verdict.errors.push_back(body.error);
  } else {
    body.sha256 = body.hash.hex_digest();
    auto scan = s.scan(self, r, body, engines);
    verdict = co_await std::move(scan);
  }
  if (committed) {
    auto finish = s.finish_committed(c, r, body, verdict, started);
    co_return co_await std::move(finish);
  }
  Policy policy;
  policy.on_unknown = s.opts.on_unknown;
  policy.may_204 = r.allow_204 || (r.preview.has_value() && !continued);
  policy.body_kept = body.spool != nullptr;
  policy.close = !keep;
  policy.istag = s.istag;
  Answer a = answer(r, verdict, policy);

  bool sent = false;
  std::string out = std::move(a.head);
  if (a.body == Answer::Body::page) {
    icap::write_chunk(out, a.page);
    icap::write_last_chunk(out);
    auto send_page = send(*c, out, s.opts.write_timeout);
    sent = co_await std::move(send_page);
  } else if (a.body == Answer::Body::echo) {
    auto echo = s.echo(c, body, std::move(out));
    sent = co_await std::move(echo);
  } else {
    auto send_head = send(*c, out, s.opts.write_timeout);
    sent = co_await std::move(send_head);
  }
  s.requests.inc({r.line.method, std::to_string(a.status)});
  s.answers.inc({a.outcome});
  const double secs = seconds_since(started);
  s.request_seconds.observe({r.line.method}, secs);
  std::string names;
  for (const auto& t : verdict.threats) {
    names += (names.empty() ? " " : ", ") + t.name + " (" + t.engine + ")";
  }
  s.log->info("{} {} /{} ({} bytes{}): {}{}{} -> {} in {:.3f} s", c->peer, r.line.method,
              header_value(r.url.service, 100), body.seen,
              at_preview ? ", answered at preview" : "", a.outcome, names,
              a.scan_error.empty() ? "" : " (" + a.scan_error + ")", a.status, secs);
  const bool stays = sent && keep;
  co_return stays;
}

asio::awaitable<bool> Server::Impl::finish_committed(std::shared_ptr<Conn> c,
                                                     const icap::Request& r, const Body& body,
                                                     const Verdict& verdict,
                                                     Clock::time_point started) {
  const bool pass = verdict.kind == Verdict::Kind::clean ||
                    (verdict.kind == Verdict::Kind::unknown && opts.on_unknown == OnUnknown::allow);
  std::string outcome = verdict.kind == Verdict::Kind::clean      ? "clean"
                        : verdict.kind == Verdict::Kind::infected ? "infected"
                        : pass                                    ? "unknown_allowed"
                                                                  : "unknown_blocked";
  bool sent = false;
  if (pass && body.spool) {
    auto rest = echo(c, body, std::string());
    sent = co_await std::move(rest);
  } else if (pass) {
    outcome = "too_large"; // its spool was dropped: nothing to send
  }
  requests.inc({r.line.method, "200"});
  answers.inc({outcome});
  const double secs = seconds_since(started);
  request_seconds.observe({r.line.method}, secs);
  std::string why;
  for (const auto& t : verdict.threats) {
    why += (why.empty() ? " " : ", ") + t.name + " (" + t.engine + ")";
  }
  for (const auto& e : verdict.errors) {
    why += (why.empty() ? " (" : "; ") + e;
  }
  if (!verdict.errors.empty()) {
    why += ")";
  }
  if (sent) {
    log->info("{} {} /{} ({} bytes, head sent early): {}{} -> 200 in {:.3f} s", c->peer,
              r.line.method, header_value(r.url.service, 100), body.seen, outcome, why, secs);
    co_return r.keep_alive && !stopping && !c->evicted;
  }
  log->warn("{} {} /{} ({} bytes, head sent early): {}{}: connection closed after the head "
            "and {} bytes of the body",
            c->peer, r.line.method, header_value(r.url.service, 100), body.seen, outcome, why,
            body.sent);
  co_return false;
}

asio::awaitable<bool> Server::Impl::echo(std::shared_ptr<Conn> c, const Body& body,
                                         std::string out) {
  std::string data(k_echo_chunk, '\0');
  std::uint64_t offset = body.sent; // what went out before the verdict, if anything
  while (offset < body.kept) {
    const auto want =
        static_cast<std::size_t>(std::min<std::uint64_t>(k_echo_chunk, body.kept - offset));
    const ssize_t n = ::pread(body.spool->fd(), data.data(), want, static_cast<off_t>(offset));
    if (n <= 0) {
      log->error("connection {}: cannot read back the spooled body: {}", c->id,
                 n < 0 ? std::strerror(errno) : "it is shorter than written");
      co_return false; // cut short: the client sees a broken answer, not a wrong one
    }
    offset += static_cast<std::uint64_t>(n);
    icap::write_chunk(out, std::string_view(data.data(), static_cast<std::size_t>(n)));
    if (offset == body.kept) {
      break;
    }
    auto sent = send(*c, out, opts.write_timeout);
    if (!co_await std::move(sent)) {
      co_return false;
    }
    out.clear();
  }
  icap::write_last_chunk(out);
  auto sent = send(*c, out, opts.write_timeout);
  co_return co_await std::move(sent);
}

} // namespace pss::icap_server
