// libFuzzer target for the CBIS-DDSM case CSV parser (data/dataset_internal.h, parse_cbis_csv). Every input must
// parse or be rejected with massmap::BadInput; a crash, a sanitizer report, another exception, or a row accepted
// with a value the reader relies on being valid (side, density, type, non-empty paths) is a finding. Run through
// tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "base/errors.h"
#include "data/dataset_internal.h"
#include "fuzz/row_place.h"

namespace {

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "cbis_csv_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& row : massmap::data::detail::parse_cbis_csv(text, "mass_case_description_train_set.csv")) {
      check(has_place(row.where, "mass_case_description_train_set.csv:"), "row without its place");
      check(row.split == "train", "split not taken from the file name");
      if (!row.error.empty()) continue;
      check(row.laterality == "L" || row.laterality == "R", "accepted side other than L or R");
      check(row.density.empty() || (row.density.size() == 1 && row.density[0] >= 'A' && row.density[0] <= 'D'),
            "accepted density outside A..D");
      check(row.lesion.type == "mass" || row.lesion.type == "calcification", "accepted unknown abnormality type");
      check(
          !row.image.empty() && !row.crop.empty() && !row.mask.empty() && !row.patient_id.empty() && !row.view.empty(),
          "accepted an empty required cell");
      check(row.lesion.subtlety >= 0 && row.lesion.subtlety <= 5, "accepted subtlety outside 0..5");
      check(row.image.find('\\') == std::string::npos, "backslash left in a path");
    }
  } catch (const massmap::BadInput&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cbis_csv_fuzz: %s\n", e.what());
    check(false, "an exception other than BadInput");
  }
  return 0;
}
