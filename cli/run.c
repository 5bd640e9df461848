/* SPDX-License-Identifier: MIT */
/* autoosctl run: one sandboxed command, locally, with no daemon, database or broker. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "cli.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/parse.h"
#include "sandbox/sandbox.h"
#include "sandbox/supervise.h"

#define DEFAULT_POLICY AUTOOS_SYSCONFDIR "/autoos/policy.json"
#define DEFAULT_NODE_CONFIG AUTOOS_SYSCONFDIR "/autoos/autoosd.conf"
#define MAX_HOST_FILE (256u << 20)

static void run_usage(FILE *f) {
        fputs("Usage: autoosctl run [OPTIONS] -- PROGRAM [ARG]...\n"
              "\n"
              "Runs PROGRAM in a new sandbox on this host: new user, pid, mount, network, uts,\n"
              "ipc and cgroup namespaces, a cgroup limit, a seccomp filter, no capabilities.\n"
              "PROGRAM is an absolute path as seen inside the sandbox (/usr, /bin, /lib are\n"
              "the host's, read-only; /work is writable; /tmp is private), or a name looked\n"
              "up on the sandbox's PATH (default /usr/local/bin:/usr/bin:/bin), as execvp does.\n"
              "\n"
              "Limits (defaults from the trust level's policy):\n"
              "      --memory SIZE        memory limit, swap 0 (default 512M)\n"
              "      --cpu PERCENT        CPU quota in percent of one CPU (default 50)\n"
              "      --pids N             maximum number of processes (default 256)\n"
              "      --timeout DURATION   wall-clock limit (default 30s)\n"
              "      --cpu-time DURATION  CPU time limit of the whole run (default 20s)\n"
              "      --output-limit SIZE  output kept per stream; more is discarded and\n"
              "                           flagged, 8 times more ends the run (default 1M)\n"
              "      --work-size SIZE     size of the writable /work (default 64M)\n"
              "Sandbox:\n"
              "      --net none|loopback|egress  network: nothing, loopback only (default), or\n"
              "                           egress as the node's settings and the policy allow\n"
              "      --trust LEVEL        restricted, standard, elevated or privileged\n"
              "                           (default standard)\n"
              "      --env NAME=VALUE     set a variable; nothing of this shell's environment\n"
              "                           reaches the program (repeatable)\n"
              "      --file NAME=HOSTPATH copy a host file to /work/NAME (repeatable)\n"
              "      --stdin-file PATH    feed the program this file on stdin\n"
              "      --spec FILE          read a JSON run spec (DESIGN.md); options override it\n"
              "      --policy FILE        policy to apply (default " DEFAULT_POLICY ",\n"
              "                           built-in values when it does not exist)\n"
              "      --node-config FILE   the node's egress_* settings (default " DEFAULT_NODE_CONFIG ")\n"
              "Output:\n"
              "      --json               print the result object on stdout instead of the\n"
              "                           program's output\n"
              "  -h, --help               show this help\n"
              "\n"
              "SIZE: 65536, 512K, 512M, 1G. DURATION: 1500ms, 30s, 2m, 1h (a bare number is seconds).\n"
              "\n"
              "Exit status: the program's; 128+N when killed by signal N; 124 on timeout or\n"
              "cpu_limit; 137 on oom, pids_limit or output_limit; 125 when the sandbox could\n"
              "not run it (sandbox_error) or the policy refused it (rejected), with a one-line\n"
              "reason on stderr; 2 for bad options. With --json the status is the same.\n"
              "Needs root.\n",
              f);
}

enum {
        OPT_MEMORY = 0x100,
        OPT_CPU,
        OPT_PIDS,
        OPT_TIMEOUT,
        OPT_CPU_TIME,
        OPT_OUTPUT_LIMIT,
        OPT_WORK_SIZE,
        OPT_NET,
        OPT_TRUST,
        OPT_ENV,
        OPT_FILE,
        OPT_STDIN_FILE,
        OPT_SPEC,
        OPT_POLICY,
        OPT_NODE_CONFIG,
        OPT_JSON,
};

static const struct option options[] = {
        {"memory", required_argument, NULL, OPT_MEMORY},
        {"cpu", required_argument, NULL, OPT_CPU},
        {"pids", required_argument, NULL, OPT_PIDS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"cpu-time", required_argument, NULL, OPT_CPU_TIME},
        {"output-limit", required_argument, NULL, OPT_OUTPUT_LIMIT},
        {"work-size", required_argument, NULL, OPT_WORK_SIZE},
        {"net", required_argument, NULL, OPT_NET},
        {"trust", required_argument, NULL, OPT_TRUST},
        {"env", required_argument, NULL, OPT_ENV},
        {"file", required_argument, NULL, OPT_FILE},
        {"stdin-file", required_argument, NULL, OPT_STDIN_FILE},
        {"spec", required_argument, NULL, OPT_SPEC},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"node-config", required_argument, NULL, OPT_NODE_CONFIG},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {},
};

/* Which option sets each spec field, so policy refusals name what the user typed. */
static const struct {
        const char *field, *option;
} field_options[] = {
        {"limits.memory_bytes", "--memory"},
        {"limits.cpu_percent", "--cpu"},
        {"limits.pids", "--pids"},
        {"limits.wall_ms", "--timeout"},
        {"limits.cpu_ms", "--cpu-time"},
        {"limits.output_bytes", "--output-limit"},
        {"limits.work_bytes", "--work-size"},
        {"network", "--net"},
        {"trust", "--trust"},
        {"env", "--env"},
        {"files", "--file"},
        {"argv", "PROGRAM"},
        {"stdin", "--stdin-file"},
};

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;
        fputs("autoosctl run: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" (see 'autoosctl run --help')\n", stderr);
        return CLI_EXIT_USAGE;
}

/* Reads a whole host file, refusing more than max bytes. */
static int read_host_file(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_buf_ au_buf b = AU_BUF_INIT(max + 1); /* one byte over tells a file that is too big */

        if (fd < 0)
                return negative_errno();
        int r = au_buf_read_fd(&b, fd, max);
        if (r < 0)
                return r;
        *ret = au_buf_steal(&b, ret_len);
        return *ret ? 0 : -ENOMEM;
}

static int add_env(sbx_spec *spec, const char *arg) {
        const char *eq = strchr(arg, '=');
        size_t nl = eq ? (size_t) (eq - arg) : 0;
        if (!eq || nl == 0)
                return usage_error("--env %s: expected NAME=VALUE", arg);
        /* A later --env NAME=... replaces an earlier one (or the spec file's). */
        for (size_t i = 0; i < spec->n_env; i++)
                if (strncmp(spec->env[i], arg, nl + 1) == 0) {
                        char *s = strdup(arg);
                        if (!s)
                                return -ENOMEM;
                        free(spec->env[i]);
                        spec->env[i] = s;
                        return 0;
                }
        return au_strv_push(&spec->env, &spec->n_env, arg);
}

static int add_file(sbx_spec *spec, const char *arg) {
        const char *eq = strchr(arg, '=');
        if (!eq || eq == arg || !eq[1])
                return usage_error("--file %s: expected NAME=HOSTPATH", arg);
        sbx_file f = {};
        struct stat st;
        if (stat(eq + 1, &st) < 0 || !S_ISREG(st.st_mode))
                return usage_error("--file %s: %s is not a readable regular file", arg, eq + 1);
        int r = read_host_file(eq + 1, MAX_HOST_FILE, &f.data, &f.size);
        if (r < 0)
                return usage_error("--file %s: %s", arg, strerror(-r));
        f.name = strndup(arg, (size_t) (eq - arg));
        f.mode = (st.st_mode & 0111) ? 0755 : 0644;
        sbx_file *nf = f.name ? realloc(spec->files, (spec->n_files + 1) * sizeof(sbx_file)) : NULL;
        if (!nf) {
                free(f.name);
                free(f.data);
                return -ENOMEM;
        }
        spec->files = nf;
        spec->files[spec->n_files++] = f;
        return 0;
}

static int parse_size_opt(const char *opt, const char *arg, uint64_t *ret) {
        if (au_parse_size(arg, ret) < 0)
                return usage_error("%s %s: expected a size such as 65536, 512K, 512M or 1G", opt, arg);
        return 0;
}

static int parse_duration_opt(const char *opt, const char *arg, uint64_t *ret) {
        if (au_parse_duration_ms(arg, ret) < 0 || *ret == 0)
                return usage_error("%s %s: expected a duration such as 1500ms, 30s or 2m", opt, arg);
        return 0;
}

static void output_passthrough(void *userdata, int stream, const char *buf, size_t len) {
        (void) userdata;
        int fd = stream == 1 ? STDOUT_FILENO : STDERR_FILENO;
        while (len > 0) {
                ssize_t k = write(fd, buf, len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return; /* our reader went away: the run goes on, its output is kept */
                buf += k;
                len -= (size_t) k;
        }
}

static const char *option_for_field(const char *field) {
        for (size_t i = 0; i < ELEMENTSOF(field_options); i++)
                if (strcmp(field_options[i].field, field) == 0)
                        return field_options[i].option;
        return NULL;
}

/* Prints a result that never ran (rejected / sandbox_error) and returns its exit status. */
static int report_unstarted(sbx_outcome outcome, const char *id, const au_error *err, bool json) {
        char msg[768];
        const char *opt = err->field[0] ? option_for_field(err->field) : NULL;
        if (opt)
                snprintf(msg, sizeof(msg), "%s: %s", opt, err->msg);
        else
                snprintf(msg, sizeof(msg), "%s", err->msg);
        _cleanup_sbx_result_ sbx_result *res = sbx_result_new_error(id, outcome, msg);
        if (!res)
                return 125;
        clock_gettime(CLOCK_REALTIME, &res->started_at);
        res->finished_at = res->started_at;
        if (json) {
                _cleanup_free_ char *s = sbx_result_to_json(res, false);
                if (s)
                        printf("%s\n", s);
        }
        fprintf(stderr, "autoosctl run: %s: %s\n", sbx_outcome_to_string(outcome), msg);
        return sbx_result_exit_status(res);
}

typedef struct run_opts {
        bool json;
        const char *spec_file, *policy_file, *stdin_file, *node_config;
        sbx_limits limits; /* 0: not given */
        sbx_trust trust;
        sbx_network network;
} run_opts;

/* Applies command-line values over the spec (from --spec, or empty). */
static void apply_opts(sbx_spec *spec, const run_opts *o) {
        const sbx_limits *l = &o->limits;
        if (l->memory_bytes)
                spec->limits.memory_bytes = l->memory_bytes;
        if (l->cpu_percent)
                spec->limits.cpu_percent = l->cpu_percent;
        if (l->pids)
                spec->limits.pids = l->pids;
        if (l->wall_ms)
                spec->limits.wall_ms = l->wall_ms;
        if (l->cpu_ms)
                spec->limits.cpu_ms = l->cpu_ms;
        if (l->output_bytes)
                spec->limits.output_bytes = l->output_bytes;
        if (l->work_bytes)
                spec->limits.work_bytes = l->work_bytes;
        if (o->trust != _SBX_TRUST_INVALID)
                spec->trust = o->trust;
        if (o->network != _SBX_NET_INVALID) {
                spec->network = o->network;
                spec->network_set = true;
        }
}

static char *make_id(void) {
        uuid_t u;
        char s[UUID_STR_LEN];
        uuid_generate_random(u);
        uuid_unparse_lower(u, s);
        return strdup(s);
}

/* A helper's "go on": any other value is cli_run's exit status. */
#define RUN_GO (-1)

/* The options into o and spec (--env, --file): RUN_GO, or the exit status (--help, a usage error). */
static int parse_run_options(int argc, char **argv, run_opts *o, sbx_spec *spec) {
        int c, r;

        optind = 1;
        opterr = 0;
        /* '+': stop at the first non-option, so PROGRAM's own options stay its own. */
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
                const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
                switch (c) {
                case 'h':
                        run_usage(stdout);
                        return 0;
                case OPT_MEMORY:
                        if ((r = parse_size_opt("--memory", optarg, &o->limits.memory_bytes)))
                                return r;
                        break;
                case OPT_CPU:
                        if (au_parse_uint32(optarg, &o->limits.cpu_percent) < 0 ||
                            o->limits.cpu_percent == 0)
                                return usage_error("--cpu %s: expected a percentage of one CPU, 1 or more",
                                                   optarg);
                        break;
                case OPT_PIDS:
                        if (au_parse_uint32(optarg, &o->limits.pids) < 0 || o->limits.pids == 0)
                                return usage_error("--pids %s: expected a number of processes, 1 or more",
                                                   optarg);
                        break;
                case OPT_TIMEOUT:
                        if ((r = parse_duration_opt("--timeout", optarg, &o->limits.wall_ms)))
                                return r;
                        break;
                case OPT_CPU_TIME:
                        if ((r = parse_duration_opt("--cpu-time", optarg, &o->limits.cpu_ms)))
                                return r;
                        break;
                case OPT_OUTPUT_LIMIT:
                        if ((r = parse_size_opt("--output-limit", optarg, &o->limits.output_bytes)))
                                return r;
                        if (o->limits.output_bytes == 0)
                                return usage_error("--output-limit 0: must be at least 1 byte");
                        break;
                case OPT_WORK_SIZE:
                        if ((r = parse_size_opt("--work-size", optarg, &o->limits.work_bytes)))
                                return r;
                        if (o->limits.work_bytes == 0)
                                return usage_error("--work-size 0: must be at least 1 byte");
                        break;
                case OPT_NET:
                        o->network = sbx_network_from_string(optarg);
                        if (o->network == _SBX_NET_INVALID)
                                return usage_error("--net %s: expected none, loopback or egress", optarg);
                        break;
                case OPT_TRUST:
                        o->trust = sbx_trust_from_string(optarg);
                        if (o->trust == _SBX_TRUST_INVALID)
                                return usage_error(
                                        "--trust %s: expected restricted, standard, elevated or privileged",
                                        optarg);
                        break;
                case OPT_ENV:
                        if ((r = add_env(spec, optarg)))
                                return r < 0 ? 125 : r;
                        break;
                case OPT_FILE:
                        if ((r = add_file(spec, optarg)))
                                return r < 0 ? 125 : r;
                        break;
                case OPT_STDIN_FILE:
                        o->stdin_file = optarg;
                        break;
                case OPT_SPEC:
                        o->spec_file = optarg;
                        break;
                case OPT_NODE_CONFIG:
                        o->node_config = optarg;
                        break;
                case OPT_POLICY:
                        o->policy_file = optarg;
                        break;
                case OPT_JSON:
                        o->json = true;
                        break;
                case ':':
                        return usage_error("%s: requires a value", name);
                default:
                        return usage_error("%s: unknown option", name);
                }
        }

        return RUN_GO;
}

/*
 * The policy (it bounds the spec file and gives the defaults) and the node's
 * egress settings, as autoosd reads them: without them egress is rejected.
 * RUN_GO, or the exit status.
 */
static int load_policy(const run_opts *o, sbx_policy *policy, sbx_egress_config *egress) {
        au_error err = {};
        int r;

        sbx_policy_init_default(policy);
        const char *pf = o->policy_file ? o->policy_file : DEFAULT_POLICY;
        if ((o->policy_file || access(pf, F_OK) == 0) && (r = sbx_policy_load(pf, policy, &err)) < 0) {
                fprintf(stderr, "autoosctl run: policy %s: %s\n", pf, err.msg);
                return CLI_EXIT_USAGE;
        }
        const char *nc = o->node_config ? o->node_config : DEFAULT_NODE_CONFIG;
        if ((r = sbx_egress_config_load(egress, nc, &err)) < 0) {
                fprintf(stderr, "autoosctl run: %s\n", err.msg);
                return CLI_EXIT_USAGE;
        }
        policy->egress_configured = sbx_egress_config_usable(egress);

        return RUN_GO;
}

/*
 * The spec: --spec's file (the options given merged onto it), PROGRAM and its
 * arguments, --stdin-file. *specp may be replaced. RUN_GO, or the exit status.
 */
static int build_spec(int argc, char **argv, const run_opts *o, const sbx_policy *policy, sbx_spec **specp) {
        sbx_spec *spec = *specp;
        au_error err = {};
        int r;

        if (o->spec_file) {
                _cleanup_free_ char *buf = NULL;
                size_t len;
                r = read_host_file(o->spec_file, policy->max_spec_bytes, &buf, &len);
                if (r < 0)
                        return usage_error("--spec %s: %s", o->spec_file,
                                           r == -EFBIG ? "larger than the policy's max_spec_bytes"
                                                       : strerror(-r));
                sbx_spec *parsed = NULL;
                r = sbx_spec_from_json(buf, len, policy, &parsed, &err);
                if (r < 0)
                        return report_unstarted(SBX_OUTCOME_REJECTED, NULL, &err, o->json);
                /* Options given before --spec's content is known: merge them onto the file's spec. */
                for (size_t i = 0; i < spec->n_env; i++)
                        if ((r = add_env(parsed, spec->env[i])))
                                return 125;
                for (size_t i = 0; i < spec->n_files; i++) {
                        sbx_file *nf = realloc(parsed->files, (parsed->n_files + 1) * sizeof(sbx_file));
                        if (!nf)
                                return 125;
                        parsed->files = nf;
                        parsed->files[parsed->n_files++] = spec->files[i];
                }
                free(spec->files);
                spec->files = NULL;
                spec->n_files = 0;
                sbx_spec_free(spec);
                *specp = spec = parsed;
        }

        if (optind < argc) {
                char **v = NULL;
                size_t n = 0;
                for (int i = optind; i < argc; i++)
                        if (au_strv_push(&v, &n, argv[i]) < 0)
                                return 125;
                for (size_t i = 0; i < spec->argc; i++)
                        free(spec->argv[i]);
                free(spec->argv);
                spec->argv = v;
                spec->argc = n;
        }
        if (!spec->argv || spec->argc == 0)
                return usage_error("no PROGRAM given: autoosctl run [OPTIONS] -- PROGRAM [ARG]...");
        if (spec->argv[0][0] != '/' && (spec->argv[0][0] == '\0' || strchr(spec->argv[0], '/')))
                return usage_error(
                        "PROGRAM %s: must be an absolute path inside the sandbox (e.g. /bin/sh) or a "
                        "name looked up on PATH (e.g. sh)",
                        spec->argv[0]);

        if (o->stdin_file) {
                free(spec->stdin_data);
                spec->stdin_data = NULL;
                r = read_host_file(o->stdin_file, MAX_HOST_FILE, &spec->stdin_data, &spec->stdin_size);
                if (r < 0)
                        return usage_error("--stdin-file %s: %s", o->stdin_file, strerror(-r));
        }

        return RUN_GO;
}

/* What a person reads on stderr (or the result as JSON on stdout); returns the exit status. */
static int report_result(const sbx_spec *spec, const sbx_result *res, bool json, int caught) {
        if (json) {
                _cleanup_free_ char *s = sbx_result_to_json(res, false);
                if (!s)
                        return 125;
                printf("%s\n", s);
        } else {
                if (res->outcome == SBX_OUTCOME_SANDBOX_ERROR || res->outcome == SBX_OUTCOME_REJECTED)
                        fprintf(stderr, "autoosctl run: %s: %s\n", sbx_outcome_to_string(res->outcome),
                                res->error ? res->error : "unknown error");
                else if (res->reason)
                        fprintf(stderr, "autoosctl run: %s: %s\n", sbx_outcome_to_string(res->outcome),
                                res->reason);
                else if (res->outcome == SBX_OUTCOME_OOM)
                        fprintf(stderr,
                                "autoosctl run: oom: the memory limit of %" PRIu64 " bytes was reached\n",
                                spec->limits.memory_bytes);
                else if (res->outcome == SBX_OUTCOME_PIDS_LIMIT)
                        fprintf(stderr,
                                "autoosctl run: pids_limit: the process limit of %" PRIu32 " was reached\n",
                                spec->limits.pids);
                if (res->stdout_truncated || res->stderr_truncated)
                        fprintf(stderr,
                                "autoosctl run: output beyond %" PRIu64 " bytes per stream was discarded\n",
                                spec->limits.output_bytes);
        }
        fflush(stdout);
        if (caught)
                return 128 + caught;
        return sbx_result_exit_status(res);
}

int cli_run(int argc, char **argv) {
        run_opts o = {.trust = _SBX_TRUST_INVALID, .network = _SBX_NET_INVALID};
        _cleanup_sbx_spec_ sbx_spec *spec = calloc(1, sizeof(sbx_spec));
        sbx_policy policy;
        au_error err = {};
        int r;

        if (!spec)
                return 125;
        spec->trust = _SBX_TRUST_INVALID;
        if ((r = parse_run_options(argc, argv, &o, spec)) != RUN_GO)
                return r;
        sbx_egress_config egress = {};
        if ((r = load_policy(&o, &policy, &egress)) != RUN_GO)
                return r;
        if ((r = build_spec(argc, argv, &o, &policy, &spec)) != RUN_GO)
                return r;

        apply_opts(spec, &o);
        if (spec->trust == _SBX_TRUST_INVALID)
                spec->trust = policy.default_trust;
        if (!spec->id && !(spec->id = make_id()))
                return 125;
        r = sbx_spec_apply_policy(spec, &policy, &err);
        if (r < 0)
                return report_unstarted(SBX_OUTCOME_REJECTED, spec->id, &err, o.json);

        _cleanup_sbx_context_ sbx_context *ctx = NULL;
        /* One run: its network namespace is made inline, with no helper thread making spares;
         * the cgroups of dead supervisors are removed while the child builds its root. */
        sbx_config sc = {.prepare_ahead = 0, .egress = &egress, .defer_stale_cleanup = true};
        r = sbx_context_new(&sc, &ctx, &err);
        if (r < 0)
                return report_unstarted(SBX_OUTCOME_SANDBOX_ERROR, spec->id, &err, o.json);

        /* Signals end the run cleanly (cgroup removed) instead of killing us mid-way. */
        sigset_t mask;
        _cleanup_close_ int sfd = sbx_supervise_signals(&mask);

        sbx_supervised one = {};
        r = sbx_run_start(ctx, spec, o.json ? NULL : output_passthrough, NULL, &one.run, &err);
        sbx_context_cleanup_stale(ctx);
        if (r < 0)
                return report_unstarted(SBX_OUTCOME_SANDBOX_ERROR, spec->id, &err, o.json);

        sbx_supervisor sup = {.sigfd = sfd, .kill_reason = "autoosctl received", .name_signal = true};
        sbx_supervised *runs[] = {&one};
        r = sbx_supervise(&sup, runs, 1, NULL, NULL, 0);
        /* The run is over: signals may end us again from here on. */
        sbx_supervise_signals_end(&mask);
        _cleanup_sbx_result_ sbx_result *res = TAKE_PTR(one.res);
        one.run = sbx_run_free(one.run);
        if (!res) {
                fprintf(stderr, "autoosctl run: sandbox_error: supervising the run failed: %s\n",
                        strerror(one.error < 0 ? -one.error
                                 : r < 0       ? -r
                                               : EIO));
                return 125;
        }
        return report_result(spec, res, o.json, sup.caught);
}
