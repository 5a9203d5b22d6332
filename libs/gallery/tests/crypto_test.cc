// SPDX-License-Identifier: Apache-2.0
#include "fg/gallery/crypto.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "fg/testing/testing.h"
#include "test_util.h"

namespace fg::gallery {
namespace {

TEST(Crypto, SealOpenRoundTrip) {
    auto keys = testing::TestKeys();
    const std::vector<float> v = testing::RandomUnit(1);
    auto sealed = keys->Seal(v, "aad");
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(sealed->size(), 12 + v.size() * 4 + 16);
    auto opened = keys->Open(*sealed, keys->current_id(), "aad");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_EQ(*opened, v);
}

TEST(Crypto, TamperWrongAadAndWrongKeyAreDetected) {
    auto keys = testing::TestKeys();
    auto sealed = *keys->Seal(testing::RandomUnit(2), "aad");
    EXPECT_EQ(keys->Open(sealed, keys->current_id(), "other").status().code(),
              StatusCode::kDataLoss);
    auto flipped = sealed;
    flipped[20] ^= 1;
    EXPECT_EQ(keys->Open(flipped, keys->current_id(), "aad").status().code(),
              StatusCode::kDataLoss);
    auto other =
        testing::TestKeys("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    EXPECT_NE(other->current_id(), keys->current_id());
    EXPECT_EQ(other->Open(sealed, keys->current_id(), "aad").status().code(),
              StatusCode::kFailedPrecondition);
    // Same bytes but the ring does not know the key id: refused, not garbage.
    EXPECT_EQ(other->Open(sealed, other->current_id(), "aad").status().code(),
              StatusCode::kDataLoss);
}

TEST(Crypto, NoncesDiffer) {
    auto keys = testing::TestKeys();
    const auto v = testing::RandomUnit(3);
    EXPECT_NE(*keys->Seal(v, ""), *keys->Seal(v, ""));
}

TEST(Crypto, KeyParsingAndFiles) {
    EXPECT_FALSE(ParseKey("abc").ok());
    EXPECT_FALSE(ParseKey(std::string(64, 'g')).ok());
    EXPECT_TRUE(ParseKey(std::string(testing::kTestKeyHex) + "\n").ok());
    fg::testing::TmpDir tmp;
    auto created = CreateKeyFile(tmp / "k");
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    EXPECT_FALSE(CreateKeyFile(tmp / "k").ok());  // never overwrite a key
    auto loaded = LoadKeyFile(tmp / "k");
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->id, created->id);
    ::chmod((tmp / "k").c_str(), 0644);
    EXPECT_EQ(LoadKeyFile(tmp / "k").status().code(), StatusCode::kFailedPrecondition);
    ::setenv("FG_TEST_GALLERY_KEY", testing::kTestKeyHex, 1);
    EXPECT_TRUE(LoadKeyEnv("FG_TEST_GALLERY_KEY").ok());
    EXPECT_EQ(LoadKeyEnv("FG_TEST_GALLERY_KEY_UNSET").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fg::gallery
