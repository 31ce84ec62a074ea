#pragma once
/// \file
/// A fresh, empty directory under the system's temporary directory for one test, removed with everything in
/// it when the TempDir goes out of scope (read-only files too: the owner's permissions are restored first,
/// for the tests that make a file unwritable); and `read_bytes`, a whole file's bytes. Shared by the
/// file-format, checkpoint and plot tests.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <ios>
#include <iterator>
#include <random>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace tapegrad::testing {

class TempDir {
public:
    /// Creates <tmp>/<prefix>_<random>_<counter>; a name that exists already is never reused.
    explicit TempDir(const std::string& prefix = "tapegrad_test") {
        static std::atomic<int> counter{0};
        std::random_device rd;
        do {
            path = std::filesystem::temp_directory_path() /
                   (prefix + "_" + std::to_string(rd()) + "_" + std::to_string(counter++));
        } while (!std::filesystem::create_directory(path));
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::permissions(path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    /// Writes `bytes` to <path>/<name>; returns the file's path.
    std::filesystem::path write(const std::string& name, std::span<const unsigned char> bytes) const {
        const std::filesystem::path p = path / name;
        std::ofstream f(p, std::ios::binary);
        f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        REQUIRE(f.good());
        return p;
    }
    /// The names of the entries in the directory, sorted.
    [[nodiscard]] std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }

    std::filesystem::path path;
};

/// Every byte of the file at `p` (a check fails if it cannot be opened).
inline std::vector<unsigned char> read_bytes(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    REQUIRE_MESSAGE(in.is_open(), "cannot open ", p.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace tapegrad::testing
