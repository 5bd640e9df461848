/* SPDX-License-Identifier: MIT */
/*
 * Intents (DESIGN.md "Fabric", issue 14): the planner role turns a sentence
 * into a draft workflow. The draft is checked by orc_workflow_parse, the
 * validator submissions use; a refused draft goes back to the planner with
 * the validator's message, a bounded number of rounds. Each step of a valid
 * draft is classified by the policy's risk rules (its trust level, its
 * network, its model spend), with the planner's own rating kept beside the
 * rules' (never instead of them); steps above the risk line get an approval
 * step inserted before them. The draft is returned for review: submitting it
 * is the caller's decision.
 *
 * The planner is asked to reply with one JSON object:
 *   {"workflow": <workflow document>,
 *    "risk": {"<step id>": "low" | "medium" | "high", ...},
 *    "summary": "one or two sentences"}
 *
 * The risk rules (a policy's "intents" block, orc_risk_rules_parse):
 *   {"risk_line": "low" | "medium" | "high" (default "medium": steps rated
 *                 "high" get an approval step; "high": none do),
 *    "trust": {"restricted": level, "standard": ..., "elevated": ..., "privileged": ...}
 *             (default low, low, medium, high),
 *    "network": {"none": level, "loopback": ..., "egress": ...} (default low, low, high),
 *    "model_spend_usd": {"medium": USD, "high": USD} (default 0.10 and 1.00: a
 *                        step whose worst-case model spend reaches it has that level)}
 * A step's risk is the highest its rules give.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

#include "common/error.h"
#include "fabric/fabric.h"
#include "sandbox/sandbox.h"

#define ORC_INTENT_MAX_SENTENCE (16 * 1024)
#define ORC_INTENT_MAX_ROUNDS 10
/* The planner's reply (and so a draft) is refused above this. */
#define ORC_INTENT_MAX_DRAFT (1024 * 1024)

typedef enum orc_risk { ORC_RISK_LOW, ORC_RISK_MEDIUM, ORC_RISK_HIGH, _ORC_RISK_MAX } orc_risk;

/* "low", "medium", "high"; orc_risk_from_name returns -EINVAL for anything else. */
const char *orc_risk_name(orc_risk r);
int orc_risk_from_name(const char *s);

typedef struct orc_risk_rules {
        orc_risk line; /* steps above it get an approval step */
        orc_risk trust[_SBX_TRUST_MAX];
        orc_risk network[_SBX_NET_MAX];
        double spend_medium_usd, spend_high_usd;
} orc_risk_rules;

/* The defaults above. */
void orc_risk_rules_init_default(orc_risk_rules *ret);

/*
 * Parses a policy's "intents" block over the defaults, strictly (unknown
 * fields and levels refused, err naming the field "intents.trust.elevated").
 * ret is untouched on failure. Returns 0 or -EINVAL.
 */
int orc_risk_rules_parse(yajl_val v, orc_risk_rules *ret, au_error *err);

/*
 * One step of a (validated) workflow document classified by rules: its run's
 * trust (or policy's default level) and network (or that level's default),
 * and its worst-case model spend ("model".max_tokens at the output price of
 * its role's first chain entry in f, or "agent".limits.cost_usd; f may be
 * NULL: no model spend is priced). *ret_why gets the rules that fired,
 * "trust elevated: medium; ..." (caller frees; may be NULL). Returns the level.
 */
orc_risk orc_risk_of_step(const orc_risk_rules *rules, const sbx_policy *policy, const fab_fabric *f,
                          yajl_val step, char **ret_why);

typedef struct orc_intent_options {
        const sbx_policy *policy;    /* the validator's and the rules' policy; NULL: built-in */
        const orc_risk_rules *rules; /* NULL: the defaults */
        unsigned max_rounds;         /* planner calls, 1..ORC_INTENT_MAX_ROUNDS (0: 3) */
        uint32_t max_tokens;         /* per planner call (0: 4096) */
        const char *key;             /* budget scope; may be NULL */
} orc_intent_options;

typedef enum orc_intent_outcome {
        ORC_INTENT_OK,      /* a valid draft, classified */
        ORC_INTENT_INVALID, /* every round's draft was refused by the validator */
        ORC_INTENT_FAILED,  /* the planner's chain failed */
        ORC_INTENT_BUDGET,  /* the key's budget */
} orc_intent_outcome;

/* "ok", "invalid_draft", "failed", "budget_exceeded". */
const char *orc_intent_outcome_name(orc_intent_outcome o);

typedef struct orc_intent_step {
        char *id;
        orc_risk risk;     /* the rules' level */
        char *why;         /* which rules fired */
        int model_risk;    /* the planner's rating (an orc_risk), or -1 when it gave none */
        char *approval_id; /* the approval step inserted before it, or NULL */
} orc_intent_step;

typedef struct orc_intent_result {
        orc_intent_outcome outcome;
        char *draft;   /* the workflow document, approvals inserted (NULL unless ok) */
        char *summary; /* the planner's ("" when none) */
        orc_intent_step *steps;
        size_t n_steps;
        orc_risk risk;      /* the highest step's */
        int model_risk;     /* the planner's highest rating, or -1 */
        unsigned rounds;    /* planner calls made */
        unsigned approvals; /* approval steps inserted */
        fab_usage usage;
        double cost_usd;
        char provider[64], model[128];
        char error[512]; /* invalid: the validator's last message; failed: the provider's */
} orc_intent_result;

/*
 * Turns sentence into a draft workflow as above. Fills ret
 * (orc_intent_result_done frees it) and returns 0 whatever the outcome, or
 * -EINVAL (an empty or too long sentence, bad options) / -ENOMEM.
 */
int orc_intent_draft(fab_fabric *f, const char *sentence, const orc_intent_options *opts,
                     orc_intent_result *ret);
void orc_intent_result_done(orc_intent_result *r);

/*
 * The answer POST /v1/intents gives: {"outcome","draft":{...}|null,
 * "summary","risk":{"level","model_level","line","steps":[{"id","level",
 * "why","model_level","approval_step"}]},"rounds","approvals","tokens":{...},
 * "cost_usd","provider","model","error"}. Caller frees; NULL on ENOMEM.
 */
char *orc_intent_result_json(const orc_intent_result *r, const orc_risk_rules *rules);
