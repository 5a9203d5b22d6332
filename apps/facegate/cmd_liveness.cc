// SPDX-License-Identifier: Apache-2.0
#include "common.h"

namespace fg::cli {
void RegisterLivenessCommands(CLI::App&, Action&) {}
}  // namespace fg::cli
