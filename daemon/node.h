/* SPDX-License-Identifier: MIT */
/*
 * The node: jobs from the bus (and the control socket) through the sandbox
 * and back, with nothing lost when Redis, the daemon or a run misbehaves.
 *
 *   job entry --parse/policy--> rejected result
 *             --duplicate id--> wait for the running one, or re-send the stored result
 *             --queue (slots, per-workflow token bucket)--> sandbox run
 *   result --spool file (fsync) --> one Lua call: XADD results, remember, XACK --> unlink
 *
 * A result is acknowledged on the jobs stream only together with its XADD;
 * until then it sits in the spool (state_dir/spool), which survives Redis
 * outages and daemon restarts.
 */
#pragma once

#include "common/loop.h"
#include "common/metrics.h"
#include "config.h"
#include "control.h"
#include "memory/bus.h"
#include "sandbox/sandbox.h"

typedef struct dmn_node dmn_node;

int dmn_node_new(au_loop *loop, const dmn_config *cfg, const sbx_policy *policy, au_metrics *metrics,
                 dmn_node **ret, au_error *err);
dmn_node *dmn_node_free(dmn_node *n);

/* Connects to Redis and starts taking jobs and heartbeating. */
int dmn_node_start(dmn_node *n, au_error *err);

/* SIGHUP: new settings that apply live (rate, burst, labels, max_runs) and policy. */
void dmn_node_reload(dmn_node *n, const dmn_config *cfg, const sbx_policy *policy);

/* Stops taking jobs. With grace_ms, runs still going after it are killed and reported. */
void dmn_node_drain(dmn_node *n, uint64_t grace_ms);
/* True once draining and nothing is running or queued, and every result is delivered or,
 * with Redis away, safe in the spool. */
bool dmn_node_idle(const dmn_node *n);

/* Control socket entry points. */
char *dmn_node_status_json(dmn_node *n);
void dmn_node_run_local(dmn_node *n, const char *spec_json, size_t len, dmn_request *req);

/* For sd_notify STATUS=. */
const char *dmn_node_status_line(dmn_node *n);
