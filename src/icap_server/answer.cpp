#include "icap_server/answer.hpp"

#include "util/sha256.hpp"

#include <algorithm>

namespace pss::icap_server {

namespace {

using Kind = Verdict::Kind;

std::string field(std::string_view name, std::string_view value) {
  return std::string(name) + ": " + std::string(value) + "\r\n";
}

std::string start(int status) {
  return "ICAP/1.0 " + std::to_string(status) + " " + std::string(reason_phrase(status)) + "\r\n";
}

// The request target of the encapsulated HTTP request ("GET /a/b.exe?x HTTP/1.1" → "/a/b.exe?x").
std::string_view target_of(const icap::Head& req) {
  std::string_view line = req.start_line;
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    return {};
  }
  line.remove_prefix(sp1 + 1);
  return line.substr(0, line.find(' '));
}

// Where the content came from, for the page: the absolute URL when it can be made.
std::string url_of(const icap::Request& r) {
  std::string target(target_of(r.req_head));
  if (target.empty() || target.find("://") != std::string::npos) {
    return target;
  }
  const std::string* host = r.req_head.fields.find("Host");
  return host != nullptr ? "http://" + *host + target : target;
}

// c-icap's "filename" in X-Violations-Found: the last segment of the request's path, else "-".
std::string file_name_of(const icap::Request& r) {
  std::string_view path = target_of(r.req_head);
  path = path.substr(0, path.find_first_of("?#"));
  const auto slash = path.rfind('/');
  if (slash != std::string_view::npos) {
    path.remove_prefix(slash + 1);
  }
  return path.empty() ? "-" : header_value(path, 200);
}

// The HTTP version of the page: that of the message it replaces, when HTTP/1.0.
std::string_view http_version(const icap::Request& r) {
  const icap::Head& h = r.res_hdr.empty() ? r.req_head : r.res_head;
  return h.start_line.find("HTTP/1.0") != std::string::npos ? "HTTP/1.0" : "HTTP/1.1";
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) {
      out += sep;
    }
    out += p;
  }
  return out;
}

std::string page_for(const icap::Request& r, const Verdict& v) {
  const std::string url = url_of(r);
  std::string title;
  std::string html;
  if (v.kind == Kind::infected) {
    title = v.threats.size() == 1 ? "a threat was found" : "threats were found";
    html += "<ul>\n";
    for (const auto& t : v.threats) {
      html += "<li><strong>" + html_escape(t.name) + "</strong>, found by " +
              html_escape(t.engine) +
              (t.product.empty() ? std::string() : " (" + html_escape(t.product) + ")") + "</li>\n";
    }
    html += "</ul>\n";
  } else {
    title = "the content could not be scanned";
    html += "<p>It was blocked because no verdict could be made:</p>\n<ul>\n";
    for (const auto& e : v.errors) {
      html += "<li>" + html_escape(e) + "</li>\n";
    }
    html += "</ul>\n";
  }
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>403 Forbidden: " + title +
         "</title></head>\n<body>\n<h1>Blocked: " + title + "</h1>\n" +
         (url.empty() ? std::string()
                      : "<p>The content of <code>" + html_escape(url) +
                            "</code> was blocked by pssupervise.</p>\n") +
         html + "</body></html>\n";
}

} // namespace

std::string_view reason_phrase(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 404:
    return "ICAP Service Not Found";
  case 405:
    return "Method Not Allowed For Service";
  case 408:
    return "Request Timeout";
  case 413:
    return "Request Entity Too Large";
  case 500:
    return "Server Error";
  case 501:
    return "Method Not Implemented";
  case 503:
    return "Service Overloaded";
  case 505:
    return "ICAP Version Not Supported";
  default:
    break;
  }
  return status < 400 ? "OK" : "Error";
}

std::string make_istag(const std::vector<EngineVersion>& engines, std::string_view salt) {
  Sha256 h;
  for (const auto& e : engines) {
    for (std::string_view part : {std::string_view(e.engine), std::string_view(e.version),
                                  std::string_view(e.definitions)}) {
      h.update(part);
      h.update(std::string_view("\0", 1));
    }
  }
  h.update(salt);
  return "\"PSS-" + h.hex_digest().substr(0, 20) + "\"";
}

std::string options_answer(const ServiceInfo& info, bool close) {
  std::string out = start(200);
  out += field("Methods", "RESPMOD, REQMOD");
  out += field("Service", header_value(info.service, 200));
  out += field("ISTag", info.istag);
  out += field("Max-Connections", std::to_string(info.max_connections));
  out += field("Options-TTL", std::to_string(info.options_ttl.count()));
  out += field("Allow", "204");
  out += field("Preview", std::to_string(k_preview));
  out += field("Transfer-Preview", "*");
  if (close) {
    out += field("Connection", "close");
  }
  out += field("Encapsulated", "null-body=0");
  out += "\r\n";
  return out;
}

std::string error_answer(int status, std::string_view istag, std::string_view reason, bool close) {
  std::string out = start(status);
  if (!istag.empty()) {
    out += field("ISTag", istag);
  }
  if (!reason.empty()) {
    out += field("X-Error", header_value(reason));
  }
  if (close) {
    out += field("Connection", "close");
  }
  out += field("Encapsulated", "null-body=0");
  out += "\r\n";
  return out;
}

std::string continue_answer() {
  return "ICAP/1.0 100 Continue\r\n\r\n";
}

Verdict combine(const std::vector<backend::EngineAnalysis>& analyses) {
  Verdict v;
  bool clean = false;
  for (const auto& [engine, a] : analyses) {
    switch (a.result) {
    case model::Verdict::malicious:
    case model::Verdict::suspicious:
      v.threats.push_back({engine, a.product,
                           a.result_name && !a.result_name->empty()
                               ? *a.result_name
                               : std::string("Unnamed.Threat")});
      break;
    case model::Verdict::benign:
      clean = true;
      break;
    case model::Verdict::unknown:
      if (a.comments && *a.comments == model::k_skipped_type_unsupported) {
        clean = true; // it scans no content of this type: nothing to say against it
        break;
      }
      v.errors.push_back(engine + ": " + (a.error ? *a.error : a.comments.value_or("no answer")));
      break;
    }
  }
  if (!v.threats.empty()) {
    v.kind = Kind::infected;
  } else if (!v.errors.empty()) {
    v.kind = Kind::unknown;
  } else if (clean) {
    v.kind = Kind::clean;
  } else {
    v.kind = Kind::unknown;
    v.errors.push_back("no engine answered");
  }
  return v;
}

Answer answer(const icap::Request& r, const Verdict& v, const Policy& p) {
  Answer a;
  const bool respmod = r.line.method == "RESPMOD";
  if (v.kind == Kind::unknown) {
    a.scan_error = header_value(join(v.errors, "; "));
  }
  std::string common = field("ISTag", p.istag);
  if (!a.scan_error.empty()) {
    common += field("X-Scan-Error", a.scan_error);
  }
  if (p.close) {
    common += field("Connection", "close");
  }
  const bool pass =
      v.kind == Kind::clean || (v.kind == Kind::unknown && p.on_unknown == OnUnknown::allow);
  if (pass) {
    a.outcome = v.kind == Kind::clean ? "clean" : "unknown_allowed";
    if (p.may_204) {
      a.status = 204;
      a.head = start(204) + common + field("Encapsulated", "null-body=0") + "\r\n";
      return a;
    }
    if (r.has_body() && !p.body_kept) {
      a.status = 413;
      a.outcome = "too_large";
      a.head = error_answer(413, p.istag,
                            "the body is over the size limit and the client did not allow 204: "
                            "it cannot be returned unmodified",
                            p.close);
      return a;
    }
    // The message unmodified: its own heads, byte for byte, and its body echoed.
    const std::string& http = respmod ? r.res_hdr : r.req_hdr;
    icap::Encapsulated e;
    if (!http.empty()) {
      (respmod ? e.res_hdr : e.req_hdr) = 0;
    }
    e.body = !r.has_body() ? icap::Encapsulated::Body::null_body
             : respmod     ? icap::Encapsulated::Body::res_body
                           : icap::Encapsulated::Body::req_body;
    e.body_offset = http.size();
    a.status = 200;
    a.head = start(200) + common + field("Encapsulated", e.write()) + "\r\n" + http;
    a.body = r.has_body() ? Answer::Body::echo : Answer::Body::none;
    return a;
  }

  a.status = 200;
  a.outcome = v.kind == Kind::infected ? "infected" : "unknown_blocked";
  a.page = page_for(r, v);
  a.body = Answer::Body::page;
  std::string icap = start(200);
  if (v.kind == Kind::infected) {
    std::string violations = std::to_string(v.threats.size());
    std::string ids;
    const std::string file = file_name_of(r);
    for (const auto& t : v.threats) {
      const std::string name = header_value(t.name, 200);
      icap += field("X-Infection-Found", "Type=0; Resolution=2; Threat=" + name + ";");
      ids += field("X-Virus-ID", name); // one per threat: a name may hold a comma
      // c-icap's layout: file name, threat, then two numbers, each on a folded line.
      violations += "\r\n\t" + file + "\r\n\t" + name + "\r\n\t0\r\n\t0";
    }
    icap += ids;
    icap += field("X-Violations-Found", violations);
  }
  const std::string http_head = std::string(http_version(r)) +
                                " 403 Forbidden\r\nContent-Type: text/html; charset=utf-8\r\n"
                                "Content-Length: " +
                                std::to_string(a.page.size()) +
                                "\r\nCache-Control: no-store\r\n\r\n";
  icap::Encapsulated e;
  e.res_hdr = 0;
  e.body = icap::Encapsulated::Body::res_body;
  e.body_offset = http_head.size();
  a.head = icap + common + field("Encapsulated", e.write()) + "\r\n" + http_head;
  return a;
}

std::string header_value(std::string_view s, std::size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : (u == '\t' || u == '\n' || u == '\r') ? ' ' : '?';
  }
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

} // namespace pss::icap_server
