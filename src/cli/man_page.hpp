// pssupervise(1), made from the same App that prints --help: every command, option, default
// and footer, in roff (man(7) macros). `pssupervise __man` prints it; the build installs it.
#pragma once

#include <CLI/App.hpp>
#include <string>

namespace pss::cli {

std::string man_page(const CLI::App& app, const std::string& version);

} // namespace pss::cli
