#pragma once
// Training batches from a dataset: the patch set (every image prepared once through the mmap cache, its patches
// sampled once) and a background loader whose worker threads cut, augment and pack patches into batches.
//
// Batch b of epoch e is a pure function of (seed, e, b): sample k of the epoch is patch order(e)[k] (a seeded
// shuffle per epoch), augmented by draw_augmentation(seed, e, k). Workers claim batches in order and the loader
// hands them out in order, so neither the number of workers nor their timing changes a batch, and resuming at
// (e, b) continues exactly. At most `queue_batches` batches are ready or in flight ahead of the consumer, which
// bounds memory.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/worker_threads.h"
#include "data/dataset.h"
#include "data/patches.h"
#include "data/prepared_cache.h"
#include "data/preprocess.h"

namespace massmap::data {

struct PatchSetOptions {
  PreprocessConfig preprocess;
  PatchConfig patches;
  std::string cache_dir;  // where prepared images are kept (created when missing)
  uint64_t seed = 1;      // patch sampling seed
  int threads = 1;        // threads preparing images
  bool progress = true;   // a progress bar (or log lines) while preparing
  bool skip_bad = false;  // an image that cannot be read or prepared is skipped and reported instead of an error
};

struct PatchSet {
  int patch_size = 0;
  std::vector<std::string> ids;                               // (images) dataset image ids
  std::vector<std::shared_ptr<const MappedPrepared>> images;  // (images)
  std::vector<PatchSpec> patches;                             // spec.image indexes `images`
  PatchStats stats;                                           // what sampling did, summed over the images
  std::vector<SkippedRow> skipped;                            // images left out under skip_bad, and why
  int64_t cached = 0, prepared = 0;                           // images mapped from the cache / prepared now
  int64_t count(PatchLabel label) const;
  int64_t count(PatchSource source) const;
  std::string summary() const;  // one line: images, patches by label and by source
};

// Prepares (or maps from the cache) the dataset images listed in `image_indices` and samples their patches.
// Sampling uses the dataset index as the image index, so an image's patches do not depend on the split.
PatchSet build_patch_set(const Dataset& dataset, const std::vector<int>& image_indices, const PatchSetOptions& options);

struct LoaderConfig {
  int batch_size = 64;
  int workers = 2;        // background threads; 0: batches are made on the caller's thread inside next()
  int queue_batches = 4;  // batches ready or in flight ahead of the consumer
  uint64_t seed = 1;
  bool shuffle = true;  // false: the patch set's order every epoch
  bool augment = true;  // false: the centre crop, no jitter (validation)
  // Rotations and zooms out reach beyond the patch's square (a 227 crop turned 45 degrees spans 321 pixels). true:
  // those corners show the image around the patch, as a whole-image map would see it; false: `fill` (air).
  bool context = true;
  AugmentConfig augmentation;
  // Labels per map cell, for a fully convolutional training graph: cell (i, j) of the output is centred at output
  // pixel (first + stride * j, first + stride * i), `cells` per axis (0: no cell labels). See Batch::cell_labels.
  struct CellGrid {
    double first = 0;
    int stride = 1, cells = 0;
  } cell_grid;
};

struct Batch {
  int64_t epoch = 0, index = 0;
  int size = 0;                  // output side (augmentation.output)
  std::vector<float> images;     // (batch_size, 1, size, size)
  std::vector<int> labels;       // (batch_size) PatchLabel values
  std::vector<int64_t> patches;  // (batch_size) indices into PatchSet::patches
  // (batch_size, cells, cells) with LoaderConfig::cell_grid: the label of the patch centred at each cell, by the
  // sampler's rule: 1 (mass) where the cell's centre, carried back through the augmentation to the nearest image
  // pixel, lies on a mass mask; -1 (ignored by the loss) inside the box of a lesion that is not a mass; else 0.
  std::vector<float> cell_labels;
};

// The shuffle of epoch `epoch`: a permutation of 0..n-1, a pure function of (seed, epoch).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch);

// The definition of batch (epoch, index) that the loader's workers follow. `order` is epoch_order(...) of that epoch
// (or the identity when not shuffling). `threads` OpenMP threads build its samples (the same batch for any count):
// the loader's workers build theirs on one, a caller between two steps of the net on the net's threads.
void make_batch(const PatchSet& set, const LoaderConfig& config, const std::vector<int64_t>& order, int64_t epoch,
                int64_t index, Batch* out, int threads = 1);

// Cuts the (size, size) patch centred at (cx, cy) out of a prepared view, `fill` outside the image: the same
// pixels as extract_patch() on the owning image.
void extract_patch_view(const PreparedView& view, int cx, int cy, int size, float fill, float* out);

class PatchLoader {
 public:
  // Starts the workers at (start_epoch, start_batch). The set must outlive the loader.
  PatchLoader(const PatchSet& set, LoaderConfig config, int64_t start_epoch = 0, int64_t start_batch = 0);
  ~PatchLoader();
  PatchLoader(const PatchLoader&) = delete;
  PatchLoader& operator=(const PatchLoader&) = delete;

  // The next batch in order; rethrows a worker's error.
  Batch next();
  int64_t batches_per_epoch() const { return batches_per_epoch_; }

 private:
  void work();
  std::shared_ptr<const std::vector<int64_t>> order_for(int64_t epoch);  // call with mutex_ held

  const PatchSet& set_;
  LoaderConfig config_;
  int64_t batches_per_epoch_ = 0;
  int64_t next_ticket_ = 0, consumed_ = 0;  // tickets count batches from the start position
  int64_t start_ = 0;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> orders_;  // epoch -> shuffle, few alive
  std::exception_ptr error_;                                               // the first failure, in batch order ...
  int64_t error_ticket_ = 0;                                               // ... of this batch
  bool stop_ = false;
  WorkerThreads workers_{"the patch loader's workers"};
};

}  // namespace massmap::data
