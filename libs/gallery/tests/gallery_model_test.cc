// SPDX-License-Identifier: Apache-2.0
// End to end on real photos (dlib's "johns"): enroll four people through the quality gate,
// identify their held-out photos, and check the fifth, never enrolled, comes out unknown.
#include <algorithm>
#include <filesystem>

#include "fg/base/paths.h"
#include "fg/gallery/gallery.h"
#include "fg/image/image_io.h"
#include "fg/testing/testing.h"
#include "fg/vision/enroll_gate.h"
#include "test_util.h"

namespace fg::gallery {
namespace {

std::vector<std::filesystem::path> Photos(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> p;
    for (const auto& f : std::filesystem::directory_iterator(dir)) p.push_back(f.path());
    std::sort(p.begin(), p.end());
    return p;
}

TEST(GalleryModel, JohnsEnrollIdentifyAndUnknown) {
    const auto root = DlibExamplesDir() / "johns";
    FG_REQUIRE_PATH(root);
    auto pack = infer::ResolvePack("default");
    ASSERT_TRUE(pack.ok());
    for (const auto& m : pack->models) {
        if (m.role == infer::ModelRole::kDetector || m.role == infer::ModelRole::kEmbedder)
            FG_REQUIRE_PATH(m.path);
    }
    auto engine = vision::Engine::Create({.pack = "default"});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    auto worker = (*engine)->CreateWorker();
    ASSERT_TRUE(worker.ok());
    const std::string model = (*engine)->embedder_info()->model_id;

    fg::testing::TmpDir tmp;
    auto g = Gallery::Open({.location = (tmp / "johns.db").string(), .keys = testing::TestKeys()});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    GallerySettings s = (*g)->settings();
    s.threshold = vision::DefaultVerifyThreshold((*engine)->pack());
    ASSERT_TRUE((*g)->UpdateSettings(s).ok());

    auto analyse = [&](const std::filesystem::path& p) {
        auto img = LoadImage(p);
        EXPECT_TRUE(img.ok()) << p;
        auto faces =
            (*worker)->Analyze(*img, {.embed = true, .keep_aligned = false, .max_faces = 1});
        EXPECT_TRUE(faces.ok()) << faces.status().ToString();
        return *faces;
    };
    const std::string unknown = "John_Simm";
    int enrolled = 0, probes = 0, correct = 0, strangers = 0, strangers_unknown = 0;
    for (const auto& d : std::filesystem::directory_iterator(root)) {
        const std::string person = d.path().filename().string();
        const auto photos = Photos(d.path());
        for (size_t i = 0; i < photos.size(); ++i) {
            auto faces = analyse(photos[i]);
            const bool enroll = person != unknown && i < 3;
            if (enroll) {
                vision::GateDecision gate = vision::CheckEnrollmentFaces(faces);
                ASSERT_TRUE(gate.accepted) << photos[i] << ": " << gate.detail;
                const auto& f = faces[size_t(gate.face)];
                ASSERT_TRUE(f.embedding);
                auto r = (*g)->Enroll(person,
                                      {.model_id = model,
                                       .create_subject = true,
                                       .display_name = person,
                                       .metadata = "{}",
                                       .force = false},
                                      std::vector<NewFace>{{f.embedding->values, f.quality.score,
                                                            photos[i].string()}});
                ASSERT_TRUE(r.ok()) << r.status().ToString();
                EXPECT_TRUE(r->rejected.empty()) << r->rejected[0].detail;
                enrolled += int(r->face_ids.size());
                continue;
            }
            ASSERT_FALSE(faces.empty());
            auto id = (*g)->Identify(*faces.front().embedding);
            ASSERT_TRUE(id.ok()) << id.status().ToString();
            if (person == unknown) {
                ++strangers;
                strangers_unknown += !id->known;
                EXPECT_FALSE(id->known)
                    << photos[i] << " matched " << id->subject_id << " " << id->candidates[0].score;
            } else {
                ++probes;
                correct += id->known && id->subject_id == person;
            }
        }
    }
    std::printf(
        "enrolled %d templates; %d/%d held-out photos identified; %d/%d strangers unknown\n",
        enrolled, correct, probes, strangers_unknown, strangers);
    EXPECT_EQ(enrolled, 12);
    EXPECT_GE(correct, probes * 9 / 10);
    EXPECT_EQ(strangers_unknown, strangers);
    // A face from another model is refused, not scored.
    vision::Embedding other{"another-model@2", std::vector<float>(size_t((*g)->dim()), 0.1f)};
    EXPECT_EQ((*g)->Identify(other).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace fg::gallery
