#pragma once
/// \file
/// Device-neutral pieces of the index family (backend/contract.hpp, `IndexFamily`): the comparison
/// functors, and the plan of `gather` (the dimensions of the input and of the index tensor). Plain data and
/// no Eigen, so CUDA kernels take them by value.

#include <tapegrad/backend/common/host_device.hpp>
#include <tapegrad/backend/common/strided.hpp>

#include <array>
#include <cstdint>

namespace tapegrad::backend {

/// The six comparisons; `compare` applies one elementwise and writes 1 where it holds, else 0.
enum class CompareOp : int { eq, ne, lt, le, gt, ge };

/// a <op> b. NaN compares unequal to everything (so `ne` is its only true comparison), as in IEEE and PyTorch.
template <class T>
TAPEGRAD_HD inline bool compare_values(CompareOp op, T a, T b) {
    switch (op) {
        case CompareOp::eq: return a == b;
        case CompareOp::ne: return a != b;
        case CompareOp::lt: return a < b;
        case CompareOp::le: return a <= b;
        case CompareOp::gt: return a > b;
        case CompareOp::ge: return a >= b;
    }
    return false;
}

/// The plan of gather(x, dim, idx) and its adjoint: out and idx have idx's shape `di`; x has shape `dx`;
/// every dimension other than `dim` of idx is at most x's (PyTorch's rule).
struct GatherPlan {
    int rank = 0;
    int dim = 0;
    std::array<int64_t, max_rank> dx{};  ///< x's dimensions
    std::array<int64_t, max_rank> di{};  ///< idx's (and out's) dimensions
};

}  // namespace tapegrad::backend
