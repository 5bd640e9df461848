/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "memory/store-results.h"
#include "memory/store.h"

/* The statements of every result transaction: prepared once per connection. */
static const mem_pg_stmt stmt_results_lock = {
        "results_lock",
        "SELECT id FROM workflows WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE",
        1,
};

static const mem_pg_stmt stmt_results_steps = {
        "results_steps",
        "SELECT s.workflow_id, s.step_id, s.state, s.attempt, s.node, s.max_attempts, s.failures, "
        "s.moves, s.backoff_ms, s.max_backoff_ms, s.fallback, s.fallback_for, w.state, "
        "(extract(epoch FROM s.dispatched_at) * 1000)::bigint, s.escalate "
        "FROM (SELECT DISTINCT * FROM unnest($1::uuid[], $2::text[])) AS v(w, st) "
        "JOIN steps s ON s.workflow_id = v.w AND s.step_id = v.st JOIN workflows w ON w.id = s.workflow_id "
        "ORDER BY s.workflow_id, s.step_id FOR NO KEY UPDATE OF s",
        2,
};

static const mem_pg_stmt stmt_results_runs = {
        "results_runs",
        "INSERT INTO runs (workflow_id, step_id, attempt, node, outcome, exit_code, wall_ms, cpu_ms, "
        "memory_peak_bytes, denied_syscalls, result, started_at, finished_at, program, late) "
        "SELECT v.w, v.s, v.a, v.n, v.o, v.e, v.wall, v.cpu, v.mem, "
        "ARRAY(SELECT jsonb_array_elements_text(v.d::jsonb)), v.r::jsonb, "
        "CASE WHEN v.t0 > 0 THEN to_timestamp(v.t0 / 1000.0) END, "
        "CASE WHEN v.t1 > 0 THEN to_timestamp(v.t1 / 1000.0) END, st.program, v.late "
        "FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], "
        "$7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::bigint[], "
        "$13::bigint[], $14::bool[]) AS v(w, s, a, n, o, e, wall, cpu, mem, d, r, t0, t1, late) "
        "JOIN steps st ON st.workflow_id = v.w AND st.step_id = v.s "
        "ON CONFLICT ON CONSTRAINT runs_attempt_key DO NOTHING RETURNING workflow_id, step_id, attempt",
        14,
};

static const mem_pg_stmt stmt_steps_succeeded = {
        "steps_succeeded",
        "UPDATE steps s SET state = 'succeeded', output_b64 = v.b, outcome = 'exited', exit_code = v.e, "
        "wall_ms = v.wall, error = NULL, updated_at = now() "
        "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bigint[]) AS v(w, st, b, e, wall) "
        "WHERE s.workflow_id = v.w AND s.step_id = v.st",
        5,
};

static const mem_pg_stmt stmt_progress_ready = {
        "progress_ready",
        "UPDATE steps d SET state = CASE WHEN d.kind = 'approval' THEN 'awaiting_human' ELSE 'ready' END, "
        "updated_at = now() WHERE d.workflow_id = ANY($1::uuid[]) AND d.state = 'pending' "
        "AND NOT EXISTS (SELECT 1 FROM steps u WHERE u.workflow_id = d.workflow_id "
        "AND u.step_id = ANY(d.needs) AND u.state NOT IN ('succeeded', 'skipped', 'replaced')) "
        "RETURNING d.workflow_id, d.step_id, d.state",
        1,
};

static const mem_pg_stmt stmt_progress_finish = {
        "progress_finish",
        "WITH fin AS (UPDATE workflows w SET state = CASE WHEN EXISTS (SELECT 1 FROM steps s "
        "WHERE s.workflow_id = w.id AND s.state = 'failed' AND s.fallback_for IS NULL AND s.kind <> 'tool' "
        "AND NOT EXISTS (SELECT 1 FROM steps f WHERE f.workflow_id = s.workflow_id "
        "AND f.fallback_for = s.step_id AND f.state = 'succeeded')) "
        "THEN 'failed' ELSE 'succeeded' END "
        "WHERE w.id = ANY($1::uuid[]) AND w.state IN ('running', 'awaiting_human', 'paused') "
        "AND NOT EXISTS (SELECT 1 FROM steps s WHERE s.workflow_id = w.id AND s.state IN "
        "('pending', 'ready', 'dispatched', 'running', 'awaiting_human')) RETURNING w.id, w.state), "
        "tidy AS (UPDATE steps s SET state = 'skipped', updated_at = now() FROM fin "
        "WHERE s.workflow_id = fin.id AND s.state = 'standby') "
        "SELECT id, state FROM fin",
        1,
};

/* column arrays (mem_store_arrays) with the error in err. */
static int column_arrays(char *const *cols, size_t n, size_t n_cols, char **arrays, au_error *err) {
        return mem_store_arrays(cols, n, n_cols, arrays) < 0 ? au_error_set(err, ENOMEM, "results") : 0;
}

int mem_store_results_begin(PGconn *conn, const mem_store_step_key *steps, size_t n, PGresult **ret,
                            au_error *err) {
        _cleanup_free_ char **cols = calloc(2 * n + 1, sizeof(char *));
        char *arrays[2] = {0};
        int r;

        if (!cols)
                return au_error_set(err, ENOMEM, "results");
        for (size_t i = 0; i < n; i++) {
                cols[i] = (char *) steps[i].workflow;
                cols[n + i] = (char *) steps[i].step;
        }
        r = column_arrays(cols, n, 2, arrays, err);
        if (r >= 0) {
                const mem_pg_stmt *const stmts[] = {&mem_pg_stmt_begin, &stmt_results_lock,
                                                    &stmt_results_steps};
                const char *const *params = (const char *const *) arrays;
                const char *const *const ps[] = {NULL, params, params};
                PGresult *got[3] = {NULL, NULL, NULL};

                r = mem_pg_pipeline(conn, stmts, ps, 3, got, err);
                PQclear(got[0]);
                PQclear(got[1]);
                *ret = got[2];
        }
        mem_store_arrays_free(arrays, 2);
        return r;
}

enum { RUN_COLUMNS = 14 };

int mem_store_runs_insert(PGconn *conn, const mem_store_run *v, size_t n, PGresult **ret, au_error *err) {
        _cleanup_free_ char **cols = calloc(RUN_COLUMNS * n + 1, sizeof(char *));
        _cleanup_free_ char *nums = calloc(7 * n + 1, 24);
        char *arrays[RUN_COLUMNS] = {0};
        int r;

        if (!cols || !nums)
                return au_error_set(err, ENOMEM, "results");
        for (size_t i = 0; i < n; i++) {
                char *num = nums + 7 * 24 * i;

                snprintf(num, 24, "%u", v[i].attempt);
                snprintf(num + 24, 24, "%d", v[i].exit_code);
                snprintf(num + 48, 24, "%" PRIu64, v[i].wall_ms);
                snprintf(num + 72, 24, "%" PRIu64, v[i].cpu_ms);
                snprintf(num + 96, 24, "%" PRIu64, v[i].memory_peak_bytes);
                snprintf(num + 120, 24, "%" PRId64, v[i].started_ms);
                snprintf(num + 144, 24, "%" PRId64, v[i].finished_ms);
                cols[0 * n + i] = (char *) v[i].workflow;
                cols[1 * n + i] = (char *) v[i].step;
                cols[2 * n + i] = num;
                cols[3 * n + i] = (char *) v[i].node;
                cols[4 * n + i] = (char *) v[i].outcome;
                cols[5 * n + i] = num + 24;
                cols[6 * n + i] = num + 48;
                cols[7 * n + i] = num + 72;
                cols[8 * n + i] = num + 96;
                cols[9 * n + i] = (char *) (v[i].denied_json ? v[i].denied_json : "[]");
                cols[10 * n + i] = (char *) v[i].result_json;
                cols[11 * n + i] = num + 120;
                cols[12 * n + i] = num + 144;
                cols[13 * n + i] = (char *) (v[i].late ? "t" : "f");
        }
        r = column_arrays(cols, n, RUN_COLUMNS, arrays, err);
        if (r >= 0)
                r = mem_pg_run(conn, &stmt_results_runs, (const char *const *) arrays, ret, err);
        mem_store_arrays_free(arrays, RUN_COLUMNS);
        return r;
}

/* The columns of stmt_steps_succeeded for n steps (n > 0), as arrays; nums holds 2 * 24 bytes a step. */
static int succeeded_arrays(const mem_store_step_end *v, size_t n, char *nums, char **arrays,
                            au_error *err) {
        _cleanup_free_ char **cols = calloc(5 * n + 1, sizeof(char *));

        if (!cols)
                return au_error_set(err, ENOMEM, "results");
        for (size_t i = 0; i < n; i++) {
                char *num = nums + 2 * 24 * i;

                snprintf(num, 24, "%d", v[i].exit_code);
                snprintf(num + 24, 24, "%" PRIu64, v[i].wall_ms);
                cols[i] = (char *) v[i].workflow;
                cols[n + i] = (char *) v[i].step;
                cols[2 * n + i] = (char *) v[i].output_b64;
                cols[3 * n + i] = num;
                cols[4 * n + i] = num + 24;
        }
        return column_arrays(cols, n, 5, arrays, err);
}

int mem_store_steps_succeeded(PGconn *conn, const mem_store_step_end *v, size_t n, au_error *err) {
        _cleanup_free_ char *nums = NULL;
        char *arrays[5] = {0};
        int r;

        if (n == 0)
                return 0;
        nums = calloc(2 * n + 1, 24);
        if (!nums)
                return au_error_set(err, ENOMEM, "results");
        r = succeeded_arrays(v, n, nums, arrays, err);
        if (r >= 0)
                r = mem_pg_run(conn, &stmt_steps_succeeded, (const char *const *) arrays, NULL, err);
        mem_store_arrays_free(arrays, 5);
        return r;
}

/* A step's end: sql sets state and failures from $1..$7 (workflow, step, output, outcome, exit, wall,
 * error). */
static int step_end(PGconn *conn, const char *sql, const mem_store_step_end *e, au_error *err) {
        char exit_s[16], wall_s[24];

        snprintf(exit_s, sizeof(exit_s), "%d", e->exit_code);
        snprintf(wall_s, sizeof(wall_s), "%" PRIu64, e->wall_ms);
        return mem_pg_exec(conn, sql, 7,
                           (const char *const[]){e->workflow, e->step, e->output_b64, e->outcome, exit_s,
                                                 wall_s, e->error},
                           NULL, err);
}

int mem_store_step_failed(PGconn *conn, const mem_store_step_end *e, au_error *err) {
        return step_end(conn,
                        "UPDATE steps SET state = 'failed', failures = failures + 1, output_b64 = $3, "
                        "outcome = $4, exit_code = $5::int, wall_ms = $6::bigint, error = $7, "
                        "updated_at = now() WHERE workflow_id = $1 AND step_id = $2",
                        e, err);
}

int mem_store_step_escalated(PGconn *conn, const mem_store_step_end *e, au_error *err) {
        return step_end(conn,
                        "UPDATE steps SET state = 'awaiting_human', failures = failures + 1, "
                        "output_b64 = $3, outcome = $4, exit_code = $5::int, wall_ms = $6::bigint, "
                        "error = $7, updated_at = now() WHERE workflow_id = $1 AND step_id = $2",
                        e, err);
}

int mem_store_step_replaced(PGconn *conn, const char *workflow, const char *step, const char *output_b64,
                            au_error *err) {
        return mem_pg_exec(conn,
                           "UPDATE steps SET state = 'replaced', output_b64 = $3, updated_at = now() "
                           "WHERE workflow_id = $1 AND step_id = $2 AND state = 'failed'",
                           3, (const char *const[]){workflow, step, output_b64}, NULL, err);
}

int mem_store_step_moved(PGconn *conn, const char *workflow, const char *step, const char *avoid_node,
                         au_error *err) {
        return mem_pg_exec(
                conn,
                "UPDATE steps SET state = 'ready', moves = moves + 1, avoid_node = $3, "
                "outcome = 'sandbox_error', updated_at = now() WHERE workflow_id = $1 AND step_id = $2",
                3, (const char *const[]){workflow, step, avoid_node}, NULL, err);
}

int mem_store_step_retry(PGconn *conn, const char *workflow, const char *step, const char *avoid_node,
                         double delay_ms, const char *output_b64, au_error *err) {
        char delay_s[32];

        snprintf(delay_s, sizeof(delay_s), "%.0f", delay_ms);
        return mem_pg_exec(conn,
                           "UPDATE steps SET state = 'ready', failures = failures + 1, avoid_node = $3, "
                           "not_before = now() + make_interval(secs => $4::double precision / 1000), "
                           "output_b64 = $5, updated_at = now() WHERE workflow_id = $1 AND step_id = $2",
                           5, (const char *const[]){workflow, step, avoid_node, delay_s, output_b64}, NULL,
                           err);
}

int mem_store_fallback_claim(PGconn *conn, const char *workflow, const char *fallback, bool *ret_claimed,
                             au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r = mem_pg_exec(conn,
                            "UPDATE steps SET state = 'pending', updated_at = now() WHERE workflow_id = $1 "
                            "AND step_id = $2 AND state = 'standby' RETURNING step_id",
                            2, (const char *const[]){workflow, fallback}, &res, err);
        if (r < 0)
                return r;
        *ret_claimed = PQntuples(res) == 1;
        return 0;
}

int mem_store_step_awaiting_human(PGconn *conn, const char *workflow, const char *step, au_error *err) {
        return mem_pg_exec(conn,
                           "UPDATE steps SET state = 'awaiting_human', updated_at = now() "
                           "WHERE workflow_id = $1 AND step_id = $2",
                           2, (const char *const[]){workflow, step}, NULL, err);
}

int mem_store_workflow_awaiting_human(PGconn *conn, const char *workflow, au_error *err) {
        return mem_pg_exec(
                conn, "UPDATE workflows SET state = 'awaiting_human' WHERE id = $1 AND state = 'running'", 1,
                (const char *const[]){workflow}, NULL, err);
}

int mem_store_progress(PGconn *conn, char *const *workflows, size_t n, PGresult **ret_ready,
                       PGresult **ret_finished, au_error *err) {
        _cleanup_free_ char *arr = mem_store_array(workflows, n);
        const char *params[1] = {arr};
        /* In one round trip: the second sees what the first changed (one transaction, in order). */
        const mem_pg_stmt *const stmts[] = {&stmt_progress_ready, &stmt_progress_finish};
        const char *const *const ps[] = {params, params};
        PGresult *got[2] = {NULL, NULL};
        int r;

        if (!arr)
                return -ENOMEM;
        r = mem_pg_pipeline(conn, stmts, ps, 2, got, err);
        *ret_ready = got[0];
        *ret_finished = got[1];
        return r;
}

int mem_store_succeeded_progress(PGconn *conn, const mem_store_step_end *ok, size_t n_ok,
                                 char *const *workflows, size_t n, PGresult **ret_ready,
                                 PGresult **ret_finished, au_error *err) {
        _cleanup_free_ char *nums = calloc(2 * n_ok + 1, 24), *arr = NULL;
        char *arrays[5] = {0};
        const mem_pg_stmt *stmts[3];
        const char *const *ps[3];
        const char *params[1];
        PGresult *got[3] = {NULL, NULL, NULL};
        size_t k = 0, first = 0;
        int r = 0;

        *ret_ready = *ret_finished = NULL;
        if (!nums)
                return au_error_set(err, ENOMEM, "results");
        if (n_ok > 0) {
                r = succeeded_arrays(ok, n_ok, nums, arrays, err);
                stmts[k] = &stmt_steps_succeeded;
                ps[k++] = (const char *const *) arrays;
                first = 1;
        }
        if (r >= 0 && n > 0) {
                arr = mem_store_array(workflows, n);
                if (!arr)
                        r = au_error_set(err, ENOMEM, "results");
                params[0] = arr;
                stmts[k] = &stmt_progress_ready;
                ps[k++] = params;
                stmts[k] = &stmt_progress_finish;
                ps[k++] = params;
        }
        /* In one round trip, in order: the progress statements see the steps that succeeded. */
        if (r >= 0 && k > 0)
                r = mem_pg_pipeline(conn, stmts, ps, k, got, err);
        mem_store_arrays_free(arrays, 5);
        if (first)
                PQclear(got[0]);
        if (r < 0 || n == 0) {
                PQclear(got[first]);
                PQclear(got[first + 1]);
                return r;
        }
        *ret_ready = got[first];
        *ret_finished = got[first + 1];
        return 0;
}
