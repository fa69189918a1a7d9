// SHA-256 of byte streams and files (OpenSSL EVP), as lowercase hex.
#pragma once

#include "util/error.hpp"

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace pss {

class Sha256 {
public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(const void* data, std::size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // Lowercase hex digest; the hasher cannot be updated afterwards.
  std::string hex_digest();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

std::string sha256_hex(std::string_view data);
// Reads the whole file; an Error names the file and the reason.
Result<std::string> sha256_file(const std::filesystem::path& path);

} // namespace pss
