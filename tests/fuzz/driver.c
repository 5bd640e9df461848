/* SPDX-License-Identifier: MIT */
/*
 * A main() for the fuzz harnesses without libFuzzer: feeds each file named
 * on the command line (a directory: each regular file in it, in name order)
 * to LLVMFuzzerTestOneInput(), in a buffer of exactly its size so that the
 * sanitizers (or valgrind) see any read past the end. tests/fuzz/test-corpus.sh
 * runs it over a harness's corpus and crash reproducers.
 *
 * Prints "# <file>" before each input, so a crash names the input that
 * caused it, and "inputs: N" at the end. Exits 0 when every input ran, 1
 * when a file could not be read; a finding in the code under test aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

#define MAX_INPUT_BYTES (64u << 20)

static unsigned n_inputs;

static int run_file(const char *path) {
        FILE *f = fopen(path, "re");
        struct stat st;
        uint8_t *buf;
        size_t n;

        if (!f || fstat(fileno(f), &st) < 0 || st.st_size > MAX_INPUT_BYTES) {
                fprintf(stderr, "driver: %s: %s\n", path, f ? "cannot read it" : strerror(errno));
                if (f)
                        fclose(f);
                return -1;
        }
        /* An empty input gets a 1-byte allocation, still read as 0 bytes. */
        buf = malloc(st.st_size > 0 ? (size_t) st.st_size : 1);
        if (!buf) {
                fclose(f);
                return -1;
        }
        n = fread(buf, 1, (size_t) st.st_size, f);
        fclose(f);
        if (n != (size_t) st.st_size) {
                fprintf(stderr, "driver: %s: short read\n", path);
                free(buf);
                return -1;
        }
        printf("# %s\n", path);
        fflush(stdout);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        n_inputs++;
        return 0;
}

static int filter_regular(const struct dirent *d) {
        return d->d_name[0] != '.';
}

static int run_path(const char *path) {
        struct dirent **names;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return run_file(path);
        n = scandir(path, &names, filter_regular, alphasort);
        if (n < 0) {
                fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
                return -1;
        }
        for (int i = 0; i < n; i++) {
                char *p = NULL;

                if (asprintf(&p, "%s/%s", path, names[i]->d_name) < 0)
                        r = -1;
                else if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && run_file(p) < 0)
                        r = -1;
                free(p);
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        int r = 0;

        LLVMFuzzerInitialize(&argc, &argv);
        for (int i = 1; i < argc; i++)
                if (run_path(argv[i]) < 0)
                        r = 1;
        printf("inputs: %u\n", n_inputs);
        return r;
}
