// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/naive.h"

namespace fg::pipeline {

Result<std::unique_ptr<NaiveProcessor>> NaiveProcessor::Create(const ModelProvider& models,
                                                               float score_threshold,
                                                               EmbedBatcher& embedder,
                                                               std::string model_id,
                                                               const Identifier* identifier) {
    FG_ASSIGN_OR_RETURN(std::unique_ptr<vision::Detector> det,
                        models.CreateDetector(score_threshold));
    return std::unique_ptr<NaiveProcessor>(
        new NaiveProcessor(models, std::move(det), embedder, std::move(model_id), identifier));
}

Result<NaiveFrame> NaiveProcessor::Process(const cv::Mat& image) {
    NaiveFrame out;
    FG_ASSIGN_OR_RETURN(out.faces, detector_->Detect(image));
    out.labels.assign(out.faces.size(), "");
    std::vector<cv::Mat> crops;
    std::vector<std::size_t> face_of_crop;
    for (std::size_t i = 0; i < out.faces.size(); ++i) {
        Result<AssessedCrop> c = models_.AlignAndAssess(image, out.faces[i]);
        if (!c.ok()) continue;
        crops.push_back(std::move(c->aligned));
        face_of_crop.push_back(i);
    }
    if (crops.empty()) return out;
    std::vector<vision::Embedding> embs;
    FG_RETURN_IF_ERROR(embedder_.Embed(std::move(crops), embs));
    out.embedded = embs.size();
    if (!identifier_) return out;
    for (std::size_t i = 0; i < embs.size() && i < face_of_crop.size(); ++i) {
        Result<IdentityVerdict> v = identifier_->Identify(Embedding{model_id_, embs[i].values});
        if (!v.ok() || !v->known) continue;
        out.identities.push_back(v->subject_id);
        out.labels[face_of_crop[i]] = v->display_name.empty() ? v->subject_id : v->display_name;
    }
    return out;
}

}  // namespace fg::pipeline
