// Tests for tapegrad/backend/common/optim_math.hpp: every update rule, applied by Ops<Cpu>::step_many to a
// list of tensors, gives bit for bit what the optimizer's own loop gave before the rules were shared with the
// GPU (the loops below are those loops, kept as references), for every option.

#include <tapegrad/backend/common/optim_math.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

namespace backend = tapegrad::backend;
using tapegrad::Generator;
using Ops = backend::Ops<tapegrad::Cpu>;

const std::vector<int64_t> sizes{5, 0, 1, 2047, 2048, 2049, 33};

template <class T>
std::vector<std::vector<T>> random_lists(Generator& gen, T lo, T hi) {
    std::vector<std::vector<T>> out;
    for (int64_t n : sizes) {
        std::vector<T> v(static_cast<size_t>(n));
        for (T& x : v) x = lo + (hi - lo) * gen.template uniform01<T>();
        out.push_back(std::move(v));
    }
    return out;
}

template <class T>
T lerp(T start, T end, T weight) {
    return std::abs(weight) < T(0.5) ? start + weight * (end - start) : end - (end - start) * (T(1) - weight);
}

}  // namespace

TEST_CASE_TEMPLATE("SgdRule through step_many equals the SGD loop, bit for bit", T, float, double) {
    for (const T mu : {T(0), T(0.9)})
        for (const T dampening : {T(0), T(0.25)})
            for (const T wd : {T(0), T(1e-2)})
                for (const bool nesterov : {false, true}) {
                    CAPTURE(mu);
                    CAPTURE(dampening);
                    CAPTURE(wd);
                    CAPTURE(nesterov);
                    Generator gen(3);
                    auto p = random_lists<T>(gen, T(-1), T(1)), g = random_lists<T>(gen, T(-1), T(1));
                    auto b = random_lists<T>(gen, T(-1), T(1));
                    auto p1 = p, b1 = b;
                    const T lr = T(0.1), keep = T(1) - dampening;
                    for (int step = 0; step < 3; ++step) {
                        std::vector<backend::StepParam<T>> list;
                        for (size_t i = 0; i < sizes.size(); ++i) {
                            const bool first = static_cast<int>(i % 3) == step;  // buffers created at different steps
                            list.push_back({.n = sizes[i], .p = p[i].data(), .grad = g[i].data(),
                                            .s0 = mu == T(0) ? nullptr : b[i].data(), .first_step = first});
                            for (size_t k = 0; k < p1[i].size(); ++k) {
                                const T gk = wd != T(0) ? g[i][k] + wd * p1[i][k] : g[i][k];
                                if (mu == T(0)) {
                                    p1[i][k] -= lr * gk;
                                    continue;
                                }
                                b1[i][k] = first ? gk : mu * b1[i][k] + keep * gk;
                                p1[i][k] -= lr * (nesterov ? gk + mu * b1[i][k] : b1[i][k]);
                            }
                        }
                        Ops::step_many(static_cast<int64_t>(list.size()), list.data(),
                                       backend::SgdRule<T>::make(lr, mu, dampening, wd, nesterov));
                    }
                    CHECK(p == p1);
                    CHECK(b == b1);
                }
}

TEST_CASE_TEMPLATE("AdamRule through step_many equals the Adam loop, bit for bit", T, float, double) {
    const T lr = T(1e-2), beta1 = T(0.9), beta2 = T(0.999), eps = T(1e-8);
    for (const bool amsgrad : {false, true})
        for (const bool decoupled : {false, true})
            for (const T wd : {T(0), T(1e-2)}) {
                CAPTURE(amsgrad);
                CAPTURE(decoupled);
                CAPTURE(wd);
                Generator gen(4);
                auto p = random_lists<T>(gen, T(-1), T(1)), g = random_lists<T>(gen, T(-1), T(1));
                auto m = random_lists<T>(gen, T(-0.1), T(0.1)), v = random_lists<T>(gen, T(0), T(0.01));
                auto vmax = random_lists<T>(gen, T(0), T(0.01));
                auto p1 = p, m1 = m, v1 = v, vmax1 = vmax;
                const T w1 = T(1) - beta1, w2 = T(1) - beta2, shrink = T(1) - lr * wd;
                for (int step = 1; step <= 3; ++step) {
                    std::vector<backend::StepParam<T>> list;
                    for (size_t i = 0; i < sizes.size(); ++i) {
                        const int t = step + static_cast<int>(i);  // each tensor at its own step count
                        const T bc1 = static_cast<T>(1 - std::pow(0.9, t)), bc2 = static_cast<T>(1 - std::pow(0.999, t));
                        const T step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2);
                        list.push_back({.n = sizes[i], .p = p[i].data(), .grad = g[i].data(), .s0 = m[i].data(),
                                        .s1 = v[i].data(), .s2 = amsgrad ? vmax[i].data() : nullptr,
                                        .a = step_size, .b = bc2_sqrt});
                        for (size_t k = 0; k < p1[i].size(); ++k) {
                            if (decoupled) p1[i][k] *= shrink;
                            const T gk = !decoupled && wd != T(0) ? g[i][k] + wd * p1[i][k] : g[i][k];
                            m1[i][k] = lerp(m1[i][k], gk, w1);
                            v1[i][k] = beta2 * v1[i][k] + w2 * gk * gk;
                            T vk = v1[i][k];
                            if (amsgrad) {
                                vmax1[i][k] = (vk > vmax1[i][k] || std::isnan(vk)) ? vk : vmax1[i][k];
                                vk = vmax1[i][k];
                            }
                            p1[i][k] -= step_size * (m1[i][k] / (std::sqrt(vk) / bc2_sqrt + eps));
                        }
                    }
                    Ops::step_many(static_cast<int64_t>(list.size()), list.data(),
                                   backend::AdamRule<T>::make(lr, beta1, beta2, eps, wd, decoupled, amsgrad));
                }
                CHECK(p == p1);
                CHECK(m == m1);
                CHECK(v == v1);
                CHECK(vmax == vmax1);
            }
}

TEST_CASE_TEMPLATE("RmspropRule through step_many equals the RMSprop loop, bit for bit", T, float, double) {
    const T lr = T(1e-2), alpha = T(0.99), w = static_cast<T>(1 - 0.99), eps = T(1e-8);
    for (const bool centered : {false, true})
        for (const T mu : {T(0), T(0.9)})
            for (const T wd : {T(0), T(1e-2)}) {
                CAPTURE(centered);
                CAPTURE(mu);
                CAPTURE(wd);
                Generator gen(5);
                auto p = random_lists<T>(gen, T(-1), T(1)), g = random_lists<T>(gen, T(-1), T(1));
                auto v = random_lists<T>(gen, T(0.01), T(0.02)), b = random_lists<T>(gen, T(-0.1), T(0.1));
                auto a = random_lists<T>(gen, T(-0.05), T(0.05));
                auto p1 = p, v1 = v, b1 = b, a1 = a;
                for (int step = 0; step < 3; ++step) {
                    std::vector<backend::StepParam<T>> list;
                    for (size_t i = 0; i < sizes.size(); ++i) {
                        list.push_back({.n = sizes[i], .p = p[i].data(), .grad = g[i].data(), .s0 = v[i].data(),
                                        .s1 = mu > T(0) ? b[i].data() : nullptr,
                                        .s2 = centered ? a[i].data() : nullptr});
                        for (size_t k = 0; k < p1[i].size(); ++k) {
                            const T gk = wd != T(0) ? g[i][k] + wd * p1[i][k] : g[i][k];
                            v1[i][k] = alpha * v1[i][k] + w * gk * gk;
                            T d;
                            if (centered) {
                                a1[i][k] = lerp(a1[i][k], gk, w);
                                d = std::sqrt(v1[i][k] - a1[i][k] * a1[i][k]) + eps;
                            } else {
                                d = std::sqrt(v1[i][k]) + eps;
                            }
                            if (mu > T(0)) {
                                b1[i][k] = mu * b1[i][k] + gk / d;
                                p1[i][k] -= lr * b1[i][k];
                            } else {
                                p1[i][k] -= lr * (gk / d);
                            }
                        }
                    }
                    Ops::step_many(static_cast<int64_t>(list.size()), list.data(),
                                   backend::RmspropRule<T>::make(lr, 0.99, eps, wd, mu, centered));
                }
                CHECK(p == p1);
                CHECK(v == v1);
                CHECK(b == b1);
                CHECK(a == a1);
            }
}

TEST_CASE_TEMPLATE("AdagradRule through step_many equals the Adagrad loop, bit for bit", T, float, double) {
    const T eps = T(1e-10);
    for (const T wd : {T(0), T(1e-2)}) {
        CAPTURE(wd);
        Generator gen(6);
        auto p = random_lists<T>(gen, T(-1), T(1)), g = random_lists<T>(gen, T(-1), T(1));
        auto s = random_lists<T>(gen, T(0), T(0.1));
        auto p1 = p, s1 = s;
        for (int step = 1; step <= 3; ++step) {
            std::vector<backend::StepParam<T>> list;
            for (size_t i = 0; i < sizes.size(); ++i) {
                const T clr = static_cast<T>(0.1 / (1 + (step - 1) * 0.01));
                list.push_back({.n = sizes[i], .p = p[i].data(), .grad = g[i].data(), .s0 = s[i].data(), .a = clr});
                for (size_t k = 0; k < p1[i].size(); ++k) {
                    const T gk = wd != T(0) ? g[i][k] + wd * p1[i][k] : g[i][k];
                    s1[i][k] = s1[i][k] + gk * gk;
                    p1[i][k] -= clr * (gk / (std::sqrt(s1[i][k]) + eps));
                }
            }
            Ops::step_many(static_cast<int64_t>(list.size()), list.data(), backend::AdagradRule<T>::make(eps, wd));
        }
        CHECK(p == p1);
        CHECK(s == s1);
    }
}

TEST_CASE("every rule of TAPEGRAD_OPTIM_RULES is accepted by step_many; an empty list does nothing") {
#define TAPEGRAD_TEST_RULE(Name) Ops::step_many<float>(0, nullptr, backend::Name<float>{});
    TAPEGRAD_OPTIM_RULES(TAPEGRAD_TEST_RULE)
#undef TAPEGRAD_TEST_RULE
    CHECK(backend::listed_rule<backend::SgdRule<double>, double>);
    CHECK_FALSE(backend::listed_rule<backend::SgdRule<float>, double>);
}
