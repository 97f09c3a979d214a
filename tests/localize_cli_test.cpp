// massmap localize and classify through the real program on synth-v1 images with a nets init checkpoint: every
// output file, their shapes against the geometry (cells counted by a plain loop), map.png against map.npy, the
// detections against the map and the geometry's rule, classify equal to the maximum of localize's map; a dataset
// at a finer spacing with --shift 2; and the errors (no spacing, an image smaller than the crop after
// preparation, another net's weights, a file that is no checkpoint, a colour net, a shift that does not divide the
// stride, no image, two images with one output name); a trained checkpoint's metadata (preparation, threshold,
// class names) read; the map on simt equal to the map on cpu.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "data/image_io.h"
#ifdef MASSMAP_HAVE_DCMTK
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#endif
#include "engine/npy.h"
#include "engine/safetensors.h"
#include "tests/support/check.h"
#include "tests/support/cli.h"

using namespace massmap;
using testing_support::contains;
using testing_support::read_json;
using testing_support::read_text;
using testing_support::run_massmap;
using testing_support::TempDir;

namespace {

// Cells along an axis of `length` pixels at `stride`, counted one by one: cell n - 1 is added while the last pixel
// is farther than half a stride beyond the last centre (cell 0's centre: (crop - 1) / 2 - crop / 2).
int64_t cells_by_loop(int64_t length, int64_t crop, int64_t stride) {
  const double first = double(crop - 1) / 2 - double(crop / 2);
  int64_t n = 1;
  while (first + double((n - 1) * stride) < double(length - 1) - double(stride) / 2) ++n;
  return n;
}

// synth-v1 images (0.2 mm) and an AlexNet of width 0.25 from nets init, made once for the cases below.
struct Fixture {
  TempDir dir;
  std::string weights, image0, image1;
  Fixture() {
    const auto s = run_massmap("synth --out " + dir / "syn" + " --images 2 --seed 4 --size 260x300 --mass-max-mm 12");
    REQUIRE(s.code == 0);
    image0 = dir / "syn/images/P00000_L_CC.png";
    image1 = dir / "syn/images/P00000_L_MLO.png";
    weights = dir / "w.safetensors";
    const auto i = run_massmap("nets init alexnet --channels 1 --classes 2 --width 0.25 --seed 2 --out " + weights);
    REQUIRE(i.code == 0);
  }
};

}  // namespace

TEST_CASE("localize: every file per image, shapes against the geometry; classify is the maximum of the map") {
  Fixture f;
  const std::string out = f.dir / "out";
  const auto r = run_massmap("localize --weights " + f.weights + " " + f.image0 + " " + f.image1 +
                             " --spacing 0.2 --out " + out + " --verbose");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(contains(r.output, "no preprocessing in its metadata"));
  CHECK(contains(r.output, "no operating threshold in its metadata: findings at probability >= 0.5"));
  CHECK(contains(r.output, "activations"));
  std::vector<float> maxima;
  for (const std::string name : {"P00000_L_CC", "P00000_L_MLO"}) {
    CAPTURE(name);
    const std::string d = out + "/" + name;
    const nlohmann::json g = read_json(d + "/map.json");
    const int64_t h = g["cells"][0], w = g["cells"][1];
    // 300 rows and 260 columns at the training spacing: no resampling; AlexNet's crop 227, stride 32.
    CHECK(h == cells_by_loop(300, 227, 32));
    CHECK(w == cells_by_loop(260, 227, 32));
    CHECK(g["stride"]["original_px"][0] == 32.0);
    CHECK(g["crop"]["original_px"][1] == 227.0);
    CHECK(g["first_cell_centre"]["original_px"][0] == 0.0);  // (227 - 1) / 2 - 113
    CHECK(g["first_cell_centre"]["mm"][1] == doctest::Approx(0.1));
    CHECK(g["receptive_field"]["size"]["prepared_px"][0] == 355.0);
    CHECK(g["padding_prepared_px"][0] == 113);
    const int64_t input = g["net_input"][0];
    CHECK((input - 227) % (32 * 4) == 0);
    CHECK(input >= 227 + (h - 1) * 32);

    const NpyArray npy = read_npy(d + "/map.npy");
    REQUIRE(npy.dtype == "<f4");
    REQUIRE(npy.shape == Shape{1, 1, h, w});
    const Tensor map = read_npy_float(d + "/map.npy");  // (1, 1, h, w)
    float max = -1;
    for (int64_t i = 0; i < h * w; ++i) {
      CHECK(map.at(i) >= 0.f);
      CHECK(map.at(i) <= 1.f);
      max = std::max(max, map.at(i));
    }
    maxima.push_back(max);
    CHECK(float(g["max_probability"]) == max);

    const data::Image png = data::read_image(d + "/map.png");
    REQUIRE(png.width == w);
    REQUIRE(png.height == h);
    CHECK(png.bits == 16);
    for (int64_t i = 0; i < h * w; ++i) CHECK(png.pixels[size_t(i)] == std::lround(map.at(i) * 65535.f));
    const data::Image overlay = data::read_image(d + "/overlay.png");  // the prepared image's size (under 1024)
    CHECK(overlay.width == 260);
    CHECK(overlay.height == 300);

    const nlohmann::json det = read_json(d + "/detections.json");
    CHECK(det["threshold"] == 0.5);
    CHECK(det["threshold_source"] == "default");
    CHECK(det["nms_radius_mm"] == 10.0);
    REQUIRE(!det["detections"].empty());
    float previous = 2;
    int findings = 0;
    for (const nlohmann::json& x : det["detections"]) {
      const int64_t i = x["cell"][0], j = x["cell"][1];
      const float p = x["probability"];
      CHECK(p == map.at(i * w + j));
      CHECK(p <= previous);
      previous = p;
      CHECK(x["finding"] == (p >= 0.5f));
      findings += p >= 0.5f;
      CHECK(double(x["original_px"]["x"]) == doctest::Approx(0.0 + 32.0 * double(j)));
      CHECK(double(x["original_px"]["y"]) == doctest::Approx(0.0 + 32.0 * double(i)));
      CHECK(double(x["mm"]["y"]) == doctest::Approx((32.0 * double(i) + 0.5) * 0.2));
      CHECK(double(x["crop_box_original_px"]["x"]) == doctest::Approx(32.0 * double(j) - 113));
      CHECK(double(x["crop_box_original_px"]["width"]) == 227.0);
    }
    CHECK(det["findings"] == findings);
    CHECK(float(det["detections"][0]["probability"]) <= max);
  }

  const auto c = run_massmap("classify --weights " + f.weights + " " + f.image0 + " " + f.image1 + " --spacing 0.2");
  INFO(c.output);
  REQUIRE(c.code == 0);
  std::istringstream lines(c.output);
  std::string line;
  std::vector<float> probabilities;
  while (std::getline(lines, line)) {
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;  // the notes on stderr
    probabilities.push_back(std::strtof(line.c_str() + tab + 1, nullptr));
  }
  REQUIRE(probabilities.size() == 2);
  CHECK(probabilities[0] == maxima[0]);
  CHECK(probabilities[1] == maxima[1]);
  const auto j = run_massmap("classify --json --weights " + f.weights + " " + f.image1 + " --spacing 0.2 2>/dev/null");
  REQUIRE(j.code == 0);
  const nlohmann::json one = nlohmann::json::parse(j.output.substr(j.output.find('{')));
  CHECK(float(one["probability"]) == maxima[1]);
  CHECK(one["mass"] == (maxima[1] >= 0.5f));
}

TEST_CASE("localize: a dataset at 0.1 mm (spacing and ROI boxes from the manifest), shift-and-stitch at stride 16") {
  TempDir dir;
  REQUIRE(run_massmap("synth --out " + dir / "syn" + " --images 1 --seed 6 --size 520x600 --spacing 0.1 " +
                      "--mass-max-mm 12 --normal-fraction 0")
              .code == 0);
  const std::string weights = dir / "w.safetensors";
  REQUIRE(run_massmap("nets init alexnet --channels 1 --classes 2 --width 0.125 --out " + weights).code == 0);
  const auto r = run_massmap("localize --weights " + weights + " --format manifest --root " + dir / "syn" +
                             " --shift 2 --views 2 --threshold 0 --out " + dir / "out");
  INFO(r.output);
  REQUIRE(r.code == 0);
  const nlohmann::json g = read_json(dir / "out/P00000_L_CC/map.json");
  CHECK(g["original"]["spacing_mm"] == 0.1);
  CHECK(g["prepared"]["width"] == 260);
  CHECK(g["prepared"]["original_px_per_prepared_px"][0] == 2.0);
  CHECK(g["shift"] == 2);
  CHECK(g["views"] == 2);
  CHECK(g["stride"]["prepared_px"][0] == 16.0);
  CHECK(g["stride"]["original_px"][0] == 32.0);
  CHECK(g["first_cell_centre"]["original_px"][0] == 0.5);  // prepared 0 -> (0 + 0.5) * 2 - 0.5
  CHECK(g["cells"][0] == cells_by_loop(300, 227, 16));
  CHECK(g["cells"][1] == cells_by_loop(260, 227, 16));
  const nlohmann::json det = read_json(dir / "out/P00000_L_CC/detections.json");
  CHECK(det["threshold_source"] == "option");
  CHECK(det["findings"] == det["detections"].size());  // threshold 0: every peak is a finding
}

TEST_CASE("localize: a trained checkpoint's metadata sets the preparation, the threshold and the mass channel") {
  Fixture f;
  TensorFile trained = read_safetensors(f.weights);
  trained.metadata["preprocess"] = R"({"spacing_mm": 0.4, "low_percentile": 1, "high_percentile": 99})";
  trained.metadata["threshold"] = "0.25";
  trained.metadata["class_names"] = R"(["no mass", "mass"])";
  // A training checkpoint holds the solver's history too: expected, read by nothing here, not worth a note.
  const std::string first = trained.tensors.begin()->first;
  trained.tensors.emplace("history/" + first, trained.tensors.begin()->second);
  write_safetensors(f.dir / "trained.safetensors", trained);
  trained.metadata["class_names"] = R"(["mass", "no mass"])";
  write_safetensors(f.dir / "reversed.safetensors", trained);
  // The image said to be at 0.4 mm, the training spacing: no resampling, so the same 260 x 300 pixels.
  for (const std::string name : {"trained", "reversed"}) {
    const auto r = run_massmap("localize --weights " + f.dir / (name + ".safetensors") + " " + f.image0 +
                               " --spacing 0.4 --out " + f.dir / name);
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(!contains(r.output, "no preprocessing"));
    CHECK(!contains(r.output, "no operating threshold"));
    CHECK(!contains(r.output, "no class_names"));
    CHECK(!contains(r.output, "not used for inference"));
  }
  const nlohmann::json g = read_json(f.dir / "trained/P00000_L_CC/map.json");
  CHECK(g["prepared"]["spacing_mm"] == 0.4);
  CHECK(g["prepared"]["width"] == 260);
  CHECK(g["stride"]["mm"][0] == doctest::Approx(32 * 0.4));
  const nlohmann::json det = read_json(f.dir / "trained/P00000_L_CC/detections.json");
  CHECK(det["threshold"] == 0.25);
  CHECK(det["threshold_source"] == "checkpoint");
  // Two classes: the reversed names make the map the other softmax channel, 1 - P.
  const Tensor mass = read_npy_float(f.dir / "trained/P00000_L_CC/map.npy");
  const Tensor other = read_npy_float(f.dir / "reversed/P00000_L_CC/map.npy");
  REQUIRE(mass.numel() == other.numel());
  for (int64_t i = 0; i < mass.numel(); ++i) CHECK(other.at(i) == doctest::Approx(1.0 - mass.at(i)).epsilon(1e-6));
}

#ifdef MASSMAP_HAVE_DCMTK
TEST_CASE("localize: a DICOM file's own pixel spacing, no --spacing needed") {
  Fixture f;
  const data::Image png = data::read_image(f.image0);
  DcmFileFormat file;
  DcmDataset* ds = file.getDataset();
  char uid[100];
  ds->putAndInsertString(DCM_SOPClassUID, UID_DigitalMammographyXRayImageStorageForPresentation);
  ds->putAndInsertString(DCM_SOPInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
  ds->putAndInsertString(DCM_Modality, "MG");
  ds->putAndInsertUint16(DCM_Rows, Uint16(png.height));
  ds->putAndInsertUint16(DCM_Columns, Uint16(png.width));
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds->putAndInsertUint16(DCM_BitsAllocated, 16);
  ds->putAndInsertUint16(DCM_BitsStored, 16);
  ds->putAndInsertUint16(DCM_HighBit, 15);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
  ds->putAndInsertString(DCM_ImagerPixelSpacing, "0.2\\0.2");
  REQUIRE(ds->putAndInsertUint16Array(DCM_PixelData, png.pixels.data(), png.pixels.size()).good());
  const std::string dcm = f.dir / "scan.dcm";
  REQUIRE(file.saveFile(dcm.c_str(), EXS_LittleEndianExplicit).good());
  const auto r = run_massmap("localize --weights " + f.weights + " " + dcm + " --out " + f.dir / "out");
  INFO(r.output);
  REQUIRE(r.code == 0);
  const nlohmann::json g = read_json(f.dir / "out/scan/map.json");
  CHECK(g["original"]["spacing_mm"] == 0.2);
  CHECK(g["original"]["width"] == 260);
  // The same pixels as the PNG at the same spacing: the same map.
  REQUIRE(
      run_massmap("localize --weights " + f.weights + " " + f.image0 + " --spacing 0.2 --out " + f.dir / "png").code ==
      0);
  CHECK(read_npy_float(f.dir / "out/scan/map.npy").to_vector() ==
        read_npy_float(f.dir / "png/P00000_L_CC/map.npy").to_vector());
}
#endif

TEST_CASE("localize: the map on simt equals the map on cpu") {
  Fixture f;
  const std::string tiny = f.dir / "tiny.safetensors";
  REQUIRE(run_massmap("nets init alexnet --channels 1 --classes 2 --width 0.0625 --seed 3 --out " + tiny).code == 0);
  for (const std::string device : {"cpu", "simt"}) {
    const auto r = run_massmap("localize --weights " + tiny + " " + f.image1 + " --spacing 0.2 --device " + device +
                               " --out " + f.dir / device);
    INFO(r.output);
    REQUIRE(r.code == 0);
  }
  const Tensor cpu = read_npy_float(f.dir / "cpu/P00000_L_MLO/map.npy");
  const Tensor simt = read_npy_float(f.dir / "simt/P00000_L_MLO/map.npy");
  REQUIRE(cpu.shape() == simt.shape());
  for (int64_t i = 0; i < cpu.numel(); ++i) CHECK(simt.at(i) == doctest::Approx(cpu.at(i)).epsilon(1e-5));
}

TEST_CASE("localize and classify: errors name the file, the option or the size") {
  Fixture f;
  const std::string out = f.dir / "out";
  auto r = run_massmap("localize --weights " + f.weights + " " + f.image0 + " --out " + out);
  CHECK(r.code == 3);
  CHECK(contains(r.output, f.image0 + ": the file carries no pixel spacing: give it (--spacing MM"));
  r = run_massmap("localize --weights " + f.weights + " " + f.image0 + " --spacing 0.1 --out " + out);
  CHECK(r.code == 3);
  CHECK(contains(r.output, "130x150 pixels at 0.200000 mm after preparation, smaller than the net's crop 227x227"));
  r = run_massmap("localize --weights " + f.image0 + " " + f.image0 + " --spacing 0.2 --out " + out);
  CHECK(r.code == 3);
  CHECK(contains(r.output, f.image0));
  // VGG-16's tensors under AlexNet's builder.
  REQUIRE(
      run_massmap("nets init vgg16 --channels 1 --classes 2 --width 0.0625 --out " + f.dir / "vgg.safetensors").code ==
      0);
  TensorFile vgg = read_safetensors(f.dir / "vgg.safetensors");
  vgg.metadata["builder"] = "alexnet";
  vgg.metadata["input"] = "227";
  write_safetensors(f.dir / "other.safetensors", vgg);
  r = run_massmap("localize --weights " + f.dir / "other.safetensors" + " " + f.image0 + " --spacing 0.2 --out " + out);
  CHECK(r.code == 3);
  CHECK(contains(r.output, "other.safetensors"));
  CHECK(contains(r.output, "conv1"));
  REQUIRE(run_massmap("nets init alexnet --channels 3 --classes 2 --width 0.0625 --out " + f.dir / "rgb.safetensors")
              .code == 0);
  r = run_massmap("classify --weights " + f.dir / "rgb.safetensors" + " " + f.image0 + " --spacing 0.2");
  CHECK(r.code == 3);
  CHECK(contains(r.output, "a net of 3 input channels; mammograms are grey (1 channel)"));
  r = run_massmap("localize --weights " + f.weights + " " + f.image0 + " --spacing 0.2 --shift 3 --out " + out);
  CHECK(r.code == 4);
  CHECK(contains(r.output, "--shift 3 does not divide the map's stride 32 x 32"));
  r = run_massmap("classify --weights " + f.weights + " --spacing 0.2");
  CHECK(r.code == 2);
  CHECK(contains(r.output, "no image given"));
  r = run_massmap("localize --weights " + f.weights + " " + f.image0 + " " +
                  f.dir / "syn/masks/../images/P00000_L_CC.png" + " --spacing 0.2 --out " + out);
  CHECK(r.code == 2);
  CHECK(contains(r.output, "two images would write to the same folder 'P00000_L_CC'"));
  r = run_massmap("localize --weights " + f.weights + " " + f.image0 + " --spacing 0.2 --threshold 2 --out " + out);
  CHECK(r.code == 2);
  CHECK(contains(r.output, "--threshold takes a probability in 0..1"));
  CHECK(!std::filesystem::exists(out));  // nothing written by a failing run
  r = run_massmap("classify --help");
  CHECK(r.code == 0);
  CHECK(contains(r.output, "defined as the maximum of its mass-probability map"));
  CHECK(run_massmap("localize --help").code == 0);
}
