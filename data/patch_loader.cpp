// The patch set and the background batch loader.
#include "data/patch_loader.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <sstream>

#include "base/errors.h"
#include "base/interrupt.h"
#include "base/philox.h"
#include "base/progress.h"
#include "base/text.h"
#include "data/image_io.h"

namespace massmap::data {

namespace {

// Philox stream of the epoch shuffles; augmentation and sampling use their own streams.
constexpr uint64_t kShuffleStream = 0x53687566666c65ull;  // "Shuffle"

// Batch::cell_labels of one sample: `t` maps output pixels into the patch (side patch_size, centred on the spec).
void cell_labels(const MappedPrepared& image, const PatchSpec& spec, int patch_size, const AugmentTransform& t,
                 const LoaderConfig::CellGrid& grid, float* out) {
  const PreparedView& v = image.view();
  const int left = spec.cx - patch_size / 2, top = spec.cy - patch_size / 2;  // the patch's corner in the image
  for (int i = 0; i < grid.cells; ++i)
    for (int j = 0; j < grid.cells; ++j) {
      double px, py;
      t.apply(grid.first + double(grid.stride) * j, grid.first + double(grid.stride) * i, &px, &py);
      const int x = left + int(std::floor(px + 0.5)), y = top + int(std::floor(py + 0.5));
      float label = 0;
      if (x >= 0 && y >= 0 && x < v.width && y < v.height) {
        if (v.mass_mask && v.mass_mask[size_t(y) * size_t(v.width) + size_t(x)]) {
          label = 1;
        } else {
          for (size_t r = 0; r < image.rois().size(); ++r) {
            const Box& b = image.rois()[r];
            if (image.roi_types()[r] != "mass" && x >= b.x && x < b.x + b.width && y >= b.y && y < b.y + b.height)
              label = -1;
          }
        }
      }
      out[i * grid.cells + j] = label;
    }
}

}  // namespace

int64_t PatchSet::count(PatchLabel label) const {
  return std::count_if(patches.begin(), patches.end(), [&](const PatchSpec& p) { return p.label == label; });
}

int64_t PatchSet::count(PatchSource source) const {
  return std::count_if(patches.begin(), patches.end(), [&](const PatchSpec& p) { return p.source == source; });
}

std::string PatchSet::summary() const {
  std::ostringstream out;
  out << plural(int64_t(images.size()), "image") << ", " << plural(int64_t(patches.size()), "patch", "patches")
      << " of " << patch_size << "x" << patch_size << ": " << count(PatchLabel::mass) << " mass, "
      << count(PatchLabel::non_mass) << " non-mass (";
  const PatchSource sources[] = {PatchSource::breast, PatchSource::edge, PatchSource::air, PatchSource::label};
  for (size_t i = 0; i < 4; ++i) out << (i ? ", " : "") << count(sources[i]) << " " << patch_source_name(sources[i]);
  out << ")";
  return out.str();
}

PatchSet build_patch_set(const Dataset& dataset, const std::vector<int>& image_indices,
                         const PatchSetOptions& options) {
  options.patches.validate();
  const PreparedCache cache(options.cache_dir, options.preprocess);
  const int64_t n = int64_t(image_indices.size());
  for (int index : image_indices)
    if (index < 0 || size_t(index) >= dataset.images.size())
      throw BadInput("patch set: image index " + std::to_string(index) + " outside the dataset's " +
                     std::to_string(dataset.images.size()) + " images");
  PatchSet set;
  set.patch_size = options.patches.size;
  std::vector<std::string> ids(static_cast<size_t>(n));                               // (images)
  std::vector<std::shared_ptr<const MappedPrepared>> mapped(static_cast<size_t>(n));  // (images); null: skipped
  std::vector<std::vector<PatchSpec>> per_image(static_cast<size_t>(n));              // (images) patches
  std::vector<std::string> skipped(static_cast<size_t>(n));                           // (images) why, or ""
  std::unique_ptr<Progress> progress;
  if (options.progress) progress = std::make_unique<Progress>("prepare", n);
  std::atomic<int64_t> next{0}, done{0};
  std::mutex mutex;
  std::exception_ptr error;  // of the first failing image in list order, whichever thread met it
  int64_t error_at = n;
  auto worker = [&] {
    PatchStats local;
    for (int64_t k = next++; k < n; k = next++) {
      if (interrupted()) break;  // finished images stay in the cache
      const DatasetImage& meta = dataset.images[size_t(image_indices[size_t(k)])];
      ids[size_t(k)] = meta.id;
      try {
        mapped[size_t(k)] = cache.get(meta);
        const PreparedImage owned = mapped[size_t(k)]->copy(meta.id);
        per_image[size_t(k)] = sample_patches(owned, image_indices[size_t(k)], options.patches, options.seed, &local);
      } catch (const BadInput& e) {
        mapped[size_t(k)].reset();
        per_image[size_t(k)].clear();
        if (options.skip_bad) {
          skipped[size_t(k)] = e.what();
        } else {
          std::lock_guard<std::mutex> lock(mutex);
          if (k < error_at) error = std::current_exception(), error_at = k;
          next = n;  // stop the others early
          break;
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (k < error_at) error = std::current_exception(), error_at = k;
        next = n;
        break;
      }
      const int64_t finished = ++done;
      if (progress) {
        std::lock_guard<std::mutex> lock(mutex);
        progress->update(finished, meta.id);
      }
    }
    std::lock_guard<std::mutex> lock(mutex);
    set.stats += local;
  };
  const int thread_count = std::max(1, options.threads);
  WorkerThreads threads("image preparation (" + std::to_string(thread_count) + " threads)");
  for (int t = 1; t < thread_count; ++t) threads.start(worker, [&] { next = n; });
  worker();
  threads.join();
  check_interrupted("while preparing images (those finished are in the cache, and reused by the next run)");
  if (error) std::rethrow_exception(error);
  set.cached = cache.hits();
  set.prepared = cache.misses();
  if (progress) progress->finish(std::to_string(set.cached) + " cached, " + std::to_string(set.prepared) + " prepared");
  for (int64_t k = 0; k < n; ++k) {
    if (!mapped[size_t(k)]) {
      set.skipped.push_back({"image " + ids[size_t(k)], skipped[size_t(k)]});
      continue;
    }
    const int image = int(set.images.size());
    set.ids.push_back(ids[size_t(k)]);
    set.images.push_back(mapped[size_t(k)]);
    for (PatchSpec spec : per_image[size_t(k)]) {
      spec.image = image;
      set.patches.push_back(spec);
    }
  }
  return set;
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(size_t(std::max<int64_t>(n, 0)));  // (n)
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  // Fisher-Yates from 64 random bits per step: the modulo bias is below 2^-40 for any realistic n.
  const uint64_t stream = kShuffleStream ^ (uint64_t(epoch) << 20);
  for (int64_t i = n - 1; i > 0; --i) {
    const uint64_t bits = (uint64_t(random_bits_at(seed, stream, 2 * uint64_t(i))) << 32) |
                          random_bits_at(seed, stream, 2 * uint64_t(i) + 1);
    std::swap(order[size_t(i)], order[size_t(bits % uint64_t(i + 1))]);
  }
  return order;
}

void extract_patch_view(const PreparedView& view, int cx, int cy, int size, float fill, float* out) {
  extract_patch(view.pixels, view.width, view.height, cx, cy, size, fill, out);
}

namespace {

// Sample i of the batch (`sample`: its position within the epoch) into its places in *out.
void make_sample(const PatchSet& set, const LoaderConfig& config, const std::vector<int64_t>& order, int64_t epoch,
                 int64_t sample, int i, Batch* out) {
  const int output = config.augmentation.output;
  const LoaderConfig::CellGrid& grid = config.cell_grid;
  const size_t cells = size_t(grid.cells) * size_t(grid.cells);
  thread_local std::vector<float> patch;  // (side, side) scratch: the patch and the context it needs
  const int64_t which = order[size_t(sample)];
  const PatchSpec& spec = set.patches[size_t(which)];
  if (spec.image < 0 || size_t(spec.image) >= set.images.size())
    throw BadInput("patch " + std::to_string(which) + " names image " + std::to_string(spec.image) + " of " +
                   std::to_string(set.images.size()));
  AugmentTransform t;
  if (config.augment) {
    t = draw_augmentation(config.augmentation, set.patch_size, config.seed, epoch, sample);
  } else {  // the centre crop, on whole pixels as Caffe's (no interpolation blur)
    t.tx = t.ty = double((set.patch_size - output) / 2);
  }
  // Margin around the patch that the output's corners reach (plus one pixel for bilinear sampling).
  int margin = 0;
  if (config.context) {
    double reach = 0;
    for (const double u : {0.0, double(output - 1)})
      for (const double v : {0.0, double(output - 1)}) {
        double x, y;
        t.apply(u, v, &x, &y);
        reach = std::max({reach, -x, -y, x - (set.patch_size - 1), y - (set.patch_size - 1)});
      }
    margin = reach > 0 ? int(std::ceil(reach)) + 1 : 0;
  }
  const int side = set.patch_size + 2 * margin;  // same centre: floor(side / 2) = floor(patch_size / 2) + margin
  patch.resize(size_t(side) * size_t(side));
  const MappedPrepared& image = *set.images[size_t(spec.image)];
  extract_patch_view(image.view(), spec.cx, spec.cy, side, image.air(), patch.data());
  // Sampling keeps a negative's square clear of every ROI, not its context: context pixels inside an ROI become
  // air, so a non-mass sample never shows lesion tissue.
  if (margin > 0 && spec.label != PatchLabel::mass && grid.cells == 0) {
    const int x0 = spec.cx - side / 2, y0 = spec.cy - side / 2;  // context's top-left in image pixels
    for (const Box& r : image.rois()) {
      const int bx0 = std::max(r.x - x0, 0), bx1 = std::min(r.x + r.width - x0, side);
      const int by0 = std::max(r.y - y0, 0), by1 = std::min(r.y + r.height - y0, side);
      for (int y = by0; y < by1; ++y)
        std::fill(patch.begin() + ptrdiff_t(y) * side + bx0, patch.begin() + ptrdiff_t(y) * side + std::max(bx0, bx1),
                  image.air());
    }
  }
  if (grid.cells > 0) cell_labels(image, spec, set.patch_size, t, grid, out->cell_labels.data() + size_t(i) * cells);
  t.tx += margin;
  t.ty += margin;
  augment_patch(patch.data(), side, t, output, out->images.data() + size_t(i) * size_t(output) * size_t(output),
                image.air());
  out->labels[size_t(i)] = int(spec.label);
  out->patches[size_t(i)] = which;
}

}  // namespace

void make_batch(const PatchSet& set, const LoaderConfig& config, const std::vector<int64_t>& order, int64_t epoch,
                int64_t index, Batch* out, int threads) {
  const int output = config.augmentation.output;
  const int batch = config.batch_size;
  out->epoch = epoch;
  out->index = index;
  out->size = output;
  out->images.resize(size_t(batch) * size_t(output) * size_t(output));
  out->labels.resize(size_t(batch));
  out->patches.resize(size_t(batch));
  const LoaderConfig::CellGrid& grid = config.cell_grid;
  const size_t cells = size_t(grid.cells) * size_t(grid.cells);
  out->cell_labels.assign(size_t(batch) * cells, 0.f);
  // Each sample is a function of (seed, epoch, position) alone, so threads may build them in any order; the error
  // reported is the first failing sample's, as one thread would meet it.
  std::exception_ptr error;
  int error_sample = batch;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int i = 0; i < batch; ++i) {
    try {
      make_sample(set, config, order, epoch, index * batch + i, i, out);
    } catch (...) {
#pragma omp critical(make_batch_error)
      if (i < error_sample) error = std::current_exception(), error_sample = i;
    }
  }
  if (error) std::rethrow_exception(error);
}

PatchLoader::PatchLoader(const PatchSet& set, LoaderConfig config, int64_t start_epoch, int64_t start_batch)
    : set_(set), config_(std::move(config)) {
  config_.augmentation.validate();
  if (config_.batch_size < 1) throw BadConfig("loader: batch_size " + std::to_string(config_.batch_size) + " < 1");
  if (config_.workers < 0 || config_.queue_batches < 1)
    throw BadConfig("loader: workers must be >= 0 and queue_batches >= 1");
  const LoaderConfig::CellGrid& grid = config_.cell_grid;
  if (grid.cells < 0 || grid.stride < 1 || grid.first < 0 ||
      (grid.cells > 0 && grid.first + double(grid.stride) * (grid.cells - 1) > config_.augmentation.output - 1))
    throw BadConfig("loader: a cell grid of " + std::to_string(grid.cells) + " cells at stride " +
                    std::to_string(grid.stride) + " does not fit the " + std::to_string(config_.augmentation.output) +
                    "-pixel output");
  if (config_.augmentation.output > set_.patch_size)
    throw BadConfig("loader: output " + std::to_string(config_.augmentation.output) + " larger than the patches (" +
                    std::to_string(set_.patch_size) + ")");
  batches_per_epoch_ = int64_t(set_.patches.size()) / config_.batch_size;  // the last partial batch is dropped
  if (batches_per_epoch_ == 0)
    throw BadInput("loader: " + std::to_string(set_.patches.size()) + " patches make no batch of " +
                   std::to_string(config_.batch_size));
  if (start_batch < 0 || start_batch >= batches_per_epoch_ || start_epoch < 0)
    throw BadConfig("loader: start (epoch " + std::to_string(start_epoch) + ", batch " + std::to_string(start_batch) +
                    ") outside an epoch of " + std::to_string(batches_per_epoch_) + " batches");
  start_ = start_epoch * batches_per_epoch_ + start_batch;
  auto stop = [this] {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
  };
  for (int w = 0; w < config_.workers; ++w) workers_.start([this] { work(); }, stop);
}

PatchLoader::~PatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  workers_.join();
}

std::shared_ptr<const std::vector<int64_t>> PatchLoader::order_for(int64_t epoch) {
  auto found = orders_.find(epoch);
  if (found != orders_.end()) return found->second;
  const int64_t n = int64_t(set_.patches.size());
  std::vector<int64_t> order;  // (patches)
  if (config_.shuffle) {
    order = epoch_order(n, config_.seed, epoch);
  } else {
    order.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  }
  auto shared = std::make_shared<const std::vector<int64_t>>(std::move(order));
  orders_[epoch] = shared;
  // Epochs before the consumer's are finished with (workers hold their own references while in use).
  const int64_t oldest = (start_ + consumed_) / batches_per_epoch_;
  while (!orders_.empty() && orders_.begin()->first < oldest) orders_.erase(orders_.begin());
  return shared;
}

void PatchLoader::work() {
  for (;;) {
    int64_t ticket;
    std::shared_ptr<const std::vector<int64_t>> order;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || next_ticket_ < consumed_ + config_.queue_batches; });
      if (stop_) return;
      ticket = next_ticket_++;
      order = order_for((start_ + ticket) / batches_per_epoch_);
    }
    const int64_t position = start_ + ticket;
    Batch batch;
    try {
      make_batch(set_, config_, *order, position / batches_per_epoch_, position % batches_per_epoch_, &batch);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      // The earliest failing batch's error is the one to report, at that batch: batches before it still arrive.
      if (!error_ || ticket < error_ticket_) error_ = std::current_exception(), error_ticket_ = ticket;
      stop_ = true;
      changed_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(ticket, std::move(batch));
    }
    changed_.notify_all();
  }
}

Batch PatchLoader::next() {
  const int64_t ticket = consumed_;
  if (workers_.empty()) {  // synchronous mode
    const int64_t position = start_ + ticket;
    std::shared_ptr<const std::vector<int64_t>> order;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      order = order_for(position / batches_per_epoch_);
    }
    Batch batch;  // on the caller's threads, which the net is not using between its steps
    make_batch(set_, config_, *order, position / batches_per_epoch_, position % batches_per_epoch_, &batch,
               omp_get_max_threads());
    ++consumed_;
    return batch;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return ready_.count(ticket) > 0 || (error_ && ticket >= error_ticket_); });
  if (ready_.count(ticket) == 0) std::rethrow_exception(error_);
  Batch batch = std::move(ready_.at(ticket));
  ready_.erase(ticket);
  ++consumed_;
  lock.unlock();
  changed_.notify_all();
  return batch;
}

}  // namespace massmap::data
