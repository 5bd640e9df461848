/* SPDX-License-Identifier: MIT */
/* Node identity: enrollment, node keys, sealing specs, checking results and heartbeats (identity.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/loop.h"
#include "memory/pg.h"
#include "memory/secret.h"
#include "memory/store-identities.h"
#include "memory/store.h"
#include "memory/streams.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/identity.h"

typedef struct ident_node {
        char name[129];
        uint8_t key[MEM_SEAL_KEY_BYTES];
        /* refusal rows admitted this minute, and held back */
        uint64_t window_ms;
        unsigned rows;
        uint64_t suppressed;
} ident_node;

struct orc_identity {
        bool on;
        uint8_t fleet[MEM_SEAL_KEY_BYTES];
        pthread_mutex_t lock;
        ident_node *nodes;
        size_t n_nodes;
        ident_node unknown;    /* refusals naming no enrolled node share one budget */
        uint64_t refreshed_ms; /* the last reload on a miss (CLOCK_MONOTONIC), under lock */
        au_metric *m_results_refused, *m_heartbeats_refused, *m_jobs_sealed;
        au_metric *m_auth_cpu, *m_auth_ops;
};

/*
 * CLOCK_MONOTONIC in seconds, around each sealing and check: their CPU time
 * unless the thread was preempted in between (an upper bound). A thread CPU
 * clock read is a system call (2 us here, as much as an HMAC); this one is
 * read in the vDSO (60 ns).
 */
static double auth_clock_s(void) {
        return (double) au_now_us() / 1e6;
}

/* Counts one sealing or check that started at t0 (bench/coordinator prints the sum per step). */
static void auth_spent(orc_coord *c, const char *what, double t0) {
        double dt = auth_clock_s() - t0;
        orc_metric_add(c, c->identity->m_auth_cpu, NULL, dt > 0 ? dt : 0);
        orc_metric_add(c, c->identity->m_auth_ops, what, 1);
}

static bool valid_node_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 128)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr("._-", *s)))
                        return false;
        return true;
}

/* ---- commands --------------------------------------------------------------- */

static int fleet_key(const orc_config *cfg, bool create, uint8_t ret[MEM_SEAL_KEY_BYTES], au_error *err) {
        au_error e = {0};
        int r = mem_seal_key_load(cfg->fleet_key_file, ret, &e);

        if (r == -ENOENT && create) {
                uint8_t k[MEM_SEAL_KEY_BYTES];
                if (mem_seal_random(k, sizeof(k)) < 0)
                        return au_error_set(err, EIO, "random bytes for the fleet key");
                r = mem_seal_key_save(cfg->fleet_key_file, k, err);
                if (r == 0) {
                        memcpy(ret, k, sizeof(k));
                        fprintf(stderr,
                                "autoos-coordinator: created the fleet key %s (mode 0600); keep it, and "
                                "give it to every coordinator of this fleet\n",
                                cfg->fleet_key_file);
                }
                OPENSSL_cleanse(k, sizeof(k));
                return r;
        }
        if (r < 0) {
                if (err && !au_error_isset(err))
                        *err = e;
                return r;
        }
        return 0;
}

static void key_id(const uint8_t key[MEM_SEAL_KEY_BYTES], char ret[17]) {
        uint8_t d[32];
        SHA256(key, MEM_SEAL_KEY_BYTES, d);
        mem_seal_hex(d, 8, ret);
}

int orc_node_enroll(const orc_config *cfg, const char *node, bool rekey, char ret_key[MEM_SEAL_HEX_LEN + 1],
                    au_error *err) {
        uint8_t fleet[MEM_SEAL_KEY_BYTES], key[MEM_SEAL_KEY_BYTES];
        char id[17];
        unsigned gen = 0;
        PGconn *conn = NULL;
        int r;

        if (!valid_node_name(node))
                return au_error_set_field(err, "node",
                                          "node name '%s': 1 to 128 letters, digits, '.', '_' or '-'", node);
        r = fleet_key(cfg, true, fleet, err);
        if (r < 0)
                return r;
        r = mem_pg_connect(cfg->db, "autoos-coordinator enroll", &conn, err);
        if (r < 0)
                goto out;
        /* enroll: a new node, or one removed before; rekey: an enrolled node, next generation. */
        r = mem_store_identity_enroll(conn, node, rekey, &gen, err);
        if (r < 0)
                goto out;
        if (gen == 0) {
                r = rekey ? au_error_set_field(err, "node", "node '%s' is not enrolled (see --enroll-node)",
                                               node)
                          : au_error_set_field(
                                    err, "node",
                                    "node '%s' is enrolled already: --rekey-node gives it a new key", node);
                r = -EEXIST;
                goto out;
        }
        r = mem_seal_node_key(fleet, node, gen, key);
        if (r < 0)
                goto out;
        key_id(key, id);
        r = mem_store_identity_key_id(conn, node, id, err);
        if (r < 0)
                goto out;
        mem_seal_hex(key, sizeof(key), ret_key);
        fprintf(stderr,
                "autoos-coordinator: node '%s' %s (key generation %u, key id %s); the key is shown only "
                "this once: "
                "write it to the node's node_key_file (mode 0600)\n",
                node, rekey ? "has a new key" : "enrolled", gen, id);
out:
        OPENSSL_cleanse(fleet, sizeof(fleet));
        OPENSSL_cleanse(key, sizeof(key));
        if (conn)
                mem_pg_close(conn);
        return r;
}

int orc_node_remove(const orc_config *cfg, const char *node, au_error *err) {
        PGconn *conn = NULL;
        bool removed = false;
        int r;

        r = mem_pg_connect(cfg->db, "autoos-coordinator remove-node", &conn, err);
        if (r >= 0)
                r = mem_store_identity_remove(conn, node, &removed, err);
        if (r >= 0 && !removed)
                r = au_error_set_field(err, "node", "node '%s' is not enrolled", node);
        if (conn)
                mem_pg_close(conn);
        return r;
}

void orc_node_redis_password(const uint8_t key[MEM_SEAL_KEY_BYTES], char ret[MEM_SEAL_HEX_LEN + 1]) {
        if (mem_seal_mac(key, MEM_SEAL_REDIS_PASSWORD, NULL, NULL, 0, ret) < 0)
                ret[0] = '\0';
}

int orc_node_acl(const orc_config *cfg, const char *node, char **ret_line, au_error *err) {
        uint8_t fleet[MEM_SEAL_KEY_BYTES], key[MEM_SEAL_KEY_BYTES];
        char pw[MEM_SEAL_HEX_LEN + 1];
        unsigned gen = 0;
        PGconn *conn = NULL;
        int r;

        r = fleet_key(cfg, false, fleet, err);
        if (r < 0)
                return r;
        r = mem_pg_connect(cfg->db, "autoos-coordinator node-acl", &conn, err);
        if (r >= 0)
                r = mem_store_identity_generation(conn, node, &gen, err);
        if (r >= 0 && gen == 0)
                r = au_error_set_field(err, "node", "node '%s' is not enrolled", node);
        if (r >= 0)
                r = mem_seal_node_key(fleet, node, gen, key);
        if (r >= 0) {
                orc_node_redis_password(key, pw);
                /*
                 * Its own jobs stream (read, ack, create the group), its heartbeat hash, its
                 * remembered results; autoos:results and autoos:nodes only to write (%W: it
                 * cannot read others' results); nothing else. Lua scripts run as the user, so
                 * the publish script's XADD and SET are held to the same keys.
                 */
                if (asprintf(ret_line,
                             "ACL SETUSER %s reset on >%s ~" MEM_STREAM_JOBS_PREFIX
                             "%s ~" MEM_KEY_NODE_PREFIX "%s ~" MEM_KEY_RESULT_PREFIX
                             "%s:* %%W~" MEM_STREAM_RESULTS " %%W~" MEM_KEY_NODES
                             " resetchannels -@all +ping +hello +auth "
                             "+select "
                             "+client|id +client|unblock +client|setname +xreadgroup +xack +xgroup|create "
                             "+xadd "
                             "+evalsha +eval +script|load +get +set +hset +pexpire +sadd",
                             node, pw, node, node, node) < 0)
                        r = au_error_set(err, ENOMEM, "ACL line");
        }
        OPENSSL_cleanse(fleet, sizeof(fleet));
        OPENSSL_cleanse(key, sizeof(key));
        OPENSSL_cleanse(pw, sizeof(pw));
        if (conn)
                mem_pg_close(conn);
        return r;
}

/* ---- the running coordinator -------------------------------------------------- */

int orc_identity_init(orc_coord *c, au_error *err) {
        orc_identity *id = calloc(1, sizeof(*id));
        int r;

        if (!id)
                return au_error_set(err, ENOMEM, "node identity");
        pthread_mutex_init(&id->lock, NULL);
        c->identity = id;
        id->on = c->cfg.bus_auth;
        pthread_mutex_lock(&c->metrics_lock);
        id->m_results_refused = au_metrics_counter(c->metrics, "autoos_results_refused_total",
                                                   "Results refused (not applied), by reason.", "reason");
        id->m_heartbeats_refused = au_metrics_counter(c->metrics, "autoos_heartbeats_refused_total",
                                                      "Heartbeats ignored, by reason.", "reason");
        id->m_auth_cpu = au_metrics_counter(c->metrics, "autoos_coordinator_auth_seconds_total",
                                            "Time spent sealing specs and checking results and heartbeats "
                                            "(bus_auth): CPU, unless the thread was preempted meanwhile.",
                                            NULL);
        id->m_auth_ops =
                au_metrics_counter(c->metrics, "autoos_coordinator_auth_operations_total",
                                   "Specs sealed and results and heartbeats checked, by kind.", "kind");
        pthread_mutex_unlock(&c->metrics_lock);
        if (!id->m_results_refused || !id->m_heartbeats_refused || !id->m_auth_cpu || !id->m_auth_ops)
                return au_error_set(err, ENOMEM, "metrics");
        if (!id->on) {
                log_warning("bus_auth is off: results and heartbeats are believed from anyone who can write "
                            "to Redis, "
                            "and specs go out unsigned");
                return 0;
        }
        /* The first coordinator of a fleet makes the key (0600); the others must be given the same file. */
        r = fleet_key(&c->cfg, true, id->fleet, err);
        if (r < 0)
                return au_error_set(err, -r,
                                    "bus_auth is on, but the fleet key cannot be read (autoos-coordinator "
                                    "--enroll-node makes it; bus_auth = off runs without node identity)");
        return 0;
}

void orc_identity_done(orc_coord *c) {
        orc_identity *id = c->identity;
        if (!id)
                return;
        OPENSSL_cleanse(id->fleet, sizeof(id->fleet));
        if (id->nodes)
                OPENSSL_cleanse(id->nodes, id->n_nodes * sizeof(ident_node));
        free(id->nodes);
        pthread_mutex_destroy(&id->lock);
        free(id);
        c->identity = NULL;
}

bool orc_identity_on(const orc_coord *c) {
        return c->identity && c->identity->on;
}

int orc_identity_reload(orc_coord *c, PGconn *conn) {
        orc_identity *id = c->identity;
        _cleanup_pgresult_ PGresult *res = NULL;
        ident_node *v;
        size_t n;
        int r;

        if (!orc_identity_on(c))
                return 0;
        r = mem_store_identities(conn, &res, NULL);
        if (r < 0)
                return r;
        n = (size_t) PQntuples(res);
        v = calloc(n + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                snprintf(v[i].name, sizeof(v[i].name), "%s", mem_pg_value(res, (int) i, MEM_IDENTITY_NODE));
                mem_seal_node_key(id->fleet, v[i].name,
                                  (unsigned) mem_store_int(res, (int) i, MEM_IDENTITY_GENERATION), v[i].key);
        }
        pthread_mutex_lock(&id->lock);
        /* Keep each node's refusal budget across reloads. */
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < id->n_nodes; k++)
                        if (strcmp(id->nodes[k].name, v[i].name) == 0) {
                                v[i].window_ms = id->nodes[k].window_ms;
                                v[i].rows = id->nodes[k].rows;
                                v[i].suppressed = id->nodes[k].suppressed;
                        }
        if (id->nodes)
                OPENSSL_cleanse(id->nodes, id->n_nodes * sizeof(ident_node));
        free(id->nodes);
        id->nodes = v;
        id->n_nodes = n;
        pthread_mutex_unlock(&id->lock);
        return 0;
}

/* Under id->lock. */
static ident_node *find_locked(orc_identity *id, const char *node, size_t len) {
        for (size_t i = 0; i < id->n_nodes; i++)
                if (strlen(id->nodes[i].name) == len && memcmp(id->nodes[i].name, node, len) == 0)
                        return &id->nodes[i];
        return NULL;
}

static bool node_key_cached(orc_coord *c, const char *node, size_t len, uint8_t ret[MEM_SEAL_KEY_BYTES]) {
        orc_identity *id = c->identity;
        ident_node *n;

        pthread_mutex_lock(&id->lock);
        n = find_locked(id, node, len);
        if (n)
                memcpy(ret, n->key, MEM_SEAL_KEY_BYTES);
        pthread_mutex_unlock(&id->lock);
        return n != NULL;
}

/*
 * Copies node's key; false when it is not enrolled. A node missing from the
 * cache may have been enrolled a moment ago (the monitor reloads every 5 s):
 * the enrolled nodes are read again at once, at most once a second, so that
 * a flood of made-up names costs at most one query a second.
 */
static bool node_key(orc_coord *c, const char *node, size_t len, uint8_t ret[MEM_SEAL_KEY_BYTES]) {
        orc_identity *id = c->identity;
        bool again = false;
        PGconn *conn;

        if (node_key_cached(c, node, len, ret))
                return true;
        pthread_mutex_lock(&id->lock);
        if (au_now_ms() - id->refreshed_ms >= 1000) {
                id->refreshed_ms = au_now_ms();
                again = true;
        }
        pthread_mutex_unlock(&id->lock);
        if (!again || !(conn = orc_pool_get(c, NULL)))
                return false;
        orc_identity_reload(c, conn);
        orc_pool_put(c, conn);
        return node_key_cached(c, node, len, ret);
}

static int dispatch_token(orc_coord *c, const char *run_id, const char *node, size_t node_len,
                          char ret[MEM_SEAL_HEX_LEN + 1]) {
        const char *parts[] = {run_id, node};
        size_t lens[] = {strlen(run_id), node_len};
        return mem_seal_mac(c->identity->fleet, MEM_SEAL_TOKEN, parts, lens, 2, ret);
}

int orc_node_secret_key(orc_coord *c, const char *node, uint8_t ret[MEM_SEAL_KEY_BYTES]) {
        uint8_t key[MEM_SEAL_KEY_BYTES];
        int r;

        if (!orc_identity_on(c) || !node_key(c, node, strlen(node), key))
                return -ENOKEY;
        r = mem_secret_node_key(key, ret);
        OPENSSL_cleanse(key, sizeof(key));
        return r;
}

static int seal_job(orc_coord *c, const char *node, const char *field, const char *value, const char *run_id,
                    char ret_token[MEM_SEAL_HEX_LEN + 1], char ret_expires[24],
                    char ret_auth[MEM_SEAL_HEX_LEN + 1]) {
        uint8_t key[MEM_SEAL_KEY_BYTES];
        int r;

        ret_token[0] = ret_expires[0] = ret_auth[0] = '\0';
        if (!node_key(c, node, strlen(node), key))
                return -ENOKEY;
        if (run_id) {
                r = dispatch_token(c, run_id, node, strlen(node), ret_token);
                if (r < 0)
                        return r;
                snprintf(ret_expires, 24, "%" PRIu64, au_wall_ms() + c->cfg.job_ttl_ms);
        }
        const char *parts[] = {node, field, value, ret_token, ret_expires};
        size_t lens[] = {strlen(node), strlen(field), strlen(value), strlen(ret_token), strlen(ret_expires)};
        r = mem_seal_mac(key, MEM_SEAL_JOB, parts, lens, 5, ret_auth);
        OPENSSL_cleanse(key, sizeof(key));
        return r;
}

int orc_seal_job(orc_coord *c, const char *node, const char *field, const char *value, const char *run_id,
                 char ret_token[MEM_SEAL_HEX_LEN + 1], char ret_expires[24],
                 char ret_auth[MEM_SEAL_HEX_LEN + 1]) {
        double t0 = auth_clock_s();
        int r = seal_job(c, node, field, value, run_id, ret_token, ret_expires, ret_auth);
        auth_spent(c, "seal_job", t0);
        return r;
}

static const char *result_refusal(orc_coord *c, const char *node, size_t node_len, const char *token,
                                  size_t token_len, const char *auth, size_t auth_len, const char *json,
                                  size_t json_len, const char *run_id) {
        uint8_t key[MEM_SEAL_KEY_BYTES];
        char want[MEM_SEAL_HEX_LEN + 1];
        bool good;

        if (!node || !auth || !token)
                return "unsigned";
        if (!node_key(c, node, node_len, key))
                return "unknown_node";
        const char *parts[] = {node, token, json};
        size_t lens[] = {node_len, token_len, json_len};
        good = mem_seal_check(key, MEM_SEAL_RESULT, parts, lens, 3, auth, auth_len);
        OPENSSL_cleanse(key, sizeof(key));
        if (!good)
                return "bad_mac";
        /* Sealed by that node; the token says the run was dispatched to it. */
        if (!run_id || dispatch_token(c, run_id, node, node_len, want) < 0 ||
            token_len != MEM_SEAL_HEX_LEN || CRYPTO_memcmp(want, token, MEM_SEAL_HEX_LEN) != 0)
                return "wrong_dispatch";
        return NULL;
}

const char *orc_result_refusal(orc_coord *c, const char *node, size_t node_len, const char *token,
                               size_t token_len, const char *auth, size_t auth_len, const char *json,
                               size_t json_len, const char *run_id) {
        double t0 = auth_clock_s();
        const char *r =
                result_refusal(c, node, node_len, token, token_len, auth, auth_len, json, json_len, run_id);
        auth_spent(c, "check_result", t0);
        return r;
}

static const char *heartbeat_refusal(orc_coord *c, const char *node, const char *const fields[8],
                                     const char *auth) {
        uint8_t key[MEM_SEAL_KEY_BYTES];
        const char *parts[9];
        size_t lens[9];
        bool good;

        if (!node_key(c, node, strlen(node), key))
                return "unknown_node";
        if (!auth)
                return "unsigned";
        /* node, started_at, beat, capacity, running, queued, labels, version, state */
        parts[0] = node;
        for (size_t i = 0; i < 8; i++)
                parts[1 + i] = fields[i] ? fields[i] : "";
        for (size_t i = 0; i < 9; i++)
                lens[i] = strlen(parts[i]);
        good = mem_seal_check(key, MEM_SEAL_HEARTBEAT, parts, lens, 9, auth, strlen(auth));
        OPENSSL_cleanse(key, sizeof(key));
        return good ? NULL : "bad_mac";
}

const char *orc_heartbeat_refusal(orc_coord *c, const char *node, const char *const fields[8],
                                  const char *auth) {
        double t0 = auth_clock_s();
        const char *r = heartbeat_refusal(c, node, fields, auth);
        auth_spent(c, "check_heartbeat", t0);
        return r;
}

void orc_count_refused_result(orc_coord *c, const char *reason) {
        orc_metric_add(c, c->identity->m_results_refused, reason, 1);
}

void orc_count_refused_heartbeat(orc_coord *c, const char *reason) {
        orc_metric_add(c, c->identity->m_heartbeats_refused, reason, 1);
}

bool orc_refusal_admit(orc_coord *c, const char *node, uint64_t *ret_suppressed) {
        orc_identity *id = c->identity;
        uint64_t now = au_wall_ms() / 60000;
        ident_node *n;
        bool admit;

        *ret_suppressed = 0;
        pthread_mutex_lock(&id->lock);
        n = node ? find_locked(id, node, strlen(node)) : NULL;
        if (!n)
                n = &id->unknown;
        if (n->window_ms != now) {
                *ret_suppressed = n->suppressed;
                n->window_ms = now;
                n->rows = 0;
                n->suppressed = 0;
        }
        admit = n->rows < ORC_REFUSAL_ROWS;
        if (admit)
                n->rows++;
        else
                n->suppressed++;
        pthread_mutex_unlock(&id->lock);
        return admit;
}
