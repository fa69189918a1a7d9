#include "engine/manifest.hpp"

#include "engine/field_reader.hpp"
#include "pss_config.h"
#include "util/posix.hpp"
#include "util/size.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>

namespace pss::engine {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// {"help", "argv", "timeout", "encoding"}: a command, the setup or the updater.
Result<CommandSpec> command(const FieldReader& r, const json& c, const std::string& field) {
  if (!c.is_object()) {
    return r.bad(field, "must be {\"argv\": [...], \"timeout\": seconds}");
  }
  CommandSpec spec;
  // Field names in errors carry the command's path ("setup.encoding").
  auto text = [&](const char* key, std::string fallback) -> Result<std::string> {
    auto v = c.find(key);
    if (v == c.end() || v->is_null()) {
      return fallback;
    }
    if (!v->is_string()) {
      return r.bad(field + "." + key, "must be a string");
    }
    return v->get<std::string>();
  };
  spec.help = PSS_TRY(text("help", ""));
  auto argv = c.find("argv");
  if (argv == c.end() || !argv->is_array() || argv->empty() ||
      !std::all_of(argv->begin(), argv->end(), [](const json& a) { return a.is_string(); })) {
    return r.bad(field + ".argv", "must be a non-empty array of strings");
  }
  spec.argv = argv->get<std::vector<std::string>>();
  auto timeout = c.find("timeout");
  if (timeout != c.end() && !timeout->is_null()) {
    if (!timeout->is_number() || timeout->get<double>() <= 0 || timeout->get<double>() > 1e9) {
      return r.bad(field + ".timeout", "must be a positive number of seconds (at most 1e9)");
    }
    spec.timeout = std::chrono::milliseconds(static_cast<long long>(timeout->get<double>() * 1000));
  }
  spec.encoding = PSS_TRY(text("encoding", "utf-8"));
  return spec;
}

bool valid_env_name(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// "limits": {"cpu_seconds": N, "address_space": "2G" | bytes, "open_files": N, "output": "16M"}
Result<Limits> parse_limits(const FieldReader& r, const json& j) {
  Limits out;
  if (!j.is_object()) {
    return r.bad("limits", "must be an object {cpu_seconds, address_space, open_files, output}");
  }
  // A size: bytes as an integer, or a string with a unit ("2G").
  auto size = [&r](const json& v, const std::string& field,
                   std::uint64_t min) -> Result<std::uint64_t> {
    std::uint64_t n = 0;
    if (v.is_number_unsigned()) {
      n = v.get<std::uint64_t>();
    } else if (v.is_string()) {
      auto parsed = parse_size(v.get<std::string>());
      if (!parsed) {
        return r.bad(field, "must be bytes or a size such as \"512M\" or \"2G\" (" +
                                parsed.error().message + ")");
      }
      n = *parsed;
    } else {
      return r.bad(field, "must be bytes or a size such as \"512M\" or \"2G\"");
    }
    if (n < min) {
      return r.bad(field, "must be at least " + format_size(min));
    }
    return n;
  };
  auto integer = [&r](const json& v, const std::string& field, std::uint64_t min,
                      std::uint64_t max) -> Result<std::uint64_t> {
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() < min || v.get<std::uint64_t>() > max) {
      return r.bad(field,
                   "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    }
    return v.get<std::uint64_t>();
  };
  for (const auto& [key, v] : j.items()) {
    std::string field = "limits." + key;
    if (v.is_null()) {
      continue;
    }
    if (key == "cpu_seconds") {
      out.rlimits.cpu_seconds = PSS_TRY(integer(v, field, 1, 1'000'000'000));
    } else if (key == "open_files") {
      // The kernel's ceiling (fs.nr_open) is 1048576 by default; 16 leaves room for stdio.
      out.rlimits.open_files = PSS_TRY(integer(v, field, 16, 1 << 20));
    } else if (key == "address_space") {
      // Below 16 MiB not even the dynamic loader and libc fit.
      out.rlimits.address_space = PSS_TRY(size(v, field, 16ULL << 20));
    } else if (key == "output") {
      out.output = static_cast<std::size_t>(PSS_TRY(size(v, field, 1)));
    } else {
      return r.bad(field, "is not a limit (cpu_seconds, address_space, open_files, output)");
    }
  }
  return out;
}

} // namespace

Result<Manifest> parse_manifest(const json& j, const fs::path& engine_dir) {
  FieldReader r{(engine_dir / "engine.json").native(), ""};
  if (!j.is_object()) {
    return make_error(r.where + ": must be a JSON object");
  }
  Manifest m;
  m.dir = engine_dir;
  m.raw = j;
  m.name = PSS_TRY(r.string(j, "name", false, engine_dir.filename().string()));
  m.product = PSS_TRY(r.string(j, "product", true));
  m.vendor = PSS_TRY(r.string(j, "vendor", true));
  m.categories = PSS_TRY(r.strings(j, "categories", true));
  m.runtime = PSS_TRY(r.string(j, "runtime", false, "native"));
  if (m.runtime != "native" && m.runtime != "wine") {
    return r.bad("runtime", "must be \"native\" or \"wine\", not \"" + m.runtime + "\"");
  }
  m.driver = PSS_TRY(r.string(j, "driver", true));
  m.scan_timeout = PSS_TRY(r.seconds(j, "scan_timeout", m.scan_timeout));
  if (auto it = j.find("env"); it != j.end()) {
    if (!it->is_object()) {
      return r.bad("env", "must be an object of strings");
    }
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) {
        return r.bad("env." + k, "must be a string");
      }
      m.env[k] = v.get<std::string>();
    }
  }
  m.pass_env = PSS_TRY(r.strings(j, "pass_env", false));
  for (const auto& name : m.pass_env) {
    if (!valid_env_name(name)) {
      return r.bad("pass_env",
                   "must name environment variables (letters, digits, '_'), not " + quote(name));
    }
  }
  if (auto it = j.find("limits"); it != j.end() && !it->is_null()) {
    m.limits = PSS_TRY(parse_limits(r, *it));
  }
  if (auto it = j.find("confidence"); it != j.end()) {
    if (!it->is_object()) {
      return r.bad("confidence", "must be an object {\"malicious\": x, \"benign\": y}");
    }
    for (auto [key, dest] : {std::pair{"malicious", &m.malicious_confidence},
                             std::pair{"benign", &m.benign_confidence}}) {
      if (auto c = it->find(key); c != it->end()) {
        if (!c->is_number() || c->get<double>() < 0 || c->get<double>() > 1) {
          return r.bad(std::string("confidence.") + key, "must be a number in [0, 1]");
        }
        *dest = c->get<double>();
      }
    }
  }
  if (auto it = j.find("daemon"); it != j.end()) {
    if (!it->is_object()) {
      return r.bad("daemon", "must be an object");
    }
    const json& d = *it;
    DaemonSpec spec;
    spec.argv = PSS_TRY(r.strings(d, "argv", true));
    if (spec.argv.empty()) {
      return r.bad("daemon.argv", "must not be empty");
    }
    spec.dirs = PSS_TRY(r.strings(d, "dirs", false));
    spec.socket = PSS_TRY(r.string(d, "socket", false));
    spec.ready_timeout = PSS_TRY(r.seconds(d, "ready_timeout", spec.ready_timeout));
    spec.stop_timeout = PSS_TRY(r.seconds(d, "stop_timeout", spec.stop_timeout));
    if (auto c = d.find("config"); c != d.end()) {
      if (!c->is_object()) {
        return r.bad("daemon.config", "must map template files to target paths");
      }
      for (const auto& [tmpl, target] : c->items()) {
        if (!target.is_string()) {
          return r.bad("daemon.config." + tmpl, "must be a target path");
        }
        spec.config.emplace_back(tmpl, target.get<std::string>());
      }
    }
    if (auto e = d.find("env"); e != d.end()) {
      if (!e->is_object()) {
        return r.bad("daemon.env", "must be an object of strings");
      }
      for (const auto& [k, v] : e->items()) {
        if (!v.is_string()) {
          return r.bad("daemon.env." + k, "must be a string");
        }
        spec.env[k] = v.get<std::string>();
      }
    }
    if (auto rd = d.find("ready"); rd != d.end()) {
      if (!rd->is_object()) {
        return r.bad("daemon.ready", "must be an object {line, probe, timeout}");
      }
      spec.ready_line = PSS_TRY(r.string(*rd, "line", false));
      spec.ready_connect = PSS_TRY(r.string(*rd, "connect", false));
      if (!spec.ready_connect.empty() && spec.ready_connect.rfind("tcp:", 0) != 0 &&
          spec.ready_connect.rfind("unix:", 0) != 0) {
        return r.bad("daemon.ready.connect", "must be \"tcp:HOST:PORT\" or \"unix:/PATH\"");
      }
      if (auto p = rd->find("probe"); p != rd->end()) {
        if (!p->is_boolean()) {
          return r.bad("daemon.ready.probe", "must be true or false");
        }
        spec.ready_probe = p->get<bool>();
      }
      spec.ready_timeout = PSS_TRY(r.seconds(*rd, "timeout", spec.ready_timeout));
    }
    if (auto h = d.find("health"); h != d.end()) {
      if (h->is_boolean() && !h->get<bool>()) {
        spec.health_interval = std::chrono::milliseconds(0);
      } else if (!h->is_object()) {
        return r.bad("daemon.health", "must be false or an object {interval, timeout, failures}");
      } else {
        spec.health_interval = PSS_TRY(r.seconds(*h, "interval", spec.health_interval));
        spec.health_timeout = PSS_TRY(r.seconds(*h, "timeout", spec.health_timeout));
        spec.health_failures = PSS_TRY(r.count(*h, "failures", spec.health_failures, 1));
      }
    }
    if (auto rs = d.find("restart"); rs != d.end()) {
      if (!rs->is_object()) {
        return r.bad("daemon.restart",
                     "must be an object {min_delay, max_delay, stable_after, max_deaths, window}");
      }
      auto& p = spec.restart;
      p.min_delay = PSS_TRY(r.seconds(*rs, "min_delay", p.min_delay));
      p.max_delay = PSS_TRY(r.seconds(*rs, "max_delay", p.max_delay));
      p.stable_after = PSS_TRY(r.seconds(*rs, "stable_after", p.stable_after));
      p.max_deaths = PSS_TRY(r.count(*rs, "max_deaths", p.max_deaths, 1));
      p.window = PSS_TRY(r.seconds(*rs, "window", p.window));
      if (p.max_delay < p.min_delay) {
        return r.bad("daemon.restart.max_delay", "must not be below min_delay");
      }
    }
    spec.concurrency = PSS_TRY(r.count(d, "concurrency", spec.concurrency, 0));
    if (auto n = d.find("instances"); n != d.end() && !n->is_null()) {
      // A number now; a ${VAR} is checked by the driver once expanded.
      if (n->is_number_integer() && n->get<long long>() >= 1 && n->get<long long>() <= 256) {
        spec.instances = std::to_string(n->get<long long>());
      } else if (n->is_string() && !n->get<std::string>().empty()) {
        spec.instances = n->get<std::string>();
        if (auto checked = parse_instances(spec.instances, 1);
            !checked && spec.instances.find("${") == std::string::npos) {
          return r.bad("daemon.instances", checked.error().message);
        }
      } else {
        return r.bad("daemon.instances",
                     "must be a number from 1 to 256, a ${VAR} holding one, or \"cores\"");
      }
    }
    if (auto rl = d.find("reload"); rl != d.end() && !rl->is_null()) {
      if (!rl->is_object()) {
        return r.bad("daemon.reload", "must be an object {command, log, done, failed, timeout}");
      }
      DaemonSpec::Reload reload;
      const FieldReader rr = r.nested("daemon.reload");
      reload.command = PSS_TRY(rr.string(*rl, "command", true));
      reload.log = PSS_TRY(rr.string(*rl, "log", true));
      reload.done = PSS_TRY(rr.string(*rl, "done", true));
      reload.failed = PSS_TRY(rr.string(*rl, "failed", true));
      reload.timeout = PSS_TRY(rr.seconds(*rl, "timeout", reload.timeout));
      for (const auto* re : {&reload.done, &reload.failed}) {
        try {
          std::regex check(*re, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
          return r.bad("daemon.reload", "has a bad regex " + *re + ": " + e.what());
        }
      }
      spec.reload = std::move(reload);
    }
    m.daemon = std::move(spec);
  }
  if (auto it = j.find("callbacks"); it != j.end()) {
    if (!it->is_object()) {
      return r.bad("callbacks", "must be an object {on_success, on_error, timeout}");
    }
    m.on_success = PSS_TRY(r.strings(*it, "on_success", false));
    m.on_error = PSS_TRY(r.strings(*it, "on_error", false));
    m.callback_timeout = PSS_TRY(r.seconds(*it, "timeout", m.callback_timeout));
  }
  if (auto it = j.find("commands"); it != j.end()) {
    if (!it->is_object()) {
      return r.bad("commands", "must map command names to {help, argv}");
    }
    for (const auto& [name, c] : it->items()) {
      std::string field = "commands." + name;
      if (name == "info" || name == "scan_file") {
        return r.bad(field, "is a built-in command; choose another name");
      }
      if (!c.is_object()) {
        return r.bad(field, "must be {\"help\": ..., \"argv\": [...]}");
      }
      auto spec = PSS_TRY(command(r, c, field));
      m.commands.emplace(name, std::move(spec));
    }
  }
  for (auto [key, dest] : {std::pair{"setup", &m.setup}, std::pair{"update", &m.update}}) {
    if (auto it = j.find(key); it != j.end() && !it->is_null()) {
      *dest = PSS_TRY(command(r, *it, key));
    }
  }
  if (auto it = j.find("definitions"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      return r.bad("definitions", "must be an object {\"files\": [...]}");
    }
    m.definitions = PSS_TRY(r.nested("definitions").strings(*it, "files", true));
    if (m.definitions.empty()) {
      return r.bad("definitions.files", "must name at least one file or folder");
    }
  }
  if (auto it = j.find("external"); it != j.end()) {
    if (!it->is_object()) {
      return r.bad("external", "must be an object");
    }
    ExternalSpec e;
    e.socket_env = PSS_TRY(r.string(*it, "socket_env", false));
    e.host_env = PSS_TRY(r.string(*it, "host_env", false));
    e.port_env = PSS_TRY(r.string(*it, "port_env", false));
    e.default_port = PSS_TRY(r.string(*it, "default_port", false));
    m.external = std::move(e);
  }
  return m;
}

Result<int> parse_instances(const std::string& text, int cores) {
  if (text == "cores") {
    return std::max(1, cores);
  }
  int n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || p != text.data() + text.size() || n < 1 || n > 256) {
    return make_error("must be a number from 1 to 256 or \"cores\", not " + quote(text));
  }
  return n;
}

Result<Manifest> load_manifest(const fs::path& engine_dir) {
  fs::path file = engine_dir / "engine.json";
  std::ifstream in(file);
  if (!in) {
    return errno_error("cannot read engine manifest", file);
  }
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) {
    return make_error(file.native() + ": not valid JSON");
  }
  return parse_manifest(j, engine_dir);
}

std::vector<fs::path> engine_search_path(const fs::path& explicit_dir) {
  if (!explicit_dir.empty()) {
    return {explicit_dir};
  }
  std::vector<fs::path> out;
  if (const char* v = std::getenv("PSS_ENGINES_DIR"); v != nullptr && *v != '\0') {
    out.emplace_back(v);
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  // A binary run from its build tree takes the engines of its source tree, even with a
  // package installed; an installed one, those installed with it.
  if (!ec && exe.parent_path() == fs::path(PSS_BUILD_DIR)) {
    out.emplace_back(PSS_SOURCE_ENGINES_DIR);
  }
  if (!ec) {
    out.push_back(exe.parent_path().parent_path() / "share" / "pssupervise" / "engines");
  }
  out.emplace_back(PSS_INSTALL_ENGINES_DIR);
  out.emplace_back(PSS_SOURCE_ENGINES_DIR);
  return out;
}

Result<fs::path> find_engine(const std::string& name, const std::vector<fs::path>& search) {
  if (name.empty() || name.find('/') != std::string::npos || name.starts_with(".")) {
    return make_error("invalid engine name " + quote(name));
  }
  for (const auto& dir : search) {
    std::error_code ec;
    if (fs::is_regular_file(dir / name / "engine.json", ec)) {
      return dir / name;
    }
  }
  std::string msg = "unknown engine " + quote(name);
  auto known = list_engines(search);
  if (!known.empty()) {
    msg += " (known: ";
    for (std::size_t i = 0; i < known.size(); ++i) {
      msg += (i ? ", " : "") + known[i];
    }
    msg += ")";
  }
  msg += "; searched:";
  for (const auto& dir : search) {
    msg += " " + dir.native();
  }
  return make_error(msg);
}

std::vector<std::string> list_engines(const std::vector<fs::path>& search) {
  std::set<std::string> names;
  for (const auto& dir : search) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (fs::is_regular_file(it->path() / "engine.json", ec)) {
        names.insert(it->path().filename().string());
      }
    }
  }
  return {names.begin(), names.end()};
}

} // namespace pss::engine
