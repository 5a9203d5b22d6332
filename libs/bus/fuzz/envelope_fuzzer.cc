// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for the bus envelope decoder: bytes from the bus are untrusted (any client
// of the bus can publish). Decodes with and without a gallery key, then the typed bodies; a
// decoded envelope must re-encode and decode to the same envelope. Build and run with
// scripts/fuzz; tests/fuzz_replay_test.cc replays the seed corpus in every dev build.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fg/bus/envelope.h"
#include "fg/bus/messages.h"
#include "fg/gallery/crypto.h"

namespace {
const fg::gallery::KeyRing& FuzzKeys() {
    static const fg::gallery::KeyRing keys = [] {
        auto key = fg::gallery::ParseKey(std::string(64, '7'));
        if (!key.ok()) std::abort();
        return fg::gallery::KeyRing(*key);
    }();
    return keys;
}

void Check(const fg::Result<fg::bus::Envelope>& env, const fg::gallery::KeyRing* keys) {
    if (!env.ok()) return;
    (void)fg::bus::ResultFromEnvelope(*env);
    (void)fg::bus::GalleryChangeFromEnvelope(*env);
    auto bytes = fg::bus::EncodeEnvelope(*env, keys);
    if (!bytes.ok()) return;
    auto again = fg::bus::DecodeEnvelope(*bytes, keys);
    if (!again.ok() || again->id != env->id || again->type != env->type ||
        again->region != env->region || again->camera != env->camera ||
        again->sent_unix_ms != env->sent_unix_ms || again->payload != env->payload) {
        std::abort();  // a decoded envelope must round-trip
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    Check(fg::bus::DecodeEnvelope(bytes), nullptr);
    Check(fg::bus::DecodeEnvelope(bytes, &FuzzKeys()), &FuzzKeys());
    return 0;
}
