/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "memory/store-identities.h"

/* The generation in the first row of res, 0 when it has none. */
static unsigned first_generation(const PGresult *res) {
        return PQntuples(res) == 1 ? (unsigned) atoi(mem_pg_value(res, 0, 0)) : 0;
}

int mem_store_identity_enroll(PGconn *conn, const char *node, bool rekey, unsigned *ret_generation,
                              au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r = mem_pg_exec(
                conn,
                rekey ? "UPDATE node_identities SET generation = generation + 1, rekeyed_at = now(), "
                        "key_id = '' WHERE node = $1 AND removed_at IS NULL RETURNING generation"
                      : "INSERT INTO node_identities (node, key_id) VALUES ($1, '') ON CONFLICT (node) "
                        "DO UPDATE SET generation = node_identities.generation + 1, "
                        "enrolled_at = now(), removed_at = NULL, key_id = '' "
                        "WHERE node_identities.removed_at IS NOT NULL RETURNING generation",
                1, (const char *const[]){node}, &res, err);
        if (r < 0)
                return r;
        *ret_generation = first_generation(res);
        return 0;
}

int mem_store_identity_key_id(PGconn *conn, const char *node, const char *key_id, au_error *err) {
        return mem_pg_exec(conn, "UPDATE node_identities SET key_id = $2 WHERE node = $1", 2,
                           (const char *const[]){node, key_id}, NULL, err);
}

int mem_store_identity_remove(PGconn *conn, const char *node, bool *ret_removed, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r = mem_pg_exec(
                conn,
                "UPDATE node_identities SET removed_at = now() WHERE node = $1 AND removed_at IS NULL "
                "RETURNING node",
                1, (const char *const[]){node}, &res, err);
        if (r < 0)
                return r;
        *ret_removed = PQntuples(res) == 1;
        return 0;
}

int mem_store_identity_generation(PGconn *conn, const char *node, unsigned *ret_generation, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r = mem_pg_exec(conn,
                            "SELECT generation FROM node_identities WHERE node = $1 AND removed_at IS NULL",
                            1, (const char *const[]){node}, &res, err);
        if (r < 0)
                return r;
        *ret_generation = first_generation(res);
        return 0;
}

int mem_store_identities(PGconn *conn, PGresult **ret, au_error *err) {
        return mem_pg_exec(conn, "SELECT node, generation FROM node_identities WHERE removed_at IS NULL", 0,
                           NULL, ret, err);
}
