// The pectoral muscle of an MLO view: a bright triangle in the upper chest-wall corner, its base along the top
// edge and its side along the chest wall. Its edge is modelled as x(y) = px (1 - s + 4 bulge s (1 - s)) with
// s = y / py (a straight hypotenuse bent by `bulge`), in coordinates with the chest wall at x = 0. The model is
// fitted by searching (px, py, bulge) for the curve with the largest summed step across it, row by row: the
// mean of a band just inside minus the mean of a band just outside, less the inner band's distance from the
// muscle's level in the corner. Summing along the whole edge lets it stand out of dense tissue, where the step is
// small and the texture locally as strong. The search runs on a copy shrunk to about 256 rows, so it costs the
// same for any image size. Rows whose chest-wall cell is not breast give no evidence.
#include <algorithm>
#include <cmath>

#include "data/breast_segmentation_internal.h"
#include "data/regions.h"

namespace massmap::data::segmentation {

namespace {
thread_local int64_t rows_scored_on_this_thread = 0;
}  // namespace

int64_t pectoral_rows_scored() { return rows_scored_on_this_thread; }

namespace {

struct Edge {
  double px = 0, py = 0, bulge = 0;
  double score = -1e300;  // summed row scores
};

// The image shrunk by f in chest-wall-left coordinates, reduced to a table: row_score[y][x] scores an edge
// crossing row y at x, so that a candidate curve costs one lookup per row.
struct Grid {
  int w = 0, h = 0;
  std::vector<double> row_score;    // (h, w + 1); 0 where the row cannot show the edge
  std::vector<uint8_t> counts;      // (h, w + 1) 1 where row_score is a measurement
  mutable int64_t rows_scored = 0;  // rows walked by score()

  double at(int y, int x) const { return row_score[size_t(y) * size_t(w + 1) + size_t(x)]; }

  template <class F>
  void for_rows(double px, double py, double bulge, F&& f) const {
    for (int y = 0; y < h && y < py; ++y) {
      const double s = (y + 0.5) / py;
      const long x = std::lround(px * (1 - s + 4 * bulge * s * (1 - s)));
      if (x >= 1 && x <= w) f(y, int(x));
    }
  }
  Edge score(double px, double py, double bulge) const {
    Edge e{px, py, bulge, 0};
    rows_scored += std::min<int64_t>(h, int64_t(std::ceil(py)));
    for_rows(px, py, bulge, [&](int y, int x) { e.score += at(y, x); });
    return e;
  }
};

Grid build_grid(const Image& image, bool chest_right, const std::vector<uint8_t>& regions, int f) {
  const int W = image.width;
  Grid g;
  g.w = W / f, g.h = image.height / f;
  std::vector<float> cell(size_t(g.w) * size_t(g.h), 0.f);    // (h, w) mean of each f x f block's breast pixels
  std::vector<uint8_t> breast(size_t(g.w) * size_t(g.h), 0);  // (h, w) 1 = block mostly breast
  std::vector<double> acc(size_t(g.w));                       // (w) one block row's sums
  std::vector<int> n(size_t(g.w));                            // (w) and counts
  for (int y = 0; y < g.h; ++y) {
    std::fill(acc.begin(), acc.end(), 0), std::fill(n.begin(), n.end(), 0);
    for (int yy = y * f; yy < (y + 1) * f; ++yy)
      for (int x = 0; x < g.w * f; ++x) {
        const size_t i = size_t(yy) * size_t(W) + size_t(chest_right ? W - 1 - x : x);
        if (regions[i] == kBreast) acc[size_t(x / f)] += image.pixels[i], ++n[size_t(x / f)];
      }
    for (int x = 0; x < g.w; ++x) {
      const size_t c = size_t(y) * size_t(g.w) + size_t(x);
      breast[c] = 2 * n[size_t(x)] >= f * f;
      cell[c] = breast[c] ? float(acc[size_t(x)] / n[size_t(x)]) : 0.f;
    }
  }
  // The muscle's level: the median of the top chest-wall corner (3% of the width square), muscle in any MLO view.
  const int k = std::max(2, g.w / 33);
  std::vector<float> corner;  // (up to k * k) corner cells
  for (int y = 0; y < k && y < g.h; ++y)
    for (int x = 0; x < k; ++x)
      if (breast[size_t(y) * size_t(g.w) + size_t(x)]) corner.push_back(cell[size_t(y) * size_t(g.w) + size_t(x)]);
  if (corner.empty()) return g;
  std::nth_element(corner.begin(), corner.begin() + ptrdiff_t(corner.size() / 2), corner.end());
  const double muscle = corner[corner.size() / 2];

  // Row scores: the step from a band inside to a band outside, less the inside band's distance from the muscle
  // level (texture of dense tissue is as bright as muscle in places, but not one level along a whole edge). The
  // outer band keeps clear of the skin's fall-off (6% of the width), a stronger and longer edge than the muscle's.
  const int band = std::max(2, int(std::lround(0.03 * g.w))), skin = std::max(1, int(std::lround(0.06 * g.w)));
  g.row_score.assign(size_t(g.h) * size_t(g.w + 1), 0);
  g.counts.assign(size_t(g.h) * size_t(g.w + 1), 0);
  std::vector<double> sum(size_t(g.w) + 1);  // (w + 1) prefix sums of one row's cells
  for (int y = 0; y < g.h; ++y) {
    const float* row = cell.data() + size_t(y) * size_t(g.w);
    const uint8_t* in_breast = breast.data() + size_t(y) * size_t(g.w);
    int edge = 0;  // breast cells run from the chest wall to here
    while (edge < g.w && in_breast[edge]) ++edge;
    for (int x = 0; x < g.w; ++x) sum[size_t(x) + 1] = sum[size_t(x)] + row[x];
    for (int x = 1; x + band + skin <= edge; ++x) {
      const int x0 = std::max(0, x - band);
      const double in = (sum[size_t(x)] - sum[size_t(x0)]) / (x - x0);
      const double out = (sum[size_t(x + band)] - sum[size_t(x)]) / band;
      g.row_score[size_t(y) * size_t(g.w + 1) + size_t(x)] = (in - out) - std::fabs(in - muscle);
      g.counts[size_t(y) * size_t(g.w + 1) + size_t(x)] = 1;
    }
  }
  return g;
}

}  // namespace

void mark_pectoral(const Image& image, const Levels& levels, bool chest_right, std::vector<uint8_t>& regions) {
  // About 256 cells along the longer side: a wide, short image must not leave a grid thousands of cells wide.
  const int f = std::max(1, int(std::lround(std::max(image.width, image.height) / 256.0)));
  rows_scored_on_this_thread = 0;
  const Grid g = build_grid(image, chest_right, regions, f);
  if (g.w < 8 || g.h < 8 || g.row_score.empty()) return;

  // Coarse search over the plausible shapes (px 5-80% of the width, py 10-85% of the height), then a fine one
  // around the best.
  Edge best;
  for (double bulge = -0.08; bulge <= 0.2001; bulge += 0.04)
    for (double px = 0.05 * g.w; px <= 0.8 * g.w; px += 2)
      for (double py = 0.1 * g.h; py <= 0.85 * g.h; py += 2) {
        const Edge e = g.score(px, py, bulge);
        if (e.score > best.score) best = e;
      }
  for (const double step : {0.5, 0.125}) {  // two finer searches around the best so far
    const Edge around = best;
    for (double db = -0.04; db <= 0.0401; db += 0.01)
      for (double dx = -4 * step; dx <= 4 * step; dx += step)
        for (double dy = -4 * step; dy <= 4 * step; dy += step) {
          const Edge e = g.score(around.px + dx, around.py + dy, std::clamp(around.bulge + db, -0.08, 0.2));
          if (e.score > best.score) best = e;
        }
  }
  rows_scored_on_this_thread = g.rows_scored;
  // A muscle's edge is a step along many rows: a mean row score of 1% of the tissue-to-air contrast (synth-v1's
  // muscles in dense breasts measured 3%, fatty ones 10-30%).
  int rows = 0;
  g.for_rows(best.px, best.py, best.bulge,
             [&](int y, int x) { rows += g.counts[size_t(y) * size_t(g.w + 1) + size_t(x)]; });
  if (rows < 8 || best.score / rows < 0.01 * (levels.tissue - levels.air)) return;

  const int W = image.width;
  const double px = best.px * f, py = best.py * f;
  for (int y = 0; y < image.height && y < py; ++y) {
    const double s = (y + 0.5) / py, xb = px * (1 - s + 4 * best.bulge * s * (1 - s));
    for (int x = 0; x + 0.5 < xb && x < W; ++x) {
      uint8_t& r = regions[size_t(y) * size_t(W) + size_t(chest_right ? W - 1 - x : x)];
      if (r == kBreast) r = kPectoral;
    }
  }
}

}  // namespace massmap::data::segmentation
