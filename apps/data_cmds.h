#pragma once
// The subcommands of `massmap data` beyond check (apps/data_cmd.cpp dispatches).
#include "apps/cli.h"

namespace massmap::cli {

extern const char* const data_split_usage;
int run_data_split(Args& args);
extern const char* const data_patches_usage;
int run_data_patches(Args& args);

}  // namespace massmap::cli
