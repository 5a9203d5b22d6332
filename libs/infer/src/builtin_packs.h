// SPDX-License-Identifier: Apache-2.0
// Built-in pack manifests, embedded at build time by cmake/embed_packs.cmake.
#pragma once

#include <string_view>
#include <utility>
#include <vector>

namespace fg::infer::detail {

/// (pack name, manifest JSON text) for every pack compiled into the binary.
const std::vector<std::pair<std::string_view, std::string_view>>& BuiltinPackSources();

}   // namespace fg::infer::detail
