// SPDX-License-Identifier: Apache-2.0
#include "fg/track/tracker.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "assignment.h"
#include "fg/track/kalman_filter.h"

namespace fg::track {

float IoU(const Rect2f& a, const Rect2f& b) {
    const float iw = std::min(a.right(), b.right()) - std::max(a.x, b.x);
    const float ih = std::min(a.bottom(), b.bottom()) - std::max(a.y, b.y);
    if (iw <= 0 || ih <= 0) {
        return 0.0f;
    }
    const float inter = iw * ih;
    const float uni = a.area() + b.area() - inter;
    return uni > 0 ? inter / uni : 0.0f;
}

std::string_view TrackStateName(TrackState state) {
    switch (state) {
        case TrackState::kTentative:
            return "tentative";
        case TrackState::kConfirmed:
            return "confirmed";
        case TrackState::kLost:
            return "lost";
    }
    return "unknown";
}

namespace {

bool InUnit(float v) { return std::isfinite(v) && v >= 0 && v <= 1; }

Status Field(const std::string& name, const std::string& what) {
    return InvalidArgument("tracker config: " + name + " " + what);
}

}  // namespace

Status TrackerConfig::Validate() const {
    if (!InUnit(high_thresh)) {
        return Field("high_thresh", "must be in [0, 1]");
    }
    if (!InUnit(low_thresh) || low_thresh > high_thresh) {
        return Field("low_thresh", "must be in [0, high_thresh]");
    }
    if (!InUnit(new_track_thresh) || new_track_thresh < high_thresh) {
        return Field("new_track_thresh", "must be in [high_thresh, 1]");
    }
    if (!std::isfinite(match_iou) || match_iou <= 0 || match_iou > 1) {
        return Field("match_iou", "must be in (0, 1]");
    }
    if (!std::isfinite(low_match_iou) || low_match_iou <= 0 || low_match_iou > 1) {
        return Field("low_match_iou", "must be in (0, 1]");
    }
    if (min_hits < 1) {
        return Field("min_hits", "must be >= 1");
    }
    if (max_lost_frames < 0) {
        return Field("max_lost_frames", "must be >= 0");
    }
    if (!std::isfinite(std_weight_position) || std_weight_position <= 0) {
        return Field("std_weight_position", "must be > 0");
    }
    if (!std::isfinite(std_weight_velocity) || std_weight_velocity <= 0) {
        return Field("std_weight_velocity", "must be > 0");
    }
    return Status::Ok();
}

struct Tracker::Impl {
    struct State {
        std::uint64_t id;
        BoxKalmanFilter kf;
        float score;
        TrackState state;
        bool ever_confirmed;
        int age;
        int hits;
        int frames_since_match;
        int detection_index;
        std::int64_t start_frame;
    };

    explicit Impl(const TrackerConfig& c) : config(c) {}

    TrackerConfig config;
    std::vector<State> tracks;  // ordered by id (appended on creation, erased in place)
    std::uint64_t next_id = 1;
    std::int64_t frame = 0;

    static Track Snapshot(const State& s) {
        return Track{
            .id = s.id,
            .box = s.kf.box(),
            .score = s.score,
            .state = s.state,
            .ever_confirmed = s.ever_confirmed,
            .age = s.age,
            .hits = s.hits,
            .frames_since_match = s.frames_since_match,
            .detection_index = s.detection_index,
            .start_frame = s.start_frame,
        };
    }

    std::vector<Track> Snapshots() const {
        std::vector<Track> out;
        out.reserve(tracks.size());
        for (const State& s : tracks) {
            out.push_back(Snapshot(s));
        }
        return out;
    }

    // Step 0 of both Predict and Update: one frame passes for every track.
    void AdvanceAll() {
        ++frame;
        for (State& s : tracks) {
            if (s.state == TrackState::kLost) {
                s.kf.FreezeSize();  // an unseen face keeps its size; drifting size only hurts
            }
            s.kf.Predict();
            ++s.age;
            ++s.frames_since_match;
            s.detection_index = -1;
        }
    }

    void Match(State& s, const Detection& d, int index, TrackerStep& step) {
        s.kf.Update(d.box);
        s.score = d.score;
        ++s.hits;
        s.frames_since_match = 0;
        s.detection_index = index;
        if (s.state == TrackState::kLost) {
            s.state = TrackState::kConfirmed;
        } else if (s.state == TrackState::kTentative && s.hits >= config.min_hits) {
            Confirm(s, step);
        }
    }

    static void Confirm(State& s, TrackerStep& step) {
        s.state = TrackState::kConfirmed;
        if (!s.ever_confirmed) {
            s.ever_confirmed = true;
            step.started.push_back(Snapshot(s));
        }
    }

    // Associates the given tracks with the given detections by IoU >= min_iou; marks both sides
    // used and applies the matches. Tracks and detections are indices into `tracks` / `dets`.
    void Associate(
        const std::vector<int>& track_idx,
        const std::vector<int>& det_idx,
        std::span<const Detection> dets,
        float min_iou,
        std::vector<char>& track_used,
        std::vector<char>& det_used,
        TrackerStep& step) {
        if (track_idx.empty() || det_idx.empty()) {
            return;
        }
        const int rows = static_cast<int>(track_idx.size());
        const int cols = static_cast<int>(det_idx.size());
        std::vector<Rect2f> predicted(rows);
        for (int r = 0; r < rows; ++r) {
            predicted[r] = tracks[track_idx[r]].kf.box();
        }
        std::vector<float> cost(static_cast<size_t>(rows) * cols);
        for (int r = 0; r < rows; ++r) {
            for (int c = 0; c < cols; ++c) {
                cost[static_cast<size_t>(r) * cols + c] = 1.0f - IoU(predicted[r], dets[det_idx[c]].box);
            }
        }
        for (const auto& [r, c] : internal::MinCostAssignment(cost, rows, cols, 1.0f - min_iou)) {
            const int t = track_idx[r];
            const int d = det_idx[c];
            Match(tracks[t], dets[d], d, step);
            track_used[t] = 1;
            det_used[d] = 1;
        }
    }

    void RemoveExpired(TrackerStep& step) {
        std::erase_if(tracks, [&](const State& s) {
            if (s.frames_since_match <= config.max_lost_frames) {
                return false;
            }
            if (s.ever_confirmed) {
                step.ended.push_back(Snapshot(s));
            }
            return true;
        });
    }

    TrackerStep Update(std::span<const Detection> dets) {
        TrackerStep step;
        AdvanceAll();

        // Detections with a non-finite score or an empty/non-finite box are ignored.
        std::vector<int> high;
        std::vector<int> low;
        for (int i = 0; i < static_cast<int>(dets.size()); ++i) {
            const Detection& d = dets[i];
            const bool finite = std::isfinite(d.score) && std::isfinite(d.box.x) &&
                                std::isfinite(d.box.y) && std::isfinite(d.box.width) &&
                                std::isfinite(d.box.height);
            if (!finite || d.box.area() <= 0) {
                continue;
            }
            if (d.score >= config.high_thresh) {
                high.push_back(i);
            } else if (d.score >= config.low_thresh) {
                low.push_back(i);
            }
        }

        std::vector<char> track_used(tracks.size(), 0);
        std::vector<char> det_used(dets.size(), 0);
        auto tracks_where = [&](auto pred) {
            std::vector<int> out;
            for (int t = 0; t < static_cast<int>(tracks.size()); ++t) {
                if (!track_used[t] && pred(tracks[t])) {
                    out.push_back(t);
                }
            }
            return out;
        };
        auto unused = [&](const std::vector<int>& idx) {
            std::vector<int> out;
            for (int d : idx) {
                if (!det_used[d]) {
                    out.push_back(d);
                }
            }
            return out;
        };

        // 1. High-score detections vs confirmed and lost tracks.
        const std::vector<int> established =
            tracks_where([](const State& s) { return s.state != TrackState::kTentative; });
        Associate(established, high, dets, config.match_iou, track_used, det_used, step);
        // 2. Low-score detections keep the remaining confirmed (not lost) tracks alive.
        const std::vector<int> tracked =
            tracks_where([](const State& s) { return s.state == TrackState::kConfirmed; });
        Associate(tracked, low, dets, config.low_match_iou, track_used, det_used, step);
        // 3. Remaining high-score detections vs tentative tracks.
        const std::vector<int> tentative =
            tracks_where([](const State& s) { return s.state == TrackState::kTentative; });
        Associate(tentative, unused(high), dets, config.match_iou, track_used, det_used, step);

        // 4. Unmatched: confirmed -> lost; tentative -> gone (it failed to repeat).
        for (int t = 0; t < static_cast<int>(tracks.size()); ++t) {
            if (!track_used[t] && tracks[t].state == TrackState::kConfirmed) {
                tracks[t].state = TrackState::kLost;
            }
        }
        size_t kept = 0;
        for (size_t t = 0; t < tracks.size(); ++t) {
            if (track_used[t] || tracks[t].state != TrackState::kTentative) {
                if (kept != t) {
                    tracks[kept] = std::move(tracks[t]);
                }
                ++kept;
            }
        }
        tracks.erase(tracks.begin() + static_cast<std::ptrdiff_t>(kept), tracks.end());

        // 5. New tracks from confident unmatched detections, in detection order.
        for (int d : unused(high)) {
            if (dets[d].score < config.new_track_thresh) {
                continue;
            }
            State s{
                .id = next_id++,
                .kf = BoxKalmanFilter(config.std_weight_position, config.std_weight_velocity),
                .score = dets[d].score,
                .state = TrackState::kTentative,
                .ever_confirmed = false,
                .age = 0,
                .hits = 1,
                .frames_since_match = 0,
                .detection_index = d,
                .start_frame = frame,
            };
            s.kf.Initiate(dets[d].box);
            if (s.hits >= config.min_hits) {
                Confirm(s, step);
            }
            tracks.push_back(std::move(s));
        }

        // 6. Tracks unmatched for too long.
        RemoveExpired(step);
        step.tracks = Snapshots();
        return step;
    }

    TrackerStep Predict() {
        TrackerStep step;
        AdvanceAll();
        RemoveExpired(step);
        step.tracks = Snapshots();
        return step;
    }

    TrackerStep EndAll() {
        TrackerStep step;
        for (const State& s : tracks) {
            if (s.ever_confirmed) {
                step.ended.push_back(Snapshot(s));
            }
        }
        tracks.clear();
        return step;
    }
};

Result<std::unique_ptr<Tracker>> Tracker::Create(const TrackerConfig& config) {
    FG_RETURN_IF_ERROR(config.Validate());
    return std::unique_ptr<Tracker>(new Tracker(config));
}

Tracker::Tracker(const TrackerConfig& config) : impl_(std::make_unique<Impl>(config)) {}
Tracker::~Tracker() = default;

TrackerStep Tracker::Predict() { return impl_->Predict(); }
TrackerStep Tracker::Update(std::span<const Detection> detections) {
    return impl_->Update(detections);
}
TrackerStep Tracker::EndAll() { return impl_->EndAll(); }
std::vector<Track> Tracker::tracks() const { return impl_->Snapshots(); }
std::int64_t Tracker::frame() const { return impl_->frame; }
const TrackerConfig& Tracker::config() const { return impl_->config; }

}  // namespace fg::track
