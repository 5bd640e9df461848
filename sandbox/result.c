/* SPDX-License-Identifier: MIT */
/* The result of a run (DESIGN.md "Result of a run"): JSON both ways, exit status. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_parse.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/parse.h"
#include "sandbox/sandbox.h"

/* Two streams of up to 64 MiB, escaped, fit; a result is never bigger. */
#define RESULT_MAX_JSON_BYTES (UINT64_C(1) << 30)

/*
 * A fresh result: outcome sandbox_error (so a result nobody filled in never
 * looks like success), exit_code -1, everything else empty. NULL on ENOMEM.
 */
sbx_result *sbx_result_new(void) {
        sbx_result *r = calloc(1, sizeof(*r));

        if (!r)
                return NULL;
        r->outcome = SBX_OUTCOME_SANDBOX_ERROR;
        r->exit_code = -1;
        return r;
}

/* Frees the result and everything it owns; accepts NULL, returns NULL. */
sbx_result *sbx_result_free(sbx_result *r) {
        if (!r)
                return NULL;
        free(r->id);
        free(r->node);
        free(r->workflow);
        free(r->step);
        free(r->stdout_data);
        free(r->stderr_data);
        if (r->denied_syscalls)
                for (size_t i = 0; i < r->n_denied_syscalls; i++)
                        free(r->denied_syscalls[i]);
        free(r->denied_syscalls);
        for (size_t i = 0; r->egress_refused && i < r->n_egress_refused; i++)
                free(r->egress_refused[i]);
        free(r->egress_refused);
        free(r->egress_refused_counts);
        free(r->error);
        free(r->reason);
        free(r);
        return NULL;
}

sbx_result *sbx_result_new_error(const char *id, sbx_outcome outcome, const char *message) {
        _cleanup_sbx_result_ sbx_result *r = sbx_result_new();

        if (!r)
                return NULL;
        r->outcome = outcome;
        if (id && !(r->id = strdup(id)))
                return NULL;
        if (message && !(r->error = strdup(message)))
                return NULL;
        return TAKE_PTR(r);
}

int sbx_result_exit_status(const sbx_result *r) {
        if (!r)
                return 125;
        switch (r->outcome) {
        case SBX_OUTCOME_EXITED:
                /* An exit with no code is our bug, not the program's. */
                return r->exit_code >= 0 && r->exit_code <= 255 ? r->exit_code : 125;
        case SBX_OUTCOME_SIGNALED:
                return 128 + (r->signal > 0 && r->signal < 128 ? r->signal : 9);
        case SBX_OUTCOME_TIMEOUT:
        case SBX_OUTCOME_CPU_LIMIT:
                return 124;
        case SBX_OUTCOME_OOM:
        case SBX_OUTCOME_PIDS_LIMIT:
        case SBX_OUTCOME_OUTPUT_LIMIT:
                return 137;
        default:
                return 125;
        }
}

/* ---- writing -------------------------------------------------------------- */

/* "2026-11-21T10:00:00.123Z", or null for a zero timespec. */
static int gen_time(yajl_gen g, const char *key, const struct timespec *ts) {
        char buf[64];
        struct tm tm;

        AU_JSON_GEN_TRY(au_json_gen_string(g, key));
        /* Within the epoch's first millisecond, the text would read back as a zero timespec: null too. */
        if (ts->tv_sec == 0 && ts->tv_nsec < 1000000)
                return au_json_gen_null(g);
        if (!gmtime_r(&ts->tv_sec, &tm))
                return au_json_gen_null(g);
        /* Four-digit years before 1000 too (strftime's %Y would write "506"), as parse_time() reads. */
        snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long) (ts->tv_nsec / 1000000));
        return au_json_gen_string(g, buf);
}

static int gen_result(yajl_gen g, const sbx_result *r) {
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "id", r->id));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "node", r->node));
        if (r->workflow)
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "workflow", r->workflow));
        if (r->step)
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "step", r->step));
        if (r->attempt > 0)
                AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "attempt", r->attempt));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "outcome", sbx_outcome_to_string(r->outcome)));

        AU_JSON_GEN_TRY(au_json_gen_string(g, "exit_code"));
        AU_JSON_GEN_TRY(r->exit_code < 0 ? au_json_gen_null(g) : au_json_gen_int64(g, r->exit_code));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "signal"));
        AU_JSON_GEN_TRY(r->signal == 0 ? au_json_gen_null(g) : au_json_gen_int64(g, r->signal));

        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "wall_ms", r->wall_ms));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "cpu_ms", r->cpu_ms));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "memory_peak_bytes", r->memory_peak_bytes));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "oom_kills", r->oom_kills));

        /* Child output is arbitrary bytes: au_json_gen_stringn() repairs UTF-8 and escapes NULs. */
        AU_JSON_GEN_TRY(au_json_gen_string(g, "stdout"));
        AU_JSON_GEN_TRY(au_json_gen_stringn(g, r->stdout_data ? r->stdout_data : "",
                                            r->stdout_data ? r->stdout_size : 0));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "stderr"));
        AU_JSON_GEN_TRY(au_json_gen_stringn(g, r->stderr_data ? r->stderr_data : "",
                                            r->stderr_data ? r->stderr_size : 0));
        AU_JSON_GEN_TRY(au_json_gen_kv_bool(g, "stdout_truncated", r->stdout_truncated));
        AU_JSON_GEN_TRY(au_json_gen_kv_bool(g, "stderr_truncated", r->stderr_truncated));

        AU_JSON_GEN_TRY(au_json_gen_string(g, "denied_syscalls"));
        AU_JSON_GEN_TRY(au_json_gen_array_open(g));
        for (size_t i = 0; r->denied_syscalls && i < r->n_denied_syscalls && r->denied_syscalls[i]; i++)
                AU_JSON_GEN_TRY(au_json_gen_string(g, r->denied_syscalls[i]));
        AU_JSON_GEN_TRY(au_json_gen_array_close(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "denied_count", r->denied_count));

        AU_JSON_GEN_TRY(gen_time(g, "started_at", &r->started_at));
        AU_JSON_GEN_TRY(gen_time(g, "finished_at", &r->finished_at));

        if (r->error)
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "error", r->error));
        if (r->reason)
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "reason", r->reason));
        if (r->host_uid != 0)
                AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "host_uid", r->host_uid));
        if (r->has_egress) {
                AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "egress_sent_bytes", r->egress_sent_bytes));
                AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "egress_sent_packets", r->egress_sent_packets));
                AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "egress_received_bytes", r->egress_received_bytes));
                AU_JSON_GEN_TRY(
                        au_json_gen_kv_uint64(g, "egress_received_packets", r->egress_received_packets));
                /* Two arrays of the same length: what was refused, and how many packets each. */
                size_t n = r->egress_refused && r->egress_refused_counts ? r->n_egress_refused : 0;
                AU_JSON_GEN_TRY(au_json_gen_string(g, "egress_refused"));
                AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                for (size_t i = 0; i < n; i++)
                        AU_JSON_GEN_TRY(au_json_gen_string(g, r->egress_refused[i]));
                AU_JSON_GEN_TRY(au_json_gen_array_close(g));
                AU_JSON_GEN_TRY(au_json_gen_string(g, "egress_refused_counts"));
                AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                for (size_t i = 0; i < n; i++)
                        AU_JSON_GEN_TRY(au_json_gen_uint64(g, r->egress_refused_counts[i]));
                AU_JSON_GEN_TRY(au_json_gen_array_close(g));
        }
        return au_json_gen_map_close(g);
}

char *sbx_result_to_json(const sbx_result *r, bool pretty) {
        _cleanup_json_gen_ yajl_gen g = NULL;

        if (!r)
                return NULL;
        g = au_json_gen_new(pretty);
        if (!g)
                return NULL;
        if (gen_result(g, r) < 0)
                return NULL;
        return au_json_gen_finish(g, NULL);
}

/* ---- reading ---------------------------------------------------------------
 * A streaming parse (not a yajl tree): stdout and stderr may hold NUL bytes
 * ("\u0000"), which a tree's C strings would cut.
 */

enum {
        F_ID,
        F_NODE,
        F_WORKFLOW,
        F_STEP,
        F_ATTEMPT,
        F_OUTCOME,
        F_EXIT_CODE,
        F_SIGNAL,
        F_WALL_MS,
        F_CPU_MS,
        F_MEMORY_PEAK,
        F_OOM_KILLS,
        F_STDOUT,
        F_STDERR,
        F_STDOUT_TRUNCATED,
        F_STDERR_TRUNCATED,
        F_DENIED_SYSCALLS,
        F_DENIED_COUNT,
        F_STARTED_AT,
        F_FINISHED_AT,
        F_ERROR,
        F_REASON,
        F_HOST_UID,
        F_EGRESS_SENT_BYTES,
        F_EGRESS_SENT_PACKETS,
        F_EGRESS_RECEIVED_BYTES,
        F_EGRESS_RECEIVED_PACKETS,
        F_EGRESS_REFUSED,
        F_EGRESS_REFUSED_COUNTS,
        _F_MAX,
        F_UNKNOWN = -1,
};

static const char *const field_names[_F_MAX] = {
        [F_ID] = "id",
        [F_NODE] = "node",
        [F_WORKFLOW] = "workflow",
        [F_STEP] = "step",
        [F_ATTEMPT] = "attempt",
        [F_OUTCOME] = "outcome",
        [F_EXIT_CODE] = "exit_code",
        [F_SIGNAL] = "signal",
        [F_WALL_MS] = "wall_ms",
        [F_CPU_MS] = "cpu_ms",
        [F_MEMORY_PEAK] = "memory_peak_bytes",
        [F_OOM_KILLS] = "oom_kills",
        [F_STDOUT] = "stdout",
        [F_STDERR] = "stderr",
        [F_STDOUT_TRUNCATED] = "stdout_truncated",
        [F_STDERR_TRUNCATED] = "stderr_truncated",
        [F_DENIED_SYSCALLS] = "denied_syscalls",
        [F_DENIED_COUNT] = "denied_count",
        [F_STARTED_AT] = "started_at",
        [F_FINISHED_AT] = "finished_at",
        [F_ERROR] = "error",
        [F_REASON] = "reason",
        [F_HOST_UID] = "host_uid",
        [F_EGRESS_SENT_BYTES] = "egress_sent_bytes",
        [F_EGRESS_SENT_PACKETS] = "egress_sent_packets",
        [F_EGRESS_RECEIVED_BYTES] = "egress_received_bytes",
        [F_EGRESS_RECEIVED_PACKETS] = "egress_received_packets",
        [F_EGRESS_REFUSED] = "egress_refused",
        [F_EGRESS_REFUSED_COUNTS] = "egress_refused_counts",
};

typedef struct parse_ctx {
        sbx_result *r;
        au_error *err;
        unsigned depth;  /* open containers; the result object is 1 */
        int field;       /* at depth 1: the field whose value comes next */
        bool in_denied;  /* inside an array field (depth 2): denied_syscalls, egress_refused(_counts) */
        bool skipping;   /* inside the value of a field we do not know */
        uint32_t seen;   /* bit per field */
        size_t n_counts; /* egress_refused_counts read */
} parse_ctx;

static int ctx_fail(parse_ctx *c, const char *what) {
        const char *name = c->field >= 0 ? field_names[c->field] : "";

        if (c->depth == 0 || !name[0])
                au_error_set_field(c->err, "", "result: %s", what);
        else
                au_error_set_field(c->err, name, "%s: %s", name, what);
        return 0; /* yajl: stop */
}

/* After a value at depth 1 the next thing is a key. */
static int value_done(parse_ctx *c) {
        if (c->depth == 1)
                c->field = F_UNKNOWN;
        return 1;
}

/* Common entry of every scalar callback: 1 when the value is for us to store. */
static int scalar_start(parse_ctx *c, int *ret_handled) {
        *ret_handled = 1;
        if (c->depth == 0)
                return ctx_fail(c, "expected an object");
        if (c->skipping)
                return 1;
        if (c->in_denied)
                return 1;
        if (c->field == F_UNKNOWN)
                return value_done(c); /* an unknown field's scalar value: ignored */
        *ret_handled = 0;
        return 1;
}

static bool nullable(int field) {
        switch (field) {
        case F_ID:
        case F_NODE:
        case F_WORKFLOW:
        case F_STEP:
        case F_EXIT_CODE:
        case F_SIGNAL:
        case F_STARTED_AT:
        case F_FINISHED_AT:
        case F_ERROR:
        case F_REASON:
                return true;
        default:
                return false;
        }
}

static int cb_null(void *ctx) {
        parse_ctx *c = ctx;
        int handled, k = scalar_start(c, &handled);

        if (!k || handled) {
                if (k && c->in_denied && !c->skipping)
                        return ctx_fail(c, "expected an array of strings");
                return k;
        }
        if (!nullable(c->field))
                return ctx_fail(c, "must not be null");
        if (c->field == F_EXIT_CODE)
                c->r->exit_code = -1;
        else if (c->field == F_SIGNAL)
                c->r->signal = 0;
        return value_done(c);
}

static int cb_boolean(void *ctx, int b) {
        parse_ctx *c = ctx;
        int handled, k = scalar_start(c, &handled);

        if (!k || handled) {
                if (k && c->in_denied && !c->skipping)
                        return ctx_fail(c, "expected an array of strings");
                return k;
        }
        if (c->field == F_STDOUT_TRUNCATED)
                c->r->stdout_truncated = b;
        else if (c->field == F_STDERR_TRUNCATED)
                c->r->stderr_truncated = b;
        else
                return ctx_fail(c, "unexpected true or false");
        return value_done(c);
}

/* At most this many refused destinations are kept (the node reports at most SBX_EGRESS_MAX_REFUSED). */
#define RESULT_MAX_REFUSED 1024

static int add_refused_count(parse_ctx *c, uint64_t v) {
        sbx_result *r = c->r;
        size_t n = c->n_counts;

        if (n >= RESULT_MAX_REFUSED)
                return ctx_fail(c, "too many entries");
        uint64_t *p = realloc(r->egress_refused_counts, (n + 1) * sizeof(*p));
        if (!p) {
                au_error_set(c->err, ENOMEM, "parse result");
                return 0;
        }
        p[n] = v;
        r->egress_refused_counts = p;
        c->n_counts = n + 1;
        return 1;
}

static int cb_number(void *ctx, const char *s, size_t len) {
        parse_ctx *c = ctx;
        int handled, k = scalar_start(c, &handled);
        char buf[32];
        uint64_t v;

        if (!k || (handled && !(c->in_denied && !c->skipping)))
                return k;
        if (handled && c->field != F_EGRESS_REFUSED_COUNTS)
                return ctx_fail(c, "expected an array of strings");
        if (len >= sizeof(buf))
                return ctx_fail(c, "number out of range");
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (au_parse_uint64(buf, &v) < 0)
                return ctx_fail(c, "expected a non-negative integer");
        if (handled)
                return add_refused_count(c, v);

        switch (c->field) {
        case F_ATTEMPT:
        case F_HOST_UID:
                if (v > UINT32_MAX)
                        return ctx_fail(c, "number out of range");
                if (c->field == F_ATTEMPT)
                        c->r->attempt = (uint32_t) v;
                else
                        c->r->host_uid = (uint32_t) v;
                break;
        case F_EXIT_CODE:
        case F_SIGNAL:
                if (v > INT_MAX)
                        return ctx_fail(c, "number out of range");
                if (c->field == F_EXIT_CODE)
                        c->r->exit_code = (int) v;
                else
                        c->r->signal = (int) v;
                break;
        case F_WALL_MS:
                c->r->wall_ms = v;
                break;
        case F_CPU_MS:
                c->r->cpu_ms = v;
                break;
        case F_MEMORY_PEAK:
                c->r->memory_peak_bytes = v;
                break;
        case F_OOM_KILLS:
                c->r->oom_kills = v;
                break;
        case F_DENIED_COUNT:
                c->r->denied_count = v;
                break;
        case F_EGRESS_SENT_BYTES:
                c->r->egress_sent_bytes = v;
                c->r->has_egress = true;
                break;
        case F_EGRESS_SENT_PACKETS:
                c->r->egress_sent_packets = v;
                c->r->has_egress = true;
                break;
        case F_EGRESS_RECEIVED_BYTES:
                c->r->egress_received_bytes = v;
                c->r->has_egress = true;
                break;
        case F_EGRESS_RECEIVED_PACKETS:
                c->r->egress_received_packets = v;
                c->r->has_egress = true;
                break;
        default:
                return ctx_fail(c, "unexpected number");
        }
        return value_done(c);
}

/* "2026-11-21T10:00:00.123Z" (any number of fraction digits, or none). */
static int parse_time(const char *s, size_t len, struct timespec *ret) {
        int f[6];
        static const size_t pos[6] = {0, 5, 8, 11, 14, 17}, width[6] = {4, 2, 2, 2, 2, 2};
        static const char sep[] = "--T::";
        struct tm tm = {};
        long nsec = 0;
        size_t i;

        if (len < 20)
                return -EINVAL;
        for (int k = 0; k < 6; k++) {
                f[k] = 0;
                for (size_t j = 0; j < width[k]; j++) {
                        char ch = s[pos[k] + j];
                        if (ch < '0' || ch > '9')
                                return -EINVAL;
                        f[k] = f[k] * 10 + (ch - '0');
                }
                if (k < 5 && s[pos[k] + width[k]] != sep[k])
                        return -EINVAL;
        }
        i = 19;
        if (s[i] == '.') {
                long scale = 100000000;

                i++;
                if (i >= len || s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
                        nsec += (s[i] - '0') * scale;
                        scale /= 10;
                }
        }
        if (i + 1 != len || s[i] != 'Z')
                return -EINVAL;
        if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 60)
                return -EINVAL;
        tm.tm_year = f[0] - 1900;
        tm.tm_mon = f[1] - 1;
        tm.tm_mday = f[2];
        tm.tm_hour = f[3];
        tm.tm_min = f[4];
        tm.tm_sec = f[5];
        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        ret->tv_sec = t;
        ret->tv_nsec = nsec;
        return 0;
}

static int set_string(parse_ctx *c, char **dst, const char *s, size_t len) {
        char *copy;

        if (memchr(s, '\0', len))
                return ctx_fail(c, "must not contain NUL");
        copy = strndup(s, len);
        if (!copy) {
                au_error_set(c->err, ENOMEM, "parse result");
                return 0;
        }
        free(*dst);
        *dst = copy;
        return 1;
}

static int set_output(parse_ctx *c, char **dst, size_t *dst_size, const char *s, size_t len) {
        char *copy = malloc(len + 1);

        if (!copy) {
                au_error_set(c->err, ENOMEM, "parse result");
                return 0;
        }
        memcpy(copy, s, len);
        copy[len] = '\0';
        free(*dst);
        *dst = copy;
        *dst_size = len;
        return 1;
}

static int add_denied(parse_ctx *c, const char *s, size_t len) {
        sbx_result *r = c->r;

        if (memchr(s, '\0', len))
                return ctx_fail(c, "must not contain NUL");
        if (au_strv_consume(&r->denied_syscalls, &r->n_denied_syscalls, strndup(s, len)) < 0) {
                au_error_set(c->err, ENOMEM, "parse result");
                return 0;
        }
        return 1;
}

static int add_refused(parse_ctx *c, const char *s, size_t len) {
        sbx_result *r = c->r;

        if (memchr(s, '\0', len))
                return ctx_fail(c, "must not contain NUL");
        if (r->n_egress_refused >= RESULT_MAX_REFUSED)
                return ctx_fail(c, "too many entries");
        if (au_strv_consume(&r->egress_refused, &r->n_egress_refused, strndup(s, len)) < 0) {
                au_error_set(c->err, ENOMEM, "parse result");
                return 0;
        }
        r->has_egress = true;
        return 1;
}

static int cb_string(void *ctx, const unsigned char *us, size_t len) {
        parse_ctx *c = ctx;
        const char *s = (const char *) us;
        int handled, k = scalar_start(c, &handled);

        if (!k)
                return 0;
        if (handled) {
                if (c->in_denied && !c->skipping && c->field == F_EGRESS_REFUSED_COUNTS)
                        return ctx_fail(c, "expected an array of numbers");
                if (c->in_denied && !c->skipping && c->field == F_EGRESS_REFUSED)
                        return add_refused(c, s, len);
                if (c->in_denied && !c->skipping)
                        return add_denied(c, s, len);
                return 1;
        }

        switch (c->field) {
        case F_ID:
                k = set_string(c, &c->r->id, s, len);
                break;
        case F_NODE:
                k = set_string(c, &c->r->node, s, len);
                break;
        case F_WORKFLOW:
                k = set_string(c, &c->r->workflow, s, len);
                break;
        case F_STEP:
                k = set_string(c, &c->r->step, s, len);
                break;
        case F_ERROR:
                k = set_string(c, &c->r->error, s, len);
                break;
        case F_REASON:
                k = set_string(c, &c->r->reason, s, len);
                break;
        case F_STDOUT:
                k = set_output(c, &c->r->stdout_data, &c->r->stdout_size, s, len);
                break;
        case F_STDERR:
                k = set_output(c, &c->r->stderr_data, &c->r->stderr_size, s, len);
                break;
        case F_OUTCOME: {
                char buf[32];
                sbx_outcome o = _SBX_OUTCOME_INVALID;

                if (len < sizeof(buf) && !memchr(s, '\0', len)) {
                        memcpy(buf, s, len);
                        buf[len] = '\0';
                        o = sbx_outcome_from_string(buf);
                }
                if (o == _SBX_OUTCOME_INVALID)
                        return ctx_fail(c, "unknown outcome");
                c->r->outcome = o;
                break;
        }
        case F_STARTED_AT:
        case F_FINISHED_AT:
                if (parse_time(s, len, c->field == F_STARTED_AT ? &c->r->started_at : &c->r->finished_at) <
                    0)
                        return ctx_fail(c, "expected a UTC time like 2026-11-21T10:00:00.123Z");
                break;
        default:
                return ctx_fail(c, "unexpected string");
        }
        return k ? value_done(c) : 0;
}

static int cb_start_map(void *ctx) {
        parse_ctx *c = ctx;

        if (c->depth == 0) {
                c->depth = 1;
                c->field = F_UNKNOWN;
                return 1;
        }
        if (c->skipping || (c->depth == 1 && c->field == F_UNKNOWN)) {
                c->skipping = true;
                c->depth++;
                return 1;
        }
        return ctx_fail(c, c->in_denied ? "expected an array of strings" : "unexpected object");
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len) {
        parse_ctx *c = ctx;

        if (c->depth != 1 || c->skipping)
                return 1;
        c->field = F_UNKNOWN;
        for (int i = 0; i < _F_MAX; i++)
                if (strlen(field_names[i]) == len && memcmp(field_names[i], key, len) == 0) {
                        if (c->seen & (UINT32_C(1) << i)) {
                                au_error_set_field(c->err, field_names[i], "duplicate field '%s'",
                                                   field_names[i]);
                                return 0;
                        }
                        c->seen |= UINT32_C(1) << i;
                        c->field = i;
                        break;
                }
        /* Fields we do not know (a newer writer) are skipped. */
        return 1;
}

static int cb_end_container(void *ctx) {
        parse_ctx *c = ctx;

        c->depth--;
        if (c->depth == 1) {
                c->skipping = false;
                c->in_denied = false;
                return value_done(c);
        }
        return 1;
}

static int cb_start_array(void *ctx) {
        parse_ctx *c = ctx;

        if (c->depth == 0)
                return ctx_fail(c, "expected an object");
        if (c->skipping || (c->depth == 1 && c->field == F_UNKNOWN)) {
                c->skipping = true;
                c->depth++;
                return 1;
        }
        if (c->depth == 1 && (c->field == F_DENIED_SYSCALLS || c->field == F_EGRESS_REFUSED ||
                              c->field == F_EGRESS_REFUSED_COUNTS)) {
                c->in_denied = true;
                c->depth++;
                return 1;
        }
        return ctx_fail(c, c->in_denied ? "expected an array of strings" : "unexpected array");
}

static const yajl_callbacks result_callbacks = {
        .yajl_null = cb_null,
        .yajl_boolean = cb_boolean,
        .yajl_number = cb_number,
        .yajl_string = cb_string,
        .yajl_start_map = cb_start_map,
        .yajl_map_key = cb_map_key,
        .yajl_end_map = cb_end_container,
        .yajl_start_array = cb_start_array,
        .yajl_end_array = cb_end_container,
};

/*
 * Parses what sbx_result_to_json() writes. Fields may come in any order and
 * may be missing (outcome excepted); fields it does not know are skipped;
 * an unknown outcome, a wrong type or a repeated field is refused with err
 * naming the field. Output keeps NUL bytes. Returns 0, -EINVAL, -E2BIG or
 * -ENOMEM; *ret is untouched on failure.
 */
int sbx_result_from_json(const char *json, size_t len, sbx_result **ret, au_error *err) {
        _cleanup_sbx_result_ sbx_result *r = NULL;
        au_error local = {};
        parse_ctx c = {.err = err ? err : &local, .field = F_UNKNOWN};
        yajl_handle h;
        yajl_status st;

        if (!json && len > 0)
                return au_error_set_field(err, "", "no JSON document");
        if (len > RESULT_MAX_JSON_BYTES) {
                au_error_set_field(err, "", "JSON document is %zu bytes, over the limit of %" PRIu64, len,
                                   RESULT_MAX_JSON_BYTES);
                return -E2BIG;
        }
        r = sbx_result_new();
        if (!r)
                return au_error_set(err, ENOMEM, "parse result");
        c.r = r;

        h = yajl_alloc(&result_callbacks, NULL, &c);
        if (!h)
                return au_error_set(err, ENOMEM, "parse result");
        st = yajl_parse(h, (const unsigned char *) (json ? json : ""), len);
        if (st == yajl_status_ok)
                st = yajl_complete_parse(h);
        if (st != yajl_status_ok) {
                int code = c.err->code == ENOMEM ? -ENOMEM : -EINVAL;

                if (st == yajl_status_error) {
                        unsigned char *msg = yajl_get_error(h, 0, NULL, 0);

                        if (msg) {
                                char *nl = strchr((char *) msg, '\n');
                                if (nl)
                                        *nl = '\0';
                        }
                        au_error_set_field(c.err, "", "invalid JSON: %s",
                                           msg ? (char *) msg : "parse error");
                        if (msg)
                                yajl_free_error(h, msg);
                }
                yajl_free(h);
                return code;
        }
        yajl_free(h);

        if (!(c.seen & (UINT32_C(1) << F_OUTCOME)))
                return au_error_set_field(err, "outcome", "outcome: required");
        if (c.n_counts != r->n_egress_refused)
                return au_error_set_field(err, "egress_refused_counts",
                                          "egress_refused_counts: %zu entries for %zu in egress_refused",
                                          c.n_counts, r->n_egress_refused);
        *ret = TAKE_PTR(r);
        return 0;
}
