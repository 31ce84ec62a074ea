// Tests for examples/common/fortunes.hpp: the char_lm lesson's corpus and its truncated-BPTT batches.

#include "../../../examples/common/fortunes.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

TEST_CASE("split_fortunes: quotations between '%' lines, blank ones dropped") {
    const auto q = examples::split_fortunes("one\nline two\n%\n%\n  \n%\nthree\r\n%\n");
    REQUIRE(q.size() == 2);
    CHECK(q[0] == "one\nline two\n");
    CHECK(q[1] == "three\n");
    CHECK(examples::split_fortunes("no separator at the end\n").size() == 1);
}

TEST_CASE("read_fortunes: regular files in name order, .dat and .u8 skipped, every 20th quotation held out") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("fortunes_test_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "off");
    {
        std::ofstream a(dir / "a");
        for (int i = 0; i < 30; ++i) a << "quote " << i << "\n%\n";
        std::ofstream(dir / "a.dat") << "binary index";
        std::ofstream(dir / "off" / "b") << "offensive\n%\n";
        std::ofstream(dir / "c") << "zz\n";
    }
    fs::create_symlink(dir / "a", dir / "a.u8");
    const examples::Corpus c = examples::read_fortunes(dir);
    CHECK(c.files == 2);
    CHECK(c.quotes == 31);
    CHECK(c.val == "quote 0\n%\nquote 20\n%\n");
    CHECK(c.train.find("quote 1\n%\n") == 0);
    CHECK(c.train.find("offensive") == std::string::npos);
    CHECK(c.train.size() - c.train.rfind("zz\n%\n") == 5);
    const auto ids = c.encode("zq");
    CHECK(c.vocab[static_cast<size_t>(ids[0])] == 'z');
    CHECK(c.vocab[static_cast<size_t>(ids[1])] == 'q');
    CHECK_THROWS_AS(static_cast<void>(c.encode("!")), std::invalid_argument);
    fs::remove_all(dir);
    CHECK_THROWS_AS(examples::read_fortunes(dir), std::runtime_error);
}

TEST_CASE("tbptt batches: streams read side by side, the target the next character") {
    std::vector<int64_t> tokens(23);
    for (int64_t i = 0; i < 23; ++i) tokens[static_cast<size_t>(i)] = i;
    // 2 streams of (23 - 1) / 2 = 11 characters: [0, 11) and [11, 22); 3 steps each: 3 full batches
    CHECK(examples::tbptt_batches(23, 2, 3) == 3);
    std::vector<int64_t> in, target;
    examples::tbptt_batch(tokens, 2, 3, 1, in, target);
    CHECK(in == std::vector<int64_t>{3, 4, 5, 14, 15, 16});
    CHECK(target == std::vector<int64_t>{4, 5, 6, 15, 16, 17});
}
