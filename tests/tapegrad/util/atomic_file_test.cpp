// Tests for tapegrad/util/atomic_file.hpp: one file or several written all or nothing, writability checked
// up front without leaving anything behind, and temporaries of killed writers removed by the next write.
// Files go to a private temp folder that is removed afterwards.

#include <tapegrad/util/atomic_file.hpp>

#include "../../support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using tapegrad::FormatError;
using tapegrad::util::FileContent;

namespace {

using tapegrad::testing::TempDir;

std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

void write_plain(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

std::span<const unsigned char> byte_span(const std::string& s) {
    return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

/// The names in `dir`, sorted.
std::vector<std::string> listing(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

/// A pid that belonged to a process that has exited (and been reaped), so none runs under it now.
pid_t dead_pid() {
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    int status = 0;
    ::waitpid(child, &status, 0);
    return child;
}

}  // namespace

TEST_CASE("write_file_atomically: writes the bytes and leaves no temporary") {
    const TempDir dir;
    const fs::path p = dir.path / "a.bin";
    tapegrad::util::write_file_atomically(p, byte_span("hello"), "test");
    CHECK(read(p) == "hello");
    tapegrad::util::write_file_atomically(p, byte_span("again"), "test");
    CHECK(read(p) == "again");
    CHECK(listing(dir.path) == std::vector<std::string>{"a.bin"});
}

TEST_CASE("write_files_atomically: both files are replaced together") {
    const TempDir dir;
    const fs::path model = dir.path / "m.safetensors", optim = dir.path / "m.safetensors.optim";
    write_plain(model, "old model");
    write_plain(optim, "old optim");
    const std::string m = "new model", o = "new optim";
    const FileContent files[] = {{model, byte_span(m), "save: model"}, {optim, byte_span(o), "save: optim"}};
    tapegrad::util::write_files_atomically(files);
    CHECK(read(model) == "new model");
    CHECK(read(optim) == "new optim");
    CHECK(listing(dir.path) == std::vector<std::string>{"m.safetensors", "m.safetensors.optim"});
}

TEST_CASE("write_files_atomically: when the second file cannot be written, the first keeps its old content") {
    const TempDir dir;
    const fs::path model = dir.path / "m.safetensors", optim = dir.path / "m.safetensors.optim";
    const std::string m = "new model", o = "new optim";
    const FileContent files[] = {{model, byte_span(m), "save: model"}, {optim, byte_span(o), "save: optim"}};

    SUBCASE("the second target is a folder: its rename fails after the first one succeeded, and is undone") {
        write_plain(model, "old model");
        fs::create_directory(optim);
        CHECK_THROWS_WITH_AS(tapegrad::util::write_files_atomically(files),
                             doctest::Contains("save: optim: cannot rename temporary file"), FormatError);
        CHECK(read(model) == "old model");
        CHECK(fs::is_directory(optim));
        CHECK(listing(dir.path) == std::vector<std::string>{"m.safetensors", "m.safetensors.optim"});
    }
    SUBCASE("no model existed before: it does not appear") {
        fs::create_directory(optim);
        CHECK_THROWS_AS(tapegrad::util::write_files_atomically(files), FormatError);
        CHECK_FALSE(fs::exists(model));
        CHECK(listing(dir.path) == std::vector<std::string>{"m.safetensors.optim"});
    }
    SUBCASE("the second file's folder does not exist: nothing is renamed at all") {
        write_plain(model, "old model");
        const FileContent bad[] = {{model, byte_span(m), "save: model"},
                                   {dir.path / "missing" / "m.optim", byte_span(o), "save: optim"}};
        CHECK_THROWS_WITH_AS(tapegrad::util::write_files_atomically(bad),
                             doctest::Contains("save: optim: cannot create temporary file"), FormatError);
        CHECK(read(model) == "old model");
        CHECK(listing(dir.path) == std::vector<std::string>{"m.safetensors"});
    }
}

TEST_CASE("check_writable: a missing folder, a folder as the target and a read-only folder fail up front") {
    const TempDir dir;
    tapegrad::util::check_writable(dir.path / "m.safetensors", "save");
    CHECK(listing(dir.path).empty());  // the probe is gone
    CHECK_FALSE(fs::exists(dir.path / "m.safetensors"));

    CHECK_THROWS_WITH_AS(tapegrad::util::check_writable("/nonexistent/dir/m.safetensors", "mnist_mlp: --save"),
                         "mnist_mlp: --save: its folder '/nonexistent/dir' does not exist", FormatError);
    fs::create_directory(dir.path / "sub");
    CHECK_THROWS_WITH_AS(tapegrad::util::check_writable(dir.path / "sub", "save"),
                         doctest::Contains("is a folder, not a file"), FormatError);
    write_plain(dir.path / "file", "x");
    CHECK_THROWS_WITH_AS(tapegrad::util::check_writable(dir.path / "file" / "m", "save"),
                         doctest::Contains("is not a folder"), FormatError);
    CHECK_THROWS_AS(tapegrad::util::check_writable(dir.path / "", "save"), FormatError);

    if (::geteuid() != 0) {  // root writes into read-only folders
        fs::create_directory(dir.path / "ro");
        fs::permissions(dir.path / "ro", fs::perms::owner_read | fs::perms::owner_exec);
        CHECK_THROWS_WITH_AS(tapegrad::util::check_writable(dir.path / "ro" / "m", "save"),
                             doctest::Contains("cannot create temporary file"), FormatError);
        fs::permissions(dir.path / "ro", fs::perms::owner_all);
        CHECK(listing(dir.path / "ro").empty());
    } else {
        MESSAGE("running as root: the read-only folder case is skipped");
    }
}

TEST_CASE("a temporary left by a killed writer is removed by the next write to the same target") {
    const TempDir dir;
    const fs::path p = dir.path / "m.safetensors";
    const pid_t gone = dead_pid();
    const std::string stale = "m.safetensors.tmp-" + std::to_string(gone) + "-0";
    // Kept: this process's own (it may be writing it now), a running process's, another target's, and
    // names that only look alike.
    const std::string mine = "m.safetensors.tmp-" + std::to_string(::getpid()) + "-7";
    const std::string running = "m.safetensors.tmp-1-0";
    const std::string other = "n.safetensors.tmp-" + std::to_string(gone) + "-0";
    const std::string odd = "m.safetensors.tmp-" + std::to_string(gone) + "-x";
    for (const auto& n : {stale, mine, running, other, odd}) write_plain(dir.path / n, "partial");

    tapegrad::util::write_file_atomically(p, byte_span("complete"), "test");
    CHECK(read(p) == "complete");
    std::vector<std::string> expected{"m.safetensors", mine, running, other, odd};
    std::sort(expected.begin(), expected.end());
    CHECK(listing(dir.path) == expected);
}

TEST_CASE("a writer killed by a signal while writing: the next save removes its temporary") {
    const TempDir dir;
    const fs::path p = dir.path / "m.safetensors";
    write_plain(p, "previous");
    // The child creates its temporary as write_file_atomically does and is killed before it can rename it.
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = ::fork();
    if (child == 0) {
        fs::path tmp;
        std::FILE* f = tapegrad::util::detail::create_temporary(p, tmp, "child");
        std::fputs("half", f);
        std::fflush(f);
        const char c = 1;
        static_cast<void>(::write(ready[1], &c, 1));
        for (;;) ::pause();
    }
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(ready[0]);
    ::close(ready[1]);
    CHECK(WIFSIGNALED(status));
    CHECK(listing(dir.path).size() == 2);  // the target and the orphaned temporary
    CHECK(read(p) == "previous");

    tapegrad::util::write_file_atomically(p, byte_span("next"), "test");
    CHECK(listing(dir.path) == std::vector<std::string>{"m.safetensors"});
    CHECK(read(p) == "next");
}

TEST_CASE("temporary_owner: only <target>.tmp-<pid>-<n> names count") {
    using tapegrad::util::detail::temporary_owner;
    CHECK(temporary_owner("m.st.tmp-123-0", "m.st") == 123);
    CHECK(temporary_owner("m.st.tmp-123-45", "m.st") == 123);
    CHECK(temporary_owner("m.st.tmp-123-", "m.st") == 0);
    CHECK(temporary_owner("m.st.tmp-123", "m.st") == 0);
    CHECK(temporary_owner("m.st.tmp--1-2", "m.st") == 0);
    CHECK(temporary_owner("m.st.tmp-a-2", "m.st") == 0);
    CHECK(temporary_owner("m.st.optim.tmp-5-2", "m.st") == 0);
    CHECK(temporary_owner("m.st", "m.st") == 0);
}
