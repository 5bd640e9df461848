/* SPDX-License-Identifier: MIT */
/* autoos-coordinator: workflows across nodes, recovery, and the audit trail. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "common/parse.h"
#include "orchestrator/api.h"
#include "orchestrator/config.h"
#include "orchestrator/coordinator.h"
#include "orchestrator/events.h"
#include "orchestrator/identity.h"
#include "memory/audit-chain.h"
#include "orchestrator/keys.h"
#include "orchestrator/secrets.h"
#include "orchestrator/tls.h"

#define DEFAULT_CONFIG AUTOOS_SYSCONFDIR "/autoos/coordinator.conf"

static void usage(FILE *f) {
        fputs("Usage: autoos-coordinator [OPTIONS]\n"
              "       autoos-coordinator --migrate [--db URL] [--sql-dir DIR]\n"
              "       autoos-coordinator --create-key NAME --role viewer|operator|admin [--db URL]\n"
              "       autoos-coordinator --revoke-key NAME [--db URL]\n"
              "       autoos-coordinator --set-secret NAME < value\n"
              "       autoos-coordinator --delete-secret NAME\n"
              "\n"
              "Accepts workflows over an HTTP JSON API, places their steps on autoosd nodes\n"
              "through Redis Streams, recovers from failures, and records an append-only,\n"
              "hash-chained audit trail in PostgreSQL.\n"
              "\n"
              "Options (flags override the configuration file):\n"
              "  -c, --config FILE        settings file (default " DEFAULT_CONFIG ", if present)\n"
              "      --db URL             PostgreSQL (postgresql://user@host:port/db)\n"
              "      --redis URL          Redis (redis://[:password@]host[:port][/db])\n"
              "      --listen HOST:PORT   HTTP API address (default 127.0.0.1:8080)\n"
              "      --tls-cert FILE      PEM certificate (chain) for the API; with --tls-key the\n"
              "                           API, /healthz and /metrics speak only HTTPS\n"
              "      --tls-key FILE       the certificate's PEM private key\n"
              "      --id NAME            this coordinator's name (default hostname:pid)\n"
              "      --policy FILE        policy.json whose ceilings submissions are checked against\n"
              "      --sql-dir DIR        migrations (default " AUTOOS_DATADIR "/autoos/sql)\n"
              "      --node-timeout-ms N  a node silent this long is lost (default 2000)\n"
              "      --rate-limit N       API requests per second per key (default 100)\n"
              "      --max-body-bytes N   largest request body (default 1M)\n"
              "      --log-level LEVEL    error, warning, notice, info (default) or debug\n"
              "      --db-owner URL       PostgreSQL as the schema's owner role, for --migrate\n"
              "                           (the service's --db role then only appends to audit_log)\n"
              "      --audit-key FILE     Ed25519 key (PEM, mode 0600) that signs audit checkpoints\n"
              "      --create-audit-key FILE  make that key (and FILE.pub), print the public key, exit\n"
              "      --audit-checkpoint-all   sign the head of every audit chain not yet covered, exit\n"
              "      --migrate            apply the migrations in --sql-dir, then exit\n"
              "      --create-key NAME    make an API key with --role, print it once, then exit\n"
              "      --role ROLE          viewer, operator or admin\n"
              "      --enroll-node NAME   enroll node NAME, print its key once (for its node_key_file), "
              "exit\n"
              "      --rekey-node NAME    give node NAME a new key (the old one is refused), print it, "
              "exit\n"
              "      --remove-node NAME   remove node NAME: its messages are refused from then on, exit\n"
              "      --node-acl NAME      print the Redis ACL SETUSER command confining NAME to its keys\n"
              "      --revoke-key NAME    revoke the API key NAME (refused at once by every\n"
              "                           coordinator), then exit\n"
              "      --set-secret NAME    create or rotate secret NAME, its value read from stdin (one\n"
              "                           trailing newline dropped), sealed with secret_key_file, exit\n"
              "      --delete-secret NAME delete secret NAME, then exit\n"
              "  -h, --help               show this help\n"
              "  -V, --version            show the version\n"
              "\n"
              "See autoos-coordinator(8) and doc/api.md.\n",
              f);
}

/* --set-secret NAME (value on stdin, a trailing newline dropped), --delete-secret NAME: an exit status */
static int secret_command(const orc_config *cfg, bool set, const char *name) {
        au_error err = {0};
        unsigned version = 0;
        size_t len = 0, cap = ORC_SECRET_MAX_VALUE + 2, n;
        char *value;
        int r;

        if (!set) {
                r = orc_secret_delete_cli(cfg, name, &err);
                if (r < 0) {
                        fprintf(stderr, "autoos-coordinator: delete secret %s: %s\n", name, err.msg);
                        return 1;
                }
                fprintf(stderr, "autoos-coordinator: secret '%s' deleted\n", name);
                return 0;
        }
        value = malloc(cap);
        if (!value) {
                fprintf(stderr, "autoos-coordinator: out of memory\n");
                return 1;
        }
        while (len < cap && (n = fread(value + len, 1, cap - len, stdin)) > 0)
                len += n;
        if (len > 0 && value[len - 1] == '\n')
                len--;
        r = len == 0 ? au_error_set_field(&err, "value", "no value on standard input")
                     : orc_secret_set_cli(cfg, name, value, len, &version, &err);
        explicit_bzero(value, cap);
        free(value);
        if (r < 0) {
                fprintf(stderr, "autoos-coordinator: set secret %s: %s\n", name, err.msg);
                return 1;
        }
        fprintf(stderr, "autoos-coordinator: secret '%s' is at version %u\n", name, version);
        return 0;
}

enum {
        OPT_DB = 256,
        OPT_REDIS,
        OPT_LISTEN,
        OPT_ID,
        OPT_POLICY,
        OPT_SQL_DIR,
        OPT_NODE_TIMEOUT,
        OPT_RATE,
        OPT_MAX_BODY,
        OPT_LOG_LEVEL,
        OPT_TLS_CERT,
        OPT_TLS_KEY,
        OPT_MIGRATE,
        OPT_REVOKE_KEY,
        OPT_CREATE_KEY,
        OPT_ROLE,
        OPT_DB_OWNER,
        OPT_AUDIT_KEY,
        OPT_CREATE_AUDIT_KEY,
        OPT_AUDIT_CHECKPOINT_ALL,
        OPT_ENROLL_NODE,
        OPT_REKEY_NODE,
        OPT_REMOVE_NODE,
        OPT_NODE_ACL,
        OPT_SET_SECRET,
        OPT_DELETE_SECRET,
};

/* The command line: settings as key/value pairs applied after the file, and the one-shot commands. */
typedef struct cmdline {
        const char *keys[32], *values[32];
        size_t n_flags;
        const char *config_path, *create_key, *role, *revoke_key;
        const char *node_name; /* --enroll-node, --rekey-node, --remove-node, --node-acl */
        int node_cmd;
        const char *secret_name; /* --set-secret, --delete-secret */
        int secret_cmd;
        const char *create_audit_key;
        bool migrate, checkpoint_all;
} cmdline;

static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"db", required_argument, NULL, OPT_DB},
        {"redis", required_argument, NULL, OPT_REDIS},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"id", required_argument, NULL, OPT_ID},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"sql-dir", required_argument, NULL, OPT_SQL_DIR},
        {"node-timeout-ms", required_argument, NULL, OPT_NODE_TIMEOUT},
        {"rate-limit", required_argument, NULL, OPT_RATE},
        {"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"revoke-key", required_argument, NULL, OPT_REVOKE_KEY},
        {"migrate", no_argument, NULL, OPT_MIGRATE},
        {"create-key", required_argument, NULL, OPT_CREATE_KEY},
        {"role", required_argument, NULL, OPT_ROLE},
        {"enroll-node", required_argument, NULL, OPT_ENROLL_NODE},
        {"rekey-node", required_argument, NULL, OPT_REKEY_NODE},
        {"remove-node", required_argument, NULL, OPT_REMOVE_NODE},
        {"node-acl", required_argument, NULL, OPT_NODE_ACL},
        {"set-secret", required_argument, NULL, OPT_SET_SECRET},
        {"delete-secret", required_argument, NULL, OPT_DELETE_SECRET},
        {"db-owner", required_argument, NULL, OPT_DB_OWNER},
        {"audit-key", required_argument, NULL, OPT_AUDIT_KEY},
        {"create-audit-key", required_argument, NULL, OPT_CREATE_AUDIT_KEY},
        {"audit-checkpoint-all", no_argument, NULL, OPT_AUDIT_CHECKPOINT_ALL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {},
};

/* One option into cl. Returns -1 to go on, or the exit status (--help, --version, a bad option). */
static int take_option(int c, cmdline *cl) {
        static const char *const names[] = {
                [OPT_DB - OPT_DB] = "db",
                [OPT_REDIS - OPT_DB] = "redis",
                [OPT_LISTEN - OPT_DB] = "listen",
                [OPT_ID - OPT_DB] = "id",
                [OPT_POLICY - OPT_DB] = "policy",
                [OPT_SQL_DIR - OPT_DB] = "sql_dir",
                [OPT_NODE_TIMEOUT - OPT_DB] = "node_timeout",
                [OPT_RATE - OPT_DB] = "rate_limit",
                [OPT_MAX_BODY - OPT_DB] = "max_body_bytes",
                [OPT_LOG_LEVEL - OPT_DB] = "log_level",
                [OPT_TLS_CERT - OPT_DB] = "tls_cert",
                [OPT_TLS_KEY - OPT_DB] = "tls_key",
        };
        switch (c) {
        case 'c':
                cl->config_path = optarg;
                break;
        case 'h':
                usage(stdout);
                return 0;
        case 'V':
                printf("autoos-coordinator %s\n", PACKAGE_VERSION);
                return 0;
        case OPT_MIGRATE:
                cl->migrate = true;
                break;
        case OPT_CREATE_KEY:
                cl->create_key = optarg;
                break;
        case OPT_ROLE:
                cl->role = optarg;
                break;
        case OPT_ENROLL_NODE:
        case OPT_REKEY_NODE:
        case OPT_REMOVE_NODE:
        case OPT_NODE_ACL:
                cl->node_cmd = c;
                cl->node_name = optarg;
                break;
        case OPT_SET_SECRET:
        case OPT_DELETE_SECRET:
                cl->secret_cmd = c;
                cl->secret_name = optarg;
                break;
        case OPT_DB_OWNER:
        case OPT_AUDIT_KEY:
                if (cl->n_flags < ELEMENTSOF(cl->keys)) {
                        cl->keys[cl->n_flags] = c == OPT_DB_OWNER ? "migrate_db" : "audit_key";
                        cl->values[cl->n_flags++] = optarg;
                }
                break;
        case OPT_CREATE_AUDIT_KEY:
                cl->create_audit_key = optarg;
                break;
        case OPT_AUDIT_CHECKPOINT_ALL:
                cl->checkpoint_all = true;
                break;
        case OPT_REVOKE_KEY:
                cl->revoke_key = optarg;
                break;
        case OPT_NODE_TIMEOUT: {
                /* A bare number here is milliseconds. */
                static char buf[32];
                snprintf(buf, sizeof(buf), "%sms", optarg);
                cl->keys[cl->n_flags] = "node_timeout";
                cl->values[cl->n_flags++] = strspn(optarg, "0123456789") == strlen(optarg) ? buf : optarg;
                break;
        }
        default:
                if (c >= OPT_DB && c <= OPT_TLS_KEY && cl->n_flags < ELEMENTSOF(cl->keys)) {
                        cl->keys[cl->n_flags] = names[c - OPT_DB];
                        cl->values[cl->n_flags++] = optarg;
                        break;
                }
                usage(stderr);
                return 2;
        }
        return -1;
}

/* The settings: defaults, the file, then the flags. 0, or the exit status (cfg done then). */
static int load_config(const cmdline *cl, orc_config *cfg) {
        au_error err = {0};

        if (orc_config_init(cfg) < 0) {
                fprintf(stderr, "autoos-coordinator: out of memory\n");
                return 1;
        }
        if (cl->config_path || access(DEFAULT_CONFIG, F_OK) == 0) {
                if (orc_config_load(cfg, cl->config_path ? cl->config_path : DEFAULT_CONFIG, &err) < 0) {
                        fprintf(stderr, "autoos-coordinator: %s\n", err.msg);
                        orc_config_done(cfg);
                        return 2;
                }
        }
        for (size_t i = 0; i < cl->n_flags; i++) {
                au_error_clear(&err);
                if (orc_config_set(cfg, cl->keys[i], cl->values[i], &err) < 0) {
                        fprintf(stderr, "autoos-coordinator: --%s: %s\n", cl->keys[i], err.msg);
                        orc_config_done(cfg);
                        return 2;
                }
        }
        au_log_set_max_level(cfg->log_level);
        return 0;
}

/* --create-audit-key, --audit-checkpoint-all, --migrate. */
static int audit_or_migrate_command(const cmdline *cl, const orc_config *cfg) {
        au_error err = {0};
        int r;

        if (cl->create_audit_key) {
                char *pem = NULL, key_id[MEM_AUDIT_KEY_ID_LEN + 1];
                r = mem_audit_key_create(cl->create_audit_key, &pem, key_id, &err);
                if (r < 0) {
                        fprintf(stderr, "autoos-coordinator: create audit key: %s\n", err.msg);
                        return 1;
                }
                printf("%s", pem);
                fprintf(stderr,
                        "autoos-coordinator: audit key %s written to %s (mode 0600), its public key to "
                        "%s.pub;\n"
                        "give the public key to whoever verifies: autoosctl audit ID --verify "
                        "--audit-pubkey FILE\n",
                        key_id, cl->create_audit_key, cl->create_audit_key);
                free(pem);
                return 0;
        }
        if (cl->checkpoint_all) {
                unsigned n = 0;
                r = orc_audit_checkpoint_all(cfg, &n, &err);
                if (r < 0) {
                        fprintf(stderr, "autoos-coordinator: audit checkpoints: %s\n", err.msg);
                        return 1;
                }
                printf("signed %u audit checkpoint%s\n", n, n == 1 ? "" : "s");
                return 0;
        }
        unsigned applied = 0;
        r = orc_migrate(cfg, &applied, &err);
        if (r < 0) {
                fprintf(stderr, "autoos-coordinator: migrate: %s\n", err.msg);
                return 1;
        }
        printf("applied %u migration%s from %s\n", applied, applied == 1 ? "" : "s", cfg->sql_dir);
        return 0;
}

/* --enroll-node, --rekey-node, --remove-node, --node-acl. */
static int node_command(const cmdline *cl, const orc_config *cfg) {
        char key[MEM_SEAL_HEX_LEN + 1];
        char *line = NULL;
        au_error err = {0};
        int r;

        r = cl->node_cmd == OPT_REMOVE_NODE ? orc_node_remove(cfg, cl->node_name, &err)
            : cl->node_cmd == OPT_NODE_ACL
                    ? orc_node_acl(cfg, cl->node_name, &line, &err)
                    : orc_node_enroll(cfg, cl->node_name, cl->node_cmd == OPT_REKEY_NODE, key, &err);
        if (r < 0)
                fprintf(stderr, "autoos-coordinator: node %s: %s\n", cl->node_name, err.msg);
        else if (cl->node_cmd == OPT_NODE_ACL)
                printf("%s\n", line);
        else if (cl->node_cmd == OPT_REMOVE_NODE)
                fprintf(stderr, "autoos-coordinator: node '%s' removed\n", cl->node_name);
        else
                printf("%s\n", key);
        free(line);
        return r < 0 ? 1 : 0;
}

/* --create-key NAME --role ROLE, --revoke-key NAME. */
static int key_command(const cmdline *cl, const orc_config *cfg) {
        au_error err = {0};
        char *key = NULL;
        int r;

        if (cl->revoke_key && !cl->create_key && !cl->role) {
                r = orc_revoke_key(cfg, cl->revoke_key, &err);
                if (r < 0) {
                        fprintf(stderr, "autoos-coordinator: revoke key: %s\n", err.msg);
                        return 1;
                }
                fprintf(stderr, "autoos-coordinator: key '%s' revoked\n", cl->revoke_key);
                return 0;
        }
        if (!cl->create_key || !cl->role) {
                fprintf(stderr, "autoos-coordinator: --create-key NAME needs --role "
                                "viewer|operator|admin\n");
                return 2;
        }
        if (orc_role_from_string(cl->role) == ORC_ROLE_NONE) {
                fprintf(stderr, "autoos-coordinator: --role: expected viewer, operator or admin, got '%s'\n",
                        cl->role);
                return 2;
        }
        r = orc_create_key(cfg, cl->create_key, orc_role_from_string(cl->role), &key, &err);
        if (r < 0) {
                fprintf(stderr, "autoos-coordinator: create key: %s\n", err.msg);
                return 1;
        }
        printf("%s\n", key);
        fprintf(stderr, "autoos-coordinator: key '%s' (%s) created; it is shown only this once\n",
                cl->create_key, cl->role);
        free(key);
        return 0;
}

/* The one-shot command the command line names, in this order of precedence; -1 when none (serve). */
static int run_command(const cmdline *cl, const orc_config *cfg) {
        if (cl->create_audit_key || cl->checkpoint_all || cl->migrate)
                return audit_or_migrate_command(cl, cfg);
        if (cl->secret_cmd)
                return secret_command(cfg, cl->secret_cmd == OPT_SET_SECRET, cl->secret_name);
        if (cl->node_cmd)
                return node_command(cl, cfg);
        if (cl->create_key || cl->role || cl->revoke_key)
                return key_command(cl, cfg);
        return -1;
}

/* Until SIGTERM or SIGINT (SIGHUP is logged and ignored); returns the signal. */
static int wait_for_signal(const sigset_t *mask) {
        int sig = 0;

        for (;;) {
                if (sigwait(mask, &sig) != 0)
                        continue;
                if (sig == SIGHUP) {
                        log_info("SIGHUP: nothing to reload (restart to change settings)");
                        continue;
                }
                return sig;
        }
}

/* The coordinator, its event stream and its API, until a signal stops them. Returns the exit status. */
static int serve(orc_config *cfg) {
        orc_tls_files tls = {0};
        orc_coord *coord = NULL;
        orc_events *events = NULL;
        orc_api *api = NULL;
        au_error err = {0};
        sigset_t mask;
        int r, sig;

        if (cfg->tls_cert || cfg->tls_key) {
                r = orc_tls_files_load(cfg->tls_cert, cfg->tls_key, &tls, &err);
                if (r < 0) {
                        fprintf(stderr, "autoos-coordinator: %s\n", err.msg);
                        return 2;
                }
                /* Read once, here: the coordinator's copy of the settings must not share these strings. */
                free(cfg->tls_cert);
                free(cfg->tls_key);
                cfg->tls_cert = cfg->tls_key = NULL;
        }

        /* Signals are taken with sigwait() below: blocked before any thread starts. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* The API's alone: the coordinator's copy of the settings must not share these strings. */
        _cleanup_free_ char *console_dir = TAKE_PTR(cfg->console_dir),
                            *console_path = TAKE_PTR(cfg->console_path),
                            *openapi_file = TAKE_PTR(cfg->openapi_file);
        r = orc_coord_new(cfg, &coord, &err);
        if (r < 0) {
                log_error("cannot start: %s", err.msg);
                return 1;
        }
        r = orc_events_start(cfg->redis, &events, &err);
        if (r < 0) {
                log_error("cannot start: %s", err.msg);
                orc_coord_free(coord);
                return 1;
        }
        r = orc_coord_start(coord, &err);
        if (r >= 0) {
                orc_api_config acfg = {
                        .listen = cfg->listen,
                        .max_body_bytes = cfg->max_body_bytes,
                        .rate_per_s = cfg->rate_limit,
                        .rate_burst = cfg->rate_burst > 0 ? cfg->rate_burst : 2 * cfg->rate_limit,
                        .max_connections = 256,
                        .tls_cert_pem = tls.cert_pem,
                        .tls_key_pem = tls.key_pem,
                        .max_per_ip = cfg->max_connections_per_ip,
                        .events_per_key = cfg->events_per_key,
                        .console_dir = console_dir,
                        .console_path = console_path,
                        .openapi_file = openapi_file,
                };
                r = orc_api_start(&acfg, coord, events, &api, &err);
        }
        if (r < 0) {
                log_error("cannot start: %s", err.msg);
                orc_events_stop(events);
                orc_coord_free(coord);
                orc_tls_files_done(&tls);
                return 1;
        }
        au_log_kv(AU_LOG_INFO, (const char *const[]){"listen", cfg->listen, NULL},
                  "ready: API on %s://%s (port %u), PostgreSQL and Redis as configured",
                  tls.cert_pem ? "https" : "http", cfg->listen, (unsigned) orc_api_port(api));
        sd_notify(0, "READY=1\nSTATUS=accepting workflows");

        sig = wait_for_signal(&mask);
        log_info("%s: stopping", strsignal(sig));
        sd_notify(0, "STOPPING=1");
        /* Waiting requests end first, so that the API's threads can be joined at once. */
        orc_coord_shutdown(coord);
        orc_events_stop(events);
        orc_api_stop(api);
        orc_coord_free(coord);
        orc_tls_files_done(&tls);
        return 0;
}

int main(int argc, char **argv) {
        cmdline cl = {0};
        orc_config cfg;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:hV", options, NULL)) >= 0)
                if ((r = take_option(c, &cl)) >= 0)
                        return r;
        if (optind < argc) {
                fprintf(stderr, "autoos-coordinator: unexpected argument '%s' (see --help)\n", argv[optind]);
                return 2;
        }
        r = load_config(&cl, &cfg);
        if (r > 0)
                return r;
        r = run_command(&cl, &cfg);
        if (r < 0)
                r = serve(&cfg);
        orc_config_done(&cfg);
        return r;
}
