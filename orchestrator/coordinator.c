/* SPDX-License-Identifier: MIT */
/*
 * The coordinator's lifecycle: it loads its settings, keys and policy,
 * checks the schema, and starts and stops its threads (the monitor in
 * nodes.c, the scheduler and the results reader in scheduler.c, the
 * auditor in audit.c). What they share is in hub.c and db.c.
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

/* ---- lifecycle ---------------------------------------------------------------- */

/*
 * The model providers: the fabric setting's file, which must load; without the
 * setting, FAB_CONFIG_PATH when it exists; else none (c->fabric stays NULL).
 */
static int fabric_load(orc_coord *c, au_error *err) {
        const char *path = c->cfg.fabric ? c->cfg.fabric : FAB_CONFIG_PATH;
        fab_options opts = {0};
        int r;

        if (!c->cfg.fabric && access(path, F_OK) < 0)
                return 0;
        /* the fabric's metrics in a registry of their own, which it updates under its own lock */
        if ((r = au_metrics_new(&c->fabric_metrics)) < 0)
                return au_error_set(err, -r, "metrics");
        opts.metrics = c->fabric_metrics;
        r = fab_new_from_file(path, &opts, &c->fabric, err);
        if (r < 0)
                return r;
        log_info("model providers from %s", path);
        return 0;
}

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
        c->cfg.secret_key_file = cfg->secret_key_file ? strdup(cfg->secret_key_file) : NULL;
        c->cfg.fabric = cfg->fabric ? strdup(cfg->fabric) : NULL;
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
        /* Egress is the node's to give (its settings name an uplink and a pool): the
         * coordinator checks an egress spec against the policy's allowlist and limits and
         * leaves "not configured here" to the node that runs it (issue 13). */
        c->policy.egress_configured = true;
        if ((r = orc_metrics_setup(c)) < 0) {
                orc_coord_free(TAKE_PTR(c));
                return au_error_set(err, -r, "metrics");
        }
        if ((r = fabric_load(c, err)) < 0) {
                orc_coord_free(TAKE_PTR(c));
                return r;
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

        if ((r = pthread_create(&c->monitor_thread, NULL, orc_monitor_main, c)) != 0)
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
        if ((r = orc_fabric_workers_start(c, err)) < 0)
                return r;
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
        orc_fabric_workers_stop(c);
        orc_auditor_free(c);
        c->fabric = fab_free(c->fabric);
        au_metrics_free(c->fabric_metrics);
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
