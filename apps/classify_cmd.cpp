// massmap classify: the image-level module, P(the image holds a mass) = the maximum of its map.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/cli.h"
#include "apps/search_inputs.h"
#include "base/interrupt.h"
#include "data/image_io.h"

namespace massmap::cli {

const char* const classify_usage =
    "usage: massmap classify --weights CHECKPOINT IMAGE... [--json] [--device D] [--spacing MM]\n\n"
    "The probability that each image holds a mass, defined as the maximum of its mass-probability map (the map\n"
    "massmap localize writes, from the same preparation and padding), one line per image: the image and the\n"
    "probability, or with --json one JSON object per line ({\"image\", \"probability\", \"threshold\",\n"
    "\"mass\": probability >= threshold}).\n\n"
    "options:\n"
    "  --weights FILE     a checkpoint (nets init or training)\n"
    "  --json             JSON lines instead of text\n"
    "  --device D         cpu, cuda or simt (default: cuda when a GPU is present, else cpu)\n"
    "  --precision P      the cpu's convolutions: float32 (default), bfloat16 (AMX or AVX512-BF16) or auto\n"
    "  --threshold T      the decision threshold for \"mass\" (default: the checkpoint's, else 0.5)\n"
    "  --shift N          shift-and-stitch as in localize (default 1)\n"
    "  --views V          views averaged into the map, as in localize (default 1)\n" MASSMAP_SEARCH_INPUT_OPTIONS;

int run_classify(Args& a) {
  if (a.help()) {
    std::printf("%s", classify_usage);
    return 0;
  }
  const std::string weights = a.required("weights");
  const bool json = a.flag("json");
  const search::LocalizeOptions options = localize_options(a, false);
  const std::vector<SearchInput> inputs = search_inputs(a);
  a.finish();
  search::Localizer loc = search::Localizer::from_checkpoint(weights, options);
  for (const std::string& note : loc.model().notes) std::fprintf(stderr, "%s\n", note.c_str());
  for (const SearchInput& in : inputs) {
    check_interrupted("before " + in.path);
    const search::MapResult r = loc.map_image(data::read_image(in.path), in.meta);
    const double p = double(r.max_probability);
    if (json)
      std::printf("%s\n", nlohmann::json{{"image", in.path},
                                         {"probability", r.max_probability},
                                         {"threshold", loc.model().threshold},
                                         {"mass", p >= loc.model().threshold}}
                              .dump()
                              .c_str());
    else
      std::printf("%s\t%.9g\n", in.path.c_str(), p);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace massmap::cli
