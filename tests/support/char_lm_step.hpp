#pragma once
/// \file
/// The character-LM training step of the lstm workloads (bench/workloads.cpp) at test size, for the tests that
/// prove a steady-state step allocates nothing: Embedding(V, E) -> LSTM(E, H, batch_first) -> Linear(H, V),
/// cross-entropy over all B*T positions, Adam, clip_grad_norm_(1.0), on fixed token ids and targets.
///
///     CharLmStep lm(B, T, E, H, V, gen);
///     lm.step();

#include <tapegrad/tapegrad.hpp>

#include <cstdint>
#include <vector>

namespace tapegrad::testing {

struct CharLmStep {
    int64_t B, T, V;
    nn::Embedding<float> emb;
    nn::LSTM<float> lstm;
    nn::Linear<float> fc;
    std::vector<TensorF> params;
    optim::Adam<float> opt;
    TensorL ids;
    Labels<Cpu> labels;
    float last_loss = 0;

    CharLmStep(int64_t batch, int64_t steps, int64_t embed, int64_t hidden, int64_t vocab, Generator& gen)
        : B(batch), T(steps), V(vocab), emb(vocab, embed, gen), lstm(embed, hidden, gen, {.batch_first = true}),
          fc(hidden, vocab, gen), params(all_parameters()), opt(params, {.lr = 1e-3}),
          ids(TensorL::zeros({batch, steps})), labels(make_labels()) {
        for (int64_t i = 0; i < B * T; ++i) ids.data()[i] = (3 * i + 1) % V;
    }
    /// One training step; its loss lands in last_loss.
    void step() {
        opt.zero_grad();
        const TensorF logits = fc(lstm(emb(ids))).reshape({B * T, V});
        const TensorF loss = nn::cross_entropy(logits, labels);
        loss.backward();
        optim::clip_grad_norm_(params, 1.0);
        opt.step();
        last_loss = loss.item();
    }

private:
    std::vector<TensorF> all_parameters() const {
        std::vector<TensorF> p = emb.parameters();
        for (const TensorF& q : lstm.parameters()) p.push_back(q);
        for (const TensorF& q : fc.parameters()) p.push_back(q);
        return p;
    }
    Labels<Cpu> make_labels() const {
        std::vector<int64_t> targets;
        for (int64_t i = 0; i < B * T; ++i) targets.push_back((5 * i + 2) % V);
        return Labels<Cpu>::from(targets);
    }
};

}  // namespace tapegrad::testing
