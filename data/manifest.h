#pragma once
// Our own dataset manifest: a CSV file (RFC 4180: comma-separated, fields with commas, quotes or line breaks in
// double quotes, "" for a quote), one row per lesion, so an image with three lesions has three rows and a normal
// image has one row whose lesion columns are empty. Lines before the header that start with '#' carry metadata as
// "# key: value" (the synthetic generator writes "# generator: synth-v1"). Columns, by header name (any order;
// the first four are required, the rest may be missing or empty):
//
//   image             path of the image, relative to the manifest's folder (or absolute)
//   patient_id        patient identifier: splits are made per patient
//   laterality        L or R
//   view              CC or MLO (any other view name is kept as written)
//   density           BI-RADS density A, B, C or D (empty: unknown)
//   pixel_spacing_mm  pixel spacing in mm (empty: unknown, the reader's default applies)
//   lesion_id         1, 2, ... within the image (empty on a normal image's row)
//   lesion_type       mass or calcification (empty: no lesion)
//   shape             free text (the generator: round, oval, lobulated, spiculated; cluster for calcifications)
//   subtlety          1 (subtle) .. 5 (obvious), DDSM's scale (empty: unknown)
//   box_x, box_y, box_width, box_height
//                     the lesion's ROI box in pixels (x, y of the top-left pixel; rows y .. y + height - 1); may
//                     be loose, as DDSM's are; all four or none
//   mask              path of an 8-bit mask image of the image's size (nonzero = lesion), relative like image
//
// Image-level columns must agree on every row of the same image. A lesion needs a box or a mask (or both).
#include <map>
#include <string>
#include <vector>

namespace massmap::data {

struct Box {
  int x = 0, y = 0, width = 0, height = 0;  // pixels; contains rows y..y+height-1, columns x..x+width-1
};

struct ManifestLesion {
  int id = 0;
  std::string type;   // mass | calcification
  std::string shape;  // may be empty
  int subtlety = 0;   // 0: unknown
  bool has_box = false;
  Box box;
  std::string mask;  // may be empty
};

struct ManifestImage {
  std::string image, patient_id;
  std::string laterality, view, density;
  double spacing_mm = 0;  // 0: unknown
  std::vector<ManifestLesion> lesions;
  int line = 0;  // the line of the image's first row in the file it was read from (0: not read from a file)
};

struct Manifest {
  std::vector<std::pair<std::string, std::string>> metadata;  // "# key: value" lines, in order
  std::vector<ManifestImage> images;                          // in order of first appearance
  std::string metadata_value(const std::string& key) const;   // "" when absent
};

extern const char* const kManifestColumns[];  // the header the writer emits, in order
// Writes atomically. Throws BadInput on values the format cannot hold (a lesion without type).
void write_manifest(const std::string& path, const Manifest& manifest);
std::string manifest_to_csv(const Manifest& manifest);
// Throws BadInput naming the file, the line and the reason.
Manifest read_manifest(const std::string& path);
Manifest parse_manifest(const std::string& text, const std::string& name);

}  // namespace massmap::data
