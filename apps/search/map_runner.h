#pragma once
// A fully convolutional net over whole images: the plane is padded by half a crop on every side with a fill value
// (so cell centres cover every pixel), the net's input is rounded up to a size bucket (crop + a multiple of
// bucket_cells strides, so images of similar size share one compiled schedule), and the map is cut back to the
// cells the plane needs. With shift N (shift-and-stitch), N x N passes over inputs shifted by stride / N pixels are
// interleaved into one map at stride / N. With V views (test-time augmentation) the map is the mean of the maps of
// the plane mirrored and transposed (V = 2: and mirrored left-right; 4: every mirror; 8: the mirrors of the plane and
// of its transpose), each view padded so that its cells fall on the same plane pixels as the plain map's.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/device.h"
#include "engine/executor.h"
#include "engine/graph.h"

namespace massmap::search {

struct MapOptions {
  Device device = Device::cpu;
  int shift = 1;         // shift-and-stitch factor N; must divide the net's stride
  int bucket_cells = 4;  // net inputs are crop + k * bucket_cells * stride (k >= 0) along each axis
  int views = 1;         // 1, 2, 4 or 8 mirrored / transposed views averaged (8 needs a square crop and stride)
};

// One axis of a map over a plane, in the plane's own pixel coordinates (pixel p's centre at p).
struct PlaneAxis {
  int64_t net_stride = 1;                  // the net's stride
  int64_t stride = 1;                      // between neighbouring map cells: net_stride / shift
  int64_t crop = 0;                        // the classifier's input extent each cell stands for
  int64_t pad = 0;                         // half a crop: fill before the plane's first pixel
  double first = 0;                        // centre of cell 0: (crop - 1) / 2 - pad
  int64_t field_begin = 0, field_end = 0;  // cell 0's theoretical receptive field [begin, end)
  int64_t cells = 0;                       // cells in the map
  int64_t input = 0;                       // the net's input extent (padded and bucketed)
  double centre(int64_t i) const { return first + double(i * stride); }
  int64_t crop_begin(int64_t i) const { return i * stride - pad; }  // cell i's crop [begin, begin + crop)
};

struct PlaneGeometry {
  PlaneAxis y, x;
  int shift = 1;
  int views = 1;  // mirrored / transposed views averaged
};

struct PlaneMap {
  PlaneGeometry geometry;
  int64_t classes = 0;
  std::vector<float> prob;     // (classes, geometry.y.cells, geometry.x.cells)
  int64_t arena_bytes = 0;     // the schedule's shared activation arena
  int64_t unshared_bytes = 0;  // the same activations, each in its own buffer
  int64_t own_bytes = 0;       // what lives outside the arena: parameters, the input, the map
  int passes = 0;              // forward passes: shift^2 per view
};

// The cells along an axis of `length` plane pixels: the fewest, from cell 0 (centre (crop - 1) / 2 - crop / 2) on,
// that put every pixel within half a stride of a cell centre.
int64_t cells_for(int64_t length, int64_t crop, int64_t stride);

class MapRunner {
 public:
  // fcn: a fully convolutional graph (convolutionalize recorded its crop) with one (1, C, H, W) image input.
  // load_parameters fills the parameters of each executor the runner compiles (one per input size).
  MapRunner(Graph fcn, std::function<void(Executor&)> load_parameters, MapOptions options);
  ~MapRunner();

  // The map of a (C, height, width) plane padded with `fill`, averaged over the options' views.
  PlaneMap run(const std::vector<float>& plane, int64_t height, int64_t width, float fill);
  // The classifier on one crop: a (C, crop height, crop width) input gives the map's single cell, (K) class
  // probabilities. BadInput when the input is not crop-sized.
  std::vector<float> classify_crop(const std::vector<float>& crop);
  // Geometry only (no forward pass): what run() gives for a plane of this size.
  PlaneGeometry geometry(int64_t height, int64_t width) const;

  const Graph& graph() const { return fcn_; }
  int64_t channels() const;
  // Compiles (or finds) the executor for a net input of this size; the first call checks the parameters.
  Executor& executor(int64_t input_height, int64_t input_width);

 private:
  PlaneMap run_view(const std::vector<float>& plane, int64_t height, int64_t width, float fill);

  Graph fcn_;
  std::function<void(Executor&)> load_;
  MapOptions options_;
  std::string map_value_;
  int64_t stride_y_ = 1, stride_x_ = 1, field_begin_y_ = 0, field_end_y_ = 0, field_begin_x_ = 0, field_end_x_ = 0;
  struct Compiled {
    int64_t height, width;
    std::unique_ptr<Executor> executor;
  };
  std::vector<Compiled> cache_;  // most recently used last; at most two sizes kept
};

}  // namespace massmap::search
