/* SPDX-License-Identifier: MIT */
/*
 * Run specs (DESIGN.md "Run spec"): parsing untrusted JSON, filling in the
 * policy's defaults, checking the ceilings, and writing a spec back out.
 *
 * A spec built by hand must set trust explicitly: a zero-initialised spec
 * has trust 0, which is SBX_TRUST_RESTRICTED, not "the default level". Set
 * it to _SBX_TRUST_INVALID to get the policy's default_trust.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "sandbox/egress-rules.h"
#include "sandbox/sandbox-internal.h"

#define MiB (UINT64_C(1024) * 1024)

#define SPEC_MAX_NAME 128                 /* id, workflow, step */
#define SPEC_MAX_ARGV_ENV_BYTES (1 * MiB) /* argv and env strings, NULs included */
#define SPEC_MAX_ENV 256
#define SPEC_MAX_STDIN (16 * MiB)
#define SPEC_MAX_PATH 4096
#define SPEC_MAX_COMPONENT 255
#define SPEC_DEFAULT_FILE_MODE 0644

static char **strv_free(char **l) {
        if (l)
                for (char **p = l; *p; p++)
                        free(*p);
        free(l);
        return NULL;
}

sbx_spec *sbx_spec_free(sbx_spec *spec) {
        if (!spec)
                return NULL;
        free(spec->id);
        free(spec->workflow);
        free(spec->step);
        strv_free(spec->argv);
        strv_free(spec->env);
        free(spec->stdin_data);
        free(spec->cwd);
        for (size_t i = 0; i < spec->n_files; i++) {
                free(spec->files[i].name);
                free(spec->files[i].data);
        }
        free(spec->files);
        free(spec);
        return NULL;
}

/* ---- checks shared by parsed and hand-built specs ------------------------ */

static bool name_char_ok(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == ':' || c == '@' || c == '-';
}

/* id, workflow, step: 1..128 of [A-Za-z0-9._:@-]. */
static int check_name(const char *field, const char *s, au_error *err) {
        size_t n = strlen(s);

        if (n == 0 || n > SPEC_MAX_NAME)
                return au_error_set_field(err, field, "%s: must be 1 to %d characters", field,
                                          SPEC_MAX_NAME);
        for (size_t i = 0; i < n; i++)
                if (!name_char_ok(s[i]))
                        return au_error_set_field(
                                err, field,
                                "%s: invalid character at offset %zu (allowed: A-Z a-z 0-9 . _ : @ -)",
                                field, i);
        return 0;
}

static bool env_name_ok(const char *s, size_t n) {
        if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_'))
                        return false;
        }
        return true;
}

/* NULL when name is a valid relative file name, else why not. */
static const char *file_name_problem(const char *name) {
        size_t n = strlen(name);

        if (n == 0)
                return "empty";
        if (n > SPEC_MAX_PATH)
                return "longer than 4096 bytes";
        if (name[0] == '/')
                return "not relative to /work";
        for (const char *p = name;;) {
                size_t c = strcspn(p, "/");

                if (c == 0)
                        return "empty path component";
                if (c > SPEC_MAX_COMPONENT)
                        return "a path component is longer than 255 bytes";
                if ((c == 1 && p[0] == '.') || (c == 2 && p[0] == '.' && p[1] == '.'))
                        return "'.' and '..' components are not allowed";
                if (p[c] == '\0')
                        return NULL;
                p += c + 1;
        }
}

/* True when path has a ".." component. */
static bool path_has_dotdot(const char *path) {
        for (const char *p = path;;) {
                size_t c = strcspn(p, "/");

                if (c == 2 && p[0] == '.' && p[1] == '.')
                        return true;
                if (p[c] == '\0')
                        return false;
                p += c + 1;
        }
}

/* True when path is /work or below it, however it is spelled. */
static bool path_in_work(const char *path) {
        while (*path == '/')
                path++;
        if (strncmp(path, "work", 4) != 0)
                return false;
        return path[4] == '\0' || path[4] == '/';
}

static size_t strv_length(char **l) {
        size_t n = 0;

        if (l)
                while (l[n])
                        n++;
        return n;
}

static int apply_limits(sbx_spec *spec, const sbx_level_policy *lp, const char *level, au_error *err) {
        char field[64];

        for (size_t i = 0; i < ELEMENTSOF(sbx_limit_fields); i++) {
                const sbx_limit_field *f = &sbx_limit_fields[i];
                uint64_t v = sbx_limit_get(&spec->limits, f), ceiling = sbx_limit_get(&lp->ceilings, f);

                snprintf(field, sizeof(field), "limits.%s", f->name);
                if (v == 0) {
                        v = sbx_limit_get(&lp->defaults, f);
                        sbx_limit_set(&spec->limits, f, v);
                }
                if (f->offset == offsetof(sbx_limits, work_bytes)) {
                        if (!lp->work_writable && v > 0)
                                return au_error_set_field(err, field, "%s: the %s level has no /work", field,
                                                          level);
                        if (lp->work_writable && v == 0)
                                return au_error_set_field(err, field, "%s: must be positive at the %s level",
                                                          field, level);
                } else if (v == 0)
                        return au_error_set_field(err, field, "%s: must be positive", field);
                if (f->offset == offsetof(sbx_limits, memory_bytes) && v < SBX_MIN_MEMORY_BYTES)
                        return au_error_set_field(err, field,
                                                  "%s: %" PRIu64 " is below the minimum of %" PRIu64, field,
                                                  v, SBX_MIN_MEMORY_BYTES);
                if (v > ceiling)
                        return au_error_set_field(err, field,
                                                  "%s: %" PRIu64 " exceeds the %s ceiling of %" PRIu64,
                                                  field, v, level, ceiling);
        }
        return 0;
}

static int check_cwd(const char *cwd, bool work, const char *level, au_error *err) {
        if (cwd[0] != '/')
                return au_error_set_field(err, "cwd", "cwd: must be an absolute path");
        if (strlen(cwd) > SPEC_MAX_PATH)
                return au_error_set_field(err, "cwd", "cwd: longer than %d bytes", SPEC_MAX_PATH);
        if (path_has_dotdot(cwd))
                return au_error_set_field(err, "cwd", "cwd: '..' components are not allowed");
        if (!work && path_in_work(cwd))
                return au_error_set_field(err, "cwd", "cwd: the %s level has no /work", level);
        return 0;
}

static int check_argv_env(sbx_spec *spec, const sbx_policy *policy, au_error *err) {
        uint64_t bytes = 0;
        char field[64];

        spec->argc = strv_length(spec->argv);
        if (spec->argc == 0)
                return au_error_set_field(err, "argv", "argv: must not be empty");
        if (spec->argc > policy->max_argv)
                return au_error_set_field(err, "argv", "argv: %zu entries, over the limit of %" PRIu32,
                                          spec->argc, policy->max_argv);
        /* An absolute path, or a program name the run's PATH is searched for (as execvp). */
        if (spec->argv[0][0] != '/' && (spec->argv[0][0] == '\0' || strchr(spec->argv[0], '/')))
                return au_error_set_field(err, "argv[0]",
                                          "argv[0]: must be an absolute path or a program name "
                                          "looked up on PATH (no '/')");
        for (size_t i = 0; i < spec->argc; i++)
                bytes += strlen(spec->argv[i]) + 1;

        spec->n_env = strv_length(spec->env);
        if (spec->n_env > SPEC_MAX_ENV)
                return au_error_set_field(err, "env", "env: %zu entries, over the limit of %d", spec->n_env,
                                          SPEC_MAX_ENV);
        for (size_t i = 0; i < spec->n_env; i++) {
                const char *e = spec->env[i], *eq = strchr(e, '=');

                snprintf(field, sizeof(field), "env[%zu]", i);
                if (!eq || !env_name_ok(e, (size_t) (eq - e)))
                        return au_error_set_field(
                                err, field, "%s: expected NAME=VALUE, NAME matching [A-Za-z_][A-Za-z0-9_]*",
                                field);
                for (size_t j = 0; j < i; j++)
                        if (strncmp(spec->env[j], e, (size_t) (eq - e) + 1) == 0)
                                return au_error_set_field(err, field, "%s: %.*s is set twice", field,
                                                          (int) (eq - e), e);
                bytes += strlen(e) + 1;
        }
        if (bytes > SPEC_MAX_ARGV_ENV_BYTES)
                return au_error_set_field(
                        err, "argv", "argv: argv and env take %" PRIu64 " bytes, over the limit of %" PRIu64,
                        bytes, SPEC_MAX_ARGV_ENV_BYTES);
        return 0;
}

static int check_files(const sbx_spec *spec, const sbx_policy *policy, const sbx_level_policy *lp,
                       const char *level, au_error *err) {
        uint64_t total = 0;
        char field[128];

        if (spec->n_files == 0)
                return 0;
        if (!spec->files)
                return au_error_set_field(err, "files", "files: n_files is set but files is NULL");
        if (!lp->work_writable)
                return au_error_set_field(err, "files", "files: the %s level has no /work", level);
        if (spec->n_files > policy->max_files)
                return au_error_set_field(err, "files", "files: %zu entries, over the limit of %" PRIu32,
                                          spec->n_files, policy->max_files);

        for (size_t i = 0; i < spec->n_files; i++) {
                const sbx_file *f = &spec->files[i];
                const char *why;

                if (!f->name)
                        return au_error_set_field(err, "files", "files: entry %zu has no name", i);
                why = file_name_problem(f->name);
                if (why)
                        return au_error_set_field(err, "files", "files: invalid name '%.100s%s': %s",
                                                  f->name, strlen(f->name) > 100 ? "..." : "", why);
                au_json_path(field, sizeof(field), "files", f->name);
                if (f->mode & ~0777U) {
                        char sub[160];

                        au_json_path(sub, sizeof(sub), field, "mode");
                        return au_error_set_field(
                                err, sub,
                                "%s: %#o is not permission bits (0 to 0777; no setuid, setgid or sticky)",
                                sub, f->mode);
                }
                if (!f->data && f->size > 0)
                        return au_error_set_field(err, field, "%s: size is set but data is NULL", field);
                total += f->size;

                /* A file cannot also be a directory of another: "a" and "a/b" (or "a" twice). */
                size_t n = strlen(f->name);
                for (size_t j = 0; j < i; j++) {
                        const char *o = spec->files[j].name;
                        size_t m = strlen(o);
                        bool clash = (m == n && strcmp(o, f->name) == 0) ||
                                     (m < n && strncmp(o, f->name, m) == 0 && f->name[m] == '/') ||
                                     (n < m && strncmp(o, f->name, n) == 0 && o[n] == '/');

                        if (clash)
                                return au_error_set_field(err, field, "%s: conflicts with files.%s", field,
                                                          o);
                }
        }
        if (total > spec->limits.work_bytes)
                return au_error_set_field(err, "files",
                                          "files: %" PRIu64
                                          " bytes in total, over limits.work_bytes of %" PRIu64,
                                          total, spec->limits.work_bytes);
        return 0;
}

/*
 * Fills what the spec left at 0/NULL from policy (NULL: the built-in policy)
 * and checks every field, hand-built specs included. trust
 * _SBX_TRUST_INVALID means the policy's default_trust. Idempotent. Returns
 * 0, -EINVAL with err naming the field, or -ENOMEM.
 */
int sbx_spec_apply_policy(sbx_spec *spec, const sbx_policy *policy, au_error *err) {
        const sbx_level_policy *lp;
        sbx_policy builtin;
        const char *level;
        int r;

        if (!spec)
                return au_error_set(err, EINVAL, "no spec");
        if (!policy) {
                sbx_policy_init_default(&builtin);
                policy = &builtin;
        }

        if (spec->trust == _SBX_TRUST_INVALID)
                spec->trust = policy->default_trust;
        level = sbx_trust_to_string(spec->trust);
        if (!level)
                return au_error_set_field(err, "trust", "trust: invalid trust level %d", (int) spec->trust);
        lp = &policy->level[spec->trust];
        if (!lp->enabled)
                return au_error_set_field(err, "trust", "trust: the %s level is disabled on this node",
                                          level);

        if (spec->id && (r = check_name("id", spec->id, err)) < 0)
                return r;
        if (spec->workflow && (r = check_name("workflow", spec->workflow, err)) < 0)
                return r;
        if (spec->step && (r = check_name("step", spec->step, err)) < 0)
                return r;

        r = apply_limits(spec, lp, level, err);
        if (r < 0)
                return r;

        if (!spec->network_set)
                spec->network = lp->default_network;
        if (!sbx_network_to_string(spec->network))
                return au_error_set_field(err, "network", "network: invalid network %d",
                                          (int) spec->network);
        if (!lp->network_allowed[spec->network])
                return au_error_set_field(err, "network", "network: '%s' is not allowed at the %s level",
                                          sbx_network_to_string(spec->network), level);
        /*
         * A node without egress settings refuses it here, as rejected, rather
         * than failing every node it is moved to as sandbox_error.
         */
        if (spec->network == SBX_NET_EGRESS && !policy->egress_configured)
                return au_error_set_field(err, "network", "network: egress is not configured on this node");
        if (spec->egress_allow_set && spec->network != SBX_NET_EGRESS)
                return au_error_set_field(err, "egress", "egress: only for network egress (this run has %s)",
                                          sbx_network_to_string(spec->network));
        if (spec->egress.n_allow > SBX_EGRESS_MAX_RULES)
                return au_error_set_field(err, "egress.allow", "egress.allow: over %d entries",
                                          SBX_EGRESS_MAX_RULES);
        for (uint32_t i = 0; spec->egress_allow_set && i < spec->egress.n_allow; i++) {
                bool inside = false;
                for (uint32_t j = 0; j < lp->egress.n_allow && !inside; j++)
                        inside = sbx_egress_rule_within(&spec->egress.allow[i], &lp->egress.allow[j]);
                if (!inside) {
                        char what[80], field[40];
                        sbx_egress_rule_format(&spec->egress.allow[i], what, sizeof(what));
                        snprintf(field, sizeof(field), "egress.allow[%u]", i);
                        return au_error_set_field(err, field,
                                                  "%s: %s is not inside the %s level's egress allowlist",
                                                  field, what, level);
                }
        }
        if (spec->network == SBX_NET_EGRESS) {
                sbx_egress_policy e = lp->egress;
                if (spec->egress_allow_set) {
                        memcpy(e.allow, spec->egress.allow, sizeof(e.allow));
                        e.n_allow = spec->egress.n_allow;
                }
                spec->egress = e;
        }

        r = check_argv_env(spec, policy, err);
        if (r < 0)
                return r;

        if (!spec->stdin_data && spec->stdin_size > 0)
                return au_error_set_field(err, "stdin", "stdin: stdin_size is set but stdin_data is NULL");
        if (spec->stdin_size > SPEC_MAX_STDIN)
                return au_error_set_field(err, "stdin", "stdin: %zu bytes, over the limit of %" PRIu64,
                                          spec->stdin_size, SPEC_MAX_STDIN);

        r = check_files(spec, policy, lp, level, err);
        if (r < 0)
                return r;

        if (!spec->cwd) {
                spec->cwd = strdup(lp->work_writable ? "/work" : "/");
                if (!spec->cwd)
                        return au_error_set(err, ENOMEM, "apply policy");
        }
        return check_cwd(spec->cwd, lp->work_writable, level, err);
}

/* ---- parsing -------------------------------------------------------------- */

static int read_name(yajl_val v, const char *field, char **ret, au_error *err) {
        const char *s;
        int r;

        r = au_json_get_string(v, field, &s, err);
        if (r < 0)
                return r;
        r = check_name(field, s, err);
        if (r < 0)
                return r;
        *ret = strdup(s);
        return *ret ? 0 : au_error_set(err, ENOMEM, "parse spec");
}

static int read_argv(yajl_val v, const sbx_policy *policy, sbx_spec *spec, au_error *err) {
        char field[32];
        size_t n;
        int r;

        r = au_json_check_array(v, "argv", err);
        if (r < 0)
                return r;
        n = v->u.array.len;
        if (n == 0)
                return au_error_set_field(err, "argv", "argv: must not be empty");
        if (n > policy->max_argv)
                return au_error_set_field(err, "argv", "argv: %zu entries, over the limit of %" PRIu32, n,
                                          policy->max_argv);
        spec->argv = calloc(n + 1, sizeof(char *));
        if (!spec->argv)
                return au_error_set(err, ENOMEM, "parse spec");
        for (size_t i = 0; i < n; i++) {
                const char *s;

                snprintf(field, sizeof(field), "argv[%zu]", i);
                r = au_json_get_string(v->u.array.values[i], field, &s, err);
                if (r < 0)
                        return r;
                spec->argv[i] = strdup(s);
                if (!spec->argv[i])
                        return au_error_set(err, ENOMEM, "parse spec");
        }
        spec->argc = n;
        return 0;
}

static int read_env(yajl_val v, sbx_spec *spec, au_error *err) {
        char field[300];
        size_t n;
        int r;

        if (!YAJL_IS_OBJECT(v))
                return au_error_set_field(err, "env", "env: expected an object");
        n = v->u.object.len;
        if (n > SPEC_MAX_ENV)
                return au_error_set_field(err, "env", "env: %zu entries, over the limit of %d", n,
                                          SPEC_MAX_ENV);
        r = au_json_check_object(v, "env", NULL, err);
        if (r < 0)
                return r;
        spec->env = calloc(n + 1, sizeof(char *));
        if (!spec->env)
                return au_error_set(err, ENOMEM, "parse spec");
        for (size_t i = 0; i < n; i++) {
                const char *name = v->u.object.keys[i], *value;

                au_json_path(field, sizeof(field), "env", name);
                if (!env_name_ok(name, strlen(name)))
                        return au_error_set_field(
                                err, field, "%s: invalid variable name (expected [A-Za-z_][A-Za-z0-9_]*)",
                                field);
                r = au_json_get_string(v->u.object.values[i], field, &value, err);
                if (r < 0)
                        return r;
                if (asprintf(&spec->env[i], "%s=%s", name, value) < 0) {
                        spec->env[i] = NULL;
                        return au_error_set(err, ENOMEM, "parse spec");
                }
        }
        spec->n_env = n;
        return 0;
}

static int read_file(yajl_val v, const char *name, sbx_file *f, au_error *err) {
        static const char *const known[] = {"content", "base64", "mode", NULL};
        char field[300], sub[320];
        const char *s;
        yajl_val content, b64, mode;
        int r;

        au_json_path(field, sizeof(field), "files", name);
        f->mode = SPEC_DEFAULT_FILE_MODE;

        if (YAJL_IS_STRING(v)) {
                s = v->u.string;
                f->size = strlen(s);
                f->data = strdup(s);
                return f->data ? 0 : au_error_set(err, ENOMEM, "parse spec");
        }
        if (!YAJL_IS_OBJECT(v))
                return au_error_set_field(err, field, "%s: expected a string or an object", field);
        r = au_json_check_object(v, field, known, err);
        if (r < 0)
                return r;

        content = au_json_get(v, "content");
        b64 = au_json_get(v, "base64");
        if (!content == !b64)
                return au_error_set_field(err, field,
                                          "%s: expected exactly one of \"content\" and \"base64\"", field);
        if ((mode = au_json_get(v, "mode"))) {
                uint32_t m;

                au_json_path(sub, sizeof(sub), field, "mode");
                r = au_json_get_uint32(mode, sub, &m, err);
                if (r < 0)
                        return r;
                if (m & ~0777U)
                        return au_error_set_field(
                                err, sub,
                                "%s: %#o is not permission bits (0 to 0777; no setuid, setgid or sticky)",
                                sub, m);
                f->mode = m;
        }
        if (content) {
                au_json_path(sub, sizeof(sub), field, "content");
                r = au_json_get_string(content, sub, &s, err);
                if (r < 0)
                        return r;
                f->size = strlen(s);
                f->data = strdup(s);
                return f->data ? 0 : au_error_set(err, ENOMEM, "parse spec");
        }
        au_json_path(sub, sizeof(sub), field, "base64");
        r = au_json_get_string(b64, sub, &s, err);
        if (r < 0)
                return r;
        r = au_base64_decode(s, strlen(s), &f->data, &f->size);
        if (r == -ENOMEM)
                return au_error_set(err, ENOMEM, "parse spec");
        if (r < 0)
                return au_error_set_field(err, sub, "%s: invalid base64", sub);
        return 0;
}

static int read_files(yajl_val v, const sbx_policy *policy, sbx_spec *spec, au_error *err) {
        size_t n;
        int r;

        if (!YAJL_IS_OBJECT(v))
                return au_error_set_field(err, "files", "files: expected an object");
        n = v->u.object.len;
        if (n > policy->max_files)
                return au_error_set_field(err, "files", "files: %zu entries, over the limit of %" PRIu32, n,
                                          policy->max_files);
        r = au_json_check_object(v, "files", NULL, err);
        if (r < 0)
                return r;
        if (n == 0)
                return 0;
        spec->files = calloc(n, sizeof(sbx_file));
        if (!spec->files)
                return au_error_set(err, ENOMEM, "parse spec");
        for (size_t i = 0; i < n; i++) {
                const char *name = v->u.object.keys[i], *why = file_name_problem(name);
                sbx_file *f = &spec->files[i];

                if (why)
                        return au_error_set_field(err, "files", "files: invalid name '%.100s%s': %s", name,
                                                  strlen(name) > 100 ? "..." : "", why);
                spec->n_files = i + 1; /* so that sbx_spec_free() sees what is allocated */
                f->name = strdup(name);
                if (!f->name)
                        return au_error_set(err, ENOMEM, "parse spec");
                r = read_file(v->u.object.values[i], name, f, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int read_limits(yajl_val v, sbx_limits *l, bool *ret_work_zero, au_error *err) {
        const char *known[ELEMENTSOF(sbx_limit_fields) + 1] = {};
        char field[64];
        int r;

        for (size_t i = 0; i < ELEMENTSOF(sbx_limit_fields); i++)
                known[i] = sbx_limit_fields[i].name;
        r = au_json_check_object(v, "limits", known, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(sbx_limit_fields); i++) {
                const sbx_limit_field *f = &sbx_limit_fields[i];
                yajl_val x = au_json_get(v, f->name);
                uint64_t u;

                if (!x)
                        continue;
                snprintf(field, sizeof(field), "limits.%s", f->name);
                r = au_json_get_uint64(x, field, &u, err);
                if (r < 0)
                        return r;
                if (u > (f->is32 ? UINT32_MAX : UINT64_MAX))
                        return au_error_set_field(err, field, "%s: %" PRIu64 " is out of range", field, u);
                if (u == 0) {
                        /* 0 would mean "the default"; only "no /work" may be said with it. */
                        if (f->offset != offsetof(sbx_limits, work_bytes))
                                return au_error_set_field(err, field, "%s: expected a positive integer",
                                                          field);
                        *ret_work_zero = true;
                }
                sbx_limit_set(l, f, u);
        }
        return 0;
}

static int read_spec(yajl_val root, const sbx_policy *policy, sbx_spec *spec, au_error *err) {
        static const char *const known[] = {"id",     "workflow", "step",   "attempt", "argv",
                                            "env",    "stdin",    "cwd",    "files",   "trust",
                                            "limits", "network",  "egress", NULL};
        bool work_zero = false;
        const char *s;
        yajl_val x;
        int r;

        r = au_json_check_object(root, "", known, err);
        if (r < 0)
                return r;

        if ((x = au_json_get(root, "id")) && (r = read_name(x, "id", &spec->id, err)) < 0)
                return r;
        if ((x = au_json_get(root, "workflow")) && (r = read_name(x, "workflow", &spec->workflow, err)) < 0)
                return r;
        if ((x = au_json_get(root, "step")) && (r = read_name(x, "step", &spec->step, err)) < 0)
                return r;
        if ((x = au_json_get(root, "attempt"))) {
                r = au_json_get_uint32(x, "attempt", &spec->attempt, err);
                if (r < 0)
                        return r;
                if (spec->attempt == 0)
                        return au_error_set_field(err, "attempt", "attempt: must be at least 1");
        }

        x = au_json_get(root, "argv");
        if (!x)
                return au_error_set_field(err, "argv", "argv: required");
        r = read_argv(x, policy, spec, err);
        if (r < 0)
                return r;

        if ((x = au_json_get(root, "env")) && (r = read_env(x, spec, err)) < 0)
                return r;

        if ((x = au_json_get(root, "stdin"))) {
                r = au_json_get_string(x, "stdin", &s, err);
                if (r < 0)
                        return r;
                spec->stdin_size = strlen(s);
                if (spec->stdin_size > SPEC_MAX_STDIN)
                        return au_error_set_field(err, "stdin",
                                                  "stdin: %zu bytes, over the limit of %" PRIu64,
                                                  spec->stdin_size, SPEC_MAX_STDIN);
                spec->stdin_data = strdup(s);
                if (!spec->stdin_data)
                        return au_error_set(err, ENOMEM, "parse spec");
        }

        if ((x = au_json_get(root, "cwd"))) {
                r = au_json_get_string(x, "cwd", &s, err);
                if (r < 0)
                        return r;
                spec->cwd = strdup(s);
                if (!spec->cwd)
                        return au_error_set(err, ENOMEM, "parse spec");
        }

        if ((x = au_json_get(root, "files")) && (r = read_files(x, policy, spec, err)) < 0)
                return r;

        if ((x = au_json_get(root, "trust"))) {
                r = au_json_get_string(x, "trust", &s, err);
                if (r < 0)
                        return r;
                spec->trust = sbx_trust_from_string(s);
                if (spec->trust == _SBX_TRUST_INVALID)
                        return au_error_set_field(err, "trust", "trust: unknown trust level '%s'", s);
        }

        if ((x = au_json_get(root, "limits")) && (r = read_limits(x, &spec->limits, &work_zero, err)) < 0)
                return r;
        if (work_zero && policy->level[spec->trust].work_writable)
                return au_error_set_field(
                        err, "limits.work_bytes",
                        "limits.work_bytes: expected a positive integer (the %s level has a /work)",
                        sbx_trust_to_string(spec->trust));

        if ((x = au_json_get(root, "network"))) {
                r = au_json_get_string(x, "network", &s, err);
                if (r < 0)
                        return r;
                spec->network = sbx_network_from_string(s);
                if (spec->network == _SBX_NET_INVALID)
                        return au_error_set_field(err, "network", "network: unknown network '%s'", s);
                spec->network_set = true;
        }

        if ((x = au_json_get(root, "egress"))) {
                static const char *const egress_known[] = {"allow", NULL};
                if ((r = au_json_check_object(x, "egress", egress_known, err)) < 0)
                        return r;
                yajl_val a = au_json_get(x, "allow");
                if (!a)
                        return au_error_set_field(err, "egress.allow", "egress.allow: required");
                r = sbx_egress_rules_from_json(a, "egress.allow", spec->egress.allow, &spec->egress.n_allow,
                                               err);
                if (r < 0)
                        return r;
                spec->egress_allow_set = true;
        }
        return 0;
}

/*
 * Parses len bytes of JSON into a complete spec (defaults applied and
 * checked, see sbx_spec_apply_policy()). policy NULL means the built-in
 * one. JSON strings cannot carry NUL bytes here; binary files go as base64.
 * Returns 0, -EINVAL/-E2BIG with err naming the field, or -ENOMEM; *ret is
 * untouched on failure.
 */
int sbx_spec_from_json(const char *json, size_t len, const sbx_policy *policy, sbx_spec **ret,
                       au_error *err) {
        _cleanup_json_ yajl_val root = NULL;
        _cleanup_sbx_spec_ sbx_spec *spec = NULL;
        sbx_policy builtin;
        int r;

        if (!policy) {
                sbx_policy_init_default(&builtin);
                policy = &builtin;
        }

        r = au_json_parse(json, len, (size_t) policy->max_spec_bytes, &root, err);
        if (r < 0)
                return r;

        spec = calloc(1, sizeof(*spec));
        if (!spec)
                return au_error_set(err, ENOMEM, "parse spec");
        spec->trust = policy->default_trust;

        r = read_spec(root, policy, spec, err);
        if (r < 0)
                return r;
        r = sbx_spec_apply_policy(spec, policy, err);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(spec);
        return 0;
}

/* ---- writing -------------------------------------------------------------- */

static int gen_file(yajl_gen g, const sbx_file *f) {
        bool text = f->data && au_utf8_valid(f->data, f->size) && !memchr(f->data, '\0', f->size);

        AU_JSON_GEN_TRY(au_json_gen_string(g, f->name));
        if (text && f->mode == SPEC_DEFAULT_FILE_MODE)
                return au_json_gen_stringn(g, f->data, f->size);

        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        if (text) {
                AU_JSON_GEN_TRY(au_json_gen_string(g, "content"));
                AU_JSON_GEN_TRY(au_json_gen_stringn(g, f->data, f->size));
        } else {
                _cleanup_free_ char *b64 = au_base64_encode(f->data ? f->data : "", f->size);

                if (!b64)
                        return -ENOMEM;
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "base64", b64));
        }
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "mode", f->mode));
        return au_json_gen_map_close(g);
}

static int gen_spec(yajl_gen g, const sbx_spec *spec) {
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        if (spec->id)
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "id", spec->id));
        if (spec->workflow)
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "workflow", spec->workflow));
        if (spec->step)
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "step", spec->step));
        if (spec->attempt > 0)
                AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "attempt", spec->attempt));

        AU_JSON_GEN_TRY(au_json_gen_string(g, "argv"));
        AU_JSON_GEN_TRY(au_json_gen_array_open(g));
        for (size_t i = 0; spec->argv && spec->argv[i]; i++)
                AU_JSON_GEN_TRY(au_json_gen_string(g, spec->argv[i]));
        AU_JSON_GEN_TRY(au_json_gen_array_close(g));

        AU_JSON_GEN_TRY(au_json_gen_string(g, "env"));
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        for (size_t i = 0; spec->env && spec->env[i]; i++) {
                const char *e = spec->env[i], *eq = strchr(e, '=');

                AU_JSON_GEN_TRY(au_json_gen_stringn(g, e, eq ? (size_t) (eq - e) : strlen(e)));
                AU_JSON_GEN_TRY(au_json_gen_string(g, eq ? eq + 1 : ""));
        }
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));

        if (spec->stdin_data) {
                AU_JSON_GEN_TRY(au_json_gen_string(g, "stdin"));
                AU_JSON_GEN_TRY(au_json_gen_stringn(g, spec->stdin_data, spec->stdin_size));
        }
        if (spec->cwd)
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "cwd", spec->cwd));

        AU_JSON_GEN_TRY(au_json_gen_string(g, "files"));
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        for (size_t i = 0; spec->files && i < spec->n_files; i++)
                AU_JSON_GEN_TRY(gen_file(g, &spec->files[i]));
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));

        if (sbx_trust_to_string(spec->trust))
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "trust", sbx_trust_to_string(spec->trust)));

        AU_JSON_GEN_TRY(au_json_gen_string(g, "limits"));
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        for (size_t i = 0; i < ELEMENTSOF(sbx_limit_fields); i++)
                AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, sbx_limit_fields[i].name,
                                                      sbx_limit_get(&spec->limits, &sbx_limit_fields[i])));
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));

        if (sbx_network_to_string(spec->network))
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "network", sbx_network_to_string(spec->network)));
        if (spec->egress_allow_set) {
                AU_JSON_GEN_TRY(au_json_gen_string(g, "egress"));
                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                AU_JSON_GEN_TRY(au_json_gen_string(g, "allow"));
                AU_JSON_GEN_TRY(sbx_egress_rules_gen(g, spec->egress.allow, spec->egress.n_allow));
                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        }
        return au_json_gen_map_close(g);
}

/*
 * The spec as DESIGN.md's JSON, every field written out (files that are not
 * NUL-free UTF-8 as {"base64":...,"mode":N}); stdin that is not valid UTF-8
 * is repaired with U+FFFD. The caller frees. NULL on ENOMEM.
 */
char *sbx_spec_to_json(const sbx_spec *spec) {
        _cleanup_json_gen_ yajl_gen g = NULL;

        if (!spec)
                return NULL;
        g = au_json_gen_new(false);
        if (!g)
                return NULL;
        if (gen_spec(g, spec) < 0)
                return NULL;
        return au_json_gen_finish(g, NULL);
}
