/* SPDX-License-Identifier: MIT */
/*
 * Secrets (doc/trust.md "Secrets"): AES-256-GCM through OpenSSL libcrypto,
 * with associated data framed as the bus's MACs are (a domain, then for
 * each part an 8-byte big-endian length and its bytes), and the masking of
 * secret values in a run's output before the result leaves the node.
 *
 * A sealed box is nonce (12 random bytes) ‖ ciphertext ‖ tag (16 bytes). The
 * associated data binds a box to where it belongs: in the coordinator's
 * store to the secret's name and version, on the way to a node to the run
 * id and the node, so a box moved anywhere else does not open.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memory/seal.h"

#define MEM_SECRET_NONCE_BYTES 12
#define MEM_SECRET_TAG_BYTES 16
#define MEM_SECRET_OVERHEAD (MEM_SECRET_NONCE_BYTES + MEM_SECRET_TAG_BYTES)

/* Associated-data domains. */
#define MEM_SECRET_STORE "autoos/secret-store/v1" /* parts: name, version */
#define MEM_SECRET_RUN "autoos/secret/v1"         /* parts: run id, node; also the node's key derivation */

/*
 * Seals len bytes of plaintext under key with the associated data (domain
 * and n parts, framed) into a new box of len + MEM_SECRET_OVERHEAD bytes
 * (*ret_box, the caller frees). Returns 0, -ENOMEM, or -EIO when libcrypto
 * or the random source failed. Outputs untouched on failure.
 */
int mem_secret_seal(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *domain, const char *const *parts,
                    const size_t *lens, size_t n, const void *plain, size_t len, uint8_t **ret_box,
                    size_t *ret_len);

/*
 * Opens a box (untrusted, len bytes) sealed with key and the same
 * associated data. *ret_plain is malloc'd with a NUL after its *ret_len
 * bytes; the caller wipes (OPENSSL_cleanse) and frees it. -EBADMSG when the
 * box is too short, was altered, or was sealed under another key or other
 * associated data; -ENOMEM. Outputs untouched on failure.
 */
int mem_secret_open(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *domain, const char *const *parts,
                    const size_t *lens, size_t n, const uint8_t *box, size_t len, char **ret_plain,
                    size_t *ret_len);

/* A node's secret key from its node key: HMAC(node key, MEM_SECRET_RUN) (no parts). */
int mem_secret_node_key(const uint8_t node_key[MEM_SEAL_KEY_BYTES], uint8_t ret[MEM_SEAL_KEY_BYTES]);

#define MEM_SECRET_MAX_NAME 128
#define MEM_SECRET_MAX_PER_STEP 32

/* A secret's name: 1 to 128 of [A-Za-z0-9._-], the first a letter or a digit (safe in a URL path and a log).
 */
static inline bool mem_secret_name_valid(const char *name) {
        size_t i;

        for (i = 0; name && name[i]; i++) {
                char ch = name[i];
                if (i >= MEM_SECRET_MAX_NAME ||
                    !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                      (i > 0 && (ch == '.' || ch == '_' || ch == '-'))))
                        return false;
        }
        return name && i > 0;
}

#define MEM_SECRET_MASK "***"

/*
 * Masks the n values (vals[i], lens[i] bytes; empty ones are skipped) in
 * buf (len bytes, any bytes): every occurrence, longest values first, is
 * replaced by MEM_SECRET_MASK; so is the base64 form of a value (its whole
 * 4-character groups, for values of 6 bytes or more), as `base64` prints
 * it. When truncated (the output was cut), a tail of buf that is the start
 * of a value is masked too, so a cut does not leave a prefix of a value.
 * Returns a new buffer (*ret, NUL-terminated, *ret_len bytes) or NULL in
 * *ret when nothing was masked; 0 or -ENOMEM.
 */
int mem_secret_mask(const char *const *vals, const size_t *lens, size_t n, const char *buf, size_t len,
                    bool truncated, char **ret, size_t *ret_len);
