/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "memory/store-nodes.h"
#include "memory/store.h"

int mem_store_node_heartbeat(PGconn *conn, const char *node, const char *labels_json, unsigned capacity,
                             const char *version, au_error *err) {
        char cap[16];

        snprintf(cap, sizeof(cap), "%u", capacity);
        return mem_pg_exec(
                conn,
                "INSERT INTO nodes (id, labels, capacity, state, last_seen, version) "
                "VALUES ($1, $2::jsonb, $3::int, 'healthy', now(), $4) ON CONFLICT (id) DO UPDATE SET "
                "labels = EXCLUDED.labels, capacity = EXCLUDED.capacity, state = 'healthy', "
                "last_seen = now(), version = EXCLUDED.version",
                4, (const char *const[]){node, labels_json, cap, version}, NULL, err);
}

static const mem_pg_stmt stmt_inflight = {
        "dispatch_inflight",
        "SELECT node, count(*) FROM steps WHERE state IN ('dispatched', 'running') AND node IS NOT "
        "NULL AND kind IN ('run', 'tool') GROUP BY node", /* model and agent steps run in coordinators */
        0,
};

int mem_store_nodes_inflight(PGconn *conn, bool begin, PGresult **ret, au_error *err) {
        const mem_pg_stmt *const stmts[] = {&mem_pg_stmt_begin, &stmt_inflight};
        PGresult *got[2] = {NULL, NULL};
        int r;

        if (!begin)
                return mem_pg_run(conn, &stmt_inflight, NULL, ret, err);
        r = mem_pg_pipeline(conn, stmts, NULL, 2, got, err);
        PQclear(got[0]);
        if (ret)
                *ret = got[1];
        else
                PQclear(got[1]);
        return r;
}

int mem_store_state_counts(PGconn *conn, PGresult **ret_workflows, PGresult **ret_steps, au_error *err) {
        _cleanup_pgresult_ PGresult *w = NULL;
        int r = mem_pg_exec(conn, "SELECT state, count(*) FROM workflows GROUP BY state", 0, NULL, &w, err);

        if (r < 0)
                return r;
        r = mem_pg_exec(conn, "SELECT state, count(*) FROM steps GROUP BY state", 0, NULL, ret_steps, err);
        if (r < 0)
                return r;
        *ret_workflows = TAKE_PTR(w);
        return 0;
}

int mem_store_node_lost(PGconn *conn, const char *node, bool *ret_declared, PGresult **ret_moved,
                        au_error *err) {
        _cleanup_pgresult_ PGresult *flip = NULL;
        const char *params[1] = {node};
        int r;

        r = mem_pg_exec(
                conn,
                "INSERT INTO nodes (id, state, last_seen) VALUES ($1, 'lost', now()) ON CONFLICT (id) "
                "DO UPDATE SET state = 'lost' WHERE nodes.state <> 'lost' RETURNING id",
                1, params, &flip, err);
        if (r < 0)
                return r;
        r = mem_pg_exec(conn,
                        "UPDATE steps SET state = 'ready', moves = moves + 1, avoid_node = $1, not_before = "
                        "NULL, updated_at = now() WHERE node = $1 AND state IN ('dispatched', 'running') "
                        "RETURNING workflow_id, step_id, attempt",
                        1, params, ret_moved, err);
        if (r < 0)
                return r;
        *ret_declared = PQntuples(flip) > 0;
        return 0;
}

#define DRAIN_COLUMNS "id, " MEM_STORE_TS("drain_since") ", drained_by"

int mem_store_node_drain(PGconn *conn, const char *node, const char *actor, bool drain, bool *ret_changed,
                         PGresult **ret, au_error *err) {
        _cleanup_pgresult_ PGresult *before = NULL, *after = NULL;
        const char *params[2] = {node, actor};
        bool changed;
        int r;

        r = mem_pg_begin(conn, err);
        if (r < 0)
                return r;
        /* The row locked: a drain and an undrain at once are taken one after the other. */
        r = mem_pg_exec(conn, "SELECT drain_since IS NOT NULL FROM nodes WHERE id = $1 FOR UPDATE", 1,
                        params, &before, err);
        if (r >= 0 && PQntuples(before) != 1)
                r = -ENOENT;
        changed = r >= 0 && (strcmp(mem_pg_value(before, 0, 0) ?: "f", "t") == 0) != drain;
        if (r >= 0 && changed && drain)
                r = mem_pg_exec(conn, "UPDATE nodes SET drain_since = now(), drained_by = $2 WHERE id = $1",
                                2, params, NULL, err);
        else if (r >= 0 && changed)
                r = mem_pg_exec(conn, "UPDATE nodes SET drain_since = NULL, drained_by = NULL WHERE id = $1",
                                1, params, NULL, err);
        if (r >= 0 && changed)
                r = mem_pg_exec(conn,
                                drain ? "INSERT INTO audit_log (workflow_id, actor, action, detail) VALUES "
                                        "(NULL, $2, 'node_drained', jsonb_build_object('node', $1::text))"
                                      : "INSERT INTO audit_log (workflow_id, actor, action, detail) VALUES "
                                        "(NULL, $2, 'node_undrained', jsonb_build_object('node', $1::text))",
                                2, params, NULL, err);
        if (r >= 0)
                r = mem_pg_exec(conn, "SELECT " DRAIN_COLUMNS " FROM nodes WHERE id = $1", 1, params, &after,
                                err);
        if (r >= 0)
                r = mem_pg_commit(conn, err);
        if (r < 0) {
                mem_pg_rollback(conn);
                return r;
        }
        *ret_changed = changed;
        if (ret)
                *ret = TAKE_PTR(after);
        return 0;
}

int mem_store_nodes_draining(PGconn *conn, PGresult **ret, au_error *err) {
        return mem_pg_exec(conn, "SELECT " DRAIN_COLUMNS " FROM nodes WHERE drain_since IS NOT NULL", 0,
                           NULL, ret, err);
}
