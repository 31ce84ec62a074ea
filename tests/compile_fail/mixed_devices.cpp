// Must NOT compile: adding tensors that live on two devices. CTest compiles this file and passes when the
// compiler stops with tapegrad's sentence (tests/CMakeLists.txt, test compile_fail/mixed_devices). A second
// device is declared here so the check needs no GPU toolkit.
#include <tapegrad/tapegrad.hpp>

struct OtherDevice {
    static constexpr const char* name = "other";
};

void mixed(const tapegrad::Tensor<float, tapegrad::Cpu>& a, const tapegrad::Tensor<float, OtherDevice>& b) {
#if defined(TAPEGRAD_FAILTEST_MATMUL)
    (void)tapegrad::matmul(a, b);
#else
    (void)(a + b);
#endif
}
