#pragma once
/// \file
/// The loader tests' dataset: sample i is (i, -i) with label i % 7, so a batch says which samples it holds
/// and whether each row and label stayed together.

#include <tapegrad/data/dataset.hpp>

#include <cstdint>

namespace tapegrad::testing {

/// n samples of shape [2]: sample i is (i, -i) with label i % 7.
inline data::Dataset<float> indexed_dataset(int64_t n) {
    data::Dataset<float> ds{TensorF::empty({n, 2}), {}};
    for (int64_t i = 0; i < n; ++i) {
        ds.features(i, 0) = static_cast<float>(i);
        ds.features(i, 1) = -static_cast<float>(i);
        ds.labels.push_back(i % 7);
    }
    return ds;
}

}  // namespace tapegrad::testing
