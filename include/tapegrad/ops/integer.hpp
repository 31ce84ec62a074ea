#pragma once
/// \file
/// Ops on integer and mask tensors (`Tensor<int64_t, D>`, `Tensor<int32_t, D>`, `Mask<D>` =
/// `Tensor<uint8_t, D>`), and the ops that make them from float tensors: comparisons (returning masks),
/// `argmax` / `argmin` (returning int64 indices) and `cast` between any two element types. None of these is
/// recorded: integers carry no gradient.
///
/// The shape ops of integer and mask tensors (reshape, flatten, transpose, slice, clone) are here too, under
/// the same names as the float ones of ops/shape.hpp, so `ids.reshape({-1})` and `ids.flatten()` work.
///
///     auto ids = TensorL::from({2, 3}, {4, 1, 7, 0, 2, 2});
///     auto top = argmax(logits, -1);            // [N, C] -> [N] int64
///     auto hit = eq(top, labels);               // -> Mask<Cpu> of 0/1
///     auto acc = sum(cast<float>(hit)).item();  // the number of hits, as a float

#include <tapegrad/backend/common/index_plan.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/ops/shape.hpp>
#include <tapegrad/ops/transfer.hpp>

#include <cstdint>

namespace tapegrad {

// ---- shape ops of integer and mask tensors (not recorded) ---------------------------------------------------

/// The same data seen with another shape of the same element count (one dimension may be -1). A view.
template <Discrete T, Device D>
Tensor<T, D> reshape(const Tensor<T, D>& x, const Shape& shape) {
    const Shape s = detail::reshape_target(x.shape(), shape);
    auto impl = detail::make_impl<T, D>();
    impl->storage = x.impl()->storage;
    impl->offset = x.impl()->offset;
    impl->shape = s;
    return Tensor<T, D>(std::move(impl));
}

/// Flattens dimensions [start, end] into one (a view).
template <Discrete T, Device D>
Tensor<T, D> flatten(const Tensor<T, D>& x, int start = 0, int end = -1) {
    const Shape& s = x.shape();
    if (s.rank() == 0) return reshape(x, Shape{1});
    return reshape(x, detail::flatten_target(s, start, end));
}

/// A deep copy.
template <Discrete T, Device D>
Tensor<T, D> clone(const Tensor<T, D>& x) {
    Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
    backend::Ops<D>::copy(x.numel(), x.data_ptr(), y.data_ptr());
    return y;
}

/// Swaps two axes (a copy).
template <Discrete T, Device D>
Tensor<T, D> transpose(const Tensor<T, D>& x, int axis0, int axis1) {
    const Shape& s = x.shape();
    const int a = s.normalize_axis(axis0, "transpose"), b = s.normalize_axis(axis1, "transpose");
    Shape out = s;
    out[a] = s[b];
    out[b] = s[a];
    const auto in_strides = contiguous_strides(s);
    backend::Strided p;
    p.rank = s.rank();
    for (int i = 0; i < s.rank(); ++i) {
        p.dims[static_cast<size_t>(i)] = out[i];
        const int src = i == a ? b : (i == b ? a : i);
        p.sa[static_cast<size_t>(i)] = in_strides[static_cast<size_t>(src)];
    }
    Tensor<T, D> y = Tensor<T, D>::empty(out);
    backend::Ops<D>::copy_strided(p, x.data_ptr(), y.data_ptr());
    return y;
}

/// Elements [start, end) along `axis` (a copy); negative start/end count from the end.
template <Discrete T, Device D>
Tensor<T, D> slice(const Tensor<T, D>& x, int axis, int64_t start, int64_t end) {
    const Shape& s = x.shape();
    const int a = s.normalize_axis(axis, "slice");
    const int64_t n = s[a];
    const int64_t b0 = start < 0 ? start + n : start, e0 = end < 0 ? end + n : end;
    TAPEGRAD_CHECK(b0 >= 0 && e0 <= n && b0 <= e0, IndexError, "slice: range [", start, ", ", end,
                   ") is out of bounds for axis ", axis, " of size ", n, " (shape ", s, ")");
    const Shape out = s.with(a, e0 - b0);
    const auto in_strides = contiguous_strides(s);
    backend::Strided p;
    p.rank = s.rank();
    for (int i = 0; i < s.rank(); ++i) {
        p.dims[static_cast<size_t>(i)] = out[i];
        p.sa[static_cast<size_t>(i)] = in_strides[static_cast<size_t>(i)];
    }
    Tensor<T, D> y = Tensor<T, D>::empty(out);
    if (y.numel() > 0)
        backend::Ops<D>::copy_strided(p, x.data_ptr() + b0 * in_strides[static_cast<size_t>(a)], y.data_ptr());
    return y;
}

/// x's values on device `To` (x itself when it already lives there): `to<Cuda>(ids)`.
template <Device To, Discrete T, Device From>
Tensor<T, To> to(const Tensor<T, From>& x) {
    if constexpr (std::same_as<To, From>) {
        return x;
    } else {
        return detail::copy_to_device<To>(x);
    }
}

// ---- conversions ---------------------------------------------------------------------------------------------

/// `x` converted to element type U, as static_cast converts (float to integer truncates toward zero;
/// out-of-range values are the caller's problem, as in C++). Not recorded: the result is a new leaf, so a
/// float input that requires grad (while recording) is refused rather than silently detached.
///     cast<float>(ids)  // int64 -> float          cast<int64_t>(x)  // float -> int64
template <Element U, Element T, Device D>
Tensor<U, D> cast(const Tensor<T, D>& x) {
    if constexpr (Scalar<T>) {
        TAPEGRAD_CHECK(!(is_grad_enabled() && x.requires_grad()), ValueError, "cast: the input (shape ", x.shape(),
                       ") requires grad, but a cast is not recorded; call detach() first to drop its gradient");
    }
    Tensor<U, D> y = Tensor<U, D>::empty(x.shape());
    backend::Ops<D>::convert(x.numel(), x.data_ptr(), y.data_ptr());
    return y;
}

// ---- comparisons: float or integer tensors -> masks -------------------------------------------------------

namespace detail {
template <Element T, Device D>
Mask<D> compare(const char* op, backend::CompareOp cmp, const Tensor<T, D>& a, const Tensor<T, D>& b) {
    const Shape s = broadcast_shapes(a.shape(), b.shape(), op);
    const backend::Strided p = broadcast_plan(s, a.shape(), b.shape());
    Mask<D> y = Mask<D>::empty(s);
    backend::Ops<D>::compare(p, cmp, a.data_ptr(), b.data_ptr(), y.data_ptr());
    return y;
}
}  // namespace detail

// Each comparison broadcasts (NumPy rules), takes two tensors of one element type or a tensor and a value,
// and returns a Mask<D> of the broadcast shape, 1 where the comparison holds. NaN is unequal to everything.
#define TAPEGRAD_COMPARISON(name, cmp, text)                                                                     \
    /** a text b elementwise, broadcasting: [broadcast of a and b] -> mask */                                   \
    template <Element T, Device D>                                                                              \
    Mask<D> name(const Tensor<T, D>& a, const Tensor<T, D>& b) {                                                \
        return detail::compare(#name, backend::CompareOp::cmp, a, b);                                           \
    }                                                                                                           \
    /** a text v elementwise: a's shape -> mask */                                                              \
    template <Element T, Device D>                                                                              \
    Mask<D> name(const Tensor<T, D>& a, std::type_identity_t<T> v) {                                            \
        return detail::compare(#name, backend::CompareOp::cmp, a, Tensor<T, D>::scalar(v));                     \
    }
TAPEGRAD_COMPARISON(eq, eq, ==)
TAPEGRAD_COMPARISON(ne, ne, !=)
TAPEGRAD_COMPARISON(lt, lt, <)
TAPEGRAD_COMPARISON(le, le, <=)
TAPEGRAD_COMPARISON(gt, gt, >)
TAPEGRAD_COMPARISON(ge, ge, >=)
#undef TAPEGRAD_COMPARISON

// ---- argmax / argmin -----------------------------------------------------------------------------------------

namespace detail {
template <Element T, Device D>
Tensor<int64_t, D> arg_reduce(const char* op, bool is_min, const Tensor<T, D>& x, int axis, bool keepdim) {
    const int a = x.shape().normalize_axis(axis, op);
    const auto s = x.shape().split_at(a);
    TAPEGRAD_CHECK(s.n > 0, ValueError, op, ": axis ", axis, " of shape ", x.shape(), " is empty");
    const Shape out = keepdim ? x.shape().with(a, 1) : x.shape().without(a);
    auto y = Tensor<int64_t, D>::empty(out);
    backend::Ops<D>::arg_reduce_axis(s.outer, s.n, s.inner, is_min, x.data_ptr(), y.data_ptr());
    return y;
}
}  // namespace detail

/// The index along `axis` of each largest element (the first on ties; a NaN counts as the largest, as in
/// PyTorch): [.., n, ..] -> [.., ..] (keepdim: [.., 1, ..]), int64.
template <Element T, Device D>
Tensor<int64_t, D> argmax(const Tensor<T, D>& x, int axis, bool keepdim = false) {
    return detail::arg_reduce("argmax", false, x, axis, keepdim);
}
/// The index along `axis` of each smallest element (the first on ties; a NaN wins): as argmax.
template <Element T, Device D>
Tensor<int64_t, D> argmin(const Tensor<T, D>& x, int axis, bool keepdim = false) {
    return detail::arg_reduce("argmin", true, x, axis, keepdim);
}

}  // namespace tapegrad
