/* SPDX-License-Identifier: MIT */
/*
 * Agent steps (DESIGN.md "Fabric", issue 14): a step of "kind": "agent" gives
 * a role's chain a goal and a set of tools, and loops: the model answers or
 * calls tools; each call's arguments are checked against the tool's schema
 * before anything runs, a call to a tool not on the list or with bad
 * arguments is refused and told to the model, and a valid call becomes a run
 * (through the caller's runner: the coordinator's normal dispatch, a local
 * sandbox in tests) whose bounded output goes back to the model. The loop
 * stops at the model's final answer or at a limit, with a clear outcome.
 * Its "agent" block:
 *
 *   {"goal": str (1 byte to 64 KiB),
 *    "role": "planner" | "executor" | ... (default "executor"),
 *    "system": str (at most 16 KiB),
 *    "max_tokens": 1..200000 per model call (default 1024),
 *    "tools": [{"name": 1..64 of A-Z a-z 0-9 _ -, unique,
 *               "description": str (at most 4 KiB),
 *               "parameters": JSON schema (fab_schema_check's subset, an object),
 *               "run": a run spec (DESIGN.md "Run spec"), in whose strings
 *                      "{{args.<name>}}" is replaced by that argument's value
 *                      (a string as is, a number or boolean as its JSON text);
 *                      <name> must be a property of "parameters"}, ...] (1..32),
 *    "limits": {"turns": 1..100 model calls (default 10),
 *               "tokens": 1..10000000 in all (default 200000),
 *               "cost_usd": > 0 (default none: the workflow's and key's budgets still hold),
 *               "wall_ms": 1..86400000 (default 600000),
 *               "output_bytes": 256..262144 of each tool's output given back (default 16384)}}
 *
 * The substituted run goes in an argv entry as ONE argument (no shell), but a
 * template that hands it to "sh -c" gives the model a shell: the template's
 * author decides. Each run still holds under the sandbox and the policy.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

#include "common/error.h"
#include "fabric/fabric.h"
#include "sandbox/sandbox.h"

#define ORC_AGENT_MAX_GOAL (64 * 1024)
#define ORC_AGENT_MAX_TOOLS 32
#define ORC_AGENT_MAX_TURNS 100
/* The kept transcript: each message clipped to this, and the whole to ORC_AGENT_MAX_TRANSCRIPT. */
#define ORC_AGENT_TRANSCRIPT_MSG 2048
#define ORC_AGENT_MAX_TRANSCRIPT (256 * 1024)

typedef struct orc_agent_tool {
        char *name;
        char *description;
        yajl_val parameters; /* owned */
        yajl_val run;        /* owned: the run template */
} orc_agent_tool;

typedef struct orc_agent_spec {
        char *goal;
        char *system; /* NULL when none */
        fab_role role;
        uint32_t max_tokens;
        orc_agent_tool *tools;
        size_t n_tools;
        uint32_t turns;
        uint64_t tokens;
        double cost_usd; /* 0: none */
        uint64_t wall_ms;
        uint32_t output_bytes;
} orc_agent_spec;

/*
 * Parses a step's "agent" block v into ret (orc_agent_spec_done frees it),
 * strictly: unknown fields, bad values, duplicate tool names, schemas outside
 * fab_schema_check's subset, placeholders naming no parameter, and run
 * templates that are not run specs under policy (NULL: the built-in policy;
 * checked with every placeholder standing in) are refused with err naming the
 * field relative to the step ("agent.tools[1].run.argv"). Returns 0, -EINVAL
 * or -ENOMEM.
 */
int orc_agent_spec_parse(yajl_val v, const sbx_policy *policy, orc_agent_spec *ret, au_error *err);
void orc_agent_spec_done(orc_agent_spec *s);

/*
 * A tool's run spec with args' values in its placeholders (args: an object
 * that passed the tool's schema). Returns 0 with *ret the JSON text (caller
 * frees), -EINVAL (a placeholder's argument is missing or not a scalar) or
 * -ENOMEM.
 */
int orc_agent_render_run(const orc_agent_tool *tool, yajl_val args, char **ret);

/* One tool call, as the runner and the audit callback see it. */
typedef struct orc_agent_call {
        unsigned turn;         /* 1-based model call that asked for it */
        const char *call_id;   /* the model's id for the call */
        const char *tool;      /* the name the model gave */
        const char *arguments; /* the JSON text the model wrote */
        const char *run_json;  /* the rendered run spec (NULL when refused) */
        uint64_t deadline_ms;  /* monotonic ms the agent's wall time ends at */
} orc_agent_call;

/*
 * Runs one valid tool call: call->run_json is a run spec to place and run as
 * any step's run is. Returns 0 with *ret_output (malloc'd, any length: the
 * agent bounds it) what goes back to the model (stdout, and stderr or the
 * outcome when it failed) and *ret_failed true when the run did not succeed;
 * or a negative errno when it could not be run at all (told to the model as
 * such).
 */
typedef int (*orc_agent_runner_fn)(void *userdata, const orc_agent_call *call, char **ret_output,
                                   bool *ret_failed);

typedef enum orc_agent_call_status {
        ORC_AGENT_CALL_RAN,           /* ran and succeeded */
        ORC_AGENT_CALL_FAILED,        /* ran and failed, or could not be run */
        ORC_AGENT_CALL_UNKNOWN_TOOL,  /* refused: not on the list */
        ORC_AGENT_CALL_BAD_ARGUMENTS, /* refused: arguments break the schema */
        ORC_AGENT_CALL_SKIPPED,       /* not run: a limit ended the agent first */
} orc_agent_call_status;

const char *orc_agent_call_status_name(orc_agent_call_status s);

/* Every tool call, for the audit trail: status, why (refusals, failures) and the output's size. */
typedef void (*orc_agent_audit_fn)(void *userdata, const orc_agent_call *call, orc_agent_call_status status,
                                   const char *why, size_t output_bytes);

typedef enum orc_agent_outcome {
        ORC_AGENT_OK,               /* the model gave its final answer */
        ORC_AGENT_TURNS_EXHAUSTED,  /* still calling tools after limits.turns model calls */
        ORC_AGENT_TOKENS_EXHAUSTED, /* limits.tokens used up */
        ORC_AGENT_BUDGET_EXCEEDED,  /* limits.cost_usd, or the workflow's or key's budget */
        ORC_AGENT_WALL_TIME,        /* limits.wall_ms passed */
        ORC_AGENT_FAILED,           /* the role's chain failed (every provider) */
} orc_agent_outcome;

/* "ok", "turns_exhausted", "tokens_exhausted", "budget_exceeded", "wall_time_exceeded", "failed". */
const char *orc_agent_outcome_name(orc_agent_outcome o);

typedef struct orc_agent_hooks {
        orc_agent_runner_fn run; /* required */
        void *run_userdata;
        orc_agent_audit_fn audit; /* may be NULL */
        void *audit_userdata;
        const char *workflow, *key; /* budget scopes; may be NULL */
} orc_agent_hooks;

typedef struct orc_agent_result {
        orc_agent_outcome outcome;
        char *answer; /* the final answer, passed on as stdout ("" when none) */
        unsigned turns;
        unsigned tool_calls, refused; /* calls made (any status but skipped), of them refused */
        fab_usage usage;
        double cost_usd;
        char provider[64], model[128]; /* the last answering chain entry */
        char *transcript_json;         /* bounded: see orc_agent_result_json */
        char error[512];
} orc_agent_result;

/*
 * Runs an agent step: the goal (with the system prompt) to spec->role's
 * chain with the tools offered, then turn after turn as above. Fills ret
 * (orc_agent_result_done frees it) and returns 0 whatever the outcome, or
 * -EINVAL (no runner) / -ENOMEM.
 */
int orc_agent_run(fab_fabric *f, const orc_agent_spec *spec, const orc_agent_hooks *hooks,
                  orc_agent_result *ret);
void orc_agent_result_done(orc_agent_result *r);

/*
 * The run's record: {"outcome","answer_bytes","turns","tool_calls","refused",
 * "provider","model","tokens":{...},"cost_usd","error","transcript":[{"role",
 * "text","tool_calls":[{"id","name","arguments"}],"tool_call_id","is_error"}],
 * "transcript_elided": N}, each text clipped to ORC_AGENT_TRANSCRIPT_MSG bytes
 * and the transcript to ORC_AGENT_MAX_TRANSCRIPT. Caller frees; NULL on ENOMEM.
 */
char *orc_agent_result_json(const orc_agent_result *r);
