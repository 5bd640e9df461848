/* SPDX-License-Identifier: MIT */
/*
 * The adversarial report (its rows and how they print: text, TAP, JSON,
 * markdown) and the --only selection, shared by the sandbox catalogue
 * (engine.c) and the attacks against the fleet (fleet.c), so neither calls
 * into the other's file.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adversarial/adversarial.h"
#include "common/json.h"
#include "common/macro.h"

void adv_append(char *buf, size_t size, const char *fmt, ...) {
        size_t n = strnlen(buf, size);
        if (n + 1 >= size)
                return;
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(buf + n, size - n, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t) k >= size - n && size > 4)
                memcpy(buf + size - 4, "...", 4);
}

void adv_setf(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t) k >= size && size > 4)
                memcpy(buf + size - 4, "...", 4);
}

int adv_report_add(adv_report *r, const adv_row *row) {
        if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 64;
                adv_row *nr = realloc(r->rows, cap * sizeof(adv_row));
                if (!nr)
                        return -ENOMEM;
                r->rows = nr;
                r->cap = cap;
        }
        r->rows[r->n++] = *row;
        return 0;
}

void adv_report_done(adv_report *r) {
        free(r->rows);
        r->rows = NULL;
        r->n = r->cap = 0;
}

/* only: NULL, or a comma-separated list of group and attack names. */
bool adv_selected(const char *only, const char *group, const char *name) {
        if (!only || !*only)
                return true;
        for (const char *s = only; *s;) {
                size_t n = strcspn(s, ",");
                if ((strlen(group) == n && strncmp(s, group, n) == 0) ||
                    (strlen(name) == n && strncmp(s, name, n) == 0))
                        return true;
                s += n;
                if (*s == ',')
                        s++;
        }
        return false;
}

const char *adv_verdict_word(adv_verdict v) {
        switch (v) {
        case ADV_CONTAINED:
                return "contained";
        case ADV_NOT_CONTAINED:
                return "not contained";
        case ADV_SKIPPED:
                return "skipped";
        default:
                return "error";
        }
}

static void summary(const adv_report *rep, char *buf, size_t size) {
        size_t c[4] = {};
        for (size_t i = 0; i < rep->n; i++)
                c[rep->rows[i].verdict]++;
        snprintf(buf, size, "%zu attacks: %zu contained, %zu not contained, %zu skipped, %zu errors", rep->n,
                 c[ADV_CONTAINED], c[ADV_NOT_CONTAINED], c[ADV_SKIPPED], c[ADV_ERROR]);
}

/* A cell of a markdown table: no newline, '|' escaped. */
static void md_cell(FILE *f, const char *s) {
        fputc(' ', f);
        for (; *s; s++) {
                if (*s == '|')
                        fputs("\\|", f);
                else if (*s == '\n' || *s == '\r')
                        fputc(' ', f);
                else
                        fputc(*s, f);
        }
        fputs(" |", f);
}

static void print_markdown(const adv_report *rep, FILE *f) {
        char sum[160];
        fputs("| attack | group | expectation | observed | denied syscalls | verdict |\n", f);
        fputs("|---|---|---|---|---|---|\n", f);
        for (size_t i = 0; i < rep->n; i++) {
                const adv_row *r = &rep->rows[i];
                char verdict[300];
                fputc('|', f);
                md_cell(f, r->name);
                md_cell(f, r->group);
                md_cell(f, r->expectation);
                md_cell(f, r->observed);
                md_cell(f, r->denied[0] ? r->denied : "-");
                if (r->verdict == ADV_CONTAINED || !r->note[0])
                        snprintf(verdict, sizeof(verdict), "%s%s",
                                 r->verdict == ADV_NOT_CONTAINED ? "**" : "", adv_verdict_word(r->verdict));
                else
                        snprintf(verdict, sizeof(verdict), "%s%s%s: %s",
                                 r->verdict == ADV_NOT_CONTAINED ? "**" : "", adv_verdict_word(r->verdict),
                                 r->verdict == ADV_NOT_CONTAINED ? "**" : "", r->note);
                if (r->verdict == ADV_NOT_CONTAINED && !r->note[0])
                        strcat(verdict, "**");
                md_cell(f, verdict);
                fputc('\n', f);
        }
        summary(rep, sum, sizeof(sum));
        fprintf(f, "\n%s\n", sum);
}

/* TAP: '#' in a description would start a directive. */
static void tap_text(FILE *f, const char *s) {
        for (; *s; s++)
                fputc(*s == '#' ? '_' : (*s == '\n' ? ' ' : *s), f);
}

static void print_tap(const adv_report *rep, FILE *f) {
        char sum[160];
        for (size_t i = 0; i < rep->n; i++) {
                const adv_row *r = &rep->rows[i];
                fprintf(f, "%s %zu - %s/%s: ",
                        r->verdict == ADV_CONTAINED || r->verdict == ADV_SKIPPED ? "ok" : "not ok", i + 1,
                        r->group, r->name);
                if (r->verdict == ADV_SKIPPED) {
                        tap_text(f, r->expectation);
                        fputs(" # SKIP ", f);
                        tap_text(f, r->note[0] ? r->note : r->observed);
                        fputc('\n', f);
                        continue;
                }
                if (r->verdict != ADV_CONTAINED)
                        fprintf(f, "%s: ", r->verdict == ADV_ERROR ? "ERROR" : "NOT CONTAINED");
                tap_text(f, r->expectation);
                fputc('\n', f);
                if (r->observed[0]) {
                        fputs("#   observed: ", f);
                        tap_text(f, r->observed);
                        fputc('\n', f);
                }
                if (r->denied[0])
                        fprintf(f, "#   denied: %s\n", r->denied);
                if (r->note[0] && r->verdict != ADV_CONTAINED) {
                        fputs("#   ", f);
                        tap_text(f, r->note);
                        fputc('\n', f);
                }
        }
        summary(rep, sum, sizeof(sum));
        fprintf(f, "1..%zu\n# %s\n", rep->n, sum);
}

static int print_json(const adv_report *rep, const char *trust, FILE *f) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        char sum[160];
        size_t c[4] = {};
        if (!g)
                return -ENOMEM;
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "trust", trust));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "attacks"));
        AU_JSON_GEN_TRY(au_json_gen_array_open(g));
        for (size_t i = 0; i < rep->n; i++) {
                const adv_row *r = &rep->rows[i];
                static const char *const words[] = {"contained", "not_contained", "skipped", "error"};
                c[r->verdict]++;
                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "group", r->group));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "name", r->name));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "expectation", r->expectation));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "observed", r->observed));
                AU_JSON_GEN_TRY(au_json_gen_string(g, "denied_syscalls"));
                AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                char denied[sizeof(r->denied)];
                snprintf(denied, sizeof(denied), "%s", r->denied);
                char *save = NULL;
                for (char *t = strtok_r(denied, ",", &save); t; t = strtok_r(NULL, ",", &save))
                        AU_JSON_GEN_TRY(au_json_gen_string(g, t));
                AU_JSON_GEN_TRY(au_json_gen_array_close(g));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "note", r->note));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "verdict", words[r->verdict]));
                AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "ms", (uint64_t) r->ms));
                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        }
        AU_JSON_GEN_TRY(au_json_gen_array_close(g));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "summary"));
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "attacks", rep->n));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "contained", c[ADV_CONTAINED]));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "not_contained", c[ADV_NOT_CONTAINED]));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "skipped", c[ADV_SKIPPED]));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "errors", c[ADV_ERROR]));
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        _cleanup_free_ char *s = au_json_gen_finish(g, NULL);
        if (!s)
                return -ENOMEM;
        fprintf(f, "%s\n", s);
        (void) sum;
        return 0;
}

static void print_text(const adv_report *rep, FILE *f) {
        char sum[160];
        for (size_t i = 0; i < rep->n; i++) {
                const adv_row *r = &rep->rows[i];
                char name[100];
                snprintf(name, sizeof(name), "%s/%s", r->group, r->name);
                fprintf(f, "%-14s %-36s %s", adv_verdict_word(r->verdict), name, r->observed);
                if (r->denied[0])
                        fprintf(f, " [denied: %s]", r->denied);
                if (r->note[0] && r->verdict != ADV_CONTAINED)
                        fprintf(f, " -- %s", r->note);
                fputc('\n', f);
        }
        summary(rep, sum, sizeof(sum));
        fprintf(f, "%s\n", sum);
}

int adv_report_print(const adv_report *rep, adv_format format, const char *trust, FILE *f) {
        switch (format) {
        case ADV_FORMAT_TAP:
                print_tap(rep, f);
                return 0;
        case ADV_FORMAT_JSON:
                return print_json(rep, trust, f);
        case ADV_FORMAT_MARKDOWN:
                print_markdown(rep, f);
                return 0;
        default:
                print_text(rep, f);
                return 0;
        }
}

void adv_proc_output(void *userdata, int stream, const char *buf, size_t len) {
        adv_proc *p = userdata;
        if (stream != 1 || p->n_head >= sizeof(p->head) - 1)
                return;
        size_t n = MIN(len, sizeof(p->head) - 1 - p->n_head);
        memcpy(p->head + p->n_head, buf, n);
        p->n_head += n;
        p->head[p->n_head] = '\0';
        if (strncmp(p->head, "READY\n", 6) == 0 || strstr(p->head, "\nREADY\n"))
                p->ready = true;
}
