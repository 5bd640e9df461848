#!/bin/sh
# SPDX-License-Identifier: MIT
# A result the database can never take (a wall_ms beyond bigint) is set aside
# after a few tries, alone: the other results of its batch, and the
# workflow, go on. Garbage on autoos:results is acknowledged and dropped.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na

id=$(wf_submit "$(workflow poison "$(sh_step slow 'sleep 1; echo real')" "$(sh_step after 'cat /work/inputs/slow.stdout' '{"needs":["slow"]}')")") || bail_out "submit failed"

step_wait "$id" slow dispatched 10 || diag "slow was not dispatched"

# While 'slow' runs: a poisoned result for its attempt, then garbage.
result_xadd "{\"id\":\"$id.slow.1\",\"workflow\":\"$id\",\"step\":\"slow\",\"attempt\":1,\"node\":\"na\",\"outcome\":\"exited\",\"exit_code\":0,\"signal\":null,\"wall_ms\":18446744073709551615,\"cpu_ms\":0,\"memory_peak_bytes\":0,\"oom_kills\":0,\"stdout\":\"fake\",\"stderr\":\"\",\"stdout_truncated\":false,\"stderr_truncated\":false,\"denied_syscalls\":[],\"started_at\":null,\"finished_at\":null}" >/dev/null
rcli XADD autoos:results '*' result 'not json at all' >/dev/null
rcli XADD autoos:results '*' bogus field >/dev/null

ok "the workflow still succeeds" wf_wait "$id" succeeded 30
is "$(step_field "$id" after stdout)" "real" "with the real result's output, not the poisoned one"
is "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id = '$id' AND step_id = 'slow'")" 1 \
        "one run row for slow: the real one"
like "$(cat "$(coord_log c1)")" "cannot be applied.*set aside" "the coordinator logs the poisoned result as set aside"
like "$(cat "$(coord_log c1)")" "not a result" "and the garbage as not a result"
is "$(rcli XPENDING autoos:results coordinators | head -n 1)" 0 "nothing is left pending in the group"
like "$(curl -s "$(coord_url c1)/metrics")" 'db_errors_total\{where="result_set_aside"\} [1-9]' \
        "the metric counts it"
ok "the chain verifies" audit_verified "$id"
fleet_finish
