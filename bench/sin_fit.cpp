// The thread trap's workload: a 1-32-32-1 tanh MLP fitting sin(x) on 512 points, 2,000 Adam steps (full
// batch), timed end to end. Every matrix product in it is small (at most 512x32x32), so threads cannot pay
// for themselves: the library's default must run it as fast as one thread does, even while another process
// keeps a core busy. bench/thread_trap.sh runs it that way against --threads 1.
//
//   build/bench/sin_fit                 the library's default thread policy
//   build/bench/sin_fit --threads 1     tapegrad::set_num_threads(1) first
//
// Output: tapegrad::blas_info()'s line after `# `, then `sin_fit threads=T seconds=S loss=L`, where T is
// get_num_threads() (the most threads a product may use; small ones use one).

#include <tapegrad/tapegrad.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tg = tapegrad;

int main(int argc, char** argv) {
    int threads = 0;  // 0: the library's default
    int steps = 2000;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = std::atoi(argv[++i]);
        } else if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
            steps = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: sin_fit [--threads N] [--steps S]\n");
            return 2;
        }
    }
    if (threads > 0) tg::set_num_threads(threads);
    std::printf("# %s\n", tg::blas_info().c_str());

    constexpr int64_t n = 512;
    auto x = tg::TensorF::empty({n, 1}), y = tg::TensorF::empty({n, 1});
    for (int64_t i = 0; i < n; ++i) {
        const float xi = -3.14159265f + 6.2831853f * static_cast<float>(i) / static_cast<float>(n - 1);
        x(i, 0) = xi;
        y(i, 0) = std::sin(xi);
    }
    tg::Generator gen(1);
    tg::nn::Sequential<float> net;
    net.push_back(tg::nn::Linear<float>(1, 32, gen));
    net.push_back(tg::nn::Tanh<float>());
    net.push_back(tg::nn::Linear<float>(32, 32, gen));
    net.push_back(tg::nn::Tanh<float>());
    net.push_back(tg::nn::Linear<float>(32, 1, gen));
    tg::optim::Adam<float> opt(net.parameters(), {.lr = 0.01});

    const auto start = std::chrono::steady_clock::now();
    float last = 0;
    for (int step = 0; step < steps; ++step) {
        opt.zero_grad();
        const auto loss = tg::nn::mse_loss(net(x), y);
        loss.backward();
        opt.step();
        last = loss.item();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("sin_fit threads=%d seconds=%.4f loss=%.6f\n", tg::get_num_threads(), secs,
                static_cast<double>(last));
    return 0;
}
