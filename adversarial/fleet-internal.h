/* SPDX-License-Identifier: MIT */
/*
 * Inside the daemon, fleet and coordinator groups of `autoosctl adversarial`
 * (fleet.c runs them): the state of one run, the helpers every group uses
 * (fleet-common.c: Redis, the results stream, HTTP, liveness) and each
 * group's catalogue (fleet-daemon.c, fleet-identity.c, fleet-api.c).
 */
#pragma once

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <yajl/yajl_parse.h>

#include "adversarial/adversarial.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/macro.h"
#include "memory/redis.h"
#include "memory/seal.h"
#include "memory/streams.h"
#include "sandbox/sandbox.h"

#define DEFAULT_TIMEOUT_MS 20000u
#define REDIS_TIMEOUT_MS 10000
#define HEARTBEAT_WAIT_MS 3500    /* the heartbeat is refreshed every second, expires after 3 */
#define HTTP_MAX_REPLY (8u << 20) /* bytes of a reply kept; more is counted as truncated */
#define HTTP_CONNECT_MS 5000L
#define JSON_CHECK_DEPTH 128
#define FLOOD_JOBS 500
#define FLOOD_OUTPUT_BYTES 262144u
#define CONCURRENT_SUBMISSIONS 50
#define RATE_FLOOD_MAX 5000
#define RATE_FLOOD_MS 10000u
#define ANNOUNCED_BODY_BYTES ((uint64_t) 64 << 20)
#define CHUNKED_BODY_BYTES ((uint64_t) 4 << 20)
#define OVERSIZED_ENTRY_BYTES ((size_t) 20 << 20)
#define TOO_MANY_STEPS 10001
#define DEEP_NESTING 100000

typedef struct fleet {
        const adv_fleet_target *t;
        unsigned timeout_ms;
        char prefix[48];   /* "adv-<pid>-<ms>" */
        uint64_t deadline; /* of the attack running now (CLOCK_MONOTONIC ms) */

        /* daemon */
        redisContext *rc;
        char redis_err[160];
        char jobs_key[300];
        char node_key[300];
        char started_at[64]; /* the node's, when the group began */
        char cursor[64];     /* the last results-stream entry seen */
        char **entries;      /* jobs-stream entries written by the attack running now */
        size_t n_entries;

        /* coordinator */
        api_conn *api;
        char base[512]; /* the API URL without a trailing slash */
        char host[256];
        char port[8];
        bool raw_ok; /* plain http: raw requests possible */

        bool down; /* the target of the group running now is gone */
        char down_why[200];
} fleet;

typedef struct attack {
        const char *group;
        const char *name;
        const char *expectation;
        void (*run)(fleet *f, adv_row *row);
        unsigned time_factor; /* times the attack's time it is given (0: 1) */
} attack;

typedef struct jcheck {
        int depth;
        bool too_deep;
        const char *target[2]; /* map keys, or NULL */
        int at;                /* the target whose value comes next, or -1 */
        char *value[2];        /* the first string under each target, NUL-terminated */
        size_t value_len[2];
} jcheck;

/* A job whose results are awaited: matched by its spec's id or its entry id. */
typedef struct want {
        char id[256];
        char entry[64];
        char *json; /* the first result */
        size_t len;
        unsigned count; /* results seen */
        bool differ;    /* a later one differed from the first */
} want;

typedef struct wants {
        want *v;
        size_t n;
} wants;

typedef struct http_req {
        const char *method;
        const char *path; /* appended to the base URL as it is */
        const char *key;  /* bearer key, or NULL for none */
        const char *auth; /* a whole Authorization header value instead of key */
        const char *body; /* POST body, or NULL */
        size_t len;
        uint64_t gen_size;   /* > 0: a generated body of this many bytes instead */
        bool chunked;        /* the generated body without Content-Length */
        bool no_retry;       /* a 429 is the answer (otherwise waited out and retried) */
        unsigned timeout_ms; /* 0: the attack's remaining time, at most 15 s */
} http_req;

/* A generated workflow document of exactly total bytes (its description is over 4096 bytes). */
typedef struct gen {
        char head[160];
        size_t head_len;
        uint64_t total, off;
} gen;

/* error.code, error.field, error.message of an error reply ("" when absent). */
typedef struct api_error {
        char code[64];
        char field[160];
        char message[512];
} api_error;

uint64_t fleet_scaled(const fleet *f, uint64_t ms);
uint64_t fleet_remaining_ms(const fleet *f);
_printf_(3, 4) void fleet_add(char *buf, size_t size, const char *fmt, ...);
_printf_(3, 4) void fleet_set_verdict(adv_row *row, adv_verdict v, const char *fmt, ...);
void fleet_printable(char *s);
const char *fleet_excerpt(char buf[static 96], const char *s, size_t len);
bool fleet_contains(const char *haystack, const char *needle);
void fleet_jcheck_done(jcheck *j);
bool fleet_json_strict(const char *s, size_t len, jcheck *j, char *why, size_t size);
void fleet_redis_close(fleet *f);
int fleet_redis_connect(fleet *f);
redisReply *fleet_redis_cmd(fleet *f, int argc, const char **argv, const size_t *lens);
redisReply *fleet_redis_cmds(fleet *f, const char *a0, ...);
bool fleet_is_str(const redisReply *r);
int fleet_xadd_argv(fleet *f, int argc, const char **argv, size_t *lens, char entry[static 64]);
int fleet_xadd(fleet *f, const char *field, const char *value, size_t len, char entry[static 64]);
int fleet_mark_results(fleet *f);
bool fleet_entry_acked(fleet *f, const char *entry, uint64_t wait_ms);
void fleet_drop_entries(fleet *f);
want *fleet_want_add(wants *w, const char *id, const char *entry);
void fleet_wants_done(wants *w);
int fleet_collect(fleet *f, wants *w, uint64_t linger_ms);
int fleet_node_started_at(fleet *f, char *out, size_t size);
bool fleet_node_alive(fleet *f, char *why, size_t size);
api_request fleet_request_of(const fleet *f, const http_req *q, gen *g, unsigned timeout_ms);
void fleet_http(fleet *f, const http_req *q, api_reply *ret);
bool fleet_api_error_of(const api_reply *r, api_error *e);
bool fleet_check_error(const char *label, const api_reply *r, long status, const char *code,
                       const char *const *names, char *obs, size_t obs_size, char *bad, size_t bad_size);
bool fleet_expect_error(fleet *f, const char *label, const http_req *q, long status, const char *code,
                        const char *const *names, char *obs, size_t obs_size, char *bad, size_t bad_size);
void fleet_verdict_from(adv_row *row, const char *obs, const char *bad);
void fleet_check_nothing_stored(fleet *f, const char *name, char *obs, size_t obs_size, char *bad,
                                size_t bad_size);
void fleet_expect_refused(fleet *f, adv_row *row, const char *name, const char *body, size_t len,
                          const char *code, const char *const *names);
long fleet_raw_http(fleet *f, const char *req, size_t len, char *why, size_t size);
bool fleet_coord_alive(fleet *f, char *why, size_t size);

/* Byte sequences that are not UTF-8 (fleet-common.c): what the daemon and the API are sent. */
typedef struct fleet_bytes {
        const char *label, *bytes;
} fleet_bytes;
#define FLEET_BAD_UTF8_N 4
extern const fleet_bytes fleet_bad_utf8[FLEET_BAD_UTF8_N];

/* Each group's attacks, in the order they run. */
extern const attack fleet_daemon_attacks[];
extern const size_t fleet_daemon_attacks_n;
extern const attack fleet_identity_attacks[];
extern const size_t fleet_identity_attacks_n;
extern const attack fleet_api_attacks[];
extern const size_t fleet_api_attacks_n;
