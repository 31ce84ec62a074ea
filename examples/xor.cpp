// Lesson 2: backpropagation learns XOR, the function no single perceptron can compute.
//
//   build/examples/xor
//   build/examples/xor --epochs 5000 --lr 0.1 --seed 7
//
// Lesson 1 (examples/logic_gates.cpp) built XOR from two layers of perceptrons with hand-set weights; the
// perceptron rule could not learn the hidden layer, because a step function has no useful slope: nudging a
// hidden weight changes nothing until a unit flips. Replace the step by smooth functions and the whole
// network becomes differentiable: the chain rule says how much each weight moves the loss, so gradient
// descent can train every layer at once. That is backpropagation.
//
// The network is 2 inputs -> 4 tanh hidden units -> 1 sigmoid output, p = P(XOR = 1 | x), trained with
// binary cross-entropy, -[t log p + (1 - t) log(1 - p)], on the four rows of the truth table as one batch.
// The loop below is the loop of every lesson that follows: zero_grad, forward, loss, backward, step.
//
// With the defaults (plain gradient descent, lr 0.5, 2000 steps) 299 of the seeds 1..300 reach 4/4 with a
// loss near 0.002, in a few milliseconds. The odd one out, --seed 231, is stuck for good in a local minimum
// where two rows sit at p = 0.5 (loss ln(2)/2 = 0.347): unlike the perceptron's problems, a network's
// loss surface is not convex, and where gradient descent ends depends on where it starts.

#include "common/cli.hpp"

#include <tapegrad/nn/activation.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/loss.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/optim/sgd.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace tg = tapegrad;

int main(int argc, char** argv) {
    int epochs = 2000;
    double lr = 0.5;
    double momentum = 0.0;
    uint64_t seed = 1;
    CLI::App app{"Train a 2-4-1 network on XOR with backpropagation"};
    examples::number(app, "--epochs", epochs, "Gradient steps (each one sees all four rows)", 1, 10000000);
    examples::number(app, "--lr", lr, "Learning rate of SGD", 1e-6, 100.0);
    examples::number(app, "--momentum", momentum, "SGD momentum (0: plain gradient descent)", 0.0, 0.999);
    examples::number(app, "--seed", seed, "Seed of the initial weights", uint64_t{0}, UINT64_MAX);
    if (const int rc = examples::parse(app, argc, argv); rc >= 0) return rc;

    try {
        const auto start = std::chrono::steady_clock::now();

        // The truth table: x [4, 2], targets t [4, 1].
        const auto x = tg::TensorF::from({4, 2}, {0, 0,  //
                                                  0, 1,  //
                                                  1, 0,  //
                                                  1, 1});
        const auto t = tg::TensorF::from({4, 1}, {0, 1, 1, 0});

        // The network. Its output is the logit z (the net input of the output unit); the output unit's sigmoid,
        // p = sigmoid(z), sits inside the loss: binary_cross_entropy_with_logits(z, t) is bce(sigmoid(z), t)
        // computed in one numerically safe step (log(sigmoid(z)) never becomes log(0)).
        tg::Generator gen(seed);
        tg::nn::Sequential<float> net;
        net.push_back(tg::nn::Linear<float>(2, 4, gen));  // hidden layer: 4 units, each w.x + b ...
        net.push_back(tg::nn::Tanh<float>());             // ... squashed by tanh
        net.push_back(tg::nn::Linear<float>(4, 1, gen));  // output unit: the logit z
        tg::optim::SGD<float> opt(net.parameters(), {.lr = lr, .momentum = momentum});

        for (int epoch = 1; epoch <= epochs; ++epoch) {
            opt.zero_grad();                                                   // forget the last step's gradients
            const auto z = net(x);                                             // forward: logits [4, 1]
            const auto loss = tg::nn::binary_cross_entropy_with_logits(z, t);  // how wrong, as one number
            loss.backward();                                                   // d loss / d every weight
            opt.step();                                                        // a step downhill

            if (epoch == 1 || epoch % (epochs < 10 ? 1 : epochs / 10) == 0 || epoch == epochs)
                std::printf("epoch %5d  loss %.5f\n", epoch, static_cast<double>(loss.item()));
        }

        // The trained network's answers: p = sigmoid(z), rounded at 0.5.
        tg::NoGradGuard no_grad;
        const auto p = tg::sigmoid(net(x));
        int correct = 0;
        std::printf("\n x1 x2 | XOR | p(XOR = 1)\n");
        for (int64_t i = 0; i < 4; ++i) {
            const float pi = p(i, 0), ti = t(i, 0);
            correct += (pi > 0.5f) == (ti > 0.5f) ? 1 : 0;
            std::printf("  %g  %g |  %g  | %.4f%s\n", static_cast<double>(x(i, 0)), static_cast<double>(x(i, 1)),
                        static_cast<double>(ti), static_cast<double>(pi),
                        (pi > 0.5f) == (ti > 0.5f) ? "" : "  <- wrong");
        }
        // The loss after the last step (the loop printed the loss before it).
        const float final_loss = tg::nn::binary_cross_entropy_with_logits(net(x), t).item();
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("(%d epochs in %.3f s)\n", epochs, secs);
        std::printf("result: correct=%d/4 loss=%.4f\n", correct, static_cast<double>(final_loss));
        return correct == 4 ? 0 : 1;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "xor: %s\n", e.what());
        return 1;
    }
}
