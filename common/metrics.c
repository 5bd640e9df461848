/* SPDX-License-Identifier: MIT */
/*
 * The metrics registry and its Prometheus text rendering (exposition format
 * 0.0.4): "# HELP" and "# TYPE" lines, then one sample per line; label
 * values sorted so that the output is stable; histogram buckets cumulative.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/metrics.h"

#define MAX_LABEL_VALUES 1024
#define OTHER_LABEL_VALUE "_other"

typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

typedef struct series {
        char *label_value; /* NULL for the one series of an unlabelled metric */
        double value;
} series;

struct au_metric {
        metric_type type;
        char *name, *help, *label;
        series *series;
        size_t n_series, n_alloc;
        /* histograms: n_bounds + 1 bucket counts (the last one is +Inf), not cumulative */
        double *bounds;
        size_t n_bounds;
        uint64_t *buckets;
        double sum;
        uint64_t count;
        au_metric *next;
};

struct au_metrics {
        au_metric *first, *last;
};

int au_metrics_new(au_metrics **ret) {
        au_metrics *m = calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        *ret = m;
        return 0;
}

static void metric_free(au_metric *x) {
        for (size_t i = 0; i < x->n_series; i++)
                free(x->series[i].label_value);
        free(x->series);
        free(x->bounds);
        free(x->buckets);
        free(x->name);
        free(x->help);
        free(x->label);
        free(x);
}

au_metrics *au_metrics_free(au_metrics *m) {
        if (!m)
                return NULL;
        while (m->first) {
                au_metric *x = m->first;
                m->first = x->next;
                metric_free(x);
        }
        free(m);
        return NULL;
}

static bool name_valid(const char *s, bool colons) {
        if (!s || !*s)
                return false;
        for (const char *p = s; *p; p++) {
                bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                             (colons && *p == ':');
                if (!alpha && !(p > s && *p >= '0' && *p <= '9'))
                        return false;
        }
        return true;
}

static bool streq_null(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static au_metric *find_metric(const au_metrics *m, const char *name) {
        for (au_metric *x = m->first; x; x = x->next)
                if (strcmp(x->name, name) == 0)
                        return x;
        return NULL;
}

static au_metric *metric_new(au_metrics *m, metric_type type, const char *name, const char *help,
                             const char *label) {
        au_metric *x;

        if (!m || !name_valid(name, true))
                return NULL;
        /* Label names starting with "__" are reserved; "le" belongs to histograms. */
        if (label && (!name_valid(label, false) || strncmp(label, "__", 2) == 0 || strcmp(label, "le") == 0))
                return NULL;
        x = find_metric(m, name);
        if (x)
                /* Registering the same metric twice hands back the first one. */
                return x->type == type && streq_null(x->label, label) ? x : NULL;

        x = calloc(1, sizeof(*x));
        if (!x)
                return NULL;
        x->type = type;
        x->name = strdup(name);
        x->help = help ? strdup(help) : NULL;
        x->label = label ? strdup(label) : NULL;
        if (!x->name || (help && !x->help) || (label && !x->label)) {
                metric_free(x);
                return NULL;
        }
        if (!label && type != METRIC_HISTOGRAM) {
                /* The one series exists from the start, so that it renders as 0. */
                x->series = calloc(1, sizeof(series));
                if (!x->series) {
                        metric_free(x);
                        return NULL;
                }
                x->n_series = x->n_alloc = 1;
        }
        return x;
}

static au_metric *metric_link(au_metrics *m, au_metric *x) {
        if (!x || x->next || m->last == x)
                return x; /* NULL, or already registered */
        if (m->last)
                m->last->next = x;
        else
                m->first = x;
        m->last = x;
        return x;
}

au_metric *au_metrics_counter(au_metrics *m, const char *name, const char *help, const char *label) {
        return metric_link(m, metric_new(m, METRIC_COUNTER, name, help, label));
}

au_metric *au_metrics_gauge(au_metrics *m, const char *name, const char *help, const char *label) {
        return metric_link(m, metric_new(m, METRIC_GAUGE, name, help, label));
}

au_metric *au_metrics_histogram(au_metrics *m, const char *name, const char *help, const double *bounds,
                                size_t n_bounds) {
        au_metric *x;

        if (n_bounds > 0 && !bounds)
                return NULL;
        for (size_t i = 0; i < n_bounds; i++)
                if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                        return NULL;
        x = m ? find_metric(m, name ? name : "") : NULL;
        if (x) {
                bool same = x->type == METRIC_HISTOGRAM && x->n_bounds == n_bounds &&
                            (n_bounds == 0 || memcmp(x->bounds, bounds, n_bounds * sizeof(double)) == 0);
                return same ? x : NULL;
        }
        x = metric_new(m, METRIC_HISTOGRAM, name, help, NULL);
        if (!x)
                return NULL;
        x->n_bounds = n_bounds;
        x->bounds = n_bounds > 0 ? malloc(n_bounds * sizeof(double)) : NULL;
        x->buckets = calloc(n_bounds + 1, sizeof(uint64_t));
        if ((n_bounds > 0 && !x->bounds) || !x->buckets) {
                metric_free(x);
                return NULL;
        }
        if (n_bounds > 0)
                memcpy(x->bounds, bounds, n_bounds * sizeof(double));
        return metric_link(m, x);
}

/* The series for label_value, created on first use; NULL on ENOMEM. */
static series *get_series(au_metric *x, const char *label_value) {
        _cleanup_free_ char *fixed = NULL;
        size_t len;

        if (!x->label)
                return &x->series[0];
        if (!label_value)
                label_value = "";
        len = strlen(label_value);
        /* Prometheus wants UTF-8: repair once here, so that lookups stay stable. */
        if (!au_utf8_valid(label_value, len)) {
                fixed = au_utf8_sanitize(label_value, len, NULL);
                if (!fixed)
                        return NULL;
                label_value = fixed;
        }
        for (size_t i = 0; i < x->n_series; i++)
                if (strcmp(x->series[i].label_value, label_value) == 0)
                        return &x->series[i];
        if (x->n_series >= MAX_LABEL_VALUES) {
                /* Bounded cardinality: the rest share one series. */
                for (size_t i = MAX_LABEL_VALUES; i < x->n_series; i++)
                        if (strcmp(x->series[i].label_value, OTHER_LABEL_VALUE) == 0)
                                return &x->series[i];
                label_value = OTHER_LABEL_VALUE;
        }
        if (x->n_series == x->n_alloc) {
                size_t n = MAX(x->n_alloc * 2, (size_t) 8);
                series *ns = realloc(x->series, n * sizeof(series));
                if (!ns)
                        return NULL;
                x->series = ns;
                x->n_alloc = n;
        }
        char *v = strdup(label_value);
        if (!v)
                return NULL;
        x->series[x->n_series] = (series){.label_value = v};
        return &x->series[x->n_series++];
}

void au_metric_add(au_metric *c, const char *label_value, double v) {
        series *s;

        if (!c || c->type == METRIC_HISTOGRAM || isnan(v))
                return;
        /* Counters only go up. */
        if (c->type == METRIC_COUNTER && v < 0)
                return;
        s = get_series(c, label_value);
        if (s)
                s->value += v;
}

void au_metric_set(au_metric *g, const char *label_value, double v) {
        series *s;

        if (!g || g->type != METRIC_GAUGE)
                return;
        s = get_series(g, label_value);
        if (s)
                s->value = v;
}

void au_metric_observe(au_metric *h, double v) {
        size_t i;

        if (!h || h->type != METRIC_HISTOGRAM || isnan(v))
                return;
        for (i = 0; i < h->n_bounds && v > h->bounds[i]; i++)
                ;
        h->buckets[i]++;
        h->sum += v;
        h->count++;
}

/* ---- rendering ------------------------------------------------------------ */

typedef struct outbuf {
        au_buf b;
        bool oom; /* an append failed: the text is incomplete */
} outbuf;

static void out_mem(outbuf *o, const char *s, size_t n) {
        if (o->oom)
                return;
        if (au_buf_append(&o->b, s, n) < 0)
                o->oom = true;
}

static void out_str(outbuf *o, const char *s) {
        out_mem(o, s, strlen(s));
}

/* Escapes backslash and newline (and the double quote in label values), as the format asks. */
static void out_escaped(outbuf *o, const char *s, bool quote) {
        const char *run = s;

        for (; *s; s++) {
                const char *esc = *s == '\\'           ? "\\\\"
                                  : *s == '\n'         ? "\\n"
                                  : quote && *s == '"' ? "\\\""
                                                       : NULL;
                if (!esc)
                        continue;
                out_mem(o, run, (size_t) (s - run));
                out_str(o, esc);
                run = s + 1;
        }
        out_mem(o, run, (size_t) (s - run));
}

/* Shortest text that reads back as v; "+Inf", "-Inf" and "NaN" as Prometheus spells them. */
static void format_double(char buf[static 32], double v) {
        if (isnan(v))
                snprintf(buf, 32, "NaN");
        else if (isinf(v))
                snprintf(buf, 32, "%s", v > 0 ? "+Inf" : "-Inf");
        else {
                snprintf(buf, 32, "%.15g", v);
                if (strtod(buf, NULL) != v)
                        snprintf(buf, 32, "%.17g", v);
        }
}

static void out_double(outbuf *o, double v) {
        char buf[32];

        format_double(buf, v);
        out_str(o, buf);
}

static void out_uint(outbuf *o, uint64_t v) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%llu", (unsigned long long) v);
        out_str(o, buf);
}

static int cmp_series(const void *a, const void *b) {
        const series *x = *(const series *const *) a, *y = *(const series *const *) b;

        return strcmp(x->label_value, y->label_value);
}

static void render_header(outbuf *o, const au_metric *x) {
        static const char *const type_names[] = {
                [METRIC_COUNTER] = "counter",
                [METRIC_GAUGE] = "gauge",
                [METRIC_HISTOGRAM] = "histogram",
        };

        if (x->help && x->help[0]) {
                out_str(o, "# HELP ");
                out_str(o, x->name);
                out_str(o, " ");
                out_escaped(o, x->help, false);
                out_str(o, "\n");
        }
        out_str(o, "# TYPE ");
        out_str(o, x->name);
        out_str(o, " ");
        out_str(o, type_names[x->type]);
        out_str(o, "\n");
}

static int render_series(outbuf *o, const au_metric *x) {
        _cleanup_free_ const series **sorted = NULL;

        if (!x->label) {
                out_str(o, x->name);
                out_str(o, " ");
                out_double(o, x->series[0].value);
                out_str(o, "\n");
                return 0;
        }
        if (x->n_series == 0)
                return 0;
        sorted = malloc(x->n_series * sizeof(*sorted));
        if (!sorted)
                return -ENOMEM;
        for (size_t i = 0; i < x->n_series; i++)
                sorted[i] = &x->series[i];
        qsort(sorted, x->n_series, sizeof(*sorted), cmp_series);
        for (size_t i = 0; i < x->n_series; i++) {
                out_str(o, x->name);
                out_str(o, "{");
                out_str(o, x->label);
                out_str(o, "=\"");
                out_escaped(o, sorted[i]->label_value, true);
                out_str(o, "\"} ");
                out_double(o, sorted[i]->value);
                out_str(o, "\n");
        }
        return 0;
}

static void render_histogram(outbuf *o, const au_metric *x) {
        uint64_t cumulative = 0;

        for (size_t i = 0; i <= x->n_bounds; i++) {
                char le[32];

                if (i < x->n_bounds)
                        format_double(le, x->bounds[i]);
                else
                        snprintf(le, sizeof(le), "+Inf");
                cumulative += x->buckets[i];
                out_str(o, x->name);
                out_str(o, "_bucket{le=\"");
                out_str(o, le);
                out_str(o, "\"} ");
                out_uint(o, cumulative);
                out_str(o, "\n");
        }
        out_str(o, x->name);
        out_str(o, "_sum ");
        out_double(o, x->sum);
        out_str(o, "\n");
        out_str(o, x->name);
        out_str(o, "_count ");
        out_uint(o, x->count);
        out_str(o, "\n");
}

char *au_metrics_render(const au_metrics *m, size_t *ret_len) {
        outbuf o = {};

        out_mem(&o, "", 0); /* an empty registry renders as "", not NULL */
        for (const au_metric *x = m ? m->first : NULL; x && !o.oom; x = x->next) {
                render_header(&o, x);
                if (x->type == METRIC_HISTOGRAM)
                        render_histogram(&o, x);
                else if (render_series(&o, x) < 0)
                        o.oom = true;
        }
        if (o.oom) {
                au_buf_done(&o.b);
                return NULL;
        }
        return au_buf_steal(&o.b, ret_len);
}
