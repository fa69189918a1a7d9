// ICAP requests as c-icap-client and Squid send them, fed at every split point: heads kept byte
// for byte, bodies handed out, previews with and without ieof; and the lies a client can tell:
// wrong Encapsulated offsets, chunk sizes, previews, versions, a 100 KB request line.
#include "icap/request_reader.hpp"

#include <doctest/doctest.h>
#include <string>
#include <vector>

using namespace pss::icap;

namespace {

const std::string k_req_hdr = "GET /eicar.com HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n";
const std::string k_res_hdr =
    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 68\r\n\r\n";

std::string chunked(std::string_view body, std::size_t piece = 10, std::string_view last = "0") {
  std::string out;
  for (std::size_t i = 0; i < body.size(); i += piece) {
    write_chunk(out, body.substr(i, piece));
  }
  out += std::string(last) + "\r\n\r\n";
  return out;
}

std::string respmod(std::string_view body, std::string_view extra = "",
                    std::string_view last = "0") {
  const auto res = k_req_hdr.size();
  const auto body_at = res + k_res_hdr.size();
  return "RESPMOD icap://127.0.0.1:1344/avscan ICAP/1.0\r\nHost: 127.0.0.1\r\nAllow: 204\r\n" +
         std::string(extra) + "Encapsulated: req-hdr=0, res-hdr=" + std::to_string(res) +
         ", res-body=" + std::to_string(body_at) + "\r\n\r\n" + k_req_hdr + k_res_hdr +
         chunked(body, 10, last);
}

struct Read {
  int heads = 0;
  int preview_ends = 0;
  bool complete = false;
  std::string body;
  std::size_t used = 0;
  std::optional<RequestError> error;
  Request request;
};

// Feeds `wire` in pieces of `step` bytes, as a socket delivers it; at a preview's end, goes on
// as a server does after sending 100 Continue (unless `stop_at_preview`).
Read read(std::string_view wire, std::size_t step, RequestReader::Limits limits = {},
          bool stop_at_preview = false) {
  RequestReader r(limits);
  Read out;
  std::size_t fed_to = 0; // the input a socket has delivered so far
  for (;;) {
    std::string body;
    auto p = r.feed(wire.substr(out.used, fed_to - out.used), body);
    if (!p) {
      out.error = p.error();
      return out;
    }
    out.body += body;
    out.used += p->used;
    if (p->event == RequestReader::Event::head) {
      ++out.heads;
      out.request = r.request();
    } else if (p->event == RequestReader::Event::preview_end) {
      ++out.preview_ends;
      if (stop_at_preview) {
        return out;
      }
      r.continue_after_preview();
    } else if (p->event == RequestReader::Event::complete) {
      out.complete = true;
      return out;
    } else if (fed_to == wire.size()) {
      out.error = r.at_eof();
      return out;
    } else {
      fed_to = std::min(wire.size(), fed_to + step);
    }
  }
}

const std::vector<std::size_t> k_steps = {1, 2, 3, 5, 7, 13, 64, 1000, 100000};

} // namespace

TEST_CASE("icap::RequestReader") {
  const std::string eicar =
      R"(X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*)";

  SUBCASE("a RESPMOD as c-icap-client sends it, at every split, the next request left alone") {
    const std::string wire = respmod(eicar);
    for (std::size_t step : k_steps) {
      CAPTURE(step);
      auto r = read(wire + "OPTIONS icap://h/avscan ICAP/1.0\r\n\r\n", step);
      REQUIRE_FALSE(r.error);
      CHECK(r.complete);
      CHECK(r.heads == 1);
      CHECK(r.used == wire.size());
      CHECK(r.body == eicar);
      CHECK(r.request.line.method == "RESPMOD");
      CHECK(r.request.url.service == "avscan");
      CHECK(r.request.req_hdr == k_req_hdr); // byte for byte, for an unmodified answer
      CHECK(r.request.res_hdr == k_res_hdr);
      CHECK(r.request.res_head.start_line == "HTTP/1.1 200 OK");
      CHECK(*r.request.res_head.fields.find("content-length") == "68");
      CHECK(r.request.req_head.start_line == "GET /eicar.com HTTP/1.1");
      CHECK(r.request.allow_204);
      CHECK(r.request.keep_alive);
      CHECK_FALSE(r.request.preview);
    }
  }

  SUBCASE("a preview that holds the whole body (ieof) completes it") {
    const std::string wire = respmod(eicar, "Preview: 1024\r\n", "0; ieof");
    for (std::size_t step : k_steps) {
      CAPTURE(step);
      auto r = read(wire, step);
      REQUIRE_FALSE(r.error);
      CHECK(r.complete);
      CHECK(r.preview_ends == 0);
      CHECK(r.body == eicar);
      CHECK(r.request.preview == 1024u);
    }
  }

  SUBCASE("a preview ending in 0 stops for the server's decision, then the rest follows") {
    std::string wire = respmod(eicar.substr(0, 20), "Preview: 20\r\n");
    const std::size_t preview_size = wire.size();
    wire += chunked(eicar.substr(20), 7);
    for (std::size_t step : k_steps) {
      CAPTURE(step);
      auto stopped = read(wire, step, {}, true);
      REQUIRE_FALSE(stopped.error);
      CHECK(stopped.preview_ends == 1);
      CHECK_FALSE(stopped.complete);
      CHECK(stopped.used == preview_size); // what the client sent before 100 Continue
      CHECK(stopped.body == eicar.substr(0, 20));
      auto r = read(wire, step);
      REQUIRE_FALSE(r.error);
      CHECK(r.complete);
      CHECK(r.preview_ends == 1);
      CHECK(r.body == eicar);
      CHECK(r.used == wire.size());
    }
  }

  SUBCASE("Preview: 0 sends the heads alone first") {
    std::string wire = respmod("", "Preview: 0\r\n") + chunked(eicar);
    auto r = read(wire, 3);
    REQUIRE_FALSE(r.error);
    CHECK(r.preview_ends == 1);
    CHECK(r.body == eicar);
  }

  SUBCASE("a preview larger than announced") {
    for (std::size_t step : k_steps) {
      CAPTURE(step);
      auto r = read(respmod(eicar, "Preview: 10\r\n"), step);
      REQUIRE(r.error);
      CHECK(r.error->status == 400);
      CHECK(r.error->message.find("preview is longer than the 10 bytes") != std::string::npos);
    }
  }

  SUBCASE("REQMOD: heads only (null-body), and a body") {
    const std::string get =
        "REQMOD icap://h/clamav ICAP/1.0\r\nEncapsulated: req-hdr=0, null-body=" +
        std::to_string(k_req_hdr.size()) + "\r\n\r\n" + k_req_hdr;
    for (std::size_t step : k_steps) {
      auto r = read(get, step);
      REQUIRE_FALSE(r.error);
      CHECK(r.complete);
      CHECK(r.heads == 1);
      CHECK(r.request.req_hdr == k_req_hdr);
      CHECK_FALSE(r.request.has_body());
      CHECK(r.body.empty());
    }
    const std::string post_hdr =
        "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string post =
        "REQMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: req-hdr=0, req-body=" +
        std::to_string(post_hdr.size()) + "\r\n\r\n" + post_hdr + chunked(eicar);
    auto r = read(post, 5);
    REQUIRE_FALSE(r.error);
    CHECK(r.complete);
    CHECK(r.body == eicar);
    CHECK(r.request.encapsulated.body == Encapsulated::Body::req_body);
  }

  SUBCASE("OPTIONS with and without Encapsulated; an opt-body is read") {
    auto r = read("OPTIONS icap://127.0.0.1:1344/avscan ICAP/1.0\r\nHost: x\r\n\r\n", 4);
    REQUIRE_FALSE(r.error);
    CHECK(r.complete);
    CHECK(r.heads == 1);
    CHECK(r.request.is_options());
    CHECK_FALSE(r.request.has_body());
    r = read("OPTIONS icap://h/avscan ICAP/1.0\r\nEncapsulated: opt-body=0\r\n\r\n" +
                 chunked("hello"),
             2);
    REQUIRE_FALSE(r.error);
    CHECK(r.complete);
    CHECK(r.body == "hello");
  }

  SUBCASE("wrong Encapsulated offsets are errors") {
    const std::string head =
        "RESPMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: res-hdr=0, res-body=";
    for (long delta : {-10L, -1L, 1L, 10L}) {
      CAPTURE(delta);
      const std::string wire =
          head + std::to_string(k_res_hdr.size() + delta) + "\r\n\r\n" + k_res_hdr + chunked(eicar);
      for (std::size_t step : {1, 7, 100000}) {
        auto r = read(wire, step);
        REQUIRE(r.error);
        CHECK(r.error->status == 400);
        CHECK(r.error->message.find("Encapsulated") != std::string::npos);
      }
    }
    // Offsets out of order, a req-hdr in OPTIONS, a res-hdr in REQMOD, no body entry.
    for (std::string enc : {"res-hdr=0, req-hdr=10, res-body=20", "req-hdr=5, res-body=10",
                            "res-hdr=0", "req-hdr=0, res-hdr=0, res-body=9"}) {
      auto r = read(head.substr(0, head.find("Encapsulated")) + "Encapsulated: " + enc + "\r\n\r\n",
                    100);
      REQUIRE(r.error);
      CHECK(r.error->status == 400);
    }
    auto r = read("REQMOD icap://h/a ICAP/1.0\r\nEncapsulated: req-hdr=0, res-hdr=10, "
                  "null-body=20\r\n\r\n",
                  100);
    REQUIRE(r.error);
    CHECK(r.error->status == 400);
    r = read("OPTIONS icap://h/a ICAP/1.0\r\nEncapsulated: req-hdr=0, null-body=20\r\n\r\n", 100);
    REQUIRE(r.error);
    CHECK(r.error->status == 400);
  }

  SUBCASE("a chunk size that lies") {
    std::string lie = respmod("");
    lie.resize(lie.size() - 5); // "0\r\n\r\n"
    auto longer = read(lie + "5\r\nabcdefghij\r\n0\r\n\r\n", 3);
    REQUIRE(longer.error);
    CHECK(longer.error->status == 400);
    CHECK(longer.error->message.find("longer than its size") != std::string::npos);
    // Shorter than it says: the reader waits for bytes that never come.
    auto shorter = read(lie + "ff\r\nabc\r\n0\r\n\r\n", 3);
    REQUIRE(shorter.error);
    CHECK(shorter.error->message.find("closed in the body") != std::string::npos);
    auto not_hex = read(lie + "zz\r\nabc\r\n", 3);
    REQUIRE(not_hex.error);
    CHECK(not_hex.error->status == 400);
  }

  SUBCASE("a 100 KB request line is refused before it ends") {
    const std::string line = "RESPMOD icap://h/" + std::string(100 * 1024, 'a');
    for (std::size_t step : {1000, 100000, 200000}) {
      RequestReader r;
      std::string body;
      std::size_t used = 0;
      std::optional<RequestError> error;
      while (used < line.size() && !error) {
        auto p = r.feed(std::string_view(line).substr(used, step), body);
        if (!p) {
          error = p.error();
        } else {
          used += p->used;
        }
      }
      REQUIRE(error);
      CHECK(error->status == 413);
      CHECK(error->message.find("request line is longer than 8192") != std::string::npos);
      CHECK(used <= 8192 + step);
    }
  }

  SUBCASE("heads over their limits: 413") {
    std::string many = "RESPMOD icap://h/a ICAP/1.0\r\n";
    for (int i = 0; i < 150; ++i) {
      many += "X-F" + std::to_string(i) + ": v\r\n";
    }
    auto r = read(many + "\r\n", 1000);
    REQUIRE(r.error);
    CHECK(r.error->status == 413);
    CHECK(r.error->message.find("more than 100 fields") != std::string::npos);
    r = read("RESPMOD icap://h/a ICAP/1.0\r\nEncapsulated: res-hdr=0, res-body=70000\r\n\r\n", 100);
    REQUIRE(r.error);
    CHECK(r.error->status == 413);
    std::string big_res = "HTTP/1.1 200 OK\r\nX: " + std::string(20000, 'v') + "\r\n\r\n";
    r = read("RESPMOD icap://h/a ICAP/1.0\r\nEncapsulated: res-hdr=0, res-body=" +
                 std::to_string(big_res.size()) + "\r\n\r\n" + big_res + chunked("x"),
             1000);
    REQUIRE(r.error);
    CHECK(r.error->status == 413);
  }

  SUBCASE("versions, methods, URLs, fields") {
    auto r = read("RESPMOD icap://h/a ICAP/2.0\r\nEncapsulated: null-body=0\r\n\r\n", 10);
    REQUIRE(r.error);
    CHECK(r.error->status == 505);
    r = read("DELETE icap://h/a ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n", 10);
    REQUIRE(r.error);
    CHECK(r.error->status == 501);
    r = read("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 10);
    REQUIRE(r.error);
    CHECK(r.error->status == 400);
    r = read("RESPMOD http://h/a ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n", 10);
    REQUIRE(r.error);
    CHECK(r.error->status == 400);
    r = read("RESPMOD icap://h/a ICAP/1.0\r\nHost: h\r\n\r\n", 10);
    REQUIRE(r.error);
    CHECK(r.error->message.find("without an Encapsulated field") != std::string::npos);
    r = read("RESPMOD icap://h/a ICAP/1.0\r\nEncapsulated: null-body=0\r\nEncapsulated: "
             "null-body=0\r\n\r\n",
             10);
    REQUIRE(r.error);
    r = read(respmod("x", "Preview: 1k\r\n"), 10);
    REQUIRE(r.error);
    CHECK(r.error->message.find("Preview") != std::string::npos);
    r = read("\r\nOPTIONS icap://h/a ICAP/1.0\r\n\r\n", 10);
    REQUIRE(r.error);
    CHECK(r.error->status == 400);
    r = read("OPTIONS icap://h/a ICAP/1.0\r\nConnection: Close\r\nAllow: 206, 204\r\n\r\n", 10);
    REQUIRE_FALSE(r.error);
    CHECK_FALSE(r.request.keep_alive);
    CHECK(r.request.allow_204);
  }

  SUBCASE("the connection closing: where, or nothing before a request") {
    RequestReader r;
    CHECK_FALSE(r.at_eof());
    const std::string wire = respmod(eicar);
    for (std::size_t cut : {std::size_t{1}, std::size_t{40}, wire.size() - 30, wire.size() - 1}) {
      auto got = read(wire.substr(0, cut), 1);
      REQUIRE(got.error);
      CHECK(got.error->status == 400);
      CHECK(got.error->message.find("the connection closed in the") != std::string::npos);
    }
    auto whole = read(wire, 1);
    CHECK_FALSE(whole.error);
  }

  SUBCASE("a folded field and bare LF heads") {
    const std::string http = "HTTP/1.0 200 OK\nX-Long: a\n\tb\n\n";
    const std::string wire = "RESPMOD icap://h/a ICAP/1.0\nX-V: 1\n\t-\n\tname\nEncapsulated: "
                             "res-hdr=0, res-body=" +
                             std::to_string(http.size()) + "\n\n" + http + chunked("abc");
    auto r = read(wire, 2);
    REQUIRE_FALSE(r.error);
    CHECK(r.complete);
    CHECK(*r.request.fields.find("X-V") == "1\n-\nname");
    CHECK(r.request.res_hdr == http);
    CHECK(*r.request.res_head.fields.find("X-Long") == "a\nb");
    CHECK(r.body == "abc");
  }
}
