// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/embed_batcher.h"

#include <algorithm>

namespace fg::pipeline {

Result<std::unique_ptr<EmbedBatcher>> EmbedBatcher::Create(const ModelProvider& models,
                                                           int max_faces) {
    if (max_faces < 1) return InvalidArgument("embed batcher: max_faces must be >= 1");
    FG_ASSIGN_OR_RETURN(std::unique_ptr<vision::Embedder> embedder, models.CreateEmbedder());
    // The first forward pass of a batch size builds its inference primitives (oneDNN JIT):
    // without this warm-up the first `recognized` event of a run (the one a person at a door
    // waits for) paid it (720p clip, 2 events: 83-101 ms before, 27-72 ms after, on a loaded
    // box). One and two faces per call are the usual sizes; larger ones pay on first use.
    const int size = embedder->info().input_size;
    for (int n = 1; n <= std::min(2, max_faces); ++n) {
        const std::vector<cv::Mat> blank(static_cast<std::size_t>(n),
                                         cv::Mat(size, size, CV_8UC3, cv::Scalar(128, 128, 128)));
        std::vector<vision::Embedding> ignored;
        FG_RETURN_IF_ERROR(embedder->Embed(blank, ignored).WithContext("embedder warm-up"));
    }
    return std::unique_ptr<EmbedBatcher>(new EmbedBatcher(std::move(embedder), max_faces));
}

EmbedBatcher::EmbedBatcher(std::unique_ptr<vision::Embedder> embedder, int max_faces)
    : embedder_(std::move(embedder)), max_faces_(max_faces) {
    thread_ = std::thread([this] { Loop(); });
}

EmbedBatcher::~EmbedBatcher() { Stop(); }

void EmbedBatcher::Stop() {
    {
        std::lock_guard lock(mu_);
        if (stopping_ && !thread_.joinable()) return;
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

EmbedBatcherStats EmbedBatcher::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

Status EmbedBatcher::Embed(std::vector<cv::Mat> aligned, std::vector<vision::Embedding>& out) {
    out.clear();
    if (aligned.empty()) return Status::Ok();
    auto req = std::make_unique<Request>();
    req->aligned = std::move(aligned);
    auto fut = req->done.get_future();
    {
        std::lock_guard lock(mu_);
        if (stopping_) return Status(StatusCode::kCancelled, "embed batcher stopped");
        queue_.push_back(std::move(req));
    }
    cv_.notify_one();
    Result<std::vector<vision::Embedding>> r = fut.get();
    if (!r.ok()) return r.status();
    out = std::move(r).value();
    return Status::Ok();
}

void EmbedBatcher::Loop() {
    for (;;) {
        std::vector<std::unique_ptr<Request>> batch;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) {
                for (auto& r : queue_) r->done.set_value(Status(StatusCode::kCancelled, "embed batcher stopped"));
                queue_.clear();
                return;
            }
            // Whole requests, up to max_faces_ faces (a larger single request goes alone).
            std::size_t faces = 0;
            while (!queue_.empty() &&
                   (batch.empty() ||
                    faces + queue_.front()->aligned.size() <= static_cast<std::size_t>(max_faces_))) {
                faces += queue_.front()->aligned.size();
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        std::vector<cv::Mat> all;
        for (auto& r : batch) all.insert(all.end(), r->aligned.begin(), r->aligned.end());
        std::vector<vision::Embedding> out;
        const Status st = embedder_->Embed(all, out);
        {
            std::lock_guard lock(mu_);
            stats_.faces += all.size();
            stats_.batches += 1;
            stats_.max_batch_seen = std::max<std::uint64_t>(stats_.max_batch_seen, all.size());
        }
        std::size_t at = 0;
        for (auto& r : batch) {
            if (!st.ok() || out.size() != all.size()) {
                r->done.set_value(st.ok() ? Internal("embedder returned a wrong count") : st);
                continue;
            }
            std::vector<vision::Embedding> mine(out.begin() + static_cast<std::ptrdiff_t>(at),
                                                out.begin() +
                                                    static_cast<std::ptrdiff_t>(at + r->aligned.size()));
            at += r->aligned.size();
            r->done.set_value(std::move(mine));
        }
    }
}

}  // namespace fg::pipeline
