// Must NOT compile: an options field misspelt (`.betta1`). CTest compiles this file and passes when the
// compiler names the field and lists only the public constructors: Adam's internal constructor (optimizer
// name, decoupled flag) must not appear among the candidates (tests/CMakeLists.txt).
#include <tapegrad/tapegrad.hpp>

void misspelt(const tapegrad::TensorF& w) {
    tapegrad::optim::Adam<float> opt({w}, {.lr = 1e-3, .betta1 = 0.9});
    (void)opt;
}
