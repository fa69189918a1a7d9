// Prints results in input order (text, JSON lines, or the verbose seed layout), draws a
// progress line on a terminal, and tallies the exit status (0 clean, 1 malicious, 2 error).
#pragma once

#include "backend/job.hpp"

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <map>
#include <string>

namespace pss::cli {

enum class Format { text, json, verbose };

class Printer {
public:
  Printer(Format format, std::size_t total, bool show_engine, bool progress,
          std::FILE* out = stdout, std::FILE* err = stderr);

  // Accepts results in any order; prints each as soon as all earlier ones are printed.
  void add(backend::JobResult result);
  // Clears the progress line; prints nothing else.
  void finish();

  int exit_code() const;
  std::size_t malicious() const { return m_malicious; }
  std::size_t errors() const { return m_errors; }

private:
  void print(const backend::JobResult& r);
  void draw_progress(bool force);

  Format m_format;
  std::size_t m_total;
  bool m_show_engine;
  bool m_progress;
  std::FILE* m_out;
  std::FILE* m_err;
  std::map<std::size_t, backend::JobResult> m_pending;
  std::size_t m_next = 0;
  std::size_t m_done = 0;
  std::size_t m_malicious = 0;
  std::size_t m_errors = 0;
  std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point m_last_draw{};
  bool m_progress_shown = false;
};

// A name made safe for one-line output: control bytes as \n, \t, \xNN.
std::string printable(std::string_view s);

} // namespace pss::cli
