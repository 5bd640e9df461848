/* SPDX-License-Identifier: MIT */
/*
 * The worst-case model cost of one step of a workflow document (issue 14:
 * POST /v1/workflows/simulate adds model cost from prices), before it runs.
 * It reads the step's "kind" and its "model" or "agent" block from the JSON
 * itself, so it needs no parsed model or agent spec, and is a pure function
 * of the step and the fabric's prices.
 *
 * model: the role's first chain entry (the one that answers when nothing
 *        fails), input ~ (system + prompt bytes) / 4 tokens (fabric's own
 *        estimate; the needs' outputs a prompt takes in are not known yet),
 *        output max_tokens; with "verify", the verifier role's first entry
 *        on top: input ~ (criteria + prompt) / 4 + max_tokens, output 256.
 * agent: turns x max_tokens output tokens as the upper bound (capped by
 *        limits.tokens), each turn sending the goal and system again
 *        (~ bytes / 4 input tokens a turn); limits.cost_usd, when set, caps
 *        the whole.
 * Defaults as orchestrator/model.h and agent.h state them (role executor;
 * agent max_tokens 1024, turns 10, tokens 200000).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

#include "fabric/fabric.h"

typedef struct orc_step_cost {
        bool priced;            /* the role has a chain and its first entry a price */
        double usd;             /* the upper bound (0 unless priced) */
        uint64_t input_tokens;  /* estimated, over every call */
        uint64_t output_tokens; /* the bound, over every call */
        unsigned calls;         /* model calls at most */
        char role[16];
        char provider[64], model[128]; /* the role's first chain entry ("" when none) */
        char basis[256];               /* how it was reckoned, or why it is not priced */
} orc_step_cost;

/*
 * Estimates step (one element of a workflow document's "steps") with f's
 * prices (f may be NULL: nothing is priced). Returns 0 with ret filled for a
 * step of kind "model" or "agent", -ENOENT (ret untouched) for any other
 * kind.
 */
int orc_step_cost_estimate(const fab_fabric *f, yajl_val step, orc_step_cost *ret);
