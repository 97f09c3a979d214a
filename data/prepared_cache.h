#pragma once
// A disk cache of prepared images (decoded, segmented, resampled, normalised), read back through mmap.
//
// Decoding a DDSM mammogram (a 16-bit DICOM of 3000 x 5000 pixels) and resampling it costs far more than cutting
// hundreds of patches out of the result, and a whole dataset at 0.2 mm does not fit in memory. So every image is
// prepared once, written to `<dir>/<id>-<key>.prep`, and mapped read-only; the page cache keeps the hot ones in
// memory and loader threads share them without copies. The key hashes everything the content depends on (the
// image file's path, size and modification time, its lesions, the preprocessing configuration and this format's
// version, and the version of the preparation code), so a changed input, configuration or algorithm never reads a
// stale entry.
//
// File layout (host byte order; the cache is per machine): a 64-byte-aligned header
//   magic "MMPREP02", uint32 header_bytes, int32 width, height, float64 spacing_mm, scale, float32 low, high, air,
//   uint32 unlocated_lesions, uint32 roi_count, then roi_count x (int32 x, y, width, height, uint8 type code: 0 mass, 1 calcification,
//   2 other), zero padding to header_bytes;
// then pixels float32 (height, width), regions uint8 (height, width), mass_mask uint8 (height, width).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/preprocess.h"

namespace massmap::data {

// Borrowed pointers into a prepared image, wherever it lives (a PreparedImage, a mapped cache file).
struct PreparedView {
  int width = 0, height = 0;
  const float* pixels = nullptr;       // (height, width)
  const uint8_t* regions = nullptr;    // (height, width)
  const uint8_t* mass_mask = nullptr;  // (height, width)
};
PreparedView view_of(const PreparedImage& image);

// One cache file mapped read-only; unmapped when the last reference goes.
class MappedPrepared {
 public:
  static std::shared_ptr<const MappedPrepared> open(const std::string& path);  // BadInput naming a corrupt file
  ~MappedPrepared();
  MappedPrepared(const MappedPrepared&) = delete;
  MappedPrepared& operator=(const MappedPrepared&) = delete;

  const PreparedView& view() const { return view_; }
  double spacing_mm() const { return spacing_mm_; }
  double scale() const { return scale_; }
  float low() const { return low_; }
  float high() const { return high_; }
  float air() const { return air_; }                      // normalised air level: the padding value
  int unlocated_lesions() const { return unlocated_; }    // see PreparedImage
  const std::vector<Box>& rois() const { return rois_; }
  const std::vector<std::string>& roi_types() const { return roi_types_; }
  size_t bytes() const { return size_; }
  PreparedImage copy(const std::string& id) const;  // an owning copy, e.g. for patch sampling

 private:
  MappedPrepared() = default;
  void* base_ = nullptr;
  size_t size_ = 0;
  PreparedView view_;
  double spacing_mm_ = 0, scale_ = 1;
  float low_ = 0, high_ = 1, air_ = 0;
  int unlocated_ = 0;
  std::vector<Box> rois_;
  std::vector<std::string> roi_types_;
};

// Serialises a prepared image in the layout above (what the cache writes; exposed for tests and fuzzing).
std::string encode_prepared(const PreparedImage& image);

class PreparedCache {
 public:
  // Creates `dir` when missing. BadInput when it cannot.
  PreparedCache(std::string dir, PreprocessConfig config);

  // The cache file's path for this image (whether or not it exists yet). Stats the image file.
  std::string path_for(const DatasetImage& meta) const;
  // Maps the prepared image, decoding and preparing it first when its file is absent. Safe to call from several
  // threads (two threads preparing the same image both write it atomically; the content is the same).
  std::shared_ptr<const MappedPrepared> get(const DatasetImage& meta) const;

  int64_t hits() const;
  int64_t misses() const;
  const PreprocessConfig& config() const { return config_; }

 private:
  std::string dir_;
  PreprocessConfig config_;
  std::string config_key_;
  struct Counters;
  std::shared_ptr<Counters> counters_;
};

}  // namespace massmap::data
