/* SPDX-License-Identifier: MIT */
#include "memory/store-runs.h"

int mem_store_run_result(PGconn *conn, const char *workflow, const char *step, const char *attempt,
                         PGresult **ret, au_error *err) {
        return mem_pg_exec(conn,
                           "SELECT result::text, late, node FROM runs WHERE workflow_id = $1::uuid AND "
                           "step_id = $2 AND attempt = $3::int",
                           3, (const char *const[]){workflow, step, attempt}, ret, err);
}
