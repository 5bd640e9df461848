/* SPDX-License-Identifier: MIT */
/*
 * The "daemon", "fleet" and "coordinator" groups of `autoosctl adversarial`
 * (issues 5 and 10): hostile jobs written straight into a running autoosd's
 * Redis jobs stream (hiredis, synchronous), forged, replayed and planted
 * results and heartbeats against a fleet with node identity, and hostile
 * requests to a running coordinator (libcurl, and a raw socket for what
 * libcurl will not send).
 *
 * Each attack checks one concrete expectation: the outcome of a result and
 * the field its error names, an HTTP status and error code, what was stored.
 * After each one the target must still be alive: the node's heartbeat key
 * refreshed again, by the same life of the daemon (same started_at), the
 * coordinator's /healthz answering 200. Anything else is "not contained".
 * Every wait is bounded by the attack's time (--attack-timeout, default
 * 20 s; the fixed waits below grow with it, for a slow or busy host), every
 * reply is bounded in size and read defensively.
 *
 * Ids are unique per invocation ("adv-<pid>-<ms>-..."): runs against the same
 * Redis and coordinator never see each other's results or workflows. The
 * jobs-stream entries written here are deleted once the node has answered
 * them (the 20 MiB one would otherwise stay in Redis's memory).
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <yajl/yajl_parse.h>

#include "adversarial/adversarial.h"
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
        CURL *curl;
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
} attack;

/* ---- small helpers -------------------------------------------------------------- */

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint64_t ms) {
        struct timespec ts = {.tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* A fixed wait of ms at the default attack time, grown with --attack-timeout (never shrunk). */
static uint64_t scaled(const fleet *f, uint64_t ms) {
        return f->timeout_ms > DEFAULT_TIMEOUT_MS ? ms * f->timeout_ms / DEFAULT_TIMEOUT_MS : ms;
}

static uint64_t remaining_ms(const fleet *f) {
        uint64_t now = now_ms();
        return f->deadline > now ? f->deadline - now : 0;
}

/* Appends to buf (a NUL-terminated string of size bytes), "; " between parts, truncating with "...". */
static _printf_(3, 4) void add(char *buf, size_t size, const char *fmt, ...) {
        size_t n = strlen(buf);
        va_list ap;

        if (n + 4 >= size)
                return;
        if (n > 0) {
                snprintf(buf + n, size - n, "; ");
                n += 2;
        }
        va_start(ap, fmt);
        int k = vsnprintf(buf + n, size - n, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t) k >= size - n && size > 4)
                memcpy(buf + size - 4, "...", 4);
}

static _printf_(3, 4) void set_verdict(adv_row *row, adv_verdict v, const char *fmt, ...) {
        va_list ap;

        row->verdict = v;
        va_start(ap, fmt);
        int k = vsnprintf(row->observed, sizeof(row->observed), fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t) k >= sizeof(row->observed))
                memcpy(row->observed + sizeof(row->observed) - 4, "...", 4);
}

/* Printable ASCII only: the rows go into TAP, JSON and markdown as they are. */
static void printable(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f)
                        *s = '?';
}

/* A short printable excerpt of untrusted bytes, for observed. */
static const char *excerpt(char buf[static 96], const char *s, size_t len) {
        size_t n = MIN(len, (size_t) 80), k = 0;

        for (size_t i = 0; i < n; i++)
                buf[k++] = (unsigned char) s[i] < 0x20 || (unsigned char) s[i] >= 0x7f ? '?' : s[i];
        if (len > n) {
                memcpy(buf + k, "...", 3);
                k += 3;
        }
        buf[k] = '\0';
        return buf;
}

static bool contains(const char *haystack, const char *needle) {
        return haystack && needle && strstr(haystack, needle);
}

/* A growing buffer. */
typedef struct buf {
        char *p;
        size_t len, cap;
} buf;

static int buf_put(buf *b, const void *data, size_t n) {
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + n + 1);
                char *q = realloc(b->p, MAX(cap, (size_t) 256));
                if (!q)
                        return -ENOMEM;
                b->p = q;
                b->cap = MAX(cap, (size_t) 256);
        }
        memcpy(b->p + b->len, data, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

static _printf_(2, 3) int buf_printf(buf *b, const char *fmt, ...) {
        char tmp[1024];
        va_list ap;

        va_start(ap, fmt);
        int k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (k < 0 || (size_t) k >= sizeof(tmp))
                return -EINVAL;
        return buf_put(b, tmp, (size_t) k);
}

static void buf_done(buf *b) {
        free(b->p);
        *b = (buf){0};
}

/* ---- strict JSON ---------------------------------------------------------------------
 * yajl's own parser with its defaults: one document, no raw control
 * characters (so no raw NUL), no comments, no trailing data; and, since
 * yajl only checks the shape of UTF-8 sequences, au_utf8_valid() over the
 * whole text (overlongs, surrogates, past U+10FFFF). It does not recurse;
 * depth is bounded here all the same. It also keeps the decoded bytes of the
 * first string under each of up to two keys (NUL bytes included), which a
 * yajl tree would cut.
 */

typedef struct jcheck {
        int depth;
        bool too_deep;
        const char *target[2]; /* map keys, or NULL */
        int at;                /* the target whose value comes next, or -1 */
        char *value[2];        /* the first string under each target, NUL-terminated */
        size_t value_len[2];
} jcheck;

static void jcheck_done(jcheck *j) {
        free(j->value[0]);
        free(j->value[1]);
}

static int jc_scalar(void *ctx) {
        ((jcheck *) ctx)->at = -1;
        return 1;
}
static int jc_bool(void *ctx, int b) {
        return jc_scalar(ctx);
}
static int jc_number(void *ctx, const char *s, size_t len) {
        return jc_scalar(ctx);
}
static int jc_string(void *ctx, const unsigned char *s, size_t len) {
        jcheck *j = ctx;
        if (j->at >= 0 && !j->value[j->at]) {
                j->value[j->at] = malloc(len + 1);
                if (!j->value[j->at])
                        return 0;
                memcpy(j->value[j->at], s, len);
                j->value[j->at][len] = '\0';
                j->value_len[j->at] = len;
        }
        j->at = -1;
        return 1;
}
static int jc_key(void *ctx, const unsigned char *s, size_t len) {
        jcheck *j = ctx;
        j->at = -1;
        for (int i = 0; i < 2; i++)
                if (j->target[i] && strlen(j->target[i]) == len && memcmp(j->target[i], s, len) == 0)
                        j->at = i;
        return 1;
}
static int jc_open(void *ctx) {
        jcheck *j = ctx;
        j->at = -1;
        if (++j->depth > JSON_CHECK_DEPTH) {
                j->too_deep = true;
                return 0;
        }
        return 1;
}
static int jc_close(void *ctx) {
        ((jcheck *) ctx)->depth--;
        return 1;
}

static const yajl_callbacks jc_callbacks = {
        .yajl_null = jc_scalar,
        .yajl_boolean = jc_bool,
        .yajl_number = jc_number,
        .yajl_string = jc_string,
        .yajl_start_map = jc_open,
        .yajl_map_key = jc_key,
        .yajl_end_map = jc_close,
        .yajl_start_array = jc_open,
        .yajl_end_array = jc_close,
};

/* True when s[0..len) is one strictly valid JSON document; otherwise why says what is wrong. */
static bool json_strict(const char *s, size_t len, jcheck *j, char *why, size_t size) {
        jcheck scratch = {0};
        if (!j)
                j = &scratch;
        j->at = -1;
        if (!au_utf8_valid(s, len)) {
                snprintf(why, size, "not valid UTF-8");
                return false;
        }
        yajl_handle h = yajl_alloc(&jc_callbacks, NULL, j);
        if (!h) {
                snprintf(why, size, "out of memory");
                return false;
        }
        yajl_status st = yajl_parse(h, (const unsigned char *) s, len);
        if (st == yajl_status_ok)
                st = yajl_complete_parse(h);
        if (st != yajl_status_ok) {
                if (j->too_deep)
                        snprintf(why, size, "nested deeper than %d levels", JSON_CHECK_DEPTH);
                else {
                        unsigned char *e = yajl_get_error(h, 0, (const unsigned char *) s, len);
                        snprintf(why, size, "%s", e ? (const char *) e : "parse error");
                        yajl_free_error(h, e);
                        why[strcspn(why, "\n")] = '\0';
                }
        }
        yajl_free(h);
        if (j == &scratch)
                jcheck_done(&scratch);
        return st == yajl_status_ok;
}

/* ---- Redis -------------------------------------------------------------------------- */

static void redis_close(fleet *f) {
        if (f->rc)
                redisFree(f->rc);
        f->rc = NULL;
}

/* The --redis URL through memory/redis.c's connector; the password is never shown. */
static int redis_connect(fleet *f) {
        au_error err = {0};
        int r = mem_redis_connect(f->t->redis_url, 5000, REDIS_TIMEOUT_MS, &f->rc, &err);

        if (r < 0) {
                snprintf(f->redis_err, sizeof(f->redis_err), "%.150s", err.msg);
                f->rc = NULL;
        }
        return r;
}

/* One command, binary-safe; NULL (with f->redis_err) when Redis did not answer. */
static redisReply *redis_cmd(fleet *f, int argc, const char **argv, const size_t *lens) {
        if (!f->rc && redis_connect(f) < 0)
                return NULL;
        redisReply *r = redisCommandArgv(f->rc, argc, argv, lens);
        if (!r) {
                snprintf(f->redis_err, sizeof(f->redis_err), "Redis: %s", f->rc->errstr);
                redis_close(f);
        } else if (r->type == REDIS_REPLY_ERROR)
                snprintf(f->redis_err, sizeof(f->redis_err), "Redis: %.140s", r->str ? r->str : "error");
        return r;
}

/* rcmd with C strings, NULL-terminated. */
static redisReply *redis_cmds(fleet *f, const char *a0, ...) {
        const char *argv[16];
        int argc = 0;
        va_list ap;

        argv[argc++] = a0;
        va_start(ap, a0);
        for (const char *s; argc < (int) ELEMENTSOF(argv) && (s = va_arg(ap, const char *));)
                argv[argc++] = s;
        va_end(ap);
        return redis_cmd(f, argc, argv, NULL);
}

static bool is_str(const redisReply *r) {
        return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->str;
}

/* Stream ids "ms-seq": <0, 0, >0. Malformed ones sort first. */
static int id_cmp(const char *a, const char *b) {
        unsigned long long am = 0, as = 0, bm = 0, bs = 0;
        sscanf(a, "%llu-%llu", &am, &as);
        sscanf(b, "%llu-%llu", &bm, &bs);
        return am != bm ? (am < bm ? -1 : 1) : as != bs ? (as < bs ? -1 : 1) : 0;
}

/* XADD to the node's jobs stream; the entry id into entry. */
static int xadd(fleet *f, const char *field, const char *value, size_t len, char entry[static 64]) {
        const char *argv[] = {"XADD", f->jobs_key, "*", field, value};
        size_t lens[] = {4, strlen(f->jobs_key), 1, strlen(field), len};
        redisReply *r = redis_cmd(f, 5, argv, lens);
        int ret = -EIO;

        if (is_str(r) && r->len < 64) {
                snprintf(entry, 64, "%s", r->str);
                char **v = realloc(f->entries, (f->n_entries + 1) * sizeof(char *));
                if (v) {
                        f->entries = v;
                        if ((v[f->n_entries] = strdup(entry)))
                                f->n_entries++;
                }
                ret = 0;
        }
        if (r)
                freeReplyObject(r);
        return ret;
}

/* The last entry of the results stream (or 0-0): results after it are new. */
static int mark_results(fleet *f) {
        redisReply *r = redis_cmds(f, "XREVRANGE", MEM_STREAM_RESULTS, "+", "-", "COUNT", "1", NULL);
        int ret = -EIO;

        if (r && r->type == REDIS_REPLY_ARRAY) {
                snprintf(f->cursor, sizeof(f->cursor), "0-0");
                if (r->elements > 0 && r->element[0]->type == REDIS_REPLY_ARRAY &&
                    r->element[0]->elements > 0 && is_str(r->element[0]->element[0]))
                        snprintf(f->cursor, sizeof(f->cursor), "%s", r->element[0]->element[0]->str);
                ret = 0;
        }
        if (r)
                freeReplyObject(r);
        return ret;
}

/* The group's last delivered entry and whether entry is still pending. -EIO when Redis cannot say. */
static int entry_state(fleet *f, const char *entry, bool *delivered, bool *pending) {
        redisReply *r = redis_cmds(f, "XINFO", "GROUPS", f->jobs_key, NULL);
        int ret = -EIO;

        *delivered = *pending = false;
        if (r && r->type == REDIS_REPLY_ARRAY)
                for (size_t i = 0; i < r->elements; i++) {
                        redisReply *g = r->element[i];
                        bool ours = false;
                        const char *last = NULL;
                        if (g->type != REDIS_REPLY_ARRAY)
                                continue;
                        for (size_t k = 0; k + 1 < g->elements; k += 2) {
                                if (!is_str(g->element[k]))
                                        continue;
                                if (strcmp(g->element[k]->str, "name") == 0 && is_str(g->element[k + 1]))
                                        ours = strcmp(g->element[k + 1]->str, MEM_JOBS_GROUP) == 0;
                                if (strcmp(g->element[k]->str, "last-delivered-id") == 0 &&
                                    is_str(g->element[k + 1]))
                                        last = g->element[k + 1]->str;
                        }
                        if (ours && last) {
                                *delivered = id_cmp(entry, last) <= 0;
                                ret = 0;
                        }
                }
        if (r)
                freeReplyObject(r);
        if (ret < 0)
                return ret;
        r = redis_cmds(f, "XPENDING", f->jobs_key, MEM_JOBS_GROUP, entry, entry, "1", NULL);
        if (r && r->type == REDIS_REPLY_ARRAY)
                *pending = r->elements > 0;
        else
                ret = -EIO;
        if (r)
                freeReplyObject(r);
        return ret;
}

/* Whether the node has read and acknowledged entry, waiting up to wait_ms. */
static bool entry_acked(fleet *f, const char *entry, uint64_t wait_ms) {
        uint64_t until = now_ms() + wait_ms;
        for (;;) {
                bool delivered, pending;
                if (entry_state(f, entry, &delivered, &pending) == 0 && delivered && !pending)
                        return true;
                if (now_ms() >= until)
                        return false;
                sleep_ms(100);
        }
}

/* Deletes the attack's entries the node has answered (acknowledged); others stay. */
static void drop_entries(fleet *f) {
        for (size_t i = 0; i < f->n_entries; i++) {
                bool delivered, pending;
                if (entry_state(f, f->entries[i], &delivered, &pending) == 0 && delivered && !pending) {
                        redisReply *r = redis_cmds(f, "XDEL", f->jobs_key, f->entries[i], NULL);
                        if (r)
                                freeReplyObject(r);
                }
                free(f->entries[i]);
        }
        free(f->entries);
        f->entries = NULL;
        f->n_entries = 0;
}

static long long node_pttl(fleet *f);

/* ---- results ------------------------------------------------------------------------- */

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

static want *want_add(wants *w, const char *id, const char *entry) {
        want *v = realloc(w->v, (w->n + 1) * sizeof(*v));
        if (!v)
                return NULL;
        w->v = v;
        v += w->n++;
        *v = (want){0};
        snprintf(v->id, sizeof(v->id), "%s", id ? id : "");
        snprintf(v->entry, sizeof(v->entry), "%s", entry ? entry : "");
        return v;
}

static void wants_done(wants *w) {
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i].json);
        free(w->v);
        *w = (wants){0};
}

static void take_result(wants *w, const char *json, size_t len) {
        _cleanup_(sbx_result_freep) sbx_result *res = NULL;
        au_error err = {0};

        if (sbx_result_from_json(json, len, &res, &err) < 0 || !res->id)
                return;
        for (size_t i = 0; i < w->n; i++) {
                want *x = &w->v[i];
                if (!(x->id[0] && strcmp(res->id, x->id) == 0) &&
                    !(x->entry[0] && strcmp(res->id, x->entry) == 0))
                        continue;
                x->count++;
                if (!x->json) {
                        x->json = malloc(len + 1);
                        if (x->json) {
                                memcpy(x->json, json, len);
                                x->json[len] = '\0';
                                x->len = len;
                        }
                } else if (x->len != len || memcmp(x->json, json, len) != 0)
                        x->differ = true;
                return;
        }
}

static bool all_answered(const wants *w) {
        for (size_t i = 0; i < w->n; i++)
                if (w->v[i].count == 0)
                        return false;
        return true;
}

/*
 * Reads the results stream from f->cursor until every wanted job has a
 * result and linger_ms more have passed (to see duplicates), or the attack's
 * deadline, or the node's heartbeat key is gone. Returns 0, or -EIO when
 * Redis failed (f->redis_err).
 */
static int collect(fleet *f, wants *w, uint64_t linger_ms) {
        uint64_t settle = 0, beat_check = now_ms() + 1000;

        for (;;) {
                uint64_t now = now_ms();
                /* A node that is gone answers nothing: no point waiting for the deadline. */
                if (now >= beat_check) {
                        if (node_pttl(f) == -2)
                                return 0;
                        beat_check = now + 1000;
                }
                if (all_answered(w)) {
                        if (!settle)
                                settle = now + linger_ms;
                        if (now >= settle)
                                return 0;
                }
                if (now >= f->deadline)
                        return 0;
                uint64_t block = MIN(f->deadline - now, (uint64_t) 500);
                if (settle)
                        block = MIN(block, settle > now ? settle - now : 1);
                char bl[24];
                snprintf(bl, sizeof(bl), "%" PRIu64, MAX(block, (uint64_t) 1));
                redisReply *r = redis_cmds(f, "XREAD", "COUNT", "200", "BLOCK", bl, "STREAMS",
                                           MEM_STREAM_RESULTS, f->cursor, NULL);
                if (!r)
                        return -EIO;
                if (r->type == REDIS_REPLY_ERROR) {
                        freeReplyObject(r);
                        return -EIO;
                }
                if (r->type == REDIS_REPLY_ARRAY)
                        for (size_t s = 0; s < r->elements; s++) {
                                redisReply *st = r->element[s];
                                if (st->type != REDIS_REPLY_ARRAY || st->elements < 2 ||
                                    st->element[1]->type != REDIS_REPLY_ARRAY)
                                        continue;
                                redisReply *entries = st->element[1];
                                for (size_t e = 0; e < entries->elements; e++) {
                                        redisReply *en = entries->element[e];
                                        if (en->type != REDIS_REPLY_ARRAY || en->elements < 2 ||
                                            !is_str(en->element[0]))
                                                continue;
                                        snprintf(f->cursor, sizeof(f->cursor), "%s", en->element[0]->str);
                                        redisReply *kv = en->element[1];
                                        if (kv->type != REDIS_REPLY_ARRAY)
                                                continue;
                                        for (size_t k = 0; k + 1 < kv->elements; k += 2)
                                                if (is_str(kv->element[k]) &&
                                                    strcmp(kv->element[k]->str, MEM_FIELD_RESULT) == 0 &&
                                                    kv->element[k + 1]->type == REDIS_REPLY_STRING)
                                                        take_result(w, kv->element[k + 1]->str,
                                                                    kv->element[k + 1]->len);
                                }
                        }
                freeReplyObject(r);
        }
}

/* ---- the node's liveness -------------------------------------------------------------- */

static long long node_pttl(fleet *f) {
        redisReply *r = redis_cmds(f, "PTTL", f->node_key, NULL);
        long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
        if (r)
                freeReplyObject(r);
        return v;
}

static int node_started_at(fleet *f, char *out, size_t size) {
        redisReply *r = redis_cmds(f, "HGET", f->node_key, "started_at", NULL);
        int ret = is_str(r) ? 0 : -ENOENT;
        if (ret == 0)
                snprintf(out, size, "%s", r->str);
        if (r)
                freeReplyObject(r);
        return ret;
}

/* The heartbeat key is refreshed again (a beat after now), by the same life of the daemon. */
static bool node_alive(fleet *f, char *why, size_t size) {
        char started[64];
        long long p0 = node_pttl(f);
        uint64_t wait = scaled(f, HEARTBEAT_WAIT_MS), until = now_ms() + wait;

        if (p0 == -3) {
                snprintf(why, size, "%s", f->redis_err);
                return false;
        }
        if (p0 <= 0) {
                snprintf(why, size, "its heartbeat %.100s is gone", f->node_key);
                return false;
        }
        for (;;) {
                sleep_ms(100);
                long long p = node_pttl(f);
                if (p <= 0) {
                        snprintf(why, size, "its heartbeat %.100s is gone", f->node_key);
                        return false;
                }
                if (p > p0)
                        break;
                p0 = p;
                if (now_ms() >= until) {
                        snprintf(why, size, "its heartbeat was not refreshed for %" PRIu64 " ms", wait);
                        return false;
                }
        }
        if (node_started_at(f, started, sizeof(started)) < 0) {
                snprintf(why, size, "its heartbeat has no started_at");
                return false;
        }
        if (strcmp(started, f->started_at) != 0) {
                snprintf(why, size, "the node restarted (started_at %.30s, was %.30s)", started,
                         f->started_at);
                return false;
        }
        return true;
}

/* ---- daemon attacks ------------------------------------------------------------------- */

/* One jobs-stream entry of an attack and what its result must say. */
typedef struct job_case {
        const char *label;
        const char *field; /* "spec", or anything else */
        const char *value;
        size_t len;
        const char *id;     /* the spec's id, or NULL (answered under the entry id) */
        const char *expect; /* rejected, and the error must contain this (NULL: any error) */
} job_case;

/* Sends the cases, waits for their results, checks each is a valid "rejected" naming what it must. */
static void expect_rejected(fleet *f, adv_row *row, const job_case *cases, size_t n) {
        wants w = {0};
        char obs[256] = "", bad[256] = "";

        if (mark_results(f) < 0) {
                set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                char entry[64];
                if (xadd(f, cases[i].field, cases[i].value, cases[i].len, entry) < 0) {
                        set_verdict(row, ADV_ERROR, "XADD %s: %s", cases[i].label, f->redis_err);
                        wants_done(&w);
                        return;
                }
                if (!want_add(&w, cases[i].id, entry)) {
                        set_verdict(row, ADV_ERROR, "out of memory");
                        wants_done(&w);
                        return;
                }
        }
        if (collect(f, &w, 0) < 0) {
                set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                wants_done(&w);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const want *x = &w.v[i];
                _cleanup_(sbx_result_freep) sbx_result *res = NULL;
                au_error err = {0};
                char why[160], ex[96];

                if (!x->json) {
                        add(bad, sizeof(bad), "%s: no result within the time", cases[i].label);
                        continue;
                }
                if (!json_strict(x->json, x->len, NULL, why, sizeof(why))) {
                        add(bad, sizeof(bad), "%s: result is not valid JSON (%s)", cases[i].label, why);
                        continue;
                }
                if (sbx_result_from_json(x->json, x->len, &res, &err) < 0) {
                        add(bad, sizeof(bad), "%s: unreadable result (%s)", cases[i].label, err.msg);
                        continue;
                }
                const char *e = res->error ? res->error : "";
                if (res->outcome != SBX_OUTCOME_REJECTED) {
                        add(bad, sizeof(bad), "%s: outcome %s, not rejected", cases[i].label,
                            sbx_outcome_to_string(res->outcome));
                        continue;
                }
                if (cases[i].expect && !contains(e, cases[i].expect)) {
                        add(bad, sizeof(bad), "%s: rejected, but the error '%s' does not name '%s'",
                            cases[i].label, excerpt(ex, e, strlen(e)), cases[i].expect);
                        continue;
                }
                if (!entry_acked(f, x->entry, scaled(f, 2000))) {
                        add(bad, sizeof(bad), "%s: rejected, but entry %s is still pending", cases[i].label,
                            x->entry);
                        continue;
                }
                if (n == 1)
                        add(obs, sizeof(obs), "rejected: %s", excerpt(ex, e, strlen(e)));
                else
                        add(obs, sizeof(obs), "%s: rejected (%.50s)", cases[i].label,
                            excerpt(ex, e, strlen(e)));
        }
        if (bad[0])
                set_verdict(row, ADV_NOT_CONTAINED, "%s", bad);
        else
                set_verdict(row, ADV_CONTAINED, "%s", obs);
        wants_done(&w);
}

static void one_rejected(fleet *f, adv_row *row, const char *id, const char *field, const char *value,
                         size_t len, const char *expect) {
        job_case c = {
                .label = row->name, .field = field, .value = value, .len = len, .id = id, .expect = expect};
        expect_rejected(f, row, &c, 1);
}

static void atk_malformed_json(fleet *f, adv_row *row) {
        char spec[256];
        snprintf(spec, sizeof(spec), "{\"id\":\"%s-malformed\",\"argv\":[\"/bin/true\"", f->prefix);
        one_rejected(f, row, NULL, MEM_FIELD_SPEC, spec, strlen(spec), "JSON");
}

static void atk_unknown_field(fleet *f, adv_row *row) {
        char id[96], spec[256];
        snprintf(id, sizeof(id), "%s-unknown-field", f->prefix);
        snprintf(spec, sizeof(spec), "{\"id\":\"%s\",\"argv\":[\"/bin/true\"],\"escape_hatch\":true}", id);
        one_rejected(f, row, id, MEM_FIELD_SPEC, spec, strlen(spec), "escape_hatch");
}

static void atk_wrong_types(fleet *f, adv_row *row) {
        static const struct {
                const char *label, *tail, *expect;
        } v[] = {
                {"argv string", "\"argv\":\"/bin/true\"", "argv"},
                {"memory string", "\"argv\":[\"/bin/true\"],\"limits\":{\"memory_bytes\":\"1G\"}",
                 "limits.memory_bytes"},
                {"negative wall", "\"argv\":[\"/bin/true\"],\"limits\":{\"wall_ms\":-1}", "limits.wall_ms"},
                {"env array", "\"argv\":[\"/bin/true\"],\"env\":[\"A=1\"]", "env"},
                {"argv numbers", "\"argv\":[1,2]", "argv"},
        };
        char ids[ELEMENTSOF(v)][96], specs[ELEMENTSOF(v)][256];
        job_case c[ELEMENTSOF(v)];

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                snprintf(ids[i], sizeof(ids[i]), "%s-types-%zu", f->prefix, i);
                snprintf(specs[i], sizeof(specs[i]), "{\"id\":\"%.95s\",%s}", ids[i], v[i].tail);
                c[i] = (job_case){.label = v[i].label,
                                  .field = MEM_FIELD_SPEC,
                                  .value = specs[i],
                                  .len = strlen(specs[i]),
                                  .id = ids[i],
                                  .expect = v[i].expect};
        }
        expect_rejected(f, row, c, ELEMENTSOF(v));
}

static void atk_over_ceiling(fleet *f, adv_row *row) {
        static const struct {
                const char *label, *limit, *value;
        } v[] = {
                {"memory 1 EiB", "memory_bytes", "1152921504606846976"},
                {"wall 1e15 ms", "wall_ms", "1000000000000000"},
                {"output 1 EiB", "output_bytes", "1152921504606846976"},
                {"pids 2^40", "pids", "1099511627776"},
                {"cpu 100000%", "cpu_percent", "100000"},
        };
        char ids[ELEMENTSOF(v)][96], specs[ELEMENTSOF(v)][256], expect[ELEMENTSOF(v)][64];
        job_case c[ELEMENTSOF(v)];

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                snprintf(ids[i], sizeof(ids[i]), "%s-ceiling-%zu", f->prefix, i);
                snprintf(specs[i], sizeof(specs[i]),
                         "{\"id\":\"%.95s\",\"argv\":[\"/bin/true\"],\"limits\":{\"%s\":%s}}", ids[i],
                         v[i].limit, v[i].value);
                snprintf(expect[i], sizeof(expect[i]), "limits.%s", v[i].limit);
                c[i] = (job_case){.label = v[i].label,
                                  .field = MEM_FIELD_SPEC,
                                  .value = specs[i],
                                  .len = strlen(specs[i]),
                                  .id = ids[i],
                                  .expect = expect[i]};
        }
        expect_rejected(f, row, c, ELEMENTSOF(v));
}

static void atk_oversized_entry(fleet *f, adv_row *row) {
        char id[96];
        _cleanup_free_ char *spec = malloc(OVERSIZED_ENTRY_BYTES);

        if (!spec) {
                set_verdict(row, ADV_ERROR, "out of memory");
                return;
        }
        snprintf(id, sizeof(id), "%s-oversized", f->prefix);
        int k = snprintf(spec, 256, "{\"id\":\"%s\",\"argv\":[\"/bin/true\"],\"stdin\":\"", id);
        memset(spec + k, 'A', OVERSIZED_ENTRY_BYTES - (size_t) k - 2);
        memcpy(spec + OVERSIZED_ENTRY_BYTES - 2, "\"}", 2);
        /* Whether the node cuts the entry (id lost: answered under the entry id) or parses it (stdin too
         * large). */
        one_rejected(f, row, id, MEM_FIELD_SPEC, spec, OVERSIZED_ENTRY_BYTES, NULL);
}

static void atk_unknown_entry_field(fleet *f, adv_row *row) {
        char spec[256];
        snprintf(spec, sizeof(spec), "{\"id\":\"%s-entry-field\",\"argv\":[\"/bin/true\"]}", f->prefix);
        one_rejected(f, row, NULL, "exec", spec, strlen(spec), "exec");
}

static void atk_binary_garbage(fleet *f, adv_row *row) {
        char garbage[4096];
        uint32_t x = 0x9e3779b9u;
        for (size_t i = 0; i < sizeof(garbage); i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                garbage[i] = (char) (i % 7 == 0 ? 0 : x & 0xff);
        }
        one_rejected(f, row, NULL, MEM_FIELD_SPEC, garbage, sizeof(garbage), NULL);
}

/* Byte sequences that are not UTF-8: a byte that never occurs, an overlong '/', a surrogate, past U+10FFFF.
 */
static const struct {
        const char *label, *bytes;
} bad_utf8[] = {
        {"0xff byte", "\xff\xfe"},
        {"overlong '/'", "\xc0\xaf"
                         "etc"},
        {"surrogate", "\xed\xa0\x80"},
        {"over U+10FFFF", "\xf4\x90\x80\x80"},
};

static void atk_argv_invalid_utf8(fleet *f, adv_row *row) {
        char ids[ELEMENTSOF(bad_utf8)][96], specs[ELEMENTSOF(bad_utf8)][256];
        job_case c[ELEMENTSOF(bad_utf8)];

        for (size_t i = 0; i < ELEMENTSOF(bad_utf8); i++) {
                snprintf(ids[i], sizeof(ids[i]), "%s-argv-utf8-%zu", f->prefix, i);
                snprintf(specs[i], sizeof(specs[i]), "{\"id\":\"%.95s\",\"argv\":[\"/bin/echo\",\"x%sx\"]}",
                         ids[i], bad_utf8[i].bytes);
                c[i] = (job_case){.label = bad_utf8[i].label,
                                  .field = MEM_FIELD_SPEC,
                                  .value = specs[i],
                                  .len = strlen(specs[i]),
                                  .id = ids[i],
                                  .expect = "UTF"};
        }
        expect_rejected(f, row, c, ELEMENTSOF(bad_utf8));
}

static void atk_id_path_chars(fleet *f, adv_row *row) {
        static const char *const bad_ids[] = {"../../etc/%s-passwd", "%s/../../x", "..%%2f%s"};
        char ids[ELEMENTSOF(bad_ids)][128], specs[ELEMENTSOF(bad_ids)][256];
        job_case c[ELEMENTSOF(bad_ids)];

        for (size_t i = 0; i < ELEMENTSOF(bad_ids); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                snprintf(ids[i], sizeof(ids[i]), bad_ids[i], f->prefix);
#pragma GCC diagnostic pop
                snprintf(specs[i], sizeof(specs[i]), "{\"id\":\"%.127s\",\"argv\":[\"/bin/true\"]}", ids[i]);
                c[i] = (job_case){.label = ids[i],
                                  .field = MEM_FIELD_SPEC,
                                  .value = specs[i],
                                  .len = strlen(specs[i]),
                                  .id = ids[i],
                                  .expect = "id"};
        }
        expect_rejected(f, row, c, ELEMENTSOF(bad_ids));
}

/* Sends one spec and waits for its result; NULL (row set) when there is none. */
static want *run_one(fleet *f, adv_row *row, wants *w, const char *id, const char *spec) {
        char entry[64];

        if (mark_results(f) < 0 || xadd(f, MEM_FIELD_SPEC, spec, strlen(spec), entry) < 0) {
                set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return NULL;
        }
        want *x = want_add(w, id, entry);
        if (!x) {
                set_verdict(row, ADV_ERROR, "out of memory");
                return NULL;
        }
        if (collect(f, w, 0) < 0) {
                set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                return NULL;
        }
        if (!x->json) {
                set_verdict(row, ADV_NOT_CONTAINED, "no result for %s within %u ms", id, f->timeout_ms);
                return NULL;
        }
        return x;
}

/* Checks the result is valid JSON and readable; NULL (row set) otherwise. */
static sbx_result *read_result(adv_row *row, const want *x) {
        sbx_result *res = NULL;
        au_error err = {0};
        char why[160];

        if (!json_strict(x->json, x->len, NULL, why, sizeof(why))) {
                set_verdict(row, ADV_NOT_CONTAINED, "the result is not valid JSON: %s", why);
                return NULL;
        }
        if (sbx_result_from_json(x->json, x->len, &res, &err) < 0) {
                set_verdict(row, ADV_NOT_CONTAINED, "the result cannot be read: %s", err.msg);
                return NULL;
        }
        return res;
}

static void atk_output_nul_utf8(fleet *f, adv_row *row) {
        char id[96], spec[512];
        wants w = {0};

        snprintf(id, sizeof(id), "%s-nul-output", f->prefix);
        snprintf(spec, sizeof(spec),
                 "{\"id\":\"%s\",\"argv\":[\"/bin/sh\",\"-c\",\"printf 'a\\\\000b\\\\377\\\\376c'; "
                 "printf 'e\\\\000\\\\300\\\\257' >&2\"],\"limits\":{\"wall_ms\":10000}}",
                 id);
        want *x = run_one(f, row, &w, id, spec);
        if (!x) {
                wants_done(&w);
                return;
        }
        _cleanup_(sbx_result_freep) sbx_result *res = read_result(row, x);
        if (res) {
                static const char want_out[] = "a\0b\xef\xbf\xbd\xef\xbf\xbd"
                                               "c";
                bool escaped = memmem(x->json, x->len, "\\u0000", 6) != NULL;
                if (res->outcome != SBX_OUTCOME_EXITED || res->exit_code != 0)
                        set_verdict(row, ADV_NOT_CONTAINED, "outcome %s exit %d, not exited 0",
                                    sbx_outcome_to_string(res->outcome), res->exit_code);
                else if (!escaped)
                        set_verdict(row, ADV_NOT_CONTAINED,
                                    "valid JSON, but no \\u0000 in it: the NUL bytes were lost");
                else if (res->stdout_size != sizeof(want_out) - 1 ||
                         memcmp(res->stdout_data, want_out, sizeof(want_out) - 1) != 0) {
                        char ex[96];
                        set_verdict(row, ADV_NOT_CONTAINED,
                                    "stdout read back as '%s' (%zu bytes), not a\\0b<FFFD><FFFD>c",
                                    excerpt(ex, res->stdout_data ? res->stdout_data : "", res->stdout_size),
                                    res->stdout_size);
                } else
                        set_verdict(row, ADV_CONTAINED,
                                    "exited 0; result is valid JSON (%zu bytes); NUL as \\u0000, invalid "
                                    "bytes as "
                                    "U+FFFD; stderr %zu bytes",
                                    x->len, res->stderr_size);
        }
        wants_done(&w);
}

static void atk_result_flood(fleet *f, adv_row *row) {
        char id[96], spec[512];
        wants w = {0};
        bool yes = access("/usr/bin/yes", X_OK) == 0;

        snprintf(id, sizeof(id), "%s-flood-output", f->prefix);
        snprintf(spec, sizeof(spec),
                 "{\"id\":\"%s\",\"argv\":%s,\"limits\":{\"output_bytes\":%u,\"wall_ms\":15000}}", id,
                 yes ? "[\"/usr/bin/yes\",\"AUTOOS-FLOOD-AUTOOS-FLOOD-AUTOOS-FLOOD\"]"
                     : "[\"/bin/sh\",\"-c\",\"while :; do echo AUTOOS-FLOOD-AUTOOS-FLOOD; done\"]",
                 FLOOD_OUTPUT_BYTES);
        uint64_t t0 = now_ms();
        want *x = run_one(f, row, &w, id, spec);
        if (!x) {
                wants_done(&w);
                return;
        }
        _cleanup_(sbx_result_freep) sbx_result *res = read_result(row, x);
        if (res) {
                size_t bound = 2 * FLOOD_OUTPUT_BYTES + 65536;
                if (res->outcome != SBX_OUTCOME_OUTPUT_LIMIT)
                        set_verdict(row, ADV_NOT_CONTAINED,
                                    "outcome %s, not output_limit (stdout %zu bytes)",
                                    sbx_outcome_to_string(res->outcome), res->stdout_size);
                else if (res->stdout_size + res->stderr_size > FLOOD_OUTPUT_BYTES)
                        set_verdict(row, ADV_NOT_CONTAINED,
                                    "output_limit, but %zu bytes of output kept (limit %u)",
                                    res->stdout_size + res->stderr_size, FLOOD_OUTPUT_BYTES);
                else if (x->len > bound)
                        set_verdict(row, ADV_NOT_CONTAINED,
                                    "output_limit, but the result is %zu bytes (bound %zu)", x->len, bound);
                else
                        set_verdict(row, ADV_CONTAINED,
                                    "output_limit after %" PRIu64
                                    " ms wall; stdout %zu bytes, truncated %s; result %zu "
                                    "bytes; answered in %" PRIu64 " ms",
                                    res->wall_ms, res->stdout_size, res->stdout_truncated ? "true" : "false",
                                    x->len, now_ms() - t0);
        }
        wants_done(&w);
}

static void atk_job_flood(fleet *f, adv_row *row) {
        wants w = {0};
        char spec[256], id[96];
        uint64_t t0 = now_ms();
        size_t sent = 0;

        if (mark_results(f) < 0 || !f->rc) {
                set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return;
        }
        /* Written at once (pipelined), so that the node finds them all waiting. */
        for (size_t i = 0; i < FLOOD_JOBS; i++) {
                snprintf(id, sizeof(id), "%s-flood-%zu", f->prefix, i);
                snprintf(spec, sizeof(spec),
                         "{\"id\":\"%s\",\"argv\":[\"/bin/true\"],\"limits\":{\"wall_ms\":10000}}", id);
                const char *argv[] = {"XADD", f->jobs_key, "*", MEM_FIELD_SPEC, spec};
                if (!want_add(&w, id, NULL) || redisAppendCommandArgv(f->rc, 5, argv, NULL) != REDIS_OK)
                        break;
                sent++;
        }
        for (size_t i = 0; i < sent; i++) {
                redisReply *r = NULL;
                if (redisGetReply(f->rc, (void **) &r) != REDIS_OK) {
                        snprintf(f->redis_err, sizeof(f->redis_err), "Redis: %s", f->rc->errstr);
                        redis_close(f);
                        set_verdict(row, ADV_ERROR, "XADD flood: %s", f->redis_err);
                        wants_done(&w);
                        return;
                }
                if (is_str(r)) {
                        char **v = realloc(f->entries, (f->n_entries + 1) * sizeof(char *));
                        if (v) {
                                f->entries = v;
                                if ((v[f->n_entries] = strdup(r->str)))
                                        f->n_entries++;
                        }
                }
                freeReplyObject(r);
        }
        if (sent < FLOOD_JOBS) {
                set_verdict(row, ADV_ERROR, "could only queue %zu of %d jobs", sent, FLOOD_JOBS);
                wants_done(&w);
                return;
        }
        if (collect(f, &w, 500) < 0) {
                set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                wants_done(&w);
                return;
        }
        size_t answered = 0, exited = 0, dup = 0, differ = 0;
        char first_bad[160] = "";
        for (size_t i = 0; i < w.n; i++) {
                const want *x = &w.v[i];
                if (!x->json)
                        continue;
                answered++;
                dup += x->count > 1;
                differ += x->differ;
                _cleanup_(sbx_result_freep) sbx_result *res = NULL;
                au_error err = {0};
                char why[120];
                if (!json_strict(x->json, x->len, NULL, why, sizeof(why)) ||
                    sbx_result_from_json(x->json, x->len, &res, &err) < 0) {
                        if (!first_bad[0])
                                snprintf(first_bad, sizeof(first_bad), "%.100s: invalid result", x->id);
                        continue;
                }
                if (res->outcome == SBX_OUTCOME_EXITED && res->exit_code == 0)
                        exited++;
                else if (!first_bad[0])
                        snprintf(first_bad, sizeof(first_bad), "%.60s: %s %.60s", x->id,
                                 sbx_outcome_to_string(res->outcome), res->error ? res->error : "");
        }
        uint64_t ms = now_ms() - t0;
        if (answered < FLOOD_JOBS)
                set_verdict(row, ADV_NOT_CONTAINED, "%zu of %d answered within %u ms (%zu lost or late)",
                            answered, FLOOD_JOBS, f->timeout_ms * 2, FLOOD_JOBS - answered);
        else if (differ > 0)
                set_verdict(row, ADV_NOT_CONTAINED,
                            "all answered, but %zu jobs got two different results (run twice)", differ);
        else if (exited < FLOOD_JOBS)
                set_verdict(row, ADV_NOT_CONTAINED, "all answered, %zu exited 0; first other: %s", exited,
                            first_bad);
        else
                set_verdict(row, ADV_CONTAINED,
                            "%d/%d answered, exited 0, in %" PRIu64 " ms (%.0f jobs/s)%s", FLOOD_JOBS,
                            FLOOD_JOBS, ms, ms ? FLOOD_JOBS * 1000.0 / (double) ms : 0.0,
                            dup ? "; some result sent twice, identical" : "");
        wants_done(&w);
}

static void atk_duplicate_id(fleet *f, adv_row *row) {
        char id[96], spec[256], entries[2][64] = {"", ""};
        wants w = {0};

        snprintf(id, sizeof(id), "%s-duplicate", f->prefix);
        /* A run long enough that both entries are read while it is still going. */
        snprintf(spec, sizeof(spec),
                 "{\"id\":\"%s\",\"argv\":[\"/bin/sh\",\"-c\",\"sleep 0.5; echo $$-$(date +%%s%%N)\"],"
                 "\"limits\":{\"wall_ms\":10000}}",
                 id);
        if (mark_results(f) < 0) {
                set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return;
        }
        for (int i = 0; i < 2; i++)
                if (xadd(f, MEM_FIELD_SPEC, spec, strlen(spec), entries[i]) < 0) {
                        set_verdict(row, ADV_ERROR, "XADD: %s", f->redis_err);
                        return;
                }
        want *x = want_add(&w, id, NULL);
        if (!x || collect(f, &w, 2000) < 0) {
                set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS,
                            x ? f->redis_err : "out of memory");
                wants_done(&w);
                return;
        }
        x = &w.v[0];
        if (!x->json)
                set_verdict(row, ADV_NOT_CONTAINED, "no result within %u ms", f->timeout_ms);
        else if (x->differ)
                set_verdict(row, ADV_NOT_CONTAINED,
                            "%u results with different contents: the job ran more than once", x->count);
        else if (!entry_acked(f, entries[0], scaled(f, 2000)) ||
                 !entry_acked(f, entries[1], scaled(f, 2000)))
                set_verdict(row, ADV_NOT_CONTAINED, "one result, but entry %s or %s is still pending",
                            entries[0], entries[1]);
        else {
                _cleanup_(sbx_result_freep) sbx_result *res = read_result(row, x);
                if (res) {
                        if (res->outcome != SBX_OUTCOME_EXITED)
                                set_verdict(row, ADV_NOT_CONTAINED, "outcome %s, not exited",
                                            sbx_outcome_to_string(res->outcome));
                        else
                                set_verdict(row, ADV_CONTAINED,
                                            "one run: %u identical result%s, both entries acknowledged",
                                            x->count, x->count > 1 ? "s (re-sent)" : "");
                }
        }
        wants_done(&w);
}

static void atk_cancel_unknown(fleet *f, adv_row *row) {
        char id[96], entry[64];
        wants w = {0};

        snprintf(id, sizeof(id), "%s-no-such-run", f->prefix);
        if (mark_results(f) < 0 || xadd(f, MEM_FIELD_CANCEL, id, strlen(id), entry) < 0) {
                set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return;
        }
        bool acked = entry_acked(f, entry, MIN(remaining_ms(f), scaled(f, 10000)));
        /* And nothing answers it: a short look at the results stream. */
        if (!want_add(&w, id, entry)) {
                set_verdict(row, ADV_ERROR, "out of memory");
                return;
        }
        uint64_t saved = f->deadline;
        f->deadline = MIN(f->deadline, now_ms() + scaled(f, 1500));
        int r = collect(f, &w, 0);
        f->deadline = saved;
        if (r < 0)
                set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS, f->redis_err);
        else if (!acked)
                set_verdict(row, ADV_NOT_CONTAINED, "the cancel entry %s was not acknowledged", entry);
        else if (w.v[0].count > 0)
                set_verdict(row, ADV_NOT_CONTAINED, "a result appeared for a run that never existed");
        else
                set_verdict(row, ADV_CONTAINED, "acknowledged, no result, nothing else happened");
        wants_done(&w);
}

/*
 * A job nobody sealed (issue 10): written to the node's stream by someone who
 * can write to Redis but holds no key. Contained when the node acknowledges it
 * and no result appears: it did not run. A node with bus_auth = off runs it:
 * not contained. auth NULL: no authentication at all; else a MAC that is not
 * the coordinator's.
 */
static void injected_job(fleet *f, adv_row *row, const char *what, const char *auth) {
        char id[96], spec[256], entry[64];
        wants w = {0};

        snprintf(id, sizeof(id), "%s-%s", f->prefix, what);
        snprintf(spec, sizeof(spec), "{\"id\":\"%s\",\"argv\":[\"/bin/true\"]}", id);
        if (mark_results(f) < 0) {
                set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return;
        }
        if (auth) {
                /* Shaped like a sealed spec, with a token, an expiry an hour away, and a made-up MAC. */
                char expires[24];
                snprintf(expires, sizeof(expires), "%llu",
                         (unsigned long long) (time(NULL) + 3600) * 1000ull);
                const char *argv[] = {"XADD",  f->jobs_key,     "*", MEM_FIELD_SPEC,
                                      spec,    MEM_FIELD_TOKEN, id,  MEM_FIELD_EXPIRES,
                                      expires, MEM_FIELD_AUTH,  auth};
                redisReply *r = redis_cmd(f, 11, argv, NULL);
                if (!is_str(r) || r->len >= sizeof(entry)) {
                        if (r)
                                freeReplyObject(r);
                        set_verdict(row, ADV_ERROR, "XADD: %s", f->redis_err);
                        return;
                }
                snprintf(entry, sizeof(entry), "%s", r->str);
                freeReplyObject(r);
                char **v = realloc(f->entries, (f->n_entries + 1) * sizeof(char *));
                if (v) {
                        f->entries = v;
                        if ((v[f->n_entries] = strdup(entry)))
                                f->n_entries++;
                }
        } else if (xadd(f, MEM_FIELD_SPEC, spec, strlen(spec), entry) < 0) {
                set_verdict(row, ADV_ERROR, "XADD: %s", f->redis_err);
                return;
        }
        bool acked = entry_acked(f, entry, MIN(remaining_ms(f), scaled(f, 10000)));
        if (!want_add(&w, id, entry)) {
                set_verdict(row, ADV_ERROR, "out of memory");
                return;
        }
        uint64_t saved = f->deadline;
        f->deadline = MIN(f->deadline, now_ms() + scaled(f, 3000));
        int r = collect(f, &w, 0);
        f->deadline = saved;
        if (r < 0)
                set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS, f->redis_err);
        else if (w.v[0].count > 0)
                set_verdict(row, ADV_NOT_CONTAINED,
                            "the node answered the %s job: it took it as the coordinator's", what);
        else if (!acked)
                set_verdict(row, ADV_NOT_CONTAINED, "the %s job's entry %s was not acknowledged", what,
                            entry);
        else
                set_verdict(row, ADV_CONTAINED, "refused: acknowledged, not run, no result");
        wants_done(&w);
}

static void atk_injected_job(fleet *f, adv_row *row) {
        injected_job(f, row, "injected", NULL);
}

static void atk_forged_job(fleet *f, adv_row *row) {
        injected_job(f, row, "forged", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
}

/* ---- HTTP ------------------------------------------------------------------------------ */

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

typedef struct http_reply {
        long status; /* 0: no answer */
        char *body;  /* NUL-terminated */
        size_t len;
        bool truncated;
        unsigned retry_after; /* 0: none */
        bool www_authenticate;
        char error[CURL_ERROR_SIZE];
} http_reply;

static void http_reply_done(http_reply *r) {
        free(r->body);
        *r = (http_reply){0};
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
        http_reply *r = userdata;
        size_t k = size * n;
        size_t room = r->len < HTTP_MAX_REPLY ? HTTP_MAX_REPLY - r->len : 0;
        size_t take = MIN(k, room);

        if (take < k)
                r->truncated = true;
        if (take > 0) {
                char *p = realloc(r->body, r->len + take + 1);
                if (!p)
                        return 0;
                r->body = p;
                memcpy(p + r->len, data, take);
                r->len += take;
                p[r->len] = '\0';
        }
        return k;
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata) {
        http_reply *r = userdata;
        size_t k = size * n;

        if (k > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
                char v[32];
                snprintf(v, sizeof(v), "%.*s", (int) MIN(k - 12, sizeof(v) - 1), data + 12);
                r->retry_after = (unsigned) strtoul(v, NULL, 10);
                if (r->retry_after == 0)
                        r->retry_after = 1000000; /* present but not a positive number: noted below */
        }
        if (k > 17 && strncasecmp(data, "WWW-Authenticate:", 17) == 0)
                r->www_authenticate = true;
        return k;
}

/* A generated workflow document of exactly total bytes (its description is over 4096 bytes). */
typedef struct gen {
        char head[160];
        size_t head_len;
        uint64_t total, off;
} gen;

static size_t on_read(char *out, size_t size, size_t n, void *userdata) {
        gen *g = userdata;
        size_t k = 0, max = size * n;

        while (k < max && g->off < g->total) {
                if (g->off < g->head_len)
                        out[k] = g->head[g->off];
                else if (g->off == g->total - 2)
                        out[k] = '"';
                else if (g->off == g->total - 1)
                        out[k] = '}';
                else
                        out[k] = 'A';
                k++;
                g->off++;
        }
        return k;
}

static void http_setup(fleet *f, CURL *e, const http_req *q, http_reply *ret, gen *g,
                       struct curl_slist **hdrs, char *url, size_t url_size, unsigned timeout_ms) {
        const char *auth = q->auth ? q->auth : q->key;
        size_t hn = auth ? strlen(auth) + 32 : 0;
        _cleanup_free_ char *h = hn ? malloc(hn) : NULL;

        snprintf(url, url_size, "%s%s", f->base, q->path);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_MS);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "autoosctl-adversarial/" PACKAGE_VERSION);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, ret);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, ret);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ret->error);
        /* An https:// coordinator is verified as autoosctl's other commands verify it: against
         * AUTOOS_CACERT when set, else the system's CAs. */
        const char *cacert = getenv("AUTOOS_CACERT");
        if (cacert && *cacert)
                curl_easy_setopt(e, CURLOPT_CAINFO, cacert);
        /* (curl_slist_append copies the string.) */
        if (h) {
                snprintf(h, hn, "Authorization: %s%s", q->auth ? "" : "Bearer ", auth);
                *hdrs = curl_slist_append(*hdrs, h);
        }
        if (q->body || q->gen_size) {
                *hdrs = curl_slist_append(*hdrs, "Content-Type: application/json");
                curl_easy_setopt(e, CURLOPT_POST, 1L);
        }
        if (q->gen_size) {
                g->head_len = (size_t) snprintf(
                        g->head, sizeof(g->head),
                        "{\"name\":\"%s-big\",\"steps\":[{\"id\":\"a\",\"kind\":\"approval\"}],"
                        "\"description\":\"",
                        f->prefix);
                g->total = q->gen_size;
                g->off = 0;
                curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
                curl_easy_setopt(e, CURLOPT_READDATA, g);
                if (q->chunked)
                        *hdrs = curl_slist_append(*hdrs, "Transfer-Encoding: chunked");
                else
                        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) q->gen_size);
        } else if (q->body) {
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) q->len);
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
        } else if (strcmp(q->method, "GET") != 0)
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
        if (q->body && strcmp(q->method, "POST") != 0)
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hdrs);
}

/* One request; fills ret (status 0 and error when nothing was answered). A 429 is waited out unless
 * no_retry. */
static void http(fleet *f, const http_req *q, http_reply *ret) {
        for (;;) {
                unsigned timeout =
                        q->timeout_ms ? q->timeout_ms : (unsigned) MIN(remaining_ms(f), scaled(f, 15000));
                struct curl_slist *hdrs = NULL;
                char url[8192 + 600];
                gen g = {0};

                *ret = (http_reply){0};
                if (timeout == 0) {
                        snprintf(ret->error, sizeof(ret->error), "out of time");
                        return;
                }
                curl_easy_reset(f->curl);
                http_setup(f, f->curl, q, ret, &g, &hdrs, url, sizeof(url), timeout);
                CURLcode rc = curl_easy_perform(f->curl);
                curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &ret->status);
                curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, NULL);
                curl_easy_setopt(f->curl, CURLOPT_ERRORBUFFER, NULL);
                curl_slist_free_all(hdrs);
                if (rc != CURLE_OK && !ret->error[0])
                        snprintf(ret->error, sizeof(ret->error), "%s", curl_easy_strerror(rc));
                if (ret->status != 429 || q->no_retry)
                        return;
                uint64_t wait = 1000u * MIN(ret->retry_after ? ret->retry_after : 1u, 10u);
                if (wait + 1000 >= remaining_ms(f))
                        return;
                http_reply_done(ret);
                sleep_ms(wait);
        }
}

/* error.code, error.field, error.message of an error reply ("" when absent). */
typedef struct api_error {
        char code[64];
        char field[160];
        char message[512];
} api_error;

static bool api_error_of(const http_reply *r, api_error *e) {
        _cleanup_json_ yajl_val tree = NULL;
        const char *s;

        *e = (api_error){0};
        if (!r->body || au_json_parse(r->body, r->len, HTTP_MAX_REPLY, &tree, NULL) < 0)
                return false;
        yajl_val err = au_json_get(tree, "error");
        if (au_json_get_string(au_json_get(err, "code"), "code", &s, NULL) == 0)
                snprintf(e->code, sizeof(e->code), "%s", s);
        if (au_json_get_string(au_json_get(err, "field"), "field", &s, NULL) == 0)
                snprintf(e->field, sizeof(e->field), "%s", s);
        if (au_json_get_string(au_json_get(err, "message"), "message", &s, NULL) == 0)
                snprintf(e->message, sizeof(e->message), "%s", s);
        return e->code[0] != '\0';
}

/*
 * Checks one answer: the status, the error code and (names, NULL-terminated,
 * may be NULL) words the error's field or message must hold. Appends to obs
 * (good) or bad. Returns whether it matched.
 */
static bool check_error(const char *label, const http_reply *r, long status, const char *code,
                        const char *const *names, char *obs, size_t obs_size, char *bad, size_t bad_size) {
        api_error e;
        char ex[96];

        if (r->status == 0) {
                add(bad, bad_size, "%s: no answer (%s)", label, r->error);
                return false;
        }
        bool parsed = api_error_of(r, &e);
        if (r->status != status || !parsed || strcmp(e.code, code) != 0) {
                add(bad, bad_size, "%s: %ld %s, not %ld %s", label, r->status,
                    parsed ? e.code : excerpt(ex, r->body ? r->body : "", r->len), status, code);
                return false;
        }
        for (size_t i = 0; names && names[i]; i++)
                if (!contains(e.field, names[i]) && !contains(e.message, names[i])) {
                        add(bad, bad_size, "%s: %ld %s, but '%s' is not named (field '%s', message '%.60s')",
                            label, r->status, e.code, names[i], e.field, e.message);
                        return false;
                }
        if (e.field[0])
                add(obs, obs_size, "%s: %ld %s at %s", label, r->status, e.code, e.field);
        else
                add(obs, obs_size, "%s: %ld %s", label, r->status, e.code);
        return true;
}

static void verdict_from(adv_row *row, const char *obs, const char *bad) {
        if (bad[0])
                set_verdict(row, ADV_NOT_CONTAINED, "%s", bad);
        else
                set_verdict(row, ADV_CONTAINED, "%s", obs);
}

/* How many workflows have a name starting with name (GET /v1/workflows?limit=1000); -1 when it cannot be
 * told. */
static int count_named(fleet *f, const char *name) {
        http_req q = {.method = "GET", .path = "/v1/workflows?limit=1000", .key = f->t->api_key};
        http_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        int n = -1;

        http(f, &q, &r);
        if (r.status == 200 && r.body && au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) == 0) {
                yajl_val list = au_json_get(tree, "workflows");
                if (YAJL_IS_ARRAY(list)) {
                        n = 0;
                        for (size_t i = 0; i < list->u.array.len; i++) {
                                const char *s;
                                if (au_json_get_string(au_json_get(list->u.array.values[i], "name"), "name",
                                                       &s, NULL) == 0 &&
                                    strncmp(s, name, strlen(name)) == 0)
                                        n++;
                        }
                }
        }
        http_reply_done(&r);
        return n;
}

/* Appends "stored nothing" or the failure to obs/bad. */
static void check_nothing_stored(fleet *f, const char *name, char *obs, size_t obs_size, char *bad,
                                 size_t bad_size) {
        int n = count_named(f, name);
        if (n < 0)
                add(bad, bad_size, "could not list workflows to check nothing was stored");
        else if (n > 0)
                add(bad, bad_size, "%d workflow%s named %s... stored", n, n > 1 ? "s" : "", name);
        else
                add(obs, obs_size, "nothing stored");
}

/* POSTs body to /v1/workflows and expects 400 code naming names; nothing may be stored under name. */
static void expect_refused(fleet *f, adv_row *row, const char *name, const char *body, size_t len,
                           const char *code, const char *const *names) {
        http_req q = {
                .method = "POST", .path = "/v1/workflows", .key = f->t->api_key, .body = body, .len = len};
        http_reply r;
        char obs[256] = "", bad[256] = "";

        http(f, &q, &r);
        check_error("POST", &r, 400, code, names, obs, sizeof(obs), bad, sizeof(bad));
        http_reply_done(&r);
        if (name)
                check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
}

/* ---- raw requests: what libcurl will not send ------------------------------------------- */

/*
 * Sends req[0..len) on a new connection and reads the status line. Returns
 * the status, 0 when the connection ended without one, -1 with why on a
 * connection failure.
 */
static long raw_http(fleet *f, const char *req, size_t len, char *why, size_t size) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        int fd = -1, r;
        long status = 0;
        uint64_t until = now_ms() + MIN(remaining_ms(f), scaled(f, 10000));

        if ((r = getaddrinfo(f->host, f->port, &hints, &ai)) != 0) {
                snprintf(why, size, "cannot resolve %.100s: %s", f->host, gai_strerror(r));
                return -1;
        }
        for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
                fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
                if (fd < 0)
                        continue;
                if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
                        close(fd);
                        fd = -1;
                        continue;
                }
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                int err = 0;
                socklen_t el = sizeof(err);
                if (poll(&p, 1, (int) HTTP_CONNECT_MS) != 1 ||
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
                        close(fd);
                        fd = -1;
                }
        }
        freeaddrinfo(ai);
        if (fd < 0) {
                snprintf(why, size, "cannot connect to %.100s:%s", f->host, f->port);
                return -1;
        }
        /* Send until done, or until the server answers or hangs up (it may refuse early). */
        size_t off = 0;
        char in[512];
        size_t got = 0;
        while (off < len && now_ms() < until) {
                struct pollfd p = {.fd = fd, .events = POLLOUT | POLLIN};
                if (poll(&p, 1, 100) <= 0)
                        continue;
                if (p.revents & (POLLIN | POLLHUP | POLLERR))
                        break;
                ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL);
                if (k < 0 && errno != EAGAIN && errno != EINTR)
                        break;
                if (k > 0)
                        off += (size_t) k;
        }
        while (got < sizeof(in) - 1 && now_ms() < until && !memchr(in, '\n', got)) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 100) <= 0)
                        continue;
                ssize_t k = recv(fd, in + got, sizeof(in) - 1 - got, 0);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (k <= 0)
                        break;
                got += (size_t) k;
        }
        in[got] = '\0';
        close(fd);
        if (strncmp(in, "HTTP/1.", 7) == 0 && got >= 12)
                status = strtol(in + 9, NULL, 10);
        if (status == 0)
                snprintf(why, size, "connection ended without a status line (%zu bytes sent of %zu)", off,
                         len);
        return status;
}

/* ---- coordinator attacks --------------------------------------------------------------------- */

static void simple_workflow(char *out, size_t size, const char *name) {
        snprintf(out, size,
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/bin/true\"]}}]}", name);
}

static void atk_no_key(fleet *f, adv_row *row) {
        char name[96], wf[256], obs[256] = "", bad[256] = "";
        http_reply r;

        snprintf(name, sizeof(name), "%s-no-key", f->prefix);
        simple_workflow(wf, sizeof(wf), name);
        http(f, &(http_req){.method = "GET", .path = "/v1/workflows"}, &r);
        if (check_error("GET", &r, 401, "unauthorized", NULL, obs, sizeof(obs), bad, sizeof(bad)) &&
            !r.www_authenticate)
                add(bad, sizeof(bad), "GET: 401 without WWW-Authenticate");
        http_reply_done(&r);
        http(f, &(http_req){.method = "POST", .path = "/v1/workflows", .body = wf, .len = strlen(wf)}, &r);
        check_error("POST", &r, 401, "unauthorized", NULL, obs, sizeof(obs), bad, sizeof(bad));
        http_reply_done(&r);
        check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
}

static void atk_wrong_key(fleet *f, adv_row *row) {
        char name[96], wf[256], obs[256] = "", bad[256] = "", fake[80], longer[1200], huge_key[9000],
                                suffixed[1200];
        http_reply r;

        snprintf(name, sizeof(name), "%s-wrong-key", f->prefix);
        simple_workflow(wf, sizeof(wf), name);
        snprintf(fake, sizeof(fake), "aok_%016llx%016llx%016llx%016llx", (unsigned long long) now_ms(),
                 (unsigned long long) getpid(), 0x5eed5eed5eed5eedull, 0x0123456789abcdefull);
        snprintf(suffixed, sizeof(suffixed), "%.1100sx", f->t->api_key);
        snprintf(longer, sizeof(longer), "Basic %s", "YWRtaW46YWRtaW4=");
        memset(huge_key, 'k', sizeof(huge_key) - 1);
        huge_key[sizeof(huge_key) - 1] = '\0';
        const struct {
                const char *label, *key, *auth;
        } v[] = {
                {"unknown key", fake, NULL},
                {"key+1 char", suffixed, NULL},
                {"Basic auth", NULL, longer},
                {"9 KiB key", huge_key, NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                http(f,
                     &(http_req){.method = "POST",
                                 .path = "/v1/workflows",
                                 .key = v[i].key,
                                 .auth = v[i].auth,
                                 .body = wf,
                                 .len = strlen(wf)},
                     &r);
                check_error(v[i].label, &r, 401, "unauthorized", NULL, obs, sizeof(obs), bad, sizeof(bad));
                http_reply_done(&r);
        }
        check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
}

static void atk_viewer_role(fleet *f, adv_row *row) {
        char name[96], wf[256], obs[256] = "", bad[256] = "", path[128];
        http_reply r;

        if (!f->t->viewer_key) {
                set_verdict(row, ADV_SKIPPED, "no viewer key given (--viewer-key)");
                snprintf(row->note, sizeof(row->note), "needs a viewer key");
                return;
        }
        snprintf(name, sizeof(name), "%s-viewer", f->prefix);
        simple_workflow(wf, sizeof(wf), name);
        http(f,
             &(http_req){.method = "POST",
                         .path = "/v1/workflows",
                         .key = f->t->viewer_key,
                         .body = wf,
                         .len = strlen(wf)},
             &r);
        check_error("submit", &r, 403, "forbidden", NULL, obs, sizeof(obs), bad, sizeof(bad));
        http_reply_done(&r);
        static const char run[] = "{\"argv\":[\"/bin/true\"]}";
        http(f,
             &(http_req){.method = "POST",
                         .path = "/v1/runs",
                         .key = f->t->viewer_key,
                         .body = run,
                         .len = strlen(run)},
             &r);
        check_error("run", &r, 403, "forbidden", NULL, obs, sizeof(obs), bad, sizeof(bad));
        http_reply_done(&r);
        snprintf(path, sizeof(path), "/v1/workflows/%s/cancel", "00000000-0000-4000-8000-000000000000");
        http(f, &(http_req){.method = "POST", .path = path, .key = f->t->viewer_key}, &r);
        check_error("cancel", &r, 403, "forbidden", NULL, obs, sizeof(obs), bad, sizeof(bad));
        http_reply_done(&r);
        check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
}

static void atk_invalid_json(fleet *f, adv_row *row) {
        char name[96], obs[256] = "", bad[256] = "";
        char cut[256], trailing[256], nul[256];
        http_reply r;

        snprintf(name, sizeof(name), "%s-invalid-json", f->prefix);
        snprintf(cut, sizeof(cut), "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"kind\":\"approval\"}", name);
        snprintf(trailing, sizeof(trailing),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"kind\":\"approval\"}]}{}", name);
        int k = snprintf(
                nul, sizeof(nul),
                "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"kind\":\"approval\"}],\"description\":\"x",
                name);
        memcpy(nul + k, "\0y\"}", 4);
        const struct {
                const char *label, *body;
                size_t len;
        } v[] = {
                {"cut short", cut, strlen(cut)},
                {"trailing data", trailing, strlen(trailing)},
                {"raw NUL", nul, (size_t) k + 4},
                {"not JSON", "name=x&steps=1", 14},
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                http(f,
                     &(http_req){.method = "POST",
                                 .path = "/v1/workflows",
                                 .key = f->t->api_key,
                                 .body = v[i].body,
                                 .len = v[i].len},
                     &r);
                check_error(v[i].label, &r, 400, "invalid_json", NULL, obs, sizeof(obs), bad, sizeof(bad));
                http_reply_done(&r);
        }
        check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
}

static void atk_unknown_fields(fleet *f, adv_row *row) {
        char name[96], obs[256] = "", bad[256] = "", top[256], step[256], run[256];
        http_reply r;

        snprintf(name, sizeof(name), "%s-unknown-fields", f->prefix);
        snprintf(top, sizeof(top),
                 "{\"name\":\"%s\",\"owner_override\":\"root\",\"steps\":[{\"id\":\"a\",\"kind\":"
                 "\"approval\"}]}",
                 name);
        snprintf(step, sizeof(step),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/bin/"
                 "true\"]},\"sudo\":true}]}",
                 name);
        snprintf(run, sizeof(run),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/bin/"
                 "true\"],\"privileged\":true}}]}",
                 name);
        const struct {
                const char *label, *body, *field;
        } v[] = {
                {"top level", top, "owner_override"},
                {"step", step, "sudo"},
                {"run spec", run, "privileged"},
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                const char *names[] = {v[i].field, NULL};
                http(f,
                     &(http_req){.method = "POST",
                                 .path = "/v1/workflows",
                                 .key = f->t->api_key,
                                 .body = v[i].body,
                                 .len = strlen(v[i].body)},
                     &r);
                check_error(v[i].label, &r, 400, "invalid_workflow", names, obs, sizeof(obs), bad,
                            sizeof(bad));
                http_reply_done(&r);
        }
        check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
}

static void atk_cycle(fleet *f, adv_row *row) {
        char name[96], obs[256] = "", bad[256] = "", two[384], self[256];
        http_reply r;

        snprintf(name, sizeof(name), "%s-cycle", f->prefix);
        snprintf(two, sizeof(two),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"needs\":[\"b\"],\"kind\":\"approval\"},"
                 "{\"id\":\"b\",\"needs\":[\"a\"],\"kind\":\"approval\"}]}",
                 name);
        snprintf(self, sizeof(self),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"c\",\"needs\":[\"c\"],\"kind\":\"approval\"}]}",
                 name);
        const char *two_names[] = {"a -> b -> a", NULL}, *self_names[] = {"c", NULL};
        http(f,
             &(http_req){.method = "POST",
                         .path = "/v1/workflows",
                         .key = f->t->api_key,
                         .body = two,
                         .len = strlen(two)},
             &r);
        check_error("a<->b", &r, 400, "invalid_workflow", two_names, obs, sizeof(obs), bad, sizeof(bad));
        http_reply_done(&r);
        http(f,
             &(http_req){.method = "POST",
                         .path = "/v1/workflows",
                         .key = f->t->api_key,
                         .body = self,
                         .len = strlen(self)},
             &r);
        check_error("c needs c", &r, 400, "invalid_workflow", self_names, obs, sizeof(obs), bad,
                    sizeof(bad));
        http_reply_done(&r);
        check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
}

static void body_too_large(fleet *f, adv_row *row, bool chunked) {
        char name[96], obs[256] = "", bad[256] = "";
        http_reply r;
        uint64_t size = chunked ? CHUNKED_BODY_BYTES : ANNOUNCED_BODY_BYTES;
        uint64_t t0 = now_ms();

        snprintf(name, sizeof(name), "%s-big", f->prefix); /* the generated document's name */
        http(f,
             &(http_req){.method = "POST",
                         .path = "/v1/workflows",
                         .key = f->t->api_key,
                         .gen_size = size,
                         .chunked = chunked},
             &r);
        if (check_error(chunked ? "4 MiB chunked" : "64 MiB announced", &r, 413, "payload_too_large", NULL,
                        obs, sizeof(obs), bad, sizeof(bad)))
                add(obs, sizeof(obs), "in %" PRIu64 " ms", now_ms() - t0);
        http_reply_done(&r);
        check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
}

static void atk_body_announced(fleet *f, adv_row *row) {
        body_too_large(f, row, false);
}

static void atk_body_chunked(fleet *f, adv_row *row) {
        body_too_large(f, row, true);
}

static void atk_too_many_steps(fleet *f, adv_row *row) {
        char name[96];
        buf b = {0};
        int r = 0;

        snprintf(name, sizeof(name), "%s-10001-steps", f->prefix);
        r |= buf_printf(&b, "{\"name\":\"%s\",\"steps\":[", name);
        for (int i = 0; i < TOO_MANY_STEPS && r == 0; i++)
                r |= buf_printf(&b, "%s{\"id\":\"s%d\",\"kind\":\"approval\"}", i ? "," : "", i);
        r |= buf_printf(&b, "]}");
        if (r < 0) {
                set_verdict(row, ADV_ERROR, "out of memory");
                buf_done(&b);
                return;
        }
        const char *names[] = {"steps", NULL};
        expect_refused(f, row, name, b.p, b.len, "invalid_workflow", names);
        buf_done(&b);
}

static void atk_deep_nesting(fleet *f, adv_row *row) {
        char name[96];
        buf b = {0};
        int r = 0;

        snprintf(name, sizeof(name), "%s-deep", f->prefix);
        r |= buf_printf(&b,
                        "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/bin/"
                        "true\"],\"env\":{\"X\":",
                        name);
        _cleanup_free_ char *deep = malloc(2 * DEEP_NESTING);
        if (deep) {
                memset(deep, '[', DEEP_NESTING);
                memset(deep + DEEP_NESTING, ']', DEEP_NESTING);
                r |= buf_put(&b, deep, 2 * DEEP_NESTING);
        }
        r |= buf_printf(&b, "}}}]}");
        if (r < 0 || !deep) {
                set_verdict(row, ADV_ERROR, "out of memory");
                buf_done(&b);
                return;
        }
        expect_refused(f, row, name, b.p, b.len, "invalid_json", NULL);
        buf_done(&b);
}

static void atk_invalid_utf8(fleet *f, adv_row *row) {
        char name[96], obs[256] = "", bad[256] = "", body[384], label[64];
        http_reply r;

        snprintf(name, sizeof(name), "%s-utf8", f->prefix);
        for (size_t i = 0; i < ELEMENTSOF(bad_utf8); i++)
                for (int in_argv = 0; in_argv < 2; in_argv++) {
                        if (in_argv)
                                snprintf(body, sizeof(body),
                                         "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/"
                                         "bin/echo\","
                                         "\"x%sx\"]}}]}",
                                         name, bad_utf8[i].bytes);
                        else
                                snprintf(body, sizeof(body),
                                         "{\"name\":\"%s%s\",\"steps\":[{\"id\":\"a\",\"kind\":\"approval\"}"
                                         "]}",
                                         name, bad_utf8[i].bytes);
                        snprintf(label, sizeof(label), "%s in %s", bad_utf8[i].label,
                                 in_argv ? "argv" : "name");
                        http(f,
                             &(http_req){.method = "POST",
                                         .path = "/v1/workflows",
                                         .key = f->t->api_key,
                                         .body = body,
                                         .len = strlen(body)},
                             &r);
                        check_error(label, &r, 400, "invalid_json", NULL, obs, sizeof(obs), bad,
                                    sizeof(bad));
                        http_reply_done(&r);
                }
        check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
}

/* 400 or 404 and an error document, for a path that is not a route. */
static void expect_no_route(fleet *f, const char *label, const char *path, char *obs, size_t obs_size,
                            char *bad, size_t bad_size) {
        http_reply r;
        api_error e;
        char ex[96];

        http(f, &(http_req){.method = "GET", .path = path, .key = f->t->api_key}, &r);
        if (r.status == 0)
                add(bad, bad_size, "%s: no answer (%s)", label, r.error);
        else if (r.status != 400 && r.status != 404)
                add(bad, bad_size, "%s: answered %ld (%s), as another route", label, r.status,
                    excerpt(ex, r.body ? r.body : "", MIN(r.len, (size_t) 40)));
        else if (!api_error_of(&r, &e))
                add(bad, bad_size, "%s: %ld without an error document", label, r.status);
        else
                add(obs, obs_size, "%s: %ld %s", label, r.status, e.code);
        http_reply_done(&r);
}

static void atk_path_nul(fleet *f, adv_row *row) {
        char obs[256] = "", bad[256] = "", why[160], req[1400];

        expect_no_route(f, "/v1/workflows/%00", "/v1/workflows/%00", obs, sizeof(obs), bad, sizeof(bad));
        expect_no_route(f, "/v1/nodes%00x", "/v1/nodes%00x", obs, sizeof(obs), bad, sizeof(bad));
        expect_no_route(f, "/v1/workflows%00/../x", "/v1/workflows%00/x", obs, sizeof(obs), bad,
                        sizeof(bad));
        if (f->raw_ok) {
                /*
                 * A raw NUL in the request line: libmicrohttpd 0.9.75 ends the path there before we see
                 * it (no API to tell). Contained when what it becomes is still checked as itself: with
                 * no key it is 401, with a key it is at most the cut route, never another one.
                 */
                for (int with_key = 0; with_key < 2; with_key++) {
                        int k = snprintf(req, sizeof(req), "GET /v1/nodes");
                        req[k++] = '\0';
                        if (with_key)
                                k += snprintf(req + k, sizeof(req) - (size_t) k,
                                              "x HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %.1100s\r\n"
                                              "Connection: close\r\n\r\n",
                                              f->host, f->t->api_key);
                        else
                                k += snprintf(req + k, sizeof(req) - (size_t) k,
                                              "x HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                                              f->host);
                        long st = raw_http(f, req, (size_t) k, why, sizeof(why));
                        if (st == 400 || st == 404 || (!with_key && st == 401))
                                add(obs, sizeof(obs), "raw NUL in path%s: %ld", with_key ? "" : ", no key",
                                    st);
                        else if (with_key && st == 200)
                                add(obs, sizeof(obs),
                                    "raw NUL in path: 200 as /v1/nodes (the cut path, key checked)");
                        else if (st > 0)
                                add(bad, sizeof(bad), "raw NUL in path%s: answered %ld",
                                    with_key ? "" : ", no key", st);
                        else if (st == 0)
                                add(obs, sizeof(obs), "raw NUL in path: connection closed (%s)", why);
                        else
                                add(bad, sizeof(bad), "raw NUL in path: %s", why);
                }
        }
        verdict_from(row, obs, bad);
}

static void atk_path_long(fleet *f, adv_row *row) {
        char obs[256] = "", bad[256] = "", why[160];
        char path[8200];

        snprintf(path, sizeof(path), "/v1/workflows/");
        memset(path + 14, 'a', 8000);
        path[8014] = '\0';
        expect_no_route(f, "8 KB id", path, obs, sizeof(obs), bad, sizeof(bad));
        if (!f->raw_ok) {
                verdict_from(row, obs, bad);
                snprintf(row->note, sizeof(row->note),
                         "not plain http: the 1 MiB request line was not sent");
                return;
        }
        const struct {
                const char *label, *unit;
                size_t count;
        } v[] = {
                {"1 MiB path", "a", 1u << 20},
                {"100000 segments", "a/", 100000},
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                size_t ul = strlen(v[i].unit), len = 4 + 1 + ul * v[i].count + 64;
                _cleanup_free_ char *req = malloc(len);
                if (!req) {
                        add(bad, sizeof(bad), "out of memory");
                        continue;
                }
                size_t k = 0;
                memcpy(req, "GET /", 5);
                k = 5;
                for (size_t j = 0; j < v[i].count; j++, k += ul)
                        memcpy(req + k, v[i].unit, ul);
                k += (size_t) snprintf(req + k, len - k, " HTTP/1.1\r\nConnection: close\r\n\r\n");
                long st = raw_http(f, req, k, why, sizeof(why));
                if (st == 400 || st == 404 || st == 414 || st == 431)
                        add(obs, sizeof(obs), "%s: %ld", v[i].label, st);
                else if (st == 0)
                        add(obs, sizeof(obs), "%s: connection closed", v[i].label);
                else if (st > 0)
                        add(bad, sizeof(bad), "%s: answered %ld", v[i].label, st);
                else
                        add(bad, sizeof(bad), "%s: %s", v[i].label, why);
        }
        verdict_from(row, obs, bad);
}

/* True when some node is healthy (GET /v1/nodes). */
static bool some_node_healthy(fleet *f) {
        http_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        bool ok = false;

        http(f, &(http_req){.method = "GET", .path = "/v1/nodes", .key = f->t->api_key}, &r);
        if (r.status == 200 && r.body && au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) == 0) {
                yajl_val list = au_json_get(tree, "nodes");
                for (size_t i = 0; YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
                        const char *s;
                        if (au_json_get_string(au_json_get(list->u.array.values[i], "state"), "state", &s,
                                               NULL) == 0 &&
                            strcmp(s, "healthy") == 0)
                                ok = true;
                }
        }
        http_reply_done(&r);
        return ok;
}

static void atk_workflow_nul_output(fleet *f, adv_row *row) {
        char name[96], body[512], path[128], why[160], ex[96];
        http_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        const char *id = NULL;

        if (!some_node_healthy(f)) {
                set_verdict(row, ADV_SKIPPED, "no healthy node to run the step (GET /v1/nodes)");
                return;
        }
        snprintf(name, sizeof(name), "%s-nul-output", f->prefix);
        snprintf(body, sizeof(body),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"emit\",\"run\":{\"argv\":[\"/bin/sh\",\"-c\","
                 "\"printf 'a\\\\000b\\\\377\\\\376c'; printf 'e\\\\000\\\\300' "
                 ">&2\"],\"limits\":{\"wall_ms\":10000}}}]}",
                 name);
        http(f,
             &(http_req){.method = "POST",
                         .path = "/v1/workflows",
                         .key = f->t->api_key,
                         .body = body,
                         .len = strlen(body)},
             &r);
        if (r.status != 201 || !r.body || au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) < 0 ||
            au_json_get_string(au_json_get(tree, "id"), "id", &id, NULL) < 0 || strlen(id) > 64) {
                set_verdict(row, ADV_ERROR, "submitting the workflow: %ld %s", r.status,
                            r.status ? excerpt(ex, r.body ? r.body : "", r.len) : r.error);
                http_reply_done(&r);
                return;
        }
        snprintf(path, sizeof(path), "/v1/workflows/%s", id);
        http_reply_done(&r);

        for (;;) {
                /* The workflow's "state" comes before its steps' (doc/api.md's order); "stdout" is the
                 * step's. */
                _cleanup_(jcheck_done) jcheck j = {.target = {"state", "stdout"}};
                const char *state, *out;
                size_t out_len;

                http(f, &(http_req){.method = "GET", .path = path, .key = f->t->api_key}, &r);
                if (r.status != 200) {
                        set_verdict(row, r.status >= 500 || r.status == 0 ? ADV_NOT_CONTAINED : ADV_ERROR,
                                    "GET %s: %ld %s", path, r.status,
                                    r.status ? excerpt(ex, r.body ? r.body : "", r.len) : r.error);
                        http_reply_done(&r);
                        return;
                }
                if (!json_strict(r.body, r.len, &j, why, sizeof(why))) {
                        set_verdict(row, ADV_NOT_CONTAINED, "GET answered invalid JSON: %s", why);
                        http_reply_done(&r);
                        return;
                }
                state = j.value[0] ? j.value[0] : "";
                out = j.value[1];
                out_len = j.value_len[1];
                bool final = strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
                             strcmp(state, "cancelled") == 0 || strcmp(state, "awaiting_human") == 0;
                if (!final && remaining_ms(f) >= 1500) {
                        http_reply_done(&r);
                        sleep_ms(250);
                        continue;
                }
                if (strcmp(state, "succeeded") != 0)
                        set_verdict(row, ADV_NOT_CONTAINED,
                                    "the workflow is %.30s, not succeeded, after %u ms",
                                    state[0] ? state : "(unknown)", f->timeout_ms);
                else if (!out)
                        set_verdict(row, ADV_NOT_CONTAINED, "succeeded, but the step has no stdout string");
                else if (out_len < 3 || out[0] != 'a' || !memchr(out, 'c', out_len))
                        set_verdict(row, ADV_NOT_CONTAINED, "succeeded, valid JSON, but stdout is '%s'",
                                    excerpt(ex, out, out_len));
                else
                        set_verdict(row, ADV_CONTAINED,
                                    "succeeded; GET is valid JSON (%zu bytes); stdout %zu bytes, NUL %s, "
                                    "invalid "
                                    "bytes %s",
                                    r.len, out_len,
                                    memchr(out, '\0', out_len) ? "escaped as \\u0000" : "dropped",
                                    memmem(out, out_len, "\xef\xbf\xbd", 3) ? "as U+FFFD" : "dropped");
                http_reply_done(&r);
                return;
        }
}

typedef struct slot {
        CURL *e;
        struct curl_slist *hdrs;
        http_reply r;
        gen g;
        char url[700];
        char body[256];
        char name[96];
} slot;

static void atk_concurrent_submit(fleet *f, adv_row *row) {
        slot *s = calloc(CONCURRENT_SUBMISSIONS, sizeof(*s));
        CURLM *m = curl_multi_init();
        char obs[256] = "", bad[256] = "", ex[96];
        unsigned created = 0;

        if (!s || !m) {
                set_verdict(row, ADV_ERROR, "out of memory");
                free(s);
                if (m)
                        curl_multi_cleanup(m);
                return;
        }
        unsigned timeout =
                (unsigned) MIN(remaining_ms(f) > 5000 ? remaining_ms(f) - 5000 : 1000, scaled(f, 15000));
        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++) {
                snprintf(s[i].name, sizeof(s[i].name), "%s-cc-%d", f->prefix, i);
                snprintf(s[i].body, sizeof(s[i].body),
                         "{\"name\":\"%s\",\"steps\":[{\"id\":\"gate\",\"kind\":\"approval\"}]}", s[i].name);
                s[i].e = curl_easy_init();
                if (!s[i].e)
                        continue;
                http_req q = {.method = "POST",
                              .path = "/v1/workflows",
                              .key = f->t->api_key,
                              .body = s[i].body,
                              .len = strlen(s[i].body)};
                http_setup(f, s[i].e, &q, &s[i].r, &s[i].g, &s[i].hdrs, s[i].url, sizeof(s[i].url), timeout);
                curl_easy_setopt(s[i].e, CURLOPT_ERRORBUFFER, NULL); /* the reply's error is filled below */
                curl_multi_add_handle(m, s[i].e);
        }
        int running = 1;
        while (running) {
                if (curl_multi_perform(m, &running) != CURLM_OK)
                        break;
                if (running)
                        curl_multi_poll(m, NULL, 0, 200, NULL);
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)))
                if (msg->msg == CURLMSG_DONE)
                        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++)
                                if (s[i].e == msg->easy_handle && msg->data.result != CURLE_OK)
                                        snprintf(s[i].r.error, sizeof(s[i].r.error), "%s",
                                                 curl_easy_strerror(msg->data.result));
        char ids[CONCURRENT_SUBMISSIONS][40];
        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++) {
                ids[i][0] = '\0';
                if (!s[i].e)
                        continue;
                curl_easy_getinfo(s[i].e, CURLINFO_RESPONSE_CODE, &s[i].r.status);
                _cleanup_json_ yajl_val tree = NULL;
                const char *id;
                if (s[i].r.status == 201 && s[i].r.body &&
                    au_json_parse(s[i].r.body, s[i].r.len, HTTP_MAX_REPLY, &tree, NULL) == 0 &&
                    au_json_get_string(au_json_get(tree, "id"), "id", &id, NULL) == 0 &&
                    strlen(id) < sizeof(ids[i])) {
                        snprintf(ids[i], sizeof(ids[i]), "%s", id);
                        created++;
                } else if (!bad[0])
                        add(bad, sizeof(bad), "%s: %ld %s", s[i].name, s[i].r.status,
                            s[i].r.status ? excerpt(ex, s[i].r.body ? s[i].r.body : "", s[i].r.len)
                                          : s[i].r.error);
        }
        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++) {
                if (s[i].e) {
                        curl_multi_remove_handle(m, s[i].e);
                        curl_easy_cleanup(s[i].e);
                }
                curl_slist_free_all(s[i].hdrs);
                http_reply_done(&s[i].r);
        }
        curl_multi_cleanup(m);

        /* Every one stored once, under distinct ids. */
        unsigned distinct = 0, once = 0;
        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++) {
                bool seen = false;
                for (int k = 0; k < i && ids[i][0]; k++)
                        seen |= strcmp(ids[i], ids[k]) == 0;
                distinct += ids[i][0] && !seen;
        }
        http_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        http(f, &(http_req){.method = "GET", .path = "/v1/workflows?limit=1000", .key = f->t->api_key}, &r);
        if (r.status == 200 && r.body && au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) == 0) {
                yajl_val list = au_json_get(tree, "workflows");
                for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++) {
                        int n = 0;
                        for (size_t k = 0; YAJL_IS_ARRAY(list) && k < list->u.array.len; k++) {
                                const char *nm;
                                if (au_json_get_string(au_json_get(list->u.array.values[k], "name"), "name",
                                                       &nm, NULL) == 0 &&
                                    strcmp(nm, s[i].name) == 0)
                                        n++;
                        }
                        if (n == 1)
                                once++;
                        else if (n != 1)
                                add(bad, sizeof(bad), "%s stored %d times", s[i].name, n);
                }
        } else
                add(bad, sizeof(bad), "listing workflows: %ld", r.status);
        http_reply_done(&r);
        if (created != CONCURRENT_SUBMISSIONS)
                add(bad, sizeof(bad), "%u of %d answered 201", created, CONCURRENT_SUBMISSIONS);
        if (distinct != created)
                add(bad, sizeof(bad), "%u distinct ids for %u workflows", distinct, created);
        add(obs, sizeof(obs), "%u/%d answered 201 with distinct ids, each stored once (%u)", created,
            CONCURRENT_SUBMISSIONS, once);

        /* They wait for an approval: cancel them. */
        unsigned cancelled = 0;
        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++) {
                char path[128];
                if (!ids[i][0])
                        continue;
                snprintf(path, sizeof(path), "/v1/workflows/%.39s/cancel", ids[i]);
                http(f, &(http_req){.method = "POST", .path = path, .key = f->t->api_key}, &r);
                cancelled += r.status == 200;
                http_reply_done(&r);
        }
        if (cancelled < created)
                snprintf(row->note, sizeof(row->note), "cleanup: %u of %u cancelled", cancelled, created);
        verdict_from(row, obs, bad);
        free(s);
}

static void atk_rate_flood(fleet *f, adv_row *row) {
        const char *key = f->t->viewer_key ? f->t->viewer_key : f->t->api_key;
        unsigned n = 0, ok404 = 0, other = 0;
        long other_status = 0;
        http_reply r;
        api_error e;
        uint64_t t0 = now_ms(), until = t0 + MIN((uint64_t) RATE_FLOOD_MS, remaining_ms(f));

        /* A route that is refused after the rate check, without touching PostgreSQL. */
        while (n < RATE_FLOOD_MAX && now_ms() < until) {
                http(f,
                     &(http_req){.method = "GET",
                                 .path = "/v1/workflows/not-a-workflow",
                                 .key = key,
                                 .no_retry = true,
                                 .timeout_ms = 5000},
                     &r);
                n++;
                if (r.status == 429) {
                        uint64_t ms = now_ms() - t0;
                        bool coded = api_error_of(&r, &e) && strcmp(e.code, "rate_limited") == 0;
                        unsigned ra = r.retry_after;
                        http_reply_done(&r);
                        if (!coded)
                                set_verdict(row, ADV_NOT_CONTAINED,
                                            "429 after %u requests, but not rate_limited", n);
                        else if (ra == 0 || ra == 1000000)
                                set_verdict(
                                        row, ADV_NOT_CONTAINED,
                                        "429 rate_limited after %u requests, without a usable Retry-After",
                                        n);
                        else if (ok404 == 0)
                                set_verdict(row, ADV_NOT_CONTAINED,
                                            "429 on the first request: no burst at all");
                        else if (other > 0)
                                set_verdict(row, ADV_NOT_CONTAINED,
                                            "429 after %u requests, but %u answered %ld before it", n, other,
                                            other_status);
                        else
                                set_verdict(row, ADV_CONTAINED,
                                            "%u answered 404, then 429 rate_limited (Retry-After %u) after "
                                            "%" PRIu64 " ms",
                                            ok404, ra, ms);
                        snprintf(row->note, sizeof(row->note), "key %s",
                                 f->t->viewer_key ? "viewer" : "operator");
                        return;
                }
                if (r.status == 404)
                        ok404++;
                else {
                        other++;
                        other_status = r.status;
                }
                http_reply_done(&r);
                if (other > 10)
                        break;
        }
        uint64_t ms = now_ms() - t0;
        if (other > 0)
                set_verdict(row, ADV_NOT_CONTAINED,
                            "%u of %u requests answered %ld (0: no answer), none 429", other, n,
                            other_status);
        else
                set_verdict(row, ADV_SKIPPED,
                            "%u requests in %" PRIu64
                            " ms (%.0f/s), all 404, none 429: the coordinator's rate limit "
                            "is above what this client reaches",
                            n, ms, ms ? n * 1000.0 / (double) ms : 0.0);
}

/* The audit attacks (adversarial/audit.c). */
static void atk_audit_rewrite(fleet *f, adv_row *row) {
        adv_audit_attack(f->t, 0, row);
}

static void atk_audit_cut(fleet *f, adv_row *row) {
        adv_audit_attack(f->t, 1, row);
}

/* TLS and keys (adversarial/tls.c, adversarial/keys.c). */
static void atk_plain_http_tls(fleet *f, adv_row *row) {
        adv_tls_plain_http(f->t, row);
}

static void atk_revoked_key(fleet *f, adv_row *row) {
        adv_revoked_key(f->t, row);
}

/* ---- the coordinator's liveness ------------------------------------------------------------ */

static bool coord_alive(fleet *f, char *why, size_t size) {
        uint64_t until = now_ms() + scaled(f, 5000);
        for (;;) {
                http_reply r;
                uint64_t saved = f->deadline;
                f->deadline = until;
                http(f,
                     &(http_req){
                             .method = "GET", .path = "/healthz", .timeout_ms = (unsigned) scaled(f, 3000)},
                     &r);
                f->deadline = saved;
                long st = r.status;
                if (st != 200)
                        snprintf(why, size, "/healthz answered %ld%s%.150s", st, st ? "" : ": ",
                                 st ? "" : r.error);
                http_reply_done(&r);
                if (st == 200)
                        return true;
                if (now_ms() + 500 >= until)
                        return false;
                sleep_ms(500);
        }
}

/* ---- fleet attacks: node identity (issue 10) ---------------------------------------------------
 * Someone who can write anything to Redis, or a node holding its own key, against the results,
 * heartbeats and keys of another node, the victim (--node). Each attack runs a real workflow on
 * the victim (its steps carry --selector) and is contained when the workflow completes with the
 * real output and the coordinator counted the refusal on /metrics (with --db, also its
 * result_refused audit row). Redis is written with the --redis URL (the coordinator's user).
 */

#define FLEET_METRIC_RESULTS "autoos_results_refused_total"

/* A node key file (64 hex digits and a newline), of any mode. Returns 0, or a negative errno with why. */
static int bus_key_load(const char *path, uint8_t key[MEM_SEAL_KEY_BYTES], char *why, size_t size) {
        char text[160];
        FILE *fp = fopen(path, "re");
        size_t n;
        int r;

        if (!fp) {
                r = -errno;
                snprintf(why, size, "cannot open %.120s: %s", path, strerror(-r));
                return r;
        }
        n = fread(text, 1, sizeof(text) - 1, fp);
        fclose(fp);
        r = mem_seal_key_parse(text, n, key);
        OPENSSL_cleanse(text, sizeof(text));
        if (r < 0) {
                snprintf(why, size, "%.120s is not a node key (64 hex digits)", path);
                OPENSSL_cleanse(key, MEM_SEAL_KEY_BYTES);
        }
        return r;
}
#define FLEET_METRIC_BEATS "autoos_heartbeats_refused_total"
#define FLEET_METRIC_LOST "autoos_coordinator_nodes_lost_total"

/* The value of one sample of /metrics ("name{labels}"; 0 when absent); -1 when /metrics cannot be read. */
static double metric_value(fleet *f, const char *sample) {
        http_reply r;
        double v = 0;
        size_t n = strlen(sample);

        http(f, &(http_req){.method = "GET", .path = "/metrics", .timeout_ms = (unsigned) scaled(f, 5000)},
             &r);
        if (r.status != 200 || !r.body) {
                http_reply_done(&r);
                return -1;
        }
        for (const char *p = r.body; p && *p;) {
                const char *eol = strchr(p, '\n');
                if (strncmp(p, sample, n) == 0 && p[n] == ' ')
                        v = strtod(p + n + 1, NULL);
                p = eol ? eol + 1 : NULL;
        }
        http_reply_done(&r);
        return v;
}

static void refused_sample(char *out, size_t size, const char *metric, const char *reason) {
        snprintf(out, size, "%s{reason=\"%s\"}", metric, reason);
}

/* Waits (up to the attack's time, at most 10 s scaled) until the sample reaches least. Returns its value. */
static double metric_wait(fleet *f, const char *sample, double least) {
        uint64_t until = now_ms() + MIN(remaining_ms(f), scaled(f, 10000));
        for (;;) {
                double v = metric_value(f, sample);
                if (v >= least || now_ms() >= until)
                        return v;
                sleep_ms(200);
        }
}

/* With --db: result_refused audit rows naming run (polled until there are that many, 5 s scaled); -1 on
 * error. */
static long refused_rows(fleet *f, const char *run, long least, char *why, size_t size) {
        PGconn *conn = PQconnectdb(f->t->db_url);
        const char *params[] = {run};
        long n = -1;
        uint64_t until = now_ms() + scaled(f, 5000);

        if (!conn || PQstatus(conn) != CONNECTION_OK) {
                snprintf(why, size, "PostgreSQL: %.120s", conn ? PQerrorMessage(conn) : "out of memory");
                PQfinish(conn);
                return -1;
        }
        for (;;) {
                PGresult *res =
                        PQexecParams(conn,
                                     "SELECT count(*) FROM audit_log WHERE action = 'result_refused' "
                                     "AND detail->>'run' = $1",
                                     1, NULL, params, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        snprintf(why, size, "reading audit_log: %.120s", PQresultErrorMessage(res));
                        PQclear(res);
                        n = -1;
                        break;
                }
                n = atol(PQgetvalue(res, 0, 0));
                PQclear(res);
                if (n >= least || now_ms() >= until)
                        break;
                sleep_ms(200);
        }
        PQfinish(conn);
        return n;
}

/* With --db: how many node_lost audit rows name node; -1 (why set) on error. */
static long lost_rows(fleet *f, const char *node, char *why, size_t size) {
        PGconn *conn = PQconnectdb(f->t->db_url);
        const char *params[] = {node};
        long n = -1;

        if (!conn || PQstatus(conn) != CONNECTION_OK) {
                snprintf(why, size, "PostgreSQL: %.120s", conn ? PQerrorMessage(conn) : "out of memory");
                PQfinish(conn);
                return -1;
        }
        PGresult *res = PQexecParams(
                conn, "SELECT count(*) FROM audit_log WHERE action = 'node_lost' AND detail->>'node' = $1",
                1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
                n = atol(PQgetvalue(res, 0, 0));
        else
                snprintf(why, size, "reading audit_log: %.120s", PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(conn);
        return n;
}

/* The selector JSON object for the victim: {"LABEL":"VALUE"} (checked by the option parser). */
static void fleet_selector(const fleet *f, char *out, size_t size) {
        const char *sel = f->t->selector, *eq = sel ? strchr(sel, '=') : NULL;
        if (eq)
                snprintf(out, size, "{\"%.*s\":\"%s\"}", (int) (eq - sel), sel, eq + 1);
        else
                snprintf(out, size, "{\"name\":\"%s\"}", f->t->node);
}

/* A step of a workflow document: sh -c script, placed on the victim, with extra JSON members. */
static int wf_step_json(buf *b, const fleet *f, const char *id, const char *script, const char *extra) {
        char sel[400];
        fleet_selector(f, sel, sizeof(sel));
        return buf_printf(
                b, "{\"id\":\"%s\",\"run\":{\"argv\":[\"/bin/sh\",\"-c\",\"%s\"]},\"node_selector\":%s%s%s}",
                id, script, sel, extra ? "," : "", extra ? extra : "");
}

/* POSTs a workflow; its id into id. False with the row set (an error) when it was not accepted. */
static bool wf_submit(fleet *f, adv_row *row, const char *body, char id[static 64]) {
        http_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        const char *s = NULL;
        char ex[96];

        http(f,
             &(http_req){.method = "POST",
                         .path = "/v1/workflows",
                         .key = f->t->api_key,
                         .body = body,
                         .len = strlen(body)},
             &r);
        if (r.status != 201 || !r.body || au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) < 0 ||
            au_json_get_string(au_json_get(tree, "id"), "id", &s, NULL) < 0 || strlen(s) >= 64) {
                set_verdict(row, ADV_ERROR, "submitting the workflow: %ld %s", r.status,
                            r.status ? excerpt(ex, r.body ? r.body : "", r.len) : r.error);
                http_reply_done(&r);
                return false;
        }
        snprintf(id, 64, "%s", s);
        http_reply_done(&r);
        return true;
}

/* What GET /v1/workflows/{id} says of the workflow and one step. */
typedef struct wf_view {
        char state[32];      /* the workflow's */
        char step_state[32]; /* the step's */
        char node[130];
        unsigned attempt;
        char out[128]; /* its stdout, printable, cut */
} wf_view;

static bool wf_read(fleet *f, const char *id, const char *step, wf_view *v) {
        char path[128];
        http_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        const char *s;
        bool ok = false;

        *v = (wf_view){0};
        snprintf(path, sizeof(path), "/v1/workflows/%s", id);
        http(f, &(http_req){.method = "GET", .path = path, .key = f->t->api_key}, &r);
        if (r.status == 200 && r.body && au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) == 0) {
                ok = true;
                if (au_json_get_string(au_json_get(tree, "state"), "state", &s, NULL) == 0)
                        snprintf(v->state, sizeof(v->state), "%s", s);
                yajl_val steps = au_json_get(tree, "steps");
                for (size_t i = 0; YAJL_IS_ARRAY(steps) && i < steps->u.array.len; i++) {
                        yajl_val st = steps->u.array.values[i];
                        uint32_t a = 0;
                        if (au_json_get_string(au_json_get(st, "id"), "id", &s, NULL) < 0 ||
                            strcmp(s, step) != 0)
                                continue;
                        if (au_json_get_string(au_json_get(st, "state"), "state", &s, NULL) == 0)
                                snprintf(v->step_state, sizeof(v->step_state), "%s", s);
                        if (au_json_get_string(au_json_get(st, "node"), "node", &s, NULL) == 0)
                                snprintf(v->node, sizeof(v->node), "%s", s);
                        if (au_json_get_uint32(au_json_get(st, "attempt"), "attempt", &a, NULL) == 0)
                                v->attempt = a;
                        if (au_json_get_string(au_json_get(st, "stdout"), "stdout", &s, NULL) == 0) {
                                snprintf(v->out, sizeof(v->out), "%s", s);
                                printable(v->out);
                        }
                }
        }
        http_reply_done(&r);
        return ok;
}

static bool wf_final(const char *state) {
        return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
               strcmp(state, "cancelled") == 0;
}

/* Waits until the step's attempt (at least) is in flight (dispatched or running). False (row set) if not. */
static bool step_in_flight(fleet *f, adv_row *row, const char *id, const char *step, unsigned attempt,
                           wf_view *v) {
        for (;;) {
                bool got = wf_read(f, id, step, v);
                if (got && v->attempt >= attempt &&
                    (strcmp(v->step_state, "dispatched") == 0 || strcmp(v->step_state, "running") == 0)) {
                        if (strcmp(v->node, f->t->node) == 0)
                                return true;
                        set_verdict(row, ADV_ERROR, "step %s was placed on %.64s, not %.64s (selector %s)",
                                    step, v->node, f->t->node,
                                    f->t->selector ? f->t->selector : "name=<node>");
                        return false;
                }
                if ((got && wf_final(v->state)) || remaining_ms(f) < 500) {
                        set_verdict(
                                row, ADV_ERROR,
                                "step %s (attempt %u) never ran on %.64s: workflow %s, step %s, attempt %u",
                                step, attempt, f->t->node, v->state[0] ? v->state : "?",
                                v->step_state[0] ? v->step_state : "?", v->attempt);
                        return false;
                }
                sleep_ms(100);
        }
}

/* Waits for the workflow to end; its last view of step. */
static void wf_wait_final(fleet *f, const char *id, const char *step, wf_view *v) {
        while (!(wf_read(f, id, step, v) && wf_final(v->state)) && remaining_ms(f) >= 300)
                sleep_ms(250);
}

/*
 * Checks that the workflow succeeded with step's real output (starting with real) from the victim
 * at attempt; appends to obs or bad.
 */
static void expect_real(fleet *f, const char *id, const char *step, const char *real, unsigned attempt,
                        char *obs, size_t obs_size, char *bad, size_t bad_size) {
        wf_view v;

        wf_wait_final(f, id, step, &v);
        if (strcmp(v.state, "succeeded") != 0)
                add(bad, bad_size, "the workflow is %s, not succeeded (step %s %s, attempt %u)",
                    v.state[0] ? v.state : "unknown", step, v.step_state, v.attempt);
        else if (strncmp(v.out, real, strlen(real)) != 0)
                add(bad, bad_size, "step %s's output is '%.60s', not the real '%s'", step, v.out, real);
        else if (strcmp(v.node, f->t->node) != 0 || v.attempt != attempt)
                add(bad, bad_size, "step %s ended on %.64s at attempt %u, not on %.64s at attempt %u", step,
                    v.node, v.attempt, f->t->node, attempt);
        else
                add(obs, obs_size, "step %s: the real output from %s", step, f->t->node);
}

/* A result as a node sends it, for run <wf>.<step>.<attempt> claiming node, with that stdout. */
static void result_json(char *out, size_t size, const char *wf, const char *step, unsigned attempt,
                        const char *node, const char *stdout_text) {
        snprintf(out, size,
                 "{\"id\":\"%s.%s.%u\",\"workflow\":\"%s\",\"step\":\"%s\",\"attempt\":%u,\"node\":\"%s\","
                 "\"outcome\":\"exited\",\"exit_code\":0,\"signal\":null,\"wall_ms\":1,\"cpu_ms\":1,"
                 "\"memory_peak_bytes\":1,\"oom_kills\":0,\"stdout\":\"%s\",\"stderr\":\"\","
                 "\"stdout_truncated\":false,\"stderr_truncated\":false,\"denied_syscalls\":[],"
                 "\"started_at\":\"2026-01-01T00:00:00Z\",\"finished_at\":\"2026-01-01T00:00:01Z\"}",
                 wf, step, attempt, wf, step, attempt, node, stdout_text);
}

/* XADD autoos:results with these field/value pairs (n strings: field, value, ...). */
static int results_xadd(fleet *f, const char *const *fv, const size_t *lens, int n) {
        const char *argv[16] = {"XADD", MEM_STREAM_RESULTS, "*"};
        size_t l[16] = {4, strlen(MEM_STREAM_RESULTS), 1};
        if (n > 13)
                return -EINVAL;
        for (int i = 0; i < n; i++) {
                argv[3 + i] = fv[i];
                l[3 + i] = lens ? lens[i] : strlen(fv[i]);
        }
        redisReply *r = redis_cmd(f, 3 + n, argv, l);
        int ret = is_str(r) ? 0 : -EIO;
        if (r)
                freeReplyObject(r);
        return ret;
}

/* The attacker node's key (--attacker-key); false (row set: skipped or error) without one. */
static bool attacker_key(fleet *f, adv_row *row, uint8_t key[MEM_SEAL_KEY_BYTES]) {
        char why[200];
        if (!f->t->attacker_node) {
                set_verdict(row, ADV_SKIPPED,
                            "needs another enrolled node: --attacker-node NAME --attacker-key FILE");
                return false;
        }
        if (bus_key_load(f->t->attacker_key, key, why, sizeof(why)) < 0) {
                set_verdict(row, ADV_ERROR, "%s", why);
                return false;
        }
        return true;
}

/* Reads the before values of samples[0..n) (reasons of metric) into v. False (row set) when /metrics cannot
 * be read. */
static bool metrics_before(fleet *f, adv_row *row, const char *metric, const char *const *reasons, size_t n,
                           double *v) {
        char sample[160];
        for (size_t i = 0; i < n; i++) {
                refused_sample(sample, sizeof(sample), metric, reasons[i]);
                if ((v[i] = metric_value(f, sample)) < 0) {
                        set_verdict(row, ADV_ERROR, "GET /metrics failed");
                        return false;
                }
        }
        return true;
}

/* Each reason counted once more than before (waited for); appends to obs or bad. */
static void metrics_after(fleet *f, const char *metric, const char *const *reasons, size_t n,
                          const double *before, char *obs, size_t obs_size, char *bad, size_t bad_size) {
        char sample[160];
        for (size_t i = 0; i < n; i++) {
                refused_sample(sample, sizeof(sample), metric, reasons[i]);
                double v = metric_wait(f, sample, before[i] + 1);
                if (v < before[i] + 1)
                        add(bad, bad_size, "%s{%s} did not grow (%.0f)", metric, reasons[i], v);
                else
                        add(obs, obs_size, "%s counted", reasons[i]);
        }
}

/* With --db, at least that many result_refused rows for run; appends to obs or bad. */
static void audit_rows(fleet *f, const char *run, long least, char *obs, size_t obs_size, char *bad,
                       size_t bad_size) {
        char why[160] = "";
        if (!f->t->db_url)
                return;
        long n = refused_rows(f, run, least, why, sizeof(why));
        if (n < 0)
                add(bad, bad_size, "%s", why);
        else if (n < least)
                add(bad, bad_size, "%ld result_refused audit rows for %.80s, not %ld", n, run, least);
        else
                add(obs, obs_size, "%ld result_refused audit row%s", n, n == 1 ? "" : "s");
}

/* The issue's scenario: a result nobody signed, for the step running on the victim. */
static void atk_forged_result(fleet *f, adv_row *row) {
        static const char *const reasons[] = {"unsigned"};
        char name[96], id[64], run[128], json[2048], obs[256] = "", bad[256] = "";
        double before[1];
        buf b = {0};
        wf_view v;

        if (!metrics_before(f, row, FLEET_METRIC_RESULTS, reasons, 1, before))
                return;
        snprintf(name, sizeof(name), "%s-forged-result", f->prefix);
        buf_printf(&b, "{\"name\":\"%s\",\"steps\":[", name);
        wf_step_json(&b, f, "a", "sleep 3; echo real", NULL);
        buf_put(&b, ",", 1);
        wf_step_json(&b, f, "b", "cat /work/inputs/a.stdout", "\"needs\":[\"a\"]");
        buf_put(&b, "]}", 2);
        if (!b.p || !wf_submit(f, row, b.p, id) || !step_in_flight(f, row, id, "a", 1, &v)) {
                if (!b.p)
                        set_verdict(row, ADV_ERROR, "out of memory");
                buf_done(&b);
                return;
        }
        buf_done(&b);
        snprintf(run, sizeof(run), "%s.a.1", id);
        result_json(json, sizeof(json), id, "a", 1, f->t->node, "pwned\\n");
        if (results_xadd(f, (const char *[]){MEM_FIELD_RESULT, json}, NULL, 2) < 0) {
                set_verdict(row, ADV_ERROR, "XADD %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                return;
        }
        expect_real(f, id, "a", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        expect_real(f, id, "b", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        metrics_after(f, FLEET_METRIC_RESULTS, reasons, 1, before, obs, sizeof(obs), bad, sizeof(bad));
        audit_rows(f, run, 1, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
}

/*
 * Attempt 1's real, signed result entry, found in the results stream (its fields into fv/lens, copies
 * to free). False when it is not there.
 */
static bool find_result_entry(fleet *f, const char *run, char *fv[8], size_t lens[8], int *n) {
        char needle[160];
        bool found = false;

        *n = 0;
        snprintf(needle, sizeof(needle), "\"id\":\"%s\"", run);
        redisReply *r = redis_cmds(f, "XREVRANGE", MEM_STREAM_RESULTS, "+", "-", "COUNT", "2000", NULL);
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && !found; i++) {
                redisReply *en = r->element[i];
                if (en->type != REDIS_REPLY_ARRAY || en->elements < 2 ||
                    en->element[1]->type != REDIS_REPLY_ARRAY)
                        continue;
                redisReply *kv = en->element[1];
                bool match = false;
                for (size_t k = 0; k + 1 < kv->elements; k += 2)
                        if (is_str(kv->element[k]) && strcmp(kv->element[k]->str, MEM_FIELD_RESULT) == 0 &&
                            kv->element[k + 1]->type == REDIS_REPLY_STRING &&
                            memmem(kv->element[k + 1]->str, kv->element[k + 1]->len, needle, strlen(needle)))
                                match = true;
                if (!match || kv->elements > 8)
                        continue;
                for (size_t k = 0; k < kv->elements; k++) {
                        if (kv->element[k]->type != REDIS_REPLY_STRING)
                                break;
                        fv[*n] = malloc(kv->element[k]->len + 1);
                        if (!fv[*n])
                                break;
                        memcpy(fv[*n], kv->element[k]->str, kv->element[k]->len);
                        fv[*n][kv->element[k]->len] = '\0';
                        lens[(*n)++] = kv->element[k]->len;
                }
                found = *n == (int) kv->elements;
        }
        if (r)
                freeReplyObject(r);
        return found;
}

/* Replaces the first from (in s, len bytes, NUL-terminated, room for size) by to, of the same length. */
static bool replace_same(char *s, size_t len, const char *from, const char *to) {
        char *p = memmem(s, len, from, strlen(from));
        if (!p || strlen(from) != strlen(to))
                return false;
        memcpy(p, to, strlen(to));
        return true;
}

/*
 * A real signed result replayed: attempt 1's entry (a failure) XADDed again while attempt 2 runs,
 * and a copy edited to be attempt 2's, under attempt 1's token and MAC.
 */
static void atk_replayed_result(fleet *f, adv_row *row) {
        static const char *const reasons[] = {"bad_mac"};
        char name[96], id[64], run1[128], run2[128], obs[256] = "", bad[256] = "", from[160], to[160];
        char *fv[8] = {0};
        size_t lens[8];
        int n = 0;
        double before[1];
        buf b = {0};
        wf_view v;

        if (!metrics_before(f, row, FLEET_METRIC_RESULTS, reasons, 1, before))
                return;
        snprintf(name, sizeof(name), "%s-replayed-result", f->prefix);
        buf_printf(&b, "{\"name\":\"%s\",\"steps\":[", name);
        wf_step_json(&b, f, "a",
                     "if [ \\\"$AUTOOS_ATTEMPT\\\" = 1 ]; then echo first; exit 3; fi; sleep 3; echo real",
                     "\"retry\":{\"max_attempts\":2,\"backoff_ms\":100}");
        buf_put(&b, "]}", 2);
        if (!b.p || !wf_submit(f, row, b.p, id) || !step_in_flight(f, row, id, "a", 2, &v)) {
                if (!b.p)
                        set_verdict(row, ADV_ERROR, "out of memory");
                buf_done(&b);
                return;
        }
        buf_done(&b);
        snprintf(run1, sizeof(run1), "%s.a.1", id);
        snprintf(run2, sizeof(run2), "%s.a.2", id);
        if (!find_result_entry(f, run1, fv, lens, &n)) {
                set_verdict(row, ADV_ERROR, "attempt 1's result entry is not in %s", MEM_STREAM_RESULTS);
                goto out;
        }
        /* As it was. */
        if (results_xadd(f, (const char *const *) fv, lens, n) < 0) {
                set_verdict(row, ADV_ERROR, "XADD %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                goto out;
        }
        /* For the later attempt: the JSON's id and attempt made attempt 2's, the rest (token, auth) kept. */
        snprintf(from, sizeof(from), "\"%s\"", run1);
        snprintf(to, sizeof(to), "\"%s\"", run2);
        int json_at = -1;
        for (int i = 0; i + 1 < n; i += 2)
                if (strcmp(fv[i], MEM_FIELD_RESULT) == 0)
                        json_at = i + 1;
        if (json_at < 0 || !replace_same(fv[json_at], lens[json_at], from, to) ||
            !replace_same(fv[json_at], lens[json_at], "\"attempt\":1,", "\"attempt\":2,")) {
                set_verdict(row, ADV_ERROR, "attempt 1's result has no id and attempt to change");
                goto out;
        }
        if (results_xadd(f, (const char *const *) fv, lens, n) < 0) {
                set_verdict(row, ADV_ERROR, "XADD %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                goto out;
        }
        expect_real(f, id, "a", "real", 2, obs, sizeof(obs), bad, sizeof(bad));
        metrics_after(f, FLEET_METRIC_RESULTS, reasons, 1, before, obs, sizeof(obs), bad, sizeof(bad));
        audit_rows(f, run2, 1, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
out:
        for (int i = 0; i < n; i++)
                free(fv[i]);
}

/*
 * A node with its own key (the attacker) reports on a run placed on the victim: as itself with a
 * token it made up, and claiming to be the victim.
 */
static void atk_wrong_node_result(fleet *f, adv_row *row) {
        static const char *const reasons[] = {"wrong_dispatch", "bad_mac"};
        const char *me = f->t->attacker_node;
        uint8_t key[MEM_SEAL_KEY_BYTES], tok[32];
        char name[96], id[64], run[128], json[2048], token[MEM_SEAL_HEX_LEN + 1], auth[MEM_SEAL_HEX_LEN + 1];
        char obs[256] = "", bad[256] = "";
        double before[2];
        buf b = {0};
        wf_view v;

        if (!attacker_key(f, row, key))
                return;
        if (!metrics_before(f, row, FLEET_METRIC_RESULTS, reasons, 2, before))
                goto out;
        snprintf(name, sizeof(name), "%s-wrong-node", f->prefix);
        buf_printf(&b, "{\"name\":\"%s\",\"steps\":[", name);
        wf_step_json(&b, f, "a", "sleep 3; echo real", NULL);
        buf_put(&b, ",", 1);
        wf_step_json(&b, f, "b", "cat /work/inputs/a.stdout", "\"needs\":[\"a\"]");
        buf_put(&b, "]}", 2);
        if (!b.p || !wf_submit(f, row, b.p, id) || !step_in_flight(f, row, id, "a", 1, &v)) {
                if (!b.p)
                        set_verdict(row, ADV_ERROR, "out of memory");
                buf_done(&b);
                goto out;
        }
        buf_done(&b);
        snprintf(run, sizeof(run), "%s.a.1", id);
        if (mem_seal_random(tok, sizeof(tok)) < 0) {
                set_verdict(row, ADV_ERROR, "no random bytes");
                goto out;
        }
        for (size_t i = 0; i < sizeof(tok); i++)
                snprintf(token + 2 * i, 3, "%02x", tok[i]);
        /* As itself, sealed with its own key: the MAC checks, the token is not the run's for it. */
        result_json(json, sizeof(json), id, "a", 1, me, "pwned\\n");
        if (mem_seal_mac(key, MEM_SEAL_RESULT, (const char *[]){me, token, json},
                         (size_t[]){strlen(me), MEM_SEAL_HEX_LEN, strlen(json)}, 3, auth) < 0 ||
            results_xadd(f,
                         (const char *[]){MEM_FIELD_RESULT, json, MEM_FIELD_NODE, me, MEM_FIELD_TOKEN, token,
                                          MEM_FIELD_AUTH, auth},
                         NULL, 8) < 0) {
                set_verdict(row, ADV_ERROR, "XADD %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                goto out;
        }
        /* Claiming to be the victim, sealed with the attacker's key. */
        result_json(json, sizeof(json), id, "a", 1, f->t->node, "pwned\\n");
        if (mem_seal_mac(key, MEM_SEAL_RESULT, (const char *[]){f->t->node, token, json},
                         (size_t[]){strlen(f->t->node), MEM_SEAL_HEX_LEN, strlen(json)}, 3, auth) < 0 ||
            results_xadd(f,
                         (const char *[]){MEM_FIELD_RESULT, json, MEM_FIELD_NODE, f->t->node,
                                          MEM_FIELD_TOKEN, token, MEM_FIELD_AUTH, auth},
                         NULL, 8) < 0) {
                set_verdict(row, ADV_ERROR, "XADD %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                goto out;
        }
        expect_real(f, id, "a", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        expect_real(f, id, "b", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        metrics_after(f, FLEET_METRIC_RESULTS, reasons, 2, before, obs, sizeof(obs), bad, sizeof(bad));
        audit_rows(f, run, 2, obs, sizeof(obs), bad, sizeof(bad));
        verdict_from(row, obs, bad);
out:
        OPENSSL_cleanse(key, sizeof(key));
}

/* The victim's entry of GET /v1/nodes: its state and whether any of its labels has value. */
static bool node_view(fleet *f, const char *node, char state[static 32], const char *value,
                      bool *has_value) {
        http_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        bool found = false;

        state[0] = '\0';
        *has_value = false;
        http(f, &(http_req){.method = "GET", .path = "/v1/nodes", .key = f->t->api_key}, &r);
        if (r.status == 200 && r.body && au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) == 0) {
                yajl_val list = au_json_get(tree, "nodes");
                for (size_t i = 0; YAJL_IS_ARRAY(list) && i < list->u.array.len && !found; i++) {
                        yajl_val n = list->u.array.values[i];
                        const char *s;
                        if (au_json_get_string(au_json_get(n, "id"), "id", &s, NULL) < 0 ||
                            strcmp(s, node) != 0)
                                continue;
                        found = true;
                        if (au_json_get_string(au_json_get(n, "state"), "state", &s, NULL) == 0)
                                snprintf(state, 32, "%s", s);
                        yajl_val l = au_json_get(n, "labels");
                        if (YAJL_IS_STRING(l))
                                *has_value = contains(l->u.string, value);
                        for (size_t k = 0; YAJL_IS_OBJECT(l) && k < l->u.object.len; k++)
                                if (YAJL_IS_STRING(l->u.object.values[k]) &&
                                    strcmp(l->u.object.values[k]->u.string, value) == 0)
                                        *has_value = true;
                }
        }
        http_reply_done(&r);
        return found;
}

/*
 * Heartbeats nobody sealed: the victim's hash overwritten with other labels, a huge capacity and
 * a made-up MAC, and a made-up node claiming the victim's label; while a step runs on the victim.
 */
static void atk_forged_heartbeat(fleet *f, adv_row *row) {
        static const char *const reasons[] = {"bad_mac", "unknown_node"};
        char name[96], id[64], ghost[96], ghost_key[160], ghost_labels[300], obs[256] = "", bad[256] = "";
        char state[32], sel[300];
        double before[2];
        bool evil;
        buf b = {0};
        wf_view v;

        if (!metrics_before(f, row, FLEET_METRIC_BEATS, reasons, 2, before))
                return;
        snprintf(name, sizeof(name), "%s-forged-heartbeat", f->prefix);
        buf_printf(&b, "{\"name\":\"%s\",\"steps\":[", name);
        wf_step_json(&b, f, "a", "sleep 3; echo real", NULL);
        buf_put(&b, "]}", 2);
        if (!b.p || !wf_submit(f, row, b.p, id) || !step_in_flight(f, row, id, "a", 1, &v)) {
                if (!b.p)
                        set_verdict(row, ADV_ERROR, "out of memory");
                buf_done(&b);
                return;
        }
        buf_done(&b);
        snprintf(ghost, sizeof(ghost), "%s-ghost", f->prefix);
        mem_key_node(ghost_key, sizeof(ghost_key), ghost);
        snprintf(sel, sizeof(sel), "%s", f->t->selector ? f->t->selector : "");
        if (!sel[0])
                snprintf(sel, sizeof(sel), "name=%s", f->t->node);
        snprintf(ghost_labels, sizeof(ghost_labels), "%s", sel);
        redisReply *r = redis_cmds(f, "SADD", MEM_KEY_NODES, ghost, NULL);
        if (r)
                freeReplyObject(r);
        /* The node writes its whole hash each second: forge it every 100 ms until both are counted. */
        char s_bad[160], s_unknown[160];
        refused_sample(s_bad, sizeof(s_bad), FLEET_METRIC_BEATS, "bad_mac");
        refused_sample(s_unknown, sizeof(s_unknown), FLEET_METRIC_BEATS, "unknown_node");
        uint64_t until = now_ms() + MIN(remaining_ms(f) / 2, scaled(f, 8000));
        for (unsigned i = 0;; i++) {
                r = redis_cmds(f, "HSET", f->node_key, "capacity", "999", "labels", "name=evil", "beat",
                               "99999999", MEM_FIELD_AUTH,
                               "1111111111111111111111111111111111111111111111111111111111111111", NULL);
                if (r)
                        freeReplyObject(r);
                r = redis_cmds(f, "HSET", ghost_key, "capacity", "64", "running", "0", "queued", "0",
                               "labels", ghost_labels, "version", "x", "started_at", "x", "beat", "1",
                               "state", "active", MEM_FIELD_AUTH,
                               "0000000000000000000000000000000000000000000000000000000000000000", NULL);
                if (r)
                        freeReplyObject(r);
                r = redis_cmds(f, "PEXPIRE", ghost_key, "60000", NULL);
                if (r)
                        freeReplyObject(r);
                /* Meanwhile the forged view must never be the coordinator's. */
                if (node_view(f, f->t->node, state, "evil", &evil) && evil)
                        add(bad, sizeof(bad), "GET /v1/nodes shows %s with the forged labels", f->t->node);
                if (node_view(f, ghost, state, "", &evil) && strcmp(state, "healthy") == 0) {
                        add(bad, sizeof(bad), "the made-up node %s is healthy", ghost);
                        break;
                }
                if (bad[0] || now_ms() >= until)
                        break;
                if (i % 5 == 4 && metric_value(f, s_bad) >= before[0] + 1 &&
                    metric_value(f, s_unknown) >= before[1] + 1)
                        break;
                sleep_ms(100);
        }
        r = redis_cmds(f, "DEL", ghost_key, NULL);
        if (r)
                freeReplyObject(r);
        r = redis_cmds(f, "SREM", MEM_KEY_NODES, ghost, NULL);
        if (r)
                freeReplyObject(r);
        metrics_after(f, FLEET_METRIC_BEATS, reasons, 2, before, obs, sizeof(obs), bad, sizeof(bad));
        expect_real(f, id, "a", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        if (!node_view(f, f->t->node, state, "evil", &evil) || strcmp(state, "healthy") != 0 || evil)
                add(bad, sizeof(bad), "afterwards %s is '%s'%s", f->t->node, state,
                    evil ? " with forged labels" : "");
        else
                add(obs, sizeof(obs), "%s healthy with its own labels", f->t->node);
        verdict_from(row, obs, bad);
}

/*
 * The victim's heartbeat key deleted each second for 5 s (2.5 times the default node_timeout)
 * while a step runs on it: its last authentic beat still counts, so it is not declared lost and
 * the step is neither moved nor run twice.
 */
static void atk_deleted_heartbeat(fleet *f, adv_row *row) {
        char name[96], id[64], obs[256] = "", bad[256] = "", state[32];
        bool unused;
        buf b = {0};
        wf_view v;

        char why[200] = "";
        double lost0 = metric_value(f, FLEET_METRIC_LOST);
        long rows0 = f->t->db_url ? lost_rows(f, f->t->node, why, sizeof(why)) : 0;
        if (lost0 < 0 || rows0 < 0) {
                set_verdict(row, ADV_ERROR, "%s", lost0 < 0 ? "GET /metrics failed" : why);
                return;
        }
        snprintf(name, sizeof(name), "%s-deleted-heartbeat", f->prefix);
        buf_printf(&b, "{\"name\":\"%s\",\"steps\":[", name);
        wf_step_json(&b, f, "a", "sleep 9; echo real", NULL);
        buf_put(&b, "]}", 2);
        if (!b.p || !wf_submit(f, row, b.p, id) || !step_in_flight(f, row, id, "a", 1, &v)) {
                if (!b.p)
                        set_verdict(row, ADV_ERROR, "out of memory");
                buf_done(&b);
                return;
        }
        buf_done(&b);
        /*
         * Three deletions a node_timeout (2 s) apart: between them the victim's own beats (one a
         * second) come back and must be read. Deleting it each second, just after each beat, leaves
         * the monitor (a read each 250 ms) almost nothing to read: a denial of service, which anyone
         * who may write anything to Redis can always do; what is promised is that a deletion does not
         * make a node lost by itself, and that a node's ACL user cannot delete another's key.
         */
        unsigned deleted = 0;
        for (int i = 0; i < 3; i++) {
                redisReply *r = redis_cmds(f, "DEL", f->node_key, NULL);
                if (r && r->type == REDIS_REPLY_INTEGER)
                        deleted += (unsigned) r->integer;
                if (r)
                        freeReplyObject(r);
                if (node_view(f, f->t->node, state, "", &unused) && strcmp(state, "healthy") != 0) {
                        add(bad, sizeof(bad), "%s is '%s' after %d deletions", f->t->node, state, i + 1);
                        break;
                }
                sleep_ms(2000);
        }
        if (deleted == 0)
                add(bad, sizeof(bad), "the heartbeat key was never there to delete");
        expect_real(f, id, "a", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        double lost1 = metric_value(f, FLEET_METRIC_LOST);
        long rows1 = f->t->db_url ? lost_rows(f, f->t->node, why, sizeof(why)) : 0;
        if (lost1 != lost0)
                add(bad, sizeof(bad), "%s went from %.0f to %.0f", FLEET_METRIC_LOST, lost0, lost1);
        else if (rows1 != rows0)
                add(bad, sizeof(bad), "%s was declared lost (node_lost audit rows %ld, were %ld)%s%s",
                    f->t->node, rows1, rows0, rows1 < 0 ? ": " : "", rows1 < 0 ? why : "");
        else
                add(obs, sizeof(obs), "%u deletions; no node lost, %s healthy throughout", deleted,
                    f->t->node);
        verdict_from(row, obs, bad);
}

/*
 * A connection to the same Redis (memory/redis.c's connector, without the --redis URL's credentials) as
 * user (NULL: none; no AUTH). NULL (why set) when it cannot connect.
 */
static redisContext *redis_as(fleet *f, const char *user, const char *pass, char *why, size_t size) {
        char url[600];
        au_error err = {0};
        redisContext *c = NULL;

        if (!f->rc && redis_connect(f) < 0) {
                snprintf(why, size, "%s", f->redis_err);
                return NULL;
        }
        if (f->rc->connection_type == REDIS_CONN_UNIX)
                snprintf(url, sizeof(url), "unix://%s", f->rc->unix_sock.path);
        else if (strchr(f->rc->tcp.host, ':'))
                snprintf(url, sizeof(url), "redis://[%s]:%d", f->rc->tcp.host, f->rc->tcp.port);
        else
                snprintf(url, sizeof(url), "redis://%s:%d", f->rc->tcp.host, f->rc->tcp.port);
        if (mem_redis_connect(url, 5000, REDIS_TIMEOUT_MS, &c, &err) < 0) {
                snprintf(why, size, "cannot connect to Redis: %.150s", err.msg);
                return NULL;
        }
        if (user) {
                redisReply *r = redisCommandArgv(c, 3, (const char *[]){"AUTH", user, pass}, NULL);
                bool ok = r && r->type != REDIS_REPLY_ERROR;
                snprintf(why, size, "AUTH as %s: %.100s", user, r && r->str ? r->str : c->errstr);
                if (r)
                        freeReplyObject(r);
                if (!ok) {
                        redisFree(c);
                        return NULL;
                }
        }
        return c;
}

/* Runs argv on c: "refused" when Redis answered NOPERM (or NOAUTH with refused_auth), else what it said. */
static bool refused(redisContext *c, int argc, const char **argv, bool noauth, char *said, size_t size) {
        redisReply *r = redisCommandArgv(c, argc, argv, NULL);
        bool no = false;

        if (!r)
                snprintf(said, size, "no answer (%.60s)", c->errstr);
        else if (r->type == REDIS_REPLY_ERROR) {
                snprintf(said, size, "%.60s", r->str ? r->str : "error");
                no = (r->str && strncmp(r->str, "NOPERM", 6) == 0) ||
                     (noauth && r->str && strncmp(r->str, "NOAUTH", 6) == 0);
        } else
                snprintf(said, size, "answered (type %d)", r->type);
        printable(said);
        if (r)
                freeReplyObject(r);
        return no;
}

/*
 * The attacker node's own Redis user (doc/trust.md, --node-acl) against the victim's keys: reading
 * its jobs stream (XRANGE, XREAD), deleting or writing its heartbeat, reading or planting its
 * remembered results, reading the results stream: each NOPERM. Its own remembered results stay
 * readable (the user works), and a client without a password is refused (NOAUTH).
 */
static void atk_read_other_jobs(fleet *f, adv_row *row) {
        uint8_t key[MEM_SEAL_KEY_BYTES];
        char pw[MEM_SEAL_HEX_LEN + 1], why[200] = "", said[96], jobs[300], node[300], planted[400], own[400],
                                       probe[96];
        char obs[256] = "", bad[256] = "";
        unsigned n_refused = 0;

        if (!attacker_key(f, row, key))
                return;
        int r = mem_seal_mac(key, MEM_SEAL_REDIS_PASSWORD, NULL, NULL, 0, pw);
        OPENSSL_cleanse(key, sizeof(key));
        if (r < 0) {
                set_verdict(row, ADV_ERROR, "out of memory");
                return;
        }
        mem_stream_jobs(jobs, sizeof(jobs), f->t->node);
        mem_key_node(node, sizeof(node), f->t->node);
        snprintf(planted, sizeof(planted), MEM_KEY_RESULT_PREFIX "%s:%s-acl", f->t->node, f->prefix);
        snprintf(own, sizeof(own), MEM_KEY_RESULT_PREFIX "%s:%s-acl", f->t->attacker_node, f->prefix);
        snprintf(probe, sizeof(probe), "%s-probe", f->prefix);

        /* Without a password: the default user must not be open. */
        redisContext *anon = redis_as(f, NULL, NULL, why, sizeof(why));
        if (!anon) {
                set_verdict(row, ADV_ERROR, "%s", why);
                OPENSSL_cleanse(pw, sizeof(pw));
                return;
        }
        if (refused(anon, 5, (const char *[]){"XRANGE", jobs, "-", "+", "COUNT", "1"}, true, said,
                    sizeof(said)))
                add(obs, sizeof(obs), "no password: %s", said);
        else
                add(bad, sizeof(bad),
                    "a client without a password reads %s: %s (the default user has no password)", jobs,
                    said);
        redisFree(anon);

        redisContext *c = redis_as(f, f->t->attacker_node, pw, why, sizeof(why));
        OPENSSL_cleanse(pw, sizeof(pw));
        if (!c) {
                set_verdict(row, ADV_ERROR, "%s: is %s's ACL user set (autoos-coordinator --node-acl %s)?",
                            why, f->t->attacker_node, f->t->attacker_node);
                return;
        }
        const struct {
                const char *label;
                int argc;
                const char *argv[8];
        } tries[] = {
                {"XRANGE its jobs", 6, {"XRANGE", jobs, "-", "+", "COUNT", "1"}},
                {"XREAD its jobs", 4 + 2, {"XREAD", "COUNT", "1", "STREAMS", jobs, "0"}},
                {"XINFO its jobs", 3, {"XINFO", "STREAM", jobs}},
                {"DEL its heartbeat", 2, {"DEL", node}},
                {"HSET its heartbeat", 4, {"HSET", node, probe, "1"}},
                {"SET its remembered result", 3, {"SET", planted, "x"}},
                {"GET its remembered result", 2, {"GET", planted}},
                {"XRANGE the results", 6, {"XRANGE", MEM_STREAM_RESULTS, "-", "+", "COUNT", "1"}},
        };
        for (size_t i = 0; i < ELEMENTSOF(tries); i++) {
                /* (XREADGROUP is not tried: were it allowed, it would take a real job from the victim.) */
                if (refused(c, tries[i].argc, (const char **) tries[i].argv, false, said, sizeof(said)))
                        n_refused++;
                else
                        add(bad, sizeof(bad), "%s: %s", tries[i].label, said);
        }
        /* Its own keys work: the refusals are the ACL's, not a broken user. */
        if (refused(c, 2, (const char *[]){"GET", own}, false, said, sizeof(said)))
                add(bad, sizeof(bad), "even its own key is refused (%s): the ACL line is wrong", said);
        redisFree(c);
        /* What got through is undone (the node writes its heartbeat again within a second). */
        redisReply *rr = redis_cmds(f, "HDEL", node, probe, NULL);
        if (rr)
                freeReplyObject(rr);
        rr = redis_cmds(f, "DEL", planted, NULL);
        if (rr)
                freeReplyObject(rr);
        if (!bad[0])
                add(obs, sizeof(obs),
                    "as %s: %u of %zu reads and writes of %s's keys NOPERM; its own keys work",
                    f->t->attacker_node, n_refused, ELEMENTSOF(tries), f->t->node);
        verdict_from(row, obs, bad);
}

/*
 * A result planted under the victim's result cache (autoos:result:<node>:<run id>, as the node
 * keeps its own) before the run is dispatched: shaped like a sealed one, with a made-up token and
 * MAC. An honest node must not send it on: the step runs and reports its real output.
 */
static void atk_planted_result(fleet *f, adv_row *row) {
        char name[96], id[64], cache[300], json[2048], value[2300], obs[256] = "", bad[256] = "";
        buf b = {0};
        wf_view v;

        snprintf(name, sizeof(name), "%s-planted-result", f->prefix);
        buf_printf(&b, "{\"name\":\"%s\",\"steps\":[", name);
        wf_step_json(&b, f, "gate", "sleep 2", NULL);
        buf_put(&b, ",", 1);
        wf_step_json(&b, f, "p", "echo genuine", "\"needs\":[\"gate\"]");
        buf_put(&b, "]}", 2);
        if (!b.p || !wf_submit(f, row, b.p, id)) {
                if (!b.p)
                        set_verdict(row, ADV_ERROR, "out of memory");
                buf_done(&b);
                return;
        }
        buf_done(&b);
        snprintf(cache, sizeof(cache), MEM_KEY_RESULT_PREFIX "%s:%s.p.1", f->t->node, id);
        result_json(json, sizeof(json), id, "p", 1, f->t->node, "planted\\n");
        snprintf(value, sizeof(value), "%064d %064d\n%s", 0, 0, json);
        redisReply *r = redis_cmds(f, "SET", cache, value, "EX", "600", NULL);
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
                freeReplyObject(r);
        if (!ok) {
                set_verdict(row, ADV_ERROR, "SET %s: %s", cache, f->redis_err);
                return;
        }
        /* Planted before p could be dispatched: gate still runs. */
        if (!wf_read(f, id, "p", &v) ||
            (strcmp(v.step_state, "pending") != 0 && strcmp(v.step_state, "ready") != 0)) {
                set_verdict(row, ADV_ERROR, "step p was already '%s' when the result was planted",
                            v.step_state);
                return;
        }
        expect_real(f, id, "p", "genuine", 1, obs, sizeof(obs), bad, sizeof(bad));
        if (!bad[0])
                add(obs, sizeof(obs), "the planted %s was not sent on", cache);
        verdict_from(row, obs, bad);
}

/* ---- the catalogue ------------------------------------------------------------------------------ */

static const attack attacks[] = {
        {"daemon", "daemon-malformed-json",
         "rejected (\"invalid JSON\"), under the entry id; entry acked; node alive", atk_malformed_json},
        {"daemon", "daemon-unknown-field", "rejected naming 'escape_hatch'; node alive", atk_unknown_field},
        {"daemon", "daemon-wrong-types",
         "5 specs with mistyped argv/limits/env each rejected naming the field", atk_wrong_types},
        {"daemon", "daemon-over-ceiling",
         "limits far over the policy's ceilings rejected naming limits.<field>", atk_over_ceiling},
        {"daemon", "daemon-oversized-entry", "a 20 MiB entry answered rejected; node alive",
         atk_oversized_entry},
        {"daemon", "daemon-unknown-entry-field",
         "an entry field 'exec' (not spec/cancel) rejected naming it", atk_unknown_entry_field},
        {"daemon", "daemon-binary-garbage",
         "4 KiB of binary with NULs answered rejected (valid JSON result)", atk_binary_garbage},
        {"daemon", "daemon-argv-invalid-utf8",
         "argv with 0xff, an overlong '/', a surrogate, > U+10FFFF: each rejected (UTF named)",
         atk_argv_invalid_utf8},
        {"daemon", "daemon-output-nul-utf8",
         "output with NUL and invalid UTF-8: exited 0, valid JSON result, NUL as \\u0000, bad bytes U+FFFD",
         atk_output_nul_utf8},
        {"daemon", "daemon-result-flood",
         "an output flood ends output_limit; output and result bounded (256 KiB limit)", atk_result_flood},
        {"daemon", "daemon-job-flood", "500 jobs at once: all answered exited 0, none lost or run twice",
         atk_job_flood},
        {"daemon", "daemon-duplicate-id",
         "the same id twice: one run, identical results, both entries acked", atk_duplicate_id},
        {"daemon", "daemon-cancel-unknown", "a cancel for an unknown id: acknowledged, no result",
         atk_cancel_unknown},
        {"daemon", "daemon-injected-job",
         "a spec with no authentication (issue 10): acknowledged, not run, no result", atk_injected_job},
        {"daemon", "daemon-forged-job",
         "a spec with a made-up token and MAC: acknowledged, not run, no result", atk_forged_job},
        {"daemon", "daemon-id-path-chars", "ids with '/', '..' and '%' rejected naming id",
         atk_id_path_chars},

        {"fleet", "fleet-forged-result",
         "an unsigned result for the victim's running step: refused (unsigned, counted, audited); real "
         "output",
         atk_forged_result},
        {"fleet", "fleet-replayed-result",
         "attempt 1's signed result replayed, and as attempt 2's, while attempt 2 runs: refused; real "
         "output",
         atk_replayed_result},
        {"fleet", "fleet-wrong-node-result",
         "another node signs results for the victim's run: wrong_dispatch, bad_mac; real output",
         atk_wrong_node_result},
        {"fleet", "fleet-forged-heartbeat",
         "the victim's heartbeat and a made-up node's forged: refused (counted), labels kept, ghost not "
         "healthy",
         atk_forged_heartbeat},
        {"fleet", "fleet-deleted-heartbeat",
         "the victim's heartbeat key deleted three times, 2 s apart: not lost, its step not moved",
         atk_deleted_heartbeat},
        {"fleet", "fleet-read-other-jobs",
         "another node's Redis ACL user on the victim's jobs, heartbeat and results: NOPERM",
         atk_read_other_jobs},
        {"fleet", "fleet-planted-result",
         "a result planted in the victim's result cache before dispatch: not sent on; real output",
         atk_planted_result},

        {"coordinator", "coordinator-no-key",
         "no key: 401 unauthorized with WWW-Authenticate; nothing stored", atk_no_key},
        {"coordinator", "coordinator-wrong-key", "unknown, extended, Basic and 9 KiB keys: 401 unauthorized",
         atk_wrong_key},
        {"coordinator", "coordinator-viewer-role",
         "viewer key on submit/run/cancel: 403 forbidden; nothing stored", atk_viewer_role},
        {"coordinator", "coordinator-invalid-json", "cut, trailing, NUL, non-JSON bodies: 400 invalid_json",
         atk_invalid_json},
        {"coordinator", "coordinator-unknown-fields", "unknown fields: 400 invalid_workflow naming each",
         atk_unknown_fields},
        {"coordinator", "coordinator-cycle", "cycles: 400 invalid_workflow naming 'a -> b -> a' and 'c'",
         atk_cycle},
        {"coordinator", "coordinator-body-announced",
         "64 MiB announced by Content-Length: 413 payload_too_large", atk_body_announced},
        {"coordinator", "coordinator-body-chunked", "4 MiB chunked body: 413 payload_too_large",
         atk_body_chunked},
        {"coordinator", "coordinator-10001-steps",
         "10001 steps: 400 invalid_workflow naming steps; nothing stored", atk_too_many_steps},
        {"coordinator", "coordinator-deep-nesting", "100000-deep JSON: 400 invalid_json; nothing stored",
         atk_deep_nesting},
        {"coordinator", "coordinator-invalid-utf8",
         "0xff, overlong, surrogate, > U+10FFFF in name or argv: 400 invalid_json", atk_invalid_utf8},
        {"coordinator", "coordinator-path-nul",
         "%00 in the path: 404, never another route; a raw NUL: no key 401, else at most the path before it",
         atk_path_nul},
        {"coordinator", "coordinator-path-long",
         "8 KB id: 404; 1 MiB and 100000-segment paths: 4xx; no crash", atk_path_long},
        {"coordinator", "coordinator-nul-output",
         "a step printing NUL/invalid UTF-8: succeeded, GET valid JSON", atk_workflow_nul_output},
        {"coordinator", "coordinator-concurrent-submit",
         "50 concurrent submissions: 50 x 201, each stored once", atk_concurrent_submit},
        {"coordinator", "coordinator-audit-rewrite",
         "the owner rewrites an audit row and rehashes the chain: autoosctl's verifier refuses it",
         atk_audit_rewrite},
        {"coordinator", "coordinator-audit-cut-tail",
         "the owner cuts off a trail's last rows: autoosctl's verifier names the cut", atk_audit_cut},
        {"coordinator", "coordinator-plain-http-to-tls",
         "plain HTTP with a key to the TLS listener: no HTTP answer (skipped for http://)",
         atk_plain_http_tls},
        {"coordinator", "coordinator-revoked-key",
         "a key revoked in PostgreSQL behind the coordinator: its very next request 401", atk_revoked_key},
        /* Last: it spends the key's rate. */
        {"coordinator", "coordinator-rate-flood",
         "a request flood: 429 rate_limited with Retry-After after the burst", atk_rate_flood},
};

/* ---- running ----------------------------------------------------------------------------------------- */

static int add_row(adv_report *rep, adv_row *row) {
        printable(row->observed);
        printable(row->note);
        printable(row->expectation);
        return adv_report_add(rep, row);
}

static void row_init(adv_row *row, const attack *a) {
        *row = (adv_row){0};
        snprintf(row->group, sizeof(row->group), "%s", a->group);
        snprintf(row->name, sizeof(row->name), "%s", a->name);
        snprintf(row->expectation, sizeof(row->expectation), "%s", a->expectation);
}

/* Readies a group's target; false (why set) when it cannot be attacked. */
static bool group_setup(fleet *f, const char *group, char *why, size_t size) {
        bool fleet_group = strcmp(group, "fleet") == 0;
        if (strcmp(group, "daemon") == 0 || fleet_group) {
                mem_stream_jobs(f->jobs_key, sizeof(f->jobs_key), f->t->node);
                mem_key_node(f->node_key, sizeof(f->node_key), f->t->node);
                if (!f->rc && redis_connect(f) < 0) {
                        snprintf(why, size, "%s", f->redis_err);
                        return false;
                }
                /* (A heartbeat key just deleted is written again within a second.) */
                uint64_t until = now_ms() + HEARTBEAT_WAIT_MS;
                while (node_started_at(f, f->started_at, sizeof(f->started_at)) < 0) {
                        if (!f->rc || now_ms() >= until) {
                                snprintf(why, size, "node %.64s has no heartbeat (%.80s)", f->t->node,
                                         f->node_key);
                                return false;
                        }
                        sleep_ms(100);
                }
                if (!fleet_group)
                        return true;
        }
        const char *u = f->t->api_url;
        size_t n = strlen(u);
        while (n > 0 && u[n - 1] == '/')
                n--;
        if (n >= sizeof(f->base)) {
                snprintf(why, size, "API URL too long");
                return false;
        }
        snprintf(f->base, sizeof(f->base), "%.*s", (int) n, u);
        f->raw_ok = false;
        if (strncmp(f->base, "http://", 7) == 0) {
                const char *h = f->base + 7, *end = h + strcspn(h, "/");
                const char *colon = NULL;
                if (*h == '[') {
                        const char *rb = memchr(h, ']', (size_t) (end - h));
                        if (rb) {
                                snprintf(f->host, sizeof(f->host), "%.*s", (int) (rb - h - 1), h + 1);
                                colon = rb[1] == ':' ? rb + 1 : NULL;
                        }
                } else {
                        colon = memchr(h, ':', (size_t) (end - h));
                        snprintf(f->host, sizeof(f->host), "%.*s", (int) ((colon ? colon : end) - h), h);
                }
                snprintf(f->port, sizeof(f->port), "%.*s",
                         colon ? (int) MIN((size_t) (end - colon - 1), (size_t) 7) : 2,
                         colon ? colon + 1 : "80");
                f->raw_ok = f->host[0] && !*end;
        }
        if (!f->curl && !(f->curl = curl_easy_init())) {
                snprintf(why, size, "out of memory");
                return false;
        }
        f->deadline = now_ms() + scaled(f, 10000);
        return coord_alive(f, why, size);
}

static bool target_given(const adv_fleet_target *t, const char *group) {
        if (strcmp(group, "daemon") == 0)
                return t->redis_url && t->node;
        if (strcmp(group, "fleet") == 0)
                return t->redis_url && t->node && t->api_url && t->api_key;
        return t->api_url && t->api_key;
}

int adv_fleet_attacks(const adv_fleet_target *t, const char *only, adv_report *rep) {
        fleet f = {.t = t, .timeout_ms = t->timeout_ms ? t->timeout_ms : DEFAULT_TIMEOUT_MS};
        const char *group = NULL;
        bool ready = false;
        char why[256] = "";
        int ret = 0;

        snprintf(f.prefix, sizeof(f.prefix), "adv-%d-%" PRIu64, (int) getpid(), now_ms());
        curl_global_init(CURL_GLOBAL_DEFAULT);

        for (size_t i = 0; i < ELEMENTSOF(attacks); i++) {
                const attack *a = &attacks[i];
                adv_row row;

                if (!adv_selected(only, a->group, a->name) || !target_given(t, a->group))
                        continue;
                if (!group || strcmp(group, a->group) != 0) {
                        group = a->group;
                        f.down = false;
                        why[0] = '\0';
                        ready = group_setup(&f, group, why, sizeof(why));
                        if (!ready && ret == 0)
                                ret = -ECONNREFUSED;
                }
                row_init(&row, a);
                if (!ready) {
                        set_verdict(&row, ADV_ERROR, "not run: %s", why);
                        if (add_row(rep, &row) < 0)
                                ret = -ENOMEM;
                        continue;
                }
                if (f.down) {
                        set_verdict(&row, ADV_ERROR, "not run: %s", f.down_why);
                        if (add_row(rep, &row) < 0)
                                ret = -ENOMEM;
                        continue;
                }
                uint64_t t0 = now_ms();
                /* The 500-job flood is given twice the time: a node with 4 slots runs 500 sandboxes. */
                f.deadline = t0 + (uint64_t) f.timeout_ms * (a->run == atk_job_flood ? 2 : 1);
                a->run(&f, &row);
                row.ms = (double) (now_ms() - t0);

                bool daemon = strcmp(a->group, "daemon") == 0, both = strcmp(a->group, "fleet") == 0;
                if (daemon)
                        drop_entries(&f);
                char dead[200] = "";
                /* The fleet group's attacks must leave both the node and the coordinator standing. */
                bool alive =
                        daemon ? node_alive(&f, dead, sizeof(dead)) : coord_alive(&f, dead, sizeof(dead));
                if (alive && both && !node_alive(&f, dead, sizeof(dead))) {
                        alive = false;
                        daemon = true;
                }
                if (!alive) {
                        f.down = true;
                        snprintf(f.down_why, sizeof(f.down_why), "the %s was gone after %s (%s)",
                                 daemon ? "node" : "coordinator", a->name, dead);
                        char prev[256];
                        snprintf(prev, sizeof(prev), "%s", row.observed);
                        set_verdict(&row, ADV_NOT_CONTAINED, "%s is gone: %s; %s",
                                    daemon ? "the node" : "the coordinator", dead, prev);
                }
                if (add_row(rep, &row) < 0)
                        ret = -ENOMEM;
        }
        drop_entries(&f);
        redis_close(&f);
        if (f.curl)
                curl_easy_cleanup(f.curl);
        curl_global_cleanup();
        return ret;
}
