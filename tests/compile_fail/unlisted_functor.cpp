// Must NOT compile: an elementwise functor missing from the one functor list (backend/common/functor_list.hpp).
// The CPU would run it, but the CUDA backend instantiates its kernels from the list only, so the GPU build
// would fail to link; the CPU primitives refuse it instead, so every CPU build catches the omission. CTest
// compiles this file and passes when the compiler stops with tapegrad's sentence (tests/CMakeLists.txt).
#include <tapegrad/tapegrad.hpp>

namespace tapegrad::fn {
/// y = x / (1 + |x|), written as a functor but not added to TAPEGRAD_ACTIVATION_UNARY_FUNCTORS.
struct Unlisted {
    static constexpr const char* name = "unlisted";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return x / (T(1) + (x < T(0) ? -x : x)); }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const {
        const T d = T(1) + (x < T(0) ? -x : x);
        return dy / (d * d);
    }
};
}  // namespace tapegrad::fn

tapegrad::TensorF unlisted(const tapegrad::TensorF& x) { return tapegrad::unary(x, tapegrad::fn::Unlisted{}); }
