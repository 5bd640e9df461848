/* SPDX-License-Identifier: MIT */
/* Trust levels: built-in values and /etc/autoos/policy.json (DESIGN.md "Trust levels"). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json.h"
#include "sandbox/egress-rules.h"
#include "sandbox/sandbox-internal.h"

#define KiB UINT64_C(1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

/* A policy file is small; anything bigger is not one. */
#define POLICY_MAX_BYTES (1024 * 1024)

/* The limits fields, in the order DESIGN.md lists them. */

void sbx_policy_init_default(sbx_policy *ret) {
        static const sbx_limits restricted_defaults = {
                .memory_bytes = 256 * MiB,
                .cpu_percent = 50,
                .pids = 64,
                .wall_ms = 30 * 1000,
                .cpu_ms = 20 * 1000,
                .output_bytes = 1 * MiB,
                .work_bytes = 0,
        };
        static const sbx_limits restricted_ceilings = {
                .memory_bytes = 1 * GiB,
                .cpu_percent = 100,
                .pids = 256,
                .wall_ms = 10 * 60 * 1000,
                .cpu_ms = 10 * 60 * 1000,
                .output_bytes = 16 * MiB,
                .work_bytes = 0,
        };
        static const sbx_limits standard_defaults = {
                .memory_bytes = 512 * MiB,
                .cpu_percent = 50,
                .pids = 256,
                .wall_ms = 30 * 1000,
                .cpu_ms = 20 * 1000,
                .output_bytes = 1 * MiB,
                .work_bytes = 64 * MiB,
        };
        static const sbx_limits standard_ceilings = {
                .memory_bytes = 4 * GiB,
                .cpu_percent = 200,
                .pids = 1024,
                .wall_ms = 60 * 60 * 1000,
                .cpu_ms = 60 * 60 * 1000,
                .output_bytes = 64 * MiB,
                .work_bytes = 1 * GiB,
        };
        sbx_policy p = {
                .default_trust = SBX_TRUST_STANDARD,
                .max_argv = 4096,
                .max_spec_bytes = 64 * MiB,
                .max_files = 1024,
        };

        p.level[SBX_TRUST_RESTRICTED] = (sbx_level_policy){
                .defaults = restricted_defaults,
                .ceilings = restricted_ceilings,
                .default_network = SBX_NET_NONE,
                .network_allowed = {[SBX_NET_NONE] = true},
                .work_writable = false,
                .enabled = true,
        };
        p.level[SBX_TRUST_STANDARD] = (sbx_level_policy){
                .defaults = standard_defaults,
                .ceilings = standard_ceilings,
                .default_network = SBX_NET_LOOPBACK,
                .network_allowed = {[SBX_NET_NONE] = true, [SBX_NET_LOOPBACK] = true},
                .work_writable = true,
                .enabled = true,
        };
        p.level[SBX_TRUST_RESTRICTED].roles[SBX_ROLE_OPERATOR] = true;
        p.level[SBX_TRUST_RESTRICTED].roles[SBX_ROLE_ADMIN] = true;
        p.level[SBX_TRUST_STANDARD].roles[SBX_ROLE_OPERATOR] = true;
        p.level[SBX_TRUST_STANDARD].roles[SBX_ROLE_ADMIN] = true;

        p.level[SBX_TRUST_ELEVATED] = p.level[SBX_TRUST_STANDARD];
        p.level[SBX_TRUST_ELEVATED].network_allowed[SBX_NET_EGRESS] = true;
        /* No destination but the node's resolvers until policy.json names some. */
        p.level[SBX_TRUST_ELEVATED].egress = (sbx_egress_policy){
                .bandwidth_bytes = 1 * MiB,
                .connections = 64,
                .packets_per_second = 2000,
                .dns_queries_per_second = 20,
        };
        p.level[SBX_TRUST_ELEVATED].roles[SBX_ROLE_OPERATOR] = false;
        p.level[SBX_TRUST_PRIVILEGED] = p.level[SBX_TRUST_ELEVATED];
        /* ptrace and friends inside the run: a node's owner turns it on in policy.json. */
        p.level[SBX_TRUST_PRIVILEGED].enabled = false;

        *ret = p;
}

static const char *const role_names[_SBX_ROLE_MAX] = {
        [SBX_ROLE_VIEWER] = "viewer",
        [SBX_ROLE_OPERATOR] = "operator",
        [SBX_ROLE_ADMIN] = "admin",
};

/* The coordinator's spelling of a role; NULL for anything else. */
const char *sbx_role_to_string(sbx_role r) {
        if (r < 0 || r >= _SBX_ROLE_MAX)
                return NULL;
        return role_names[r];
}

/* Exact (case-sensitive) names only; _SBX_ROLE_INVALID for NULL or anything else. */
sbx_role sbx_role_from_string(const char *s) {
        if (!s)
                return _SBX_ROLE_INVALID;
        for (int i = 0; i < _SBX_ROLE_MAX; i++)
                if (strcmp(s, role_names[i]) == 0)
                        return (sbx_role) i;
        return _SBX_ROLE_INVALID;
}

/*
 * Whether role may submit runs at level: the level is enabled and its roles
 * list names the role (sandbox.h). No ranking: the list is the whole answer.
 */
bool sbx_policy_allows_role(const sbx_policy *p, sbx_trust level, const char *role) {
        sbx_role r = sbx_role_from_string(role);

        if (!p || level < 0 || level >= _SBX_TRUST_MAX || r == _SBX_ROLE_INVALID)
                return false;
        return p->level[level].enabled && p->level[level].roles[r];
}

static int read_limits(yajl_val v, const char *path, sbx_limits *l, au_error *err) {
        const char *known[ELEMENTSOF(sbx_limit_fields) + 1] = {};
        char field[128];
        int r;

        for (size_t i = 0; i < ELEMENTSOF(sbx_limit_fields); i++)
                known[i] = sbx_limit_fields[i].name;
        r = au_json_check_object(v, path, known, err);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(sbx_limit_fields); i++) {
                const sbx_limit_field *f = &sbx_limit_fields[i];
                yajl_val x = au_json_get(v, f->name);
                char *p = (char *) l + f->offset;

                if (!x)
                        continue;
                au_json_path(field, sizeof(field), path, f->name);
                if (f->is32)
                        r = au_json_get_uint32(x, field, (uint32_t *) p, err);
                else
                        r = au_json_get_uint64(x, field, (uint64_t *) p, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A level's "network":{"egress":{...}}: what its egress runs may reach, and how fast. */
static int read_egress(yajl_val v, const char *path, sbx_egress_policy *ep, au_error *err) {
        static const char *const known[] = {
                "allow", "bandwidth_bytes", "connections", "packets_per_second", "dns_queries_per_second",
                NULL};
        sbx_egress_policy e = *ep;
        char field[160];
        yajl_val x;
        int r;

        if ((r = au_json_check_object(v, path, known, err)) < 0)
                return r;
        if ((x = au_json_get(v, "allow"))) {
                au_json_path(field, sizeof(field), path, "allow");
                if ((r = sbx_egress_rules_from_json(x, field, e.allow, &e.n_allow, err)) < 0)
                        return r;
        }
        if ((x = au_json_get(v, "bandwidth_bytes"))) {
                au_json_path(field, sizeof(field), path, "bandwidth_bytes");
                if ((r = au_json_get_uint64(x, field, &e.bandwidth_bytes, err)) < 0)
                        return r;
                /* libnl's tbf rate is an int of bytes per second; below 1 KiB/s nothing useful passes. */
                if (e.bandwidth_bytes != 0 && (e.bandwidth_bytes < 1024 || e.bandwidth_bytes > INT32_MAX))
                        return au_error_set_field(err, field,
                                                  "%s: %" PRIu64 " is not 0 (unlimited) or 1024..%d", field,
                                                  e.bandwidth_bytes, INT32_MAX);
        }
        static const struct {
                const char *name;
                size_t off;
                uint32_t max;
        } counts[] = {
                {"connections", offsetof(sbx_egress_policy, connections), 1000000},
                {"packets_per_second", offsetof(sbx_egress_policy, packets_per_second), 10000000},
                {"dns_queries_per_second", offsetof(sbx_egress_policy, dns_queries_per_second), 100000},
        };
        for (size_t i = 0; i < ELEMENTSOF(counts); i++) {
                uint32_t u;
                if (!(x = au_json_get(v, counts[i].name)))
                        continue;
                au_json_path(field, sizeof(field), path, counts[i].name);
                if ((r = au_json_get_uint32(x, field, &u, err)) < 0)
                        return r;
                if (u == 0 || u > counts[i].max)
                        return au_error_set_field(err, field, "%s: %u is not 1..%u", field, u,
                                                  counts[i].max);
                memcpy((char *) &e + counts[i].off, &u, sizeof(u));
        }
        *ep = e;
        return 0;
}

static int read_network(yajl_val v, const char *path, sbx_level_policy *lp, au_error *err) {
        static const char *const known[] = {"default", "allowed", "egress", NULL};
        char field[128];
        yajl_val x;
        const char *s;
        int r;

        r = au_json_check_object(v, path, known, err);
        if (r < 0)
                return r;

        x = au_json_get(v, "default");
        if (x) {
                au_json_path(field, sizeof(field), path, "default");
                r = au_json_get_string(x, field, &s, err);
                if (r < 0)
                        return r;
                sbx_network n = sbx_network_from_string(s);
                if (n == _SBX_NET_INVALID)
                        return au_error_set_field(err, field, "%s: unknown network '%s'", field, s);
                lp->default_network = n;
        }

        x = au_json_get(v, "allowed");
        if (x) {
                bool allowed[_SBX_NET_MAX] = {};

                au_json_path(field, sizeof(field), path, "allowed");
                r = au_json_check_array(x, field, err);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < x->u.array.len; i++) {
                        char item[160];

                        snprintf(item, sizeof(item), "%s[%zu]", field, i);
                        r = au_json_get_string(x->u.array.values[i], item, &s, err);
                        if (r < 0)
                                return r;
                        sbx_network n = sbx_network_from_string(s);
                        if (n == _SBX_NET_INVALID)
                                return au_error_set_field(err, item, "%s: unknown network '%s'", item, s);
                        allowed[n] = true;
                }
                memcpy(lp->network_allowed, allowed, sizeof(allowed));
        }

        x = au_json_get(v, "egress");
        if (x) {
                au_json_path(field, sizeof(field), path, "egress");
                r = read_egress(x, field, &lp->egress, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A level's "roles": the whole list of API roles that may submit it (may be empty). */
static int read_roles(yajl_val v, const char *path, sbx_level_policy *lp, au_error *err) {
        bool roles[_SBX_ROLE_MAX] = {};
        const char *s;
        int r;

        r = au_json_check_array(v, path, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->u.array.len; i++) {
                char item[160];

                snprintf(item, sizeof(item), "%s[%zu]", path, i);
                r = au_json_get_string(v->u.array.values[i], item, &s, err);
                if (r < 0)
                        return r;
                sbx_role role = sbx_role_from_string(s);
                if (role == _SBX_ROLE_INVALID)
                        return au_error_set_field(
                                err, item, "%s: unknown role '%s' (expected viewer, operator or admin)",
                                item, s);
                roles[role] = true;
        }
        memcpy(lp->roles, roles, sizeof(roles));
        return 0;
}

static int read_level(yajl_val v, const char *path, sbx_level_policy *lp, au_error *err) {
        static const char *const known[] = {"enabled",  "work",  "network", "defaults",
                                            "ceilings", "roles", NULL};
        char field[128];
        yajl_val x;
        int r;

        r = au_json_check_object(v, path, known, err);
        if (r < 0)
                return r;

        if ((x = au_json_get(v, "enabled"))) {
                au_json_path(field, sizeof(field), path, "enabled");
                r = au_json_get_bool(x, field, &lp->enabled, err);
                if (r < 0)
                        return r;
        }
        if ((x = au_json_get(v, "work"))) {
                au_json_path(field, sizeof(field), path, "work");
                r = au_json_get_bool(x, field, &lp->work_writable, err);
                if (r < 0)
                        return r;
        }
        if ((x = au_json_get(v, "network"))) {
                au_json_path(field, sizeof(field), path, "network");
                r = read_network(x, field, lp, err);
                if (r < 0)
                        return r;
        }
        if ((x = au_json_get(v, "roles"))) {
                au_json_path(field, sizeof(field), path, "roles");
                r = read_roles(x, field, lp, err);
                if (r < 0)
                        return r;
        }
        if ((x = au_json_get(v, "defaults"))) {
                au_json_path(field, sizeof(field), path, "defaults");
                r = read_limits(x, field, &lp->defaults, err);
                if (r < 0)
                        return r;
        }
        if ((x = au_json_get(v, "ceilings"))) {
                au_json_path(field, sizeof(field), path, "ceilings");
                r = read_limits(x, field, &lp->ceilings, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A policy that would make every spec of a level fail, or make no sense, is refused. */
static int validate_level(const sbx_level_policy *lp, const char *name, au_error *err) {
        char field[128];

        for (size_t i = 0; i < ELEMENTSOF(sbx_limit_fields); i++) {
                const sbx_limit_field *f = &sbx_limit_fields[i];
                uint64_t d = sbx_limit_get(&lp->defaults, f), c = sbx_limit_get(&lp->ceilings, f);

                snprintf(field, sizeof(field), "levels.%s.defaults.%s", name, f->name);
                if (d > c)
                        return au_error_set_field(
                                err, field, "%s: %" PRIu64 " exceeds the ceiling of %" PRIu64, field, d, c);
                if (strcmp(f->name, "work_bytes") == 0) {
                        if (lp->work_writable && d == 0)
                                return au_error_set_field(err, field,
                                                          "%s: must be positive when work is true", field);
                } else if (d == 0)
                        return au_error_set_field(err, field, "%s: must be positive", field);
        }
        if (lp->defaults.memory_bytes < SBX_MIN_MEMORY_BYTES) {
                snprintf(field, sizeof(field), "levels.%s.defaults.memory_bytes", name);
                return au_error_set_field(err, field, "%s: %" PRIu64 " is below the minimum of %" PRIu64,
                                          field, lp->defaults.memory_bytes, SBX_MIN_MEMORY_BYTES);
        }
        if (lp->default_network < 0 || lp->default_network >= _SBX_NET_MAX ||
            !lp->network_allowed[lp->default_network]) {
                snprintf(field, sizeof(field), "levels.%s.network.default", name);
                return au_error_set_field(err, field, "%s: '%s' is not in levels.%s.network.allowed", field,
                                          sbx_network_to_string(lp->default_network), name);
        }
        /* Every spec of the level without a network would be refused (spec.c). */
        if (lp->enabled && lp->default_network == SBX_NET_EGRESS) {
                snprintf(field, sizeof(field), "levels.%s.network.default", name);
                return au_error_set_field(err, field, "%s: egress is not configured on this node", field);
        }
        return 0;
}

static int validate_policy(const sbx_policy *p, au_error *err) {
        int r;

        for (int t = 0; t < _SBX_TRUST_MAX; t++) {
                r = validate_level(&p->level[t], sbx_trust_to_string(t), err);
                if (r < 0)
                        return r;
        }
        if (!p->level[p->default_trust].enabled)
                return au_error_set_field(err, "default_trust", "default_trust: the '%s' level is disabled",
                                          sbx_trust_to_string(p->default_trust));
        if (p->max_argv == 0)
                return au_error_set_field(err, "max_argv", "max_argv: must be positive");
        if (p->max_spec_bytes == 0)
                return au_error_set_field(err, "max_spec_bytes", "max_spec_bytes: must be positive");
        if (p->max_spec_bytes > SIZE_MAX)
                return au_error_set_field(err, "max_spec_bytes", "max_spec_bytes: too large for this host");
        return 0;
}

static int read_policy(yajl_val root, sbx_policy *p, au_error *err) {
        static const char *const known[] = {"default_trust", "max_argv", "max_spec_bytes",
                                            "max_files",     "levels",   NULL};
        const char *level_names[_SBX_TRUST_MAX + 1] = {};
        yajl_val x;
        int r;

        r = au_json_check_object(root, "", known, err);
        if (r < 0)
                return r;

        if ((x = au_json_get(root, "default_trust"))) {
                const char *s;

                r = au_json_get_string(x, "default_trust", &s, err);
                if (r < 0)
                        return r;
                sbx_trust t = sbx_trust_from_string(s);
                if (t == _SBX_TRUST_INVALID)
                        return au_error_set_field(err, "default_trust",
                                                  "default_trust: unknown trust level '%s'", s);
                p->default_trust = t;
        }
        if ((x = au_json_get(root, "max_argv"))) {
                r = au_json_get_uint32(x, "max_argv", &p->max_argv, err);
                if (r < 0)
                        return r;
        }
        if ((x = au_json_get(root, "max_spec_bytes"))) {
                r = au_json_get_uint64(x, "max_spec_bytes", &p->max_spec_bytes, err);
                if (r < 0)
                        return r;
        }
        if ((x = au_json_get(root, "max_files"))) {
                r = au_json_get_uint32(x, "max_files", &p->max_files, err);
                if (r < 0)
                        return r;
        }
        if ((x = au_json_get(root, "levels"))) {
                for (int t = 0; t < _SBX_TRUST_MAX; t++)
                        level_names[t] = sbx_trust_to_string(t);
                r = au_json_check_object(x, "levels", level_names, err);
                if (r < 0)
                        return r;
                for (int t = 0; t < _SBX_TRUST_MAX; t++) {
                        yajl_val l = au_json_get(x, level_names[t]);
                        char field[128];

                        if (!l)
                                continue;
                        au_json_path(field, sizeof(field), "levels", level_names[t]);
                        r = read_level(l, field, &p->level[t], err);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/*
 * Reads at most max bytes of path into a new buffer. -EFBIG when the file
 * is bigger.
 */
static int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_len, au_error *err) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return au_error_set(err, errno, "open %s", path);
        buf = malloc(max + 1);
        if (!buf)
                return au_error_set(err, ENOMEM, "read %s", path);
        for (;;) {
                ssize_t n = read(fd, buf + len, max + 1 - len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return au_error_set(err, errno, "read %s", path);
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max) {
                        au_error_set(err, 0, "%s: bigger than %zu bytes", path, max);
                        return -EFBIG;
                }
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/*
 * Loads path over the built-in policy: unknown fields are refused, every
 * field is optional. Errors name the JSON field ("levels.standard.defaults.
 * memory_bytes: ..."); the caller adds the file name. ret is untouched on
 * failure.
 */
int sbx_policy_load(const char *path, sbx_policy *ret, au_error *err) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_json_ yajl_val root = NULL;
        sbx_policy p;
        size_t len = 0;
        int r;

        r = read_file_bounded(path, POLICY_MAX_BYTES, &buf, &len, err);
        if (r < 0)
                return r;
        r = au_json_parse(buf, len, POLICY_MAX_BYTES, &root, err);
        if (r < 0)
                return r;

        sbx_policy_init_default(&p);
        r = read_policy(root, &p, err);
        if (r < 0)
                return r;
        r = validate_policy(&p, err);
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}
