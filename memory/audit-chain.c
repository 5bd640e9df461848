/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "common/buf.h"
#include "memory/audit-chain.h"

/* ---- canonical rows: jsonb's text form ----------------------------------------------- */

/* PostgreSQL's escape_json(): \b \f \n \r \t \" \\, other bytes below 0x20 as \u00xx, the rest as is. */
static int put_string(au_buf *b, const char *s) {
        int r = au_buf_append(b, "\"", 1);
        for (const unsigned char *p = (const unsigned char *) s; r >= 0 && *p; p++) {
                char esc[8];
                switch (*p) {
                case '\b':
                        r = au_buf_append(b, "\\b", 2);
                        break;
                case '\f':
                        r = au_buf_append(b, "\\f", 2);
                        break;
                case '\n':
                        r = au_buf_append(b, "\\n", 2);
                        break;
                case '\r':
                        r = au_buf_append(b, "\\r", 2);
                        break;
                case '\t':
                        r = au_buf_append(b, "\\t", 2);
                        break;
                case '"':
                        r = au_buf_append(b, "\\\"", 2);
                        break;
                case '\\':
                        r = au_buf_append(b, "\\\\", 2);
                        break;
                default:
                        if (*p < 0x20) {
                                snprintf(esc, sizeof(esc), "\\u%04x", (unsigned) *p);
                                r = au_buf_append(b, esc, 6);
                        } else
                                r = au_buf_append(b, (const char *) p, 1);
                }
        }
        return r < 0 ? r : au_buf_append(b, "\"", 1);
}

/* jsonb's order of object keys: shorter first, then bytewise. */
static int key_cmp(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        if (la != lb)
                return la < lb ? -1 : 1;
        return memcmp(a, b, la);
}

static int put_value(au_buf *b, yajl_val v, unsigned depth);

static int put_object(au_buf *b, yajl_val v, unsigned depth) {
        size_t n = v->u.object.len;
        _cleanup_free_ size_t *order = n ? calloc(n, sizeof(size_t)) : NULL;
        bool first = true;
        int r;

        if (n && !order)
                return -ENOMEM;
        /* Stable insertion sort: of equal keys the last one given is kept, as jsonb does. */
        for (size_t i = 0; i < n; i++) {
                size_t j = i;
                while (j > 0 && key_cmp(v->u.object.keys[order[j - 1]], v->u.object.keys[i]) > 0) {
                        order[j] = order[j - 1];
                        j--;
                }
                order[j] = i;
        }
        r = au_buf_append(b, "{", 1);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (i + 1 < n && key_cmp(v->u.object.keys[order[i]], v->u.object.keys[order[i + 1]]) == 0)
                        continue;
                if (!first)
                        r = au_buf_append(b, ", ", 2);
                first = false;
                if (r >= 0)
                        r = put_string(b, v->u.object.keys[order[i]]);
                if (r >= 0)
                        r = au_buf_append(b, ": ", 2);
                if (r >= 0)
                        r = put_value(b, v->u.object.values[order[i]], depth + 1);
        }
        return r < 0 ? r : au_buf_append(b, "}", 1);
}

static int put_value(au_buf *b, yajl_val v, unsigned depth) {
        int r;

        if (!v || depth > 1000)
                return -EINVAL;
        switch (v->type) {
        case yajl_t_string:
                return put_string(b, v->u.string);
        case yajl_t_number:
                return v->u.number.r ? au_buf_puts(b, v->u.number.r) : -EINVAL;
        case yajl_t_true:
                return au_buf_append(b, "true", 4);
        case yajl_t_false:
                return au_buf_append(b, "false", 5);
        case yajl_t_null:
                return au_buf_append(b, "null", 4);
        case yajl_t_object:
                return put_object(b, v, depth);
        case yajl_t_array:
                r = au_buf_append(b, "[", 1);
                for (size_t i = 0; r >= 0 && i < v->u.array.len; i++) {
                        if (i > 0)
                                r = au_buf_append(b, ", ", 2);
                        if (r >= 0)
                                r = put_value(b, v->u.array.values[i], depth + 1);
                }
                return r < 0 ? r : au_buf_append(b, "]", 1);
        default:
                return -EINVAL;
        }
}

int mem_audit_canonical(const char *workflow, int64_t seq, int64_t ts_epoch_us, const char *actor,
                        const char *action, yajl_val detail, char **ret, size_t *ret_len) {
        _cleanup_buf_ au_buf b = AU_BUF_INIT(0);
        char num[64];
        int r;

        r = au_buf_append(&b, "[", 1);
        if (r >= 0)
                r = workflow ? put_string(&b, workflow) : au_buf_append(&b, "null", 4);
        snprintf(num, sizeof(num), ", %" PRId64 ", %" PRId64 ", ", seq, ts_epoch_us);
        if (r >= 0)
                r = au_buf_puts(&b, num);
        if (r >= 0)
                r = put_string(&b, actor ? actor : "");
        if (r >= 0)
                r = au_buf_append(&b, ", ", 2);
        if (r >= 0)
                r = put_string(&b, action ? action : "");
        if (r >= 0)
                r = au_buf_append(&b, ", ", 2);
        if (r >= 0)
                r = put_value(&b, detail, 0);
        if (r >= 0)
                r = au_buf_append(&b, "]", 1);
        if (r < 0)
                return r;
        *ret = au_buf_steal(&b, ret_len);
        return *ret ? 0 : -ENOMEM;
}

void mem_audit_chain_hash(const unsigned char prev[MEM_AUDIT_HASH_BYTES], const char *canonical, size_t len,
                          unsigned char out[MEM_AUDIT_HASH_BYTES]) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned n = 0;

        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(ctx, prev, MEM_AUDIT_HASH_BYTES) != 1 ||
            EVP_DigestUpdate(ctx, canonical, len) != 1 || EVP_DigestFinal_ex(ctx, out, &n) != 1)
                memset(out, 0, MEM_AUDIT_HASH_BYTES); /* out of memory: a hash that matches nothing real */
        EVP_MD_CTX_free(ctx);
}

void mem_audit_hex(const unsigned char *in, size_t n, char *out) {
        au_hex(in, n, out);
}

int mem_audit_unhex(const char *s, unsigned char *out, size_t n) {
        return s ? au_unhex(s, strlen(s), out, n) : -EINVAL;
}

int mem_audit_checkpoint_message(const char *workflow, int64_t seq,
                                 const unsigned char hash[MEM_AUDIT_HASH_BYTES], int64_t ts_epoch_us,
                                 char *buf, size_t size) {
        char hex[2 * MEM_AUDIT_HASH_BYTES + 1];
        int n;

        mem_audit_hex(hash, MEM_AUDIT_HASH_BYTES, hex);
        n = snprintf(buf, size,
                     "autoos-audit-checkpoint-v1\nchain=%s\nseq=%" PRId64 "\nhash=%s\nts_epoch_us=%" PRId64
                     "\n",
                     workflow ? workflow : "fleet", seq, hex, ts_epoch_us);
        if (n < 0 || (size_t) n >= size)
                return -ENOBUFS;
        return n;
}

/* ---- keys --------------------------------------------------------------------------- */

static void ssl_reason(char *out, size_t size) {
        unsigned long e = ERR_get_error();
        if (e)
                ERR_error_string_n(e, out, size);
        else
                snprintf(out, size, "not a PEM Ed25519 key");
        ERR_clear_error();
}

int mem_audit_key_id(EVP_PKEY *key, char out[MEM_AUDIT_KEY_ID_LEN + 1]) {
        unsigned char raw[32], digest[SHA256_DIGEST_LENGTH];
        size_t len = sizeof(raw);

        if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519 ||
            EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof(raw))
                return -EINVAL;
        SHA256(raw, len, digest);
        mem_audit_hex(digest, MEM_AUDIT_KEY_ID_LEN / 2, out);
        return 0;
}

static char *public_pem(EVP_PKEY *key) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL, *ret = NULL;
        long n;

        if (!bio)
                return NULL;
        if (PEM_write_bio_PUBKEY(bio, key) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0 &&
            (ret = malloc((size_t) n + 1))) {
                memcpy(ret, data, (size_t) n);
                ret[n] = '\0';
        }
        BIO_free(bio);
        return ret;
}

static int write_all(int fd, const char *s, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, s, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                s += k;
                n -= (size_t) k;
        }
        return 0;
}

int mem_audit_key_create(const char *path, char **ret_public_pem, char ret_key_id[MEM_AUDIT_KEY_ID_LEN + 1],
                         au_error *err) {
        _cleanup_pkey_ EVP_PKEY *key = NULL;
        _cleanup_free_ char *pub = NULL, *pub_path = NULL;
        EVP_PKEY_CTX *pctx;
        BIO *bio;
        char *data = NULL, reason[256];
        long n;
        int fd, r;

        pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
        if (!pctx || EVP_PKEY_keygen_init(pctx) != 1 || EVP_PKEY_keygen(pctx, &key) != 1) {
                EVP_PKEY_CTX_free(pctx);
                ssl_reason(reason, sizeof(reason));
                return au_error_set(err, EIO, "make an Ed25519 key: %s", reason);
        }
        EVP_PKEY_CTX_free(pctx);
        pub = public_pem(key);
        if (!pub || asprintf(&pub_path, "%s.pub", path) < 0)
                return au_error_set(err, ENOMEM, "audit key");
        bio = BIO_new(BIO_s_mem());
        if (!bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
            (n = BIO_get_mem_data(bio, &data)) <= 0) {
                BIO_free(bio);
                return au_error_set(err, ENOMEM, "audit key");
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = -errno;
                BIO_free(bio);
                return au_error_set(err, -r, "create %s", path);
        }
        r = write_all(fd, data, (size_t) n);
        BIO_free(bio);
        if (r >= 0 && fchmod(fd, 0600) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r < 0) {
                unlink(path);
                return au_error_set(err, -r, "write %s", path);
        }
        fd = open(pub_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return au_error_set(err, errno, "create %s", pub_path);
        r = write_all(fd, pub, strlen(pub));
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r < 0)
                return au_error_set(err, -r, "write %s", pub_path);
        mem_audit_key_id(key, ret_key_id);
        if (ret_public_pem)
                *ret_public_pem = TAKE_PTR(pub);
        return 0;
}

static int read_pem(const char *path, bool private, EVP_PKEY **ret, au_error *err) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        EVP_PKEY *key = NULL;
        struct stat st;
        char reason[256];
        FILE *f;

        if (fd < 0 || fstat(fd, &st) < 0)
                return au_error_set(err, errno, "read %s", path);
        if (!S_ISREG(st.st_mode) || st.st_size > 65536)
                return au_error_set(err, EINVAL, "read %s: not a key file", path);
        if (private && (st.st_mode & 077))
                return au_error_set(err, EPERM,
                                    "%s: mode %04o lets others read the audit key (chmod 600 it)", path,
                                    (unsigned) (st.st_mode & 07777));
        if (private && st.st_uid != geteuid() && st.st_uid != 0)
                return au_error_set(err, EPERM, "%s: owned by uid %u, not by this user or root", path,
                                    (unsigned) st.st_uid);
        f = fdopen(fd, "r");
        if (!f)
                return au_error_set(err, errno, "read %s", path);
        fd = -1;
        if (private)
                key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        else {
                key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
                if (!key) {
                        ERR_clear_error();
                        rewind(f);
                        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
                }
        }
        fclose(f);
        if (!key) {
                ssl_reason(reason, sizeof(reason));
                return au_error_set(err, EINVAL, "%s: %s", path, reason);
        }
        if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
                EVP_PKEY_free(key);
                return au_error_set(err, EINVAL, "%s: not an Ed25519 key", path);
        }
        if (!private) {
                /* Keep only the public half. */
                unsigned char raw[32];
                size_t len = sizeof(raw);
                EVP_PKEY *pub = NULL;
                if (EVP_PKEY_get_raw_public_key(key, raw, &len) == 1)
                        pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, len);
                EVP_PKEY_free(key);
                if (!pub)
                        return au_error_set(err, ENOMEM, "%s", path);
                key = pub;
        }
        *ret = key;
        return 0;
}

int mem_audit_key_load_private(const char *path, EVP_PKEY **ret, au_error *err) {
        return read_pem(path, true, ret, err);
}

int mem_audit_key_load_public(const char *path, EVP_PKEY **ret, au_error *err) {
        return read_pem(path, false, ret, err);
}

int mem_audit_sign(EVP_PKEY *key, const void *msg, size_t len, unsigned char sig[MEM_AUDIT_SIG_BYTES]) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t n = MEM_AUDIT_SIG_BYTES;
        int ok;

        if (!ctx)
                return -ENOMEM;
        ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, &n, msg, len) == 1 && n == MEM_AUDIT_SIG_BYTES;
        EVP_MD_CTX_free(ctx);
        if (!ok)
                ERR_clear_error();
        return ok ? 0 : -EIO;
}

bool mem_audit_verify(EVP_PKEY *key, const void *msg, size_t len,
                      const unsigned char sig[MEM_AUDIT_SIG_BYTES]) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok;

        if (!ctx)
                return false;
        ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestVerify(ctx, sig, MEM_AUDIT_SIG_BYTES, msg, len) == 1;
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        return ok;
}
