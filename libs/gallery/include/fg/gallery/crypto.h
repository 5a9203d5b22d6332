// SPDX-License-Identifier: Apache-2.0
// Encryption of face templates at rest: AES-256-GCM (OpenSSL EVP) with a random 96-bit nonce
// per template, and HMAC-SHA256 for values stored in clear (gallery settings). A copied database
// without the key reveals no embedding. Every sealed blob is bound by its associated data to the
// row it belongs to (the gallery passes face id, subject id and model id, see gallery_impl.h),
// so changing a blob's bytes, moving it to another row or subject, or opening it with the wrong
// key fails the GCM tag (DataLoss / FailedPrecondition) instead of yielding a vector. What the
// tag cannot see, a whole row deleted or rolled back to an older valid state, is covered in
// docs/gallery.md ("Threat model").
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "fg/base/status.h"

namespace fg::gallery {

/// A 256-bit key and its id (first 8 bytes of SHA-256(key), hex), stored per row so rotation
/// knows which key sealed what without revealing the key.
struct TemplateKey {
    std::string id;
    std::vector<std::uint8_t> bytes;  ///< 32 bytes
};

/// Parses 64 hex characters (surrounding whitespace ignored) or exactly 32 raw bytes.
Result<TemplateKey> ParseKey(std::string_view text);
/// Reads a key file; refuses files readable by group/others, since that defeats encryption.
Result<TemplateKey> LoadKeyFile(const std::filesystem::path& path);
/// Reads the key from an environment variable (64 hex characters).
Result<TemplateKey> LoadKeyEnv(const std::string& variable);
/// Creates a new random key file: opened with O_CREAT|O_EXCL and mode 0600 in one step (never
/// readable by others, whatever the umask, not even for an instant), fsynced, and its directory
/// fsynced. Fails if the file exists.
Result<TemplateKey> CreateKeyFile(const std::filesystem::path& path);
/// fsyncs the directory holding `path`, so a just created or renamed entry survives a power cut
/// (best effort: errors are ignored, the data itself was fsynced by the caller).
void FsyncParentDir(const std::filesystem::path& path);

/// The current key (used to seal) plus older keys (accepted to open, for rotation).
/// Thread-safety: const methods are safe concurrently (each call uses its own EVP context).
class KeyRing {
  public:
    explicit KeyRing(TemplateKey current) : current_(std::move(current)) {}
    void AddOld(TemplateKey key) { old_.push_back(std::move(key)); }
    const std::string& current_id() const { return current_.id; }
    /// True when the key `id` is in the ring (current or old).
    bool Has(const std::string& id) const { return Find(id) != nullptr; }
    /// Ids of the old keys, oldest first.
    std::vector<std::string> old_ids() const;

    /// HMAC-SHA256 (hex) of `data` under a key derived with HKDF-SHA256 from the key `key_id`
    /// (info `facegate-gallery-settings-v1`: never the encryption key itself). FailedPrecondition
    /// when the key is not in the ring.
    Result<std::string> Mac(const std::string& key_id, std::string_view data) const;

    /// nonce(12) | ciphertext | tag(16). `aad` binds the blob to its context (the model id).
    Result<std::vector<std::uint8_t>> Seal(std::span<const float> values,
                                           std::string_view aad) const;
    /// Opens a blob sealed with the key `key_id`; DataLoss on a bad tag, FailedPrecondition when
    /// the key is not in the ring.
    Result<std::vector<float>> Open(std::span<const std::uint8_t> sealed, const std::string& key_id,
                                    std::string_view aad) const;
    /// Raw byte variants (index snapshots).
    Result<std::vector<std::uint8_t>> SealBytes(std::span<const std::uint8_t> plain,
                                                std::string_view aad) const;
    Result<std::vector<std::uint8_t>> OpenBytes(std::span<const std::uint8_t> sealed,
                                                const std::string& key_id,
                                                std::string_view aad) const;
    /// OpenBytes without a second buffer: decrypts `sealed` where it lies and returns the
    /// plaintext as a sub-span of it (for multi-GB index snapshots, where every fresh buffer
    /// costs the kernel seconds of page clearing). On failure the span's content is undefined.
    Result<std::span<std::uint8_t>> OpenBytesInPlace(std::span<std::uint8_t> sealed,
                                                     const std::string& key_id,
                                                     std::string_view aad) const;

  private:
    const TemplateKey* Find(const std::string& id) const;
    TemplateKey current_;
    std::vector<TemplateKey> old_;
};

}  // namespace fg::gallery
