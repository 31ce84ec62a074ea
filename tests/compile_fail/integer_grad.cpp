// Must not compile: integer and mask tensors are never differentiable. Each TAPEGRAD_FAILTEST_* variant
// asks for one autograd member; the compiler must stop with tapegrad's sentence (tests/CMakeLists.txt).
#include <tapegrad/tapegrad.hpp>

int main() {
    tapegrad::TensorL ids = tapegrad::TensorL::zeros({3});
#if defined(TAPEGRAD_FAILTEST_BACKWARD)
    ids.backward();
#elif defined(TAPEGRAD_FAILTEST_GRAD)
    (void)ids.grad();
#else
    ids.requires_grad_();
#endif
    return 0;
}
