#pragma once
/// \file
/// The CPU backend's random and data primitives (family `RandomDataFamily`, backend/contract.hpp): dropout
/// masks from the counter-based generator (backend/common/counter_rng.hpp, shared with the GPU, so both
/// draw the same mask), and the batch gather of a device-resident loader (data::DeviceLoader).
/// Twin: backend/cuda/random_data.hpp (kernels in random_data.cu).

#include <tapegrad/backend/common/counter_rng.hpp>

#include <cstdint>
#include <cstring>

namespace tapegrad::backend {

/// Random masks and the loader's gather on the host.
struct CpuRandomData {
    // ---- data: a device-resident loader's batch gather (data::DeviceLoader) -----------------------------
    /// With start = *cursor: out[i, :] = src[perm[start + i], :] and out_labels[i] = labels[perm[start + i]]
    /// for i < rows (rows of `cols` elements); then *cursor = start + rows, or 0 when another batch would
    /// pass `limit` (the permutation's length), so that the next gather stays within it.
    template <class T>
    static void gather_batch(int64_t rows, int64_t cols, const T* src, const int64_t* labels, const int64_t* perm,
                             int64_t limit, int64_t* cursor, T* out, int64_t* out_labels) {
        const int64_t start = *cursor;
        for (int64_t i = 0; i < rows; ++i) {
            const int64_t k = perm[start + i];
            if (cols > 0) std::memcpy(out + i * cols, src + k * cols, static_cast<size_t>(cols) * sizeof(T));
            out_labels[i] = labels[k];
        }
        *cursor = start + 2 * rows <= limit ? start + rows : 0;
    }

    /// mask[i] = 1/(1-p) where dropout_keeps(seed, offset + i, dropout_threshold(p)), else 0, for i < n:
    /// element i of the stream `seed` counted from `offset`, so Ops<Cuda>::dropout_mask draws the same values.
    /// p in [0, 1).  -> mask: [n]
    template <class T>
    static void dropout_mask(int64_t n, double p, uint64_t seed, uint64_t offset, T* mask) {
        const uint64_t threshold = dropout_threshold(p);
        const T keep = static_cast<T>(1.0 / (1.0 - p));
        for (int64_t i = 0; i < n; ++i)
            mask[i] = dropout_keeps(seed, offset + static_cast<uint64_t>(i), threshold) ? keep : T(0);
    }
};

}  // namespace tapegrad::backend
