#include "data/manifest.h"

#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/parse_number.h"
#include "base/text.h"
#include "data/csv.h"

namespace massmap::data {

const char* const kManifestColumns[] = {
    "image", "patient_id", "laterality", "view",  "density",   "pixel_spacing_mm", "lesion_id", "lesion_type",
    "shape", "subtlety",   "box_x",      "box_y", "box_width", "box_height",       "mask"};
constexpr int kColumnCount = int(sizeof kManifestColumns / sizeof kManifestColumns[0]);

std::string Manifest::metadata_value(const std::string& key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return v;
  return "";
}

namespace {

std::string quote(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::string manifest_to_csv(const Manifest& m) {
  std::string out;
  for (const auto& [k, v] : m.metadata) {
    if (k.find_first_of(":\r\n") != std::string::npos || v.find_first_of("\r\n") != std::string::npos)
      throw BadInput("manifest metadata '" + k + "' holds a colon in its key or a line break");
    out += "# " + k + ": " + v + "\n";
  }
  for (int c = 0; c < kColumnCount; ++c) out += std::string(c ? "," : "") + kManifestColumns[c];
  out += "\n";
  for (const ManifestImage& im : m.images) {
    const std::string head = quote(im.image) + "," + quote(im.patient_id) + "," + quote(im.laterality) + "," +
                             quote(im.view) + "," + quote(im.density) + "," +
                             (im.spacing_mm > 0 ? decimal_text(im.spacing_mm) : "");
    if (im.lesions.empty()) out += head + ",,,,,,,,,\n";
    for (const ManifestLesion& l : im.lesions) {
      if (l.type.empty()) throw BadInput("manifest: a lesion of " + im.image + " has no type");
      out += head + "," + std::to_string(l.id) + "," + quote(l.type) + "," + quote(l.shape) + "," +
             (l.subtlety > 0 ? std::to_string(l.subtlety) : "") + ",";
      if (l.has_box)
        out += std::to_string(l.box.x) + "," + std::to_string(l.box.y) + "," + std::to_string(l.box.width) + "," +
               std::to_string(l.box.height);
      else
        out += ",,,";
      out += "," + quote(l.mask) + "\n";
    }
  }
  return out;
}

void write_manifest(const std::string& path, const Manifest& m) {
  const std::string text = manifest_to_csv(m);
  write_file_atomic(path, text.data(), text.size());
}

Manifest parse_manifest(const std::string& text, const std::string& name) {
  Manifest m;
  CsvReader csv(text, name);
  auto fail = [&](int at, const std::string& why) -> void {
    throw BadInput(name + ":" + std::to_string(at) + ": " + why);
  };
  // Metadata and the header.
  std::string marked;
  CsvRecord header_record;
  while (true) {
    const int at = csv.line();
    if (csv.next_marked_line('#', marked)) {
      if (marked.find('\r') != std::string::npos) fail(at, "a metadata line holds a carriage return");
      const size_t colon = marked.find(':');
      if (colon != std::string::npos)
        m.metadata.emplace_back(trim(marked.substr(1, colon - 1)), trim(marked.substr(colon + 1)));
      continue;
    }
    if (!csv.next(header_record)) break;
    if (header_record.blank()) continue;
    const std::vector<std::string>& header = header_record.fields;
    std::unordered_map<std::string, int> col;
    for (size_t i = 0; i < header.size(); ++i) {
      if (col.count(header[i])) fail(at, "column '" + header[i] + "' appears twice");
      col[header[i]] = int(i);
    }
    for (const char* required : {"image", "patient_id", "laterality", "view"})
      if (!col.count(required)) fail(at, std::string("the header lacks the column '") + required + "'");
    for (const std::string& h : header) {
      bool known = false;
      for (int c = 0; c < kColumnCount; ++c) known = known || h == kManifestColumns[c];
      if (!known) fail(at, "unknown column '" + h + "'");
    }
    // Rows.
    std::unordered_map<std::string, size_t> by_image;
    CsvRecord record;
    while (csv.next(record)) {
      const int row = record.line;
      const std::vector<std::string>& f = record.fields;
      if (record.blank()) continue;
      if (f.size() != header.size())
        fail(row, std::to_string(f.size()) + " fields where the header has " + std::to_string(header.size()));
      auto get = [&](const char* c) -> std::string {
        auto it = col.find(c);
        return it == col.end() ? std::string() : f[size_t(it->second)];
      };
      auto integer = [&](const char* c, bool& present) -> int {
        const std::string s = get(c);
        present = !s.empty();
        if (!present) return 0;
        const auto v = parse_integer(s, -1000000000, 1000000000);
        if (!v) fail(row, std::string(c) + " '" + s + "' is not an integer");
        return int(*v);
      };
      ManifestImage im;
      im.image = get("image"), im.patient_id = get("patient_id"), im.laterality = get("laterality");
      im.view = get("view"), im.density = get("density");
      if (im.image.empty()) fail(row, "empty image path");
      if (im.laterality != "L" && im.laterality != "R") fail(row, "laterality '" + im.laterality + "' is not L or R");
      if (!im.density.empty() && (im.density.size() != 1 || im.density[0] < 'A' || im.density[0] > 'D'))
        fail(row, "density '" + im.density + "' is not A, B, C or D");
      const std::string spacing = get("pixel_spacing_mm");
      if (!spacing.empty()) {
        im.spacing_mm = parse_decimal(spacing).value_or(0);
        if (!(im.spacing_mm > 0 && im.spacing_mm < 100))
          fail(row, "pixel_spacing_mm '" + spacing + "' is not a positive number of mm");
      }
      auto found = by_image.find(im.image);
      if (found == by_image.end()) {
        im.line = row;
        by_image[im.image] = m.images.size();
        m.images.push_back(im);
        found = by_image.find(im.image);
      } else {
        const ManifestImage& first = m.images[found->second];
        if (first.patient_id != im.patient_id || first.laterality != im.laterality || first.view != im.view ||
            first.density != im.density || first.spacing_mm != im.spacing_mm)
          fail(row, "the image columns of " + im.image + " differ from its earlier row");
      }
      ManifestLesion l;
      l.type = get("lesion_type");
      bool has_id, has_sub, bx, by, bw, bh;
      l.id = integer("lesion_id", has_id);
      l.shape = get("shape");
      l.subtlety = integer("subtlety", has_sub);
      l.box = {integer("box_x", bx), integer("box_y", by), integer("box_width", bw), integer("box_height", bh)};
      l.mask = get("mask");
      if (l.type.empty()) {
        if (has_id || has_sub || bx || by || bw || bh || !l.mask.empty() || !l.shape.empty())
          fail(row, "lesion columns filled but lesion_type empty");
        continue;
      }
      if (l.type != "mass" && l.type != "calcification")
        fail(row, "lesion_type '" + l.type + "' is not mass or calcification");
      if (has_sub && (l.subtlety < 1 || l.subtlety > 5)) fail(row, "subtlety must lie in 1..5");
      if (bx != by || bx != bw || bx != bh) fail(row, "a box needs all four of box_x, box_y, box_width, box_height");
      l.has_box = bx;
      if (l.has_box && (l.box.width < 1 || l.box.height < 1 || l.box.x < 0 || l.box.y < 0))
        fail(row, "the box has a negative corner or no area");
      if (!l.has_box && l.mask.empty()) fail(row, "a lesion needs a box or a mask");
      ManifestImage& target = m.images[found->second];
      if (!has_id) l.id = int(target.lesions.size()) + 1;
      target.lesions.push_back(l);
    }
    return m;
  }
  fail(csv.line(), "no header line");
  return m;
}

Manifest read_manifest(const std::string& path) {
  const std::vector<char> bytes = read_file_bytes(path);
  return parse_manifest(std::string(bytes.begin(), bytes.end()), path);
}

}  // namespace massmap::data
