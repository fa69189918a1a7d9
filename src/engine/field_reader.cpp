#include "engine/field_reader.hpp"

namespace pss::engine {

using nlohmann::json;

Error FieldReader::bad(const std::string& field, const std::string& what) const {
  return make_error(where + ": field '" + prefix + field + "' " + what);
}

Result<std::string> FieldReader::string(const json& j, const std::string& field, bool required,
                                        std::string fallback) const {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (required) {
      return bad(field, "is missing");
    }
    return fallback;
  }
  if (!it->is_string()) {
    return bad(field, "must be a string");
  }
  return it->get<std::string>();
}

Result<std::vector<std::string>> FieldReader::strings(const json& j, const std::string& field,
                                                      bool required) const {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (required) {
      return bad(field, "is missing");
    }
    return std::vector<std::string>{};
  }
  if (!it->is_array()) {
    return bad(field, "must be an array of strings");
  }
  std::vector<std::string> out;
  for (const auto& e : *it) {
    if (!e.is_string()) {
      return bad(field, "must be an array of strings");
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<bool> FieldReader::boolean(const json& j, const std::string& field, bool fallback) const {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    return fallback;
  }
  if (!it->is_boolean()) {
    return bad(field, "must be true or false");
  }
  return it->get<bool>();
}

Result<int> FieldReader::count(const json& j, const std::string& field, int fallback,
                               int min) const {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    return fallback;
  }
  if (!it->is_number_integer() || it->get<long long>() < min || it->get<long long>() > 1'000'000) {
    return bad(field, "must be an integer of at least " + std::to_string(min));
  }
  return it->get<int>();
}

Result<std::chrono::milliseconds> FieldReader::seconds(const json& j, const std::string& field,
                                                       std::chrono::milliseconds fallback) const {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    return fallback;
  }
  // The bound keeps the milliseconds (and the nanoseconds of a deadline) within 64 bits.
  if (!it->is_number() || it->get<double>() <= 0 || it->get<double>() > 1e9) {
    return bad(field, "must be a positive number of seconds (at most 1e9)");
  }
  return std::chrono::milliseconds(static_cast<long long>(it->get<double>() * 1000));
}

} // namespace pss::engine
