// SPDX-License-Identifier: Apache-2.0
// Logging facade: libraries log through spdlog's default logger (stderr), never print to stdout.
#pragma once

#include <spdlog/spdlog.h>

namespace fg {
/// Sets the global log level from a name (trace, debug, info, warn, error, off).
void SetLogLevel(const std::string& level);
}  // namespace fg
