// SPDX-License-Identifier: Apache-2.0
// Reuses decoded-frame buffers instead of allocating a fresh one per frame.
#pragma once

#include <cstddef>
#include <vector>

#include <opencv2/core.hpp>

namespace fg::stream::internal {

/// Hands the decoder a buffer no consumer holds any more, so a 1080p frame is decoded into
/// memory that is already mapped. A fresh 6 MB buffer per frame is an mmap, ~1 500 page faults
/// filled by the copy out of the decoder, and an munmap: on this VM that was most of the
/// decoder thread's time (perf: memmove + page faults 24 % of all samples of `bench stream`
/// on the 1080p clip, more than the H.264 decoding itself).
///
/// A buffer is free when the pool's own reference is the only one left: the frame handed out
/// shares pixels with the pool (cv::Mat reference counting), and once the consumer drops the
/// frame the count falls back to 1. Consumers keep frames read-only (Frame's contract), so a
/// reused buffer is never written while someone still reads it. At most `capacity` buffers
/// are kept; when all are held (a consumer keeping frames), Acquire returns an empty Mat and
/// the reader allocates as before.
///
/// Not thread-safe: owned by the decoder thread. Consumers on other threads only drop their
/// references, which cv::Mat counts atomically (an acq_rel decrement); the pool reads the count
/// with an acquire load (Free), so a consumer's last reads of the pixels happen before the
/// decoder writes the next frame into them (a plain read was a data race: ThreadSanitizer).
class FramePool {
  public:
    explicit FramePool(std::size_t capacity) : capacity_(capacity) {}

    /// A Mat sharing a pooled buffer nobody else holds, or an empty Mat (when every pooled
    /// buffer is in use and the pool is full: the reader then allocates). The caller decodes
    /// into it; cv::Mat::create keeps the buffer when size and type match.
    cv::Mat Acquire() {
        for (cv::Mat& m : buffers_) {
            if (Free(m)) return m;
        }
        return cv::Mat();
    }

    /// Adopts a buffer the reader had to allocate (or reallocate: a new frame size), if there
    /// is room; a buffer already pooled is not added twice.
    void Keep(const cv::Mat& image) {
        if (image.u == nullptr || !image.isContinuous()) return;
        for (cv::Mat& m : buffers_) {
            if (m.u == image.u) return;
        }
        // Drop a free buffer of another size first (after a resolution change), then adopt.
        for (cv::Mat& m : buffers_) {
            if (Free(m) &&
                (m.size() != image.size() || m.type() != image.type())) {
                m = image;
                return;
            }
        }
        if (buffers_.size() < capacity_) buffers_.push_back(image);
    }

    std::size_t size() const { return buffers_.size(); }

  private:
    /// Only the pool holds `m`'s buffer (see the class comment for the memory order).
    static bool Free(const cv::Mat& m) {
        return m.u != nullptr && __atomic_load_n(&m.u->refcount, __ATOMIC_ACQUIRE) == 1;
    }

    std::size_t capacity_;
    std::vector<cv::Mat> buffers_;
};

}  // namespace fg::stream::internal
