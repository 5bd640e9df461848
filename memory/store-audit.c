/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory/store-audit.h"
#include "memory/store.h"

/* The rows; the trigger chains each (sql/001_init.sql). */
#define AUDIT_INSERT_ROWS                                                              \
        "INSERT INTO audit_log (workflow_id, actor, action, detail) "                  \
        "SELECT w, $2, act, d::jsonb FROM unnest($1::uuid[], $3::text[], $4::text[]) " \
        "WITH ORDINALITY AS t(w, act, d, i) ORDER BY i"

static const mem_pg_stmt stmt_append = {"audit_insert", AUDIT_INSERT_ROWS, 4};

/* The same, returning each chain's new head. */
static const mem_pg_stmt stmt_append_heads = {
        "audit_insert_heads",
        "WITH ins AS (" AUDIT_INSERT_ROWS " RETURNING workflow_id, seq, hash) "
        "SELECT DISTINCT ON (workflow_id) workflow_id, seq, encode(hash, 'hex') FROM ins "
        "ORDER BY workflow_id, seq DESC",
        4,
};

static const mem_pg_stmt stmt_checkpoints_add = {
        "audit_checkpoint_insert",
        "INSERT INTO audit_checkpoints (workflow_id, seq, hash, ts_epoch_us, key_id, signature, "
        "coordinator) "
        "SELECT w, s, decode(h, 'hex'), t, $5, decode(g, 'hex'), $7 "
        "FROM unnest($1::uuid[], $2::int[], $3::text[], $4::bigint[], $6::text[]) AS u(w, s, h, t, g) "
        "ON CONFLICT ON CONSTRAINT audit_checkpoints_key DO NOTHING",
        7,
};

/* The array literals of the rows' chains, actions and details (into a[0..3)). */
static int row_arrays(const mem_audit_row *rows, size_t n, char *a[3]) {
        _cleanup_free_ char **w = calloc(n + 1, sizeof(char *)), **act = calloc(n + 1, sizeof(char *)),
                            **d = calloc(n + 1, sizeof(char *));

        if (!w || !act || !d)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                w[i] = (char *) rows[i].workflow;
                act[i] = (char *) rows[i].action;
                d[i] = (char *) (rows[i].detail ? rows[i].detail : "{}");
        }
        a[0] = mem_store_array(w, n);
        a[1] = mem_store_array(act, n);
        a[2] = mem_store_array(d, n);
        return a[0] && a[1] && a[2] ? 0 : -ENOMEM;
}

int mem_store_audit_append(PGconn *conn, const char *actor, const mem_audit_row *rows, size_t n,
                           unsigned flags, mem_audit_head **ret_heads, size_t *ret_n_heads, au_error *err) {
        char *a[3] = {NULL, NULL, NULL};
        const mem_pg_stmt *stmts[3];
        const char *const *ps[3];
        PGresult *res[3] = {NULL, NULL, NULL};
        const char *params[4];
        size_t k = 0, insert = 0;
        int r;

        if (row_arrays(rows, n, a) < 0) {
                r = au_error_set(err, ENOMEM, "audit rows");
                goto out;
        }
        params[0] = a[0];
        params[1] = actor;
        params[2] = a[1];
        params[3] = a[2];
        if (flags & MEM_AUDIT_BEGIN) {
                stmts[k] = &mem_pg_stmt_begin;
                ps[k++] = NULL;
        }
        if (n > 0) {
                insert = k;
                stmts[k] = ret_heads ? &stmt_append_heads : &stmt_append;
                ps[k++] = params;
        }
        if (flags & MEM_AUDIT_COMMIT) {
                stmts[k] = &mem_pg_stmt_commit;
                ps[k++] = NULL;
        }
        r = k > 0 ? mem_pg_pipeline(conn, stmts, ps, k, res, err) : 0;
        if (r >= 0 && ret_heads) {
                int nh = n > 0 ? PQntuples(res[insert]) : 0;
                mem_audit_head *out = calloc((size_t) nh + 1, sizeof(mem_audit_head));
                if (!out) {
                        r = au_error_set(err, ENOMEM, "audit rows");
                        goto out;
                }
                for (int i = 0; i < nh; i++) {
                        snprintf(out[i].chain, sizeof(out[i].chain), "%s",
                                 mem_pg_value(res[insert], i, 0) ?: "");
                        out[i].seq = mem_store_ll(res[insert], i, 1);
                        snprintf(out[i].hash, sizeof(out[i].hash), "%s",
                                 mem_pg_value(res[insert], i, 2) ?: "");
                }
                *ret_heads = out;
                *ret_n_heads = (size_t) nh;
        }
out:
        for (size_t i = 0; i < ELEMENTSOF(res); i++)
                PQclear(res[i]);
        for (size_t i = 0; i < ELEMENTSOF(a); i++)
                free(a[i]);
        return r;
}

int mem_store_audit_checkpoints_add(PGconn *conn, const mem_audit_checkpoint *c, size_t n,
                                    const char *key_id, const char *coordinator, au_error *err) {
        _cleanup_free_ char **w = calloc(n + 1, sizeof(char *)), **sv = calloc(n + 1, sizeof(char *)),
                            **hv = calloc(n + 1, sizeof(char *)), **tv = calloc(n + 1, sizeof(char *)),
                            **gv = calloc(n + 1, sizeof(char *));
        _cleanup_free_ char *nums = calloc(n + 1, 48);
        _cleanup_free_ char *a_w = NULL, *a_s = NULL, *a_h = NULL, *a_t = NULL, *a_g = NULL;
        const char *params[7];

        if (!w || !sv || !hv || !tv || !gv || !nums)
                return au_error_set(err, ENOMEM, "audit checkpoints");
        for (size_t i = 0; i < n; i++) {
                w[i] = (char *) (c[i].chain && c[i].chain[0] ? c[i].chain : NULL);
                sv[i] = nums + 48 * i;
                tv[i] = nums + 48 * i + 24;
                snprintf(sv[i], 24, "%" PRId64, c[i].seq);
                snprintf(tv[i], 24, "%" PRId64, c[i].ts_epoch_us);
                hv[i] = (char *) c[i].hash;
                gv[i] = (char *) c[i].signature;
        }
        a_w = mem_store_array(w, n);
        a_s = mem_store_array(sv, n);
        a_h = mem_store_array(hv, n);
        a_t = mem_store_array(tv, n);
        a_g = mem_store_array(gv, n);
        if (!a_w || !a_s || !a_h || !a_t || !a_g)
                return au_error_set(err, ENOMEM, "audit checkpoints");
        params[0] = a_w;
        params[1] = a_s;
        params[2] = a_h;
        params[3] = a_t;
        params[4] = key_id;
        params[5] = a_g;
        params[6] = coordinator;
        return mem_pg_run(conn, &stmt_checkpoints_add, params, NULL, err);
}

#define TS_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

int mem_store_audit_trail(PGconn *conn, const char *workflow, bool verify, PGresult **ret_workflow,
                          PGresult **ret_rows, PGresult **ret_checkpoints, PGresult **ret_verify,
                          au_error *err) {
        const char *params[1] = {workflow};
        int r;

        r = mem_pg_exec(conn, "SELECT 1 FROM workflows WHERE id = $1", 1, params, ret_workflow, err);
        if (r >= 0)
                r = mem_pg_exec(
                        conn,
                        "SELECT seq, " TS_UTC(
                                "to_timestamp(ts_epoch_us / 1000000.0)") ", ts_epoch_us, "
                                                                         "actor, action, detail::text, "
                                                                         "encode(prev_hash, 'hex'), "
                                                                         "encode(hash, 'hex') "
                                                                         "FROM audit_log WHERE workflow_id "
                                                                         "= $1 ORDER BY seq",
                        1, params, ret_rows, err);
        if (r >= 0)
                r = mem_pg_exec(
                        conn,
                        "SELECT seq, encode(hash, 'hex'), ts_epoch_us, key_id, encode(signature, 'hex'), "
                        "coordinator FROM audit_checkpoints WHERE workflow_id = $1 ORDER BY seq, id",
                        1, params, ret_checkpoints, err);
        if (r >= 0 && verify)
                r = mem_pg_exec(conn, "SELECT autoos_audit_verify($1)", 1, params, ret_verify, err);
        return r;
}

int mem_store_audit_lock_chains(PGconn *conn, char *const *chains, size_t n, au_error *err) {
        _cleanup_free_ char *arr = mem_store_array(chains, n);
        const char *params[1] = {arr};

        if (!arr)
                return au_error_set(err, ENOMEM, "audit chains");
        /* The chain trigger's lock (sql/001_init.sql). */
        return mem_pg_exec(
                conn,
                "SELECT pg_advisory_xact_lock(hashtextextended(coalesce(c, 'fleet'), 1096107087)) "
                "FROM unnest($1::text[]) WITH ORDINALITY AS t(c, i) ORDER BY i",
                1, params, NULL, err);
}

int mem_store_audit_heads(PGconn *conn, char *const *workflows, size_t n, const char *key_id, PGresult **ret,
                          au_error *err) {
        _cleanup_free_ char *arr = mem_store_array(workflows, n);
        const char *params[2] = {arr, key_id};

        if (!arr)
                return au_error_set(err, ENOMEM, "audit chains");
        return mem_pg_exec(
                conn,
                "SELECT t.c, h.seq, encode(h.hash, 'hex'), (SELECT max(k.seq) FROM audit_checkpoints k "
                "WHERE k.workflow_id = t.c AND k.key_id = $2) FROM unnest($1::uuid[]) AS t(c) "
                "CROSS JOIN LATERAL (SELECT a.seq, a.hash FROM audit_log a WHERE a.workflow_id = t.c "
                "ORDER BY a.seq DESC LIMIT 1) h",
                2, params, ret, err);
}

int mem_store_audit_fleet_head(PGconn *conn, const char *key_id, PGresult **ret, au_error *err) {
        const char *params[1] = {key_id};

        return mem_pg_exec(
                conn,
                "SELECT NULL, a.seq, encode(a.hash, 'hex'), (SELECT max(k.seq) FROM audit_checkpoints k "
                "WHERE k.workflow_id IS NULL AND k.key_id = $1) FROM audit_log a "
                "WHERE a.workflow_id IS NULL ORDER BY a.seq DESC LIMIT 1",
                1, params, ret, err);
}

int mem_store_audit_checkpoints_stored(PGconn *conn, char *const *chains, char *const *seqs, size_t n,
                                       const char *key_id, PGresult **ret, au_error *err) {
        _cleanup_free_ char *a_c = mem_store_array(chains, n), *a_s = mem_store_array(seqs, n);
        const char *params[3] = {a_c, a_s, key_id};

        if (!a_c || !a_s)
                return au_error_set(err, ENOMEM, "audit checkpoints");
        return mem_pg_exec(
                conn,
                "SELECT k.workflow_id, k.seq FROM audit_checkpoints k JOIN unnest($1::uuid[], $2::int[]) "
                "AS p(w, s) ON k.workflow_id = p.w AND k.seq = p.s WHERE k.key_id = $3",
                3, params, ret, err);
}

int mem_store_audit_workflows(PGconn *conn, bool all, const char *lookback, PGresult **ret, au_error *err) {
        const char *params[1] = {lookback};

        if (all)
                return mem_pg_exec(conn, "SELECT id FROM workflows", 0, NULL, ret, err);
        return mem_pg_exec(conn, "SELECT id FROM workflows WHERE updated_at > now() - $1::interval", 1,
                           params, ret, err);
}

int mem_store_audit_role(PGconn *conn, PGresult **ret, au_error *err) {
        return mem_pg_exec(conn,
                           "SELECT current_user, r.rolsuper, pg_has_role(current_user, c.relowner, 'USAGE') "
                           "FROM pg_roles r, pg_class c WHERE r.rolname = current_user "
                           "AND c.oid = to_regclass('audit_log')",
                           0, NULL, ret, err);
}
