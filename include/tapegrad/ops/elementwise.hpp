#pragma once
/// \file
/// Elementwise ops with NumPy broadcasting: add, sub, mul, div, maximum, neg, exp, log, sqrt, pow, abs,
/// clamp, tanh, sigmoid, relu. Each is a functor in backend/common/functors.hpp (value and derivative side by
/// side) plus a one-line wrapper here; `unary` and `binary` do the recording once for all of them.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/common/functors.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/shape.hpp>

#include <concepts>

namespace tapegrad {

namespace detail {

/// The broadcasting plan of out = f(a, b): output dimensions and each operand's strides (0 where it is
/// broadcast).
inline backend::Strided broadcast_plan(const Shape& out, const Shape& a, const Shape& b) {
    backend::Strided p;
    p.rank = out.rank();
    const auto sa = contiguous_strides(a), sb = contiguous_strides(b);
    for (int i = 0; i < out.rank(); ++i) {
        const auto ui = static_cast<size_t>(i);
        p.dims[ui] = out[i];
        const int ia = i - (out.rank() - a.rank()), ib = i - (out.rank() - b.rank());
        p.sa[ui] = (ia >= 0 && a[ia] != 1) ? sa[static_cast<size_t>(ia)] : 0;
        p.sb[ui] = (ib >= 0 && b[ib] != 1) ? sb[static_cast<size_t>(ib)] : 0;
    }
    p.a_contig = a == out;
    p.b_contig = b == out;
    return p;
}

}  // namespace detail

/// y = f(x) elementwise for a unary functor `f` (see backend/common/functors.hpp); records f.backward.
template <class F, Scalar T, Device D>
Tensor<T, D> unary(const Tensor<T, D>& x, const F& f) {
    using B = backend::Ops<D>;
    Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
    B::map(x.numel(), x.data_ptr(), y.data_ptr(), f);
    if (detail::needs_grad(x)) {
        detail::record(y, F::name, {&x}, [x, f](const Tensor<T, D>& dy, const detail::TensorImpl<T, D>& out) {
            const auto dx = detail::grad_target(x, out, dy);
            B::map_backward(x.numel(), x.data_ptr(), out.data(), dy.data_ptr(), dx.data, f, dx.assign);
        });
    }
    return y;
}

/// y = f(a, b) elementwise with broadcasting, for a binary functor `f`; records f.da and f.db, summed over
/// the broadcast dimensions.
template <class F, Scalar T, Device D>
Tensor<T, D> binary(const Tensor<T, D>& a, const Tensor<T, D>& b, const F& f) {
    using B = backend::Ops<D>;
    const Shape s = broadcast_shapes(a.shape(), b.shape(), F::name);
    const backend::Strided p = detail::broadcast_plan(s, a.shape(), b.shape());
    Tensor<T, D> y = Tensor<T, D>::empty(s);
    B::zip(p, a.data_ptr(), b.data_ptr(), y.data_ptr(), f);
    if (detail::needs_grad(a, b)) {
        detail::record(y, F::name, {&a, &b},
                       [a, b, p, f](const Tensor<T, D>& dy, const detail::TensorImpl<T, D>& out) {
                           T* db = detail::grad_buffer_or_null(b);
                           const auto da = detail::grad_target(a, out, dy);  // after b's: a may be b
                           B::zip_backward(p, a.data_ptr(), b.data_ptr(), out.data(), dy.data_ptr(), da.data, db, f,
                                           da.assign);
                       });
    }
    return y;
}

// ---- binary ops (tensor-tensor, tensor-scalar, scalar-tensor) --------------------------------------------

/// a + b, broadcasting.
template <Scalar T, Device D>
Tensor<T, D> add(const Tensor<T, D>& a, const Tensor<T, D>& b) { return binary(a, b, fn::Add{}); }
/// a - b, broadcasting.
template <Scalar T, Device D>
Tensor<T, D> sub(const Tensor<T, D>& a, const Tensor<T, D>& b) { return binary(a, b, fn::Sub{}); }
/// a * b elementwise, broadcasting.
template <Scalar T, Device D>
Tensor<T, D> mul(const Tensor<T, D>& a, const Tensor<T, D>& b) { return binary(a, b, fn::Mul{}); }
/// a / b elementwise, broadcasting.
template <Scalar T, Device D>
Tensor<T, D> div(const Tensor<T, D>& a, const Tensor<T, D>& b) { return binary(a, b, fn::Div{}); }
/// max(a, b) elementwise, broadcasting; the gradient goes to the larger input.
template <Scalar T, Device D>
Tensor<T, D> maximum(const Tensor<T, D>& a, const Tensor<T, D>& b) { return binary(a, b, fn::Maximum{}); }

template <Scalar T, Device D>
Tensor<T, D> operator+(const Tensor<T, D>& a, const Tensor<T, D>& b) { return add(a, b); }
template <Scalar T, Device D>
Tensor<T, D> operator-(const Tensor<T, D>& a, const Tensor<T, D>& b) { return sub(a, b); }
template <Scalar T, Device D>
Tensor<T, D> operator*(const Tensor<T, D>& a, const Tensor<T, D>& b) { return mul(a, b); }
template <Scalar T, Device D>
Tensor<T, D> operator/(const Tensor<T, D>& a, const Tensor<T, D>& b) { return div(a, b); }

// Operands on two devices: a compile-time error that says so. The compiler's note on the instantiation
// names both devices (DA and DB); there is no implicit copy between devices.
#define TAPEGRAD_MIXED_DEVICE_OP(op)                                                                       \
    template <Scalar T, Device DA, Device DB>                                                              \
        requires(!std::same_as<DA, DB>)                                                                    \
    Tensor<T, DA> op(const Tensor<T, DA>&, const Tensor<T, DB>&) {                                         \
        static_assert(detail::same_device<DA, DB>,                                                         \
                      "tapegrad: the two operands live on different devices (DA and DB in the note above); " \
                      "copy one to the other's device with to<Device>(x) first");                          \
        return {};                                                                                         \
    }
TAPEGRAD_MIXED_DEVICE_OP(operator+)
TAPEGRAD_MIXED_DEVICE_OP(operator-)
TAPEGRAD_MIXED_DEVICE_OP(operator*)
TAPEGRAD_MIXED_DEVICE_OP(operator/)
TAPEGRAD_MIXED_DEVICE_OP(add)
TAPEGRAD_MIXED_DEVICE_OP(sub)
TAPEGRAD_MIXED_DEVICE_OP(mul)
TAPEGRAD_MIXED_DEVICE_OP(div)
TAPEGRAD_MIXED_DEVICE_OP(maximum)
#undef TAPEGRAD_MIXED_DEVICE_OP

// Scalars are promoted to rank-0 constant tensors, which broadcast against anything.
template <Scalar T, Device D>
Tensor<T, D> operator+(const Tensor<T, D>& a, std::type_identity_t<T> s) { return add(a, Tensor<T, D>::scalar(s)); }
template <Scalar T, Device D>
Tensor<T, D> operator+(std::type_identity_t<T> s, const Tensor<T, D>& a) { return add(Tensor<T, D>::scalar(s), a); }
template <Scalar T, Device D>
Tensor<T, D> operator-(const Tensor<T, D>& a, std::type_identity_t<T> s) { return sub(a, Tensor<T, D>::scalar(s)); }
template <Scalar T, Device D>
Tensor<T, D> operator-(std::type_identity_t<T> s, const Tensor<T, D>& a) { return sub(Tensor<T, D>::scalar(s), a); }
template <Scalar T, Device D>
Tensor<T, D> operator*(const Tensor<T, D>& a, std::type_identity_t<T> s) { return mul(a, Tensor<T, D>::scalar(s)); }
template <Scalar T, Device D>
Tensor<T, D> operator*(std::type_identity_t<T> s, const Tensor<T, D>& a) { return mul(Tensor<T, D>::scalar(s), a); }
template <Scalar T, Device D>
Tensor<T, D> operator/(const Tensor<T, D>& a, std::type_identity_t<T> s) { return div(a, Tensor<T, D>::scalar(s)); }
template <Scalar T, Device D>
Tensor<T, D> operator/(std::type_identity_t<T> s, const Tensor<T, D>& a) { return div(Tensor<T, D>::scalar(s), a); }

// ---- unary ops -----------------------------------------------------------------------------------------

/// -x
template <Scalar T, Device D>
Tensor<T, D> neg(const Tensor<T, D>& x) { return unary(x, fn::Neg{}); }
template <Scalar T, Device D>
Tensor<T, D> operator-(const Tensor<T, D>& x) { return neg(x); }
/// e^x
template <Scalar T, Device D>
Tensor<T, D> exp(const Tensor<T, D>& x) { return unary(x, fn::Exp{}); }
/// natural logarithm
template <Scalar T, Device D>
Tensor<T, D> log(const Tensor<T, D>& x) { return unary(x, fn::Log{}); }
/// square root
template <Scalar T, Device D>
Tensor<T, D> sqrt(const Tensor<T, D>& x) { return unary(x, fn::Sqrt{}); }
/// |x| (gradient 0 at 0)
template <Scalar T, Device D>
Tensor<T, D> abs(const Tensor<T, D>& x) { return unary(x, fn::Abs{}); }
/// x^p for a scalar exponent p
template <Scalar T, Device D>
Tensor<T, D> pow(const Tensor<T, D>& x, double p) { return unary(x, fn::Pow{p}); }
/// min(max(x, lo), hi); the gradient is zero where x was clamped. Throws ValueError if lo > hi.
template <Scalar T, Device D>
Tensor<T, D> clamp(const Tensor<T, D>& x, double lo, double hi) {
    TAPEGRAD_CHECK(!(lo > hi), ValueError, "clamp: lower bound ", lo, " is above upper bound ", hi);
    return unary(x, fn::Clamp{lo, hi});
}
/// hyperbolic tangent
template <Scalar T, Device D>
Tensor<T, D> tanh(const Tensor<T, D>& x) { return unary(x, fn::Tanh{}); }
/// logistic sigmoid 1 / (1 + e^-x), finite for any input
template <Scalar T, Device D>
Tensor<T, D> sigmoid(const Tensor<T, D>& x) { return unary(x, fn::Sigmoid{}); }
/// max(x, 0)
template <Scalar T, Device D>
Tensor<T, D> relu(const Tensor<T, D>& x) { return unary(x, fn::Relu{}); }

}  // namespace tapegrad
