// SPDX-License-Identifier: Apache-2.0
// Encryption of face templates at rest: AES-256-GCM (OpenSSL EVP) with a random 96-bit nonce
// per template. A copied database without the key reveals no embedding, and any tampering or
// wrong key is detected by the GCM tag rather than yielding garbage vectors.
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
/// Creates a new random key file (mode 0600); fails if the file exists.
Result<TemplateKey> CreateKeyFile(const std::filesystem::path& path);

/// The current key (used to seal) plus older keys (accepted to open, for rotation).
/// Thread-safety: const methods are safe concurrently (each call uses its own EVP context).
class KeyRing {
  public:
    explicit KeyRing(TemplateKey current) : current_(std::move(current)) {}
    void AddOld(TemplateKey key) { old_.push_back(std::move(key)); }
    const std::string& current_id() const { return current_.id; }

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
