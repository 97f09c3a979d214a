// libFuzzer target for our manifest reader (data/manifest.h). Every input must either parse or be rejected with
// massmap::BadInput. A crash, a sanitizer report, an exception of any other type, or an accepted manifest that does
// not survive manifest_to_csv -> parse_manifest unchanged (every field of every image and lesion, the metadata) is
// a finding. Run through tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "base/errors.h"
#include "data/manifest.h"

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "manifest_fuzz: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) finding(what);
}

void check_same(const massmap::data::Manifest& a, const massmap::data::Manifest& b) {
  check(a.metadata == b.metadata, "metadata changed in the round trip");
  check(a.images.size() == b.images.size(), "image count changed in the round trip");
  for (size_t i = 0; i < a.images.size(); ++i) {
    const auto &x = a.images[i], &y = b.images[i];
    check(x.image == y.image && x.patient_id == y.patient_id && x.laterality == y.laterality && x.view == y.view &&
              x.density == y.density && x.spacing_mm == y.spacing_mm,
          "image columns changed in the round trip");
    check(x.lesions.size() == y.lesions.size(), "lesion count changed in the round trip");
    for (size_t k = 0; k < x.lesions.size(); ++k) {
      const auto &u = x.lesions[k], &v = y.lesions[k];
      check(u.id == v.id && u.type == v.type && u.shape == v.shape && u.subtlety == v.subtlety &&
                u.has_box == v.has_box && u.mask == v.mask,
            "lesion columns changed in the round trip");
      if (u.has_box)
        check(u.box.x == v.box.x && u.box.y == v.box.y && u.box.width == v.box.width && u.box.height == v.box.height,
              "box changed in the round trip");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  massmap::data::Manifest m;
  try {
    m = massmap::data::parse_manifest(text, "fuzz-input");
  } catch (const massmap::BadInput&) {
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "manifest_fuzz: %s\n", e.what());
    finding("an exception other than BadInput");
  }
  std::string again;
  try {
    again = massmap::data::manifest_to_csv(m);
  } catch (const massmap::BadInput& e) {
    std::fprintf(stderr, "manifest_fuzz: %s\n", e.what());
    finding("an accepted manifest cannot be written");
  }
  try {
    check_same(m, massmap::data::parse_manifest(again, "round-trip"));
  } catch (const massmap::BadInput& e) {
    std::fprintf(stderr, "manifest_fuzz: %s\n", e.what());
    finding("a written manifest does not parse");
  }
  return 0;
}
