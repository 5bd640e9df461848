/* SPDX-License-Identifier: MIT */
/* Secrets: the encrypted store, its admin API, the check at submission and the sealing at dispatch
 * (secrets.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "common/json.h"
#include "common/log.h"
#include "common/macro.h"
#include "memory/pg.h"
#include "memory/secret.h"
#include "memory/store-secrets.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/identity.h"
#include "orchestrator/secrets.h"

/* ---- the key ---------------------------------------------------------------------------------- */

static void key_id_of(const uint8_t key[MEM_SEAL_KEY_BYTES], char ret[17]) {
        uint8_t d[32];
        SHA256(key, MEM_SEAL_KEY_BYTES, d);
        mem_seal_hex(d, 8, ret);
}

int orc_secret_key_load(const orc_config *cfg, bool create, uint8_t ret[MEM_SEAL_KEY_BYTES], char ret_id[17],
                        au_error *err) {
        au_error e = {0};
        int r;

        if (!cfg->secret_key_file || !*cfg->secret_key_file)
                return au_error_set_field(err, "secret_key_file", "no secret_key_file is set");
        r = mem_seal_key_load(cfg->secret_key_file, ret, &e);
        if (r == -ENOENT && create) {
                uint8_t k[MEM_SEAL_KEY_BYTES];
                if (mem_seal_random(k, sizeof(k)) < 0)
                        return au_error_set(err, EIO, "random bytes for the secret key");
                r = mem_seal_key_save(cfg->secret_key_file, k, err);
                if (r == 0) {
                        memcpy(ret, k, sizeof(k));
                        au_log_kv(AU_LOG_NOTICE, NULL,
                                  "created the secret key %s (mode 0600); keep it, and give it to every "
                                  "coordinator of this fleet: without it no stored secret can be read",
                                  cfg->secret_key_file);
                }
                OPENSSL_cleanse(k, sizeof(k));
                if (r < 0)
                        return r;
        } else if (r < 0) {
                if (err && !au_error_isset(err))
                        *err = e;
                return r;
        }
        key_id_of(ret, ret_id);
        return 0;
}

/* ---- the store -------------------------------------------------------------------------------- */

/* Creates or rotates name in one transaction with its audit row. -EEXIST: created meanwhile by someone else.
 */
static int store_put(PGconn *conn, const uint8_t key[MEM_SEAL_KEY_BYTES], const char *key_id,
                     const char *actor, const char *name, const char *value, size_t len,
                     unsigned *ret_version, bool *ret_created, au_error *err) {
        _cleanup_free_ uint8_t *box = NULL;
        _cleanup_free_ char *ct = NULL;
        size_t box_len = 0;
        char version[16], nonce[2 * MEM_SECRET_NONCE_BYTES + 1], tag[2 * MEM_SECRET_TAG_BYTES + 1];
        unsigned v = 0;
        bool exists;
        int r;

        r = mem_pg_begin(conn, err);
        if (r < 0)
                return r;
        r = mem_store_secret_lock(conn, name, &v, err);
        if (r < 0)
                goto fail;
        exists = v > 0;
        v++;
        snprintf(version, sizeof(version), "%u", v);
        {
                const char *parts[] = {name, version};
                size_t lens[] = {strlen(name), strlen(version)};
                r = mem_secret_seal(key, MEM_SECRET_STORE, parts, lens, 2, value, len, &box, &box_len);
        }
        if (r < 0) {
                au_error_set(err, -r, "seal secret '%s'", name);
                goto fail;
        }
        ct = malloc(2 * (box_len - MEM_SECRET_OVERHEAD) + 1);
        if (!ct) {
                r = au_error_set(err, ENOMEM, "secret");
                goto fail;
        }
        mem_seal_hex(box, MEM_SECRET_NONCE_BYTES, nonce);
        mem_seal_hex(box + MEM_SECRET_NONCE_BYTES, box_len - MEM_SECRET_OVERHEAD, ct);
        mem_seal_hex(box + box_len - MEM_SECRET_TAG_BYTES, MEM_SECRET_TAG_BYTES, tag);
        r = mem_store_secret_write(conn,
                                   &(const mem_store_sealed){.name = name,
                                                             .version = version,
                                                             .key_id = key_id,
                                                             .nonce_hex = nonce,
                                                             .ciphertext_hex = ct,
                                                             .tag_hex = tag},
                                   exists, actor, err);
        if (r >= 0)
                r = mem_pg_commit(conn, err);
        if (r < 0)
                goto fail;
        *ret_version = v;
        *ret_created = !exists;
        return 0;
fail:
        mem_pg_rollback(conn);
        return r;
}

/* ---- the API ---------------------------------------------------------------------------------- */

void orc_secret_put(orc_coord *c, const char *actor, const char *name, const char *body, size_t len,
                    orc_reply *ret) {
        _cleanup_json_ yajl_val doc = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        uint8_t key[MEM_SEAL_KEY_BYTES];
        char key_id[17];
        au_error err = {0};
        const char *value;
        unsigned version = 0;
        bool created = false;
        PGconn *conn;
        yajl_val v;
        int r;

        if (!mem_secret_name_valid(name)) {
                orc_reply_error(ret, 404, "not_found", NULL,
                                "no secret '%.64s' (a name is 1 to 128 of [A-Za-z0-9._-], starting with a "
                                "letter or digit)",
                                name ? name : "");
                return;
        }
        /* The value's bound, with room for JSON escapes; the body is read no further. */
        if (len > 6 * (size_t) ORC_SECRET_MAX_VALUE + 64) {
                orc_reply_error(ret, 413, "payload_too_large", "value",
                                "value: over the limit of %u bytes for a secret", ORC_SECRET_MAX_VALUE);
                return;
        }
        if (!body || au_json_parse(body, len, len + 1, &doc, &err) < 0 || !YAJL_IS_OBJECT(doc)) {
                orc_reply_error(ret, 400, "invalid_json", NULL,
                                "expected a JSON object {\"value\": \"...\"}");
                return;
        }
        au_error_clear(&err);
        if (au_json_check_object(doc, "", (const char *const[]){"value", NULL}, &err) < 0) {
                orc_reply_error(ret, 400, "invalid_request", err.field[0] ? err.field : NULL, "%s", err.msg);
                return;
        }
        v = au_json_get(doc, "value");
        if (!v || !YAJL_IS_STRING(v)) {
                orc_reply_error(ret, 400, "invalid_request", "value", "value: required, a string");
                return;
        }
        value = YAJL_GET_STRING(v);
        if (strlen(value) > ORC_SECRET_MAX_VALUE) {
                orc_reply_error(ret, 413, "payload_too_large", "value",
                                "value: %zu bytes, over the limit of %u bytes for a secret", strlen(value),
                                ORC_SECRET_MAX_VALUE);
                OPENSSL_cleanse(v->u.string, strlen(value));
                return;
        }
        r = orc_secret_key_load(&c->cfg, true, key, key_id, &err);
        if (r < 0) {
                OPENSSL_cleanse(v->u.string, strlen(value));
                log_error("secret '%s': %s", name, err.msg);
                orc_reply_error(ret, 500, "internal", NULL, "the secret key is not available: %s", err.msg);
                return;
        }
        if (!(conn = orc_get_conn(c, ret))) {
                OPENSSL_cleanse(v->u.string, strlen(value));
                OPENSSL_cleanse(key, sizeof(key));
                return;
        }
        for (int attempt = 0; attempt < 2; attempt++) {
                au_error_clear(&err);
                r = store_put(conn, key, key_id, actor, name, value, strlen(value), &version, &created,
                              &err);
                if (r != -EEXIST)
                        break;
        }
        OPENSSL_cleanse(v->u.string, strlen(value));
        OPENSSL_cleanse(key, sizeof(key));
        if (orc_put_conn(c, conn, ret, r, &err) < 0)
                return;
        log_info("secret '%s' %s by %s (version %u)", name, created ? "created" : "rotated", actor, version);
        if (!(g = orc_reply_object_open(ret)))
                return;
        au_json_gen_kv_string(g, "name", name);
        au_json_gen_kv_uint64(g, "version", version);
        orc_reply_object_close(ret, created ? 201 : 200, g);
}

void orc_secret_delete(orc_coord *c, const char *actor, const char *name, orc_reply *ret) {
        au_error err = {0};
        PGconn *conn;
        int r;

        if (!mem_secret_name_valid(name)) {
                orc_reply_error(ret, 404, "not_found", NULL, "no secret '%.64s'", name ? name : "");
                return;
        }
        if (!(conn = orc_get_conn(c, ret)))
                return;
        r = mem_store_secret_delete(conn, name, actor, &err);
        orc_pool_put(c, conn);
        if (orc_reply_failed(c, ret, r, &err, "no secret named", name) < 0)
                return;
        log_info("secret '%s' deleted by %s", name, actor);
        orc_reply_name_flag(ret, name, "deleted");
}

void orc_secret_list(orc_coord *c, orc_reply *ret) {
        _cleanup_pgresult_ PGresult *res = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        au_error err = {0};
        PGconn *conn;
        int r;

        if (!(conn = orc_get_conn(c, ret)))
                return;
        /* Never the value columns: a listing has nothing to leak even by mistake. */
        r = mem_store_secrets_list(conn, &res, &err);
        if (orc_put_conn(c, conn, ret, r, &err) < 0 || !(g = orc_reply_object_open(ret)))
                return;
        au_json_gen_string(g, "secrets");
        au_json_gen_array_open(g);
        for (int i = 0; i < PQntuples(res); i++) {
                au_json_gen_map_open(g);
                orc_gen_kv_text(g, "name", mem_pg_value(res, i, MEM_SECRET_NAME));
                orc_gen_kv_num(g, "version", mem_pg_value(res, i, MEM_SECRET_VERSION));
                orc_gen_kv_text(g, "created_by", mem_pg_value(res, i, MEM_SECRET_CREATED_BY));
                orc_gen_kv_text(g, "created_at", mem_pg_value(res, i, MEM_SECRET_CREATED_AT));
                orc_gen_kv_text(g, "rotated_by", mem_pg_value(res, i, MEM_SECRET_ROTATED_BY));
                orc_gen_kv_text(g, "rotated_at", mem_pg_value(res, i, MEM_SECRET_ROTATED_AT));
                au_json_gen_map_close(g);
        }
        au_json_gen_array_close(g);
        orc_reply_object_close(ret, 200, g);
}

/* ---- the command line ------------------------------------------------------------------------- */

int orc_secret_set_cli(const orc_config *cfg, const char *name, const char *value, size_t len,
                       unsigned *ret_version, au_error *err) {
        uint8_t key[MEM_SEAL_KEY_BYTES];
        char key_id[17];
        PGconn *conn = NULL;
        bool created = false;
        int r;

        if (!mem_secret_name_valid(name))
                return au_error_set_field(
                        err, "name",
                        "secret name: 1 to 128 of [A-Za-z0-9._-], starting with a letter or digit");
        if (len > ORC_SECRET_MAX_VALUE)
                return au_error_set_field(err, "value", "value: %zu bytes, over the limit of %u bytes", len,
                                          ORC_SECRET_MAX_VALUE);
        if (memchr(value, '\0', len))
                return au_error_set_field(
                        err, "value",
                        "value: contains a NUL byte (not possible in an environment variable)");
        r = orc_secret_key_load(cfg, true, key, key_id, err);
        if (r < 0)
                return r;
        r = mem_pg_connect(cfg->db, "autoos-coordinator set-secret", &conn, err);
        if (r >= 0) {
                for (int attempt = 0; attempt < 2; attempt++) {
                        au_error_clear(err);
                        r = store_put(conn, key, key_id, "admin", name, value, len, ret_version, &created,
                                      err);
                        if (r != -EEXIST)
                                break;
                }
                mem_pg_close(conn);
        }
        OPENSSL_cleanse(key, sizeof(key));
        return r;
}

int orc_secret_delete_cli(const orc_config *cfg, const char *name, au_error *err) {
        PGconn *conn = NULL;
        int r;

        if (!mem_secret_name_valid(name))
                return au_error_set_field(err, "name", "no secret named '%.64s'", name ? name : "");
        r = mem_pg_connect(cfg->db, "autoos-coordinator delete-secret", &conn, err);
        if (r < 0)
                return r;
        r = mem_store_secret_delete(conn, name, "admin", err);
        mem_pg_close(conn);
        if (r == -ENOENT) {
                au_error_clear(err);
                return au_error_set_field(err, "name", "no secret named '%s'", name);
        }
        return r;
}

/* ---- submission ------------------------------------------------------------------------------- */

bool orc_secrets_check(orc_coord *c, PGconn *conn, const orc_workflow *w, orc_reply *ret) {
        au_error err = {0};
        bool exists = false;
        int r;

        for (size_t i = 0; i < w->n_steps; i++) {
                _cleanup_json_ yajl_val run = NULL;
                yajl_val sec;
                const orc_step *st = &w->steps[i];

                if (!st->run_json || !strstr(st->run_json, "\"secrets\""))
                        continue;
                if (au_json_parse(st->run_json, strlen(st->run_json), strlen(st->run_json) + 1, &run, NULL) <
                    0)
                        continue;
                sec = au_json_get(run, "secrets");
                if (!sec || !YAJL_IS_OBJECT(sec))
                        continue;
                for (size_t k = 0; k < sec->u.object.len; k++) {
                        const char *name = YAJL_GET_STRING(sec->u.object.values[k]);
                        char field[300];

                        if (!name)
                                continue;
                        r = mem_store_secret_exists(conn, name, &exists, &err);
                        if (r < 0) {
                                orc_reply_db_error(c, ret, r, &err);
                                return false;
                        }
                        if (!exists) {
                                snprintf(field, sizeof(field), "steps.%s.run.secrets.%s", st->id,
                                         sec->u.object.keys[k]);
                                orc_reply_error(ret, 400, "invalid_workflow", field,
                                                "step '%s' names secret '%s' (for %s), which does not exist",
                                                st->id, name, sec->u.object.keys[k]);
                                return false;
                        }
                }
        }
        return true;
}
