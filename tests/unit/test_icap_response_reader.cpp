// An ICAP server's answers read at every split (c-icap's real ones), answers cut short,
// garbage; and the requests our client writes, read back with the wire layer.
#include "icap/request_writer.hpp"
#include "icap/response_reader.hpp"

#include <doctest/doctest.h>
#include <string>
#include <vector>

using namespace pss::icap;
using namespace std::string_literals;

namespace {

// c-icap 0.5.10 with virus_scan and clamd_mod, answering a RESPMOD of EICAR (FIELD-NOTES §7).
const std::string k_eicar_answer =
    "ICAP/1.0 200 OK\r\n"
    "Server: C-ICAP/0.5.10\r\n"
    "Connection: keep-alive\r\n"
    "ISTag: \"CI0001-L5CkDhq+qWNs+PZ5DxxXsAAA\"\r\n"
    "X-Infection-Found: Type=0; Resolution=2; Threat=Eicar-Test-Signature.UNOFFICIAL;\r\n"
    "X-Violations-Found: 1\r\n"
    "\t-\r\n"
    "\tEicar-Test-Signature.UNOFFICIAL\r\n"
    "\t0\r\n"
    "\t0\r\n"
    "Encapsulated: res-hdr=0, res-body=161\r\n"
    "\r\n"
    "HTTP/1.0 403 Forbidden\r\n"
    "Server: C-ICAP\r\n"
    "Connection: close\r\n"
    "Content-Type: text/html\r\n"
    "Content-Language: en\r\n"
    "Via: ICAP/1.0 vm (C-ICAP/0.5.10 Antivirus service )\r\n"
    "\r\n"
    "1d\r\n"
    "<html><h1>VIRUS FOUND</h1>\n\x00\x00\r\n"
    "0\r\n"
    "\r\n"s; // the NULs are c-icap's

const std::string k_204 = "ICAP/1.0 204 Unmodified\r\n"
                          "Server: C-ICAP/0.5.10\r\n"
                          "Connection: keep-alive\r\n"
                          "ISTag: \"CI0001-L5CkDhq+qWNs+PZ5DxxXsAAA\"\r\n"
                          "\r\n";

const std::string k_options = "ICAP/1.0 200 OK\r\n"
                              "Methods: RESPMOD, REQMOD\r\n"
                              "Service: C-ICAP/0.5.10 server - Antivirus service\r\n"
                              "ISTag: \"CI0001-L5CkDhq+qWNs+PZ5DxxXsAAA\"\r\n"
                              "Transfer-Preview: *\r\n"
                              "Options-TTL: 3600\r\n"
                              "Preview: 1024\r\n"
                              "Allow: 204\r\n"
                              "Encapsulated: null-body=0\r\n"
                              "\r\n";

struct Read {
  std::vector<ResponseReader::Event> events;
  Response response;
  std::size_t used = 0;
  std::string error;
  std::string where;
};

// Feeds `wire` in pieces of `step` bytes, as a socket would deliver it, up to the final answer.
Read read(std::string_view wire, std::size_t step, ResponseReader::Limits limits = {}) {
  ResponseReader r(limits);
  Read out;
  while (out.used < wire.size()) {
    auto p = r.feed(wire.substr(out.used, std::min(step, wire.size() - out.used)));
    if (!p) {
      out.error = p.error().message;
      break;
    }
    out.used += p->used;
    if (p->event != ResponseReader::Event::more) {
      out.events.push_back(p->event);
    }
    if (p->event == ResponseReader::Event::response) {
      out.response = r.response();
      break;
    }
  }
  out.where = r.where();
  return out;
}

} // namespace

TEST_CASE("icap::ResponseReader: c-icap's EICAR answer at every split") {
  for (std::size_t step = 1; step <= k_eicar_answer.size(); ++step) {
    CAPTURE(step);
    auto r = read(k_eicar_answer, step);
    REQUIRE(r.error.empty());
    REQUIRE(r.events == std::vector{ResponseReader::Event::response});
    CHECK(r.used == k_eicar_answer.size());
    const Response& a = r.response;
    CHECK(a.status.status == 200);
    CHECK(*a.fields.find("x-infection-found") ==
          "Type=0; Resolution=2; Threat=Eicar-Test-Signature.UNOFFICIAL;");
    CHECK(*a.fields.find("X-Violations-Found") == "1\n-\nEicar-Test-Signature.UNOFFICIAL\n0\n0");
    REQUIRE(a.res_head);
    CHECK(a.res_head->status == 403);
    CHECK(a.res_head->reason == "Forbidden");
    CHECK(*a.res_head->fields.find("Content-Type") == "text/html");
    CHECK_FALSE(a.req_head);
    CHECK(a.body_size == 0x1d);
    CHECK(a.body_prefix == std::string("<html><h1>VIRUS FOUND</h1>\n\x00\x00", 0x1d));
  }
}

TEST_CASE("icap::ResponseReader: 204 and OPTIONS have no body; what follows is not used") {
  for (const auto* wire : {&k_204, &k_options}) {
    for (std::size_t step = 1; step <= wire->size() + 10; ++step) {
      auto r = read(*wire + "ICAP/1.0 200 OK\r\n", step);
      REQUIRE(r.error.empty());
      CHECK(r.events == std::vector{ResponseReader::Event::response});
      CHECK(r.used == wire->size()); // the next answer's bytes stay with the caller
    }
  }
  auto r = read(k_options, 7);
  CHECK(r.response.status.status == 200);
  CHECK(*r.response.fields.find("Preview") == "1024");
  CHECK(r.response.encapsulated);
  CHECK_FALSE(r.response.encapsulated->has_body());
  auto n = read(k_204, 3);
  CHECK(n.response.status.status == 204);
  CHECK(n.response.status.reason == "Unmodified");
  CHECK_FALSE(n.response.encapsulated); // c-icap sends none with a 204
}

TEST_CASE("icap::ResponseReader: 100 Continue is an event of its own, then the final answer") {
  const std::string wire = "ICAP/1.0 100 Continue\r\n\r\n" + k_204;
  for (std::size_t step = 1; step <= wire.size(); ++step) {
    ResponseReader r;
    std::size_t used = 0;
    std::vector<ResponseReader::Event> events;
    while (used < wire.size()) {
      auto p = r.feed(std::string_view(wire).substr(used, step));
      REQUIRE(p.has_value());
      used += p->used;
      if (p->event != ResponseReader::Event::more) {
        events.push_back(p->event);
        if (p->event == ResponseReader::Event::continue_100) {
          CHECK(used == 25); // it stops there: the rest of the body goes out before more is read
          CHECK(r.started());
        }
      }
    }
    CHECK(events ==
          std::vector{ResponseReader::Event::continue_100, ResponseReader::Event::response});
    CHECK(r.response().status.status == 204);
  }
}

TEST_CASE("icap::ResponseReader: an unmodified 200 echoes the HTTP response and its body") {
  const std::string http = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                           "Content-Length: 12\r\n\r\n";
  const std::string wire = "ICAP/1.0 200 OK\r\nISTag: \"x\"\r\nEncapsulated: res-hdr=0, res-body=" +
                           std::to_string(http.size()) + "\r\n\r\n" + http +
                           "c\r\nhello world\n\r\n0\r\n\r\n";
  auto r = read(wire, 5);
  REQUIRE(r.error.empty());
  REQUIRE(r.response.res_head);
  CHECK(r.response.res_head->status == 200);
  CHECK(r.response.body_prefix == "hello world\n");
}

TEST_CASE("icap::ResponseReader: an encapsulated HTTP head's odd lines are skipped, not fatal") {
  // Sophos SAVDI's shape (Assemblyline's ICAP client tests): its status line again as a line.
  const std::string http = "HTTP/1.1 200 OK:  403 Forbidden\r\n"
                           "HTTP/1.1 200 OK: \r\n"
                           "Content-Type: text/plain\r\n"
                           "X-Blocked: Virus found during virus scan\r\n"
                           "\r\n";
  const std::string wire = "ICAP/1.0 200 OK\r\n"
                           "ISTag: \"1-02-3-44-5-6-07-8888-99999999\"\r\n"
                           "X-Virus-ID: Bad/Guy-A\r\n"
                           "X-Violations-Found: 1\r\n      -\r\n      Bad/Guy-A\r\n      -\r\n"
                           "      0\r\n"
                           "Encapsulated: res-hdr=0, null-body=" +
                           std::to_string(http.size()) + "\r\n\r\n" + http;
  for (std::size_t step = 1; step <= wire.size(); ++step) {
    auto r = read(wire, step);
    REQUIRE(r.error.empty());
    REQUIRE(r.response.res_head);
    CHECK(r.response.res_head->status == 200);
    CHECK(*r.response.res_head->fields.find("X-Blocked") == "Virus found during virus scan");
    CHECK(r.response.res_head->fields.all().size() == 2);
    CHECK(*r.response.fields.find("X-Violations-Found") == "1\n-\nBad/Guy-A\n-\n0");
    CHECK(r.used == wire.size());
  }
}

TEST_CASE("icap::ResponseReader: a large body keeps only its prefix, and counts the rest") {
  std::string wire = "ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, res-body=19\r\n\r\n"
                     "HTTP/1.1 200 OK\r\n\r\n";
  const std::string chunk(4096, 'x');
  for (int i = 0; i < 256; ++i) { // 1 MiB
    write_chunk(wire, chunk);
  }
  write_last_chunk(wire);
  ResponseReader::Limits limits;
  limits.body_prefix = 1000;
  auto r = read(wire, 65536, limits);
  REQUIRE(r.error.empty());
  CHECK(r.response.body_size == 1 << 20);
  CHECK(r.response.body_prefix == std::string(1000, 'x'));
}

TEST_CASE("icap::ResponseReader: answers cut short say where") {
  struct Case {
    std::size_t keep;
    const char* where;
  };
  const std::size_t head_end = k_eicar_answer.find("\r\n\r\n") + 4;
  for (auto c : {Case{0, "before any byte of an answer"}, Case{10, "in the ICAP head"},
                 Case{head_end + 5, "in the encapsulated HTTP heads"},
                 Case{head_end + 161 + 10, "in the body after 6 bytes"}}) {
    CAPTURE(c.keep);
    auto r = read(k_eicar_answer.substr(0, c.keep), 3);
    CHECK(r.error.empty());
    CHECK(r.events.empty());
    CHECK(r.where == c.where);
  }
  ResponseReader after100;
  REQUIRE(after100.feed("ICAP/1.0 100 Continue\r\n\r\n").has_value());
  CHECK(after100.where() == "after 100 Continue, before the final answer");
}

TEST_CASE("icap::ResponseReader: garbage is an error that says what is wrong") {
  struct Case {
    std::string wire;
    const char* error;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\n\r\n", "the answer's status line"},
      {"ICAP/1.0 2x0 OK\r\n\r\n", "the answer's status line"},
      {"ICAP/1.0 101 Switching\r\n\r\n", "interim"},
      {"ICAP/1.0 200 OK\r\nEncapsulated: res-body=x\r\n\r\n", "Encapsulated field"},
      {"ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, res-body=10\r\n\r\nFOO 1 2\r\n\r\n",
       "encapsulated HTTP response head"},
      {"ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, res-body=19\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
       "zz\r\n",
       "the answer's body"},
      {"ICAP/1.0 200 OK\r\nno colon here\r\n\r\n", "the answer's ICAP head"},
      {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"s, "the answer's status line"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.wire);
    auto r = read(c.wire, 1);
    CHECK(r.error.find(c.error) != std::string::npos);
  }
  ResponseReader::Limits small;
  small.head.head = 100;
  auto r = read("ICAP/1.0 200 OK\r\n" + std::string(200, 'a'), 10, small);
  CHECK(r.error.find("longer than 100 bytes") != std::string::npos);
  ResponseReader done;
  REQUIRE(done.feed(k_204).has_value());
  CHECK_FALSE(done.feed("x").has_value());
}

TEST_CASE("icap::write_options and write_respmod_head: read back by the wire layer") {
  auto url = parse_url("icap://127.0.0.1:1344/avscan?mode=simple");
  REQUIRE(url.has_value());
  CHECK(write_options(*url) == "OPTIONS icap://127.0.0.1:1344/avscan?mode=simple ICAP/1.0\r\n"
                               "Host: 127.0.0.1:1344\r\nUser-Agent: pssupervise\r\n"
                               "Encapsulated: null-body=0\r\n\r\n");
  RespmodHead h;
  h.url = *url;
  h.sha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
  h.size = 68;
  h.allow_204 = true;
  h.preview = 68;
  const std::string wire = write_respmod_head(h);
  auto end = find_head_end(wire);
  REQUIRE(end.has_value());
  REQUIRE(*end);
  auto head = parse_head(wire.substr(0, **end));
  REQUIRE(head.has_value());
  auto line = parse_request_line(head->start_line);
  REQUIRE(line.has_value());
  CHECK(line->method == "RESPMOD");
  CHECK(line->uri == "icap://127.0.0.1:1344/avscan?mode=simple");
  CHECK(*head->fields.find("Allow") == "204");
  CHECK(*head->fields.find("Preview") == "68");
  auto enc = parse_encapsulated(*head->fields.find("Encapsulated"));
  REQUIRE(enc.has_value());
  CHECK(enc->body == Encapsulated::Body::res_body);
  const std::string heads = wire.substr(**end);
  REQUIRE(heads.size() == enc->body_offset); // the body follows the heads at once
  auto req = parse_head(heads.substr(*enc->req_hdr, enc->req_hdr_size()));
  REQUIRE(req.has_value());
  CHECK(req->start_line == "GET /" + h.sha256 + " HTTP/1.1");
  CHECK(*req->fields.find("Host") == k_synthetic_host);
  auto res = parse_head(heads.substr(*enc->res_hdr, enc->res_hdr_size()));
  REQUIRE(res.has_value());
  CHECK(res->start_line == "HTTP/1.1 200 OK");
  CHECK(*res->fields.find("Content-Length") == "68");
  CHECK(*res->fields.find("Content-Type") == "application/octet-stream");

  h.allow_204 = false;
  h.preview.reset();
  const std::string plain = write_respmod_head(h);
  CHECK(plain.find("Allow:") == std::string::npos);
  CHECK(plain.find("Preview:") == std::string::npos);
}
