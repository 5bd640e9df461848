/* SPDX-License-Identifier: MIT */
/* A job's secrets on the node: opened into the run's environment, masked in its result (secrets.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "daemon/secrets.h"
#include "memory/secret.h"

struct dmn_secrets {
        char **vals;
        size_t *lens;
        size_t n;
};

dmn_secrets *dmn_secrets_free(dmn_secrets *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++) {
                explicit_bzero(s->vals[i], s->lens[i]);
                free(s->vals[i]);
        }
        free(s->vals);
        free(s->lens);
        free(s);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(dmn_secrets *, dmn_secrets_free);

/* A buffer that held values: wiped before it is freed. */
typedef struct wiped {
        char *p;
        size_t len;
} wiped;

static void wipe(wiped *w) {
        if (w->p) {
                explicit_bzero(w->p, w->len);
                free(w->p);
        }
}

static int refuse(au_error *err, const char *name, const char *var, const char *why) {
        au_error_set_field(err, "secrets", "secret '%.128s' (for %.128s) %s", name ? name : "?", var, why);
        return -EKEYREJECTED;
}

/* The spec without secrets and secrets_sealed, the values in env; into *ret (a JSON text). */
static int rewrite(yajl_val doc, yajl_val sec, yajl_val vals, wiped *ret, au_error *err) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        bool env_done = false;
        const unsigned char *buf;
        size_t blen;

        if (!g)
                return au_error_set(err, ENOMEM, "secrets");
        au_json_gen_map_open(g);
        for (size_t i = 0; i <= doc->u.object.len; i++) {
                const char *key = i < doc->u.object.len ? doc->u.object.keys[i] : NULL;
                yajl_val v = key ? doc->u.object.values[i] : NULL;

                if (key && (strcmp(key, "secrets") == 0 || strcmp(key, "secrets_sealed") == 0))
                        continue;
                if (key && strcmp(key, "env") != 0) {
                        au_json_gen_string(g, key);
                        au_json_gen_tree(g, v);
                        continue;
                }
                if (env_done)
                        break;
                au_json_gen_string(g, "env");
                au_json_gen_map_open(g);
                for (size_t k = 0; v && YAJL_IS_OBJECT(v) && k < v->u.object.len; k++) {
                        au_json_gen_string(g, v->u.object.keys[k]);
                        au_json_gen_tree(g, v->u.object.values[k]);
                }
                for (size_t k = 0; k < sec->u.object.len; k++) {
                        yajl_val x = au_json_get(vals, sec->u.object.keys[k]);
                        au_json_gen_string(g, sec->u.object.keys[k]);
                        au_json_gen_tree(g, x);
                }
                au_json_gen_map_close(g);
                env_done = true;
        }
        au_json_gen_map_close(g);
        if (yajl_gen_get_buf(g, &buf, &blen) != yajl_gen_status_ok)
                return au_error_set(err, ENOMEM, "secrets");
        ret->p = au_json_gen_finish(g, &ret->len);
        explicit_bzero((void *) buf, blen);
        return ret->p ? 0 : au_error_set(err, ENOMEM, "secrets");
}

int dmn_secrets_spec(const uint8_t *node_key, const char *node, const char *json, size_t len,
                     const sbx_policy *policy, sbx_spec **ret_spec, dmn_secrets **ret_secrets,
                     au_error *err) {
        _cleanup_json_ yajl_val doc = NULL, vals = NULL;
        _cleanup_(wipe) wiped plain = {0}, spec_json = {0};
        _cleanup_(dmn_secrets_freep) dmn_secrets *s = NULL;
        _cleanup_free_ char *box = NULL;
        uint8_t key[MEM_SEAL_KEY_BYTES];
        size_t box_len = 0;
        yajl_val sec, sealed, id;
        const char *first, *first_var;
        int r;

        /* Most specs name no secret: parsed once, by the sandbox. */
        if (!memmem(json, len, "\"secrets\"", 9) ||
            au_json_parse(json, len, (size_t) policy->max_spec_bytes, &doc, NULL) < 0 ||
            !YAJL_IS_OBJECT(doc) || !(sec = au_json_get(doc, "secrets")))
                return sbx_spec_from_json(json, len, policy, ret_spec, err);
        if (!YAJL_IS_OBJECT(sec) || sec->u.object.len > MEM_SECRET_MAX_PER_STEP)
                return au_error_set_field(err, "secrets", "secrets: expected an object of at most %d names",
                                          MEM_SECRET_MAX_PER_STEP);
        if (sec->u.object.len == 0) {
                r = rewrite(doc, sec, NULL, &spec_json, err);
                return r < 0 ? r : sbx_spec_from_json(spec_json.p, spec_json.len, policy, ret_spec, err);
        }
        for (size_t k = 0; k < sec->u.object.len; k++)
                if (!YAJL_IS_STRING(sec->u.object.values[k]))
                        return au_error_set_field(err, "secrets", "secrets.%.128s: expected a secret's name",
                                                  sec->u.object.keys[k]);
        first = YAJL_GET_STRING(sec->u.object.values[0]);
        first_var = sec->u.object.keys[0];
        id = au_json_get(doc, "id");
        if (!node_key)
                return refuse(err, first, first_var,
                              "cannot be opened: this node has no node key (bus_auth = off)");
        sealed = au_json_get(doc, "secrets_sealed");
        if (!sealed || !YAJL_IS_STRING(sealed))
                return refuse(err, first, first_var,
                              "was not delivered (deleted since submission, or the coordinator could not "
                              "read it)");
        const char *run_id = YAJL_GET_STRING(id), *b64 = YAJL_GET_STRING(sealed);
        if (!run_id)
                return au_error_set_field(err, "id", "id: required with secrets");
        if (!b64 || au_base64_decode(b64, strlen(b64), &box, &box_len) < 0)
                return refuse(err, first, first_var, "cannot be opened: secrets_sealed is not base64");

        r = mem_secret_node_key(node_key, key);
        if (r >= 0) {
                const char *parts[] = {run_id, node};
                size_t lens[] = {strlen(run_id), strlen(node)};
                r = mem_secret_open(key, MEM_SECRET_RUN, parts, lens, 2, (const uint8_t *) box, box_len,
                                    &plain.p, &plain.len);
        }
        explicit_bzero(key, sizeof(key));
        if (r == -ENOMEM)
                return au_error_set(err, ENOMEM, "secrets");
        if (r < 0)
                return refuse(err, first, first_var,
                              "cannot be opened: its box was altered, or sealed for another node or run");
        if (au_json_parse(plain.p, plain.len, plain.len + 1, &vals, NULL) < 0 || !YAJL_IS_OBJECT(vals))
                return refuse(err, first, first_var, "cannot be read: the opened box is not a JSON object");

        s = calloc(1, sizeof(*s));
        if (!s || !(s->vals = calloc(sec->u.object.len, sizeof(char *))) ||
            !(s->lens = calloc(sec->u.object.len, sizeof(size_t))))
                return au_error_set(err, ENOMEM, "secrets");
        for (size_t k = 0; k < sec->u.object.len; k++) {
                yajl_val x = au_json_get(vals, sec->u.object.keys[k]);
                const char *v = x ? YAJL_GET_STRING(x) : NULL;
                if (!v)
                        return refuse(
                                err, YAJL_GET_STRING(sec->u.object.values[k]), sec->u.object.keys[k],
                                "was not delivered (deleted since submission, or the coordinator could not "
                                "read it)");
                s->lens[s->n] = strlen(v);
                if (!(s->vals[s->n] = strdup(v)))
                        return au_error_set(err, ENOMEM, "secrets");
                s->n++;
        }
        r = rewrite(doc, sec, vals, &spec_json, err);
        /* The parsed values lived in yajl's tree too. */
        for (size_t k = 0; k < vals->u.object.len; k++)
                if (YAJL_IS_STRING(vals->u.object.values[k]))
                        explicit_bzero(vals->u.object.values[k]->u.string,
                                       strlen(vals->u.object.values[k]->u.string));
        if (r < 0)
                return r;
        r = sbx_spec_from_json(spec_json.p, spec_json.len, policy, ret_spec, err);
        if (r < 0)
                return r;
        *ret_secrets = TAKE_PTR(s);
        return 0;
}

/* Replaces *data (*size bytes) by its masked form when something was masked. */
static void mask_buf(const dmn_secrets *s, char **data, size_t *size, bool truncated) {
        char *out = NULL;
        size_t out_len = 0;

        if (!*data || mem_secret_mask((const char *const *) s->vals, s->lens, s->n, *data, *size, truncated,
                                      &out, &out_len) < 0) {
                /* Out of memory: nothing of the output may leave unmasked. */
                if (*data) {
                        explicit_bzero(*data, *size);
                        (*data)[0] = '\0';
                        *size = 0;
                }
                return;
        }
        if (!out)
                return;
        explicit_bzero(*data, *size);
        free(*data);
        *data = out;
        *size = out_len;
}

void dmn_secrets_mask(const dmn_secrets *s, sbx_result *res) {
        size_t n;

        if (!s || !res)
                return;
        mask_buf(s, &res->stdout_data, &res->stdout_size, res->stdout_truncated);
        mask_buf(s, &res->stderr_data, &res->stderr_size, res->stderr_truncated);
        if (res->error) {
                n = strlen(res->error);
                mask_buf(s, &res->error, &n, false);
        }
        if (res->reason) {
                n = strlen(res->reason);
                mask_buf(s, &res->reason, &n, false);
        }
}
