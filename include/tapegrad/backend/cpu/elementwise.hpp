#pragma once
/// \file
/// The CPU backend's elementwise primitives (family `ElementwiseFamily`, backend/contract.hpp): axpy and scale,
/// map / zip through the functors of backend/common/ (unary and binary, with their backwards), and the
/// strided copies that transpose, permute and broadcast. Broadcasting primitives take a `Strided` plan
/// (backend/common/strided.hpp). Twin: backend/cuda/elementwise.hpp (kernels in elementwise.cu and
/// elementwise_broadcast.cu).
///
/// A functor must be in the one list of backend/common/functor_list.hpp: one missing there would compile
/// here and fail to link on CUDA, so it fails to compile here instead.

#include <tapegrad/backend/common/functor_list.hpp>
#include <tapegrad/backend/common/strided.hpp>
#include <tapegrad/backend/cpu/memory.hpp>

#include <Eigen/Core>

#include <cstdint>
#include <type_traits>

namespace tapegrad::backend {

/// Elementwise primitives on the host.
struct CpuElementwise {
    /// y += alpha * x
    template <class T>
    static void axpy(int64_t n, T alpha, const T* x, T* y) {
        if (alpha == T(1))
            UVec<T>(y, n) += CUVec<T>(x, n);
        else
            UVec<T>(y, n) += alpha * CUVec<T>(x, n);
    }
    /// y *= alpha
    template <class T>
    static void scale(int64_t n, T alpha, T* y) { UVec<T>(y, n) *= alpha; }

    // ---- through functors ----------------------------------------------------------------------------------
    /// y[i] = f(x[i])
    template <class T, class F>
    static void map(int64_t n, const T* x, T* y, const F& f) {
        static_assert(fn::usable_unary<F>, "map: this functor of tapegrad::fn is not in TAPEGRAD_UNARY_FUNCTORS: "
                                           "add X(Name) to the list in its header (backend/common/), so that CUDA "
                                           "instantiates it too.");
        if constexpr (std::is_same_v<F, fn::Tanh> && std::is_same_v<T, float>) {
            // Eigen's vectorised float tanh (a rational approximation, within 8 ulp of std::tanh and exactly
            // +-1 beyond |x| ~ 7.9) is about 40x faster than calling std::tanh per element. Double keeps
            // std::tanh: Eigen 3.4 has no vectorised double tanh, and gradcheck runs in double.
            UVec<T>(y, n) = CUVec<T>(x, n).tanh();
            return;
        }
        for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
    }
    /// dx[i] += f.backward(x[i], y[i], dy[i]), or = when `assign` (then dx may be dy itself).
    template <class T, class F>
    static void map_backward(int64_t n, const T* x, const T* y, const T* dy, T* dx, const F& f, bool assign = false) {
        static_assert(fn::usable_unary<F>, "map_backward: this functor of tapegrad::fn is not in "
                                           "TAPEGRAD_UNARY_FUNCTORS: add X(Name) to the list in its header "
                                           "(backend/common/), so that CUDA instantiates it too.");
        if (assign)
            for (int64_t i = 0; i < n; ++i) dx[i] = f.backward(x[i], y[i], dy[i]);
        else
            for (int64_t i = 0; i < n; ++i) dx[i] += f.backward(x[i], y[i], dy[i]);
    }
    /// out = f(a, b) with broadcasting.
    template <class T, class F>
    static void zip(const Strided& p, const T* a, const T* b, T* out, const F& f) {
        static_assert(fn::usable_binary<F>, "zip: this functor of tapegrad::fn is not in TAPEGRAD_BINARY_FUNCTORS: "
                                           "add X(Name) to the list in its header (backend/common/), so that CUDA "
                                           "instantiates it too.");
        if (p.a_contig && p.b_contig) {
            const int64_t n = p.numel();
            for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
            return;
        }
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
            T* y = out + o;
            const T* pa = a + ia;
            const T* pb = b + ib;
            if (sa == 1 && sb == 0) {
                const T bv = *pb;
                for (int64_t i = 0; i < n; ++i) y[i] = f(pa[i], bv);
            } else if (sa == 1 && sb == 1) {
                for (int64_t i = 0; i < n; ++i) y[i] = f(pa[i], pb[i]);
            } else {
                for (int64_t i = 0; i < n; ++i) y[i] = f(pa[i * sa], pb[i * sb]);
            }
        });
    }
    /// da[a index] += f.da(a, b, y, dy) and/or db[b index] += f.db(...) over the broadcast output; either
    /// target may be null. Because the plan's strides are 0 on broadcast dimensions, each output element
    /// adds into the operand element it was computed from: the sum over broadcast dimensions is fused in.
    /// With `assign_a` (only when a has the output's shape) da is overwritten instead, and may be dy itself:
    /// db is computed from dy before da replaces it.
    template <class T, class F>
    static void zip_backward(const Strided& p, const T* a, const T* b, const T* y, const T* dy, T* da, T* db,
                             const F& f, bool assign_a = false) {
        static_assert(fn::usable_binary<F>, "zip_backward: this functor of tapegrad::fn is not in "
                                            "TAPEGRAD_BINARY_FUNCTORS: add X(Name) to the list in its header "
                                            "(backend/common/), so that CUDA instantiates it too.");
        if (p.a_contig && p.b_contig) {
            const int64_t n = p.numel();
            if (db)
                for (int64_t i = 0; i < n; ++i) db[i] += f.db(a[i], b[i], y[i], dy[i]);
            if (da && assign_a)
                for (int64_t i = 0; i < n; ++i) da[i] = f.da(a[i], b[i], y[i], dy[i]);
            else if (da)
                for (int64_t i = 0; i < n; ++i) da[i] += f.da(a[i], b[i], y[i], dy[i]);
            return;
        }
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
            for (int64_t i = 0; i < n; ++i) {
                const int64_t ja = ia + i * sa, jb = ib + i * sb;
                const T g = dy[o + i];
                if (db) db[jb] += f.db(a[ja], b[jb], y[o + i], g);
                if (da) {
                    const T v = f.da(a[ja], b[jb], y[o + i], g);
                    da[ja] = assign_a ? v : da[ja] + v;
                }
            }
        });
    }
    /// out[contiguous] = in[strided by p.sa]: transposes, permutes and broadcasts (expand) in one walk.
    template <class T>
    static void strided_copy(const Strided& p, const T* in, T* out) {
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t, int64_t n, int64_t sa, int64_t) {
            for (int64_t i = 0; i < n; ++i) out[o + i] = in[ia + i * sa];
        });
    }
    /// out[strided by p.sa] += in[contiguous]: the adjoint of strided_copy (sums over broadcast dims).
    template <class T>
    static void strided_add(const Strided& p, const T* in, T* out) {
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t, int64_t n, int64_t sa, int64_t) {
            for (int64_t i = 0; i < n; ++i) out[ia + i * sa] += in[o + i];
        });
    }
};

}  // namespace tapegrad::backend
