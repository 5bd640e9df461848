/* SPDX-License-Identifier: MIT */
/* orchestrator/agent: agent steps over fabric/, their tool calls through a runner (see agent.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"
#include "orchestrator/agent.h"

#define ARG_OPEN "{{args."
#define ARG_CLOSE "}}"
#define MAX_AGENT_TOKENS 10000000ULL
#define MAX_WALL_MS 86400000ULL

static const char *const outcome_names[] = {
        [ORC_AGENT_OK] = "ok",
        [ORC_AGENT_TURNS_EXHAUSTED] = "turns_exhausted",
        [ORC_AGENT_TOKENS_EXHAUSTED] = "tokens_exhausted",
        [ORC_AGENT_BUDGET_EXCEEDED] = "budget_exceeded",
        [ORC_AGENT_WALL_TIME] = "wall_time_exceeded",
        [ORC_AGENT_FAILED] = "failed",
};

const char *orc_agent_outcome_name(orc_agent_outcome o) {
        return o < ELEMENTSOF(outcome_names) ? outcome_names[o] : "unknown";
}

static const char *const call_status_names[] = {
        [ORC_AGENT_CALL_RAN] = "ran",
        [ORC_AGENT_CALL_FAILED] = "failed",
        [ORC_AGENT_CALL_UNKNOWN_TOOL] = "unknown_tool",
        [ORC_AGENT_CALL_BAD_ARGUMENTS] = "bad_arguments",
        [ORC_AGENT_CALL_SKIPPED] = "skipped",
};

const char *orc_agent_call_status_name(orc_agent_call_status s) {
        return s < ELEMENTSOF(call_status_names) ? call_status_names[s] : "unknown";
}

void orc_agent_spec_done(orc_agent_spec *s) {
        for (size_t i = 0; i < s->n_tools; i++) {
                free(s->tools[i].name);
                free(s->tools[i].description);
                yajl_tree_free(s->tools[i].parameters);
                yajl_tree_free(s->tools[i].run);
        }
        free(s->tools);
        free(s->goal);
        free(s->system);
        *s = (orc_agent_spec){};
}

/* ---- run templates ---- */

/* Looks an argument up: its text in *ret (a string as is, a number or boolean as JSON), or -EINVAL. */
typedef int (*arg_fn)(void *ud, const char *name, size_t len, const char **ret);

static int render_string(const char *s, arg_fn fn, void *ud, au_buf *out) {
        const char *p = s, *q;
        int r;

        while ((q = strstr(p, ARG_OPEN))) {
                const char *name = q + strlen(ARG_OPEN), *end = strstr(name, ARG_CLOSE), *val;
                if (!end)
                        break;
                if ((r = au_buf_append(out, p, (size_t) (q - p))) < 0 ||
                    (r = fn(ud, name, (size_t) (end - name), &val)) < 0 || (r = au_buf_puts(out, val)) < 0)
                        return r;
                p = end + strlen(ARG_CLOSE);
        }
        return au_buf_puts(out, p);
}

static int render_tree(yajl_gen g, yajl_val v, arg_fn fn, void *ud) {
        if (YAJL_IS_STRING(v)) {
                _cleanup_buf_ au_buf b = AU_BUF_INIT(0);
                int r = render_string(v->u.string, fn, ud, &b);
                if (r < 0)
                        return r;
                return au_json_gen_stringn(g, b.p ? b.p : "", b.len);
        }
        if (YAJL_IS_OBJECT(v)) {
                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                for (size_t i = 0; i < v->u.object.len; i++) {
                        AU_JSON_GEN_TRY(au_json_gen_string(g, v->u.object.keys[i]));
                        AU_JSON_GEN_TRY(render_tree(g, v->u.object.values[i], fn, ud));
                }
                return au_json_gen_map_close(g);
        }
        if (YAJL_IS_ARRAY(v)) {
                AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                for (size_t i = 0; i < v->u.array.len; i++)
                        AU_JSON_GEN_TRY(render_tree(g, v->u.array.values[i], fn, ud));
                return au_json_gen_array_close(g);
        }
        return au_json_gen_tree(g, v);
}

static int render(yajl_val tmpl, arg_fn fn, void *ud, char **ret) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        int r;
        if (!g)
                return -ENOMEM;
        if ((r = render_tree(g, tmpl, fn, ud)) < 0)
                return r;
        *ret = au_json_gen_finish(g, NULL);
        return *ret ? 0 : -ENOMEM;
}

static int arg_from_object(void *ud, const char *name, size_t len, const char **ret) {
        yajl_val args = ud;
        for (size_t i = 0; YAJL_IS_OBJECT(args) && i < args->u.object.len; i++) {
                yajl_val x = args->u.object.values[i];
                if (strlen(args->u.object.keys[i]) != len || memcmp(args->u.object.keys[i], name, len) != 0)
                        continue;
                if (YAJL_IS_STRING(x))
                        *ret = x->u.string;
                else if (YAJL_IS_NUMBER(x))
                        *ret = x->u.number.r;
                else if (YAJL_IS_TRUE(x))
                        *ret = "true";
                else if (YAJL_IS_FALSE(x))
                        *ret = "false";
                else
                        return -EINVAL;
                return 0;
        }
        return -EINVAL;
}

int orc_agent_render_run(const orc_agent_tool *tool, yajl_val args, char **ret) {
        return render(tool->run, arg_from_object, args, ret);
}

/* At parse time: each placeholder must name a parameter; it stands in as "x". */
typedef struct param_check {
        yajl_val props;
        bool bad;
        char name[65];
} param_check;

static int arg_is_param(void *ud, const char *name, size_t len, const char **ret) {
        param_check *c = ud;
        for (size_t i = 0; YAJL_IS_OBJECT(c->props) && i < c->props->u.object.len; i++)
                if (strlen(c->props->u.object.keys[i]) == len &&
                    memcmp(c->props->u.object.keys[i], name, len) == 0) {
                        *ret = "x";
                        return 0;
                }
        c->bad = true;
        snprintf(c->name, sizeof(c->name), "%.*s", (int) MIN(len, 64), name);
        return -EINVAL;
}

/* ---- parsing ---- */

static bool valid_tool_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 64)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '_' || *s == '-'))
                        return false;
        return true;
}

static int get_text(yajl_val v, const char *path, size_t max, bool required, char **ret, au_error *err) {
        const char *s;
        int r;
        if (!v) {
                if (required)
                        return au_error_set_field(err, path, "%s: missing", path);
                return 0;
        }
        if ((r = au_json_get_string(v, path, &s, err)) < 0)
                return r;
        if ((required && !*s) || strlen(s) > max)
                return au_error_set_field(err, path, "%s: must be %s%zu bytes at most", path,
                                          required ? "1 byte to " : "", max);
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int get_u64_range(yajl_val v, const char *path, uint64_t min, uint64_t max, uint64_t *ret,
                         au_error *err) {
        uint64_t x;
        int r;
        if (!v)
                return 0;
        if ((r = au_json_get_uint64(v, path, &x, err)) < 0)
                return r;
        if (x < min || x > max)
                return au_error_set_field(err, path, "%s: must be %llu to %llu", path,
                                          (unsigned long long) min, (unsigned long long) max);
        *ret = x;
        return 0;
}

/* A deep copy of a yajl tree (re-generated and re-parsed), since the caller's document is freed. */
static int tree_copy(yajl_val v, yajl_val *ret) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_free_ char *s = NULL;
        au_error err = {};
        size_t len;
        int r;
        if (!g)
                return -ENOMEM;
        if ((r = au_json_gen_tree(g, v)) < 0)
                return r;
        if (!(s = au_json_gen_finish(g, &len)))
                return -ENOMEM;
        return au_json_parse(s, len, len + 1, ret, &err);
}

static int parse_tool(yajl_val v, size_t idx, const sbx_policy *policy, orc_agent_tool *t, au_error *err) {
        static const char *const known[] = {"name", "description", "parameters", "run", NULL};
        char path[96], field[128];
        yajl_val x;
        int r;

        snprintf(path, sizeof(path), "agent.tools[%zu]", idx);
        if ((r = au_json_check_object(v, path, known, err)) < 0)
                return r;
        snprintf(field, sizeof(field), "%s.name", path);
        if ((r = get_text(au_json_get(v, "name"), field, 64, true, &t->name, err)) < 0)
                return r;
        if (!valid_tool_name(t->name))
                return au_error_set_field(err, field, "%s: '%s' is not 1..64 of A-Z a-z 0-9 _ -", field,
                                          t->name);
        snprintf(field, sizeof(field), "%s.description", path);
        if ((r = get_text(au_json_get(v, "description"), field, 4096, false, &t->description, err)) < 0)
                return r;
        snprintf(field, sizeof(field), "%s.parameters", path);
        x = au_json_get(v, "parameters");
        if (!x)
                return au_error_set_field(err, field, "%s: missing (a JSON schema of the arguments)", field);
        if (!YAJL_IS_OBJECT(x) || !YAJL_IS_STRING(au_json_get(x, "type")) ||
            strcmp(au_json_get(x, "type")->u.string, "object") != 0)
                return au_error_set_field(err, field, "%s: must be a schema of \"type\": \"object\"", field);
        if ((r = fab_schema_check(x, field, err)) < 0)
                return r;
        if ((r = tree_copy(x, &t->parameters)) < 0)
                return r;
        snprintf(field, sizeof(field), "%s.run", path);
        x = au_json_get(v, "run");
        if (!x)
                return au_error_set_field(err, field, "%s: missing (the run template)", field);
        if (!YAJL_IS_OBJECT(x))
                return au_error_set_field(err, field, "%s: expected an object (a run spec)", field);
        param_check c = {.props = au_json_get(t->parameters, "properties")};
        _cleanup_free_ char *sample = NULL;
        r = render(x, arg_is_param, &c, &sample);
        if (c.bad)
                return au_error_set_field(err, field, "%s: {{args.%s}} names no property of %s.parameters",
                                          field, c.name, path);
        if (r < 0)
                return r;
        sbx_policy builtin;
        if (!policy) {
                sbx_policy_init_default(&builtin);
                policy = &builtin;
        }
        sbx_spec *spec = NULL;
        au_error e2 = {};
        r = sbx_spec_from_json(sample, strlen(sample), policy, &spec, &e2);
        sbx_spec_free(spec);
        if (r < 0)
                return au_error_set_field(err, field, "%s: not a run spec: %s", field, e2.msg);
        return tree_copy(x, &t->run);
}

int orc_agent_spec_parse(yajl_val v, const sbx_policy *policy, orc_agent_spec *ret, au_error *err) {
        static const char *const known[] = {"goal", "role", "system", "max_tokens", "tools", "limits", NULL};
        static const char *const lk[] = {"turns", "tokens", "cost_usd", "wall_ms", "output_bytes", NULL};
        orc_agent_spec s = {.role = FAB_ROLE_EXECUTOR,
                            .max_tokens = 1024,
                            .turns = 10,
                            .tokens = 200000,
                            .wall_ms = 600000,
                            .output_bytes = 16384};
        uint64_t u;
        yajl_val x;
        int r;

        if ((r = au_json_check_object(v, "agent", known, err)) < 0)
                return r;
        if ((r = get_text(au_json_get(v, "goal"), "agent.goal", ORC_AGENT_MAX_GOAL, true, &s.goal, err)) <
                    0 ||
            (r = get_text(au_json_get(v, "system"), "agent.system", 16 * 1024, false, &s.system, err)) < 0)
                goto fail;
        if ((x = au_json_get(v, "role"))) {
                const char *name;
                if ((r = au_json_get_string(x, "agent.role", &name, err)) < 0)
                        goto fail;
                if ((r = fab_role_from_name(name)) < 0) {
                        r = au_error_set_field(
                                err, "agent.role",
                                "agent.role: unknown role '%.32s' (planner, executor, verifier, "
                                "auditor, synthesizer)",
                                name);
                        goto fail;
                }
                s.role = (fab_role) r;
        }
        u = s.max_tokens;
        if ((r = get_u64_range(au_json_get(v, "max_tokens"), "agent.max_tokens", 1, 200000, &u, err)) < 0)
                goto fail;
        s.max_tokens = (uint32_t) u;

        x = au_json_get(v, "tools");
        if (!x) {
                r = au_error_set_field(err, "agent.tools", "agent.tools: missing (at least one tool)");
                goto fail;
        }
        if ((r = au_json_check_array(x, "agent.tools", err)) < 0)
                goto fail;
        if (x->u.array.len == 0 || x->u.array.len > ORC_AGENT_MAX_TOOLS) {
                r = au_error_set_field(err, "agent.tools", "agent.tools: 1 to %d tools",
                                       ORC_AGENT_MAX_TOOLS);
                goto fail;
        }
        if (!(s.tools = calloc(x->u.array.len, sizeof(*s.tools)))) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < x->u.array.len; i++) {
                s.n_tools = i + 1;
                if ((r = parse_tool(x->u.array.values[i], i, policy, &s.tools[i], err)) < 0)
                        goto fail;
                for (size_t k = 0; k < i; k++)
                        if (strcmp(s.tools[k].name, s.tools[i].name) == 0) {
                                r = au_error_set_field(err, "agent.tools",
                                                       "agent.tools[%zu].name: '%s' twice", i,
                                                       s.tools[i].name);
                                goto fail;
                        }
        }

        if ((x = au_json_get(v, "limits"))) {
                if ((r = au_json_check_object(x, "agent.limits", lk, err)) < 0)
                        goto fail;
                u = s.turns;
                if ((r = get_u64_range(au_json_get(x, "turns"), "agent.limits.turns", 1, ORC_AGENT_MAX_TURNS,
                                       &u, err)) < 0)
                        goto fail;
                s.turns = (uint32_t) u;
                if ((r = get_u64_range(au_json_get(x, "tokens"), "agent.limits.tokens", 1, MAX_AGENT_TOKENS,
                                       &s.tokens, err)) < 0 ||
                    (r = get_u64_range(au_json_get(x, "wall_ms"), "agent.limits.wall_ms", 1, MAX_WALL_MS,
                                       &s.wall_ms, err)) < 0)
                        goto fail;
                u = s.output_bytes;
                if ((r = get_u64_range(au_json_get(x, "output_bytes"), "agent.limits.output_bytes", 256,
                                       256 * 1024, &u, err)) < 0)
                        goto fail;
                s.output_bytes = (uint32_t) u;
                yajl_val c = au_json_get(x, "cost_usd");
                if (c) {
                        double d = YAJL_IS_NUMBER(c) ? strtod(c->u.number.r, NULL) : NAN;
                        if (!(d > 0 && d < 1e9)) {
                                r = au_error_set_field(err, "agent.limits.cost_usd",
                                                       "agent.limits.cost_usd: expected a number above 0");
                                goto fail;
                        }
                        s.cost_usd = d;
                }
        }
        *ret = s;
        return 0;
fail:
        orc_agent_spec_done(&s);
        return r;
}

/* ---- the loop ---- */

typedef struct tmsg {
        fab_msg_role role;
        char *text;
        fab_tool_call *calls;
        size_t n_calls;
        char *tool_call_id;
        bool is_error;
} tmsg;

typedef struct convo {
        tmsg *m;
        size_t n;
} convo;

static void convo_done(convo *c) {
        for (size_t i = 0; i < c->n; i++) {
                free(c->m[i].text);
                free(c->m[i].tool_call_id);
                for (size_t k = 0; k < c->m[i].n_calls; k++) {
                        free(c->m[i].calls[k].id);
                        free(c->m[i].calls[k].name);
                        free(c->m[i].calls[k].arguments);
                }
                free(c->m[i].calls);
        }
        free(c->m);
        *c = (convo){};
}

/* Appends a message taking text (and calls); frees them when it cannot. */
static int convo_add(convo *c, fab_msg_role role, char *text, fab_tool_call *calls, size_t n_calls,
                     const char *tool_call_id, bool is_error) {
        tmsg *m = realloc(c->m, (c->n + 1) * sizeof(*m));
        char *id = tool_call_id ? strdup(tool_call_id) : NULL;
        if (!m || (tool_call_id && !id)) {
                if (m)
                        c->m = m;
                free(id);
                free(text);
                for (size_t k = 0; k < n_calls; k++) {
                        free(calls[k].id);
                        free(calls[k].name);
                        free(calls[k].arguments);
                }
                free(calls);
                return -ENOMEM;
        }
        c->m = m;
        m[c->n++] = (tmsg){.role = role,
                           .text = text,
                           .calls = calls,
                           .n_calls = n_calls,
                           .tool_call_id = id,
                           .is_error = is_error};
        return 0;
}

static int convo_printf(convo *c, fab_msg_role role, const char *id, bool is_error, const char *fmt, ...)
        _printf_(5, 6);
static int convo_printf(convo *c, fab_msg_role role, const char *id, bool is_error, const char *fmt, ...) {
        va_list ap;
        char *s;
        int n;
        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        return convo_add(c, role, s, NULL, 0, id, is_error);
}

static void add_usage(fab_usage *a, const fab_usage *b) {
        a->input += b->input;
        a->cached += b->cached;
        a->cache_write += b->cache_write;
        a->output += b->output;
        a->reported = a->reported || b->reported;
}

static uint64_t usage_total(const fab_usage *u) {
        return u->input + u->cached + u->cache_write + u->output;
}

static void audit(const orc_agent_hooks *h, const orc_agent_call *call, orc_agent_call_status st,
                  const char *why, size_t bytes) {
        if (h->audit)
                h->audit(h->audit_userdata, call, st, why, bytes);
}

/* Bounds a tool's output for the model: at most max bytes, then a note of how much there was. */
static char *bound_output(char *out, size_t max) {
        size_t len = strlen(out);
        char *s;
        if (len <= max)
                return out;
        if (asprintf(&s, "%.*s\n[output truncated: %zu bytes in all, %zu given]", (int) max, out, len, max) <
            0)
                s = NULL;
        free(out);
        return s;
}

/* One tool call: checked, run, and its answer appended to the conversation. */
static int do_call(const orc_agent_spec *spec, const fab_tool *ftools, const orc_agent_hooks *h,
                   unsigned turn, uint64_t deadline, const fab_tool_call *fc, convo *c,
                   orc_agent_result *ret) {
        _cleanup_json_ yajl_val args = NULL;
        _cleanup_free_ char *run_json = NULL;
        char why[512];
        orc_agent_call call = {.turn = turn,
                               .call_id = fc->id ? fc->id : "",
                               .tool = fc->name ? fc->name : "",
                               .arguments = fc->arguments ? fc->arguments : "",
                               .deadline_ms = deadline};
        int r;

        ret->tool_calls++;
        r = fab_tool_check_call(ftools, spec->n_tools, fc, &args, why, sizeof(why));
        if (r == -ENOENT || r == -EINVAL) {
                ret->refused++;
                audit(h, &call, r == -ENOENT ? ORC_AGENT_CALL_UNKNOWN_TOOL : ORC_AGENT_CALL_BAD_ARGUMENTS,
                      why, 0);
                return convo_printf(c, FAB_MSG_TOOL, call.call_id, true, "refused, nothing ran: %s", why);
        }
        if (r < 0)
                return r;
        const orc_agent_tool *t = NULL;
        for (size_t i = 0; i < spec->n_tools; i++)
                if (strcmp(spec->tools[i].name, fc->name) == 0)
                        t = &spec->tools[i];
        if (!t)
                return -EINVAL;
        r = orc_agent_render_run(t, args, &run_json);
        if (r == -EINVAL) {
                ret->refused++;
                snprintf(why, sizeof(why), "tool '%s': an argument its run needs is missing or not a scalar",
                         t->name);
                audit(h, &call, ORC_AGENT_CALL_BAD_ARGUMENTS, why, 0);
                return convo_printf(c, FAB_MSG_TOOL, call.call_id, true, "refused, nothing ran: %s", why);
        }
        if (r < 0)
                return r;
        call.run_json = run_json;
        char *out = NULL;
        bool failed = false;
        r = h->run(h->run_userdata, &call, &out, &failed);
        if (r < 0) {
                free(out);
                snprintf(why, sizeof(why), "tool '%s' could not run: %s", t->name, strerror(-r));
                audit(h, &call, ORC_AGENT_CALL_FAILED, why, 0);
                return convo_printf(c, FAB_MSG_TOOL, call.call_id, true, "%s", why);
        }
        if (!out && !(out = strdup("")))
                return -ENOMEM;
        size_t full = strlen(out);
        if (!(out = bound_output(out, spec->output_bytes)))
                return -ENOMEM;
        audit(h, &call, failed ? ORC_AGENT_CALL_FAILED : ORC_AGENT_CALL_RAN,
              failed ? "the run failed" : NULL, full);
        return convo_add(c, FAB_MSG_TOOL, out, NULL, 0, call.call_id, failed);
}

static void skip_calls(const orc_agent_hooks *h, unsigned turn, uint64_t deadline,
                       const fab_tool_call *calls, size_t n, size_t from, const char *why) {
        for (size_t i = from; i < n; i++) {
                orc_agent_call call = {.turn = turn,
                                       .call_id = calls[i].id ? calls[i].id : "",
                                       .tool = calls[i].name ? calls[i].name : "",
                                       .arguments = calls[i].arguments ? calls[i].arguments : "",
                                       .deadline_ms = deadline};
                audit(h, &call, ORC_AGENT_CALL_SKIPPED, why, 0);
        }
}

static int gen_transcript(const convo *c, char **ret) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        size_t total = 0, elided = 0;
        if (!g)
                return -ENOMEM;
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "transcript"));
        AU_JSON_GEN_TRY(au_json_gen_array_open(g));
        for (size_t i = 0; i < c->n; i++) {
                const tmsg *m = &c->m[i];
                size_t len = m->text ? strlen(m->text) : 0,
                       clip = MIN(len, (size_t) ORC_AGENT_TRANSCRIPT_MSG);
                size_t cost = clip + 128;
                for (size_t k = 0; k < m->n_calls; k++)
                        cost += MIN(strlen(m->calls[k].arguments ? m->calls[k].arguments : ""),
                                    (size_t) ORC_AGENT_TRANSCRIPT_MSG) +
                                128;
                if (total + cost > ORC_AGENT_MAX_TRANSCRIPT) {
                        elided++;
                        continue;
                }
                total += cost;
                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "role",
                                                      m->role == FAB_MSG_USER        ? "user"
                                                      : m->role == FAB_MSG_ASSISTANT ? "assistant"
                                                                                     : "tool"));
                AU_JSON_GEN_TRY(au_json_gen_string(g, "text"));
                AU_JSON_GEN_TRY(au_json_gen_stringn(g, m->text ? m->text : "", clip));
                if (clip < len)
                        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "text_bytes", len));
                if (m->n_calls) {
                        AU_JSON_GEN_TRY(au_json_gen_string(g, "tool_calls"));
                        AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                        for (size_t k = 0; k < m->n_calls; k++) {
                                const char *a = m->calls[k].arguments ? m->calls[k].arguments : "";
                                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "id", m->calls[k].id));
                                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "name", m->calls[k].name));
                                AU_JSON_GEN_TRY(au_json_gen_string(g, "arguments"));
                                AU_JSON_GEN_TRY(au_json_gen_stringn(
                                        g, a, MIN(strlen(a), (size_t) ORC_AGENT_TRANSCRIPT_MSG)));
                                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
                        }
                        AU_JSON_GEN_TRY(au_json_gen_array_close(g));
                }
                if (m->tool_call_id) {
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "tool_call_id", m->tool_call_id));
                        AU_JSON_GEN_TRY(au_json_gen_kv_bool(g, "is_error", m->is_error));
                }
                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        }
        AU_JSON_GEN_TRY(au_json_gen_array_close(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "transcript_elided", elided));
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        *ret = au_json_gen_finish(g, NULL);
        return *ret ? 0 : -ENOMEM;
}

static int run_loop(fab_fabric *f, const orc_agent_spec *spec, const orc_agent_hooks *h,
                    const fab_tool *ftools, convo *c, orc_agent_result *ret) {
        uint64_t deadline = au_now_ms() + spec->wall_ms;
        _cleanup_free_ fab_msg *msgs = NULL;
        int r;

        if ((r = convo_printf(c, FAB_MSG_USER, NULL, false, "%s", spec->goal)) < 0)
                return r;
        for (;;) {
                uint64_t used = usage_total(&ret->usage);
                if (au_now_ms() >= deadline) {
                        ret->outcome = ORC_AGENT_WALL_TIME;
                        snprintf(ret->error, sizeof(ret->error), "the agent's wall time of %llu ms passed",
                                 (unsigned long long) spec->wall_ms);
                        return 0;
                }
                if (used >= spec->tokens) {
                        ret->outcome = ORC_AGENT_TOKENS_EXHAUSTED;
                        snprintf(ret->error, sizeof(ret->error), "%llu tokens used of the agent's %llu",
                                 (unsigned long long) used, (unsigned long long) spec->tokens);
                        return 0;
                }
                if (spec->cost_usd > 0 && ret->cost_usd >= spec->cost_usd) {
                        ret->outcome = ORC_AGENT_BUDGET_EXCEEDED;
                        snprintf(ret->error, sizeof(ret->error), "$%.6f spent of the agent's $%.6f",
                                 ret->cost_usd, spec->cost_usd);
                        return 0;
                }
                fab_msg *nm = realloc(msgs, c->n * sizeof(*nm));
                if (!nm)
                        return -ENOMEM;
                msgs = nm;
                for (size_t i = 0; i < c->n; i++)
                        msgs[i] = (fab_msg){.role = c->m[i].role,
                                            .text = c->m[i].text,
                                            .calls = c->m[i].calls,
                                            .n_calls = c->m[i].n_calls,
                                            .tool_call_id = c->m[i].tool_call_id,
                                            .is_error = c->m[i].is_error};
                fab_request req = {.role = spec->role,
                                   .system = spec->system,
                                   .msgs = msgs,
                                   .n_msgs = c->n,
                                   .tools = ftools,
                                   .n_tools = spec->n_tools,
                                   .max_tokens =
                                           (uint32_t) MIN((uint64_t) spec->max_tokens, spec->tokens - used),
                                   .workflow = h->workflow,
                                   .key = h->key};
                fab_result fr;
                if ((r = fab_call(f, &req, &fr)) < 0)
                        return r;
                ret->turns++;
                add_usage(&ret->usage, &fr.usage);
                ret->cost_usd += fr.cost_usd;
                snprintf(ret->provider, sizeof(ret->provider), "%s", fr.provider);
                snprintf(ret->model, sizeof(ret->model), "%s", fr.model);
                if (fr.outcome != FAB_OK) {
                        ret->outcome =
                                fr.outcome == FAB_BUDGET ? ORC_AGENT_BUDGET_EXCEEDED : ORC_AGENT_FAILED;
                        snprintf(ret->error, sizeof(ret->error), "turn %u: %s: %.400s", ret->turns,
                                 fab_outcome_name(fr.outcome), fr.error);
                        fab_result_done(&fr);
                        return 0;
                }
                fab_tool_call *calls = fr.calls;
                size_t n_calls = fr.n_calls;
                char *text = fr.text;
                fr.calls = NULL;
                fr.n_calls = 0;
                fr.text = NULL;
                fab_result_done(&fr);
                if ((r = convo_add(c, FAB_MSG_ASSISTANT, text ? text : strdup(""), calls, n_calls, NULL,
                                   false)) < 0)
                        return r;
                const tmsg *am = &c->m[c->n - 1];
                if (am->n_calls == 0) {
                        ret->outcome = ORC_AGENT_OK;
                        ret->answer = strdup(am->text ? am->text : "");
                        return ret->answer ? 0 : -ENOMEM;
                }
                /* the conversation may grow (realloc) while the calls run: work on their index */
                size_t ai = c->n - 1, n = am->n_calls;
                const char *stop = NULL;
                orc_agent_outcome so = ORC_AGENT_OK;
                used = usage_total(&ret->usage);
                if (ret->turns >= spec->turns) {
                        so = ORC_AGENT_TURNS_EXHAUSTED;
                        snprintf(ret->error, sizeof(ret->error),
                                 "the model still called tools after the agent's %u turns", spec->turns);
                        stop = "the agent's turns are used up";
                } else if (used >= spec->tokens) {
                        so = ORC_AGENT_TOKENS_EXHAUSTED;
                        snprintf(ret->error, sizeof(ret->error), "%llu tokens used of the agent's %llu",
                                 (unsigned long long) used, (unsigned long long) spec->tokens);
                        stop = "the agent's tokens are used up";
                } else if (spec->cost_usd > 0 && ret->cost_usd >= spec->cost_usd) {
                        so = ORC_AGENT_BUDGET_EXCEEDED;
                        snprintf(ret->error, sizeof(ret->error), "$%.6f spent of the agent's $%.6f",
                                 ret->cost_usd, spec->cost_usd);
                        stop = "the agent's cost limit is reached";
                } else if (fab_budget_exhausted(f, FAB_SCOPE_WORKFLOW, h->workflow) ||
                           fab_budget_exhausted(f, FAB_SCOPE_KEY, h->key)) {
                        /* This turn's answer spent the workflow's or key's budget: its calls must
                         * not run either, as no model would see their output. */
                        so = ORC_AGENT_BUDGET_EXCEEDED;
                        snprintf(ret->error, sizeof(ret->error), "turn %u spent the %s's budget", ret->turns,
                                 fab_budget_exhausted(f, FAB_SCOPE_WORKFLOW, h->workflow) ? "workflow"
                                                                                          : "key");
                        stop = "the budget is spent";
                }
                if (stop) {
                        ret->outcome = so;
                        skip_calls(h, ret->turns, deadline, c->m[ai].calls, n, 0, stop);
                        return 0;
                }
                for (size_t i = 0; i < n; i++) {
                        if (au_now_ms() >= deadline) {
                                skip_calls(h, ret->turns, deadline, c->m[ai].calls, n, i,
                                           "the agent's wall time passed");
                                ret->outcome = ORC_AGENT_WALL_TIME;
                                snprintf(ret->error, sizeof(ret->error),
                                         "the agent's wall time of %llu ms passed",
                                         (unsigned long long) spec->wall_ms);
                                return 0;
                        }
                        fab_tool_call fc = c->m[ai].calls[i]; /* the strings stay put */
                        if ((r = do_call(spec, ftools, h, ret->turns, deadline, &fc, c, ret)) < 0)
                                return r;
                }
        }
}

int orc_agent_run(fab_fabric *f, const orc_agent_spec *spec, const orc_agent_hooks *hooks,
                  orc_agent_result *ret) {
        _cleanup_free_ fab_tool *ftools = NULL;
        convo c = {};
        int r;

        *ret = (orc_agent_result){};
        if (!hooks || !hooks->run || spec->n_tools == 0)
                return -EINVAL;
        if (!(ftools = calloc(spec->n_tools, sizeof(*ftools))))
                return -ENOMEM;
        for (size_t i = 0; i < spec->n_tools; i++)
                ftools[i] = (fab_tool){.name = spec->tools[i].name,
                                       .description = spec->tools[i].description,
                                       .schema = spec->tools[i].parameters};
        r = run_loop(f, spec, hooks, ftools, &c, ret);
        if (r >= 0 && !ret->answer && !(ret->answer = strdup("")))
                r = -ENOMEM;
        if (r >= 0)
                r = gen_transcript(&c, &ret->transcript_json);
        convo_done(&c);
        if (r < 0)
                orc_agent_result_done(ret);
        return r;
}

void orc_agent_result_done(orc_agent_result *r) {
        free(r->answer);
        free(r->transcript_json);
        r->answer = NULL;
        r->transcript_json = NULL;
}

char *orc_agent_result_json(const orc_agent_result *r) {
        _cleanup_free_ char *head = NULL;
        char *s = NULL;
        const char *t =
                r->transcript_json ? r->transcript_json : "{\"transcript\":[],\"transcript_elided\":0}";
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g)
                return NULL;
        if (au_json_gen_map_open(g) < 0 ||
            au_json_gen_kv_string(g, "outcome", orc_agent_outcome_name(r->outcome)) < 0 ||
            au_json_gen_kv_uint64(g, "answer_bytes", r->answer ? strlen(r->answer) : 0) < 0 ||
            au_json_gen_kv_uint64(g, "turns", r->turns) < 0 ||
            au_json_gen_kv_uint64(g, "tool_calls", r->tool_calls) < 0 ||
            au_json_gen_kv_uint64(g, "refused", r->refused) < 0 ||
            au_json_gen_kv_string(g, "provider", r->provider) < 0 ||
            au_json_gen_kv_string(g, "model", r->model) < 0 || au_json_gen_string(g, "tokens") < 0 ||
            au_json_gen_map_open(g) < 0 || au_json_gen_kv_uint64(g, "input", r->usage.input) < 0 ||
            au_json_gen_kv_uint64(g, "cached", r->usage.cached) < 0 ||
            au_json_gen_kv_uint64(g, "cache_write", r->usage.cache_write) < 0 ||
            au_json_gen_kv_uint64(g, "output", r->usage.output) < 0 || au_json_gen_map_close(g) < 0 ||
            au_json_gen_string(g, "cost_usd") < 0 ||
            yajl_gen_double(g, isfinite(r->cost_usd) ? r->cost_usd : 0) != yajl_gen_status_ok ||
            au_json_gen_kv_string(g, "error", r->error) < 0 || au_json_gen_map_close(g) < 0)
                return NULL;
        if (!(head = au_json_gen_finish(g, NULL)))
                return NULL;
        /* splice: head without its closing brace, a comma, the transcript object without its opening one */
        if (asprintf(&s, "%.*s,%s", (int) (strlen(head) - 1), head, t + 1) < 0)
                return NULL;
        return s;
}
