// SPDX-License-Identifier: Apache-2.0
#include "fg/gallery/crypto.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

namespace fg::gallery {
namespace {

constexpr int kNonce = 12;
constexpr int kTag = 16;

std::string Hex(const std::uint8_t* p, size_t n) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; ++i) {
        s += d[p[i] >> 4];
        s += d[p[i] & 15];
    }
    return s;
}

TemplateKey MakeKey(std::vector<std::uint8_t> bytes) {
    std::uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(bytes.data(), bytes.size(), digest);
    return {Hex(digest, 8), std::move(bytes)};
}

struct CtxFree {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

}  // namespace

Result<TemplateKey> ParseKey(std::string_view text) {
    if (text.size() == 32) {
        return MakeKey(std::vector<std::uint8_t>(text.begin(), text.end()));
    }
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
        text.remove_suffix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
        text.remove_prefix(1);
    if (text.size() != 64) {
        return InvalidArgument(
            "a gallery key is 64 hex characters (256 bits) or 32 raw bytes; got " +
            std::to_string(text.size()) + " characters");
    }
    std::vector<std::uint8_t> bytes(32);
    for (size_t i = 0; i < 32; ++i) {
        auto nib = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        const int hi = nib(text[2 * i]), lo = nib(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return InvalidArgument("a gallery key must be hexadecimal");
        bytes[i] = std::uint8_t(hi * 16 + lo);
    }
    return MakeKey(std::move(bytes));
}

Result<TemplateKey> LoadKeyFile(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return NotFound("key file not found: " + path.string());
    if (st.st_mode & 077) {
        return FailedPrecondition("key file " + path.string() +
                                  " is readable by other users; chmod 600 it");
    }
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in && !in.eof()) return Unavailable("cannot read key file " + path.string());
    auto key = ParseKey(text);
    if (!key.ok()) return key.status().WithContext(path.string());
    return key;
}

Result<TemplateKey> LoadKeyEnv(const std::string& variable) {
    const char* v = std::getenv(variable.c_str());
    if (!v || !*v) return NotFound("environment variable " + variable + " is not set");
    auto key = ParseKey(v);
    if (!key.ok()) return key.status().WithContext(variable);
    return key;
}

Result<TemplateKey> CreateKeyFile(const std::filesystem::path& path) {
    std::vector<std::uint8_t> bytes(32);
    if (RAND_bytes(bytes.data(), 32) != 1) return Internal("RAND_bytes failed");
    std::error_code ec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    const std::string hex = Hex(bytes.data(), bytes.size()) + "\n";
    // O_EXCL: never overwrite a key; mode 0600 at creation: no window in which the key is
    // readable by others (the umask can only remove bits).
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return Unavailable("cannot create key file " + path.string() + ": " + std::strerror(errno));
    size_t done = 0;
    bool ok = true;
    while (ok && done < hex.size()) {
        const ssize_t w = ::write(fd, hex.data() + done, hex.size() - done);
        ok = w > 0;
        if (ok) done += size_t(w);
    }
    ok = ok && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
        ::unlink(path.c_str());
        return Unavailable("cannot write key file " + path.string());
    }
    // The new directory entry must survive a power cut too, or the key is lost with it.
    FsyncParentDir(path);
    return MakeKey(std::move(bytes));
}

void FsyncParentDir(const std::filesystem::path& path) {
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

std::vector<std::string> KeyRing::old_ids() const {
    std::vector<std::string> ids;
    for (const TemplateKey& k : old_) ids.push_back(k.id);
    return ids;
}

Result<std::string> KeyRing::Mac(const std::string& key_id, std::string_view data) const {
    const TemplateKey* key = Find(key_id);
    if (!key) return FailedPrecondition("key " + key_id + " is not in the key ring given");
    static constexpr std::string_view kInfo = "facegate-gallery-settings-v1";
    std::uint8_t derived[32];
    size_t n = sizeof derived;
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
    const bool ok =
        ctx != nullptr && EVP_PKEY_derive_init(ctx) > 0 &&
        EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
        EVP_PKEY_CTX_set1_hkdf_key(ctx, key->bytes.data(), int(key->bytes.size())) > 0 &&
        EVP_PKEY_CTX_add1_hkdf_info(ctx, reinterpret_cast<const unsigned char*>(kInfo.data()),
                                    int(kInfo.size())) > 0 &&
        EVP_PKEY_derive(ctx, derived, &n) > 0 && n == sizeof derived;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) return Internal("HKDF-SHA256 failed");
    std::uint8_t mac[32];
    unsigned mac_len = 0;
    if (!HMAC(EVP_sha256(), derived, int(sizeof derived),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &mac_len) ||
        mac_len != sizeof mac) {
        OPENSSL_cleanse(derived, sizeof derived);
        return Internal("HMAC-SHA256 failed");
    }
    OPENSSL_cleanse(derived, sizeof derived);
    return Hex(mac, mac_len);
}

const TemplateKey* KeyRing::Find(const std::string& id) const {
    if (id == current_.id) return &current_;
    for (const TemplateKey& k : old_) {
        if (k.id == id) return &k;
    }
    return nullptr;
}

// EVP lengths are int: a million-template index snapshot (2 GB) goes through in 1 GiB pieces.
// GCM is a stream mode, so every piece comes out at once and at the same length.
static bool UpdateInChunks(EVP_CIPHER_CTX* ctx, const std::uint8_t* in, size_t n, std::uint8_t* out,
                    bool encrypt) {
    constexpr size_t kChunk = size_t(1) << 30;
    for (size_t done = 0; done < n;) {
        const int piece = int(std::min(kChunk, n - done));
        int len = 0;
        const int ok = encrypt ? EVP_EncryptUpdate(ctx, out + done, &len, in + done, piece)
                               : EVP_DecryptUpdate(ctx, out + done, &len, in + done, piece);
        if (ok != 1 || len != piece) return false;
        done += size_t(piece);
    }
    return true;
}

Result<std::vector<std::uint8_t>> KeyRing::SealBytes(std::span<const std::uint8_t> plain,
                                                     std::string_view aad) const {
    std::vector<std::uint8_t> out(kNonce + plain.size() + kTag);
    if (RAND_bytes(out.data(), kNonce) != 1) return Internal("RAND_bytes failed");
    std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!ctx ||
        EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, current_.bytes.data(),
                           out.data()) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                          reinterpret_cast<const unsigned char*>(aad.data()),
                          int(aad.size())) != 1 ||
        !UpdateInChunks(ctx.get(), plain.data(), plain.size(), out.data() + kNonce, true) ||
        EVP_EncryptFinal_ex(ctx.get(), out.data() + kNonce + plain.size(), &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag,
                            out.data() + kNonce + plain.size()) != 1) {
        return Internal("AES-256-GCM encryption failed");
    }
    return out;
}

Result<std::span<std::uint8_t>> KeyRing::OpenBytesInPlace(std::span<std::uint8_t> sealed,
                                                          const std::string& key_id,
                                                          std::string_view aad) const {
    const TemplateKey* key = Find(key_id);
    if (!key) {
        return FailedPrecondition("template sealed with key " + key_id + ", but the key given is " +
                                  current_.id + " (wrong key, or pass the old key to rotate)");
    }
    if (sealed.size() < size_t(kNonce + kTag)) return DataLoss("sealed template too short");
    const size_t n = sealed.size() - kNonce - kTag;
    std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    std::uint8_t tag[kTag];
    std::memcpy(tag, sealed.data() + kNonce + n, kTag);
    // GCM decrypts in place (output == input) in OpenSSL.
    std::uint8_t* text = sealed.data() + kNonce;
    if (!ctx ||
        EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key->bytes.data(),
                           sealed.data()) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                          reinterpret_cast<const unsigned char*>(aad.data()),
                          int(aad.size())) != 1 ||
        !UpdateInChunks(ctx.get(), text, n, text, false) ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag) != 1) {
        return Internal("AES-256-GCM decryption failed");
    }
    std::uint8_t final_block[16];
    if (EVP_DecryptFinal_ex(ctx.get(), final_block, &len) != 1) {
        return DataLoss("template failed authentication (tampered or corrupted data)");
    }
    return std::span<std::uint8_t>(text, n);
}

Result<std::vector<std::uint8_t>> KeyRing::OpenBytes(std::span<const std::uint8_t> sealed,
                                                     const std::string& key_id,
                                                     std::string_view aad) const {
    std::vector<std::uint8_t> copy(sealed.begin(), sealed.end());
    FG_ASSIGN_OR_RETURN(std::span<std::uint8_t> plain, OpenBytesInPlace(copy, key_id, aad));
    // The plaintext sits after the nonce: move it to the front and drop the rest.
    std::memmove(copy.data(), plain.data(), plain.size());
    copy.resize(plain.size());
    return copy;
}

Result<std::vector<std::uint8_t>> KeyRing::Seal(std::span<const float> values,
                                                std::string_view aad) const {
    std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(values.data()),
                                        values.size_bytes());
    return SealBytes(bytes, aad);
}

Result<std::vector<float>> KeyRing::Open(std::span<const std::uint8_t> sealed,
                                         const std::string& key_id, std::string_view aad) const {
    FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, OpenBytes(sealed, key_id, aad));
    if (bytes.size() % sizeof(float) != 0) return DataLoss("sealed template has a partial float");
    std::vector<float> v(bytes.size() / sizeof(float));
    std::memcpy(v.data(), bytes.data(), bytes.size());
    return v;
}

}  // namespace fg::gallery
