#pragma once
// Whole-file IO. Writes go to a temporary file beside the target, are fsynced and then renamed over it, so a
// crash or a failing writer never leaves a half-written checkpoint or array where the old one was.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace massmap {

// Streams `write`'s output to `path + ".tmp-<pid>-<n>"`, flushes, fsyncs and renames it over `path`. The first
// write into a folder removes the temporary files a killed writer left there (remove_stale_temp_files). An IO failure
// throws BadInput naming the path and the system's reason; an exception from `write` itself propagates
// unchanged. Either way the temporary file is removed and `path` keeps its previous content.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);
void write_file_atomic(const std::string& path, const char* data, size_t size);

// Removes the files "<name>.tmp-<pid>-<n>" in `dir` whose process <pid> no longer exists (a kill -9 mid-write
// leaves them); a live writer's are left alone. Returns how many were removed.
int remove_stale_temp_files(const std::string& dir);

// Creates the folder `dir` and its parents as needed (an existing folder is fine). One helper for every output
// folder, so that a read-only file system, a path through a file or a name too long is BadInput naming the
// folder, not a filesystem_error.
void make_output_dir(const std::string& dir);

// The largest file any reader takes whole (checkpoints of VGG-16 with solver history are about 1.1 GB, a
// mammogram's DICOM well under 1 GB).
constexpr int64_t kMaxInputFileBytes = int64_t(4) << 30;

// BadInput naming `path` unless it is a regular file of at most `max_bytes`: a directory, device (/dev/zero), FIFO
// or socket is refused before anything reads it (reading one ran until memory was exhausted, or blocked), and so
// is a file too large to take whole. Returns its size.
int64_t check_input_file(const std::string& path, int64_t max_bytes = kMaxInputFileBytes);

// The whole content of `path` after check_input_file; BadInput naming the path and the reason when it cannot be
// read.
std::vector<char> read_file_bytes(const std::string& path, int64_t max_bytes = kMaxInputFileBytes);

}  // namespace massmap
