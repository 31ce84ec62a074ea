// Tests for examples/common/parse.hpp: the strict number and list parsing behind every program's flags.

#include "../../../examples/common/parse.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

using examples::parse_int_list;
using examples::parse_number;

TEST_CASE("parse_int_list: sizes separated by commas; an empty item is an error, not skipped") {
    CHECK(parse_int_list("256,128", 1, 65536) == std::vector<int64_t>{256, 128});
    CHECK(parse_int_list("32", 1, 65536) == std::vector<int64_t>{32});
    CHECK_THROWS_WITH_AS(parse_int_list("32,,16", 1, 65536),
                         "'32,,16' has an empty item at position 2 (expected sizes such as 256,128)",
                         std::invalid_argument);
    CHECK_THROWS_AS(parse_int_list("32,", 1, 65536), std::invalid_argument);
    CHECK_THROWS_AS(parse_int_list(",32", 1, 65536), std::invalid_argument);
    CHECK_THROWS_AS(parse_int_list("", 1, 65536), std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_int_list("32,x", 1, 65536), doctest::Contains("'x' is not an integer"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_int_list("32,0", 1, 65536), "0 is outside [1, 65536]", std::invalid_argument);
    CHECK_THROWS_AS(parse_int_list("32, 16", 1, 65536), std::invalid_argument);
    CHECK_THROWS_AS(parse_int_list("99999999999999999999", 1, 65536), std::invalid_argument);
    CHECK(examples::int_list_text({256, 128}) == "256,128");
}

TEST_CASE("parse_number: the whole text, within range; the bounds read as people write them") {
    CHECK(parse_number<double>("0.05", 1e-12, 1e30) == 0.05);
    CHECK(parse_number<int>("10", 1, 1000) == 10);
    CHECK(parse_number<uint64_t>("18446744073709551615", 0, UINT64_MAX) == UINT64_MAX);
    // A negative learning rate: a short message, never a 309-digit maximum.
    CHECK_THROWS_WITH_AS(parse_number<double>("-1", 1e-12, 1e30), "-1 is outside [1e-12, 1e+30]", std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_number<double>("-1", 0.0, 1.7976931348623157e308), "-1 is outside [0, 1.79769e+308]",
                         std::invalid_argument);
    CHECK_THROWS_AS(parse_number<double>("nan", 0.0, 1.0), std::invalid_argument);
    CHECK_THROWS_AS(parse_number<double>("1e999", 0.0, 1.0), std::invalid_argument);
    CHECK_THROWS_AS(parse_number<int>("10x", 1, 1000), std::invalid_argument);
    CHECK_THROWS_AS(parse_number<int>("", 1, 1000), std::invalid_argument);
    CHECK_THROWS_AS(parse_number<int>("2.5", 1, 1000), std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_number<int>("extra", 1, 1000), "'extra' is not an integer (expected an integer in [1, 1000])",
                         std::invalid_argument);
}
