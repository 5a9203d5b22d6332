// SPDX-License-Identifier: Apache-2.0
// Inference behind a small interface: a Backend loads Models (immutable, shared between threads);
// each worker thread creates its own Session from a Model. The vision layer never sees the
// engine (OpenCV DNN now; oneDNN, ONNX Runtime or TensorRT can be added as further backends).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fg/base/status.h"
#include "fg/infer/tensor.h"

namespace fg::infer {

/// How to load one ONNX file.
struct ModelSpec {
    std::string id;                    ///< stable model id, e.g. "fr_feature"
    std::filesystem::path path;        ///< the .onnx file
    std::string sha256;                ///< expected hash (lower-case hex); empty = not checked
    /// Fixes a dynamic input to this NCHW shape before loading (OpenCV 4.6 refuses dynamic
    /// shapes). Empty = use the shapes in the file.
    std::vector<std::int64_t> input_shape;
    /// Rewrites a graph fixed at batch 1 (input dim 0 and Reshape targets of [1, ...]) so that
    /// a batch of N runs in one forward pass. If the rewrite is not possible the model reports
    /// max_batch() == 1 and callers loop.
    bool dynamic_batch = false;
};

struct ModelInfo {
    std::string id;
    std::filesystem::path path;
    std::string sha256;                             ///< actual hash of the file
    std::vector<std::string> input_names;
    std::vector<std::vector<std::int64_t>> input_shapes;   ///< as declared (after fixing)
    std::vector<std::string> output_names;
    int max_batch = 1;                              ///< largest batch one Run accepts (0 = any)
};

/// A per-thread execution context. NOT thread-safe: one per worker thread.
class Session {
  public:
    virtual ~Session() = default;
    /// Runs the model. `inputs` are matched by position to ModelInfo::input_names. On success
    /// `outputs` holds one view per output (ModelInfo::output_names order); the views point into
    /// buffers owned by this Session and stay valid until the next Run.
    virtual Status Run(std::span<const TensorView> inputs, std::vector<TensorView>& outputs) = 0;
};

/// Loaded weights. Immutable and thread-safe: share one between all workers.
class Model {
  public:
    virtual ~Model() = default;
    virtual const ModelInfo& info() const = 0;
    virtual Result<std::unique_ptr<Session>> CreateSession() const = 0;
};

struct BackendConfig {
    /// "auto" (default): oneDNN where the whole graph lowers to oneDNN primitives, else OpenCV
    /// DNN for that model (one log line says so). "onednn": oneDNN only. "opencv": OpenCV 4.6 DNN.
    std::string name = "auto";
    int threads = 0;               ///< intra-op threads per forward; 0 = library default
};

/// Loads models. Thread-safe.
class Backend {
  public:
    virtual ~Backend() = default;
    virtual std::string_view name() const = 0;
    /// Errors: NotFound (no file), DataLoss (hash mismatch), InvalidArgument (not a valid
    /// ONNX graph, unsupported op, unresolvable dynamic shape).
    virtual Result<std::shared_ptr<const Model>> Load(const ModelSpec& spec) const = 0;
};

/// Creates a backend by name. Errors: NotFound for an unknown name.
Result<std::shared_ptr<Backend>> MakeBackend(const BackendConfig& config);

/// Names of the backends compiled into this build.
std::vector<std::string> AvailableBackends();

}  // namespace fg::infer
