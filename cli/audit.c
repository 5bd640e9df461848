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
#include "memory/audit-verify.h"

#define PUBKEY_ENV "AUTOOS_AUDIT_PUBKEY"
#define DETAIL_WIDTH 72

/* ---- the command ---------------------------------------------------------------------- */

static const char *str_of(yajl_val obj, const char *key) {
        yajl_val v = au_json_get(obj, key);
        return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

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

/*
 * autoosctl audit --verify: the trail doc of workflow id checked here against
 * key, with the checkpoints of the n_logs coordinator logs; the verdict on
 * stdout (stderr with json). Returns the exit status.
 */
static int verify_trail(const char *id, yajl_val doc, EVP_PKEY *key, const char *const *logs, size_t n_logs,
                        bool json) {
        yajl_val *log = NULL;
        size_t log_n = 0;
        int r = 0;

        for (size_t i = 0; i < n_logs; i++) {
                yajl_val *more = NULL;
                size_t m = 0;
                au_error lerr = {};
                int lr = mem_audit_log_checkpoints(logs[i], &more, &m, &lerr);
                if (lr < 0) {
                        if (lr == -ENOMEM)
                                fputs("autoosctl: out of memory\n", stderr);
                        else
                                fprintf(stderr, "autoosctl: --checkpoint-log %s\n", lerr.msg);
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
                mem_audit_verdict v;
                FILE *out = json ? stderr : stdout;
                char key_id[MEM_AUDIT_KEY_ID_LEN + 1] = "";

                if (!objs) {
                        r = EX_OSERR;
                        goto out;
                }
                for (size_t i = 0; i < log_n; i++)
                        objs[i] = au_json_get(log[i], "audit_checkpoint");
                if (mem_audit_trail_verify(id, doc, key, objs, log_n, &v) < 0) {
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

        return verify_trail(id, doc, key, logs, n_logs, json);
}
