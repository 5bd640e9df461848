/* SPDX-License-Identifier: MIT */
/*
 * autoosctl adversarial: the command's options and usage. The attack engine
 * is adversarial/ (adversarial/adversarial.h); this file only turns the
 * command line into its options.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adversarial/adversarial.h"
#include "cli.h"
#include "common/json.h"
#include "common/macro.h"

_Static_assert(ADV_EXIT_FAILED == CLI_EXIT_FAILED && ADV_EXIT_USAGE == CLI_EXIT_USAGE,
               "autoosctl adversarial's exit statuses are autoosctl's");

static void adversarial_usage(FILE *f) {
        fputs("Usage: autoosctl adversarial [OPTIONS]\n"
              "\n"
              "Runs the attack catalogue against this host's sandbox and policy: escapes,\n"
              "the kernel's attack surface, exhaustion, side channels, time limits and a\n"
              "hostile model against the agent loop, each in a real sandbox, each with the\n"
              "outcome that containment must show. Given a node or a coordinator, it also\n"
              "attacks autoosd and the coordinator.\n"
              "\n"
              "      --trust LEVEL         restricted, standard, elevated or privileged\n"
              "                            (default: the policy's default level)\n"
              "      --only LIST           groups or attacks, comma-separated (escape, kernel,\n"
              "                            exhaustion, side-channel, time, agent, daemon,\n"
              "                            fleet, coordinator, egress)\n"
              "      --format FORMAT       text (default), tap, json or markdown\n"
              "      --attacks PATH        the attack program (default $" ADV_ATTACK_ENV ", else\n"
              "                            " ADV_DEFAULT_ATTACK ")\n"
              "      --policy FILE         policy to apply (default " ADV_DEFAULT_POLICY ",\n"
              "                            built-in values when it does not exist)\n"
              "      --list                list the attacks and what containment looks like\n"
              "Daemon and coordinator attacks:\n"
              "      --redis URL --node ID autoosd's Redis and node id\n"
              "      --url URL --key KEY   the coordinator and an operator key\n"
              "      --viewer-key KEY      a viewer key, for the role checks\n"
              "      --db URL              PostgreSQL as the schema's owner: the audit attacks\n"
              "                            rewrite a trail (and put it back)\n"
              "      --audit-pubkey FILE   the coordinator's public audit key, to judge them\n"
              "      --checkpoint-log FILE the coordinator's log: the cut-tail attack also\n"
              "                            deletes the database's checkpoints\n"
              "      --attack-timeout SECONDS  each daemon, fleet or coordinator attack's time\n"
              "                            (default 20); the fixed waits grow with it\n"
              "Fleet attacks (with --redis, --node, --url and --key; node identity):\n"
              "      --selector LABEL=VALUE  a label of the --node only (default name=ID): the\n"
              "                            attacks' steps are placed there\n"
              "      --attacker-node NAME --attacker-key FILE  another enrolled node and its key\n"
              "                            file: it signs results for the victim's runs and\n"
              "                            its Redis ACL user tries the victim's keys\n"
              "Egress attacks (from inside egress runs; adversarial/README.md):\n"
              "      --egress-targets FILE the servers to aim at (server, download, sink,\n"
              "                            unlisted, node_service); runs the egress group\n"
              "      --egress-config FILE  the node's egress_* settings (default\n"
              "                            " ADV_DEFAULT_NODE_CONFIG ")\n"
              "  -h, --help                show this help\n"
              "\n"
              "Prints one row per attack (attack, group, expectation, observed outcome and\n"
              "denied syscalls, verdict) and \"N attacks: N contained, N not contained,\n"
              "N skipped, N errors\". Exit status 0 when nothing got through, 1 when an\n"
              "attack was not contained or could not be run, 2 for bad options. Sandbox\n"
              "attacks need root (the agent attacks whose tools run are skipped without).\n",
              f);
}

enum {
        OPT_TRUST = 0x100,
        OPT_ONLY,
        OPT_FORMAT,
        OPT_ATTACKS,
        OPT_POLICY,
        OPT_LIST,
        OPT_REDIS,
        OPT_NODE,
        OPT_URL,
        OPT_KEY,
        OPT_VIEWER_KEY,
        OPT_DB,
        OPT_AUDIT_PUBKEY,
        OPT_CHECKPOINT_LOG,
        OPT_ATTACK_TIMEOUT,
        OPT_SELECTOR,
        OPT_ATTACKER_NODE,
        OPT_ATTACKER_KEY,
        OPT_EGRESS_TARGETS,
        OPT_EGRESS_CONFIG,
};

static const struct option options[] = {
        {"trust", required_argument, NULL, OPT_TRUST},
        {"only", required_argument, NULL, OPT_ONLY},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"attacks", required_argument, NULL, OPT_ATTACKS},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"list", no_argument, NULL, OPT_LIST},
        {"redis", required_argument, NULL, OPT_REDIS},
        {"node", required_argument, NULL, OPT_NODE},
        {"url", required_argument, NULL, OPT_URL},
        {"key", required_argument, NULL, OPT_KEY},
        {"viewer-key", required_argument, NULL, OPT_VIEWER_KEY},
        {"db", required_argument, NULL, OPT_DB},
        {"audit-pubkey", required_argument, NULL, OPT_AUDIT_PUBKEY},
        {"checkpoint-log", required_argument, NULL, OPT_CHECKPOINT_LOG},
        {"attack-timeout", required_argument, NULL, OPT_ATTACK_TIMEOUT},
        {"selector", required_argument, NULL, OPT_SELECTOR},
        {"attacker-node", required_argument, NULL, OPT_ATTACKER_NODE},
        {"attacker-key", required_argument, NULL, OPT_ATTACKER_KEY},
        {"egress-targets", required_argument, NULL, OPT_EGRESS_TARGETS},
        {"egress-config", required_argument, NULL, OPT_EGRESS_CONFIG},
        {"help", no_argument, NULL, 'h'},
        {},
};

/* Letters, digits, '.', '_', '-', 1 to 128 bytes. */
static bool plain_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 128)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '.' || *s == '_' || *s == '-'))
                        return false;
        return true;
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;
        fputs("autoosctl adversarial: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" (see 'autoosctl adversarial --help')\n", stderr);
        return CLI_EXIT_USAGE;
}

/*
 * Reads the options into *o: -1 to go on and run, else the exit status to
 * return now (--help, --list, a usage error).
 */
static int parse_options(int argc, char **argv, adv_options *o) {
        bool list = false;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
                const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
                switch (c) {
                case 'h':
                        adversarial_usage(stdout);
                        return 0;
                case OPT_TRUST:
                        o->trust = sbx_trust_from_string(optarg);
                        if (o->trust == _SBX_TRUST_INVALID)
                                return usage_error(
                                        "--trust %s: expected restricted, standard, elevated or privileged",
                                        optarg);
                        break;
                case OPT_ONLY:
                        o->only = optarg;
                        break;
                case OPT_FORMAT:
                        if (strcmp(optarg, "text") == 0)
                                o->format = ADV_FORMAT_TEXT;
                        else if (strcmp(optarg, "tap") == 0)
                                o->format = ADV_FORMAT_TAP;
                        else if (strcmp(optarg, "json") == 0)
                                o->format = ADV_FORMAT_JSON;
                        else if (strcmp(optarg, "markdown") == 0)
                                o->format = ADV_FORMAT_MARKDOWN;
                        else
                                return usage_error("--format %s: expected text, tap, json or markdown",
                                                   optarg);
                        break;
                case OPT_ATTACKS:
                        o->attack_path = optarg;
                        break;
                case OPT_POLICY:
                        o->policy_file = optarg;
                        break;
                case OPT_LIST:
                        list = true;
                        break;
                case OPT_REDIS:
                        o->fleet.redis_url = optarg;
                        o->fleet_given = true;
                        break;
                case OPT_NODE:
                        o->fleet.node = optarg;
                        o->fleet_given = true;
                        break;
                case OPT_URL:
                        o->fleet.api_url = optarg;
                        o->fleet_given = true;
                        break;
                case OPT_KEY:
                        o->fleet.api_key = optarg;
                        o->fleet_given = true;
                        break;
                case OPT_VIEWER_KEY:
                        o->fleet.viewer_key = optarg;
                        o->fleet_given = true;
                        break;
                case OPT_DB:
                        o->fleet.db_url = optarg;
                        break;
                case OPT_AUDIT_PUBKEY:
                        o->fleet.audit_pubkey = optarg;
                        break;
                case OPT_CHECKPOINT_LOG:
                        o->fleet.checkpoint_log = optarg;
                        break;
                case OPT_ATTACK_TIMEOUT: {
                        char *end;
                        errno = 0;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || optarg[0] == '-' || v < 1 || v > 3600)
                                return usage_error("--attack-timeout %s: expected 1 to 3600 seconds",
                                                   optarg);
                        o->fleet.timeout_ms = (unsigned) v * 1000u;
                        break;
                }
                case OPT_SELECTOR: {
                        const char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg || !eq[1] || strpbrk(optarg, "\"\\") ||
                            !au_utf8_valid(optarg, strlen(optarg)))
                                return usage_error("--selector %s: expected LABEL=VALUE", optarg);
                        for (const char *p = optarg; *p; p++)
                                if ((unsigned char) *p < 0x20)
                                        return usage_error("--selector: control characters");
                        o->fleet.selector = optarg;
                        break;
                }
                case OPT_ATTACKER_NODE:
                        o->fleet.attacker_node = optarg;
                        break;
                case OPT_ATTACKER_KEY:
                        o->fleet.attacker_key = optarg;
                        break;
                case OPT_EGRESS_TARGETS:
                        o->egress.targets = optarg;
                        break;
                case OPT_EGRESS_CONFIG:
                        o->egress.config = optarg;
                        break;
                case ':':
                        return usage_error("%s: requires a value", name);
                default:
                        return usage_error("%s: unknown option", name);
                }
        }
        if (optind < argc)
                return usage_error("unexpected argument %s", argv[optind]);
        if (list) {
                adv_print_list(stdout);
                return 0;
        }
        if ((o->fleet.redis_url != NULL) != (o->fleet.node != NULL))
                return usage_error("--redis and --node go together");
        if (o->fleet.api_key && !o->fleet.api_url)
                return usage_error("--key needs --url");
        /* Node names go into JSON documents and Redis keys as they are. */
        if ((o->fleet.node && !plain_name(o->fleet.node)) ||
            (o->fleet.attacker_node && !plain_name(o->fleet.attacker_node)))
                return usage_error("--node, --attacker-node: a node name (letters, digits, '.', '_', '-')");
        if ((o->fleet.attacker_node != NULL) != (o->fleet.attacker_key != NULL))
                return usage_error("--attacker-node and --attacker-key go together");
        if (o->fleet.attacker_node && o->fleet.node && strcmp(o->fleet.attacker_node, o->fleet.node) == 0)
                return usage_error("--attacker-node must be another node than --node");

        /* Does --only name anything at all? */
        if (o->only && !o->fleet_given && !adv_only_known(o->only))
                return usage_error("--only %s: no such group or attack (see --list)", o->only);
        return -1;
}

int cli_adversarial(int argc, char **argv) {
        adv_options o = {.trust = _SBX_TRUST_INVALID, .format = ADV_FORMAT_TEXT};
        int r = parse_options(argc, argv, &o);

        if (r >= 0)
                return r;
        return adv_run(&o);
}
