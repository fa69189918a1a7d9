// Cuts a byte stream, read in chunks of any size, into lines, in time linear in its size: each
// byte is searched once (memchr), however the reads fall, a line within one chunk is handed on
// without a copy, and a line without end costs no memory beyond `max_line` bytes. Pure: no
// I/O, tested without processes.
#pragma once

#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace pss::process {

class LineSplitter {
public:
  // A line whose text is longer than `max_line` bytes is cut there and ends in "...".
  explicit LineSplitter(std::size_t max_line) : m_max(max_line) {}

  // Calls on_line(std::string_view) for each line that `data` completes, in order, without
  // its '\n' and trailing '\r's (the view is valid during the call only); keeps the start of
  // an unfinished line for the next call.
  template <typename F>
  void feed(std::string_view data, F&& on_line) {
    while (!data.empty()) {
      const void* nl = std::memchr(data.data(), '\n', data.size());
      if (nl == nullptr) {
        append(data);
        return;
      }
      std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - data.data());
      on_line(complete(data.substr(0, end)));
      reset();
      data.remove_prefix(end + 1);
    }
  }

  // End of the stream: the last line if it had no newline (same form as the others).
  std::optional<std::string> finish();

private:
  void append(std::string_view part); // to the unfinished line, up to m_max bytes
  // The line ending with `end`: a view of `end` itself, or of m_line until reset().
  std::string_view complete(std::string_view end);
  void reset() {
    m_line.clear();
    m_cut = false;
  }
  std::size_t m_max;
  std::string m_line; // the start of the unfinished line, at most m_max bytes
  bool m_cut = false; // more of it came and was dropped (not only '\r's, which may be its end)
};

} // namespace pss::process
