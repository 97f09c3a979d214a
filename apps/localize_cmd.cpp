// massmap localize: whole mammograms through the fully convolutional net (apps/search/localize.h), writing per
// image the map, its geometry, a 16-bit map image, an overlay and the detections (apps/search/outputs.h).
#include <chrono>
#include <cstdio>

#include "apps/cli.h"
#include "apps/search/outputs.h"
#include "apps/search_inputs.h"
#include "base/interrupt.h"
#include "base/progress.h"
#include "data/image_io.h"

namespace massmap::cli {

const char* const localize_usage =
    "usage: massmap localize --weights CHECKPOINT IMAGE... --out DIR [--device D] [--threshold T] [--shift N]\n"
    "                        [--views V] [--spacing MM] [--nms-radius MM] [--verbose]\n\n"
    "Maps the probability of a mass over whole mammograms with one forward pass of the checkpoint's patch\n"
    "classifier made fully convolutional. Each image is prepared as training prepared its patches (breast\n"
    "segmentation, resampling to the training spacing, percentile normalisation; from the checkpoint's metadata,\n"
    "or the defaults 0.2 mm and percentiles 1-99 for a checkpoint without them, said on stderr), padded by half a\n"
    "crop on every side with its air level so that cell centres cover the whole image, and padded further to a\n"
    "size bucket so that images of similar size share one compiled schedule.\n\n"
    "writes DIR/NAME/ for each image (NAME: the file name without extension):\n"
    "  map.npy            float32 (1, 1, h, w): P(mass) per map cell\n"
    "  map.json           where the cells sit: stride, the first cell's centre, crop and receptive field in\n"
    "                     prepared pixels, original pixels and mm; cell (i, j) is at first + (i, j) * stride\n"
    "  map.png            16-bit grey, one pixel per cell, round(P * 65535)\n"
    "  overlay.png        the map coloured over the mammogram, findings circled red, other peaks crossed\n"
    "                     yellow, the dataset's ROI boxes green\n"
    "  detections.json    the map's peaks (one per plateau) whose cell centre lies on breast, after non-maximum\n"
    "                     suppression within --nms-radius; position in original pixels and mm, probability, the\n"
    "                     crop it stands for, and whether it is a finding (probability >= the threshold)\n\n"
    "options:\n"
    "  --weights FILE     a checkpoint (nets init or training; safetensors with its __metadata__)\n"
    "  --out DIR          output folder\n"
    "  --device D         cpu, cuda or simt (default: cuda when a GPU is present, else cpu)\n"
    "  --precision P      the cpu's convolutions: float32 (default), bfloat16 (AMX or AVX512-BF16) or auto\n"
    "  --threshold T      findings at P >= T (default: the operating threshold stored by training, else 0.5)\n"
    "  --shift N          shift-and-stitch: N x N passes over inputs shifted by stride / N pixels, interleaved\n"
    "                     into one map at stride / N (N divides the stride; default 1)\n"
    "  --views V          test-time augmentation: the mean of the maps of V views of the image, 1 (default),\n"
    "                     2 (and mirrored left-right), 4 (every mirror) or 8 (and the transpose's mirrors);\n"
    "                     V times the time\n"
    "  --nms-radius MM    peaks closer than this to a higher one are suppressed (default 10 mm)\n"
    "  --verbose          the schedule's peak memory per image (activations as planned and unshared,\n"
    "                     parameters, input and map)\n" MASSMAP_SEARCH_INPUT_OPTIONS;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int run_localize(Args& a) {
  if (a.help()) {
    std::printf("%s", localize_usage);
    return 0;
  }
  const std::string weights = a.required("weights"), out = a.required("out");
  const bool verbose = a.flag("verbose");
  const search::LocalizeOptions options = localize_options(a, true);
  const std::vector<SearchInput> inputs = search_inputs(a);
  a.finish();
  search::Localizer loc = search::Localizer::from_checkpoint(weights, options);
  for (const std::string& note : loc.model().notes) std::fprintf(stderr, "%s\n", note.c_str());
  std::printf("%s on %s, threshold %g (%s), shift %d, views %d\n", loc.model().net.c_str(), device_name(options.device),
              loc.model().threshold, loc.model().threshold_source.c_str(), options.shift, options.views);
  search::OutputInfo info;
  info.checkpoint = weights;
  info.model = &loc.model();
  info.nms_radius_mm = options.nms_radius_mm;
  Progress progress("localize", int64_t(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    check_interrupted("after " + std::to_string(i) + " of " + std::to_string(inputs.size()) +
                      " images (each one mapped has all its files)");
    const SearchInput& in = inputs[i];
    auto t = std::chrono::steady_clock::now();
    const data::Image image = data::read_image(in.path);
    const double read_s = seconds_since(t);
    const search::MapResult r = loc.map_image(image, in.meta);
    t = std::chrono::steady_clock::now();
    info.image = in.path;
    search::write_outputs(out + "/" + in.name, r, info);
    const double write_s = seconds_since(t);
    int findings = 0;
    for (const search::Detection& d : r.detections) findings += d.finding;
    std::printf(
        "%s: map %lldx%lld cells, max %.4f, %zu peaks, %d findings; read %.1f ms, prepare %.1f ms, forward "
        "%.1f ms, write %.1f ms\n",
        in.path.c_str(), (long long)r.geometry.plane.y.cells, (long long)r.geometry.plane.x.cells,
        double(r.max_probability), r.detections.size(), findings, 1e3 * read_s, 1e3 * r.prepare_seconds,
        1e3 * r.forward_seconds, 1e3 * write_s);
    if (verbose)
      std::printf(
          "  net input %lldx%lld, %d pass(es); schedule peak %.1f MiB: activations %.1f MiB in the shared arena "
          "(%.1f MiB unshared), parameters, input and map %.1f MiB\n",
          (long long)r.geometry.plane.y.input, (long long)r.geometry.plane.x.input, r.passes,
          double(r.arena_bytes + r.own_bytes) / 1048576, double(r.arena_bytes) / 1048576,
          double(r.unshared_bytes) / 1048576, double(r.own_bytes) / 1048576);
    std::fflush(stdout);
    progress.update(int64_t(i + 1), in.name);
  }
  progress.finish();
  std::printf("%zu image(s) written to %s\n", inputs.size(), out.c_str());
  return 0;
}

}  // namespace massmap::cli
