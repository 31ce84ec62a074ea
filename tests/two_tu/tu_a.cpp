// Two translation units that both include the umbrella header and are linked into one binary: if any
// non-template function in a header were not `inline`, the link would fail with a duplicate symbol.
// Each uses the non-template functions (broadcast_shapes, contiguous_strides, gradcheck, live_nodes,
// NoGradGuard, thread_state, cpu_live_bytes) so that they are really emitted in both objects.
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

TEST_CASE("two translation units: tu_a uses the umbrella header") {
    using namespace tapegrad;
    CHECK(broadcast_shapes(Shape{3, 1}, Shape{4}, "add") == Shape{3, 4});
    CHECK(contiguous_strides(Shape{2, 3})[0] == 3);
    const int64_t nodes = live_nodes();
    {
        NoGradGuard ng;
        CHECK_FALSE(is_grad_enabled());
    }
    TensorD x = TensorD::from({2}, {1.0, 2.0});
    const GradcheckResult r = gradcheck([](const std::vector<TensorD>& xs) { return sum(xs[0] * xs[0]); }, {x});
    CHECK_MESSAGE(r.ok, r.message);
    CHECK(live_nodes() == nodes);
    CHECK(backend::cpu_live_bytes().load() > 0);
}
