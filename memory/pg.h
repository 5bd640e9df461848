/* SPDX-License-Identifier: MIT */
/*
 * Thin helpers over libpq for the session memory (workflows, steps, runs)
 * and the audit trail: connecting, running one statement with text
 * parameters, transactions, and applying the numbered migrations in sql/.
 * Blocking calls; each connection belongs to one thread at a time.
 *
 * Errors: 0 on success; -ENOTCONN when the connection is gone (the caller
 * reconnects), -EAGAIN for a serialization failure or deadlock (retry the
 * transaction), -EEXIST for a unique violation, -EIO for anything else;
 * err holds PostgreSQL's message.
 */
#pragma once
#include <libpq-fe.h>
#include <stdbool.h>
#include "common/error.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(PGresult *, PQclear);
#define _cleanup_pgresult_ _cleanup_(PQclearp)

/*
 * Connects to url (postgresql://... or "key=value ..."), with
 * connect_timeout 3 s unless the URL sets one, and application_name.
 */
int mem_pg_connect(const char *url, const char *application_name, PGconn **ret, au_error *err);

/* True when the connection is usable. */
bool mem_pg_ok(PGconn *c);

/*
 * Runs sql with n text parameters (NULL entries are SQL NULL). *ret (may be
 * NULL) gets the result on success, which the caller PQclear()s.
 */
int mem_pg_exec(PGconn *c, const char *sql, int n, const char *const *params, PGresult **ret, au_error *err);

/*
 * A statement run often: prepared on each connection the first time it is
 * run there (parse and plan once), then executed by name. Statements live in
 * static storage; name is unique among them.
 */
typedef struct mem_pg_stmt {
        const char *name;
        const char *sql;
        int n_params;
} mem_pg_stmt;

/* As mem_pg_exec(), for a prepared statement (prepared here when needed). */
int mem_pg_run(PGconn *c, const mem_pg_stmt *stmt, const char *const *params, PGresult **ret, au_error *err);

/* BEGIN and COMMIT, for mem_pg_pipeline() (sent unprepared: a statement with no name). */
extern const mem_pg_stmt mem_pg_stmt_begin, mem_pg_stmt_commit;

#define MEM_PG_PIPELINE_MAX 16

/*
 * Runs n (<= MEM_PG_PIPELINE_MAX) statements in one round trip (libpq
 * pipeline mode), in order, in c's transaction: stmts[i] with params[i]
 * (NULL when it has none; a statement with no name is sent unprepared, the
 * others are prepared on c in the same round trip when they are not yet).
 * ret (may be NULL, as may each of its entries' uses) gets each statement's
 * result, which the caller PQclear()s. When one fails, those after it do not
 * run and the error is the first failure's, as mem_pg_exec() gives it; ret
 * is then left all NULL.
 */
int mem_pg_pipeline(PGconn *c, const mem_pg_stmt *const *stmts, const char *const *const *params, size_t n,
                    PGresult **ret, au_error *err);

/* PQfinish(), forgetting what was prepared on c. Accepts NULL. */
void mem_pg_close(PGconn *c);

/* BEGIN / COMMIT / ROLLBACK (rollback never fails loudly). */
int mem_pg_begin(PGconn *c, au_error *err);
int mem_pg_commit(PGconn *c, au_error *err);
void mem_pg_rollback(PGconn *c);

/* The value at (row, col), or NULL when it is SQL NULL. */
const char *mem_pg_value(const PGresult *res, int row, int col);

/* The highest migration applied (0: none, or no schema_migrations table). */
int mem_pg_schema_version(PGconn *c, int *ret, au_error *err);

/* The highest NNN of dir/NNN_*.sql. */
int mem_pg_latest_migration(const char *dir, int *ret, au_error *err);

/*
 * How many of dir/NNN_*.sql are not recorded in schema_migrations (a
 * migration numbered below one applied earlier counts too).
 */
int mem_pg_pending_migrations(PGconn *c, const char *dir, unsigned *ret, au_error *err);

/*
 * Applies each dir/NNN_name.sql not yet recorded in schema_migrations, in
 * order (one numbered below a migration applied earlier too: 003 arriving
 * after 004 was applied), each in its own transaction that also records it. A session-level
 * advisory lock keeps two migrators apart. *ret_applied (may be NULL) gets
 * how many were applied.
 */
int mem_pg_migrate(PGconn *c, const char *dir, unsigned *ret_applied, au_error *err);
