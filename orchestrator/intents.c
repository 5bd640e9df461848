/* SPDX-License-Identifier: MIT */
/* POST /v1/intents: a sentence to a draft workflow through the planner, submitted if asked (intents.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "memory/pg.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/intent.h"
#include "orchestrator/intents.h"
#include "orchestrator/workflow.h"

/* Planner calls per intent: the first draft and two corrections. */
#define ROUNDS 3

typedef struct intent_body {
        const char *sentence;
        bool submit;
        const char *name; /* NULL: the planner's */
} intent_body;

static void sha256_hex(const char *s, size_t len, char out[static 2 * SHA256_DIGEST_LENGTH + 1]) {
        unsigned char d[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *) s, len, d);
        au_hex(d, sizeof(d), out);
}

/* A workflow name the validator accepts: checked with the validator itself, on a one-step document. */
static int check_name(orc_coord *c, const char *name, au_error *err) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_orc_workflow_ orc_workflow *w = NULL;
        _cleanup_free_ char *doc = NULL;
        size_t len;

        if (!g || au_json_gen_map_open(g) < 0 || au_json_gen_kv_string(g, "name", name) < 0 ||
            au_json_gen_string(g, "steps") < 0 || au_json_gen_array_open(g) < 0 ||
            au_json_gen_map_open(g) < 0 || au_json_gen_kv_string(g, "id", "x") < 0 ||
            au_json_gen_kv_string(g, "kind", "approval") < 0 || au_json_gen_map_close(g) < 0 ||
            au_json_gen_array_close(g) < 0 || au_json_gen_map_close(g) < 0 ||
            !(doc = au_json_gen_finish(g, &len)))
                return -ENOMEM;
        return orc_workflow_parse(doc, len, len + 1, &c->policy, &w, err);
}

/* Reads the body strictly; answers 400 (naming the field) itself and returns false. */
static bool parse_body(orc_coord *c, yajl_val v, intent_body *b, orc_reply *ret) {
        static const char *const known[] = {"sentence", "submit", "name", NULL};
        au_error err = {};
        yajl_val x;
        int r;

        if (au_json_check_object(v, "", known, &err) < 0)
                goto bad;
        if (!(x = au_json_get(v, "sentence"))) {
                orc_reply_error(ret, 400, "invalid_request", "sentence", "sentence: required");
                return false;
        }
        if (au_json_get_string(x, "sentence", &b->sentence, &err) < 0)
                goto bad;
        size_t n = strlen(b->sentence);
        if (n == 0 || n > ORC_INTENTS_MAX_SENTENCE) {
                orc_reply_error(ret, 400, "invalid_request", "sentence",
                                "sentence: must be 1 to %d bytes (it is %zu)", ORC_INTENTS_MAX_SENTENCE, n);
                return false;
        }
        if ((x = au_json_get(v, "submit")) && au_json_get_bool(x, "submit", &b->submit, &err) < 0)
                goto bad;
        if ((x = au_json_get(v, "name"))) {
                if (au_json_get_string(x, "name", &b->name, &err) < 0)
                        goto bad;
                if ((r = check_name(c, b->name, &err)) == -ENOMEM) {
                        orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                        return false;
                }
                if (r < 0)
                        goto bad;
        }
        return true;
bad:
        orc_reply_error(ret, 400, "invalid_request", err.field[0] ? err.field : NULL, "%s", err.msg);
        return false;
}

/* The draft with its "name" replaced (the member stays where it was, or comes first). NULL on ENOMEM. */
static char *renamed(const char *draft, const char *name) {
        _cleanup_json_ yajl_val d = NULL;
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        bool done = false;

        if (!g || au_json_parse(draft, strlen(draft), 4 * ORC_INTENT_MAX_DRAFT, &d, NULL) < 0 ||
            !YAJL_IS_OBJECT(d) || au_json_gen_map_open(g) < 0)
                return NULL;
        if (!au_json_get(d, "name")) {
                if (au_json_gen_kv_string(g, "name", name) < 0)
                        return NULL;
                done = true;
        }
        for (size_t i = 0; i < d->u.object.len; i++) {
                const char *k = d->u.object.keys[i];
                bool is_name = !done && strcmp(k, "name") == 0;
                if (au_json_gen_string(g, k) < 0 ||
                    (is_name ? au_json_gen_string(g, name) : au_json_gen_tree(g, d->u.object.values[i])) < 0)
                        return NULL;
        }
        if (au_json_gen_map_close(g) < 0)
                return NULL;
        return au_json_gen_finish(g, NULL);
}

/*
 * The "intent" audit row: in the workflow's chain when the draft was
 * submitted (wf), else in the fleet chain. Returns 0 or a negative errno,
 * ret set to the database error reply when reply_errors.
 */
static int audit_intent(orc_coord *c, const char *actor, const intent_body *b, const orc_intent_result *res,
                        const char *wf, orc_reply *ret, bool reply_errors) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_free_ char *detail = NULL;
        char sh[2 * SHA256_DIGEST_LENGTH + 1], dh[2 * SHA256_DIGEST_LENGTH + 1], cost[32];
        orc_reply scratch = {};
        au_error err = {};
        orc_audit audit;
        PGconn *conn;
        int r;

        sha256_hex(b->sentence, strlen(b->sentence), sh);
        if (res->draft)
                sha256_hex(res->draft, strlen(res->draft), dh);
        snprintf(cost, sizeof(cost), "%.6f", isfinite(res->cost_usd) ? res->cost_usd : 0);
        if (!g)
                return -ENOMEM;
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "sentence_sha256", sh);
        au_json_gen_kv_uint64(g, "sentence_bytes", strlen(b->sentence));
        au_json_gen_string(g, "draft_sha256");
        if (res->draft)
                au_json_gen_string(g, dh);
        else
                au_json_gen_null(g);
        au_json_gen_kv_bool(g, "submitted", wf != NULL);
        au_json_gen_kv_string(g, "outcome", orc_intent_outcome_name(res->outcome));
        au_json_gen_kv_uint64(g, "rounds", res->rounds);
        au_json_gen_kv_uint64(g, "approvals", res->approvals);
        au_json_gen_kv_string(g, "provider", res->provider);
        au_json_gen_kv_string(g, "model", res->model);
        au_json_gen_string(g, "cost_usd");
        yajl_gen_number(g, cost, strlen(cost));
        au_json_gen_map_close(g);
        if (!(detail = au_json_gen_finish(g, NULL)))
                return -ENOMEM;

        if (!(conn = orc_get_conn(c, reply_errors ? ret : &scratch))) {
                orc_reply_done(&scratch);
                return -EAGAIN;
        }
        orc_audit_init(&audit, actor);
        r = orc_audit_add(&audit, wf, "intent", detail);
        if (r >= 0)
                r = mem_pg_begin(conn, &err);
        if (r >= 0)
                r = orc_audit_flush(c, conn, &audit, &err);
        if (r >= 0)
                r = mem_pg_commit(conn, &err);
        if (r < 0)
                mem_pg_rollback(conn);
        orc_audit_done(&audit);
        r = orc_put_conn(c, conn, reply_errors ? ret : &scratch, r, &err);
        orc_reply_done(&scratch);
        if (r < 0)
                log_error("intent by %s: audit row not written: %s", actor,
                          err.msg[0] ? err.msg : strerror(-r));
        return r;
}

/* The draft's answer, 200; with the submission's (sub, a JSON object) 201. */
static void reply_result(orc_reply *ret, const orc_intent_result *res, const orc_risk_rules *rules,
                         const char *sub) {
        _cleanup_free_ char *json = orc_intent_result_json(res, rules);
        _cleanup_buf_ au_buf b = AU_BUF_INIT(0);
        size_t n;

        /* one compact object: its closing brace gives way to the fields added */
        if (!json || (n = strlen(json)) < 2 || json[n - 1] != '}' || au_buf_append(&b, json, n - 1) < 0 ||
            au_buf_printf(&b, ",\"submitted\":%s", sub ? "true" : "false") < 0 ||
            (sub && au_buf_printf(&b, ",\"workflow\":%s", sub) < 0) || au_buf_puts(&b, "}") < 0) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        free(ret->body);
        ret->status = sub ? 201 : 200;
        ret->body = au_buf_steal(&b, &ret->len);
}

/* The error answer of an outcome that is not a draft. */
static void reply_outcome(orc_reply *ret, const orc_intent_result *res, unsigned max_rounds) {
        switch (res->outcome) {
        case ORC_INTENT_INVALID:
                orc_reply_error(
                        ret, 422, "invalid_draft", NULL,
                        "no valid draft in %u round%s (at most %u); the validator's last message: %s",
                        res->rounds, res->rounds == 1 ? "" : "s", max_rounds, res->error);
                break;
        case ORC_INTENT_BUDGET:
                orc_reply_error(ret, 402, "budget_exceeded", NULL, "%s", res->error);
                break;
        default:
                orc_reply_error(ret, 502, "planner_failed", NULL, "the planner (%s%s%s) failed: %s",
                                res->provider[0] ? res->provider : "no provider", res->model[0] ? "/" : "",
                                res->model, res->error);
                break;
        }
}

void orc_intent_post(orc_coord *c, const char *actor, const char *body, size_t len, orc_reply *ret) {
        _cleanup_json_ yajl_val v = NULL, sv = NULL;
        orc_intent_result res = {};
        orc_reply sub = {};
        const char *id = NULL;
        orc_risk_rules rules;
        intent_body b = {};
        au_error err = {};
        int r;

        /* any body the API let in is read, so that a long sentence is refused naming the field */
        r = au_json_parse(body, len, c->cfg.max_body_bytes, &v, &err);
        if (r == -ENOMEM) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        if (r < 0) {
                orc_reply_error(ret, r == -E2BIG ? 413 : 400,
                                r == -E2BIG ? "payload_too_large" : "invalid_json", NULL, "%s", err.msg);
                return;
        }
        if (!parse_body(c, v, &b, ret))
                return;
        if (!c->fabric) {
                orc_reply_error(ret, 503, "unavailable", NULL,
                                "intents need model providers: this coordinator has no fabric setting "
                                "(fabric.json, README \"Fabric\")");
                return;
        }
        if (fab_chain_len(c->fabric, FAB_ROLE_PLANNER) == 0) {
                orc_reply_error(ret, 503, "unavailable", NULL,
                                "intents need the planner role: fabric.json's roles give it no provider");
                return;
        }

        orc_risk_rules_init_default(&rules);
        orc_intent_options opts = {
                .policy = &c->policy, .rules = &rules, .max_rounds = ROUNDS, .key = actor};
        /* fab_call is safe from the API's threads at once: intents draft side by side. */
        r = orc_intent_draft(c->fabric, b.sentence, &opts, &res);
        if (r < 0) {
                orc_reply_error(ret, 500, "internal", NULL, "drafting the intent failed: %s", strerror(-r));
                return;
        }
        au_log_kv(AU_LOG_INFO, NULL, "intent by %s: %s after %u round(s) via %s/%s ($%.6f)", actor,
                  orc_intent_outcome_name(res.outcome), res.rounds, res.provider, res.model, res.cost_usd);
        if (res.outcome == ORC_INTENT_OK && b.name) {
                char *d = renamed(res.draft, b.name);
                if (!d) {
                        orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                        goto out;
                }
                free(res.draft);
                res.draft = d;
        }
        if (res.outcome != ORC_INTENT_OK) {
                if (audit_intent(c, actor, &b, &res, NULL, ret, true) >= 0)
                        reply_outcome(ret, &res, ROUNDS);
                goto out;
        }
        if (!b.submit) {
                if (audit_intent(c, actor, &b, &res, NULL, ret, true) >= 0)
                        reply_result(ret, &res, &rules, NULL);
                goto out;
        }

        /* Submitted as POST /v1/workflows would: the same parse, roles, secrets and insert. */
        orc_workflow_submit(c, actor, res.draft, strlen(res.draft), &sub);
        if (sub.status != 201 || !sub.body) {
                /* the submission's own refusal (403 a trust level the key's role may not use, ...) */
                audit_intent(c, actor, &b, &res, NULL, ret, false);
                orc_reply_done(ret);
                *ret = sub;
                goto out;
        }
        if (au_json_parse(sub.body, sub.len, sub.len + 1, &sv, NULL) >= 0)
                id = YAJL_IS_STRING(au_json_get(sv, "id")) ? au_json_get(sv, "id")->u.string : NULL;
        /* The workflow exists now: a missing audit row is logged, not answered as a failure. */
        audit_intent(c, actor, &b, &res, id, ret, false);
        reply_result(ret, &res, &rules, sub.body);
        orc_reply_done(&sub);
out:
        orc_intent_result_done(&res);
}
