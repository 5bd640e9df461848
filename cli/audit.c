/* SPDX-License-Identifier: MIT */
/*
 * autoosctl audit: a workflow's audit trail, and with --verify its check on
 * this side against the coordinator's public audit key (cli/audit.h).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>

#include "cli.h"
#include "cli/audit.h"
#include "cli/client.h"
#include "common/json.h"
#include "common/macro.h"
#include "memory/audit-chain.h"

#define PUBKEY_ENV "AUTOOS_AUDIT_PUBKEY"
#define DETAIL_WIDTH 72
#define MAX_LOG_LINE (64u << 10)

/* ---- verification ------------------------------------------------------------------- */

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

static void fail(cli_audit_verdict *v, int64_t seq, const char *fmt, ...) _printf_(3, 4);
static void fail(cli_audit_verdict *v, int64_t seq, const char *fmt, ...) {
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
                            ckpt *out, size_t *n, cli_audit_verdict *v) {
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

int cli_audit_verify(const char *workflow, yajl_val doc, EVP_PKEY *key, yajl_val const *log, size_t log_n,
                     cli_audit_verdict *ret) {
        yajl_val rows = au_json_get(doc, "rows"), cps = au_json_get(doc, "checkpoints");
        size_t n = YAJL_IS_ARRAY(rows) ? rows->u.array.len : 0;
        size_t n_db = YAJL_IS_ARRAY(cps) ? cps->u.array.len : 0, n_ck = 0;
        _cleanup_free_ unsigned char(*hashes)[MEM_AUDIT_HASH_BYTES] = calloc(n + 1, MEM_AUDIT_HASH_BYTES);
        _cleanup_free_ ckpt *ck = calloc(n_db + log_n + 1, sizeof(ckpt));
        unsigned char prev[MEM_AUDIT_HASH_BYTES] = {0};
        char wf[37], key_id[MEM_AUDIT_KEY_ID_LEN + 1];
        cli_audit_verdict v = {.ok = true, .rows = (int64_t) n};
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

int cli_audit_read_log(const char *path, yajl_val **ret, size_t *ret_n) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0, n = 0, vcap = 0;
        yajl_val *v = NULL;
        ssize_t len;

        if (!f) {
                fprintf(stderr, "autoosctl: --checkpoint-log %s: %s\n", path, strerror(errno));
                return -errno;
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
        fputs("autoosctl: out of memory\n", stderr);
        return -ENOMEM;
}

/* ---- the command ---------------------------------------------------------------------- */

static void usage(FILE *f) {
        fputs("Usage: autoosctl audit ID [--verify] [--audit-pubkey FILE] [--checkpoint-log FILE]...\n"
              "                 [--json] [--url URL] [--key-file FILE]\n"
              "\n"
              "Shows a workflow's audit trail: sequence, time, actor, action, detail.\n"
              "\n"
              "      --verify               check the trail here, trusting neither the coordinator nor\n"
              "                             its database: every row's hash recomputed from its contents,\n"
              "                             every checkpoint's signature checked against the public key,\n"
              "                             every row covered by a checkpoint. Prints \"chain verified: N\n"
              "                             rows ...\" or \"chain BROKEN at seq N\" and why (exit 1)\n"
              "      --audit-pubkey FILE    the coordinator's public audit key (PEM, as\n"
              "                             autoos-coordinator --create-audit-key wrote it; default\n"
              "                             $" PUBKEY_ENV ")\n"
              "      --checkpoint-log FILE  also check against the checkpoints in this copy of the\n"
              "                             coordinator's log (JSON lines): a trail cut off in the\n"
              "                             database is caught even when its checkpoints were deleted too\n"
              "      --json                 print the coordinator's document (the verdict on stderr)\n"
              "\n"
              "Global options:\n"
              "      --url URL        the coordinator (default: $" CLI_URL_ENV ", else url= in the\n"
              "                       configuration file, else " CLI_DEFAULT_URL ")\n"
              "      --key-file FILE  read the API key from FILE (default: $" CLI_KEY_ENV ", else\n"
              "                       api_key= or key_file= in the configuration file)\n"
              "  -h, --help           show this help\n"
              "\n"
              "Exit status: 0 done (verified); 1 the trail does not verify; 2 bad usage or an unreadable\n"
              "FILE; 69, 70, 75, 76, 77, 78 as for the other coordinator commands. See autoosctl(1).\n",
              f);
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;
        fputs("autoosctl audit: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" (see 'autoosctl audit --help')\n", stderr);
        return CLI_EXIT_USAGE;
}

/* The row's detail in one line for a terminal: control characters as '?', cut to DETAIL_WIDTH columns. */
static char *detail_line(yajl_val v) {
        _cleanup_json_gen_ yajl_gen g = NULL;
        char *s;
        size_t w = 0;

        if (!v || YAJL_IS_NULL(v))
                return strdup("-");
        g = au_json_gen_new(false);
        if (!g || au_json_gen_tree(g, v) < 0 || !(s = au_json_gen_finish(g, NULL)))
                return NULL;
        for (char *p = s; *p; p++) {
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
                if (((unsigned char) *p & 0xc0) != 0x80 && ++w > DETAIL_WIDTH - 3) {
                        strcpy(p, "...");
                        break;
                }
        }
        return s;
}

static void clean(char *s) {
        for (; s && *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        *s = '?';
}

static int print_rows(yajl_val rows) {
        if (rows->u.array.len == 0) {
                puts("no audit rows");
                return 0;
        }
        printf("%-5s %-24s %-20s %-18s %s\n", "SEQ", "TIME", "ACTOR", "ACTION", "DETAIL");
        for (size_t i = 0; i < rows->u.array.len; i++) {
                yajl_val row = rows->u.array.values[i], seq = au_json_get(row, "seq");
                _cleanup_free_ char *detail = detail_line(au_json_get(row, "detail"));
                _cleanup_free_ char *ts = strdup(str_of(row, "ts") ?: "-"),
                                    *actor = strdup(str_of(row, "actor") ?: "-"),
                                    *action = strdup(str_of(row, "action") ?: "-");
                if (!detail || !ts || !actor || !action)
                        return -ENOMEM;
                clean(ts);
                clean(actor);
                clean(action);
                printf("%-5s %-24s %-20s %-18s %s\n", YAJL_IS_NUMBER(seq) ? seq->u.number.r : "-", ts, actor,
                       action, detail);
        }
        return 0;
}

enum { OPT_URL = 0x100, OPT_KEY_FILE, OPT_JSON, OPT_VERIFY, OPT_PUBKEY, OPT_LOG };

int cli_audit(int argc, char **argv) {
        static const struct option options[] = {
                {"url", required_argument, NULL, OPT_URL},
                {"key-file", required_argument, NULL, OPT_KEY_FILE},
                {"json", no_argument, NULL, OPT_JSON},
                {"verify", no_argument, NULL, OPT_VERIFY},
                {"audit-pubkey", required_argument, NULL, OPT_PUBKEY},
                {"checkpoint-log", required_argument, NULL, OPT_LOG},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_cli_client_ cli_client *client = NULL;
        _cleanup_cli_reply_ cli_reply rep = {};
        _cleanup_json_ yajl_val doc = NULL;
        _cleanup_pkey_ EVP_PKEY *key = NULL;
        _cleanup_free_ char *base = NULL, *path = NULL;
        const char *url = NULL, *key_file = NULL, *pubkey = NULL, *logs[16];
        size_t n_logs = 0;
        bool json = false, verify = false;
        yajl_val *log = NULL;
        size_t log_n = 0;
        au_error err = {};
        int c, r;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
                const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
                switch (c) {
                case 'h':
                        usage(stdout);
                        return 0;
                case OPT_URL:
                        url = optarg;
                        break;
                case OPT_KEY_FILE:
                        key_file = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_VERIFY:
                        verify = true;
                        break;
                case OPT_PUBKEY:
                        pubkey = optarg;
                        break;
                case OPT_LOG:
                        if (n_logs == ELEMENTSOF(logs))
                                return usage_error("--checkpoint-log: at most %zu files", ELEMENTSOF(logs));
                        logs[n_logs++] = optarg;
                        break;
                case ':':
                        return usage_error("%s: requires a value", name);
                default:
                        return usage_error("%s: unknown option", name);
                }
                if (c != OPT_JSON && c != OPT_VERIFY && !optarg[0])
                        return usage_error("%s: expected a value", name);
        }
        if (argc - optind < 1)
                return usage_error("no ID given: autoosctl audit ID [--verify]");
        if (argc - optind > 1)
                return usage_error("unexpected argument '%s'", argv[optind + 1]);
        const char *id = argv[optind];
        if (!id[0])
                return usage_error("an empty argument");
        if (!pubkey && getenv(PUBKEY_ENV) && getenv(PUBKEY_ENV)[0])
                pubkey = getenv(PUBKEY_ENV);
        if ((pubkey || n_logs) && !verify)
                return usage_error("--audit-pubkey and --checkpoint-log go with --verify");
        if (verify && !pubkey)
                return usage_error(
                        "--verify needs the coordinator's public audit key: --audit-pubkey FILE or "
                        "$" PUBKEY_ENV " (the coordinator's own opinion is GET "
                        "/v1/workflows/ID/audit?verify=1)");
        if (verify && mem_audit_key_load_public(pubkey, &key, &err) < 0) {
                fprintf(stderr, "autoosctl audit: --audit-pubkey %s\n", err.msg);
                return CLI_EXIT_USAGE;
        }

        r = cli_client_new(url, key_file, json, &client);
        if (r != 0)
                return r;
        base = cli_path_join("/v1/workflows", id);
        if (!base || asprintf(&path, "%s/audit", base) < 0) {
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }
        r = cli_client_request(client, "GET", path, NULL, 0, &rep);
        if (r != 0)
                return r;
        r = cli_reply_json(client, &rep, &doc);
        if (r != 0)
                return r;
        yajl_val rows = au_json_get(doc, "rows");
        if (!YAJL_IS_ARRAY(rows)) {
                fprintf(stderr, "autoosctl: cannot read the reply of the coordinator at %s: no \"rows\"\n",
                        cli_client_url(client));
                return EX_PROTOCOL;
        }
        if (json) {
                fwrite(rep.body, 1, rep.len, stdout);
                if (rep.len == 0 || rep.body[rep.len - 1] != '\n')
                        putchar('\n');
        } else if (print_rows(rows) < 0) {
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }
        if (fflush(stdout) != 0)
                return EX_IOERR;
        if (!verify)
                return 0;

        for (size_t i = 0; i < n_logs; i++) {
                yajl_val *more = NULL;
                size_t m = 0;
                if (cli_audit_read_log(logs[i], &more, &m) < 0) {
                        r = CLI_EXIT_USAGE;
                        goto out;
                }
                yajl_val *nl = reallocarray(log, log_n + m + 1, sizeof(yajl_val));
                if (!nl) {
                        for (size_t k = 0; k < m; k++)
                                yajl_tree_free(more[k]);
                        free(more);
                        r = EX_OSERR;
                        goto out;
                }
                log = nl;
                memcpy(log + log_n, more, m * sizeof(yajl_val));
                log_n += m;
                free(more);
        }
        {
                _cleanup_free_ yajl_val *objs = calloc(log_n + 1, sizeof(yajl_val));
                cli_audit_verdict v;
                FILE *out = json ? stderr : stdout;
                char key_id[MEM_AUDIT_KEY_ID_LEN + 1] = "";

                if (!objs) {
                        r = EX_OSERR;
                        goto out;
                }
                for (size_t i = 0; i < log_n; i++)
                        objs[i] = au_json_get(log[i], "audit_checkpoint");
                if (cli_audit_verify(id, doc, key, objs, log_n, &v) < 0) {
                        fputs("autoosctl: out of memory\n", stderr);
                        r = EX_OSERR;
                        goto out;
                }
                mem_audit_key_id(key, key_id);
                if (v.ok) {
                        fprintf(out,
                                "chain verified: %" PRId64
                                " rows, every one covered by a checkpoint signed by key %s "
                                "(%u checkpoint%s, %u from the log)\n",
                                v.rows, key_id, v.checkpoints, v.checkpoints == 1 ? "" : "s", v.from_log);
                        r = 0;
                } else {
                        fprintf(out, "chain BROKEN at seq %" PRId64 "\n", v.bad_seq);
                        clean(v.reason);
                        fprintf(out, "  %s\n", v.reason);
                        r = CLI_EXIT_FAILED;
                }
                if (fflush(out) != 0 && r == 0)
                        r = EX_IOERR;
        }
out:
        for (size_t i = 0; i < log_n; i++)
                yajl_tree_free(log[i]);
        free(log);
        return r;
}
