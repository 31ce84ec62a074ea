#pragma once
/// \file
/// The CUDA backend's elementwise primitives (family `ElementwiseFamily`, backend/contract.hpp), enqueued on
/// cuda::stream(); kernels in elementwise.cu and elementwise_broadcast.cu, instantiated for every functor of
/// the one list (backend/common/functor_list.hpp). Twin of backend/cpu/elementwise.hpp.

#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/common/functor_list.hpp>
#include <tapegrad/backend/common/strided.hpp>
#include <tapegrad/backend/cuda/elementwise.cuh>

#include <cstdint>

namespace tapegrad::backend {

/// Elementwise primitives on the GPU.
struct CudaElementwise {
    template <class T>
    static void axpy(int64_t n, T alpha, const T* x, T* y) {
        cuda::axpy(n, alpha, x, y, cuda::stream());
        cuda::check_launch("axpy");
    }
    template <class T>
    static void scale(int64_t n, T alpha, T* y) {
        cuda::scale(n, alpha, y, cuda::stream());
        cuda::check_launch("scale");
    }

    // ---- elementwise ----------------------------------------------------------------------------------
    template <class T, class F>
    static void map(int64_t n, const T* x, T* y, const F& f) {
        static_assert(fn::listed_unary<F>,
                      "map (CUDA): kernels exist for the functors of TAPEGRAD_UNARY_FUNCTORS (functor_list.hpp) only");
        cuda::map(n, x, y, f, cuda::stream());
        cuda::check_launch(F::name);
    }
    template <class T, class F>
    static void map_backward(int64_t n, const T* x, const T* y, const T* dy, T* dx, const F& f, bool assign = false) {
        static_assert(fn::listed_unary<F>,
                      "map_backward (CUDA): kernels exist for TAPEGRAD_UNARY_FUNCTORS (functor_list.hpp) only");
        cuda::map_backward(n, x, y, dy, dx, f, assign, cuda::stream());
        cuda::check_launch(F::name);
    }
    template <class T, class F>
    static void zip(const Strided& p, const T* a, const T* b, T* out, const F& f) {
        static_assert(fn::listed_binary<F>,
                      "zip (CUDA): kernels exist for the functors of TAPEGRAD_BINARY_FUNCTORS (functor_list.hpp) only");
        cuda::zip(p, a, b, out, f, cuda::stream());
        cuda::check_launch(F::name);
    }
    template <class T, class F>
    static void zip_backward(const Strided& p, const T* a, const T* b, const T* y, const T* dy, T* da, T* db,
                             const F& f, bool assign_a = false) {
        static_assert(fn::listed_binary<F>,
                      "zip_backward (CUDA): kernels exist for TAPEGRAD_BINARY_FUNCTORS (functor_list.hpp) only");
        cuda::zip_backward(p, a, b, y, dy, da, db, f, assign_a, cuda::stream());
        cuda::check_launch(F::name);
    }
    template <class T>
    static void strided_copy(const Strided& p, const T* in, T* out) {
        cuda::strided_copy(p, in, out, cuda::stream());
        cuda::check_launch("strided_copy");
    }
    template <class T>
    static void strided_add(const Strided& p, const T* in, T* out) {
        cuda::strided_add(p, in, out, cuda::stream());
        cuda::check_launch("strided_add");
    }

};

}  // namespace tapegrad::backend
