/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "memory/store-dispatch.h"
#include "memory/store.h"

/* The columns of MEM_SPEC_* (store-dispatch.h), for steps s of workflows w. */
#define STEP_SPEC_COLUMNS                                                                             \
        "s.workflow_id, s.step_id, s.attempt, s.spec::text, s.selector::text, s.avoid_node, s.node, " \
        "(WITH RECURSIVE inp(step_id) AS (SELECT unnest(s.needs) UNION "                              \
        "  SELECT unnest(a.needs) FROM steps a JOIN inp ON a.workflow_id = s.workflow_id "            \
        "  AND a.step_id = inp.step_id AND a.kind = 'approval') "                                     \
        " SELECT json_agg(json_build_array(u.step_id, u.output_b64))::text FROM steps u JOIN inp "    \
        " ON u.step_id = inp.step_id WHERE u.workflow_id = s.workflow_id AND u.output_b64 IS NOT NULL)"

static const mem_pg_stmt stmt_dispatch_pick = {
        "dispatch_pick",
        "SELECT " STEP_SPEC_COLUMNS ", s.program FROM steps s JOIN workflows w ON w.id = s.workflow_id "
        "WHERE s.state = 'ready' AND w.state = 'running' AND s.kind IN ('run', 'tool') "
        "AND (s.not_before IS NULL OR s.not_before <= now()) "
        "ORDER BY w.created_at, s.position LIMIT $1::int FOR NO KEY UPDATE OF s SKIP LOCKED",
        1,
};

static const mem_pg_stmt stmt_dispatch_update = {
        "dispatch_update",
        "UPDATE steps s SET state = 'dispatched', attempt = v.a, node = v.n, dispatched_at = now(), "
        "not_before = NULL, updated_at = now() "
        "FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[]) AS v(w, st, a, n) "
        "WHERE s.workflow_id = v.w AND s.step_id = v.st",
        4,
};

int mem_store_dispatch_pick(PGconn *conn, unsigned limit, PGresult **ret, au_error *err) {
        char lim[16];

        snprintf(lim, sizeof(lim), "%u", limit);
        return mem_pg_run(conn, &stmt_dispatch_pick, (const char *const[]){lim}, ret, err);
}

int mem_store_dispatch_mark(PGconn *conn, const mem_store_placed *v, size_t n, au_error *err) {
        _cleanup_free_ char **cols = calloc(4 * n + 1, sizeof(char *));
        _cleanup_free_ char *attempts = calloc(n + 1, 16);
        char *arrays[4] = {0};
        int r = 0;

        if (!cols || !attempts)
                return au_error_set(err, ENOMEM, "dispatch");
        for (size_t i = 0; i < n; i++) {
                snprintf(attempts + 16 * i, 16, "%d", v[i].attempt);
                cols[i] = (char *) v[i].workflow;
                cols[n + i] = (char *) v[i].step;
                cols[2 * n + i] = attempts + 16 * i;
                cols[3 * n + i] = (char *) v[i].node;
        }
        if (mem_store_arrays(cols, n, 4, arrays) < 0)
                r = au_error_set(err, ENOMEM, "dispatch");
        if (r >= 0)
                r = mem_pg_run(conn, &stmt_dispatch_update, (const char *const *) arrays, NULL, err);
        mem_store_arrays_free(arrays, 4);
        return r;
}

int mem_store_steps_dispatched(PGconn *conn, PGresult **ret, au_error *err) {
        return mem_pg_exec(conn,
                           "SELECT " STEP_SPEC_COLUMNS
                           " FROM steps s JOIN workflows w ON w.id = s.workflow_id "
                           "WHERE s.state = 'dispatched' AND s.node IS NOT NULL AND w.state <> 'cancelled' "
                           "AND s.kind IN ('run', 'tool')",
                           0, NULL, ret, err);
}
