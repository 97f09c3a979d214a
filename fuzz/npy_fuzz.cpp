// libFuzzer target for the .npy reader (engine/npy.h). Every input must either parse or be rejected with
// massmap::BadInput. A crash, a sanitizer report, an allocation over -malloc_limit_mb, an exception of any other
// type, or an accepted array that breaks the reader's promises (byte count = numel * item size; float32 arrays
// survive encode_npy -> parse_npy unchanged) is a finding. Run through tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <typeinfo>

#include "base/errors.h"
#include "engine/npy.h"
#include "engine/tensor.h"

namespace {

const std::string kName = "fuzz-input";

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "npy_fuzz: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) finding(what);
}

void check_accepted(const massmap::NpyArray& array) {
  const size_t item = massmap::npy_item_size(array.dtype, kName);
  int64_t numel = 1;
  for (int64_t d : array.shape) {
    check(d >= 0, "accepted a negative dimension");
    numel *= d;  // the parser caps numel at 2^40, so the running product cannot overflow before a 0
  }
  check(array.bytes.size() == size_t(numel) * item, "byte count differs from numel * item size");

  if (array.dtype != "<f4") return;
  // Float32 arrays round-trip bit for bit through the writer.
  massmap::Tensor t(array.shape);
  if (!array.bytes.empty()) std::memcpy(t.data(), array.bytes.data(), array.bytes.size());
  const std::string encoded = massmap::encode_npy(t);
  check(encoded.size() >= array.bytes.size() && (encoded.size() - array.bytes.size()) % 64 == 0,
        "encode_npy does not start the data 64-byte aligned");
  const massmap::NpyArray again = massmap::parse_npy(kName, encoded.data(), encoded.size());
  check(again.dtype == "<f4", "round trip changed the dtype");
  check(again.shape == array.shape, "round trip changed the shape");
  check(again.bytes == array.bytes, "round trip changed the data");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    massmap::NpyArray array;
    try {
      array = massmap::parse_npy(kName, reinterpret_cast<const char*>(data), size);
    } catch (const massmap::BadInput& e) {
      if (std::strstr(e.what(), kName.c_str()) == nullptr) finding("BadInput message does not name the file");
      return 0;  // the expected outcome for most inputs
    }
    check_accepted(array);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "npy_fuzz: unexpected exception %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    finding("unexpected exception of a non-std type");
  }
  return 0;
}
