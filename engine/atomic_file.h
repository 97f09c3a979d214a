#pragma once
// Whole-file IO. Writes go to a temporary file beside the target, are fsynced and then renamed over it, so a
// crash or a failing writer never leaves a half-written checkpoint or array where the old one was.
#include <cstddef>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace massmap {

// Streams `write`'s output to `path + ".tmp-<pid>"`, flushes, fsyncs and renames it over `path`. An IO failure
// throws BadInput naming the path and the system's reason; an exception from `write` itself propagates
// unchanged. Either way the temporary file is removed and `path` keeps its previous content.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);
void write_file_atomic(const std::string& path, const char* data, size_t size);

// Creates the folder `dir` and its parents as needed (an existing folder is fine). One helper for every output
// folder, so that a read-only file system, a path through a file or a name too long is BadInput naming the
// folder, not a filesystem_error.
void make_output_dir(const std::string& dir);

// The whole content of `path`; BadInput naming the path and the reason when it cannot be read.
std::vector<char> read_file_bytes(const std::string& path);

}  // namespace massmap
