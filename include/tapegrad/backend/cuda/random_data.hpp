#pragma once
/// \file
/// The CUDA backend's random and data primitives (family `RandomDataFamily`, backend/contract.hpp): dropout
/// masks from the counter RNG (the CPU's masks, bit for bit) and the device loader's batch gather. Kernels in
/// random_data.cu. Twin of backend/cpu/random_data.hpp.

#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/common/counter_rng.hpp>
#include <tapegrad/backend/cuda/random_data.cuh>

#include <cstdint>

namespace tapegrad::backend {

/// Random masks and the loader's gather on the GPU.
struct CudaRandomData {
    // ---- data: a device-resident loader's batch gather (data::DeviceLoader) -----------------------------
    /// As Ops<Cpu>::gather_batch; every pointer is device memory (the cursor too), so a captured gather
    /// fetches the next batch at each replay.
    template <class T>
    static void gather_batch(int64_t rows, int64_t cols, const T* src, const int64_t* labels, const int64_t* perm,
                             int64_t limit, int64_t* cursor, T* out, int64_t* out_labels) {
        cuda::gather_batch(rows, cols, src, labels, perm, limit, cursor, out, out_labels, cuda::stream());
        cuda::check_launch("gather_batch");
    }

    // ==== random masks (nn/dropout.hpp), from the counter-based generator of backend/common/counter_rng.hpp ======
    /// As Ops<Cpu>::dropout_mask, drawn on the GPU: the same seed and offset give the same mask, bit for bit.
    template <class T>
    static void dropout_mask(int64_t n, double p, uint64_t seed, uint64_t offset, T* mask) {
        cuda::dropout_mask(n, dropout_threshold(p), static_cast<T>(1.0 / (1.0 - p)), seed, offset, mask,
                           cuda::stream());
        cuda::check_launch("dropout");
    }
};

}  // namespace tapegrad::backend
