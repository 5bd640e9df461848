/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>

#include "memory/store-keys.h"

int mem_store_keys_active(PGconn *conn, PGresult **ret, au_error *err) {
        return mem_pg_exec(
                conn, "SELECT name, role, encode(key_sha256, 'hex') FROM api_keys WHERE revoked_at IS NULL",
                0, NULL, ret, err);
}

int mem_store_key_by_hash(PGconn *conn, const char *sha256_hex, PGresult **ret, au_error *err) {
        return mem_pg_exec(conn,
                           "SELECT name, role FROM api_keys WHERE key_sha256 = decode($1, 'hex') AND "
                           "revoked_at IS NULL",
                           1, (const char *const[]){sha256_hex}, ret, err);
}

int mem_store_key_revoke(PGconn *conn, const char *name, const char *actor, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        const char *params[2] = {name, actor};
        int r;

        r = mem_pg_begin(conn, err);
        if (r < 0)
                return r;
        r = mem_pg_exec(conn,
                        "UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL "
                        "RETURNING role",
                        1, params, &res, err);
        if (r >= 0 && PQntuples(res) != 1)
                r = -ENOENT;
        if (r >= 0)
                r = mem_pg_exec(conn,
                                "INSERT INTO audit_log (workflow_id, actor, action, detail) "
                                "VALUES (NULL, $2, 'key_revoked', jsonb_build_object('name', $1::text))",
                                2, params, NULL, err);
        if (r >= 0)
                r = mem_pg_commit(conn, err);
        if (r < 0)
                mem_pg_rollback(conn);
        return r;
}

int mem_store_key_create(PGconn *conn, const char *name, const char *role, const char *sha256_hex,
                         au_error *err) {
        char detail[300];
        int r;

        r = mem_pg_exec(conn,
                        "INSERT INTO api_keys (name, role, key_sha256) VALUES ($1, $2, decode($3, 'hex'))",
                        3, (const char *const[]){name, role, sha256_hex}, NULL, err);
        if (r < 0)
                return r;
        snprintf(detail, sizeof(detail), "{\"role\":\"%s\"}", role);
        mem_pg_exec(conn,
                    "INSERT INTO audit_log (workflow_id, actor, action, detail) "
                    "VALUES (NULL, 'admin', 'key_created', jsonb_build_object('name', $1::text) || "
                    "$2::jsonb)",
                    2, (const char *const[]){name, detail}, NULL, NULL);
        return 0;
}
