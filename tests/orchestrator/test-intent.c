/* SPDX-License-Identifier: MIT */
/*
 * Intents (orchestrator/intent.c) against the provider stand-in (the planner
 * an Anthropic provider): a valid draft classified by the policy's rules with
 * the planner's rating beside them and an approval step inserted before the
 * step above the risk line; a refused draft sent back with the validator's
 * message and corrected; a planner that never gets it right stops after the
 * bounded rounds; the rules themselves (trust, egress, model spend) and
 * their parser.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "fabric/fabric.h"
#include "orchestrator/intent.h"
#include "orchestrator/workflow.h"
#include "tests/fabric/standin.h"
#include "tests/tap.h"

static fab_fabric *new_fabric(void) {
        char json[2048];
        fab_fabric *f = NULL;
        au_error err = {};
        snprintf(json, sizeof(json),
                 "{\"providers\":{"
                 "\"a\":{\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/a\",\"max_retries\":0,"
                 "\"models\":{\"m1\":{\"input\":1,\"output\":4}}},"
                 "\"b\":{\"kind\":\"anthropic\",\"base_url\":\"http://127.0.0.1:%d/b\",\"max_retries\":0,"
                 "\"models\":{\"claude-x\":{\"input\":3,\"output\":15}}}},"
                 "\"roles\":{\"executor\":[{\"provider\":\"a\",\"model\":\"m1\"}],"
                 "\"synthesizer\":[{\"provider\":\"b\",\"model\":\"claude-x\"}],"
                 "\"planner\":[{\"provider\":\"b\",\"model\":\"claude-x\"}]},\"retry\":{\"backoff_base_ms\":"
                 "10}}",
                 standin_port, standin_port);
        if (fab_new(json, strlen(json), NULL, &f, &err) < 0) {
                printf("Bail out! fab_new: %s\n", err.msg);
                exit(1);
        }
        return f;
}

/* A stand-in script: the planner (provider b) answers each text in turn. */
static void script_planner(const char *const *texts, size_t n) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        au_json_gen_map_open(g);
        au_json_gen_string(g, "b");
        au_json_gen_array_open(g);
        for (size_t i = 0; i < n; i++) {
                au_json_gen_map_open(g);
                au_json_gen_kv_string(g, "text", texts[i]);
                au_json_gen_string(g, "usage");
                au_json_gen_map_open(g);
                au_json_gen_kv_uint64(g, "input_tokens", 500);
                au_json_gen_kv_uint64(g, "output_tokens", 200);
                au_json_gen_map_close(g);
                au_json_gen_map_close(g);
        }
        au_json_gen_array_close(g);
        au_json_gen_map_close(g);
        _cleanup_free_ char *s = au_json_gen_finish(g, NULL);
        standin_script(s);
}

#define GOOD_DRAFT                                                                                        \
        "Here is the "                                                                                    \
        "plan:\n{\"workflow\":{\"name\":\"release\",\"steps\":[{\"id\":\"build\",\"run\":{\"argv\":"      \
        "[\"/usr/bin/make\"]}},{\"id\":\"deploy\",\"needs\":[\"build\"],\"run\":{\"argv\":[\"/bin/"       \
        "sh\",\"-c\","                                                                                    \
        "\"echo deploy\"],\"trust\":\"elevated\"}}]},\"risk\":{\"build\":\"low\",\"deploy\":\"medium\"}," \
        "\"summary\":\"Build, then deploy.\"}"

static const char *str_of(yajl_val v) {
        return YAJL_IS_STRING(v) ? v->u.string : "";
}

static void test_rules(fab_fabric *f) {
        orc_risk_rules rules;
        sbx_policy policy;
        au_error err = {};
        _cleanup_json_ yajl_val v = NULL;
        _cleanup_free_ char *why = NULL;
        orc_risk lv;

        sbx_policy_init_default(&policy);
        orc_risk_rules_init_default(&rules);
        const char *j = "{\"risk_line\":\"low\",\"trust\":{\"elevated\":\"high\"},\"network\":{\"loopback\":"
                        "\"medium\"},\"model_spend_usd\":{\"medium\":0.01,\"high\":0.5}}";
        au_json_parse(j, strlen(j), 4096, &v, &err);
        ok(orc_risk_rules_parse(v, &rules, &err) == 0 && rules.line == ORC_RISK_LOW &&
                   rules.trust[SBX_TRUST_ELEVATED] == ORC_RISK_HIGH &&
                   rules.network[SBX_NET_LOOPBACK] == ORC_RISK_MEDIUM &&
                   fabs(rules.spend_high_usd - 0.5) < 1e-12,
           "the policy's intents block parses (%s)", err.msg);
        yajl_tree_free(v);
        v = NULL;
        orc_risk_rules_init_default(&rules);
        j = "{\"trust\":{\"elevated\":\"extreme\"}}";
        au_json_parse(j, strlen(j), 4096, &v, &err);
        ok(orc_risk_rules_parse(v, &rules, &err) == -EINVAL &&
                   strcmp(err.field, "intents.trust.elevated") == 0 &&
                   rules.trust[SBX_TRUST_ELEVATED] == ORC_RISK_MEDIUM,
           "an unknown level is refused and the rules are untouched: %s", err.msg);
        yajl_tree_free(v);
        v = NULL;

        /* model spend: 100000 tokens at the synthesizer's $15/M output is $1.50, over the $1 high line */
        j = "{\"id\":\"sum\",\"kind\":\"model\",\"model\":{\"role\":\"synthesizer\",\"prompt\":\"x\",\"max_"
            "tokens\":"
            "100000}}";
        au_json_parse(j, strlen(j), 4096, &v, &err);
        lv = orc_risk_of_step(&rules, &policy, f, v, &why);
        ok(lv == ORC_RISK_HIGH && strstr(why, "model spend up to $1.5"),
           "a model step's worst-case spend is high: %s", why);
        yajl_tree_free(v);
        v = NULL;
        free(why);
        why = NULL;
        j = "{\"id\":\"sum\",\"kind\":\"model\",\"model\":{\"role\":\"synthesizer\",\"prompt\":\"x\",\"max_"
            "tokens\":"
            "10000}}";
        au_json_parse(j, strlen(j), 4096, &v, &err);
        lv = orc_risk_of_step(&rules, &policy, f, v, &why);
        ok(lv == ORC_RISK_MEDIUM, "$0.15 is medium: %s", why);
        yajl_tree_free(v);
        v = NULL;
        free(why);
        why = NULL;
        j = "{\"id\":\"get\",\"run\":{\"argv\":[\"/usr/bin/"
            "curl\"],\"trust\":\"elevated\",\"network\":\"egress\"}}";
        au_json_parse(j, strlen(j), 4096, &v, &err);
        lv = orc_risk_of_step(&rules, &policy, f, v, &why);
        ok(lv == ORC_RISK_HIGH && strstr(why, "network egress: high") &&
                   strstr(why, "trust elevated: medium"),
           "egress is high by the default rules: %s", why);
        yajl_tree_free(v);
        v = NULL;
        free(why);
        why = NULL;
        j = "{\"id\":\"ls\",\"run\":{\"argv\":[\"/bin/ls\"]}}";
        au_json_parse(j, strlen(j), 4096, &v, &err);
        lv = orc_risk_of_step(&rules, &policy, f, v, &why);
        ok(lv == ORC_RISK_LOW && strcmp(why, "") == 0, "a standard loopback run is low");
}

static void test_drafts(fab_fabric *f) {
        orc_risk_rules rules;
        orc_intent_result r;
        au_error err = {};
        int rc;

        /* elevated is high under this policy, and high is above the line */
        orc_risk_rules_init_default(&rules);
        rules.trust[SBX_TRUST_ELEVATED] = ORC_RISK_HIGH;
        orc_intent_options o = {.rules = &rules, .key = "k1"};

        const char *good[] = {GOOD_DRAFT};
        script_planner(good, 1);
        rc = orc_intent_draft(f, "build the release and deploy it", &o, &r);
        ok(rc == 0 && r.outcome == ORC_INTENT_OK && r.rounds == 1 && r.approvals == 1 &&
                   r.risk == ORC_RISK_HIGH && r.model_risk == ORC_RISK_MEDIUM,
           "a valid draft is classified: %s %s", orc_intent_outcome_name(r.outcome), r.error);
        _cleanup_orc_workflow_ orc_workflow *w = NULL;
        ok(r.draft && orc_workflow_parse(r.draft, strlen(r.draft), 1 << 20, NULL, &w, &err) == 0,
           "the draft with its approval is a workflow submissions accept (%s)", err.msg);
        const orc_step *ap = w ? orc_workflow_step(w, "approve-deploy") : NULL;
        const orc_step *dep = w ? orc_workflow_step(w, "deploy") : NULL;
        ok(ap && ap->kind == ORC_STEP_APPROVAL && ap->n_needs == 1 && strcmp(ap->needs[0], "build") == 0 &&
                   dep && dep->n_needs == 2 && strcmp(dep->needs[1], "approve-deploy") == 0 &&
                   !orc_workflow_step(w, "approve-build"),
           "an approval step is inserted before the high step only, after its needs");
        ok(r.n_steps == 2 && r.steps[1].risk == ORC_RISK_HIGH && r.steps[1].model_risk == ORC_RISK_MEDIUM &&
                   strstr(r.steps[1].why, "trust elevated: high") && r.steps[0].risk == ORC_RISK_LOW,
           "the rules' level is kept beside the planner's own (%s vs %s)", orc_risk_name(r.steps[1].risk),
           r.steps[1].model_risk >= 0 ? orc_risk_name((orc_risk) r.steps[1].model_risk) : "-");
        _cleanup_free_ char *json = orc_intent_result_json(&r, &rules);
        ok(json && strstr(json, "\"outcome\":\"ok\"") &&
                   strstr(json, "\"approval_step\":\"approve-deploy\"") &&
                   strstr(json, "\"summary\":\"Build, then deploy.\"") &&
                   strstr(json, "\"model_level\":\"medium\""),
           "the answer for review: %.300s", json ? json : "(null)");
        _cleanup_json_ yajl_val log = standin_log();
        yajl_val body = au_json_get(log->u.array.values[0], "body");
        ok(strcmp(str_of(au_json_get(log->u.array.values[0], "prefix")), "b") == 0 &&
                   strstr(str_of(au_json_get(body, "system")), "\"workflow\"") &&
                   fabs(r.cost_usd - (500 * 3 + 200 * 15) / 1e6) < 1e-12,
           "the planner role's chain was asked, and its cost kept ($%.6f)", r.cost_usd);
        orc_intent_result_done(&r);

        /* a refused draft goes back with the validator's message */
        const char *fixup[] = {"{\"workflow\":{\"steps\":[{\"id\":\"test\",\"needs\":[\"compile\"],\"run\":{"
                               "\"argv\":[\"/bin/true\"]}}]}}",
                               "{\"workflow\":{\"steps\":[{\"id\":\"test\",\"run\":{\"argv\":[\"/bin/"
                               "true\"]}}]},\"risk\":{\"test\":"
                               "\"low\"}}"};
        script_planner(fixup, 2);
        rc = orc_intent_draft(f, "run the tests", &o, &r);
        ok(rc == 0 && r.outcome == ORC_INTENT_OK && r.rounds == 2 && r.approvals == 0,
           "a refused draft is corrected in a second round: %s", orc_intent_outcome_name(r.outcome));
        _cleanup_json_ yajl_val log2 = standin_log();
        yajl_val msgs = log2->u.array.len == 2
                                ? au_json_get(au_json_get(log2->u.array.values[1], "body"), "messages")
                                : NULL;
        yajl_val last = YAJL_IS_ARRAY(msgs) && msgs->u.array.len == 3 ? msgs->u.array.values[2] : NULL;
        const char *told = str_of(au_json_get(last, "content"));
        ok(strstr(told, "steps.test.needs") && strstr(told, "compile"), "the planner was told why: %.200s",
           told);
        orc_intent_result_done(&r);

        /* a planner that never gets it right: bounded rounds */
        const char *bad[] = {"no JSON here", "{\"workflow\":{\"steps\":[]}}", "{\"workflow\":{\"stepz\":1}}",
                             GOOD_DRAFT};
        script_planner(bad, 4);
        o.max_rounds = 3;
        rc = orc_intent_draft(f, "do something", &o, &r);
        ok(rc == 0 && r.outcome == ORC_INTENT_INVALID && r.rounds == 3 && !r.draft &&
                   strstr(r.error, "stepz"),
           "after 3 refused drafts it stops with the validator's last message: %s", r.error);
        _cleanup_json_ yajl_val log3 = standin_log();
        ok(log3->u.array.len == 3, "exactly 3 planner calls (%zu)", log3->u.array.len);
        orc_intent_result_done(&r);

        /* the key's budget */
        fab_budget_set(f, FAB_SCOPE_KEY, "k1", fab_budget_spent(f, FAB_SCOPE_KEY, "k1"));
        script_planner(good, 1);
        rc = orc_intent_draft(f, "build it", &o, &r);
        ok(rc == 0 && r.outcome == ORC_INTENT_BUDGET && r.rounds == 1 && !r.draft,
           "a spent key budget stops the planner: %s", r.error);
        orc_intent_result_done(&r);
        ok(orc_intent_draft(f, "", &o, &r) == -EINVAL, "an empty sentence is refused");
}

int main(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        standin_start();
        {
                _cleanup_fab_ fab_fabric *f = new_fabric();
                test_rules(f);
                test_drafts(f);
        }
        standin_stop();
        curl_global_cleanup();
        return done_testing();
}
