/* SPDX-License-Identifier: MIT */
/*
 * Model steps (DESIGN.md "Fabric", issue 14): a step of "kind": "model" sends
 * a prompt to a role's chain through fabric/ and passes the answer on to its
 * dependents as a run step's stdout. Its "model" block:
 *
 *   {"role": "planner" | "executor" | "verifier" | "auditor" | "synthesizer"
 *             (default "executor"),
 *    "system": str (at most 16 KiB),
 *    "prompt": str (1 byte to 64 KiB; "{{needs.<id>.stdout}}" is replaced by
 *              that need's output, and <id> must be in the step's needs),
 *    "max_tokens": 1..200000 (required: it bounds the cost estimate),
 *    "verify": {"criteria": str (at most 16 KiB),
 *               "min_confidence": 0..1 (default 0.5)}}
 *
 * With verify, the verifier role checks the answer, skipping the provider
 * that gave it; its verdict and confidence are recorded, and a failed
 * verification is a failure the recovery ladder handles, whose level 3 is
 * another provider of the role's chain (orc_model_next_entry).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

#include "common/error.h"
#include "fabric/fabric.h"

#define ORC_MODEL_MAX_PROMPT (64 * 1024)
#define ORC_MODEL_MAX_SYSTEM (16 * 1024)
#define ORC_MODEL_MAX_TOKENS 200000
/* What a step's output may hold, as a run's kept stdout. */
#define ORC_MODEL_MAX_OUTPUT (1024 * 1024)

typedef struct orc_model_spec {
        fab_role role;
        char *system; /* NULL when none */
        char *prompt;
        uint32_t max_tokens;
        bool verify;
        char *criteria; /* NULL when none */
        double min_confidence;
} orc_model_spec;

/*
 * Parses a step's "model" block v into ret (orc_model_spec_done frees it),
 * checking each "{{needs.<id>.stdout}}" against needs. Errors go to err
 * with fields relative to the step ("model.max_tokens"). Returns 0, -EINVAL
 * or -ENOMEM.
 */
int orc_model_spec_parse(yajl_val v, char *const *needs, size_t n_needs, orc_model_spec *ret, au_error *err);
void orc_model_spec_done(orc_model_spec *s);

typedef enum orc_model_outcome {
        ORC_MODEL_OK,
        ORC_MODEL_FAILED,        /* every provider of the chain failed, or the stream broke */
        ORC_MODEL_BUDGET,        /* the workflow's or the key's budget */
        ORC_MODEL_VERIFY_FAILED, /* the verifier said fail, or was not sure enough */
        ORC_MODEL_UNVERIFIED,    /* no verifier could be asked (none other than the answering provider) */
} orc_model_outcome;

const char *orc_model_outcome_name(orc_model_outcome o);

typedef struct orc_model_result {
        orc_model_outcome outcome;
        char *output; /* the answer, passed on as stdout ("" when none) */
        char provider[64], model[128];
        size_t entry; /* the answering entry in the role's chain */
        unsigned attempts, fallbacks;
        fab_usage usage; /* the step's and its verifier's tokens */
        double cost_usd;
        /* verify */
        char verifier[64];
        char verdict[8]; /* "pass", "fail", or "" */
        double confidence;
        char reason[256];
        char error[512];
} orc_model_result;

/*
 * Runs a model step: renders the prompt with the needs' outputs (outputs[i]
 * is need_ids[i]'s stdout), calls spec->role's chain from start_entry
 * (0, or orc_model_next_entry's answer at recovery level 3), then the
 * verifier if asked. workflow and key are the budget scopes (may be NULL).
 * Fills ret (orc_model_result_done frees it); returns 0 whatever the
 * outcome, or -EINVAL / -ENOMEM.
 */
int orc_model_run(fab_fabric *f, const orc_model_spec *spec, char *const *need_ids, char *const *outputs,
                  size_t n_needs, const char *workflow, const char *key, size_t start_entry,
                  orc_model_result *ret);
void orc_model_result_done(orc_model_result *r);

/*
 * Recovery level 3: the first entry after `entry` in role's chain whose
 * provider differs from entry's, or -1 when there is none.
 */
ssize_t orc_model_next_entry(const fab_fabric *f, fab_role role, size_t entry);

/*
 * The result as the run's record and the audit trail keep it:
 * {"provider","model","attempts","fallbacks","tokens":{...},"cost_usd",
 *  "verify":{"provider","verdict","confidence","reason"}}; the caller frees.
 * NULL on ENOMEM.
 */
char *orc_model_result_json(const orc_model_result *r);
