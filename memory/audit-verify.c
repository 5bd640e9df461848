/* SPDX-License-Identifier: MIT */
/*
 * The audit trail's verifier (memory/audit-verify.h): a trail as the API
 * returns it, checked with no help from the coordinator or the database.
 * `autoosctl audit --verify` and `autoosctl adversarial`'s audit attacks both
 * judge by it.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/json.h"
#include "common/macro.h"
#include "memory/audit-chain.h"
#include "memory/audit-verify.h"

#define MAX_LOG_LINE (64u << 10)

static const char *str_of(yajl_val obj, const char *key) {
        yajl_val v = au_json_get(obj, key);
        return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

/* An integer member, exactly; false when absent or not an integer. */
static bool int_of(yajl_val obj, const char *key, int64_t *ret) {
        yajl_val v = au_json_get(obj, key);
        char *end;
        long long n;

        if (!YAJL_IS_NUMBER(v) || !v->u.number.r)
                return false;
        errno = 0;
        n = strtoll(v->u.number.r, &end, 10);
        if (errno || *end || end == v->u.number.r)
                return false;
        *ret = n;
        return true;
}

static void fail(mem_audit_verdict *v, int64_t seq, const char *fmt, ...) _printf_(3, 4);
static void fail(mem_audit_verdict *v, int64_t seq, const char *fmt, ...) {
        va_list ap;

        if (!v->ok && v->bad_seq <= seq)
                return; /* an earlier row is already named */
        v->ok = false;
        v->bad_seq = seq;
        va_start(ap, fmt);
        vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
        va_end(ap);
}

static void fmt_time(int64_t us, char *buf, size_t size) {
        time_t s = (time_t) (us / 1000000);
        struct tm tm;
        if (!gmtime_r(&s, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(buf, size, "%" PRId64 " us", us);
}

typedef struct ckpt {
        int64_t seq, ts;
        unsigned char hash[MEM_AUDIT_HASH_BYTES];
        bool from_log;
} ckpt;

static int cmp_ckpt(const void *a, const void *b) {
        const ckpt *x = a, *y = b;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Checks one checkpoint object; appends it to out when it is the pinned key's
 * and its signature holds. A checkpoint of the pinned key whose signature does
 * not hold is a failure (someone without the key wrote it).
 */
static void take_checkpoint(const char *wf, yajl_val c, bool from_log, EVP_PKEY *key, const char *key_id,
                            ckpt *out, size_t *n, mem_audit_verdict *v) {
        const char *kid = str_of(c, "key_id"), *hash = str_of(c, "hash"), *sig = str_of(c, "signature");
        const char *src = from_log ? "the log's checkpoint" : "the checkpoint";
        unsigned char s[MEM_AUDIT_SIG_BYTES];
        char msg[MEM_AUDIT_MESSAGE_MAX];
        ckpt k = {.from_log = from_log};
        int len;

        if (!kid || strcmp(kid, key_id) != 0) {
                v->other_keys++;
                return;
        }
        if (!int_of(c, "seq", &k.seq) || k.seq < 1 || !int_of(c, "ts_epoch_us", &k.ts) || !hash ||
            mem_audit_unhex(hash, k.hash, sizeof(k.hash)) < 0 || !sig ||
            mem_audit_unhex(sig, s, sizeof(s)) < 0) {
                fail(v, 1, "%s of key %s is malformed", src, key_id);
                return;
        }
        len = mem_audit_checkpoint_message(wf, k.seq, k.hash, k.ts, msg, sizeof(msg));
        if (len < 0 || !mem_audit_verify(key, msg, (size_t) len, s)) {
                fail(v, k.seq, "%s at seq %" PRId64 " does not carry a valid signature of key %s", src,
                     k.seq, key_id);
                return;
        }
        out[(*n)++] = k;
}

int mem_audit_trail_verify(const char *workflow, yajl_val doc, EVP_PKEY *key, yajl_val const *log,
                           size_t log_n, mem_audit_verdict *ret) {
        yajl_val rows = au_json_get(doc, "rows"), cps = au_json_get(doc, "checkpoints");
        size_t n = YAJL_IS_ARRAY(rows) ? rows->u.array.len : 0;
        size_t n_db = YAJL_IS_ARRAY(cps) ? cps->u.array.len : 0, n_ck = 0;
        _cleanup_free_ unsigned char(*hashes)[MEM_AUDIT_HASH_BYTES] = calloc(n + 1, MEM_AUDIT_HASH_BYTES);
        _cleanup_free_ ckpt *ck = calloc(n_db + log_n + 1, sizeof(ckpt));
        unsigned char prev[MEM_AUDIT_HASH_BYTES] = {0};
        char wf[37], key_id[MEM_AUDIT_KEY_ID_LEN + 1];
        mem_audit_verdict v = {.ok = true, .rows = (int64_t) n};
        size_t i;

        if (!hashes || !ck)
                return -ENOMEM;
        for (i = 0; workflow[i] && i < 36; i++)
                wf[i] = (char) tolower((unsigned char) workflow[i]);
        wf[i] = '\0';
        if (mem_audit_key_id(key, key_id) < 0) {
                fail(&v, 0, "the public key is not an Ed25519 key");
                *ret = v;
                return 0;
        }
        if (!YAJL_IS_ARRAY(rows) || n == 0) {
                fail(&v, 1, "no audit rows: an empty trail proves nothing");
                *ret = v;
                return 0;
        }

        /* The chain, recomputed from each row's contents. */
        for (i = 0; i < n; i++) {
                yajl_val row = rows->u.array.values[i];
                int64_t seq = 0, ts = 0;
                unsigned char given[MEM_AUDIT_HASH_BYTES], given_prev[MEM_AUDIT_HASH_BYTES];
                _cleanup_free_ char *canon = NULL;
                size_t len = 0;
                int64_t want = (int64_t) i + 1;

                if (!int_of(row, "seq", &seq) || seq != want) {
                        fail(&v, want, "seq %" PRId64 " is missing (the trail goes on with %s)", want,
                             int_of(row, "seq", &seq) ? "another seq" : "a row without one");
                        break;
                }
                if (!int_of(row, "ts_epoch_us", &ts) || !str_of(row, "actor") || !str_of(row, "action") ||
                    mem_audit_unhex(str_of(row, "hash"), given, sizeof(given)) < 0 ||
                    mem_audit_unhex(str_of(row, "prev_hash"), given_prev, sizeof(given_prev)) < 0) {
                        fail(&v, seq, "seq %" PRId64 " is malformed", seq);
                        break;
                }
                if (memcmp(given_prev, prev, sizeof(prev)) != 0) {
                        fail(&v, seq, "seq %" PRId64 ": prev_hash is not the hash of the row before it",
                             seq);
                        break;
                }
                if (mem_audit_canonical(wf, seq, ts, str_of(row, "actor"), str_of(row, "action"),
                                        au_json_get(row, "detail"), &canon, &len) < 0) {
                        fail(&v, seq, "seq %" PRId64 ": its detail is not JSON data", seq);
                        break;
                }
                mem_audit_chain_hash(prev, canon, len, hashes[i]);
                if (memcmp(hashes[i], given, sizeof(given)) != 0) {
                        fail(&v, seq,
                             "seq %" PRId64 ": its hash does not match its contents (the row was altered)",
                             seq);
                        break;
                }
                memcpy(prev, hashes[i], sizeof(prev));
        }
        int64_t good = v.ok ? (int64_t) n : v.bad_seq - 1; /* rows whose recomputed hashes we hold */

        /* The checkpoints: signed by the pinned key, each matching the recomputed hash at its seq. */
        for (i = 0; i < n_db; i++)
                take_checkpoint(wf, cps->u.array.values[i], false, key, key_id, ck, &n_ck, &v);
        for (i = 0; i < log_n; i++) {
                const char *w = str_of(log[i], "workflow");
                if (w && strcasecmp(w, wf) == 0)
                        take_checkpoint(wf, log[i], true, key, key_id, ck, &n_ck, &v);
        }
        qsort(ck, n_ck, sizeof(ckpt), cmp_ckpt);
        int64_t vouched = 0; /* the highest seq a matching checkpoint covers */
        for (i = 0; i < n_ck; i++) {
                char when[64];
                fmt_time(ck[i].ts, when, sizeof(when));
                if (ck[i].seq > (int64_t) n) {
                        fail(&v, (int64_t) n + 1,
                             "seq %" PRId64 "..%" PRId64 " are missing: %s signed at %s covers seq %" PRId64
                             " but the trail ends at seq %zu (its tail was cut off)",
                             (int64_t) n + 1, ck[i].seq,
                             ck[i].from_log ? "the log's checkpoint" : "a checkpoint", when, ck[i].seq, n);
                        break;
                }
                if (ck[i].seq > good)
                        break; /* a row at or before it is already named */
                if (memcmp(hashes[ck[i].seq - 1], ck[i].hash, MEM_AUDIT_HASH_BYTES) != 0) {
                        fail(&v, vouched + 1,
                             "seq %" PRId64 "..%" PRId64
                             ": the rows differ from what %s signed at %s (a row was "
                             "altered and the chain rehashed, or rows were replaced)",
                             vouched + 1, ck[i].seq,
                             ck[i].from_log ? "the log's checkpoint" : "the checkpoint", when);
                        break;
                }
                vouched = ck[i].seq;
                v.checkpoints++;
                if (ck[i].from_log) {
                        v.from_log++;
                        v.log_max_seq = ck[i].seq;
                }
        }
        v.covered = vouched;
        if (v.ok && n_ck == 0)
                fail(&v, 1, "no checkpoint signed by key %s: nothing vouches for these rows%s", key_id,
                     v.other_keys ? " (there are checkpoints of other keys)" : "");
        else if (v.ok && vouched < (int64_t) n)
                fail(&v, vouched + 1,
                     "seq %" PRId64 "..%zu are not covered by a signed checkpoint (written in the last "
                     "audit_checkpoint_interval, or added by someone without the key)",
                     vouched + 1, n);
        *ret = v;
        return 0;
}

static void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

int mem_audit_log_checkpoints(const char *path, yajl_val **ret, size_t *ret_n, au_error *err) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0, n = 0, vcap = 0;
        yajl_val *v = NULL;
        ssize_t len;

        if (!f) {
                return au_error_set(err, errno, "%s", path);
        }
        while ((len = getline(&line, &cap, f)) >= 0) {
                yajl_val doc = NULL, c;
                if (len == 0 || (size_t) len > MAX_LOG_LINE || !memchr(line, '{', (size_t) len) ||
                    !strstr(line, "\"audit_checkpoint\""))
                        continue;
                /* journalctl -o cat prints the line as is; a prefix before the object is skipped. */
                char *start = strchr(line, '{');
                if (au_json_parse(start, (size_t) len - (size_t) (start - line), MAX_LOG_LINE, &doc, NULL) <
                    0)
                        continue;
                c = au_json_get(doc, "audit_checkpoint");
                if (YAJL_IS_OBJECT(c)) {
                        if (n == vcap) {
                                size_t nc = vcap ? vcap * 2 : 64;
                                yajl_val *nv = reallocarray(v, nc, sizeof(yajl_val));
                                if (!nv) {
                                        yajl_tree_free(doc);
                                        goto oom;
                                }
                                v = nv;
                                vcap = nc;
                        }
                        v[n++] = doc;
                } else
                        yajl_tree_free(doc);
        }
        /* The caller gets the checkpoint objects; their documents are kept alive through them. */
        *ret = v;
        *ret_n = n;
        return 0;
oom:
        for (size_t i = 0; i < n; i++)
                yajl_tree_free(v[i]);
        free(v);
        return au_error_set(err, ENOMEM, "%s", path);
}
