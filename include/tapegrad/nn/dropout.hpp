#pragma once
/// \file
/// The dropout layer, over `tapegrad::dropout` (ops/dropout.hpp, which tells why dropout regularises).

#include <tapegrad/core/random.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/dropout.hpp>

#include <cstdint>
#include <sstream>
#include <string>

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
