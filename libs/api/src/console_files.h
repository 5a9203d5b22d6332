// SPDX-License-Identifier: Apache-2.0
// Internal to fg::api: the files of console/ compiled into the binary (embed_dir.cmake).
#pragma once

#include <cstddef>

namespace fg::api {

struct EmbeddedFile {
    const char* name;          ///< "index.html" (console/ is flat)
    const char* content_type;  ///< by extension
    const unsigned char* data;
    std::size_t size;
};
/// Sorted by name; kConsoleFileCount entries, then a null one.
extern const EmbeddedFile kConsoleFiles[];
extern const std::size_t kConsoleFileCount;

}  // namespace fg::api
