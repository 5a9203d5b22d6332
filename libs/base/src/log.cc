// SPDX-License-Identifier: Apache-2.0
#include "fg/base/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace fg {
void SetLogLevel(const std::string& level) {
    // stdout carries JSON results; logs must go to stderr.
    static auto logger = [] {
        auto l = spdlog::stderr_color_mt("facegate");
        spdlog::set_default_logger(l);
        return l;
    }();
    spdlog::set_level(spdlog::level::from_str(level));
}
}  // namespace fg
