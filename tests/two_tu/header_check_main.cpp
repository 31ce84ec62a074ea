// The main of tapegrad_header_check (tests/CMakeLists.txt, TAPEGRAD_HEADER_CHECK=ON): one generated
// translation unit per public header includes that header alone, twice, and nothing else; all of them are
// linked into this program. It builds only if every header compiles on its own (it includes what it uses)
// and its non-template functions are `inline` (the same header reaches several units through the others).
#include <cstdio>

int main() {
    std::puts("tapegrad_header_check: every public header compiled alone and linked");
    return 0;
}
