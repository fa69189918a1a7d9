// Unix → NT path mapping without spawning winepath: every prefix maps Z: to "/"
// (dlls/ntdll/unix/server.c creates dosdevices/z: -> /), so /x/y is Z:\x\y.
#pragma once

#include <filesystem>
#include <string>

namespace pss::wine {

// An absolute Unix path as Wine sees it through drive Z:. Relative paths are made absolute
// against the current directory first. Bytes are passed through (Wine decodes them as UTF-8).
std::string nt_path(const std::filesystem::path& unix_path);

} // namespace pss::wine
