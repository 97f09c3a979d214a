#include "apps/dataset_args.h"

#include <filesystem>

#include "base/errors.h"

namespace massmap::cli {

const char* const dataset_options_usage = R"(dataset options:
  --format F         cbis-ddsm, mini-mias or manifest (required)
  --root DIR         the dataset's folder (required, but for a manifest named by --csv: then the
                     manifest's folder)
  --csv FILE[,FILE]  cbis-ddsm: the case description CSVs (default: the four published ones found under DIR);
                     mini-mias: Info.txt (default DIR/Info.txt); manifest: the manifest (default DIR/manifest.csv).
                     Repeat --csv or separate files by commas; a relative name is looked up as given, then in DIR
  --skip-bad         skip and report bad rows and images instead of stopping at the first
  --split S          cbis-ddsm only: train or test, the official split (default both)
)";

data::DatasetOptions dataset_options(Args& args) {
  data::DatasetOptions o;
  o.format = args.str("format", "");
  o.root = args.str("root", "");
  const std::vector<std::string> csv_options = args.list("csv");  // --csv A --csv B, or --csv A,B
  o.skip_bad = args.flag("skip-bad");
  o.official_split = args.str("split", "");
  if (o.format.empty())
    throw UsageError("missing option --format (cbis-ddsm, mini-mias or manifest)\n\n" + args.usage());
  if (o.format != "cbis-ddsm" && o.format != "mini-mias" && o.format != "manifest")
    throw UsageError("--format takes cbis-ddsm, mini-mias or manifest, not '" + o.format + "'");
  if (o.root.empty() && !(o.format == "manifest" && !csv_options.empty()))
    throw UsageError("missing option --root (the dataset's folder)\n\n" + args.usage());
  for (const std::string& csv : csv_options)
    for (size_t a = 0; a < csv.size();) {
      const size_t b = std::min(csv.find(',', a), csv.size());
      if (b > a) o.csv.push_back(csv.substr(a, b - a));
      a = b + 1;
    }
  if (!o.official_split.empty() && o.format != "cbis-ddsm")
    throw UsageError("--split applies to cbis-ddsm only (its official train/test split)");
  if (!o.official_split.empty() && o.official_split != "train" && o.official_split != "test")
    throw UsageError("--split takes train or test, not '" + o.official_split + "'");
  return o;
}

std::vector<std::pair<std::string, std::string>> dataset_files(const data::DatasetOptions& options,
                                                               const data::Dataset& dataset) {
  std::vector<std::pair<std::string, std::string>> files;
  const std::filesystem::path root(options.root);
  for (const std::string& csv : options.csv) files.push_back({"--csv", csv}), files.push_back({"--csv", root / csv});
  for (const char* index :
       {"manifest.csv", "Info.txt", "mass_case_description_train_set.csv", "mass_case_description_test_set.csv",
        "calc_case_description_train_set.csv", "calc_case_description_test_set.csv"})
    files.push_back({"the dataset's index", root / index});
  for (const data::DatasetImage& im : dataset.images) {
    files.push_back({"image " + im.id, im.path});
    for (const data::DatasetLesion& l : im.lesions)
      if (!l.mask_path.empty()) files.push_back({"a mask of image " + im.id, l.mask_path});
  }
  return files;
}

}  // namespace massmap::cli
