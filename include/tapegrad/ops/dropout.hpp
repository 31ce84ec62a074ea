#pragma once
/// \file
/// Dropout: during training, zero each activation with probability p and scale the survivors by 1/(1-p).
/// This is the function; the layer is nn::Dropout (nn/dropout.hpp).
///
/// Why it regularises: no unit can rely on any particular other unit being present, so the network cannot
/// build fragile co-adaptations that fit the training set's noise; each step trains a different random
/// thinned sub-network, and the full network used at test time behaves like an average of all of them.
/// The 1/(1-p) scaling ("inverted" dropout) keeps every activation's expected value unchanged during
/// training, so evaluation is simply the identity: nothing to rescale at test time.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/common/functors.hpp>
#include <tapegrad/core/random.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/elementwise.hpp>

#include <cstdint>

namespace tapegrad {

/// Inverted dropout, one recorded op. x: any shape -> same shape, on any device.
///  training: y = x * m with m_i = 1/(1-p) with probability 1-p and 0 otherwise;
///  not training (or p == 0): y = x (a view sharing x's data, as PyTorch returns the input itself).
/// The mask is drawn where x lives (backend `dropout_mask`, a counter-based generator: element i is a
/// function of (seed, i) only), from one 64-bit seed taken from `gen` per call, so the CPU and the GPU draw
/// the same mask from generators in the same state. `gen` is not advanced when the call is the identity.
/// Backward: dx = dy * m (the mask is kept by the op).
/// Throws ValueError unless 0 <= p < 1; DeviceError in training during a cuda::Graph capture (the seed is
/// drawn on the host, so every replay would repeat the captured mask).
template <Scalar T, Device D>
Tensor<T, D> dropout(const Tensor<T, D>& x, double p, bool training, Generator& gen) {
    using B = backend::Ops<D>;
    TAPEGRAD_CHECK(p >= 0.0 && p < 1.0, ValueError, "dropout: probability p must be in [0, 1), got ", p);
    if (!training || p == 0.0) return x;
    TAPEGRAD_CHECK(!B::capturing(), DeviceError,
                   "dropout: cannot be captured into a CUDA graph in training mode: its mask's seed is drawn on the "
                   "host at each call, so every replay would repeat the captured mask. Capture the step in eval "
                   "mode, or run it eagerly");
    Tensor<T, D> mask = Tensor<T, D>::empty(x.shape());
    B::dropout_mask(mask.numel(), p, gen.next_u64(), 0, mask.data_ptr());
    const T* m = mask.data_ptr();
    const backend::Strided plan = detail::broadcast_plan(x.shape(), x.shape(), x.shape());
    Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
    B::zip(plan, x.data_ptr(), m, y.data_ptr(), fn::Mul{});
    if (detail::needs_grad(x)) {
        detail::record(
            y, "dropout", {&x},
            [x, mask, plan](const Tensor<T, D>& dy, const detail::TensorImpl<T, D>& out) {
                // dx = dy * m: Mul's da(a, b, y, dy) = dy * b
                B::zip_backward(plan, x.data_ptr(), mask.data_ptr(), out.data(), dy.data_ptr(),
                                detail::grad_buffer(x), static_cast<T*>(nullptr), fn::Mul{});
            },
            [x, mask](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
                if (g.wants(x)) g.add(x, dy * mask);
            });
    }
    return y;
}

}  // namespace tapegrad
