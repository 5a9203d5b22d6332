// SPDX-License-Identifier: Apache-2.0
#include "fg/auth/key_store.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "fg/sqlite/sqlite_db.h"

namespace fg::auth {
namespace internal {
using namespace ::fg::sqlite;  // the shared SQLite helpers (libs/sqlite)
}

using internal::Stmt;

namespace {

constexpr std::string_view kPrefix = "fgk_";
constexpr std::size_t kIdHex = 12;       // 48 random bits: unique enough for a handful of keys
constexpr std::size_t kSecretB64 = 43;   // 32 bytes, base64url without padding
constexpr std::size_t kTokenSize = kPrefix.size() + kIdHex + 1 + kSecretB64;
constexpr std::int64_t kLastUsedEverySeconds = 60;

using Hash = std::array<std::uint8_t, SHA256_DIGEST_LENGTH>;

Hash Sha256(std::string_view s) {
    Hash h{};
    SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), h.data());
    return h;
}

std::int64_t Now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string Base64Url(const std::uint8_t* p, std::size_t n) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < n; ++i) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(kAlphabet[(acc >> bits) & 63]);
        }
    }
    if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
    return out;
}

std::string Hex(const std::uint8_t* p, std::size_t n) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(kDigits[p[i] >> 4]);
        out.push_back(kDigits[p[i] & 15]);
    }
    return out;
}

bool IsHexId(std::string_view s) {
    if (s.size() != kIdHex) return false;
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

bool IsBase64Url(std::string_view s) {
    for (char c : s) {
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

std::string JoinScopes(const std::set<std::string>& scopes) {
    std::string s;
    for (const auto& x : scopes) s += (s.empty() ? "" : ",") + x;
    return s;
}

Status ValidateName(std::string_view name) {
    if (name.empty() || name.size() > 64) return InvalidArgument("key name must be 1 to 64 characters");
    for (unsigned char c : name) {
        if (c < 0x20 || c == 0x7f) return InvalidArgument("key name must not hold control characters");
    }
    return Status::Ok();
}

}  // namespace

Result<std::set<std::string>> ParseScopes(std::string_view text) {
    std::set<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find(',', start);
        if (end == std::string_view::npos) end = text.size();
        std::string_view part = text.substr(start, end - start);
        while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
        while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
        if (!part.empty()) {
            bool known = false;
            for (auto s : kScopes) known = known || s == part;
            if (!known) {
                return InvalidArgument("unknown scope '" + std::string(part) +
                                       "' (admin, enroll, recognize, events, read)");
            }
            out.emplace(part);
        }
        start = end + 1;
    }
    if (out.empty()) return InvalidArgument("a key needs at least one scope (admin, enroll, recognize, events, read)");
    return out;
}

bool HasScope(const std::set<std::string>& granted, std::string_view scope) {
    return granted.count("admin") > 0 || granted.count(std::string(scope)) > 0;
}

std::filesystem::path DefaultKeyStorePath() {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    const char* home = std::getenv("HOME");
    std::filesystem::path base = xdg && *xdg     ? std::filesystem::path(xdg)
                                 : home && *home ? std::filesystem::path(home) / ".config"
                                                 : std::filesystem::path(".");
    return base / "facegate" / "keys.db";
}

struct KeyStore::Impl {
    std::filesystem::path path;
    KeyStoreOptions options;
    std::mutex db_mu;  // guards db (one connection; statements are prepared per call)
    sqlite3* db = nullptr;

    struct Entry {
        bool exists = false;
        Hash hash{};
        KeyInfo info;
        std::chrono::steady_clock::time_point fetched;
        std::int64_t last_used_written = 0;
    };
    std::mutex cache_mu;  // guards cache and generation
    std::unordered_map<std::string, Entry> cache;
    // Bumped by Revoke: a fetch that started before a revocation must not cache what it read.
    std::uint64_t generation = 0;

    ~Impl() { sqlite3_close_v2(db); }

    static KeyInfo Row(const Stmt& q, int first) {
        KeyInfo k;
        k.id = q.Text(first);
        k.name = q.Text(first + 1);
        auto scopes = ParseScopes(q.Text(first + 2));
        if (scopes.ok()) k.scopes = std::move(*scopes);  // a hand-edited bad row grants nothing
        k.created_at = q.Int(first + 3);
        k.last_used_at = q.OptInt(first + 4);
        k.revoked_at = q.OptInt(first + 5);
        return k;
    }

    /// Reads one key from SQLite (db_mu not held by the caller).
    Result<Entry> Fetch(const std::string& id) {
        std::lock_guard lock(db_mu);
        Stmt q(db, "SELECT hash, id, name, scopes, created_at, last_used_at, revoked_at FROM api_keys WHERE id = ?");
        q.Bind(1, id);
        Status s;
        Entry e;
        e.fetched = std::chrono::steady_clock::now();
        if (q.Step(s)) {
            const auto blob = q.Blob(0);
            if (blob.size() == e.hash.size()) {
                e.exists = true;
                std::copy(blob.begin(), blob.end(), e.hash.begin());
                e.info = Row(q, 1);
                e.last_used_written = e.info.last_used_at.value_or(0);
            }
        }
        if (!s.ok()) return s;
        return e;
    }

    void TouchLastUsed(const std::string& id, std::int64_t now) {
        std::lock_guard lock(db_mu);
        Stmt q(db, "UPDATE api_keys SET last_used_at = ? WHERE id = ?");
        q.Bind(1, now);
        q.Bind(2, id);
        Status s;
        q.Step(s);  // best effort: a busy database must not fail a request
    }
};

KeyStore::KeyStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KeyStore::~KeyStore() = default;
const std::filesystem::path& KeyStore::path() const { return impl_->path; }

Result<std::unique_ptr<KeyStore>> KeyStore::Open(const std::filesystem::path& path, KeyStoreOptions options) {
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    impl->options = options;
    FG_ASSIGN_OR_RETURN(impl->db, internal::OpenDatabase(path));
    FG_RETURN_IF_ERROR(internal::RequireOwnTables(impl->db, path, "api_keys", "a key store"));
    FG_RETURN_IF_ERROR(internal::Exec(impl->db,
                                      "CREATE TABLE IF NOT EXISTS api_keys ("
                                      " id TEXT PRIMARY KEY, name TEXT NOT NULL, scopes TEXT NOT NULL,"
                                      " hash BLOB NOT NULL, created_at INTEGER NOT NULL,"
                                      " last_used_at INTEGER, revoked_at INTEGER)")
                           .WithContext(path.string()));
    return std::unique_ptr<KeyStore>(new KeyStore(std::move(impl)));
}

Result<CreatedKey> KeyStore::Create(std::string_view name, const std::set<std::string>& scopes) {
    FG_RETURN_IF_ERROR(ValidateName(name));
    FG_ASSIGN_OR_RETURN(auto checked, ParseScopes(JoinScopes(scopes)));
    std::array<std::uint8_t, kIdHex / 2 + 32> random{};
    for (int attempt = 0; attempt < 5; ++attempt) {
        if (RAND_bytes(random.data(), int(random.size())) != 1) return Internal("RAND_bytes failed");
        CreatedKey key;
        key.info.id = Hex(random.data(), kIdHex / 2);
        key.info.name = std::string(name);
        key.info.scopes = checked;
        key.info.created_at = Now();
        key.secret = std::string(kPrefix) + key.info.id + "_" + Base64Url(random.data() + kIdHex / 2, 32);
        OPENSSL_cleanse(random.data(), random.size());
        const Hash h = Sha256(key.secret);
        std::lock_guard lock(impl_->db_mu);
        Stmt q(impl_->db, "INSERT INTO api_keys (id, name, scopes, hash, created_at) VALUES (?, ?, ?, ?, ?)");
        q.Bind(1, key.info.id);
        q.Bind(2, key.info.name);
        q.Bind(3, JoinScopes(checked));
        q.BindBlob(4, h.data(), int(h.size()));
        q.Bind(5, key.info.created_at);
        Status s;
        q.Step(s);
        if (s.ok()) return key;
        if (sqlite3_extended_errcode(impl_->db) != SQLITE_CONSTRAINT_PRIMARYKEY) return s;
        // An id collision (1 in 2^48 per pair): draw again.
    }
    return Internal("could not draw a unique key id");
}

Result<std::vector<KeyInfo>> KeyStore::List() {
    std::lock_guard lock(impl_->db_mu);
    Stmt q(impl_->db,
           "SELECT id, name, scopes, created_at, last_used_at, revoked_at FROM api_keys ORDER BY created_at, rowid");
    std::vector<KeyInfo> out;
    Status s;
    while (q.Step(s)) out.push_back(Impl::Row(q, 0));
    if (!s.ok()) return s;
    return out;
}

Status KeyStore::Revoke(std::string_view id) {
    const std::string key_id(id);
    {
        std::lock_guard lock(impl_->db_mu);
        Stmt q(impl_->db, "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?");
        q.Bind(1, Now());
        q.Bind(2, key_id);
        Status s;
        q.Step(s);
        FG_RETURN_IF_ERROR(s);
        if (sqlite3_changes(impl_->db) == 0) return NotFound("no API key with id '" + key_id + "'");
    }
    std::lock_guard lock(impl_->cache_mu);
    impl_->cache.erase(key_id);
    ++impl_->generation;
    return Status::Ok();
}

Result<KeyInfo> KeyStore::Authenticate(std::string_view secret) {
    // Shape first: a malformed token never reaches SQLite or the cache.
    if (secret.size() != kTokenSize || secret.substr(0, kPrefix.size()) != kPrefix ||
        secret[kPrefix.size() + kIdHex] != '_' || !IsHexId(secret.substr(kPrefix.size(), kIdHex)) ||
        !IsBase64Url(secret.substr(kPrefix.size() + kIdHex + 1))) {
        return Unauthenticated("malformed API key");
    }
    const std::string id(secret.substr(kPrefix.size(), kIdHex));
    const Hash presented = Sha256(secret);
    const auto now = std::chrono::steady_clock::now();

    Impl::Entry entry;
    bool cached = false;
    std::uint64_t generation = 0;
    {
        std::lock_guard lock(impl_->cache_mu);
        generation = impl_->generation;
        auto it = impl_->cache.find(id);
        if (it != impl_->cache.end() && now - it->second.fetched < impl_->options.cache_ttl) {
            entry = it->second;
            cached = true;
        }
    }
    if (!cached) {
        FG_ASSIGN_OR_RETURN(entry, impl_->Fetch(id));
        std::lock_guard lock(impl_->cache_mu);
        if (impl_->generation != generation) {
            // Revoked meanwhile: ask again rather than trust (or cache) what was read before.
            FG_ASSIGN_OR_RETURN(entry, impl_->Fetch(id));
        }
        if (impl_->cache.size() >= impl_->options.cache_capacity) impl_->cache.clear();
        auto& slot = impl_->cache[id];
        // Keep the newest last_used write time across refreshes.
        entry.last_used_written = std::max(entry.last_used_written, slot.last_used_written);
        slot = entry;
    }
    // Constant-time: the time taken does not tell how many leading bytes of the hash matched.
    // An unknown id is compared against a zero hash, so it costs the same as a wrong secret.
    const bool match = CRYPTO_memcmp(presented.data(), entry.hash.data(), presented.size()) == 0;
    if (!entry.exists || !match) return Unauthenticated("invalid API key");
    if (entry.info.revoked()) return Unauthenticated("revoked API key");

    const std::int64_t wall = Now();
    if (wall - entry.last_used_written >= kLastUsedEverySeconds) {
        {
            std::lock_guard lock(impl_->cache_mu);
            auto it = impl_->cache.find(id);
            if (it != impl_->cache.end()) {
                if (wall - it->second.last_used_written < kLastUsedEverySeconds) return entry.info;
                it->second.last_used_written = wall;
            }
        }
        impl_->TouchLastUsed(id, wall);
        entry.info.last_used_at = wall;
    }
    return entry.info;
}

}  // namespace fg::auth
