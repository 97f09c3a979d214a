// massmap data patches: prepares a dataset's images (through the cache), samples the paper's patches and shows
// what the net will be fed: the counts, and optionally a sheet of augmented samples.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "apps/data_cmds.h"
#include "apps/dataset_args.h"
#include "base/errors.h"
#include "base/memory_limit.h"
#include "base/text.h"
#include "data/image_io.h"
#include "data/patch_loader.h"

namespace massmap::cli {

const char* const data_patches_usage = R"(usage: massmap data patches --format F --root DIR --cache DIR [options]

Prepares every image of the dataset (or of one part of a split): breast segmentation, resampling to --spacing and
percentile normalisation, kept in the cache folder for later runs. Then samples the paper's patches (mass patches
centred inside a mass's mask; non-mass patches clear of every lesion ROI, from breast tissue, the breast edge, air
and burned-in labels) and prints their counts. With --sheet, also writes a PNG of the first augmented samples the
loader gives (red border: mass, green: non-mass), which is what the net sees.

options:
  --cache DIR           folder of prepared images (created; reused when the inputs are unchanged) (required)
  --split-file FILE     a split from massmap data split ...
  --part P              ... and which part: train (default), validation or test
  --seed S              sampling and augmentation seed (default 1)
  --spacing MM          pixel spacing patches are cut at (default 0.2)
  --default-spacing MM  spacing of images that do not state one (default: error)
  --patch-size N        patch side in pixels at that spacing (default 256)
  --per-mass N          mass patches per mass (default 8; as many non-mass patches balance them)
  --sheet FILE          write a PNG of the first augmented samples of the loader
  --sheet-count N       how many (default 32, at most 256)
  --crop N              the net's input side the samples are cropped to (default 227)
  --threads N           threads preparing images (default 2)
)";

namespace {

// Up to `count` samples of a batch in a grid of 8 columns, each with a 2-pixel border coloured by its label.
void write_sheet(const std::string& path, const data::Batch& batch, int count) {
  const int side = batch.size, cell = side + 6, columns = std::min(count, 8);
  const int rows = (count + columns - 1) / columns;
  const int width = columns * cell, height = rows * cell;
  std::vector<uint8_t> rgb(size_t(width) * size_t(height) * 3, 32);  // (height, width, 3)
  for (int k = 0; k < count; ++k) {
    const int ox = (k % columns) * cell + 1, oy = (k / columns) * cell + 1;
    const bool mass = batch.labels[size_t(k)] == int(data::PatchLabel::mass);
    const uint8_t border[3] = {uint8_t(mass ? 230 : 40), uint8_t(mass ? 40 : 200), 40};
    for (int y = 0; y < side + 4; ++y)
      for (int x = 0; x < side + 4; ++x) {
        uint8_t* p = &rgb[(size_t(oy + y) * size_t(width) + size_t(ox + x)) * 3];
        const bool inside = x >= 2 && y >= 2 && x < side + 2 && y < side + 2;
        if (!inside) {
          p[0] = border[0], p[1] = border[1], p[2] = border[2];
          continue;
        }
        // Normalised intensities: 0 at the breast's low percentile, 1 at its high one.
        const float v = batch.images[(size_t(k) * size_t(side) + size_t(y - 2)) * size_t(side) + size_t(x - 2)];
        p[0] = p[1] = p[2] = uint8_t(std::clamp(v * 255.f, 0.f, 255.f));
      }
  }
  data::write_png8(path, width, height, 3, rgb);
}

// What sampling could not do as asked, in words (data::PatchStats); "" when everything came from where it was meant.
std::string sampling_notes(const data::PatchStats& stats) {
  std::string notes;
  auto note = [&](int64_t count, const std::string& text) {
    if (count > 0) notes += "  " + text + "\n";
  };
  for (const data::PatchSource source :
       {data::PatchSource::breast, data::PatchSource::edge, data::PatchSource::air, data::PatchSource::label}) {
    const int64_t n = stats.fallback[int(source)];
    const std::string name = data::patch_source_name(source);
    note(n, plural(n, "non-mass patch", "non-mass patches") + " meant for " + name +
                " found no valid centre there in their image and came from " +
                (source == data::PatchSource::breast ? "another region" : "breast tissue") + " instead");
  }
  note(stats.dropped, plural(stats.dropped, "non-mass patch", "non-mass patches") +
                          " dropped: no valid centre anywhere in their image");
  note(stats.masses_without_mask, plural(stats.masses_without_mask, "mass ROI") +
                                      " without a mask pixel inside the box: no mass patches from them");
  note(stats.negatives_withheld, plural(stats.negatives_withheld, "non-mass patch", "non-mass patches") +
                                     " withheld from images with a lesion of unknown place");
  return notes;
}

}  // namespace

int run_data_patches(Args& a) {
  a.set_usage(std::string(data_patches_usage) + "\n" + dataset_options_usage);
  if (a.help()) {
    std::printf("%s", a.usage().c_str());
    return 0;
  }
  const data::DatasetOptions options = dataset_options(a);
  data::PatchSetOptions po;
  po.cache_dir = a.required("cache");
  const std::string split_file = a.str("split-file", "");
  const std::string part_option = a.str("part", "");
  const std::string part = part_option.empty() ? "train" : part_option;
  using data::kMaxPatchSide, data::kMaxPatchesPerMass;
  po.seed = uint64_t(a.integer("seed", 1, 0, INT64_MAX));
  po.preprocess.spacing_mm = a.number("spacing", po.preprocess.spacing_mm);
  po.preprocess.default_spacing_mm = a.number("default-spacing", 0);
  po.patches.size = a.integer32("patch-size", po.patches.size, 1, kMaxPatchSide);
  po.patches.per_mass = a.integer32("per-mass", po.patches.per_mass, 0, kMaxPatchesPerMass);
  po.threads = a.integer32("threads", 2, 1, kMaxWorkerThreads);
  const std::string sheet = a.str("sheet", "");
  const int sheet_count = a.integer32("sheet-count", 32, 1, 256);
  data::LoaderConfig lc;
  lc.augmentation.output = a.integer32("crop", lc.augmentation.output, 1, kMaxPatchSide);
  a.finish();
  if (!part_option.empty() && split_file.empty())
    throw UsageError("--part needs --split-file (a split to take it from)");
  if (lc.augmentation.output > po.patches.size)
    throw UsageError("--crop " + std::to_string(lc.augmentation.output) + " is larger than --patch-size " +
                     std::to_string(po.patches.size));
  if (!sheet.empty()) check_output_file("sheet", sheet);  // before the work, not after it
  po.skip_bad = options.skip_bad;
  po.preprocess.validate();
  po.patches.validate();
  lc.augmentation.validate();

  const data::Dataset ds = data::read_dataset(options);
  std::vector<int> indices;  // (images used) dataset indices
  if (split_file.empty()) {
    for (size_t i = 0; i < ds.images.size(); ++i) indices.push_back(int(i));
    if (indices.empty()) throw BadInput("no image to sample patches from: the dataset is empty");
  } else {
    const data::Split split = data::read_split(split_file);
    try {
      indices = data::split_indices(ds, split, part);
    } catch (const BadInput& e) {
      throw BadInput(split_file + ": " + e.what());
    }
    const size_t listed = (part == "train"        ? split.train_patients
                           : part == "validation" ? split.validation_patients
                                                  : split.test_patients)
                              .size();
    if (indices.empty())
      throw BadInput("no image to sample patches from: part '" + part + "' of " + split_file +
                     (listed == 0 ? " lists no patient"
                                  : " lists " + plural(int64_t(listed), "patient") + ", none of them in the dataset"));
  }
  if (!sheet.empty()) {
    auto inputs = dataset_files(options, ds);
    inputs.push_back({"--split-file", split_file});
    check_output_not_input("sheet", sheet, inputs);
  }
  const data::PatchSet set = data::build_patch_set(ds, indices, po);
  if (set.images.empty()) throw BadInput("every image was skipped: nothing to sample patches from");
  for (const data::SkippedRow& skipped : set.skipped)
    std::fprintf(stderr, "skipped %s: %s\n", skipped.where.c_str(), skipped.reason.c_str());
  std::printf("%s\n", set.summary().c_str());
  std::printf("images: %lld prepared, %lld from the cache, %zu skipped\n", (long long)set.prepared,
              (long long)set.cached, set.skipped.size());
  const std::string notes = sampling_notes(set.stats);
  std::printf("sampling: %s", notes.empty()
                                  ? "every patch came from the region it was drawn for\n"
                                  : ("not every patch came from the region it was drawn for:\n" + notes).c_str());
  if (!sheet.empty()) {
    lc.batch_size = std::min<int>(sheet_count, int(set.patches.size()));
    if (lc.batch_size < 1) throw BadInput("no patches to show: the images have no mass and --per-mass gave none");
    lc.seed = po.seed;
    lc.workers = 0;
    // Each sample: the patch with the context a rotation reaches, its augmented crop, and the sheet's copy.
    const int64_t side = po.patches.size;
    check_memory(int64_t(lc.batch_size) * side * side * int64_t(sizeof(float)) * 4,
                 "the sheet's " + std::to_string(lc.batch_size) + " samples of " + std::to_string(side) + " pixels");
    data::PatchLoader loader(set, lc);
    write_sheet(sheet, loader.next(), lc.batch_size);
    std::printf("%d augmented samples -> %s\n", lc.batch_size, sheet.c_str());
  }
  return 0;
}

}  // namespace massmap::cli
