// SPDX-License-Identifier: Apache-2.0
// The change log and following it, with two Gallery objects on one store (as two processes
// would be); instantiated for SQLite (follow_test.cc) and PostgreSQL (postgres_test.cc).
#pragma once

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fg/gallery/gallery.h"
#include "fg/testing/testing.h"
#include "test_util.h"

namespace fg::gallery::testing {

/// Makes the location (path or URL) of a fresh, empty gallery; "" when the back end is
/// unavailable (the test is skipped).
using LocationFactory = std::function<std::string()>;

class FollowContract : public ::testing::TestWithParam<LocationFactory> {
  protected:
    void SetUp() override {
        location_ = GetParam()();
        if (location_.empty()) GTEST_SKIP() << "store back end unavailable";
        a_ = OpenGallery();
        b_ = OpenGallery();
        ASSERT_TRUE(a_ && b_);
    }
    std::unique_ptr<Gallery> OpenGallery(std::shared_ptr<const KeyRing> keys = nullptr) {
        auto g = Gallery::Open({.location = location_, .keys = keys ? keys : TestKeys()});
        EXPECT_TRUE(g.ok()) << g.status().ToString();
        return g.ok() ? std::move(*g) : nullptr;
    }
    static Status Enroll(Gallery& g, std::uint32_t person, int shots = 2,
                         std::vector<std::uint8_t> (*crop)(std::uint32_t, std::uint32_t) = nullptr) {
        std::vector<NewFace> faces;
        for (int s = 0; s < shots; ++s) {
            faces.push_back({Sample(person, std::uint32_t(s)), 0.9f, "t",
                             crop ? crop(person, std::uint32_t(s)) : std::vector<std::uint8_t>{}});
        }
        return g.Enroll("p" + std::to_string(person), {.model_id = kModel}, faces).status();
    }
    static std::string Who(const Gallery& g, std::uint32_t person) {
        auto id = g.Identify(Probe(Sample(person, 9)));
        return id.ok() && id->known ? id->subject_id : "";
    }
    /// Polls (bounded) until `pred` holds; a correctness check with a deadline, not a timing.
    static bool Eventually(const std::function<bool()>& pred,
                           std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
            if (pred()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return pred();
    }
    std::vector<std::string> KindsSince(std::int64_t after) {
        auto c = a_->ChangesSince(after, 10000);
        EXPECT_TRUE(c.ok()) << c.status().ToString();
        std::vector<std::string> out;
        if (c.ok()) {
            for (const Change& x : *c) out.push_back(x.kind);
        }
        return out;
    }

    std::string location_;
    std::unique_ptr<Gallery> a_, b_;
};

inline std::vector<std::uint8_t> FollowCrop(std::uint32_t person, std::uint32_t shot) {
    std::vector<std::uint8_t> c(8);
    std::memcpy(c.data(), &person, 4);
    std::memcpy(c.data() + 4, &shot, 4);
    return c;
}

TEST_P(FollowContract, EnrollDeleteRenameMergeAndRemoveReachTheOtherGallery) {
    ASSERT_TRUE(Enroll(*a_, 1).ok());
    EXPECT_EQ(Who(*b_, 1), "");  // B opened before: it has not seen the enrollment yet
    auto n = b_->Refresh();
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_GE(*n, 1);
    EXPECT_EQ(Who(*b_, 1), "p1");
    EXPECT_TRUE(b_->CheckConsistency().ok());

    for (std::uint32_t p = 2; p <= 5; ++p) ASSERT_TRUE(Enroll(*a_, p).ok());
    EXPECT_EQ(*b_->Refresh(), 4);
    EXPECT_EQ(*b_->Refresh(), 0);  // nothing new
    EXPECT_EQ(Who(*b_, 4), "p4");

    ASSERT_TRUE(a_->DeleteSubject("p4").ok());
    ASSERT_TRUE(a_->RenameSubject("p5", "Person Five").ok());
    ASSERT_TRUE(a_->MergeSubjects("p3", "p2").ok());
    const std::int64_t removed = a_->ListFaces("p1")->front().face_id;
    ASSERT_TRUE(a_->RemoveFace(removed).ok());
    EXPECT_EQ(*b_->Refresh(), 4);
    EXPECT_EQ(Who(*b_, 4), "");
    EXPECT_EQ(Who(*b_, 3), "p2");  // merged
    auto five = b_->Identify(Probe(Sample(5, 9)));
    ASSERT_TRUE(five.ok());
    EXPECT_EQ(five->candidates.front().display_name, "Person Five");
    EXPECT_TRUE(b_->CheckConsistency().ok()) << b_->CheckConsistency().ToString();
    EXPECT_EQ(b_->applied_change(), *b_->last_change());

    // A's own changes are in its memory already: its Refresh applies none of them.
    EXPECT_EQ(*a_->Refresh(), 0);
    EXPECT_EQ(a_->applied_change(), *a_->last_change());
    EXPECT_TRUE(a_->CheckConsistency().ok());
    // And B's enrollments reach A.
    ASSERT_TRUE(Enroll(*b_, 7).ok());
    EXPECT_EQ(*a_->Refresh(), 1);
    EXPECT_EQ(Who(*a_, 7), "p7");
    EXPECT_TRUE(a_->CheckConsistency().ok());
}

TEST_P(FollowContract, SettingsAndThresholdReachTheOtherGallery) {
    ASSERT_TRUE(Enroll(*a_, 1).ok());
    ASSERT_TRUE(b_->Refresh().ok());
    EXPECT_EQ(Who(*b_, 1), "p1");
    GallerySettings s = a_->settings();
    s.threshold = 0.99f;
    s.top_k = 3;
    ASSERT_TRUE(a_->UpdateSettings(s).ok());
    EXPECT_EQ(*b_->Refresh(), 1);
    EXPECT_FLOAT_EQ(b_->settings().threshold, 0.99f);
    EXPECT_EQ(b_->settings().top_k, 3);
    EXPECT_EQ(Who(*b_, 1), "");  // below the new threshold
    s.index = "hnsw";
    ASSERT_TRUE(a_->UpdateSettings(s).ok());
    EXPECT_EQ(*b_->Refresh(), 1);
    EXPECT_EQ(b_->Stats()->index_kind, "hnsw");
    EXPECT_TRUE(b_->CheckConsistency().ok());
}

TEST_P(FollowContract, FollowingSeesEnrollmentAndDeletionWithinBoundedTime) {
    ASSERT_TRUE(Enroll(*a_, 1).ok());
    ASSERT_TRUE(b_->StartFollowing(std::chrono::milliseconds(50)).ok());
    EXPECT_EQ(b_->StartFollowing().code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE(Eventually([&] { return Who(*b_, 1) == "p1"; }));
    ASSERT_TRUE(Enroll(*a_, 2).ok());
    EXPECT_TRUE(Eventually([&] { return Who(*b_, 2) == "p2"; }));
    ASSERT_TRUE(a_->DeleteSubject("p1").ok());
    EXPECT_TRUE(Eventually([&] { return Who(*b_, 1).empty(); }));
    // Identification keeps running while the follower applies changes.
    std::thread writer([&] {
        for (std::uint32_t p = 10; p < 20; ++p) EXPECT_TRUE(Enroll(*a_, p).ok());
    });
    for (int i = 0; i < 200; ++i) EXPECT_TRUE(b_->Identify(Probe(Sample(2, 9))).ok());
    writer.join();
    EXPECT_TRUE(Eventually([&] { return Who(*b_, 19) == "p19"; }));
    b_->StopFollowing();
    b_->StopFollowing();  // idempotent
    EXPECT_TRUE(b_->CheckConsistency().ok());
}

TEST_P(FollowContract, APartialReplicaHoldsAndFollowsOnlyItsSubjects) {
    // One shard of the sharded gallery: subjects whose number is even ("p2", "p4", ...).
    auto even = [](std::string_view id) { return !id.empty() && (id.back() - '0') % 2 == 0; };
    ASSERT_TRUE(Enroll(*a_, 1).ok());
    ASSERT_TRUE(Enroll(*a_, 2).ok());
    auto c = Gallery::Open({.location = location_, .keys = TestKeys(), .holds = even});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    Gallery& replica = **c;
    EXPECT_EQ(replica.templates_in_memory(), 2);
    EXPECT_EQ(Who(replica, 2), "p2");
    EXPECT_NE(Who(replica, 1), "p1");
    EXPECT_EQ(Enroll(replica, 4).code(), StatusCode::kFailedPrecondition);  // a read replica
    ASSERT_TRUE(replica.StartFollowing(std::chrono::milliseconds(50)).ok());
    ASSERT_TRUE(Enroll(*a_, 4).ok());
    ASSERT_TRUE(Enroll(*a_, 3).ok());
    EXPECT_TRUE(Eventually([&] { return Who(replica, 4) == "p4"; }));
    EXPECT_TRUE(Eventually([&] { return replica.applied_change() == *a_->last_change(); }));
    EXPECT_EQ(replica.templates_in_memory(), 4);  // p3's were not loaded
    // A merge across shards brings the faces in; a deletion takes them out.
    ASSERT_TRUE(a_->MergeSubjects("p3", "p2").ok());
    EXPECT_TRUE(Eventually([&] { return replica.templates_in_memory() == 6; }));
    ASSERT_TRUE(a_->DeleteSubject("p2").ok());
    EXPECT_TRUE(Eventually([&] { return replica.templates_in_memory() == 2; }));
    replica.StopFollowing();
    EXPECT_TRUE(replica.CheckConsistency().ok());
    EXPECT_EQ(Who(replica, 3), "");
}

TEST_P(FollowContract, EveryMutationKindWritesOneChangeAndFailuresWriteNone) {
    GallerySettings s = a_->settings();
    s.keep_crops = true;
    ASSERT_TRUE(a_->UpdateSettings(s).ok());
    const std::int64_t start = *a_->last_change();
    ASSERT_TRUE(Enroll(*a_, 1, 2, FollowCrop).ok());
    ASSERT_TRUE(Enroll(*a_, 2, 2, FollowCrop).ok());
    const std::int64_t after_enroll = *a_->last_change();
    ASSERT_TRUE(a_->RenameSubject("p1", "One").ok());
    ASSERT_TRUE(a_->UpdateMetadata("p1", R"({"team":"a"})").ok());
    ASSERT_TRUE(a_->RemoveFace(a_->ListFaces("p2")->front().face_id).ok());
    ASSERT_TRUE(Enroll(*a_, 3, 1, FollowCrop).ok());
    ASSERT_TRUE(a_->MergeSubjects("p3", "p2").ok());
    auto embed = [](std::span<const std::uint8_t> crop) -> Result<std::vector<float>> {
        std::uint32_t person, shot;
        std::memcpy(&person, crop.data(), 4);
        std::memcpy(&shot, crop.data() + 4, 4);
        return Sample(person, shot, 0.5f, 32);
    };
    ASSERT_TRUE(a_->Reembed("model-b@1", embed, 0.5f).ok());
    auto rotated =
        TestKeys("aa0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    rotated->AddOld(*ParseKey(kTestKeyHex));
    ASSERT_TRUE(a_->RotateKey(rotated).ok());
    nlohmann::json doc = {
        {"format", "facegate-gallery"},
        {"version", 1},
        {"model_id", "model-b@1"},
        {"subjects",
         {{{"id", "imported"}, {"faces", {{{"embedding", Sample(50, 0, 0.5f, 32)}}}}}}}};
    auto imported = a_->Import(doc, false);
    ASSERT_TRUE(imported.ok()) << imported.status().ToString();
    ASSERT_TRUE(a_->DeleteSubject("p1").ok());

    // Failed (rolled back) mutations leave no change row.
    const std::int64_t before_failures = *a_->last_change();
    EXPECT_FALSE(a_->RenameSubject("nobody", "x").ok());
    EXPECT_FALSE(a_->UpdateMetadata("nobody", "{}").ok());
    EXPECT_FALSE(a_->MergeSubjects("nobody", "p2").ok());
    EXPECT_FALSE(a_->DeleteSubject("nobody").ok());
    EXPECT_FALSE(a_->RemoveFace(999999).ok());
    EXPECT_FALSE(a_->Enroll("ghost", {.model_id = "model-b@1", .create_subject = false},
                            std::vector<NewFace>{{Sample(60, 0, 0.5f, 32)}})
                     .ok());
    EXPECT_EQ(*a_->last_change(), before_failures);

    const std::vector<std::string> kinds = KindsSince(start);
    const std::set<std::string> seen(kinds.begin(), kinds.end());
    for (const char* k : {"enroll", "remove_face", "delete_subject", "rename", "metadata",
                          "merge", "settings", "reembed", "rotate_key", "import"}) {
        EXPECT_TRUE(seen.count(k)) << "no change row of kind " << k;
    }
    // The two enrollments: one row each, with their subject and face ids, seqs increasing.
    auto rows = a_->ChangesSince(start, 10000);
    ASSERT_TRUE(rows.ok());
    std::vector<Change> enrolls;
    for (const Change& c : *rows) {
        if (c.seq <= after_enroll && c.kind == "enroll") enrolls.push_back(c);
    }
    ASSERT_EQ(enrolls.size(), 2u);
    EXPECT_EQ(enrolls[0].subject_id, "p1");
    EXPECT_EQ(enrolls[0].face_ids.size(), 2u);
    EXPECT_LT(enrolls[0].seq, enrolls[1].seq);
    EXPECT_GT(enrolls[0].time, 0);
    for (size_t i = 1; i < rows->size(); ++i) EXPECT_LT((*rows)[i - 1].seq, (*rows)[i].seq);
    EXPECT_EQ(a_->ChangesSince(0, 0).status().code(), StatusCode::kInvalidArgument);

    // A gallery opened after all of it starts at the newest change.
    b_ = OpenGallery(rotated);  // opened after everything: already up to date
    EXPECT_EQ(*b_->Refresh(), 0);
    EXPECT_EQ(b_->model_id(), "model-b@1");
    EXPECT_TRUE(b_->CheckConsistency().ok());
}

TEST_P(FollowContract, ReembedByAnotherProcessSwitchesTheFollowerToTheNewModel) {
    GallerySettings s = a_->settings();
    s.keep_crops = true;
    ASSERT_TRUE(a_->UpdateSettings(s).ok());
    for (std::uint32_t p = 0; p < 5; ++p) ASSERT_TRUE(Enroll(*a_, p, 2, FollowCrop).ok());
    ASSERT_TRUE(b_->Refresh().ok());
    EXPECT_EQ(Who(*b_, 3), "p3");
    auto embed = [](std::span<const std::uint8_t> crop) -> Result<std::vector<float>> {
        std::uint32_t person, shot;
        std::memcpy(&person, crop.data(), 4);
        std::memcpy(&shot, crop.data() + 4, 4);
        return Sample(person, shot, 0.5f, 32);
    };
    ASSERT_TRUE(a_->Reembed("model-b@1", embed, 0.45f).ok());
    auto n = b_->Refresh();
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(b_->model_id(), "model-b@1");
    EXPECT_EQ(b_->dim(), 32);
    EXPECT_FLOAT_EQ(b_->settings().threshold, 0.45f);
    EXPECT_EQ(b_->Identify(Probe(Sample(3, 9, 0.5f, 32), "model-b@1"))->subject_id, "p3");
    EXPECT_TRUE(b_->CheckConsistency().ok());
}

}  // namespace fg::gallery::testing
