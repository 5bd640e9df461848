/* SPDX-License-Identifier: MIT */
/*
 * fabric/'s calls against the provider stand-in (tests/fabric/provider-standin.py)
 * on a free loopback port: both wire formats, streamed and whole; retries and
 * the three Retry-After forms; no retry on quota; cooldown shared across
 * roles; fallback order; budgets before and after; each streaming failure;
 * tool calls and their refusals in both formats; metrics.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/json.h"
#include "fabric/fabric.h"
#include "tests/fabric/standin.h"
#include "tests/tap.h"

#define KEY_A "sk-test-a-0123456789"
#define KEY_B "sk-ant-test-b-9876543210"

static char keyfile[128];
static au_metrics *metrics;

static int secret(void *userdata, const char *name, char **ret) {
        (void) userdata;
        if (strcmp(name, "anthropic-key") != 0)
                return -ENOENT;
        *ret = strdup(KEY_B);
        return *ret ? 0 : -ENOMEM;
}

/*
 * a: OpenAI, b: Anthropic, c: OpenAI with a short first-byte deadline. Backoff
 * is 10 ms, so a wait of a second comes only from honouring Retry-After.
 */
static fab_fabric *new_fabric(void) {
        char json[4096];
        fab_options opts = {.secret = secret, .metrics = metrics};
        fab_fabric *f = NULL;
        au_error err = {};

        snprintf(
                json, sizeof(json),
                "{\"providers\":{"
                "\"a\":{\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/a\",\"api_key_file\":\"%s\","
                "\"max_retries\":2,\"cooldown_ms\":600000,\"first_byte_timeout_ms\":30000,"
                "\"models\":{\"m1\":{\"input\":1,\"output\":4,\"cached\":0.5}}},"
                "\"b\":{\"kind\":\"anthropic\",\"base_url\":\"http://127.0.0.1:%d/"
                "b\",\"api_key\":\"anthropic-key\","
                "\"max_retries\":2,\"cooldown_ms\":600000,\"first_byte_timeout_ms\":30000,"
                "\"models\":{\"claude-x\":{\"input\":3,\"output\":15,\"cached\":0.3,\"cache_write\":3.75}}},"
                "\"c\":{\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/c\",\"max_retries\":1,"
                "\"first_byte_timeout_ms\":1500,\"models\":{\"local\":{\"input\":0,\"output\":0}}}},"
                "\"roles\":{\"executor\":[{\"provider\":\"a\",\"model\":\"m1\"},{\"provider\":\"b\","
                "\"model\":"
                "\"claude-x\"}],"
                "\"planner\":[{\"provider\":\"a\",\"model\":\"m1\"},{\"provider\":\"c\",\"model\":\"local\"}"
                "],"
                "\"verifier\":[{\"provider\":\"b\",\"model\":\"claude-x\"},{\"provider\":\"a\",\"model\":"
                "\"m1\"}],"
                "\"auditor\":[{\"provider\":\"b\",\"model\":\"claude-x\"}],"
                "\"synthesizer\":[{\"provider\":\"c\",\"model\":\"local\"}]},"
                "\"retry\":{\"backoff_base_ms\":10,\"backoff_max_ms\":50}}",
                standin_port, keyfile, standin_port, standin_port);
        if (fab_new(json, strlen(json), &opts, &f, &err) < 0) {
                printf("Bail out! fab_new: %s\n", err.msg);
                exit(1);
        }
        return f;
}

static const fab_msg hello[] = {{.role = FAB_MSG_USER, .text = "Hello!"}};

static fab_request request(fab_role role, bool stream) {
        return (fab_request){.role = role,
                             .system = "Be terse.",
                             .msgs = hello,
                             .n_msgs = 1,
                             .max_tokens = 64,
                             .stream = stream};
}

/* A string value, or "" when v is not one. */
static const char *str_of(yajl_val v) {
        return YAJL_IS_STRING(v) ? v->u.string : "";
}

/* The number of logged requests to prefix, and the i-th entry of the log. */
static size_t count(yajl_val log, const char *prefix) {
        size_t n = 0;
        for (size_t i = 0; i < log->u.array.len; i++)
                if (strcmp(str_of(au_json_get(log->u.array.values[i], "prefix")), prefix) == 0)
                        n++;
        return n;
}

static double gap(yajl_val log, size_t i, size_t j) {
        return YAJL_GET_DOUBLE(au_json_get(log->u.array.values[j], "t")) -
               YAJL_GET_DOUBLE(au_json_get(log->u.array.values[i], "t"));
}

static yajl_val body_of(yajl_val log, size_t i) {
        return au_json_get(log->u.array.values[i], "body");
}

static const char *header_of(yajl_val log, size_t i, const char *h) {
        return str_of(au_json_get(au_json_get(log->u.array.values[i], "headers"), h));
}

static void test_openai_whole(void) {
        _cleanup_fab_ fab_fabric *f = new_fabric();
        fab_result r;
        fab_request q = request(FAB_ROLE_EXECUTOR, false);

        standin_script(
                "{\"a\":[{\"reply\":\"text\",\"text\":\"Hello! How can I assist you today?\",\"usage\":{"
                "\"prompt_tokens\":1000,\"completion_tokens\":100,\"prompt_tokens_details\":{\"cached_"
                "tokens\":"
                "400}}}]}");
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK, "OpenAI whole reply: %s %s",
           fab_outcome_name(r.outcome), r.error);
        ok(r.text && strcmp(r.text, "Hello! How can I assist you today?") == 0 &&
                   strcmp(r.stop_reason, "stop") == 0,
           "its text and finish_reason");
        ok(strcmp(r.provider, "a") == 0 && r.attempts == 1 && r.fallbacks == 0, "answered by a at once");
        ok(r.usage.input == 600 && r.usage.cached == 400 && r.usage.output == 100,
           "usage: 600 + 400 cached + 100");
        ok(fabs(r.cost_usd - (600 * 1 + 400 * 0.5 + 100 * 4) / 1e6) < 1e-12,
           "cost prices cached tokens once, at the cached price: $%.7f", r.cost_usd);
        _cleanup_json_ yajl_val log = standin_log();
        yajl_val b = body_of(log, 0);
        ok(strcmp(str_of(au_json_get(log->u.array.values[0], "path")), "/v1/chat/completions") == 0 &&
                   strcmp(str_of(au_json_get(b, "model")), "m1") == 0 &&
                   YAJL_GET_INTEGER(au_json_get(b, "max_completion_tokens")) == 64 &&
                   strcmp(str_of(au_json_get(au_json_get(b, "messages")->u.array.values[0], "role")),
                          "system") == 0,
           "the request is a chat completion with the system message first");
        ok(header_of(log, 0, "authorization") &&
                   strcmp(header_of(log, 0, "authorization"), "Bearer " KEY_A) == 0,
           "the key from api_key_file is sent as a bearer token");
        fab_result_done(&r);
}

static void test_anthropic_whole(void) {
        _cleanup_fab_ fab_fabric *f = new_fabric();
        fab_result r;
        fab_request q = request(FAB_ROLE_AUDITOR, false);

        standin_script("{\"b\":[{\"reply\":\"text\",\"text\":\"Hello!\",\"usage\":{\"input_tokens\":100,"
                       "\"cache_creation_input_tokens\":200,\"cache_read_input_tokens\":300,\"output_"
                       "tokens\":50}}]}");
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK && strcmp(r.text, "Hello!") == 0 &&
                   strcmp(r.stop_reason, "end_turn") == 0,
           "Anthropic whole reply: %s %s", fab_outcome_name(r.outcome), r.error);
        ok(r.usage.input == 100 && r.usage.cache_write == 200 && r.usage.cached == 300 &&
                   r.usage.output == 50,
           "usage keeps the cache tokens apart from input_tokens");
        ok(fabs(r.cost_usd - (100 * 3 + 200 * 3.75 + 300 * 0.3 + 50 * 15) / 1e6) < 1e-12,
           "cost prices each component: $%.7f", r.cost_usd);
        _cleanup_json_ yajl_val log = standin_log();
        yajl_val b = body_of(log, 0);
        ok(strcmp(str_of(au_json_get(b, "system")), "Be terse.") == 0 &&
                   YAJL_GET_INTEGER(au_json_get(b, "max_tokens")) == 64,
           "system is top-level and max_tokens is set");
        ok(header_of(log, 0, "x-api-key") && strcmp(header_of(log, 0, "x-api-key"), KEY_B) == 0 &&
                   strcmp(header_of(log, 0, "anthropic-version"), "2023-06-01") == 0 &&
                   !*header_of(log, 0, "authorization"),
           "the secret's key goes in x-api-key with anthropic-version");
        fab_result_done(&r);
}

static void test_retry_5xx(void) {
        _cleanup_fab_ fab_fabric *f = new_fabric();
        fab_result r;
        fab_request q = request(FAB_ROLE_EXECUTOR, false);

        standin_script("{\"a\":[{\"reply\":\"error\",\"status\":500,\"type\":\"server_error\"},"
                       "{\"reply\":\"error\",\"status\":503,\"type\":\"service_unavailable_error\",\"code\":"
                       "\"server_is_overloaded\"},{\"reply\":\"text\",\"text\":\"third time\"}]}");
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK && strcmp(r.text, "third time") == 0,
           "500, 503, then an answer: %s", r.error);
        ok(r.attempts == 3 && r.fallbacks == 0 && strcmp(r.provider, "a") == 0 &&
                   fab_cooldown_until(f, "a") == 0,
           "retried on the same entry, no fallback, no cooldown (attempts %u)", r.attempts);
        fab_result_done(&r);
}

static void retry_after_case(const char *headers, double min_gap, const char *what) {
        _cleanup_fab_ fab_fabric *f = new_fabric();
        fab_result r;
        fab_request q = request(FAB_ROLE_EXECUTOR, false);
        char script[512];

        snprintf(script, sizeof(script),
                 "{\"a\":[{\"reply\":\"error\",\"status\":429,\"type\":\"tokens\",\"code\":\"rate_limit_"
                 "exceeded\","
                 "\"message\":\"Rate limit reached\",\"headers\":%s},{\"reply\":\"text\",\"text\":\"ok\"}]}",
                 headers);
        standin_script(script);
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK && r.attempts == 2 &&
                   strcmp(r.provider, "a") == 0,
           "429 with %s is retried on the same provider: %s", what, r.error);
        _cleanup_json_ yajl_val log = standin_log();
        double g = log->u.array.len == 2 ? gap(log, 0, 1) : 0;
        ok(g >= min_gap, "the retry waited as %s asked: %.3f s >= %.3f s", what, g, min_gap);
        fab_result_done(&r);
}

static void test_retry_after(void) {
        char date[128], hdr[256];
        time_t t;
        struct tm tm;

        retry_after_case("{\"Retry-After\":\"1\"}", 0.95, "Retry-After: 1");
        retry_after_case("{\"retry-after-ms\":\"600\",\"Retry-After\":\"0\"}", 0.58, "retry-after-ms: 600");
        /* the date has whole seconds: 3 s ahead is at least 2 s after this second began */
        t = time(NULL) + 3;
        gmtime_r(&t, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        snprintf(hdr, sizeof(hdr), "{\"Retry-After\":\"%s\"}", date);
        retry_after_case(hdr, 1.9, "Retry-After as an HTTP date");
}

static void test_quota_no_retry(void) {
        _cleanup_fab_ fab_fabric *f = new_fabric();
        fab_result r;
        fab_request q = request(FAB_ROLE_EXECUTOR, false);

        standin_script(
                "{\"a\":[{\"reply\":\"error\",\"status\":429,\"type\":\"insufficient_quota\",\"code\":"
                "\"insufficient_quota\",\"message\":\"You exceeded your current quota\",\"headers\":{"
                "\"Retry-After\":\"0\"}},{\"reply\":\"text\",\"text\":\"must not be reached\"}],"
                "\"b\":[{\"reply\":\"text\",\"text\":\"from b\"}]}");
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK && strcmp(r.text, "from b") == 0,
           "insufficient_quota falls back: %s", r.error);
        _cleanup_json_ yajl_val log = standin_log();
        ok(count(log, "a") == 1 && count(log, "b") == 1 && r.fallbacks == 1,
           "a was asked once (no retry), then b (a: %zu, b: %zu)", count(log, "a"), count(log, "b"));
        ok(fab_cooldown_until(f, "a") > 0, "a is cooling down");
        fab_result_done(&r);

        /* Anthropic's spend limit, under a 429 that would otherwise be retried */
        _cleanup_fab_ fab_fabric *g = new_fabric();
        q = request(FAB_ROLE_AUDITOR, false);
        standin_script(
                "{\"b\":[{\"reply\":\"error\",\"status\":429,\"type\":\"rate_limit_error\",\"details\":{"
                "\"error_code\":\"enforced_spend_limit_reached\"}},{\"reply\":\"text\",\"text\":\"no\"}]}");
        ok(fab_call(g, &q, &r) == 0 && r.outcome == FAB_FAILED && r.attempts == 1 &&
                   r.last_error == FAB_ERR_QUOTA,
           "enforced_spend_limit_reached is not retried: %s", r.error);
        fab_result_done(&r);
}

static void test_overloaded_529(void) {
        _cleanup_fab_ fab_fabric *f = new_fabric();
        fab_result r;
        fab_request q = request(FAB_ROLE_AUDITOR, false);

        standin_script(
                "{\"b\":[{\"reply\":\"error\",\"status\":529,\"type\":\"overloaded_error\",\"message\":"
                "\"Overloaded\",\"headers\":{\"x-should-retry\":\"true\"}},{\"reply\":\"text\",\"text\":"
                "\"ok\"}]}");
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK && r.attempts == 2,
           "529 overloaded is retried: %s", r.error);
        fab_result_done(&r);
}

static void test_fallback_and_shared_cooldown(void) {
        _cleanup_fab_ fab_fabric *f = new_fabric();
        fab_result r;
        fab_request q = request(FAB_ROLE_EXECUTOR, false);

        standin_script(
                "{\"a\":[{\"reply\":\"error\",\"status\":500},{\"reply\":\"error\",\"status\":502},"
                "{\"reply\":\"error\",\"status\":500},{\"reply\":\"text\",\"text\":\"a is back\"}],"
                "\"b\":[{\"reply\":\"text\",\"text\":\"from b\"}],\"c\":[{\"reply\":\"text\",\"text\":"
                "\"from c\"}]}");
        int rc = fab_call(f, &q, &r);
        ok(rc == 0 && r.outcome == FAB_OK && strcmp(r.provider, "b") == 0 && r.fallbacks == 1 &&
                   r.attempts == 4,
           "a's retries spent (1 + 2), then b answers (attempts %u, fallbacks %u)", r.attempts, r.fallbacks);
        _cleanup_json_ yajl_val log = standin_log();
        ok(log->u.array.len == 4 && count(log, "a") == 3 &&
                   strcmp(str_of(au_json_get(log->u.array.values[3], "prefix")), "b") == 0,
           "the chain was walked in order: a, a, a, b");
        ok(fab_cooldown_until(f, "a") > au_now_ms(), "a is cooling down");
        fab_result_done(&r);

        /* the planner's chain starts with a too: the cooldown is the provider's, not the role's */
        q = request(FAB_ROLE_PLANNER, false);
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK && strcmp(r.provider, "c") == 0,
           "another role skips the cooling provider: %s answered", r.provider);
        yajl_tree_free(log);
        log = standin_log();
        ok(count(log, "a") == 3 && count(log, "c") == 1, "a was not asked again (a: %zu)", count(log, "a"));
        fab_result_done(&r);

        char *text = au_metrics_render(metrics, NULL);
        ok(text && strstr(text, "autoos_fabric_cooldown{provider=\"a\"} 1") &&
                   strstr(text, "autoos_fabric_errors_total{target=\"a/m1/server\"}") &&
                   strstr(text, "autoos_fabric_requests_total{target=\"b/claude-x\"}"),
           "metrics show a's cooldown, its errors by kind and b's requests");
        free(text);

        /* an operator clears it */
        ok(fab_cooldown_clear(f, "a") == 0 && fab_call(f, &q, &r) == 0 && strcmp(r.provider, "a") == 0,
           "once cleared, a answers again");
        fab_result_done(&r);
}

static void test_all_fail_and_rejected(void) {
        _cleanup_fab_ fab_fabric *f = new_fabric();
        fab_result r;
        fab_request q = request(FAB_ROLE_VERIFIER, false);

        standin_script(
                "{\"b\":[{\"reply\":\"error\",\"status\":401,\"type\":\"authentication_error\",\"message\":"
                "\"invalid x-api-key\"}],\"a\":[{\"reply\":\"error\",\"status\":404,\"type\":"
                "\"invalid_request_error\",\"code\":\"model_not_found\",\"message\":\"no such model\"}]}");
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_FAILED && r.attempts == 2 && r.fallbacks == 1,
           "401 then 404: each tried once, the role fails: %s", r.error);
        ok(!strstr(r.error, KEY_A) && !strstr(r.error, KEY_B) && strstr(r.error, "no such model"),
           "the error names the failure and no key");
        fab_result_done(&r);
        q = request(FAB_ROLE_VERIFIER, false);
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_UNAVAILABLE, "with both cooling: unavailable: %s",
           r.error);
        fab_result_done(&r);

        _cleanup_fab_ fab_fabric *g = new_fabric();
        q = request(FAB_ROLE_EXECUTOR, false);
        standin_script(
                "{\"a\":[{\"reply\":\"error\",\"status\":400,\"type\":\"invalid_request_error\",\"message\":"
                "\"messages: bad\"}],\"b\":[{\"reply\":\"text\",\"text\":\"no\"}]}");
        ok(fab_call(g, &q, &r) == 0 && r.outcome == FAB_REJECTED && r.attempts == 1 && r.fallbacks == 0,
           "400 is the request's fault: no retry, no fallback: %s", r.error);
        fab_result_done(&r);

        q = request(FAB_ROLE_VERIFIER, false);
        q.exclude_provider = "b";
        standin_script("{\"a\":[{\"reply\":\"text\",\"text\":\"verdict\"}]}");
        ok(fab_call(g, &q, &r) == 0 && r.outcome == FAB_OK && strcmp(r.provider, "a") == 0,
           "an excluded provider is skipped (a verifier differs from the checked)");
        fab_result_done(&r);
}

static void test_budgets(void) {
        _cleanup_fab_ fab_fabric *f = new_fabric();
        fab_result r;
        fab_request q = request(FAB_ROLE_EXECUTOR, false);

        q.workflow = "wf-1";
        /* 64 output tokens at $4/M alone are $0.000256 */
        ok(fab_budget_set(f, FAB_SCOPE_WORKFLOW, "wf-1", 0.0001) == 0, "a workflow budget of $0.0001");
        standin_script("{\"a\":[{\"reply\":\"text\",\"text\":\"too dear\"}]}");
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_BUDGET && strstr(r.error, "wf-1") &&
                   strstr(r.error, "estimate"),
           "the estimate is over budget: %s", r.error);
        _cleanup_json_ yajl_val log = standin_log();
        ok(log->u.array.len == 0, "and no request was made");
        fab_result_done(&r);

        /* the real cost after: a call that fits its estimate but whose usage spends the rest */
        fab_budget_set(f, FAB_SCOPE_WORKFLOW, "wf-1", 0.01);
        fab_budget_set(f, FAB_SCOPE_KEY, "key-7", 1.0);
        q.key = "key-7";
        standin_script("{\"a\":[{\"reply\":\"text\",\"text\":\"long\",\"usage\":{\"prompt_tokens\":20000,"
                       "\"completion_tokens\":64}},{\"reply\":\"text\",\"text\":\"never\"}]}");
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK, "a call within the estimate goes");
        double want = (20000 * 1 + 64 * 4) / 1e6;
        ok(fabs(fab_budget_spent(f, FAB_SCOPE_WORKFLOW, "wf-1") - want) < 1e-12 &&
                   fabs(fab_budget_spent(f, FAB_SCOPE_KEY, "key-7") - want) < 1e-12,
           "the real cost ($%.6f) is charged to the workflow and the key", want);
        fab_result_done(&r);
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_BUDGET && strstr(r.error, "spent its budget"),
           "a spent budget stops the next call: %s", r.error);
        yajl_tree_free(log);
        log = standin_log();
        ok(log->u.array.len == 1, "without a request");
        fab_result_done(&r);

        /* the key's budget binds another workflow too */
        fab_budget_set(f, FAB_SCOPE_KEY, "key-7", want);
        q.workflow = "wf-2";
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_BUDGET && strstr(r.error, "key key-7"),
           "the key's budget holds across workflows: %s", r.error);
        fab_result_done(&r);
}

static void test_rate_limit(void) {
        char json[1024];
        fab_fabric *f = NULL;
        au_error err = {};
        fab_result r;

        snprintf(json, sizeof(json),
                 "{\"providers\":{\"a\":{\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/a\","
                 "\"rate_limits\":{\"requests_per_minute\":1},\"models\":{\"m1\":{\"input\":1,\"output\":4}}"
                 "},"
                 "\"b\":{\"kind\":\"anthropic\",\"base_url\":\"http://127.0.0.1:%d/b\",\"models\":{"
                 "\"claude-x\":{\"input\":3,\"output\":15}}}},\"roles\":{\"executor\":[{\"provider\":\"a\","
                 "\"model\":\"m1\"},{\"provider\":\"b\",\"model\":\"claude-x\"}]}}",
                 standin_port, standin_port);
        if (fab_new(json, strlen(json), NULL, &f, &err) < 0) {
                ok(0, "fab_new: %s", err.msg);
                return;
        }
        fab_request q = request(FAB_ROLE_EXECUTOR, false);
        standin_script(
                "{\"a\":[{\"reply\":\"text\",\"text\":\"one\"},{\"reply\":\"text\",\"text\":\"two\"}],"
                "\"b\":[{\"reply\":\"text\",\"text\":\"from b\"}]}");
        int r1 = fab_call(f, &q, &r);
        ok(r1 == 0 && r.outcome == FAB_OK && strcmp(r.provider, "a") == 0,
           "the first request of the minute goes to a");
        fab_result_done(&r);
        int r2 = fab_call(f, &q, &r);
        ok(r2 == 0 && r.outcome == FAB_OK && strcmp(r.provider, "b") == 0,
           "a's requests_per_minute of 1 sends the second to b (%s)", r.provider);
        _cleanup_json_ yajl_val log = standin_log();
        ok(count(log, "a") == 1 && count(log, "b") == 1, "a was not asked twice in the minute");
        fab_result_done(&r);
        fab_free(f);
}

static int collect(void *userdata, const char *text, size_t len) {
        return au_buf_append(userdata, text, len) < 0;
}

static void test_streams(void) {
        fab_result r;
        fab_request q;
        _cleanup_buf_ au_buf got = AU_BUF_INIT(0);

        {
                _cleanup_fab_ fab_fabric *f = new_fabric();
                q = request(FAB_ROLE_EXECUTOR, true);
                q.on_delta = collect;
                q.delta_userdata = &got;
                standin_script("{\"a\":[{\"reply\":\"text\",\"text\":\"Hello, streaming world\",\"usage\":{"
                               "\"prompt_tokens\":30,\"completion_tokens\":7,\"prompt_tokens_details\":{"
                               "\"cached_tokens\":10}}}]}");
                ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK &&
                           strcmp(r.text, "Hello, streaming world") == 0,
                   "an OpenAI stream is read to [DONE]: %s", r.error);
                ok(got.p && strcmp(got.p, "Hello, streaming world") == 0,
                   "each delta reached the caller in order");
                ok(r.usage.input == 20 && r.usage.cached == 10 && r.usage.output == 7,
                   "usage from the include_usage chunk");
                _cleanup_json_ yajl_val log = standin_log();
                yajl_val so = au_json_get(body_of(log, 0), "stream_options");
                ok(YAJL_IS_TRUE(au_json_get(body_of(log, 0), "stream")) &&
                           YAJL_IS_TRUE(au_json_get(so, "include_usage")),
                   "the request asks for stream_options.include_usage");
                fab_result_done(&r);
        }
        {
                _cleanup_fab_ fab_fabric *f = new_fabric();
                q = request(FAB_ROLE_AUDITOR, true);
                standin_script("{\"b\":[{\"reply\":\"text\",\"text\":\"Hi from "
                               "claude\",\"usage\":{\"input_tokens\":"
                               "5,\"cache_read_input_tokens\":7,\"output_tokens\":9}}]}");
                ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK &&
                           strcmp(r.text, "Hi from claude") == 0 && strcmp(r.stop_reason, "end_turn") == 0,
                   "an Anthropic stream is read to message_stop: %s", r.error);
                ok(r.usage.input == 5 && r.usage.cached == 7 && r.usage.output == 9,
                   "usage from message_start and message_delta");
                fab_result_done(&r);
        }
        {
                _cleanup_fab_ fab_fabric *f = new_fabric();
                q = request(FAB_ROLE_EXECUTOR, true);
                standin_script("{\"a\":[{\"reply\":\"cut\",\"text\":\"\"},{\"reply\":\"text\",\"text\":"
                               "\"whole\"}]}");
                ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK && r.attempts == 2 &&
                           strcmp(r.text, "whole") == 0,
                   "a stream cut before its first byte is retried: %s", r.error);
                fab_result_done(&r);
        }
        {
                _cleanup_fab_ fab_fabric *f = new_fabric();
                q = request(FAB_ROLE_EXECUTOR, true);
                standin_script(
                        "{\"a\":[{\"reply\":\"cut\",\"text\":\"half an ans\"},{\"reply\":\"text\",\"text\":"
                        "\"no\"}],\"b\":[{\"reply\":\"text\",\"text\":\"no\"}]}");
                ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_STREAM_BROKE && r.attempts == 1 &&
                           r.last_error == FAB_ERR_STREAM_CUT && strstr(r.error, "[DONE]"),
                   "an OpenAI stream without [DONE] after content fails, unretried: %s", r.error);
                _cleanup_json_ yajl_val log = standin_log();
                ok(count(log, "b") == 0, "and does not fall back");
                fab_result_done(&r);
        }
        {
                _cleanup_fab_ fab_fabric *f = new_fabric();
                q = request(FAB_ROLE_AUDITOR, true);
                standin_script("{\"b\":[{\"reply\":\"cut\",\"text\":\"partial\"}]}");
                ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_STREAM_BROKE &&
                           strstr(r.error, "message_stop"),
                   "an Anthropic stream without message_stop fails: %s", r.error);
                fab_result_done(&r);
        }
        {
                _cleanup_fab_ fab_fabric *f = new_fabric();
                q = request(FAB_ROLE_AUDITOR, true);
                standin_script(
                        "{\"b\":[{\"reply\":\"error_event\",\"text\":\"\",\"type\":\"overloaded_error\"},"
                        "{\"reply\":\"text\",\"text\":\"after\"}]}");
                ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK && r.attempts == 2 &&
                           strcmp(r.text, "after") == 0,
                   "an error event after HTTP 200, before content, is retried: %s", r.error);
                fab_result_done(&r);
        }
        {
                _cleanup_fab_ fab_fabric *f = new_fabric();
                q = request(FAB_ROLE_AUDITOR, true);
                standin_script("{\"b\":[{\"reply\":\"error_event\",\"text\":\"some words\",\"type\":"
                               "\"overloaded_error\"},{\"reply\":\"text\",\"text\":\"no\"}]}");
                ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_STREAM_BROKE && r.attempts == 1 &&
                           r.last_error == FAB_ERR_OVERLOADED,
                   "an error event after content is a failure: %s", r.error);
                ok(r.text && strcmp(r.text, "some words") == 0, "the partial text is kept for the record");
                fab_result_done(&r);
        }
        {
                _cleanup_fab_ fab_fabric *f = new_fabric();
                q = request(FAB_ROLE_EXECUTOR, true);
                standin_script(
                        "{\"a\":[{\"reply\":\"error_event\",\"text\":\"\",\"type\":\"server_error\","
                        "\"message\":\"The server had an error\"},{\"reply\":\"text\",\"text\":\"ok\"}]}");
                ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK && r.attempts == 2,
                   "an OpenAI-style error data event after HTTP 200 is a failure, retried before content: "
                   "%s",
                   r.error);
                fab_result_done(&r);
        }
        {
                _cleanup_fab_ fab_fabric *f = new_fabric();
                q = request(FAB_ROLE_SYNTHESIZER, true);
                /* c waits 1.5 s for a first byte */
                standin_script("{\"c\":[{\"reply\":\"text\",\"text\":\"slow\",\"delay_ms\":9000},"
                               "{\"reply\":\"text\",\"text\":\"quick\"}]}");
                uint64_t t0 = au_now_ms();
                ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK && r.attempts == 2 &&
                           strcmp(r.text, "quick") == 0,
                   "a slow first byte times out and is retried: %s", r.error);
                ok(au_now_ms() - t0 < 8500, "without waiting for the slow reply (%llu ms)",
                   (unsigned long long) (au_now_ms() - t0));
                fab_result_done(&r);
        }
}

static const char *read_schema =
        "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\",\"maxLength\":"
        "32}},\"required\":[\"path\"],\"additionalProperties\":false}";

static void tools_case(fab_role role, bool stream, const char *prefix) {
        _cleanup_fab_ fab_fabric *f = new_fabric();
        _cleanup_json_ yajl_val schema = NULL;
        au_error err = {};
        fab_result r;
        char script[1024], why[2][256];
        const char *fmt = stream ? "stream" : "whole";

        au_json_parse(read_schema, strlen(read_schema), 4096, &schema, &err);
        fab_tool tools[] = {
                {.name = "read_file", .description = "Read a file in the sandbox", .schema = schema}};
        fab_request q = request(role, stream);
        q.tools = tools;
        q.n_tools = 1;
        snprintf(script, sizeof(script),
                 "{\"%s\":[{\"reply\":\"text\",\"text\":\"\",\"tool_calls\":["
                 "{\"id\":\"call_1\",\"name\":\"read_file\",\"arguments\":\"{\\\"path\\\":\\\"/etc/passwd/"
                 "../../../../"
                 "../../../../x\\\"}\"},"
                 "{\"id\":\"call_2\",\"name\":\"delete_everything\",\"arguments\":\"{}\"},"
                 "{\"id\":\"call_3\",\"name\":\"read_file\",\"arguments\":\"{\\\"path\\\":\\\"notes.txt\\\"}"
                 "\"}]},"
                 "{\"reply\":\"text\",\"text\":\"done\"}]}",
                 prefix);
        standin_script(script);
        ok(fab_call(f, &q, &r) == 0 && r.outcome == FAB_OK && r.n_calls == 3,
           "%s %s: three tool calls come back: %s", prefix, fmt, r.error);
        if (r.n_calls != 3) {
                skip(5, "no tool calls");
                fab_result_done(&r);
                return;
        }
        ok(strcmp(r.calls[0].id, "call_1") == 0 && strcmp(r.calls[2].name, "read_file") == 0 &&
                   strcmp(r.calls[2].arguments, "{\"path\":\"notes.txt\"}") == 0,
           "ids, names and arguments intact (%s)", r.calls[2].arguments);
        int r1 = fab_tool_check_call(tools, 1, &r.calls[0], NULL, why[0], sizeof(why[0]));
        int r2 = fab_tool_check_call(tools, 1, &r.calls[1], NULL, why[1], sizeof(why[1]));
        int r3 = fab_tool_check_call(tools, 1, &r.calls[2], NULL, NULL, 0);
        ok(r1 == -EINVAL && r2 == -ENOENT && r3 == 0,
           "bad arguments and an unknown tool are refused: %s; %s", why[0], why[1]);

        /* the refusals are told to the model */
        fab_msg conv[] = {
                {.role = FAB_MSG_USER, .text = "Hello!"},
                {.role = FAB_MSG_ASSISTANT, .calls = r.calls, .n_calls = r.n_calls},
                {.role = FAB_MSG_TOOL, .tool_call_id = "call_1", .text = why[0], .is_error = true},
                {.role = FAB_MSG_TOOL, .tool_call_id = "call_2", .text = why[1], .is_error = true},
                {.role = FAB_MSG_TOOL, .tool_call_id = "call_3", .text = "file contents"},
        };
        q.msgs = conv;
        q.n_msgs = ELEMENTSOF(conv);
        fab_result r2nd;
        ok(fab_call(f, &q, &r2nd) == 0 && r2nd.outcome == FAB_OK && strcmp(r2nd.text, "done") == 0,
           "the conversation goes on with the tool results");
        _cleanup_json_ yajl_val log = standin_log();
        yajl_val msgs = au_json_get(body_of(log, 1), "messages");
        if (role == FAB_ROLE_EXECUTOR) { /* OpenAI */
                yajl_val t1 = msgs->u.array.values[3];
                ok(strcmp(str_of(au_json_get(t1, "role")), "tool") == 0 &&
                           strcmp(str_of(au_json_get(t1, "tool_call_id")), "call_1") == 0 &&
                           strncmp(str_of(au_json_get(t1, "content")), "error: ", 7) == 0,
                   "OpenAI: each refusal is a tool message for its call id, marked as an error");
                yajl_val tc = au_json_get(msgs->u.array.values[2], "tool_calls");
                ok(YAJL_IS_ARRAY(tc) && tc->u.array.len == 3, "the assistant's tool_calls are echoed");
        } else {
                yajl_val u = msgs->u.array.values[2], c = au_json_get(u, "content");
                ok(strcmp(str_of(au_json_get(u, "role")), "user") == 0 && YAJL_IS_ARRAY(c) &&
                           c->u.array.len == 3 &&
                           strcmp(str_of(au_json_get(c->u.array.values[1], "tool_use_id")), "call_2") == 0 &&
                           YAJL_IS_TRUE(au_json_get(c->u.array.values[1], "is_error")) &&
                           !au_json_get(c->u.array.values[2], "is_error"),
                   "Anthropic: the results are tool_result blocks in one user message, refusals is_error");
                yajl_val a = au_json_get(msgs->u.array.values[1], "content");
                ok(YAJL_IS_ARRAY(a) && a->u.array.len == 3 &&
                           YAJL_IS_OBJECT(au_json_get(a->u.array.values[2], "input")),
                   "the assistant's tool_use blocks are echoed with object input");
        }
        fab_result_done(&r);
        fab_result_done(&r2nd);
}

int main(void) {
        char dir[] = "/tmp/fab-test.XXXXXX";
        FILE *fp;

        curl_global_init(CURL_GLOBAL_DEFAULT);
        standin_start();
        if (!mkdtemp(dir))
                return 1;
        snprintf(keyfile, sizeof(keyfile), "%s/key", dir);
        fp = fopen(keyfile, "we");
        fputs(KEY_A "\n", fp);
        fclose(fp);
        chmod(keyfile, 0600);
        au_metrics_new(&metrics);

        test_openai_whole();
        test_anthropic_whole();
        test_retry_5xx();
        test_retry_after();
        test_quota_no_retry();
        test_overloaded_529();
        test_fallback_and_shared_cooldown();
        test_all_fail_and_rejected();
        test_budgets();
        test_rate_limit();
        test_streams();
        tools_case(FAB_ROLE_EXECUTOR, false, "a");
        tools_case(FAB_ROLE_EXECUTOR, true, "a");
        tools_case(FAB_ROLE_AUDITOR, false, "b");
        tools_case(FAB_ROLE_AUDITOR, true, "b");

        unlink(keyfile);
        rmdir(dir);
        au_metrics_free(metrics);
        standin_stop();
        curl_global_cleanup();
        return done_testing();
}
