#pragma once
// The char_lm lesson's corpus: Debian's fortune files (package fortunes, /usr/share/games/fortunes),
// quotations separated by lines holding a single '%'. Every regular file of the folder is read, in name
// order; the .dat index files, the .u8 links and sub-folders (such as the offensive ones) are skipped.
// Quotation i goes to the validation text when i % 20 == 0 (5%, the same split on every machine with the
// same package), to the training text otherwise; each ends with "\n%\n" as in the files. Characters are
// bytes; the vocabulary is the bytes that occur, sorted. Not part of the library, no flags, no tapegrad:
// the LibTorch twin (bench/char_lm_libtorch.cpp) reads the same corpus through it, and
// tests/examples/common/fortunes_test.cpp checks it.

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace examples {

struct Corpus {
    std::string train, val;     ///< the two texts
    std::vector<char> vocab;    ///< the distinct bytes, sorted; token i is vocab[i]
    std::array<int, 256> id{};  ///< byte -> token (-1: not in the vocabulary)
    int64_t quotes = 0, files = 0;

    [[nodiscard]] int64_t vocab_size() const { return static_cast<int64_t>(vocab.size()); }
    /// The tokens of a text (every byte must be in the vocabulary).
    [[nodiscard]] std::vector<int64_t> encode(std::string_view text) const {
        std::vector<int64_t> out;
        out.reserve(text.size());
        for (const char c : text) {
            const int t = id[static_cast<unsigned char>(c)];
            if (t < 0) throw std::invalid_argument("Corpus::encode: a byte outside the vocabulary");
            out.push_back(t);
        }
        return out;
    }
};

/// Splits the text of one fortune file into its quotations (without the '%' lines; empty ones dropped).
inline std::vector<std::string> split_fortunes(std::string_view text) {
    std::vector<std::string> out;
    std::string cur;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line == "%") {
            if (cur.find_first_not_of(" \t\n") != std::string::npos) out.push_back(cur);
            cur.clear();
        } else {
            cur += line;
            cur += '\n';
        }
    }
    if (cur.find_first_not_of(" \t\n") != std::string::npos) out.push_back(cur);
    return out;
}

/// Reads the corpus from `dir` (see the file comment). Throws std::runtime_error naming the folder when it
/// holds no fortune file.
inline Corpus read_fortunes(const std::filesystem::path& dir = "/usr/share/games/fortunes") {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw std::runtime_error("read_fortunes: '" + dir.string() + "' is not a folder (Debian: apt-get install fortunes)");
    std::vector<fs::path> files;
    for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
        if (e.is_symlink() || !e.is_regular_file()) continue;
        const std::string ext = e.path().extension().string();
        if (ext == ".dat" || ext == ".u8") continue;
        files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    Corpus c;
    for (const fs::path& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        for (std::string& q : split_fortunes(text.str())) {
            (c.quotes % 20 == 0 ? c.val : c.train) += q + "%\n";
            ++c.quotes;
        }
        ++c.files;
    }
    if (c.quotes == 0) throw std::runtime_error("read_fortunes: no fortunes in '" + dir.string() + "'");
    std::array<bool, 256> seen{};
    for (const std::string* s : {&c.train, &c.val})
        for (const char ch : *s) seen[static_cast<unsigned char>(ch)] = true;
    c.id.fill(-1);
    for (int b = 0; b < 256; ++b)
        if (seen[static_cast<size_t>(b)]) {
            c.id[static_cast<size_t>(b)] = static_cast<int>(c.vocab.size());
            c.vocab.push_back(static_cast<char>(b));
        }
    return c;
}

/// Truncated backpropagation through time cuts a text into `streams` contiguous pieces read side by side:
/// batch k holds, for every stream, the characters [k*T, k*T + T) of that piece, and the next character of
/// each as the target. Returns the number of full batches.
inline int64_t tbptt_batches(int64_t text_len, int64_t streams, int64_t steps) {
    const int64_t per_stream = (text_len - 1) / streams;
    return per_stream / steps;
}
/// The inputs and targets of batch `k`, [streams * steps] each, stream-major (row s, step t at s*steps + t).
inline void tbptt_batch(const std::vector<int64_t>& tokens, int64_t streams, int64_t steps, int64_t k,
                        std::vector<int64_t>& inputs, std::vector<int64_t>& targets) {
    const int64_t per_stream = (static_cast<int64_t>(tokens.size()) - 1) / streams;
    inputs.resize(static_cast<size_t>(streams * steps));
    targets.resize(static_cast<size_t>(streams * steps));
    for (int64_t s = 0; s < streams; ++s)
        for (int64_t t = 0; t < steps; ++t) {
            const int64_t at = s * per_stream + k * steps + t;
            inputs[static_cast<size_t>(s * steps + t)] = tokens[static_cast<size_t>(at)];
            targets[static_cast<size_t>(s * steps + t)] = tokens[static_cast<size_t>(at + 1)];
        }
}

}  // namespace examples
