// SPDX-License-Identifier: Apache-2.0
// Codes live in one contiguous array (row-major), rows are swapped with the last on removal so
// the scan never meets a hole. int8 codes are scaled per row (127 / max |x|): for a 512-d unit
// vector the step is ~1.5e-3 per value and the cosine error ~5e-4 (measured in
// sighting_index_test and BENCHMARKS.md), well below the spacing of face scores, so the scan
// is exact for practical purposes and needs no float re-rank (and no float copy in memory).
#include "fg/history/sighting_index.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "vec_kernels.h"

namespace fg::history {

struct SightingIndex::Impl {
    int dim = 0;
    SightingCodec codec = SightingCodec::kInt8;
    mutable std::shared_mutex mu;
    std::vector<std::int64_t> ids;  // row -> sighting id
    std::unordered_map<std::int64_t, std::size_t> rows;  // sighting id -> row
    std::vector<std::int8_t> i8;
    std::vector<float> scales;  // int8: per-row 1 / scale
    std::vector<std::uint16_t> f16;
    std::vector<float> f32;

    std::size_t Stride() const { return std::size_t(dim); }

    void Write(std::size_t row, std::span<const float> v) {
        const std::size_t d = Stride();
        switch (codec) {
            case SightingCodec::kInt8: {
                float m = 0;
                for (float x : v) m = std::max(m, std::fabs(x));
                const float s = m > 0 ? 127.0f / m : 1.0f;
                for (std::size_t i = 0; i < d; ++i)
                    i8[row * d + i] = std::int8_t(std::lrint(std::clamp(v[i] * s, -127.0f, 127.0f)));
                scales[row] = 1.0f / s;
                break;
            }
            case SightingCodec::kFloat16:
                for (std::size_t i = 0; i < d; ++i) f16[row * d + i] = kernels::FloatToHalf(v[i]);
                break;
            case SightingCodec::kFloat32:
                std::copy(v.begin(), v.end(), f32.begin() + std::ptrdiff_t(row * d));
                break;
        }
    }

    void Resize(std::size_t n) {
        const std::size_t d = Stride();
        switch (codec) {
            case SightingCodec::kInt8:
                i8.resize(n * d);
                scales.resize(n);
                break;
            case SightingCodec::kFloat16: f16.resize(n * d); break;
            case SightingCodec::kFloat32: f32.resize(n * d); break;
        }
    }

    void MoveRow(std::size_t from, std::size_t to) {
        const std::size_t d = Stride();
        switch (codec) {
            case SightingCodec::kInt8:
                std::copy_n(i8.begin() + std::ptrdiff_t(from * d), d, i8.begin() + std::ptrdiff_t(to * d));
                scales[to] = scales[from];
                break;
            case SightingCodec::kFloat16:
                std::copy_n(f16.begin() + std::ptrdiff_t(from * d), d, f16.begin() + std::ptrdiff_t(to * d));
                break;
            case SightingCodec::kFloat32:
                std::copy_n(f32.begin() + std::ptrdiff_t(from * d), d, f32.begin() + std::ptrdiff_t(to * d));
                break;
        }
    }

    float Score(const float* q, std::size_t row) const {
        const std::size_t d = Stride();
        switch (codec) {
            case SightingCodec::kInt8: return kernels::DotI8(q, &i8[row * d], d) * scales[row];
            case SightingCodec::kFloat16: return kernels::DotF16(q, &f16[row * d], d);
            case SightingCodec::kFloat32: return kernels::DotF32(q, &f32[row * d], d);
        }
        return 0;
    }
};

SightingIndex::SightingIndex(int dim, SightingCodec codec) : impl_(std::make_unique<Impl>()) {
    impl_->dim = std::max(dim, 0);
    impl_->codec = codec;
}

SightingIndex::~SightingIndex() = default;

Status SightingIndex::Add(std::int64_t sighting_id, std::span<const float> unit_embedding) {
    if (impl_->dim == 0 || unit_embedding.size() != std::size_t(impl_->dim))
        return InvalidArgument("sighting index: embedding has " +
                               std::to_string(unit_embedding.size()) + " values, expected " +
                               std::to_string(impl_->dim));
    for (float x : unit_embedding)
        if (!std::isfinite(x)) return InvalidArgument("sighting index: embedding is not finite");
    std::unique_lock lock(impl_->mu);
    auto it = impl_->rows.find(sighting_id);
    if (it != impl_->rows.end()) {
        impl_->Write(it->second, unit_embedding);
        return Status::Ok();
    }
    const std::size_t row = impl_->ids.size();
    impl_->ids.push_back(sighting_id);
    impl_->Resize(row + 1);
    impl_->Write(row, unit_embedding);
    impl_->rows.emplace(sighting_id, row);
    return Status::Ok();
}

void SightingIndex::Remove(std::int64_t sighting_id) {
    std::unique_lock lock(impl_->mu);
    auto it = impl_->rows.find(sighting_id);
    if (it == impl_->rows.end()) return;
    const std::size_t row = it->second, last = impl_->ids.size() - 1;
    impl_->rows.erase(it);
    if (row != last) {
        impl_->MoveRow(last, row);
        impl_->ids[row] = impl_->ids[last];
        impl_->rows[impl_->ids[row]] = row;
    }
    impl_->ids.pop_back();
    impl_->Resize(last);
}

std::vector<std::pair<std::int64_t, float>> SightingIndex::Search(std::span<const float> probe,
                                                                  int k, float min_score) const {
    std::vector<std::pair<std::int64_t, float>> out;
    if (k <= 0 || probe.size() != std::size_t(impl_->dim) || impl_->dim == 0) return out;
    std::shared_lock lock(impl_->mu);
    // Bounded min-heap of (score, row): the k best so far.
    std::vector<std::pair<float, std::size_t>> heap;
    heap.reserve(std::size_t(k));
    auto worse = [](const auto& a, const auto& b) { return a.first > b.first; };
    float floor = min_score;
    const std::size_t n = impl_->ids.size();
    for (std::size_t row = 0; row < n; ++row) {
        const float s = impl_->Score(probe.data(), row);
        if (!(s >= floor)) continue;
        if (heap.size() < std::size_t(k)) {
            heap.emplace_back(s, row);
            std::push_heap(heap.begin(), heap.end(), worse);
        } else if (s > heap.front().first) {
            std::pop_heap(heap.begin(), heap.end(), worse);
            heap.back() = {s, row};
            std::push_heap(heap.begin(), heap.end(), worse);
        } else {
            continue;
        }
        if (heap.size() == std::size_t(k)) floor = std::max(min_score, heap.front().first);
    }
    std::sort(heap.begin(), heap.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    out.reserve(heap.size());
    for (const auto& [s, row] : heap) out.emplace_back(impl_->ids[row], s);
    return out;
}

std::size_t SightingIndex::size() const {
    std::shared_lock lock(impl_->mu);
    return impl_->ids.size();
}

int SightingIndex::dim() const { return impl_->dim; }
SightingCodec SightingIndex::codec() const { return impl_->codec; }

std::size_t SightingIndex::MemoryBytes() const {
    std::shared_lock lock(impl_->mu);
    // unordered_map: a node (key, value, next pointer, cached hash) plus a bucket pointer.
    const std::size_t map_bytes = impl_->rows.size() * (sizeof(std::int64_t) * 4) +
                                  impl_->rows.bucket_count() * sizeof(void*);
    return impl_->i8.capacity() + impl_->scales.capacity() * sizeof(float) +
           impl_->f16.capacity() * 2 + impl_->f32.capacity() * 4 +
           impl_->ids.capacity() * sizeof(std::int64_t) + map_bytes;
}

void SightingIndex::Reserve(std::size_t n) {
    std::unique_lock lock(impl_->mu);
    const std::size_t d = impl_->Stride();
    impl_->ids.reserve(n);
    impl_->rows.reserve(n);
    switch (impl_->codec) {
        case SightingCodec::kInt8:
            impl_->i8.reserve(n * d);
            impl_->scales.reserve(n);
            break;
        case SightingCodec::kFloat16: impl_->f16.reserve(n * d); break;
        case SightingCodec::kFloat32: impl_->f32.reserve(n * d); break;
    }
}

}  // namespace fg::history
