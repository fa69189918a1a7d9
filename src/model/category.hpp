// libmagic mimetype → artifact categories (the spec's table). An engine declares the
// categories it scans; an artifact in none of them is skipped (SKIPPED:TYPE-UNSUPPORTED).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pss::model {

// Category names used in manifests:
//   android, archive, elf, flash, font, linux, macho, office, office.abiword, office.etc,
//   office.ms, office.open, osx, pdf, pe, rtf, text, script, winnt
// plus "*" in a manifest for "everything". Sorted, unique.
std::span<const std::string_view> all_categories();

// Categories of a mimetype (parameters such as "; charset=" are ignored, case-insensitive).
// Unknown mimetypes map to no category.
std::vector<std::string_view> categories_of(std::string_view mimetype);

// True if an engine declaring `scanned` (which may contain "*") scans this mimetype.
// "office" also admits its subcategories (office.ms, ...).
bool scans(std::span<const std::string> scanned, std::string_view mimetype);

} // namespace pss::model
