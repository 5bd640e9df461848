/* SPDX-License-Identifier: MIT */
/*
 * The audit trail: rows and events collected during a transaction and
 * written with it (orc_audit_*), the signed checkpoints of chain heads (the
 * auditor: a key held outside PostgreSQL and a thread that signs the heads of
 * the chains written since their last checkpoint, every
 * audit_checkpoint_interval; a workflow's last rows are signed in the
 * transaction that finishes it), and the trail of one workflow as the API
 * returns it (GET /v1/workflows/{id}/audit).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/loop.h"
#include "memory/audit-chain.h"
#include "memory/pg.h"
#include "memory/store-audit.h"
#include "orchestrator/coordinator-internal.h"

/* At start, the chains of workflows changed this recently are checked for heads left unsigned. */
#define STARTUP_LOOKBACK "1 day"
#define SWEEP_BATCH 200 /* chains (advisory locks) per transaction */

/* A checkpoint signed in a writer's transaction, logged once that transaction is known to have committed. */
typedef struct pending_ckpt {
        char chain[37];
        int64_t seq;
        char hash[65];
        int64_t ts_us;
        char sig[129];
} pending_ckpt;

struct orc_auditor {
        EVP_PKEY *key; /* NULL: checkpoints are not signed */
        char key_id[MEM_AUDIT_KEY_ID_LEN + 1];
        char coordinator[160];
        uint64_t interval_ms;
        au_metric *m_checkpoints;

        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool urgent, stopping;
        char **dirty; /* chain ids written since the last sweep (lowercase uuids; "" is the fleet chain) */
        size_t n_dirty;
        pending_ckpt *pending;
        size_t n_pending, cap_pending;
};

void orc_audit_init(orc_audit *a, const char *actor) {
        *a = (orc_audit){0};
        a->actor = strdup(actor ? actor : "coordinator");
}

void orc_audit_done(orc_audit *a) {
        for (size_t i = 0; i < a->n; i++) {
                free(a->wf[i]);
                free(a->action[i]);
                free(a->detail[i]);
        }
        free(a->wf);
        free(a->action);
        free(a->detail);
        for (size_t i = 0; i < a->n_events; i++)
                free(a->events[i]);
        free(a->events);
        free(a->actor);
        *a = (orc_audit){0};
}

int orc_audit_add(orc_audit *a, const char *wf, const char *action, const char *detail) {
        if (a->n == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 16;
                char **w = reallocarray(a->wf, cap, sizeof(char *));
                if (w)
                        a->wf = w;
                char **ac = reallocarray(a->action, cap, sizeof(char *));
                if (ac)
                        a->action = ac;
                char **d = reallocarray(a->detail, cap, sizeof(char *));
                if (d)
                        a->detail = d;
                if (!w || !ac || !d)
                        return -ENOMEM;
                a->cap = cap;
        }
        a->wf[a->n] = wf ? strdup(wf) : NULL;
        a->action[a->n] = strdup(action);
        a->detail[a->n] = strdup(detail ? detail : "{}");
        if ((wf && !a->wf[a->n]) || !a->action[a->n] || !a->detail[a->n]) {
                free(a->wf[a->n]);
                free(a->action[a->n]);
                free(a->detail[a->n]);
                return -ENOMEM;
        }
        a->n++;
        return 0;
}

int orc_audit_event(orc_audit *a, char *json) {
        if (!json)
                return -ENOMEM;
        if (a->n_events == a->cap_events) {
                size_t cap = a->cap_events ? a->cap_events * 2 : 16;
                char **e = reallocarray(a->events, cap, sizeof(char *));
                if (!e) {
                        free(json);
                        return -ENOMEM;
                }
                a->events = e;
                a->cap_events = cap;
        }
        a->events[a->n_events++] = json;
        return 0;
}

static int cmp_nullable(const char *a, const char *b) {
        if (!a || !b)
                return a ? 1 : (b ? -1 : 0);
        return strcmp(a, b);
}

/* A chain id as the trigger names it: the lowercase uuid, "" for the fleet chain. */
static void chain_name(const char *wf, char out[37]) {
        size_t i = 0;
        for (; wf && wf[i] && i < 36; i++)
                out[i] = (char) tolower((unsigned char) wf[i]);
        out[i] = '\0';
}

/* Remembers that these chains moved (rows not yet committed: the sweep waits for their lock). */
static void auditor_mark(orc_auditor *au, char *const *wf, size_t n, bool urgent) {
        pthread_mutex_lock(&au->lock);
        for (size_t i = 0; i < n; i++) {
                char name[37];
                if (i > 0 && !cmp_nullable(wf[i - 1], wf[i]))
                        continue;
                chain_name(wf[i], name);
                if (au->n_dirty > 0 && strcmp(au->dirty[au->n_dirty - 1], name) == 0)
                        continue;
                au_strv_push(&au->dirty, &au->n_dirty, name);
        }
        if (urgent) {
                au->urgent = true;
                pthread_cond_signal(&au->cond);
        }
        pthread_mutex_unlock(&au->lock);
}

static void auditor_pend(orc_auditor *au, const pending_ckpt *p, size_t n) {
        pthread_mutex_lock(&au->lock);
        for (size_t i = 0; i < n; i++) {
                if (au->n_pending == au->cap_pending) {
                        size_t cap = au->cap_pending ? au->cap_pending * 2 : 16;
                        pending_ckpt *np = reallocarray(au->pending, cap, sizeof(*np));
                        if (!np)
                                break;
                        au->pending = np;
                        au->cap_pending = cap;
                }
                au->pending[au->n_pending++] = p[i];
        }
        au->urgent = true;
        pthread_cond_signal(&au->cond);
        pthread_mutex_unlock(&au->lock);
}

/*
 * Signs these heads (chain "" is the fleet) and INSERTs the checkpoints; fills
 * out[0..n) for the log. Returns 0 or a negative errno.
 */
static int sign_and_store(orc_auditor *au, PGconn *conn, const char *const *chain, const int64_t *seq,
                          const char *const *hash, size_t n, pending_ckpt *out, au_error *err) {
        _cleanup_free_ mem_audit_checkpoint *c = calloc(n ? n : 1, sizeof(mem_audit_checkpoint));

        if (!c)
                return au_error_set(err, ENOMEM, "audit checkpoints");
        for (size_t i = 0; i < n; i++) {
                unsigned char raw[MEM_AUDIT_HASH_BYTES], sig[MEM_AUDIT_SIG_BYTES];
                char msg[MEM_AUDIT_MESSAGE_MAX];
                pending_ckpt *p = &out[i];
                int len;

                *p = (pending_ckpt){.seq = seq[i], .ts_us = (int64_t) au_wall_us()};
                chain_name(chain[i], p->chain);
                snprintf(p->hash, sizeof(p->hash), "%s", hash[i]);
                if (mem_audit_unhex(hash[i], raw, sizeof(raw)) < 0)
                        return au_error_set(err, EINVAL, "audit checkpoint: bad head hash from PostgreSQL");
                len = mem_audit_checkpoint_message(p->chain[0] ? p->chain : NULL, p->seq, raw, p->ts_us, msg,
                                                   sizeof(msg));
                if (len < 0 || mem_audit_sign(au->key, msg, (size_t) len, sig) < 0)
                        return au_error_set(err, EIO, "audit checkpoint: signing failed");
                mem_audit_hex(sig, sizeof(sig), p->sig);
                c[i] = (mem_audit_checkpoint){p->chain, p->seq, p->hash, p->ts_us, p->sig};
        }
        return mem_store_audit_checkpoints_add(conn, c, n, au->key_id, au->coordinator, err);
}

/*
 * One JSON line per checkpoint on stderr (the coordinator's log, journald),
 * whatever log_level says: the copy of the checkpoints that PostgreSQL does not hold.
 */
static void log_checkpoint(const orc_auditor *au, const pending_ckpt *p) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_free_ char *line = NULL;
        char ts[64];

        if (!g)
                return;
        au_iso8601_now(ts, sizeof(ts));
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "ts", ts);
        au_json_gen_kv_string(g, "level", "notice");
        au_json_gen_kv_string(g, "msg", "audit checkpoint");
        au_json_gen_kv_string(g, "coordinator", au->coordinator);
        au_json_gen_string(g, "audit_checkpoint");
        au_json_gen_map_open(g);
        au_json_gen_string(g, "workflow");
        if (p->chain[0])
                au_json_gen_string(g, p->chain);
        else
                au_json_gen_null(g);
        au_json_gen_string(g, "seq");
        au_json_gen_int64(g, p->seq);
        au_json_gen_kv_string(g, "hash", p->hash);
        au_json_gen_string(g, "ts_epoch_us");
        au_json_gen_int64(g, p->ts_us);
        au_json_gen_kv_string(g, "key_id", au->key_id);
        au_json_gen_kv_string(g, "signature", p->sig);
        au_json_gen_map_close(g);
        au_json_gen_map_close(g);
        line = au_json_gen_finish(g, NULL);
        if (!line)
                return;
        flockfile(stderr);
        fputs(line, stderr);
        fputc('\n', stderr);
        fflush(stderr);
        funlockfile(stderr);
}

/*
 * The rows (memory/store-audit.c chains them), then COMMIT when commit is set
 * (in the INSERT's round trip when no checkpoint is signed).
 */
static int audit_write(orc_coord *c, PGconn *conn, orc_audit *a, bool commit, au_error *err) {
        _cleanup_free_ size_t *order = NULL;
        _cleanup_free_ mem_audit_row *rows = NULL;
        _cleanup_free_ char **wf = NULL;
        _cleanup_free_ mem_audit_head *heads = NULL;
        size_t n_heads = 0;
        bool final = false;
        int r;

        if (a->n == 0)
                return commit ? mem_pg_commit(conn, err) : 0;
        order = calloc(a->n, sizeof(size_t));
        rows = calloc(a->n, sizeof(mem_audit_row));
        wf = calloc(a->n, sizeof(char *));
        if (!order || !rows || !wf)
                return au_error_set(err, ENOMEM, "audit rows");
        /* Stable insertion sort by workflow: each chain's rows keep their order. */
        for (size_t i = 0; i < a->n; i++) {
                size_t j = i;
                while (j > 0 && cmp_nullable(a->wf[order[j - 1]], a->wf[i]) > 0) {
                        order[j] = order[j - 1];
                        j--;
                }
                order[j] = i;
        }
        for (size_t i = 0; i < a->n; i++) {
                wf[i] = a->wf[order[i]];
                rows[i] = (mem_audit_row){wf[i], a->action[order[i]], a->detail[order[i]]};
                final = final || (wf[i] && strcmp(rows[i].action, "workflow_finished") == 0);
        }
        if (!final || !c->auditor || !c->auditor->key) {
                r = mem_store_audit_append(conn, a->actor, rows, a->n, commit ? MEM_AUDIT_COMMIT : 0, NULL,
                                           NULL, err);
                commit = false;
        } else {
                /*
                 * A workflow ends here: its head is signed in this same transaction, so that
                 * nobody sees it finished before its trail is covered by a checkpoint.
                 */
                r = mem_store_audit_append(conn, a->actor, rows, a->n, 0, &heads, &n_heads, err);
                if (r >= 0) {
                        size_t k = 0;
                        _cleanup_free_ const char **hc = calloc(n_heads + 1, sizeof(char *)),
                                                  **hh = calloc(n_heads + 1, sizeof(char *));
                        _cleanup_free_ int64_t *hs = calloc(n_heads + 1, sizeof(int64_t));
                        _cleanup_free_ pending_ckpt *out = calloc(n_heads + 1, sizeof(pending_ckpt));
                        if (!hc || !hh || !hs || !out)
                                return au_error_set(err, ENOMEM, "audit checkpoints");
                        for (size_t i = 0; i < n_heads; i++) {
                                const char *w = heads[i].chain;
                                bool ends = false;
                                for (size_t j = 0; w[0] && j < a->n && !ends; j++)
                                        ends = wf[j] && strcasecmp(wf[j], w) == 0 &&
                                               strcmp(rows[j].action, "workflow_finished") == 0;
                                if (!ends)
                                        continue;
                                hc[k] = w;
                                hs[k] = heads[i].seq;
                                hh[k] = heads[i].hash;
                                k++;
                        }
                        if (k > 0)
                                r = sign_and_store(c->auditor, conn, hc, hs, hh, k, out, err);
                        if (r >= 0 && k > 0)
                                auditor_pend(c->auditor, out, k);
                }
        }
        if (r >= 0 && commit)
                r = mem_pg_commit(conn, err);
        if (r >= 0) {
                orc_metric_add(c, c->m_audit_rows, NULL, (double) a->n);
                if (c->auditor)
                        auditor_mark(c->auditor, wf, a->n, false);
        }
        return r;
}

int orc_audit_flush(orc_coord *c, PGconn *conn, orc_audit *a, au_error *err) {
        return audit_write(c, conn, a, false, err);
}

int orc_audit_flush_commit(orc_coord *c, PGconn *conn, orc_audit *a, au_error *err) {
        return audit_write(c, conn, a, true, err);
}

void orc_audit_send_events(orc_audit *a, redisContext *rc) {
        if (!rc || a->n_events == 0)
                return;
        for (size_t i = 0; i < a->n_events; i++)
                redisAppendCommand(rc, "XADD autoos:events MAXLEN ~ 10000 * event %s", a->events[i]);
        for (size_t i = 0; i < a->n_events; i++) {
                redisReply *reply = NULL;
                if (redisGetReply(rc, (void **) &reply) != REDIS_OK)
                        break;
                freeReplyObject(reply);
        }
}

char *orc_json_event(const char *type, const char *wf, const char *step, const char *const *kv) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        char buf[64];

        if (!g)
                return NULL;
        snprintf(buf, sizeof(buf), "%" PRIu64, au_wall_ms());
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "type", type);
        if (wf)
                au_json_gen_kv_string(g, "workflow", wf);
        if (step)
                au_json_gen_kv_string(g, "step", step);
        for (size_t i = 0; kv && kv[i]; i += 2)
                if (kv[i + 1])
                        au_json_gen_kv_string(g, kv[i], kv[i + 1]);
        au_json_gen_string(g, "ts_ms");
        yajl_gen_number(g, buf, strlen(buf));
        au_json_gen_map_close(g);
        return au_json_gen_finish(g, NULL);
}

void orc_workflow_audit(orc_coord *c, const char *id, bool verify, orc_reply *ret) {
        _cleanup_pgresult_ PGresult *wf = NULL, *rows = NULL, *ver = NULL, *ckpts = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        au_error err = {0};
        PGconn *conn;
        int r;

        if (!orc_valid_uuid(id)) {
                orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%.64s'", id);
                return;
        }
        if (!(conn = orc_get_conn(c, ret)))
                return;
        r = mem_store_audit_trail(conn, id, verify, &wf, &rows, &ckpts, &ver, &err);
        orc_pool_put(c, conn);
        if (r < 0) {
                orc_reply_db_error(c, ret, r, &err);
                return;
        }
        if (PQntuples(wf) == 0) {
                orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%s'", id);
                return;
        }
        g = au_json_gen_new(false);
        if (!g) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "workflow", id);
        au_json_gen_string(g, "rows");
        au_json_gen_array_open(g);
        for (int i = 0; i < PQntuples(rows); i++) {
                au_json_gen_map_open(g);
                orc_gen_kv_num(g, "seq", mem_pg_value(rows, i, 0));
                orc_gen_kv_text(g, "ts", mem_pg_value(rows, i, 1));
                orc_gen_kv_num(g, "ts_epoch_us", mem_pg_value(rows, i, 2));
                orc_gen_kv_text(g, "actor", mem_pg_value(rows, i, 3));
                orc_gen_kv_text(g, "action", mem_pg_value(rows, i, 4));
                orc_gen_kv_raw(g, "detail", mem_pg_value(rows, i, 5));
                orc_gen_kv_text(g, "prev_hash", mem_pg_value(rows, i, 6));
                orc_gen_kv_text(g, "hash", mem_pg_value(rows, i, 7));
                au_json_gen_map_close(g);
        }
        au_json_gen_array_close(g);
        au_json_gen_string(g, "checkpoints");
        au_json_gen_array_open(g);
        for (int i = 0; i < PQntuples(ckpts); i++) {
                au_json_gen_map_open(g);
                orc_gen_kv_num(g, "seq", mem_pg_value(ckpts, i, 0));
                orc_gen_kv_text(g, "hash", mem_pg_value(ckpts, i, 1));
                orc_gen_kv_num(g, "ts_epoch_us", mem_pg_value(ckpts, i, 2));
                orc_gen_kv_text(g, "key_id", mem_pg_value(ckpts, i, 3));
                orc_gen_kv_text(g, "signature", mem_pg_value(ckpts, i, 4));
                orc_gen_kv_text(g, "coordinator", mem_pg_value(ckpts, i, 5));
                au_json_gen_map_close(g);
        }
        au_json_gen_array_close(g);
        if (verify) {
                /* A trail without rows proves nothing: it does not verify (first bad: seq 1). */
                const char *bad = PQntuples(rows) == 0 ? "1" : mem_pg_value(ver, 0, 0);
                au_json_gen_string(g, "verify");
                au_json_gen_map_open(g);
                au_json_gen_kv_bool(g, "ok", bad == NULL);
                au_json_gen_kv_uint64(g, "rows", (uint64_t) PQntuples(rows));
                orc_gen_kv_num(g, "first_bad_seq", bad);
                au_json_gen_map_close(g);
        }
        au_json_gen_map_close(g);
        orc_reply_json(ret, 200, g);
}

/* ---- the auditor: signed checkpoints of chain heads ------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Signs the heads of these chains ("" is the fleet chain) that moved past their
 * last checkpoint by this key, and confirms the checkpoints signed in writers'
 * transactions, in one transaction; logs both once it has committed. The
 * chains' advisory locks are taken first (in the writers' order), so a
 * writer's transaction has ended before its chain's head is read.
 */
static int sweep(orc_auditor *au, PGconn *conn, char **chains, size_t n, const pending_ckpt *pend,
                 size_t n_pend, unsigned *ret_signed, au_error *err) {
        _cleanup_pgresult_ PGresult *heads = NULL, *fleet = NULL, *confirmed = NULL;
        _cleanup_free_ char **locks = calloc(n + n_pend + 1, sizeof(char *));
        _cleanup_free_ char **wfs = calloc(n + 1, sizeof(char *));
        _cleanup_free_ char **pw = calloc(n_pend + 1, sizeof(char *)),
                            **ps = calloc(n_pend + 1, sizeof(char *));
        _cleanup_free_ char *pnums = calloc(n_pend + 1, 24);
        _cleanup_free_ const char **hc = calloc(n + 2, sizeof(char *)), **hh = calloc(n + 2, sizeof(char *));
        _cleanup_free_ int64_t *hs = calloc(n + 2, sizeof(int64_t));
        _cleanup_free_ pending_ckpt *out = calloc(n + 2, sizeof(pending_ckpt));
        size_t n_locks = 0, n_wfs = 0, k = 0;
        bool has_fleet = false;
        int r;

        if (!locks || !wfs || !pw || !ps || !pnums || !hc || !hh || !hs || !out)
                return au_error_set(err, ENOMEM, "audit sweep");
        for (size_t i = 0; i < n; i++) {
                if (!chains[i][0]) {
                        has_fleet = true;
                        continue;
                }
                locks[n_locks++] = chains[i];
                wfs[n_wfs++] = chains[i];
        }
        for (size_t i = 0; i < n_pend; i++) {
                locks[n_locks++] = (char *) pend[i].chain;
                pw[i] = (char *) pend[i].chain;
                ps[i] = pnums + 24 * i;
                snprintf(ps[i], 24, "%" PRId64, pend[i].seq);
        }
        qsort(locks, n_locks, sizeof(char *), cmp_str);
        /* The fleet chain (NULL) sorts first, as orc_audit_flush() orders the writers' rows. */
        if (has_fleet) {
                memmove(locks + 1, locks, n_locks * sizeof(char *));
                locks[0] = NULL;
                n_locks++;
        }

        r = mem_pg_begin(conn, err);
        if (r < 0)
                return r;
        r = mem_store_audit_lock_chains(conn, locks, n_locks, err);
        if (r >= 0 && n_wfs > 0)
                r = mem_store_audit_heads(conn, wfs, n_wfs, au->key_id, &heads, err);
        if (r >= 0 && has_fleet)
                r = mem_store_audit_fleet_head(conn, au->key_id, &fleet, err);
        if (r >= 0 && n_pend > 0)
                r = mem_store_audit_checkpoints_stored(conn, pw, ps, n_pend, au->key_id, &confirmed, err);
        for (int pass = 0; r >= 0 && pass < 2; pass++) {
                PGresult *res = pass == 0 ? heads : fleet;
                for (int i = 0; res && i < PQntuples(res); i++) {
                        int64_t seq = strtoll(mem_pg_value(res, i, 1) ?: "0", NULL, 10);
                        const char *last = mem_pg_value(res, i, 3);
                        if (last && strtoll(last, NULL, 10) >= seq)
                                continue;
                        hc[k] = mem_pg_value(res, i, 0) ?: "";
                        hs[k] = seq;
                        hh[k] = mem_pg_value(res, i, 2) ?: "";
                        k++;
                }
        }
        if (r >= 0 && k > 0)
                r = sign_and_store(au, conn, hc, hs, hh, k, out, err);
        if (r >= 0)
                r = mem_pg_commit(conn, err);
        if (r < 0) {
                mem_pg_rollback(conn);
                return r;
        }
        for (int i = 0; confirmed && i < PQntuples(confirmed); i++)
                for (size_t j = 0; j < n_pend; j++)
                        if (strcmp(pend[j].chain, mem_pg_value(confirmed, i, 0) ?: "") == 0 &&
                            pend[j].seq == strtoll(mem_pg_value(confirmed, i, 1) ?: "0", NULL, 10)) {
                                log_checkpoint(au, &pend[j]);
                                break;
                        }
        for (size_t i = 0; i < k; i++)
                log_checkpoint(au, &out[i]);
        if (ret_signed)
                *ret_signed = (unsigned) k + (unsigned) (confirmed ? PQntuples(confirmed) : 0);
        return 0;
}

/* Sweeps chains[0..n) in batches; returns the first failure. */
static int sweep_all(orc_auditor *au, PGconn *conn, char **chains, size_t n, const pending_ckpt *pend,
                     size_t n_pend, unsigned *ret_signed, au_error *err) {
        unsigned total = 0;
        size_t i = 0;
        int r = 0;

        qsort(chains, n, sizeof(char *), cmp_str);
        do {
                size_t m = n - i < SWEEP_BATCH ? n - i : SWEEP_BATCH, w = 0;
                _cleanup_free_ char **batch = calloc(m + 1, sizeof(char *));
                unsigned done = 0;
                if (!batch)
                        return au_error_set(err, ENOMEM, "audit sweep");
                for (size_t j = 0; j < m; j++)
                        if (i + j == 0 || strcmp(chains[i + j - 1], chains[i + j]) != 0)
                                batch[w++] = chains[i + j];
                r = sweep(au, conn, batch, w, i == 0 ? pend : NULL, i == 0 ? n_pend : 0, &done, err);
                if (r < 0)
                        break;
                total += done;
                i += m;
        } while (i < n);
        if (ret_signed)
                *ret_signed = total;
        return r;
}

/* Chains to look at when starting: the fleet's and those of workflows changed recently (or all). */
static int recent_chains(PGconn *conn, bool all, char ***ret, size_t *ret_n, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        char **v = NULL;
        size_t n = 0;
        int r;

        r = mem_store_audit_workflows(conn, all, STARTUP_LOOKBACK, &res, err);
        if (r < 0)
                return r;
        if (au_strv_push(&v, &n, "") < 0)
                goto oom;
        for (int i = 0; i < PQntuples(res); i++)
                if (au_strv_push(&v, &n, mem_pg_value(res, i, 0) ?: "") < 0)
                        goto oom;
        *ret = v;
        *ret_n = n;
        return 0;
oom:
        au_strv_free(v);
        return au_error_set(err, ENOMEM, "audit chains");
}

/* Warns when the service's role could switch the audit triggers off. */
static void check_role(PGconn *conn) {
        _cleanup_pgresult_ PGresult *res = NULL;

        if (mem_store_audit_role(conn, &res, NULL) < 0 || PQntuples(res) != 1)
                return;
        if (strcmp(mem_pg_value(res, 0, 1) ?: "f", "t") == 0 ||
            strcmp(mem_pg_value(res, 0, 2) ?: "f", "t") == 0)
                log_warning(
                        "the database role '%s' is %s: it can disable the audit triggers; run --migrate as "
                        "the schema's owner (migrate_db) and give the coordinator a role that is only a "
                        "member "
                        "of autoos_app",
                        mem_pg_value(res, 0, 0) ?: "?",
                        strcmp(mem_pg_value(res, 0, 1) ?: "f", "t") == 0 ? "a superuser"
                                                                         : "the owner of audit_log");
}

static void *auditor_main(void *arg) {
        orc_coord *c = arg;
        orc_auditor *au = c->auditor;
        PGconn *conn = NULL;
        char **carry = NULL;
        size_t n_carry = 0;
        pending_ckpt *carry_p = NULL;
        size_t n_carry_p = 0;
        bool startup = true, checked = false, last = false;
        uint64_t next = 0;

        for (;;) {
                char **chains;
                size_t n;
                pending_ckpt *pend;
                size_t n_pend;
                au_error err = {0};
                int r;

                pthread_mutex_lock(&au->lock);
                while (!au->stopping && !au->urgent && au_now_ms() < next) {
                        uint64_t wait = next - au_now_ms();
                        if (wait > 250)
                                wait = 250; /* c->stop is looked at too */
                        struct timespec ts = au_deadline_after(CLOCK_REALTIME, wait);
                        pthread_cond_timedwait(&au->cond, &au->lock, &ts);
                        if (atomic_load(&c->stop))
                                au->stopping = true;
                }
                last = au->stopping;
                au->urgent = false;
                chains = au->dirty;
                n = au->n_dirty;
                pend = au->pending;
                n_pend = au->n_pending;
                au->dirty = NULL;
                au->n_dirty = 0;
                au->pending = NULL;
                au->n_pending = au->cap_pending = 0;
                pthread_mutex_unlock(&au->lock);

                /* What failed last time comes again; the fleet chain is looked at every time. */
                for (size_t i = 0; i < n; i++)
                        au_strv_push(&carry, &n_carry, chains[i]);
                au_strv_free(chains);
                au_strv_push(&carry, &n_carry, "");
                if (n_pend > 0) {
                        pending_ckpt *np = reallocarray(carry_p, n_carry_p + n_pend, sizeof(pending_ckpt));
                        if (np) {
                                memcpy(np + n_carry_p, pend, n_pend * sizeof(pending_ckpt));
                                carry_p = np;
                                n_carry_p += n_pend;
                        }
                }
                free(pend);

                if (!conn || !mem_pg_ok(conn)) {
                        mem_pg_close(conn);
                        conn = NULL;
                        if (mem_pg_connect(c->cfg.db, "autoos-coordinator auditor", &conn, &err) < 0)
                                conn = NULL;
                }
                r = -ENOTCONN;
                if (conn) {
                        if (!checked) {
                                check_role(conn);
                                checked = true;
                        }
                        if (startup) {
                                char **recent = NULL;
                                size_t n_recent = 0;
                                if (recent_chains(conn, false, &recent, &n_recent, &err) >= 0) {
                                        for (size_t i = 0; i < n_recent; i++)
                                                au_strv_push(&carry, &n_carry, recent[i]);
                                        au_strv_free(recent);
                                        startup = false;
                                }
                        }
                        unsigned signed_n = 0;
                        r = sweep_all(au, conn, carry, n_carry, carry_p, n_carry_p, &signed_n, &err);
                        if (r >= 0 && signed_n > 0)
                                orc_metric_add(c, au->m_checkpoints, NULL, signed_n);
                }
                if (r >= 0) {
                        au_strv_free(carry);
                        carry = NULL;
                        n_carry = 0;
                        free(carry_p);
                        carry_p = NULL;
                        n_carry_p = 0;
                } else if (conn && r != -ENOTCONN) /* PostgreSQL away: the monitor says so */
                        log_warning("audit checkpoints: %s (will retry)",
                                    err.msg[0] ? err.msg : strerror(-r));
                if (last)
                        break;
                next = au_now_ms() + au->interval_ms;
        }
        au_strv_free(carry);
        free(carry_p);
        mem_pg_close(conn);
        return NULL;
}

static orc_auditor *auditor_alloc(const char *coordinator, uint64_t interval_ms) {
        orc_auditor *au = calloc(1, sizeof(orc_auditor));
        if (!au)
                return NULL;
        snprintf(au->coordinator, sizeof(au->coordinator), "%s", coordinator);
        au->interval_ms = interval_ms ? interval_ms : 1000;
        pthread_mutex_init(&au->lock, NULL);
        pthread_cond_init(&au->cond, NULL);
        return au;
}

static void auditor_free(orc_auditor *au) {
        if (!au)
                return;
        EVP_PKEY_free(au->key);
        au_strv_free(au->dirty);
        free(au->pending);
        pthread_mutex_destroy(&au->lock);
        pthread_cond_destroy(&au->cond);
        free(au);
}

static int auditor_load_key(orc_auditor *au, const char *path, au_error *err) {
        int r = mem_audit_key_load_private(path, &au->key, err);
        if (r < 0)
                return r;
        return mem_audit_key_id(au->key, au->key_id) < 0 ? au_error_set(err, EINVAL, "%s: not Ed25519", path)
                                                         : 0;
}

int orc_auditor_new(orc_coord *c, au_error *err) {
        orc_auditor *au;
        int r;

        if (!c->cfg.audit_key) {
                log_warning("no audit_key: audit checkpoints are not signed, so nobody can verify the audit "
                            "trail "
                            "without trusting PostgreSQL (autoos-coordinator --create-audit-key FILE makes "
                            "one)");
                return 0;
        }
        au = auditor_alloc(c->id, c->cfg.audit_checkpoint_ms);
        if (!au)
                return au_error_set(err, ENOMEM, "auditor");
        r = auditor_load_key(au, c->cfg.audit_key, err);
        if (r < 0) {
                auditor_free(au);
                return r;
        }
        au->m_checkpoints = au_metrics_counter(c->metrics, "autoos_coordinator_audit_checkpoints_total",
                                               "Signed checkpoints of audit chain heads.", NULL);
        c->auditor = au;
        log_info("audit checkpoints signed with key %s (%s), every %" PRIu64 " ms", au->key_id,
                 c->cfg.audit_key, au->interval_ms);
        return 0;
}

int orc_auditor_start(orc_coord *c, au_error *err) {
        int r;

        if (!c->auditor)
                return 0;
        r = pthread_create(&c->auditor->thread, NULL, auditor_main, c);
        if (r != 0)
                return au_error_set(err, r, "start the auditor thread");
        c->auditor->started = true;
        return 0;
}

void orc_auditor_free(orc_coord *c) {
        orc_auditor *au = c->auditor;

        if (!au)
                return;
        if (au->started) {
                /* One last sweep signs what was written since the last one. */
                pthread_mutex_lock(&au->lock);
                au->stopping = true;
                pthread_cond_signal(&au->cond);
                pthread_mutex_unlock(&au->lock);
                pthread_join(au->thread, NULL);
        }
        auditor_free(au);
        c->auditor = NULL;
}

int orc_audit_checkpoint_all(const orc_config *cfg, unsigned *ret_signed, au_error *err) {
        orc_auditor *au;
        PGconn *conn = NULL;
        char **chains = NULL;
        size_t n = 0;
        char host[64] = "coordinator", id[160];
        int r;

        if (!cfg->audit_key)
                return au_error_set(err, EINVAL, "no audit_key (--audit-key FILE) to sign with");
        if (cfg->id)
                snprintf(id, sizeof(id), "%s", cfg->id);
        else {
                gethostname(host, sizeof(host) - 1);
                snprintf(id, sizeof(id), "%s:%d", host, (int) getpid());
        }
        au = auditor_alloc(id, 1000);
        if (!au)
                return au_error_set(err, ENOMEM, "auditor");
        r = auditor_load_key(au, cfg->audit_key, err);
        if (r >= 0)
                r = mem_pg_connect(cfg->db, "autoos-coordinator audit-checkpoint-all", &conn, err);
        if (r >= 0)
                r = recent_chains(conn, true, &chains, &n, err);
        if (r >= 0)
                r = sweep_all(au, conn, chains, n, NULL, 0, ret_signed, err);
        au_strv_free(chains);
        mem_pg_close(conn);
        auditor_free(au);
        return r;
}
