/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory/store-workflows.h"
#include "memory/store.h"

enum { STEP_COLUMNS = 13 };

/* The steps' columns as array literals, in the order of the steps INSERT ($2 to $14). */
static int step_arrays(const mem_store_new_step *v, size_t n, char **arrays, au_error *err) {
        _cleanup_free_ char **cols = calloc(STEP_COLUMNS * n + 1, sizeof(char *));
        _cleanup_free_ char *nums = calloc(4 * n + 1, 24);

        if (!cols || !nums)
                return au_error_set(err, ENOMEM, "workflow");
        for (size_t i = 0; i < n; i++) {
                char *num = nums + 4 * 24 * i;

                snprintf(num, 24, "%u", v[i].max_attempts);
                snprintf(num + 24, 24, "%" PRIu64, v[i].backoff_ms);
                snprintf(num + 48, 24, "%" PRIu64, v[i].max_backoff_ms);
                snprintf(num + 72, 24, "%zu", i);
                cols[0 * n + i] = (char *) v[i].id;
                cols[1 * n + i] = (char *) v[i].kind;
                cols[2 * n + i] = (char *) v[i].state;
                cols[3 * n + i] = (char *) v[i].run_json;
                cols[4 * n + i] = (char *) v[i].fallback;
                cols[5 * n + i] = (char *) v[i].needs_json;
                cols[6 * n + i] = (char *) v[i].program;
                cols[7 * n + i] = (char *) v[i].selector_json;
                cols[8 * n + i] = num;
                cols[9 * n + i] = num + 24;
                cols[10 * n + i] = num + 48;
                cols[11 * n + i] = (char *) v[i].fallback_for;
                cols[12 * n + i] = num + 72;
        }
        if (mem_store_arrays(cols, n, STEP_COLUMNS, arrays) < 0)
                return au_error_set(err, ENOMEM, "workflow");
        return 0;
}

int mem_store_workflow_insert(PGconn *conn, const char *id, const char *name, const char *spec_json,
                              const char *actor, const mem_store_new_step *steps, size_t n, bool escalate,
                              au_error *err) {
        char *arrays[STEP_COLUMNS] = {0};
        const char *params[15];
        int r;

        r = step_arrays(steps, n, arrays, err);
        if (r >= 0)
                r = mem_pg_exec(conn,
                                "INSERT INTO workflows (id, name, spec, state, created_by) VALUES ($1, $2, "
                                "$3::jsonb, 'running', $4)",
                                4, (const char *const[]){id, name, spec_json, actor}, NULL, err);
        if (r >= 0) {
                params[0] = id;
                for (size_t k = 0; k < STEP_COLUMNS; k++)
                        params[1 + k] = arrays[k];
                params[14] = escalate ? "t" : "f";
                r = mem_pg_exec(
                        conn,
                        "INSERT INTO steps (workflow_id, step_id, kind, state, spec, fallback, needs, "
                        "program, selector, "
                        "max_attempts, backoff_ms, max_backoff_ms, fallback_for, position, escalate) "
                        "SELECT $1, v.id, v.kind, v.state, v.spec::jsonb, v.fb, "
                        "ARRAY(SELECT jsonb_array_elements_text(v.needs::jsonb)), v.program, v.sel::jsonb, "
                        "v.maxa, v.back, v.maxb, v.fbfor, v.pos, $15::bool "
                        "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
                        "$7::text[], $8::text[], "
                        "$9::text[], $10::int[], $11::bigint[], $12::bigint[], $13::text[], $14::int[]) "
                        "AS v(id, kind, state, spec, fb, needs, program, sel, maxa, back, maxb, fbfor, pos)",
                        15, params, NULL, err);
        }
        mem_store_arrays_free(arrays, STEP_COLUMNS);
        return r;
}

int mem_store_workflows_list(PGconn *conn, const char *state, unsigned limit, PGresult **ret,
                             au_error *err) {
        char lim[16];

        snprintf(lim, sizeof(lim), "%u", limit);
        return mem_pg_exec(
                conn,
                "SELECT w.id, w.name, w.state, " MEM_STORE_TS("w.created_at") ", " MEM_STORE_TS(
                        "w.updated_at") ", "
                                        "(SELECT json_object_agg(state, n) FROM (SELECT state, "
                                        "count(*) n FROM steps s "
                                        " WHERE s.workflow_id = w.id GROUP BY state) x)::text, "
                                        "(SELECT count(*) FROM steps s WHERE s.workflow_id = w.id), "
                                        "w.created_by FROM workflows w WHERE ($1::text IS NULL OR w.state = "
                                        "$1) "
                                        "ORDER BY w.created_at DESC LIMIT $2::int",
                2, (const char *const[]){state, lim}, ret, err);
}

int mem_store_workflow_get(PGconn *conn, const char *id, PGresult **ret_workflow, PGresult **ret_steps,
                           au_error *err) {
        _cleanup_pgresult_ PGresult *wf = NULL;
        const char *params[1] = {id};
        int r;

        r = mem_pg_exec(conn,
                        "SELECT id, name, state, " MEM_STORE_TS("created_at") ", " MEM_STORE_TS(
                                "updated_at") ", created_by FROM workflows WHERE id = $1",
                        1, params, &wf, err);
        if (r >= 0)
                r = mem_pg_exec(
                        conn,
                        "SELECT step_id, kind, state, attempt, node, array_to_json(needs)::text, fallback, "
                        "outcome, exit_code, wall_ms, error, output_b64, " MEM_STORE_TS(
                                "updated_at") ", failures, fallback_for, "
                                              "(SELECT r.fabric::text FROM runs r WHERE r.workflow_id = "
                                              "steps.workflow_id AND r.step_id = steps.step_id AND r.fabric "
                                              "IS NOT NULL ORDER BY r.attempt DESC LIMIT 1) "
                                              "FROM steps WHERE workflow_id = $1 ORDER BY position",
                        1, params, ret_steps, err);
        if (r >= 0)
                *ret_workflow = TAKE_PTR(wf);
        return r;
}

int mem_store_workflow_lock(PGconn *conn, const char *id, char **ret_state, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r = mem_pg_exec(conn, "SELECT state FROM workflows WHERE id = $1 FOR NO KEY UPDATE", 1,
                            (const char *const[]){id}, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return -ENOENT;
        *ret_state = strdup(mem_pg_value(res, 0, 0));
        return *ret_state ? 0 : -ENOMEM;
}

int mem_store_workflow_escalated(PGconn *conn, const char *id, bool *ret, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r = mem_pg_exec(conn,
                            "SELECT 1 FROM steps WHERE workflow_id = $1 AND kind = 'run' AND state = "
                            "'awaiting_human' LIMIT 1",
                            1, (const char *const[]){id}, &res, err);
        if (r < 0)
                return r;
        *ret = PQntuples(res) > 0;
        return 0;
}

int mem_store_workflow_set_state(PGconn *conn, const char *id, const char *state, au_error *err) {
        return mem_pg_exec(conn, "UPDATE workflows SET state = $2 WHERE id = $1", 2,
                           (const char *const[]){id, state}, NULL, err);
}

int mem_store_workflow_cancel_steps(PGconn *conn, const char *id, PGresult **ret, au_error *err) {
        return mem_pg_exec(conn,
                           "UPDATE steps SET state = 'cancelled', updated_at = now() WHERE workflow_id = $1 "
                           "AND state IN ('pending', 'ready', 'dispatched', 'running', 'awaiting_human', "
                           "'standby') "
                           "RETURNING step_id, node, attempt, state",
                           1, (const char *const[]){id}, ret, err);
}

int mem_store_step_lock(PGconn *conn, const char *id, const char *step, PGresult **ret, au_error *err) {
        return mem_pg_exec(
                conn,
                "SELECT s.state, s.kind, s.fallback, w.created_by FROM steps s JOIN workflows w ON "
                "w.id = s.workflow_id "
                "WHERE s.workflow_id = $1 AND s.step_id = $2 FOR NO KEY UPDATE OF s",
                2, (const char *const[]){id, step}, ret, err);
}

int mem_store_step_retry_by_human(PGconn *conn, const char *id, const char *step, const char *fallback,
                                  au_error *err) {
        int r = mem_pg_exec(conn,
                            "UPDATE steps SET state = 'ready', failures = 0, not_before = NULL, "
                            "avoid_node = NULL, "
                            "updated_at = now() WHERE workflow_id = $1 AND step_id = $2",
                            2, (const char *const[]){id, step}, NULL, err);
        if (r >= 0 && fallback)
                r = mem_pg_exec(conn,
                                "UPDATE steps SET state = 'standby', failures = 0, updated_at = now() "
                                "WHERE workflow_id = $1 AND step_id = $2 AND state IN ('failed', 'skipped', "
                                "'cancelled')",
                                2, (const char *const[]){id, fallback}, NULL, err);
        return r;
}

int mem_store_step_set_state(PGconn *conn, const char *id, const char *step, const char *state,
                             au_error *err) {
        return mem_pg_exec(conn,
                           "UPDATE steps SET state = $3, updated_at = now() WHERE workflow_id = $1 AND "
                           "step_id = $2",
                           3, (const char *const[]){id, step, state}, NULL, err);
}

int mem_store_program_history(PGconn *conn, const char *program, PGresult **ret, au_error *err) {
        return mem_pg_exec(
                conn,
                "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY wall_ms), "
                "percentile_cont(0.95) WITHIN GROUP (ORDER BY wall_ms), "
                "avg(CASE WHEN outcome = 'exited' AND exit_code = 0 THEN 1.0 ELSE 0.0 END) "
                "FROM (SELECT wall_ms, outcome, exit_code FROM runs WHERE program = $1 AND NOT late "
                "ORDER BY id DESC LIMIT 200) h",
                1, (const char *const[]){program}, ret, err);
}

int mem_store_workflow_outcome(PGconn *conn, const char *id, PGresult **ret, au_error *err) {
        return mem_pg_exec(conn,
                           "SELECT w.state, (SELECT result::text FROM runs WHERE "
                           "workflow_id = w.id "
                           "AND NOT late ORDER BY attempt DESC LIMIT 1) FROM workflows "
                           "w WHERE w.id = $1",
                           1, (const char *const[]){id}, ret, err);
}

bool mem_store_alive(PGconn *conn) {
        return mem_pg_exec(conn, "SELECT 1", 0, NULL, NULL, NULL) >= 0;
}
