/* SPDX-License-Identifier: MIT */
/* memory/secret: AES-256-GCM boxes (seal, open, tampering, wrong key or associated data) and masking. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "memory/secret.h"
#include "tests/tap.h"

static bool masks_to(const char *const *vals, size_t n, const char *in, bool truncated, const char *want) {
        size_t lens[8], out_len = 0;
        char *out = NULL;
        bool same;

        for (size_t i = 0; i < n; i++)
                lens[i] = strlen(vals[i]);
        if (mem_secret_mask(vals, lens, n, in, strlen(in), truncated, &out, &out_len) < 0)
                return false;
        if (!out) /* nothing masked */
                return strcmp(in, want) == 0;
        same = strcmp(out, want) == 0 && out_len == strlen(want);
        if (!same)
                diag("masked '%s' to '%s', expected '%s'", in, out, want);
        free(out);
        return same;
}

int main(void) {
        uint8_t key[MEM_SEAL_KEY_BYTES], other[MEM_SEAL_KEY_BYTES], nk[MEM_SEAL_KEY_BYTES],
                nk2[MEM_SEAL_KEY_BYTES];
        const char *parts[] = {"wf.a.1", "n1"}, *moved[] = {"wf.a.1", "n2"}, *later[] = {"wf.a.2", "n1"};
        size_t lens[] = {6, 2};
        const char *value = "hunter2-s3cr3t";
        uint8_t *box = NULL, *box2 = NULL;
        size_t box_len = 0, box2_len = 0, plain_len = 0;
        char *plain = NULL;

        memset(key, 0x11, sizeof(key));
        memset(other, 0x22, sizeof(other));

        ok(mem_secret_seal(key, MEM_SECRET_RUN, parts, lens, 2, value, strlen(value), &box, &box_len) == 0,
           "seal a value");
        ok(box_len == strlen(value) + MEM_SECRET_OVERHEAD, "the box is nonce + ciphertext + tag (%zu bytes)",
           box_len);
        ok(!memmem(box, box_len, value, strlen(value)), "the value is not in the box in plain text");
        ok(mem_secret_open(key, MEM_SECRET_RUN, parts, lens, 2, box, box_len, &plain, &plain_len) == 0 &&
                   plain_len == strlen(value) && strcmp(plain, value) == 0,
           "it opens to the value");
        free(plain);
        plain = NULL;

        /* AES-256-GCM itself: an independent encryption through EVP with the same nonce and AAD agrees. */
        {
                EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
                unsigned char aad[256], ct[64], tag[16];
                size_t aad_len = 0;
                int out = 0, fin = 0;
                const char *dom = MEM_SECRET_RUN;

                memcpy(aad, dom, strlen(dom));
                aad_len = strlen(dom);
                for (size_t i = 0; i < 2; i++) {
                        for (int b = 0; b < 8; b++) /* 8-byte big-endian length */
                                aad[aad_len++] = (unsigned char) ((lens[i] >> (8 * (7 - b))) & 0xff);
                        memcpy(aad + aad_len, parts[i], lens[i]);
                        aad_len += lens[i];
                }
                EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, box);
                EVP_EncryptUpdate(ctx, NULL, &out, aad, (int) aad_len);
                EVP_EncryptUpdate(ctx, ct, &out, (const unsigned char *) value, (int) strlen(value));
                EVP_EncryptFinal_ex(ctx, ct + out, &fin);
                EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag);
                EVP_CIPHER_CTX_free(ctx);
                ok(memcmp(ct, box + MEM_SECRET_NONCE_BYTES, strlen(value)) == 0 &&
                           memcmp(tag, box + box_len - 16, 16) == 0,
                   "ciphertext and tag are AES-256-GCM's with the framed associated data");
        }

        ok(mem_secret_seal(key, MEM_SECRET_RUN, parts, lens, 2, value, strlen(value), &box2, &box2_len) ==
                           0 &&
                   memcmp(box, box2, MEM_SECRET_NONCE_BYTES) != 0 && memcmp(box, box2, box_len) != 0,
           "sealing again uses a new nonce: another box");
        free(box2);

        ok(mem_secret_open(other, MEM_SECRET_RUN, parts, lens, 2, box, box_len, &plain, &plain_len) ==
                   -EBADMSG,
           "another key does not open it");
        ok(mem_secret_open(key, MEM_SECRET_RUN, moved, lens, 2, box, box_len, &plain, &plain_len) ==
                   -EBADMSG,
           "nor does another node's associated data");
        ok(mem_secret_open(key, MEM_SECRET_RUN, later, lens, 2, box, box_len, &plain, &plain_len) ==
                   -EBADMSG,
           "nor another run's");
        ok(mem_secret_open(key, MEM_SECRET_STORE, parts, lens, 2, box, box_len, &plain, &plain_len) ==
                   -EBADMSG,
           "nor another domain");
        {
                const char *split[] = {"wf.a.1n", "1"};
                size_t split_lens[] = {7, 1};
                ok(mem_secret_open(key, MEM_SECRET_RUN, split, split_lens, 2, box, box_len, &plain,
                                   &plain_len) == -EBADMSG,
                   "nor the same bytes split differently (the parts are length-framed)");
        }
        for (size_t i = 0; i < box_len; i += box_len / 5) {
                box[i] ^= 0x01;
                ok(mem_secret_open(key, MEM_SECRET_RUN, parts, lens, 2, box, box_len, &plain, &plain_len) ==
                           -EBADMSG,
                   "a box with byte %zu flipped does not open", i);
                box[i] ^= 0x01;
        }
        ok(mem_secret_open(key, MEM_SECRET_RUN, parts, lens, 2, box, box_len - 1, &plain, &plain_len) ==
                   -EBADMSG,
           "nor a box cut by one byte");
        ok(mem_secret_open(key, MEM_SECRET_RUN, parts, lens, 2, box, 10, &plain, &plain_len) == -EBADMSG,
           "nor one shorter than nonce and tag");
        ok(plain == NULL, "a failed open leaves its output untouched");
        free(box);

        ok(mem_secret_seal(key, MEM_SECRET_STORE, parts, lens, 2, "", 0, &box, &box_len) == 0 &&
                   mem_secret_open(key, MEM_SECRET_STORE, parts, lens, 2, box, box_len, &plain,
                                   &plain_len) == 0 &&
                   plain_len == 0 && plain[0] == '\0',
           "an empty value seals and opens");
        free(box);
        free(plain);

        memset(nk, 0x33, sizeof(nk));
        ok(mem_secret_node_key(nk, nk2) == 0 && memcmp(nk, nk2, sizeof(nk)) != 0,
           "a node's secret key derives from its key");
        {
                uint8_t again[MEM_SEAL_KEY_BYTES];
                char mac[MEM_SEAL_HEX_LEN + 1], hex[MEM_SEAL_HEX_LEN + 1];
                mem_secret_node_key(nk, again);
                mem_seal_mac(nk, MEM_SECRET_RUN, NULL, NULL, 0, mac);
                mem_seal_hex(again, sizeof(again), hex);
                ok(memcmp(nk2, again, sizeof(again)) == 0 && strcmp(mac, hex) == 0,
                   "as HMAC(node key, \"autoos/secret/v1\"), the same each time");
        }

        ok(mem_secret_name_valid("gh-token") && mem_secret_name_valid("A.b_c-9") &&
                   !mem_secret_name_valid("") && !mem_secret_name_valid("-x") &&
                   !mem_secret_name_valid("a/b") && !mem_secret_name_valid("a b") &&
                   !mem_secret_name_valid(NULL),
           "secret names: [A-Za-z0-9][A-Za-z0-9._-]*");

        /* Masking. */
        {
                const char *v1[] = {"s3cr3t"};
                const char *v2[] = {"abc", "abcdef"};
                const char *v3[] = {"hunter2-s3cr3t"};
                ok(masks_to(v1, 1, "token=s3cr3t\n", false, "token=***\n"), "a value is masked");
                ok(masks_to(v1, 1, "s3cr3ts3cr3t x s3cr3t", false, "****** x ***"), "every occurrence");
                ok(masks_to(v1, 1, "nothing here", false, "nothing here"), "output without a value is kept");
                ok(masks_to(v2, 2, "abcdef abc", false, "*** ***"), "the longest value first");
                /* base64 of "hunter2-s3cr3t" is aHVudGVyMi1zM2NyM3Q=; its whole groups are aHVudGVyMi1zM2Ny
                 */
                ok(masks_to(v3, 1, "b64: aHVudGVyMi1zM2NyM3Q=\n", false, "b64: ***M3Q=\n"),
                   "its base64 form (whole groups) is masked too");
                ok(masks_to(v3, 1, "cut: hunter2-s3", true, "cut: ***"),
                   "a truncated output ending in the start of a value has that tail masked");
                ok(masks_to(v3, 1, "cut: hunter2-s3", false, "cut: hunter2-s3"), "not when it was not cut");
                {
                        const char *bin = "\x01\xff"
                                          "s3cr3t"
                                          "\x00"
                                          "z";
                        char *out = NULL;
                        size_t out_len = 0;
                        const char *vv[] = {"s3cr3t"};
                        size_t vl[] = {6};
                        ok(mem_secret_mask(vv, vl, 1, bin, 10, false, &out, &out_len) == 0 && out &&
                                   out_len == 7 && memcmp(out, "\x01\xff***\x00z", 7) == 0,
                           "binary output (NUL bytes) is masked by length");
                        free(out);
                }
        }
        return done_testing();
}
