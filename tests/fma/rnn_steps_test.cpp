// The recurrent layers' threaded time loop (CpuRnn::rnn_steps_forward / rnn_steps_backward), which runs only
// where floats use the packed panels of cpu/small_gemm.hpp: a build with FMA and OpenMP. This binary is
// compiled with -mavx2 -mfma -fopenmp (tests/CMakeLists.txt) so that CI, whose main suite is built for
// plain x86-64, runs that path too. Checked for every mode, both directions, with and without lengths:
//  - the loop ran (panel_layout<float>() holds in this build, and H is a multiple of the panel width);
//  - one thread and two give the same bits (each thread owns whole units and the sums keep their order);
//  - outputs and every gradient match the same layer in double (which runs the per-step loop) to float
//    accuracy, also for an H that is not a multiple of the panel width (that falls back to the step loop).
// A steady-state LSTM training step on two threads allocates nothing (tests/tapegrad/nn/training_step_test.cpp
// checks the step loop). Also this build's width of the panel kernel and of Adam's vectorised step: the
// kernel's tests (tapegrad/backend/small_gemm_test.cpp, included at the end: one translation unit, one parse
// of the umbrella header) and an Adam case here against the scalar rule.

#include <tapegrad/tapegrad.hpp>

#include "../support/alloc_counting.hpp"
#include "../support/char_lm_step.hpp"

#include <doctest/doctest.h>

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using namespace tapegrad;

struct LayerRun {
    std::vector<std::vector<double>> values;  // y, then dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0
};

template <class T>
Tensor<T> tensor_of(const Shape& shape, const std::vector<double>& v) {
    std::vector<T> c(v.begin(), v.end());
    return Tensor<T>::from(shape, std::span<const T>(c.data(), c.size())).requires_grad_();
}

template <class T>
std::vector<double> doubles(const Tensor<T>& t) {
    const std::vector<T> v = t.to_vector();
    return {v.begin(), v.end()};
}

/// One layer forward and backward in precision T, from the same double inputs; the loss weights every output
/// element differently so that each gradient is non-trivial.
template <class T>
LayerRun run_layer(RnnMode mode, int64_t steps, int64_t batch, int64_t in, int64_t H, bool reverse,
                   const std::vector<int64_t>& lengths, uint64_t seed) {
    const int64_t G = rnn_gate_count(mode), S = mode == RnnMode::lstm ? 2 : 1;
    Generator gen(seed);
    const auto values = [&](int64_t n, double scale) {
        std::vector<double> v(static_cast<size_t>(n));
        for (double& x : v) x = scale * (2.0 * gen.uniform01<double>() - 1.0);
        return v;
    };
    const Tensor<T> x = tensor_of<T>({steps, batch, in}, values(steps * batch * in, 1.0));
    const Tensor<T> w_ih = tensor_of<T>({G * H, in}, values(G * H * in, 0.3));
    const Tensor<T> w_hh = tensor_of<T>({G * H, H}, values(G * H * H, 1.5 / std::sqrt(double(H))));
    const Tensor<T> b_ih = tensor_of<T>({G * H}, values(G * H, 0.2));
    const Tensor<T> b_hh = tensor_of<T>({G * H}, values(G * H, 0.2));
    const Tensor<T> h0 = tensor_of<T>({batch, H}, values(batch * H, 0.5));
    const Tensor<T> c0 = mode == RnnMode::lstm ? tensor_of<T>({batch, H}, values(batch * H, 0.5)) : Tensor<T>{};
    const Tensor<T> weights = tensor_of<T>({steps + S, batch, H}, values((steps + S) * batch * H, 1.0)).detach();
    const SequenceLengths<Cpu> lens = lengths.empty() ? SequenceLengths<Cpu>{} : SequenceLengths<Cpu>(lengths);
    const Tensor<T> y = rnn_layer(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lens, reverse);
    sum(y * weights).backward();
    LayerRun r;
    r.values = {doubles(y), doubles(x.grad()), doubles(w_ih.grad()), doubles(w_hh.grad()),
                doubles(b_ih.grad()), doubles(b_hh.grad()), doubles(h0.grad())};
    if (c0.defined()) r.values.push_back(doubles(c0.grad()));
    return r;
}

const char* const kNames[] = {"y", "dx", "dw_ih", "dw_hh", "db_ih", "db_hh", "dh0", "dc0"};

/// Every value of `got` (float) within rel * (1 + |want|) of the double run.
void check_close(const LayerRun& got, const LayerRun& want, double rel) {
    REQUIRE(got.values.size() == want.values.size());
    for (size_t k = 0; k < got.values.size(); ++k) {
        CAPTURE(kNames[k]);
        REQUIRE(got.values[k].size() == want.values[k].size());
        double worst = 0;
        for (size_t i = 0; i < got.values[k].size(); ++i)
            worst = std::max(worst, std::abs(got.values[k][i] - want.values[k][i]) / (1.0 + std::abs(want.values[k][i])));
        CHECK(worst < rel);
    }
}

}  // namespace

TEST_CASE("rnn_layer's threaded time loop: same bits on 1 and 2 threads, and the double layer's values") {
    REQUIRE(backend::cpu::panel_layout<float>());  // else this binary would not test the loop at all
    REQUIRE(40 % backend::cpu::panel_width() != 0);  // the fallback case below really falls back
    const int64_t nr = backend::cpu::panel_width();
    struct Case {
        RnnMode mode;
        int64_t H;
    };
    // 5 panels split 2 + 3 between the threads; 40 is not a multiple of the panel width on any target (the
    // step loop runs); batch 17 leaves a partial tile of rows. The sizes are large enough for the loop to
    // take two threads (checked below, as the loop decides it); smaller layers stay on one.
    for (const Case c : {Case{RnnMode::lstm, 5 * nr}, Case{RnnMode::gru, 5 * nr}, Case{RnnMode::rnn_tanh, 8 * nr},
                         Case{RnnMode::rnn_relu, 8 * nr}, Case{RnnMode::lstm, 40}, Case{RnnMode::gru, 40}})
        for (const bool reverse : {false, true})
            for (const bool with_lengths : {false, true}) {
                CAPTURE(rnn_mode_name(c.mode));
                CAPTURE(c.H);
                CAPTURE(reverse);
                CAPTURE(with_lengths);
                const int64_t steps = 6, batch = 17, in = 5;
                std::vector<int64_t> lengths;
                if (with_lengths)
                    for (int64_t b = 0; b < batch; ++b) lengths.push_back((b * 5) % (steps + 1));  // 0 .. T
                set_num_threads(1);
                const LayerRun one = run_layer<float>(c.mode, steps, batch, in, c.H, reverse, lengths, 11);
                set_num_threads(2);
                const int64_t GH = rnn_gate_count(c.mode) * c.H;
                if (c.H % nr == 0 && omp_get_max_threads() >= 2)
                    CHECK(tapegrad::detail::product_threads(batch, GH, c.H, backend::cpu::panel_work_per_thread()) == 2);
                const LayerRun two = run_layer<float>(c.mode, steps, batch, in, c.H, reverse, lengths, 11);
                set_num_threads(0);
                REQUIRE(one.values.size() == two.values.size());
                for (size_t k = 0; k < one.values.size(); ++k) {
                    CAPTURE(kNames[k]);
                    CHECK(one.values[k] == two.values[k]);
                }
                const LayerRun ref = run_layer<double>(c.mode, steps, batch, in, c.H, reverse, lengths, 11);
                check_close(two, ref, 2e-5);
            }
}

TEST_CASE("Adam's vectorised step computes its scalar rule, element by element") {
    // L2 decay, AdamW's decoupled decay and amsgrad each pick their own loop; a tensor of 300 elements covers
    // a whole chunk, a partial one and the scalar tail of the vector square root.
    const auto check = [](auto& opt, TensorF& p, double wd, bool decoupled, bool amsgrad) {
        const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        std::vector<float> ref = p.to_vector(), m(300, 0.0f), v(300, 0.0f), vmax(300, 0.0f);
        const auto rule = backend::AdamRule<float>::make(float(lr), float(b1), float(b2), float(eps), float(wd),
                                                         decoupled, amsgrad);
        for (int step = 1; step <= 3; ++step) {
            opt.zero_grad();
            sum(p * p * p).backward();
            const std::vector<float> g = p.grad().to_vector();
            const auto bc1 = static_cast<float>(1 - std::pow(b1, double(step)));
            const auto bc2 = static_cast<float>(1 - std::pow(b2, double(step)));
            const backend::StepParam<float> q{.n = 300, .p = ref.data(), .grad = g.data(), .s0 = m.data(),
                                              .s1 = v.data(), .s2 = vmax.data(), .a = float(lr) / bc1,
                                              .b = std::sqrt(bc2)};
            for (int64_t i = 0; i < 300; ++i) rule(q, i);
            opt.step();
            CAPTURE(step);
            const std::vector<float> got = p.to_vector();
            // the same arithmetic; a compiler that contracts a * b + c into fused multiply-adds (g++'s default
            // here) may contract the vector loop and the scalar rule differently, so: within a few float ulp
            int differ = 0;
            for (size_t i = 0; i < got.size(); ++i) differ += !(std::abs(got[i] - ref[i]) <= 1e-6f * (1.0f + std::abs(ref[i])));
            CHECK(differ == 0);
        }
    };
    for (const double wd : {0.0, 0.1})
        for (const bool amsgrad : {false, true}) {
            CAPTURE(wd);
            CAPTURE(amsgrad);
            Generator gen(5);
            TensorF p = TensorF::uniform({300}, -1.0f, 1.0f, gen).requires_grad_();
            optim::Adam<float> adam({p}, {.lr = 0.01, .weight_decay = wd, .amsgrad = amsgrad});
            check(adam, p, wd, false, amsgrad);
            TensorF q = TensorF::uniform({300}, -1.0f, 1.0f, gen).requires_grad_();
            optim::AdamW<float> adamw({q}, {.lr = 0.01, .weight_decay = wd, .amsgrad = amsgrad});
            check(adamw, q, wd, true, amsgrad);
        }
}

TEST_CASE("an LSTM training step through the threaded time loop allocates nothing") {
    using testing::AllocationCounter;
    if (!AllocationCounter::works()) {
        MESSAGE(AllocationCounter::why_not());
        return;
    }
    Generator gen(5);
    testing::CharLmStep lm(16, 8, 8, 6 * backend::cpu::panel_width(), 11, gen);  // B, T, E, H (in panels), V
    const auto step = [&] { lm.step(); };
    set_num_threads(2);
    for (int i = 0; i < 3; ++i) step();
    AllocationCounter count;
    for (int i = 0; i < 3; ++i) step();
    CHECK(count.stop() == 0);
    CHECK(std::isfinite(lm.last_loss));
    set_num_threads(0);
}

// The panel kernel's tests again, at this build's width (8 floats, 6-row tiles).
#include "../tapegrad/backend/small_gemm_test.cpp"
