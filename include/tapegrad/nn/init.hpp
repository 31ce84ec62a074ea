#pragma once
/// \file
/// Weight initialisation. A network trains only if signals neither die out nor blow up as they pass
/// through the layers, so each scheme picks the spread of the initial weights from the layer's fan-in
/// (inputs per unit) and fan-out:
///  - Xavier/Glorot (tanh, sigmoid): Var(w) = 2 / (fan_in + fan_out)
///  - He/Kaiming (ReLU family): Var(w) = gain^2 / fan_in, gain = sqrt(2 / (1 + a^2)) for leaky slope a
///  - LeCun (SELU, plain linear): Var(w) = 1 / fan_in
/// Weights follow PyTorch's layout: [out, in] for dense layers, [out, in, kh, kw] for convolutions. Every
/// function draws from an explicit `Generator`, so the same seed gives the same network everywhere.

#include <tapegrad/core/random.hpp>
#include <tapegrad/core/tensor.hpp>

#include <cmath>
#include <utility>

namespace tapegrad::nn::init {

/// (fan_in, fan_out) of a weight of rank >= 2: [out, in, receptive...].
inline std::pair<double, double> fans(const Shape& s) {
    TAPEGRAD_CHECK(s.rank() >= 2, ShapeError, "init: fan-in and fan-out need a weight of rank >= 2, got shape ", s);
    double receptive = 1;
    for (int i = 2; i < s.rank(); ++i) receptive *= static_cast<double>(s[i]);
    return {static_cast<double>(s[1]) * receptive, static_cast<double>(s[0]) * receptive};
}

template <Scalar T, Device D>
void uniform_(Tensor<T, D>& w, double lo, double hi, Generator& g) {
    NoGradGuard ng;
    w.copy_(Tensor<T, D>::uniform(w.shape(), static_cast<T>(lo), static_cast<T>(hi), g));
}
template <Scalar T, Device D>
void normal_(Tensor<T, D>& w, double mean, double stddev, Generator& g) {
    NoGradGuard ng;
    w.copy_(Tensor<T, D>::normal(w.shape(), static_cast<T>(mean), static_cast<T>(stddev), g));
}
template <Scalar T, Device D>
void constant_(Tensor<T, D>& w, double value) {
    NoGradGuard ng;
    w.fill_(static_cast<T>(value));
}
template <Scalar T, Device D>
void zeros_(Tensor<T, D>& w) {
    constant_(w, 0.0);
}

/// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
template <Scalar T, Device D>
void xavier_uniform_(Tensor<T, D>& w, Generator& g, double gain = 1.0) {
    const auto [fi, fo] = fans(w.shape());
    const double b = gain * std::sqrt(6.0 / (fi + fo));
    uniform_(w, -b, b, g);
}
/// N(0, s^2) with s = gain * sqrt(2 / (fan_in + fan_out)).
template <Scalar T, Device D>
void xavier_normal_(Tensor<T, D>& w, Generator& g, double gain = 1.0) {
    const auto [fi, fo] = fans(w.shape());
    normal_(w, 0.0, gain * std::sqrt(2.0 / (fi + fo)), g);
}
/// U(-b, b) with b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)) (a: the leaky-ReLU slope, 0 for ReLU).
template <Scalar T, Device D>
void kaiming_uniform_(Tensor<T, D>& w, Generator& g, double a = 0.0) {
    const double gain = std::sqrt(2.0 / (1.0 + a * a));
    const double b = gain * std::sqrt(3.0 / fans(w.shape()).first);
    uniform_(w, -b, b, g);
}
/// N(0, s^2) with s = gain / sqrt(fan_in).
template <Scalar T, Device D>
void kaiming_normal_(Tensor<T, D>& w, Generator& g, double a = 0.0) {
    const double gain = std::sqrt(2.0 / (1.0 + a * a));
    normal_(w, 0.0, gain / std::sqrt(fans(w.shape()).first), g);
}
/// U(-b, b) with b = sqrt(3 / fan_in): variance 1 / fan_in.
template <Scalar T, Device D>
void lecun_uniform_(Tensor<T, D>& w, Generator& g) {
    const double b = std::sqrt(3.0 / fans(w.shape()).first);
    uniform_(w, -b, b, g);
}
/// N(0, 1 / fan_in).
template <Scalar T, Device D>
void lecun_normal_(Tensor<T, D>& w, Generator& g) {
    normal_(w, 0.0, 1.0 / std::sqrt(fans(w.shape()).first), g);
}

}  // namespace tapegrad::nn::init
