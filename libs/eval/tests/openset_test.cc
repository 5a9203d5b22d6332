// SPDX-License-Identifier: Apache-2.0
#include "fg/eval/openset.h"

#include <vector>

#include <gtest/gtest.h>

namespace fg::eval {
namespace {

TEST(OpenSet, CountsTheGalleryDecisionRule) {
    std::vector<OpenSetProbe> probes{
        {.truth = 0, .has_face = true, .top1 = 0, .s1 = 0.8f, .s2 = 0.2f},   // right person
        {.truth = 1, .has_face = true, .top1 = 0, .s1 = 0.7f, .s2 = 0.1f},   // wrong person
        {.truth = 2, .has_face = true, .top1 = 2, .s1 = 0.6f, .s2 = 0.58f},  // margin too small
        {.truth = 3, .has_face = false},                                     // no face: a miss
        {.truth = -1, .has_face = true, .top1 = 1, .s1 = 0.65f, .s2 = 0.3f}, // stranger accepted
        {.truth = -1, .has_face = true, .top1 = 1, .s1 = 0.3f, .s2 = 0.2f},  // stranger rejected
        {.truth = -1, .has_face = false},                                    // not in FPIR
    };
    OpenSetRates r = EvaluateOpenSet(probes, 0.5f, 0.05f);
    EXPECT_EQ(r.genuine_probes, 4);
    EXPECT_EQ(r.true_accepts, 1);
    EXPECT_EQ(r.wrong_identities, 1);
    EXPECT_DOUBLE_EQ(r.tar, 0.25);
    EXPECT_DOUBLE_EQ(r.wrong_identity_rate, 0.25);
    EXPECT_EQ(r.impostor_probes, 3);
    EXPECT_EQ(r.impostors_with_face, 2);
    EXPECT_EQ(r.false_accepts, 1);
    EXPECT_DOUBLE_EQ(r.far, 0.5);
    EXPECT_EQ(r.threshold, 0.5f);
    EXPECT_EQ(r.margin, 0.05f);

    // A threshold above every score accepts nobody; at the score itself (>=) it accepts.
    EXPECT_EQ(EvaluateOpenSet(probes, 0.81f, 0.f).true_accepts, 0);
    EXPECT_EQ(EvaluateOpenSet(probes, 0.8f, 0.f).true_accepts, 1);
    // Without a margin the close call is accepted too.
    EXPECT_EQ(EvaluateOpenSet(probes, 0.5f, 0.f).true_accepts, 2);
}

TEST(OpenSet, EmptyClassesGiveZeroRates) {
    OpenSetRates r = EvaluateOpenSet({}, 0.5f, 0.f);
    EXPECT_EQ(r.tar, 0.0);
    EXPECT_EQ(r.far, 0.0);
    std::vector<OpenSetProbe> strangers{{.truth = -1, .has_face = false}};
    r = EvaluateOpenSet(strangers, 0.5f, 0.f);
    EXPECT_EQ(r.impostor_probes, 1);
    EXPECT_EQ(r.far, 0.0);
}

}  // namespace
}  // namespace fg::eval
