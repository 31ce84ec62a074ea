#pragma once
/// \file
/// The safetensors file format at the byte level, independent of any tensor type.
///
/// Layout (https://github.com/huggingface/safetensors, "Format"):
///
///     [8 bytes]  N, the header size, unsigned 64-bit little-endian
///     [N bytes]  UTF-8 JSON object, padded with spaces:
///                {"__metadata__": {"k": "v", ...},
///                 "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
///     [rest]     the byte buffer; each tensor's little-endian, row-major bytes lie at [begin, end)
///
/// `decode_safetensors` accepts a file only if it passes every rule the reference implementation checks, and
/// a few it leaves to luck (duplicate keys): any file it accepts can be written back with
/// `encode_safetensors`, and `encode(decode(encode(f))) == encode(f)` byte for byte.

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#if defined(_WIN32)
#include <io.h>
#include <process.h>
#else
#include <fcntl.h>
#include <unistd.h>
#endif

#include <nlohmann/json.hpp>

#include "tapegrad/core/error.hpp"
#include "tapegrad/util/atomic_file.hpp"

namespace tapegrad::io {

/// Element types a safetensors file can hold here (a subset of the reference's: no U16/U32/U64/F8).
enum class Dtype { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

/// Every `Dtype`, in declaration order.
inline constexpr std::array<Dtype, 10> all_dtypes = {Dtype::F64, Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::I64,
                                                     Dtype::I32, Dtype::I16, Dtype::I8,  Dtype::U8,   Dtype::BOOL};

namespace detail {

using ::tapegrad::detail::concat;
using ::tapegrad::detail::raise;

/// True when `d` is one of the named enumerators (a `static_cast<Dtype>(42)` is not).
[[nodiscard]] constexpr bool is_valid_dtype(Dtype d) noexcept {
    return static_cast<unsigned>(d) <= static_cast<unsigned>(Dtype::BOOL);
}

}  // namespace detail

/// The name a safetensors header uses for `d`: `"F32"`, `"BF16"`, `"BOOL"`... Throws ValueError for a
/// value that is not one of the enumerators.
[[nodiscard]] inline std::string_view dtype_name(Dtype d) {
    switch (d) {
        case Dtype::F64: return "F64";
        case Dtype::F32: return "F32";
        case Dtype::F16: return "F16";
        case Dtype::BF16: return "BF16";
        case Dtype::I64: return "I64";
        case Dtype::I32: return "I32";
        case Dtype::I16: return "I16";
        case Dtype::I8: return "I8";
        case Dtype::U8: return "U8";
        case Dtype::BOOL: return "BOOL";
    }
    ::tapegrad::detail::raise<ValueError>("dtype_name: invalid Dtype value ", static_cast<int>(d));
}

/// Bytes per element of `d` (BOOL is one byte). Throws ValueError for a value that is not an enumerator.
[[nodiscard]] inline std::size_t dtype_size(Dtype d) {
    switch (d) {
        case Dtype::F64:
        case Dtype::I64: return 8;
        case Dtype::F32:
        case Dtype::I32: return 4;
        case Dtype::F16:
        case Dtype::BF16:
        case Dtype::I16: return 2;
        case Dtype::I8:
        case Dtype::U8:
        case Dtype::BOOL: return 1;
    }
    ::tapegrad::detail::raise<ValueError>("dtype_size: invalid Dtype value ", static_cast<int>(d));
}

/// The `Dtype` named `name` (exact, case-sensitive: `"F32"`), or nullopt for any other string.
[[nodiscard]] inline std::optional<Dtype> parse_dtype(std::string_view name) noexcept {
    for (Dtype d : all_dtypes) {
        if (dtype_name(d) == name) return d;
    }
    return std::nullopt;
}

/// One tensor of a safetensors file: its name, element type, shape (`[]` for a scalar) and raw bytes,
/// little-endian, row-major. `data.size()` must be `product(shape) * dtype_size(dtype)`.
struct StEntry {
    std::string name;
    Dtype dtype = Dtype::F32;
    std::vector<std::int64_t> shape;
    std::vector<unsigned char> data;
};

/// The content of a safetensors file: its tensors (any order; decoding gives them sorted by name) and the
/// free-form string map stored under `"__metadata__"`.
struct StFile {
    std::vector<StEntry> tensors;
    std::map<std::string, std::string> metadata;

    /// The tensor named `name`, or nullptr.
    [[nodiscard]] const StEntry* find(std::string_view name) const noexcept {
        for (const StEntry& e : tensors) {
            if (e.name == name) return &e;
        }
        return nullptr;
    }
    /// The tensor named `name`, or nullptr.
    [[nodiscard]] StEntry* find(std::string_view name) noexcept {
        for (StEntry& e : tensors) {
            if (e.name == name) return &e;
        }
        return nullptr;
    }
};

/// The largest header (the N of the layout) accepted or written, as in the reference implementation.
inline constexpr std::uint64_t max_safetensors_header_size = 100'000'000;

namespace detail {

/// Rank of `d` in the reference writer's layout order: it sorts tensors by descending dtype, in the order
/// of its Rust enum (BOOL < U8 < I8 < I16 < F16 < BF16 < I32 < F32 < F64 < I64), then by name.
[[nodiscard]] inline int st_writer_rank(Dtype d) {
    switch (d) {
        case Dtype::BOOL: return 0;
        case Dtype::U8: return 1;
        case Dtype::I8: return 2;
        case Dtype::I16: return 3;
        case Dtype::F16: return 4;
        case Dtype::BF16: return 5;
        case Dtype::I32: return 6;
        case Dtype::F32: return 7;
        case Dtype::F64: return 8;
        case Dtype::I64: return 9;
    }
    raise<ValueError>("st_writer_rank: invalid Dtype value ", static_cast<int>(d));
}

/// `s` for an error message: single-quoted, cut after 200 bytes so a hostile name cannot make a huge one.
[[nodiscard]] inline std::string st_quote(std::string_view s) {
    constexpr std::size_t max_len = 200;
    std::string out = "'";
    out.append(s.substr(0, max_len));
    out += s.size() > max_len ? "'..." : "'";
    return out;
}

/// `[2, 3]`; past 16 dimensions only the first 16 and the count are shown.
[[nodiscard]] inline std::string st_shape_string(std::span<const std::int64_t> shape) {
    constexpr std::size_t max_dims = 16;
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size() && i < max_dims; ++i) {
        if (i > 0) out += ", ";
        out += std::to_string(shape[i]);
    }
    if (shape.size() > max_dims) out += ", ... (" + std::to_string(shape.size()) + " dims)";
    out += "]";
    return out;
}

/// Bytes a tensor of `shape` and `dtype` needs, or nullopt when a dimension is negative or the count
/// overflows 64 bits.
[[nodiscard]] inline std::optional<std::uint64_t> st_byte_count(std::span<const std::int64_t> shape, Dtype dtype) {
    std::uint64_t n = dtype_size(dtype);
    bool zero = false;
    bool overflow = false;
    for (std::int64_t dim : shape) {
        if (dim < 0) return std::nullopt;
        const auto d = static_cast<std::uint64_t>(dim);
        if (d == 0) zero = true;
        else if (n > std::numeric_limits<std::uint64_t>::max() / d) overflow = true;
        else n *= d;
    }
    // A zero dimension makes the tensor empty however large the others are, but we still reject the
    // overflow, as the reference does for most orders of the dimensions: its reader could refuse the file.
    if (overflow) return std::nullopt;
    return zero ? 0 : n;
}

/// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
[[nodiscard]] inline bool st_is_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = 0;
        std::uint32_t cp = 0;
        std::uint32_t min = 0;
        if (c < 0x80) { ++i; continue; }
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return false;
        if (s.size() - i < len) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

/// Appends `s` as a JSON string literal, escaped exactly as the reference writer (serde_json) does: `"`
/// and `\`, the short forms \b \t \n \f \r, other control bytes as lowercase \u00xx, all else verbatim.
inline void st_append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\t': out += "\\t"; break;
            case '\n': out += "\\n"; break;
            case '\f': out += "\\f"; break;
            case '\r': out += "\\r"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 0xF];
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
}

/// The encoder behind `encode_safetensors` and `save_safetensors`; `where` starts every error message.
[[nodiscard]] inline std::vector<unsigned char> st_encode(const StFile& file, const std::string& where) {
    // Check everything first, so a bad entry throws before anything is built or written.
    for (const auto& [key, value] : file.metadata) {
        TAPEGRAD_CHECK(st_is_utf8(key), FormatError, where, ": metadata key ", st_quote(key),
                       " is not valid UTF-8");
        TAPEGRAD_CHECK(st_is_utf8(value), FormatError, where, ": metadata value for key ", st_quote(key),
                       " is not valid UTF-8");
    }
    std::vector<const StEntry*> order;
    order.reserve(file.tensors.size());
    std::uint64_t data_size = 0;
    for (const StEntry& e : file.tensors) {
        TAPEGRAD_CHECK(st_is_utf8(e.name), FormatError, where, ": tensor name ", st_quote(e.name),
                       " is not valid UTF-8");
        TAPEGRAD_CHECK(e.name != "__metadata__", FormatError, where,
                       ": a tensor cannot be named '__metadata__' (the key is reserved for metadata)");
        TAPEGRAD_CHECK(is_valid_dtype(e.dtype), FormatError, where, ": tensor ", st_quote(e.name),
                       " has an invalid Dtype value ", static_cast<int>(e.dtype));
        for (std::size_t i = 0; i < e.shape.size(); ++i) {
            TAPEGRAD_CHECK(e.shape[i] >= 0, FormatError, where, ": tensor ", st_quote(e.name), ": shape ",
                           st_shape_string(e.shape), " has a negative dimension at index ", i);
        }
        const std::optional<std::uint64_t> need = st_byte_count(e.shape, e.dtype);
        TAPEGRAD_CHECK(need.has_value(), FormatError, where, ": tensor ", st_quote(e.name), ": shape ",
                       st_shape_string(e.shape), " of ", dtype_name(e.dtype), " overflows a 64-bit byte count");
        TAPEGRAD_CHECK(*need == e.data.size(), FormatError, where, ": tensor ", st_quote(e.name), " has ",
                       e.data.size(), " bytes of data, but shape ", st_shape_string(e.shape), " of ",
                       dtype_name(e.dtype), " needs ", *need);
        data_size += *need;  // cannot overflow: every term is the size of a vector in memory
        order.push_back(&e);
    }
    // The reference writer's order: descending dtype (alignment), then name, bytewise.
    std::sort(order.begin(), order.end(), [](const StEntry* a, const StEntry* b) {
        const int ra = st_writer_rank(a->dtype);
        const int rb = st_writer_rank(b->dtype);
        return ra != rb ? ra > rb : a->name < b->name;
    });
    {
        std::vector<const StEntry*> by_name = order;
        std::sort(by_name.begin(), by_name.end(),
                  [](const StEntry* a, const StEntry* b) { return a->name < b->name; });
        const auto dup = std::adjacent_find(by_name.begin(), by_name.end(), [](const StEntry* a, const StEntry* b) {
            return a->name == b->name;
        });
        TAPEGRAD_CHECK(dup == by_name.end(), FormatError, where, ": two tensors are named ", st_quote((*dup)->name));
    }

    std::string header = "{";
    bool first = true;
    if (!file.metadata.empty()) {
        header += "\"__metadata__\":{";
        for (const auto& [key, value] : file.metadata) {
            if (!first) header += ',';
            first = false;
            st_append_json_string(header, key);
            header += ':';
            st_append_json_string(header, value);
        }
        header += '}';
        first = false;
    }
    std::uint64_t offset = 0;
    for (const StEntry* e : order) {
        if (!first) header += ',';
        first = false;
        st_append_json_string(header, e->name);
        header += ":{\"dtype\":\"";
        header += dtype_name(e->dtype);
        header += "\",\"shape\":[";
        for (std::size_t i = 0; i < e->shape.size(); ++i) {
            if (i > 0) header += ',';
            header += std::to_string(e->shape[i]);
        }
        header += "],\"data_offsets\":[";
        header += std::to_string(offset);
        header += ',';
        offset += e->data.size();
        header += std::to_string(offset);
        header += "]}";
    }
    header += '}';
    // Pad to a multiple of 8 so the byte buffer, and each tensor in it, starts 8-byte aligned.
    header.append((8 - header.size() % 8) % 8, ' ');
    TAPEGRAD_CHECK(header.size() <= max_safetensors_header_size, FormatError, where, ": the header would take ",
                   header.size(), " bytes, over the ", max_safetensors_header_size,
                   "-byte limit readers enforce");

    std::vector<unsigned char> out;
    out.reserve(8 + header.size() + static_cast<std::size_t>(data_size));
    auto n = static_cast<std::uint64_t>(header.size());
    for (int i = 0; i < 8; ++i) {
        out.push_back(static_cast<unsigned char>(n & 0xFF));
        n >>= 8;
    }
    out.insert(out.end(), header.begin(), header.end());
    for (const StEntry* e : order) out.insert(out.end(), e->data.begin(), e->data.end());
    return out;
}

/// One tensor's header entry while it is being parsed.
struct StHeaderEntry {
    std::string name;
    std::optional<Dtype> dtype;
    std::optional<std::vector<std::int64_t>> shape;
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    bool has_offsets = false;
};

/// nlohmann SAX handler that checks the header's structure as it streams by and keeps only what it
/// needs. Any value in a place the format does not allow throws at once, so nesting never goes deeper
/// than the format's own three levels and no JSON tree is built.
class StHeaderSax {
public:
    using json = nlohmann::json;

    explicit StHeaderSax(const std::string& where) : where_(where) {}

    std::vector<StHeaderEntry> entries;
    std::map<std::string, std::string> metadata;

    bool null() { unexpected("null"); }
    bool boolean(bool) { unexpected("a boolean"); }
    bool number_integer(json::number_integer_t v) {
        if (v < 0) {
            if (state_ == State::shape_item) {
                fail_entry("shape ", st_shape_string(*cur_.shape), " is followed by a negative dimension ", v);
            }
            if (state_ == State::offsets_item) fail_entry("data_offsets holds a negative offset ", v);
            unexpected("a negative integer");
        }
        return number_unsigned(static_cast<json::number_unsigned_t>(v));
    }
    bool number_unsigned(json::number_unsigned_t v) {
        if (state_ == State::shape_item) {
            if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                fail_entry("shape dimension ", v, " is too large");
            }
            cur_.shape->push_back(static_cast<std::int64_t>(v));
            return true;
        }
        if (state_ == State::offsets_item) {
            if (offsets_count_ >= 2) fail_entry("data_offsets must hold exactly 2 integers, found more");
            (offsets_count_ == 0 ? cur_.begin : cur_.end) = v;
            ++offsets_count_;
            return true;
        }
        unexpected("a number");
    }
    bool number_float(json::number_float_t, const json::string_t& text) {
        unexpected("the number " + std::string(text.substr(0, 40)));
    }
    bool string(json::string_t& v) {
        if (state_ == State::meta_value) {
            metadata.emplace(std::move(key_), std::move(v));
            state_ = State::meta_key;
            return true;
        }
        if (state_ == State::dtype_value) {
            cur_.dtype = parse_dtype(v);
            if (!cur_.dtype) {
                fail_entry("unsupported dtype ", st_quote(v),
                           " (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
            }
            state_ = State::entry_key;
            return true;
        }
        unexpected("a string");
    }
    bool binary(json::binary_t&) { unexpected("binary data"); }
    bool start_object(std::size_t) {
        if (state_ == State::start) {
            state_ = State::top_key;
            return true;
        }
        if (state_ == State::top_value) {
            if (key_ == "__metadata__") {
                state_ = State::meta_key;
            } else {
                cur_ = StHeaderEntry{};
                cur_.name = std::move(key_);
                state_ = State::entry_key;
            }
            return true;
        }
        unexpected("an object");
    }
    bool key(json::string_t& k) {
        if (state_ == State::top_key) {
            if (k == "__metadata__") {
                if (seen_metadata_) fail("'__metadata__' appears twice in the header");
                seen_metadata_ = true;
            } else if (!names_.insert(k).second) {
                fail("tensor name ", st_quote(k), " appears twice in the header");
            }
            key_ = std::move(k);
            state_ = State::top_value;
            return true;
        }
        if (state_ == State::meta_key) {
            if (metadata.count(k) != 0) fail("metadata key ", st_quote(k), " appears twice in '__metadata__'");
            key_ = std::move(k);
            state_ = State::meta_value;
            return true;
        }
        if (state_ == State::entry_key) {
            if (k == "dtype") {
                if (cur_.dtype) fail_entry("field 'dtype' appears twice");
                state_ = State::dtype_value;
            } else if (k == "shape") {
                if (cur_.shape) fail_entry("field 'shape' appears twice");
                state_ = State::shape_start;
            } else if (k == "data_offsets") {
                if (cur_.has_offsets) fail_entry("field 'data_offsets' appears twice");
                state_ = State::offsets_start;
            } else {
                fail_entry("unknown field ", st_quote(k), " (allowed: dtype, shape, data_offsets)");
            }
            return true;
        }
        unexpected("a key");  // unreachable: the JSON grammar only gives keys inside objects
    }
    bool end_object() {
        if (state_ == State::top_key) {
            state_ = State::done;
            return true;
        }
        if (state_ == State::meta_key) {
            state_ = State::top_key;
            return true;
        }
        if (state_ == State::entry_key) {
            if (!cur_.dtype) fail_entry("field 'dtype' is missing");
            if (!cur_.shape) fail_entry("field 'shape' is missing");
            if (!cur_.has_offsets) fail_entry("field 'data_offsets' is missing");
            const std::optional<std::uint64_t> need = st_byte_count(*cur_.shape, *cur_.dtype);
            if (!need) {
                fail_entry("shape ", st_shape_string(*cur_.shape), " of ", dtype_name(*cur_.dtype),
                           " overflows a 64-bit byte count");
            }
            if (*need != cur_.end - cur_.begin) {
                fail_entry("shape ", st_shape_string(*cur_.shape), " of ", dtype_name(*cur_.dtype), " needs ",
                           *need, " bytes, but data_offsets [", cur_.begin, ", ", cur_.end, "] span ",
                           cur_.end - cur_.begin);
            }
            entries.push_back(std::move(cur_));
            state_ = State::top_key;
            return true;
        }
        unexpected("the end of an object");  // unreachable
    }
    bool start_array(std::size_t) {
        if (state_ == State::shape_start) {
            cur_.shape.emplace();
            state_ = State::shape_item;
            return true;
        }
        if (state_ == State::offsets_start) {
            offsets_count_ = 0;
            state_ = State::offsets_item;
            return true;
        }
        unexpected("an array");
    }
    bool end_array() {
        if (state_ == State::shape_item) {
            state_ = State::entry_key;
            return true;
        }
        if (state_ == State::offsets_item) {
            if (offsets_count_ != 2) {
                fail_entry("data_offsets must hold exactly 2 integers, found ", offsets_count_);
            }
            if (cur_.end < cur_.begin) {
                fail_entry("data_offsets [", cur_.begin, ", ", cur_.end, "] end before they begin");
            }
            cur_.has_offsets = true;
            state_ = State::entry_key;
            return true;
        }
        unexpected("the end of an array");  // unreachable
    }
    bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
        fail("header is not valid JSON (at header byte ", position, "): ", ex.what());
    }

    /// True once the top-level object has closed.
    [[nodiscard]] bool finished() const noexcept { return state_ == State::done; }

private:
    enum class State {
        start,          // before the top-level object
        top_key,        // in the top-level object, before a key or its end
        top_value,      // after a top-level key (key_): a tensor entry or __metadata__
        meta_key,       // in __metadata__, before a key or its end
        meta_value,     // after a metadata key (key_)
        entry_key,      // in a tensor entry (cur_), before a field name or its end
        dtype_value,    // after "dtype"
        shape_start,    // after "shape"
        shape_item,     // in the shape array
        offsets_start,  // after "data_offsets"
        offsets_item,   // in the data_offsets array
        done,           // after the top-level object
    };

    template <class... Args>
    [[noreturn]] void fail(Args&&... args) const {
        raise<FormatError>(where_, ": ", std::forward<Args>(args)...);
    }
    template <class... Args>
    [[noreturn]] void fail_entry(Args&&... args) const {
        fail("tensor ", st_quote(cur_.name), ": ", std::forward<Args>(args)...);
    }
    /// A value of kind `found` where the current state allows none of that kind.
    [[noreturn]] void unexpected(const std::string& found) const {
        switch (state_) {
            case State::start: fail("the header must be a JSON object, found ", found);
            case State::top_value:
                if (key_ == "__metadata__") fail("'__metadata__' must be an object, found ", found);
                fail("tensor ", st_quote(key_), ": entry must be an object, found ", found);
            case State::meta_value:
                fail("'__metadata__' value for key ", st_quote(key_), " must be a string, found ", found);
            case State::dtype_value: fail_entry("dtype must be a string, found ", found);
            case State::shape_start: fail_entry("shape must be an array, found ", found);
            case State::shape_item: fail_entry("shape must hold non-negative integers, found ", found);
            case State::offsets_start: fail_entry("data_offsets must be an array, found ", found);
            case State::offsets_item: fail_entry("data_offsets must hold non-negative integers, found ", found);
            case State::top_key:
            case State::meta_key:
            case State::entry_key:
            case State::done: break;
        }
        fail("unexpected ", found, " in the header");
    }

    const std::string& where_;
    State state_ = State::start;
    std::string key_;
    StHeaderEntry cur_;
    std::set<std::string, std::less<>> names_;
    bool seen_metadata_ = false;
    std::size_t offsets_count_ = 0;
};

/// The decoder behind `decode_safetensors` and `load_safetensors`; `where` starts every error message.
[[nodiscard]] inline StFile st_decode(std::span<const unsigned char> bytes, const std::string& where) {
    TAPEGRAD_CHECK(bytes.size() >= 8, FormatError, where, ": is too short for a safetensors file: ", bytes.size(),
                   " bytes, the header size field alone takes 8");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<std::size_t>(i)];
    TAPEGRAD_CHECK(n <= max_safetensors_header_size, FormatError, where, ": header size ", n, " exceeds the ",
                   max_safetensors_header_size, "-byte limit");
    const std::uint64_t after_size_field = bytes.size() - 8;
    TAPEGRAD_CHECK(n <= after_size_field, FormatError, where, ": is truncated: header size says ", n,
                   " bytes, the file holds ", after_size_field, " bytes after the 8-byte size field");
    const auto header_len = static_cast<std::size_t>(n);
    const unsigned char* header = bytes.data() + 8;
    TAPEGRAD_CHECK(header_len > 0, FormatError, where, ": header is empty (header size 0)");
    TAPEGRAD_CHECK(header[0] == '{', FormatError, where, ": header must start with '{', found byte ",
                   static_cast<unsigned>(header[0]));

    // nlohmann's lexer takes a NUL byte for the end of its input and would ignore whatever follows it.
    // Valid JSON never holds a raw NUL (inside strings it must be escaped), so reject it up front.
    const void* nul = std::memchr(header, 0, header_len);
    TAPEGRAD_CHECK(nul == nullptr, FormatError, where, ": header is not valid JSON: NUL byte at header byte ",
                   static_cast<const unsigned char*>(nul) - header);

    StHeaderSax sax(where);
    const bool ok = nlohmann::json::sax_parse(header, header + header_len, &sax);
    // Every failure throws from inside the handler, so a parse that returns has seen a whole object.
    TAPEGRAD_ASSERT(ok && sax.finished());

    std::vector<StHeaderEntry>& entries = sax.entries;
    std::sort(entries.begin(), entries.end(), [](const StHeaderEntry& a, const StHeaderEntry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t expected = 0;
    const StHeaderEntry* previous = nullptr;
    for (const StHeaderEntry& e : entries) {
        if (e.begin > expected) {
            raise<FormatError>(where, ": tensor ", st_quote(e.name), ": data_offsets [", e.begin, ", ", e.end,
                               "] leave a gap of ", e.begin - expected, " bytes after ",
                               previous ? "tensor " + st_quote(previous->name) + ", which ends at "
                                        : std::string("the start of the buffer, at "),
                               expected);
        }
        if (e.begin < expected) {
            raise<FormatError>(where, ": tensor ", st_quote(e.name), ": data_offsets [", e.begin, ", ", e.end,
                               "] overlap tensor ", st_quote(previous->name), ", which ends at ", expected);
        }
        expected = e.end;
        previous = &e;
    }
    const std::uint64_t buffer_len = after_size_field - n;
    TAPEGRAD_CHECK(expected <= buffer_len, FormatError, where, ": is truncated: the tensors take ", expected,
                   " bytes of data, the file holds ", buffer_len, " after the header");
    TAPEGRAD_CHECK(expected == buffer_len, FormatError, where, ": has ", buffer_len - expected,
                   " bytes after the last tensor's data: the tensors take ", expected, " bytes, the file holds ",
                   buffer_len, " after the header");

    // Every range is now known to lie inside `bytes`, so the copies below are safe.
    const unsigned char* buffer = header + header_len;
    StFile file;
    file.metadata = std::move(sax.metadata);
    file.tensors.reserve(entries.size());
    for (StHeaderEntry& e : entries) {
        file.tensors.push_back(StEntry{
            .name = std::move(e.name),
            .dtype = *e.dtype,
            .shape = std::move(*e.shape),
            .data = std::vector<unsigned char>(buffer + e.begin, buffer + e.end),
        });
    }
    std::sort(file.tensors.begin(), file.tensors.end(),
              [](const StEntry& a, const StEntry& b) { return a.name < b.name; });
    return file;
}

/// "Permission denied" for the current errno.
[[nodiscard]] inline std::string st_errno_message(int err) { return std::generic_category().message(err); }

}  // namespace detail

/// The bytes of a safetensors file holding `file`. Deterministic, and laid out as the reference writer
/// (the Python/Rust `safetensors` library) lays it out: tensors by descending dtype (I64, F64, F32, I32,
/// BF16, F16, I16, I8, U8, BOOL), then by name; their data contiguous in that order; the header compact JSON
/// with `"__metadata__"` first (only when non-empty, keys sorted), padded with spaces to a multiple of 8.
/// Throws FormatError when an entry's data size is not `product(shape) * dtype_size`, a dimension is
/// negative, two tensors share a name, a tensor is named `"__metadata__"`, or a string is not UTF-8.
[[nodiscard]] inline std::vector<unsigned char> encode_safetensors(const StFile& file) {
    return detail::st_encode(file, "encode_safetensors");
}

/// Parses a whole safetensors file held in `bytes`. Checks every rule of the format: an 8-byte size field,
/// a header of at most 100,000,000 bytes that fits in the file, starts with `{` and is a JSON object with no
/// duplicate keys; each entry an object with exactly dtype (one of `Dtype`), shape (non-negative integers)
/// and data_offsets ([begin, end], begin <= end) whose span is `product(shape) * dtype_size` bytes; an
/// optional string-to-string `"__metadata__"`; data ranges that tile the byte buffer from 0 to its very end
/// with no gap or overlap. Any violation throws FormatError naming `name_for_messages`, the tensor and the
/// numbers. Tensors come back sorted by name.
[[nodiscard]] inline StFile decode_safetensors(std::span<const unsigned char> bytes,
                                               std::string_view name_for_messages) {
    return detail::st_decode(bytes, detail::concat("decode_safetensors: '", name_for_messages, "'"));
}

/// Writes `file` to `path` atomically: the bytes go to a new temporary file in the same directory, which is
/// flushed, fsync'ed and then renamed over `path`. On any error the temporary file is removed, `path` keeps
/// its previous content, and FormatError names `path`. An invalid `file` throws before anything is written.
inline void save_safetensors(const std::filesystem::path& path, const StFile& file) {
    namespace fs = std::filesystem;
    const std::string where = detail::concat("save_safetensors: '", path.string(), "'");
    const std::vector<unsigned char> bytes = detail::st_encode(file, where);
    TAPEGRAD_CHECK(path.has_filename(), FormatError, where, ": the path names no file");

    util::write_file_atomically(path, bytes, where);
}

/// Reads and decodes the safetensors file at `path` (see `decode_safetensors` for the checks). Throws
/// FormatError naming `path` when it cannot be read or breaks the format.
[[nodiscard]] inline StFile load_safetensors(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    const std::string where = detail::concat("load_safetensors: '", path.string(), "'");
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    TAPEGRAD_CHECK(!ec && fs::exists(st), FormatError, where, ": cannot open: ",
                   ec ? ec.message() : std::string("no such file"));
    TAPEGRAD_CHECK(fs::is_regular_file(st), FormatError, where, ": is not a regular file");
    const std::uintmax_t size = fs::file_size(path, ec);
    TAPEGRAD_CHECK(!ec, FormatError, where, ": cannot read its size: ", ec.message());
    TAPEGRAD_CHECK(size <= std::numeric_limits<std::size_t>::max() &&
                       size <= static_cast<std::uintmax_t>(std::numeric_limits<std::streamsize>::max()),
                   FormatError, where, ": is too large to load (", size, " bytes)");

    std::ifstream in(path, std::ios::binary);
    TAPEGRAD_CHECK(in.is_open(), FormatError, where, ": cannot open for reading");
    // The size comes from the file system, not from the file's content, so allocating it is safe.
    std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
    if (size > 0) in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
    TAPEGRAD_CHECK(static_cast<std::uintmax_t>(in.gcount()) == size || size == 0, FormatError, where, ": read ",
                   in.gcount(), " of its ", size, " bytes");
    return detail::st_decode(bytes, where);
}

}  // namespace tapegrad::io
