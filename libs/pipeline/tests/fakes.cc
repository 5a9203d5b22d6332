// SPDX-License-Identifier: Apache-2.0
#include "fakes.h"

#include <opencv2/imgproc.hpp>

namespace fg::pipeline::testing {
namespace {

/// Index of the palette colour nearest to `bgr`, or -1 when none is close.
int NearestColor(const cv::Scalar& bgr) {
    int best = -1;
    double best_d = 60.0 * 60.0 * 3;
    for (int i = 0; i < kPaletteSize; ++i) {
        const cv::Scalar c = PaletteColor(i);
        double d = 0;
        for (int k = 0; k < 3; ++k) d += (c[k] - bgr[k]) * (c[k] - bgr[k]);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    return best;
}

class FakeDetector final : public vision::Detector {
  public:
    FakeDetector(const FakeModels& owner, float threshold) : owner_(owner), threshold_(threshold) {}
    Result<std::vector<vision::FaceDetection>> Detect(const cv::Mat& bgr) override {
        ++owner_.detector_runs;
        if (owner_.throw_on_pixel && cv::norm(cv::Vec3i(bgr.at<cv::Vec3b>(4, 4)) -
                                              cv::Vec3i(*owner_.throw_on_pixel), cv::NORM_L1) < 90) {
            throw cv::Exception(cv::Error::StsError, "fake failure", "Detect", __FILE__, __LINE__);
        }
        std::vector<vision::FaceDetection> out;
        if (0.9f < threshold_) return out;  // every fake face scores 0.9
        for (int i = 0; i < kPaletteSize; ++i) {
            const cv::Scalar c = PaletteColor(i);
            cv::Mat mask;
            cv::inRange(bgr, c - cv::Scalar(50, 50, 50), c + cv::Scalar(50, 50, 50), mask);
            if (cv::countNonZero(mask) < 100) continue;
            const cv::Rect r = cv::boundingRect(mask);
            vision::FaceDetection d;
            d.box = {float(r.x), float(r.y), float(r.width), float(r.height)};
            d.score = 0.9f;
            const float cx = d.box.x + d.box.width / 2, cy = d.box.y + d.box.height / 2;
            const float w = d.box.width / 4;
            d.landmarks = {Point2f{cx - w, cy - w}, Point2f{cx + w, cy - w}, Point2f{cx, cy},
                           Point2f{cx - w, cy + w}, Point2f{cx + w, cy + w}};
            out.push_back(d);
        }
        return out;
    }
    const vision::DetectorInfo& info() const override { return info_; }

  private:
    const FakeModels& owner_;
    float threshold_;
    vision::DetectorInfo info_{"fake-detector", "fake", 320, 240};
};

class FakeEmbedder final : public vision::Embedder {
  public:
    explicit FakeEmbedder(const FakeModels& owner) : owner_(owner) {}
    Status Embed(std::span<const cv::Mat> faces, std::vector<vision::Embedding>& out) override {
        out.clear();
        for (const cv::Mat& f : faces) {
            if (f.empty() || f.type() != CV_8UC3) return InvalidArgument("fake embedder: bad crop");
            const int c = NearestColor(cv::mean(f));
            out.push_back({"fake-embedder", c < 0 ? std::vector<float>(kPaletteSize, 0.5f) : OneHot(c)});
            ++owner_.embedded;
        }
        return Status::Ok();
    }
    const vision::EmbedderInfo& info() const override { return info_; }

  private:
    const FakeModels& owner_;
    vision::EmbedderInfo info_{.model_id = "fake-embedder", .dim = kPaletteSize, .input_size = 16};
};

class FakeLiveness final : public vision::LivenessChecker {
  public:
    FakeLiveness(std::set<int> spoofs, float threshold) : spoofs_(std::move(spoofs)), threshold_(threshold) {}
    Result<vision::LivenessResult> Check(const cv::Mat& bgr, const vision::FaceDetection& face) override {
        const cv::Rect r = cv::Rect(int(face.box.x), int(face.box.y), int(face.box.width), int(face.box.height)) &
                           cv::Rect(0, 0, bgr.cols, bgr.rows);
        const int c = NearestColor(cv::mean(bgr(r)));
        vision::LivenessResult out;
        out.score = spoofs_.count(c) ? 0.1f : 0.9f;
        out.live = out.score >= threshold_;
        return out;
    }
    Status CheckBatch(const cv::Mat& bgr, std::span<const vision::FaceDetection> faces,
                      std::vector<vision::LivenessResult>& out) override {
        out.clear();
        for (const auto& f : faces) {
            FG_ASSIGN_OR_RETURN(vision::LivenessResult r, Check(bgr, f));
            out.push_back(r);
        }
        return Status::Ok();
    }
    const vision::LivenessInfo& info() const override { return info_; }
    float threshold() const override { return threshold_; }

  private:
    std::set<int> spoofs_;
    float threshold_;
    vision::LivenessInfo info_{"fake", {"fake-liveness"}, {1.f}};
};

}  // namespace

cv::Scalar PaletteColor(int i) {
    static const cv::Scalar kColors[kPaletteSize] = {
        {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    return kColors[i % kPaletteSize];
}

cv::Mat DrawFrame(const std::vector<Square>& squares, cv::Size size) {
    cv::Mat m(size, CV_8UC3, cv::Scalar(0, 0, 0));
    for (const Square& s : squares) {
        cv::rectangle(m, cv::Rect(s.x, s.y, s.side, s.side), PaletteColor(s.color), cv::FILLED);
    }
    return m;
}

stream::Frame MakeFrame(const std::vector<Square>& squares, std::uint64_t sequence,
                        std::int64_t media_ms) {
    stream::Frame f;
    f.source_id = "cam";
    f.image = DrawFrame(squares);
    f.sequence = sequence;
    f.capture_time = std::chrono::steady_clock::now();
    f.media_time = std::chrono::microseconds(media_ms * 1000);
    return f;
}

std::vector<float> OneHot(int color) {
    std::vector<float> v(kPaletteSize, 0.f);
    v[static_cast<std::size_t>(color)] = 1.f;
    return v;
}

Result<std::unique_ptr<vision::Detector>> FakeModels::CreateDetector(float score_threshold) const {
    last_detector_threshold = score_threshold;
    return std::unique_ptr<vision::Detector>(std::make_unique<FakeDetector>(*this, score_threshold));
}

Result<std::unique_ptr<vision::Embedder>> FakeModels::CreateEmbedder() const {
    return std::unique_ptr<vision::Embedder>(std::make_unique<FakeEmbedder>(*this));
}

Result<std::unique_ptr<vision::LivenessChecker>> FakeModels::CreateLivenessChecker(std::string_view,
                                                                                   float threshold) const {
    return std::unique_ptr<vision::LivenessChecker>(std::make_unique<FakeLiveness>(spoof_colors, threshold));
}

Result<AssessedCrop> FakeModels::AlignAndAssess(const cv::Mat& bgr, const vision::FaceDetection& face) const {
    const cv::Rect r = cv::Rect(int(face.box.x), int(face.box.y), int(face.box.width), int(face.box.height)) &
                       cv::Rect(0, 0, bgr.cols, bgr.rows);
    if (r.empty()) return InvalidArgument("fake align: box outside the image");
    AssessedCrop c;
    cv::resize(bgr(r), c.aligned, cv::Size(16, 16));
    c.quality.score = quality;
    c.quality.detector_score = face.score;
    return c;
}

Result<IdentityVerdict> FakeIdentifier::Identify(const Embedding& probe) const {
    IdentityVerdict v;
    float best = -1, second = -1;
    std::string who;
    for (const auto& [subject, color] : subjects_) {
        const float s = Dot(probe.values, OneHot(color));
        if (s > best) {
            second = best;
            best = s;
            who = subject;
        } else if (s > second) {
            second = s;
        }
    }
    if (best < 0) return v;  // empty gallery
    v.score = best;
    v.margin = second < 0 ? best : best - second;
    v.display_name = who;
    v.known = best >= 0.5f;
    if (v.known) v.subject_id = who;
    return v;
}

}  // namespace fg::pipeline::testing
