/* SPDX-License-Identifier: MIT */
/*
 * Workflows and their steps as the API changes and reads them (memory/store.h
 * says how these functions report errors and results). Changes run in the
 * caller's transaction.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "memory/pg.h"

/* A step of a workflow submitted: JSON texts for its run, needs (array) and node selector (object). */
typedef struct mem_store_new_step {
        const char *id, *kind, *state, *run_json, *fallback, *needs_json, *program, *selector_json;
        const char *fallback_for; /* the step it is the fallback of, or NULL */
        unsigned max_attempts;
        uint64_t backoff_ms, max_backoff_ms;
} mem_store_new_step;

/*
 * The workflow id (running, made by actor, spec the document submitted) and
 * its n steps, in order; escalate: whether its failures escalate to a human
 * (a one-off run does not). Two statements.
 */
int mem_store_workflow_insert(PGconn *conn, const char *id, const char *name, const char *spec_json,
                              const char *actor, const mem_store_new_step *steps, size_t n, bool escalate,
                              au_error *err);

/* Columns of mem_store_workflows_list(): step_counts is a JSON object {state: n}. */
enum {
        MEM_WFLIST_ID,
        MEM_WFLIST_NAME,
        MEM_WFLIST_STATE,
        MEM_WFLIST_CREATED_AT,
        MEM_WFLIST_UPDATED_AT,
        MEM_WFLIST_STEP_COUNTS,
        MEM_WFLIST_STEPS,
        MEM_WFLIST_CREATED_BY,
};

/* The newest limit workflows, in state (NULL: any), newest first. */
int mem_store_workflows_list(PGconn *conn, const char *state, unsigned limit, PGresult **ret, au_error *err);

/* Columns of mem_store_workflow_get()'s workflow row and step rows (in the workflow's order). */
enum { MEM_WF_ID, MEM_WF_NAME, MEM_WF_STATE, MEM_WF_CREATED_AT, MEM_WF_UPDATED_AT, MEM_WF_CREATED_BY };
enum {
        MEM_STEP_ID,
        MEM_STEP_KIND,
        MEM_STEP_STATE,
        MEM_STEP_ATTEMPT,
        MEM_STEP_NODE,
        MEM_STEP_NEEDS, /* JSON array */
        MEM_STEP_FALLBACK,
        MEM_STEP_OUTCOME,
        MEM_STEP_EXIT_CODE,
        MEM_STEP_WALL_MS,
        MEM_STEP_ERROR,
        MEM_STEP_OUTPUT_B64,
        MEM_STEP_UPDATED_AT,
        MEM_STEP_FAILURES,
        MEM_STEP_FALLBACK_FOR,
        MEM_STEP_FABRIC, /* a model or agent step's latest attempt's record (JSON), or NULL */
};

/* The workflow id (*ret_workflow: no row when there is none) and its steps. */
int mem_store_workflow_get(PGconn *conn, const char *id, PGresult **ret_workflow, PGresult **ret_steps,
                           au_error *err);

/* The workflow's row locked; *ret_state gets its state (caller frees). -ENOENT when there is none. */
int mem_store_workflow_lock(PGconn *conn, const char *id, char **ret_state, au_error *err);

/* *ret: whether a run step of the workflow waits for a human (after an escalation). */
int mem_store_workflow_escalated(PGconn *conn, const char *id, bool *ret, au_error *err);

/* The workflow's state set. */
int mem_store_workflow_set_state(PGconn *conn, const char *id, const char *state, au_error *err);

/* Columns of mem_store_workflow_cancel_steps()'s rows: the steps cancelled, where they ran, which attempt.
 */
enum { MEM_CANCELLED_STEP, MEM_CANCELLED_NODE, MEM_CANCELLED_ATTEMPT, MEM_CANCELLED_STATE };

/* Every step of the workflow not finished is cancelled. */
int mem_store_workflow_cancel_steps(PGconn *conn, const char *id, PGresult **ret, au_error *err);

/* Columns of mem_store_step_lock()'s row. */
enum { MEM_LOCKED_STATE, MEM_LOCKED_KIND, MEM_LOCKED_FALLBACK, MEM_LOCKED_CREATED_BY };

/* The step's row locked, with its workflow's submitter (no row: no such step). */
int mem_store_step_lock(PGconn *conn, const char *id, const char *step, PGresult **ret, au_error *err);

/* A human's retry: the step ready again (failures reset, no backoff, no node avoided), its fallback standing
 * by again. */
int mem_store_step_retry_by_human(PGconn *conn, const char *id, const char *step, const char *fallback,
                                  au_error *err);

/* The step's state set (a human's approve or skip). */
int mem_store_step_set_state(PGconn *conn, const char *id, const char *step, const char *state,
                             au_error *err);

/* Columns of mem_store_program_history()'s one row: NULLs when the program never ran. */
enum { MEM_HISTORY_RUNS, MEM_HISTORY_P50_MS, MEM_HISTORY_P95_MS, MEM_HISTORY_SUCCESS };

/* The wall time (median, 95th percentile) and success rate of the newest 200 runs of program (its argv). */
int mem_store_program_history(PGconn *conn, const char *program, PGresult **ret, au_error *err);

/* Columns of mem_store_workflow_outcome()'s row: the workflow's state and its newest current result. */
enum { MEM_OUTCOME_STATE, MEM_OUTCOME_RESULT };

/* The workflow's state and the newest result of a current attempt (JSON or NULL); no row: no workflow. */
int mem_store_workflow_outcome(PGconn *conn, const char *id, PGresult **ret, au_error *err);

/* Whether PostgreSQL answers (SELECT 1). */
bool mem_store_alive(PGconn *conn);
