/* SPDX-License-Identifier: MIT */
/*
 * The Redis job and result messages.
 *
 * Results (autoos:results, what nodes publish and the coordinator reads):
 * sbx_result_from_json() refuses with a message or returns a result that
 * sbx_result_to_json() writes back out, compact and pretty, as text that
 * parses again to the same text.
 *
 * Job entries (autoos:jobs:<node>, field "spec"): daemon/node.c has no pure
 * function for them, so this follows what on_job() does with an entry's
 * value: sbx_spec_from_json() with the node's policy (the built-in one
 * here); a refusal, or a spec without an id, becomes a "rejected" result
 * carrying the ids salvage_ids() picks out of the JSON. Whatever the entry,
 * the result the node would publish must be one the coordinator can read.
 */
#include <errno.h>
#include <string.h>

#include "common/json.h"
#include "common/macro.h"
#include "sandbox/sandbox.h"
#include "tests/fuzz/fuzz.h"

/* daemon/node.c's bound on a jobs stream entry. */
#define SPEC_MAX_BYTES (64u << 20)

static sbx_policy policy;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        sbx_policy_init_default(&policy);
        return 0;
}

/* to_json, from_json and to_json again give the same text. Returns the first text. */
static char *round_trip(const sbx_result *r, bool pretty) {
        _cleanup_sbx_result_ sbx_result *again = NULL;
        _cleanup_free_ char *json2 = NULL;
        char *json = sbx_result_to_json(r, pretty);
        au_error err = {};
        int k;

        FUZZ_ASSERT(json);
        FUZZ_ASSERT(au_utf8_valid(json, strlen(json)));
        k = sbx_result_from_json(json, strlen(json), &again, &err);
        if (k < 0)
                fprintf(stderr, "re-parse of %s: %s\n", json, err.msg);
        FUZZ_ASSERT(k == 0);
        json2 = sbx_result_to_json(again, pretty);
        if (json2 && strcmp(json, json2) != 0)
                fprintf(stderr, "written: %s\nread back and written: %s\n", json, json2);
        FUZZ_ASSERT(json2 && strcmp(json, json2) == 0);
        (void) sbx_result_exit_status(again);
        return json;
}

static void fuzz_result(const char *buf, size_t len) {
        _cleanup_sbx_result_ sbx_result *r = NULL;
        _cleanup_free_ char *compact = NULL, *pretty = NULL;
        au_error err = {};
        int k;

        k = sbx_result_from_json(buf, len, &r, &err);
        if (k < 0) {
                FUZZ_ASSERT(k == -EINVAL || k == -E2BIG);
                FUZZ_ASSERT(err.msg[0] != '\0');
                FUZZ_ASSERT(!r);
                return;
        }
        FUZZ_ASSERT(r && sbx_outcome_to_string(r->outcome));
        compact = round_trip(r, false);
        pretty = round_trip(r, true);
}

/* salvage_ids() of daemon/node.c, on a refused entry. */
static void salvage_ids(sbx_result *res, const char *value, size_t len) {
        _cleanup_json_ yajl_val tree = NULL;
        const char *s;
        uint32_t a;

        if (au_json_parse(value, len, SPEC_MAX_BYTES, &tree, NULL) < 0)
                return;
        if (au_json_get_string(au_json_get(tree, "id"), "id", &s, NULL) >= 0 && !res->id)
                FUZZ_ASSERT((res->id = strndup(s, 128)));
        if (au_json_get_string(au_json_get(tree, "workflow"), "workflow", &s, NULL) >= 0)
                FUZZ_ASSERT((res->workflow = strndup(s, 128)));
        if (au_json_get_string(au_json_get(tree, "step"), "step", &s, NULL) >= 0)
                FUZZ_ASSERT((res->step = strndup(s, 128)));
        if (au_json_get_uint32(au_json_get(tree, "attempt"), "attempt", &a, NULL) >= 0)
                res->attempt = a;
}

static void fuzz_job_entry(const char *buf, size_t len) {
        _cleanup_sbx_spec_ sbx_spec *spec = NULL;
        _cleanup_sbx_result_ sbx_result *res = NULL;
        _cleanup_free_ char *json = NULL;
        au_error err = {};
        int k;

        k = sbx_spec_from_json(buf, len, &policy, &spec, &err);
        if (k < 0) {
                FUZZ_ASSERT(err.msg[0] != '\0' && !spec);
                res = sbx_result_new_error(NULL, SBX_OUTCOME_REJECTED, err.msg);
                FUZZ_ASSERT(res);
                salvage_ids(res, buf, len);
        } else if (!spec->id) {
                res = sbx_result_new_error(NULL, SBX_OUTCOME_REJECTED, "id: required on a jobs stream");
                FUZZ_ASSERT(res);
        } else
                return; /* accepted: it goes to the sandbox, as fuzz-spec covers */

        /* A refused entry without a usable id is answered under its stream entry id. */
        if (!res->id)
                FUZZ_ASSERT((res->id = strdup("1700000000000-0")));
        FUZZ_ASSERT((res->node = strdup("fuzz-node")));
        res->started_at.tv_sec = res->finished_at.tv_sec = 1700000000;
        res->started_at.tv_nsec = res->finished_at.tv_nsec = 123000000;
        json = round_trip(res, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_result((const char *) data, size);
        fuzz_job_entry((const char *) data, size);
        return 0;
}
