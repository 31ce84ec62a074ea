#include <tapegrad/core/error.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

using namespace tapegrad;

static_assert(std::is_base_of_v<std::runtime_error, Error>);
static_assert(std::is_base_of_v<Error, ShapeError>);
static_assert(std::is_base_of_v<Error, IndexError>);
static_assert(std::is_base_of_v<Error, ValueError>);
static_assert(std::is_base_of_v<Error, FormatError>);
static_assert(std::is_base_of_v<Error, DeviceError>);
static_assert(std::is_base_of_v<Error, InternalError>);
// The subclasses are distinct: catching one never swallows another.
static_assert(!std::is_base_of_v<ShapeError, IndexError> && !std::is_base_of_v<IndexError, ShapeError>);
static_assert(!std::is_base_of_v<ValueError, ShapeError> && !std::is_base_of_v<ShapeError, ValueError>);

namespace {

int evaluations = 0;
int counted(int v) {
    ++evaluations;
    return v;
}

void check_positive(int x) { TAPEGRAD_CHECK(x > 0, ValueError, "check_positive: x is ", counted(x), ", not > 0"); }

}  // namespace

TEST_CASE("TAPEGRAD_CHECK: throws the named type with the streamed message, built only on failure") {
    evaluations = 0;
    CHECK_NOTHROW(check_positive(3));
    CHECK(evaluations == 0);  // the message parts were not evaluated on success
    CHECK_THROWS_WITH_AS(check_positive(-2), "check_positive: x is -2, not > 0", ValueError);
    CHECK(evaluations == 1);

    try {
        TAPEGRAD_CHECK(1 + 1 == 3, ShapeError, "shapes ", Shape{2, 3}, " and ", 4.5);
        FAIL("TAPEGRAD_CHECK did not throw");
    } catch (const Error& e) {
        CHECK(dynamic_cast<const ShapeError*>(&e) != nullptr);
        CHECK(std::string(e.what()) == "shapes [2, 3] and 4.5");
    }
}

TEST_CASE("TAPEGRAD_ASSERT: throws InternalError naming the condition, file and line") {
    CHECK_NOTHROW(TAPEGRAD_ASSERT(2 > 1));
    try {
        TAPEGRAD_ASSERT(2 < 1);
        FAIL("TAPEGRAD_ASSERT did not throw");
    } catch (const InternalError& e) {
        const std::string what = e.what();
        CHECK(what.find("'2 < 1' failed at ") != std::string::npos);
        CHECK(what.find("error_test.cpp:") != std::string::npos);
    }
}

TEST_CASE("every error a user can cause is a tapegrad::Error of the documented subclass") {
    struct Case {
        const char* what;
        std::function<void()> cause;
        std::function<bool(const Error&)> is_expected_type;
    };
    auto shape = [](const Error& e) { return dynamic_cast<const ShapeError*>(&e) != nullptr; };
    auto index = [](const Error& e) { return dynamic_cast<const IndexError*>(&e) != nullptr; };
    auto value = [](const Error& e) { return dynamic_cast<const ValueError*>(&e) != nullptr; };
    const TensorD m23 = TensorD::zeros({2, 3});
    const std::vector<Case> cases = {
        {"broadcast mismatch", [&] { (void)(m23 + TensorD::zeros({4})); }, shape},
        {"matmul inner dims", [&] { (void)matmul(m23, m23); }, shape},
        {"matmul rank", [&] { (void)matmul(TensorD::zeros({3}), m23); }, shape},
        {"reshape count", [&] { (void)m23.reshape({4, 2}); }, shape},
        {"concat mismatch", [&] { (void)concat({m23, TensorD::zeros({2, 4})}, 0); }, shape},
        {"Tensor::from count", [] { (void)TensorD::from({2}, {1.0}); }, shape},
        {"item on many elements", [&] { (void)m23.item(); }, shape},
        {"backward on non-scalar",
         [] {
             TensorD x = TensorD::ones({2});
             x.requires_grad_();
             (x * x).backward();
         },
         shape},
        {"rank above 8", [] { (void)Shape({1, 1, 1, 1, 1, 1, 1, 1, 1}); }, shape},
        {"at out of range", [&] { (void)m23(2, 0); }, index},
        {"axis out of range", [&] { (void)sum(m23, 2); }, index},
        {"slice out of range", [&] { (void)slice(m23, 1, 0, 4); }, index},
        {"transpose axis", [&] { (void)transpose(m23, 0, -3); }, index},
        {"max axis", [&] { (void)tapegrad::max(m23, 5); }, index},
        {"backward without grad", [&] { sum(m23).backward(); }, value},
        {"backward twice",
         [] {
             TensorD x = TensorD::ones({2});
             x.requires_grad_();
             TensorD y = sum(x * x);
             y.backward();
             y.backward();
         },
         value},
        {"fill_ on a parameter",
         [] {
             TensorD x = TensorD::ones({2});
             x.requires_grad_();
             x.fill_(0.0);
         },
         value},
        {"clamp bounds", [&] { (void)clamp(m23, 1.0, 0.0); }, value},
        {"mean of empty", [] { (void)mean(TensorD::zeros({0})); }, value},
        {"arange step 0", [] { (void)TensorD::arange(0.0, 1.0, 0.0); }, value},
        {"undefined tensor", [] { (void)TensorD().numel(); }, value},
    };
    for (const Case& c : cases) {
        CAPTURE(c.what);
        bool threw_error = false;
        try {
            c.cause();
        } catch (const Error& e) {
            threw_error = true;
            CHECK_MESSAGE(c.is_expected_type(e), "wrong exception type ", typeid(e).name(), ": ", e.what());
            CHECK(std::string(e.what()).size() > 10);  // a sentence, not an empty message
        } catch (const std::exception& e) {
            FAIL("not a tapegrad::Error: ", typeid(e).name(), ": ", e.what());
        }
        CHECK_MESSAGE(threw_error, c.what, " did not throw");
    }
}
