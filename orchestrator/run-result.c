/* SPDX-License-Identifier: MIT */
/* One attempt's stored result (run-result.h). */
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "memory/store-runs.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/run-result.h"
#include "orchestrator/workflow.h"

/* Splits "<uuid>.<step>.<attempt>" (a step id may hold dots: the attempt is after the last). */
static bool parse_run_id(const char *id, char wf[static 37], char step[static ORC_MAX_STEP_ID + 1],
                         char attempt[static 11]) {
        const char *last = strrchr(id, '.');
        size_t step_len, n;

        if (strlen(id) < 40 || id[36] != '.' || !last || last <= id + 37)
                return false;
        memcpy(wf, id, 36);
        wf[36] = '\0';
        step_len = (size_t) (last - (id + 37));
        n = strlen(last + 1);
        if (!orc_valid_uuid(wf) || step_len > ORC_MAX_STEP_ID || n == 0 || n > 9 ||
            strspn(last + 1, "0123456789") != n || last[1] == '0')
                return false;
        memcpy(step, id + 37, step_len);
        step[step_len] = '\0';
        memcpy(attempt, last + 1, n + 1);
        return true;
}

void orc_run_result(orc_coord *c, const char *run_id, orc_reply *ret) {
        _cleanup_pgresult_ PGresult *res = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        char wf[37], step[ORC_MAX_STEP_ID + 1], attempt[11];
        au_error err = {0};
        PGconn *conn;
        int r;

        if (!run_id || !parse_run_id(run_id, wf, step, attempt)) {
                orc_reply_error(ret, 404, "not_found", NULL,
                                "no run '%.128s' (expected <workflow>.<step>.<attempt>)",
                                run_id ? run_id : "");
                return;
        }
        if (!(conn = orc_get_conn(c, ret)))
                return;
        r = mem_store_run_result(conn, wf, step, attempt, &res, &err);
        if (orc_put_conn(c, conn, ret, r, &err) < 0)
                return;
        if (PQntuples(res) == 0) {
                orc_reply_error(ret, 404, "not_found", NULL, "no result of run '%s' (yet)", run_id);
                return;
        }
        if (!(g = orc_reply_object_open(ret)))
                return;
        au_json_gen_kv_string(g, "id", run_id);
        au_json_gen_kv_string(g, "workflow", wf);
        au_json_gen_kv_string(g, "step", step);
        orc_gen_kv_num(g, "attempt", attempt);
        orc_gen_kv_text(g, "node", mem_pg_value(res, 0, MEM_RUN_NODE));
        au_json_gen_kv_bool(g, "late", strcmp(mem_pg_value(res, 0, MEM_RUN_LATE) ?: "f", "t") == 0);
        orc_gen_kv_raw(g, "result", mem_pg_value(res, 0, MEM_RUN_RESULT));
        orc_reply_object_close(ret, 200, g);
}
