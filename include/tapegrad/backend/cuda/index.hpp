#pragma once
/// \file
/// The CUDA backend's index primitives (family `IndexFamily`, backend/contract.hpp): conversions,
/// comparisons, argmax/argmin, strided copies of integer and mask tensors, the range check of ids, and
/// embedding, index_select, gather, where and masked_fill with their deterministic backwards. Kernels in
/// index.cu. Twin of backend/cpu/index.hpp.

#include <tapegrad/backend/common/index_plan.hpp>
#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/index.cuh>
#include <tapegrad/backend/cuda/memory.hpp>

#include <cstdint>

namespace tapegrad::backend {

/// Index primitives on the GPU.
struct CudaIndex {
    template <class S, class U>
    static void convert(int64_t n, const S* x, U* out) {
        cuda::convert(n, x, out, cuda::stream());
        cuda::check_launch("convert");
    }
    template <class T>
    static void compare(const Strided& p, CompareOp op, const T* a, const T* b, uint8_t* out) {
        cuda::compare(p, op, a, b, out, cuda::stream());
        cuda::check_launch("compare");
    }
    template <class T>
    static void arg_reduce_axis(int64_t outer, int64_t n, int64_t inner, bool is_min, const T* x, int64_t* out) {
        cuda::arg_reduce_axis(outer, n, inner, is_min, x, out, cuda::stream());
        cuda::check_launch(is_min ? "argmin" : "argmax");
    }
    template <class T>
    static void copy_strided(const Strided& p, const T* x, T* out) {
        cuda::copy_strided(p, x, out, cuda::stream());
        cuda::check_launch("copy_strided");
    }
    /// As Ops<Cpu>::find_out_of_range: the answer is read back, so this waits for the GPU (and throws during
    /// a graph capture; callers skip the check then).
    static int64_t find_out_of_range(int64_t n, const int64_t* ids, int64_t lo, int64_t hi) {
        int64_t* first = CudaMemory::allocate<int64_t>(1);
        int64_t v = n;
        try {
            cuda::find_out_of_range(n, ids, lo, hi, first, cuda::stream());
            cuda::check_launch("find_out_of_range");
            CudaMemory::download(1, first, &v);
        } catch (...) {
            CudaMemory::deallocate(first, 1);
            throw;
        }
        CudaMemory::deallocate(first, 1);
        return v >= n ? -1 : v;
    }

    template <class T>
    static void embedding(int64_t n, int64_t dim, int64_t rows, const int64_t* ids, const T* w, T* out) {
        cuda::embedding(n, dim, rows, ids, w, out, cuda::stream());
        cuda::check_launch("embedding");
    }
    /// As Ops<Cpu>::embedding_backward, deterministic: a stable radix sort of the ids, then one thread per
    /// (id, column). Scratch (4 n int64 plus the sort's) from the caching allocator, freed after enqueueing.
    template <class T>
    static void embedding_backward(int64_t n, int64_t dim, int64_t rows, const int64_t* ids, int64_t padding_idx,
                                   const T* dy, T* dw) {
        if (n <= 0 || dim <= 0) return;
        const size_t bytes = cuda::embedding_backward_scratch(n, rows);
        auto* scratch = CudaMemory::allocate<unsigned char>(static_cast<int64_t>(bytes));
        try {
            cuda::embedding_backward(n, dim, rows, ids, padding_idx, dy, dw, scratch, bytes, cuda::stream());
            cuda::check_launch("embedding_backward");
        } catch (...) {
            CudaMemory::deallocate(scratch, static_cast<int64_t>(bytes));
            throw;
        }
        CudaMemory::deallocate(scratch, static_cast<int64_t>(bytes));  // reused only by later work (one stream)
    }
    template <class T>
    static void index_select_axis(int64_t outer, int64_t n, int64_t inner, int64_t k, const int64_t* idx, const T* x,
                                  T* out) {
        cuda::index_select_axis(outer, n, inner, k, idx, x, out, cuda::stream());
        cuda::check_launch("index_select");
    }
    template <class T>
    static void index_select_axis_backward(int64_t outer, int64_t n, int64_t inner, int64_t k, const int64_t* idx,
                                           const T* dy, T* dx) {
        cuda::index_select_axis_backward(outer, n, inner, k, idx, dy, dx, cuda::stream());
        cuda::check_launch("index_select_backward");
    }
    template <class T>
    static void gather_axis(const GatherPlan& g, const int64_t* idx, const T* x, T* out) {
        cuda::gather_axis(g, idx, x, out, cuda::stream());
        cuda::check_launch("gather");
    }
    template <class T>
    static void gather_axis_backward(const GatherPlan& g, const int64_t* idx, const T* dy, T* dx) {
        cuda::gather_axis_backward(g, idx, dy, dx, cuda::stream());
        cuda::check_launch("gather_backward");
    }
    template <class T>
    static void where(const Strided& p, const uint8_t* mask, const T* a, const T* b, T* out) {
        cuda::where(p, mask, a, b, out, cuda::stream());
        cuda::check_launch("where");
    }
    template <class T>
    static void masked_fill(const Strided& p, const uint8_t* mask, const T* x, T v, T* out) {
        cuda::masked_fill(p, mask, x, v, out, cuda::stream());
        cuda::check_launch("masked_fill");
    }
    template <class T>
    static void where_backward(const Strided& p, const uint8_t* mask, const T* dy, T* da, T* db) {
        cuda::where_backward(p, mask, dy, da, db, cuda::stream());
        cuda::check_launch("where_backward");
    }
};

}  // namespace tapegrad::backend
