// Must NOT compile: Tensor's member shape ops (reshape, flatten, clone, t) with only core/tensor.hpp included.
// They are recorded ops, defined in ops/shape.hpp; without that header the compiler must stop with
// tapegrad's sentence saying which header to include (not compile and then fail to link). CTest compiles
// this file (tests/CMakeLists.txt, test compile_fail/member_shape_ops).
#include <tapegrad/core/tensor.hpp>

int use(const tapegrad::TensorF& x) { return static_cast<int>(x.reshape({-1}).numel()); }
