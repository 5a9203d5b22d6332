// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/track_recognition.h"

#include <cmath>

#include <gtest/gtest.h>

namespace fg::pipeline {
namespace {

std::vector<float> Unit(int axis, int dim = 8) {
    std::vector<float> v(dim, 0.f);
    v[axis] = 1.f;
    return v;
}

IdentityVerdict Known(const std::string& id, float score) {
    return {.known = true, .subject_id = id, .display_name = id, .score = score, .margin = score};
}
IdentityVerdict Unknown(float score) { return {.known = false, .score = score}; }

TEST(RecognitionPolicy, ValidateNamesTheField) {
    RecognitionPolicy p;
    EXPECT_TRUE(p.Validate().ok());
    p.min_quality = 2;
    EXPECT_NE(p.Validate().message().find("min_quality"), std::string::npos);
    p = {};
    p.unknown_min_faces = 20;
    EXPECT_NE(p.Validate().message().find("unknown_min_faces"), std::string::npos);
}

TEST(FaceOfferPolicy, WaitsForAGoodFaceThenTakesTheBestAfterPatience) {
    RecognitionPolicy p{.min_quality = 0.5f, .patience_frames = 3};
    FaceOfferPolicy r(p);
    EXPECT_FALSE(r.OfferFace(0.2f, 0));
    EXPECT_FALSE(r.OfferFace(0.3f, 40));
    EXPECT_FALSE(r.OfferFace(0.1f, 80));
    // Patience exhausted: a face about as good as the best seen (0.3) is taken.
    EXPECT_FALSE(r.OfferFace(0.1f, 120));
    EXPECT_TRUE(r.OfferFace(0.29f, 160));
}

TEST(FaceOfferPolicy, GoodFirstFaceIsTakenAtOnce) {
    FaceOfferPolicy r(RecognitionPolicy{.min_quality = 0.5f});
    EXPECT_TRUE(r.OfferFace(0.8f, 0));
}

TEST(FaceOfferPolicy, NeverEmbedsEveryFrameAndCapsEmbeddings) {
    RecognitionPolicy p{.min_quality = 0.1f, .min_gap_frames = 3, .recheck_interval_ms = 0,
                        .unknown_min_faces = 1, .max_embeddings = 4};
    FaceOfferPolicy r(p);
    int embedded = 0;
    for (int f = 0; f < 100; ++f) {
        if (r.OfferFace(0.9f, f * 40)) {
            r.Sent(0.9f, f * 40);
            ++embedded;
        }
    }
    EXPECT_EQ(embedded, 4);
    EXPECT_EQ(r.faces_sent(), 4);
}

TEST(FaceOfferPolicy, DecidedTrackIsRecheckedOnlyAtTheIntervalOrWhenBetter) {
    RecognitionPolicy p{.min_quality = 0.3f, .quality_gain = 0.1f, .min_gap_frames = 1,
                        .recheck_interval_ms = 1000};
    FaceOfferPolicy r(p);
    ASSERT_TRUE(r.OfferFace(0.5f, 0));
    r.Sent(0.5f, 0);
    r.SetDecided(true);
    EXPECT_FALSE(r.OfferFace(0.55f, 100));  // not better enough, not due
    EXPECT_TRUE(r.OfferFace(0.65f, 200));   // clearly better
    r.Sent(0.65f, 200);
    EXPECT_FALSE(r.OfferFace(0.6f, 900));
    EXPECT_TRUE(r.OfferFace(0.6f, 1300));  // re-check due
}

TEST(FaceOfferPolicy, UndecidedTrackKeepsGatheringFaces) {
    RecognitionPolicy p{.min_quality = 0.3f, .quality_gain = 0.1f, .min_gap_frames = 1,
                        .recheck_interval_ms = 1000};
    FaceOfferPolicy r(p);
    ASSERT_TRUE(r.OfferFace(0.5f, 0));
    r.Sent(0.5f, 0);
    EXPECT_TRUE(r.OfferFace(0.45f, 100));  // about as good: more evidence while undecided
}

TEST(TrackRecognition, UnknownNeedsEnoughFacesAndIsAnnouncedOnce) {
    TrackRecognition r(RecognitionPolicy{.unknown_min_faces = 2});
    r.AddEmbedding(Unit(1), 0.9f);
    EXPECT_EQ(r.Decide(Unknown(0.1f)), std::nullopt);
    EXPECT_EQ(r.decision(), TrackDecision::kPending);
    r.AddEmbedding(Unit(1), 0.9f);
    EXPECT_EQ(r.Decide(Unknown(0.1f)), TrackDecision::kUnknown);
    r.AddEmbedding(Unit(1), 0.9f);
    EXPECT_EQ(r.Decide(Unknown(0.1f)), std::nullopt);
    // Later evidence can still name the person.
    EXPECT_EQ(r.Decide(Known("bob", 0.6f)), TrackDecision::kRecognized);
}

TEST(TrackRecognition, MatchIsStickyAndAChangeOfSubjectIsAnnounced) {
    TrackRecognition r(RecognitionPolicy{});
    r.AddEmbedding(Unit(0), 0.9f);
    EXPECT_EQ(r.Decide(Known("alice", 0.6f)), TrackDecision::kRecognized);
    EXPECT_EQ(r.Decide(Known("alice", 0.65f)), std::nullopt);
    EXPECT_EQ(r.Decide(Unknown(0.3f)), std::nullopt);
    EXPECT_EQ(r.decision(), TrackDecision::kRecognized);
    EXPECT_EQ(r.Decide(Known("carol", 0.7f)), TrackDecision::kRecognized);
    EXPECT_EQ(r.verdict().subject_id, "carol");
}

TEST(TrackRecognition, FusionIsQualityWeightedAndUnitLength) {
    TrackRecognition r(RecognitionPolicy{});
    r.AddEmbedding(Unit(0), 0.9f);
    r.AddEmbedding(Unit(1), 0.3f);
    const auto& f = r.fused();
    ASSERT_EQ(f.size(), 8u);
    EXPECT_NEAR(f[0] * f[0] + f[1] * f[1], 1.0, 1e-5);
    EXPECT_NEAR(f[0] / f[1], 3.0, 1e-4);  // weights 0.9 : 0.3
    // A vector of another length (another model) is ignored, not mixed in.
    r.AddEmbedding(Unit(0, 4), 0.9f);
    EXPECT_EQ(r.faces_used(), 2);
}

}  // namespace
}  // namespace fg::pipeline
