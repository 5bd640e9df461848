/* SPDX-License-Identifier: MIT */
/* orchestrator/model: model steps over fabric/ (see model.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "orchestrator/model.h"

#define PLACEHOLDER_OPEN "{{needs."
#define PLACEHOLDER_CLOSE ".stdout}}"

static const char *const outcome_names[] = {
        [ORC_MODEL_OK] = "ok",
        [ORC_MODEL_FAILED] = "failed",
        [ORC_MODEL_BUDGET] = "budget_exceeded",
        [ORC_MODEL_VERIFY_FAILED] = "verify_failed",
        [ORC_MODEL_UNVERIFIED] = "unverified",
};

const char *orc_model_outcome_name(orc_model_outcome o) {
        return o < ELEMENTSOF(outcome_names) ? outcome_names[o] : "unknown";
}

void orc_model_spec_done(orc_model_spec *s) {
        free(s->system);
        free(s->prompt);
        free(s->criteria);
        *s = (orc_model_spec){};
}

/* Calls fn for each placeholder's need id in prompt; stops at fn's first nonzero return. */
static int each_placeholder(const char *prompt, int (*fn)(void *ud, const char *id, size_t len), void *ud) {
        const char *p = prompt;
        while ((p = strstr(p, PLACEHOLDER_OPEN))) {
                const char *id = p + strlen(PLACEHOLDER_OPEN);
                const char *end = strstr(id, PLACEHOLDER_CLOSE);
                if (!end)
                        return fn(ud, id, 0);
                int r = fn(ud, id, (size_t) (end - id));
                if (r != 0)
                        return r;
                p = end + strlen(PLACEHOLDER_CLOSE);
        }
        return 0;
}

typedef struct need_check {
        char *const *needs;
        size_t n;
        au_error *err;
} need_check;

static int check_one(void *ud, const char *id, size_t len) {
        need_check *c = ud;
        for (size_t i = 0; len > 0 && i < c->n; i++)
                if (strlen(c->needs[i]) == len && memcmp(c->needs[i], id, len) == 0)
                        return 0;
        return au_error_set_field(c->err, "model.prompt",
                                  "model.prompt: {{needs.%.*s.stdout}} names no step of this step's needs",
                                  (int) MIN(len, 64), id);
}

static int get_text(yajl_val v, const char *key, size_t max, bool required, char **ret, au_error *err) {
        char path[64];
        const char *s;
        yajl_val x = au_json_get(v, key);
        int r;

        snprintf(path, sizeof(path), "model.%s", key);
        if (!x) {
                if (required)
                        return au_error_set_field(err, path, "%s: missing", path);
                return 0;
        }
        if ((r = au_json_get_string(x, path, &s, err)) < 0)
                return r;
        if ((required && !*s) || strlen(s) > max)
                return au_error_set_field(err, path, "%s: must be %s%zu bytes at most", path,
                                          required ? "1 byte to " : "", max);
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int orc_model_spec_parse(yajl_val v, char *const *needs, size_t n_needs, orc_model_spec *ret,
                         au_error *err) {
        static const char *const known[] = {"role", "system", "prompt", "max_tokens", "verify", NULL};
        orc_model_spec s = {.role = FAB_ROLE_EXECUTOR, .min_confidence = 0.5};
        yajl_val x;
        uint32_t mt;
        int r;

        if ((r = au_json_check_object(v, "model", known, err)) < 0)
                return r;
        if ((x = au_json_get(v, "role"))) {
                const char *name;
                if ((r = au_json_get_string(x, "model.role", &name, err)) < 0)
                        return r;
                r = fab_role_from_name(name);
                if (r < 0)
                        return au_error_set_field(err, "model.role",
                                                  "model.role: unknown role '%.32s' (planner, executor, "
                                                  "verifier, auditor, synthesizer)",
                                                  name);
                s.role = (fab_role) r;
        }
        if (!au_json_get(v, "max_tokens"))
                return au_error_set_field(err, "model.max_tokens",
                                          "model.max_tokens: missing (it bounds the cost)");
        if ((r = au_json_get_uint32(au_json_get(v, "max_tokens"), "model.max_tokens", &mt, err)) < 0)
                return r;
        if (mt == 0 || mt > ORC_MODEL_MAX_TOKENS)
                return au_error_set_field(err, "model.max_tokens", "model.max_tokens: must be 1 to %d",
                                          ORC_MODEL_MAX_TOKENS);
        s.max_tokens = mt;
        if ((r = get_text(v, "prompt", ORC_MODEL_MAX_PROMPT, true, &s.prompt, err)) < 0 ||
            (r = get_text(v, "system", ORC_MODEL_MAX_SYSTEM, false, &s.system, err)) < 0)
                goto fail;
        need_check c = {.needs = needs, .n = n_needs, .err = err};
        if (each_placeholder(s.prompt, check_one, &c) != 0) {
                r = -EINVAL;
                goto fail;
        }
        if ((x = au_json_get(v, "verify"))) {
                static const char *const vk[] = {"criteria", "min_confidence", NULL};
                if ((r = au_json_check_object(x, "model.verify", vk, err)) < 0)
                        goto fail;
                s.verify = true;
                if (au_json_get(x, "criteria")) {
                        const char *t;
                        if ((r = au_json_get_string(au_json_get(x, "criteria"), "model.verify.criteria", &t,
                                                    err)) < 0)
                                goto fail;
                        if (strlen(t) > ORC_MODEL_MAX_SYSTEM) {
                                r = au_error_set_field(err, "model.verify.criteria",
                                                       "model.verify.criteria: %d bytes at most",
                                                       ORC_MODEL_MAX_SYSTEM);
                                goto fail;
                        }
                        if (!(s.criteria = strdup(t))) {
                                r = -ENOMEM;
                                goto fail;
                        }
                }
                yajl_val mc = au_json_get(x, "min_confidence");
                if (mc) {
                        char *end;
                        double d = YAJL_IS_NUMBER(mc) ? strtod(mc->u.number.r, &end) : NAN;
                        if (!(d >= 0 && d <= 1)) {
                                r = au_error_set_field(
                                        err, "model.verify.min_confidence",
                                        "model.verify.min_confidence: expected a number from 0 to 1");
                                goto fail;
                        }
                        s.min_confidence = d;
                }
        }
        *ret = s;
        return 0;
fail:
        orc_model_spec_done(&s);
        return r;
}

static int render_prompt(const char *prompt, char *const *ids, char *const *outputs, size_t n, au_buf *out) {
        const char *p = prompt, *q;
        int r;

        while ((q = strstr(p, PLACEHOLDER_OPEN))) {
                const char *id = q + strlen(PLACEHOLDER_OPEN), *end = strstr(id, PLACEHOLDER_CLOSE);
                size_t len = end ? (size_t) (end - id) : 0, i;
                if (!end)
                        break;
                if ((r = au_buf_append(out, p, (size_t) (q - p))) < 0)
                        return r;
                for (i = 0; i < n; i++)
                        if (strlen(ids[i]) == len && memcmp(ids[i], id, len) == 0)
                                break;
                if (i == n)
                        return -EINVAL;
                if ((r = au_buf_puts(out, outputs[i] ? outputs[i] : "")) < 0)
                        return r;
                p = end + strlen(PLACEHOLDER_CLOSE);
        }
        return au_buf_puts(out, p);
}

static void add_usage(fab_usage *a, const fab_usage *b) {
        a->input += b->input;
        a->cached += b->cached;
        a->cache_write += b->cache_write;
        a->output += b->output;
        a->reported = a->reported || b->reported;
}

static orc_model_outcome from_fab(fab_outcome o) {
        return o == FAB_BUDGET ? ORC_MODEL_BUDGET : ORC_MODEL_FAILED;
}

/* Reads the verifier's {"verdict","confidence","reason"} from its answer (the outermost braces). */
static int read_verdict(const char *text, orc_model_result *ret) {
        _cleanup_json_ yajl_val v = NULL;
        const char *a = strchr(text, '{'), *b = strrchr(text, '}');
        au_error err = {};
        yajl_val x;

        if (!a || !b || b < a || au_json_parse(a, (size_t) (b - a + 1), 64 * 1024, &v, &err) < 0)
                return -EINVAL;
        x = au_json_get(v, "verdict");
        if (!YAJL_IS_STRING(x) || (strcmp(x->u.string, "pass") != 0 && strcmp(x->u.string, "fail") != 0))
                return -EINVAL;
        snprintf(ret->verdict, sizeof(ret->verdict), "%s", x->u.string);
        x = au_json_get(v, "confidence");
        ret->confidence = YAJL_IS_NUMBER(x) ? YAJL_GET_DOUBLE(x) : 0;
        if (!(ret->confidence >= 0 && ret->confidence <= 1))
                ret->confidence = 0;
        x = au_json_get(v, "reason");
        if (YAJL_IS_STRING(x))
                snprintf(ret->reason, sizeof(ret->reason), "%s", x->u.string);
        return 0;
}

static const char verifier_system[] =
        "You check another model's answer to a task. Reply with one JSON object and nothing else: "
        "{\"verdict\": \"pass\" or \"fail\", \"confidence\": a number from 0 to 1, \"reason\": a short "
        "sentence}.";

static int verify(fab_fabric *f, const orc_model_spec *spec, const char *task, const char *workflow,
                  const char *key, orc_model_result *ret) {
        _cleanup_buf_ au_buf q = AU_BUF_INIT(0);
        fab_result vr;
        int r;

        if ((r = au_buf_printf(&q, "Task:\n%s\n\n", task)) < 0 ||
            (spec->criteria && (r = au_buf_printf(&q, "Criteria:\n%s\n\n", spec->criteria)) < 0) ||
            (r = au_buf_printf(&q, "Answer to check:\n%s\n", ret->output)) < 0)
                return r;
        fab_msg m = {.role = FAB_MSG_USER, .text = q.p};
        fab_request req = {.role = FAB_ROLE_VERIFIER,
                           .system = verifier_system,
                           .msgs = &m,
                           .n_msgs = 1,
                           .max_tokens = 256,
                           .workflow = workflow,
                           .key = key,
                           /* a verifier must be a different provider from the one it checks */
                           .exclude_provider = ret->provider};
        r = fab_call(f, &req, &vr);
        if (r < 0)
                return r;
        add_usage(&ret->usage, &vr.usage);
        ret->cost_usd += vr.cost_usd;
        ret->attempts += vr.attempts;
        snprintf(ret->verifier, sizeof(ret->verifier), "%s", vr.provider);
        if (vr.outcome != FAB_OK) {
                ret->outcome = vr.outcome == FAB_BUDGET        ? ORC_MODEL_BUDGET
                               : vr.outcome == FAB_UNAVAILABLE ? ORC_MODEL_UNVERIFIED
                                                               : ORC_MODEL_FAILED;
                snprintf(ret->error, sizeof(ret->error), "verifier: %.480s", vr.error);
        } else if (read_verdict(vr.text, ret) < 0) {
                ret->outcome = ORC_MODEL_VERIFY_FAILED;
                snprintf(ret->error, sizeof(ret->error), "verifier %s gave no verdict", vr.provider);
        } else if (strcmp(ret->verdict, "pass") != 0 || ret->confidence < spec->min_confidence) {
                ret->outcome = ORC_MODEL_VERIFY_FAILED;
                snprintf(ret->error, sizeof(ret->error),
                         "verifier %s: %s at confidence %.2f (needs pass at %.2f): %s", vr.provider,
                         ret->verdict, ret->confidence, spec->min_confidence, ret->reason);
        }
        fab_result_done(&vr);
        return 0;
}

int orc_model_run(fab_fabric *f, const orc_model_spec *spec, char *const *need_ids, char *const *outputs,
                  size_t n_needs, const char *workflow, const char *key, size_t start_entry,
                  orc_model_result *ret) {
        _cleanup_buf_ au_buf prompt =
                AU_BUF_INIT(ORC_MODEL_MAX_PROMPT + (size_t) n_needs * ORC_MODEL_MAX_OUTPUT);
        fab_result fr;
        int r;

        *ret = (orc_model_result){};
        if ((r = render_prompt(spec->prompt, need_ids, outputs, n_needs, &prompt)) < 0)
                return r;
        fab_msg m = {.role = FAB_MSG_USER, .text = prompt.p};
        fab_request req = {.role = spec->role,
                           .system = spec->system,
                           .msgs = &m,
                           .n_msgs = 1,
                           .max_tokens = spec->max_tokens,
                           .workflow = workflow,
                           .key = key,
                           .start_entry = start_entry};
        r = fab_call(f, &req, &fr);
        if (r < 0)
                return r;
        snprintf(ret->provider, sizeof(ret->provider), "%s", fr.provider);
        snprintf(ret->model, sizeof(ret->model), "%s", fr.model);
        ret->entry = fr.entry;
        ret->attempts = fr.attempts;
        ret->fallbacks = fr.fallbacks;
        ret->usage = fr.usage;
        ret->cost_usd = fr.cost_usd;
        if (fr.outcome != FAB_OK) {
                ret->outcome = from_fab(fr.outcome);
                snprintf(ret->error, sizeof(ret->error), "%s", fr.error);
                ret->output = strdup("");
                fab_result_done(&fr);
                return ret->output ? 0 : -ENOMEM;
        }
        size_t len = strlen(fr.text);
        ret->output = fr.text; /* taken */
        fr.text = NULL;
        if (len > ORC_MODEL_MAX_OUTPUT)
                ret->output[ORC_MODEL_MAX_OUTPUT] = '\0';
        fab_result_done(&fr);
        ret->outcome = ORC_MODEL_OK;
        if (spec->verify)
                return verify(f, spec, prompt.p, workflow, key, ret);
        return 0;
}

void orc_model_result_done(orc_model_result *r) {
        free(r->output);
        r->output = NULL;
}

ssize_t orc_model_next_entry(const fab_fabric *f, fab_role role, size_t entry) {
        const char *p = fab_chain_provider(f, role, entry);
        for (size_t i = entry + 1; p && i < fab_chain_len(f, role); i++)
                if (strcmp(fab_chain_provider(f, role, i), p) != 0)
                        return (ssize_t) i;
        return -1;
}

static int gen_double(yajl_gen g, const char *key, double v) {
        AU_JSON_GEN_TRY(au_json_gen_string(g, key));
        return yajl_gen_double(g, isfinite(v) ? v : 0) == yajl_gen_status_ok ? 0 : -ENOMEM;
}

static int gen_result(yajl_gen g, const orc_model_result *r) {
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "outcome", orc_model_outcome_name(r->outcome)));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "provider", r->provider));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "model", r->model));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "attempts", r->attempts));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "fallbacks", r->fallbacks));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "tokens"));
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "input", r->usage.input));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "cached", r->usage.cached));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "cache_write", r->usage.cache_write));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "output", r->usage.output));
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        AU_JSON_GEN_TRY(gen_double(g, "cost_usd", r->cost_usd));
        if (r->verifier[0] || r->verdict[0]) {
                AU_JSON_GEN_TRY(au_json_gen_string(g, "verify"));
                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "provider", r->verifier));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "verdict", r->verdict));
                AU_JSON_GEN_TRY(gen_double(g, "confidence", r->confidence));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "reason", r->reason));
                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        }
        if (r->error[0])
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "error", r->error));
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        return 0;
}

char *orc_model_result_json(const orc_model_result *r) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g || gen_result(g, r) < 0)
                return NULL;
        return au_json_gen_finish(g, NULL);
}
