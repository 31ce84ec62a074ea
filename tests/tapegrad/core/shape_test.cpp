#include <tapegrad/core/shape.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using tapegrad::broadcast_shapes;
using tapegrad::contiguous_strides;
using tapegrad::IndexError;
using tapegrad::Shape;
using tapegrad::ShapeError;

namespace {

std::string str(const Shape& s) {
    std::ostringstream os;
    os << s;
    return os.str();
}

}  // namespace

TEST_CASE("Shape: rank, dimensions and element count for ranks 0 to 8") {
    const Shape scalar;
    CHECK(scalar.rank() == 0);
    CHECK(scalar.numel() == 1);
    CHECK(str(scalar) == "[]");
    CHECK(scalar.str_x() == "scalar");

    const Shape s{2, 3, 4};
    CHECK(s.rank() == 3);
    CHECK(s[0] == 2);
    CHECK(s[2] == 4);
    CHECK(s.numel() == 24);
    CHECK(s.to_vector() == std::vector<int64_t>{2, 3, 4});
    CHECK(str(s) == "[2, 3, 4]");
    CHECK(s.str_x() == "2x3x4");

    CHECK(Shape{0, 5}.numel() == 0);
    CHECK(Shape(std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}).rank() == 8);
    CHECK(Shape(std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}).numel() == 40320);
}

TEST_CASE("Shape: rank above 8 and dimensions below -1 throw ShapeError") {
    CHECK_THROWS_AS(Shape({1, 1, 1, 1, 1, 1, 1, 1, 1}), ShapeError);
    CHECK_THROWS_WITH_AS(Shape({2, -2}), doctest::Contains("negative dimension -2"), ShapeError);
    // -1 is accepted as a placeholder (reshape infers it) but makes the shape invalid for factories.
    const Shape placeholder{2, -1};
    CHECK_FALSE(placeholder.is_valid());
    CHECK(Shape{2, 0}.is_valid());
}

TEST_CASE("Shape: size and normalize_axis accept negative axes and reject out-of-range ones") {
    const Shape s{2, 3, 4};
    CHECK(s.size(0) == 2);
    CHECK(s.size(-1) == 4);
    CHECK(s.size(-3) == 2);
    CHECK(s.normalize_axis(-2, "op") == 1);
    CHECK_THROWS_WITH_AS((void)s.size(3), "size: axis 3 out of range for a tensor of rank 3 (shape [2, 3, 4])",
                         IndexError);
    CHECK_THROWS_WITH_AS((void)s.normalize_axis(-4, "sum"),
                         "sum: axis -4 out of range for a tensor of rank 3 (shape [2, 3, 4])", IndexError);
    CHECK_THROWS_AS((void)Shape{}.normalize_axis(0, "op"), IndexError);
}

TEST_CASE("Shape: split_at, with, without and equality") {
    const Shape s{2, 3, 4, 5};
    const auto sp = s.split_at(1);
    CHECK(sp.outer == 2);
    CHECK(sp.n == 3);
    CHECK(sp.inner == 20);
    const auto last = s.split_at(3);
    CHECK(last.outer == 24);
    CHECK(last.n == 5);
    CHECK(last.inner == 1);

    CHECK(s.with(2, 1) == Shape{2, 3, 1, 5});
    CHECK(s.without(0) == Shape{3, 4, 5});
    CHECK(s.without(3) == Shape{2, 3, 4});
    CHECK(Shape{2, 3} != Shape{3, 2});
    CHECK(Shape{2, 3} != Shape{2, 3, 1});
    CHECK(Shape{} == Shape{});
}

TEST_CASE("contiguous_strides: row-major strides in elements") {
    const auto st = contiguous_strides(Shape{2, 3, 4});
    CHECK(st[0] == 12);
    CHECK(st[1] == 4);
    CHECK(st[2] == 1);
    const auto one = contiguous_strides(Shape{7});
    CHECK(one[0] == 1);
}

TEST_CASE("broadcast_shapes: NumPy rules") {
    CHECK(broadcast_shapes(Shape{3, 1}, Shape{1, 4}, "add") == Shape{3, 4});
    CHECK(broadcast_shapes(Shape{2, 3, 4}, Shape{4}, "add") == Shape{2, 3, 4});
    CHECK(broadcast_shapes(Shape{4}, Shape{2, 3, 4}, "add") == Shape{2, 3, 4});
    CHECK(broadcast_shapes(Shape{5, 1, 3}, Shape{1, 4, 1}, "add") == Shape{5, 4, 3});
    CHECK(broadcast_shapes(Shape{}, Shape{2, 3}, "add") == Shape{2, 3});
    CHECK(broadcast_shapes(Shape{2, 3}, Shape{}, "add") == Shape{2, 3});
    CHECK(broadcast_shapes(Shape{}, Shape{}, "add") == Shape{});
    CHECK(broadcast_shapes(Shape{1}, Shape{0}, "add") == Shape{0});
    CHECK(broadcast_shapes(Shape{2, 1, 4, 1}, Shape{3, 1, 5}, "add") == Shape{2, 3, 4, 5});
}

TEST_CASE("broadcast_shapes: incompatible shapes throw ShapeError naming the op and both shapes") {
    CHECK_THROWS_WITH_AS(broadcast_shapes(Shape{2, 3}, Shape{4}, "add"),
                         "add: shapes [2, 3] and [4] cannot be broadcast (dimension 1: 3 vs 4)", ShapeError);
    CHECK_THROWS_WITH_AS(broadcast_shapes(Shape{2, 3, 4}, Shape{5, 4}, "mul"),
                         "mul: shapes [2, 3, 4] and [5, 4] cannot be broadcast (dimension 1: 3 vs 5)", ShapeError);
    CHECK_THROWS_AS(broadcast_shapes(Shape{0}, Shape{2}, "sub"), ShapeError);
}

// Element counts that overflow int64 (2^32 * 2^32 = 2^64; 3037000500^2 = 2^63 + 145...): once such a shape
// wrapped to numel 0, a tensor got no storage and at({1, 1}) wrote through a null pointer, or wrapped to a
// small count that made reshape accept a view of 6 elements.
TEST_CASE("Shape: an element count beyond int64 throws ShapeError naming the dimensions") {
    const int64_t big = int64_t{1} << 32;
    CHECK_THROWS_WITH_AS(Shape({big, big}), "Shape: dimensions [4294967296, 4294967296] hold more elements than int64 can count",
                         ShapeError);
    CHECK_THROWS_AS(Shape({3037000500, 3037000500}), ShapeError);
    CHECK_THROWS_AS(Shape({4052555153018976267, 1501845146842232274}), ShapeError);  // product = 6 mod 2^64
    CHECK_THROWS_AS(Shape(std::vector<int64_t>{1 << 16, 1 << 16, 1 << 16, 1 << 16}), ShapeError);  // exactly 2^64
    CHECK_THROWS_AS(Shape({2, 2, 2, std::numeric_limits<int64_t>::max() / 4}), ShapeError);
    // A zero dimension makes numel 0 but does not hide the strides of the others, which still must fit.
    CHECK_THROWS_AS(Shape({0, big, big}), ShapeError);
    // push_back and with keep the invariant.
    Shape s{big};
    CHECK_THROWS_AS(s.push_back(big), ShapeError);
    CHECK(s == Shape{big});
    CHECK_THROWS_WITH_AS((void)Shape({2, 3}).with(0, std::numeric_limits<int64_t>::max()),
                         doctest::Contains("hold more elements than int64 can count"), ShapeError);
    CHECK_THROWS_WITH_AS((void)Shape({2, 3}).with(0, -5), "Shape: negative dimension -5", ShapeError);

    // The largest counts that fit are accepted (the shape alone allocates nothing).
    CHECK(Shape({std::numeric_limits<int64_t>::max()}).numel() == std::numeric_limits<int64_t>::max());
    CHECK(Shape({3037000499, 3037000499}).numel() == int64_t{3037000499} * 3037000499);
    CHECK(Shape({big, 0}).numel() == 0);
    CHECK(Shape({-1, big, big / 4}).rank() == 3);  // reshape's placeholder is left out of the count
    CHECK(Shape::checked_extent(std::vector<int64_t>{big, big}) == std::nullopt);
    CHECK(Shape::checked_extent(std::vector<int64_t>{0, 5, -1, 7}) == 35);
}

TEST_CASE("broadcast_shapes: a result beyond int64 names the op and both shapes") {
    const int64_t big = int64_t{1} << 32;
    CHECK_THROWS_WITH_AS(broadcast_shapes(Shape{big, 1}, Shape{1, big}, "add"),
                         "add: shapes [4294967296, 1] and [1, 4294967296] broadcast to more elements than int64 can count",
                         ShapeError);
}

TEST_CASE("every factory and view rejects an overflowing element count before allocating") {
    using tapegrad::TensorD;
    using tapegrad::TensorF;
    const int64_t big = int64_t{1} << 32;
    CHECK_THROWS_AS(static_cast<void>(TensorF::zeros({big, big})), ShapeError);
    CHECK_THROWS_AS(static_cast<void>(TensorF::ones({big, big})), ShapeError);
    CHECK_THROWS_AS(static_cast<void>(TensorF::empty({big, big})), ShapeError);
    CHECK_THROWS_AS(static_cast<void>(TensorF::full({big, big}, 1.f)), ShapeError);
    CHECK_THROWS_AS(static_cast<void>(TensorD::zeros({3037000500, 3037000500})), ShapeError);  // said "cannot allocate -9223372036709301616"
    CHECK_THROWS_AS(static_cast<void>(TensorF::from({4052555153018976267, 1501845146842232274}, {1, 2, 3, 4, 5, 6})), ShapeError);
    tapegrad::Generator gen(1);
    CHECK_THROWS_AS(static_cast<void>(TensorF::uniform({big, big}, 0.f, 1.f, gen)), ShapeError);
    CHECK_THROWS_AS(static_cast<void>(TensorF::normal({big, big}, 0.f, 1.f, gen)), ShapeError);
    CHECK_THROWS_AS(static_cast<void>(tapegrad::zeros<float>({big, big})), ShapeError);

    const TensorF x = TensorF::ones({2, 3});
    CHECK_THROWS_AS(static_cast<void>(tapegrad::reshape(x, {4052555153018976267, 1501845146842232274})), ShapeError);
    CHECK_THROWS_AS(static_cast<void>(x.reshape({big, big, 6})), ShapeError);
    CHECK_THROWS_AS(static_cast<void>(tapegrad::reshape(x, {-1, big, big})), ShapeError);
    CHECK(tapegrad::reshape(x, {3, -1}).shape() == Shape{3, 2});

    // Broadcasting two legal zero-element tensors whose result would overflow.
    const TensorF a = TensorF::zeros({0, big, 1});
    const TensorF b = TensorF::zeros({0, 1, big});
    CHECK_THROWS_WITH_AS(static_cast<void>(a + b), doctest::Contains("more elements than int64 can count"), ShapeError);
}

TEST_CASE("arange: names the argument that is not finite, and rejects counts beyond int64") {
    using tapegrad::TensorD;
    using tapegrad::ValueError;
    const double nan = std::nan("");
    CHECK_THROWS_WITH_AS(static_cast<void>(TensorD::arange(0.0, nan)), doctest::Contains("arange: end is not finite"), ValueError);
    CHECK_THROWS_WITH_AS(static_cast<void>(TensorD::arange(nan, 1.0)), doctest::Contains("arange: start is not finite"), ValueError);
    CHECK_THROWS_WITH_AS(static_cast<void>(TensorD::arange(0.0, 1.0, nan)), doctest::Contains("arange: step is not finite"), ValueError);
    CHECK_THROWS_WITH_AS(static_cast<void>(TensorD::arange(0.0, 1.0, 0.0)), doctest::Contains("arange: step is zero"), ValueError);
    CHECK_THROWS_AS(static_cast<void>(TensorD::arange(0.0, 1e300)), ShapeError);
    CHECK(TensorD::arange(0.0, 3.0).numel() == 3);
}
