/* SPDX-License-Identifier: MIT */
/*
 * memory/bus.c against a real redis-server (tests/redis.h): jobs in with
 * credit, pending redelivery, results out, heartbeat, events, malformed
 * entries, and Redis going away and coming back. A plain synchronous hiredis
 * connection checks what landed in Redis. Every wait has a deadline.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "memory/bus.h"
#include "tests/redis.h"
#include "tests/tap.h"

typedef struct job {
        char id[64];
        char field[32];
        char *value;
        size_t len;
        bool value_null;
        bool truncated;
        bool pending;
} job;

/* What one bus told us. */
typedef struct probe {
        job jobs[32];
        size_t n_jobs;
        int ups;
        int downs;
        char why[256];
        bool free_in_job;
        mem_bus **self;
} probe;

typedef struct answer {
        int calls;
        int r;
        char *value;
        size_t len;
        bool value_null;
} answer;

static au_loop *loop;
static redisContext *rc;
static int port;

#define WAIT_FOR(cond, ms)                                             \
        ({                                                             \
                long long _deadline = (long long) au_now_ms() + (ms);  \
                while (!(cond) && (long long) au_now_ms() < _deadline) \
                        au_loop_run_once(loop, 20);                    \
                (bool) (cond);                                         \
        })

static void spin(int ms) {
        long long deadline = (long long) au_now_ms() + ms;
        while ((long long) au_now_ms() < deadline)
                au_loop_run_once(loop, 10);
}

static void probe_reset(probe *p) {
        for (size_t i = 0; i < p->n_jobs; i++)
                free(p->jobs[i].value);
        *p = (probe){0};
}

static void answer_reset(answer *a) {
        free(a->value);
        *a = (answer){0};
}

static void on_job(mem_bus *b, const char *entry_id, const char *field, const char *value, size_t len,
                   bool truncated, bool pending, void *userdata) {
        probe *p = userdata;
        job *j;

        if (p->n_jobs < ELEMENTSOF(p->jobs)) {
                j = &p->jobs[p->n_jobs];
                snprintf(j->id, sizeof(j->id), "%s", entry_id);
                snprintf(j->field, sizeof(j->field), "%s", field);
                j->value_null = value == NULL;
                j->value = malloc(len + 1);
                if (value)
                        memcpy(j->value, value, len);
                j->value[len] = '\0';
                j->len = len;
                j->truncated = truncated;
                j->pending = pending;
        }
        p->n_jobs++;
        if (p->free_in_job) {
                mem_bus_free(b);
                *p->self = NULL;
        }
}

static void on_state(mem_bus *b, bool connected, const char *why, void *userdata) {
        probe *p = userdata;

        (void) b;
        if (connected)
                p->ups++;
        else {
                p->downs++;
                snprintf(p->why, sizeof(p->why), "%s", why ? why : "");
        }
}

static const mem_bus_ops ops = {.on_job = on_job, .on_state = on_state};

static void on_done(int r, void *userdata) {
        answer *a = userdata;
        a->calls++;
        a->r = r;
}

static void on_get(int r, const char *value, size_t len, void *userdata) {
        answer *a = userdata;
        a->calls++;
        a->r = r;
        a->value_null = value == NULL;
        free(a->value);
        a->value = malloc(len + 1);
        if (value)
                memcpy(a->value, value, len);
        a->value[len] = '\0';
        a->len = len;
}

/* ---- synchronous checks ---- */

static redisReply *R(const char *fmt, ...) {
        va_list ap;
        redisReply *r;

        va_start(ap, fmt);
        r = redisvCommand(rc, fmt, ap);
        va_end(ap);
        return r;
}

static long long RI(const char *fmt, ...) {
        va_list ap;
        redisReply *r;
        long long v = -1;

        va_start(ap, fmt);
        r = redisvCommand(rc, fmt, ap);
        va_end(ap);
        if (r && r->type == REDIS_REPLY_INTEGER)
                v = r->integer;
        freeReplyObject(r);
        return v;
}

/* The string reply as a new C string (may hold NULs; *len says), or NULL. */
static char *RS(size_t *len, const char *fmt, ...) {
        va_list ap;
        redisReply *r;
        char *s = NULL;

        va_start(ap, fmt);
        r = redisvCommand(rc, fmt, ap);
        va_end(ap);
        if (r && r->type == REDIS_REPLY_STRING) {
                s = malloc(r->len + 1);
                memcpy(s, r->str, r->len + 1);
                if (len)
                        *len = r->len;
        }
        freeReplyObject(r);
        return s;
}

static long long xpending(const char *stream) {
        redisReply *r = R("XPENDING %s autoosd", stream);
        long long v = -1;

        if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
            r->element[0]->type == REDIS_REPLY_INTEGER)
                v = r->element[0]->integer;
        freeReplyObject(r);
        return v;
}

static void xadd(const char *stream, const char *field, const char *value, size_t len) {
        freeReplyObject(R("XADD %s * %s %b", stream, field, value, len));
}

static mem_bus *bus_new(const char *url, const char *node, probe *p, au_error *err) {
        mem_bus_config cfg = {
                .url = url,
                .node = node,
                .max_entry_bytes = 64,
                .result_ttl_s = 600,
                .events_maxlen = 10,
                .block_ms = 200,
        };
        mem_bus *b = NULL;
        au_error e = {0};

        if (mem_bus_new(loop, &cfg, &ops, p, &b, err ? err : &e) < 0)
                return NULL;
        return b;
}

static char url[128];

/* ---- the tests ---- */

static void test_config(void) {
        probe p = {0};
        mem_bus_config cfg = {.url = "http://example.com", .node = "n"};
        mem_bus *b = NULL;
        au_error err = {0};
        int r;

        r = mem_bus_new(loop, &cfg, &ops, &p, &b, &err);
        ok(r == -EINVAL && strcmp(err.field, "url") == 0 && !b, "an http:// URL is refused, naming url (%s)",
           err.msg);
        au_error_clear(&err);
        cfg.url = "redis://127.0.0.1:99999";
        ok(mem_bus_new(loop, &cfg, &ops, &p, &b, &err) == -EINVAL, "a port over 65535 is refused");
        au_error_clear(&err);
        cfg.url = "redis://h:1/x";
        ok(mem_bus_new(loop, &cfg, &ops, &p, &b, &err) == -EINVAL, "a non-numeric db is refused");
        au_error_clear(&err);
        cfg.url = "redis://127.0.0.1";
        cfg.node = "";
        r = mem_bus_new(loop, &cfg, &ops, &p, &b, &err);
        ok(r == -EINVAL && strcmp(err.field, "node") == 0, "an empty node id is refused, naming node");
}

static void test_jobs(void) {
        static const char *const stream = "autoos:jobs:n1";
        probe p = {0};
        mem_bus *b;
        char big[100], ids[3][64];
        answer a = {0};
        redisReply *r;

        b = bus_new(url, "n1", &p, NULL);
        ok(b != NULL, "mem_bus_new");
        ok(WAIT_FOR(p.ups == 1, 3000), "on_state(true) once both connections are up");
        ok(mem_bus_connected(b), "mem_bus_connected");
        r = R("XINFO GROUPS %s", stream);
        ok(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1,
           "the consumer group exists on the jobs stream");
        freeReplyObject(r);

        xadd(stream, "spec", "{\"id\":\"j1\"}", 11);
        xadd(stream, "spec", "a\0b", 3);
        memset(big, 'x', sizeof(big));
        xadd(stream, "spec", big, sizeof(big));
        spin(400);
        ok(p.n_jobs == 0, "credit 0: nothing delivered");

        mem_bus_set_job_credit(b, 2);
        WAIT_FOR(p.n_jobs >= 2, 3000);
        spin(500);
        ok(p.n_jobs == 2, "credit 2: exactly 2 delivered (got %zu)", p.n_jobs);
        mem_bus_set_job_credit(b, 5);
        ok(WAIT_FOR(p.n_jobs >= 3, 3000) && p.n_jobs == 3, "more credit: the third arrives");

        ok(strcmp(p.jobs[0].field, "spec") == 0 && p.jobs[0].len == 11 &&
                   memcmp(p.jobs[0].value, "{\"id\":\"j1\"}", 11) == 0 && !p.jobs[0].truncated &&
                   !p.jobs[0].pending,
           "job 1: field spec, its value, not truncated, not pending");
        ok(p.jobs[1].len == 3 && memcmp(p.jobs[1].value, "a\0b", 3) == 0,
           "job 2: a value holding NUL arrives whole");
        ok(p.jobs[2].len == 64 && p.jobs[2].truncated && p.jobs[2].value[0] == 'x' &&
                   p.jobs[2].value[63] == 'x',
           "job 3: over max_entry_bytes arrives truncated to 64 and flagged");
        ok(xpending(stream) == 3, "three entries pending in the group");
        for (int i = 0; i < 3; i++)
                memcpy(ids[i], p.jobs[i].id, sizeof(ids[i]));

        /* A restart of the node: unacked entries come back, flagged pending. */
        mem_bus_free(b);
        probe_reset(&p);
        b = bus_new(url, "n1", &p, NULL);
        mem_bus_set_job_credit(b, 10);
        WAIT_FOR(p.n_jobs >= 3, 3000);
        spin(300);
        ok(p.n_jobs == 3 && p.jobs[0].pending && p.jobs[1].pending && p.jobs[2].pending,
           "after free and new: the 3 unacked entries are redelivered with pending=true");
        ok(p.n_jobs == 3 && strcmp(p.jobs[0].id, ids[0]) == 0 && strcmp(p.jobs[2].id, ids[2]) == 0 &&
                   p.jobs[1].len == 3 && memcmp(p.jobs[1].value, "a\0b", 3) == 0,
           "same ids and values, in order");

        /* Results: XADD + SET EX + XACK in one script. */
        {
                static const char json[] = "{\"id\":\"j1\",\"out\":\"a\0b\"}";
                const char *const acks[] = {ids[0], ids[1], ids[2]};
                size_t len = 0;
                char *v;

                ok(mem_bus_publish_result(b, "j1", json, sizeof(json) - 1, NULL, acks, 3, on_done, &a) == 0,
                   "publish_result accepted");
                ok(WAIT_FOR(a.calls > 0, 3000) && a.r == 0, "publish_result done(0) (r=%d)", a.r);
                spin(100);
                ok(a.calls == 1, "done ran exactly once");
                ok(RI("XLEN autoos:results") == 1, "autoos:results has the result");
                r = R("XRANGE autoos:results - +");
                ok(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                           r->element[0]->element[1]->elements == 4 &&
                           strcmp(r->element[0]->element[1]->element[0]->str, "result") == 0 &&
                           r->element[0]->element[1]->element[1]->len == sizeof(json) - 1 &&
                           memcmp(r->element[0]->element[1]->element[1]->str, json, sizeof(json) - 1) == 0,
                   "its field is result, its value the JSON, NUL and all");
                ok(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                           strcmp(r->element[0]->element[1]->element[2]->str, "node") == 0 &&
                           strcmp(r->element[0]->element[1]->element[3]->str, "n1") == 0,
                   "and it names its node");
                freeReplyObject(r);
                v = RS(&len, "GET autoos:result:n1:j1");
                ok(v && len == sizeof(json) - 1 && memcmp(v, json, len) == 0,
                   "autoos:result:n1:j1 holds it");
                free(v);
                long long ttl = RI("TTL autoos:result:n1:j1");
                ok(ttl > 0 && ttl <= 600, "with a TTL of at most result_ttl_s (%lld)", ttl);
                ok(xpending(stream) == 0, "and the three jobs are acked");
                answer_reset(&a);

                ok(mem_bus_get_result(b, "j1", on_get, &a) == 0 && WAIT_FOR(a.calls > 0, 3000) && a.r == 0 &&
                           a.len == sizeof(json) - 1 && memcmp(a.value, json, a.len) == 0,
                   "get_result finds it");
                answer_reset(&a);

                /* The script cache emptied under us (SCRIPT FLUSH, a failover): EVAL takes over. */
                freeReplyObject(R("SCRIPT FLUSH"));
                ok(mem_bus_publish_result(b, "j2", "{}", 2, NULL, NULL, 0, on_done, &a) == 0 &&
                           WAIT_FOR(a.calls > 0, 3000) && a.r == 0 && RI("XLEN autoos:results") == 2,
                   "after SCRIPT FLUSH, publish_result still works (NOSCRIPT -> EVAL), with no acks");
                answer_reset(&a);
                ok(mem_bus_get_result(b, "nope", on_get, &a) == 0 && WAIT_FOR(a.calls > 0, 3000) &&
                           a.r == 0 && a.value_null,
                   "get_result of an unknown id: r=0, value NULL");
                answer_reset(&a);

                /* Sealed: token and auth go with the entry and with the remembered value. */
                mem_bus_seal seal = {.token = "t0k", .auth = "abcd"};
                ok(mem_bus_publish_result(b, "j3", "{}", 2, &seal, NULL, 0, on_done, &a) == 0 &&
                           WAIT_FOR(a.calls > 0, 3000) && a.r == 0,
                   "a sealed result is published");
                answer_reset(&a);
                r = R("XREVRANGE autoos:results + - COUNT 1");
                ok(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                           r->element[0]->element[1]->elements == 8 &&
                           strcmp(r->element[0]->element[1]->element[4]->str, "token") == 0 &&
                           strcmp(r->element[0]->element[1]->element[5]->str, "t0k") == 0 &&
                           strcmp(r->element[0]->element[1]->element[6]->str, "auth") == 0 &&
                           strcmp(r->element[0]->element[1]->element[7]->str, "abcd") == 0,
                   "its entry carries token and auth");
                freeReplyObject(r);
                v = RS(&len, "GET autoos:result:n1:j3");
                ok(v && len == strlen("t0k abcd\n{}") && memcmp(v, "t0k abcd\n{}", len) == 0,
                   "the remembered value is '<token> <auth>\\n<json>'");
                free(v);
                seal.token = "has space";
                ok(mem_bus_publish_result(b, "j4", "{}", 2, &seal, NULL, 0, on_done, &a) == -EINVAL,
                   "a token with a space is refused");
        }

        mem_bus_free(b);
        probe_reset(&p);
        b = bus_new(url, "n1", &p, NULL);
        mem_bus_set_job_credit(b, 10);
        WAIT_FOR(p.ups == 1, 3000);
        spin(600);
        ok(p.n_jobs == 0, "after the acks, a new bus gets nothing again");
        mem_bus_free(b);
}

static void test_heartbeat_events(mem_bus *b) {
        const char *const kv[] = {"capacity", "4", "running", "1", NULL};
        const char *const odd[] = {"capacity", NULL};
        answer a = {0}, ev[100];
        char *v;
        long long pttl, xlen;
        bool all;

        ok(mem_bus_heartbeat(b, kv, 3000, on_done, &a) == 0 && WAIT_FOR(a.calls > 0, 3000) && a.r == 0,
           "heartbeat done(0)");
        spin(100);
        ok(a.calls == 1, "heartbeat done ran once for its three commands");
        v = RS(NULL, "HGET autoos:node:n1 capacity");
        ok(v && strcmp(v, "4") == 0, "autoos:node:n1 capacity=4");
        free(v);
        v = RS(NULL, "HGET autoos:node:n1 running");
        ok(v && strcmp(v, "1") == 0, "autoos:node:n1 running=1");
        free(v);
        pttl = RI("PTTL autoos:node:n1");
        ok(pttl > 0 && pttl <= 3000, "PEXPIRE at most 3000 ms (%lld)", pttl);
        ok(RI("SISMEMBER autoos:nodes n1") == 1, "n1 in autoos:nodes");
        ok(mem_bus_heartbeat(b, odd, 3000, on_done, &a) == -EINVAL, "an odd kv list is refused");
        answer_reset(&a);
        freeReplyObject(R("PEXPIRE autoos:node:n1 100000"));
        ok(mem_bus_heartbeat(b, NULL, 2000, on_done, &a) == 0 && WAIT_FOR(a.calls > 0, 3000) && a.r == 0 &&
                   RI("PTTL autoos:node:n1") <= 2000,
           "a heartbeat without fields only refreshes the expiry");
        answer_reset(&a);

        /* Small macro nodes so that MAXLEN ~ 10 visibly trims. */
        freeReplyObject(R("CONFIG SET stream-node-max-entries 5"));
        memset(ev, 0, sizeof(ev));
        for (int i = 0; i < 100; i++) {
                char json[64];
                int n = snprintf(json, sizeof(json), "{\"n\":%d}", i);
                mem_bus_event(b, json, (size_t) n, on_done, &ev[i]);
        }
        all = WAIT_FOR(ev[99].calls > 0, 3000);
        for (int i = 0; i < 100; i++)
                all = all && ev[i].calls == 1 && ev[i].r == 0;
        ok(all, "100 events, each done(0) once");
        ok(mem_bus_event(b, "{}", 2, NULL, NULL) == 0, "an event without done");
        spin(100);
        xlen = RI("XLEN autoos:events");
        ok(xlen >= 10 && xlen <= 16, "autoos:events trimmed near events_maxlen 10 (%lld)", xlen);
}

static void test_malformed(mem_bus **bp, probe *p) {
        static const char *const stream = "autoos:jobs:n1";
        const char *acks[3];
        answer a = {0};
        char ids[3][64];

        probe_reset(p);
        xadd(stream, "spec", "{\"id\":\"m1\"}", 11);
        xadd(stream, "cancel", "m1", 2);
        freeReplyObject(R("XADD %s * weird v extra e", stream));
        mem_bus_set_job_credit(*bp, 10);
        ok(WAIT_FOR(p->n_jobs >= 3, 3000), "three more jobs");
        ok(p->n_jobs == 3 && strcmp(p->jobs[1].field, "cancel") == 0 && strcmp(p->jobs[1].value, "m1") == 0,
           "a cancel entry arrives as field cancel");
        ok(p->n_jobs == 3 && strcmp(p->jobs[2].field, "weird") == 0 && strcmp(p->jobs[2].value, "v") == 0,
           "an unknown field arrives as is (first pair), for the caller to refuse");
        for (int i = 0; i < 3; i++)
                memcpy(ids[i], p->jobs[i].id, sizeof(ids[i]));

        /* Gone from the stream but still pending: Redis returns [id, nil]. */
        freeReplyObject(R("XDEL %s %s", stream, ids[0]));
        freeReplyObject(R("XTRIM %s MAXLEN 0", stream));
        ok(xpending(stream) == 3 && RI("XLEN %s", stream) == 0, "deleted and trimmed, still pending");
        mem_bus_free(*bp);
        probe_reset(p);
        *bp = bus_new(url, "n1", p, NULL);
        mem_bus_set_job_credit(*bp, 10);
        WAIT_FOR(p->n_jobs >= 3, 3000);
        spin(300);
        ok(p->n_jobs == 3, "the deleted and trimmed entries are redelivered (%zu)", p->n_jobs);
        for (size_t i = 0; i < 3 && i < p->n_jobs; i++)
                ok(p->jobs[i].pending && strcmp(p->jobs[i].field, "") == 0 && p->jobs[i].value_null &&
                           p->jobs[i].len == 0 && strcmp(p->jobs[i].id, ids[i]) == 0,
                   "entry %zu: field \"\", value NULL, len 0, pending, its id", i + 1);
        for (int i = 0; i < 3; i++)
                acks[i] = ids[i];
        ok(mem_bus_ack(*bp, acks, 3, on_done, &a) == 0 && WAIT_FOR(a.calls > 0, 3000) && a.r == 0,
           "ack them");
        ok(xpending(stream) == 0, "nothing pending any more");
        answer_reset(&a);
        ok(mem_bus_ack(*bp, NULL, 0, on_done, &a) == 0 && WAIT_FOR(a.calls > 0, 3000) && a.r == 0,
           "acking nothing: done(0)");
}

static void test_stream_deleted(mem_bus **bp, probe *p) {
        static const char *const stream = "autoos:jobs:n1";
        int ups = p->ups;

        /* The reader gets NOGROUP (or UNBLOCKED): it reconnects, which recreates the group. */
        probe_reset(p);
        freeReplyObject(R("DEL %s", stream));
        ok(WAIT_FOR(p->downs == 1, 3000), "jobs stream deleted: on_state(false, \"%s\")", p->why);
        ok(WAIT_FOR(p->ups == 1, 3000), "then on_state(true): the group is back");
        xadd(stream, "spec", "{}", 2);
        ok(WAIT_FOR(p->n_jobs == 1, 3000), "and jobs flow again");
        ok(xpending(stream) == 1, "one pending");
        {
                const char *acks[] = {p->jobs[0].id};
                answer a = {0};
                ok(mem_bus_ack(*bp, acks, 1, on_done, &a) == 0 && WAIT_FOR(a.calls > 0, 3000) && a.r == 0 &&
                           xpending(stream) == 0,
                   "acked");
        }
        /* test_outage counts from here: one more up, no down. */
        probe_reset(p);
        p->ups = ups + 1;
}

static void test_free_in_callback(void) {
        probe p = {0};
        mem_bus *b = bus_new(url, "n2", &p, NULL);
        answer a = {0};

        p.self = &b;
        ok(WAIT_FOR(p.ups == 1, 3000), "second bus up");
        /* Both come in one reply: the second must not be delivered after the free. */
        xadd("autoos:jobs:n2", "spec", "{}", 2);
        xadd("autoos:jobs:n2", "spec", "{}", 2);
        p.free_in_job = true;
        mem_bus_set_job_credit(b, 5);
        WAIT_FOR(p.n_jobs > 0, 3000);
        spin(300);
        ok(p.n_jobs == 1 && b == NULL, "mem_bus_free inside on_job: no further on_job");

        probe_reset(&p);
        b = bus_new(url, "n2", &p, NULL);
        WAIT_FOR(p.ups == 1, 3000);
        mem_bus_get_result(b, "x", on_get, &a);
        mem_bus_free(b);
        spin(300);
        ok(a.calls == 0, "a command in flight at mem_bus_free never calls done");
        probe_reset(&p);
}

static void test_unix_auth(void) {
        char u[PATH_MAX + 64];
        probe p = {0};
        mem_bus *b;
        answer a = {0};
        const char *const kv[] = {"k", "v", NULL};

        snprintf(u, sizeof(u), "unix://%s", test_redis_socket());
        b = bus_new(u, "n3", &p, NULL);
        ok(WAIT_FOR(p.ups == 1, 3000), "a bus over the unix socket comes up");
        mem_bus_free(b);
        probe_reset(&p);

        freeReplyObject(R("CONFIG SET requirepass s3cr@t"));
        freeReplyObject(R("AUTH s3cr@t"));
        snprintf(u, sizeof(u), "redis://:s3cr%%40t@127.0.0.1:%d/2", port);
        b = bus_new(u, "n4", &p, NULL);
        ok(WAIT_FOR(p.ups == 1, 3000), "with a (percent-encoded) password and db 2, AUTH and SELECT pass");
        ok(mem_bus_heartbeat(b, kv, 3000, on_done, &a) == 0 && WAIT_FOR(a.calls > 0, 3000) && a.r == 0,
           "heartbeat there");
        freeReplyObject(R("SELECT 2"));
        ok(RI("EXISTS autoos:node:n4") == 1, "it landed in db 2");
        freeReplyObject(R("SELECT 0"));
        ok(RI("EXISTS autoos:node:n4") == 0, "not in db 0");
        mem_bus_free(b);
        probe_reset(&p);

        snprintf(u, sizeof(u), "redis://:wrong@127.0.0.1:%d", port);
        b = bus_new(u, "n5", &p, NULL);
        ok(WAIT_FOR(p.downs == 1, 3000) && p.ups == 0 && strstr(p.why, "AUTH: "),
           "a wrong password: on_state(false, \"%s\")", p.why);
        mem_bus_free(b);
        probe_reset(&p);
        freeReplyObject(R("CONFIG SET requirepass %s", ""));
        {
                redisReply *r = R("CONFIG GET requirepass");
                ok(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->len == 0,
                   "password off again");
                freeReplyObject(r);
        }
}

static void test_outage(mem_bus **bp, probe *p) {
        static const char *const stream = "autoos:jobs:n1";
        const char *const kv[] = {"k", "v", NULL};
        answer a = {0}, refused[5] = {0};
        const char *id = "0-1";
        int ups = p->ups;
        bool all;

        /* Frozen, the socket open and silent: the reply watchdog (2 s for block_ms 200) gives up. */
        test_redis_signal(SIGSTOP);
        ok(mem_bus_get_result(*bp, "j1", on_get, &a) == 0, "a GET goes out to a frozen Redis");
        ok(WAIT_FOR(a.calls > 0, 6000) && a.r == -ECONNRESET, "no answer in time: the GET gets -ECONNRESET");
        ok(p->downs == 1 && strstr(p->why, "in time"), "on_state(false, \"%s\")", p->why);
        answer_reset(&a);
        test_redis_signal(SIGCONT);
        ok(WAIT_FOR(p->ups == ups + 1, 8000), "thawed: on_state(true) again");
        ups = p->ups;
        p->downs = 0;

        /* Freeze Redis with a GET on the wire, then kill it: the GET must end in -ECONNRESET. */
        test_redis_signal(SIGSTOP);
        ok(mem_bus_get_result(*bp, "j1", on_get, &a) == 0, "a GET goes out to a frozen Redis");
        spin(100);
        ok(a.calls == 0, "and waits");
        test_redis_kill();
        ok(WAIT_FOR(a.calls > 0, 3000) && a.r == -ECONNRESET,
           "Redis killed: the GET in flight gets -ECONNRESET");
        ok(WAIT_FOR(p->downs == 1, 3000), "on_state(false, \"%s\")", p->why);
        ok(!mem_bus_connected(*bp), "mem_bus_connected is false");
        spin(100);
        ok(a.calls == 1, "that done ran once");
        answer_reset(&a);

        ok(mem_bus_publish_result(*bp, "x", "{}", 2, NULL, &id, 1, on_done, &refused[0]) == 0 &&
                   mem_bus_get_result(*bp, "x", on_get, &refused[1]) == 0 &&
                   mem_bus_heartbeat(*bp, kv, 3000, on_done, &refused[2]) == 0 &&
                   mem_bus_event(*bp, "{}", 2, on_done, &refused[3]) == 0 &&
                   mem_bus_ack(*bp, &id, 1, on_done, &refused[4]) == 0,
           "commands while down are accepted for an answer from the loop");
        ok(refused[0].calls == 0 && refused[1].calls == 0, "not answered inside the call");
        WAIT_FOR(refused[4].calls > 0, 1000);
        all = true;
        for (int i = 0; i < 5; i++)
                all = all && refused[i].calls == 1 && refused[i].r == -ENOTCONN;
        ok(all, "each done(-ENOTCONN) once");
        for (int i = 0; i < 5; i++)
                answer_reset(&refused[i]);

        spin(1200);
        ok(p->downs == 1 && p->ups == ups, "retries failing meanwhile: still one on_state(false)");

        ok(test_redis_restart(), "redis-server restarted on port %d", port);
        ok(WAIT_FOR(p->ups == ups + 1, 8000), "on_state(true) again");
        ok(mem_bus_connected(*bp) && mem_bus_reconnects(*bp) > 0, "reconnected (count %llu)",
           (unsigned long long) mem_bus_reconnects(*bp));
        ok(redisReconnect(rc) == REDIS_OK, "test connection back too");

        /* Redis came back empty: the bus recreated the group; jobs flow. */
        probe_reset(p);
        p->ups = ups + 1;
        xadd(stream, "spec", "{\"id\":\"after\"}", 14);
        mem_bus_set_job_credit(*bp, 10);
        ok(WAIT_FOR(p->n_jobs >= 1, 3000) && p->n_jobs == 1 && !p->jobs[0].pending && p->jobs[0].len == 14,
           "a job after the restart arrives");
        if (p->n_jobs >= 1) {
                const char *acks[] = {p->jobs[0].id};
                ok(mem_bus_publish_result(*bp, "after", "{}", 2, NULL, acks, 1, on_done, &a) == 0 &&
                           WAIT_FOR(a.calls > 0, 3000) && a.r == 0 && xpending(stream) == 0,
                   "and its result goes out and acks it");
        } else
                ok(false, "and its result goes out and acks it");
        answer_reset(&a);
}

int main(void) {
        probe p = {0};
        mem_bus *b;

        port = test_redis_start();
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
        if (au_loop_new(&loop) < 0) {
                printf("Bail out! au_loop_new\n");
                return 1;
        }
        rc = redisConnectWithTimeout("127.0.0.1", port, (struct timeval){.tv_sec = 2});
        if (!rc || rc->err) {
                printf("Bail out! connect to the test redis-server\n");
                return 1;
        }
        redisSetTimeout(rc, (struct timeval){.tv_sec = 2});

        test_config();
        test_jobs();

        b = bus_new(url, "n1", &p, NULL);
        ok(WAIT_FOR(p.ups == 1, 3000), "bus up for the next tests");
        test_heartbeat_events(b);
        test_malformed(&b, &p);
        test_stream_deleted(&b, &p);
        test_free_in_callback();
        test_unix_auth();
        test_outage(&b, &p);

        mem_bus_free(b);
        probe_reset(&p);
        redisFree(rc);
        au_loop_free(loop);
        test_redis_stop();
        return done_testing();
}
