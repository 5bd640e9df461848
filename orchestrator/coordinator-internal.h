/* SPDX-License-Identifier: MIT */
/*
 * What coordinator.c (lifecycle, threads, nodes), keys.c, audit.c, scheduler.c
 * (dispatch, results, recovery, node loss), ops.c and rows.c (the API's operations)
 * share. PostgreSQL is the truth; memory holds only views and caches.
 *
 * Threads: the scheduler (dispatch batches), the results reader (applies
 * results from autoos:results, group "coordinators"), the monitor
 * (heartbeats, node loss, key cache, gauges), and MHD's connection threads
 * calling ops.c with pooled connections. Each thread owns its connections.
 */
#pragma once
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <yajl/yajl_gen.h>

#include "common/buf.h"
#include "common/metrics.h"
#include "fabric/fabric.h"
#include "memory/store.h"
#include "orchestrator/config.h"
#include "orchestrator/coordinator.h"
#include "sandbox/sandbox.h"

#define ORC_MAX_NODES 1024
#define ORC_MAX_KEYS 4096
#define ORC_MAX_MOVES                                                                       \
        5 /* placements again after node loss / sandbox_error before it counts as a failure \
           */

typedef struct orc_node {
        char id[129];
        bool alive;         /* heartbeat present and fresh */
        bool declared_lost; /* our node-loss handling ran for it */
        uint32_t capacity, running, queued, inflight;
        char labels[1024]; /* "k=v,k=v" as autoosd sends */
        char version[64];
        uint64_t last_seen_ms; /* CLOCK_REALTIME ms of the newest heartbeat */
        uint64_t seen_mono_ms; /* when we saw it */
        /* bus_auth: the newest authenticated beat (its life and number), and when we saw it */
        char beat_life[40];
        uint64_t beat_seq, beat_mono_ms;
        /* Drained (PostgreSQL's nodes.drain_since): no new step goes to it. */
        bool draining;
        char drain_since[40], drained_by[129];
        uint64_t drain_set_ms; /* CLOCK_MONOTONIC ms this coordinator's API last changed it */
} orc_node;

typedef struct orc_key {
        char name[129];
        orc_role role;
        unsigned char sha256[32];
} orc_key;

struct orc_coord {
        orc_config cfg;
        sbx_policy policy;
        char id[160];

        atomic_bool stop;
        atomic_bool db_up, redis_up;
        uint64_t redis_back_ms; /* monitor only: when its Redis came (back), CLOCK_MONOTONIC */
        pthread_t scheduler_thread, results_thread, monitor_thread;
        bool threads_started;

        /* PostgreSQL connections for API requests. */
        pthread_mutex_t pool_lock;
        pthread_cond_t pool_cond;
        PGconn **pool;
        bool *pool_busy;

        /* The scheduler sleeps on this until kicked or 100 ms pass. */
        pthread_mutex_t wake_lock;
        pthread_cond_t wake_cond;
        bool wake;

        /* Broadcast when a workflow ends (POST /v1/runs?wait=1 waits on it). */
        pthread_mutex_t done_lock;
        pthread_cond_t done_cond;
        uint64_t done_gen;

        pthread_mutex_t nodes_lock;
        orc_node nodes[ORC_MAX_NODES];
        size_t n_nodes;

        pthread_mutex_t keys_lock;
        orc_key *keys;
        size_t n_keys;
        bool keys_loaded;
        uint64_t keys_loaded_ms;

        /* Commands the API wants on Redis (cancels): the scheduler sends them. */
        pthread_mutex_t outbox_lock;
        char **outbox; /* pairs: stream key, value (a cancel's run id, or an event) */
        size_t n_outbox;

        struct orc_identity *identity; /* identity.c: fleet key, enrolled nodes, refusal accounting */

        struct orc_auditor *auditor; /* audit.c: signs checkpoints; NULL without audit_key */

        /* Model providers and roles (fabric.json, issue 14); NULL: none configured, and model and
         * agent steps are refused at submission. fab_fabric is thread-safe (its own lock). */
        fab_fabric *fabric;
        au_metrics *fabric_metrics;                /* the fabric's own (fabric/metrics.c), behind its lock */
        struct orc_fabric_workers *fabric_workers; /* steps-model.c */

        pthread_mutex_t metrics_lock;
        au_metrics *metrics;
        au_metric *m_workflows, *m_steps, *m_dispatched, *m_results, *m_dispatch_latency, *m_audit_rows,
                *m_nodes, *m_node_lost, *m_late, *m_api_db_errors, *m_http_requests;
};

/* coordinator.c */
void orc_wake_scheduler(orc_coord *c);
void orc_signal_done(orc_coord *c);
/* A pooled connection for an API request; NULL (err says why) when PostgreSQL is away. */
PGconn *orc_pool_get(orc_coord *c, au_error *err);
/* Returns it; broken connections are dropped and made again next time. */
void orc_pool_put(orc_coord *c, PGconn *conn);
void orc_outbox_cancel(orc_coord *c, const char *node, const char *run_id);
/* An event for autoos:events, sent by the scheduler thread. */
void orc_outbox_event(orc_coord *c, const char *json);
void orc_metric_add(orc_coord *c, au_metric *m, const char *label, double v);
void orc_metric_observe(orc_coord *c, au_metric *m, double v);
/* Copies the view of the nodes placement may use: draining nodes are left out. Returns how many. */
size_t orc_nodes_snapshot(orc_coord *c, orc_node *out, size_t max);
/* nodes.c: copies the view of every node, draining ones too (GET /v1/nodes). Returns how many. */
size_t orc_nodes_view(orc_coord *c, orc_node *out, size_t max);
/* nodes.c: a node's drain as this coordinator just recorded it (since and by NULL when undrained). */
void orc_nodes_set_drain(orc_coord *c, const char *id, bool draining, const char *since, const char *by);
/* keys.c: reloads the key cache from api_keys. */
int orc_keys_reload(orc_coord *c, PGconn *conn);

/* scheduler.c: the thread bodies. */
void *orc_scheduler_main(void *arg);

/*
 * scheduler.c: a result the coordinator made itself (a model or agent step's
 * attempt, steps-model.c; r taken, its node the step's "fabric:<id>"),
 * applied as a node's is (runs row, recovery, progress) in one transaction
 * with the audit rows `rows` (action, detail JSON pairs, NULL-ended) and
 * fabric_json as the runs row's fabric record. next_entry >= 0: where the
 * ladder would go past its retries, level 3 instead (the step ready again at
 * that chain entry). Events go out through the outbox.
 */
int orc_results_apply_local(orc_coord *c, PGconn *conn, sbx_result *r, ssize_t next_entry,
                            const char *fabric_json, const char *const *rows, au_error *err);

/* steps-model.c: the fabric workers (cfg.model_workers threads; none without c->fabric), and their end. */
int orc_fabric_workers_start(orc_coord *c, au_error *err);
void orc_fabric_workers_stop(orc_coord *c);

/* The monitor thread (nodes.c): heartbeats, node loss, key reloads, gauges. */
void *orc_monitor_main(void *arg);

/* Registers the coordinator's metrics (hub.c). Returns 0 or -ENOMEM. */
int orc_metrics_setup(orc_coord *c);
void *orc_results_main(void *arg);
/* Declares node lost in one transaction (once across coordinators). */
int orc_node_lost(orc_coord *c, PGconn *conn, redisContext *rc, const char *node, au_error *err);

/*
 * Audit rows and events collected during a transaction, written with one
 * multi-row INSERT before COMMIT (rows sorted by workflow, so that two
 * transactions take the chains' locks in the same order).
 */
typedef struct orc_audit {
        char **wf, **action, **detail; /* detail: JSON object */
        size_t n, cap;
        char *actor;
        char **events; /* JSON documents for autoos:events, sent after COMMIT */
        size_t n_events, cap_events;
} orc_audit;

void orc_audit_init(orc_audit *a, const char *actor);
void orc_audit_done(orc_audit *a);
/* detail is a JSON object (copied); wf NULL: the fleet chain. */
int orc_audit_add(orc_audit *a, const char *wf, const char *action, const char *detail);
/* Takes json (a document from orc_json_event(); NULL: out of memory). */
int orc_audit_event(orc_audit *a, char *json);
/* INSERT the rows (no-op when none). */
int orc_audit_flush(orc_coord *c, PGconn *conn, orc_audit *a, au_error *err);
/* orc_audit_flush(), then COMMIT (in the INSERT's round trip when it can: libpq pipeline mode). */
int orc_audit_flush_commit(orc_coord *c, PGconn *conn, orc_audit *a, au_error *err);
/* XADD the events (best effort; rc may be NULL for none). */
void orc_audit_send_events(orc_audit *a, redisContext *rc);

/*
 * The auditor (audit.c): loads cfg.audit_key (none: a warning, nothing is
 * signed), then a thread signs checkpoints of the chains written since their
 * last one, every audit_checkpoint_interval, and once more when stopping.
 * orc_auditor_free() stops and joins it.
 */
typedef struct orc_auditor orc_auditor;
int orc_auditor_new(orc_coord *c, au_error *err);
int orc_auditor_start(orc_coord *c, au_error *err);
void orc_auditor_free(orc_coord *c);

/* Small JSON builders: a single-line object from key/value pairs. */
char *orc_json_event(const char *type, const char *wf, const char *step, const char *const *kv);

/* Marks ready the pending steps of these workflows whose needs are all done; finishes finished workflows. */
int orc_progress(orc_coord *c, PGconn *conn, const char *const *wfs, size_t n, orc_audit *a, au_error *err);

/* hex of n bytes into out (2n + 1 bytes) */
static inline void orc_hex(const unsigned char *in, size_t n, char *out) {
        au_hex(in, n, out);
}

/* A PostgreSQL array literal of n strings (NULL entries are NULL); "{}" when n is 0. Caller frees. */
static inline char *orc_pg_array(char *const *items, size_t n) {
        return mem_store_array(items, n);
}

/* rows.c: shared by the API's operations. */
bool orc_valid_uuid(const char *s);
/* Finishes g into ret's body with this status (500 when out of memory). */
void orc_reply_json(orc_reply *ret, int status, yajl_gen g);
/* The reply for a failed database call: 503 with Retry-After when PostgreSQL is away or busy, else 500. */
void orc_reply_db_error(orc_coord *c, orc_reply *ret, int r, const au_error *err);
/* A pooled connection, or NULL with ret set to the 503 reply. */
PGconn *orc_get_conn(orc_coord *c, orc_reply *ret);
/* Puts conn back in the pool; when r < 0, ret gets the reply for the failed database call. Returns r. */
int orc_put_conn(orc_coord *c, PGconn *conn, orc_reply *ret, int r, const au_error *err);
/*
 * The reply for a call on a named thing that failed (r < 0): -ENOENT is 404
 * "MISSING 'NAME'" (missing: "no secret named"), anything else the database
 * error reply. Returns r; ret is untouched when r >= 0.
 */
int orc_reply_failed(orc_coord *c, orc_reply *ret, int r, const au_error *err, const char *missing,
                     const char *name);
/*
 * A generator for a JSON object reply, the object opened; NULL (ret set to the
 * 500 reply) when out of memory. The caller frees it (_cleanup_json_gen_).
 */
yajl_gen orc_reply_object_open(orc_reply *ret);
/* Closes the object of orc_reply_object_open() and finishes g into ret's body with this status. */
void orc_reply_object_close(orc_reply *ret, int status, yajl_gen g);
/* The 200 reply {"name": name, flag: true} (a key revoked, a secret deleted). */
void orc_reply_name_flag(orc_reply *ret, const char *name, const char *flag);
/* A compact JSON array of n strings; NULL when out of memory. Caller frees. */
char *orc_json_string_array(char *const *v, size_t n);
/* key: a row value as a JSON string, a number, or parsed JSON; NULL values as null. */
void orc_gen_kv_text(yajl_gen g, const char *key, const char *v);
void orc_gen_kv_num(yajl_gen g, const char *key, const char *v);
void orc_gen_kv_raw(yajl_gen g, const char *key, const char *json);
/* A compact JSON object from NULL-ended key/value pairs (a NULL value is null; one starting with
 * '\x01' is raw JSON after that byte), for audit details and events. Caller frees; NULL on ENOMEM. */
char *orc_json_obj(const char *const *kv);
