/* SPDX-License-Identifier: MIT */
/*
 * bench/spawn: what one sandboxed run of /bin/true costs, next to the tools
 * people compare us with (issue 2, section 5).
 *
 * Rows: plain fork+exec+wait; util-linux `unshare -Urnpfmiu`; Debian
 * `bwrap --unshare-all` (no cgroup, no seccomp); Debian `firejail` with a new
 * network, a private home, no capabilities and its seccomp filter (when it is
 * installed); libsandbox in-process, one sbx_context and sbx_run_sync() per
 * run with every protection on (trust standard, default limits);
 * `autoosctl run` as a whole process; libsandbox with network egress (issue
 * 13): an elevated run with its own veth, address and nftables rules, in a
 * network namespace of the bench's own (an uplink veth with documentation
 * addresses: nothing of the host's network is touched), beside the plain
 * run, as a ratio.
 *
 * Each row gets 10 untimed warm-up runs, then the timed runs are taken in
 * interleaved rounds of 10 per row (the row order rotating each round), so
 * machine noise spreads over all rows alike. The time of a run is the wall
 * time (CLOCK_MONOTONIC) the parent spends from fork (or sbx_run_sync) until
 * the child is reaped. Its CPU time is the user and system time of the whole
 * process tree (wait4's rusage for a command, this process's and its reaped
 * children's for the in-process rows). Prints p50, p95 and mean wall time and
 * the mean CPU time per row, each as a ratio to bwrap's and unshare's from
 * the same run (machines differ; ratios carry over), and says whether
 * `autoosctl run` is below bwrap. Exits non-zero when any in-process run did
 * not exit with code 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/macro.h"
#include "common/parse.h"
#include "sandbox/sandbox.h"

#ifndef BWRAP_PATH
#define BWRAP_PATH ""
#endif
#ifndef UNSHARE_PATH
#define UNSHARE_PATH ""
#endif

#define DEFAULT_RUNS 500u
#define QUICK_RUNS 50u
#define WARMUP_RUNS 10u
#define ROUND_RUNS 10u
#define MAX_ARGS 40

extern char **environ;

typedef enum row_kind {
        ROW_EXEC,    /* fork + execve(argv) + waitpid */
        ROW_LIBRARY, /* sbx_run_sync() in this process */
} row_kind;

typedef enum row_id {
        ROW_FORK_EXEC,
        ROW_UNSHARE,
        ROW_BWRAP,
        ROW_FIREJAIL,
        ROW_IN_PROCESS,
        ROW_IN_PROCESS_AHEAD,
        ROW_IN_PROCESS_EGRESS,
        ROW_AUTOOSCTL,
        _ROW_MAX,
} row_id;

typedef struct row {
        const char *name;
        row_kind kind;
        const char *argv[MAX_ARGS + 1];
        size_t argc;
        char skip[256]; /* why the row is not measured; "" when it is */
        double *ms;     /* timed samples */
        double cpu_ms;  /* CPU time of the timed runs, summed */
        size_t n;
        unsigned failures; /* warm-up and timed runs that did not exit 0 */
        char first_failure[512];
} row;

typedef struct bench {
        row rows[_ROW_MAX];
        uint32_t runs;
        bool markdown;
        int devnull;
        sbx_context *ctx;
        sbx_context *ctx_ahead;  /* prepare_ahead = 4, as autoosd runs it */
        sbx_context *ctx_egress; /* the same, with egress configured (in our own netns) */
        sbx_egress_config egress;
        sbx_spec *spec_egress; /* /bin/true at elevated with network egress */
        char ctx_error[512];
        sbx_spec *spec;
        unsigned run_seq; /* makes each in-process run id unique */
        char bwrap_links[6][PATH_MAX];
        char firejail[PATH_MAX];
} bench;

static void usage(FILE *f) {
        fputs("Usage: spawn [OPTIONS]\n"
              "\n"
              "Measures the wall and CPU time of one run of /bin/true: plain fork+exec,\n"
              "unshare, bwrap, firejail (when installed), libsandbox in-process (with and\n"
              "without network namespaces made ahead, and with network egress) and\n"
              "autoosctl run, each as a ratio to bwrap and unshare in the same run. Rows\n"
              "2-8 need root; as root the bench runs in a network namespace of its own.\n"
              "\n"
              "      --runs N          timed runs per row (default 500)\n"
              "      --quick           50 runs per row, for smoke tests\n"
              "      --autoosctl PATH  autoosctl binary (default ../cli/autoosctl next to\n"
              "                        this program)\n"
              "      --format FORMAT   text (default) or markdown\n"
              "  -h, --help            show this help\n",
              f);
}

static double tv_ms(const struct timeval *tv) {
        return (double) tv->tv_sec * 1e3 + (double) tv->tv_usec / 1e3;
}

/* User plus system time of this process and of its reaped children. */
static double self_cpu_ms(void) {
        struct rusage self, children;

        getrusage(RUSAGE_SELF, &self);
        getrusage(RUSAGE_CHILDREN, &children);
        return tv_ms(&self.ru_utime) + tv_ms(&self.ru_stime) + tv_ms(&children.ru_utime) +
               tv_ms(&children.ru_stime);
}

/* The first executable NAME on $PATH, into ret (size PATH_MAX); false when none. */
static bool find_on_path(const char *name, char *ret) {
        const char *path = getenv("PATH");

        if (!path || !path[0])
                path = "/usr/local/bin:/usr/bin:/bin";
        while (*path) {
                size_t n = strcspn(path, ":");

                if (n > 0 && n + strlen(name) + 2 <= PATH_MAX) {
                        snprintf(ret, PATH_MAX, "%.*s/%s", (int) n, path, name);
                        if (access(ret, X_OK) == 0)
                                return true;
                }
                path += n + (path[n] == ':');
        }
        return false;
}

static double now_ms(void) {
        return (double) au_now_us() / 1e3;
}

_printf_(2, 3) static void row_skip(row *r, const char *fmt, ...) {
        va_list ap;

        if (r->skip[0])
                return;
        va_start(ap, fmt);
        vsnprintf(r->skip, sizeof(r->skip), fmt, ap);
        va_end(ap);
}

_printf_(2, 3) static void row_fail(row *r, const char *fmt, ...) {
        va_list ap;

        if (r->failures++ > 0)
                return;
        va_start(ap, fmt);
        vsnprintf(r->first_failure, sizeof(r->first_failure), fmt, ap);
        va_end(ap);
}

static void row_push(row *r, const char *arg) {
        if (r->argc < MAX_ARGS)
                r->argv[r->argc++] = arg;
}

/* Skips the row unless path names an executable. */
static void require_tool(row *r, const char *what, const char *path) {
        if (!path || !path[0])
                row_skip(r, "%s not found when configure ran", what);
        else if (access(path, X_OK) < 0)
                row_skip(r, "%s not found at %s", what, path);
}

/*
 * bwrap's root is empty but for what we bind: /usr read-only, and /bin, /lib
 * and friends as they are on this host, symlinks into usr/ on a merged-/usr
 * system, bound directories otherwise.
 */
static void bwrap_add_toplevel(bench *b, row *r) {
        static const char *const dirs[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                char *target = b->bwrap_links[i];
                struct stat st;
                ssize_t k;

                if (lstat(dirs[i], &st) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        row_push(r, "--ro-bind");
                        row_push(r, dirs[i]);
                        row_push(r, dirs[i]);
                        continue;
                }
                if (!S_ISLNK(st.st_mode))
                        continue;
                k = readlink(dirs[i], target, PATH_MAX - 1);
                if (k <= 0)
                        continue;
                target[k] = '\0';
                row_push(r, "--symlink");
                row_push(r, target);
                row_push(r, dirs[i]);
        }
}

/* Where `make` puts autoosctl relative to us: <builddir>/cli/autoosctl. */
static int default_autoosctl(char **ret) {
        char self[PATH_MAX], *slash;
        ssize_t k;

        k = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (k <= 0)
                return negative_errno();
        self[k] = '\0';
        slash = strrchr(self, '/');
        if (!slash)
                return -EINVAL;
        *slash = '\0';
        if (asprintf(ret, "%s/../cli/autoosctl", self) < 0)
                return -ENOMEM;
        return 0;
}

static void setup_rows(bench *b, const char *autoosctl) {
        bool root = geteuid() == 0;
        row *r;

        r = &b->rows[ROW_FORK_EXEC];
        r->name = "fork+exec";
        row_push(r, "/bin/true");

        r = &b->rows[ROW_UNSHARE];
        r->name = "unshare -Urnpfmiu";
        row_push(r, UNSHARE_PATH);
        row_push(r, "-Urnpfmiu");
        row_push(r, "/bin/true");
        require_tool(r, "unshare", UNSHARE_PATH);

        r = &b->rows[ROW_BWRAP];
        r->name = "bwrap --unshare-all";
        row_push(r, BWRAP_PATH);
        row_push(r, "--unshare-all");
        row_push(r, "--die-with-parent");
        row_push(r, "--ro-bind");
        row_push(r, "/usr");
        row_push(r, "/usr");
        bwrap_add_toplevel(b, r);
        row_push(r, "--proc");
        row_push(r, "/proc");
        row_push(r, "--dev");
        row_push(r, "/dev");
        row_push(r, "/bin/true");
        require_tool(r, "bwrap", BWRAP_PATH);

        /* firejail's own isolation for a command, without the profiles that would differ per host. */
        r = &b->rows[ROW_FIREJAIL];
        r->name = "firejail";
        if (find_on_path("firejail", b->firejail)) {
                row_push(r, b->firejail);
                row_push(r, "--quiet");
                row_push(r, "--noprofile");
                row_push(r, "--net=none");
                row_push(r, "--private");
                row_push(r, "--caps.drop=all");
                row_push(r, "--nonewprivs");
                row_push(r, "--seccomp");
                row_push(r, "/bin/true");
        } else
                row_skip(r, "firejail is not installed (Debian package firejail)");

        r = &b->rows[ROW_IN_PROCESS];
        r->name = "libsandbox in-process";
        r->kind = ROW_LIBRARY;

        r = &b->rows[ROW_IN_PROCESS_AHEAD];
        r->name = "libsandbox, netns made ahead";
        r->kind = ROW_LIBRARY;

        r = &b->rows[ROW_IN_PROCESS_EGRESS];
        r->name = "libsandbox, egress";
        r->kind = ROW_LIBRARY;

        r = &b->rows[ROW_AUTOOSCTL];
        r->name = "autoosctl run";
        row_push(r, autoosctl);
        row_push(r, "run");
        row_push(r, "--");
        row_push(r, "/bin/true");
        require_tool(r, "autoosctl", autoosctl);

        for (row_id i = ROW_UNSHARE; i < _ROW_MAX; i++)
                if (!root)
                        row_skip(&b->rows[i], "needs root (running as uid %u)", (unsigned) geteuid());
}

/* Runs `ip ARGS...` (no shell); 0 when it exits 0. */
static int run_ip(bench *b, const char *const *args) {
        const char *argv[16] = {"ip"};
        size_t n = 1;
        int status;

        for (; *args && n < ELEMENTSOF(argv) - 1; args++)
                argv[n++] = *args;
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                if (dup2(b->devnull, STDIN_FILENO) < 0 || dup2(b->devnull, STDOUT_FILENO) < 0)
                        _exit(126);
                execvp("ip", (char *const *) argv);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/*
 * The egress row's node: this process moves to a network namespace of its
 * own (before any thread exists: a namespace is per thread) with an uplink,
 * a veth pair whose ends both stay here (192.0.2.1/24; /bin/true sends
 * nothing), forwarding on, and the egress settings naming it. Every other row
 * makes its own namespaces, so they cost the same here. The namespace, its
 * links and its nftables table go when the bench exits.
 */
static void setup_egress_node(bench *b) {
        row *r = &b->rows[ROW_IN_PROCESS_EGRESS];
        static const char *const cmds[][12] = {
                {"link", "add", "up0", "type", "veth", "peer", "name", "inet0", NULL},
                {"addr", "add", "192.0.2.1/24", "dev", "up0", NULL},
                {"link", "set", "up0", "up", NULL},
                {"link", "set", "inet0", "up", NULL},
                {"link", "set", "lo", "up", NULL},
        };
        au_error err = {};

        if (r->skip[0])
                return;
        if (unshare(CLONE_NEWNET) < 0) {
                row_skip(r, "cannot make a network namespace of our own (unshare: %s)", strerror(errno));
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++)
                if (run_ip(b, cmds[i]) < 0) {
                        row_skip(r, "ip %s %s %s failed in the bench's own network namespace", cmds[i][0],
                                 cmds[i][1], cmds[i][2]);
                        return;
                }
        /* Our own namespace's setting (this process left the host's above). */
        _cleanup_close_ int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "1\n", 2) != 2) {
                row_skip(r, "enable forwarding in the bench's network namespace: %s", strerror(errno));
                return;
        }
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "bs%u", (unsigned) getpid() % 10000u);
        if (sbx_egress_config_set(&b->egress, "egress_uplink", "up0", &err) < 0 ||
            sbx_egress_config_set(&b->egress, "egress_pool", "198.51.100.0/24", &err) < 0 ||
            sbx_egress_config_set(&b->egress, "egress_resolvers", "203.0.113.53", &err) < 0 ||
            sbx_egress_config_set(&b->egress, "egress_prefix", prefix, &err) < 0)
                row_skip(r, "egress settings: %s", err.msg);
}

/* The egress state directory (its resolv.conf, slot locks) goes with the bench. */
static void remove_egress_state(bench *b) {
        char dir[PATH_MAX];

        if (!b->ctx_egress)
                return;
        snprintf(dir, sizeof(dir), "/run/autoos/egress-%s", b->egress.prefix);
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d)))
                if (de->d_name[0] != '.')
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        if (d)
                closedir(d);
        (void) rmdir(dir);
}

/* One context for all in-process runs, and one complete spec for /bin/true. */
static void setup_library(bench *b) {
        row *r = &b->rows[ROW_IN_PROCESS];
        sbx_spec *spec;
        au_error err = {};
        int k;

        k = sbx_context_new(NULL, &b->ctx, &err);
        if (k < 0) {
                snprintf(b->ctx_error, sizeof(b->ctx_error), "%s", err.msg[0] ? err.msg : strerror(-k));
                row_skip(r, "sbx_context_new: %s", b->ctx_error);
                row_skip(&b->rows[ROW_IN_PROCESS_AHEAD], "sbx_context_new: %s", b->ctx_error);
                return;
        }
        /* The same, with the helper thread keeping network namespaces ready (autoosd's setting). */
        sbx_config ahead = {.prepare_ahead = 4};
        k = sbx_context_new(&ahead, &b->ctx_ahead, &err);
        if (k < 0)
                row_skip(&b->rows[ROW_IN_PROCESS_AHEAD], "sbx_context_new: %s", err.msg);

        spec = calloc(1, sizeof(sbx_spec));
        if (!spec || !(spec->argv = calloc(2, sizeof(char *))) || !(spec->argv[0] = strdup("/bin/true"))) {
                sbx_spec_free(spec);
                row_skip(r, "out of memory");
                return;
        }
        spec->argc = 1;
        spec->trust = SBX_TRUST_STANDARD;
        k = sbx_spec_apply_policy(spec, NULL, &err);
        if (k < 0) {
                sbx_spec_free(spec);
                row_skip(r, "sbx_spec_apply_policy: %s", err.msg);
                return;
        }
        b->spec = spec;

        /* The egress row: the netns-ahead context's settings, with egress, and /bin/true at elevated. */
        row *re = &b->rows[ROW_IN_PROCESS_EGRESS];
        if (re->skip[0])
                return;
        sbx_config eg = {.prepare_ahead = 4, .egress = &b->egress};
        if ((k = sbx_context_new(&eg, &b->ctx_egress, &err)) < 0) {
                row_skip(re, "sbx_context_new with egress: %s", err.msg);
                return;
        }
        sbx_policy policy;
        sbx_policy_init_default(&policy);
        policy.egress_configured = true;
        if (!(spec = calloc(1, sizeof(sbx_spec))) || !(spec->argv = calloc(2, sizeof(char *))) ||
            !(spec->argv[0] = strdup("/bin/true"))) {
                sbx_spec_free(spec);
                row_skip(re, "out of memory");
                return;
        }
        spec->argc = 1;
        spec->trust = SBX_TRUST_ELEVATED;
        spec->network = SBX_NET_EGRESS;
        spec->network_set = true;
        if ((k = sbx_spec_apply_policy(spec, &policy, &err)) < 0) {
                sbx_spec_free(spec);
                row_skip(re, "sbx_spec_apply_policy (egress): %s", err.msg);
                return;
        }
        b->spec_egress = spec;
}

static double run_exec(bench *b, row *r, double *ret_cpu) {
        struct rusage ru = {};
        double t0, t1;
        int status;
        pid_t pid;

        t0 = now_ms();
        pid = fork();
        if (pid < 0) {
                row_fail(r, "fork: %s", strerror(errno));
                return -1;
        }
        if (pid == 0) {
                /* stderr stays ours, so a tool that fails says why. */
                if (dup2(b->devnull, STDIN_FILENO) < 0 || dup2(b->devnull, STDOUT_FILENO) < 0)
                        _exit(126);
                execve(r->argv[0], (char *const *) r->argv, environ);
                _exit(127);
        }
        while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR) {
                        row_fail(r, "wait4: %s", strerror(errno));
                        return -1;
                }
        t1 = now_ms();
        *ret_cpu = tv_ms(&ru.ru_utime) + tv_ms(&ru.ru_stime);

        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return t1 - t0;
        if (WIFEXITED(status))
                row_fail(r, "exited with status %d", WEXITSTATUS(status));
        else
                row_fail(r, "killed by signal %d", WTERMSIG(status));
        return t1 - t0;
}

static double run_library(bench *b, row *r, double *ret_cpu) {
        _cleanup_sbx_result_ sbx_result *res = NULL;
        char id[64];
        double t0, t1, c0;
        int k;

        bool egress = r == &b->rows[ROW_IN_PROCESS_EGRESS];
        sbx_spec *spec = egress ? b->spec_egress : b->spec;
        sbx_context *ctx = egress                                ? b->ctx_egress
                           : r == &b->rows[ROW_IN_PROCESS_AHEAD] ? b->ctx_ahead
                                                                 : b->ctx;

        /* A fresh id per run, set outside the timed part. */
        snprintf(id, sizeof(id), "bench-spawn-%u", ++b->run_seq);
        free(spec->id);
        spec->id = strdup(id);

        c0 = self_cpu_ms();
        t0 = now_ms();
        k = sbx_run_sync(ctx, spec, NULL, NULL, &res);
        t1 = now_ms();
        *ret_cpu = self_cpu_ms() - c0;

        if (k < 0) {
                row_fail(r, "sbx_run_sync: %s", strerror(-k));
                return -1;
        }
        if (res->outcome != SBX_OUTCOME_EXITED || res->exit_code != 0)
                row_fail(r, "outcome %s, exit code %d%s%s", sbx_outcome_to_string(res->outcome),
                         res->exit_code, res->error ? ": " : "", res->error ? res->error : "");
        return t1 - t0;
}

static void run_row(bench *b, row *r, unsigned count, bool timed) {
        for (unsigned i = 0; i < count && !r->skip[0]; i++) {
                double cpu = 0;
                double ms = r->kind == ROW_LIBRARY ? run_library(b, r, &cpu) : run_exec(b, r, &cpu);

                if (timed && ms >= 0) {
                        r->ms[r->n++] = ms;
                        r->cpu_ms += cpu;
                }
        }
}

static void measure(bench *b) {
        for (row_id i = 0; i < _ROW_MAX; i++) {
                row *r = &b->rows[i];

                run_row(b, r, WARMUP_RUNS, false);
                /* A tool that cannot run /bin/true at all is not worth timing. */
                if (r->kind == ROW_EXEC && r->failures == WARMUP_RUNS)
                        row_skip(r, "every warm-up run failed: %s", r->first_failure);
        }

        for (unsigned done = 0, round = 0; done < b->runs; done += ROUND_RUNS, round++) {
                unsigned count = MIN(ROUND_RUNS, b->runs - done);

                for (unsigned j = 0; j < _ROW_MAX; j++)
                        run_row(b, &b->rows[(round + j) % _ROW_MAX], count, true);
        }
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

/* Linear interpolation between the closest ranks of sorted samples. */
static double percentile(const double *v, size_t n, double q) {
        double pos = q * (double) (n - 1);
        size_t lo = (size_t) pos;

        if (lo + 1 >= n)
                return v[n - 1];
        return v[lo] + (pos - (double) lo) * (v[lo + 1] - v[lo]);
}

typedef struct stats {
        double p50, p95, mean, cpu;
} stats;

static bool row_stats(row *r, stats *ret) {
        double sum = 0;

        if (r->skip[0] || r->n == 0)
                return false;
        qsort(r->ms, r->n, sizeof(double), cmp_double);
        for (size_t i = 0; i < r->n; i++)
                sum += r->ms[i];
        ret->p50 = percentile(r->ms, r->n, 0.50);
        ret->p95 = percentile(r->ms, r->n, 0.95);
        ret->mean = sum / (double) r->n;
        ret->cpu = r->cpu_ms / (double) r->n;
        return true;
}

static void format_ratio(char *buf, size_t size, double v, bool have_ref, double ref) {
        if (have_ref && ref > 0)
                snprintf(buf, size, "%.2fx", v / ref);
        else
                snprintf(buf, size, "-");
}

static void print_table(bench *b) {
        stats st[_ROW_MAX] = {};
        bool have[_ROW_MAX];

        for (row_id i = 0; i < _ROW_MAX; i++)
                have[i] = row_stats(&b->rows[i], &st[i]);

        if (b->markdown) {
                printf("| /bin/true, %u runs | p50 ms | p95 ms | CPU ms | p50 / bwrap | CPU / bwrap | "
                       "p50 / unshare | CPU / unshare |\n",
                       b->runs);
                printf("|---|--:|--:|--:|--:|--:|--:|--:|\n");
        } else {
                printf("bench/spawn: /bin/true, %u timed runs per row after %u warm-up runs, "
                       "interleaved in rounds of %u; CPU is the mean user+system time of the whole run\n\n",
                       b->runs, WARMUP_RUNS, ROUND_RUNS);
                printf("%-28s %9s %9s %9s %9s %10s %10s %12s %12s\n", "row", "p50 ms", "p95 ms", "mean ms",
                       "CPU ms", "p50/bwrap", "CPU/bwrap", "p50/unshare", "CPU/unshare");
        }

        for (row_id i = 0; i < _ROW_MAX; i++) {
                row *r = &b->rows[i];
                char vs[4][32];

                if (!have[i]) {
                        const char *why = r->skip[0] ? r->skip : "no successful run";

                        if (b->markdown)
                                printf("| %s | skipped | - | - | - | - | - | - |\n", r->name);
                        else
                                printf("%-28s skipped: %s\n", r->name, why);
                        continue;
                }
                format_ratio(vs[0], sizeof(vs[0]), st[i].p50, have[ROW_BWRAP], st[ROW_BWRAP].p50);
                format_ratio(vs[1], sizeof(vs[1]), st[i].cpu, have[ROW_BWRAP], st[ROW_BWRAP].cpu);
                format_ratio(vs[2], sizeof(vs[2]), st[i].p50, have[ROW_UNSHARE], st[ROW_UNSHARE].p50);
                format_ratio(vs[3], sizeof(vs[3]), st[i].cpu, have[ROW_UNSHARE], st[ROW_UNSHARE].cpu);
                if (b->markdown)
                        printf("| %s | %.1f | %.1f | %.1f | %s | %s | %s | %s |\n", r->name, st[i].p50,
                               st[i].p95, st[i].cpu, vs[0], vs[1], vs[2], vs[3]);
                else
                        printf("%-28s %9.3f %9.3f %9.3f %9.3f %10s %10s %12s %12s\n", r->name, st[i].p50,
                               st[i].p95, st[i].mean, st[i].cpu, vs[0], vs[1], vs[2], vs[3]);
        }

        /* Notes: skipped rows (markdown) and failures (both). */
        bool first = true;
        for (row_id i = 0; i < _ROW_MAX; i++) {
                row *r = &b->rows[i];
                const char *bullet = b->markdown ? "- " : "  ";

                if (!have[i] && b->markdown) {
                        if (first)
                                printf("\n");
                        first = false;
                        printf("%s%s skipped: %s\n", bullet, r->name,
                               r->skip[0] ? r->skip : "no successful run");
                }
                if (r->failures > 0 && !r->skip[0]) {
                        if (first)
                                printf("\n");
                        first = false;
                        printf("%s%s: %u failed run(s), first: %s\n", bullet, r->name, r->failures,
                               r->first_failure);
                }
        }

        /* Issue 13: what an egress run's link, address and rules add to a run like it. */
        if (have[ROW_IN_PROCESS_EGRESS] && have[ROW_IN_PROCESS_AHEAD])
                printf("\n%segress run: p50 %.2f ms, %.2fx the plain run's (netns made ahead, %.2f ms); CPU "
                       "%.2fx\n",
                       b->markdown ? "- " : "", st[ROW_IN_PROCESS_EGRESS].p50,
                       st[ROW_IN_PROCESS_EGRESS].p50 / st[ROW_IN_PROCESS_AHEAD].p50,
                       st[ROW_IN_PROCESS_AHEAD].p50,
                       st[ROW_IN_PROCESS_EGRESS].cpu / st[ROW_IN_PROCESS_AHEAD].cpu);

        /* The target of issue 12: the one-shot command below bwrap, in wall and CPU time. */
        if (have[ROW_AUTOOSCTL] && have[ROW_BWRAP])
                printf("\n%sautoosctl run: p50 %.2fx bwrap's (%s), CPU %.2fx bwrap's (%s)\n",
                       b->markdown ? "- " : "", st[ROW_AUTOOSCTL].p50 / st[ROW_BWRAP].p50,
                       st[ROW_AUTOOSCTL].p50 < st[ROW_BWRAP].p50 ? "below" : "NOT below",
                       st[ROW_AUTOOSCTL].cpu / st[ROW_BWRAP].cpu,
                       st[ROW_AUTOOSCTL].cpu < st[ROW_BWRAP].cpu ? "below" : "NOT below");
}

static void print_host(bench *b) {
        struct utsname u;
        const char *mode = b->ctx ? sbx_context_cgroup_mode(b->ctx) : NULL;
        char unknown[600];

        if (uname(&u) < 0)
                snprintf(u.release, sizeof(u.release), "unknown");
        if (!mode) {
                snprintf(unknown, sizeof(unknown), "unknown (%s)",
                         b->ctx_error[0] ? b->ctx_error : "no sandbox context");
                mode = unknown;
        }
        printf("\nHost: kernel %s %s, cgroup %s, nproc %ld\n", u.release, u.machine, mode,
               sysconf(_SC_NPROCESSORS_ONLN));
}

int main(int argc, char **argv) {
        enum { OPT_RUNS = 0x100, OPT_QUICK, OPT_AUTOOSCTL, OPT_FORMAT };
        static const struct option options[] = {
                {"runs", required_argument, NULL, OPT_RUNS},
                {"quick", no_argument, NULL, OPT_QUICK},
                {"autoosctl", required_argument, NULL, OPT_AUTOOSCTL},
                {"format", required_argument, NULL, OPT_FORMAT},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_free_ char *autoosctl = NULL;
        bench b = {.runs = DEFAULT_RUNS, .devnull = -1};
        unsigned in_process_failures;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
                switch (c) {
                case 'h':
                        usage(stdout);
                        return 0;
                case OPT_RUNS:
                        if (au_parse_uint32(optarg, &b.runs) < 0 || b.runs == 0) {
                                fprintf(stderr, "spawn: --runs %s: expected a number of runs, 1 or more\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case OPT_QUICK:
                        b.runs = QUICK_RUNS;
                        break;
                case OPT_AUTOOSCTL:
                        free(autoosctl);
                        autoosctl = strdup(optarg);
                        if (!autoosctl)
                                return 1;
                        break;
                case OPT_FORMAT:
                        if (strcmp(optarg, "markdown") == 0)
                                b.markdown = true;
                        else if (strcmp(optarg, "text") != 0) {
                                fprintf(stderr, "spawn: --format %s: expected text or markdown\n", optarg);
                                return 2;
                        }
                        break;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "spawn: unexpected argument %s\n", argv[optind]);
                return 2;
        }
        if (!autoosctl && default_autoosctl(&autoosctl) < 0) {
                fprintf(stderr, "spawn: cannot find our own binary; pass --autoosctl PATH\n");
                return 1;
        }

        b.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (b.devnull < 0) {
                fprintf(stderr, "spawn: open /dev/null: %s\n", strerror(errno));
                return 1;
        }
        setup_rows(&b, autoosctl);
        if (geteuid() == 0) {
                setup_egress_node(&b);
                setup_library(&b);
        }
        if (!b.spec_egress)
                row_skip(&b.rows[ROW_IN_PROCESS_EGRESS], "no sandbox context: %s",
                         b.ctx_error[0] ? b.ctx_error : "see above");
        else
                snprintf(b.ctx_error, sizeof(b.ctx_error), "no sandbox context without root");
        for (row_id i = 0; i < _ROW_MAX; i++) {
                b.rows[i].ms = calloc(b.runs, sizeof(double));
                if (!b.rows[i].ms) {
                        fprintf(stderr, "spawn: out of memory\n");
                        return 1;
                }
        }

        measure(&b);
        print_table(&b);
        print_host(&b);

        in_process_failures = b.rows[ROW_IN_PROCESS].failures;
        for (row_id i = 0; i < _ROW_MAX; i++)
                free(b.rows[i].ms);
        sbx_spec_free(b.spec);
        sbx_context_free(b.ctx);
        sbx_context_free(b.ctx_ahead);
        sbx_spec_free(b.spec_egress);
        sbx_context_free(b.ctx_egress);
        remove_egress_state(&b);
        safe_close(b.devnull);
        return in_process_failures > 0 ? 1 : 0;
}
