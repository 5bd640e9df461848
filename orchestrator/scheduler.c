/* SPDX-License-Identifier: MIT */
/*
 * Placing ready steps on nodes (the scheduler thread), applying results
 * (the results thread), recovery (retry with backoff and jitter, another
 * node, the fallback, escalation to a human) and node loss.
 *
 * Every decision is one PostgreSQL transaction that also writes its audit
 * rows; Redis is written after COMMIT (job specs, events) and results are
 * XACKed after COMMIT, so a crash anywhere loses nothing: specs of steps
 * left "dispatched" are sent again at start (nodes know run ids), and
 * unacknowledged results are read again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uuid/uuid.h>

#include "common/json.h"
#include "common/log.h"
#include "common/loop.h"
#include "memory/pg.h"
#include "memory/redis.h"
#include "memory/streams.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/identity.h"
#include "orchestrator/placement.h"
#include "orchestrator/recovery.h"
#include "orchestrator/secrets.h"

#define RESULTS_BATCH 64 /* results can be MiBs each (stdout and stderr): bounds the memory of a batch */
#define POISON_TRIES 3   /* a result that fails alone this often, the database being up, is set aside */
#define RESULT_MAX_BYTES (64u << 20)
#define CLAIM_IDLE_MS 5000
#define STDERR_TAIL 2048

/* ---- small helpers ---------------------------------------------------------- */

typedef struct strv {
        char **v;
        size_t n, cap;
} strv;

static int strv_push(strv *s, const char *x) {
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 32;
                char **n = reallocarray(s->v, cap, sizeof(char *));
                if (!n)
                        return -ENOMEM;
                s->v = n;
                s->cap = cap;
        }
        s->v[s->n] = x ? strdup(x) : NULL;
        if (x && !s->v[s->n])
                return -ENOMEM;
        s->n++;
        return 0;
}

static int strv_pushf(strv *s, const char *fmt, ...) _printf_(2, 3);
static int strv_pushf(strv *s, const char *fmt, ...) {
        char *x;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&x, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        r = strv_push(s, x);
        free(x);
        return r;
}

static bool strv_contains(const strv *s, const char *x) {
        for (size_t i = 0; i < s->n; i++)
                if (s->v[i] && strcmp(s->v[i], x) == 0)
                        return true;
        return false;
}

static void strv_done(strv *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        *s = (strv){0};
}

static char *strv_array(const strv *s) {
        return orc_pg_array(s->v, s->n);
}

/* A compact JSON object from key/value pairs; values starting with '\x01' are raw JSON. */
static char *json_obj(const char *const *kv) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g)
                return NULL;
        au_json_gen_map_open(g);
        for (size_t i = 0; kv[i]; i += 2) {
                const char *v = kv[i + 1];
                au_json_gen_string(g, kv[i]);
                if (!v)
                        au_json_gen_null(g);
                else if (v[0] == '\x01')
                        yajl_gen_number(g, v + 1,
                                        strlen(v + 1)); /* raw: numbers, arrays (yajl copies verbatim) */
                else
                        au_json_gen_string(g, v);
        }
        au_json_gen_map_close(g);
        return au_json_gen_finish(g, NULL);
}

static bool wait_wake(orc_coord *c, int ms) {
        struct timespec ts;
        bool woke;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long) (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&c->wake_lock);
        while (!c->wake && !atomic_load(&c->stop))
                if (pthread_cond_timedwait(&c->wake_cond, &c->wake_lock, &ts) != 0)
                        break;
        woke = c->wake;
        c->wake = false;
        pthread_mutex_unlock(&c->wake_lock);
        return woke;
}

static int ensure_pg(orc_coord *c, PGconn **conn, const char *who) {
        au_error err = {0};
        char name[64];

        if (*conn && mem_pg_ok(*conn))
                return 0;
        if (*conn)
                mem_pg_close(*conn);
        *conn = NULL;
        snprintf(name, sizeof(name), "autoos-coordinator %s", who);
        if (mem_pg_connect(c->cfg.db, name, conn, &err) < 0) {
                *conn = NULL;
                return -ENOTCONN;
        }
        return 0;
}

static int ensure_redis(orc_coord *c, redisContext **rc, int cmd_timeout_ms) {
        au_error err = {0};

        if (*rc && !(*rc)->err)
                return 0;
        if (*rc)
                redisFree(*rc);
        *rc = NULL;
        if (mem_redis_connect(c->cfg.redis, 1000, cmd_timeout_ms, rc, &err) < 0) {
                *rc = NULL;
                return -ENOTCONN;
        }
        return 0;
}

/* ---- run specs ---------------------------------------------------------------- */

/*
 * The spec sent to a node: the step's run object plus id, workflow, step and
 * attempt, AUTOOS_* variables in env, and the needs' outputs as
 * files inputs/<step>.stdout (an approval step passes on its own needs'
 * outputs: what was approved reaches the steps after it). inputs: JSON
 * array of [step, base64] or NULL.
 */
static char *build_spec(const char *run_json, const char *wf, const char *step, int attempt,
                        const char *inputs) {
        _cleanup_json_ yajl_val run = NULL, in = NULL;
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        char id[256], num[16];
        bool env_done = false, files_done = false;

        if (!g || au_json_parse(run_json, strlen(run_json), RESULT_MAX_BYTES, &run, NULL) < 0 ||
            !YAJL_IS_OBJECT(run))
                return NULL;
        if (inputs && au_json_parse(inputs, strlen(inputs), RESULT_MAX_BYTES, &in, NULL) < 0)
                return NULL;
        snprintf(id, sizeof(id), "%s.%s.%d", wf, step, attempt);
        snprintf(num, sizeof(num), "%d", attempt);

        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "id", id);
        au_json_gen_kv_string(g, "workflow", wf);
        au_json_gen_kv_string(g, "step", step);
        au_json_gen_kv_uint64(g, "attempt", (uint64_t) attempt);
        for (size_t i = 0; i <= run->u.object.len; i++) {
                const char *key = i < run->u.object.len ? run->u.object.keys[i] : NULL;
                yajl_val v = key ? run->u.object.values[i] : NULL;

                if (key && strcmp(key, "env") != 0 && strcmp(key, "files") != 0) {
                        au_json_gen_string(g, key);
                        au_json_gen_tree(g, v);
                        continue;
                }
                if ((key && strcmp(key, "env") == 0) || (!key && !env_done)) {
                        au_json_gen_string(g, "env");
                        au_json_gen_map_open(g);
                        for (size_t k = 0; v && YAJL_IS_OBJECT(v) && k < v->u.object.len; k++) {
                                if (strncmp(v->u.object.keys[k], "AUTOOS_", 7) == 0)
                                        continue;
                                au_json_gen_string(g, v->u.object.keys[k]);
                                au_json_gen_tree(g, v->u.object.values[k]);
                        }
                        au_json_gen_kv_string(g, "AUTOOS_WORKFLOW", wf);
                        au_json_gen_kv_string(g, "AUTOOS_STEP", step);
                        au_json_gen_kv_string(g, "AUTOOS_ATTEMPT", num);
                        au_json_gen_map_close(g);
                        env_done = true;
                        if (key)
                                continue;
                }
                if ((key && strcmp(key, "files") == 0) || (!key && !files_done)) {
                        size_t n_in = in && YAJL_IS_ARRAY(in) ? in->u.array.len : 0;
                        if (!key && n_in == 0)
                                break;
                        au_json_gen_string(g, "files");
                        au_json_gen_map_open(g);
                        for (size_t k = 0; v && YAJL_IS_OBJECT(v) && k < v->u.object.len; k++) {
                                if (strncmp(v->u.object.keys[k], "inputs/", 7) == 0)
                                        continue;
                                au_json_gen_string(g, v->u.object.keys[k]);
                                au_json_gen_tree(g, v->u.object.values[k]);
                        }
                        for (size_t k = 0; k < n_in; k++) {
                                yajl_val pair = in->u.array.values[k];
                                char name[160];
                                if (!YAJL_IS_ARRAY(pair) || pair->u.array.len != 2 ||
                                    !YAJL_IS_STRING(pair->u.array.values[0]) ||
                                    !YAJL_IS_STRING(pair->u.array.values[1]))
                                        continue;
                                snprintf(name, sizeof(name), "inputs/%s.stdout",
                                         YAJL_GET_STRING(pair->u.array.values[0]));
                                au_json_gen_string(g, name);
                                au_json_gen_map_open(g);
                                au_json_gen_kv_string(g, "base64", YAJL_GET_STRING(pair->u.array.values[1]));
                                au_json_gen_map_close(g);
                        }
                        au_json_gen_map_close(g);
                        files_done = true;
                }
        }
        au_json_gen_map_close(g);
        return au_json_gen_finish(g, NULL);
}

/* ---- dispatch ---------------------------------------------------------------- */

typedef struct pending_job {
        char *stream; /* autoos:jobs:<node> */
        char *field;  /* "spec" or "cancel" */
        char *value;
        /* bus_auth (identity.h): the dispatch token and expiry (specs), and the coordinator's MAC */
        char token[MEM_SEAL_HEX_LEN + 1], expires[24], auth[MEM_SEAL_HEX_LEN + 1];
} pending_job;

typedef struct outq {
        pending_job *v;
        size_t n, cap;
} outq;

static int outq_push(outq *q, const char *node, const char *field, char *value /* taken */) {
        if (q->n == q->cap) {
                size_t cap = q->cap ? q->cap * 2 : 64;
                pending_job *n = reallocarray(q->v, cap, sizeof(pending_job));
                if (!n) {
                        free(value);
                        return -ENOMEM;
                }
                q->v = n;
                q->cap = cap;
        }
        if (asprintf(&q->v[q->n].stream, MEM_STREAM_JOBS_PREFIX "%s", node) < 0) {
                free(value);
                return -ENOMEM;
        }
        q->v[q->n].field = strdup(field);
        q->v[q->n].value = value;
        q->v[q->n].token[0] = q->v[q->n].expires[0] = q->v[q->n].auth[0] = '\0';
        q->n++;
        return 0;
}

/*
 * outq_push() for a node's jobs stream, sealed for that node when bus_auth is
 * on: a spec with run_id's dispatch token and an expiry, a cancel (run_id
 * NULL) with the MAC alone. A node that is not enrolled gets it unsealed,
 * which it refuses (and it gets no work: its heartbeats are not believed).
 */
static int outq_push_job(orc_coord *c, outq *q, const char *node, const char *field, char *value /* taken */,
                         const char *run_id) {
        int r = outq_push(q, node, field, value);
        pending_job *j = &q->v[q->n - 1];

        if (r < 0 || !orc_identity_on(c) || !value)
                return r;
        value = orc_secrets_seal_spec(c, node, run_id,
                                      &j->value); /* secrets.c: names -> values sealed for node */
        if (orc_seal_job(c, node, field, value, run_id, j->token, j->expires, j->auth) < 0) {
                log_warning("cannot seal a %s for node %s (not enrolled?): sent unsealed, the node will "
                            "refuse it",
                            field, node);
                j->token[0] = j->expires[0] = j->auth[0] = '\0';
        }
        return 0;
}

/* Sends what is queued; what Redis did not take stays queued. */
static void outq_send(orc_coord *c, outq *q, redisContext **rc) {
        size_t sent = 0;

        if (q->n == 0 || ensure_redis(c, rc, 5000) < 0)
                return;
        for (size_t i = 0; i < q->n; i++) {
                pending_job *j = &q->v[i];
                const char *argv[11] = {"XADD", j->stream, "*", j->field, j->value ? j->value : ""};
                int argc = 5;
                if (j->token[0]) {
                        argv[argc++] = MEM_FIELD_TOKEN;
                        argv[argc++] = j->token;
                        argv[argc++] = MEM_FIELD_EXPIRES;
                        argv[argc++] = j->expires;
                }
                if (j->auth[0]) {
                        argv[argc++] = MEM_FIELD_AUTH;
                        argv[argc++] = j->auth;
                }
                redisAppendCommandArgv(*rc, argc, argv, NULL);
        }
        for (size_t i = 0; i < q->n; i++) {
                redisReply *reply = NULL;
                if (redisGetReply(*rc, (void **) &reply) != REDIS_OK) {
                        redisFree(*rc);
                        *rc = NULL;
                        break;
                }
                if (reply->type != REDIS_REPLY_ERROR && sent == i)
                        sent = i + 1;
                freeReplyObject(reply);
        }
        for (size_t i = 0; i < sent; i++) {
                free(q->v[i].stream);
                free(q->v[i].field);
                free(q->v[i].value);
        }
        memmove(q->v, q->v + sent, (q->n - sent) * sizeof(pending_job));
        q->n -= sent;
}

static void outq_done(outq *q) {
        for (size_t i = 0; i < q->n; i++) {
                free(q->v[i].stream);
                free(q->v[i].field);
                free(q->v[i].value);
        }
        free(q->v);
        *q = (outq){0};
}

#define STEP_SPEC_COLUMNS                                                                             \
        "s.workflow_id, s.step_id, s.attempt, s.spec::text, s.selector::text, s.avoid_node, s.node, " \
        "(WITH RECURSIVE inp(step_id) AS (SELECT unnest(s.needs) UNION "                              \
        "  SELECT unnest(a.needs) FROM steps a JOIN inp ON a.workflow_id = s.workflow_id "            \
        "  AND a.step_id = inp.step_id AND a.kind = 'approval') "                                     \
        " SELECT json_agg(json_build_array(u.step_id, u.output_b64))::text FROM steps u JOIN inp "    \
        " ON u.step_id = inp.step_id WHERE u.workflow_id = s.workflow_id AND u.output_b64 IS NOT NULL)"

/* The statements of every dispatch and result transaction: prepared once per connection. */
static const mem_pg_stmt stmt_dispatch_inflight = {
        "dispatch_inflight",
        "SELECT node, count(*) FROM steps WHERE state IN ('dispatched', 'running') AND node IS NOT "
        "NULL GROUP BY node",
        0,
};

static const mem_pg_stmt stmt_dispatch_pick = {
        "dispatch_pick",
        "SELECT " STEP_SPEC_COLUMNS ", s.program FROM steps s JOIN workflows w ON w.id = s.workflow_id "
        "WHERE s.state = 'ready' AND w.state = 'running' AND s.kind = 'run' "
        "AND (s.not_before IS NULL OR s.not_before <= now()) "
        "ORDER BY w.created_at, s.position LIMIT $1::int FOR NO KEY UPDATE OF s SKIP LOCKED",
        1,
};

static const mem_pg_stmt stmt_dispatch_update = {
        "dispatch_update",
        "UPDATE steps s SET state = 'dispatched', attempt = v.a, node = v.n, dispatched_at = now(), "
        "not_before = NULL, updated_at = now() "
        "FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[]) AS v(w, st, a, n) "
        "WHERE s.workflow_id = v.w AND s.step_id = v.st",
        4,
};

static const mem_pg_stmt stmt_results_lock = {
        "results_lock",
        "SELECT id FROM workflows WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE",
        1,
};

static const mem_pg_stmt stmt_results_steps = {
        "results_steps",
        "SELECT s.workflow_id, s.step_id, s.state, s.attempt, s.node, s.max_attempts, s.failures, "
        "s.moves, s.backoff_ms, s.max_backoff_ms, s.fallback, s.fallback_for, w.state, "
        "(extract(epoch FROM s.dispatched_at) * 1000)::bigint, s.escalate "
        "FROM (SELECT DISTINCT * FROM unnest($1::uuid[], $2::text[])) AS v(w, st) "
        "JOIN steps s ON s.workflow_id = v.w AND s.step_id = v.st JOIN workflows w ON w.id = s.workflow_id "
        "ORDER BY s.workflow_id, s.step_id FOR NO KEY UPDATE OF s",
        2,
};

static const mem_pg_stmt stmt_results_runs = {
        "results_runs",
        "INSERT INTO runs (workflow_id, step_id, attempt, node, outcome, exit_code, wall_ms, cpu_ms, "
        "memory_peak_bytes, denied_syscalls, result, started_at, finished_at, program, late) "
        "SELECT v.w, v.s, v.a, v.n, v.o, v.e, v.wall, v.cpu, v.mem, "
        "ARRAY(SELECT jsonb_array_elements_text(v.d::jsonb)), v.r::jsonb, "
        "CASE WHEN v.t0 > 0 THEN to_timestamp(v.t0 / 1000.0) END, "
        "CASE WHEN v.t1 > 0 THEN to_timestamp(v.t1 / 1000.0) END, st.program, v.late "
        "FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], "
        "$7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::bigint[], "
        "$13::bigint[], $14::bool[]) AS v(w, s, a, n, o, e, wall, cpu, mem, d, r, t0, t1, late) "
        "JOIN steps st ON st.workflow_id = v.w AND st.step_id = v.s "
        "ON CONFLICT ON CONSTRAINT runs_attempt_key DO NOTHING RETURNING workflow_id, step_id, attempt",
        14,
};

static const mem_pg_stmt stmt_progress_ready = {
        "progress_ready",
        "UPDATE steps d SET state = CASE WHEN d.kind = 'approval' THEN 'awaiting_human' ELSE 'ready' END, "
        "updated_at = now() WHERE d.workflow_id = ANY($1::uuid[]) AND d.state = 'pending' "
        "AND NOT EXISTS (SELECT 1 FROM steps u WHERE u.workflow_id = d.workflow_id "
        "AND u.step_id = ANY(d.needs) AND u.state NOT IN ('succeeded', 'skipped', 'replaced')) "
        "RETURNING d.workflow_id, d.step_id, d.state",
        1,
};

static const mem_pg_stmt stmt_progress_finish = {
        "progress_finish",
        "WITH fin AS (UPDATE workflows w SET state = CASE WHEN EXISTS (SELECT 1 FROM steps s "
        "WHERE s.workflow_id = w.id AND s.state = 'failed' AND s.fallback_for IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM steps f WHERE f.workflow_id = s.workflow_id "
        "AND f.fallback_for = s.step_id AND f.state = 'succeeded')) "
        "THEN 'failed' ELSE 'succeeded' END "
        "WHERE w.id = ANY($1::uuid[]) AND w.state IN ('running', 'awaiting_human', 'paused') "
        "AND NOT EXISTS (SELECT 1 FROM steps s WHERE s.workflow_id = w.id AND s.state IN "
        "('pending', 'ready', 'dispatched', 'running', 'awaiting_human')) RETURNING w.id, w.state), "
        "tidy AS (UPDATE steps s SET state = 'skipped', updated_at = now() FROM fin "
        "WHERE s.workflow_id = fin.id AND s.state = 'standby') "
        "SELECT id, state FROM fin",
        1,
};

/* Sends again the specs of steps left dispatched (a crash between COMMIT and XADD). Nodes know run ids. */
static void resend_dispatched(orc_coord *c, PGconn *conn, outq *q) {
        _cleanup_pgresult_ PGresult *res = NULL;

        if (mem_pg_exec(conn,
                        "SELECT " STEP_SPEC_COLUMNS " FROM steps s JOIN workflows w ON w.id = s.workflow_id "
                        "WHERE s.state = 'dispatched' AND s.node IS NOT NULL AND w.state <> 'cancelled'",
                        0, NULL, &res, NULL) < 0)
                return;
        for (int i = 0; i < PQntuples(res); i++) {
                char *spec =
                        build_spec(mem_pg_value(res, i, 3), mem_pg_value(res, i, 0), mem_pg_value(res, i, 1),
                                   atoi(mem_pg_value(res, i, 2)), mem_pg_value(res, i, 7));
                if (spec) {
                        char run_id[256];
                        snprintf(run_id, sizeof(run_id), "%s.%s.%s", mem_pg_value(res, i, 0),
                                 mem_pg_value(res, i, 1), mem_pg_value(res, i, 2));
                        outq_push_job(c, q, mem_pg_value(res, i, 6), MEM_FIELD_SPEC, spec, run_id);
                }
        }
        if (PQntuples(res) > 0)
                log_info("sending again the specs of %d steps in flight", PQntuples(res));
}

/* One dispatch transaction; returns how many steps were placed (or a negative errno). */
static int dispatch_round(orc_coord *c, PGconn *conn, outq *q, bool *ret_more) {
        _cleanup_pgresult_ PGresult *res = NULL, *inflight = NULL;
        _cleanup_free_ orc_node *nodes = calloc(ORC_MAX_NODES, sizeof(orc_node));
        _cleanup_free_ orc_place_node *view = NULL;
        _cleanup_free_ char *a_wf = NULL, *a_step = NULL, *a_att = NULL, *a_node = NULL;
        strv wf = {0}, step = {0}, att = {0}, node = {0};
        orc_audit audit;
        size_t n_nodes;
        uint64_t free_slots = 0;
        char limit[16];
        const char *params[4];
        au_error err = {0};
        int r, placed = 0;

        *ret_more = false;
        if (!nodes)
                return -ENOMEM;
        n_nodes = orc_nodes_snapshot(c, nodes, ORC_MAX_NODES);
        view = calloc(n_nodes + 1, sizeof(orc_place_node));
        if (!view)
                return -ENOMEM;
        for (size_t k = 0; k < n_nodes; k++)
                view[k] = (orc_place_node){.id = nodes[k].id,
                                           .labels = nodes[k].labels,
                                           .alive = nodes[k].alive,
                                           .capacity = nodes[k].capacity};

        /* What is in flight per node, from the truth (other coordinators dispatch too), with BEGIN. */
        {
                const mem_pg_stmt *const stmts[] = {&mem_pg_stmt_begin, &stmt_dispatch_inflight};
                PGresult *got[2] = {NULL, NULL};
                r = mem_pg_pipeline(conn, stmts, NULL, 2, got, &err);
                PQclear(got[0]);
                inflight = got[1];
                if (r < 0)
                        goto fail;
        }
        for (int i = 0; i < PQntuples(inflight); i++)
                for (size_t k = 0; k < n_nodes; k++)
                        if (strcmp(nodes[k].id, mem_pg_value(inflight, i, 0)) == 0)
                                view[k].load = (uint32_t) atoi(mem_pg_value(inflight, i, 1));
        for (size_t k = 0; k < n_nodes; k++) {
                uint32_t slots = nodes[k].capacity * c->cfg.queue_per_slot;
                if (nodes[k].alive && slots > view[k].load)
                        free_slots += slots - view[k].load;
        }
        if (free_slots == 0) {
                mem_pg_rollback(conn);
                return 0;
        }
        snprintf(limit, sizeof(limit), "%" PRIu64,
                 free_slots < c->cfg.dispatch_batch ? free_slots : (uint64_t) c->cfg.dispatch_batch);
        params[0] = limit;
        r = mem_pg_run(conn, &stmt_dispatch_pick, params, &res, &err);
        if (r < 0)
                goto fail;
        if (PQntuples(res) == 0) {
                mem_pg_rollback(conn);
                return 0;
        }
        *ret_more = (uint64_t) PQntuples(res) == strtoull(limit, NULL, 10);

        orc_audit_init(&audit, c->id);
        for (int i = 0; i < PQntuples(res); i++) {
                const char *w = mem_pg_value(res, i, 0), *s = mem_pg_value(res, i, 1);
                int attempt = atoi(mem_pg_value(res, i, 2)) + 1;
                int k = orc_place_pick(view, n_nodes, c->cfg.queue_per_slot, mem_pg_value(res, i, 4),
                                       mem_pg_value(res, i, 5));
                char *spec, *detail, run_id[256], num[16];

                if (k < 0)
                        continue; /* no node for it now: stays ready */
                spec = build_spec(mem_pg_value(res, i, 3), w, s, attempt, mem_pg_value(res, i, 7));
                if (!spec)
                        continue;
                view[k].load++;
                snprintf(run_id, sizeof(run_id), "%s.%s.%d", w, s, attempt);
                snprintf(num, sizeof(num), "\x01%d", attempt);
                detail = json_obj((const char *const[]){"step", s, "attempt", num, "node", nodes[k].id,
                                                        "run", run_id, NULL});
                if (!detail || strv_push(&wf, w) < 0 || strv_push(&step, s) < 0 ||
                    strv_pushf(&att, "%d", attempt) < 0 || strv_push(&node, nodes[k].id) < 0 ||
                    orc_audit_add(&audit, w, "dispatched", detail) < 0 ||
                    outq_push_job(c, q, nodes[k].id, MEM_FIELD_SPEC, spec, run_id) < 0) {
                        free(detail);
                        r = -ENOMEM;
                        goto fail_audit;
                }
                free(detail);
                orc_audit_event(&audit, orc_json_event("step.dispatched", w, s,
                                                       (const char *const[]){"node", nodes[k].id, "run",
                                                                             run_id, NULL}));
                placed++;
        }
        if (placed == 0) {
                orc_audit_done(&audit);
                mem_pg_rollback(conn);
                *ret_more = false;
                return 0;
        }
        a_wf = strv_array(&wf);
        a_step = strv_array(&step);
        a_att = strv_array(&att);
        a_node = strv_array(&node);
        if (!a_wf || !a_step || !a_att || !a_node) {
                r = -ENOMEM;
                goto fail_audit;
        }
        params[0] = a_wf;
        params[1] = a_step;
        params[2] = a_att;
        params[3] = a_node;
        r = mem_pg_run(conn, &stmt_dispatch_update, params, NULL, &err);
        if (r >= 0)
                r = orc_audit_flush_commit(c, conn, &audit, &err);
        if (r < 0)
                goto fail_audit;
        orc_metric_add(c, c->m_dispatched, NULL, placed);
        strv_done(&wf);
        strv_done(&step);
        strv_done(&att);
        strv_done(&node);
        /* Keep the events with the queue: send them after the jobs. */
        for (size_t i = 0; i < audit.n_events; i++)
                outq_push(q, "", "", audit.events[i] ? strdup(audit.events[i]) : NULL);
        orc_audit_done(&audit);
        return placed;

fail_audit:
        orc_audit_done(&audit);
        /* The queued specs of this round must not go out: the transaction did not happen. */
        while (placed-- > 0 && q->n > 0) {
                q->n--;
                free(q->v[q->n].stream);
                free(q->v[q->n].field);
                free(q->v[q->n].value);
        }
fail:
        mem_pg_rollback(conn);
        strv_done(&wf);
        strv_done(&step);
        strv_done(&att);
        strv_done(&node);
        if (r == -EAGAIN)
                log_info("dispatch: %s; trying again", err.msg);
        else
                log_warning("dispatch: %s", err.msg[0] ? err.msg : strerror(-r));
        return r;
}

/* Sends queued jobs; entries with an empty stream name ("autoos:jobs:") are events. */
static void send_queue(orc_coord *c, outq *q, redisContext **rc) {
        for (size_t i = 0; i < q->n; i++)
                if (strcmp(q->v[i].stream, MEM_STREAM_JOBS_PREFIX) == 0) {
                        free(q->v[i].stream);
                        free(q->v[i].field);
                        q->v[i].stream = strdup(MEM_STREAM_EVENTS);
                        q->v[i].field = strdup(MEM_FIELD_EVENT);
                }
        outq_send(c, q, rc);
}

static void take_outbox(orc_coord *c, outq *q) {
        pthread_mutex_lock(&c->outbox_lock);
        for (size_t i = 0; i + 1 < c->n_outbox; i += 2) {
                bool event = strcmp(c->outbox[i], MEM_STREAM_EVENTS) == 0;
                /* outq_push prefixes "autoos:jobs:"; an empty node marks an event (send_queue). */
                if (event)
                        outq_push(q, "", "", c->outbox[i + 1]);
                else
                        outq_push_job(c, q, c->outbox[i] + strlen(MEM_STREAM_JOBS_PREFIX), MEM_FIELD_CANCEL,
                                      c->outbox[i + 1], NULL);
                free(c->outbox[i]);
        }
        c->n_outbox = 0;
        pthread_mutex_unlock(&c->outbox_lock);
}

void *orc_scheduler_main(void *arg) {
        orc_coord *c = arg;
        PGconn *conn = NULL;
        redisContext *rc = NULL;
        outq q = {0};
        bool resent = false, more = false;

        while (!atomic_load(&c->stop)) {
                if (!more)
                        wait_wake(c, 100);
                more = false;
                take_outbox(c, &q);
                if (ensure_pg(c, &conn, "scheduler") == 0) {
                        if (!resent) {
                                resend_dispatched(c, conn, &q);
                                resent = true;
                        }
                        /* Specs of the last round must be out before more are placed. */
                        if (q.n == 0) {
                                int r = dispatch_round(c, conn, &q, &more);
                                if (r == -EAGAIN)
                                        more = true;
                                else if (r < 0)
                                        orc_metric_add(c, c->m_api_db_errors, "dispatch", 1);
                        }
                }
                send_queue(c, &q, &rc);
                if (q.n > 0) {
                        more = false;
                        usleep(200 * 1000); /* Redis is away: try again soon */
                }
        }
        outq_done(&q);
        if (conn)
                mem_pg_close(conn);
        if (rc)
                redisFree(rc);
        return NULL;
}

/* ---- progress: ready steps, finished workflows ---------------------------------------------- */

int orc_progress(orc_coord *c, PGconn *conn, const char *const *wfs, size_t n, orc_audit *a, au_error *err) {
        _cleanup_pgresult_ PGresult *ready = NULL, *done = NULL;
        _cleanup_free_ char *arr = NULL;
        const char *params[1];
        int r;

        if (n == 0)
                return 0;
        arr = orc_pg_array((char *const *) wfs, n);
        if (!arr)
                return -ENOMEM;
        params[0] = arr;
        /* In one round trip: the second sees what the first changed (one transaction, in order). */
        {
                const mem_pg_stmt *const stmts[] = {&stmt_progress_ready, &stmt_progress_finish};
                const char *const *const ps[] = {params, params};
                PGresult *got[2] = {NULL, NULL};
                r = mem_pg_pipeline(conn, stmts, ps, 2, got, err);
                ready = got[0];
                done = got[1];
                if (r < 0)
                        return r;
        }
        for (int i = 0; i < PQntuples(ready); i++)
                if (strcmp(mem_pg_value(ready, i, 2), "awaiting_human") == 0) {
                        char *d = json_obj((const char *const[]){"step", mem_pg_value(ready, i, 1), NULL});
                        orc_audit_add(a, mem_pg_value(ready, i, 0), "awaiting_approval", d);
                        free(d);
                        orc_audit_event(a,
                                        orc_json_event("step.awaiting_approval", mem_pg_value(ready, i, 0),
                                                       mem_pg_value(ready, i, 1), NULL));
                }
        for (int i = 0; i < PQntuples(done); i++) {
                char *d = json_obj((const char *const[]){"state", mem_pg_value(done, i, 1), NULL});
                orc_audit_add(a, mem_pg_value(done, i, 0), "workflow_finished", d);
                free(d);
                orc_audit_event(
                        a, orc_json_event("workflow.finished", mem_pg_value(done, i, 0), NULL,
                                          (const char *const[]){"state", mem_pg_value(done, i, 1), NULL}));
                log_info("workflow %s %s", mem_pg_value(done, i, 0), mem_pg_value(done, i, 1));
        }
        if (PQntuples(done) > 0)
                orc_signal_done(c);
        (void) c;
        return 0;
}

/* ---- node loss ---------------------------------------------------------------- */

int orc_node_lost(orc_coord *c, PGconn *conn, redisContext *rc, const char *node, au_error *err) {
        _cleanup_pgresult_ PGresult *flip = NULL, *moved = NULL;
        orc_audit audit;
        strv wfs = {0};
        const char *params[1] = {node};
        int r;

        orc_audit_init(&audit, c->id);
        r = mem_pg_begin(conn, err);
        if (r < 0)
                goto out;
        r = mem_pg_exec(
                conn,
                "INSERT INTO nodes (id, state, last_seen) VALUES ($1, 'lost', now()) ON CONFLICT (id) DO "
                "UPDATE SET state = 'lost' WHERE nodes.state <> 'lost' RETURNING id",
                1, params, &flip, err);
        if (r < 0)
                goto out;
        r = mem_pg_exec(
                conn,
                "UPDATE steps SET state = 'ready', moves = moves + 1, avoid_node = $1, not_before = NULL, "
                "updated_at = now() WHERE node = $1 AND state IN ('dispatched', 'running') "
                "RETURNING workflow_id, step_id, attempt",
                1, params, &moved, err);
        if (r < 0)
                goto out;
        if (PQntuples(flip) > 0) {
                char n[32];
                snprintf(n, sizeof(n), "\x01%d", PQntuples(moved));
                char *d = json_obj((const char *const[]){"node", node, "steps_moved", n, NULL});
                orc_audit_add(&audit, NULL, "node_lost", d);
                free(d);
                orc_audit_event(&audit, orc_json_event("node.lost", NULL, NULL,
                                                       (const char *const[]){"node", node, NULL}));
        }
        for (int i = 0; i < PQntuples(moved); i++) {
                char num[16];
                snprintf(num, sizeof(num), "\x01%s", mem_pg_value(moved, i, 2));
                char *d = json_obj((const char *const[]){"step", mem_pg_value(moved, i, 1), "attempt", num,
                                                         "node", node, "reason", "node lost", NULL});
                orc_audit_add(&audit, mem_pg_value(moved, i, 0), "step_moved", d);
                free(d);
                if (!strv_contains(&wfs, mem_pg_value(moved, i, 0)))
                        strv_push(&wfs, mem_pg_value(moved, i, 0));
        }
        r = orc_audit_flush(c, conn, &audit, err);
        if (r >= 0)
                r = mem_pg_commit(conn, err);
        if (r >= 0) {
                if (PQntuples(flip) > 0 || PQntuples(moved) > 0) {
                        log_warning("node %s lost: %d steps in flight placed again", node, PQntuples(moved));
                        orc_metric_add(c, c->m_node_lost, NULL, PQntuples(flip) > 0 ? 1 : 0);
                }
                orc_audit_send_events(&audit, rc);
        }
out:
        if (r < 0)
                mem_pg_rollback(conn);
        strv_done(&wfs);
        orc_audit_done(&audit);
        return r;
}

/* ---- results ---------------------------------------------------------------- */

typedef struct res_entry {
        char *entry_id;
        sbx_result *r; /* NULL: not ours or unreadable; just acknowledged */
        char *stored;  /* the result as stored (NUL bytes in output replaced) */
        char *stdout_b64;
        /* the step row, once locked */
        bool found, current, is_new;
        char *state, *node, *fallback, *fallback_for, *wf_state;
        int attempt, max_attempts, failures, moves;
        long long backoff_ms, max_backoff_ms, dispatched_ms;
        bool escalate;
        unsigned tries; /* failed alone, the database being up */
        /* bus_auth: why it was refused (a metric label; NULL: not refused), who it named, whether it gets an
         * audit row */
        const char *refused;
        char *claimed, *claimed_run;
        bool refusal_row;
        uint64_t suppressed; /* refusal rows held back in the minute before (one counter row) */
} res_entry;

static void res_entry_done(res_entry *e) {
        free(e->entry_id);
        sbx_result_free(e->r);
        free(e->stored);
        free(e->stdout_b64);
        free(e->state);
        free(e->node);
        free(e->fallback);
        free(e->fallback_for);
        free(e->wf_state);
        free(e->claimed);
        free(e->claimed_run);
        *e = (res_entry){0};
}

static void replace_nul(char *s, size_t n) {
        for (size_t i = 0; s && i < n; i++)
                if (s[i] == '\0')
                        s[i] = '?';
}

static bool valid_uuid(const char *s) {
        uuid_t u;
        return s && strlen(s) == 36 && uuid_parse(s, u) == 0;
}

/* Not applied: counted now; the audit row (bounded per node and minute) goes with the batch's transaction.
 */
static void refuse_result(orc_coord *c, res_entry *e, const char *reason, const char *node, size_t node_len,
                          const char *run) {
        e->refused = reason;
        e->claimed = node ? strndup(node, MIN(node_len, (size_t) 128)) : NULL;
        e->claimed_run = run ? strndup(run, 256) : NULL;
        orc_count_refused_result(c, reason);
        e->refusal_row = orc_refusal_admit(c, e->claimed, &e->suppressed);
        if (e->refusal_row)
                log_warning("results entry %s refused (%s): claims node %s, run %s; not applied",
                            e->entry_id, reason, e->claimed ? e->claimed : "(none)",
                            e->claimed_run ? e->claimed_run : "?");
}

static void parse_entry(orc_coord *c, res_entry *e, const char *field, const char *value, size_t len,
                        const redisReply *fields) {
        au_error err = {0};
        sbx_result *r = NULL;

        if (strcmp(field, MEM_FIELD_RESULT) != 0) {
                log_warning(
                        "results entry %s has field '%.32s', expected 'result': acknowledged and dropped",
                        e->entry_id, field);
                if (orc_identity_on(c))
                        refuse_result(c, e, "malformed", NULL, 0, NULL);
                return;
        }
        if (sbx_result_from_json(value, len, &r, &err) < 0) {
                log_warning("results entry %s is not a result (%s): acknowledged and dropped", e->entry_id,
                            err.msg);
                if (orc_identity_on(c))
                        refuse_result(c, e, "malformed", NULL, 0, NULL);
                return;
        }
        if (!r->workflow || !r->step || !valid_uuid(r->workflow) || strlen(r->step) > 64 || r->attempt < 1 ||
            r->attempt > INT32_MAX) {
                log_debug("results entry %s belongs to no workflow step: acknowledged", e->entry_id);
                if (orc_identity_on(c))
                        refuse_result(c, e, "no_run", r->node, r->node ? strlen(r->node) : 0, r->id);
                sbx_result_free(r);
                return;
        }
        if (orc_identity_on(c)) {
                /* Sealed by the node it names, for the run it names, which was dispatched to that node. */
                const char *node = NULL, *token = NULL, *auth = NULL, *why;
                size_t node_len = 0, token_len = 0, auth_len = 0;
                char run_id[256];
                for (size_t i = 2; fields && i + 1 < fields->elements; i += 2) {
                        const redisReply *f = fields->element[i], *v = fields->element[i + 1];
                        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                                continue;
                        if (strcmp(f->str, MEM_FIELD_NODE) == 0 && !node) {
                                node = v->str;
                                node_len = v->len;
                        } else if (strcmp(f->str, MEM_FIELD_TOKEN) == 0 && !token) {
                                token = v->str;
                                token_len = v->len;
                        } else if (strcmp(f->str, MEM_FIELD_AUTH) == 0 && !auth) {
                                auth = v->str;
                                auth_len = v->len;
                        }
                }
                snprintf(run_id, sizeof(run_id), "%s.%s.%u", r->workflow, r->step, r->attempt);
                why = orc_result_refusal(c, node, node_len, token, token_len, auth, auth_len, value, len,
                                         run_id);
                if (!why &&
                    (!r->node || strlen(r->node) != node_len || memcmp(r->node, node, node_len) != 0))
                        why = "wrong_node";
                if (!why && (!r->id || strcmp(r->id, run_id) != 0))
                        why = "wrong_run";
                if (why) {
                        refuse_result(c, e, why, node ? node : r->node,
                                      node ? node_len : (r->node ? strlen(r->node) : 0),
                                      r->id ? r->id : run_id);
                        sbx_result_free(r);
                        return;
                }
        }
        e->stdout_b64 = au_base64_encode(r->stdout_data ? r->stdout_data : "", r->stdout_size);
        replace_nul(r->stdout_data, r->stdout_size);
        replace_nul(r->stderr_data, r->stderr_size);
        e->stored = sbx_result_to_json(r, false);
        if (!e->stdout_b64 || !e->stored) {
                sbx_result_free(r);
                return;
        }
        e->r = r;
}

static int64_t ts_ms(struct timespec t) {
        return (int64_t) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static char *denied_json(const sbx_result *r) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g)
                return NULL;
        au_json_gen_array_open(g);
        for (size_t i = 0; i < r->n_denied_syscalls; i++)
                au_json_gen_string(g, r->denied_syscalls[i]);
        au_json_gen_array_close(g);
        return au_json_gen_finish(g, NULL);
}

static char *result_detail(const res_entry *e) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        const sbx_result *r = e->r;

        if (!g)
                return NULL;
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "step", r->step);
        au_json_gen_kv_uint64(g, "attempt", r->attempt);
        au_json_gen_kv_string(g, "node", r->node);
        au_json_gen_kv_string(g, "run", r->id);
        au_json_gen_kv_string(g, "outcome", sbx_outcome_to_string(r->outcome));
        au_json_gen_string(g, "exit_code");
        au_json_gen_int64(g, r->exit_code);
        au_json_gen_string(g, "signal");
        if (r->signal)
                au_json_gen_int64(g, r->signal);
        else
                au_json_gen_null(g);
        au_json_gen_kv_uint64(g, "wall_ms", r->wall_ms);
        au_json_gen_kv_uint64(g, "cpu_ms", r->cpu_ms);
        au_json_gen_kv_uint64(g, "memory_peak_bytes", r->memory_peak_bytes);
        au_json_gen_kv_uint64(g, "oom_kills", r->oom_kills);
        au_json_gen_string(g, "denied_syscalls");
        au_json_gen_array_open(g);
        for (size_t i = 0; i < r->n_denied_syscalls; i++)
                au_json_gen_string(g, r->denied_syscalls[i]);
        au_json_gen_array_close(g);
        if (r->error)
                au_json_gen_kv_string(g, "error", r->error);
        if (r->reason)
                au_json_gen_kv_string(g, "reason", r->reason);
        au_json_gen_map_close(g);
        return au_json_gen_finish(g, NULL);
}

static bool result_ok(const sbx_result *r) {
        return r->outcome == SBX_OUTCOME_EXITED && r->exit_code == 0;
}

static int step_exec(PGconn *conn, const char *sql, int n, const char *const *params, au_error *err) {
        return mem_pg_exec(conn, sql, n, params, NULL, err);
}

/* Steps that succeeded in this batch: one UPDATE for all of them. */
typedef struct succeeded {
        strv wf, step, b64, exit, wall;
} succeeded;

static const mem_pg_stmt stmt_steps_succeeded = {
        "steps_succeeded",
        "UPDATE steps s SET state = 'succeeded', output_b64 = v.b, outcome = 'exited', exit_code = v.e, "
        "wall_ms = v.wall, error = NULL, updated_at = now() "
        "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bigint[]) AS v(w, st, b, e, wall) "
        "WHERE s.workflow_id = v.w AND s.step_id = v.st",
        5,
};

static int succeeded_flush(PGconn *conn, succeeded *ok, au_error *err) {
        strv *cols[5] = {&ok->wf, &ok->step, &ok->b64, &ok->exit, &ok->wall};
        char *arrays[5] = {0};
        const char *params[5];
        int r = 0;

        if (ok->wf.n == 0)
                return 0;
        for (size_t k = 0; k < 5; k++) {
                arrays[k] = strv_array(cols[k]);
                if (!arrays[k])
                        r = au_error_set(err, ENOMEM, "results");
                params[k] = arrays[k];
        }
        if (r >= 0)
                r = mem_pg_run(conn, &stmt_steps_succeeded, params, NULL, err);
        for (size_t k = 0; k < 5; k++)
                free(arrays[k]);
        return r;
}

static void succeeded_done(succeeded *ok) {
        strv_done(&ok->wf);
        strv_done(&ok->step);
        strv_done(&ok->b64);
        strv_done(&ok->exit);
        strv_done(&ok->wall);
}

/* What apply_one's actions share: the result, its step row, the texts statements and audit rows use. */
typedef struct applying {
        PGconn *conn;
        res_entry *e;
        orc_audit *a;
        strv *progress;
        const char *wf, *step, *outcome, *err_text;
        char exit_s[16], wall_s[24];
} applying;

static int progress_add(applying *x) {
        if (strv_contains(x->progress, x->wf))
                return 0;
        return strv_push(x->progress, x->wf);
}

/* The step failed for good with this result (its output, outcome and error kept). */
static int step_failed(applying *x, au_error *err) {
        const char *p[7] = {x->wf, x->step, x->e->stdout_b64, x->outcome, x->exit_s, x->wall_s, x->err_text};
        return step_exec(x->conn,
                         "UPDATE steps SET state = 'failed', failures = failures + 1, output_b64 = $3, "
                         "outcome = $4, exit_code = $5::int, wall_ms = $6::bigint, error = $7, "
                         "updated_at = now() WHERE workflow_id = $1 AND step_id = $2",
                         7, p, err);
}

/* Successes are written together, after the loop (succeeded_flush); a fallback replaces the step it stands
 * in for. */
static int apply_succeeded(applying *x, const orc_recovery *d, succeeded *ok, au_error *err) {
        res_entry *e = x->e;
        int rc = 0;

        if (strv_push(&ok->wf, x->wf) < 0 || strv_push(&ok->step, x->step) < 0 ||
            strv_push(&ok->b64, e->stdout_b64) < 0 || strv_push(&ok->exit, x->exit_s) < 0 ||
            strv_push(&ok->wall, x->wall_s) < 0)
                return au_error_set(err, ENOMEM, "results");
        if (d->replaces) {
                const char *p2[3] = {x->wf, e->fallback_for, e->stdout_b64};
                char *detail;
                rc = step_exec(x->conn,
                               "UPDATE steps SET state = 'replaced', output_b64 = $3, updated_at = now() "
                               "WHERE workflow_id = $1 AND step_id = $2 AND state = 'failed'",
                               3, p2, err);
                detail = json_obj((const char *const[]){"step", e->fallback_for, "by", x->step, NULL});
                orc_audit_add(x->a, x->wf, "replaced", detail);
                free(detail);
        }
        orc_audit_event(x->a, orc_json_event("step.finished", x->wf, x->step,
                                             (const char *const[]){"state", "succeeded", "outcome",
                                                                   x->outcome, NULL}));
        if (rc >= 0)
                rc = progress_add(x);
        return rc;
}

/* Level 2: ready again on another node, the failure not counted. */
static int apply_move(applying *x, au_error *err) {
        const sbx_result *r = x->e->r;
        const char *p[3] = {x->wf, x->step, r->node ? r->node : ""};
        char num[32], *detail;
        int rc;

        rc = step_exec(
                x->conn,
                "UPDATE steps SET state = 'ready', moves = moves + 1, avoid_node = $3, "
                "outcome = 'sandbox_error', updated_at = now() WHERE workflow_id = $1 AND step_id = $2",
                3, p, err);
        snprintf(num, sizeof(num), "\x01%u", r->attempt);
        detail = json_obj((const char *const[]){"step", x->step, "attempt", num, "node", r->node, "reason",
                                                x->err_text ? x->err_text : "sandbox_error", NULL});
        orc_audit_add(x->a, x->wf, "moved", detail);
        free(detail);
        return rc;
}

/* Level 1: ready again after the backoff, avoiding the node that failed it. */
static int apply_retry(applying *x, const orc_recovery *d, au_error *err) {
        const res_entry *e = x->e;
        const sbx_result *r = e->r;
        char delay_s[32], delay_j[40], next[16], num[32], *detail;
        int rc;

        snprintf(delay_s, sizeof(delay_s), "%.0f", d->delay_ms);
        snprintf(delay_j, sizeof(delay_j), "\x01%.0f", d->delay_ms);
        const char *p[5] = {x->wf, x->step, r->node ? r->node : "", delay_s, e->stdout_b64};
        rc = step_exec(x->conn,
                       "UPDATE steps SET state = 'ready', failures = failures + 1, avoid_node = $3, "
                       "not_before = now() + make_interval(secs => $4::double precision / 1000), "
                       "output_b64 = $5, updated_at = now() WHERE workflow_id = $1 AND step_id = $2",
                       5, p, err);
        snprintf(num, sizeof(num), "\x01%u", r->attempt);
        snprintf(next, sizeof(next), "\x01%d", e->failures + 2);
        detail = json_obj((const char *const[]){"step", x->step, "attempt", num, "failures", next, "outcome",
                                                x->outcome, "backoff_ms", delay_j, "avoid_node", r->node,
                                                "error", x->err_text, NULL});
        orc_audit_add(x->a, x->wf, "retry_scheduled", detail);
        free(detail);
        return rc;
}

/* Level 4 begins with claiming the fallback: *ret_standing says whether it was still standing by. */
static int claim_fallback(applying *x, bool *ret_standing, au_error *err) {
        _cleanup_pgresult_ PGresult *fb = NULL;
        const char *pf[2] = {x->wf, x->e->fallback};
        int rc;

        rc = mem_pg_exec(x->conn,
                         "UPDATE steps SET state = 'pending', updated_at = now() WHERE workflow_id = $1 "
                         "AND step_id = $2 AND state = 'standby' RETURNING step_id",
                         2, pf, &fb, err);
        if (rc < 0)
                return rc;
        *ret_standing = PQntuples(fb) == 1;
        return 0;
}

/* Level 4, the fallback claimed: the step failed, its fallback stands in. */
static int apply_fallback(applying *x, au_error *err) {
        char *detail;
        int rc;

        rc = step_failed(x, err);
        detail = json_obj((const char *const[]){"step", x->step, "fallback", x->e->fallback, "outcome",
                                                x->outcome, "error", x->err_text, NULL});
        orc_audit_add(x->a, x->wf, "fallback", detail);
        free(detail);
        orc_audit_event(
                x->a, orc_json_event("step.finished", x->wf, x->step,
                                     (const char *const[]){"state", "failed", "outcome", x->outcome, NULL}));
        if (rc >= 0)
                rc = progress_add(x);
        return rc;
}

/* A one-off run (POST /v1/runs) ends here: the result is the answer. */
static int apply_failed(applying *x, au_error *err) {
        int rc = step_failed(x, err);
        orc_audit_event(
                x->a, orc_json_event("step.finished", x->wf, x->step,
                                     (const char *const[]){"state", "failed", "outcome", x->outcome, NULL}));
        if (rc >= 0)
                rc = progress_add(x);
        return rc;
}

/* Level 5: a human decides. A failed fallback hands the decision back to the step it stood in for. */
static int apply_escalate(applying *x, const orc_recovery *d, au_error *err) {
        const res_entry *e = x->e;
        const sbx_result *r = e->r;
        const char *wf = x->wf, *step = x->step, *err_text = x->err_text, *outcome = x->outcome;
        const char *target = d->escalate_replaced ? e->fallback_for : step;
        const char *p[7] = {wf, step, e->stdout_b64, outcome, x->exit_s, x->wall_s, err_text};
        const char *pt[2] = {wf, target};
        const char *pw[1] = {wf};
        _cleanup_free_ char *tail = NULL, *res_detail = NULL;
        char attempts[16], *detail, *res_raw = NULL;
        int rc;

        if (d->escalate_replaced)
                rc = step_failed(x, err);
        else
                rc = step_exec(x->conn,
                               "UPDATE steps SET state = 'awaiting_human', failures = failures + 1, "
                               "output_b64 = $3, outcome = $4, exit_code = $5::int, wall_ms = $6::bigint, "
                               "error = $7, updated_at = now() WHERE workflow_id = $1 AND step_id = $2",
                               7, p, err);
        if (rc >= 0 && d->escalate_replaced)
                rc = step_exec(x->conn,
                               "UPDATE steps SET state = 'awaiting_human', updated_at = now() "
                               "WHERE workflow_id = $1 AND step_id = $2",
                               2, pt, err);
        if (rc >= 0)
                rc = step_exec(
                        x->conn,
                        "UPDATE workflows SET state = 'awaiting_human' WHERE id = $1 AND state = 'running'",
                        1, pw, err);
        if (r->stderr_data) {
                size_t n = r->stderr_size > STDERR_TAIL ? STDERR_TAIL : r->stderr_size;
                tail = au_utf8_sanitize(r->stderr_data + r->stderr_size - n, n, NULL);
        }
        snprintf(attempts, sizeof(attempts), "\x01%d", d->failures);
        res_detail = result_detail(e);
        if (res_detail)
                asprintf(&res_raw, "\x01%s", res_detail);
        detail = json_obj((const char *const[]){"step", target, "failed_step", step, "attempts", attempts,
                                                "outcome", outcome, "error", err_text, "stderr_tail", tail,
                                                "last_result", res_raw, NULL});
        free(res_raw);
        orc_audit_add(x->a, wf, "escalated", detail);
        free(detail);
        orc_audit_event(x->a, orc_json_event("step.awaiting_human", wf, target,
                                             (const char *const[]){"outcome", outcome, NULL}));
        log_warning("workflow %s step %s escalated to a human after %d failed attempts: %s", wf, target,
                    d->failures, err_text ? err_text : outcome);
        return rc;
}

/*
 * What a current result means for its step (recovery.c decides), carried out:
 * statements and audit rows go into the transaction.
 */
static int apply_one(PGconn *conn, res_entry *e, orc_audit *a, strv *progress, succeeded *ok,
                     au_error *err) {
        const sbx_result *r = e->r;
        _cleanup_free_ char *err_text = NULL;
        applying x = {.conn = conn,
                      .e = e,
                      .a = a,
                      .progress = progress,
                      .wf = r->workflow,
                      .step = r->step,
                      .outcome = sbx_outcome_to_string(r->outcome)};
        orc_recovery_input in = {
                .outcome = r->outcome,
                .exit_code = r->exit_code,
                .failures = e->failures,
                .max_attempts = e->max_attempts,
                .moves = e->moves,
                .max_moves = ORC_MAX_MOVES,
                .backoff_ms = e->backoff_ms,
                .max_backoff_ms = e->max_backoff_ms,
                .jitter = (double) random() / (double) RAND_MAX,
                .has_fallback = e->fallback != NULL,
                .fallback_standing = e->fallback != NULL, /* known once claimed (below) */
                .escalates = e->escalate,
                .is_fallback = e->fallback_for != NULL,
        };
        orc_recovery d = orc_recovery_decide(&in);
        int rc;

        snprintf(x.exit_s, sizeof(x.exit_s), "%d", r->exit_code);
        snprintf(x.wall_s, sizeof(x.wall_s), "%" PRIu64, r->wall_ms);
        err_text = r->error ? strdup(r->error) : (r->reason ? strdup(r->reason) : NULL);
        if (!result_ok(r) && !err_text) {
                if (r->outcome == SBX_OUTCOME_EXITED)
                        asprintf(&err_text, "exited with status %d", r->exit_code);
                else
                        err_text = strdup(x.outcome);
        }
        x.err_text = err_text;

        if (d.action == ORC_RECOVERY_FALLBACK) {
                bool standing = false;
                rc = claim_fallback(&x, &standing, err);
                if (rc < 0)
                        return rc;
                if (!standing) {
                        in.fallback_standing = false;
                        d = orc_recovery_decide(&in);
                }
        }
        switch (d.action) {
        case ORC_RECOVERY_SUCCEEDED:
                return apply_succeeded(&x, &d, ok, err);
        case ORC_RECOVERY_MOVE:
                return apply_move(&x, err);
        case ORC_RECOVERY_RETRY:
                return apply_retry(&x, &d, err);
        case ORC_RECOVERY_FALLBACK:
                return apply_fallback(&x, err);
        case ORC_RECOVERY_FAIL:
                return apply_failed(&x, err);
        case ORC_RECOVERY_ESCALATE:
                return apply_escalate(&x, &d, err);
        }
        return au_error_set(err, EINVAL, "results: no recovery action");
}

static void audit_refusal(orc_audit *a, const res_entry *e);

static int apply_results(orc_coord *c, PGconn *conn, res_entry *es, size_t n, orc_audit *audit,
                         au_error *err) {
        _cleanup_pgresult_ PGresult *rows = NULL, *ins = NULL;
        strv wf = {0}, st = {0}, at = {0}, node = {0}, outc = {0}, ex = {0}, wall = {0}, cpu = {0},
             mem = {0}, den = {0}, stored = {0}, t0 = {0}, t1 = {0}, late = {0}, progress = {0};
        succeeded ok = {0};
        char *arrays[14] = {0};
        const char *params[14];
        int r;

        for (size_t i = 0; i < n; i++)
                if (es[i].r) {
                        strv_push(&wf, es[i].r->workflow);
                        strv_push(&st, es[i].r->step);
                }
        if (wf.n == 0) {
                r = mem_pg_begin(conn, err); /* for the refusals' audit rows */
                goto out;
        }
        arrays[0] = strv_array(&wf);
        arrays[1] = strv_array(&st);
        if (!arrays[0] || !arrays[1]) {
                r = au_error_set(err, ENOMEM, "results");
                goto out;
        }
        params[0] = arrays[0];
        params[1] = arrays[1];
        /*
         * One result transaction per workflow at a time: two coordinators applying
         * the last two results of a workflow each see the other's step unfinished
         * otherwise, and neither would promote dependents or finish it. BEGIN, the
         * lock and the steps go in one round trip.
         */
        {
                const mem_pg_stmt *const stmts[] = {&mem_pg_stmt_begin, &stmt_results_lock,
                                                    &stmt_results_steps};
                const char *const *const ps[] = {NULL, params, params};
                PGresult *got[3] = {NULL, NULL, NULL};
                r = mem_pg_pipeline(conn, stmts, ps, 3, got, err);
                PQclear(got[0]);
                PQclear(got[1]);
                rows = got[2];
                if (r < 0)
                        goto out;
        }
        strv_done(&wf);
        strv_done(&st);
        for (size_t i = 0; i < n; i++) {
                res_entry *e = &es[i];
                if (!e->r)
                        continue;
                for (int k = 0; k < PQntuples(rows); k++) {
                        if (strcmp(mem_pg_value(rows, k, 0), e->r->workflow) != 0 ||
                            strcmp(mem_pg_value(rows, k, 1), e->r->step) != 0)
                                continue;
                        e->found = true;
                        e->state = strdup(mem_pg_value(rows, k, 2));
                        e->attempt = atoi(mem_pg_value(rows, k, 3));
                        e->node = mem_pg_value(rows, k, 4) ? strdup(mem_pg_value(rows, k, 4)) : NULL;
                        e->max_attempts = atoi(mem_pg_value(rows, k, 5));
                        e->failures = atoi(mem_pg_value(rows, k, 6));
                        e->moves = atoi(mem_pg_value(rows, k, 7));
                        e->backoff_ms = atoll(mem_pg_value(rows, k, 8));
                        e->max_backoff_ms = atoll(mem_pg_value(rows, k, 9));
                        e->fallback = mem_pg_value(rows, k, 10) ? strdup(mem_pg_value(rows, k, 10)) : NULL;
                        e->fallback_for =
                                mem_pg_value(rows, k, 11) ? strdup(mem_pg_value(rows, k, 11)) : NULL;
                        e->wf_state = strdup(mem_pg_value(rows, k, 12));
                        e->dispatched_ms = mem_pg_value(rows, k, 13) ? atoll(mem_pg_value(rows, k, 13)) : 0;
                        e->escalate = strcmp(mem_pg_value(rows, k, 14), "t") == 0;
                        break;
                }
                if (!e->found) {
                        log_warning("result %s for unknown step %s of workflow %s: acknowledged and dropped",
                                    e->r->id ? e->r->id : "?", e->r->step, e->r->workflow);
                        continue;
                }
                /* Current: the attempt in flight, of a workflow still going. Otherwise late. */
                e->current = (strcmp(e->state, "dispatched") == 0 || strcmp(e->state, "running") == 0) &&
                             (uint32_t) e->attempt == e->r->attempt && strcmp(e->wf_state, "cancelled") != 0;
                /* The attempt in flight answers only from where it was placed (steps.node). */
                if (orc_identity_on(c) && (uint32_t) e->attempt == e->r->attempt &&
                    (!e->node || strcmp(e->node, e->r->node) != 0)) {
                        if (!e->refused) {
                                refuse_result(c, e, "wrong_node", e->r->node, strlen(e->r->node), e->r->id);
                                audit_refusal(audit, e);
                        }
                        e->found = false;
                        continue;
                }
                /*
                 * The same result twice in one batch (a node sent it again): the first copy stands
                 * for both. Inserting both would let the join's row order decide which copy the runs
                 * row keeps (found by tests/faults: the copy marked late, through a hash join).
                 */
                bool again = false;
                for (size_t j = 0; j < i; j++)
                        again |= es[j].r && es[j].found && es[j].r->attempt == e->r->attempt &&
                                 strcmp(es[j].r->workflow, e->r->workflow) == 0 &&
                                 strcmp(es[j].r->step, e->r->step) == 0;
                if (again) {
                        e->found = false;
                        continue;
                }
                /* Another attempt of a step whose current result is in this batch: that one counts. */
                for (size_t j = 0; j < i; j++)
                        if (es[j].r && es[j].found && es[j].current &&
                            strcmp(es[j].r->workflow, e->r->workflow) == 0 &&
                            strcmp(es[j].r->step, e->r->step) == 0)
                                e->current = false;
                strv_push(&wf, e->r->workflow);
                strv_push(&st, e->r->step);
                strv_pushf(&at, "%u", e->r->attempt);
                strv_push(&node, e->r->node);
                strv_push(&outc, sbx_outcome_to_string(e->r->outcome));
                strv_pushf(&ex, "%d", e->r->exit_code);
                strv_pushf(&wall, "%" PRIu64, e->r->wall_ms);
                strv_pushf(&cpu, "%" PRIu64, e->r->cpu_ms);
                strv_pushf(&mem, "%" PRIu64, e->r->memory_peak_bytes);
                {
                        _cleanup_free_ char *d = denied_json(e->r);
                        strv_push(&den, d ? d : "[]");
                }
                strv_push(&stored, e->stored);
                strv_pushf(&t0, "%" PRId64, ts_ms(e->r->started_at));
                strv_pushf(&t1, "%" PRId64, ts_ms(e->r->finished_at));
                strv_push(&late, e->current ? "f" : "t");
        }
        if (wf.n == 0) {
                r = 0;
                goto out;
        }
        free(arrays[0]);
        free(arrays[1]);
        {
                strv *cols[14] = {&wf,  &st,  &at,  &node,   &outc, &ex, &wall,
                                  &cpu, &mem, &den, &stored, &t0,   &t1, &late};
                for (size_t k = 0; k < 14; k++) {
                        arrays[k] = strv_array(cols[k]);
                        if (!arrays[k]) {
                                r = au_error_set(err, ENOMEM, "results");
                                goto out;
                        }
                        params[k] = arrays[k];
                }
        }
        r = mem_pg_run(conn, &stmt_results_runs, params, &ins, err);
        if (r < 0)
                goto out;
        for (int k = 0; k < PQntuples(ins); k++)
                for (size_t i = 0; i < n; i++) {
                        res_entry *e = &es[i];
                        if (e->r && e->found && !e->is_new &&
                            strcmp(mem_pg_value(ins, k, 0), e->r->workflow) == 0 &&
                            strcmp(mem_pg_value(ins, k, 1), e->r->step) == 0 &&
                            (uint32_t) atoi(mem_pg_value(ins, k, 2)) == e->r->attempt) {
                                e->is_new = true;
                                break;
                        }
                }

        for (size_t i = 0; i < n; i++) {
                res_entry *e = &es[i];
                _cleanup_free_ char *detail = NULL;

                if (!e->r || !e->found || !e->is_new)
                        continue; /* a redelivery: applied before */
                detail = result_detail(e);
                if (!e->current) {
                        char cur[16], *d2;
                        snprintf(cur, sizeof(cur), "\x01%d", e->attempt);
                        d2 = json_obj((const char *const[]){
                                "step", e->r->step, "run", e->r->id, "node", e->r->node, "outcome",
                                sbx_outcome_to_string(e->r->outcome), "current_attempt", cur, "state",
                                e->state, NULL});
                        orc_audit_add(audit, e->r->workflow, "late_result", d2);
                        free(d2);
                        orc_metric_add(c, c->m_late, NULL, 1);
                        log_info("late result %s (step %s is at attempt %d, %s): recorded, ignored",
                                 e->r->id ? e->r->id : "?", e->r->step, e->attempt, e->state);
                        continue;
                }
                orc_audit_add(audit, e->r->workflow, "result", detail);
                r = apply_one(conn, e, audit, &progress, &ok, err);
                if (r < 0)
                        goto out;
        }
        r = succeeded_flush(conn, &ok, err);
        if (r < 0)
                goto out;
        r = orc_progress(c, conn, (const char *const *) progress.v, progress.n, audit, err);
out:
        for (size_t k = 0; k < 14; k++)
                free(arrays[k]);
        strv_done(&wf);
        strv_done(&st);
        strv_done(&at);
        strv_done(&node);
        strv_done(&outc);
        strv_done(&ex);
        strv_done(&wall);
        strv_done(&cpu);
        strv_done(&mem);
        strv_done(&den);
        strv_done(&stored);
        strv_done(&t0);
        strv_done(&t1);
        strv_done(&late);
        strv_done(&progress);
        succeeded_done(&ok);
        return r;
}

/* Reads entries of one XREADGROUP / XAUTOCLAIM reply (array of [id, [field, value]]). */
static size_t take_entries(orc_coord *c, redisReply *entries, res_entry *es, size_t max) {
        size_t n = 0;

        for (size_t i = 0; entries && entries->type == REDIS_REPLY_ARRAY && i < entries->elements && n < max;
             i++) {
                redisReply *e = entries->element[i], *fv;
                if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
                    e->element[0]->type != REDIS_REPLY_STRING)
                        continue;
                es[n] = (res_entry){0};
                es[n].entry_id = strdup(e->element[0]->str);
                fv = e->element[1];
                if (fv && fv->type == REDIS_REPLY_ARRAY && fv->elements >= 2 &&
                    fv->element[0]->type == REDIS_REPLY_STRING && fv->element[1]->type == REDIS_REPLY_STRING)
                        parse_entry(c, &es[n], fv->element[0]->str, fv->element[1]->str, fv->element[1]->len,
                                    fv);
                else if (orc_identity_on(c))
                        refuse_result(c, &es[n], "malformed", NULL, 0, NULL);
                if (es[n].entry_id)
                        n++;
        }
        return n;
}

static void ack_entries(redisContext *rc, res_entry *es, size_t n) {
        const char **argv = calloc(n + 3, sizeof(char *));
        redisReply *reply;

        if (!argv || n == 0) {
                free(argv);
                return;
        }
        argv[0] = "XACK";
        argv[1] = MEM_STREAM_RESULTS;
        argv[2] = MEM_RESULTS_GROUP;
        for (size_t i = 0; i < n; i++)
                argv[3 + i] = es[i].entry_id;
        reply = redisCommandArgv(rc, (int) n + 3, argv, NULL);
        freeReplyObject(reply);
        free(argv);
}

/* The result_refused row of a refused entry (fleet chain), and the counter row of those held back before it.
 */
static void audit_refusal(orc_audit *a, const res_entry *e) {
        if (e->suppressed > 0) {
                char num[32];
                snprintf(num, sizeof(num), "\x01%" PRIu64, e->suppressed);
                _cleanup_free_ char *d = json_obj((const char *const[]){"node", e->claimed, "suppressed",
                                                                        num, "per_minute_limit",
                                                                        "\x01"
                                                                        "10",
                                                                        NULL});
                if (d)
                        orc_audit_add(a, NULL, "result_refused_suppressed", d);
        }
        if (!e->refusal_row)
                return;
        _cleanup_free_ char *d =
                json_obj((const char *const[]){"node", e->claimed, "reason", e->refused, "run",
                                               e->claimed_run, "entry", e->entry_id, NULL});
        if (d)
                orc_audit_add(a, NULL, "result_refused", d);
}

/* One batch: parsed, applied in one transaction, acknowledged after COMMIT. 0, or <0 to retry later. */
static int process_batch(orc_coord *c, PGconn *conn, redisContext *rc, res_entry *es, size_t n) {
        orc_audit audit;
        au_error err = {0};
        int r;

        for (int attempt = 0;; attempt++) {
                orc_audit_init(&audit, c->id);
                for (size_t i = 0; i < n; i++)
                        if (es[i].refused)
                                audit_refusal(&audit, &es[i]);
                for (size_t i = 0; i < n; i++) {
                        res_entry keep = es[i];
                        /* A retried transaction starts from the parsed result again. */
                        free(keep.state);
                        free(keep.node);
                        free(keep.fallback);
                        free(keep.fallback_for);
                        free(keep.wf_state);
                        es[i].state = es[i].node = es[i].fallback = es[i].fallback_for = es[i].wf_state =
                                NULL;
                        es[i].found = es[i].current = es[i].is_new = false;
                }
                /* BEGIN: in apply_results(), with its first statements. */
                r = apply_results(c, conn, es, n, &audit, &err);
                if (r >= 0)
                        r = orc_audit_flush_commit(c, conn, &audit, &err);
                if (r == -EAGAIN && attempt < 5) {
                        log_info("applying %zu results: %s; trying again", n, err.msg);
                        au_error_clear(&err);
                        mem_pg_rollback(conn);
                        orc_audit_done(&audit);
                        continue;
                }
                break;
        }
        if (r < 0) {
                mem_pg_rollback(conn);
                orc_audit_done(&audit);
                log_warning("applying %zu results failed (they stay unacknowledged, retried): %s", n,
                            err.msg);
                orc_metric_add(c, c->m_api_db_errors, "results", 1);
                return r;
        }
        ack_entries(rc, es, n);
        orc_audit_send_events(&audit, rc);
        for (size_t i = 0; i < n; i++)
                if (es[i].r && es[i].is_new && es[i].current) {
                        orc_metric_add(c, c->m_results, sbx_outcome_to_string(es[i].r->outcome), 1);
                        if (es[i].dispatched_ms > 0) {
                                struct timespec now;
                                clock_gettime(CLOCK_REALTIME, &now);
                                double s = (double) (ts_ms(now) - es[i].dispatched_ms) / 1000.0;
                                orc_metric_observe(c, c->m_dispatch_latency, s < 0 ? 0 : s);
                        }
                }
        orc_audit_done(&audit);
        orc_wake_scheduler(c);
        return 0;
}

void *orc_results_main(void *arg) {
        orc_coord *c = arg;
        PGconn *conn = NULL;
        redisContext *rc = NULL;
        res_entry *es = calloc(RESULTS_BATCH, sizeof(res_entry));
        size_t n = 0;
        bool pending_phase = true;
        uint64_t last_claim = 0;

        if (!es)
                return NULL;
        while (!atomic_load(&c->stop)) {
                redisReply *reply = NULL;
                int r;

                if (ensure_redis(c, &rc, 5000) < 0 || ensure_pg(c, &conn, "results") < 0) {
                        usleep(250 * 1000);
                        continue;
                }
                if (n == 0) {
                        reply = redisCommand(rc, "XGROUP CREATE " MEM_STREAM_RESULTS " " MEM_RESULTS_GROUP
                                                 " 0 MKSTREAM");
                        freeReplyObject(reply);
                        /* Our own unacknowledged entries first, then others' left idle (a dead
                         * coordinator's). */
                        if (pending_phase)
                                reply = redisCommand(rc,
                                                     "XREADGROUP GROUP " MEM_RESULTS_GROUP
                                                     " %s COUNT %d STREAMS " MEM_STREAM_RESULTS " 0",
                                                     c->id, RESULTS_BATCH);
                        else if (au_now_ms() - last_claim > 1000) {
                                last_claim = au_now_ms();
                                reply = redisCommand(rc,
                                                     "XAUTOCLAIM " MEM_STREAM_RESULTS " " MEM_RESULTS_GROUP
                                                     " %s %d 0-0 COUNT %d",
                                                     c->id, CLAIM_IDLE_MS, RESULTS_BATCH);
                                if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2)
                                        n = take_entries(c, reply->element[1], es, RESULTS_BATCH);
                                freeReplyObject(reply);
                                reply = NULL;
                                if (n == 0)
                                        reply = redisCommand(rc,
                                                             "XREADGROUP GROUP " MEM_RESULTS_GROUP
                                                             " %s COUNT %d BLOCK 1000 "
                                                             "STREAMS " MEM_STREAM_RESULTS " >",
                                                             c->id, RESULTS_BATCH);
                        } else
                                reply = redisCommand(rc,
                                                     "XREADGROUP GROUP " MEM_RESULTS_GROUP
                                                     " %s COUNT %d BLOCK 1000 STREAMS " MEM_STREAM_RESULTS
                                                     " >",
                                                     c->id, RESULTS_BATCH);
                        if (!reply && n == 0) {
                                if (rc->err) {
                                        redisFree(rc);
                                        rc = NULL;
                                }
                                continue;
                        }
                        if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
                                redisReply *stream = reply->element[0];
                                if (stream->type == REDIS_REPLY_ARRAY && stream->elements >= 2)
                                        n = take_entries(c, stream->element[1], es, RESULTS_BATCH);
                        }
                        if (pending_phase && n == 0)
                                pending_phase = false;
                        freeReplyObject(reply);
                        if (n == 0)
                                continue;
                }
                r = process_batch(c, conn, rc, es, n);
                if (r < 0 && r != -ENOTCONN && mem_pg_ok(conn)) {
                        /*
                         * The database is up but refused the batch: apply the results one by one,
                         * so one that can never be applied does not hold back the others.
                         */
                        size_t kept = 0;
                        for (size_t i = 0; i < n; i++) {
                                int r1 = n == 1 ? r : process_batch(c, conn, rc, &es[i], 1);
                                if (r1 >= 0 || (r1 != -ENOTCONN && ++es[i].tries >= POISON_TRIES)) {
                                        if (r1 < 0) {
                                                log_error("results entry %s cannot be applied (%s): set "
                                                          "aside and "
                                                          "acknowledged; it was: %.2048s",
                                                          es[i].entry_id, strerror(-r1),
                                                          es[i].stored ? es[i].stored : "(unreadable)");
                                                orc_metric_add(c, c->m_api_db_errors, "result_set_aside", 1);
                                                ack_entries(rc, &es[i], 1);
                                        }
                                        res_entry_done(&es[i]);
                                        continue;
                                }
                                es[kept++] = es[i];
                        }
                        n = kept;
                        if (n > 0)
                                usleep(500 * 1000);
                        continue;
                }
                if (r < 0) {
                        if (!mem_pg_ok(conn)) {
                                mem_pg_close(conn);
                                conn = NULL;
                        }
                        usleep(500 * 1000);
                        continue;
                }
                for (size_t i = 0; i < n; i++)
                        res_entry_done(&es[i]);
                n = 0;
        }
        for (size_t i = 0; i < n; i++)
                res_entry_done(&es[i]);
        free(es);
        if (conn)
                mem_pg_close(conn);
        if (rc)
                redisFree(rc);
        return NULL;
}
