/* SPDX-License-Identifier: MIT */
/*
 * The fleet attack "a revoked key": a key made for the attack (its SHA-256
 * inserted by the schema's owner, --db), used once so that the coordinator
 * caches it, then revoked in PostgreSQL behind the coordinator's back (as
 * autoos-coordinator --revoke-key or another coordinator does). Contained
 * when the very next request with it is refused 401. Needs the owner's URL
 * (--db); skipped without it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "adversarial/adversarial.h"
#include "common/buf.h"
#include "common/macro.h"

/* GET path with key; the HTTP status (0: no answer). */
static long get(const adv_fleet_target *t, const char *key, const char *path) {
        return adv_api_json(t, "GET", path, key, NULL, NULL);
}

/* Runs q with params on conn; false (why in buf) when it failed. */
static bool sql(PGconn *conn, const char *q, int n, const char *const *params, char *why, size_t size) {
        return adv_sql(conn, q, n, params, why, size);
}

void adv_revoked_key(const adv_fleet_target *t, adv_row *row) {
        unsigned char raw[32], digest[32];
        char key[70], dhex[65], name[64], why[256];
        const char *params[2] = {name, dhex};
        PGconn *conn = NULL;
        long before, after, again;

        if (!t->db_url || !t->api_url) {
                row->verdict = ADV_SKIPPED;
                snprintf(row->note, sizeof(row->note), "needs --db (PostgreSQL as the schema's owner)");
                return;
        }
        if (RAND_bytes(raw, sizeof(raw)) != 1) {
                row->verdict = ADV_ERROR;
                snprintf(row->note, sizeof(row->note), "no random bytes for the key");
                return;
        }
        memcpy(key, "aok_", 4);
        au_hex(raw, sizeof(raw), key + 4);
        SHA256((const unsigned char *) key, strlen(key), digest);
        au_hex(digest, sizeof(digest), dhex);
        snprintf(name, sizeof(name), "adv-revoked-%ld-%ld", (long) getpid(), (long) time(NULL));

        conn = PQconnectdb(t->db_url);
        if (!conn || PQstatus(conn) != CONNECTION_OK) {
                row->verdict = ADV_ERROR;
                snprintf(row->note, sizeof(row->note), "connect to --db failed");
                goto out;
        }
        PQsetNoticeProcessor(conn, NULL, NULL);
        if (!sql(conn,
                 "INSERT INTO api_keys (name, role, key_sha256) VALUES ($1, 'viewer', decode($2, 'hex'))", 2,
                 params, why, sizeof(why))) {
                row->verdict = ADV_ERROR;
                snprintf(row->note, sizeof(row->note), "make the key: %.200s", why);
                goto out;
        }
        before = get(t, key, "/v1/nodes");
        again = get(t, key, "/v1/nodes"); /* now certainly from the coordinator's cache */
        if (before != 200 || again != 200) {
                row->verdict = ADV_ERROR;
                snprintf(row->note, sizeof(row->note), "the fresh key was not accepted (HTTP %ld, %ld)",
                         before, again);
                goto out;
        }
        if (!sql(conn, "UPDATE api_keys SET revoked_at = now() WHERE name = $1", 1, params, why,
                 sizeof(why))) {
                row->verdict = ADV_ERROR;
                snprintf(row->note, sizeof(row->note), "revoke the key: %.200s", why);
                goto out;
        }
        after = get(t, key, "/v1/nodes");
        if (after == 401) {
                row->verdict = ADV_CONTAINED;
                snprintf(row->observed, sizeof(row->observed),
                         "200 twice (cached), revoked in PostgreSQL, the very next request 401");
        } else {
                row->verdict = ADV_NOT_CONTAINED;
                snprintf(row->observed, sizeof(row->observed),
                         "revoked in PostgreSQL, yet the next request was answered HTTP %ld", after);
        }
out:
        explicit_bzero(key, sizeof(key));
        explicit_bzero(raw, sizeof(raw));
        PQfinish(conn);
}
