#include "apps/search/patch_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "base/errors.h"

namespace massmap::search {

nlohmann::json PatchMetrics::to_json() const {
  return {{"patches", patches},
          {"accuracy", accuracy},
          {"loss", loss},
          {"roc_auc", auc},
          {"confusion",
           {{"true_positive", true_positive},
            {"false_positive", false_positive},
            {"true_negative", true_negative},
            {"false_negative", false_negative}}}};
}

PatchMetrics patch_metrics(const std::vector<float>& p_mass, const std::vector<int>& labels) {
  if (p_mass.size() != labels.size())
    throw BadInput("patch_metrics: " + std::to_string(p_mass.size()) + " probabilities for " +
                   std::to_string(labels.size()) + " labels");
  PatchMetrics m;
  m.patches = int64_t(labels.size());
  if (labels.empty()) return m;
  double loss = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const bool mass = labels[i] == 1, said_mass = p_mass[i] >= 0.5f;
    m.true_positive += mass && said_mass;
    m.false_negative += mass && !said_mass;
    m.false_positive += !mass && said_mass;
    m.true_negative += !mass && !said_mass;
    const double p = mass ? double(p_mass[i]) : 1.0 - double(p_mass[i]);
    loss -= std::log(std::max(p, 1e-12));
  }
  m.accuracy = double(m.true_positive + m.true_negative) / double(m.patches);
  m.loss = loss / double(m.patches);

  // AUC by ranks (Mann-Whitney U): sort by probability, give tied runs their mean rank.
  std::vector<size_t> order(labels.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p_mass[a] < p_mass[b]; });
  double positive_rank_sum = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && p_mass[order[j]] == p_mass[order[i]]) ++j;
    const double mean_rank = 0.5 * double(i + 1 + j);  // ranks i+1 .. j
    for (size_t k = i; k < j; ++k)
      if (labels[order[k]] == 1) positive_rank_sum += mean_rank, ++positives;
    i = j;
  }
  const int64_t negatives = m.patches - positives;
  m.auc = positives == 0 || negatives == 0 ? 0.5
                                           : (positive_rank_sum - 0.5 * double(positives) * double(positives + 1)) /
                                                 (double(positives) * double(negatives));
  return m;
}

}  // namespace massmap::search
