// Training-time augmentation (the paper's "cropping, translation, rotation, flipping and scaling"): one affine map
// per sample from output pixels to input patch pixels, drawn from Philox at (seed, epoch, index) so a batch is the
// same whatever thread builds it, and a resumed run sees exactly the samples it would have seen.
#include <algorithm>
#include <cmath>

#include "base/errors.h"
#include "base/philox.h"
#include "data/json_fields.h"
#include "data/patches.h"

namespace massmap::data {

namespace {

constexpr uint64_t kAugmentTag = uint64_t(0xA7) << 56;
enum Field : uint64_t { kCropX, kCropY, kTranslateX, kTranslateY, kRotation, kFlipH, kFlipV, kScale, kGain, kOffset };
constexpr uint64_t kDrawsPerSample = 16;  // room for new fields without moving the old ones

// cos and sin of an angle in degrees, exact at multiples of 90 (std::cos(pi / 2) is 6e-17, which would turn a
// quarter turn's integer sample positions into interpolations).
void cos_sin_deg(double deg, double* c, double* s) {
  const double quarters = deg / 90;
  if (quarters == std::floor(quarters)) {
    const int k = int(std::fmod(std::fmod(quarters, 4) + 4, 4));
    const double cs[4] = {1, 0, -1, 0}, sn[4] = {0, 1, 0, -1};
    *c = cs[k], *s = sn[k];
    return;
  }
  const double rad = deg * 3.14159265358979323846 / 180;
  *c = std::cos(rad), *s = std::sin(rad);
}

}  // namespace

void AugmentTransform::unapply(double x, double y, double* u, double* v) const {
  const double det = a00 * a11 - a01 * a10, dx = x - tx, dy = y - ty;
  *u = (a11 * dx - a01 * dy) / det;
  *v = (-a10 * dx + a00 * dy) / det;
}

AugmentParams draw_augment_params(const AugmentConfig& config, int input_size, uint64_t seed, int64_t epoch,
                                  int64_t index) {
  config.validate();
  if (input_size < config.output)
    throw BadConfig("augment: input patch " + std::to_string(input_size) + " is smaller than the output " +
                    std::to_string(config.output));
  const uint64_t s = kAugmentTag | (uint64_t(epoch) & ((uint64_t(1) << 56) - 1));
  auto u = [&](Field f) { return double(uniform_at(seed, s, uint64_t(index) * kDrawsPerSample + f)); };
  auto symmetric = [&](Field f, double half) { return half * (2 * u(f) - 1); };  // uniform in [-half, half)
  AugmentParams p;
  const int slack = input_size - config.output;
  if (config.random_crop) {
    p.crop_x = std::min(slack, int(u(kCropX) * (slack + 1)));
    p.crop_y = std::min(slack, int(u(kCropY) * (slack + 1)));
  } else {
    p.crop_x = p.crop_y = slack / 2;
  }
  p.translate_x = symmetric(kTranslateX, config.max_translate);
  p.translate_y = symmetric(kTranslateY, config.max_translate);
  p.rotation_deg = symmetric(kRotation, config.max_rotation_deg);
  p.flip_horizontal = config.flip_horizontal && u(kFlipH) < 0.5;
  p.flip_vertical = config.flip_vertical && u(kFlipV) < 0.5;
  p.scale = config.min_scale + (config.max_scale - config.min_scale) * u(kScale);
  p.gain = 1 + symmetric(kGain, config.intensity_jitter);
  p.offset = symmetric(kOffset, config.intensity_jitter);
  return p;
}

AugmentTransform compose_augmentation(const AugmentParams& p, int output) {
  if (!(p.scale > 0)) throw BadConfig("augment: scale must be positive, got " + std::to_string(p.scale));
  double c, s;
  cos_sin_deg(p.rotation_deg, &c, &s);
  // A = R(theta) F / scale, applied to offsets from the output's centre; columns of F negate u and/or v.
  const double fu = p.flip_horizontal ? -1 : 1, fv = p.flip_vertical ? -1 : 1, k = 1 / p.scale;
  AugmentTransform t;
  t.a00 = c * fu * k, t.a01 = -s * fv * k;
  t.a10 = s * fu * k, t.a11 = c * fv * k;
  // The output's centre (pixel-centre coordinates) lands on the crop's centre moved by the translation.
  const double centre = (output - 1) / 2.0;
  const double target_x = centre + p.crop_x + p.translate_x, target_y = centre + p.crop_y + p.translate_y;
  t.tx = target_x - (t.a00 * centre + t.a01 * centre);
  t.ty = target_y - (t.a10 * centre + t.a11 * centre);
  t.gain = p.gain, t.offset = p.offset;
  return t;
}

AugmentTransform draw_augmentation(const AugmentConfig& config, int input_size, uint64_t seed, int64_t epoch,
                                   int64_t index) {
  return compose_augmentation(draw_augment_params(config, input_size, seed, epoch, index), config.output);
}

void augment_patch(const float* patch, int input_size, const AugmentTransform& t, int output, float* out, float fill) {
  // patch (input_size, input_size), out (output, output)
  const int n = input_size;
  auto at = [&](int x, int y) { return x >= 0 && x < n && y >= 0 && y < n ? patch[size_t(y) * n + x] : fill; };
  for (int v = 0; v < output; ++v)
    for (int u = 0; u < output; ++u) {
      double x, y;
      t.apply(u, v, &x, &y);
      // Far outside: skip the int conversion, which would overflow for absurd transforms. Inside, floor by
      // conversion (std::floor is a library call in a portable x86-64 build, the largest cost of this loop).
      float value = fill;
      if (x >= -1 && x < n + 1 && y >= -1 && y < n + 1) {
        const int xi = int(x) - (x < double(int(x))), yi = int(y) - (y < double(int(y)));
        const double x0 = xi, y0 = yi;
        const float fx = float(x - x0), fy = float(y - y0);
        // A zero weight times a finite neighbour adds exactly 0: integer positions copy pixels bit-exactly.
        float top, bottom;
        if (xi >= 0 && yi >= 0 && xi + 1 < n && yi + 1 < n) {  // all four neighbours inside: no checks (most pixels)
          const float* p = patch + size_t(yi) * n + xi;
          top = (1 - fx) * p[0] + fx * p[1];
          bottom = (1 - fx) * p[n] + fx * p[n + 1];
        } else {
          top = (1 - fx) * at(xi, yi) + fx * at(xi + 1, yi);
          bottom = (1 - fx) * at(xi, yi + 1) + fx * at(xi + 1, yi + 1);
        }
        value = (1 - fy) * top + fy * bottom;
      }
      out[size_t(v) * output + u] = float(t.gain * value + t.offset);
    }
}

nlohmann::json AugmentConfig::to_json() const {
  return {{"output", output},
          {"random_crop", random_crop},
          {"max_translate", max_translate},
          {"max_rotation_deg", max_rotation_deg},
          {"flip_horizontal", flip_horizontal},
          {"flip_vertical", flip_vertical},
          {"min_scale", min_scale},
          {"max_scale", max_scale},
          {"intensity_jitter", intensity_jitter}};
}

AugmentConfig AugmentConfig::from_json(const nlohmann::json& j) {
  namespace f = json_fields;
  const std::string where = "augment";
  f::require_object(j, where);
  AugmentConfig c;
  for (const auto& [key, v] : j.items()) {
    if (key == "output")
      c.output = f::integer(v, where, key);
    else if (key == "random_crop")
      c.random_crop = f::boolean(v, where, key);
    else if (key == "max_translate")
      c.max_translate = f::integer(v, where, key);
    else if (key == "max_rotation_deg")
      c.max_rotation_deg = f::number(v, where, key);
    else if (key == "flip_horizontal")
      c.flip_horizontal = f::boolean(v, where, key);
    else if (key == "flip_vertical")
      c.flip_vertical = f::boolean(v, where, key);
    else if (key == "min_scale")
      c.min_scale = f::number(v, where, key);
    else if (key == "max_scale")
      c.max_scale = f::number(v, where, key);
    else if (key == "intensity_jitter")
      c.intensity_jitter = f::number(v, where, key);
    else
      f::unknown_key(where, key,
                     "output, random_crop, max_translate, max_rotation_deg, flip_horizontal, flip_vertical, "
                     "min_scale, max_scale, intensity_jitter");
  }
  c.validate();
  return c;
}

void AugmentConfig::validate() const {
  auto fail = [](const std::string& what) { throw BadConfig("augment." + what); };
  if (output < 1) fail("output must be >= 1, got " + std::to_string(output));
  if (max_translate < 0) fail("max_translate must be >= 0, got " + std::to_string(max_translate));
  if (!(max_rotation_deg >= 0 && max_rotation_deg <= 180))
    fail("max_rotation_deg must be in [0, 180], got " + std::to_string(max_rotation_deg));
  if (!(min_scale > 0 && min_scale <= max_scale && std::isfinite(max_scale)))
    fail("scale range must satisfy 0 < min_scale <= max_scale, got [" + std::to_string(min_scale) + ", " +
         std::to_string(max_scale) + "]");
  if (!(intensity_jitter >= 0 && intensity_jitter < 1))
    fail("intensity_jitter must be in [0, 1), got " + std::to_string(intensity_jitter));
}

}  // namespace massmap::data
