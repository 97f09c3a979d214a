// massmap synth: writes synthetic mammograms (generator synth-v1, data/synth.h), their lesion masks and region
// maps, our manifest (data/manifest.h) and synth.json with every parameter.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/synth_overview.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/interrupt.h"
#include "base/progress.h"
#include "base/text.h"
#include "data/image_io.h"
#include "data/manifest.h"
#include "data/pgm_write.h"
#include "data/synth.h"

namespace massmap::cli {

const char* const synth_usage = R"(usage: massmap synth --out DIR --images N [options]

Generates synthetic mammograms with the frozen generator synth-v1: a breast outline with skin line and thickness
fall-off, CC and MLO views (pectoral muscle in MLO), left and right breasts, the side and view burned into a
corner, power-law parenchyma (beta 3) at density A-D, masses (round, oval, lobulated, spiculated; 5-30 mm;
subtlety 1-5) inserted before blur and noise, and distractors (calcification clusters, vessels, dense islands).
Image i is a pure function of (seed, i): images 4p..4p+3 are patient p's L CC, L MLO, R CC and R MLO.

DIR receives:
  images/P00000_L_CC.png         12-bit values (0..4095) in a 16-bit greyscale PNG
  masks/P00000_L_CC_1.png        per lesion, 8-bit exact mask (255 inside; a cluster's speck pixels)
  regions/P00000_L_CC.png        8-bit region map: 0 air, 1 breast, 2 pectoral muscle, 3 label
  manifest.csv                   one row per lesion (loose ROI boxes, as DDSM's); "# generator: synth-v1"
  synth.json                     the version, the seed and every parameter
  with --cbis-csv, also:
  mass_case_description_synth.csv  the masses as CBIS-DDSM's mass CSVs list them (published columns; patient
                                 P_00000, density 1-4, LEFT/RIGHT; shape ROUND, OVAL, LOBULATED or IRREGULAR with
                                 margins CIRCUMSCRIBED, ILL_DEFINED or SPICULATED; assessment 3-5 and pathology
                                 by shape, spiculated ones MALIGNANT); paths to the image, the ROI mask and
  crops/P00000_L_CC_1.png        the ROI box cropped from the image
DIR holds one set: a run into a folder with an earlier set replaces it (the earlier set's files that this run
does not write are removed, and counted in the summary); a folder holding other files in images/, masks/,
regions/ or crops/ is refused.

options:
  --out DIR               output folder (required)
  --images N              number of images (required)
  --seed S                seed (default 1)
  --start I               index of the first image (default 0): split a large set across runs (a folder each)
  --size WxH              image size in pixels (default 416x512; e.g. 1000x1500 for a DDSM-sized field)
  --spacing MM            pixel spacing in mm (default 0.2)
  --normal-fraction F     fraction of images without masses (default 0.3)
  --density D             A, B, C, D or mixed (default mixed: per patient A 10%, B 40%, C 40%, D 10%)
  --masses-max N          an abnormal image has 1..N masses (default 3)
  --mass-min-mm X         smallest mass, max Feret diameter (default 5)
  --mass-max-mm X         largest mass (default 30)
  --no-labels             do not burn the side and view label
  --cbis-csv              also write the masses as a CBIS-DDSM-shaped CSV (above), for that reader's tests
  --format F              png (default) or pgm (binary PGM: 16-bit big-endian with maxval 4095, 8-bit masks)
  --overview FILE         also write a contact sheet of the first 16 images (8-bit RGB PNG, shrunk): mass masks
                          outlined in red, loose ROI boxes in yellow (masses) and cyan (calcification clusters)
Any option changed from its default is recorded in synth.json ("defaults": false) and in the manifest.
)";

namespace {
// Far beyond any use, and low enough that an image index (start + i) and its patient id never overflow.
constexpr int64_t kMaxSynthImages = int64_t(1) << 24;
constexpr int64_t kMaxSynthStart = int64_t(1) << 40;

// The folders of a set's files, and the CSV that --cbis-csv adds (relative to DIR).
const char* const kSetFolders[] = {"images", "masks", "regions", "crops"};
const char* const kCbisCsv = "mass_case_description_synth.csv";

// The files of DIR's set folders (relative to DIR, e.g. "images/P00000_L_CC.png"), and the CBIS-shaped CSV.
std::vector<std::string> set_files(const std::string& out) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  std::error_code ec;
  for (const char* folder : kSetFolders)
    for (fs::directory_iterator it(fs::path(out) / folder, ec), end; !ec && it != end; it.increment(ec))
      files.push_back(std::string(folder) + "/" + it->path().filename().string());
  if (fs::exists(fs::path(out) / kCbisCsv, ec)) files.push_back(kCbisCsv);
  return files;
}

}  // namespace

int run_synth(Args& a) {
  if (a.help()) {
    std::printf("%s", synth_usage);
    return 0;
  }
  const std::string out = a.required("out");
  const int64_t images = a.integer("images", -1, 1, kMaxSynthImages);
  const uint64_t seed = uint64_t(a.integer("seed", 1, 0, INT64_MAX));
  const int64_t start = a.integer("start", 0, 0, kMaxSynthStart);
  data::SynthParams p;
  const data::SynthParams defaults;
  const std::string size = a.str("size", "");
  if (!size.empty()) {
    const auto [w, h] = parse_int_pair("size", size, 64, 16384, false, "WIDTHxHEIGHT in pixels, e.g. 416x512,");
    p.width = w, p.height = h;
  }
  p.spacing_mm = a.number("spacing", p.spacing_mm);
  p.normal_fraction = a.number("normal-fraction", p.normal_fraction);
  p.density = a.str("density", p.density);
  p.masses_max = a.integer32("masses-max", p.masses_max, 0, 10);
  p.mass_min_mm = a.number("mass-min-mm", p.mass_min_mm);
  p.mass_max_mm = a.number("mass-max-mm", p.mass_max_mm);
  if (a.flag("no-labels")) p.labels = false;
  const std::string format = a.str("format", "png");
  const bool cbis = a.flag("cbis-csv");
  const std::string overview_path = a.str("overview", "");
  a.finish();
  if (format != "png" && format != "pgm") throw UsageError("--format takes png or pgm, not '" + format + "'");
  const std::string ext = "." + format;
  auto write16 = [&](const std::string& path, const data::SynthImage& img) {
    if (format == "pgm") return data::write_pgm16(path, img.width, img.height, img.pixels, 4095);
    data::Image image;
    image.width = img.width, image.height = img.height, image.bits = 12, image.pixels = img.pixels;
    data::write_png16(path, image);
  };
  auto write8 = [&](const std::string& path, int width, int height, const std::vector<uint8_t>& pixels) {
    if (format == "pgm") return data::write_pgm8(path, width, height, pixels);
    data::write_png8(path, width, height, 1, pixels);
  };
  if (images < 1) throw UsageError("missing option --images (a positive number)\n\n" + a.usage());
  p.validate();
  // An earlier set in DIR is replaced; files that no synth run wrote are never touched.
  const std::vector<std::string> earlier = set_files(out);
  if (!earlier.empty() && !std::filesystem::exists(out + "/synth.json"))
    throw UsageError("--out '" + out + "' holds " + earlier.front() + " but no synth.json: not a folder of massmap " +
                     "synth; choose a new or empty folder");
  const nlohmann::json params = p.to_json();
  std::vector<std::string> changed;
  for (auto it = params.begin(); it != params.end(); ++it)
    if (defaults.to_json().at(it.key()) != it.value()) changed.push_back(it.key());

  namespace fs = std::filesystem;
  for (const char* sub : {"images", "masks", "regions"}) make_output_dir((fs::path(out) / sub).string());
  if (cbis) make_output_dir((fs::path(out) / "crops").string());
  if (!overview_path.empty()) check_output_file("overview", overview_path);  // before the work, not after it
  nlohmann::json info = {{"version", data::kSynthVersion}, {"seed", seed},       {"images", images}, {"start", start},
                         {"defaults", changed.empty()},    {"changed", changed}, {"params", params}};
  write_file_atomic(out + "/synth.json", [&](std::ostream& o) { o << info.dump(2) << "\n"; });

  data::Manifest manifest;
  manifest.metadata = {{"generator", data::kSynthVersion},
                       {"seed", std::to_string(seed)},
                       {"parameters", changed.empty() ? "defaults" : "changed, see synth.json"}};
  int64_t masses = 0, calcs = 0, normals = 0;
  std::string cbis_csv =
      "patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,mass shape,"
      "mass margins,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path\n";
  // Images are independent (image k depends only on the seed, k and the parameters): they are made and written in
  // parallel, and their manifest rows and CSV lines joined in order afterwards.
  struct Written {
    data::ManifestImage row;
    std::vector<std::string> files;  // relative to DIR
    std::string cbis_lines;
    int64_t masses = 0, calcs = 0;
    bool complete = false;  // every file of the image written
  };
  std::vector<Written> written(static_cast<size_t>(images));  // (images)
  Progress progress("synth", images);
  SynthOverview overview(int(std::min<int64_t>(images, 16)), p.width, p.height);
  std::exception_ptr failure;
  int64_t done = 0;
#pragma omp parallel for schedule(dynamic)
  for (int64_t k = 0; k < images; ++k) {
    if (interrupted()) continue;  // images already started finish; no new one starts
    try {
      const data::SynthImage img = data::synth_image(p, seed, start + k);
      Written& w = written[size_t(k)];
      const std::string name = img.name();
      write16(out + "/images/" + name + ext, img);
      write8(out + "/regions/" + name + ext, img.width, img.height, img.regions);
      w.files = {"images/" + name + ext, "regions/" + name + ext};
      data::ManifestImage& row = w.row;
      row.image = "images/" + name + ext;
      row.patient_id = img.patient_id;
      row.laterality = std::string(1, img.laterality);
      row.view = img.view;
      row.density = std::string(1, img.density);
      row.spacing_mm = img.spacing_mm;
      int id = 0, image_masses = 0;
      for (const data::SynthLesion& l : img.lesions) {
        data::ManifestLesion ml;
        ml.id = ++id;
        ml.type = data::lesion_type_name(l.type);
        ml.shape = l.shape;
        ml.subtlety = l.subtlety;
        ml.has_box = true;
        ml.box = l.box;
        if (!l.mask.empty()) {
          std::vector<uint8_t> mask(l.mask.size());
          for (size_t i = 0; i < mask.size(); ++i) mask[i] = l.mask[i] ? 255 : 0;
          ml.mask = "masks/" + name + "_" + std::to_string(id) + ext;
          write8(out + "/" + ml.mask, img.width, img.height, mask);
          w.files.push_back(ml.mask);
        }
        (l.type == data::LesionType::mass ? w.masses : w.calcs) += 1;
        if (cbis && l.type == data::LesionType::mass) {
          // The ROI box cropped from the image, as CBIS-DDSM's "cropped image" files.
          data::SynthImage crop;
          crop.width = l.box.width, crop.height = l.box.height;
          for (int y = l.box.y; y < l.box.y + l.box.height; ++y)
            for (int x = l.box.x; x < l.box.x + l.box.width; ++x)
              crop.pixels.push_back(img.pixels[size_t(y) * size_t(img.width) + size_t(x)]);
          const std::string crop_path = "crops/" + name + "_" + std::to_string(id) + ext;
          write16(out + "/" + crop_path, crop);
          w.files.push_back(crop_path);
          const bool spiculated = l.shape == "spiculated", lobulated = l.shape == "lobulated";
          const std::string shape = spiculated          ? "IRREGULAR"
                                    : lobulated         ? "LOBULATED"
                                    : l.shape == "oval" ? "OVAL"
                                                        : "ROUND";
          const std::string margins = spiculated ? "SPICULATED" : lobulated ? "ILL_DEFINED" : "CIRCUMSCRIBED";
          w.cbis_lines += "P_" + img.patient_id.substr(1) + "," + std::to_string(img.density - 'A' + 1) + "," +
                          (img.laterality == 'L' ? "LEFT" : "RIGHT") + "," + img.view + "," +
                          std::to_string(image_masses + 1) + ",mass," + shape + "," + margins + "," +
                          (spiculated  ? "5"
                           : lobulated ? "4"
                                       : "3") +
                          "," + (spiculated ? "MALIGNANT" : "BENIGN") + "," + std::to_string(l.subtlety) + "," +
                          row.image + "," + crop_path + "," + ml.mask + "\n";
        }
        image_masses += l.type == data::LesionType::mass;
        row.lesions.push_back(ml);
      }
      w.complete = true;
#pragma omp critical(synth_progress)
      {
        if (!overview_path.empty() && k < 16) overview.add(int(k), img);
        progress.update(++done, name);
      }
    } catch (...) {
#pragma omp critical(synth_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  int64_t complete = 0;
  std::set<std::string> files;  // this set's, relative to DIR
  if (cbis) files.insert(kCbisCsv);
  for (Written& w : written) {
    if (!w.complete) continue;
    files.insert(w.files.begin(), w.files.end());
    ++complete;
    masses += w.masses, calcs += w.calcs, normals += w.masses == 0;
    cbis_csv += w.cbis_lines;
    manifest.images.push_back(std::move(w.row));
  }
  progress.finish();
  if (complete < images) {
    // Interrupted: the manifest and synth.json describe the images that exist (a demo then makes the set again).
    const std::string note = std::to_string(complete) + " of " + plural(images, "image");
    manifest.metadata.push_back({"interrupted", note});
    data::write_manifest(out + "/manifest.csv", manifest);
    info["images"] = complete;
    info["interrupted"] = note;
    write_file_atomic(out + "/synth.json", [&](std::ostream& o) { o << info.dump(2) << "\n"; });
    throw Interrupted("synth stopped by a signal after " + note + "; " + out + "/manifest.csv lists them");
  }
  data::write_manifest(out + "/manifest.csv", manifest);
  if (!overview_path.empty()) overview.write(overview_path);
  if (cbis) write_file_atomic(out + "/" + kCbisCsv, cbis_csv.data(), cbis_csv.size());
  int64_t removed = 0;
  for (const std::string& f : earlier) {
    std::error_code ec;
    if (!files.count(f)) removed += std::filesystem::remove(out + "/" + f, ec);
  }
  std::printf("%s (%lld without masses), %s, %s -> %s/manifest.csv\n", plural(images, "image").c_str(),
              (long long)normals, plural(masses, "mass", "masses").c_str(),
              plural(calcs, "calcification cluster").c_str(), out.c_str());
  if (removed > 0)
    std::printf("replaced the earlier set in %s: removed its %s that this set does not have\n", out.c_str(),
                plural(removed, "file").c_str());
  return 0;
}

}  // namespace massmap::cli
