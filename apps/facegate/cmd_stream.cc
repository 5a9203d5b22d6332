// SPDX-License-Identifier: Apache-2.0
#include "common.h"

namespace fg::cli {
void RegisterStreamCommands(CLI::App&, Action&) {}
}  // namespace fg::cli
