#include "artifact/uri.hpp"
#include "support.hpp"
#include "util/base64.hpp"
#include "util/hex.hpp"

#include <cstdint>
#include <doctest/doctest.h>
#include <random>
#include <string>
#include <vector>

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

namespace {

// decode_data_uri into a string, checking that no piece is larger than `chunk`.
pss::Result<std::string> decode_to_string(std::string_view uri, std::uint64_t max,
                                          std::size_t chunk) {
  std::string out;
  bool oversized_piece = false;
  auto n = pss::artifact::decode_data_uri(
      uri, max,
      [&](std::string_view piece) -> pss::Result<void> {
        oversized_piece = oversized_piece || piece.empty() || piece.size() > chunk;
        out.append(piece);
        return {};
      },
      chunk);
  CHECK_FALSE(oversized_piece);
  if (!n) {
    return n.error();
  }
  CHECK(*n == out.size());
  return out;
}

// decode_data_uri and parse_data_uri agree on `uri`: the same bytes or the same error, at
// every chunk size given. False (and a failed CHECK) if not.
bool check_same_as_parse(const std::string& uri, std::initializer_list<std::size_t> chunks) {
  auto reference = pss::artifact::parse_data_uri(uri);
  bool same = true;
  for (std::size_t chunk : chunks) {
    CAPTURE(uri);
    CAPTURE(chunk);
    auto streamed = decode_to_string(uri, std::uint64_t(1) << 40, chunk);
    std::string got = streamed ? "bytes " + pss::to_hex(*streamed) : streamed.error().message;
    std::string want =
        reference ? "bytes " + pss::to_hex(reference->bytes) : reference.error().message;
    CHECK(got == want);
    same = same && got == want;
  }
  return same;
}

} // namespace

TEST_CASE("artifact::decode_data_uri") {
  using namespace pss::artifact;
  const std::initializer_list<std::size_t> chunks = {1, 2, 3, 4, 5, 7, k_data_uri_chunk};

  SUBCASE("the same bytes and errors as parse_data_uri, across chunk boundaries") {
    for (const char* uri : {
             "data:,",
             "data:,Hello%2C%20World!",
             "data:,a%20b%2",   // truncated escape at the end
             "data:,a%2",       // '%x' at the end
             "data:,a%",        // '%' at the end
             "data:,%zz%20",    // invalid escape
             "data:,%2z",       // invalid second digit
             "data:,%%41",      // '%' as the first digit
             "data:,100%",      // from parse_data_uri's tests
             "data:,%00%ff%FF", // NUL and high bytes
             "data:;base64,",   // empty
             "data:text/plain;base64,SGVsbG8sIFdvcmxkIQ==",
             "data:;base64,SGVsbG8sIFdvcmxkIQ", // unpadded
             "data:;base64,aGVsbG8=",           // one '=': a quantum cut by every chunk size
             "data:;base64,aGk=",
             "data:;base64,aGk",
             "data:;base64,aGVs\tbG8g d29y%0AbGQ=",            // whitespace, also percent-encoded
             "DATA:text/plain;charset=US-ASCII;BASE64,aGk%3D", // '=' percent-encoded
             "data:;base64,%61%47%6b%3d",                      // every digit percent-encoded
             "data:;base64,+/+/-_-_",                          // both alphabets
             "data:;base64,aGVsbG8!",                          // invalid character
             "data:;base64,aGk=aGk=",                          // data after the padding
             "data:;base64,aGVsb",                             // truncated
             "data:;base64,aGk==",                             // too much padding
             "data:;base64,====",
             "data:;base64,a===",
             "data:;base64,aG!k%zz",    // a base64 error, then an escape error: the escape's
             "data:;base64,aG!k%4",     // the same with a truncated escape at the end
             "data:;base64,aGk=%2",     // padding, then a truncated escape
             "data:;base64,aGV%73bG8",  // an escape inside a quantum
             "data:text/plain;base64",  // no comma
             "file:///x",               // not a data: URI
             "data:;base64;base64,aGk", // only the last ';base64' counts
             "data:;base64x,aGk",       // not base64: the payload as is
         }) {
      check_same_as_parse(uri, chunks);
    }
  }

  SUBCASE("the size limit") {
    CHECK(decode_to_string("data:,hello", 5, 2).value() == "hello");
    CHECK(pss::test::error_of(decode_to_string("data:,hello", 4, 2)) ==
          "data: URI: larger than the 4 bytes limit");
    CHECK(pss::test::error_of(decode_to_string("data:;base64,aGVsbG8=", 4, 3)) ==
          "data: URI: larger than the 4 bytes limit");
    CHECK(pss::test::error_of(decode_to_string("data:,x", 0, 1)) ==
          "data: URI: larger than the 0 bytes limit");
    std::string big = "data:,";
    big.append(2 * 1024 * 1024 + 1, 'x');
    CHECK(pss::test::error_of(decode_to_string(big, 2 * 1024 * 1024, k_data_uri_chunk)) ==
          "data: URI: larger than the 2 MiB limit");
    // The URI's own errors come first, wherever they are, as parse_data_uri finds them first.
    CHECK(pss::test::error_of(decode_to_string("data:;base64,aGVsbG8!", 2, 1)) ==
          "data: URI: invalid base64 at offset 7: '!'");
    CHECK(pss::test::error_of(decode_to_string("data:,hello%", 2, 1)) ==
          "data: URI: truncated percent-escape at offset 5");
  }

  SUBCASE("the sink gets a chunk at a time, and its error stops the decoding") {
    std::string payload(10000, 'a');
    std::vector<std::size_t> pieces;
    auto n = decode_data_uri(
        "data:," + payload, 1 << 20,
        [&](std::string_view piece) -> pss::Result<void> {
          pieces.push_back(piece.size());
          return {};
        },
        4096);
    REQUIRE(n.has_value());
    CHECK(*n == 10000);
    CHECK(pieces == std::vector<std::size_t>{4096, 4096, 1808});

    int calls = 0;
    auto failed = decode_data_uri(
        "data:," + payload, 1 << 20,
        [&](std::string_view) -> pss::Result<void> {
          ++calls;
          return pss::make_error("cannot write: No space left on device");
        },
        4096);
    CHECK(pss::test::error_of(failed) == "cannot write: No space left on device");
    CHECK(calls == 1);
  }

  SUBCASE("random URIs: the same answer as parse_data_uri") {
    // Characters that matter to the decoders, weighted towards the valid ones.
    const std::string alphabet = "aAzZ09+/-_=%%%2020334fF   \t\n!\x80g,;";
    std::mt19937 rng(20240514); // fixed: a failure is reproducible
    auto pick = [&](std::size_t n) {
      return std::uniform_int_distribution<std::size_t>(0, n)(rng);
    };
    const std::vector<std::string> heads = {"data:,", "data:;base64,", "data:a/b;base64,",
                                            "data:;BASE64,", "data:x;y,"};
    for (int round = 0; round < 20000; ++round) {
      std::string uri = heads[pick(heads.size() - 1)];
      if (pick(3) == 0) { // mostly valid base64 with a fault or two
        std::string bytes(pick(40), '\0');
        for (char& c : bytes) {
          c = static_cast<char>(pick(255));
        }
        uri += pss::base64_encode(bytes);
        for (std::size_t faults = pick(2); faults > 0 && uri.size() > 14; --faults) {
          uri[14 + pick(uri.size() - 15)] = alphabet[pick(alphabet.size() - 1)];
        }
      } else {
        for (std::size_t n = pick(24); n > 0; --n) {
          uri += alphabet[pick(alphabet.size() - 1)];
        }
      }
      if (!check_same_as_parse(uri, {1 + pick(8)})) {
        break; // one failure shows the case; thousands would bury it
      }
    }
  }
}
