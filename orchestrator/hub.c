/* SPDX-License-Identifier: MIT */
/*
 * What the coordinator's threads share: its metrics (behind one lock), the
 * scheduler's wake-up and the "something finished" signal, the outbox of
 * cancels and events the scheduler thread writes to Redis, and a snapshot
 * of the nodes the monitor (nodes.c) keeps.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memory/streams.h"
#include "orchestrator/coordinator-internal.h"

/* ---- metrics ---------------------------------------------------------------- */

void orc_metric_add(orc_coord *c, au_metric *m, const char *label, double v) {
        pthread_mutex_lock(&c->metrics_lock);
        au_metric_add(m, label, v);
        pthread_mutex_unlock(&c->metrics_lock);
}

void orc_metric_observe(orc_coord *c, au_metric *m, double v) {
        pthread_mutex_lock(&c->metrics_lock);
        au_metric_observe(m, v);
        pthread_mutex_unlock(&c->metrics_lock);
}

void orc_metrics(orc_coord *c, orc_reply *ret) {
        pthread_mutex_lock(&c->metrics_lock);
        ret->body = au_metrics_render(c->metrics, &ret->len);
        pthread_mutex_unlock(&c->metrics_lock);
        /* the model providers' (fabric/metrics.c), rendered under the fabric's own lock, after ours */
        if (ret->body && c->fabric && c->fabric_metrics) {
                size_t len = 0;
                _cleanup_free_ char *more = fab_metrics_render(c->fabric, c->fabric_metrics, &len);
                char *both = more ? realloc(ret->body, ret->len + len + 1) : NULL;
                if (both) {
                        memcpy(both + ret->len, more, len);
                        ret->len += len;
                        both[ret->len] = '\0';
                        ret->body = both;
                } else {
                        free(ret->body);
                        ret->body = NULL;
                }
        }
        ret->status = ret->body ? 200 : 500;
        if (!ret->body)
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
}

int orc_metrics_setup(orc_coord *c) {
        static const double latency[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
        int r = au_metrics_new(&c->metrics);
        if (r < 0)
                return r;
        c->m_workflows =
                au_metrics_gauge(c->metrics, "autoos_coordinator_workflows", "Workflows by state.", "state");
        c->m_steps = au_metrics_gauge(c->metrics, "autoos_coordinator_steps", "Steps by state.", "state");
        c->m_dispatched = au_metrics_counter(c->metrics, "autoos_coordinator_steps_dispatched_total",
                                             "Step attempts placed on nodes.", NULL);
        c->m_results = au_metrics_counter(c->metrics, "autoos_coordinator_results_total",
                                          "Results applied, by outcome.", "outcome");
        c->m_dispatch_latency = au_metrics_histogram(
                c->metrics, "autoos_coordinator_dispatch_to_result_seconds",
                "From a step's dispatch to its result being applied.", latency, ELEMENTSOF(latency));
        c->m_audit_rows = au_metrics_counter(c->metrics, "autoos_coordinator_audit_rows_total",
                                             "Audit rows written.", NULL);
        c->m_nodes = au_metrics_gauge(c->metrics, "autoos_coordinator_nodes", "Nodes by state.", "state");
        c->m_node_lost = au_metrics_counter(c->metrics, "autoos_coordinator_nodes_lost_total",
                                            "Nodes declared lost.", NULL);
        c->m_late = au_metrics_counter(c->metrics, "autoos_coordinator_late_results_total",
                                       "Results of attempts already given up or duplicated.", NULL);
        c->m_api_db_errors = au_metrics_counter(c->metrics, "autoos_coordinator_db_errors_total",
                                                "PostgreSQL errors, by where they happened.", "where");
        c->m_http_requests = au_metrics_counter(c->metrics, "autoos_coordinator_http_requests_total",
                                                "HTTP requests answered, by status code.", "code");
        if (!c->m_workflows || !c->m_steps || !c->m_dispatched || !c->m_results || !c->m_dispatch_latency ||
            !c->m_audit_rows || !c->m_nodes || !c->m_node_lost || !c->m_late || !c->m_api_db_errors ||
            !c->m_http_requests)
                return -ENOMEM;
        return 0;
}

void orc_count_request(orc_coord *c, unsigned status) {
        char code[16];
        snprintf(code, sizeof(code), "%u", status);
        orc_metric_add(c, c->m_http_requests, code, 1);
}

/* ---- wake-ups ---------------------------------------------------------------- */

void orc_wake_scheduler(orc_coord *c) {
        pthread_mutex_lock(&c->wake_lock);
        c->wake = true;
        pthread_cond_signal(&c->wake_cond);
        pthread_mutex_unlock(&c->wake_lock);
}

void orc_signal_done(orc_coord *c) {
        pthread_mutex_lock(&c->done_lock);
        c->done_gen++;
        pthread_cond_broadcast(&c->done_cond);
        pthread_mutex_unlock(&c->done_lock);
}

static void outbox_add(orc_coord *c, const char *key, const char *run_id) {
        char **n;

        pthread_mutex_lock(&c->outbox_lock);
        n = reallocarray(c->outbox, c->n_outbox + 2, sizeof(char *));
        if (n) {
                c->outbox = n;
                c->outbox[c->n_outbox] = strdup(key);
                c->outbox[c->n_outbox + 1] = strdup(run_id);
                if (c->outbox[c->n_outbox] && c->outbox[c->n_outbox + 1])
                        c->n_outbox += 2;
                else {
                        free(c->outbox[c->n_outbox]);
                        free(c->outbox[c->n_outbox + 1]);
                }
        }
        pthread_mutex_unlock(&c->outbox_lock);
        orc_wake_scheduler(c);
}

void orc_outbox_cancel(orc_coord *c, const char *node, const char *run_id) {
        char key[256];
        mem_stream_jobs(key, sizeof(key), node);
        outbox_add(c, key, run_id);
}

void orc_outbox_event(orc_coord *c, const char *json) {
        if (json)
                outbox_add(c, MEM_STREAM_EVENTS, json);
}

/* ---- the nodes, as the monitor last saw them ---------------------------------- */

size_t orc_nodes_snapshot(orc_coord *c, orc_node *out, size_t max) {
        size_t n = 0;
        pthread_mutex_lock(&c->nodes_lock);
        /* A draining node takes no new step: placement does not see it (its steps in flight finish). */
        for (size_t i = 0; i < c->n_nodes && n < max; i++)
                if (!c->nodes[i].draining)
                        out[n++] = c->nodes[i];
        pthread_mutex_unlock(&c->nodes_lock);
        return n;
}
