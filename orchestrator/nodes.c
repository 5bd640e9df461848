/* SPDX-License-Identifier: MIT */
/*
 * The fleet as the coordinator sees it: the monitor thread reads node
 * heartbeats (taken only when sealed by their node), records nodes in
 * PostgreSQL, declares silent nodes lost, reloads keys and identities and
 * sets the gauges.
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

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/loop.h"
#include "memory/pg.h"
#include "memory/redis.h"
#include "memory/store-nodes.h"
#include "memory/streams.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/identity.h"

#define MONITOR_TICK_MS 250
#define HEARTBEAT_TTL_MS 3000 /* autoosd's PEXPIRE */
#define KEYS_RELOAD_MS 5000

/* ---- nodes ---------------------------------------------------------------- */

static orc_node *node_find_locked(orc_coord *c, const char *id, bool create) {
        for (size_t i = 0; i < c->n_nodes; i++)
                if (strcmp(c->nodes[i].id, id) == 0)
                        return &c->nodes[i];
        if (!create || c->n_nodes == ORC_MAX_NODES || strlen(id) >= sizeof(c->nodes[0].id))
                return NULL;
        orc_node *n = &c->nodes[c->n_nodes++];
        *n = (orc_node){0};
        snprintf(n->id, sizeof(n->id), "%s", id);
        return n;
}

/* Sets n's drain (since and by NULL: not draining). Under nodes_lock. */
static void node_drain_locked(orc_node *n, bool draining, const char *since, const char *by) {
        n->draining = draining;
        snprintf(n->drain_since, sizeof(n->drain_since), "%s", draining && since ? since : "");
        snprintf(n->drained_by, sizeof(n->drained_by), "%s", draining && by ? by : "");
}

/*
 * The drains recorded in PostgreSQL (by any coordinator; res, read at
 * read_ms) onto the view, under nodes_lock: a node this coordinator's API
 * changed since then keeps what the API set.
 */
static void apply_drains_locked(orc_coord *c, const PGresult *res, uint64_t read_ms) {
        for (size_t i = 0; i < c->n_nodes; i++) {
                orc_node *n = &c->nodes[i];
                int row = -1;

                if (n->drain_set_ms >= read_ms)
                        continue;
                for (int k = 0; k < PQntuples(res) && row < 0; k++)
                        if (strcmp(mem_pg_value(res, k, MEM_DRAIN_NODE), n->id) == 0)
                                row = k;
                if ((row >= 0) != n->draining)
                        log_info("node %s %s", n->id, row >= 0 ? "is draining" : "is eligible again");
                node_drain_locked(n, row >= 0, row >= 0 ? mem_pg_value(res, row, MEM_DRAIN_SINCE) : NULL,
                                  row >= 0 ? mem_pg_value(res, row, MEM_DRAINED_BY) : NULL);
        }
}

void orc_nodes_set_drain(orc_coord *c, const char *id, bool draining, const char *since, const char *by) {
        pthread_mutex_lock(&c->nodes_lock);
        orc_node *n = node_find_locked(c, id, true);
        if (n) {
                node_drain_locked(n, draining, since, by);
                n->drain_set_ms = au_now_ms();
        }
        pthread_mutex_unlock(&c->nodes_lock);
}

size_t orc_nodes_view(orc_coord *c, orc_node *out, size_t max) {
        size_t n;
        pthread_mutex_lock(&c->nodes_lock);
        n = c->n_nodes < max ? c->n_nodes : max;
        memcpy(out, c->nodes, n * sizeof(orc_node));
        pthread_mutex_unlock(&c->nodes_lock);
        return n;
}

static void node_upsert(orc_coord *c, PGconn *conn, const orc_node *n) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_free_ char *labels = NULL;
        _cleanup_free_ char *copy = strdup(n->labels);
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
        if (mem_store_node_heartbeat(conn, n->id, labels ? labels : "{}", n->capacity, n->version, NULL) < 0)
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
        redisReply *members = redisCommand(rc, "SMEMBERS " MEM_KEY_NODES);
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
                redisAppendCommand(rc, "HGETALL " MEM_KEY_NODE_PREFIX "%s", b[n].id);
                redisAppendCommand(rc, "PTTL " MEM_KEY_NODE_PREFIX "%s", b[n].id);
                n++;
        }
        freeReplyObject(members);
        for (size_t i = 0; i < n; i++) {
                redisReply *h = NULL, *t = NULL;
                if (redisGetReply(rc, (void **) &h) != REDIS_OK ||
                    redisGetReply(rc, (void **) &t) != REDIS_OK) {
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
                                        b[i].labels_long = snprintf(b[i].labels, sizeof(b[i].labels), "%s",
                                                                    v) >= (int) sizeof(b[i].labels);
                                else if (strcmp(f, "version") == 0)
                                        b[i].version_long = snprintf(b[i].version, sizeof(b[i].version),
                                                                     "%s", v) >= (int) sizeof(b[i].version);
                                else if (strcmp(f, "started_at") == 0)
                                        snprintf(b[i].started_at, sizeof(b[i].started_at), "%s", v);
                                else if (strcmp(f, "beat") == 0)
                                        snprintf(b[i].beat, sizeof(b[i].beat), "%s", v);
                                else if (strcmp(f, "state") == 0)
                                        snprintf(b[i].state, sizeof(b[i].state), "%s", v);
                                else if (strcmp(f, MEM_FIELD_AUTH) == 0)
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

static void monitor_gauges(orc_coord *c, PGconn *conn) {
        static const char *const wstates[] = {"pending",   "running", "paused",   "awaiting_human",
                                              "succeeded", "failed",  "cancelled"};
        static const char *const sstates[] = {"pending",        "ready",   "dispatched", "running",
                                              "succeeded",      "failed",  "skipped",    "cancelled",
                                              "awaiting_human", "standby", "replaced"};
        _cleanup_pgresult_ PGresult *w = NULL, *s = NULL;

        if (mem_store_state_counts(conn, &w, &s, NULL) < 0)
                return;
        pthread_mutex_lock(&c->metrics_lock);
        for (size_t i = 0; i < ELEMENTSOF(wstates); i++)
                au_metric_set(c->m_workflows, wstates[i], 0);
        for (size_t i = 0; i < ELEMENTSOF(sstates); i++)
                au_metric_set(c->m_steps, sstates[i], 0);
        for (int i = 0; i < PQntuples(w); i++)
                au_metric_set(c->m_workflows, mem_pg_value(w, i, MEM_COUNT_STATE),
                              atof(mem_pg_value(w, i, MEM_COUNT_N)));
        for (int i = 0; i < PQntuples(s); i++)
                au_metric_set(c->m_steps, mem_pg_value(s, i, MEM_COUNT_STATE),
                              atof(mem_pg_value(s, i, MEM_COUNT_N)));
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
                const char *fields[8] = {b->started_at, b->beat,   b->f_capacity, b->f_running,
                                         b->f_queued,   b->labels, b->version,    b->state};
                why = b->labels_long || b->version_long
                              ? "malformed"
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
        _cleanup_pgresult_ PGresult *inflight = NULL, *drains = NULL;
        char lost[64][129];
        size_t n_beats = 0, n_lost = 0, n_alive = 0, n_dead = 0;
        uint64_t now = au_now_ms(), wall = au_wall_ms(), drains_ms;
        bool grace;
        au_error err = {0};

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
        if (*conn && mem_store_nodes_inflight(*conn, false, &inflight, NULL) < 0) {
                PQclear(inflight);
                inflight = NULL;
        }
        drains_ms = au_now_ms();
        if (*conn && mem_store_nodes_draining(*conn, &drains, NULL) < 0) {
                PQclear(drains);
                drains = NULL;
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
                        (uint64_t) (HEARTBEAT_TTL_MS -
                                    (beats[i].pttl < HEARTBEAT_TTL_MS ? beats[i].pttl : HEARTBEAT_TTL_MS)) <=
                                c->cfg.node_timeout_ms;
                if (orc_identity_on(c))
                        fresh = beat_authentic(c, n, &beats[i], now, fresh);
                if (beats[i].present) {
                        n->capacity = beats[i].capacity;
                        n->running = beats[i].running;
                        n->queued = beats[i].queued;
                        memcpy(n->labels, beats[i].labels, sizeof(n->labels));
                        memcpy(n->version, beats[i].version, sizeof(n->version));
                        n->last_seen_ms =
                                wall - (uint64_t) (HEARTBEAT_TTL_MS -
                                                   (beats[i].pttl > 0 && beats[i].pttl < HEARTBEAT_TTL_MS
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
                const char *id = mem_pg_value(inflight, i, MEM_INFLIGHT_NODE);
                orc_node *n = id ? node_find_locked(c, id, true) : NULL;
                if (!n)
                        continue;
                n->inflight = (uint32_t) atoi(mem_pg_value(inflight, i, MEM_INFLIGHT_COUNT) ?: "0");
                if (!n->alive && !n->declared_lost && !grace && n_lost < ELEMENTSOF(lost)) {
                        bool dup = false;
                        for (size_t k = 0; k < n_lost; k++)
                                dup |= strcmp(lost[k], id) == 0;
                        if (!dup)
                                snprintf(lost[n_lost++], sizeof(lost[0]), "%s", id);
                }
        }
        /* In the same hold of the lock as the heartbeats: a node new to the view is never placed on
         * before its drain is known. */
        if (drains)
                apply_drains_locked(c, drains, drains_ms);
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
                        log_warning("node %s lost, but recording it failed (will retry): %s", lost[i],
                                    err.msg);
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

void *orc_monitor_main(void *arg) {
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
