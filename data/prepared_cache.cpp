// The prepared-image cache: encoding, mapping, and the content key.
#include "data/prepared_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/atomic_file.h"
#include "base/errors.h"
#include "data/image_io.h"

namespace massmap::data {

namespace {

constexpr char kMagic[8] = {'M', 'M', 'P', 'R', 'E', 'P', '0', '2'};
// Bumped with any change to how images are prepared (segmentation, resampling, normalisation): part of every key,
// so a cache made by older code is never read as if it were current.
constexpr int kPrepareVersion = 1;
constexpr uint32_t kAlign = 64;
// Fixed part of the header: magic, header_bytes, width, height, spacing, scale, low, high, air, unlocated,
// roi_count.
constexpr size_t kFixedHeader = 8 + 4 + 4 + 4 + 8 + 8 + 4 + 4 + 4 + 4 + 4;
constexpr size_t kRoiRecord = 4 * 4 + 1;

uint8_t type_code(const std::string& type) {
  return type == "mass" ? 0 : type == "calcification" ? 1 : 2;
}
const char* type_from_code(uint8_t code) {
  return code == 0 ? "mass" : code == 1 ? "calcification" : "other";
}

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}
template <typename T>
T get(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// FNV-1a, 64 bits: a content key, not a security boundary.
uint64_t fnv1a(const std::string& text, uint64_t hash = 1469598103934665603ull) {
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

std::string safe_name(const std::string& id) {
  std::string out;
  for (char c : id) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  if (out.size() > 80) out.resize(80);
  return out.empty() ? "image" : out;
}

std::string file_identity(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return path + "|missing";
  return path + "|" + std::to_string(st.st_size) + "|" + std::to_string(int64_t(st.st_mtim.tv_sec)) + "." +
         std::to_string(int64_t(st.st_mtim.tv_nsec));
}

}  // namespace

PreparedView view_of(const PreparedImage& image) {
  PreparedView v;
  v.width = image.width;
  v.height = image.height;
  v.pixels = image.pixels.data();
  v.regions = image.regions.data();
  v.mass_mask = image.mass_mask.data();
  return v;
}

std::string encode_prepared(const PreparedImage& image) {
  const size_t n = size_t(image.width) * size_t(image.height);
  if (image.width <= 0 || image.height <= 0 || image.pixels.size() != n || image.regions.size() != n ||
      image.mass_mask.size() != n || image.roi_types.size() != image.rois.size())
    throw BadInput("prepared image '" + image.id + "': buffer sizes disagree with " + std::to_string(image.width) +
                   "x" + std::to_string(image.height));
  std::string out;
  const size_t header_bytes = (kFixedHeader + kRoiRecord * image.rois.size() + kAlign - 1) / kAlign * kAlign;
  out.reserve(header_bytes + n * (sizeof(float) + 2));
  out.append(kMagic, sizeof(kMagic));
  put<uint32_t>(out, uint32_t(header_bytes));
  put<int32_t>(out, image.width);
  put<int32_t>(out, image.height);
  put<double>(out, image.spacing_mm);
  put<double>(out, image.scale);
  put<float>(out, image.low);
  put<float>(out, image.high);
  put<float>(out, image.air);
  put<uint32_t>(out, uint32_t(image.unlocated_lesions));
  put<uint32_t>(out, uint32_t(image.rois.size()));
  for (size_t i = 0; i < image.rois.size(); ++i) {
    const Box& b = image.rois[i];
    put<int32_t>(out, b.x);
    put<int32_t>(out, b.y);
    put<int32_t>(out, b.width);
    put<int32_t>(out, b.height);
    put<uint8_t>(out, type_code(image.roi_types[i]));
  }
  out.resize(header_bytes, '\0');
  out.append(reinterpret_cast<const char*>(image.pixels.data()), n * sizeof(float));
  out.append(reinterpret_cast<const char*>(image.regions.data()), n);
  out.append(reinterpret_cast<const char*>(image.mass_mask.data()), n);
  return out;
}

std::shared_ptr<const MappedPrepared> MappedPrepared::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw BadInput(path + ": cannot open prepared image: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw BadInput(path + ": cannot stat: " + std::strerror(err));
  }
  const size_t size = size_t(st.st_size);
  void* base = size > 0 ? ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  const int map_err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (base == MAP_FAILED)
    throw BadInput(path + ": cannot map prepared image: " + (size == 0 ? "empty file" : std::strerror(map_err)));
  std::shared_ptr<MappedPrepared> m(new MappedPrepared());
  m->base_ = base;
  m->size_ = size;
  const char* p = static_cast<const char*>(base);
  auto corrupt = [&](const std::string& why) { return BadInput(path + ": corrupt prepared image: " + why); };
  if (size < kFixedHeader || std::memcmp(p, kMagic, sizeof(kMagic)) != 0) throw corrupt("bad magic or too short");
  const uint32_t header_bytes = get<uint32_t>(p + 8);
  const int32_t width = get<int32_t>(p + 12), height = get<int32_t>(p + 16);
  m->spacing_mm_ = get<double>(p + 20);
  m->scale_ = get<double>(p + 28);
  m->low_ = get<float>(p + 36);
  m->high_ = get<float>(p + 40);
  m->air_ = get<float>(p + 44);
  m->unlocated_ = int(get<uint32_t>(p + 48));
  const uint32_t roi_count = get<uint32_t>(p + 52);
  if (width <= 0 || height <= 0 || width > kMaxImageSide || height > kMaxImageSide)
    throw corrupt("size " + std::to_string(width) + "x" + std::to_string(height));
  // The writer pads the header to the next multiple of 64 and no further: anything else is not our file.
  const uint64_t expected_header = (kFixedHeader + uint64_t(roi_count) * kRoiRecord + kAlign - 1) / kAlign * kAlign;
  if (header_bytes != expected_header || header_bytes > size)
    throw corrupt("header of " + std::to_string(header_bytes) + " bytes with " + std::to_string(roi_count) + " ROIs");
  const size_t n = size_t(width) * size_t(height);
  if (size != header_bytes + n * (sizeof(float) + 2))
    throw corrupt(std::to_string(size) + " bytes, expected " + std::to_string(header_bytes + n * (sizeof(float) + 2)));
  for (uint32_t i = 0; i < roi_count; ++i) {
    const char* r = p + kFixedHeader + i * kRoiRecord;
    m->rois_.push_back({get<int32_t>(r), get<int32_t>(r + 4), get<int32_t>(r + 8), get<int32_t>(r + 12)});
    m->roi_types_.push_back(type_from_code(get<uint8_t>(r + 16)));
  }
  m->view_.width = width;
  m->view_.height = height;
  m->view_.pixels = reinterpret_cast<const float*>(p + header_bytes);  // 64-byte aligned: header_bytes % 64 == 0
  m->view_.regions = reinterpret_cast<const uint8_t*>(p + header_bytes + n * sizeof(float));
  m->view_.mass_mask = m->view_.regions + n;
  return m;
}

MappedPrepared::~MappedPrepared() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

PreparedImage MappedPrepared::copy(const std::string& id) const {
  PreparedImage out;
  out.id = id;
  out.width = view_.width;
  out.height = view_.height;
  out.spacing_mm = spacing_mm_;
  out.scale = scale_;
  out.low = low_;
  out.high = high_;
  out.air = air_;
  out.unlocated_lesions = unlocated_;
  const size_t n = size_t(view_.width) * size_t(view_.height);
  out.pixels.assign(view_.pixels, view_.pixels + n);
  out.regions.assign(view_.regions, view_.regions + n);
  out.mass_mask.assign(view_.mass_mask, view_.mass_mask + n);
  out.rois = rois_;
  out.roi_types = roi_types_;
  return out;
}

struct PreparedCache::Counters {
  std::atomic<int64_t> hits{0}, misses{0};
};

PreparedCache::PreparedCache(std::string dir, PreprocessConfig config)
    : dir_(std::move(dir)), config_(std::move(config)), counters_(std::make_shared<Counters>()) {
  config_.validate();
  config_key_ = std::string(kMagic, sizeof(kMagic)) + " prepare v" + std::to_string(kPrepareVersion) + " " +
                config_.to_json().dump();
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec || !std::filesystem::is_directory(dir_))
    throw BadInput("cache folder '" + dir_ + "': cannot create it: " + (ec ? ec.message() : "not a folder"));
}

std::string PreparedCache::path_for(const DatasetImage& meta) const {
  std::string key = config_key_ + "\n" + file_identity(meta.path) + "\n" + meta.laterality + "|" + meta.view + "|" +
                    std::to_string(meta.spacing_mm);
  for (const DatasetLesion& l : meta.lesions) {
    key += "\n" + l.type + "|" + std::to_string(l.has_box) + "|" + std::to_string(l.box.x) + "," +
           std::to_string(l.box.y) + "," + std::to_string(l.box.width) + "," + std::to_string(l.box.height) + "|" +
           (l.mask_path.empty() ? std::string() : file_identity(l.mask_path)) + "|" + std::to_string(l.has_circle) +
           "|" + std::to_string(l.circle_x) + "," + std::to_string(l.circle_y) + "," + std::to_string(l.circle_radius);
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(fnv1a(key)));
  return dir_ + "/" + safe_name(meta.id) + "-" + hex + ".prep";
}

std::shared_ptr<const MappedPrepared> PreparedCache::get(const DatasetImage& meta) const {
  const std::string path = path_for(meta);
  if (std::filesystem::exists(path)) {
    counters_->hits++;
    return MappedPrepared::open(path);
  }
  counters_->misses++;
  const PreparedImage prepared = prepare_image(read_image(meta.path), meta, config_);
  const std::string bytes = encode_prepared(prepared);
  write_file_atomic(path, bytes.data(), bytes.size());
  return MappedPrepared::open(path);
}

int64_t PreparedCache::hits() const {
  return counters_->hits.load();
}
int64_t PreparedCache::misses() const {
  return counters_->misses.load();
}

}  // namespace massmap::data
