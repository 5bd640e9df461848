/* SPDX-License-Identifier: MIT */
/*
 * The coordinator's lifecycle and shared services: the PostgreSQL pool for
 * API requests, the scheduler's wake-up, the monitor thread (node
 * heartbeats and node loss, the key cache, gauges).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "common/json.h"
#include "common/log.h"
#include "common/loop.h"
#include "memory/pg.h"
#include "memory/redis.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/identity.h"

#define SCHEMA_VERSION 3
#define MONITOR_TICK_MS 250
#define HEARTBEAT_TTL_MS 3000 /* autoosd's PEXPIRE */
#define KEYS_RELOAD_MS 5000

void orc_hex(const unsigned char *in, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * n] = '\0';
}

/* ---- metrics ---------------------------------------------------------------- */

void orc_metric_add(orc_coord *c, au_metric *m, const char *label, double v) {
        pthread_mutex_lock(&c->metrics_lock);
        au_metric_add(m, label, v);
        pthread_mutex_unlock(&c->metrics_lock);
}

void orc_metric_observe(orc_coord *c, au_metric *m, double v) {
        pthread_mutex_lock(&c->metrics_lock);
        au_metric_observe(m, v);
        pthread_mutex_unlock(&c->metrics_lock);
}

void orc_metrics(orc_coord *c, orc_reply *ret) {
        pthread_mutex_lock(&c->metrics_lock);
        ret->body = au_metrics_render(c->metrics, &ret->len);
        pthread_mutex_unlock(&c->metrics_lock);
        ret->status = ret->body ? 200 : 500;
        if (!ret->body)
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
}

static int setup_metrics(orc_coord *c) {
        static const double latency[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
        int r = au_metrics_new(&c->metrics);
        if (r < 0)
                return r;
        c->m_workflows = au_metrics_gauge(c->metrics, "autoos_coordinator_workflows", "Workflows by state.", "state");
        c->m_steps = au_metrics_gauge(c->metrics, "autoos_coordinator_steps", "Steps by state.", "state");
        c->m_dispatched = au_metrics_counter(c->metrics, "autoos_coordinator_steps_dispatched_total",
                                             "Step attempts placed on nodes.", NULL);
        c->m_results = au_metrics_counter(c->metrics, "autoos_coordinator_results_total",
                                          "Results applied, by outcome.", "outcome");
        c->m_dispatch_latency = au_metrics_histogram(c->metrics, "autoos_coordinator_dispatch_to_result_seconds",
                                                     "From a step's dispatch to its result being applied.", latency,
                                                     ELEMENTSOF(latency));
        c->m_audit_rows = au_metrics_counter(c->metrics, "autoos_coordinator_audit_rows_total",
                                             "Audit rows written.", NULL);
        c->m_nodes = au_metrics_gauge(c->metrics, "autoos_coordinator_nodes", "Nodes by state.", "state");
        c->m_node_lost = au_metrics_counter(c->metrics, "autoos_coordinator_nodes_lost_total",
                                            "Nodes declared lost.", NULL);
        c->m_late = au_metrics_counter(c->metrics, "autoos_coordinator_late_results_total",
                                       "Results of attempts already given up or duplicated.", NULL);
        c->m_api_db_errors = au_metrics_counter(c->metrics, "autoos_coordinator_db_errors_total",
                                                "PostgreSQL errors, by where they happened.", "where");
        if (!c->m_workflows || !c->m_steps || !c->m_dispatched || !c->m_results || !c->m_dispatch_latency ||
            !c->m_audit_rows || !c->m_nodes || !c->m_node_lost || !c->m_late || !c->m_api_db_errors)
                return -ENOMEM;
        return 0;
}

/* ---- wake-ups ---------------------------------------------------------------- */

void orc_wake_scheduler(orc_coord *c) {
        pthread_mutex_lock(&c->wake_lock);
        c->wake = true;
        pthread_cond_signal(&c->wake_cond);
        pthread_mutex_unlock(&c->wake_lock);
}

void orc_signal_done(orc_coord *c) {
        pthread_mutex_lock(&c->done_lock);
        c->done_gen++;
        pthread_cond_broadcast(&c->done_cond);
        pthread_mutex_unlock(&c->done_lock);
}

static void outbox_add(orc_coord *c, const char *key, const char *run_id) {
        char **n;

        pthread_mutex_lock(&c->outbox_lock);
        n = reallocarray(c->outbox, c->n_outbox + 2, sizeof(char *));
        if (n) {
                c->outbox = n;
                c->outbox[c->n_outbox] = strdup(key);
                c->outbox[c->n_outbox + 1] = strdup(run_id);
                if (c->outbox[c->n_outbox] && c->outbox[c->n_outbox + 1])
                        c->n_outbox += 2;
                else {
                        free(c->outbox[c->n_outbox]);
                        free(c->outbox[c->n_outbox + 1]);
                }
        }
        pthread_mutex_unlock(&c->outbox_lock);
        orc_wake_scheduler(c);
}

void orc_outbox_cancel(orc_coord *c, const char *node, const char *run_id) {
        char key[256];
        snprintf(key, sizeof(key), "autoos:jobs:%s", node);
        outbox_add(c, key, run_id);
}

void orc_outbox_event(orc_coord *c, const char *json) {
        if (json)
                outbox_add(c, "autoos:events", json);
}

/* ---- PostgreSQL pool --------------------------------------------------------------- */

PGconn *orc_pool_get(orc_coord *c, au_error *err) {
        size_t slot;
        PGconn *conn;
        int r;

        pthread_mutex_lock(&c->pool_lock);
        for (;;) {
                for (slot = 0; slot < c->cfg.db_pool; slot++)
                        if (!c->pool_busy[slot])
                                break;
                if (slot < c->cfg.db_pool)
                        break;
                pthread_cond_wait(&c->pool_cond, &c->pool_lock);
        }
        c->pool_busy[slot] = true;
        conn = c->pool[slot];
        pthread_mutex_unlock(&c->pool_lock);

        if (conn && !mem_pg_ok(conn)) {
                mem_pg_close(conn);
                conn = NULL;
        }
        if (!conn) {
                r = mem_pg_connect(c->cfg.db, "autoos-coordinator api", &conn, err);
                if (r < 0) {
                        conn = NULL;
                        atomic_store(&c->db_up, false);
                }
        }
        pthread_mutex_lock(&c->pool_lock);
        c->pool[slot] = conn;
        if (!conn) {
                c->pool_busy[slot] = false;
                pthread_cond_signal(&c->pool_cond);
        }
        pthread_mutex_unlock(&c->pool_lock);
        return conn;
}

void orc_pool_put(orc_coord *c, PGconn *conn) {
        if (!conn)
                return;
        mem_pg_rollback(conn);
        pthread_mutex_lock(&c->pool_lock);
        for (size_t i = 0; i < c->cfg.db_pool; i++)
                if (c->pool[i] == conn) {
                        if (!mem_pg_ok(conn)) {
                                mem_pg_close(conn);
                                c->pool[i] = NULL;
                        }
                        c->pool_busy[i] = false;
                        break;
                }
        pthread_cond_signal(&c->pool_cond);
        pthread_mutex_unlock(&c->pool_lock);
}

/* Appends s to a PostgreSQL array literal, quoted ({"a","b"}), NULL as NULL. */
static int array_append(char **buf, size_t *len, size_t *cap, const char *s) {
        size_t need = (s ? strlen(s) * 2 : 4) + 4;

        if (*len + need + 2 > *cap) {
                size_t ncap = (*cap + need + 2) * 2;
                char *n = realloc(*buf, ncap);
                if (!n)
                        return -ENOMEM;
                *buf = n;
                *cap = ncap;
        }
        if (*len == 0)
                (*buf)[(*len)++] = '{';
        else
                (*buf)[(*len)++] = ',';
        if (!s) {
                memcpy(*buf + *len, "NULL", 4);
                *len += 4;
        } else {
                (*buf)[(*len)++] = '"';
                for (const char *p = s; *p; p++) {
                        if (*p == '"' || *p == '\\')
                                (*buf)[(*len)++] = '\\';
                        (*buf)[(*len)++] = *p;
                }
                (*buf)[(*len)++] = '"';
        }
        (*buf)[*len] = '\0';
        return 0;
}

/* A PostgreSQL array literal of n strings (NULL entries are NULL); "{}" when n is 0. Caller frees. */
char *orc_pg_array(char *const *items, size_t n) {
        char *buf = NULL;
        size_t len = 0, cap = 0;

        if (n == 0)
                return strdup("{}");
        for (size_t i = 0; i < n; i++)
                if (array_append(&buf, &len, &cap, items[i]) < 0) {
                        free(buf);
                        return NULL;
                }
        buf[len++] = '}';
        buf[len] = '\0';
        return buf;
}

int orc_migrate(const orc_config *cfg, unsigned *ret_applied, au_error *err) {
        PGconn *conn = NULL;
        int r = mem_pg_connect(cfg->migrate_db ? cfg->migrate_db : cfg->db, "autoos-coordinator migrate", &conn, err);
        if (r < 0)
                return r;
        r = mem_pg_migrate(conn, cfg->sql_dir, ret_applied, err);
        mem_pg_close(conn);
        return r;
}

/* ---- nodes ---------------------------------------------------------------- */

size_t orc_nodes_snapshot(orc_coord *c, orc_node *out, size_t max) {
        size_t n;
        pthread_mutex_lock(&c->nodes_lock);
        n = c->n_nodes < max ? c->n_nodes : max;
        memcpy(out, c->nodes, n * sizeof(orc_node));
        pthread_mutex_unlock(&c->nodes_lock);
        return n;
}

static orc_node *node_find_locked(orc_coord *c, const char *id, bool create) {
        for (size_t i = 0; i < c->n_nodes; i++)
                if (strcmp(c->nodes[i].id, id) == 0)
                        return &c->nodes[i];
        if (!create || c->n_nodes == ORC_MAX_NODES || strlen(id) >= sizeof(c->nodes[0].id))
                return NULL;
        orc_node *n = &c->nodes[c->n_nodes++];
        *n = (orc_node){ 0 };
        snprintf(n->id, sizeof(n->id), "%s", id);
        return n;
}

static uint64_t realtime_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void node_upsert(orc_coord *c, PGconn *conn, const orc_node *n) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_free_ char *labels = NULL;
        _cleanup_free_ char *copy = strdup(n->labels);
        char cap[16];
        const char *params[4];

        if (!g || !copy)
                return;
        au_json_gen_map_open(g);
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(tok, '=');
                if (!eq)
                        continue;
                *eq = '\0';
                au_json_gen_kv_string(g, tok, eq + 1);
        }
        au_json_gen_map_close(g);
        labels = au_json_gen_finish(g, NULL);
        snprintf(cap, sizeof(cap), "%u", n->capacity);
        params[0] = n->id;
        params[1] = labels ? labels : "{}";
        params[2] = cap;
        params[3] = n->version;
        if (mem_pg_exec(conn,
                        "INSERT INTO nodes (id, labels, capacity, state, last_seen, version) "
                        "VALUES ($1, $2::jsonb, $3::int, 'healthy', now(), $4) ON CONFLICT (id) DO UPDATE SET "
                        "labels = EXCLUDED.labels, capacity = EXCLUDED.capacity, state = 'healthy', "
                        "last_seen = now(), version = EXCLUDED.version",
                        4, params, NULL, NULL) < 0)
                orc_metric_add(c, c->m_api_db_errors, "monitor", 1);
}

typedef struct beat {
        char id[129];
        bool present;
        long long pttl;
        uint32_t capacity, running, queued;
        char labels[1024], version[64];
        /* bus_auth: the fields as sent, for the MAC */
        char f_capacity[16], f_running[16], f_queued[16], started_at[40], beat[24], state[16], auth[72];
        bool labels_long, version_long;
} beat;

static int read_heartbeats(redisContext *rc, beat **ret, size_t *ret_n) {
        redisReply *members = redisCommand(rc, "SMEMBERS autoos:nodes");
        beat *b = NULL;
        size_t n = 0;

        if (!members || members->type != REDIS_REPLY_ARRAY) {
                freeReplyObject(members);
                return -ENOTCONN;
        }
        if (members->elements > 0)
                b = calloc(members->elements, sizeof(beat));
        for (size_t i = 0; b && i < members->elements; i++) {
                redisReply *m = members->element[i];
                if (m->type != REDIS_REPLY_STRING || m->len == 0 || m->len >= sizeof(b[0].id))
                        continue;
                memcpy(b[n].id, m->str, m->len);
                redisAppendCommand(rc, "HGETALL autoos:node:%s", b[n].id);
                redisAppendCommand(rc, "PTTL autoos:node:%s", b[n].id);
                n++;
        }
        freeReplyObject(members);
        for (size_t i = 0; i < n; i++) {
                redisReply *h = NULL, *t = NULL;
                if (redisGetReply(rc, (void **) &h) != REDIS_OK || redisGetReply(rc, (void **) &t) != REDIS_OK) {
                        freeReplyObject(h);
                        free(b);
                        return -ENOTCONN;
                }
                if (h && h->type == REDIS_REPLY_ARRAY && h->elements >= 2) {
                        b[i].present = true;
                        for (size_t k = 0; k + 1 < h->elements; k += 2) {
                                const char *f = h->element[k]->str, *v = h->element[k + 1]->str;
                                if (!f || !v)
                                        continue;
                                if (strcmp(f, "capacity") == 0) {
                                        b[i].capacity = (uint32_t) strtoul(v, NULL, 10);
                                        snprintf(b[i].f_capacity, sizeof(b[i].f_capacity), "%s", v);
                                } else if (strcmp(f, "running") == 0) {
                                        b[i].running = (uint32_t) strtoul(v, NULL, 10);
                                        snprintf(b[i].f_running, sizeof(b[i].f_running), "%s", v);
                                } else if (strcmp(f, "queued") == 0) {
                                        b[i].queued = (uint32_t) strtoul(v, NULL, 10);
                                        snprintf(b[i].f_queued, sizeof(b[i].f_queued), "%s", v);
                                } else if (strcmp(f, "labels") == 0)
                                        b[i].labels_long = snprintf(b[i].labels, sizeof(b[i].labels), "%s", v) >=
                                                           (int) sizeof(b[i].labels);
                                else if (strcmp(f, "version") == 0)
                                        b[i].version_long = snprintf(b[i].version, sizeof(b[i].version), "%s", v) >=
                                                            (int) sizeof(b[i].version);
                                else if (strcmp(f, "started_at") == 0)
                                        snprintf(b[i].started_at, sizeof(b[i].started_at), "%s", v);
                                else if (strcmp(f, "beat") == 0)
                                        snprintf(b[i].beat, sizeof(b[i].beat), "%s", v);
                                else if (strcmp(f, "state") == 0)
                                        snprintf(b[i].state, sizeof(b[i].state), "%s", v);
                                else if (strcmp(f, "auth") == 0)
                                        snprintf(b[i].auth, sizeof(b[i].auth), "%s", v);
                        }
                }
                b[i].pttl = t && t->type == REDIS_REPLY_INTEGER ? t->integer : -2;
                freeReplyObject(h);
                freeReplyObject(t);
        }
        *ret = b;
        *ret_n = n;
        return 0;
}

/* Nodes with steps in flight according to PostgreSQL, and how many. */
static int db_inflight(PGconn *conn, PGresult **ret) {
        return mem_pg_exec(conn,
                           "SELECT node, count(*) FROM steps WHERE state IN ('dispatched', 'running') "
                           "AND node IS NOT NULL GROUP BY node",
                           0, NULL, ret, NULL);
}

static void monitor_gauges(orc_coord *c, PGconn *conn) {
        static const char *const wstates[] = { "pending", "running", "paused", "awaiting_human",
                                               "succeeded", "failed", "cancelled" };
        static const char *const sstates[] = { "pending", "ready", "dispatched", "running", "succeeded", "failed",
                                               "skipped", "cancelled", "awaiting_human", "standby", "replaced" };
        _cleanup_pgresult_ PGresult *w = NULL, *s = NULL;

        if (mem_pg_exec(conn, "SELECT state, count(*) FROM workflows GROUP BY state", 0, NULL, &w, NULL) < 0 ||
            mem_pg_exec(conn, "SELECT state, count(*) FROM steps GROUP BY state", 0, NULL, &s, NULL) < 0)
                return;
        pthread_mutex_lock(&c->metrics_lock);
        for (size_t i = 0; i < ELEMENTSOF(wstates); i++)
                au_metric_set(c->m_workflows, wstates[i], 0);
        for (size_t i = 0; i < ELEMENTSOF(sstates); i++)
                au_metric_set(c->m_steps, sstates[i], 0);
        for (int i = 0; i < PQntuples(w); i++)
                au_metric_set(c->m_workflows, mem_pg_value(w, i, 0), atof(mem_pg_value(w, i, 1)));
        for (int i = 0; i < PQntuples(s); i++)
                au_metric_set(c->m_steps, mem_pg_value(s, i, 0), atof(mem_pg_value(s, i, 1)));
        pthread_mutex_unlock(&c->metrics_lock);
}

/*
 * With bus_auth, a node is alive while the beats it seals keep coming: a beat
 * counts once it carries the node's MAC and is newer (its life, started_at,
 * then its number) than the last one taken, so a forged beat is ignored and a
 * replayed one adds nothing. A deleted heartbeat key alone does not make a node
 * lost: the node writes it again each second, and its last authentic beat
 * still counts for node_timeout. The first beat seen of a node counts only
 * while its key is fresh. An absent or refused beat leaves the node's view
 * (capacity, labels) as it was.
 */
static bool beat_authentic(orc_coord *c, orc_node *n, beat *b, uint64_t now, bool fresh_by_ttl) {
        const char *why = NULL;

        if (b->present) {
                const char *fields[8] = { b->started_at, b->beat, b->f_capacity, b->f_running, b->f_queued,
                                          b->labels, b->version, b->state };
                why = b->labels_long || b->version_long ? "malformed"
                                                        : orc_heartbeat_refusal(c, n->id, fields, b->auth[0] ? b->auth : NULL);
                if (why) {
                        orc_count_refused_heartbeat(c, why);
                        b->present = false;
                } else {
                        uint64_t seq = strtoull(b->beat, NULL, 10);
                        int life = strcmp(b->started_at, n->beat_life);
                        bool first = n->beat_mono_ms == 0;
                        if (life > 0 || (life == 0 && seq > n->beat_seq)) {
                                if (!first || fresh_by_ttl)
                                        n->beat_mono_ms = now;
                                snprintf(n->beat_life, sizeof(n->beat_life), "%s", b->started_at);
                                n->beat_seq = seq;
                        } else if (life < 0 || seq < n->beat_seq)
                                orc_count_refused_heartbeat(c, "stale");
                }
        }
        return n->beat_mono_ms > 0 && now - n->beat_mono_ms <= c->cfg.node_timeout_ms;
}

static void monitor_tick(orc_coord *c, PGconn **conn, redisContext **rc, uint64_t tick) {
        _cleanup_free_ beat *beats = NULL;
        _cleanup_pgresult_ PGresult *inflight = NULL;
        char lost[64][129];
        size_t n_beats = 0, n_lost = 0, n_alive = 0, n_dead = 0;
        uint64_t now = au_now_ms(), wall = realtime_ms();
        bool grace;
        au_error err = { 0 };

        if (!*rc && mem_redis_connect(c->cfg.redis, 1000, 3000, rc, &err) < 0) {
                if (atomic_exchange(&c->redis_up, false))
                        log_warning("Redis is away: %s", err.msg);
                return;
        }
        if (read_heartbeats(*rc, &beats, &n_beats) < 0) {
                redisFree(*rc);
                *rc = NULL;
                atomic_store(&c->redis_up, false);
                return;
        }
        if (!atomic_exchange(&c->redis_up, true)) {
                log_info("Redis is up");
                c->redis_back_ms = now;
        }
        /*
         * Heartbeat keys age while Redis is away, but nodes cannot beat then: after Redis comes
         * (back), give every node node_timeout and one beat to show up before calling it lost.
         */
        grace = now - c->redis_back_ms < c->cfg.node_timeout_ms + 1000;

        if (!*conn || !mem_pg_ok(*conn)) {
                if (*conn)
                        mem_pg_close(*conn);
                *conn = NULL;
                au_error_clear(&err);
                if (mem_pg_connect(c->cfg.db, "autoos-coordinator monitor", conn, &err) < 0) {
                        if (atomic_exchange(&c->db_up, false))
                                log_warning("PostgreSQL is away: %s", err.msg);
                }
        }
        if (*conn && !atomic_exchange(&c->db_up, true))
                log_info("PostgreSQL is up");
        if (*conn && db_inflight(*conn, &inflight) < 0) {
                PQclear(inflight);
                inflight = NULL;
        }

        pthread_mutex_lock(&c->nodes_lock);
        for (size_t i = 0; i < c->n_nodes; i++)
                c->nodes[i].inflight = 0;
        for (size_t i = 0; i < n_beats; i++) {
                orc_node *n = node_find_locked(c, beats[i].id, true);
                bool fresh;

                if (!n)
                        continue;
                /* Time since the newest heartbeat, from the key's TTL (reset to 3 s on each beat). */
                fresh = beats[i].present && beats[i].pttl > 0 &&
                        (uint64_t) (HEARTBEAT_TTL_MS - (beats[i].pttl < HEARTBEAT_TTL_MS ? beats[i].pttl
                                                                                         : HEARTBEAT_TTL_MS)) <=
                                c->cfg.node_timeout_ms;
                if (orc_identity_on(c))
                        fresh = beat_authentic(c, n, &beats[i], now, fresh);
                if (beats[i].present) {
                        n->capacity = beats[i].capacity;
                        n->running = beats[i].running;
                        n->queued = beats[i].queued;
                        memcpy(n->labels, beats[i].labels, sizeof(n->labels));
                        memcpy(n->version, beats[i].version, sizeof(n->version));
                        n->last_seen_ms = wall - (uint64_t) (HEARTBEAT_TTL_MS - (beats[i].pttl > 0 &&
                                                                                 beats[i].pttl < HEARTBEAT_TTL_MS
                                                                                         ? beats[i].pttl
                                                                                         : HEARTBEAT_TTL_MS));
                        n->seen_mono_ms = now;
                }
                if (fresh && !n->alive) {
                        n->alive = true;
                        n->declared_lost = false;
                        log_info("node %s is up (capacity %u, labels %s)", n->id, n->capacity,
                                 n->labels[0] ? n->labels : "none");
                        if (*conn)
                                node_upsert(c, *conn, n);
                } else if (!fresh && n->alive && !grace) {
                        n->alive = false;
                        if (n_lost < ELEMENTSOF(lost))
                                snprintf(lost[n_lost++], sizeof(lost[0]), "%s", n->id);
                } else if (fresh && *conn && tick % 40 == 0)
                        node_upsert(c, *conn, n); /* last_seen, every 10 s */
        }
        /* Nodes holding steps in flight that show no sign of life (a coordinator restart meets them). */
        for (int i = 0; inflight && i < PQntuples(inflight); i++) {
                const char *id = mem_pg_value(inflight, i, 0);
                orc_node *n = id ? node_find_locked(c, id, true) : NULL;
                if (!n)
                        continue;
                n->inflight = (uint32_t) atoi(mem_pg_value(inflight, i, 1) ?: "0");
                if (!n->alive && !n->declared_lost && !grace && n_lost < ELEMENTSOF(lost)) {
                        bool dup = false;
                        for (size_t k = 0; k < n_lost; k++)
                                dup |= strcmp(lost[k], id) == 0;
                        if (!dup)
                                snprintf(lost[n_lost++], sizeof(lost[0]), "%s", id);
                }
        }
        for (size_t i = 0; i < c->n_nodes; i++) {
                if (c->nodes[i].alive)
                        n_alive++;
                else
                        n_dead++;
        }
        pthread_mutex_unlock(&c->nodes_lock);

        pthread_mutex_lock(&c->metrics_lock);
        au_metric_set(c->m_nodes, "healthy", (double) n_alive);
        au_metric_set(c->m_nodes, "lost", (double) n_dead);
        pthread_mutex_unlock(&c->metrics_lock);

        for (size_t i = 0; i < n_lost && *conn; i++) {
                au_error_clear(&err);
                if (orc_node_lost(c, *conn, *rc, lost[i], &err) < 0) {
                        log_warning("node %s lost, but recording it failed (will retry): %s", lost[i], err.msg);
                        continue;
                }
                pthread_mutex_lock(&c->nodes_lock);
                orc_node *n = node_find_locked(c, lost[i], false);
                if (n)
                        n->declared_lost = true;
                pthread_mutex_unlock(&c->nodes_lock);
        }
        if (n_lost > 0)
                orc_wake_scheduler(c);

        if (*conn && (tick % (KEYS_RELOAD_MS / MONITOR_TICK_MS) == 0)) {
                orc_keys_reload(c, *conn);
                orc_identity_reload(c, *conn);
                monitor_gauges(c, *conn);
        }
}

static void *monitor_main(void *arg) {
        orc_coord *c = arg;
        PGconn *conn = NULL;
        redisContext *rc = NULL;
        uint64_t watchdog_usec = 0;
        bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;

        for (uint64_t tick = 0; !atomic_load(&c->stop); tick++) {
                uint64_t start = au_now_ms(), spent;

                monitor_tick(c, &conn, &rc, tick);
                /* Alive means this loop turns: a hung PostgreSQL or Redis call stops the pings. */
                if (watchdog)
                        sd_notify(0, "WATCHDOG=1");
                spent = au_now_ms() - start;
                if (spent < MONITOR_TICK_MS)
                        usleep((useconds_t) (MONITOR_TICK_MS - spent) * 1000);
        }
        if (conn)
                mem_pg_close(conn);
        if (rc)
                redisFree(rc);
        return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------- */

int orc_coord_new(const orc_config *cfg, orc_coord **ret, au_error *err) {
        _cleanup_free_ orc_coord *c = calloc(1, sizeof(orc_coord));
        PGconn *conn = NULL;
        char host[64] = "coordinator";
        int r, version = 0, latest = 0;

        if (!c)
                return au_error_set(err, ENOMEM, "coordinator");
        c->cfg = *cfg;
        c->cfg.db = strdup(cfg->db);
        c->cfg.redis = strdup(cfg->redis);
        c->cfg.listen = strdup(cfg->listen);
        c->cfg.id = cfg->id ? strdup(cfg->id) : NULL;
        c->cfg.policy = cfg->policy ? strdup(cfg->policy) : NULL;
        c->cfg.sql_dir = strdup(cfg->sql_dir);
        c->cfg.migrate_db = cfg->migrate_db ? strdup(cfg->migrate_db) : NULL;
        c->cfg.audit_key = cfg->audit_key ? strdup(cfg->audit_key) : NULL;
        c->cfg.fleet_key_file = cfg->fleet_key_file ? strdup(cfg->fleet_key_file) : NULL;
        if (c->cfg.rate_burst <= 0)
                c->cfg.rate_burst = 2 * c->cfg.rate_limit;
        if (cfg->id)
                snprintf(c->id, sizeof(c->id), "%s", cfg->id);
        else {
                gethostname(host, sizeof(host) - 1);
                snprintf(c->id, sizeof(c->id), "%s:%d", host, (int) getpid());
        }
        pthread_mutex_init(&c->pool_lock, NULL);
        pthread_cond_init(&c->pool_cond, NULL);
        pthread_mutex_init(&c->wake_lock, NULL);
        pthread_cond_init(&c->wake_cond, NULL);
        pthread_mutex_init(&c->done_lock, NULL);
        pthread_cond_init(&c->done_cond, NULL);
        pthread_mutex_init(&c->nodes_lock, NULL);
        pthread_mutex_init(&c->keys_lock, NULL);
        pthread_mutex_init(&c->outbox_lock, NULL);
        pthread_mutex_init(&c->metrics_lock, NULL);
        c->pool = calloc(c->cfg.db_pool, sizeof(PGconn *));
        c->pool_busy = calloc(c->cfg.db_pool, sizeof(bool));
        if (!c->cfg.db || !c->cfg.redis || !c->cfg.listen || !c->cfg.sql_dir || !c->pool || !c->pool_busy)
                return au_error_set(err, ENOMEM, "coordinator");

        sbx_policy_init_default(&c->policy);
        if (c->cfg.policy && (r = sbx_policy_load(c->cfg.policy, &c->policy, err)) < 0) {
                orc_coord_free(TAKE_PTR(c));
                return r;
        }
        if ((r = setup_metrics(c)) < 0) {
                orc_coord_free(TAKE_PTR(c));
                return au_error_set(err, -r, "metrics");
        }
        if ((r = orc_auditor_new(c, err)) < 0) {
                orc_coord_free(TAKE_PTR(c));
                return r;
        }
        if ((r = orc_identity_init(c, err)) < 0) {
                orc_coord_free(TAKE_PTR(c));
                return r;
        }

        unsigned pending = 0;
        r = mem_pg_connect(c->cfg.db, "autoos-coordinator", &conn, err);
        if (r >= 0)
                r = mem_pg_schema_version(conn, &version, err);
        if (r >= 0 && version >= SCHEMA_VERSION)
                orc_identity_reload(c, conn);
        if (r >= 0 && mem_pg_pending_migrations(conn, c->cfg.sql_dir, &pending, NULL) >= 0 && pending > 0)
                version = 0; /* a migration numbered below the highest one applied is missing */
        if (conn)
                mem_pg_close(conn);
        if (r < 0) {
                orc_coord_free(TAKE_PTR(c));
                return r;
        }
        if (mem_pg_latest_migration(c->cfg.sql_dir, &latest, NULL) < 0)
                latest = SCHEMA_VERSION;
        if (version < SCHEMA_VERSION || version < latest) {
                orc_coord_free(TAKE_PTR(c));
                return au_error_set(err, 0,
                                    "the database schema is at version %d, this coordinator needs %d: run "
                                    "autoos-coordinator --migrate",
                                    version, latest > SCHEMA_VERSION ? latest : SCHEMA_VERSION);
        }
        atomic_store(&c->db_up, true);
        *ret = TAKE_PTR(c);
        return 0;
}

int orc_coord_start(orc_coord *c, au_error *err) {
        int r;

        if ((r = pthread_create(&c->monitor_thread, NULL, monitor_main, c)) != 0)
                return au_error_set(err, r, "start the monitor thread");
        if ((r = pthread_create(&c->scheduler_thread, NULL, orc_scheduler_main, c)) != 0) {
                atomic_store(&c->stop, true);
                pthread_join(c->monitor_thread, NULL);
                return au_error_set(err, r, "start the scheduler thread");
        }
        if ((r = pthread_create(&c->results_thread, NULL, orc_results_main, c)) != 0) {
                atomic_store(&c->stop, true);
                orc_wake_scheduler(c);
                pthread_join(c->monitor_thread, NULL);
                pthread_join(c->scheduler_thread, NULL);
                return au_error_set(err, r, "start the results thread");
        }
        c->threads_started = true;
        return orc_auditor_start(c, err);
}

void orc_coord_shutdown(orc_coord *c) {
        atomic_store(&c->stop, true);
        orc_wake_scheduler(c);
        orc_signal_done(c);
}

orc_coord *orc_coord_free(orc_coord *c) {
        if (!c)
                return NULL;
        if (c->threads_started) {
                atomic_store(&c->stop, true);
                orc_wake_scheduler(c);
                orc_signal_done(c);
                pthread_join(c->monitor_thread, NULL);
                pthread_join(c->scheduler_thread, NULL);
                pthread_join(c->results_thread, NULL);
        }
        orc_auditor_free(c);
        for (size_t i = 0; c->pool && i < c->cfg.db_pool; i++)
                if (c->pool[i])
                        mem_pg_close(c->pool[i]);
        free(c->pool);
        free(c->pool_busy);
        for (size_t i = 0; i < c->n_outbox; i++)
                free(c->outbox[i]);
        free(c->outbox);
        free(c->keys);
        orc_identity_done(c);
        au_metrics_free(c->metrics);
        orc_config_done(&c->cfg);
        pthread_mutex_destroy(&c->pool_lock);
        pthread_cond_destroy(&c->pool_cond);
        pthread_mutex_destroy(&c->wake_lock);
        pthread_cond_destroy(&c->wake_cond);
        pthread_mutex_destroy(&c->done_lock);
        pthread_cond_destroy(&c->done_cond);
        pthread_mutex_destroy(&c->nodes_lock);
        pthread_mutex_destroy(&c->keys_lock);
        pthread_mutex_destroy(&c->outbox_lock);
        pthread_mutex_destroy(&c->metrics_lock);
        free(c);
        return NULL;
}

const char *orc_redis_url(const orc_coord *c) {
        return c->cfg.redis;
}
