// SPDX-License-Identifier: Apache-2.0
// Face verification protocols: pairs of images with a same/different label and a fold.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "fg/base/status.h"

namespace fg::eval {

struct ImagePair {
    std::filesystem::path a;
    std::filesystem::path b;
    bool same = false;
    int fold = 0;            ///< 0-based fold index (10 folds in LFW and CFP)
};

/// LFW `pairs.txt`: a header line "<folds> <n>" (or "<n>" alone: one fold, as in view 1), then per fold
/// n lines "name i j" (same) followed by n lines "name1 i name2 j" (different); images are
/// <root>/<name>/<name>_<%04d>.jpg. Errors: NotFound, InvalidArgument (line number and reason).
Result<std::vector<ImagePair>> LoadLfwPairs(const std::filesystem::path& pairs_file,
                                            const std::filesystem::path& root);

/// CFP: `protocol` is "FF" (frontal-frontal) or "FP" (frontal-profile); `root` is the folder
/// holding Protocol/ and Data/. Reads Protocol/Pair_list_{F,P}.txt and
/// Protocol/Split/{FF,FP}/01..10/{same,diff}.txt. Errors: NotFound, InvalidArgument.
Result<std::vector<ImagePair>> LoadCfpPairs(const std::filesystem::path& root, const std::string& protocol);

}  // namespace fg::eval
