#pragma once
/// \file
/// Reader for IDX files, the format of MNIST and Fashion-MNIST, raw or gzip-compressed.
///
/// An IDX file is a 4-byte header `00 00 TYPE RANK`, then RANK big-endian 32-bit dimensions, then the
/// elements in row-major order, big-endian. This header returns plain data (no tensors), so it sits at the
/// bottom of `tapegrad::data` and a loader can turn an `ImageSet` into whatever tensor it needs.
///
/// Every header field is checked before anything is allocated: a corrupt or hostile file gives a
/// `FormatError` naming the file and the numbers, never a crash or an allocation the file cannot back.
/// Links with zlib (`-lz`).

#include <tapegrad/core/error.hpp>

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace tapegrad::data {

/// Element type codes of the IDX format (byte 2 of the header).
enum class IdxType : uint8_t { u8 = 0x08, i8 = 0x09, i16 = 0x0B, i32 = 0x0C, f32 = 0x0D, f64 = 0x0E };

/// Bytes per element of `type`: 1, 1, 2, 4, 4, 8 (0 for a value outside the enum).
[[nodiscard]] inline constexpr int64_t idx_element_size(IdxType type) noexcept {
    switch (type) {
        case IdxType::u8:
        case IdxType::i8: return 1;
        case IdxType::i16: return 2;
        case IdxType::i32:
        case IdxType::f32: return 4;
        case IdxType::f64: return 8;
    }
    return 0;
}

/// Short name of `type` for messages: "u8", "i8", "i16", "i32", "f32", "f64" ("?" outside the enum).
[[nodiscard]] inline constexpr std::string_view idx_type_name(IdxType type) noexcept {
    switch (type) {
        case IdxType::u8: return "u8";
        case IdxType::i8: return "i8";
        case IdxType::i16: return "i16";
        case IdxType::i32: return "i32";
        case IdxType::f32: return "f32";
        case IdxType::f64: return "f64";
    }
    return "?";
}

/// Largest file (raw, or after gzip decompression) `read_idx` accepts: 4 GiB. MNIST is 47 MB; the cap keeps
/// a gzip bomb or a wrong path from exhausting memory.
inline constexpr uint64_t idx_max_bytes = uint64_t{4} << 30;

/// A value type an IDX array can be converted to with `IdxArray::to_vector`.
template <class T>
concept IdxValue = std::is_arithmetic_v<T> && !std::same_as<T, bool>;

/// The contents of one IDX file: element type, dimensions (outermost first) and the payload, row-major.
/// Multi-byte elements are already in host byte order, so `bytes` can be `memcpy`'d into the matching
/// C++ type (`u8` -> uint8_t, `i16` -> int16_t, `f32` -> float...).
struct IdxArray {
    IdxType type = IdxType::u8;
    std::vector<int64_t> dims;
    std::vector<unsigned char> bytes;

    /// Number of dimensions (1 to 8 for a parsed file).
    [[nodiscard]] int64_t rank() const noexcept { return static_cast<int64_t>(dims.size()); }

    /// Number of elements: the product of `dims`. Exact for an array returned by `parse_idx`, which checked
    /// that `numel() * element_size() == bytes.size()`. (Multiplied unsigned: with a zero dimension, the
    /// dimensions before it may overflow on their own.)
    [[nodiscard]] int64_t numel() const noexcept {
        uint64_t n = 1;
        for (const int64_t d : dims) n *= static_cast<uint64_t>(d);
        return static_cast<int64_t>(n);
    }

    /// Bytes per element of `type`.
    [[nodiscard]] int64_t element_size() const noexcept { return idx_element_size(type); }

    /// The elements converted to `T` with `static_cast` (e.g. `to_vector<float>()` on a `u8` image file).
    template <IdxValue T>
    [[nodiscard]] std::vector<T> to_vector() const;
};

/// Images with their class labels, as in MNIST: `pixels` is [count, rows, cols] row-major, one byte per
/// pixel (0 = background for MNIST); `labels` is [count], each in [0, num_classes).
struct ImageSet {
    int64_t count = 0;
    int64_t rows = 0;
    int64_t cols = 0;
    std::vector<unsigned char> pixels;
    std::vector<uint8_t> labels;
};

/// The training and test sets of an MNIST-style folder.
struct MnistFiles {
    ImageSet train;
    ImageSet test;
};

namespace detail {

/// What a caller requires of a file beyond the format itself; checked right after the header, so that a
/// labels file passed as images says so instead of "truncated".
struct IdxExpect {
    int rank = 0;                   ///< 0: any rank
    bool u8_only = false;           ///< element type must be u8
    std::string_view noun;          ///< "images" / "labels": how messages count dimension 0 ("" = show dims)
    std::string_view layout;        ///< e.g. "count x rows x cols", for the rank/type message
};

[[nodiscard]] inline std::string hex_byte(unsigned char b) {
    constexpr char digits[] = "0123456789ABCDEF";
    return std::string{'0', 'x', digits[b >> 4], digits[b & 0xF]};
}

[[nodiscard]] inline std::string dims_string(std::span<const int64_t> dims) {
    std::string s;
    for (size_t i = 0; i < dims.size(); ++i) {
        if (i) s += 'x';
        s += std::to_string(dims[i]);
    }
    return s;
}

[[nodiscard]] inline bool is_idx_type_code(unsigned char code) noexcept {
    return code == 0x08 || code == 0x09 || code == 0x0B || code == 0x0C || code == 0x0D || code == 0x0E;
}

[[nodiscard]] inline uint32_t load_be32(const unsigned char* p) noexcept {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

[[nodiscard]] inline bool has_gzip_magic(std::span<const unsigned char> bytes) noexcept {
    return bytes.size() >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B;
}

/// "60000 images of 28x28 (47040000 bytes)" or "3x4x5 i16 (120 bytes)": what the header declares.
[[nodiscard]] inline std::string describe_payload(const IdxArray& a, uint64_t payload, const IdxExpect& expect) {
    std::string s;
    if (!expect.noun.empty() && !a.dims.empty()) {
        s = std::to_string(a.dims[0]) + " " + std::string(expect.noun);
        if (a.dims.size() > 1) s += " of " + dims_string(std::span(a.dims).subspan(1));
    } else {
        s = dims_string(a.dims) + " " + std::string(idx_type_name(a.type));
    }
    return s + " (" + std::to_string(payload) + " bytes)";
}

/// Parses an uncompressed IDX stream. `fn` names the public function in messages.
[[nodiscard]] inline IdxArray parse_idx_raw(std::span<const unsigned char> in, std::string_view name,
                                            std::string_view fn, const IdxExpect& expect) {
    TAPEGRAD_CHECK(in.size() >= 4, FormatError, fn, ": '", name,
                   "' is truncated: an IDX header needs 4 bytes, file holds ", in.size());
    TAPEGRAD_CHECK(in[0] == 0 && in[1] == 0, FormatError, fn, ": '", name,
                   "' is not an IDX file: its first two bytes are ", hex_byte(in[0]), " ", hex_byte(in[1]),
                   ", expected 0x00 0x00");
    TAPEGRAD_CHECK(is_idx_type_code(in[2]), FormatError, fn, ": '", name, "' has unknown element type code ",
                   hex_byte(in[2]), " (expected 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32 or 0x0E f64)");
    const int rank = in[3];
    TAPEGRAD_CHECK(rank >= 1 && rank <= 8, FormatError, fn, ": '", name, "' has rank ", rank,
                   "; supported ranks are 1 to 8");
    const size_t header = 4 + 4 * static_cast<size_t>(rank);
    TAPEGRAD_CHECK(in.size() >= header, FormatError, fn, ": '", name, "' is truncated: a rank ", rank,
                   " header needs ", header, " bytes, file holds ", in.size());

    IdxArray a;
    a.type = static_cast<IdxType>(in[2]);
    a.dims.reserve(static_cast<size_t>(rank));
    // Dimensions are 32-bit integers; one above INT32_MAX would be negative to most readers, so it is
    // treated as corruption. Each is below 2^31, so the byte count of 8 of them can still overflow: check.
    uint64_t payload = static_cast<uint64_t>(idx_element_size(a.type));
    bool overflow = false;
    for (int i = 0; i < rank; ++i) {
        const uint32_t d = load_be32(in.data() + 4 + 4 * static_cast<size_t>(i));
        TAPEGRAD_CHECK(d <= static_cast<uint32_t>(std::numeric_limits<int32_t>::max()), FormatError, fn, ": '",
                       name, "' dimension ", i, " is ", d, ", above the IDX limit 2147483647");
        a.dims.push_back(static_cast<int64_t>(d));
        if (d != 0 && payload > std::numeric_limits<uint64_t>::max() / d) overflow = true;
        payload *= d;
    }
    // With a zero dimension the true size is 0 (and so is the wrapped product): only then may it overflow.
    const bool has_zero = std::find(a.dims.begin(), a.dims.end(), int64_t{0}) != a.dims.end();
    TAPEGRAD_CHECK(!overflow || has_zero, FormatError, fn, ": '", name, "' header sizes ", dims_string(a.dims),
                   " ", idx_type_name(a.type), " overflow a 64-bit byte count");

    if (expect.rank != 0) {
        TAPEGRAD_CHECK(rank == expect.rank && (!expect.u8_only || a.type == IdxType::u8), FormatError, fn, ": '",
                       name, "' does not hold ", expect.noun, ": expected rank ", expect.rank,
                       expect.u8_only ? " u8" : "", " (", expect.layout, "), header says rank ", rank, " ",
                       idx_type_name(a.type), " (", dims_string(a.dims), ")");
    }

    const uint64_t present = in.size() - header;
    TAPEGRAD_CHECK(present >= payload, FormatError, fn, ": '", name, "' is truncated: header says ",
                   describe_payload(a, payload, expect), ", file holds ", present, " bytes of data");
    TAPEGRAD_CHECK(present == payload, FormatError, fn, ": '", name, "' has ", present - payload,
                   " trailing bytes: header says ", describe_payload(a, payload, expect), ", file holds ", present,
                   " bytes of data");

    // payload <= in.size(), so it fits in size_t and is backed by real bytes.
    a.bytes.assign(in.begin() + static_cast<std::ptrdiff_t>(header), in.end());
    const size_t width = static_cast<size_t>(a.element_size());
    if constexpr (std::endian::native == std::endian::little) {
        if (width > 1) {
            for (size_t off = 0; off < a.bytes.size(); off += width) {
                std::reverse(a.bytes.begin() + static_cast<std::ptrdiff_t>(off),
                             a.bytes.begin() + static_cast<std::ptrdiff_t>(off + width));
            }
        }
    }
    return a;
}

/// Inflates a gzip (or zlib) stream, concatenated gzip members included, refusing more than `max_bytes` of
/// output. The buffer grows with the data actually produced, never from a header field.
[[nodiscard]] inline std::vector<unsigned char> gunzip(std::span<const unsigned char> in, std::string_view name,
                                                       std::string_view fn, uint64_t max_bytes = idx_max_bytes) {
    z_stream zs{};
    const int init = inflateInit2(&zs, 15 + 32);  // 15-bit window, detect gzip or zlib header
    if (init == Z_MEM_ERROR) throw std::bad_alloc();
    TAPEGRAD_CHECK(init == Z_OK, InternalError, fn, ": inflateInit2 failed for '", name, "' (zlib code ", init,
                   ")");
    const std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);

    constexpr size_t max_chunk = size_t{1} << 30;  // zlib counts in 32-bit uInt
    std::vector<unsigned char> out;
    size_t out_len = 0;
    size_t in_pos = 0;  // bytes of `in` handed to zlib so far
    for (;;) {
        if (zs.avail_in == 0 && in_pos < in.size()) {
            const size_t n = std::min(in.size() - in_pos, max_chunk);
            zs.next_in = const_cast<Bytef*>(in.data() + in_pos);  // zlib never writes through next_in
            zs.avail_in = static_cast<uInt>(n);
            in_pos += n;
        }
        if (out_len == out.size()) {
            TAPEGRAD_CHECK(out.size() < max_bytes, FormatError, fn, ": '", name, "' decompresses to more than ",
                           max_bytes, " bytes, the limit for an IDX file");
            const uint64_t grown = std::max<uint64_t>(uint64_t{1} << 16, uint64_t{out.size()} * 2);
            out.resize(static_cast<size_t>(std::min(grown, max_bytes)));
        }
        const size_t room = std::min(out.size() - out_len, max_chunk);
        zs.next_out = out.data() + out_len;
        zs.avail_out = static_cast<uInt>(room);
        const int rc = inflate(&zs, Z_NO_FLUSH);
        out_len += room - zs.avail_out;
        const size_t unread = zs.avail_in + (in.size() - in_pos);

        if (rc == Z_STREAM_END) {
            if (unread == 0) break;
            const unsigned char* next = zs.avail_in ? zs.next_in : in.data() + in_pos;
            const size_t next_len = zs.avail_in ? zs.avail_in : in.size() - in_pos;
            TAPEGRAD_CHECK(has_gzip_magic({next, next_len}), FormatError, fn, ": '", name, "' has ", unread,
                           " bytes of trailing garbage after its gzip stream");
            inflateReset(&zs);  // another gzip member follows (as `cat a.gz b.gz` makes)
            continue;
        }
        if (rc == Z_MEM_ERROR) throw std::bad_alloc();
        TAPEGRAD_CHECK(rc != Z_NEED_DICT, FormatError, fn, ": '", name,
                       "' is corrupt gzip: the stream asks for a preset dictionary");
        TAPEGRAD_CHECK(rc == Z_OK || rc == Z_BUF_ERROR, FormatError, fn, ": '", name, "' is corrupt gzip: ",
                       zs.msg ? zs.msg : "zlib error", " (after ", out_len, " bytes of output)");
        // All input consumed, room left for output, and still no end of stream: the file was cut short.
        TAPEGRAD_CHECK(unread != 0 || zs.avail_out == 0, FormatError, fn, ": '", name,
                       "' is corrupt gzip: unexpected end of compressed data after ", in.size(), " bytes (",
                       out_len, " bytes of output)");
    }
    out.resize(out_len);
    return out;
}

[[nodiscard]] inline IdxArray parse_idx_any(std::span<const unsigned char> in, std::string_view name,
                                            std::string_view fn, const IdxExpect& expect, bool force_gzip) {
    if (force_gzip || has_gzip_magic(in)) {
        const std::vector<unsigned char> raw = gunzip(in, name, fn);
        return parse_idx_raw(raw, name, fn, expect);
    }
    return parse_idx_raw(in, name, fn, expect);
}

/// Reads a whole file, refusing more than `idx_max_bytes`. Errors name the path and the OS's reason.
[[nodiscard]] inline std::vector<unsigned char> read_file_bytes(const std::filesystem::path& path,
                                                                std::string_view fn) {
    std::error_code ec;
    TAPEGRAD_CHECK(!std::filesystem::is_directory(path, ec), FormatError, fn, ": cannot read '", path.string(),
                   "': it is a directory");
    errno = 0;
#ifdef _WIN32
    std::FILE* raw = _wfopen(path.c_str(), L"rb");
#else
    std::FILE* raw = std::fopen(path.c_str(), "rb");
#endif
    const int open_errno = errno;
    TAPEGRAD_CHECK(raw != nullptr, FormatError, fn, ": cannot open '", path.string(),
                   "': ", std::generic_category().message(open_errno));
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(raw, std::fclose);

    std::vector<unsigned char> bytes;
    const uintmax_t size_hint = std::filesystem::file_size(path, ec);
    if (!ec && size_hint <= idx_max_bytes) bytes.reserve(static_cast<size_t>(size_hint));
    constexpr size_t chunk = size_t{1} << 20;
    for (;;) {
        const size_t old = bytes.size();
        TAPEGRAD_CHECK(old <= idx_max_bytes, FormatError, fn, ": '", path.string(), "' is larger than ",
                       idx_max_bytes, " bytes, the limit for an IDX file");
        bytes.resize(old + chunk);
        errno = 0;
        const size_t n = std::fread(bytes.data() + old, 1, chunk, file.get());
        const int read_errno = errno;
        bytes.resize(old + n);
        if (n < chunk) {
            TAPEGRAD_CHECK(!std::ferror(file.get()), FormatError, fn, ": error reading '", path.string(),
                           "': ", std::generic_category().message(read_errno));
            break;
        }
    }
    return bytes;
}

[[nodiscard]] inline bool has_gz_suffix(const std::filesystem::path& path) {
    return path.extension() == ".gz";
}

[[nodiscard]] inline IdxArray read_idx_impl(const std::filesystem::path& path, std::string_view fn,
                                            const IdxExpect& expect) {
    const std::vector<unsigned char> bytes = read_file_bytes(path, fn);
    // zlib's own complaint about a raw file named .gz ("unknown compression method") would hide the cause.
    if (has_gz_suffix(path) && !has_gzip_magic(bytes)) {
        TAPEGRAD_CHECK(bytes.size() >= 2, FormatError, fn, ": '", path.string(),
                       "' is corrupt gzip: the file is named .gz but holds only ", bytes.size(), " bytes");
        tapegrad::detail::raise<FormatError>(fn, ": '", path.string(),
                                             "' is corrupt gzip: the file is named .gz but starts with ",
                                             hex_byte(bytes[0]), " ", hex_byte(bytes[1]),
                                             ", not the gzip magic 0x1F 0x8B");
    }
    return parse_idx_any(bytes, path.string(), fn, expect, false);
}

inline constexpr IdxExpect expect_images{3, true, "images", "count x rows x cols"};
inline constexpr IdxExpect expect_labels{1, true, "labels", "count"};

/// Checks that `images` and `labels` (already known to be rank 3 u8 and rank 1 u8) belong together.
[[nodiscard]] inline ImageSet make_image_set(IdxArray images, std::string_view images_name, IdxArray labels,
                                             std::string_view labels_name, int num_classes, std::string_view fn) {
    TAPEGRAD_CHECK(num_classes >= 1 && num_classes <= 256, ValueError, fn, ": num_classes is ", num_classes,
                   ", expected 1 to 256 for u8 labels");
    ImageSet set;
    set.count = images.dims[0];
    set.rows = images.dims[1];
    set.cols = images.dims[2];
    TAPEGRAD_CHECK(set.count > 0 && set.rows > 0 && set.cols > 0, FormatError, fn, ": '", images_name,
                   "' holds no pixels: header says ", set.count, " images of ", set.rows, "x", set.cols);
    TAPEGRAD_CHECK(labels.dims[0] == set.count, FormatError, fn, ": '", images_name, "' holds ", set.count,
                   " images but '", labels_name, "' holds ", labels.dims[0], " labels");
    for (size_t i = 0; i < labels.bytes.size(); ++i) {
        TAPEGRAD_CHECK(labels.bytes[i] < num_classes, FormatError, fn, ": '", labels_name, "' label ",
                       int{labels.bytes[i]}, " at index ", i, " is out of range [0, ", num_classes, ")");
    }
    set.pixels = std::move(images.bytes);
    if constexpr (std::is_same_v<uint8_t, unsigned char>) {
        set.labels = std::move(labels.bytes);
    } else {
        set.labels.assign(labels.bytes.begin(), labels.bytes.end());
    }
    return set;
}

template <class Src, class T>
[[nodiscard]] std::vector<T> convert_elements(const std::vector<unsigned char>& bytes) {
    std::vector<T> out(bytes.size() / sizeof(Src));
    for (size_t i = 0; i < out.size(); ++i) {
        Src v;
        std::memcpy(&v, bytes.data() + i * sizeof(Src), sizeof(Src));
        out[i] = static_cast<T>(v);
    }
    return out;
}

}  // namespace detail

template <IdxValue T>
std::vector<T> IdxArray::to_vector() const {
    switch (type) {
        case IdxType::u8: return detail::convert_elements<uint8_t, T>(bytes);
        case IdxType::i8: return detail::convert_elements<int8_t, T>(bytes);
        case IdxType::i16: return detail::convert_elements<int16_t, T>(bytes);
        case IdxType::i32: return detail::convert_elements<int32_t, T>(bytes);
        case IdxType::f32: return detail::convert_elements<float, T>(bytes);
        case IdxType::f64: return detail::convert_elements<double, T>(bytes);
    }
    tapegrad::detail::raise<ValueError>("IdxArray::to_vector: invalid element type code ",
                                        detail::hex_byte(static_cast<unsigned char>(type)));
}

/// Parses the bytes of an IDX file: raw, or gzip-compressed (recognised by its magic bytes 1f 8b). `name`
/// (usually the file name) is only used in error messages. Throws FormatError for anything that is not a
/// well-formed IDX file: bad magic or type code, rank outside 1..8, a dimension above 2^31-1, a byte count
/// that overflows, a payload shorter or longer than the header declares, or corrupt gzip.
[[nodiscard]] inline IdxArray parse_idx(std::span<const unsigned char> file_bytes, std::string_view name) {
    return detail::parse_idx_any(file_bytes, name, "parse_idx", {}, false);
}

/// Reads and parses an IDX file, raw or gzip-compressed (magic 1f 8b or a `.gz` suffix). Throws FormatError
/// when the file cannot be opened or read (naming the path and the OS's reason), is larger than
/// `idx_max_bytes` (raw or decompressed), or is not a well-formed IDX file (see `parse_idx`).
[[nodiscard]] inline IdxArray read_idx(const std::filesystem::path& path) {
    return detail::read_idx_impl(path, "read_idx", {});
}

/// Builds an ImageSet from the bytes of an images file (rank 3 u8: count x rows x cols) and a labels file
/// (rank 1 u8: count), each raw or gzip. Throws FormatError when either is malformed, holds the wrong rank
/// or type, holds no images, the counts differ or a label is >= num_classes; ValueError unless num_classes
/// is in [1, 256].
[[nodiscard]] inline ImageSet parse_idx_images_labels(std::span<const unsigned char> images,
                                                      std::string_view images_name,
                                                      std::span<const unsigned char> labels,
                                                      std::string_view labels_name, int num_classes = 10) {
    constexpr std::string_view fn = "load_idx";
    IdxArray im = detail::parse_idx_any(images, images_name, fn, detail::expect_images, false);
    IdxArray lb = detail::parse_idx_any(labels, labels_name, fn, detail::expect_labels, false);
    return detail::make_image_set(std::move(im), images_name, std::move(lb), labels_name, num_classes, fn);
}

/// Loads an images file and its labels file (raw or gzip) into an ImageSet: pixels [count, rows, cols],
/// labels [count]. Errors as `read_idx` and `parse_idx_images_labels`, naming the offending path.
[[nodiscard]] inline ImageSet load_idx_images_labels(const std::filesystem::path& images,
                                                     const std::filesystem::path& labels, int num_classes = 10) {
    constexpr std::string_view fn = "load_idx";
    IdxArray im = detail::read_idx_impl(images, fn, detail::expect_images);
    IdxArray lb = detail::read_idx_impl(labels, fn, detail::expect_labels);
    return detail::make_image_set(std::move(im), images.string(), std::move(lb), labels.string(), num_classes, fn);
}

/// Loads the four files of an MNIST-style folder (MNIST, Fashion-MNIST): `train-images-idx3-ubyte`,
/// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each raw or with a `.gz`
/// suffix (the raw file wins when both exist; the `train-images.idx3-ubyte` spelling is accepted too).
/// Throws FormatError naming the folder and the file when one is missing, and as `load_idx_images_labels`.
[[nodiscard]] inline MnistFiles load_mnist_folder(const std::filesystem::path& dir) {
    std::error_code ec;
    const bool is_dir = std::filesystem::is_directory(dir, ec);
    TAPEGRAD_CHECK(is_dir, FormatError, "load_mnist_folder: cannot open folder '", dir.string(), "': ",
                   ec ? ec.message() : std::string("not a directory"));
    const auto find = [&](std::string_view base) {
        // "train-images-idx3-ubyte" is also distributed as "train-images.idx3-ubyte".
        std::string dotted(base);
        dotted[dotted.rfind('-', dotted.rfind('-') - 1)] = '.';
        for (const std::string& candidate :
             {std::string(base), std::string(base) + ".gz", dotted, dotted + ".gz"}) {
            std::error_code e;
            const std::filesystem::path p = dir / candidate;
            if (std::filesystem::is_regular_file(p, e)) return p;
        }
        tapegrad::detail::raise<FormatError>("load_mnist_folder: no '", base, "' or '", base, ".gz' in '",
                                             dir.string(), "' (cmake/fetch_mnist.sh downloads MNIST)");
    };
    MnistFiles files;
    files.train = load_idx_images_labels(find("train-images-idx3-ubyte"), find("train-labels-idx1-ubyte"));
    files.test = load_idx_images_labels(find("t10k-images-idx3-ubyte"), find("t10k-labels-idx1-ubyte"));
    // A model trained on one image size cannot be tested on another: say so now, not after an epoch.
    TAPEGRAD_CHECK(files.train.rows == files.test.rows && files.train.cols == files.test.cols, ShapeError,
                   "load_mnist_folder: '", dir.string(), "': the training images are ", files.train.rows, "x",
                   files.train.cols, " but the test images are ", files.test.rows, "x", files.test.cols);
    return files;
}

/// The folder `cmake/fetch_mnist.sh` fills: `$TAPEGRAD_MNIST_DIR` when set, else
/// `${TAPEGRAD_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tapegrad}/mnist`. Empty when none of these
/// variables is set. The folder may not exist.
[[nodiscard]] inline std::filesystem::path default_mnist_dir() {
    const auto env = [](const char* var) -> std::string {
        const char* v = std::getenv(var);
        return v ? std::string(v) : std::string();
    };
    if (std::string d = env("TAPEGRAD_MNIST_DIR"); !d.empty()) return d;
    std::filesystem::path base;
    if (std::string d = env("TAPEGRAD_DATA_DIR"); !d.empty()) {
        base = d;
    } else if (std::string x = env("XDG_CACHE_HOME"); !x.empty()) {
        base = std::filesystem::path(x) / "tapegrad";
    } else if (std::string h = env("HOME"); !h.empty()) {
        base = std::filesystem::path(h) / ".cache" / "tapegrad";
    } else {
        return {};
    }
    return base / "mnist";
}

}  // namespace tapegrad::data
