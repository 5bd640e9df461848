/* SPDX-License-Identifier: MIT */
/*
 * bench/coordinator-load: the load generator and measurements of
 * bench/coordinator (issue 4, "Benchmark"), against a coordinator the script
 * has brought up with PostgreSQL, Redis and two real autoosd nodes.
 *
 * Scenarios, each timed from the first POST /v1/workflows (this host's
 * CLOCK_REALTIME) to the last audit row of its workflows (PostgreSQL's
 * clock_timestamp(), the same host's clock); completion is watched in
 * PostgreSQL, so the watching costs the coordinator nothing:
 *
 *   end to end   the real nodes (node_selector --real-selector): one wide
 *                workflow of --wide /bin/true steps, then --workflows
 *                workflows of 10 steps (1 -> 8 -> 1)
 *   coordinator  the same on --instant-nodes fake nodes run here (node
 *   alone        selector bench=instant): heartbeats as autoosd sends them,
 *                and every run spec read from autoos:jobs:<node> (group
 *                autoosd) answered at once with an "exited 0" result on
 *                autoos:results, then XACKed
 *   node loss    a workflow of 4 one-second steps on the real nodes; once
 *                one of them runs on --kill-node, that node's autoosd
 *                (--kill-pid) gets SIGKILL; time until GET /v1/nodes shows
 *                it lost, and until the workflow has succeeded elsewhere
 *   audit        rows the coordinator wrote per second in the instant
 *                scenarios (target 20,000/s, issue 12), and a burst of
 *                --audit-burst rows in one INSERT ... SELECT generate_series
 *                (the chain trigger's throughput), then autoos_audit_verify()
 *                over them; each scenario's chains are verified too; then
 *                --audit-rows rows through the coordinator's own writer
 *                (mem_store_audit_append) from --audit-writers connections,
 *                --audit-batch rows over 4 chains a transaction (target
 *                20,000/s, printed as a multiple of the one INSERT)
 *   memory       the coordinator's RSS after the warm-up, after every step
 *                of the scenarios (a leak shows as growth), and with
 *                --inflight one-step workflows in flight (their steps for
 *                no node, so they stay running); each real node's autoosd
 *                (--cpu nodes=PID) at the start and after its steps; with
 *                --soak N, N more steps on the instant nodes and the
 *                coordinator's RSS at 1,000, 2,000, 4,000... of them
 *   auth         the coordinator's thread CPU in sealing specs and checking
 *                results and heartbeats (autoos_coordinator_auth_seconds_total
 *                in /metrics) per step, against its whole CPU per step
 *                (target <= 5%, issue 10)
 *
 * Dispatch -> result latency comes from the audit trail: per (step,
 * attempt), ts of its "result" row minus ts of its "dispatched" row.
 * With --cpu NAME=PID, the CPU time of each process named (with its
 * children: a postmaster's backends, a node's sandboxes) and of this program
 * over each scenario is printed under the table, to show what the time went to.
 * Prints one table; exits 1 when a scenario could not be measured (a
 * missed target is reported in the table, not in the exit status).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/macro.h"
#include "memory/redis.h"
#include "memory/seal.h"
#include "memory/store-audit.h"

#define SMALL_STEPS 10
#define MAX_ROWS 16
#define POLL_MS 20

static struct {
        const char *url, *key, *db;
        char redis_url[300]; /* redis://HOST:PORT */
        unsigned wide, workflows, instant_nodes, instant_capacity, audit_burst, timeout_s, inflight;
        unsigned soak; /* steps on the instant nodes after the scenarios, RSS read as they go (0: none) */
        unsigned audit_rows, audit_writers, audit_batch;
        const char *real_key, *real_value;
        const char *kill_node;
        const char *node_keys; /* DIR: DIR/instant-N.key, the instant nodes' keys (bus_auth) */
        pid_t kill_pid;
        double nodes_alone; /* runs/s the real nodes deliver without the coordinator (0: not measured) */
        bool markdown, skip_real, skip_instant;
        struct {
                char name[32];
                pid_t pid;
        } cpu[12];
        size_t n_cpu;
} o = {
        .wide = 1000,
        .workflows = 100,
        .instant_nodes = 2,
        .instant_capacity = 64,
        .audit_burst = 10000,
        .audit_rows = 40000,
        .audit_writers = 4,
        .audit_batch = 16,
        .inflight = 10000,
        .timeout_s = 300,
        .real_key = "bench",
        .real_value = "real",
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
        (void) sig;
        interrupted = 1;
}

static double now_us(void) {
        return (double) au_wall_us();
}

static double mono_ms(void) {
        return (double) au_now_us() / 1e3;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

_printf_(1, 2) static void progress(const char *fmt, ...) {
        va_list ap;
        fputs("coordinator-load: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* ---- CPU time of the fleet's processes --------------------------------------------------------- */

/* utime + stime (and, with children, cutime + cstime) of /proc/<pid>/stat in clock ticks; *ppid too. */
static bool proc_ticks(pid_t pid, bool reaped_children, unsigned long long *ret, pid_t *ret_ppid) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        int ppid;
        unsigned long long ut, st;
        long long cut, cst;
        /* After ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
         * cutime cstime */
        if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld", &ppid, &ut,
                         &st, &cut, &cst) != 5)
                return false;
        *ret = ut + st + (reaped_children ? (unsigned long long) (cut + cst) : 0);
        if (ret_ppid)
                *ret_ppid = ppid;
        return true;
}

/*
 * CPU ms of each watched process, with its reaped children and its live
 * children (a postmaster's backends, a node's sandboxes), indexed as o.cpu.
 */
static void cpu_snapshot(double *ret_ms) {
        double tick_ms = 1000.0 / (double) sysconf(_SC_CLK_TCK);
        for (size_t i = 0; i < o.n_cpu; i++) {
                unsigned long long t = 0;
                ret_ms[i] = proc_ticks(o.cpu[i].pid, true, &t, NULL) ? (double) t * tick_ms : 0;
        }
        DIR *d = opendir("/proc");
        struct dirent *de;
        while (d && (de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                unsigned long long t;
                pid_t ppid;
                if (*end || pid <= 0 || !proc_ticks((pid_t) pid, false, &t, &ppid))
                        continue;
                for (size_t i = 0; i < o.n_cpu; i++)
                        if (ppid == o.cpu[i].pid)
                                ret_ms[i] += (double) t * tick_ms;
        }
        if (d)
                closedir(d);
}

/* "cpu% coordinator 85, postgres 60, ..." over wall_ms, names that repeat summed. */
static void cpu_note(const double *before, const double *after, double wall_ms, char *buf, size_t size) {
        size_t len = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < o.n_cpu && wall_ms > 0; i++) {
                bool seen = false;
                for (size_t k = 0; k < i; k++)
                        seen = seen || strcmp(o.cpu[k].name, o.cpu[i].name) == 0;
                if (seen)
                        continue;
                double ms = 0;
                for (size_t k = i; k < o.n_cpu; k++)
                        if (strcmp(o.cpu[k].name, o.cpu[i].name) == 0)
                                ms += after[k] - before[k];
                int n = snprintf(buf + len, size - len, "%s%s %.0f", len ? ", " : "cpu% ", o.cpu[i].name,
                                 ms * 100.0 / wall_ms);
                if (n < 0 || (size_t) n >= size - len)
                        break;
                len += (size_t) n;
        }
}

/* ---- a growable string ------------------------------------------------------------------------- */

typedef struct strbuf {
        au_buf b;
        bool oom; /* an append failed: the text is incomplete, and stays so */
} strbuf;

static void sb_addn(strbuf *b, const char *s, size_t n) {
        if (!b->oom && au_buf_append(&b->b, s, n) < 0)
                b->oom = true;
}

_printf_(2, 3) static void sb_addf(strbuf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (!b->oom && au_buf_vprintf(&b->b, fmt, ap) < 0)
                b->oom = true;
        va_end(ap);
}

static void sb_reset(strbuf *b) {
        au_buf_clear(&b->b);
}

/* ---- HTTP (libcurl, one keep-alive handle, main thread only) ----------------------------------- */

static CURL *http;
static struct curl_slist *http_headers;

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
        strbuf *b = userdata;
        sb_addn(b, data, size * n);
        return b->oom ? 0 : size * n;
}

/* METHOD path with body (NULL: none); the reply's body in *out. Returns the
 * HTTP status, 0 when nothing was answered (with a message printed). */
static long http_call(const char *method, const char *path, const char *body, strbuf *out) {
        char url[2048];
        long status = 0;
        snprintf(url, sizeof(url), "%s%s", o.url, path);
        sb_reset(out);
        curl_easy_setopt(http, CURLOPT_URL, url);
        curl_easy_setopt(http, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(http, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(http, CURLOPT_POSTFIELDSIZE, body ? (long) strlen(body) : 0L);
        curl_easy_setopt(http, CURLOPT_POST, body ? 1L : 0L);
        if (!body && strcmp(method, "GET") == 0)
                curl_easy_setopt(http, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(http, CURLOPT_WRITEDATA, out);
        CURLcode rc = curl_easy_perform(http);
        if (rc != CURLE_OK) {
                progress("%s %s: %s", method, path, curl_easy_strerror(rc));
                return 0;
        }
        curl_easy_getinfo(http, CURLINFO_RESPONSE_CODE, &status);
        return status;
}

static int http_init(void) {
        char auth[512];
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(http = curl_easy_init()))
                return -1;
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o.key);
        http_headers = curl_slist_append(http_headers, auth);
        http_headers = curl_slist_append(http_headers, "Content-Type: application/json");
        http_headers = curl_slist_append(http_headers, "Expect:");
        curl_easy_setopt(http, CURLOPT_HTTPHEADER, http_headers);
        curl_easy_setopt(http, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(http, CURLOPT_TIMEOUT_MS, 60000L);
        curl_easy_setopt(http, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(http, CURLOPT_NOSIGNAL, 1L);
        return 0;
}

/* POST /v1/workflows; the new id (36 chars) in ret_id. 429 is waited out. */
static int submit(const char *body, char ret_id[static 37]) {
        strbuf out = {};
        int ret = -1;
        for (int tries = 0; tries < 100 && !interrupted; tries++) {
                long st = http_call("POST", "/v1/workflows", body, &out);
                if (st == 429 || st == 503) {
                        sleep_ms(100);
                        continue;
                }
                if (st != 201 && st != 200) {
                        progress("POST /v1/workflows answered %ld: %.300s", st, out.b.p ? out.b.p : "");
                        break;
                }
                _cleanup_json_ yajl_val tree = NULL;
                const char *id = NULL;
                if (au_json_parse(out.b.p, out.b.len, out.b.len + 1, &tree, NULL) < 0 ||
                    au_json_get_string(au_json_get(tree, "id"), "id", &id, NULL) < 0 || strlen(id) != 36) {
                        progress("POST /v1/workflows: no id in %.300s", out.b.p);
                        break;
                }
                memcpy(ret_id, id, 37);
                ret = 0;
                break;
        }
        free(out.b.p);
        return ret;
}

/* ---- PostgreSQL -------------------------------------------------------------------------------- */

static PGconn *pg;

/* Runs sql with text parameters; NULL (message printed) unless it returned tuples or succeeded. */
static PGresult *pg_query(const char *sql, int n, const char *const *params) {
        PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
                progress("PostgreSQL: %s", PQresultErrorMessage(r));
                PQclear(r);
                return NULL;
        }
        return r;
}

static double pg_double(PGresult *r, int row, int col) {
        if (!r || PQntuples(r) <= row || PQgetisnull(r, row, col))
                return -1;
        return strtod(PQgetvalue(r, row, col), NULL);
}

/* ---- workflows --------------------------------------------------------------------------------- */

static void step_head(strbuf *b, const char *id, const char *sel_k, const char *sel_v) {
        sb_addf(b, "{\"id\":\"%s\",\"node_selector\":{\"%s\":\"%s\"},\"run\":{\"argv\":[\"/bin/true\"]}", id,
                sel_k, sel_v);
}

/* n independent steps of /bin/true. */
static char *workflow_wide(const char *name, unsigned n, const char *sel_k, const char *sel_v) {
        strbuf b = {};
        sb_addf(&b, "{\"name\":\"%s\",\"steps\":[", name);
        for (unsigned i = 0; i < n; i++) {
                char id[32];
                snprintf(id, sizeof(id), "s%u", i);
                if (i)
                        sb_addn(&b, ",", 1);
                step_head(&b, id, sel_k, sel_v);
                sb_addn(&b, "}", 1);
        }
        sb_addn(&b, "]}", 2);
        if (b.oom) {
                free(b.b.p);
                return NULL;
        }
        return b.b.p;
}

/* 10 steps: s0, then s1..s8 needing s0, then s9 needing s1..s8. */
static char *workflow_small(const char *name, const char *sel_k, const char *sel_v) {
        strbuf b = {};
        sb_addf(&b, "{\"name\":\"%s\",\"steps\":[", name);
        step_head(&b, "s0", sel_k, sel_v);
        sb_addn(&b, "}", 1);
        for (unsigned i = 1; i < SMALL_STEPS - 1; i++) {
                char id[16];
                snprintf(id, sizeof(id), "s%u", i);
                sb_addn(&b, ",", 1);
                step_head(&b, id, sel_k, sel_v);
                sb_addf(&b, ",\"needs\":[\"s0\"]}");
        }
        sb_addn(&b, ",", 1);
        step_head(&b, "s9", sel_k, sel_v);
        sb_addf(&b, ",\"needs\":[");
        for (unsigned i = 1; i < SMALL_STEPS - 1; i++)
                sb_addf(&b, "%s\"s%u\"", i > 1 ? "," : "", i);
        sb_addn(&b, "]}]}", 4);
        if (b.oom) {
                free(b.b.p);
                return NULL;
        }
        return b.b.p;
}

/* ---- instant nodes ----------------------------------------------------------------------------- */

typedef struct fake_node {
        char id[64];
        bool sealed; /* --node-keys: heartbeats and results carry the node's MAC, as autoosd's do */
        uint8_t key[MEM_SEAL_KEY_BYTES];
        pthread_t thread;
        bool started;
        unsigned long answered;
        int error;
} fake_node;

static fake_node *fakes;
static pthread_t heartbeat_thread;
static bool heartbeat_started;
static volatile bool fakes_stop;

/* A blocking connection (memory/redis.c), with a command timeout longer than the fake nodes' BLOCK 100. */
static redisContext *redis_connect(void) {
        redisContext *c = NULL;
        au_error err = {0};
        if (mem_redis_connect(o.redis_url, 5000, 5000, &c, &err) < 0) {
                progress("%s: %s", o.redis_url, err.msg);
                return NULL;
        }
        return c;
}

static void *heartbeats(void *userdata) {
        (void) userdata;
        redisContext *c = redis_connect();
        char cap[16], started[32];
        snprintf(cap, sizeof(cap), "%u", o.instant_capacity);
        snprintf(started, sizeof(started), "%lld", (long long) time(NULL));
        unsigned long long beat = 0;
        while (c && !fakes_stop) {
                beat++;
                for (unsigned i = 0; i < o.instant_nodes; i++) {
                        char b[24], auth[MEM_SEAL_HEX_LEN + 1] = "-";
                        snprintf(b, sizeof(b), "%llu", beat);
                        if (fakes[i].sealed) {
                                const char *parts[] = {fakes[i].id, started,         b,       cap,     "0",
                                                       "0",         "bench=instant", "bench", "active"};
                                size_t lens[9];
                                for (size_t k = 0; k < 9; k++)
                                        lens[k] = strlen(parts[k]);
                                mem_seal_mac(fakes[i].key, MEM_SEAL_HEARTBEAT, parts, lens, 9, auth);
                        }
                        redisAppendCommand(
                                c,
                                "HSET autoos:node:%s capacity %s running 0 queued 0 labels bench=instant "
                                "version bench state active started_at %s beat %s auth %s",
                                fakes[i].id, cap, started, b, auth);
                        redisAppendCommand(c, "PEXPIRE autoos:node:%s 3000", fakes[i].id);
                        redisAppendCommand(c, "SADD autoos:nodes %s", fakes[i].id);
                }
                for (unsigned i = 0; i < o.instant_nodes * 3; i++) {
                        redisReply *r = NULL;
                        if (redisGetReply(c, (void **) &r) != REDIS_OK) {
                                progress("heartbeat: %s", c->errstr);
                                redisFree(c);
                                return NULL;
                        }
                        freeReplyObject(r);
                }
                for (int k = 0; k < 20 && !fakes_stop; k++)
                        sleep_ms(50);
        }
        if (c)
                redisFree(c);
        return NULL;
}

static void iso_now(char *buf, size_t size) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* An "exited 0" result for spec (the same shape as sandbox/result.c writes). */
static char *instant_result(const char *node, const char *spec, size_t len) {
        _cleanup_json_ yajl_val tree = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        const char *id = NULL, *wf = NULL, *step = NULL;
        uint64_t attempt = 0;
        char now[64];

        if (au_json_parse(spec, len, len + 1, &tree, NULL) < 0 ||
            au_json_get_string(au_json_get(tree, "id"), "id", &id, NULL) < 0)
                return NULL;
        (void) au_json_get_string(au_json_get(tree, "workflow"), "workflow", &wf, NULL);
        (void) au_json_get_string(au_json_get(tree, "step"), "step", &step, NULL);
        (void) au_json_get_uint64(au_json_get(tree, "attempt"), "attempt", &attempt, NULL);
        iso_now(now, sizeof(now));
        if (!(g = au_json_gen_new(false)))
                return NULL;
        if (au_json_gen_map_open(g) < 0 || au_json_gen_kv_string(g, "id", id) < 0 ||
            au_json_gen_kv_string(g, "node", node) < 0 ||
            (wf && au_json_gen_kv_string(g, "workflow", wf) < 0) ||
            (step && au_json_gen_kv_string(g, "step", step) < 0) ||
            (attempt > 0 && au_json_gen_kv_uint64(g, "attempt", attempt) < 0) ||
            au_json_gen_kv_string(g, "outcome", "exited") < 0 || au_json_gen_string(g, "exit_code") < 0 ||
            au_json_gen_int64(g, 0) < 0 || au_json_gen_string(g, "signal") < 0 || au_json_gen_null(g) < 0 ||
            au_json_gen_kv_uint64(g, "wall_ms", 0) < 0 || au_json_gen_kv_uint64(g, "cpu_ms", 0) < 0 ||
            au_json_gen_kv_uint64(g, "memory_peak_bytes", 0) < 0 ||
            au_json_gen_kv_uint64(g, "oom_kills", 0) < 0 || au_json_gen_kv_string(g, "stdout", "") < 0 ||
            au_json_gen_kv_string(g, "stderr", "") < 0 ||
            au_json_gen_kv_bool(g, "stdout_truncated", false) < 0 ||
            au_json_gen_kv_bool(g, "stderr_truncated", false) < 0 ||
            au_json_gen_string(g, "denied_syscalls") < 0 || au_json_gen_array_open(g) < 0 ||
            au_json_gen_array_close(g) < 0 || au_json_gen_kv_uint64(g, "denied_count", 0) < 0 ||
            au_json_gen_kv_string(g, "started_at", now) < 0 ||
            au_json_gen_kv_string(g, "finished_at", now) < 0 || au_json_gen_map_close(g) < 0)
                return NULL;
        return au_json_gen_finish(g, NULL);
}

/* One fake node: reads its jobs stream as autoosd does and answers each spec at once. */
static void *fake_node_main(void *userdata) {
        fake_node *f = userdata;
        char key[128];
        redisContext *c = redis_connect();
        if (!c) {
                f->error = 1;
                return NULL;
        }
        snprintf(key, sizeof(key), "autoos:jobs:%s", f->id);
        while (!fakes_stop) {
                redisReply *r = redisCommand(
                        c, "XREADGROUP GROUP autoosd %s COUNT 512 BLOCK 100 STREAMS %s >", f->id, key);
                if (!r) {
                        progress("%s: XREADGROUP: %s", f->id, c->errstr);
                        f->error = 1;
                        break;
                }
                if (r->type == REDIS_REPLY_ERROR) {
                        progress("%s: XREADGROUP: %s", f->id, r->str);
                        freeReplyObject(r);
                        f->error = 1;
                        break;
                }
                if (r->type != REDIS_REPLY_ARRAY || r->elements != 1) {
                        freeReplyObject(r);
                        continue;
                }
                redisReply *entries = r->element[0]->element[1];
                size_t sent = 0;
                for (size_t i = 0; i < entries->elements; i++) {
                        redisReply *e = entries->element[i], *kv = e->element[1];
                        const char *token = "";
                        for (size_t k = 0; k + 1 < kv->elements; k += 2)
                                if (strcmp(kv->element[k]->str, "token") == 0)
                                        token = kv->element[k + 1]->str;
                        for (size_t k = 0; k + 1 < kv->elements; k += 2) {
                                if (strcmp(kv->element[k]->str, "spec") != 0)
                                        continue; /* a cancel (or a spec's other fields): nothing runs here
                                                   */
                                _cleanup_free_ char *res = instant_result(f->id, kv->element[k + 1]->str,
                                                                          kv->element[k + 1]->len);
                                if (!res) {
                                        progress("%s: cannot answer spec %.200s", f->id,
                                                 kv->element[k + 1]->str);
                                        continue;
                                }
                                if (f->sealed) {
                                        /* As autoosd seals it (the spec's MAC is not checked here: these
                                         * answer at once). */
                                        char auth[MEM_SEAL_HEX_LEN + 1];
                                        const char *parts[] = {f->id, token, res};
                                        size_t lens[] = {strlen(f->id), strlen(token), strlen(res)};
                                        mem_seal_mac(f->key, MEM_SEAL_RESULT, parts, lens, 3, auth);
                                        redisAppendCommand(
                                                c,
                                                "XADD autoos:results * result %s node %s token %s auth %s",
                                                res, f->id, token, auth);
                                } else
                                        redisAppendCommand(c, "XADD autoos:results * result %s node %s", res,
                                                           f->id);
                                sent++;
                        }
                        redisAppendCommand(c, "XACK %s autoosd %s", key, e->element[0]->str);
                        sent++;
                }
                for (size_t i = 0; i < sent; i++) {
                        redisReply *a = NULL;
                        if (redisGetReply(c, (void **) &a) != REDIS_OK) {
                                f->error = 1;
                                break;
                        }
                        freeReplyObject(a);
                }
                f->answered += entries->elements;
                freeReplyObject(r);
                if (f->error)
                        break;
        }
        redisFree(c);
        return NULL;
}

static int fakes_start(void) {
        redisContext *c = redis_connect();
        if (!c)
                return -1;
        fakes = calloc(o.instant_nodes, sizeof(fake_node));
        if (!fakes) {
                redisFree(c);
                return -1;
        }
        for (unsigned i = 0; i < o.instant_nodes; i++) {
                snprintf(fakes[i].id, sizeof(fakes[i].id), "instant-%u", i + 1);
                if (o.node_keys) {
                        char path[4096];
                        au_error err = {0};
                        snprintf(path, sizeof(path), "%s/%s.key", o.node_keys, fakes[i].id);
                        if (mem_seal_key_load(path, fakes[i].key, &err) < 0) {
                                progress("%s", err.msg);
                                redisFree(c);
                                return -1;
                        }
                        fakes[i].sealed = true;
                }
                redisReply *r =
                        redisCommand(c, "XGROUP CREATE autoos:jobs:%s autoosd 0 MKSTREAM", fakes[i].id);
                if (!r || (r->type == REDIS_REPLY_ERROR && !strstr(r->str, "BUSYGROUP"))) {
                        progress("XGROUP CREATE: %s", r ? r->str : c->errstr);
                        freeReplyObject(r);
                        redisFree(c);
                        return -1;
                }
                freeReplyObject(r);
        }
        redisFree(c);
        for (unsigned i = 0; i < o.instant_nodes; i++) {
                if (pthread_create(&fakes[i].thread, NULL, fake_node_main, &fakes[i]) != 0)
                        return -1;
                fakes[i].started = true;
        }
        if (pthread_create(&heartbeat_thread, NULL, heartbeats, NULL) != 0)
                return -1;
        heartbeat_started = true;
        return 0;
}

static void fakes_end(void) {
        fakes_stop = true;
        for (unsigned i = 0; fakes && i < o.instant_nodes; i++)
                if (fakes[i].started)
                        pthread_join(fakes[i].thread, NULL);
        if (heartbeat_started)
                pthread_join(heartbeat_thread, NULL);
        heartbeat_started = false;
        free(fakes);
        fakes = NULL;
}

/* The coordinator lists every node named as healthy (10 s). */
static bool nodes_healthy(const char *const *names, size_t n) {
        strbuf out = {};
        bool ok = false;
        double deadline = mono_ms() + 10000;
        while (!ok && !interrupted && mono_ms() < deadline) {
                if (http_call("GET", "/v1/nodes", NULL, &out) == 200) {
                        _cleanup_json_ yajl_val tree = NULL;
                        if (au_json_parse(out.b.p, out.b.len, out.b.len + 1, &tree, NULL) == 0) {
                                yajl_val nodes = au_json_get(tree, "nodes");
                                size_t seen = 0;
                                for (size_t i = 0; YAJL_IS_ARRAY(nodes) && i < nodes->u.array.len; i++) {
                                        const char *id = NULL, *st = NULL;
                                        yajl_val nd = nodes->u.array.values[i];
                                        if (au_json_get_string(au_json_get(nd, "id"), "id", &id, NULL) < 0 ||
                                            au_json_get_string(au_json_get(nd, "state"), "state", &st,
                                                               NULL) < 0)
                                                continue;
                                        for (size_t k = 0; k < n; k++)
                                                if (strcmp(names[k], id) == 0 && strcmp(st, "healthy") == 0)
                                                        seen++;
                                }
                                ok = seen == n;
                        }
                }
                if (!ok)
                        sleep_ms(100);
        }
        free(out.b.p);
        return ok;
}

/* ---- one scenario ------------------------------------------------------------------------------ */

typedef struct row {
        char scenario[80];
        double n, seconds, rate, p50, p99; /* < 0: not applicable */
        char target[32];
        int verdict; /* -1 no target, 0 missed, 1 met */
        char note[160];
        char cpu[160];
} row;

static row rows[MAX_ROWS];
static size_t n_rows;
static int failures;

static row *row_new(const char *scenario, const char *target) {
        row *r = &rows[n_rows < MAX_ROWS ? n_rows++ : MAX_ROWS - 1];
        memset(r, 0, sizeof(*r));
        snprintf(r->scenario, sizeof(r->scenario), "%s", scenario);
        snprintf(r->target, sizeof(r->target), "%s", target ? target : "");
        r->n = r->seconds = r->rate = r->p50 = r->p99 = -1;
        r->verdict = -1;
        return r;
}

static void row_fail(row *r, const char *fmt, ...) _printf_(2, 3);
static void row_fail(row *r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->note, sizeof(r->note), fmt, ap);
        va_end(ap);
        progress("%s: %s", r->scenario, r->note);
        failures++;
}

/* The ids as a PostgreSQL array literal. */
static char *uuid_array(char (*ids)[37], size_t n) {
        strbuf b = {};
        sb_addn(&b, "{", 1);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        sb_addn(&b, ",", 1);
                sb_addn(&b, ids[i], 36);
        }
        sb_addn(&b, "}", 1);
        if (b.oom) {
                free(b.b.p);
                return NULL;
        }
        return b.b.p;
}

/* Waits until each workflow of the array is in a final state (or awaiting_human); 0, or -1 on timeout. */
static int wait_workflows(const char *arr, size_t n, unsigned timeout_s, bool verbose) {
        const char *params[] = {arr};
        double deadline = mono_ms() + timeout_s * 1000.0, next_note = mono_ms() + 5000;
        while (!interrupted) {
                PGresult *r = pg_query(
                        "SELECT count(*) FILTER (WHERE state IN ('succeeded', 'failed', 'cancelled', "
                        "'awaiting_human')) FROM workflows WHERE id = ANY($1::uuid[])",
                        1, params);
                double done = pg_double(r, 0, 0);
                PQclear(r);
                if (done >= (double) n)
                        return 0;
                if (mono_ms() > deadline)
                        return -1;
                if (verbose && mono_ms() > next_note) {
                        r = pg_query(
                                "SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FROM steps "
                                "WHERE workflow_id = ANY($1::uuid[])",
                                1, params);
                        progress("  ... %.0f of %.0f steps succeeded", pg_double(r, 0, 0),
                                 pg_double(r, 0, 1));
                        PQclear(r);
                        next_note = mono_ms() + 5000;
                }
                sleep_ms(POLL_MS);
        }
        return -1;
}

/* A p99 the rows of run_batch() must also stay under to meet their target (0: none). */
static double p99_target_ms;

/* Audit rows written for a batch's workflows, and the batch's seconds (summed over batches). */
typedef struct batch_stats {
        double audit_rows, seconds;
        double steps, coord_cpu_ms, auth_cpu_s, auth_ops; /* auth_cpu_s < 0: the metric is not there */
        double chains, chains_bad;                        /* audit chains checked, and failing */
} batch_stats;

/* ---- the coordinator's /metrics and memory ------------------------------------------------------ */

/* The sum of a metric's samples (every label) in GET /metrics; -1 when it is not there. */
static double metric_sum(const char *name) {
        strbuf out = {};
        double sum = -1;
        size_t len = strlen(name);
        if (http_call("GET", "/metrics", NULL, &out) == 200 && out.b.p)
                for (char *line = out.b.p; line && *line;
                     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                        if (strncmp(line, name, len) != 0 || (line[len] != ' ' && line[len] != '{'))
                                continue;
                        char *sp = strchr(line + len, ' ');
                        if (sp)
                                sum = (sum < 0 ? 0 : sum) + strtod(sp + 1, NULL);
                }
        free(out.b.p);
        return sum;
}

/* The coordinator's pid (the --cpu entry named coordinator), or 0. */
static pid_t coordinator_pid(void) {
        for (size_t i = 0; i < o.n_cpu; i++)
                if (strcmp(o.cpu[i].name, "coordinator") == 0)
                        return o.cpu[i].pid;
        return 0;
}

/* VmRSS of pid in MiB, or -1. */
static double rss_mib(pid_t pid) {
        char path[64], line[256];
        double kib = -1;
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        FILE *f = pid > 0 ? fopen(path, "re") : NULL;
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "VmRSS:", 6) == 0)
                        kib = strtod(line + 6, NULL);
        if (f)
                fclose(f);
        return kib < 0 ? -1 : kib / 1024.0;
}

/* CPU ms of the --cpu entries named name, between two snapshots. */
static double cpu_of(const char *name, const double *before, const double *after) {
        double ms = 0;
        for (size_t i = 0; i < o.n_cpu; i++)
                if (strcmp(o.cpu[i].name, name) == 0)
                        ms += after[i] - before[i];
        return ms;
}

/*
 * Submits each body (one after another, as fast as the API takes them),
 * waits for all to end, and fills r: steps that succeeded, seconds from the
 * first POST to the last audit row, steps/s, dispatch -> result p50/p99.
 */
static int run_batch(row *r, char **bodies, size_t n, double target_rate, batch_stats *bs) {
        char(*ids)[37] = calloc(n, 37);
        _cleanup_free_ char *arr = NULL;
        int ret = -1;
        if (!ids) {
                row_fail(r, "out of memory");
                return -1;
        }
        double cpu0[ELEMENTSOF(o.cpu)], cpu1[ELEMENTSOF(o.cpu)];
        double auth0 = metric_sum("autoos_coordinator_auth_seconds_total");
        double ops0 = metric_sum("autoos_coordinator_auth_operations_total");
        cpu_snapshot(cpu0);
        double t0 = now_us(), m0 = mono_ms();
        for (size_t i = 0; i < n; i++)
                if (submit(bodies[i], ids[i]) < 0) {
                        row_fail(r, "submission %zu of %zu refused", i + 1, n);
                        goto out;
                }
        progress("  %zu workflow(s) submitted in %.0f ms", n, mono_ms() - m0);
        if (!(arr = uuid_array(ids, n))) {
                row_fail(r, "out of memory");
                goto out;
        }
        if (wait_workflows(arr, n, o.timeout_s, true) < 0) {
                row_fail(r, interrupted ? "interrupted" : "not finished after %u s", o.timeout_s);
                goto out;
        }
        cpu_snapshot(cpu1);
        cpu_note(cpu0, cpu1, mono_ms() - m0, r->cpu, sizeof(r->cpu));
        double auth1 = metric_sum("autoos_coordinator_auth_seconds_total");
        double ops1 = metric_sum("autoos_coordinator_auth_operations_total");
        bs->coord_cpu_ms += cpu_of("coordinator", cpu0, cpu1);
        if (auth0 < 0 || auth1 < 0 || bs->auth_cpu_s < 0)
                bs->auth_cpu_s = -1;
        else {
                bs->auth_cpu_s += auth1 - auth0;
                bs->auth_ops += ops1 - ops0;
        }

        const char *params[] = {arr};
        PGresult *q = pg_query("SELECT (SELECT count(*) FROM steps WHERE workflow_id = ANY($1::uuid[]) AND "
                               "state = 'succeeded'), "
                               "       (SELECT count(*) FROM steps WHERE workflow_id = ANY($1::uuid[])), "
                               "       (SELECT count(*) FROM workflows WHERE id = ANY($1::uuid[]) AND state "
                               "<> 'succeeded'), "
                               "       count(*), min(ts_epoch_us), max(ts_epoch_us) "
                               "  FROM audit_log WHERE workflow_id = ANY($1::uuid[])",
                               1, params);
        if (!q) {
                row_fail(r, "cannot read the results from PostgreSQL");
                goto out;
        }
        double ok_steps = pg_double(q, 0, 0), all_steps = pg_double(q, 0, 1), bad_wf = pg_double(q, 0, 2);
        double audit_rows = pg_double(q, 0, 3), last_us = pg_double(q, 0, 5);
        PQclear(q);
        bs->steps += ok_steps;
        /* Each workflow's chain, checked again (the checkpoints: autoosctl audit --verify). */
        q = pg_query("SELECT count(*), count(*) FILTER (WHERE autoos_audit_verify(w) IS NOT NULL) "
                     "FROM unnest($1::uuid[]) AS w",
                     1, (const char *const[]){arr});
        bs->chains += pg_double(q, 0, 0);
        bs->chains_bad += pg_double(q, 0, 1);
        if (pg_double(q, 0, 1) > 0)
                row_fail(r, "%.0f audit chain(s) do not verify", pg_double(q, 0, 1));
        PQclear(q);
        r->n = ok_steps;
        r->seconds = (last_us - t0) / 1e6;
        bs->audit_rows += audit_rows;
        bs->seconds += r->seconds;
        r->rate = r->seconds > 0 ? ok_steps / r->seconds : 0;
        if (bad_wf > 0) {
                q = pg_query("SELECT w.state, s.step_id, s.state, coalesce(left(ru.result::text, 200), '') "
                             "  FROM workflows w JOIN steps s ON s.workflow_id = w.id "
                             "  LEFT JOIN runs ru ON ru.workflow_id = w.id AND ru.step_id = s.step_id "
                             " WHERE w.id = ANY($1::uuid[]) AND s.state <> 'succeeded' LIMIT 1",
                             1, params);
                row_fail(r,
                         "%.0f workflow(s) did not succeed (%.0f of %.0f steps did); first: workflow %s, "
                         "step %s %s %s",
                         bad_wf, ok_steps, all_steps, q && PQntuples(q) ? PQgetvalue(q, 0, 0) : "?",
                         q && PQntuples(q) ? PQgetvalue(q, 0, 1) : "?",
                         q && PQntuples(q) ? PQgetvalue(q, 0, 2) : "?",
                         q && PQntuples(q) ? PQgetvalue(q, 0, 3) : "");
                PQclear(q);
        }

        /* Per (step, attempt): its first "dispatched" row and its first "result" row. */
        q = pg_query(
                "WITH d AS (SELECT workflow_id w, coalesce(detail->>'step', detail->>'step_id') s, "
                "coalesce(detail->>'attempt', '') a, min(ts_epoch_us) t "
                "             FROM audit_log WHERE workflow_id = ANY($1::uuid[]) AND action = 'dispatched' "
                "            GROUP BY 1, 2, 3), "
                "     r AS (SELECT workflow_id w, coalesce(detail->>'step', detail->>'step_id') s, "
                "coalesce(detail->>'attempt', '') a, min(ts_epoch_us) t "
                "             FROM audit_log WHERE workflow_id = ANY($1::uuid[]) AND action = 'result' "
                "            GROUP BY 1, 2, 3) "
                "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY (r.t - d.t) / 1000.0), "
                "       percentile_cont(0.99) WITHIN GROUP (ORDER BY (r.t - d.t) / 1000.0) "
                "  FROM d JOIN r USING (w, s, a)",
                1, params);
        if (q && pg_double(q, 0, 0) > 0) {
                r->p50 = pg_double(q, 0, 1);
                r->p99 = pg_double(q, 0, 2);
        } else if (q)
                snprintf(r->note + strlen(r->note), sizeof(r->note) - strlen(r->note),
                         "%sno dispatched/result audit pairs", r->note[0] ? "; " : "");
        PQclear(q);
        if (target_rate > 0 && bad_wf == 0)
                r->verdict = r->rate >= target_rate &&
                             (p99_target_ms <= 0 || (r->p99 >= 0 && r->p99 < p99_target_ms));
        progress("  %.0f steps in %.2f s: %.0f steps/s, dispatch -> result p50 %.1f ms, p99 %.1f ms; %s",
                 r->n, r->seconds, r->rate, r->p50, r->p99, r->cpu);
        ret = bad_wf > 0 ? -1 : 0;
out:
        free(ids);
        return ret;
}

/* A wide workflow and a batch of small ones on the nodes selected by k=v. */
static void run_pair(const char *what, const char *k, const char *v, double target, const char *target_text,
                     batch_stats *total) {
        char label[80], name[64];
        /* Warm-up, untimed: connections, prepared plans, the nodes' pools. */
        snprintf(name, sizeof(name), "bench-warmup-%s", v);
        _cleanup_free_ char *warm = workflow_wide(name, 20, k, v);
        char wid[37];
        if (warm && submit(warm, wid) == 0) {
                char arr[64];
                snprintf(arr, sizeof(arr), "{%s}", wid);
                (void) wait_workflows(arr, 1, 60, false);
        }

        snprintf(label, sizeof(label), "%s: 1 workflow of %u steps", what, o.wide);
        progress("%s", label);
        row *r = row_new(label, target_text);
        snprintf(name, sizeof(name), "bench-wide-%s", v);
        char *body = workflow_wide(name, o.wide, k, v);
        if (!body)
                row_fail(r, "out of memory");
        else
                (void) run_batch(r, &body, 1, target, total);
        free(body);
        if (interrupted)
                return;

        snprintf(label, sizeof(label), "%s: %u workflows of %u steps", what, o.workflows, SMALL_STEPS);
        progress("%s", label);
        r = row_new(label, target_text);
        char **bodies = calloc(o.workflows, sizeof(char *));
        bool oom = !bodies;
        for (unsigned i = 0; !oom && i < o.workflows; i++) {
                snprintf(name, sizeof(name), "bench-small-%s-%u", v, i);
                oom = !(bodies[i] = workflow_small(name, k, v));
        }
        if (oom)
                row_fail(r, "out of memory");
        else
                (void) run_batch(r, bodies, o.workflows, target, total);
        for (unsigned i = 0; bodies && i < o.workflows; i++)
                free(bodies[i]);
        free(bodies);
}

/* ---- node loss --------------------------------------------------------------------------------- */

/* From GET /v1/workflows/{id}: whether a step is dispatched or running on node. */
static bool step_on_node(const char *id, const char *node, strbuf *out) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/workflows/%s", id);
        if (http_call("GET", path, NULL, out) != 200)
                return false;
        _cleanup_json_ yajl_val tree = NULL;
        if (au_json_parse(out->b.p, out->b.len, out->b.len + 1, &tree, NULL) < 0)
                return false;
        yajl_val steps = au_json_get(tree, "steps");
        for (size_t i = 0; YAJL_IS_ARRAY(steps) && i < steps->u.array.len; i++) {
                const char *st = NULL, *nd = NULL;
                yajl_val s = steps->u.array.values[i];
                if (au_json_get_string(au_json_get(s, "state"), "state", &st, NULL) == 0 &&
                    au_json_get_string(au_json_get(s, "node"), "node", &nd, NULL) == 0 &&
                    strcmp(nd, node) == 0 && (strcmp(st, "running") == 0 || strcmp(st, "dispatched") == 0))
                        return true;
        }
        return false;
}

/* The state GET /v1/nodes gives node ("" when it is not listed). */
static void node_state(const char *node, strbuf *out, char *buf, size_t size) {
        buf[0] = '\0';
        if (http_call("GET", "/v1/nodes", NULL, out) != 200)
                return;
        _cleanup_json_ yajl_val tree = NULL;
        if (au_json_parse(out->b.p, out->b.len, out->b.len + 1, &tree, NULL) < 0)
                return;
        yajl_val nodes = au_json_get(tree, "nodes");
        for (size_t i = 0; YAJL_IS_ARRAY(nodes) && i < nodes->u.array.len; i++) {
                const char *id = NULL, *st = NULL;
                yajl_val nd = nodes->u.array.values[i];
                if (au_json_get_string(au_json_get(nd, "id"), "id", &id, NULL) == 0 &&
                    strcmp(id, node) == 0 &&
                    au_json_get_string(au_json_get(nd, "state"), "state", &st, NULL) == 0)
                        snprintf(buf, size, "%s", st);
        }
}

static void node_loss(void) {
        row *det = row_new("node loss: SIGKILL -> node marked lost", "<= 3 s");
        row *moved = row_new("node loss: SIGKILL -> its step done elsewhere", "< 5 s (tests)");
        strbuf out = {}, b = {};
        char id[37], state[32], arr[64];

        progress("node loss: a workflow of 4 one-second steps, then SIGKILL to %s (pid %d)", o.kill_node,
                 (int) o.kill_pid);
        sb_addf(&b, "{\"name\":\"bench-node-loss\",\"steps\":[");
        for (int i = 0; i < 4; i++)
                sb_addf(&b,
                        "%s{\"id\":\"sleep%d\",\"node_selector\":{\"%s\":\"%s\"},\"run\":{\"argv\":[\"/bin/"
                        "sleep\",\"1\"]}}",
                        i ? "," : "", i, o.real_key, o.real_value);
        sb_addf(&b, "]}");
        if (b.oom || submit(b.b.p, id) < 0) {
                row_fail(det, "cannot submit the workflow");
                goto out;
        }
        snprintf(arr, sizeof(arr), "{%s}", id);
        double deadline = mono_ms() + 5000;
        bool on_node = false;
        while (!interrupted && mono_ms() < deadline && !(on_node = step_on_node(id, o.kill_node, &out)))
                sleep_ms(10);
        if (!on_node)
                snprintf(moved->note, sizeof(moved->note), "no step of it had reached %s", o.kill_node);

        double t_kill = mono_ms(), t_lost = -1, t_done = -1;
        if (kill(o.kill_pid, SIGKILL) < 0) {
                row_fail(det, "kill %d: %s", (int) o.kill_pid, strerror(errno));
                goto out;
        }
        while (!interrupted && mono_ms() - t_kill < 30000 && (t_lost < 0 || t_done < 0)) {
                if (t_lost < 0) {
                        node_state(o.kill_node, &out, state, sizeof(state));
                        if (strcmp(state, "lost") == 0)
                                t_lost = mono_ms();
                }
                if (t_done < 0) {
                        const char *params[] = {arr};
                        PGresult *q = pg_query("SELECT state FROM workflows WHERE id = ANY($1::uuid[])", 1,
                                               params);
                        if (q && PQntuples(q) == 1 && strcmp(PQgetvalue(q, 0, 0), "running") != 0) {
                                t_done = mono_ms();
                                if (strcmp(PQgetvalue(q, 0, 0), "succeeded") != 0)
                                        row_fail(moved, "the workflow ended %s", PQgetvalue(q, 0, 0));
                        }
                        PQclear(q);
                }
                sleep_ms(POLL_MS);
        }
        if (t_lost < 0)
                row_fail(det, "%s not marked lost within 30 s", o.kill_node);
        else {
                det->seconds = (t_lost - t_kill) / 1000.0;
                det->verdict = det->seconds <= 3.0;
        }
        if (t_done < 0)
                row_fail(moved, "the workflow had not ended 30 s after the kill");
        else {
                moved->seconds = (t_done - t_kill) / 1000.0;
                moved->n = 4;
                if (!moved->note[0])
                        moved->verdict = moved->seconds < 5.0;
        }
        progress("  lost after %.2f s; workflow done %.2f s after the kill", det->seconds, moved->seconds);
out:
        free(out.b.p);
        free(b.b.p);
}

/* ---- audit ------------------------------------------------------------------------------------- */

/* One connection appending rows as the coordinator does: mem_store_audit_append(), a transaction per batch.
 */
typedef struct audit_writer {
        pthread_t thread;
        unsigned index, rows, written;
        char (*wfs)[37];
        size_t n_wfs;
        char error[200];
} audit_writer;

static int cmp_chain(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static void *audit_writer_main(void *userdata) {
        audit_writer *w = userdata;
        PGconn *conn = NULL;
        au_error err = {0};
        unsigned batch = o.audit_batch, per_chain = (o.audit_batch + 3) / 4;
        _cleanup_free_ mem_audit_row *batch_rows = calloc(batch, sizeof(mem_audit_row));
        _cleanup_free_ char(*details)[160] = calloc(batch, 160);
        unsigned long round = 0;

        if (!batch_rows || !details || mem_pg_connect(o.db, "bench audit writer", &conn, &err) < 0) {
                snprintf(w->error, sizeof(w->error), "%.190s", err.msg[0] ? err.msg : "out of memory");
                return NULL;
        }
        while (w->written < w->rows && !interrupted) {
                unsigned k = MIN(batch, w->rows - w->written);
                const char *chains[4];
                size_t per = MAX(w->n_wfs / o.audit_writers, (size_t) 1);
                /*
                 * Four chains a batch, of the workflows this writer has to itself (the
                 * coordinator's threads mostly work on different workflows), in lock
                 * order, as the coordinator's flush sorts its rows.
                 */
                for (unsigned j = 0; j < 4; j++)
                        chains[j] = w->wfs[(w->index * per + (round * 4 + j) % per) % w->n_wfs];
                qsort(chains, 4, sizeof(char *), cmp_chain);
                for (unsigned i = 0; i < k; i++) {
                        snprintf(details[i], 160,
                                 "{\"step\": \"s%lu\", \"attempt\": 1, \"node\": \"instant-%u\", \"run\": "
                                 "\"bench.s%lu.1\"}",
                                 round, w->index, round);
                        batch_rows[i] = (mem_audit_row){chains[MIN(i / per_chain, 3u)],
                                                        i % 2 ? "result" : "dispatched", details[i]};
                }
                int r = mem_store_audit_append(conn, "coordinator", batch_rows, k,
                                               MEM_AUDIT_BEGIN | MEM_AUDIT_COMMIT, NULL, NULL, &err);
                if (r == -EAGAIN) { /* a deadlock with another writer: PostgreSQL chose this one; again */
                        mem_pg_rollback(conn);
                        continue;
                }
                if (r < 0) {
                        mem_pg_rollback(conn);
                        snprintf(w->error, sizeof(w->error), "%.190s", err.msg);
                        break;
                }
                w->written += k;
                round++;
        }
        mem_pg_close(conn);
        return NULL;
}

/*
 * Audit rows written through the coordinator's own writer (memory/store-audit.c)
 * as fast as it goes: --audit-writers connections, each appending batches of
 * --audit-batch rows over 4 of 200 workflows' chains in one transaction, as
 * the coordinator flushes a step transaction's rows. Every chain verified after.
 */
static void audit_writers(row *r, double peer_rate) {
        enum { N_WF = 200 };
        _cleanup_free_ audit_writer *w = calloc(o.audit_writers, sizeof(audit_writer));
        _cleanup_free_ char(*wfs)[37] = calloc(N_WF, 37);
        double cpu0[ELEMENTSOF(o.cpu)], cpu1[ELEMENTSOF(o.cpu)];
        unsigned started = 0, written = 0;
        char n[16];

        if (!w || !wfs) {
                row_fail(r, "out of memory");
                return;
        }
        snprintf(n, sizeof(n), "%d", N_WF);
        PGresult *q = pg_query("INSERT INTO workflows (id, name, spec, state) SELECT gen_random_uuid(), "
                               "'bench-audit-writer', '{}', 'succeeded' FROM generate_series(1, $1::int) "
                               "RETURNING id",
                               1, (const char *const[]){n});
        if (!q || PQntuples(q) != N_WF) {
                row_fail(r, "cannot make the workflow rows");
                PQclear(q);
                return;
        }
        for (int i = 0; i < N_WF; i++)
                snprintf(wfs[i], 37, "%s", PQgetvalue(q, i, 0));
        PQclear(q);
        cpu_snapshot(cpu0);
        double t0 = mono_ms();
        for (unsigned i = 0; i < o.audit_writers; i++) {
                w[i] = (audit_writer){
                        .index = i, .rows = o.audit_rows / o.audit_writers, .wfs = wfs, .n_wfs = N_WF};
                if (pthread_create(&w[i].thread, NULL, audit_writer_main, &w[i]) != 0)
                        break;
                started++;
        }
        for (unsigned i = 0; i < started; i++)
                pthread_join(w[i].thread, NULL);
        double t1 = mono_ms();
        cpu_snapshot(cpu1);
        cpu_note(cpu0, cpu1, t1 - t0, r->cpu, sizeof(r->cpu));
        for (unsigned i = 0; i < started; i++) {
                written += w[i].written;
                if (w[i].error[0]) {
                        row_fail(r, "writer %u: %s", i, w[i].error);
                        return;
                }
        }
        if (started < o.audit_writers) {
                row_fail(r, "cannot start the writers");
                return;
        }
        _cleanup_free_ char *arr = uuid_array(wfs, N_WF);
        q = arr ? pg_query("SELECT count(*) FILTER (WHERE autoos_audit_verify(w) IS NOT NULL) "
                           "FROM unnest($1::uuid[]) AS w",
                           1, (const char *const[]){arr})
                : NULL;
        if (!q || pg_double(q, 0, 0) != 0)
                row_fail(r, "%.0f audit chain(s) do not verify", q ? pg_double(q, 0, 0) : -1);
        PQclear(q);
        r->n = written;
        r->seconds = (t1 - t0) / 1000.0;
        r->rate = r->seconds > 0 ? written / r->seconds : 0;
        r->verdict = r->rate >= 20000;
        snprintf(r->note, sizeof(r->note), "rows, rows/s; %.2fx the one INSERT",
                 peer_rate > 0 ? r->rate / peer_rate : 0);
        progress("  %u rows in %.2f s: %.0f rows/s (%u writers, %u-row batches); %s", written, r->seconds,
                 r->rate, o.audit_writers, o.audit_batch, r->cpu);
}

static void audit_rows(const batch_stats *coord) {
        row *r = row_new("audit rows written by the coordinator (instant runs)", ">= 20000 rows/s");
        if (coord->audit_rows > 0 && coord->seconds > 0) {
                r->n = coord->audit_rows;
                r->seconds = coord->seconds;
                r->rate = r->n / r->seconds;
                r->verdict = r->rate >= 20000;
                snprintf(r->note, sizeof(r->note), "rows, rows/s: the steps' own rows (%.1f a step)",
                         coord->steps > 0 ? coord->audit_rows / coord->steps : 0);
        } else
                snprintf(r->note, sizeof(r->note), "no instant run to count");

        char label[80], n[16];
        snprintf(label, sizeof(label), "audit: one INSERT of %u rows (chain trigger)", o.audit_burst);
        r = row_new(label, "");
        row *v = row_new("audit: autoos_audit_verify() of those rows", "");
        snprintf(label, sizeof(label), "audit: the coordinator's writer, %u connections", o.audit_writers);
        row *wr = row_new(label, ">= 20000 rows/s");
        snprintf(n, sizeof(n), "%u", o.audit_burst);
        PGresult *q =
                pg_query("INSERT INTO workflows (id, name, spec, state) "
                         "VALUES (gen_random_uuid(), 'bench-audit-burst', '{}', 'succeeded') RETURNING id",
                         0, NULL);
        if (!q || PQntuples(q) != 1) {
                row_fail(r, "cannot make the workflow row");
                PQclear(q);
                return;
        }
        char wf[64];
        snprintf(wf, sizeof(wf), "%s", PQgetvalue(q, 0, 0));
        PQclear(q);
        const char *params[] = {wf, n};
        double t0 = mono_ms();
        q = pg_query(
                "INSERT INTO audit_log (workflow_id, actor, action, detail) "
                "SELECT $1::uuid, 'bench', 'burst', jsonb_build_object('i', g, 'by', 'bench/coordinator') "
                "  FROM generate_series(1, $2::int) g",
                2, params);
        double t1 = mono_ms();
        if (!q)
                row_fail(r, "the INSERT failed");
        else {
                r->n = o.audit_burst;
                r->seconds = (t1 - t0) / 1000.0;
                r->rate = r->n / r->seconds;
                snprintf(r->note, sizeof(r->note), "rows, rows/s");
        }
        PQclear(q);
        t0 = mono_ms();
        q = pg_query("SELECT autoos_audit_verify($1::uuid) IS NULL", 1, params);
        t1 = mono_ms();
        if (!q || PQntuples(q) != 1 || strcmp(PQgetvalue(q, 0, 0), "t") != 0)
                row_fail(v, "the chain does not verify");
        else {
                v->n = o.audit_burst;
                v->seconds = (t1 - t0) / 1000.0;
                v->rate = v->n / v->seconds;
                snprintf(v->note, sizeof(v->note), "rows, rows/s");
        }
        PQclear(q);
        progress("audit: the coordinator's writer");
        audit_writers(wr, r->rate);
}

/* ---- memory ------------------------------------------------------------------------------------ */

/* The coordinator's RSS: after the warm-up, after the steps of every scenario, with --inflight workflows. */
static struct {
        double start, after_steps, steps, inflight;
        unsigned n_inflight;
        double node_start[4], node_after[4]; /* the --cpu nodes=PID entries (autoosd), in order */
        size_t n_nodes;
} rss = {-1, -1, 0, -1, 0, {0}, {0}, 0};

/* The RSS of each --cpu entry named nodes (at most 4), into v; how many. */
static size_t nodes_rss(double *v) {
        size_t n = 0;
        for (size_t i = 0; i < o.n_cpu && n < 4; i++)
                if (strcmp(o.cpu[i].name, "nodes") == 0)
                        v[n++] = rss_mib(o.cpu[i].pid);
        return n;
}

/*
 * Submits --inflight one-step workflows whose step no node can take
 * (node_selector bench=nowhere): they stay running, their steps ready, and
 * the coordinator's RSS is read with them all in flight.
 */
static void inflight_rss(void) {
        char id[37];
        _cleanup_free_ char *body = workflow_wide("bench-inflight", 1, "bench", "nowhere");
        double m0 = mono_ms(), next_note = m0 + 5000;
        unsigned n = 0;
        progress("memory: %u workflows in flight (one step each, for no node)", o.inflight);
        for (; body && n < o.inflight && !interrupted; n++) {
                if (submit(body, id) < 0)
                        break;
                if (mono_ms() > next_note) {
                        progress("  ... %u submitted", n + 1);
                        next_note = mono_ms() + 5000;
                }
        }
        if (n < o.inflight) {
                row_fail(row_new("coordinator RSS with workflows in flight", ""), "only %u of %u submitted",
                         n, o.inflight);
                return;
        }
        /* Several dispatch rounds pass over them before the RSS is read. */
        sleep_ms(1000);
        const char *params[] = {"bench-inflight"};
        PGresult *q =
                pg_query("SELECT count(*) FROM workflows WHERE name = $1 AND state = 'running'", 1, params);
        double running = pg_double(q, 0, 0);
        PQclear(q);
        rss.inflight = rss_mib(coordinator_pid());
        rss.n_inflight = (unsigned) running;
        progress("  %u submitted in %.1f s, %.0f running; coordinator RSS %.1f MiB", n,
                 (mono_ms() - m0) / 1000, running, rss.inflight);
}

/* The coordinator's RSS (MiB) against the steps run over --soak, and each round's steps/s. */
#define SOAK_POINTS 64
static struct {
        double steps[SOAK_POINTS], coord[SOAK_POINTS], rate[SOAK_POINTS];
        size_t n;
        double done; /* steps run */
} soak;

/*
 * --soak N: N more steps on the instant nodes, in rounds of 100 workflows of
 * 10 steps, the coordinator's RSS read after each round (a leak shows as
 * growth with the steps; points kept at doubling step counts and the last).
 */
static void soak_rss(void) {
        char name[64];
        char **bodies = calloc(100, sizeof(char *));
        char(*ids)[37] = calloc(100, 37);
        double done = 0, next_point = 1000, m0 = mono_ms();

        for (unsigned i = 0; bodies && i < 100; i++) {
                snprintf(name, sizeof(name), "bench-soak-%u", i);
                bodies[i] = workflow_small(name, "bench", "instant");
        }
        progress("memory: %u steps more on the instant nodes, the coordinator's RSS as they go", o.soak);
        while (bodies && ids && bodies[99] && done < o.soak && !interrupted) {
                _cleanup_free_ char *arr = NULL;
                double r0 = mono_ms();
                size_t k;
                for (k = 0; k < 100; k++)
                        if (submit(bodies[k], ids[k]) < 0)
                                break;
                if (k < 100 || !(arr = uuid_array(ids, 100)) ||
                    wait_workflows(arr, 100, o.timeout_s, false) < 0) {
                        row_fail(row_new("soak on the instant nodes", ""), "round after %.0f steps failed",
                                 done);
                        break;
                }
                done += 100.0 * SMALL_STEPS;
                if (done >= next_point || done >= o.soak) {
                        size_t at = soak.n < SOAK_POINTS ? soak.n++ : SOAK_POINTS - 1;
                        soak.steps[at] = done;
                        soak.coord[at] = rss_mib(coordinator_pid());
                        soak.rate[at] = 100.0 * SMALL_STEPS * 1000 / (mono_ms() - r0);
                        progress("  %.0f steps (%.0f s): coordinator RSS %.1f MiB, last round %.0f steps/s",
                                 done, (mono_ms() - m0) / 1000, soak.coord[at], soak.rate[at]);
                        while (next_point <= done)
                                next_point *= 2;
                }
        }
        soak.done = done;
        for (unsigned i = 0; bodies && i < 100; i++)
                free(bodies[i]);
        free(bodies);
        free(ids);
}

/* ---- the table --------------------------------------------------------------------------------- */

static batch_stats real_stats = {}, instant_stats = {};

/* "auth CPU per step: X µs = Y% of coordinator CPU per step" for the steps of one kind of run. */
static void print_auth(const char *what, const batch_stats *b) {
        if (b->steps <= 0)
                return;
        if (b->auth_cpu_s < 0) {
                printf("%sauth CPU per step (%s): - (no autoos_coordinator_auth_seconds_total: bus_auth "
                       "off?)\n",
                       o.markdown ? "    " : "", what);
                return;
        }
        double auth_us = b->auth_cpu_s * 1e6 / b->steps, coord_us = b->coord_cpu_ms * 1e3 / b->steps;
        double pct = coord_us > 0 ? auth_us * 100.0 / coord_us : 0;
        printf("%sauth CPU per step (%s): %.1f \u00b5s = %.1f%% of coordinator CPU per step (%.0f \u00b5s; "
               "%.1f seals and checks per step) (target <= 5%%%s)\n",
               o.markdown ? "    " : "", what, auth_us, pct, coord_us, b->auth_ops / b->steps,
               pct <= 5.0 ? " met" : " MISSED");
}

/* v with decimals digits after the point, or "-" when it does not apply. */
static void cell(char *buf, size_t size, double v, int decimals) {
        if (v < 0)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%.*f", decimals, v);
}

static void print_table(void) {
        int w = 8;
        for (size_t i = 0; i < n_rows; i++)
                w = MAX(w, (int) strlen(rows[i].scenario));
        if (o.markdown)
                printf("| scenario | steps | seconds | steps/s | p50 ms | p99 ms | target | |\n"
                       "|---|---:|---:|---:|---:|---:|---|---|\n");
        else
                printf("\n%-*s  %6s  %7s  %7s  %7s  %7s  %s\n", w, "scenario", "steps", "seconds", "steps/s",
                       "p50 ms", "p99 ms", "target");
        for (size_t i = 0; i < n_rows; i++) {
                const row *r = &rows[i];
                char n[32], s[32], rate[32], p50[32], p99[32], tgt[64];
                cell(n, sizeof(n), r->n, 0);
                cell(s, sizeof(s), r->seconds, 2);
                cell(rate, sizeof(rate), r->rate, 0);
                cell(p50, sizeof(p50), r->p50, 1);
                cell(p99, sizeof(p99), r->p99, 1);
                snprintf(tgt, sizeof(tgt), "%s%s", r->target,
                         r->verdict == 1   ? " met"
                         : r->verdict == 0 ? " MISSED"
                                           : "");
                if (o.markdown)
                        printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r->scenario, n, s, rate, p50,
                               p99, tgt, r->note);
                else
                        printf("%-*s  %6s  %7s  %7s  %7s  %7s  %-21s%s%s\n", w, r->scenario, n, s, rate, p50,
                               p99, tgt, r->note[0] ? "  " : "", r->note);
        }
        bool any = false;
        for (size_t i = 0; i < n_rows; i++)
                any = any || rows[i].cpu[0];
        printf("\n");
        print_auth("end to end", &real_stats);
        print_auth("instant nodes", &instant_stats);
        for (size_t i = 0; o.nodes_alone > 0 && i < n_rows; i++)
                if (strncmp(rows[i].scenario, "end to end", 10) == 0 && rows[i].rate >= 0)
                        printf("%s%s: %.0f steps/s = %.0f%% of the nodes alone (%.0f runs/s) (target >= "
                               "90%%%s)\n",
                               o.markdown ? "    " : "", rows[i].scenario, rows[i].rate,
                               rows[i].rate * 100.0 / o.nodes_alone, o.nodes_alone,
                               rows[i].rate >= 0.9 * o.nodes_alone ? " met" : " MISSED");
        if (instant_stats.chains + real_stats.chains > 0)
                printf("%saudit chains of those workflows verified: %.0f, failing: %.0f\n",
                       o.markdown ? "    " : "", instant_stats.chains + real_stats.chains,
                       instant_stats.chains_bad + real_stats.chains_bad);
        if (rss.start >= 0) {
                printf("%scoordinator RSS: %.1f MiB after the warm-up", o.markdown ? "    " : "", rss.start);
                if (rss.after_steps >= 0)
                        printf(", %.1f MiB after %.0f steps more (%+.1f MiB)", rss.after_steps, rss.steps,
                               rss.after_steps - rss.start);
                if (rss.inflight >= 0)
                        printf(", %.1f MiB with %u workflows in flight", rss.inflight, rss.n_inflight);
                printf("\n");
        }
        for (size_t i = 0; i < rss.n_nodes; i++)
                printf("%sautoosd RSS, node %zu: %.1f MiB at the start, %.1f MiB after the %.0f end-to-end "
                       "steps\n",
                       o.markdown ? "    " : "", i + 1, rss.node_start[i], rss.node_after[i],
                       real_stats.steps);
        if (soak.n > 0) {
                printf("%scoordinator RSS over --soak (steps after the scenarios: MiB, steps/s of the "
                       "round):",
                       o.markdown ? "    " : "");
                for (size_t i = 0; i < soak.n; i++)
                        printf("%s %.0f: %.1f, %.0f/s", i ? ";" : "", soak.steps[i], soak.coord[i],
                               soak.rate[i]);
                printf("\n");
        }
        if (!any)
                return;
        printf("\nCPU during each run, in %% of one CPU (this host has %ld):\n",
               sysconf(_SC_NPROCESSORS_ONLN));
        for (size_t i = 0; i < n_rows; i++)
                if (rows[i].cpu[0])
                        printf("%s%-*s  %s\n", o.markdown ? "    " : "", w, rows[i].scenario,
                               rows[i].cpu + strlen("cpu% "));
}

/* ---- main -------------------------------------------------------------------------------------- */

static void usage(FILE *f) {
        fputs("Usage: coordinator-load --url URL --key KEY --db CONNINFO --redis HOST:PORT [OPTIONS]\n"
              "\n"
              "The measurements of bench/coordinator (which starts the fleet and runs this):\n"
              "steps/s and dispatch -> result latency end to end and with instant nodes,\n"
              "node-failure detection, audit rows/s. Prints one table.\n"
              "\n"
              "      --wide N               steps of the wide workflow (default 1000)\n"
              "      --workflows N          workflows of 10 steps (default 100)\n"
              "      --real-selector K=V    node_selector of the real nodes (default bench=real)\n"
              "      --instant-nodes N      fake nodes that answer at once (default 2)\n"
              "      --instant-capacity N   capacity each announces (default 64)\n"
              "      --node-keys DIR        the instant nodes' keys (DIR/instant-N.key): they seal\n"
              "                             heartbeats and results as autoosd does (bus_auth)\n"
              "      --kill-node NAME       a real node to SIGKILL for the node-loss rows...\n"
              "      --kill-pid PID         ...and its autoosd's pid\n"
              "      --audit-burst N        rows of the direct audit INSERT (default 10000)\n"
              "      --audit-rows N         rows through the coordinator's audit writer (default 40000)\n"
              "      --audit-writers N      connections writing them at once (default 4)\n"
              "      --audit-batch N        rows a transaction, over 4 chains (default 16)\n"
              "      --inflight N           workflows in flight for the coordinator's RSS (default\n"
              "                             10000; 0: none)\n"
              "      --soak N               N more steps on the instant nodes after the scenarios\n"
              "                             (rounds of 100 workflows of 10), the coordinator's RSS\n"
              "                             printed against the steps (default 0: none)\n"
              "      --nodes-alone RATE     runs/s the real nodes deliver without the coordinator\n"
              "                             (bench/node-throughput): the end-to-end rows against it\n"
              "      --timeout S            per scenario (default 300)\n"
              "      --cpu NAME=PID         report the CPU time of PID and its children per\n"
              "                             scenario (repeatable; a repeated NAME is summed)\n"
              "      --skip-real, --skip-instant\n"
              "      --format text|markdown\n"
              "  -h, --help\n",
              f);
}

static bool parse_uint(const char *s, unsigned *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v > 1000000)
                return false;
        *ret = (unsigned) v;
        return true;
}

int main(int argc, char **argv) {
        enum {
                O_WIDE = 256,
                O_WORKFLOWS,
                O_SEL,
                O_INODES,
                O_ICAP,
                O_KNODE,
                O_KPID,
                O_BURST,
                O_AUDIT_ROWS,
                O_AUDIT_WRITERS,
                O_AUDIT_BATCH,
                O_TIMEOUT,
                O_SKR,
                O_SKI,
                O_FORMAT,
                O_URL,
                O_KEY,
                O_DB,
                O_REDIS,
                O_CPU,
                O_NODE_KEYS,
                O_INFLIGHT,
                O_NODES_ALONE,
                O_SOAK,
        };
        static const struct option options[] = {
                {"url", required_argument, NULL, O_URL},
                {"key", required_argument, NULL, O_KEY},
                {"db", required_argument, NULL, O_DB},
                {"redis", required_argument, NULL, O_REDIS},
                {"wide", required_argument, NULL, O_WIDE},
                {"workflows", required_argument, NULL, O_WORKFLOWS},
                {"real-selector", required_argument, NULL, O_SEL},
                {"instant-nodes", required_argument, NULL, O_INODES},
                {"instant-capacity", required_argument, NULL, O_ICAP},
                {"kill-node", required_argument, NULL, O_KNODE},
                {"kill-pid", required_argument, NULL, O_KPID},
                {"audit-burst", required_argument, NULL, O_BURST},
                {"audit-rows", required_argument, NULL, O_AUDIT_ROWS},
                {"audit-writers", required_argument, NULL, O_AUDIT_WRITERS},
                {"audit-batch", required_argument, NULL, O_AUDIT_BATCH},
                {"timeout", required_argument, NULL, O_TIMEOUT},
                {"skip-real", no_argument, NULL, O_SKR},
                {"skip-instant", no_argument, NULL, O_SKI},
                {"node-keys", required_argument, NULL, O_NODE_KEYS},
                {"inflight", required_argument, NULL, O_INFLIGHT},
                {"soak", required_argument, NULL, O_SOAK},
                {"nodes-alone", required_argument, NULL, O_NODES_ALONE},
                {"format", required_argument, NULL, O_FORMAT},
                {"cpu", required_argument, NULL, O_CPU},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        static char sel[256];
        unsigned u;
        int c;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
                bool ok = true;
                switch (c) {
                case O_URL:
                        o.url = optarg;
                        break;
                case O_KEY:
                        o.key = optarg;
                        break;
                case O_DB:
                        o.db = optarg;
                        break;
                case O_REDIS: {
                        const char *colon = strrchr(optarg, ':');
                        ok = colon && colon != optarg && parse_uint(colon + 1, &u) && u > 0 && u < 65536;
                        if (ok)
                                snprintf(o.redis_url, sizeof(o.redis_url), "redis://%.*s:%u",
                                         (int) MIN((size_t) (colon - optarg), (size_t) 256), optarg, u);
                        break;
                }
                case O_WIDE:
                        ok = parse_uint(optarg, &o.wide) && o.wide > 0;
                        break;
                case O_WORKFLOWS:
                        ok = parse_uint(optarg, &o.workflows) && o.workflows > 0;
                        break;
                case O_SEL: {
                        snprintf(sel, sizeof(sel), "%s", optarg);
                        char *eq = strchr(sel, '=');
                        ok = eq && eq != sel && eq[1];
                        if (ok) {
                                *eq = '\0';
                                o.real_key = sel;
                                o.real_value = eq + 1;
                        }
                        break;
                }
                case O_INODES:
                        ok = parse_uint(optarg, &o.instant_nodes) && o.instant_nodes > 0;
                        break;
                case O_ICAP:
                        ok = parse_uint(optarg, &o.instant_capacity) && o.instant_capacity > 0;
                        break;
                case O_NODE_KEYS:
                        o.node_keys = optarg;
                        break;
                case O_INFLIGHT:
                        ok = parse_uint(optarg, &o.inflight);
                        break;
                case O_SOAK:
                        ok = parse_uint(optarg, &o.soak);
                        break;
                case O_NODES_ALONE: {
                        char *end;
                        o.nodes_alone = strtod(optarg, &end);
                        ok = end != optarg && !*end && o.nodes_alone > 0;
                        break;
                }
                case O_KNODE:
                        o.kill_node = optarg;
                        break;
                case O_KPID:
                        ok = parse_uint(optarg, &u) && u > 1;
                        o.kill_pid = (pid_t) u;
                        break;
                case O_BURST:
                        ok = parse_uint(optarg, &o.audit_burst) && o.audit_burst > 0;
                        break;
                case O_AUDIT_ROWS:
                        ok = parse_uint(optarg, &o.audit_rows) && o.audit_rows > 0;
                        break;
                case O_AUDIT_WRITERS:
                        ok = parse_uint(optarg, &o.audit_writers) && o.audit_writers > 0 &&
                             o.audit_writers <= 64;
                        break;
                case O_AUDIT_BATCH:
                        ok = parse_uint(optarg, &o.audit_batch) && o.audit_batch >= 4 &&
                             o.audit_batch <= 4096;
                        break;
                case O_TIMEOUT:
                        ok = parse_uint(optarg, &o.timeout_s) && o.timeout_s > 0;
                        break;
                case O_SKR:
                        o.skip_real = true;
                        break;
                case O_SKI:
                        o.skip_instant = true;
                        break;
                case O_FORMAT:
                        ok = strcmp(optarg, "text") == 0 || strcmp(optarg, "markdown") == 0;
                        o.markdown = strcmp(optarg, "markdown") == 0;
                        break;
                case O_CPU: {
                        const char *eq = strchr(optarg, '=');
                        ok = eq && eq != optarg && (size_t) (eq - optarg) < sizeof(o.cpu[0].name) &&
                             o.n_cpu < ELEMENTSOF(o.cpu) && parse_uint(eq + 1, &u) && u > 1;
                        if (ok) {
                                snprintf(o.cpu[o.n_cpu].name, sizeof(o.cpu[0].name), "%.*s",
                                         (int) (eq - optarg), optarg);
                                o.cpu[o.n_cpu++].pid = (pid_t) u;
                        }
                        break;
                }
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
                if (!ok) {
                        fprintf(stderr, "coordinator-load: bad value '%s' for an option\n", optarg);
                        return 2;
                }
        }
        if (optind < argc || !o.url || !o.key || !o.db || !o.redis_url[0] || (!o.kill_node != !o.kill_pid)) {
                usage(stderr);
                return 2;
        }

        /* This program's own share, without children (it has none). */
        if (o.n_cpu < ELEMENTSOF(o.cpu)) {
                snprintf(o.cpu[o.n_cpu].name, sizeof(o.cpu[0].name), "load generator");
                o.cpu[o.n_cpu++].pid = getpid();
        }

        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (http_init() < 0) {
                progress("libcurl would not start");
                return 1;
        }
        pg = PQconnectdb(o.db);
        if (PQstatus(pg) != CONNECTION_OK) {
                progress("PostgreSQL %s: %s", o.db, PQerrorMessage(pg));
                return 1;
        }

        batch_stats *real = &real_stats, *instant = &instant_stats;
        rss.start = rss_mib(coordinator_pid());
        rss.n_nodes = nodes_rss(rss.node_start);
        if (!o.skip_real && !interrupted)
                run_pair("end to end, 2 nodes", o.real_key, o.real_value, 300, ">= 300 steps/s", real);
        if (!o.skip_instant && !interrupted) {
                if (fakes_start() < 0) {
                        row_fail(row_new("coordinator alone (instant nodes)", ">= 5000 steps/s"),
                                 "cannot start the instant nodes");
                } else {
                        const char *names[8];
                        size_t nn = MIN(o.instant_nodes, ELEMENTSOF(names));
                        for (size_t i = 0; i < nn; i++)
                                names[i] = fakes[i].id;
                        if (!nodes_healthy(names, nn))
                                row_fail(row_new("coordinator alone (instant nodes)", ">= 5000 steps/s"),
                                         "the coordinator does not list the instant nodes as healthy");
                        else {
                                p99_target_ms = 50;
                                run_pair("coordinator alone, instant nodes", "bench", "instant", 5000,
                                         ">= 5000/s, p99 < 50", instant);
                                p99_target_ms = 0;
                                if (o.soak > 0 && !interrupted)
                                        soak_rss();
                        }
                }
                fakes_end();
        }
        rss.steps = real->steps + instant->steps + soak.done;
        rss.after_steps = rss.steps > 0 ? rss_mib(coordinator_pid()) : -1;
        (void) nodes_rss(rss.node_after);
        if (!interrupted)
                audit_rows(instant);
        if (o.kill_node && !interrupted)
                node_loss();
        if (o.inflight > 0 && !interrupted)
                inflight_rss();

        print_table();
        PQfinish(pg);
        curl_easy_cleanup(http);
        curl_slist_free_all(http_headers);
        curl_global_cleanup();
        return failures || interrupted ? 1 : 0;
}
