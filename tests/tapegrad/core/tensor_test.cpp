// tensor.hpp first, to prove it compiles on its own; the umbrella brings the member ops (reshape, ...).
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

using namespace tapegrad;

namespace {

bool aligned64(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

}  // namespace

// Tensor<int> must not compile: Tensor's static_assert says "the element type T must be float or double".
// A failing compile cannot be a runtime test; the concept it uses is checked here instead.
static_assert(!Scalar<int>);
static_assert(!Scalar<long double>);
static_assert(!Scalar<const float>);
static_assert(Scalar<float> && Scalar<double>);
static_assert(Device<Cpu>);
static_assert(!Device<int>);

TEST_CASE_TEMPLATE("Tensor: factories fill the requested shape", T, float, double) {
    using Tn = Tensor<T>;
    const Tn z = Tn::zeros({2, 3});
    CHECK(z.shape() == Shape{2, 3});
    CHECK(z.numel() == 6);
    CHECK(z.dim() == 2);
    CHECK(z.to_vector() == std::vector<T>(6, T(0)));
    CHECK(Tn::ones({4}).to_vector() == std::vector<T>(4, T(1)));
    CHECK(Tn::full({2, 2}, T(2.5)).to_vector() == std::vector<T>(4, T(2.5)));

    const Tn s = Tn::scalar(T(7));
    CHECK(s.dim() == 0);
    CHECK(s.numel() == 1);
    CHECK(s.item() == T(7));

    const Tn f = Tn::from({2, 2}, {T(1), T(2), T(3), T(4)});
    CHECK(f(0, 1) == T(2));
    CHECK(f(1, 0) == T(3));
    const std::vector<T> v{T(5), T(6), T(7)};
    CHECK(Tn::from({3}, v).to_vector() == v);
    CHECK(Tn::from({1, 3}, std::span<const T>(v)).shape() == Shape{1, 3});

    CHECK(Tn::arange(4).to_vector() == std::vector<T>{0, 1, 2, 3});
    CHECK(Tn::arange(T(1), T(2), T(0.25)).to_vector() == std::vector<T>{T(1), T(1.25), T(1.5), T(1.75)});
    CHECK(Tn::arange(T(3), T(0), T(-1)).to_vector() == std::vector<T>{3, 2, 1});
    CHECK(Tn::arange(T(0), T(1), T(0.3)).numel() == 4);  // 0, 0.3, 0.6, 0.9
    CHECK(Tn::arange(T(2), T(1)).numel() == 0);

    // free-function forms
    CHECK(zeros<T>({3}).to_vector() == std::vector<T>(3, T(0)));
    CHECK(ones<T>({2}).to_vector() == std::vector<T>(2, T(1)));
    CHECK(full<T>({2}, T(-1)).to_vector() == std::vector<T>(2, T(-1)));
    CHECK(zeros_like(f).shape() == f.shape());
    CHECK(ones_like(f).to_vector() == std::vector<T>(4, T(1)));

    Generator g(3);
    const Tn u = Tn::uniform({1000}, T(-2), T(3), g);
    T lo = T(10), hi = T(-10);
    for (T x : u.span()) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
    }
    CHECK(lo >= T(-2));
    CHECK(lo < T(-1.9));  // 1000 draws cover the range
    CHECK(hi < T(3));
    CHECK(hi > T(2.9));
    const Tn n = Tn::normal({20000}, T(1), T(2), g);
    double mean = 0, var = 0;
    for (T x : n.span()) mean += x;
    mean /= 20000;
    for (T x : n.span()) var += (x - mean) * (x - mean);
    var /= 20000;
    CHECK(mean == doctest::Approx(1.0).epsilon(0.05));
    CHECK(std::sqrt(var) == doctest::Approx(2.0).epsilon(0.05));
    CHECK(uniform<T>({2}, T(0), T(1), g).numel() == 2);
    CHECK(normal<T>({2}, T(0), T(1), g).numel() == 2);
}

TEST_CASE("Tensor: factory errors") {
    CHECK_THROWS_WITH_AS(TensorF::from({2, 2}, {1.f, 2.f, 3.f}),
                         "Tensor::from: shape [2, 2] holds 4 elements but 3 values were given", ShapeError);
    CHECK_THROWS_WITH_AS(TensorF::zeros({2, -1}), doctest::Contains("invalid shape [2, -1]"), ShapeError);
    CHECK_THROWS_AS(TensorD::arange(0.0, 1.0, 0.0), ValueError);
    CHECK_THROWS_AS(TensorD::arange(0.0, INFINITY), ValueError);
    Generator g(1);
    CHECK_THROWS_WITH_AS(TensorD::uniform({2}, 1.0, 0.0, g), "uniform: lower bound 1 is above upper bound 0",
                         ValueError);
    CHECK_THROWS_WITH_AS(TensorD::normal({2}, 0.0, -1.0, g), "normal: standard deviation -1 is negative", ValueError);
    CHECK_THROWS_AS(TensorD::from_blob(nullptr, {2}), ValueError);
}

TEST_CASE_TEMPLATE("Tensor: ranks 0 to 8 with full-index access", T, float, double) {
    for (int rank = 0; rank <= Shape::max_rank; ++rank) {
        CAPTURE(rank);
        Shape s;
        for (int i = 0; i < rank; ++i) s.push_back(i % 2 ? 2 : 1);
        Tensor<T> t = Tensor<T>::arange(s.numel()).reshape(s);
        CHECK(t.dim() == rank);
        CHECK(t.numel() == s.numel());
        CHECK(t.shape() == s);
        CHECK(t.data()[t.numel() - 1] == T(static_cast<float>(s.numel() - 1)));
    }
    Tensor<T> r4 = Tensor<T>::arange(120).reshape({2, 3, 4, 5});
    CHECK(r4(1, 2, 3, 4) == T(119));
    CHECK(r4(1, 0, 0, 0) == T(60));
    CHECK(r4.at({0, 1, 2, 3}) == T(20 + 10 + 3));
    Tensor<T> r5 = Tensor<T>::arange(64).reshape({2, 2, 2, 2, 4});
    CHECK(r5(1, 1, 1, 1, 3) == T(63));
    CHECK(r5(1, 0, 1, 0, 2) == T(32 + 8 + 2));
    Tensor<T> r0 = Tensor<T>::scalar(T(4));
    CHECK(r0() == T(4));
    CHECK(r0.at({}) == T(4));
    r4(0, 0, 0, 1) = T(-5);
    CHECK(r4.data()[1] == T(-5));
    r4.at({0, 0, 0, 2}) = T(-6);
    CHECK(r4.data()[2] == T(-6));
}

TEST_CASE("Tensor: at() and operator() are bounds-checked with IndexError") {
    TensorD t = TensorD::zeros({2, 3});
    CHECK_THROWS_WITH_AS((void)t(1, 3), "at: index 3 out of range for dimension 1 of size 3 (shape [2, 3])",
                         IndexError);
    CHECK_THROWS_WITH_AS((void)t.at({2, 0}), "at: index 2 out of range for dimension 0 of size 2 (shape [2, 3])",
                         IndexError);
    CHECK_THROWS_WITH_AS((void)t(-1, 0), doctest::Contains("index -1 out of range"), IndexError);
    CHECK_THROWS_WITH_AS((void)t(1), "at: 1 indices given for a tensor of rank 2 (shape [2, 3])", IndexError);
    CHECK_THROWS_AS((void)t.at({0, 0, 0}), IndexError);
    CHECK_THROWS_AS((void)TensorD::scalar(1.0)(0), IndexError);
    CHECK_NOTHROW((void)t(1, 2));
}

TEST_CASE_TEMPLATE("Tensor: data is 64-byte aligned", T, float, double) {
    for (int64_t n = 0; n < 70; ++n) {
        CAPTURE(n);
        CHECK(aligned64(Tensor<T>::empty({n}).data_ptr()));
    }
    CHECK(aligned64(Tensor<T>::scalar(T(1)).data_ptr()));
    CHECK(aligned64(Tensor<T>::zeros({3, 5, 7}).data_ptr()));
    Generator g(5);
    const Tensor<T> a = Tensor<T>::uniform({3, 5}, T(0), T(1), g);
    const Tensor<T> b = Tensor<T>::uniform({5, 7}, T(0), T(1), g);
    CHECK(aligned64(matmul(a, b).data_ptr()));
    CHECK(aligned64((a + T(1)).data_ptr()));
    CHECK(aligned64(tanh(a).data_ptr()));
    CHECK(aligned64(a.t().data_ptr()));
    CHECK(aligned64(sum(a, 0).data_ptr()));
}

TEST_CASE_TEMPLATE("Tensor: reshape and flatten are views with -1 inference", T, float, double) {
    Tensor<T> x = Tensor<T>::arange(24).reshape({2, 3, 4});
    CHECK(x.shape() == Shape{2, 3, 4});

    Tensor<T> r = x.reshape({-1, 4});
    CHECK(r.shape() == Shape{6, 4});
    CHECK(r.data_ptr() == x.data_ptr());
    CHECK(r.impl()->storage == x.impl()->storage);
    CHECK(x.reshape({2, -1}).shape() == Shape{2, 12});
    CHECK(x.reshape({-1}).shape() == Shape{24});
    CHECK(x.reshape({4, 3, 2}).shape() == Shape{4, 3, 2});

    // writes through either handle are visible through the other
    r(5, 3) = T(100);
    CHECK(x(1, 2, 3) == T(100));
    x(0, 0, 1) = T(-1);
    CHECK(r(0, 1) == T(-1));

    Tensor<T> f = x.flatten();
    CHECK(f.shape() == Shape{24});
    CHECK(f.data_ptr() == x.data_ptr());
    f(0) = T(42);
    CHECK(x(0, 0, 0) == T(42));
    CHECK(flatten(x, 1).shape() == Shape{2, 12});
    CHECK(flatten(x, 0, 1).shape() == Shape{6, 4});
    CHECK(flatten(x, -2, -1).shape() == Shape{2, 12});
    CHECK(flatten(x, 1).data_ptr() == x.data_ptr());
    CHECK(Tensor<T>::scalar(T(3)).flatten().shape() == Shape{1});
    CHECK(Tensor<T>::scalar(T(3)).reshape({1, 1}).shape() == Shape{1, 1});
    CHECK(Tensor<T>::zeros({1, 1}).reshape({}).shape() == Shape{});
}

TEST_CASE("Tensor: operator<< prints values, shape, requires_grad and grad_fn") {
    CHECK(TensorF::from({2, 2}, {1, 2, 3, 4}).str() == "tensor([[1, 2],\n [3, 4]], shape=[2, 2])");
    CHECK(TensorD::scalar(3.5).str() == "tensor(3.5, shape=[])");
    CHECK(TensorD::from({3}, {0.5, -1, 1e-7}).str() == "tensor([0.5, -1, 1e-07], shape=[3])");
    CHECK(TensorD::arange(10).str() == "tensor([0, 1, 2, ..., 7, 8, 9], shape=[10])");
    CHECK(TensorD::zeros({0}).str() == "tensor([], shape=[0])");
    CHECK(TensorD().str() == "tensor(undefined)");
    CHECK(TensorD::from({1, 2, 1}, {1, 2}).str() == "tensor([[[1],\n [2]]], shape=[1, 2, 1])");

    TensorD w = TensorD::ones({2});
    w.requires_grad_();
    CHECK(w.str() == "tensor([1, 1], shape=[2], requires_grad=true)");
    CHECK((w * w).str() == "tensor([1, 1], shape=[2], requires_grad=true, grad_fn=mul)");

    std::ostringstream os;
    os << TensorF::full({2}, 0.25f);
    CHECK(os.str() == "tensor([0.25, 0.25], shape=[2])");
}

TEST_CASE("Tensor: zero-copy Eigen views: matrix() and array()") {
    TensorD t = TensorD::arange(6).reshape({2, 3});
    auto m = t.matrix();
    CHECK(m.rows() == 2);
    CHECK(m.cols() == 3);
    CHECK(m(1, 0) == 3.0);  // row-major
    CHECK(m.data() == t.data());
    m(1, 2) = 50.0;
    CHECK(t(1, 2) == 50.0);
    t(0, 1) = -7.0;
    CHECK(m(0, 1) == -7.0);
    m.row(0).setConstant(9.0);
    CHECK(t.to_vector() == std::vector<double>{9, 9, 9, 3, 4, 50});

    auto a = TensorF::ones({2, 2, 2}).array();
    CHECK(a.size() == 8);
    TensorF q = TensorF::zeros({2, 2});
    q.array() += 2.0f;
    CHECK(q.to_vector() == std::vector<float>(4, 2.0f));

    CHECK_THROWS_WITH_AS((void)TensorD::zeros({2, 2, 2}).matrix(), "matrix: needs a 2-D tensor, got shape [2, 2, 2]",
                         ShapeError);
}

TEST_CASE("Tensor: from_blob wraps an Eigen row-major matrix without copying") {
    using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    RowMajor m(2, 3);
    m << 1, 2, 3, 4, 5, 6;
    const int64_t bytes_before = backend::cpu_live_bytes().load();
    {
        TensorD t = TensorD::from_blob(m.data(), {2, 3});
        CHECK(backend::cpu_live_bytes().load() == bytes_before);  // nothing allocated for the data
        CHECK(t.data_ptr() == m.data());
        CHECK(t(1, 0) == 4.0);
        m(0, 2) = 30.0;
        CHECK(t(0, 2) == 30.0);
        t(1, 1) = 50.0;
        CHECK(m(1, 1) == 50.0);
        // a view of the blob still points into the caller's memory
        CHECK(t.reshape({3, 2}).data_ptr() == m.data());
    }
    // the tensor did not free the caller's memory (ASan would report a double free when m dies)
    CHECK(m(1, 1) == 50.0);
    CHECK(backend::cpu_live_bytes().load() == bytes_before);
}

TEST_CASE("Tensor: from_eigen copies a column-major matrix into row-major order") {
    Eigen::MatrixXd m(2, 3);  // column-major
    m << 1, 2, 3, 4, 5, 6;
    TensorD t = TensorD::from_eigen(m);
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
    CHECK(t.data_ptr() != m.data());
    m(0, 0) = 100;  // a copy: the tensor does not follow
    CHECK(t(0, 0) == 1.0);

    TensorD tt = TensorD::from_eigen(m.transpose());
    CHECK(tt.shape() == Shape{3, 2});
    CHECK(tt(0, 1) == 4.0);
    CHECK(tt(2, 0) == 3.0);

    Eigen::ArrayXXf arr(2, 2);
    arr << 1.5f, 2.5f, 3.5f, 4.5f;
    TensorD fromf = TensorD::from_eigen(arr);  // cast float -> double
    CHECK(fromf.to_vector() == std::vector<double>{1.5, 2.5, 3.5, 4.5});
}

TEST_CASE("Tensor: copies share data; clone deep-copies") {
    TensorD a = TensorD::zeros({3});
    TensorD b = a;  // a handle
    b(1) = 5.0;
    CHECK(a(1) == 5.0);
    CHECK(a.same_as(b));
    TensorD c = a.clone();
    CHECK(c.data_ptr() != a.data_ptr());
    c(0) = 1.0;
    CHECK(a(0) == 0.0);
    CHECK(c.to_vector() == std::vector<double>{1, 5, 0});
}

TEST_CASE("Tensor: detach shares data, does not require grad and stops gradients") {
    TensorD x = TensorD::from({2}, {2.0, 3.0});
    x.requires_grad_();
    TensorD d = x.detach();
    CHECK(d.data_ptr() == x.data_ptr());
    CHECK_FALSE(d.requires_grad());
    CHECK(d.is_leaf());
    d(0) = 4.0;  // the detached handle is not a grad-requiring leaf: in-place is fine, and visible in x
    CHECK(x(0) == 4.0);

    // y = x * detach(x): only the first factor carries a gradient, so dy/dx = detach(x), not 2x
    TensorD y = sum(x * x.detach());
    y.backward();
    CHECK(x.grad().to_vector() == std::vector<double>{4.0, 3.0});
}

TEST_CASE("Tensor: in-place writes on a leaf that requires grad throw unless under NoGradGuard") {
    TensorD w = TensorD::ones({3});
    w.requires_grad_();
    CHECK_THROWS_WITH_AS(w.fill_(2.0), doctest::Contains("fill_: a leaf tensor that requires grad cannot be modified"),
                         ValueError);
    CHECK_THROWS_AS(w.zero_(), ValueError);
    CHECK_THROWS_WITH_AS(w.copy_(TensorD::zeros({3})), doctest::Contains("copy_: a leaf tensor"), ValueError);
    CHECK(w.to_vector() == std::vector<double>(3, 1.0));
    {
        NoGradGuard ng;
        w.fill_(2.0);
        CHECK(w.to_vector() == std::vector<double>(3, 2.0));
        w.copy_(TensorD::from({3}, {1, 2, 3}));
        CHECK(w.to_vector() == std::vector<double>{1, 2, 3});
        CHECK_THROWS_WITH_AS(w.copy_(TensorD::zeros({2})),
                             "copy_: source shape [2] differs from destination shape [3]", ShapeError);
    }
    TensorD plain = TensorD::ones({2});
    plain.fill_(3.0);
    CHECK(plain.to_vector() == std::vector<double>(2, 3.0));
    plain.zero_();
    CHECK(plain.to_vector() == std::vector<double>(2, 0.0));
}

TEST_CASE("Tensor: leaves, requires_grad_ and grad bookkeeping") {
    TensorD x = TensorD::from({2}, {1.0, 2.0});
    CHECK(x.is_leaf());
    CHECK_FALSE(x.requires_grad());
    CHECK(x.grad_fn_name() == nullptr);
    CHECK_FALSE(x.grad().defined());
    x.requires_grad_();
    CHECK(x.requires_grad());
    TensorD y = x * 2.0;
    CHECK_FALSE(y.is_leaf());
    CHECK(y.requires_grad());
    CHECK(std::string(y.grad_fn_name()) == "mul");
    CHECK_THROWS_WITH_AS(y.requires_grad_(false), doctest::Contains("was produced by 'mul'"), ValueError);
    x.requires_grad_(false);
    CHECK_FALSE(x.requires_grad());
    CHECK_FALSE((x * 2.0).requires_grad());
}

TEST_CASE("Tensor: item, undefined tensors and device name") {
    CHECK(TensorF::from({1, 1}, {2.5f}).item() == 2.5f);
    CHECK_THROWS_WITH_AS((void)TensorF::zeros({2}).item(), "item: tensor of shape [2] has 2 elements, not one",
                         ShapeError);
    TensorD u;
    CHECK_FALSE(u.defined());
    CHECK_THROWS_WITH_AS((void)u.shape(), "Tensor: operation on an undefined tensor", ValueError);
    CHECK_THROWS_AS((void)u.data_ptr(), ValueError);
    CHECK(std::string(TensorD::device_name()) == "cpu");
}
