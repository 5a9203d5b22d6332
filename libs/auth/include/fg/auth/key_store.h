// SPDX-License-Identifier: Apache-2.0
// API keys with scopes for `facegate serve`: created, listed and revoked with `facegate keys`,
// stored in their own SQLite file (0600) as SHA-256 hashes only.
//
//   auto store = fg::auth::KeyStore::Open("keys.db");
//   auto key = (*store)->Create("door-1", {"recognize"});   // key->secret is shown once
//   auto who = (*store)->Authenticate(key->secret);           // KeyInfo, or UNAUTHENTICATED
//
// The secret is "fgk_<id>_<43 characters of base64url>" (32 random bytes). A random 256-bit
// secret cannot be guessed from its hash, so a fast hash (SHA-256) is enough; slow password
// hashes exist for low-entropy human passwords.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fg/base/status.h"

namespace fg::auth {

/// Every scope a key can carry. `admin` implies all others.
inline constexpr std::string_view kScopes[] = {"admin", "enroll", "recognize", "events", "read"};

/// Parses "a,b,c" into known scopes; InvalidArgument names an unknown one; an empty list is
/// refused (a key that can do nothing is a mistake).
Result<std::set<std::string>> ParseScopes(std::string_view comma_separated);
/// True when `granted` holds `scope` or `admin`.
bool HasScope(const std::set<std::string>& granted, std::string_view scope);

/// A key as stored (never the secret).
struct KeyInfo {
    std::string id;                 ///< 12 hex characters, part of the secret
    std::string name;               ///< label for logs and the audit log
    std::set<std::string> scopes;
    std::int64_t created_at = 0;    ///< unix seconds
    std::optional<std::int64_t> last_used_at;  ///< unix seconds, updated at most once a minute
    std::optional<std::int64_t> revoked_at;    ///< set once revoked
    bool revoked() const { return revoked_at.has_value(); }
};

/// What Create returns: the stored record and the secret, which is never retrievable again.
struct CreatedKey {
    KeyInfo info;
    std::string secret;
};

struct KeyStoreOptions {
    /// How long an authenticated key is trusted from memory before SQLite is asked again: the
    /// time within which a revocation made by another process takes effect here. A revocation
    /// made through this store takes effect at once.
    std::chrono::milliseconds cache_ttl{2000};
    /// At most this many cached ids (known and unknown); the cache is cleared when full, so
    /// random tokens cannot grow memory.
    std::size_t cache_capacity = 10000;
};

/// Thread-safety: every method is safe to call concurrently (one SQLite connection behind a
/// mutex; Authenticate answers from the in-memory cache without touching SQLite when it can).
/// Several processes may open the same file (SQLite WAL, busy timeout).
class KeyStore {
  public:
    /// Opens or creates the store. The file is created 0600 whatever the umask, and an existing
    /// file is set back to 0600 (it holds hashes, and names what each key can do).
    static Result<std::unique_ptr<KeyStore>> Open(const std::filesystem::path& path,
                                                  KeyStoreOptions options = {});
    ~KeyStore();
    KeyStore(const KeyStore&) = delete;
    KeyStore& operator=(const KeyStore&) = delete;

    /// Creates a key. `name` is 1..64 printable characters; scopes as ParseScopes accepts.
    Result<CreatedKey> Create(std::string_view name, const std::set<std::string>& scopes);
    /// Every key, revoked ones included, oldest first.
    Result<std::vector<KeyInfo>> List();
    /// Revokes a key (NotFound for an unknown id; revoking twice is OK). Takes effect at once in
    /// this process, within cache_ttl in others.
    Status Revoke(std::string_view id);
    /// The key a secret belongs to. UNAUTHENTICATED for a malformed, unknown or revoked secret
    /// (the message never echoes the secret). The hash comparison is constant-time.
    Result<KeyInfo> Authenticate(std::string_view secret);

    const std::filesystem::path& path() const;

  private:
    struct Impl;
    explicit KeyStore(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

/// The default location: $XDG_CONFIG_HOME/facegate/keys.db, else ~/.config/facegate/keys.db.
std::filesystem::path DefaultKeyStorePath();

}  // namespace fg::auth
