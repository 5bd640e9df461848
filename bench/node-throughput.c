/* SPDX-License-Identifier: MIT */
/*
 * bench/node-throughput: jobs through Redis to one autoosd and back (issue 3,
 * "Benchmark"), beside what one in-process sandboxed run costs.
 *
 * Starts its own redis-server (free loopback port, temporary directory, no
 * persistence) and, for each --max-runs value, a fresh autoosd (../daemon/
 * autoosd next to this binary's directory, own node id, state dir, control
 * socket, no metrics endpoint, built-in policy). A producer thread XADDs
 * --jobs specs of /bin/true to autoos:jobs:<node> in pipelined batches; the
 * main thread reads autoos:results with XREAD BLOCK. Per job:
 *
 *   enqueue time = the ms part of the XADD entry id (Redis's clock)
 *   result time  = CLOCK_REALTIME when the bench read the result
 *
 * Throughput = jobs / (last result time - first enqueue time). 50 untimed
 * warm-up jobs go first. The in-process rows are bench/spawn's: one
 * sbx_context, sbx_run_sync() of /bin/true one after another (prepare_ahead 0
 * as in bench/spawn, and 4 as autoosd uses), p50/p99 of the wall time,
 * measured before and after the rounds and averaged; the same runs in nproc
 * processes at once (each its own context) give the host's parallel rate.
 * The peer rows run the same /bin/true with no sandbox at all (fork+exec),
 * and through bwrap, unshare and firejail (those installed), in one loop and
 * in nproc parallel loops (posix_spawn from each loop), in the same run. The
 * node efficiency printed is issue 12's measure: the best autoosd runs/s over
 * nproc x the in-process serial rate (prepare_ahead 4). Beside it the host's
 * own scaling, the nproc-loop rate over the one-loop rate without a sandbox
 * and in-process: on a machine whose process creation does not scale with its
 * CPUs (a paravirtualised guest whose page-table work the hypervisor
 * serialises) no spawner reaches nproc x its serial rate, and autoosd against
 * the in-process runs in nproc loops is the node's own overhead. Page-table
 * work (map, fault, unmap) and a cheap syscall, in one and in nproc
 * processes, show which kind of machine it is. autoosd's
 * resident memory (VmRSS after each burst, and its peak, VmHWM) is printed
 * per max_runs. autoosd runs with bus_auth = off: the bench writes unsigned
 * jobs, there is no coordinator.
 *
 * Everything started is stopped (SIGTERM, then SIGKILL) at exit, on
 * SIGINT/SIGTERM, and by the kernel if the bench dies (PR_SET_PDEATHSIG).
 * Exits 1 when a job had no result or did not exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/macro.h"
#include "memory/redis.h"
#include "memory/streams.h"
#include "sandbox/sandbox.h"

#define WARMUP_JOBS 50u
#define MAX_ROUNDS 16

static struct {
        char dir[PATH_MAX];
        char redis_bin[PATH_MAX];
        char autoosd[PATH_MAX + 32];
        volatile pid_t redis_pid, daemon_pid;
        int port;
} g;

static double now_realtime_ms(void) {
        return (double) au_wall_us() / 1e3;
}

static double now_mono_ms(void) {
        return (double) au_now_us() / 1e3;
}

/* ---- children: started here, stopped by pid ------------------------------------ */

static void kill_wait(volatile pid_t *pidp, int grace_ms) {
        pid_t pid = *pidp;
        if (pid <= 0)
                return;
        kill(pid, SIGTERM);
        for (int i = 0; i < grace_ms / 10; i++) {
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        *pidp = 0;
                        return;
                }
                usleep(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        *pidp = 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        remove(path);
        return 0;
}

static void cleanup(void) {
        /* SIGTERM twice: the second one ends a draining autoosd at once. */
        if (g.daemon_pid > 0) {
                kill(g.daemon_pid, SIGTERM);
                usleep(100000);
        }
        kill_wait(&g.daemon_pid, 5000);
        kill_wait(&g.redis_pid, 5000);
        if (g.dir[0]) {
                nftw(g.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
                g.dir[0] = '\0';
        }
}

static void on_signal(int sig) {
        /* Not async-signal-safe in full (nftw), but we are leaving anyway. */
        if (g.daemon_pid > 0)
                kill(g.daemon_pid, SIGKILL);
        if (g.redis_pid > 0)
                kill(g.redis_pid, SIGKILL);
        signal(sig, SIG_DFL);
        raise(sig);
}

static pid_t spawn(char *const argv[], const char *log) {
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (in >= 0)
                dup2(in, STDIN_FILENO);
        if (out >= 0) {
                dup2(out, STDOUT_FILENO);
                dup2(out, STDERR_FILENO);
        }
        execv(argv[0], argv);
        _exit(127);
}

static bool find_on_path(const char *name, char *buf, size_t size) {
        const char *path = getenv("PATH");
        if (!path || !*path)
                path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
        while (*path) {
                size_t n = strcspn(path, ":");
                if (n > 0) {
                        snprintf(buf, size, "%.*s/%s", (int) n, path, name);
                        if (access(buf, X_OK) == 0)
                                return true;
                }
                path += n + (path[n] == ':');
        }
        return false;
}

static int free_port(void) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
        if (fd < 0)
                return -1;
        if (bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0 &&
            getsockname(fd, (struct sockaddr *) &a, &len) == 0)
                port = ntohs(a.sin_port);
        close(fd);
        return port;
}

/* A connection to the redis-server we started (memory/redis.c, as autoosd's own). */
static redisContext *connect_redis(void) {
        char url[64];
        redisContext *c = NULL;
        au_error err = {};
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d", g.port);
        if (mem_redis_connect(url, 2000, 30000, &c, &err) < 0)
                return NULL;
        return c;
}

/* The server on g.port is the one we started (INFO's process_id). */
static bool redis_is_ours(void) {
        redisContext *c = connect_redis();
        bool ours = false;
        if (!c)
                return false;
        redisReply *r = redisCommand(c, "INFO server");
#ifdef REDIS_REPLY_VERB
        if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_VERB)) {
#else
        if (r && r->type == REDIS_REPLY_STRING) {
#endif
                char want[64];
                snprintf(want, sizeof(want), "process_id:%d\r", (int) g.redis_pid);
                ours = strstr(r->str, want) != NULL;
        }
        freeReplyObject(r);
        redisFree(c);
        return ours;
}

static bool start_redis(void) {
        char port[16], log[PATH_MAX + 16];
        snprintf(log, sizeof(log), "%s/redis.log", g.dir);
        for (int attempt = 0; attempt < 5; attempt++) {
                g.port = free_port();
                snprintf(port, sizeof(port), "%d", g.port);
                char *argv[] = {g.redis_bin, "--port",      port,     "--bind", "127.0.0.1",
                                "--dir",     g.dir,         "--save", "",       "--appendonly",
                                "no",        "--daemonize", "no",     NULL};
                g.redis_pid = spawn(argv, log);
                double deadline = now_mono_ms() + 10000;
                while (now_mono_ms() < deadline) {
                        if (waitpid(g.redis_pid, NULL, WNOHANG) == g.redis_pid) {
                                g.redis_pid = 0;
                                break;
                        }
                        if (redis_is_ours())
                                return true;
                        usleep(20000);
                }
                kill_wait(&g.redis_pid, 1000);
        }
        return false;
}

static long proc_cpu_ms(pid_t pid) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        unsigned long ut = 0, st = 0;
        /* After ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
                return -1;
        return (long) ((ut + st) * 1000 / (unsigned long) sysconf(_SC_CLK_TCK));
}

/* A "Name:   N kB" line of /proc/<pid>/status, in KiB; -1 when unreadable. */
static long proc_status_kib(pid_t pid, const char *name) {
        char path[64], line[256];
        long v = -1;
        size_t n = strlen(name);
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, name, n) == 0 && line[n] == ':') {
                        v = strtol(line + n + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

/* ---- one round: a daemon, N jobs ---------------------------------------------- */

typedef struct round_stats {
        unsigned max_runs, jobs, got, failed, one_jobs;
        double runs_per_s, p50, p99, wall_ms;
        double one_p50, one_p99; /* one job at a time: latency without a queue */
        double daemon_cpu_pct, redis_cpu_pct;
        long rss_kib, hwm_kib; /* autoosd's VmRSS after the burst and its peak (VmHWM) */
        char first_failure[256];
} round_stats;

typedef struct producer {
        redisContext *c;
        char node[64];
        unsigned round, first, count, batch;
        double *enq_ms; /* per job, from the entry id */
        int error;
        double t_first;
} producer;

static void *produce(void *userdata) {
        producer *p = userdata;
        char key[128];
        mem_stream_jobs(key, sizeof(key), p->node);
        p->t_first = now_realtime_ms();
        for (unsigned i = 0; i < p->count; i += p->batch) {
                unsigned n = MIN(p->batch, p->count - i);
                for (unsigned k = 0; k < n; k++) {
                        char spec[256];
                        snprintf(spec, sizeof(spec), "{\"id\":\"b%u-%u\",\"argv\":[\"/bin/true\"]}",
                                 p->round, p->first + i + k);
                        redisAppendCommand(p->c, "XADD %s * " MEM_FIELD_SPEC " %s", key, spec);
                }
                for (unsigned k = 0; k < n; k++) {
                        redisReply *r = NULL;
                        if (redisGetReply(p->c, (void **) &r) != REDIS_OK || !r ||
                            r->type != REDIS_REPLY_STRING) {
                                p->error = 1;
                                freeReplyObject(r);
                                return NULL;
                        }
                        p->enq_ms[i + k] = strtod(r->str, NULL); /* "<ms>-<seq>" */
                        freeReplyObject(r);
                }
        }
        return NULL;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

static double percentile(double *sorted, size_t n, double q) {
        if (n == 0)
                return 0;
        size_t k = (size_t) (q * (double) (n - 1) + 0.5);
        return sorted[MIN(k, n - 1)];
}

/* Minimal field extraction from our own result JSON: "key":"value" or "key":number. */
static bool json_field(const char *json, const char *key, char *buf, size_t size) {
        char pat[64];
        snprintf(pat, sizeof(pat), "\"%s\":", key);
        const char *p = strstr(json, pat);
        if (!p)
                return false;
        p += strlen(pat);
        size_t n;
        if (*p == '"') {
                p++;
                n = strcspn(p, "\"");
        } else
                n = strcspn(p, ",}");
        snprintf(buf, size, "%.*s", (int) MIN(n, size - 1), p);
        return true;
}

/* Reads results until every job of the round (ids b<round>-<first..first+count-1>) has one. */
static int collect(redisContext *c, char *last_id, size_t last_size, unsigned round, unsigned first,
                   unsigned count, double *res_ms, round_stats *st) {
        unsigned got = 0;
        double last_progress = now_mono_ms();
        while (got < count) {
                if (now_mono_ms() - last_progress > 30000) {
                        fprintf(stderr, "node-throughput: no result for 30 s, %u of %u in\n", got, count);
                        return -1;
                }
                redisReply *r = redisCommand(
                        c, "XREAD COUNT 1000 BLOCK 1000 STREAMS " MEM_STREAM_RESULTS " %s", last_id);
                double t = now_realtime_ms();
                if (!r) {
                        fprintf(stderr, "node-throughput: XREAD: %s\n", c->errstr);
                        return -1;
                }
                if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
                        redisReply *entries = r->element[0]->element[1];
                        for (size_t i = 0; i < entries->elements; i++) {
                                redisReply *e = entries->element[i];
                                snprintf(last_id, last_size, "%s", e->element[0]->str);
                                redisReply *kv = e->element[1];
                                if (kv->elements < 2)
                                        continue;
                                const char *json = kv->element[1]->str;
                                char id[64], outcome[32], code[16];
                                unsigned rr, k;
                                if (!json_field(json, "id", id, sizeof(id)) ||
                                    sscanf(id, "b%u-%u", &rr, &k) != 2 || rr != round || k < first ||
                                    k >= first + count || res_ms[k - first] > 0)
                                        continue;
                                res_ms[k - first] = t;
                                got++;
                                last_progress = now_mono_ms();
                                if (!json_field(json, "outcome", outcome, sizeof(outcome)) ||
                                    strcmp(outcome, "exited") != 0 ||
                                    !json_field(json, "exit_code", code, sizeof(code)) ||
                                    strcmp(code, "0") != 0) {
                                        if (st && !st->failed++)
                                                snprintf(st->first_failure, sizeof(st->first_failure),
                                                         "%.200s", json);
                                }
                        }
                }
                freeReplyObject(r);
        }
        return 0;
}

static bool wait_heartbeat(redisContext *c, const char *node) {
        double deadline = now_mono_ms() + 10000;
        while (now_mono_ms() < deadline) {
                char key[128];
                mem_key_node(key, sizeof(key), node);
                redisReply *r = redisCommand(c, "EXISTS %s", key);
                bool up = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
                freeReplyObject(r);
                if (up)
                        return true;
                if (g.daemon_pid > 0 && waitpid(g.daemon_pid, NULL, WNOHANG) == g.daemon_pid) {
                        g.daemon_pid = 0;
                        return false;
                }
                usleep(50000);
        }
        return false;
}

static int run_round(unsigned round, unsigned max_runs, unsigned jobs, unsigned batch, unsigned one_jobs,
                     round_stats *st) {
        char node[64], state[PATH_MAX + 32], sock[PATH_MAX + 32], conf[PATH_MAX + 32], policy[PATH_MAX + 32],
                log[PATH_MAX + 32], url[64], mr[16], last_id[64] = "$";
        int ret = -1;

        memset(st, 0, sizeof(*st));
        st->max_runs = max_runs;
        st->jobs = jobs;
        snprintf(node, sizeof(node), "bench-%u-%u", (unsigned) getpid(), round);
        snprintf(state, sizeof(state), "%s/state-%u", g.dir, round);
        snprintf(sock, sizeof(sock), "%s/ctl-%u.sock", g.dir, round);
        snprintf(conf, sizeof(conf), "%s/autoosd.conf", g.dir);
        snprintf(policy, sizeof(policy), "%s/no-policy.json", g.dir);
        snprintf(log, sizeof(log), "%s/autoosd-%u.log", g.dir, round);
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d", g.port);
        snprintf(mr, sizeof(mr), "%u", max_runs);
        /* The bench writes unsigned jobs itself: there is no coordinator to sign them. */
        FILE *f = fopen(conf, "we");
        if (f) {
                fputs("bus_auth = off\n", f);
                fclose(f);
        }

        redisContext *reader = connect_redis(), *writer = connect_redis();
        size_t total = (size_t) jobs + WARMUP_JOBS + one_jobs;
        double *enq = calloc(total, sizeof(double)), *res = calloc(total, sizeof(double)),
               *lat = calloc(MAX(jobs, one_jobs), sizeof(double));
        if (!reader || !writer || !enq || !res || !lat) {
                fprintf(stderr, "node-throughput: cannot connect to redis or out of memory\n");
                goto out;
        }
        /* The reader starts from the stream's end as it is now. */
        redisReply *r = redisCommand(reader, "XREVRANGE " MEM_STREAM_RESULTS " + - COUNT 1");
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
                snprintf(last_id, sizeof(last_id), "%s", r->element[0]->element[0]->str);
        else
                snprintf(last_id, sizeof(last_id), "0-0");
        freeReplyObject(r);

        char *argv[] = {g.autoosd, "--config",    conf,  "--redis",   url,    "--node-id",
                        node,      "--max-runs",  mr,    "--metrics", "",     "--control-socket",
                        sock,      "--state-dir", state, "--policy",  policy, NULL};
        g.daemon_pid = spawn(argv, log);
        if (!wait_heartbeat(reader, node)) {
                fprintf(stderr, "node-throughput: autoosd did not come up (see %s)\n", log);
                goto out;
        }

        /* Warm-up, untimed. */
        producer p = {.c = writer,
                      .round = round,
                      .first = 0,
                      .count = WARMUP_JOBS,
                      .batch = batch,
                      .enq_ms = enq};
        snprintf(p.node, sizeof(p.node), "%s", node);
        produce(&p);
        if (p.error || collect(reader, last_id, sizeof(last_id), round, 0, WARMUP_JOBS, res, NULL) < 0) {
                fprintf(stderr, "node-throughput: warm-up failed\n");
                goto out;
        }

        /* Timed. */
        long d0 = proc_cpu_ms(g.daemon_pid), r0 = proc_cpu_ms(g.redis_pid);
        p = (producer){.c = writer,
                       .round = round,
                       .first = WARMUP_JOBS,
                       .count = jobs,
                       .batch = batch,
                       .enq_ms = enq + WARMUP_JOBS};
        snprintf(p.node, sizeof(p.node), "%s", node);
        pthread_t th;
        if (pthread_create(&th, NULL, produce, &p) != 0) {
                fprintf(stderr, "node-throughput: pthread_create failed\n");
                goto out;
        }
        int k = collect(reader, last_id, sizeof(last_id), round, WARMUP_JOBS, jobs, res + WARMUP_JOBS, st);
        pthread_join(th, NULL);
        long d1 = proc_cpu_ms(g.daemon_pid), r1 = proc_cpu_ms(g.redis_pid);
        st->rss_kib = proc_status_kib(g.daemon_pid, "VmRSS");
        st->hwm_kib = proc_status_kib(g.daemon_pid, "VmHWM");
        if (k < 0 || p.error) {
                fprintf(stderr, "node-throughput: round with max_runs %u failed (see %s)\n", max_runs, log);
                goto out;
        }

        double first = p.enq_ms[0], last = 0;
        for (unsigned i = 0; i < jobs; i++) {
                double t = res[WARMUP_JOBS + i];
                last = MAX(last, t);
                first = MIN(first, p.enq_ms[i]);
                lat[i] = t - p.enq_ms[i];
        }
        qsort(lat, jobs, sizeof(double), cmp_double);
        st->got = jobs;
        st->wall_ms = last - first;
        st->runs_per_s = st->wall_ms > 0 ? jobs * 1000.0 / st->wall_ms : 0;
        st->p50 = percentile(lat, jobs, 0.50);
        st->p99 = percentile(lat, jobs, 0.99);
        if (d0 >= 0 && d1 >= 0 && st->wall_ms > 0)
                st->daemon_cpu_pct = (double) (d1 - d0) * 100.0 / st->wall_ms;
        if (r0 >= 0 && r1 >= 0 && st->wall_ms > 0)
                st->redis_cpu_pct = (double) (r1 - r0) * 100.0 / st->wall_ms;

        /* One job at a time, each sent when the previous result is in: the latency of an idle node. */
        unsigned base = WARMUP_JOBS + jobs;
        for (unsigned i = 0; i < one_jobs; i++) {
                p = (producer){.c = writer,
                               .round = round,
                               .first = base + i,
                               .count = 1,
                               .batch = 1,
                               .enq_ms = enq + base + i};
                snprintf(p.node, sizeof(p.node), "%s", node);
                produce(&p);
                if (p.error ||
                    collect(reader, last_id, sizeof(last_id), round, base + i, 1, res + base + i, st) < 0) {
                        fprintf(stderr, "node-throughput: one-at-a-time job %u failed\n", i);
                        goto out;
                }
                lat[i] = res[base + i] - enq[base + i];
        }
        qsort(lat, one_jobs, sizeof(double), cmp_double);
        st->one_jobs = one_jobs;
        st->one_p50 = percentile(lat, one_jobs, 0.50);
        st->one_p99 = percentile(lat, one_jobs, 0.99);
        ret = 0;
out:
        if (g.daemon_pid > 0) {
                kill(g.daemon_pid, SIGTERM);
                kill_wait(&g.daemon_pid, 10000);
        }
        if (reader)
                redisFree(reader);
        if (writer)
                redisFree(writer);
        free(enq);
        free(res);
        free(lat);
        return ret;
}

/* ---- in-process rows: bench/spawn's library row ----------------------------------- */

typedef struct lib_stats {
        unsigned runs, failed;
        double p50, p99, runs_per_s;
        char error[256];
} lib_stats;

/* One sbx_context (prepare_ahead as given) and a spec of /bin/true at trust standard with the
 * built-in policy, as autoosd runs a job. */
static int library_setup(unsigned prepare_ahead, sbx_context **ctxp, sbx_spec **specp, char *error,
                         size_t error_size) {
        sbx_config cfg = {.prepare_ahead = prepare_ahead};
        au_error err = {};
        *ctxp = NULL;
        *specp = NULL;
        int k = sbx_context_new(prepare_ahead ? &cfg : NULL, ctxp, &err);
        if (k < 0) {
                snprintf(error, error_size, "sbx_context_new: %.200s", err.msg[0] ? err.msg : strerror(-k));
                return -1;
        }
        sbx_spec *spec = calloc(1, sizeof(sbx_spec));
        if (!spec || !(spec->argv = calloc(2, sizeof(char *))) || !(spec->argv[0] = strdup("/bin/true"))) {
                snprintf(error, error_size, "out of memory");
                sbx_spec_free(spec);
                return -1;
        }
        spec->argc = 1;
        spec->trust = SBX_TRUST_STANDARD;
        if (sbx_spec_apply_policy(spec, NULL, &err) < 0) {
                snprintf(error, error_size, "sbx_spec_apply_policy: %.200s", err.msg);
                sbx_spec_free(spec);
                return -1;
        }
        *specp = spec;
        return 0;
}

/* One sbx_run_sync() of the spec under a fresh id; its wall time in ms, or -1 when it did not
 * exit 0 (the first failure's reason in error). */
static double library_run(sbx_context *ctx, sbx_spec *spec, const char *tag, unsigned i, char *error,
                          size_t error_size) {
        char id[64];
        snprintf(id, sizeof(id), "bench-node-%s-%u", tag, i);
        free(spec->id);
        spec->id = strdup(id);
        sbx_result *res = NULL;
        double t0 = now_mono_ms();
        int k = sbx_run_sync(ctx, spec, NULL, NULL, &res);
        double t = now_mono_ms() - t0;
        bool ok = k >= 0 && res && res->outcome == SBX_OUTCOME_EXITED && res->exit_code == 0;
        if (!ok && !error[0])
                snprintf(error, error_size, "%s", res && res->error ? res->error : "failed");
        sbx_result_free(res);
        return ok ? t : -1;
}

static int run_library(unsigned prepare_ahead, unsigned runs, lib_stats *st) {
        sbx_context *ctx = NULL;
        sbx_spec *spec = NULL;
        memset(st, 0, sizeof(*st));
        st->runs = runs;
        if (library_setup(prepare_ahead, &ctx, &spec, st->error, sizeof(st->error)) < 0) {
                sbx_context_free(ctx);
                return -1;
        }
        double *ms = calloc(runs, sizeof(double)), total = 0;
        for (unsigned i = 0; ms && i < runs + 10; i++) {
                double t = library_run(ctx, spec, "lib", i, st->error, sizeof(st->error));
                if (t < 0)
                        st->failed++;
                if (i >= 10) { /* 10 warm-up runs */
                        ms[i - 10] = t < 0 ? 0 : t;
                        total += t < 0 ? 0 : t;
                }
        }
        if (ms) {
                qsort(ms, runs, sizeof(double), cmp_double);
                st->p50 = percentile(ms, runs, 0.50);
                st->p99 = percentile(ms, runs, 0.99);
                st->runs_per_s = total > 0 ? runs * 1000.0 / total : 0;
        }
        free(ms);
        sbx_spec_free(spec);
        sbx_context_free(ctx);
        return 0;
}

/* Waits for each of the n worker processes; the number that did not exit 0. */
static unsigned reap_workers(const pid_t *pids, unsigned n) {
        unsigned failed = 0;
        for (unsigned i = 0; i < n; i++) {
                int status;
                while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
                        ;
                failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        }
        return failed;
}

/* The same in-process runs (prepare_ahead 4) in `workers` processes at once, each with its own
 * context: what the host delivers of sandboxed runs in parallel, without Redis or autoosd. Each
 * worker sets up and warms up, says it is ready, and starts when all are; the rate is the runs
 * over the time from that start until the last worker is reaped. */
static double run_library_parallel(unsigned workers, unsigned runs, lib_stats *st) {
        int ready[2], go[2];
        pid_t pids[64] = {};
        unsigned n = 0;
        memset(st, 0, sizeof(*st));
        st->runs = runs;
        workers = MIN(workers, (unsigned) ELEMENTSOF(pids));
        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) {
                snprintf(st->error, sizeof(st->error), "pipe: %s", strerror(errno));
                return 0;
        }
        fflush(NULL);
        for (unsigned w = 0; w < workers; w++) {
                pid_t pid = fork();
                if (pid == 0) {
                        close(ready[0]);
                        close(go[1]);
                        sbx_context *ctx = NULL;
                        sbx_spec *spec = NULL;
                        char error[256] = "";
                        unsigned mine = runs / workers + (w < runs % workers), failed = 0;
                        char tag[32];
                        if (library_setup(4, &ctx, &spec, error, sizeof(error)) < 0)
                                _exit(2);
                        snprintf(tag, sizeof(tag), "par%u", w);
                        for (unsigned i = 0; i < 5; i++)
                                library_run(ctx, spec, tag, i, error, sizeof(error));
                        char b = 1, x;
                        if (write(ready[1], &b, 1) != 1 || read(go[0], &x, 1) < 0)
                                _exit(2);
                        for (unsigned i = 0; i < mine; i++)
                                failed += library_run(ctx, spec, tag, 5 + i, error, sizeof(error)) < 0;
                        sbx_spec_free(spec);
                        sbx_context_free(ctx);
                        _exit(failed ? 1 : 0);
                }
                if (pid > 0)
                        pids[n++] = pid;
        }
        close(ready[1]);
        close(go[0]);
        char b;
        unsigned seen = 0;
        while (seen < n && read(ready[0], &b, 1) == 1)
                seen++;
        double t0 = now_mono_ms();
        close(go[1]); /* everyone starts */
        st->failed = reap_workers(pids, n);
        if (st->failed)
                snprintf(st->error, sizeof(st->error), "%u of %u workers' runs failed", st->failed, n);
        double t = now_mono_ms() - t0;
        close(ready[0]);
        st->runs_per_s = n == workers && seen == n && t > 0 ? runs * 1000.0 / t : 0;
        return st->runs_per_s;
}

/* ---- peers: the same /bin/true through the tools people compare us with ---------------- */

typedef struct peer {
        const char *name;
        char path[PATH_MAX];
        const char *args[32];    /* after the path, ending with /bin/true */
        double serial, parallel; /* runs/s */
        unsigned failed;
        char skip[128];
} peer;

/* One worker: runs argv `runs` times one after another; exits 1 when one did not exit 0. Each run
 * is started with posix_spawn() (vfork: the worker's page tables are not copied per run), as a
 * node would start them; stdin, stdout and stderr are /dev/null. */
static void peer_worker(char *const argv[], unsigned runs, int devnull) {
        bool failed = false;
        posix_spawn_file_actions_t fa;
        if (posix_spawn_file_actions_init(&fa) != 0)
                _exit(2);
        for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
                if (posix_spawn_file_actions_adddup2(&fa, devnull, fd) != 0)
                        _exit(2);
        for (unsigned i = 0; i < runs; i++) {
                pid_t pid;
                if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
                        failed = true;
                        continue;
                }
                int status;
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        }
        posix_spawn_file_actions_destroy(&fa);
        _exit(failed ? 1 : 0);
}

/* runs/s of argv in `workers` parallel loops sharing `runs` runs; counts failing workers. */
static double peer_rate(char *const argv[], unsigned workers, unsigned runs, unsigned *failed) {
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        pid_t pids[64] = {};
        unsigned n = 0;
        double t0 = now_mono_ms();

        workers = MIN(workers, (unsigned) ELEMENTSOF(pids));
        for (unsigned w = 0; w < workers; w++) {
                pid_t pid = fork();
                if (pid == 0)
                        peer_worker(argv, runs / workers + (w < runs % workers), devnull);
                if (pid > 0)
                        pids[n++] = pid;
        }
        *failed += reap_workers(pids, n);
        double t = now_mono_ms() - t0;
        if (devnull >= 0)
                close(devnull);
        return n == workers && t > 0 ? runs * 1000.0 / t : 0;
}

static void peer_setup(peer *p, const char *name, const char *tool, const char *const *args) {
        p->name = name;
        if (!find_on_path(tool, p->path, sizeof(p->path))) {
                snprintf(p->skip, sizeof(p->skip), "%s is not installed", tool);
                return;
        }
        for (size_t i = 0; args[i] && i + 1 < ELEMENTSOF(p->args); i++)
                p->args[i] = args[i];
}

static void peer_measure(peer *p, unsigned workers, unsigned runs) {
        char *argv[ELEMENTSOF(p->args) + 1] = {p->path};
        if (p->skip[0])
                return;
        for (size_t i = 0; p->args[i]; i++)
                argv[i + 1] = (char *) p->args[i];
        unsigned warm = 0;
        peer_rate(argv, 1, 5, &warm);
        p->serial = peer_rate(argv, 1, runs, &p->failed);
        p->parallel = peer_rate(argv, workers, runs, &p->failed);
}

/* Operations per second over `secs` in `workers` processes at once: page-table work (map 64 KiB,
 * fault its 16 pages in, unmap it) or one cheap syscall (getppid). Tells a machine whose page-table
 * work does not scale with its CPUs (a paravirtualised guest), where no spawner can. */
static double host_ops_rate(unsigned workers, bool page_tables, double secs) {
        long *counts = mmap(NULL, 64 * 64 * sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                            -1, 0);
        pid_t pids[64] = {};
        unsigned n = 0;
        if (counts == MAP_FAILED)
                return 0;
        workers = MIN(workers, (unsigned) ELEMENTSOF(pids));
        double t0 = now_mono_ms();
        for (unsigned w = 0; w < workers; w++) {
                pid_t pid = fork();
                if (pid == 0) {
                        long ops = 0;
                        while (now_mono_ms() - t0 < secs * 1000) {
                                for (int k = 0; k < 16; k++, ops++) {
                                        if (!page_tables) {
                                                (void) getppid();
                                                continue;
                                        }
                                        char *m = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE,
                                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                                        if (m == MAP_FAILED)
                                                _exit(1);
                                        for (int pg = 0; pg < 16; pg++)
                                                m[pg * 4096] = 1;
                                        munmap(m, 16 * 4096);
                                }
                        }
                        counts[w * 64] = ops;
                        _exit(0);
                }
                if (pid > 0)
                        pids[n++] = pid;
        }
        bool ok = reap_workers(pids, n) == 0;
        double t = now_mono_ms() - t0;
        long total = 0;
        for (unsigned i = 0; i < n; i++)
                total += counts[i * 64];
        munmap(counts, 64 * 64 * sizeof(long));
        return ok && n == workers && t > 0 ? total * 1000.0 / t : 0;
}

/* ---- main --------------------------------------------------------------------------- */

static void usage(FILE *f) {
        fputs("Usage: node-throughput [OPTIONS]\n"
              "\n"
              "Sends /bin/true jobs through a throwaway redis-server to one autoosd and reads the\n"
              "results back; prints runs/s and enqueue-to-result latency per --max-runs value,\n"
              "beside the in-process sbx_run_sync() figure of bench/spawn. Needs root.\n"
              "\n"
              "      --jobs N          timed jobs per round (default 2000; 50 warm-up jobs go first)\n"
              "      --max-runs LIST   autoosd --max-runs values, one round each (default 4,8,16:\n"
              "                        2 per core, and more)\n"
              "      --batch N         XADDs per pipelined batch (default 100)\n"
              "      --one-jobs N      then N jobs one at a time, each sent when the previous result\n"
              "                        is in: latency without a queue (default 200; 0 skips)\n"
              "      --spawn-runs N    in-process runs for the comparison rows, measured before and\n"
              "                        after the rounds (default 100; 0 skips)\n"
              "      --peer-runs N     runs of bwrap, unshare and firejail (those installed), one\n"
              "                        loop and nproc parallel loops each (default 100; 0 skips)\n"
              "      --autoosd PATH    the daemon (default ../daemon/autoosd from this binary's dir)\n"
              "      --format FORMAT   text (default) or markdown\n"
              "  -h, --help            show this help\n",
              f);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"jobs", required_argument, NULL, 'j'},     {"max-runs", required_argument, NULL, 'm'},
                {"batch", required_argument, NULL, 'b'},    {"spawn-runs", required_argument, NULL, 's'},
                {"autoosd", required_argument, NULL, 'a'},  {"format", required_argument, NULL, 'f'},
                {"one-jobs", required_argument, NULL, 'o'}, {"peer-runs", required_argument, NULL, 'p'},
                {"help", no_argument, NULL, 'h'},           {},
        };
        unsigned jobs = 2000, batch = 100, spawn_runs = 100, one_jobs = 200, peer_runs = 100,
                 max_runs[MAX_ROUNDS] = {4, 8, 16}, n_rounds = 3;
        bool markdown = false;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
                char *end;
                switch (c) {
                case 'j':
                        jobs = (unsigned) strtoul(optarg, &end, 10);
                        if (*end || jobs == 0 || jobs > 1000000) {
                                fprintf(stderr, "node-throughput: --jobs %s: expected 1 to 1000000\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'm': {
                        n_rounds = 0;
                        char *s = optarg;
                        while (*s && n_rounds < MAX_ROUNDS) {
                                unsigned long v = strtoul(s, &end, 10);
                                if (end == s || v == 0 || v > 4096 || (*end && *end != ',')) {
                                        fprintf(stderr,
                                                "node-throughput: --max-runs %s: expected N[,N...]\n",
                                                optarg);
                                        return 2;
                                }
                                max_runs[n_rounds++] = (unsigned) v;
                                s = *end ? end + 1 : end;
                        }
                        if (n_rounds == 0) {
                                fprintf(stderr, "node-throughput: --max-runs: expected N[,N...]\n");
                                return 2;
                        }
                        break;
                }
                case 'b':
                        batch = (unsigned) strtoul(optarg, &end, 10);
                        if (*end || batch == 0) {
                                fprintf(stderr, "node-throughput: --batch %s: expected a positive number\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 's':
                        spawn_runs = (unsigned) strtoul(optarg, &end, 10);
                        if (*end) {
                                fprintf(stderr, "node-throughput: --spawn-runs %s: expected a number\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'o':
                        one_jobs = (unsigned) strtoul(optarg, &end, 10);
                        if (*end || one_jobs > 100000) {
                                fprintf(stderr, "node-throughput: --one-jobs %s: expected 0 to 100000\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'p':
                        peer_runs = (unsigned) strtoul(optarg, &end, 10);
                        if (*end || peer_runs > 100000) {
                                fprintf(stderr, "node-throughput: --peer-runs %s: expected 0 to 100000\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'a':
                        snprintf(g.autoosd, sizeof(g.autoosd), "%s", optarg);
                        break;
                case 'f':
                        if (strcmp(optarg, "markdown") == 0)
                                markdown = true;
                        else if (strcmp(optarg, "text") != 0) {
                                fprintf(stderr, "node-throughput: --format %s: expected text or markdown\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "node-throughput: unexpected argument %s\n", argv[optind]);
                return 2;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "node-throughput: needs root (autoosd makes real sandboxes)\n");
                return 77;
        }
        if (!g.autoosd[0]) {
                char self[PATH_MAX];
                ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
                if (n <= 0) {
                        fprintf(stderr,
                                "node-throughput: cannot find our own binary; pass --autoosd PATH\n");
                        return 2;
                }
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                if (slash)
                        *slash = '\0';
                snprintf(g.autoosd, sizeof(g.autoosd), "%.*s/../daemon/autoosd", PATH_MAX - 1, self);
        }
        if (access(g.autoosd, X_OK) < 0) {
                fprintf(stderr, "node-throughput: %s: %s (build it, or pass --autoosd PATH)\n", g.autoosd,
                        strerror(errno));
                return 2;
        }
        const char *env = getenv("REDIS_SERVER");
        if (env && *env)
                snprintf(g.redis_bin, sizeof(g.redis_bin), "%s", env);
        else if (!find_on_path("redis-server", g.redis_bin, sizeof(g.redis_bin))) {
                fprintf(stderr, "node-throughput: redis-server not found (Debian package redis-server)\n");
                return 77;
        }

        const char *tmp = getenv("TMPDIR");
        snprintf(g.dir, sizeof(g.dir), "%s/autoos-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(g.dir)) {
                fprintf(stderr, "node-throughput: mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        atexit(cleanup);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
        signal(SIGPIPE, SIG_IGN);

        if (!start_redis()) {
                fprintf(stderr, "node-throughput: redis-server would not start\n");
                return 1;
        }

        lib_stats ls[2] = {}, before[2] = {}, lpar = {}, lpar_before = {};
        const unsigned ahead[2] = {0, 4};
        bool ok = true;
        /* The in-process reference before the rounds and after them (then averaged): the load of a
         * shared machine changes over a run. */
        for (int i = 0; spawn_runs > 0 && i < 2; i++) {
                fprintf(stderr, "node-throughput: in-process, prepare_ahead %u: %u runs...\n", ahead[i],
                        spawn_runs);
                if (run_library(ahead[i], spawn_runs, &before[i]) < 0 || before[i].failed)
                        ok = false;
        }
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        if (spawn_runs > 0) {
                fprintf(stderr, "node-throughput: in-process, prepare_ahead 4, %ld loops: %u runs...\n",
                        ncpu, spawn_runs);
                if (run_library_parallel((unsigned) ncpu, spawn_runs, &lpar_before) <= 0 ||
                    lpar_before.failed)
                        ok = false;
        }
        static const char *const bwrap_args[] = {"--unshare-all", "--die-with-parent",
                                                 "--ro-bind",     "/usr",
                                                 "/usr",          "--symlink",
                                                 "usr/bin",       "/bin",
                                                 "--symlink",     "usr/lib",
                                                 "/lib",          "--symlink",
                                                 "usr/lib64",     "/lib64",
                                                 "--proc",        "/proc",
                                                 "--dev",         "/dev",
                                                 "/bin/true",     NULL};
        static const char *const unshare_args[] = {"-Urnpfmiu", "/bin/true", NULL};
        static const char *const plain_args[] = {NULL};
        static const char *const firejail_args[] = {"--quiet",   "--noprofile",     "--net=none",
                                                    "--private", "--caps.drop=all", "--nonewprivs",
                                                    "--seccomp", "/bin/true",       NULL};
        /* peers[0] is no sandbox at all: how the host itself scales process creation over its CPUs. */
        peer peers[4] = {};
        peer_setup(&peers[0], "fork+exec, no sandbox", "true", plain_args);
        peer_setup(&peers[1], "bwrap --unshare-all", "bwrap", bwrap_args);
        peer_setup(&peers[2], "unshare -Urnpfmiu", "unshare", unshare_args);
        peer_setup(&peers[3], "firejail", "firejail", firejail_args);
        for (int i = 0; peer_runs > 0 && i < (int) ELEMENTSOF(peers); i++) {
                fprintf(stderr, "node-throughput: %s: %u runs, 1 and %ld loops...\n", peers[i].name,
                        peer_runs, ncpu);
                peer_measure(&peers[i], (unsigned) ncpu, peer_runs);
        }

        double pt[2] = {}, sc[2] = {}; /* page-table work and a syscall: one process, nproc processes */
        if (peer_runs > 0) {
                fprintf(stderr, "node-throughput: page-table work and a syscall, 1 and %ld processes...\n",
                        ncpu);
                pt[0] = host_ops_rate(1, true, 0.5);
                pt[1] = host_ops_rate((unsigned) ncpu, true, 0.5);
                sc[0] = host_ops_rate(1, false, 0.5);
                sc[1] = host_ops_rate((unsigned) ncpu, false, 0.5);
        }

        round_stats rs[MAX_ROUNDS];
        int best = -1;
        for (unsigned i = 0; i < n_rounds; i++) {
                fprintf(stderr, "node-throughput: max_runs %u: %u jobs...\n", max_runs[i], jobs);
                if (run_round(i, max_runs[i], jobs, batch, one_jobs, &rs[i]) < 0) {
                        rs[i].got = 0;
                        ok = false;
                        continue;
                }
                if (rs[i].failed)
                        ok = false;
                if (best < 0 || rs[i].runs_per_s > rs[best].runs_per_s)
                        best = (int) i;
        }
        if (spawn_runs > 0)
                for (int i = 0; i < 2; i++) {
                        fprintf(stderr, "node-throughput: in-process, prepare_ahead %u: %u runs...\n",
                                ahead[i], spawn_runs);
                        if (run_library(ahead[i], spawn_runs, &ls[i]) < 0 || ls[i].failed)
                                ok = false;
                        /* The mean of both measurements; the latencies of the second. */
                        ls[i].runs_per_s = (ls[i].runs_per_s + before[i].runs_per_s) / 2;
                        ls[i].runs += before[i].runs;
                        ls[i].failed += before[i].failed;
                        if (!ls[i].error[0])
                                snprintf(ls[i].error, sizeof(ls[i].error), "%s", before[i].error);
                }
        if (spawn_runs > 0) {
                fprintf(stderr, "node-throughput: in-process, prepare_ahead 4, %ld loops: %u runs...\n",
                        ncpu, spawn_runs);
                if (run_library_parallel((unsigned) ncpu, spawn_runs, &lpar) <= 0 || lpar.failed)
                        ok = false;
                lpar.runs_per_s = (lpar.runs_per_s + lpar_before.runs_per_s) / 2;
                lpar.runs += lpar_before.runs;
                lpar.failed += lpar_before.failed;
                if (!lpar.error[0])
                        snprintf(lpar.error, sizeof(lpar.error), "%s", lpar_before.error);
        }
        if (markdown) {
                printf("| /bin/true | jobs | max_runs | runs/s | burst p50 ms | burst p99 ms | idle p50 ms "
                       "| "
                       "idle p99 ms | autoosd CPU | redis CPU |\n");
                printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        } else {
                printf("bench/node-throughput: /bin/true jobs through Redis to one autoosd; latency = XADD "
                       "entry "
                       "id -> result read (XREAD BLOCK)\n");
                printf("%-41s %5s %4s %7s %9s %9s %8s %8s %7s %6s\n", "row", "jobs", "max", "runs/s",
                       "burst p50", "burst p99", "idle p50", "idle p99", "autoosd", "redis");
        }
        for (unsigned i = 0; i < n_rounds; i++) {
                char name[64];
                snprintf(name, sizeof(name), "autoosd via Redis%s", (int) i == best ? " (best)" : "");
                if (!rs[i].got) {
                        printf(markdown ? "| %s | %u | %u | failed | - | - | - | - | - | - |\n"
                                        : "%-41s %5u %4u failed\n",
                               name, jobs, max_runs[i]);
                        continue;
                }
                if (markdown)
                        printf("| %s | %u | %u | %.0f | %.0f | %.0f | %.1f | %.1f | %.0f%% | %.0f%% |\n",
                               name, rs[i].jobs, rs[i].max_runs, rs[i].runs_per_s, rs[i].p50, rs[i].p99,
                               rs[i].one_p50, rs[i].one_p99, rs[i].daemon_cpu_pct, rs[i].redis_cpu_pct);
                else
                        printf("%-41s %5u %4u %7.0f %9.0f %9.0f %8.1f %8.1f %6.0f%% %5.0f%%\n", name,
                               rs[i].jobs, rs[i].max_runs, rs[i].runs_per_s, rs[i].p50, rs[i].p99,
                               rs[i].one_p50, rs[i].one_p99, rs[i].daemon_cpu_pct, rs[i].redis_cpu_pct);
        }
        for (int i = 0; spawn_runs > 0 && i < 2; i++) {
                char name[96];
                snprintf(name, sizeof(name), "in-process sbx_run_sync, ahead %u%s", ahead[i],
                         i == 0 ? " (=spawn)" : "");
                if (markdown)
                        printf("| %s | %u | 1 | %.0f | - | - | %.2f | %.2f | - | - |\n", name, ls[i].runs,
                               ls[i].runs_per_s, ls[i].p50, ls[i].p99);
                else
                        printf("%-41s %5u %4u %7.0f %9s %9s %8.2f %8.2f %7s %6s\n", name, ls[i].runs, 1u,
                               ls[i].runs_per_s, "-", "-", ls[i].p50, ls[i].p99, "-", "-");
        }
        if (spawn_runs > 0) {
                const char *name = "in-process, ahead 4, nproc loops";
                if (markdown)
                        printf("| %s | %u | %ld | %.0f | - | - | - | - | - | - |\n", name, lpar.runs, ncpu,
                               lpar.runs_per_s);
                else
                        printf("%-41s %5u %4ld %7.0f %9s %9s %8s %8s %7s %6s\n", name, lpar.runs, ncpu,
                               lpar.runs_per_s, "-", "-", "-", "-", "-", "-");
        }
        for (int i = 0; peer_runs > 0 && i < (int) ELEMENTSOF(peers); i++) {
                char name[96];
                if (peers[i].skip[0])
                        continue;
                for (int par = 0; par < 2; par++) {
                        snprintf(name, sizeof(name), "%s, %s", peers[i].name,
                                 par ? "nproc loops" : "one loop");
                        double rate = par ? peers[i].parallel : peers[i].serial;
                        unsigned loops = par ? (unsigned) ncpu : 1u;
                        if (markdown)
                                printf("| %s | %u | %u | %.0f | - | - | - | - | - | - |\n", name, peer_runs,
                                       loops, rate);
                        else
                                printf("%-41s %5u %4u %7.0f %9s %9s %8s %8s %7s %6s\n", name, peer_runs,
                                       loops, rate, "-", "-", "-", "-", "-", "-");
                }
        }
        if (markdown)
                printf("\n");
        /* Issue 12's measure: what the node delivers of what the host can spawn, and beside the peers. */
        if (best >= 0 && spawn_runs > 0 && ls[1].runs_per_s > 0) {
                double cap = (double) ncpu * ls[1].runs_per_s;
                printf("%snode efficiency: autoosd %.0f runs/s = %.0f%% of nproc x the in-process serial "
                       "rate "
                       "(%ld x %.0f/s, prepare_ahead 4 as autoosd; target 85%%)\n",
                       markdown ? "- " : "", rs[best].runs_per_s, 100.0 * rs[best].runs_per_s / cap, ncpu,
                       ls[1].runs_per_s);
        }
        /* What the host itself gives: process creation on some machines (paravirtualised guests
         * whose page-table work is serialised by the hypervisor) does not scale with the CPUs, and
         * then no spawner reaches nproc x its serial rate. Printed so the efficiency above can be
         * read: the plain row scales S, the sandboxed in-process runs T, autoosd against the
         * latter is the node's own overhead. */
        if (peer_runs > 0 && !peers[0].skip[0] && peers[0].serial > 0)
                printf("%shost scaling: fork+exec of /bin/true without a sandbox, %.0f runs/s in one loop "
                       "and "
                       "%.0f in %ld loops: %.2fx (linear would be %ldx)\n",
                       markdown ? "- " : "", peers[0].serial, peers[0].parallel, ncpu,
                       peers[0].parallel / peers[0].serial, ncpu);
        if (pt[0] > 0 && sc[0] > 0)
                printf("%shost scaling: page-table work (map 64 KiB, fault 16 pages, unmap) %.0f/s in one "
                       "process and %.0f/s in %ld: %.2fx; a getppid() %.1fM/s and %.1fM/s: %.2fx\n",
                       markdown ? "- " : "", pt[0], pt[1], ncpu, pt[1] / pt[0], sc[0] / 1e6, sc[1] / 1e6,
                       sc[1] / sc[0]);
        if (spawn_runs > 0 && ls[1].runs_per_s > 0 && lpar.runs_per_s > 0) {
                printf("%shost scaling: in-process sandboxed runs (prepare_ahead 4), %.0f runs/s in one "
                       "loop "
                       "and %.0f in %ld loops: %.2fx\n",
                       markdown ? "- " : "", ls[1].runs_per_s, lpar.runs_per_s, ncpu,
                       lpar.runs_per_s / ls[1].runs_per_s);
                if (best >= 0)
                        printf("%snode efficiency against the host's parallel rate: autoosd %.0f runs/s = "
                               "%.0f%% "
                               "of the in-process runs in %ld loops (%.0f/s)\n",
                               markdown ? "- " : "", rs[best].runs_per_s,
                               100.0 * rs[best].runs_per_s / lpar.runs_per_s, ncpu, lpar.runs_per_s);
        }
        for (unsigned i = 0; i < n_rounds; i++)
                if (rs[i].got && rs[i].hwm_kib >= 0)
                        printf("%sautoosd RSS with max_runs %u: %.1f MiB after the burst, peak %.1f MiB "
                               "(VmHWM)\n",
                               markdown ? "- " : "", rs[i].max_runs, rs[i].rss_kib / 1024.0,
                               rs[i].hwm_kib / 1024.0);
        for (int i = 0; best >= 0 && peer_runs > 0 && i < (int) ELEMENTSOF(peers); i++)
                if (!peers[i].skip[0] && peers[i].parallel > 0)
                        printf("%sautoosd: %.2fx the runs/s of %s in nproc loops (%.0f/s)%s\n",
                               markdown ? "- " : "", rs[best].runs_per_s / peers[i].parallel, peers[i].name,
                               peers[i].parallel, peers[i].failed ? " (some of its runs failed)" : "");
        for (unsigned i = 0; i < n_rounds; i++)
                if (rs[i].failed)
                        printf("%smax_runs %u: %u job(s) did not exit 0, first: %s\n",
                               markdown ? "- " : "  ", max_runs[i], rs[i].failed, rs[i].first_failure);
        if (lpar.error[0])
                printf("%sin-process (ahead 4, %ld loops): %s\n", markdown ? "- " : "  ", ncpu, lpar.error);
        for (int i = 0; i < 2; i++)
                if (ls[i].error[0])
                        printf("%sin-process (ahead %u): %s\n", markdown ? "- " : "  ", ahead[i],
                               ls[i].error);
        struct utsname u;
        if (uname(&u) < 0)
                snprintf(u.release, sizeof(u.release), "unknown");
        printf("%sHost: kernel %s, nproc %ld. burst: all jobs XADDed at once, latency includes the queue; "
               "idle: %u jobs one at a time. autoosd/redis: CPU in %% of one core over the burst. "
               "In-process rows: "
               "sbx_run_sync() one after another, runs/s = 1000 / mean ms, latency = the run's wall time.\n",
               "", u.release, ncpu, one_jobs);
        return ok ? 0 : 1;
}
