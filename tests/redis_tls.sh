#!/bin/sh
# redis_tls.sh: orderd reaches a TLS-only Redis through a local stunnel client tunnel (contrib/stunnel-redis.conf), and a tunnel that does not trust the server passes nothing.
#
# Debian 12's hiredis 0.14 has no TLS, so the supported way is Debian's
# stunnel4 on loopback.  Run through tests/servers.sh (for the broker: the
# plaintext Redis of servers.sh is never used here).  This test makes a
# throwaway CA, a server and a client certificate with openssl, starts
# Debian's redis-server TLS-only (port 0, tls-auth-clients yes) and stunnel
# on the sample configuration with this run's paths and ports.  Speaks TAP.
# A Redis or stunnel that cannot start fails the test with its log tail.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/redis_tls.XXXXXX")
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; sed 's/^/# /' "$dir/err" 2>/dev/null | head -5; fi; }
# Runs a command; its status in st, its stdout in $dir/out, stderr in $dir/err.
run() { "$@" >"$dir/out" 2>"$dir/err"; st=$?; }
# Polls CMD every 0.1 s for up to 60 s: only so that a broken run cannot
# hang; what is asserted is what CMD finally found.
wait_for() {
	w=0
	until eval "$1"; do
		w=$((w + 1))
		[ "$w" -lt 600 ] || return 1
		sleep 0.1
	done
}
pids=
# A zombie (our dead child) or a reused pid is not running.
running() {
	[ -r "/proc/$1/stat" ] || return 1
	case $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) in Z|X|'') return 1 ;; esac
}
# Once reaped a pid may be anyone's: it leaves the list that cleanup kills.
forget() {
	left=
	for p in $pids; do [ "$p" = "$1" ] || left="$left $p"; done
	pids=$left
}
# SIGTERM, up to 10 s, then SIGKILL; always reaped, since they are our children.
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	s=0
	while running "$1" && [ "$s" -lt 100 ]; do sleep 0.1; s=$((s + 1)); done
	running "$1" && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	forget "$1"
}
cleanup() {
	for p in $pids; do stop_pid "$p"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Bail out: the rest would test nothing.
bail() {
	echo "Bail out! $* (scratch in $dir)"
	exit 1
}
# Whether process PID itself listens on 127.0.0.1:PORT (not a stranger
# that took the port): the socket's inode among PID's descriptors.
listens() {
	inode=$(awk -v a="0100007F:$(printf '%04X' "$2")" \
		'$2 == a && $4 == "0A" { print $10; exit }' /proc/net/tcp)
	[ -n "$inode" ] && ls -l "/proc/$1/fd" 2>/dev/null | grep -q "socket:\[$inode\]"
}
# Distinct free loopback ports, held together while they are picked.
set -- $(python3 -c 'import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
tport=$1 good=$2 bad=$3 wrong=$4 either=$5

# ---- certificates: a CA, the server's (its name and address), the client's ----
# Another CA that signed nothing here, for the tunnel that must not trust Redis.
mkca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$2" -keyout "$dir/$1.key" -out "$dir/$1.pem" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign
}
# mkcert NAME CA CN EXTENSIONS
mkcert() {
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$3" \
		-keyout "$dir/$1.key" -out "$dir/$1.csr" &&
		printf '%s\n' "$4" >"$dir/$1.ext" &&
		openssl x509 -req -in "$dir/$1.csr" -CA "$dir/$2.pem" -CAkey "$dir/$2.key" \
			-set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$dir/$1.ext" \
			-out "$dir/$1.pem"
}
{
	mkca ca orderd-test-ca &&
		mkca ca2 orderd-test-other-ca &&
		mkcert server ca orderd-test-redis 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:redis.example.internal,IP:127.0.0.1' &&
		mkcert client ca orderd-test-client 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth' &&
		openssl verify -CAfile "$dir/ca.pem" -purpose sslserver "$dir/server.pem" &&
		openssl verify -CAfile "$dir/ca.pem" -purpose sslclient "$dir/client.pem"
} >"$dir/openssl.log" 2>&1
st=$?
check "openssl makes a CA, a server certificate (127.0.0.1, redis.example.internal) and a client certificate" \
	'[ "$st" = 0 ]'
[ "$st" = 0 ] || { tail -n 20 "$dir/openssl.log" | sed 's/^/# /'; bail "no certificates"; }

# ---- Redis, TLS only ----
redis=$(command -v redis-server)
check "Debian's redis-server is built with TLS (ldd shows libssl)" \
	'[ -n "$redis" ] && ldd "$redis" | grep -q "libssl\.so"'
cat >"$dir/redis.conf" <<EOF
# Written by tests/redis_tls.sh: TLS only (port 0), client certificates required.
bind 127.0.0.1
protected-mode yes
port 0
tls-port $tport
tls-cert-file $dir/server.pem
tls-key-file $dir/server.key
tls-ca-cert-file $dir/ca.pem
tls-auth-clients yes
dir $dir
daemonize no
logfile $dir/redis.log
save ""
appendonly no
EOF
redis-server "$dir/redis.conf" </dev/null >"$dir/redis.out" 2>&1 &
rpid=$!
pids="$pids $rpid"
# Its log says why when it dies (a port taken, a certificate unreadable).
if ! wait_for 'listens "$rpid" "$tport" || ! running "$rpid"' || ! listens "$rpid" "$tport"; then
	not_ok "redis-server starts TLS-only on 127.0.0.1:$tport"
	tail -n 20 "$dir/redis.log" "$dir/redis.out" 2>/dev/null | sed 's/^/# /'
	bail "no Redis to test on"
fi
ok "redis-server starts TLS-only on 127.0.0.1:$tport"
tls_cli() {
	redis-cli -h 127.0.0.1 -p "$tport" --tls --cacert "$dir/ca.pem" \
		--cert "$dir/client.pem" --key "$dir/client.key" "$@"
}
run tls_cli info server
check "redis-cli --tls with the CA and the client certificate reaches it (our process)" \
	'[ "$st" = 0 ] && tr -d "\r" <"$dir/out" | grep -qx "process_id:$rpid"'
run tls_cli config get port
check "... and it has no plaintext port (port 0)" \
	'[ "$st" = 0 ] && [ "$(sed -n 2p "$dir/out")" = 0 ]'
run redis-cli -h 127.0.0.1 -p "$tport" ping
check "a plaintext client is refused (redis-cli without --tls: exit $st, $(head -n 1 "$dir/err"))" \
	'[ "$st" != 0 ] && ! grep -q PONG "$dir/out" &&
	 wait_for "grep -q \"wrong version number\" \"$dir/redis.log\""'
run redis-cli -h 127.0.0.1 -p "$tport" --tls --cacert "$dir/ca.pem" ping
check "a TLS client without a certificate is refused (tls-auth-clients yes)" \
	'[ "$st" != 0 ] && ! grep -q PONG "$dir/out" &&
	 wait_for "grep -q \"peer did not return a certificate\" \"$dir/redis.log\""'

# ---- the tunnel: contrib/stunnel-redis.conf with this run's paths and ports ----
# tunnel NAME LOCAL_PORT CA_FILE SUBJECT_CHECKS: writes $dir/NAME.conf, the
# sample's checkHost line replaced by SUBJECT_CHECKS (at the end: the
# section's last lines).  The server's certificate names
# redis.example.internal and 127.0.0.1.
tunnel() {
	{
		echo "output = $dir/$1.log"
		sed -e "s|^accept = 127\.0\.0\.1:6380$|accept = 127.0.0.1:$2|" \
			-e "s|^connect = redis\.example\.internal:6379$|connect = 127.0.0.1:$tport|" \
			-e "s|^CAfile = /etc/orderd/redis-ca\.pem$|CAfile = $3|" \
			-e "/^checkHost = redis\.example\.internal$/d" \
			-e "s|^cert = /etc/orderd/redis-client\.pem$|cert = $dir/client.pem|" \
			-e "s|^key = /etc/orderd/redis-client\.key$|key = $dir/client.key|" \
			"$top/contrib/stunnel-redis.conf"
		printf '%s\n' "$4"
	} >"$dir/$1.conf"
}
# start_tunnel NAME LOCAL_PORT: stunnel4 on $dir/NAME.conf, its pid in tpid;
# fails the test with its log tail when it does not listen.
start_tunnel() {
	stunnel4 "$dir/$1.conf" </dev/null >"$dir/$1.err" 2>&1 &
	tpid=$!
	pids="$pids $tpid"
	tlocal=$2
	if wait_for 'listens "$tpid" "$tlocal" || ! running "$tpid"' && listens "$tpid" "$tlocal"; then
		ok "stunnel4 ($1) listens on 127.0.0.1:$2"
		return 0
	fi
	not_ok "stunnel4 ($1) listens on 127.0.0.1:$2"
	tail -n 20 "$dir/$1.log" "$dir/$1.err" 2>/dev/null | sed 's/^/# /'
	bail "stunnel4 ($1) did not start"
}
# The sample as it is: its own checkHost.
tunnel good "$good" "$dir/ca.pem" "checkHost = redis.example.internal"
check "the sample configuration takes this run's paths and ports (nothing of /etc/orderd, 6379 or 6380 left)" \
	'! grep -v "^;" "$dir/good.conf" | grep -Eq "/etc/orderd|:6379|:6380" &&
	 [ "$(grep -c "$dir" "$dir/good.conf")" = 4 ] && [ "$(grep -c "^checkHost" "$dir/good.conf")" = 1 ]'
start_tunnel good "$good"
good_pid=$tpid
run redis-cli -h 127.0.0.1 -p "$good" info server
check "a plaintext client through the tunnel reaches the TLS-only Redis" \
	'[ "$st" = 0 ] && tr -d "\r" <"$dir/out" | grep -qx "process_id:$rpid"'
check "stunnel verified the server's certificate" \
	'grep -q "Certificate accepted at depth=0: CN=orderd-test-redis" "$dir/good.log"'

# ---- orderd + orderd-paysim + orderd-loadgen --verify through the tunnel ----
# 300 orders of 1..3 lines over 10 skus of 1,000 units: all but the failed
# payments confirm.
ORDERD_TEST_REDIS_PORT=$good
ORDERD_TEST_REDIS_NODES=
export ORDERD_TEST_REDIS_PORT ORDERD_TEST_REDIS_NODES
"$top/tests/pipeline.sh" "$dir/pipe" 300 10 1000 0.1 0.05 3 3 >"$dir/pipe.out" 2>"$dir/pipe.err"
pst=$?
sed 's/^/# /' "$dir/pipe.out"
[ "$pst" = 0 ] || tail -n 20 "$dir/pipe.err" "$dir/pipe/orderd.log" "$dir/good.log" | sed 's/^/# /'
fig() { awk -v k="$1" '$1 == k { print $2 }' "$dir/pipe.out"; }
check "the pipeline ran clean through the tunnel: loadgen, orderd's exit, reconcile (exit $pst)" \
	'[ "$pst" = 0 ]'
check "300 orders, $(fig confirmed) confirmed, missing 0, no conflicts" \
	'[ "$(fig orders)" = 300 ] && [ "$(fig confirmed)" -gt 0 ] &&
	 [ "$(fig missing)" = 0 ] && [ "$(fig conflicts)" = 0 ]'
check "orderctl reconcile through the tunnel is clean" \
	'grep -q "\"ok\":true" "$dir/pipe/reconcile.json"'
check "orderd connected to the tunnel's end, 127.0.0.1:$good" \
	'grep -q "redis: connected to 127.0.0.1:$good$" "$dir/pipe/orderd.log"'
prefix=$(sed -n 's/^prefix = //p' "$dir/pipe/orderd.conf")
run "$bin/orderctl" -c "$dir/pipe/orderd.conf" stock show --json
cp "$dir/out" "$dir/stock.json"
check "orderctl stock show through the tunnel: 10 skus, available + reserved + sold == added, none reserved, some sold" \
	'[ "$st" = 0 ] && python3 - "$dir/stock.json" <<"PY"
import json, sys
skus = json.load(open(sys.argv[1]))["skus"]
assert len(skus) == 10, len(skus)
for s in skus:
    assert s["available"] + s["reserved"] + s["sold"] == s["added"] == 1000, s
    assert s["reserved"] == 0, s
assert sum(s["sold"] for s in skus) > 0
PY'
# What orderd wrote through the tunnel is in the TLS-only Redis itself.
i=0
: >"$dir/tls-stock"
while [ "$i" -lt 10 ]; do
	printf 'sku-%s %s\n' "$i" "$(tls_cli hmget "$prefix{sku-$i}:stock" available reserved sold added |
		tr -d '\r' | tr '\n' ' ')" >>"$dir/tls-stock"
	i=$((i + 1))
done
check "the stock read over TLS (redis-cli --tls) is what orderctl read through the tunnel: the stock moved" \
	'python3 - "$dir/stock.json" "$dir/tls-stock" <<"PY"
import json, sys
show = {s["sku"]: [s["available"], s["reserved"], s["sold"], s["added"]]
        for s in json.load(open(sys.argv[1]))["skus"]}
tls = {l.split()[0]: [int(x) for x in l.split()[1:]] for l in open(sys.argv[2])}
assert show == tls, (show, tls)
assert sum(v[2] for v in tls.values()) > 0
PY'

# ---- a tunnel that does not trust the server's CA passes nothing ----
tunnel bad "$bad" "$dir/ca2.pem" "checkHost = redis.example.internal"
start_tunnel bad "$bad"
bad_pid=$tpid
run redis-cli -h 127.0.0.1 -p "$bad" ping
check "redis-cli through the untrusting tunnel gets nothing (exit $st)" \
	'[ "$st" != 0 ] && ! grep -q PONG "$dir/out"'
check "stunnel refused the server's certificate (certificate verify failed)" \
	'wait_for "grep -q \"certificate verify failed\" \"$dir/bad.log\""'
grep -E 'LOG[34]' "$dir/bad.log" | head -n 3 | sed 's/^/# stunnel: /'
check "... and Redis saw the tunnel give up (unknown ca)" \
	'wait_for "grep -q \"unknown ca\" \"$dir/redis.log\""'
grep 'unknown ca' "$dir/redis.log" | tail -n 1 | sed 's/^/# redis: /'
name=tls$$
mkdir -p "$dir/neg"
ORDERD_TEST_REDIS_PORT=$bad
. "$top/tests/conf.sh"
test_conf "$dir/neg/orderd.conf" "$name" "$dir/neg"
C="$bin/orderctl -c $dir/neg/orderd.conf"
run $C stock show
check "orderctl stock show through it fails with one line naming the tunnel (exit $st: $(cat "$dir/err"))" \
	'[ "$st" = 1 ] && [ "$(wc -l <"$dir/err")" = 1 ] && grep -q "127.0.0.1:$bad" "$dir/err"'
# The stock goes in through the good tunnel, so that only Redis is missing.
$C topics create --partitions 2 >"$dir/neg/topics.log" 2>&1 &&
	$C -s "redis.port=$good" stock add sku-0 100 >"$dir/neg/stock.log" 2>&1
st=$?
check "topics and stock for the second run" '[ "$st" = 0 ]'
"$bin/orderd" -c "$dir/neg/orderd.conf" 2>"$dir/neg/orderd.log" &
opid=$!
pids="$pids $opid"
"$bin/orderd-paysim" -c "$dir/neg/orderd.conf" --fail-ratio 0 --group "$name-ps" \
	2>"$dir/neg/paysim.log" &
ppid=$!
pids="$pids $ppid"
check "orderd logs that it cannot reach Redis through the untrusting tunnel" \
	'wait_for "grep -q \"redis: cannot connect to 127.0.0.1:$bad: .*; retrying\" \"$dir/neg/orderd.log\""'
grep "redis: cannot connect" "$dir/neg/orderd.log" | head -n 1 | sed 's/^/# orderd: /'
wait_for 'grep -q "engine: consuming" "$dir/neg/orderd.log" || ! running "$opid"'
"$bin/orderd-loadgen" -c "$dir/neg/orderd.conf" --orders 20 --skus 1 --lines-max 1 \
	--sku-prefix sku- --verify --timeout-s 240 >"$dir/neg/figures" 2>"$dir/neg/loadgen.log" &
lpid=$!
pids="$pids $lpid"
q() { sqlite3 "$dir/neg/journal.db" "$1" 2>/dev/null; }
# Every order consumed and journaled, with its reserve waiting for Redis.
check "orderd keeps consuming: 20 orders journaled, each reserve waiting" \
	'wait_for "[ \"\$(q \"SELECT count(*) FROM saga_steps WHERE result IS NULL\")\" = 20 ]" &&
	 [ "$(q "SELECT count(*) FROM orders")" = 20 ]'
check "... none confirmed, nothing in the outbox, no reservation in Redis, its stock untouched, orderd still up" \
	'[ "$(q "SELECT count(*) FROM orders WHERE state = \"CONFIRMED\"")" = 0 ] &&
	 [ "$(q "SELECT count(*) FROM outbox")" = 0 ] &&
	 [ "$(tls_cli --scan --pattern "$name:*:r:*" | wc -l)" = 0 ] &&
	 [ "$(tls_cli hmget "$name:{sku-0}:stock" available reserved | tr -d "\r" | tr "\n" " ")" = "100 0 " ] &&
	 running "$opid"'

# ---- the operator's fix: the right CA, the same port; orderd catches up by itself ----
stop_pid "$bad_pid"
# By address this time: checkIP alone is enough too.
tunnel fixed "$bad" "$dir/ca.pem" "checkIP = 127.0.0.1"
start_tunnel fixed "$bad"
wait "$lpid"
lg=$?
forget "$lpid"
sed 's/^/# /' "$dir/neg/figures"
fig2() { awk -v k="$1" '$1 == k { print $2 }' "$dir/neg/figures"; }
check "with the tunnel fixed the 20 waiting orders confirm, orderd not restarted (loadgen exit $lg)" \
	'[ "$lg" = 0 ] && [ "$(fig2 confirmed)" = 20 ] && [ "$(fig2 missing)" = 0 ] && running "$opid"'
# The first "connected" line comes after the first "cannot connect".
first() { grep -n "$1" "$dir/neg/orderd.log" | head -n 1 | cut -d: -f1; }
up=$(first "redis: connected to 127.0.0.1:$bad$")
down=$(first "redis: cannot connect to 127.0.0.1:$bad:")
check "orderd says it connected, after the failures (log lines $down, $up)" \
	'[ -n "$up" ] && [ -n "$down" ] && [ "$up" -gt "$down" ]'
kill -TERM "$ppid" "$opid"
wait "$ppid"
wait "$opid"
od=$?
forget "$ppid"
forget "$opid"
check "orderd stops cleanly (exit $od)" '[ "$od" = 0 ]'
run $C reconcile --json
check "orderctl reconcile through the fixed tunnel is clean" \
	'[ "$st" = 0 ] && grep -q "\"ok\":true" "$dir/out"'

# ---- the subject checks: another host's name passes nothing ----
tunnel wrong "$wrong" "$dir/ca.pem" "checkHost = other.example.internal"
start_tunnel wrong "$wrong"
run redis-cli -h 127.0.0.1 -p "$wrong" ping
check "a tunnel with checkHost = other.example.internal gets nothing from Redis (exit $st)" \
	'[ "$st" != 0 ] && ! grep -q PONG "$dir/out" &&
	 wait_for "grep -q \"CERT: Subject checks failed\" \"$dir/wrong.log\""'
# stunnel accepts a certificate that matches ANY of its checkHost and checkIP
# lines: adding a checkIP widens what passes, it never narrows it.
# Should a later stunnel require them all, this says so.
tunnel either "$either" "$dir/ca.pem" "checkHost = other.example.internal
checkIP = 127.0.0.1"
start_tunnel either "$either"
run redis-cli -h 127.0.0.1 -p "$either" ping
check "... but checkHost = other.example.internal with checkIP = 127.0.0.1 passes: one matching check is enough" \
	'[ "$st" = 0 ] && grep -qx PONG "$dir/out"'

echo "1..$n"
cleanup
trap - EXIT
if [ "$fails" = 0 ]; then rm -rf "$dir"; else echo "redis_tls: scratch kept in $dir" >&2; fi
[ "$fails" = 0 ]
