/* SPDX-License-Identifier: MIT */
/*
 * fabric/metrics: per provider and model, requests, errors by kind, latency,
 * tokens, cost and cooldown state, in common/metrics' registry. Its metrics
 * take one label, so the label value joins the dimensions:
 * target="provider/model", target="provider/model/kind".
 */
#include <stdio.h>

#include "fabric/fabric-internal.h"

void fab_metrics_register(fab_fabric *f, au_metrics *m) {
        static const double bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

        f->m.requests = au_metrics_counter(m, "autoos_fabric_requests_total",
                                           "Model provider HTTP requests, by provider/model.", "target");
        f->m.errors =
                au_metrics_counter(m, "autoos_fabric_errors_total",
                                   "Failed model provider requests, by provider/model/kind.", "target");
        f->m.latency = au_metrics_histogram(m, "autoos_fabric_request_seconds",
                                            "Model provider request latency, all providers.", bounds,
                                            ELEMENTSOF(bounds));
        f->m.latency_sum =
                au_metrics_counter(m, "autoos_fabric_request_seconds_by_target_total",
                                   "Model provider request seconds, by provider/model.", "target");
        f->m.tokens = au_metrics_counter(
                m, "autoos_fabric_tokens_total",
                "Tokens used, by provider/model/component (input, cached, cache_write, output).", "target");
        f->m.cost = au_metrics_counter(m, "autoos_fabric_cost_usd_total",
                                       "Model cost in USD, by provider/model.", "target");
        f->m.cooldown = au_metrics_gauge(m, "autoos_fabric_cooldown",
                                         "1 while a provider is cooling down, by provider.", "provider");
        for (size_t i = 0; i < f->n_providers; i++)
                fab_metrics_cooldown(f, &f->providers[i], false);
}

void fab_metrics_attempt(fab_fabric *f, const fab_provider *p, const char *model, fab_error_kind kind,
                         uint64_t latency_ms) {
        char t[256];

        snprintf(t, sizeof(t), "%s/%s", p->name, model);
        if (f->m.requests)
                au_metric_add(f->m.requests, t, 1);
        if (f->m.latency_sum)
                au_metric_add(f->m.latency_sum, t, (double) latency_ms / 1000.0);
        if (f->m.latency)
                au_metric_observe(f->m.latency, (double) latency_ms / 1000.0);
        if (kind != FAB_ERR_NONE && f->m.errors) {
                snprintf(t, sizeof(t), "%s/%s/%s", p->name, model, fab_error_kind_name(kind));
                au_metric_add(f->m.errors, t, 1);
        }
}

void fab_metrics_usage(fab_fabric *f, const fab_provider *p, const char *model, const fab_usage *u,
                       double cost) {
        const struct {
                const char *name;
                uint64_t n;
        } parts[] = {{"input", u->input},
                     {"cached", u->cached},
                     {"cache_write", u->cache_write},
                     {"output", u->output}};
        char t[256];

        if (!f->m.tokens)
                return;
        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                snprintf(t, sizeof(t), "%s/%s/%s", p->name, model, parts[i].name);
                au_metric_add(f->m.tokens, t, (double) parts[i].n);
        }
        snprintf(t, sizeof(t), "%s/%s", p->name, model);
        au_metric_add(f->m.cost, t, cost);
}

void fab_metrics_cooldown(fab_fabric *f, const fab_provider *p, bool cooling) {
        if (f->m.cooldown)
                au_metric_set(f->m.cooldown, p->name, cooling ? 1 : 0);
}
