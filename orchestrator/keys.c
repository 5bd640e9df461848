/* SPDX-License-Identifier: MIT */
/*
 * API keys: the cache of key hashes the monitor reloads, authentication of
 * a presented key (constant time against every key, each match confirmed in
 * PostgreSQL so that a revocation counts at once), a bounded cache of keys
 * recently refused (so that a flood of made-up keys costs no query each),
 * key creation and revocation.
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

#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/loop.h"
#include "memory/pg.h"
#include "memory/store-keys.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/keys.h"

/*
 * Hashes of presented keys that matched no active key, direct-mapped by the
 * hash's first bytes. A refused key cannot start to work later: keys are 256
 * random bits made by --create-key, so nobody presents one before it exists,
 * and a revoked key stays revoked. Per process (one coordinator each).
 */
#define REFUSED_SLOTS 4096
#define REFUSED_TTL_MS (10u * 60 * 1000)

static struct {
        pthread_mutex_t lock;
        struct {
                unsigned char sha256[32];
                uint64_t until_ms;
        } slot[REFUSED_SLOTS];
} refused = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t refused_index(const unsigned char digest[32]) {
        return ((size_t) digest[0] << 8 | digest[1]) % REFUSED_SLOTS;
}

static bool refused_recently(const unsigned char digest[32]) {
        size_t i = refused_index(digest);
        bool hit;

        pthread_mutex_lock(&refused.lock);
        hit = refused.slot[i].until_ms > au_now_ms() && memcmp(refused.slot[i].sha256, digest, 32) == 0;
        pthread_mutex_unlock(&refused.lock);
        return hit;
}

static void refused_add(const unsigned char digest[32]) {
        size_t i = refused_index(digest);

        pthread_mutex_lock(&refused.lock);
        memcpy(refused.slot[i].sha256, digest, 32);
        refused.slot[i].until_ms = au_now_ms() + REFUSED_TTL_MS;
        pthread_mutex_unlock(&refused.lock);
}

int orc_keys_reload(orc_coord *c, PGconn *conn) {
        _cleanup_pgresult_ PGresult *res = NULL;
        orc_key *keys;
        int r, n;

        r = mem_store_keys_active(conn, &res, NULL);
        if (r < 0)
                return r;
        n = PQntuples(res);
        if (n > ORC_MAX_KEYS)
                n = ORC_MAX_KEYS;
        keys = calloc((size_t) n + 1, sizeof(orc_key));
        if (!keys)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                const char *hex = mem_pg_value(res, i, MEM_KEY_SHA256_HEX);
                snprintf(keys[i].name, sizeof(keys[i].name), "%s", mem_pg_value(res, i, MEM_KEY_NAME) ?: "");
                keys[i].role = orc_role_from_string(mem_pg_value(res, i, MEM_KEY_ROLE));
                if (!hex || au_unhex(hex, strlen(hex), keys[i].sha256, sizeof(keys[i].sha256)) < 0)
                        memset(keys[i].sha256, 0, sizeof(keys[i].sha256)); /* matches no key */
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
        char hex[65], name[129];
        orc_role role = ORC_ROLE_NONE;
        bool loaded, cached;
        PGconn *conn;
        int r;

        if (!key || !*key || strlen(key) > 512)
                return -ENOKEY;
        SHA256((const unsigned char *) key, strlen(key), digest);
        cached = key_match(c, digest, name, &role) == 0;
        if (!cached && refused_recently(digest))
                return -ENOKEY;

        /*
         * One indexed query by the key's hash (the hash of a secret says nothing
         * about it): a cached key may have been revoked a moment ago by another
         * coordinator or --revoke-key, and a key missing from the cache may have
         * been made a moment ago. The cache answers alone only while PostgreSQL
         * is away.
         */
        conn = orc_pool_get(c, NULL);
        if (!conn) {
                if (cached) {
                        memcpy(ret_name, name, sizeof(name));
                        *ret_role = role;
                        return 0;
                }
                pthread_mutex_lock(&c->keys_lock);
                loaded = c->keys_loaded;
                pthread_mutex_unlock(&c->keys_lock);
                return loaded ? -ENOKEY : -EAGAIN;
        }
        orc_hex(digest, sizeof(digest), hex);
        r = mem_store_key_by_hash(conn, hex, &res, NULL);
        if (r >= 0 && PQntuples(res) == 1) {
                if (!cached || strcmp(name, mem_pg_value(res, 0, MEM_KEY_NAME) ?: "") != 0 ||
                    role != orc_role_from_string(mem_pg_value(res, 0, MEM_KEY_ROLE)))
                        orc_keys_reload(c, conn);
        } else if (r >= 0) {
                refused_add(digest);
                if (cached) /* revoked (or deleted) since the cache was loaded */
                        orc_keys_reload(c, conn);
        }
        orc_pool_put(c, conn);
        if (r < 0) {
                if (!cached)
                        return -EAGAIN;
                memcpy(ret_name, name, sizeof(name));
                *ret_role = role;
                return 0;
        }
        if (PQntuples(res) != 1)
                return -ENOKEY;
        return key_match(c, digest, ret_name, ret_role);
}

orc_role orc_key_role(orc_coord *c, const char *name) {
        orc_role role = ORC_ROLE_NONE;

        if (!name)
                return ORC_ROLE_NONE;
        pthread_mutex_lock(&c->keys_lock);
        for (size_t i = 0; i < c->n_keys; i++)
                if (strcmp(c->keys[i].name, name) == 0) {
                        role = c->keys[i].role;
                        break;
                }
        pthread_mutex_unlock(&c->keys_lock);
        return role;
}

/* A name the API can carry in a path: 1 to 128 bytes of printable ASCII, no '/'. */
static bool key_name_valid(const char *name) {
        size_t i;

        for (i = 0; name && name[i]; i++)
                if (i >= ORC_MAX_KEY_NAME || (unsigned char) name[i] < 0x21 ||
                    (unsigned char) name[i] > 0x7e || name[i] == '/')
                        return false;
        return name && i > 0;
}

void orc_key_revoke(orc_coord *c, const char *actor, const char *name, orc_reply *ret) {
        au_error err = {0};
        PGconn *conn;
        int r;

        if (!key_name_valid(name)) {
                orc_reply_error(ret, 404, "not_found", NULL, "no key '%.64s'", name ? name : "");
                return;
        }
        if (!(conn = orc_get_conn(c, ret)))
                return;
        r = mem_store_key_revoke(conn, name, actor, &err);
        if (r >= 0)
                r = orc_keys_reload(c, conn);
        orc_pool_put(c, conn);
        if (orc_reply_failed(c, ret, r, &err, "no active key named", name) < 0)
                return;
        log_info("key '%s' revoked by %s", name, actor);
        orc_reply_name_flag(ret, name, "revoked");
}

int orc_revoke_key(const orc_config *cfg, const char *name, au_error *err) {
        PGconn *conn = NULL;
        int r;

        if (!name || !*name || strlen(name) > ORC_MAX_KEY_NAME)
                return au_error_set_field(err, "name", "key name: 1 to 128 characters");
        r = mem_pg_connect(cfg->db, "autoos-coordinator revoke-key", &conn, err);
        if (r < 0)
                return r;
        r = mem_store_key_revoke(conn, name, "admin", err);
        mem_pg_close(conn);
        if (r == -ENOENT) {
                au_error_clear(err);
                return au_error_set_field(err, "name", "no active key named '%s'", name);
        }
        return r;
}

int orc_create_key(const orc_config *cfg, const char *name, orc_role role, char **ret_key, au_error *err) {
        unsigned char raw[32], digest[32];
        char hex[65], dhex[65], *key;
        PGconn *conn = NULL;
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
        r = mem_store_key_create(conn, name, orc_role_to_string(role), dhex, err);
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
