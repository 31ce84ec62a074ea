// Tests for tapegrad/data/idx.hpp: fixtures are built in memory (and in a private temp folder), never
// committed. The real-MNIST test runs only where cmake/fetch_mnist.sh (or TAPEGRAD_MNIST_DIR) provides it.

#include <tapegrad/data/idx.hpp>

#include "../../support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <zlib.h>

#include <array>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using tapegrad::FormatError;
using tapegrad::data::IdxArray;
using tapegrad::data::IdxType;
using Bytes = std::vector<unsigned char>;

namespace {

void append_be32(Bytes& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<unsigned char>(v >> shift));
}

/// The bytes of an IDX file: header `00 00 type rank`, big-endian dims, then `payload` as given.
Bytes idx_file(unsigned char type, const std::vector<uint32_t>& dims, const Bytes& payload) {
    Bytes out{0, 0, type, static_cast<unsigned char>(dims.size())};
    for (const uint32_t d : dims) append_be32(out, d);
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

/// `values` as big-endian bytes, the way IDX stores multi-byte elements.
template <class T>
Bytes big_endian(const std::vector<T>& values) {
    Bytes out;
    for (const T v : values) {
        std::array<unsigned char, sizeof(T)> b{};
        std::memcpy(b.data(), &v, sizeof(T));
        if constexpr (std::endian::native == std::endian::little) std::reverse(b.begin(), b.end());
        out.insert(out.end(), b.begin(), b.end());
    }
    return out;
}

/// A gzip stream (one member) holding `raw`, made with zlib's deflate.
Bytes gzip(const Bytes& raw) {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    Bytes out(deflateBound(&zs, static_cast<uLong>(raw.size())) + 64);
    zs.next_in = const_cast<Bytef*>(raw.data());
    zs.avail_in = static_cast<uInt>(raw.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

using tapegrad::testing::TempDir;

// The small valid fixture: 3 images of 4x5 pixels and their labels.
constexpr uint32_t n_images = 3, n_rows = 4, n_cols = 5;

Bytes fixture_pixels() {
    Bytes p(n_images * n_rows * n_cols);
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<unsigned char>(i * 37 + 11);
    return p;
}
const Bytes fixture_label_values{3, 0, 9};
Bytes fixture_images() { return idx_file(0x08, {n_images, n_rows, n_cols}, fixture_pixels()); }
Bytes fixture_labels() { return idx_file(0x08, {n_images}, fixture_label_values); }

/// Runs `parse`, which must either throw FormatError or return an array whose payload agrees with its
/// header. Any other exception fails the test (doctest reports it); a crash or UB would abort the run.
template <class Parse>
void expect_format_error_or_consistent(Parse&& parse) {
    try {
        const IdxArray a = parse();
        CHECK(a.rank() >= 1);
        CHECK(a.rank() <= 8);
        for (const int64_t d : a.dims) CHECK(d >= 0);
        CHECK(static_cast<int64_t>(a.bytes.size()) == a.numel() * a.element_size());
    } catch (const FormatError&) {
    }
}

std::string format_error_message(const auto& fn) {
    try {
        fn();
    } catch (const FormatError& e) {
        return e.what();
    }
    FAIL("expected a FormatError");
    return {};
}

}  // namespace

TEST_CASE("parse_idx reads a rank-3 u8 file") {
    const IdxArray a = tapegrad::data::parse_idx(fixture_images(), "images");
    CHECK(a.type == IdxType::u8);
    CHECK(a.dims == std::vector<int64_t>{3, 4, 5});
    CHECK(a.rank() == 3);
    CHECK(a.numel() == 60);
    CHECK(a.element_size() == 1);
    CHECK(a.bytes == fixture_pixels());
    const std::vector<float> f = a.to_vector<float>();
    REQUIRE(f.size() == 60);
    CHECK(f[1] == doctest::Approx(48.0));  // 1 * 37 + 11
}

TEST_CASE("parse_idx reads a rank-1 u8 file") {
    const IdxArray a = tapegrad::data::parse_idx(fixture_labels(), "labels");
    CHECK(a.type == IdxType::u8);
    CHECK(a.dims == std::vector<int64_t>{3});
    CHECK(a.bytes == fixture_label_values);
}

TEST_CASE("parse_idx accepts an empty dimension and an empty payload") {
    const IdxArray a = tapegrad::data::parse_idx(idx_file(0x0D, {0, 7}, {}), "empty");
    CHECK(a.type == IdxType::f32);
    CHECK(a.numel() == 0);
    CHECK(a.bytes.empty());
}

TEST_CASE("parse_idx converts big-endian multi-byte elements to host order") {
    using tapegrad::data::parse_idx;
    SUBCASE("i8") {
        const std::vector<int8_t> v{-1, 127, -128};
        const IdxArray a = parse_idx(idx_file(0x09, {3}, big_endian(v)), "i8");
        CHECK(a.type == IdxType::i8);
        CHECK(a.to_vector<int8_t>() == v);
        CHECK(a.to_vector<int>() == std::vector<int>{-1, 127, -128});
    }
    SUBCASE("i16") {
        const std::vector<int16_t> v{-2, 300, 0x1234, -32768};
        const IdxArray a = parse_idx(idx_file(0x0B, {2, 2}, big_endian(v)), "i16");
        CHECK(a.type == IdxType::i16);
        CHECK(a.element_size() == 2);
        CHECK(a.to_vector<int16_t>() == v);
        // The payload itself is in host order: memcpy gives the values back.
        int16_t second = 0;
        std::memcpy(&second, a.bytes.data() + 2, 2);
        CHECK(second == 300);
    }
    SUBCASE("i32") {
        const std::vector<int32_t> v{-100000, 0x01020304, 2147483647};
        const IdxArray a = parse_idx(idx_file(0x0C, {3, 1}, big_endian(v)), "i32");
        CHECK(a.type == IdxType::i32);
        CHECK(a.to_vector<int32_t>() == v);
        CHECK(a.to_vector<int64_t>()[0] == -100000);
    }
    SUBCASE("f32") {
        const std::vector<float> v{1.5f, -0.25f, 3.0e38f, 0.0f};
        const IdxArray a = parse_idx(idx_file(0x0D, {1, 2, 2}, big_endian(v)), "f32");
        CHECK(a.type == IdxType::f32);
        CHECK(a.to_vector<float>() == v);
    }
    SUBCASE("f64") {
        const std::vector<double> v{3.141592653589793, -1e300};
        const IdxArray a = parse_idx(idx_file(0x0E, {2}, big_endian(v)), "f64");
        CHECK(a.type == IdxType::f64);
        CHECK(a.element_size() == 8);
        CHECK(a.to_vector<double>() == v);
    }
    SUBCASE("the byte order is read as big-endian, whatever the host") {
        const IdxArray a = parse_idx(idx_file(0x0C, {1}, Bytes{0x01, 0x02, 0x03, 0x04}), "be");
        CHECK(a.to_vector<int32_t>()[0] == 0x01020304);
    }
}

TEST_CASE("parse_idx reads a rank-8 file") {
    const IdxArray a = tapegrad::data::parse_idx(idx_file(0x08, {1, 2, 1, 2, 1, 2, 1, 2}, Bytes(16, 7)), "r8");
    CHECK(a.rank() == 8);
    CHECK(a.numel() == 16);
}

TEST_CASE("gzip round trip: read_idx and parse_idx decompress, raw and gz agree") {
    const TempDir dir;
    const Bytes raw = fixture_images();
    const Bytes gz = gzip(raw);
    REQUIRE(gz.size() > 2);
    CHECK(gz[0] == 0x1F);

    const IdxArray from_raw = tapegrad::data::read_idx(dir.write("images-idx3-ubyte", raw));
    const IdxArray from_gz = tapegrad::data::read_idx(dir.write("images-idx3-ubyte.gz", gz));
    const IdxArray from_memory = tapegrad::data::parse_idx(gz, "memory.gz");
    // gzip is recognised by its magic bytes, whatever the name.
    const IdxArray from_unsuffixed = tapegrad::data::read_idx(dir.write("no-suffix", gz));
    for (const IdxArray* a : {&from_gz, &from_memory, &from_unsuffixed}) {
        CHECK(a->type == from_raw.type);
        CHECK(a->dims == from_raw.dims);
        CHECK(a->bytes == from_raw.bytes);
    }
    CHECK(from_raw.bytes == fixture_pixels());

    SUBCASE("a file written by gzopen/gzwrite") {
        const fs::path p = dir.path / "written-by-gzwrite.gz";
        gzFile f = gzopen(p.string().c_str(), "wb9");
        REQUIRE(f != nullptr);
        CHECK(gzwrite(f, raw.data(), static_cast<unsigned>(raw.size())) == static_cast<int>(raw.size()));
        REQUIRE(gzclose(f) == Z_OK);
        CHECK(tapegrad::data::read_idx(p).bytes == fixture_pixels());
    }
    SUBCASE("concatenated gzip members, as `cat a.gz b.gz` makes") {
        const Bytes head(raw.begin(), raw.begin() + 30), tail(raw.begin() + 30, raw.end());
        Bytes two = gzip(head);
        const Bytes second = gzip(tail);
        two.insert(two.end(), second.begin(), second.end());
        CHECK(tapegrad::data::parse_idx(two, "two-members.gz").bytes == fixture_pixels());
    }
    SUBCASE("multi-byte types survive gzip") {
        const std::vector<double> v{0.5, -2.0, 1e-300};
        const IdxArray a = tapegrad::data::read_idx(dir.write("f64.gz", gzip(idx_file(0x0E, {3}, big_endian(v)))));
        CHECK(a.to_vector<double>() == v);
    }
}

TEST_CASE("load_idx_images_labels builds an ImageSet from raw and gz files") {
    const TempDir dir;
    const auto check_set = [](const tapegrad::data::ImageSet& s) {
        CHECK(s.count == 3);
        CHECK(s.rows == 4);
        CHECK(s.cols == 5);
        CHECK(s.pixels == fixture_pixels());
        CHECK(s.labels == std::vector<uint8_t>{3, 0, 9});
    };
    check_set(tapegrad::data::load_idx_images_labels(dir.write("img", fixture_images()),
                                                     dir.write("lbl", fixture_labels())));
    check_set(tapegrad::data::load_idx_images_labels(dir.write("img.gz", gzip(fixture_images())),
                                                     dir.write("lbl.gz", gzip(fixture_labels()))));
    check_set(tapegrad::data::parse_idx_images_labels(fixture_images(), "img", gzip(fixture_labels()), "lbl"));
    // 10 classes is the default; label 9 needs at least 10.
    using tapegrad::data::parse_idx_images_labels;
    CHECK_THROWS_AS((void)parse_idx_images_labels(fixture_images(), "img", fixture_labels(), "lbl", 9), FormatError);
    CHECK_NOTHROW((void)parse_idx_images_labels(fixture_images(), "img", fixture_labels(), "lbl", 256));
}

TEST_CASE("load_mnist_folder finds raw and .gz files and names the one that is missing") {
    const TempDir dir;
    dir.write("train-images-idx3-ubyte.gz", gzip(fixture_images()));
    dir.write("train-labels-idx1-ubyte", fixture_labels());
    dir.write("t10k-images-idx3-ubyte", fixture_images());

    std::string msg = format_error_message([&] { (void)tapegrad::data::load_mnist_folder(dir.path); });
    CHECK(msg.find("load_mnist_folder: no 't10k-labels-idx1-ubyte' or 't10k-labels-idx1-ubyte.gz'") !=
          std::string::npos);
    CHECK(msg.find(dir.path.string()) != std::string::npos);

    dir.write("t10k-labels.idx1-ubyte.gz", gzip(idx_file(0x08, {3}, {1, 1, 2})));  // the dotted spelling
    const tapegrad::data::MnistFiles m = tapegrad::data::load_mnist_folder(dir.path);
    CHECK(m.train.count == 3);
    CHECK(m.train.labels == std::vector<uint8_t>{3, 0, 9});
    CHECK(m.test.rows == 4);
    CHECK(m.test.labels == std::vector<uint8_t>{1, 1, 2});

    msg = format_error_message([&] { (void)tapegrad::data::load_mnist_folder(dir.path / "absent"); });
    CHECK(msg.find("load_mnist_folder: cannot open folder") != std::string::npos);
    CHECK(msg.find("absent") != std::string::npos);
}

TEST_CASE("parse_idx errors name the file and the numbers") {
    using tapegrad::data::parse_idx;
    const auto msg_of = [](const Bytes& b) {
        return format_error_message([&] { (void)tapegrad::data::parse_idx(b, "f.idx"); });
    };
    const auto has = [](const std::string& msg, const char* part) {
        INFO("message: ", msg);
        CHECK(msg.find(part) != std::string::npos);
    };

    SUBCASE("shorter than the 4-byte header") {
        has(msg_of({}), "parse_idx: 'f.idx' is truncated: an IDX header needs 4 bytes, file holds 0");
        has(msg_of({0, 0, 8}), "file holds 3");
    }
    SUBCASE("magic bytes not zero") {
        has(msg_of(Bytes{0x50, 0x4B, 3, 4, 0, 0, 0, 0}),
            "parse_idx: 'f.idx' is not an IDX file: its first two bytes are 0x50 0x4B, expected 0x00 0x00");
        Bytes b = fixture_labels();
        b[1] = 0x01;
        has(msg_of(b), "0x00 0x01");
    }
    SUBCASE("unknown type code") {
        has(msg_of(idx_file(0x07, {1}, {0})), "'f.idx' has unknown element type code 0x07");
        has(msg_of(idx_file(0x0A, {1}, {0})), "type code 0x0A");
        has(msg_of(idx_file(0xFF, {1}, {0})), "type code 0xFF");
    }
    SUBCASE("rank outside 1..8") {
        has(msg_of(idx_file(0x08, {}, {})), "'f.idx' has rank 0; supported ranks are 1 to 8");
        has(msg_of(idx_file(0x08, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {0})), "has rank 9");
        has(msg_of(Bytes{0, 0, 8, 255}), "has rank 255");
    }
    SUBCASE("dimensions cut short") {
        has(msg_of(Bytes{0, 0, 8, 3, 0, 0, 0, 3, 0, 0}),
            "'f.idx' is truncated: a rank 3 header needs 16 bytes, file holds 10");
    }
    SUBCASE("a dimension above 2^31-1") {
        has(msg_of(idx_file(0x08, {1, 0xFFFFFFFF}, {0})),
            "'f.idx' dimension 1 is 4294967295, above the IDX limit 2147483647");
        has(msg_of(idx_file(0x08, {0x80000000}, {})), "dimension 0 is 2147483648");
    }
    SUBCASE("a byte count that overflows 64 bits") {
        const uint32_t big = 2147483647;
        has(msg_of(idx_file(0x0E, {big, big, big}, {})),
            "'f.idx' header sizes 2147483647x2147483647x2147483647 f64 overflow a 64-bit byte count");
        // With a zero dimension the size is 0 whatever the others say.
        CHECK(tapegrad::data::parse_idx(idx_file(0x0E, {big, big, big, 0}, {}), "z").numel() == 0);
    }
    SUBCASE("payload shorter than the header declares, checked before allocating") {
        has(msg_of(idx_file(0x08, {60000, 28, 28}, Bytes(41233, 0))),
            "parse_idx: 'f.idx' is truncated: header says 60000x28x28 u8 (47040000 bytes), file holds 41233 "
            "bytes of data");
        // A header that claims 4 EiB is refused from the sizes alone.
        has(msg_of(idx_file(0x08, {2147483647, 2147483647, 1}, {1, 2, 3})),
            "header says 2147483647x2147483647x1 u8 (4611686014132420609 bytes), file holds 3 bytes of data");
    }
    SUBCASE("payload longer than the header declares") {
        Bytes b = fixture_labels();
        b.push_back(0);
        b.push_back(0);
        has(msg_of(b), "parse_idx: 'f.idx' has 2 trailing bytes: header says 3 u8 (3 bytes), file holds 5 bytes");
    }
    SUBCASE("all errors are FormatError") {
        CHECK_THROWS_AS((void)parse_idx(Bytes{1, 2, 3, 4, 5}, "x"), FormatError);
        CHECK_THROWS_AS((void)parse_idx(Bytes{0, 0, 8, 1, 0, 0, 0, 2, 1}, "x"), FormatError);
    }
}

TEST_CASE("load_idx errors: MNIST-style messages, ranks, types, counts and labels") {
    using tapegrad::data::parse_idx_images_labels;
    const auto msg_of = [](const Bytes& images, const Bytes& labels, int classes = 10) {
        return format_error_message([&] {
            (void)parse_idx_images_labels(images, "train-images-idx3-ubyte", labels, "train-labels-idx1-ubyte",
                                          classes);
        });
    };
    const auto has = [](const std::string& msg, const char* part) {
        INFO("message: ", msg);
        CHECK(msg.find(part) != std::string::npos);
    };

    SUBCASE("truncated images file, counted in images") {
        CHECK(msg_of(idx_file(0x08, {60000, 28, 28}, Bytes(41233, 0)), fixture_labels()) ==
              "load_idx: 'train-images-idx3-ubyte' is truncated: header says 60000 images of 28x28 (47040000 "
              "bytes), file holds 41233 bytes of data");
        has(msg_of(fixture_images(), idx_file(0x08, {60000}, Bytes(100, 0))),
            "load_idx: 'train-labels-idx1-ubyte' is truncated: header says 60000 labels (60000 bytes), file holds "
            "100 bytes of data");
    }
    SUBCASE("images must be rank 3 u8") {
        has(msg_of(fixture_labels(), fixture_labels()),
            "load_idx: 'train-images-idx3-ubyte' does not hold images: expected rank 3 u8 (count x rows x cols), "
            "header says rank 1 u8 (3)");
        has(msg_of(idx_file(0x0B, {3, 4, 5}, Bytes(120, 0)), fixture_labels()), "header says rank 3 i16 (3x4x5)");
    }
    SUBCASE("labels must be rank 1 u8") {
        has(msg_of(fixture_images(), fixture_images()),
            "load_idx: 'train-labels-idx1-ubyte' does not hold labels: expected rank 1 u8 (count), header says "
            "rank 3 u8 (3x4x5)");
        has(msg_of(fixture_images(), idx_file(0x0C, {3}, Bytes(12, 0))), "header says rank 1 i32 (3)");
    }
    SUBCASE("counts differ") {
        has(msg_of(fixture_images(), idx_file(0x08, {2}, {1, 2})),
            "load_idx: 'train-images-idx3-ubyte' holds 3 images but 'train-labels-idx1-ubyte' holds 2 labels");
    }
    SUBCASE("no images") {
        has(msg_of(idx_file(0x08, {0, 28, 28}, {}), idx_file(0x08, {0}, {})),
            "'train-images-idx3-ubyte' holds no pixels: header says 0 images of 28x28");
        has(msg_of(idx_file(0x08, {3, 0, 28}, {}), fixture_labels()), "header says 3 images of 0x28");
    }
    SUBCASE("a label outside [0, num_classes)") {
        has(msg_of(fixture_images(), idx_file(0x08, {3}, {1, 11, 2})),
            "load_idx: 'train-labels-idx1-ubyte' label 11 at index 1 is out of range [0, 10)");
        has(msg_of(fixture_images(), fixture_labels(), 3), "label 3 at index 0 is out of range [0, 3)");
    }
    SUBCASE("num_classes itself is checked") {
        CHECK_THROWS_WITH_AS((void)parse_idx_images_labels(fixture_images(), "i", fixture_labels(), "l", 0),
                             "load_idx: num_classes is 0, expected 1 to 256 for u8 labels", tapegrad::ValueError);
    }
}

TEST_CASE("read_idx errors: missing files, folders, corrupt gzip") {
    const TempDir dir;
    const auto msg_of = [](const fs::path& p) {
        return format_error_message([&] { (void)tapegrad::data::read_idx(p); });
    };
    const auto has = [](const std::string& msg, const std::string& part) {
        INFO("message: ", msg);
        CHECK(msg.find(part) != std::string::npos);
    };

    SUBCASE("missing file: the path and the OS's reason") {
        const fs::path p = dir.path / "nope-idx3-ubyte";
        has(msg_of(p), "read_idx: cannot open '" + p.string() + "': No such file or directory");
        has(format_error_message([&] { (void)tapegrad::data::load_idx_images_labels(p, p); }),
            "load_idx: cannot open '" + p.string() + "'");
    }
    SUBCASE("a folder") {
        has(msg_of(dir.path), "read_idx: cannot read '" + dir.path.string() + "': it is a directory");
    }
    SUBCASE("a raw file's messages use its path") {
        const fs::path p = dir.write("short", Bytes{0, 0, 8, 1, 0, 0, 0, 9, 1});
        has(msg_of(p), "read_idx: '" + p.string() + "' is truncated: header says 9 u8 (9 bytes), file holds 1 bytes");
    }
    SUBCASE("gzip with a bad CRC: zlib's message") {
        Bytes gz = gzip(fixture_images());
        gz[gz.size() - 8] ^= 0x01;  // the CRC-32 in the gzip trailer
        const fs::path p = dir.write("crc.gz", gz);
        has(msg_of(p), "read_idx: '" + p.string() + "' is corrupt gzip: incorrect data check");
    }
    SUBCASE("gzip with a broken deflate stream") {
        Bytes gz = gzip(fixture_images());
        gz[10] = 0xFF;  // first byte of the deflate data: reserved block type 3
        has(msg_of(dir.write("broken.gz", gz)), "is corrupt gzip: invalid block type");
    }
    SUBCASE("a .gz suffix on data that is not gzip") {
        has(msg_of(dir.write("raw-but-named.gz", fixture_labels())),
            "is corrupt gzip: the file is named .gz but starts with 0x00 0x00, not the gzip magic 0x1F 0x8B");
        has(msg_of(dir.write("empty.gz", {})), "is corrupt gzip: the file is named .gz but holds only 0 bytes");
    }
    SUBCASE("gzip cut short") {
        const Bytes gz = gzip(fixture_images());
        has(msg_of(dir.write("cut.gz", Bytes(gz.begin(), gz.end() - 3))),
            "is corrupt gzip: unexpected end of compressed data");
    }
    SUBCASE("garbage after the gzip stream") {
        Bytes gz = gzip(fixture_images());
        gz.insert(gz.end(), {1, 2, 3});
        has(msg_of(dir.write("trailing.gz", gz)), "has 3 bytes of trailing garbage after its gzip stream");
    }
    SUBCASE("gzip that decompresses past the limit") {
        // The limit is 4 GiB in read_idx; the same code with a small limit shows the check.
        const Bytes gz = gzip(Bytes(100000, 0));
        has(format_error_message([&] { (void)tapegrad::data::detail::gunzip(gz, "bomb.gz", "read_idx", 1000); }),
            "read_idx: 'bomb.gz' decompresses to more than 1000 bytes, the limit for an IDX file");
        CHECK(tapegrad::data::detail::gunzip(gz, "ok.gz", "read_idx", 100000).size() == 100000);
    }
}

TEST_CASE("robustness: every truncation of a valid file is a FormatError") {
    using tapegrad::data::parse_idx;
    const Bytes images = fixture_images(), labels = fixture_labels();
    const Bytes images_gz = gzip(images), labels_gz = gzip(labels);
    int cuts = 0;
    for (const Bytes* file : {&images, &labels, &images_gz, &labels_gz}) {
        for (size_t n = 0; n < file->size(); ++n) {
            const Bytes cut(file->begin(), file->begin() + static_cast<std::ptrdiff_t>(n));
            INFO("file of ", file->size(), " bytes cut to ", n);
            CHECK_THROWS_AS((void)parse_idx(cut, "cut"), FormatError);
            ++cuts;
        }
    }
    for (size_t n = 0; n < images.size(); ++n) {
        const Bytes cut(images.begin(), images.begin() + static_cast<std::ptrdiff_t>(n));
        CHECK_THROWS_AS((void)tapegrad::data::parse_idx_images_labels(cut, "i", labels, "l"), FormatError);
    }
    for (size_t n = 0; n < labels.size(); ++n) {
        const Bytes cut(labels.begin(), labels.begin() + static_cast<std::ptrdiff_t>(n));
        CHECK_THROWS_AS((void)tapegrad::data::parse_idx_images_labels(images, "i", cut, "l"), FormatError);
    }
    MESSAGE("checked ", cuts, " truncations");
}

TEST_CASE("robustness: flipped header bytes give a FormatError or a fully consistent parse") {
    const Bytes images = fixture_images(), labels = fixture_labels();
    const std::array<unsigned char, 11> masks{0xFF, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x0F, 0xF0};
    int parsed = 0, rejected = 0;
    for (const Bytes* file : {&images, &labels}) {
        const size_t header = 4 + 4 * size_t{(*file)[3]};
        for (size_t pos = 0; pos < header; ++pos) {
            for (const unsigned char mask : masks) {
                Bytes b = *file;
                b[pos] ^= mask;
                INFO("byte ", pos, " xor ", int{mask});
                expect_format_error_or_consistent([&] { return tapegrad::data::parse_idx(b, "flip"); });
                try {
                    const auto s = file == &images ? tapegrad::data::parse_idx_images_labels(b, "i", labels, "l")
                                                   : tapegrad::data::parse_idx_images_labels(images, "i", b, "l");
                    CHECK(static_cast<int64_t>(s.pixels.size()) == s.count * s.rows * s.cols);
                    CHECK(static_cast<int64_t>(s.labels.size()) == s.count);
                    ++parsed;
                } catch (const FormatError&) {
                    ++rejected;
                }
            }
        }
    }
    // Every flip in these headers changes magic, type, rank or a size, so the loader refuses them all.
    CHECK(parsed == 0);
    CHECK(rejected == 24 * static_cast<int>(masks.size()));
}

TEST_CASE("robustness: random mutations never escape as anything but FormatError") {
    std::mt19937 rng(12345);
    const std::array<Bytes, 4> seeds{fixture_images(), fixture_labels(), gzip(fixture_images()),
                                     idx_file(0x0B, {2, 3}, big_endian(std::vector<int16_t>{1, -2, 3, -4, 5, -6}))};
    int ok = 0, rejected = 0;
    for (int iter = 0; iter < 20000; ++iter) {
        Bytes b = seeds[static_cast<size_t>(iter) % seeds.size()];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; ++e) {
            const size_t pos = rng() % (b.size() + 1);
            switch (rng() % 4) {
                case 0:
                    if (pos < b.size()) b[pos] = static_cast<unsigned char>(rng());
                    break;
                case 1:
                    b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos), static_cast<unsigned char>(rng()));
                    break;
                case 2:
                    if (pos < b.size()) b.erase(b.begin() + static_cast<std::ptrdiff_t>(pos));
                    break;
                default:
                    if (pos < 16 && pos < b.size()) b[pos] ^= static_cast<unsigned char>(1u << (rng() % 8));
            }
        }
        try {
            const IdxArray a = tapegrad::data::parse_idx(b, "mutant");
            REQUIRE(static_cast<int64_t>(a.bytes.size()) == a.numel() * a.element_size());
            ++ok;
        } catch (const FormatError&) {
            ++rejected;
        }
    }
    CHECK(ok + rejected == 20000);
    MESSAGE("random mutations: ", ok, " parsed consistently, ", rejected, " rejected with FormatError");
}

TEST_CASE("default_mnist_dir follows the same variables as cmake/fetch_mnist.sh") {
#ifndef _WIN32
    const auto saved = [](const char* var) -> std::pair<bool, std::string> {
        const char* v = std::getenv(var);
        return {v != nullptr, v ? v : ""};
    };
    const std::array<const char*, 4> vars{"TAPEGRAD_MNIST_DIR", "TAPEGRAD_DATA_DIR", "XDG_CACHE_HOME", "HOME"};
    std::array<std::pair<bool, std::string>, 4> old;
    for (size_t i = 0; i < vars.size(); ++i) old[i] = saved(vars[i]);

    for (const char* v : vars) unsetenv(v);
    CHECK(tapegrad::data::default_mnist_dir().empty());
    setenv("HOME", "/h", 1);
    CHECK(tapegrad::data::default_mnist_dir() == fs::path("/h/.cache/tapegrad/mnist"));
    setenv("XDG_CACHE_HOME", "/x", 1);
    CHECK(tapegrad::data::default_mnist_dir() == fs::path("/x/tapegrad/mnist"));
    setenv("TAPEGRAD_DATA_DIR", "", 1);  // empty counts as unset, as ${VAR:-...} in bash
    CHECK(tapegrad::data::default_mnist_dir() == fs::path("/x/tapegrad/mnist"));
    setenv("TAPEGRAD_DATA_DIR", "/d", 1);
    CHECK(tapegrad::data::default_mnist_dir() == fs::path("/d/mnist"));
    setenv("TAPEGRAD_MNIST_DIR", "/m", 1);
    CHECK(tapegrad::data::default_mnist_dir() == fs::path("/m"));

    for (size_t i = 0; i < vars.size(); ++i) {
        if (old[i].first) {
            setenv(vars[i], old[i].second.c_str(), 1);
        } else {
            unsetenv(vars[i]);
        }
    }
#endif
}

TEST_CASE("the real MNIST, when cmake/fetch_mnist.sh has fetched it") {
    const fs::path dir = tapegrad::data::default_mnist_dir();
    std::error_code ec;
    if (dir.empty() || !fs::is_directory(dir, ec)) {
        MESSAGE("skipped: no MNIST folder at '", dir.string(),
                "' (run cmake/fetch_mnist.sh or set TAPEGRAD_MNIST_DIR)");
        return;
    }
    const tapegrad::data::MnistFiles m = tapegrad::data::load_mnist_folder(dir);
    CHECK(m.train.count == 60000);
    CHECK(m.test.count == 10000);
    for (const tapegrad::data::ImageSet* s : {&m.train, &m.test}) {
        CHECK(s->rows == 28);
        CHECK(s->cols == 28);
        CHECK(static_cast<int64_t>(s->pixels.size()) == s->count * 28 * 28);
        REQUIRE(static_cast<int64_t>(s->labels.size()) == s->count);
        std::array<int64_t, 10> histogram{};
        for (const uint8_t l : s->labels) ++histogram[l];
        CHECK(std::accumulate(histogram.begin(), histogram.end(), int64_t{0}) == s->count);
        for (const int64_t h : histogram) CHECK(h > s->count / 20);  // every class well represented
        CHECK(*std::max_element(s->pixels.begin(), s->pixels.end()) == 255);
    }
    MESSAGE("loaded MNIST from '", dir.string(), "'");
}
