#include "unit/samples.hpp"

namespace pss::test {

// The one unit-test object that holds the source tree's absolute path: were it a define on
// every test file, each of them would differ between clones and miss ccache.
std::filesystem::path samples_dir() {
  return PSS_TEST_SAMPLES;
}

} // namespace pss::test
