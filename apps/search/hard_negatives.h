#pragma once
// Hard-negative mining: part way through training, the net maps every training image as `massmap localize` would,
// and the strongest peaks that lie clear of every lesion join the training set as non-mass patches. Random
// non-mass patches are mostly easy (fat, skin, air); the false positives of a whole-image map are dense islands and
// overlapping tissue, and the headline counts exactly those.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/search/localize.h"
#include "data/patch_loader.h"

namespace massmap::search {

struct HardNegativeSettings {
  double at = 0;             // fraction of the iterations after which to mine (0: never; else in (0, 1))
  int per_image = 8;         // the strongest peaks kept per training image
  double nms_radius_mm = 5;  // peaks closer than this to a stronger one are suppressed before choosing
  nlohmann::json to_json() const;
  static HardNegativeSettings from_json(const nlohmann::json& j);  // BadConfig on an unknown key or a bad value
  void validate() const;
  // The iteration after which mining happens in a run of `iterations`, or -1 when never.
  int64_t iteration(int64_t iterations) const;
};

// Maps every image of `set` and returns, per image, up to `per_image` peaks (strongest first) whose patch
// (set.patch_size square centred on the peak) overlaps no lesion ROI, as non-mass patches of `set`'s images.
std::vector<data::PatchSpec> mine_hard_negatives(Localizer& localizer, const data::PatchSet& set, int per_image,
                                                 bool progress);

// RUN/hard_negatives.json: the mined patches by image id and centre, so a resumed run trains on the same ones.
void write_hard_negatives(const std::string& path, const data::PatchSet& set,
                          const std::vector<data::PatchSpec>& negatives);
// BadInput naming the file when it is unreadable or names an image the set lacks.
std::vector<data::PatchSpec> read_hard_negatives(const std::string& path, const data::PatchSet& set);

}  // namespace massmap::search
