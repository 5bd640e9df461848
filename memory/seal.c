/* SPDX-License-Identifier: MIT */
/* HMAC-SHA256 message authentication for the bus (seal.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

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
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * n] = '\0';
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

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
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
        if (len != MEM_SEAL_HEX_LEN)
                return -EINVAL;
        for (size_t i = 0; i < MEM_SEAL_KEY_BYTES; i++) {
                int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                k[i] = (uint8_t) (hi << 4 | lo);
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
