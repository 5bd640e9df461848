/* SPDX-License-Identifier: MIT */
/*
 * The attack engine behind `autoosctl adversarial` (whose options
 * cli/adversarial.c reads): the attack catalogue run against this host's
 * sandbox and policy (engine.c, the sandbox attacks in adversarial/attack.c)
 * and, when targets are given, against a running autoosd and coordinator
 * (fleet.c, audit.c, tls.c, keys.c). Each attack yields one row; the report
 * (report.c) prints them as text, TAP, JSON or a markdown table.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <libpq-fe.h>
#include <yajl/yajl_tree.h>

#include "client/client.h"
#include "common/macro.h"
#include "sandbox/sandbox.h"
#include "sandbox/supervise.h"

#define ADV_DEFAULT_POLICY AUTOOS_SYSCONFDIR "/autoos/policy.json"
#ifndef AUTOOS_PKGLIBEXECDIR
#define AUTOOS_PKGLIBEXECDIR "/usr/local/libexec/autoos"
#endif
/* The attack program run in the sandboxes: $ADV_ATTACK_ENV, else the installed one. */
#define ADV_DEFAULT_ATTACK AUTOOS_PKGLIBEXECDIR "/attack"
#define ADV_ATTACK_ENV "AUTOOS_ATTACK"

/* adv_run()'s exit statuses besides 0 (nothing got through) and 128+N (interrupted by signal N). */
#define ADV_EXIT_FAILED 1 /* an attack was not contained or could not be run */
#define ADV_EXIT_USAGE 2  /* the policy file could not be read */

typedef enum adv_verdict {
        ADV_CONTAINED,     /* the attack was stopped as expected */
        ADV_NOT_CONTAINED, /* it got through: the run fails */
        ADV_SKIPPED,       /* not applicable here (reason in note) */
        ADV_ERROR,         /* the harness could not run it (reason in note): the run fails */
} adv_verdict;

typedef struct adv_row {
        char group[32]; /* escape, kernel, exhaustion, side-channel, time, agent, daemon, fleet, coordinator
                         */
        char name[64];  /* unique, [a-z0-9-] */
        char expectation[192]; /* what containment looks like: "mount(2) refused (EPERM)", "outcome oom" */
        char observed[256];    /* what happened: outcome, exit, the attack's own report */
        char denied[256];      /* denied syscalls reported by the sandbox, comma-separated */
        char note[256];
        adv_verdict verdict;
        double ms;
} adv_row;

typedef struct adv_report {
        adv_row *rows;
        size_t n, cap;
} adv_report;

/* A supervised attack run and the head of its stdout (INFO lines, READY). */
typedef struct adv_proc {
        sbx_supervised s;
        char head[8192];
        size_t n_head;
        bool ready; /* the attack printed READY: it is in place */
        pid_t pid;
} adv_proc;

/* sbx_run_start's output callback for an adv_proc (userdata): keeps the head of stdout, sees READY. */
void adv_proc_output(void *userdata, int stream, const char *buf, size_t len);

/* Appends printf-style text to buf (size bytes), ending it with "..." when it does not fit. */
void adv_append(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
/* As snprintf, ending buf with "..." when the text does not fit. */
void adv_setf(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);

/* Appends a copy of row. Returns 0 or -ENOMEM. */
int adv_report_add(adv_report *r, const adv_row *row);
void adv_report_done(adv_report *r);

/* Targets of the daemon and coordinator groups; NULL members skip what needs them. */
typedef struct adv_fleet_target {
        const char *redis_url;      /* autoosd's Redis */
        const char *node;           /* its node id (jobs go to autoos:jobs:<node>) */
        const char *api_url;        /* the coordinator */
        const char *api_key;        /* an operator key */
        const char *viewer_key;     /* a viewer key (role checks), optional */
        const char *db_url;         /* the audit attacks: PostgreSQL as the schema's owner, optional */
        const char *audit_pubkey;   /* the coordinator's public audit key, for the audit attacks */
        const char *checkpoint_log; /* a copy of the coordinator's log (checkpoints), optional */
        /* The fleet group (node identity, issue 10): the victim is node, its steps placed by selector. */
        const char *selector;      /* "LABEL=VALUE" the victim carries, default "name=<node>" */
        const char *attacker_node; /* another enrolled node, optional: its key forges, its ACL user reads */
        const char *attacker_key;  /* that node's key file (0600) */
        unsigned timeout_ms; /* per attack (--attack-timeout), default 20000; the fixed waits follow it */
} adv_fleet_target;

/*
 * Runs the daemon and coordinator attacks (only: NULL, a group name or an
 * attack name) and appends their rows. Returns 0, or a negative errno when the
 * harness itself failed (rows say which attack).
 */
int adv_fleet_attacks(const adv_fleet_target *t, const char *only, adv_report *rep);

/* adversarial/audit.c: the owner rewrites a trail (which 0: a row, rehashed; 1: a cut-off tail). */
void adv_audit_attack(const adv_fleet_target *t, int which, adv_row *row);

/*
 * adversarial/tls.c: plain HTTP, with the operator key, to the https:// coordinator's port:
 * contained when no HTTP answer comes back; skipped when api_url is not https://.
 */
void adv_tls_plain_http(const adv_fleet_target *t, adv_row *row);

/*
 * adversarial/keys.c: a viewer key made in PostgreSQL (db_url), used (so cached), then revoked
 * there behind the coordinator's back: contained when its very next request is 401.
 */
void adv_revoked_key(const adv_fleet_target *t, adv_row *row);

/* adversarial/api.c: a connection to the coordinator at url, an https:// one verified against
 * $AUTOOS_CACERT's CAs. */
int adv_api_open(const char *url, api_conn **ret);

/*
 * adversarial/api.c: one request to the coordinator, of at most 10 s, with
 * key (NULL: none) and json as its body (NULL: none). Returns the HTTP status,
 * 0 when nothing answered; *ret_doc (may be NULL) gets the reply's JSON, NULL
 * when it is not JSON.
 */
long adv_api_json(const adv_fleet_target *t, const char *method, const char *path, const char *key,
                  const char *json, yajl_val *ret_doc);

/*
 * adversarial/api.c: runs q on conn (with n params; params NULL: q may hold
 * several statements). False, with why (one line) set, when it failed.
 */
bool adv_sql(PGconn *conn, const char *q, int n, const char *const *params, char *why, size_t size);

/*
 * The agent group (adversarial/agent.c, issue 14): attacks on the agent loop
 * itself (orchestrator/agent.c over fabric/), a hostile model on 127.0.0.1
 * playing each attack's script. The engine lends it its sandbox: each tool
 * call's run spec runs as the catalogue's own runs do.
 */

/*
 * Runs spec (parsed from a tool's rendered run template, owned by the caller)
 * in a sandbox with the suite's trust level, policy and short limits. Returns
 * 0 with *ret_result (caller frees), or a negative errno with err set.
 */
typedef int (*adv_agent_run_fn)(void *userdata, sbx_spec *spec, sbx_result **ret_result, au_error *err);

typedef struct adv_agent_env {
        const sbx_policy *policy; /* the suite's (--policy) */
        sbx_trust trust;
        const char *canary;      /* the host fixtures' secret */
        const char *canary_file; /* a host file holding it */
        adv_agent_run_fn run;    /* NULL: no sandbox here; the rows that need one are skipped */
        void *run_userdata;
        const char *no_sandbox; /* why there is none */
} adv_agent_env;

/*
 * Test only: $ADV_AGENT_WEAKEN_ENV names agent attacks (comma-separated) whose
 * setting is deliberately weakened, so that tests see them not contained.
 */
#define ADV_AGENT_WEAKEN_ENV "AUTOOS_ADV_WEAKEN"

/*
 * Runs the agent attack called name and fills row's observed, note and
 * verdict (group, name and expectation are the caller's). Returns 0, or
 * -ENOMEM.
 */
int adv_agent_attack(const adv_agent_env *env, const char *name, adv_row *row);

/* Whether `only` selects this group/name (NULL selects everything). */
bool adv_selected(const char *only, const char *group, const char *name);

typedef enum adv_format {
        ADV_FORMAT_TEXT,
        ADV_FORMAT_TAP,
        ADV_FORMAT_JSON,
        ADV_FORMAT_MARKDOWN,
} adv_format;

/* The egress group (adversarial/egress.c, issue 13): a node configured for egress and what to aim at. */
#define ADV_DEFAULT_NODE_CONFIG AUTOOS_SYSCONFDIR "/autoos/autoosd.conf"
typedef struct adv_egress_target {
        const char *config;  /* the node's egress_* settings; NULL: ADV_DEFAULT_NODE_CONFIG */
        const char *targets; /* server, download, sink, unlisted, node_service (adversarial/README.md) */
} adv_egress_target;

/* What to attack and how to report it. */
typedef struct adv_options {
        sbx_trust trust;         /* the sandboxes' level; _SBX_TRUST_INVALID: the policy's default */
        const char *only;        /* groups or attacks, comma-separated; NULL: all */
        const char *attack_path; /* the attack program; NULL: $ADV_ATTACK_ENV, else ADV_DEFAULT_ATTACK */
        const char *policy_file; /* NULL: ADV_DEFAULT_POLICY when it exists, else built-in values */
        adv_format format;
        adv_fleet_target fleet; /* the daemon, fleet and coordinator attacks' targets */
        bool fleet_given;       /* a daemon or coordinator target was given */
        /* The egress group's node settings and targets. */
        adv_egress_target egress;
} adv_options;

/*
 * adversarial/egress.c: runs the egress attacks, when o->egress.targets is
 * given or o->only names them, in egress runs under policy (sigfd and
 * *interrupted as the sandbox rows use them), and appends their rows
 * (skipped, saying why, when this node has no egress). Returns 0 or a
 * negative errno.
 */
int adv_egress_attacks(const adv_options *o, const sbx_policy *policy, int sigfd, int *interrupted,
                       adv_report *rep);
/* adversarial/egress.c: the egress group's entry in --list. */
void adv_egress_print_list(FILE *f);
/* adversarial/egress.c: whether only names the egress group or one of its attacks. */
bool adv_egress_known(const char *only);

/*
 * Runs the selected attacks (the sandbox catalogue, then the fleet's when
 * o->fleet_given) and prints the report on stdout in o->format, progress on a
 * terminal's stderr. SIGINT, SIGTERM and SIGHUP end the runs cleanly. Returns
 * the exit status: 0 when every attack was contained or skipped,
 * ADV_EXIT_FAILED when one was not, could not be run, or nothing ran at all,
 * ADV_EXIT_USAGE when the policy cannot be read, 128+N when signal N
 * interrupted it. Messages go to stderr.
 */
int adv_run(const adv_options *o);

/* Prints the catalogue: each attack's group, name and what containment looks like. */
void adv_print_list(FILE *f);

/* Whether only (comma-separated) names at least one group or attack. */
bool adv_only_known(const char *only);

/* "contained", "not contained", "skipped" or "error". */
const char *adv_verdict_word(adv_verdict v);

/* Prints the report in format (trust: the level, for JSON). Returns 0 or -ENOMEM. */
int adv_report_print(const adv_report *rep, adv_format format, const char *trust, FILE *f);
