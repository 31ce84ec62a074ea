// Fits y = 2x + 1 on the GPU with tapegrad's CUDA backend from an installed package, clipping the gradient
// and stepping with RMSprop on the device, then runs a kernel of its own (kernels.cu) on a tensor's memory.
// On a machine without a usable GPU it prints the DeviceError that tapegrad throws and exits 0.
#include <tapegrad/backend/cuda.hpp>
#include <tapegrad/tapegrad.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

cudaError_t sigmoid_in_place(int64_t n, float* x, cudaStream_t stream);

int main() {
    using tapegrad::Cuda;
    using tapegrad::TensorF;
    using TensorG = tapegrad::Tensor<float, Cuda>;
    if (!tapegrad::cuda::available()) {
        try {
            (void)tapegrad::to<Cuda>(TensorF::zeros({1}));
        } catch (const tapegrad::DeviceError& e) {
            std::printf("no GPU here, as tapegrad reports: %s\n", e.what());
            return 0;
        }
        std::printf("FAILED: no GPU, yet no DeviceError\n");
        return 1;
    }
    const TensorG x = tapegrad::to<Cuda>(TensorF::from({4, 1}, {0.f, 1.f, 2.f, 3.f}));
    const TensorG y = tapegrad::to<Cuda>(TensorF::from({4, 1}, {1.f, 3.f, 5.f, 7.f}));
    TensorG w = TensorG::zeros({1, 1}).requires_grad_();
    TensorG b = TensorG::zeros({1}).requires_grad_();
    tapegrad::optim::RMSprop<float, Cuda> opt({w, b}, {.lr = 0.02});
    for (int step = 0; step < 2000; ++step) {
        opt.zero_grad();
        tapegrad::mean(tapegrad::pow(tapegrad::matmul(x, w) + b - y, 2.0)).backward();
        tapegrad::optim::clip_grad_norm_(std::vector<TensorG>{w, b}, 10.0);
        opt.step();
    }
    const float wv = w.item(), bv = b.item();
    TensorG s = TensorG::zeros({3});
    if (sigmoid_in_place(s.numel(), s.data_ptr(), tapegrad::cuda::stream()) != cudaSuccess) {
        std::printf("FAILED: the consumer's kernel did not launch\n");
        return 1;
    }
    const float s0 = s.to_vector()[0];  // sigmoid(0) = 0.5
    const bool ok = std::abs(wv - 2.f) < 2e-2f && std::abs(bv - 1.f) < 5e-2f && s0 == 0.5f;
    std::printf("result: w=%.4f b=%.4f sigmoid(0)=%.2f %s\n", static_cast<double>(wv), static_cast<double>(bv),
                static_cast<double>(s0), ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
