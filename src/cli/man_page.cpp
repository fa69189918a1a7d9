#include "cli/man_page.hpp"

#include <CLI/CLI.hpp>

namespace pss::cli {

namespace {

// Text as roff: backslashes escaped, and no line may start with a control character.
std::string roff(const std::string& text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) {
      out += "\\&";
    }
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
    line_start = c == '\n';
  }
  return out;
}

void options(std::string& out, const CLI::App& app) {
  for (const CLI::Option* o : app.get_options({})) {
    std::string names = o->get_name(true, true);
    if (names.empty()) {
      continue; // hidden
    }
    for (std::size_t at = names.find(','); at != std::string::npos; at = names.find(',', at + 2)) {
      names.replace(at, 1, ", ");
    }
    out += ".TP\n.B " + roff(names);
    if (o->get_expected_max() != 0 && !o->get_type_name().empty()) {
      out += " \" " + roff(o->get_type_name()) + "\"";
    }
    out += "\n" + roff(o->get_description());
    if (!o->get_default_str().empty()) {
      out += " (default: " + roff(o->get_default_str()) + ")";
    }
    if (o->get_required()) {
      out += " (required)";
    }
    out += "\n";
  }
}

} // namespace

std::string man_page(const CLI::App& app, const std::string& version) {
  std::string out;
  out += ".TH PSSUPERVISE 1 \"\" \"pssupervise " + roff(version) + "\" \"User Commands\"\n";
  // The description reads "pssupervise 0.1.0 — what it does": NAME wants what it does.
  std::string what = app.get_description();
  if (auto dash = what.find(" \u2014 "); dash != std::string::npos) {
    what = what.substr(dash + 5);
  }
  out += ".SH NAME\npssupervise \\- " + roff(what) + "\n";
  out += ".SH SYNOPSIS\n.B pssupervise\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR "
         "[\\fIOPTIONS\\fR] [\\fIINPUTS\\fR...]\n";
  out += ".SH GLOBAL OPTIONS\nThese come before the command.\n";
  options(out, app);
  out += ".SH COMMANDS\n";
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App* a) {
         return !a->get_group().empty(); // hidden commands (group "") are internal
       })) {
    out +=
        ".SS \"pssupervise " + roff(sub->get_name()) + "\"\n" + roff(sub->get_description()) + "\n";
    if (!sub->get_footer().empty()) {
      out += ".PP\n" + roff(sub->get_footer()) + "\n";
    }
    options(out, *sub);
  }
  out += ".SH ENVIRONMENT\n"
         ".TP\n.B NAME_PATH, NAME_SDK_HOME, NAME_RUNTIME_DIR, ...\n"
         "Where engine NAME finds its files; \\fBpssupervise engines\\fR lists each engine's "
         "variables and what they resolve to.\n"
         ".TP\n.B PSS_CACHE\nThe result cache (as \\-\\-cache).\n"
         ".TP\n.B PSS_WEBHOOK_SECRET\nThe webhook's secret (as webhook \\-\\-secret).\n"
         ".TP\n.B XDG_STATE_HOME, XDG_CACHE_HOME, XDG_RUNTIME_DIR, XDG_CONFIG_HOME\n"
         "Each engine keeps its state, cache, sockets and settings in "
         "\\fIDIR\\fR/pssupervise/\\fINAME\\fR below them.\n"
         ".TP\n.B NOTIFY_SOCKET, WATCHDOG_USEC\nSet by systemd for Type=notify services: "
         "worker, webhook and icap report READY=1 once their engines answered, RELOADING=1 "
         "around a reload, STOPPING=1, and WATCHDOG=1.\n";
  out += ".SH EXIT STATUS\nAs clamscan: 0 nothing malicious (or a clean stop), 1 something "
         "malicious (analyze), 2 an error: an input that could not be read or fetched, a scan "
         "that failed, a usage or setup error. A signal ends it with 128+signal.\n";
  out += ".SH FILES\n.TP\n.I /usr/share/pssupervise/engines/\nThe engines' manifests.\n"
         ".TP\n.I /etc/default/pssupervise\nThe services' settings (systemd units).\n";
  out += ".SH SEE ALSO\n.BR clamd (8),\n.BR c-icap (8),\n.BR systemctl (1)\n";
  return out;
}

} // namespace pss::cli
