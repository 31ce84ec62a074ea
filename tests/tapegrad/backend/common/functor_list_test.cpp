// Tests for tapegrad/backend/common/functor_list.hpp: the one list of elementwise functors. Every listed
// functor's derivative (backward for a unary functor, da and db for a binary one) matches central finite
// differences of its value in double at points away from kinks, so a functor added to the list is checked
// here without another line; and the list is what the CPU primitives accept (a functor missing from it
// does not compile, which this file cannot show at run time: see the static_asserts of cpu/elementwise.hpp).

#include <tapegrad/backend/common/functor_list.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <string>

namespace {

namespace fn = tapegrad::fn;

constexpr double h = 1e-6;
constexpr double points[] = {-2.3, -0.7, -0.15, 0.3, 0.8, 1.9};

/// Central difference of g at x.
template <class G>
double slope(G g, double x) {
    return (g(x + h) - g(x - h)) / (2 * h);
}

/// Checks f.backward against finite differences at every point where f is finite around x; returns the
/// number of points checked.
template <class F>
int check_unary(const F& f) {
    int checked = 0;
    for (double x : points) {
        const double lo = f(x - h), hi = f(x + h), y = f(x);
        if (!std::isfinite(lo) || !std::isfinite(hi) || !std::isfinite(y)) continue;  // outside the domain (log)
        const double dy = 0.75;
        const double want = dy * slope([&](double t) { return f(t); }, x);
        CHECK_MESSAGE(f.backward(x, y, dy) == doctest::Approx(want).epsilon(1e-5), F::name, " at ", x);
        ++checked;
    }
    return checked;
}

template <class F>
int check_binary(const F& f) {
    int checked = 0;
    for (double a : points)
        for (double b : {0.2, 0.55, 0.9}) {  // also a valid target in [0, 1] for the losses
            if (F::name == std::string("bce_loss") && !(a > 0 && a < 1)) continue;  // a probability
            const double y = f(a, b), dy = 0.5;
            if (!std::isfinite(y)) continue;
            const double da = dy * slope([&](double t) { return f(t, b); }, a);
            const double db = dy * slope([&](double t) { return f(a, t); }, b);
            CHECK_MESSAGE(f.da(a, b, y, dy) == doctest::Approx(da).epsilon(1e-5), F::name, " da at ", a, ", ", b);
            CHECK_MESSAGE(f.db(a, b, y, dy) == doctest::Approx(db).epsilon(1e-5), F::name, " db at ", a, ", ", b);
            ++checked;
        }
    return checked;
}

}  // namespace

TEST_CASE("every unary functor of the list: backward matches finite differences") {
#define TAPEGRAD_TEST_UNARY(Name)                                      \
    {                                                                  \
        static_assert(fn::listed_unary<fn::Name>);                     \
        INFO(#Name);                                                   \
        CHECK(check_unary(fn::Name{}) >= 3);                           \
    }
    TAPEGRAD_UNARY_FUNCTORS(TAPEGRAD_TEST_UNARY)
#undef TAPEGRAD_TEST_UNARY
}

TEST_CASE("functors with parameters: backward matches finite differences away from their kinks") {
    CHECK(check_unary(fn::Pow{3.0}) == 6);
    CHECK(check_unary(fn::Pow{0.5}) == 3);  // x > 0 only
    CHECK(check_unary(fn::Clamp{-1.0, 1.0}) == 6);
    CHECK(check_unary(fn::LeakyRelu{0.2}) == 6);
    CHECK(check_unary(fn::Elu{0.5}) == 6);
    CHECK(check_unary(fn::Softplus{2.0, 20.0}) == 6);
    CHECK(check_unary(fn::Gelu{true}) == 6);
}

TEST_CASE("every binary functor of the list: da and db match finite differences") {
#define TAPEGRAD_TEST_BINARY(Name)                                     \
    {                                                                  \
        static_assert(fn::listed_binary<fn::Name>);                    \
        INFO(#Name);                                                   \
        CHECK(check_binary(fn::Name{}) >= 3);                          \
    }
    TAPEGRAD_BINARY_FUNCTORS(TAPEGRAD_TEST_BINARY)
#undef TAPEGRAD_TEST_BINARY
}

TEST_CASE("the list names each functor once, under its own name, and only functors") {
    std::set<std::string> names;
    int count = 0;
#define TAPEGRAD_TEST_NAME(Name) \
    names.insert(fn::Name::name); \
    ++count;
    TAPEGRAD_UNARY_FUNCTORS(TAPEGRAD_TEST_NAME)
    TAPEGRAD_BINARY_FUNCTORS(TAPEGRAD_TEST_NAME)
#undef TAPEGRAD_TEST_NAME
    CHECK(names.size() == static_cast<size_t>(count));
    CHECK_FALSE(fn::listed_unary<fn::Add>);
    CHECK_FALSE(fn::listed_binary<fn::Relu>);
    CHECK_FALSE(fn::listed_unary<int>);
}

namespace {
struct UserSquare {  // a functor of the user's own: not the library's, so it need not be listed
    template <class T> T operator()(T x) const { return x * x; }
    template <class T> T backward(T x, T, T dy) const { return 2 * x * dy; }
};
}  // namespace

TEST_CASE("only the library's functors (namespace tapegrad::fn) must be listed; a user's runs unlisted on the CPU") {
    CHECK(fn::library_functor<fn::Relu>);
    CHECK(fn::library_functor<fn::BceWithLogits>);
    CHECK_FALSE(fn::library_functor<UserSquare>);
    CHECK(fn::usable_unary<UserSquare>);
    CHECK(fn::usable_unary<fn::Gelu>);
    CHECK_FALSE(fn::usable_unary<fn::Add>);  // a library functor of the other kind
}
