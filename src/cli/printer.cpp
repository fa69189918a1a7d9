#include "cli/printer.hpp"

#include <nlohmann/json.hpp>
#include <unistd.h>

namespace pss::cli {

namespace {

constexpr auto k_progress_interval = std::chrono::milliseconds(100);
constexpr std::size_t k_header_width = 80;

std::string dump(const nlohmann::ordered_json& j, int indent) {
  // File names need not be UTF-8: replace invalid bytes rather than fail.
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string dashed_header(const std::string& name) {
  std::string title = " " + printable(name) + " ";
  if (title.size() + 4 >= k_header_width) {
    return "--" + title + "--";
  }
  std::size_t left = (k_header_width - title.size()) / 2;
  std::size_t right = k_header_width - title.size() - left;
  return std::string(left, '-') + title + std::string(right, '-');
}

} // namespace

std::string printable(std::string_view s) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out.push_back(k_hex[c >> 4]);
      out.push_back(k_hex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

Printer::Printer(Format format, std::size_t total, bool show_engine, bool progress, std::FILE* out,
                 std::FILE* err)
    : m_format(format), m_total(total), m_show_engine(show_engine), m_progress(progress),
      m_out(out), m_err(err) {}

void Printer::add(backend::JobResult result) {
  ++m_done;
  for (const auto& ea : result.analyses) {
    if (ea.analysis.error) {
      ++m_errors;
    }
    if (ea.analysis.result == model::Verdict::malicious) {
      ++m_malicious;
    }
  }
  m_pending.emplace(result.index, std::move(result));
  for (auto it = m_pending.find(m_next); it != m_pending.end(); it = m_pending.find(m_next)) {
    print(it->second);
    m_pending.erase(it);
    ++m_next;
  }
  draw_progress(false);
}

void Printer::print(const backend::JobResult& r) {
  if (m_progress_shown) {
    std::fputs("\r\033[K", m_err); // the result line replaces the progress line
    m_progress_shown = false;
  }
  // Text lines never show the bounty: its JSON is built only for the formats that print it.
  nlohmann::ordered_json bounty;
  if (m_format != Format::text) {
    bounty = model::to_json(r.bounty);
  }
  for (const auto& ea : r.analyses) {
    const auto& a = ea.analysis;
    std::string line;
    switch (m_format) {
    case Format::text: {
      line = printable(r.input) + ": ";
      if (m_show_engine) {
        line += ea.engine + ": ";
      }
      line += model::to_string(a.result);
      if (a.result_name) {
        line += " " + printable(*a.result_name);
      }
      if (a.error) {
        line += " (" + printable(*a.error) + ")";
      } else if (a.comments) {
        line += " (" + printable(*a.comments) + ")";
      }
      line += "\n";
      break;
    }
    case Format::json: {
      nlohmann::ordered_json j;
      j["input"] = r.input;
      j["engine"] = ea.engine;
      j["bounty"] = bounty;
      j["analysis"] = model::to_json(a);
      line = dump(j, -1) + "\n";
      break;
    }
    case Format::verbose:
      line = dashed_header(m_show_engine ? r.input + " [" + ea.engine + "]" : r.input) + "\n";
      line += "Bounty: " + dump(bounty, 4) + "\n";
      line += "Analysis: " + dump(model::to_json(a), 4) + "\n";
      break;
    }
    std::fwrite(line.data(), 1, line.size(), m_out);
  }
  std::fflush(m_out);
}

void Printer::draw_progress(bool force) {
  if (!m_progress) {
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (!force && now - m_last_draw < k_progress_interval && m_done != m_total) {
    return;
  }
  m_last_draw = now;
  double secs = std::chrono::duration<double>(now - m_started).count();
  double rate = secs > 0 ? static_cast<double>(m_done) / secs : 0.0;
  std::fprintf(m_err, "\r\033[K[%zu/%zu] %.1f/s, %zu malicious, %zu errors", m_done, m_total, rate,
               m_malicious, m_errors);
  std::fflush(m_err);
  m_progress_shown = true;
}

void Printer::finish() {
  if (m_progress_shown) {
    std::fputs("\r\033[K", m_err);
    std::fflush(m_err);
    m_progress_shown = false;
  }
}

int Printer::exit_code() const {
  if (m_errors > 0) {
    return 2;
  }
  return m_malicious > 0 ? 1 : 0;
}

} // namespace pss::cli
