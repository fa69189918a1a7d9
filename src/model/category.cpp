#include "model/category.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <string>

namespace pss::model {

namespace {

// Categories, one bit each, in the (sorted) order of all_categories().
using Mask = std::uint32_t;
enum : Mask {
  android = 1U << 0,        // Android apps and bytecode: APK, DEX
  archive = 1U << 1,        // containers a scanner unpacks: zip, tar, compressed streams, ISO,
                            // installers' cabinets, disk images, packages (deb, rpm, dmg, jar)
  elf = 1U << 2,            // ELF: executables (incl. PIE), shared objects, objects, core dumps
  flash = 1U << 3,          // Adobe Flash (SWF)
  font = 1U << 4,           // fonts: TrueType, OpenType, WOFF, EOT, PostScript, bitmap fonts
  linux_ = 1U << 5,         // artifacts that target Linux: ELF, shell scripts, deb and rpm
  macho = 1U << 6,          // Mach-O executables and libraries (incl. universal binaries)
  office = 1U << 7,         // any office document; always set with one of office.*
  office_abiword = 1U << 8, // AbiWord
  office_etc = 1U << 9,     // other suites: WordPerfect, Lotus, StarOffice/OOo 1.x, iWork,
                            // Hangul, Ichitaro, KWord, Gnumeric, SoftMaker
  office_ms = 1U << 10,     // Microsoft Office: OLE2/CDF (doc, xls, ppt, msg, ...) and OOXML
  office_open = 1U << 11,   // OpenDocument (ODF) and OpenOffice extensions
  osx = 1U << 12,           // artifacts that target macOS: Mach-O, dmg, xar (pkg), StuffIt
  pdf = 1U << 13,           // PDF
  pe = 1U << 14,            // DOS/Windows executables of the MZ family: MZ, NE, PE (incl. .NET)
  rtf = 1U << 15,           // Rich Text Format
  script = 1U << 16,        // source a shell or interpreter runs: sh, batch, PowerShell, VBScript,
                            // Python, Perl, Ruby, PHP, JavaScript, Tcl, Lua, awk
  text = 1U << 17,          // any text: plain, markup, data (JSON, XML, CSV), source, scripts
  winnt = 1U << 18,         // artifacts that target Windows: PE, MSI, CAB, shortcuts, CHM,
                            // batch, PowerShell, VBScript, .reg
};

constexpr std::array<std::string_view, 19> k_names{
    "android",        "archive",    "elf",       "flash",       "font", "linux", "macho", "office",
    "office.abiword", "office.etc", "office.ms", "office.open", "osx",  "pdf",   "pe",    "rtf",
    "script",         "text",       "winnt",
};
static_assert(std::ranges::is_sorted(k_names));
static_assert(std::ranges::adjacent_find(k_names) == k_names.end());

struct Rule {
  std::string_view mimetype; // lowercase; a prefix in k_prefixes
  Mask categories;
};

constexpr Mask k_ms = office | office_ms;
constexpr Mask k_open = office | office_open;
constexpr Mask k_etc = office | office_etc;
constexpr Mask k_pe = pe | winnt;
constexpr Mask k_elf = elf | linux_;
constexpr Mask k_macho = macho | osx;
constexpr Mask k_script = script | text;

// Exact mimetypes. Most names are those libmagic 5.44 (Debian bookworm) reports; a few are
// the IANA or freedesktop.org names other detectors (or a bounty's `mimetype`) use.
// Not categorized on purpose (an engine takes them only with "*"): application/octet-stream,
// inode/x-empty and application/x-empty, images, audio, video, Java class files, databases.
constexpr auto k_exact = std::to_array<Rule>({
    // ELF. Current libmagic says x-pie-executable or x-sharedlib for most executables.
    {"application/x-executable", k_elf},
    {"application/x-pie-executable", k_elf},
    {"application/x-sharedlib", k_elf},
    {"application/x-object", k_elf},
    {"application/x-coredump", k_elf},
    {"application/x-elf", k_elf},
    // DOS and Windows executables (libmagic: x-dosexec for MZ and most PE files).
    {"application/x-dosexec", k_pe},
    {"application/vnd.microsoft.portable-executable", k_pe},
    {"application/x-ms-ne-executable", k_pe},
    {"application/x-msdownload", k_pe},
    {"application/x-ms-dos-executable", k_pe},
    {"application/x-msdos-program", k_pe},
    // Other Windows artifacts.
    {"application/x-msi", archive | winnt}, // an OLE2 container of cabinets
    {"application/vnd.ms-cab-compressed", archive | winnt},
    {"application/x-ms-wim", archive | winnt},
    {"application/x-installshield", archive | winnt},
    {"application/x-ms-compress-szdd", archive | winnt},
    {"application/x-ms-compress-kwaj", archive | winnt},
    {"application/x-ms-compress-sz", archive | winnt},
    {"application/x-ms-shortcut", winnt},
    {"application/x-mswinurl", winnt},
    {"application/vnd.ms-htmlhelp", winnt},
    {"text/x-ms-regedit", text | winnt},
    {"text/x-ms-scf", text | winnt},
    // Mach-O (more under the x-mach-o- prefix) and other macOS artifacts.
    {"application/x-mach-binary", k_macho},
    {"application/x-apple-diskimage", archive | osx},
    {"application/x-xar", archive | osx},
    {"application/x-stuffit", archive | osx},
    // Android.
    {"application/vnd.android.package-archive", android | archive},
    {"application/x-android-dex", android},
    {"application/vnd.android.dex", android},
    // Archives, compressed streams, packages, disk images.
    {"application/zip", archive},
    {"application/x-zip", archive},
    {"application/x-zip-compressed", archive},
    {"application/gzip", archive},
    {"application/x-gzip", archive},
    {"application/x-bzip", archive},
    {"application/x-bzip2", archive},
    {"application/x-xz", archive},
    {"application/x-7z-compressed", archive},
    {"application/x-rar", archive},
    {"application/vnd.rar", archive},
    {"application/x-rar-compressed", archive},
    {"application/x-tar", archive},
    {"application/x-gtar", archive},
    {"application/x-ustar", archive},
    {"application/zstd", archive},
    {"application/x-zstd", archive},
    {"application/x-lzip", archive},
    {"application/x-lzma", archive},
    {"application/x-lz4", archive},
    {"application/x-lrzip", archive},
    {"application/x-compress", archive},
    {"application/zlib", archive},
    {"application/x-cpio", archive},
    {"application/x-archive", archive}, // ar(1)
    {"application/x-iso9660-image", archive},
    {"application/x-arj", archive},
    {"application/x-lha", archive},
    {"application/x-lzh-compressed", archive},
    {"application/x-ace-compressed", archive},
    {"application/x-arc", archive},
    {"application/x-zoo", archive},
    {"application/java-archive", archive},
    {"application/x-chrome-extension", archive},
    {"application/epub+zip", archive},
    {"application/vnd.debian.binary-package", archive | linux_},
    {"application/x-debian-package", archive | linux_},
    {"application/x-rpm", archive | linux_},
    // Flash.
    {"application/x-shockwave-flash", flash},
    {"application/vnd.adobe.flash.movie", flash},
    // Fonts (more under the font/ and application/x-font- prefixes).
    {"application/vnd.ms-fontobject", font},
    {"application/vnd.ms-opentype", font},
    {"application/font-sfnt", font},
    {"application/font-woff", font},
    {"application/x-dfont", font},
    // PDF and RTF.
    {"application/pdf", pdf},
    {"application/x-pdf", pdf},
    {"text/rtf", rtf},
    {"application/rtf", rtf},
    // Microsoft Office (OOXML under prefixes). libmagic names an OLE2 compound file by the
    // application in its summary; application/cdfv2 (summary unreadable), x-ole-storage
    // (no known application) and encrypted (password-protected OOXML in a CDF) are most
    // often Office documents too, and a macro scanner is what they need.
    {"application/msword", k_ms},
    {"application/vnd.ms-excel", k_ms},
    {"application/vnd.ms-powerpoint", k_ms},
    {"application/vnd.ms-office", k_ms},
    {"application/vnd.ms-outlook", k_ms},
    {"application/vnd.ms-publisher", k_ms},
    {"application/vnd.ms-project", k_ms},
    {"application/vnd.visio", k_ms},
    {"application/vnd.ms-visio.drawing.main+xml", k_ms},
    {"application/msaccess", k_ms},
    {"application/x-msaccess", k_ms},
    {"application/msonenote", k_ms},
    {"application/vnd.ms-works", k_ms},
    {"application/vnd-ms-works", k_ms}, // sic, libmagic
    {"application/x-mswrite", k_ms},
    {"application/cdfv2", k_ms},
    {"application/x-ole-storage", k_ms},
    {"application/encrypted", k_ms},
    // OpenDocument (more under the prefix).
    {"application/vnd.openofficeorg.extension", k_open},
    // AbiWord.
    {"application/x-abiword", office | office_abiword},
    // Other office suites (more under prefixes).
    {"application/vnd.wordperfect", k_etc},
    {"application/wordperfect", k_etc},
    {"application/x-kword", k_etc},
    {"application/x-hwp", k_etc},
    {"application/x-gnumeric", k_etc},
    {"application/vnd.softmaker.planmaker", k_etc},
    {"application/vnd.softmaker.presentations", k_etc},
    {"application/x-ichitaro4", k_etc},
    {"application/x-ichitaro5", k_etc},
    {"application/x-ichitaro6", k_etc},
    {"application/x-starwriter", k_etc},
    {"application/x-starwriter-global", k_etc},
    {"application/x-starcalc", k_etc},
    {"application/x-starimpress", k_etc},
    {"application/x-starchart", k_etc},
    {"application/x-starmath", k_etc},
    {"application/x-appleworks3", k_etc},
    {"application/x-pocket-word", k_etc},
    {"application/vnd.apple.pages", k_etc},
    {"application/vnd.apple.numbers", k_etc},
    {"application/vnd.apple.keynote", k_etc},
    // Text that is not text/* (all of text/* is text, by prefix).
    {"application/json", text},
    {"application/xml", text},
    {"application/xhtml+xml", text},
    {"application/csv", text}, // libmagic's name for CSV
    {"application/x-wine-extension-ini", text},
    {"application/x-subrip", text},
    // Scripts: Unix shells.
    {"text/x-shellscript", k_script | linux_},
    {"text/x-sh", k_script | linux_},
    {"application/x-sh", k_script | linux_},
    {"application/x-shellscript", k_script | linux_},
    {"application/x-csh", k_script | linux_},
    {"text/x-execline", k_script | linux_},
    // Scripts: Windows.
    {"text/x-msdos-batch", k_script | winnt},
    {"application/x-bat", k_script | winnt},
    {"text/x-powershell", k_script | winnt},
    {"application/x-powershell", k_script | winnt},
    {"text/vbscript", k_script | winnt},
    {"text/x-vbscript", k_script | winnt},
    // Scripts: portable interpreters (libmagic: text/x-script.python for Python).
    {"text/x-script.python", k_script},
    {"text/x-python", k_script},
    {"text/x-python3", k_script},
    {"application/x-python", k_script},
    {"text/x-perl", k_script},
    {"application/x-perl", k_script},
    {"text/x-ruby", k_script},
    {"application/x-ruby", k_script},
    {"text/x-php", k_script},
    {"application/x-php", k_script},
    {"application/x-httpd-php", k_script},
    {"text/javascript", k_script},
    {"application/javascript", k_script},
    {"application/x-javascript", k_script},
    {"text/ecmascript", k_script},
    {"application/ecmascript", k_script},
    {"text/x-tcl", k_script},
    {"application/x-tcl", k_script},
    {"text/x-lua", k_script},
    {"text/x-awk", k_script},
    {"text/x-gawk", k_script},
    {"text/x-nawk", k_script},
});

// Prefixes, for families whose members are too many to list; the longest match wins, and
// only when no exact entry matched.
constexpr auto k_prefixes = std::to_array<Rule>({
    {"application/x-mach-o-", k_macho}, // freedesktop.org: x-mach-o-executable, ...
    {"font/", font},
    {"application/x-font-", font},
    {"application/vnd.openxmlformats-officedocument.", k_ms},
    {"application/vnd.ms-word.", k_ms}, // macro-enabled OOXML: vnd.ms-word.document.macroEnabled.12
    {"application/vnd.ms-excel.", k_ms},
    {"application/vnd.ms-powerpoint.", k_ms},
    {"application/vnd.oasis.opendocument.", k_open},
    {"application/vnd.sun.xml.", k_etc},      // OpenOffice.org 1.x
    {"application/vnd.stardivision.", k_etc}, // StarOffice
    {"application/vnd.lotus-", k_etc},        // 1-2-3, Word Pro, Freelance, ...
    {"application/x-iwork-", k_etc},          // x-iwork-pages-sffpages, ...
    {"text/", text},
});

constexpr bool is_lowercase(std::string_view s) {
  return std::ranges::none_of(s, [](char c) { return c >= 'A' && c <= 'Z'; });
}
constexpr bool table_ok(std::span<const Rule> rules) {
  return std::ranges::all_of(rules, [](const Rule& r) {
    return is_lowercase(r.mimetype) && r.categories != 0 && r.categories < (1U << k_names.size());
  });
}
static_assert(table_ok(k_exact) && table_ok(k_prefixes));

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) { return lower(x) == lower(y); });
}

// "Text/Plain; charset=us-ascii" → "text/plain".
std::string normalize(std::string_view mimetype) {
  mimetype = mimetype.substr(0, mimetype.find(';'));
  const auto first = mimetype.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return {};
  }
  mimetype = mimetype.substr(first, mimetype.find_last_not_of(" \t") + 1 - first);
  std::string out(mimetype);
  std::ranges::transform(out, out.begin(), lower);
  return out;
}

Mask lookup(std::string_view mimetype) {
  const std::string m = normalize(mimetype);
  if (const auto* it = std::ranges::find(k_exact, std::string_view(m), &Rule::mimetype);
      it != k_exact.end()) {
    return it->categories;
  }
  const Rule* best = nullptr;
  for (const Rule& r : k_prefixes) {
    if (m.starts_with(r.mimetype) &&
        (best == nullptr || r.mimetype.size() > best->mimetype.size())) {
      best = &r;
    }
  }
  return best != nullptr ? best->categories : 0;
}

} // namespace

std::span<const std::string_view> all_categories() {
  return k_names;
}

std::vector<std::string_view> categories_of(std::string_view mimetype) {
  const Mask mask = lookup(mimetype);
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < k_names.size(); ++i) {
    if ((mask & (1U << i)) != 0) {
      out.push_back(k_names[i]);
    }
  }
  return out;
}

bool scans(std::span<const std::string> scanned, std::string_view mimetype) {
  if (std::ranges::any_of(scanned, [](const std::string& s) { return s == "*"; })) {
    return true;
  }
  const auto cats = categories_of(mimetype);
  return std::ranges::any_of(scanned, [&](const std::string& s) {
    return std::ranges::any_of(cats, [&](std::string_view c) {
      // "office" admits "office.ms": a declared category admits its subcategories.
      return iequals(c, s) ||
             (c.size() > s.size() && c[s.size()] == '.' && iequals(c.substr(0, s.size()), s));
    });
  });
}

} // namespace pss::model
