#pragma once
// Patch level on the evaluated part (the paper's Table I) and the calibration of the classifier's probabilities:
// patches sampled from each prepared image as training samples them (data/patches.h: mass patches centred inside a
// mass's mask, as many non-mass patches clear of every lesion ROI), each centre crop classified by the checkpoint's
// classifier. The probabilities are posteriors under the training prior (balanced classes by default), so the
// reliability diagram says how far they can be read as frequencies on balanced patches.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "apps/search/localize.h"
#include "data/patches.h"

namespace massmap::search {

constexpr int kEvalPatchesPerMass = 1;  // each costs a classifier pass (AlexNet on cpu: ~5% of a map each)
constexpr int kReliabilityBins = 10;

struct PatchScores {
  std::vector<float> p_mass;  // (patches)
  std::vector<int> labels;    // (patches) 1 mass, 0 non-mass
};

// Samples the patches of `prepared` (config.size from the checkpoint's patch_size, at least the crop) and appends
// the mass probability of each centre crop (whole-pixel offset (size - crop) / 2, as training's) to *out.
void score_patches(Localizer& localizer, const data::PreparedImage& prepared, int image_index,
                   const data::PatchConfig& config, uint64_t seed, PatchScores* out);

// Reliability diagram: `bins` equal bins of p over [0, 1] (the last closed), each with count, mean p and the
// fraction of mass patches; empty bins have count 0 and null means.
nlohmann::json reliability(const std::vector<float>& p_mass, const std::vector<int>& labels, int bins);

}  // namespace massmap::search
