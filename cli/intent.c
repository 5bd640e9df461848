/* SPDX-License-Identifier: MIT */
/* autoosctl intent: a sentence to a draft workflow through the coordinator's planner (POST /v1/intents). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/intent.h"
#include "common/json.h"
#include "common/macro.h"

/* A planner may take its time (three rounds, each retried and falling back): more than other requests. */
#define INTENT_TIMEOUT_MS 600000L
#define MAX_SENTENCE 4096

static int usage(FILE *f, int status) {
        fputs("Usage: autoosctl intent SENTENCE [--submit] [--name NAME] [--json]\n"
              "       [--url URL] [--key-file FILE] [--cacert FILE]\n"
              "\n"
              "Asks the coordinator's planner (its fabric's planner role) to turn SENTENCE\n"
              "(at most 4096 bytes) into a draft workflow, checked by the validator\n"
              "submissions use. Prints the draft's steps with what each needs, its risk by\n"
              "the policy's rules and why, the planner's own rating, the approval steps\n"
              "inserted before steps above the risk line, and what the planner cost.\n"
              "Needs an operator or admin key.\n"
              "\n"
              "      --submit     submit the draft as 'autoosctl submit' would, and print the\n"
              "                   workflow's id\n"
              "      --name NAME  the workflow's name instead of the planner's\n"
              "      --json       print the coordinator's answer\n",
              f);
        return status;
}

/* s with anything but printable ASCII as '?', at most max bytes ("..." past it); a new string. */
static char *shown(const char *s, size_t max) {
        size_t n = s ? strlen(s) : 0, k = MIN(n, max);
        char *out = malloc(k + 4);

        if (!out)
                return NULL;
        for (size_t i = 0; i < k; i++)
                out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        strcpy(out + k, n > max ? "..." : "");
        return out;
}

static const char *str(yajl_val obj, const char *key) {
        yajl_val v = au_json_get(obj, key);
        return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

static double num(yajl_val obj, const char *key) {
        yajl_val v = au_json_get(obj, key);
        return YAJL_IS_NUMBER(v) ? strtod(v->u.number.r, NULL) : 0;
}

/* The risk entry of step id (risk.steps[]), or NULL (an inserted approval step has none). */
static yajl_val risk_of(yajl_val risk_steps, const char *id) {
        for (size_t i = 0; id && YAJL_IS_ARRAY(risk_steps) && i < risk_steps->u.array.len; i++) {
                const char *s = str(risk_steps->u.array.values[i], "id");
                if (s && strcmp(s, id) == 0)
                        return risk_steps->u.array.values[i];
        }
        return NULL;
}

/* Which step an inserted approval step guards, or NULL. */
static const char *guarded_by(yajl_val risk_steps, const char *id) {
        for (size_t i = 0; id && YAJL_IS_ARRAY(risk_steps) && i < risk_steps->u.array.len; i++) {
                const char *a = str(risk_steps->u.array.values[i], "approval_step");
                if (a && strcmp(a, id) == 0)
                        return str(risk_steps->u.array.values[i], "id");
        }
        return NULL;
}

static int oom(void) {
        fputs("autoosctl: out of memory\n", stderr);
        return EX_OSERR;
}

static int print_step(yajl_val st, yajl_val risk_steps) {
        const char *id = str(st, "id"), *kind = str(st, "kind");
        yajl_val needs = au_json_get(st, "needs"), rk = risk_of(risk_steps, id);
        const char *guards = guarded_by(risk_steps, id);
        char nb[256] = "";

        for (size_t i = 0; YAJL_IS_ARRAY(needs) && i < needs->u.array.len; i++) {
                yajl_val n = needs->u.array.values[i];
                size_t l = strlen(nb);
                snprintf(nb + l, sizeof(nb) - l, "%s%s", l ? "," : "",
                         YAJL_IS_STRING(n) ? n->u.string : "?");
        }
        _cleanup_free_ char *sid = shown(id, 40), *sneeds = shown(nb[0] ? nb : "-", 40),
                            *level = shown(rk ? str(rk, "level") : "-", 8),
                            *mlevel = shown(rk && str(rk, "model_level") ? str(rk, "model_level") : "-", 8),
                            *why = shown(rk ? (str(rk, "why") && str(rk, "why")[0] ? str(rk, "why") : "-")
                                            : NULL,
                                         200),
                            *sg = shown(guards, 40);
        if (!sid || !sneeds || !level || !mlevel || !why || !sg)
                return oom();
        printf("  %-24s %-9s %-24s %-7s %-7s ", sid, kind ? kind : "run", sneeds, level, mlevel);
        if (guards)
                printf("approval inserted before '%s'\n", sg);
        else
                printf("%s\n", why);
        return 0;
}

static int print_draft(yajl_val doc) {
        yajl_val draft = au_json_get(doc, "draft"), risk = au_json_get(doc, "risk"),
                 tokens = au_json_get(doc, "tokens");
        yajl_val steps = au_json_get(draft, "steps"), rsteps = au_json_get(risk, "steps");
        int r;

        if (!YAJL_IS_ARRAY(steps)) {
                fputs("autoosctl: cannot read the coordinator's answer: no draft \"steps\"\n", stderr);
                return EX_PROTOCOL;
        }
        _cleanup_free_ char *name = shown(str(draft, "name") ? str(draft, "name") : "workflow", 128),
                            *summary = shown(str(doc, "summary"), 1000), *line = shown(str(risk, "line"), 8),
                            *level = shown(str(risk, "level"), 8),
                            *mlevel = shown(str(risk, "model_level") ? str(risk, "model_level") : "-", 8),
                            *prov = shown(str(doc, "provider"), 64), *model = shown(str(doc, "model"), 128);
        if (!name || !summary || !line || !level || !mlevel || !prov || !model)
                return oom();
        printf("draft '%s': %zu steps, risk %s (the planner says %s; approval above %s)\n", name,
               steps->u.array.len, level, mlevel, line);
        if (summary[0])
                printf("summary: %s\n", summary);
        printf("\n  %-24s %-9s %-24s %-7s %-7s %s\n", "STEP", "KIND", "NEEDS", "RISK", "PLANNER", "WHY");
        for (size_t i = 0; i < steps->u.array.len; i++)
                if ((r = print_step(steps->u.array.values[i], rsteps)) != 0)
                        return r;
        unsigned approvals = (unsigned) num(doc, "approvals");
        printf("\n%u approval step%s inserted", approvals, approvals == 1 ? "" : "s");
        for (size_t i = 0, k = 0; YAJL_IS_ARRAY(rsteps) && i < rsteps->u.array.len; i++) {
                const char *a = str(rsteps->u.array.values[i], "approval_step");
                _cleanup_free_ char *sa = shown(a, 64),
                                    *sb = shown(str(rsteps->u.array.values[i], "id"), 64);
                if (a && sa && sb)
                        printf("%s %s (before %s)", k++ ? "," : ":", sa, sb);
        }
        printf("\nplanner: %s/%s, %u round%s, %.0f input + %.0f output tokens, $%.6f\n", prov, model,
               (unsigned) num(doc, "rounds"), num(doc, "rounds") == 1 ? "" : "s", num(tokens, "input"),
               num(tokens, "output"), num(doc, "cost_usd"));
        return 0;
}

int cli_intent(int argc, char **argv) {
        static const struct option options[] = {
                {"url", required_argument, NULL, 'u'},
                {"key-file", required_argument, NULL, 'k'},
                {"json", no_argument, NULL, 'j'},
                {"submit", no_argument, NULL, 's'},
                {"name", required_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_cli_client_ cli_client *client = NULL;
        _cleanup_cli_reply_ cli_reply rep = {};
        _cleanup_json_gen_ yajl_gen g = NULL;
        _cleanup_json_ yajl_val doc = NULL;
        _cleanup_free_ char *body = NULL;
        const char *url = NULL, *key_file = NULL, *name = NULL;
        bool json = false, submit = false;
        size_t len;
        int c, r;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1)
                switch (c) {
                case 'u':
                        url = optarg;
                        break;
                case 'k':
                        key_file = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 's':
                        submit = true;
                        break;
                case 'n':
                        name = optarg;
                        break;
                case 'h':
                        return usage(stdout, 0);
                default:
                        fprintf(stderr, "autoosctl intent: %s '%s'\n",
                                c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
                        return usage(stderr, CLI_EXIT_USAGE);
                }
        if (argc - optind != 1) {
                fprintf(stderr, "autoosctl intent: %s\n",
                        argc - optind == 0 ? "no SENTENCE given" : "one SENTENCE (quote it)");
                return usage(stderr, CLI_EXIT_USAGE);
        }
        const char *sentence = argv[optind];
        if (!sentence[0] || strlen(sentence) > MAX_SENTENCE) {
                fprintf(stderr, "autoosctl intent: the sentence must be 1 to %d bytes\n", MAX_SENTENCE);
                return CLI_EXIT_USAGE;
        }
        g = au_json_gen_new(false);
        if (!g || au_json_gen_map_open(g) < 0 || au_json_gen_kv_string(g, "sentence", sentence) < 0 ||
            au_json_gen_kv_bool(g, "submit", submit) < 0 ||
            (name && au_json_gen_kv_string(g, "name", name) < 0) || au_json_gen_map_close(g) < 0 ||
            !(body = au_json_gen_finish(g, &len)))
                return oom();

        r = cli_client_new(url, key_file, json, &client);
        if (r != 0)
                return r;
        r = cli_client_call(client, "POST", "/v1/intents", body, len, INTENT_TIMEOUT_MS, &rep);
        if (r != 0) {
                cli_client_report(client, &rep);
                return r;
        }
        if (json) {
                fwrite(rep.body, 1, rep.len, stdout);
                putchar('\n');
                return fflush(stdout) == 0 ? 0 : EX_IOERR;
        }
        r = cli_reply_json(client, &rep, &doc);
        if (r != 0)
                return r;
        r = print_draft(doc);
        if (r != 0)
                return r;
        yajl_val wf = au_json_get(doc, "workflow");
        if (submit) {
                _cleanup_free_ char *id = shown(str(wf, "id"), 64);
                if (!id || !id[0]) {
                        fputs("autoosctl: cannot read the coordinator's answer: no workflow \"id\"\n",
                              stderr);
                        return EX_PROTOCOL;
                }
                printf("submitted %s\n", id);
        } else
                puts("not submitted: review it, then run again with --submit (or save --json's draft and "
                     "'autoosctl submit' it)");
        return fflush(stdout) == 0 ? 0 : EX_IOERR;
}
