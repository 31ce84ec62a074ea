// Tests for examples/common/dates.hpp: the seq2seq lesson's date pairs.

#include "../../../examples/common/dates.hpp"

#include <doctest/doctest.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

TEST_CASE("dates: every format of one date, and its ISO form") {
    CHECK(examples::day_of_week(2019, 3, 5) == 2);   // a Tuesday
    CHECK(examples::day_of_week(2000, 1, 1) == 6);   // a Saturday
    CHECK(examples::days_in_month(2000, 2) == 29);
    CHECK(examples::days_in_month(1900, 2) == 28);
    const std::vector<std::string> want{"Tuesday, 5 March 2019", "03/05/19",   "5 mar 2019", "March 5, 2019",
                                        "5.3.2019",              "TUE 05 MAR 2019", "Mar 5 2019", "05-Mar-19",
                                        "3/5/2019",              "tuesday 5 march 2019"};
    for (int f = 0; f < examples::date_formats; ++f) CHECK(examples::format_date(2019, 3, 5, f) == want[static_cast<size_t>(f)]);
    CHECK_THROWS_AS(examples::format_date(2019, 3, 5, examples::date_formats), std::invalid_argument);
}

TEST_CASE("dates: seeded sets; no test source is a training source; tokens round-trip") {
    std::vector<examples::DatePair> train, test, train2, test2;
    examples::make_date_sets(3000, 500, 4, train, test);
    examples::make_date_sets(3000, 500, 4, train2, test2);
    CHECK(train.size() == 3000);
    CHECK(test.size() == 500);
    CHECK(train[17].source == train2[17].source);
    CHECK(test[99].target == test2[99].target);
    std::set<std::string> seen;
    for (const auto& p : train) seen.insert(p.source);
    std::set<std::string> test_sources;
    for (const auto& p : test) {
        CHECK(seen.count(p.source) == 0);
        test_sources.insert(p.source);
        CHECK(p.target.size() == 10);
        CHECK(p.target >= "1950-01-01");
        CHECK(p.target <= "2049-12-31");
        CHECK(examples::decode_target(examples::encode_target(p.target)) == p.target);
        CHECK(examples::encode_source(p.source).size() == p.source.size());
    }
    CHECK(test_sources.size() == test.size());
    CHECK_THROWS_AS(examples::encode_source("5 März"), std::invalid_argument);
}
