#include "process/line_splitter.hpp"

#include <algorithm>

namespace pss::process {

namespace {

constexpr std::string_view k_cut_marker = "...";

std::string_view strip_cr(std::string_view line) {
  while (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  return line;
}

} // namespace

void LineSplitter::append(std::string_view part) {
  std::size_t keep = std::min(part.size(), m_max - std::min(m_max, m_line.size()));
  m_line.append(part.data(), keep);
  part.remove_prefix(keep);
  // Dropped '\r's alone do not cut the line: they may be the "\r" of its "\r\n".
  if (!m_cut && part.find_first_not_of('\r') != std::string_view::npos) {
    m_cut = true;
  }
}

std::string_view LineSplitter::complete(std::string_view end) {
  if (m_line.empty() && !m_cut && end.size() <= m_max) {
    return strip_cr(end); // the common case: the whole line was in one read
  }
  append(end);
  m_line.resize(strip_cr(m_line).size());
  if (m_cut) {
    m_line += k_cut_marker;
  }
  return m_line;
}

std::optional<std::string> LineSplitter::finish() {
  if (m_line.empty() && !m_cut) {
    return std::nullopt;
  }
  std::string last(complete({}));
  reset();
  return last;
}

} // namespace pss::process
