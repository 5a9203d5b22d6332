// SPDX-License-Identifier: Apache-2.0
#include "fg/base/paths.h"

#include <cstdlib>
#include <string_view>

namespace fg {
namespace {
std::optional<std::filesystem::path> Env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::filesystem::path(v);
}
}  // namespace

std::filesystem::path ModelsDir() {
    if (auto p = Env("FG_MODELS_DIR")) return *p;
    return std::filesystem::path(FG_DEFAULT_MODELS_DIR);
}

std::filesystem::path SharedDir() {
    if (auto p = Env("FG_SHARED_DIR")) return *p;
    return std::filesystem::path(FG_DEFAULT_SHARED_DIR);
}

std::filesystem::path DlibExamplesDir() {
    if (auto p = Env("FG_DLIB_EXAMPLES")) return *p;
    const std::filesystem::path system = "/usr/share/doc/libdlib19.1/examples";
    std::error_code ec;
    if (std::filesystem::exists(system, ec)) return system;
    const auto unpacked = std::filesystem::path(FG_SOURCE_DIR) / ".cache/dlib/usr/share/doc/libdlib19.1/examples";
    if (std::filesystem::exists(unpacked, ec)) return unpacked;
    return system;
}

bool InCi() {
    const char* v = std::getenv("CI");
    if (v == nullptr) return false;
    std::string_view s(v);
    return s == "true" || s == "1" || s == "yes";
}

}  // namespace fg
