/* SPDX-License-Identifier: MIT */
/*
 * The egress group of `autoosctl adversarial` (issue 13): attacks from inside
 * elevated runs with network egress, on a node configured for it (the
 * egress_* settings of autoosd.conf: uplink, pool, resolvers), aimed at the
 * targets the operator names in a small file (--egress-targets):
 *
 *   server = ADDR:PORT        an allowlisted HTTP server (the controls fetch from it)
 *   download = /PATH          a file on it that takes seconds at the bandwidth limit
 *   sink = ADDR:PORT          an allowlisted TCP sink that reads and discards
 *   unlisted = ADDR:PORT      a listening service that is NOT on the allowlist
 *   node_service = ADDR:PORT  a service of the node's own (optional)
 *
 * Each row is one run of the attack program (adversarial/attack.c, the
 * egress-* attacks) and is contained only when the attack was stopped AND
 * each destination it tried is named, with a count, in the run's
 * egress_refused: the node refused it, not something else on the way.
 * The limits (bandwidth, connections, DNS queries per second) are compared
 * with the policy's values for the level.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adversarial/adversarial.h"
#include "common/clock.h"
#include "common/macro.h"
#include "common/buf.h"
#include "sandbox/sandbox.h"
#include "sandbox/supervise.h"

#define EG_GROUP "egress"
#define EG_MAX_ATTACK_BYTES (64u << 20)

typedef struct eg_runner {
        const adv_options *o;
        sbx_policy policy;
        sbx_trust trust;
        const sbx_egress_policy *lp; /* the level's egress policy: the limits rows compare with */
        sbx_egress_config cfg;
        sbx_context *ctx;
        char *attack;
        size_t attack_size;
        int sigfd;
        int *interrupted;
        unsigned seq;
        char token[17];
        /* The targets, "ADDR:PORT" (download a path); resolver the node's first. */
        char server[32], download[256], sink[32], unlisted[32], node_service[32], resolver[16];
} eg_runner;

typedef void (*eg_attack_fn)(eg_runner *E, adv_row *row);

typedef struct eg_attack {
        const char *name;
        const char *expectation;
        eg_attack_fn fn;
} eg_attack;

/* ---- small helpers --------------------------------------------------------------------- */

/* "ADDR:PORT" with an IPv4 address and a port 1..65535. */
static bool addr_port_valid(const char *s) {
        char a[INET_ADDRSTRLEN];
        const char *colon = strrchr(s, ':');
        struct in_addr in;
        if (!colon || (size_t) (colon - s) >= sizeof(a))
                return false;
        memcpy(a, s, (size_t) (colon - s));
        a[colon - s] = '\0';
        char *end;
        unsigned long port = strtoul(colon + 1, &end, 10);
        return inet_pton(AF_INET, a, &in) == 1 && colon[1] && !*end && port >= 1 && port <= 65535;
}

/* The address part of "ADDR:PORT" into buf. */
static const char *addr_of(const char *s, char *buf, size_t size) {
        snprintf(buf, size, "%.*s", (int) strcspn(s, ":"), s);
        return buf;
}

/* Reads the targets file f (at path); why names the line that is wrong. */
static int targets_parse(eg_runner *E, FILE *f, const char *path, char *why, size_t size) {
        char line[512];
        unsigned no = 0;
        while (fgets(line, sizeof(line), f)) {
                no++;
                char *s = line + strspn(line, " \t");
                s[strcspn(s, "\r\n")] = '\0';
                if (!*s || *s == '#')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq) {
                        adv_setf(why, size, "%s:%u: expected key = value", path, no);
                        return -EINVAL;
                }
                char *key = s, *value = eq + 1;
                for (char *k = eq; k > key && (k[-1] == ' ' || k[-1] == '\t'); k--)
                        k[-1] = '\0';
                *eq = '\0';
                value += strspn(value, " \t");
                for (size_t n = strlen(value); n && (value[n - 1] == ' ' || value[n - 1] == '\t'); n--)
                        value[n - 1] = '\0';
                struct {
                        const char *key;
                        char *dst;
                        size_t size;
                } keys[] = {{"server", E->server, sizeof(E->server)},
                            {"sink", E->sink, sizeof(E->sink)},
                            {"unlisted", E->unlisted, sizeof(E->unlisted)},
                            {"node_service", E->node_service, sizeof(E->node_service)},
                            {"download", E->download, sizeof(E->download)}};
                size_t k;
                for (k = 0; k < ELEMENTSOF(keys); k++)
                        if (strcmp(key, keys[k].key) == 0)
                                break;
                if (k == ELEMENTSOF(keys)) {
                        adv_setf(why, size,
                                 "%s:%u: unknown key '%.40s' (server, download, sink, unlisted, "
                                 "node_service)",
                                 path, no, key);
                        return -EINVAL;
                }
                bool ok =
                        strcmp(key, "download") == 0
                                ? value[0] == '/' && strlen(value) < keys[k].size && !strpbrk(value, " \t\"")
                                : strlen(value) < keys[k].size && addr_port_valid(value);
                if (!ok) {
                        adv_setf(why, size, "%s:%u: %s: '%.60s' is not %s", path, no, key, value,
                                 strcmp(key, "download") == 0 ? "an absolute HTTP path"
                                                              : "an IPv4 ADDR:PORT");
                        return -EINVAL;
                }
                snprintf(keys[k].dst, keys[k].size, "%s", value);
        }
        if (!E->server[0] || !E->sink[0] || !E->unlisted[0] || !E->download[0]) {
                adv_setf(why, size, "%s: server, download, sink and unlisted are required", path);
                return -EINVAL;
        }
        return 0;
}

static int targets_load(eg_runner *E, const char *path, char *why, size_t size) {
        FILE *f = fopen(path, "re");
        if (!f) {
                int r = -errno;
                adv_setf(why, size, "--egress-targets %s: %s", path, strerror(-r));
                return r;
        }
        int r = targets_parse(E, f, path, why, size);
        fclose(f);
        return r;
}

/* ---- runs ------------------------------------------------------------------------------ */

/* An egress run of `attack ARGS...` at the group's level; err says what the policy refused. */
static int eg_spec(eg_runner *E, const char *const *args, sbx_spec **ret, au_error *err) {
        _cleanup_sbx_spec_ sbx_spec *spec = calloc(1, sizeof(sbx_spec));
        char buf[64];
        if (!spec)
                return -ENOMEM;
        snprintf(buf, sizeof(buf), "adv-egress-%s-%u", E->token, ++E->seq);
        if (!(spec->id = strdup(buf)) || au_strv_push(&spec->argv, &spec->argc, "/work/attack") < 0)
                return -ENOMEM;
        for (; *args; args++)
                if (au_strv_push(&spec->argv, &spec->argc, *args) < 0)
                        return -ENOMEM;
        snprintf(buf, sizeof(buf), "ADV_TRUST=%s", sbx_trust_to_string(E->trust));
        if (au_strv_push(&spec->env, &spec->n_env, buf) < 0 ||
            au_strv_push(&spec->env, &spec->n_env, "PATH=/usr/bin:/bin") < 0)
                return -ENOMEM;
        if (!(spec->files = calloc(1, sizeof(sbx_file))))
                return -ENOMEM;
        spec->n_files = 1;
        spec->files[0].name = strdup("attack");
        spec->files[0].data = malloc(E->attack_size);
        if (!spec->files[0].name || !spec->files[0].data)
                return -ENOMEM;
        memcpy(spec->files[0].data, E->attack, E->attack_size);
        spec->files[0].size = E->attack_size;
        spec->files[0].mode = 0755;
        spec->trust = E->trust;
        spec->network = SBX_NET_EGRESS;
        spec->network_set = true;
        int r = sbx_spec_apply_policy(spec, &E->policy, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(spec);
        return 0;
}

/* Starts the run; a start that failed leaves a sandbox_error result. */
static int eg_start(eg_runner *E, const char *const *args, adv_proc *p) {
        _cleanup_sbx_spec_ sbx_spec *spec = NULL;
        au_error err = {};
        *p = (adv_proc){};
        int r = eg_spec(E, args, &spec, &err);
        if (r == -ENOMEM)
                return r;
        if (r == 0)
                r = sbx_run_start(E->ctx, spec, adv_proc_output, p, &p->s.run, &err);
        if (r < 0) {
                p->s.res = sbx_result_new_error(NULL, SBX_OUTCOME_SANDBOX_ERROR, err.msg);
                p->s.done = true;
                return p->s.res ? 0 : -ENOMEM;
        }
        return 0;
}

typedef struct eg_wait {
        adv_proc *p;
        bool ready;
} eg_wait;

static bool eg_reached(void *userdata) {
        const eg_wait *w = userdata;
        return w->p->s.done || (w->ready && w->p->ready);
}

/* Supervises the n runs until watch is done (or READY): 0, or -ETIMEDOUT after timeout_ms. */
static int eg_pump(eg_runner *E, adv_proc *ps, size_t n, adv_proc *watch, bool ready, uint64_t timeout_ms) {
        sbx_supervisor sup = {.sigfd = E->sigfd,
                              .kill_reason = "autoosctl adversarial was interrupted",
                              .caught = *E->interrupted};
        sbx_supervised *runs[2] = {};
        eg_wait w = {.p = watch, .ready = ready};
        for (size_t i = 0; i < n && i < ELEMENTSOF(runs); i++)
                runs[i] = &ps[i].s;
        int r = sbx_supervise(&sup, runs, MIN(n, ELEMENTSOF(runs)), eg_reached, &w,
                              au_now_ms() + timeout_ms);
        *E->interrupted = sup.caught;
        for (size_t i = 0; i < n; i++)
                if (ps[i].s.done && !ps[i].s.res)
                        ps[i].s.res = sbx_result_new_error(NULL, SBX_OUTCOME_SANDBOX_ERROR,
                                                           "supervising the run failed");
        return r;
}

/* Kills what still runs, waits for it, frees the runs (results stay). */
static void eg_end(eg_runner *E, adv_proc *ps, size_t n) {
        sbx_supervised *runs[2] = {};
        for (size_t i = 0; i < n && i < ELEMENTSOF(runs); i++)
                runs[i] = &ps[i].s;
        sbx_supervise_kill(runs, MIN(n, ELEMENTSOF(runs)), "the attack is over");
        for (size_t i = 0; i < n; i++) {
                if (!ps[i].s.done)
                        (void) eg_pump(E, &ps[i], 1, &ps[i], false, 10000);
                ps[i].s.run = sbx_run_free(ps[i].s.run);
        }
}

static void eg_free(adv_proc *p) {
        p->s.run = sbx_run_free(p->s.run);
        p->s.res = sbx_result_free(p->s.res);
}

/* One run of `attack ARGS...` to its end (its time limit and 15 s). */
static int eg_run(eg_runner *E, const char *const *args, adv_proc *p) {
        int r = eg_start(E, args, p);
        if (r < 0)
                return r;
        if (eg_pump(E, p, 1, p, false, 90000) < 0)
                eg_end(E, p, 1);
        return 0;
}

/* ---- judging ---------------------------------------------------------------------------- */

/* The value of KEY in the run's INFO lines ("INFO k=v k2=v2"), into buf; NULL when absent. */
static const char *eg_info(const char *out, const char *key, char *buf, size_t size) {
        size_t kl = strlen(key);
        const char *found = NULL;
        for (const char *line = out; line && *line;) {
                const char *nl = strchr(line, '\n');
                if (strncmp(line, "INFO ", 5) == 0)
                        for (const char *w = line + 5; w && (!nl || w < nl);
                             w = strchr(w, ' '), w = w ? w + 1 : w)
                                if (strncmp(w, key, kl) == 0 && w[kl] == '=')
                                        found = w + kl + 1;
                line = nl ? nl + 1 : NULL;
        }
        if (!found)
                return NULL;
        snprintf(buf, size, "%.*s", (int) strcspn(found, " \n"), found);
        return buf;
}

static long long eg_info_num(const sbx_result *res, const char *key) {
        char buf[32];
        if (!res || !res->stdout_data || !eg_info(res->stdout_data, key, buf, sizeof(buf)))
                return -1;
        return atoll(buf);
}

/* The attack's verdict line (the last line starting with a verdict word), into buf. */
static const char *eg_verdict(const sbx_result *res, char *buf, size_t size) {
        static const char *const words[] = {"CONTAINED ", "ESCAPED ", "SKIPPED ", "ERROR "};
        const char *found = NULL;
        if (!res || !res->stdout_data)
                return NULL;
        for (const char *line = res->stdout_data; line && *line;) {
                for (size_t w = 0; w < ELEMENTSOF(words); w++)
                        if (strncmp(line, words[w], strlen(words[w])) == 0)
                                found = line;
                const char *nl = strchr(line, '\n');
                line = nl ? nl + 1 : NULL;
        }
        if (!found)
                return NULL;
        snprintf(buf, size, "%.*s", (int) strcspn(found, "\n"), found);
        return buf;
}

/*
 * Judges the run as the sandbox rows are judged: an ESCAPED attack is not
 * contained; the run must exit with a CONTAINED line. True when it did (the
 * row is contained so far), with observed set.
 */
static bool eg_judge(const sbx_result *res, adv_row *row) {
        char line[1024];
        const char *vl = eg_verdict(res, line, sizeof(line));
        row->verdict = ADV_ERROR;
        if (!res || res->outcome == SBX_OUTCOME_SANDBOX_ERROR || res->outcome == SBX_OUTCOME_REJECTED) {
                adv_setf(row->observed, sizeof(row->observed), "%s: %s",
                         res ? sbx_outcome_to_string(res->outcome) : "no result",
                         res && res->error ? res->error : "?");
                adv_setf(row->note, sizeof(row->note), "the sandbox could not run the attack");
                return false;
        }
        adv_setf(row->observed, sizeof(row->observed), "%s %d: %s", sbx_outcome_to_string(res->outcome),
                 res->outcome == SBX_OUTCOME_EXITED ? res->exit_code : res->signal, vl ? vl : "no verdict");
        for (size_t i = 0; i < res->n_denied_syscalls; i++)
                adv_append(row->denied, sizeof(row->denied), "%s%s", i ? "," : "", res->denied_syscalls[i]);
        if (vl && strncmp(vl, "ESCAPED ", 8) == 0) {
                row->verdict = ADV_NOT_CONTAINED;
                adv_setf(row->note, sizeof(row->note), "the attack got through (see observed)");
                return false;
        }
        if (res->outcome != SBX_OUTCOME_EXITED) {
                adv_setf(row->note, sizeof(row->note), "unexpected outcome %s",
                         sbx_outcome_to_string(res->outcome));
                return false;
        }
        if (vl && strncmp(vl, "SKIPPED ", 8) == 0) {
                row->verdict = ADV_SKIPPED;
                adv_setf(row->note, sizeof(row->note), "%s", vl + 8);
                return false;
        }
        if (!vl || strncmp(vl, "CONTAINED ", 10) != 0) {
                adv_setf(row->note, sizeof(row->note), "%s", vl ? vl : "the attack printed no verdict");
                return false;
        }
        row->verdict = ADV_CONTAINED;
        return true;
}

static void eg_fail(adv_row *row, adv_verdict v, const char *fmt, ...) _printf_(3, 4);
static void eg_fail(adv_row *row, adv_verdict v, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (row->verdict == ADV_CONTAINED || row->verdict == ADV_SKIPPED) {
                row->verdict = v;
                adv_setf(row->note, sizeof(row->note), "%s", msg);
        } else {
                adv_append(row->note, sizeof(row->note), "; %s", msg);
        }
}

/* DEST ("addr:port/proto") must be named in the run's egress_refused with a count: the node refused it. */
static void eg_need_refused(const sbx_result *res, adv_row *row, const char *dest) {
        for (size_t i = 0; res && i < res->n_egress_refused; i++)
                if (strcmp(res->egress_refused[i], dest) == 0 && res->egress_refused_counts[i] > 0) {
                        adv_append(row->observed, sizeof(row->observed), "; refused %s (%" PRIu64 ")", dest,
                                   res->egress_refused_counts[i]);
                        return;
                }
        eg_fail(row, ADV_NOT_CONTAINED,
                "%s is not named in the result's egress_refused: the node did not refuse it", dest);
}

/* The run of a one-run row, judged; the refusals each row checks are its own. */
static bool eg_one(eg_runner *E, const char *const *args, adv_proc *p, adv_row *row) {
        if (eg_run(E, args, p) < 0) {
                adv_setf(row->note, sizeof(row->note), "out of memory");
                row->verdict = ADV_ERROR;
                return false;
        }
        return eg_judge(p->s.res, row);
}

/* ---- the attacks ------------------------------------------------------------------------- */

/* egress-reach on the given destinations, each of which must be refused by the node. */
static void eg_reach(eg_runner *E, adv_row *row, const char *control, const char *const *dests) {
        const char *args[20] = {"egress-reach"};
        size_t n = 1;
        if (control)
                args[n++] = control;
        for (size_t i = 0; dests[i] && n < ELEMENTSOF(args) - 1; i++)
                args[n++] = dests[i];
        adv_proc p;
        bool ok = eg_one(E, args, &p, row);
        for (size_t i = 0; ok && dests[i]; i++)
                eg_need_refused(p.s.res, row, dests[i]);
        eg_free(&p);
}

static void a_metadata(eg_runner *E, adv_row *row) {
        eg_reach(E, row, NULL, (const char *const[]){"169.254.169.254:80/tcp", NULL});
}

static void a_node_services(eg_runner *E, adv_row *row) {
        char svc[48] = "", gw[48];
        const char *port = E->node_service[0] ? strrchr(E->node_service, ':') + 1 : "22";
        snprintf(gw, sizeof(gw), "gw:%s/tcp", port);
        if (E->node_service[0])
                snprintf(svc, sizeof(svc), "%s/tcp", E->node_service);
        const char *args[] = {"egress-reach", gw, svc[0] ? svc : NULL, NULL};
        adv_proc p;
        if (eg_one(E, args, &p, row)) {
                /* The gateway's address is the run's own link's node end: the attack says which it was. */
                char dest[64];
                const char *out = p.s.res->stdout_data ? p.s.res->stdout_data : "";
                const char *first = strstr(out, "INFO dest=");
                if (first) {
                        snprintf(dest, sizeof(dest), "%.*s", (int) strcspn(first + 10, "\n"), first + 10);
                        eg_need_refused(p.s.res, row, dest);
                } else {
                        eg_fail(row, ADV_ERROR, "the attack did not say which gateway it tried");
                }
                if (svc[0])
                        eg_need_refused(p.s.res, row, svc);
        }
        eg_free(&p);
}

static void a_other_run(eg_runner *E, adv_row *row) {
        adv_proc ps[2];
        char dest[48], addr[32];
        memset(ps, 0, sizeof(ps));
        ps[1].s.done = true;
        int r = eg_start(E, (const char *const[]){"egress-listen", "7000", "30", NULL}, &ps[0]);
        if (r < 0 || eg_pump(E, ps, 1, &ps[0], true, 30000) < 0 || !ps[0].ready ||
            !eg_info(ps[0].head, "addr", addr, sizeof(addr))) {
                eg_end(E, ps, 1);
                row->verdict = ADV_ERROR;
                adv_setf(row->observed, sizeof(row->observed), "%s",
                         ps[0].s.res && ps[0].s.res->error ? ps[0].s.res->error : "no address, no READY");
                adv_setf(row->note, sizeof(row->note), "the victim run never said its address and READY");
                eg_free(&ps[0]);
                return;
        }
        snprintf(dest, sizeof(dest), "%s:7000/tcp", addr);
        if (eg_start(E, (const char *const[]){"egress-reach", dest, NULL}, &ps[1]) < 0) {
                eg_end(E, ps, 1);
                eg_free(&ps[0]);
                row->verdict = ADV_ERROR;
                return;
        }
        if (eg_pump(E, ps, 2, &ps[1], false, 90000) < 0)
                eg_end(E, &ps[1], 1);
        eg_end(E, ps, 1);
        if (eg_judge(ps[1].s.res, row))
                eg_need_refused(ps[1].s.res, row, dest);
        char line[512];
        const char *vl = eg_verdict(ps[0].s.res, line, sizeof(line));
        if (vl && strncmp(vl, "ESCAPED ", 8) == 0)
                eg_fail(row, ADV_NOT_CONTAINED, "the victim run says: %s", vl + 8);
        eg_free(&ps[0]);
        eg_free(&ps[1]);
}

static void a_unlisted(eg_runner *E, adv_row *row) {
        char control[48], unlisted[48], swapped[48], a[INET_ADDRSTRLEN];
        snprintf(control, sizeof(control), "+%s/tcp", E->server);
        snprintf(unlisted, sizeof(unlisted), "%s/tcp", E->unlisted);
        /* The sink's address on the server's port: an allowed port on an address not allowed for it. */
        snprintf(swapped, sizeof(swapped), "%s:%s/tcp", addr_of(E->sink, a, sizeof(a)),
                 strrchr(E->server, ':') + 1);
        eg_reach(E, row, control, (const char *const[]){unlisted, swapped, NULL});
}

static void a_private(eg_runner *E, adv_row *row) {
        eg_reach(E, row, NULL,
                 (const char *const[]){"10.1.2.3:80/tcp", "172.16.1.2:80/tcp", "192.168.1.2:80/tcp",
                                       "224.0.0.251:5353/udp", NULL});
}

static void a_spoof(eg_runner *E, adv_row *row) {
        char server[48];
        snprintf(server, sizeof(server), "%s/tcp", E->server);
        adv_proc p;
        if (eg_one(E, (const char *const[]){"egress-spoof", server, NULL}, &p, row) &&
            !strstr(row->denied, "socket"))
                eg_fail(row, ADV_NOT_CONTAINED,
                        "packet sockets refused, but not by the seccomp filter: socket not "
                        "reported denied");
        eg_free(&p);
}

static void a_raw_socket(eg_runner *E, adv_row *row) {
        adv_proc p;
        if (eg_one(E, (const char *const[]){"raw-socket", NULL}, &p, row) && !strstr(row->denied, "socket"))
                eg_fail(row, ADV_NOT_CONTAINED, "raw sockets refused, but socket not reported denied");
        eg_free(&p);
}

static void a_bandwidth(eg_runner *E, adv_row *row) {
        uint64_t bw = E->lp->bandwidth_bytes;
        if (!bw) {
                row->verdict = ADV_SKIPPED;
                adv_setf(row->note, sizeof(row->note), "the policy sets no bandwidth_bytes at %s",
                         sbx_trust_to_string(E->trust));
                return;
        }
        char server[48], sink[48], bytes[32];
        snprintf(server, sizeof(server), "%s/tcp", E->server);
        snprintf(sink, sizeof(sink), "%s/tcp", E->sink);
        /* Three seconds at the limit each way: long enough that a burst does not count. */
        snprintf(bytes, sizeof(bytes), "%" PRIu64, MIN(bw * 3, (uint64_t) 64 << 20));
        adv_proc p;
        if (eg_one(E, (const char *const[]){"egress-bandwidth", server, E->download, sink, bytes, NULL}, &p,
                   row)) {
                const char *dir[2] = {"down", "up"};
                for (int i = 0; i < 2; i++) {
                        char kb[32], km[32];
                        snprintf(kb, sizeof(kb), "%s_bytes", dir[i]);
                        snprintf(km, sizeof(km), "%s_ms", dir[i]);
                        long long b = eg_info_num(p.s.res, kb), ms = eg_info_num(p.s.res, km);
                        if (b < 0 || ms <= 0) {
                                eg_fail(row, ADV_ERROR, "the attack did not report its %s rate", dir[i]);
                                continue;
                        }
                        double rate = (double) b * 1000.0 / (double) ms;
                        adv_append(row->observed, sizeof(row->observed), "; %s %.0f B/s", dir[i], rate);
                        if ((uint64_t) b < 2 * bw)
                                eg_fail(row, ADV_ERROR,
                                        "%s: %lld bytes, too few to measure a rate (%s is smaller "
                                        "than twice the limit)",
                                        dir[i], b, i ? "the upload" : E->download);
                        else if (rate > (double) bw * 1.1)
                                eg_fail(row, ADV_NOT_CONTAINED,
                                        "%s rate %.0f B/s over the limit %" PRIu64 " (+10%%)", dir[i], rate,
                                        bw);
                        else if (rate < (double) bw * 0.9)
                                eg_fail(row, ADV_ERROR,
                                        "%s rate %.0f B/s under 90%% of the limit %" PRIu64
                                        ": the measurement is not the limit's",
                                        dir[i], rate, bw);
                }
        }
        eg_free(&p);
}

static void a_conntrack(eg_runner *E, adv_row *row) {
        uint32_t limit = E->lp->connections;
        if (!limit) {
                row->verdict = ADV_SKIPPED;
                adv_setf(row->note, sizeof(row->note), "the policy sets no connections limit at %s",
                         sbx_trust_to_string(E->trust));
                return;
        }
        char sink[48], n[16];
        snprintf(sink, sizeof(sink), "%s/tcp", E->sink);
        snprintf(n, sizeof(n), "%u", MIN(limit * 4, 256u));
        adv_proc p;
        if (eg_one(E, (const char *const[]){"egress-conns", sink, n, NULL}, &p, row)) {
                long long est = eg_info_num(p.s.res, "established");
                adv_append(row->observed, sizeof(row->observed), "; %lld of %s open at once, limit %u", est,
                           n, limit);
                if (est < 1)
                        eg_fail(row, ADV_ERROR, "no connection completed: the sink is not reachable");
                else if (est > limit)
                        eg_fail(row, ADV_NOT_CONTAINED, "%lld connections open at once, over the limit %u",
                                est, limit);
                eg_need_refused(p.s.res, row, sink);
        }
        eg_free(&p);
}

static void a_dns_other(eg_runner *E, adv_row *row) {
        char control[48], d1[48], d2[48], a[INET_ADDRSTRLEN];
        snprintf(control, sizeof(control), "+%s:53/udp", E->resolver);
        snprintf(d1, sizeof(d1), "%s:53/udp", addr_of(E->sink, a, sizeof(a)));
        snprintf(d2, sizeof(d2), "%s:53/udp", addr_of(E->unlisted, a, sizeof(a)));
        eg_reach(E, row, control, (const char *const[]){d1, strcmp(d1, d2) ? d2 : NULL, NULL});
}

static void a_dns_flood(eg_runner *E, adv_row *row) {
        uint32_t qps = E->lp->dns_queries_per_second;
        if (!qps) {
                row->verdict = ADV_SKIPPED;
                adv_setf(row->note, sizeof(row->note), "the policy sets no dns_queries_per_second at %s",
                         sbx_trust_to_string(E->trust));
                return;
        }
        char dest[48];
        snprintf(dest, sizeof(dest), "%s:53/udp", E->resolver);
        adv_proc p;
        if (eg_one(E, (const char *const[]){"egress-dns-flood", E->resolver, "200", NULL}, &p, row)) {
                long long got = eg_info_num(p.s.res, "answered"), ms = eg_info_num(p.s.res, "ms"),
                          sent = eg_info_num(p.s.res, "sent");
                /* The rate over the attack's time, plus the burst (as many again), plus a second of slack.
                 */
                long long bound = (long long) qps * ((ms + 999) / 1000 + 2);
                adv_append(row->observed, sizeof(row->observed),
                           "; %lld of %lld answered in %lld ms (at most %lld)", got, sent, ms, bound);
                if (got < 1)
                        eg_fail(row, ADV_ERROR, "no query was answered: the resolver is not reachable");
                else if (got > bound)
                        eg_fail(row, ADV_NOT_CONTAINED,
                                "%lld queries answered in %lld ms at a limit of %u/s", got, ms, qps);
                eg_need_refused(p.s.res, row, dest);
        }
        eg_free(&p);
}

/* clang-format off */
static const eg_attack attacks[] = {
        { "egress-metadata", "169.254.169.254 (cloud metadata) unreachable, refused in the result", a_metadata },
        { "egress-node-services", "the node's own addresses (its end of the run's link, node_service) "
                                  "unreachable, refused in the result", a_node_services },
        { "egress-other-run", "another egress run's address unreachable, refused in the result", a_other_run },
        { "egress-unlisted", "an address and a port not on the allowlist unreachable (the allowlisted server "
                             "is), refused in the result", a_unlisted },
        { "egress-private", "RFC 1918 ranges and multicast unreachable, refused in the result", a_private },
        { "egress-spoof", "ARP/IP spoofing: packet and raw sockets refused (reported), address, MAC and routes "
                          "unchangeable, forged source dropped", a_spoof },
        { "egress-raw-socket", "raw IPv4/IPv6 and SOCK_PACKET sockets refused in an egress run, reported",
          a_raw_socket },
        { "egress-bandwidth", "download and upload rates within 10% of bandwidth_bytes", a_bandwidth },
        { "egress-conntrack", "connections over the policy's limit never open, refused in the result",
          a_conntrack },
        { "egress-dns-other", "DNS to a resolver not on the node's list unanswered (the listed one answers), "
                              "refused in the result", a_dns_other },
        { "egress-dns-flood", "a flood of data-carrying DNS queries held to dns_queries_per_second, refused in "
                              "the result", a_dns_flood },
};
/* clang-format on */

/* ---- the group ------------------------------------------------------------------------------ */

/* Whether the group runs at all: --egress-targets given, or --only names it or one of its attacks. */
static bool eg_selected(const adv_options *o, const char *name) {
        if (!o->egress.targets && !o->only)
                return false;
        return adv_selected(o->only, EG_GROUP, name);
}

bool adv_egress_known(const char *only) {
        for (size_t i = 0; i < ELEMENTSOF(attacks); i++)
                if (adv_selected(only, EG_GROUP, attacks[i].name))
                        return true;
        return false;
}

void adv_egress_print_list(FILE *f) {
        fputs("egress        (with --egress-targets FILE, on a node configured for egress)\n", f);
        for (size_t i = 0; i < ELEMENTSOF(attacks); i++)
                fprintf(f, "  %-22s %s\n", attacks[i].name, attacks[i].expectation);
}

/* Why the group cannot run here (a skip reason), or "" when it can; fills E. */
static int eg_setup(eg_runner *E, char *why, size_t size) {
        const adv_options *o = E->o;
        au_error err = {};
        int r;
        const char *conf = o->egress.config ? o->egress.config : ADV_DEFAULT_NODE_CONFIG;
        if ((r = sbx_egress_config_load(&E->cfg, conf, &err)) < 0) {
                adv_setf(why, size, "%s", err.msg);
                return ADV_ERROR;
        }
        if (!sbx_egress_config_usable(&E->cfg)) {
                adv_setf(why, size,
                         "egress is not configured on this host (no egress_uplink and egress_pool in %s)",
                         conf);
                return ADV_SKIPPED;
        }
        if (!E->cfg.n_resolvers) {
                adv_setf(why, size, "the node names no egress_resolvers in %s", conf);
                return ADV_SKIPPED;
        }
        struct in_addr a = {.s_addr = htonl(E->cfg.resolvers[0])};
        inet_ntop(AF_INET, &a, E->resolver, sizeof(E->resolver));
        if (!o->egress.targets) {
                adv_setf(why, size, "no --egress-targets FILE names the servers to aim at");
                return ADV_SKIPPED;
        }
        if (targets_load(E, o->egress.targets, why, size) < 0)
                return ADV_ERROR;
        /* The level: the one asked for when it may have egress, else elevated. */
        E->trust = o->trust;
        if (!E->policy.level[E->trust].network_allowed[SBX_NET_EGRESS])
                E->trust = SBX_TRUST_ELEVATED;
        if (!E->policy.level[E->trust].enabled ||
            !E->policy.level[E->trust].network_allowed[SBX_NET_EGRESS]) {
                adv_setf(why, size, "the policy allows no egress at %s", sbx_trust_to_string(E->trust));
                return ADV_SKIPPED;
        }
        E->lp = &E->policy.level[E->trust].egress;
        E->policy.egress_configured = true;

        const char *path = o->attack_path ? o->attack_path : getenv(ADV_ATTACK_ENV);
        if (!path || !*path)
                path = ADV_DEFAULT_ATTACK;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
            (uint64_t) st.st_size > EG_MAX_ATTACK_BYTES) {
                adv_setf(why, size, "the attack program %s: %s (build it, or give --attacks PATH)", path,
                         fd < 0 ? strerror(errno) : "not a regular file of at most 64 MiB");
                return ADV_ERROR;
        }
        E->attack_size = (size_t) st.st_size;
        if (!(E->attack = malloc(E->attack_size)))
                return -ENOMEM;
        for (size_t n = 0; n < E->attack_size;) {
                ssize_t k = read(fd, E->attack + n, E->attack_size - n);
                if (k <= 0) {
                        adv_setf(why, size, "read the attack program %s: %s", path,
                                 k < 0 ? strerror(errno) : "short");
                        return ADV_ERROR;
                }
                n += (size_t) k;
        }
        uint8_t rnd[8];
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                return -errno;
        for (size_t i = 0; i < sizeof(rnd); i++)
                snprintf(E->token + 2 * i, 3, "%02x", rnd[i]);
        sbx_config sc = {.prepare_ahead = 0, .egress = &E->cfg};
        if ((r = sbx_context_new(&sc, &E->ctx, &err)) < 0) {
                adv_setf(why, size, "sandbox: %s", err.msg);
                return ADV_ERROR;
        }
        return 0;
}

int adv_egress_attacks(const adv_options *o, const sbx_policy *policy, int sigfd, int *interrupted,
                       adv_report *rep) {
        eg_runner E = {.o = o, .policy = *policy, .sigfd = sigfd, .interrupted = interrupted};
        char why[512] = "";
        size_t total = 0;
        int r = 0;

        for (size_t i = 0; i < ELEMENTSOF(attacks); i++)
                total += eg_selected(o, attacks[i].name);
        if (total == 0)
                return 0;
        int setup = eg_setup(&E, why, sizeof(why));
        if (setup < 0) {
                r = setup;
                goto out;
        }
        for (size_t i = 0; i < ELEMENTSOF(attacks); i++) {
                if (!eg_selected(o, attacks[i].name))
                        continue;
                adv_row row = {};
                snprintf(row.group, sizeof(row.group), EG_GROUP);
                snprintf(row.name, sizeof(row.name), "%s", attacks[i].name);
                snprintf(row.expectation, sizeof(row.expectation), "%s", attacks[i].expectation);
                uint64_t t0 = au_now_ms();
                if (setup > 0 || *interrupted) {
                        row.verdict = *interrupted ? ADV_ERROR : (adv_verdict) setup;
                        adv_setf(row.note, sizeof(row.note), "%s",
                                 *interrupted ? "not run: interrupted" : why);
                } else {
                        attacks[i].fn(&E, &row);
                        if (*interrupted) {
                                row.verdict = ADV_ERROR;
                                adv_setf(row.note, sizeof(row.note), "interrupted by signal %d",
                                         *interrupted);
                        }
                }
                row.ms = (double) (au_now_ms() - t0);
                if (o->format != ADV_FORMAT_JSON && isatty(STDERR_FILENO))
                        fprintf(stderr, "\r\033[K%s/%s: %s", row.group, row.name,
                                adv_verdict_word(row.verdict));
                if ((r = adv_report_add(rep, &row)) < 0)
                        goto out;
        }
        if (o->format != ADV_FORMAT_JSON && isatty(STDERR_FILENO))
                fputs("\r\033[K", stderr);
out:
        E.ctx = sbx_context_free(E.ctx);
        free(E.attack);
        return r;
}
