// SPDX-License-Identifier: Apache-2.0
// Integrity of a gallery against someone who can write its database (docs/gallery.md, "Threat
// model"): swapped or moved templates and changed settings are refused as DataLoss; a schema-3
// gallery (model-only binding, settings in clear) is migrated on open; key rotation survives
// kill -9 between batches; files are private whatever the umask; the key ring is swapped
// safely while other threads read.
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "fg/gallery/gallery.h"
#include "fg/testing/testing.h"
#include "test_util.h"

namespace fg::gallery {
namespace {

using ::fg::gallery::testing::kModel;
using ::fg::gallery::testing::Probe;
using ::fg::gallery::testing::Sample;

constexpr char kOtherKeyHex[] = "aa0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// Runs SQL on the gallery file directly, as a local user or a database admin could.
void Sql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in " << sql;
    sqlite3_free(err);
    sqlite3_close(db);
}

class IntegrityTest : public ::testing::Test {
  protected:
    Result<std::unique_ptr<Gallery>> TryOpen(std::shared_ptr<const KeyRing> keys = nullptr,
                                             bool snapshot = false) {
        GalleryOptions o{.location = path_, .keys = keys ? keys : keys_};
        o.use_snapshot = snapshot;
        o.snapshot_min_size = 1;
        o.rewrite_batch = 3;
        return Gallery::Open(o);
    }
    std::unique_ptr<Gallery> Open(std::shared_ptr<const KeyRing> keys = nullptr,
                                  bool snapshot = false) {
        auto g = TryOpen(std::move(keys), snapshot);
        EXPECT_TRUE(g.ok()) << g.status().ToString();
        return g.ok() ? std::move(*g) : nullptr;
    }
    void EnrollPeople(Gallery& g, int n, int shots = 2) {
        for (int p = 0; p < n; ++p) {
            std::vector<NewFace> faces;
            for (int s = 0; s < shots; ++s) {
                NewFace f{Sample(std::uint32_t(p), std::uint32_t(s)), 0.9f, "t"};
                f.crop = {std::uint8_t(p), std::uint8_t(s), 1, 2, 3};
                faces.push_back(std::move(f));
            }
            auto r = g.Enroll("p" + std::to_string(p), {.model_id = kModel}, faces);
            ASSERT_TRUE(r.ok()) << r.status().ToString();
            ASSERT_TRUE(r->rejected.empty());
        }
    }
    void ExpectAllKnown(Gallery& g, int n) {
        for (int p = 0; p < n; ++p) {
            auto id = g.Identify(Probe(Sample(std::uint32_t(p), 7)));
            ASSERT_TRUE(id.ok()) << id.status().ToString();
            EXPECT_TRUE(id->known) << p << " " << id->reason;
            EXPECT_EQ(id->subject_id, "p" + std::to_string(p));
        }
    }
    std::string Setting(const std::string& key) {
        auto s = OpenStore(path_);
        EXPECT_TRUE(s.ok());
        auto v = (*s)->GetSetting(key);
        return v.ok() && *v ? **v : "";
    }
    void ExpectDataLoss(bool snapshot = false) {
        auto g = TryOpen(nullptr, snapshot);
        ASSERT_FALSE(g.ok()) << "tampering went unnoticed";
        EXPECT_EQ(g.status().code(), StatusCode::kDataLoss) << g.status().ToString();
    }
    fg::testing::TmpDir tmp_;
    std::string path_ = (tmp_ / "g.db").string();
    std::shared_ptr<KeyRing> keys_ = testing::TestKeys();
};

TEST_F(IntegrityTest, SwappedTemplatesAreRefused) {
    {
        auto g = Open();
        EnrollPeople(*g, 3, 1);
    }
    ASSERT_NO_FATAL_FAILURE(ExpectAllKnown(*Open(), 3));
    // p0's and p1's sealed templates swapped: p0 would be recognised as p1.
    Sql(path_,
        "UPDATE faces SET sealed = CASE subject_id WHEN 'p0' THEN"
        " (SELECT sealed FROM faces WHERE subject_id = 'p1') ELSE"
        " (SELECT sealed FROM faces WHERE subject_id = 'p0') END"
        " WHERE subject_id IN ('p0', 'p1')");
    ExpectDataLoss();
}

TEST_F(IntegrityTest, SwappedCropsAreRefused) {
    {
        auto g = Open();
        GallerySettings s = g->settings();
        s.keep_crops = true;
        ASSERT_TRUE(g->UpdateSettings(s).ok());
        std::vector<NewFace> faces;
        for (int p = 0; p < 2; ++p) {
            NewFace f{Sample(std::uint32_t(10 + p), 0), 0.9f, "t"};
            f.crop = {1, 2, std::uint8_t(p)};
            ASSERT_TRUE(g->Enroll("q" + std::to_string(p), {.model_id = kModel},
                                  std::vector<NewFace>{f})
                            .ok());
        }
    }
    Sql(path_,
        "UPDATE faces SET crop = CASE subject_id WHEN 'q0' THEN"
        " (SELECT crop FROM faces WHERE subject_id = 'q1') ELSE"
        " (SELECT crop FROM faces WHERE subject_id = 'q0') END"
        " WHERE subject_id IN ('q0', 'q1')");
    auto g = Open();
    ASSERT_TRUE(g);
    auto re = g->Reembed(
        "model-b@1", [](std::span<const std::uint8_t>) { return Result<std::vector<float>>(
                                                             Sample(1, 1)); },
        std::nullopt);
    ASSERT_FALSE(re.ok());
    EXPECT_EQ(re.status().code(), StatusCode::kDataLoss) << re.status().ToString();
}

TEST_F(IntegrityTest, TemplateMovedToAnotherSubjectIsRefusedEvenWithASnapshot) {
    {
        auto g = Open(nullptr, true);
        EnrollPeople(*g, 3);
        ASSERT_TRUE(g->SaveSnapshot().ok());
    }
    ASSERT_TRUE(Open(nullptr, true));
    Sql(path_, "UPDATE faces SET subject_id = 'p1' WHERE id = (SELECT min(id) FROM faces"
               " WHERE subject_id = 'p0')");
    // The snapshot's vectors are authentic, but it is bound to the face -> subject map, so the
    // moved row is not taken from the store unchecked.
    ExpectDataLoss(true);
    ExpectDataLoss(false);
}

TEST_F(IntegrityTest, ChangedSettingsAreRefused) {
    {
        auto g = Open();
        EnrollPeople(*g, 2);
        GallerySettings s = g->settings();
        s.threshold = 0.5f;
        ASSERT_TRUE(g->UpdateSettings(s).ok());
    }
    const std::string stored = Setting("identify");
    ASSERT_EQ(stored.rfind("fgmac1:", 0), 0u) << stored;
    // A threshold lowered in the database, in clear...
    Sql(path_, "UPDATE settings SET value = '{\"threshold\": -1.0}' WHERE key = 'identify'");
    ExpectDataLoss();
    // ... or inside the authenticated form (the MAC no longer matches).
    std::string lowered = stored;
    const size_t at = lowered.find("\"threshold\":");
    ASSERT_NE(at, std::string::npos);
    const size_t end = lowered.find_first_of(",}", at);
    lowered.replace(at + 12, end - (at + 12), "-1.0");
    Sql(path_, "UPDATE settings SET value = '" + lowered + "' WHERE key = 'identify'");
    ExpectDataLoss();
    // Restored, it opens again.
    Sql(path_, "UPDATE settings SET value = '" + stored + "' WHERE key = 'identify'");
    ASSERT_TRUE(Open());
    // Deleting the integrity marker (to pass as an old gallery) is a tampering too.
    Sql(path_, "DELETE FROM settings WHERE key = 'integrity'");
    ExpectDataLoss();
}

TEST_F(IntegrityTest, MergeReSealsForTheNewSubject) {
    {
        auto g = Open();
        EnrollPeople(*g, 4);
        ASSERT_TRUE(g->MergeSubjects("p3", "p2").ok());
        auto v = g->Verify(Probe(Sample(3, 7)), "p2");
        ASSERT_TRUE(v.ok()) << v.status().ToString();
    }
    auto g = Open();
    ASSERT_TRUE(g);
    EXPECT_EQ(g->Identify(Probe(Sample(3, 7)))->subject_id, "p2");
    ASSERT_TRUE(g->CheckConsistency().ok());
}

// A schema-3 gallery as the previous facegate wrote it: templates and crops bound to the model
// only (or a constant), settings in clear, no integrity marker.
void WriteOldGallery(const std::string& path, const KeyRing& keys, int people) {
    auto store = OpenStore(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::vector<Subject> create;
    std::vector<TemplateRecord> records;
    for (int p = 0; p < people; ++p) {
        create.push_back({"p" + std::to_string(p), "Person " + std::to_string(p)});
        for (int s = 0; s < 2; ++s) {
            TemplateRecord r;
            r.subject_id = create.back().id;
            r.model_id = kModel;
            r.dim = 64;
            r.key_id = keys.current_id();
            r.sealed = *keys.Seal(Sample(std::uint32_t(p), std::uint32_t(s)),
                                  std::string("fg-template-v1|") + kModel);
            const std::vector<std::uint8_t> crop = {std::uint8_t(p), std::uint8_t(s)};
            r.crop = *keys.SealBytes(crop, "fg-crop-v1");
            r.source = "old";
            records.push_back(std::move(r));
        }
    }
    ASSERT_TRUE((*store)->AddBulk(create, records).ok());
    ASSERT_TRUE((*store)
                    ->PutSetting("identify", GallerySettings{.threshold = 0.5f}.ToJson().dump())
                    .ok());
    ASSERT_TRUE((*store)->PutSetting("model_id", kModel).ok());
    ASSERT_TRUE((*store)->PutSetting("dim", "64").ok());
}

TEST_F(IntegrityTest, OldFormatGalleryIsMigratedOnOpen) {
    ASSERT_NO_FATAL_FAILURE(WriteOldGallery(path_, *keys_, 7));
    EXPECT_EQ(Setting("identify").rfind("fgmac1:", 0), std::string::npos);
    {
        auto g = Open();
        ASSERT_TRUE(g);
        EXPECT_FLOAT_EQ(g->settings().threshold, 0.5f);
        ExpectAllKnown(*g, 7);
    }
    EXPECT_EQ(Setting("identify").rfind("fgmac1:", 0), 0u);
    EXPECT_EQ(Setting("model_id").rfind("fgmac1:", 0), 0u);
    // Migrated rows are now bound to their subject: moving one is detected.
    auto g = Open();
    ASSERT_TRUE(g);
    ExpectAllKnown(*g, 7);
    auto crop_ok = g->Reembed(
        "model-b@1",
        [](std::span<const std::uint8_t> c) -> Result<std::vector<float>> {
            return Sample(c[0], c[1], 0.5f, 64);
        },
        std::nullopt);
    ASSERT_TRUE(crop_ok.ok()) << crop_ok.status().ToString();
    g.reset();
    Sql(path_, "UPDATE faces SET subject_id = 'p1' WHERE id = (SELECT min(id) FROM faces)");
    ExpectDataLoss();
}

TEST_F(IntegrityTest, InterruptedMigrationResumes) {
    ASSERT_NO_FATAL_FAILURE(WriteOldGallery(path_, *keys_, 7));
    // kill -9 after the first migration batch (rewrite_batch = 3), in a child process.
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        setenv("FG_GALLERY_TEST_CRASH_AFTER_BATCH", "1", 1);
        auto g = TryOpen();
        _exit(g.ok() ? 0 : 3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child was meant to die in the migration, exit " << WEXITSTATUS(status);
    // Half migrated: some rows in each format, the marker "migrating".
    EXPECT_NE(Setting("integrity").find(":migrating"), std::string::npos);
    auto g = Open();
    ASSERT_TRUE(g);
    ExpectAllKnown(*g, 7);
    EXPECT_NE(Setting("integrity").find(":2"), std::string::npos);
}

TEST_F(IntegrityTest, KeyRotationKilledBetweenBatchesOpensAndResumes) {
    constexpr int kPeople = 9;
    {
        auto g = Open(nullptr, true);
        EnrollPeople(*g, kPeople);
        ASSERT_TRUE(g->SaveSnapshot().ok());
    }
    auto both = testing::TestKeys(kOtherKeyHex);
    both->AddOld(*ParseKey(testing::kTestKeyHex));
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        auto g = TryOpen();
        if (!g.ok()) _exit(3);
        setenv("FG_GALLERY_TEST_CRASH_AFTER_BATCH", "2", 1);
        auto n = (*g)->RotateKey(both);
        _exit(n.ok() ? 0 : 4);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child was meant to die mid-rotation, exit " << WEXITSTATUS(status);
    {
        // Rows under both keys now. The old key alone is refused with a clear message...
        auto old_only = TryOpen(keys_);
        ASSERT_FALSE(old_only.ok());
        EXPECT_EQ(old_only.status().code(), StatusCode::kFailedPrecondition);
        EXPECT_NE(old_only.status().message().find("rotat"), std::string::npos)
            << old_only.status().ToString();
    }
    for (bool snapshot : {true, false}) {
        // ... both keys open it (snapshot or rebuild) and every subject is still recognised.
        auto g = Open(both, snapshot);
        ASSERT_TRUE(g);
        ASSERT_NO_FATAL_FAILURE(ExpectAllKnown(*g, kPeople));
        std::set<std::string> key_ids;
        for (int p = 0; p < kPeople; ++p) {
            auto faces = g->ListFaces("p" + std::to_string(p));
            ASSERT_TRUE(faces.ok());
            for (const FaceInfo& f : *faces) key_ids.insert(f.key_id);
        }
        EXPECT_EQ(key_ids.size(), 2u) << "expected a half-done rotation";
    }
    {
        auto g = Open(both);
        auto n = g->RotateKey(both);
        ASSERT_TRUE(n.ok()) << n.status().ToString();
        EXPECT_GT(*n, 0);
        EXPECT_LT(*n, 2 * kPeople);
    }
    auto g = Open(testing::TestKeys(kOtherKeyHex));
    ASSERT_TRUE(g);
    ExpectAllKnown(*g, kPeople);
    for (int p = 0; p < kPeople; ++p) {
        auto v = g->Verify(Probe(Sample(std::uint32_t(p), 7)), "p" + std::to_string(p));
        ASSERT_TRUE(v.ok()) << v.status().ToString();
    }
    ASSERT_TRUE(g->Export().ok());
}

TEST_F(IntegrityTest, FilesArePrivateWhateverTheUmask) {
    const mode_t old = ::umask(022);
    {
        auto g = Open(nullptr, true);
        EnrollPeople(*g, 2);
        ASSERT_TRUE(g->SaveSnapshot().ok());
        for (const char* suffix : {"", "-wal", "-shm", ".index"}) {
            struct stat st {};
            const std::string p = path_ + suffix;
            ASSERT_EQ(::stat(p.c_str(), &st), 0) << p;
            EXPECT_EQ(st.st_mode & 077, 0u) << p << " mode " << std::oct << st.st_mode;
        }
    }
    auto key = CreateKeyFile(tmp_ / "sub" / "new.key");
    ::umask(old);
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    struct stat st {};
    ASSERT_EQ(::stat((tmp_ / "sub" / "new.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(IntegrityTest, MissingGalleryIsNotCreatedWhenAskedNot) {
    GalleryOptions o{.location = path_, .keys = keys_};
    o.create_if_missing = false;
    auto g = Gallery::Open(o);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.status().code(), StatusCode::kNotFound);
    EXPECT_NE(g.status().message().find("--create"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(path_));
}

// Rotation swaps the key ring while identify, verify and export run on other threads (run
// under ASan here, TSan in CI): every read must see one whole ring, and both rings hold both
// keys, so every call succeeds whichever it sees.
TEST_F(IntegrityTest, RotationRacesReaders) {
    constexpr int kPeople = 6;
    auto a = testing::TestKeys();
    a->AddOld(*ParseKey(kOtherKeyHex));
    auto g = Open(a);
    EnrollPeople(*g, kPeople);
    auto b = testing::TestKeys(kOtherKeyHex);
    b->AddOld(*ParseKey(testing::kTestKeyHex));
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0}, reads{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t) {
        readers.emplace_back([&, t] {
            for (int i = 0; !stop.load(); ++i) {
                const std::uint32_t p = std::uint32_t(i % kPeople);
                Status s;
                if (t == 0) {
                    s = g->Identify(Probe(Sample(p, 7))).status();
                } else if (t == 1) {
                    s = g->Verify(Probe(Sample(p, 7)), "p" + std::to_string(p)).status();
                } else {
                    s = g->Export().status();
                }
                if (!s.ok()) {
                    std::fprintf(stderr, "reader %d: %s\n", t, s.ToString().c_str());
                    ++failures;
                }
                ++reads;
            }
        });
    }
    for (int r = 0; r < 20; ++r) {
        auto n = g->RotateKey(r % 2 == 0 ? b : a);
        ASSERT_TRUE(n.ok()) << n.status().ToString();
    }
    stop = true;
    for (std::thread& t : readers) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GT(reads.load(), 0);
    ExpectAllKnown(*g, kPeople);
}


nlohmann::json SampleCurve() {
    nlohmann::json curve = nlohmann::json::array();
    for (int i = 20; i <= 80; i += 10)
        curve.push_back({{"threshold", i / 100.0}, {"tar", 1.0 - i / 200.0}, {"far", (80 - i) / 600.0}});
    return {{"curve", curve}, {"source", "faces"}, {"created", "2026-12-05T04:00:00Z"}};
}

TEST_F(IntegrityTest, CalibrationRoundTripsIsValidatedAndAuthenticated) {
    {
        auto g = Open();
        auto none = g->Calibration();
        ASSERT_TRUE(none.ok()) << none.status().ToString();
        EXPECT_FALSE(none->has_value());
        nlohmann::json bad = SampleCurve();
        bad["curve"][0]["far"] = 2.0;
        EXPECT_EQ(g->SaveCalibration(bad).code(), StatusCode::kInvalidArgument);
        EXPECT_EQ(g->SaveCalibration({{"curve", nlohmann::json::array()}}).code(),
                  StatusCode::kInvalidArgument);
        EXPECT_EQ(g->SaveCalibration(nlohmann::json::array()).code(), StatusCode::kInvalidArgument);
        ASSERT_TRUE(g->SaveCalibration(SampleCurve()).ok());
        auto c = g->Calibration();
        ASSERT_TRUE(c.ok() && c->has_value());
        EXPECT_EQ(**c, SampleCurve());
    }
    const std::string stored = Setting("calibration");
    ASSERT_EQ(stored.rfind("fgmac1:", 0), 0u) << stored;
    // A curve edited in the database (a higher TAR) is DataLoss, at open or when read.
    std::string edited = stored;
    const size_t at = edited.find("\"tar\":");
    ASSERT_NE(at, std::string::npos);
    edited.replace(at + 6, 1, "1");
    Sql(path_, "UPDATE settings SET value = '" + edited + "' WHERE key = 'calibration'");
    {
        auto g = TryOpen();
        if (g.ok()) {
            auto c = (*g)->Calibration();
            ASSERT_FALSE(c.ok()) << "tampering went unnoticed";
            EXPECT_EQ(c.status().code(), StatusCode::kDataLoss) << c.status().ToString();
        } else {
            EXPECT_EQ(g.status().code(), StatusCode::kDataLoss) << g.status().ToString();
        }
    }
    Sql(path_, "UPDATE settings SET value = '" + stored + "' WHERE key = 'calibration'");
    // Rotating the key re-signs it: the new key alone still reads it.
    auto both = testing::TestKeys(kOtherKeyHex);
    both->AddOld(*ParseKey(testing::kTestKeyHex));
    {
        auto g = Open(both);
        ASSERT_TRUE(g);
        auto n = g->RotateKey(both);
        ASSERT_TRUE(n.ok()) << n.status().ToString();
    }
    auto g = Open(testing::TestKeys(kOtherKeyHex));
    ASSERT_TRUE(g);
    auto c = g->Calibration();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE(c->has_value());
    EXPECT_EQ(**c, SampleCurve());
}

}  // namespace
}  // namespace fg::gallery
