// Chunked ICAP bodies fed at every split, previews with and without ieof, and the lies a peer
// can tell about sizes.
#include "icap/chunked.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace pss::icap;

namespace {

struct Decoded {
  std::string body;
  bool done = false;
  bool ieof = false;
  std::size_t used = 0;
  std::string error;
};

// Feeds `wire` in pieces of `step` bytes, as a socket would deliver it.
Decoded decode(std::string_view wire, std::size_t step, ChunkedDecoder::Limits limits = {}) {
  ChunkedDecoder d(limits);
  Decoded out;
  while (out.used < wire.size() && !d.done()) {
    auto r = d.feed(wire.substr(out.used, step), out.body);
    if (!r) {
      out.error = r.error().message;
      return out;
    }
    out.used += *r;
  }
  out.done = d.done();
  out.ieof = d.ieof();
  return out;
}

} // namespace

TEST_CASE("icap::ChunkedDecoder") {
  SUBCASE("what write_chunk writes reads back at every split, the next message left alone") {
    std::string body;
    for (int i = 0; i < 3000; ++i) {
      body += static_cast<char>(i * 7);
    }
    std::string wire;
    write_chunk(wire, std::string_view(body).substr(0, 1024));
    write_chunk(wire, "");
    write_chunk(wire, std::string_view(body).substr(1024));
    write_last_chunk(wire);
    const std::size_t message = wire.size();
    wire += "RESPMOD icap://next";
    for (std::size_t step : {1, 2, 3, 7, 64, 1000, 100000}) {
      CAPTURE(step);
      auto d = decode(wire, step);
      CHECK(d.error.empty());
      CHECK(d.done);
      CHECK_FALSE(d.ieof);
      CHECK(d.used == message);
      CHECK(d.body == body);
    }
  }
  SUBCASE("a preview that is the whole body: ieof") {
    std::string wire;
    write_chunk(wire, "X5O!P%@AP");
    write_last_chunk(wire, true);
    CHECK(wire == "9\r\nX5O!P%@AP\r\n0; ieof\r\n\r\n");
    auto d = decode(wire, 5);
    CHECK(d.done);
    CHECK(d.ieof);
    CHECK(d.body == "X5O!P%@AP");
  }
  SUBCASE("upper-case hex, extensions, trailers, bare LF") {
    auto d = decode("A;name=v\r\n0123456789\r\n0;ieof\nTrailer: x\n\n", 4);
    CHECK(d.error.empty());
    CHECK(d.done);
    CHECK(d.ieof);
    CHECK(d.body == "0123456789");
  }
  SUBCASE("reset() reads the rest after a 100 Continue") {
    ChunkedDecoder d;
    std::string body;
    REQUIRE(d.feed("3\r\nabc\r\n0\r\n\r\n", body));
    CHECK(d.done());
    CHECK_FALSE(d.ieof());
    d.reset();
    REQUIRE(d.feed("2\r\nde\r\n0\r\n\r\n", body));
    CHECK(d.done());
    CHECK(body == "abcde");
    CHECK(d.total() == 2);
  }
  SUBCASE("lies and garbage are errors that say what was wrong") {
    auto error = [](std::string_view wire, ChunkedDecoder::Limits limits = {}) {
      return decode(wire, 3, limits).error;
    };
    CHECK(error("zz\r\nab\r\n").find("not hexadecimal") != std::string::npos);
    CHECK(error("2\r\nabc\r\n0\r\n\r\n").find("longer than its size") != std::string::npos);
    CHECK(error("\r\n").find("without its size") != std::string::npos);
    CHECK(error("; ieof\r\n\r\n").find("without its size") != std::string::npos);
    CHECK(error("ffffffffffffffffffff\r\n").find("larger than") != std::string::npos);
    ChunkedDecoder::Limits small;
    small.chunk = 100;
    CHECK(error("65\r\n", small).find("larger than 100") != std::string::npos);
    CHECK(error(std::string(5000, '1')).find("chunk-size line is longer") != std::string::npos);
    small.trailers = 20;
    CHECK(error("0\r\nX: " + std::string(40, 'a') + "\r\n\r\n", small).find("trailers") !=
          std::string::npos);
  }
  SUBCASE("a body cut short is not done") {
    auto d = decode("10\r\nonly-part", 4);
    CHECK(d.error.empty());
    CHECK_FALSE(d.done);
    CHECK(d.body == "only-part");
  }
}
