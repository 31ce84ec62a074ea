#pragma once
/// \file
/// Op tests that run on every device (ggml's test-backend-ops idea). A table of cases is written once, for any
/// element type T and device D (tests/support/op_tables.hpp); `check_table<Table, D>` runs it:
///  - on the CPU: each case is gradchecked in double on kCasesPerOp random draws;
///  - on another device: each case is gradchecked in double through the device (x -> to<Cpu>(f(to<D>(x))), so
///    the device's forward and backward are what the finite difference checks), and its forward and every
///    input's gradient in float are compared with the CPU's: |dev - cpu| <= 1e-6 k + 1e-5 |cpu|, k being the
///    longest sum the op forms (sums of k terms round differently in a different order).
/// A new device inherits every case by one instantiation; a new op is one row.

#include "../tapegrad/test_support.hpp"

#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace tapegrad::testing {

/// One row of a device-generic table: the op's name, how to draw its inputs (CPU tensors in double; the
/// runner converts them), the op for element type T on device D, and k (see the file comment). `gradcheck`
/// is false for a case too large for a finite difference (it is compared in float only).
template <class T, class D>
struct DeviceCase {
    std::string name;
    std::function<Inputs(Generator&)> make_inputs;
    std::function<Tensor<T, D>(const std::vector<Tensor<T, D>>&)> f;
    double k = 1;
    bool gradcheck = true;
};
template <class T, class D>
using DeviceTable = std::vector<DeviceCase<T, D>>;

/// |got - cpu| <= abs_tol + 1e-5 |cpu| element by element (NaN matching NaN), naming the first offender.
template <class T>
void check_close(const std::string& what, const std::vector<T>& cpu, const std::vector<T>& got, double abs_tol = 1e-6) {
    REQUIRE_MESSAGE(cpu.size() == got.size(), what << ": sizes differ (" << cpu.size() << " vs " << got.size() << ")");
    for (size_t i = 0; i < cpu.size(); ++i) {
        const double c = static_cast<double>(cpu[i]), g = static_cast<double>(got[i]);
        const bool ok = (std::isnan(c) && std::isnan(g)) || (c == g) || std::abs(g - c) <= abs_tol + 1e-5 * std::abs(c);
        if (!ok) {
            FAIL_CHECK(what << ": element " << i << " is " << g << " on the device, " << c << " on the CPU");
            return;
        }
    }
}

/// `x` (a CPU double tensor) in float, as a fresh leaf.
inline Tensor<float, Cpu> to_float(const TensorD& x) {
    const std::vector<double> v = x.to_vector();
    return Tensor<float, Cpu>::from(x.shape(), std::vector<float>(v.begin(), v.end()));
}

/// Runs `fc` on the CPU and `fd` on device D, in float, on the same inputs; compares the outputs, then
/// backpropagates sum(y * r) for one random r on both and compares every input's gradient.
template <class D>
void compare_with_cpu(const std::string& name, const DeviceCase<float, Cpu>& cc, const DeviceCase<float, D>& dc,
                      const Inputs& xs) {
    std::vector<Tensor<float, Cpu>> xc;
    std::vector<Tensor<float, D>> xd;
    for (const TensorD& x : xs) {
        xc.push_back(to_float(x).requires_grad_());
        xd.push_back(to<D>(to_float(x)).requires_grad_());
    }
    const Tensor<float, Cpu> yc = cc.f(xc);
    const Tensor<float, D> yd = dc.f(xd);
    REQUIRE_MESSAGE(yc.shape() == yd.shape(), name << ": output shape " << yd.shape() << " on " << D::name << ", "
                                                   << yc.shape() << " on the CPU");
    const double tol = 1e-6 * cc.k;
    check_close(name + " forward", yc.to_vector(), yd.to_vector(), tol);
    if (!yc.requires_grad()) return;
    Generator gen(7);
    const auto r = Tensor<float, Cpu>::uniform(yc.shape(), -1.f, 1.f, gen);
    sum(yc * r).backward();
    sum(yd * to<D>(r)).backward();
    for (size_t i = 0; i < xc.size(); ++i) {
        REQUIRE_MESSAGE(xc[i].grad().defined() == xd[i].grad().defined(),
                        name << ": input " << i << " has a gradient on one device only");
        if (xc[i].grad().defined())
            check_close(name + " gradient of input " + std::to_string(i), xc[i].grad().to_vector(),
                        xd[i].grad().to_vector(), tol * 4);
    }
}

/// Runs every case of `Table` (a type with `template <class T, class D> static DeviceTable<T, D> cases()`) on
/// device D, `draws` random draws per case, each case from its own seeded stream. Returns the draws checked.
template <class Table, class D>
int check_table(uint64_t seed, int draws = kCasesPerOp) {
    const DeviceTable<double, D> dcases = Table::template cases<double, D>();
    int checked = 0;
    for (size_t k = 0; k < dcases.size(); ++k) {
        const DeviceCase<double, D>& c = dcases[k];
        Generator g(seed + 7919 * k);
        for (int n = 0; n < draws; ++n) {
            const Inputs xs = c.make_inputs(g);
            if constexpr (std::same_as<D, Cpu>) {
                if (c.gradcheck) check_gradient(c.name, c.f, xs);
            } else {
                if (c.gradcheck) {
                    const auto f = c.f;
                    check_gradient(c.name + " on " + D::name,
                                   [f](const Inputs& in) {
                                       std::vector<Tensor<double, D>> on_device;
                                       for (const TensorD& x : in) on_device.push_back(to<D>(x));
                                       return to<Cpu>(f(on_device));
                                   },
                                   xs);
                }
                static const DeviceTable<float, Cpu> cpu = Table::template cases<float, Cpu>();
                static const DeviceTable<float, D> dev = Table::template cases<float, D>();
                compare_with_cpu<D>(c.name, cpu[k], dev[k], xs);
            }
            ++checked;
        }
    }
    return checked;
}

// ---- input makers for rows with fixed shapes ---------------------------------------------------------------

/// Tensors of the given shapes, values from `v` (the same for all).
inline std::function<Inputs(Generator&)> shaped(std::vector<Shape> shapes, Values v = any_value) {
    return [shapes = std::move(shapes), v](Generator& g) {
        Inputs out;
        for (const Shape& s : shapes) out.push_back(random_tensor(s, g, v));
        return out;
    };
}
/// One tensor of the given shape whose values are pairwise at least 0.09 apart (for max and max pooling).
inline std::function<Inputs(Generator&)> distinct(Shape shape) {
    return [shape = std::move(shape)](Generator& g) { return Inputs{distinct_tensor(shape, g)}; };
}

}  // namespace tapegrad::testing
