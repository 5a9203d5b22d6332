// SPDX-License-Identifier: Apache-2.0
#include "fg/gallery/gallery.h"

#include <sqlite3.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "fg/testing/testing.h"
#include "test_util.h"

namespace fg::gallery {
namespace {

using ::fg::gallery::testing::kModel;
using ::fg::gallery::testing::Probe;
using ::fg::gallery::testing::Sample;

class GalleryTest : public ::testing::Test {
  protected:
    std::unique_ptr<Gallery> Open(std::shared_ptr<const KeyRing> keys = nullptr,
                                  std::int64_t snap_min = 1) {
        GalleryOptions o{.location = path_, .keys = keys ? keys : keys_};
        o.snapshot_min_size = snap_min;
        auto g = Gallery::Open(o);
        EXPECT_TRUE(g.ok()) << g.status().ToString();
        return g.ok() ? std::move(*g) : nullptr;
    }
    // People 0..n-1, `shots` templates each.
    void EnrollPeople(Gallery& g, int n, int shots = 2) {
        for (int p = 0; p < n; ++p) {
            std::vector<NewFace> faces;
            for (int s = 0; s < shots; ++s)
                faces.push_back({Sample(std::uint32_t(p), std::uint32_t(s)), 0.9f, "t"});
            auto r = g.Enroll("p" + std::to_string(p), {.model_id = kModel}, faces);
            ASSERT_TRUE(r.ok()) << r.status().ToString();
            ASSERT_TRUE(r->rejected.empty()) << r->rejected[0].detail;
        }
    }
    // The gallery's store opened on its own, as another process would see it (the gallery
    // does not expose the one it writes through).
    std::unique_ptr<Store> RawStore() {
        auto s = OpenStore(path_);
        EXPECT_TRUE(s.ok()) << s.status().ToString();
        return s.ok() ? std::move(*s) : nullptr;
    }
    fg::testing::TmpDir tmp_;
    std::string path_ = (tmp_ / "g.db").string();
    std::shared_ptr<KeyRing> keys_ = testing::TestKeys();
};

TEST_F(GalleryTest, IdentifiesEnrolledAndRejectsStrangers) {
    auto g = Open();
    EnrollPeople(*g, 30);
    for (int p = 0; p < 30; ++p) {
        auto id = g->Identify(Probe(Sample(std::uint32_t(p), 7)));
        ASSERT_TRUE(id.ok()) << id.status().ToString();
        EXPECT_TRUE(id->known) << p << " " << id->reason;
        EXPECT_EQ(id->subject_id, "p" + std::to_string(p));
        EXPECT_EQ(int(id->candidates.size()), 5);
        EXPECT_GE(id->candidates[0].score, id->candidates[1].score);
    }
    for (int p = 500; p < 530; ++p) {
        auto id = g->Identify(Probe(Sample(std::uint32_t(p), 7)));
        ASSERT_TRUE(id.ok());
        EXPECT_FALSE(id->known) << id->candidates[0].score;
        EXPECT_NE(id->reason, "match");
    }
}

TEST_F(GalleryTest, MarginMakesLookalikesUnknown) {
    auto g = Open();
    // Two enrolled "twins" with nearly the same embedding: a probe matches both above threshold.
    auto twin = Sample(1, 0, 0.05f);
    ASSERT_TRUE(
        g->Enroll("a", {.model_id = kModel}, std::vector<NewFace>{{Sample(1, 1, 0.05f)}}).ok());
    ASSERT_TRUE(g->Enroll("b", {.model_id = kModel, .force = true},
                          std::vector<NewFace>{{Sample(1, 2, 0.05f)}})
                    .ok());
    auto id = g->Identify(Probe(twin));
    ASSERT_TRUE(id.ok());
    EXPECT_GT(id->candidates[1].score, 0.9f);
    EXPECT_FALSE(id->known);
    EXPECT_EQ(id->reason, "ambiguous");
    GallerySettings s = g->settings();
    s.margin = 0.f;
    ASSERT_TRUE(g->UpdateSettings(s).ok());
    EXPECT_TRUE(g->Identify(Probe(twin))->known);
    // Stored: a fresh open sees the margin.
    g.reset();
    EXPECT_EQ(Open()->settings().margin, 0.f);
}

TEST_F(GalleryTest, DuplicateOfOtherSubjectIsRefusedUnlessForced) {
    auto g = Open();
    EnrollPeople(*g, 3);
    std::vector<NewFace> faces = {{Sample(1, 5, 0.2f)}, {Sample(77, 0)}};
    auto r = g->Enroll("new", {.model_id = kModel}, faces);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->rejected.size(), 1u);
    EXPECT_EQ(r->rejected[0].reason, "duplicate_of_other_subject");
    EXPECT_EQ(r->rejected[0].face, 0u);
    EXPECT_EQ(r->face_ids.size(), 1u);
    // Same person again is not a duplicate of *another* subject.
    EXPECT_TRUE(g->Enroll("p1", {.model_id = kModel}, std::vector<NewFace>{{Sample(1, 6, 0.2f)}})
                    ->rejected.empty());
    auto forced = g->Enroll("new", {.model_id = kModel, .force = true},
                            std::vector<NewFace>{{Sample(1, 5, 0.2f)}});
    EXPECT_TRUE(forced->rejected.empty());
}

TEST_F(GalleryTest, BadInputIsRejectedClearly) {
    auto g = Open();
    EnrollPeople(*g, 2);
    auto bad = [&](std::vector<float> v, const std::string& model = kModel) {
        return g->Enroll("x", {.model_id = model}, std::vector<NewFace>{{std::move(v)}}).status();
    };
    EXPECT_EQ(bad(std::vector<float>(10, 0.1f)).code(), StatusCode::kInvalidArgument);
    auto nan = Sample(3, 0);
    nan[5] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_EQ(bad(nan).code(), StatusCode::kInvalidArgument);
    auto inf = Sample(3, 0);
    inf[5] = std::numeric_limits<float>::infinity();
    EXPECT_EQ(bad(inf).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(bad(std::vector<float>(64, 0.f)).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(bad(Sample(3, 0), "other-model").code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(
        g->Enroll("", {.model_id = kModel}, std::vector<NewFace>{{Sample(3, 0)}}).status().code(),
        StatusCode::kInvalidArgument);
    EXPECT_EQ(g->Enroll("x", {.model_id = kModel, .create_subject = false},
                        std::vector<NewFace>{{Sample(3, 0)}})
                  .status()
                  .code(),
              StatusCode::kNotFound);
    auto other = g->Identify(Probe(Sample(1, 1), "other-model"));
    EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(other.status().message().find("other-model"), std::string::npos);
    EXPECT_EQ(g->Identify(Probe(std::vector<float>(12, 0.3f))).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(g->Verify(Probe(Sample(1, 1)), "nobody").status().code(), StatusCode::kNotFound);
    EXPECT_EQ(g->DeleteSubject("nobody").code(), StatusCode::kNotFound);
    EXPECT_EQ(g->UpdateMetadata("p1", "[1,2]").code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(g->CreateSubject({"p1", ""}).code(), StatusCode::kAlreadyExists);
    EXPECT_EQ(g->MergeSubjects("nobody", "p1").code(), StatusCode::kNotFound);
    EXPECT_EQ(g->MergeSubjects("p1", "nobody").code(), StatusCode::kNotFound);
    EXPECT_EQ(g->MergeSubjects("p1", "p1").code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(g->RenameSubject("nobody", "x").code(), StatusCode::kNotFound);
    EXPECT_EQ(g->RemoveFace(987654).code(), StatusCode::kNotFound);
    EXPECT_EQ(g->Stats()->templates, 4);  // nothing half-written
    EXPECT_TRUE(g->CheckConsistency().ok());
}

TEST_F(GalleryTest, NewGalleryTakesThePacksThresholdOnce) {
    GalleryOptions o{.location = path_, .keys = keys_};
    o.default_threshold = 0.45f;
    auto g = Gallery::Open(o);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_FLOAT_EQ((*g)->settings().threshold, 0.45f);
    g->reset();
    // Stored at creation: another pack's default no longer changes it.
    o.default_threshold = 0.30f;
    auto again = Gallery::Open(o);
    EXPECT_FLOAT_EQ((*again)->settings().threshold, 0.45f);
    fg::testing::TmpDir other;
    auto plain = Gallery::Open({.location = (other / "p.db").string(), .keys = keys_});
    EXPECT_FLOAT_EQ((*plain)->settings().threshold, 0.40f);
}

TEST_F(GalleryTest, EnrollBulkIsAllOrNothingAndIndexed) {
    auto g = Open();
    std::vector<BulkFace> faces;
    for (int p = 0; p < 1000; ++p) {
        for (int s = 0; s < 3; ++s) {
            faces.push_back({"b" + std::to_string(p),
                             {Sample(std::uint32_t(p), std::uint32_t(s)), -1.f, "bulk", {}},
                             ""});
        }
    }
    auto bad = faces;
    bad[1500].face.embedding[3] = std::numeric_limits<float>::quiet_NaN();
    auto r = g->EnrollBulk(bad, {.model_id = kModel, .force = true});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("face 1500"), std::string::npos) << r.status().message();
    EXPECT_EQ(g->Stats()->templates, 0);
    EXPECT_EQ(g->EnrollBulk(faces, {.model_id = kModel, .create_subject = false, .force = true})
                  .status()
                  .code(),
              StatusCode::kNotFound);
    EXPECT_EQ(g->Stats()->subjects, 0);
    r = g->EnrollBulk(faces, {.model_id = kModel, .force = true});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->face_ids.size(), 3000u);
    EXPECT_EQ(g->Stats()->subjects, 1000);
    EXPECT_EQ(g->GetSubject("b17")->face_count, 3);
    EXPECT_EQ(g->Identify(Probe(Sample(417, 9)))->subject_id, "b417");
    EXPECT_TRUE(g->CheckConsistency().ok());
    // The duplicate check applies per face of a bulk call too.
    std::vector<BulkFace> dup = {{"new", {Sample(5, 11, 0.2f), -1.f, "bulk", {}}, ""},
                                 {"new2", {Sample(2000, 0), -1.f, "bulk", {}}, ""}};
    r = g->EnrollBulk(dup, {.model_id = kModel});
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->rejected.size(), 1u);
    EXPECT_EQ(r->rejected[0].face, 0u);
    EXPECT_FALSE(g->GetSubject("new").ok());
    EXPECT_TRUE(g->GetSubject("new2").ok());
}

// A stand-in for a second embedder: reads the identity written into the fake crop and gives
// a 32-d vector of another "model".
Result<std::vector<float>> FakeEmbedCrop(std::span<const std::uint8_t> crop) {
    if (crop.size() != 8) return InvalidArgument("not a fake crop");
    std::uint32_t person, shot;
    std::memcpy(&person, crop.data(), 4);
    std::memcpy(&shot, crop.data() + 4, 4);
    return Sample(person, shot, 0.5f, 32);
}

std::vector<std::uint8_t> FakeCrop(std::uint32_t person, std::uint32_t shot) {
    std::vector<std::uint8_t> c(8);
    std::memcpy(c.data(), &person, 4);
    std::memcpy(c.data() + 4, &shot, 4);
    return c;
}

TEST_F(GalleryTest, CropsAreKeptOnlyOnOptInAndReembedSwitchesTheModel) {
    auto g = Open();
    EXPECT_FALSE(g->settings().keep_crops);
    ASSERT_TRUE(g->Enroll("p0", {.model_id = kModel},
                          std::vector<NewFace>{{Sample(0, 0), 0.9f, "t", FakeCrop(0, 0)}})
                    .ok());
    EXPECT_EQ(*RawStore()->CountTemplatesWithoutCrop(), 1);  // off by default: not stored
    auto refused = g->Reembed("model-b@1", FakeEmbedCrop, 0.5f);
    EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(refused.status().message().find("no stored face crop"), std::string::npos);
    EXPECT_EQ(g->model_id(), kModel);
    ASSERT_TRUE(g->DeleteSubject("p0").ok());

    GallerySettings s = g->settings();
    s.keep_crops = true;
    ASSERT_TRUE(g->UpdateSettings(s).ok());
    for (std::uint32_t p = 0; p < 20; ++p) {
        std::vector<NewFace> faces;
        for (std::uint32_t k = 0; k < 2; ++k)
            faces.push_back({Sample(p, k), 0.9f, "t", FakeCrop(p, k)});
        ASSERT_TRUE(g->Enroll("p" + std::to_string(p), {.model_id = kModel}, faces).ok());
    }
    EXPECT_EQ(*RawStore()->CountTemplatesWithoutCrop(), 0);
    // Crops are sealed: the raw crop bytes never reach the file.
    ASSERT_TRUE(g->Close().ok());
    for (const std::string& f : {path_, path_ + "-wal"}) {
        std::ifstream in(f, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto crop = FakeCrop(13, 1);
        EXPECT_EQ(bytes.find(std::string(crop.begin(), crop.end())), std::string::npos) << f;
    }
    // Rotation re-encrypts crops too: re-embedding later works with only the new key.
    auto new_keys =
        testing::TestKeys("aa0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    new_keys->AddOld(*ParseKey(testing::kTestKeyHex));
    ASSERT_TRUE(g->RotateKey(new_keys).ok());
    g.reset();
    auto only_new =
        testing::TestKeys("aa0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    g = Open(only_new);
    ASSERT_TRUE(g);

    auto n = g->Reembed("model-b@1", FakeEmbedCrop, 0.5f);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, 40);
    EXPECT_EQ(g->model_id(), "model-b@1");
    EXPECT_EQ(g->dim(), 32);
    EXPECT_FLOAT_EQ(g->settings().threshold, 0.5f);
    EXPECT_TRUE(g->CheckConsistency().ok());
    // Probes of the old model are refused with a message naming both models.
    auto old = g->Identify(Probe(Sample(3, 9)));
    EXPECT_EQ(old.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(old.status().message().find("model-b@1"), std::string::npos);
    EXPECT_NE(old.status().message().find(kModel), std::string::npos);
    EXPECT_EQ(g->Identify(Probe(Sample(3, 9, 0.5f, 32), "model-b@1"))->subject_id, "p3");
    EXPECT_EQ(g->Enroll("x", {.model_id = kModel}, std::vector<NewFace>{{Sample(99, 0)}})
                  .status()
                  .code(),
              StatusCode::kFailedPrecondition);
    // Survives reopening (the old model's snapshot is gone, the store has the new templates).
    g.reset();
    g = Open(only_new);
    EXPECT_EQ(g->model_id(), "model-b@1");
    EXPECT_EQ(g->Identify(Probe(Sample(7, 9, 0.5f, 32), "model-b@1"))->subject_id, "p7");
    EXPECT_EQ(g->settings().keep_crops, true);
    // A failing embedder changes nothing.
    auto failing = [](std::span<const std::uint8_t>) -> Result<std::vector<float>> {
        return Internal("embedder broke");
    };
    EXPECT_FALSE(g->Reembed("model-c@1", failing, std::nullopt).ok());
    EXPECT_EQ(g->model_id(), "model-b@1");
    EXPECT_EQ(g->ListFaces("p1")->front().model_id, "model-b@1");
}

TEST_F(GalleryTest, VerifyDeleteMergeRemoveKeepIndexInStep) {
    auto g = Open();
    EnrollPeople(*g, 5);
    EXPECT_GT(*g->Verify(Probe(Sample(2, 9)), "p2"), 0.6f);
    EXPECT_LT(*g->Verify(Probe(Sample(2, 9)), "p3"), 0.3f);

    ASSERT_TRUE(g->DeleteSubject("p2").ok());
    auto id = g->Identify(Probe(Sample(2, 9)));
    EXPECT_FALSE(id->known);
    for (const Candidate& c : id->candidates) EXPECT_NE(c.subject_id, "p2");

    ASSERT_TRUE(g->MergeSubjects("p3", "p4").ok());
    id = g->Identify(Probe(Sample(3, 9)));
    EXPECT_EQ(id->candidates[0].subject_id, "p4");
    EXPECT_EQ(g->GetSubject("p4")->face_count, 4);

    auto templates = *g->ListFaces("p4");
    for (const auto& t : templates) ASSERT_TRUE(g->RemoveFace(t.face_id).ok());
    EXPECT_FALSE(g->Identify(Probe(Sample(3, 9)))->known);
    EXPECT_EQ(g->RemoveFace(templates[0].face_id).code(), StatusCode::kNotFound);

    auto stats = g->Stats();
    EXPECT_EQ(stats->templates, 4);  // p0, p1 left
    g.reset();
    auto again = Open();
    EXPECT_EQ(again->Stats()->templates, 4);
    EXPECT_TRUE(again->Identify(Probe(Sample(0, 9)))->known);
}

// What the store held used to be read through Gallery::store(); these views replace it.
TEST_F(GalleryTest, ReadOnlyViewsShowTheStore) {
    auto g = Open();
    EnrollPeople(*g, 3);
    auto stats = g->Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->store_kind, "sqlite");
    EXPECT_GT(stats->schema_version, 0);
    auto page = g->ListSubjects("", 2);
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->subjects.size(), 2u);
    EXPECT_EQ(page->subjects[0].id, "p0");
    EXPECT_EQ(page->subjects[1].face_count, 2);
    page = g->ListSubjects(page->next_after, 2);
    ASSERT_EQ(page->subjects.size(), 1u);
    EXPECT_EQ(page->subjects[0].id, "p2");
    auto faces = g->ListFaces("p1");
    ASSERT_TRUE(faces.ok());
    ASSERT_EQ(faces->size(), 2u);
    EXPECT_LT((*faces)[0].face_id, (*faces)[1].face_id);
    EXPECT_EQ((*faces)[0].subject_id, "p1");
    EXPECT_EQ((*faces)[0].model_id, kModel);
    EXPECT_EQ((*faces)[0].dim, 64);
    EXPECT_EQ((*faces)[0].key_id, keys_->current_id());
    EXPECT_EQ((*faces)[0].source, "t");
    EXPECT_FALSE((*faces)[0].has_crop);
    EXPECT_EQ(g->ListFaces("nobody").status().code(), StatusCode::kNotFound);
    EXPECT_EQ(g->GetSubject("nobody").status().code(), StatusCode::kNotFound);
}

// The heart of "encrypted at rest": read the raw SQLite rows as an attacker with the file would.
TEST_F(GalleryTest, CopiedDatabaseRevealsNoEmbedding) {
    auto g = Open();
    const auto v = Sample(42, 0);
    ASSERT_TRUE(g->Enroll("victim", {.model_id = kModel}, std::vector<NewFace>{{v}}).ok());
    g.reset();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT sealed FROM faces", -1, &st, nullptr), SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        ++rows;
        const auto* blob = static_cast<const std::uint8_t*>(sqlite3_column_blob(st, 0));
        const int n = sqlite3_column_bytes(st, 0);
        std::vector<std::uint8_t> raw(blob, blob + n);
        // No float of the embedding appears at any alignment, and the bytes look random.
        for (float x : v) {
            std::uint8_t pat[4];
            std::memcpy(pat, &x, 4);
            EXPECT_EQ(std::search(raw.begin(), raw.end(), pat, pat + 4), raw.end());
        }
        int small_floats = 0;
        for (int off = 12; off + 4 <= n - 16; off += 4) {
            float f;
            std::memcpy(&f, blob + off, 4);
            small_floats += std::isfinite(f) && std::fabs(f) < 1.f && std::fabs(f) > 1e-4f;
        }
        EXPECT_LT(small_floats, 20);  // a plaintext unit vector would give ~64
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    EXPECT_EQ(rows, 1);
    // And the whole file: the snapshot too.
    for (const std::string& f : {path_, path_ + ".index"}) {
        std::ifstream in(f, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::uint8_t pat[8];
        std::memcpy(pat, v.data(), 8);
        EXPECT_EQ(bytes.find(std::string(reinterpret_cast<char*>(pat), 8)), std::string::npos) << f;
    }
    // Opening with the wrong key fails clearly instead of returning garbage.
    auto wrong =
        testing::TestKeys("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    // With the (sealed) snapshot present too: it is not trusted, and the store's rows refuse.
    ASSERT_TRUE(Open()->SaveSnapshot().ok());
    auto bad_snap = Gallery::Open({.location = path_, .keys = wrong});
    ASSERT_FALSE(bad_snap.ok());
    EXPECT_EQ(bad_snap.status().code(), StatusCode::kFailedPrecondition);
    std::filesystem::remove(path_ + ".index");
    auto bad = Gallery::Open({.location = path_, .keys = wrong});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(bad.status().message().find("key"), std::string::npos);
}

TEST_F(GalleryTest, RotateKeyReencryptsEverything) {
    auto g = Open();
    EnrollPeople(*g, 4);
    auto new_keys =
        testing::TestKeys("aa0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    new_keys->AddOld(*ParseKey(testing::kTestKeyHex));
    auto n = g->RotateKey(new_keys);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, 8);
    EXPECT_TRUE(g->Identify(Probe(Sample(1, 9)))->known);
    g.reset();
    // Only the new key is needed now; the old one no longer opens anything.
    auto only_new =
        testing::TestKeys("aa0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    auto g2 = Open(only_new);
    ASSERT_TRUE(g2);
    EXPECT_TRUE(g2->Identify(Probe(Sample(1, 9)))->known);
    auto rotated = g2->ListFaces("p1");
    ASSERT_TRUE(rotated.ok());
    for (const auto& t : *rotated) EXPECT_EQ(t.key_id, only_new->current_id());
    g2.reset();
    std::filesystem::remove(path_ + ".index");
    EXPECT_FALSE(Gallery::Open({.location = path_, .keys = keys_}).ok());
}

TEST_F(GalleryTest, SnapshotIsUsedWhenFreshAndRebuiltWhenStaleOrCorrupt) {
    {
        auto g = Open();
        EnrollPeople(*g, 10);
        ASSERT_TRUE(g->Close().ok());
    }
    EXPECT_EQ(Open()->Stats()->index_source, "snapshot");
    const std::string snap = path_ + ".index";
    auto saved = std::filesystem::path(tmp_ / "saved.index");
    std::filesystem::copy_file(snap, saved);
    {
        // Change the store behind the snapshot's back (another process, or a crash before Close).
        GalleryOptions o{.location = path_, .keys = keys_, .use_snapshot = false};
        auto g = Gallery::Open(o);
        ASSERT_TRUE((*g)->DeleteSubject("p3").ok());
    }
    auto g = Open();
    EXPECT_NE(g->Stats()->index_source.find("stale"), std::string::npos)
        << g->Stats()->index_source;
    EXPECT_FALSE(g->Identify(Probe(Sample(3, 9)))->known);
    ASSERT_TRUE(g->Close().ok());
    g.reset();
    // Flip one byte in the sealed payload: the GCM tag catches it.
    {
        std::fstream f(snap, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(200);
        char c;
        f.seekg(200);
        f.get(c);
        f.seekp(200);
        f.put(char(c ^ 0x5a));
    }
    g = Open();
    EXPECT_NE(g->Stats()->index_source.find("rebuilt"), std::string::npos);
    EXPECT_TRUE(g->Identify(Probe(Sample(4, 9)))->known);
    g.reset();
    std::filesystem::resize_file(snap, 10);
    EXPECT_NE(Open()->Stats()->index_source.find("rebuilt"), std::string::npos);
}

TEST_F(GalleryTest, ExportImportRoundTrip) {
    auto g = Open();
    EnrollPeople(*g, 6);
    ASSERT_TRUE(g->UpdateMetadata("p1", R"({"badge":17})").ok());
    ASSERT_TRUE(g->CreateSubject({"empty", "No Faces"}).ok());
    auto doc = g->Export();
    ASSERT_TRUE(doc.ok());
    EXPECT_EQ((*doc)["format"], "facegate-gallery");
    EXPECT_EQ((*doc)["version"], 1);
    EXPECT_EQ((*doc)["subjects"].size(), 7u);

    fg::testing::TmpDir other;
    auto g2 = Gallery::Open({.location = (other / "b.db").string(), .keys = keys_});
    ASSERT_TRUE(g2.ok());
    auto n = (*g2)->Import(*doc, false);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, 12);
    EXPECT_EQ((*g2)->GetSubject("p1")->metadata, R"({"badge":17})");
    EXPECT_TRUE((*g2)->GetSubject("empty").ok());
    EXPECT_EQ((*g2)->Identify(Probe(Sample(5, 9)))->subject_id, "p5");
    EXPECT_EQ((*g2)->Import(*doc, false).status().code(), StatusCode::kAlreadyExists);
    EXPECT_EQ(*(*g2)->Import(*doc, true), 0);
    nlohmann::json wrong = *doc;
    wrong["version"] = 99;
    EXPECT_EQ((*g2)->Import(wrong, true).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ((*g2)->Import(nlohmann::json::object(), true).status().code(),
              StatusCode::kInvalidArgument);
}

TEST_F(GalleryTest, AutoIndexSwitchesToScanPastTheThreshold) {
    GalleryOptions o{.location = path_, .keys = keys_};
    o.index.auto_scan_above = 50;
    auto g = Gallery::Open(o);
    ASSERT_TRUE(g.ok());
    EnrollPeople(**g, 20);
    EXPECT_EQ((*g)->Stats()->index_kind, "flat");
    EnrollPeople(**g, 40);  // p0..p19 again, plus more
    EXPECT_EQ((*g)->Stats()->index_kind, "scan");
    EXPECT_EQ((*g)->Identify(Probe(Sample(33, 9)))->subject_id, "p33");
    // The switched index is what the snapshot holds: a reopened gallery loads it back.
    ASSERT_TRUE((*g)->Close().ok());
    g->reset();
    auto again = Gallery::Open(o);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ((*again)->Stats()->index_kind, "scan");
    EXPECT_EQ((*again)->Identify(Probe(Sample(33, 9)))->subject_id, "p33");
}

}  // namespace
}  // namespace fg::gallery
