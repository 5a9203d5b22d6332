// SPDX-License-Identifier: Apache-2.0
#include "fg/stream/motion_gate.h"

#include <random>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

namespace fg::stream {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr microseconds kFrameStep{40000};  // 25 fps

/// A textured static scene (gradients + fixed noise), with a fixed seed for repeatability.
cv::Mat Scene(cv::Size size = {640, 360}, unsigned seed = 7767517) {
    cv::Mat scene(size, CV_8UC3);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> noise(-12, 12);
    for (int y = 0; y < scene.rows; ++y) {
        for (int x = 0; x < scene.cols; ++x) {
            const int base = 60 + (x * 120) / scene.cols + (y * 40) / scene.rows;
            const int v = std::clamp(base + noise(rng), 0, 255);
            scene.at<cv::Vec3b>(y, x) =
                cv::Vec3b(v, static_cast<uchar>(v * 0.9), static_cast<uchar>(v * 0.8));
        }
    }
    return scene;
}

/// The scene with per-frame sensor noise (sigma 3 grey levels; cv::theRNG's fixed seed).
cv::Mat Noisy(const cv::Mat& scene) {
    cv::Mat noise(scene.size(), CV_16SC3);
    cv::randn(noise, 0, 3);
    cv::Mat out;
    scene.convertTo(out, CV_16SC3);
    out += noise;
    out.convertTo(out, CV_8UC3);
    return out;
}

MotionGate MakeGate(MotionGateConfig config = {}) {
    auto gate = MotionGate::Create(config);
    EXPECT_TRUE(gate.ok()) << gate.status().ToString();
    return std::move(gate).value();
}

TEST(MotionGateTest, ValidateNamesTheField) {
    EXPECT_NE(MotionGate::Create({.width = 4}).status().message().find("width"), std::string::npos);
    EXPECT_NE(MotionGate::Create({.blur = 4}).status().message().find("blur"), std::string::npos);
    EXPECT_NE(
        MotionGate::Create({.min_changed_share = 2.0}).status().message().find("min_changed_share"),
        std::string::npos);
    EXPECT_NE(MotionGate::Create({.background_rate = 0}).status().message().find("background_rate"),
              std::string::npos);
    EXPECT_TRUE(MotionGate::Create({}).ok());
}

TEST(MotionGateTest, StaticSceneIsGatedAfterTheFirstFrame) {
    MotionGate gate = MakeGate({.max_interval = milliseconds(0)});
    const cv::Mat scene = Scene();
    const std::vector<cv::Mat> noisy = {Noisy(scene), Noisy(scene), Noisy(scene), Noisy(scene)};
    EXPECT_EQ(gate.Update(noisy[0], microseconds(0)).reason, GateReason::kFirstFrame);
    for (int i = 1; i < 50; ++i) {
        const GateDecision d = gate.Update(noisy[i % 4], kFrameStep * i);
        EXPECT_FALSE(d.pass) << "frame " << i << " share " << d.changed_share;
        EXPECT_EQ(d.reason, GateReason::kStatic);
    }
    EXPECT_EQ(gate.stats().frames_seen, 50u);
    EXPECT_EQ(gate.stats().frames_gated, 49u);
    EXPECT_NEAR(gate.stats().gated_share(), 0.98, 1e-9);
}

TEST(MotionGateTest, MovingBlockPassesWithItsBox) {
    MotionGate gate = MakeGate({.max_interval = milliseconds(0)});
    const cv::Mat scene = Scene();
    gate.Update(scene, microseconds(0));
    for (int i = 1; i < 20; ++i) {
        cv::Mat frame = scene.clone();
        const cv::Rect block(100 + i * 12, 150, 48, 48);  // about a face at this size
        cv::rectangle(frame, block, cv::Scalar(220, 200, 190), cv::FILLED);
        const GateDecision d = gate.Update(frame, kFrameStep * i);
        EXPECT_TRUE(d.pass) << "frame " << i << " share " << d.changed_share;
        EXPECT_EQ(d.reason, GateReason::kMotion);
        // The box covers the block (its full-resolution coordinates), within a few pixels.
        EXPECT_EQ((d.motion_box & block).area(), block.area()) << d.motion_box;
        EXPECT_LT(d.motion_box.area(), 640 * 360 / 4);
    }
    EXPECT_EQ(gate.stats().frames_gated, 0u);
}

TEST(MotionGateTest, StillPersonIsAbsorbedThenMaxIntervalForcesPasses) {
    MotionGate gate = MakeGate({.max_interval_frames = 10, .max_interval = milliseconds(0)});
    const cv::Mat scene = Scene();
    cv::Mat with_person = scene.clone();
    cv::rectangle(with_person, cv::Rect(300, 100, 60, 80), cv::Scalar(200, 180, 170), cv::FILLED);
    gate.Update(scene, microseconds(0));
    // The person appears and then stands still: motion first, then absorbed by the background.
    int forced = 0;
    int motion = 0;
    int last_pass = 0;
    for (int i = 1; i <= 200; ++i) {
        const GateDecision d = gate.Update(with_person, kFrameStep * i);
        if (d.reason == GateReason::kMotion) {
            ++motion;
        }
        if (d.reason == GateReason::kMaxInterval) {
            ++forced;
            EXPECT_EQ(i - last_pass, 10)
                << "forced pass exactly max_interval_frames after the last";
        }
        if (d.pass) {
            last_pass = i;
        }
    }
    EXPECT_GT(motion, 0);
    EXPECT_GE(forced, 10);  // the still person is still looked at every 10 frames
    EXPECT_EQ(gate.stats().forced_passes, static_cast<std::uint64_t>(forced));
}

TEST(MotionGateTest, MaxIntervalInTime) {
    MotionGate gate = MakeGate({.max_interval = milliseconds(1000)});
    const cv::Mat scene = Scene();
    gate.Update(scene, microseconds(0));
    int forced = 0;
    for (int i = 1; i <= 100; ++i) {  // 4 s at 25 fps
        const GateDecision d = gate.Update(scene, kFrameStep * i);
        if (d.pass) {
            EXPECT_EQ(d.reason, GateReason::kMaxInterval);
            EXPECT_EQ(i % 25, 0) << "forced once per second of timestamps";
            ++forced;
        }
    }
    EXPECT_EQ(forced, 4);
    // Timestamps that restart (a reconnect) do not leave the gate waiting for the old clock.
    EXPECT_FALSE(gate.Update(scene, microseconds(0)).pass);
    EXPECT_TRUE(gate.Update(scene, microseconds(1000000)).pass);
}

TEST(MotionGateTest, GlobalBrightnessFlickerIsGated) {
    MotionGate gate = MakeGate({.max_interval = milliseconds(0)});
    const cv::Mat scene = Scene();
    gate.Update(scene, microseconds(0));
    for (int i = 1; i < 60; ++i) {
        // +-15 % brightness swings (mains flicker, auto exposure hunting).
        const double gain = 1.0 + 0.15 * ((i % 2) ? 1 : -1) * ((i % 3) + 1) / 3.0;
        cv::Mat frame;
        scene.convertTo(frame, -1, gain, 0);
        const GateDecision d = gate.Update(frame, kFrameStep * i);
        EXPECT_FALSE(d.pass) << "frame " << i << " gain " << gain << " share " << d.changed_share;
    }
    // Without compensation the same flicker passes: the option is what makes it robust.
    MotionGate raw = MakeGate({.compensate_brightness = false, .max_interval = milliseconds(0)});
    raw.Update(scene, microseconds(0));
    cv::Mat bright;
    scene.convertTo(bright, -1, 1.15, 0);
    EXPECT_TRUE(raw.Update(bright, kFrameStep).pass);
}

TEST(MotionGateTest, SizeChangeAndResetRestart) {
    MotionGate gate = MakeGate({.max_interval = milliseconds(0)});
    const cv::Mat scene = Scene();
    gate.Update(scene, microseconds(0));
    EXPECT_FALSE(gate.Update(scene, kFrameStep).pass);
    cv::Mat smaller;
    cv::resize(scene, smaller, cv::Size(320, 180));
    EXPECT_EQ(gate.Update(smaller, kFrameStep * 2).reason, GateReason::kFirstFrame);
    EXPECT_FALSE(gate.Update(smaller, kFrameStep * 3).pass);
    gate.Reset();
    EXPECT_EQ(gate.Update(smaller, kFrameStep * 4).reason, GateReason::kFirstFrame);
}

TEST(MotionGateTest, FrameOverloadResetsOnNewGeneration) {
    MotionGate gate = MakeGate({.max_interval = milliseconds(0)});
    Frame frame;
    frame.image = Scene();
    frame.media_time = microseconds(0);
    EXPECT_TRUE(gate.Update(frame).pass);
    frame.media_time = kFrameStep;
    EXPECT_FALSE(gate.Update(frame).pass);
    frame.generation = 1;  // reconnected: the background may be stale
    frame.media_time = microseconds(0);
    EXPECT_EQ(gate.Update(frame).reason, GateReason::kFirstFrame);
}

TEST(MotionGateTest, FullHdUsesTheSampledDownscale) {
    // 1080p takes the sample-then-average path: noise must still be gated and a face-sized
    // block still found.
    MotionGate gate = MakeGate({.max_interval = milliseconds(0)});
    const cv::Mat scene = Scene({1920, 1080});
    const std::vector<cv::Mat> noisy = {Noisy(scene), Noisy(scene), Noisy(scene)};
    gate.Update(noisy[0], microseconds(0));
    for (int i = 1; i < 12; ++i) {
        EXPECT_FALSE(gate.Update(noisy[i % 3], kFrameStep * i).pass) << "frame " << i;
    }
    for (int i = 12; i < 20; ++i) {
        cv::Mat frame = noisy[i % 3].clone();
        const cv::Rect face(400 + i * 30, 500, 80, 100);
        cv::rectangle(frame, face, cv::Scalar(210, 190, 180), cv::FILLED);
        const GateDecision d = gate.Update(frame, kFrameStep * i);
        EXPECT_TRUE(d.pass) << "frame " << i << " share " << d.changed_share;
        EXPECT_EQ((d.motion_box & face).area(), face.area()) << d.motion_box;
    }
}

TEST(MotionGateTest, GreyInputAccepted) {
    MotionGate gate = MakeGate({.max_interval = milliseconds(0)});
    cv::Mat grey;
    cv::cvtColor(Scene(), grey, cv::COLOR_BGR2GRAY);
    gate.Update(grey, microseconds(0));
    EXPECT_FALSE(gate.Update(grey, kFrameStep).pass);
}

}  // namespace
}  // namespace fg::stream
