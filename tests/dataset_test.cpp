// Dataset readers (data/dataset.h): small CBIS-DDSM, mini-MIAS and manifest datasets built in a temporary folder
// with the published quirks (messy cells, line breaks inside quoted cells, crop and mask columns swapped, a mask of
// the wrong size, TCIA's downloaded folder names, the calcification CSVs' header spellings, mini-MIAS's
// bottom-left origin), checked against counts, coordinates and reasons worked out by hand.
#include "data/dataset.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "base/errors.h"
#include "data/dataset_internal.h"
#include "data/image_io.h"
#include "data/pgm_write.h"
#include "tests/support/cli.h"

#ifdef MASSMAP_HAVE_DCMTK
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#endif

using namespace massmap;
using namespace massmap::data;
using testing_support::contains;
using testing_support::TempDir;
namespace fs = std::filesystem;

namespace {

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// A 16-bit grey image (w, h) with a gradient, as PNG whatever the file's extension.
void image16(const std::string& path, int w, int h) {
  fs::create_directories(fs::path(path).parent_path());
  Image im;
  im.width = w, im.height = h, im.bits = 12;
  for (int i = 0; i < w * h; ++i) im.pixels.push_back(uint16_t(i % 4096));
  write_png16(path, im);
}

// An 8-bit mask (w, h), 255 inside `b`.
void mask8(const std::string& path, int w, int h, Box b) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<uint8_t> px(size_t(w * h), 0);  // (h, w)
  for (int y = b.y; y < b.y + b.height; ++y)
    for (int x = b.x; x < b.x + b.width; ++x) px[size_t(y * w + x)] = 255;
  write_png8(path, w, h, 1, px);
}

bool same(const Box& a, const Box& b) {
  return a.x == b.x && a.y == b.y && a.width == b.width && a.height == b.height;
}

const char* const kMassHeader =
    "patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,mass shape,"
    "mass margins,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path\n";
const char* const kCalcHeader =
    "patient_id,breast density,left or right breast,image view,abnormality id,abnormality type,calc type,"
    "calc distribution,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path\n";

constexpr int W = 40, H = 30;  // full mammograms; crops are 8 x 6

// Files and CSVs of a CBIS-DDSM fixture; see the expectations in the test below.
void make_cbis(const TempDir& d) {
  // P_00001 LEFT CC: literal layout, two masses (the second with crop and mask columns swapped) and a calc.
  image16(d / "Mass-Training_P_00001_LEFT_CC/1.1/1.2/000000.dcm", W, H);
  image16(d / "Mass-Training_P_00001_LEFT_CC_1/1.3/1.4/000000.dcm", 8, 6);
  mask8(d / "Mass-Training_P_00001_LEFT_CC_1/1.3/1.4/000001.dcm", W, H, {5, 3, 8, 7});
  image16(d / "Mass-Training_P_00001_LEFT_CC_2/1.5/1.6/000000.dcm", 8, 6);
  mask8(d / "Mass-Training_P_00001_LEFT_CC_2/1.5/1.6/000001.dcm", W, H, {20, 10, 4, 5});
  image16(d / "Calc-Training_P_00001_LEFT_CC/3.1/3.2/000000.dcm", W, H);  // the same mammogram, TCIA's copy
  image16(d / "Calc-Training_P_00001_LEFT_CC_1/3.3/3.4/000000.dcm", 8, 6);
  mask8(d / "Calc-Training_P_00001_LEFT_CC_1/3.3/3.4/000001.dcm", W, H, {30, 20, 2, 2});
  // P_00002 RIGHT MLO: a 36 x 30 image whose ROI mask is 20 x 20.
  image16(d / "Mass-Training_P_00002_RIGHT_MLO/2.1/2.2/000000.dcm", 36, 30);
  image16(d / "Mass-Training_P_00002_RIGHT_MLO_1/2.3/2.4/000000.dcm", 8, 6);
  mask8(d / "Mass-Training_P_00002_RIGHT_MLO_1/2.3/2.4/000001.dcm", 20, 20, {1, 1, 3, 3});
  // P_00003 LEFT MLO (test): TCIA downloader layout under CBIS-DDSM/, mask first in its series, a decoy series.
  const std::string tcia = d / "CBIS-DDSM/";
  image16(tcia + "Mass-Test_P_00003_LEFT_MLO/07-20-2016-DDSM-12345/1.000000-full mammogram images-24515/1-1.dcm", W, H);
  const std::string roi = tcia + "Mass-Test_P_00003_LEFT_MLO_1/08-01-2016-DDSM-55555/";
  mask8(roi + "1.000000-ROI mask images-77777/1-1.dcm", W, H, {1, 2, 3, 4});
  image16(roi + "1.000000-ROI mask images-77777/1-2.dcm", 8, 6);
  mask8(roi + "1.000000-cropped images-11111/1-1.dcm", W, H, {9, 9, 9, 9});  // must not be taken
  image16(d / "Calc-Training_P_00003_LEFT_MLO/5.1/5.2/000000.dcm", W, H);
  image16(d / "Calc-Training_P_00003_LEFT_MLO_1/5.3/5.4/000000.dcm", 8, 6);
  mask8(d / "Calc-Training_P_00003_LEFT_MLO_1/5.3/5.4/000001.dcm", W, H, {0, 0, 2, 2});
  // P_00004 RIGHT CC: calcification only.
  image16(d / "Calc-Training_P_00004_RIGHT_CC/4.1/4.2/000000.dcm", W, H);
  image16(d / "Calc-Training_P_00004_RIGHT_CC_1/4.3/4.4/000000.dcm", 8, 6);
  mask8(d / "Calc-Training_P_00004_RIGHT_CC_1/4.3/4.4/000001.dcm", W, H, {10, 10, 3, 3});

  // Line 2-5: spaces around cells and a line break at the end of each quoted path cell (3 embedded breaks).
  write_text(d / "mass_case_description_train_set.csv",
             std::string(kMassHeader) +
                 "P_00001, 2 ,LEFT ,CC,1,mass,OVAL,CIRCUMSCRIBED,4,MALIGNANT, 3,"
                 "\"Mass-Training_P_00001_LEFT_CC/1.1/1.2/000000.dcm\n\","
                 "\"Mass-Training_P_00001_LEFT_CC_1/1.3/1.4/000000.dcm\n\","
                 "\"Mass-Training_P_00001_LEFT_CC_1/1.3/1.4/000001.dcm\n\"\n"
                 // Line 6: crop and mask columns swapped.
                 "P_00001,2,LEFT,CC,2,mass,IRREGULAR,SPICULATED,5,MALIGNANT,5,"
                 "Mass-Training_P_00001_LEFT_CC/1.1/1.2/000000.dcm,"
                 "Mass-Training_P_00001_LEFT_CC_2/1.5/1.6/000001.dcm,"
                 "Mass-Training_P_00001_LEFT_CC_2/1.5/1.6/000000.dcm\r\n"
                 // Line 7: the mask's size differs from the image's.
                 "P_00002,4,RIGHT,MLO,1,mass,ROUND,OBSCURED,3,BENIGN,2,"
                 "Mass-Training_P_00002_RIGHT_MLO/2.1/2.2/000000.dcm,"
                 "Mass-Training_P_00002_RIGHT_MLO_1/2.3/2.4/000000.dcm,"
                 "Mass-Training_P_00002_RIGHT_MLO_1/2.3/2.4/000001.dcm\n");
  write_text(d / "mass_case_description_test_set.csv",
             std::string(kMassHeader) +
                 "P_00003,1,LEFT,MLO,1,mass,LOBULATED,ILL_DEFINED,4,BENIGN,4,"
                 "Mass-Test_P_00003_LEFT_MLO/1.3.6.1.4.1.9590.100.1.2.12345/1.3.6.1.4.1.9590.100.1.2.924515/"
                 "000000.dcm,"
                 "Mass-Test_P_00003_LEFT_MLO_1/1.3.6.1.4.1.9590.100.1.2.55555/1.3.6.1.4.1.9590.100.1.2.877777/"
                 "000000.dcm,"
                 "\"Mass-Test_P_00003_LEFT_MLO_1/1.3.6.1.4.1.9590.100.1.2.55555/1.3.6.1.4.1.9590.100.1.2.877777/"
                 "000001.dcm\n\"\n");
  write_text(d / "calc_case_description_train_set.csv",
             std::string(kCalcHeader) +
                 "P_00001,2,LEFT,CC,1,calcification,PLEOMORPHIC,CLUSTERED,4,MALIGNANT,2,"
                 "Calc-Training_P_00001_LEFT_CC/3.1/3.2/000000.dcm,Calc-Training_P_00001_LEFT_CC_1/3.3/3.4/000000.dcm,"
                 "Calc-Training_P_00001_LEFT_CC_1/3.3/3.4/000001.dcm\n"
                 "P_00004,3,RIGHT,CC,1,calcification,AMORPHOUS,SEGMENTAL,3,BENIGN_WITHOUT_CALLBACK,1,"
                 "Calc-Training_P_00004_RIGHT_CC/4.1/4.2/000000.dcm,Calc-Training_P_00004_RIGHT_CC_1/4.3/4.4/"
                 "000000.dcm,Calc-Training_P_00004_RIGHT_CC_1/4.3/4.4/000001.dcm\n"
                 "P_00003,1,LEFT,MLO,1,calcification,PUNCTATE,CLUSTERED,2,BENIGN,3,"
                 "Calc-Training_P_00003_LEFT_MLO/5.1/5.2/000000.dcm,Calc-Training_P_00003_LEFT_MLO_1/5.3/5.4/"
                 "000000.dcm,Calc-Training_P_00003_LEFT_MLO_1/5.3/5.4/000001.dcm\n");
}

DatasetOptions cbis_options(const TempDir& d) {
  DatasetOptions o;
  o.format = "cbis-ddsm";
  o.root = d.path.string();
  return o;
}

}  // namespace

TEST_CASE("CBIS-DDSM: four CSVs merged per image, messy cells, swapped columns, wrong-size mask, TCIA layout") {
  TempDir d;
  make_cbis(d);
  const Dataset ds = read_dataset(cbis_options(d));
  REQUIRE(ds.images.size() == 4);
  CHECK(ds.images[0].id == "Mass-Training_P_00001_LEFT_CC");
  CHECK(ds.images[1].id == "Mass-Training_P_00002_RIGHT_MLO");
  CHECK(ds.images[2].id == "Mass-Test_P_00003_LEFT_MLO");
  CHECK(ds.images[3].id == "Calc-Training_P_00004_RIGHT_CC");

  const DatasetImage& p1 = ds.images[0];
  CHECK(p1.path == d / "Mass-Training_P_00001_LEFT_CC/1.1/1.2/000000.dcm");  // the first CSV's copy
  CHECK(p1.patient_id == "P_00001");
  CHECK(p1.laterality == "L");
  CHECK(p1.view == "CC");
  CHECK(p1.density == "B");
  CHECK(p1.official_split == "train");
  REQUIRE(p1.lesions.size() == 3);
  CHECK(p1.lesions[0].type == "mass");
  CHECK(p1.lesions[0].shape == "OVAL");
  CHECK(p1.lesions[0].margins == "CIRCUMSCRIBED");
  CHECK(p1.lesions[0].pathology == "MALIGNANT");
  CHECK(p1.lesions[0].assessment == 4);
  CHECK(p1.lesions[0].subtlety == 3);
  CHECK(p1.lesions[0].mask_path == d / "Mass-Training_P_00001_LEFT_CC_1/1.3/1.4/000001.dcm");
  CHECK(same(lesion_roi(p1.lesions[0], W, H), {5, 3, 8, 7}));
  // Swapped columns: the full-size file is taken, whichever column names it.
  CHECK(p1.lesions[1].mask_path == d / "Mass-Training_P_00001_LEFT_CC_2/1.5/1.6/000001.dcm");
  CHECK(same(lesion_roi(p1.lesions[1], W, H), {20, 10, 4, 5}));
  CHECK(p1.lesions[2].type == "calcification");
  CHECK(p1.lesions[2].shape == "PLEOMORPHIC");  // calc type
  CHECK(p1.lesions[2].margins == "CLUSTERED");  // calc distribution
  const std::vector<uint8_t> m = lesion_mask(p1.lesions[2], W, H);
  CHECK(std::count(m.begin(), m.end(), 1) == 4);
  CHECK(m[20 * W + 30] == 1);
  CHECK(m[20 * W + 29] == 0);

  // The mask of the wrong size: reported, the lesion kept without location.
  const DatasetImage& p2 = ds.images[1];
  CHECK(p2.density == "D");
  REQUIRE(p2.lesions.size() == 1);
  CHECK(p2.lesions[0].mask_path.empty());
  CHECK_FALSE(p2.lesions[0].has_box);
  REQUIRE(ds.skipped.size() == 1);
  CHECK(ds.skipped[0].where == "mass_case_description_train_set.csv:7");
  CHECK(contains(ds.skipped[0].reason, "mask size differs from the image"));
  CHECK(contains(ds.skipped[0].reason, "20 x 20"));
  CHECK(contains(ds.skipped[0].reason, "36 x 30"));

  // TCIA's folder names: found by case folder and the series UID's last digits; the mask is the full-size file.
  const DatasetImage& p3 = ds.images[2];
  const std::string tcia = d / "CBIS-DDSM/";
  CHECK(p3.path ==
        tcia + "Mass-Test_P_00003_LEFT_MLO/07-20-2016-DDSM-12345/1.000000-full mammogram images-24515/1-1.dcm");
  CHECK(p3.official_split == "test");  // the mass CSV's split, though a calc train row names it too
  CHECK(p3.density == "A");
  REQUIRE(p3.lesions.size() == 2);
  CHECK(p3.lesions[0].mask_path ==
        tcia + "Mass-Test_P_00003_LEFT_MLO_1/08-01-2016-DDSM-55555/1.000000-ROI mask images-77777/1-1.dcm");
  CHECK(same(lesion_roi(p3.lesions[0], W, H), {1, 2, 3, 4}));

  const DatasetImage& p4 = ds.images[3];
  CHECK(p4.density == "C");
  CHECK(p4.laterality == "R");
  REQUIRE(p4.lesions.size() == 1);
  CHECK(p4.lesions[0].pathology == "BENIGN_WITHOUT_CALLBACK");
  CHECK(p4.lesions[0].subtlety == 1);

  const std::string s = dataset_summary(ds);
  CHECK(contains(s, "images: 4\n"));
  CHECK(contains(s, "patients: 4\n"));
  CHECK(contains(s, "official split: test 1, train 3\n"));
  CHECK(contains(s, "lesions: 7 (calcification 3, mass 4)\n"));
  CHECK(contains(s, "lesions without location (not usable for masks): 1\n"));
  CHECK(contains(s, "images without lesions: 0\n"));
  CHECK(contains(s, "  mask size differs from the image: 1\n"));
  CHECK(contains(s, "CBIS-DDSM has no normal images"));
  CHECK(contains(s, "note: 1 rows had the crop and ROI mask columns swapped"));
  CHECK(contains(s, "note: 1 rows named an image of the other official split"));
}

TEST_CASE("CBIS-DDSM: official split filter and explicit CSVs") {
  TempDir d;
  make_cbis(d);
  DatasetOptions o = cbis_options(d);
  o.official_split = "test";
  Dataset ds = read_dataset(o);
  REQUIRE(ds.images.size() == 1);
  CHECK(ds.images[0].id == "Mass-Test_P_00003_LEFT_MLO");
  CHECK(ds.images[0].lesions.size() == 2);  // the calc listed in a train CSV stays with its image
  o.official_split = "train";
  ds = read_dataset(o);
  CHECK(ds.images.size() == 3);
  o.official_split = "validation";
  CHECK_THROWS_AS(read_dataset(o), UsageError);

  o.official_split = "";
  o.csv = {"calc_case_description_train_set.csv"};  // relative: looked up under root
  ds = read_dataset(o);
  REQUIRE(ds.images.size() == 3);
  CHECK(ds.images[0].id == "Calc-Training_P_00001_LEFT_CC");
  CHECK(ds.images[0].lesions.size() == 1);
  CHECK(ds.skipped.empty());
}

TEST_CASE("CBIS-DDSM: a missing file or a bad value fails naming the row, or is skipped with --skip-bad") {
  TempDir d;
  make_cbis(d);
  write_text(d / "calc_case_description_test_set.csv",
             std::string(kCalcHeader) +
                 "P_00009,2,LEFT,CC,1,calcification,,,4,MALIGNANT,2,Calc-Test_P_00009_LEFT_CC/9.1/9.2/000000.dcm,"
                 "a/b/c/0.dcm,a/b/c/1.dcm\n"
                 "P_00010,7,LEFT,CC,1,calcification,,,4,MALIGNANT,2,x/y/z/0.dcm,a/b/c/0.dcm,a/b/c/1.dcm\n");
  DatasetOptions o = cbis_options(d);
  try {
    read_dataset(o);
    FAIL("no error");
  } catch (const BadInput& e) {
    CHECK(contains(e.what(), "calc_case_description_test_set.csv:2: file not found"));
    CHECK(contains(e.what(), "Calc-Test_P_00009_LEFT_CC/9.1/9.2/000000.dcm"));
  }
  o.skip_bad = true;
  const Dataset ds = read_dataset(o);
  CHECK(ds.images.size() == 4);
  REQUIRE(ds.skipped.size() == 3);
  CHECK(ds.skipped[1].where == "calc_case_description_test_set.csv:2");
  CHECK(contains(ds.skipped[1].reason, "file not found: image file path"));
  CHECK(ds.skipped[2].where == "calc_case_description_test_set.csv:3");
  CHECK(contains(ds.skipped[2].reason, "breast density '7' is not 1..4"));
  const std::string s = dataset_summary(ds);
  CHECK(contains(s, "skipped: 3\n"));
  CHECK(contains(s, "  file not found: 1\n"));
  CHECK(contains(s, "  bad value: 1\n"));
}

TEST_CASE("CBIS-DDSM CSV parser: line numbers across quoted line breaks, both header spellings, bad values") {
  const std::string text = std::string("\xEF\xBB\xBF") + kCalcHeader +
                           "P_1,1,LEFT,CC,1,calcification,\"A\nB\",C,3,BENIGN,2,\"i/j/k/l\n\",\"c\n\",m\n"
                           "P_2,1,LEFTISH,CC,1,calcification,,,3,BENIGN,2,i,c,m\n"
                           "P_3,1,RIGHT,MLO,1,tumour,,,3,BENIGN,2,i,c,m\n"
                           "P_4,,RIGHT,MLO,1,mass,,,,BENIGN,9,i,c,m\n"
                           "P_5,1,RIGHT,MLO,1,mass,,,3,BENIGN,2,i,c\n";
  const auto rows = detail::parse_cbis_csv(text, "/x/calc_case_description_test_set.csv");
  REQUIRE(rows.size() == 5);
  CHECK(rows[0].where == "calc_case_description_test_set.csv:2");
  CHECK(rows[0].error == "");
  CHECK(rows[0].split == "test");
  CHECK(rows[0].lesion.shape == "A\nB");
  CHECK(rows[0].image == "i/j/k/l");
  CHECK(rows[0].crop == "c");
  CHECK(rows[1].where == "calc_case_description_test_set.csv:6");  // row 1 spans lines 2-5
  CHECK(contains(rows[1].error, "'LEFTISH' is not LEFT or RIGHT"));
  CHECK(contains(rows[2].error, "'tumour' is not mass or calcification"));
  CHECK(rows[3].where == "calc_case_description_test_set.csv:8");
  CHECK(contains(rows[3].error, "subtlety '9'"));
  CHECK(contains(rows[4].error, "13 fields where the header has 14"));
  CHECK_THROWS_WITH_AS(detail::parse_cbis_csv("patient_id,image view\nP,CC\n", "h.csv"),
                       doctest::Contains("h.csv:1: the header lacks the column 'breast density'"), BadInput);
  CHECK_THROWS_WITH_AS(detail::parse_cbis_csv(std::string(kMassHeader) + "\"P_1,", "q.csv"),
                       doctest::Contains("q.csv:2: a quoted field is not closed"), BadInput);
}

#ifdef MASSMAP_HAVE_DCMTK
TEST_CASE("CBIS-DDSM: a DICOM image's size read from its header") {
  TempDir d;
  make_cbis(d);
  // Replace P_00004's image with a real DICOM file of the same size.
  DcmFileFormat file;
  DcmDataset* ds = file.getDataset();
  ds->putAndInsertUint16(DCM_Rows, H);
  ds->putAndInsertUint16(DCM_Columns, W);
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds->putAndInsertUint16(DCM_BitsAllocated, 16);
  ds->putAndInsertUint16(DCM_BitsStored, 12);
  ds->putAndInsertUint16(DCM_HighBit, 11);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
  std::vector<Uint16> px(size_t(W * H), 100);  // (H, W)
  REQUIRE(ds->putAndInsertUint16Array(DCM_PixelData, px.data(), px.size()).good());
  const std::string path = d / "Calc-Training_P_00004_RIGHT_CC/4.1/4.2/000000.dcm";
  REQUIRE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
  const detail::ImageSize size = detail::image_size(path);
  CHECK(size.width == W);
  CHECK(size.height == H);
  const Dataset data = read_dataset(cbis_options(d));
  REQUIRE(data.images.size() == 4);
  CHECK(data.images[3].lesions[0].mask_path == d / "Calc-Training_P_00004_RIGHT_CC_1/4.3/4.4/000001.dcm");
}
#endif

namespace {

constexpr int MW = 64, MH = 48;  // mini-MIAS fixture images (the real ones are 1024 x 1024)

void make_mias(const TempDir& d) {
  const std::vector<uint8_t> px(size_t(MW * MH), 7);  // (MH, MW)
  for (const char* name : {"mdb001.pgm", "mdb002.pgm", "mdb003.pgm", "MDB005.pgm"}) write_pgm8(d / name, MW, MH, px);
  write_png8(d / "mdb004.png", MW, MH, 1, px);
  write_text(d / "Info.txt",
             "REFNUM BG CLASS SEVERITY X Y RADIUS\n"  // line 1: a header
             "mdb001 G CIRC B 10 5 3\n"
             "mdb001 G SPIC M 40 30 4 \n"
             "\n"
             "mdb002 F NORM\n"
             "mdb003 D CALC B\n"  // line 6: no location
             "# a comment\n"
             "mdb004 D ARCH M 20 20 2\r\n"
             "mdb005 F ASYM B 63 0 1\n");
}

DatasetOptions mias_options(const TempDir& d) {
  DatasetOptions o;
  o.format = "mini-mias";
  o.root = d.path.string();
  return o;
}

}  // namespace

TEST_CASE("mini-MIAS: bottom-left origin, NORM, lesions without location, several lesions per image") {
  TempDir d;
  make_mias(d);
  const Dataset ds = read_dataset(mias_options(d));
  REQUIRE(ds.images.size() == 5);
  CHECK(ds.skipped.empty());
  const DatasetImage& a = ds.images[0];
  CHECK(a.id == "mdb001");
  CHECK(a.patient_id == "P001");
  CHECK(a.laterality == "R");  // odd numbers are right breasts
  CHECK(a.view == "MLO");
  CHECK(a.density == "G");
  CHECK(a.spacing_mm == 0.2);
  REQUIRE(a.lesions.size() == 2);
  CHECK(a.lesions[0].type == "mass");
  CHECK(a.lesions[0].shape == "CIRC");
  CHECK(a.lesions[0].pathology == "B");
  CHECK(a.lesions[0].has_circle);
  CHECK(a.lesions[0].circle_x == 10);
  CHECK(a.lesions[0].circle_y == MH - 1 - 5);  // row 42
  CHECK(a.lesions[1].circle_y == MH - 1 - 30);
  // The disc of radius 3 around (10, 42): 29 pixels, none around row 5.
  const std::vector<uint8_t> m = lesion_mask(a.lesions[0], MW, MH);  // (MH, MW)
  CHECK(std::count(m.begin(), m.end(), 1) == 29);
  CHECK(m[42 * MW + 10] == 1);
  CHECK(m[45 * MW + 10] == 1);
  CHECK(m[46 * MW + 10] == 0);
  CHECK(m[42 * MW + 13] == 1);
  CHECK(m[42 * MW + 14] == 0);
  CHECK(m[5 * MW + 10] == 0);
  CHECK(same(lesion_roi(a.lesions[0], MW, MH), {7, 39, 7, 7}));

  CHECK(ds.images[1].patient_id == "P001");
  CHECK(ds.images[1].laterality == "L");
  CHECK(ds.images[1].lesions.empty());
  const DatasetImage& c = ds.images[2];
  REQUIRE(c.lesions.size() == 1);
  CHECK(c.lesions[0].type == "calcification");
  CHECK_FALSE(c.lesions[0].has_circle);
  CHECK_THROWS_AS(lesion_mask(c.lesions[0], MW, MH), BadInput);
  CHECK(ds.images[3].path == d / "mdb004.png");
  CHECK(ds.images[3].lesions[0].type == "other");
  const DatasetImage& e = ds.images[4];
  CHECK(e.path == d / "MDB005.pgm");
  CHECK(e.patient_id == "P003");
  CHECK(e.lesions[0].circle_x == 63);
  CHECK(e.lesions[0].circle_y == MH - 1);  // y = 0 is the bottom row

  const std::string s = dataset_summary(ds);
  CHECK(contains(s, "images: 5\n"));
  CHECK(contains(s, "patients: 3\n"));
  CHECK(contains(s, "lesions: 5 (calcification 1, mass 2, other 2)\n"));
  CHECK(contains(s, "lesions without location (not usable for masks): 1\n"));
  CHECK(contains(s, "images without lesions: 1\n"));
  CHECK(contains(s, "note: 1 lesions have no centre"));
}

TEST_CASE("mini-MIAS: bad lines fail naming the line, or are skipped") {
  TempDir d;
  make_mias(d);
  write_text(d / "Info.txt",
             "mdb001 G CIRC B 10 5 3\n"
             "mdb002 F NORM\n"
             "mdb002 F CIRC B 1 1 1\n"   // line 3: NORM and a lesion
             "mdb003 D CIRC B 64 5 3\n"  // line 4: x outside the 64-wide image
             "mdb003 D BLOB B\n"         // line 5: unknown class
             "mdb006 D CIRC B 1 2 3\n"   // line 6: no image file
             "mdb004 G CIRC M 1 2\n"     // line 7: six fields
             "hello\n");                 // line 8: not an entry
  DatasetOptions o = mias_options(d);
  CHECK_THROWS_WITH_AS(read_dataset(o), doctest::Contains("Info.txt:3: bad line: mdb002 is listed both"), BadInput);
  o.skip_bad = true;
  const Dataset ds = read_dataset(o);
  REQUIRE(ds.skipped.size() == 6);
  const char* expected[][2] = {{":3", "listed both as NORM"},
                               {":4", "centre (64, 5) lies outside"},
                               {":5", "class 'BLOB'"},
                               {":6", "file not found: image mdb006"},
                               {":7", "6 fields"},
                               {":8", "'hello' is not a reference"}};
  for (size_t i = 0; i < 6; ++i) {
    CHECK(ds.skipped[i].where == std::string("Info.txt") + expected[i][0]);
    CHECK_MESSAGE(contains(ds.skipped[i].reason, expected[i][1]), ds.skipped[i].reason);
  }
  REQUIRE(ds.images.size() == 3);  // mdb001, mdb002, mdb003 (its lines bad, the image listed first by them)
  // The skipped lesion lines stay as lesions without location, so that no negative is drawn from their images.
  REQUIRE(ds.images[1].lesions.size() == 1);  // line 3: NORM and a lesion; the lesion wins
  CHECK_FALSE(detail::has_location(ds.images[1].lesions[0]));
  REQUIRE(ds.images[2].lesions.size() == 2);
  CHECK(ds.images[2].lesions[0].type == "mass");
  CHECK(ds.images[2].lesions[1].type == "other");  // class BLOB
  CHECK_FALSE(detail::has_location(ds.images[2].lesions[0]));
  CHECK_FALSE(detail::has_location(ds.images[2].lesions[1]));
}

TEST_CASE("manifest: paths relative to the manifest's folder, missing files name the line") {
  TempDir d;
  image16(d / "set/images/a.png", W, H);
  mask8(d / "set/masks/a_1.png", W, H, {2, 3, 4, 5});
  image16(d / "set/images/b.png", W, H);
  write_text(d / "set/manifest.csv",
             "# generator: test\nimage,patient_id,laterality,view,lesion_type,box_x,box_y,box_width,box_height,mask\n"
             "images/a.png,p1,L,CC,mass,1,1,9,9,masks/a_1.png\n"
             "images/b.png,p1,R,CC,,,,,,\n"
             "images/c.png,p2,R,MLO,,,,,,\n");
  DatasetOptions o;
  o.format = "manifest";
  o.csv = {d / "set/manifest.csv"};
  CHECK_THROWS_WITH_AS(read_dataset(o), doctest::Contains("manifest.csv:5: file not found: image"), BadInput);
  o.skip_bad = true;
  const Dataset ds = read_dataset(o);
  REQUIRE(ds.images.size() == 2);
  CHECK(ds.root == d / "set");
  CHECK(ds.images[0].path == d / "set/images/a.png");
  REQUIRE(ds.images[0].lesions.size() == 1);
  CHECK(ds.images[0].lesions[0].mask_path == d / "set/masks/a_1.png");
  CHECK(same(lesion_roi(ds.images[0].lesions[0], W, H), {1, 1, 9, 9}));          // the box when there is one
  const std::vector<uint8_t> mask = lesion_mask(ds.images[0].lesions[0], W, H);  // (H, W): the file, not the box
  CHECK(std::count(mask.begin(), mask.end(), 1) == 20);
  CHECK(contains(dataset_summary(ds), "images without lesions: 1\n"));
  CHECK_THROWS_AS(lesion_mask(ds.images[0].lesions[0], W + 1, H), BadInput);  // size differs

  DatasetOptions bad;
  bad.format = "dicomdir";
  CHECK_THROWS_AS(read_dataset(bad), UsageError);
}

TEST_CASE("manifest: --csv relative to the current folder, else looked up under the root") {
  TempDir d;
  image16(d / "set/images/a.png", W, H);
  write_text(d / "set/massmap_test_manifest_x1.csv", "image,patient_id,laterality,view\nimages/a.png,p1,L,CC\n");
  DatasetOptions o;
  o.format = "manifest";
  o.root = d / "set";
  o.csv = {"massmap_test_manifest_x1.csv"};  // not in the current folder
  const Dataset ds = read_dataset(o);
  REQUIRE(ds.images.size() == 1);
  CHECK(ds.images[0].path == d / "set/images/a.png");
  CHECK(ds.root == d / "set");
}

TEST_CASE("mini-MIAS with --skip-bad: a skipped lesion line leaves its lesion on the image, without location") {
  TempDir d;
  make_mias(d);
  write_text(d / "Info.txt",
             "mdb001 G CIRC B 5000 10 20\n"  // line 1: centre outside the 64 x 48 image (image added here)
             "mdb002 G NORM\n"
             "mdb003 D BLOB B\n"  // line 3: unknown class, before the image's good line
             "mdb003 D CALC M 4 4 2\n"
             "mdb004 D CIRC B 1 2 3\n"
             "mdb004 F SPIC M 1 2 3\n");  // line 6: tissue differs from line 5's
  DatasetOptions o = mias_options(d);
  CHECK_THROWS_WITH_AS(read_dataset(o), doctest::Contains("Info.txt:1: bad value: centre (5000, 10)"), BadInput);
  o.skip_bad = true;
  const Dataset ds = read_dataset(o);
  REQUIRE(ds.images.size() == 4);
  REQUIRE(ds.images[0].lesions.size() == 1);
  const DatasetLesion& l = ds.images[0].lesions[0];
  CHECK(l.type == "mass");
  CHECK(l.shape == "CIRC");
  CHECK_FALSE(l.has_circle);
  CHECK_FALSE(l.has_box);
  CHECK(l.mask_path.empty());
  CHECK(ds.images[1].lesions.empty());  // NORM
  REQUIRE(ds.images[2].lesions.size() == 2);
  CHECK(ds.images[2].lesions[0].has_circle);
  CHECK(ds.images[2].lesions[1].type == "other");  // the unknown class
  CHECK_FALSE(detail::has_location(ds.images[2].lesions[1]));
  REQUIRE(ds.images[3].lesions.size() == 2);
  CHECK(ds.images[3].lesions[1].type == "mass");
  CHECK_FALSE(detail::has_location(ds.images[3].lesions[1]));
  REQUIRE(ds.skipped.size() == 3);
  for (const SkippedRow& s : ds.skipped) CHECK_MESSAGE(contains(s.reason, "lesion kept without location"), s.reason);
  const std::string s = dataset_summary(ds);
  CHECK(contains(s, "images without lesions: 1\n"));
  CHECK(contains(s, "lesions without location (not usable for masks): 3\n"));
}

TEST_CASE("CBIS-DDSM with --skip-bad: a bad row of an image that other rows list keeps its lesion, no location") {
  TempDir d;
  make_cbis(d);
  // P_00004 RIGHT CC appears in the calc train CSV (read third); a bad mass test row names it first (read second).
  std::ofstream(d / "mass_case_description_test_set.csv", std::ios::app)
      << "P_00004,3,RIGHT,CC,2,mass,OVAL,,4,MALIGNANT,9,Mass-Test_P_00004_RIGHT_CC/a/b/0.dcm,"
         "Mass-Test_P_00004_RIGHT_CC_2/a/b/0.dcm,Mass-Test_P_00004_RIGHT_CC_2/a/b/1.dcm\n";
  // A bad type on P_00002 RIGHT MLO (read after its image): the lesion is the CSV's kind.
  write_text(d / "calc_case_description_test_set.csv",
             std::string(kCalcHeader) +
                 "P_00002,4,RIGHT,MLO,2,tumour,,,4,MALIGNANT,2,Calc-Test_P_00002_RIGHT_MLO/a/b/0.dcm,"
                 "a/b/c/0.dcm,a/b/c/1.dcm\n"
                 "P_00099,4,RIGHT,MLO,1,calcification,,,4,MALIGNANT,12,x/y/z/0.dcm,a/b/c/0.dcm,a/b/c/1.dcm\n");
  DatasetOptions o = cbis_options(d);
  o.skip_bad = true;
  const Dataset ds = read_dataset(o);
  REQUIRE(ds.images.size() == 4);
  const DatasetImage& p2 = ds.images[1];
  REQUIRE(p2.lesions.size() == 2);
  CHECK(p2.lesions[1].type == "calcification");
  CHECK_FALSE(detail::has_location(p2.lesions[1]));
  const DatasetImage& p4 = ds.images[3];
  CHECK(p4.id == "Calc-Training_P_00004_RIGHT_CC");
  REQUIRE(p4.lesions.size() == 2);
  CHECK(detail::has_location(p4.lesions[0]));
  CHECK(p4.lesions[1].type == "mass");
  CHECK(p4.lesions[1].shape == "OVAL");
  CHECK(p4.lesions[1].subtlety == 0);  // 9 is out of range: unknown
  CHECK_FALSE(detail::has_location(p4.lesions[1]));
  REQUIRE(ds.skipped.size() == 4);                                       // the wrong-size mask, and the three bad rows
  CHECK(ds.skipped[1].where == "mass_case_description_test_set.csv:4");  // row 1 spans lines 2-3
  CHECK(contains(ds.skipped[1].reason, "subtlety '9'"));
  CHECK(contains(ds.skipped[1].reason, "lesion kept without location"));
  CHECK(contains(ds.skipped[2].reason, "'tumour'"));
  CHECK(contains(ds.skipped[2].reason, "lesion kept without location"));
  CHECK_FALSE(contains(ds.skipped[3].reason, "kept"));  // P_00099 has no image
}

TEST_CASE("CBIS-DDSM: hidden and non-image files in downloaded series folders are ignored") {
  TempDir d;
  make_cbis(d);
  const std::string tcia = d / "CBIS-DDSM/";
  const std::string full =
      tcia + "Mass-Test_P_00003_LEFT_MLO/07-20-2016-DDSM-12345/1.000000-full mammogram images-24515/";
  const std::string roi = tcia + "Mass-Test_P_00003_LEFT_MLO_1/08-01-2016-DDSM-55555/1.000000-ROI mask images-77777/";
  for (const std::string& dir : {full, roi}) {
    write_text(dir + ".DS_Store", std::string("\0\0\0\1Bud1\0\0", 10));
    write_text(dir + "README.txt", "licence: CC BY 3.0\n");
  }
  const Dataset ds = read_dataset(cbis_options(d));
  REQUIRE(ds.images.size() == 4);
  const DatasetImage& p3 = ds.images[2];
  CHECK(p3.path == full + "1-1.dcm");
  REQUIRE(p3.lesions.size() == 2);
  CHECK(p3.lesions[0].mask_path == roi + "1-1.dcm");
  CHECK(ds.skipped.size() == 1);  // only the wrong-size mask of P_00002
  // Several images in the full mammogram's series folder stay ambiguous.
  image16(full + "1-2.dcm", W, H);
  DatasetOptions o = cbis_options(d);
  CHECK_THROWS_WITH_AS(read_dataset(o), doctest::Contains("several files"), BadInput);
}

TEST_CASE("CBIS-DDSM: a path component too long for the file system is a bad row, not a crash") {
  TempDir d;
  make_cbis(d);
  const std::string long_name(300, 'x');
  write_text(d / "calc_case_description_test_set.csv", std::string(kCalcHeader) +
                                                           "P_00009,2,LEFT,CC,1,calcification,,,4,MALIGNANT,2," +
                                                           long_name + "/1.2/1.3/000000.dcm,a/b/c/0.dcm,a/b/c/1.dcm\n");
  DatasetOptions o = cbis_options(d);
  CHECK_THROWS_WITH_AS(read_dataset(o), doctest::Contains("calc_case_description_test_set.csv:2"), BadInput);
  o.skip_bad = true;
  const Dataset ds = read_dataset(o);
  CHECK(ds.images.size() == 4);
  REQUIRE(ds.skipped.size() == 2);
  CHECK(ds.skipped[1].where == "calc_case_description_test_set.csv:2");
  // In the mask column too (the image found): the lesion is kept without location.
  write_text(d / "calc_case_description_test_set.csv",
             std::string(kCalcHeader) +
                 "P_00004,3,RIGHT,CC,2,calcification,,,3,BENIGN,1,Calc-Training_P_00004_RIGHT_CC/4.1/4.2/000000.dcm," +
                 long_name + "/1/2/3.dcm," + long_name + "/1/2/4.dcm\n");
  const Dataset again = read_dataset(o);
  REQUIRE(again.images.size() == 4);
  CHECK(again.images[3].lesions.size() == 2);
  CHECK_FALSE(detail::has_location(again.images[3].lesions[1]));
}
