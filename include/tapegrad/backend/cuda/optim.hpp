#pragma once
/// \file
/// The CUDA backend's optimizer primitives (family `OptimFamily`, backend/contract.hpp): the one
/// multi-tensor step (every rule of TAPEGRAD_OPTIM_RULES, one kernel launch per list, several past
/// cuda::step_table_capacity tensors), and fill / scale / norm over tensor lists. Kernels in optim.cu.
/// Twin of backend/cpu/optim.hpp.

#include <tapegrad/backend/common/multi_tensor.hpp>
#include <tapegrad/backend/common/optim_math.hpp>
#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/memory.hpp>
#include <tapegrad/backend/cuda/optim.cuh>

#include <cstdint>

namespace tapegrad::backend {

/// Optimizer updates and tensor-list operations on the GPU.
struct CudaOptim {
    /// As CpuOptim::step_many, in one kernel launch per cuda::step_table_capacity tensors; results match the
    /// CPU's bit for bit (the rule's arithmetic is shared, with no contracted multiply-adds).
    template <class T, class Rule>
    static void step_many(int64_t count, const StepParam<T>* params, const Rule& rule) {
        static_assert(listed_rule<Rule, T>,
                      "step_many: this update rule is not in TAPEGRAD_OPTIM_RULES (backend/common/optim_math.hpp)");
        cuda::step_many(count, params, rule, cuda::stream());
        cuda::check_launch(Rule::name);
    }
    /// fill on every tensor of list[0, count), in one kernel launch (several past 160 tensors).
    template <class T>
    static void fill_many(int64_t count, const TensorSpan<T>* list, T value) {
        cuda::fill_many(count, list, value, cuda::stream());
        cuda::check_launch("fill_many");
    }
    /// scale on every tensor of list[0, count), in one kernel launch (several past 160 tensors).
    template <class T>
    static void scale_many(int64_t count, const TensorSpan<T>* list, T alpha) {
        cuda::scale_many(count, list, alpha, cuda::stream());
        cuda::check_launch("scale_many");
    }
    /// As CpuOptim::norm_many (the sums are formed in another order, so the result may differ from the CPU's
    /// in the last bits); reads the result back, so it waits for the GPU and throws DeviceError during a
    /// graph capture.
    template <class T>
    static double norm_many(int64_t count, const TensorSpan<const T>* list, double norm_type) {
        const int64_t blocks = cuda::norm_blocks(count, list);
        if (blocks == 0) return 0.0;
        cuda::check_not_capturing("reading a norm back to the host (clip_grad_norm_)");
        double* partial = CudaMemory::allocate<double>(blocks + 1);
        double total = 0;
        try {
            cuda::norm_many(count, list, norm_type, partial, partial + blocks, cuda::stream());
            cuda::check_launch("norm_many");
            CudaMemory::download(1, partial + blocks, &total);
        } catch (...) {
            CudaMemory::deallocate(partial, blocks + 1);
            throw;
        }
        CudaMemory::deallocate(partial, blocks + 1);
        return total;
    }
};

}  // namespace tapegrad::backend
