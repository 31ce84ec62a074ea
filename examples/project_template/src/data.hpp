#pragma once
// From a CSV table to what a network trains on: the feature matrix, the labels (class ids or numbers), a
// seeded train/validation/test split and feature standardisation. Nothing here prints or parses flags,
// so it can be tested on its own.

#include "csv.hpp"

#include <tapegrad/core/random.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace project {

/// What the network predicts: one of a few classes, or a number.
enum class Task { classify, regress };

/// A table turned into numbers.
struct Problem {
    Task task = Task::classify;
    std::vector<std::string> features;   ///< the feature columns' names, in order
    std::string label;                   ///< the label column's name
    int64_t rows = 0;
    std::vector<float> x;                ///< [rows, features.size()], row-major
    std::vector<std::string> classes;    ///< classify: the class names; class id i is classes[i]
    std::vector<int64_t> class_ids;      ///< classify: [rows]
    std::vector<float> y;                ///< regress: [rows]
};

/// The class names found in `values`, sorted (as numbers when every one is a number, so "2" < "10").
inline std::vector<std::string> sorted_classes(std::vector<std::string> values) {
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    std::vector<std::pair<double, std::string>> numeric;
    for (const std::string& v : values) {
        double d = 0;
        const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
        if (v.empty() || ec != std::errc() || p != v.data() + v.size()) return values;
        numeric.emplace_back(d, v);
    }
    std::sort(numeric.begin(), numeric.end());
    for (size_t i = 0; i < values.size(); ++i) values[i] = numeric[i].second;
    return values;
}

/// Features are every column but the label and the `ignored` ones; each must hold numbers only. For
/// `Task::classify` the label column's distinct values become the classes (text or numbers, at least two);
/// for `Task::regress` it must hold numbers.
inline Problem make_problem(const CsvTable& t, const std::string& label, const std::vector<std::string>& ignored,
                            Task task) {
    Problem p;
    p.task = task;
    const size_t label_col = find_column(t, label);
    p.label = t.header[label_col];
    std::vector<size_t> cols;
    std::vector<bool> skip(t.header.size(), false);
    for (const std::string& name : ignored) {
        const size_t c = find_column(t, name);
        if (c == label_col) throw CsvError(t.name + ": column '" + t.header[c] + "' is the label; it cannot be ignored");
        skip[c] = true;
    }
    for (size_t c = 0; c < t.header.size(); ++c)
        if (c != label_col && !skip[c]) {
            cols.push_back(c);
            p.features.push_back(t.header[c]);
        }
    if (cols.empty()) throw CsvError(t.name + ": no feature columns are left besides the label '" + p.label + "'");
    p.rows = static_cast<int64_t>(t.rows.size());
    p.x.reserve(t.rows.size() * cols.size());
    for (size_t r = 0; r < t.rows.size(); ++r)
        for (const size_t c : cols) {
            try {
                p.x.push_back(static_cast<float>(cell_number(t, r, c)));
            } catch (const CsvError& e) {
                throw CsvError(std::string(e.what()) + " (a text column can be left out with --ignore " + t.header[c] + ")");
            }
        }
    if (task == Task::regress) {
        for (size_t r = 0; r < t.rows.size(); ++r) {
            try {
                p.y.push_back(static_cast<float>(cell_number(t, r, label_col)));
            } catch (const CsvError& e) {
                throw CsvError(std::string(e.what()) + " (a regressor needs a numeric label; --task classify for classes)");
            }
        }
    } else {
        std::vector<std::string> values;
        for (size_t r = 0; r < t.rows.size(); ++r) {
            if (t.rows[r][label_col].empty())
                throw CsvError(t.name + ":" + std::to_string(t.lines[r]) + ": the label column '" + p.label + "' is empty");
            values.push_back(t.rows[r][label_col]);
        }
        p.classes = sorted_classes(values);
        if (p.classes.size() < 2)
            throw CsvError(t.name + ": the label column '" + p.label + "' holds one class only ('" + p.classes[0] +
                           "'); a classifier needs at least two");
        std::map<std::string, int64_t> id;
        for (size_t i = 0; i < p.classes.size(); ++i) id[p.classes[i]] = static_cast<int64_t>(i);
        for (const std::string& v : values) p.class_ids.push_back(id[v]);
    }
    return p;
}

/// The feature columns `names` of a table of new rows, found by name (other columns are left alone):
/// [rows, names.size()], row-major. CsvError when a column is missing or a cell is not a number.
inline std::vector<float> features_by_name(const CsvTable& t, const std::vector<std::string>& names) {
    std::vector<size_t> cols;
    for (const std::string& n : names) {
        if (std::find(t.header.begin(), t.header.end(), n) == t.header.end())
            throw CsvError(t.name + ": no column '" + n + "', which the model takes as a feature");
        cols.push_back(find_column(t, n));
    }
    std::vector<float> x;
    for (size_t r = 0; r < t.rows.size(); ++r)
        for (const size_t c : cols) x.push_back(static_cast<float>(cell_number(t, r, c)));
    return x;
}

/// Row indices of a shuffled split: `test_fraction` of the rows for the final test, `val_fraction` for
/// validation (choosing the epoch to keep), the rest for training. The same seed gives the same split.
struct Split {
    std::vector<int64_t> train, val, test;
};
inline Split split_rows(int64_t rows, double val_fraction, double test_fraction, uint64_t seed) {
    if (!(val_fraction > 0 && test_fraction > 0 && val_fraction + test_fraction < 1))
        throw CsvError("split: the validation (" + std::to_string(val_fraction) + ") and test (" +
                       std::to_string(test_fraction) + ") fractions must be positive with a sum below 1");
    const auto n_test = static_cast<int64_t>(std::llround(static_cast<double>(rows) * test_fraction));
    const auto n_val = static_cast<int64_t>(std::llround(static_cast<double>(rows) * val_fraction));
    if (n_test < 1 || n_val < 1 || rows - n_test - n_val < 1)
        throw CsvError("split: " + std::to_string(rows) + " rows are too few for a training, a validation and a test set");
    std::vector<int64_t> order(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) order[static_cast<size_t>(i)] = i;
    tapegrad::Generator gen(seed);
    for (int64_t i = rows - 1; i > 0; --i)  // Fisher-Yates
        std::swap(order[static_cast<size_t>(i)], order[gen.below(static_cast<uint64_t>(i + 1))]);
    Split s;
    s.test.assign(order.begin(), order.begin() + n_test);
    s.val.assign(order.begin() + n_test, order.begin() + n_test + n_val);
    s.train.assign(order.begin() + n_test + n_val, order.end());
    return s;
}

/// Per-column mean and standard deviation, measured on the training rows only (the validation and test rows
/// must not leak into the model); a constant column gets scale 1.
struct Standardizer {
    std::vector<float> mean, scale;

    static Standardizer fit(const std::vector<float>& x, int64_t cols, const std::vector<int64_t>& rows) {
        Standardizer s;
        s.mean.assign(static_cast<size_t>(cols), 0.0f);
        s.scale.assign(static_cast<size_t>(cols), 1.0f);
        for (int64_t c = 0; c < cols; ++c) {
            double sum = 0, sq = 0;
            for (const int64_t r : rows) sum += x[static_cast<size_t>(r * cols + c)];
            const double m = sum / static_cast<double>(rows.size());
            for (const int64_t r : rows) {
                const double d = x[static_cast<size_t>(r * cols + c)] - m;
                sq += d * d;
            }
            const double sd = std::sqrt(sq / static_cast<double>(rows.size()));
            s.mean[static_cast<size_t>(c)] = static_cast<float>(m);
            s.scale[static_cast<size_t>(c)] = sd > 1e-12 ? static_cast<float>(sd) : 1.0f;
        }
        return s;
    }
    /// (x - mean) / scale, in place, for every row of a [rows, cols] matrix.
    void apply(std::vector<float>& x) const {
        const size_t cols = mean.size();
        for (size_t i = 0; i < x.size(); ++i) x[i] = (x[i] - mean[i % cols]) / scale[i % cols];
    }
};

}  // namespace project
