/* SPDX-License-Identifier: MIT */
/*
 * libsandbox: one untrusted run, fully isolated (DESIGN.md "One sandboxed
 * run"). Knows nothing of Redis or PostgreSQL.
 *
 * Life of a run:
 *   sbx_context_new()       once per process: discovers cgroups, compiles the
 *                           seccomp filters, opens the uid pool
 *   sbx_spec_from_json()    or fill an sbx_spec by hand, then sbx_spec_apply_policy()
 *   sbx_run_start()         non-blocking: the child is running user code on success
 *   sbx_run_fd() +          an fd for the caller's own epoll loop; on EPOLLIN call
 *   sbx_run_dispatch()      dispatch until it returns 1 (finished)
 *   sbx_run_take_result()   the result, owned by the caller
 * or sbx_run_sync() for all of it, blocking.
 *
 * Functions that can fail return 0 or a negative errno and, where given,
 * fill an au_error naming what failed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/error.h"

typedef enum sbx_trust {
        SBX_TRUST_RESTRICTED,
        SBX_TRUST_STANDARD,
        SBX_TRUST_ELEVATED,
        SBX_TRUST_PRIVILEGED,
        _SBX_TRUST_MAX,
        _SBX_TRUST_INVALID = -1,
} sbx_trust;

typedef enum sbx_network {
        SBX_NET_NONE,     /* a new network namespace, no interface up */
        SBX_NET_LOOPBACK, /* a new network namespace, lo up */
        SBX_NET_EGRESS,   /* elevated: through a veth the node configures (egress.c) */
        _SBX_NET_MAX,
        _SBX_NET_INVALID = -1,
} sbx_network;

/* DESIGN.md's outcome vocabulary, exactly. */
typedef enum sbx_outcome {
        SBX_OUTCOME_EXITED,
        SBX_OUTCOME_SIGNALED,
        SBX_OUTCOME_TIMEOUT,
        SBX_OUTCOME_CPU_LIMIT,
        SBX_OUTCOME_OOM,
        SBX_OUTCOME_PIDS_LIMIT,
        SBX_OUTCOME_OUTPUT_LIMIT,
        SBX_OUTCOME_SANDBOX_ERROR,
        SBX_OUTCOME_REJECTED,
        _SBX_OUTCOME_MAX,
        _SBX_OUTCOME_INVALID = -1,
} sbx_outcome;

const char *sbx_trust_to_string(sbx_trust t);
sbx_trust sbx_trust_from_string(const char *s);
const char *sbx_network_to_string(sbx_network n);
sbx_network sbx_network_from_string(const char *s);
const char *sbx_outcome_to_string(sbx_outcome o);
sbx_outcome sbx_outcome_from_string(const char *s);

/* Resource limits. In a parsed spec, 0 means "not given: use the policy default". */
typedef struct sbx_limits {
        uint64_t memory_bytes; /* memory cgroup limit, swap 0 */
        uint32_t cpu_percent;  /* CFS quota as percent of one CPU (1..100*ncpu) */
        uint32_t pids;         /* pids cgroup limit */
        uint64_t wall_ms;      /* wall-clock limit -> outcome timeout */
        uint64_t cpu_ms;       /* CPU time of the whole cgroup -> outcome cpu_limit */
        uint64_t output_bytes; /* kept per stream; the rest is discarded and flagged */
        uint64_t work_bytes;   /* size of the writable /work tmpfs */
} sbx_limits;

/* A file placed in /work before the program starts. name is relative to /work. */
typedef struct sbx_file {
        char *name;
        char *data;
        size_t size;
        uint32_t mode; /* permission bits only: 0644 or 0755 style, never setuid */
} sbx_file;

/*
 * One allowed egress destination: IPv4 addr/prefix, a port range (0-0 for
 * any; ignored unless the protocol has ports) and a protocol (0 any,
 * IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP).
 */
typedef struct sbx_egress_rule {
        uint32_t addr; /* host byte order, masked to the prefix */
        uint8_t prefix;
        uint8_t protocol;
        uint16_t port_min, port_max;
} sbx_egress_rule;
#define SBX_EGRESS_MAX_RULES 32
/* What an egress run may reach and how fast (policy.json "network":{"egress":{...}}). */
typedef struct sbx_egress_policy {
        sbx_egress_rule allow[SBX_EGRESS_MAX_RULES];
        uint32_t n_allow;
        uint64_t bandwidth_bytes;    /* per second, each way (0: unlimited; at most INT32_MAX) */
        uint32_t connections;        /* concurrent connections (conntrack count) */
        uint32_t packets_per_second; /* sent by the run */
        uint32_t dns_queries_per_second;
} sbx_egress_policy;

typedef struct sbx_spec {
        char *id;       /* required by the daemon; autoosctl makes one up */
        char *workflow; /* NULL unless part of a workflow */
        char *step;
        uint32_t attempt; /* 0 when not part of a workflow */
        char **argv;      /* NULL-terminated, argv[0] an absolute path */
        size_t argc;
        char **env; /* NULL-terminated "NAME=VALUE"; nothing else leaks in */
        size_t n_env;
        char *stdin_data;
        size_t stdin_size;
        char *cwd; /* absolute; default /work (or / when there is no /work) */
        sbx_file *files;
        size_t n_files;
        sbx_trust trust;
        sbx_limits limits;
        sbx_network network;
        bool network_set; /* false: the trust level's default */
        /* "egress":{"allow":[...]} narrows the level's allowlist (each entry inside one of its
         * rules); sbx_spec_apply_policy() fills what is not given, and the limits, from the level. */
        sbx_egress_policy egress;
        bool egress_allow_set;
} sbx_spec;

/* Frees everything a spec owns and the spec itself; accepts NULL, returns NULL. */
sbx_spec *sbx_spec_free(sbx_spec *spec);
DEFINE_TRIVIAL_CLEANUP_FUNC(sbx_spec *, sbx_spec_free);
#define _cleanup_sbx_spec_ _cleanup_(sbx_spec_freep)

/*
 * The coordinator's API roles, as a policy names them ("viewer", "operator",
 * "admin"). The sandbox only stores which may submit a level; the coordinator
 * enforces it (sbx_policy_allows_role()).
 */
typedef enum sbx_role {
        SBX_ROLE_VIEWER,
        SBX_ROLE_OPERATOR,
        SBX_ROLE_ADMIN,
        _SBX_ROLE_MAX,
        _SBX_ROLE_INVALID = -1,
} sbx_role;

/* Per trust level: defaults, ceilings, and what the level may have. */
typedef struct sbx_level_policy {
        sbx_egress_policy egress;
        sbx_limits defaults;
        sbx_limits ceilings;
        sbx_network default_network;
        bool network_allowed[_SBX_NET_MAX];
        bool work_writable;        /* false: no /work at all (restricted) */
        bool enabled;              /* a disabled level is rejected */
        bool roles[_SBX_ROLE_MAX]; /* API roles that may submit runs at this level */
} sbx_level_policy;

typedef struct sbx_policy {
        sbx_level_policy level[_SBX_TRUST_MAX];
        sbx_trust default_trust;
        /* Hard bounds on the spec itself (untrusted input). */
        uint32_t max_argv;       /* entries */
        uint64_t max_spec_bytes; /* whole JSON document */
        uint32_t max_files;
        /* Set by a node whose settings configure egress (sbx_egress_config); otherwise an
         * egress spec is rejected as "egress is not configured on this node". */
        bool egress_configured;
} sbx_policy;

/*
 * The built-in policy: standard defaults 512 MiB, 50% CPU, 256 pids, 30 s wall,
 * 20 s CPU, 1 MiB output per stream, 64 MiB /work, loopback. restricted and
 * standard may be submitted by operators and admins, elevated by admins only;
 * privileged is disabled (a policy file turns it on, for admins by default).
 */
void sbx_policy_init_default(sbx_policy *ret);

/*
 * Loads a policy file (/etc/autoos/policy.json). Fields not given keep the
 * built-in values; a level's "roles" (e.g. "levels":{"elevated":{"roles":
 * ["admin"]}}) replaces that level's list whole. On error ret is untouched
 * and err names the field.
 */
int sbx_policy_load(const char *path, sbx_policy *ret, au_error *err);

/* "viewer", "operator", "admin"; NULL (to_string) or _SBX_ROLE_INVALID (from_string) otherwise. */
const char *sbx_role_to_string(sbx_role r);
sbx_role sbx_role_from_string(const char *s);

/*
 * Whether an API key of role `role` ("viewer", "operator" or "admin", as the
 * coordinator spells them) may submit a run at trust level `level` under
 * policy p: true only when the level is enabled and its "roles" list names
 * the role. Roles are not ranked here: the list is the whole answer, so the
 * built-in ["operator","admin"] is what "operator and above" means. False
 * for a NULL policy or role, an unknown role name and an invalid level.
 * Pure: no I/O, safe from any thread.
 */
bool sbx_policy_allows_role(const sbx_policy *p, sbx_trust level, const char *role);

/*
 * Parses a run spec (DESIGN.md "Run spec"). Unknown fields, wrong types,
 * absurd values and values over the policy's ceilings are refused with err
 * naming the field ("limits.memory_bytes"). Defaults are applied from the
 * policy, so the returned spec is complete.
 */
int sbx_spec_from_json(const char *json, size_t len, const sbx_policy *policy, sbx_spec **ret,
                       au_error *err);

/*
 * Fills in what a hand-built spec left at 0/NULL from the policy and checks
 * it against the ceilings; err names the field. Idempotent.
 */
int sbx_spec_apply_policy(sbx_spec *spec, const sbx_policy *policy, au_error *err);

/* Serializes a (complete) spec; the caller frees the string. NULL on ENOMEM. */
char *sbx_spec_to_json(const sbx_spec *spec);

typedef struct sbx_result {
        char *id;
        char *node;
        char *workflow;
        char *step;
        uint32_t attempt;
        sbx_outcome outcome;
        int exit_code; /* -1 when the program did not exit by itself */
        int signal;    /* 0 when not killed by a signal */
        uint64_t wall_ms;
        uint64_t cpu_ms;
        uint64_t memory_peak_bytes;
        uint64_t oom_kills;
        char *stdout_data;
        size_t stdout_size;
        bool stdout_truncated;
        char *stderr_data;
        size_t stderr_size;
        bool stderr_truncated;
        char **denied_syscalls; /* NULL-terminated names, in order of first refusal */
        size_t n_denied_syscalls;
        uint64_t denied_count;                   /* all refusals, repeats included */
        struct timespec started_at, finished_at; /* CLOCK_REALTIME */
        char *error;                             /* sandbox_error / rejected: what went wrong */
        char *reason;                            /* why the supervisor ended the run, when it did */
        uint32_t host_uid;                       /* the pool uid the run had on the host (0: none) */
        /* Egress runs only (has_egress): traffic through the run's link, as the node counted it. */
        bool has_egress;
        uint64_t egress_sent_bytes, egress_sent_packets;
        uint64_t egress_received_bytes, egress_received_packets;
        char **egress_refused; /* "addr:port/proto" (port 0 for protocols without), NULL-terminated */
        uint64_t *egress_refused_counts; /* packets refused per entry */
        size_t n_egress_refused;
} sbx_result;

sbx_result *sbx_result_new(void);
sbx_result *sbx_result_free(sbx_result *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(sbx_result *, sbx_result_free);
#define _cleanup_sbx_result_ _cleanup_(sbx_result_freep)

/*
 * A result for a run that never started: outcome rejected or sandbox_error,
 * with the message. id may be NULL. Returns NULL on ENOMEM.
 */
sbx_result *sbx_result_new_error(const char *id, sbx_outcome outcome, const char *message);

/*
 * DESIGN.md's result object. Child output that is not valid UTF-8 is
 * repaired with U+FFFD. Caller frees. NULL on ENOMEM.
 */
char *sbx_result_to_json(const sbx_result *r, bool pretty);
int sbx_result_from_json(const char *json, size_t len, sbx_result **ret, au_error *err);

/*
 * Exit status autoosctl uses for a result: the child's code; 128+N on signal
 * N; 124 on timeout or cpu_limit; 125 on sandbox_error or rejected; 137 for
 * oom/pids_limit/output_limit (killed).
 */
int sbx_result_exit_status(const sbx_result *r);

/* ---- running ---------------------------------------------------------- */

/*
 * A node's egress settings (autoosd.conf egress_* keys): the uplink runs
 * leave through (masqueraded), the IPv4 pool each run takes a /30 of, the
 * resolvers written into the run's /etc/resolv.conf, and the prefix of
 * the names (links, nftables chains) so that a restart finds what a killed
 * process left.
 */
typedef struct sbx_egress_config {
        char uplink[16];
        uint32_t pool_addr; /* host byte order */
        uint8_t pool_prefix;
        uint32_t resolvers[4];
        uint32_t n_resolvers;
        char prefix[8]; /* default "aeg" */
} sbx_egress_config;

/*
 * Sets one egress key as autoosd.conf spells it: "egress_uplink",
 * "egress_pool" (a.b.c.d/n, n 16..29), "egress_resolvers" (up to 4 IPv4
 * addresses, comma-separated), "egress_prefix" (1..6 of [a-z0-9]).
 * Returns 0, -ENOENT for a key that is not an egress key, or -EINVAL with
 * err naming the key and what is wrong.
 */
int sbx_egress_config_set(sbx_egress_config *c, const char *key, const char *value, au_error *err);
/* Whether c names an uplink and a pool (egress can be given). */
bool sbx_egress_config_usable(const sbx_egress_config *c);
/*
 * Reads the egress_* keys of a "key = value" file (autoosd.conf), ignoring
 * every other key; a missing file leaves c untouched and returns 0.
 */
int sbx_egress_config_load(sbx_egress_config *c, const char *path, au_error *err);

typedef struct sbx_config {
        const sbx_egress_config *egress; /* NULL or not usable: no egress on this node */
        uid_t uid_base;                  /* first host uid of the pool (default 1000000000) */
        uint32_t uid_count;              /* size of the pool (default 65536) */
        const char *state_dir;           /* root templates, uid locks (default /run/autoos) */
        const char *lock_dir;            /* uid pool locks (default <state_dir>/uids) */
        const char *node;                /* copied into results (default: hostname) */
        const char *cgroup_parent;       /* default: our own cgroup (per controller on v1) */
        /* Network namespaces a helper thread keeps ready (0: no thread, each is
         * made on the spawn path). Daemons and loops want ~4, which also compiles
         * every seccomp profile up front; a one-shot CLI wants 0: a thread that
         * made its one namespace ahead also made a spare and cost more than it
         * saved (issue 12). */
        unsigned prepare_ahead;
        /* Leave the removal of cgroups that killed supervisors left behind to
         * sbx_context_cleanup_stale(), called when the caller has the time (a
         * one-shot CLI: while its run's child builds its root), rather than doing
         * it in sbx_context_new(), on the way to the first spawn. */
        bool defer_stale_cleanup;
} sbx_config;

typedef struct sbx_context sbx_context;

/*
 * Refuses a uid pool [base, base + count) that overlaps a subordinate-id
 * range: runs take host uids and gids from the pool, so they must belong to
 * nobody's rootless containers. subuid_path/subgid_path NULL mean
 * $AUTOOS_SUBUID_FILE / $AUTOOS_SUBGID_FILE when set (tests), else
 * /etc/subuid and /etc/subgid; a missing file holds no range. Returns 0,
 * -EEXIST with err naming the file, its line and both ranges, or another
 * negative errno when a file cannot be read. sbx_context_new() checks this.
 */
int sbx_uidpool_check_subids(uid_t base, uint32_t count, const char *subuid_path, const char *subgid_path,
                             au_error *err);

/* Prepares everything that need not sit on the spawn path. */
int sbx_context_new(const sbx_config *cfg, sbx_context **ret, au_error *err);
sbx_context *sbx_context_free(sbx_context *ctx);
DEFINE_TRIVIAL_CLEANUP_FUNC(sbx_context *, sbx_context_free);
#define _cleanup_sbx_context_ _cleanup_(sbx_context_freep)

/*
 * Removes the cgroups of supervisors that are gone, killing whatever still
 * runs in them; never one of a live process. sbx_context_new() does this
 * unless cfg->defer_stale_cleanup. Best effort: failures are ignored.
 */
void sbx_context_cleanup_stale(sbx_context *ctx);

/* "v1", "v2" or "hybrid": how this host's cgroups are arranged. */
const char *sbx_context_cgroup_mode(const sbx_context *ctx);

/* Called with output as it arrives, up to the spec's output limit per stream. */
typedef void (*sbx_output_fn)(void *userdata, int stream, const char *buf, size_t len);

typedef struct sbx_run sbx_run;

/*
 * Starts a run without waiting for it: on success the child is building its
 * sandbox; if that fails (or execve does), the run finishes with outcome
 * sandbox_error and the reason in the result's error. The spec must be
 * complete (sbx_spec_apply_policy) and is not referenced after return. On
 * failure no process or cgroup is left and err says why: the caller reports
 * outcome sandbox_error.
 * One caller at a time per context: the child is cloned from a spawner thread
 * with CLONE_VM and runs in the caller's memory until execve (spawn.c).
 */
int sbx_run_start(sbx_context *ctx, const sbx_spec *spec, sbx_output_fn output, void *userdata,
                  sbx_run **ret, au_error *err);

/* An fd that becomes readable when sbx_run_dispatch() has work. */
int sbx_run_fd(const sbx_run *run);

/* Host pid of the run's first process (pid 1 inside). */
pid_t sbx_run_pid(const sbx_run *run);

/* Handles pending events without blocking: 0 still running, 1 finished, <0 error. */
int sbx_run_dispatch(sbx_run *run);

/*
 * Ends the run now: the whole cgroup is killed. outcome is reported (e.g.
 * SBX_OUTCOME_SIGNALED for a cancel) with reason. Dispatch until finished.
 */
int sbx_run_kill(sbx_run *run, sbx_outcome outcome, const char *reason);

/* The result of a finished run; ownership passes to the caller. */
int sbx_run_take_result(sbx_run *run, sbx_result **ret);

/* Kills the run if still going, removes its cgroup, frees. Accepts NULL. */
sbx_run *sbx_run_free(sbx_run *run);
DEFINE_TRIVIAL_CLEANUP_FUNC(sbx_run *, sbx_run_free);
#define _cleanup_sbx_run_ _cleanup_(sbx_run_freep)

/*
 * Blocking convenience: start, supervise, and always produce a result
 * (sandbox_error with the message when the run could not start).
 * Returns 0, or -ENOMEM.
 */
int sbx_run_sync(sbx_context *ctx, const sbx_spec *spec, sbx_output_fn output, void *userdata,
                 sbx_result **ret);
