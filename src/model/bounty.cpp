#include "model/bounty.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <limits>

namespace pss::model {

namespace {

using nlohmann::json;
using std::chrono::system_clock;
__extension__ typedef unsigned __int128 u128; // g++/clang; __extension__ silences -Wpedantic

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) { return lower(x) == lower(y); });
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_hex(char c) {
  return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f');
}

// A JSON value as it appears in an error message, shortened.
std::string shown(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) {
    s = s.substr(0, 57) + "...";
  }
  return s;
}

Error field_error(std::string_view field, std::string_view what) {
  return make_error(fmt::format("bounty field '{}': {}", field, what));
}

Error type_error(std::string_view field, std::string_view expected, const json& v) {
  return field_error(field,
                     fmt::format("expected {}, got {} {}", expected, v.type_name(), shown(v)));
}

// The member `key` of `j`, or nullptr when absent or null.
const json* member(const json& j, std::string_view key) {
  const auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? nullptr : &*it;
}

// An optional string member; an empty string counts as absent.
Result<std::optional<std::string>> optional_string(const json& j, std::string_view key) {
  const json* v = member(j, key);
  if (v == nullptr) {
    return std::optional<std::string>();
  }
  if (!v->is_string()) {
    return type_error(key, "a string", *v);
  }
  auto s = v->get<std::string>();
  if (s.empty()) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(std::move(s));
}

Result<std::uint64_t> parse_id(const json& v, std::string_view field) {
  if (v.is_number_unsigned()) {
    return v.get<std::uint64_t>();
  }
  if (v.is_number_integer()) { // signed, hence negative
    return field_error(field, fmt::format("must not be negative, got {}", shown(v)));
  }
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    std::uint64_t id = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
      return field_error(field, fmt::format("expected a non-negative integer, got {}", shown(v)));
    }
    return id;
  }
  return type_error(field, "an integer or a numeric string", v);
}

// Wei from a decimal string: digits, an optional fraction and an optional exponent
// ("62500000000000000", "0.0625e18", "6.25E16"), computed exactly.
Result<Wei> parse_decimal_wei(std::string_view s) {
  const auto fail = [&](std::string_view why) {
    return make_error(fmt::format("{}, got \"{}\"", why, s.substr(0, 60)));
  };
  if (s.starts_with('-')) {
    return fail("must not be negative");
  }
  std::size_t i = 0;
  std::string digits;
  std::size_t fraction_digits = 0;
  while (i < s.size() && is_digit(s[i])) {
    digits.push_back(s[i++]);
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && is_digit(s[i])) {
      digits.push_back(s[i++]);
      ++fraction_digits;
    }
  }
  if (digits.empty()) {
    return fail("expected a decimal number of wei");
  }
  long exponent = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    const bool negative = i < s.size() && s[i] == '-';
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
      ++i;
    }
    const auto [end, ec] = std::from_chars(s.data() + i, s.data() + s.size(), exponent);
    if (end == s.data() + i || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
      return fail("expected a decimal number of wei");
    }
    if (ec == std::errc::result_out_of_range || exponent > 1000) {
      exponent = 1000; // beyond any 64-bit value, or a whole zero
    }
    exponent = negative ? -exponent : exponent;
    i = static_cast<std::size_t>(end - s.data());
  }
  if (i != s.size()) {
    return fail("expected a decimal number of wei");
  }
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.empty()) {
    return Wei{0};
  }
  long shift = exponent - static_cast<long>(fraction_digits); // value = digits * 10^shift
  if (shift < 0) {
    const auto drop = static_cast<std::size_t>(-shift);
    if (drop >= digits.size() ||
        digits.find_first_not_of('0', digits.size() - drop) != std::string::npos) {
      return fail("expected a whole number of wei");
    }
    digits.resize(digits.size() - drop);
    shift = 0;
  }
  if (digits.size() + static_cast<std::size_t>(shift) > 20) {
    return fail("out of range (more than 64 bits)");
  }
  digits.append(static_cast<std::size_t>(shift), '0');
  u128 value = 0;
  for (const char c : digits) {
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > std::numeric_limits<Wei>::max()) {
    return fail("out of range (more than 64 bits)");
  }
  return static_cast<Wei>(value);
}

Result<Wei> rule(const json& rules, std::string_view key, Wei fallback) {
  const json* v = member(rules, key);
  if (v == nullptr) {
    return fallback;
  }
  auto wei = wei_from_json(*v);
  if (!wei) {
    return field_error(fmt::format("rules.{}", key), wei.error().message);
  }
  return *wei;
}

} // namespace

std::string_view to_string(ArtifactType t) {
  return t == ArtifactType::url ? "url" : "file";
}

std::string_view to_string(Phase p) {
  return p == Phase::arbitration ? "arbitration" : "assertion";
}

Result<Wei> wei_from_json(const nlohmann::json& j) {
  if (j.is_number_unsigned()) {
    return j.get<Wei>();
  }
  if (j.is_number_integer()) { // signed, hence negative
    return make_error(fmt::format("must not be negative, got {}", shown(j)));
  }
  if (j.is_number_float()) {
    const double d = j.get<double>();
    if (!std::isfinite(d)) {
      return make_error(fmt::format("expected a number of wei, got {}", shown(j)));
    }
    if (d < 0) {
      return make_error(fmt::format("must not be negative, got {}", shown(j)));
    }
    if (d >= 18446744073709551616.0) { // 2^64
      return make_error(fmt::format("out of range (more than 64 bits), got {}", shown(j)));
    }
    if (d != std::floor(d)) {
      return make_error(fmt::format("expected a whole number of wei, got {}", shown(j)));
    }
    return static_cast<Wei>(d);
  }
  if (j.is_string()) {
    return parse_decimal_wei(j.get_ref<const std::string&>());
  }
  return make_error(
      fmt::format("expected an integer or a decimal string, got {} {}", j.type_name(), shown(j)));
}

Result<Bounty> bounty_from_json(const nlohmann::json& j) {
  if (!j.is_object()) {
    return make_error(fmt::format("bounty: expected a JSON object, got {}", j.type_name()));
  }
  try {
    Bounty b;

    for (const std::string_view key : {"id", "guid"}) {
      if (const json* v = member(j, key)) {
        b.id = PSS_TRY(parse_id(*v, key));
        break;
      }
    }

    if (const json* v = member(j, "artifact_type")) {
      if (!v->is_string()) {
        return type_error("artifact_type", "\"file\" or \"url\"", *v);
      }
      const auto& t = v->get_ref<const std::string&>();
      if (iequals(t, "file")) {
        b.artifact_type = ArtifactType::file;
      } else if (iequals(t, "url")) {
        b.artifact_type = ArtifactType::url;
      } else {
        return type_error("artifact_type", "\"file\" or \"url\"", *v);
      }
    }

    const std::string_view uri_key = member(j, "artifact_uri") != nullptr   ? "artifact_uri"
                                     : member(j, "artifact_url") != nullptr ? "artifact_url"
                                                                            : "";
    if (uri_key.empty()) {
      return field_error("artifact_uri", "missing");
    }
    auto uri = PSS_TRY(optional_string(j, uri_key));
    if (!uri) {
      return field_error(uri_key, "empty");
    }
    b.artifact_uri = std::move(*uri);

    b.sha256 = PSS_TRY(optional_string(j, "sha256"));
    if (b.sha256) {
      if (b.sha256->size() != 64 || !std::ranges::all_of(*b.sha256, is_hex)) {
        return field_error(
            "sha256", fmt::format("expected 64 hex digits, got \"{}\"", b.sha256->substr(0, 80)));
      }
      std::ranges::transform(*b.sha256, b.sha256->begin(), lower);
    }

    b.mimetype = PSS_TRY(optional_string(j, "mimetype"));

    if (const auto expiration = PSS_TRY(optional_string(j, "expiration"))) {
      auto t = parse_iso8601(*expiration);
      if (!t) {
        return field_error("expiration", t.error().message);
      }
      b.expiration = *t;
    }

    if (const json* v = member(j, "phase")) {
      const auto is = [&](std::string_view name) {
        return v->is_string() && iequals(v->get_ref<const std::string&>(), name);
      };
      if (is("assertion")) {
        b.phase = Phase::assertion;
      } else if (is("arbitration")) {
        b.phase = Phase::arbitration;
      } else {
        return type_error("phase", "\"assertion\" or \"arbitration\"", *v);
      }
    }

    b.response_url = PSS_TRY(optional_string(j, "response_url"));

    if (const json* rules = member(j, "rules")) {
      if (!rules->is_object()) {
        return type_error("rules", "an object", *rules);
      }
      b.rules.min_allowed_bid = PSS_TRY(rule(*rules, "min_allowed_bid", k_default_min_bid));
      b.rules.max_allowed_bid = PSS_TRY(rule(*rules, "max_allowed_bid", k_default_max_bid));
    }

    if (const auto it = j.find("metadata"); it != j.end()) {
      b.metadata = *it;
    }
    return b;
  } catch (const json::exception& e) { // not expected: every access above is type-checked
    return make_error(fmt::format("bounty: {}", e.what()));
  }
}

Result<Bounty> parse_bounty(std::string_view text) {
  // nlohmann stops at a NUL as at the end of the input: "{...}\0junk" is not one bounty.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    return make_error(fmt::format("bounty: invalid JSON: a NUL byte at offset {}", nul));
  }
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return make_error(fmt::format("bounty: invalid JSON: {}", e.what()));
  }
  return bounty_from_json(j);
}

nlohmann::ordered_json to_json(const Bounty& b) {
  nlohmann::ordered_json j;
  j["id"] = b.id;
  j["artifact_type"] = to_string(b.artifact_type);
  j["artifact_uri"] = b.artifact_uri;
  if (b.sha256) {
    j["sha256"] = *b.sha256;
  }
  if (b.mimetype) {
    j["mimetype"] = *b.mimetype;
  }
  if (b.expiration) {
    j["expiration"] = format_iso8601(*b.expiration);
  }
  if (b.response_url) {
    j["response_url"] = *b.response_url;
  }
  j["phase"] = to_string(b.phase);
  j["rules"] = {{"min_allowed_bid", b.rules.min_allowed_bid},
                {"max_allowed_bid", b.rules.max_allowed_bid}};
  if (!b.metadata.is_null()) {
    j["metadata"] = b.metadata;
  }
  return j;
}

std::uint64_t local_bounty_id(std::string_view sha256_hex) {
  constexpr std::size_t k_digits = 15; // 60 bits
  if (sha256_hex.size() >= k_digits &&
      std::all_of(sha256_hex.begin(), sha256_hex.begin() + k_digits, is_hex)) {
    std::uint64_t id = 0;
    std::from_chars(sha256_hex.data(), sha256_hex.data() + k_digits, id, 16);
    return id;
  }
  // Not a hex digest: FNV-1a 64 of the text, folded to 60 bits, still deterministic.
  std::uint64_t h = 14695981039346656037ULL;
  for (const char c : sha256_hex) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  }
  return (h ^ (h >> 60)) & ((std::uint64_t{1} << 60) - 1);
}

} // namespace pss::model
