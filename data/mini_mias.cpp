// mini-MIAS: Info.txt ("mdb001 G CIRC B 535 425 197": reference, background tissue, class, severity, x, y,
// radius) and the images root/mdbNNN.pgm. Facts from the database's readme: 1024 x 1024 pixels at 200 um, the
// coordinate origin at the BOTTOM-left corner, films in pairs per patient with the left breast at even numbers and
// the right at odd ones, mediolateral oblique views only; calcifications spread over the breast have no centre.
#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

#include "base/errors.h"
#include "data/dataset_internal.h"

namespace massmap::data {
namespace detail {

namespace {

constexpr double kMiasSpacingMm = 0.2;

bool whole_number(const std::string& s, int& v) {
  if (s.empty() || s.size() > 6 || !std::all_of(s.begin(), s.end(), ::isdigit)) return false;
  v = std::stoi(s);
  return true;
}

std::string lesion_type(const std::string& abnormality) {
  if (abnormality == "CIRC" || abnormality == "SPIC" || abnormality == "MISC") return "mass";
  if (abnormality == "CALC") return "calcification";
  return "other";  // ARCH, ASYM: neither mass nor calcification
}

// root/mdb001.pgm, or .png, in either case.
std::string find_image(const std::string& root, const std::string& ref) {
  std::string upper = ref;
  for (char& c : upper) c = char(std::toupper((unsigned char)c));
  for (const std::string& base : {ref, upper})
    for (const char* ext : {".pgm", ".PGM", ".png", ".PNG"})
      if (is_file(join_path(root, base + ext))) return join_path(root, base + ext);
  return "";
}

}  // namespace

std::vector<MiasEntry> parse_mias_info(const std::string& text, const std::string& name) {
  std::vector<MiasEntry> out;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::istringstream fields(line);
    std::vector<std::string> t;
    for (std::string f; fields >> f;) t.push_back(f);
    if (t.empty() || t[0][0] == '#') continue;
    std::string ref = t[0];
    for (char& c : ref) c = char(std::tolower((unsigned char)c));
    const bool entry = ref.size() == 6 && ref.compare(0, 3, "mdb") == 0;
    if (!entry && out.empty()) continue;  // a header before the first entry
    MiasEntry e;
    e.where = file_name(name) + ":" + std::to_string(number);
    auto bad = [&](const std::string& why) {
      if (e.error.empty()) e.error = why;
    };
    if (!entry || !whole_number(ref.substr(3), e.number) || e.number < 1) {
      bad("bad line: '" + t[0] + "' is not a reference mdbNNN");
      out.push_back(e);
      continue;
    }
    e.ref = ref;
    e.tissue = t.size() > 1 ? t[1] : "";
    e.abnormality = t.size() > 2 ? t[2] : "";
    if (e.tissue != "F" && e.tissue != "G" && e.tissue != "D")
      bad("bad value: background tissue '" + e.tissue + "' is not F, G or D");
    static const char* const kClasses[] = {"CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM"};
    if (std::find(std::begin(kClasses), std::end(kClasses), e.abnormality) == std::end(kClasses))
      bad("bad value: class '" + e.abnormality + "' is not CALC, CIRC, SPIC, MISC, ARCH, ASYM or NORM");
    if (e.abnormality == "NORM") {
      if (t.size() > 3) bad("bad line: a NORM line with more than three fields");
    } else {
      e.severity = t.size() > 3 ? t[3] : "";
      if (e.severity != "B" && e.severity != "M") bad("bad value: severity '" + e.severity + "' is not B or M");
      if (t.size() == 7) {
        e.has_location = whole_number(t[4], e.x) && whole_number(t[5], e.y) && whole_number(t[6], e.radius);
        if (!e.has_location || e.radius < 1) bad("bad value: x, y and radius must be whole numbers, radius >= 1");
      } else if (t.size() != 4) {
        bad("bad line: " + std::to_string(t.size()) + " fields (4 without a location, 7 with x, y and radius)");
      }
    }
    out.push_back(e);
  }
  return out;
}

Dataset read_mini_mias(const DatasetOptions& options) {
  if (options.csv.size() > 1)
    throw UsageError("mini-MIAS takes one Info.txt, not " + std::to_string(options.csv.size()));
  std::string info =
      options.csv.empty() ? "" : (is_file(options.csv[0]) ? options.csv[0] : join_path(options.root, options.csv[0]));
  for (const char* name : {"Info.txt", "info.txt", "INFO.TXT"})
    if (info.empty() && is_file(join_path(options.root, name))) info = join_path(options.root, name);
  if (info.empty()) throw BadInput("no Info.txt under '" + options.root + "' (--csv names it)");
  Dataset ds;
  ds.format = "mini-mias";
  ds.root = options.root;
  std::map<std::string, size_t> by_ref;    // reference -> index into ds.images
  std::map<std::string, ImageSize> sizes;  // reference -> the image's size
  std::map<std::string, bool> normal;      // reference -> listed as NORM
  int unlocated = 0;
  // A skipped line that names a lesion (any class but NORM) still tells that the image holds one: the lesion is
  // kept without location, so that no negative is drawn from that image. `skipped` indexes ds.skipped.
  struct Pending {
    std::string ref;
    DatasetLesion lesion;
    size_t skipped;
  };
  std::vector<Pending> pending;  // lines skipped before their image was known
  auto lesion_of = [](const MiasEntry& e) {
    DatasetLesion l;
    l.type = lesion_type(e.abnormality);  // "other" for an unknown class
    l.shape = e.abnormality;
    l.pathology = e.severity == "B" || e.severity == "M" ? e.severity : "";
    l.assessment = -1;
    return l;
  };
  const std::string kept = " (lesion kept without location)";
  for (const MiasEntry& e : parse_mias_info(read_text(info), info)) {
    if (!e.error.empty()) {
      bad_row(ds, options, e.where, e.error);  // returns only with --skip-bad
      if (!e.ref.empty() && e.abnormality != "NORM") pending.push_back({e.ref, lesion_of(e), ds.skipped.size() - 1});
      continue;
    }
    auto found = by_ref.find(e.ref);
    if (found == by_ref.end()) {
      DatasetImage im;
      im.id = e.ref;
      im.path = find_image(options.root, e.ref);
      if (im.path.empty()) {
        bad_row(ds, options, e.where, "file not found: image " + e.ref + ".pgm (or .png) under '" + options.root + "'");
        continue;
      }
      try {
        sizes[e.ref] = image_size(im.path);
      } catch (const BadInput& err) {
        bad_row(ds, options, e.where, std::string("unreadable image: ") + err.what());
        continue;
      }
      char patient[16];
      std::snprintf(patient, sizeof patient, "P%03d", (e.number + 1) / 2);
      im.patient_id = patient;
      im.laterality = e.number % 2 ? "R" : "L";
      im.view = "MLO";
      im.density = e.tissue;
      im.spacing_mm = kMiasSpacingMm;
      found = by_ref.emplace(e.ref, ds.images.size()).first;
      ds.images.push_back(im);
      normal[e.ref] = e.abnormality == "NORM";
    } else {
      DatasetImage& im = ds.images[found->second];
      std::string why;
      if (im.density != e.tissue)
        why = "bad value: background tissue " + e.tissue + " where an earlier line of " + e.ref + " has " + im.density;
      else if (normal[e.ref] || e.abnormality == "NORM")
        why = "bad line: " + e.ref + " is listed both as NORM and with a lesion";
      if (!why.empty()) {
        const bool lesion = e.abnormality != "NORM";
        bad_row(ds, options, e.where, why);  // returns only with --skip-bad
        if (lesion) {
          ds.skipped.back().reason += kept;
          im.lesions.push_back(lesion_of(e));
        }
        continue;
      }
    }
    if (e.abnormality == "NORM") continue;
    DatasetLesion l = lesion_of(e);
    if (e.has_location) {
      const ImageSize size = sizes[e.ref];
      if (e.x >= size.width || e.y >= size.height) {
        bad_row(ds, options, e.where,
                "bad value: centre (" + std::to_string(e.x) + ", " + std::to_string(e.y) + ") lies outside the " +
                    std::to_string(size.width) + " x " + std::to_string(size.height) + " image");
        ds.skipped.back().reason += kept;  // bad_row returned: --skip-bad
        ds.images[found->second].lesions.push_back(l);
        continue;
      }
      // Bottom-left origin, pixel centres on whole numbers: y = 0 is the last row.
      l.has_circle = true;
      l.circle_x = e.x, l.circle_y = size.height - 1 - e.y, l.circle_radius = e.radius;
    } else {
      ++unlocated;
    }
    ds.images[found->second].lesions.push_back(l);
  }
  for (const Pending& p : pending) {
    const auto found = by_ref.find(p.ref);
    if (found == by_ref.end()) continue;  // no image: nothing to keep it on
    ds.images[found->second].lesions.push_back(p.lesion);
    ds.skipped[p.skipped].reason += kept;
  }
  ds.notes.push_back("mini-MIAS coordinates count from the bottom-left corner: image row = height - 1 - y");
  if (unlocated)
    ds.notes.push_back(std::to_string(unlocated) +
                       " lesions have no centre (calcifications spread over the breast): no mask or ROI for them");
  return ds;
}

}  // namespace detail
}  // namespace massmap::data
