#pragma once
// Shared by the dataset readers (dataset.cpp, cbis_ddsm.cpp, mini_mias.cpp) and their fuzz targets; not part of
// the data library's interface. The parsers work on text in memory and touch no files, so they can be fuzzed.
#include <string>
#include <vector>

#include "data/dataset.h"

namespace massmap::data::detail {

// ---- CBIS-DDSM case description CSVs (cbis_ddsm.cpp) -----------------------------------------------------------

struct CbisRow {
  std::string where;  // "mass_case_description_train_set.csv:17"
  std::string error;  // why the row cannot be used; "" when it can (then every field below is valid)
  std::string patient_id, laterality, view, density;  // L | R; CC | MLO ...; A..D or "" (0 or empty: unknown)
  std::string split;                                  // train | test from the file name, else ""
  DatasetLesion lesion;                               // type, shape, margins, pathology, assessment, subtlety
  std::string image, crop, mask;                      // path cells: trimmed, '\' -> '/', never empty
};

// Parses one case CSV (mass or calcification, either header spelling). BadInput naming `name` when the header
// lacks a column or a quote is not closed; a row with a bad value comes back with `error` set.
std::vector<CbisRow> parse_cbis_csv(const std::string& text, const std::string& name);
Dataset read_cbis_ddsm(const DatasetOptions& options);

// ---- mini-MIAS Info.txt (mini_mias.cpp) --------------------------------------------------------------------------

struct MiasEntry {
  std::string where, error;                   // "Info.txt:3"; why the line cannot be used, "" when it can
  std::string ref;                            // mdb001
  int number = 0;                             // 1 for mdb001
  std::string tissue, abnormality, severity;  // F | G | D; CALC ... NORM; B | M | ""
  bool has_location = false;                  // false for NORM and for calcifications spread over the breast
  int x = 0, y = 0, radius = 0;               // as written: pixels, origin at the image's BOTTOM-left
};

// Parses Info.txt: one entry per line that starts with a reference (mdbNNN); blank lines, '#' lines and lines
// before the first entry (a header) are left out. Never throws on content.
std::vector<MiasEntry> parse_mias_info(const std::string& text, const std::string& name);
Dataset read_mini_mias(const DatasetOptions& options);

// ---- shared (dataset.cpp) ----------------------------------------------------------------------------------------

struct ImageSize {
  int width = 0, height = 0;
};
// The image's size from its header (PNG, PGM, DICOM without loading its pixel data); other formats are decoded.
// BadInput "cannot read image '<path>': <reason>".
ImageSize image_size(const std::string& path);
bool is_file(const std::string& path);
// Why `path` is not a readable file, as a skipped row's kind: "file not found", or for something that exists
// (a directory, device or FIFO) "not a regular file".
std::string not_a_file_kind(const std::string& path);
std::string read_text(const std::string& path);  // BadInput naming the file when it cannot be read
std::string join_path(const std::string& dir, const std::string& rel);  // rel as is when absolute
std::string file_name(const std::string& path);                         // the last component
// A bad row: BadInput "<where>: <reason>" unless options.skip_bad, which records it in dataset.skipped instead.
// `reason` reads "<kind>: <detail>"; the summary groups skipped rows by kind.
void bad_row(Dataset& dataset, const DatasetOptions& options, const std::string& where, const std::string& reason);
bool has_location(const DatasetLesion& lesion);

}  // namespace massmap::data::detail
