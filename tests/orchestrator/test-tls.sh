#!/bin/sh
# SPDX-License-Identifier: MIT
# TLS on the HTTP API (--tls-cert, --tls-key): the listener speaks only TLS,
# /healthz and /metrics too, and plain HTTP gets no API answer; bad files
# stop the coordinator with a message naming them. autoosctl always
# verifies the server: a certificate from an unknown CA, a self-signed one
# without --cacert, a wrong host name and an expired certificate are each
# refused with the reason; --cacert, $AUTOOS_CACERT and cacert= are taken.
# Certificates are made here with the openssl command.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
need_cmd openssl

P=$TEST_TMP/pki
mkdir -p "$P/newcerts"
: >"$P/index.txt"
echo 01 >"$P/serial"
osl() {
        openssl "$@" >>"$P/openssl.log" 2>&1 || bail_out "openssl $1 failed: $(tail -n 5 "$P/openssl.log")"
}
# A CA, and certificates it signs: for 127.0.0.1 and localhost, for another host name only, and one
# that expired in 2020.
osl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/ca.key" -out "$P/ca.pem" \
        -days 2 -subj /CN=autoos-test-ca
# csr NAME SAN
csr() {
        osl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" \
                -subj "/CN=$1" -addext "subjectAltName=$2"
}
csr good "IP:127.0.0.1,DNS:localhost"
csr wronghost "DNS:coordinator.example"
csr expired "IP:127.0.0.1,DNS:localhost"
cat >"$P/ca.cnf" <<EOF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = $P
database = $P/index.txt
new_certs_dir = $P/newcerts
serial = $P/serial
default_md = sha256
default_days = 1
policy = anything
copy_extensions = copy
unique_subject = no
[ anything ]
commonName = supplied
EOF
sign() {
        _sn=$1
        shift
        osl ca -batch -notext -config "$P/ca.cnf" -cert "$P/ca.pem" -keyfile "$P/ca.key" -in "$P/$_sn.csr" \
                -out "$P/$_sn.pem" "$@"
}
sign good -days 1
sign wronghost -days 1
osl ca -batch -notext -config "$P/ca.cnf" -cert "$P/ca.pem" -keyfile "$P/ca.key" -in "$P/expired.csr" \
        -out "$P/expired.pem" -startdate 20200101000000Z -enddate 20200102000000Z
# A self-signed certificate for 127.0.0.1.
osl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/self.key" -out "$P/self.pem" \
        -days 1 -subj /CN=self -addext "subjectAltName=IP:127.0.0.1"

pg_start
redis_start
KEY=$(key_create operator operator)

# --- the coordinator refuses bad files, naming them -----------------------------------------
# refuse NAME CERT KEY: the coordinator exits 2 at once; its message is in $TEST_TMP/refuse-NAME.log.
refuse() {
        "$COORD" --config "$FLEET_CONF" --db "${PGSVC_URL:-$PGURL}" --redis "$REDIS_URL" --listen 127.0.0.1:0 \
                --sql-dir "$top_srcdir/sql" --tls-cert "$2" --tls-key "$3" </dev/null >"$TEST_TMP/refuse-$1.log" 2>&1
}
refuse missing "$P/nosuch.pem" "$P/good.key"
is "$?" 2 "a missing certificate file: the coordinator exits 2"
like "$(cat "$TEST_TMP/refuse-missing.log")" "nosuch.pem.*No such file" "its message names the file and why"
refuse mismatch "$P/good.pem" "$P/self.key"
is "$?" 2 "a key that is not the certificate's: exit 2"
like "$(cat "$TEST_TMP/refuse-mismatch.log")" "self.key' does not belong to the certificate" \
        "its message says the key does not match"
refuse notpem "$P/ca.cnf" "$P/good.key"
is "$?" 2 "a certificate file without a certificate: exit 2"
like "$(cat "$TEST_TMP/refuse-notpem.log")" "ca.cnf': no PEM certificate" "its message says so"
refuse dir "$P/good.pem" "$P/newcerts"
is "$?" 2 "a directory as the key: exit 2"
like "$(cat "$TEST_TMP/refuse-dir.log")" "TLS key '$P/newcerts': expected a PEM file" "its message names it"

# --- a TLS coordinator -------------------------------------------------------------------------
cp "$FLEET_CONF" "$TEST_TMP/conf.base"
# use_cert NAME: coordinator.conf names NAME.pem and NAME.key.
use_cert() {
        { cat "$TEST_TMP/conf.base" && printf '%s\n' "tls_cert = $P/$1.pem" "tls_key = $P/$1.key"; } >"$FLEET_CONF"
}
COORD_SCHEME=https
COORD_CACERT=$P/ca.pem
# Through coordinator.conf, as an operator would set it.
use_cert good
coord_start c1 || bail_out "the TLS coordinator did not start"
like "$COORD_URL" "^https://" "the coordinator answers over https"
api GET /v1/nodes
is "$HTTP_STATUS" 200 "GET /v1/nodes over TLS, the server verified against the test CA: 200"
is "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.pem" "$COORD_URL/healthz")" 200 "/healthz over TLS: 200"
is "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.pem" "$COORD_URL/metrics")" 200 "/metrics over TLS: 200"
port=$(cat "$TEST_TMP/coord-c1/port")

# Plain HTTP to the TLS listener: no HTTP answer at all, for the API or /healthz.
for path in /healthz /v1/nodes; do
        rm -f "$TEST_TMP/plain.out"
        code=$(curl -s -o "$TEST_TMP/plain.out" -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $KEY" \
                "http://127.0.0.1:$port$path")
        is "$code" 000 "plain HTTP GET $path to the TLS listener gets no HTTP answer"
        unlike "$(cat "$TEST_TMP/plain.out" 2>/dev/null)" '"nodes"|"status"' "and no API document"
done
is "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.pem" "$COORD_URL/healthz")" 200 \
        "the listener still serves TLS after them"
# The catalogue's attack against this listener (tests/adversarial/test-fleet.sh runs over http,
# where the attack has no TLS listener and skips).
AUTOOS_CACERT=$P/ca.pem "$AUTOOSCTL" adversarial --only coordinator-plain-http-to-tls --url "$COORD_URL" \
        --key "$KEY" --format tap </dev/null >"$TEST_TMP/adv-tls.tap" 2>&1
like "$(cat "$TEST_TMP/adv-tls.tap")" '^ok [0-9]+ - coordinator/coordinator-plain-http-to-tls' \
        "autoosctl adversarial: plain HTTP to this TLS listener is contained"
unlike "$(cat "$TEST_TMP/adv-tls.tap")" 'SKIP|^not ok' "and neither skipped nor failed"

# --- autoosctl verifies the server ---------------------------------------------------------
# ctl_tls OUT [ARG...]: autoosctl nodes against the coordinator with these settings; exit status in $rc.
ctl_tls() {
        _o=$1
        shift
        env -u AUTOOS_CACERT AUTOOS_API_KEY="$KEY" AUTOOS_CONFIG=/dev/null "$@" >"$TEST_TMP/$_o.out" 2>&1
        rc=$?
}
ctl_tls ca-flag "$AUTOOSCTL" nodes --url "$COORD_URL" --cacert "$P/ca.pem"
is "$rc" 0 "autoosctl nodes --cacert CA: accepted"
ctl_tls ca-env env AUTOOS_CACERT="$P/ca.pem" "$AUTOOSCTL" nodes --url "$COORD_URL"
is "$rc" 0 "AUTOOS_CACERT=CA: accepted"
printf 'url = %s\napi_key = %s\ncacert = %s\n' "$COORD_URL" "$KEY" "$P/ca.pem" >"$TEST_TMP/ctl.conf"
env -u AUTOOS_URL -u AUTOOS_API_KEY -u AUTOOS_CACERT AUTOOS_CONFIG="$TEST_TMP/ctl.conf" "$AUTOOSCTL" nodes \
        >"$TEST_TMP/ca-conf.out" 2>&1
is "$?" 0 "cacert= in the configuration file: accepted"
ctl_tls noca "$AUTOOSCTL" nodes --url "$COORD_URL"
isnt "$rc" 0 "without --cacert (the system's CAs) the test CA's certificate is refused"
like "$(cat "$TEST_TMP/noca.out")" "certificate is refused: .*(unable to get local issuer|self.signed)" \
        "the message says why: $(head -n 1 "$TEST_TMP/noca.out")"
like "$(cat "$TEST_TMP/noca.out")" "--cacert" "and how to give the CA"
ctl_tls badca "$AUTOOSCTL" nodes --url "$COORD_URL" --cacert "$P/nosuch.pem"
is "$rc" 2 "--cacert with a missing file: usage error (2)"
like "$(cat "$TEST_TMP/badca.out")" "nosuch.pem: No such file" "naming the file"
ctl_tls host "$AUTOOSCTL" nodes --url "https://localhost:$port" --cacert "$P/ca.pem"
is "$rc" 0 "https://localhost (in the certificate's names) is accepted too"

# restart_with CERT KEY: coordinator c1 again with another certificate.
restart_with() {
        coord_kill c1
        use_cert "$1"
        COORD_CACERT=$2
        coord_start c1 || bail_out "coordinator c1 did not start with $1.pem"
}

# start_unverified NAME: coordinator c1 again with NAME.pem, which clients refuse; whether it is up is
# checked with curl -k, the only place where the test turns verification off.
_unverified_up() {
        [ "$(curl -k -s -o /dev/null -w '%{http_code}' --max-time 2 "https://127.0.0.1:$port/healthz")" = 200 ]
}
start_unverified() {
        coord_kill c1
        use_cert "$1"
        COORD_CACERT=
        "$COORD" --config "$FLEET_CONF" --db "${PGSVC_URL:-$PGURL}" ${AUDIT_KEY:+--audit-key "$AUDIT_KEY"} \
                --redis "$REDIS_URL" --listen "127.0.0.1:$port" --id c1 --sql-dir "$top_srcdir/sql" </dev/null \
                >>"$(coord_log c1)" 2>&1 &
        echo $! >"$TEST_TMP/coord-c1/pid"
        wait_for 10 _unverified_up
}

ok "the coordinator serves a certificate for another host name" start_unverified wronghost
ctl_tls wrong "$AUTOOSCTL" nodes --url "https://127.0.0.1:$port" --cacert "$P/ca.pem"
isnt "$rc" 0 "a certificate for another host name is refused, though its CA is given"
like "$(cat "$TEST_TMP/wrong.out")" "certificate is refused: .*(subject name|does not match|127\.0\.0\.1)" \
        "the message says the name does not match: $(head -n 1 "$TEST_TMP/wrong.out")"

# An expired certificate: the coordinator starts, with a warning in its log.
ok "the coordinator serves an expired certificate" start_unverified expired
like "$(cat "$(coord_log c1)")" "has expired" "and logs that it has expired"
ctl_tls expired "$AUTOOSCTL" nodes --url "https://127.0.0.1:$port" --cacert "$P/ca.pem"
isnt "$rc" 0 "an expired certificate is refused, though its CA is given"
like "$(cat "$TEST_TMP/expired.out")" "certificate is refused: .*expired" \
        "the message says it has expired: $(head -n 1 "$TEST_TMP/expired.out")"

restart_with self "$P/self.pem"
ctl_tls self-noca "$AUTOOSCTL" nodes --url "https://127.0.0.1:$port"
isnt "$rc" 0 "a self-signed certificate without --cacert is refused"
like "$(cat "$TEST_TMP/self-noca.out")" "certificate is refused: .*self.signed" \
        "the message says it is self-signed: $(head -n 1 "$TEST_TMP/self-noca.out")"
ctl_tls self-ca "$AUTOOSCTL" nodes --url "https://127.0.0.1:$port" --cacert "$P/self.pem"
is "$rc" 0 "the self-signed certificate with --cacert itself: accepted"

fleet_finish
