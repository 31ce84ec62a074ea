#include "tapegrad/io/safetensors.hpp"
#include "../../support/temp_dir.hpp"
#include "../../support/check_throws.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#if !defined(_WIN32)
#include <unistd.h>
#endif

namespace {

namespace fs = std::filesystem;
using tapegrad::io::decode_safetensors;
using tapegrad::io::Dtype;
using tapegrad::io::encode_safetensors;
using tapegrad::io::load_safetensors;
using tapegrad::io::save_safetensors;
using tapegrad::io::StEntry;
using tapegrad::io::StFile;
using Bytes = std::vector<unsigned char>;

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

/// A file made of an 8-byte size field for `header` (unpadded, taken as is), the header, then `data`.
Bytes raw_file(std::string_view header, const Bytes& data = {}) {
    Bytes out;
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i, n >>= 8) out.push_back(static_cast<unsigned char>(n & 0xFF));
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

/// The message of the FormatError that decoding `b` throws, or a marker saying what happened instead.
std::string decode_error(const Bytes& b) {
    try {
        static_cast<void>(decode_safetensors(b, "test.safetensors"));
    } catch (const tapegrad::FormatError& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("<wrong exception type> ") + e.what();
    }
    return "<no error>";
}

using tapegrad::testing::contains;

/// Checks that decoding `b` throws FormatError whose message names the file and holds every one of `parts`.
void check_rejected(const Bytes& b, std::initializer_list<std::string_view> parts) {
    const std::string msg = decode_error(b);
    INFO("message: ", msg);
    CHECK(contains(msg, "decode_safetensors: 'test.safetensors'"));
    for (std::string_view p : parts) CHECK(contains(msg, p));
}

Bytes read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_all(const fs::path& p, const Bytes& b) {
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

using tapegrad::testing::TempDir;

/// `count` bytes counting up from `start`, so every tensor's data is distinct.
Bytes pattern(std::size_t count, unsigned start) {
    Bytes b(count);
    for (std::size_t i = 0; i < count; ++i) b[i] = static_cast<unsigned char>(start + i * 7);
    return b;
}

StEntry entry(std::string name, Dtype dtype, std::vector<std::int64_t> shape, unsigned seed = 1) {
    std::size_t n = tapegrad::io::dtype_size(dtype);
    for (std::int64_t d : shape) n *= static_cast<std::size_t>(d);
    return StEntry{.name = std::move(name), .dtype = dtype, .shape = std::move(shape), .data = pattern(n, seed)};
}

void check_same(const StFile& a, const StFile& b) {
    REQUIRE(a.tensors.size() == b.tensors.size());
    for (std::size_t i = 0; i < a.tensors.size(); ++i) {
        INFO("tensor ", a.tensors[i].name);
        CHECK(a.tensors[i].name == b.tensors[i].name);
        CHECK(a.tensors[i].dtype == b.tensors[i].dtype);
        CHECK(a.tensors[i].shape == b.tensors[i].shape);
        CHECK(a.tensors[i].data == b.tensors[i].data);
    }
    CHECK(a.metadata == b.metadata);
}

/// A file using every kind of entry: several dtypes, a scalar, empty tensors and metadata. Sorted by name,
/// as decoding returns it.
StFile rich_file() {
    StFile f;
    f.tensors.push_back(entry("bf16.w", Dtype::BF16, {3, 2}, 10));
    f.tensors.push_back(entry("bool.mask", Dtype::BOOL, {5}, 20));
    f.tensors.push_back(entry("empty", Dtype::F32, {0}, 0));
    f.tensors.push_back(entry("empty2d", Dtype::I64, {3, 0}, 0));
    f.tensors.push_back(entry("f16.h", Dtype::F16, {2, 2}, 30));
    f.tensors.push_back(entry("f32.w", Dtype::F32, {2, 3}, 40));
    f.tensors.push_back(entry("f64.x", Dtype::F64, {4}, 50));
    f.tensors.push_back(entry("i16", Dtype::I16, {3}, 60));
    f.tensors.push_back(entry("i32", Dtype::I32, {1, 1, 2}, 70));
    f.tensors.push_back(entry("i64", Dtype::I64, {2}, 80));
    f.tensors.push_back(entry("i8", Dtype::I8, {7}, 90));
    f.tensors.push_back(entry("scalar", Dtype::F32, {}, 100));
    f.tensors.push_back(entry("u8", Dtype::U8, {2, 2, 2}, 110));
    f.tensors.push_back(entry("\xc3\xa9t\xc3\xa9 \"q\" \\ \n\x01", Dtype::F32, {1}, 120));
    f.metadata["format"] = "pt";
    f.metadata["note"] = "quote \" backslash \\ newline \n tab \t ctl \x1f del \x7f unicode \xe2\x82\xac /";
    f.metadata[""] = "empty key";
    return f;
}

/// A small valid file: three tensors and metadata.
Bytes small_file() {
    StFile f;
    f.tensors.push_back(entry("weight", Dtype::F32, {2, 2}, 3));
    f.tensors.push_back(entry("bias", Dtype::F32, {2}, 5));
    f.tensors.push_back(entry("step", Dtype::I64, {}, 9));
    f.metadata["format"] = "pt";
    return encode_safetensors(f);
}

std::size_t header_size(const Bytes& b) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | b[static_cast<std::size_t>(i)];
    return static_cast<std::size_t>(n);
}

std::string header_text(const Bytes& b) {
    return std::string(b.begin() + 8, b.begin() + 8 + static_cast<std::ptrdiff_t>(header_size(b)));
}

}  // namespace

TEST_CASE("safetensors dtype names, sizes and parsing") {
    using tapegrad::io::dtype_name;
    using tapegrad::io::dtype_size;
    using tapegrad::io::parse_dtype;
    CHECK(dtype_name(Dtype::F32) == "F32");
    CHECK(dtype_name(Dtype::BF16) == "BF16");
    CHECK(dtype_name(Dtype::BOOL) == "BOOL");
    CHECK(dtype_size(Dtype::F64) == 8);
    CHECK(dtype_size(Dtype::I64) == 8);
    CHECK(dtype_size(Dtype::F32) == 4);
    CHECK(dtype_size(Dtype::I32) == 4);
    CHECK(dtype_size(Dtype::F16) == 2);
    CHECK(dtype_size(Dtype::BF16) == 2);
    CHECK(dtype_size(Dtype::I16) == 2);
    CHECK(dtype_size(Dtype::I8) == 1);
    CHECK(dtype_size(Dtype::U8) == 1);
    CHECK(dtype_size(Dtype::BOOL) == 1);
    for (Dtype d : tapegrad::io::all_dtypes) CHECK(parse_dtype(dtype_name(d)) == d);
    CHECK_FALSE(parse_dtype("f32").has_value());
    CHECK_FALSE(parse_dtype("U16").has_value());
    CHECK_FALSE(parse_dtype("").has_value());
    CHECK_THROWS_AS(static_cast<void>(dtype_size(static_cast<Dtype>(42))), tapegrad::ValueError);
    CHECK_THROWS_AS(static_cast<void>(dtype_name(static_cast<Dtype>(42))), tapegrad::ValueError);
}

TEST_CASE("safetensors round trip: every dtype, scalars, empty tensors, metadata") {
    const StFile f = rich_file();
    const Bytes bytes = encode_safetensors(f);
    const StFile g = decode_safetensors(bytes, "rich");
    check_same(f, g);
    REQUIRE(g.find("scalar") != nullptr);
    CHECK(g.find("scalar")->shape.empty());
    CHECK(g.find("scalar")->data.size() == 4);
    CHECK(g.find("empty2d")->data.empty());
    CHECK(g.find("missing") == nullptr);
    CHECK(encode_safetensors(g) == bytes);

    SUBCASE("no tensors, no metadata") {
        const Bytes b = encode_safetensors(StFile{});
        CHECK(b == raw_file("{}      "));
        const StFile e = decode_safetensors(b, "empty");
        CHECK(e.tensors.empty());
        CHECK(e.metadata.empty());
    }
    SUBCASE("metadata only") {
        StFile m;
        m.metadata["k"] = "v";
        const StFile back = decode_safetensors(encode_safetensors(m), "meta");
        check_same(m, back);
    }
    SUBCASE("find returns a mutable entry") {
        StFile h = g;
        REQUIRE(h.find("i8") != nullptr);
        h.find("i8")->data[0] = 0;
        CHECK(h.find("i8")->data[0] == 0);
    }
}

TEST_CASE("safetensors encoding is deterministic and laid out like the reference writer") {
    StFile f;
    f.tensors.push_back(entry("z", Dtype::U8, {3}));
    f.tensors.push_back(entry("b", Dtype::F32, {1}));
    f.tensors.push_back(entry("a", Dtype::F32, {2}));
    f.tensors.push_back(entry("c", Dtype::I64, {1}));
    f.tensors.push_back(entry("d", Dtype::F64, {1}));
    StFile shuffled = f;
    std::reverse(shuffled.tensors.begin(), shuffled.tensors.end());
    const Bytes bytes = encode_safetensors(f);
    CHECK(encode_safetensors(shuffled) == bytes);

    const std::string h = header_text(bytes);
    // Descending dtype (I64, F64, F32, ..., U8), then name; offsets contiguous in that order.
    const std::string json =
        "{\"c\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
        "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[24,28]},"
        "\"z\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[28,31]}}";
    CHECK(h == json + std::string((8 - json.size() % 8) % 8, ' '));
    CHECK(h.size() % 8 == 0);
    StFile longer = f;
    longer.tensors[0].name = "zz";  // one byte more: the padding shrinks by one (mod 8)
    CHECK(header_text(encode_safetensors(longer)).size() == ((json.size() + 1 + 7) / 8) * 8);
    CHECK(h.find("__metadata__") == std::string::npos);
    // The data follows in the same order.
    CHECK(Bytes(bytes.end() - 3, bytes.end()) == f.tensors[0].data);

    f.metadata["b"] = "2";
    f.metadata["a"] = "1";
    const std::string hm = header_text(encode_safetensors(f));
    CHECK(hm.rfind("{\"__metadata__\":{\"a\":\"1\",\"b\":\"2\"},\"c\":", 0) == 0);
    CHECK(hm.size() % 8 == 0);
}

TEST_CASE("safetensors known-good bytes from the reference writer") {
    // Produced by the reference serializer (the Rust crate behind Python's safetensors.numpy.save_file):
    //   save_file({"attn.0": np.arange(6, dtype=np.float32).reshape(1, 2, 3)}, path)
    // These 96 bytes are the ones the crate's own test_serialization asserts for that input. The 64-byte
    // header is already a multiple of 8, so it carries no padding.
    const Bytes attn = {
        64,  0,   0,   0,   0,   0,   0,   0,   123, 34,  97,  116, 116, 110, 46,  48, 34,  58,  123, 34,
        100, 116, 121, 112, 101, 34,  58,  34,  70,  51,  50,  34,  44,  34,  115, 104, 97, 112, 101, 34,
        58,  91,  49,  44,  50,  44,  51,  93,  44,  34,  100, 97,  116, 97,  95,  111, 102, 102, 115, 101,
        116, 115, 34,  58,  91,  48,  44,  50,  52,  93,  125, 125, 0,   0,   0,   0,   0,   0,   128, 63,
        0,   0,   0,   64,  0,   0,   64,  64,  0,   0,   128, 64,  0,   0,   160, 64};
    const StFile f = decode_safetensors(attn, "attn.safetensors");
    REQUIRE(f.tensors.size() == 1);
    CHECK(f.tensors[0].name == "attn.0");
    CHECK(f.tensors[0].dtype == Dtype::F32);
    CHECK(f.tensors[0].shape == std::vector<std::int64_t>{1, 2, 3});
    const float expected[] = {0.0F, 1.0F, 2.0F, 3.0F, 4.0F, 5.0F};
    float got[6] = {};
    REQUIRE(f.tensors[0].data.size() == sizeof got);
    std::memcpy(got, f.tensors[0].data.data(), sizeof got);
    for (int i = 0; i < 6; ++i) CHECK(got[i] == expected[i]);
    CHECK(encode_safetensors(f) == attn);

    // save_file({"a": np.array([1.0, -2.5], dtype=np.float32)}, path): a 54-byte header padded with two
    // spaces to 56, then the two floats little-endian (1.0 = 00 00 80 3f, -2.5 = 00 00 20 c0).
    const Bytes a = raw_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  ",
                             {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0});
    CHECK(a[0] == 56);
    const StFile fa = decode_safetensors(a, "a.safetensors");
    CHECK(encode_safetensors(fa) == a);

    // save_file({}, path, metadata={"framework": "pt"}): the crate's test_empty vector.
    const Bytes meta = {40,  0,  0,   0,   0,   0,   0,   0,   123, 34,  95,  95,  109, 101, 116, 97,
                        100, 97, 116, 97,  95,  95,  34,  58,  123, 34,  102, 114, 97,  109, 101, 119,
                        111, 114, 107, 34, 58,  34,  112, 116, 34,  125, 125, 32,  32,  32,  32,  32};
    const StFile fm = decode_safetensors(meta, "meta.safetensors");
    CHECK(fm.tensors.empty());
    CHECK(fm.metadata == std::map<std::string, std::string>{{"framework", "pt"}});
    CHECK(encode_safetensors(fm) == meta);
}

TEST_CASE("safetensors save -> load -> save is byte-identical") {
    TempDir dir;
    const StFile f = rich_file();
    const fs::path p1 = dir.path / "one.safetensors";
    const fs::path p2 = dir.path / "two.safetensors";
    save_safetensors(p1, f);
    const StFile loaded = load_safetensors(p1);
    check_same(f, loaded);
    save_safetensors(p2, loaded);
    CHECK(read_all(p1) == read_all(p2));
    CHECK(read_all(p1) == encode_safetensors(f));
    CHECK(dir.names() == std::vector<std::string>{"one.safetensors", "two.safetensors"});
}

TEST_CASE("safetensors re-encoding a valid but non-canonical file reaches a fixed point") {
    // Keys out of order, extra whitespace, escapes the writer would not use, data laid out by name.
    const std::string header =
        "{ \"b\" : {\"data_offsets\":[4, 8], \"shape\":[1], \"dtype\":\"F32\"},\n"
        "  \"\\u0061\": {\"shape\":[ ], \"dtype\":\"I32\", \"data_offsets\":[0,4]},"
        "  \"__metadata__\": {\"x\\/y\": \"\\u00e9\"}, \"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}}\t ";
    const Bytes b = raw_file(header, pattern(8, 1));
    const StFile f = decode_safetensors(b, "odd");
    REQUIRE(f.tensors.size() == 3);
    CHECK(f.tensors[0].name == "a");
    CHECK(f.tensors[0].data == pattern(4, 1));
    CHECK(f.tensors[1].name == "b");
    const Bytes data = pattern(8, 1);
    CHECK(f.tensors[1].data == Bytes(data.begin() + 4, data.end()));
    CHECK(f.tensors[2].name == "e");
    CHECK(f.metadata.at("x/y") == "\xc3\xa9");
    const Bytes once = encode_safetensors(f);
    CHECK(encode_safetensors(decode_safetensors(once, "once")) == once);
}

TEST_CASE("safetensors decoding rejects malformed framing") {
    check_rejected({}, {"too short", "0 bytes"});
    check_rejected(Bytes{1, 0, 0}, {"too short", "3 bytes"});
    Bytes big = raw_file("{}");
    big[0] = 0x01;
    big[1] = 0xe1;
    big[2] = 0xf5;
    big[3] = 0x05;  // 100,000,001
    check_rejected(big, {"header size 100000001", "100000000-byte limit"});
    Bytes huge(16, 0xff);
    check_rejected(huge, {"header size 18446744073709551615", "limit"});
    Bytes longer = raw_file("{}      ");
    longer[0] = 9;
    check_rejected(longer, {"truncated", "header size says 9", "holds 8"});
    check_rejected(raw_file(""), {"header is empty"});
    check_rejected(raw_file(" {}"), {"must start with '{'", "byte 32"});
    check_rejected(raw_file("[]"), {"must start with '{'"});
}

TEST_CASE("safetensors decoding rejects headers that are not valid JSON") {
    check_rejected(raw_file("{\"a\":"), {"not valid JSON"});
    check_rejected(raw_file("{\"a\":{\"dtype\":\"F32\""), {"not valid JSON"});
    check_rejected(raw_file(std::string("{}\0 {\"hidden\":1}", 15)), {"NUL byte at header byte 2"});
    check_rejected(raw_file("{} x"), {"not valid JSON"});
    check_rejected(raw_file(std::string("{}\0\0", 4)), {"not valid JSON", "NUL byte"});  // NUL padding is not whitespace
    check_rejected(raw_file("{\"\xff\":{}}"), {"not valid JSON"});        // invalid UTF-8
    check_rejected(raw_file("{\"\\ud800\":{}}"), {"not valid JSON"});     // lone surrogate
    check_rejected(raw_file("{'a':1}"), {"not valid JSON"});
}

TEST_CASE("safetensors decoding rejects malformed entries") {
    check_rejected(raw_file(R"({"a":1})"), {"tensor 'a'", "must be an object", "a number"});
    check_rejected(raw_file(R"({"a":[]})"), {"tensor 'a'", "must be an object", "an array"});
    check_rejected(raw_file(R"({"a":{"shape":[],"data_offsets":[0,4]}})"), {"tensor 'a'", "'dtype' is missing"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})"), {"tensor 'a'", "'shape' is missing"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[]}})"), {"tensor 'a'", "'data_offsets' is missing"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"extra":1}})"),
                   {"tensor 'a'", "unknown field 'extra'"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[],"data_offsets":[0,4]}})"),
                   {"tensor 'a'", "'dtype' appears twice"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[],"shape":[],"data_offsets":[0,4]}})"),
                   {"tensor 'a'", "'shape' appears twice"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"data_offsets":[0,4]}})"),
                   {"tensor 'a'", "'data_offsets' appears twice"});

    // dtype
    check_rejected(raw_file(R"({"a":{"dtype":4,"shape":[],"data_offsets":[0,4]}})"),
                   {"tensor 'a'", "dtype must be a string"});
    check_rejected(raw_file(R"({"a":{"dtype":"F8_E4M3","shape":[],"data_offsets":[0,1]}})"),
                   {"tensor 'a'", "unsupported dtype 'F8_E4M3'"});
    check_rejected(raw_file(R"({"a":{"dtype":"f32","shape":[],"data_offsets":[0,4]}})"),
                   {"tensor 'a'", "unsupported dtype 'f32'"});

    // shape
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})"),
                   {"tensor 'a'", "shape must be an array"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}})"),
                   {"tensor 'a'", "negative dimension -1"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})"),
                   {"tensor 'a'", "non-negative integers", "2.0"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})"),
                   {"tensor 'a'", "non-negative integers", "an array"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})"),
                   {"tensor 'a'", "non-negative integers", "a string"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})"),
                   {"tensor 'a'", "dimension 18446744073709551615 is too large"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}})"),
                   {"tensor 'a'", "non-negative integers"});

    // data_offsets
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[],"data_offsets":4}})"),
                   {"tensor 'a'", "data_offsets must be an array"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[4]}})"),
                   {"tensor 'a'", "exactly 2 integers, found 1"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4,8]}})"),
                   {"tensor 'a'", "exactly 2 integers, found more"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[-4,0]}})"),
                   {"tensor 'a'", "negative offset -4"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[8,4]}})"),
                   {"tensor 'a'", "[8, 4] end before they begin"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,null]}})"),
                   {"tensor 'a'", "non-negative integers", "null"});

    // size against shape and dtype
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", pattern(20, 0)),
                   {"tensor 'a'", "shape [2, 3] of F32 needs 24 bytes", "[0, 20] span 20"});
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
                   {"tensor 'a'", "[4294967296, 4294967296] of F32 overflows"});
    check_rejected(raw_file(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})"),
                   {"tensor 'a'", "overflows"});
}

TEST_CASE("safetensors decoding rejects duplicate names and bad metadata") {
    check_rejected(raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                            R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                            {1, 2}),
                   {"tensor name 'a' appears twice"});
    check_rejected(raw_file(R"({"__metadata__":{},"__metadata__":{}})"), {"'__metadata__' appears twice"});
    check_rejected(raw_file(R"({"__metadata__":[]})"), {"'__metadata__' must be an object", "an array"});
    check_rejected(raw_file(R"({"__metadata__":"x"})"), {"'__metadata__' must be an object", "a string"});
    check_rejected(raw_file(R"({"__metadata__":{"k":1}})"), {"value for key 'k' must be a string", "a number"});
    check_rejected(raw_file(R"({"__metadata__":{"k":{}}})"), {"value for key 'k' must be a string", "an object"});
    check_rejected(raw_file(R"({"__metadata__":{"k":null}})"), {"value for key 'k' must be a string", "null"});
    check_rejected(raw_file(R"({"__metadata__":{"k":true}})"), {"value for key 'k' must be a string", "boolean"});
    check_rejected(raw_file(R"({"__metadata__":{"k":"1","k":"2"}})"), {"metadata key 'k' appears twice"});
}

TEST_CASE("safetensors decoding rejects data ranges that do not tile the buffer") {
    const std::string a = R"("a":{"dtype":"F32","shape":[1],"data_offsets":)";
    const std::string b = R"("b":{"dtype":"F32","shape":[1],"data_offsets":)";
    check_rejected(raw_file("{" + a + "[4,8]}}", pattern(8, 0)),
                   {"tensor 'a'", "[4, 8] leave a gap of 4 bytes", "start of the buffer"});
    check_rejected(raw_file("{" + a + "[0,4]}," + b + "[6,10]}}", pattern(10, 0)),
                   {"tensor 'b'", "[6, 10] leave a gap of 2 bytes after tensor 'a', which ends at 4"});
    check_rejected(raw_file("{" + a + "[0,4]}," + b + "[2,6]}}", pattern(6, 0)),
                   {"tensor 'b'", "[2, 6] overlap tensor 'a', which ends at 4"});
    check_rejected(raw_file("{" + a + "[0,4]}," + b + "[0,4]}}", pattern(4, 0)), {"overlap tensor"});
    check_rejected(raw_file("{" + a + "[0,4]}," + b + "[4,8]}}", pattern(7, 0)),
                   {"truncated", "take 8 bytes", "holds 7"});
    check_rejected(raw_file("{" + a + "[0,4]}," + b + "[4,8]}}", pattern(9, 0)),
                   {"1 bytes after the last tensor", "take 8 bytes", "holds 9"});
    check_rejected(raw_file("{}", pattern(3, 0)), {"3 bytes after the last tensor"});
    // Offsets that do not fit in the file at all: never read, only reported.
    check_rejected(raw_file(R"({"a":{"dtype":"U8","shape":[4294967296,4294967295],)"
                            R"("data_offsets":[0,18446744069414584320]}})"),
                   {"truncated", "18446744069414584320"});
    // Zero-size tensors may sit anywhere in the sequence, including at the end.
    const Bytes ok = raw_file("{" + a + "[0,4]}," + R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                              pattern(4, 0));
    CHECK(decode_safetensors(ok, "ok").tensors.size() == 2);
}

TEST_CASE("safetensors encoding rejects entries it cannot write") {
    const auto encode_error = [](const StFile& f) -> std::string {
        try {
            static_cast<void>(encode_safetensors(f));
        } catch (const tapegrad::FormatError& e) {
            return e.what();
        }
        return "<no error>";
    };
    StFile f;
    f.tensors.push_back(entry("w", Dtype::F32, {2, 3}));
    f.tensors[0].data.resize(12);
    std::string msg = encode_error(f);
    CHECK(contains(msg, "encode_safetensors: tensor 'w' has 12 bytes of data, but shape [2, 3] of F32 needs 24"));

    f.tensors[0] = entry("w", Dtype::F32, {2});
    f.tensors[0].shape = {-1, -2};
    CHECK(contains(encode_error(f), "tensor 'w': shape [-1, -2] has a negative dimension at index 0"));

    f.tensors[0] = entry("w", Dtype::F32, {2});
    f.tensors.push_back(entry("w", Dtype::U8, {1}));
    CHECK(contains(encode_error(f), "two tensors are named 'w'"));

    f.tensors.pop_back();
    f.tensors.push_back(entry("__metadata__", Dtype::U8, {1}));
    CHECK(contains(encode_error(f), "cannot be named '__metadata__'"));

    f.tensors.back() = entry("bad\xff", Dtype::U8, {1});
    CHECK(contains(encode_error(f), "is not valid UTF-8"));

    f.tensors.pop_back();
    f.metadata["k"] = "\xc0\x80";  // overlong encoding of NUL
    CHECK(contains(encode_error(f), "metadata value for key 'k' is not valid UTF-8"));

    f.metadata.clear();
    f.tensors[0].dtype = static_cast<Dtype>(99);
    CHECK(contains(encode_error(f), "invalid Dtype value 99"));
}

TEST_CASE("safetensors save is atomic") {
    TempDir dir;
    const fs::path target = dir.path / "model.safetensors";
    StFile first;
    first.tensors.push_back(entry("w", Dtype::F32, {3}, 1));
    StFile second = rich_file();

    save_safetensors(target, first);
    const Bytes before = read_all(target);
    CHECK(before == encode_safetensors(first));

    SUBCASE("a save over an existing file replaces it") {
        save_safetensors(target, second);
        CHECK(read_all(target) == encode_safetensors(second));
        CHECK(dir.names() == std::vector<std::string>{"model.safetensors"});
    }
    SUBCASE("an invalid entry throws before the file is touched") {
        StFile bad = second;
        bad.tensors[0].data.pop_back();
        try {
            save_safetensors(target, bad);
            FAIL("expected FormatError");
        } catch (const tapegrad::FormatError& e) {
            const std::string msg = e.what();
            INFO(msg);
            CHECK(contains(msg, "save_safetensors: '" + target.string() + "'"));
            CHECK(contains(msg, "tensor 'bf16.w' has 11 bytes of data"));
        }
        CHECK(read_all(target) == before);
        CHECK(dir.names() == std::vector<std::string>{"model.safetensors"});
    }
    SUBCASE("a rename that fails removes the temporary file") {
        // The target is a non-empty directory, which rename() cannot replace with a file.
        const fs::path blocked = dir.path / "blocked.safetensors";
        fs::create_directory(blocked);
        write_all(blocked / "keep", bytes_of("keep"));
        try {
            save_safetensors(blocked, second);
            FAIL("expected FormatError");
        } catch (const tapegrad::FormatError& e) {
            const std::string msg = e.what();
            INFO(msg);
            CHECK(contains(msg, "save_safetensors: '" + blocked.string() + "'"));
            CHECK(contains(msg, "cannot rename"));
        }
        CHECK(read_all(blocked / "keep") == bytes_of("keep"));
        CHECK(dir.names() == std::vector<std::string>{"blocked.safetensors", "model.safetensors"});
        CHECK(read_all(target) == before);
    }
    SUBCASE("a missing directory is reported with the path") {
        const fs::path nowhere = dir.path / "no" / "such" / "dir.safetensors";
        try {
            save_safetensors(nowhere, first);
            FAIL("expected FormatError");
        } catch (const tapegrad::FormatError& e) {
            const std::string msg = e.what();
            INFO(msg);
            CHECK(contains(msg, "save_safetensors: '" + nowhere.string() + "'"));
            CHECK(contains(msg, "cannot create temporary file"));
        }
        CHECK(dir.names() == std::vector<std::string>{"model.safetensors"});
    }
#if !defined(_WIN32)
    SUBCASE("a directory that is not writable") {
        if (::geteuid() == 0) {
            MESSAGE("running as root, which writes through permissions: read-only directory case skipped");
        } else {
            fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
            CHECK_THROWS_AS(save_safetensors(target, second), tapegrad::FormatError);
            fs::permissions(dir.path, fs::perms::owner_all);
            CHECK(read_all(target) == before);
            CHECK(dir.names() == std::vector<std::string>{"model.safetensors"});
        }
    }
#endif
}

TEST_CASE("safetensors load reports unreadable paths") {
    TempDir dir;
    const fs::path missing = dir.path / "missing.safetensors";
    try {
        static_cast<void>(load_safetensors(missing));
        FAIL("expected FormatError");
    } catch (const tapegrad::FormatError& e) {
        CHECK(contains(e.what(), "load_safetensors: '" + missing.string() + "': cannot open"));
    }
    CHECK_THROWS_AS(static_cast<void>(load_safetensors(dir.path)), tapegrad::FormatError);

    const fs::path cut = dir.path / "cut.safetensors";
    Bytes b = small_file();
    b.pop_back();
    write_all(cut, b);
    try {
        static_cast<void>(load_safetensors(cut));
        FAIL("expected FormatError");
    } catch (const tapegrad::FormatError& e) {
        CHECK(contains(e.what(), "load_safetensors: '" + cut.string() + "': is truncated"));
    }
}

TEST_CASE("safetensors decoding a file cut at every byte offset always throws FormatError") {
    const Bytes full = small_file();
    REQUIRE(decode_safetensors(full, "full").tensors.size() == 3);
    int rejected = 0;
    for (std::size_t len = 0; len < full.size(); ++len) {
        const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
        const std::string msg = decode_error(cut);
        INFO("cut at ", len, ": ", msg);
        CHECK(contains(msg, "decode_safetensors: 'test.safetensors'"));
        rejected += contains(msg, "decode_safetensors") ? 1 : 0;
    }
    CHECK(rejected == static_cast<int>(full.size()));
}

namespace {

/// Decodes `b`; a success must be a file that re-encodes to a fixed point. Returns whether it decoded.
bool decode_checked(const Bytes& b) {
    StFile f;
    try {
        f = decode_safetensors(b, "test.safetensors");
    } catch (const tapegrad::FormatError&) {
        return false;
    }
    const Bytes once = encode_safetensors(f);
    CHECK(encode_safetensors(decode_safetensors(once, "again")) == once);
    return true;
}

}  // namespace

TEST_CASE("safetensors decoding survives flipped header bytes") {
    const Bytes full = small_file();
    const std::size_t header_end = 8 + header_size(full);
    int accepted = 0;
    int rejected = 0;
    for (std::size_t i = 0; i < header_end; ++i) {
        for (unsigned x : {0x01U, 0x02U, 0x04U, 0x08U, 0x10U, 0x20U, 0x40U, 0x80U, 0xFFU, 0x7FU}) {
            Bytes b = full;
            b[i] = static_cast<unsigned char>(b[i] ^ x);
            (decode_checked(b) ? accepted : rejected)++;
        }
    }
    MESSAGE("flipped header bytes: ", accepted, " decoded, ", rejected, " rejected");
    CHECK(accepted + rejected == static_cast<int>(header_end * 10));
    CHECK(rejected > 0);
    CHECK(accepted > 0);  // e.g. a changed letter in a tensor name or metadata value
}

TEST_CASE("safetensors decoding survives random corruption") {
    const Bytes full = small_file();
    std::mt19937 rng(12345);
    int accepted = 0;
    for (int iter = 0; iter < 20000; ++iter) {
        Bytes b = full;
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < edits && !b.empty(); ++k) {
            const std::size_t pos = rng() % b.size();
            switch (rng() % 4) {
                case 0: b[pos] = static_cast<unsigned char>(rng()); break;
                case 1: b.erase(b.begin() + static_cast<std::ptrdiff_t>(pos)); break;
                case 2: b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos), static_cast<unsigned char>(rng())); break;
                default: {
                    // Plausible JSON characters hit the parser's deeper states more often than random bytes.
                    static constexpr char json_chars[] = "{}[],:\"0123456789-. \\uE";
                    b[pos] = static_cast<unsigned char>(json_chars[rng() % (sizeof json_chars - 1)]);
                }
            }
        }
        accepted += decode_checked(b) ? 1 : 0;
    }
    MESSAGE("random corruption: ", accepted, " of 20000 decoded");
    CHECK(accepted < 20000);
}
