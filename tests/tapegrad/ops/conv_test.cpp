// Tests for tapegrad/ops/conv.hpp (conv2d) and tapegrad/ops/pooling.hpp (max_pool2d, avg_pool2d,
// adaptive_avg_pool2d, global_avg_pool2d), which share their window geometry, and the primitives beneath
// them in tapegrad/backend/cpu/conv_pool.hpp: hand-computed forwards and backwards,
// a direct-loop reference convolution on random configurations, the im2col/col2im adjoint identity, the
// batch split into parts (threads), the 2x2 max-pool loop against the general scan, gradcheck of every op,
// and the argument checks.

#include "../../support/op_tables.hpp"

#include <tapegrad/backend/cpu.hpp>
#include <tapegrad/ops/conv.hpp>
#include <tapegrad/ops/pooling.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using tapegrad::AvgPool2dParams;
using tapegrad::Conv2dParams;
using tapegrad::Generator;
using tapegrad::MaxPool2dParams;
using tapegrad::Shape;
using tapegrad::TensorD;
using tapegrad::TensorF;
using tapegrad::testing::check_gradient;
using tapegrad::testing::Inputs;

/// The exception message of `f`, or "" if it does not throw `E`.
using tapegrad::testing::message_of;

TensorD uniform(const Shape& s, Generator& g) { return TensorD::uniform(s, -1.0, 1.0, g); }

/// The textbook definition, one multiply-add at a time:
/// y[n, o, oy, ox] = b[o] + sum_{c, i, j} w[o, c, i, j] x[n, g*C/groups + c, oy*sh - ph + i*dh, ox*sw - pw + j*dw].
TensorD direct_conv(const TensorD& x, const TensorD& w, const TensorD& b, const Conv2dParams& p) {
    const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
    const int64_t O = w.size(0), Cg = w.size(1), kh = w.size(2), kw = w.size(3), Og = O / p.groups;
    const int64_t OH = (H + 2 * p.padding.h - p.dilation.h * (kh - 1) - 1) / p.stride.h + 1;
    const int64_t OW = (W + 2 * p.padding.w - p.dilation.w * (kw - 1) - 1) / p.stride.w + 1;
    TensorD y = TensorD::zeros({N, O, OH, OW});
    for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < O; ++o)
            for (int64_t oy = 0; oy < OH; ++oy)
                for (int64_t ox = 0; ox < OW; ++ox) {
                    double s = b.defined() ? b(o) : 0.0;
                    for (int64_t c = 0; c < Cg; ++c)
                        for (int64_t i = 0; i < kh; ++i)
                            for (int64_t j = 0; j < kw; ++j) {
                                const int64_t iy = oy * p.stride.h - p.padding.h + i * p.dilation.h;
                                const int64_t ix = ox * p.stride.w - p.padding.w + j * p.dilation.w;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += w(o, c, i, j) * x(n, (o / Og) * Cg + c, iy, ix);
                            }
                    y(n, o, oy, ox) = s;
                }
    return y;
}

double max_abs_diff(const TensorD& a, const TensorD& b) {
    REQUIRE(a.shape() == b.shape());
    double m = 0;
    for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a.data()[i] - b.data()[i]));
    return m;
}

const TensorD x3x3 = TensorD::from({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});

}  // namespace

// ==== conv2d: hand-computed values =========================================================================

TEST_CASE("conv2d: 1x1x3x3 input, 2x2 kernel, bias (by hand)") {
    // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], w = [[1, 2], [3, 4]], b = 0.5; y[i, j] = sum of w * the 2x2 block at (i, j):
    //   y00 = 1*1 + 2*2 + 3*4 + 4*5 = 37,  y01 = 1*2 + 2*3 + 3*5 + 4*6 = 47,
    //   y10 = 1*4 + 2*5 + 3*7 + 4*8 = 67,  y11 = 1*5 + 2*6 + 3*8 + 4*9 = 77;  + 0.5 each.
    TensorD x = x3x3.clone().detach();
    TensorD w = TensorD::from({1, 1, 2, 2}, {1, 2, 3, 4});
    TensorD b = TensorD::from({1}, {0.5});
    x.requires_grad_();
    w.requires_grad_();
    b.requires_grad_();
    const TensorD y = tapegrad::conv2d(x, w, b);
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y.to_vector() == std::vector<double>{37.5, 47.5, 67.5, 77.5});
    CHECK(y.grad_fn_name() == std::string("conv2d"));

    // L = sum(y): dW[i, j] = sum of the four pixels tap (i, j) saw:
    //   dW00 = 1+2+4+5 = 12, dW01 = 2+3+5+6 = 16, dW10 = 4+5+7+8 = 24, dW11 = 5+6+8+9 = 28;  db = 4 outputs = 4;
    //   dx[p] = sum of the weights that touched pixel p: [[1, 1+2, 2], [1+3, 1+2+3+4, 2+4], [3, 3+4, 4]].
    tapegrad::sum(y).backward();
    CHECK(w.grad().to_vector() == std::vector<double>{12, 16, 24, 28});
    CHECK(b.grad().to_vector() == std::vector<double>{4});
    CHECK(x.grad().to_vector() == std::vector<double>{1, 3, 2, 4, 10, 6, 3, 7, 4});
}

TEST_CASE("conv2d: padding 1 and stride 2 (by hand)") {
    // Padded 5x5 input, ones 2x2 kernel, stride 2: OH = floor((3 + 2 - 2) / 2) + 1 = 2. The windows start at
    // padded rows/cols {-1, 1}: (0,0) sees only x00 = 1; (0,1) sees x01 + x02 = 5; (1,0) sees x10 + x20 = 11;
    // (1,1) sees x11 + x12 + x21 + x22 = 5 + 6 + 8 + 9 = 28.
    const TensorD y = tapegrad::conv2d(x3x3, TensorD::ones({1, 1, 2, 2}), {.stride = 2, .padding = 1});
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y.to_vector() == std::vector<double>{1, 5, 11, 28});
}

TEST_CASE("conv2d: dilation 2 spreads the taps (by hand)") {
    // A 2x2 kernel with dilation 2 spans 3x3: one output, 1*x00 + 2*x02 + 3*x20 + 4*x22 = 1 + 6 + 21 + 36 = 64.
    const TensorD y = tapegrad::conv2d(x3x3, TensorD::from({1, 1, 2, 2}, {1, 2, 3, 4}), {.dilation = 2});
    CHECK(y.shape() == Shape{1, 1, 1, 1});
    CHECK(y.item() == 64.0);
}

TEST_CASE("conv2d: groups keep the channel groups apart (by hand)") {
    // Two channels [2] and [3] (1x1 planes), 1x1 kernels 10 and 100, groups 2: each output sees one channel:
    // [10*2, 100*3] = [20, 300]. With groups 1 a [2, 2, 1, 1] weight mixes them: [1*2 + 2*3, 3*2 + 4*3] = [8, 18].
    const TensorD x = TensorD::from({1, 2, 1, 1}, {2, 3});
    CHECK(tapegrad::conv2d(x, TensorD::from({2, 1, 1, 1}, {10, 100}), {.groups = 2}).to_vector() ==
          std::vector<double>{20, 300});
    CHECK(tapegrad::conv2d(x, TensorD::from({2, 2, 1, 1}, {1, 2, 3, 4})).to_vector() == std::vector<double>{8, 18});
}

TEST_CASE("conv2d: rectangular kernel, stride and padding, per axis") {
    // x: 1x1x3x3; kernel 1x3 of ones, padding (0, 1), stride (2, 1): rows 0 and 2, each a running 3-sum with
    // zero padding: row 0 [1+2, 1+2+3, 2+3] = [3, 6, 5], row 2 [7+8, 7+8+9, 8+9] = [15, 24, 17].
    const TensorD y =
        tapegrad::conv2d(x3x3, TensorD::ones({1, 1, 1, 3}), {.stride = {2, 1}, .padding = {0, 1}});
    CHECK(y.shape() == Shape{1, 1, 2, 3});
    CHECK(y.to_vector() == std::vector<double>{3, 6, 5, 15, 24, 17});
}

// ==== conv2d against the direct loop ====================================================================

TEST_CASE("conv2d: matches the direct definition on random configurations") {
    Generator g(11);
    struct Config {
        Shape x, w;
        Conv2dParams p;
        bool bias;
    };
    std::vector<Config> configs = {
        {{2, 3, 7, 6}, {4, 3, 3, 3}, {}, true},
        {{1, 4, 9, 9}, {6, 2, 3, 2}, {.stride = 2, .padding = 1, .dilation = 2, .groups = 2}, false},
        {{3, 6, 5, 8}, {6, 1, 3, 3}, {.stride = {1, 2}, .padding = {2, 1}, .groups = 6}, true},  // depthwise
        {{2, 2, 4, 4}, {3, 2, 1, 1}, {}, true},                                                    // 1x1
        {{1, 1, 5, 5}, {2, 1, 5, 5}, {.padding = 2}, true},                                      // 'same'
        {{2, 1, 3, 3}, {1, 1, 3, 3}, {.stride = 3}, false},
        {{1, 2, 6, 7}, {2, 2, 2, 3}, {.stride = {3, 2}, .padding = {1, 0}, .dilation = {1, 2}}, true},
    };
    for (int k = 0; k < 20; ++k) {  // and random ones
        const int64_t groups = 1 + static_cast<int64_t>(g.below(3));
        const int64_t cg = 1 + static_cast<int64_t>(g.below(3)), og = 1 + static_cast<int64_t>(g.below(3));
        const int64_t kh = 1 + static_cast<int64_t>(g.below(3)), kw = 1 + static_cast<int64_t>(g.below(3));
        const Conv2dParams p{.stride = {1 + static_cast<int64_t>(g.below(3)), 1 + static_cast<int64_t>(g.below(3))},
                             .padding = {static_cast<int64_t>(g.below(3)), static_cast<int64_t>(g.below(3))},
                             .dilation = {1 + static_cast<int64_t>(g.below(2)), 1 + static_cast<int64_t>(g.below(2))},
                             .groups = groups};
        const int64_t H = p.dilation.h * (kh - 1) + 1 + static_cast<int64_t>(g.below(5));
        const int64_t W = p.dilation.w * (kw - 1) + 1 + static_cast<int64_t>(g.below(5));
        configs.push_back({{1 + static_cast<int64_t>(g.below(3)), cg * groups, H, W}, {og * groups, cg, kh, kw}, p,
                           g.below(2) == 1});
    }
    for (const auto& c : configs) {
        CAPTURE(c.x);
        CAPTURE(c.w);
        CAPTURE(c.p.stride);
        CAPTURE(c.p.padding);
        CAPTURE(c.p.dilation);
        CAPTURE(c.p.groups);
        const TensorD x = uniform(c.x, g), w = uniform(c.w, g);
        const TensorD b = c.bias ? uniform({c.w[0]}, g) : TensorD{};
        CHECK(max_abs_diff(tapegrad::conv2d(x, w, b, c.p), direct_conv(x, w, b, c.p)) < 1e-12);
    }
}

TEST_CASE("conv2d: a batch gives the per-image results, and the per-image gradients summed") {
    // Large enough (20 images of 64 x 62*62 x 9 multiply-adds) to be split across threads where OpenMP is on.
    Generator g(12);
    const TensorF x = TensorF::uniform({20, 1, 64, 64}, -1.0f, 1.0f, g);
    TensorF w = TensorF::uniform({64, 1, 3, 3}, -1.0f, 1.0f, g);
    TensorF b = TensorF::uniform({64}, -1.0f, 1.0f, g);
    w.requires_grad_();
    b.requires_grad_();
    const TensorF y = tapegrad::conv2d(x, w, b);
    tapegrad::sum(y).backward();
    const std::vector<float> dw_batch = w.grad().to_vector();
    w.zero_grad();
    double worst = 0;
    for (int64_t n = 0; n < 20; ++n) {
        const TensorF xn = tapegrad::slice(x, 0, n, n + 1);
        const TensorF yn = tapegrad::conv2d(xn, w, b);
        tapegrad::sum(yn).backward();
        const TensorF ref = tapegrad::slice(y.detach(), 0, n, n + 1);
        for (int64_t i = 0; i < yn.numel(); ++i)
            worst = std::max(worst, static_cast<double>(std::abs(yn.data()[i] - ref.data()[i])));
    }
    CHECK(worst < 1e-5);  // the same sums, blocked differently by the matrix product
    const std::vector<float> dw_sum = w.grad().to_vector();
    for (size_t i = 0; i < dw_sum.size(); ++i) CHECK(dw_batch[i] == doctest::Approx(dw_sum[i]).epsilon(1e-4));
}

TEST_CASE("conv2d: an empty batch gives an empty output and zero weight gradient") {
    TensorD w = TensorD::ones({2, 1, 3, 3});
    w.requires_grad_();
    const TensorD y = tapegrad::conv2d(TensorD::zeros({0, 1, 5, 5}), w, {.padding = 1});
    CHECK(y.shape() == Shape{0, 2, 5, 5});
    tapegrad::sum(y).backward();
    for (double v : w.grad().span()) CHECK(v == 0.0);
}

TEST_CASE("conv2d: a 1x1 kernel (no im2col: the image is its own column matrix) matches the direct definition") {
    Generator g(14);
    const TensorD x = uniform({3, 4, 5, 6}, g), w = uniform({6, 2, 1, 1}, g), b = uniform({6}, g);
    CHECK(max_abs_diff(tapegrad::conv2d(x, w, b, {.groups = 2}), direct_conv(x, w, b, {.groups = 2})) < 1e-12);
    check_gradient(
        "conv2d 1x1", [](const Inputs& in) { return tapegrad::conv2d(in[0], in[1], in[2], {.groups = 2}); },
        {uniform({2, 4, 3, 3}, g), uniform({6, 2, 1, 1}, g), uniform({6}, g)});
}

// ==== the primitives ========================================================================================

TEST_CASE("conv2d primitives: splitting the batch into parts gives the one-part results") {
    // With OpenMP the parts run on threads, without it one after another: either way each part sums its own
    // images' weight and bias gradients and the sums are added in part order. Kept column matrices
    // (cols) must give what recomputing them gives.
    using Ops = tapegrad::backend::Ops<tapegrad::Cpu>;
    Generator g(15);
    const int64_t N = 7, O = 6, groups = 2;
    const Shape sx{N, 4, 6, 5};
    const tapegrad::backend::Window2d win =
        tapegrad::detail::window_geometry("test", sx, {3, 2}, {2, 1}, 1, 1);
    const TensorD x = uniform(sx, g), w = uniform({O, 2, 3, 2}, g), b = uniform({O}, g);
    const TensorD dy = uniform({N, O, win.out_h, win.out_w}, g);
    const auto run = [&](int64_t parts, bool keep_cols, bool dw_overwrite) {
        std::vector<double> cols(static_cast<size_t>(N * win.col_rows() * win.out_plane()));
        TensorD y = TensorD::full(dy.shape(), 99.0), dx = TensorD::full(x.shape(), 0.5);
        TensorD dw = TensorD::full(w.shape(), dw_overwrite ? 99.0 : 0.5), db = TensorD::full(b.shape(), 0.5);
        Ops::conv2d_forward_in_parts(win, N, O, groups, x.data(), w.data(), b.data(), y.data(), parts,
                            keep_cols ? cols.data() : nullptr);
        Ops::conv2d_backward_in_parts(win, N, O, groups, x.data(), w.data(), dy.data(), dx.data(), dw.data(), dw_overwrite,
                             db.data(), parts, keep_cols ? cols.data() : nullptr);
        return std::vector<TensorD>{y, dx, dw, db};
    };
    const std::vector<TensorD> ref = run(1, false, true);
    CHECK(max_abs_diff(ref[0], direct_conv(x, w, b, {.stride = {2, 1}, .padding = 1, .groups = 2})) < 1e-12);
    for (int64_t parts : {1, 2, 3, 7})
        for (bool keep_cols : {false, true}) {
            CAPTURE(parts);
            CAPTURE(keep_cols);
            const std::vector<TensorD> got = run(parts, keep_cols, true);
            for (size_t i = 0; i < got.size(); ++i) CHECK(max_abs_diff(got[i], ref[i]) < 1e-12);
            // accumulating into an existing weight gradient adds the same sums
            const std::vector<TensorD> acc = run(parts, keep_cols, false);
            CHECK(max_abs_diff(acc[2], ref[2] + TensorD::full(w.shape(), 0.5)) < 1e-12);
        }
}


TEST_CASE("im2col and col2im are adjoint: <im2col(x), c> == <x, col2im(c)>") {
    using Ops = tapegrad::backend::Ops<tapegrad::Cpu>;
    Generator g(13);
    for (int k = 0; k < 30; ++k) {
        tapegrad::backend::Window2d w;
        w.channels = 1 + static_cast<int64_t>(g.below(3));
        w.kernel_h = 1 + static_cast<int64_t>(g.below(3));
        w.kernel_w = 1 + static_cast<int64_t>(g.below(3));
        w.stride_h = 1 + static_cast<int64_t>(g.below(3));
        w.stride_w = 1 + static_cast<int64_t>(g.below(3));
        w.pad_h = static_cast<int64_t>(g.below(3));
        w.pad_w = static_cast<int64_t>(g.below(3));
        w.dilation_h = 1 + static_cast<int64_t>(g.below(2));
        w.dilation_w = 1 + static_cast<int64_t>(g.below(2));
        w.height = w.dilation_h * (w.kernel_h - 1) + 1 + static_cast<int64_t>(g.below(5));
        w.width = w.dilation_w * (w.kernel_w - 1) + 1 + static_cast<int64_t>(g.below(5));
        w.out_h = tapegrad::backend::window_out_size(w.height, w.kernel_h, w.stride_h, w.pad_h, w.dilation_h);
        w.out_w = tapegrad::backend::window_out_size(w.width, w.kernel_w, w.stride_w, w.pad_w, w.dilation_w);
        const int64_t n = 1 + static_cast<int64_t>(g.below(3));
        const TensorD x = uniform({n, w.channels, w.height, w.width}, g);
        const TensorD c = uniform({w.col_rows(), n * w.out_plane()}, g);
        TensorD col = TensorD::full(c.shape(), 99.0);  // overwritten, including the padding entries
        TensorD dx = TensorD::zeros(x.shape());
        Ops::im2col(w, n, x.data(), col.data());
        Ops::col2im(w, n, c.data(), dx.data());
        double lhs = 0, rhs = 0;
        for (int64_t i = 0; i < c.numel(); ++i) lhs += col.data()[i] * c.data()[i];
        for (int64_t i = 0; i < x.numel(); ++i) rhs += x.data()[i] * dx.data()[i];
        CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
        for (double v : col.span()) CHECK(v != 99.0);
    }
}

TEST_CASE("window_out_size is floor((in + 2p - d(k-1) - 1) / s) + 1, or 0 when the kernel does not fit") {
    using tapegrad::backend::window_out_size;
    CHECK(window_out_size(28, 5, 1, 2, 1) == 28);  // LeNet conv1, 'same'
    CHECK(window_out_size(14, 5, 1, 0, 1) == 10);  // LeNet conv2
    CHECK(window_out_size(28, 2, 2, 0, 1) == 14);  // 2x2 pooling
    CHECK(window_out_size(7, 3, 2, 1, 2) == 3);    // (7 + 2 - 4 - 1) / 2 + 1
    CHECK(window_out_size(4, 5, 1, 0, 1) == 0);
}

// ==== pooling: hand-computed values ==========================================================================

TEST_CASE("max_pool2d: 2x2 windows pick the maximum and route the gradient to it") {
    // Windows of [[1, 9, 2, 0], [3, 4, 8, 7], [5, 0, 1, 1], [6, 2, 3, 4]]:
    //   {1, 9, 3, 4} -> 9 at (0,1);  {2, 0, 8, 7} -> 8 at (1,2);  {5, 0, 6, 2} -> 6 at (3,0);  {1, 1, 3, 4} -> 4 at (3,3).
    TensorD x = TensorD::from({1, 1, 4, 4}, {1, 9, 2, 0, 3, 4, 8, 7, 5, 0, 1, 1, 6, 2, 3, 4});
    x.requires_grad_();
    const TensorD y = tapegrad::max_pool2d(x, 2);
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y.to_vector() == std::vector<double>{9, 8, 6, 4});
    CHECK(y.grad_fn_name() == std::string("max_pool2d"));
    y.backward(TensorD::from({1, 1, 2, 2}, {1, 2, 3, 4}));
    CHECK(x.grad().to_vector() == std::vector<double>{0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0, 4});
}

TEST_CASE("max_pool2d: ties go to the first pixel; overlapping windows add up at a shared winner") {
    TensorD x = TensorD::full({1, 1, 2, 2}, 1.0);
    x.requires_grad_();
    tapegrad::sum(tapegrad::max_pool2d(x, 2)).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{1, 0, 0, 0});

    // 3x3 windows, stride 1, on a 3x4 map whose maximum 9 sits in both windows: it receives 1 + 1.
    TensorD z = TensorD::from({1, 1, 3, 4}, {0, 1, 2, 0, 3, 9, 4, 1, 0, 2, 1, 0});
    z.requires_grad_();
    const TensorD y = tapegrad::max_pool2d(z, 3, {.stride = 1});
    CHECK(y.to_vector() == std::vector<double>{9, 9});
    tapegrad::sum(y).backward();
    CHECK(z.grad().to_vector() == std::vector<double>{0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("max_pool2d: padding never wins, even over negative values") {
    // 3x3 windows, stride 1, padding 1 on [[-1, -2], [-3, -4]]: every window holds all four pixels (and
    // padding), so every output is -1; zero padding would have given 0.
    const TensorD y = tapegrad::max_pool2d(TensorD::from({1, 1, 2, 2}, {-1, -2, -3, -4}), 3, {.stride = 1, .padding = 1});
    CHECK(y.to_vector() == std::vector<double>{-1, -1, -1, -1});
}

TEST_CASE("max_pool2d: NaN propagates as in PyTorch") {
    const TensorD y = tapegrad::max_pool2d(TensorD::from({1, 1, 2, 2}, {1, NAN, 3, 2}), 2);
    CHECK(std::isnan(y.item()));
}

TEST_CASE("max_pool2d: the 2x2 stride-2 loop agrees with the general scan, ties, NaN and infinities included") {
    using Ops = tapegrad::backend::Ops<tapegrad::Cpu>;
    Generator g(16);
    tapegrad::backend::Window2d win;
    win.height = 6;
    win.width = 8;
    win.kernel_h = win.kernel_w = win.stride_h = win.stride_w = 2;
    win.out_h = 3;
    win.out_w = 4;
    const int64_t planes = 5, n_in = planes * win.in_plane(), n_out = planes * win.out_plane();
    for (int trial = 0; trial < 4; ++trial) {
        CAPTURE(trial);
        // values from {0, 1, 2}: most windows hold ties; trials 2 and 3 add a NaN and infinities
        std::vector<float> x(static_cast<size_t>(n_in));
        for (float& v : x) v = static_cast<float>(g.below(3));
        if (trial >= 2) x[17] = NAN;
        if (trial == 3) x[40] = INFINITY, x[41] = -INFINITY;
        std::vector<float> y_fast(static_cast<size_t>(n_out)), y_ref(y_fast.size());
        std::vector<int64_t> a_fast(y_fast.size()), a_ref(y_fast.size());
        Ops::max_pool2d_2x2(win, planes, x.data(), y_fast.data(), a_fast.data());
        Ops::max_pool2d_general(win, planes, x.data(), y_ref.data(), a_ref.data());
        CHECK(a_fast == a_ref);
        for (size_t i = 0; i < y_ref.size(); ++i)
            CHECK((y_fast[i] == y_ref[i] || (std::isnan(y_fast[i]) && std::isnan(y_ref[i]))));
        // without argmax (inference), and through the dispatching max_pool2d
        std::vector<float> y_plain(y_fast.size());
        Ops::max_pool2d(win, planes, x.data(), y_plain.data(), static_cast<int64_t*>(nullptr));
        for (size_t i = 0; i < y_ref.size(); ++i)
            CHECK((y_plain[i] == y_ref[i] || (std::isnan(y_plain[i]) && std::isnan(y_ref[i]))));
    }
}

TEST_CASE("avg_pool2d: plain windows, and padding with and without count_include_pad") {
    // 2x2 windows of 1..16 (4x4): (1+2+5+6)/4 = 3.5, (3+4+7+8)/4 = 5.5, (9+10+13+14)/4 = 11.5, 13.5.
    const TensorD x16 = TensorD::arange(1.0, 17.0).reshape({1, 1, 4, 4});
    CHECK(tapegrad::avg_pool2d(x16, 2).to_vector() == std::vector<double>{3.5, 5.5, 11.5, 13.5});

    // 3x3 windows, stride 1, padding 1 on x = 1..9 (3x3):
    //   corner (0,0): 1+2+4+5 = 12 -> 12/9 with padding counted, 12/4 = 3 without;
    //   edge (0,1): 1+2+3+4+5+6 = 21 -> 21/9, or 21/6 = 3.5;  centre: 45/9 = 5 either way.
    const TensorD with = tapegrad::avg_pool2d(x3x3, 3, {.stride = 1, .padding = 1});
    const TensorD without = tapegrad::avg_pool2d(x3x3, 3, {.stride = 1, .padding = 1, .count_include_pad = false});
    CHECK(with.shape() == Shape{1, 1, 3, 3});
    CHECK(with(0, 0, 0, 0) == doctest::Approx(12.0 / 9));
    CHECK(with(0, 0, 0, 1) == doctest::Approx(21.0 / 9));
    CHECK(with(0, 0, 1, 1) == doctest::Approx(5.0));
    CHECK(without(0, 0, 0, 0) == doctest::Approx(3.0));
    CHECK(without(0, 0, 0, 1) == doctest::Approx(3.5));
    CHECK(without(0, 0, 1, 1) == doctest::Approx(5.0));

    // Backward, L = sum: each pixel gets 1/divisor per window holding it. 2x2 windows, stride 2, padding 1 on
    // a 2x2 input: each pixel is alone in its window: 1/4 with padding counted, 1 without.
    TensorD x = TensorD::from({1, 1, 2, 2}, {1, 2, 3, 4});
    x.requires_grad_();
    tapegrad::sum(tapegrad::avg_pool2d(x, 2, {.padding = 1})).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{0.25, 0.25, 0.25, 0.25});
    x.zero_grad();
    tapegrad::sum(tapegrad::avg_pool2d(x, 2, {.padding = 1, .count_include_pad = false})).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{1, 1, 1, 1});
}

TEST_CASE("global_avg_pool2d and adaptive_avg_pool2d (by hand)") {
    // Channel means of a [1, 2, 2, 2] input: (1+2+3+4)/4 = 2.5, (10+20+30+40)/4 = 25.
    const TensorD x = TensorD::from({1, 2, 2, 2}, {1, 2, 3, 4, 10, 20, 30, 40});
    const TensorD g = tapegrad::global_avg_pool2d(x);
    CHECK(g.shape() == Shape{1, 2});
    CHECK(g.to_vector() == std::vector<double>{2.5, 25});

    // 5x5 -> 2x2 on v[r, c] = 5r + c: PyTorch's windows are rows/cols [0, 3) and [2, 5) (they overlap at 2),
    // so the means are 5*mean(r) + mean(c): 5*1 + 1 = 6, 5*1 + 3 = 8, 5*3 + 1 = 16, 5*3 + 3 = 18.
    const TensorD v = TensorD::arange(25).reshape({1, 1, 5, 5});
    const TensorD a = tapegrad::adaptive_avg_pool2d(v, 2);
    CHECK(a.shape() == Shape{1, 1, 2, 2});
    CHECK(a.to_vector() == std::vector<double>{6, 8, 16, 18});
    CHECK(tapegrad::adaptive_avg_pool2d(v, {1, 5}).to_vector() == std::vector<double>{10, 11, 12, 13, 14});
}

// ==== gradcheck =============================================================================================

TEST_CASE("gradcheck: conv2d and pooling over the device-generic table, on the CPU") {
    tapegrad::testing::check_table<tapegrad::testing::ConvPoolTable, tapegrad::Cpu>(7000, 2);
}

TEST_CASE("gradcheck: conv2d with stride 2, padding 1, dilation 2, groups 2, no bias") {
    Generator g(21);
    const Conv2dParams p{.stride = 2, .padding = 1, .dilation = 2, .groups = 2};
    check_gradient(
        "conv2d", [p](const Inputs& in) { return tapegrad::conv2d(in[0], in[1], p); },
        {uniform({2, 4, 7, 6}, g), uniform({4, 2, 3, 3}, g)});
}

TEST_CASE("gradcheck: conv2d with bias, rectangular kernel and per-axis options") {
    Generator g(22);
    const Conv2dParams p{.stride = {1, 2}, .padding = {2, 1}, .dilation = {1, 2}};
    check_gradient(
        "conv2d", [p](const Inputs& in) { return tapegrad::conv2d(in[0], in[1], in[2], p); },
        {uniform({2, 3, 5, 6}, g), uniform({2, 3, 2, 3}, g), uniform({2}, g)});
    // only the input requiring grad (the weight a constant), and only the weight
    TensorD x = uniform({1, 2, 4, 4}, g), w = uniform({3, 2, 3, 3}, g);
    x.requires_grad_();
    check_gradient(
        "conv2d (dx only)", [](const Inputs& in) { return tapegrad::conv2d(in[0], in[1], {.padding = 1}); },
        {x, w});
}

TEST_CASE("gradcheck: a reused input through two convolutions accumulates both gradients") {
    Generator g(23);
    check_gradient(
        "conv2d twice",
        [](const Inputs& in) {
            return tapegrad::conv2d(in[0], in[1], {.padding = 1}) + tapegrad::conv2d(in[0], in[1], {.stride = {1, 1}, .padding = 1});
        },
        {uniform({1, 2, 4, 4}, g), uniform({2, 2, 3, 3}, g)});
}

TEST_CASE("gradcheck: max_pool2d with padding, stride and dilation") {
    Generator g(24);
    // distinct values (>= 0.09 apart) keep every window's winner fixed under the finite difference
    check_gradient(
        "max_pool2d", [](const Inputs& in) { return tapegrad::max_pool2d(in[0], 3, {.stride = 2, .padding = 1}); },
        {tapegrad::testing::distinct_tensor({2, 2, 5, 6}, g)});
    check_gradient(
        "max_pool2d", [](const Inputs& in) { return tapegrad::max_pool2d(in[0], {2, 3}, {.stride = 1, .padding = {1, 1}, .dilation = 2}); },
        {tapegrad::testing::distinct_tensor({1, 2, 5, 5}, g)});
    // the 2x2, stride 2 fast path, on an odd size (the last row and column belong to no window)
    check_gradient(
        "max_pool2d 2x2", [](const Inputs& in) { return tapegrad::max_pool2d(in[0], 2); },
        {tapegrad::testing::distinct_tensor({2, 3, 5, 7}, g)});
}

TEST_CASE("gradcheck: avg_pool2d with padding (both divisors), adaptive and global average pooling") {
    Generator g(25);
    const TensorD x = uniform({2, 3, 5, 6}, g);
    check_gradient(
        "avg_pool2d", [](const Inputs& in) { return tapegrad::avg_pool2d(in[0], 3, {.stride = 2, .padding = 1}); }, {x});
    check_gradient(
        "avg_pool2d (count_include_pad=false)",
        [](const Inputs& in) {
            return tapegrad::avg_pool2d(in[0], {3, 2}, {.stride = {1, 2}, .padding = 1, .count_include_pad = false});
        },
        {x});
    check_gradient(
        "adaptive_avg_pool2d", [](const Inputs& in) { return tapegrad::adaptive_avg_pool2d(in[0], {2, 4}); }, {x});
    check_gradient(
        "global_avg_pool2d", [](const Inputs& in) { return tapegrad::global_avg_pool2d(in[0]); }, {x});
}

// ==== errors ===================================================================================================

TEST_CASE("conv2d: argument errors name the function and the sizes") {
    const TensorD x = TensorD::zeros({1, 3, 4, 4});
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)tapegrad::conv2d(x, TensorD::zeros({2, 3, 5, 5})); }) ==
          "conv2d: kernel 5x5 (dilation 1) is larger than the padded input 4x4 (input shape [1, 3, 4, 4], padding 0)");
    // padding makes it fit: 4 + 2*1 = 6 >= 5
    CHECK(tapegrad::conv2d(x, TensorD::zeros({2, 3, 5, 5}), {.padding = 1}).shape() == Shape{1, 2, 2, 2});
    // a dilated 3x3 spans 5x5
    CHECK(message_of<tapegrad::ShapeError>([&] {
              (void)tapegrad::conv2d(x, TensorD::zeros({2, 3, 3, 3}), {.dilation = 2});
          }).find("kernel 3x3 (dilation 2) is larger than the padded input 4x4") != std::string::npos);
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)tapegrad::conv2d(x, TensorD::zeros({2, 2, 3, 3})); })
              .find("conv2d: weight of shape [2, 2, 3, 3] with groups 1 expects 2 input channels, but the input of "
                    "shape [1, 3, 4, 4] has 3") != std::string::npos);
    CHECK(message_of<tapegrad::ShapeError>([&] {
              (void)tapegrad::conv2d(x, TensorD::zeros({2, 1, 3, 3}), {.groups = 3});
          }).find("must both be divisible by groups 3") != std::string::npos);
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)tapegrad::conv2d(TensorD::zeros({3, 4, 4}), TensorD::zeros({2, 3, 3, 3})); })
              .find("conv2d: input must be 4-D [N, C, H, W], got shape [3, 4, 4]") != std::string::npos);
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)tapegrad::conv2d(x, TensorD::zeros({2, 27})); })
              .find("conv2d: weight must be 4-D") != std::string::npos);
    CHECK(message_of<tapegrad::ShapeError>([&] {
              (void)tapegrad::conv2d(x, TensorD::zeros({2, 3, 3, 3}), TensorD::zeros({3}));
          }).find("conv2d: bias shape [3] should be [2]") != std::string::npos);
    CHECK(message_of<tapegrad::ValueError>([&] { (void)tapegrad::conv2d(x, TensorD::zeros({2, 3, 3, 3}), {.stride = 0}); }) ==
          "conv2d: stride must be positive, got 0");
    CHECK(message_of<tapegrad::ValueError>([&] {
              (void)tapegrad::conv2d(x, TensorD::zeros({2, 3, 3, 3}), {.stride = {1, -2}});
          }) == "conv2d: stride must be positive, got 1x-2");
    CHECK(message_of<tapegrad::ValueError>([&] { (void)tapegrad::conv2d(x, TensorD::zeros({2, 3, 3, 3}), {.padding = -1}); }) ==
          "conv2d: padding must be non-negative, got -1");
    CHECK(message_of<tapegrad::ValueError>([&] { (void)tapegrad::conv2d(x, TensorD::zeros({2, 3, 3, 3}), {.dilation = 0}); }) ==
          "conv2d: dilation must be positive, got 0");
    CHECK(message_of<tapegrad::ValueError>([&] { (void)tapegrad::conv2d(x, TensorD::zeros({2, 3, 3, 3}), {.groups = 0}); }) ==
          "conv2d: groups must be positive, got 0");
}

TEST_CASE("pooling: argument errors follow PyTorch's rules and name the sizes") {
    const TensorD x = TensorD::zeros({1, 1, 4, 4});
    CHECK(message_of<tapegrad::ValueError>([&] { (void)tapegrad::max_pool2d(x, 3, {.padding = 2}); }) ==
          "max_pool2d: padding 2 should be at most half the kernel 3x3 (1x1)");
    CHECK(message_of<tapegrad::ValueError>([&] { (void)tapegrad::avg_pool2d(x, 2, {.padding = {0, 2}}); }) ==
          "avg_pool2d: padding 0x2 should be at most half the kernel 2x2 (1x1)");
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)tapegrad::max_pool2d(x, 5); }) ==
          "max_pool2d: kernel 5x5 (dilation 1) is larger than the padded input 4x4 (input shape [1, 1, 4, 4], padding 0)");
    CHECK(message_of<tapegrad::ValueError>([&] { (void)tapegrad::max_pool2d(x, 2, {.stride = 0}); }) ==
          "max_pool2d: stride must be positive, got 0");
    CHECK(message_of<tapegrad::ValueError>([&] { (void)tapegrad::avg_pool2d(x, 0); }) ==
          "avg_pool2d: kernel size must be positive, got 0");
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)tapegrad::avg_pool2d(TensorD::zeros({4, 4}), 2); }) ==
          "avg_pool2d: input must be 4-D [N, C, H, W], got shape [4, 4]");
    CHECK(message_of<tapegrad::ValueError>([&] { (void)tapegrad::adaptive_avg_pool2d(x, 0); }) ==
          "adaptive_avg_pool2d: output size must be positive, got 0");
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)tapegrad::global_avg_pool2d(TensorD::zeros({1, 2, 0, 3})); })
              .find("global_avg_pool2d: input of shape [1, 2, 0, 3] has an empty plane") != std::string::npos);
}
