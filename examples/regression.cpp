// Lesson 4: regression -- a network that predicts a number -- and how it differs from classification.
//
//   build/examples/regression
//   build/examples/regression --epochs 3000 --seed 7 --svg fit.svg
//
// Regression vs classification. Both fit a function from inputs to outputs; they differ in what the output
// is, and so in the last layer and the loss:
//  - Regression predicts a continuous quantity (a price, a temperature, y = f(x) here). The last layer is
//    linear -- no activation, because the target can be any real number -- and the loss is the mean squared
//    error, mean((prediction - y)^2). Minimising it makes the prediction the conditional mean of y given x
//    (the maximum-likelihood fit if the noise is Gaussian). Quality is an error in the target's own units:
//    the test MSE, or its square root.
//  - Classification predicts one of C classes (a digit, spam or not). The last layer gives one score per
//    class, turned into probabilities by a softmax (or a sigmoid for two classes, as in examples/xor.cpp),
//    and the loss is the cross-entropy, -log(probability of the true class). Quality is accuracy. Squared
//    error would be a poor choice there: through a saturated sigmoid or softmax its gradient vanishes
//    exactly when the answer is confidently wrong, while cross-entropy's does not.
//
// The data: y = sin(2x) + 0.3 x + noise, noise ~ N(0, 0.1^2), x uniform on [-3, 3]. The noise puts a floor
// under any model's test MSE: 0.1^2 = 0.01. A held-out test set, drawn separately and never trained on,
// shows whether the network learned the function or memorised the training points. Two baselines frame the
// number: always predicting the mean of y, and the best straight line (least squares), which cannot bend.
// The network -- 1 -> 32 tanh -> 32 tanh -> 1 linear -- is trained by Adam on the whole training set at once.

#include <tapegrad/nn/activation.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/loss.hpp>
#include <tapegrad/optim/optim.hpp>
#include <tapegrad/tapegrad.hpp>
#include <tapegrad/util/svg_plot.hpp>

#include "common/cli.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace tg = tapegrad;

namespace {

constexpr double noise_std = 0.1;

/// The function to learn, without the noise.
double truth(double x) { return std::sin(2.0 * x) + 0.3 * x; }

struct Data {
    tg::TensorF x, y;  // [n, 1] each
};

/// n points with x uniform on [-3, 3] and y = truth(x) + N(0, noise_std^2), drawn from `gen`.
Data make_data(int64_t n, tg::Generator& gen) {
    Data d{tg::TensorF::empty({n, 1}), tg::TensorF::empty({n, 1})};
    for (int64_t i = 0; i < n; ++i) {
        const double x = -3.0 + 6.0 * gen.uniform01<double>();
        d.x(i, 0) = static_cast<float>(x);
        d.y(i, 0) = static_cast<float>(truth(x) + noise_std * gen.normal());
    }
    return d;
}

/// Mean squared error of `net` on `d`, without recording.
double mse_of(tg::nn::Module<float>& net, const Data& d) {
    tg::NoGradGuard no_grad;
    return tg::nn::mse_loss(net(d.x), d.y).item();
}

/// Test MSE of the two baselines fitted on `train`: the mean of y, and the least-squares line a + b x.
struct Baselines {
    double mean, line;
};
Baselines baselines(const Data& train, const Data& test) {
    const auto n = static_cast<double>(train.x.numel());
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int64_t i = 0; i < train.x.numel(); ++i) {
        const double x = train.x(i, 0), y = train.y(i, 0);
        sx += x, sy += y, sxx += x * x, sxy += x * y;
    }
    const double b = (n * sxy - sx * sy) / (n * sxx - sx * sx), a = (sy - b * sx) / n, mean = sy / n;
    Baselines r{0, 0};
    for (int64_t i = 0; i < test.x.numel(); ++i) {
        const double x = test.x(i, 0), y = test.y(i, 0);
        r.mean += (y - mean) * (y - mean);
        r.line += (y - a - b * x) * (y - a - b * x);
    }
    r.mean /= static_cast<double>(test.x.numel());
    r.line /= static_cast<double>(test.x.numel());
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    int epochs = 1000;
    int64_t n_train = 200, n_test = 200;
    double lr = 0.01;
    uint64_t seed = 1;
    double max_test_mse = 0.03;
    std::string svg_path;
    CLI::App app{"Fit y = sin(2x) + 0.3x + noise with a small MLP (regression with MSE and Adam)"};
    examples::number(app, "--epochs", epochs, "Adam steps, each on the whole training set", 1, 1000000);
    examples::number(app, "--lr", lr, "Adam learning rate", 1e-6, 10.0);
    examples::number(app, "--train", n_train, "Training points", int64_t{2}, int64_t{1000000});
    examples::number(app, "--test", n_test, "Held-out test points", int64_t{1}, int64_t{1000000});
    examples::number(app, "--seed", seed, "Seed of the data and the initial weights", uint64_t{0}, UINT64_MAX);
    examples::number(app, "--max-test-mse", max_test_mse, "Exit with status 1 if the test MSE ends above this", 0.0, 1e9);
    app.add_option("--svg", svg_path, "Write a plot of the data, the true function and the fit");
    if (const int rc = examples::parse(app, argc, argv); rc >= 0) return rc;

    try {
        const auto start = std::chrono::steady_clock::now();
        tg::Generator gen(seed);
        const Data train = make_data(n_train, gen);
        const Data test = make_data(n_test, gen);  // drawn after, and apart from, the training set

        // The network: two tanh hidden layers and a LINEAR output, since y can be any real number.
        tg::nn::Sequential<float> net;
        net.push_back(tg::nn::Linear<float>(1, 32, gen));
        net.push_back(tg::nn::Tanh<float>());
        net.push_back(tg::nn::Linear<float>(32, 32, gen));
        net.push_back(tg::nn::Tanh<float>());
        net.push_back(tg::nn::Linear<float>(32, 1, gen));  // no activation: the prediction itself
        tg::optim::Adam<float> opt(net.parameters(), {.lr = lr});

        std::printf("%lld training and %lld test points; %lld parameters\n", static_cast<long long>(n_train),
                    static_cast<long long>(n_test), static_cast<long long>(net.num_parameters()));
        for (int epoch = 1; epoch <= epochs; ++epoch) {
            opt.zero_grad();
            const auto prediction = net(train.x);                     // [n, 1]
            const auto loss = tg::nn::mse_loss(prediction, train.y);  // mean((prediction - y)^2)
            loss.backward();
            opt.step();

            if (epoch == 1 || epoch % (epochs < 10 ? 1 : epochs / 10) == 0 || epoch == epochs)
                std::printf("epoch %5d  train_mse %.5f  test_mse %.5f\n", epoch, static_cast<double>(loss.item()),
                            mse_of(net, test));
        }

        const double train_mse = mse_of(net, train), test_mse = mse_of(net, test);
        const Baselines base = baselines(train, test);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("\ntest MSE:  predict the mean %.4f   best straight line %.4f   MLP %.4f   (noise floor %.4f)\n",
                    base.mean, base.line, test_mse, noise_std * noise_std);
        std::printf("train MSE %.4f; trained in %.2f s\n", train_mse, secs);

        if (!svg_path.empty()) {
            std::vector<double> grid, fx, fit;
            {
                tg::NoGradGuard no_grad;
                const auto xs = tg::TensorF::arange(-3.0f, 3.0001f, 0.02f);
                const auto ys = net(tg::reshape(xs, {-1, 1}));
                for (int64_t i = 0; i < xs.numel(); ++i) {
                    grid.push_back(xs(i));
                    fx.push_back(truth(xs(i)));
                    fit.push_back(ys(i, 0));
                }
            }
            tg::util::SvgPlot plot({.title = "Regression: y = sin(2x) + 0.3x + noise", .x_label = "x", .y_label = "y"});
            plot.add_scatter("training data", train.x.to_vector(), train.y.to_vector());
            plot.add_series("true function", grid, fx, {.dashed = true});
            plot.add_series("MLP fit", grid, fit);
            plot.save(svg_path);
            std::printf("wrote %s\n", svg_path.c_str());
        }

        std::printf("result: test_mse=%.4f\n", test_mse);
        if (!(test_mse <= max_test_mse)) {
            std::fprintf(stderr, "regression: test MSE %.4f is above the bound %.4f\n", test_mse, max_test_mse);
            return 1;
        }
        return 0;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "regression: %s\n", e.what());
        return 1;
    }
}
