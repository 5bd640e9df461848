/* SPDX-License-Identifier: MIT */
/*
 * bench/auth: what authenticating one bus message costs (issue 10), to choose
 * the primitive by measuring: HMAC-SHA256 with a per-node key (memory/seal.c,
 * what AUTOOS uses) against Ed25519, both through OpenSSL libcrypto, for a
 * heartbeat (~200 B), a result (~1 KiB) and a spec with inputs (~16 KiB).
 * Prints microseconds per sign and per verify. bench/auth [ITERATIONS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "common/clock.h"
#include "memory/seal.h"

static double now_us(void) {
        return (double) au_now_us();
}

int main(int argc, char **argv) {
        static const size_t sizes[] = {200, 1024, 16384};
        int iters = argc > 1 ? atoi(argv[1]) : 20000;
        uint8_t key[MEM_SEAL_KEY_BYTES];
        EVP_PKEY *pk = NULL;
        EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
        volatile int sink = 0;

        if (iters <= 0 || !kc || EVP_PKEY_keygen_init(kc) <= 0 || EVP_PKEY_keygen(kc, &pk) <= 0 ||
            mem_seal_random(key, sizeof(key)) < 0) {
                fprintf(stderr, "bench/auth: setup failed\n");
                return 1;
        }
        EVP_PKEY_CTX_free(kc);
        printf("# %d messages each; microseconds per message (one CPU)\n", iters);
        printf("%-10s %12s %12s %12s %12s\n", "bytes", "hmac-sign", "hmac-verify", "ed25519-sign",
               "ed25519-verify");
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
                size_t n = sizes[s];
                char *msg = malloc(n), mac[MEM_SEAL_HEX_LEN + 1];
                unsigned char sig[64];
                size_t siglen = sizeof(sig);
                const char *parts[] = {"node-1", msg};
                size_t lens[] = {6, n};
                double t0, hs, hv, es, ev;

                memset(msg, 'x', n);
                t0 = now_us();
                for (int i = 0; i < iters; i++) {
                        msg[0] = (char) i;
                        mem_seal_mac(key, MEM_SEAL_RESULT, parts, lens, 2, mac);
                        sink += mac[0];
                }
                hs = (now_us() - t0) / iters;
                t0 = now_us();
                for (int i = 0; i < iters; i++)
                        sink += mem_seal_check(key, MEM_SEAL_RESULT, parts, lens, 2, mac, MEM_SEAL_HEX_LEN);
                hv = (now_us() - t0) / iters;

                t0 = now_us();
                for (int i = 0; i < iters; i++) {
                        EVP_MD_CTX *c = EVP_MD_CTX_new();
                        msg[0] = (char) i;
                        siglen = sizeof(sig);
                        EVP_DigestSignInit(c, NULL, NULL, NULL, pk);
                        EVP_DigestSign(c, sig, &siglen, (unsigned char *) msg, n);
                        EVP_MD_CTX_free(c);
                        sink += sig[0];
                }
                es = (now_us() - t0) / iters;
                t0 = now_us();
                for (int i = 0; i < iters; i++) {
                        EVP_MD_CTX *c = EVP_MD_CTX_new();
                        EVP_DigestVerifyInit(c, NULL, NULL, NULL, pk);
                        sink += EVP_DigestVerify(c, sig, siglen, (unsigned char *) msg, n);
                        EVP_MD_CTX_free(c);
                }
                ev = (now_us() - t0) / iters;
                printf("%-10zu %12.2f %12.2f %12.2f %12.2f\n", n, hs, hv, es, ev);
                free(msg);
        }
        EVP_PKEY_free(pk);
        return sink == 42 ? 1 : 0;
}
