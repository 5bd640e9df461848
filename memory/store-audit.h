/* SPDX-License-Identifier: MIT */
/*
 * The audit trail's statements (sql/001_init.sql, 004_signed_audit.sql),
 * behind functions named for what they do, as memory/store.h describes:
 * appending rows to their chains, storing signed checkpoints of chain heads,
 * what the auditor reads before signing (chain locks and heads, checkpoints
 * stored, workflows changed lately, the session's role) and one workflow's
 * trail as the API returns it. The chains themselves are PostgreSQL's: its
 * trigger takes each chain's advisory lock and fills seq, prev_hash and hash.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memory/audit-chain.h"
#include "memory/pg.h"

/* One row to append: its chain (a workflow's uuid; NULL is the fleet chain), action and detail (JSON). */
typedef struct mem_audit_row {
        const char *workflow;
        const char *action;
        const char *detail; /* NULL: {} */
} mem_audit_row;

/* A chain's newest row: its chain ("" is the fleet), seq and hash (64 lowercase hex digits). */
typedef struct mem_audit_head {
        char chain[37];
        int64_t seq;
        char hash[2 * MEM_AUDIT_HASH_BYTES + 1];
} mem_audit_head;

/* What mem_store_audit_append() does around the rows. */
enum {
        MEM_AUDIT_BEGIN = 1 << 0,  /* BEGIN first, in the INSERT's round trip */
        MEM_AUDIT_COMMIT = 1 << 1, /* COMMIT after, in the INSERT's round trip */
};

/*
 * Appends rows[0..n), written by actor, in one INSERT in conn's transaction
 * (flags: MEM_AUDIT_BEGIN starts it, else the caller has; MEM_AUDIT_COMMIT
 * commits it), one round trip. The rows come grouped by chain, the chains in
 * lock order (the fleet first, then by uuid text: the order the auditor's
 * sweep takes the same locks in), each chain's rows in their order.
 * ret_heads (may be NULL): each chain's new head, malloc'd, *ret_n_heads of
 * them. Returns 0 or a negative errno as mem_pg_exec() (a detail that is not
 * JSON: -EIO, PostgreSQL's message in err).
 */
int mem_store_audit_append(PGconn *conn, const char *actor, const mem_audit_row *rows, size_t n,
                           unsigned flags, mem_audit_head **ret_heads, size_t *ret_n_heads, au_error *err);

/* One signed checkpoint of a chain's head. */
typedef struct mem_audit_checkpoint {
        const char *chain; /* NULL or "": the fleet chain */
        int64_t seq;
        const char *hash;      /* 64 hex digits */
        int64_t ts_epoch_us;   /* when it was signed */
        const char *signature; /* 128 hex digits */
} mem_audit_checkpoint;

/*
 * Stores checkpoints c[0..n), signed with the key key_id by coordinator, in
 * conn's transaction; one already stored (same chain, seq and key) is left
 * as it is. PostgreSQL refuses a checkpoint of a row it does not hold.
 */
int mem_store_audit_checkpoints_add(PGconn *conn, const mem_audit_checkpoint *c, size_t n,
                                    const char *key_id, const char *coordinator, au_error *err);

/*
 * One workflow's trail as the API shows it: *ret_workflow has a row when the
 * workflow exists; *ret_rows its rows by seq (seq, ts as ISO 8601 UTC,
 * ts_epoch_us, actor, action, detail, prev_hash, hash: hashes in hex);
 * *ret_checkpoints its checkpoints (seq, hash, ts_epoch_us, key_id,
 * signature, coordinator); when verify, *ret_verify the first seq that does
 * not verify (autoos_audit_verify(), NULL: none). The caller PQclear()s each.
 */
int mem_store_audit_trail(PGconn *conn, const char *workflow, bool verify, PGresult **ret_workflow,
                          PGresult **ret_rows, PGresult **ret_checkpoints, PGresult **ret_verify,
                          au_error *err);

/* Takes the advisory locks of chains[0..n) in that order (NULL: the fleet chain) until the transaction ends.
 */
int mem_store_audit_lock_chains(PGconn *conn, char *const *chains, size_t n, au_error *err);

/*
 * The newest row of each chain of workflows[0..n) that has one (columns:
 * chain, seq, hash in hex, the highest seq checkpointed with key_id or NULL),
 * and the same for the fleet chain (chain NULL).
 */
int mem_store_audit_heads(PGconn *conn, char *const *workflows, size_t n, const char *key_id, PGresult **ret,
                          au_error *err);
int mem_store_audit_fleet_head(PGconn *conn, const char *key_id, PGresult **ret, au_error *err);

/* Which checkpoints (chains[i], seqs[i]) signed with key_id are stored (columns: chain, seq). */
int mem_store_audit_checkpoints_stored(PGconn *conn, char *const *chains, char *const *seqs, size_t n,
                                       const char *key_id, PGresult **ret, au_error *err);

/* The ids of every workflow (all), or of those changed within lookback (an interval, "1 day"). */
int mem_store_audit_workflows(PGconn *conn, bool all, const char *lookback, PGresult **ret, au_error *err);

/* The session's role: its name, whether it is a superuser and whether it owns audit_log ("t"/"f"). */
int mem_store_audit_role(PGconn *conn, PGresult **ret, au_error *err);
