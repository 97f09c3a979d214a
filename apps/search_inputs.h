#pragma once
// The images `massmap localize` and `classify` take: files named on the command line, or a dataset's images
// (its spacing, laterality, view and ROI boxes come along), with --spacing for files that carry none.
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/search/localize.h"
#include "data/dataset.h"

namespace massmap::cli {

#define MASSMAP_SEARCH_INPUT_OPTIONS                                                                           \
  "\nimages:\n"                                                                                                \
  "  IMAGE...           PNG (8/16 bit), JPEG, PGM, TIFF or DICOM files\n"                                      \
  "  --spacing MM       pixel spacing of files that carry none (all but DICOM): required for them, never\n"    \
  "                     guessed (a 0.05 mm PNG taken for 0.2 mm would be mapped at the wrong scale)\n"         \
  "  --format F --root DIR [--csv FILE]\n"                                                                     \
  "                     take the images from a dataset (cbis-ddsm, mini-mias, manifest): its spacing,\n"       \
  "                     laterality, view and ROI boxes come along; IMAGE... then picks images by id or path\n" \
  "                     (default: all of them); --skip-bad and --split as in massmap data check\n"

struct SearchInput {
  std::string path;  // the file as given (or resolved by the dataset)
  std::string name;  // its output folder's name: the file name without extension
  data::DatasetImage meta;
};

// Reads the options above (and the positional images); UsageError when there is no image, BadInput for an image
// the dataset does not list, UsageError for two images with the same output name.
std::vector<SearchInput> search_inputs(Args& a);

// --device, --precision (set for the process at once: engine/device.h use_conv_precision), --shift, --threshold,
// and with detections --nms-radius.
search::LocalizeOptions localize_options(Args& a, bool detections);

}  // namespace massmap::cli
