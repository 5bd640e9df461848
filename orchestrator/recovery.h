/* SPDX-License-Identifier: MIT */
/*
 * The recovery ladder (DESIGN.md "Recovery"), as a decision: what a step's
 * current result means for the step. A pure function of its inputs (no
 * database, no clock, no randomness: the jitter is passed in), so every
 * level and edge is unit-tested (tests/orchestrator/test-recovery.c); the
 * results thread (scheduler.c) reads the step row, calls it and writes what
 * it decided.
 */
#pragma once
#include <stdbool.h>

#include "sandbox/sandbox.h"

typedef enum orc_recovery_action {
        ORC_RECOVERY_SUCCEEDED, /* exited 0 (a fallback replaces the step it stood in for) */
        ORC_RECOVERY_MOVE,     /* level 2: sandbox_error, placed again on another node; no failure counted */
        ORC_RECOVERY_RETRY,    /* level 1: ready again after delay_ms, avoiding the node that failed it */
        ORC_RECOVERY_FALLBACK, /* level 4: failed; its fallback, standing by, stands in */
        ORC_RECOVERY_FAIL,     /* a one-off run (POST /v1/runs): failed, the result is the answer */
        ORC_RECOVERY_ESCALATE, /* level 5: failed; a human decides */
} orc_recovery_action;

/* The result and the step row it answers. */
typedef struct orc_recovery_input {
        sbx_outcome outcome;
        int exit_code;
        int failures;         /* failed attempts before this one (steps.failures) */
        int max_attempts;     /* steps.max_attempts */
        int moves;            /* placements again so far (steps.moves) */
        int max_moves;        /* ORC_MAX_MOVES */
        long long backoff_ms; /* the first retry's base delay */
        long long max_backoff_ms;
        double jitter;          /* in [0, 1]: random() / RAND_MAX in the coordinator, chosen in tests */
        bool has_fallback;      /* the step declares a fallback */
        bool fallback_standing; /* ... and it is still standing by (not claimed yet) */
        bool escalates;         /* a workflow step; false for a one-off run, which ends at its failure */
        bool is_fallback;       /* the step is itself the fallback of another (steps.fallback_for) */
} orc_recovery_input;

/* The decision, with what its audit row and statements need. */
typedef struct orc_recovery {
        orc_recovery_action action;
        double delay_ms; /* RETRY: backoff_ms doubled per failure, capped, then equal jitter (not rounded) */
        int failures;    /* failures counted after this result (MOVE and SUCCEEDED: unchanged) */
        bool replaces;   /* SUCCEEDED: the step is a fallback; the step it stands in for becomes replaced */
        bool escalate_replaced; /* ESCALATE: the step is a fallback; the step it stood in for awaits the
                                   human */
} orc_recovery;

/*
 * Decides what a current, non-late result means for its step, in the
 * ladder's order: success; level 2 (sandbox_error while moves < max_moves,
 * without using the retry budget); level 1 (any failure but rejected while
 * failures + 1 < max_attempts: retry after backoff_ms * 2^failures, capped
 * at max_backoff_ms, half of it fixed and half scaled by jitter); level 4
 * (a fallback standing by); a one-off run fails; level 5 escalates. A
 * fallback that is not standing by (claimed already) is as none. Never
 * fails; in is not kept.
 */
orc_recovery orc_recovery_decide(const orc_recovery_input *in);

/* The action's name, for logs and tests ("succeeded", "move", "retry", "fallback", "fail", "escalate"). */
const char *orc_recovery_action_to_string(orc_recovery_action a);
