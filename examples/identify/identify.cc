// SPDX-License-Identifier: Apache-2.0
// Compares the largest face of two photos with the installed libfacegate:
//
//   FG_MODELS_DIR=/path/to/models ./identify a.jpg b.jpg
//   similarity 0.9036        (two photos of John Salley from dlib's examples)
//
// Built out of tree against the installed library (see CMakeLists.txt beside this file).
#include <cstdio>
#include <string>
#include <utility>

#include "fg/core/embedding.h"
#include "fg/image/image_io.h"
#include "fg/vision/engine.h"

namespace {

// The embedding of the largest face in `path`.
fg::Result<fg::Embedding> EmbedLargestFace(fg::vision::Worker& worker, const char* path) {
    FG_ASSIGN_OR_RETURN(const cv::Mat image, fg::LoadImage(path));
    FG_ASSIGN_OR_RETURN(auto faces, worker.Analyze(image, {.max_faces = 1}));
    for (auto& face : faces) {
        if (face.embedding) return std::move(*face.embedding);
    }
    return fg::NotFound(std::string("no face in ") + path);
}

fg::Status Run(const char* a, const char* b) {
    // The engine loads the pack's models once (from $FG_MODELS_DIR) and is shared by threads;
    // each thread makes its own worker (inference sessions).
    FG_ASSIGN_OR_RETURN(auto engine, fg::vision::Engine::Create({.pack = "default"}));
    FG_ASSIGN_OR_RETURN(auto worker, engine->CreateWorker());
    FG_ASSIGN_OR_RETURN(const fg::Embedding ea, EmbedLargestFace(*worker, a));
    FG_ASSIGN_OR_RETURN(const fg::Embedding eb, EmbedLargestFace(*worker, b));
    std::printf("similarity %.4f\n", fg::CosineSimilarity(ea, eb));
    return fg::Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s IMAGE_A IMAGE_B\n", argv[0]);
        return 2;
    }
    const fg::Status status = Run(argv[1], argv[2]);
    if (!status.ok()) {
        std::fprintf(stderr, "error: %s\n", status.ToString().c_str());
        return 1;
    }
    return 0;
}
