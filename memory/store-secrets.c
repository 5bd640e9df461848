/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "memory/store-secrets.h"
#include "memory/store.h"

int mem_store_secret_lock(PGconn *conn, const char *name, unsigned *ret_version, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r = mem_pg_exec(conn, "SELECT version FROM secrets WHERE name = $1 FOR UPDATE", 1,
                            (const char *const[]){name}, &res, err);
        if (r < 0)
                return r;
        *ret_version = PQntuples(res) == 1 ? (unsigned) strtoul(mem_pg_value(res, 0, 0), NULL, 10) : 0;
        return 0;
}

int mem_store_secret_write(PGconn *conn, const mem_store_sealed *s, bool rotate, const char *actor,
                           au_error *err) {
        const char *params[] = {s->name,           s->version, s->key_id, s->nonce_hex,
                                s->ciphertext_hex, s->tag_hex, actor};
        int r;

        r = mem_pg_exec(
                conn,
                rotate ? "UPDATE secrets SET version = $2::int, key_id = $3, nonce = decode($4, 'hex'), "
                         "ciphertext = decode($5, 'hex'), tag = decode($6, 'hex'), rotated_by = $7, "
                         "rotated_at = now() WHERE name = $1"
                       : "INSERT INTO secrets (name, version, key_id, nonce, ciphertext, tag, created_by) "
                         "VALUES ($1, $2::int, $3, decode($4, 'hex'), decode($5, 'hex'), "
                         "decode($6, 'hex'), $7)",
                7, params, NULL, err);
        if (r < 0)
                return r;
        return mem_pg_exec(
                conn,
                "INSERT INTO audit_log (workflow_id, actor, action, detail) VALUES (NULL, $3, $4, "
                "jsonb_build_object('name', $1::text, 'version', $2::int))",
                4,
                (const char *const[]){s->name, s->version, actor,
                                      rotate ? "secret_rotated" : "secret_created"},
                NULL, err);
}

int mem_store_secret_delete(PGconn *conn, const char *name, const char *actor, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r;

        r = mem_pg_begin(conn, err);
        if (r < 0)
                return r;
        r = mem_pg_exec(conn, "DELETE FROM secrets WHERE name = $1 RETURNING version", 1,
                        (const char *const[]){name}, &res, err);
        if (r >= 0 && PQntuples(res) != 1)
                r = -ENOENT;
        if (r >= 0)
                r = mem_pg_exec(
                        conn,
                        "INSERT INTO audit_log (workflow_id, actor, action, detail) VALUES (NULL, $2, "
                        "'secret_deleted', jsonb_build_object('name', $1::text, 'version', $3::int))",
                        3, (const char *const[]){name, actor, mem_pg_value(res, 0, 0)}, NULL, err);
        if (r >= 0)
                r = mem_pg_commit(conn, err);
        if (r < 0)
                mem_pg_rollback(conn);
        return r;
}

int mem_store_secrets_list(PGconn *conn, PGresult **ret, au_error *err) {
        return mem_pg_exec(conn,
                           "SELECT name, version, created_by, " MEM_STORE_TS(
                                   "created_at") ", rotated_by, " MEM_STORE_TS("rotated_at") " FROM secrets "
                                                                                             "ORDER BY name",
                           0, NULL, ret, err);
}

int mem_store_secret_exists(PGconn *conn, const char *name, bool *ret, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r = mem_pg_exec(conn, "SELECT 1 FROM secrets WHERE name = $1", 1, (const char *const[]){name},
                            &res, err);
        if (r < 0)
                return r;
        *ret = PQntuples(res) > 0;
        return 0;
}

int mem_store_secrets_sealed(PGconn *conn, char *const *names, size_t n, PGresult **ret, au_error *err) {
        _cleanup_free_ char *arr = mem_store_array(names, n);

        if (!arr)
                return au_error_set(err, ENOMEM, "secrets");
        return mem_pg_exec(conn,
                           "SELECT name, version, key_id, encode(nonce, 'hex'), encode(ciphertext, 'hex'), "
                           "encode(tag, 'hex') FROM secrets WHERE name = ANY($1::text[])",
                           1, (const char *const[]){arr}, ret, err);
}
