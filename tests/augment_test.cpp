// Augmentation: each transform alone against a closed form (centre crop, flips, quarter turns as plain index
// loops, scale and any rotation on a linear ramp, which bilinear sampling reproduces exactly), geometry carried
// along (a dot lands where the inverse map says, a box's pixels stay inside its mapped outline, the patch centre
// stays in the output), purity in (seed, epoch, index) across threads, the drawn ranges, and the config JSON.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <thread>

#include "base/errors.h"
#include "data/patches.h"
#include "support/check.h"

using namespace massmap;
using namespace massmap::data;

namespace {

constexpr int kIn = 256;

AugmentConfig identity_config(int output) {
  AugmentConfig c;
  c.output = output;
  c.random_crop = false, c.max_translate = 0, c.max_rotation_deg = 0;
  c.flip_horizontal = c.flip_vertical = false;
  c.min_scale = c.max_scale = 1, c.intensity_jitter = 0;
  return c;
}

std::vector<float> augment(const std::vector<float>& in, const AugmentTransform& t, int output, float fill = 0.f) {
  std::vector<float> out(size_t(output) * output);  // (output, output)
  augment_patch(in.data(), kIn, t, output, out.data(), fill);
  return out;
}

// in(x, y) = 3x + 5y + 1 on (kIn, kIn): bilinear interpolation of a linear function is the function itself.
std::vector<float> ramp() {
  std::vector<float> in(size_t(kIn) * kIn);  // (kIn, kIn)
  for (int y = 0; y < kIn; ++y)
    for (int x = 0; x < kIn; ++x) in[size_t(y) * kIn + x] = float(3 * x + 5 * y + 1);
  return in;
}

// Checks out against gain * ramp(apply(u, v)) + offset wherever the sample is inside the input, fill outside.
void check_against_ramp(const AugmentTransform& t, int output, const std::vector<float>& out, float fill) {
  int inside = 0, mismatches = 0;
  for (int v = 0; v < output; ++v)
    for (int u = 0; u < output; ++u) {
      double x, y;
      t.apply(u, v, &x, &y);
      const float got = out[size_t(v) * output + u];
      double want;
      if (x >= 0 && x <= kIn - 1 && y >= 0 && y <= kIn - 1)
        want = t.gain * (3 * x + 5 * y + 1) + t.offset, ++inside;
      else if (x < -1 || x > kIn || y < -1 || y > kIn)
        want = t.gain * fill + t.offset;
      else
        continue;  // the one-pixel rim blends with fill
      mismatches += std::abs(got - want) > 1e-3 * (1 + std::abs(want));
    }
  CHECK(mismatches == 0);
  CHECK(inside > 0);
}

}  // namespace

TEST_CASE("the identity configuration gives the centre crop exactly") {
  const std::vector<float> in = testing_support::random_vector(size_t(kIn) * kIn, 1);  // (kIn, kIn)
  for (int output : {227, 224}) {
    const AugmentTransform t = draw_augmentation(identity_config(output), kIn, 9, 3, 17);
    const std::vector<float> out = augment(in, t, output);
    const int off = (kIn - output) / 2;  // 14 for 227, 16 for 224
    std::vector<float> want(size_t(output) * output);
    for (int v = 0; v < output; ++v)
      for (int u = 0; u < output; ++u) want[size_t(v) * output + u] = in[size_t(v + off) * kIn + u + off];
    CHECK(out == want);
  }
}

TEST_CASE("flips and quarter turns are exact index permutations of the crop") {
  const std::vector<float> in = testing_support::random_vector(size_t(kIn) * kIn, 2);  // (kIn, kIn)
  const int m = 227, cx = 5, cy = 20;
  auto at = [&](int x, int y) { return in[size_t(y) * kIn + x]; };
  struct Case {
    const char* name;
    AugmentParams p;
    std::function<float(int, int)> want;  // (u, v) -> input pixel
  };
  auto params = [&](bool fh, bool fv, double deg) {
    AugmentParams p;
    p.crop_x = cx, p.crop_y = cy, p.flip_horizontal = fh, p.flip_vertical = fv, p.rotation_deg = deg;
    return p;
  };
  const Case cases[] = {
      {"crop", params(false, false, 0), [&](int u, int v) { return at(cx + u, cy + v); }},
      {"flip h", params(true, false, 0), [&](int u, int v) { return at(cx + m - 1 - u, cy + v); }},
      {"flip v", params(false, true, 0), [&](int u, int v) { return at(cx + u, cy + m - 1 - v); }},
      {"rot 90", params(false, false, 90), [&](int u, int v) { return at(cx + m - 1 - v, cy + u); }},
      {"rot -90", params(false, false, -90), [&](int u, int v) { return at(cx + v, cy + m - 1 - u); }},
      {"rot 180", params(false, false, 180), [&](int u, int v) { return at(cx + m - 1 - u, cy + m - 1 - v); }},
      {"rot 450", params(false, false, 450), [&](int u, int v) { return at(cx + m - 1 - v, cy + u); }},
      {"flip h + rot -90 = transpose", params(true, false, -90), [&](int u, int v) { return at(cx + v, cy + u); }},
  };
  for (const Case& c : cases) {
    const std::vector<float> out = augment(in, compose_augmentation(c.p, m), m);
    int mismatches = 0;
    for (int v = 0; v < m; ++v)
      for (int u = 0; u < m; ++u) mismatches += out[size_t(v) * m + u] != c.want(u, v);
    INFO(c.name);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("scale, translation, rotation by any angle and intensity against the closed form on a ramp") {
  const std::vector<float> in = ramp();
  const int m = 227;
  for (double scale : {0.9, 1.0, 1.5, 2.0}) {
    AugmentParams p;
    p.crop_x = p.crop_y = 14, p.scale = scale;
    const AugmentTransform t = compose_augmentation(p, m);
    // Closed form: x = (u - c) / scale + c + 14 with c = 113.
    double x, y;
    t.apply(0, 226, &x, &y);
    CHECK(x == doctest::Approx(-113 / scale + 127));
    CHECK(y == doctest::Approx(113 / scale + 127));
    check_against_ramp(t, m, augment(in, t, m, -3.f), -3.f);
  }
  AugmentConfig c;  // the default configuration: every transform at once
  for (int64_t index = 0; index < 6; ++index) {
    const AugmentTransform t = draw_augmentation(c, kIn, 77, 2, index);
    check_against_ramp(t, m, augment(in, t, m, -3.f), -3.f);
  }
}

TEST_CASE("a marked dot lands where the inverse map puts it; a box keeps its pixels inside its mapped outline") {
  AugmentConfig c;
  c.intensity_jitter = 0;
  const int m = c.output;
  for (int64_t index = 0; index < 20; ++index) {
    const AugmentTransform t = draw_augmentation(c, kIn, 5, 0, index);
    // A Gaussian dot (sigma 1.5) near the centre, where the mass is.
    const double px = 100 + 3 * double(index), py = 150 - 2.5 * double(index);
    std::vector<float> dot(size_t(kIn) * kIn);  // (kIn, kIn)
    for (int y = 0; y < kIn; ++y)
      for (int x = 0; x < kIn; ++x)
        dot[size_t(y) * kIn + x] = float(std::exp(-((x - px) * (x - px) + (y - py) * (y - py)) / (2 * 1.5 * 1.5)));
    const std::vector<float> out = augment(dot, t, m);
    double sw = 0, su = 0, sv = 0;
    for (int v = 0; v < m; ++v)
      for (int u = 0; u < m; ++u) {
        const double w = out[size_t(v) * m + u];
        sw += w, su += w * u, sv += w * v;
      }
    double eu, ev;
    t.unapply(px, py, &eu, &ev);
    INFO("index " << index << ": dot at (" << su / sw << ", " << sv / sw << "), expected (" << eu << ", " << ev << ")");
    CHECK(std::abs(su / sw - eu) < 0.25);
    CHECK(std::abs(sv / sw - ev) < 0.25);

    // A box covering pixels x 90..139, y 110..149 (continuous extent [89.5, 139.5] x [109.5, 149.5]).
    std::vector<float> box(size_t(kIn) * kIn, 0.f);  // (kIn, kIn)
    for (int y = 110; y < 150; ++y)
      for (int x = 90; x < 140; ++x) box[size_t(y) * kIn + x] = 1.f;
    const std::vector<float> ob = augment(box, t, m);
    double lo_u = 1e9, hi_u = -1e9, lo_v = 1e9, hi_v = -1e9;  // the mapped outline's bounds
    for (double x : {89.5, 139.5})
      for (double y : {109.5, 149.5}) {
        double u, v;
        t.unapply(x, y, &u, &v);
        lo_u = std::min(lo_u, u), hi_u = std::max(hi_u, u), lo_v = std::min(lo_v, v), hi_v = std::max(hi_v, v);
      }
    int bad = 0, lit = 0;
    for (int v = 0; v < m; ++v)
      for (int u = 0; u < m; ++u) {
        double x, y;
        t.apply(u, v, &x, &y);
        const float got = ob[size_t(v) * m + u];
        lit += got > 0.5f;
        if (x >= 90 && x <= 139 && y >= 110 && y <= 149)
          bad += std::abs(got - 1.f) > 1e-6f;                            // all four neighbours inside
        if (x < 89 || x > 140 || y < 109 || y > 150) bad += got != 0.f;  // none inside
        if (got > 0 && (u < lo_u - 1 || u > hi_u + 1 || v < lo_v - 1 || v > hi_v + 1)) ++bad;
      }
    CHECK(bad == 0);
    CHECK(lit > 1000);
  }
}

TEST_CASE("with the default budget the patch centre (the mass) always lands inside the output") {
  for (int output : {227, 224}) {
    AugmentConfig c;
    c.output = output;
    const double centre = (kIn - 1) / 2.0, oc = (output - 1) / 2.0;
    // Offset budget: half the crop slack plus the translation, each axis, magnified by at most max_scale.
    const double budget =
        std::hypot((kIn - output) / 2.0 + 0.5 + c.max_translate, (kIn - output) / 2.0 + 0.5 + c.max_translate) *
        c.max_scale;
    double worst = 0;
    for (int64_t index = 0; index < 5000; ++index) {
      const AugmentTransform t = draw_augmentation(c, kIn, 3, index % 7, index);
      double u, v;
      t.unapply(centre, centre, &u, &v);
      REQUIRE(u >= 0);
      REQUIRE(u <= output - 1);
      REQUIRE(v >= 0);
      REQUIRE(v <= output - 1);
      worst = std::max(worst, std::hypot(u - oc, v - oc));
    }
    CHECK(worst <= budget);
  }
}

TEST_CASE("draws cover their ranges and are a pure function of (seed, epoch, index)") {
  const AugmentConfig c;
  int flips_h = 0, flips_v = 0, crop_min = 999, crop_max = -1;
  double rot_min = 1e9, rot_max = -1e9, scale_min = 9, scale_max = 0, gain_min = 9, gain_max = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const AugmentParams p = draw_augment_params(c, kIn, 8, 1, i);
    flips_h += p.flip_horizontal, flips_v += p.flip_vertical;
    crop_min = std::min({crop_min, p.crop_x, p.crop_y}), crop_max = std::max({crop_max, p.crop_x, p.crop_y});
    rot_min = std::min(rot_min, p.rotation_deg), rot_max = std::max(rot_max, p.rotation_deg);
    scale_min = std::min(scale_min, p.scale), scale_max = std::max(scale_max, p.scale);
    gain_min = std::min(gain_min, p.gain), gain_max = std::max(gain_max, p.gain);
    CHECK(std::abs(p.translate_x) <= c.max_translate);
    CHECK(std::abs(p.offset) <= c.intensity_jitter);
  }
  const double sd = std::sqrt(n * 0.25);
  CHECK(std::abs(flips_h - n / 2) < 4 * sd);
  CHECK(std::abs(flips_v - n / 2) < 4 * sd);
  CHECK(crop_min == 0);
  CHECK(crop_max == kIn - c.output);
  CHECK(rot_min < -175);
  CHECK(rot_max > 175);
  CHECK(scale_min >= c.min_scale);
  CHECK(scale_max <= c.max_scale);
  CHECK(gain_min >= 1 - c.intensity_jitter);
  CHECK(gain_max <= 1 + c.intensity_jitter);

  auto same = [](const AugmentTransform& a, const AugmentTransform& b) {
    return a.a00 == b.a00 && a.a01 == b.a01 && a.a10 == b.a10 && a.a11 == b.a11 && a.tx == b.tx && a.ty == b.ty &&
           a.gain == b.gain && a.offset == b.offset;
  };
  const AugmentTransform t = draw_augmentation(c, kIn, 8, 1, 5);
  CHECK(same(t, draw_augmentation(c, kIn, 8, 1, 5)));
  CHECK_FALSE(same(t, draw_augmentation(c, kIn, 8, 2, 5)));  // next epoch
  CHECK_FALSE(same(t, draw_augmentation(c, kIn, 8, 1, 6)));  // next sample
  CHECK_FALSE(same(t, draw_augmentation(c, kIn, 9, 1, 5)));  // other seed
}

TEST_CASE("two threads in opposite orders produce the same augmented patches") {
  const AugmentConfig c;
  const int m = c.output, n = 24;
  const std::vector<float> in = testing_support::random_vector(size_t(kIn) * kIn, 3);  // (kIn, kIn)
  auto run = [&](int i) { return augment(in, draw_augmentation(c, kIn, 21, 4, i), m); };
  std::vector<std::vector<float>> serial(n), a(n), b(n);  // n x (m, m)
  for (int i = 0; i < n; ++i) serial[i] = run(i);
  std::thread forward([&] {
    for (int i = 0; i < n; ++i) a[i] = run(i);
  });
  std::thread backward([&] {
    for (int i = n - 1; i >= 0; --i) b[i] = run(i);
  });
  forward.join(), backward.join();
  for (int i = 0; i < n; ++i) {
    CHECK(a[i] == serial[i]);
    CHECK(b[i] == serial[i]);
  }
}

TEST_CASE("AugmentConfig JSON and validation") {
  AugmentConfig c;
  c.output = 224, c.random_crop = false, c.max_rotation_deg = 30, c.min_scale = 0.8;
  CHECK(AugmentConfig::from_json(c.to_json()).to_json() == c.to_json());
  CHECK_THROWS_WITH_AS(AugmentConfig::from_json({{"rotation", 3}}), doctest::Contains("'rotation'"), BadConfig);
  CHECK_THROWS_WITH_AS(AugmentConfig::from_json({{"flip_vertical", 1}}), doctest::Contains("augment.flip_vertical"),
                       BadConfig);
  CHECK_THROWS_AS(AugmentConfig::from_json({{"min_scale", 1.2}, {"max_scale", 1.1}}), BadConfig);
  CHECK_THROWS_AS(AugmentConfig::from_json({{"max_rotation_deg", 200}}), BadConfig);
  CHECK_THROWS_WITH_AS(draw_augmentation(AugmentConfig{}, 200, 1, 0, 0), doctest::Contains("smaller"), BadConfig);
}
