#pragma once
/// \file
/// Dropout: during training, zero each activation with probability p and scale the survivors by 1/(1-p).
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
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/elementwise.hpp>

#include <cstdint>
#include <sstream>
#include <string>

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
        detail::record(y, "dropout", {&x},
                       [x, mask, plan](const Tensor<T, D>& dy, const detail::TensorImpl<T, D>& out) {
                           // dx = dy * m: Mul's da(a, b, y, dy) = dy * b
                           B::zip_backward(plan, x.data_ptr(), mask.data_ptr(), out.data(), dy.data_ptr(),
                                           detail::grad_buffer(x), static_cast<T*>(nullptr), fn::Mul{});
                       });
    }
    return y;
}

}  // namespace tapegrad

namespace tapegrad::nn {

/// Dropout layer. x: any shape -> same shape. In training mode (the default) zeroes each element with
/// probability p and scales the rest by 1/(1-p); in eval mode (`eval()`) returns its input unchanged.
/// The layer owns its random generator, seeded at construction, so a run is reproducible; each training
/// call takes one seed from it and draws the mask from that seed where x lives (see `dropout`), so the
/// layer on the GPU gives exactly the masks of the same layer, equally seeded, on the CPU.
template <Scalar T = float, Device D = Cpu>
class Dropout : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    /// Seeds the layer's generator with `seed`. Throws ValueError unless 0 <= p < 1.
    Dropout(double p, uint64_t seed) : p_(check(p)), gen_(seed) {}
    /// Seeds the layer's generator from one draw of `gen` (which need not outlive the layer).
    Dropout(double p, Generator& gen) : p_(check(p)), gen_(gen.next_u64()) {}
    /// Seeds from this thread's default generator (see manual_seed).
    explicit Dropout(double p = 0.5) : Dropout(p, default_generator()) {}

    /// x: any shape -> same shape
    TensorT forward(const TensorT& x) override { return dropout(x, p_, this->is_training(), gen_); }
    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << "Dropout(p=" << p_ << ')';
        return os.str();
    }
    [[nodiscard]] double p() const noexcept { return p_; }
    /// The layer's generator (to re-seed it).
    [[nodiscard]] Generator& generator() noexcept { return gen_; }

private:
    static double check(double p) {
        TAPEGRAD_CHECK(p >= 0.0 && p < 1.0, ValueError, "Dropout: probability p must be in [0, 1), got ", p);
        return p;
    }
    double p_;
    Generator gen_;
};

}  // namespace tapegrad::nn
