/* SPDX-License-Identifier: MIT */
/*
 * Run specs (sandbox/spec.c) from untrusted JSON, with the built-in policy:
 * sbx_spec_from_json() refuses with a message naming the field or returns a
 * complete spec; that spec, written out with sbx_spec_to_json(), parses
 * again to the same text, and applying the policy once more changes nothing
 * (sbx_spec_apply_policy() is idempotent).
 */
#include <errno.h>
#include <string.h>

#include "common/json.h"
#include "common/macro.h"
#include "sandbox/sandbox.h"
#include "tests/fuzz/fuzz.h"

static sbx_policy policy;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        sbx_policy_init_default(&policy);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_sbx_spec_ sbx_spec *spec = NULL, *again = NULL;
        _cleanup_free_ char *json = NULL, *json2 = NULL, *json3 = NULL;
        au_error err = {};
        int r;

        r = sbx_spec_from_json((const char *) data, size, &policy, &spec, &err);
        if (r < 0) {
                FUZZ_ASSERT(r == -EINVAL || r == -E2BIG);
                FUZZ_ASSERT(err.msg[0] != '\0');
                FUZZ_ASSERT(!spec);
                return 0;
        }
        FUZZ_ASSERT(spec && spec->argv && spec->argc > 0 && spec->argv[0][0] &&
                    (spec->argv[0][0] == '/' || !strchr(spec->argv[0], '/')));
        FUZZ_ASSERT(spec->cwd && spec->cwd[0] == '/');
        FUZZ_ASSERT(sbx_trust_to_string(spec->trust) && sbx_network_to_string(spec->network));

        /* Strings from untrusted JSON are valid UTF-8 (they reach execve, logs and PostgreSQL). */
        for (size_t i = 0; i < spec->argc; i++)
                FUZZ_ASSERT(au_utf8_valid(spec->argv[i], strlen(spec->argv[i])));
        for (size_t i = 0; i < spec->n_env; i++)
                FUZZ_ASSERT(au_utf8_valid(spec->env[i], strlen(spec->env[i])));
        FUZZ_ASSERT(au_utf8_valid(spec->cwd, strlen(spec->cwd)));
        if (spec->stdin_data)
                FUZZ_ASSERT(au_utf8_valid(spec->stdin_data, spec->stdin_size));

        json = sbx_spec_to_json(spec);
        FUZZ_ASSERT(json);
        FUZZ_ASSERT(au_utf8_valid(json, strlen(json)));

        /* What we write, we read back, to the same spec. */
        au_error_clear(&err);
        r = sbx_spec_from_json(json, strlen(json), &policy, &again, &err);
        if (r < 0)
                fprintf(stderr, "re-parse of %s: %s\n", json, err.msg);
        FUZZ_ASSERT(r == 0);
        json2 = sbx_spec_to_json(again);
        FUZZ_ASSERT(json2 && strcmp(json, json2) == 0);

        /* The policy applied a second time changes nothing. */
        FUZZ_ASSERT(sbx_spec_apply_policy(spec, &policy, &err) == 0);
        json3 = sbx_spec_to_json(spec);
        FUZZ_ASSERT(json3 && strcmp(json, json3) == 0);
        return 0;
}
