#!/bin/sh
# SPDX-License-Identifier: MIT
# Faults: a 200-step workflow (eight stages of four chains of six steps, each
# stage ending in a join of its chains; every step computes its output from
# its input, so data passing is checked everywhere) runs on three autoosd
# nodes while a driver kills, at random moments and again and again, a random
# autoosd (SIGKILL, restarted 0.5-2 s later), the coordinator (SIGKILL),
# redis-server (appendonly yes, appendfsync always; SIGKILL, restarted on the
# same port and dir) and PostgreSQL (pg_ctl stop -m immediate), each started
# again 0.1-1 s later; the next fault comes 0.1-0.9 s after the fleet is
# healthy again (the coordinator's /healthz 200, every node beating and
# connected), until the workflow ends. Every kind comes at least twice while
# the workflow runs, however fast the host: an approval step (gate) after
# stage four holds the rest of the workflow until the driver has injected
# every kind twice, and only then does a second operator key approve it.
#
# Then: the workflow succeeded; every step succeeded exactly once (one
# applied success, on its last attempt); every result a node sent reached
# PostgreSQL and each runs row has its 'result' or 'late_result' audit row;
# every attempt of every step was dispatched once and given up for a reason
# written in the trail; the workflow's chain and the fleet chain verify;
# every output is the value expected; nothing is left unacknowledged in
# Redis; no sandbox process and no run cgroup is left on the host (while the
# nodes idle, and after they stop).
#
# The plan (step durations, which steps fail once, the kinds of fault, their
# order, targets, gaps and down times) comes from a seeded RNG: the seed is
# printed, FAULTS_SEED=N repeats the plan (not the timing).
# FLEET_KEEP_LOGS=DIR keeps the logs. Needs root.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
need_cmd find grep sort

SEED=${FAULTS_SEED:-$((($(date +%s%N) / 1000) % 999983 + 1))}
case $SEED in
'' | *[!0-9]*) bail_out "FAULTS_SEED must be a number, not '$SEED'" ;;
esac
diag "seed: $SEED (FAULTS_SEED=$SEED repeats this plan)"

STAGES=8
CHAINS=4
LEN=6
GATE_AFTER=4 # the approval step "gate" needs this stage's join
NODES="n1 n2 n3"
# Injection stops when the workflow has ended, or after this long once every
# kind came twice; it never goes on past INJECT_MAX_MS.
INJECT_MS=${FAULTS_INJECT_MS:-100000}
INJECT_MAX_MS=${FAULTS_INJECT_MAX_MS:-300000}
# Every step's command line carries this marker: a process holding it after
# the runs is a leftover. MARK_RE matches it without matching itself (grep's argv).
MARK=autoos-faults-$$-$SEED
MARK_RE="autoos-faults[-]$$-$SEED"
# The nodes take host uids from a pool of their own, outside the default one
# (1000000000..1000065535) that other tests on this host may be using: a
# process with one of these uids after the runs is one of our sandboxes.
UID_COUNT=256
UID_BASE=$((1100000000 + ($$ % 100000) * UID_COUNT))
DAEMON_PIDS=$TEST_TMP/daemon-pids # every autoosd pid (names their run cgroups)

# --- the workflow ------------------------------------------------------------------

# steps.tsv: id, needs (comma-separated), script, expected stdout; the
# approval step "gate" has no script, and passes its need's output on.
awk -v seed="$SEED" -v stages=$STAGES -v chains=$CHAINS -v len=$LEN -v gate=$GATE_AFTER -v mark="$MARK" '
function pause() { return sprintf("sleep %.3f; ", (50 + int(rand() * 251)) / 1000) }
BEGIN {
        srand(seed)
        OFS = "\t"
        for (s = 1; s <= stages; s++) {
                for (c = 1; c <= chains; c++)
                        for (k = 1; k <= len; k++) {
                                id = "s" s "c" c "k" k
                                inc = s * 100 + c * 10 + k
                                prev = k > 1 ? "s" s "c" c "k" (k - 1) : (s > 1 ? "j" (s - 1) : "")
                                script = ": " mark "; " pause()
                                # about one step in twenty fails its first attempt (retry)
                                if (rand() < 0.05)
                                        script = script "[ \"$AUTOOS_ATTEMPT\" -gt 1 ] || exit 3; "
                                if (prev == "") {
                                        script = script "v=1; "
                                        val[id] = 1 + inc
                                } else {
                                        script = script "v=$(cat /work/inputs/" prev ".stdout); "
                                        val[id] = val[prev] + inc
                                }
                                needs = (k == 1 && s == gate + 1) ? "gate" : prev
                                print id, needs, script "echo $((v + " inc "))", sprintf("%d", val[id])
                        }
                id = "j" s
                needs = ""
                sum = 0
                script = ": " mark "; " pause() "echo $(("
                for (c = 1; c <= chains; c++) {
                        last = "s" s "c" c "k" len
                        needs = needs (c > 1 ? "," : "") last
                        script = script (c > 1 ? " + " : "") "$(cat /work/inputs/" last ".stdout)"
                        sum += val[last]
                }
                val[id] = sum
                print id, needs, script "))", sprintf("%d", sum)
                if (s == gate)
                        print "gate", id, "", ""
        }
}' >"$TEST_TMP/steps.tsv"
NSTEPS=$(grep -vc '^gate' "$TEST_TMP/steps.tsv") # steps that run
jq -Rn '{name: "faults", steps: [inputs | split("\t") |
        (if .[0] == "gate" then {id: .[0], kind: "approval"} else
        {id: .[0], run: {argv: ["/bin/sh", "-c", .[2]]},
         retry: {max_attempts: 5, backoff_ms: 100, max_backoff_ms: 1000}} end) +
        (if .[1] == "" then {} else {needs: (.[1] | split(","))} end)]}' \
        <"$TEST_TMP/steps.tsv" >"$TEST_TMP/wf.json" || bail_out "could not build the workflow"
grep -v '^gate' "$TEST_TMP/steps.tsv" | cut -f1,4 | tr '\t' = | sort >"$TEST_TMP/expected"

# plan: kind, node, gap before it (ms), down time (ms). Rounds of the four
# kinds in a random order, so every kind comes twice in the first eight.
awk -v seed="$SEED" 'BEGIN {
        srand(seed * 7 + 3)
        n = split("autoosd coordinator redis postgres", kind, " ")
        for (round = 0; round < 60; round++) {
                for (i = 1; i <= n; i++)
                        b[i] = kind[i]
                for (i = n; i > 1; i--) {
                        j = 1 + int(rand() * i)
                        t = b[i]; b[i] = b[j]; b[j] = t
                }
                for (i = 1; i <= n; i++) {
                        down = b[i] == "autoosd" ? 500 + int(rand() * 1501) : 100 + int(rand() * 901)
                        print b[i], "n" (1 + int(rand() * 3)), 100 + int(rand() * 801), down
                }
        }
}' >"$TEST_TMP/plan"

# --- the fleet -------------------------------------------------------------------------

REDIS_EXTRA="--appendonly yes --appendfsync always"
pg_start
redis_start
KEY=$(key_create operator operator)
APPROVER=$(key_create approver operator) # approvals come from someone other than the submitter
coord_start c1 || bail_out "the coordinator did not start"
: >"$DAEMON_PIDS"
for n in $NODES; do
        node_start "$n" "max_runs = 4" "uid_base = $UID_BASE" "uid_count = $UID_COUNT" ||
                bail_out "node $n did not start"
        node_pid "$n" >>"$DAEMON_PIDS"
done

# ms_sleep MS
ms_sleep() {
        sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"
}

# fleet_healthy: the coordinator answers /healthz 200 (database and Redis)
# and every node beats and is connected to Redis.
fleet_healthy() {
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$COORD_URL/healthz")" = 200 ] || return 1
        for _n in $NODES; do
                _fl_node_up "$_n" || return 1
        done
}

kill_autoosd() {
        _p=$(node_pid "$1")
        kill -KILL "$_p" 2>/dev/null
        _fl_reap "$_p" 5
        ms_sleep "$2"
        node_start "$1" || return 1
        node_pid "$1" >>"$DAEMON_PIDS"
}

kill_coordinator() {
        coord_kill c1 KILL
        ms_sleep "$2"
        coord_start c1
}

kill_redis() {
        kill -KILL "$REDIS_PID" 2>/dev/null
        _fl_reap "$REDIS_PID" 5
        REDIS_PID=
        ms_sleep "$2"
        for _a in $(seq 1 50); do
                _redis_spawn && return 0
                sleep 0.1
        done
        diag "redis-server did not start again:" "$(tail -n 5 "$REDIS_DIR/redis.log")"
        return 1
}

kill_postgres() {
        pg_stop immediate || return 1
        ms_sleep "$2"
        pg_start
}

wf_db_state() {
        psql_q "SELECT state FROM workflows WHERE id = '$id'" 2>/dev/null
}

# --- the run -----------------------------------------------------------------------------

id=$(wf_submit "$TEST_TMP/wf.json") || bail_out "the workflow was not accepted"
is "$NSTEPS" 200 "the workflow has 200 steps that run (and the approval step gate)"
is "$(rcli CONFIG GET appendonly | tail -n 1) $(rcli CONFIG GET appendfsync | tail -n 1)" "yes always" \
        "redis-server keeps an append-only file, fsynced at every write"
t0=$(now_ms)
gate_approved=0
f_total=0
f_autoosd=0
f_coordinator=0
f_redis=0
f_postgres=0
f_survived=0
: >"$TEST_TMP/faults.log"
every_kind_twice() {
        [ "$f_autoosd" -ge 2 ] && [ "$f_coordinator" -ge 2 ] && [ "$f_redis" -ge 2 ] && [ "$f_postgres" -ge 2 ]
}
# gate_approve: approves the gate once it waits (returns 1 while it does not).
gate_approve() {
        [ "$gate_approved" = 1 ] && return 0
        [ "$(psql_q "SELECT state FROM steps WHERE workflow_id = '$id' AND step_id = 'gate'" 2>/dev/null)" = \
                awaiting_human ] || return 1
        api_as "$APPROVER" POST "/v1/workflows/$id/steps/gate/approve"
        [ "$HTTP_STATUS" = 200 ] || return 1
        gate_approved=1
        diag "the gate was approved after $f_total faults, $((($(now_ms) - t0) / 1000)) s into the workflow"
}
while read -r kind node gap down <&3; do
        [ "$(wf_db_state)" = running ] || break
        elapsed=$(($(now_ms) - t0))
        [ "$elapsed" -lt "$INJECT_MAX_MS" ] || break
        [ "$elapsed" -ge "$INJECT_MS" ] && every_kind_twice && break
        every_kind_twice && gate_approve
        ms_sleep "$gap"
        [ "$kind" = autoosd ] || node=-
        t_f=$(now_ms)
        at=$(date +%T.%3N)
        f_total=$((f_total + 1))
        eval "f_$kind=\$((f_$kind + 1))"
        back=0
        "kill_$kind" "$node" "$down" || back=1
        if [ $back = 0 ] && wait_for 30 fleet_healthy; then
                f_survived=$((f_survived + 1))
                echo "$at (+$(((t_f - t0) / 1000)).$(printf '%03d' $(((t_f - t0) % 1000))) s): $kind $node down ${down} ms, healthy after $(($(now_ms) - t_f)) ms" >>"$TEST_TMP/faults.log"
        else
                diag "fault $f_total ($kind $node, down $down ms): the fleet is not healthy 30 s later"
                echo "$at: $kind $node down ${down} ms: NOT healthy again" >>"$TEST_TMP/faults.log"
                break
        fi
done 3<"$TEST_TMP/plan"
t_inject=$(now_ms)
# The gate holds the workflow until approved: approve it now if the loop ended first.
wait_for 300 gate_approve || diag "the gate could not be approved: $(wf_steps "$id" | tr ' ' '\n' | grep '^gate=')"
diag "faults, in order:" "$(cat "$TEST_TMP/faults.log")"
diag "faults injected: $f_total (autoosd $f_autoosd, coordinator $f_coordinator, redis $f_redis, postgres $f_postgres); survived: $f_survived"
cmp_ok "$f_survived" == "$f_total" "the fleet was healthy again after every fault"
ok "faults of every kind, each at least twice, while the workflow ran" every_kind_twice

# Ended: in a final state, or waiting for a human (a step out of attempts).
wf_settled() {
        case $(wf_state "$id") in
        succeeded | failed | cancelled | awaiting_human) return 0 ;;
        esac
        return 1
}
wait_for 300 wf_settled
state=$(wf_state "$id")
if [ "$state" = succeeded ]; then
        tap_result 0 "the workflow succeeded"
else
        tap_result 1 "the workflow succeeded"
        diag "workflow $id: '$state'; steps not succeeded:" \
                "$(psql_q "SELECT step_id || ' ' || state || ' attempt ' || attempt || ' on ' || coalesce(node, '-') ||
                           ' failures ' || failures || ' moves ' || moves || coalesce(' error ' || error, '')
                           FROM steps WHERE workflow_id = '$id' AND state <> 'succeeded' ORDER BY position LIMIT 20")" \
                "escalations: $(psql_q "SELECT string_agg(detail::text, ' | ') FROM audit_log
                                        WHERE workflow_id = '$id' AND action = 'escalated'" | cut -c1-2000)"
fi
diag "the workflow took $((($(now_ms) - t0) / 1000)) s, $((($(now_ms) - t_inject) / 1000)) s of it after the last fault"

# Quiet: no node runs or holds anything, every job and result acknowledged.
_node_group() {
        rcli XINFO GROUPS "autoos:jobs:$1" | awk -v f="$2" 'p { print; exit } $0 == f { p = 1 }'
}
fleet_quiet() {
        for _n in $NODES; do
                [ "$(node_running "$_n")" = 0 ] && [ "$(node_info "$_n" | jq -r .queued)" = 0 ] &&
                        [ "$(node_info "$_n" | jq -r .undelivered_results)" = 0 ] &&
                        [ "$(_node_group "$_n" pending)" = 0 ] && [ "$(_node_group "$_n" lag)" = 0 ] || return 1
        done
        [ "$(rcli XPENDING autoos:results coordinators | head -n 1)" = 0 ]
}
if wait_for 30 fleet_quiet; then
        tap_result 0 "then the fleet goes quiet: every job and result acknowledged, no run left"
else
        tap_result 1 "then the fleet goes quiet: every job and result acknowledged, no run left"
        for n in $NODES; do
                diag "node $n: $(node_info "$n" | jq -c '{running, queued, undelivered_results, runs}' | cut -c1-300);" \
                        "  jobs pending $(_node_group "$n" pending), lag $(_node_group "$n" lag)"
        done
        diag "results pending: $(rcli XPENDING autoos:results coordinators | head -n 1)"
fi
sleep 0.5

# --- the state in PostgreSQL ------------------------------------------------------------

W="workflow_id = '$id'"
is "$(psql_q "SELECT string_agg(state || ':' || n, ' ') FROM (SELECT state, count(*) n FROM steps WHERE $W
              GROUP BY state ORDER BY state) s")" "succeeded:201" "every step succeeded (the gate approved)"

# One applied success per step, on its last attempt, with its runs row and its dispatch.
RES="SELECT detail->>'step' step, (detail->>'attempt')::int att, detail->>'node' node FROM audit_log
     WHERE $W AND action = 'result' AND detail->>'outcome' = 'exited' AND (detail->>'exit_code')::int = 0"
is "$(psql_q "SELECT string_agg(step_id || ' x' || n, ' ') FROM (SELECT s.step_id, count(o.step) n FROM steps s
              LEFT JOIN ($RES) o ON o.step = s.step_id WHERE s.$W AND s.kind <> 'approval'
              GROUP BY s.step_id HAVING count(o.step) <> 1) x")" \
        "" "every step has exactly one final state: one success applied"
is "$(psql_q "SELECT string_agg(s.step_id || ':' || s.attempt, ' ') FROM steps s WHERE s.$W AND s.kind <> 'approval' AND NOT (
                EXISTS (SELECT 1 FROM ($RES) o WHERE o.step = s.step_id AND o.att = s.attempt AND o.node = s.node)
            AND EXISTS (SELECT 1 FROM runs r WHERE r.$W AND r.step_id = s.step_id AND r.attempt = s.attempt
                        AND NOT r.late AND r.outcome = 'exited' AND r.exit_code = 0)
            AND EXISTS (SELECT 1 FROM audit_log a WHERE a.$W AND a.action = 'dispatched'
                        AND a.detail->>'step' = s.step_id AND (a.detail->>'attempt')::int = s.attempt
                        AND a.detail->>'node' = s.node))")" \
        "" "each step's final state has its trail: dispatched, a runs row and a 'result' row for its last attempt"

# Every attempt was dispatched once; every attempt but the last was given up
# once, for a reason in the trail (moved, retry_scheduled, step_moved).
AUD="SELECT action, detail->>'step' step, (detail->>'attempt')::int att FROM audit_log WHERE $W"
bad=$(psql_q "SELECT string_agg(step_id || ':' || att || ' dispatched ' || d || ' given up ' || g, ', ') FROM (
        SELECT s.step_id, g.att, s.attempt,
               (SELECT count(*) FROM ($AUD) a WHERE a.action = 'dispatched' AND a.step = s.step_id AND a.att = g.att) d,
               (SELECT count(*) FROM ($AUD) a WHERE a.action IN ('moved', 'retry_scheduled', 'step_moved')
                 AND a.step = s.step_id AND a.att = g.att) g
          FROM steps s CROSS JOIN LATERAL generate_series(1, s.attempt) g(att) WHERE s.$W AND s.kind <> 'approval') x
        WHERE d <> 1 OR g <> (CASE WHEN att < attempt THEN 1 ELSE 0 END)")
is "$bad" "" "every attempt dispatched once, and each one before the last given up once, with its reason"

# Every runs row has its audit row; every result/late_result row its runs row; none twice.
is "$(psql_q "SELECT string_agg(r.step_id || ':' || r.attempt || CASE WHEN r.late THEN ' (late)' ELSE '' END, ' ')
              FROM runs r WHERE r.$W AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.$W AND (
                (NOT r.late AND a.action = 'result' AND a.detail->>'step' = r.step_id
                 AND (a.detail->>'attempt')::int = r.attempt)
             OR (r.late AND a.action = 'late_result' AND a.detail->>'run' = '$id.' || r.step_id || '.' || r.attempt)))")" \
        "" "every runs row has its 'result' or 'late_result' audit row"
RAUD="SELECT action, detail->>'step' step,
             CASE WHEN action = 'result' THEN (detail->>'attempt')::int ELSE split_part(detail->>'run', '.', 3)::int END att
        FROM audit_log WHERE $W AND action IN ('result', 'late_result')"
is "$(psql_q "SELECT string_agg(action || ' ' || step || ':' || att || ' x' || n, ' ') FROM (
                SELECT action, step, att, count(*) n FROM ($RAUD) a GROUP BY action, step, att) x
              WHERE n <> 1 OR NOT EXISTS (SELECT 1 FROM runs r WHERE r.$W AND r.step_id = x.step AND r.attempt = x.att
                                          AND r.late = (x.action = 'late_result'))")" \
        "" "every 'result' and 'late_result' row has its runs row, and none is there twice"

# Every result a node sent (in autoos:results) reached PostgreSQL.
rcli XRANGE autoos:results - + | grep '^{' | jq -r --arg w "$id" 'select(.workflow == $w) | "\(.step):\(.attempt)"' |
        sort -u >"$TEST_TMP/sent"
psql_q "SELECT step_id || ':' || attempt FROM runs WHERE $W" | sort >"$TEST_TMP/stored"
is "$(comm -3 "$TEST_TMP/sent" "$TEST_TMP/stored" | tr '\t' '+' | head -n 10 | tr '\n' ' ')" "" \
        "every result the nodes sent reached PostgreSQL, and nothing else did (+: stored only)"
cmp_ok "$(wc -l <"$TEST_TMP/sent")" '>=' "$NSTEPS" "at least one result per step was sent"

is "$(psql_q "SELECT string_agg(detail->>'state', ' ') FROM audit_log WHERE $W AND action = 'workflow_finished'")" \
        succeeded "one workflow_finished row (succeeded)"
is "$(psql_q "SELECT action FROM audit_log WHERE $W AND seq = 1")" submitted "the trail begins with 'submitted'"
is "$(psql_q "SELECT coalesce(autoos_audit_verify('$id')::text, 'ok') || ' ' || coalesce(autoos_audit_verify(NULL)::text, 'ok')")" \
        "ok ok" "autoos_audit_verify: the workflow's chain and the fleet chain verify"
is "$(audit_verified "$id")" true "GET .../audit?verify=1 says the chain verifies"

diag "runs: $(psql_q "SELECT count(*) || ' (' || count(*) FILTER (WHERE late) || ' late), attempts per step up to ' ||
        (SELECT max(attempt) FROM steps WHERE $W) FROM runs WHERE $W")" \
        "trail: $(psql_q "SELECT string_agg(action || ' ' || n, ', ') FROM (SELECT action, count(*) n FROM audit_log
                          WHERE $W GROUP BY action ORDER BY action) x")" \
        "fleet chain: $(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id IS NULL AND action = 'node_lost'") node_lost rows"

# Data passing: every step's output is the value computed from its inputs.
psql_q "SELECT step_id || '=' || rtrim(convert_from(decode(output_b64, 'base64'), 'UTF8'), E'\n') FROM steps
        WHERE $W AND kind <> 'approval'" |
        sort >"$TEST_TMP/got"
is "$(comm -3 "$TEST_TMP/expected" "$TEST_TMP/got" | tr '\t' '+' | head -n 6 | tr '\n' ' ')" "" \
        "every step's output is the one expected from its inputs (+: got)"

# --- leftovers on the host -------------------------------------------------------------------

# sandbox_procs: processes with a uid of our pool, our marker in their
# command line, or in a cgroup named after one of our daemons; "pid uid args".
sandbox_procs() {
        _pids_re=$(paste -sd '|' "$DAEMON_PIDS")
        {
                grep -H '^Uid:' /proc/[0-9]*/status 2>/dev/null |
                        awk -v lo="$UID_BASE" -v hi="$((UID_BASE + UID_COUNT))" '{
                                for (i = 2; i <= 5; i++) if ($i >= lo && $i < hi) { print $1; break } }'
                grep -l -a -E -- "$MARK_RE" /proc/[0-9]*/cmdline 2>/dev/null
                grep -l -E "/autoos-($_pids_re)-[0-9]+\$" /proc/[0-9]*/cgroup 2>/dev/null
        } | sed -n 's|^/proc/\([0-9]*\)/.*|\1|p' | sort -un | while read -r _p; do
                [ "$_p" = "$$" ] && continue
                _a=$(tr '\0' ' ' <"/proc/$_p/cmdline" 2>/dev/null) || continue
                printf '%s uid %s: %s\n' "$_p" "$(awk '/^Uid:/ { print $2 }' "/proc/$_p/status" 2>/dev/null)" "$_a"
        done
}

# run_cgroup_dirs: cgroups named after one of our daemons (autoos-PID-N),
# beneath the cgroups this test is in, in every hierarchy.
run_cgroup_dirs() {
        _pids_re=$(paste -sd '|' "$DAEMON_PIDS")
        while IFS=: read -r _hid _ctrls _path; do
                [ "$_path" = / ] && _path=""
                if [ -z "$_ctrls" ]; then
                        _dirs="/sys/fs/cgroup$_path /sys/fs/cgroup/unified$_path"
                else
                        _dirs="/sys/fs/cgroup/$_ctrls$_path /sys/fs/cgroup/${_ctrls#name=}$_path"
                        for _c in $(printf '%s' "$_ctrls" | tr ',' ' '); do
                                _dirs="$_dirs /sys/fs/cgroup/$_c$_path"
                        done
                fi
                for _d in $_dirs; do
                        [ -d "$_d" ] && find "$_d" -maxdepth 3 -type d 2>/dev/null
                done
        done </proc/self/cgroup | grep -E "/autoos-($_pids_re)-[0-9]+\$" | sort -u
}

no_sandbox_procs() {
        [ -z "$(sandbox_procs)" ]
}

no_run_cgroups() {
        [ -z "$(run_cgroup_dirs)" ]
}

# leftovers WHEN: the two checks.
leftovers() {
        if wait_for 5 no_sandbox_procs; then
                tap_result 0 "no sandbox process left $1"
        else
                tap_result 1 "no sandbox process left $1"
                diag "$(sandbox_procs | head -n 10 | cut -c1-300)"
        fi
        if wait_for 5 no_run_cgroups; then
                tap_result 0 "no run cgroup left $1"
        else
                tap_result 1 "no run cgroup left $1"
                diag "$(run_cgroup_dirs | head -n 10)"
        fi
}

diag "autoosd pids: $(paste -sd ' ' "$DAEMON_PIDS"); uid pool $UID_BASE+$UID_COUNT; marker $MARK"
leftovers "while the nodes idle"
for n in $NODES; do
        node_kill "$n" TERM
done
leftovers "once the nodes stopped"

diag "faults injected: $f_total (autoosd $f_autoosd, coordinator $f_coordinator, redis $f_redis, postgres $f_postgres); survived: $f_survived"
fleet_finish
