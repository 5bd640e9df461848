/* SPDX-License-Identifier: MIT */
/*
 * The adversarial report and the --only selection, shared by the catalogue's
 * front (adversarial.c) and the attacks against the fleet
 * (adversarial-fleet.c), so neither calls into the other's file.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "adversarial/adversarial.h"

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
