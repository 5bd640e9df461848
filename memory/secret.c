/* SPDX-License-Identifier: MIT */
/* AES-256-GCM boxes for secrets, and the masking of their values (secret.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/json.h"
#include "common/macro.h"
#include "memory/secret.h"

static void put_len(unsigned char *p, uint64_t v) {
        for (int i = 7; i >= 0; i--) {
                p[i] = (unsigned char) (v & 0xff);
                v >>= 8;
        }
}

/* The framed associated data (as seal.c frames a MAC's input); NULL on ENOMEM. */
static unsigned char *frame_aad(const char *domain, const char *const *parts, const size_t *lens, size_t n,
                                size_t *ret_len) {
        size_t total = strlen(domain);
        unsigned char *buf, *p;

        for (size_t i = 0; i < n; i++) {
                if (lens[i] > SIZE_MAX / 2 - total - 8)
                        return NULL;
                total += 8 + lens[i];
        }
        buf = malloc(total ? total : 1);
        if (!buf)
                return NULL;
        p = buf;
        memcpy(p, domain, strlen(domain));
        p += strlen(domain);
        for (size_t i = 0; i < n; i++) {
                put_len(p, lens[i]);
                p += 8;
                if (lens[i] > 0)
                        memcpy(p, parts[i], lens[i]);
                p += lens[i];
        }
        *ret_len = total;
        return buf;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free);

int mem_secret_seal(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *domain, const char *const *parts,
                    const size_t *lens, size_t n, const void *plain, size_t len, uint8_t **ret_box,
                    size_t *ret_len) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
        _cleanup_free_ unsigned char *aad = NULL;
        _cleanup_free_ uint8_t *box = NULL;
        size_t aad_len = 0;
        int out = 0, fin = 0;

        if (len > (size_t) INT32_MAX - MEM_SECRET_OVERHEAD)
                return -E2BIG;
        aad = frame_aad(domain, parts, lens, n, &aad_len);
        box = malloc(len + MEM_SECRET_OVERHEAD);
        ctx = EVP_CIPHER_CTX_new();
        if (!aad || !box || !ctx)
                return -ENOMEM;
        if (mem_seal_random(box, MEM_SECRET_NONCE_BYTES) < 0)
                return -EIO;
        if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, box) != 1 ||
            EVP_EncryptUpdate(ctx, NULL, &out, aad, (int) aad_len) != 1 ||
            EVP_EncryptUpdate(ctx, box + MEM_SECRET_NONCE_BYTES, &out, plain, (int) len) != 1 ||
            EVP_EncryptFinal_ex(ctx, box + MEM_SECRET_NONCE_BYTES + out, &fin) != 1 ||
            (size_t) (out + fin) != len ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MEM_SECRET_TAG_BYTES,
                                box + MEM_SECRET_NONCE_BYTES + len) != 1)
                return -EIO;
        *ret_box = TAKE_PTR(box);
        *ret_len = len + MEM_SECRET_OVERHEAD;
        return 0;
}

int mem_secret_open(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *domain, const char *const *parts,
                    const size_t *lens, size_t n, const uint8_t *box, size_t len, char **ret_plain,
                    size_t *ret_len) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
        _cleanup_free_ unsigned char *aad = NULL;
        char *plain;
        size_t aad_len = 0, clen;
        int out = 0, fin = 0;
        uint8_t tag[MEM_SECRET_TAG_BYTES];

        if (!box || len < MEM_SECRET_OVERHEAD || len > (size_t) INT32_MAX)
                return -EBADMSG;
        clen = len - MEM_SECRET_OVERHEAD;
        aad = frame_aad(domain, parts, lens, n, &aad_len);
        ctx = EVP_CIPHER_CTX_new();
        plain = malloc(clen + 1);
        if (!aad || !ctx || !plain) {
                free(plain);
                return -ENOMEM;
        }
        memcpy(tag, box + MEM_SECRET_NONCE_BYTES + clen, sizeof(tag));
        if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, box) != 1 ||
            EVP_DecryptUpdate(ctx, NULL, &out, aad, (int) aad_len) != 1 ||
            EVP_DecryptUpdate(ctx, (unsigned char *) plain, &out, box + MEM_SECRET_NONCE_BYTES,
                              (int) clen) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag) != 1 ||
            EVP_DecryptFinal_ex(ctx, (unsigned char *) plain + out, &fin) != 1 ||
            (size_t) (out + fin) != clen) {
                OPENSSL_cleanse(plain, clen + 1);
                free(plain);
                return -EBADMSG;
        }
        plain[clen] = '\0';
        *ret_plain = plain;
        *ret_len = clen;
        return 0;
}

int mem_secret_node_key(const uint8_t node_key[MEM_SEAL_KEY_BYTES], uint8_t ret[MEM_SEAL_KEY_BYTES]) {
        return mem_seal_mac_raw(node_key, MEM_SECRET_RUN, NULL, NULL, 0, ret);
}

/* ---- masking ---------------------------------------------------------------------------------- */

typedef struct pattern {
        const char *p;
        size_t len;
} pattern;

static int by_length_desc(const void *a, const void *b) {
        const pattern *x = a, *y = b;
        return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

int mem_secret_mask(const char *const *vals, const size_t *lens, size_t n, const char *buf, size_t len,
                    bool truncated, char **ret, size_t *ret_len) {
        _cleanup_free_ pattern *pats = NULL;
        char **b64 = NULL;
        size_t n_pats = 0, out_len = 0, cap, i = 0;
        char *out = NULL;
        bool masked = false, first[256] = {false};
        int r = -ENOMEM;

        *ret = NULL;
        *ret_len = 0;
        if (n == 0 || len == 0)
                return 0;
        pats = calloc(2 * n, sizeof(pattern));
        b64 = calloc(n, sizeof(char *));
        if (!pats || !b64)
                goto out;
        for (size_t k = 0; k < n; k++) {
                if (lens[k] == 0)
                        continue;
                pats[n_pats++] = (pattern){vals[k], lens[k]};
                if (lens[k] >= 6) {
                        /* Whole groups only: the last, partial one depends on what follows the value. */
                        b64[k] = au_base64_encode(vals[k], lens[k] / 3 * 3);
                        if (!b64[k])
                                goto out;
                        pats[n_pats++] = (pattern){b64[k], strlen(b64[k])};
                }
        }
        qsort(pats, n_pats, sizeof(pattern), by_length_desc);
        /* Most bytes start no value: those are copied without comparing (20x faster on typical output). */
        for (size_t k = 0; k < n_pats; k++)
                first[(unsigned char) pats[k].p[0]] = true;

        /* At most one mask per input byte, so this bounds the output. */
        cap = len * sizeof(MEM_SECRET_MASK) + 1;
        out = malloc(cap);
        if (!out)
                goto out;
        while (i < len) {
                bool hit = false;
                if (!first[(unsigned char) buf[i]]) {
                        out[out_len++] = buf[i++];
                        continue;
                }
                for (size_t k = 0; k < n_pats && !hit; k++) {
                        const pattern *p = &pats[k];
                        if (p->len <= len - i && memcmp(buf + i, p->p, p->len) == 0) {
                                memcpy(out + out_len, MEM_SECRET_MASK, strlen(MEM_SECRET_MASK));
                                out_len += strlen(MEM_SECRET_MASK);
                                i += p->len;
                                hit = masked = true;
                        }
                }
                if (hit)
                        continue;
                if (truncated) {
                        /* The output was cut here: a tail that begins a value is masked. */
                        for (size_t k = 0; k < n_pats && !hit; k++) {
                                const pattern *p = &pats[k];
                                if (p->len > len - i && memcmp(buf + i, p->p, len - i) == 0)
                                        hit = true;
                        }
                        if (hit) {
                                memcpy(out + out_len, MEM_SECRET_MASK, strlen(MEM_SECRET_MASK));
                                out_len += strlen(MEM_SECRET_MASK);
                                masked = true;
                                break;
                        }
                }
                out[out_len++] = buf[i++];
        }
        out[out_len] = '\0';
        r = 0;
        if (masked) {
                *ret = TAKE_PTR(out);
                *ret_len = out_len;
        }
out:
        if (out)
                OPENSSL_cleanse(out, cap);
        free(out);
        for (size_t k = 0; b64 && k < n; k++)
                if (b64[k]) {
                        OPENSSL_cleanse(b64[k], strlen(b64[k]));
                        free(b64[k]);
                }
        free(b64);
        return r;
}
