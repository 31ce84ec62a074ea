#pragma once
/// \file
/// Whole-tensor checks on host tensors: `same_bits` (shape and every byte of the values equal, for the tests
/// that promise bit-identical results: the same seed twice, a checkpoint round trip, a copy) and
/// `all_finite` (no NaN or infinity: the stability tests at extreme logits).

#include <tapegrad/core/tensor.hpp>

#include <cmath>
#include <cstddef>
#include <cstring>

namespace tapegrad::testing {

template <class T>
[[nodiscard]] bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() &&
           std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0;
}

template <class T>
[[nodiscard]] bool all_finite(const Tensor<T>& t) {
    for (const T v : t.span())
        if (!std::isfinite(v)) return false;
    return true;
}

}  // namespace tapegrad::testing
