#pragma once
// Tensor: float32, row-major (NCHW for images), storage on a device. Copies share storage (like a handle);
// reshape() returns a view of the same storage; clone() and to() copy the data. data() is a device pointer:
// only cpu tensors may be read through it (at(), or to_vector() / to(Device::cpu) from any device).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"

namespace massmap {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "(2, 3, 5, 5)"

// A block of device memory. CPU memory is 64-byte aligned (whole cache lines, full-width vector loads).
class Storage {
 public:
  Storage(Device device, int64_t count);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  float* data() { return data_; }
  const float* data() const { return data_; }
  int64_t count() const { return count_; }
  Device device() const { return device_; }

 private:
  Device device_;
  int64_t count_;
  float* data_ = nullptr;
};

class Tensor {
 public:
  Tensor() = default;
  // Uninitialised storage of shape `shape`.
  explicit Tensor(Shape shape, Device device = Device::cpu);
  static Tensor zeros(Shape shape, Device device = Device::cpu);
  static Tensor filled(Shape shape, float value, Device device = Device::cpu);
  static Tensor from(Shape shape, const std::vector<float>& values, Device device = Device::cpu);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const;  // negative i counts from the end
  int rank() const { return int(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  Device device() const { return storage_ ? storage_->device() : Device::cpu; }

  float* data() { return storage_->data() + offset_; }
  const float* data() const { return storage_->data() + offset_; }
  // Element access for CPU tensors (row-major index).
  float& at(int64_t i) {
    require_cpu("element access");
    return data()[i];
  }
  float at(int64_t i) const {
    require_cpu("element access");
    return data()[i];
  }

  // A view with another shape of the same element count (one dimension may be -1).
  Tensor reshape(Shape shape) const;
  Tensor clone() const;
  Tensor to(Device device) const;  // a copy on `device`
  void fill(float value);
  void copy_from(const Tensor& other);  // same element count; any devices
  std::vector<float> to_vector() const;  // a host copy

 private:
  void require_cpu(const char* what) const;
  Shape shape_;
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;
};

}  // namespace massmap
