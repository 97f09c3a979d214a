// Philox 4x32-10 against the Random123 known-answer vectors, and the derived uniform and normal draws.
#include "base/philox.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <ios>
#include <set>

using massmap::philox4x32;

namespace {

void check_known_answer(const uint32_t counter[4], const uint32_t key[2], const uint32_t expected[4]) {
  const massmap::Philox4x32Result got = philox4x32(counter, key);
  for (int i = 0; i < 4; ++i) CHECK_MESSAGE(got.v[i] == expected[i], "word " << i << ": " << std::hex << got.v[i]);
}

}  // namespace

TEST_CASE("philox4x32-10 matches the Random123 known answers") {
  SUBCASE("zero counter, zero key") {
    const uint32_t counter[4] = {0, 0, 0, 0}, key[2] = {0, 0};
    const uint32_t expected[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
    check_known_answer(counter, key, expected);
  }
  SUBCASE("all ones") {
    const uint32_t counter[4] = {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, key[2] = {0xffffffff, 0xffffffff};
    const uint32_t expected[4] = {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd};
    check_known_answer(counter, key, expected);
  }
  SUBCASE("digits of pi") {
    const uint32_t counter[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, key[2] = {0xa4093822, 0x299f31d0};
    const uint32_t expected[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
    check_known_answer(counter, key, expected);
  }
}

TEST_CASE("random_bits_at reads the four words of one Philox block per four indices") {
  const uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull, block = 0x100000002ull;
  const uint32_t counter[4] = {2, 1, 0x76543210, 0xfedcba98}, key[2] = {0x89abcdef, 0x01234567};
  const massmap::Philox4x32Result expected = philox4x32(counter, key);
  for (int word = 0; word < 4; ++word)
    CHECK(massmap::random_bits_at(seed, stream, 4 * block + word) == expected.v[word]);
}

TEST_CASE("uniform_at is deterministic, in [0, 1), and uniform") {
  const int count = 200000;
  double sum = 0, sum_sq = 0;
  int bins[10] = {}, outside = 0, unrepeatable = 0;
  for (int i = 0; i < count; ++i) {
    const float u = massmap::uniform_at(7, 3, uint64_t(i));
    outside += !(u >= 0.f && u < 1.f);
    unrepeatable += u != massmap::uniform_at(7, 3, uint64_t(i));
    if (!(u >= 0.f && u < 1.f)) continue;
    sum += u;
    sum_sq += double(u) * u;
    ++bins[int(u * 10)];
  }
  CHECK(outside == 0);
  CHECK(unrepeatable == 0);
  const double mean = sum / count, variance = sum_sq / count - mean * mean;
  // Standard error of the mean: sqrt(1/12 / count) = 6.5e-4; allow 5 of them.
  CHECK(std::fabs(mean - 0.5) < 3.3e-3);
  CHECK(std::fabs(variance - 1.0 / 12) < 2e-3);
  // Each bin holds count/10 = 20000 +- 134 (one standard deviation); allow 5.
  for (int b = 0; b < 10; ++b) CHECK_MESSAGE(std::abs(bins[b] - count / 10) < 670, "bin " << b << ": " << bins[b]);

  // The largest 24-bit value maps below 1, the smallest to 0.
  CHECK(float(0xffffffu) * (1.0f / 16777216.0f) < 1.f);
}

TEST_CASE("different seeds, streams and indices give different draws") {
  std::set<uint32_t> seen;
  for (uint64_t seed = 0; seed < 4; ++seed)
    for (uint64_t stream = 0; stream < 4; ++stream)
      for (uint64_t index = 0; index < 64; ++index) seen.insert(massmap::random_bits_at(seed, stream, index));
  // 1024 draws of 32 bits: a collision has probability about 1e-4.
  CHECK(seen.size() == 4u * 4u * 64u);
}

TEST_CASE("normal_at has mean 0 and variance 1") {
  const int count = 200000;
  double sum = 0, sum_sq = 0, sum_4 = 0;
  int not_finite = 0;
  for (int i = 0; i < count; ++i) {
    const double z = massmap::normal_at(11, 0, uint64_t(i));
    not_finite += !std::isfinite(z);
    sum += z;
    sum_sq += z * z;
    sum_4 += z * z * z * z;
  }
  REQUIRE(not_finite == 0);
  const double mean = sum / count, variance = sum_sq / count - mean * mean;
  CHECK(std::fabs(mean) < 0.012);               // 5 standard errors (1 / sqrt(count) = 2.2e-3)
  CHECK(std::fabs(variance - 1.0) < 0.016);     // sd of the sample variance: sqrt(2 / count) = 3.2e-3
  CHECK(std::fabs(sum_4 / count - 3.0) < 0.1);  // kurtosis of a normal; sd sqrt(96 / count) = 0.022
}
