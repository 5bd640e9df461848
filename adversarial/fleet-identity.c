/* SPDX-License-Identifier: MIT */
/* The "fleet" group (node identity, issue 10): forged, replayed and planted results and heartbeats. */
#include "adversarial/fleet-internal.h"

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
        api_reply r;
        double v = 0;
        size_t n = strlen(sample);

        fleet_http(f,
                   &(http_req){.method = "GET",
                               .path = "/metrics",
                               .timeout_ms = (unsigned) fleet_scaled(f, 5000)},
                   &r);
        if (r.status != 200 || !r.body) {
                api_reply_done(&r);
                return -1;
        }
        for (const char *p = r.body; p && *p;) {
                const char *eol = strchr(p, '\n');
                if (strncmp(p, sample, n) == 0 && p[n] == ' ')
                        v = strtod(p + n + 1, NULL);
                p = eol ? eol + 1 : NULL;
        }
        api_reply_done(&r);
        return v;
}

static void refused_sample(char *out, size_t size, const char *metric, const char *reason) {
        snprintf(out, size, "%s{reason=\"%s\"}", metric, reason);
}

/* Waits (up to the attack's time, at most 10 s fleet_scaled) until the sample reaches least. Returns its
 * value. */
static double metric_wait(fleet *f, const char *sample, double least) {
        uint64_t until = au_now_ms() + MIN(fleet_remaining_ms(f), fleet_scaled(f, 10000));
        for (;;) {
                double v = metric_value(f, sample);
                if (v >= least || au_now_ms() >= until)
                        return v;
                au_sleep_ms(200);
        }
}

/* With --db: result_refused audit rows naming run (polled until there are that many, 5 s fleet_scaled); -1
 * on error. */
static long refused_rows(fleet *f, const char *run, long least, char *why, size_t size) {
        PGconn *conn = PQconnectdb(f->t->db_url);
        const char *params[] = {run};
        long n = -1;
        uint64_t until = au_now_ms() + fleet_scaled(f, 5000);

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
                if (n >= least || au_now_ms() >= until)
                        break;
                au_sleep_ms(200);
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
static int wf_step_json(au_buf *b, const fleet *f, const char *id, const char *script, const char *extra) {
        char sel[400];
        fleet_selector(f, sel, sizeof(sel));
        return au_buf_printf(
                b, "{\"id\":\"%s\",\"run\":{\"argv\":[\"/bin/sh\",\"-c\",\"%s\"]},\"node_selector\":%s%s%s}",
                id, script, sel, extra ? "," : "", extra ? extra : "");
}

/* POSTs a workflow; its id into id. False with the row set (an error) when it was not accepted. */
static bool wf_submit(fleet *f, adv_row *row, const char *body, char id[static 64]) {
        api_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        const char *s = NULL;
        char ex[96];

        fleet_http(f,
                   &(http_req){.method = "POST",
                               .path = "/v1/workflows",
                               .key = f->t->api_key,
                               .body = body,
                               .len = strlen(body)},
                   &r);
        if (r.status != 201 || !r.body || au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) < 0 ||
            au_json_get_string(au_json_get(tree, "id"), "id", &s, NULL) < 0 || strlen(s) >= 64) {
                fleet_set_verdict(row, ADV_ERROR, "submitting the workflow: %ld %s", r.status,
                                  r.status ? fleet_excerpt(ex, r.body ? r.body : "", r.len) : r.error);
                api_reply_done(&r);
                return false;
        }
        snprintf(id, 64, "%s", s);
        api_reply_done(&r);
        return true;
}

/* One step of submit_steps(): its id, its script, more members of its object ("" or NULL: none). */
typedef struct wf_step {
        const char *id, *script, *extra;
} wf_step;

/* Submits workflow name of the n steps, each placed on the victim; its id into id. False (row says why)
 * otherwise. */
static bool submit_steps(fleet *f, adv_row *row, const char *name, const wf_step *steps, size_t n,
                         char id[static 64]) {
        _cleanup_buf_ au_buf b = AU_BUF_INIT(0);
        int r = au_buf_printf(&b, "{\"name\":\"%s\",\"steps\":[", name);

        for (size_t i = 0; i < n && r == 0; i++) {
                if (i > 0)
                        r = au_buf_append(&b, ",", 1);
                if (r == 0)
                        r = wf_step_json(&b, f, steps[i].id, steps[i].script, steps[i].extra);
        }
        if (r == 0)
                r = au_buf_append(&b, "]}", 2);
        if (r < 0) {
                fleet_set_verdict(row, ADV_ERROR, "out of memory");
                return false;
        }
        return wf_submit(f, row, b.p, id);
}

/* What GET /v1/workflows/{id} says of the workflow and one step. */
typedef struct wf_view {
        char state[32];      /* the workflow's */
        char step_state[32]; /* the step's */
        char node[130];
        unsigned attempt;
        char out[128]; /* its stdout, fleet_printable, cut */
} wf_view;

static bool wf_read(fleet *f, const char *id, const char *step, wf_view *v) {
        char path[128];
        api_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        const char *s;
        bool ok = false;

        *v = (wf_view){0};
        snprintf(path, sizeof(path), "/v1/workflows/%s", id);
        fleet_http(f, &(http_req){.method = "GET", .path = path, .key = f->t->api_key}, &r);
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
                                fleet_printable(v->out);
                        }
                }
        }
        api_reply_done(&r);
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
                        fleet_set_verdict(
                                row, ADV_ERROR, "step %s was placed on %.64s, not %.64s (selector %s)", step,
                                v->node, f->t->node, f->t->selector ? f->t->selector : "name=<node>");
                        return false;
                }
                if ((got && wf_final(v->state)) || fleet_remaining_ms(f) < 500) {
                        fleet_set_verdict(
                                row, ADV_ERROR,
                                "step %s (attempt %u) never ran on %.64s: workflow %s, step %s, attempt %u",
                                step, attempt, f->t->node, v->state[0] ? v->state : "?",
                                v->step_state[0] ? v->step_state : "?", v->attempt);
                        return false;
                }
                au_sleep_ms(100);
        }
}

/* Waits for the workflow to end; its last view of step. */
static void wf_wait_final(fleet *f, const char *id, const char *step, wf_view *v) {
        while (!(wf_read(f, id, step, v) && wf_final(v->state)) && fleet_remaining_ms(f) >= 300)
                au_sleep_ms(250);
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
                fleet_add(bad, bad_size, "the workflow is %s, not succeeded (step %s %s, attempt %u)",
                          v.state[0] ? v.state : "unknown", step, v.step_state, v.attempt);
        else if (strncmp(v.out, real, strlen(real)) != 0)
                fleet_add(bad, bad_size, "step %s's output is '%.60s', not the real '%s'", step, v.out,
                          real);
        else if (strcmp(v.node, f->t->node) != 0 || v.attempt != attempt)
                fleet_add(bad, bad_size, "step %s ended on %.64s at attempt %u, not on %.64s at attempt %u",
                          step, v.node, v.attempt, f->t->node, attempt);
        else
                fleet_add(obs, obs_size, "step %s: the real output from %s", step, f->t->node);
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
        redisReply *r = fleet_redis_cmd(f, 3 + n, argv, l);
        int ret = fleet_is_str(r) ? 0 : -EIO;
        if (r)
                freeReplyObject(r);
        return ret;
}

/* The attacker node's key (--attacker-key); false (row set: skipped or error) without one. */
static bool attacker_key(fleet *f, adv_row *row, uint8_t key[MEM_SEAL_KEY_BYTES]) {
        char why[200];
        if (!f->t->attacker_node) {
                fleet_set_verdict(row, ADV_SKIPPED,
                                  "needs another enrolled node: --attacker-node NAME --attacker-key FILE");
                return false;
        }
        if (bus_key_load(f->t->attacker_key, key, why, sizeof(why)) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "%s", why);
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
                        fleet_set_verdict(row, ADV_ERROR, "GET /metrics failed");
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
                        fleet_add(bad, bad_size, "%s{%s} did not grow (%.0f)", metric, reasons[i], v);
                else
                        fleet_add(obs, obs_size, "%s counted", reasons[i]);
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
                fleet_add(bad, bad_size, "%s", why);
        else if (n < least)
                fleet_add(bad, bad_size, "%ld result_refused audit rows for %.80s, not %ld", n, run, least);
        else
                fleet_add(obs, obs_size, "%ld result_refused audit row%s", n, n == 1 ? "" : "s");
}

/* The scenario: a result nobody signed, for the step running on the victim. */
static void atk_forged_result(fleet *f, adv_row *row) {
        static const char *const reasons[] = {"unsigned"};
        char name[96], id[64], run[128], json[2048], obs[256] = "", bad[256] = "";
        double before[1];
        wf_view v;

        if (!metrics_before(f, row, FLEET_METRIC_RESULTS, reasons, 1, before))
                return;
        snprintf(name, sizeof(name), "%s-forged-result", f->prefix);
        if (!submit_steps(f, row, name,
                          (const wf_step[]){{"a", "sleep 3; echo real", NULL},
                                            {"b", "cat /work/inputs/a.stdout", "\"needs\":[\"a\"]"}},
                          2, id) ||
            !step_in_flight(f, row, id, "a", 1, &v))
                return;
        snprintf(run, sizeof(run), "%s.a.1", id);
        result_json(json, sizeof(json), id, "a", 1, f->t->node, "pwned\\n");
        if (results_xadd(f, (const char *[]){MEM_FIELD_RESULT, json}, NULL, 2) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "XADD %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                return;
        }
        expect_real(f, id, "a", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        expect_real(f, id, "b", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        metrics_after(f, FLEET_METRIC_RESULTS, reasons, 1, before, obs, sizeof(obs), bad, sizeof(bad));
        audit_rows(f, run, 1, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
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
        redisReply *r =
                fleet_redis_cmds(f, "XREVRANGE", MEM_STREAM_RESULTS, "+", "-", "COUNT", "2000", NULL);
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && !found; i++) {
                redisReply *en = r->element[i];
                if (en->type != REDIS_REPLY_ARRAY || en->elements < 2 ||
                    en->element[1]->type != REDIS_REPLY_ARRAY)
                        continue;
                redisReply *kv = en->element[1];
                bool match = false;
                for (size_t k = 0; k + 1 < kv->elements; k += 2)
                        if (fleet_is_str(kv->element[k]) &&
                            strcmp(kv->element[k]->str, MEM_FIELD_RESULT) == 0 &&
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
        wf_view v;

        if (!metrics_before(f, row, FLEET_METRIC_RESULTS, reasons, 1, before))
                return;
        snprintf(name, sizeof(name), "%s-replayed-result", f->prefix);
        if (!submit_steps(f, row, name,
                          (const wf_step[]){{"a",
                                             "if [ \\\"$AUTOOS_ATTEMPT\\\" = 1 ]; then echo first; exit 3; "
                                             "fi; sleep 3; echo real",
                                             "\"retry\":{\"max_attempts\":2,\"backoff_ms\":100}"}},
                          1, id) ||
            !step_in_flight(f, row, id, "a", 2, &v))
                return;
        snprintf(run1, sizeof(run1), "%s.a.1", id);
        snprintf(run2, sizeof(run2), "%s.a.2", id);
        if (!find_result_entry(f, run1, fv, lens, &n)) {
                fleet_set_verdict(row, ADV_ERROR, "attempt 1's result entry is not in %s",
                                  MEM_STREAM_RESULTS);
                goto out;
        }
        /* As it was. */
        if (results_xadd(f, (const char *const *) fv, lens, n) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "XADD %s: %s", MEM_STREAM_RESULTS, f->redis_err);
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
                fleet_set_verdict(row, ADV_ERROR, "attempt 1's result has no id and attempt to change");
                goto out;
        }
        if (results_xadd(f, (const char *const *) fv, lens, n) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "XADD %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                goto out;
        }
        expect_real(f, id, "a", "real", 2, obs, sizeof(obs), bad, sizeof(bad));
        metrics_after(f, FLEET_METRIC_RESULTS, reasons, 1, before, obs, sizeof(obs), bad, sizeof(bad));
        audit_rows(f, run2, 1, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
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
        wf_view v;

        if (!attacker_key(f, row, key))
                return;
        if (!metrics_before(f, row, FLEET_METRIC_RESULTS, reasons, 2, before))
                goto out;
        snprintf(name, sizeof(name), "%s-wrong-node", f->prefix);
        if (!submit_steps(f, row, name,
                          (const wf_step[]){{"a", "sleep 3; echo real", NULL},
                                            {"b", "cat /work/inputs/a.stdout", "\"needs\":[\"a\"]"}},
                          2, id) ||
            !step_in_flight(f, row, id, "a", 1, &v))
                goto out;
        snprintf(run, sizeof(run), "%s.a.1", id);
        if (mem_seal_random(tok, sizeof(tok)) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "no random bytes");
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
                fleet_set_verdict(row, ADV_ERROR, "XADD %s: %s", MEM_STREAM_RESULTS, f->redis_err);
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
                fleet_set_verdict(row, ADV_ERROR, "XADD %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                goto out;
        }
        expect_real(f, id, "a", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        expect_real(f, id, "b", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        metrics_after(f, FLEET_METRIC_RESULTS, reasons, 2, before, obs, sizeof(obs), bad, sizeof(bad));
        audit_rows(f, run, 2, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
out:
        OPENSSL_cleanse(key, sizeof(key));
}

/* The victim's entry of GET /v1/nodes: its state and whether any of its labels has value. */
static bool node_view(fleet *f, const char *node, char state[static 32], const char *value,
                      bool *has_value) {
        api_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        bool found = false;

        state[0] = '\0';
        *has_value = false;
        fleet_http(f, &(http_req){.method = "GET", .path = "/v1/nodes", .key = f->t->api_key}, &r);
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
                                *has_value = fleet_contains(l->u.string, value);
                        for (size_t k = 0; YAJL_IS_OBJECT(l) && k < l->u.object.len; k++)
                                if (YAJL_IS_STRING(l->u.object.values[k]) &&
                                    strcmp(l->u.object.values[k]->u.string, value) == 0)
                                        *has_value = true;
                }
        }
        api_reply_done(&r);
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
        wf_view v;

        if (!metrics_before(f, row, FLEET_METRIC_BEATS, reasons, 2, before))
                return;
        snprintf(name, sizeof(name), "%s-forged-heartbeat", f->prefix);
        if (!submit_steps(f, row, name, (const wf_step[]){{"a", "sleep 3; echo real", NULL}}, 1, id) ||
            !step_in_flight(f, row, id, "a", 1, &v))
                return;
        snprintf(ghost, sizeof(ghost), "%s-ghost", f->prefix);
        mem_key_node(ghost_key, sizeof(ghost_key), ghost);
        snprintf(sel, sizeof(sel), "%s", f->t->selector ? f->t->selector : "");
        if (!sel[0])
                snprintf(sel, sizeof(sel), "name=%s", f->t->node);
        snprintf(ghost_labels, sizeof(ghost_labels), "%s", sel);
        redisReply *r = fleet_redis_cmds(f, "SADD", MEM_KEY_NODES, ghost, NULL);
        if (r)
                freeReplyObject(r);
        /* The node writes its whole hash each second: forge it every 100 ms until both are counted. */
        char s_bad[160], s_unknown[160];
        refused_sample(s_bad, sizeof(s_bad), FLEET_METRIC_BEATS, "bad_mac");
        refused_sample(s_unknown, sizeof(s_unknown), FLEET_METRIC_BEATS, "unknown_node");
        uint64_t until = au_now_ms() + MIN(fleet_remaining_ms(f) / 2, fleet_scaled(f, 8000));
        for (unsigned i = 0;; i++) {
                r = fleet_redis_cmds(f, "HSET", f->node_key, "capacity", "999", "labels", "name=evil",
                                     "beat", "99999999", MEM_FIELD_AUTH,
                                     "1111111111111111111111111111111111111111111111111111111111111111",
                                     NULL);
                if (r)
                        freeReplyObject(r);
                r = fleet_redis_cmds(f, "HSET", ghost_key, "capacity", "64", "running", "0", "queued", "0",
                                     "labels", ghost_labels, "version", "x", "started_at", "x", "beat", "1",
                                     "state", "active", MEM_FIELD_AUTH,
                                     "0000000000000000000000000000000000000000000000000000000000000000",
                                     NULL);
                if (r)
                        freeReplyObject(r);
                r = fleet_redis_cmds(f, "PEXPIRE", ghost_key, "60000", NULL);
                if (r)
                        freeReplyObject(r);
                /* Meanwhile the forged view must never be the coordinator's. */
                if (node_view(f, f->t->node, state, "evil", &evil) && evil)
                        fleet_add(bad, sizeof(bad), "GET /v1/nodes shows %s with the forged labels",
                                  f->t->node);
                if (node_view(f, ghost, state, "", &evil) && strcmp(state, "healthy") == 0) {
                        fleet_add(bad, sizeof(bad), "the made-up node %s is healthy", ghost);
                        break;
                }
                if (bad[0] || au_now_ms() >= until)
                        break;
                if (i % 5 == 4 && metric_value(f, s_bad) >= before[0] + 1 &&
                    metric_value(f, s_unknown) >= before[1] + 1)
                        break;
                au_sleep_ms(100);
        }
        r = fleet_redis_cmds(f, "DEL", ghost_key, NULL);
        if (r)
                freeReplyObject(r);
        r = fleet_redis_cmds(f, "SREM", MEM_KEY_NODES, ghost, NULL);
        if (r)
                freeReplyObject(r);
        metrics_after(f, FLEET_METRIC_BEATS, reasons, 2, before, obs, sizeof(obs), bad, sizeof(bad));
        expect_real(f, id, "a", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        if (!node_view(f, f->t->node, state, "evil", &evil) || strcmp(state, "healthy") != 0 || evil)
                fleet_add(bad, sizeof(bad), "afterwards %s is '%s'%s", f->t->node, state,
                          evil ? " with forged labels" : "");
        else
                fleet_add(obs, sizeof(obs), "%s healthy with its own labels", f->t->node);
        fleet_verdict_from(row, obs, bad);
}

/*
 * The victim's heartbeat key deleted each second for 5 s (2.5 times the default node_timeout)
 * while a step runs on it: its last authentic beat still counts, so it is not declared lost and
 * the step is neither moved nor run twice.
 */
static void atk_deleted_heartbeat(fleet *f, adv_row *row) {
        char name[96], id[64], obs[256] = "", bad[256] = "", state[32];
        bool unused;
        wf_view v;

        char why[200] = "";
        double lost0 = metric_value(f, FLEET_METRIC_LOST);
        long rows0 = f->t->db_url ? lost_rows(f, f->t->node, why, sizeof(why)) : 0;
        if (lost0 < 0 || rows0 < 0) {
                fleet_set_verdict(row, ADV_ERROR, "%s", lost0 < 0 ? "GET /metrics failed" : why);
                return;
        }
        snprintf(name, sizeof(name), "%s-deleted-heartbeat", f->prefix);
        if (!submit_steps(f, row, name, (const wf_step[]){{"a", "sleep 9; echo real", NULL}}, 1, id) ||
            !step_in_flight(f, row, id, "a", 1, &v))
                return;
        /*
         * Three deletions a node_timeout (2 s) apart: between them the victim's own beats (one a
         * second) come back and must be read. Deleting it each second, just after each beat, leaves
         * the monitor (a read each 250 ms) almost nothing to read: a denial of service, which anyone
         * who may write anything to Redis can always do; what is promised is that a deletion does not
         * make a node lost by itself, and that a node's ACL user cannot delete another's key.
         */
        unsigned deleted = 0;
        for (int i = 0; i < 3; i++) {
                redisReply *r = fleet_redis_cmds(f, "DEL", f->node_key, NULL);
                if (r && r->type == REDIS_REPLY_INTEGER)
                        deleted += (unsigned) r->integer;
                if (r)
                        freeReplyObject(r);
                if (node_view(f, f->t->node, state, "", &unused) && strcmp(state, "healthy") != 0) {
                        fleet_add(bad, sizeof(bad), "%s is '%s' after %d deletions", f->t->node, state,
                                  i + 1);
                        break;
                }
                au_sleep_ms(2000);
        }
        if (deleted == 0)
                fleet_add(bad, sizeof(bad), "the heartbeat key was never there to delete");
        expect_real(f, id, "a", "real", 1, obs, sizeof(obs), bad, sizeof(bad));
        double lost1 = metric_value(f, FLEET_METRIC_LOST);
        long rows1 = f->t->db_url ? lost_rows(f, f->t->node, why, sizeof(why)) : 0;
        if (lost1 != lost0)
                fleet_add(bad, sizeof(bad), "%s went from %.0f to %.0f", FLEET_METRIC_LOST, lost0, lost1);
        else if (rows1 != rows0)
                fleet_add(bad, sizeof(bad), "%s was declared lost (node_lost audit rows %ld, were %ld)%s%s",
                          f->t->node, rows1, rows0, rows1 < 0 ? ": " : "", rows1 < 0 ? why : "");
        else
                fleet_add(obs, sizeof(obs), "%u deletions; no node lost, %s healthy throughout", deleted,
                          f->t->node);
        fleet_verdict_from(row, obs, bad);
}

/*
 * A connection to the same Redis (memory/redis.c's connector, without the --redis URL's credentials) as
 * user (NULL: none; no AUTH). NULL (why set) when it cannot connect.
 */
static redisContext *redis_as(fleet *f, const char *user, const char *pass, char *why, size_t size) {
        char url[600];
        au_error err = {0};
        redisContext *c = NULL;

        if (!f->rc && fleet_redis_connect(f) < 0) {
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
        fleet_printable(said);
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
                fleet_set_verdict(row, ADV_ERROR, "out of memory");
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
                fleet_set_verdict(row, ADV_ERROR, "%s", why);
                OPENSSL_cleanse(pw, sizeof(pw));
                return;
        }
        if (refused(anon, 5, (const char *[]){"XRANGE", jobs, "-", "+", "COUNT", "1"}, true, said,
                    sizeof(said)))
                fleet_add(obs, sizeof(obs), "no password: %s", said);
        else
                fleet_add(bad, sizeof(bad),
                          "a client without a password reads %s: %s (the default user has no password)",
                          jobs, said);
        redisFree(anon);

        redisContext *c = redis_as(f, f->t->attacker_node, pw, why, sizeof(why));
        OPENSSL_cleanse(pw, sizeof(pw));
        if (!c) {
                fleet_set_verdict(row, ADV_ERROR,
                                  "%s: is %s's ACL user set (autoos-coordinator --node-acl %s)?", why,
                                  f->t->attacker_node, f->t->attacker_node);
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
                        fleet_add(bad, sizeof(bad), "%s: %s", tries[i].label, said);
        }
        /* Its own keys work: the refusals are the ACL's, not a broken user. */
        if (refused(c, 2, (const char *[]){"GET", own}, false, said, sizeof(said)))
                fleet_add(bad, sizeof(bad), "even its own key is refused (%s): the ACL line is wrong", said);
        redisFree(c);
        /* What got through is undone (the node writes its heartbeat again within a second). */
        redisReply *rr = fleet_redis_cmds(f, "HDEL", node, probe, NULL);
        if (rr)
                freeReplyObject(rr);
        rr = fleet_redis_cmds(f, "DEL", planted, NULL);
        if (rr)
                freeReplyObject(rr);
        if (!bad[0])
                fleet_add(obs, sizeof(obs),
                          "as %s: %u of %zu reads and writes of %s's keys NOPERM; its own keys work",
                          f->t->attacker_node, n_refused, ELEMENTSOF(tries), f->t->node);
        fleet_verdict_from(row, obs, bad);
}

/*
 * A result planted under the victim's result cache (autoos:result:<node>:<run id>, as the node
 * keeps its own) before the run is dispatched: shaped like a sealed one, with a made-up token and
 * MAC. An honest node must not send it on: the step runs and reports its real output.
 */
static void atk_planted_result(fleet *f, adv_row *row) {
        char name[96], id[64], cache[300], json[2048], value[2300], obs[256] = "", bad[256] = "";
        wf_view v;

        snprintf(name, sizeof(name), "%s-planted-result", f->prefix);
        if (!submit_steps(f, row, name,
                          (const wf_step[]){{"gate", "sleep 2", NULL},
                                            {"p", "echo genuine", "\"needs\":[\"gate\"]"}},
                          2, id))
                return;
        snprintf(cache, sizeof(cache), MEM_KEY_RESULT_PREFIX "%s:%s.p.1", f->t->node, id);
        result_json(json, sizeof(json), id, "p", 1, f->t->node, "planted\\n");
        snprintf(value, sizeof(value), "%064d %064d\n%s", 0, 0, json);
        redisReply *r = fleet_redis_cmds(f, "SET", cache, value, "EX", "600", NULL);
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
                freeReplyObject(r);
        if (!ok) {
                fleet_set_verdict(row, ADV_ERROR, "SET %s: %s", cache, f->redis_err);
                return;
        }
        /* Planted before p could be dispatched: gate still runs. */
        if (!wf_read(f, id, "p", &v) ||
            (strcmp(v.step_state, "pending") != 0 && strcmp(v.step_state, "ready") != 0)) {
                fleet_set_verdict(row, ADV_ERROR, "step p was already '%s' when the result was planted",
                                  v.step_state);
                return;
        }
        expect_real(f, id, "p", "genuine", 1, obs, sizeof(obs), bad, sizeof(bad));
        if (!bad[0])
                fleet_add(obs, sizeof(obs), "the planted %s was not sent on", cache);
        fleet_verdict_from(row, obs, bad);
}

const attack fleet_identity_attacks[] = {
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

};
const size_t fleet_identity_attacks_n = ELEMENTSOF(fleet_identity_attacks);
