#include "artifact/uri.hpp"

#include <doctest/doctest.h>
#include <string>

using pss::artifact::InputKind;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("artifact::uri") {
  using namespace pss::artifact;

  SUBCASE("classify_input") {
    CHECK(classify_input("-") == InputKind::stdin_);
    CHECK(classify_input("file:///tmp/x") == InputKind::file_uri);
    CHECK(classify_input("FILE:///tmp/x") == InputKind::file_uri);
    CHECK(classify_input("data:,hello") == InputKind::data_uri);
    CHECK(classify_input("Data:,hello") == InputKind::data_uri);
    CHECK(classify_input("http://127.0.0.1/x") == InputKind::http_uri);
    CHECK(classify_input("HTTPS://example.invalid/x") == InputKind::http_uri);
    CHECK(classify_input("samples/eicar.com") == InputKind::path);
    CHECK(classify_input("./x:y") == InputKind::path);
    CHECK(classify_input("name with spaces") == InputKind::path);
    CHECK(classify_input("--") == InputKind::path);
    CHECK(classify_input("") == InputKind::path);
    CHECK(classify_input("httpx://h/") == InputKind::path);
  }

  SUBCASE("percent_decode") {
    CHECK(percent_decode("a%20b").value() == "a b");
    CHECK(percent_decode("%41%62%7e%7E").value() == "Ab~~");
    CHECK(percent_decode("plain+text").value() == "plain+text"); // '+' is not a space here
    CHECK(percent_decode("").value().empty());
    CHECK(percent_decode("%00").value() == std::string(1, '\0'));

    auto truncated = percent_decode("abc%4");
    REQUIRE(!truncated);
    CHECK(truncated.error().message == "truncated percent-escape at offset 3");
    CHECK(!percent_decode("%"));

    auto bad = percent_decode("x%zz");
    REQUIRE(!bad);
    CHECK(bad.error().message == "invalid percent-escape '%zz' at offset 1");
  }

  SUBCASE("file_uri_path") {
    CHECK(file_uri_path("file:///tmp/a").value() == "/tmp/a");
    CHECK(file_uri_path("file://localhost/tmp/a").value() == "/tmp/a");
    CHECK(file_uri_path("FILE://LocalHost/tmp/a").value() == "/tmp/a");
    CHECK(file_uri_path("file:///tmp/with%20space").value() == "/tmp/with space");
    CHECK(file_uri_path("file:/tmp/a").value() == "/tmp/a");

    auto host = file_uri_path("file://example.com/tmp/a");
    REQUIRE(!host);
    CHECK(contains(host.error().message, "'example.com'"));
    CHECK(contains(host.error().message, "not supported"));

    auto relative = file_uri_path("file:tmp/a");
    REQUIRE(!relative);
    CHECK(contains(relative.error().message, "relative"));

    auto nul = file_uri_path("file:///tmp/a%00b");
    REQUIRE(!nul);
    CHECK(contains(nul.error().message, "NUL"));

    auto bad_escape = file_uri_path("file:///tmp/%zz");
    REQUIRE(!bad_escape);
    CHECK(contains(bad_escape.error().message, "invalid percent-escape"));

    CHECK(!file_uri_path("file://localhost"));
    CHECK(!file_uri_path("file:///tmp/a#frag"));
    CHECK(!file_uri_path("http:///tmp/a"));
  }

  SUBCASE("base64_decode") {
    CHECK(base64_decode("aGVsbG8=").value() == "hello");
    CHECK(base64_decode("aGVsbG8").value() == "hello"); // no padding
    CHECK(base64_decode("aGVs\nbG8g\r\nd29y bGQ=").value() == "hello world");
    CHECK(base64_decode("aGk=").value() == "hi");
    CHECK(base64_decode("aGk").value() == "hi");
    CHECK(base64_decode("").value().empty());
    CHECK(base64_decode("+/+/").value() == "\xfb\xff\xbf");
    CHECK(base64_decode("-_-_").value() == "\xfb\xff\xbf"); // URL-safe alphabet

    auto bad = base64_decode("aGVsbG8!");
    REQUIRE(!bad);
    CHECK(bad.error().message == "invalid base64 at offset 7: '!'");

    auto after_pad = base64_decode("aGk=aGk=");
    REQUIRE(!after_pad);
    CHECK(contains(after_pad.error().message, "invalid base64 at offset 4"));

    auto truncated = base64_decode("aGVsb");
    REQUIRE(!truncated);
    CHECK(contains(truncated.error().message, "truncated"));

    auto too_much_padding = base64_decode("aGk==");
    REQUIRE(!too_much_padding);
    CHECK(contains(too_much_padding.error().message, "padding"));
    CHECK(!base64_decode("===="));
  }

  SUBCASE("parse_data_uri") {
    auto plain = parse_data_uri("data:,Hello%2C%20World!");
    REQUIRE(plain.has_value());
    CHECK(plain->mediatype.empty());
    CHECK(plain->bytes == "Hello, World!");

    auto b64 = parse_data_uri("data:text/plain;base64,SGVsbG8sIFdvcmxkIQ==");
    REQUIRE(b64.has_value());
    CHECK(b64->mediatype == "text/plain");
    CHECK(b64->bytes == "Hello, World!");

    auto unpadded = parse_data_uri("data:;base64,SGVsbG8sIFdvcmxkIQ");
    REQUIRE(unpadded.has_value());
    CHECK(unpadded->mediatype.empty());
    CHECK(unpadded->bytes == "Hello, World!");

    auto params = parse_data_uri("DATA:text/plain;charset=US-ASCII;BASE64,aGk%3D");
    REQUIRE(params.has_value());
    CHECK(params->mediatype == "text/plain;charset=US-ASCII");
    CHECK(params->bytes == "hi");

    auto with_params = parse_data_uri("data:text/plain;charset=utf-8,a%20b");
    REQUIRE(with_params.has_value());
    CHECK(with_params->mediatype == "text/plain;charset=utf-8");
    CHECK(with_params->bytes == "a b");

    auto empty = parse_data_uri("data:,");
    REQUIRE(empty.has_value());
    CHECK(empty->bytes.empty());

    auto no_comma = parse_data_uri("data:text/plain;base64");
    REQUIRE(!no_comma);
    CHECK(no_comma.error().message == "data: URI: missing ',' before the data");

    auto bad_b64 = parse_data_uri("data:;base64,aGVsbG8!");
    REQUIRE(!bad_b64);
    CHECK(bad_b64.error().message == "data: URI: invalid base64 at offset 7: '!'");

    auto bad_escape = parse_data_uri("data:,100%");
    REQUIRE(!bad_escape);
    CHECK(bad_escape.error().message == "data: URI: truncated percent-escape at offset 3");

    CHECK(!parse_data_uri("file:///x"));
  }
}
