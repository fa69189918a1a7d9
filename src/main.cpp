// A shim: everything lives in the libraries, which the tests link too.
#include "cli/main.hpp"

int main(int argc, char** argv) {
  return pss::cli::main(argc, argv);
}
