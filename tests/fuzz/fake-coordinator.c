/* SPDX-License-Identifier: MIT */
/*
 * coordinator.h without PostgreSQL or Redis, for fuzz-http.c: api.c's
 * requests end here instead of in ops.c. Linked before liborchestrator.a,
 * so coordinator.o is never pulled in. Bodies go through the real parsers
 * (orc_workflow_parse, sbx_spec_from_json), answers are canned, and each
 * operation checks what api.c promises it (ids well-formed, an actor with a
 * role, bodies within max_body_bytes): a broken promise aborts, which
 * libFuzzer reports as a crash.
 *
 * Keys: "viewer-key", "operator-key", "admin-key" (named viewer, operator,
 * admin); "pg-away-key" answers -EAGAIN (keys not loaded), "broken-key"
 * -EIO; anything else -ENOKEY.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/macro.h"
#include "orchestrator/coordinator.h"
#include "orchestrator/drain.h"
#include "orchestrator/run-result.h"
#include "orchestrator/intents.h"
#include "orchestrator/keys.h"
#include "orchestrator/secrets.h"
#include "orchestrator/workflow.h"
#include "sandbox/sandbox.h"
#include "tests/fuzz/fake-coordinator.h"

struct orc_coord {
        sbx_policy policy;
};

static orc_coord fake;

orc_coord *fake_coord(void) {
        sbx_policy_init_default(&fake.policy);
        return &fake;
}

/* Roles and replies are the real ones (orchestrator/reply.c). */

static void reply(orc_reply *ret, int status, const char *body) {
        ret->status = status;
        ret->body = strdup(body);
        FUZZ_ASSERT(ret->body);
        ret->len = strlen(body);
}

int orc_auth(orc_coord *c, const char *key, char ret_name[static 129], orc_role *ret_role) {
        static const struct {
                const char *key, *name;
                orc_role role;
        } keys[] = {
                {"viewer-key", "viewer", ORC_ROLE_VIEWER},
                {"operator-key", "operator", ORC_ROLE_OPERATOR},
                {"admin-key", "admin", ORC_ROLE_ADMIN},
        };

        FUZZ_ASSERT(c == &fake && key);
        /* api.c hands over "Bearer <key>"'s key only: 1..1024 printable ASCII characters. */
        FUZZ_ASSERT(key[0] && strlen(key) <= 1024);
        for (const char *p = key; *p; p++)
                FUZZ_ASSERT(*p > 0x20 && *p < 0x7f);
        if (strcmp(key, "pg-away-key") == 0)
                return -EAGAIN;
        if (strcmp(key, "broken-key") == 0)
                return -EIO;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (strcmp(key, keys[i].key) == 0) {
                        snprintf(ret_name, 129, "%s", keys[i].name);
                        *ret_role = keys[i].role;
                        return 0;
                }
        return -ENOKEY;
}

static void check_actor(const char *actor, orc_role least) {
        FUZZ_ASSERT(actor);
        if (least >= ORC_ROLE_ADMIN)
                FUZZ_ASSERT(strcmp(actor, "admin") == 0);
        else if (least >= ORC_ROLE_OPERATOR)
                FUZZ_ASSERT(strcmp(actor, "operator") == 0 || strcmp(actor, "admin") == 0);
        else
                FUZZ_ASSERT(strcmp(actor, "viewer") == 0 || strcmp(actor, "operator") == 0 ||
                            strcmp(actor, "admin") == 0);
}

static void check_body(const char *body, size_t len) {
        FUZZ_ASSERT(body && len <= FAKE_MAX_BODY && body[len] == '\0');
}

/* A workflow id as api.c passes it on: a UUID in lower case. */
static void check_id(const char *id) {
        FUZZ_ASSERT(id && strlen(id) == 36);
        for (size_t i = 0; i < 36; i++)
                if (i == 8 || i == 13 || i == 18 || i == 23)
                        FUZZ_ASSERT(id[i] == '-');
                else
                        FUZZ_ASSERT((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'));
}

static void workflow_answer(orc_coord *c, const char *body, size_t len, int ok_status, const char *ok_body,
                            orc_reply *ret) {
        _cleanup_orc_workflow_ orc_workflow *w = NULL;
        au_error err = {};
        int r = orc_workflow_parse(body, len, FAKE_MAX_BODY, &c->policy, &w, &err);

        if (r < 0) {
                FUZZ_ASSERT(err.msg[0]);
                orc_reply_error(ret, 400, err.field[0] ? "invalid_workflow" : "invalid_json", err.field,
                                "%s", err.msg);
                return;
        }
        reply(ret, ok_status, ok_body);
}

void orc_workflow_submit(orc_coord *c, const char *actor, const char *body, size_t len, orc_reply *ret) {
        check_actor(actor, ORC_ROLE_OPERATOR);
        check_body(body, len);
        workflow_answer(c, body, len, 201,
                        "{\"id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"running\"}", ret);
}

void orc_workflow_simulate(orc_coord *c, const char *body, size_t len, orc_reply *ret) {
        check_body(body, len);
        workflow_answer(c, body, len, 200, "{\"steps\":[]}", ret);
}

void orc_workflow_list(orc_coord *c, const char *state, unsigned limit, orc_reply *ret) {
        static const char *const states[] = {"pending",   "running", "paused",   "awaiting_human",
                                             "succeeded", "failed",  "cancelled"};
        bool known = !state;

        for (size_t i = 0; state && i < ELEMENTSOF(states); i++)
                known = known || strcmp(state, states[i]) == 0;
        FUZZ_ASSERT(known && limit >= 1 && limit <= 1000);
        reply(ret, 200, "{\"workflows\":[]}");
}

void orc_workflow_get(orc_coord *c, const char *id, orc_reply *ret) {
        check_id(id);
        orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%s'", id);
}

void orc_workflow_action(orc_coord *c, const char *actor, const char *id, const char *action,
                         orc_reply *ret) {
        check_actor(actor, ORC_ROLE_OPERATOR);
        check_id(id);
        FUZZ_ASSERT(strcmp(action, "pause") == 0 || strcmp(action, "resume") == 0 ||
                    strcmp(action, "cancel") == 0);
        orc_reply_error(ret, 409, "conflict", NULL, "workflow is succeeded");
}

void orc_step_action(orc_coord *c, const char *actor, const char *id, const char *step, const char *action,
                     orc_reply *ret) {
        size_t n = strlen(step);

        check_actor(actor, ORC_ROLE_OPERATOR);
        check_id(id);
        FUZZ_ASSERT(n >= 1 && n <= ORC_MAX_STEP_ID &&
                    strspn(step, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                 "0123456789._-") == n);
        FUZZ_ASSERT(strcmp(action, "approve") == 0 || strcmp(action, "retry") == 0 ||
                    strcmp(action, "skip") == 0);
        orc_reply_error(ret, 409, "conflict", NULL, "step '%s' is not awaiting a human", step);
}

void orc_workflow_audit(orc_coord *c, const char *id, bool verify, orc_reply *ret) {
        check_id(id);
        reply(ret, 200, verify ? "{\"rows\":[],\"verify\":{\"ok\":true}}" : "{\"rows\":[]}");
}

void orc_run_submit(orc_coord *c, const char *actor, const char *body, size_t len, bool wait,
                    orc_reply *ret) {
        _cleanup_sbx_spec_ sbx_spec *spec = NULL;
        au_error err = {};

        check_actor(actor, ORC_ROLE_OPERATOR);
        check_body(body, len);
        if (sbx_spec_from_json(body, len, &c->policy, &spec, &err) < 0) {
                orc_reply_error(ret, 400, "invalid_request", err.field, "%s", err.msg);
                return;
        }
        reply(ret, wait ? 200 : 202, "{\"id\":\"r-1\"}");
}

/* POST /v1/intents: an operator's body, answered as by a coordinator without a fabric. */
void orc_intent_post(orc_coord *c, const char *actor, const char *body, size_t len, orc_reply *ret) {
        check_actor(actor, ORC_ROLE_OPERATOR);
        check_body(body, len);
        reply(ret, 503, "{\"error\":{\"code\":\"unavailable\",\"message\":\"no fabric setting\"}}");
}

orc_role orc_key_role(orc_coord *c, const char *name) {
        return orc_role_from_string(name); /* the fake keys are named after their roles */
}

void orc_key_revoke(orc_coord *c, const char *actor, const char *name, orc_reply *ret) {
        check_actor(actor, ORC_ROLE_ADMIN);
        /* api.c passes one path segment: 1..128 printable ASCII characters. */
        FUZZ_ASSERT(name && name[0] && strlen(name) <= ORC_MAX_KEY_NAME);
        for (const char *p = name; *p; p++)
                FUZZ_ASSERT(*p > 0x20 && *p < 0x7f && *p != '/');
        reply(ret, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no active key\"}}");
}

void orc_secret_put(orc_coord *c, const char *actor, const char *name, const char *body, size_t len,
                    orc_reply *ret) {
        check_actor(actor, ORC_ROLE_ADMIN);
        FUZZ_ASSERT(mem_secret_name_valid(name));
        check_body(body, len);
        reply(ret, 201, "{\"name\":\"x\",\"version\":1}");
}

void orc_secret_delete(orc_coord *c, const char *actor, const char *name, orc_reply *ret) {
        check_actor(actor, ORC_ROLE_ADMIN);
        FUZZ_ASSERT(mem_secret_name_valid(name));
        reply(ret, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no secret\"}}");
}

void orc_secret_list(orc_coord *c, orc_reply *ret) {
        reply(ret, 200, "{\"secrets\":[]}");
}

void orc_node_drain(orc_coord *c, const char *actor, const char *node, bool drain, orc_reply *ret) {
        check_actor(actor, ORC_ROLE_OPERATOR);
        FUZZ_ASSERT(orc_node_id_valid(node));
        reply(ret, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no node\"}}");
}

void orc_run_result(orc_coord *c, const char *run_id, orc_reply *ret) {
        FUZZ_ASSERT(run_id && run_id[0] && strlen(run_id) <= ORC_MAX_KEY_NAME);
        reply(ret, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no run\"}}");
}

void orc_nodes_list(orc_coord *c, orc_reply *ret) {
        reply(ret, 200, "{\"nodes\":[]}");
}

void orc_health(orc_coord *c, orc_reply *ret) {
        reply(ret, 200, "{\"status\":\"ok\"}");
}

void orc_metrics(orc_coord *c, orc_reply *ret) {
        reply(ret, 200, "autoos_fake 1\n");
}

void orc_count_request(orc_coord *c, unsigned status) {
}
