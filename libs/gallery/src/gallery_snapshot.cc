// SPDX-License-Identifier: Apache-2.0
// The gallery's index on open and close: load a sealed snapshot when it holds exactly the
// store's face ids, otherwise rebuild from the store; write one back when worthwhile.
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <spdlog/spdlog.h>

#include "fg/gallery/gallery.h"
#include "gallery_impl.h"

namespace fg::gallery {
namespace {

constexpr char kSnapshotMagic[4] = {'F', 'G', 'S', 'N'};
// 2: the header carries the SHA-256 of the face -> subject map (below), also in the AAD.
constexpr std::uint32_t kSnapshotFormat = 2;
constexpr size_t kOwnersHash = 64;  // hex

// Snapshot files are replaced atomically so a crash leaves the old one or the new one.
Status WriteFileAtomic(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return Unavailable("cannot write " + tmp + ": " + std::strerror(errno));
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (w <= 0) {
            const int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            return (e == ENOSPC ? ResourceExhausted("disk full writing " + tmp)
                                : Unavailable("cannot write " + tmp + ": " + std::strerror(e)));
        }
        done += size_t(w);
    }
    if (::fsync(fd) != 0) {
        ::close(fd);
        ::unlink(tmp.c_str());
        return Unavailable("fsync failed on " + tmp);
    }
    ::close(fd);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) return Unavailable("cannot rename " + tmp);
    // The rename is durable only once the directory is.
    FsyncParentDir(path);
    return Status::Ok();
}

// The snapshot's associated data binds it to the store's face -> subject map (a SHA-256 of the
// sorted face ids and their subjects): the vectors come from the sealed snapshot, the owners
// from the store, and a subject_id changed in the database must not pass unseen. A mismatch
// just rebuilds from the store, where every row's own binding is checked.
template <typename SubjectOf>
std::string OwnersHash(const std::vector<std::int64_t>& ids, SubjectOf subject_of) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    for (size_t i = 0; i < ids.size(); ++i) {
        const std::string& s = subject_of(i);
        const std::uint64_t head[2] = {std::uint64_t(ids[i]), s.size()};
        EVP_DigestUpdate(ctx, head, sizeof head);
        EVP_DigestUpdate(ctx, s.data(), s.size());
    }
    unsigned char digest[32] = {};
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, digest, &len);
    EVP_MD_CTX_free(ctx);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : digest) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

}  // namespace

Status Gallery::Impl::LoadIndex() {
    FG_ASSIGN_OR_RETURN(std::vector<FaceRef> refs, store->ListFaceRefs());
    if (options.holds) std::erase_if(refs, [this](const FaceRef& r) { return !Holds(r.subject_id); });
    face_subject.clear();
    face_subject.reserve(refs.size());
    subject_index.reserve(refs.size());
    std::vector<std::int64_t> store_ids;
    store_ids.reserve(refs.size());
    for (const FaceRef& r : refs) {
        face_subject[r.face_id] = InternSubject(r.subject_id);
        store_ids.push_back(r.face_id);
    }
    if (refs.empty()) {
        index.reset();
        index_source = "empty";
        snapshot_stale = false;
        return Status::Ok();
    }
    std::string why = "no snapshot";
    const std::string& path = options.snapshot_path;
    std::error_code ec;
    if (options.use_snapshot && !path.empty() && std::filesystem::exists(path, ec)) {
        // One read into a buffer of the file's size (a byte iterator took seconds per GB).
        std::vector<std::uint8_t> bytes;
        {
            std::ifstream in(path, std::ios::binary);
            const auto size = std::filesystem::file_size(path, ec);
            if (!ec && in) {
                bytes.resize(size_t(size));
                in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(size));
                if (!in) bytes.clear();
            }
        }
        why = "snapshot damaged";
        if (bytes.size() > 12 && std::memcmp(bytes.data(), kSnapshotMagic, 4) == 0) {
            std::uint32_t format, key_len;
            std::memcpy(&format, bytes.data() + 4, 4);
            std::memcpy(&key_len, bytes.data() + 8, 4);
            if (format == kSnapshotFormat && key_len < 64 && bytes.size() > 12 + key_len) {
                const std::string key_id(reinterpret_cast<const char*>(bytes.data() + 12), key_len);
                std::span<std::uint8_t> sealed(bytes.data() + 12 + key_len,
                                               bytes.size() - 12 - key_len);
                const std::string owners = OwnersHash(
                    store_ids, [&](size_t i) -> const std::string& { return refs[i].subject_id; });
                const bool same_owners =
                    sealed.size() > kOwnersHash &&
                    std::memcmp(sealed.data(), owners.data(), kOwnersHash) == 0;
                auto plain = same_owners
                                 ? keys->OpenBytesInPlace(sealed.subspan(kOwnersHash), key_id,
                                                          "fg-index-snapshot-v2|" + model_id +
                                                              "|" + owners)
                                 : Result<std::span<std::uint8_t>>(
                                       FailedPrecondition("stale"));
                if (!same_owners) {
                    why = "snapshot stale (its templates or their subjects differ from the store's)";
                } else if (!plain.ok()) {
                    why = "snapshot unreadable: " + plain.status().message();
                } else {
                    auto loaded = FaceIndex::Deserialize(ResolvedIndexConfig(), *plain);
                    if (!loaded.ok()) {
                        why = "snapshot damaged: " + loaded.status().message();
                    } else if ((*loaded)->dim() != dim || (*loaded)->Ids() != store_ids) {
                        why = "snapshot stale (its templates differ from the store's)";
                    } else {
                        index = std::move(*loaded);
                        index_source = "snapshot";
                        snapshot_stale = false;
                        return Status::Ok();
                    }
                }
            }
        }
    }
    return RebuildIndex(why);
}

Status Gallery::Impl::RebuildIndex(const std::string& why) {
    std::vector<std::int64_t> ids;
    std::vector<float> vectors;
    FG_RETURN_IF_ERROR(store->ForEachTemplate([&](const TemplateRecord& r) -> Status {
        if (!Holds(r.subject_id)) return Status::Ok();  // another shard's (not even opened)
        if (r.model_id != model_id || r.dim != dim) {
            return DataLoss("template " + std::to_string(r.face_id) + " has model " + r.model_id +
                            "/" + std::to_string(r.dim) + ", the gallery " + model_id + "/" +
                            std::to_string(dim));
        }
        FG_ASSIGN_OR_RETURN(std::vector<float> v, OpenTemplate(*keys, r));
        if (int(v.size()) != dim)
            return DataLoss("template " + std::to_string(r.face_id) + " has a bad length");
        ids.push_back(r.face_id);
        vectors.insert(vectors.end(), v.begin(), v.end());
        return Status::Ok();
    }));
    FG_ASSIGN_OR_RETURN(index, FaceIndex::Build(ResolvedIndexConfig(), ids, vectors));
    index_source = "rebuilt: " + why;
    snapshot_stale = true;
    spdlog::debug("gallery index rebuilt from the store ({}): {} templates", why, ids.size());
    return Status::Ok();
}

void Gallery::Impl::RemoveSnapshotFile() const {
    if (options.snapshot_path.empty()) return;
    std::error_code ec;
    std::filesystem::remove(options.snapshot_path, ec);
}

Status Gallery::SaveSnapshot() {
    Impl& m = *impl_;
    std::unique_lock lock(m.mu);
    if (m.options.snapshot_path.empty())
        return FailedPrecondition("this gallery has no snapshot file");
    if (!m.index) {
        m.RemoveSnapshotFile();
        return Status::Ok();
    }
    FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> plain, m.index->Serialize());
    const std::vector<std::int64_t> ids = m.index->Ids();
    std::vector<const std::string*> owners(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
        auto it = m.face_subject.find(ids[i]);
        if (it == m.face_subject.end())
            return Internal("face " + std::to_string(ids[i]) + " has no subject in memory");
        owners[i] = &m.subject_names[it->second];
    }
    const std::string hash =
        OwnersHash(ids, [&](size_t i) -> const std::string& { return *owners[i]; });
    FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> sealed,
                        m.keys->SealBytes(plain, "fg-index-snapshot-v2|" + m.model_id + "|" + hash));
    std::vector<std::uint8_t> file(kSnapshotMagic, kSnapshotMagic + 4);
    const std::uint32_t header[2] = {kSnapshotFormat, std::uint32_t(m.keys->current_id().size())};
    const auto* h = reinterpret_cast<const std::uint8_t*>(header);
    file.insert(file.end(), h, h + sizeof header);
    file.insert(file.end(), m.keys->current_id().begin(), m.keys->current_id().end());
    file.insert(file.end(), hash.begin(), hash.end());
    file.insert(file.end(), sealed.begin(), sealed.end());
    FG_RETURN_IF_ERROR(WriteFileAtomic(m.options.snapshot_path, file));
    m.snapshot_stale = false;
    return Status::Ok();
}

Status Gallery::Close() {
    Impl& m = *impl_;
    bool want;
    {
        std::shared_lock lock(m.mu);
        want = m.snapshot_stale && m.options.use_snapshot && !m.options.snapshot_path.empty() &&
               m.index && m.index->size() >= m.options.snapshot_min_size;
    }
    return want ? SaveSnapshot() : Status::Ok();
}

}  // namespace fg::gallery
