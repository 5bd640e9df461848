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

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/loop.h"
#include "memory/pg.h"
#include "memory/redis.h"
#include "memory/store-dispatch.h"
#include "memory/store-fabric.h"
#include "memory/store-nodes.h"
#include "memory/store-results.h"
#include "memory/store.h"
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

/* A set of workflow ids (au_strv with its count). */
typedef struct strv {
        char **v;
        size_t n;
} strv;

static int strv_push(strv *s, const char *x) {
        return au_strv_find(s->v, x) >= 0 ? 0 : au_strv_push(&s->v, &s->n, x);
}

static void strv_done(strv *s) {
        au_strv_free(s->v);
        *s = (strv){0};
}

static bool wait_wake(orc_coord *c, int ms) {
        struct timespec ts;
        bool woke;

        ts = au_deadline_after(CLOCK_REALTIME, ms > 0 ? (uint64_t) ms : 0);
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

/* The members of object v (none when it is not one) but those whose name starts with prefix. */
static void gen_members_but(yajl_gen g, yajl_val v, const char *prefix) {
        for (size_t k = 0; v && YAJL_IS_OBJECT(v) && k < v->u.object.len; k++) {
                if (strncmp(v->u.object.keys[k], prefix, strlen(prefix)) == 0)
                        continue;
                au_json_gen_string(g, v->u.object.keys[k]);
                au_json_gen_tree(g, v->u.object.values[k]);
        }
}

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
                        gen_members_but(g, v, "AUTOOS_");
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
                        gen_members_but(g, v, "inputs/");
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

/* Sends again the specs of steps left dispatched (a crash between COMMIT and XADD). Nodes know run ids. */
static void resend_dispatched(orc_coord *c, PGconn *conn, outq *q) {
        _cleanup_pgresult_ PGresult *res = NULL;

        if (mem_store_steps_dispatched(conn, &res, NULL) < 0)
                return;
        for (int i = 0; i < PQntuples(res); i++) {
                const char *wf = mem_pg_value(res, i, MEM_SPEC_WORKFLOW),
                           *step = mem_pg_value(res, i, MEM_SPEC_STEP);
                const char *attempt = mem_pg_value(res, i, MEM_SPEC_ATTEMPT);
                char *spec = build_spec(mem_pg_value(res, i, MEM_SPEC_RUN), wf, step, atoi(attempt),
                                        mem_pg_value(res, i, MEM_SPEC_INPUTS));
                if (spec) {
                        char run_id[256];
                        snprintf(run_id, sizeof(run_id), "%s.%s.%s", wf, step, attempt);
                        outq_push_job(c, q, mem_pg_value(res, i, MEM_SPEC_NODE), MEM_FIELD_SPEC, spec,
                                      run_id);
                }
        }
        if (PQntuples(res) > 0)
                log_info("sending again the specs of %d steps in flight", PQntuples(res));
}

/*
 * The nodes as placement sees them: alive, capacity and labels from the
 * heartbeats, load from the steps in flight in PostgreSQL (other coordinators
 * dispatch too), read with the BEGIN of the dispatch transaction. *ret_free
 * gets how many more runs the fleet takes.
 */
static int dispatch_view(orc_coord *c, PGconn *conn, const orc_node *nodes, size_t n_nodes,
                         orc_place_node *view, uint64_t *ret_free, au_error *err) {
        _cleanup_pgresult_ PGresult *inflight = NULL;
        uint64_t free_slots = 0;
        int r;

        for (size_t k = 0; k < n_nodes; k++)
                view[k] = (orc_place_node){.id = nodes[k].id,
                                           .labels = nodes[k].labels,
                                           .alive = nodes[k].alive,
                                           .capacity = nodes[k].capacity};
        r = mem_store_nodes_inflight(conn, true, &inflight, err);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(inflight); i++)
                for (size_t k = 0; k < n_nodes; k++)
                        if (strcmp(nodes[k].id, mem_pg_value(inflight, i, MEM_INFLIGHT_NODE)) == 0)
                                view[k].load = (uint32_t) mem_store_int(inflight, i, MEM_INFLIGHT_COUNT);
        for (size_t k = 0; k < n_nodes; k++) {
                uint32_t slots = nodes[k].capacity * c->cfg.queue_per_slot;
                if (nodes[k].alive && slots > view[k].load)
                        free_slots += slots - view[k].load;
        }
        *ret_free = free_slots;
        return 0;
}

/*
 * Places the picked steps (res, MEM_SPEC_* columns) on nodes: each placed one
 * gets its spec queued, its audit row and event, and an entry in placed.
 * Returns how many were placed, or -ENOMEM.
 */
static int place_steps(orc_coord *c, const PGresult *res, const orc_node *nodes, orc_place_node *view,
                       size_t n_nodes, outq *q, orc_audit *audit, mem_store_placed *placed) {
        int n = 0;

        for (int i = 0; i < PQntuples(res); i++) {
                const char *w = mem_pg_value(res, i, MEM_SPEC_WORKFLOW),
                           *s = mem_pg_value(res, i, MEM_SPEC_STEP);
                int attempt = mem_store_int(res, i, MEM_SPEC_ATTEMPT) + 1;
                int k = orc_place_pick(view, n_nodes, c->cfg.queue_per_slot,
                                       mem_pg_value(res, i, MEM_SPEC_SELECTOR),
                                       mem_pg_value(res, i, MEM_SPEC_AVOID_NODE));
                _cleanup_free_ char *detail = NULL;
                char *spec, run_id[256], num[16];

                if (k < 0)
                        continue; /* no node for it now: stays ready */
                spec = build_spec(mem_pg_value(res, i, MEM_SPEC_RUN), w, s, attempt,
                                  mem_pg_value(res, i, MEM_SPEC_INPUTS));
                if (!spec)
                        continue;
                view[k].load++;
                snprintf(run_id, sizeof(run_id), "%s.%s.%d", w, s, attempt);
                snprintf(num, sizeof(num), "\x01%d", attempt);
                detail = orc_json_obj((const char *const[]){"step", s, "attempt", num, "node", nodes[k].id,
                                                            "run", run_id, NULL});
                if (!detail || orc_audit_add(audit, w, "dispatched", detail) < 0) {
                        free(spec);
                        return -ENOMEM;
                }
                if (outq_push_job(c, q, nodes[k].id, MEM_FIELD_SPEC, spec, run_id) < 0)
                        return -ENOMEM;
                placed[n++] = (mem_store_placed){
                        .workflow = w, .step = s, .node = nodes[k].id, .attempt = attempt};
                orc_audit_event(audit, orc_json_event("step.dispatched", w, s,
                                                      (const char *const[]){"node", nodes[k].id, "run",
                                                                            run_id, NULL}));
        }
        return n;
}

/* One dispatch transaction; returns how many steps were placed (or a negative errno). */
static int dispatch_round(orc_coord *c, PGconn *conn, outq *q, bool *ret_more) {
        _cleanup_pgresult_ PGresult *res = NULL;
        _cleanup_free_ orc_node *nodes = calloc(ORC_MAX_NODES, sizeof(orc_node));
        _cleanup_free_ orc_place_node *view = NULL;
        _cleanup_free_ mem_store_placed *placed_v = NULL;
        orc_audit audit;
        size_t n_nodes, queued = q->n;
        uint64_t free_slots = 0;
        unsigned limit;
        au_error err = {0};
        int r, placed = 0;

        *ret_more = false;
        if (!nodes)
                return -ENOMEM;
        n_nodes = orc_nodes_snapshot(c, nodes, ORC_MAX_NODES);
        view = calloc(n_nodes + 1, sizeof(orc_place_node));
        if (!view)
                return -ENOMEM;
        r = dispatch_view(c, conn, nodes, n_nodes, view, &free_slots, &err);
        if (r < 0)
                goto fail;
        if (free_slots == 0) {
                mem_pg_rollback(conn);
                return 0;
        }
        limit = free_slots < c->cfg.dispatch_batch ? (unsigned) free_slots
                                                   : (unsigned) c->cfg.dispatch_batch;
        r = mem_store_dispatch_pick(conn, limit, &res, &err);
        if (r < 0)
                goto fail;
        if (PQntuples(res) == 0) {
                mem_pg_rollback(conn);
                return 0;
        }
        *ret_more = (unsigned) PQntuples(res) == limit;
        placed_v = calloc((size_t) PQntuples(res), sizeof(mem_store_placed));
        if (!placed_v) {
                r = -ENOMEM;
                goto fail;
        }

        orc_audit_init(&audit, c->id);
        r = placed = place_steps(c, res, nodes, view, n_nodes, q, &audit, placed_v);
        if (r < 0)
                goto fail_audit;
        if (placed == 0) {
                orc_audit_done(&audit);
                mem_pg_rollback(conn);
                *ret_more = false;
                return 0;
        }
        r = mem_store_dispatch_mark(conn, placed_v, (size_t) placed, &err);
        if (r >= 0)
                r = orc_audit_flush_commit(c, conn, &audit, &err);
        if (r < 0)
                goto fail_audit;
        orc_metric_add(c, c->m_dispatched, NULL, placed);
        /* Keep the events with the queue: send them after the jobs. */
        for (size_t i = 0; i < audit.n_events; i++)
                outq_push(q, "", "", audit.events[i] ? strdup(audit.events[i]) : NULL);
        orc_audit_done(&audit);
        return placed;

fail_audit:
        orc_audit_done(&audit);
        /* The queued specs of this round must not go out: the transaction did not happen. */
        while (q->n > queued) {
                q->n--;
                free(q->v[q->n].stream);
                free(q->v[q->n].field);
                free(q->v[q->n].value);
        }
fail:
        mem_pg_rollback(conn);
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

/* The audit rows and events of mem_store_progress()'s rows: approvals awaited, workflows finished. */
static void progress_rows(orc_coord *c, const PGresult *ready, const PGresult *done, orc_audit *a) {
        for (int i = 0; i < PQntuples(ready); i++)
                if (strcmp(mem_pg_value(ready, i, MEM_READY_STATE), "awaiting_human") == 0) {
                        char *d = orc_json_obj(
                                (const char *const[]){"step", mem_pg_value(ready, i, MEM_READY_STEP), NULL});
                        orc_audit_add(a, mem_pg_value(ready, i, MEM_READY_WORKFLOW), "awaiting_approval", d);
                        free(d);
                        orc_audit_event(a, orc_json_event("step.awaiting_approval",
                                                          mem_pg_value(ready, i, MEM_READY_WORKFLOW),
                                                          mem_pg_value(ready, i, MEM_READY_STEP), NULL));
                }
        for (int i = 0; i < PQntuples(done); i++) {
                char *d = orc_json_obj(
                        (const char *const[]){"state", mem_pg_value(done, i, MEM_FINISHED_STATE), NULL});
                orc_audit_add(a, mem_pg_value(done, i, MEM_FINISHED_WORKFLOW), "workflow_finished", d);
                free(d);
                orc_audit_event(
                        a, orc_json_event(
                                   "workflow.finished", mem_pg_value(done, i, MEM_FINISHED_WORKFLOW), NULL,
                                   (const char *const[]){"state", mem_pg_value(done, i, MEM_FINISHED_STATE),
                                                         NULL}));
                log_info("workflow %s %s", mem_pg_value(done, i, MEM_FINISHED_WORKFLOW),
                         mem_pg_value(done, i, MEM_FINISHED_STATE));
        }
        if (PQntuples(done) > 0)
                orc_signal_done(c);
}

int orc_progress(orc_coord *c, PGconn *conn, const char *const *wfs, size_t n, orc_audit *a, au_error *err) {
        _cleanup_pgresult_ PGresult *ready = NULL, *done = NULL;
        int r;

        if (n == 0)
                return 0;
        r = mem_store_progress(conn, (char *const *) wfs, n, &ready, &done, err);
        if (r < 0)
                return r;
        progress_rows(c, ready, done, a);
        return 0;
}

/* ---- node loss ---------------------------------------------------------------- */

int orc_node_lost(orc_coord *c, PGconn *conn, redisContext *rc, const char *node, au_error *err) {
        _cleanup_pgresult_ PGresult *moved = NULL;
        orc_audit audit;
        bool declared = false;
        int r;

        orc_audit_init(&audit, c->id);
        r = mem_pg_begin(conn, err);
        if (r >= 0)
                r = mem_store_node_lost(conn, node, &declared, &moved, err);
        if (r < 0)
                goto out;
        if (declared) {
                char n[32];
                snprintf(n, sizeof(n), "\x01%d", PQntuples(moved));
                char *d = orc_json_obj((const char *const[]){"node", node, "steps_moved", n, NULL});
                orc_audit_add(&audit, NULL, "node_lost", d);
                free(d);
                orc_audit_event(&audit, orc_json_event("node.lost", NULL, NULL,
                                                       (const char *const[]){"node", node, NULL}));
        }
        for (int i = 0; i < PQntuples(moved); i++) {
                char num[16];
                snprintf(num, sizeof(num), "\x01%s", mem_pg_value(moved, i, MEM_MOVED_ATTEMPT));
                char *d = orc_json_obj((const char *const[]){"step", mem_pg_value(moved, i, MEM_MOVED_STEP),
                                                             "attempt", num, "node", node, "reason",
                                                             "node lost", NULL});
                orc_audit_add(&audit, mem_pg_value(moved, i, MEM_MOVED_WORKFLOW), "step_moved", d);
                free(d);
        }
        r = orc_audit_flush(c, conn, &audit, err);
        if (r >= 0)
                r = mem_pg_commit(conn, err);
        if (r >= 0) {
                if (declared || PQntuples(moved) > 0) {
                        log_warning("node %s lost: %d steps in flight placed again", node, PQntuples(moved));
                        orc_metric_add(c, c->m_node_lost, NULL, declared ? 1 : 0);
                }
                orc_audit_send_events(&audit, rc);
        }
out:
        if (r < 0)
                mem_pg_rollback(conn);
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
        /* a model step's own result (orc_results_apply_local): recovery level 3 goes to this chain entry */
        bool provider_switch;
        unsigned next_entry;
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

/* Steps that succeeded in this batch: one UPDATE for all of them (room for one per result). */
typedef struct succeeded {
        mem_store_step_end *v;
        size_t n;
} succeeded;

/* What apply_one's actions share: the result, its step row, the step's end the statements write. */
typedef struct applying {
        PGconn *conn;
        res_entry *e;
        orc_audit *a;
        strv *progress;
        const char *wf, *step, *outcome, *err_text;
        mem_store_step_end end;
} applying;

static int progress_add(applying *x) {
        return strv_push(x->progress, x->wf);
}

/* Successes are written together, after the loop (mem_store_steps_succeeded); a fallback replaces the step
 * it stands in for. */
static int apply_succeeded(applying *x, const orc_recovery *d, succeeded *ok, au_error *err) {
        res_entry *e = x->e;
        int rc = 0;

        ok->v[ok->n++] = x->end;
        if (d->replaces) {
                char *detail;
                rc = mem_store_step_replaced(x->conn, x->wf, e->fallback_for, e->stdout_b64, err);
                detail = orc_json_obj((const char *const[]){"step", e->fallback_for, "by", x->step, NULL});
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
        char num[32], *detail;
        int rc;

        rc = mem_store_step_moved(x->conn, x->wf, x->step, r->node ? r->node : "", err);
        snprintf(num, sizeof(num), "\x01%u", r->attempt);
        detail = orc_json_obj((const char *const[]){"step", x->step, "attempt", num, "node", r->node,
                                                    "reason", x->err_text ? x->err_text : "sandbox_error",
                                                    NULL});
        orc_audit_add(x->a, x->wf, "moved", detail);
        free(detail);
        return rc;
}

/* Level 1: ready again after the backoff, avoiding the node that failed it. */
static int apply_retry(applying *x, const orc_recovery *d, au_error *err) {
        const res_entry *e = x->e;
        const sbx_result *r = e->r;
        char delay_j[40], next[16], num[32], *detail;
        int rc;

        rc = mem_store_step_retry(x->conn, x->wf, x->step, r->node ? r->node : "", d->delay_ms,
                                  e->stdout_b64, err);
        snprintf(delay_j, sizeof(delay_j), "\x01%.0f", d->delay_ms);
        snprintf(num, sizeof(num), "\x01%u", r->attempt);
        snprintf(next, sizeof(next), "\x01%d", e->failures + 2);
        detail = orc_json_obj((const char *const[]){"step", x->step, "attempt", num, "failures", next,
                                                    "outcome", x->outcome, "backoff_ms", delay_j,
                                                    "avoid_node", r->node, "error", x->err_text, NULL});
        orc_audit_add(x->a, x->wf, "retry_scheduled", detail);
        free(detail);
        return rc;
}

/* Level 4, the fallback claimed: the step failed, its fallback stands in. */
static int apply_fallback(applying *x, au_error *err) {
        char *detail;
        int rc;

        rc = mem_store_step_failed(x->conn, &x->end, err);
        detail = orc_json_obj((const char *const[]){"step", x->step, "fallback", x->e->fallback, "outcome",
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
        int rc = mem_store_step_failed(x->conn, &x->end, err);
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
        _cleanup_free_ char *tail = NULL, *res_detail = NULL;
        char attempts[16], *detail, *res_raw = NULL;
        int rc;

        if (d->escalate_replaced)
                rc = mem_store_step_failed(x->conn, &x->end, err);
        else
                rc = mem_store_step_escalated(x->conn, &x->end, err);
        if (rc >= 0 && d->escalate_replaced)
                rc = mem_store_step_awaiting_human(x->conn, wf, target, err);
        if (rc >= 0)
                rc = mem_store_workflow_awaiting_human(x->conn, wf, err);
        if (r->stderr_data) {
                size_t n = r->stderr_size > STDERR_TAIL ? STDERR_TAIL : r->stderr_size;
                tail = au_utf8_sanitize(r->stderr_data + r->stderr_size - n, n, NULL);
        }
        snprintf(attempts, sizeof(attempts), "\x01%d", d->failures);
        res_detail = result_detail(e);
        if (res_detail)
                asprintf(&res_raw, "\x01%s", res_detail);
        detail = orc_json_obj((const char *const[]){"step", target, "failed_step", step, "attempts",
                                                    attempts, "outcome", outcome, "error", err_text,
                                                    "stderr_tail", tail, "last_result", res_raw, NULL});
        free(res_raw);
        orc_audit_add(x->a, wf, "escalated", detail);
        free(detail);
        orc_audit_event(x->a, orc_json_event("step.awaiting_human", wf, target,
                                             (const char *const[]){"outcome", outcome, NULL}));
        log_warning("workflow %s step %s escalated to a human after %d failed attempts: %s", wf, target,
                    d->failures, err_text ? err_text : outcome);
        return rc;
}

/* Level 3 (a model step): ready again, from another provider of its role's chain. */
static int apply_provider_switch(applying *x, au_error *err) {
        const sbx_result *r = x->e->r;
        char num[32], entry[32], *detail;
        int rc;

        rc = mem_store_fabric_provider(x->conn, x->wf, x->step, x->e->next_entry, err);
        snprintf(num, sizeof(num), "\x01%u", r->attempt);
        snprintf(entry, sizeof(entry), "\x01%u", x->e->next_entry);
        detail = orc_json_obj((const char *const[]){"step", x->step, "attempt", num, "entry", entry, "error",
                                                    x->err_text, NULL});
        orc_audit_add(x->a, x->wf, "provider_switched", detail);
        free(detail);
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

        err_text = r->error ? strdup(r->error) : (r->reason ? strdup(r->reason) : NULL);
        if (!result_ok(r) && !err_text) {
                if (r->outcome == SBX_OUTCOME_EXITED)
                        asprintf(&err_text, "exited with status %d", r->exit_code);
                else
                        err_text = strdup(x.outcome);
        }
        x.err_text = err_text;
        /* Level 3, another provider, comes after the retries (1, 2) and before the fallback (4). */
        if (e->provider_switch && d.action != ORC_RECOVERY_SUCCEEDED && d.action != ORC_RECOVERY_RETRY &&
            d.action != ORC_RECOVERY_MOVE)
                return apply_provider_switch(&x, err);
        x.end = (mem_store_step_end){.workflow = x.wf,
                                     .step = x.step,
                                     .output_b64 = e->stdout_b64,
                                     .outcome = x.outcome,
                                     .error = err_text,
                                     .exit_code = r->exit_code,
                                     .wall_ms = r->wall_ms};

        if (d.action == ORC_RECOVERY_FALLBACK) {
                bool standing = false;
                rc = mem_store_fallback_claim(conn, x.wf, e->fallback, &standing, err);
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

static char *dup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

/* The step row (MEM_RSTEP_* columns of rows) a result answers, into e; false when there is none. */
static bool read_step_row(res_entry *e, const PGresult *rows) {
        for (int k = 0; k < PQntuples(rows); k++) {
                if (strcmp(mem_pg_value(rows, k, MEM_RSTEP_WORKFLOW), e->r->workflow) != 0 ||
                    strcmp(mem_pg_value(rows, k, MEM_RSTEP_STEP), e->r->step) != 0)
                        continue;
                e->found = true;
                e->state = dup_or_null(mem_pg_value(rows, k, MEM_RSTEP_STATE));
                e->attempt = mem_store_int(rows, k, MEM_RSTEP_ATTEMPT);
                e->node = dup_or_null(mem_pg_value(rows, k, MEM_RSTEP_NODE));
                e->max_attempts = mem_store_int(rows, k, MEM_RSTEP_MAX_ATTEMPTS);
                e->failures = mem_store_int(rows, k, MEM_RSTEP_FAILURES);
                e->moves = mem_store_int(rows, k, MEM_RSTEP_MOVES);
                e->backoff_ms = mem_store_ll(rows, k, MEM_RSTEP_BACKOFF_MS);
                e->max_backoff_ms = mem_store_ll(rows, k, MEM_RSTEP_MAX_BACKOFF_MS);
                e->fallback = dup_or_null(mem_pg_value(rows, k, MEM_RSTEP_FALLBACK));
                e->fallback_for = dup_or_null(mem_pg_value(rows, k, MEM_RSTEP_FALLBACK_FOR));
                e->wf_state = dup_or_null(mem_pg_value(rows, k, MEM_RSTEP_WORKFLOW_STATE));
                e->dispatched_ms = mem_store_ll(rows, k, MEM_RSTEP_DISPATCHED_MS);
                e->escalate = mem_store_bool(rows, k, MEM_RSTEP_ESCALATE);
                return true;
        }
        return false;
}

/*
 * Whether es[i], its step row read, is recorded as a run: not a second copy
 * of a result earlier in the batch, nor refused for coming from another node
 * than its attempt was placed on. Sets whether it is current: the attempt in
 * flight, of a workflow still going (otherwise late).
 */
static bool result_counts(orc_coord *c, res_entry *es, size_t i, orc_audit *audit) {
        res_entry *e = &es[i];

        e->current = (strcmp(e->state, "dispatched") == 0 || strcmp(e->state, "running") == 0) &&
                     (uint32_t) e->attempt == e->r->attempt && strcmp(e->wf_state, "cancelled") != 0;
        /* The attempt in flight answers only from where it was placed (steps.node). */
        if (orc_identity_on(c) && (uint32_t) e->attempt == e->r->attempt &&
            (!e->node || strcmp(e->node, e->r->node) != 0)) {
                if (!e->refused) {
                        refuse_result(c, e, "wrong_node", e->r->node, strlen(e->r->node), e->r->id);
                        audit_refusal(audit, e);
                }
                return false;
        }
        /*
         * The same result twice in one batch (a node sent it again): the first copy stands
         * for both. Inserting both would let the join's row order decide which copy the runs
         * row keeps (found by tests/faults: the copy marked late, through a hash join).
         */
        for (size_t j = 0; j < i; j++)
                if (es[j].r && es[j].found && es[j].r->attempt == e->r->attempt &&
                    strcmp(es[j].r->workflow, e->r->workflow) == 0 && strcmp(es[j].r->step, e->r->step) == 0)
                        return false;
        /* Another attempt of a step whose current result is in this batch: that one counts. */
        for (size_t j = 0; j < i; j++)
                if (es[j].r && es[j].found && es[j].current &&
                    strcmp(es[j].r->workflow, e->r->workflow) == 0 && strcmp(es[j].r->step, e->r->step) == 0)
                        e->current = false;
        return true;
}

/*
 * BEGIN, the results' workflows and steps locked, and each result's step row
 * read (mem_store_results_begin); e->found for those that count.
 */
static int lock_steps(orc_coord *c, PGconn *conn, res_entry *es, size_t n, orc_audit *audit, au_error *err) {
        _cleanup_pgresult_ PGresult *rows = NULL;
        _cleanup_free_ mem_store_step_key *keys = calloc(n + 1, sizeof(mem_store_step_key));
        size_t n_keys = 0;
        int r;

        if (!keys)
                return au_error_set(err, ENOMEM, "results");
        for (size_t i = 0; i < n; i++)
                if (es[i].r)
                        keys[n_keys++] = (mem_store_step_key){es[i].r->workflow, es[i].r->step};
        if (n_keys == 0)
                return mem_pg_begin(conn, err); /* for the refusals' audit rows */
        r = mem_store_results_begin(conn, keys, n_keys, &rows, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                res_entry *e = &es[i];
                if (!e->r)
                        continue;
                if (!read_step_row(e, rows)) {
                        log_warning("result %s for unknown step %s of workflow %s: acknowledged and dropped",
                                    e->r->id ? e->r->id : "?", e->r->step, e->r->workflow);
                        continue;
                }
                if (!result_counts(c, es, i, audit))
                        e->found = false;
        }
        return 0;
}

/* Records a runs row for each result that counts (one statement); e->is_new for those not recorded before.
 */
static int insert_runs(PGconn *conn, res_entry *es, size_t n, au_error *err) {
        _cleanup_pgresult_ PGresult *ins = NULL;
        _cleanup_free_ mem_store_run *runs = calloc(n + 1, sizeof(mem_store_run));
        _cleanup_free_ char **denied = calloc(n + 1, sizeof(char *));
        size_t n_runs = 0;
        int r = 0;

        if (!runs || !denied)
                return au_error_set(err, ENOMEM, "results");
        for (size_t i = 0; i < n; i++) {
                const sbx_result *res = es[i].r;
                if (!res || !es[i].found)
                        continue;
                denied[n_runs] = orc_json_string_array(res->denied_syscalls, res->n_denied_syscalls);
                runs[n_runs++] = (mem_store_run){.workflow = res->workflow,
                                                 .step = res->step,
                                                 .node = res->node,
                                                 .outcome = sbx_outcome_to_string(res->outcome),
                                                 .attempt = res->attempt,
                                                 .exit_code = res->exit_code,
                                                 .wall_ms = res->wall_ms,
                                                 .cpu_ms = res->cpu_ms,
                                                 .memory_peak_bytes = res->memory_peak_bytes,
                                                 .denied_json = denied[n_runs],
                                                 .result_json = es[i].stored,
                                                 .started_ms = ts_ms(res->started_at),
                                                 .finished_ms = ts_ms(res->finished_at),
                                                 .late = !es[i].current};
        }
        if (n_runs > 0)
                r = mem_store_runs_insert(conn, runs, n_runs, &ins, err);
        for (size_t i = 0; i < n_runs; i++)
                free(denied[i]);
        if (r < 0 || n_runs == 0)
                return r;
        for (int k = 0; k < PQntuples(ins); k++)
                for (size_t i = 0; i < n; i++) {
                        res_entry *e = &es[i];
                        if (e->r && e->found && !e->is_new &&
                            strcmp(mem_pg_value(ins, k, MEM_NEWRUN_WORKFLOW), e->r->workflow) == 0 &&
                            strcmp(mem_pg_value(ins, k, MEM_NEWRUN_STEP), e->r->step) == 0 &&
                            (uint32_t) mem_store_int(ins, k, MEM_NEWRUN_ATTEMPT) == e->r->attempt) {
                                e->is_new = true;
                                break;
                        }
                }
        return 0;
}

/* A late result (not the step's attempt in flight, or its workflow ended): recorded, not applied. */
static void audit_late(orc_coord *c, const res_entry *e, orc_audit *audit) {
        char cur[16];
        _cleanup_free_ char *d = NULL;

        snprintf(cur, sizeof(cur), "\x01%d", e->attempt);
        d = orc_json_obj((const char *const[]){"step", e->r->step, "run", e->r->id, "node", e->r->node,
                                               "outcome", sbx_outcome_to_string(e->r->outcome),
                                               "current_attempt", cur, "state", e->state, NULL});
        orc_audit_add(audit, e->r->workflow, "late_result", d);
        orc_metric_add(c, c->m_late, NULL, 1);
        log_info("late result %s (step %s is at attempt %d, %s): recorded, ignored",
                 e->r->id ? e->r->id : "?", e->r->step, e->attempt, e->state);
}

/*
 * A batch of results in one transaction (BEGIN here; the caller commits):
 * steps locked, runs recorded, each new current result applied (recovery),
 * then the workflows' progress.
 */
static int apply_results(orc_coord *c, PGconn *conn, res_entry *es, size_t n, orc_audit *audit,
                         au_error *err) {
        _cleanup_free_ mem_store_step_end *ok_v = calloc(n + 1, sizeof(mem_store_step_end));
        _cleanup_pgresult_ PGresult *ready = NULL, *done = NULL;
        succeeded ok = {.v = ok_v};
        strv progress = {0};
        int r;

        if (!ok_v)
                return au_error_set(err, ENOMEM, "results");
        r = lock_steps(c, conn, es, n, audit, err);
        if (r >= 0)
                r = insert_runs(conn, es, n, err);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                res_entry *e = &es[i];
                _cleanup_free_ char *detail = NULL;

                if (!e->r || !e->found || !e->is_new)
                        continue; /* a redelivery: applied before */
                if (!e->current) {
                        audit_late(c, e, audit);
                        continue;
                }
                detail = result_detail(e);
                orc_audit_add(audit, e->r->workflow, "result", detail);
                r = apply_one(conn, e, audit, &progress, &ok, err);
        }
        /* The successes and the workflows' progress in one round trip. */
        if (r >= 0)
                r = mem_store_succeeded_progress(conn, ok.v, ok.n, progress.v, progress.n, &ready, &done,
                                                 err);
        if (r >= 0 && progress.n > 0)
                progress_rows(c, ready, done, audit);
        strv_done(&progress);
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
                _cleanup_free_ char *d = orc_json_obj((const char *const[]){"node", e->claimed, "suppressed",
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
                orc_json_obj((const char *const[]){"node", e->claimed, "reason", e->refused, "run",
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
                                double s = (double) ((int64_t) au_wall_ms() - es[i].dispatched_ms) / 1000.0;
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

/* ---- results the coordinator makes itself (model and agent steps, steps-model.c) ---------------- */

int orc_results_apply_local(orc_coord *c, PGconn *conn, sbx_result *r, ssize_t next_entry,
                            const char *fabric_json, const char *const *rows, au_error *err) {
        res_entry e = {
                .r = r, .provider_switch = next_entry >= 0, .next_entry = (unsigned) MAX(next_entry, 0)};
        orc_audit audit;
        int rc;

        e.stdout_b64 = au_base64_encode(r->stdout_data ? r->stdout_data : "", r->stdout_size);
        replace_nul(r->stdout_data, r->stdout_size);
        replace_nul(r->stderr_data, r->stderr_size);
        e.stored = sbx_result_to_json(r, false);
        if (!e.stdout_b64 || !e.stored) {
                res_entry_done(&e);
                return au_error_set(err, ENOMEM, "results");
        }
        for (int attempt = 0;; attempt++) {
                orc_audit_init(&audit, c->id);
                for (size_t i = 0; rows && rows[i]; i += 2)
                        orc_audit_add(&audit, r->workflow, rows[i], rows[i + 1]);
                free(e.state);
                free(e.node);
                free(e.fallback);
                free(e.fallback_for);
                free(e.wf_state);
                e.state = e.node = e.fallback = e.fallback_for = e.wf_state = NULL;
                e.found = e.current = e.is_new = false;
                rc = apply_results(c, conn, &e, 1, &audit, err);
                if (rc >= 0 && e.found && e.is_new && fabric_json)
                        rc = mem_store_fabric_record(conn, r->workflow, r->step, r->attempt, fabric_json,
                                                     err);
                if (rc >= 0)
                        rc = orc_audit_flush_commit(c, conn, &audit, err);
                if (rc == -EAGAIN && attempt < 5) {
                        au_error_clear(err);
                        mem_pg_rollback(conn);
                        orc_audit_done(&audit);
                        continue;
                }
                break;
        }
        if (rc < 0)
                mem_pg_rollback(conn);
        else {
                for (size_t i = 0; i < audit.n_events; i++)
                        orc_outbox_event(c, audit.events[i]);
                if (e.is_new && e.current)
                        orc_metric_add(c, c->m_results, sbx_outcome_to_string(r->outcome), 1);
        }
        orc_audit_done(&audit);
        res_entry_done(&e);
        orc_wake_scheduler(c);
        return rc;
}
