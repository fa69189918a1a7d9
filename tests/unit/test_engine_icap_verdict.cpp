// The icap driver's verdict rules, run with each shipped manifest (engines/icap*/) on the answer
// shapes its README cites: c-icap's real ones, and the products' recorded by rspamd and
// Assemblyline. Also the OPTIONS answer and the versions read from it.
#include "engine/icap/options.hpp"
#include "engine/icap/spec.hpp"
#include "engine/icap/verdict.hpp"
#include "engine/manifest.hpp"
#include "icap/response_reader.hpp"
#include "unit/samples.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <string>

using namespace pss;
using namespace pss::engine::icap;
using model::Verdict;
namespace wire = pss::icap;

namespace {

const std::filesystem::path k_engines =
    pss::test::samples_dir().parent_path().parent_path() / "engines";
const std::string k_server = "icap://127.0.0.1:1344/avscan";

Spec spec_of(const std::string& engine) {
  auto m = engine::load_manifest(k_engines / engine);
  REQUIRE_MESSAGE(m.has_value(), (m ? "" : m.error().message));
  auto s = parse_spec(m->raw["icap"], engine);
  REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().message));
  return std::move(*s);
}

// An answer on the wire: the ICAP status line and fields, then an encapsulated HTTP response
// head (if any) and a chunked body (if any), read back by the real reader.
wire::Response answer(const std::string& status, const std::string& fields,
                      const std::string& http = "", const std::string& body = "") {
  std::string wire_text = "ICAP/1.0 " + status + "\r\n" + fields;
  if (!http.empty()) {
    wire_text += "Encapsulated: res-hdr=0, " +
                 std::string(body.empty() ? "null-body=" : "res-body=") +
                 std::to_string(http.size()) + "\r\n";
  }
  wire_text += "\r\n" + http;
  if (!body.empty()) {
    wire::write_chunk(wire_text, body);
    wire::write_last_chunk(wire_text);
  }
  wire::ResponseReader r;
  auto p = r.feed(wire_text);
  REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().message));
  REQUIRE(p->event == wire::ResponseReader::Event::response);
  REQUIRE(p->used == wire_text.size());
  return r.response();
}

const std::string k_403 = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\n\r\n";
const std::string k_200 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";

model::Analysis verdict(const std::string& engine, const wire::Response& r) {
  return to_analysis(r, spec_of(engine), k_server);
}

} // namespace

TEST_CASE("icap verdict: c-icap's real answers with engines/icap") {
  SUBCASE("EICAR: X-Infection-Found and the folded X-Violations-Found name it once") {
    auto a = verdict("icap", answer("200 OK",
                                    "ISTag: \"CI0001-x\"\r\n"
                                    "X-Infection-Found: Type=0; Resolution=2; "
                                    "Threat=Eicar-Test-Signature.UNOFFICIAL;\r\n"
                                    "X-Violations-Found: 1\r\n\t-\r\n"
                                    "\tEicar-Test-Signature.UNOFFICIAL\r\n\t0\r\n\t0\r\n",
                                    "HTTP/1.0 403 Forbidden\r\n\r\n", "<html>VIRUS FOUND</html>"));
    CHECK(a.result == Verdict::malicious);
    CHECK(a.result_name == "Eicar-Test-Signature.UNOFFICIAL");
    CHECK(a.metadata["threats"] == nlohmann::json::array({"Eicar-Test-Signature.UNOFFICIAL"}));
  }
  SUBCASE("clean: 204, or an unmodified 200") {
    CHECK(verdict("icap", answer("204 Unmodified", "ISTag: \"x\"\r\n")).result == Verdict::benign);
    CHECK(verdict("icap", answer("200 OK", "", k_200, "hello")).result == Verdict::benign);
  }
  SUBCASE("squidclamav: the headers in the encapsulated HTTP head") {
    auto a = verdict("icap", answer("200 OK", "",
                                    "HTTP/1.0 307 Temporary Redirect\r\n"
                                    "X-Infection-Found: Type=0; Resolution=2; "
                                    "Threat={HEX}EICAR.TEST.3.UNOFFICIAL;\r\n"
                                    "X-Virus-ID: {HEX}EICAR.TEST.3.UNOFFICIAL\r\n\r\n"));
    CHECK(a.result == Verdict::malicious);
    CHECK(a.result_name == "{HEX}EICAR.TEST.3.UNOFFICIAL");
  }
  SUBCASE("X-Violations-Found alone, with two violations: both names") {
    auto a = verdict("icap", answer("200 OK",
                                    "X-Violations-Found: 2\r\n\tf1\r\n\tTrojan.A\r\n\t0\r\n\t0\r\n"
                                    "\tf2\r\n\tWorm.B\r\n\t0\r\n\t0\r\n",
                                    k_403));
    CHECK(a.result == Verdict::malicious);
    CHECK(a.result_name == "Trojan.A");
    CHECK(a.metadata["threats"] == nlohmann::json::array({"Trojan.A", "Worm.B"}));
  }
  SUBCASE("errors and odd answers are unknown with the reason") {
    auto e = verdict("icap", answer("500 Server Error", ""));
    CHECK(e.result == Verdict::unknown);
    CHECK(e.error == "ICAP server " + k_server + " answered 500 Server Error");
    auto blocked = verdict("icap", answer("200 OK", "", k_403));
    CHECK(blocked.result == Verdict::unknown);
    CHECK(blocked.error->find("replaced the content with HTTP 403 Forbidden without naming a "
                              "threat") != std::string::npos);
    auto nohttp = verdict("icap", answer("200 OK", "Encapsulated: null-body=0\r\n"));
    CHECK(nohttp.result == Verdict::unknown);
  }
}

TEST_CASE("icap verdict: Kaspersky Scan Engine") {
  auto hit =
      verdict("icap-kaspersky", answer("200 OK",
                                       "Server: KL ICAP Service v1.0 (KAV SDK v1.2.3.456)\r\n"
                                       "Connection: close\r\nISTag: \"abcdef1234\"\r\n"
                                       "X-Virus-ID: EICAR-Test-File\r\n",
                                       k_403, "EICAR-Test-File\n"));
  CHECK(hit.result == Verdict::malicious);
  CHECK(hit.result_name == "EICAR-Test-File");
  auto heur = verdict("icap-kaspersky", answer("200 OK",
                                               "X-Virus-ID: HEUR:Backdoor.Java.QRat.gen\r\n"
                                               "X-Response-Info: blocked\r\n",
                                               k_403));
  CHECK(heur.result == Verdict::suspicious);
  CHECK(heur.result_name == "HEUR:Backdoor.Java.QRat.gen");
  auto adware = verdict("icap-kaspersky",
                        answer("200 OK", "X-Virus-ID: not-a-virus:AdWare.Win32.X\r\n", k_403));
  CHECK(adware.result == Verdict::suspicious);
  auto clean = verdict("icap-kaspersky", answer("200 OK",
                                                "X-Virus-ID: no threats\r\n"
                                                "X-Response-Info: passed\r\n",
                                                k_200, "hello"));
  CHECK(clean.result == Verdict::benign);
  auto v = versions_of(answer("200 OK", "Server: KL ICAP Service v1.0 (KAV SDK v8.9.2.595)\r\n"
                                        "ISTag: \"abcdef1234\"\r\n")
                           .fields,
                       spec_of("icap-kaspersky"));
  CHECK(v.engine == "8.9.2.595");
  CHECK(v.definitions == "abcdef1234");
}

TEST_CASE("icap verdict: ESET") {
  auto hit = verdict("icap-eset", answer("200 OK",
                                         "ISTag: \"tag-tag\"\r\n"
                                         "X-Infection-Found: Type=0; Resolution=0; "
                                         "Threat=VBA/TrojanDownloader.Agent.JOA;\r\n"
                                         "X-Virus-ID: Trojaner\r\nX-Response-Info: Blocked\r\n",
                                         k_403));
  CHECK(hit.result == Verdict::malicious);
  CHECK(hit.result_name == "VBA/TrojanDownloader.Agent.JOA");
  // The generic X-Virus-ID word is not a second threat.
  CHECK(hit.metadata["threats"] == nlohmann::json::array({"VBA/TrojanDownloader.Agent.JOA"}));
  auto only_id = verdict("icap-eset", answer("200 OK", "X-Virus-ID: Virus\r\n", k_403));
  CHECK(only_id.result == Verdict::malicious);
  CHECK(only_id.result_name == "Virus");
  CHECK(verdict("icap-eset", answer("405 Forbidden", "")).result == Verdict::unknown);
}

TEST_CASE("icap verdict: Sophos SAVDI") {
  const std::string http = "HTTP/1.1 200 OK:  403 Forbidden\r\nHTTP/1.1 200 OK: \r\n"
                           "X-Blocked: Virus found during virus scan\r\n"
                           "X-Blocked-By: Sophos Anti-Virus\r\n\r\n";
  auto hit = verdict("icap-sophos", answer("200 OK",
                                           "Service: Sophos Anti-Virus SAVDI/ICAP\r\n"
                                           "X-Virus-ID: Troj/DocDl-OYC\r\n"
                                           "X-Infection-Found: Type=0; Resolution=2; "
                                           "Threat=Troj/DocDl-OYC;\r\n",
                                           http));
  CHECK(hit.result == Verdict::malicious);
  CHECK(hit.result_name == "Troj/DocDl-OYC");
  CHECK(hit.metadata["threats"].size() == 1);
  // Only the encapsulated head says it was blocked.
  auto blocked = verdict("icap-sophos", answer("200 OK", "", http));
  CHECK(blocked.result == Verdict::malicious);
  CHECK(blocked.result_name == "Virus found during virus scan");
}

TEST_CASE("icap verdict: Symantec Protection Engine") {
  auto hit = verdict("icap-symantec", answer("200 OK",
                                             "X-Infection-Found: Type=0; Resolution=2; "
                                             "Threat=W97M.Downloader;\r\n",
                                             k_403));
  CHECK(hit.result == Verdict::malicious);
  CHECK(hit.result_name == "W97M.Downloader");
  for (const char* policy : {"Type=2; Resolution=2; Threat=Container size violation",
                             "Type=2; Resolution=2; Threat=Encrypted container violation;"}) {
    CAPTURE(policy);
    auto a = verdict("icap-symantec",
                     answer("200 OK", std::string("X-Infection-Found: ") + policy + "\r\n", k_403));
    CHECK(a.result == Verdict::unknown); // a policy failure, never malicious
    REQUIRE(a.error);
    CHECK(a.error->find("a policy failure, not a threat: type 2: ") != std::string::npos);
  }
  auto heur = verdict("icap-symantec", answer("200 OK",
                                              "X-Violations-Found: 1\r\n\tfile.doc\r\n"
                                              "\tHeur.AdvML.B|NonViralThreat=Heuristic\r\n"
                                              "\t9999\r\n\t2\r\n",
                                              k_403));
  CHECK(heur.result == Verdict::suspicious);
  CHECK(heur.result_name == "Heur.AdvML.B");
  auto license = verdict("icap-symantec", answer("539 Aborted - No AV scanning license", ""));
  CHECK(license.result == Verdict::unknown);
  CHECK(license.error->find("539 Aborted - No AV scanning license") != std::string::npos);
}

TEST_CASE("icap verdict: Trend Micro") {
  auto hit = verdict("icap-trendmicro", answer("200 OK",
                                               "X-Virus-ID: Trojan.W97M.POWLOAD.SMTHF1\r\n"
                                               "X-Infection-Found: Type=0; Resolution=2; "
                                               "Threat=Trojan.W97M.POWLOAD.SMTHF1;\r\n",
                                               "HTTP/1.1 403 Forbidden (TMWS Blocked)\r\n\r\n"));
  CHECK(hit.result == Verdict::malicious);
  CHECK(hit.metadata["threats"] == nlohmann::json::array({"Trojan.W97M.POWLOAD.SMTHF1"}));
  CHECK(verdict("icap-trendmicro", answer("400 Bad request", "")).result == Verdict::unknown);
}

TEST_CASE("icap verdict: Skyhigh / McAfee Web Gateway") {
  const std::string page = "X-Virus-ID:Bad-GUY!ABCD1234ABCD\n"
                           "X-Engine-Version:AM-DAT=1234|AM-Engine=1234.1970.1234\n";
  auto in_body = verdict(
      "icap-skyhigh", answer("200 OK", "ISTag: \"123456-.1.123-123456-123456\"\r\n",
                             "HTTP/1.1 403 VirusFound\r\nContent-Type: text/html\r\n\r\n", page));
  CHECK(in_body.result == Verdict::malicious);
  CHECK(in_body.result_name == "Bad-GUY!ABCD1234ABCD");
  auto in_head = verdict("icap-skyhigh", answer("200 OK",
                                                "X-Virus-ID: EICAR test file\r\n"
                                                "X-Block-Reason: Malware found\r\n",
                                                "HTTP/1.0 403 VirusFound\r\n\r\n"));
  CHECK(in_head.result_name == "EICAR test file");
  auto behaves = verdict("icap-skyhigh",
                         answer("200 OK", "X-Virus-ID: BehavesLike.Win32.Dropper.xx\r\n", k_403));
  CHECK(behaves.result == Verdict::suspicious);
  auto nameless = verdict("icap-skyhigh", answer("200 OK", "", "HTTP/1.0 403 VirusFound\r\n\r\n"));
  CHECK(nameless.result == Verdict::unknown);
  CHECK(nameless.error->find("HTTP 403 VirusFound") != std::string::npos);
}

TEST_CASE("icap verdict: WithSecure / F-Secure") {
  auto hit = verdict("icap-withsecure",
                     answer("200 OK",
                            "Server: F-Secure ICAP Server\r\nISTag: \"FSAV-1970-01-01_01\"\r\n"
                            "X-FSecure-Scan-Result: infected\r\n"
                            "X-FSecure-Infection-Name: \"Malware.W97M/Agent.32584203\"\r\n"
                            "X-Definition-Info: 1970-01-01_01\r\n",
                            k_403));
  CHECK(hit.result == Verdict::malicious);
  CHECK(hit.result_name == "Malware.W97M/Agent.32584203");
  CHECK(hit.metadata["threats"].size() == 1);
  auto unnamed =
      verdict("icap-withsecure", answer("200 OK", "X-FSecure-Scan-Result: infected\r\n", k_403));
  CHECK(unnamed.result == Verdict::malicious);
  CHECK(unnamed.result_name == "infected");
  auto clean =
      verdict("icap-withsecure", answer("204 No Content", "X-FSecure-Scan-Result: clean\r\n"));
  CHECK(clean.result == Verdict::benign);
  auto v = versions_of(answer("200 OK", "ISTag: \"FSAV-2015-08-18_06\"\r\n"
                                        "X-Definition-Info: 2015-08-18_06\r\n")
                           .fields,
                       spec_of("icap-withsecure"));
  CHECK(v.definitions == "2015-08-18_06");
  CHECK(v.note.empty());
}

TEST_CASE("icap verdict: heuristic names beside a definite one, and clean values") {
  Spec s = spec_of("icap");
  auto both = to_analysis(answer("200 OK",
                                 "X-Infection-Found: Type=0; Resolution=2; Threat=HEUR:Thing;\r\n"
                                 "X-Infection-Found: Type=0; Resolution=2; Threat=Worm.Real;\r\n",
                                 k_403),
                          s, k_server);
  CHECK(both.result == Verdict::malicious);
  CHECK(both.result_name == "Worm.Real");
  CHECK(both.metadata["threats"] == nlohmann::json::array({"HEUR:Thing", "Worm.Real"}));
  auto none = to_analysis(answer("204 No Content", "X-Virus-ID: None\r\n"), s, k_server);
  CHECK(none.result == Verdict::benign);
}

TEST_CASE("icap options: what OPTIONS allows, and what it must say") {
  const std::string cicap = "Methods: RESPMOD, REQMOD\r\n"
                            "Service: C-ICAP/0.5.10 server - Antivirus service\r\n"
                            "ISTag: \"CI0001-L5CkDhq+qWNs+PZ5DxxXsAAA\"\r\n"
                            "Transfer-Preview: *\r\nOptions-TTL: 3600\r\nPreview: 1024\r\n"
                            "Allow: 204\r\nEncapsulated: null-body=0\r\n";
  auto o = parse_options(answer("200 OK", cicap), k_server);
  REQUIRE(o.has_value());
  CHECK(o->istag == "CI0001-L5CkDhq+qWNs+PZ5DxxXsAAA");
  CHECK(o->preview == 1024u);
  CHECK(o->allow_204);
  CHECK_FALSE(o->max_connections);
  CHECK(o->ttl == std::chrono::seconds(3600));
  auto v = versions_of(o->fields, spec_of("icap"));
  CHECK(v.engine == "C-ICAP/0.5.10");
  CHECK(v.definitions == "CI0001-L5CkDhq+qWNs+PZ5DxxXsAAA");
  CHECK(v.note == "definitions: the service's ISTag");

  auto limited =
      parse_options(answer("200 OK", "Methods: RESPMOD\r\nMax-Connections: 3\r\n"), k_server);
  REQUIRE(limited.has_value());
  CHECK(limited->max_connections == 3);
  CHECK_FALSE(limited->preview);
  CHECK_FALSE(limited->allow_204);

  struct Bad {
    std::string status, fields, error;
  };
  for (const auto& b : {
           Bad{"404 Service Not Found", "", "answered OPTIONS with 404 Service Not Found"},
           Bad{"200 OK", "Methods: REQMOD\r\n",
               "does not offer RESPMOD (its OPTIONS answer says "
               "Methods: REQMOD)"},
           Bad{"200 OK", "", "does not offer RESPMOD"},
           Bad{"200 OK", "Methods: RESPMOD\r\nPreview: lots\r\n", "Preview is not a number"},
           Bad{"200 OK", "Methods: RESPMOD\r\nMax-Connections: 0\r\n", "Max-Connections is 0"},
       }) {
    CAPTURE(b.fields);
    auto r = parse_options(answer(b.status, b.fields), k_server);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("ICAP server " + k_server) == 0);
    CHECK(r.error().message.find(b.error) != std::string::npos);
  }
}
