#pragma once
/// \file
/// The protocol-buffers wire format, written and read directly: enough to encode an ONNX model
/// (io/onnx.hpp) without libprotobuf, and to decode one again in tests.
///
/// A message is a sequence of fields, each a key `(field_number << 3) | wire_type` as a varint followed by
/// its value: a varint (wire type 0: integers, enums, bools; negative int64 take ten bytes, two's
/// complement), 32 bits little-endian (type 5: float), 64 bits (type 1: double) or a length-delimited
/// run of bytes (type 2: strings, bytes, nested messages, packed repeated scalars). Repeated fields are the
/// same key written again. Fields may come in any order; readers skip the ones they do not know.

#include <tapegrad/core/error.hpp>

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tapegrad::io::proto {

static_assert(std::endian::native == std::endian::little,
              "tapegrad::io::proto: the wire format is little-endian; big-endian hosts are not supported yet.");

/// The wire types of protocol buffers.
enum class WireType : uint32_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

/// Builds one message's bytes, field by field. Nested messages are built in their own Writer and added
/// with `message(field, w)`.
class Writer {
public:
    /// An unsigned varint field (uint64, enums, bools).
    void uint(uint32_t field, uint64_t v) {
        key(field, WireType::varint);
        varint(v);
    }
    /// A signed int64/int32 field: as the varint of its two's complement (protobuf's int64, not sint64).
    void int64(uint32_t field, int64_t v) { uint(field, static_cast<uint64_t>(v)); }
    /// A float field (wire type 5).
    void float32(uint32_t field, float v) {
        key(field, WireType::fixed32);
        raw(&v, 4);
    }
    /// A double field (wire type 1).
    void float64(uint32_t field, double v) {
        key(field, WireType::fixed64);
        raw(&v, 8);
    }
    /// A bytes field.
    void bytes(uint32_t field, std::span<const unsigned char> b) {
        key(field, WireType::length_delimited);
        varint(b.size());
        raw(b.data(), b.size());
    }
    /// A string field (UTF-8 bytes).
    void string(uint32_t field, std::string_view s) {
        key(field, WireType::length_delimited);
        varint(s.size());
        raw(s.data(), s.size());
    }
    /// A nested message field.
    void message(uint32_t field, const Writer& m) { bytes(field, m.data()); }
    /// A packed repeated int64 field: one length-delimited run of varints.
    void packed_int64(uint32_t field, std::span<const int64_t> vs) {
        Writer inner;
        for (int64_t v : vs) inner.varint(static_cast<uint64_t>(v));
        message(field, inner);
    }

    [[nodiscard]] std::span<const unsigned char> data() const noexcept { return buf_; }
    [[nodiscard]] std::vector<unsigned char> take() && noexcept { return std::move(buf_); }
    [[nodiscard]] size_t size() const noexcept { return buf_.size(); }

    /// A bare varint (no key): 7 bits a byte, low bits first, the top bit saying "more follow".
    void varint(uint64_t v) {
        while (v >= 0x80) {
            buf_.push_back(static_cast<unsigned char>(v | 0x80));
            v >>= 7;
        }
        buf_.push_back(static_cast<unsigned char>(v));
    }

private:
    void key(uint32_t field, WireType t) { varint((static_cast<uint64_t>(field) << 3) | static_cast<uint32_t>(t)); }
    void raw(const void* p, size_t n) {
        const auto* b = static_cast<const unsigned char*>(p);
        buf_.insert(buf_.end(), b, b + n);
    }
    std::vector<unsigned char> buf_;
};

/// One decoded field: its number, wire type, and either its integer value (varint, fixed32, fixed64: the
/// raw bits) or its bytes (length-delimited, a view into the message being read).
struct Field {
    uint32_t number = 0;
    WireType type = WireType::varint;
    uint64_t value = 0;
    std::span<const unsigned char> bytes;

    [[nodiscard]] int64_t as_int64() const noexcept { return static_cast<int64_t>(value); }
    [[nodiscard]] float as_float() const noexcept {
        const auto bits = static_cast<uint32_t>(value);
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }
    [[nodiscard]] double as_double() const noexcept {
        double d;
        std::memcpy(&d, &value, 8);
        return d;
    }
    [[nodiscard]] std::string as_string() const { return {bytes.begin(), bytes.end()}; }
};

/// Reads a message's fields one by one. Every read is bounds-checked: a truncated or malformed message
/// throws FormatError (naming `what` and the byte offset), never reads past the buffer.
class Reader {
public:
    explicit Reader(std::span<const unsigned char> data, std::string what = "protobuf")
        : data_(data), what_(std::move(what)) {}

    [[nodiscard]] bool done() const noexcept { return pos_ >= data_.size(); }

    /// The next field; call only while !done().
    Field next() {
        Field f;
        const uint64_t k = varint();
        f.number = static_cast<uint32_t>(k >> 3);
        const auto t = static_cast<uint32_t>(k & 7);
        TAPEGRAD_CHECK(f.number != 0, FormatError, what_, ": field number 0 at byte ", pos_);
        switch (t) {
        case 0:
            f.type = WireType::varint;
            f.value = varint();
            break;
        case 1:
            f.type = WireType::fixed64;
            f.value = fixed(8);
            break;
        case 5:
            f.type = WireType::fixed32;
            f.value = fixed(4);
            break;
        case 2: {
            f.type = WireType::length_delimited;
            const uint64_t n = varint();
            TAPEGRAD_CHECK(n <= data_.size() - pos_, FormatError, what_, ": field ", f.number, " says ", n,
                           " bytes at byte ", pos_, " but only ", data_.size() - pos_, " remain");
            f.bytes = data_.subspan(pos_, static_cast<size_t>(n));
            pos_ += static_cast<size_t>(n);
            break;
        }
        default:
            ::tapegrad::detail::raise<FormatError>(what_, ": unsupported wire type ", t, " for field ", f.number,
                                                   " at byte ", pos_);
        }
        return f;
    }

    /// The varints of a packed repeated field's bytes.
    static std::vector<int64_t> packed_int64(std::span<const unsigned char> b, const std::string& what = "protobuf") {
        Reader r(b, what);
        std::vector<int64_t> out;
        while (!r.done()) out.push_back(static_cast<int64_t>(r.varint()));
        return out;
    }

private:
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            TAPEGRAD_CHECK(pos_ < data_.size(), FormatError, what_, ": truncated varint at byte ", pos_);
            const unsigned char b = data_[pos_++];
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return v;
        }
        ::tapegrad::detail::raise<FormatError>(what_, ": varint longer than 10 bytes at byte ", pos_);
    }
    uint64_t fixed(size_t n) {
        TAPEGRAD_CHECK(data_.size() - pos_ >= n, FormatError, what_, ": truncated ", n * 8, "-bit value at byte ",
                       pos_);
        uint64_t v = 0;
        std::memcpy(&v, data_.data() + pos_, n);
        pos_ += n;
        return v;
    }

    std::span<const unsigned char> data_;
    size_t pos_ = 0;
    std::string what_;
};

}  // namespace tapegrad::io::proto
