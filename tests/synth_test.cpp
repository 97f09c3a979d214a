// The synthetic mammogram generator (synth-v1) and our manifest: determinism, the parenchyma's power-law exponent,
// mass sizes, density ordering, loose ROI boxes around exact masks, pectoral muscle only in MLO, bright labels in
// the corner away from the chest wall, the normal fraction, the manifest's round trip and errors, and the command.
#include "data/synth.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/errors.h"
#include "data/image_io.h"
#include "data/manifest.h"
#include "data/synth_internal.h"

namespace fs = std::filesystem;
using namespace massmap;
using namespace massmap::data;

namespace {

// Small images keep the suite fast: 208x256 at 0.4 mm is an 83 x 102 mm field, as the default at 0.2 mm.
SynthParams small_params() {
  SynthParams p;
  p.width = 208, p.height = 256, p.spacing_mm = 0.4;
  return p;
}

double max_feret_mm(const SynthLesion& l, int width, double spacing) {
  std::vector<std::pair<int, int>> edge;  // boundary pixels of the mask
  const int height = int(l.mask.size()) / width;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      if (!l.mask[size_t(y * width + x)]) continue;
      bool boundary = x == 0 || y == 0 || x == width - 1 || y == height - 1;
      for (int k = 0; k < 4 && !boundary; ++k) {
        const int dx = k == 0 ? 1 : k == 1 ? -1 : 0, dy = k == 2 ? 1 : k == 3 ? -1 : 0;
        boundary = !l.mask[size_t((y + dy) * width + x + dx)];
      }
      if (boundary) edge.emplace_back(x, y);
    }
  double best = 0;
  for (size_t i = 0; i < edge.size(); ++i)
    for (size_t j = i + 1; j < edge.size(); ++j)
      best = std::max(best, std::hypot(edge[i].first - edge[j].first, edge[i].second - edge[j].second));
  return (best + 1) * spacing;  // centre-to-centre distance plus one pixel of extent
}

struct Result {
  int code = -1;
  std::string output;
};

Result run(const std::string& args) {
  const std::string log = fs::temp_directory_path() / ("massmap-synth-" + std::to_string(getpid()) + ".log");
  const std::string cmd = std::string(MASSMAP_BINARY) + " " + args + " >" + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  fs::remove(log);
  return r;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("synth: an image is a pure function of (seed, index)") {
  const SynthParams p = small_params();
  const SynthImage a = synth_image(p, 7, 5), b = synth_image(p, 7, 5);
  CHECK(a.pixels == b.pixels);
  CHECK(a.regions == b.regions);
  REQUIRE(a.lesions.size() == b.lesions.size());
  for (size_t i = 0; i < a.lesions.size(); ++i) CHECK(a.lesions[i].mask == b.lesions[i].mask);
  const SynthImage other_seed = synth_image(p, 8, 5), other_index = synth_image(p, 7, 9);
  size_t differ_seed = 0, differ_index = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    differ_seed += a.pixels[i] != other_seed.pixels[i];
    differ_index += a.pixels[i] != other_index.pixels[i];
  }
  CHECK(differ_seed > a.pixels.size() / 4);
  CHECK(differ_index > a.pixels.size() / 4);
  // 12-bit values; images 4p..4p+3 are L CC, L MLO, R CC, R MLO of patient p.
  CHECK(*std::max_element(a.pixels.begin(), a.pixels.end()) <= 4095);
  CHECK(a.patient_id == "P00001");
  CHECK(a.laterality == 'L');
  CHECK(a.view == "MLO");
  CHECK(a.name() == "P00001_L_MLO");
}

TEST_CASE("synth: the 2-D FFT is the discrete Fourier transform (plain double sums)") {
  const int rows = 8, cols = 16;
  std::vector<std::complex<double>> input(size_t(rows * cols));  // (rows, cols)
  for (size_t i = 0; i < input.size(); ++i) input[i] = {normal_at(5, 1, 2 * i), normal_at(5, 1, 2 * i + 1)};
  for (const bool inverse : {false, true}) {
    std::vector<std::complex<double>> fast = input;
    synth::fft2d(fast, rows, cols, inverse);
    const double sign = inverse ? 1 : -1;
    double worst = 0;
    for (int u = 0; u < rows; ++u)
      for (int v = 0; v < cols; ++v) {
        std::complex<double> sum = 0;
        for (int r = 0; r < rows; ++r)
          for (int c = 0; c < cols; ++c) {
            const double angle = sign * 2 * synth::kPi * (double(u * r) / rows + double(v * c) / cols);
            sum += input[size_t(r * cols + c)] * std::complex<double>(std::cos(angle), std::sin(angle));
          }
        worst = std::max(worst, std::abs(fast[size_t(u * cols + v)] - sum));
      }
    CAPTURE(inverse);
    CHECK(worst < 1e-10);
  }
}

// synth-v1 is frozen: its images are data that results are quoted on. A digest of every output of one image (the
// pixels, the glandular fraction's float bits, the region map, each lesion's mask and boxes) pins it, so a change to
// the generator's arithmetic (a faster FFT, a reordered sum) that moves a single value fails here rather than shifting
// every figure quietly.
TEST_CASE("synth: synth-v1's output is frozen (a digest of one image and its lesions)") {
  SynthParams p = small_params();
  p.normal_fraction = 0;  // an image with lesions
  const SynthImage img = synth_image(p, 3, 6);
  uint64_t digest = 1469598103934665603ull;  // FNV-1a, 64 bits
  auto add = [&](uint64_t value) {
    for (int b = 0; b < 8; ++b) digest = (digest ^ ((value >> (8 * b)) & 0xff)) * 1099511628211ull;
  };
  for (const auto v : img.pixels) add(uint64_t(v));
  for (const auto v : img.regions) add(uint64_t(v));
  for (const float v : img.glandular) {  // every bit of the float fields too, not only what survives 12-bit pixels
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    add(bits);
  }
  for (const SynthLesion& l : img.lesions) {
    for (const auto v : l.mask) add(uint64_t(v));
    for (const Box& b : {l.box, l.tight})
      add(uint64_t(b.x)), add(uint64_t(b.y)), add(uint64_t(b.width)), add(uint64_t(b.height));
  }
  MESSAGE("digest " << digest << ", " << img.lesions.size() << " lesions");
  CHECK(img.lesions.size() >= 1);
  CHECK(digest == 11425847998505339738ull);
}

TEST_CASE("synth: the parenchyma's power spectrum falls as 1/f^beta with beta about 3") {
  double sum = 0;
  for (uint64_t stream = 0; stream < 3; ++stream) {
    const std::vector<float> field = power_law_field(256, 256, 0.2, 3.0, 0.02, 11, stream);
    const double beta = fitted_power_law_exponent(field, 256, 256, 0.2, 0.1, 1.5);
    MESSAGE("fitted beta of the tissue field (stream " << stream << "): " << beta);
    CHECK(beta > 2.6);
    CHECK(beta < 3.4);
    sum += beta;
  }
  // The generated background itself: a crop inside the breast of a fatty (A) and a dense (D) image, before any
  // lesion, vessel or label. Reported, not asserted tightly: the soft threshold, the blur and the noise bend the
  // spectrum at both ends.
  SynthParams p = small_params();
  p.width = 256, p.height = 320, p.spacing_mm = 0.2, p.normal_fraction = 1, p.mass_max_mm = 20;
  p.labels = false;
  for (const char* density : {"A", "D"}) {
    p.density = density;
    const SynthImage img = synth_image(p, 3, 0);  // L CC: breast on the left, centred vertically
    const int crop = 96, x0 = 8, y0 = img.height / 2 - crop / 2;
    std::vector<float> patch(size_t(crop * crop));
    for (int y = 0; y < crop; ++y)
      for (int x = 0; x < crop; ++x) patch[size_t(y * crop + x)] = img.pixels[size_t((y0 + y) * img.width + x0 + x)];
    const double beta = fitted_power_law_exponent(patch, crop, crop, p.spacing_mm, 0.1, 1.0);
    MESSAGE("fitted beta of a generated density-" << std::string(density) << " background crop: " << beta);
    CHECK(beta > 2.4);
    CHECK(beta < 3.8);
  }
}

TEST_CASE("synth: masses are 5-30 mm (max Feret of the mask), inside loose ROI boxes") {
  SynthParams p = small_params();
  p.normal_fraction = 0;
  std::vector<double> sizes;
  std::map<std::string, int> shapes;
  int looser = 0;
  for (int64_t i = 0; i < 24; ++i) {
    const SynthImage img = synth_image(p, 21, i);
    for (const SynthLesion& l : img.lesions) {
      if (l.type != LesionType::mass) continue;
      const double feret = max_feret_mm(l, img.width, p.spacing_mm);
      CHECK_MESSAGE(std::fabs(feret - l.diameter_mm) < 3 * p.spacing_mm + 0.04 * l.diameter_mm,
                    "image " << i << " " << l.shape << ": mask " << feret << " mm, drawn " << l.diameter_mm << " mm");
      CHECK(feret >= p.mass_min_mm - 2 * p.spacing_mm);
      CHECK(feret <= p.mass_max_mm + 2 * p.spacing_mm);
      sizes.push_back(feret);
      shapes[l.shape] += 1;
      // Every mask pixel lies in the ROI box, and the box is looser than the mask's own bounding box.
      int outside = 0, inside = 0;
      for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x) {
          if (!l.mask[size_t(y * img.width + x)]) continue;
          ++inside;
          outside += x < l.box.x || x >= l.box.x + l.box.width || y < l.box.y || y >= l.box.y + l.box.height;
        }
      CHECK(inside > 0);
      CHECK(outside == 0);
      looser += l.box.width * l.box.height > 1.3 * l.tight.width * l.tight.height;
    }
  }
  REQUIRE(sizes.size() >= 30);
  std::sort(sizes.begin(), sizes.end());
  MESSAGE(sizes.size() << " masses, max Feret " << sizes.front() << " .. " << sizes.back() << " mm, median "
                       << sizes[sizes.size() / 2]);
  CHECK(sizes.front() < 9);
  CHECK(sizes.back() > 20);
  CHECK(shapes.size() == 4);
  CHECK(looser >= int(sizes.size()) * 9 / 10);
}

TEST_CASE("synth: a calcification cluster's mask holds its specks: bright, in the breast, inside the tight box") {
  const SynthParams p = small_params();
  int clusters = 0;
  for (int64_t i = 0; i < 16; ++i) {
    const SynthImage img = synth_image(p, 5, i);
    for (const SynthLesion& l : img.lesions) {
      if (l.type != LesionType::calcification) continue;
      ++clusters;
      REQUIRE(l.mask.size() == img.pixels.size());
      int pixels = 0, outside_tight = 0, outside_breast = 0;
      double inside_sum = 0, ring_sum = 0;
      int ring = 0;
      for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x) {
          const size_t k = size_t(y) * size_t(img.width) + size_t(x);
          const bool in_tight =
              x >= l.tight.x && x < l.tight.x + l.tight.width && y >= l.tight.y && y < l.tight.y + l.tight.height;
          if (l.mask[k]) {
            ++pixels;
            inside_sum += img.pixels[k];
            outside_tight += !in_tight;
            outside_breast += img.regions[k] == kAir;
          } else if (in_tight && img.regions[k] != kAir) {
            ring_sum += img.pixels[k], ++ring;
          }
        }
      CHECK(pixels >= 5);  // at least one pixel per speck (5-15 specks, some may overlap)
      CHECK(outside_tight == 0);
      CHECK(outside_breast == 0);
      // Specks are brighter than the rest of their tight box.
      if (ring > 0) CHECK(inside_sum / pixels > ring_sum / ring);
    }
  }
  CHECK(clusters >= 3);
}

TEST_CASE("synth: density categories order the glandular fraction A < B < C < D") {
  SynthParams p = small_params();
  double previous = -1, previous_pixel = 0;
  for (const char* density : {"A", "B", "C", "D"}) {
    p.density = density;
    double sum = 0, n = 0, pixel_sum = 0;
    for (int64_t i = 0; i < 4; ++i) {
      const SynthImage img = synth_image(p, 5, i);
      CHECK(img.density == density[0]);
      for (size_t k = 0; k < img.regions.size(); ++k)
        if (img.regions[k] == kBreast) sum += img.glandular[k], pixel_sum += img.pixels[k], n += 1;
    }
    const double mean = sum / n, pixel = pixel_sum / n;
    MESSAGE("density " << std::string(density) << ": mean glandular fraction " << mean << ", mean breast pixel "
                       << pixel);
    CHECK(mean > previous + 0.1);
    CHECK(pixel > previous_pixel + 50);  // the images themselves grow denser
    previous_pixel = pixel;
    CHECK(mean == doctest::Approx(p.gland_fraction[density[0] - 'A']).epsilon(0.05));
    previous = mean;
  }
}

TEST_CASE("synth: pectoral muscle in MLO only; labels bright in the corner away from the chest wall") {
  const SynthParams p = small_params();
  for (int64_t i = 0; i < 8; ++i) {
    const SynthImage img = synth_image(p, 13, i);
    int pectoral = 0, label = 0, label_left = 0;
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x) {
        const size_t k = size_t(y * img.width + x);
        pectoral += img.regions[k] == kPectoral;
        if (img.regions[k] == kLabel) {
          ++label;
          label_left += x < img.width / 2;
          CHECK(img.pixels[k] == uint16_t(p.label_value));
        }
      }
    if (img.view == "MLO") {
      CHECK(pectoral > img.width * img.height / 50);
    } else {
      CHECK(pectoral == 0);
    }
    CHECK(label > 50);
    // Left breasts have the chest wall at x = 0 and the label at the right; right breasts are mirrored.
    const int mid = img.height / 2;
    if (img.laterality == 'L') {
      CHECK(label_left == 0);
      CHECK(img.regions[size_t(mid * img.width)] != kAir);
      CHECK(img.regions[size_t(mid * img.width + img.width - 1)] == kAir);
    } else {
      CHECK(label_left == label);
      CHECK(img.regions[size_t(mid * img.width + img.width - 1)] != kAir);
      CHECK(img.regions[size_t(mid * img.width)] == kAir);
    }
    // The breast is brighter than air, the label brighter than the breast's median.
    std::vector<uint16_t> air, breast;
    for (size_t k = 0; k < img.pixels.size(); ++k)
      (img.regions[k] == kAir ? air : img.regions[k] == kBreast ? breast : air).push_back(img.pixels[k]);
    std::nth_element(breast.begin(), breast.begin() + ptrdiff_t(breast.size() / 2), breast.end());
    CHECK(breast[breast.size() / 2] > 600);
    CHECK(p.label_value > breast[breast.size() / 2] + 1000);
  }
}

TEST_CASE("synth: the fraction of normal images is honoured") {
  SynthParams p;
  p.width = 128, p.height = 160, p.spacing_mm = 0.4, p.mass_max_mm = 12;
  const int n = 160;
  int normal = 0, masses = 0;
  for (int64_t i = 0; i < n; ++i) {
    const SynthImage img = synth_image(p, 17, i);
    int m = 0;
    for (const SynthLesion& l : img.lesions) m += l.type == LesionType::mass;
    CHECK(m <= p.masses_max);
    normal += m == 0;
    masses += m;
  }
  const double fraction = double(normal) / n, sd = std::sqrt(p.normal_fraction * (1 - p.normal_fraction) / n);
  MESSAGE("normal fraction " << fraction << " (target " << p.normal_fraction << "), " << masses << " masses");
  CHECK(std::fabs(fraction - p.normal_fraction) < 4 * sd);
}

TEST_CASE("manifest: write then read gives the same records") {
  Manifest m;
  m.metadata = {{"generator", "synth-v1"}, {"seed", "3"}};
  ManifestImage a;
  a.image = "images/with, comma \"and quote\".pgm";
  a.patient_id = "P1";
  a.laterality = "L", a.view = "CC", a.density = "C", a.spacing_mm = 0.2;
  ManifestLesion l1;
  l1.id = 1, l1.type = "mass", l1.shape = "spic\nulated", l1.subtlety = 4, l1.has_box = true, l1.box = {3, 4, 50, 60};
  l1.mask = "masks/a_1.pgm";
  ManifestLesion l2;
  l2.id = 2, l2.type = "calcification", l2.shape = "cluster", l2.has_box = true, l2.box = {0, 0, 9, 8};
  a.lesions = {l1, l2};
  ManifestImage b;  // normal, unknown density and spacing
  b.image = "images/b.pgm", b.patient_id = "P2", b.laterality = "R", b.view = "MLO";
  ManifestImage c;  // mask only
  c.image = "images/c.pgm", c.patient_id = "P2", c.laterality = "R", c.view = "CC",
  c.spacing_mm = 0.2 / 3;  // needs 17 digits
  ManifestLesion l3;
  l3.id = 1, l3.type = "mass", l3.mask = "masks/c.png";
  c.lesions = {l3};
  m.images = {a, b, c};

  const fs::path path = fs::temp_directory_path() / ("massmap-manifest-" + std::to_string(getpid()) + ".csv");
  write_manifest(path.string(), m);
  const Manifest r = read_manifest(path.string());
  fs::remove(path);
  CHECK(r.metadata == m.metadata);
  CHECK(r.metadata_value("generator") == "synth-v1");
  REQUIRE(r.images.size() == m.images.size());
  for (size_t i = 0; i < m.images.size(); ++i) {
    const ManifestImage &x = m.images[i], &y = r.images[i];
    CHECK(x.image == y.image);
    CHECK(x.patient_id == y.patient_id);
    CHECK(x.laterality == y.laterality);
    CHECK(x.view == y.view);
    CHECK(x.density == y.density);
    CHECK(x.spacing_mm == y.spacing_mm);
    REQUIRE(x.lesions.size() == y.lesions.size());
    for (size_t k = 0; k < x.lesions.size(); ++k) {
      const ManifestLesion &u = x.lesions[k], &v = y.lesions[k];
      CHECK(u.id == v.id);
      CHECK(u.type == v.type);
      CHECK(u.shape == v.shape);
      CHECK(u.subtlety == v.subtlety);
      CHECK(u.has_box == v.has_box);
      CHECK(u.box.x == v.box.x);
      CHECK(u.box.y == v.box.y);
      CHECK(u.box.width == v.box.width);
      CHECK(u.box.height == v.box.height);
      CHECK(u.mask == v.mask);
    }
  }
}

TEST_CASE("manifest: bad rows are errors naming the line") {
  const std::string header = "image,patient_id,laterality,view,lesion_type,box_x,box_y,box_width,box_height\n";
  auto error = [](const std::string& text) {
    try {
      parse_manifest(text, "m.csv");
    } catch (const BadInput& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error("image,patient_id,view\n") == "m.csv:1: the header lacks the column 'laterality'");
  CHECK(error(header + "x.pgm,P,L,CC,mass,1,2,3,4\nx.pgm,P,X,CC,,,,,\n") == "m.csv:3: laterality 'X' is not L or R");
  CHECK(error(header + "x.pgm,P,L,CC,mass,1,2,3\n") == "m.csv:2: 8 fields where the header has 9");
  CHECK(error(header + "x.pgm,P,L,CC,tumour,1,2,3,4\n") ==
        "m.csv:2: lesion_type 'tumour' is not mass or calcification");
  CHECK(error(header + "x.pgm,P,L,CC,mass,1,2,,4\n") ==
        "m.csv:2: a box needs all four of box_x, box_y, box_width, box_height");
  CHECK(error(header + "x.pgm,P,L,CC,mass,,,,\n") == "m.csv:2: a lesion needs a box or a mask");
  CHECK(error(header + "x.pgm,P,L,CC,mass,a,2,3,4\n") == "m.csv:2: box_x 'a' is not an integer");
  CHECK(error(header + "x.pgm,P,L,CC,,,,,\nx.pgm,Q,L,CC,,,,,\n") ==
        "m.csv:3: the image columns of x.pgm differ from its earlier row");
  CHECK(error(header + "\"x.pgm,P,L,CC,,,,,\n") == "m.csv:2: a quoted field is not closed");
  CHECK(error("image,patient_id,laterality,view,colour\n") == "m.csv:1: unknown column 'colour'");
  CHECK(error("# only: metadata\n") == "m.csv:2: no header line");
  CHECK(error("# a\rb: c\n") == "m.csv:1: a metadata line holds a carriage return");
  // A normal image, CRLF line ends, columns in another order.
  const Manifest m = parse_manifest("# generator: x\r\nview,image,laterality,patient_id\r\nCC,a.pgm,R,P\r\n", "m.csv");
  REQUIRE(m.images.size() == 1);
  CHECK(m.images[0].view == "CC");
  CHECK(m.images[0].laterality == "R");
  CHECK(m.images[0].lesions.empty());
  CHECK(m.metadata_value("generator") == "x");
}

TEST_CASE("massmap synth writes images, masks, regions, the manifest and synth.json") {
  const fs::path dir = fs::temp_directory_path() / ("massmap-synth-" + std::to_string(getpid()));
  for (const std::string format : {"png", "pgm"}) {
    CAPTURE(format);
    fs::remove_all(dir);
    const Result r = run("synth --out " + dir.string() + " --images 5 --seed 4 --size 208x256 --spacing 0.4" +
                         (format == "pgm" ? " --format pgm" : ""));
    INFO(r.output);
    REQUIRE(r.code == 0);
    const Manifest m = read_manifest((dir / "manifest.csv").string());
    CHECK(m.metadata_value("generator") == "synth-v1");
    REQUIRE(m.images.size() == 5);
    SynthParams p = small_params();
    for (int64_t i = 0; i < 5; ++i) {
      const ManifestImage& row = m.images[size_t(i)];
      const SynthImage img = synth_image(p, 4, i);
      CHECK(row.image == "images/" + img.name() + "." + format);
      CHECK(row.spacing_mm == 0.4);
      CHECK(row.density == std::string(1, img.density));
      // The file holds the generator's pixels (PGM: big-endian 16-bit with maxval 4095).
      const Image file = read_image((dir / row.image).string());
      CHECK(file.width == 208);
      CHECK(file.height == 256);
      CHECK(file.bits == (format == "pgm" ? 12 : 16));
      CHECK(file.pixels == img.pixels);
      if (format == "pgm") CHECK(slurp(dir / row.image).substr(0, 16) == "P5\n208 256\n4095\n");
      REQUIRE(row.lesions.size() == img.lesions.size());
      for (size_t k = 0; k < row.lesions.size(); ++k) {
        CHECK(row.lesions[k].type == lesion_type_name(img.lesions[k].type));
        CHECK(row.lesions[k].box.x == img.lesions[k].box.x);
        const Image mask = read_image((dir / row.lesions[k].mask).string());
        REQUIRE(mask.pixels.size() == img.lesions[k].mask.size());
        bool same = true;
        for (size_t q = 0; q < mask.pixels.size(); ++q)
          same = same && (mask.pixels[q] == 255) == (img.lesions[k].mask[q] == 1);
        CHECK(same);
      }
      const Image regions = read_image((dir / "regions" / (img.name() + "." + format)).string());
      CHECK(std::equal(regions.pixels.begin(), regions.pixels.end(), img.regions.begin(), img.regions.end()));
    }
    const nlohmann::json info = nlohmann::json::parse(slurp(dir / "synth.json"));
    CHECK(info.at("version") == "synth-v1");
    CHECK(info.at("params").at("width") == 208);
    CHECK(info.at("defaults") == false);
  }
  fs::remove_all(dir);

  // The CBIS-DDSM-shaped CSV: one row per mass, the published header, crops of the ROI box.
  const Result r = run("synth --out " + dir.string() + " --images 6 --seed 4 --size 208x256 --spacing 0.4 --cbis-csv");
  REQUIRE(r.code == 0);
  const Manifest m = read_manifest((dir / "manifest.csv").string());
  std::istringstream cbis(slurp(dir / "mass_case_description_synth.csv"));
  std::string line;
  std::getline(cbis, line);
  CHECK(line ==
        "patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,mass shape,"
        "mass margins,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path");
  int rows = 0, manifest_masses = 0;
  while (std::getline(cbis, line)) {
    ++rows;
    const std::string crop = line.substr(line.find(",crops/") + 1, line.find(",masks/") - line.find(",crops/") - 1);
    CHECK(read_image((dir / crop).string()).width > 0);
  }
  for (const ManifestImage& im : m.images)
    for (const ManifestLesion& l : im.lesions) manifest_masses += l.type == "mass";
  CHECK(rows == manifest_masses);
  CHECK(rows > 0);
  fs::remove_all(dir);

  CHECK(run("synth --help").code == 0);
  CHECK(run("synth --out " + dir.string() + " --images 2 --density E").code == 4);
  CHECK(run("synth --out " + dir.string() + " --images 2 --size 20").code == 2);
  CHECK(run("synth --out " + dir.string() + " --images 2 --format tiff").code == 2);
  CHECK(run("synth --out " + dir.string()).code == 2);
  fs::remove_all(dir);
}

TEST_CASE("synth: a mass's contrast against the tissue around it grows with its subtlety") {
  SynthParams p = small_params();
  p.normal_fraction = 0;
  p.labels = false;
  double sum[5] = {}, count[5] = {};
  for (int64_t i = 0; i < 40; ++i) {
    const SynthImage img = synth_image(p, 31, i);
    for (const SynthLesion& l : img.lesions) {
      if (l.type != LesionType::mass) continue;
      // Mean inside the mask against the mean of a ring just outside the tight box (breast pixels only).
      double in = 0, n_in = 0, ring = 0, n_ring = 0;
      const int pad = std::max(3, l.tight.width / 4);
      for (int y = std::max(0, l.tight.y - pad); y < std::min(img.height, l.tight.y + l.tight.height + pad); ++y)
        for (int x = std::max(0, l.tight.x - pad); x < std::min(img.width, l.tight.x + l.tight.width + pad); ++x) {
          const size_t k = size_t(y * img.width + x);
          if (l.mask[k]) {
            in += img.pixels[k], n_in += 1;
          } else if (img.regions[k] == kBreast && (x < l.tight.x || x >= l.tight.x + l.tight.width || y < l.tight.y ||
                                                   y >= l.tight.y + l.tight.height)) {
            ring += img.pixels[k], n_ring += 1;
          }
        }
      if (n_ring < 10) continue;
      sum[l.subtlety - 1] += in / n_in - ring / n_ring;
      count[l.subtlety - 1] += 1;
    }
  }
  double mean[5];
  for (int s = 0; s < 5; ++s) {
    REQUIRE(count[s] >= 3);
    mean[s] = sum[s] / count[s];
    MESSAGE("subtlety " << s + 1 << ": " << count[s] << " masses, mean contrast " << mean[s] << " (12-bit units)");
  }
  CHECK(mean[0] > 0);
  CHECK(mean[4] > 2 * mean[0]);
  CHECK(mean[0] + mean[1] < mean[3] + mean[4]);
}
