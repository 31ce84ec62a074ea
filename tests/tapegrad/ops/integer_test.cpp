// Tests for include/tapegrad/ops/integer.hpp and the integer and mask element types of core/tensor.hpp.
#include <tapegrad/ops/integer.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

using namespace tapegrad;

TEST_CASE("integer tensors: creation, element access, printing, for int64, int32 and masks") {
    const TensorL a = TensorL::from({2, 3}, {4, 1, 7, 0, 2, 2});
    CHECK(a.shape() == Shape{2, 3});
    CHECK(a(1, 2) == 2);
    CHECK(a.at({0, 2}) == 7);
    a(0, 0) = -5;
    CHECK(a.to_vector() == std::vector<int64_t>{-5, 1, 7, 0, 2, 2});
    CHECK(TensorL::zeros({3}).to_vector() == std::vector<int64_t>{0, 0, 0});
    CHECK(TensorL::full({2}, int64_t{1} << 40).to_vector() == std::vector<int64_t>{1LL << 40, 1LL << 40});
    CHECK(TensorL::arange(4).to_vector() == std::vector<int64_t>{0, 1, 2, 3});
    CHECK(TensorL::arange(10, 0, -3).to_vector() == std::vector<int64_t>{10, 7, 4, 1});
    CHECK(TensorI::arange(1, 4).to_vector() == std::vector<int32_t>{1, 2, 3});
    CHECK(TensorL::scalar(9).item() == 9);
    CHECK(zeros<int32_t>({2}).to_vector() == std::vector<int32_t>{0, 0});
    CHECK(full<uint8_t>({2}, 1).to_vector() == std::vector<uint8_t>{1, 1});
    CHECK(zeros_like(a).shape() == a.shape());
    CHECK_THROWS_WITH_AS(TensorL::arange(0, 5, 0), "arange: step is zero (start 0, end 5, step 0)", ValueError);
    CHECK_THROWS_WITH_AS(TensorL::from({2}, {1, 2, 3}), "Tensor::from: shape [2] holds 2 elements but 3 values were given",
                         ShapeError);
    CHECK_THROWS_AS((void)a(2, 0), IndexError);
    CHECK(a.str() == "tensor([[-5, 1, 7],\n [0, 2, 2]], shape=[2, 3], dtype=int64)");
    CHECK(Mask<>::from({3}, {1, 0, 1}).str() == "tensor([1, 0, 1], shape=[3], dtype=uint8)");
    CHECK(TensorI::from({1}, {3}).str() == "tensor([3], shape=[1], dtype=int32)");
    CHECK(std::string(TensorF::dtype_name()) == "float");
    const TensorL c = a.detach();
    CHECK(c.data_ptr() == a.data_ptr());
}

TEST_CASE("integer tensors: reshape and flatten are views; transpose, slice and clone copy") {
    const TensorL a = TensorL::arange(6);
    const TensorL r = a.reshape({2, -1});
    CHECK(r.shape() == Shape{2, 3});
    CHECK(r.data_ptr() == a.data_ptr());
    CHECK(r.flatten().shape() == Shape{6});
    CHECK(flatten(TensorL::zeros({2, 3, 4}), 1).shape() == Shape{2, 12});
    CHECK(transpose(r, 0, 1).to_vector() == std::vector<int64_t>{0, 3, 1, 4, 2, 5});
    CHECK(r.t().shape() == Shape{3, 2});
    CHECK(slice(r, 1, 1, 3).to_vector() == std::vector<int64_t>{1, 2, 4, 5});
    CHECK(slice(r, 0, -1, 2).to_vector() == std::vector<int64_t>{3, 4, 5});
    CHECK(slice(r, 1, 2, 2).shape() == Shape{2, 0});
    const TensorL k = r.clone();
    CHECK(k.data_ptr() != r.data_ptr());
    CHECK(k.to_vector() == r.to_vector());
    const Mask<> m = Mask<>::from({2, 2}, {1, 0, 0, 0});
    CHECK(transpose(m, 0, 1).to_vector() == std::vector<uint8_t>{1, 0, 0, 0});
    CHECK_THROWS_WITH_AS((void)a.reshape({4, -1}), "reshape: cannot reshape tensor of shape [6] (6 elements) into [4, -1]",
                         ShapeError);
    CHECK_THROWS_WITH_AS(slice(r, 1, 2, 5), "slice: range [2, 5) is out of bounds for axis 1 of size 3 (shape [2, 3])",
                         IndexError);
}

TEST_CASE("comparisons: float and integer tensors, broadcasting, a value; NaN is unequal to everything") {
    const TensorF x = TensorF::from({2, 3}, {1, 5, 2, 7, 0, 7});
    const TensorF t = TensorF::from({3}, {1, 0, 7});
    CHECK(eq(x, t).to_vector() == std::vector<uint8_t>{1, 0, 0, 0, 1, 1});
    CHECK(ne(x, t).to_vector() == std::vector<uint8_t>{0, 1, 1, 1, 0, 0});
    CHECK(lt(x, 2.f).to_vector() == std::vector<uint8_t>{1, 0, 0, 0, 1, 0});
    CHECK(le(x, 2.f).to_vector() == std::vector<uint8_t>{1, 0, 1, 0, 1, 0});
    CHECK(gt(x, t).to_vector() == std::vector<uint8_t>{0, 1, 0, 1, 0, 0});
    CHECK(ge(x, t).to_vector() == std::vector<uint8_t>{1, 1, 0, 1, 1, 1});
    CHECK(eq(x, t).shape() == Shape{2, 3});
    const TensorL ids = TensorL::from({4}, {3, 0, 3, 1});
    CHECK(eq(ids, int64_t{3}).to_vector() == std::vector<uint8_t>{1, 0, 1, 0});
    CHECK(ge(ids, TensorL::from({4}, {3, 1, 2, 1})).to_vector() == std::vector<uint8_t>{1, 0, 1, 1});
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const TensorF n = TensorF::from({2}, {nan, 1});
    CHECK(eq(n, n).to_vector() == std::vector<uint8_t>{0, 1});
    CHECK(ne(n, n).to_vector() == std::vector<uint8_t>{1, 0});
    CHECK(lt(n, 5.f).to_vector() == std::vector<uint8_t>{0, 1});
    CHECK_THROWS_WITH_AS(eq(x, TensorF::zeros({2})),
                         "eq: shapes [2, 3] and [2] cannot be broadcast (dimension 1: 3 vs 2)", ShapeError);
}

TEST_CASE("argmax and argmin: int64 indices along an axis, first on ties, NaN wins, keepdim") {
    const TensorF x = TensorF::from({2, 3}, {1, 5, 5, 7, 0, 7});
    CHECK(argmax(x, 1).to_vector() == std::vector<int64_t>{1, 0});
    CHECK(argmax(x, 1).shape() == Shape{2});
    CHECK(argmax(x, -1, true).shape() == Shape{2, 1});
    CHECK(argmax(x, 0).to_vector() == std::vector<int64_t>{1, 0, 1});
    CHECK(argmin(x, 1).to_vector() == std::vector<int64_t>{0, 1});
    CHECK(argmin(x, 0).to_vector() == std::vector<int64_t>{0, 1, 0});
    const float nan = std::numeric_limits<float>::quiet_NaN();
    CHECK(argmax(TensorF::from({3}, {1, nan, 9}), 0).item() == 1);
    CHECK(argmin(TensorF::from({3}, {1, nan, -9}), 0).item() == 1);
    CHECK(argmax(TensorL::from({3}, {-4, 8, 8}), 0).item() == 1);
    CHECK(argmax(TensorD::arange(24).reshape({2, 3, 4}), 1).to_vector() == std::vector<int64_t>(8, 2));
    // agrees with max's indices
    Generator g(4);
    const TensorD r = TensorD::uniform({5, 7}, -1.0, 1.0, g);
    CHECK(argmax(r, 1).to_vector() == tapegrad::max(r, 1).indices);
    CHECK_THROWS_WITH_AS(argmax(TensorF::zeros({2, 0}), 1), "argmax: axis 1 of shape [2, 0] is empty", ValueError);
    CHECK_THROWS_AS(argmin(x, 2), IndexError);
}

TEST_CASE("cast: int <-> float <-> mask, truncation toward zero; refused on a tensor that requires grad") {
    const TensorF x = TensorF::from({4}, {1.9f, -1.9f, 0.f, 3.f});
    CHECK(cast<int64_t>(x).to_vector() == std::vector<int64_t>{1, -1, 0, 3});
    CHECK(cast<int32_t>(x).to_vector() == std::vector<int32_t>{1, -1, 0, 3});
    CHECK(cast<double>(TensorL::from({2}, {7, -2})).to_vector() == std::vector<double>{7, -2});
    CHECK(cast<float>(Mask<>::from({2}, {1, 0})).to_vector() == std::vector<float>{1, 0});
    CHECK(cast<int64_t>(TensorI::from({1}, {-3})).item() == -3);
    CHECK(cast<double>(x).to_vector()[0] == doctest::Approx(1.9));
    TensorF w = TensorF::ones({2});
    w.requires_grad_();
    CHECK_THROWS_WITH_AS(cast<int64_t>(w),
                         "cast: the input (shape [2]) requires grad, but a cast is not recorded; call detach() first to "
                         "drop its gradient",
                         ValueError);
    CHECK(cast<int64_t>(w.detach()).to_vector() == std::vector<int64_t>{1, 1});
    // accuracy by hand: comparisons and casts compose
    const TensorF scores = TensorF::from({3, 2}, {0.1f, 0.9f, 0.8f, 0.2f, 0.3f, 0.7f});
    const TensorL labels = TensorL::from({3}, {1, 0, 0});
    CHECK(sum(cast<float>(eq(argmax(scores, 1), labels))).item() == 2.f);
}

TEST_CASE("int64 labels: Labels views a Tensor<int64_t>, losses and metrics take one directly") {
    const TensorL labels = TensorL::from({3}, {1, 0, 1});
    const Labels<> l = labels;
    CHECK(l.size() == 3);
    CHECK(l.max_label() == 1);
    CHECK(l.max_row() == 0);
    CHECK(l.data() == labels.data_ptr());  // a view, no copy
    CHECK(l.tensor().data_ptr() == labels.data_ptr());
    CHECK(l.tensor().to_vector() == labels.to_vector());
    CHECK(!Labels<>().tensor().defined());
    const TensorL tail = TensorL::from({4}, {9, 9, 1, 0});
    CHECK(Labels<>(slice(tail, 0, 2, 4)).tensor().to_vector() == std::vector<int64_t>{1, 0});
    CHECK(Labels<>::from(std::vector<int64_t>{2, 0}).tensor().to_vector() == std::vector<int64_t>{2, 0});
    const TensorF logits = TensorF::from({3, 2}, {0.1f, 0.9f, 0.8f, 0.2f, 0.7f, 0.3f});
    const std::vector<int64_t> host = labels.to_vector();
    CHECK(cross_entropy(logits, labels).item() == cross_entropy(logits, host).item());
    CHECK(nll_loss(log_softmax(logits, 1), labels).item() == nll_loss(log_softmax(logits, 1), host).item());
    CHECK(nn::CrossEntropyLoss{}(logits, labels).item() == cross_entropy(logits, host).item());
    CHECK(nn::NLLLoss{}(log_softmax(logits, 1), labels).item() == nll_loss(log_softmax(logits, 1), host).item());
    CHECK(nn::accuracy(logits, labels) == doctest::Approx(2.0 / 3.0));
    nn::ConfusionMatrix cm(2);
    cm.update(logits, labels);
    cm.update(argmax(logits, 1), labels);
    CHECK(cm.at(1, 1) == 2);
    CHECK(cm.at(1, 0) == 2);
    CHECK_THROWS_WITH_AS(cross_entropy(logits, TensorL::from({3}, {1, 2, 0})),
                         "cross_entropy: label 2 out of range [0, 2) at row 1", IndexError);
    CHECK_THROWS_WITH_AS((void)Labels<>(TensorL::from({2}, {0, -3})), "Labels: label -3 at row 1 is negative",
                         IndexError);
    CHECK_THROWS_WITH_AS((void)Labels<>(TensorL::zeros({2, 1})), "Labels: class labels must be a 1-D tensor, got shape [2, 1]",
                         ShapeError);
}
