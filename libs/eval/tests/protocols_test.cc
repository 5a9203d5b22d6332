// SPDX-License-Identifier: Apache-2.0
#include "fg/eval/protocols.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "fg/base/paths.h"
#include "fg/testing/testing.h"

namespace fg::eval {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

// ---- LFW ----

TEST(LfwPairsTest, TwoFolds) {
    fg::testing::TmpDir tmp;
    WriteFile(tmp / "pairs.txt",
              "2\t1\n"
              "Abel_Pacheco\t1\t4\n"
              "Abdel_Madi_Shabneh\t1\tDean_Barker\t1\n"
              "Abdullah_Gul  13 14\n"
              "Zico 3 Zoe_Ball 12\n");
    auto r = LoadLfwPairs(tmp / "pairs.txt", "/lfw");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), 4u);
    const auto& p = *r;
    EXPECT_EQ(p[0].a, fs::path("/lfw/Abel_Pacheco/Abel_Pacheco_0001.jpg"));
    EXPECT_EQ(p[0].b, fs::path("/lfw/Abel_Pacheco/Abel_Pacheco_0004.jpg"));
    EXPECT_TRUE(p[0].same);
    EXPECT_EQ(p[0].fold, 0);
    EXPECT_EQ(p[1].a, fs::path("/lfw/Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg"));
    EXPECT_EQ(p[1].b, fs::path("/lfw/Dean_Barker/Dean_Barker_0001.jpg"));
    EXPECT_FALSE(p[1].same);
    EXPECT_EQ(p[1].fold, 0);
    EXPECT_EQ(p[2].a, fs::path("/lfw/Abdullah_Gul/Abdullah_Gul_0013.jpg"));
    EXPECT_TRUE(p[2].same);
    EXPECT_EQ(p[2].fold, 1);
    EXPECT_EQ(p[3].b, fs::path("/lfw/Zoe_Ball/Zoe_Ball_0012.jpg"));
    EXPECT_FALSE(p[3].same);
    EXPECT_EQ(p[3].fold, 1);
}

TEST(LfwPairsTest, SingleNumberHeaderIsOneFoldAndCrlfIsAccepted) {
    fg::testing::TmpDir tmp;
    WriteFile(tmp / "pairsDevTrain.txt",
              "2\r\n"
              "A 1 2\r\n"
              "B 1 3\r\n"
              "A 1 B 2\r\n"
              "C 10 D 11\r\n"
              "\r\n");
    auto r = LoadLfwPairs(tmp / "pairsDevTrain.txt", tmp.path());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), 4u);
    for (const auto& p : *r) EXPECT_EQ(p.fold, 0);
    EXPECT_TRUE((*r)[1].same);
    EXPECT_FALSE((*r)[2].same);
    EXPECT_EQ((*r)[3].b, tmp.path() / "D" / "D_0011.jpg");
}

struct MalformedCase {
    const char* text;
    const char* line;  // expected "<file>:<line>:" fragment
};

TEST(LfwPairsTest, MalformedInputReportsTheLine) {
    const MalformedCase cases[] = {
        {"", ":0:"},                                   // no header
        {"ten 300\n", ":1:"},                          // non-numeric header
        {"1 2 3\n", ":1:"},                            // too many header fields
        {"0 1\n", ":1:"},                              // zero folds
        {"1 1\nA 1\nA 1 B 2\n", ":2:"},                // same pair with 2 fields
        {"1 1\nA 1 2\nA 1 2\n", ":3:"},                // different pair with 3 fields
        {"1 1\nA x 2\nA 1 B 2\n", ":2:"},              // non-numeric image number
        {"1 1\nA 0 2\nA 1 B 2\n", ":2:"},              // image numbers are 1-based
        {"1 1\nA 1 2\nA 1 B -2\n", ":3:"},             // negative image number
        {"1 2\nA 1 2\nB 1 2\nA 1 B 2\n", ":4:"},       // truncated: missing a different pair
        {"1 1\nA 1 2\nA 1 B 2\nC 1 2\n", ":4:"},       // extra line
        {"1 1\nA 1 2\nA 1 ../B 2\n", ":3:"},          // name leaving the root
    };
    fg::testing::TmpDir tmp;
    for (const auto& c : cases) {
        WriteFile(tmp / "pairs.txt", c.text);
        auto r = LoadLfwPairs(tmp / "pairs.txt", "/lfw");
        ASSERT_FALSE(r.ok()) << c.text;
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.text;
        EXPECT_NE(r.status().message().find(std::string("pairs.txt") + c.line), std::string::npos)
            << c.text << " -> " << r.status().ToString();
    }
}

TEST(LfwPairsTest, MissingFileIsNotFound) {
    fg::testing::TmpDir tmp;
    EXPECT_EQ(LoadLfwPairs(tmp / "nope.txt", "/lfw").status().code(), StatusCode::kNotFound);
}

// ---- CFP ----

// A 2-split miniature of the CFP layout with 3 frontal and 2 profile images.
void WriteMiniCfp(const fs::path& root) {
    WriteFile(root / "Protocol/Pair_list_F.txt",
              "1 ../Data/Images/001/frontal/01.jpg\n"
              "2 ../Data/Images/001/frontal/02.jpg\n"
              "3 ../Data/Images/002/frontal/01.jpg\n");
    WriteFile(root / "Protocol/Pair_list_P.txt",
              "1 ../Data/Images/001/profile/01.jpg\n"
              "2 ../Data/Images/002/profile/01.jpg\n");
    WriteFile(root / "Protocol/Split/FF/01/same.txt", "1,2\n");
    WriteFile(root / "Protocol/Split/FF/01/diff.txt", "1,3\n");
    WriteFile(root / "Protocol/Split/FF/02/same.txt", "2,1\n");
    WriteFile(root / "Protocol/Split/FF/02/diff.txt", "3,2\n");
    WriteFile(root / "Protocol/Split/FP/01/same.txt", "1,1\n3,2\n");
    WriteFile(root / "Protocol/Split/FP/01/diff.txt", "1,2\n3,1\n");
    WriteFile(root / "Protocol/Split/FP/02/same.txt", "2,1\n");
    WriteFile(root / "Protocol/Split/FP/02/diff.txt", "2,2\n");
}

TEST(CfpPairsTest, MiniatureFf) {
    fg::testing::TmpDir tmp;
    WriteMiniCfp(tmp.path());
    auto r = LoadCfpPairs(tmp.path(), "ff");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), 4u);
    const auto& p = *r;
    EXPECT_EQ(p[0].a, tmp.path() / "Data/Images/001/frontal/01.jpg");
    EXPECT_EQ(p[0].b, tmp.path() / "Data/Images/001/frontal/02.jpg");
    EXPECT_TRUE(p[0].same);
    EXPECT_EQ(p[0].fold, 0);
    EXPECT_EQ(p[1].b, tmp.path() / "Data/Images/002/frontal/01.jpg");
    EXPECT_FALSE(p[1].same);
    EXPECT_EQ(p[2].fold, 1);
    EXPECT_TRUE(p[2].same);
    EXPECT_EQ(p[3].fold, 1);
    EXPECT_FALSE(p[3].same);
}

TEST(CfpPairsTest, MiniatureFpIndexesProfileListSecond) {
    fg::testing::TmpDir tmp;
    WriteMiniCfp(tmp.path());
    auto r = LoadCfpPairs(tmp.path(), "FP");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), 6u);
    EXPECT_EQ((*r)[1].a, tmp.path() / "Data/Images/002/frontal/01.jpg");
    EXPECT_EQ((*r)[1].b, tmp.path() / "Data/Images/002/profile/01.jpg");
    EXPECT_TRUE((*r)[1].same);
    EXPECT_FALSE((*r)[2].same);
}

TEST(CfpPairsTest, Errors) {
    fg::testing::TmpDir tmp;
    WriteMiniCfp(tmp.path());
    EXPECT_EQ(LoadCfpPairs(tmp.path(), "PP").status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(LoadCfpPairs(tmp.path(), "").status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(LoadCfpPairs(tmp / "missing", "FF").status().code(), StatusCode::kNotFound);

    // Index 3 exists in the frontal list but not in the profile list.
    WriteFile(tmp / "Protocol/Split/FP/02/diff.txt", "2,2\n2,3\n");
    auto r = LoadCfpPairs(tmp.path(), "FP");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("diff.txt:2:"), std::string::npos)
        << r.status().ToString();

    WriteFile(tmp / "Protocol/Split/FF/02/same.txt", "2;1\n");
    r = LoadCfpPairs(tmp.path(), "FF");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("same.txt:1:"), std::string::npos)
        << r.status().ToString();

    WriteFile(tmp / "Protocol/Split/FF/02/same.txt", "2,1\n");
    fs::remove(tmp / "Protocol/Split/FF/02/diff.txt");
    EXPECT_EQ(LoadCfpPairs(tmp.path(), "FF").status().code(), StatusCode::kNotFound);

    WriteFile(tmp / "Protocol/Split/FF/02/diff.txt", "3,2\n");
    fs::rename(tmp / "Protocol/Split/FF/02", tmp / "Protocol/Split/FF/03");  // gap at split 2
    EXPECT_EQ(LoadCfpPairs(tmp.path(), "FF").status().code(), StatusCode::kInvalidArgument);

    WriteFile(tmp / "Protocol/Pair_list_F.txt", "1 a.jpg\n1 b.jpg\n");
    r = LoadCfpPairs(tmp.path(), "FF");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("Pair_list_F.txt:2:"), std::string::npos)
        << r.status().ToString();
}

TEST(CfpPairsTest, RealProtocol) {
    const fs::path root = fg::SharedDir() / "data/cfp/cfp-dataset";
    FG_REQUIRE_PATH(root);
    for (const char* protocol : {"FF", "FP"}) {
        SCOPED_TRACE(protocol);
        auto r = LoadCfpPairs(root, protocol);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        ASSERT_EQ(r->size(), 7000u);
        int same = 0;
        int fold_size[10] = {};
        int missing = 0;
        for (const auto& p : *r) {
            same += p.same;
            ASSERT_GE(p.fold, 0);
            ASSERT_LT(p.fold, 10);
            ++fold_size[p.fold];
            for (const fs::path& image : {p.a, p.b}) {
                if (!fs::is_regular_file(image)) {
                    if (++missing <= 5) ADD_FAILURE() << "missing image " << image;
                }
                EXPECT_EQ(image, image.lexically_normal());
            }
        }
        EXPECT_EQ(missing, 0);
        EXPECT_EQ(same, 3500);
        for (int k = 0; k < 10; ++k) EXPECT_EQ(fold_size[k], 700) << "fold " << k;
        if (std::string(protocol) == "FP") {
            EXPECT_NE(r->front().b.string().find("/profile/"), std::string::npos);
            EXPECT_NE(r->front().a.string().find("/frontal/"), std::string::npos);
        }
    }
}

}  // namespace
}  // namespace fg::eval
