#!/bin/sh
# redis_acl.sh: orderd and orderctl as least-privilege Redis ACL users, on one server and on a cluster: orders flow, credentials rotate, refusals are one clear line, no secret is ever shown.
#
# Starts a Redis of its own (and a 3-master cluster) whose default user is
# off, with the ACL users of the README's Security section; the broker is
# tests/servers.sh's.  Checks:
#   - orderctl (user orderctl) creates topics and stock; orderd (user
#     orderd), paysim and loadgen take orders to CONFIRMED and stock moves;
#   - the orderd user is refused FLUSHALL, CONFIG, KEYS and keys outside
#     its prefix;
#   - SIGHUP with a new password in password_file re-authenticates, and
#     orderd reconnects with it once the old one is removed;
#   - a wrong password, no password, or an ACL user without SCRIPT LOAD
#     stop orderd with one line naming the cause and exit 1; orderctl too;
#   - no password appears in any log, in --check-config's output, in
#     /metrics or /healthz, in orderctl's output or in ps.
# TAP output.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/redis-acl.XXXXXX")
n=0
fails=0
pids=
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
note() { echo "# $*"; }
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	"$top/contrib/redis.sh" stop "$tmp/redis" >/dev/null 2>&1
	"$top/contrib/redis.sh" cluster-stop "$tmp/cluster" >/dev/null 2>&1
}
trap cleanup EXIT
bail() {
	echo "Bail out! $*"
	for f in "$tmp"/*.log; do
		[ -f "$f" ] && { echo "# --- $f"; tail -n 15 "$f" | sed 's/^/# /'; }
	done
	exit 1
}
. "$top/tests/conf.sh"

# A password of 24 letters and digits, new for each run.
secret() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }
# A file only its owner may read, holding one secret.
secret_file() { (umask 077 && printf '%s\n' "$2" >"$1"); }
free_port() {
	python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# Waits up to $3 tenths of a second for the pattern $2 in file $1.
wait_for() {
	i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -lt "$3" ] || return 1
		sleep 0.1
	done
}
# Waits up to 60 s for our child $1 to exit; sets st to its status (124:
# it did not, and was killed).  Not in a $(...): a subshell cannot wait for
# its parent's children, and a zombie passes kill -0.
wait_exit() {
	i=0
	while [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ] && kill -0 "$1" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -ge 600 ]; then kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; st=124; return; fi
		sleep 0.1
	done
	wait "$1"
	st=$?
}
count() { grep -c -- "$2" "$1" 2>/dev/null || true; }
figure() { sed -n "s/^$2 //p" "$1"; }

ADMIN=$(secret) OPW=$(secret) NPW=$(secret) CPW=$(secret) WPW=$(secret) SPW=$(secret) XPW=$(secret)
# The ACL lines of the README's Security section, for a prefix.
orderd_acl() {
	echo "on >$2 resetkeys ~$1* resetchannels -@all +evalsha +script|load +exists +hget +hset +hincrby +sadd +cluster|slots +asking"
}
orderctl_acl() {
	echo "on >$2 resetkeys ~$1* resetchannels -@all +eval +evalsha +script|load +exists +hget +hmget +hset +hincrby +sadd +scard +del +scan +cluster|slots +asking"
}
# ACL SETUSER on one node (as the default user while it is on, as admin after).
acl() {
	p=$1 u=$2
	shift 2
	# Word splitting of the rules, but no globbing of ~prefix*.
	(set -f
	# shellcheck disable=SC2048,SC2086
	redis-cli --no-auth-warning -p "$p" ${ADMIN_ON:+--user admin --pass "$ADMIN"} \
		ACL SETUSER "$u" $* >/dev/null)
}
# Makes node $1 refuse the passwordless default user, as a managed Redis does.
lock_down() {
	redis-cli -p "$1" ACL SETUSER admin on ">$ADMIN" '~*' '&*' '+@all' >/dev/null &&
		redis-cli --no-auth-warning -p "$1" --user admin --pass "$ADMIN" \
			ACL SETUSER default off >/dev/null
}
as_user() {
	p=$1 u=$2 pw=$3
	shift 3
	redis-cli --no-auth-warning -p "$p" --user "$u" --pass "$pw" "$@" 2>&1
}

# ---- one server ----------------------------------------------------------
port=$("$top/contrib/redis.sh" start "$tmp/redis" 2>"$tmp/redis-start.log") ||
	bail "redis-server did not start: $(tail -n 5 "$tmp/redis-start.log")"
name=acl$$
prefix=$name:
acl "$port" orderd "$(orderd_acl "$prefix" "$OPW")" || bail "ACL SETUSER orderd failed"
acl "$port" orderctl "$(orderctl_acl "$prefix" "$CPW")" || bail "ACL SETUSER orderctl failed"
acl "$port" noscript "on >$SPW resetkeys ~$prefix* -@all +evalsha +exists +hget +hset +hincrby +sadd" ||
	bail "ACL SETUSER noscript failed"
lock_down "$port" || bail "cannot switch the default user off"
ADMIN_ON=1
check "the passwordless default user is refused" \
	'redis-cli -p "$port" ping 2>&1 | grep -q NOAUTH'

secret_file "$tmp/orderd.pw" "$OPW"
secret_file "$tmp/orderctl.pw" "$CPW"
secret_file "$tmp/wrong.pw" "$WPW"
secret_file "$tmp/noscript.pw" "$SPW"
hport=$(free_port)
ORDERD_TEST_REDIS_PORT=$port test_conf "$tmp/base.conf" "$name" "$tmp" full "127.0.0.1:$hport"
conf_with() {	# FILE USER PASSWORD_FILE
	cp "$tmp/base.conf" "$1"
	printf '[redis]\nuser = %s\npassword_file = %s\n' "$2" "$3" >>"$1"
}
conf_with "$tmp/orderd.conf" orderd "$tmp/orderd.pw"
conf_with "$tmp/ctl.conf" orderctl "$tmp/orderctl.pw"
ctl() { "$bin/orderctl" -c "$tmp/ctl.conf" "$@"; }

ctl topics create --partitions 2 >"$tmp/topics.out" 2>"$tmp/ctl.log" || bail "orderctl topics create failed"
s=0
for i in 0 1 2 3 4; do
	ctl stock add "sku-$i" 60 >>"$tmp/ctl.out" 2>>"$tmp/ctl.log" || s=1
done
check "orderctl, as ACL user orderctl, adds stock" '[ "$s" = 0 ]'

start_orderd() {	# CONF LOG: starts orderd, sets opid
	"$bin/orderd" -c "$1" 2>"$2" &
	opid=$!
	pids="$pids $opid"
}
start_orderd "$tmp/orderd.conf" "$tmp/orderd.log"
wait_for "$tmp/orderd.log" 'engine: consuming' 300 || bail "orderd did not start"
wait_for "$tmp/orderd.log" 'redis: connected to' 300
r=$?
check "orderd, as ACL user orderd, connects and loads its scripts" '[ "$r" = 0 ]'
"$bin/orderd-paysim" -c "$tmp/orderd.conf" -s "redis.password=$XPW" -s redis.password_file= \
	--fail-ratio 0.1 --group "$name-paysim" 2>"$tmp/paysim.log" &
ppid=$!
pids="$pids $ppid"
wait_for "$tmp/paysim.log" 'answering' 300 || bail "paysim did not start"
check "a password given with -s is gone from ps (/proc/PID/cmdline)" \
	'! tr "\0" " " </proc/$ppid/cmdline | grep -q "$XPW" && tr "\0" " " </proc/$ppid/cmdline | grep -q "redis.password=xxxx"'
check "... and the program warns that a file keeps it out of ps" \
	'grep -q "warning: -s redis.password: a secret on the command line can be read by other users" "$tmp/paysim.log"'

"$bin/orderd-loadgen" -c "$tmp/orderd.conf" --orders 200 --skus 5 --lines-max 2 \
	--sku-prefix sku- --verify --timeout-s 120 >"$tmp/figures" 2>"$tmp/loadgen.log"
lg=$?
note "$(tr '\n' ' ' <"$tmp/figures")"
check "200 orders through the ACL users: every one answered (loadgen exit 0, missing 0)" \
	'[ "$lg" = 0 ] && [ "$(figure "$tmp/figures" missing)" = 0 ]'
check "... and some confirmed, some rejected or cancelled" \
	'[ "$(figure "$tmp/figures" confirmed)" -gt 0 ] &&
	 [ $(($(figure "$tmp/figures" rejected) + $(figure "$tmp/figures" cancelled))) -gt 0 ]'
ctl stock show --json >"$tmp/stock.json" 2>>"$tmp/ctl.log"
sold=$(python3 -c 'import json,sys; print(sum(s["sold"] for s in json.load(open(sys.argv[1]))["skus"]))' \
	"$tmp/stock.json" 2>/dev/null || echo 0)
check "stock moved in Redis: $sold units sold" '[ "$sold" -gt 0 ]'
curl -s "http://127.0.0.1:$hport/metrics" >"$tmp/metrics.out"
curl -s "http://127.0.0.1:$hport/healthz" >"$tmp/healthz.out"
check "/metrics and /healthz answer" '[ -s "$tmp/metrics.out" ] && [ -s "$tmp/healthz.out" ]'

# What the orderd user may not do.
check "the orderd user is refused FLUSHALL" \
	'as_user "$port" orderd "$OPW" FLUSHALL | grep -q NOPERM'
check "... CONFIG GET" 'as_user "$port" orderd "$OPW" CONFIG GET maxmemory | grep -q NOPERM'
check "... KEYS" 'as_user "$port" orderd "$OPW" KEYS "*" | grep -q NOPERM'
check "... a key outside its prefix" \
	'as_user "$port" orderd "$OPW" HSET other:{sku-0}:stock available 1 | grep -q NOPERM'
check "... and may read its own keys" \
	'as_user "$port" orderd "$OPW" HGET "${prefix}{sku-0}:stock" added | grep -qx 60'

# Rotation: the new password is added, orderd told, the old one removed.
acl "$port" orderd ">$NPW" || bail "adding the new password failed"
secret_file "$tmp/orderd.pw" "$NPW"
kill -HUP "$opid"
wait_for "$tmp/orderd.log" 'authenticated with the new credentials' 300
r=$?
check "SIGHUP with a new password in password_file: orderd authenticates with it" '[ "$r" = 0 ]'
check "... and logs the change without the password" \
	'grep -q "redis.password_file: $tmp/orderd.pw holds a new password" "$tmp/orderd.log"'
acl "$port" orderd "<$OPW" || bail "removing the old password failed"
redis-cli --no-auth-warning -p "$port" --user admin --pass "$ADMIN" CLIENT KILL USER orderd >/dev/null
i=0
while [ "$(count "$tmp/orderd.log" 'redis: connected to')" -lt 2 ] && [ "$i" -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
check "the old password removed and the connection killed: orderd reconnects with the new one" \
	'[ "$(count "$tmp/orderd.log" "redis: connected to")" -ge 2 ]'
"$bin/orderd-loadgen" -c "$tmp/orderd.conf" --orders 40 --skus 5 --lines-max 1 \
	--sku-prefix sku- --verify --timeout-s 120 >"$tmp/figures2" 2>"$tmp/loadgen2.log"
lg=$?
check "orders flow after the rotation (loadgen exit 0, $(figure "$tmp/figures2" confirmed) confirmed)" \
	'[ "$lg" = 0 ] && [ "$(figure "$tmp/figures2" confirmed)" -gt 0 ]'
kill -TERM "$ppid"
wait "$ppid" 2>/dev/null
kill -TERM "$opid"
wait_exit "$opid"
check "orderd stops with exit 0 on SIGTERM" '[ "$st" = 0 ]'
ctl reconcile >"$tmp/reconcile.out" 2>>"$tmp/ctl.log"
r=$?
check "orderctl reconcile, as ACL user orderctl, is clean" '[ "$r" = 0 ]'

# Refusals: one line naming the cause, exit 1, within seconds.
refused() {	# WHAT CONF LOG PATTERN
	rlog=$3 rwant=$4
	start_orderd "$2" "$3"
	wait_exit "$opid"
	check "$1: orderd exits 1" '[ "$st" = 1 ]' || tail -n 5 "$rlog" | sed 's/^/# /'
	check "... with one line naming the cause ($rwant), said once" \
		'[ "$(count "$rlog" "cannot go on, stopping (exit 1): redis: .*$rwant")" = 1 ] &&
		 [ "$(count "$rlog" "$rwant")" = 1 ]'
}
conf_with "$tmp/wrong.conf" orderd "$tmp/wrong.pw"
refused "a wrong password" "$tmp/wrong.conf" "$tmp/wrong.log" "AUTH as user 'orderd' refused: WRONGPASS"
cp "$tmp/base.conf" "$tmp/nopass.conf"
refused "no password for a Redis that wants one" "$tmp/nopass.conf" "$tmp/nopass.log" \
	"Redis wants a password (NOAUTH"
conf_with "$tmp/noscript.conf" noscript "$tmp/noscript.pw"
refused "an ACL user that may not load scripts" "$tmp/noscript.conf" "$tmp/noscript.log" \
	"SCRIPT LOAD .* refused to user 'noscript': NOPERM"
"$bin/orderctl" -c "$tmp/wrong.conf" stock show >"$tmp/ctl-wrong.out" 2>"$tmp/ctl-wrong.log"
st=$?
check "orderctl with a wrong password: exit 1, one line" \
	'[ "$st" = 1 ] && [ "$(wc -l <"$tmp/ctl-wrong.log")" = 1 ] && grep -q WRONGPASS "$tmp/ctl-wrong.log"'

# --check-config with every secret set shows none of them.
"$bin/orderd" -c "$tmp/orderd.conf" -s redis.password_file= -s "redis.password=$XPW" \
	-s "kafka.sasl.password=$XPW" --check-config >"$tmp/check-config.out" 2>"$tmp/check-config.log"
check "--check-config prints secrets as [redacted]" \
	'grep -qx "password = \[redacted\]" "$tmp/check-config.out" &&
	 grep -qx "sasl.password = \[redacted\]" "$tmp/check-config.out"'

# ---- a cluster -------------------------------------------------------------
nodes=$("$top/contrib/redis.sh" cluster-start "$tmp/cluster" 3 2>"$tmp/cluster-start.log") ||
	bail "the Redis cluster did not start: $(tail -n 5 "$tmp/cluster-start.log")"
ADMIN_ON=
cname=aclc$$
cprefix=$cname:
for a in $(echo "$nodes" | tr ',' ' '); do
	p=${a##*:}
	acl "$p" orderd "$(orderd_acl "$cprefix" "$OPW")" &&
		acl "$p" orderctl "$(orderctl_acl "$cprefix" "$CPW")" && lock_down "$p" ||
		bail "ACL on node $a failed"
done
ADMIN_ON=1
secret_file "$tmp/orderd.pw" "$OPW"
ORDERD_TEST_REDIS_NODES=$nodes test_conf "$tmp/cbase.conf" "$cname" "$tmp/c" full
mkdir -p "$tmp/c"
cp "$tmp/cbase.conf" "$tmp/base.conf"
conf_with "$tmp/corderd.conf" orderd "$tmp/orderd.pw"
conf_with "$tmp/cctl.conf" orderctl "$tmp/orderctl.pw"
conf_with "$tmp/cwrong.conf" orderd "$tmp/wrong.pw"
s=0
"$bin/orderctl" -c "$tmp/cctl.conf" topics create --partitions 2 >/dev/null 2>>"$tmp/cctl.log" || s=1
for i in 0 1 2 3 4; do
	"$bin/orderctl" -c "$tmp/cctl.conf" stock add "sku-$i" 60 >/dev/null 2>>"$tmp/cctl.log" || s=1
done
check "cluster: orderctl, as ACL user orderctl on every node, adds stock" '[ "$s" = 0 ]'
start_orderd "$tmp/corderd.conf" "$tmp/corderd.log"
wait_for "$tmp/corderd.log" 'engine: consuming' 300 || bail "orderd did not start on the cluster"
"$bin/orderd-paysim" -c "$tmp/corderd.conf" --fail-ratio 0.1 --group "$cname-paysim" \
	2>"$tmp/cpaysim.log" &
ppid=$!
pids="$pids $ppid"
"$bin/orderd-loadgen" -c "$tmp/corderd.conf" --orders 200 --skus 5 --lines-max 2 \
	--sku-prefix sku- --verify --timeout-s 120 >"$tmp/cfigures" 2>"$tmp/cloadgen.log"
lg=$?
note "$(tr '\n' ' ' <"$tmp/cfigures")"
check "cluster: 200 orders through the ACL users, every one answered, $(figure "$tmp/cfigures" confirmed) confirmed" \
	'[ "$lg" = 0 ] && [ "$(figure "$tmp/cfigures" missing)" = 0 ] && [ "$(figure "$tmp/cfigures" confirmed)" -gt 0 ]'
kill -TERM "$ppid"
wait "$ppid" 2>/dev/null
kill -TERM "$opid"
wait_exit "$opid"
check "cluster: orderd stops with exit 0" '[ "$st" = 0 ]'
"$bin/orderctl" -c "$tmp/cctl.conf" reconcile >"$tmp/creconcile.out" 2>>"$tmp/cctl.log"
r=$?
check "cluster: orderctl reconcile is clean" '[ "$r" = 0 ]'
s=0
for a in $(echo "$nodes" | tr ',' ' '); do
	p=${a##*:}
	as_user "$p" orderd "$OPW" FLUSHALL | grep -q NOPERM || s=1
	as_user "$p" orderd "$OPW" CONFIG GET maxmemory | grep -q NOPERM || s=1
done
check "cluster: every node refuses FLUSHALL and CONFIG to the orderd user" '[ "$s" = 0 ]'
start_orderd "$tmp/cwrong.conf" "$tmp/cwrong.log"
wait_exit "$opid"
check "cluster: a wrong password stops orderd, exit 1, one line" \
	'[ "$st" = 1 ] && [ "$(count "$tmp/cwrong.log" "cannot go on, stopping (exit 1): redis: .*WRONGPASS")" = 1 ]'

# ---- no secret anywhere ----------------------------------------------------
leaks=
for f in "$tmp"/*.log "$tmp"/*.out "$tmp"/figures*; do
	for s in "$ADMIN" "$OPW" "$NPW" "$CPW" "$WPW" "$SPW" "$XPW"; do
		grep -qF -- "$s" "$f" && leaks="$leaks $(basename "$f")"
	done
done
check "no password in any log, --check-config, /metrics, /healthz or orderctl output$leaks" '[ -z "$leaks" ]'

echo "1..$n"
[ "$fails" = 0 ] && [ -z "${ORDERD_KEEP_RUN:-}" ] && rm -rf "$tmp"
exit 0
