/* SPDX-License-Identifier: MIT */
/*
 * seal-job NODE_KEY_FILE NODE < spec.json: prints "<token> <expires> <auth>",
 * the fields a spec entry of autoos:jobs:NODE carries (doc/trust.md): a
 * made-up dispatch token (unseen by the node), an expiry an hour from now and
 * the MAC of (node, "spec", json, token, expires) under NODE's key. For tests
 * that send a node a spec the job MAC accepts but whose contents were
 * altered (test-secrets: a tampered secrets_sealed blob).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memory/seal.h"

int main(int argc, char **argv) {
        uint8_t key[MEM_SEAL_KEY_BYTES], raw[32];
        char token[MEM_SEAL_HEX_LEN + 1], expires[24], auth[MEM_SEAL_HEX_LEN + 1];
        au_error err = {0};
        size_t len = 0, cap = 1 << 16;
        char *json = malloc(cap);
        struct timespec ts;

        if (argc != 3 || !json) {
                fprintf(stderr, "usage: seal-job NODE_KEY_FILE NODE < spec.json\n");
                return 2;
        }
        if (mem_seal_key_load(argv[1], key, &err) < 0) {
                fprintf(stderr, "seal-job: %s\n", err.msg);
                return 1;
        }
        for (size_t n; (n = fread(json + len, 1, cap - len, stdin)) > 0;) {
                len += n;
                if (len == cap && !(json = realloc(json, cap *= 2)))
                        return 1;
        }
        while (len > 0 && json[len - 1] == '\n')
                len--;
        if (mem_seal_random(raw, sizeof(raw)) < 0)
                return 1;
        mem_seal_hex(raw, sizeof(raw), token);
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(expires, sizeof(expires), "%lld", (long long) ts.tv_sec * 1000 + 3600 * 1000);
        const char *parts[] = {argv[2], "spec", json, token, expires};
        size_t lens[] = {strlen(argv[2]), 4, len, strlen(token), strlen(expires)};
        if (mem_seal_mac(key, MEM_SEAL_JOB, parts, lens, 5, auth) < 0)
                return 1;
        printf("%s %s %s\n", token, expires, auth);
        free(json);
        return 0;
}
