/* SPDX-License-Identifier: MIT */
/*
 * seal-result FLEET_KEY_FILE NODE_KEY_FILE NODE RUN_ID < result.json: prints
 * "<token> <auth>", the fields a node's result entry on autoos:results
 * carries (DESIGN.md "Node <-> coordinator"): the run's dispatch token for
 * NODE (from the fleet key) and NODE's MAC of (node, token, json). For tests
 * that send a result as a node would (tests/lib-fleet.sh result_xadd).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory/seal.h"

int main(int argc, char **argv) {
        uint8_t fleet[MEM_SEAL_KEY_BYTES], key[MEM_SEAL_KEY_BYTES];
        char token[MEM_SEAL_HEX_LEN + 1], auth[MEM_SEAL_HEX_LEN + 1];
        au_error err = {0};
        size_t len = 0, cap = 1 << 16;
        char *json = malloc(cap);

        if (argc != 5 || !json) {
                fprintf(stderr,
                        "usage: seal-result FLEET_KEY_FILE NODE_KEY_FILE NODE RUN_ID < result.json\n");
                return 2;
        }
        if (mem_seal_key_load(argv[1], fleet, &err) < 0 || mem_seal_key_load(argv[2], key, &err) < 0) {
                fprintf(stderr, "seal-result: %s\n", err.msg);
                return 1;
        }
        for (size_t n; (n = fread(json + len, 1, cap - len, stdin)) > 0;) {
                len += n;
                if (len == cap && !(json = realloc(json, cap *= 2)))
                        return 1;
        }
        const char *tparts[] = {argv[4], argv[3]};
        size_t tlens[] = {strlen(argv[4]), strlen(argv[3])};
        const char *rparts[] = {argv[3], token, json};
        size_t rlens[] = {strlen(argv[3]), MEM_SEAL_HEX_LEN, len};
        if (mem_seal_mac(fleet, MEM_SEAL_TOKEN, tparts, tlens, 2, token) < 0 ||
            mem_seal_mac(key, MEM_SEAL_RESULT, rparts, rlens, 3, auth) < 0)
                return 1;
        printf("%s %s\n", token, auth);
        free(json);
        return 0;
}
