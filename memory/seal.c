/* SPDX-License-Identifier: MIT */
/* HMAC-SHA256 message authentication for the bus (seal.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/macro.h"
#include "memory/seal.h"

/* Inputs up to this size are assembled on the stack; larger ones (job specs) on the heap. */
#define STACK_INPUT 4096

static void put_len(unsigned char *p, uint64_t v) {
        for (int i = 7; i >= 0; i--) {
                p[i] = (unsigned char) (v & 0xff);
                v >>= 8;
        }
}

/*
 * HMAC-SHA256 contexts with their key set, a few per thread (the coordinator
 * seals and checks under the fleet key and a handful of node keys). One-shot
 * HMAC() looks the algorithms up and hashes the padded key every time, which
 * cost more than the message itself (bench/coordinator's auth CPU per step);
 * a cached context is reset to its key (EVP_MAC_init with no key) and fed
 * the parts as they are, without assembling them. Each thread's cache is on
 * a list, so that it stays reachable, and is freed when the thread ends.
 */
#define MAC_CACHE 8
typedef struct mac_cache {
        struct {
                uint8_t key[MEM_SEAL_KEY_BYTES];
                EVP_MAC_CTX *ctx;
                uint64_t used;
        } e[MAC_CACHE];
        uint64_t clock;
        struct mac_cache *prev, *next;
} mac_cache;

static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static pthread_key_t mac_tls;
static bool mac_tls_ok;
static EVP_MAC *mac_hmac;
static pthread_mutex_t mac_lock = PTHREAD_MUTEX_INITIALIZER;
static mac_cache *mac_caches;

static void mac_cache_free(void *p) {
        mac_cache *c = p;

        pthread_mutex_lock(&mac_lock);
        if (c->prev)
                c->prev->next = c->next;
        else
                mac_caches = c->next;
        if (c->next)
                c->next->prev = c->prev;
        pthread_mutex_unlock(&mac_lock);
        for (size_t i = 0; i < MAC_CACHE; i++)
                EVP_MAC_CTX_free(c->e[i].ctx);
        OPENSSL_cleanse(c, sizeof(*c));
        free(c);
}

static void mac_setup(void) {
        mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        mac_tls_ok = pthread_key_create(&mac_tls, mac_cache_free) == 0;
}

/* This thread's HMAC-SHA256 context for key, ready for the message; NULL (use HMAC()) when there is none. */
static EVP_MAC_CTX *mac_ctx(const uint8_t key[MEM_SEAL_KEY_BYTES]) {
        mac_cache *c;
        size_t victim = 0;

        if (pthread_once(&mac_once, mac_setup) != 0 || !mac_hmac || !mac_tls_ok)
                return NULL;
        c = pthread_getspecific(mac_tls);
        if (!c) {
                c = calloc(1, sizeof(*c));
                if (!c)
                        return NULL;
                if (pthread_setspecific(mac_tls, c) != 0) {
                        free(c);
                        return NULL;
                }
                pthread_mutex_lock(&mac_lock);
                c->next = mac_caches;
                if (mac_caches)
                        mac_caches->prev = c;
                mac_caches = c;
                pthread_mutex_unlock(&mac_lock);
        }
        c->clock++;
        for (size_t i = 0; i < MAC_CACHE; i++) {
                if (c->e[i].ctx && CRYPTO_memcmp(c->e[i].key, key, MEM_SEAL_KEY_BYTES) == 0) {
                        c->e[i].used = c->clock;
                        return EVP_MAC_init(c->e[i].ctx, NULL, 0, NULL) == 1 ? c->e[i].ctx : NULL;
                }
                if (c->e[i].used < c->e[victim].used)
                        victim = i;
        }
        /* Not cached: the least recently used entry gets this key. */
        EVP_MAC_CTX_free(c->e[victim].ctx);
        OPENSSL_cleanse(&c->e[victim], sizeof(c->e[victim]));
        EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac_hmac);
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        if (!ctx || EVP_MAC_init(ctx, key, MEM_SEAL_KEY_BYTES, params) != 1) {
                EVP_MAC_CTX_free(ctx);
                return NULL;
        }
        memcpy(c->e[victim].key, key, MEM_SEAL_KEY_BYTES);
        c->e[victim].ctx = ctx;
        c->e[victim].used = c->clock;
        return ctx;
}

/* The MAC through a cached context; false when that could not be done (then HMAC() does it). */
static bool mac_cached(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *domain, const char *const *parts,
                       const size_t *lens, size_t n, uint8_t out[32]) {
        EVP_MAC_CTX *ctx = mac_ctx(key);
        unsigned char len[8];
        size_t outlen = 0;

        if (!ctx || EVP_MAC_update(ctx, (const unsigned char *) domain, strlen(domain)) != 1)
                return false;
        for (size_t i = 0; i < n; i++) {
                put_len(len, lens[i]);
                if (EVP_MAC_update(ctx, len, sizeof(len)) != 1 ||
                    (lens[i] > 0 && EVP_MAC_update(ctx, (const unsigned char *) parts[i], lens[i]) != 1))
                        return false;
        }
        return EVP_MAC_final(ctx, out, &outlen, 32) == 1 && outlen == 32;
}

int mem_seal_mac_raw(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *domain, const char *const *parts,
                     const size_t *lens, size_t n, uint8_t out[32]) {
        unsigned char stack[STACK_INPUT];
        _cleanup_free_ unsigned char *heap = NULL;
        unsigned char *buf = stack, *p;
        size_t dlen = strlen(domain), total = dlen;
        unsigned int outlen = 0;

        for (size_t i = 0; i < n; i++) {
                if (lens[i] > SIZE_MAX / 2 - total - 8)
                        return -E2BIG;
                total += 8 + lens[i];
        }
        if (mac_cached(key, domain, parts, lens, n, out))
                return 0;
        if (total > sizeof(stack)) {
                heap = malloc(total);
                if (!heap)
                        return -ENOMEM;
                buf = heap;
        }
        p = buf;
        memcpy(p, domain, dlen);
        p += dlen;
        for (size_t i = 0; i < n; i++) {
                put_len(p, lens[i]);
                p += 8;
                if (lens[i] > 0)
                        memcpy(p, parts[i], lens[i]);
                p += lens[i];
        }
        if (!HMAC(EVP_sha256(), key, MEM_SEAL_KEY_BYTES, buf, total, out, &outlen) || outlen != 32)
                return -ENOMEM;
        return 0;
}

void mem_seal_hex(const uint8_t *in, size_t n, char *out) {
        au_hex(in, n, out);
}

int mem_seal_mac(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *domain, const char *const *parts,
                 const size_t *lens, size_t n, char out[MEM_SEAL_HEX_LEN + 1]) {
        uint8_t raw[32];
        int r = mem_seal_mac_raw(key, domain, parts, lens, n, raw);
        if (r < 0)
                return r;
        mem_seal_hex(raw, sizeof(raw), out);
        OPENSSL_cleanse(raw, sizeof(raw));
        return 0;
}

bool mem_seal_check(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *domain, const char *const *parts,
                    const size_t *lens, size_t n, const char *mac, size_t len) {
        char want[MEM_SEAL_HEX_LEN + 1];

        if (!mac || len != MEM_SEAL_HEX_LEN || mem_seal_mac(key, domain, parts, lens, n, want) < 0)
                return false;
        return CRYPTO_memcmp(want, mac, MEM_SEAL_HEX_LEN) == 0;
}

int mem_seal_node_key(const uint8_t fleet[MEM_SEAL_KEY_BYTES], const char *node, unsigned generation,
                      uint8_t ret[MEM_SEAL_KEY_BYTES]) {
        char gen[16];
        snprintf(gen, sizeof(gen), "%u", generation);
        const char *parts[] = {node, gen};
        size_t lens[] = {strlen(node), strlen(gen)};
        return mem_seal_mac_raw(fleet, MEM_SEAL_NODE_KEY, parts, lens, 2, ret);
}

int mem_seal_key_parse(const char *text, size_t len, uint8_t ret[MEM_SEAL_KEY_BYTES]) {
        uint8_t k[MEM_SEAL_KEY_BYTES];

        while (len > 0 && (text[0] == ' ' || text[0] == '\t' || text[0] == '\n' || text[0] == '\r')) {
                text++;
                len--;
        }
        while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
                           text[len - 1] == '\r'))
                len--;
        if (au_unhex(text, len, k, sizeof(k)) < 0) { /* exactly MEM_SEAL_HEX_LEN digits */
                OPENSSL_cleanse(k, sizeof(k));
                return -EINVAL;
        }
        memcpy(ret, k, sizeof(k));
        OPENSSL_cleanse(k, sizeof(k));
        return 0;
}

int mem_seal_key_load(const char *path, uint8_t ret[MEM_SEAL_KEY_BYTES], au_error *err) {
        _cleanup_close_ int fd = -1;
        char buf[256];
        struct stat st;
        ssize_t n;

        if (!path || !*path)
                return au_error_set_field(err, "key_file", "no key file given");
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return au_error_set(err, errno, "open key file %s", path);
        if (fstat(fd, &st) < 0)
                return au_error_set(err, errno, "stat key file %s", path);
        if (!S_ISREG(st.st_mode))
                return au_error_set_field(err, "key_file", "key file %s is not a regular file", path);
        if (st.st_mode & 077) {
                au_error_set_field(
                        err, "key_file",
                        "key file %s has mode %04o: it must be readable by its owner only (chmod 600)", path,
                        (unsigned) (st.st_mode & 07777));
                return -EPERM;
        }
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return au_error_set(err, errno, "read key file %s", path);
        if (mem_seal_key_parse(buf, (size_t) n, ret) < 0) {
                OPENSSL_cleanse(buf, sizeof(buf));
                return au_error_set_field(err, "key_file", "key file %s does not hold 64 hex digits", path);
        }
        OPENSSL_cleanse(buf, sizeof(buf));
        return 0;
}

int mem_seal_key_save(const char *path, const uint8_t key[MEM_SEAL_KEY_BYTES], au_error *err) {
        char hex[MEM_SEAL_HEX_LEN + 2];
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        int r = 0;

        if (fd < 0)
                return au_error_set(err, errno, "create key file %s", path);
        mem_seal_hex(key, MEM_SEAL_KEY_BYTES, hex);
        hex[MEM_SEAL_HEX_LEN] = '\n';
        hex[MEM_SEAL_HEX_LEN + 1] = '\0';
        if (write(fd, hex, MEM_SEAL_HEX_LEN + 1) != MEM_SEAL_HEX_LEN + 1 || fsync(fd) < 0) {
                r = au_error_set(err, errno ? errno : EIO, "write key file %s", path);
                unlink(path);
        }
        OPENSSL_cleanse(hex, sizeof(hex));
        return r;
}

int mem_seal_random(uint8_t *out, size_t n) {
        return RAND_bytes(out, (int) n) == 1 ? 0 : -EIO;
}
