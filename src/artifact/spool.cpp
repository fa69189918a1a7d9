#include "artifact/spool.hpp"

#include "artifact/uri.hpp"
#include "util/json_skim.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace pss::artifact {

namespace {

// A JSON string's text that decodes to itself: printable ASCII, no escape (and no '"', or
// the skimmer would not have ended the string there).
bool is_plain_string(std::string_view quoted) {
  return std::all_of(quoted.begin() + 1, quoted.end() - 1,
                     [](char c) { return c >= 0x20 && c < 0x7f && c != '\\'; });
}

bool istarts_with_data(std::string_view s) {
  constexpr std::string_view k_data = "data:";
  if (s.size() < k_data.size()) {
    return false;
  }
  for (std::size_t i = 0; i < k_data.size(); ++i) {
    char c = s[i];
    char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != k_data[i]) {
      return false;
    }
  }
  return true;
}

// The value model::parse_bounty takes for the artifact URI, as text (a string's with its
// quotes); nullopt if the body cannot be skimmed or a top-level key holds an escape.
std::optional<std::string_view> artifact_uri_value(std::string_view body) {
  std::optional<std::string_view> uri;
  std::optional<std::string_view> url;
  bool escaped_key = false;
  bool skimmed = for_each_top_level_member(body, [&](const JsonMember& m) {
    if (m.key.find('\\') != std::string_view::npos) {
      escaped_key = true;
    } else if (m.key == "artifact_uri") {
      uri = m.value; // the last one wins, as in nlohmann::json::parse
    } else if (m.key == "artifact_url") {
      url = m.value;
    }
  });
  if (!skimmed || escaped_key) {
    return std::nullopt;
  }
  if (uri && *uri != "null") { // parse_bounty takes a null as absent
    return uri;
  }
  return url;
}

} // namespace

std::string spooled_uri_stand_in(std::uint64_t size) {
  return "data:...(spooled: " + std::to_string(size) + " bytes)";
}

Result<std::optional<SpooledArtifact>> spool_data_artifact(std::string_view json_body,
                                                           const std::filesystem::path& dir,
                                                           std::uint64_t max_size,
                                                           std::size_t min_size) {
  using Nothing = std::optional<SpooledArtifact>;
  auto value = artifact_uri_value(json_body);
  if (!value || value->size() < 2 || value->front() != '"') {
    return Nothing();
  }
  std::string_view uri = value->substr(1, value->size() - 2);
  if (uri.size() < min_size || !istarts_with_data(uri) || !is_plain_string(*value)) {
    return Nothing();
  }

  TempFile file = PSS_TRY(TempFile::create(dir, "artifact-"));
  auto size = PSS_TRY(decode_data_uri(
      uri, max_size, [&file](std::string_view piece) { return file.write(piece); }));
  file.close(); // a queue of spooled bounties holds no descriptors

  std::string stand_in = spooled_uri_stand_in(size);
  auto begin = static_cast<std::size_t>(uri.data() - json_body.data());
  std::string body;
  body.reserve(json_body.size() - uri.size() + stand_in.size());
  body.append(json_body.substr(0, begin));
  body.append(stand_in);
  body.append(json_body.substr(begin + uri.size()));
  // The new body is valid JSON exactly when the one sent is (a plain string was replaced by
  // another); if it is not, the body as sent is parsed, for its error's offsets.
  if (!nlohmann::json::accept(body)) {
    return Nothing();
  }
  return Nothing(SpooledArtifact{std::move(file), size, std::move(body)});
}

} // namespace pss::artifact
