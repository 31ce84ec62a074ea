// Tests for examples/project_template/src/csv.hpp and data.hpp: the template's CSV reader and what it turns
// a table into. A bad file must say where it is bad (file, line, column).

#include "../../../examples/project_template/src/csv.hpp"
#include "../../../examples/project_template/src/data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

using project::CsvError;
using project::parse_csv;

TEST_CASE("parse_csv: header, rows with their line numbers, quotes, spaces, blank lines and CRLF") {
    const auto t = parse_csv("a, b ,\"c, d\"\r\n\n1,2,3\r\n  4 ,\"5\",\"say \"\"hi\"\"\"\n\n", "x.csv");
    CHECK(t.header == std::vector<std::string>{"a", "b", "c, d"});
    REQUIRE(t.rows.size() == 2);
    CHECK(t.rows[0] == std::vector<std::string>{"1", "2", "3"});
    CHECK(t.rows[1] == std::vector<std::string>{"4", "5", "say \"hi\""});
    CHECK(t.lines == std::vector<int64_t>{3, 4});
    CHECK(project::cell_number(t, 1, 0) == 4.0);
    const auto no_final_newline = parse_csv("x\n-1.5e3", "y.csv");
    CHECK(project::cell_number(no_final_newline, 0, 0) == -1500.0);
}

TEST_CASE("parse_csv: a bad file names the file and the line") {
    CHECK_THROWS_WITH_AS(parse_csv("a,b,c\n1,2,3\n4,5\n", "data.csv"), "data.csv:3: 2 fields, but the header has 3 columns",
                         CsvError);
    CHECK_THROWS_WITH_AS(parse_csv("a,b\n1,2,3\n", "data.csv"), "data.csv:2: 3 fields, but the header has 2 columns",
                         CsvError);
    CHECK_THROWS_WITH_AS(parse_csv("a,b\n\"1,2\n", "data.csv"), "data.csv:2: a quoted field is not closed (a missing \")",
                         CsvError);
    CHECK_THROWS_WITH_AS(parse_csv("a,b\n\"1\"x,2\n", "data.csv"), "data.csv:2: text after the closing quote of field 1",
                         CsvError);
    CHECK_THROWS_WITH_AS(parse_csv("\n\n", "data.csv"), "data.csv: the file is empty (expected a header row of column names)",
                         CsvError);
    CHECK_THROWS_WITH_AS(parse_csv("a,b\n", "data.csv"), "data.csv: a header but no rows of data", CsvError);
    CHECK_THROWS_WITH_AS(parse_csv("a,,b\n1,2,3\n", "data.csv"), "data.csv:1: column 2 of the header has no name", CsvError);
    CHECK_THROWS_WITH_AS(parse_csv("a,b,a\n1,2,3\n", "data.csv"), "data.csv:1: the header names column 'a' twice", CsvError);
    CHECK_THROWS_WITH_AS(project::read_csv("/nonexistent/file.csv"), "cannot open '/nonexistent/file.csv'", CsvError);
}

TEST_CASE("cell_number and find_column: numbers only, columns by name or index") {
    const auto t = parse_csv("x,y,name\n1,2,a\n3,,b\n4,5x,c\n6,nan,d\n", "d.csv");
    CHECK(project::find_column(t, "y") == 1);
    CHECK(project::find_column(t, "2") == 2);
    CHECK_THROWS_WITH_AS(project::find_column(t, "label"),
                         "d.csv: no column 'label' (the columns are 'x', 'y', 'name', or an index 0 to 2)", CsvError);
    CHECK_THROWS_AS(project::find_column(t, "3"), CsvError);
    CHECK(project::cell_number(t, 0, 1) == 2.0);
    CHECK_THROWS_WITH_AS(project::cell_number(t, 1, 1),
                         "d.csv:3: column 'y' is empty (fill in or remove the row: missing values are not supported)",
                         CsvError);
    CHECK_THROWS_WITH_AS(project::cell_number(t, 2, 1), "d.csv:4: column 'y' holds '5x', which is not a number", CsvError);
    CHECK_THROWS_WITH_AS(project::cell_number(t, 3, 1), "d.csv:5: column 'y' holds 'nan', which is not a number", CsvError);
}

TEST_CASE("make_problem: features, classes and numeric labels, with errors that say how to fix them") {
    const auto t = parse_csv("kind,w,h,note\ncat,1,2,x\ndog,3,4,y\ncat,5,6,z\n", "pets.csv");
    const auto p = project::make_problem(t, "kind", {"note"}, project::Task::classify);
    CHECK(p.features == std::vector<std::string>{"w", "h"});
    CHECK(p.label == "kind");
    CHECK(p.rows == 3);
    CHECK(p.x == std::vector<float>{1, 2, 3, 4, 5, 6});
    CHECK(p.classes == std::vector<std::string>{"cat", "dog"});
    CHECK(p.class_ids == std::vector<int64_t>{0, 1, 0});

    const auto r = project::make_problem(t, "h", {"kind", "3"}, project::Task::regress);
    CHECK(r.features == std::vector<std::string>{"w"});
    CHECK(r.y == std::vector<float>{2, 4, 6});

    CHECK_THROWS_WITH_AS(project::make_problem(t, "kind", {}, project::Task::classify),
                         "pets.csv:2: column 'note' holds 'x', which is not a number (a text column can be left out with "
                         "--ignore note)", CsvError);
    CHECK_THROWS_WITH_AS(project::make_problem(t, "kind", {"note"}, project::Task::regress),
                         "pets.csv:2: column 'kind' holds 'cat', which is not a number (a regressor needs a numeric label; "
                         "--task classify for classes)", CsvError);
    CHECK_THROWS_WITH_AS(project::make_problem(t, "species", {}, project::Task::classify),
                         "pets.csv: no column 'species' (the columns are 'kind', 'w', 'h', 'note', or an index 0 to 3)",
                         CsvError);
    CHECK_THROWS_WITH_AS(project::make_problem(t, "kind", {"kind"}, project::Task::classify),
                         "pets.csv: column 'kind' is the label; it cannot be ignored", CsvError);
    CHECK_THROWS_WITH_AS(project::make_problem(t, "kind", {"w", "h", "note"}, project::Task::classify),
                         "pets.csv: no feature columns are left besides the label 'kind'", CsvError);
    const auto one = parse_csv("k,x\na,1\na,2\n", "one.csv");
    CHECK_THROWS_WITH_AS(project::make_problem(one, "k", {}, project::Task::classify),
                         "one.csv: the label column 'k' holds one class only ('a'); a classifier needs at least two",
                         CsvError);
    // Numeric class names sort as numbers.
    CHECK(project::sorted_classes({"10", "2", "1", "2"}) == std::vector<std::string>{"1", "2", "10"});
    CHECK(project::sorted_classes({"b", "10", "a"}) == std::vector<std::string>{"10", "a", "b"});

    const auto fresh = parse_csv("h,extra,w\n7,0,8\n", "new.csv");
    CHECK(project::features_by_name(fresh, {"w", "h"}) == std::vector<float>{8, 7});
    CHECK_THROWS_WITH_AS(project::features_by_name(fresh, {"w", "z"}),
                         "new.csv: no column 'z', which the model takes as a feature", CsvError);
}

TEST_CASE("split_rows: disjoint, complete, sized by the fractions and fixed by the seed") {
    const auto s = project::split_rows(100, 0.15, 0.2, 7);
    CHECK(s.test.size() == 20);
    CHECK(s.val.size() == 15);
    CHECK(s.train.size() == 65);
    std::set<int64_t> all(s.train.begin(), s.train.end());
    all.insert(s.val.begin(), s.val.end());
    all.insert(s.test.begin(), s.test.end());
    CHECK(all.size() == 100);
    CHECK(*all.begin() == 0);
    CHECK(*all.rbegin() == 99);
    const auto again = project::split_rows(100, 0.15, 0.2, 7), other = project::split_rows(100, 0.15, 0.2, 8);
    CHECK(again.test == s.test);
    CHECK(other.test != s.test);
    CHECK_FALSE(std::is_sorted(s.train.begin(), s.train.end()));  // shuffled, not the file's order
    CHECK_THROWS_AS(project::split_rows(100, 0.5, 0.5, 1), CsvError);
    CHECK_THROWS_AS(project::split_rows(100, 0.0, 0.2, 1), CsvError);
    CHECK_THROWS_WITH_AS(project::split_rows(3, 0.1, 0.1, 1),
                         "split: 3 rows are too few for a training, a validation and a test set", CsvError);
}

TEST_CASE("Standardizer: mean 0 and spread 1 on the rows it was fitted on; a constant column is only shifted") {
    std::vector<float> x{1, 5, 3, 5, 5, 5, 100, 0};  // [4, 2]; row 3 is not fitted
    const auto s = project::Standardizer::fit(x, 2, {0, 1, 2});
    CHECK(s.mean[0] == doctest::Approx(3.0));
    CHECK(s.scale[0] == doctest::Approx(std::sqrt(8.0 / 3.0)));
    CHECK(s.mean[1] == doctest::Approx(5.0));
    CHECK(s.scale[1] == 1.0f);
    s.apply(x);
    CHECK(x[0] + x[2] + x[4] == doctest::Approx(0.0).epsilon(1e-6));
    CHECK(x[1] == 0.0f);
    CHECK(x[7] == -5.0f);
}
