// SPDX-License-Identifier: Apache-2.0
// Test helpers shared by every library's tests.
#pragma once

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "fg/base/paths.h"

namespace fg::testing {

/// Path of an installed model file (ModelsDir()/name), or of a shared model
/// (SharedDir()/models/name) when `shared` is true.
std::filesystem::path ModelPath(const std::string& name, bool shared = false);

/// dlib's example folder; see fg::DlibExamplesDir().
using ::fg::DlibExamplesDir;

/// A fresh temporary directory, removed by the destructor.
class TmpDir {
  public:
    TmpDir();
    ~TmpDir();
    TmpDir(const TmpDir&) = delete;
    TmpDir& operator=(const TmpDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

/// Message for a missing test input: in CI (CI=true) this is a failure, elsewhere a skip.
std::string MissingDataMessage(const std::filesystem::path& path);

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed): for test
/// servers, and for "nothing listens here" cases.
int FreeLoopbackPort();

}  // namespace fg::testing

/// Skips the test (or fails it under CI=true) when `path` does not exist.
#define FG_REQUIRE_PATH(path)                                                        \
    do {                                                                             \
        if (!std::filesystem::exists(path)) {                                        \
            if (::fg::InCi()) {                                                      \
                FAIL() << ::fg::testing::MissingDataMessage(path);                   \
            } else {                                                                 \
                GTEST_SKIP() << ::fg::testing::MissingDataMessage(path);             \
            }                                                                        \
        }                                                                            \
    } while (0)
