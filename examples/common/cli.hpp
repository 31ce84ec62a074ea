#pragma once
// The programs' command lines, on CLI11 (not part of the library). Every program parses its flags the
// same strict way:
//
//     CLI::App app{"Train XOR"};
//     examples::number(app, "--epochs", epochs, "Gradient steps", 1, 10000000);
//     examples::int_list(app, "--hidden", hidden, "Hidden layer sizes", 1, 65536);
//     if (const int rc = examples::parse(app, argc, argv); rc >= 0) return rc;   // --help or a bad flag
//
// - a number outside its range says so with both bounds as people write them ("-1 is outside [1e-06, 10]");
// - a list takes one comma-separated value ("--hidden 32,16"); an empty item is an error;
// - a flag given twice takes its last value (so a script can append overrides);
// - an argument that belongs to no flag is reported as such, not as a bad value of the flag before it.

#include "parse.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace examples {

/// Registers `--name VALUE` for a number `value` accepted within [lo, hi]; the help shows the default.
template <class V>
CLI::Option* number(CLI::App& app, const std::string& name, V& value, const std::string& help, V lo, V hi) {
    auto* opt = app.add_option(name, value, help + " [" + number_text(lo) + ", " + number_text(hi) + "]");
    opt->default_str(number_text(value));
    opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // given twice: the last one counts
    opt->type_name(std::is_integral_v<V> ? "INT" : "NUMBER");
    // The validator sees the text before conversion and checks it in full, so CLI11's own conversion never
    // reports a number that it could not read.
    opt->check(CLI::Validator(
        [lo, hi](std::string& text) -> std::string {
            try {
                static_cast<void>(parse_number<V>(text, lo, hi));
            } catch (const std::invalid_argument& e) {
                return e.what();
            }
            return {};
        },
        "", "range"));
    return opt;
}

/// Registers `--name A,B,...` for a list of integers, each within [lo, hi].
inline CLI::Option* int_list(CLI::App& app, const std::string& name, std::vector<int64_t>& value,
                             const std::string& help, int64_t lo, int64_t hi) {
    auto* opt = app.add_option_function<std::string>(
        name, [&value, lo, hi](const std::string& text) { value = parse_int_list(text, lo, hi); },
        help + ", comma separated, each in [" + number_text(lo) + ", " + number_text(hi) + "]");
    opt->default_str(int_list_text(value));
    opt->type_name("LIST");
    opt->expected(1);  // one value: "--hidden 32 extra" leaves "extra" over, reported as such
    opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // given twice: the last one counts
    opt->check(CLI::Validator(
        [lo, hi](std::string& text) -> std::string {
            try {
                static_cast<void>(parse_int_list(text, lo, hi));
            } catch (const std::invalid_argument& e) {
                return e.what();
            }
            return {};
        },
        "", "list"));
    return opt;
}

/// Parses the command line. Returns -1 to go on, or the exit code to return at once: 0 after --help, 2 on a
/// bad command line (the error is printed with a pointer to --help).
inline int parse(CLI::App& app, int argc, char** argv) {
    // Each option takes exactly its own value(s); whatever is left over is an error of its own, so that
    // "--hidden 32 extra" blames "extra" and not --hidden.
    for (CLI::Option* opt : app.get_options()) opt->allow_extra_args(false);
    const std::string program = std::filesystem::path(argc > 0 ? argv[0] : "program").filename().string();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ExtrasError& e) {
        std::string extras;
        for (const std::string& x : app.remaining()) extras += (extras.empty() ? "'" : ", '") + x + "'";
        std::fprintf(stderr, "%s: unexpected argument%s %s: every value follows its flag (see --help)\n",
                     program.c_str(), app.remaining().size() > 1 ? "s" : "",
                     extras.c_str());
        return 2;
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "%s: %s (see --help)\n", program.c_str(), e.what());
        return e.get_exit_code() == 0 ? 0 : 2;
    }
    return -1;
}

}  // namespace examples
