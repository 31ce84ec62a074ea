#pragma once
/// \file
/// Moving tensors between devices: `to<Cuda>(x)` uploads, `to<Cpu>(y)` downloads. Recorded like any op, so
/// a loss computed on the GPU backpropagates into CPU leaves and back: the gradient of a copy is the
/// incoming gradient, copied back to the source's device.
///
/// Only the CPU backend is always present; `to<Cuda>` needs backend/cuda.hpp (and the tapegrad::cuda
/// library). Copies go through the host: every device's backend has `upload` (host to device) and
/// `download` (device to host) primitives.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/core/tensor.hpp>

#include <concepts>

namespace tapegrad {

namespace detail {

/// A plain copy of x's values onto device To, not recorded (any element type: integer tensors move too).
template <Device To, Element T, Device From>
Tensor<T, To> copy_to_device(const Tensor<T, From>& x) {
    Tensor<T, To> y = Tensor<T, To>::empty(x.shape());
    if constexpr (std::same_as<From, Cpu>) {
        backend::Ops<To>::upload(x.numel(), x.data_ptr(), y.data_ptr());
    } else if constexpr (std::same_as<To, Cpu>) {
        backend::Ops<From>::download(x.numel(), x.data_ptr(), y.data_ptr());
    } else {  // between two accelerators: through the host
        const Tensor<T, Cpu> h = copy_to_device<Cpu>(x);
        backend::Ops<To>::upload(h.numel(), h.data_ptr(), y.data_ptr());
    }
    return y;
}

}  // namespace detail

/// x's values on device `To` (x itself when it already lives there). Recorded: backward copies the
/// gradient back to x's device and adds it into x's gradient.
template <Device To, Scalar T, Device From>
Tensor<T, To> to(const Tensor<T, From>& x) {
    if constexpr (std::same_as<To, From>) {
        return x;
    } else {
        Tensor<T, To> y = detail::copy_to_device<To>(x);
        if (detail::needs_grad(x)) {
            detail::record(y, "to", {}, [x](const Tensor<T, To>& dy) {
                detail::accumulate("to", x, detail::copy_to_device<From>(dy));
            });
            y.impl()->grad_fn->add_edge(x.impl());
        }
        return y;
    }
}

}  // namespace tapegrad
