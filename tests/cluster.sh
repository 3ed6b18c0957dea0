#!/bin/sh
# cluster.sh: orderd on a 3-master Redis Cluster: the saga end to end, slot migrations under load, orderctl, and the refusals.
#
# Run through tests/servers.sh (the broker, and the single Redis for the
# "not a cluster" refusal); the cluster is started here with
# contrib/redis.sh cluster-start.  Speaks TAP.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
build=${ORDERD_BUILDDIR:-$top}
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
: "${ORDERD_TEST_REDIS_PORT:?run through tests/servers.sh}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/cluster.XXXXXX")
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; sed 's/^/# /' "$dir/err" 2>/dev/null | head -5; fi; }
run() { "$@" >"$dir/out" 2>"$dir/err"; st=$?; }
one_line() { [ "$(wc -l <"$dir/err")" -le 1 ] && grep -q "$1" "$dir/err"; }
cleanup() {
	[ -n "${pipe:-}" ] && kill "$pipe" 2>/dev/null
	"$top/contrib/redis.sh" cluster-stop "$dir/redis" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the cluster ----
if ! nodes=$("$top/contrib/redis.sh" cluster-start "$dir/redis" 3 2>"$dir/err"); then
	not_ok "a 3-master Redis Cluster starts"
	sed 's/^/# /' "$dir/err"
	echo "Bail out! no cluster to test on (scratch in $dir)"
	exit 1
fi
ok "a 3-master Redis Cluster starts ($nodes)"
ports=$(echo "$nodes" | tr ',' '\n' | sed 's/.*://')
cli() { redis-cli -h 127.0.0.1 -p "$@"; }

# ---- configuration ----
run "$bin/orderd" --check-config -s redis.cluster=yes -s "redis.nodes=$nodes,127.0.0.1:99999"
check "--check-config refuses a bad node entry with exit 2, naming it" \
	'[ "$st" = 2 ] && one_line "redis.nodes" && grep -q "127.0.0.1:99999" "$dir/err"'
run "$bin/orderd" --check-config -s redis.cluster=yes -s "redis.nodes=127.0.0.1"
check "--check-config refuses a node without a port" '[ "$st" = 2 ] && one_line "127.0.0.1"'
run "$bin/orderd" --check-config -s redis.cluster=yes
check "--check-config refuses cluster = yes without nodes" \
	'[ "$st" = 2 ] && one_line "redis.nodes"'
run "$bin/orderd" --check-config -s redis.cluster=maybe -s "redis.nodes=$nodes"
check "--check-config refuses cluster = maybe" '[ "$st" = 2 ] && one_line "redis.cluster"'
run "$bin/orderd" --check-config -s redis.cluster=yes -s "redis.nodes=$nodes"
check "--check-config accepts the cluster and prints it" \
	'[ "$st" = 0 ] && grep -qx "cluster = yes" "$dir/out" && grep -qx "nodes = $nodes" "$dir/out"'

# ---- the saga, end to end, on the cluster ----
ORDERD_TEST_REDIS_NODES=$nodes "$build/tests/check_saga_e2e" >"$dir/e2e.log" 2>&1
st=$?
sed 's/^/# /' "$dir/e2e.log" | tail -n 3
check "tests/check_saga_e2e passes on the cluster" '[ "$st" = 0 ]'
[ "$st" = 0 ] || tail -n 40 "$dir/e2e.log" | sed 's/^/# /'
# Their skus A, B and C hash to slots 6373, 10374 and 14503: the
# three-line order of test_multi_line_short_line_releases_held_lines spans
# two masters.
with_keys=0
for p in $ports; do
	[ "$(cli "$p" dbsize)" -gt 0 ] && with_keys=$((with_keys + 1))
done
check "the e2e tests' keys live on more than one master ($with_keys)" '[ "$with_keys" -ge 2 ]'

# ---- a loadgen run while slots move between the masters ----
# 10,000 orders of 1..3 lines over 100 skus at 400/s: about 25 s of load.
mkdir -p "$dir/pipe"
ORDERD_TEST_REDIS_NODES=$nodes ORDERD_LOADGEN_RATE=400 \
	"$top/tests/pipeline.sh" "$dir/pipe" 10000 100 300 0.1 0.05 3 3 \
	>"$dir/pipe.out" 2>"$dir/pipe.err" &
pipe=$!
# The migrations start once orders flow.
i=0
until [ "$(sqlite3 "$dir/pipe/journal.db" "SELECT count(*) FROM orders" 2>/dev/null || echo 0)" -ge 1000 ]; do
	kill -0 "$pipe" 2>/dev/null || break
	i=$((i + 1))
	[ "$i" -lt 600 ] || break
	sleep 0.1
done
ids=
for p in $ports; do ids="$ids $(cli "$p" cluster myid)"; done
rounds=0 moved_ok=yes during=yes
# Each round moves 1,500 slots (and the keys in them) from one master to
# the next: about 9 of the 100 skus, while their steps come and go.
for r in 0 1 2 3; do
	from=$(echo "$ids" | awk -v k=$((r % 3 + 1)) '{ print $k }')
	to=$(echo "$ids" | awk -v k=$(((r + 1) % 3 + 1)) '{ print $k }')
	if ! redis-cli --cluster reshard "127.0.0.1:$(echo "$ports" | head -n 1)" \
		--cluster-from "$from" --cluster-to "$to" --cluster-slots 1500 --cluster-yes \
		>>"$dir/reshard.log" 2>&1; then
		moved_ok=no
		break
	fi
	rounds=$((rounds + 1))
	# Half the slots moved and the load still going: the migrations ran
	# under load.  (All four need not: on a slow or busy machine, under
	# the sanitizers, the last round may end after the last order.)
	if [ "$rounds" = 2 ]; then
		[ -s "$dir/pipe/figures" ] && during=no
		kill -0 "$pipe" 2>/dev/null || during=no
	fi
	sleep 0.5
done
wait "$pipe"
pst=$?
pipe=
cat "$dir/pipe.out" | sed 's/^/# /'
[ "$pst" = 0 ] || { tail -n 20 "$dir/pipe.err" "$dir/pipe/orderd.log" | sed 's/^/# /'; }
[ "$moved_ok" = yes ] || tail -n 20 "$dir/reshard.log" | sed 's/^/# /'
fig() { awk -v k="$1" '$1 == k { print $2 }' "$dir/pipe.out"; }
q() { sqlite3 "$dir/pipe/journal.db" "$1"; }
check "four reshards of 1500 slots each succeeded" '[ "$moved_ok" = yes ] && [ "$rounds" = 4 ]'
check "the slots moved while orders were in flight (two of the four rounds at least)" '[ "$during" = yes ]'
redis-cli --cluster check "127.0.0.1:$(echo "$ports" | head -n 1)" >"$dir/check.log" 2>&1
check "redis-cli --cluster check is clean afterwards" \
	'grep -q "All 16384 slots covered" "$dir/check.log" && ! grep -q "\[ERR\]" "$dir/check.log"'
check "the pipeline ran clean: loadgen, orderd's exit, reconcile (exit $pst)" '[ "$pst" = 0 ]'
check "10000 orders, missing 0, no conflicts" \
	'[ "$(fig orders)" = 10000 ] && [ "$(fig missing)" = 0 ] && [ "$(fig conflicts)" = 0 ]'
check "reconcile clean" 'grep -q "\"ok\":true" "$dir/pipe/reconcile.json"'
check "every order terminal in the journal, no step in flight" \
	'[ "$(q "SELECT count(*) FROM orders WHERE state NOT IN (\"CONFIRMED\",\"REJECTED\",\"CANCELLED\")")" = 0 ] &&
	 [ "$(q "SELECT count(*) FROM saga_steps WHERE result IS NULL")" = 0 ]'
check "orderd followed the migration (MOVED or ASK, the slot map read again)" \
	'grep -q "cluster: slot map changed" "$dir/pipe/orderd.log" &&
	 grep -Eq "followed ([1-9][0-9]* MOVED|[0-9]+ MOVED and [1-9][0-9]* ASK)" "$dir/pipe/orderd.log"'
grep "cluster: closing" "$dir/pipe/orderd.log" | sed 's/^/# /'

# ---- orderctl on the cluster ----
C="$bin/orderctl -c $dir/pipe/orderd.conf"
run $C stock show --json
cp "$dir/out" "$dir/stock.before"
check "stock show: 100 skus, each with available + reserved + sold == added, none reserved" \
	'[ "$st" = 0 ] && python3 - "$dir/out" <<"PY"
import json, sys
skus = json.load(open(sys.argv[1]))["skus"]
assert len(skus) == 100, len(skus)
for s in skus:
    assert s["available"] + s["reserved"] + s["sold"] == s["added"], s
    assert s["reserved"] == 0 and s["available"] >= 0, s
PY'
run $C stock show sku-1 sku-2 sku-3
check "stock show SKU... reads each from its master" '[ "$st" = 0 ] && [ "$(grep -c "^sku-" "$dir/out")" = 3 ]'
run $C stock add sku-1 5
check "stock add on the cluster" '[ "$st" = 0 ] && grep -q "added 5" "$dir/out"'
run $C recover --rebuild-redis --only-instance
check "recover --rebuild-redis into a cluster that holds keys is refused (exit 1)" \
	'[ "$st" = 1 ] && grep -q "already holds keys" "$dir/err"'
run $C recover --rebuild-redis --only-instance --force --json
check "recover --rebuild-redis --force rebuilds every master's keys" \
	'[ "$st" = 0 ] && grep -q "\"ok\":true" "$dir/out" && grep -q "\"skus\":100" "$dir/out"'
run $C reconcile --json
check "reconcile clean after the rebuild" '[ "$st" = 0 ] && grep -q "\"ok\":true" "$dir/out"'
run $C stock show --json
check "the rebuilt stock is what it was (sku-1 has 5 more)" 'python3 - "$dir/stock.before" "$dir/out" <<"PY"
import json, sys
a = {s["sku"]: s for s in json.load(open(sys.argv[1]))["skus"]}
b = {s["sku"]: s for s in json.load(open(sys.argv[2]))["skus"]}
a["sku-1"]["added"] += 5
a["sku-1"]["available"] += 5
assert a == b, [k for k in a if a[k] != b.get(k)]
PY'

# ---- refusals ----
dead="127.0.0.1:1,127.0.0.1:2"
run $C -s "redis.nodes=$dead" stock show
check "orderctl with no node answering: exit 1, naming every node" \
	'[ "$st" = 1 ] && one_line "127.0.0.1:1: Connection refused" && grep -q "127.0.0.1:2" "$dir/err"'
run $C -s "redis.nodes=127.0.0.1:$ORDERD_TEST_REDIS_PORT" reconcile
check "orderctl with a seed that is no cluster node: exit 1, saying so" \
	'[ "$st" = 1 ] && one_line "cluster support disabled"'
"$bin/orderd" -c "$dir/pipe/orderd.conf" -s "redis.nodes=$dead" -s redis.timeout_ms=300 \
	-s "journal.path=$dir/dead.db" 2>"$dir/dead.log" &
dpid=$!
i=0
until grep -q "no slot map after 300 ms" "$dir/dead.log" 2>/dev/null || [ "$i" -ge 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -TERM "$dpid"
wait "$dpid"
dst=$?
check "orderd with no node answering stays down and says why" \
	'grep -q "no slot map after 300 ms: no node of $dead answered CLUSTER SLOTS" "$dir/dead.log" &&
	 grep -q "cannot connect to 127.0.0.1:1" "$dir/dead.log" && ! grep -q "cluster: up" "$dir/dead.log"'
check "... and stops on SIGTERM (exit $dst)" '[ "$dst" = 0 ]'

echo "1..$n"
# The nodes stop before their directories go.
cleanup
trap - EXIT
if [ "$fails" = 0 ]; then rm -rf "$dir"; else echo "cluster: scratch kept in $dir" >&2; fi
[ "$fails" = 0 ]
