// SPDX-License-Identifier: Apache-2.0
// The default-pack engine (1 thread) and an empty encrypted gallery that the pipeline's model
// tests start from.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "fg/gallery/gallery.h"
#include "fg/vision/engine.h"

namespace fg::pipeline::testing {

/// Fills `engine` and `gallery` (a new SQLite gallery at dir/g.db with the pack's 1:1
/// threshold); fails the calling test on error. Call through ASSERT_NO_FATAL_FAILURE, after
/// the caller's FG_REQUIRE_PATH checks (a skip inside a helper would not stop the caller).
inline void MakeEngineAndGallery(const std::filesystem::path& dir, char key_char,
                                 std::shared_ptr<vision::Engine>& engine,
                                 std::shared_ptr<gallery::Gallery>& gallery) {
    auto e = vision::Engine::Create({.pack = "default", .backend = {.threads = 1}});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine = *e;
    auto key = gallery::ParseKey(std::string(64, key_char));
    ASSERT_TRUE(key.ok());
    auto g = gallery::Gallery::Open({.location = (dir / "g.db").string(),
                                     .keys = std::make_shared<gallery::KeyRing>(*key),
                                     .default_threshold = vision::DefaultVerifyThreshold(engine->pack())});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    gallery = std::move(*g);
}

}  // namespace fg::pipeline::testing
