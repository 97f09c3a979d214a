#pragma once
// How well a patch classifier separates mass from non-mass patches: the paper's Table I reports patch accuracy;
// loss, ROC AUC and the confusion matrix say more, and a third party can recompute each from the saved
// probabilities.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace massmap::search {

struct PatchMetrics {
  int64_t patches = 0;
  double accuracy = 0;  // fraction whose more probable class is their label (p(mass) >= 0.5 counts as mass)
  double loss = 0;      // mean cross-entropy -log p(label), p clamped to >= 1e-12
  double auc = 0;       // ROC AUC of p(mass): the chance a random mass patch outranks a random non-mass one, ties
                        // counting one half; 0.5 when a class is absent
  int64_t true_positive = 0, false_positive = 0, true_negative = 0, false_negative = 0;  // at p(mass) >= 0.5
  nlohmann::json to_json() const;
};

// p_mass: (patches) the mass probability; labels: (patches) 1 mass, 0 non-mass.
PatchMetrics patch_metrics(const std::vector<float>& p_mass, const std::vector<int>& labels);

}  // namespace massmap::search
