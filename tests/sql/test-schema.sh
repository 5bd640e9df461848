#!/bin/sh
# SPDX-License-Identifier: MIT
# sql/001_init.sql against a throwaway PostgreSQL 15 (run as the postgres
# system user; needs root) on a free loopback port: tables, audit_log
# append-only and hash-chained (also under concurrent writers), the
# application role's privileges, constraints. The assertions are pgTAP
# (tests/sql/schema.pg); their output is this script's TAP stream.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ "$(id -u)" = 0 ] || skip_all "needs root (the server runs as the postgres user)"
[ -x "$PGBIN/initdb" ] || skip_all "$PGBIN/initdb missing (Debian package postgresql)"
[ -f "$("$PGBIN/pg_config" --sharedir 2>/dev/null)/extension/pgtap.control" ] ||
        skip_all "pgTAP missing (Debian package postgresql-15-pgtap)"
id -u postgres >/dev/null 2>&1 || skip_all "no postgres system user"
command -v runuser >/dev/null 2>&1 || skip_all "runuser missing"
command -v psql >/dev/null 2>&1 || skip_all "psql missing"

PGDATA_DIR=$TEST_TMP/pg
chmod 711 "$TEST_TMP"
mkdir -m 700 "$PGDATA_DIR"
chown postgres: "$PGDATA_DIR"
touch "$TEST_TMP/pg.log"
chown postgres: "$TEST_TMP/pg.log"


pg() { runuser -u postgres -- "$PGBIN/$@"; }
at_exit "runuser -u postgres -- '$PGBIN/pg_ctl' -D '$PGDATA_DIR' stop -m immediate"

pg initdb -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$TEST_TMP/initdb.log" 2>&1 || {
        diag "$(cat "$TEST_TMP/initdb.log")"
        bail_out "initdb failed"
}
started=""
for _try in 1 2 3 4 5; do
        PGPORT=$(free_port)
        if pg pg_ctl -D "$PGDATA_DIR" -l "$TEST_TMP/pg.log" -w -t 20 \
                -o "-k $PGDATA_DIR -p $PGPORT -c listen_addresses=127.0.0.1 -c fsync=off" \
                start >/dev/null 2>&1; then
                started=1
                break
        fi
done
[ -n "$started" ] || {
        diag "$(cat "$TEST_TMP/pg.log")"
        bail_out "PostgreSQL did not start"
}

PSQL="psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $PGPORT -U postgres -d postgres"

# The migration, as the coordinator will apply it: one transaction.
$PSQL -1 -f "$top_srcdir/sql/001_init.sql" >"$TEST_TMP/migrate.log" 2>&1 || {
        diag "$(cat "$TEST_TMP/migrate.log")"
        bail_out "sql/001_init.sql did not apply"
}
$PSQL -c 'CREATE EXTENSION pgtap' >"$TEST_TMP/ext.log" 2>&1 || {
        diag "$(cat "$TEST_TMP/ext.log")"
        bail_out "CREATE EXTENSION pgtap failed"
}

# Concurrent writers of one chain: two sessions of 50 single-row transactions,
# two of 10 five-row INSERTs (checked in schema.pg: 200 rows, seq 1..200).
wc=00000000-0000-0000-0000-0000000000c0
$PSQL -c "INSERT INTO workflows (id, name, spec) VALUES ('$wc', 'concurrent', '{}')" >/dev/null 2>&1 ||
        bail_out "could not insert the workflow for the concurrent writers"
for w in 1 2; do
        i=0
        while [ $i -lt 50 ]; do
                echo "INSERT INTO audit_log (workflow_id, actor, action, detail) VALUES ('$wc', 'w$w', 'single', '{\"i\":$i}');"
                i=$((i + 1))
        done >"$TEST_TMP/single$w.sql"
        i=0
        while [ $i -lt 10 ]; do
                echo "INSERT INTO audit_log (workflow_id, actor, action, detail) SELECT '$wc', 'm$w', 'multi', jsonb_build_object('i', g) FROM generate_series(1, 5) g;"
                i=$((i + 1))
        done >"$TEST_TMP/multi$w.sql"
done
pids=""
for f in single1 single2 multi1 multi2; do
        $PSQL -f "$TEST_TMP/$f.sql" >"$TEST_TMP/$f.log" 2>&1 &
        pids="$pids $!"
done
for p in $pids; do
        wait "$p" || {
                diag "$(cat "$TEST_TMP"/single*.log "$TEST_TMP"/multi*.log)"
                bail_out "a concurrent writer failed"
        }
done

# The pgTAP file prints the plan and the results; a psql error is a bail-out
# (and leaves the plan unfulfilled anyway).
$PSQL -t -A -f "$top_srcdir/tests/sql/schema.pg" 2>"$TEST_TMP/pgtap.err"
rc=$?
if [ $rc -ne 0 ]; then
        diag "$(cat "$TEST_TMP/pgtap.err")"
        bail_out "psql ended with status $rc"
fi
exit 0
