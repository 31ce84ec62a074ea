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
#include <tapegrad/backend/common/accumulate.hpp>
#include <tapegrad/backend/cpu/memory.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <type_traits>

namespace tapegrad::backend {

namespace detail {

// Float tanh and its derivative, vectorised by the compiler: plain loops of arithmetic and integer bit
// operations, no calls and no float compare-and-select (GCC does not vectorise those under its default
// -ftrapping-math, and at SSE2, the default target, Eigen's exp emulates floor and alone costs twice the
// old Eigen tanh). Choices are integer masks on the bits; positive floats order like their bits.

/// e^t for t in [0, 20], or for t in [-110, 0] when `negative`: t = k ln2 + r with |r| <= ln2 / 2 (k rounded
/// by truncating |t| / ln2 + 1/2; Cody-Waite ln2 in two parts), e^r = 1 + r + r^2 P(r) with P interpolating
/// (e^r - 1 - r) / r^2 at Chebyshev nodes of [-ln2/2, ln2/2] (0.4 ulp), times 2^k. For negative t, 2^k is
/// applied as two factors, so that results below float's normal range (t < -87) round gradually.
template <bool negative>
float exp_in_range(float t) {
    const auto m = static_cast<int32_t>((negative ? -t : t) * 1.44269504088896341f + 0.5f);
    const int32_t k = negative ? -m : m;
    const auto kf = static_cast<float>(k);
    const float r = (t - kf * 0.693359375f) + kf * 2.12194440e-4f;
    const float p =
        (((((1.3926189279e-3f * r + 8.3631836091e-3f) * r + 4.1666554583e-2f) * r + 1.6666576962e-1f) * r + 0.5f) *
             r * r + r) + 1.0f;
    if constexpr (negative) {
        const int32_t k1 = k / 2, k2 = k - k1;
        return p * std::bit_cast<float>(static_cast<uint32_t>(k1 + 127) << 23) *
               std::bit_cast<float>(static_cast<uint32_t>(k2 + 127) << 23);
    } else {
        return p * std::bit_cast<float>(static_cast<uint32_t>(k + 127) << 23);
    }
}

/// y = tanh(x) for n floats, within 2 ulp of the exact value (1.27 measured over [-12, 12]), +-1 only where
/// float's tanh really is (|x| > 9.01). x and y may be the same array. NaN gives NaN.
///   |x| <  0.625: x + x^3 P(x^2), the polynomial of Cephes' tanhf
///   |x| >= 0.625: sign(x) (1 - 2 / (e^(2|x|) + 1)), |x| clamped to 9.1, past which that rounds to 1
inline void tanh_float(int64_t n, const float* x, float* y) {
    for (int64_t i = 0; i < n; ++i) {
        const float a = x[i], z = a * a;
        const auto bits = std::bit_cast<uint32_t>(a), abs_bits = bits & 0x7fffffffu;
        const float p =
            (((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
            3.33332819422e-1f;
        const auto small = std::bit_cast<uint32_t>(a + a * z * p);
        const float c = std::bit_cast<float>(std::min(abs_bits, 0x41119999u));  // min(|x|, 9.1), NaN too
        const auto large = std::bit_cast<uint32_t>(1.0f - 2.0f / (exp_in_range<false>(2.0f * c) + 1.0f));  // >= 0
        // the polynomial below 0.625 (0x3f200000) and for NaN (> 0x7f800000), which it propagates
        const uint32_t use_small = (abs_bits < 0x3f200000u || abs_bits > 0x7f800000u) ? 0xffffffffu : 0u;
        // OR-ing x's sign bit gives sign(x) times the non-negative large value, and keeps tanh(-0) = -0
        y[i] = std::bit_cast<float>((small & use_small) | (large & ~use_small) | (bits & 0x80000000u));
    }
}

/// 1 - tanh(x)^2 = 4 e / (1 + e)^2 with e = e^(-2|x|), from the input: a few ulp (2.3 eps measured over
/// [-12, 12]) in the tails too, where 1 - y^2 from the rounded output y loses every digit (y rounds to 1
/// at x = 9.02). |x| is clamped to 55, where the value is below float's smallest; NaN gives NaN.
inline float tanh_derivative(float x) {
    const auto abs_bits = std::bit_cast<uint32_t>(x) & 0x7fffffffu;
    const float c = std::bit_cast<float>(std::min(abs_bits, 0x425c0000u));  // min(|x|, 55), NaN too
    const float e = exp_in_range<true>(-2.0f * c);
    const float d = 4.0f * e / ((1.0f + e) * (1.0f + e));
    return std::bit_cast<float>(std::bit_cast<uint32_t>(d) | (abs_bits > 0x7f800000u ? 0xffffffffu : 0u));
}

/// e^t for t <= 0 (a logit less its row's max), within 1.05 ulp (measured over [-110, 0]: the polynomial and
/// the scaling each round once): exp_in_range<true> with t clamped at -110, past which float's e^t is 0
/// anyway (so -inf gives 0); NaN gives NaN.
inline float exp_nonpositive(float t) {
    const auto abs_bits = std::bit_cast<uint32_t>(t) & 0x7fffffffu;
    const float c = std::bit_cast<float>(std::min(abs_bits, 0x42dc0000u));  // min(|t|, 110), NaN too
    const float e = exp_in_range<true>(-c);
    return std::bit_cast<float>(std::bit_cast<uint32_t>(e) | (abs_bits > 0x7f800000u ? 0xffffffffu : 0u));
}

/// dx = dy (1 - tanh(x)^2), or += without `assign` (dx may be dy), for n floats.
inline void tanh_backward_float(int64_t n, const float* x, const float* dy, float* dx, bool assign) {
    if (assign)
        for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * tanh_derivative(x[i]);
    else
        for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * tanh_derivative(x[i]);
}

}  // namespace detail

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
            // Vectorised (many times faster than std::tanh per element) and within 2 ulp. Double keeps
            // std::tanh, the reference gradcheck relies on.
            detail::tanh_float(n, x, y);
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
        if constexpr (std::is_same_v<F, fn::Tanh> && std::is_same_v<T, float>) {
            detail::tanh_backward_float(n, x, dy, dx, assign);  // f.backward's formula, vectorised
            return;
        }
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
        // A broadcast operand's gradient is a sum over the broadcast dimensions (accumulate.hpp). Per run
        // or row, db before da: with assign_a (then a_contig) da[o + i] may be dy[o + i] itself.
        if (const int64_t C = p.a_contig ? broadcast_row_length(p, p.sb) : 0; C > 0) {
            // The bias pattern, b [C] under R rows of C: db by blocked row sums, then da.
            const int64_t R = p.numel() / C;
            if (db)
                row_sums(R, C, db, true, [&](int64_t r, int64_t c) {
                    const int64_t j = r * C + c;
                    return f.db(a[j], b[c], y[j], dy[j]);
                });
            for (int64_t o = 0; da && o < R * C; o += C) {
                if (assign_a)
                    for (int64_t c = 0; c < C; ++c) da[o + c] = f.da(a[o + c], b[c], y[o + c], dy[o + c]);
                else
                    for (int64_t c = 0; c < C; ++c) da[o + c] += f.da(a[o + c], b[c], y[o + c], dy[o + c]);
            }
            return;
        }
        bool reduce_a = false, reduce_b = false;
        const int64_t extent_a = operand_extent(p, p.sa, reduce_a), extent_b = operand_extent(p, p.sb, reduce_b);
        ScatterSum<T> sum_a(assign_a ? nullptr : da, extent_a, reduce_a), sum_b(db, extent_b, reduce_b);
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
            const auto g_b = [&](int64_t i) { return f.db(a[ia + i * sa], b[ib + i * sb], y[o + i], dy[o + i]); };
            const auto g_a = [&](int64_t i) { return f.da(a[ia + i * sa], b[ib + i * sb], y[o + i], dy[o + i]); };
            if (db) sum_b.add_run(ib, n, sb, g_b);
            if (da && assign_a)
                for (int64_t i = 0; i < n; ++i) da[ia + i * sa] = g_a(i);
            else if (da)
                sum_a.add_run(ia, n, sa, g_a);
        });
        sum_a.finish();
        sum_b.finish();
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
        bool reduces = false;
        const int64_t extent = operand_extent(p, p.sa, reduces);
        ScatterSum<T> sum(out, extent, reduces);  // a sum over broadcast dimensions: common/accumulate.hpp
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t, int64_t n, int64_t sa, int64_t) {
            sum.add_run(ia, n, sa, [&](int64_t i) { return in[o + i]; });
        });
        sum.finish();
    }
};

}  // namespace tapegrad::backend
