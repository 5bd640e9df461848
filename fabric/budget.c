/* SPDX-License-Identifier: MIT */
/* fabric/budget: spending per workflow and per key, in USD. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "fabric/fabric-internal.h"

fab_budget *fab_budget_find(fab_fabric *f, fab_scope scope, const char *id, bool create) {
        fab_budget *b;

        if (!id)
                return NULL;
        for (size_t i = 0; i < f->n_budgets; i++)
                if (f->budgets[i].scope == scope && strcmp(f->budgets[i].id, id) == 0)
                        return &f->budgets[i];
        if (!create)
                return NULL;
        b = realloc(f->budgets, (f->n_budgets + 1) * sizeof(*b));
        if (!b)
                return NULL;
        f->budgets = b;
        b = &f->budgets[f->n_budgets];
        *b = (fab_budget){.scope = scope, .id = strdup(id), .limit = -1};
        if (!b->id)
                return NULL;
        f->n_budgets++;
        return b;
}

int fab_budget_set(fab_fabric *f, fab_scope scope, const char *id, double limit_usd) {
        fab_budget *b;

        if (!f || !id || !*id || isnan(limit_usd) || (scope != FAB_SCOPE_WORKFLOW && scope != FAB_SCOPE_KEY))
                return -EINVAL;
        pthread_mutex_lock(&f->lock);
        b = fab_budget_find(f, scope, id, true);
        if (b)
                b->limit = limit_usd < 0 ? -1 : limit_usd;
        pthread_mutex_unlock(&f->lock);
        return b ? 0 : -ENOMEM;
}

double fab_budget_spent(const fab_fabric *f, fab_scope scope, const char *id) {
        fab_budget *b;
        double spent;

        pthread_mutex_lock((pthread_mutex_t *) &f->lock);
        b = fab_budget_find((fab_fabric *) f, scope, id, false);
        spent = b ? b->spent : 0;
        pthread_mutex_unlock((pthread_mutex_t *) &f->lock);
        return spent;
}

bool fab_budget_exhausted(const fab_fabric *f, fab_scope scope, const char *id) {
        fab_budget *b;
        bool spent;

        if (!f || !id)
                return false;
        pthread_mutex_lock((pthread_mutex_t *) &f->lock);
        b = fab_budget_find((fab_fabric *) f, scope, id, false);
        spent = b && b->limit >= 0 && b->spent >= b->limit;
        pthread_mutex_unlock((pthread_mutex_t *) &f->lock);
        return spent;
}
