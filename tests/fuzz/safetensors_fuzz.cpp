// libFuzzer target for the safetensors decoder.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//       tests/fuzz/safetensors_fuzz.cpp -o /tmp/st_fuzz && /tmp/st_fuzz -max_total_time=20
//
// Any input must either decode or throw a tapegrad::Error; a crash, a sanitizer report, a hang or another
// exception type is a bug. An input that decodes must also re-encode, and re-encoding must be a fixed point.
#include "tapegrad/io/safetensors.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    tapegrad::io::StFile file;
    try {
        file = tapegrad::io::decode_safetensors(std::span<const unsigned char>(data, size), "fuzz-input");
    } catch (const tapegrad::Error&) {
        return 0;
    }
    // Outside the try: an accepted file that cannot be written back, or does not read back the same, should
    // abort the run rather than be swallowed.
    const std::vector<unsigned char> once = tapegrad::io::encode_safetensors(file);
    const std::vector<unsigned char> twice =
        tapegrad::io::encode_safetensors(tapegrad::io::decode_safetensors(once, "re-encoded"));
    if (once != twice) __builtin_trap();
    return 0;
}
