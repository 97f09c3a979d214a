#include "apps/search_inputs.h"

#include <filesystem>
#include <map>

#include "apps/dataset_args.h"
#include "base/errors.h"
#include "base/text.h"

namespace massmap::cli {

namespace fs = std::filesystem;

std::vector<SearchInput> search_inputs(Args& a) {
  const double spacing = a.number("spacing", 0);
  if (spacing < 0 || (spacing > 0 && !(spacing >= 0.01 && spacing <= 10)))
    throw UsageError("--spacing takes millimetres in 0.01..10, not " + decimal_text(spacing));
  std::vector<std::string> named;  // IMAGE...
  for (std::string p = a.shift_positional(); !p.empty(); p = a.shift_positional()) named.push_back(p);
  std::vector<SearchInput> out;
  const bool dataset = !a.str("format", "").empty();
  if (dataset) {
    const data::Dataset ds = data::read_dataset(dataset_options(a));
    const std::vector<std::string>& wanted = named;
    for (const data::DatasetImage& im : ds.images) {
      bool take = wanted.empty();
      for (const std::string& w : wanted)
        if (w == im.id || w == im.path || fs::weakly_canonical(w) == fs::weakly_canonical(im.path)) take = true;
      if (take) out.push_back({im.path, "", im});
    }
    for (const std::string& w : wanted) {
      bool found = false;
      for (const SearchInput& s : out)
        found = found || w == s.meta.id || w == s.path || fs::weakly_canonical(w) == fs::weakly_canonical(s.path);
      if (!found) throw BadInput(w + ": not an image of the dataset under " + ds.root + " (give its id or path)");
    }
  } else {
    for (const std::string& path : named) {
      SearchInput s;
      s.path = path;
      s.meta.id = path;
      s.meta.path = path;
      out.push_back(s);
    }
  }
  if (out.empty()) throw UsageError("no image given\n\n" + a.usage());
  std::map<std::string, std::string> names;  // output name -> the image that has it
  for (SearchInput& s : out) {
    if (s.meta.spacing_mm <= 0) s.meta.spacing_mm = spacing;
    s.name = fs::path(s.path).stem().string();
    auto [it, fresh] = names.emplace(s.name, s.path);
    if (!fresh)
      throw UsageError("two images would write to the same folder '" + s.name + "': " + it->second + " and " + s.path +
                       " (map them in separate runs or rename one)");
  }
  return out;
}

search::LocalizeOptions localize_options(Args& a, bool detections) {
  search::LocalizeOptions o;
  const std::string device = a.str("device", "");
  o.device = device.empty() ? default_device() : parse_device(device);
  use_conv_precision(a.str("precision", "float32"), o.device);
  const int64_t shift = a.integer("shift", 1, 1, 64);
  if (shift < 1 || shift > 64)
    throw UsageError("--shift takes a divisor of the net's stride (1, 2, 4, ...), not " + std::to_string(shift));
  o.shift = int(shift);
  o.views = int(a.integer("views", 1, 1, 8));
  if (o.views != 1 && o.views != 2 && o.views != 4 && o.views != 8)
    throw UsageError("--views takes 1, 2, 4 or 8, not " + std::to_string(o.views));
  o.threshold = a.number("threshold", -1);
  if (o.threshold != -1 && !(o.threshold >= 0 && o.threshold <= 1))
    throw UsageError("--threshold takes a probability in 0..1, not " + decimal_text(o.threshold));
  if (detections) o.nms_radius_mm = a.number("nms-radius", search::kDefaultNmsRadiusMm);
  if (!(o.nms_radius_mm >= 0)) throw UsageError("--nms-radius takes millimetres >= 0");
  return o;
}

}  // namespace massmap::cli
