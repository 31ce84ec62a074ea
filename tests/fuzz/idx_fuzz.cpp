// libFuzzer target for the IDX reader: any byte string must either parse into an array whose payload
// agrees with its header or throw a tapegrad::Error; anything else (a crash, a sanitizer report, another
// exception) is a bug. Gzip input (magic 1f 8b) goes through the inflate path too.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/idx_fuzz.cpp -lz \
//       -o /tmp/idx_fuzz && /tmp/idx_fuzz -max_total_time=20

#include <tapegrad/data/idx.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const tapegrad::data::IdxArray a =
            tapegrad::data::parse_idx(std::span<const unsigned char>(data, size), "fuzz-input");
        if (a.rank() < 1 || a.rank() > 8 ||
            static_cast<int64_t>(a.bytes.size()) != a.numel() * a.element_size()) {
            std::abort();  // a parse that passed its checks but disagrees with itself
        }
    } catch (const tapegrad::Error&) {
    }
    return 0;
}
