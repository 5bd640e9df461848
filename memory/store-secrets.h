/* SPDX-License-Identifier: MIT */
/*
 * The secrets table: values sealed with the coordinator's secret key, stored
 * as nonce, ciphertext and tag (memory/store.h says how these functions report
 * errors and results). Listings never read the value columns.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "memory/pg.h"

/* In the caller's transaction: name's row locked; *ret_version gets its version, 0 when there is none. */
int mem_store_secret_lock(PGconn *conn, const char *name, unsigned *ret_version, au_error *err);

/* A sealed value as stored: its name and version, the sealing key's id, and nonce, ciphertext and tag in
 * hex. */
typedef struct mem_store_sealed {
        const char *name, *version, *key_id, *nonce_hex, *ciphertext_hex, *tag_hex;
} mem_store_sealed;

/*
 * In the caller's transaction: s stored, over the locked row when rotate (else
 * a new row; -EEXIST when someone made it meanwhile), with its audit row
 * (secret_rotated or secret_created, by actor).
 */
int mem_store_secret_write(PGconn *conn, const mem_store_sealed *s, bool rotate, const char *actor,
                           au_error *err);

/* In a transaction of its own: name deleted with its audit row (by actor). -ENOENT when there is none. */
int mem_store_secret_delete(PGconn *conn, const char *name, const char *actor, au_error *err);

/* Columns of mem_store_secrets_list(), by name. */
enum {
        MEM_SECRET_NAME,
        MEM_SECRET_VERSION,
        MEM_SECRET_CREATED_BY,
        MEM_SECRET_CREATED_AT,
        MEM_SECRET_ROTATED_BY,
        MEM_SECRET_ROTATED_AT,
};

/* Every secret's name, version, and who made and last rotated it when; never a value. */
int mem_store_secrets_list(PGconn *conn, PGresult **ret, au_error *err);

/* *ret: whether a secret of that name exists. */
int mem_store_secret_exists(PGconn *conn, const char *name, bool *ret, au_error *err);

/* Columns of mem_store_secrets_sealed(): what mem_store_sealed holds. */
enum {
        MEM_SEALED_NAME,
        MEM_SEALED_VERSION,
        MEM_SEALED_KEY_ID,
        MEM_SEALED_NONCE,
        MEM_SEALED_CIPHERTEXT,
        MEM_SEALED_TAG
};

/* The sealed values of these n secrets (those that exist). -ENOMEM, or as above. */
int mem_store_secrets_sealed(PGconn *conn, char *const *names, size_t n, PGresult **ret, au_error *err);
