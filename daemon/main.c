/* SPDX-License-Identifier: MIT */
/* autoosd: the per-host node daemon. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/metrics.h"
#include "common/url.h"
#include "config.h"
#include "control.h"
#include "metrics-http.h"
#include "node.h"

#define DEFAULT_CONFIG AUTOOS_SYSCONFDIR "/autoos/autoosd.conf"

static void usage(FILE *f) {
        fputs("Usage: autoosd [OPTIONS]\n"
              "\n"
              "The AUTOOS node daemon: takes run specs from the Redis stream autoos:jobs:<node>,\n"
              "runs each in a sandbox and XADDs its result to autoos:results, acknowledging the\n"
              "job only once its result is stored. Normally started by systemd (autoosd.service).\n"
              "\n"
              "Options (each overrides the same key of the configuration file):\n"
              "      --config FILE        configuration file (default " DEFAULT_CONFIG ";\n"
              "                           built-in values when it does not exist)\n"
              "      --redis URL          redis://host:port[/db] or unix:///path (redis)\n"
              "      --node-id NAME       this node's name (node_id; default: the host name)\n"
              "      --max-runs N         runs at once (max_runs; default: 2 per core)\n"
              "      --metrics ADDR       Prometheus endpoint, host:port or \"\" (metrics;\n"
              "                           default 127.0.0.1:9464)\n"
              "      --policy FILE        trust-level policy (policy; default /etc/autoos/policy.json)\n"
              "      --control-socket P   local control socket (control_socket;\n"
              "                           default /run/autoos/autoosd.sock)\n"
              "      --state-dir DIR      undelivered results (state_dir; default /var/lib/autoos)\n"
              "      --log-level LEVEL    error, warning, notice, info, debug (log_level)\n"
              "      --check-config       validate the configuration and policy, then exit\n"
              "  -h, --help               show this help\n"
              "  -V, --version            show the version\n"
              "\n"
              "Other configuration keys: labels (k=v,k=v), max_queued, grace (SIGTERM drain,\n"
              "default 30s), rate and burst (per-workflow token bucket, jobs/s; 0 = unlimited),\n"
              "result_ttl (idempotency memory, default 24h), run_dir, uid_base, uid_count.\n"
              "\n"
              "Signals: SIGHUP reloads the configuration and policy (a broken file is refused\n"
              "and the old one kept); SIGTERM stops taking jobs, lets runs finish for the grace\n"
              "period, kills and reports the rest, and exits 0.\n",
              f);
}

enum {
        OPT_CONFIG = 0x100,
        OPT_REDIS,
        OPT_NODE_ID,
        OPT_MAX_RUNS,
        OPT_METRICS,
        OPT_POLICY,
        OPT_CONTROL,
        OPT_STATE_DIR,
        OPT_LOG_LEVEL,
        OPT_CHECK,
};

static const struct option options[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"redis", required_argument, NULL, OPT_REDIS},
        {"node-id", required_argument, NULL, OPT_NODE_ID},
        {"max-runs", required_argument, NULL, OPT_MAX_RUNS},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"control-socket", required_argument, NULL, OPT_CONTROL},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {},
};

typedef struct flag {
        const char *key, *value;
} flag;

typedef struct daemon_state {
        au_loop *loop;
        dmn_node *node;
        dmn_config cfg;
        const char *config_path;
        bool config_explicit;
        flag flags[16];
        size_t n_flags;
        sbx_policy policy;
        au_source *exit_check;
        bool stopping;
} daemon_state;

/* File, then flags: the configuration as it would be loaded now. */
static int load_all(daemon_state *d, dmn_config *cfg, sbx_policy *policy, au_error *err) {
        int r = dmn_config_init(cfg);
        if (r < 0)
                return au_error_set(err, r, "initialize configuration");
        if (d->config_explicit || access(d->config_path, F_OK) == 0) {
                r = dmn_config_load(cfg, d->config_path, err);
                if (r < 0)
                        goto fail;
        }
        for (size_t i = 0; i < d->n_flags; i++)
                if ((r = dmn_config_set(cfg, d->flags[i].key, d->flags[i].value, err)) < 0)
                        goto fail;
        if ((r = dmn_config_validate(cfg, err)) < 0)
                goto fail;
        sbx_policy_init_default(policy);
        if (access(cfg->policy_path, F_OK) == 0) {
                au_error pe = {};
                if ((r = sbx_policy_load(cfg->policy_path, policy, &pe)) < 0) {
                        au_error_set_field(err, pe.field, "policy %s: %s", cfg->policy_path, pe.msg);
                        goto fail;
                }
        }
        policy->egress_configured = sbx_egress_config_usable(&cfg->egress);
        return 0;
fail:
        dmn_config_done(cfg);
        return r;
}

static void notify_status(daemon_state *d) {
        sd_notifyf(0, "STATUS=%s", dmn_node_status_line(d->node));
}

static void on_exit_check(au_source *s, void *userdata) {
        daemon_state *d = userdata;
        notify_status(d);
        if (d->stopping && dmn_node_idle(d->node))
                au_loop_quit(d->loop, 0);
}

static void on_signal(au_source *s, int signo, void *userdata) {
        daemon_state *d = userdata;
        au_error err = {};

        if (signo == SIGHUP) {
                dmn_config cfg;
                sbx_policy policy;
                sd_notify(0, "RELOADING=1");
                if (load_all(d, &cfg, &policy, &err) < 0) {
                        log_error("reload refused, keeping the running configuration: %s", err.msg);
                } else {
                        /* The node borrows the strings of d->cfg: swap only after it has the new ones. */
                        dmn_config old = d->cfg;
                        d->cfg = cfg;
                        d->policy = policy;
                        dmn_node_reload(d->node, &d->cfg, &d->policy);
                        au_log_set_max_level(d->cfg.log_level);
                        dmn_config_done(&old);
                        log_info("configuration and policy reloaded");
                }
                sd_notify(0, "READY=1");
                return;
        }
        if (d->stopping) {
                log_warning("second %s: exiting now", strsignal(signo));
                au_loop_quit(d->loop, 0);
                return;
        }
        d->stopping = true;
        log_info("%s: draining, runs get %llu ms to finish", strsignal(signo),
                 (unsigned long long) d->cfg.grace_ms);
        sd_notify(0, "STOPPING=1");
        dmn_node_drain(d->node, d->cfg.grace_ms);
}

static void on_watchdog(au_source *s, void *userdata) {
        sd_notify(0, "WATCHDOG=1");
}

static char *control_status(void *userdata) {
        return dmn_node_status_json(((daemon_state *) userdata)->node);
}

static void control_drain(void *userdata) {
        daemon_state *d = userdata;
        log_info("drain requested over the control socket");
        dmn_node_drain(d->node, 0);
}

static void control_run(void *userdata, const char *spec_json, size_t len, dmn_request *req) {
        dmn_node_run_local(((daemon_state *) userdata)->node, spec_json, len, req);
}

int main(int argc, char **argv) {
        daemon_state d = {.config_path = DEFAULT_CONFIG};
        bool check_only = false;
        au_error err = {};
        int c, r;

        while ((c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
                const char *key = NULL;
                switch (c) {
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("autoosd %s\n", PACKAGE_VERSION);
                        return 0;
                case OPT_CONFIG:
                        d.config_path = optarg;
                        d.config_explicit = true;
                        break;
                case OPT_CHECK:
                        check_only = true;
                        break;
                case OPT_REDIS:
                        key = "redis";
                        break;
                case OPT_NODE_ID:
                        key = "node_id";
                        break;
                case OPT_MAX_RUNS:
                        key = "max_runs";
                        break;
                case OPT_METRICS:
                        key = "metrics";
                        break;
                case OPT_POLICY:
                        key = "policy";
                        break;
                case OPT_CONTROL:
                        key = "control_socket";
                        break;
                case OPT_STATE_DIR:
                        key = "state_dir";
                        break;
                case OPT_LOG_LEVEL:
                        key = "log_level";
                        break;
                default:
                        fprintf(stderr, "autoosd: unknown option (see 'autoosd --help')\n");
                        return 2;
                }
                if (key && d.n_flags < ELEMENTSOF(d.flags))
                        d.flags[d.n_flags++] = (flag){key, optarg};
        }
        if (optind < argc) {
                fprintf(stderr, "autoosd: unexpected argument '%s' (see 'autoosd --help')\n", argv[optind]);
                return 2;
        }

        if (load_all(&d, &d.cfg, &d.policy, &err) < 0) {
                fprintf(stderr, "autoosd: %s\n", err.msg);
                return check_only ? 1 : 2;
        }
        if (check_only) {
                _cleanup_free_ char *shown = au_url_mask(d.cfg.redis_url);
                printf("configuration ok: node %s, redis %s, %u runs at once, policy %s\n", d.cfg.node_id,
                       shown ? shown : "(set)", d.cfg.max_runs,
                       access(d.cfg.policy_path, F_OK) == 0 ? d.cfg.policy_path : "(built-in)");
                dmn_config_done(&d.cfg);
                return 0;
        }
        au_log_set_max_level(d.cfg.log_level);
        au_log_set_static("node", d.cfg.node_id);

        /* Runs die with us; our own children (sandboxes) are reaped through pidfds. */
        prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
        signal(SIGPIPE, SIG_IGN);

        _cleanup_(au_metrics_freep) au_metrics *metrics = NULL;
        dmn_metrics_http *http = NULL;
        dmn_control *control = NULL;
        au_source *sigs[4] = {}, *watchdog = NULL;
        static const dmn_control_ops control_ops = {
                .status = control_status,
                .drain = control_drain,
                .run = control_run,
        };

        if ((r = au_loop_new(&d.loop)) < 0 || (r = au_metrics_new(&metrics)) < 0) {
                log_error_errno(r, "start-up");
                goto out;
        }
        const int signals[] = {SIGTERM, SIGINT, SIGHUP};
        for (size_t i = 0; i < ELEMENTSOF(signals); i++)
                if ((r = au_loop_add_signal(d.loop, signals[i], on_signal, &d, &sigs[i])) < 0) {
                        log_error_errno(r, "watch signals");
                        goto out;
                }

        r = dmn_node_new(d.loop, &d.cfg, &d.policy, metrics, &d.node, &err);
        if (r < 0) {
                log_error("cannot set up the sandbox: %s", err.msg);
                goto out;
        }
        if (d.cfg.metrics_addr[0] &&
            (r = dmn_metrics_http_new(d.loop, d.cfg.metrics_addr, metrics, &http, &err)) < 0) {
                log_error("metrics endpoint %s: %s", d.cfg.metrics_addr, err.msg);
                goto out;
        }
        if ((r = dmn_control_new(d.loop, d.cfg.control_socket, &control_ops, &d, &control, &err)) < 0) {
                log_error("control socket: %s", err.msg);
                goto out;
        }
        if ((r = dmn_node_start(d.node, &err)) < 0) {
                _cleanup_free_ char *shown = au_url_mask(d.cfg.redis_url);
                log_error("redis %s: %s", shown ? shown : "(set)", err.msg);
                goto out;
        }

        uint64_t wd_usec = 0;
        if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0)
                au_loop_add_timer(d.loop, 0, MAX(wd_usec / 2000, (uint64_t) 1), on_watchdog, &d, &watchdog);
        au_loop_add_timer(d.loop, 200, 200, on_exit_check, &d, &d.exit_check);

        {
                /* Credentials never reach a log (the node's ACL user has a password). */
                _cleanup_free_ char *shown = au_url_mask(d.cfg.redis_url);
                log_info("autoosd %s ready: node %s, redis %s, %u runs at once", PACKAGE_VERSION,
                         d.cfg.node_id, shown ? shown : "(set)", d.cfg.max_runs);
        }
        sd_notify(0, "READY=1");
        notify_status(&d);

        r = au_loop_run(d.loop);
        log_info("autoosd stopped");
out:
        dmn_control_free(control);
        dmn_metrics_http_free(http);
        dmn_node_free(d.node);
        au_source_free(watchdog);
        au_source_free(d.exit_check);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                au_source_free(sigs[i]);
        au_loop_free(d.loop);
        dmn_config_done(&d.cfg);
        return r < 0 ? 1 : 0;
}
