/* SPDX-License-Identifier: MIT */
/*
 * orchestrator/cost: the worst-case model cost simulate gives a model or
 * agent step, read from the step's JSON with the fabric's prices (no
 * provider is called): a model step's max_tokens and prompt at its role's
 * first chain entry, a verify block's verifier call on top, an agent's
 * turns x max_tokens capped by limits.tokens and limits.cost_usd, and the
 * steps that cannot be priced saying why.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "fabric/fabric.h"
#include "orchestrator/cost.h"
#include "tests/tap.h"

static const char fabric_json[] =
        "{\"providers\":{"
        "\"a\":{\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:9/a\","
        "\"models\":{\"m1\":{\"input\":1,\"output\":4},\"free\":{\"input\":0,\"output\":0}}},"
        "\"b\":{\"kind\":\"anthropic\",\"base_url\":\"http://127.0.0.1:9/b\","
        "\"models\":{\"claude-x\":{\"input\":3,\"output\":15}}}},"
        "\"roles\":{\"executor\":[{\"provider\":\"b\",\"model\":\"claude-x\"},{\"provider\":\"a\",\"model\":"
        "\"m1\"}],"
        "\"verifier\":[{\"provider\":\"a\",\"model\":\"m1\"}],"
        "\"synthesizer\":[{\"provider\":\"a\",\"model\":\"free\"}]}}";

/* The estimate of the step in json (a fresh parse each time); the return code in *rc. */
static orc_step_cost estimate(const fab_fabric *f, const char *json, int *rc) {
        yajl_val v = NULL;
        au_error err = {};
        orc_step_cost c = {.usd = -1};
        if (au_json_parse(json, strlen(json), 1 << 20, &v, &err) < 0) {
                printf("Bail out! bad test JSON: %s\n", err.msg);
                exit(1);
        }
        *rc = orc_step_cost_estimate(f, v, &c);
        yajl_tree_free(v);
        return c;
}

static bool near(double a, double b) {
        return fabs(a - b) < 1e-12;
}

int main(void) {
        fab_fabric *f = NULL;
        au_error err = {};
        orc_step_cost c;
        char prompt[401], json[2048];
        int rc;

        if (fab_new(fabric_json, strlen(fabric_json), NULL, &f, &err) < 0) {
                printf("Bail out! fab_new: %s\n", err.msg);
                return 1;
        }
        memset(prompt, 'p', 400);
        prompt[400] = '\0';

        c = estimate(f, "{\"id\":\"r\",\"run\":{\"argv\":[\"/bin/true\"]}}", &rc);
        ok(rc == -ENOENT && c.usd == -1, "a run step is not a model step: -ENOENT, untouched");
        c = estimate(f, "{\"id\":\"a\",\"kind\":\"approval\"}", &rc);
        ok(rc == -ENOENT, "nor is an approval step");

        /* 1000 output tokens at $15/M + 100 input tokens (400 bytes) at $3/M on b/claude-x */
        snprintf(json, sizeof(json),
                 "{\"id\":\"m\",\"kind\":\"model\",\"model\":{\"prompt\":\"%s\",\"max_tokens\":1000}}",
                 prompt);
        c = estimate(f, json, &rc);
        ok(rc == 0 && c.priced && near(c.usd, 1000 * 15e-6 + 100 * 3e-6),
           "a model step: max_tokens at the output price plus its prompt at the input price ($%.6f)", c.usd);
        ok(strcmp(c.role, "executor") == 0 && strcmp(c.provider, "b") == 0 &&
                   strcmp(c.model, "claude-x") == 0 && c.calls == 1 && c.input_tokens == 100 &&
                   c.output_tokens == 1000,
           "priced at the executor role's first chain entry (%s %s/%s, %u call)", c.role, c.provider,
           c.model, c.calls);
        ok(strstr(c.basis, "1000 output tokens at $15/M") != NULL, "and says how: %s", c.basis);

        /* the verifier on top: input (40 + 400) / 4 + 1000, output 256, at a/m1 ($1, $4) */
        snprintf(json, sizeof(json),
                 "{\"id\":\"m\",\"kind\":\"model\",\"model\":{\"prompt\":\"%s\",\"max_tokens\":1000,"
                 "\"verify\":{\"criteria\":\"%.40s\"}}}",
                 prompt, prompt);
        c = estimate(f, json, &rc);
        ok(rc == 0 && c.priced && c.calls == 2 &&
                   near(c.usd, 1000 * 15e-6 + 100 * 3e-6 + (10 + 100 + 1000) * 1e-6 + 256 * 4e-6),
           "a verified model step adds the verifier's call ($%.6f)", c.usd);
        ok(strstr(c.basis, "verifier a/m1") != NULL, "naming the verifier: %s", c.basis);

        snprintf(json, sizeof(json),
                 "{\"id\":\"m\",\"kind\":\"model\",\"model\":{\"role\":\"synthesizer\",\"prompt\":\"x\","
                 "\"max_tokens\":50000}}");
        c = estimate(f, json, &rc);
        ok(rc == 0 && c.priced && c.usd == 0 && strcmp(c.provider, "a") == 0,
           "a free model is priced at $0, not unknown");

        /* agent: 5 turns x 2000 tokens, capped at 6000 in all; 5 x 100 input tokens */
        snprintf(json, sizeof(json),
                 "{\"id\":\"g\",\"kind\":\"agent\",\"agent\":{\"goal\":\"%s\",\"max_tokens\":2000,"
                 "\"tools\":[],\"limits\":{\"turns\":5,\"tokens\":6000}}}",
                 prompt);
        c = estimate(f, json, &rc);
        ok(rc == 0 && c.priced && c.output_tokens == 6000 && c.input_tokens == 500 && c.calls == 5 &&
                   near(c.usd, 6000 * 15e-6 + 500 * 3e-6),
           "an agent step: turns x max_tokens, capped by limits.tokens ($%.6f, %llu output tokens)", c.usd,
           (unsigned long long) c.output_tokens);
        snprintf(json, sizeof(json),
                 "{\"id\":\"g\",\"kind\":\"agent\",\"agent\":{\"goal\":\"g\",\"max_tokens\":2000,"
                 "\"tools\":[],\"limits\":{\"turns\":5}}}");
        c = estimate(f, json, &rc);
        ok(rc == 0 && c.output_tokens == 10000 && near(c.usd, 10000 * 15e-6 + 5 * 1 * 3e-6),
           "without limits.tokens, turns x max_tokens is the bound ($%.6f)", c.usd);
        snprintf(json, sizeof(json),
                 "{\"id\":\"g\",\"kind\":\"agent\",\"agent\":{\"goal\":\"g\",\"tools\":[],"
                 "\"limits\":{\"cost_usd\":0.05}}}");
        c = estimate(f, json, &rc);
        ok(rc == 0 && c.priced && near(c.usd, 0.05) && strstr(c.basis, "limits.cost_usd"),
           "limits.cost_usd caps it (defaults: 10 turns x 1024 would be more): $%.4f, %s", c.usd, c.basis);
        snprintf(json, sizeof(json),
                 "{\"id\":\"g\",\"kind\":\"agent\",\"agent\":{\"goal\":\"g\",\"tools\":[]}}");
        c = estimate(f, json, &rc);
        ok(rc == 0 && c.output_tokens == 10 * 1024 && c.calls == 10,
           "the defaults: 10 turns of 1024 output tokens (%llu)", (unsigned long long) c.output_tokens);

        /* what cannot be priced says why */
        snprintf(json, sizeof(json),
                 "{\"id\":\"m\",\"kind\":\"model\",\"model\":{\"role\":\"auditor\",\"prompt\":\"x\",\"max_"
                 "tokens\":"
                 "10}}");
        c = estimate(f, json, &rc);
        ok(rc == 0 && !c.priced && c.usd == 0 && strstr(c.basis, "role auditor has no providers"),
           "a role without providers: not priced (%s)", c.basis);
        c = estimate(NULL, json, &rc);
        ok(rc == 0 && !c.priced && strstr(c.basis, "no fabric setting"), "no fabric: not priced (%s)",
           c.basis);
        snprintf(json, sizeof(json),
                 "{\"id\":\"m\",\"kind\":\"model\",\"model\":{\"role\":\"oracle\",\"prompt\":\"x\",\"max_"
                 "tokens\":10}}");
        c = estimate(f, json, &rc);
        ok(rc == 0 && !c.priced && strstr(c.basis, "unknown role 'oracle'"), "an unknown role: %s", c.basis);

        fab_free(f);
        return done_testing();
}
