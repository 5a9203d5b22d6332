// SPDX-License-Identifier: Apache-2.0
#include "fg/eval/face_choice.h"

#include <vector>

#include <gtest/gtest.h>

namespace fg::eval {
namespace {

// An LFW-like 250x250 image: the labelled person in the centre, a larger face at the edge.
const std::vector<Rect2f> kLfwLike{
    {150, 20, 100, 120},  // bystander, larger, off centre
    {90, 85, 70, 80},     // labelled face: centre (125, 125)
    {0, 0, 20, 20},       // tiny face in a corner
};

TEST(FaceChoice, LargestTakesTheBiggestBox) {
    EXPECT_EQ(PickFace(kLfwLike, 250, 250, FaceChoice::kLargest), 0);
}

TEST(FaceChoice, CenterTakesTheBoxNearestTheImageCentre) {
    EXPECT_EQ(PickFace(kLfwLike, 250, 250, FaceChoice::kCenter), 1);
    // The image size matters: in a 500x300 image the bystander (centre 200, 80) is nearer.
    EXPECT_EQ(PickFace(kLfwLike, 500, 300, FaceChoice::kCenter), 0);
}

TEST(FaceChoice, EmptyAndTies) {
    EXPECT_EQ(PickFace({}, 250, 250, FaceChoice::kLargest), -1);
    EXPECT_EQ(PickFace({}, 250, 250, FaceChoice::kCenter), -1);
    const std::vector<Rect2f> twins{{0, 0, 10, 10}, {240, 240, 10, 10}};
    EXPECT_EQ(PickFace(twins, 250, 250, FaceChoice::kLargest), 0);
    EXPECT_EQ(PickFace(twins, 250, 250, FaceChoice::kCenter), 0);
    const std::vector<Rect2f> one{{3, 4, 0, 0}};  // degenerate box: still the only face
    EXPECT_EQ(PickFace(one, 250, 250, FaceChoice::kLargest), 0);
}

TEST(FaceChoice, ParsesNames) {
    EXPECT_EQ(*ParseFaceChoice("largest"), FaceChoice::kLargest);
    EXPECT_EQ(*ParseFaceChoice("center"), FaceChoice::kCenter);
    EXPECT_FALSE(ParseFaceChoice("centre").ok());
    EXPECT_EQ(FaceChoiceName(FaceChoice::kCenter), "center");
    EXPECT_EQ(FaceChoiceName(FaceChoice::kLargest), "largest");
}

}  // namespace
}  // namespace fg::eval
