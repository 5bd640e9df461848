/* SPDX-License-Identifier: MIT */
/*
 * A metrics registry rendered in the Prometheus text exposition format
 * (version 0.0.4). Counters, gauges and histograms, each with at most one
 * label dimension (e.g. outcome="oom", syscall="mount"). Single-threaded.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct au_metrics au_metrics;
typedef struct au_metric au_metric;

int au_metrics_new(au_metrics **ret);
au_metrics *au_metrics_free(au_metrics *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(au_metrics *, au_metrics_free);

/*
 * Registers a metric. name follows Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*);
 * label is the label's name or NULL for none. Histograms take ascending
 * bucket bounds (+Inf is implicit). The registry owns the metric.
 */
au_metric *au_metrics_counter(au_metrics *m, const char *name, const char *help, const char *label);
au_metric *au_metrics_gauge(au_metrics *m, const char *name, const char *help, const char *label);
au_metric *au_metrics_histogram(au_metrics *m, const char *name, const char *help, const double *bounds,
                                size_t n_bounds);

/* label_value is NULL for unlabelled metrics; label values are escaped on output. At most 1024 label values
 * per metric (further ones go to "_other"). */
void au_metric_add(au_metric *c, const char *label_value, double v);
void au_metric_set(au_metric *g, const char *label_value, double v);
void au_metric_observe(au_metric *h, double v);

/* The whole registry as text; caller frees. NULL on ENOMEM. */
char *au_metrics_render(const au_metrics *m, size_t *ret_len);
