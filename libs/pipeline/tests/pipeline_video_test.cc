// SPDX-License-Identifier: Apache-2.0
// Real video, real models: people enrolled from the first part of a clip (the best shot the
// pipeline picked for each of their tracks) are recognised in the later part, and the people
// of another clip are not taken for any of them. ../shared/data/videos (skipped when missing,
// failed under CI=true).
#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "fg/base/paths.h"
#include "fg/events/sink.h"
#include "fg/gallery/gallery.h"
#include "fg/pipeline/embed_batcher.h"
#include "fg/pipeline/pipeline.h"
#include "fg/testing/testing.h"
#include "model_fixture.h"

namespace fg::pipeline {
namespace {

namespace fs = std::filesystem;

std::vector<std::uint8_t> Base64Decode(const std::string& in) {
    static const std::string kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::vector<std::uint8_t> out;
    int bits = 0;
    std::uint32_t acc = 0;
    for (char c : in) {
        const auto pos = kAlphabet.find(c);
        if (pos == std::string::npos) continue;  // '=' padding
        acc = (acc << 6) | static_cast<std::uint32_t>(pos);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xFF));
        }
    }
    return out;
}

/// Frames [from, to) of a video as a folder of images (the folder source replays them at
/// the clip's rate): two parts of one clip become two independent "cameras".
fs::path Part(const fs::path& video, int from, int to, const fs::path& dir) {
    fs::create_directories(dir);
    cv::VideoCapture cap(video.string());
    EXPECT_TRUE(cap.isOpened());
    cv::Mat frame;
    for (int i = 0; i < to && cap.read(frame); ++i) {
        if (i < from) continue;
        char name[32];
        std::snprintf(name, sizeof name, "%05d.jpg", i);
        EXPECT_TRUE(cv::imwrite((dir / name).string(), frame, {cv::IMWRITE_JPEG_QUALITY, 95}));
    }
    return dir;
}

class PipelineVideo : public ::testing::Test {
  protected:
    void SetUp() override {
        crowd_ = SharedDir() / "data/videos/crowd_walking_1080p.mp4";
        others_ = SharedDir() / "data/videos/intel_head-pose-face-detection-female-and-male.mp4";
        FG_REQUIRE_PATH(crowd_);
        FG_REQUIRE_PATH(others_);
        FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx");
        FG_REQUIRE_PATH(ModelsDir() / "fr_feature.onnx");
        ASSERT_NO_FATAL_FAILURE(testing::MakeEngineAndGallery(tmp_.path(), 'b', engine_, gallery_));
    }

    std::vector<events::Event> Run(const fs::path& folder, double fps, bool crops,
                                   std::shared_ptr<gallery::Gallery> g) {
        PipelineConfig config;
        StreamSpec s;
        s.source.id = "cam";
        s.source.uri = folder.string();
        s.source.folder_fps = fps;
        s.source.process_every_frame = true;
        config.streams.push_back(s);
        config.best_shot_crops = crops;
        auto sink = std::make_shared<events::MemorySink>();
        auto p = Pipeline::Create(config, engine_, std::move(g), sink);
        EXPECT_TRUE(p.ok()) << p.status().ToString();
        if (!p.ok()) return {};
        EXPECT_TRUE((*p)->Start().ok());
        EXPECT_TRUE((*p)->WaitFinished(std::chrono::minutes(5)));
        (*p)->Stop();
        return sink->events();
    }

    fs::path crowd_, others_;
    fg::testing::TmpDir tmp_;
    std::shared_ptr<vision::Engine> engine_;
    std::shared_ptr<gallery::Gallery> gallery_;
};

TEST_F(PipelineVideo, EnrolledFromTheFirstPartRecognisedInTheSecondAndNoStranger) {
    // The crowd walks toward the camera: 105 frames at 25 fps; the first 2 s enroll, the
    // rest (the same people, nearer, other poses) must recognise them.
    const fs::path first = Part(crowd_, 0, 50, tmp_ / "first");
    const fs::path second = Part(crowd_, 50, 105, tmp_ / "second");

    // 1. The first part without a gallery: every track ends unknown_face with its best shot.
    std::vector<std::pair<std::string, cv::Mat>> shots;
    for (const events::Event& e : Run(first, 25, /*crops=*/true, nullptr)) {
        if (e.type() != events::EventType::kUnknownFace) continue;
        const auto bytes = Base64Decode(std::get<events::UnknownFace>(e.payload).best_shot_jpeg_base64);
        cv::Mat crop = cv::imdecode(bytes, cv::IMREAD_COLOR);
        ASSERT_FALSE(crop.empty());
        shots.emplace_back("t" + std::to_string(e.track_id.value_or(0)), crop);
    }
    ASSERT_GE(shots.size(), 3u) << "too few people found in the first part";

    // 2. Enroll each best shot as a subject (embedded as the pipeline embeds).
    auto models = MakeEngineModels(engine_);
    ASSERT_TRUE(models.ok());
    auto batcher = EmbedBatcher::Create(**models, 8);
    ASSERT_TRUE(batcher.ok());
    std::vector<cv::Mat> crops;
    for (const auto& s : shots) crops.push_back(s.second);
    std::vector<vision::Embedding> embs;
    ASSERT_TRUE((*batcher)->Embed(crops, embs).ok());
    ASSERT_EQ(embs.size(), shots.size());
    std::set<std::string> enrolled;
    for (std::size_t i = 0; i < shots.size(); ++i) {
        const std::vector<gallery::NewFace> faces = {{embs[i].values, -1.f, ""}};
        auto r = gallery_->Enroll(shots[i].first, {.model_id = embs[i].model_id}, faces);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        enrolled.insert(shots[i].first);
    }

    // 3. The second part with that gallery: most of them are recognised, by enrolled names.
    std::map<std::uint64_t, std::set<std::string>> names_per_track;
    std::set<std::string> recognised;
    for (const events::Event& e : Run(second, 25, false, gallery_)) {
        if (e.type() != events::EventType::kRecognized) continue;
        const std::string& who = std::get<events::Recognized>(e.payload).subject_id;
        EXPECT_TRUE(enrolled.count(who)) << who;
        recognised.insert(who);
        names_per_track[e.track_id.value_or(0)].insert(who);
    }
    EXPECT_GE(recognised.size() * 2, enrolled.size() + 1)
        << "fewer than half of the " << enrolled.size() << " people enrolled from the first "
        << "part were recognised in the second (" << recognised.size() << ")";
    // Two people of the second part never get the same name: a name is one person.
    std::map<std::string, int> tracks_per_name;
    for (const auto& [track, names] : names_per_track) {
        for (const auto& n : names) tracks_per_name[n]++;
    }
    for (const auto& [name, n] : tracks_per_name) {
        EXPECT_LE(n, 2) << name << " given to " << n << " tracks";  // a re-found track: 2
    }

    // 4. Strangers: the people of another clip are nobody in this gallery.
    const fs::path strangers = Part(others_, 0, 1000, tmp_ / "strangers");
    int stranger_tracks = 0;
    for (const events::Event& e : Run(strangers, 12, false, gallery_)) {
        if (e.type() == events::EventType::kTrackStarted) ++stranger_tracks;
        EXPECT_NE(e.type(), events::EventType::kRecognized)
            << "a stranger was recognised as "
            << std::get<events::Recognized>(e.payload).subject_id;
    }
    EXPECT_GE(stranger_tracks, 1) << "the stranger clip must show faces for this to mean anything";
}

}  // namespace
}  // namespace fg::pipeline
