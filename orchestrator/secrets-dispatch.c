/* SPDX-License-Identifier: MIT */
/*
 * Secrets at dispatch (secrets.h orc_secrets_seal_spec): the values a spec
 * names are read from the store, opened with the coordinator's secret key and
 * sealed again for the one node that runs the step.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/json.h"
#include "common/log.h"
#include "common/macro.h"
#include "memory/pg.h"
#include "memory/secret.h"
#include "memory/store-secrets.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/identity.h"
#include "orchestrator/secrets.h"

/* ---- dispatch --------------------------------------------------------------------------------- */

static int hex_to(const char *hex, uint8_t *out, size_t n) {
        if (strlen(hex) != 2 * n)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                unsigned b;
                if (sscanf(hex + 2 * i, "%2x", &b) != 1)
                        return -EINVAL;
                out[i] = (uint8_t) b;
        }
        return 0;
}

/* Opens the stored row (name, version, key_id, nonce, ciphertext, tag as hex) i into a value. */
static int open_row(const uint8_t key[MEM_SEAL_KEY_BYTES], const char *key_id, PGresult *res, int i,
                    char **ret, size_t *ret_len) {
        const char *name = mem_pg_value(res, i, MEM_SEALED_NAME),
                   *version = mem_pg_value(res, i, MEM_SEALED_VERSION);
        const char *nonce = mem_pg_value(res, i, MEM_SEALED_NONCE),
                   *ct = mem_pg_value(res, i, MEM_SEALED_CIPHERTEXT),
                   *tag = mem_pg_value(res, i, MEM_SEALED_TAG);
        size_t ct_len = strlen(ct) / 2, box_len = ct_len + MEM_SECRET_OVERHEAD;
        _cleanup_free_ uint8_t *box = malloc(box_len);
        const char *parts[] = {name, version};
        size_t lens[] = {strlen(name), strlen(version)};

        if (!box)
                return -ENOMEM;
        if (strcmp(mem_pg_value(res, i, MEM_SEALED_KEY_ID), key_id) != 0)
                return -ENOKEY;
        if (hex_to(nonce, box, MEM_SECRET_NONCE_BYTES) < 0 ||
            hex_to(ct, box + MEM_SECRET_NONCE_BYTES, ct_len) < 0 ||
            hex_to(tag, box + MEM_SECRET_NONCE_BYTES + ct_len, MEM_SECRET_TAG_BYTES) < 0)
                return -EBADMSG;
        return mem_secret_open(key, MEM_SECRET_STORE, parts, lens, 2, box, box_len, ret, ret_len);
}

/* The values of sec's secrets as a JSON object {VAR: value} (what the node gets); NULL on failure. */
static char *gather_values(orc_coord *c, yajl_val sec, const char *run_id, size_t *ret_len) {
        _cleanup_pgresult_ PGresult *res = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        _cleanup_free_ char **names = NULL;
        uint8_t key[MEM_SEAL_KEY_BYTES];
        char key_id[17];
        au_error err = {0};
        char *out;
        PGconn *conn;
        int r;

        names = calloc(sec->u.object.len + 1, sizeof(char *));
        if (!names)
                return NULL;
        for (size_t k = 0; k < sec->u.object.len; k++) {
                const char *name = YAJL_GET_STRING(sec->u.object.values[k]);
                if (!mem_secret_name_valid(name))
                        return NULL;
                names[k] = (char *) name;
        }

        if (orc_secret_key_load(&c->cfg, false, key, key_id, &err) < 0) {
                log_error("run %s names secrets, but the secret key is not available: %s", run_id, err.msg);
                return NULL;
        }
        /* A pooled connection, as node_key() takes one: dispatch holds it for one query. */
        conn = orc_pool_get(c, &err);
        r = conn ? mem_store_secrets_sealed(conn, names, sec->u.object.len, &res, &err) : -ENOTCONN;
        orc_pool_put(c, conn);
        if (r < 0) {
                OPENSSL_cleanse(key, sizeof(key));
                log_warning("run %s: cannot read its secrets: %s", run_id,
                            err.msg[0] ? err.msg : strerror(-r));
                return NULL;
        }
        g = au_json_gen_new(false);
        if (!g) {
                OPENSSL_cleanse(key, sizeof(key));
                return NULL;
        }
        au_json_gen_map_open(g);
        for (size_t k = 0; k < sec->u.object.len; k++) {
                const char *name = YAJL_GET_STRING(sec->u.object.values[k]);
                for (int i = 0; i < PQntuples(res); i++) {
                        char *value = NULL;
                        size_t vlen = 0;

                        if (strcmp(mem_pg_value(res, i, MEM_SEALED_NAME), name) != 0)
                                continue;
                        r = open_row(key, key_id, res, i, &value, &vlen);
                        if (r < 0) {
                                log_error("run %s: secret '%s' cannot be read: %s", run_id, name,
                                          r == -ENOKEY ? "it was stored under another secret key"
                                                       : "it does not decrypt (altered, or another key)");
                                break;
                        }
                        au_json_gen_string(g, sec->u.object.keys[k]);
                        au_json_gen_stringn(g, value, vlen);
                        OPENSSL_cleanse(value, vlen);
                        free(value);
                        break;
                }
        }
        OPENSSL_cleanse(key, sizeof(key));
        au_json_gen_map_close(g);
        out = au_json_gen_finish(g, ret_len);
        /* yajl's own buffer held the values too: wipe it before it is freed. */
        {
                const unsigned char *buf;
                size_t blen;
                if (yajl_gen_get_buf(g, &buf, &blen) == yajl_gen_status_ok)
                        OPENSSL_cleanse((void *) buf, blen);
        }
        return out;
}

char *orc_secrets_seal_spec(orc_coord *c, const char *node, const char *run_id, char **spec) {
        _cleanup_json_ yajl_val doc = NULL;
        _cleanup_free_ uint8_t *box = NULL;
        _cleanup_free_ char *b64 = NULL;
        uint8_t nkey[MEM_SEAL_KEY_BYTES];
        char *plain, *out;
        size_t plain_len = 0, box_len = 0, slen;
        yajl_val sec;
        int r;

        /* Most specs name no secret: no parse for them. */
        if (!spec || !*spec || !run_id || !strstr(*spec, "\"secrets\""))
                return spec ? *spec : NULL;
        slen = strlen(*spec);
        if (au_json_parse(*spec, slen, slen + 1, &doc, NULL) < 0 || !YAJL_IS_OBJECT(doc))
                return *spec;
        sec = au_json_get(doc, "secrets");
        if (!sec || !YAJL_IS_OBJECT(sec) || sec->u.object.len == 0)
                return *spec;
        if (orc_node_secret_key(c, node, nkey) < 0) {
                log_warning("run %s: node %s is not enrolled: its secrets are not sent", run_id, node);
                return *spec;
        }
        plain = gather_values(c, sec, run_id, &plain_len);
        if (!plain) {
                OPENSSL_cleanse(nkey, sizeof(nkey));
                return *spec;
        }
        {
                const char *parts[] = {run_id, node};
                size_t lens[] = {strlen(run_id), strlen(node)};
                r = mem_secret_seal(nkey, MEM_SECRET_RUN, parts, lens, 2, plain, plain_len, &box, &box_len);
        }
        OPENSSL_cleanse(nkey, sizeof(nkey));
        OPENSSL_cleanse(plain, plain_len);
        free(plain);
        if (r < 0 || !(b64 = au_base64_encode(box, box_len)))
                return *spec;
        /* The spec is a JSON object: the field goes before its closing brace. */
        while (slen > 0 && (*spec)[slen - 1] != '}')
                slen--;
        if (slen == 0 || asprintf(&out, "%.*s%s\"secrets_sealed\":\"%s\"}", (int) (slen - 1), *spec,
                                  slen > 2 ? "," : "", b64) < 0)
                return *spec;
        free(*spec);
        *spec = out;
        return out;
}
