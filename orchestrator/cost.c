/* SPDX-License-Identifier: MIT */
/* orchestrator/cost: a model or agent step's worst-case cost from the fabric's prices (see cost.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/macro.h"
#include "orchestrator/cost.h"

/* As orchestrator/model.c's verifier call and agent.h's defaults. */
#define VERIFIER_MAX_TOKENS 256
#define AGENT_MAX_TOKENS 1024
#define AGENT_TURNS 10
#define AGENT_TOKENS 200000

static const char *str_of(yajl_val v) {
        return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

static uint64_t num_of(yajl_val v, uint64_t dflt) {
        if (!YAJL_IS_NUMBER(v))
                return dflt;
        double d = strtod(v->u.number.r, NULL);
        return d >= 0 && d < 1e15 ? (uint64_t) d : dflt;
}

/* Fabric's own input estimate: bytes / 4, rounded up. */
static uint64_t tokens_of(yajl_val v) {
        const char *s = str_of(v);
        return s ? (strlen(s) + 3) / 4 : 0;
}

/*
 * The first chain entry of the role named rn (NULL: executor) and its price;
 * NULL when the fabric, the role, its chain or the price is missing (basis says which).
 */
static const fab_price *first_entry(const fab_fabric *f, const char *rn, orc_step_cost *ret) {
        int role = fab_role_from_name(rn ? rn : "executor");

        snprintf(ret->role, sizeof(ret->role), "%s", role >= 0 ? fab_role_name((fab_role) role) : "?");
        if (role < 0) {
                snprintf(ret->basis, sizeof(ret->basis), "unknown role '%.32s'", rn);
                return NULL;
        }
        if (!f) {
                snprintf(ret->basis, sizeof(ret->basis), "no model providers (no fabric setting)");
                return NULL;
        }
        if (fab_chain_len(f, (fab_role) role) == 0) {
                snprintf(ret->basis, sizeof(ret->basis), "role %s has no providers", ret->role);
                return NULL;
        }
        const char *p = fab_chain_provider(f, (fab_role) role, 0),
                   *m = fab_chain_model(f, (fab_role) role, 0);
        snprintf(ret->provider, sizeof(ret->provider), "%s", p);
        snprintf(ret->model, sizeof(ret->model), "%s", m);
        const fab_price *price = fab_price_of(f, p, m);
        if (!price)
                snprintf(ret->basis, sizeof(ret->basis), "no price for %s/%s", p, m);
        return price;
}

static void model_cost(const fab_fabric *f, yajl_val block, orc_step_cost *c) {
        uint64_t out = num_of(au_json_get(block, "max_tokens"), 0);
        uint64_t in = tokens_of(au_json_get(block, "system")) + tokens_of(au_json_get(block, "prompt"));
        yajl_val verify = au_json_get(block, "verify");
        const fab_price *price = first_entry(f, str_of(au_json_get(block, "role")), c);

        c->calls = 1;
        c->input_tokens = in;
        c->output_tokens = out;
        if (!price)
                return;
        c->usd = fab_cost(price, &(fab_usage){.input = in, .output = out});
        c->priced = true;
        snprintf(c->basis, sizeof(c->basis),
                 "%" PRIu64 " output tokens at $%g/M, ~%" PRIu64 " input at $%g/M", out, price->output, in,
                 price->input);
        if (!YAJL_IS_OBJECT(verify))
                return;
        orc_step_cost v = {};
        uint64_t vin =
                tokens_of(au_json_get(verify, "criteria")) + tokens_of(au_json_get(block, "prompt")) + out;
        const fab_price *vp = first_entry(f, "verifier", &v);
        c->calls = 2;
        c->input_tokens += vin;
        c->output_tokens += VERIFIER_MAX_TOKENS;
        if (!vp) {
                c->priced = false;
                c->usd = 0;
                snprintf(c->basis, sizeof(c->basis), "verify: %.200s", v.basis);
                return;
        }
        c->usd += fab_cost(vp, &(fab_usage){.input = vin, .output = VERIFIER_MAX_TOKENS});
        size_t n = strlen(c->basis);
        snprintf(c->basis + n, sizeof(c->basis) - n, "; verifier %s/%s", v.provider, v.model);
}

static void agent_cost(const fab_fabric *f, yajl_val block, orc_step_cost *c) {
        yajl_val limits = au_json_get(block, "limits");
        uint64_t max_tokens = num_of(au_json_get(block, "max_tokens"), AGENT_MAX_TOKENS);
        uint64_t turns = num_of(au_json_get(limits, "turns"), AGENT_TURNS);
        uint64_t tokens = num_of(au_json_get(limits, "tokens"), AGENT_TOKENS);
        uint64_t per_turn = tokens_of(au_json_get(block, "goal")) + tokens_of(au_json_get(block, "system"));
        yajl_val cap = au_json_get(limits, "cost_usd");
        const fab_price *price = first_entry(f, str_of(au_json_get(block, "role")), c);

        c->calls = (unsigned) MIN(turns, 1000u);
        c->output_tokens = MIN(turns * max_tokens, tokens);
        c->input_tokens = turns * per_turn;
        if (!price)
                return;
        c->usd = fab_cost(price, &(fab_usage){.input = c->input_tokens, .output = c->output_tokens});
        c->priced = true;
        snprintf(c->basis, sizeof(c->basis),
                 "%" PRIu64 " turns x %" PRIu64 " output tokens (at most %" PRIu64 ") at $%g/M, ~%" PRIu64
                 " input at $%g/M",
                 turns, max_tokens, tokens, price->output, c->input_tokens, price->input);
        if (YAJL_IS_NUMBER(cap)) {
                double limit = strtod(cap->u.number.r, NULL);
                if (limit > 0 && limit < c->usd) {
                        c->usd = limit;
                        snprintf(c->basis, sizeof(c->basis), "limits.cost_usd $%g", limit);
                }
        }
}

int orc_step_cost_estimate(const fab_fabric *f, yajl_val step, orc_step_cost *ret) {
        const char *kind = str_of(au_json_get(step, "kind"));
        orc_step_cost c = {};

        if (!kind || (strcmp(kind, "model") != 0 && strcmp(kind, "agent") != 0))
                return -ENOENT;
        if (strcmp(kind, "model") == 0)
                model_cost(f, au_json_get(step, "model"), &c);
        else
                agent_cost(f, au_json_get(step, "agent"), &c);
        *ret = c;
        return 0;
}
