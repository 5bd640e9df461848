/* SPDX-License-Identifier: MIT */
/*
 * fabric/config: fabric.json, strictly parsed with yajl, and the fabric's
 * lifetime. A key never reaches an error message or a log.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/json.h"
#include "fabric/fabric-internal.h"
#include "memory/secret.h"

static const char *const role_names[_FAB_ROLE_MAX] = {
        [FAB_ROLE_PLANNER] = "planner",         [FAB_ROLE_EXECUTOR] = "executor",
        [FAB_ROLE_VERIFIER] = "verifier",       [FAB_ROLE_AUDITOR] = "auditor",
        [FAB_ROLE_SYNTHESIZER] = "synthesizer",
};

const char *fab_role_name(fab_role r) {
        return r < _FAB_ROLE_MAX ? role_names[r] : NULL;
}

int fab_role_from_name(const char *name) {
        for (size_t i = 0; name && i < _FAB_ROLE_MAX; i++)
                if (strcmp(role_names[i], name) == 0)
                        return (int) i;
        return -EINVAL;
}

fab_provider *fab_provider_find(const fab_fabric *f, const char *name) {
        for (size_t i = 0; name && i < f->n_providers; i++)
                if (strcmp(f->providers[i].name, name) == 0)
                        return &f->providers[i];
        return NULL;
}

static int get_price(yajl_val v, const char *path, double *ret, au_error *err) {
        char *end;
        double d;

        if (!YAJL_IS_NUMBER(v))
                return au_error_set_field(err, path, "%s: expected a number", path);
        errno = 0;
        d = strtod(v->u.number.r, &end);
        if (errno != 0 || *end != '\0' || !isfinite(d) || d < 0 || d > 1e6)
                return au_error_set_field(
                        err, path, "%s: expected a price from 0 to 1000000 USD per million tokens", path);
        *ret = d;
        return 0;
}

static int get_ms(yajl_val obj, const char *parent, const char *key, uint64_t min, uint64_t max,
                  uint64_t *ret, au_error *err) {
        char path[256];
        uint64_t v;
        yajl_val x = au_json_get(obj, key);
        int r;

        if (!x)
                return 0;
        au_json_path(path, sizeof(path), parent, key);
        r = au_json_get_uint64(x, path, &v, err);
        if (r < 0)
                return r;
        if (v < min || v > max)
                return au_error_set_field(err, path, "%s: expected %llu to %llu", path,
                                          (unsigned long long) min, (unsigned long long) max);
        *ret = v;
        return 0;
}

static int parse_model(fab_provider *p, const char *name, yajl_val v, const char *path, au_error *err) {
        static const char *const known[] = {"input", "output", "cached", "cache_write", NULL};
        char sub[256];
        fab_model *m;
        int r;

        r = au_json_check_object(v, path, known, err);
        if (r < 0)
                return r;
        m = &p->models[p->n_models];
        m->name = strdup(name);
        if (!m->name)
                return -ENOMEM;
        p->n_models++;
        const char *req[] = {"input", "output"};
        for (size_t i = 0; i < ELEMENTSOF(req); i++)
                if (!au_json_get(v, req[i])) {
                        au_json_path(sub, sizeof(sub), path, req[i]);
                        return au_error_set_field(err, sub, "%s: missing (a price per million tokens)", sub);
                }
        au_json_path(sub, sizeof(sub), path, "input");
        if ((r = get_price(au_json_get(v, "input"), sub, &m->price.input, err)) < 0)
                return r;
        au_json_path(sub, sizeof(sub), path, "output");
        if ((r = get_price(au_json_get(v, "output"), sub, &m->price.output, err)) < 0)
                return r;
        /* without a cached price, cached tokens cost what input does; a cache write likewise */
        m->price.cached = m->price.input;
        m->price.cache_write = m->price.input;
        if (au_json_get(v, "cached")) {
                au_json_path(sub, sizeof(sub), path, "cached");
                if ((r = get_price(au_json_get(v, "cached"), sub, &m->price.cached, err)) < 0)
                        return r;
        }
        if (au_json_get(v, "cache_write")) {
                au_json_path(sub, sizeof(sub), path, "cache_write");
                if ((r = get_price(au_json_get(v, "cache_write"), sub, &m->price.cache_write, err)) < 0)
                        return r;
        }
        return 0;
}

static int read_key_file(const char *file, const char *path, char **ret, au_error *err) {
        _cleanup_close_ int fd = -1;
        _cleanup_buf_ au_buf b = AU_BUF_INIT(0);
        struct stat st;
        int r;

        fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return au_error_set(err, errno, "%s: open %s", path, file);
        if (fstat(fd, &st) < 0)
                return au_error_set(err, errno, "%s: stat %s", path, file);
        if (!S_ISREG(st.st_mode))
                return au_error_set_field(err, path, "%s: %s is not a regular file", path, file);
        if (st.st_mode & S_IROTH)
                return au_error_set_field(err, path, "%s: %s is readable by everyone; chmod o-r it", path,
                                          file);
        r = au_buf_read_fd(&b, fd, 64 * 1024);
        if (r == -EFBIG) {
                OPENSSL_cleanse(b.p, b.len);
                return au_error_set_field(err, path, "%s: %s is over 64 KiB", path, file);
        }
        if (r < 0)
                return au_error_set(err, -r, "%s: read %s", path, file);
        while (b.len > 0 && (b.p[b.len - 1] == '\n' || b.p[b.len - 1] == '\r' || b.p[b.len - 1] == ' '))
                b.p[--b.len] = '\0';
        if (b.len == 0 || strlen(b.p) != b.len) {
                if (b.p)
                        OPENSSL_cleanse(b.p, b.len);
                return au_error_set_field(err, path, "%s: %s holds no key", path, file);
        }
        *ret = au_buf_steal(&b, NULL);
        return *ret ? 0 : -ENOMEM;
}

/* A provider's or a secret's name: 1-63 of [A-Za-z0-9_.-]. */
static bool name_ok(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 63)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '_' || *s == '.' || *s == '-'))
                        return false;
        return true;
}

static bool url_ok(const char *u) {
        size_t n = strlen(u);
        const char *host = strncmp(u, "http://", 7) == 0    ? u + 7
                           : strncmp(u, "https://", 8) == 0 ? u + 8
                                                            : NULL;
        if (!host || !*host || *host == '/')
                return false;
        for (const char *c = u; *c; c++)
                if (*c <= ' ' || *c == 0x7f)
                        return false;
        return n < 1024;
}

static int parse_provider(fab_provider *p, const char *name, yajl_val v, const char *path,
                          const fab_options *opts, au_error *err) {
        static const char *const known[] = {"kind",
                                            "base_url",
                                            "api_key",
                                            "api_key_file",
                                            "anthropic_version",
                                            "timeout_ms",
                                            "first_byte_timeout_ms",
                                            "idle_timeout_ms",
                                            "max_retries",
                                            "cooldown_ms",
                                            "rate_limits",
                                            "models",
                                            NULL};
        char sub[256];
        const char *s;
        yajl_val x;
        uint64_t u;
        int r;

        r = au_json_check_object(v, path, known, err);
        if (r < 0)
                return r;
        p->name = strdup(name);
        if (!p->name)
                return -ENOMEM;
        if (!name_ok(name))
                return au_error_set_field(err, path, "%s: a provider name is 1-63 of [A-Za-z0-9_.-]", path);

        au_json_path(sub, sizeof(sub), path, "kind");
        if ((r = au_json_get_string(au_json_get(v, "kind"), sub, &s, err)) < 0)
                return r;
        if (strcmp(s, "openai") == 0)
                p->kind = FAB_OPENAI;
        else if (strcmp(s, "anthropic") == 0)
                p->kind = FAB_ANTHROPIC;
        else
                return au_error_set_field(err, sub,
                                          "%s: expected \"openai\" or \"anthropic\", not \"%.64s\"", sub, s);

        au_json_path(sub, sizeof(sub), path, "base_url");
        if ((r = au_json_get_string(au_json_get(v, "base_url"), sub, &s, err)) < 0)
                return r;
        if (!url_ok(s))
                return au_error_set_field(err, sub, "%s: expected an http:// or https:// URL", sub);
        p->base_url = strdup(s);
        if (!p->base_url)
                return -ENOMEM;
        while (strlen(p->base_url) > 8 && p->base_url[strlen(p->base_url) - 1] == '/')
                p->base_url[strlen(p->base_url) - 1] = '\0';

        p->anthropic_version = strdup("2023-06-01");
        if (!p->anthropic_version)
                return -ENOMEM;
        if ((x = au_json_get(v, "anthropic_version"))) {
                au_json_path(sub, sizeof(sub), path, "anthropic_version");
                if ((r = au_json_get_string(x, sub, &s, err)) < 0)
                        return r;
                if (!*s || strlen(s) > 32 || strpbrk(s, "\r\n"))
                        return au_error_set_field(err, sub, "%s: expected a version like \"2023-06-01\"",
                                                  sub);
                free(p->anthropic_version);
                if (!(p->anthropic_version = strdup(s)))
                        return -ENOMEM;
        }

        if (au_json_get(v, "api_key") && au_json_get(v, "api_key_file"))
                return au_error_set_field(
                        err, path, "%s: give api_key (a secret's name) or api_key_file, not both", path);
        if ((x = au_json_get(v, "api_key"))) {
                au_json_path(sub, sizeof(sub), path, "api_key");
                if ((r = au_json_get_string(x, sub, &s, err)) < 0)
                        return r;
                if (!mem_secret_name_valid(s))
                        return au_error_set_field(err, sub, "%s: expected a secret's name", sub);
                if (!opts || !opts->secret)
                        return au_error_set(err, ENOENT, "%s: secret %s: no secret store here", sub, s);
                r = opts->secret(opts->secret_userdata, s, &p->key);
                if (r < 0)
                        return au_error_set(err, -r, "%s: secret %s", sub, s);
        } else if ((x = au_json_get(v, "api_key_file"))) {
                au_json_path(sub, sizeof(sub), path, "api_key_file");
                if ((r = au_json_get_string(x, sub, &s, err)) < 0)
                        return r;
                if ((r = read_key_file(s, sub, &p->key, err)) < 0)
                        return r;
        }
        if (p->key && strpbrk(p->key, "\r\n"))
                return au_error_set_field(err, path, "%s: the API key holds a line break", path);

        p->timeout_ms = 600000;
        p->first_byte_timeout_ms = 60000;
        p->idle_timeout_ms = 60000;
        p->max_retries = 2;
        p->cooldown_ms = 30000;
        if ((r = get_ms(v, path, "timeout_ms", 1, 3600000, &p->timeout_ms, err)) < 0 ||
            (r = get_ms(v, path, "first_byte_timeout_ms", 1, 3600000, &p->first_byte_timeout_ms, err)) < 0 ||
            (r = get_ms(v, path, "idle_timeout_ms", 1, 3600000, &p->idle_timeout_ms, err)) < 0 ||
            (r = get_ms(v, path, "cooldown_ms", 0, 86400000, &p->cooldown_ms, err)) < 0)
                return r;
        u = p->max_retries;
        if ((r = get_ms(v, path, "max_retries", 0, 10, &u, err)) < 0)
                return r;
        p->max_retries = (unsigned) u;

        if ((x = au_json_get(v, "rate_limits"))) {
                static const char *const rl_known[] = {"requests_per_minute", "tokens_per_minute", NULL};
                au_json_path(sub, sizeof(sub), path, "rate_limits");
                if ((r = au_json_check_object(x, sub, rl_known, err)) < 0)
                        return r;
                uint64_t rpm = 0, tpm = 0;
                if ((r = get_ms(x, sub, "requests_per_minute", 1, UINT32_MAX, &rpm, err)) < 0 ||
                    (r = get_ms(x, sub, "tokens_per_minute", 1, UINT32_MAX, &tpm, err)) < 0)
                        return r;
                p->rpm = (uint32_t) rpm;
                p->tpm = (uint32_t) tpm;
        }

        au_json_path(sub, sizeof(sub), path, "models");
        x = au_json_get(v, "models");
        if (!x)
                return au_error_set_field(err, sub, "%s: missing (each model's prices)", sub);
        if ((r = au_json_check_object(x, sub, NULL, err)) < 0)
                return r;
        if (x->u.object.len == 0)
                return au_error_set_field(err, sub, "%s: a provider needs at least one model", sub);
        p->models = calloc(x->u.object.len, sizeof(fab_model));
        if (!p->models)
                return -ENOMEM;
        for (size_t i = 0; i < x->u.object.len; i++) {
                char mpath[256];
                const char *mname = x->u.object.keys[i];
                au_json_path(mpath, sizeof(mpath), sub, mname);
                if (!*mname || strlen(mname) > 127 || strpbrk(mname, "\"\\\r\n"))
                        return au_error_set_field(err, mpath,
                                                  "%s: a model name is 1-127 printable characters", mpath);
                if ((r = parse_model(p, mname, x->u.object.values[i], mpath, err)) < 0)
                        return r;
        }
        return 0;
}

static int parse_chain(fab_fabric *f, fab_role role, yajl_val v, const char *path, au_error *err) {
        static const char *const known[] = {"provider", "model", NULL};
        int r;

        if ((r = au_json_check_array(v, path, err)) < 0)
                return r;
        if (v->u.array.len == 0 || v->u.array.len > 16)
                return au_error_set_field(err, path, "%s: a chain has 1 to 16 entries", path);
        f->chains[role] = calloc(v->u.array.len, sizeof(fab_entry));
        if (!f->chains[role])
                return -ENOMEM;
        for (size_t i = 0; i < v->u.array.len; i++) {
                char epath[300], sub[350];
                const char *pname, *mname;
                yajl_val e = v->u.array.values[i];
                fab_provider *p;
                size_t m;

                snprintf(epath, sizeof(epath), "%s.%zu", path, i);
                if ((r = au_json_check_object(e, epath, known, err)) < 0)
                        return r;
                au_json_path(sub, sizeof(sub), epath, "provider");
                if ((r = au_json_get_string(au_json_get(e, "provider"), sub, &pname, err)) < 0)
                        return r;
                p = fab_provider_find(f, pname);
                if (!p)
                        return au_error_set_field(err, sub, "%s: no provider \"%.64s\"", sub, pname);
                au_json_path(sub, sizeof(sub), epath, "model");
                if ((r = au_json_get_string(au_json_get(e, "model"), sub, &mname, err)) < 0)
                        return r;
                for (m = 0; m < p->n_models; m++)
                        if (strcmp(p->models[m].name, mname) == 0)
                                break;
                if (m == p->n_models)
                        return au_error_set_field(err, sub, "%s: provider %s has no model \"%.64s\"", sub,
                                                  pname, mname);
                for (size_t j = 0; j < f->n_chain[role]; j++)
                        if (f->chains[role][j].provider == (size_t) (p - f->providers) &&
                            f->chains[role][j].model == m)
                                return au_error_set_field(err, epath, "%s: %s/%s is already in the chain",
                                                          epath, pname, mname);
                f->chains[role][f->n_chain[role]++] =
                        (fab_entry){.provider = (size_t) (p - f->providers), .model = m};
        }
        return 0;
}

int fab_new(const char *json, size_t len, const fab_options *opts, fab_fabric **ret, au_error *err) {
        static const char *const known[] = {"providers", "roles", "retry", NULL};
        _cleanup_json_ yajl_val root = NULL;
        _cleanup_fab_ fab_fabric *f = NULL;
        yajl_val x;
        int r;

        r = au_json_parse(json, len, FAB_CONFIG_MAX_BYTES, &root, err);
        if (r < 0)
                return r;
        if ((r = au_json_check_object(root, "", known, err)) < 0)
                return r;
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        pthread_mutex_init(&f->lock, NULL);
        f->backoff_base_ms = 500;
        f->backoff_max_ms = 30000;
        f->max_retry_after_ms = 60000;
        f->time_scale = opts && opts->time_scale > 0 ? opts->time_scale : 1.0;

        x = au_json_get(root, "providers");
        if (!x)
                return au_error_set_field(err, "providers", "providers: missing");
        if ((r = au_json_check_object(x, "providers", NULL, err)) < 0)
                return r;
        if (x->u.object.len == 0)
                return au_error_set_field(err, "providers", "providers: at least one is needed");
        f->providers = calloc(x->u.object.len, sizeof(fab_provider));
        if (!f->providers)
                return -ENOMEM;
        for (size_t i = 0; i < x->u.object.len; i++) {
                char path[256];
                au_json_path(path, sizeof(path), "providers", x->u.object.keys[i]);
                f->n_providers++;
                r = parse_provider(&f->providers[i], x->u.object.keys[i], x->u.object.values[i], path, opts,
                                   err);
                if (r < 0)
                        return r;
        }

        x = au_json_get(root, "roles");
        if (!x)
                return au_error_set_field(err, "roles", "roles: missing");
        if ((r = au_json_check_object(x, "roles", NULL, err)) < 0)
                return r;
        for (size_t i = 0; i < x->u.object.len; i++) {
                char path[256];
                au_json_path(path, sizeof(path), "roles", x->u.object.keys[i]);
                int role = fab_role_from_name(x->u.object.keys[i]);
                if (role < 0)
                        return au_error_set_field(
                                err, path,
                                "%s: unknown role (planner, executor, verifier, auditor, synthesizer)",
                                path);
                if ((r = parse_chain(f, (fab_role) role, x->u.object.values[i], path, err)) < 0)
                        return r;
        }

        if ((x = au_json_get(root, "retry"))) {
                static const char *const rk[] = {"backoff_base_ms", "backoff_max_ms", "max_retry_after_ms",
                                                 NULL};
                if ((r = au_json_check_object(x, "retry", rk, err)) < 0)
                        return r;
                if ((r = get_ms(x, "retry", "backoff_base_ms", 1, 600000, &f->backoff_base_ms, err)) < 0 ||
                    (r = get_ms(x, "retry", "backoff_max_ms", 1, 3600000, &f->backoff_max_ms, err)) < 0 ||
                    (r = get_ms(x, "retry", "max_retry_after_ms", 0, 3600000, &f->max_retry_after_ms, err)) <
                            0)
                        return r;
        }

        if (opts && opts->metrics)
                fab_metrics_register(f, opts->metrics);
        *ret = TAKE_PTR(f);
        return 0;
}

int fab_new_from_file(const char *path, const fab_options *opts, fab_fabric **ret, au_error *err) {
        _cleanup_close_ int fd = -1;
        _cleanup_buf_ au_buf b = AU_BUF_INIT(0);
        int r;

        if (!path)
                path = FAB_CONFIG_PATH;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return au_error_set(err, errno, "open %s", path);
        r = au_buf_read_fd(&b, fd, FAB_CONFIG_MAX_BYTES);
        if (r == -EFBIG)
                return au_error_set(err, E2BIG, "%s is over %d bytes", path, FAB_CONFIG_MAX_BYTES);
        if (r < 0)
                return au_error_set(err, -r, "read %s", path);
        r = fab_new(b.p ? b.p : "", b.len, opts, ret, err);
        if (r < 0 && au_error_isset(err)) {
                /* "path: message", cut to fit */
                size_t pl = MIN(strlen(path), sizeof(err->msg) / 2), ml = strlen(err->msg);
                ml = MIN(ml, sizeof(err->msg) - pl - 3);
                memmove(err->msg + pl + 2, err->msg, ml);
                memcpy(err->msg, path, pl);
                memcpy(err->msg + pl, ": ", 2);
                err->msg[pl + 2 + ml] = '\0';
        }
        return r;
}

fab_fabric *fab_free(fab_fabric *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n_providers; i++) {
                fab_provider *p = &f->providers[i];
                free(p->name);
                free(p->base_url);
                free(p->anthropic_version);
                if (p->key) {
                        OPENSSL_cleanse(p->key, strlen(p->key));
                        free(p->key);
                }
                for (size_t m = 0; m < p->n_models; m++)
                        free(p->models[m].name);
                free(p->models);
        }
        free(f->providers);
        for (size_t i = 0; i < _FAB_ROLE_MAX; i++)
                free(f->chains[i]);
        for (size_t i = 0; i < f->n_budgets; i++)
                free(f->budgets[i].id);
        free(f->budgets);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return NULL;
}

size_t fab_chain_len(const fab_fabric *f, fab_role role) {
        return role < _FAB_ROLE_MAX ? f->n_chain[role] : 0;
}

const char *fab_chain_provider(const fab_fabric *f, fab_role role, size_t i) {
        if (role >= _FAB_ROLE_MAX || i >= f->n_chain[role])
                return NULL;
        return f->providers[f->chains[role][i].provider].name;
}

const char *fab_chain_model(const fab_fabric *f, fab_role role, size_t i) {
        if (role >= _FAB_ROLE_MAX || i >= f->n_chain[role])
                return NULL;
        const fab_entry *e = &f->chains[role][i];
        return f->providers[e->provider].models[e->model].name;
}

const fab_price *fab_price_of(const fab_fabric *f, const char *provider, const char *model) {
        fab_provider *p = fab_provider_find(f, provider);
        for (size_t m = 0; p && model && m < p->n_models; m++)
                if (strcmp(p->models[m].name, model) == 0)
                        return &p->models[m].price;
        return NULL;
}
