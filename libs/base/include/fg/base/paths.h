// SPDX-License-Identifier: Apache-2.0
// Where Facegate finds installed models and the shared data folder.
#pragma once

#include <filesystem>
#include <optional>

namespace fg {

/// Directory holding installed model files: $FG_MODELS_DIR, else <source tree>/models
/// (where scripts/setup installs the default pack).
std::filesystem::path ModelsDir();

/// The shared data folder: $FG_SHARED_DIR, else the path configured at build time (../shared).
std::filesystem::path SharedDir();

/// dlib's example photos (Debian libdlib19.1): $FG_DLIB_EXAMPLES, else
/// /usr/share/doc/libdlib19.1/examples, else the copy scripts/setup unpacks into .cache/dlib.
std::filesystem::path DlibExamplesDir();

/// True when running under CI (CI=true): tests that need shared data must fail, not skip.
bool InCi();

}  // namespace fg
