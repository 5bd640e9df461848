/* SPDX-License-Identifier: MIT */
/*
 * Applying results: the steps they answer, the runs they record, and what
 * recovery decided for each step, then the workflows' progress (memory/store.h
 * says how these functions report errors and results). All run in the
 * caller's transaction, which mem_store_results_begin() starts.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "memory/pg.h"

/* A step a result answers. */
typedef struct mem_store_step_key {
        const char *workflow, *step;
} mem_store_step_key;

/* Columns of mem_store_results_begin()'s step rows. */
enum {
        MEM_RSTEP_WORKFLOW,
        MEM_RSTEP_STEP,
        MEM_RSTEP_STATE,
        MEM_RSTEP_ATTEMPT,
        MEM_RSTEP_NODE,
        MEM_RSTEP_MAX_ATTEMPTS,
        MEM_RSTEP_FAILURES,
        MEM_RSTEP_MOVES,
        MEM_RSTEP_BACKOFF_MS,
        MEM_RSTEP_MAX_BACKOFF_MS,
        MEM_RSTEP_FALLBACK,
        MEM_RSTEP_FALLBACK_FOR,
        MEM_RSTEP_WORKFLOW_STATE,
        MEM_RSTEP_DISPATCHED_MS, /* NULL when never dispatched */
        MEM_RSTEP_ESCALATE,
};

/*
 * BEGIN, then the workflows of these n steps locked (in id order: one result
 * transaction per workflow at a time), then the steps' rows locked, with
 * their workflow's state: all in one round trip.
 */
int mem_store_results_begin(PGconn *conn, const mem_store_step_key *steps, size_t n, PGresult **ret,
                            au_error *err);

/* A run's row: one attempt's result. */
typedef struct mem_store_run {
        const char *workflow, *step, *node, *outcome;
        unsigned attempt;
        int exit_code;
        uint64_t wall_ms, cpu_ms, memory_peak_bytes;
        const char *denied_json;         /* a JSON array of syscall names */
        const char *result_json;         /* the result as stored */
        int64_t started_ms, finished_ms; /* CLOCK_REALTIME; 0: unknown */
        bool late;                       /* not the step's current attempt */
} mem_store_run;

/* Columns of mem_store_runs_insert()'s rows: the runs that were new. */
enum { MEM_NEWRUN_WORKFLOW, MEM_NEWRUN_STEP, MEM_NEWRUN_ATTEMPT };

/* Records n runs in one statement; those recorded before (a redelivery) are left and not returned. */
int mem_store_runs_insert(PGconn *conn, const mem_store_run *v, size_t n, PGresult **ret, au_error *err);

/* A step's end with a result: its output (base64), outcome, exit code, wall time and error text. */
typedef struct mem_store_step_end {
        const char *workflow, *step, *output_b64, *outcome, *error;
        int exit_code;
        uint64_t wall_ms;
} mem_store_step_end;

/* n steps succeeded (exited 0), in one statement. */
int mem_store_steps_succeeded(PGconn *conn, const mem_store_step_end *v, size_t n, au_error *err);

/* The step failed for good (a failure counted), its output, outcome and error kept. */
int mem_store_step_failed(PGconn *conn, const mem_store_step_end *e, au_error *err);

/* The step failed and waits for a human (a failure counted), its output, outcome and error kept. */
int mem_store_step_escalated(PGconn *conn, const mem_store_step_end *e, au_error *err);

/* A failed step whose fallback succeeded is replaced, with the fallback's output as its own. */
int mem_store_step_replaced(PGconn *conn, const char *workflow, const char *step, const char *output_b64,
                            au_error *err);

/* Ready again on another node than avoid_node, the failure not counted (a move). */
int mem_store_step_moved(PGconn *conn, const char *workflow, const char *step, const char *avoid_node,
                         au_error *err);

/* Ready again after delay_ms, avoiding avoid_node, a failure counted, this attempt's output kept. */
int mem_store_step_retry(PGconn *conn, const char *workflow, const char *step, const char *avoid_node,
                         double delay_ms, const char *output_b64, au_error *err);

/* A standing-by fallback claimed (pending); *ret_claimed false when it was not standing by. */
int mem_store_fallback_claim(PGconn *conn, const char *workflow, const char *fallback, bool *ret_claimed,
                             au_error *err);

/* The step waits for a human (a fallback's failure hands the decision back to the step it stood in for). */
int mem_store_step_awaiting_human(PGconn *conn, const char *workflow, const char *step, au_error *err);

/* The workflow, when running, waits for a human. */
int mem_store_workflow_awaiting_human(PGconn *conn, const char *workflow, au_error *err);

/* Columns of mem_store_progress()'s rows: steps made ready (or awaiting approval), and workflows finished.
 */
enum { MEM_READY_WORKFLOW, MEM_READY_STEP, MEM_READY_STATE };
enum { MEM_FINISHED_WORKFLOW, MEM_FINISHED_STATE };

/*
 * For these n workflows, in one round trip: pending steps whose needs are all
 * done become ready (approval steps awaiting_human), *ret_ready; then the
 * workflows with nothing left to do finish (failed when a step failed and no
 * fallback replaced it, else succeeded), their standby steps skipped,
 * *ret_finished.
 */
int mem_store_progress(PGconn *conn, char *const *workflows, size_t n, PGresult **ret_ready,
                       PGresult **ret_finished, au_error *err);

/*
 * mem_store_steps_succeeded() for the n_ok steps in ok, then
 * mem_store_progress() for the n workflows, in one round trip (the results'
 * transaction saves one). With n == 0 only the steps are written and
 * *ret_ready and *ret_finished are NULL; the caller PQclear()s them.
 */
int mem_store_succeeded_progress(PGconn *conn, const mem_store_step_end *ok, size_t n_ok,
                                 char *const *workflows, size_t n, PGresult **ret_ready,
                                 PGresult **ret_finished, au_error *err);
