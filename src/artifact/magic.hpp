// Mimetype detection with libmagic. One handle per thread (libmagic handles are not
// thread-safe); loading the database costs milliseconds, so handles are reused.
#pragma once

#include "util/error.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace pss::artifact {

// e.g. "application/x-dosexec", "text/plain"; Error if libmagic fails on this file.
Result<std::string> mimetype_of_file(const std::filesystem::path& path);
Result<std::string> mimetype_of_buffer(std::string_view bytes);

} // namespace pss::artifact
