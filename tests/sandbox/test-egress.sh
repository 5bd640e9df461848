#!/bin/sh
# SPDX-License-Identifier: MIT
# Network egress for elevated runs (issue 13), in network namespaces of the
# test's own, never the host's:
#   node:     autoosctl runs here (nsenter --net); uplink up0 192.0.2.1/24,
#             default route via the internet; the runs' pool 198.51.100.0/24
#   internet: inet0 192.0.2.2/24; 203.0.113.10 an HTTP server (port 80, on the
#             allowlist; port 8080, not), 203.0.113.53 a DNS responder,
#             203.0.113.99 a TCP sink (port 9)
# An elevated run fetches from the allowlisted server; each attack of the
# issue's list, run as `autoosctl adversarial --only egress` in the node's
# namespace, is contained and what it tried is named in the result (one
# check per row); a permissive policy shows that a row can fail.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
need_root
need_cmd jq ip nsenter busybox curl
need_built
PEER=$top_builddir/tests/net/egress-peer
[ -x "$PEER" ] || bail_out "$PEER not built (make check builds it)"

tag=$(($$ % 100000))
NODE=autoos-egress-node-$tag
NET=autoos-egress-net-$tag
PREFIX=e$tag # links and nftables names: <prefix><slot>
ip netns add "$NODE" 2>/dev/null || skip_all "cannot create network namespaces (ip netns add)"
at_exit "ip netns del $NODE"
ip netns add "$NET" || bail_out "ip netns add $NET"
at_exit "ip netns del $NET"
at_exit "rm -rf /run/autoos/egress-$PREFIX"
ip -n "$NODE" link add up0 type veth peer name inet0 netns "$NET" 2>/dev/null ||
        skip_all "no veth support in this kernel"
ip -n "$NODE" link set lo up
ip -n "$NET" link set lo up
ip -n "$NODE" addr add 192.0.2.1/24 dev up0
ip -n "$NODE" link set up0 up
ip -n "$NET" addr add 192.0.2.2/24 dev inet0
ip -n "$NET" link set inet0 up
for a in 203.0.113.10 203.0.113.53 203.0.113.99; do ip -n "$NET" addr add $a/32 dev lo; done
ip -n "$NODE" route add default via 192.0.2.2
# The node's own namespace: a per-namespace setting, not the host's.
ip netns exec "$NODE" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'

# Nothing in either namespace leads to the host's interfaces.
links=$(ip -n "$NODE" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\n' ' ')
is "$links" "lo up0 " "the node namespace holds only lo and its uplink"
links=$(ip -n "$NET" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\n' ' ')
is "$links" "inet0 lo " "the internet namespace holds only lo and its end of the uplink"
routes=$( (ip -n "$NODE" -4 route show table all; ip -n "$NET" -4 route show table all) |
        grep -v -E 'dev (lo|up0|inet0)( |$)' | grep -v -E '^(local|broadcast) ')
is "$routes" "" "every route in the test's namespaces goes through lo, up0 or inet0"

# The internet: HTTP, DNS, a sink.
mkdir -p "$TEST_TMP/www"
echo hello-egress >"$TEST_TMP/www/hello.txt"
head -c 3145728 /dev/zero >"$TEST_TMP/www/big"
echo node-secret >"$TEST_TMP/www/secret.txt"
ip netns exec "$NET" busybox httpd -f -p 203.0.113.10:80 -h "$TEST_TMP/www" &
at_exit "kill $!"
# A service on the same address that no policy here allows (the unlisted target).
ip netns exec "$NET" busybox httpd -f -p 203.0.113.10:8080 -h "$TEST_TMP/www" &
at_exit "kill $!"
STATS=$TEST_TMP/peer.stats
ip netns exec "$NET" "$PEER" "$STATS" 203.0.113.53 203.0.113.10 203.0.113.99 9 &
at_exit "kill $!"
# The node's own service, which no run may reach.
ip netns exec "$NODE" busybox httpd -f -p 8081 -h "$TEST_TMP/www" &
at_exit "kill $!"
stat_of() { awk -F= -v k="$1" '$1 == k { print $2 }' "$STATS" 2>/dev/null; }
deadline=$(($(date +%s) + 30))
until [ -s "$STATS" ] && ip netns exec "$NET" busybox wget -q -O /dev/null http://203.0.113.10/hello.txt 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || bail_out "the internet namespace's servers did not start"
        sleep 0.1
done

cat >"$TEST_TMP/node.conf" <<EOF
egress_uplink = up0
egress_pool = 198.51.100.0/24
egress_resolvers = 203.0.113.53
egress_prefix = $PREFIX
EOF
BW=1048576
cat >"$TEST_TMP/policy.json" <<EOF
{"levels":{"elevated":{"network":{"egress":{
  "allow":[{"cidr":"203.0.113.10/32","protocol":"tcp","ports":"80"},
           {"cidr":"203.0.113.99/32","protocol":"tcp","ports":"9"}],
  "bandwidth_bytes":$BW,"connections":8,"packets_per_second":5000,"dns_queries_per_second":5}}}}}
EOF

# autoosctl, started in the node's network namespace only (its mounts stay the host's).
REAL_AUTOOSCTL=$AUTOOSCTL
AUTOOSCTL=$TEST_TMP/autoosctl-in-node
printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %s "$@"\n' "$NODE" "$REAL_AUTOOSCTL" >"$AUTOOSCTL"
chmod +x "$AUTOOSCTL"
EGRESS="--trust elevated --net egress --policy $TEST_TMP/policy.json --node-config $TEST_TMP/node.conf"

# --- without egress settings: rejected, naming why ---------------------------
run_json --trust elevated --net egress --policy "$TEST_TMP/policy.json" --node-config /nonexistent -- /bin/true
is "$(jf .outcome)" rejected "a node without egress settings rejects an egress run"
like "$(jf .error)" "network: egress is not configured on this node\$" "and names why"

# --- the allowlisted server ----------------------------------------------------
dns_before=$(stat_of dns_queries)
# shellcheck disable=SC2086
run_json $EGRESS -- /bin/sh -c '
echo "fetched=$(curl -sS --max-time 20 http://203.0.113.10/hello.txt)"
echo "addr=$(ip -4 -o addr show eth0 | awk "{print \$4}")"
echo "route=$(ip route show default)"
echo "lo=$(ip -o link show lo | grep -c UP)"
echo "resolv=$(tr "\n" ";" </etc/resolv.conf)"
echo "resolv_write=$( (echo nameserver 203.0.113.99 >/etc/resolv.conf) 2>/dev/null && echo written || echo refused)"
echo "resolv_move=$(mv /etc/resolv.conf /tmp/r 2>/dev/null && echo moved || echo refused)"
echo "lookup=$(getent ahostsv4 api.example.test | awk "NR == 1 { print \$1 }")"'
is "$(jf .outcome)" exited "an elevated egress run exits normally"
[ "$(jf .outcome)" = exited ] || diag "result: $RUN_JSON"
is "$(out fetched)" hello-egress "it fetches from the allowlisted HTTP server"
like "$(out addr)" '^198\.51\.100\.[0-9]+/30$' "its address is a /30 of the node's pool ($(out addr))"
like "$(out route)" '^default via 198\.51\.100\.[0-9]+ dev eth0' "its default route goes through its own link"
cmp_ok "$(jf .egress_sent_packets)" '>' 0 "the result counts packets sent ($(jf .egress_sent_packets))"
cmp_ok "$(jf .egress_received_bytes)" '>' 100 "and bytes received ($(jf .egress_received_bytes))"
is "$(jf '.egress_refused | length')" 0 "nothing refused for an allowed fetch"
is "$(ip -n "$NODE" -o link show | grep -c " $PREFIX[0-9]")" 0 "the run's link went with it"
is "$(out resolv)" "nameserver 203.0.113.53;" "its /etc/resolv.conf names exactly the node's resolvers"
is "$(out resolv_write)" refused "the run cannot write its /etc/resolv.conf"
is "$(out resolv_move)" refused "nor move it away"
is "$(out lookup)" 203.0.113.10 "a lookup through the libc resolver gets the test's DNS responder's answer"
cmp_ok "$(stat_of dns_queries)" '>' "$dns_before" "the resolver asked is the listed one ($dns_before -> $(stat_of dns_queries) queries)"
is "$(stat -c %a "/run/autoos/egress-$PREFIX/resolv.conf" 2>/dev/null)" 644 "the node's resolv.conf is mode 0644"

# --- a plain loopback run: no resolver -------------------------------------------
run_json --net loopback -- /bin/sh -c 'echo "size=$(wc -c </etc/resolv.conf)"'
is "$(jf .outcome)" exited "a loopback run exits normally"
is "$(out size)" 0 "a loopback run's /etc/resolv.conf is empty"

# --- the attacks: `autoosctl adversarial --only egress`, one check per row ----------
# Each row is contained only when the attack was stopped AND what it tried is named
# in its run's egress_refused (adversarial/egress.c); the limits are the policy's.
cat >"$TEST_TMP/targets" <<EOF
server = 203.0.113.10:80
download = /big
sink = 203.0.113.99:9
unlisted = 203.0.113.10:8080
node_service = 192.0.2.1:8081
EOF
ATTACK=$top_builddir/adversarial/attack
[ -x "$ATTACK" ] || bail_out "$ATTACK not built (make builds it)"
# adversarial NAME POLICY [OPTION]...: the egress group, from the node's namespace, into $TEST_TMP/NAME.
adversarial() {
        _name=$1 _policy=$2
        shift 2
        nsenter --net=/run/netns/"$NODE" "$REAL_AUTOOSCTL" adversarial --format tap --trust elevated \
                --policy "$_policy" --egress-config "$TEST_TMP/node.conf" --egress-targets "$TEST_TMP/targets" \
                --attacks "$ATTACK" "$@" </dev/null >"$TEST_TMP/$_name" 2>"$TEST_TMP/$_name.err"
        ADV_RC=$?
}
adversarial egress.tap "$TEST_TMP/policy.json" --only egress
while IFS= read -r line; do
        case $line in
        "not ok "*)
                tap_result 1 "${line#not ok * - }"
                ;;
        "ok "*" # SKIP "*)
                desc=${line#ok * - }
                tap_result 1 "skipped here, where it must run: ${desc%% \# SKIP *} (${desc#* \# SKIP })"
                ;;
        "ok "*)
                tap_result 0 "${line#ok * - }"
                ;;
        "#   "*)
                # What each row observed (rates, counts, refusals) goes to the log; a failure's why too.
                diag "${line#\# }"
                ;;
        esac
done <"$TEST_TMP/egress.tap"
nrows=$(grep -cE '^(not )?ok ' "$TEST_TMP/egress.tap")
is "$nrows" 11 "the egress group has its 11 attacks"
like "$(grep -E '^# [0-9]+ attacks:' "$TEST_TMP/egress.tap")" "^# $nrows attacks: $nrows contained, 0 not" \
        "every egress attack contained"
is "$ADV_RC" 0 "autoosctl adversarial --only egress exits 0"
[ "$ADV_RC" -eq 0 ] && [ "$nrows" -gt 0 ] || diag "stderr: $(cat "$TEST_TMP/egress.tap.err")"
cmp_ok "$(stat_of sink_max_conns)" '<=' 8 \
        "the sink never saw more than the 8 connections the policy allows at once ($(stat_of sink_max_conns))"
is "$(ip -n "$NODE" -o link show | grep -c " $PREFIX[0-9]")" 0 "the attack runs' links went with them"

# A row can fail: with 203.0.113.10 allowed on every port, the unlisted service answers.
sed 's|{"cidr":"203.0.113.10/32","protocol":"tcp","ports":"80"}|{"cidr":"203.0.113.10/32","protocol":"tcp"}|' \
        "$TEST_TMP/policy.json" >"$TEST_TMP/permissive.json"
adversarial permissive.tap "$TEST_TMP/permissive.json" --only egress-unlisted
like "$(grep -E '^(not )?ok ' "$TEST_TMP/permissive.tap")" '^not ok 1 - egress/egress-unlisted: NOT CONTAINED' \
        "a policy that allows the unlisted port: the row says NOT CONTAINED"
like "$(cat "$TEST_TMP/permissive.tap")" '203\.0\.113\.10:8080/tcp answered' "...naming what got through"
is "$ADV_RC" 1 "...and autoosctl adversarial exits 1"
# Without egress settings the group is skipped, saying why.
adversarial none.tap "$TEST_TMP/policy.json" --only egress-metadata --egress-config /nonexistent
like "$(cat "$TEST_TMP/none.tap")" '^ok 1 - egress/egress-metadata: .* # SKIP egress is not configured on this host' \
        "a node without egress settings: the group is skipped, saying why"

# --- cleanup, and after a SIGKILL ------------------------------------------------
is "$(ip -n "$NODE" -o link show | grep -c " $PREFIX[0-9]")" 0 "no run link is left after the runs"
if command -v nft >/dev/null 2>&1; then
        is "$(nsenter --net=/run/netns/"$NODE" nft list table inet autoos_$PREFIX | grep -c "chain $PREFIX[0-9]")" 0 \
                "no run chain is left in the node's table"
else
        skip 1 "no nft program to list the table with"
fi
# A supervisor killed with SIGKILL: its run dies with it (and its link with its namespace),
# its rules stay until the next start on the node removes them.
chains() { nsenter --net=/run/netns/"$NODE" nft list table inet autoos_$PREFIX | grep -c "chain $PREFIX[0-9]"; }
# shellcheck disable=SC2086
"$AUTOOSCTL" run $EGRESS -- /bin/sleep 60 </dev/null >/dev/null 2>&1 &
victim=$!
deadline=$(($(date +%s) + 30))
until [ "$(ip -n "$NODE" -o link show | grep -c " $PREFIX[0-9]")" -ge 1 ] || [ "$(date +%s)" -ge "$deadline" ]; do sleep 0.1; done
kill -9 "$victim"
wait "$victim" 2>/dev/null
if command -v nft >/dev/null 2>&1; then
        cmp_ok "$(chains)" '>=' 1 "a SIGKILLed supervisor leaves its run's rules behind"
else
        skip 1 "no nft program to list the table with"
fi
# shellcheck disable=SC2086
run_json $EGRESS -- /bin/true
is "$(jf .outcome)" exited "the next egress run starts"
is "$(ip -n "$NODE" -o link show | grep -c " $PREFIX[0-9]")" 0 "no run link is left"
if command -v nft >/dev/null 2>&1; then
        is "$(chains)" 0 "and the next start removed the killed one's rules"
else
        skip 1 "no nft program to list the table with"
fi
done_testing
