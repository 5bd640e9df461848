/* SPDX-License-Identifier: MIT */
/*
 * egress.c: a run's veth, addresses, nftables rules and tc limits (issue 13).
 * Internal to libsandbox: run.c calls it around a run's life.
 */
#pragma once

#include "sandbox.h"

/* ---- egress.c: a run's veth, addresses, nftables rules and tc limits -------- */
/* At most this many distinct refused destinations are named in a result. */
#define SBX_EGRESS_MAX_REFUSED 64
typedef struct sbx_egress sbx_egress;           /* the node's side: settings, table, slots */
typedef struct sbx_egress_link sbx_egress_link; /* one run's link and rules */
/*
 * Checks forwarding and the uplink, removes what dead processes left
 * (links and rules of slots nobody holds) and makes the node's nftables
 * table. Locks live in <state_dir>/egress-<prefix>.
 */
int sbx_egress_new(const sbx_egress_config *cfg, const char *state_dir, sbx_egress **ret, au_error *err);
sbx_egress *sbx_egress_free(sbx_egress *eg);
/*
 * Takes a slot of the pool and gives the run in netns_fd its link, address,
 * route, bandwidth cap and rules (ep: allowlist and limits). Before clone.
 */
int sbx_egress_attach(sbx_egress *eg, int netns_fd, const sbx_egress_policy *ep, sbx_egress_link **ret,
                      au_error *err);
/*
 * The node's resolv.conf (a "nameserver" line per egress_resolvers entry,
 * mode 0644, in a directory the runs' ids can search), for the child to bind
 * over the sandbox's /etc/resolv.conf.
 */
const char *sbx_egress_resolv_conf(const sbx_egress *eg);
/* Reads the run's traffic and refusals into res (may be NULL), removes everything, frees. */
sbx_egress_link *sbx_egress_detach(sbx_egress_link *l, sbx_result *res);
