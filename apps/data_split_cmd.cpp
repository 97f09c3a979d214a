// massmap data split: the patient-level train/validation/test split, written once so every later step (training,
// evaluation, reports) uses the same one.
#include <cstdio>
#include <map>

#include "apps/data_cmds.h"
#include "apps/dataset_args.h"
#include "base/errors.h"
#include "base/text.h"
#include "data/patches.h"

namespace massmap::cli {

const char* const data_split_usage = R"(usage: massmap data split --format F --root DIR --out FILE [options]

Splits a dataset's patients into train, validation and test (80/10/10 by default; every image of a patient in the
same part, so no patient is seen in training and tested on), seeded, and writes the split as JSON to FILE
(atomically). Prints patients and images per part, and a warning for a part left empty (few patients). An empty
dataset is an error (exit 3). Every later command takes --split-file FILE.

options:
  --out FILE          where to write the split (required)
  --seed S            seed of the split (default 1)
  --train F           fraction of patients for training (default 0.8)
  --validation F      fraction for validation (default 0.1); the rest is test
)";

int run_data_split(Args& a) {
  a.set_usage(std::string(data_split_usage) + "\n" + dataset_options_usage);
  if (a.help()) {
    std::printf("%s", a.usage().c_str());
    return 0;
  }
  const data::DatasetOptions options = dataset_options(a);
  const std::string out = a.required("out");
  const uint64_t seed = uint64_t(a.integer("seed", 1, 0, INT64_MAX));
  const double train = a.number("train", 0.8, 0, 1), validation = a.number("validation", 0.1, 0, 1);
  a.finish();
  if (train + validation > 1 + 1e-12)
    throw UsageError("--train " + decimal_text(train) + " and --validation " + decimal_text(validation) +
                     " add up to more than 1 (the rest is test)");
  check_output_file("out", out);
  const data::Dataset ds = data::read_dataset(options);
  if (ds.images.empty())
    throw BadInput("no image in the dataset at '" + ds.root + "': nothing to split" +
                   (ds.skipped.empty() ? "" : " (" + std::to_string(ds.skipped.size()) + " rows skipped)"));
  check_output_not_input("out", out, dataset_files(options, ds));
  const data::Split split = data::make_split(ds, seed, train, validation);
  data::write_split(out, split);
  std::map<std::string, int> images;
  for (const data::DatasetImage& im : ds.images) images[split.which(im.patient_id)] += 1;
  std::printf("split (seed %llu) -> %s\n", (unsigned long long)seed, out.c_str());
  auto row = [&](const char* part, const std::vector<std::string>& patients) {
    std::printf("  %-11s %s, %s\n", (std::string(part) + ":").c_str(),
                plural(int64_t(patients.size()), "patient").c_str(), plural(images[part], "image").c_str());
  };
  row("train", split.train_patients);
  row("validation", split.validation_patients);
  row("test", split.test_patients);
  std::fflush(stdout);
  for (const auto& [part, patients] : {std::pair{"train", &split.train_patients},
                                       {"validation", &split.validation_patients},
                                       {"test", &split.test_patients}})
    if (patients->empty())
      std::fprintf(
          stderr, "warning: the %s part is empty (%s in all, fractions train %s, validation %s)\n", part,
          plural(int64_t(split.train_patients.size() + split.validation_patients.size() + split.test_patients.size()),
                 "patient")
              .c_str(),
          decimal_text(train).c_str(), decimal_text(validation).c_str());
  return 0;
}

}  // namespace massmap::cli
