// Fits y = 2x + 1 with one weight and one bias, using only the installed tapegrad headers and Eigen.
#include <tapegrad/tapegrad.hpp>

#include <cmath>
#include <cstdio>

int main() {
    using tapegrad::TensorF;
    const TensorF x = TensorF::from({4, 1}, {0.f, 1.f, 2.f, 3.f});
    const TensorF y = TensorF::from({4, 1}, {1.f, 3.f, 5.f, 7.f});
    TensorF w = TensorF::zeros({1, 1}).requires_grad_();
    TensorF b = TensorF::zeros({1}).requires_grad_();
    for (int step = 0; step < 500; ++step) {
        w.zero_grad();
        b.zero_grad();
        const TensorF loss = tapegrad::mean(tapegrad::pow(tapegrad::matmul(x, w) + b - y, 2.0));
        loss.backward();
        tapegrad::NoGradGuard no_grad;
        w.data()[0] -= 0.05f * w.grad().data()[0];
        b.data()[0] -= 0.05f * b.grad().data()[0];
    }
    const bool ok = std::abs(w.item() - 2.f) < 1e-2f && std::abs(b.item() - 1.f) < 1e-2f;
    std::printf("result: w=%.4f b=%.4f %s\n", static_cast<double>(w.item()), static_cast<double>(b.item()),
                ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
