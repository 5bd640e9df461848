/* SPDX-License-Identifier: MIT */
/*
 * Model steps (orchestrator/model.c) against the provider stand-in: the
 * "model" block's checks, the prompt with its needs' outputs, the verifier
 * on another provider, a failed verification, recovery level 3 (another
 * provider of the chain), the budget, and the record kept for the run.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "fabric/fabric.h"
#include "orchestrator/model.h"
#include "tests/fabric/standin.h"
#include "tests/tap.h"

static int parse(const char *json, char *const *needs, size_t n, orc_model_spec *spec, au_error *err) {
        _cleanup_json_ yajl_val v = NULL;
        au_error_clear(err);
        *spec = (orc_model_spec){};
        if (au_json_parse(json, strlen(json), 1 << 20, &v, err) < 0)
                return -100;
        return orc_model_spec_parse(v, needs, n, spec, err);
}

static char *needs[] = {"fetch", "count"};

static void test_parse(void) {
        orc_model_spec s;
        au_error err;

        ok(parse("{\"role\":\"synthesizer\",\"prompt\":\"Sum up {{needs.fetch.stdout}} and "
                 "{{needs.count.stdout}}\",\"max_tokens\":100,\"verify\":{\"criteria\":\"true\",\"min_"
                 "confidence\":"
                 "0.8}}",
                 needs, 2, &s, &err) == 0 &&
                   s.role == FAB_ROLE_SYNTHESIZER && s.max_tokens == 100 && s.verify &&
                   fabs(s.min_confidence - 0.8) < 1e-9,
           "a model block with verify parses (%s)", err.msg);
        orc_model_spec_done(&s);
        ok(parse("{\"prompt\":\"x\"}", needs, 2, &s, &err) == -EINVAL &&
                   strcmp(err.field, "model.max_tokens") == 0,
           "max_tokens is required: %s", err.msg);
        ok(parse("{\"prompt\":\"x\",\"max_tokens\":1,\"role\":\"oracle\"}", needs, 2, &s, &err) == -EINVAL &&
                   strstr(err.msg, "oracle"),
           "an unknown role is refused: %s", err.msg);
        ok(parse("{\"prompt\":\"{{needs.secret.stdout}}\",\"max_tokens\":1}", needs, 2, &s, &err) ==
                           -EINVAL &&
                   strstr(err.msg, "needs.secret"),
           "a placeholder naming no need is refused: %s", err.msg);
        ok(parse("{\"prompt\":\"x\",\"max_tokens\":1,\"verify\":{\"min_confidence\":2}}", needs, 2, &s,
                 &err) == -EINVAL &&
                   strstr(err.msg, "min_confidence"),
           "min_confidence above 1 is refused: %s", err.msg);
        ok(parse("{\"prompt\":\"x\",\"max_tokens\":1,\"temperature\":2}", needs, 2, &s, &err) == -EINVAL &&
                   strstr(err.msg, "model.temperature"),
           "an unknown field is refused: %s", err.msg);
}

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
                 "\"roles\":{\"executor\":[{\"provider\":\"a\",\"model\":\"m1\"},{\"provider\":\"b\","
                 "\"model\":"
                 "\"claude-x\"}],\"verifier\":[{\"provider\":\"a\",\"model\":\"m1\"},{\"provider\":\"b\","
                 "\"model\":"
                 "\"claude-x\"}]},\"retry\":{\"backoff_base_ms\":10}}",
                 standin_port, standin_port);
        if (fab_new(json, strlen(json), NULL, &f, &err) < 0) {
                printf("Bail out! fab_new: %s\n", err.msg);
                exit(1);
        }
        return f;
}

static const char *str_of(yajl_val v) {
        return YAJL_IS_STRING(v) ? v->u.string : "";
}

static void test_run(void) {
        _cleanup_fab_ fab_fabric *f = new_fabric();
        orc_model_spec s;
        orc_model_result r;
        au_error err;
        char *outputs[] = {"line one\nline two\n", "2"};

        parse("{\"prompt\":\"Count: {{needs.fetch.stdout}} (wc says "
              "{{needs.count.stdout}})\",\"max_tokens\":50,"
              "\"verify\":{\"criteria\":\"The count is right.\"}}",
              needs, 2, &s, &err);
        standin_script(
                "{\"a\":[{\"reply\":\"text\",\"text\":\"Two lines.\",\"usage\":{\"prompt_tokens\":100,"
                "\"completion_tokens\":10}}],\"b\":[{\"reply\":\"text\",\"text\":\"{\\\"verdict\\\":"
                "\\\"pass\\\",\\\"confidence\\\":0.9,\\\"reason\\\":\\\"two lines\\\"}\",\"usage\":{"
                "\"input_tokens\":200,\"output_tokens\":20}}]}");
        ok(orc_model_run(f, &s, needs, outputs, 2, "wf-1", NULL, 0, &r) == 0 && r.outcome == ORC_MODEL_OK &&
                   strcmp(r.output, "Two lines.") == 0,
           "a verified model step answers: %s %s", orc_model_outcome_name(r.outcome), r.error);
        _cleanup_json_ yajl_val log = standin_log();
        yajl_val msgs = au_json_get(au_json_get(log->u.array.values[0], "body"), "messages");
        ok(YAJL_IS_ARRAY(msgs) && strcmp(str_of(au_json_get(msgs->u.array.values[0], "content")),
                                         "Count: line one\nline two\n (wc says 2)") == 0,
           "the prompt carries the needs' outputs");
        ok(strcmp(r.provider, "a") == 0 && strcmp(r.verifier, "b") == 0 && strcmp(r.verdict, "pass") == 0 &&
                   fabs(r.confidence - 0.9) < 1e-9,
           "the verifier is another provider (b checked a) and its verdict is kept");
        ok(log->u.array.len == 2 &&
                   strcmp(str_of(au_json_get(log->u.array.values[1], "prefix")), "b") == 0 &&
                   strstr(str_of(au_json_get(
                                  au_json_get(au_json_get(log->u.array.values[1], "body"), "messages")
                                          ->u.array.values[0],
                                  "content")),
                          "The count is right."),
           "the verifier's chain skipped a, and was given the criteria");
        double want = (100 * 1 + 10 * 4) / 1e6 + (200 * 3 + 20 * 15) / 1e6;
        ok(fabs(r.cost_usd - want) < 1e-12 && r.usage.input == 300 && r.usage.output == 30,
           "tokens and cost add the verifier's ($%.6f)", r.cost_usd);
        _cleanup_free_ char *json = orc_model_result_json(&r);
        ok(json && strstr(json, "\"provider\":\"a\"") && strstr(json, "\"verdict\":\"pass\"") &&
                   strstr(json, "\"fallbacks\":0") && strstr(json, "\"cost_usd\":"),
           "the run's record: %s", json ? json : "(null)");
        orc_model_result_done(&r);

        /* the verifier fails it: recovery level 3 asks another provider of the chain */
        standin_script("{\"a\":[{\"reply\":\"text\",\"text\":\"Three "
                       "lines.\"}],\"b\":[{\"reply\":\"text\",\"text\":"
                       "\"{\\\"verdict\\\":\\\"fail\\\",\\\"confidence\\\":0.95,\\\"reason\\\":\\\"it is "
                       "two\\\"}\"},"
                       "{\"reply\":\"text\",\"text\":\"Two lines.\"}]}");
        ok(orc_model_run(f, &s, needs, outputs, 2, "wf-1", NULL, 0, &r) == 0 &&
                   r.outcome == ORC_MODEL_VERIFY_FAILED && strstr(r.error, "it is two"),
           "a failed verification is a failure: %s", r.error);
        ssize_t next = orc_model_next_entry(f, FAB_ROLE_EXECUTOR, r.entry);
        ok(next == 1, "level 3: the next entry with another provider is 1 (%zd)", next);
        orc_model_result_done(&r);
        standin_script(
                "{\"b\":[{\"reply\":\"text\",\"text\":\"Two lines.\"}],\"a\":[{\"reply\":\"text\",\"text\":"
                "\"{\\\"verdict\\\":\\\"pass\\\",\\\"confidence\\\":0.7}\"}]}");
        ok(orc_model_run(f, &s, needs, outputs, 2, "wf-1", NULL, (size_t) next, &r) == 0 &&
                   r.outcome == ORC_MODEL_OK && strcmp(r.provider, "b") == 0 && strcmp(r.verifier, "a") == 0,
           "from entry 1, b answers and a verifies: %s", r.error);
        ok(orc_model_next_entry(f, FAB_ROLE_EXECUTOR, 1) == -1,
           "after the last provider there is no level 3");
        orc_model_result_done(&r);

        /* a low confidence is not a pass */
        standin_script("{\"a\":[{\"reply\":\"text\",\"text\":\"Two.\"}],\"b\":[{\"reply\":\"text\",\"text\":"
                       "\"{\\\"verdict\\\":\\\"pass\\\",\\\"confidence\\\":0.2}\"}]}");
        ok(orc_model_run(f, &s, needs, outputs, 2, "wf-1", NULL, 0, &r) == 0 &&
                   r.outcome == ORC_MODEL_VERIFY_FAILED,
           "a pass below min_confidence fails: %s", r.error);
        orc_model_result_done(&r);
        standin_script("{\"a\":[{\"reply\":\"text\",\"text\":\"Two.\"}],\"b\":[{\"reply\":\"text\",\"text\":"
                       "\"looks fine to me\"}]}");
        ok(orc_model_run(f, &s, needs, outputs, 2, "wf-1", NULL, 0, &r) == 0 &&
                   r.outcome == ORC_MODEL_VERIFY_FAILED && strstr(r.error, "no verdict"),
           "an answer without a verdict fails: %s", r.error);
        orc_model_result_done(&r);

        /* the workflow's budget */
        fab_budget_set(f, FAB_SCOPE_WORKFLOW, "wf-1", fab_budget_spent(f, FAB_SCOPE_WORKFLOW, "wf-1"));
        standin_script("{}");
        ok(orc_model_run(f, &s, needs, outputs, 2, "wf-1", NULL, 0, &r) == 0 &&
                   r.outcome == ORC_MODEL_BUDGET && strstr(r.error, "wf-1"),
           "a spent workflow budget stops the step: %s", r.error);
        orc_model_result_done(&r);
        orc_model_spec_done(&s);
}

int main(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        test_parse();
        standin_start();
        test_run();
        standin_stop();
        curl_global_cleanup();
        return done_testing();
}
