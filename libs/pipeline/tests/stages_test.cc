// SPDX-License-Identifier: Apache-2.0
// The pipeline's stages and the whole pipeline on fakes (tests/fakes.h): the decision logic
// (known / unknown / spoof, re-checks, track ends, cadence) with no model file, in milliseconds.
#include <algorithm>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/videoio.hpp>

#include "fakes.h"
#include "fg/events/sink.h"
#include "fg/pipeline/pipeline.h"
#include "fg/pipeline/stream_processor.h"
#include "fg/testing/testing.h"

namespace fg::pipeline {
namespace {

using testing::FakeIdentifier;
using testing::FakeModels;
using testing::MakeFrame;
using testing::Square;

/// One stream's processor over fakes, fed frames by hand.
struct Harness {
    explicit Harness(PipelineConfig c = {}, bool enroll = true) : config(std::move(c)) {
        if (!enroll) return;  // an empty gallery
        identifier.Enroll("alice", 0);
        identifier.Enroll("carol", 2);
    }
    Status Init() {
        FG_ASSIGN_OR_RETURN(batcher, EmbedBatcher::Create(models, config.embed_batch));
        StreamContext ctx;
        ctx.models = &models;
        ctx.embedder = batcher.get();
        ctx.model_id = models.embedder_model_id();
        ctx.identifier = &identifier;
        ctx.sink = sink;
        ctx.observers = observers;
        StreamSpec spec;
        spec.source.id = "cam";
        spec.source.uri = "unused";
        spec.motion_gate = false;
        FG_ASSIGN_OR_RETURN(processor, StreamProcessor::Create(config, spec, ctx));
        return Status::Ok();
    }
    /// Frames [first, first + n) showing `squares` moved right by `dx` px per frame, 40 ms apart.
    void Play(std::vector<Square> squares, int n, int dx = 2) {
        for (int i = 0; i < n; ++i) {
            for (Square& s : squares) s.x += dx;
            ASSERT_TRUE(processor->Process(MakeFrame(squares, next, next * 40), std::chrono::steady_clock::now()).ok());
            ++next;
        }
    }
    std::vector<events::Event> Events(events::EventType type) const {
        std::vector<events::Event> out;
        for (const auto& e : sink->events()) {
            if (e.type() == type) out.push_back(e);
        }
        return out;
    }

    PipelineConfig config;
    FakeModels models;
    FakeIdentifier identifier;
    std::shared_ptr<events::MemorySink> sink = std::make_shared<events::MemorySink>();
    std::unique_ptr<EmbedBatcher> batcher;
    std::unique_ptr<StreamProcessor> processor;
    std::vector<std::shared_ptr<PipelineObserver>> observers;
    std::uint64_t next = 0;
};

/// The edge's hook: what face selection hands over, frame by frame.
struct ItemRecorder final : PipelineObserver {
    std::vector<FaceItem> items;
    void OnFaceItems(const std::vector<FaceItem>& batch) override {
        items.insert(items.end(), batch.begin(), batch.end());
    }
};

// facegate edge: recognition off, the selected items go to the observer and nothing is embedded;
// the tracks stay undecided, so selection offers at the undecided rate, capped per track.
TEST(Stages, EdgeHandOffGetsTheItemsAndNothingIsEmbeddedWhenRecognitionIsOff) {
    PipelineConfig c;
    c.recognize = false;
    c.recognition.max_embeddings = 4;
    Harness h(c);
    auto rec = std::make_shared<ItemRecorder>();
    h.observers.push_back(rec);
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 0, .x = 20, .y = 50}}, 60);
    h.processor->End();
    EXPECT_EQ(h.processor->Stats().embeddings, 0u);
    EXPECT_TRUE(h.Events(events::EventType::kRecognized).empty());
    ASSERT_GE(rec->items.size(), 2u);
    EXPECT_LE(rec->items.size(), 4u);
    for (const FaceItem& item : rec->items) {
        EXPECT_EQ(item.stream_id, "cam");
        EXPECT_FALSE(item.aligned.empty());
        EXPECT_TRUE(item.item_id.starts_with("cam/0/"));
    }
    // With recognition on, the observer sees the same hand-off and recognition runs too.
    Harness on;
    auto rec_on = std::make_shared<ItemRecorder>();
    on.observers.push_back(rec_on);
    ASSERT_TRUE(on.Init().ok());
    on.Play({{.color = 0, .x = 20, .y = 50}}, 30);
    EXPECT_GE(rec_on->items.size(), 1u);
    EXPECT_EQ(on.Events(events::EventType::kRecognized).size(), 1u);
}

TEST(Stages, EnrolledFaceIsRecognisedOnceAndItsTrackEndsWithTheSubject) {
    Harness h;
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 0, .x = 20, .y = 50}}, 30);
    h.processor->End();
    const auto started = h.Events(events::EventType::kTrackStarted);
    const auto recognized = h.Events(events::EventType::kRecognized);
    const auto ended = h.Events(events::EventType::kTrackEnded);
    ASSERT_EQ(started.size(), 1u);
    ASSERT_EQ(recognized.size(), 1u);
    EXPECT_EQ(std::get<events::Recognized>(recognized[0].payload).subject_id, "alice");
    EXPECT_EQ(recognized[0].track_id, started[0].track_id);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(std::get<events::TrackEnded>(ended[0].payload).subject_id, "alice");
    EXPECT_TRUE(h.Events(events::EventType::kUnknownFace).empty());
    // Best shots, not every frame: a recognised track is re-checked only now and then.
    const StreamRunStats s = h.processor->Stats();
    EXPECT_EQ(s.frames, 30u);
    EXPECT_LT(s.embeddings, 6u);
    EXPECT_GE(s.embeddings, 1u);
}

TEST(Stages, StrangerIsUnknownOnlyAfterEnoughFacesAndOnce) {
    PipelineConfig c;
    c.recognition.unknown_min_faces = 3;
    c.recognition.min_gap_frames = 1;
    Harness h(c);
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 1, .x = 20, .y = 50}}, 40);
    const auto unknown = h.Events(events::EventType::kUnknownFace);
    ASSERT_EQ(unknown.size(), 1u);
    EXPECT_EQ(std::get<events::UnknownFace>(unknown[0].payload).faces_used, 3);
    EXPECT_TRUE(h.Events(events::EventType::kRecognized).empty());
    h.processor->End();
    const auto ended = h.Events(events::EventType::kTrackEnded);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(std::get<events::TrackEnded>(ended[0].payload).subject_id, "");
}

// Issue 15: before anyone is enrolled every face that passes quality is unknown (so strangers
// form from the first day); a spoof is still a spoof first.
TEST(Stages, EmptyGalleryMakesEveryFaceUnknownAndSpoofsStaySpoofs) {
    PipelineConfig c;
    c.liveness = true;
    c.recognition.min_gap_frames = 1;
    Harness h(c, /*enroll=*/false);
    h.models.spoof_colors = {2};
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 0, .x = 10, .y = 20}, {.color = 2, .x = 200, .y = 120}}, 40, 1);
    h.processor->End();
    const auto unknown = h.Events(events::EventType::kUnknownFace);
    const auto spoof = h.Events(events::EventType::kSpoofDetected);
    ASSERT_EQ(unknown.size(), 1u);
    ASSERT_EQ(spoof.size(), 1u);
    EXPECT_NE(unknown[0].track_id, spoof[0].track_id);  // the photo is a spoof, never an unknown
    EXPECT_TRUE(h.Events(events::EventType::kRecognized).empty());
}

TEST(Stages, SpoofIsAnnouncedAndNeverRecognisedEvenWhenEnrolled) {
    PipelineConfig c;
    c.liveness = true;
    Harness h(c);
    h.models.spoof_colors = {2};  // carol's colour: a photo of an enrolled person
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 2, .x = 20, .y = 50}}, 30);
    h.processor->End();
    const auto spoof = h.Events(events::EventType::kSpoofDetected);
    ASSERT_EQ(spoof.size(), 1u);
    EXPECT_LT(std::get<events::SpoofDetected>(spoof[0].payload).liveness_score, 0.5f);
    EXPECT_TRUE(h.Events(events::EventType::kRecognized).empty());
    const auto ended = h.Events(events::EventType::kTrackEnded);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(std::get<events::TrackEnded>(ended[0].payload).subject_id, "");
}

TEST(Stages, LiveEnrolledFaceWaitsForLivenessThenIsRecognised) {
    PipelineConfig c;
    c.liveness = true;
    c.liveness_min_frames = 5;
    c.recognition.min_gap_frames = 1;
    Harness h(c);
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 0, .x = 20, .y = 50}}, 30);
    const auto recognized = h.Events(events::EventType::kRecognized);
    ASSERT_EQ(recognized.size(), 1u);
    const auto started = h.Events(events::EventType::kTrackStarted);
    ASSERT_EQ(started.size(), 1u);
    // Not before liveness had its frames: the track starts on its 2nd detection, liveness
    // needs 5 judged frames after that.
    EXPECT_GE(*recognized[0].frame_index, *started[0].frame_index + 4);
    EXPECT_TRUE(h.Events(events::EventType::kSpoofDetected).empty());
}

TEST(Stages, TwoFacesAreDecidedIndependently) {
    Harness h;
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 0, .x = 10, .y = 20}, {.color = 1, .x = 200, .y = 120}}, 40, 1);
    const auto recognized = h.Events(events::EventType::kRecognized);
    ASSERT_EQ(recognized.size(), 1u);
    EXPECT_EQ(std::get<events::Recognized>(recognized[0].payload).subject_id, "alice");
    EXPECT_EQ(h.Events(events::EventType::kUnknownFace).size(), 1u);
    EXPECT_EQ(h.Events(events::EventType::kTrackStarted).size(), 2u);
}

TEST(Stages, FaceLeavingEndsItsTrackAndANewFaceStartsAnother) {
    PipelineConfig c;
    c.tracker.max_lost_frames = 5;
    Harness h(c);
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 0, .x = 20, .y = 50}}, 10);
    h.Play({}, 12);  // nobody in view
    ASSERT_EQ(h.Events(events::EventType::kTrackEnded).size(), 1u);
    h.Play({{.color = 2, .x = 100, .y = 50}}, 10);
    const auto recognized = h.Events(events::EventType::kRecognized);
    ASSERT_EQ(recognized.size(), 2u);
    EXPECT_EQ(std::get<events::Recognized>(recognized[1].payload).subject_id, "carol");
    EXPECT_NE(recognized[0].track_id, recognized[1].track_id);
}

TEST(Stages, SettledStreamRunsTheDetectorLessOften) {
    Harness h;
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 0, .x = 20, .y = 50}}, 40, 1);
    // Every 2nd frame while undecided, every 4th once alice is recognised.
    const StreamRunStats s = h.processor->Stats();
    EXPECT_LT(s.detector_runs, 40u / 2);
    EXPECT_GT(s.detector_runs, 40u / 4 - 2);
}

TEST(Stages, DetectorRunsDownToTheTrackerLowThresholdInDefaultModeOnly) {
    Harness h;
    ASSERT_TRUE(h.Init().ok());
    EXPECT_FLOAT_EQ(h.models.last_detector_threshold, h.config.tracker.low_thresh);
    PipelineConfig naive;
    naive.mode = PipelineMode::kNaive;
    Harness n(naive);
    ASSERT_TRUE(n.Init().ok());
    EXPECT_FLOAT_EQ(n.models.last_detector_threshold, n.models.threshold);
}

TEST(Stages, StalledCameraEndsItsTracksAndTheNextFrameIsDetected) {
    Harness h;
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 0, .x = 20, .y = 50}}, 10);
    ASSERT_TRUE(h.processor->HasTracks());
    h.processor->Stall();
    EXPECT_FALSE(h.processor->HasTracks());
    ASSERT_EQ(h.Events(events::EventType::kTrackEnded).size(), 1u);
    const int runs = h.models.detector_runs;
    h.Play({{.color = 0, .x = 20, .y = 50}}, 1);
    EXPECT_EQ(h.models.detector_runs, runs + 1);
}

TEST(Stages, NaiveModeEmbedsEveryFaceOfEveryFrameAndEmitsNoEvents) {
    PipelineConfig c;
    c.mode = PipelineMode::kNaive;
    Harness h(c);
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 0, .x = 10, .y = 20}, {.color = 1, .x = 200, .y = 120}}, 10, 1);
    EXPECT_EQ(h.processor->Stats().embeddings, 20u);
    EXPECT_EQ(h.processor->Stats().detector_runs, 10u);
    EXPECT_TRUE(h.sink->events().empty());
}

TEST(Stages, NewGenerationEndsTracks) {
    Harness h;
    ASSERT_TRUE(h.Init().ok());
    h.Play({{.color = 0, .x = 20, .y = 50}}, 10);
    stream::Frame f = MakeFrame({{.color = 0, .x = 40, .y = 50}}, h.next, 0);
    f.generation = 1;  // the file looped / the camera reconnected
    ASSERT_TRUE(h.processor->Process(f, std::chrono::steady_clock::now()).ok());
    EXPECT_EQ(h.Events(events::EventType::kTrackEnded).size(), 1u);
}

// --- The whole pipeline on fakes: real sources (a video file), threads, the embedding thread.

std::string WriteClip(const std::filesystem::path& dir, const std::string& name,
                      const std::vector<Square>& squares, int frames) {
    const std::string path = (dir / name).string();
    cv::VideoWriter w(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 25, cv::Size(320, 240));
    EXPECT_TRUE(w.isOpened());
    std::vector<Square> s = squares;
    for (int i = 0; i < frames; ++i) {
        for (Square& q : s) q.x += 2;
        w.write(testing::DrawFrame(s));
    }
    return path;
}

struct PipelineHarness {
    PipelineHarness() {
        auto id = std::make_shared<FakeIdentifier>();
        id->Enroll("alice", 0);
        identifier = id;
    }
    std::shared_ptr<FakeModels> models = std::make_shared<FakeModels>();
    std::shared_ptr<Identifier> identifier;
    std::shared_ptr<events::MemorySink> sink = std::make_shared<events::MemorySink>();
    fg::testing::TmpDir dir;
};

StreamSpec FileStream(const std::string& id, const std::string& path, bool loop = false) {
    StreamSpec s;
    s.source.id = id;
    s.source.uri = path;
    s.source.process_every_frame = true;
    s.source.loop = loop;
    return s;
}

TEST(PipelineOnFakes, RecognisesAFaceInAVideoFile) {
    PipelineHarness h;
    PipelineConfig c;
    c.streams.push_back(FileStream("door", WriteClip(h.dir.path(), "a.avi", {{.color = 0, .x = 10, .y = 60}}, 40)));
    auto p = Pipeline::Create(c, h.models, h.identifier, h.sink);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    ASSERT_TRUE((*p)->Start().ok());
    ASSERT_TRUE((*p)->WaitFinished(std::chrono::seconds(30)));
    (*p)->Stop();
    const PipelineStats s = (*p)->Stats();
    EXPECT_EQ(s.frames, 40u);
    EXPECT_EQ(s.identities, std::set<std::string>{"alice"});
    int recognized = 0, states = 0;
    for (const auto& e : h.sink->events()) {
        recognized += e.type() == events::EventType::kRecognized;
        states += e.type() == events::EventType::kStreamState;
    }
    EXPECT_EQ(recognized, 1);
    EXPECT_GE(states, 1);
    // The last event is the stream's end, after its last track_ended.
    EXPECT_EQ(h.sink->events().back().type(), events::EventType::kStreamState);
}

TEST(PipelineOnFakes, SetStreamsAddsRemovesAndRestartsOnlyWhatChanged) {
    PipelineHarness h;
    const std::string clip = WriteClip(h.dir.path(), "a.avi", {{.color = 1, .x = 10, .y = 60}}, 20);
    PipelineConfig c;
    c.streams.push_back(FileStream("a", clip, /*loop=*/true));
    auto p = Pipeline::Create(c, h.models, h.identifier, h.sink);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    ASSERT_TRUE((*p)->Start().ok());

    auto u = (*p)->SetStreams({FileStream("a", clip, true), FileStream("b", clip, true)});
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u->added, 1);
    EXPECT_EQ(u->removed + u->restarted, 0);
    EXPECT_EQ(u->running, 2);

    StreamSpec b2 = FileStream("b", clip, true);
    b2.motion_gate = false;  // changed
    u = (*p)->SetStreams({b2});
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u->removed, 1);
    EXPECT_EQ(u->restarted, 1);
    EXPECT_EQ(u->added, 0);
    EXPECT_EQ(u->running, 1);

    // An invalid list changes nothing.
    StreamSpec bad = FileStream("", clip);
    EXPECT_EQ((*p)->SetStreams({b2, bad}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ((*p)->Stats().streams.size(), 3u);  // a (removed), b (restarted once), b
    (*p)->Stop();
    EXPECT_EQ((*p)->SetStreams({}).status().code(), StatusCode::kFailedPrecondition);
}

// An OpenCV exception on one frame (a corrupt frame, a bad size) used to end the process: now the
// frame is lost, and the stream and every other stream go on.
TEST(PipelineOnFakes, AnExceptionOnOneFrameLosesThatFrameOnly) {
    PipelineHarness h;
    h.models->throw_on_pixel = cv::Vec3b(0, 0, 255);
    const std::string path = (h.dir.path() / "bad.avi").string();
    {
        cv::VideoWriter w(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 25, cv::Size(320, 240));
        ASSERT_TRUE(w.isOpened());
        for (int i = 0; i < 30; ++i) {
            cv::Mat f = testing::DrawFrame({{.color = 0, .x = 10 + 2 * i, .y = 60}});
            if (i % 5 == 2) f(cv::Rect(0, 0, 16, 16)).setTo(cv::Scalar(0, 0, 255));  // poisoned
            w.write(f);
        }
    }
    PipelineConfig c;
    c.detect_interval = 1;
    c.settled_detect_interval = 1;
    c.streams.push_back(FileStream("cam", path));
    c.streams.back().motion_gate = false;
    auto p = Pipeline::Create(c, h.models, h.identifier, h.sink);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    ASSERT_TRUE((*p)->Start().ok());
    ASSERT_TRUE((*p)->WaitFinished(std::chrono::seconds(30)));
    (*p)->Stop();
    const PipelineStats s = (*p)->Stats();
    EXPECT_EQ(s.frames, 24u);  // 30 frames, 6 poisoned ones lost
    EXPECT_EQ(s.identities, std::set<std::string>{"alice"});
}

// Stop while another thread removes and adds streams: Stop used to walk raw pointers to workers
// that RemoveStream destroyed. Run under ASan/TSan in CI.
TEST(PipelineOnFakes, StopRacesStreamRemovalSafely) {
    PipelineHarness h;
    const std::string clip = WriteClip(h.dir.path(), "a.avi", {{.color = 1, .x = 10, .y = 60}}, 10);
    for (int round = 0; round < 5; ++round) {
        PipelineConfig c;
        for (int i = 0; i < 4; ++i) c.streams.push_back(FileStream("s" + std::to_string(i), clip, true));
        auto p = Pipeline::Create(c, h.models, h.identifier, h.sink);
        ASSERT_TRUE(p.ok()) << p.status().ToString();
        ASSERT_TRUE((*p)->Start().ok());
        std::thread remover([&] {
            for (int i = 0; i < 4; ++i) {
                const Status st = (*p)->RemoveStream("s" + std::to_string(i));
                EXPECT_TRUE(st.ok() || st.code() == StatusCode::kFailedPrecondition) << st.ToString();
                (void)(*p)->AddStream(FileStream("n" + std::to_string(i), clip, true));
            }
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(round * 3));
        (*p)->Stop();
        remover.join();
        (*p)->Stop();  // idempotent
        EXPECT_EQ((*p)->AddStream(FileStream("late", clip)).code(), StatusCode::kFailedPrecondition);
    }
}

TEST(PipelineOnFakes, GalleryOfAnotherModelIsRefusedByTheEngineOverload) {
    // The interface overload takes any identifier; the engine/gallery one checks the model id
    // (tests/pipeline_model_test.cc): here only that no models is an error.
    PipelineConfig c;
    EXPECT_EQ(Pipeline::Create(c, std::shared_ptr<ModelProvider>(), nullptr, nullptr).status().code(),
              StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fg::pipeline
