#include "model/category.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <string>
#include <vector>

using namespace pss::model;

namespace {

std::vector<std::string> cats(std::string_view mimetype) {
  std::vector<std::string> out;
  for (const auto c : categories_of(mimetype)) {
    out.emplace_back(c);
  }
  return out;
}

using V = std::vector<std::string>;

bool scans_(std::initializer_list<std::string> scanned, std::string_view mimetype) {
  const std::vector<std::string> v(scanned);
  return scans(v, mimetype);
}

} // namespace

TEST_CASE("model::category") {
  SUBCASE("all categories: sorted, unique, as documented") {
    const auto all = all_categories();
    const std::vector<std::string_view> expected{"android",    "archive",   "elf",
                                                 "flash",      "font",      "linux",
                                                 "macho",      "office",    "office.abiword",
                                                 "office.etc", "office.ms", "office.open",
                                                 "osx",        "pdf",       "pe",
                                                 "rtf",        "script",    "text",
                                                 "winnt"};
    CHECK(std::vector<std::string_view>(all.begin(), all.end()) == expected);
  }
  SUBCASE("every category is reachable from some mimetype") {
    const char* samples[] = {"application/vnd.android.package-archive",
                             "application/zip",
                             "application/x-pie-executable",
                             "application/x-shockwave-flash",
                             "font/ttf",
                             "application/x-mach-binary",
                             "application/x-abiword",
                             "application/x-hwp",
                             "application/msword",
                             "application/vnd.oasis.opendocument.text",
                             "application/pdf",
                             "text/rtf",
                             "text/x-shellscript",
                             "application/x-dosexec"};
    V seen;
    for (const char* m : samples) {
      for (auto& c : cats(m)) {
        seen.push_back(c);
      }
    }
    for (const auto c : all_categories()) {
      const std::string c_{c}; // doctest shows a const char* as a pointer
      CAPTURE(c_);
      CHECK(std::ranges::find(seen, std::string(c)) != seen.end());
    }
  }
  SUBCASE("ELF, including libmagic's current names") {
    for (const char* m :
         {"application/x-pie-executable", "application/x-sharedlib", "application/x-executable",
          "application/x-object", "application/x-coredump"}) {
      const std::string m_{m}; // doctest shows a const char* as a pointer
      CAPTURE(m_);
      CHECK(cats(m) == V{"elf", "linux"});
    }
  }
  SUBCASE("PE and other Windows artifacts") {
    CHECK(cats("application/x-dosexec") == V{"pe", "winnt"});
    CHECK(cats("application/vnd.microsoft.portable-executable") == V{"pe", "winnt"});
    CHECK(cats("application/x-msi") == V{"archive", "winnt"});
    CHECK(cats("application/x-ms-shortcut") == V{"winnt"});
    CHECK(cats("application/vnd.ms-cab-compressed") == V{"archive", "winnt"});
  }
  SUBCASE("Mach-O and macOS") {
    CHECK(cats("application/x-mach-binary") == V{"macho", "osx"});
    CHECK(cats("application/x-mach-o-executable") == V{"macho", "osx"});
    CHECK(cats("application/x-mach-o-dylib") == V{"macho", "osx"});
    CHECK(cats("application/x-apple-diskimage") == V{"archive", "osx"});
  }
  SUBCASE("Android") {
    CHECK(cats("application/vnd.android.package-archive") == V{"android", "archive"});
    CHECK(cats("application/x-android-dex") == V{"android"});
    CHECK(cats("application/vnd.android.dex") == V{"android"});
  }
  SUBCASE("archives") {
    for (const char* m :
         {"application/zip", "application/gzip", "application/x-bzip2", "application/x-xz",
          "application/x-7z-compressed", "application/x-rar", "application/vnd.rar",
          "application/x-tar", "application/zstd", "application/x-lzip", "application/x-lzma",
          "application/x-cpio", "application/x-iso9660-image", "application/java-archive"}) {
      const std::string m_{m}; // doctest shows a const char* as a pointer
      CAPTURE(m_);
      CHECK(cats(m) == V{"archive"});
    }
    CHECK(cats("application/vnd.debian.binary-package") == V{"archive", "linux"});
    CHECK(cats("application/x-rpm") == V{"archive", "linux"});
  }
  SUBCASE("flash, fonts, pdf, rtf") {
    CHECK(cats("application/x-shockwave-flash") == V{"flash"});
    for (const char* m :
         {"font/ttf", "font/otf", "font/woff2", "font/sfnt", "application/vnd.ms-fontobject",
          "application/font-sfnt", "application/x-font-pfm", "application/x-font-ttf"}) {
      const std::string m_{m}; // doctest shows a const char* as a pointer
      CAPTURE(m_);
      CHECK(cats(m) == V{"font"});
    }
    CHECK(cats("application/pdf") == V{"pdf"});
    CHECK(cats("text/rtf") == V{"rtf"});
    CHECK(cats("application/rtf") == V{"rtf"});
  }
  SUBCASE("Microsoft Office") {
    for (const char* m :
         {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
          "application/vnd.ms-office", "application/x-ole-storage", "application/CDFV2",
          "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
          "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
          "application/vnd.openxmlformats-officedocument.presentationml.presentation",
          "application/vnd.ms-excel.sheet.macroEnabled.12"}) {
      const std::string m_{m}; // doctest shows a const char* as a pointer
      CAPTURE(m_);
      CHECK(cats(m) == V{"office", "office.ms"});
    }
  }
  SUBCASE("OpenDocument, AbiWord and other suites") {
    CHECK(cats("application/vnd.oasis.opendocument.text") == V{"office", "office.open"});
    CHECK(cats("application/vnd.oasis.opendocument.spreadsheet") == V{"office", "office.open"});
    CHECK(cats("application/x-abiword") == V{"office", "office.abiword"});
    for (const char* m : {"application/x-kword", "application/vnd.wordperfect",
                          "application/vnd.sun.xml.writer", "application/vnd.lotus-1-2-3",
                          "application/x-hwp", "application/x-iwork-pages-sffpages"}) {
      const std::string m_{m}; // doctest shows a const char* as a pointer
      CAPTURE(m_);
      CHECK(cats(m) == V{"office", "office.etc"});
    }
  }
  SUBCASE("text") {
    for (const char* m : {"text/plain", "text/html", "text/xml", "application/json", "text/csv",
                          "application/csv", "text/x-c", "text/x-diff"}) {
      const std::string m_{m}; // doctest shows a const char* as a pointer
      CAPTURE(m_);
      CHECK(cats(m) == V{"text"});
    }
  }
  SUBCASE("scripts, with the system they target") {
    CHECK(cats("text/x-shellscript") == V{"linux", "script", "text"});
    CHECK(cats("application/x-sh") == V{"linux", "script", "text"});
    CHECK(cats("text/x-msdos-batch") == V{"script", "text", "winnt"});
    CHECK(cats("text/x-powershell") == V{"script", "text", "winnt"});
    CHECK(cats("text/vbscript") == V{"script", "text", "winnt"});
    for (const char* m :
         {"text/x-script.python", "text/x-python", "text/x-perl", "text/x-ruby", "text/x-php",
          "text/javascript", "application/javascript", "text/x-tcl", "text/x-lua"}) {
      const std::string m_{m}; // doctest shows a const char* as a pointer
      CAPTURE(m_);
      CHECK(cats(m) == V{"script", "text"});
    }
  }
  SUBCASE("case and parameters are ignored") {
    CHECK(cats("Application/X-DOSEXEC") == V{"pe", "winnt"});
    CHECK(cats("application/x-pie-executable; charset=binary") == V{"elf", "linux"});
    CHECK(cats(" text/plain ; charset=us-ascii") == V{"text"});
    CHECK(cats("FONT/TTF") == V{"font"});
  }
  SUBCASE("unknown mimetypes have no category") {
    CHECK(cats("application/octet-stream").empty());
    CHECK(cats("image/png").empty());
    CHECK(cats("inode/x-empty").empty());
    CHECK(cats("").empty());
    CHECK(cats("garbage").empty());
    CHECK(cats("fonts/ttf").empty());
    CHECK(cats("application/vnd.oasis.opendocument").empty()); // prefix needs its dot
  }
}

TEST_CASE("model::category scans") {
  SUBCASE("'*' scans everything, even unknown mimetypes") {
    CHECK(scans_({"*"}, "application/octet-stream"));
    CHECK(scans_({"*"}, "image/png"));
    CHECK(scans_({"pe", "*"}, "application/x-pie-executable"));
  }
  SUBCASE("a category admits its mimetypes and no others") {
    CHECK(scans_({"pe"}, "application/x-dosexec"));
    CHECK_FALSE(scans_({"pe"}, "application/x-pie-executable"));
    CHECK(scans_({"elf"}, "application/x-sharedlib"));
    CHECK(scans_({"linux"}, "text/x-shellscript"));
    CHECK(scans_({"pdf", "archive"}, "application/zip"));
    CHECK_FALSE(scans_({"pdf", "archive"}, "application/msword"));
    CHECK_FALSE(scans_({}, "application/pdf"));
    CHECK_FALSE(scans_({"pe"}, "application/octet-stream"));
  }
  SUBCASE("'office' admits its subcategories; a subcategory only itself") {
    CHECK(scans_({"office"}, "application/msword"));
    CHECK(scans_({"office"}, "application/vnd.oasis.opendocument.text"));
    CHECK(scans_({"office"}, "application/x-abiword"));
    CHECK(scans_({"office.ms"}, "application/vnd.ms-excel"));
    CHECK_FALSE(scans_({"office.ms"}, "application/vnd.oasis.opendocument.text"));
    CHECK_FALSE(scans_({"office.open"}, "application/x-hwp"));
    CHECK_FALSE(scans_({"off"}, "application/msword"));
  }
  SUBCASE("the mimetype's case and parameters do not matter") {
    CHECK(scans_({"text"}, "TEXT/PLAIN; charset=utf-8"));
  }
}
