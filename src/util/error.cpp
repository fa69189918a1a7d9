#include "util/error.hpp"

#include <exception>
#include <ostream>

namespace pss {

std::ostream& operator<<(std::ostream& os, const Error& e) {
  return os << e.message;
}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw Fatal(e.message);
}

void rethrow_with_context(const std::string& context) {
  try {
    throw;
  } catch (const std::exception& e) {
    throw Fatal(context + ": " + e.what());
  }
}

} // namespace pss
