#include "engine/typed_attrs.h"

#include <algorithm>
#include <limits>

#include "base/errors.h"

namespace massmap {

namespace {
// A value as an error message shows it: strings quoted, so that "7" and 7 differ.
std::string shown(const AttrValue& v) {
  return std::holds_alternative<std::string>(v) ? "'" + attr_value_str(v) + "'" : attr_value_str(v);
}
}  // namespace

const AttrValue* AttrReader::find(const char* key) {
  known_.push_back(key);
  return node_.attrs.lookup(key);
}

void AttrReader::fail(const char* key, const std::string& why) const {
  throw BadConfig("node '" + node_.name + "' (" + node_.op + "): attribute '" + key + "' " + why);
}

void AttrReader::fail_invalid(const std::string& why) const {
  throw BadConfig("node '" + node_.name + "' (" + node_.op + "): " + why + " (attributes: " + node_.attrs.str() + ")");
}

void AttrReader::operator()(const char* key, int64_t& field) {
  const AttrValue* v = find(key);
  if (!v) return;
  const int64_t* i = std::get_if<int64_t>(v);
  if (!i) fail(key, "must be an integer, is " + shown(*v));
  field = *i;
}

void AttrReader::operator()(const char* key, int& field) {
  int64_t wide = field;
  (*this)(key, wide);
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max())
    fail(key, "is out of range: " + std::to_string(wide));
  field = int(wide);
}

void AttrReader::operator()(const char* key, bool& field) {
  const AttrValue* v = find(key);
  if (!v) return;
  const int64_t* flag = std::get_if<int64_t>(v);
  if (!flag || (*flag != 0 && *flag != 1)) fail(key, "must be 0 or 1, is " + shown(*v));
  field = *flag == 1;
}

void AttrReader::operator()(const char* key, double& field) {
  const AttrValue* v = find(key);
  if (!v) return;
  if (const double* d = std::get_if<double>(v))
    field = *d;
  else if (const int64_t* i = std::get_if<int64_t>(v))
    field = double(*i);
  else
    fail(key, "must be a number, is " + shown(*v));
}

void AttrReader::operator()(const char* key, float& field) {
  double wide = field;
  (*this)(key, wide);
  field = float(wide);
}

void AttrReader::operator()(const char* key, std::string& field) {
  const AttrValue* v = find(key);
  if (!v) return;
  const std::string* s = std::get_if<std::string>(v);
  if (!s) fail(key, "must be a string, is " + shown(*v));
  field = *s;
}

void AttrReader::reject_unknown_keys() const {
  for (const auto& item : node_.attrs.items()) {
    if (std::any_of(known_.begin(), known_.end(), [&](const char* k) { return item.first == k; })) continue;
    std::string known;
    for (const char* k : known_) known += (known.empty() ? "" : ", ") + std::string(k);
    fail(item.first.c_str(), "is unknown (" + node_.op + " takes " + (known.empty() ? "none" : known) + ")");
  }
}

}  // namespace massmap
