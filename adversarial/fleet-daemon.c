/* SPDX-License-Identifier: MIT */
/* The "daemon" group: hostile jobs written straight into autoosd's jobs stream. */
#include "adversarial/fleet-internal.h"

/* ---- daemon attacks ------------------------------------------------------------------- */

/* One jobs-stream entry of an attack and what its result must say. */
typedef struct job_case {
        const char *label;
        const char *field; /* "spec", or anything else */
        const char *value;
        size_t len;
        const char *id;     /* the spec's id, or NULL (answered under the entry id) */
        const char *expect; /* rejected, and the error must contain this (NULL: any error) */
} job_case;

/* Sends the cases, waits for their results, checks each is a valid "rejected" naming what it must. */
static void expect_rejected(fleet *f, adv_row *row, const job_case *cases, size_t n) {
        wants w = {0};
        char obs[256] = "", bad[256] = "";

        if (fleet_mark_results(f) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                char entry[64];
                if (fleet_xadd(f, cases[i].field, cases[i].value, cases[i].len, entry) < 0) {
                        fleet_set_verdict(row, ADV_ERROR, "XADD %s: %s", cases[i].label, f->redis_err);
                        fleet_wants_done(&w);
                        return;
                }
                if (!fleet_want_add(&w, cases[i].id, entry)) {
                        fleet_set_verdict(row, ADV_ERROR, "out of memory");
                        fleet_wants_done(&w);
                        return;
                }
        }
        if (fleet_collect(f, &w, 0) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                fleet_wants_done(&w);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const want *x = &w.v[i];
                _cleanup_(sbx_result_freep) sbx_result *res = NULL;
                au_error err = {0};
                char why[160], ex[96];

                if (!x->json) {
                        fleet_add(bad, sizeof(bad), "%s: no result within the time", cases[i].label);
                        continue;
                }
                if (!fleet_json_strict(x->json, x->len, NULL, why, sizeof(why))) {
                        fleet_add(bad, sizeof(bad), "%s: result is not valid JSON (%s)", cases[i].label,
                                  why);
                        continue;
                }
                if (sbx_result_from_json(x->json, x->len, &res, &err) < 0) {
                        fleet_add(bad, sizeof(bad), "%s: unreadable result (%s)", cases[i].label, err.msg);
                        continue;
                }
                const char *e = res->error ? res->error : "";
                if (res->outcome != SBX_OUTCOME_REJECTED) {
                        fleet_add(bad, sizeof(bad), "%s: outcome %s, not rejected", cases[i].label,
                                  sbx_outcome_to_string(res->outcome));
                        continue;
                }
                if (cases[i].expect && !fleet_contains(e, cases[i].expect)) {
                        fleet_add(bad, sizeof(bad), "%s: rejected, but the error '%s' does not name '%s'",
                                  cases[i].label, fleet_excerpt(ex, e, strlen(e)), cases[i].expect);
                        continue;
                }
                if (!fleet_entry_acked(f, x->entry, fleet_scaled(f, 2000))) {
                        fleet_add(bad, sizeof(bad), "%s: rejected, but entry %s is still pending",
                                  cases[i].label, x->entry);
                        continue;
                }
                if (n == 1)
                        fleet_add(obs, sizeof(obs), "rejected: %s", fleet_excerpt(ex, e, strlen(e)));
                else
                        fleet_add(obs, sizeof(obs), "%s: rejected (%.50s)", cases[i].label,
                                  fleet_excerpt(ex, e, strlen(e)));
        }
        if (bad[0])
                fleet_set_verdict(row, ADV_NOT_CONTAINED, "%s", bad);
        else
                fleet_set_verdict(row, ADV_CONTAINED, "%s", obs);
        fleet_wants_done(&w);
}

static void one_rejected(fleet *f, adv_row *row, const char *id, const char *field, const char *value,
                         size_t len, const char *expect) {
        job_case c = {
                .label = row->name, .field = field, .value = value, .len = len, .id = id, .expect = expect};
        expect_rejected(f, row, &c, 1);
}

static void atk_malformed_json(fleet *f, adv_row *row) {
        char spec[256];
        snprintf(spec, sizeof(spec), "{\"id\":\"%s-malformed\",\"argv\":[\"/bin/true\"", f->prefix);
        one_rejected(f, row, NULL, MEM_FIELD_SPEC, spec, strlen(spec), "JSON");
}

static void atk_unknown_field(fleet *f, adv_row *row) {
        char id[96], spec[256];
        snprintf(id, sizeof(id), "%s-unknown-field", f->prefix);
        snprintf(spec, sizeof(spec), "{\"id\":\"%s\",\"argv\":[\"/bin/true\"],\"escape_hatch\":true}", id);
        one_rejected(f, row, id, MEM_FIELD_SPEC, spec, strlen(spec), "escape_hatch");
}

static void atk_wrong_types(fleet *f, adv_row *row) {
        static const struct {
                const char *label, *tail, *expect;
        } v[] = {
                {"argv string", "\"argv\":\"/bin/true\"", "argv"},
                {"memory string", "\"argv\":[\"/bin/true\"],\"limits\":{\"memory_bytes\":\"1G\"}",
                 "limits.memory_bytes"},
                {"negative wall", "\"argv\":[\"/bin/true\"],\"limits\":{\"wall_ms\":-1}", "limits.wall_ms"},
                {"env array", "\"argv\":[\"/bin/true\"],\"env\":[\"A=1\"]", "env"},
                {"argv numbers", "\"argv\":[1,2]", "argv"},
        };
        char ids[ELEMENTSOF(v)][96], specs[ELEMENTSOF(v)][256];
        job_case c[ELEMENTSOF(v)];

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                snprintf(ids[i], sizeof(ids[i]), "%s-types-%zu", f->prefix, i);
                snprintf(specs[i], sizeof(specs[i]), "{\"id\":\"%.95s\",%s}", ids[i], v[i].tail);
                c[i] = (job_case){.label = v[i].label,
                                  .field = MEM_FIELD_SPEC,
                                  .value = specs[i],
                                  .len = strlen(specs[i]),
                                  .id = ids[i],
                                  .expect = v[i].expect};
        }
        expect_rejected(f, row, c, ELEMENTSOF(v));
}

static void atk_over_ceiling(fleet *f, adv_row *row) {
        static const struct {
                const char *label, *limit, *value;
        } v[] = {
                {"memory 1 EiB", "memory_bytes", "1152921504606846976"},
                {"wall 1e15 ms", "wall_ms", "1000000000000000"},
                {"output 1 EiB", "output_bytes", "1152921504606846976"},
                {"pids 2^40", "pids", "1099511627776"},
                {"cpu 100000%", "cpu_percent", "100000"},
        };
        char ids[ELEMENTSOF(v)][96], specs[ELEMENTSOF(v)][256], expect[ELEMENTSOF(v)][64];
        job_case c[ELEMENTSOF(v)];

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                snprintf(ids[i], sizeof(ids[i]), "%s-ceiling-%zu", f->prefix, i);
                snprintf(specs[i], sizeof(specs[i]),
                         "{\"id\":\"%.95s\",\"argv\":[\"/bin/true\"],\"limits\":{\"%s\":%s}}", ids[i],
                         v[i].limit, v[i].value);
                snprintf(expect[i], sizeof(expect[i]), "limits.%s", v[i].limit);
                c[i] = (job_case){.label = v[i].label,
                                  .field = MEM_FIELD_SPEC,
                                  .value = specs[i],
                                  .len = strlen(specs[i]),
                                  .id = ids[i],
                                  .expect = expect[i]};
        }
        expect_rejected(f, row, c, ELEMENTSOF(v));
}

static void atk_oversized_entry(fleet *f, adv_row *row) {
        char id[96];
        _cleanup_free_ char *spec = malloc(OVERSIZED_ENTRY_BYTES);

        if (!spec) {
                fleet_set_verdict(row, ADV_ERROR, "out of memory");
                return;
        }
        snprintf(id, sizeof(id), "%s-oversized", f->prefix);
        int k = snprintf(spec, 256, "{\"id\":\"%s\",\"argv\":[\"/bin/true\"],\"stdin\":\"", id);
        memset(spec + k, 'A', OVERSIZED_ENTRY_BYTES - (size_t) k - 2);
        memcpy(spec + OVERSIZED_ENTRY_BYTES - 2, "\"}", 2);
        /* Whether the node cuts the entry (id lost: answered under the entry id) or parses it (stdin too
         * large). */
        one_rejected(f, row, id, MEM_FIELD_SPEC, spec, OVERSIZED_ENTRY_BYTES, NULL);
}

static void atk_unknown_entry_field(fleet *f, adv_row *row) {
        char spec[256];
        snprintf(spec, sizeof(spec), "{\"id\":\"%s-entry-field\",\"argv\":[\"/bin/true\"]}", f->prefix);
        one_rejected(f, row, NULL, "exec", spec, strlen(spec), "exec");
}

static void atk_binary_garbage(fleet *f, adv_row *row) {
        char garbage[4096];
        uint32_t x = 0x9e3779b9u;
        for (size_t i = 0; i < sizeof(garbage); i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                garbage[i] = (char) (i % 7 == 0 ? 0 : x & 0xff);
        }
        one_rejected(f, row, NULL, MEM_FIELD_SPEC, garbage, sizeof(garbage), NULL);
}

static void atk_argv_invalid_utf8(fleet *f, adv_row *row) {
        char ids[FLEET_BAD_UTF8_N][96], specs[FLEET_BAD_UTF8_N][256];
        job_case c[FLEET_BAD_UTF8_N];

        for (size_t i = 0; i < FLEET_BAD_UTF8_N; i++) {
                snprintf(ids[i], sizeof(ids[i]), "%s-argv-utf8-%zu", f->prefix, i);
                snprintf(specs[i], sizeof(specs[i]), "{\"id\":\"%.95s\",\"argv\":[\"/bin/echo\",\"x%sx\"]}",
                         ids[i], fleet_bad_utf8[i].bytes);
                c[i] = (job_case){.label = fleet_bad_utf8[i].label,
                                  .field = MEM_FIELD_SPEC,
                                  .value = specs[i],
                                  .len = strlen(specs[i]),
                                  .id = ids[i],
                                  .expect = "UTF"};
        }
        expect_rejected(f, row, c, FLEET_BAD_UTF8_N);
}

static void atk_id_path_chars(fleet *f, adv_row *row) {
        static const char *const bad_ids[] = {"../../etc/%s-passwd", "%s/../../x", "..%%2f%s"};
        char ids[ELEMENTSOF(bad_ids)][128], specs[ELEMENTSOF(bad_ids)][256];
        job_case c[ELEMENTSOF(bad_ids)];

        for (size_t i = 0; i < ELEMENTSOF(bad_ids); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                snprintf(ids[i], sizeof(ids[i]), bad_ids[i], f->prefix);
#pragma GCC diagnostic pop
                snprintf(specs[i], sizeof(specs[i]), "{\"id\":\"%.127s\",\"argv\":[\"/bin/true\"]}", ids[i]);
                c[i] = (job_case){.label = ids[i],
                                  .field = MEM_FIELD_SPEC,
                                  .value = specs[i],
                                  .len = strlen(specs[i]),
                                  .id = ids[i],
                                  .expect = "id"};
        }
        expect_rejected(f, row, c, ELEMENTSOF(bad_ids));
}

/* Sends one spec and waits for its result; NULL (row set) when there is none. */
static want *run_one(fleet *f, adv_row *row, wants *w, const char *id, const char *spec) {
        char entry[64];

        if (fleet_mark_results(f) < 0 || fleet_xadd(f, MEM_FIELD_SPEC, spec, strlen(spec), entry) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return NULL;
        }
        want *x = fleet_want_add(w, id, entry);
        if (!x) {
                fleet_set_verdict(row, ADV_ERROR, "out of memory");
                return NULL;
        }
        if (fleet_collect(f, w, 0) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                return NULL;
        }
        if (!x->json) {
                fleet_set_verdict(row, ADV_NOT_CONTAINED, "no result for %s within %u ms", id,
                                  f->timeout_ms);
                return NULL;
        }
        return x;
}

/* Checks the result is valid JSON and readable; NULL (row set) otherwise. */
static sbx_result *read_result(adv_row *row, const want *x) {
        sbx_result *res = NULL;
        au_error err = {0};
        char why[160];

        if (!fleet_json_strict(x->json, x->len, NULL, why, sizeof(why))) {
                fleet_set_verdict(row, ADV_NOT_CONTAINED, "the result is not valid JSON: %s", why);
                return NULL;
        }
        if (sbx_result_from_json(x->json, x->len, &res, &err) < 0) {
                fleet_set_verdict(row, ADV_NOT_CONTAINED, "the result cannot be read: %s", err.msg);
                return NULL;
        }
        return res;
}

static void atk_output_nul_utf8(fleet *f, adv_row *row) {
        char id[96], spec[512];
        wants w = {0};

        snprintf(id, sizeof(id), "%s-nul-output", f->prefix);
        snprintf(spec, sizeof(spec),
                 "{\"id\":\"%s\",\"argv\":[\"/bin/sh\",\"-c\",\"printf 'a\\\\000b\\\\377\\\\376c'; "
                 "printf 'e\\\\000\\\\300\\\\257' >&2\"],\"limits\":{\"wall_ms\":10000}}",
                 id);
        want *x = run_one(f, row, &w, id, spec);
        if (!x) {
                fleet_wants_done(&w);
                return;
        }
        _cleanup_(sbx_result_freep) sbx_result *res = read_result(row, x);
        if (res) {
                static const char want_out[] = "a\0b\xef\xbf\xbd\xef\xbf\xbd"
                                               "c";
                bool escaped = memmem(x->json, x->len, "\\u0000", 6) != NULL;
                if (res->outcome != SBX_OUTCOME_EXITED || res->exit_code != 0)
                        fleet_set_verdict(row, ADV_NOT_CONTAINED, "outcome %s exit %d, not exited 0",
                                          sbx_outcome_to_string(res->outcome), res->exit_code);
                else if (!escaped)
                        fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                          "valid JSON, but no \\u0000 in it: the NUL bytes were lost");
                else if (res->stdout_size != sizeof(want_out) - 1 ||
                         memcmp(res->stdout_data, want_out, sizeof(want_out) - 1) != 0) {
                        char ex[96];
                        fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                          "stdout read back as '%s' (%zu bytes), not a\\0b<FFFD><FFFD>c",
                                          fleet_excerpt(ex, res->stdout_data ? res->stdout_data : "",
                                                        res->stdout_size),
                                          res->stdout_size);
                } else
                        fleet_set_verdict(
                                row, ADV_CONTAINED,
                                "exited 0; result is valid JSON (%zu bytes); NUL as \\u0000, invalid "
                                "bytes as "
                                "U+FFFD; stderr %zu bytes",
                                x->len, res->stderr_size);
        }
        fleet_wants_done(&w);
}

static void atk_result_flood(fleet *f, adv_row *row) {
        char id[96], spec[512];
        wants w = {0};
        bool yes = access("/usr/bin/yes", X_OK) == 0;

        snprintf(id, sizeof(id), "%s-flood-output", f->prefix);
        snprintf(spec, sizeof(spec),
                 "{\"id\":\"%s\",\"argv\":%s,\"limits\":{\"output_bytes\":%u,\"wall_ms\":15000}}", id,
                 yes ? "[\"/usr/bin/yes\",\"AUTOOS-FLOOD-AUTOOS-FLOOD-AUTOOS-FLOOD\"]"
                     : "[\"/bin/sh\",\"-c\",\"while :; do echo AUTOOS-FLOOD-AUTOOS-FLOOD; done\"]",
                 FLOOD_OUTPUT_BYTES);
        uint64_t t0 = au_now_ms();
        want *x = run_one(f, row, &w, id, spec);
        if (!x) {
                fleet_wants_done(&w);
                return;
        }
        _cleanup_(sbx_result_freep) sbx_result *res = read_result(row, x);
        if (res) {
                size_t bound = 2 * FLOOD_OUTPUT_BYTES + 65536;
                if (res->outcome != SBX_OUTCOME_OUTPUT_LIMIT)
                        fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                          "outcome %s, not output_limit (stdout %zu bytes)",
                                          sbx_outcome_to_string(res->outcome), res->stdout_size);
                else if (res->stdout_size + res->stderr_size > FLOOD_OUTPUT_BYTES)
                        fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                          "output_limit, but %zu bytes of output kept (limit %u)",
                                          res->stdout_size + res->stderr_size, FLOOD_OUTPUT_BYTES);
                else if (x->len > bound)
                        fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                          "output_limit, but the result is %zu bytes (bound %zu)", x->len,
                                          bound);
                else
                        fleet_set_verdict(row, ADV_CONTAINED,
                                          "output_limit after %" PRIu64
                                          " ms wall; stdout %zu bytes, truncated %s; result %zu "
                                          "bytes; answered in %" PRIu64 " ms",
                                          res->wall_ms, res->stdout_size,
                                          res->stdout_truncated ? "true" : "false", x->len,
                                          au_now_ms() - t0);
        }
        fleet_wants_done(&w);
}

static void atk_job_flood(fleet *f, adv_row *row) {
        wants w = {0};
        char spec[256], id[96];
        uint64_t t0 = au_now_ms();
        size_t sent = 0;

        if (fleet_mark_results(f) < 0 || !f->rc) {
                fleet_set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return;
        }
        /* Written at once (pipelined), so that the node finds them all waiting. */
        for (size_t i = 0; i < FLOOD_JOBS; i++) {
                snprintf(id, sizeof(id), "%s-flood-%zu", f->prefix, i);
                snprintf(spec, sizeof(spec),
                         "{\"id\":\"%s\",\"argv\":[\"/bin/true\"],\"limits\":{\"wall_ms\":10000}}", id);
                const char *argv[] = {"XADD", f->jobs_key, "*", MEM_FIELD_SPEC, spec};
                if (!fleet_want_add(&w, id, NULL) ||
                    redisAppendCommandArgv(f->rc, 5, argv, NULL) != REDIS_OK)
                        break;
                sent++;
        }
        for (size_t i = 0; i < sent; i++) {
                redisReply *r = NULL;
                if (redisGetReply(f->rc, (void **) &r) != REDIS_OK) {
                        snprintf(f->redis_err, sizeof(f->redis_err), "Redis: %s", f->rc->errstr);
                        fleet_redis_close(f);
                        fleet_set_verdict(row, ADV_ERROR, "XADD flood: %s", f->redis_err);
                        fleet_wants_done(&w);
                        return;
                }
                if (fleet_is_str(r))
                        (void) au_strv_push(&f->entries, &f->n_entries, r->str); /* best effort */
                freeReplyObject(r);
        }
        if (sent < FLOOD_JOBS) {
                fleet_set_verdict(row, ADV_ERROR, "could only queue %zu of %d jobs", sent, FLOOD_JOBS);
                fleet_wants_done(&w);
                return;
        }
        if (fleet_collect(f, &w, 500) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS, f->redis_err);
                fleet_wants_done(&w);
                return;
        }
        size_t answered = 0, exited = 0, dup = 0, differ = 0;
        char first_bad[160] = "";
        for (size_t i = 0; i < w.n; i++) {
                const want *x = &w.v[i];
                if (!x->json)
                        continue;
                answered++;
                dup += x->count > 1;
                differ += x->differ;
                _cleanup_(sbx_result_freep) sbx_result *res = NULL;
                au_error err = {0};
                char why[120];
                if (!fleet_json_strict(x->json, x->len, NULL, why, sizeof(why)) ||
                    sbx_result_from_json(x->json, x->len, &res, &err) < 0) {
                        if (!first_bad[0])
                                snprintf(first_bad, sizeof(first_bad), "%.100s: invalid result", x->id);
                        continue;
                }
                if (res->outcome == SBX_OUTCOME_EXITED && res->exit_code == 0)
                        exited++;
                else if (!first_bad[0])
                        snprintf(first_bad, sizeof(first_bad), "%.60s: %s %.60s", x->id,
                                 sbx_outcome_to_string(res->outcome), res->error ? res->error : "");
        }
        uint64_t ms = au_now_ms() - t0;
        if (answered < FLOOD_JOBS)
                fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                  "%zu of %d answered within %u ms (%zu lost or late)", answered, FLOOD_JOBS,
                                  f->timeout_ms * 2, FLOOD_JOBS - answered);
        else if (differ > 0)
                fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                  "all answered, but %zu jobs got two different results (run twice)",
                                  differ);
        else if (exited < FLOOD_JOBS)
                fleet_set_verdict(row, ADV_NOT_CONTAINED, "all answered, %zu exited 0; first other: %s",
                                  exited, first_bad);
        else
                fleet_set_verdict(row, ADV_CONTAINED,
                                  "%d/%d answered, exited 0, in %" PRIu64 " ms (%.0f jobs/s)%s", FLOOD_JOBS,
                                  FLOOD_JOBS, ms, ms ? FLOOD_JOBS * 1000.0 / (double) ms : 0.0,
                                  dup ? "; some result sent twice, identical" : "");
        fleet_wants_done(&w);
}

static void atk_duplicate_id(fleet *f, adv_row *row) {
        char id[96], spec[256], entries[2][64] = {"", ""};
        wants w = {0};

        snprintf(id, sizeof(id), "%s-duplicate", f->prefix);
        /* A run long enough that both entries are read while it is still going. */
        snprintf(spec, sizeof(spec),
                 "{\"id\":\"%s\",\"argv\":[\"/bin/sh\",\"-c\",\"sleep 0.5; echo $$-$(date +%%s%%N)\"],"
                 "\"limits\":{\"wall_ms\":10000}}",
                 id);
        if (fleet_mark_results(f) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return;
        }
        for (int i = 0; i < 2; i++)
                if (fleet_xadd(f, MEM_FIELD_SPEC, spec, strlen(spec), entries[i]) < 0) {
                        fleet_set_verdict(row, ADV_ERROR, "XADD: %s", f->redis_err);
                        return;
                }
        want *x = fleet_want_add(&w, id, NULL);
        if (!x || fleet_collect(f, &w, 2000) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS,
                                  x ? f->redis_err : "out of memory");
                fleet_wants_done(&w);
                return;
        }
        x = &w.v[0];
        if (!x->json)
                fleet_set_verdict(row, ADV_NOT_CONTAINED, "no result within %u ms", f->timeout_ms);
        else if (x->differ)
                fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                  "%u results with different contents: the job ran more than once",
                                  x->count);
        else if (!fleet_entry_acked(f, entries[0], fleet_scaled(f, 2000)) ||
                 !fleet_entry_acked(f, entries[1], fleet_scaled(f, 2000)))
                fleet_set_verdict(row, ADV_NOT_CONTAINED, "one result, but entry %s or %s is still pending",
                                  entries[0], entries[1]);
        else {
                _cleanup_(sbx_result_freep) sbx_result *res = read_result(row, x);
                if (res) {
                        if (res->outcome != SBX_OUTCOME_EXITED)
                                fleet_set_verdict(row, ADV_NOT_CONTAINED, "outcome %s, not exited",
                                                  sbx_outcome_to_string(res->outcome));
                        else
                                fleet_set_verdict(
                                        row, ADV_CONTAINED,
                                        "one run: %u identical result%s, both entries acknowledged",
                                        x->count, x->count > 1 ? "s (re-sent)" : "");
                }
        }
        fleet_wants_done(&w);
}

/*
 * Whether the node acknowledges entry (*ret_acked), then a look of look_ms
 * (fleet_scaled) at the results stream for a result of id, counted in w. Returns
 * fleet_collect()'s status, or -ENOMEM.
 */
static int acked_unanswered(fleet *f, wants *w, const char *id, const char *entry, uint64_t look_ms,
                            bool *ret_acked) {
        *ret_acked = fleet_entry_acked(f, entry, MIN(fleet_remaining_ms(f), fleet_scaled(f, 10000)));
        if (!fleet_want_add(w, id, entry))
                return -ENOMEM;
        uint64_t saved = f->deadline;
        f->deadline = MIN(f->deadline, au_now_ms() + fleet_scaled(f, look_ms));
        int r = fleet_collect(f, w, 0);
        f->deadline = saved;
        return r;
}

static void atk_cancel_unknown(fleet *f, adv_row *row) {
        char id[96], entry[64];
        wants w = {0};

        snprintf(id, sizeof(id), "%s-no-such-run", f->prefix);
        if (fleet_mark_results(f) < 0 || fleet_xadd(f, MEM_FIELD_CANCEL, id, strlen(id), entry) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return;
        }
        bool acked;
        /* And nothing answers it: a short look at the results stream. */
        int r = acked_unanswered(f, &w, id, entry, 1500, &acked);
        if (r == -ENOMEM) {
                fleet_set_verdict(row, ADV_ERROR, "out of memory");
                return;
        }
        if (r < 0)
                fleet_set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS, f->redis_err);
        else if (!acked)
                fleet_set_verdict(row, ADV_NOT_CONTAINED, "the cancel entry %s was not acknowledged", entry);
        else if (w.v[0].count > 0)
                fleet_set_verdict(row, ADV_NOT_CONTAINED, "a result appeared for a run that never existed");
        else
                fleet_set_verdict(row, ADV_CONTAINED, "acknowledged, no result, nothing else happened");
        fleet_wants_done(&w);
}

/*
 * A job nobody sealed (issue 10): written to the node's stream by someone who
 * can write to Redis but holds no key. Contained when the node acknowledges it
 * and no result appears: it did not run. A node with bus_auth = off runs it:
 * not contained. auth NULL: no authentication at all; else a MAC that is not
 * the coordinator's.
 */
static void injected_job(fleet *f, adv_row *row, const char *what, const char *auth) {
        char id[96], spec[256], entry[64];
        wants w = {0};

        snprintf(id, sizeof(id), "%s-%s", f->prefix, what);
        snprintf(spec, sizeof(spec), "{\"id\":\"%s\",\"argv\":[\"/bin/true\"]}", id);
        if (fleet_mark_results(f) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "%s", f->redis_err);
                return;
        }
        if (auth) {
                /* Shaped like a sealed spec, with a token, an expiry an hour away, and a made-up MAC. */
                char expires[24];
                snprintf(expires, sizeof(expires), "%llu",
                         (unsigned long long) (time(NULL) + 3600) * 1000ull);
                const char *argv[] = {NULL,    NULL,
                                      NULL,    MEM_FIELD_SPEC,
                                      spec,    MEM_FIELD_TOKEN,
                                      id,      MEM_FIELD_EXPIRES,
                                      expires, MEM_FIELD_AUTH,
                                      auth};
                if (fleet_xadd_argv(f, 11, argv, NULL, entry) < 0) {
                        fleet_set_verdict(row, ADV_ERROR, "XADD: %s", f->redis_err);
                        return;
                }
        } else if (fleet_xadd(f, MEM_FIELD_SPEC, spec, strlen(spec), entry) < 0) {
                fleet_set_verdict(row, ADV_ERROR, "XADD: %s", f->redis_err);
                return;
        }
        bool acked;
        int r = acked_unanswered(f, &w, id, entry, 3000, &acked);
        if (r == -ENOMEM) {
                fleet_set_verdict(row, ADV_ERROR, "out of memory");
                return;
        }
        if (r < 0)
                fleet_set_verdict(row, ADV_ERROR, "reading %s: %s", MEM_STREAM_RESULTS, f->redis_err);
        else if (w.v[0].count > 0)
                fleet_set_verdict(row, ADV_NOT_CONTAINED,
                                  "the node answered the %s job: it took it as the coordinator's", what);
        else if (!acked)
                fleet_set_verdict(row, ADV_NOT_CONTAINED, "the %s job's entry %s was not acknowledged", what,
                                  entry);
        else
                fleet_set_verdict(row, ADV_CONTAINED, "refused: acknowledged, not run, no result");
        fleet_wants_done(&w);
}

static void atk_injected_job(fleet *f, adv_row *row) {
        injected_job(f, row, "injected", NULL);
}

static void atk_forged_job(fleet *f, adv_row *row) {
        injected_job(f, row, "forged", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
}

const attack fleet_daemon_attacks[] = {
        {"daemon", "daemon-malformed-json",
         "rejected (\"invalid JSON\"), under the entry id; entry acked; node alive", atk_malformed_json},
        {"daemon", "daemon-unknown-field", "rejected naming 'escape_hatch'; node alive", atk_unknown_field},
        {"daemon", "daemon-wrong-types",
         "5 specs with mistyped argv/limits/env each rejected naming the field", atk_wrong_types},
        {"daemon", "daemon-over-ceiling",
         "limits far over the policy's ceilings rejected naming limits.<field>", atk_over_ceiling},
        {"daemon", "daemon-oversized-entry", "a 20 MiB entry answered rejected; node alive",
         atk_oversized_entry},
        {"daemon", "daemon-unknown-entry-field",
         "an entry field 'exec' (not spec/cancel) rejected naming it", atk_unknown_entry_field},
        {"daemon", "daemon-binary-garbage",
         "4 KiB of binary with NULs answered rejected (valid JSON result)", atk_binary_garbage},
        {"daemon", "daemon-argv-invalid-utf8",
         "argv with 0xff, an overlong '/', a surrogate, > U+10FFFF: each rejected (UTF named)",
         atk_argv_invalid_utf8},
        {"daemon", "daemon-output-nul-utf8",
         "output with NUL and invalid UTF-8: exited 0, valid JSON result, NUL as \\u0000, bad bytes U+FFFD",
         atk_output_nul_utf8},
        {"daemon", "daemon-result-flood",
         "an output flood ends output_limit; output and result bounded (256 KiB limit)", atk_result_flood},
        {"daemon", "daemon-job-flood", "500 jobs at once: all answered exited 0, none lost or run twice",
         atk_job_flood,
         /* A node with 4 slots runs 500 sandboxes: twice the time. */ 2},
        {"daemon", "daemon-duplicate-id",
         "the same id twice: one run, identical results, both entries acked", atk_duplicate_id},
        {"daemon", "daemon-cancel-unknown", "a cancel for an unknown id: acknowledged, no result",
         atk_cancel_unknown},
        {"daemon", "daemon-injected-job",
         "a spec with no authentication (issue 10): acknowledged, not run, no result", atk_injected_job},
        {"daemon", "daemon-forged-job",
         "a spec with a made-up token and MAC: acknowledged, not run, no result", atk_forged_job},
        {"daemon", "daemon-id-path-chars", "ids with '/', '..' and '%' rejected naming id",
         atk_id_path_chars},

};
const size_t fleet_daemon_attacks_n = ELEMENTSOF(fleet_daemon_attacks);
