/* SPDX-License-Identifier: MIT */
/*
 * A workflow document (DESIGN.md "Workflows") parsed and checked before
 * anything is stored: unknown fields, duplicate step ids, unknown `needs` and
 * `fallback`, cycles, run specs over the policy's ceilings. Every refusal
 * names the step and the field: err->field is the path
 * ("steps.build.run.limits.memory_bytes", or "steps[3].id" before the step
 * has a usable id) and err->msg says what is wrong, naming the step
 * ("step 'build': run.limits.memory_bytes: ... exceeds the standard ceiling ...").
 * err->field is "" only when the document as a whole is refused: not one JSON
 * document (au_json_parse's message: "invalid JSON: ...", "JSON nested deeper
 * than ...", "JSON document is N bytes, over the limit ...") or not an object.
 *
 * Document:
 *   {"name": str (1..128 printable characters, default "workflow"),
 *    "description": str (at most 4096 bytes),
 *    "budget_usd": number > 0 (optional: what the workflow's model and agent
 *                  steps may spend in all, fabric's workflow budget),
 *    "steps": [ step, ... ] (1..ORC_MAX_STEPS)}
 * Step:
 *   {"id": str (1..64 of A-Z a-z 0-9 . _ -),
 *    "kind": "run" (default) | "approval" | "model" | "agent",
 *    "needs": [step id, ...] (existing steps, not itself, each once),
 *    "description": str (at most 4096 bytes),
 *    "run": run spec (required for kind run, refused for the others; its
 *           id/workflow/step/attempt are set by the coordinator and refused here),
 *    "model": a model step's block (required for kind model, refused for the
 *             others; orchestrator/model.h, orc_model_spec_parse),
 *    "agent": an agent step's block (required for kind agent, refused for the
 *             others; orchestrator/agent.h, orc_agent_spec_parse: its tools'
 *             run templates are checked under the policy),
 *    "retry": {"max_attempts": 1..100 (default 1: no retry),
 *              "backoff_ms": 0..3600000 (default 500),
 *              "max_backoff_ms": backoff_ms..86400000 (default the larger of
 *                                10000 and backoff_ms)},
 *    "fallback": step id: a run step of this workflow other than itself, that
 *                no step needs, that has no fallback itself, that no other
 *                step names as its fallback, and that does not depend on this
 *                step, directly or through other steps (it would wait forever),
 *    "node_selector": {"label": "value", ...} (at most 32; names 1..64
 *                     bytes, values strings of at most 256 bytes)}
 * Approval steps have no run, retry, fallback or node_selector. Model and
 * agent steps have retry and fallback (a run step), but no run or
 * node_selector; they are run by the coordinator's fabric workers
 * (orchestrator/steps-model.c), and nothing here needs a fabric:
 * orc_workflow_check_fabric() is the submission's check that one is there.
 *
 * A cycle is named in the order of `needs`, each step needing the next,
 * starting at the cycle's first step in document order: field
 * "steps.a.needs", message "steps: cycle a -> b -> c -> a". A fallback f of
 * s that depends on s is refused at "steps.s.fallback": "step 's': fallback
 * 'f' depends on 's', so it could never run in its place: f -> c -> s"
 * ("t => g" on the way: t's fallback g).
 *
 * A step named as some step's `fallback` is a standby: it runs only when
 * that step fails for good, and the steps that need the failed one wait for
 * it instead. Pure code: no I/O, no globals.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/error.h"
#include "sandbox/sandbox.h"

#define ORC_MAX_STEPS 10000
#define ORC_MAX_STEP_ID 64
/* An agent step's id: room for ".a<attempt>.t<turn>-<k>" in its tool calls' step ids. */
#define ORC_AGENT_MAX_STEP_ID 44

typedef enum orc_step_kind {
        ORC_STEP_RUN,
        ORC_STEP_APPROVAL,
        ORC_STEP_MODEL,
        ORC_STEP_AGENT,
} orc_step_kind;

/* "run", "approval", "model", "agent". */
const char *orc_step_kind_name(orc_step_kind k);

typedef struct orc_label {
        char *key;
        char *value;
} orc_label;

typedef struct orc_step {
        char *id;
        orc_step_kind kind;
        char **needs; /* step ids, in document order */
        size_t n_needs;
        char *fallback;   /* step id or NULL */
        bool is_fallback; /* another step names this one as its fallback */
        uint32_t max_attempts;
        uint64_t backoff_ms, max_backoff_ms;
        char *run_json;   /* the "run" object as given (re-generated compactly), NULL for approvals; the
                             "model" or "agent" block for those kinds */
        int role;         /* model and agent steps: the fab_role they call (-1 for the others) */
        bool verify;      /* a model step with a verify block (the verifier role is called too) */
        char *program;    /* run.argv joined with single spaces: the history key of simulate */
        sbx_trust trust;  /* run.trust, or the policy's default; _SBX_TRUST_INVALID for approvals */
        uint64_t wall_ms; /* run.limits.wall_ms after the policy's defaults */
        orc_label *selector;
        size_t n_selector;
} orc_step;

typedef struct orc_workflow {
        char *name;
        orc_step *steps; /* in document order */
        size_t n_steps;
        char *json;        /* the whole document as accepted (compact) */
        double budget_usd; /* "budget_usd"; 0 when none */
        /* Private to workflow.c: a hash index of step ids into steps[] (so do not
         * reorder steps[]); NULL in a hand-built workflow, where lookups scan. */
        uint32_t *id_slots;
        size_t id_mask;
} orc_workflow;

/*
 * Parses buf[0..len) (at most max_bytes) and checks it against policy (NULL:
 * the built-in policy). On success *ret is a new workflow the caller frees.
 * Returns 0, -EINVAL (err names the step and field), -E2BIG (over max_bytes)
 * or -ENOMEM; *ret is untouched on failure. As with every au_error, err
 * keeps the first error recorded: pass a cleared one.
 */
int orc_workflow_parse(const char *buf, size_t len, size_t max_bytes, const sbx_policy *policy,
                       orc_workflow **ret, au_error *err);

orc_workflow *orc_workflow_free(orc_workflow *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(orc_workflow *, orc_workflow_free);
#define _cleanup_orc_workflow_ _cleanup_(orc_workflow_freep)

struct fab_fabric;

/*
 * Whether the coordinator's fabric (NULL: none) can run w's model and agent
 * steps: refused, naming the first step it cannot run ("steps[2]: model
 * steps need model providers: this coordinator has no fabric setting (step
 * 'x')"), when there is no fabric or the role a step calls (a verified model
 * step's verifier too) has an empty chain. Returns 0 or -EINVAL.
 */
int orc_workflow_check_fabric(const orc_workflow *w, const struct fab_fabric *fabric, au_error *err);

/* The step with this id, or NULL. O(1) on a parsed workflow. */
const orc_step *orc_workflow_step(const orc_workflow *w, const char *id);

/*
 * Step indices in an order where every step comes after its needs
 * (Kahn's algorithm; of the steps ready at once, the first in document order
 * comes first). ret has room for n_steps entries. Only `needs` orders steps:
 * a standby may come anywhere after its own needs. Returns 0, -ENOMEM, or
 * -EINVAL for a workflow orc_workflow_parse() would refuse (an unknown need,
 * a cycle); ret is untouched on failure.
 */
int orc_workflow_topo_order(const orc_workflow *w, size_t *ret);
