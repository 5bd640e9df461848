/* SPDX-License-Identifier: MIT */
/* memory/seal: MACs, their encoding, node keys, key files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory/seal.h"
#include "tests/tap.h"

int main(void) {
        uint8_t key[MEM_SEAL_KEY_BYTES], other[MEM_SEAL_KEY_BYTES], k2[MEM_SEAL_KEY_BYTES];
        char mac[MEM_SEAL_HEX_LEN + 1], mac2[MEM_SEAL_HEX_LEN + 1];
        char dir[] = "/tmp/test-seal-XXXXXX", path[256];
        au_error err = {0};

        memset(key, 0x0b, sizeof(key));
        memset(other, 0x0c, sizeof(other));

        /* HMAC-SHA256 itself: RFC 4231 test case 2 ("Jefe" is not 32 bytes, so check through the encoding
         * instead). */
        const char *parts[] = {"n1", "{\"id\":\"x\"}"};
        size_t lens[] = {2, 10};
        ok(mem_seal_mac(key, MEM_SEAL_RESULT, parts, lens, 2, mac) == 0 && strlen(mac) == 64,
           "a MAC is 64 hex");
        ok(mem_seal_check(key, MEM_SEAL_RESULT, parts, lens, 2, mac, 64), "it checks");
        ok(!mem_seal_check(other, MEM_SEAL_RESULT, parts, lens, 2, mac, 64), "not under another key");
        ok(!mem_seal_check(key, MEM_SEAL_JOB, parts, lens, 2, mac, 64), "not in another domain");
        ok(!mem_seal_check(key, MEM_SEAL_RESULT, parts, lens, 2, mac, 63), "not shortened");
        ok(!mem_seal_check(key, MEM_SEAL_RESULT, parts, lens, 2, NULL, 0), "not absent");
        mac[10] = mac[10] == '0' ? '1' : '0';
        ok(!mem_seal_check(key, MEM_SEAL_RESULT, parts, lens, 2, mac, 64), "not with one digit changed");

        /* The length prefixes keep part boundaries: ("ab","c") and ("a","bc") differ. */
        const char *pa[] = {"ab", "c"}, *pb[] = {"a", "bc"};
        size_t la[] = {2, 1}, lb[] = {1, 2};
        mem_seal_mac(key, MEM_SEAL_JOB, pa, la, 2, mac);
        mem_seal_mac(key, MEM_SEAL_JOB, pb, lb, 2, mac2);
        ok(strcmp(mac, mac2) != 0, "moving a part boundary changes the MAC");

        /* A large input (a job spec of MiBs) goes through the heap path. */
        size_t big = 3u << 20;
        char *buf = malloc(big);
        memset(buf, 'x', big);
        const char *pbig[] = {buf};
        ok(mem_seal_mac(key, MEM_SEAL_JOB, pbig, &big, 1, mac) == 0 &&
                   mem_seal_check(key, MEM_SEAL_JOB, pbig, &big, 1, mac, 64),
           "a 3 MiB part");
        free(buf);

        /* Node keys: per node, per generation. */
        ok(mem_seal_node_key(key, "n1", 1, k2) == 0 && memcmp(k2, key, 32) != 0, "a node key is derived");
        mem_seal_node_key(key, "n1", 1, other);
        ok(memcmp(k2, other, 32) == 0, "the same node and generation give the same key");
        mem_seal_node_key(key, "n1", 2, other);
        ok(memcmp(k2, other, 32) != 0, "a new generation gives a new key");
        mem_seal_node_key(key, "n2", 1, other);
        ok(memcmp(k2, other, 32) != 0, "another node gives another key");

        /* Key files. */
        ok(mkdtemp(dir) != NULL, "temporary directory");
        snprintf(path, sizeof(path), "%s/k", dir);
        ok(mem_seal_key_save(path, k2, &err) == 0, "a key file is written");
        struct stat st;
        ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600, "with mode 0600");
        ok(mem_seal_key_save(path, k2, &err) == -EEXIST, "never over an existing one");
        memset(other, 0, sizeof(other));
        ok(mem_seal_key_load(path, other, &err) == 0 && memcmp(other, k2, 32) == 0, "and read back");
        chmod(path, 0640);
        au_error_clear(&err);
        ok(mem_seal_key_load(path, other, &err) == -EPERM && strstr(err.msg, "0640"),
           "a group-readable key file is refused: %s", err.msg);
        chmod(path, 0604);
        au_error_clear(&err);
        ok(mem_seal_key_load(path, other, &err) == -EPERM, "a world-readable one too");
        unlink(path);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        ok(fd >= 0 && write(fd, "zz\n", 3) == 3, "a file with junk");
        close(fd);
        au_error_clear(&err);
        ok(mem_seal_key_load(path, other, &err) < 0 && strstr(err.msg, "64 hex"), "is refused: %s", err.msg);
        unlink(path);
        rmdir(dir);
        ok(mem_seal_key_parse(" 0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b\n", 66,
                              other) == 0 &&
                   other[0] == 0x0b && other[31] == 0x0b,
           "hex with surrounding whitespace parses");
        ok(mem_seal_random(other, 32) == 0, "random bytes");
        return done_testing();
}
