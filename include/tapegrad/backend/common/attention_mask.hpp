#pragma once
/// \file
/// How the attention primitives read an additive mask without materialising it: `SoftmaxMask<T>`, plain
/// data (no Eigen) that CPU code and CUDA kernels take by value. Scores are a batch of [L, S] matrices (one
/// per batch entry `bt`, i.e. per (batch, head) pair); a mask is a row-major array whose last axis runs
/// over the S keys with stride 1, and its row for query l of batch entry bt starts at
///     (bt / group) * sb + l * sl.
/// That covers every layout the attention ops take: [L, S] (group 1, sb 0, sl S), [batch, L, S] (group 1,
/// sb L*S, sl S), a key padding mask [B, S] over B*H entries (group H, sb S, sl 0), [B, 1, L, S] (group H,
/// sb L*S, sl S).

#include <tapegrad/backend/common/host_device.hpp>

#include <cstdint>

namespace tapegrad::backend {

/// An additive mask read in place (see the file comment); a null `data` is no mask.
template <class T>
struct SoftmaxMask {
    const T* data = nullptr;
    int64_t group = 1;  ///< batch entries sharing one mask block (heads of one sequence)
    int64_t sb = 0;     ///< stride between mask blocks
    int64_t sl = 0;     ///< stride between query rows (0: one row for every query)

    /// The mask's row for query l of batch entry bt (S values, stride 1); null without a mask.
    TAPEGRAD_HD const T* row(int64_t bt, int64_t l) const {
        return data ? data + (bt / group) * sb + l * sl : nullptr;
    }
};

}  // namespace tapegrad::backend
