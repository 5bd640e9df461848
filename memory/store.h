/* SPDX-License-Identifier: MIT */
/*
 * The session memory's statements (memory/store-*.c), behind functions named
 * for what they do: the coordinator calls mem_store_node_heartbeat(), not an
 * INSERT. Each function takes typed arguments and returns 0 or a negative
 * errno as mem_pg_exec() does (-ENOTCONN, -EAGAIN, -EEXIST, -EIO; err holds
 * PostgreSQL's message). A function that returns rows gives a PGresult the
 * caller reads with the column names its header declares and PQclear()s.
 *
 * What the store modules share: PostgreSQL array literals for the batched
 * statements (one statement for many rows, unnest()ed on the server).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "memory/pg.h"

/*
 * A PostgreSQL array literal of n strings (NULL entries are NULL), quoted
 * ({"a","b"}); "{}" when n is 0. Caller frees; NULL when out of memory.
 */
char *mem_store_array(char *const *items, size_t n);

/*
 * A batch's columns as array literals: cols holds n_cols columns of n values
 * each (column k from cols[k * n]); arrays[k] gets column k's literal. 0 or
 * -ENOMEM; free them with mem_store_arrays_free() either way.
 */
int mem_store_arrays(char *const *cols, size_t n, size_t n_cols, char **arrays);
void mem_store_arrays_free(char **arrays, size_t n_cols);

/* The value at (row, col) as an int (0 when NULL), as a long long, or whether it is true ("t"). */
int mem_store_int(const PGresult *res, int row, int col);
long long mem_store_ll(const PGresult *res, int row, int col);
bool mem_store_bool(const PGresult *res, int row, int col);

/* A timestamptz column as ISO 8601 UTC with milliseconds ("2026-01-02T03:04:05.678Z"), in SQL. */
#define MEM_STORE_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
