// massmap evaluate: every image of a split's part mapped and scored (apps/search/evaluate.h); the maps, metrics.json
// and report.html written to --out.
#include <cstdio>

#include "apps/cli.h"
#include "apps/dataset_args.h"
#include "apps/search/evaluate.h"
#include "apps/search_inputs.h"
#include "base/errors.h"
#include "base/text.h"

namespace massmap::cli {

const char* const evaluate_usage =
    R"(usage: massmap evaluate --weights CHECKPOINT DATASET OPTIONS --split-file S --out DIR [--part P] [options]

Maps every image of one part of a patient split with the checkpoint, as massmap localize maps it, judges the
map's peaks against every mass and writes the part's metrics. The headline: FROC sensitivity at 0.9 false
positives per image over all images of the part (normals included), with a patient-level bootstrap 95% interval.
A detection (a peak of the map, one per plateau, on breast, after non-maximum suppression) is a hit when its cell
centre lies inside a mass's mask; each mass counts once; detections inside other lesions are ignored; every other
detection is a false positive. The paper's threshold of 0.4 on each mass's ROI maximum is reported beside it as a
replication only (a constant map of 0.5 would pass it). The README's "massmap evaluate" defines every key.

writes:
  DIR/maps/ID/        map.npy, map.json (geometry, breast area), detections.json; with --baseline dog also
                      dog.npy and dog_detections.json (the baseline's map on the same cells)
  DIR/metrics.json    every measure, the parameters, and per image the judged detections and ROI statistics
  DIR/report.html     one self-contained page: headline beside the paper and the baseline, FROC with its
                      band, the paper's ROI measures, image ROC, breakdowns, example overlays

options:
  --weights FILE      a checkpoint (massmap train; nets init works, with default preprocessing)
  --split-file FILE   a patient split from massmap data split (required)
  --part P            train, validation or test (default test)
  --out DIR           output folder
  --device D          cpu, cuda or simt (default: cuda when a GPU is present, else cpu)
  --precision P       the cpu's convolutions: float32 (default), bfloat16 (AMX or AVX512-BF16) or auto
  --shift N           shift-and-stitch factor (divides the net's stride; default 1)
  --views V           mirrored and transposed views averaged into each map, as in localize (1, 2, 4, 8;
                      default 1)
  --nms-radius MM     peaks closer than this to a higher one are suppressed (default 10 mm)
  --threshold T       the operating threshold reported (default: the checkpoint's, else 0.5)
  --baseline dog      also score a difference-of-Gaussians blob detector through the same peaks and judging
  --patches-per-mass N
                      patch level: mass patches sampled per mass as training samples them, as many
                      non-mass, each centre crop classified (default 1; 0: none)
  --replicates N      bootstrap replicates (default 1000)
  --seed N            bootstrap seed (default 1)
)";

int run_evaluate(Args& a) {
  a.set_usage(std::string(evaluate_usage) + "\n" + dataset_options_usage);
  if (a.help()) {
    std::printf("%s", a.usage().c_str());
    return 0;
  }
  search::EvaluateOptions o;
  o.weights = a.required("weights");
  const data::DatasetOptions dataset = dataset_options(a);
  o.split_file = a.required("split-file");
  o.skip_bad = dataset.skip_bad;
  o.part = a.str("part", "test");
  if (o.part != "train" && o.part != "validation" && o.part != "test")
    throw UsageError("--part takes train, validation or test, not '" + o.part + "'");
  o.out = a.required("out");
  o.localize = localize_options(a, true);
  const std::string baseline = a.str("baseline", "");
  if (!baseline.empty() && baseline != "dog")
    throw UsageError("--baseline takes dog (a difference-of-Gaussians blob detector), not '" + baseline + "'");
  o.baseline_dog = baseline == "dog";
  const int64_t replicates = a.integer("replicates", search::kBootstrapReplicates, 1, 1000000);
  if (replicates < 1 || replicates > 1000000) throw UsageError("--replicates takes 1 .. 1000000");
  o.replicates = int(replicates);
  o.seed = uint64_t(a.integer("seed", 1, 0, INT64_MAX));
  const int64_t per_mass = a.integer("patches-per-mass", search::kEvalPatchesPerMass, 0, 64);
  if (per_mass < 0 || per_mass > 64) throw UsageError("--patches-per-mass takes 0 .. 64");
  o.patches_per_mass = int(per_mass);
  if (!a.positional().empty()) throw UsageError("evaluate takes no positional argument: '" + a.positional()[0] + "'");
  a.finish();

  const data::Dataset ds = data::read_dataset(dataset);
  std::vector<std::string> warnings;
  const nlohmann::json m = search::evaluate(ds, o, &warnings);
  for (const std::string& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  auto ci = [](const nlohmann::json& c) {
    char b[64];
    if (!c.is_array()) return std::string("n/a");
    std::snprintf(b, sizeof b, "[%.3f, %.3f]", c[0].get<double>(), c[1].get<double>());
    return std::string(b);
  };
  const auto& c = m["counts"];
  std::printf("%s (%s, %s, %s)\n", plural(c["images"].get<int64_t>(), "image").c_str(),
              plural(c["patients"].get<int64_t>(), "patient").c_str(),
              plural(c["masses"].get<int64_t>(), "mass", "masses").c_str(),
              plural(c["normals"].get<int64_t>(), "normal").c_str());
  std::printf("sensitivity at 0.9 FP/image: %.3f %s; CPM %.3f %s; image AUC %.3f; paper ROI max >= 0.4: %.3f\n",
              m["headline"]["sensitivity"].get<double>(), ci(m["headline"]["ci95"]).c_str(),
              m["cpm"]["value"].get<double>(), ci(m["cpm"]["ci95"]).c_str(), m["image_auc"].get<double>(),
              m["paper_roi_max"]["sensitivity"].get<double>());
  if (o.baseline_dog) {
    const auto& d = m["baseline_dog"];
    std::printf("DoG baseline: sensitivity at 0.9 FP/image %.3f %s; CPM %.3f %s; image AUC %.3f\n",
                d["headline"]["sensitivity"].get<double>(), ci(d["headline"]["ci95"]).c_str(),
                d["cpm"]["value"].get<double>(), ci(d["cpm"]["ci95"]).c_str(), d["image_auc"].get<double>());
  }
  const auto& t = m["timings"];
  std::printf("per image: prepare %.1f ms, map %.1f ms, scoring %.1f ms, baseline %.1f ms\n",
              1e3 * t["prepare_s_per_image"].get<double>(), 1e3 * t["map_s_per_image"].get<double>(),
              1e3 * t["scoring_s_per_image"].get<double>(), 1e3 * t["dog_s_per_image"].get<double>());
  std::printf("written: %s/metrics.json, %s/report.html, %s/maps/\n", o.out.c_str(), o.out.c_str(), o.out.c_str());
  return 0;
}

}  // namespace massmap::cli
