#pragma once
// A mammography dataset as every reader returns it (CBIS-DDSM, mini-MIAS, our manifest): images with their
// lesions, every path resolved, plus what was skipped and why. Training, data checks and evaluation all start
// from a Dataset, so the three formats behave the same from here on.
#include <cstdint>
#include <string>
#include <vector>

#include "data/manifest.h"

namespace massmap::data {

struct DatasetLesion {
  std::string type;       // mass | calcification | other (mini-MIAS ARCH / ASYM: neither mass nor calcification)
  std::string shape;      // mass shape / calcification type as published; may be empty
  std::string margins;    // CBIS-DDSM mass margins / calcification distribution; may be empty
  std::string pathology;  // MALIGNANT | BENIGN | BENIGN_WITHOUT_CALLBACK (CBIS-DDSM), B | M (mini-MIAS); may be empty
  int assessment = 0;     // BI-RADS assessment 0..5 as published; -1: unknown
  int subtlety = 0;       // 1..5; 0: unknown
  bool has_box = false;
  Box box;                  // ROI box in image pixels (top-left origin); from the manifest, or the mask's bounds
  std::string mask_path;    // resolved path of an 8-bit mask of the image's size (nonzero = lesion); may be empty
  bool has_circle = false;  // mini-MIAS: centre and radius in image pixels, top-left origin
  double circle_x = 0, circle_y = 0, circle_radius = 0;
};

struct DatasetImage {
  std::string id;    // unique within the dataset: CBIS-DDSM "Mass-Training_P_00001_LEFT_CC", mini-MIAS "mdb001",
                     // manifest: the image column as written
  std::string path;  // resolved path of the image file
  std::string patient_id;
  std::string laterality;      // L | R | "" (unknown)
  std::string view;            // CC | MLO | ...
  std::string density;         // A..D, or "" (CBIS-DDSM's 1..4 map to A..D; mini-MIAS F/G/D are kept as written)
  double spacing_mm = 0;       // 0: unknown (the reader's default applies when it has one)
  std::string official_split;  // CBIS-DDSM: train | test; "" elsewhere
  std::vector<DatasetLesion> lesions;
};

struct SkippedRow {
  std::string where;   // "mass_case_description_train_set.csv:17", "Info.txt:3"
  std::string reason;  // why it was skipped
};

struct Dataset {
  std::string format;  // cbis-ddsm | mini-mias | manifest
  std::string root;
  std::vector<DatasetImage> images;
  std::vector<SkippedRow> skipped;
  std::vector<std::string> notes;  // facts the summary states, e.g. "CBIS-DDSM has no normal images"
};

struct DatasetOptions {
  std::string format;            // cbis-ddsm | mini-mias | manifest
  std::string root;              // the dataset's folder
  std::vector<std::string> csv;  // CBIS-DDSM: the case CSVs (default: the four published names under root);
                                 // mini-MIAS: Info.txt (default root/Info.txt); manifest: the manifest
                                 // (default root/manifest.csv)
  bool skip_bad = false;         // skip (and report) bad rows instead of failing on the first one
  std::string official_split;    // CBIS-DDSM only: "" (both), train or test
};

// Reads a dataset in any of the three formats. Throws BadInput naming the file, row and reason on the first bad
// row unless options.skip_bad; UsageError on an unknown format.
Dataset read_dataset(const DatasetOptions& options);

// Multi-line human-readable summary: format, root, images, patients, lesions by type, images without lesions,
// skipped rows grouped by reason (with the first few locations), and the notes.
std::string dataset_summary(const Dataset& dataset);

// The lesion's exact mask at the image's size (height, width), 0/1: the mask file when there is one (BadInput when
// its size differs from the image's), else the mini-MIAS circle, else the box filled.
std::vector<uint8_t> lesion_mask(const DatasetLesion& lesion, int width, int height);

// The lesion's ROI box: the box when there is one, else the bounds of the circle or of the mask.
Box lesion_roi(const DatasetLesion& lesion, int width, int height);

}  // namespace massmap::data
