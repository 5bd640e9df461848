/* SPDX-License-Identifier: MIT */
/*
 * fabric/: the intelligence fabric (issue 14). Model providers (OpenAI's chat
 * completions and Anthropic's messages wire formats; any OpenAI-compatible
 * server such as Ollama, llama-server or vLLM is an "openai" provider) are
 * configured in /etc/autoos/fabric.json and called by role (planner,
 * executor, verifier, auditor, synthesizer), each role an ordered chain of
 * provider + model.
 *
 * Three scopes, as LiteLLM's router has them: a retry stays on one chain
 * entry (timeouts, 429, 5xx, Anthropic's 529, honouring Retry-After and
 * retry-after-ms); a fallback moves to the next entry; a cooldown benches one
 * provider for every role. There is one retry loop: curl retries nothing.
 * A stream is retried or falls back only before its first content byte;
 * a stream that ends without its terminal event, or that carries an error
 * event after HTTP 200, is a failure.
 *
 * Cost is priced per usage component (fab_cost_*), budgets per workflow and
 * per key are checked with an estimate before a call and charged the real
 * cost after it. A fab_fabric may be called from several threads at once:
 * its state (cooldowns, rate windows, budgets, metrics) is behind one lock
 * that no request holds while it waits.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

#include "common/error.h"
#include "common/macro.h"
#include "common/metrics.h"

#define FAB_CONFIG_PATH AUTOOS_SYSCONFDIR "/autoos/fabric.json"
/* fabric.json is refused above this size. */
#define FAB_CONFIG_MAX_BYTES (1024 * 1024)
/* A provider's reply (a whole body, or the sum of a stream's bytes) is cut off above this. */
#define FAB_REPLY_MAX_BYTES (8 * 1024 * 1024)

typedef enum fab_kind { FAB_OPENAI, FAB_ANTHROPIC } fab_kind;

typedef enum fab_role {
        FAB_ROLE_PLANNER,
        FAB_ROLE_EXECUTOR,
        FAB_ROLE_VERIFIER,
        FAB_ROLE_AUDITOR,
        FAB_ROLE_SYNTHESIZER,
        _FAB_ROLE_MAX,
} fab_role;

/* "planner"... or NULL; fab_role_from_name returns -EINVAL for an unknown name. */
const char *fab_role_name(fab_role r);
int fab_role_from_name(const char *name);

/* Prices in USD per million tokens. */
typedef struct fab_price {
        double input;       /* uncached input tokens */
        double output;      /* output tokens (reasoning included) */
        double cached;      /* cached input read (OpenAI cached_tokens, Anthropic cache_read_input_tokens) */
        double cache_write; /* Anthropic cache_creation_input_tokens; defaults to input */
} fab_price;

/* Token usage as the provider reported it, in the fabric's own terms (no double counting). */
typedef struct fab_usage {
        uint64_t input;       /* uncached input tokens */
        uint64_t cached;      /* cached input tokens read */
        uint64_t cache_write; /* input tokens written to the cache (Anthropic) */
        uint64_t output;
        bool reported; /* false when the provider sent no usage */
} fab_usage;

/*
 * OpenAI's usage: prompt_tokens INCLUDES prompt_tokens_details.cached_tokens,
 * so the uncached part is their difference (a cached count above the prompt
 * count is clamped). Anthropic's: cache_creation_input_tokens and
 * cache_read_input_tokens are NOT inside input_tokens, so each is its own
 * component. Both fill ret from the numbers as the wire gives them.
 */
void fab_usage_openai(uint64_t prompt_tokens, uint64_t cached_tokens, uint64_t completion_tokens,
                      fab_usage *ret);
void fab_usage_anthropic(uint64_t input_tokens, uint64_t cache_creation, uint64_t cache_read,
                         uint64_t output_tokens, fab_usage *ret);

/* The cost in USD of usage at price: each component at its own price. */
double fab_cost(const fab_price *price, const fab_usage *usage);

/* ---- errors, retries and cooldown: pure decisions ---- */

typedef enum fab_error_kind {
        FAB_ERR_NONE,
        FAB_ERR_TIMEOUT,      /* connect, first byte or whole-call timeout: retried */
        FAB_ERR_CONNECT,      /* refused, reset, DNS: retried */
        FAB_ERR_RATE_LIMIT,   /* 429: retried after Retry-After */
        FAB_ERR_OVERLOADED,   /* 529, overloaded_error, 503 overloaded: retried */
        FAB_ERR_SERVER,       /* other 5xx: retried */
        FAB_ERR_QUOTA,        /* insufficient_quota, spend limit, 402: never retried, falls back */
        FAB_ERR_AUTH,         /* 401, 403: never retried, falls back */
        FAB_ERR_NOT_FOUND,    /* 404 (unknown model): never retried, falls back */
        FAB_ERR_REQUEST,      /* 400, 413, 422: the request itself; no retry, no fallback */
        FAB_ERR_STREAM_CUT,   /* a stream ended without its terminal event */
        FAB_ERR_STREAM_ERROR, /* an error event after HTTP 200 */
        FAB_ERR_PROTOCOL,     /* a reply that is not the wire format */
        _FAB_ERR_MAX,
} fab_error_kind;

const char *fab_error_kind_name(fab_error_kind k);

/* True for the kinds a retry on the same chain entry may cure. */
bool fab_error_retryable(fab_error_kind k);

/* True when the kind moves on to the next chain entry once retries are spent (or at once). */
bool fab_error_falls_back(fab_error_kind k);

/*
 * Classifies a provider's HTTP error: status and the body's error object, by
 * error type first (Anthropic's SDKs do so) and HTTP status second. body may
 * be NULL or not JSON. OpenAI's insufficient_quota (as type or code),
 * Anthropic's enforced_spend_limit_reached (error.details.error_code) and
 * HTTP 402 are FAB_ERR_QUOTA whatever the status. If ret_msg is not NULL it
 * gets the error's message (truncated, never the request).
 */
fab_error_kind fab_error_classify(long status, const char *body, size_t len, char *ret_msg, size_t msg_size);

/*
 * How long a reply asks to be waited for, in ms, or -1 when it does not say:
 * retry-after-ms (milliseconds, may be fractional) first, then Retry-After as
 * delta-seconds or as an HTTP date (IMF-fixdate, RFC 850 or asctime; one in
 * the past is 0). now_wall_ms is the wall clock, for the date form.
 */
int64_t fab_retry_after_ms(const char *retry_after, const char *retry_after_ms, uint64_t now_wall_ms);

/*
 * The wait before retry number attempt (1 for the first retry): exponential
 * backoff base_ms * 2^(attempt-1), capped at max_ms, with up to 25% jitter
 * subtracted (jitter in [0,1)); a server's Retry-After (ms >= 0) wins when
 * longer.
 */
uint64_t fab_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, double jitter,
                        int64_t retry_after_ms);

/* ---- configuration ---- */

typedef struct fab_fabric fab_fabric;

/*
 * Resolves an API key given as a secret name. Returns 0 with a malloc'd key
 * the fabric keeps (and cleanses on free), or a negative errno.
 */
typedef int (*fab_secret_fn)(void *userdata, const char *name, char **ret_key);

typedef struct fab_options {
        fab_secret_fn secret; /* may be NULL: a key given by name then fails to load */
        void *secret_userdata;
        au_metrics *metrics; /* may be NULL; the fabric registers its metrics in it, and updates them under
                                its own lock (render them with fab_metrics_render) */
        /* Test hook: scales every wait (backoff, Retry-After) and is 1.0 when 0. */
        double time_scale;
} fab_options;

/*
 * Parses fabric.json (see README "Fabric"), strictly: unknown fields, bad
 * values, unknown providers or models in a role's chain and duplicate names
 * are refused, err naming the field. Keys given with api_key_file are read
 * now (the file must not be world-readable); keys named with api_key go
 * through opts->secret. A key is never put in an error message.
 * Returns 0, -EINVAL, -ENOENT (a key file or secret missing), -ENOMEM.
 */
int fab_new(const char *json, size_t len, const fab_options *opts, fab_fabric **ret, au_error *err);

/* As fab_new, from a file (FAB_CONFIG_PATH when path is NULL). */
int fab_new_from_file(const char *path, const fab_options *opts, fab_fabric **ret, au_error *err);

/* Frees everything, cleansing the keys. NULL-safe; returns NULL. */
fab_fabric *fab_free(fab_fabric *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(fab_fabric *, fab_free);
#define _cleanup_fab_ _cleanup_(fab_freep)

/*
 * opts->metrics (m) in Prometheus' text format, rendered under the fabric's
 * lock, so while calls update them. Caller frees; NULL on ENOMEM.
 */
char *fab_metrics_render(fab_fabric *f, const au_metrics *m, size_t *ret_len);

/* The number of entries in role's chain, and entry i's provider and model (NULL past the end). */
size_t fab_chain_len(const fab_fabric *f, fab_role role);
const char *fab_chain_provider(const fab_fabric *f, fab_role role, size_t i);
const char *fab_chain_model(const fab_fabric *f, fab_role role, size_t i);

/* The price of provider/model, or NULL when unknown. */
const fab_price *fab_price_of(const fab_fabric *f, const char *provider, const char *model);

/*
 * A provider's cooldown: the monotonic ms it ends at (0 when not cooling).
 * fab_cooldown_clear ends it (an operator's "it is back").
 */
uint64_t fab_cooldown_until(const fab_fabric *f, const char *provider);
int fab_cooldown_clear(fab_fabric *f, const char *provider);

/* ---- budgets ---- */

typedef enum fab_scope { FAB_SCOPE_WORKFLOW, FAB_SCOPE_KEY } fab_scope;

/*
 * Sets (replaces) the budget of a workflow or key in USD, keeping what was
 * already spent. limit < 0 removes it. Returns 0, -EINVAL, -ENOMEM.
 */
int fab_budget_set(fab_fabric *f, fab_scope scope, const char *id, double limit_usd);

/* What a workflow or key has spent so far (0 when unknown). */
double fab_budget_spent(const fab_fabric *f, fab_scope scope, const char *id);

/* Whether a workflow's or key's budget has a limit and what it spent reached it (false for NULL id). */
bool fab_budget_exhausted(const fab_fabric *f, fab_scope scope, const char *id);

/* ---- calls ---- */

typedef struct fab_tool_call {
        char *id;
        char *name;
        char *arguments; /* the JSON text the model wrote */
} fab_tool_call;

typedef enum fab_msg_role { FAB_MSG_USER, FAB_MSG_ASSISTANT, FAB_MSG_TOOL } fab_msg_role;

/*
 * One conversation message. A user message has text; an assistant message
 * text and/or tool calls; a tool message answers tool_call_id with text
 * (is_error when the call was refused or failed). The system prompt is not a
 * message (fab_request.system).
 */
typedef struct fab_msg {
        fab_msg_role role;
        const char *text;
        const fab_tool_call *calls;
        size_t n_calls;
        const char *tool_call_id;
        bool is_error;
} fab_msg;

/* A tool the model may call: name, description and a JSON schema (fab_schema_check's subset). */
typedef struct fab_tool {
        const char *name;
        const char *description;
        yajl_val schema;
} fab_tool;

/* Called with each piece of streamed text, in order; a nonzero return aborts the call. */
typedef int (*fab_delta_fn)(void *userdata, const char *text, size_t len);

typedef struct fab_request {
        fab_role role;
        const char *system; /* may be NULL */
        const fab_msg *msgs;
        size_t n_msgs;
        const fab_tool *tools;
        size_t n_tools;
        uint32_t max_tokens; /* required: it bounds the cost estimate */
        bool stream;
        fab_delta_fn on_delta; /* streaming only; may be NULL */
        void *delta_userdata;
        const char *workflow;         /* budget scope; may be NULL */
        const char *key;              /* budget scope; may be NULL */
        const char *exclude_provider; /* skip this provider (a verifier must differ); may be NULL */
        size_t start_entry;           /* begin at this chain entry (recovery level 3); 0 normally */
} fab_request;

typedef enum fab_outcome {
        FAB_OK,
        FAB_FAILED,       /* every chain entry failed; error says the last failure */
        FAB_BUDGET,       /* a workflow's or key's budget would be or was exceeded */
        FAB_REJECTED,     /* the provider refused the request itself (400/413/422) */
        FAB_UNAVAILABLE,  /* every chain entry is cooling down, excluded or over its rate limit */
        FAB_STREAM_BROKE, /* a stream failed after its first byte: no retry, no fallback */
        FAB_ABORTED,      /* on_delta asked to stop, or the fabric is stopping (fab_stop) */
} fab_outcome;

const char *fab_outcome_name(fab_outcome o);

typedef struct fab_result {
        fab_outcome outcome;
        char *text; /* the answer's text ("" when none) */
        fab_tool_call *calls;
        size_t n_calls;
        char stop_reason[32]; /* the wire's own: "stop", "end_turn", "tool_calls", "tool_use", ... */
        char provider[64];    /* the chain entry that answered (or failed last) */
        char model[128];
        size_t entry; /* its index in the role's chain */
        fab_usage usage;
        double cost_usd;     /* the real cost, charged to the budgets */
        double estimate_usd; /* the estimate checked before the call that answered */
        unsigned attempts;   /* HTTP requests made */
        unsigned fallbacks;  /* chain entries moved past */
        fab_error_kind last_error;
        char error[512]; /* what failed, for people; never holds a key */
} fab_result;

/*
 * Calls role's chain with req: budgets checked first with the estimate,
 * then each entry in order (cooling, excluded and rate-limited providers
 * skipped), retried as the error kind allows, the provider cooled down when
 * its retries are spent, the next entry tried. Fills ret (release it with
 * fab_result_done) and returns 0 whatever the outcome (ret->outcome says
 * it), or a negative errno for a bad request (-EINVAL: no max_tokens,
 * unknown role, an empty chain) or -ENOMEM.
 */
int fab_call(fab_fabric *f, const fab_request *req, fab_result *ret);

/*
 * Ends the calls under way, from any thread, and every call after: a request
 * in flight is abandoned within about 50 ms, a backoff cut short, and
 * fab_call returns FAB_ABORTED ("the fabric is stopping"). For an owner that
 * is shutting down (the coordinator, whose workers then record nothing).
 */
void fab_stop(fab_fabric *f);

/* Frees a result's strings and calls; the struct may be reused. */
void fab_result_done(fab_result *r);

/* ---- tools ---- */

/*
 * Checks that schema is within the supported subset: type (object, string,
 * integer, number, boolean, array), properties, required, additionalProperties
 * (false only), enum, maxLength, minimum/maximum (integers), items,
 * description. Anything else is refused, naming it, so a schema never
 * silently enforces less than it says. Returns 0 or -EINVAL.
 */
int fab_schema_check(yajl_val schema, const char *path, au_error *err);

/*
 * Validates value against schema (which passed fab_schema_check). Returns 0,
 * or -EINVAL with why ("path: reason") filled.
 */
int fab_schema_validate(yajl_val schema, yajl_val value, char *why, size_t why_size);

/*
 * Checks one tool call the model made against the tools offered: a tool not
 * on the list is -ENOENT, arguments that are not a JSON object or break the
 * tool's schema are -EINVAL; why says it in words fit to tell the model.
 * On success *ret_args (may be NULL) gets the parsed arguments (caller frees
 * with yajl_tree_free).
 */
int fab_tool_check_call(const fab_tool *tools, size_t n_tools, const fab_tool_call *call, yajl_val *ret_args,
                        char *why, size_t why_size);
