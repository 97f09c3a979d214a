#include "apps/search/peaks.h"

#include <algorithm>
#include <cmath>

namespace massmap::search {

std::vector<Peak> find_peaks(const std::vector<float>& map, int64_t height, int64_t width,
                             const std::vector<uint8_t>& allowed) {
  std::vector<Peak> peaks;
  std::vector<uint8_t> seen(map.size(), 0);  // (height, width) cells already in a plateau
  std::vector<int64_t> plateau, stack;       // cell indices
  for (int64_t start = 0; start < height * width; ++start) {
    if (!allowed[size_t(start)] || seen[size_t(start)]) continue;
    const float v = map[size_t(start)];
    plateau.clear();
    stack.assign(1, start);
    seen[size_t(start)] = 1;
    bool highest = true;  // no allowed neighbour of the plateau is higher
    while (!stack.empty()) {
      const int64_t c = stack.back();
      stack.pop_back();
      plateau.push_back(c);
      const int64_t cy = c / width, cx = c % width;
      for (int64_t dy = -1; dy <= 1; ++dy)
        for (int64_t dx = -1; dx <= 1; ++dx) {
          const int64_t y = cy + dy, x = cx + dx;
          if ((dy == 0 && dx == 0) || y < 0 || x < 0 || y >= height || x >= width) continue;
          const int64_t n = y * width + x;
          if (!allowed[size_t(n)]) continue;
          if (map[size_t(n)] > v) highest = false;
          if (map[size_t(n)] == v && !seen[size_t(n)]) {
            seen[size_t(n)] = 1;
            stack.push_back(n);
          }
        }
    }
    if (!highest) continue;
    double my = 0, mx = 0;
    for (int64_t c : plateau) {
      my += double(c / width);
      mx += double(c % width);
    }
    my /= double(plateau.size());
    mx /= double(plateau.size());
    std::sort(plateau.begin(), plateau.end());
    int64_t best = plateau.front();
    double best_d = 1e300;
    for (int64_t c : plateau) {
      const double d = std::hypot(double(c / width) - my, double(c % width) - mx);
      if (d < best_d) best_d = d, best = c;
    }
    peaks.push_back({best / width, best % width, v});
  }
  std::sort(peaks.begin(), peaks.end(), [](const Peak& a, const Peak& b) {
    if (a.value != b.value) return a.value > b.value;
    return a.y != b.y ? a.y < b.y : a.x < b.x;
  });
  return peaks;
}

std::vector<Peak> suppress(const std::vector<Peak>& sorted_peaks, double radius, double cell_y, double cell_x) {
  std::vector<Peak> kept;
  for (const Peak& p : sorted_peaks) {
    bool near = false;
    for (const Peak& k : kept)
      if (std::hypot(double(p.y - k.y) * cell_y, double(p.x - k.x) * cell_x) < radius) {
        near = true;
        break;
      }
    if (!near) kept.push_back(p);
  }
  return kept;
}

}  // namespace massmap::search
