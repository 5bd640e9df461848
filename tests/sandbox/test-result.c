/* SPDX-License-Identifier: MIT */
/* Results of runs: sandbox/result.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "common/buf.h"
#include "common/json.h"
#include "sandbox/sandbox.h"
#include "tests/tap.h"

static sbx_result *full_result(void) {
        sbx_result *r = sbx_result_new();

        if (!r)
                return NULL;
        r->id = strdup("run-1");
        r->node = strdup("host-a");
        r->workflow = strdup("wf");
        r->step = strdup("build");
        r->attempt = 3;
        r->outcome = SBX_OUTCOME_SIGNALED;
        r->exit_code = -1;
        r->signal = 9;
        r->wall_ms = 12;
        r->cpu_ms = 3;
        r->memory_peak_bytes = 1048576;
        r->oom_kills = 1;
        r->stdout_data = malloc(6);
        memcpy(r->stdout_data, "a\xFF\0b\xC3", 5);
        r->stdout_size = 5;
        r->stderr_data = strdup("oops\n");
        r->stderr_size = 5;
        r->stdout_truncated = true;
        r->denied_syscalls = calloc(3, sizeof(char *));
        r->denied_syscalls[0] = strdup("mount");
        r->denied_syscalls[1] = strdup("ptrace");
        r->n_denied_syscalls = 2;
        r->denied_count = 7;
        r->started_at = (struct timespec){.tv_sec = 1795255200, .tv_nsec = 123456789};
        r->finished_at = (struct timespec){.tv_sec = 1795255201, .tv_nsec = 5000000};
        r->error = strdup("none really");
        r->reason = strdup("cancelled");
        r->host_uid = 1000042;
        return r;
}

/* The object's keys, comma-separated, in document order. */
static void keys_of(yajl_val v, char *buf, size_t size) {
        size_t n = 0;

        buf[0] = '\0';
        if (!YAJL_IS_OBJECT(v))
                return;
        for (size_t i = 0; i < v->u.object.len; i++)
                n += (size_t) snprintf(buf + n, n < size ? size - n : 0, "%s%s", i ? "," : "",
                                       v->u.object.keys[i]);
}

static void test_to_json(void) {
        _cleanup_sbx_result_ sbx_result *r = full_result();
        _cleanup_free_ char *json = sbx_result_to_json(r, false);
        char errbuf[256], keys[1024];
        yajl_val v;

        ok(json != NULL, "to_json");
        if (!json) {
                skip(12, "no JSON");
                return;
        }
        diag("%s", json);
        /* yajl itself must accept it, whatever the child wrote. */
        v = yajl_tree_parse(json, errbuf, sizeof(errbuf));
        ok(v != NULL, "output is valid JSON for yajl (%s)", v ? "" : errbuf);
        keys_of(v, keys, sizeof(keys));
        ok(strcmp(keys,
                  "id,node,workflow,step,attempt,outcome,exit_code,signal,wall_ms,cpu_ms,memory_peak_bytes,"
                  "oom_kills,stdout,stderr,stdout_truncated,stderr_truncated,denied_syscalls,denied_count,"
                  "started_at,finished_at,error,reason,host_uid") == 0,
           "field order: %s", keys);
        ok(strstr(json, "\"stdout\":\"a\xEF\xBF\xBD\\u0000b\xEF\xBF\xBD\"") != NULL,
           "stdout: invalid bytes are U+FFFD, NUL is \\u0000");
        ok(strstr(json, "\"exit_code\":null,\"signal\":9,") != NULL, "exit_code null, signal 9");
        ok(strstr(json, "\"started_at\":\"2026-11-21T10:00:00.123Z\",\"finished_at\":\"2026-11-21T10:00:01."
                        "005Z\"") != NULL,
           "ISO-8601 times with milliseconds");
        ok(strstr(json, "\"denied_syscalls\":[\"mount\",\"ptrace\"],\"denied_count\":7") != NULL,
           "denied syscalls");
        ok(strstr(json, "\"outcome\":\"signaled\"") && strstr(json, "\"host_uid\":1000042}") &&
                   strstr(json, "\"stdout_truncated\":true,\"stderr_truncated\":false"),
           "outcome, host_uid last, truncation flags");
        yajl_tree_free(v);

        /* The optional fields disappear; null where DESIGN.md says. */
        _cleanup_sbx_result_ sbx_result *m = sbx_result_new();
        m->outcome = SBX_OUTCOME_EXITED;
        m->exit_code = 0;
        _cleanup_free_ char *mj = sbx_result_to_json(m, false);
        v = mj ? yajl_tree_parse(mj, errbuf, sizeof(errbuf)) : NULL;
        keys_of(v, keys, sizeof(keys));
        ok(strcmp(keys,
                  "id,node,outcome,exit_code,signal,wall_ms,cpu_ms,memory_peak_bytes,oom_kills,stdout,"
                  "stderr,"
                  "stdout_truncated,stderr_truncated,denied_syscalls,denied_count,started_at,finished_at") ==
                   0,
           "minimal result fields: %s", keys);
        ok(mj &&
                   strstr(mj, "{\"id\":null,\"node\":null,\"outcome\":\"exited\",\"exit_code\":0,\"signal\":"
                              "null,") &&
                   strstr(mj, "\"stdout\":\"\",\"stderr\":\"\"") && strstr(mj, "\"denied_syscalls\":[]") &&
                   strstr(mj, "\"started_at\":null,\"finished_at\":null}"),
           "minimal result: %s", mj ? mj : "(null)");
        yajl_tree_free(v);

        _cleanup_free_ char *pretty = sbx_result_to_json(r, true);
        v = pretty ? yajl_tree_parse(pretty, errbuf, sizeof(errbuf)) : NULL;
        ok(pretty && strchr(pretty, '\n') && strstr(pretty, "\n  \"id\": \"run-1\"") && v, "pretty output");
        yajl_tree_free(v);

        ok(sbx_result_to_json(NULL, false) == NULL, "to_json(NULL)");
}

static void test_round_trip(void) {
        _cleanup_sbx_result_ sbx_result *r = full_result();
        _cleanup_sbx_result_ sbx_result *back = NULL;
        _cleanup_free_ char *json = sbx_result_to_json(r, false);
        _cleanup_free_ char *json2 = NULL;
        au_error err = {};

        ok(json && sbx_result_from_json(json, strlen(json), &back, &err) == 0 && back, "from_json (%s)",
           err.msg);
        if (!back) {
                skip(5, "no result");
                return;
        }
        json2 = sbx_result_to_json(back, false);
        ok(json2 && strcmp(json, json2) == 0, "round trip is exact");
        ok(back->stdout_size == 9 && memcmp(back->stdout_data, "a\xEF\xBF\xBD\0b\xEF\xBF\xBD", 9) == 0,
           "stdout keeps its NUL byte (sanitized once)");
        ok(back->outcome == SBX_OUTCOME_SIGNALED && back->signal == 9 && back->exit_code == -1 &&
                   back->attempt == 3 && back->host_uid == 1000042 && back->denied_count == 7 &&
                   back->oom_kills == 1,
           "numbers");
        ok(back->started_at.tv_sec == 1795255200 && back->started_at.tv_nsec == 123000000 &&
                   back->finished_at.tv_nsec == 5000000,
           "times (millisecond precision)");
        ok(back->n_denied_syscalls == 2 && strcmp(back->denied_syscalls[1], "ptrace") == 0 &&
                   back->denied_syscalls[2] == NULL && strcmp(back->reason, "cancelled") == 0 &&
                   strcmp(back->workflow, "wf") == 0,
           "strings and lists");
}

static void from_json_refused(const char *json, const char *field, const char *want) {
        sbx_result *r = (sbx_result *) 0x1;
        au_error err = {};
        int k = sbx_result_from_json(json, strlen(json), &r, &err);

        ok(k < 0 && r == (sbx_result *) 0x1 && strcmp(err.field, field) == 0 && strstr(err.msg, want),
           "refused %s: [%s] %s", json, err.field, err.msg);
}

static void test_from_json(void) {
        sbx_result *r = NULL;
        au_error err = {};
        const char *tolerant =
                "{\"outcome\":\"exited\",\"exit_code\":3,\"future\":{\"a\":[1,{\"b\":null}],\"c\":\"d\"},"
                "\"also\":[[],{}],\"more\":1.5,\"stdout\":\"x\",\"signal\":null,\"started_at\":\"2026-01-"
                "02T03:04:05Z\"}";

        ok(sbx_result_from_json(tolerant, strlen(tolerant), &r, &err) == 0 && r && r->exit_code == 3 &&
                   r->stdout_size == 1 && r->outcome == SBX_OUTCOME_EXITED &&
                   r->started_at.tv_sec == 1767323045,
           "unknown fields are skipped (%s)", err.msg);
        sbx_result_free(r);

        from_json_refused("{\"outcome\":\"exploded\"}", "outcome", "outcome: unknown outcome");
        from_json_refused("{\"id\":\"x\"}", "outcome", "outcome: required");
        from_json_refused("{\"outcome\":\"exited\",\"outcome\":\"oom\"}", "outcome",
                          "duplicate field 'outcome'");
        from_json_refused("{\"outcome\":\"exited\",\"wall_ms\":\"1\"}", "wall_ms",
                          "wall_ms: unexpected string");
        from_json_refused("{\"outcome\":\"exited\",\"wall_ms\":-1}", "wall_ms",
                          "expected a non-negative integer");
        from_json_refused("{\"outcome\":\"exited\",\"cpu_ms\":1.5}", "cpu_ms",
                          "expected a non-negative integer");
        from_json_refused("{\"outcome\":\"exited\",\"stdout\":null}", "stdout", "stdout: must not be null");
        from_json_refused("{\"outcome\":\"exited\",\"denied_syscalls\":[1]}", "denied_syscalls",
                          "expected an array of strings");
        from_json_refused("{\"outcome\":\"exited\",\"denied_syscalls\":\"mount\"}", "denied_syscalls",
                          "unexpected string");
        from_json_refused("{\"outcome\":\"exited\",\"stdout_truncated\":1}", "stdout_truncated",
                          "unexpected number");
        from_json_refused("{\"outcome\":\"exited\",\"started_at\":\"yesterday\"}", "started_at",
                          "expected a UTC time");
        from_json_refused("{\"outcome\":\"exited\",\"started_at\":\"2026-13-01T00:00:00Z\"}", "started_at",
                          "expected a UTC time");
        from_json_refused("{\"outcome\":\"exited\",\"id\":\"a\\u0000b\"}", "id", "id: must not contain NUL");
        from_json_refused("{\"outcome\":\"exited\",\"node\":{}}", "node", "unexpected object");
        from_json_refused("[]", "", "expected an object");
        from_json_refused("{\"outcome\":\"exited\"", "", "invalid JSON: parse error: premature EOF");
        from_json_refused("{\"outcome\":\"exited\"} {}", "", "invalid JSON: parse error: trailing garbage");
        from_json_refused("{/**/\"outcome\":\"exited\"}", "", "invalid JSON");
        from_json_refused("", "", "invalid JSON");
}

static void test_new_error(void) {
        _cleanup_sbx_result_ sbx_result *r =
                sbx_result_new_error("run-9", SBX_OUTCOME_REJECTED, "argv: required");
        _cleanup_sbx_result_ sbx_result *n =
                sbx_result_new_error(NULL, SBX_OUTCOME_SANDBOX_ERROR, "clone: EPERM");
        _cleanup_sbx_result_ sbx_result *f = sbx_result_new();

        ok(r && strcmp(r->id, "run-9") == 0 && r->outcome == SBX_OUTCOME_REJECTED &&
                   strcmp(r->error, "argv: required") == 0 && r->exit_code == -1 && r->signal == 0,
           "new_error rejected");
        _cleanup_free_ char *json = r ? sbx_result_to_json(r, false) : NULL;
        ok(json && strstr(json, "\"outcome\":\"rejected\"") && strstr(json, "\"error\":\"argv: required\"}"),
           "rejected result JSON ends with error");
        ok(n && !n->id && n->outcome == SBX_OUTCOME_SANDBOX_ERROR, "new_error without id");
        ok(f && f->outcome == SBX_OUTCOME_SANDBOX_ERROR && f->exit_code == -1,
           "a fresh result never looks like success");
        ok(sbx_result_free(NULL) == NULL, "sbx_result_free(NULL)");
}

static void test_exit_status(void) {
        static const struct {
                sbx_outcome outcome;
                int exit_code, signal, want;
        } cases[] = {
                {SBX_OUTCOME_EXITED, 0, 0, 0},           {SBX_OUTCOME_EXITED, 3, 0, 3},
                {SBX_OUTCOME_EXITED, 255, 0, 255},       {SBX_OUTCOME_EXITED, -1, 0, 125},
                {SBX_OUTCOME_SIGNALED, -1, 9, 137},      {SBX_OUTCOME_SIGNALED, -1, 15, 143},
                {SBX_OUTCOME_SIGNALED, -1, 0, 137},      {SBX_OUTCOME_TIMEOUT, -1, 9, 124},
                {SBX_OUTCOME_CPU_LIMIT, -1, 9, 124},     {SBX_OUTCOME_OOM, -1, 9, 137},
                {SBX_OUTCOME_PIDS_LIMIT, -1, 9, 137},    {SBX_OUTCOME_OUTPUT_LIMIT, -1, 9, 137},
                {SBX_OUTCOME_SANDBOX_ERROR, -1, 0, 125}, {SBX_OUTCOME_REJECTED, -1, 0, 125},
                {_SBX_OUTCOME_INVALID, 0, 0, 125},
        };
        sbx_result r = {};

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                r.outcome = cases[i].outcome;
                r.exit_code = cases[i].exit_code;
                r.signal = cases[i].signal;
                int got = sbx_result_exit_status(&r);
                ok(got == cases[i].want, "exit status of %s (code %d, signal %d) is %d (got %d)",
                   sbx_outcome_to_string(r.outcome) ? sbx_outcome_to_string(r.outcome) : "invalid",
                   cases[i].exit_code, cases[i].signal, cases[i].want, got);
        }
        ok(sbx_result_exit_status(NULL) == 125, "exit status of no result is 125");
}

/* Egress traffic and refusals (issue 13): written only for egress runs, read back exactly. */
static void test_egress(void) {
        _cleanup_sbx_result_ sbx_result *r = full_result();
        _cleanup_sbx_result_ sbx_result *back = NULL;
        au_error err = {};
        _cleanup_free_ char *plain = sbx_result_to_json(r, false);
        ok(plain && !strstr(plain, "egress"), "no egress fields for a run without egress");

        r->has_egress = true;
        r->egress_sent_bytes = 1000;
        r->egress_sent_packets = 10;
        r->egress_received_bytes = 5000;
        r->egress_received_packets = 7;
        au_strv_push(&r->egress_refused, &r->n_egress_refused, "169.254.169.254:80/tcp");
        au_strv_push(&r->egress_refused, &r->n_egress_refused, "10.0.0.1:0/icmp");
        r->egress_refused_counts = calloc(2, sizeof(uint64_t));
        r->egress_refused_counts[0] = 3;
        r->egress_refused_counts[1] = 1;
        _cleanup_free_ char *json = sbx_result_to_json(r, false);
        ok(json && strstr(json, "\"egress_sent_bytes\":1000,\"egress_sent_packets\":10,"
                                "\"egress_received_bytes\":5000,\"egress_received_packets\":7,"
                                "\"egress_refused\":[\"169.254.169.254:80/tcp\",\"10.0.0.1:0/icmp\"],"
                                "\"egress_refused_counts\":[3,1]"),
           "egress fields written: %s", json ? json : "(null)");
        ok(json && sbx_result_from_json(json, strlen(json), &back, &err) == 0 && back && back->has_egress &&
                   back->egress_received_bytes == 5000 && back->n_egress_refused == 2 &&
                   strcmp(back->egress_refused[1], "10.0.0.1:0/icmp") == 0 &&
                   back->egress_refused_counts[0] == 3 && back->egress_refused_counts[1] == 1,
           "egress fields read back (%s)", err.msg);
        _cleanup_free_ char *json2 = back ? sbx_result_to_json(back, false) : NULL;
        ok(json2 && strcmp(json, json2) == 0, "egress round trip is exact");
        from_json_refused(
                "{\"outcome\":\"exited\",\"egress_refused\":[\"a:1/tcp\"],\"egress_refused_counts\":[]}",
                "egress_refused_counts", "0 entries for 1 in egress_refused");
        from_json_refused("{\"outcome\":\"exited\",\"egress_refused\":[1]}", "egress_refused",
                          "expected an array of strings");
        from_json_refused("{\"outcome\":\"exited\",\"egress_refused_counts\":[\"x\"]}",
                          "egress_refused_counts", "expected an array of numbers");
        from_json_refused("{\"outcome\":\"exited\",\"egress_sent_bytes\":-1}", "egress_sent_bytes",
                          "non-negative");
}

int main(void) {
        test_to_json();
        test_round_trip();
        test_from_json();
        test_new_error();
        test_exit_status();
        test_egress();
        return done_testing();
}
