// What the ICAP server answers, without sockets: OPTIONS, the ISTag, several engines made one
// verdict, 204 or the message unmodified, the 403 page with c-icap's headers, --on-unknown.
#include "icap/head.hpp"
#include "icap/request_reader.hpp"
#include "icap_server/answer.hpp"

#include <doctest/doctest.h>

using namespace pss;
using namespace pss::icap_server;

namespace {

const std::string k_req_hdr = "GET /files/eicar.com?x=1 HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n";
const std::string k_res_hdr = "HTTP/1.1 200 OK\r\nContent-Length: 68\r\n\r\n";

icap::Request request(const std::string& method, bool body = true, bool allow_204 = true) {
  std::string wire = method + " icap://127.0.0.1:1344/avscan ICAP/1.0\r\n";
  if (allow_204) {
    wire += "Allow: 204\r\n";
  }
  const std::string http = method == "RESPMOD" ? k_req_hdr + k_res_hdr : k_req_hdr;
  wire += "Encapsulated: req-hdr=0, ";
  if (method == "RESPMOD") {
    wire += "res-hdr=" + std::to_string(k_req_hdr.size()) + ", ";
  }
  wire += std::string(body ? (method == "RESPMOD" ? "res-body=" : "req-body=") : "null-body=") +
          std::to_string(http.size()) + "\r\n\r\n" + http + (body ? "0\r\n\r\n" : "");
  icap::RequestReader r;
  std::string out;
  std::size_t used = 0;
  while (!r.complete()) {
    auto p = r.feed(std::string_view(wire).substr(used), out);
    REQUIRE(p.has_value());
    used += p->used;
  }
  return r.request();
}

model::Analysis analysis(model::Verdict v, std::string name = "", std::string product = "") {
  model::Analysis a;
  a.result = v;
  if (!name.empty()) {
    a.result_name = name;
  }
  a.product = product;
  return a;
}

// The ICAP head of an answer, parsed; `rest` gets what follows it.
icap::Head head_of(const std::string& answer, std::string* rest = nullptr) {
  auto end = icap::find_head_end(answer);
  REQUIRE(end.has_value());
  REQUIRE(end->has_value());
  auto h = icap::parse_head(std::string_view(answer).substr(0, **end));
  REQUIRE(h.has_value());
  if (rest != nullptr) {
    *rest = answer.substr(**end);
  }
  return *h;
}

} // namespace

TEST_CASE("icap_server::make_istag") {
  const std::vector<EngineVersion> a = {{"clamav", "1.4.6", "custom:0123456789ab"},
                                        {"yara", "4.3", "custom:ba9876543210"}};
  const std::string tag = make_istag(a);
  CHECK(tag.size() <= 32);
  CHECK(tag.front() == '"');
  CHECK(tag.back() == '"');
  CHECK(tag.rfind("\"PSS-", 0) == 0);
  CHECK(make_istag(a) == tag);
  auto b = a;
  b[1].definitions = "custom:ba9876543211";
  CHECK(make_istag(b) != tag);
  CHECK(make_istag(a, "salt") != tag);
  // Moving bytes from one field to the next changes it too.
  CHECK(make_istag({{"ab", "c", ""}}) != make_istag({{"a", "bc", ""}}));
}

TEST_CASE("icap_server::options_answer") {
  ServiceInfo info{"\"PSS-1\"", "pssupervise 0.1.0 (clamav, yara)", 500};
  std::string rest;
  auto h = head_of(options_answer(info, false), &rest);
  CHECK(h.start_line == "ICAP/1.0 200 OK");
  CHECK(rest.empty());
  CHECK(*h.fields.find("Methods") == "RESPMOD, REQMOD");
  CHECK(*h.fields.find("ISTag") == "\"PSS-1\"");
  CHECK(*h.fields.find("Preview") == "1024");
  CHECK(*h.fields.find("Transfer-Preview") == "*");
  CHECK(*h.fields.find("Allow") == "204");
  CHECK(*h.fields.find("Max-Connections") == "500");
  CHECK(*h.fields.find("Options-TTL") == "3600");
  CHECK(*h.fields.find("Encapsulated") == "null-body=0");
  CHECK(*h.fields.find("Service") == "pssupervise 0.1.0 (clamav, yara)");
  CHECK(h.fields.find("Connection") == nullptr);
  CHECK(*head_of(options_answer(info, true)).fields.find("Connection") == "close");

  auto e = head_of(error_answer(404, "\"PSS-1\"", "no service 'x'\r\nInjected: yes", true));
  CHECK(e.start_line == "ICAP/1.0 404 ICAP Service Not Found");
  CHECK(*e.fields.find("X-Error") == "no service 'x'  Injected: yes");
  CHECK(e.fields.find("Injected") == nullptr);
  CHECK(continue_answer() == "ICAP/1.0 100 Continue\r\n\r\n");
}

TEST_CASE("icap_server::combine") {
  using Kind = icap_server::Verdict::Kind;
  using model::Verdict;
  SUBCASE("malicious if any engine says so, every name listed") {
    auto v = combine({{"clamav", analysis(Verdict::malicious, "Eicar-Test-Signature", "ClamAV")},
                      {"yara", analysis(Verdict::benign)},
                      {"other", analysis(Verdict::suspicious, "HEUR:Thing")},
                      {"broken", model::Analysis::unknown_because("timeout")}});
    CHECK(v.kind == Kind::infected);
    REQUIRE(v.threats.size() == 2);
    CHECK(v.threats[0].engine == "clamav");
    CHECK(v.threats[0].product == "ClamAV");
    CHECK(v.threats[0].name == "Eicar-Test-Signature");
    CHECK(v.threats[1].name == "HEUR:Thing");
  }
  SUBCASE("unknown if any engine could not answer, with every reason") {
    auto v = combine({{"clamav", analysis(Verdict::benign)},
                      {"a", model::Analysis::unknown_because("timeout after 60 s")},
                      {"b", model::Analysis::unknown_because("crashed")}});
    CHECK(v.kind == Kind::unknown);
    CHECK(v.errors == std::vector<std::string>{"a: timeout after 60 s", "b: crashed"});
  }
  SUBCASE("an engine that does not scan this type is left out") {
    auto skip = model::Analysis::unknown_because("not a PE",
                                                 std::string(model::k_skipped_type_unsupported));
    CHECK(combine({{"clamav", analysis(Verdict::benign)}, {"pe", skip}}).kind == Kind::clean);
    CHECK(combine({{"pe", skip}}).kind == Kind::clean);
  }
  SUBCASE("no answer at all") {
    auto v = combine({});
    CHECK(v.kind == Kind::unknown);
    CHECK_FALSE(v.errors.empty());
  }
  SUBCASE("a malicious answer without a name still names something") {
    auto v = combine({{"x", analysis(Verdict::malicious)}});
    REQUIRE(v.threats.size() == 1);
    CHECK_FALSE(v.threats[0].name.empty());
  }
}

TEST_CASE("icap_server::answer") {
  Verdict clean;
  clean.kind = Verdict::Kind::clean;
  Verdict infected;
  infected.kind = Verdict::Kind::infected;
  infected.threats = {{"clamav", "ClamAV", "Eicar-Test-Signature"},
                      {"yara", "YARA", "<script>alert(1)</script>"}};
  Verdict unknown;
  unknown.errors = {"clamav: timeout after 60 s", "yara: crashed"};
  Policy p;
  p.istag = "\"PSS-1\"";

  SUBCASE("clean with Allow: 204") {
    p.may_204 = true;
    Answer a = answer(request("RESPMOD"), clean, p);
    CHECK(a.status == 204);
    CHECK(a.body == Answer::Body::none);
    CHECK(a.outcome == "clean");
    std::string rest;
    auto h = head_of(a.head, &rest);
    CHECK(h.start_line == "ICAP/1.0 204 No Content");
    CHECK(*h.fields.find("ISTag") == "\"PSS-1\"");
    CHECK(h.fields.find("X-Scan-Error") == nullptr);
    CHECK(rest.empty());
  }
  SUBCASE("clean without 204: the message unmodified, its heads byte for byte") {
    Answer a = answer(request("RESPMOD", true, false), clean, p);
    CHECK(a.status == 200);
    CHECK(a.body == Answer::Body::echo);
    std::string rest;
    auto h = head_of(a.head, &rest);
    CHECK(*h.fields.find("Encapsulated") ==
          "res-hdr=0, res-body=" + std::to_string(k_res_hdr.size()));
    CHECK(rest == k_res_hdr);
    Answer q = answer(request("REQMOD", false, false), clean, p);
    CHECK(q.body == Answer::Body::none);
    h = head_of(q.head, &rest);
    CHECK(*h.fields.find("Encapsulated") ==
          "req-hdr=0, null-body=" + std::to_string(k_req_hdr.size()));
    CHECK(rest == k_req_hdr);
    q = answer(request("REQMOD", true, false), clean, p);
    CHECK(q.body == Answer::Body::echo);
    CHECK(*head_of(q.head).fields.find("Encapsulated") ==
          "req-hdr=0, req-body=" + std::to_string(k_req_hdr.size()));
  }
  SUBCASE("infected: c-icap's headers and a 403 page naming every threat, escaped") {
    for (const char* method : {"RESPMOD", "REQMOD"}) {
      CAPTURE(method);
      p.may_204 = true;
      Answer a = answer(request(method), infected, p);
      CHECK(a.status == 200);
      CHECK(a.outcome == "infected");
      REQUIRE(a.body == Answer::Body::page);
      std::string rest;
      auto h = head_of(a.head, &rest);
      auto found = h.fields.find_all("X-Infection-Found");
      REQUIRE(found.size() == 2);
      CHECK(found[0] == "Type=0; Resolution=2; Threat=Eicar-Test-Signature;");
      CHECK(h.fields.find_all("X-Virus-ID") ==
            std::vector<std::string>{"Eicar-Test-Signature", "<script>alert(1)</script>"});
      CHECK(*h.fields.find("X-Violations-Found") ==
            "2\neicar.com\nEicar-Test-Signature\n0\n0\neicar.com\n<script>alert(1)</script>\n0\n0");
      CHECK(*h.fields.find("Encapsulated") == "res-hdr=0, res-body=" + std::to_string(rest.size()));
      CHECK(rest.rfind("HTTP/1.1 403 Forbidden\r\n", 0) == 0);
      CHECK(rest.find("Content-Length: " + std::to_string(a.page.size()) + "\r\n") !=
            std::string::npos);
      CHECK(a.page.find("Eicar-Test-Signature") != std::string::npos);
      CHECK(a.page.find("clamav (ClamAV)") != std::string::npos);
      CHECK(a.page.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
      CHECK(a.page.find("<script>") == std::string::npos);
      CHECK(a.page.find("http://127.0.0.1:18080/files/eicar.com?x=1") != std::string::npos);
    }
  }
  SUBCASE("unknown: blocked by default with the reasons, or allowed") {
    Answer a = answer(request("RESPMOD"), unknown, p);
    CHECK(a.outcome == "unknown_blocked");
    CHECK(a.body == Answer::Body::page);
    auto h = head_of(a.head);
    CHECK(*h.fields.find("X-Scan-Error") == "clamav: timeout after 60 s; yara: crashed");
    CHECK(h.fields.find("X-Infection-Found") == nullptr);
    CHECK(a.page.find("could not be scanned") != std::string::npos);
    CHECK(a.page.find("yara: crashed") != std::string::npos);
    p.on_unknown = OnUnknown::allow;
    p.may_204 = true;
    a = answer(request("RESPMOD"), unknown, p);
    CHECK(a.outcome == "unknown_allowed");
    CHECK(a.status == 204);
    CHECK(*head_of(a.head).fields.find("X-Scan-Error") ==
          "clamav: timeout after 60 s; yara: crashed");
  }
  SUBCASE("a body not kept cannot be echoed: 413 when no 204 may be sent") {
    p.on_unknown = OnUnknown::allow;
    p.body_kept = false;
    Answer a = answer(request("RESPMOD", true, false), unknown, p);
    CHECK(a.status == 413);
    CHECK(a.outcome == "too_large");
    CHECK(head_of(a.head).start_line == "ICAP/1.0 413 Request Entity Too Large");
    p.may_204 = true;
    CHECK(answer(request("RESPMOD", true, false), unknown, p).status == 204);
  }
  SUBCASE("Connection: close when asked") {
    p.close = true;
    p.may_204 = true;
    CHECK(*head_of(answer(request("RESPMOD"), clean, p).head).fields.find("Connection") == "close");
  }
}

TEST_CASE("icap_server::header_value and html_escape") {
  CHECK(header_value("a\r\nb\x01\xff") == "a  b??");
  CHECK(header_value(std::string(600, 'x'), 10) == "xxxxxxxxxx...");
  CHECK(html_escape("<a href=\"x\">&'</a>") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
}
