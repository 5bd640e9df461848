/* SPDX-License-Identifier: MIT */
/*
 * Run specs and policies: sandbox/spec.c, sandbox/policy.c, sandbox/names.c;
 * and the uid pool's check against /etc/subuid and /etc/subgid (uidpool.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "sandbox/sandbox.h"
#include "tests/tap.h"

#define MiB (UINT64_C(1024) * 1024)

/* Test JSON is written with ' for " to stay readable. */
static const char *J(const char *s) {
        static char buf[8192];
        size_t i;

        for (i = 0; s[i] && i + 1 < sizeof(buf); i++)
                buf[i] = s[i] == '\'' ? '"' : s[i];
        buf[i] = '\0';
        return buf;
}

static int parse(const char *json, const sbx_policy *p, sbx_spec **ret, au_error *err) {
        au_error_clear(err);
        return sbx_spec_from_json(json, strlen(json), p, ret, err);
}

/* Expects json (with ') to be refused with err.field == field and msg containing want. */
static void refused_p(const char *json, const sbx_policy *p, const char *field, const char *want) {
        sbx_spec *spec = (sbx_spec *) 0x1;
        au_error err;
        const char *doc = J(json);
        int r = parse(doc, p, &spec, &err);

        ok(r < 0 && spec == (sbx_spec *) 0x1 && strcmp(err.field, field) == 0 && strstr(err.msg, want),
           "refused %.160s: [%s] %s", json, err.field, err.msg);
}

static void refused(const char *json, const char *field, const char *want) {
        refused_p(json, NULL, field, want);
}

static sbx_spec *accepted_p(const char *json, const sbx_policy *p) {
        sbx_spec *spec = NULL;
        au_error err;
        int r = parse(J(json), p, &spec, &err);

        ok(r == 0 && spec, "accepted %.160s%s%s", json, r < 0 ? ": " : "", r < 0 ? err.msg : "");
        return spec;
}

static sbx_spec *accepted(const char *json) {
        return accepted_p(json, NULL);
}

static void test_names(void) {
        ok(strcmp(sbx_trust_to_string(SBX_TRUST_PRIVILEGED), "privileged") == 0 &&
                   sbx_trust_from_string("elevated") == SBX_TRUST_ELEVATED &&
                   sbx_trust_from_string("Standard") == _SBX_TRUST_INVALID &&
                   sbx_trust_to_string(_SBX_TRUST_MAX) == NULL,
           "trust names");
        ok(strcmp(sbx_network_to_string(SBX_NET_EGRESS), "egress") == 0 &&
                   sbx_network_from_string("loopback") == SBX_NET_LOOPBACK &&
                   sbx_network_from_string(NULL) == _SBX_NET_INVALID,
           "network names");
        static const char *const outcomes[] = {"exited",       "signaled",      "timeout",
                                               "cpu_limit",    "oom",           "pids_limit",
                                               "output_limit", "sandbox_error", "rejected"};
        bool good = true;
        for (int i = 0; i < _SBX_OUTCOME_MAX; i++)
                good = good && strcmp(sbx_outcome_to_string(i), outcomes[i]) == 0 &&
                       sbx_outcome_from_string(outcomes[i]) == i;
        ok(good && ELEMENTSOF(outcomes) == _SBX_OUTCOME_MAX &&
                   sbx_outcome_from_string("killed") == _SBX_OUTCOME_INVALID,
           "outcome names are DESIGN.md's");
}

static void test_defaults(void) {
        _cleanup_sbx_spec_ sbx_spec *s = accepted("{'argv':['/bin/true']}");
        sbx_policy p;

        sbx_policy_init_default(&p);
        if (!s) {
                skip(9, "no spec");
                return;
        }
        ok(s->trust == SBX_TRUST_STANDARD, "default trust standard");
        ok(s->limits.memory_bytes == 512 * MiB && s->limits.cpu_percent == 50 && s->limits.pids == 256 &&
                   s->limits.wall_ms == 30000 && s->limits.cpu_ms == 20000 &&
                   s->limits.output_bytes == MiB && s->limits.work_bytes == 64 * MiB,
           "standard default limits");
        ok(s->network == SBX_NET_LOOPBACK && !s->network_set, "default network loopback");
        ok(s->cwd && strcmp(s->cwd, "/work") == 0, "default cwd /work");
        ok(s->argc == 1 && strcmp(s->argv[0], "/bin/true") == 0 && s->argv[1] == NULL, "argv");
        ok(s->n_env == 0 && s->n_files == 0 && !s->stdin_data && !s->id && s->attempt == 0,
           "nothing else set");
        ok(p.max_argv == 4096 && p.max_spec_bytes == 64 * MiB && p.max_files == 1024 &&
                   p.default_trust == SBX_TRUST_STANDARD,
           "policy bounds");
        ok(p.level[SBX_TRUST_RESTRICTED].ceilings.memory_bytes == 1024 * MiB &&
                   p.level[SBX_TRUST_RESTRICTED].ceilings.wall_ms == 600000 &&
                   !p.level[SBX_TRUST_RESTRICTED].work_writable &&
                   p.level[SBX_TRUST_RESTRICTED].network_allowed[SBX_NET_NONE] &&
                   !p.level[SBX_TRUST_RESTRICTED].network_allowed[SBX_NET_LOOPBACK],
           "restricted level");
        ok(p.level[SBX_TRUST_ELEVATED].network_allowed[SBX_NET_EGRESS] &&
                   p.level[SBX_TRUST_PRIVILEGED].network_allowed[SBX_NET_EGRESS] &&
                   !p.level[SBX_TRUST_STANDARD].network_allowed[SBX_NET_EGRESS] &&
                   p.level[SBX_TRUST_ELEVATED].ceilings.memory_bytes == 4096 * MiB,
           "elevated and privileged allow egress");

        _cleanup_sbx_spec_ sbx_spec *r = accepted("{'argv':['/bin/true'],'trust':'restricted'}");
        ok(r && r->cwd && strcmp(r->cwd, "/") == 0 && r->network == SBX_NET_NONE &&
                   r->limits.work_bytes == 0 && r->limits.memory_bytes == 256 * MiB && r->limits.pids == 64,
           "restricted defaults: cwd /, no network, no /work");
}

static void test_full(void) {
        _cleanup_sbx_spec_ sbx_spec *s = accepted(
                "{'id':'run-1:a@b.c_d','workflow':'wf1','step':'build','attempt':2,"
                "'argv':['/bin/sh','-c','echo hi',''],'env':{'K':'V','_x1':''},'stdin':'input',"
                "'cwd':'/work/sub','files':{'in.txt':'hello','bin/run':{'content':'#!/bin/sh','mode':493},"
                "'blob':{'base64':'AP/+AQ=='}},'trust':'elevated','limits':{'memory_bytes':1073741824,"
                "'cpu_percent':100,'pids':10,'wall_ms':1000,'cpu_ms':500,'output_bytes':4096,'work_bytes':"
                "4194304},"
                "'network':'none'}");

        if (!s) {
                skip(7, "no spec");
                return;
        }
        ok(strcmp(s->id, "run-1:a@b.c_d") == 0 && strcmp(s->workflow, "wf1") == 0 &&
                   strcmp(s->step, "build") == 0 && s->attempt == 2,
           "id, workflow, step, attempt");
        ok(s->argc == 4 && strcmp(s->argv[2], "echo hi") == 0 && strcmp(s->argv[3], "") == 0 && !s->argv[4],
           "argv");
        ok(s->n_env == 2 && strcmp(s->env[0], "K=V") == 0 && strcmp(s->env[1], "_x1=") == 0 && !s->env[2],
           "env");
        ok(s->stdin_size == 5 && memcmp(s->stdin_data, "input", 5) == 0 && strcmp(s->cwd, "/work/sub") == 0,
           "stdin, cwd");
        ok(s->n_files == 3 && strcmp(s->files[0].name, "in.txt") == 0 && s->files[0].size == 5 &&
                   s->files[0].mode == 0644 && strcmp(s->files[1].name, "bin/run") == 0 &&
                   s->files[1].mode == 0755,
           "text files");
        ok(s->files[2].size == 4 && memcmp(s->files[2].data, "\0\xFF\xFE\x01", 4) == 0 &&
                   s->files[2].mode == 0644,
           "binary file from base64");
        ok(s->trust == SBX_TRUST_ELEVATED && s->network == SBX_NET_NONE && s->network_set &&
                   s->limits.memory_bytes == 1024 * MiB && s->limits.pids == 10 &&
                   s->limits.work_bytes == 4 * MiB,
           "trust, network, limits");

        /* Round trip through sbx_spec_to_json(). */
        _cleanup_free_ char *json = sbx_spec_to_json(s);
        _cleanup_sbx_spec_ sbx_spec *t = NULL;
        au_error err = {};
        ok(json && strstr(json, "\"blob\":{\"base64\":\"AP/+AQ==\",\"mode\":420}") &&
                   strstr(json, "\"bin/run\":{\"content\":\"#!/bin/sh\",\"mode\":493}") &&
                   strstr(json, "\"in.txt\":\"hello\""),
           "to_json writes files by kind: %s", json ? json : "(null)");
        ok(json && sbx_spec_from_json(json, strlen(json), NULL, &t, &err) == 0,
           "to_json output parses back (%s)", err.msg);
        _cleanup_free_ char *json2 = t ? sbx_spec_to_json(t) : NULL;
        ok(json && json2 && strcmp(json, json2) == 0, "round trip is stable");
        ok(t && t->n_files == 3 && t->files[2].size == 4 &&
                   memcmp(t->files[2].data, "\0\xFF\xFE\x01", 4) == 0 && t->files[1].mode == 0755 &&
                   t->limits.cpu_ms == 500 && t->attempt == 2 && t->n_env == 2,
           "round trip keeps binary files, modes, limits");
}

static void test_wrong_types(void) {
        refused("[]", "", "expected an object");
        refused("'x'", "", "expected an object");
        refused("{'argv':['/bin/true'],'id':1}", "id", "id: expected a string");
        refused("{'argv':['/bin/true'],'workflow':true}", "workflow", "workflow: expected a string");
        refused("{'argv':['/bin/true'],'step':[]}", "step", "step: expected a string");
        refused("{'argv':['/bin/true'],'attempt':'1'}", "attempt",
                "attempt: expected a non-negative integer");
        refused("{'argv':['/bin/true'],'attempt':1.5}", "attempt",
                "attempt: expected a non-negative integer");
        refused("{'argv':'/bin/true'}", "argv", "argv: expected an array");
        refused("{'argv':['/bin/true',1]}", "argv[1]", "argv[1]: expected a string");
        refused("{'argv':['/bin/true',null]}", "argv[1]", "argv[1]: expected a string");
        refused("{'argv':['/bin/true'],'env':['K=V']}", "env", "env: expected an object");
        refused("{'argv':['/bin/true'],'env':{'K':1}}", "env.K", "env.K: expected a string");
        refused("{'argv':['/bin/true'],'stdin':1}", "stdin", "stdin: expected a string");
        refused("{'argv':['/bin/true'],'stdin':null}", "stdin", "stdin: expected a string");
        refused("{'argv':['/bin/true'],'cwd':{}}", "cwd", "cwd: expected a string");
        refused("{'argv':['/bin/true'],'files':['a']}", "files", "files: expected an object");
        refused("{'argv':['/bin/true'],'files':{'a':1}}", "files.a",
                "files.a: expected a string or an object");
        refused("{'argv':['/bin/true'],'files':{'a':{'content':1}}}", "files.a.content",
                "files.a.content: expected a string");
        refused("{'argv':['/bin/true'],'files':{'a':{'base64':false}}}", "files.a.base64",
                "files.a.base64: expected a string");
        refused("{'argv':['/bin/true'],'files':{'a':{'content':'x','mode':'0644'}}}", "files.a.mode",
                "files.a.mode: expected a non-negative integer");
        refused("{'argv':['/bin/true'],'trust':1}", "trust", "trust: expected a string");
        refused("{'argv':['/bin/true'],'limits':[]}", "limits", "limits: expected an object");
        refused("{'argv':['/bin/true'],'limits':{'memory_bytes':'1G'}}", "limits.memory_bytes",
                "limits.memory_bytes: expected a non-negative integer");
        refused("{'argv':['/bin/true'],'limits':{'pids':-1}}", "limits.pids",
                "limits.pids: expected a non-negative integer");
        refused("{'argv':['/bin/true'],'limits':{'wall_ms':1.5}}", "limits.wall_ms",
                "limits.wall_ms: expected a non-negative integer");
        refused("{'argv':['/bin/true'],'limits':{'cpu_ms':1e3}}", "limits.cpu_ms",
                "limits.cpu_ms: expected a non-negative integer");
        refused("{'argv':['/bin/true'],'network':true}", "network", "network: expected a string");
}

static void test_unknown_and_missing(void) {
        refused("{'argv':['/bin/true'],'node_selector':'a'}", "node_selector",
                "unknown field 'node_selector'");
        refused("{'argv':['/bin/true'],'limits':{'swap_bytes':1}}", "limits.swap_bytes",
                "unknown field 'limits.swap_bytes'");
        refused("{'argv':['/bin/true'],'files':{'a':{'content':'x','owner':0}}}", "files.a.owner",
                "unknown field 'files.a.owner'");
        refused("{'argv':['/bin/true'],'id':'a','id':'b'}", "id", "duplicate field 'id'");
        refused("{'argv':['/bin/true'],'env':{'A':'1','A':'2'}}", "env.A", "duplicate field 'env.A'");
        refused("{'id':'x'}", "argv", "argv: required");
        refused("{}", "argv", "argv: required");
        refused("{'argv':['/bin/true'],'trust':'root'}", "trust", "trust: unknown trust level 'root'");
        refused("{'argv':['/bin/true'],'network':'host'}", "network", "network: unknown network 'host'");
}

static void test_limits(void) {
        static const struct {
                const char *name;
                const char *over;
                const char *ceiling;
        } cases[] = {
                {"memory_bytes", "4294967297", "4294967296"},
                {"cpu_percent", "201", "200"},
                {"pids", "1025", "1024"},
                {"wall_ms", "3600001", "3600000"},
                {"cpu_ms", "3600001", "3600000"},
                {"output_bytes", "67108865", "67108864"},
                {"work_bytes", "1073741825", "1073741824"},
        };
        char json[256], want[256], field[64];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                snprintf(json, sizeof(json), "{'argv':['/bin/true'],'limits':{'%s':%s}}", cases[i].name,
                         cases[i].over);
                snprintf(want, sizeof(want), "limits.%s: %s exceeds the standard ceiling of %s",
                         cases[i].name, cases[i].over, cases[i].ceiling);
                snprintf(field, sizeof(field), "limits.%s", cases[i].name);
                refused(json, field, want);
                /* Exactly at the ceiling is fine. */
                snprintf(json, sizeof(json), "{'argv':['/bin/true'],'limits':{'%s':%s}}", cases[i].name,
                         cases[i].ceiling);
                _cleanup_sbx_spec_ sbx_spec *s = accepted(json);
        }
        refused("{'argv':['/bin/true'],'limits':{'memory_bytes':8589934592}}", "limits.memory_bytes",
                "limits.memory_bytes: 8589934592 exceeds the standard ceiling of 4294967296");
        refused("{'argv':['/bin/true'],'trust':'restricted','limits':{'memory_bytes':2147483648}}",
                "limits.memory_bytes",
                "limits.memory_bytes: 2147483648 exceeds the restricted ceiling of 1073741824");
        refused("{'argv':['/bin/true'],'limits':{'cpu_ms':18446744073709551616}}", "limits.cpu_ms",
                "out of range");
        refused("{'argv':['/bin/true'],'limits':{'pids':4294967296}}", "limits.pids", "out of range");

        /* Absurd values. */
        refused("{'argv':['/bin/true'],'limits':{'memory_bytes':1024}}", "limits.memory_bytes",
                "limits.memory_bytes: 1024 is below the minimum of 4194304");
        refused("{'argv':['/bin/true'],'limits':{'memory_bytes':0}}", "limits.memory_bytes",
                "limits.memory_bytes: expected a positive integer");
        refused("{'argv':['/bin/true'],'limits':{'cpu_percent':0}}", "limits.cpu_percent",
                "limits.cpu_percent: expected a positive integer");
        refused("{'argv':['/bin/true'],'limits':{'pids':0}}", "limits.pids",
                "limits.pids: expected a positive integer");
        refused("{'argv':['/bin/true'],'limits':{'wall_ms':0}}", "limits.wall_ms",
                "limits.wall_ms: expected a positive integer");
        refused("{'argv':['/bin/true'],'limits':{'output_bytes':0}}", "limits.output_bytes",
                "limits.output_bytes: expected a positive integer");
        refused("{'argv':['/bin/true'],'limits':{'cpu_ms':0}}", "limits.cpu_ms",
                "limits.cpu_ms: expected a positive integer");
        refused("{'argv':['/bin/true'],'limits':{'work_bytes':0}}", "limits.work_bytes",
                "limits.work_bytes: expected a positive integer");
        _cleanup_sbx_spec_ sbx_spec *r =
                accepted("{'argv':['/bin/true'],'trust':'restricted','limits':{'work_bytes':0}}");
        refused("{'argv':['/bin/true'],'trust':'restricted','limits':{'work_bytes':1048576}}",
                "limits.work_bytes", "limits.work_bytes: the restricted level has no /work");
}

static void test_ids(void) {
        char json[512];

        refused("{'argv':['/bin/true'],'id':''}", "id", "id: must be 1 to 128 characters");
        refused("{'argv':['/bin/true'],'id':'a b'}", "id", "id: invalid character at offset 1");
        refused("{'argv':['/bin/true'],'id':'a/b'}", "id", "id: invalid character");
        refused("{'argv':['/bin/true'],'id':'caf\xC3\xA9'}", "id", "id: invalid character at offset 3");
        refused("{'argv':['/bin/true'],'id':'a\\nb'}", "id", "id: invalid character");
        refused("{'argv':['/bin/true'],'workflow':'w;rm'}", "workflow", "workflow: invalid character");
        refused("{'argv':['/bin/true'],'step':''}", "step", "step: must be 1 to 128");
        refused("{'argv':['/bin/true'],'attempt':0}", "attempt", "attempt: must be at least 1");
        snprintf(json, sizeof(json), "{'argv':['/bin/true'],'id':'%0129d'}", 0);
        refused(json, "id", "id: must be 1 to 128 characters");
        snprintf(json, sizeof(json), "{'argv':['/bin/true'],'id':'%0128d'}", 0);
        _cleanup_sbx_spec_ sbx_spec *s = accepted(json);
}

static void test_argv_env(void) {
        sbx_policy p;

        refused("{'argv':[]}", "argv", "argv: must not be empty");
        refused("{'argv':['bin/true']}", "argv[0]", "argv[0]: must be an absolute path or a program name");
        refused("{'argv':['./true']}", "argv[0]", "argv[0]: must be an absolute path or a program name");
        refused("{'argv':['']}", "argv[0]", "argv[0]: must be an absolute path or a program name");
        {
                _cleanup_sbx_spec_ sbx_spec *s = accepted("{'argv':['true']}");
                ok(s && strcmp(s->argv[0], "true") == 0,
                   "a program name without '/' is accepted (looked up on PATH)");
        }
        sbx_policy_init_default(&p);
        p.max_argv = 2;
        refused_p("{'argv':['/bin/echo','a','b']}", &p, "argv", "argv: 3 entries, over the limit of 2");
        refused("{'argv':['/bin/true'],'env':{'1A':'x'}}", "env.1A", "env.1A: invalid variable name");
        refused("{'argv':['/bin/true'],'env':{'A-B':'x'}}", "env.A-B", "invalid variable name");
        refused("{'argv':['/bin/true'],'env':{'':'x'}}", "env.", "invalid variable name");
        refused("{'argv':['/bin/true'],'env':{'A=B':'x'}}", "env.A=B", "invalid variable name");

        /* 257 variables. */
        char *big = malloc(257 * 16 + 64);
        size_t n = (size_t) sprintf(big, "{\"argv\":[\"/bin/true\"],\"env\":{");
        for (int i = 0; i < 257; i++)
                n += (size_t) sprintf(big + n, "%s\"V%d\":\"\"", i ? "," : "", i);
        sprintf(big + n, "}}");
        sbx_spec *s = NULL;
        au_error err;
        ok(parse(big, NULL, &s, &err) == -EINVAL && strcmp(err.field, "env") == 0 &&
                   strstr(err.msg, "env: 257 entries, over the limit of 256"),
           "257 env entries refused: %s", err.msg);
        free(big);

        /* argv and env over 1 MiB together. */
        size_t half = 600 * 1024;
        big = malloc(2 * half + 128);
        n = (size_t) sprintf(big, "{\"argv\":[\"/bin/true\",\"");
        memset(big + n, 'a', half);
        n += half;
        n += (size_t) sprintf(big + n, "\"],\"env\":{\"K\":\"");
        memset(big + n, 'b', half);
        n += half;
        sprintf(big + n, "\"}}");
        ok(parse(big, NULL, &s, &err) == -EINVAL && strcmp(err.field, "argv") == 0 &&
                   strstr(err.msg, "over the limit of 1048576"),
           "argv+env over 1 MiB refused: %s", err.msg);
        free(big);

        /* stdin over 16 MiB. */
        size_t sz = 16 * MiB + 1;
        big = malloc(sz + 64);
        n = (size_t) sprintf(big, "{\"argv\":[\"/bin/true\"],\"stdin\":\"");
        memset(big + n, 'x', sz);
        n += sz;
        sprintf(big + n, "\"}");
        ok(parse(big, NULL, &s, &err) == -EINVAL && strcmp(err.field, "stdin") == 0 &&
                   strstr(err.msg, "16777217 bytes, over the limit of 16777216"),
           "stdin over 16 MiB refused: %s", err.msg);
        free(big);
}

static void test_cwd(void) {
        char json[5000];

        refused("{'argv':['/bin/true'],'cwd':'work'}", "cwd", "cwd: must be an absolute path");
        refused("{'argv':['/bin/true'],'cwd':'/work/../etc'}", "cwd",
                "cwd: '..' components are not allowed");
        refused("{'argv':['/bin/true'],'cwd':'/..'}", "cwd", "'..'");
        refused("{'argv':['/bin/true'],'trust':'restricted','cwd':'/work/x'}", "cwd",
                "cwd: the restricted level has no /work");
        refused("{'argv':['/bin/true'],'trust':'restricted','cwd':'//work'}", "cwd", "no /work");
        _cleanup_sbx_spec_ sbx_spec *a =
                accepted("{'argv':['/bin/true'],'trust':'restricted','cwd':'/workshop'}");
        _cleanup_sbx_spec_ sbx_spec *b = accepted("{'argv':['/bin/true'],'cwd':'/a..b/.../x'}");
        int n = snprintf(json, sizeof(json), "{'argv':['/bin/true'],'cwd':'/");
        memset(json + n, 'a', 4096);
        snprintf(json + n + 4096, sizeof(json) - (size_t) n - 4096, "'}");
        refused(json, "cwd", "cwd: longer than 4096 bytes");
}

static void test_files(void) {
        char json[9000];
        int n;

        refused("{'argv':['/bin/true'],'files':{'../x':'a'}}", "files", "files: invalid name '../x'");
        refused("{'argv':['/bin/true'],'files':{'/abs':'a'}}", "files",
                "files: invalid name '/abs': not relative");
        refused("{'argv':['/bin/true'],'files':{'a//b':'a'}}", "files",
                "invalid name 'a//b': empty path component");
        refused("{'argv':['/bin/true'],'files':{'.':'a'}}", "files", "invalid name '.'");
        refused("{'argv':['/bin/true'],'files':{'a/./b':'a'}}", "files", "invalid name 'a/./b'");
        refused("{'argv':['/bin/true'],'files':{'a/..':'a'}}", "files", "invalid name 'a/..'");
        refused("{'argv':['/bin/true'],'files':{'a/':'a'}}", "files",
                "invalid name 'a/': empty path component");
        refused("{'argv':['/bin/true'],'files':{'':'a'}}", "files", "invalid name '': empty");
        refused("{'argv':['/bin/true'],'files':{'a':'x','a/b':'y'}}", "files.a/b",
                "files.a/b: conflicts with files.a");
        refused("{'argv':['/bin/true'],'files':{'a/b/c':'x','a/b':'y'}}", "files.a/b",
                "conflicts with files.a/b/c");
        _cleanup_sbx_spec_ sbx_spec *ok1 =
                accepted("{'argv':['/bin/true'],'files':{'a/b':'x','a/c':'y','ab':'z','..x':''}}");

        n = snprintf(json, sizeof(json), "{'argv':['/bin/true'],'files':{'");
        memset(json + n, 'a', 256);
        snprintf(json + n + 256, sizeof(json) - (size_t) n - 256, "':'x'}}");
        refused(json, "files", "longer than 255 bytes");
        n = snprintf(json, sizeof(json), "{'argv':['/bin/true'],'files':{'");
        for (int i = 0; i < 20; i++) {
                memset(json + n, 'a', 250);
                n += 250;
                json[n++] = '/';
        }
        json[n++] = 'x';
        snprintf(json + n, sizeof(json) - (size_t) n, "':'x'}}");
        refused(json, "files", "longer than 4096 bytes");

        refused("{'argv':['/bin/true'],'files':{'a':{'content':'x','base64':'eA=='}}}", "files.a",
                "files.a: expected exactly one of");
        refused("{'argv':['/bin/true'],'files':{'a':{'mode':420}}}", "files.a", "expected exactly one of");
        refused("{'argv':['/bin/true'],'files':{'a':{'base64':'eA='}}}", "files.a.base64",
                "files.a.base64: invalid base64");
        refused("{'argv':['/bin/true'],'files':{'a':{'base64':'e A=='}}}", "files.a.base64",
                "invalid base64");
        refused("{'argv':['/bin/true'],'files':{'a':{'content':'x','mode':2541}}}", "files.a.mode",
                "files.a.mode: 04755 is not permission bits");
        refused("{'argv':['/bin/true'],'files':{'a':{'content':'x','mode':512}}}", "files.a.mode",
                "01000 is not");
        refused("{'argv':['/bin/true'],'files':{'a':{'content':'x','mode':-1}}}", "files.a.mode",
                "expected a non-negative");
        refused("{'argv':['/bin/true'],'trust':'restricted','files':{'a':'x'}}", "files",
                "files: the restricted level has no /work");
        _cleanup_sbx_spec_ sbx_spec *none =
                accepted("{'argv':['/bin/true'],'trust':'restricted','files':{}}");
}

static void test_files_limits(void) {
        sbx_policy p;

        sbx_policy_init_default(&p);
        p.max_files = 2;
        refused_p("{'argv':['/bin/true'],'files':{'a':'','b':'','c':''}}", &p, "files",
                  "files: 3 entries, over the limit of 2");
        _cleanup_sbx_spec_ sbx_spec *two = accepted_p("{'argv':['/bin/true'],'files':{'a':'','b':''}}", &p);

        /* Files must fit /work: make the ceiling tiny so that the total is over it. */
        sbx_policy_init_default(&p);
        p.level[SBX_TRUST_STANDARD].defaults.work_bytes = 4;
        p.level[SBX_TRUST_STANDARD].ceilings.work_bytes = 4;
        refused_p("{'argv':['/bin/true'],'files':{'a':'abc','b':'de'}}", &p, "files",
                  "files: 5 bytes in total, over limits.work_bytes of 4");
        _cleanup_sbx_spec_ sbx_spec *fits =
                accepted_p("{'argv':['/bin/true'],'files':{'a':'ab','b':'cd'}}", &p);
}

static void test_network_levels(void) {
        sbx_policy p;

        refused("{'argv':['/bin/true'],'trust':'restricted','network':'loopback'}", "network",
                "network: 'loopback' is not allowed at the restricted level");
        refused("{'argv':['/bin/true'],'network':'egress'}", "network",
                "network: 'egress' is not allowed at the standard level");
        _cleanup_sbx_spec_ sbx_spec *s = accepted("{'argv':['/bin/true'],'network':'none'}");
        ok(s && s->network == SBX_NET_NONE && s->network_set, "network none at standard");

        sbx_policy_init_default(&p);
        p.level[SBX_TRUST_ELEVATED].enabled = false;
        refused_p("{'argv':['/bin/true'],'trust':'elevated'}", &p, "trust",
                  "trust: the elevated level is disabled on this node");

        /*
         * egress: allowed by the policy at elevated and privileged, but no node
         * can give it yet, so the spec itself is refused (rejected), naming the
         * field, instead of failing as sandbox_error on every node it is moved to.
         */
        sbx_policy_init_default(&p);
        p.level[SBX_TRUST_PRIVILEGED].enabled = true;
        refused("{'argv':['/bin/true'],'trust':'elevated','network':'egress'}", "network",
                "network: egress is not configured on this node");
        refused_p("{'argv':['/bin/true'],'trust':'privileged','network':'egress'}", &p, "network",
                  "network: egress is not configured on this node");
        _cleanup_sbx_spec_ sbx_spec *e =
                accepted("{'argv':['/bin/true'],'trust':'elevated','network':'loopback'}");
        ok(e && e->network == SBX_NET_LOOPBACK, "elevated with loopback is accepted");
        au_error err = {};
        sbx_spec h = {.argv = (char *[]){"/bin/true", NULL},
                      .trust = SBX_TRUST_ELEVATED,
                      .network = SBX_NET_EGRESS,
                      .network_set = true};
        ok(sbx_spec_apply_policy(&h, &p, &err) == -EINVAL && strcmp(err.field, "network") == 0 &&
                   strstr(err.msg, "egress is not configured on this node"),
           "hand-built egress at elevated refused: %s", err.msg);
        free(h.cwd);
}

static void test_documents(void) {
        sbx_policy p;
        sbx_spec *s = NULL;
        au_error err;
        static const char nul[] = "{\"argv\":[\"/bin/true\"]}\0{}";

        sbx_policy_init_default(&p);
        p.max_spec_bytes = 30;
        refused_p("{'argv':['/bin/true'],'id':'abcdefghij'}", &p, "", "over the limit of 30 bytes");
        ok(parse(J("{'argv':['/bin/true'],'id':'abcdefghij'}"), &p, &s, &err) == -E2BIG,
           "oversized is -E2BIG");

        au_error_clear(&err);
        ok(sbx_spec_from_json(nul, sizeof(nul) - 1, NULL, &s, &err) == -EINVAL && !s &&
                   strstr(err.msg, "NUL byte at offset 22"),
           "embedded NUL refused: %s", err.msg);
        refused("{'argv':['/bin/true'],'stdin':'a\\u0000b'}", "", "\\u0000");
        refused("{'argv':['/bin/true'],", "", "invalid JSON: parse error: premature EOF");
        refused("{'argv':['/bin/true']}}", "", "invalid JSON: parse error: trailing garbage");
        refused("{argv:['/bin/true']}", "", "invalid JSON: lexical error");
        refused("", "", "invalid JSON");
        refused("{'argv':['/bin/true'],'stdin':'\xC3'}", "", "invalid JSON");
}

static void test_hand_built(void) {
        sbx_spec s = {};
        char *argv[] = {(char *) "/bin/echo", (char *) "hi", NULL};
        char *env[] = {(char *) "PATH=/bin", NULL};
        char *bad_env[] = {(char *) "NOEQUALS", NULL};
        au_error err = {};
        sbx_policy p;

        sbx_policy_init_default(&p);
        s.argv = argv;
        s.env = env;
        s.trust = _SBX_TRUST_INVALID;
        ok(sbx_spec_apply_policy(&s, &p, &err) == 0 && s.trust == SBX_TRUST_STANDARD && s.argc == 2 &&
                   s.n_env == 1 && s.limits.pids == 256 && s.network == SBX_NET_LOOPBACK && s.cwd &&
                   strcmp(s.cwd, "/work") == 0,
           "hand-built spec filled from policy (%s)", err.msg);
        sbx_limits before = s.limits;
        ok(sbx_spec_apply_policy(&s, &p, &err) == 0 && memcmp(&before, &s.limits, sizeof(before)) == 0 &&
                   strcmp(s.cwd, "/work") == 0,
           "apply_policy is idempotent");
        free(s.cwd);

        /* Zero-initialised trust is restricted, not "the default". */
        sbx_spec z = {.argv = argv};
        ok(sbx_spec_apply_policy(&z, &p, &err) == 0 && z.trust == SBX_TRUST_RESTRICTED &&
                   strcmp(z.cwd, "/") == 0 && z.network == SBX_NET_NONE,
           "zero trust means restricted");
        free(z.cwd);

        sbx_spec h = {.argv = argv, .trust = SBX_TRUST_STANDARD, .limits = {.memory_bytes = 8 * 1024 * MiB}};
        au_error_clear(&err);
        ok(sbx_spec_apply_policy(&h, &p, &err) == -EINVAL &&
                   strcmp(err.msg,
                          "limits.memory_bytes: 8589934592 exceeds the standard ceiling of 4294967296") == 0,
           "hand-built over the ceiling: %s", err.msg);
        free(h.cwd);

        sbx_spec e = {.argv = argv, .env = bad_env, .trust = SBX_TRUST_STANDARD};
        au_error_clear(&err);
        ok(sbx_spec_apply_policy(&e, &p, &err) == -EINVAL && strcmp(err.field, "env[0]") == 0,
           "hand-built bad env: %s", err.msg);
        free(e.cwd);

        sbx_file f = {.name = (char *) "x", .data = (char *) "1", .size = 1, .mode = 04755};
        sbx_spec m = {.argv = argv, .files = &f, .n_files = 1, .trust = SBX_TRUST_STANDARD};
        au_error_clear(&err);
        ok(sbx_spec_apply_policy(&m, &p, &err) == -EINVAL && strcmp(err.field, "files.x.mode") == 0,
           "hand-built setuid file refused: %s", err.msg);
        free(m.cwd);

        sbx_spec t = {.argv = argv, .trust = (sbx_trust) 7};
        au_error_clear(&err);
        ok(sbx_spec_apply_policy(&t, &p, &err) == -EINVAL && strcmp(err.field, "trust") == 0,
           "out-of-range trust refused: %s", err.msg);
        free(t.cwd);

        sbx_spec n = {
                .argv = argv, .trust = SBX_TRUST_STANDARD, .network = SBX_NET_EGRESS, .network_set = true};
        au_error_clear(&err);
        ok(sbx_spec_apply_policy(&n, &p, &err) == -EINVAL && strcmp(err.field, "network") == 0,
           "hand-built egress at standard refused: %s", err.msg);
        free(n.cwd);
        ok(sbx_spec_free(NULL) == NULL, "sbx_spec_free(NULL)");
}

static int write_policy(char *path, const char *json) {
        int fd = mkstemp(path);

        if (fd < 0)
                return -errno;
        const char *doc = J(json);
        ssize_t n = write(fd, doc, strlen(doc));
        close(fd);
        return n == (ssize_t) strlen(doc) ? 0 : -EIO;
}

static void policy_refused(const char *json, const char *field, const char *want) {
        char path[] = "/tmp/test-spec-policy-XXXXXX";
        sbx_policy p, before;
        au_error err = {};

        sbx_policy_init_default(&p);
        p.max_files = 7;
        before = p;
        if (write_policy(path, json) < 0) {
                skip(1, "cannot write a temporary file");
                return;
        }
        ok(sbx_policy_load(path, &p, &err) < 0 && memcmp(&p, &before, sizeof(p)) == 0 &&
                   strcmp(err.field, field) == 0 && strstr(err.msg, want),
           "policy refused %s: [%s] %s", json, err.field, err.msg);
        unlink(path);
}

/* Loads json (with ') over the built-in policy into *p; false (and a failed test) if it does not load. */
static bool load_policy(const char *json, sbx_policy *p) {
        char path[] = "/tmp/test-spec-policy-XXXXXX";
        au_error err = {};
        int r;

        sbx_policy_init_default(p);
        if (write_policy(path, json) < 0) {
                ok(false, "cannot write a temporary file");
                return false;
        }
        r = sbx_policy_load(path, p, &err);
        unlink(path);
        if (r < 0) {
                ok(false, "policy %s loads: %s", json, err.msg);
                return false;
        }
        return true;
}

/* Who may submit each level: "roles" in the policy, sbx_policy_allows_role(). */
static void test_roles(void) {
        static const char *const roles[] = {"viewer", "operator", "admin"};
        sbx_policy p;
        char got[256] = "";

        sbx_policy_init_default(&p);
        /* One letter per level and role: the whole built-in table at once. */
        for (int t = 0; t < _SBX_TRUST_MAX; t++) {
                if (t > 0)
                        strcat(got, " ");
                strcat(got, sbx_trust_to_string(t));
                strcat(got, ":");
                for (size_t i = 0; i < ELEMENTSOF(roles); i++)
                        strcat(got, sbx_policy_allows_role(&p, t, roles[i]) ? "y" : "n");
        }
        ok(strcmp(got, "restricted:nyy standard:nyy elevated:nny privileged:nnn") == 0,
           "built-in: operator and admin submit restricted and standard, admin elevated, nobody privileged "
           "(viewer/operator/admin: %s)",
           got);
        ok(!p.level[SBX_TRUST_PRIVILEGED].enabled && p.level[SBX_TRUST_PRIVILEGED].roles[SBX_ROLE_ADMIN] &&
                   !p.level[SBX_TRUST_PRIVILEGED].roles[SBX_ROLE_OPERATOR],
           "built-in privileged is disabled; enabling it gives it to admins only");
        ok(!sbx_policy_allows_role(&p, SBX_TRUST_STANDARD, NULL) &&
                   !sbx_policy_allows_role(&p, SBX_TRUST_STANDARD, "Admin") &&
                   !sbx_policy_allows_role(&p, SBX_TRUST_STANDARD, "root") &&
                   !sbx_policy_allows_role(&p, _SBX_TRUST_INVALID, "admin") &&
                   !sbx_policy_allows_role(&p, _SBX_TRUST_MAX, "admin") &&
                   !sbx_policy_allows_role(NULL, SBX_TRUST_STANDARD, "admin"),
           "unknown roles, levels and a NULL policy allow nothing");
        ok(strcmp(sbx_role_to_string(SBX_ROLE_OPERATOR), "operator") == 0 &&
                   sbx_role_from_string("viewer") == SBX_ROLE_VIEWER &&
                   sbx_role_from_string("nobody") == _SBX_ROLE_INVALID &&
                   sbx_role_to_string(_SBX_ROLE_MAX) == NULL,
           "role names");

        if (load_policy(
                    "{'levels':{'privileged':{'enabled':true},'elevated':{'roles':['operator','admin']},"
                    "'standard':{'roles':['admin']},'restricted':{'roles':['viewer','operator','admin']}}}",
                    &p)) {
                ok(sbx_policy_allows_role(&p, SBX_TRUST_PRIVILEGED, "admin") &&
                           !sbx_policy_allows_role(&p, SBX_TRUST_PRIVILEGED, "operator"),
                   "privileged enabled by the file: admins only (the built-in list)");
                ok(sbx_policy_allows_role(&p, SBX_TRUST_ELEVATED, "operator") &&
                           !sbx_policy_allows_role(&p, SBX_TRUST_STANDARD, "operator") &&
                           sbx_policy_allows_role(&p, SBX_TRUST_STANDARD, "admin") &&
                           sbx_policy_allows_role(&p, SBX_TRUST_RESTRICTED, "viewer"),
                   "a level's roles list replaces the built-in one whole");
        }
        if (load_policy("{'levels':{'standard':{'roles':[]},'elevated':{'enabled':false}}}", &p))
                ok(!sbx_policy_allows_role(&p, SBX_TRUST_STANDARD, "admin") &&
                           !sbx_policy_allows_role(&p, SBX_TRUST_ELEVATED, "admin") &&
                           sbx_policy_allows_role(&p, SBX_TRUST_RESTRICTED, "operator"),
                   "an empty roles list and a disabled level admit nobody");

        policy_refused("{'levels':{'elevated':{'roles':['admin','root']}}}", "levels.elevated.roles[1]",
                       "levels.elevated.roles[1]: unknown role 'root'");
        policy_refused("{'levels':{'elevated':{'roles':'admin'}}}", "levels.elevated.roles",
                       "levels.elevated.roles");
        policy_refused("{'levels':{'elevated':{'roles':[1]}}}", "levels.elevated.roles[0]",
                       "levels.elevated.roles[0]");
}

static void test_policy_load(void) {
        char path[] = "/tmp/test-spec-policy-XXXXXX";
        sbx_policy p;
        au_error err = {};

        if (write_policy(path,
                         "{'default_trust':'restricted','max_argv':16,'max_spec_bytes':100000,'max_files':3,"
                         "'levels':{'standard':{'enabled':false},'elevated':{'network':{'default':'none',"
                         "'allowed':['none','egress']},'defaults':{'pids':100},'ceilings':{'pids':200}},"
                         "'restricted':{'work':true,'defaults':{'work_bytes':1048576},"
                         "'ceilings':{'work_bytes':2097152}}}}") < 0) {
                skip(4, "cannot write a temporary file");
                return;
        }
        memset(&p, 0xAA, sizeof(p));
        ok(sbx_policy_load(path, &p, &err) == 0, "good policy loads (%s)", err.msg);
        unlink(path);
        ok(p.default_trust == SBX_TRUST_RESTRICTED && p.max_argv == 16 && p.max_spec_bytes == 100000 &&
                   p.max_files == 3 && !p.level[SBX_TRUST_STANDARD].enabled,
           "top-level fields read");
        ok(p.level[SBX_TRUST_ELEVATED].default_network == SBX_NET_NONE &&
                   !p.level[SBX_TRUST_ELEVATED].network_allowed[SBX_NET_LOOPBACK] &&
                   p.level[SBX_TRUST_ELEVATED].network_allowed[SBX_NET_EGRESS] &&
                   p.level[SBX_TRUST_ELEVATED].defaults.pids == 100 &&
                   p.level[SBX_TRUST_ELEVATED].ceilings.pids == 200 &&
                   p.level[SBX_TRUST_ELEVATED].defaults.memory_bytes == 512 * MiB,
           "level fields read, others keep built-in values");
        ok(p.level[SBX_TRUST_RESTRICTED].work_writable &&
                   p.level[SBX_TRUST_RESTRICTED].defaults.work_bytes == MiB &&
                   !p.level[SBX_TRUST_PRIVILEGED].enabled &&
                   p.level[SBX_TRUST_PRIVILEGED].network_allowed[SBX_NET_EGRESS],
           "restricted given /work; privileged untouched (disabled)");

        /* The loaded policy drives specs. */
        refused_p("{'argv':['/bin/true'],'trust':'standard'}", &p, "trust",
                  "the standard level is disabled");
        _cleanup_sbx_spec_ sbx_spec *s = accepted_p("{'argv':['/bin/true'],'files':{'a':'x'}}", &p);
        ok(s && s->trust == SBX_TRUST_RESTRICTED && strcmp(s->cwd, "/work") == 0 &&
                   s->limits.work_bytes == MiB,
           "default trust from the policy file");

        policy_refused("{'default_trust':'standard','colour':'red'}", "colour", "unknown field 'colour'");
        policy_refused("{'levels':{'standard':{'defaults':{'memory_bytes':536870912,'swap':1}}}}",
                       "levels.standard.defaults.swap", "unknown field 'levels.standard.defaults.swap'");
        policy_refused("{'levels':{'root':{}}}", "levels.root", "unknown field 'levels.root'");
        policy_refused(
                "{'levels':{'standard':{'defaults':{'memory_bytes':8589934592}}}}",
                "levels.standard.defaults.memory_bytes",
                "levels.standard.defaults.memory_bytes: 8589934592 exceeds the ceiling of 4294967296");
        policy_refused("{'levels':{'elevated':{'ceilings':{'pids':10}}}}", "levels.elevated.defaults.pids",
                       "256 exceeds the ceiling of 10");
        policy_refused("{'levels':{'standard':{'network':{'allowed':['none']}}}}",
                       "levels.standard.network.default",
                       "'loopback' is not in levels.standard.network.allowed");
        policy_refused("{'levels':{'elevated':{'network':{'default':'egress','allowed':['egress']}}}}",
                       "levels.elevated.network.default",
                       "levels.elevated.network.default: egress is not configured on this node");
        policy_refused("{'levels':{'standard':{'network':{'allowed':['none','wifi']}}}}",
                       "levels.standard.network.allowed[1]", "unknown network 'wifi'");
        policy_refused("{'levels':{'standard':{'enabled':'yes'}}}", "levels.standard.enabled",
                       "levels.standard.enabled: expected true or false");
        policy_refused("{'levels':{'restricted':{'work':true}}}", "levels.restricted.defaults.work_bytes",
                       "must be positive when work is true");
        policy_refused("{'levels':{'standard':{'enabled':false}}}", "default_trust",
                       "default_trust: the 'standard' level is disabled");
        policy_refused("{'default_trust':'admin'}", "default_trust", "unknown trust level 'admin'");
        policy_refused("{'max_argv':0}", "max_argv", "max_argv: must be positive");
        policy_refused("{'max_files':-1}", "max_files", "max_files: expected a non-negative integer");
        policy_refused("{'levels':{'standard':{'defaults':{'cpu_percent':0}}}}",
                       "levels.standard.defaults.cpu_percent", "must be positive");
        policy_refused("{'levels':", "", "invalid JSON");

        sbx_policy q, before;
        sbx_policy_init_default(&q);
        before = q;
        au_error_clear(&err);
        ok(sbx_policy_load("/nonexistent/policy.json", &q, &err) == -ENOENT &&
                   memcmp(&q, &before, sizeof(q)) == 0 && strstr(err.msg, "/nonexistent/policy.json"),
           "missing policy file: %s", err.msg);
}

/* Writes content (not JSON) to a new temporary file named in path. */
static int write_text(char *path, const char *content) {
        int fd = mkstemp(path);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, content, strlen(content));
        close(fd);
        return n == (ssize_t) strlen(content) ? 0 : -EIO;
}

/* The uid pool refuses to overlap a subordinate-id range (sbx_uidpool_check_subids()). */
static void test_uidpool_subids(void) {
        char clean[] = "/tmp/test-spec-subid-XXXXXX", over[] = "/tmp/test-spec-subid-XXXXXX",
             edges[] = "/tmp/test-spec-subid-XXXXXX", junk[] = "/tmp/test-spec-subid-XXXXXX";
        const uid_t base = 1000000000;
        const uint32_t count = 65536;
        char longline[3000];
        au_error err = {};
        int r;

        memset(longline, 'x', sizeof(longline) - 1);
        longline[sizeof(longline) - 1] = '\0';
        /* A line longer than any buffer, whose tail alone would read as an overlapping range. */
        memcpy(longline + sizeof(longline) - 40, ":1000000000:65536\n", 19);
        if (write_text(clean, "alice:100000:65536\nbob:165536:65536\n") < 0 ||
            write_text(over, "alice:100000:65536\n# a comment\nbuilder:999990000:20000\n") < 0 ||
            write_text(edges, "low:999934464:65536\nhigh:1000065536:65536\n") < 0 ||
            write_text(junk, "nocolon\nname:1000000000\nname:x:5\nname:1000000000:0\n") < 0) {
                skip(9, "cannot write temporary files");
                return;
        }
        FILE *f = fopen(junk, "a");
        if (f) {
                fputs(longline, f);
                fclose(f);
        }

        ok(sbx_uidpool_check_subids(base, count, clean, clean, &err) == 0,
           "a pool clear of every range passes (%s)", err.msg);
        au_error_clear(&err);
        r = sbx_uidpool_check_subids(base, count, over, clean, &err);
        ok(r == -EEXIST && strstr(err.msg, over) && strstr(err.msg, " line 3 ") &&
                   strstr(err.msg, "builder: 999990000-1000009999") &&
                   strstr(err.msg, "uid pool 1000000000-1000065535"),
           "overlap in subuid: refused naming the file, the line and both ranges (%s)", err.msg);
        au_error_clear(&err);
        r = sbx_uidpool_check_subids(base, count, clean, over, &err);
        ok(r == -EEXIST && strstr(err.msg, over) && strstr(err.msg, "line 3"),
           "overlap in subgid (the gids are the uids): refused too (%s)", err.msg);
        au_error_clear(&err);
        ok(sbx_uidpool_check_subids(base, count, edges, edges, &err) == 0,
           "ranges ending just below and starting just above the pool pass (%s)", err.msg);
        au_error_clear(&err);
        ok(sbx_uidpool_check_subids(base - 1, count, edges, clean, &err) == -EEXIST &&
                   strstr(err.msg, "line 1"),
           "one id lower, the pool's first id is the lower range's last: refused (%s)", err.msg);
        au_error_clear(&err);
        ok(sbx_uidpool_check_subids(base + 1, count, edges, clean, &err) == -EEXIST &&
                   strstr(err.msg, "line 2"),
           "one id higher, the pool's last id is the upper range's first: refused (%s)", err.msg);
        au_error_clear(&err);
        ok(sbx_uidpool_check_subids(base, count, junk, junk, &err) == 0,
           "lines newuidmap would not read (no count, not a number, count 0, too long) are skipped (%s)",
           err.msg);
        au_error_clear(&err);
        ok(sbx_uidpool_check_subids(base, count, "/nonexistent/subuid", "/nonexistent/subgid", &err) == 0,
           "missing files hold no range (%s)", err.msg);

        setenv("AUTOOS_SUBUID_FILE", clean, 1);
        setenv("AUTOOS_SUBGID_FILE", over, 1);
        au_error_clear(&err);
        r = sbx_uidpool_check_subids(base, count, NULL, NULL, &err);
        ok(r == -EEXIST && strstr(err.msg, over),
           "$AUTOOS_SUBUID_FILE and $AUTOOS_SUBGID_FILE replace /etc (%s)", err.msg);
        unsetenv("AUTOOS_SUBUID_FILE");
        unsetenv("AUTOOS_SUBGID_FILE");
        unlink(clean);
        unlink(over);
        unlink(edges);
        unlink(junk);
}

/* Egress (issue 13): the policy's allowlist and limits, a spec's narrowing, and what is refused. */
static void test_egress(void) {
        sbx_policy p;
        if (!load_policy("{'levels':{'elevated':{'network':{'egress':{'allow':["
                         "{'cidr':'203.0.113.0/24','protocol':'tcp','ports':'80-443'},"
                         "{'cidr':'198.51.100.7','protocol':'udp'}],"
                         "'bandwidth_bytes':2048,'connections':5,'packets_per_second':100,"
                         "'dns_queries_per_second':3}}}}}",
                         &p))
                return;
        const sbx_egress_policy *e = &p.level[SBX_TRUST_ELEVATED].egress;
        ok(e->n_allow == 2 && e->allow[0].addr == 0xcb007100 && e->allow[0].prefix == 24 &&
                   e->allow[0].protocol == 6 && e->allow[0].port_min == 80 && e->allow[0].port_max == 443 &&
                   e->allow[1].prefix == 32 && e->allow[1].protocol == 17 && e->allow[1].port_min == 0 &&
                   e->bandwidth_bytes == 2048 && e->connections == 5 && e->packets_per_second == 100 &&
                   e->dns_queries_per_second == 3,
           "policy: egress allowlist and limits load");

        /* Without egress settings on the node the spec is rejected, whatever the policy. */
        refused_p("{'argv':['/bin/true'],'trust':'elevated','network':'egress'}", &p, "network",
                  "network: egress is not configured on this node");
        p.egress_configured = true;
        _cleanup_sbx_spec_ sbx_spec *s =
                accepted_p("{'argv':['/bin/true'],'trust':'elevated','network':'egress'}", &p);
        ok(s && s->network == SBX_NET_EGRESS && s->egress.n_allow == 2 && s->egress.connections == 5 &&
                   !s->egress_allow_set,
           "egress spec without an allowlist gets the level's");
        _cleanup_sbx_spec_ sbx_spec *n =
                accepted_p("{'argv':['/bin/true'],'trust':'elevated','network':'egress',"
                           "'egress':{'allow':[{'cidr':'203.0.113.10/32','protocol':'tcp','ports':'443'}]}}",
                           &p);
        ok(n && n->egress_allow_set && n->egress.n_allow == 1 && n->egress.allow[0].port_min == 443 &&
                   n->egress.bandwidth_bytes == 2048,
           "a spec narrows the allowlist and keeps the level's limits");
        _cleanup_free_ char *j = n ? sbx_spec_to_json(n) : NULL;
        ok(j && strstr(j, "\"egress\":{\"allow\":[{\"cidr\":\"203.0.113.10/32\",\"protocol\":\"tcp\","
                          "\"ports\":\"443\"}]}"),
           "to_json writes the narrowed allowlist: %s", j ? j : "(null)");
        refused_p("{'argv':['/bin/true'],'trust':'elevated','network':'egress',"
                  "'egress':{'allow':[{'cidr':'203.0.113.0/24','protocol':'tcp','ports':'22'}]}}",
                  &p, "egress.allow[0]",
                  "203.0.113.0/24 tcp 22-22 is not inside the elevated level's egress");
        refused_p("{'argv':['/bin/true'],'trust':'elevated','network':'egress',"
                  "'egress':{'allow':[{'cidr':'10.0.0.0/8'}]}}",
                  &p, "egress.allow[0]", "is not inside");
        refused_p("{'argv':['/bin/true'],'trust':'elevated','network':'loopback',"
                  "'egress':{'allow':[]}}",
                  &p, "egress", "egress: only for network egress (this run has loopback)");
        refused_p("{'argv':['/bin/true'],'trust':'elevated','network':'egress','egress':{'deny':[]}}", &p,
                  "egress.deny", "unknown field 'egress.deny'");
        refused_p("{'argv':['/bin/true'],'trust':'elevated','network':'egress','egress':{}}", &p,
                  "egress.allow", "egress.allow: required");

        static const struct {
                const char *entry, *field, *want;
        } bad[] = {
                {"{'cidr':'203.0.113.1/24'}", "cidr", "has host bits set"},
                {"{'cidr':'203.0.113.0/33'}", "cidr", "prefix length"},
                {"{'cidr':'example.com'}", "cidr", "not an IPv4 address or CIDR"},
                {"{'cidr':'203.0.113.0/24','protocol':'sctp'}", "protocol", "unknown protocol 'sctp'"},
                {"{'cidr':'203.0.113.0/24','ports':'80'}", "ports", "ports need protocol tcp or udp"},
                {"{'cidr':'203.0.113.0/24','protocol':'tcp','ports':'70000'}", "ports", "not a port"},
                {"{'cidr':'203.0.113.0/24','protocol':'tcp','ports':'443-80'}", "ports", "reversed"},
                {"{'cidr':'203.0.113.0/24','protocol':'tcp','ports':'0'}", "ports", "not a port"},
                {"{'protocol':'tcp'}", "cidr", "required"},
                {"{'cidr':'203.0.113.0/24','colour':'red'}", "colour", "unknown field"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char doc[512], field[96];
                snprintf(doc, sizeof(doc), "{'levels':{'elevated':{'network':{'egress':{'allow':[%s]}}}}}",
                         bad[i].entry);
                snprintf(field, sizeof(field), "levels.elevated.network.egress.allow[0].%s", bad[i].field);
                policy_refused(doc, field, bad[i].want);
        }
        policy_refused("{'levels':{'elevated':{'network':{'egress':{'bandwidth_bytes':10}}}}}",
                       "levels.elevated.network.egress.bandwidth_bytes", "is not 0 (unlimited) or 1024..");
        policy_refused("{'levels':{'elevated':{'network':{'egress':{'connections':0}}}}}",
                       "levels.elevated.network.egress.connections", "0 is not 1..");
        policy_refused("{'levels':{'elevated':{'network':{'egress':{'speed':1}}}}}",
                       "levels.elevated.network.egress.speed", "unknown field");
}

int main(void) {
        test_names();
        test_defaults();
        test_full();
        test_wrong_types();
        test_unknown_and_missing();
        test_limits();
        test_ids();
        test_argv_env();
        test_cwd();
        test_files();
        test_files_limits();
        test_network_levels();
        test_documents();
        test_hand_built();
        test_policy_load();
        test_roles();
        test_uidpool_subids();
        test_egress();
        return done_testing();
}
