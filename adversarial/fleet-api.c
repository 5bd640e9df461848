/* SPDX-License-Identifier: MIT */
/* The "coordinator" group: hostile requests to the coordinator's API. */
#include "adversarial/fleet-internal.h"

/* ---- coordinator attacks --------------------------------------------------------------------- */

static void simple_workflow(char *out, size_t size, const char *name) {
        snprintf(out, size,
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/bin/true\"]}}]}", name);
}

static void atk_no_key(fleet *f, adv_row *row) {
        char name[96], wf[256], obs[256] = "", bad[256] = "";
        api_reply r;

        snprintf(name, sizeof(name), "%s-no-key", f->prefix);
        simple_workflow(wf, sizeof(wf), name);
        fleet_http(f, &(http_req){.method = "GET", .path = "/v1/workflows"}, &r);
        if (fleet_check_error("GET", &r, 401, "unauthorized", NULL, obs, sizeof(obs), bad, sizeof(bad)) &&
            !r.www_authenticate)
                fleet_add(bad, sizeof(bad), "GET: 401 without WWW-Authenticate");
        api_reply_done(&r);
        fleet_expect_error(
                f, "POST",
                &(http_req){.method = "POST", .path = "/v1/workflows", .body = wf, .len = strlen(wf)}, 401,
                "unauthorized", NULL, obs, sizeof(obs), bad, sizeof(bad));
        fleet_check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
}

static void atk_wrong_key(fleet *f, adv_row *row) {
        char name[96], wf[256], obs[256] = "", bad[256] = "", fake[80], longer[1200], huge_key[9000],
                                suffixed[1200];

        snprintf(name, sizeof(name), "%s-wrong-key", f->prefix);
        simple_workflow(wf, sizeof(wf), name);
        snprintf(fake, sizeof(fake), "aok_%016llx%016llx%016llx%016llx", (unsigned long long) au_now_ms(),
                 (unsigned long long) getpid(), 0x5eed5eed5eed5eedull, 0x0123456789abcdefull);
        snprintf(suffixed, sizeof(suffixed), "%.1100sx", f->t->api_key);
        snprintf(longer, sizeof(longer), "Basic %s", "YWRtaW46YWRtaW4=");
        memset(huge_key, 'k', sizeof(huge_key) - 1);
        huge_key[sizeof(huge_key) - 1] = '\0';
        const struct {
                const char *label, *key, *auth;
        } v[] = {
                {"unknown key", fake, NULL},
                {"key+1 char", suffixed, NULL},
                {"Basic auth", NULL, longer},
                {"9 KiB key", huge_key, NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                fleet_expect_error(f, v[i].label,
                                   &(http_req){.method = "POST",
                                               .path = "/v1/workflows",
                                               .key = v[i].key,
                                               .auth = v[i].auth,
                                               .body = wf,
                                               .len = strlen(wf)},
                                   401, "unauthorized", NULL, obs, sizeof(obs), bad, sizeof(bad));
        }
        fleet_check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
}

static void atk_viewer_role(fleet *f, adv_row *row) {
        char name[96], wf[256], obs[256] = "", bad[256] = "", path[128];

        if (!f->t->viewer_key) {
                fleet_set_verdict(row, ADV_SKIPPED, "no viewer key given (--viewer-key)");
                snprintf(row->note, sizeof(row->note), "needs a viewer key");
                return;
        }
        snprintf(name, sizeof(name), "%s-viewer", f->prefix);
        simple_workflow(wf, sizeof(wf), name);
        fleet_expect_error(f, "submit",
                           &(http_req){.method = "POST",
                                       .path = "/v1/workflows",
                                       .key = f->t->viewer_key,
                                       .body = wf,
                                       .len = strlen(wf)},
                           403, "forbidden", NULL, obs, sizeof(obs), bad, sizeof(bad));
        static const char run[] = "{\"argv\":[\"/bin/true\"]}";
        fleet_expect_error(f, "run",
                           &(http_req){.method = "POST",
                                       .path = "/v1/runs",
                                       .key = f->t->viewer_key,
                                       .body = run,
                                       .len = strlen(run)},
                           403, "forbidden", NULL, obs, sizeof(obs), bad, sizeof(bad));
        snprintf(path, sizeof(path), "/v1/workflows/%s/cancel", "00000000-0000-4000-8000-000000000000");
        fleet_expect_error(f, "cancel", &(http_req){.method = "POST", .path = path, .key = f->t->viewer_key},
                           403, "forbidden", NULL, obs, sizeof(obs), bad, sizeof(bad));
        fleet_check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
}

static void atk_invalid_json(fleet *f, adv_row *row) {
        char name[96], obs[256] = "", bad[256] = "";
        char cut[256], trailing[256], nul[256];

        snprintf(name, sizeof(name), "%s-invalid-json", f->prefix);
        snprintf(cut, sizeof(cut), "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"kind\":\"approval\"}", name);
        snprintf(trailing, sizeof(trailing),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"kind\":\"approval\"}]}{}", name);
        int k = snprintf(
                nul, sizeof(nul),
                "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"kind\":\"approval\"}],\"description\":\"x",
                name);
        memcpy(nul + k, "\0y\"}", 4);
        const struct {
                const char *label, *body;
                size_t len;
        } v[] = {
                {"cut short", cut, strlen(cut)},
                {"trailing data", trailing, strlen(trailing)},
                {"raw NUL", nul, (size_t) k + 4},
                {"not JSON", "name=x&steps=1", 14},
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                fleet_expect_error(f, v[i].label,
                                   &(http_req){.method = "POST",
                                               .path = "/v1/workflows",
                                               .key = f->t->api_key,
                                               .body = v[i].body,
                                               .len = v[i].len},
                                   400, "invalid_json", NULL, obs, sizeof(obs), bad, sizeof(bad));
        }
        fleet_check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
}

static void atk_unknown_fields(fleet *f, adv_row *row) {
        char name[96], obs[256] = "", bad[256] = "", top[256], step[256], run[256];

        snprintf(name, sizeof(name), "%s-unknown-fields", f->prefix);
        snprintf(top, sizeof(top),
                 "{\"name\":\"%s\",\"owner_override\":\"root\",\"steps\":[{\"id\":\"a\",\"kind\":"
                 "\"approval\"}]}",
                 name);
        snprintf(step, sizeof(step),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/bin/"
                 "true\"]},\"sudo\":true}]}",
                 name);
        snprintf(run, sizeof(run),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/bin/"
                 "true\"],\"privileged\":true}}]}",
                 name);
        const struct {
                const char *label, *body, *field;
        } v[] = {
                {"top level", top, "owner_override"},
                {"step", step, "sudo"},
                {"run spec", run, "privileged"},
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                const char *names[] = {v[i].field, NULL};
                fleet_expect_error(f, v[i].label,
                                   &(http_req){.method = "POST",
                                               .path = "/v1/workflows",
                                               .key = f->t->api_key,
                                               .body = v[i].body,
                                               .len = strlen(v[i].body)},
                                   400, "invalid_workflow", names, obs, sizeof(obs), bad, sizeof(bad));
        }
        fleet_check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
}

static void atk_cycle(fleet *f, adv_row *row) {
        char name[96], obs[256] = "", bad[256] = "", two[384], self[256];

        snprintf(name, sizeof(name), "%s-cycle", f->prefix);
        snprintf(two, sizeof(two),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"needs\":[\"b\"],\"kind\":\"approval\"},"
                 "{\"id\":\"b\",\"needs\":[\"a\"],\"kind\":\"approval\"}]}",
                 name);
        snprintf(self, sizeof(self),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"c\",\"needs\":[\"c\"],\"kind\":\"approval\"}]}",
                 name);
        const char *two_names[] = {"a -> b -> a", NULL}, *self_names[] = {"c", NULL};
        fleet_expect_error(f, "a<->b",
                           &(http_req){.method = "POST",
                                       .path = "/v1/workflows",
                                       .key = f->t->api_key,
                                       .body = two,
                                       .len = strlen(two)},
                           400, "invalid_workflow", two_names, obs, sizeof(obs), bad, sizeof(bad));
        fleet_expect_error(f, "c needs c",
                           &(http_req){.method = "POST",
                                       .path = "/v1/workflows",
                                       .key = f->t->api_key,
                                       .body = self,
                                       .len = strlen(self)},
                           400, "invalid_workflow", self_names, obs, sizeof(obs), bad, sizeof(bad));
        fleet_check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
}

static void body_too_large(fleet *f, adv_row *row, bool chunked) {
        char name[96], obs[256] = "", bad[256] = "";
        api_reply r;
        uint64_t size = chunked ? CHUNKED_BODY_BYTES : ANNOUNCED_BODY_BYTES;
        uint64_t t0 = au_now_ms();

        snprintf(name, sizeof(name), "%s-big", f->prefix); /* the generated document's name */
        fleet_http(f,
                   &(http_req){.method = "POST",
                               .path = "/v1/workflows",
                               .key = f->t->api_key,
                               .gen_size = size,
                               .chunked = chunked},
                   &r);
        if (fleet_check_error(chunked ? "4 MiB chunked" : "64 MiB announced", &r, 413, "payload_too_large",
                              NULL, obs, sizeof(obs), bad, sizeof(bad)))
                fleet_add(obs, sizeof(obs), "in %" PRIu64 " ms", au_now_ms() - t0);
        api_reply_done(&r);
        fleet_check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
}

static void atk_body_announced(fleet *f, adv_row *row) {
        body_too_large(f, row, false);
}

static void atk_body_chunked(fleet *f, adv_row *row) {
        body_too_large(f, row, true);
}

static void atk_too_many_steps(fleet *f, adv_row *row) {
        char name[96];
        _cleanup_buf_ au_buf b = AU_BUF_INIT(0);
        int r = 0;

        snprintf(name, sizeof(name), "%s-10001-steps", f->prefix);
        r |= au_buf_printf(&b, "{\"name\":\"%s\",\"steps\":[", name);
        for (int i = 0; i < TOO_MANY_STEPS && r == 0; i++)
                r |= au_buf_printf(&b, "%s{\"id\":\"s%d\",\"kind\":\"approval\"}", i ? "," : "", i);
        r |= au_buf_printf(&b, "]}");
        if (r < 0) {
                fleet_set_verdict(row, ADV_ERROR, "out of memory");
                au_buf_done(&b);
                return;
        }
        const char *names[] = {"steps", NULL};
        fleet_expect_refused(f, row, name, b.p, b.len, "invalid_workflow", names);
        au_buf_done(&b);
}

static void atk_deep_nesting(fleet *f, adv_row *row) {
        char name[96];
        _cleanup_buf_ au_buf b = AU_BUF_INIT(0);
        int r = 0;

        snprintf(name, sizeof(name), "%s-deep", f->prefix);
        r |= au_buf_printf(&b,
                           "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/bin/"
                           "true\"],\"env\":{\"X\":",
                           name);
        _cleanup_free_ char *deep = malloc(2 * DEEP_NESTING);
        if (deep) {
                memset(deep, '[', DEEP_NESTING);
                memset(deep + DEEP_NESTING, ']', DEEP_NESTING);
                r |= au_buf_append(&b, deep, 2 * DEEP_NESTING);
        }
        r |= au_buf_printf(&b, "}}}]}");
        if (r < 0 || !deep) {
                fleet_set_verdict(row, ADV_ERROR, "out of memory");
                au_buf_done(&b);
                return;
        }
        fleet_expect_refused(f, row, name, b.p, b.len, "invalid_json", NULL);
        au_buf_done(&b);
}

static void atk_invalid_utf8(fleet *f, adv_row *row) {
        char name[96], obs[256] = "", bad[256] = "", body[384], label[64];

        snprintf(name, sizeof(name), "%s-utf8", f->prefix);
        for (size_t i = 0; i < FLEET_BAD_UTF8_N; i++)
                for (int in_argv = 0; in_argv < 2; in_argv++) {
                        if (in_argv)
                                snprintf(body, sizeof(body),
                                         "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/"
                                         "bin/echo\","
                                         "\"x%sx\"]}}]}",
                                         name, fleet_bad_utf8[i].bytes);
                        else
                                snprintf(body, sizeof(body),
                                         "{\"name\":\"%s%s\",\"steps\":[{\"id\":\"a\",\"kind\":\"approval\"}"
                                         "]}",
                                         name, fleet_bad_utf8[i].bytes);
                        snprintf(label, sizeof(label), "%s in %s", fleet_bad_utf8[i].label,
                                 in_argv ? "argv" : "name");
                        fleet_expect_error(f, label,
                                           &(http_req){.method = "POST",
                                                       .path = "/v1/workflows",
                                                       .key = f->t->api_key,
                                                       .body = body,
                                                       .len = strlen(body)},
                                           400, "invalid_json", NULL, obs, sizeof(obs), bad, sizeof(bad));
                }
        fleet_check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
}

/* 400 or 404 and an error document, for a path that is not a route. */
static void expect_no_route(fleet *f, const char *label, const char *path, char *obs, size_t obs_size,
                            char *bad, size_t bad_size) {
        api_reply r;
        api_error e;
        char ex[96];

        fleet_http(f, &(http_req){.method = "GET", .path = path, .key = f->t->api_key}, &r);
        if (r.status == 0)
                fleet_add(bad, bad_size, "%s: no answer (%s)", label, r.error);
        else if (r.status != 400 && r.status != 404)
                fleet_add(bad, bad_size, "%s: answered %ld (%s), as another route", label, r.status,
                          fleet_excerpt(ex, r.body ? r.body : "", MIN(r.len, (size_t) 40)));
        else if (!fleet_api_error_of(&r, &e))
                fleet_add(bad, bad_size, "%s: %ld without an error document", label, r.status);
        else
                fleet_add(obs, obs_size, "%s: %ld %s", label, r.status, e.code);
        api_reply_done(&r);
}

static void atk_path_nul(fleet *f, adv_row *row) {
        char obs[256] = "", bad[256] = "", why[160], req[1400];

        expect_no_route(f, "/v1/workflows/%00", "/v1/workflows/%00", obs, sizeof(obs), bad, sizeof(bad));
        expect_no_route(f, "/v1/nodes%00x", "/v1/nodes%00x", obs, sizeof(obs), bad, sizeof(bad));
        expect_no_route(f, "/v1/workflows%00/../x", "/v1/workflows%00/x", obs, sizeof(obs), bad,
                        sizeof(bad));
        if (f->raw_ok) {
                /*
                 * A raw NUL in the request line: libmicrohttpd 0.9.75 ends the path there before we see
                 * it (no API to tell). Contained when what it becomes is still checked as itself: with
                 * no key it is 401, with a key it is at most the cut route, never another one.
                 */
                for (int with_key = 0; with_key < 2; with_key++) {
                        int k = snprintf(req, sizeof(req), "GET /v1/nodes");
                        req[k++] = '\0';
                        if (with_key)
                                k += snprintf(req + k, sizeof(req) - (size_t) k,
                                              "x HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %.1100s\r\n"
                                              "Connection: close\r\n\r\n",
                                              f->host, f->t->api_key);
                        else
                                k += snprintf(req + k, sizeof(req) - (size_t) k,
                                              "x HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                                              f->host);
                        long st = fleet_raw_http(f, req, (size_t) k, why, sizeof(why));
                        if (st == 400 || st == 404 || (!with_key && st == 401))
                                fleet_add(obs, sizeof(obs), "raw NUL in path%s: %ld",
                                          with_key ? "" : ", no key", st);
                        else if (with_key && st == 200)
                                fleet_add(obs, sizeof(obs),
                                          "raw NUL in path: 200 as /v1/nodes (the cut path, key checked)");
                        else if (st > 0)
                                fleet_add(bad, sizeof(bad), "raw NUL in path%s: answered %ld",
                                          with_key ? "" : ", no key", st);
                        else if (st == 0)
                                fleet_add(obs, sizeof(obs), "raw NUL in path: connection closed (%s)", why);
                        else
                                fleet_add(bad, sizeof(bad), "raw NUL in path: %s", why);
                }
        }
        fleet_verdict_from(row, obs, bad);
}

static void atk_path_long(fleet *f, adv_row *row) {
        char obs[256] = "", bad[256] = "", why[160];
        char path[8200];

        snprintf(path, sizeof(path), "/v1/workflows/");
        memset(path + 14, 'a', 8000);
        path[8014] = '\0';
        expect_no_route(f, "8 KB id", path, obs, sizeof(obs), bad, sizeof(bad));
        if (!f->raw_ok) {
                fleet_verdict_from(row, obs, bad);
                snprintf(row->note, sizeof(row->note),
                         "not plain http: the 1 MiB request line was not sent");
                return;
        }
        const struct {
                const char *label, *unit;
                size_t count;
        } v[] = {
                {"1 MiB path", "a", 1u << 20},
                {"100000 segments", "a/", 100000},
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                size_t ul = strlen(v[i].unit), len = 4 + 1 + ul * v[i].count + 64;
                _cleanup_free_ char *req = malloc(len);
                if (!req) {
                        fleet_add(bad, sizeof(bad), "out of memory");
                        continue;
                }
                size_t k = 0;
                memcpy(req, "GET /", 5);
                k = 5;
                for (size_t j = 0; j < v[i].count; j++, k += ul)
                        memcpy(req + k, v[i].unit, ul);
                k += (size_t) snprintf(req + k, len - k, " HTTP/1.1\r\nConnection: close\r\n\r\n");
                long st = fleet_raw_http(f, req, k, why, sizeof(why));
                if (st == 400 || st == 404 || st == 414 || st == 431)
                        fleet_add(obs, sizeof(obs), "%s: %ld", v[i].label, st);
                else if (st == 0)
                        fleet_add(obs, sizeof(obs), "%s: connection closed", v[i].label);
                else if (st > 0)
                        fleet_add(bad, sizeof(bad), "%s: answered %ld", v[i].label, st);
                else
                        fleet_add(bad, sizeof(bad), "%s: %s", v[i].label, why);
        }
        fleet_verdict_from(row, obs, bad);
}

/* True when some node is healthy (GET /v1/nodes). */
static bool some_node_healthy(fleet *f) {
        api_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        bool ok = false;

        fleet_http(f, &(http_req){.method = "GET", .path = "/v1/nodes", .key = f->t->api_key}, &r);
        if (r.status == 200 && r.body && au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) == 0) {
                yajl_val list = au_json_get(tree, "nodes");
                for (size_t i = 0; YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
                        const char *s;
                        if (au_json_get_string(au_json_get(list->u.array.values[i], "state"), "state", &s,
                                               NULL) == 0 &&
                            strcmp(s, "healthy") == 0)
                                ok = true;
                }
        }
        api_reply_done(&r);
        return ok;
}

static void atk_workflow_nul_output(fleet *f, adv_row *row) {
        char name[96], body[512], path[128], why[160], ex[96];
        api_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        const char *id = NULL;

        if (!some_node_healthy(f)) {
                fleet_set_verdict(row, ADV_SKIPPED, "no healthy node to run the step (GET /v1/nodes)");
                return;
        }
        snprintf(name, sizeof(name), "%s-nul-output", f->prefix);
        snprintf(body, sizeof(body),
                 "{\"name\":\"%s\",\"steps\":[{\"id\":\"emit\",\"run\":{\"argv\":[\"/bin/sh\",\"-c\","
                 "\"printf 'a\\\\000b\\\\377\\\\376c'; printf 'e\\\\000\\\\300' "
                 ">&2\"],\"limits\":{\"wall_ms\":10000}}}]}",
                 name);
        fleet_http(f,
                   &(http_req){.method = "POST",
                               .path = "/v1/workflows",
                               .key = f->t->api_key,
                               .body = body,
                               .len = strlen(body)},
                   &r);
        if (r.status != 201 || !r.body || au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) < 0 ||
            au_json_get_string(au_json_get(tree, "id"), "id", &id, NULL) < 0 || strlen(id) > 64) {
                fleet_set_verdict(row, ADV_ERROR, "submitting the workflow: %ld %s", r.status,
                                  r.status ? fleet_excerpt(ex, r.body ? r.body : "", r.len) : r.error);
                api_reply_done(&r);
                return;
        }
        snprintf(path, sizeof(path), "/v1/workflows/%s", id);
        api_reply_done(&r);

        for (;;) {
                /* The workflow's "state" comes before its steps' (doc/api.md's order); "stdout" is the
                 * step's. */
                _cleanup_(fleet_jcheck_done) jcheck j = {.target = {"state", "stdout"}};
                const char *state, *out;
                size_t out_len;

                fleet_http(f, &(http_req){.method = "GET", .path = path, .key = f->t->api_key}, &r);
                if (r.status != 200) {
                        fleet_set_verdict(
                                row, r.status >= 500 || r.status == 0 ? ADV_NOT_CONTAINED : ADV_ERROR,
                                "GET %s: %ld %s", path, r.status,
                                r.status ? fleet_excerpt(ex, r.body ? r.body : "", r.len) : r.error);
                        api_reply_done(&r);
                        return;
                }
                if (!fleet_json_strict(r.body, r.len, &j, why, sizeof(why))) {
                        fleet_set_verdict(row, ADV_NOT_CONTAINED, "GET answered invalid JSON: %s", why);
                        api_reply_done(&r);
                        return;
                }
                state = j.value[0] ? j.value[0] : "";
                out = j.value[1];
                out_len = j.value_len[1];
                bool final = strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
                             strcmp(state, "cancelled") == 0 || strcmp(state, "awaiting_human") == 0;
                if (!final && fleet_remaining_ms(f) >= 1500) {
                        api_reply_done(&r);
                        au_sleep_ms(250);
                        continue;
                }
                if (strcmp(state, "succeeded") != 0)
                        fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                          "the workflow is %.30s, not succeeded, after %u ms",
                                          state[0] ? state : "(unknown)", f->timeout_ms);
                else if (!out)
                        fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                          "succeeded, but the step has no stdout string");
                else if (out_len < 3 || out[0] != 'a' || !memchr(out, 'c', out_len))
                        fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                          "succeeded, valid JSON, but stdout is '%s'",
                                          fleet_excerpt(ex, out, out_len));
                else
                        fleet_set_verdict(
                                row, ADV_CONTAINED,
                                "succeeded; GET is valid JSON (%zu bytes); stdout %zu bytes, NUL %s, "
                                "invalid "
                                "bytes %s",
                                r.len, out_len,
                                memchr(out, '\0', out_len) ? "escaped as \\u0000" : "dropped",
                                memmem(out, out_len, "\xef\xbf\xbd", 3) ? "as U+FFFD" : "dropped");
                api_reply_done(&r);
                return;
        }
}

typedef struct slot {
        const fleet *f;
        unsigned timeout_ms;
        pthread_t thread;
        bool started;
        api_reply r;
        char body[256];
        char name[96];
} slot;

/* One submission of its own connection, in a thread of its own: they go at once. */
static void *submit_one(void *userdata) {
        slot *s = userdata;
        _cleanup_api_conn_ api_conn *c = NULL;
        http_req q = {.method = "POST",
                      .path = "/v1/workflows",
                      .key = s->f->t->api_key,
                      .body = s->body,
                      .len = strlen(s->body)};
        gen g = {0};
        api_request r = fleet_request_of(s->f, &q, &g, s->timeout_ms);

        if (adv_api_open(s->f->base, &c) < 0)
                snprintf(s->r.error, sizeof(s->r.error), "out of memory");
        else if (api_send(c, &r, &s->r) == -ENOMEM && !s->r.error[0])
                snprintf(s->r.error, sizeof(s->r.error), "out of memory");
        return NULL;
}

static void atk_concurrent_submit(fleet *f, adv_row *row) {
        slot *s = calloc(CONCURRENT_SUBMISSIONS, sizeof(*s));
        char obs[256] = "", bad[256] = "", ex[96];
        unsigned created = 0;

        if (!s) {
                fleet_set_verdict(row, ADV_ERROR, "out of memory");
                return;
        }
        unsigned timeout = (unsigned) MIN(fleet_remaining_ms(f) > 5000 ? fleet_remaining_ms(f) - 5000 : 1000,
                                          fleet_scaled(f, 15000));
        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++) {
                s[i].f = f;
                s[i].timeout_ms = timeout;
                snprintf(s[i].name, sizeof(s[i].name), "%s-cc-%d", f->prefix, i);
                snprintf(s[i].body, sizeof(s[i].body),
                         "{\"name\":\"%s\",\"steps\":[{\"id\":\"gate\",\"kind\":\"approval\"}]}", s[i].name);
                s[i].started = pthread_create(&s[i].thread, NULL, submit_one, &s[i]) == 0;
        }
        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++)
                if (s[i].started)
                        pthread_join(s[i].thread, NULL);
        char ids[CONCURRENT_SUBMISSIONS][40];
        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++) {
                ids[i][0] = '\0';
                if (!s[i].started)
                        continue;
                _cleanup_json_ yajl_val tree = NULL;
                const char *id;
                if (s[i].r.status == 201 && s[i].r.body &&
                    au_json_parse(s[i].r.body, s[i].r.len, HTTP_MAX_REPLY, &tree, NULL) == 0 &&
                    au_json_get_string(au_json_get(tree, "id"), "id", &id, NULL) == 0 &&
                    strlen(id) < sizeof(ids[i])) {
                        snprintf(ids[i], sizeof(ids[i]), "%s", id);
                        created++;
                } else if (!bad[0])
                        fleet_add(bad, sizeof(bad), "%s: %ld %s", s[i].name, s[i].r.status,
                                  s[i].r.status
                                          ? fleet_excerpt(ex, s[i].r.body ? s[i].r.body : "", s[i].r.len)
                                          : s[i].r.error);
        }
        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++)
                api_reply_done(&s[i].r);

        /* Every one stored once, under distinct ids. */
        unsigned distinct = 0, once = 0;
        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++) {
                bool seen = false;
                for (int k = 0; k < i && ids[i][0]; k++)
                        seen |= strcmp(ids[i], ids[k]) == 0;
                distinct += ids[i][0] && !seen;
        }
        api_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        fleet_http(f, &(http_req){.method = "GET", .path = "/v1/workflows?limit=1000", .key = f->t->api_key},
                   &r);
        if (r.status == 200 && r.body && au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) == 0) {
                yajl_val list = au_json_get(tree, "workflows");
                for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++) {
                        int n = 0;
                        for (size_t k = 0; YAJL_IS_ARRAY(list) && k < list->u.array.len; k++) {
                                const char *nm;
                                if (au_json_get_string(au_json_get(list->u.array.values[k], "name"), "name",
                                                       &nm, NULL) == 0 &&
                                    strcmp(nm, s[i].name) == 0)
                                        n++;
                        }
                        if (n == 1)
                                once++;
                        else if (n != 1)
                                fleet_add(bad, sizeof(bad), "%s stored %d times", s[i].name, n);
                }
        } else
                fleet_add(bad, sizeof(bad), "listing workflows: %ld", r.status);
        api_reply_done(&r);
        if (created != CONCURRENT_SUBMISSIONS)
                fleet_add(bad, sizeof(bad), "%u of %d answered 201", created, CONCURRENT_SUBMISSIONS);
        if (distinct != created)
                fleet_add(bad, sizeof(bad), "%u distinct ids for %u workflows", distinct, created);
        fleet_add(obs, sizeof(obs), "%u/%d answered 201 with distinct ids, each stored once (%u)", created,
                  CONCURRENT_SUBMISSIONS, once);

        /* They wait for an approval: cancel them. */
        unsigned cancelled = 0;
        for (int i = 0; i < CONCURRENT_SUBMISSIONS; i++) {
                char path[128];
                if (!ids[i][0])
                        continue;
                snprintf(path, sizeof(path), "/v1/workflows/%.39s/cancel", ids[i]);
                fleet_http(f, &(http_req){.method = "POST", .path = path, .key = f->t->api_key}, &r);
                cancelled += r.status == 200;
                api_reply_done(&r);
        }
        if (cancelled < created)
                snprintf(row->note, sizeof(row->note), "cleanup: %u of %u cancelled", cancelled, created);
        fleet_verdict_from(row, obs, bad);
        free(s);
}

static void atk_rate_flood(fleet *f, adv_row *row) {
        const char *key = f->t->viewer_key ? f->t->viewer_key : f->t->api_key;
        unsigned n = 0, ok404 = 0, other = 0;
        long other_status = 0;
        api_reply r;
        api_error e;
        uint64_t t0 = au_now_ms(), until = t0 + MIN((uint64_t) RATE_FLOOD_MS, fleet_remaining_ms(f));

        /* A route that is refused after the rate check, without touching PostgreSQL. */
        while (n < RATE_FLOOD_MAX && au_now_ms() < until) {
                fleet_http(f,
                           &(http_req){.method = "GET",
                                       .path = "/v1/workflows/not-a-workflow",
                                       .key = key,
                                       .no_retry = true,
                                       .timeout_ms = 5000},
                           &r);
                n++;
                if (r.status == 429) {
                        uint64_t ms = au_now_ms() - t0;
                        bool coded = fleet_api_error_of(&r, &e) && strcmp(e.code, "rate_limited") == 0;
                        unsigned ra = r.retry_after;
                        api_reply_done(&r);
                        if (!coded)
                                fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                                  "429 after %u requests, but not rate_limited", n);
                        else if (ra == 0 || ra == 1000000)
                                fleet_set_verdict(
                                        row, ADV_NOT_CONTAINED,
                                        "429 rate_limited after %u requests, without a usable Retry-After",
                                        n);
                        else if (ok404 == 0)
                                fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                                  "429 on the first request: no burst at all");
                        else if (other > 0)
                                fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                                  "429 after %u requests, but %u answered %ld before it", n,
                                                  other, other_status);
                        else
                                fleet_set_verdict(
                                        row, ADV_CONTAINED,
                                        "%u answered 404, then 429 rate_limited (Retry-After %u) after "
                                        "%" PRIu64 " ms",
                                        ok404, ra, ms);
                        snprintf(row->note, sizeof(row->note), "key %s",
                                 f->t->viewer_key ? "viewer" : "operator");
                        return;
                }
                if (r.status == 404)
                        ok404++;
                else {
                        other++;
                        other_status = r.status;
                }
                api_reply_done(&r);
                if (other > 10)
                        break;
        }
        uint64_t ms = au_now_ms() - t0;
        if (other > 0)
                fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                  "%u of %u requests answered %ld (0: no answer), none 429", other, n,
                                  other_status);
        else
                fleet_set_verdict(row, ADV_SKIPPED,
                                  "%u requests in %" PRIu64
                                  " ms (%.0f/s), all 404, none 429: the coordinator's rate limit "
                                  "is above what this client reaches",
                                  n, ms, ms ? n * 1000.0 / (double) ms : 0.0);
}

/* The audit attacks (adversarial/audit.c). */
static void atk_audit_rewrite(fleet *f, adv_row *row) {
        adv_audit_attack(f->t, 0, row);
}

static void atk_audit_cut(fleet *f, adv_row *row) {
        adv_audit_attack(f->t, 1, row);
}

/* TLS and keys (adversarial/tls.c, adversarial/keys.c). */
static void atk_plain_http_tls(fleet *f, adv_row *row) {
        adv_tls_plain_http(f->t, row);
}

static void atk_revoked_key(fleet *f, adv_row *row) {
        adv_revoked_key(f->t, row);
}

const attack fleet_api_attacks[] = {
        {"coordinator", "coordinator-no-key",
         "no key: 401 unauthorized with WWW-Authenticate; nothing stored", atk_no_key},
        {"coordinator", "coordinator-wrong-key", "unknown, extended, Basic and 9 KiB keys: 401 unauthorized",
         atk_wrong_key},
        {"coordinator", "coordinator-viewer-role",
         "viewer key on submit/run/cancel: 403 forbidden; nothing stored", atk_viewer_role},
        {"coordinator", "coordinator-invalid-json", "cut, trailing, NUL, non-JSON bodies: 400 invalid_json",
         atk_invalid_json},
        {"coordinator", "coordinator-unknown-fields", "unknown fields: 400 invalid_workflow naming each",
         atk_unknown_fields},
        {"coordinator", "coordinator-cycle", "cycles: 400 invalid_workflow naming 'a -> b -> a' and 'c'",
         atk_cycle},
        {"coordinator", "coordinator-body-announced",
         "64 MiB announced by Content-Length: 413 payload_too_large", atk_body_announced},
        {"coordinator", "coordinator-body-chunked", "4 MiB chunked body: 413 payload_too_large",
         atk_body_chunked},
        {"coordinator", "coordinator-10001-steps",
         "10001 steps: 400 invalid_workflow naming steps; nothing stored", atk_too_many_steps},
        {"coordinator", "coordinator-deep-nesting", "100000-deep JSON: 400 invalid_json; nothing stored",
         atk_deep_nesting},
        {"coordinator", "coordinator-invalid-utf8",
         "0xff, overlong, surrogate, > U+10FFFF in name or argv: 400 invalid_json", atk_invalid_utf8},
        {"coordinator", "coordinator-path-nul",
         "%00 in the path: 404, never another route; a raw NUL: no key 401, else at most the path before it",
         atk_path_nul},
        {"coordinator", "coordinator-path-long",
         "8 KB id: 404; 1 MiB and 100000-segment paths: 4xx; no crash", atk_path_long},
        {"coordinator", "coordinator-nul-output",
         "a step printing NUL/invalid UTF-8: succeeded, GET valid JSON", atk_workflow_nul_output},
        {"coordinator", "coordinator-concurrent-submit",
         "50 concurrent submissions: 50 x 201, each stored once", atk_concurrent_submit},
        {"coordinator", "coordinator-audit-rewrite",
         "the owner rewrites an audit row and rehashes the chain: autoosctl's verifier refuses it",
         atk_audit_rewrite},
        {"coordinator", "coordinator-audit-cut-tail",
         "the owner cuts off a trail's last rows: autoosctl's verifier names the cut", atk_audit_cut},
        {"coordinator", "coordinator-plain-http-to-tls",
         "plain HTTP with a key to the TLS listener: no HTTP answer (skipped for http://)",
         atk_plain_http_tls},
        {"coordinator", "coordinator-revoked-key",
         "a key revoked in PostgreSQL behind the coordinator: its very next request 401", atk_revoked_key},
        /* Last: it spends the key's rate. */
        {"coordinator", "coordinator-rate-flood",
         "a request flood: 429 rate_limited with Retry-After after the burst", atk_rate_flood},
};
const size_t fleet_api_attacks_n = ELEMENTSOF(fleet_api_attacks);
