// The command line: parses arguments, runs a subcommand, and is the one place that reports
// errors ("pssupervise: error: ...") and chooses the exit status.
#pragma once

namespace pss::cli {

int main(int argc, char** argv);

} // namespace pss::cli
