// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for the disk buffer's record reader: after a crash or on a damaged disk the
// buffer reads whatever bytes a segment file holds. The input is read as a segment file, record
// after record, the way DiskBuffer::Open recovers one; every record it accepts must re-encode to
// exactly its bytes, and a rejected record must stop the scan (never be misread). Build and run
// with scripts/fuzz; tests/disk_record_replay_test.cc replays the seeds in every dev build.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fg/bus/disk_buffer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    while (!bytes.empty()) {
        auto rec = fg::bus::DecodeDiskRecord(bytes);
        if (!rec.ok()) break;  // torn or damaged: recovery drops the rest
        if (rec->size == 0 || rec->size > bytes.size()) std::abort();
        auto again = fg::bus::EncodeDiskRecord(rec->seq, rec->msg);
        if (!again.ok() || *again != bytes.substr(0, rec->size)) std::abort();  // must round-trip
        bytes.remove_prefix(rec->size);
    }
    return 0;
}
