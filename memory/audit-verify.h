/* SPDX-License-Identifier: MIT */
/*
 * The audit trail's verification on the reader's side: every row's hash
 * recomputed from its contents (memory/audit-chain.h), every checkpoint's
 * Ed25519 signature checked against a public key given beforehand, never the
 * coordinator's opinion. `autoosctl audit --verify` (cli/audit.c) and
 * `autoosctl adversarial`'s audit attacks (adversarial/audit.c) judge by it.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <yajl/yajl_tree.h>

#include "common/error.h"

/* The verdict on one trail. */
typedef struct mem_audit_verdict {
        bool ok;
        int64_t rows;         /* rows in the trail */
        int64_t covered;      /* rows 1..covered are vouched for by a valid checkpoint */
        unsigned checkpoints; /* valid checkpoints by the pinned key (database and log) */
        unsigned from_log;    /* of which from a coordinator's log */
        int64_t log_max_seq;  /* the highest seq a valid checkpoint of the log covers (0: none) */
        unsigned other_keys;  /* checkpoints by other keys, not counted */
        int64_t bad_seq;      /* the first bad row (0 when ok) */
        char reason[512];     /* why, when not ok */
} mem_audit_verdict;

/*
 * Checks the trail doc (the document of GET /v1/workflows/{id}/audit) of
 * workflow: seqs 1..n without a gap, each prev_hash the previous row's hash,
 * each hash recomputed from the row's contents, each checkpoint of this
 * workflow (doc's "checkpoints" and the log_n objects of log, as the
 * coordinator's log writes them under "audit_checkpoint") signed by key and
 * matching the recomputed hash at its seq, and every row covered by one. A
 * trail without rows does not verify. Fills *ret; returns 0, or -ENOMEM.
 */
int mem_audit_trail_verify(const char *workflow, yajl_val doc, EVP_PKEY *key, yajl_val const *log,
                           size_t log_n, mem_audit_verdict *ret);

/*
 * Reads the audit checkpoints from a coordinator's log (JSON lines; other
 * lines are skipped): *ret gets the document of each line holding an
 * "audit_checkpoint" object (the caller frees each with yajl_tree_free(), and
 * the array). Returns 0, or a negative errno with err naming the path and why.
 */
int mem_audit_log_checkpoints(const char *path, yajl_val **ret, size_t *ret_n, au_error *err);
