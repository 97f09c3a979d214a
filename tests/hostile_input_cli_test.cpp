// Hostile input through the binary (issue 15): files and options an adversarial user might pass must end in the
// README's exit codes with a message naming the file or option, never in a crash or "internal error".
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/npy.h"
#include "engine/tensor.h"
#include "tests/support/cli.h"

using testing_support::contains;
using testing_support::run_massmap;
using testing_support::TempDir;
namespace fs = std::filesystem;

namespace {

// AddressSanitizer reserves terabytes of address space: a program built with it cannot start under ulimit -v, so
// the checks that need such a limit are left to the ordinary build.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUlimitWorks = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUlimitWorks = false;
#else
constexpr bool kUlimitWorks = true;
#endif
#else
constexpr bool kUlimitWorks = true;
#endif

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void put_le(std::string& out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += char(v >> (8 * i));
}

// A Part-10 DICOM file (explicit VR little endian) whose dataset is `levels` nested sequences of undefined length,
// each holding one item of undefined length, never closed: the shape that overflowed DCMTK's recursive parser.
std::string nested_dicom(int levels) {
  std::string meta;
  const std::string syntax = std::string("1.2.840.10008.1.2.1") + '\0';
  put_le(meta, 0x0002, 2), put_le(meta, 0x0010, 2), meta += "UI", put_le(meta, uint32_t(syntax.size()), 2);
  meta += syntax;
  std::string file = std::string(128, '\0') + "DICM";
  put_le(file, 0x0002, 2), put_le(file, 0x0000, 2), file += "UL", put_le(file, 4, 2), put_le(file, meta.size(), 4);
  file += meta;
  for (int i = 0; i < levels; ++i) {
    put_le(file, 0x0008, 2), put_le(file, 0x1140, 2), file += "SQ", put_le(file, 0, 2), put_le(file, ~0u, 4);
    put_le(file, 0xfffe, 2), put_le(file, 0xe000, 2), put_le(file, ~0u, 4);
  }
  return file;
}

// A manifest dataset of one image file, for data check.
std::string manifest_root(const TempDir& d, const std::string& image_name) {
  write_text(d / "manifest.csv", "image,patient_id,laterality,view\n" + image_name + ",P1,L,CC\n");
  return d.path.string();
}

}  // namespace

TEST_CASE("case 1: a DICOM file of 20,000 nested sequences is bad input naming it, not a stack overflow") {
  TempDir d;
  write_text(d / "deep.dcm", nested_dicom(20000));
  for (const char* skip : {"", " --skip-bad"}) {
    const auto r = run_massmap("data check --format manifest --root " + manifest_root(d, "deep.dcm") + skip);
    INFO(r.output);
    CHECK(r.code == 3);
    CHECK(contains(r.output, "deep.dcm"));
    CHECK(contains(r.output, "nests its sequence items 20000 levels deep"));
  }
  // 50 levels pass the nesting limit and reach DCMTK, which reports the missing delimiters.
  write_text(d / "deep.dcm", nested_dicom(50));
  const auto r = run_massmap("data check --format manifest --root " + manifest_root(d, "deep.dcm"));
  CHECK(r.code == 3);
  CHECK(contains(r.output, "DICOM file cannot be parsed"));
}

namespace {

// Rewrites one __metadata__ value of a safetensors file (the header is JSON after its 8-byte length).
void set_metadata(const std::string& path, const std::string& key, const std::string& value) {
  const std::string bytes = testing_support::read_text(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  header["__metadata__"][key] = value;
  const std::string text = header.dump();
  std::string out;
  put_le(out, uint32_t(text.size()), 4), put_le(out, 0, 4);
  write_text(path, out + text + bytes.substr(8 + n));
}

const char* const kToy = " --toy --train 32 --test 8 --batch 8 --width 4";

}  // namespace

TEST_CASE("case 2: demo --toy --resume with a negative or malformed iteration is bad input naming the key") {
  TempDir d;
  REQUIRE(run_massmap("demo" + std::string(kToy) + " --iterations 2 --out " + (d / "run")).code == 0);
  const std::string good = testing_support::read_text(d / "run/checkpoint.safetensors");
  for (const char* bad : {"-1", "0x10", "1e3", "5 ", " 5", "+5", "", "99999999999999999999"}) {
    write_text(d / "bad.safetensors", good);
    set_metadata(d / "bad.safetensors", "iteration", bad);
    const auto r = run_massmap("demo" + std::string(kToy) + " --iterations 4 --out " + (d / "again") + " --resume " +
                               (d / "bad.safetensors"));
    INFO(bad, r.output);
    CHECK(r.code == 3);
    CHECK(contains(r.output, "bad.safetensors: __metadata__ iteration '" + std::string(bad) + "' is not an integer"));
  }
  // The net's own fields too: a checkpoint cannot ask for -5 channels or 1e3 classes.
  write_text(d / "bad.safetensors", good);
  set_metadata(d / "bad.safetensors", "classes", "1e3");
  const auto r =
      run_massmap("localize --weights " + (d / "bad.safetensors") + " " + (d / "x.png") + " --out " + (d / "loc"));
  CHECK(r.code == 3);
  CHECK(contains(r.output, "metadata 'classes' is not an integer"));
}

namespace {

// Four synthetic images (one patient) and a split that puts them all in train, for data patches.
struct SmallSet {
  TempDir d;
  std::string data;
  SmallSet() {
    REQUIRE(run_massmap("synth --out " + (d / "synth") + " --images 4 --seed 9 --size 200x256 --mass-max-mm 12").code ==
            0);
    data = "--format manifest --root " + (d / "synth");
    REQUIRE(run_massmap("data split " + data + " --out " + (d / "split.json") + " --train 1 --validation 0").code == 0);
  }
  std::string patches(const std::string& cache) const {
    return "data patches " + data + " --cache " + (d / cache) + " --split-file " + (d / "split.json") +
           " --spacing 0.4 --patch-size 64 --crop 57";
  }
};

}  // namespace

TEST_CASE("case 3: data patches --threads: out of range is a usage error; a refused thread exits 4, not abort") {
  SmallSet s;
  auto r = run_massmap(s.patches("cache") + " --threads 100000");
  CHECK(r.code == 2);
  CHECK(contains(r.output, "option --threads expects an integer in 1..256, got '100000'"));
  if (!kUlimitWorks) return;
  // Thread stacks of 1 GB under a 3 GB address-space limit: the system refuses the third or so thread (OpenMP kept
  // to the main thread: libgomp ends the process itself when it cannot start its own).
  r = run_massmap(s.patches("cache2") + " --threads 16",
                  "ulimit -v 3000000 && ulimit -s 1000000 && OMP_NUM_THREADS=1 exec");
  INFO(r.output);
  CHECK(r.code == 4);
  CHECK(contains(r.output, "massmap: out of resources: cannot start thread"));
  CHECK(contains(r.output, "image preparation (16 threads)"));
  CHECK_FALSE(contains(r.output, "terminate called"));
}

namespace {

// A smallnet's weights and one input image for nets forward and grad.
struct SmallNet {
  TempDir d;
  const std::string net = "smallnet --channels 1 --classes 2 --input-size 24 --width 0.25";
  std::string weights = d / "w.safetensors", images = d / "x.npy";
  SmallNet() {
    REQUIRE(run_massmap("nets init " + net + " --out " + weights).code == 0);
    massmap::Tensor x({1, 1, 24, 24});  // (N, C, H, W)
    for (int64_t i = 0; i < x.numel(); ++i) x.at(i) = float(i % 7) / 7;
    massmap::write_npy(images, x);
  }
  std::string forward() const { return "nets forward " + net + " --weights " + weights + " --images " + images; }
};

}  // namespace

TEST_CASE("case 4: an empty path or value is a usage error, and nothing is written") {
  TempDir d;
  const std::string here =
      "cd " + d.path.string() + " && exec";  // so that a stray write would land in the test's folder
  for (const std::string args : {"synth --images 1 --out ''", "synth --images 1 --out=",
                                 "data split --format manifest "
                                 "--root . --out ''",
                                 "demo --toy --out ''", "nets init smallnet --out ''"}) {
    const auto r = run_massmap(args, here);
    INFO(args, r.output);
    CHECK(r.code == 2);
    CHECK(contains(r.output, "has an empty value"));
  }
  const auto r = run_massmap("localize --weights w.safetensors '' --out x", here);
  CHECK(r.code == 2);
  CHECK(contains(r.output, "an empty argument"));
  CHECK(fs::is_empty(d.path));
}

TEST_CASE("case 5: an output folder that cannot be created is bad input naming it (synth, demo, nets forward)") {
  SmallNet n;
  write_text(n.d / "file", "a file, not a folder");
  const std::string below_file = n.d / "file/out";
  const std::string long_name = n.d / std::string(300, 'x');
  for (const std::string& dir : {below_file, long_name}) {
    for (const std::string& args :
         {"synth --images 1 --out " + dir, "demo" + std::string(kToy) + " --iterations 1 --out " + dir,
          n.forward() + " --output " + (n.d / "y.npy") + " --dump " + dir}) {
      const auto r = run_massmap(args);
      INFO(args, r.output);
      CHECK(r.code == 3);
      CHECK(contains(r.output, "cannot create output folder '" + dir));
      CHECK_FALSE(contains(r.output, "internal error"));
    }
  }
}

TEST_CASE("case 6: devices, FIFOs, directories and over-limit files are refused by name, not read until memory ends") {
  SmallNet n;
  const std::string fifo = n.d / "fifo", dir = n.d / "dir", huge = n.d / "huge.npy";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  fs::create_directories(dir);
  write_text(huge, "");
  fs::resize_file(huge, (uint64_t(4) << 30) + 1);  // sparse: no disk used
  const std::string y = " --output " + (n.d / "y.npy");
  struct Case {
    std::string args, message;
  };
  const std::string not_regular = "it is not a regular file (a device, FIFO or socket)";
  const Case cases[] = {
      {"nets forward " + n.net + " --weights /dev/zero --images " + n.images + y, "'/dev/zero': " + not_regular},
      {"nets forward " + n.net + " --weights " + fifo + " --images " + n.images + y, fifo + "': " + not_regular},
      {"nets forward " + n.net + " --weights " + n.weights + " --images /dev/urandom" + y,
       "'/dev/urandom': " + not_regular},
      {"nets forward " + n.net + " --weights " + n.weights + " --images " + fifo + y, fifo + "': " + not_regular},
      {"nets forward " + n.net + " --weights " + n.weights + " --images " + dir + y, dir + "': it is a directory"},
      {"nets forward " + n.net + " --weights " + n.weights + " --images " + huge + y,
       huge + "': its 4294967297 bytes are more than the limit of 4 GiB for an input file"},
      {"data check --format manifest --root " + n.d.path.string() + " --csv " + fifo, fifo + "': " + not_regular},
      {"data check --format manifest --root " + n.d.path.string() + " --csv /dev/zero", "/dev/zero': " + not_regular},
  };
  for (const Case& c : cases) {
    const auto r = run_massmap(c.args, "exec timeout -s KILL 60");  // a FIFO must not block the open
    INFO(c.args, r.output);
    CHECK(r.code == 3);
    CHECK(contains(r.output, c.message));
  }
  // A manifest row naming a FIFO or a folder: not "file not found".
  write_text(n.d / "manifest.csv", "image,patient_id,laterality,view\nfifo,P1,L,CC\ndir,P2,R,CC\n");
  const auto r = run_massmap("data check --format manifest --root " + n.d.path.string() + " --skip-bad",
                             "exec timeout -s KILL 60");
  INFO(r.output);
  CHECK(r.code == 3);
  CHECK(contains(r.output, "not a regular file: image '" + fifo + "'"));
  CHECK(contains(r.output, "not a regular file: image '" + dir + "'"));
}

TEST_CASE("case 8: integer options out of range or not whole are usage errors naming the option, never wrapped") {
  TempDir d;
  const std::string out = " --out " + (d / "out");
  struct Case {
    std::string args, message;
  };
  const Case cases[] = {
      {"demo --toy --batch 4294967297" + out, "option --batch expects an integer in 1..4096, got '4294967297'"},
      {"demo --toy --width 4294967312" + out, "option --width expects an integer in 1..1024"},
      {"demo --toy --test 1000000000" + out, "option --test expects an integer in 1..100000"},
      {"synth --images 1 --size 4294967712x512" + out, "option --size expects WIDTHxHEIGHT"},
      {"synth --images 1 --size 416x512x" + out, "option --size expects WIDTHxHEIGHT"},
      {"synth --images 4 --start 9223372036854775000" + out, "option --start expects an integer in 0.."},
      {"synth --images 1 --seed -1" + out, "option --seed expects an integer in 0..9223372036854775807"},
      {"nets show smallnet --classes 99999999999", "option --classes expects an integer in 1..100000"},
      {"nets show alexnet --input-size 4294967523", "option --input-size expects S or HxW"},
      {"nets init smallnet --seed 0x10" + out, "option --seed expects an integer in 0.."},
      {"nets init smallnet --seed '5 '" + out, "option --seed expects an integer in 0.."},
      {"data patches --format manifest --root . --cache c --threads 1e3", "option --threads expects an integer"},
      {"data patches --format manifest --root . --cache c --per-mass 100000000",
       "option --per-mass expects an integer in 0..10000"},
      {"train --net smallnet --format manifest --root . --split-file s --cache c --batch 4294967297" + out,
       "option --batch expects an integer in 1..65536"},
  };
  for (const Case& c : cases) {
    const auto r = run_massmap(c.args);
    INFO(c.args, r.output);
    CHECK(r.code == 2);
    CHECK(contains(r.output, c.message));
  }
  CHECK_FALSE(fs::exists(d / "out"));
}

TEST_CASE("case 9: an output that is one of the inputs is a usage error, and the input is left as it was") {
  SmallNet n;
  const std::string images = testing_support::read_text(n.images), weights = testing_support::read_text(n.weights);
  // Another spelling of the same file counts too.
  const std::string images_again = n.d.path.string() + "/./x.npy";
  struct Case {
    std::string args, message;
  };
  const Case cases[] = {
      {n.forward() + " --output " + n.images, "--output '" + n.images + "' is the same file as --images"},
      {n.forward() + " --output " + images_again, "is the same file as --images '" + n.images + "'"},
      {n.forward() + " --output " + n.weights, "is the same file as --weights"},
      {"nets grad " + n.net + " --weights " + n.weights + " --images " + n.images + " --labels " +
           (n.d / "l.npy") +  // checked before any file is read
           " --output " + n.weights,
       "--output '" + n.weights + "' is the same file as --weights"},
  };
  for (const Case& c : cases) {
    const auto r = run_massmap(c.args);
    INFO(c.args, r.output);
    CHECK(r.code == 2);
    CHECK(contains(r.output, c.message));
    CHECK(contains(r.output, "writing it would destroy the input"));
  }
  CHECK(testing_support::read_text(n.images) == images);
  CHECK(testing_support::read_text(n.weights) == weights);

  SmallSet s;
  const std::string manifest = s.d / "synth/manifest.csv", before = testing_support::read_text(manifest);
  const auto r = run_massmap("data split " + s.data + " --out " + manifest);
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(contains(r.output, "--out '" + manifest + "' is the same file as the dataset's index"));
  CHECK(testing_support::read_text(manifest) == before);
}

TEST_CASE("case 11: nets forward with a NaN or infinite weight exits 6 naming the tensor, and writes nothing") {
  SmallNet n;
  const std::string bytes = testing_support::read_text(n.weights);
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_size));
  for (const uint32_t bits : {0x7fc00000u, 0xff800000u}) {  // NaN, -infinity
    // The last tensor of the file (names sorted) gets the value in its first element.
    std::string name;
    for (const auto& [key, value] : header.items())
      if (key != "__metadata__") name = key;
    std::string bad = bytes;
    const size_t at = 8 + header_size + header[name]["data_offsets"][0].get<size_t>();
    for (int i = 0; i < 4; ++i) bad[at + size_t(i)] = char(bits >> (8 * i));
    write_text(n.d / "bad.safetensors", bad);
    const auto r = run_massmap("nets forward " + n.net + " --weights " + (n.d / "bad.safetensors") + " --images " +
                               n.images + " --output " + (n.d / "y.npy"));
    INFO(r.output);
    CHECK(r.code == 6);
    CHECK(
        contains(r.output, "bad.safetensors': tensor '" + name + "' holds " + (bits == 0x7fc00000u ? "nan" : "-inf")));
    CHECK_FALSE(fs::exists(n.d / "y.npy"));
  }
}

TEST_CASE("case 7: what a command would allocate is checked against the memory it may use, before allocating") {
  TempDir d;
  for (const std::string net : {"alexnet --width 64", "vgg16 --input-size 65535"}) {
    const auto r = run_massmap("nets init " + net + " --out " + (d / "w.safetensors"));
    INFO(net, r.output);
    CHECK(r.code == 4);
    CHECK(contains(r.output, "massmap: out of resources: nets init "));
    CHECK(contains(r.output, "more than the"));
    CHECK_FALSE(fs::exists(d / "w.safetensors"));
  }
  if (!kUlimitWorks) return;
  // The executor's own estimate: 320 M parameters with gradients and history under a 2 GB address space.
  const auto r =
      run_massmap("demo --toy --width 1024 --iterations 1 --out " + (d / "toy"), "ulimit -v 2000000 && exec");
  INFO(r.output);
  CHECK(r.code == 4);
  CHECK(contains(r.output, "massmap: out of resources: the buffers of a graph of 41 nodes"));
  CHECK_FALSE(fs::exists(d / "toy/checkpoint.safetensors"));
  // A sheet of 32 samples of 4096 pixels under the same limit.
  SmallSet s;
  const auto sheet =
      run_massmap("data patches " + s.data + " --cache " + (s.d / "cache") + " --split-file " + (s.d / "split.json") +
                      " --spacing 0.4 --patch-size 4096 --crop 4096 --sheet " + (s.d / "sheet.png"),
                  "ulimit -v 2000000 && exec");
  INFO(sheet.output);
  CHECK(sheet.code == 4);
  CHECK(contains(sheet.output, "the sheet's "));
  CHECK_FALSE(fs::exists(s.d / "sheet.png"));
}

TEST_CASE("case 10: SIGTERM stops synth with exit 130 and a manifest of the images that exist") {
  TempDir d;
  const std::string out = d / "synth";
  // 1000 images take a minute; the signal comes after 3 s.
  const auto r = run_massmap("synth --images 1000 --out " + out, "exec timeout --preserve-status -s TERM 3");
  INFO(r.output);
  CHECK(r.code == 130);
  CHECK(contains(r.output, "massmap: interrupted: synth stopped by a signal after "));
  const nlohmann::json info = testing_support::read_json(out + "/synth.json");
  const int64_t images = info.at("images").get<int64_t>();
  CHECK(images < 1000);
  CHECK(info.at("interrupted").get<std::string>() == std::to_string(images) + " of 1000 images");
  int64_t files = 0;
  for (const auto& entry : fs::directory_iterator(out + "/images")) files += entry.path().extension() == ".png";
  CHECK(files == images);  // no image outside the manifest, none half-written
  const std::string manifest = testing_support::read_text(out + "/manifest.csv");
  CHECK(contains(manifest, "# interrupted: " + std::to_string(images) + " of 1000 images"));
  if (images > 0) {
    const auto check = run_massmap("data check --format manifest --root " + out);
    INFO(check.output);
    CHECK(check.code == 0);
    CHECK(contains(check.output, "decoded: " + std::to_string(images) + " of " + std::to_string(images) + " images"));
  }
}

TEST_CASE("case 10: SIGTERM delivered twice 50 ms apart (as timeout can) is one request: synth still stops cleanly") {
  // `timeout` signals the command and then its process group: the command may see the signal twice, the second
  // after its handler ran for the first. Only a repeat 250 ms or more later forces the exit without the manifest.
  TempDir d;
  const std::string out = d / "synth";
  const auto r = testing_support::run_shell(std::string(MASSMAP_BINARY) + " synth --images 1000 --out " + out +
                                            " & pid=$!; sleep 2; kill -TERM $pid; sleep 0.05; kill -TERM $pid; "
                                            "wait $pid");
  INFO(r.output);
  CHECK(r.code == 130);
  CHECK(contains(r.output, "massmap: interrupted: synth stopped by a signal after "));
  const nlohmann::json info = testing_support::read_json(out + "/synth.json");
  const int64_t images = info.at("images").get<int64_t>();
  CHECK(images < 1000);
  CHECK(contains(testing_support::read_text(out + "/manifest.csv"),
                 "# interrupted: " + std::to_string(images) + " of 1000 images"));
}

TEST_CASE(
    "case 10: temporary files of a killed writer are removed by the next write into the folder, a live one's kept") {
  SmallNet n;
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  REQUIRE(dead > 0);
  waitpid(dead, nullptr, 0);
  const std::string stale = n.d / ("y.npy.tmp-" + std::to_string(dead) + "-0");
  const std::string live = n.d / ("z.npy.tmp-" + std::to_string(getpid()) + "-3");
  const std::string other = n.d / "notes.tmp-draft";
  for (const std::string& f : {stale, live, other}) write_text(f, "partial");
  const auto r = run_massmap(n.forward() + " --output " + (n.d / "y.npy"));
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(live));
  CHECK(fs::exists(other));
  CHECK(fs::exists(n.d / "y.npy"));
}

namespace {

// The first bytes of a PNG declaring width x height at `depth` bits of colour type `colour` (the header is all
// the readers look at before the limits).
std::string png_header(uint32_t width, uint32_t height, int depth, int colour) {
  auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  std::string png = "\x89PNG\r\n\x1a\n" + be32(13) + "IHDR" + be32(width) + be32(height);
  png += char(depth), png += char(colour), png += std::string(3, '\0');
  return png + be32(0) + std::string(64, '\0');
}

}  // namespace

TEST_CASE("decompression bombs: a PNG declaring too many pixels, or more decoding memory than allowed, is refused") {
  TempDir d;
  write_text(d / "bomb.png", png_header(16384, 16384, 16, 6));  // 2^28 pixels of 16-bit RGBA: 2 GiB decoded
  const std::string check = "data check --format manifest --root " + manifest_root(d, "bomb.png");
  auto r = run_massmap(check);
  INFO(r.output);
  CHECK(r.code == 3);
  CHECK(contains(r.output, "bomb.png': PNG image of 16384 x 16384 pixels exceeds the limit of 134217728 pixels"));
  r = run_massmap(check, "MASSMAP_MAX_IMAGE_PIXELS=1e9 exec");
  CHECK(r.code == 4);
  CHECK(contains(r.output, "MASSMAP_MAX_IMAGE_PIXELS='1e9' is not a pixel count in 1..536870912"));
  if (!kUlimitWorks) return;
  // Raised to 2^28 pixels, the memory the decode needs (20 bytes a pixel: 5 GiB) is checked against ulimit -v.
  r = run_massmap(check, "ulimit -v 2000000 && MASSMAP_MAX_IMAGE_PIXELS=268435456 exec");
  CHECK(r.code == 4);
  CHECK(contains(r.output, "massmap: out of resources: decoding image '"));
  CHECK(contains(r.output, "(PNG, 16384 x 16384 pixels) needs 5.0 GiB, more than the"));
}
