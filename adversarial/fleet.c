/* SPDX-License-Identifier: MIT */
/*
 * The "daemon", "fleet" and "coordinator" groups of `autoosctl adversarial`
 * (issues 5 and 10): hostile jobs written straight into a running autoosd's
 * Redis jobs stream (hiredis, synchronous), forged, replayed and planted
 * results and heartbeats against a fleet with node identity, and hostile
 * requests to a running coordinator (the shared client, client/client.h, and
 * a raw socket for what libcurl will not send).
 *
 * Each attack checks one concrete expectation: the outcome of a result and
 * the field its error names, an HTTP status and error code, what was stored.
 * After each one the target must still be alive: the node's heartbeat key
 * refreshed again, by the same life of the daemon (same started_at), the
 * coordinator's /healthz answering 200. Anything else is "not contained".
 * Every wait is bounded by the attack's time (--attack-timeout, default
 * 20 s; the fixed waits below grow with it, for a slow or busy host), every
 * reply is bounded in size and read defensively.
 *
 * Ids are unique per invocation ("adv-<pid>-<ms>-..."): runs against the same
 * Redis and coordinator never see each other's results or workflows. The
 * jobs-stream entries written here are deleted once the node has answered
 * them (the 20 MiB one would otherwise stay in Redis's memory).
 */
#include "adversarial/fleet-internal.h"

/* The groups, in the order they run: each group's catalogue is in its own file. */
#define ATTACKS_MAX 64 /* per group */
static const struct {
        const attack *attacks;
        const size_t *n;
} groups[] = {
        {fleet_daemon_attacks, &fleet_daemon_attacks_n},
        {fleet_identity_attacks, &fleet_identity_attacks_n},
        {fleet_api_attacks, &fleet_api_attacks_n},
};

static int add_row(adv_report *rep, adv_row *row) {
        fleet_printable(row->observed);
        fleet_printable(row->note);
        fleet_printable(row->expectation);
        return adv_report_add(rep, row);
}

static void row_init(adv_row *row, const attack *a) {
        *row = (adv_row){0};
        snprintf(row->group, sizeof(row->group), "%s", a->group);
        snprintf(row->name, sizeof(row->name), "%s", a->name);
        snprintf(row->expectation, sizeof(row->expectation), "%s", a->expectation);
}

/* Readies a group's target; false (why set) when it cannot be attacked. */
static bool group_setup(fleet *f, const char *group, char *why, size_t size) {
        bool fleet_group = strcmp(group, "fleet") == 0;
        if (strcmp(group, "daemon") == 0 || fleet_group) {
                mem_stream_jobs(f->jobs_key, sizeof(f->jobs_key), f->t->node);
                mem_key_node(f->node_key, sizeof(f->node_key), f->t->node);
                if (!f->rc && fleet_redis_connect(f) < 0) {
                        snprintf(why, size, "%s", f->redis_err);
                        return false;
                }
                /* (A heartbeat key just deleted is written again within a second.) */
                uint64_t until = au_now_ms() + HEARTBEAT_WAIT_MS;
                while (fleet_node_started_at(f, f->started_at, sizeof(f->started_at)) < 0) {
                        if (!f->rc || au_now_ms() >= until) {
                                snprintf(why, size, "node %.64s has no heartbeat (%.80s)", f->t->node,
                                         f->node_key);
                                return false;
                        }
                        au_sleep_ms(100);
                }
                if (!fleet_group)
                        return true;
        }
        const char *u = f->t->api_url;
        size_t n = strlen(u);
        while (n > 0 && u[n - 1] == '/')
                n--;
        if (n >= sizeof(f->base)) {
                snprintf(why, size, "API URL too long");
                return false;
        }
        snprintf(f->base, sizeof(f->base), "%.*s", (int) n, u);
        f->raw_ok = false;
        if (strncmp(f->base, "http://", 7) == 0) {
                const char *h = f->base + 7, *end = h + strcspn(h, "/");
                const char *colon = NULL;
                if (*h == '[') {
                        const char *rb = memchr(h, ']', (size_t) (end - h));
                        if (rb) {
                                snprintf(f->host, sizeof(f->host), "%.*s", (int) (rb - h - 1), h + 1);
                                colon = rb[1] == ':' ? rb + 1 : NULL;
                        }
                } else {
                        colon = memchr(h, ':', (size_t) (end - h));
                        snprintf(f->host, sizeof(f->host), "%.*s", (int) ((colon ? colon : end) - h), h);
                }
                snprintf(f->port, sizeof(f->port), "%.*s",
                         colon ? (int) MIN((size_t) (end - colon - 1), (size_t) 7) : 2,
                         colon ? colon + 1 : "80");
                f->raw_ok = f->host[0] && !*end;
        }
        if (!f->api && adv_api_open(f->base, &f->api) < 0) {
                snprintf(why, size, "out of memory");
                return false;
        }
        f->deadline = au_now_ms() + fleet_scaled(f, 10000);
        return fleet_coord_alive(f, why, size);
}

static bool target_given(const adv_fleet_target *t, const char *group) {
        if (strcmp(group, "daemon") == 0)
                return t->redis_url && t->node;
        if (strcmp(group, "fleet") == 0)
                return t->redis_url && t->node && t->api_url && t->api_key;
        return t->api_url && t->api_key;
}

int adv_fleet_attacks(const adv_fleet_target *t, const char *only, adv_report *rep) {
        fleet f = {.t = t, .timeout_ms = t->timeout_ms ? t->timeout_ms : DEFAULT_TIMEOUT_MS};
        const char *group = NULL;
        bool ready = false;
        char why[256] = "";
        int ret = 0;

        snprintf(f.prefix, sizeof(f.prefix), "adv-%d-%" PRIu64, (int) getpid(), au_now_ms());

        for (size_t k = 0; k < ELEMENTSOF(groups) * ATTACKS_MAX; k++) {
                size_t g = k / ATTACKS_MAX, i = k % ATTACKS_MAX;
                if (i >= *groups[g].n)
                        continue;
                const attack *a = &groups[g].attacks[i];
                adv_row row;

                if (!adv_selected(only, a->group, a->name) || !target_given(t, a->group))
                        continue;
                if (!group || strcmp(group, a->group) != 0) {
                        group = a->group;
                        f.down = false;
                        why[0] = '\0';
                        ready = group_setup(&f, group, why, sizeof(why));
                        if (!ready && ret == 0)
                                ret = -ECONNREFUSED;
                }
                row_init(&row, a);
                if (!ready) {
                        fleet_set_verdict(&row, ADV_ERROR, "not run: %s", why);
                        if (add_row(rep, &row) < 0)
                                ret = -ENOMEM;
                        continue;
                }
                if (f.down) {
                        fleet_set_verdict(&row, ADV_ERROR, "not run: %s", f.down_why);
                        if (add_row(rep, &row) < 0)
                                ret = -ENOMEM;
                        continue;
                }
                uint64_t t0 = au_now_ms();
                f.deadline = t0 + (uint64_t) f.timeout_ms * (a->time_factor ? a->time_factor : 1);
                a->run(&f, &row);
                row.ms = (double) (au_now_ms() - t0);

                bool daemon = strcmp(a->group, "daemon") == 0, both = strcmp(a->group, "fleet") == 0;
                if (daemon)
                        fleet_drop_entries(&f);
                char dead[200] = "";
                /* The fleet group's attacks must leave both the node and the coordinator standing. */
                bool alive = daemon ? fleet_node_alive(&f, dead, sizeof(dead))
                                    : fleet_coord_alive(&f, dead, sizeof(dead));
                if (alive && both && !fleet_node_alive(&f, dead, sizeof(dead))) {
                        alive = false;
                        daemon = true;
                }
                if (!alive) {
                        f.down = true;
                        snprintf(f.down_why, sizeof(f.down_why), "the %s was gone after %s (%s)",
                                 daemon ? "node" : "coordinator", a->name, dead);
                        char prev[256];
                        snprintf(prev, sizeof(prev), "%s", row.observed);
                        fleet_set_verdict(&row, ADV_NOT_CONTAINED, "%s is gone: %s; %s",
                                          daemon ? "the node" : "the coordinator", dead, prev);
                }
                if (add_row(rep, &row) < 0)
                        ret = -ENOMEM;
        }
        fleet_drop_entries(&f);
        fleet_redis_close(&f);
        f.api = api_conn_free(f.api);
        return ret;
}
