// Patient-level train / validation / test split (the paper's 80/10/10, made leak-free: both views and both
// breasts of a patient land in one part). Each patient's place in the shuffle is a Philox draw keyed by a hash of
// its id, so adding a patient to the dataset never moves the others.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/philox.h"
#include "base/text.h"
#include "data/patches.h"

namespace massmap::data {

namespace {

constexpr uint64_t kSplitStream = uint64_t(0x5B) << 56;

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

uint64_t shuffle_key(uint64_t seed, const std::string& patient) {
  const uint64_t h = fnv1a(patient);
  return (uint64_t(random_bits_at(seed, kSplitStream, h)) << 32) | random_bits_at(seed, kSplitStream + 1, h);
}

void check_fractions(double train, double validation) {
  if (!(train >= 0 && train <= 1) || !(validation >= 0 && validation <= 1) || train + validation > 1 + 1e-12)
    throw BadConfig("split fractions must lie in [0, 1] with train + validation at most 1, got train " +
                    decimal_text(train) + ", validation " + decimal_text(validation));
}

}  // namespace

std::string Split::which(const std::string& patient_id) const {
  const std::pair<const char*, const std::vector<std::string>*> parts[] = {
      {"train", &train_patients}, {"validation", &validation_patients}, {"test", &test_patients}};
  for (const auto& [name, list] : parts)
    if (std::binary_search(list->begin(), list->end(), patient_id)) return name;
  throw BadInput("patient '" + patient_id + "' is in no part of the split");
}

Split make_split(const Dataset& dataset, uint64_t seed, double train, double validation) {
  check_fractions(train, validation);
  std::set<std::string> unique;
  for (const DatasetImage& im : dataset.images) {
    // An image without a patient would be its own "patient" and could leak its twin view across parts.
    if (im.patient_id.empty()) throw BadInput("image '" + im.id + "' has no patient id: cannot split by patient");
    unique.insert(im.patient_id);
  }
  std::vector<std::pair<uint64_t, std::string>> order;  // (key, patient)
  for (const std::string& p : unique) order.emplace_back(shuffle_key(seed, p), p);
  std::sort(order.begin(), order.end());  // ties (p ~ n^2 / 2^64) fall back to the id: still deterministic

  // Counts: train = round(train n), validation = round(validation n) (halves away from zero), test = the rest,
  // so 10 patients give 8/1/1 and every patient is counted once.
  const int64_t n = int64_t(order.size());
  const int64_t n_train = std::min<int64_t>(n, std::llround(train * double(n)));
  const int64_t n_validation = std::min<int64_t>(n - n_train, std::llround(validation * double(n)));
  Split s;
  s.seed = seed;
  s.train = train;
  s.validation = validation;
  // The rest, to 12 decimals: 1 - 0.8 - 0.1 is 0.09999999999999998 in binary, and the split file says 0.1.
  s.test = std::max(0.0, std::round((1 - train - validation) * 1e12) / 1e12);
  for (int64_t i = 0; i < n; ++i) {
    auto& part = i < n_train ? s.train_patients : i < n_train + n_validation ? s.validation_patients : s.test_patients;
    part.push_back(order[i].second);
  }
  for (auto* part : {&s.train_patients, &s.validation_patients, &s.test_patients})
    std::sort(part->begin(), part->end());
  return s;
}

void write_split(const std::string& path, const Split& split) {
  const nlohmann::json j = {
      {"seed", split.seed},
      {"fractions", {{"train", split.train}, {"validation", split.validation}, {"test", split.test}}},
      {"train", split.train_patients},
      {"validation", split.validation_patients},
      {"test", split.test_patients}};
  write_file_atomic(path, [&](std::ostream& out) { out << j.dump(2) << "\n"; });
}

Split read_split(const std::string& path) {
  const std::vector<char> bytes = read_file_bytes(path);  // BadInput naming the path when unreadable
  auto fail = [&](const std::string& what) -> void { throw BadInput(path + ": split file " + what); };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail("must be a JSON object");
  for (const auto& item : j.items())
    if (item.key() != "seed" && item.key() != "fractions" && item.key() != "train" && item.key() != "validation" &&
        item.key() != "test")
      fail("has an unknown key '" + item.key() + "' (known: seed, fractions, train, validation, test)");
  Split s;
  if (!j.contains("seed") || !j["seed"].is_number_unsigned()) fail("needs 'seed', a non-negative integer");
  s.seed = j["seed"].get<uint64_t>();
  if (!j.contains("fractions") || !j["fractions"].is_object()) fail("needs 'fractions', an object");
  double* fractions[] = {&s.train, &s.validation, &s.test};
  const char* names[] = {"train", "validation", "test"};
  for (int k = 0; k < 3; ++k) {
    const nlohmann::json& f = j["fractions"];
    if (!f.contains(names[k]) || !f[names[k]].is_number())
      fail(std::string("needs fractions.") + names[k] + ", a number");
    *fractions[k] = f[names[k]].get<double>();
  }
  if (j["fractions"].size() != 3) fail("'fractions' must hold exactly train, validation and test");
  std::vector<std::string>* parts[] = {&s.train_patients, &s.validation_patients, &s.test_patients};
  std::set<std::string> seen;
  for (int k = 0; k < 3; ++k) {
    if (!j.contains(names[k]) || !j[names[k]].is_array())
      fail(std::string("needs '") + names[k] + "', a list of patient ids");
    for (const nlohmann::json& p : j[names[k]]) {
      if (!p.is_string() || p.get<std::string>().empty())
        fail(std::string("has a bad patient id in '") + names[k] + "': " + p.dump());
      if (!seen.insert(p.get<std::string>()).second) fail("lists patient '" + p.get<std::string>() + "' twice");
      parts[k]->push_back(p.get<std::string>());
    }
    std::sort(parts[k]->begin(), parts[k]->end());  // which() searches them
  }
  return s;
}

std::vector<int> split_indices(const Dataset& dataset, const Split& split, const std::string& part) {
  if (part != "train" && part != "validation" && part != "test")
    throw UsageError("split part '" + part + "': expected train, validation or test");
  std::set<std::string> unknown;  // the dataset's patients that the split does not list
  for (const DatasetImage& im : dataset.images) {
    const auto& [t, v, s] = std::tie(split.train_patients, split.validation_patients, split.test_patients);
    const std::string& p = im.patient_id;
    if (!std::binary_search(t.begin(), t.end(), p) && !std::binary_search(v.begin(), v.end(), p) &&
        !std::binary_search(s.begin(), s.end(), p))
      unknown.insert(p);
  }
  if (!unknown.empty()) {
    const size_t listed = split.train_patients.size() + split.validation_patients.size() + split.test_patients.size();
    throw BadInput("patient '" + *unknown.begin() + "'" +
                   (unknown.size() > 1 ? " and " + plural(int64_t(unknown.size() - 1), "other") : "") +
                   " of the dataset " + (unknown.size() > 1 ? "are" : "is") + " in no part of the split, which lists " +
                   plural(int64_t(listed), "patient") + ": was the split made from another dataset?");
  }
  std::vector<int> indices;  // (images in the part) dataset indices, in dataset order
  for (size_t i = 0; i < dataset.images.size(); ++i)
    if (split.which(dataset.images[i].patient_id) == part) indices.push_back(int(i));
  return indices;
}

}  // namespace massmap::data
