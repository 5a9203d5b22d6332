// SPDX-License-Identifier: Apache-2.0
#include "runtime.h"

#include <algorithm>

#include "fg/vision/engine.h"

namespace fg::api {

Broadcaster::Broadcaster(std::shared_ptr<EventHub> hub, std::shared_ptr<LiveView> live,
                         const ApiOptions& options)
    : hub_(std::move(hub)), live_(std::move(live)), options_(options), thread_([this] { Run(); }) {}

Broadcaster::~Broadcaster() { Stop(); }

void Broadcaster::Stop() {
    std::vector<Sse> sse;
    std::vector<Mjpeg> mjpeg;
    {
        std::lock_guard lock(mu_);
        stop_ = true;
        sse.swap(sse_);
        mjpeg.swap(mjpeg_);
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    for (auto& c : sse) {
        if (hub_) hub_->Unsubscribe(c.subscription);
        c.writer->Close();
    }
    for (auto& c : mjpeg) c.writer->Close();
}

bool Broadcaster::AddSse(std::shared_ptr<server::StreamWriter> writer, std::uint64_t subscription) {
    std::lock_guard lock(mu_);
    if (stop_ || sse_.size() >= static_cast<std::size_t>(options_.max_sse_clients)) return false;
    sse_.push_back({std::move(writer), subscription});
    return true;
}

bool Broadcaster::AddMjpeg(std::shared_ptr<server::StreamWriter> writer, std::string stream_id) {
    {
        std::lock_guard lock(mu_);
        if (stop_ || mjpeg_.size() >= static_cast<std::size_t>(options_.max_mjpeg_clients)) return false;
        mjpeg_.push_back({std::move(writer), std::move(stream_id)});
    }
    cv_.notify_all();  // send the first frame now
    return true;
}

std::size_t Broadcaster::sse_clients() const {
    std::lock_guard lock(mu_);
    return sse_.size();
}

std::size_t Broadcaster::mjpeg_clients() const {
    std::lock_guard lock(mu_);
    return mjpeg_.size();
}

void Broadcaster::Run() {
    using Clock = std::chrono::steady_clock;
    const auto frame_period = std::chrono::milliseconds(
        static_cast<long>(1000.0 / std::max(options_.mjpeg_fps, 0.1)));
    const auto heartbeat = std::max(options_.heartbeat, std::chrono::milliseconds(10));
    auto next_heartbeat = Clock::now() + heartbeat;
    std::unique_lock lock(mu_);
    while (!stop_) {
        const auto wake = mjpeg_.empty() ? next_heartbeat : std::min(next_heartbeat, Clock::now() + frame_period);
        cv_.wait_until(lock, wake);
        if (stop_) break;
        if (Clock::now() >= next_heartbeat) {
            next_heartbeat = Clock::now() + heartbeat;
            for (auto it = sse_.begin(); it != sse_.end();) {
                if (!it->writer->Open() || !it->writer->Write(": heartbeat\n\n")) {
                    if (hub_) hub_->Unsubscribe(it->subscription);
                    it = sse_.erase(it);
                } else {
                    ++it;
                }
            }
        }
        // MJPEG: encode each stream once per period (LiveView caches), outside the lock.
        std::vector<Mjpeg> clients = mjpeg_;
        lock.unlock();
        std::vector<std::shared_ptr<server::StreamWriter>> gone;
        std::map<std::string, std::uint64_t> sent;
        for (Mjpeg& c : clients) {
            if (!c.writer->Open()) {
                gone.push_back(c.writer);
                continue;
            }
            if (!live_ || live_->version(c.stream_id) == c.sent_version) continue;
            Result<LiveView::Jpeg> jpeg = live_->Latest(c.stream_id);
            if (!jpeg.ok()) continue;
            std::string part = std::string("--") + kMjpegBoundary +
                               "\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                               std::to_string(jpeg->bytes.size()) + "\r\n\r\n" + jpeg->bytes + "\r\n";
            if (!c.writer->Write(std::move(part))) gone.push_back(c.writer);
            sent[c.stream_id] = jpeg->version;
        }
        lock.lock();
        for (auto it = mjpeg_.begin(); it != mjpeg_.end();) {
            if (std::find(gone.begin(), gone.end(), it->writer) != gone.end()) {
                it = mjpeg_.erase(it);
                continue;
            }
            if (auto s = sent.find(it->stream_id); s != sent.end()) it->sent_version = s->second;
            ++it;
        }
    }
}

ApiRuntime::ApiRuntime(ApiContext& ctx)
    : workers([&ctx]() -> Result<std::unique_ptr<vision::Worker>> {
          if (!ctx.engine) return Unavailable("no engine loaded");
          return ctx.engine->CreateWorker();
      }),
      liveness([&ctx]() -> Result<std::unique_ptr<vision::LivenessChecker>> {
          if (!ctx.engine) return Unavailable("no engine loaded");
          FG_ASSIGN_OR_RETURN(auto model, ctx.engine->Liveness(ctx.options.liveness_preset));
          return model->CreateChecker({.threshold = ctx.options.liveness_threshold});
      }),
      attributes([&ctx]() -> Result<std::unique_ptr<vision::AttributeEstimator>> {
          if (!ctx.engine) return Unavailable("no engine loaded");
          FG_ASSIGN_OR_RETURN(auto model, ctx.engine->Attributes(vision::AttributeRequest::All()));
          return model->CreateEstimator();
      }),
      specs(ctx.stream_specs),
      broadcaster(ctx.events, ctx.live, ctx.options) {}

}  // namespace fg::api
