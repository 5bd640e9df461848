/* SPDX-License-Identifier: MIT */
/* orchestrator/intent: a sentence to a draft workflow through the planner, checked and classified (see
 * intent.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "orchestrator/intent.h"
#include "orchestrator/workflow.h"

static const char *const risk_names[] = {
        [ORC_RISK_LOW] = "low", [ORC_RISK_MEDIUM] = "medium", [ORC_RISK_HIGH] = "high"};

const char *orc_risk_name(orc_risk r) {
        return r < ELEMENTSOF(risk_names) ? risk_names[r] : "unknown";
}

int orc_risk_from_name(const char *s) {
        for (size_t i = 0; s && i < ELEMENTSOF(risk_names); i++)
                if (strcmp(s, risk_names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

static const char *const outcome_names[] = {
        [ORC_INTENT_OK] = "ok",
        [ORC_INTENT_INVALID] = "invalid_draft",
        [ORC_INTENT_FAILED] = "failed",
        [ORC_INTENT_BUDGET] = "budget_exceeded",
};

const char *orc_intent_outcome_name(orc_intent_outcome o) {
        return o < ELEMENTSOF(outcome_names) ? outcome_names[o] : "unknown";
}

void orc_risk_rules_init_default(orc_risk_rules *ret) {
        *ret = (orc_risk_rules){.line = ORC_RISK_MEDIUM,
                                .trust = {[SBX_TRUST_RESTRICTED] = ORC_RISK_LOW,
                                          [SBX_TRUST_STANDARD] = ORC_RISK_LOW,
                                          [SBX_TRUST_ELEVATED] = ORC_RISK_MEDIUM,
                                          [SBX_TRUST_PRIVILEGED] = ORC_RISK_HIGH},
                                .network = {[SBX_NET_NONE] = ORC_RISK_LOW,
                                            [SBX_NET_LOOPBACK] = ORC_RISK_LOW,
                                            [SBX_NET_EGRESS] = ORC_RISK_HIGH},
                                .spend_medium_usd = 0.10,
                                .spend_high_usd = 1.00};
}

static int get_level(yajl_val v, const char *path, orc_risk *ret, au_error *err) {
        const char *s;
        int r;
        if ((r = au_json_get_string(v, path, &s, err)) < 0)
                return r;
        if ((r = orc_risk_from_name(s)) < 0)
                return au_error_set_field(err, path, "%s: '%.32s' is not low, medium or high", path, s);
        *ret = (orc_risk) r;
        return 0;
}

static int get_usd(yajl_val v, const char *path, double *ret, au_error *err) {
        double d = YAJL_IS_NUMBER(v) ? strtod(v->u.number.r, NULL) : NAN;
        if (!(d >= 0 && d < 1e9))
                return au_error_set_field(err, path, "%s: expected a number of USD, 0 or more", path);
        *ret = d;
        return 0;
}

int orc_risk_rules_parse(yajl_val v, orc_risk_rules *ret, au_error *err) {
        static const char *const known[] = {"risk_line", "trust", "network", "model_spend_usd", NULL};
        static const char *const tk[] = {"restricted", "standard", "elevated", "privileged", NULL};
        static const char *const nk[] = {"none", "loopback", "egress", NULL};
        static const char *const sk[] = {"medium", "high", NULL};
        orc_risk_rules r = *ret;
        char path[96];
        yajl_val x;
        int e;

        if ((e = au_json_check_object(v, "intents", known, err)) < 0)
                return e;
        if ((x = au_json_get(v, "risk_line")) && (e = get_level(x, "intents.risk_line", &r.line, err)) < 0)
                return e;
        if ((x = au_json_get(v, "trust"))) {
                if ((e = au_json_check_object(x, "intents.trust", tk, err)) < 0)
                        return e;
                for (size_t i = 0; tk[i]; i++) {
                        yajl_val y = au_json_get(x, tk[i]);
                        snprintf(path, sizeof(path), "intents.trust.%s", tk[i]);
                        if (y && (e = get_level(y, path, &r.trust[sbx_trust_from_string(tk[i])], err)) < 0)
                                return e;
                }
        }
        if ((x = au_json_get(v, "network"))) {
                if ((e = au_json_check_object(x, "intents.network", nk, err)) < 0)
                        return e;
                for (size_t i = 0; nk[i]; i++) {
                        yajl_val y = au_json_get(x, nk[i]);
                        snprintf(path, sizeof(path), "intents.network.%s", nk[i]);
                        if (y &&
                            (e = get_level(y, path, &r.network[sbx_network_from_string(nk[i])], err)) < 0)
                                return e;
                }
        }
        if ((x = au_json_get(v, "model_spend_usd"))) {
                if ((e = au_json_check_object(x, "intents.model_spend_usd", sk, err)) < 0)
                        return e;
                if ((au_json_get(x, "medium") &&
                     (e = get_usd(au_json_get(x, "medium"), "intents.model_spend_usd.medium",
                                  &r.spend_medium_usd, err)) < 0) ||
                    (au_json_get(x, "high") &&
                     (e = get_usd(au_json_get(x, "high"), "intents.model_spend_usd.high", &r.spend_high_usd,
                                  err)) < 0))
                        return e;
                if (r.spend_high_usd < r.spend_medium_usd)
                        return au_error_set_field(err, "intents.model_spend_usd.high",
                                                  "intents.model_spend_usd.high: below medium");
        }
        *ret = r;
        return 0;
}

/* ---- classification ---- */

static const char *str_of(yajl_val v) {
        return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

static double num_of(yajl_val v, double dflt) {
        return YAJL_IS_NUMBER(v) ? strtod(v->u.number.r, NULL) : dflt;
}

/* The output price per token of role's first chain entry, or 0. */
static double out_price(const fab_fabric *f, yajl_val block) {
        const char *rn = str_of(au_json_get(block, "role"));
        int role = fab_role_from_name(rn ? rn : "executor");
        if (!f || role < 0 || fab_chain_len(f, (fab_role) role) == 0)
                return 0;
        const fab_price *p = fab_price_of(f, fab_chain_provider(f, (fab_role) role, 0),
                                          fab_chain_model(f, (fab_role) role, 0));
        return p ? p->output / 1e6 : 0;
}

static void raise_to(orc_risk *level, orc_risk to, au_buf *why, const char *fmt, ...) _printf_(4, 5);
static void raise_to(orc_risk *level, orc_risk to, au_buf *why, const char *fmt, ...) {
        va_list ap;
        if (to > *level)
                *level = to;
        if (to == ORC_RISK_LOW)
                return;
        if (why->len)
                au_buf_puts(why, "; ");
        va_start(ap, fmt);
        au_buf_vprintf(why, fmt, ap);
        va_end(ap);
        au_buf_printf(why, ": %s", orc_risk_name(to));
}

orc_risk orc_risk_of_step(const orc_risk_rules *rules, const sbx_policy *policy, const fab_fabric *f,
                          yajl_val step, char **ret_why) {
        _cleanup_buf_ au_buf why = AU_BUF_INIT(4096);
        orc_risk level = ORC_RISK_LOW;
        yajl_val run = au_json_get(step, "run"), x;

        if (YAJL_IS_OBJECT(run)) {
                sbx_trust t = policy->default_trust;
                const char *s = str_of(au_json_get(run, "trust"));
                if (s && sbx_trust_from_string(s) != _SBX_TRUST_INVALID)
                        t = sbx_trust_from_string(s);
                raise_to(&level, rules->trust[t], &why, "trust %s", sbx_trust_to_string(t));
                sbx_network n = policy->level[t].default_network;
                s = str_of(au_json_get(run, "network"));
                if (s && sbx_network_from_string(s) != _SBX_NET_INVALID)
                        n = sbx_network_from_string(s);
                raise_to(&level, rules->network[n], &why, "network %s", sbx_network_to_string(n));
        }
        double spend = -1;
        if (YAJL_IS_OBJECT(x = au_json_get(step, "model")))
                spend = num_of(au_json_get(x, "max_tokens"), 0) * out_price(f, x);
        else if (YAJL_IS_OBJECT(x = au_json_get(step, "agent"))) {
                yajl_val l = au_json_get(x, "limits");
                spend = num_of(au_json_get(l, "cost_usd"), -1);
                if (spend < 0)
                        spend = num_of(au_json_get(l, "tokens"), 200000) * out_price(f, x);
        }
        if (spend >= 0) {
                orc_risk sr = spend >= rules->spend_high_usd     ? ORC_RISK_HIGH
                              : spend >= rules->spend_medium_usd ? ORC_RISK_MEDIUM
                                                                 : ORC_RISK_LOW;
                raise_to(&level, sr, &why, "model spend up to $%.4f", spend);
        }
        if (ret_why)
                *ret_why = why.len ? au_buf_steal(&why, NULL) : strdup("");
        return level;
}

/* ---- the planner ---- */

static char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
static char *strdup_printf(const char *fmt, ...) {
        va_list ap;
        char *s;
        int n;
        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        return n < 0 ? NULL : s;
}

static const char planner_system[] =
        "You turn a request into an AUTOOS workflow. Reply with ONE JSON object and nothing else:\n"
        "{\"workflow\": {\"name\": str, \"description\": str, \"steps\": [step, ...]},\n"
        " \"risk\": {\"<step id>\": \"low\" | \"medium\" | \"high\", ...},\n"
        " \"summary\": \"one or two sentences\"}\n"
        "A step: {\"id\": 1..64 of A-Z a-z 0-9 . _ -, \"needs\": [step ids], \"description\": str,\n"
        " \"run\": {\"argv\": [absolute program path, args...], \"env\": {NAME: value},\n"
        "          \"trust\": \"restricted\" | \"standard\" | \"elevated\", \"network\": \"none\" | "
        "\"loopback\" | \"egress\"},\n"
        " \"retry\": {\"max_attempts\": n}} or {\"id\", \"kind\": \"approval\", \"needs\", "
        "\"description\"}.\n"
        "A step reads its needs' outputs in /work/inputs/<id>.stdout. No other fields.";

/* The outermost {...} of text, parsed; NULL when there is none. */
static yajl_val parse_reply(const char *text) {
        const char *a = strchr(text, '{'), *b = strrchr(text, '}');
        yajl_val v = NULL;
        au_error err = {};
        if (!a || !b || b < a || au_json_parse(a, (size_t) (b - a + 1), ORC_INTENT_MAX_DRAFT, &v, &err) < 0)
                return NULL;
        return v;
}

static char *gen_tree(yajl_val v) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g || au_json_gen_tree(g, v) < 0)
                return NULL;
        return au_json_gen_finish(g, NULL);
}

typedef struct convo {
        fab_msg m[2 * ORC_INTENT_MAX_ROUNDS + 1];
        char *owned[2 * ORC_INTENT_MAX_ROUNDS + 1];
        size_t n;
} convo;

static int convo_add(convo *c, fab_msg_role role, char *text) {
        if (!text)
                return -ENOMEM;
        c->owned[c->n] = text;
        c->m[c->n++] = (fab_msg){.role = role, .text = text};
        return 0;
}

static void convo_done(convo *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->owned[i]);
        c->n = 0;
}

/* A fresh step id "approve-<id>" (cut to fit), not taken by any step of w. */
static char *approval_id(const orc_workflow *w, const char *id) {
        char buf[ORC_MAX_STEP_ID + 1];
        for (unsigned k = 1; k < 1000; k++) {
                char suffix[16] = "";
                if (k > 1)
                        snprintf(suffix, sizeof(suffix), "-%u", k);
                snprintf(buf, sizeof(buf), "approve-%.*s%s", (int) (ORC_MAX_STEP_ID - 8 - strlen(suffix)),
                         id, suffix);
                if (!orc_workflow_step(w, buf))
                        return strdup(buf);
        }
        return NULL;
}

/* Writes doc back out with an approval step before each step that has one. */
static int gen_with_approvals(yajl_gen g, yajl_val doc, const orc_intent_result *res) {
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        for (size_t i = 0; i < doc->u.object.len; i++) {
                const char *k = doc->u.object.keys[i];
                yajl_val steps = doc->u.object.values[i];
                AU_JSON_GEN_TRY(au_json_gen_string(g, k));
                if (strcmp(k, "steps") != 0) {
                        AU_JSON_GEN_TRY(au_json_gen_tree(g, steps));
                        continue;
                }
                AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                for (size_t s = 0; s < steps->u.array.len; s++) {
                        yajl_val st = steps->u.array.values[s], needs = au_json_get(st, "needs");
                        const orc_intent_step *is = s < res->n_steps ? &res->steps[s] : NULL;
                        if (!is || !is->approval_id) {
                                AU_JSON_GEN_TRY(au_json_gen_tree(g, st));
                                continue;
                        }
                        char desc[512];
                        snprintf(desc, sizeof(desc), "approve step '%s' (risk %s: %.400s)", is->id,
                                 orc_risk_name(is->risk), is->why);
                        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "id", is->approval_id));
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "kind", "approval"));
                        if (needs) {
                                AU_JSON_GEN_TRY(au_json_gen_string(g, "needs"));
                                AU_JSON_GEN_TRY(au_json_gen_tree(g, needs));
                        }
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "description", desc));
                        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
                        /* the step itself, now also needing its approval */
                        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                        for (size_t f = 0; f < st->u.object.len; f++) {
                                AU_JSON_GEN_TRY(au_json_gen_string(g, st->u.object.keys[f]));
                                if (st->u.object.values[f] != needs) {
                                        AU_JSON_GEN_TRY(au_json_gen_tree(g, st->u.object.values[f]));
                                        continue;
                                }
                                AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                                for (size_t n = 0; YAJL_IS_ARRAY(needs) && n < needs->u.array.len; n++)
                                        AU_JSON_GEN_TRY(au_json_gen_tree(g, needs->u.array.values[n]));
                                AU_JSON_GEN_TRY(au_json_gen_string(g, is->approval_id));
                                AU_JSON_GEN_TRY(au_json_gen_array_close(g));
                        }
                        if (!needs) {
                                AU_JSON_GEN_TRY(au_json_gen_string(g, "needs"));
                                AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                                AU_JSON_GEN_TRY(au_json_gen_string(g, is->approval_id));
                                AU_JSON_GEN_TRY(au_json_gen_array_close(g));
                        }
                        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
                }
                AU_JSON_GEN_TRY(au_json_gen_array_close(g));
        }
        return au_json_gen_map_close(g);
}

/* Classifies a valid draft, inserts the approvals and checks the result again. */
static int finish_draft(const fab_fabric *f, yajl_val doc, yajl_val model_risk, const orc_workflow *w,
                        const sbx_policy *policy, const orc_risk_rules *rules, orc_intent_result *ret) {
        yajl_val steps = au_json_get(doc, "steps");
        int r;

        if (!(ret->steps = calloc(steps->u.array.len, sizeof(*ret->steps))))
                return -ENOMEM;
        ret->model_risk = -1;
        for (size_t i = 0; i < steps->u.array.len; i++) {
                orc_intent_step *s = &ret->steps[i];
                yajl_val st = steps->u.array.values[i];
                ret->n_steps = i + 1;
                if (!(s->id = strdup(str_of(au_json_get(st, "id")))))
                        return -ENOMEM;
                s->risk = orc_risk_of_step(rules, policy, f, st, &s->why);
                if (!s->why)
                        return -ENOMEM;
                s->model_risk = orc_risk_from_name(str_of(au_json_get(model_risk, s->id)));
                if (s->model_risk < 0)
                        s->model_risk = -1;
                if (s->model_risk > ret->model_risk)
                        ret->model_risk = s->model_risk;
                if (s->risk > ret->risk)
                        ret->risk = s->risk;
                const char *kind = str_of(au_json_get(st, "kind"));
                if (s->risk > rules->line && !(kind && strcmp(kind, "approval") == 0)) {
                        if (!(s->approval_id = approval_id(w, s->id)))
                                return -ENOMEM;
                        ret->approvals++;
                }
        }
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g)
                return -ENOMEM;
        if ((r = gen_with_approvals(g, doc, ret)) < 0)
                return r;
        size_t len;
        if (!(ret->draft = au_json_gen_finish(g, &len)))
                return -ENOMEM;
        /* the draft with its approvals must still be a workflow submissions accept */
        _cleanup_orc_workflow_ orc_workflow *w2 = NULL;
        au_error err = {};
        if ((r = orc_workflow_parse(ret->draft, len, ORC_INTENT_MAX_DRAFT * 2, policy, &w2, &err)) < 0) {
                snprintf(ret->error, sizeof(ret->error), "the draft with its approval steps: %.460s",
                         err.msg);
                return -EINVAL;
        }
        return 0;
}

int orc_intent_draft(fab_fabric *f, const char *sentence, const orc_intent_options *opts,
                     orc_intent_result *ret) {
        orc_intent_options o = opts ? *opts : (orc_intent_options){};
        orc_risk_rules rules;
        sbx_policy builtin;
        convo c = {};
        int r = 0;

        *ret = (orc_intent_result){.model_risk = -1};
        if (!sentence || !*sentence || strlen(sentence) > ORC_INTENT_MAX_SENTENCE ||
            o.max_rounds > ORC_INTENT_MAX_ROUNDS)
                return -EINVAL;
        if (!o.max_rounds)
                o.max_rounds = 3;
        if (!o.max_tokens)
                o.max_tokens = 4096;
        if (!o.policy) {
                sbx_policy_init_default(&builtin);
                o.policy = &builtin;
        }
        if (o.rules)
                rules = *o.rules;
        else
                orc_risk_rules_init_default(&rules);
        if ((r = convo_add(&c, FAB_MSG_USER, strdup(sentence))) < 0)
                return r;
        while (ret->rounds < o.max_rounds) {
                fab_request req = {.role = FAB_ROLE_PLANNER,
                                   .system = planner_system,
                                   .msgs = c.m,
                                   .n_msgs = c.n,
                                   .max_tokens = o.max_tokens,
                                   .key = o.key};
                fab_result fr;
                if ((r = fab_call(f, &req, &fr)) < 0)
                        goto out;
                ret->rounds++;
                ret->usage.input += fr.usage.input;
                ret->usage.cached += fr.usage.cached;
                ret->usage.cache_write += fr.usage.cache_write;
                ret->usage.output += fr.usage.output;
                ret->usage.reported = ret->usage.reported || fr.usage.reported;
                ret->cost_usd += fr.cost_usd;
                snprintf(ret->provider, sizeof(ret->provider), "%s", fr.provider);
                snprintf(ret->model, sizeof(ret->model), "%s", fr.model);
                if (fr.outcome != FAB_OK) {
                        ret->outcome = fr.outcome == FAB_BUDGET ? ORC_INTENT_BUDGET : ORC_INTENT_FAILED;
                        snprintf(ret->error, sizeof(ret->error), "planner: %s: %.460s",
                                 fab_outcome_name(fr.outcome), fr.error);
                        fab_result_done(&fr);
                        goto out;
                }
                char *text = fr.text;
                fr.text = NULL;
                fab_result_done(&fr);
                if ((r = convo_add(&c, FAB_MSG_ASSISTANT, text ? text : strdup(""))) < 0)
                        goto out;
                _cleanup_json_ yajl_val reply = parse_reply(c.m[c.n - 1].text);
                yajl_val doc = au_json_get(reply, "workflow");
                _cleanup_free_ char *doc_text = NULL;
                _cleanup_orc_workflow_ orc_workflow *w = NULL;
                au_error err = {};
                if (!YAJL_IS_OBJECT(doc))
                        au_error_set(&err, EINVAL,
                                     "the reply is not one JSON object with a \"workflow\" object in it");
                else if (!(doc_text = gen_tree(doc))) {
                        r = -ENOMEM;
                        goto out;
                } else if ((r = orc_workflow_parse(doc_text, strlen(doc_text), ORC_INTENT_MAX_DRAFT,
                                                   o.policy, &w, &err)) == -ENOMEM)
                        goto out;
                if (w) {
                        const char *sum = str_of(au_json_get(reply, "summary"));
                        if (!(ret->summary = strdup(sum ? sum : ""))) {
                                r = -ENOMEM;
                                goto out;
                        }
                        r = finish_draft(f, doc, au_json_get(reply, "risk"), w, o.policy, &rules, ret);
                        if (r == -EINVAL) {
                                ret->outcome = ORC_INTENT_INVALID;
                                r = 0;
                        } else
                                ret->outcome = ORC_INTENT_OK;
                        goto out;
                }
                snprintf(ret->error, sizeof(ret->error), "%.60s%s%.440s", err.field[0] ? err.field : "",
                         err.field[0] ? ": " : "", err.msg);
                ret->outcome = ORC_INTENT_INVALID;
                if (ret->rounds < o.max_rounds &&
                    (r = convo_add(
                             &c, FAB_MSG_USER,
                             strdup_printf("The validator refused your draft: %s\nReply with the corrected "
                                           "JSON object only.",
                                           ret->error))) < 0)
                        goto out;
                r = 0;
        }
out:
        convo_done(&c);
        if (r < 0)
                orc_intent_result_done(ret);
        return r;
}

void orc_intent_result_done(orc_intent_result *r) {
        for (size_t i = 0; i < r->n_steps; i++) {
                free(r->steps[i].id);
                free(r->steps[i].why);
                free(r->steps[i].approval_id);
        }
        free(r->steps);
        free(r->draft);
        free(r->summary);
        r->steps = NULL;
        r->n_steps = 0;
        r->draft = r->summary = NULL;
}

static int gen_level(yajl_gen g, const char *key, int level) {
        AU_JSON_GEN_TRY(au_json_gen_string(g, key));
        return level < 0 ? au_json_gen_null(g) : au_json_gen_string(g, orc_risk_name((orc_risk) level));
}

static int gen_result(yajl_gen g, const orc_intent_result *r, const orc_risk_rules *rules) {
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "outcome", orc_intent_outcome_name(r->outcome)));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "draft"));
        if (r->draft) {
                _cleanup_json_ yajl_val d = NULL;
                au_error err = {};
                AU_JSON_GEN_TRY(au_json_parse(r->draft, strlen(r->draft), 2 * ORC_INTENT_MAX_DRAFT + 1024,
                                              &d, &err));
                AU_JSON_GEN_TRY(au_json_gen_tree(g, d));
        } else
                AU_JSON_GEN_TRY(au_json_gen_null(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "summary", r->summary ? r->summary : ""));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "risk"));
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        AU_JSON_GEN_TRY(gen_level(g, "level", r->draft ? (int) r->risk : -1));
        AU_JSON_GEN_TRY(gen_level(g, "model_level", r->model_risk));
        AU_JSON_GEN_TRY(gen_level(g, "line", (int) rules->line));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "steps"));
        AU_JSON_GEN_TRY(au_json_gen_array_open(g));
        for (size_t i = 0; i < r->n_steps; i++) {
                const orc_intent_step *s = &r->steps[i];
                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "id", s->id));
                AU_JSON_GEN_TRY(gen_level(g, "level", (int) s->risk));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "why", s->why));
                AU_JSON_GEN_TRY(gen_level(g, "model_level", s->model_risk));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "approval_step", s->approval_id));
                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        }
        AU_JSON_GEN_TRY(au_json_gen_array_close(g));
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "rounds", r->rounds));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "approvals", r->approvals));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "tokens"));
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "input", r->usage.input));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "cached", r->usage.cached));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "cache_write", r->usage.cache_write));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "output", r->usage.output));
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "cost_usd"));
        if (yajl_gen_double(g, isfinite(r->cost_usd) ? r->cost_usd : 0) != yajl_gen_status_ok)
                return -ENOMEM;
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "provider", r->provider));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "model", r->model));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "error", r->error));
        return au_json_gen_map_close(g);
}

char *orc_intent_result_json(const orc_intent_result *r, const orc_risk_rules *rules) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        orc_risk_rules dflt;
        if (!rules) {
                orc_risk_rules_init_default(&dflt);
                rules = &dflt;
        }
        if (!g || gen_result(g, r, rules) < 0)
                return NULL;
        return au_json_gen_finish(g, NULL);
}
