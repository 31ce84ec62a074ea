// The second of the two translation units (see tu_a.cpp).
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

TEST_CASE("two translation units: tu_b uses the umbrella header") {
    using namespace tapegrad;
    CHECK(broadcast_shapes(Shape{}, Shape{2}, "mul") == Shape{2});
    CHECK(contiguous_strides(Shape{5})[0] == 1);
    TensorD w = TensorD::from({2}, {3.0, 4.0});
    w.requires_grad_();
    sum(w * w).backward();
    CHECK(w.grad().to_vector() == std::vector<double>{6.0, 8.0});
    const GradcheckResult r = gradcheck([](const std::vector<TensorD>& xs) { return tanh(xs[0]); }, {w});
    CHECK_MESSAGE(r.ok, r.message);
    CHECK(detail::thread_state().grad_enabled);
}
