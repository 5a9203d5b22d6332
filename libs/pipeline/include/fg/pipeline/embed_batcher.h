// SPDX-License-Identifier: Apache-2.0
// Batches embedding requests from every stream into shared forward passes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/pipeline/models.h"
#include "fg/vision/embedder.h"

namespace fg::pipeline {

struct EmbedBatcherStats {
    std::uint64_t faces = 0;    ///< faces embedded
    std::uint64_t batches = 0;  ///< embedder calls (each holds faces of one or more streams)
    std::uint64_t max_batch_seen = 0;
};

/// One thread with its own embedder takes every pending request (up to `max_faces` faces,
/// whole requests only) and embeds them in one call, so faces of several streams share a
/// forward pass where the model and backend batch.
/// Thread-safety: Embed() may be called from any number of threads.
class EmbedBatcher {
  public:
    static Result<std::unique_ptr<EmbedBatcher>> Create(const ModelProvider& models,
                                                        int max_faces = 8);
    ~EmbedBatcher();
    EmbedBatcher(const EmbedBatcher&) = delete;
    EmbedBatcher& operator=(const EmbedBatcher&) = delete;

    /// Embeds aligned BGR crops (the embedder's input size); blocks until done. Cancelled
    /// after Stop().
    Status Embed(std::vector<cv::Mat> aligned, std::vector<vision::Embedding>& out);
    /// Fails pending and future requests; joins the thread. Idempotent.
    void Stop();
    EmbedBatcherStats stats() const;

  private:
    struct Request {
        std::vector<cv::Mat> aligned;
        std::promise<Result<std::vector<vision::Embedding>>> done;
    };
    EmbedBatcher(std::unique_ptr<vision::Embedder> embedder, int max_faces);
    void Loop();

    std::unique_ptr<vision::Embedder> embedder_;
    const int max_faces_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<Request>> queue_;
    bool stopping_ = false;
    EmbedBatcherStats stats_;
    std::thread thread_;
};

}  // namespace fg::pipeline
