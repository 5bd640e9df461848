/* SPDX-License-Identifier: MIT */
/*
 * The audit trail's hash chain and signed checkpoints, computed outside
 * PostgreSQL: what the coordinator signs and what `autoosctl audit --verify`
 * checks with no help from the database (sql/001_init.sql, 004_signed_audit.sql).
 *
 *   canonical(row) = the text PostgreSQL's jsonb prints for
 *                    [workflow_id, seq, ts_epoch_us, actor, action, detail]
 *   hash           = sha256(prev_hash || canonical(row)), prev_hash of seq 1 = 32 zero bytes
 *   checkpoint     = Ed25519 signature of mem_audit_checkpoint_message():
 *                    "autoos-audit-checkpoint-v1\nchain=<uuid|fleet>\nseq=<N>\n"
 *                    "hash=<64 hex>\nts_epoch_us=<N>\n"
 *
 * Keys are Ed25519 (OpenSSL libcrypto, EVP_PKEY_ED25519): the private key in
 * a PKCS#8 PEM file of mode 0600, the public key in a SubjectPublicKeyInfo PEM
 * file; a key's id is the first 16 hex digits of sha256(raw 32-byte public key).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <yajl/yajl_tree.h>

#include "common/error.h"
#include "common/macro.h"

#define MEM_AUDIT_HASH_BYTES 32
#define MEM_AUDIT_SIG_BYTES 64
#define MEM_AUDIT_KEY_ID_LEN 16
/* The longest checkpoint message, with its NUL. */
#define MEM_AUDIT_MESSAGE_MAX 256

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
#define _cleanup_pkey_ _cleanup_(EVP_PKEY_freep)

/*
 * The canonical bytes of one audit row, exactly as autoos_audit_canonical()
 * makes them in PostgreSQL: jsonb's text of the array (", " and ": "
 * separators, object keys ordered by length then bytes with the last of
 * duplicates kept, strings escaped as PostgreSQL's escape_json(), numbers as
 * their text). workflow NULL: the fleet chain (null). detail is the parsed row
 * detail as the API returns it (jsonb's own text, so numbers are already in
 * PostgreSQL's form). *ret is malloc'd, NUL-terminated; *ret_len its length.
 * Returns 0 or -ENOMEM (-EINVAL for a detail that is not JSON data).
 */
int mem_audit_canonical(const char *workflow, int64_t seq, int64_t ts_epoch_us, const char *actor,
                        const char *action, yajl_val detail, char **ret, size_t *ret_len);

/* out = sha256(prev || canonical[0..len)). */
void mem_audit_chain_hash(const unsigned char prev[MEM_AUDIT_HASH_BYTES], const char *canonical, size_t len,
                          unsigned char out[MEM_AUDIT_HASH_BYTES]);

/*
 * The bytes a checkpoint signs (see above), NUL-terminated in buf; returns
 * their length, or -ENOBUFS when buf is too small (MEM_AUDIT_MESSAGE_MAX is
 * enough). workflow NULL: the fleet chain.
 */
int mem_audit_checkpoint_message(const char *workflow, int64_t seq,
                                 const unsigned char hash[MEM_AUDIT_HASH_BYTES], int64_t ts_epoch_us,
                                 char *buf, size_t size);

/* The key's id (16 lowercase hex digits and a NUL). Returns 0, or -EINVAL for a key that is not Ed25519. */
int mem_audit_key_id(EVP_PKEY *key, char out[MEM_AUDIT_KEY_ID_LEN + 1]);

/*
 * Makes a new Ed25519 key: the private key in path (created, never
 * overwritten, mode 0600) and the public key in path + ".pub" (mode 0644).
 * *ret_public_pem (malloc'd) gets the public key's PEM text. Errors name the
 * file: -EEXIST when path exists.
 */
int mem_audit_key_create(const char *path, char **ret_public_pem, char ret_key_id[MEM_AUDIT_KEY_ID_LEN + 1],
                         au_error *err);

/*
 * Loads the private key from path: a PEM Ed25519 private key, owned by the
 * caller's uid (or root) and readable by nobody else (mode 0600 or 0400).
 */
int mem_audit_key_load_private(const char *path, EVP_PKEY **ret, au_error *err);

/* Loads a PEM Ed25519 public key (a private key's file works too; only its public half is kept). */
int mem_audit_key_load_public(const char *path, EVP_PKEY **ret, au_error *err);

/* Signs msg[0..len) with key. Returns 0 or -EIO. */
int mem_audit_sign(EVP_PKEY *key, const void *msg, size_t len, unsigned char sig[MEM_AUDIT_SIG_BYTES]);

/* True when sig is key's signature of msg[0..len). */
bool mem_audit_verify(EVP_PKEY *key, const void *msg, size_t len,
                      const unsigned char sig[MEM_AUDIT_SIG_BYTES]);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void mem_audit_hex(const unsigned char *in, size_t n, char *out);

/* Parses exactly 2n hex digits into out. Returns 0 or -EINVAL. */
int mem_audit_unhex(const char *s, unsigned char *out, size_t n);
