// read_dataset's dispatch, the manifest as a Dataset, the summary, lesion masks and ROIs, and the helpers the
// readers share (image sizes from headers, bad rows). CBIS-DDSM: cbis_ddsm.cpp; mini-MIAS: mini_mias.cpp.
#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "base/atomic_file.h"
#include "base/errors.h"
#include "data/csv.h"
#include "data/dataset_internal.h"
#include "data/image_io.h"

#ifdef MASSMAP_HAVE_DCMTK
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/oflog/oflog.h>
#endif

namespace massmap::data {

namespace fs = std::filesystem;

namespace detail {

namespace {

[[noreturn]] void unreadable(const std::string& path, const std::string& reason) {
  throw BadInput("cannot read image '" + path + "': " + reason);
}

uint32_t big_endian32(const unsigned char* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Width and height from a PGM header (P5 or P2): magic, then two numbers among whitespace and '#' comments.
ImageSize pgm_size(const std::string& path, const std::string& head) {
  size_t p = 2;
  long v[2] = {0, 0};
  for (long& n : v) {
    while (p < head.size() && (std::isspace((unsigned char)head[p]) || head[p] == '#'))
      if (head[p] == '#')
        while (p < head.size() && head[p] != '\n') ++p;
      else
        ++p;
    if (p >= head.size() || !std::isdigit((unsigned char)head[p])) unreadable(path, "PGM header has no size");
    while (p < head.size() && std::isdigit((unsigned char)head[p]) && n <= kMaxImageSide)
      n = n * 10 + (head[p++] - '0');
  }
  return {int(std::min<long>(v[0], kMaxImageSide + 1)), int(std::min<long>(v[1], kMaxImageSide + 1))};
}

#ifdef MASSMAP_HAVE_DCMTK
// Rows and Columns without reading the pixel data: elements above 4 KiB stay on disk.
ImageSize dicom_size(const std::string& path) {
  static const bool quiet = (OFLog::configure(OFLogger::OFF_LOG_LEVEL), true);
  (void)quiet;
  DcmFileFormat file;
  const OFCondition status = file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, 4096);
  if (status.bad()) unreadable(path, std::string("DICOM file cannot be parsed (") + status.text() + ")");
  Uint16 rows = 0, columns = 0;
  if (file.getDataset()->findAndGetUint16(DCM_Rows, rows).bad() ||
      file.getDataset()->findAndGetUint16(DCM_Columns, columns).bad())
    unreadable(path, "DICOM file has no Rows or Columns (not an image?)");
  return {int(columns), int(rows)};
}
#endif

}  // namespace

ImageSize image_size(const std::string& path) {
  check_input_file(path);  // a FIFO would block the open below, a device never end
  std::ifstream in(path, std::ios::binary);
  if (!in) unreadable(path, is_file(path) ? "cannot be opened" : "file not found");
  std::string head(512, '\0');  // the first bytes: enough for PNG's IHDR, a PGM header, DICOM's magic
  in.read(&head[0], std::streamsize(head.size()));
  head.resize(size_t(in.gcount()));
  ImageSize size;
  if (head.size() >= 24 && head.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0 && head.compare(12, 4, "IHDR") == 0) {
    const auto* p = reinterpret_cast<const unsigned char*>(head.data());
    size = {int(std::min<uint32_t>(big_endian32(p + 16), kMaxImageSide + 1)),
            int(std::min<uint32_t>(big_endian32(p + 20), kMaxImageSide + 1))};
  } else if (head.size() >= 3 && head[0] == 'P' && (head[1] == '5' || head[1] == '2')) {
    size = pgm_size(path, head);
#ifdef MASSMAP_HAVE_DCMTK
  } else if (head.size() >= 132 && head.compare(128, 4, "DICM") == 0) {
    size = dicom_size(path);
#endif
  } else {
    const Image image = read_image(path);  // JPEG, TIFF, or whatever read_image names in its error
    size = {image.width, image.height};
  }
  if (size.width < 1 || size.height < 1 || size.width > kMaxImageSide || size.height > kMaxImageSide)
    unreadable(path, "image size " + std::to_string(size.width) + " x " + std::to_string(size.height) +
                         " is out of range (corrupt?)");
  return size;
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string not_a_file_kind(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec) ? "not a regular file" : "file not found";
}

std::string read_text(const std::string& path) {
  const std::vector<char> bytes = read_file_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

std::string join_path(const std::string& dir, const std::string& rel) {
  if (rel.empty() || rel[0] == '/' || dir.empty()) return rel;
  return (fs::path(dir) / rel).string();
}

std::string file_name(const std::string& path) {
  return fs::path(path).filename().string();
}

void bad_row(Dataset& dataset, const DatasetOptions& options, const std::string& where, const std::string& reason) {
  if (!options.skip_bad) throw BadInput(where + ": " + reason + " (--skip-bad skips such rows)");
  dataset.skipped.push_back({where, reason});
}

bool has_location(const DatasetLesion& l) {
  return l.has_box || l.has_circle || !l.mask_path.empty();
}

}  // namespace detail

using namespace detail;

namespace {

// Our manifest as a Dataset: paths relative to the manifest's folder, each image and mask must exist.
Dataset read_manifest_dataset(const DatasetOptions& options) {
  if (options.csv.size() > 1)
    throw UsageError("a manifest dataset takes one manifest file, not " + std::to_string(options.csv.size()));
  // --csv as given (absolute, or relative to the current folder), else under the root, as for the other formats.
  const std::string path = options.csv.empty()                               ? join_path(options.root, "manifest.csv")
                           : is_file(options.csv[0]) || options.root.empty() ? options.csv[0]
                                                                             : join_path(options.root, options.csv[0]);
  const std::string dir = fs::path(path).parent_path().string();
  const Manifest manifest = read_manifest(path);
  Dataset ds;
  ds.format = "manifest";
  ds.root = options.root.empty() ? dir : options.root;
  const std::string name = file_name(path);
  for (const ManifestImage& m : manifest.images) {
    const std::string where = name + ":" + std::to_string(m.line);
    DatasetImage im;
    im.id = m.image, im.path = join_path(dir, m.image), im.patient_id = m.patient_id;
    im.laterality = m.laterality, im.view = m.view, im.density = m.density, im.spacing_mm = m.spacing_mm;
    if (!is_file(im.path)) {
      bad_row(ds, options, where, not_a_file_kind(im.path) + ": image '" + im.path + "'");
      continue;
    }
    for (const ManifestLesion& ml : m.lesions) {
      DatasetLesion l;
      l.type = ml.type, l.shape = ml.shape, l.subtlety = ml.subtlety, l.assessment = -1;
      l.has_box = ml.has_box, l.box = ml.box;
      if (!ml.mask.empty()) {
        l.mask_path = join_path(dir, ml.mask);
        if (!is_file(l.mask_path)) {
          // Kept (with its box, if any) so that negatives still avoid it.
          bad_row(ds, options, where,
                  not_a_file_kind(l.mask_path) + ": mask '" + l.mask_path + "' (lesion kept without it)");
          l.mask_path.clear();
        }
      }
      im.lesions.push_back(l);
    }
    ds.images.push_back(std::move(im));
  }
  return ds;
}

std::string count_list(const std::map<std::string, int>& counts) {
  std::string out;
  for (const auto& [k, n] : counts) out += (out.empty() ? "" : ", ") + k + " " + std::to_string(n);
  return out;
}

}  // namespace

Dataset read_dataset(const DatasetOptions& options) {
  if (options.format == "cbis-ddsm") return read_cbis_ddsm(options);
  if (!options.official_split.empty())
    throw UsageError("the official split exists for cbis-ddsm only, not for " + options.format);
  if (options.format == "mini-mias") return read_mini_mias(options);
  if (options.format == "manifest") return read_manifest_dataset(options);
  throw UsageError("unknown dataset format '" + options.format + "' (cbis-ddsm, mini-mias or manifest)");
}

std::string dataset_summary(const Dataset& ds) {
  std::set<std::string> patients;
  std::map<std::string, int> types, splits;
  int lesions = 0, unlocated = 0, normal = 0;
  for (const DatasetImage& im : ds.images) {
    patients.insert(im.patient_id);
    if (!im.official_split.empty()) ++splits[im.official_split];
    normal += im.lesions.empty();
    for (const DatasetLesion& l : im.lesions) {
      ++lesions, ++types[l.type];
      unlocated += !has_location(l);
    }
  }
  std::string s = "dataset: " + ds.format + " at " + (ds.root.empty() ? "." : ds.root) + "\n";
  s += "images: " + std::to_string(ds.images.size()) + "\npatients: " + std::to_string(patients.size()) + "\n";
  if (!splits.empty()) s += "official split: " + count_list(splits) + "\n";
  s += "lesions: " + std::to_string(lesions) + (types.empty() ? "" : " (" + count_list(types) + ")") + "\n";
  if (unlocated) s += "lesions without location (not usable for masks): " + std::to_string(unlocated) + "\n";
  s += "images without lesions: " + std::to_string(normal) + "\n";
  // Skipped rows grouped by the kind before the reason's first ": ", with the first few places.
  std::map<std::string, std::vector<const SkippedRow*>> groups;
  for (const SkippedRow& r : ds.skipped) groups[r.reason.substr(0, r.reason.find(": "))].push_back(&r);
  s += "skipped: " + std::to_string(ds.skipped.size()) + "\n";
  for (const auto& [kind, rows] : groups) {
    s += "  " + kind + ": " + std::to_string(rows.size()) + "\n";
    for (size_t i = 0; i < rows.size() && i < 5; ++i) s += "    " + rows[i]->where + ": " + rows[i]->reason + "\n";
    if (rows.size() > 5) s += "    ... and " + std::to_string(rows.size() - 5) + " more\n";
  }
  for (const std::string& n : ds.notes) s += "note: " + n + "\n";
  return s;
}

std::vector<uint8_t> lesion_mask(const DatasetLesion& l, int width, int height) {
  std::vector<uint8_t> mask(size_t(width) * size_t(height), 0);  // (height, width) 0/1
  if (!l.mask_path.empty()) {
    const Image m = read_image(l.mask_path);
    if (m.width != width || m.height != height)
      throw BadInput("lesion mask '" + l.mask_path + "' is " + std::to_string(m.width) + " x " +
                     std::to_string(m.height) + " pixels, the image " + std::to_string(width) + " x " +
                     std::to_string(height));
    for (size_t i = 0; i < mask.size(); ++i) mask[i] = m.pixels[i] != 0;
  } else if (l.has_circle) {
    const double r2 = l.circle_radius * l.circle_radius;
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        const double dx = x - l.circle_x, dy = y - l.circle_y;
        mask[size_t(y) * size_t(width) + size_t(x)] = dx * dx + dy * dy <= r2;
      }
  } else if (l.has_box) {
    for (int y = std::max(0, l.box.y); y < std::min(height, l.box.y + l.box.height); ++y)
      for (int x = std::max(0, l.box.x); x < std::min(width, l.box.x + l.box.width); ++x)
        mask[size_t(y) * size_t(width) + size_t(x)] = 1;
  } else {
    throw BadInput("a " + l.type + " lesion without location (no mask, circle or box) has no mask");
  }
  return mask;
}

Box lesion_roi(const DatasetLesion& l, int width, int height) {
  if (l.has_box) return l.box;
  if (l.has_circle) {
    const int x0 = std::max(0, int(std::floor(l.circle_x - l.circle_radius)));
    const int y0 = std::max(0, int(std::floor(l.circle_y - l.circle_radius)));
    const int x1 = std::min(width - 1, int(std::ceil(l.circle_x + l.circle_radius)));
    const int y1 = std::min(height - 1, int(std::ceil(l.circle_y + l.circle_radius)));
    return {x0, y0, x1 - x0 + 1, y1 - y0 + 1};
  }
  const std::vector<uint8_t> mask = lesion_mask(l, width, height);  // (height, width) 0/1
  int x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      if (mask[size_t(y) * size_t(width) + size_t(x)])
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  if (x1 < 0) throw BadInput("lesion mask '" + l.mask_path + "' is empty: no ROI");
  return {x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

}  // namespace massmap::data
