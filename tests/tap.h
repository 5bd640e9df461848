/* SPDX-License-Identifier: MIT */
/* A small TAP producer for C tests (run by automake's tap-driver.sh). */
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n;
static int tap_failed;

static inline void tap_plan(int n) {
        printf("1..%d\n", n);
        fflush(stdout);
}

static inline __attribute__((format(printf, 2, 3))) int ok(int cond, const char *fmt, ...) {
        va_list ap;
        printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
        if (!cond)
                tap_failed++;
        return cond;
}

static inline __attribute__((format(printf, 1, 2))) void diag(const char *fmt, ...) {
        va_list ap;
        printf("# ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

static inline __attribute__((format(printf, 2, 3))) void skip(int n, const char *fmt, ...) {
        char why[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        for (int i = 0; i < n; i++)
                printf("ok %d # SKIP %s\n", ++tap_n, why);
        fflush(stdout);
}

/* Whole-file skip: a plan of zero with the reason. */
static inline __attribute__((noreturn)) void skip_all(const char *why) {
        printf("1..0 # SKIP %s\n", why);
        fflush(stdout);
        exit(0);
}

/* Ends a test with no plan given up front. */
static inline int done_testing(void) {
        printf("1..%d\n", tap_n);
        fflush(stdout);
        return tap_failed ? 1 : 0;
}
