// SPDX-License-Identifier: Apache-2.0
#include "ffmpeg_options.h"

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>

namespace fg::stream::internal {
namespace {

constexpr const char* kVariable = "OPENCV_FFMPEG_CAPTURE_OPTIONS";

struct Registry {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<std::string> user_value;  // the variable before our first lease
    bool initialised = false;
    std::string current;  // our options currently in the environment
    int in_flight = 0;
};

Registry& Get() {
    static Registry* registry = new Registry();  // never destroyed: leases may outlive main
    return *registry;
}

}  // namespace

FfmpegOptionsLease::FfmpegOptionsLease(const std::string& options) {
    Registry& r = Get();
    std::unique_lock lock(r.mu);
    if (!r.initialised) {
        if (const char* v = std::getenv(kVariable)) {
            r.user_value = v;
        }
        r.initialised = true;
        r.current = "\x01";  // forces the first setenv
    }
    r.cv.wait(lock, [&] { return r.in_flight == 0 || r.current == options; });
    if (r.current != options) {
        std::string value =
            r.user_value && !r.user_value->empty() ? *r.user_value + "|" + options : options;
        // Replacing an existing variable only swaps a pointer in environ (glibc never frees the
        // old string), so a concurrent getenv elsewhere reads either value.
        setenv(kVariable, value.c_str(), 1);
        r.current = options;
    }
    ++r.in_flight;
}

FfmpegOptionsLease::~FfmpegOptionsLease() {
    Registry& r = Get();
    {
        std::lock_guard lock(r.mu);
        --r.in_flight;
    }
    r.cv.notify_all();
}

}  // namespace fg::stream::internal
