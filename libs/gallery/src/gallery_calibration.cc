// SPDX-License-Identifier: Apache-2.0
// The stored calibration curve (`facegate gallery calibrate --save`, GET /v1/calibration): one
// HMAC-authenticated setting ("calibration", in kSettingKeys so key rotation re-signs it).
#include <cmath>
#include <mutex>
#include <optional>
#include <string>

#include "fg/gallery/gallery.h"
#include "gallery_impl.h"

namespace fg::gallery {
namespace {

constexpr const char* kCalibrationKey = "calibration";
constexpr std::size_t kMaxCurvePoints = 10000;  // 0..1 at 0.0001: far above any real curve

bool IsRate(const nlohmann::json& v) {
    return v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() >= 0 &&
           v.get<double>() <= 1;
}

}  // namespace

Status ValidateCalibration(const nlohmann::json& j) {
    if (!j.is_object()) return InvalidArgument("calibration must be a JSON object");
    auto curve = j.find("curve");
    if (curve == j.end() || !curve->is_array() || curve->empty())
        return InvalidArgument("calibration.curve must be a non-empty array");
    if (curve->size() > kMaxCurvePoints) return InvalidArgument("calibration.curve has too many points");
    for (const auto& p : *curve) {
        if (!p.is_object()) return InvalidArgument("calibration.curve points must be objects");
        auto t = p.find("threshold");
        if (t == p.end() || !t->is_number() || !std::isfinite(t->get<double>()) ||
            t->get<double>() < -1 || t->get<double>() > 1)
            return InvalidArgument("calibration.curve[].threshold must be a number in -1..1");
        for (const char* k : {"tar", "far"}) {
            auto v = p.find(k);
            if (v == p.end() || !IsRate(*v))
                return InvalidArgument(std::string("calibration.curve[].") + k +
                                       " must be a number in 0..1");
        }
    }
    for (const char* k : {"source", "created"}) {
        auto v = j.find(k);
        if (v == j.end() || !v->is_string())
            return InvalidArgument(std::string("calibration.") + k + " must be a string");
    }
    return Status::Ok();
}

Result<std::optional<nlohmann::json>> Gallery::Calibration() const {
    FG_ASSIGN_OR_RETURN(std::optional<std::string> raw, impl_->ReadSetting(kCalibrationKey));
    if (!raw) return std::optional<nlohmann::json>();
    auto j = nlohmann::json::parse(*raw, nullptr, /*allow_exceptions=*/false);
    // The value is authenticated, so a parse failure means a bug or a foreign writer.
    if (j.is_discarded() || !ValidateCalibration(j).ok())
        return DataLoss("stored calibration is not a valid curve");
    return std::optional<nlohmann::json>(std::move(j));
}

Status Gallery::SaveCalibration(const nlohmann::json& calibration) {
    FG_RETURN_IF_ERROR(ValidateCalibration(calibration));
    std::lock_guard w(impl_->write_mu);
    return impl_->WriteSetting(kCalibrationKey, calibration.dump());
}

}  // namespace fg::gallery
