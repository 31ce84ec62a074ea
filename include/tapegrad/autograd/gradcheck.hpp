#pragma once
/// \file
/// `gradcheck`: compares the gradients backward computes with central finite differences, in double.
///
/// The function's output y is projected onto fixed random weights r (L = sum(y * r)), so one backward pass
/// gives dL/dx for every input element, and each element's numeric derivative is
/// (L(x + eps) - L(x - eps)) / (2 eps). The worst element is reported with its input, index and both values.
///
/// Float inputs are checked in double too (float finite differences are mostly rounding noise): the
/// function must then also accept double tensors, as a generic lambda does:
///     std::cout << gradcheck([](const auto& xs) { return tanh(xs[0]); }, {TensorF::ones({3})}) << '\n';
///
/// `gradgradcheck` checks second derivatives the same way, on the gradient grad(<f(x), v>, x) computed with
/// create_graph: its derivatives with respect to x and to v (both halves of each op's double backward) are
/// compared with finite differences of the gradient.

#include <tapegrad/autograd/grad.hpp>
#include <tapegrad/core/tensor.hpp>

#include <cmath>
#include <algorithm>
#include <functional>
#include <ostream>
#include <sstream>
#include <type_traits>
#include <string>
#include <vector>

namespace tapegrad {

struct GradcheckOptions {
    double eps = 1e-6;   ///< finite-difference step
    double atol = 1e-6;  ///< absolute tolerance
    double rtol = 1e-4;  ///< relative tolerance (of the numeric value)
    uint64_t seed = 20261127;  ///< seed of the projection weights
};

struct GradcheckResult {
    bool ok = true;
    double max_abs_error = 0.0;  ///< over all checked elements
    int input = -1;              ///< the input holding the worst element (-1: none checked)
    int64_t element = -1;        ///< its flat index
    double analytic = 0.0, numeric = 0.0;
    std::string message;  ///< a sentence describing the worst element
    explicit operator bool() const noexcept { return ok; }
    /// Writes the message: `std::cout << gradcheck(f, {x})`.
    friend std::ostream& operator<<(std::ostream& os, const GradcheckResult& r) { return os << r.message; }
};

namespace detail {

/// The comparison gradcheck and gradgradcheck share: for every element of every tensor in `wrt`, the central
/// difference of `projected()` against the analytic derivative `analytic[k]` (undefined: zero), within
/// atol + rtol |numeric|. The worst element (largest error over tolerance) is reported as input `id(k)`.
/// The tensors are perturbed in place and restored.
template <class Projected, class Id>
GradcheckResult central_differences(const std::vector<TensorD>& wrt, const std::vector<TensorD>& analytic,
                                    const Projected& projected, const Id& id, const GradcheckOptions& opt) {
    GradcheckResult res;
    double worst_ratio = -1.0;
    for (size_t k = 0; k < wrt.size(); ++k) {
        if (!wrt[k].defined()) continue;
        double* p = wrt[k].data();
        for (int64_t i = 0; i < wrt[k].numel(); ++i) {
            const double orig = p[i];
            p[i] = orig + opt.eps;
            const double lp = projected();
            p[i] = orig - opt.eps;
            const double lm = projected();
            p[i] = orig;
            const double num = (lp - lm) / (2.0 * opt.eps);
            const double ana = analytic[k].defined() ? analytic[k].data()[i] : 0.0;
            const double err = std::abs(ana - num);
            const double tol = opt.atol + opt.rtol * std::abs(num);
            const double ratio = std::isfinite(err) ? err / tol : INFINITY;
            res.max_abs_error = std::max(res.max_abs_error, err);
            if (ratio > worst_ratio) {
                worst_ratio = ratio;
                res.input = id(k);
                res.element = i;
                res.analytic = ana;
                res.numeric = num;
            }
            if (!(err <= tol)) res.ok = false;
        }
    }
    return res;
}

}  // namespace detail

/// Checks `f`'s gradient with respect to every input that requires grad (all inputs, if none does).
/// `f` takes the inputs and returns a tensor of any shape. The inputs are not modified.
inline GradcheckResult gradcheck(const std::function<TensorD(const std::vector<TensorD>&)>& f,
                                 const std::vector<TensorD>& inputs, const GradcheckOptions& opt = {}) {
    std::vector<TensorD> xs;
    bool any = false;
    for (const auto& x : inputs) any = any || x.requires_grad();
    for (const auto& x : inputs) {
        TensorD c = TensorD::empty(x.shape());
        c.copy_(x);
        c.requires_grad_(any ? x.requires_grad() : true);
        xs.push_back(c);
    }
    TensorD y = f(xs);
    Generator gen(opt.seed);
    const TensorD r = TensorD::uniform(y.shape(), -1.0, 1.0, gen);
    TAPEGRAD_CHECK(y.requires_grad(), ValueError, "gradcheck: the function's output does not depend on any input ",
                   "that requires grad");
    y.backward(r);

    auto projected = [&]() {
        NoGradGuard ng;
        const TensorD v = f(xs);
        TAPEGRAD_CHECK(v.shape() == r.shape(), ShapeError, "gradcheck: the output shape changed from ", r.shape(),
                       " to ", v.shape(), " when inputs were perturbed");
        double s = 0.0;
        for (int64_t i = 0; i < v.numel(); ++i) s += v.data()[i] * r.data()[i];
        return s;
    };

    // Only the inputs that require grad are checked: the others stand in `wrt` undefined.
    std::vector<TensorD> wrt(xs.size()), analytic(xs.size());
    for (size_t k = 0; k < xs.size(); ++k)
        if (xs[k].requires_grad()) {
            wrt[k] = xs[k];
            analytic[k] = xs[k].grad();
        }
    GradcheckResult res =
        detail::central_differences(wrt, analytic, projected, [](size_t k) { return static_cast<int>(k); }, opt);
    std::ostringstream os;
    os.precision(10);
    if (res.input < 0)
        os << "gradcheck: no input elements to check";
    else
        os << "gradcheck " << (res.ok ? "passed" : "FAILED") << ": worst element is input " << res.input << " (shape "
           << xs[static_cast<size_t>(res.input)].shape() << ") flat index " << res.element << ": analytic "
           << res.analytic << " vs numeric " << res.numeric << " (abs error " << std::abs(res.analytic - res.numeric)
           << ", tolerance " << opt.atol + opt.rtol * std::abs(res.numeric) << ")";
    res.message = os.str();
    return res;
}

/// gradcheck for float inputs: checks in double, on double copies of the inputs (their requires_grad
/// flags kept), so `f` must also take `std::vector<TensorD>`: write it as a generic lambda,
/// `[](const auto& xs) { ... }`.
template <class F>
GradcheckResult gradcheck(const F& f, const std::vector<TensorF>& inputs, const GradcheckOptions& opt = {}) {
    static_assert(std::is_invocable_r_v<TensorD, const F&, const std::vector<TensorD>&>,
                  "gradcheck: the function must also accept std::vector<TensorD> (write it as a generic lambda, "
                  "[](const auto& xs) { ... }): float inputs are checked in double");
    std::vector<TensorD> xs;
    xs.reserve(inputs.size());
    for (const TensorF& x : inputs) {
        std::vector<double> v(static_cast<size_t>(x.numel()));
        const float* p = x.data();
        for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
        xs.push_back(TensorD::from(x.shape(), v).requires_grad_(x.requires_grad()));
    }
    return gradcheck(std::function<TensorD(const std::vector<TensorD>&)>(f), xs, opt);
}

/// Checks `f`'s second derivatives: with v a random output gradient of f(x)'s shape and g_j(x, v) =
/// d<f(x), v>/dx_j computed by tapegrad::grad with create_graph, it compares the derivatives of
/// G = sum_j <g_j, r_j> (r_j fixed random weights) with respect to every checked input and to v, taken by
/// backward through the recorded gradient, with central finite differences of G. First it checks that the
/// create_graph gradient equals backward's. Inputs that do not require grad stay constants, as in
/// gradcheck. Throws (ValueError naming the op) where an op on the way has no double backward.
inline GradcheckResult gradgradcheck(const std::function<TensorD(const std::vector<TensorD>&)>& f,
                                     const std::vector<TensorD>& inputs, const GradcheckOptions& opt = {}) {
    bool any = false;
    for (const auto& x : inputs) any = any || x.requires_grad();
    std::vector<TensorD> xs;
    std::vector<size_t> checked;
    for (size_t k = 0; k < inputs.size(); ++k) {
        TensorD c = TensorD::empty(inputs[k].shape());
        c.copy_(inputs[k]);
        const bool on = any ? inputs[k].requires_grad() : true;
        c.requires_grad_(on);
        if (on) checked.push_back(k);
        xs.push_back(c);
    }
    std::vector<TensorD> leaves;
    for (size_t k : checked) leaves.push_back(xs[k]);
    Generator gen(opt.seed ^ 0x9e3779b97f4a7c15ULL);
    TensorD v;
    {
        NoGradGuard off;
        v = TensorD::uniform(f(xs).shape(), -1.0, 1.0, gen);
    }
    v.requires_grad_(true);
    std::vector<TensorD> rs;
    for (const auto& x : leaves) rs.push_back(TensorD::uniform(x.shape(), -1.0, 1.0, gen));
    // The gradients g_j at the current values of xs and v.
    const auto grads = [&](bool create_graph, bool retain) {
        NoGradGuard on(true);  // recorded even where the caller evaluates without recording
        const TensorD y = f(xs);
        if (!y.requires_grad()) return std::vector<TensorD>(leaves.size());
        return grad(std::vector<TensorD>{y}, leaves,
                    {.grad_outputs = {v}, .create_graph = create_graph, .retain_graph = retain, .allow_unused = true});
    };
    std::ostringstream os;
    os.precision(10);

    // 1. The create_graph gradient must equal backward's (which gradcheck checks): the comparison below
    //    differentiates the create_graph gradient, so a wrong value there would otherwise go unseen.
    {
        const std::vector<TensorD> gs = grads(true, true);
        NoGradGuard on(true);
        const TensorD y = f(xs);
        for (auto& x : leaves) x.reset_grad();
        if (y.requires_grad()) y.backward(v.detach());
        for (size_t j = 0; j < leaves.size(); ++j) {
            const TensorD ref = leaves[j].grad();
            for (int64_t i = 0; i < leaves[j].numel(); ++i) {
                const double want = ref.defined() ? ref.data()[i] : 0.0;
                const double got = gs[j].defined() ? gs[j].data()[i] : 0.0;
                if (std::abs(got - want) <= opt.atol + opt.rtol * std::abs(want)) continue;
                GradcheckResult bad;
                bad.ok = false;
                bad.input = static_cast<int>(checked[j]);
                bad.element = i;
                bad.analytic = got;
                bad.numeric = want;
                bad.max_abs_error = std::abs(got - want);
                os << "gradgradcheck FAILED: the create_graph gradient of input " << checked[j] << " (shape "
                   << leaves[j].shape() << ") at flat index " << i << " is " << got << ", backward's is " << want;
                bad.message = os.str();
                return bad;
            }
        }
        for (auto& x : leaves) x.reset_grad();
    }

    // 2. Analytic dG/dx_j and dG/dv: one backward through the recorded gradients.
    std::vector<TensorD> wrt = leaves;
    wrt.push_back(v);
    std::vector<TensorD> analytic(wrt.size());
    {
        const std::vector<TensorD> gs = grads(true, true);
        std::vector<TensorD> outs, weights;
        for (size_t j = 0; j < gs.size(); ++j)
            if (gs[j].defined() && gs[j].requires_grad()) {
                outs.push_back(gs[j]);
                weights.push_back(rs[j]);
            }
        if (!outs.empty()) analytic = grad(outs, wrt, {.grad_outputs = weights, .allow_unused = true});
    }
    const auto projected = [&]() {
        const std::vector<TensorD> gs = grads(false, false);
        double s = 0.0;
        for (size_t j = 0; j < gs.size(); ++j)
            if (gs[j].defined())
                for (int64_t i = 0; i < gs[j].numel(); ++i) s += gs[j].data()[i] * rs[j].data()[i];
        return s;
    };

    // 3. Central differences of G, element by element (the last of `wrt` is v, reported as inputs.size()).
    GradcheckResult res = detail::central_differences(
        wrt, analytic, projected,
        [&](size_t k) { return k < checked.size() ? static_cast<int>(checked[k]) : static_cast<int>(inputs.size()); },
        opt);
    if (res.input < 0)
        os << "gradgradcheck: no input elements to check";
    else
        os << "gradgradcheck " << (res.ok ? "passed" : "FAILED") << ": worst element is "
           << (res.input == static_cast<int>(inputs.size()) ? std::string("the output gradient v")
                                                              : "input " + std::to_string(res.input))
           << " flat index " << res.element << ": analytic " << res.analytic << " vs numeric " << res.numeric
           << " (abs error " << std::abs(res.analytic - res.numeric) << ", tolerance "
           << opt.atol + opt.rtol * std::abs(res.numeric) << ")";
    res.message = os.str();
    return res;
}

}  // namespace tapegrad
