/* SPDX-License-Identifier: MIT */
/*
 * fabric/'s pure decisions, no server: error classification, Retry-After in
 * its three forms, backoff, cost arithmetic for both providers, the tool
 * schema subset, and fabric.json's strict parsing.
 */
#include <math.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "fabric/fabric.h"
#include "tests/tap.h"

#define CLASSIFY(st, body) fab_error_classify((st), (body), strlen(body), NULL, 0)

static void test_classify(void) {
        ok(CLASSIFY(429, "{\"error\":{\"message\":\"Rate limit "
                         "reached\",\"type\":\"tokens\",\"param\":null,\"code\":"
                         "\"rate_limit_exceeded\"}}") == FAB_ERR_RATE_LIMIT,
           "OpenAI 429 rate_limit_exceeded is a rate limit");
        ok(CLASSIFY(429, "{\"error\":{\"message\":\"You exceeded your current "
                         "quota\",\"type\":\"insufficient_quota\","
                         "\"param\":null,\"code\":\"insufficient_quota\"}}") == FAB_ERR_QUOTA,
           "OpenAI 429 insufficient_quota is quota");
        ok(!fab_error_retryable(FAB_ERR_QUOTA) && fab_error_falls_back(FAB_ERR_QUOTA),
           "quota is never retried but falls back");
        ok(CLASSIFY(429, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
                         "\"spend\",\"details\":"
                         "{\"error_code\":\"enforced_spend_limit_reached\"}},\"request_id\":\"req_1\"}") ==
                   FAB_ERR_QUOTA,
           "Anthropic enforced_spend_limit_reached is quota");
        ok(CLASSIFY(529, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                         "\"Overloaded\"},"
                         "\"request_id\":\"req_01\"}") == FAB_ERR_OVERLOADED,
           "Anthropic 529 overloaded_error is overloaded");
        ok(CLASSIFY(500, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                         "\"Overloaded\"}}") == FAB_ERR_OVERLOADED,
           "classified by error type before status");
        ok(CLASSIFY(503, "<html>") == FAB_ERR_SERVER && fab_error_retryable(FAB_ERR_SERVER),
           "a 503 page is retried");
        ok(CLASSIFY(400, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
                         "\"x\"}}") == FAB_ERR_REQUEST &&
                   !fab_error_falls_back(FAB_ERR_REQUEST),
           "400 invalid_request_error: no retry, no fallback");
        ok(CLASSIFY(402, "{}") == FAB_ERR_QUOTA, "402 is quota");
        ok(CLASSIFY(401, "{}") == FAB_ERR_AUTH && !fab_error_retryable(FAB_ERR_AUTH), "401 is not retried");
        char msg[64];
        const char *b = "{\"error\":{\"message\":\"Our servers are currently overloaded.\",\"type\":"
                        "\"service_unavailable_error\",\"code\":\"server_is_overloaded\"}}";
        ok(fab_error_classify(503, b, strlen(b), msg, sizeof(msg)) == FAB_ERR_OVERLOADED &&
                   strcmp(msg, "Our servers are currently overloaded.") == 0,
           "OpenAI 503 server_is_overloaded, message kept");
}

static void test_retry_after(void) {
        uint64_t now = 1741569952000ULL; /* Mon, 10 Mar 2025 01:25:52 GMT */
        ok(fab_retry_after_ms("7", NULL, now) == 7000, "Retry-After: 7 is 7000 ms");
        ok(fab_retry_after_ms("7", "250", now) == 250, "retry-after-ms wins over Retry-After");
        ok(fab_retry_after_ms(NULL, "12.5", now) == 13, "fractional retry-after-ms rounds up");
        ok(fab_retry_after_ms("Mon, 10 Mar 2025 01:26:02 GMT", NULL, now) == 10000,
           "Retry-After as an IMF-fixdate 10 s ahead is 10000 ms");
        ok(fab_retry_after_ms("Monday, 10-Mar-25 01:26:02 GMT", NULL, now) == 10000, "RFC 850 date");
        ok(fab_retry_after_ms("Mon Mar 10 01:26:02 2025", NULL, now) == 10000, "asctime date");
        ok(fab_retry_after_ms("Mon, 10 Mar 2025 01:00:00 GMT", NULL, now) == 0, "a date in the past is 0");
        ok(fab_retry_after_ms("soon", NULL, now) == -1 && fab_retry_after_ms(NULL, NULL, now) == -1 &&
                   fab_retry_after_ms("", "-5", now) == -1,
           "garbage and absence are -1");
        ok(fab_backoff_ms(1, 100, 10000, 0, -1) == 100 && fab_backoff_ms(3, 100, 10000, 0, -1) == 400 &&
                   fab_backoff_ms(20, 100, 10000, 0, -1) == 10000,
           "exponential backoff, capped");
        ok(fab_backoff_ms(1, 100, 10000, 0.99, -1) >= 75 && fab_backoff_ms(1, 100, 10000, 0.99, -1) < 100,
           "jitter takes at most 25%%");
        ok(fab_backoff_ms(1, 100, 10000, 0.5, 3000) == 3000, "a longer Retry-After wins over backoff");
}

static bool near(double a, double b) {
        return fabs(a - b) < 1e-12;
}

static void test_cost(void) {
        fab_price p = {.input = 2.5, .output = 10, .cached = 1.25, .cache_write = 3.125};
        fab_usage u;

        /* OpenAI: prompt_tokens 1000 includes 600 cached */
        fab_usage_openai(1000, 600, 200, &u);
        ok(u.input == 400 && u.cached == 600 && u.output == 200,
           "OpenAI: cached tokens come out of prompt_tokens");
        ok(near(fab_cost(&p, &u), (400 * 2.5 + 600 * 1.25 + 200 * 10) / 1e6),
           "OpenAI cost: 400 uncached + 600 cached + 200 output = $%.6f", fab_cost(&p, &u));
        fab_usage_openai(10, 50, 1, &u);
        ok(u.input == 0 && u.cached == 10, "a cached count above prompt_tokens is clamped");
        /* Anthropic: input_tokens 400 does NOT include the 600 read from and 300 written to the cache */
        fab_usage_anthropic(400, 300, 600, 200, &u);
        ok(u.input == 400 && u.cached == 600 && u.cache_write == 300 && u.output == 200,
           "Anthropic: cache tokens are their own components");
        ok(near(fab_cost(&p, &u), (400 * 2.5 + 600 * 1.25 + 300 * 3.125 + 200 * 10) / 1e6),
           "Anthropic cost: 400 input + 600 cache read + 300 cache write + 200 output = $%.6f",
           fab_cost(&p, &u));
}

static int schema_case(const char *schema, const char *args, char *why, size_t n) {
        _cleanup_json_ yajl_val s = NULL;
        au_error err = {};
        if (au_json_parse(schema, strlen(schema), 1 << 20, &s, &err) < 0 ||
            fab_schema_check(s, "", &err) < 0) {
                snprintf(why, n, "schema: %.200s", err.msg);
                return -100;
        }
        fab_tool t = {.name = "read_file", .schema = s};
        fab_tool_call c = {.id = "call_1", .name = "read_file", .arguments = (char *) args};
        return fab_tool_check_call(&t, 1, &c, NULL, why, n);
}

static void test_schema(void) {
        const char *s =
                "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\",\"maxLength\":8},"
                "\"lines\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100},\"mode\":{\"type\":"
                "\"string\","
                "\"enum\":[\"head\",\"tail\"]}},\"required\":[\"path\"],\"additionalProperties\":false}";
        char why[256];
        int r;

        ok(schema_case(s, "{\"path\":\"a.txt\",\"lines\":5,\"mode\":\"tail\"}", why, sizeof(why)) == 0,
           "valid arguments pass");
        r = schema_case(s, "{\"lines\":5}", why, sizeof(why));
        ok(r == -EINVAL && strstr(why, "path: required"), "a missing required property is refused: %s", why);
        r = schema_case(s, "{\"path\":\"a\",\"extra\":1}", why, sizeof(why));
        ok(r == -EINVAL && strstr(why, "extra: not allowed"),
           "additionalProperties false refuses extras: %s", why);
        r = schema_case(s, "{\"path\":\"../../etc/passwd\"}", why, sizeof(why));
        ok(r == -EINVAL && strstr(why, "maxLength"), "maxLength: %s", why);
        r = schema_case(s, "{\"path\":\"a\",\"lines\":0}", why, sizeof(why));
        ok(r == -EINVAL && strstr(why, "minimum"), "integer minimum: %s", why);
        r = schema_case(s, "{\"path\":\"a\",\"lines\":101}", why, sizeof(why));
        ok(r == -EINVAL && strstr(why, "maximum"), "integer maximum: %s", why);
        r = schema_case(s, "{\"path\":\"a\",\"lines\":2.5}", why, sizeof(why));
        ok(r == -EINVAL && strstr(why, "integer"), "a fraction is not an integer: %s", why);
        r = schema_case(s, "{\"path\":\"a\",\"mode\":\"all\"}", why, sizeof(why));
        ok(r == -EINVAL && strstr(why, "enum"), "enum: %s", why);
        r = schema_case(s, "{\"path\":7}", why, sizeof(why));
        ok(r == -EINVAL && strstr(why, "expected a string"), "type: %s", why);
        r = schema_case(s, "{\"path\":", why, sizeof(why));
        ok(r == -EINVAL && strstr(why, "not JSON"), "arguments that are not JSON: %s", why);
        r = schema_case(s, "[1]", why, sizeof(why));
        ok(r == -EINVAL, "arguments that are not an object");
        r = schema_case("{\"type\":\"object\",\"pattern\":\"x\"}", "{}", why, sizeof(why));
        ok(r == -100 && strstr(why, "pattern"), "a schema keyword outside the subset is refused: %s", why);
        r = schema_case("{\"type\":\"object\",\"additionalProperties\":true}", "{}", why, sizeof(why));
        ok(r == -100, "additionalProperties true is refused (only false is enforced)");

        _cleanup_json_ yajl_val sv = NULL;
        au_error err = {};
        au_json_parse(s, strlen(s), 1 << 20, &sv, &err);
        fab_tool t = {.name = "read_file", .schema = sv};
        fab_tool_call c = {.id = "call_2", .name = "rm_rf", .arguments = "{}"};
        ok(fab_tool_check_call(&t, 1, &c, NULL, why, sizeof(why)) == -ENOENT &&
                   strstr(why, "no tool \"rm_rf\""),
           "a tool not on the list is refused: %s", why);
}

static int config_case(const char *json, au_error *err) {
        fab_fabric *f = NULL;
        au_error_clear(err);
        int r = fab_new(json, strlen(json), NULL, &f, err);
        fab_free(f);
        return r;
}

#define PROVIDER(extra)                                                     \
        "{\"providers\":{\"a\":{\"kind\":\"openai\",\"base_url\":\"http://" \
        "127.0.0.1:1\",\"models\":{\"m\":{\"input\":1,"                     \
        "\"output\":2}}" extra "}},\"roles\":{\"executor\":[{\"provider\":\"a\",\"model\":\"m\"}]}}"

static void test_config(void) {
        au_error err;
        ok(config_case(PROVIDER(""), &err) == 0, "a minimal fabric.json loads");
        ok(config_case(PROVIDER(",\"colour\":1"), &err) == -EINVAL && strstr(err.msg, "providers.a.colour"),
           "an unknown provider field is refused: %s", err.msg);
        ok(config_case(PROVIDER(",\"kind\":\"gemini\""), &err) == -EINVAL,
           "a duplicate or bad kind is refused: %s", err.msg);
        ok(config_case(PROVIDER(",\"max_retries\":99"), &err) == -EINVAL && strstr(err.msg, "max_retries"),
           "max_retries out of range: %s", err.msg);
        ok(config_case(PROVIDER(",\"api_key\":\"OPENAI\""), &err) == -ENOENT && strstr(err.msg, "OPENAI"),
           "a secret key with no secret store: %s", err.msg);
        ok(config_case(PROVIDER(",\"rate_limits\":{\"requests_per_minute\":0}"), &err) == -EINVAL,
           "a zero rate limit is refused: %s", err.msg);
        ok(config_case("{\"providers\":{\"a\":{\"kind\":\"anthropic\",\"base_url\":\"ftp://"
                       "x\",\"models\":{\"m\":{"
                       "\"input\":1,\"output\":2}}}},\"roles\":{}}",
                       &err) == -EINVAL &&
                   strstr(err.msg, "base_url"),
           "a non-HTTP base_url is refused: %s", err.msg);
        ok(config_case(
                   "{\"providers\":{\"a\":{\"kind\":\"openai\",\"base_url\":\"http://x\",\"models\":{\"m\":{"
                   "\"input\":-1,\"output\":2}}}},\"roles\":{}}",
                   &err) == -EINVAL &&
                   strstr(err.msg, "models.m.input"),
           "a negative price is refused: %s", err.msg);
        ok(config_case(
                   "{\"providers\":{\"a\":{\"kind\":\"openai\",\"base_url\":\"http://x\",\"models\":{\"m\":{"
                   "\"input\":1,\"output\":2}}}},\"roles\":{\"executor\":[{\"provider\":\"a\",\"model\":"
                   "\"n\"}]}}",
                   &err) == -EINVAL &&
                   strstr(err.msg, "no model \"n\""),
           "a chain naming an unknown model is refused: %s", err.msg);
        ok(config_case(
                   "{\"providers\":{\"a\":{\"kind\":\"openai\",\"base_url\":\"http://x\",\"models\":{\"m\":{"
                   "\"input\":1,\"output\":2}}}},\"roles\":{\"janitor\":[]}}",
                   &err) == -EINVAL &&
                   strstr(err.msg, "roles.janitor"),
           "an unknown role is refused: %s", err.msg);
        ok(config_case(
                   "{\"providers\":{\"a\":{\"kind\":\"openai\",\"base_url\":\"http://x\",\"models\":{\"m\":{"
                   "\"input\":1,\"output\":2}}},\"a\":{}},\"roles\":{}}",
                   &err) == -EINVAL,
           "a duplicate provider is refused: %s", err.msg);
}

static void test_key_file(void) {
        char dir[] = "/tmp/fab-key.XXXXXX", path[64], json[512];
        fab_fabric *f = NULL;
        au_error err = {};
        FILE *fp;

        if (!mkdtemp(dir)) {
                skip(2, "mkdtemp");
                return;
        }
        snprintf(path, sizeof(path), "%s/key", dir);
        fp = fopen(path, "we");
        fputs("sk-secret-do-not-log\n", fp);
        fclose(fp);
        chmod(path, 0644);
        snprintf(json, sizeof(json), PROVIDER(",\"api_key_file\":\"%s\""), path);
        int r = fab_new(json, strlen(json), NULL, &f, &err);
        ok(r == -EINVAL && strstr(err.msg, "readable by everyone") && !strstr(err.msg, "sk-secret"),
           "a world-readable key file is refused, the key not shown: %s", err.msg);
        chmod(path, 0600);
        au_error_clear(&err);
        r = fab_new(json, strlen(json), NULL, &f, &err);
        ok(r == 0, "a private key file loads (%s)", err.msg);
        fab_free(f);
        unlink(path);
        rmdir(dir);
}

static int any_secret(void *userdata, const char *name, char **ret) {
        (void) userdata;
        return (*ret = strdup(name)) ? 0 : -ENOMEM;
}

static void test_example(void) {
        const char *top = getenv("top_srcdir");
        char path[4096];
        fab_options opts = {.secret = any_secret};
        fab_fabric *f = NULL;
        au_error err = {};

        snprintf(path, sizeof(path), "%s/examples/fabric.json", top ? top : ".");
        int r = fab_new_from_file(path, &opts, &f, &err);
        ok(r == 0 && fab_chain_len(f, FAB_ROLE_EXECUTOR) == 3 &&
                   strcmp(fab_chain_provider(f, FAB_ROLE_EXECUTOR, 2), "ollama") == 0,
           "examples/fabric.json loads (%s)", err.msg);
        fab_free(f);
}

int main(void) {
        test_classify();
        test_retry_after();
        test_cost();
        test_schema();
        test_config();
        test_key_file();
        test_example();
        return done_testing();
}
