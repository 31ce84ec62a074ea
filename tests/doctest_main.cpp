// The one translation unit that holds doctest's main(); every other test file only includes doctest.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
