// SPDX-License-Identifier: Apache-2.0
// The Recorder: stream threads queue decisions; one thread encodes the crop and stores them.
#include <opencv2/imgcodecs.hpp>

#include "fg/audit/audit_log.h"
#include "fg/base/log.h"
#include "fg/events/event.h"
#include "fg/history/history.h"

namespace fg::history {

struct Recorder::Item {
    SightingInput in;
    cv::Mat crop;  // shared with the recognizer, encoded here (off the stream thread)
    // The recognizer's JPEG of the same crop when best_shot_crops is on: decoded rather than
    // encoded a second time (both are quality 90; a base64 decode costs ~1/20 of an encode).
    std::string jpeg_base64;
};

Recorder::Recorder(std::shared_ptr<HistoryStore> store, Callback on_stored, std::size_t queue)
    : store_(std::move(store)), on_stored_(std::move(on_stored)), capacity_(std::max<std::size_t>(queue, 1)) {
    thread_ = std::thread([this] { Run(); });
}

Recorder::~Recorder() { Stop(); }

void Recorder::OnDecision(const std::string& stream, const pipeline::Outcome& o) {
    auto item = std::make_unique<Item>();
    SightingInput& in = item->in;
    in.time_ms = o.capture_unix_ms;
    in.stream = stream;
    in.track = static_cast<std::int64_t>(o.track_id);
    switch (o.kind) {
        case pipeline::Outcome::Kind::kRecognized:
            in.outcome = Outcome::kKnown;
            in.subject_id = o.verdict.subject_id;
            in.display_name = o.verdict.display_name;
            break;
        case pipeline::Outcome::Kind::kUnknown: in.outcome = Outcome::kUnknown; break;
        case pipeline::Outcome::Kind::kSpoof: in.outcome = Outcome::kSpoof; break;
    }
    in.score = o.verdict.score;
    in.margin = o.verdict.margin;
    if (o.liveness.checked) in.liveness = o.liveness.score;
    in.quality = o.best_quality;
    in.embedding = o.fused_embedding;
    if (store_->options().keep_crops) {
        if (!o.best_shot_jpeg_base64.empty()) item->jpeg_base64 = o.best_shot_jpeg_base64;
        else item->crop = o.best_shot;
    }
    std::lock_guard lock(mu_);
    if (stop_ || queue_.size() >= capacity_) {
        ++dropped_;
        return;
    }
    queue_.push_back(std::move(item));
    cv_.notify_one();
}

void Recorder::Run() {
    for (;;) {
        std::unique_ptr<Item> item;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, and everything queued is stored
            item = std::move(queue_.front());
            queue_.pop_front();
        }
        if (!item->jpeg_base64.empty()) {
            Result<std::vector<std::uint8_t>> jpeg = events::Base64Decode(item->jpeg_base64);
            if (jpeg.ok()) item->in.crop_jpeg = std::move(*jpeg);
            item->jpeg_base64.clear();
        } else if (!item->crop.empty()) {
            std::vector<uchar> buf;
            if (cv::imencode(".jpg", item->crop, buf, {cv::IMWRITE_JPEG_QUALITY, 90})) {
                item->in.crop_jpeg.assign(buf.begin(), buf.end());
            }
            item->crop.release();
        }
        Result<Sighting> s = store_->Record(item->in);
        if (!s.ok()) {
            ++failed_;
            spdlog::warn("history: decision of stream '{}' not stored: {}", item->in.stream, s.status().ToString());
            continue;
        }
        ++recorded_;
        if (s->id != 0 && on_stored_) on_stored_(*s);
    }
}

void Recorder::Stop() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

nlohmann::json ToJson(const Sighting& s) {
    using nlohmann::json;
    auto opt = [](const std::string& v) { return v.empty() ? json(nullptr) : json(v); };
    return {{"id", s.id},
            {"time", FormatTime(s.time_ms)},
            {"time_ms", s.time_ms},
            {"stream", s.stream},
            {"track", s.track},
            {"outcome", OutcomeName(s.outcome)},
            {"subject_id", opt(s.subject_id)},
            {"display_name", opt(s.display_name)},
            {"score", s.score},
            {"margin", s.margin},
            {"liveness", s.liveness ? json(*s.liveness) : json(nullptr)},
            {"stranger_id", s.stranger_id ? json(*s.stranger_id) : json(nullptr)},
            {"has_crop", s.has_crop}};
}

nlohmann::json ToJson(const Stranger& s) {
    return {{"id", s.id},
            {"first_seen", FormatTime(s.first_seen_ms)},
            {"last_seen", FormatTime(s.last_seen_ms)},
            {"sightings", s.sightings},
            {"streams", s.streams},
            {"best_sighting_id", s.best_sighting_id}};
}

std::string FormatTime(std::int64_t unix_ms) { return audit::FormatTime(unix_ms); }

Result<std::int64_t> ParseTime(std::string_view s) {
    if (s.empty()) return InvalidArgument("empty time");
    if (s.size() <= 16 && s.find_first_not_of("0123456789") == std::string_view::npos) {
        return std::stoll(std::string(s));  // unix milliseconds
    }
    if (s.find_first_not_of("0123456789") == std::string_view::npos) {
        return InvalidArgument("time '" + std::string(s) + "': too many digits for unix milliseconds");
    }
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    return audit::ParseTime(s, now);
}

}  // namespace fg::history
