/* SPDX-License-Identifier: MIT */
/*
 * API keys: the cache of key hashes the monitor reloads, authentication of
 * a presented key (constant time against every key), and key creation.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/log.h"
#include "common/loop.h"
#include "memory/pg.h"
#include "orchestrator/coordinator-internal.h"

int orc_keys_reload(orc_coord *c, PGconn *conn) {
        _cleanup_pgresult_ PGresult *res = NULL;
        orc_key *keys;
        int r, n;

        r = mem_pg_exec(
                conn, "SELECT name, role, encode(key_sha256, 'hex') FROM api_keys WHERE revoked_at IS NULL",
                0, NULL, &res, NULL);
        if (r < 0)
                return r;
        n = PQntuples(res);
        if (n > ORC_MAX_KEYS)
                n = ORC_MAX_KEYS;
        keys = calloc((size_t) n + 1, sizeof(orc_key));
        if (!keys)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                const char *hex = mem_pg_value(res, i, 2);
                snprintf(keys[i].name, sizeof(keys[i].name), "%s", mem_pg_value(res, i, 0) ?: "");
                keys[i].role = orc_role_from_string(mem_pg_value(res, i, 1));
                for (int b = 0; hex && b < 32; b++) {
                        unsigned v;
                        sscanf(hex + 2 * b, "%2x", &v);
                        keys[i].sha256[b] = (unsigned char) v;
                }
        }
        pthread_mutex_lock(&c->keys_lock);
        free(c->keys);
        c->keys = keys;
        c->n_keys = (size_t) n;
        c->keys_loaded = true;
        c->keys_loaded_ms = au_now_ms();
        pthread_mutex_unlock(&c->keys_lock);
        return 0;
}

static int key_match(orc_coord *c, const unsigned char digest[32], char ret_name[static 129],
                     orc_role *ret_role) {
        int found = -1;

        pthread_mutex_lock(&c->keys_lock);
        /* Every key is compared, in constant time each, whatever matches. */
        for (size_t i = 0; i < c->n_keys; i++)
                if (CRYPTO_memcmp(c->keys[i].sha256, digest, 32) == 0)
                        found = (int) i;
        if (found >= 0) {
                memcpy(ret_name, c->keys[found].name, 129);
                *ret_role = c->keys[found].role;
        }
        pthread_mutex_unlock(&c->keys_lock);
        return found >= 0 ? 0 : -ENOKEY;
}

int orc_auth(orc_coord *c, const char *key, char ret_name[static 129], orc_role *ret_role) {
        _cleanup_pgresult_ PGresult *res = NULL;
        unsigned char digest[32];
        char hex[65];
        const char *params[1] = {hex};
        bool loaded;
        PGconn *conn;
        int r;

        if (!key || !*key || strlen(key) > 512)
                return -ENOKEY;
        SHA256((const unsigned char *) key, strlen(key), digest);
        if (key_match(c, digest, ret_name, ret_role) == 0)
                return 0;

        /*
         * Not in the cache: a key made a moment ago is looked up by its hash (an indexed
         * query; the hash of a secret says nothing about it), and the cache reloaded.
         */
        conn = orc_pool_get(c, NULL);
        if (!conn) {
                pthread_mutex_lock(&c->keys_lock);
                loaded = c->keys_loaded;
                pthread_mutex_unlock(&c->keys_lock);
                return loaded ? -ENOKEY : -EAGAIN;
        }
        orc_hex(digest, sizeof(digest), hex);
        r = mem_pg_exec(conn,
                        "SELECT 1 FROM api_keys WHERE key_sha256 = decode($1, 'hex') AND revoked_at IS NULL",
                        1, params, &res, NULL);
        if (r >= 0 && PQntuples(res) == 1)
                orc_keys_reload(c, conn);
        orc_pool_put(c, conn);
        if (r < 0)
                return -EAGAIN;
        return key_match(c, digest, ret_name, ret_role);
}

int orc_create_key(const orc_config *cfg, const char *name, orc_role role, char **ret_key, au_error *err) {
        unsigned char raw[32], digest[32];
        char hex[65], dhex[65], *key;
        PGconn *conn = NULL;
        const char *params[3];
        int r;

        if (!name || !*name || strlen(name) > 128)
                return au_error_set_field(err, "name", "key name: 1 to 128 characters");
        if (!orc_role_to_string(role))
                return au_error_set_field(err, "role", "role: expected viewer, operator or admin");
        if (RAND_bytes(raw, sizeof(raw)) != 1)
                return au_error_set(err, EIO, "random bytes for the key");
        orc_hex(raw, sizeof(raw), hex);
        if (asprintf(&key, "aok_%s", hex) < 0)
                return au_error_set(err, ENOMEM, "key");
        SHA256((const unsigned char *) key, strlen(key), digest);
        orc_hex(digest, sizeof(digest), dhex);
        r = mem_pg_connect(cfg->db, "autoos-coordinator create-key", &conn, err);
        if (r < 0) {
                free(key);
                return r;
        }
        params[0] = name;
        params[1] = orc_role_to_string(role);
        params[2] = dhex;
        r = mem_pg_exec(conn,
                        "INSERT INTO api_keys (name, role, key_sha256) VALUES ($1, $2, decode($3, 'hex'))",
                        3, params, NULL, err);
        if (r >= 0) {
                char detail[300];
                const char *p2[2] = {name, detail};
                snprintf(detail, sizeof(detail), "{\"role\":\"%s\"}", orc_role_to_string(role));
                mem_pg_exec(conn,
                            "INSERT INTO audit_log (workflow_id, actor, action, detail) "
                            "VALUES (NULL, 'admin', 'key_created', jsonb_build_object('name', $1::text) || "
                            "$2::jsonb)",
                            2, p2, NULL, NULL);
        }
        mem_pg_close(conn);
        if (r == -EEXIST) {
                free(key);
                au_error_clear(err);
                return au_error_set_field(err, "name", "a key named '%s' exists already", name);
        }
        if (r < 0) {
                free(key);
                return r;
        }
        *ret_key = key;
        return 0;
}
