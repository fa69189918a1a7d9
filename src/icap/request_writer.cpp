#include "icap/request_writer.hpp"

#include "icap/encapsulated.hpp"

namespace pss::icap {

namespace {

std::string icap_start(std::string_view method, const Url& url) {
  std::string out(method);
  out += " " + url.text() + " ICAP/1.0\r\n";
  out += "Host: " + url.host + ":" + std::to_string(url.port) + "\r\n";
  out += "User-Agent: pssupervise\r\n";
  return out;
}

} // namespace

std::string write_options(const Url& url) {
  return icap_start("OPTIONS", url) + "Encapsulated: null-body=0\r\n\r\n";
}

std::string write_respmod_head(const RespmodHead& r) {
  std::string req =
      "GET /" + r.sha256 + " HTTP/1.1\r\nHost: " + std::string(k_synthetic_host) + "\r\n\r\n";
  std::string res = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    "Content-Length: " +
                    std::to_string(r.size) + "\r\n\r\n";
  Encapsulated e;
  e.req_hdr = 0;
  e.res_hdr = req.size();
  e.body = Encapsulated::Body::res_body;
  e.body_offset = req.size() + res.size();
  std::string out = icap_start("RESPMOD", r.url);
  if (r.allow_204) {
    out += "Allow: 204\r\n";
  }
  if (r.preview) {
    out += "Preview: " + std::to_string(*r.preview) + "\r\n";
  }
  out += r.extra.write();
  out += "Encapsulated: " + e.write() + "\r\n\r\n";
  return out + req + res;
}

} // namespace pss::icap
