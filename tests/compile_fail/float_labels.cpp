// Must NOT compile: class labels that are not integers. CTest compiles this file and passes when the
// compiler stops with tapegrad's one sentence (tests/CMakeLists.txt, test compile_fail/float_labels).
#include <tapegrad/tapegrad.hpp>

#include <vector>

void float_labels(const tapegrad::TensorF& logits) {
    (void)tapegrad::nn::cross_entropy(logits, std::vector<float>{0.f, 1.f});
}
