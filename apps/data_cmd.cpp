// massmap data check: reads a dataset as training will (data/dataset.h), decodes every image and mask, and
// prints the dataset's summary.
#include <algorithm>
#include <cstdio>

#include "apps/cli.h"
#include "apps/data_cmds.h"
#include "apps/dataset_args.h"
#include "base/errors.h"
#include "base/interrupt.h"
#include "base/progress.h"
#include "base/text.h"
#include "data/dataset.h"
#include "data/image_io.h"

namespace massmap::cli {

namespace {

const char* const check_usage_head = R"(usage: massmap data check --format F --root DIR [options]

Reads a dataset (CBIS-DDSM, mini-MIAS or our manifest) the way training reads it, decodes every image and every
lesion mask, and prints a summary: images, patients, lesions by type, images without lesions, lesions without
location, and every skipped row with its reason. Exit code 3 (bad input) on the first bad row, missing file or
undecodable image; with --skip-bad those are reported and the exit code is 0 when at least one image is usable.

)";

}  // namespace

const char* const data_usage =
    R"(usage: massmap data SUBCOMMAND --format F --root DIR [options]     (massmap data SUBCOMMAND --help)

  check    read a dataset, decode every image and mask, print its summary
  split    split the patients into train, validation and test, and write the split to a file
  patches  prepare the images, sample the paper's patches, and show augmented samples
)";

int run_data(Args& a) {
  const std::string sub = a.shift_positional();
  const std::string usage = std::string(check_usage_head) + dataset_options_usage;
  if (sub.empty()) {
    if (a.help()) {
      std::printf("%s", data_usage);
      return 0;
    }
    throw UsageError(std::string("massmap data needs a subcommand\n\n") + data_usage);
  }
  if (sub == "split") return run_data_split(a);
  if (sub == "patches") return run_data_patches(a);
  if (sub != "check") throw UsageError("unknown subcommand 'data " + sub + "'\n\n" + data_usage);
  a.set_usage(usage);
  if (a.help()) {
    std::printf("%s", usage.c_str());
    return 0;
  }
  const data::DatasetOptions options = dataset_options(a);
  a.finish();
  data::Dataset ds = data::read_dataset(options);

  std::vector<data::DatasetImage> usable;
  int masks = 0;
  Progress progress("data check", int64_t(ds.images.size()));
  for (size_t i = 0; i < ds.images.size(); ++i) {
    check_interrupted("after checking " + std::to_string(i) + " of " + plural(int64_t(ds.images.size()), "image"));
    const data::DatasetImage& im = ds.images[i];
    std::string kind = "undecodable";
    try {
      const data::Image image = data::read_image(im.path);
      int image_masks = 0;
      for (const data::DatasetLesion& l : im.lesions) {
        kind = "bad lesion mask";
        // Every mask file is decoded and its size checked, whether or not the lesion also has a box (lesion_roi
        // alone returns the box without opening the mask); then the ROI, as preparation computes it.
        if (!l.mask_path.empty()) {
          const std::vector<uint8_t> mask = data::lesion_mask(l, image.width, image.height);  // (h, w) 0/1
          if (!l.has_box && std::find(mask.begin(), mask.end(), 1) == mask.end())
            throw BadInput("lesion mask '" + l.mask_path + "' is empty: no ROI");
          ++image_masks;
        }
        if (l.has_box || l.has_circle) (void)data::lesion_roi(l, image.width, image.height);
      }
      masks += image_masks;
      usable.push_back(im);
    } catch (const BadInput& e) {
      if (!options.skip_bad) throw BadInput("image " + im.id + ": " + e.what() + " (--skip-bad skips such images)");
      ds.skipped.push_back({"image " + im.id, kind + ": " + e.what()});
    }
    progress.update(int64_t(i + 1), im.id);
  }
  progress.finish();
  const size_t listed = ds.images.size();
  ds.images = std::move(usable);
  std::printf("%s", data::dataset_summary(ds).c_str());
  std::printf("decoded: %zu of %s, %s\n", ds.images.size(), plural(int64_t(listed), "image").c_str(),
              plural(masks, "lesion mask").c_str());
  if (ds.images.empty()) throw BadInput("no usable image in the dataset at '" + ds.root + "'");
  return 0;
}

}  // namespace massmap::cli
