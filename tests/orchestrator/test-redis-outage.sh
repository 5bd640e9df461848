#!/bin/sh
# SPDX-License-Identifier: MIT
# A short Redis outage is not a node loss: heartbeat keys age while Redis is
# away and nodes cannot beat, so the coordinator gives them node_timeout and a
# beat after Redis returns. Work goes on afterwards.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
REDIS_EXTRA="--appendonly yes --appendfsync always"
fleet_up na nb
# healthy_since [TIME]: both nodes healthy, with a heartbeat at TIME or later (ISO 8601, UTC, ms).
healthy_since() {
        api GET /v1/nodes
        [ "$(printf '%s' "$RESP" |
                jq --arg t "${1:-}" '[.nodes[] | select(.state == "healthy" and .last_seen >= $t)] | length')" = 2 ]
}
ok "both nodes healthy before the outage" wait_for 30 healthy_since

p=$REDIS_PID
kill -KILL "$p"
wait "$p" 2>/dev/null
REDIS_PID=
sleep 1.5
for _i in $(seq 1 50); do _redis_spawn && break; sleep 0.1; done
ok "redis-server is back on its port" pid_alive "$REDIS_PID"
back=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
# Settled once both nodes have beaten since Redis came back: the coordinator declares a
# node lost only when its heartbeat is older than node_timeout, which these beats are not.
ok "both nodes beat again after the outage" wait_for 30 healthy_since "$back"

is "$(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id IS NULL AND action = 'node_lost'")" 0 \
        "no node declared lost for a 1.5 s Redis outage"
ok "node na still runs" pid_alive "$(node_pid na)"
ok "node nb still runs" pid_alive "$(node_pid nb)"
api GET /v1/nodes
is "$(jf '[.nodes[] | select(.state == "healthy")] | length' "$RESP")" 2 "both nodes healthy"
id=$(wf_submit "$(workflow after "$(sh_step a 'echo ok')")") || bail_out "submit failed"
ok "a workflow runs after the outage" wf_wait "$id" succeeded 20
fleet_finish
