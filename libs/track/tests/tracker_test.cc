// SPDX-License-Identifier: Apache-2.0
// Golden scenarios for the tracker: synthetic faces with exact expected id sequences.
#include "fg/track/tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>

namespace fg::track {
namespace {

Rect2f At(float cx, float cy, float w, float h) {
    return Rect2f::FromCorners(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2);
}

// One scripted detection: which synthetic face it belongs to (for the trace), box and score.
struct Scripted {
    std::string face;
    Rect2f box;
    float score = 0.9f;
};

// A frame: detections (Update) or nullopt (Predict: the detector did not run).
using Frame = std::optional<std::vector<Scripted>>;

// What a run produced, as compact strings to compare against literals.
struct Trace {
    // Per face: one token per frame: the track id matched to its detection, "-" when its
    // detection was unmatched, "." when it had no detection, "p" on Predict frames.
    std::map<std::string, std::string> ids;
    // "frame:+id" for started, "frame:-id" for ended, in order.
    std::string events;
    std::vector<TrackerStep> steps;
};

Trace RunScenario(Tracker& tracker, const std::vector<Frame>& frames) {
    Trace trace;
    std::set<std::string> faces;
    for (const Frame& f : frames) {
        if (f) {
            for (const Scripted& s : *f) {
                faces.insert(s.face);
            }
        }
    }
    for (const Frame& f : frames) {
        TrackerStep step;
        std::map<std::string, std::string> token;
        for (const auto& face : faces) {
            token[face] = f ? "." : "p";
        }
        if (f) {
            std::vector<Detection> dets;
            for (const Scripted& s : *f) {
                dets.push_back({s.box, s.score});
            }
            step = tracker.Update(dets);
            for (const Scripted& s : *f) {
                token[s.face] = "-";
            }
            for (const Track& t : step.tracks) {
                if (t.detection_index >= 0) {
                    token[(*f)[t.detection_index].face] = std::to_string(t.id);
                }
            }
        } else {
            step = tracker.Predict();
        }
        for (const auto& [face, tok] : token) {
            auto& s = trace.ids[face];
            s += (s.empty() ? "" : " ") + tok;
        }
        for (const Track& t : step.started) {
            trace.events += (trace.events.empty() ? "" : " ") + std::to_string(tracker.frame()) +
                            ":+" + std::to_string(t.id);
        }
        for (const Track& t : step.ended) {
            trace.events += (trace.events.empty() ? "" : " ") + std::to_string(tracker.frame()) +
                            ":-" + std::to_string(t.id);
        }
        trace.steps.push_back(std::move(step));
    }
    return trace;
}

std::string Repeat(const std::string& token, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
        s += (i ? " " : "") + token;
    }
    return s;
}

std::string Join(std::initializer_list<std::string> parts) {
    std::string s;
    for (const auto& p : parts) {
        s += (s.empty() ? "" : " ") + p;
    }
    return s;
}

std::unique_ptr<Tracker> Make(TrackerConfig config = {}) {
    auto t = Tracker::Create(config);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return std::move(t).value();
}

const Track* Find(const TrackerStep& step, std::uint64_t id) {
    for (const Track& t : step.tracks) {
        if (t.id == id) {
            return &t;
        }
    }
    return nullptr;
}

TEST(IoUTest, Basics) {
    const auto c = Rect2f::FromCorners;
    EXPECT_FLOAT_EQ(IoU(c(0, 0, 10, 10), c(0, 0, 10, 10)), 1.0f);
    EXPECT_FLOAT_EQ(IoU(c(0, 0, 10, 10), c(5, 0, 15, 10)), 50.0f / 150.0f);
    EXPECT_FLOAT_EQ(IoU(c(0, 0, 10, 10), c(10, 0, 20, 10)), 0.0f);
    EXPECT_FLOAT_EQ(IoU(c(0, 0, 0, 10), c(0, 0, 0, 10)), 0.0f);
}

TEST(TrackerConfigTest, DefaultsAreValid) { EXPECT_TRUE(TrackerConfig{}.Validate().ok()); }

TEST(TrackerConfigTest, ErrorsNameTheField) {
    auto message = [](TrackerConfig c) { return c.Validate().message(); };
    EXPECT_NE(message({.high_thresh = 1.5f}).find("high_thresh"), std::string::npos);
    EXPECT_NE(message({.low_thresh = 0.7f}).find("low_thresh"), std::string::npos);
    EXPECT_NE(message({.new_track_thresh = 0.4f}).find("new_track_thresh"), std::string::npos);
    EXPECT_NE(message({.match_iou = 0.0f}).find("match_iou"), std::string::npos);
    EXPECT_NE(message({.low_match_iou = 2.0f}).find("low_match_iou"), std::string::npos);
    EXPECT_NE(message({.min_hits = 0}).find("min_hits"), std::string::npos);
    EXPECT_NE(message({.max_lost_frames = -1}).find("max_lost_frames"), std::string::npos);
    EXPECT_NE(message({.std_weight_position = 0}).find("std_weight_position"), std::string::npos);
    EXPECT_NE(message({.std_weight_velocity = std::numeric_limits<float>::quiet_NaN()})
                  .find("std_weight_velocity"),
              std::string::npos);
    EXPECT_EQ(Tracker::Create({.min_hits = 0}).status().code(), StatusCode::kInvalidArgument);
}

TEST(TrackerTest, OneFaceMovingLinearly) {
    auto tracker = Make();
    std::vector<Frame> frames;
    for (int t = 0; t < 10; ++t) {
        frames.push_back(std::vector<Scripted>{{"a", At(100 + 5.0f * t, 100, 50, 60)}});
    }
    const Trace trace = RunScenario(*tracker, frames);
    EXPECT_EQ(trace.ids.at("a"), Repeat("1", 10));
    EXPECT_EQ(trace.events, "2:+1");
    EXPECT_EQ(trace.steps[0].tracks[0].state, TrackState::kTentative);
    EXPECT_EQ(trace.steps[1].tracks[0].state, TrackState::kConfirmed);
    const Track& last = trace.steps.back().tracks.at(0);
    EXPECT_EQ(last.hits, 10);
    EXPECT_EQ(last.age, 9);
    EXPECT_EQ(last.frames_since_match, 0);
    EXPECT_EQ(last.start_frame, 1);
    EXPECT_NEAR(last.box.center().x, 145, 3);
    EXPECT_NEAR(last.box.height, 60, 1);
}

TEST(TrackerTest, TwoCrossingFacesKeepTheirIds) {
    auto tracker = Make();
    std::vector<Frame> frames;
    for (int t = 0; t < 30; ++t) {
        Scripted a{"a", At(100 + 8.0f * t, 100, 50, 60)};
        Scripted b{"b", At(340 - 8.0f * t, 130, 50, 60)};
        // The detector's output order changes from frame to frame; it must not matter.
        frames.push_back(t % 2 == 0 ? std::vector<Scripted>{a, b} : std::vector<Scripted>{b, a});
    }
    const Trace trace = RunScenario(*tracker, frames);
    EXPECT_EQ(trace.ids.at("a"), Repeat("1", 30));
    EXPECT_EQ(trace.ids.at("b"), Repeat("2", 30));
    EXPECT_EQ(trace.events, "2:+1 2:+2");
}

std::vector<Frame> OccludedFace(int visible_before, int occluded, int visible_after) {
    std::vector<Frame> frames;
    for (int t = 0; t < visible_before + occluded + visible_after; ++t) {
        if (t >= visible_before && t < visible_before + occluded) {
            frames.push_back(std::vector<Scripted>{});  // detector ran, face hidden
        } else {
            frames.push_back(std::vector<Scripted>{{"a", At(100 + 4.0f * t, 200, 60, 60)}});
        }
    }
    return frames;
}

TEST(TrackerTest, OcclusionThenReassociation) {
    auto tracker = Make();
    const Trace trace = RunScenario(*tracker, OccludedFace(10, 5, 10));
    EXPECT_EQ(trace.ids.at("a"), Join({Repeat("1", 10), Repeat(".", 5), Repeat("1", 10)}));
    EXPECT_EQ(trace.events, "2:+1");
    const Track* hidden = Find(trace.steps[14], 1);
    ASSERT_NE(hidden, nullptr);
    EXPECT_EQ(hidden->state, TrackState::kLost);
    EXPECT_EQ(hidden->frames_since_match, 5);
    EXPECT_EQ(hidden->detection_index, -1);
    const Track* back = Find(trace.steps[15], 1);
    ASSERT_NE(back, nullptr);
    EXPECT_EQ(back->state, TrackState::kConfirmed);
    EXPECT_EQ(back->detection_index, 0);
}

TEST(TrackerTest, OcclusionLongerThanMaxLostStartsANewTrack) {
    auto tracker = Make({.max_lost_frames = 3});
    const Trace trace = RunScenario(*tracker, OccludedFace(10, 5, 10));
    EXPECT_EQ(trace.ids.at("a"), Join({Repeat("1", 10), Repeat(".", 5), Repeat("2", 10)}));
    // Lost at frame 11, removed when unmatched for 4 > 3 frames; the new track confirms at 17.
    EXPECT_EQ(trace.events, "2:+1 14:-1 17:+2");
    EXPECT_EQ(trace.steps[12].tracks.at(0).state, TrackState::kLost);
    EXPECT_TRUE(trace.steps[13].tracks.empty());
}

TEST(TrackerTest, LowScoreDetectionKeepsTrackAlive) {
    auto tracker = Make({.max_lost_frames = 2});
    std::vector<Frame> frames;
    for (int t = 0; t < 10; ++t) {
        const float score = t < 3 ? 0.9f : 0.3f;  // face turns away: the detector is less sure
        frames.push_back(std::vector<Scripted>{{"a", At(100 + 2.0f * t, 100, 50, 50), score}});
    }
    const Trace trace = RunScenario(*tracker, frames);
    EXPECT_EQ(trace.ids.at("a"), Repeat("1", 10));
    EXPECT_EQ(trace.events, "2:+1");
    const Track& last = trace.steps.back().tracks.at(0);
    EXPECT_EQ(last.state, TrackState::kConfirmed);
    EXPECT_FLOAT_EQ(last.score, 0.3f);
    EXPECT_EQ(last.hits, 10);

    // Without the second stage (low detections discarded) the same track is lost, then ends.
    auto first_stage_only = Make({.low_thresh = 0.5f, .max_lost_frames = 2});
    const Trace control = RunScenario(*first_stage_only, frames);
    EXPECT_EQ(control.ids.at("a"), Join({Repeat("1", 3), Repeat("-", 7)}));
    EXPECT_EQ(control.events, "2:+1 6:-1");
}

TEST(TrackerTest, LowScoreDetectionsNeverStartOrReviveTracks) {
    auto tracker = Make();
    std::vector<Frame> frames;
    // Frames 1-3 confident, 4 nothing (the track is lost), 5-7 low-score: the second stage only
    // serves tracked tracks, so a lost one is not revived by clutter.
    for (int t = 0; t < 7; ++t) {
        if (t == 3) {
            frames.push_back(std::vector<Scripted>{});
        } else {
            frames.push_back(std::vector<Scripted>{{"a", At(100, 100, 50, 50), t < 3 ? 0.9f : 0.3f},
                                                   {"b", At(400, 100, 50, 50), 0.3f}});
        }
    }
    const Trace trace = RunScenario(*tracker, frames);
    EXPECT_EQ(trace.ids.at("a"), "1 1 1 . - - -");
    EXPECT_EQ(trace.ids.at("b"), "- - - . - - -");
    EXPECT_EQ(trace.events, "2:+1");
}

TEST(TrackerTest, DetectionEveryNFramesWithPredictionInBetween) {
    auto tracker = Make();
    constexpr int kEvery = 3;
    std::vector<Frame> frames;
    for (int t = 0; t < 30; ++t) {
        if (t % kEvery == 0) {
            frames.push_back(std::vector<Scripted>{{"a", At(100 + 6.0f * t, 300, 80, 80)}});
        } else {
            frames.push_back(std::nullopt);
        }
    }
    const Trace trace = RunScenario(*tracker, frames);
    EXPECT_EQ(trace.ids.at("a"), Repeat("1 p p", 10));
    EXPECT_EQ(trace.events, "4:+1");
    // Between detections the box moves with the learned velocity (per frame, not per update).
    const Track& predicted = trace.steps[28].tracks.at(0);
    EXPECT_EQ(predicted.frames_since_match, 1);
    EXPECT_EQ(predicted.detection_index, -1);
    EXPECT_EQ(predicted.state, TrackState::kConfirmed);
    EXPECT_NEAR(predicted.box.center().x, 100 + 6.0 * 28, 4.0);
}

TEST(TrackerTest, SpuriousSingleFrameDetectionsAreNeverConfirmed) {
    auto tracker = Make();
    std::vector<Frame> frames;
    for (int t = 0; t < 8; ++t) {
        frames.push_back(std::vector<Scripted>{
            {"face", At(300, 300, 60, 60)},
            // A false positive somewhere else every frame, never twice in the same place.
            {"noise", At(50.0f + 100.0f * static_cast<float>(t % 2), 40.0f + 70.0f * t, 30, 30),
             0.95f}});
    }
    const Trace trace = RunScenario(*tracker, frames);
    EXPECT_EQ(trace.ids.at("face"), Repeat("1", 8));
    // Each false positive opens a tentative track (ids are assigned at creation, so they leave
    // gaps in the confirmed ids) that dies silently at the next detection run.
    EXPECT_EQ(trace.ids.at("noise"), "2 3 4 5 6 7 8 9");
    EXPECT_EQ(trace.events, "2:+1");
    for (const TrackerStep& step : trace.steps) {
        EXPECT_LE(step.tracks.size(), 2u);
    }
}

TEST(TrackerTest, MinHitsOneStartsImmediately) {
    auto tracker = Make({.min_hits = 1});
    const Trace trace =
        RunScenario(*tracker, {std::vector<Scripted>{{"a", At(10, 10, 8, 8)}}, std::vector<Scripted>{}});
    EXPECT_EQ(trace.events, "1:+1");
    EXPECT_EQ(trace.steps[1].tracks.at(0).state, TrackState::kLost);
}

TEST(TrackerTest, DetectionBelowNewTrackThresholdDoesNotStartATrack) {
    auto tracker = Make();
    const Trace trace = RunScenario(*tracker, {std::vector<Scripted>{{"a", At(10, 10, 8, 8), 0.55f}}});
    EXPECT_EQ(trace.ids.at("a"), "-");
    EXPECT_TRUE(trace.steps[0].tracks.empty());
}

TEST(TrackerTest, InvalidDetectionsAreIgnored) {
    auto tracker = Make();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const auto c = Rect2f::FromCorners;
    std::vector<Detection> dets = {{c(0, 0, 0, 10), 0.9f},
                                   {c(nan, 0, 10, 10), 0.9f},
                                   {c(0, 0, 10, 10), nan},
                                   {c(20, 20, 40, 40), 0.9f}};
    const TrackerStep step = tracker->Update(dets);
    ASSERT_EQ(step.tracks.size(), 1u);
    EXPECT_EQ(step.tracks[0].detection_index, 3);
}

TEST(TrackerTest, EndAllEndsStartedTracksAndIdsContinue) {
    auto tracker = Make();
    const std::vector<Detection> two = {{At(100, 100, 40, 40), 0.9f}, {At(300, 100, 40, 40), 0.9f}};
    tracker->Update(two);
    tracker->Update(two);  // both confirmed
    tracker->Update(std::vector<Detection>{{At(500, 300, 40, 40), 0.9f}});  // 3 tentative
    const TrackerStep ended = tracker->EndAll();
    ASSERT_EQ(ended.ended.size(), 2u);
    EXPECT_EQ(ended.ended[0].id, 1u);
    EXPECT_EQ(ended.ended[1].id, 2u);
    EXPECT_EQ(ended.ended[0].state, TrackState::kLost);
    EXPECT_TRUE(tracker->tracks().empty());
    EXPECT_EQ(tracker->frame(), 3);
    const TrackerStep next = tracker->Update(two);
    EXPECT_EQ(next.tracks.at(0).id, 4u);
    EXPECT_EQ(next.tracks.at(1).id, 5u);
}

TEST(TrackerTest, PredictRemovesTracksPastMaxLost) {
    auto tracker = Make({.max_lost_frames = 4});
    const std::vector<Detection> one = {{At(100, 100, 40, 40), 0.9f}};
    tracker->Update(one);
    tracker->Update(one);
    for (int i = 0; i < 4; ++i) {
        const TrackerStep s = tracker->Predict();
        ASSERT_EQ(s.tracks.size(), 1u);
        EXPECT_EQ(s.tracks[0].state, TrackState::kConfirmed);  // no detector run: not lost
    }
    const TrackerStep s = tracker->Predict();
    EXPECT_TRUE(s.tracks.empty());
    ASSERT_EQ(s.ended.size(), 1u);
    EXPECT_EQ(s.ended[0].frames_since_match, 5);
}

// Many faces appearing, moving, missing detections and leaving, with a fixed seed: ids are
// unique, monotonic, never reused, and every started track ends exactly once.
TEST(TrackerTest, IdsAreUniqueAndNeverReused) {
    constexpr unsigned kSeed = 20261122;
    SCOPED_TRACE("seed " + std::to_string(kSeed));
    std::mt19937 rng(kSeed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    struct Face {
        float x, y, vx, vy, size;
        int death;
    };
    std::vector<Face> faces;
    auto tracker = Make({.max_lost_frames = 5});
    std::set<std::uint64_t> started, ended, seen_dead;
    std::uint64_t max_id = 0;
    auto check = [&](const TrackerStep& step) {
        std::set<std::uint64_t> live;
        for (const Track& t : step.tracks) {
            EXPECT_TRUE(live.insert(t.id).second) << "duplicate id " << t.id;
            EXPECT_EQ(seen_dead.count(t.id), 0u) << "reused id " << t.id;
            EXPECT_GE(t.id, 1u);
            max_id = std::max(max_id, t.id);
        }
        for (const Track& t : step.started) {
            EXPECT_TRUE(started.insert(t.id).second) << "started twice " << t.id;
        }
        for (const Track& t : step.ended) {
            EXPECT_EQ(started.count(t.id), 1u) << "ended without start " << t.id;
            EXPECT_TRUE(ended.insert(t.id).second) << "ended twice " << t.id;
            seen_dead.insert(t.id);
            EXPECT_EQ(live.count(t.id), 0u);
        }
    };
    std::uint64_t prev_max = 0;
    for (int frame = 0; frame < 400; ++frame) {
        if (u(rng) < 0.15f && faces.size() < 12) {
            faces.push_back({40 + 1200 * u(rng), 40 + 640 * u(rng), 6 * u(rng) - 3, 4 * u(rng) - 2,
                             30 + 60 * u(rng), frame + 10 + static_cast<int>(rng() % 80)});
        }
        std::erase_if(faces, [&](const Face& f) { return f.death <= frame; });
        if (frame % 2 == 1) {
            check(tracker->Predict());
            continue;
        }
        std::vector<Detection> dets;
        for (Face& f : faces) {
            f.x += 2 * f.vx;
            f.y += 2 * f.vy;
            if (u(rng) < 0.1f) {
                continue;  // missed detection
            }
            const float jitter = 2 * u(rng) - 1;
            dets.push_back({At(f.x + jitter, f.y - jitter, f.size, f.size * 1.2f),
                            u(rng) < 0.2f ? 0.3f : 0.9f});
        }
        if (u(rng) < 0.3f) {
            dets.push_back({At(1300 * u(rng), 700 * u(rng), 40, 40), 0.7f});  // false positive
        }
        std::shuffle(dets.begin(), dets.end(), rng);
        const TrackerStep step = tracker->Update(dets);
        check(step);
        for (const Track& t : step.tracks) {
            if (t.id > prev_max) {
                EXPECT_EQ(t.age, 0) << "a new id must be a new track";
            }
        }
        prev_max = max_id;
    }
    check(tracker->EndAll());
    EXPECT_EQ(started, ended);
    EXPECT_GT(started.size(), 20u);
}

}  // namespace
}  // namespace fg::track
