/* SPDX-License-Identifier: MIT */
/* What fabric/'s files share: the configuration and the fabric's state. */
#pragma once

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "common/buf.h"
#include "fabric/fabric.h"

typedef struct fab_model {
        char *name;
        fab_price price;
} fab_model;

typedef struct fab_provider {
        char *name;
        fab_kind kind;
        char *base_url; /* without the trailing /v1/...: the wire path is appended */
        char *key;      /* NULL for a keyless local server; cleansed on free */
        char *anthropic_version;
        uint64_t timeout_ms;            /* one attempt, whole */
        uint64_t first_byte_timeout_ms; /* until the first byte of the body */
        uint64_t idle_timeout_ms;       /* a stream silent this long is cut */
        unsigned max_retries;
        uint64_t cooldown_ms;
        uint32_t rpm, tpm; /* client-side rate limits; 0 is none */
        fab_model *models;
        size_t n_models;
        /* state */
        uint64_t cooldown_until; /* monotonic ms; 0 when not cooling */
        uint64_t window_start;   /* the current rate-limit minute */
        uint32_t window_requests;
        uint64_t window_tokens;
} fab_provider;

typedef struct fab_entry {
        size_t provider, model;
} fab_entry;

typedef struct fab_budget {
        fab_scope scope;
        char *id;
        double limit; /* < 0: none, spending is still counted */
        double spent;
} fab_budget;

struct fab_fabric {
        fab_provider *providers;
        size_t n_providers;
        fab_entry *chains[_FAB_ROLE_MAX];
        size_t n_chain[_FAB_ROLE_MAX];
        uint64_t backoff_base_ms, backoff_max_ms;
        uint64_t max_retry_after_ms; /* a longer Retry-After cools down and falls back at once */
        double time_scale;
        fab_budget *budgets;
        size_t n_budgets;
        /* Guards the providers' state (cooldowns, rate windows), the budgets and the metrics: the
         * coordinator's fabric workers call at once. Never held across a request. */
        pthread_mutex_t lock;
        atomic_bool stopping; /* fab_stop: calls end at once */
        struct {
                au_metric *requests, *errors, *latency, *latency_sum, *latency_count, *tokens, *cost,
                        *cooldown;
        } m;
};

fab_provider *fab_provider_find(const fab_fabric *f, const char *name);

/* The budget record of (scope, id), created with no limit when create is set; NULL otherwise or on ENOMEM.
 */
fab_budget *fab_budget_find(fab_fabric *f, fab_scope scope, const char *id, bool create);

/* Registers the fabric's metrics in m. */
void fab_metrics_register(fab_fabric *f, au_metrics *m);

/* The metrics of one attempt and of a provider's cooldown state. */
void fab_metrics_attempt(fab_fabric *f, const fab_provider *p, const char *model, fab_error_kind kind,
                         uint64_t latency_ms);
void fab_metrics_usage(fab_fabric *f, const fab_provider *p, const char *model, const fab_usage *u,
                       double cost);
void fab_metrics_cooldown(fab_fabric *f, const fab_provider *p, bool cooling);

/* ---- wire formats (fabric/wire-openai.c, fabric/wire-anthropic.c) ---- */

/* The request body for p's wire format; the caller frees. NULL on ENOMEM or a bad tool schema. */
char *fab_wire_openai_request(const char *model, const fab_request *req);
char *fab_wire_anthropic_request(const char *model, const fab_request *req);

/*
 * A reply being read: the decoded answer so far, and for streams the SSE
 * parser's state. first_byte is set once content has reached the caller.
 */
typedef struct fab_reply {
        fab_kind kind;
        const fab_request *req;
        /* SSE: the wire decoder each event goes to (fab_wire_*_event) */
        void (*on_event)(struct fab_reply *r, const char *event, const char *data, size_t len);
        au_buf body;    /* a non-stream body, or an error body */
        au_buf line;    /* SSE: the current line */
        au_buf data;    /* SSE: the current event's data */
        char event[64]; /* SSE: the current event's name */
        bool sse_cr;    /* SSE: the last line ended with CR (its LF, if any, is skipped) */
        au_buf text;    /* the answer's text */
        fab_tool_call *calls;
        size_t n_calls;
        au_buf *call_args;  /* per call, streamed argument fragments */
        int block_call[64]; /* Anthropic: content block index -> call index + 1 (0: not a call) */
        char stop_reason[32];
        fab_usage usage;
        bool streaming;       /* the reply is an SSE stream */
        bool first_byte;      /* content reached the caller */
        bool terminal;        /* the stream's terminal event arrived */
        bool aborted;         /* on_delta asked to stop */
        fab_error_kind error; /* an error event, or a malformed reply */
        char error_msg[256];
        /* usage parts as the wire counts them, until the end */
        uint64_t w_in, w_cached, w_cache_write, w_out;
        bool w_seen;
} fab_reply;

void fab_reply_done(fab_reply *r);

/* Feeds a stream's bytes to the SSE parser (fabric/sse.c), which dispatches events to the wire decoders. */
int fab_sse_feed(fab_reply *r, const char *buf, size_t len);
/* At the end of the stream: dispatches a last unterminated event. */
void fab_sse_end(fab_reply *r);

/* One SSE event's data for the wire format (event is "" when the stream named none). */
void fab_wire_openai_event(fab_reply *r, const char *event, const char *data, size_t len);
void fab_wire_anthropic_event(fab_reply *r, const char *event, const char *data, size_t len);

/* A whole non-stream body. */
void fab_wire_openai_body(fab_reply *r, const char *body, size_t len);
void fab_wire_anthropic_body(fab_reply *r, const char *body, size_t len);

/* Adds streamed text: kept and handed to on_delta. */
void fab_reply_text(fab_reply *r, const char *s, size_t len);

/* The call slot for index i (created empty); NULL on ENOMEM. */
fab_tool_call *fab_reply_call(fab_reply *r, size_t i);

/* Finishes the reply's usage from the wire's counts. */
void fab_reply_usage(fab_reply *r);

/* A usage count from the wire: a positive integer, else 0 (absent, null, negative or not a number). */
static inline uint64_t fab_json_count(yajl_val v) {
        return YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) > 0 ? (uint64_t) YAJL_GET_INTEGER(v) : 0;
}
