// Tests for tapegrad/io/protobuf.hpp: the protocol-buffers wire format.
//  - the bytes of the encoding guide's own examples (varint 150, the string "testing"), negative int64 as
//    ten bytes, floats and doubles little-endian;
//  - every field type written and read back, nested messages and packed varints;
//  - a message cut at every byte, or with a bad wire type, throws FormatError and never reads past its end.

#include <tapegrad/io/protobuf.hpp>

#include "../../support/check_throws.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

namespace proto = tapegrad::io::proto;
using Bytes = std::vector<unsigned char>;

Bytes bytes_of(const proto::Writer& w) { return {w.data().begin(), w.data().end()}; }

}  // namespace

TEST_CASE("protobuf: the encoding guide's examples, byte for byte") {
    // https://protobuf.dev/programming-guides/encoding/: field 1 = 150 is 08 96 01; field 2 = "testing" is
    // 12 07 74 65 73 74 69 6e 67.
    proto::Writer a;
    a.uint(1, 150);
    CHECK(bytes_of(a) == Bytes{0x08, 0x96, 0x01});
    proto::Writer b;
    b.string(2, "testing");
    CHECK(bytes_of(b) == Bytes{0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67});
    // A nested message is a length-delimited field holding the inner bytes: field 3 = {1: 150} is 1a 03 08 96 01.
    proto::Writer c;
    c.message(3, a);
    CHECK(bytes_of(c) == Bytes{0x1a, 0x03, 0x08, 0x96, 0x01});
    // int64 -1 is the varint of its two's complement: ten bytes.
    proto::Writer d;
    d.int64(1, -1);
    CHECK(bytes_of(d) == Bytes{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01});
    // float 1.0f at field 2: key 0x15 (2 << 3 | 5), then 00 00 80 3f.
    proto::Writer e;
    e.float32(2, 1.0f);
    CHECK(bytes_of(e) == Bytes{0x15, 0x00, 0x00, 0x80, 0x3f});
    // A field number above 15 takes a two-byte key: field 20 varint -> a0 01.
    proto::Writer f;
    f.int64(20, 7);
    CHECK(bytes_of(f) == Bytes{0xa0, 0x01, 0x07});
}

TEST_CASE("protobuf: every field type round-trips") {
    proto::Writer inner;
    inner.string(1, "inner");
    inner.int64(2, -123456789012345);
    proto::Writer w;
    w.uint(1, 0);
    w.uint(1, UINT64_MAX);
    w.int64(2, INT64_MIN);
    w.float32(3, -2.5f);
    w.float64(4, 1e-300);
    const Bytes raw{0, 1, 2, 255};
    w.bytes(5, raw);
    w.message(6, inner);
    const int64_t packed[] = {0, 1, 300, -5};
    w.packed_int64(7, packed);
    w.string(8, "");

    proto::Reader r(w.data(), "test");
    std::vector<proto::Field> fs;
    while (!r.done()) fs.push_back(r.next());
    REQUIRE(fs.size() == 9);
    CHECK(fs[0].number == 1);
    CHECK(fs[0].value == 0);
    CHECK(fs[1].value == UINT64_MAX);
    CHECK(fs[2].number == 2);
    CHECK(fs[2].as_int64() == INT64_MIN);
    CHECK(fs[3].type == proto::WireType::fixed32);
    CHECK(fs[3].as_float() == -2.5f);
    CHECK(fs[4].type == proto::WireType::fixed64);
    CHECK(fs[4].as_double() == 1e-300);
    CHECK(Bytes(fs[5].bytes.begin(), fs[5].bytes.end()) == raw);
    proto::Reader ri(fs[6].bytes);
    const proto::Field i1 = ri.next(), i2 = ri.next();
    CHECK(ri.done());
    CHECK(i1.as_string() == "inner");
    CHECK(i2.as_int64() == -123456789012345);
    CHECK(proto::Reader::packed_int64(fs[7].bytes) == std::vector<int64_t>{0, 1, 300, -5});
    CHECK(fs[8].number == 8);
    CHECK(fs[8].bytes.empty());
}

TEST_CASE("protobuf: a truncated or malformed message throws, never reads past its end") {
    proto::Writer inner;
    inner.string(1, "abcdef");
    proto::Writer w;
    w.int64(1, -1);
    w.float32(2, 3.0f);
    w.float64(3, 4.0);
    w.message(4, inner);
    const Bytes all = bytes_of(w);
    // Every prefix: the whole fields before the cut decode, the cut one throws (a prefix that ends on a field
    // boundary decodes completely).
    int threw = 0;
    for (size_t cut = 0; cut < all.size(); ++cut) {
        const Bytes part(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(cut));
        proto::Reader r(part, "cut");
        try {
            while (!r.done()) r.next();
        } catch (const tapegrad::FormatError&) {
            ++threw;
        }
    }
    // Field boundaries at 0, 11, 16, 25 and the end: every other cut throws.
    CHECK(threw == static_cast<int>(all.size()) - 4);
    // Wire types 3, 4 (groups), 6 and 7 are not supported.
    const Bytes group{0x0b};
    tapegrad::testing::check_throws<tapegrad::FormatError>(
        [&] {
            proto::Reader r(group, "model.onnx");
            r.next();
        },
        "model.onnx: unsupported wire type 3");
    // A length past the end.
    const Bytes too_long{0x0a, 0x05, 0x41};
    tapegrad::testing::check_throws<tapegrad::FormatError>(
        [&] {
            proto::Reader r(too_long, "m");
            r.next();
        },
        "says 5 bytes");
    // An eleven-byte varint.
    const Bytes long_varint{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    tapegrad::testing::check_throws<tapegrad::FormatError>(
        [&] {
            proto::Reader r(long_varint, "m");
            r.next();
        },
        "varint longer than 10 bytes");
}
