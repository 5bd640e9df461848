/* SPDX-License-Identifier: MIT */
/*
 * Workflow documents (workflow.h): one pass over the steps for what each says
 * on its own (fields, id, run spec, retry, selector), then the references
 * between steps (needs, fallback) through a hash index of ids, then cycles
 * with Kahn's algorithm, first over `needs` alone and then with the waits a
 * fallback adds. Everything is linear in the size of the document (Kahn's
 * ready set is a heap: O(e log n)), so 10,000 steps parse in milliseconds.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/json.h"
#include "fabric/fabric.h"
#include "memory/secret.h"
#include "orchestrator/agent.h"
#include "orchestrator/model.h"
#include "orchestrator/workflow.h"

#define NAME_MAX_CHARS 128
#define DEFAULT_NAME "workflow"
#define DESCRIPTION_MAX_BYTES 4096
#define RETRY_MAX_ATTEMPTS 100
#define RETRY_MAX_BACKOFF_MS UINT64_C(3600000)      /* an hour */
#define RETRY_MAX_MAX_BACKOFF_MS UINT64_C(86400000) /* a day */
#define RETRY_DEFAULT_BACKOFF_MS UINT64_C(500)
#define RETRY_DEFAULT_MAX_BACKOFF_MS UINT64_C(10000)
#define SELECTOR_MAX_LABELS 32
#define SELECTOR_MAX_KEY 64
#define SELECTOR_MAX_VALUE 256
/* Bytes of step names a cycle's message spells out before it says "...". */
#define CYCLE_PATH_MAX 200

#define NONE SIZE_MAX

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

/* ---- freeing ------------------------------------------------------------ */

const char *orc_step_kind_name(orc_step_kind k) {
        static const char *const names[] = {[ORC_STEP_RUN] = "run",
                                            [ORC_STEP_APPROVAL] = "approval",
                                            [ORC_STEP_MODEL] = "model",
                                            [ORC_STEP_AGENT] = "agent"};
        return k < ELEMENTSOF(names) ? names[k] : "run";
}

static void step_done(orc_step *s) {
        free(s->id);
        for (size_t i = 0; i < s->n_needs; i++)
                free(s->needs[i]);
        free(s->needs);
        free(s->fallback);
        free(s->run_json);
        free(s->program);
        for (size_t i = 0; i < s->n_selector; i++) {
                free(s->selector[i].key);
                free(s->selector[i].value);
        }
        free(s->selector);
}

orc_workflow *orc_workflow_free(orc_workflow *w) {
        if (!w)
                return NULL;
        free(w->name);
        for (size_t i = 0; w->steps && i < w->n_steps; i++)
                step_done(&w->steps[i]);
        free(w->steps);
        free(w->json);
        free(w->id_slots);
        free(w);
        return NULL;
}

/* ---- the id index --------------------------------------------------------- */

/* FNV-1a: ids are short, and a table at most half full keeps probes short. */
static size_t hash_id(const char *s) {
        uint64_t h = UINT64_C(14695981039346656037);

        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= UINT64_C(1099511628211);
        }
        return (size_t) h;
}

static int index_new(orc_workflow *w, size_t n) {
        size_t size = 16;

        while (size < 2 * n)
                size *= 2;
        w->id_slots = calloc(size, sizeof(*w->id_slots));
        if (!w->id_slots)
                return -ENOMEM;
        w->id_mask = size - 1;
        return 0;
}

/* Slots hold a step index + 1; 0 is empty. */
static size_t index_find(const orc_workflow *w, const char *id) {
        for (size_t h = hash_id(id) & w->id_mask;; h = (h + 1) & w->id_mask) {
                uint32_t slot = w->id_slots[h];

                if (slot == 0)
                        return NONE;
                if (streq(w->steps[slot - 1].id, id))
                        return slot - 1;
        }
}

/* Adds step i's id; returns NONE, or the index of the step that already has it. */
static size_t index_add(orc_workflow *w, size_t i) {
        const char *id = w->steps[i].id;
        size_t h;

        for (h = hash_id(id) & w->id_mask; w->id_slots[h] != 0; h = (h + 1) & w->id_mask)
                if (streq(w->steps[w->id_slots[h] - 1].id, id))
                        return w->id_slots[h] - 1;
        w->id_slots[h] = (uint32_t) (i + 1);
        return NONE;
}

static size_t step_index(const orc_workflow *w, const char *id) {
        if (!id)
                return NONE;
        if (w->id_slots)
                return index_find(w, id);
        for (size_t i = 0; i < w->n_steps; i++)
                if (w->steps[i].id && streq(w->steps[i].id, id))
                        return i;
        return NONE;
}

const orc_step *orc_workflow_step(const orc_workflow *w, const char *id) {
        size_t i;

        if (!w)
                return NULL;
        i = step_index(w, id);
        return i == NONE ? NULL : &w->steps[i];
}

/* ---- errors --------------------------------------------------------------- */

/*
 * A refusal about the step with this id: field "steps.<id>[.<sub>]", message
 * "step '<id>': ...". Returns -EINVAL.
 */
static _printf_(4, 5) int step_error(au_error *err, const char *id, const char *sub, const char *fmt, ...) {
        char field[sizeof(err->field)], msg[sizeof(err->msg)];
        va_list ap;

        snprintf(field, sizeof(field), "steps.%s%s%s", id, sub && sub[0] ? "." : "", sub ? sub : "");
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return au_error_set_field(err, field, "step '%s': %s", id, msg);
}

static int nomem(au_error *err) {
        return au_error_set(err, ENOMEM, "parse workflow");
}

/* Passes on sub, a refusal whose field is relative to the step, as the step's. */
static int step_error_from(au_error *err, const char *id, const au_error *sub, int r) {
        if (r == -ENOMEM)
                return nomem(err);
        return step_error(err, id, sub->field, "%s", sub->msg);
}

/*
 * Passes on the sandbox's refusal of a run spec: its field ("limits.pids")
 * becomes "steps.<id>.run.limits.pids", its message (which starts with that
 * field, most often) "step '<id>': run.limits.pids: ...".
 */
static int run_error(au_error *err, const char *id, const au_error *sub, int r) {
        char field[sizeof(sub->field) + 8];
        size_t n = strlen(sub->field);

        if (r == -ENOMEM)
                return nomem(err);
        snprintf(field, sizeof(field), "run%s%s", n > 0 ? "." : "", sub->field);
        if (n > 0 && strncmp(sub->msg, sub->field, n) == 0 && sub->msg[n] == ':')
                return step_error(err, id, field, "run.%s", sub->msg);
        return step_error(err, id, field, "%s: %s", field, sub->msg);
}

/* ---- one step ----------------------------------------------------------------- */

static bool id_char_ok(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == '-';
}

static int check_step_id(const char *id, const char *field, au_error *err) {
        size_t n = strlen(id);

        if (n == 0 || n > ORC_MAX_STEP_ID)
                return au_error_set_field(err, field, "%s: a step id must be 1 to %d characters", field,
                                          ORC_MAX_STEP_ID);
        for (size_t i = 0; i < n; i++)
                if (!id_char_ok(id[i]))
                        return au_error_set_field(err, field,
                                                  "%s: invalid character at offset %zu of the step id "
                                                  "(allowed: A-Z a-z 0-9 . _ -)",
                                                  field, i);
        return 0;
}

static int read_description(yajl_val v, const char *path, au_error *sub) {
        const char *s;
        int r;

        r = au_json_get_string(v, path, &s, sub);
        if (r < 0)
                return r;
        if (strlen(s) > DESCRIPTION_MAX_BYTES)
                return au_error_set_field(sub, path, "%s: %zu bytes, over the limit of %d", path, strlen(s),
                                          DESCRIPTION_MAX_BYTES);
        return 0;
}

/* retry.<key>, a time in ms up to max, into *ret when present. Returns 1 when present, 0 when not, or <0. */
static int read_retry_ms(yajl_val v, const char *key, uint64_t max, uint64_t *ret, au_error *sub) {
        yajl_val x = au_json_get(v, key);
        char field[32];
        int r;

        if (!x)
                return 0;
        snprintf(field, sizeof(field), "retry.%s", key);
        r = au_json_get_uint64(x, field, ret, sub);
        if (r < 0)
                return r;
        if (*ret > max)
                return au_error_set_field(sub, field, "%s: %" PRIu64 " is over the limit of %" PRIu64, field,
                                          *ret, max);
        return 1;
}

/* Errors go to sub with fields relative to the step ("retry.backoff_ms"). */
static int read_retry(yajl_val v, orc_step *s, au_error *sub) {
        static const char *const known[] = {"max_attempts", "backoff_ms", "max_backoff_ms", NULL};
        yajl_val x;
        int r;

        r = au_json_check_object(v, "retry", known, sub);
        if (r < 0)
                return r;
        if ((x = au_json_get(v, "max_attempts"))) {
                r = au_json_get_uint32(x, "retry.max_attempts", &s->max_attempts, sub);
                if (r < 0)
                        return r;
                if (s->max_attempts < 1 || s->max_attempts > RETRY_MAX_ATTEMPTS)
                        return au_error_set_field(sub, "retry.max_attempts",
                                                  "retry.max_attempts: must be 1 to %d, not %" PRIu32,
                                                  RETRY_MAX_ATTEMPTS, s->max_attempts);
        }
        r = read_retry_ms(v, "backoff_ms", RETRY_MAX_BACKOFF_MS, &s->backoff_ms, sub);
        if (r < 0)
                return r;
        r = read_retry_ms(v, "max_backoff_ms", RETRY_MAX_MAX_BACKOFF_MS, &s->max_backoff_ms, sub);
        if (r < 0)
                return r;
        if (r == 0)
                s->max_backoff_ms = MAX(RETRY_DEFAULT_MAX_BACKOFF_MS, s->backoff_ms);
        else if (s->max_backoff_ms < s->backoff_ms)
                return au_error_set_field(sub, "retry.max_backoff_ms",
                                          "retry.max_backoff_ms: %" PRIu64
                                          " is below retry.backoff_ms (%" PRIu64 ")",
                                          s->max_backoff_ms, s->backoff_ms);
        return 0;
}

static int read_selector(yajl_val v, orc_step *s, au_error *sub) {
        char path[sizeof(sub->field)];
        size_t n;
        int r;

        r = au_json_check_object(v, "node_selector", NULL, sub);
        if (r < 0)
                return r;
        n = v->u.object.len;
        if (n > SELECTOR_MAX_LABELS)
                return au_error_set_field(sub, "node_selector",
                                          "node_selector: %zu labels, over the limit of %d", n,
                                          SELECTOR_MAX_LABELS);
        if (n == 0)
                return 0;
        s->selector = calloc(n, sizeof(*s->selector));
        if (!s->selector)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *key = v->u.object.keys[i], *value;
                size_t len = strlen(key);

                if (len == 0 || len > SELECTOR_MAX_KEY)
                        return au_error_set_field(sub, "node_selector",
                                                  "node_selector: label names must be 1 to %d bytes",
                                                  SELECTOR_MAX_KEY);
                au_json_path(path, sizeof(path), "node_selector", key);
                r = au_json_get_string(v->u.object.values[i], path, &value, sub);
                if (r < 0)
                        return r;
                if (strlen(value) > SELECTOR_MAX_VALUE)
                        return au_error_set_field(sub, path, "%s: %zu bytes, over the limit of %d", path,
                                                  strlen(value), SELECTOR_MAX_VALUE);
                s->selector[i].key = strdup(key);
                s->selector[i].value = strdup(value);
                s->n_selector = i + 1;
                if (!s->selector[i].key || !s->selector[i].value)
                        return -ENOMEM;
        }
        return 0;
}

static int read_needs(yajl_val v, orc_step *s, au_error *sub) {
        char path[32];
        size_t n;
        int r;

        r = au_json_check_array(v, "needs", sub);
        if (r < 0)
                return r;
        n = v->u.array.len;
        if (n == 0)
                return 0;
        s->needs = calloc(n, sizeof(*s->needs));
        if (!s->needs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *name;

                snprintf(path, sizeof(path), "needs[%zu]", i);
                r = au_json_get_string(v->u.array.values[i], path, &name, sub);
                if (r < 0)
                        return r;
                s->needs[i] = strdup(name);
                if (!s->needs[i])
                        return -ENOMEM;
                s->n_needs = i + 1;
        }
        return 0;
}

static char *join_argv(char *const *argv) {
        size_t len = 0;
        char *s, *p;

        for (size_t i = 0; argv && argv[i]; i++)
                len += strlen(argv[i]) + 1;
        s = p = malloc(len + 1);
        if (!s)
                return NULL;
        for (size_t i = 0; argv && argv[i]; i++) {
                if (i > 0)
                        *p++ = ' ';
                p = stpcpy(p, argv[i]);
        }
        *p = '\0';
        return s;
}

static bool env_name_valid(const char *s) {
        if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
                return false;
        for (size_t i = 0; s[i]; i++)
                if (i >= 128 || !((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
                                  (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        return false;
        return true;
}

/*
 * run.secrets (doc/trust.md "Secrets"): {"VAR": "secret-name", ...}, or
 * ["NAME", ...] meaning VAR = NAME. Checks it; *json (the run as kept)
 * becomes the run with secrets in the object form, and *ret_checked the run
 * without secrets, for the sandbox's check. Values are never here: names only.
 */
static int write_secrets(yajl_val run, orc_step *s, char **json, size_t *len, char **ret_checked,
                         size_t *ret_checked_len, au_error *err) {
        _cleanup_json_gen_ yajl_gen kept = au_json_gen_new(false), checked = au_json_gen_new(false);
        yajl_val sec = au_json_get(run, "secrets"), env = au_json_get(run, "env");
        bool list = sec && YAJL_IS_ARRAY(sec);
        size_t n = list ? sec->u.array.len : sec && YAJL_IS_OBJECT(sec) ? sec->u.object.len : 0;
        char *a, *b;

        if (!kept || !checked)
                return nomem(err);
        if (!sec || (!list && !YAJL_IS_OBJECT(sec)))
                return step_error(
                        err, s->id, "run.secrets",
                        "run.secrets: expected an object {\"VAR\": \"secret-name\"} or a list of names");
        if (n > MEM_SECRET_MAX_PER_STEP)
                return step_error(err, s->id, "run.secrets",
                                  "run.secrets: %zu entries, over the limit of %d", n,
                                  MEM_SECRET_MAX_PER_STEP);
        au_json_gen_map_open(kept);
        au_json_gen_map_open(checked);
        for (size_t i = 0; i < run->u.object.len; i++) {
                const char *key = run->u.object.keys[i];
                if (strcmp(key, "secrets") == 0)
                        continue;
                au_json_gen_string(kept, key);
                au_json_gen_tree(kept, run->u.object.values[i]);
                au_json_gen_string(checked, key);
                au_json_gen_tree(checked, run->u.object.values[i]);
        }
        if (n > 0) { /* an empty secrets is left out: nodes know the field only with names in it */
                au_json_gen_string(kept, "secrets");
                au_json_gen_map_open(kept);
        }
        for (size_t i = 0; i < n; i++) {
                yajl_val x = list ? sec->u.array.values[i] : sec->u.object.values[i];
                const char *name = YAJL_GET_STRING(x), *var = list ? name : sec->u.object.keys[i];
                char field[200];

                snprintf(field, sizeof(field), "run.secrets.%.128s", list || !var ? "" : var);
                if (list)
                        snprintf(field, sizeof(field), "run.secrets[%zu]", i);
                if (!name || !mem_secret_name_valid(name))
                        return step_error(
                                err, s->id, field,
                                "%s: expected a secret's name (1 to 128 of [A-Za-z0-9._-], starting "
                                "with a letter or digit)",
                                field);
                if (!env_name_valid(var))
                        return step_error(
                                err, s->id, field,
                                "%s: '%.128s' is not a variable name (expected [A-Za-z_][A-Za-z0-9_]*)",
                                field, var);
                if (strncmp(var, "AUTOOS_", 7) == 0)
                        return step_error(err, s->id, field,
                                          "%s: AUTOOS_ variables are set by the coordinator", field);
                if (env && YAJL_IS_OBJECT(env) && au_json_get(env, var))
                        return step_error(err, s->id, field, "%s: %s is also set in run.env", field, var);
                for (size_t k = 0; k < i; k++)
                        if (strcmp(list ? YAJL_GET_STRING(sec->u.array.values[k]) ?: ""
                                        : sec->u.object.keys[k],
                                   var) == 0)
                                return step_error(err, s->id, field, "%s: %s is named twice", field, var);
                au_json_gen_kv_string(kept, var, name);
        }
        if (n > 0)
                au_json_gen_map_close(kept);
        au_json_gen_map_close(kept);
        au_json_gen_map_close(checked);
        a = au_json_gen_finish(kept, len);
        b = au_json_gen_finish(checked, ret_checked_len);
        if (!a || !b) {
                free(a);
                free(b);
                return nomem(err);
        }
        free(*json);
        *json = a;
        *ret_checked = b;
        return 0;
}

static int read_run(yajl_val v, const sbx_policy *policy, orc_step *s, au_error *err) {
        static const char *const reserved[] = {"id", "workflow", "step", "attempt"};
        _cleanup_json_gen_ yajl_gen g = NULL;
        _cleanup_sbx_spec_ sbx_spec *spec = NULL;
        _cleanup_free_ char *json = NULL, *checked = NULL;
        au_error sub = {};
        size_t len, checked_len = 0;
        int r;

        if (!YAJL_IS_OBJECT(v))
                return step_error(err, s->id, "run", "run: expected an object");
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (au_json_get(v, reserved[i])) {
                        char field[32];

                        snprintf(field, sizeof(field), "run.%s", reserved[i]);
                        return step_error(err, s->id, field,
                                          "%s: set by the coordinator, not allowed in a workflow", field);
                }

        /* The sandbox checks the spec as a node would, from the same text we keep (less its secrets). */
        g = au_json_gen_new(false);
        if (!g)
                return nomem(err);
        r = au_json_gen_tree(g, v);
        if (r == -ENOMEM)
                return nomem(err);
        if (r < 0)
                return step_error(err, s->id, "run", "run: cannot be written back as JSON");
        json = au_json_gen_finish(g, &len);
        if (!json)
                return nomem(err);
        if (au_json_get(v, "secrets")) {
                r = write_secrets(v, s, &json, &len, &checked, &checked_len, err);
                if (r < 0)
                        return r;
        }

        r = sbx_spec_from_json(checked ? checked : json, checked ? checked_len : len, policy, &spec, &sub);
        if (r < 0)
                return run_error(err, s->id, &sub, r);

        s->program = join_argv(spec->argv);
        if (!s->program)
                return nomem(err);
        s->trust = spec->trust;
        s->wall_ms = spec->limits.wall_ms;
        s->run_json = TAKE_PTR(json);
        return 0;
}

/* fallback and retry, as a run step has them. */
static int read_fallback_retry(yajl_val v, orc_step *s, au_error *err) {
        au_error sub = {};
        const char *str;
        yajl_val x;
        int r;

        if ((x = au_json_get(v, "fallback"))) {
                r = au_json_get_string(x, "fallback", &str, &sub);
                if (r < 0)
                        return step_error_from(err, s->id, &sub, r);
                s->fallback = strdup(str);
                if (!s->fallback)
                        return nomem(err);
        }
        if ((x = au_json_get(v, "retry")) && (r = read_retry(x, s, &sub)) < 0)
                return step_error_from(err, s->id, &sub, r);
        return 0;
}

/*
 * A model or agent step: its block parsed as the fabric workers will (model.h,
 * agent.h; the agent's run templates under policy) and kept compact in
 * run_json; no run, no node_selector, no block of the other kind.
 */
static int read_fabric_step(yajl_val v, const sbx_policy *policy, orc_step *s, au_error *err) {
        const char *key = s->kind == ORC_STEP_MODEL ? "model" : "agent";
        const char *other = s->kind == ORC_STEP_MODEL ? "agent" : "model";
        static const char *const refused[] = {"run", "node_selector"};
        _cleanup_json_gen_ yajl_gen g = NULL;
        au_error sub = {};
        yajl_val x;
        int r;

        for (size_t k = 0; k < ELEMENTSOF(refused); k++)
                if (au_json_get(v, refused[k]))
                        return step_error(err, s->id, refused[k], "%s: not allowed for a %s step",
                                          refused[k], key);
        if (au_json_get(v, other))
                return step_error(err, s->id, other, "%s: only for a %s step", other, other);
        /* its tool calls' runs are steps named <id>.a<attempt>.t<turn>-<k>, within ORC_MAX_STEP_ID */
        if (s->kind == ORC_STEP_AGENT && strlen(s->id) > ORC_AGENT_MAX_STEP_ID)
                return step_error(err, s->id, "id",
                                  "id: an agent step's id is at most %d characters (its tool calls run as "
                                  "steps '<id>.a<attempt>.t<turn>-<k>')",
                                  ORC_AGENT_MAX_STEP_ID);
        r = read_fallback_retry(v, s, err);
        if (r < 0)
                return r;
        x = au_json_get(v, key);
        if (!x)
                return step_error(err, s->id, key, "%s: required for a %s step", key, key);
        if (s->kind == ORC_STEP_MODEL) {
                orc_model_spec m = {};
                r = orc_model_spec_parse(x, s->needs, s->n_needs, &m, &sub);
                s->role = (int) m.role;
                s->verify = m.verify;
                orc_model_spec_done(&m);
        } else {
                orc_agent_spec a = {};
                r = orc_agent_spec_parse(x, policy, &a, &sub);
                s->role = (int) a.role;
                orc_agent_spec_done(&a);
        }
        if (r < 0)
                return step_error_from(err, s->id, &sub, r);
        g = au_json_gen_new(false);
        if (!g)
                return nomem(err);
        r = au_json_gen_tree(g, x);
        if (r < 0)
                return r == -ENOMEM ? nomem(err)
                                    : step_error(err, s->id, key, "%s: cannot be written back", key);
        s->run_json = au_json_gen_finish(g, NULL);
        return s->run_json ? 0 : nomem(err);
}

/* Everything a step says on its own; references to other steps are resolved later. */
static int read_step(yajl_val v, size_t i, const sbx_policy *policy, orc_workflow *w, au_error *err) {
        static const char *const known[] = {"id",    "kind",  "needs",         "description", "run", "retry",
                                            "model", "agent", "node_selector", "fallback",    NULL};
        static const char *const not_for_approval[] = {"run",           "retry", "fallback",
                                                       "node_selector", "model", "agent"};
        orc_step *s = &w->steps[i];
        char field[48];
        au_error sub = {};
        const char *str;
        yajl_val x;
        size_t other;
        int r;

        s->kind = ORC_STEP_RUN;
        s->max_attempts = 1;
        s->backoff_ms = RETRY_DEFAULT_BACKOFF_MS;
        s->max_backoff_ms = RETRY_DEFAULT_MAX_BACKOFF_MS;
        s->trust = _SBX_TRUST_INVALID;
        s->role = -1;

        snprintf(field, sizeof(field), "steps[%zu]", i);
        if (!YAJL_IS_OBJECT(v))
                return au_error_set_field(err, field, "%s: expected an object", field);

        /* The id first, so that everything after can name the step. */
        snprintf(field, sizeof(field), "steps[%zu].id", i);
        x = au_json_get(v, "id");
        if (!x)
                return au_error_set_field(err, field, "%s: required", field);
        r = au_json_get_string(x, field, &str, err);
        if (r < 0)
                return r;
        r = check_step_id(str, field, err);
        if (r < 0)
                return r;
        s->id = strdup(str);
        if (!s->id)
                return nomem(err);
        other = index_add(w, i);
        if (other != NONE)
                return au_error_set_field(err, field, "%s: duplicate step id '%s' (also steps[%zu].id)",
                                          field, s->id, other);

        r = au_json_check_object(v, "", known, &sub);
        if (r < 0)
                return step_error_from(err, s->id, &sub, r);

        if ((x = au_json_get(v, "kind"))) {
                r = au_json_get_string(x, "kind", &str, &sub);
                if (r < 0)
                        return step_error_from(err, s->id, &sub, r);
                if (streq(str, "run"))
                        s->kind = ORC_STEP_RUN;
                else if (streq(str, "approval"))
                        s->kind = ORC_STEP_APPROVAL;
                else if (streq(str, "model"))
                        s->kind = ORC_STEP_MODEL;
                else if (streq(str, "agent"))
                        s->kind = ORC_STEP_AGENT;
                else
                        return step_error(err, s->id, "kind",
                                          "kind: unknown kind '%.64s' (run, approval, model or agent)", str);
        }

        if ((x = au_json_get(v, "description")) && (r = read_description(x, "description", &sub)) < 0)
                return step_error_from(err, s->id, &sub, r);

        if ((x = au_json_get(v, "needs")) && (r = read_needs(x, s, &sub)) < 0)
                return step_error_from(err, s->id, &sub, r);

        if (s->kind == ORC_STEP_APPROVAL) {
                for (size_t k = 0; k < ELEMENTSOF(not_for_approval); k++)
                        if (au_json_get(v, not_for_approval[k]))
                                return step_error(err, s->id, not_for_approval[k],
                                                  "%s: not allowed for an approval step",
                                                  not_for_approval[k]);
                return 0;
        }
        if (s->kind == ORC_STEP_MODEL || s->kind == ORC_STEP_AGENT)
                return read_fabric_step(v, policy, s, err);
        for (size_t k = 4; k < ELEMENTSOF(not_for_approval); k++)
                if (au_json_get(v, not_for_approval[k]))
                        return step_error(err, s->id, not_for_approval[k], "%s: only for a %s step",
                                          not_for_approval[k], not_for_approval[k]);

        if ((x = au_json_get(v, "fallback"))) {
                r = au_json_get_string(x, "fallback", &str, &sub);
                if (r < 0)
                        return step_error_from(err, s->id, &sub, r);
                s->fallback = strdup(str);
                if (!s->fallback)
                        return nomem(err);
        }

        if ((x = au_json_get(v, "retry")) && (r = read_retry(x, s, &sub)) < 0)
                return step_error_from(err, s->id, &sub, r);

        if ((x = au_json_get(v, "node_selector")) && (r = read_selector(x, s, &sub)) < 0)
                return step_error_from(err, s->id, &sub, r);

        x = au_json_get(v, "run");
        if (!x)
                return step_error(err, s->id, "run", "run: required for a run step");
        return read_run(x, policy, s, err);
}

/* ---- the graph ------------------------------------------------------------------ */

/*
 * Steps as indices. Edges go both ways in CSR form: the needs of step i are
 * need[need_off[i] .. need_off[i+1]), the steps needing it dep[dep_off[i] ..
 * dep_off[i+1]), in document order. fallback[s] is the standby of s, and
 * standby_of[f] the step f stands by for (NONE when there is none).
 */
typedef struct graph {
        size_t n;
        size_t *need_off, *need;
        size_t *dep_off, *dep;
        size_t *fallback, *standby_of;
} graph;

static void graph_done(graph *g) {
        free(g->need_off);
        free(g->need);
        free(g->dep_off);
        free(g->dep);
        free(g->fallback);
        free(g->standby_of);
}

/*
 * Resolves needs (and, with_fallbacks, fallbacks) to indices, refusing what
 * workflow.h refuses. err may be NULL.
 */
static int graph_build(const orc_workflow *w, bool with_fallbacks, graph *g, au_error *err) {
        _cleanup_free_ size_t *mark = NULL, *fill = NULL;
        size_t n = w->n_steps, e = 0;

        *g = (graph){.n = n};
        for (size_t i = 0; i < n; i++)
                e += w->steps[i].n_needs;
        g->need_off = malloc((n + 1) * sizeof(size_t));
        g->need = malloc(MAX(e, 1u) * sizeof(size_t));
        g->dep_off = calloc(n + 1, sizeof(size_t));
        g->dep = malloc(MAX(e, 1u) * sizeof(size_t));
        mark = calloc(n, sizeof(size_t));
        fill = malloc(MAX(n, 1u) * sizeof(size_t));
        if (!g->need_off || !g->need || !g->dep_off || !g->dep || !mark || !fill)
                return nomem(err);

        e = 0;
        for (size_t i = 0; i < n; i++) {
                const orc_step *s = &w->steps[i];

                g->need_off[i] = e;
                for (size_t k = 0; k < s->n_needs; k++) {
                        size_t j = step_index(w, s->needs[k]);

                        if (j == NONE)
                                return step_error(err, s->id, "needs", "needs: unknown step '%.80s'",
                                                  s->needs[k]);
                        if (j == i)
                                return step_error(err, s->id, "needs", "needs: a step cannot need itself");
                        /* mark[j] == i + 1: step i already needs j (O(1) whatever the list's length). */
                        if (mark[j] == i + 1)
                                return step_error(err, s->id, "needs", "needs: '%s' is listed twice",
                                                  w->steps[j].id);
                        mark[j] = i + 1;
                        g->need[e++] = j;
                        g->dep_off[j + 1]++;
                }
        }
        g->need_off[n] = e;
        for (size_t i = 0; i < n; i++)
                g->dep_off[i + 1] += g->dep_off[i];
        memcpy(fill, g->dep_off, n * sizeof(size_t));
        for (size_t i = 0; i < n; i++)
                for (size_t k = g->need_off[i]; k < g->need_off[i + 1]; k++)
                        g->dep[fill[g->need[k]]++] = i;

        if (!with_fallbacks)
                return 0;

        g->fallback = malloc(MAX(n, 1u) * sizeof(size_t));
        g->standby_of = malloc(MAX(n, 1u) * sizeof(size_t));
        if (!g->fallback || !g->standby_of)
                return nomem(err);
        for (size_t i = 0; i < n; i++)
                g->fallback[i] = g->standby_of[i] = NONE;
        for (size_t i = 0; i < n; i++) {
                const orc_step *s = &w->steps[i];
                const orc_step *f;
                size_t j;

                if (!s->fallback)
                        continue;
                j = step_index(w, s->fallback);
                if (j == NONE)
                        return step_error(err, s->id, "fallback", "fallback: unknown step '%.80s'",
                                          s->fallback);
                f = &w->steps[j];
                if (j == i)
                        return step_error(err, s->id, "fallback",
                                          "fallback: a step cannot be its own fallback");
                if (f->kind != ORC_STEP_RUN)
                        return step_error(err, s->id, "fallback",
                                          "fallback: '%s' is %s %s step, not a run step", f->id,
                                          f->kind == ORC_STEP_APPROVAL ? "an" : "a",
                                          orc_step_kind_name(f->kind));
                if (g->dep_off[j + 1] > g->dep_off[j])
                        return step_error(err, s->id, "fallback",
                                          "fallback: '%s' is needed by step '%s'; a fallback runs only in "
                                          "place of a failed step, so no step may need it",
                                          f->id, w->steps[g->dep[g->dep_off[j]]].id);
                if (f->fallback)
                        return step_error(err, s->id, "fallback", "fallback: '%s' has a fallback of its own",
                                          f->id);
                if (g->standby_of[j] != NONE)
                        return step_error(err, s->id, "fallback",
                                          "fallback: '%s' is already the fallback of step '%s'", f->id,
                                          w->steps[g->standby_of[j]].id);
                for (size_t k = g->need_off[j]; k < g->need_off[j + 1]; k++)
                        if (g->need[k] == i)
                                return step_error(err, s->id, "fallback", "fallback: '%s' needs '%s'", f->id,
                                                  s->id);
                g->fallback[i] = j;
                g->standby_of[j] = i;
        }
        return 0;
}

/* A binary min-heap of step indices: Kahn's ready set, first in document order first. */
static void heap_push(size_t *h, size_t *n, size_t v) {
        size_t i = (*n)++;

        while (i > 0 && h[(i - 1) / 2] > v) {
                h[i] = h[(i - 1) / 2];
                i = (i - 1) / 2;
        }
        h[i] = v;
}

static size_t heap_pop(size_t *h, size_t *n) {
        size_t top = h[0], v = h[--*n], i = 0;

        for (;;) {
                size_t c = 2 * i + 1;

                if (c >= *n)
                        break;
                if (c + 1 < *n && h[c + 1] < h[c])
                        c++;
                if (h[c] >= v)
                        break;
                h[i] = h[c];
                i = c;
        }
        if (*n > 0)
                h[i] = v;
        return top;
}

/*
 * Kahn's algorithm. With waits, a step that needs s (which has a fallback f)
 * also waits for f: if s fails for good, its dependents run after f in its
 * place. indeg[] is left with the count of unmet needs: the steps still
 * above 0 are on a cycle or wait for one. order (may be NULL) gets the steps
 * in order. Returns how many steps were ordered, or -ENOMEM.
 */
static ssize_t kahn(const graph *g, bool waits, size_t *indeg, size_t *order) {
        _cleanup_free_ size_t *heap = malloc(MAX(g->n, 1u) * sizeof(size_t));
        size_t n_heap = 0, done = 0;

        if (!heap)
                return -ENOMEM;
        for (size_t i = 0; i < g->n; i++) {
                indeg[i] = g->need_off[i + 1] - g->need_off[i];
                if (waits)
                        for (size_t k = g->need_off[i]; k < g->need_off[i + 1]; k++)
                                if (g->fallback[g->need[k]] != NONE)
                                        indeg[i]++;
                if (indeg[i] == 0)
                        heap_push(heap, &n_heap, i);
        }
        while (n_heap > 0) {
                size_t u = heap_pop(heap, &n_heap), s;

                if (order)
                        order[done] = u;
                done++;
                for (size_t k = g->dep_off[u]; k < g->dep_off[u + 1]; k++)
                        if (--indeg[g->dep[k]] == 0)
                                heap_push(heap, &n_heap, g->dep[k]);
                if (waits && (s = g->standby_of[u]) != NONE)
                        for (size_t k = g->dep_off[s]; k < g->dep_off[s + 1]; k++)
                                if (--indeg[g->dep[k]] == 0)
                                        heap_push(heap, &n_heap, g->dep[k]);
        }
        return (ssize_t) done;
}

/*
 * After kahn() stopped short: walks from the first stuck step along stuck
 * needs (with waits, also to the fallback of a need) until a step repeats.
 * The cycle is cycle[0 .. *ret_len); via[k] is NONE when cycle[k] needs
 * cycle[k+1] (cyclically), or the step s when cycle[k] needs s and waits
 * for cycle[k+1], s's fallback. Returns 0 or -ENOMEM.
 */
static int find_cycle(const graph *g, bool waits, const size_t *indeg, size_t *cycle, size_t *via,
                      size_t *ret_len) {
        _cleanup_free_ size_t *pos = malloc(MAX(g->n, 1u) * sizeof(size_t));
        size_t len = 0, v = NONE, start;

        if (!pos)
                return -ENOMEM;
        for (size_t i = 0; i < g->n; i++) {
                pos[i] = NONE;
                if (v == NONE && indeg[i] > 0)
                        v = i;
        }
        /* A stuck step has a stuck need (or fallback of one), so the walk can always go on. */
        while (pos[v] == NONE) {
                size_t next = NONE, through = NONE;

                for (size_t k = g->need_off[v]; k < g->need_off[v + 1] && next == NONE; k++) {
                        size_t u = g->need[k];

                        if (indeg[u] > 0)
                                next = u;
                        else if (waits && g->fallback[u] != NONE && indeg[g->fallback[u]] > 0) {
                                next = g->fallback[u];
                                through = u;
                        }
                }
                pos[v] = len;
                cycle[len] = v;
                via[len] = through;
                len++;
                v = next;
        }
        start = pos[v];
        memmove(cycle, cycle + start, (len - start) * sizeof(size_t));
        memmove(via, via + start, (len - start) * sizeof(size_t));
        *ret_len = len - start;
        return 0;
}

/* Appends " -> name" to buf unless the path is over CYCLE_PATH_MAX; then " -> ..." once. */
static void path_add(char *buf, size_t size, const char *sep, const char *name, bool *cut) {
        size_t len = strlen(buf);

        if (*cut)
                return;
        if (len + strlen(sep) + strlen(name) > CYCLE_PATH_MAX) {
                snprintf(buf + len, size - len, " -> ...");
                *cut = true;
                return;
        }
        snprintf(buf + len, size - len, "%s%s", sep, name);
}

/* "steps: cycle a -> b -> c -> a", from the cycle's first step in document order. */
static int cycle_error(const orc_workflow *w, const size_t *cycle, size_t len, au_error *err) {
        char path[CYCLE_PATH_MAX + 128] = "", field[sizeof(err->field)];
        size_t first = 0;
        bool cut = false;

        for (size_t k = 1; k < len; k++)
                if (cycle[k] < cycle[first])
                        first = k;
        for (size_t k = 0; k < len; k++)
                path_add(path, sizeof(path), k == 0 ? "" : " -> ", w->steps[cycle[(first + k) % len]].id,
                         &cut);
        snprintf(path + strlen(path), sizeof(path) - strlen(path), " -> %s", w->steps[cycle[first]].id);
        snprintf(field, sizeof(field), "steps.%s.needs", w->steps[cycle[first]].id);
        if (cut)
                return au_error_set_field(err, field, "steps: cycle %s (%zu steps)", path, len);
        return au_error_set_field(err, field, "steps: cycle %s", path);
}

/*
 * A cycle through a fallback: f (the fallback of s) depends on s, so if s
 * failed f would wait for itself. Told from the fallback whose step comes
 * first: "step 's': fallback 'f' depends on 's': f -> x -> s". Other
 * fallbacks on the way show as "t => g" (t failed, g runs in its place).
 */
static int fallback_cycle_error(const orc_workflow *w, const size_t *cycle, const size_t *via, size_t len,
                                au_error *err) {
        char path[CYCLE_PATH_MAX + 256] = "";
        size_t last = NONE, s, f;
        bool cut = false;

        for (size_t k = 0; k < len; k++)
                if (via[k] != NONE && (last == NONE || via[k] < via[last]))
                        last = k;
        /* Rotate so that the walk ends with the wait on s's fallback, where it started. */
        s = via[last];
        f = cycle[(last + 1) % len];
        for (size_t t = 0; t < len; t++) {
                size_t k = (last + 1 + t) % len, prev = (k + len - 1) % len;

                if (t == 0)
                        path_add(path, sizeof(path), "", w->steps[cycle[k]].id, &cut);
                else if (via[prev] == NONE)
                        path_add(path, sizeof(path), " -> ", w->steps[cycle[k]].id, &cut);
                else {
                        /* cycle[prev] needs via[prev], and waits for its fallback cycle[k]. */
                        path_add(path, sizeof(path), " -> ", w->steps[via[prev]].id, &cut);
                        path_add(path, sizeof(path), " => ", w->steps[cycle[k]].id, &cut);
                }
        }
        /* Closing hop: the last step needs s, whose fallback is where we began. */
        snprintf(path + strlen(path), sizeof(path) - strlen(path), " -> %s", w->steps[s].id);
        return step_error(err, w->steps[s].id, "fallback",
                          "fallback: '%s' depends on '%s', so it could never run in its place: %s",
                          w->steps[f].id, w->steps[s].id, path);
}

/* ---- the document ---------------------------------------------------------------- */

static int check_name(const char *s, au_error *err) {
        size_t chars = 0;

        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                /* C0 controls and DEL; C1 controls are U+0080..U+009F, 0xC2 0x80..0x9F. */
                if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
                        return au_error_set_field(err, "name", "name: control characters are not allowed");
                if ((*p & 0xc0) != 0x80)
                        chars++;
        }
        if (chars == 0 || chars > NAME_MAX_CHARS)
                return au_error_set_field(err, "name", "name: must be 1 to %d characters", NAME_MAX_CHARS);
        return 0;
}

/* Whether s is "[0-9]+" followed by end, or by c: *ret_end after the digits. */
static bool digits(const char *s, const char **ret_end) {
        const char *p = s;
        while (*p >= '0' && *p <= '9')
                p++;
        *ret_end = p;
        return p > s;
}

/*
 * An agent step's tool calls are steps "<agent>.a<attempt>.t<turn>-<k>": no
 * step of the document may have such an id. Linear: each ".a" of an id that
 * ends so is looked up as an agent step's id.
 */
static int check_tool_ids(const orc_workflow *w, au_error *err) {
        for (size_t i = 0; i < w->n_steps; i++) {
                const char *id = w->steps[i].id;

                for (const char *dot = strstr(id, ".a"); dot; dot = strstr(dot + 1, ".a")) {
                        const char *p;
                        char agent[ORC_MAX_STEP_ID + 1];
                        const orc_step *a;

                        if (!digits(dot + 2, &p) || strncmp(p, ".t", 2) != 0 || !digits(p + 2, &p) ||
                            *p != '-' || !digits(p + 1, &p) || *p != '\0')
                                continue;
                        snprintf(agent, sizeof(agent), "%.*s", (int) (dot - id), id);
                        a = orc_workflow_step(w, agent);
                        if (a && a->kind == ORC_STEP_AGENT)
                                return step_error(
                                        err, id, "id",
                                        "id: taken by the tool calls of agent step '%s' (its tool calls "
                                        "run as steps '%s.a<attempt>.t<turn>-<k>')",
                                        agent, agent);
                }
        }
        return 0;
}

static int check_graph(orc_workflow *w, au_error *err) {
        _cleanup_(graph_done) graph g = {};
        _cleanup_free_ size_t *indeg = NULL, *cycle = NULL, *via = NULL;
        bool any_fallback = false;
        size_t len;
        ssize_t done;
        int r;

        r = graph_build(w, true, &g, err);
        if (r < 0)
                return r;
        indeg = malloc(w->n_steps * sizeof(size_t));
        cycle = malloc(w->n_steps * sizeof(size_t));
        via = malloc(w->n_steps * sizeof(size_t));
        if (!indeg || !cycle || !via)
                return nomem(err);

        done = kahn(&g, false, indeg, NULL);
        if (done < 0)
                return nomem(err);
        if ((size_t) done < w->n_steps) {
                if (find_cycle(&g, false, indeg, cycle, via, &len) < 0)
                        return nomem(err);
                return cycle_error(w, cycle, len, err);
        }

        for (size_t i = 0; i < w->n_steps; i++)
                if (g.standby_of[i] != NONE) {
                        w->steps[i].is_fallback = true;
                        any_fallback = true;
                }
        if (!any_fallback)
                return 0;
        done = kahn(&g, true, indeg, NULL);
        if (done < 0)
                return nomem(err);
        if ((size_t) done < w->n_steps) {
                if (find_cycle(&g, true, indeg, cycle, via, &len) < 0)
                        return nomem(err);
                return fallback_cycle_error(w, cycle, via, len, err);
        }
        return 0;
}

static int read_workflow(yajl_val root, const sbx_policy *policy, orc_workflow *w, au_error *err) {
        static const char *const known[] = {"name", "description", "budget_usd", "steps", NULL};
        const char *name = DEFAULT_NAME;
        yajl_val x, steps;
        int r;

        if (!YAJL_IS_OBJECT(root))
                return au_error_set_field(err, "", "a workflow must be a JSON object");
        r = au_json_check_object(root, "", known, err);
        if (r < 0)
                return r;

        if ((x = au_json_get(root, "name"))) {
                r = au_json_get_string(x, "name", &name, err);
                if (r < 0)
                        return r;
                r = check_name(name, err);
                if (r < 0)
                        return r;
        }
        w->name = strdup(name);
        if (!w->name)
                return nomem(err);

        if ((x = au_json_get(root, "description")) && (r = read_description(x, "description", err)) < 0)
                return r;
        if ((x = au_json_get(root, "budget_usd"))) {
                if (!YAJL_IS_DOUBLE(x) || !(YAJL_GET_DOUBLE(x) > 0) || YAJL_GET_DOUBLE(x) > 1e9)
                        return au_error_set_field(err, "budget_usd",
                                                  "budget_usd: expected a number of USD above 0");
                w->budget_usd = YAJL_GET_DOUBLE(x);
        }

        steps = au_json_get(root, "steps");
        if (!steps)
                return au_error_set_field(err, "steps", "steps: required");
        r = au_json_check_array(steps, "steps", err);
        if (r < 0)
                return r;
        if (steps->u.array.len == 0)
                return au_error_set_field(err, "steps", "steps: a workflow needs at least one step");
        if (steps->u.array.len > ORC_MAX_STEPS)
                return au_error_set_field(err, "steps", "steps: %zu steps, over the limit of %d",
                                          steps->u.array.len, ORC_MAX_STEPS);

        w->steps = calloc(steps->u.array.len, sizeof(*w->steps));
        if (!w->steps || index_new(w, steps->u.array.len) < 0)
                return nomem(err);
        for (size_t i = 0; i < steps->u.array.len; i++) {
                /* Counted first, so that a half-read step is freed too. */
                w->n_steps = i + 1;
                r = read_step(steps->u.array.values[i], i, policy, w, err);
                if (r < 0)
                        return r;
        }
        r = check_tool_ids(w, err);
        if (r < 0)
                return r;
        return check_graph(w, err);
}

int orc_workflow_parse(const char *buf, size_t len, size_t max_bytes, const sbx_policy *policy,
                       orc_workflow **ret, au_error *err) {
        _cleanup_json_ yajl_val root = NULL;
        _cleanup_orc_workflow_ orc_workflow *w = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        sbx_policy builtin;
        int r;

        if (!policy) {
                /* Once here, not once per step inside the sandbox's parser. */
                sbx_policy_init_default(&builtin);
                policy = &builtin;
        }

        r = au_json_parse(buf, len, max_bytes, &root, err);
        if (r < 0)
                return r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return nomem(err);
        r = read_workflow(root, policy, w, err);
        if (r < 0)
                return r;

        g = au_json_gen_new(false);
        if (!g)
                return nomem(err);
        r = au_json_gen_tree(g, root);
        if (r < 0)
                return r == -ENOMEM ? nomem(err)
                                    : au_error_set_field(err, "", "cannot write the workflow back");
        w->json = au_json_gen_finish(g, NULL);
        if (!w->json)
                return nomem(err);

        *ret = TAKE_PTR(w);
        return 0;
}

int orc_workflow_topo_order(const orc_workflow *w, size_t *ret) {
        _cleanup_(graph_done) graph g = {};
        _cleanup_free_ size_t *indeg = NULL, *order = NULL;
        ssize_t done;
        int r;

        if (!w || w->n_steps == 0)
                return 0;
        r = graph_build(w, false, &g, NULL);
        if (r < 0)
                return r;
        indeg = malloc(w->n_steps * sizeof(size_t));
        order = malloc(w->n_steps * sizeof(size_t));
        if (!indeg || !order)
                return -ENOMEM;
        done = kahn(&g, false, indeg, order);
        if (done < 0)
                return (int) done;
        if ((size_t) done < w->n_steps)
                return -EINVAL;
        memcpy(ret, order, w->n_steps * sizeof(size_t));
        return 0;
}

int orc_workflow_check_fabric(const orc_workflow *w, const fab_fabric *fabric, au_error *err) {
        for (size_t i = 0; i < w->n_steps; i++) {
                const orc_step *s = &w->steps[i];
                char field[48];

                if (s->kind != ORC_STEP_MODEL && s->kind != ORC_STEP_AGENT)
                        continue;
                snprintf(field, sizeof(field), "steps[%zu]", i);
                if (!fabric)
                        return au_error_set_field(
                                err, field,
                                "%s: %s steps need model providers: this coordinator has no "
                                "fabric setting (step '%s')",
                                field, orc_step_kind_name(s->kind), s->id);
                if (fab_chain_len(fabric, (fab_role) s->role) == 0)
                        return au_error_set_field(err, field,
                                                  "%s: role '%s' has no providers in the coordinator's "
                                                  "fabric.json (step '%s')",
                                                  field, fab_role_name((fab_role) s->role), s->id);
                if (s->verify && fab_chain_len(fabric, FAB_ROLE_VERIFIER) == 0)
                        return au_error_set_field(
                                err, field,
                                "%s: role 'verifier' has no providers in the coordinator's "
                                "fabric.json, and step '%s' asks to be verified",
                                field, s->id);
        }
        return 0;
}
