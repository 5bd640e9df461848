/* SPDX-License-Identifier: MIT */
/*
 * Dispatch's statements: the ready steps to place, and the steps placed
 * (memory/store.h says how these functions report errors and results).
 */
#pragma once
#include <stddef.h>

#include "common/error.h"
#include "memory/pg.h"

/*
 * Columns of a step to send to a node (mem_store_dispatch_pick(),
 * mem_store_steps_dispatched()): its run object (JSON), node selector (JSON
 * or NULL), the node to avoid, the node it is placed on, and its inputs: a
 * JSON array of [step, base64 of stdout] for its needs (and an approval
 * need's own needs), or NULL.
 */
enum {
        MEM_SPEC_WORKFLOW,
        MEM_SPEC_STEP,
        MEM_SPEC_ATTEMPT,
        MEM_SPEC_RUN,
        MEM_SPEC_SELECTOR,
        MEM_SPEC_AVOID_NODE,
        MEM_SPEC_NODE,
        MEM_SPEC_INPUTS,
};

/*
 * In the caller's transaction: at most limit ready run steps of running
 * workflows whose backoff has passed, oldest workflow first, locked (rows
 * another transaction holds are skipped).
 */
int mem_store_dispatch_pick(PGconn *conn, unsigned limit, PGresult **ret, au_error *err);

/* A step placed: its workflow, id, the attempt it starts and the node. */
typedef struct mem_store_placed {
        const char *workflow, *step, *node;
        int attempt;
} mem_store_placed;

/* In the caller's transaction: the n steps placed are dispatched (one statement). -ENOMEM, or as above. */
int mem_store_dispatch_mark(PGconn *conn, const mem_store_placed *v, size_t n, au_error *err);

/* The steps left dispatched (their specs to send again after a restart), of workflows not cancelled. */
int mem_store_steps_dispatched(PGconn *conn, PGresult **ret, au_error *err);
