#pragma once
// The dataset options every command that reads a dataset takes (data check, split and patches, train, evaluate),
// so they are spelled and checked the same everywhere.
#include "apps/cli.h"
#include "data/dataset.h"

namespace massmap::cli {

// The options' lines, for a command's usage text.
extern const char* const dataset_options_usage;
// Reads --format, --root, --csv, --skip-bad and --split from `args` (UsageError on a missing or bad value).
data::DatasetOptions dataset_options(Args& args);
// Every file a dataset was read from (its CSVs as given and under the root, the default index names, the images
// and masks), labelled for check_output_not_input.
std::vector<std::pair<std::string, std::string>> dataset_files(const data::DatasetOptions& options,
                                                               const data::Dataset& dataset);

}  // namespace massmap::cli
