#pragma once
// A minimal command-line parser for the small lessons (not part of the library): `--name value` flags with
// a range check and `--help`. The larger programs use CLI11; this one exists because CLI11's header alone
// takes about 7 s to compile, and the early lessons should build in a few seconds.
//
//     examples::Flags flags("Train XOR");
//     flags.add("--epochs", epochs, "Gradient steps", 1, 10000000);
//     if (const int rc = flags.parse(argc, argv); rc >= 0) return rc;   // --help or a bad flag

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace examples {

class Flags {
public:
    explicit Flags(std::string description) : description_(std::move(description)) {}

    /// Registers `name` for an int, int64, uint64 or double variable, accepted within [lo, hi].
    template <class V>
    void add(std::string name, V& value, std::string help, V lo, V hi) {
        const std::string shown = text_of(value);
        flags_.push_back({std::move(name), std::move(help) + " (default " + shown + ")",
                          [&value, lo, hi](std::string_view text) {
                              V v{};
                              const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
                              if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi)
                                  return false;
                              value = v;
                              return true;
                          },
                          text_of(lo) + ".." + text_of(hi)});
    }

    /// Parses argv. Returns -1 to go on, or the exit code to return at once (0 after --help, 2 on an error,
    /// which is reported with the usage).
    int parse(int argc, char** argv) const {
        for (int i = 1; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if (arg == "--help" || arg == "-h") {
                usage(stdout, argv[0]);
                return 0;
            }
            const Flag* f = find(arg);
            if (f == nullptr || i + 1 >= argc) {
                std::fprintf(stderr, "%s: %s %.*s\n\n", argv[0], f ? "missing value for" : "unknown flag",
                             static_cast<int>(arg.size()), arg.data());
                usage(stderr, argv[0]);
                return 2;
            }
            const std::string_view value = argv[++i];
            if (!f->set(value)) {
                std::fprintf(stderr, "%s: bad value '%.*s' for %s (expected a number in %s)\n", argv[0],
                             static_cast<int>(value.size()), value.data(), f->name.c_str(), f->range.c_str());
                return 2;
            }
        }
        return -1;
    }

private:
    template <class V>
    static std::string text_of(V v) {
        if constexpr (std::is_floating_point_v<V>) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%g", v);
            return buf;
        } else {
            return std::to_string(v);
        }
    }
    struct Flag {
        std::string name, help;
        std::function<bool(std::string_view)> set;
        std::string range;
    };
    const Flag* find(std::string_view name) const {
        for (const Flag& f : flags_)
            if (f.name == name) return &f;
        return nullptr;
    }
    void usage(std::FILE* out, const char* program) const {
        std::fprintf(out, "%s\nUsage: %s [flags]\n", description_.c_str(), program);
        for (const Flag& f : flags_) std::fprintf(out, "  %-12s %s\n", f.name.c_str(), f.help.c_str());
        std::fprintf(out, "  %-12s %s\n", "--help", "Show this help");
    }

    std::string description_;
    std::vector<Flag> flags_;
};

}  // namespace examples
