// Where the test samples are (tests/samples in the source tree).
#pragma once

#include <filesystem>

namespace pss::test {

std::filesystem::path samples_dir();

} // namespace pss::test
