// The prepared-image cache and the background loader: the cache round-trips and rejects corrupt files, the view
// extraction matches extract_patch, and the loader's batches depend on (seed, epoch, batch) only: not on the
// number of workers, the queue depth, or where a run was resumed.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "base/atomic_file.h"
#include "base/errors.h"
#include "data/image_io.h"
#include "data/patch_loader.h"
#include "data/synth.h"
#include "tests/support/cli.h"

using namespace massmap;
using namespace massmap::data;
using testing_support::contains;
using testing_support::TempDir;

namespace {

// A prepared image with distinct pixel values, a breast on the left half, a mass disc and two ROIs.
PreparedImage make_prepared(const std::string& id, int width, int height, float base) {
  PreparedImage p;
  p.id = id;
  p.width = width;
  p.height = height;
  p.spacing_mm = 0.2;
  p.scale = 0.25;
  p.low = 100;
  p.high = 3000;
  const size_t n = size_t(width) * size_t(height);
  p.pixels.resize(n);     // (height, width)
  p.regions.resize(n);    // (height, width)
  p.mass_mask.resize(n);  // (height, width)
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const size_t i = size_t(y) * size_t(width) + size_t(x);
      p.pixels[i] = base + 0.001f * float(x) + 0.5f * float(y);
      p.regions[i] = x < width / 2 ? kBreast : kAir;
      const int dx = x - width / 4, dy = y - height / 2;
      p.mass_mask[i] = dx * dx + dy * dy <= 25 ? 1 : 0;
    }
  p.rois = {{width / 4 - 8, height / 2 - 8, 17, 17}, {2, 3, 5, 4}};
  p.roi_types = {"mass", "calcification"};
  return p;
}

std::shared_ptr<const MappedPrepared> write_and_map(const std::string& path, const PreparedImage& p) {
  const std::string bytes = encode_prepared(p);
  write_file_atomic(path, bytes.data(), bytes.size());
  return MappedPrepared::open(path);
}

// A hand-made patch set over two mapped images: 37 patches, centres near every edge too.
PatchSet make_set(const TempDir& dir) {
  PatchSet set;
  set.patch_size = 40;
  set.ids = {"a", "b"};
  set.images = {write_and_map(dir / "a.prep", make_prepared("a", 61, 53, 0.f)),
                write_and_map(dir / "b.prep", make_prepared("b", 47, 70, 100.f))};
  for (int k = 0; k < 37; ++k) {
    PatchSpec s;
    s.image = k % 2;
    s.cx = (k * 13) % (k % 2 ? 47 : 61);
    s.cy = (k * 29) % (k % 2 ? 70 : 53);
    s.label = k % 3 == 0 ? PatchLabel::mass : PatchLabel::non_mass;
    s.source = k % 3 == 0 ? PatchSource::mass : PatchSource::breast;
    set.patches.push_back(s);
  }
  return set;
}

LoaderConfig small_config(int workers, int queue) {
  LoaderConfig c;
  c.batch_size = 5;
  c.workers = workers;
  c.queue_batches = queue;
  c.seed = 77;
  c.augmentation.output = 31;
  c.augmentation.max_translate = 3;
  return c;
}

void check_same(const Batch& a, const Batch& b) {
  CHECK(a.epoch == b.epoch);
  CHECK(a.index == b.index);
  CHECK(a.labels == b.labels);
  CHECK(a.patches == b.patches);
  REQUIRE(a.images.size() == b.images.size());
  size_t differ = 0;
  for (size_t i = 0; i < a.images.size(); ++i) differ += a.images[i] != b.images[i];  // bit-identical
  CHECK(differ == 0);
}

}  // namespace

TEST_CASE("prepared cache: an encoded image maps back with every buffer and ROI intact") {
  TempDir dir;
  const PreparedImage p = make_prepared("P_00001 LEFT/CC", 37, 29, 3.f);
  const auto m = write_and_map(dir / "x.prep", p);
  const PreparedView& v = m->view();
  CHECK(v.width == 37);
  CHECK(v.height == 29);
  CHECK(reinterpret_cast<uintptr_t>(v.pixels) % 64 == 0);
  CHECK(std::equal(p.pixels.begin(), p.pixels.end(), v.pixels));
  CHECK(std::equal(p.regions.begin(), p.regions.end(), v.regions));
  CHECK(std::equal(p.mass_mask.begin(), p.mass_mask.end(), v.mass_mask));
  CHECK(m->spacing_mm() == 0.2);
  CHECK(m->scale() == 0.25);
  CHECK(m->low() == 100.f);
  CHECK(m->high() == 3000.f);
  REQUIRE(m->rois().size() == 2);
  CHECK(m->rois()[0].x == 37 / 4 - 8);
  CHECK(m->rois()[1].height == 4);
  CHECK(m->roi_types() == std::vector<std::string>{"mass", "calcification"});
  const PreparedImage back = m->copy("again");
  CHECK(back.pixels == p.pixels);
  CHECK(back.mass_mask == p.mass_mask);
}

TEST_CASE("prepared cache: truncated, padded and foreign files are rejected with the file's name") {
  TempDir dir;
  const std::string good = encode_prepared(make_prepared("x", 20, 10, 0.f));
  // The same file with its header padded to 128 bytes instead of 64 (found by prepared_fuzz: not our writer's).
  std::string padded = good.substr(0, 64) + std::string(64, '\0') + good.substr(64);
  const uint32_t header_bytes = 128;
  std::memcpy(&padded[8], &header_bytes, 4);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"empty.prep", ""},
      {"magic.prep", "PNG" + good.substr(3)},
      {"short.prep", good.substr(0, good.size() - 1)},
      {"long.prep", good + "x"},
      {"header.prep", good.substr(0, 30)},
      {"padded.prep", padded},
  };
  for (const auto& [name, bytes] : bad) {
    CAPTURE(name);
    std::ofstream(dir / name, std::ios::binary) << bytes;
    try {
      MappedPrepared::open(dir / name);
      FAIL("accepted a corrupt file");
    } catch (const BadInput& e) {
      CHECK(contains(e.what(), name));
    }
  }
  PreparedImage mismatched = make_prepared("m", 20, 10, 0.f);
  mismatched.mass_mask.pop_back();
  CHECK_THROWS_AS(encode_prepared(mismatched), BadInput);
}

TEST_CASE("extract_patch_view cuts the same pixels as extract_patch, off every edge too") {
  const PreparedImage p = make_prepared("e", 23, 17, 1.f);
  const int sizes[] = {1, 8, 9, 40};
  for (int size : sizes)
    for (int cy = -6; cy < 24; cy += 5)
      for (int cx = -7; cx < 31; cx += 6) {
        CAPTURE(size);
        CAPTURE(cx);
        CAPTURE(cy);
        std::vector<float> got(size_t(size) * size_t(size));  // (size, size)
        extract_patch_view(view_of(p), cx, cy, size, -2.f, got.data());
        CHECK(got == extract_patch(p, cx, cy, size, -2.f));
      }
}

TEST_CASE("epoch_order is a seeded permutation that changes every epoch") {
  const auto a = epoch_order(1000, 5, 0);
  CHECK(std::set<int64_t>(a.begin(), a.end()).size() == 1000);
  CHECK(*std::min_element(a.begin(), a.end()) == 0);
  CHECK(*std::max_element(a.begin(), a.end()) == 999);
  CHECK(epoch_order(1000, 5, 0) == a);
  CHECK(epoch_order(1000, 5, 1) != a);
  CHECK(epoch_order(1000, 6, 0) != a);
  int fixed = 0;  // a uniform permutation has one fixed point on average
  for (int64_t i = 0; i < 1000; ++i) fixed += a[size_t(i)] == i;
  CHECK(fixed < 8);
  CHECK(epoch_order(0, 1, 0).empty());
  CHECK(epoch_order(1, 1, 3) == std::vector<int64_t>{0});
}

TEST_CASE("loader: batches do not depend on workers, queue depth or thread timing") {
  TempDir dir;
  const PatchSet set = make_set(dir);
  // 37 patches in batches of 5: 7 batches per epoch, two patches dropped each epoch.
  std::vector<Batch> reference;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const auto order = epoch_order(37, 77, epoch);
    for (int64_t b = 0; b < 7; ++b) {
      Batch batch;
      make_batch(set, small_config(0, 1), order, epoch, b, &batch);
      reference.push_back(batch);
    }
  }
  CHECK(reference[0].images != reference[7].images);  // epochs reshuffle and re-augment
  // Samples built by several threads at once (the synchronous loader's way): the same batches.
  for (int threads : {2, 3}) {
    CAPTURE(threads);
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      const auto order = epoch_order(37, 77, epoch);
      for (int64_t b = 0; b < 7; ++b) {
        Batch batch;
        make_batch(set, small_config(0, 1), order, epoch, b, &batch, threads);
        check_same(batch, reference[size_t(epoch * 7 + b)]);
      }
    }
  }
  for (int workers : {0, 1, 3}) {
    for (int queue : {1, 2, 6}) {
      CAPTURE(workers);
      CAPTURE(queue);
      PatchLoader loader(set, small_config(workers, queue));
      CHECK(loader.batches_per_epoch() == 7);
      for (const Batch& want : reference) check_same(loader.next(), want);
    }
  }
}

TEST_CASE("loader: a run resumed at (epoch, batch) continues exactly") {
  TempDir dir;
  const PatchSet set = make_set(dir);
  PatchLoader straight(set, small_config(2, 3));
  std::vector<Batch> all;
  for (int i = 0; i < 17; ++i) all.push_back(straight.next());
  PatchLoader resumed(set, small_config(3, 2), 1, 4);  // batch 11 of the straight run
  for (int i = 11; i < 17; ++i) check_same(resumed.next(), all[size_t(i)]);
}

TEST_CASE("loader: every sample of an epoch is a distinct patch with its label, and centre crops are exact") {
  TempDir dir;
  const PatchSet set = make_set(dir);
  LoaderConfig config = small_config(2, 2);
  config.augment = false;
  PatchLoader loader(set, config);
  std::set<int64_t> seen;
  for (int b = 0; b < 7; ++b) {
    const Batch batch = loader.next();
    for (int i = 0; i < 5; ++i) {
      const int64_t which = batch.patches[size_t(i)];
      CHECK(seen.insert(which).second);
      const PatchSpec& spec = set.patches[size_t(which)];
      CHECK(batch.labels[size_t(i)] == int(spec.label));
      // No augmentation: the output is the patch's centre 31x31, whole pixels from (40 - 31) / 2 = 4.
      const PreparedImage owned = set.images[size_t(spec.image)]->copy("x");
      const std::vector<float> patch = extract_patch(owned, spec.cx, spec.cy, 40, 0.f);  // (40, 40)
      const float* out = batch.images.data() + size_t(i) * 31 * 31;
      int bad = 0;
      for (int v = 0; v < 31; ++v)
        for (int u = 0; u < 31; ++u)
          bad += std::abs(out[v * 31 + u] - patch[size_t(4 + v) * 40 + size_t(4 + u)]) > 1e-5f;
      CHECK(bad == 0);
    }
  }
  CHECK(seen.size() == 35);
}

TEST_CASE("loader: bad configurations are refused with the reason") {
  TempDir dir;
  const PatchSet set = make_set(dir);
  LoaderConfig c = small_config(1, 1);
  c.batch_size = 38;
  CHECK_THROWS_WITH_AS(PatchLoader(set, c), doctest::Contains("37 patches make no batch of 38"), BadInput);
  c = small_config(1, 1);
  c.augmentation.output = 41;
  CHECK_THROWS_AS(PatchLoader(set, c), BadConfig);
  c = small_config(1, 0);
  CHECK_THROWS_AS(PatchLoader(set, c), BadConfig);
  CHECK_THROWS_AS(PatchLoader(set, small_config(1, 1), 0, 7), BadConfig);
}

TEST_CASE("loader: cell labels follow each cell's centre through the augmentation onto the masks") {
  TempDir dir;
  PreparedImage p = make_prepared("cells", 120, 100, 0.f);  // mass disc r = 5 at (30, 50); calcification box
  p.rois[1] = {40, 20, 20, 20};
  for (size_t i = 0; i < p.pixels.size(); ++i) p.pixels[i] = float(p.mass_mask[i]);  // the mask as the image
  PatchSet set;
  set.patch_size = 40;
  set.ids = {"cells"};
  set.images = {write_and_map(dir / "cells.prep", p)};
  for (int k = 0; k < 60; ++k)  // centres around the mass and the calcification box
    set.patches.push_back({0, 22 + (k * 7) % 40, 28 + (k * 11) % 40, PatchLabel::non_mass, PatchSource::breast});
  LoaderConfig config = small_config(0, 1);
  config.batch_size = 60;
  config.augmentation.output = 27;
  config.augmentation.intensity_jitter = 0;
  config.cell_grid = {3, 4, 6};  // cells centred at 3, 7, ..., 23
  for (const bool augment : {false, true}) {
    CAPTURE(augment);
    config.augment = augment;
    PatchLoader loader(set, config);
    const Batch b = loader.next();
    REQUIRE(b.cell_labels.size() == size_t(60 * 36));
    int counts[3] = {0, 0, 0};  // ignored, negative, mass
    for (int n = 0; n < 60; ++n) {
      const PatchSpec& spec = set.patches[size_t(b.patches[size_t(n)])];
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) {
          const float label = b.cell_labels[size_t((n * 6 + i) * 6 + j)];
          REQUIRE((label == -1 || label == 0 || label == 1));
          ++counts[int(label) + 1];
          const float seen = b.images[size_t((n * 27 + 3 + 4 * i) * 27 + 3 + 4 * j)];  // the image at the centre
          if (!augment) {  // the centre crop: cell (i, j) sits on image pixel (cx - 20 + 6 + 3 + 4j, ...)
            const int x = spec.cx - 11 + 4 * j, y = spec.cy - 11 + 4 * i;
            const bool on_mass = p.mass_mask[size_t(y) * 120 + size_t(x)] == 1;
            const bool in_calc = x >= 40 && x < 60 && y >= 20 && y < 40;
            CHECK(label == (on_mass ? 1.f : in_calc ? -1.f : 0.f));
            CHECK(seen == (on_mass ? 1.f : 0.f));
          } else if (label == 1) {  // bilinear: the nearest pixel weighs at least a quarter
            CHECK(seen >= 0.25f);
          } else {
            CHECK(seen <= 0.75f);
          }
        }
    }
    CHECK(counts[0] > 20);
    CHECK(counts[1] > 200);
    CHECK(counts[2] > 20);
  }
  config.cell_grid = {3, 4, 7};  // the last cell's centre (27) is off the 27-pixel output
  CHECK_THROWS_AS(PatchLoader(set, config), BadConfig);
}

TEST_CASE("loader: rotated crops show the image around the patch, not fill, when context is on") {
  TempDir dir;
  PatchSet set;
  set.patch_size = 40;
  set.ids = {"big"};
  set.images = {write_and_map(dir / "big.prep", make_prepared("big", 200, 200, 100.f))};  // every pixel >= 100
  for (int k = 0; k < 10; ++k) set.patches.push_back({0, 90 + k, 100 - k, PatchLabel::non_mass, PatchSource::breast});
  LoaderConfig config = small_config(0, 1);
  config.batch_size = 10;
  config.augmentation.output = 36;  // turned by up to 180 degrees, the corners reach 25 pixels from the centre
  config.augmentation.min_scale = 0.8;
  int filled_without_context = 0;
  for (const bool context : {true, false}) {
    config.context = context;
    PatchLoader loader(set, config);
    const Batch batch = loader.next();
    int low = 0;  // pixels that came from `fill` (0, then jittered by at most 0.05 gain and offset)
    for (float v : batch.images) low += v < 50.f;
    if (context)
      CHECK(low == 0);
    else
      filled_without_context = low;
  }
  CHECK(filled_without_context > 100);
}

namespace {

// Writes `count` synth-v1 images (300 x 360 at 0.2 mm, masses up to 12 mm) with their lesion masks as PNG files
// and returns their dataset.
Dataset write_synth_dataset(const TempDir& dir, int count) {
  SynthParams params;
  params.width = 300, params.height = 360, params.spacing_mm = 0.2;
  params.normal_fraction = 0;
  params.mass_max_mm = 12;
  Dataset dataset;
  dataset.format = "manifest";
  for (int i = 0; i < count; ++i) {
    const SynthImage s = synth_image(params, 17, i);
    DatasetImage meta;
    meta.id = s.name();
    meta.path = dir / (meta.id + ".png");
    meta.patient_id = s.patient_id;
    meta.laterality = std::string(1, s.laterality);
    meta.view = s.view;
    Image image;
    image.width = s.width, image.height = s.height, image.bits = 12, image.pixels = s.pixels;
    write_png16(meta.path, image);
    meta.spacing_mm = 0.2;
    for (size_t k = 0; k < s.lesions.size(); ++k) {
      DatasetLesion l;
      l.type = lesion_type_name(s.lesions[k].type);
      l.has_box = true;
      l.box = s.lesions[k].box;
      l.mask_path = dir / (meta.id + "_" + std::to_string(k) + ".png");
      std::vector<uint8_t> mask(s.lesions[k].mask.size());  // (height, width) 0/255
      for (size_t j = 0; j < mask.size(); ++j) mask[j] = s.lesions[k].mask[j] ? 255 : 0;
      write_png8(l.mask_path, s.width, s.height, 1, mask);
      meta.lesions.push_back(l);
    }
    dataset.images.push_back(meta);
  }
  return dataset;
}

}  // namespace

TEST_CASE("patch set end to end on synthetic mammograms: prepared once, mass patches on masks, negatives clear") {
  TempDir dir;
  Dataset dataset = write_synth_dataset(dir, 6);
  PatchSetOptions options;
  options.cache_dir = dir / "cache";
  options.preprocess.spacing_mm = 0.4;  // half the size: 150 x 180
  options.patches.size = 48;
  options.patches.per_mass = 4;
  options.threads = 2;
  options.progress = false;
  const std::vector<int> indices = {0, 2, 3, 5};
  const PatchSet set = build_patch_set(dataset, indices, options);
  REQUIRE(set.images.size() == 4);
  CHECK(set.ids[1] == dataset.images[2].id);
  CHECK(set.count(PatchLabel::mass) > 0);
  CHECK(set.count(PatchLabel::mass) == set.count(PatchLabel::non_mass));
  CHECK(set.stats.mass == set.count(PatchLabel::mass));
  for (const PatchSpec& p : set.patches) {
    const MappedPrepared& m = *set.images[size_t(p.image)];
    CHECK(m.view().width == 150);
    CHECK(m.view().height == 180);
    const size_t centre = size_t(p.cy) * 150 + size_t(p.cx);
    if (p.label == PatchLabel::mass) {
      CHECK(m.view().mass_mask[centre] == 1);
      continue;
    }
    for (const Box& r : m.rois()) {  // the 48 x 48 square overlaps no ROI box
      const int x0 = p.cx - 24, y0 = p.cy - 24;
      const bool overlap = x0 < r.x + r.width && r.x < x0 + 48 && y0 < r.y + r.height && r.y < y0 + 48;
      CHECK_FALSE(overlap);
    }
  }
  // A second build maps the cached files: the same patches, no new file.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "cache")) files += e.path().extension() == ".prep";
  CHECK(files == 4);
  CHECK(set.prepared == 4);
  CHECK(set.cached == 0);
  const PreparedCache cache(options.cache_dir, options.preprocess);
  const std::string before = cache.path_for(dataset.images[0]);
  CHECK(std::filesystem::exists(before));
  const auto written = std::filesystem::last_write_time(before);
  const PatchSet again = build_patch_set(dataset, indices, options);
  CHECK(again.prepared == 0);
  CHECK(again.cached == 4);
  CHECK(std::filesystem::last_write_time(before) == written);
  REQUIRE(again.patches.size() == set.patches.size());
  for (size_t k = 0; k < set.patches.size(); ++k) CHECK(again.patches[k].cx == set.patches[k].cx);
  // A changed configuration or a rewritten image gets a new key, never the stale entry.
  PreprocessConfig other = options.preprocess;
  other.high_percentile = 98;
  CHECK(PreparedCache(options.cache_dir, other).path_for(dataset.images[0]) != before);
  Image smaller;
  smaller.width = 10, smaller.height = 12, smaller.bits = 8, smaller.pixels.assign(120, 7);
  write_png16(dataset.images[0].path, smaller);
  CHECK(cache.path_for(dataset.images[0]) != before);
}

TEST_CASE("preparation: a lesion of unknown place withholds the image's negatives; absurd spacings are refused") {
  TempDir dir;
  Dataset dataset = write_synth_dataset(dir, 2);
  DatasetLesion unlocated;  // e.g. a mini-MIAS calcification line without coordinates
  unlocated.type = "calcification";
  dataset.images[0].lesions.push_back(unlocated);
  const Image image = read_image(dataset.images[0].path);
  PreprocessConfig config;
  config.spacing_mm = 0.4;
  const PreparedImage p = prepare_image(image, dataset.images[0], config);
  CHECK(p.unlocated_lesions == 1);
  CHECK(p.rois.size() == dataset.images[0].lesions.size() - 1);
  PatchConfig pc;
  pc.size = 48;
  pc.per_mass = 3;
  PatchStats stats;
  const auto patches = sample_patches(p, 0, pc, 5, &stats);
  CHECK(stats.mass > 0);
  CHECK(stats.non_mass == 0);
  CHECK(stats.negatives_withheld == stats.mass);
  for (const PatchSpec& spec : patches) CHECK(spec.label == PatchLabel::mass);
  // The air level is the median of the air pixels, normalised: synth's air sits below the breast's 1st percentile.
  std::vector<float> air;
  for (size_t i = 0; i < p.pixels.size(); ++i)
    if (p.regions[i] == kAir) air.push_back(p.pixels[i]);
  REQUIRE(air.size() > 100);
  std::nth_element(air.begin(), air.begin() + ptrdiff_t(air.size() / 2), air.end());
  CHECK(p.air < 0.f);
  CHECK(std::abs(p.air - air[air.size() / 2]) < 0.02f);
  // Spacing in micrometres by mistake: refused before any allocation, naming the image.
  DatasetImage wrong_unit = dataset.images[1];
  wrong_unit.spacing_mm = 200;
  CHECK_THROWS_WITH_AS(prepare_image(read_image(wrong_unit.path), wrong_unit, config),
                       doctest::Contains(wrong_unit.id.c_str()), BadInput);
  wrong_unit.spacing_mm = 0.001;
  CHECK_THROWS_WITH_AS(prepare_image(read_image(wrong_unit.path), wrong_unit, config), doctest::Contains("0.01..10 mm"),
                       BadInput);
}

TEST_CASE("patch set: an unreadable image stops the build naming it, or is skipped and reported with skip_bad") {
  TempDir dir;
  Dataset dataset = write_synth_dataset(dir, 3);
  std::ofstream(dataset.images[1].path, std::ios::binary) << "\x89PNG\r\n\x1a\n truncated";
  PatchSetOptions options;
  options.cache_dir = dir / "cache";
  options.preprocess.spacing_mm = 0.4;
  options.patches.size = 48;
  options.threads = 2;
  options.progress = false;
  CHECK_THROWS_WITH_AS(build_patch_set(dataset, {0, 1, 2}, options), doctest::Contains(dataset.images[1].path.c_str()),
                       BadInput);
  options.skip_bad = true;
  const PatchSet set = build_patch_set(dataset, {0, 1, 2}, options);
  CHECK(set.ids == std::vector<std::string>{dataset.images[0].id, dataset.images[2].id});
  REQUIRE(set.skipped.size() == 1);
  CHECK(contains(set.skipped[0].where, dataset.images[1].id));
  for (const PatchSpec& p : set.patches) CHECK(p.image < 2);
}

TEST_CASE("loader: a failing batch is reported at its place; the batches before it still arrive") {
  TempDir dir;
  PatchSet set = make_set(dir);
  set.patches[12].image = 7;  // no such image: batch 2 (patches 10..14, no shuffle) fails
  for (int round = 0; round < 10; ++round) {
    LoaderConfig c = small_config(3, 4);
    c.shuffle = false;
    PatchLoader loader(set, c);
    CHECK(loader.next().index == 0);
    CHECK(loader.next().index == 1);
    CHECK_THROWS_WITH_AS(loader.next(), doctest::Contains("patch 12 names image 7"), BadInput);
  }  // destroying a loader whose workers stopped on an error must not hang
  // Built by three threads, a batch with two bad samples reports the first, as one thread meets them.
  set.patches[11].image = 9;
  LoaderConfig c = small_config(0, 1);
  c.shuffle = false;
  std::vector<int64_t> order(37);
  for (int64_t i = 0; i < 37; ++i) order[size_t(i)] = i;
  for (int round = 0; round < 10; ++round) {
    Batch batch;
    CHECK_THROWS_WITH_AS(make_batch(set, c, order, 0, 2, &batch, 3), doctest::Contains("patch 11 names image 9"),
                         BadInput);
  }
}

TEST_CASE("loader: padding is the image's air level; a negative's context never shows an ROI's pixels") {
  TempDir dir;
  PreparedImage p = make_prepared("roi", 120, 120, 100.f);
  p.air = -0.25f;
  p.rois = {{70, 40, 30, 30}};
  p.roi_types = {"mass"};
  for (int y = 40; y < 70; ++y)
    for (int x = 70; x < 100; ++x) p.pixels[size_t(y) * 120 + size_t(x)] = 1000.f;  // the lesion: bright
  PatchSet set;
  set.patch_size = 40;
  set.ids = {"roi"};
  set.images = {write_and_map(dir / "roi.prep", p)};
  // A negative whose 40-square ends at x = 69, next to the ROI; a mass patch at the same place; a patch off the
  // top-left corner.
  set.patches = {{0, 50, 55, PatchLabel::non_mass, PatchSource::breast},
                 {0, 50, 55, PatchLabel::mass, PatchSource::mass},
                 {0, 5, 5, PatchLabel::non_mass, PatchSource::breast}};
  LoaderConfig c = small_config(0, 1);
  c.batch_size = 3;
  c.shuffle = false;
  c.augmentation.output = 36;
  c.augmentation.min_scale = 0.8;
  c.augmentation.intensity_jitter = 0;
  int negative_bright = 0, mass_bright = 0;
  PatchLoader loader(set, c);
  for (int k = 0; k < 6; ++k) {  // six epochs of different rotations
    const Batch b = loader.next();
    for (int i = 0; i < 36 * 36; ++i) {
      negative_bright += b.images[size_t(i)] > 500.f;
      mass_bright += b.images[size_t(36 * 36 + i)] > 500.f;
    }
  }
  CHECK(negative_bright == 0);
  CHECK(mass_bright > 0);  // the same place as a mass patch does show the lesion: the masking is per label
  // No augmentation: the corner patch's pixels beyond the image are exactly the air level.
  c.augment = false;
  Batch centre;
  make_batch(set, c, {0, 1, 2}, 0, 0, &centre);
  const float* corner = centre.images.data() + 2 * 36 * 36;  // crop offset (40 - 36) / 2 = 2: image x = -13 + u
  CHECK(corner[0] == -0.25f);
  CHECK(corner[12 * 36 + 12] == -0.25f);
  CHECK(corner[13 * 36 + 13] == p.pixels[0]);
}
