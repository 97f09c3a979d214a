#include "apps/search/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

namespace massmap::search {

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double pos = q * double(values.size() - 1);
  const size_t below = size_t(std::floor(pos));
  const size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (pos - double(below)) * (values[above] - values[below]);
}

std::vector<std::vector<int>> patient_groups(const std::vector<std::string>& patient_of_image) {
  std::map<std::string, size_t> index;
  std::vector<std::vector<int>> groups;
  for (size_t i = 0; i < patient_of_image.size(); ++i) {
    auto [it, added] = index.emplace(patient_of_image[i], groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(int(i));
  }
  return groups;
}

std::vector<Interval> bootstrap_intervals(
    const std::vector<std::vector<int>>& groups, int replicates, uint64_t seed,
    const std::function<std::vector<double>(const std::vector<int>&)>& statistic) {
  std::mt19937_64 rng(seed);
  const uint64_t n = groups.size();
  std::vector<std::vector<double>> values;  // (components) (replicates)
  std::vector<int> pick;                    // (images of the replicate) indices into the images
  for (int r = 0; r < replicates && n > 0; ++r) {
    pick.clear();
    for (uint64_t k = 0; k < n; ++k) {
      const uint64_t g = uint64_t((unsigned __int128)rng() * n >> 64);
      pick.insert(pick.end(), groups[g].begin(), groups[g].end());
    }
    const std::vector<double> s = statistic(pick);
    if (values.empty()) values.resize(s.size());
    for (size_t c = 0; c < s.size(); ++c) values[c].push_back(s[c]);
  }
  std::vector<Interval> out;
  for (const std::vector<double>& v : values) out.push_back({quantile(v, 0.025), quantile(v, 0.975)});
  return out;
}

}  // namespace massmap::search
