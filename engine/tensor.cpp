#include "engine/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "base/errors.h"
#include "engine/device_memory.h"

namespace massmap {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << "(";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << (s.size() == 1 ? ",)" : ")");
  return o.str();
}

Storage::Storage(Device device, int64_t count) : device_(device), count_(count) {
  if (count < 0) throw BadConfig("negative storage size " + std::to_string(count));
  data_ = static_cast<float*>(device_allocate(device, size_t(count) * sizeof(float)));
}

Storage::~Storage() {
  try {
    device_release(device_, data_);
  } catch (...) {  // a destructor must not throw
  }
}

Tensor::Tensor(Shape shape, Device device) : shape_(std::move(shape)) {
  for (int64_t d : shape_)
    if (d < 0) throw BadConfig("negative dimension in tensor shape " + shape_str(shape_));
  try {
    storage_ = std::make_shared<Storage>(device, numel());
  } catch (const ResourceError& e) {
    throw ResourceError(std::string(e.what()) + " for a tensor of shape " + shape_str(shape_));
  } catch (const std::bad_alloc&) {
    throw ResourceError("out of host memory for a tensor of shape " + shape_str(shape_));
  }
}

Tensor Tensor::zeros(Shape shape, Device device) {
  return filled(std::move(shape), 0.f, device);
}

Tensor Tensor::filled(Shape shape, float value, Device device) {
  Tensor t(std::move(shape), device);
  t.fill(value);
  return t;
}

Tensor Tensor::from(Shape shape, const std::vector<float>& values, Device device) {
  Tensor t(std::move(shape), device);
  if (int64_t(values.size()) != t.numel())
    throw BadInput("tensor of shape " + shape_str(t.shape()) + " needs " + std::to_string(t.numel()) + " values, got " +
                   std::to_string(values.size()));
  copy_bytes(device, t.data(), Device::cpu, values.data(), values.size() * sizeof(float));  // no-op for 0 bytes
  return t;
}

int64_t Tensor::dim(int i) const {
  int r = rank();
  if (i < 0) i += r;
  if (i < 0 || i >= r) throw BadConfig("dimension " + std::to_string(i) + " of a tensor of shape " + shape_str(shape_));
  return shape_[size_t(i)];
}

Tensor Tensor::reshape(Shape shape) const {
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw BadConfig("reshape to " + shape_str(shape) + ": more than one -1");
      infer = int(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0 && known > 0) shape[size_t(infer)] = numel() / known;
  if (shape_numel(shape) != numel())
    throw BadConfig("cannot reshape a tensor of shape " + shape_str(shape_) + " to " + shape_str(shape));
  Tensor view = *this;
  view.shape_ = std::move(shape);
  return view;
}

Tensor Tensor::clone() const {
  Tensor t(shape_, device());
  t.copy_from(*this);
  return t;
}

void Tensor::fill(float value) {
  fill_floats(device(), data(), value, size_t(numel()));
}

void Tensor::copy_from(const Tensor& other) {
  if (other.numel() != numel())
    throw BadConfig("copy of a tensor of shape " + shape_str(other.shape()) + " into one of shape " +
                    shape_str(shape_));
  copy_bytes(device(), data(), other.device(), other.data(), size_t(numel()) * sizeof(float));
}

Tensor Tensor::to(Device device) const {
  Tensor t(shape_, device);
  t.copy_from(*this);
  return t;
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> v(static_cast<size_t>(numel()));
  copy_bytes(Device::cpu, v.data(), device(), data(), v.size() * sizeof(float));
  return v;
}

void Tensor::require_cpu(const char* what) const {
  if (device() != Device::cpu)
    throw Error(std::string(what) + " on a tensor on device '" + device_name(device()) + "': copy it to the cpu first");
}

}  // namespace massmap
