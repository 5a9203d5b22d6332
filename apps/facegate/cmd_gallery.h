// SPDX-License-Identifier: Apache-2.0
// Private to the `facegate gallery` commands: their shared arguments and helpers
// (cmd_gallery.cc registers and runs enroll..snapshot; cmd_gallery_admin.cc holds export,
// import, reembed, rotate-key, settings, stats and calibrate).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace fg::gallery {
class Gallery;
}  // namespace fg::gallery

namespace fg::cli {

struct GalleryArgs {
    EngineOptions engine;
    std::string db;
    std::string key_file;
    std::string key_env = "FG_GALLERY_KEY";
    std::string audit_file;  // --audit: where changes are recorded (cmd_audit.h OpenCliAudit)
    std::string subject;
    std::string name;
    std::string metadata;
    std::vector<std::string> images;
    std::string embedding_file;
    std::string model_id;
    bool force = false;
    bool json = false;
    int top_k = 0;
    // identify/verify --liveness: check the probe face before trusting the match.
    bool liveness = false;
    std::string liveness_model;     // preset or pack (empty = the default preset)
    float liveness_threshold = 0.5f;
    std::string after;
    int limit = 100;
    std::string from, into;
    std::int64_t face_id = 0;
    std::string file;
    bool skip_existing = false;
    std::string new_key_file;
    std::vector<std::string> set;
    std::string root;
    double write_far = 0;
    bool save_curve = false;  ///< calibrate --save: store the TAR/FAR curve in --db
    int batch = 5000;
};

GalleryLocation Where(const GalleryArgs& a);
Result<std::unique_ptr<gallery::Gallery>> OpenGallery(const GalleryArgs& a);
/// Closes the gallery (writing its index snapshot; a failure is only a warning) and returns `code`.
int Finish(gallery::Gallery& g, int code);

// cmd_gallery_admin.cc
int RunExport(const GalleryArgs& a);
int RunImport(const GalleryArgs& a);
int RunReembed(const GalleryArgs& a);
int RunRotateKey(const GalleryArgs& a);
int RunSettings(const GalleryArgs& a);
int RunStats(const GalleryArgs& a);
int RunCalibrate(const GalleryArgs& a);

}  // namespace fg::cli
