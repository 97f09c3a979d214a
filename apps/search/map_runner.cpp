#include "apps/search/map_runner.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "base/errors.h"
#include "engine/map_geometry.h"
#include "engine/passes.h"

namespace massmap::search {

int64_t cells_for(int64_t length, int64_t crop, int64_t stride) {
  const double first = double(crop - 1) / 2 - double(crop / 2);
  // Last centre first + (n - 1) stride >= length - 1 - stride / 2.
  const double need = (double(length - 1) - first) / double(stride) - 0.5;
  return std::max<int64_t>(1, int64_t(std::ceil(need - 1e-9)) + 1);
}

MapRunner::MapRunner(Graph fcn, std::function<void(Executor&)> load_parameters, MapOptions options)
    : fcn_(std::move(fcn)), load_(std::move(load_parameters)), options_(options) {
  const MapGeometry m = map_geometry(fcn_);  // BadConfig when fcn is not fully convolutional
  map_value_ = m.map;
  stride_y_ = m.y.stride;
  stride_x_ = m.x.stride;
  field_begin_y_ = m.y.field_begin;
  field_end_y_ = m.y.field_end;
  field_begin_x_ = m.x.field_begin;
  field_end_x_ = m.x.field_end;
  const int n = options_.shift;
  if (n < 1 || stride_y_ % n != 0 || stride_x_ % n != 0)
    throw BadConfig("--shift " + std::to_string(n) + " does not divide the map's stride " + std::to_string(stride_y_) +
                    " x " + std::to_string(stride_x_) + " (take a divisor: 1, 2, 4, ...)");
  if (options_.bucket_cells < 1) throw BadConfig("bucket_cells must be at least 1");
  const int v = options_.views;
  if (v != 1 && v != 2 && v != 4 && v != 8)
    throw BadConfig("--views " + std::to_string(v) +
                    ": take 1, 2 (mirrored left-right), 4 (every mirror) or 8 (and "
                    "transposed)");
  if (v == 8 && (fcn_.crop[0] != fcn_.crop[1] || stride_y_ != stride_x_))
    throw BadConfig("--views 8 transposes the image: it needs a square crop and stride, not a crop of " +
                    std::to_string(fcn_.crop[0]) + " x " + std::to_string(fcn_.crop[1]) + " at stride " +
                    std::to_string(stride_y_) + " x " + std::to_string(stride_x_) + " (take --views 4)");
  if (fcn_.value(image_input(fcn_)).shape[0] != 1) fcn_ = with_batch(fcn_, 1);
}

MapRunner::~MapRunner() = default;

int64_t MapRunner::channels() const {
  return fcn_.value(image_input(fcn_)).shape[1];
}

PlaneGeometry MapRunner::geometry(int64_t height, int64_t width) const {
  const int n = options_.shift;
  auto axis = [&](int64_t length, int64_t crop, int64_t net_stride, int64_t begin, int64_t end) {
    PlaneAxis a;
    a.net_stride = net_stride;
    a.stride = net_stride / n;
    a.crop = crop;
    a.pad = crop / 2;
    a.first = double(crop - 1) / 2 - double(a.pad);
    a.field_begin = begin - a.pad;
    a.field_end = end - a.pad;
    a.cells = cells_for(length, crop, a.stride);
    // Each pass computes ceil(cells / n) cells of its own: 1 + k * bucket cells with the smallest k that suffices.
    const int64_t per_pass = (a.cells + n - 1) / n, bucket = options_.bucket_cells;
    a.input = crop + (per_pass - 1 + bucket - 1) / bucket * bucket * net_stride;
    return a;
  };
  PlaneGeometry g;
  g.shift = n;
  g.views = options_.views;
  g.y = axis(height, fcn_.crop[0], stride_y_, field_begin_y_, field_end_y_);
  g.x = axis(width, fcn_.crop[1], stride_x_, field_begin_x_, field_end_x_);
  return g;
}

Executor& MapRunner::executor(int64_t input_height, int64_t input_width) {
  for (size_t i = 0; i < cache_.size(); ++i)
    if (cache_[i].height == input_height && cache_[i].width == input_width) {
      std::rotate(cache_.begin() + ptrdiff_t(i), cache_.begin() + ptrdiff_t(i) + 1, cache_.end());
      return *cache_.back().executor;
    }
  if (cache_.size() >= 2) cache_.erase(cache_.begin());  // frees the least recently used arena first
  ExecutorOptions eo;
  eo.device = options_.device;
  auto ex = std::make_unique<Executor>(with_input_size(fcn_, input_height, input_width), eo);
  load_(*ex);
  cache_.push_back({input_height, input_width, std::move(ex)});
  return *cache_.back().executor;
}

std::vector<float> MapRunner::classify_crop(const std::vector<float>& crop) {
  const int64_t c = channels(), h = fcn_.crop[0], w = fcn_.crop[1];
  if (int64_t(crop.size()) != c * h * w)
    throw BadInput("classify_crop: " + std::to_string(crop.size()) + " values are not a " + std::to_string(c) + " x " +
                   std::to_string(h) + " x " + std::to_string(w) + " crop");
  Executor& ex = executor(h, w);
  ex.set_input(fcn_.value(image_input(fcn_)).name, Tensor::from({1, c, h, w}, crop));
  ex.forward(RunContext{});
  return ex.read(map_value_).to_vector();  // (1, K, 1, 1)
}

namespace {

// The extent a mirrored axis is padded to so that the mirror image of cell i's centre is the centre of cell
// last - i of the mirrored plane's map: centre(i) = first + i stride and length - 1 - centre(i) = centre(last - i)
// give length - 1 - 2 first = last stride, with last >= cells - 1 so that every cell has its mirror.
int64_t mirror_extent(const PlaneAxis& a, int64_t length) {
  const int64_t twice_first = a.crop - 1 - 2 * a.pad;  // 0 for an odd crop, -1 for an even one
  const int64_t last = std::max(a.cells - 1, (length - 1 - twice_first + a.stride - 1) / a.stride);
  return last * a.stride + 1 + twice_first;
}

}  // namespace

PlaneMap MapRunner::run(const std::vector<float>& plane, int64_t height, int64_t width, float fill) {
  const int64_t c = channels();
  if (height < 1 || width < 1 || int64_t(plane.size()) != c * height * width)
    throw BadInput("map: a plane of " + std::to_string(plane.size()) + " values is not " + std::to_string(c) + " x " +
                   std::to_string(height) + " x " + std::to_string(width));
  PlaneMap out = run_view(plane, height, width, fill);
  if (options_.views == 1) return out;
  const PlaneAxis &gy = out.geometry.y, &gx = out.geometry.x;
  // The views' plane: the plane padded with fill to the mirror extents, (C, ph, pw).
  const int64_t ph = mirror_extent(gy, height), pw = mirror_extent(gx, width);
  std::vector<float> padded(size_t(c * ph * pw), fill);  // (C, ph, pw)
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t r = 0; r < height; ++r)
      std::copy_n(plane.begin() + (ch * height + r) * width, width, padded.begin() + (ch * ph + r) * pw);
  const int64_t last_y = (ph - 1 - (gy.crop - 1 - 2 * gy.pad)) / gy.stride,
                last_x = (pw - 1 - (gx.crop - 1 - 2 * gx.pad)) / gx.stride;
  for (int view = 1; view < options_.views; ++view) {
    const bool mirror_x = view & 1, mirror_y = view & 2, transpose = view & 4;
    // The view, (C, vh, vw): its pixel (r, q) is the padded plane's (y, x) below.
    const int64_t vh = transpose ? pw : ph, vw = transpose ? ph : pw;
    std::vector<float> image(padded.size());  // (C, vh, vw)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t r = 0; r < vh; ++r)
        for (int64_t q = 0; q < vw; ++q) {
          int64_t y = transpose ? q : r, x = transpose ? r : q;
          if (mirror_y) y = ph - 1 - y;
          if (mirror_x) x = pw - 1 - x;
          image[size_t((ch * vh + r) * vw + q)] = padded[size_t((ch * ph + y) * pw + x)];
        }
    const PlaneMap m = run_view(image, vh, vw, fill);
    const int64_t mh = m.geometry.y.cells, mw = m.geometry.x.cells;
    for (int64_t k = 0; k < out.classes; ++k)
      for (int64_t i = 0; i < gy.cells; ++i)
        for (int64_t j = 0; j < gx.cells; ++j) {
          const int64_t a = mirror_y ? last_y - i : i, b = mirror_x ? last_x - j : j;
          const int64_t r = transpose ? b : a, q = transpose ? a : b;
          if (r >= mh || q >= mw) throw std::logic_error("map view: cell outside the mirrored map");
          out.prob[size_t((k * gy.cells + i) * gx.cells + j)] += m.prob[size_t((k * mh + r) * mw + q)];
        }
    out.passes += m.passes;
    out.arena_bytes = std::max(out.arena_bytes, m.arena_bytes);
    out.unshared_bytes = std::max(out.unshared_bytes, m.unshared_bytes);
    out.own_bytes = std::max(out.own_bytes, m.own_bytes);
  }
  for (float& p : out.prob) p /= float(options_.views);
  return out;
}

PlaneMap MapRunner::run_view(const std::vector<float>& plane, int64_t height, int64_t width, float fill) {
  const int64_t c = channels();
  PlaneMap out;
  out.geometry = geometry(height, width);
  const PlaneAxis &gy = out.geometry.y, &gx = out.geometry.x;
  const int n = options_.shift;
  // The canvas: the plane at (pad, pad), fill elsewhere, large enough for the last shifted window.
  const int64_t canvas_h = std::max(gy.input + (n - 1) * gy.stride, gy.pad + height);
  const int64_t canvas_w = std::max(gx.input + (n - 1) * gx.stride, gx.pad + width);
  std::vector<float> canvas(size_t(c * canvas_h * canvas_w), fill);  // (C, canvas_h, canvas_w)
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t r = 0; r < height; ++r)
      std::copy_n(plane.begin() + (ch * height + r) * width, width,
                  canvas.begin() + (ch * canvas_h + gy.pad + r) * canvas_w + gx.pad);

  Executor& ex = executor(gy.input, gx.input);
  out.arena_bytes = ex.arena_bytes();
  out.unshared_bytes = ex.unshared_bytes();
  for (ValueId v = 0; v < ex.graph().num_values(); ++v)  // inputs, parameters and the map have their own buffers
    if (ex.graph().value(v).kind != ValueKind::activation || ex.graph().value(v).name == map_value_)
      out.own_bytes += shape_numel(ex.graph().value(v).shape) * int64_t(sizeof(float));
  Tensor x({1, c, gy.input, gx.input});  // one shifted window of the canvas
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b) {
      const int64_t dy = a * gy.stride, dx = b * gx.stride;
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t r = 0; r < gy.input; ++r)
          std::copy_n(canvas.begin() + (ch * canvas_h + dy + r) * canvas_w + dx, gx.input,
                      x.data() + (ch * gy.input + r) * gx.input);
      ex.set_input(fcn_.value(image_input(fcn_)).name, x);
      ex.forward(RunContext{});
      const Tensor prob = ex.read(map_value_);  // (1, K, h, w) at the net's stride
      const int64_t k = prob.dim(1), h = prob.dim(2), w = prob.dim(3);
      if (out.prob.empty()) {
        out.classes = k;
        out.prob.assign(size_t(k * gy.cells * gx.cells), 0.f);
      }
      // Cell (i, j) of pass (a, b) is stitched cell (i n + a, j n + b).
      for (int64_t kk = 0; kk < k; ++kk)
        for (int64_t i = 0; i * n + a < gy.cells && i < h; ++i)
          for (int64_t j = 0; j * n + b < gx.cells && j < w; ++j)
            out.prob[size_t((kk * gy.cells + i * n + a) * gx.cells + j * n + b)] = prob.at((kk * h + i) * w + j);
      ++out.passes;
    }
  return out;
}

}  // namespace massmap::search
