#pragma once
/// \file
/// `Shape`: the dimensions of a tensor (rank 0 to 8), row-major strides, and NumPy broadcasting.

#include <tapegrad/core/error.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

namespace tapegrad {

/// The dimensions of a tensor, outermost first. Rank 0 is a scalar (one element). Stored inline (no heap),
/// since every op creates one.
///
/// Invariant: the product of the dimensions, with each 0 counted as 1 (and a -1 placeholder left out),
/// fits in int64. So `numel()` and the row-major strides never overflow, whatever builds the shape: every
/// constructor, `push_back` and `with` throw ShapeError naming the dimensions when it would not.
class Shape {
public:
    static constexpr int max_rank = 8;

    Shape() = default;
    Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.end()); }
    explicit Shape(std::span<const int64_t> dims) { assign(dims.begin(), dims.end()); }
    explicit Shape(const std::vector<int64_t>& dims) { assign(dims.begin(), dims.end()); }

    [[nodiscard]] int rank() const noexcept { return rank_; }
    [[nodiscard]] int64_t operator[](int i) const noexcept { return dims_[static_cast<size_t>(i)]; }
    /// Writable dimension. Unchecked: a caller must keep the element count (as swapping two dimensions or
    /// filling in reshape's -1 does); `with` checks a new value.
    [[nodiscard]] int64_t& operator[](int i) noexcept { return dims_[static_cast<size_t>(i)]; }
    [[nodiscard]] const int64_t* begin() const noexcept { return dims_.data(); }
    [[nodiscard]] const int64_t* end() const noexcept { return dims_.data() + rank_; }
    [[nodiscard]] std::vector<int64_t> to_vector() const { return {begin(), end()}; }

    /// Number of elements: the product of the dimensions (1 for a scalar).
    [[nodiscard]] int64_t numel() const noexcept {
        int64_t n = 1;
        for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<size_t>(i)];
        return n;
    }

    /// Dimension `axis`, where a negative axis counts from the end (-1 is the last). Throws IndexError.
    [[nodiscard]] int64_t size(int axis) const { return (*this)[normalize_axis(axis, "size")]; }

    /// Maps a possibly negative axis into [0, rank). `op` names the caller in the error message.
    [[nodiscard]] int normalize_axis(int axis, const char* op) const {
        const int a = axis < 0 ? axis + rank_ : axis;
        TAPEGRAD_CHECK(a >= 0 && a < rank_, IndexError, op, ": axis ", axis, " out of range for a tensor of rank ",
                       rank_, " (shape ", *this, ")");
        return a;
    }

    /// Product of the dimensions before `axis`, the dimension itself, and the product after: the
    /// [outer, n, inner] view that axis reductions, concat and slice work on.
    struct AxisSplit {
        int64_t outer, n, inner;
    };
    [[nodiscard]] AxisSplit split_at(int axis) const noexcept {
        AxisSplit s{1, dims_[static_cast<size_t>(axis)], 1};
        for (int i = 0; i < axis; ++i) s.outer *= dims_[static_cast<size_t>(i)];
        for (int i = axis + 1; i < rank_; ++i) s.inner *= dims_[static_cast<size_t>(i)];
        return s;
    }

    [[nodiscard]] Shape with(int axis, int64_t value) const {
        Shape s = *this;
        TAPEGRAD_CHECK(value >= -1, ShapeError, "Shape: negative dimension ", value);
        s[axis] = value;
        s.check_count();
        return s;
    }
    [[nodiscard]] Shape without(int axis) const {
        Shape s;
        for (int i = 0; i < rank_; ++i)
            if (i != axis) s.push_back(dims_[static_cast<size_t>(i)]);
        return s;
    }
    /// Appends a dimension; on error the shape is left as it was.
    void push_back(int64_t d) {
        append(d);
        if (!checked_extent({begin(), end()}).has_value()) {
            --rank_;
            ::tapegrad::detail::raise<ShapeError>("Shape: dimensions ", *this, " and ", d,
                                                  " hold more elements than int64 can count");
        }
    }

    /// True when every dimension is non-negative (no -1 placeholder left).
    [[nodiscard]] bool is_valid() const noexcept {
        return std::all_of(begin(), end(), [](int64_t d) { return d >= 0; });
    }

    friend bool operator==(const Shape& a, const Shape& b) noexcept {
        if (a.rank_ != b.rank_) return false;
        for (int i = 0; i < a.rank_; ++i)  // a plain loop: std::equal becomes a memcmp call
            if (a.dims_[static_cast<size_t>(i)] != b.dims_[static_cast<size_t>(i)]) return false;
        return true;
    }

    /// Prints `[2, 3]` (and `[]` for a scalar).
    friend std::ostream& operator<<(std::ostream& os, const Shape& s) {
        os << '[';
        for (int i = 0; i < s.rank_; ++i) os << (i ? ", " : "") << s[i];
        return os << ']';
    }
    /// `2x3`, the form used in matmul messages.
    [[nodiscard]] std::string str_x() const {
        std::string out;
        for (int i = 0; i < rank_; ++i) out += (i ? "x" : "") + std::to_string(dims_[static_cast<size_t>(i)]);
        return out.empty() ? "scalar" : out;
    }

    /// The product of `dims` with each 0 counted as 1 and each -1 left out, or nothing when it overflows
    /// int64. A shape whose extent exists has a numel and strides that fit in int64.
    [[nodiscard]] static std::optional<int64_t> checked_extent(std::span<const int64_t> dims) noexcept {
        int64_t n = 1;
        for (const int64_t d : dims) {
            if (d <= 0) continue;
#if defined(__GNUC__) || defined(__clang__)
            if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;  // one multiply and a flag test
#else
            if (d > std::numeric_limits<int64_t>::max() / n) return std::nullopt;
            n *= d;
#endif
        }
        return n;
    }

private:
    template <class It>
    void assign(It first, It last) {
        for (; first != last; ++first) append(*first);
        check_count();
    }
    void append(int64_t d) {
        TAPEGRAD_CHECK(rank_ < max_rank, ShapeError, "Shape: rank above ", max_rank, " is not supported");
        // -1 is allowed here so that reshape can infer a dimension; factories reject it (see is_valid).
        TAPEGRAD_CHECK(d >= -1, ShapeError, "Shape: negative dimension ", d);
        dims_[static_cast<size_t>(rank_++)] = d;
    }
    void check_count() const {
        TAPEGRAD_CHECK(checked_extent({begin(), end()}).has_value(), ShapeError, "Shape: dimensions ", *this,
                       " hold more elements than int64 can count");
    }
    std::array<int64_t, max_rank> dims_{};
    int rank_ = 0;
};

/// Row-major (C-order) strides of `s`, in elements.
inline std::array<int64_t, Shape::max_rank> contiguous_strides(const Shape& s) noexcept {
    std::array<int64_t, Shape::max_rank> st{};
    int64_t acc = 1;
    for (int i = s.rank() - 1; i >= 0; --i) {
        st[static_cast<size_t>(i)] = acc;
        acc *= s[i];
    }
    return st;
}

/// The NumPy broadcast of two shapes: align from the right; each pair of dimensions must be equal or one
/// of them 1. Throws ShapeError naming `op` and both shapes.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    const int r = std::max(a.rank(), b.rank());
    std::array<int64_t, Shape::max_rank> d{};
    for (int i = 0; i < r; ++i) {
        const int ia = a.rank() - 1 - i, ib = b.rank() - 1 - i;
        const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        TAPEGRAD_CHECK(da == db || da == 1 || db == 1, ShapeError, op, ": shapes ", a, " and ", b,
                       " cannot be broadcast (dimension ", r - 1 - i, ": ", da, " vs ", db, ")");
        d[static_cast<size_t>(r - 1 - i)] = da == 1 ? db : da;
    }
    const std::span<const int64_t> dims(d.data(), static_cast<size_t>(r));
    TAPEGRAD_CHECK(Shape::checked_extent(dims).has_value(), ShapeError, op, ": shapes ", a, " and ", b,
                   " broadcast to more elements than int64 can count");
    return Shape(dims);
}

}  // namespace tapegrad
