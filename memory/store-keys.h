/* SPDX-License-Identifier: MIT */
/*
 * The API keys (api_keys), stored as the hex SHA-256 of the key (memory/store.h
 * says how these functions report errors and results).
 */
#pragma once
#include "common/error.h"
#include "memory/pg.h"

/* Columns of a key's row: its name, role and hash (hex; only mem_store_keys_active() has it). */
enum { MEM_KEY_NAME, MEM_KEY_ROLE, MEM_KEY_SHA256_HEX };

/* The keys not revoked. */
int mem_store_keys_active(PGconn *conn, PGresult **ret, au_error *err);

/* The key not revoked whose hash is sha256_hex (no row: none). */
int mem_store_key_by_hash(PGconn *conn, const char *sha256_hex, PGresult **ret, au_error *err);

/*
 * In a transaction of its own: the active key name revoked, with its audit
 * row (fleet chain) naming actor. -ENOENT when no active key has that name.
 */
int mem_store_key_revoke(PGconn *conn, const char *name, const char *actor, au_error *err);

/*
 * A key made: its row, then (best effort) its audit row with actor "admin".
 * -EEXIST when a key of that name exists.
 */
int mem_store_key_create(PGconn *conn, const char *name, const char *role, const char *sha256_hex,
                         au_error *err);
