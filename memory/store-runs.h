/* SPDX-License-Identifier: MIT */
/* The runs table, read (memory/store.h says how these functions report errors and results). */
#pragma once
#include "common/error.h"
#include "memory/pg.h"

/* Columns of mem_store_run_result(). */
enum { MEM_RUN_RESULT, MEM_RUN_LATE, MEM_RUN_NODE };

/*
 * The stored result of one attempt of a step (its row in runs: the node's
 * whole result document, stdout and stderr included, as the node sent it;
 * whether it came late; the node). No row when the attempt has no result
 * (yet).
 */
int mem_store_run_result(PGconn *conn, const char *workflow, const char *step, const char *attempt,
                         PGresult **ret, au_error *err);
