/* SPDX-License-Identifier: MIT */
/*
 * The statements of model and agent steps (issue 14; orchestrator/steps-model.c):
 * the fabric workers pick ready ones, record their attempts' records, move a
 * step to another provider of its chain (recovery level 3), add and follow an
 * agent's tool calls (steps of kind 'tool'), and find the calls a restart
 * lost (memory/store.h says how these functions report errors and results).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "memory/pg.h"

/* Columns of mem_store_fabric_pick()'s row. */
enum {
        MEM_FAB_WORKFLOW,
        MEM_FAB_STEP,
        MEM_FAB_KIND, /* "model" or "agent" */
        MEM_FAB_ATTEMPT,
        MEM_FAB_BLOCK,  /* the "model" or "agent" block (JSON) */
        MEM_FAB_INPUTS, /* JSON array of [step, base64 of stdout], or NULL (as MEM_SPEC_INPUTS) */
        MEM_FAB_NEEDS,  /* JSON array of the step's needs */
        MEM_FAB_ENTRY,  /* the chain entry to start at (recovery level 3) */
        MEM_FAB_FAILURES,
        MEM_FAB_MAX_ATTEMPTS,
        MEM_FAB_BUDGET,     /* the workflow's budget_usd, or NULL */
        MEM_FAB_CREATED_BY, /* the submitting key's name: the key budget's scope */
};

/*
 * In the caller's transaction: the oldest ready model or agent step of a
 * running workflow whose backoff has passed (rows others hold are skipped)
 * becomes dispatched on node (its next attempt); *ret has it, or no row.
 */
int mem_store_fabric_pick(PGconn *conn, const char *node, PGresult **ret, au_error *err);

/* The fabric record (JSON) of a step's attempt's runs row. */
int mem_store_fabric_record(PGconn *conn, const char *workflow, const char *step, unsigned attempt,
                            const char *fabric_json, au_error *err);

/* Recovery level 3: ready again, starting at chain entry `entry`, its failures counted afresh. */
int mem_store_fabric_provider(PGconn *conn, const char *workflow, const char *step, unsigned entry,
                              au_error *err);

/* Columns of mem_store_fabric_inflight()'s rows. */
enum { MEM_FABIN_WORKFLOW, MEM_FABIN_STEP, MEM_FABIN_ATTEMPT, MEM_FABIN_NODE };

/* Model and agent steps dispatched (in a call) on a "fabric:" node, of workflows not ended. */
int mem_store_fabric_inflight(PGconn *conn, PGresult **ret, au_error *err);

/* A step whose call was lost (its coordinator is gone): ready again, if still dispatched on node. */
int mem_store_fabric_requeue(PGconn *conn, const char *workflow, const char *step, const char *node,
                             bool *ret_requeued, au_error *err);

/*
 * An agent's tool call as a step of kind 'tool': ready, its run spec
 * run_json, one attempt that is not escalated, program the history key.
 * -EEXIST when the step exists already.
 */
int mem_store_tool_step_add(PGconn *conn, const char *workflow, const char *step, const char *run_json,
                            const char *program, au_error *err);

/* Columns of mem_store_tool_step_get()'s row. */
enum {
        MEM_TOOL_STATE,
        MEM_TOOL_OUTPUT_B64,
        MEM_TOOL_OUTCOME,
        MEM_TOOL_EXIT_CODE,
        MEM_TOOL_ERROR,
        MEM_TOOL_STDERR, /* the attempt's stderr, from its runs row (NULL until there is one) */
        MEM_TOOL_NODE,
        MEM_TOOL_WORKFLOW_STATE,
};

/* A tool step's state and, once it ended, its output. */
int mem_store_tool_step_get(PGconn *conn, const char *workflow, const char *step, PGresult **ret,
                            au_error *err);
