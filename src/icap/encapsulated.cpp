#include "icap/encapsulated.hpp"

#include <charconv>

namespace pss::icap {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

const char* body_name(Encapsulated::Body b) {
  switch (b) {
  case Encapsulated::Body::req_body:
    return "req-body";
  case Encapsulated::Body::res_body:
    return "res-body";
  case Encapsulated::Body::opt_body:
    return "opt-body";
  case Encapsulated::Body::null_body:
    break;
  }
  return "null-body";
}

} // namespace

std::size_t Encapsulated::req_hdr_size() const {
  if (!req_hdr) {
    return 0;
  }
  return (res_hdr ? *res_hdr : body_offset) - *req_hdr;
}

std::size_t Encapsulated::res_hdr_size() const {
  return res_hdr ? body_offset - *res_hdr : 0;
}

std::string Encapsulated::write() const {
  std::string out;
  if (req_hdr) {
    out += "req-hdr=" + std::to_string(*req_hdr) + ", ";
  }
  if (res_hdr) {
    out += "res-hdr=" + std::to_string(*res_hdr) + ", ";
  }
  out += body_name(body);
  out += "=" + std::to_string(body_offset);
  return out;
}

Result<Encapsulated> parse_encapsulated(std::string_view value, std::size_t max_offset) {
  auto bad = [&](const std::string& what) {
    std::string shown(value.substr(0, 120));
    return make_error("Encapsulated '" + shown + "': " + what);
  };
  Encapsulated out;
  int rank = 0; // 1 req-hdr, 2 res-hdr, 3 a body: the RFC's order
  std::optional<std::size_t> last;
  std::string_view rest = value;
  while (!rest.empty() || rank == 0) {
    if (rank == 3) {
      return bad("an entry after the body entry");
    }
    const auto comma = rest.find(',');
    const std::string_view entry = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) {
      return bad("an entry is not name=offset");
    }
    const std::string_view name = entry.substr(0, eq);
    const std::string_view digits = entry.substr(eq + 1);
    std::size_t offset = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), offset);
    if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size()) {
      return bad("an offset is not a number");
    }
    if (offset > max_offset) {
      return bad("an offset is larger than " + std::to_string(max_offset));
    }
    if (last ? offset <= *last : offset != 0) {
      return bad(last ? "offsets must increase" : "the first offset must be 0");
    }
    int this_rank = 0;
    if (name == "req-hdr") {
      this_rank = 1;
      out.req_hdr = offset;
    } else if (name == "res-hdr") {
      this_rank = 2;
      out.res_hdr = offset;
    } else {
      this_rank = 3;
      if (name == "req-body") {
        out.body = Encapsulated::Body::req_body;
      } else if (name == "res-body") {
        out.body = Encapsulated::Body::res_body;
      } else if (name == "null-body") {
        out.body = Encapsulated::Body::null_body;
      } else if (name == "opt-body") {
        out.body = Encapsulated::Body::opt_body;
      } else {
        return bad("unknown entry '" + std::string(name.substr(0, 20)) + "'");
      }
      out.body_offset = offset;
    }
    if (this_rank <= rank) {
      return bad("entries out of order or repeated");
    }
    rank = this_rank;
    last = offset;
  }
  if (rank != 3) {
    return bad("no body entry (req-body, res-body, null-body or opt-body) at the end");
  }
  return out;
}

} // namespace pss::icap
