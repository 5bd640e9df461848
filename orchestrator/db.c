/* SPDX-License-Identifier: MIT */
/*
 * The coordinator's PostgreSQL connections for API requests (a fixed pool,
 * reconnecting as needed), and migrations.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memory/pg.h"
#include "orchestrator/coordinator-internal.h"

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

int orc_migrate(const orc_config *cfg, unsigned *ret_applied, au_error *err) {
        PGconn *conn = NULL;
        int r = mem_pg_connect(cfg->migrate_db ? cfg->migrate_db : cfg->db, "autoos-coordinator migrate",
                               &conn, err);
        if (r < 0)
                return r;
        r = mem_pg_migrate(conn, cfg->sql_dir, ret_applied, err);
        mem_pg_close(conn);
        return r;
}
