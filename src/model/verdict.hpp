// The four verdicts an engine can give, with their JSON names.
#pragma once

#include <optional>
#include <string_view>

namespace pss::model {

enum class Verdict { malicious, benign, suspicious, unknown };

std::string_view to_string(Verdict v);
// Case-insensitive; nullopt for anything else.
std::optional<Verdict> parse_verdict(std::string_view s);

} // namespace pss::model
