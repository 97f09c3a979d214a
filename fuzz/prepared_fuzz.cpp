// libFuzzer target for the prepared-image cache files (data/prepared_cache.h): the reader maps whatever is in the
// cache folder, so a truncated, foreign or hostile file must be rejected with massmap::BadInput naming it. The
// input goes into an in-memory file (memfd) and through the real open-and-map path. An accepted file must keep
// the reader's promises: sizes within limits, every buffer inside the mapping (ASan watches the copy), and
// encode_prepared(copy) giving back a file of the same size. Run through tools/fuzz.sh.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <typeinfo>

#include "base/errors.h"
#include "data/image_io.h"
#include "data/prepared_cache.h"

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "prepared_fuzz: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) finding(what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memfd_create("prepared-fuzz", MFD_CLOEXEC);
  if (fd < 0) finding("memfd_create failed");
  if (size > 0 && write(fd, data, size) != ssize_t(size)) finding("write to memfd failed");
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    std::shared_ptr<const massmap::data::MappedPrepared> m;
    try {
      m = massmap::data::MappedPrepared::open(path);
    } catch (const massmap::BadInput& e) {
      if (std::strstr(e.what(), path.c_str()) == nullptr) finding("BadInput message does not name the file");
      close(fd);
      return 0;
    }
    const massmap::data::PreparedView& v = m->view();
    check(v.width > 0 && v.height > 0 && v.width <= massmap::data::kMaxImageSide &&
              v.height <= massmap::data::kMaxImageSide,
          "accepted an absurd size");
    check(m->rois().size() == m->roi_types().size(), "ROIs and their types differ in number");
    const massmap::data::PreparedImage copy = m->copy("x");
    const std::string again = massmap::data::encode_prepared(copy);
    // Padding and unknown ROI type codes are not kept, so only the size is promised.
    check(again.size() == size, "re-encoding an accepted file changed its size");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prepared_fuzz: unexpected exception %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    finding("unexpected exception of a non-std type");
  }
  close(fd);
  return 0;
}
