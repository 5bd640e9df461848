/* SPDX-License-Identifier: MIT */
/*
 * Workflow documents (orchestrator/workflow.c), as POST /v1/workflows and
 * /v1/workflows/simulate hand them over, with the built-in policy:
 * orc_workflow_parse() refuses with a message or returns a workflow whose
 * every step is found by its id, whose run specs parse, whose stored
 * document parses again to the same text, and for which
 * orc_workflow_topo_order() gives every step once, each after its needs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/macro.h"
#include "orchestrator/workflow.h"
#include "tests/fuzz/fuzz.h"

/* The coordinator's default max_body_bytes. */
#define MAX_BYTES (1u << 20)

static sbx_policy policy;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        sbx_policy_init_default(&policy);
        return 0;
}

static void check_order(const orc_workflow *w) {
        _cleanup_free_ size_t *order = calloc(w->n_steps, sizeof(size_t));
        _cleanup_free_ size_t *pos = calloc(w->n_steps, sizeof(size_t));
        _cleanup_free_ bool *seen = calloc(w->n_steps, sizeof(bool));

        FUZZ_ASSERT(order && pos && seen);
        FUZZ_ASSERT(orc_workflow_topo_order(w, order) == 0);
        for (size_t i = 0; i < w->n_steps; i++) {
                FUZZ_ASSERT(order[i] < w->n_steps && !seen[order[i]]);
                seen[order[i]] = true;
                pos[order[i]] = i;
        }
        for (size_t i = 0; i < w->n_steps; i++)
                for (size_t k = 0; k < w->steps[i].n_needs; k++) {
                        const orc_step *need = orc_workflow_step(w, w->steps[i].needs[k]);
                        FUZZ_ASSERT(need);
                        FUZZ_ASSERT(pos[need - w->steps] < pos[i]);
                }
}

static void check_steps(const orc_workflow *w) {
        for (size_t i = 0; i < w->n_steps; i++) {
                const orc_step *s = &w->steps[i];

                FUZZ_ASSERT(s->id && orc_workflow_step(w, s->id) == s);
                if (s->fallback) {
                        const orc_step *f = orc_workflow_step(w, s->fallback);
                        FUZZ_ASSERT(f && f != s && f->is_fallback && f->kind == ORC_STEP_RUN);
                }
                if (s->kind == ORC_STEP_APPROVAL) {
                        FUZZ_ASSERT(!s->run_json && !s->fallback);
                        continue;
                }
                _cleanup_sbx_spec_ sbx_spec *spec = NULL;
                au_error err = {};
                FUZZ_ASSERT(s->run_json && s->program);
                FUZZ_ASSERT(sbx_spec_from_json(s->run_json, strlen(s->run_json), &policy, &spec, &err) == 0);
                FUZZ_ASSERT(spec->trust == s->trust && spec->limits.wall_ms == s->wall_ms);
                FUZZ_ASSERT(s->max_attempts >= 1 && s->backoff_ms <= s->max_backoff_ms);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_orc_workflow_ orc_workflow *w = NULL, *again = NULL;
        au_error err = {};
        int r;

        r = orc_workflow_parse((const char *) data, size, MAX_BYTES, &policy, &w, &err);
        if (r < 0) {
                FUZZ_ASSERT(r == -EINVAL || r == -E2BIG);
                FUZZ_ASSERT(err.msg[0] != '\0');
                FUZZ_ASSERT(!w);
                return 0;
        }
        FUZZ_ASSERT(w && w->name && w->json && w->n_steps >= 1 && w->n_steps <= ORC_MAX_STEPS);
        /* The name goes to PostgreSQL as text: valid UTF-8. */
        FUZZ_ASSERT(au_utf8_valid(w->name, strlen(w->name)) && au_utf8_valid(w->json, strlen(w->json)));
        check_steps(w);
        check_order(w);

        /* The document as stored is accepted again and stored the same way. */
        r = orc_workflow_parse(w->json, strlen(w->json), MAX_BYTES * 2, &policy, &again, &err);
        if (r < 0)
                fprintf(stderr, "re-parse of %s: %s\n", w->json, err.msg);
        FUZZ_ASSERT(r == 0);
        FUZZ_ASSERT(strcmp(w->json, again->json) == 0 && again->n_steps == w->n_steps);
        return 0;
}
