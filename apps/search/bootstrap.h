#pragma once
// Patient-level bootstrap: images of one patient are not independent (two views of one breast show one mass), so a
// replicate draws patients with replacement, as many as there are, and takes all of each drawn patient's images.
// The 95% interval is the percentile interval: the 2.5% and 97.5% quantiles of the replicates' statistic (linear
// interpolation between order statistics). Draws come from std::mt19937_64, whose sequence the C++ standard fixes,
// mapped to an index by a 128-bit multiply, so a seed gives the same interval on every platform.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace massmap::search {

constexpr int kBootstrapReplicates = 1000;
constexpr int kFewPatients = 10;  // below this the interval is stated but warned about

struct Interval {
  double lo = 0, hi = 0;
};

// The q-quantile (0..1) of `values` (sorted here), linear between order statistics; 0 for none.
double quantile(std::vector<double> values, double q);

// Groups image indices by patient, in order of first appearance: (patients) their images' indices.
std::vector<std::vector<int>> patient_groups(const std::vector<std::string>& patient_of_image);

// Runs `statistic` (a vector of numbers from the images picked, repeats allowed) on `replicates` resamples and
// returns each component's 95% interval. The statistic's length must not change between calls.
std::vector<Interval> bootstrap_intervals(const std::vector<std::vector<int>>& groups, int replicates, uint64_t seed,
                                          const std::function<std::vector<double>(const std::vector<int>&)>& statistic);

}  // namespace massmap::search
