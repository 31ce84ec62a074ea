#include <tapegrad/core/shape.hpp>

#include <doctest/doctest.h>

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
