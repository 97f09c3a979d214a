#include "base/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <streambuf>

#include "base/errors.h"

namespace massmap {
namespace {

std::string io_failure(const std::string& path, const std::string& action, int error) {
  return "cannot " + action + " '" + path + "': " + std::strerror(error);
}

// Writes all of [data, data + size) to fd, retrying partial writes and interrupted calls. Returns 0 or errno.
int write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= size_t(n);
  }
  return 0;
}

// An output stream buffer on a file descriptor. std::ofstream cannot fsync, hence this. The first write error is
// kept (errno) so the caller can report why, not just that, the stream failed.
class FdWriteBuffer : public std::streambuf {
 public:
  explicit FdWriteBuffer(int fd) : fd_(fd), buffer_(size_t(1) << 20) {
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }
  int error() const { return error_; }

 protected:
  int_type overflow(int_type ch) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }

  // Large blocks (tensor data) skip the buffer.
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n <= epptr() - pptr()) {
      std::memcpy(pptr(), s, size_t(n));
      pbump(int(n));
      return n;
    }
    if (!drain()) return 0;
    if ((error_ = write_all(fd_, s, size_t(n))) != 0) return 0;
    return n;
  }

  int sync() override { return drain() ? 0 : -1; }

 private:
  bool drain() {
    if (error_) return false;
    error_ = write_all(fd_, pbase(), size_t(pptr() - pbase()));
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return error_ == 0;
  }

  int fd_;
  std::vector<char> buffer_;  // [1 MiB]
  int error_ = 0;
};

// Owns the temporary file until it has been renamed into place: closes and removes it on every other exit.
class TempFile {
 public:
  TempFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  // Closes the descriptor; returns 0 or errno (close can report a delayed write error).
  int close() {
    int result = ::close(fd_);
    fd_ = -1;
    return result == 0 ? 0 : errno;
  }
  void commit() { committed_ = true; }

 private:
  std::string path_;
  int fd_;
  bool committed_ = false;
};

// Makes the rename itself durable. Best effort: some filesystems refuse to fsync a directory.
void sync_parent_directory(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// The pid in a temporary file's name "<name>.tmp-<pid>-<n>", or 0 when the name is not one.
pid_t temp_file_owner(const std::string& name) {
  const size_t tmp = name.rfind(".tmp-");
  if (tmp == std::string::npos) return 0;
  const size_t dash = name.find('-', tmp + 5);
  if (dash == std::string::npos || dash == tmp + 5 || dash + 1 == name.size()) return 0;
  const std::string pid = name.substr(tmp + 5, dash - tmp - 5), n = name.substr(dash + 1);
  if (pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos ||
      n.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  return pid_t(std::stol(pid));
}

// Each folder is cleaned once per process, at its first write.
void clean_folder_once(const std::string& path) {
  static std::mutex mutex;
  static std::set<std::string> cleaned;
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!cleaned.insert(dir).second) return;
  }
  remove_stale_temp_files(dir);
}

}  // namespace

int remove_stale_temp_files(const std::string& dir) {
  int removed = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const pid_t owner = temp_file_owner(it->path().filename().string());
    // kill(pid, 0) fails with ESRCH only when no such process exists (EPERM: it exists, someone else's).
    if (owner <= 0 || owner == ::getpid() || ::kill(owner, 0) == 0 || errno != ESRCH) continue;
    std::error_code rm;
    if (std::filesystem::remove(it->path(), rm)) ++removed;
  }
  return removed;
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  clean_folder_once(path);
  // pid and a per-process counter: two threads writing the same target never share a temporary file.
  static std::atomic<uint64_t> writes{0};
  const std::string temp_path = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(writes++);
  int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw BadInput(io_failure(path, "create temporary file '" + temp_path + "' for", errno));
  TempFile temp(temp_path, fd);
  {
    FdWriteBuffer buffer(fd);
    std::ostream out(&buffer);
    write(out);
    out.flush();
    if (buffer.error()) throw BadInput(io_failure(path, "write", buffer.error()));
    if (!out) throw BadInput("cannot write '" + path + "': the output stream failed");
  }
  if (::fsync(temp.fd()) != 0) throw BadInput(io_failure(path, "fsync", errno));
  if (int error = temp.close()) throw BadInput(io_failure(path, "close", error));
  if (::rename(temp_path.c_str(), path.c_str()) != 0) throw BadInput(io_failure(path, "rename onto", errno));
  temp.commit();
  sync_parent_directory(path);
}

void write_file_atomic(const std::string& path, const char* data, size_t size) {
  write_file_atomic(path, [&](std::ostream& out) { out.write(data, std::streamsize(size)); });
}

void make_output_dir(const std::string& dir) {
  if (dir.empty()) throw BadInput("an output folder's name is empty");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw BadInput("cannot create output folder '" + dir + "': " + ec.message());
  if (!std::filesystem::is_directory(dir, ec)) throw BadInput("output folder '" + dir + "' exists and is not a folder");
}

namespace {

std::string gib(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g GiB", double(bytes) / double(int64_t(1) << 30));
  return text;
}

// The refusals of check_input_file for a file already stat'ed.
void check_stat(const std::string& path, const struct stat& info, int64_t max_bytes) {
  if (S_ISDIR(info.st_mode)) throw BadInput("cannot read '" + path + "': it is a directory");
  if (!S_ISREG(info.st_mode))
    throw BadInput("cannot read '" + path + "': it is not a regular file (a device, FIFO or socket)");
  if (int64_t(info.st_size) > max_bytes)
    throw BadInput("cannot read '" + path + "': its " + std::to_string(int64_t(info.st_size)) +
                   " bytes are more than the limit of " + gib(max_bytes) + " for an input file");
}

}  // namespace

int64_t check_input_file(const std::string& path, int64_t max_bytes) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) throw BadInput(io_failure(path, "read", errno));
  check_stat(path, info, max_bytes);
  return int64_t(info.st_size);
}

std::vector<char> read_file_bytes(const std::string& path, int64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can refuse it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw BadInput(io_failure(path, "open", errno));
  struct CloseOnExit {
    int fd;
    ~CloseOnExit() { ::close(fd); }
  } closer{fd};
  struct stat info;
  if (::fstat(fd, &info) != 0) throw BadInput(io_failure(path, "stat", errno));
  check_stat(path, info, max_bytes);
  std::vector<char> bytes;  // [file size]
  bytes.reserve(info.st_size > 0 ? size_t(info.st_size) : 0);
  char chunk[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw BadInput(io_failure(path, "read", errno));
    }
    if (n == 0) break;
    // A file that grows while read (or reports no size, as /proc does) is held to the same limit.
    if (int64_t(bytes.size()) + n > max_bytes)
      throw BadInput("cannot read '" + path + "': it grew past the limit of " + gib(max_bytes) + " while read");
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  return bytes;
}

}  // namespace massmap
