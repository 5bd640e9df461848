/* SPDX-License-Identifier: MIT */
/*
 * Message authentication on the bus (DESIGN.md "Node <-> coordinator"):
 * HMAC-SHA256 with a 256-bit key per node, through OpenSSL libcrypto.
 *
 * A MAC covers a domain string (what the message is: "autoos/job/v1", ...)
 * and a list of parts, each fed as an 8-byte big-endian length and its
 * bytes, so that no two different part lists give the same input. MACs
 * travel as 64 lowercase hex digits.
 *
 * Node keys are not stored anywhere but in the node's key file: the
 * coordinator derives them from its fleet key (a file outside PostgreSQL)
 * as HMAC(fleet key, "autoos/node-key/v1" | node | generation), and
 * PostgreSQL holds only which nodes are enrolled at which generation.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define MEM_SEAL_KEY_BYTES 32
#define MEM_SEAL_HEX_LEN 64 /* hex digits of a MAC, a key or a token */

/* Domains: one per kind of message, so that a MAC of one kind is never valid as another. */
#define MEM_SEAL_JOB "autoos/job/v1"
#define MEM_SEAL_CANCEL "autoos/cancel/v1"
#define MEM_SEAL_RESULT "autoos/result/v1"
#define MEM_SEAL_HEARTBEAT "autoos/heartbeat/v1"
#define MEM_SEAL_NODE_KEY "autoos/node-key/v1"
#define MEM_SEAL_TOKEN "autoos/dispatch-token/v1"
#define MEM_SEAL_REDIS_PASSWORD "autoos/redis-password/v1"

/*
 * HMAC-SHA256 under key of domain and the n parts (parts[i] of lens[i]
 * bytes; a NULL part with length 0 is the empty string) into out as 64 hex
 * digits and a NUL. Returns 0, or -ENOMEM.
 */
int mem_seal_mac(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *domain, const char *const *parts,
                 const size_t *lens, size_t n, char out[MEM_SEAL_HEX_LEN + 1]);

/* The same MAC as raw bytes (for keys derived from keys). */
int mem_seal_mac_raw(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *domain, const char *const *parts,
                     const size_t *lens, size_t n, uint8_t out[32]);

/*
 * True when mac (len bytes, untrusted) is the MAC of domain and parts under
 * key. The comparison takes the same time wherever the first difference is.
 */
bool mem_seal_check(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *domain, const char *const *parts,
                    const size_t *lens, size_t n, const char *mac, size_t len);

/* A node's key from the fleet key: HMAC(fleet, MEM_SEAL_NODE_KEY | node | generation). */
int mem_seal_node_key(const uint8_t fleet[MEM_SEAL_KEY_BYTES], const char *node, unsigned generation,
                      uint8_t ret[MEM_SEAL_KEY_BYTES]);

/* 64 hex digits to 32 bytes (surrounding whitespace allowed). -EINVAL if it is not that. */
int mem_seal_key_parse(const char *text, size_t len, uint8_t ret[MEM_SEAL_KEY_BYTES]);

/* 32 bytes to 64 hex digits and a NUL. */
void mem_seal_hex(const uint8_t *in, size_t n, char *out);

/*
 * Reads a key file (64 hex digits and a newline). The file must be a
 * regular file readable by neither group nor others (mode 0600 or 0400):
 * one that is is refused, -EPERM with err naming the file and its mode.
 */
int mem_seal_key_load(const char *path, uint8_t ret[MEM_SEAL_KEY_BYTES], au_error *err);

/*
 * Writes key to path as a new file of mode 0600 (never over an existing
 * one: -EEXIST). Returns 0 or a negative errno with err naming the file.
 */
int mem_seal_key_save(const char *path, const uint8_t key[MEM_SEAL_KEY_BYTES], au_error *err);

/* n random bytes from the kernel's CSPRNG (OpenSSL's RAND_bytes). 0 or -EIO. */
int mem_seal_random(uint8_t *out, size_t n);
