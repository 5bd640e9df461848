/* SPDX-License-Identifier: MIT */
/*
 * The libFuzzer entry points each tests/fuzz/fuzz-*.c harness defines. The
 * same harness links either with libFuzzer (make fuzz: clang,
 * -fsanitize=fuzzer) or with driver.c's main(), which feeds it files (make
 * check: the corpus and the crash reproducers in tests/fuzz/regressions).
 *
 * A harness returns 0 and never exits; it abort()s when it sees a broken
 * promise (a round trip that does not hold), so that libFuzzer keeps the
 * input as a crash.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Runs once before the first input (every harness defines it, if only to return 0). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

static inline _Noreturn void fuzz_fail(const char *file, int line, const char *what) {
        fprintf(stderr, "%s:%d: broken promise: %s\n", file, line, what);
        abort();
}

/* Aborts with a message on stderr: a finding, kept by libFuzzer as a crash. */
#define FUZZ_ASSERT(cond)                                     \
        do {                                                  \
                if (!(cond))                                  \
                        fuzz_fail(__FILE__, __LINE__, #cond); \
        } while (0)
