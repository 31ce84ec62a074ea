// Tests for tapegrad/nn/metrics.hpp: accuracy and ConfusionMatrix on small hand-checked batches.

#include <tapegrad/nn/metrics.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

using tapegrad::IndexError;
using tapegrad::ShapeError;
using tapegrad::TensorD;
using tapegrad::TensorF;
using tapegrad::ValueError;
namespace nn = tapegrad::nn;

/// Four rows over three classes; argmaxes 1, 0 (tie 0/2 -> first), 2, 2.
TensorD scores() {
    return TensorD::from({4, 3}, {0.1, 0.7, 0.2,  //
                                  0.4, 0.2, 0.4,  //
                                  -1.0, -3.0, 2.0,  //
                                  0.0, 0.5, 0.6});
}

}  // namespace

TEST_CASE("accuracy: fraction of rows whose argmax matches the label, ties to the first") {
    const std::vector<int64_t> labels{1, 0, 2, 1};  // hits: rows 0, 1, 2
    CHECK(nn::accuracy(scores(), labels) == 0.75);
    const std::vector<int64_t> tie_to_last{1, 2, 2, 2};  // row 1 predicts 0, not 2
    CHECK(nn::accuracy(scores(), tie_to_last) == 0.75);
    const TensorF probs = TensorF::from({2, 2}, {0.9f, 0.1f, 0.3f, 0.7f});
    CHECK(nn::accuracy(probs, std::vector<int64_t>{0, 1}) == 1.0);
}

TEST_CASE("accuracy: a NaN counts as the maximum, like torch.argmax") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const TensorD s = TensorD::from({1, 3}, {1.0, nan, 5.0});
    CHECK(nn::accuracy(s, std::vector<int64_t>{1}) == 1.0);
}

TEST_CASE("accuracy: shape, label and empty-batch errors") {
    CHECK_THROWS_WITH_AS((void)nn::accuracy(scores(), std::vector<int64_t>{0, 1, 2}),
                         "accuracy: scores of shape [4, 3] hold 4 rows but 3 labels were given", ShapeError);
    CHECK_THROWS_WITH_AS((void)nn::accuracy(scores(), std::vector<int64_t>{0, 1, 3, 0}),
                         "accuracy: label 3 out of range [0, 3) at row 2", IndexError);
    CHECK_THROWS_WITH_AS((void)nn::accuracy(scores(), std::vector<int64_t>{0, -1, 0, 0}),
                         "accuracy: label -1 out of range [0, 3) at row 1", IndexError);
    CHECK_THROWS_WITH_AS((void)nn::accuracy(TensorD::zeros({3}), std::vector<int64_t>{0, 0, 0}),
                         "accuracy: scores must be [N, C], got shape [3]", ShapeError);
    CHECK_THROWS_WITH_AS((void)nn::accuracy(TensorD::zeros({0, 3}), std::vector<int64_t>{}),
                         "accuracy: empty batch (shape [0, 3])", ValueError);
    CHECK_THROWS_WITH_AS((void)nn::accuracy(TensorD::zeros({2, 0}), std::vector<int64_t>{0, 0}),
                         "accuracy: scores of shape [2, 0] have no classes", ShapeError);
}

TEST_CASE("ConfusionMatrix: counts (true, predicted) pairs over batches") {
    nn::ConfusionMatrix cm(3);
    CHECK(cm.classes() == 3);
    CHECK(cm.total() == 0);
    cm.update(scores(), std::vector<int64_t>{1, 0, 2, 1});  // predictions 1, 0, 2, 2
    cm.update(std::vector<int64_t>{0, 0, 1}, std::vector<int64_t>{0, 2, 1});
    // pairs (true, pred): (1,1) (0,0) (2,2) (1,2) (0,0) (2,0) (1,1)
    CHECK(cm.total() == 7);
    CHECK(cm.at(0, 0) == 2);
    CHECK(cm.at(1, 1) == 2);
    CHECK(cm.at(1, 2) == 1);
    CHECK(cm.at(2, 2) == 1);
    CHECK(cm.at(2, 0) == 1);
    CHECK(cm.at(0, 1) == 0);
    CHECK(cm.accuracy() == doctest::Approx(5.0 / 7.0));
    // precision: column sums 3, 2, 2; recall: row sums 2, 3, 2
    CHECK(cm.precision(0) == doctest::Approx(2.0 / 3.0));
    CHECK(cm.precision(1) == 1.0);
    CHECK(cm.precision(2) == 0.5);
    CHECK(cm.recall(0) == 1.0);
    CHECK(cm.recall(1) == doctest::Approx(2.0 / 3.0));
    CHECK(cm.recall(2) == 0.5);
    cm.reset();
    CHECK(cm.total() == 0);
}

TEST_CASE("ConfusionMatrix: precision and recall of a class never seen are 0") {
    nn::ConfusionMatrix cm(3);
    cm.update(std::vector<int64_t>{0, 1}, std::vector<int64_t>{0, 1});
    CHECK(cm.precision(2) == 0.0);
    CHECK(cm.recall(2) == 0.0);
    CHECK_THROWS_WITH_AS((void)nn::ConfusionMatrix(3).accuracy(), "ConfusionMatrix::accuracy: no samples counted yet",
                         ValueError);
}

TEST_CASE("ConfusionMatrix: str() prints the table with recall, precision and accuracy") {
    nn::ConfusionMatrix cm(2);
    cm.update(std::vector<int64_t>{0, 0, 0, 1, 1, 1}, std::vector<int64_t>{0, 0, 0, 0, 1, 1});
    const std::string want =
        "true\\pred      0      1 | recall\n"
        "        0      3      1 |  0.750\n"
        "        1      0      2 |  1.000\n"
        "precision  1.000  0.667 | accuracy 0.833\n";
    CHECK(cm.str() == want);
    CHECK(nn::ConfusionMatrix(2).str().find("accuracy -") != std::string::npos);
}

TEST_CASE("ConfusionMatrix: errors name the row and value, and a bad batch counts nothing") {
    CHECK_THROWS_WITH_AS(nn::ConfusionMatrix(0), "ConfusionMatrix: invalid number of classes 0 (must be >= 1)",
                         ValueError);
    nn::ConfusionMatrix cm(3);
    CHECK_THROWS_WITH_AS(cm.update(scores(), std::vector<int64_t>{0, 1, 2, 7}),
                         "ConfusionMatrix::update: label 7 out of range [0, 3) at row 3", IndexError);
    CHECK_THROWS_WITH_AS(cm.update(scores(), std::vector<int64_t>{0, 1}),
                         "ConfusionMatrix::update: scores of shape [4, 3] hold 4 rows but 2 labels were given",
                         ShapeError);
    CHECK_THROWS_WITH_AS(cm.update(TensorD::zeros({2, 4}), std::vector<int64_t>{0, 1}),
                         "ConfusionMatrix::update: scores of shape [2, 4] have 4 classes, the matrix has 3",
                         ShapeError);
    CHECK_THROWS_WITH_AS(cm.update(std::vector<int64_t>{0, 5}, std::vector<int64_t>{0, 1}),
                         "ConfusionMatrix::update: prediction 5 out of range [0, 3) at row 1", IndexError);
    CHECK_THROWS_WITH_AS(cm.update(std::vector<int64_t>{0}, std::vector<int64_t>{0, 1}),
                         "ConfusionMatrix::update: 1 predictions but 2 labels", ShapeError);
    CHECK(cm.total() == 0);
    CHECK_THROWS_WITH_AS((void)cm.at(3, 0), "ConfusionMatrix::at: class 3 out of range [0, 3)", IndexError);
    CHECK_THROWS_AS((void)cm.precision(-1), IndexError);
}

TEST_CASE("accuracy and ConfusionMatrix::update take labels of any integer type") {
    CHECK(nn::accuracy(scores(), std::vector<int>{1, 0, 2, 1}) == 0.75);
    CHECK(nn::accuracy(scores(), std::vector<uint8_t>{1, 0, 2, 1}) == 0.75);
    CHECK_THROWS_WITH_AS((void)nn::accuracy(scores(), std::vector<int>{0, 1, 3, 0}),
                         "accuracy: label 3 out of range [0, 3) at row 2", IndexError);
    nn::ConfusionMatrix cm(3);
    cm.update(scores(), std::vector<int>{1, 0, 2, 1});
    CHECK(cm.at(1, 1) == 1);
    CHECK(cm.at(1, 2) == 1);
}
