/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "memory/store-fabric.h"
#include "memory/store.h"

static const mem_pg_stmt stmt_fabric_pick = {
        "fabric_pick",
        "WITH pick AS (SELECT s.workflow_id, s.step_id FROM steps s JOIN workflows w ON w.id = "
        "s.workflow_id "
        "WHERE s.state = 'ready' AND w.state = 'running' AND s.kind IN ('model', 'agent') "
        "AND (s.not_before IS NULL OR s.not_before <= now()) "
        "ORDER BY w.created_at, s.position LIMIT 1 FOR NO KEY UPDATE OF s SKIP LOCKED) "
        "UPDATE steps s SET state = 'dispatched', attempt = s.attempt + 1, node = $1, dispatched_at = "
        "now(), "
        "not_before = NULL, updated_at = now() FROM pick "
        "WHERE s.workflow_id = pick.workflow_id AND s.step_id = pick.step_id "
        "RETURNING s.workflow_id, s.step_id, s.kind, s.attempt, s.spec::text, "
        "(WITH RECURSIVE inp(step_id) AS (SELECT unnest(s.needs) UNION "
        "  SELECT unnest(a.needs) FROM steps a JOIN inp ON a.workflow_id = s.workflow_id "
        "  AND a.step_id = inp.step_id AND a.kind = 'approval') "
        " SELECT json_agg(json_build_array(u.step_id, u.output_b64))::text FROM steps u JOIN inp "
        " ON u.step_id = inp.step_id WHERE u.workflow_id = s.workflow_id AND u.output_b64 IS NOT NULL), "
        "array_to_json(s.needs)::text, s.model_entry, s.failures, s.max_attempts, "
        "(SELECT w.spec->>'budget_usd' FROM workflows w WHERE w.id = s.workflow_id), "
        "(SELECT w.created_by FROM workflows w WHERE w.id = s.workflow_id)",
        1,
};

int mem_store_fabric_pick(PGconn *conn, const char *node, PGresult **ret, au_error *err) {
        return mem_pg_run(conn, &stmt_fabric_pick, (const char *const[]){node}, ret, err);
}

int mem_store_fabric_record(PGconn *conn, const char *workflow, const char *step, unsigned attempt,
                            const char *fabric_json, au_error *err) {
        char a[16];

        snprintf(a, sizeof(a), "%u", attempt);
        return mem_pg_exec(conn,
                           "UPDATE runs SET fabric = $4::jsonb WHERE workflow_id = $1 AND step_id = $2 "
                           "AND attempt = $3::int",
                           4, (const char *const[]){workflow, step, a, fabric_json}, NULL, err);
}

int mem_store_fabric_provider(PGconn *conn, const char *workflow, const char *step, unsigned entry,
                              au_error *err) {
        char e[16];

        snprintf(e, sizeof(e), "%u", entry);
        return mem_pg_exec(
                conn,
                "UPDATE steps SET state = 'ready', node = NULL, model_entry = $3::int, failures = 0, "
                "not_before = NULL, updated_at = now() WHERE workflow_id = $1 AND step_id = $2",
                3, (const char *const[]){workflow, step, e}, NULL, err);
}

int mem_store_fabric_inflight(PGconn *conn, PGresult **ret, au_error *err) {
        return mem_pg_exec(
                conn,
                "SELECT s.workflow_id, s.step_id, s.attempt, s.node FROM steps s JOIN workflows w "
                "ON w.id = s.workflow_id WHERE s.state = 'dispatched' AND s.kind IN ('model', "
                "'agent') AND s.node LIKE 'fabric:%' AND w.state IN ('running', 'paused', "
                "'awaiting_human')",
                0, NULL, ret, err);
}

int mem_store_fabric_requeue(PGconn *conn, const char *workflow, const char *step, const char *node,
                             bool *ret_requeued, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r;

        r = mem_pg_exec(
                conn,
                "UPDATE steps SET state = 'ready', node = NULL, updated_at = now() WHERE workflow_id = "
                "$1 AND step_id = $2 AND state = 'dispatched' AND node = $3 RETURNING step_id",
                3, (const char *const[]){workflow, step, node}, &res, err);
        if (r >= 0)
                *ret_requeued = PQntuples(res) > 0;
        return r;
}

int mem_store_tool_step_add(PGconn *conn, const char *workflow, const char *step, const char *run_json,
                            const char *program, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r;

        r = mem_pg_exec(conn,
                        "INSERT INTO steps (workflow_id, step_id, kind, state, spec, program, max_attempts, "
                        "escalate, position) VALUES ($1, $2, 'tool', 'ready', $3::jsonb, $4, 1, false, "
                        "2147483647) ON CONFLICT DO NOTHING RETURNING step_id",
                        4, (const char *const[]){workflow, step, run_json, program}, &res, err);
        if (r >= 0 && PQntuples(res) == 0)
                return au_error_set(err, EEXIST, "tool step %s exists already", step);
        return r;
}

int mem_store_tool_step_get(PGconn *conn, const char *workflow, const char *step, PGresult **ret,
                            au_error *err) {
        return mem_pg_exec(conn,
                           "SELECT s.state, s.output_b64, s.outcome, s.exit_code, s.error, "
                           "r.result->>'stderr', s.node, w.state FROM steps s JOIN workflows w ON w.id = "
                           "s.workflow_id LEFT JOIN runs r ON r.workflow_id = s.workflow_id AND r.step_id = "
                           "s.step_id AND r.attempt = s.attempt WHERE s.workflow_id = $1 AND s.step_id = $2",
                           2, (const char *const[]){workflow, step}, ret, err);
}
