#pragma once
// The hand-written Eigen MLP the benchmarks hold tapegrad against (the "Eigen floor"): what a careful
// programmer writes without a framework, every buffer kept between steps.
//
//   forward:  z_l = a_{l-1} W_l^T + b_l, a_l = ReLU(z_l) between layers, logits z_L
//   backward: g_L = (softmax(z_L) - onehot) / B, dW_l = g_l^T a_{l-1}, db_l = column sums of g_l,
//             g_{l-1} = (g_l W_l) * [a_{l-1} > 0]
//   step:     SGD with momentum, v = mu v + g (v = g on the first step), as torch.optim.SGD
//
// Used by bench/workloads_eigen.cpp (whole epochs) and bench/bench_train_step.cpp (one step).

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace eigen_floor {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVec = Eigen::Matrix<float, 1, Eigen::Dynamic>;

struct Dense {
    Mat w, dw, vw;  // [out, in]: value, gradient, momentum buffer
    RowVec b, db, vb;
};

class Mlp {
public:
    /// Layers of the given sizes (sizes[0] inputs, ..., sizes.back() classes), weights and biases zero: set
    /// them through layer(l).
    explicit Mlp(const std::vector<int64_t>& sizes) : layers_(sizes.size() - 1), acts_(sizes.size()), grads_(2) {
        for (size_t l = 0; l < layers_.size(); ++l) {
            Dense& d = layers_[l];
            d.w.setZero(sizes[l + 1], sizes[l]);
            d.b.setZero(sizes[l + 1]);
            d.dw.setZero(d.w.rows(), d.w.cols());
            d.db.setZero(d.b.size());
        }
    }

    /// Layer l: weight [out, in] and bias [out], with their gradients and momentum buffers.
    [[nodiscard]] Dense& layer(size_t l) { return layers_[l]; }
    [[nodiscard]] size_t num_layers() const noexcept { return layers_.size(); }
    /// The logits of the last forward.
    [[nodiscard]] const Mat& logits() const { return acts_.back(); }

    /// Logits [B, classes] of the batch `x` [B, in]; keeps the activations for backward.
    const Mat& forward(const Eigen::Ref<const Mat>& x) {
        const size_t L = layers_.size();
        for (size_t l = 0; l < L; ++l) {
            const Dense& d = layers_[l];
            Mat& z = acts_[l + 1];
            if (l == 0)
                z.noalias() = x * d.w.transpose();
            else
                z.noalias() = acts_[l] * d.w.transpose();
            z.rowwise() += d.b;
            if (l + 1 < L) z = z.cwiseMax(0.f);
        }
        return acts_[L];
    }

    /// Gradients of the mean softmax cross-entropy of the last forward (whose input was `x`) against `labels`.
    void backward(const Eigen::Ref<const Mat>& x, std::span<const int64_t> labels) {
        const size_t L = layers_.size();
        const auto B = static_cast<Eigen::Index>(labels.size());
        Mat& g = grads_[0];
        g = acts_[L];  // softmax(z_L) - onehot, divided by B
        for (Eigen::Index r = 0; r < B; ++r) {
            auto row = g.row(r);
            const float m = row.maxCoeff();
            row = (row.array() - m).exp();
            row /= row.sum();
            row(static_cast<Eigen::Index>(labels[static_cast<size_t>(r)])) -= 1.f;
        }
        g /= static_cast<float>(B);
        for (size_t l = L; l-- > 0;) {
            Dense& d = layers_[l];
            Mat& gl = grads_[(L - 1 - l) % 2];
            if (l == 0)
                d.dw.noalias() = gl.transpose() * x;
            else
                d.dw.noalias() = gl.transpose() * acts_[l];
            d.db = gl.colwise().sum();
            if (l == 0) break;
            Mat& prev = grads_[(L - l) % 2];
            prev.noalias() = gl * d.w;
            prev = (acts_[l].array() > 0.f).select(prev, 0.f);
        }
    }

    /// One SGD step with the gradients of the last backward.
    void step(float lr, float momentum) {
        for (Dense& d : layers_) {
            if (momentum == 0.f) {
                d.w -= lr * d.dw;
                d.b -= lr * d.db;
                continue;
            }
            if (d.vw.size() == 0) {
                d.vw = d.dw;
                d.vb = d.db;
            } else {
                d.vw = momentum * d.vw + d.dw;
                d.vb = momentum * d.vb + d.db;
            }
            d.w -= lr * d.vw;
            d.b -= lr * d.vb;
        }
    }

private:
    std::vector<Dense> layers_;
    std::vector<Mat> acts_;   // acts_[l]: a_l (acts_[L]: the logits); acts_[0] unused, the input is the batch
    std::vector<Mat> grads_;  // two buffers taking turns as g_l and g_{l-1}
};

}  // namespace eigen_floor
