#pragma once
/// \file
/// Elementwise ops with NumPy broadcasting: add, sub, mul, div, maximum, neg, exp, log, sqrt, pow, abs,
/// clamp, tanh, sigmoid, relu. Each is a functor in backend/common/functors.hpp (value and derivative side by
/// side) plus a one-line wrapper here; `unary` and `binary` do the recording once for all of them.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/common/activation_functors.hpp>
#include <tapegrad/backend/common/functors.hpp>
#include <tapegrad/backend/common/loss_functors.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>

#include <concepts>
#include <type_traits>

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

// ---- differentiable backwards (create_graph) --------------------------------------------------------------

/// `g` summed down to `shape` (the inverse of broadcasting `shape` up to g's shape), with recorded ops.
template <Scalar T, Device D>
Tensor<T, D> sum_to(Tensor<T, D> g, const Shape& shape) {
    if (g.shape() == shape) return g;
    while (g.dim() > shape.rank()) g = tapegrad::sum(g, 0);
    for (int i = 0; i < shape.rank(); ++i)
        if (shape[i] == 1 && g.size(i) != 1) g = tapegrad::sum(g, i, true);
    return g.shape() == shape ? g : reshape(g, shape);
}

/// 1 where x > 0, else 0: a constant (recorded nothing), for the derivative of piecewise functions.
template <Scalar T, Device D>
Tensor<T, D> positive_mask(const Tensor<T, D>& x) {
    Tensor<T, D> m = Tensor<T, D>::empty(x.shape());
    backend::Ops<D>::map(x.numel(), x.data_ptr(), m.data_ptr(), fn::Step{});
    return m;
}

template <class F, class... Fs>
inline constexpr bool is_one_of = (std::is_same_v<F, Fs> || ...);

/// The unary functors whose derivative unary_derivative writes with ops (a functor outside this list is
/// recorded without a differentiable backward, so double backward through it throws naming it).
template <class F>
inline constexpr bool twice_differentiable_unary =
    is_one_of<F, fn::Neg, fn::Exp, fn::Log, fn::Sqrt, fn::Abs, fn::Pow, fn::Clamp, fn::Tanh, fn::Sigmoid, fn::Relu,
              fn::Step, fn::Identity, fn::LeakyRelu, fn::Elu, fn::Softplus, fn::Gelu, fn::Silu, fn::Softsign,
              fn::NormalCdf>;

/// f'(x) for a unary functor, written with ops so that it can be differentiated again (to any order: each
/// formula uses only ops that have a formula here). Piecewise parts use constant masks.
template <class F, Scalar T, Device D>
Tensor<T, D> unary_derivative(const F& f, const Tensor<T, D>& x) {
    using TD = Tensor<T, D>;
    const auto c = [](double v) { return static_cast<T>(v); };
    if constexpr (std::is_same_v<F, fn::Neg>) return TD::full(x.shape(), T(-1));
    else if constexpr (std::is_same_v<F, fn::Exp>) return exp(x);
    else if constexpr (std::is_same_v<F, fn::Log>) return T(1) / x;
    else if constexpr (std::is_same_v<F, fn::Sqrt>) return T(0.5) / sqrt(x);
    else if constexpr (std::is_same_v<F, fn::Abs>) return positive_mask(x) - positive_mask(neg(x.detach()));
    else if constexpr (std::is_same_v<F, fn::Pow>) {
        if (f.p == 0.0) return TD::zeros(x.shape());
        if (f.p == 1.0) return TD::ones(x.shape());
        if (f.p == 2.0) return x * T(2);
        return pow(x, f.p - 1.0) * c(f.p);
    } else if constexpr (std::is_same_v<F, fn::Clamp>) {
        const TD xd = x.detach();  // 1 inside [lo, hi]
        return (T(1) - positive_mask(c(f.lo) - xd)) * (T(1) - positive_mask(xd - c(f.hi)));
    } else if constexpr (std::is_same_v<F, fn::Tanh>) {
        const TD t = tanh(x);
        return T(1) - t * t;
    } else if constexpr (std::is_same_v<F, fn::Sigmoid>) {
        const TD s = sigmoid(x);
        return s * (T(1) - s);
    } else if constexpr (std::is_same_v<F, fn::Relu>) return positive_mask(x);
    else if constexpr (std::is_same_v<F, fn::Step>) return TD::zeros(x.shape());
    else if constexpr (std::is_same_v<F, fn::Identity>) return TD::ones(x.shape());
    else if constexpr (std::is_same_v<F, fn::LeakyRelu>) {
        const TD m = positive_mask(x);
        return m + (T(1) - m) * c(f.alpha);
    } else if constexpr (std::is_same_v<F, fn::Elu>) {
        // alpha e^x for x <= 0, 1 above; e^min(x, 0) = e^-relu(-x) cannot overflow
        const TD m = positive_mask(x);
        return m + (T(1) - m) * exp(-relu(-x)) * c(f.alpha);
    } else if constexpr (std::is_same_v<F, fn::Softplus>) {
        // sigmoid(beta x), or 1 where the function is linear (beta x > threshold)
        const TD z = x * c(f.beta);
        const TD lin = positive_mask(z.detach() - c(f.threshold));
        return lin + (T(1) - lin) * sigmoid(z);
    } else if constexpr (std::is_same_v<F, fn::Gelu>) {
        if (f.tanh_approx) {
            // y = x (1 + tanh u) / 2, u = k (x + 0.044715 x^3):  y' = (1 + t) / 2 + x (1 - t^2) k (1 + 3 0.044715 x^2) / 2
            const T k = c(0.79788456080286535588), a = c(0.044715);
            const TD t = tanh((x + x * x * x * a) * k);
            return (T(1) + t) * T(0.5) + x * (T(1) - t * t) * (T(1) + x * x * (T(3) * a)) * (T(0.5) * k);
        }
        // y = x Phi(x):  y' = Phi(x) + x phi(x)
        return unary(x, fn::NormalCdf{}) + x * exp(x * x * T(-0.5)) * c(0.39894228040143267794);
    } else if constexpr (std::is_same_v<F, fn::Silu>) {
        const TD s = sigmoid(x);
        return s * (T(1) + x * (T(1) - s));
    } else if constexpr (std::is_same_v<F, fn::Softsign>) {
        const TD d = T(1) + abs(x);
        return T(1) / (d * d);
    } else if constexpr (std::is_same_v<F, fn::NormalCdf>) {
        return exp(x * x * T(-0.5)) * c(0.39894228040143267794);
    } else {
        static_assert(!std::is_same_v<F, F>, "unary_derivative: no formula for this functor");
    }
}

/// The binary functors whose partial derivatives binary_graph_backward writes with ops.
template <class F>
inline constexpr bool twice_differentiable_binary =
    is_one_of<F, fn::Add, fn::Sub, fn::Mul, fn::Div, fn::Maximum, fn::SquaredError, fn::Bce, fn::BceWithLogits>;

/// The differentiable backward of y = f(a, b) with broadcasting: each partial derivative times dy, summed
/// back to its operand's shape.
template <class F, Scalar T, Device D>
void binary_graph_backward(const F&, const Tensor<T, D>& a, const Tensor<T, D>& b, const Tensor<T, D>& dy,
                           GradSink<T, D>& g) {
    using TD = Tensor<T, D>;
    const bool wa = g.wants(a), wb = g.wants(b);
    if (!wa && !wb) return;
    TD da, db;
    if constexpr (std::is_same_v<F, fn::Add>) {
        da = dy;
        db = dy;
    } else if constexpr (std::is_same_v<F, fn::Sub>) {
        da = dy;
        if (wb) db = -dy;
    } else if constexpr (std::is_same_v<F, fn::Mul>) {
        if (wa) da = dy * b;
        if (wb) db = dy * a;
    } else if constexpr (std::is_same_v<F, fn::Div>) {
        if (wa) da = dy / b;
        if (wb) db = -(dy * a) / (b * b);
    } else if constexpr (std::is_same_v<F, fn::Maximum>) {
        const TD ma = T(1) - positive_mask(b.detach() - a.detach());  // 1 where a >= b
        if (wa) da = dy * ma;
        if (wb) db = dy * (T(1) - ma);
    } else if constexpr (std::is_same_v<F, fn::SquaredError>) {
        const TD d = dy * (a - b) * T(2);
        da = d;
        if (wb) db = -d;
    } else if constexpr (std::is_same_v<F, fn::Bce>) {
        // p = a, t = b: d/dp = (p - t) / max(p (1 - p), 1e-12);  d/dt = log(1 - p) - log p, each log >= -100
        if (wa) da = dy * (a - b) / maximum(a * (T(1) - a), TD::scalar(T(1e-12)));
        if (wb) db = dy * (maximum(log(T(1) - a), TD::scalar(T(-100))) - maximum(log(a), TD::scalar(T(-100))));
    } else if constexpr (std::is_same_v<F, fn::BceWithLogits>) {
        if (wa) da = dy * (sigmoid(a) - b);
        if (wb) db = -(dy * a);
    } else {
        static_assert(!std::is_same_v<F, F>, "binary_graph_backward: no formula for this functor");
    }
    if (wa) g.add(a, sum_to(da, a.shape()));
    if (wb) g.add(b, sum_to(db, b.shape()));
}

/// The backward of y = f(x) (unary): the fused one, and (when f is listed in twice_differentiable_unary)
/// the differentiable one, in one object so that x is captured once.
template <class F, class T, class D>
struct UnaryBackward {
    Tensor<T, D> x;
    F f;
    void operator()(const Tensor<T, D>& dy, const TensorImpl<T, D>& out) const {
        const auto dx = grad_target(x, out, dy);
        backend::Ops<D>::map_backward(x.numel(), x.data_ptr(), out.data(), dy.data_ptr(), dx.data, f, dx.assign);
    }
    void operator()(const Tensor<T, D>& dy, GradSink<T, D>& g) const
        requires twice_differentiable_unary<F>
    {
        if (g.wants(x)) g.add(x, dy * unary_derivative(f, x));
    }
};

/// The backward of y = f(a, b) with broadcasting plan p, fused and (for the listed functors) differentiable.
template <class F, class T, class D>
struct BinaryBackward {
    Tensor<T, D> a, b;
    backend::Strided p;
    F f;
    void operator()(const Tensor<T, D>& dy, const TensorImpl<T, D>& out) const {
        T* db = grad_buffer_or_null(b);
        const auto da = grad_target(a, out, dy);  // after b's: a may be b
        backend::Ops<D>::zip_backward(p, a.data_ptr(), b.data_ptr(), out.data(), dy.data_ptr(), da.data, db, f,
                                      da.assign);
    }
    void operator()(const Tensor<T, D>& dy, GradSink<T, D>& g) const
        requires twice_differentiable_binary<F>
    {
        binary_graph_backward(f, a, b, dy, g);
    }
};

}  // namespace detail

/// y = f(x) elementwise for a unary functor `f` (see backend/common/functors.hpp); records f.backward.
template <class F, Scalar T, Device D>
Tensor<T, D> unary(const Tensor<T, D>& x, const F& f) {
    using B = backend::Ops<D>;
    Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
    B::map(x.numel(), x.data_ptr(), y.data_ptr(), f);
    if (detail::needs_grad(x)) detail::record(y, F::name, {&x}, detail::UnaryBackward<F, T, D>{x, f});
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
    if (detail::needs_grad(a, b)) detail::record(y, F::name, {&a, &b}, detail::BinaryBackward<F, T, D>{a, b, p, f});
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
