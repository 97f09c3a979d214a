// CBIS-DDSM: the four published case description CSVs (mass / calcification x train / test) merged per image.
// Rows are lesions; an image is (patient, side, view), so a mammogram listed in both a mass and a calcification
// CSV (TCIA ships it twice, under Mass-... and Calc-... folders) becomes one image holding every lesion, and
// negatives sampled from it avoid both kinds.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "base/errors.h"
#include "data/csv.h"
#include "data/dataset_internal.h"

namespace massmap::data {
namespace detail {

namespace fs = std::filesystem;

namespace {

const char* const kPublishedCsvs[] = {"mass_case_description_train_set.csv", "mass_case_description_test_set.csv",
                                      "calc_case_description_train_set.csv", "calc_case_description_test_set.csv"};

// Header names compared trimmed, lower case, '_' as ' ' ("breast_density" in mass CSVs, "breast density" in calc).
std::string header_key(const std::string& h) {
  std::string k = trim(h);
  for (char& c : k) c = c == '_' ? ' ' : char(std::tolower((unsigned char)c));
  return k;
}

int small_integer(const std::string& s, int lo, int hi, bool& ok) {
  ok = !s.empty() && s.size() <= 3 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  const int v = ok ? std::stoi(s) : 0;
  ok = ok && v >= lo && v <= hi;
  return v;
}

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= path.size()) {
    const size_t b = std::min(path.find('/', a), path.size());
    if (b > a) out.push_back(path.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

// The folders (dirs) or files of `dir`, sorted, hidden ones (".DS_Store", "._1-1.dcm") left out.
std::vector<std::string> sorted_entries(const fs::path& dir, bool dirs) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;  // an entry whose type cannot be read is left out
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] != '.' && (dirs ? it->is_directory(type_ec) : it->is_regular_file(type_ec)))
      out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A downloaded series folder stands for a SeriesInstanceUID when named by it, or when TCIA's downloader named it
// "<number>-<description>-<the UID's last digits>" ("1.000000-ROI mask images-24515").
bool series_matches(const std::string& folder, const std::string& uid) {
  if (folder == uid) return true;
  const size_t dash = folder.rfind('-');
  if (dash == std::string::npos) return false;
  const std::string tail = folder.substr(dash + 1);
  return tail.size() >= 4 && tail.size() < uid.size() && std::all_of(tail.begin(), tail.end(), ::isdigit) &&
         uid.compare(uid.size() - tail.size(), tail.size(), tail) == 0;
}

// The files a path cell may mean: the literal path under root; else, when the download's folders are named
// differently, the files of the series folder found by the case folder (first component) and the
// SeriesInstanceUID (third), the cell's file name when present there, else every file of that series (a crop and
// its mask often share one; the caller tells them apart by size). Empty: nothing found. Never throws: a path the
// file system refuses (a component too long, no permission) is not found.
std::vector<std::string> resolve(const std::string& root, const std::string& cell) {
  const std::string literal = join_path(root, cell);
  if (is_file(literal)) return {literal};
  const std::vector<std::string> c = components(cell);
  if (c.size() < 2) return {};
  fs::path case_dir;
  for (const fs::path& base : {fs::path(root), fs::path(root) / "CBIS-DDSM"}) {
    std::error_code ec;
    if (fs::is_directory(base / c[0], ec)) case_dir = base / c[0];
  }
  if (case_dir.empty()) return {};
  std::vector<std::string> series, matching;  // case/study/series folders
  for (const std::string& study : sorted_entries(case_dir, true))
    for (const std::string& s : sorted_entries(study, true)) series.push_back(s);
  for (const std::string& s : series)
    if (c.size() >= 4 && series_matches(file_name(s), c[2])) matching.push_back(s);
  if (matching.empty() && series.size() == 1) matching = series;
  if (matching.size() != 1) return {};
  const fs::path named = fs::path(matching[0]) / c.back();
  if (is_file(named.string())) return {named.string()};
  return sorted_entries(matching[0], false);
}

// CBIS-DDSM's images are named by their case folder; other layouts (massmap synth --cbis-csv) by their path.
std::string image_id(const std::string& cell) {
  const std::vector<std::string> c = components(cell);
  if (c.size() >= 3) return c[0];
  const size_t dot = cell.rfind('.');
  return dot == std::string::npos || dot < cell.rfind('/') + 1 ? cell : cell.substr(0, dot);
}

}  // namespace

std::vector<CbisRow> parse_cbis_csv(const std::string& text, const std::string& name) {
  CsvReader csv(text, name);
  CsvRecord r;
  std::vector<CbisRow> rows;
  std::map<std::string, size_t> col;
  while (csv.next(r)) {
    if (r.blank()) continue;
    if (col.empty()) {  // the header
      for (size_t i = 0; i < r.fields.size(); ++i)
        if (!col.emplace(header_key(r.fields[i]), i).second)
          throw BadInput(name + ":" + std::to_string(r.line) + ": column '" + trim(r.fields[i]) + "' appears twice");
      for (const char* need :
           {"patient id", "breast density", "left or right breast", "image view", "abnormality type", "pathology",
            "assessment", "subtlety", "image file path", "cropped image file path", "roi mask file path"})
        if (!col.count(need))
          throw BadInput(name + ":" + std::to_string(r.line) + ": the header lacks the column '" + need + "'");
      continue;
    }
    auto get = [&](const char* key) {
      const auto it = col.find(key);
      return it == col.end() || it->second >= r.fields.size() ? std::string() : trim(r.fields[it->second]);
    };
    CbisRow row;
    row.where = file_name(name) + ":" + std::to_string(r.line);
    const std::string lower = header_key(file_name(name));
    row.split = lower.find("train") != std::string::npos  ? "train"
                : lower.find("test") != std::string::npos ? "test"
                                                          : "";
    auto bad = [&](const std::string& why) {
      if (row.error.empty()) row.error = why;
    };
    if (r.fields.size() != col.size())
      bad("bad row: " + std::to_string(r.fields.size()) + " fields where the header has " + std::to_string(col.size()));
    row.patient_id = get("patient id");
    if (row.patient_id.empty()) bad("bad value: empty patient_id");
    const std::string side = get("left or right breast"), density = get("breast density");
    if (side == "LEFT" || side == "RIGHT")
      row.laterality = side.substr(0, 1);
    else
      bad("bad value: left or right breast '" + side + "' is not LEFT or RIGHT");
    row.view = get("image view");
    if (row.view.empty()) bad("bad value: empty image view");
    bool ok = true;
    const int d = density.empty() ? 0 : small_integer(density, 0, 4, ok);
    if (!ok) bad("bad value: breast density '" + density + "' is not 1..4");
    row.density = d ? std::string(1, char('A' + d - 1)) : "";
    DatasetLesion& l = row.lesion;
    const std::string type = get("abnormality type");
    if (type == "mass" || type == "calcification") {
      l.type = type;
    } else {
      bad("bad value: abnormality type '" + type + "' is not mass or calcification");
      // The row is still a lesion of the CSV's kind (told by its columns), kept without location by the reader.
      l.type = col.count("mass shape") ? "mass" : col.count("calc type") ? "calcification" : "other";
    }
    l.shape = l.type == "mass" ? get("mass shape") : get("calc type");
    l.margins = l.type == "mass" ? get("mass margins") : get("calc distribution");
    l.pathology = get("pathology");
    const std::string assessment = get("assessment"), subtlety = get("subtlety");
    l.assessment = assessment.empty() ? -1 : small_integer(assessment, 0, 6, ok);
    if (!ok) bad("bad value: assessment '" + assessment + "' is not 0..6"), l.assessment = -1;
    l.subtlety = subtlety.empty() ? 0 : small_integer(subtlety, 0, 5, ok);
    if (!ok) bad("bad value: subtlety '" + subtlety + "' is not 0..5"), l.subtlety = 0;
    for (auto [cell, key] : {std::pair{&row.image, "image file path"},
                             {&row.crop, "cropped image file path"},
                             {&row.mask, "roi mask file path"}}) {
      *cell = get(key);
      std::replace(cell->begin(), cell->end(), '\\', '/');
      if (cell->empty()) bad(std::string("bad value: empty ") + key);
    }
    rows.push_back(std::move(row));
  }
  if (col.empty()) throw BadInput(name + ": no header line (an empty file?)");
  return rows;
}

Dataset read_cbis_ddsm(const DatasetOptions& options) {
  if (!options.official_split.empty() && options.official_split != "train" && options.official_split != "test")
    throw UsageError("the official split is train or test, not '" + options.official_split + "'");
  Dataset ds;
  ds.format = "cbis-ddsm";
  ds.root = options.root;
  std::vector<std::string> csvs;
  for (const std::string& c : options.csv) csvs.push_back(is_file(c) ? c : join_path(options.root, c));
  if (options.csv.empty())
    for (const char* name : kPublishedCsvs)
      if (is_file(join_path(options.root, name))) csvs.push_back(join_path(options.root, name));
  if (csvs.empty())
    throw BadInput("no CBIS-DDSM case CSV under '" + options.root + "' (looked for " + kPublishedCsvs[0] +
                   " and the three others; --csv names them)");

  std::map<std::string, size_t> by_key;      // patient|side|view -> index into ds.images
  std::map<std::string, std::string> by_id;  // image id -> key (ids must stay unique)
  std::map<std::string, ImageSize> sizes;    // path -> size from its header
  std::vector<bool> split_from_mass;         // per image: its split came from a mass row
  int swapped = 0, split_conflicts = 0;
  auto size_of = [&](const std::string& path) {
    auto it = sizes.find(path);
    return it != sizes.end() ? it->second : sizes[path] = image_size(path);
  };
  auto readable = [&](const std::string& path) {
    try {
      size_of(path);
      return true;
    } catch (const BadInput&) {
      return false;
    }
  };
  // A skipped row whose image (patient, side, view) is known still tells that the image holds a lesion: once every
  // CSV is read, the lesion is kept on that image without location, so that no negative is drawn from it.
  struct Pending {
    std::string key;
    DatasetLesion lesion;
    size_t skipped;  // index into ds.skipped
  };
  std::vector<Pending> pending;
  for (const std::string& csv_path : csvs) {
    for (const CbisRow& row : parse_cbis_csv(read_text(csv_path), csv_path)) {
      const std::string key = row.patient_id + "|" + row.laterality + "|" + row.view;
      const bool known_image = !row.patient_id.empty() && !row.laterality.empty() && !row.view.empty();
      auto skip = [&](const std::string& reason) {
        bad_row(ds, options, row.where, reason);  // returns only with --skip-bad
        if (known_image) pending.push_back({key, row.lesion, ds.skipped.size() - 1});
      };
      if (!row.error.empty()) {
        skip(row.error);
        continue;
      }
      auto found = by_key.find(key);
      if (found == by_key.end()) {
        std::vector<std::string> files = resolve(options.root, row.image);
        if (files.size() > 1) {  // a series folder's files: the images among them (a licence file is not one)
          std::vector<std::string> images;
          for (const std::string& f : files)
            if (readable(f)) images.push_back(f);
          if (!images.empty()) files = images;
        }
        if (files.size() != 1) {
          skip("file not found: image file path '" + row.image + "' under '" + options.root + "'" +
               (files.size() > 1 ? " (its series folder holds several files)" : ""));
          continue;
        }
        try {
          size_of(files[0]);
        } catch (const BadInput& e) {
          skip(std::string("unreadable image: ") + e.what());
          continue;
        }
        const std::string id = image_id(row.image);
        if (by_id.count(id)) {
          skip("duplicate image id: '" + id + "' already names another image");
          continue;
        }
        by_id[id] = key;
        DatasetImage im;
        im.id = id, im.path = files[0], im.patient_id = row.patient_id, im.laterality = row.laterality;
        im.view = row.view, im.density = row.density, im.official_split = row.split;
        found = by_key.emplace(key, ds.images.size()).first;
        ds.images.push_back(im);
        split_from_mass.push_back(row.lesion.type == "mass");
      }
      DatasetImage& im = ds.images[found->second];
      // The split: a mass CSV's wins over a calcification CSV's (massmap searches masses).
      if (row.split != im.official_split) {
        ++split_conflicts;
        if (row.lesion.type == "mass" && !split_from_mass[found->second]) im.official_split = row.split;
      }
      split_from_mass[found->second] = split_from_mass[found->second] || row.lesion.type == "mass";

      // The ROI mask: whichever of the crop and mask files has the image's size (the columns are swapped in places).
      DatasetLesion lesion = row.lesion;
      const ImageSize full = size_of(im.path);
      const std::vector<std::string> from_mask = resolve(options.root, row.mask);
      std::vector<std::string> candidates = from_mask;
      for (const std::string& f : resolve(options.root, row.crop))
        if (std::find(candidates.begin(), candidates.end(), f) == candidates.end()) candidates.push_back(f);
      if (candidates.empty()) {
        bad_row(ds, options, row.where,
                "file not found: ROI mask '" + row.mask + "' or crop '" + row.crop + "' under '" + options.root +
                    "' (lesion kept without location)");
      } else {
        // Files that are no image (a licence or index file in a series folder) count only when nothing else does.
        std::string chosen, sizes_seen, unreadable;
        for (const std::string& f : candidates) {
          ImageSize s;
          try {
            s = size_of(f);
          } catch (const BadInput& e) {
            if (unreadable.empty()) unreadable = e.what();
            continue;
          }
          sizes_seen += (sizes_seen.empty() ? "" : ", ") + std::to_string(s.width) + " x " + std::to_string(s.height);
          if (chosen.empty() && s.width == full.width && s.height == full.height) chosen = f;
        }
        if (!chosen.empty()) {
          lesion.mask_path = chosen;
          swapped += std::find(from_mask.begin(), from_mask.end(), chosen) == from_mask.end();
        } else if (!sizes_seen.empty()) {
          // Always reported, never fatal: the published data hold such masks. Kept without location.
          ds.skipped.push_back({row.where, "mask size differs from the image: ROI files of " + sizes_seen +
                                               " pixels, the image " + std::to_string(full.width) + " x " +
                                               std::to_string(full.height) + " (lesion kept without location)"});
        } else {
          bad_row(ds, options, row.where, "unreadable ROI file: " + unreadable + " (lesion kept without location)");
        }
      }
      im.lesions.push_back(lesion);
    }
  }
  for (const Pending& p : pending) {
    const auto found = by_key.find(p.key);
    if (found == by_key.end()) continue;  // no image of that patient, side and view: nothing to keep it on
    ds.images[found->second].lesions.push_back(p.lesion);
    ds.skipped[p.skipped].reason += " (lesion kept without location)";
  }
  ds.notes.push_back(
      "CBIS-DDSM has no normal images: every image holds at least one lesion (negatives come from "
      "outside the ROIs)");
  if (swapped)
    ds.notes.push_back(std::to_string(swapped) +
                       " rows had the crop and ROI mask columns swapped (told apart by size: the mask is the "
                       "image's size)");
  if (split_conflicts)
    ds.notes.push_back(std::to_string(split_conflicts) +
                       " rows named an image of the other official split (mass and calcification splits differ); "
                       "the mass CSV's split is kept");
  if (!options.official_split.empty()) {
    const size_t before = ds.images.size();
    ds.images.erase(std::remove_if(ds.images.begin(), ds.images.end(),
                                   [&](const DatasetImage& im) { return im.official_split != options.official_split; }),
                    ds.images.end());
    ds.notes.push_back("official split " + options.official_split + ": " + std::to_string(before - ds.images.size()) +
                       " images of the other split left out");
  }
  return ds;
}

}  // namespace detail
}  // namespace massmap::data
