#pragma once
/// \file
/// The CUDA backend's reductions (family `ReductionFamily`, backend/contract.hpp); kernels in reduce.cu.
/// Twin of backend/cpu/reduce.hpp.

#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/memory.hpp>
#include <tapegrad/backend/cuda/reduce.cuh>

#include <cstdint>

namespace tapegrad::backend {

/// Reductions on the GPU.
struct CudaReduce {
    template <class T>
    static void sum_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* out) {
        cuda::sum_axis(outer, n, inner, x, out, cuda::stream());
        cuda::check_launch("sum_axis");
    }
    template <class T>
    static void expand_axis_add(int64_t outer, int64_t n, int64_t inner, T alpha, const T* g, T* dx) {
        cuda::expand_axis_add(outer, n, inner, alpha, g, dx, cuda::stream());
        cuda::check_launch("expand_axis_add");
    }
    /// `arg` is host memory here as on the CPU (ops keep the indices in a host vector): the indices are
    /// computed on the device and downloaded.
    template <class T>
    static void max_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* out, int64_t* arg) {
        const int64_t m = outer * inner;
        int64_t* darg = CudaMemory::allocate<int64_t>(m);
        try {
            cuda::max_axis(outer, n, inner, x, out, darg, cuda::stream());
            cuda::check_launch("max_axis");
            CudaMemory::download(m, darg, arg);
        } catch (...) {
            CudaMemory::deallocate(darg, m);
            throw;
        }
        CudaMemory::deallocate(darg, m);
    }
    /// `arg`: host indices, as max_axis returned them.
    template <class T>
    static void scatter_axis_add(int64_t outer, int64_t n, int64_t inner, const int64_t* arg, const T* g, T* dx) {
        const int64_t m = outer * inner;
        int64_t* darg = CudaMemory::allocate<int64_t>(m);
        try {
            CudaMemory::upload(m, arg, darg);
            cuda::scatter_axis_add(outer, n, inner, darg, g, dx, cuda::stream());
            cuda::check_launch("scatter_axis_add");
        } catch (...) {
            CudaMemory::deallocate(darg, m);
            throw;
        }
        CudaMemory::deallocate(darg, m);  // reused only by work enqueued after the kernel (one stream)
    }
    template <class T>
    static void copy_axis_block(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* src,
                                int64_t dst_n, int64_t dst_start, T* dst, bool add) {
        cuda::copy_axis_block(outer, n, inner, start, len, src, dst_n, dst_start, dst, add, cuda::stream());
        cuda::check_launch("copy_axis_block");
    }
    template <class T>
    static void add_row_vector(int64_t rows, int64_t cols, const T* v, T* y) {
        cuda::add_row_vector(rows, cols, v, y, cuda::stream());
        cuda::check_launch("add_row_vector");
    }
    template <class T>
    static void add_column_sums(int64_t rows, int64_t cols, const T* g, T* out) {
        cuda::add_column_sums(rows, cols, g, out, cuda::stream());
        cuda::check_launch("add_column_sums");
    }
};

}  // namespace tapegrad::backend
