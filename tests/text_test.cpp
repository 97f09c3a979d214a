// base/text.h: counts with the right noun, and decimals that read back exactly in the fewest digits.
#include "base/text.h"

#include <doctest/doctest.h>

#include <cstdlib>

using massmap::decimal_text;
using massmap::plural;

TEST_CASE("plural: one is singular, every other count plural") {
  CHECK(plural(1, "image") == "1 image");
  CHECK(plural(0, "image") == "0 images");
  CHECK(plural(2, "patient") == "2 patients");
  CHECK(plural(1, "patch", "patches") == "1 patch");
  CHECK(plural(12, "patch", "patches") == "12 patches");
  CHECK(plural(-1, "step") == "-1 steps");
}

TEST_CASE("decimal_text: the shortest text that reads back as the same number") {
  CHECK(decimal_text(0.1) == "0.1");
  CHECK(decimal_text(0.7) == "0.7");
  CHECK(decimal_text(10.0) == "10");  // not 1e+01
  CHECK(decimal_text(100000.0) == "100000");
  CHECK(decimal_text(1e-7) == "1e-07");
  CHECK(decimal_text(1.0 - 0.8 - 0.1) == "0.09999999999999995");  // not the 0.1 it is not
  CHECK(decimal_text(0.01f) == "0.01");                           // a float's own shortest form
  CHECK(decimal_text(1e8f) == "100000000");
  for (double v : {0.3, 1.0 / 3, 2.5e-300, 123456789.125, -4.75})
    CHECK_MESSAGE(std::strtod(decimal_text(v).c_str(), nullptr) == v, decimal_text(v));
  for (float v : {0.3f, 1.f / 3, 1e-30f, 16777217.f})
    CHECK_MESSAGE(std::strtof(decimal_text(v).c_str(), nullptr) == v, decimal_text(v));
}
